/*
 * muon-bench: what the muon sides of every mode share (muon_pingpong.c,
 * muon_flow.c): failure messages, muon's log held back during set-up and
 * tear-down, event names, and the verbs endpoint to listen on.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"
#include "muonutil.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void bench_muon_fail(const char *who, const char *call, int64_t rc)
{
	char msg[512];

	/* Copied first: the message is only valid until the next muon call. */
	snprintf(msg, sizeof(msg), "%s", muon_errmsg());
	fprintf(stderr, "%s: %s: %s failed: %s: %s\n", BENCH_PROG, who, call,
		muon_strerror((int)rc), msg);
}

void bench_on_log(void *arg, muon_log_level_t level, const char *message)
{
	struct bench_logsink *l = arg;

	if (l->quiet && level != MUON_LOG_ERROR) {
		snprintf(l->held[l->nheld++ % BENCH_HELD_LOGS],
			 sizeof(l->held[0]), "muon %s: %s", muon_log_level_name(level),
			 message);
		return;
	}
	fprintf(stderr, "%s: %s: muon %s: %s\n", BENCH_PROG, l->who,
		muon_log_level_name(level), message);
}

void bench_quiet_begin(struct bench_logsink *l)
{
	l->quiet = 1;
	l->nheld = 0;
}

void bench_quiet_end(struct bench_logsink *l, int failed)
{
	unsigned first = l->nheld > BENCH_HELD_LOGS ?
				 l->nheld - BENCH_HELD_LOGS : 0;

	if (failed)
		for (unsigned i = first; i < l->nheld; i++)
			fprintf(stderr, "%s: %s: %s\n", BENCH_PROG, l->who,
				l->held[i % BENCH_HELD_LOGS]);
	l->quiet = 0;
	l->nheld = 0;
}

uint32_t bench_pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return (uint32_t)p;
}

/*
 * Is `sa` an address of this host? Binding a TCP socket to it says so
 * before any RDMA state exists that a child process would inherit, and
 * says it more plainly than a failed listen inside muon.
 */
static int check_local_addr(struct sockaddr *sa, socklen_t sa_len,
			    const char *addr)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = -1;

	if (fd < 0)
		goto fail;
	if (bind(fd, sa, sa_len) == 0)
		rc = 0;
	close(fd);
fail:
	if (rc != 0) {
		int e = errno;

		fprintf(stderr, "%s: cannot bind to %s: %s\n", BENCH_PROG,
			addr, strerror(e));
		if (e == EADDRNOTAVAIL)
			fprintf(stderr, "%s: %s is not an address of this "
				"host (--addr, MUON_RDMA_ADDR)\n", BENCH_PROG,
				addr);
	}
	return rc;
}

int bench_verbs_listen(const char *addr, int check, char *buf, size_t len)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	int rc, v6;

	rc = getaddrinfo(addr, "0", &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "%s: --addr %s: not an IPv4 or IPv6 address: "
			"%s\n", BENCH_PROG, addr, gai_strerror(rc));
		return -1;
	}
	rc = check ? check_local_addr(ai->ai_addr, ai->ai_addrlen, addr) : 0;
	v6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
	if (rc != 0)
		return -1;
	snprintf(buf, len, v6 ? "verbs://[%s]:0" : "verbs://%s:0", addr);
	return 0;
}

int bench_setup_wait(muon_ctx_t *ctx, const char *who, int (*step)(void *),
		     void *arg, uint64_t timeout_ns, const char *what,
		     const unsigned *events, const char *note)
{
	const struct timespec nap = { 0, 50000 };
	uint64_t deadline = bench_now_ns() + timeout_ns;

	for (;;) {
		int r;

		if (ctx) {
			r = muon_ctx_poll(ctx, 0);
			if (r < 0) {
				bench_muon_fail(who, "muon_ctx_poll", r);
				return -1;
			}
		}
		r = step(arg);
		if (r)
			return r > 0 ? 0 : -1;
		if (bench_now_ns() >= deadline)
			break;
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "%s: %s: timed out after %llu s waiting for %s\n",
		BENCH_PROG, who, (unsigned long long)(timeout_ns / 1000000000ull),
		what);
	if (events && *events && note)
		fprintf(stderr, "%s: %s: last event: %s\n", BENCH_PROG, who,
			note);
	return -1;
}
