/*
 * muon-bench: the bare TCP ping-pong that muon's tcp transport is measured
 * against: one loopback connection with TCP_NODELAY, blocking send(), and
 * both ends busy-polling recv(MSG_DONTWAIT) so no wake-up latency is paid.
 * That is the best plain sockets can do over 127.0.0.1. The ping ends the
 * run by closing its end: the pong reads EOF where a ping would start.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"
#include "raw.h"

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
 * other side knows where to connect and concurrent runs cannot collide. */
int raw_tcp_listen(int *lfd, uint16_t *port, const char *who)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	*lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*lfd < 0) {
		sock_error(who, "socket");
		return -1;
	}
	loopback_addr(&sa, 0);
	if (bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(*lfd, 1) != 0 ||
	    getsockname(*lfd, (struct sockaddr *)&sa, &len) != 0) {
		sock_error(who, "listen on 127.0.0.1");
		close(*lfd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
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

/* 0: `len` (> 0) bytes read; 1: EOF before the first byte (the ping is
 * done); -1: error, or EOF in the middle of a message. */
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
		if (n == 0 && got == 0)
			return 1;
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

int raw_tcp_connect(uint16_t port, const char *who)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		sock_error(who, "socket");
		return -1;
	}
	loopback_addr(&sa, port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		sock_error(who, "connect");
		close(fd);
		return -1;
	}
	if (set_nodelay(fd, who) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_pong_main(void *arg, int rd, int wr)
{
	struct raw_tcp *r = arg;
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "pong" };
	int fd, rc = 1;

	(void)rd;
	(void)wr;
	close(r->lfd);
	fd = raw_tcp_connect(r->port, "pong");
	if (fd < 0)
		return 1;
	for (;;) {
		int got;

		bench_spin_start(&spin, "the next raw tcp ping");
		got = recv_all_spin(fd, r->buf, o->size, &spin, "pong");
		if (got < 0)
			goto close_fd;
		if (got > 0)
			break;
		if (send_all(fd, r->buf, o->size, "pong") != 0)
			goto close_fd;
	}
	rc = 0;
close_fd:
	close(fd);
	return rc;
}

/* accept() with a deadline that also notices a child that died. */
int raw_tcp_accept(int lfd, struct bench_child *child, const char *who)
{
	uint64_t deadline = bench_now_ns() + BENCH_TIMEOUT_NS;
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int fd;

	for (;;) {
		int n = poll(&pfd, 1, 100);

		if (n > 0)
			break;
		if (n < 0 && errno != EINTR) {
			sock_error(who, "poll");
			return -1;
		}
		if (bench_child_check(child) != 0)
			return -1;
		if (bench_now_ns() >= deadline) {
			fprintf(stderr, "%s: raw tcp: %s: the other side did "
				"not connect within 10 s\n", BENCH_PROG, who);
			return -1;
		}
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		sock_error(who, "accept");
		return -1;
	}
	if (set_nodelay(fd, who) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_ping(struct raw_tcp *r, int fd, struct bench_child *child,
		    struct bench_pp *pp)
{
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .child = child,
				   .who = "ping" };
	uint64_t t0, t1;

	do {
		uint64_t i = pp->i, got;

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
	} while (bench_pp_next(pp, t0, t1));
	return 0;
}

int bench_raw_tcp_pingpong(const struct bench_opts *o, struct bench_report *rep)
{
	struct raw_tcp r = { .o = o };
	struct bench_child child;
	struct bench_pp pp;
	int fd, rc = -1;

	if (o->size == 0) {
		/* Nothing would cross the connection: not a round trip. */
		fprintf(stderr, "%s: raw tcp: a ping-pong needs --size of at "
			"least 1\n", BENCH_PROG);
		return -1;
	}
	r.buf = bench_payload_new(o->size, "raw tcp");
	if (!r.buf)
		return -1;
	if (bench_pp_init(&pp, o, "raw") != 0)
		goto free_buf;
	if (raw_tcp_listen(&r.lfd, &r.port, "ping") != 0)
		goto free_pp;
	if (bench_child_spawn(&child, o->pong_cpu, tcp_pong_main, &r) != 0)
		goto close_listener;
	fd = raw_tcp_accept(r.lfd, &child, "ping");
	if (fd < 0)
		goto kill_child;
	if (tcp_ping(&r, fd, &child, &pp) != 0)
		goto close_conn;
	/* EOF where the next ping would start: the pong's cue to exit. */
	close(fd);
	rc = bench_child_finish(&child, BENCH_TIMEOUT_NS);
	if (rc == 0)
		rc = bench_pp_add(&pp, rep, "raw-tcp");
	goto close_listener;

close_conn:
	close(fd);
kill_child:
	bench_child_kill(&child);
close_listener:
	close(r.lfd);
free_pp:
	bench_pp_fini(&pp);
free_buf:
	free(r.buf);
	return rc;
}
