/*
 * muon-bench: the bare TCP ping-pong that muon's tcp transport is measured
 * against: one loopback connection with TCP_NODELAY, blocking send(), and
 * both ends busy-polling recv(MSG_DONTWAIT) so no wake-up latency is paid.
 * That is the best plain sockets can do over 127.0.0.1.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct raw_tcp {
	const struct bench_opts *o;
	int lfd;          /* listening socket of the ping side */
	uint16_t port;
	unsigned char *buf;
};

static void sock_error(const char *who, const char *what)
{
	fprintf(stderr, "%s: raw tcp: %s: %s: %s\n", BENCH_PROG, who, what,
		strerror(errno));
}

static void loopback_addr(struct sockaddr_in *sa, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static int set_nodelay(int fd, const char *who)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		sock_error(who, "TCP_NODELAY");
		return -1;
	}
	return 0;
}

/* The listener exists before fork, on a port the kernel picked, so the
 * pong knows where to connect and concurrent runs cannot collide. */
static int raw_tcp_listen(struct raw_tcp *r)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->lfd < 0) {
		sock_error("ping", "socket");
		return -1;
	}
	loopback_addr(&sa, 0);
	if (bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(r->lfd, 1) != 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&sa, &len) != 0) {
		sock_error("ping", "listen on 127.0.0.1");
		close(r->lfd);
		return -1;
	}
	r->port = ntohs(sa.sin_port);
	return 0;
}

static int send_all(int fd, const unsigned char *buf, size_t len,
		    const char *who)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sock_error(who, "send");
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all_spin(int fd, unsigned char *buf, size_t len,
			 struct bench_spin *spin, const char *who)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0) {
			fprintf(stderr, "%s: raw tcp: %s: connection closed "
				"by the other side\n", BENCH_PROG, who);
			return -1;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			sock_error(who, "recv");
			return -1;
		}
		if (bench_spin_check(spin) != 0)
			return -1;
	}
	return 0;
}

static int pong_connect(const struct raw_tcp *r)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		sock_error("pong", "socket");
		return -1;
	}
	loopback_addr(&sa, r->port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		sock_error("pong", "connect");
		close(fd);
		return -1;
	}
	if (set_nodelay(fd, "pong") != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_pong_main(void *arg, int rd, int wr)
{
	struct raw_tcp *r = arg;
	const struct bench_opts *o = r->o;
	uint64_t total = o->warmup + o->count;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "pong" };
	int fd, rc = 1;

	(void)rd;
	(void)wr;
	close(r->lfd);
	fd = pong_connect(r);
	if (fd < 0)
		return 1;
	for (uint64_t i = 0; i < total; i++) {
		bench_spin_start(&spin, "the next raw tcp ping");
		if (recv_all_spin(fd, r->buf, o->size, &spin, "pong") != 0 ||
		    send_all(fd, r->buf, o->size, "pong") != 0)
			goto close_fd;
	}
	rc = 0;
close_fd:
	close(fd);
	return rc;
}

/* accept() with a deadline that also notices a pong that died. */
static int ping_accept(struct raw_tcp *r, struct bench_child *child)
{
	uint64_t deadline = bench_now_ns() + BENCH_TIMEOUT_NS;
	struct pollfd pfd = { .fd = r->lfd, .events = POLLIN };
	int fd;

	for (;;) {
		int n = poll(&pfd, 1, 100);

		if (n > 0)
			break;
		if (n < 0 && errno != EINTR) {
			sock_error("ping", "poll");
			return -1;
		}
		if (bench_child_check(child) != 0)
			return -1;
		if (bench_now_ns() >= deadline) {
			fprintf(stderr, "%s: raw tcp: pong did not connect "
				"within 10 s\n", BENCH_PROG);
			return -1;
		}
	}
	fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		sock_error("ping", "accept");
		return -1;
	}
	if (set_nodelay(fd, "ping") != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_ping(struct raw_tcp *r, int fd, struct bench_child *child,
		    uint64_t *samples)
{
	const struct bench_opts *o = r->o;
	uint64_t total = o->warmup + o->count;
	struct bench_spin spin = { .yield = o->shared_cpu, .child = child,
				   .who = "ping" };

	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0, t1, got;

		bench_put_counter(r->buf, o->size, i);
		bench_spin_start(&spin, "the raw tcp reply");
		t0 = bench_now_ns();
		if (send_all(fd, r->buf, o->size, "ping") != 0 ||
		    recv_all_spin(fd, r->buf, o->size, &spin, "ping") != 0)
			return -1;
		t1 = bench_now_ns();
		got = bench_get_counter(r->buf, o->size);
		if (got != bench_counter_mask(i, o->size)) {
			fprintf(stderr, "%s: raw tcp: round trip %llu came "
				"back with counter %llu\n", BENCH_PROG,
				(unsigned long long)i, (unsigned long long)got);
			return -1;
		}
		if (i >= o->warmup)
			samples[i - o->warmup] = t1 - t0;
	}
	return 0;
}

int bench_raw_tcp_pingpong(const struct bench_opts *o, uint64_t *samples)
{
	struct raw_tcp r = { .o = o };
	struct bench_child child;
	int fd, rc = -1;

	r.buf = malloc(o->size);
	if (!r.buf) {
		fprintf(stderr, "%s: raw tcp: out of memory\n", BENCH_PROG);
		return -1;
	}
	memset(r.buf, 0xa5, o->size);
	if (raw_tcp_listen(&r) != 0)
		goto free_buf;
	if (bench_child_spawn(&child, o->pong_cpu, tcp_pong_main, &r) != 0)
		goto close_listener;
	fd = ping_accept(&r, &child);
	if (fd < 0)
		goto kill_child;
	if (tcp_ping(&r, fd, &child, samples) != 0)
		goto close_conn;
	close(fd);
	rc = bench_child_finish(&child, BENCH_TIMEOUT_NS);
	goto close_listener;

close_conn:
	close(fd);
kill_child:
	bench_child_kill(&child);
close_listener:
	close(r.lfd);
free_buf:
	free(r.buf);
	return rc;
}
