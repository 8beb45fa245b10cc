/*
 * muon-peer-zmq, muon-peer-nng: ping-pong latency and one-way throughput of
 * a messaging library between two processes, measured the way muon-bench
 * measures muon (see bench/compare-peers.sh and the usage text below).
 * Everything except the library calls lives here; the library is the
 * backend `peer_lib` linked with this file.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *peer_prog = "muon-peer";

enum mode { MODE_PINGPONG, MODE_THROUGHPUT };

struct opts {
	enum mode mode;
	enum peer_transport transport;
	enum peer_pattern pattern;
	int pattern_set;
	size_t size;
	uint64_t count;       /* 0 when duration_ns is given */
	uint64_t duration_ns;
	uint64_t warmup;
	int cpu[2];           /* side 0 (ping, sender), side 1; -1: any */
	int spin;             /* receive by polling, not blocking */
	int pin_app;          /* pin only the calling thread, after the
				 library has started its own threads */
	int hwm;
	int json;
};

static struct opts opt;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The message number, little-endian in the first min(size, 8) bytes. */
static void put_counter(unsigned char *b, size_t size, uint64_t v)
{
	size_t n = size < 8 ? size : 8;

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static int counter_is(const unsigned char *b, size_t size, uint64_t v)
{
	size_t n = size < 8 ? size : 8;

	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)(v >> (8 * i)))
			return 0;
	return 1;
}

static uint64_t get_counter(const unsigned char *b, size_t size)
{
	size_t n = size < 8 ? size : 8;
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static int pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		fprintf(stderr, "%s: cannot pin to CPU %d: %s\n", peer_prog,
			cpu, strerror(errno));
		return -1;
	}
	return 0;
}

/* One message, blocking or by polling (--wait spin), bounded either way. */
static int recv_one(struct peer_sock *s, void *buf, size_t cap, size_t *len)
{
	uint64_t deadline = 0;
	unsigned n = 0;
	int r;

	if (!opt.spin)
		return peer_lib.recv(s, buf, cap, len, 0);
	for (;;) {
		r = peer_lib.recv(s, buf, cap, len, 1);
		if (r != 0)
			return r;
		if (++n & 1023)
			continue;
		if (!deadline) {
			deadline = now_ns() + PEER_TIMEOUT_MS * 1000000ull;
		} else if (now_ns() > deadline) {
			fprintf(stderr, "%s: no message within %d s\n",
				peer_prog, PEER_TIMEOUT_MS / 1000);
			return -1;
		}
	}
}

/* ------------------------------------------------------------ the sides */

static unsigned char *msgbuf(void)
{
	/* One spare byte: a longer message than expected shows as such. */
	unsigned char *b = calloc(1, opt.size + 1);

	if (!b)
		fprintf(stderr, "%s: out of memory\n", peer_prog);
	return b;
}

/* The pong: echo every message until an empty one. */
static int pong(struct peer_sock *s)
{
	unsigned char *b = msgbuf();
	size_t len;
	int rc = -1;

	if (!b)
		return -1;
	for (;;) {
		if (recv_one(s, b, opt.size + 1, &len) < 0)
			break;
		if (len == 0) {
			rc = 0;
			break;
		}
		if (len > opt.size + 1)
			len = opt.size + 1; /* the ping says what is wrong */
		if (peer_lib.send(s, b, len) < 0)
			break;
	}
	free(b);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct lat {
	uint64_t *v;
	size_t n, cap;
};

static int lat_add(struct lat *l, uint64_t x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1u << 16;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "%s: out of memory\n", peer_prog);
			return -1;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = x;
	return 0;
}

/* Nearest rank on sorted values: the smallest value that at least p percent
 * of the values are at or below. */
static uint64_t pct(const struct lat *l, double p)
{
	double r = p / 100.0 * (double)l->n;
	size_t i = (size_t)r;

	if ((double)i < r)
		i++;
	if (i == 0)
		i = 1;
	if (i > l->n)
		i = l->n;
	return l->v[i - 1];
}

/*
 * Whether there are samples enough for percentile p to mean something: at
 * least 10 above it (1000 for p99, 10000 for p99.9), as muon-bench asks.
 * Shown as null ("-") otherwise.
 */
static int enough(const struct lat *l, double p)
{
	if (p <= 90 || p >= 100)
		return l->n > 0;
	return (double)l->n * (100 - p) / 100 >= 10 - 1e-9;
}

/* What the results say about how they were made. */
static const char *mode_name(void)
{
	return opt.mode == MODE_PINGPONG ? "pingpong" : "throughput";
}

static const char *transport_name(void)
{
	return opt.transport == PEER_TCP ? "tcp" : "ipc";
}

static const char *pattern_name(void)
{
	if (opt.pattern == PEER_PAIR)
		return strcmp(peer_lib.name, "nng") == 0 ? "pair1" : "pair";
	return strcmp(peer_lib.name, "nng") == 0 ? "push0/pull0" : "push/pull";
}

static void json_head(const char *series, const char *kind, uint64_t msgs,
		      uint64_t ns)
{
	double secs = (double)ns / 1e9;
	double rate = secs > 0 ? (double)msgs / secs : 0;

	printf("{\"tool\":\"%s\",\"impl\":\"%s\",\"version\":\"%s\","
	       "\"mode\":\"%s\",\"transport\":\"%s\",\"pattern\":\"%s\","
	       "\"wait\":\"%s\",\"pin\":\"%s\",\"cpus\":[%d,%d],"
	       "\"size\":%zu,"
	       "\"series\":\"%s\",\"messages\":%llu,\"lost\":0,"
	       "\"seconds\":%.9f,\"msgs_per_s\":%.1f,\"gbit_per_s\":%.6f,"
	       "\"latency_kind\":\"%s\"",
	       peer_prog, peer_lib.name, peer_lib.version(), mode_name(),
	       transport_name(), pattern_name(), opt.spin ? "spin" : "block",
	       opt.pin_app ? "app" : "all", opt.cpu[0], opt.cpu[1], opt.size,
	       series,
	       (unsigned long long)msgs, secs, rate,
	       rate * (double)opt.size * 8 / 1e9, kind);
}

static void print_lat(const char *series, const struct lat *l, unsigned div,
		      uint64_t ns)
{
	static const double p[] = { 0, 50, 90, 99, 99.9, 99.99, 100 };
	static const char *const key[] = { "min", "p50", "p90", "p99",
					   "p99_9", "p99_99", "max" };
	double secs = (double)ns / 1e9;

	if (opt.json) {
		json_head(series, series, l->n, ns);
		printf(",\"latency_ns\":{");
		for (unsigned i = 0; i < 7; i++) {
			printf("%s\"%s\":", i ? "," : "", key[i]);
			if (enough(l, p[i]))
				printf("%llu", (unsigned long long)
				       (pct(l, p[i]) / div));
			else
				printf("null");
		}
		printf(",\"samples\":%zu}}\n", l->n);
		return;
	}
	printf("%s %s %s %zu B (%s, %s receive): %s ns", peer_lib.name,
	       mode_name(), transport_name(), opt.size, pattern_name(),
	       opt.spin ? "polling" : "blocking", series);
	for (unsigned i = 0; i < 7; i++) {
		if (enough(l, p[i]))
			printf(" %s %llu", key[i],
			       (unsigned long long)(pct(l, p[i]) / div));
		else
			printf(" %s -", key[i]);
	}
	printf("; %zu round trips, %.0f/s\n", l->n,
	       secs > 0 ? (double)l->n / secs : 0);
}

/* The ping: time round trips of one message, then send the empty one. */
static int ping(struct peer_sock *s)
{
	unsigned char *b = msgbuf();
	struct lat l = { 0 };
	uint64_t i, t0, t1, start = 0, end = 0, deadline = 0;
	size_t len;
	int rc = -1;

	if (!b)
		return -1;
	for (i = 0;; i++) {
		if (i == opt.warmup) {
			start = now_ns();
			deadline = start + opt.duration_ns;
		}
		if (i >= opt.warmup) {
			if (opt.count ? i - opt.warmup >= opt.count
				      : (i & 63) == 0 && now_ns() >= deadline)
				break;
		}
		put_counter(b, opt.size, i);
		t0 = now_ns();
		if (peer_lib.send(s, b, opt.size) < 0)
			goto out;
		if (recv_one(s, b, opt.size + 1, &len) < 0)
			goto out;
		t1 = now_ns();
		if (len != opt.size || !counter_is(b, opt.size, i)) {
			fprintf(stderr, "%s: round trip %llu came back with "
				"%zu bytes, counter %llu\n", peer_prog,
				(unsigned long long)i, len,
				(unsigned long long)get_counter(b, opt.size));
			goto out;
		}
		if (i >= opt.warmup && lat_add(&l, t1 - t0) < 0)
			goto out;
	}
	end = now_ns();
	if (peer_lib.send(s, b, 0) < 0)
		goto out;
	if (l.n == 0) {
		fprintf(stderr, "%s: no round trip in the timed part\n",
			peer_prog);
		goto out;
	}
	qsort(l.v, l.n, sizeof(*l.v), cmp_u64);
	print_lat("rtt", &l, 1, end - start);
	print_lat("half", &l, 2, end - start);
	rc = 0;
out:
	free(l.v);
	free(b);
	return rc;
}

/* Throughput sender: warm-up, then count messages or for duration. */
static int sender(struct peer_sock *s)
{
	unsigned char *b = msgbuf();
	uint64_t i, deadline = 0;
	int rc = -1;

	if (!b)
		return -1;
	for (i = 0;; i++) {
		if (i == opt.warmup)
			deadline = now_ns() + opt.duration_ns;
		if (i >= opt.warmup) {
			if (opt.count ? i - opt.warmup >= opt.count
				      : (i & 255) == 0 && now_ns() >= deadline)
				break;
		}
		put_counter(b, opt.size, i);
		if (peer_lib.send(s, b, opt.size) < 0)
			goto out;
	}
	rc = peer_lib.send(s, b, 0);
out:
	free(b);
	return rc;
}

/*
 * Throughput receiver: times from the last warm-up message to the empty
 * one that follows the last, checking every message's length and number
 * (the sockets are reliable and ordered: any gap is a failure).
 */
static int receiver(struct peer_sock *s)
{
	unsigned char *b = msgbuf();
	uint64_t i, start = 0, end;
	size_t len;
	int rc = -1;

	if (!b)
		return -1;
	for (i = 0;; i++) {
		if (recv_one(s, b, opt.size + 1, &len) < 0)
			goto out;
		if (len == 0)
			break;
		if (len != opt.size || !counter_is(b, opt.size, i)) {
			fprintf(stderr, "%s: message %llu has %zu bytes, "
				"counter %llu\n", peer_prog,
				(unsigned long long)i, len,
				(unsigned long long)get_counter(b, opt.size));
			goto out;
		}
		if (i + 1 == opt.warmup)
			start = now_ns();
	}
	end = now_ns();
	if (i <= opt.warmup || (opt.count && i - opt.warmup != opt.count)) {
		fprintf(stderr, "%s: %llu messages arrived, expected %llu "
			"warm-up and %llu timed\n", peer_prog,
			(unsigned long long)i, (unsigned long long)opt.warmup,
			(unsigned long long)opt.count);
		goto out;
	}
	i -= opt.warmup;
	if (opt.json) {
		json_head("sub", "none", i, end - start);
		printf("}\n");
	} else {
		double secs = (double)(end - start) / 1e9;

		printf("%s %s %s %zu B (%s, %s receive): %llu messages in "
		       "%.3f s: %.0f msgs/s, %.3f Gb/s\n", peer_lib.name,
		       mode_name(), transport_name(), opt.size, pattern_name(),
		       opt.spin ? "polling" : "blocking",
		       (unsigned long long)i, secs, (double)i / secs,
		       (double)i * (double)opt.size * 8 / secs / 1e9);
	}
	rc = 0;
out:
	free(b);
	return rc;
}

/* ------------------------------------------------------------ processes */

static struct peer_sockopts sockopts(void)
{
	struct peer_sockopts so = { .size = opt.size, .hwm = opt.hwm };

	return so;
}

/* Wait until fd is readable: 1, or 0 after timeout_ms. */
static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

/*
 * The child: side 1 of a ping-pong (the pong) or side 0 of a throughput
 * run (the sender). It listens, tells the parent the URL through `wr`,
 * does its part, and keeps its socket open until the parent closes `rd`
 * (so nothing it sent is dropped at close).
 */
static int child(int rd, int wr, const char *ipc_path)
{
	enum peer_dir dir = opt.mode == MODE_PINGPONG ? PEER_BOTH : PEER_SEND;
	int side = opt.mode == MODE_PINGPONG ? 1 : 0;
	struct peer_sockopts so = sockopts();
	struct peer_sock *s;
	char url[256], c;
	size_t n;
	int rc;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
	    (!opt.pin_app && pin(opt.cpu[side]) < 0))
		return 1;
	if (peer_lib.start() < 0)
		return 1;
	s = peer_lib.listen(opt.pattern, dir, &so, opt.transport, ipc_path,
			    url, sizeof(url) - 1);
	if (!s) {
		peer_lib.stop();
		return 1;
	}
	/* The library's threads exist now and keep the mask they had. */
	if (opt.pin_app && pin(opt.cpu[side]) < 0) {
		peer_lib.close(s);
		peer_lib.stop();
		return 1;
	}
	n = strlen(url);
	url[n++] = '\n';
	if (write(wr, url, n) != (ssize_t)n) {
		/* EPIPE: the parent gave up and said why. */
		if (errno != EPIPE)
			fprintf(stderr, "%s: pipe: %s\n", peer_prog,
				strerror(errno));
		rc = -1;
	} else {
		rc = opt.mode == MODE_PINGPONG ? pong(s) : sender(s);
	}
	if (rc == 0 && (!wait_readable(rd, 3 * PEER_TIMEOUT_MS) ||
			read(rd, &c, 1) < 0))
		fprintf(stderr, "%s: the measuring side did not finish\n",
			peer_prog);
	peer_lib.close(s);
	peer_lib.stop();
	return rc == 0 ? 0 : 1;
}

static int reap(pid_t pid, int timeout_ms)
{
	int status;
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ns() > end) {
			fprintf(stderr, "%s: the %s side did not exit; "
				"killed\n", peer_prog,
				opt.mode == MODE_PINGPONG ? "pong" : "sending");
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(1000);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		fprintf(stderr, "%s: the other side died of signal %d\n",
			peer_prog, WTERMSIG(status));
	return -1;
}

static int run(void)
{
	enum peer_dir dir = opt.mode == MODE_PINGPONG ? PEER_BOTH : PEER_RECV;
	int side = opt.mode == MODE_PINGPONG ? 0 : 1;
	struct peer_sockopts so = sockopts();
	char ipc_path[PATH_MAX], url[256];
	int c2p[2], p2c[2], rc = -1, child_rc;
	struct peer_sock *s;
	size_t n = 0;
	ssize_t r;
	pid_t pid;
	const char *tmp = getenv("TMPDIR");

	snprintf(ipc_path, sizeof(ipc_path), "%s/muon-peer-%s.%ld.sock",
		 tmp && *tmp ? tmp : "/tmp", peer_lib.name, (long)getpid());
	if (pipe2(c2p, O_CLOEXEC) != 0 || pipe2(p2c, O_CLOEXEC) != 0) {
		fprintf(stderr, "%s: pipe: %s\n", peer_prog, strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", peer_prog, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(c2p[0]);
		close(p2c[1]);
		_exit(child(p2c[0], c2p[1], ipc_path));
	}
	close(c2p[1]);
	close(p2c[0]);
	if (!opt.pin_app && pin(opt.cpu[side]) < 0)
		goto done;
	/* The URL, one line. */
	while (n == 0 || url[n - 1] != '\n') {
		if (!wait_readable(c2p[0], PEER_TIMEOUT_MS)) {
			fprintf(stderr, "%s: the other side did not start "
				"listening within %d s\n", peer_prog,
				PEER_TIMEOUT_MS / 1000);
			goto done;
		}
		r = read(c2p[0], url + n, sizeof(url) - 1 - n);
		if (r <= 0 || (n += (size_t)r) == sizeof(url) - 1) {
			fprintf(stderr, "%s: the other side failed to "
				"listen\n", peer_prog);
			goto done;
		}
	}
	url[n - 1] = '\0';
	if (peer_lib.start() < 0)
		goto done;
	s = peer_lib.connect(opt.pattern, dir, &so, url);
	if (s && opt.pin_app && pin(opt.cpu[side]) < 0) {
		peer_lib.close(s);
		s = NULL;
	}
	if (s) {
		rc = opt.mode == MODE_PINGPONG ? ping(s) : receiver(s);
		fflush(stdout);
		close(p2c[1]); /* the child may close its socket now */
		p2c[1] = -1;
		peer_lib.close(s);
	}
	peer_lib.stop();
done:
	if (p2c[1] >= 0)
		close(p2c[1]);
	close(c2p[0]);
	child_rc = reap(pid, rc == 0 ? PEER_TIMEOUT_MS : 1000);
	if (opt.transport == PEER_IPC)
		unlink(ipc_path);
	return rc == 0 && child_rc == 0 ? 0 : -1;
}

/* -------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
"usage: %s pingpong|throughput [options]\n"
"  --transport tcp|ipc   loopback TCP (default) or a Unix socket (ipc://)\n"
"  --size N              payload bytes (default 32, at least 1)\n"
"  --count N             timed round trips or messages (default 100000 for\n"
"                        pingpong, 1000000 for throughput)\n"
"  --duration S          time the run for S seconds instead of --count\n"
"  --warmup N            untimed messages first (default 10000; >= 1)\n"
"  --cpu A,B             pin side 0 (ping, sender) to CPU A and side 1\n"
"                        (pong, receiver) to B (default 0,1); --cpu none:\n"
"                        no pinning\n"
"  --pin all|app         pin all threads of a side, the library's I/O\n"
"                        threads too (default), or only the one that\n"
"                        sends and receives (the library's threads may\n"
"                        then run on any CPU)\n"
"  --wait block|spin     receive blocking (default) or polling in a loop\n"
"                        of non-blocking receives\n"
"  --pattern pair|pipeline  sockets for throughput: pair (default: zmq's\n"
"                        PAIR, nng's pair1) or pipeline (PUSH/PULL, push0/\n"
"                        pull0); pingpong always uses pair\n"
"  --hwm N               queue limit in messages of each socket (default:\n"
"                        64 MiB worth, between 1000 and 1000000 for zmq;\n"
"                        8192, the most nng allows, for nng)\n"
"  --json                one line of JSON per result on stdout\n"
"Both sides are processes (the second forked); the ping and the receiver\n"
"measure. pingpong prints series rtt and half (rtt/2), throughput series\n"
"sub (messages/s at the receiver).\n", peer_prog);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

static int bad(const char *what, const char *val)
{
	fprintf(stderr, "%s: bad %s '%s' (--help for usage)\n", peer_prog,
		what, val ? val : "");
	return -1;
}

static int parse(int argc, char **argv)
{
	uint64_t v;
	int count_set = 0, warmup_set = 0;

	opt.transport = PEER_TCP;
	opt.pattern = PEER_PAIR;
	opt.size = 32;
	opt.cpu[0] = 0;
	opt.cpu[1] = 1;
	if (argc < 2)
		return bad("mode", "");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		exit(0);
	}
	if (strcmp(argv[1], "pingpong") == 0)
		opt.mode = MODE_PINGPONG;
	else if (strcmp(argv[1], "throughput") == 0)
		opt.mode = MODE_THROUGHPUT;
	else
		return bad("mode", argv[1]);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--json") == 0) {
			opt.json = 1;
			continue;
		}
		if (!val)
			return bad("option (missing value)", a);
		i++;
		if (strcmp(a, "--transport") == 0) {
			if (strcmp(val, "tcp") == 0)
				opt.transport = PEER_TCP;
			else if (strcmp(val, "ipc") == 0)
				opt.transport = PEER_IPC;
			else
				return bad("--transport", val);
		} else if (strcmp(a, "--size") == 0) {
			if (parse_u64(val, &v) || v < 1 || v > (64u << 20))
				return bad("--size (1 to 64 MiB)", val);
			opt.size = v;
		} else if (strcmp(a, "--count") == 0) {
			if (parse_u64(val, &v) || v < 1)
				return bad("--count", val);
			opt.count = v;
			count_set = 1;
		} else if (strcmp(a, "--duration") == 0) {
			char *end;
			double d = strtod(val, &end);

			if (*end || !(d > 0 && d < 86400))
				return bad("--duration", val);
			opt.duration_ns = (uint64_t)(d * 1e9);
		} else if (strcmp(a, "--warmup") == 0) {
			if (parse_u64(val, &v) || v < 1)
				return bad("--warmup (at least 1)", val);
			opt.warmup = v;
			warmup_set = 1;
		} else if (strcmp(a, "--cpu") == 0) {
			int x, y, k = -1;

			if (strcmp(val, "none") == 0) {
				opt.cpu[0] = opt.cpu[1] = -1;
			} else if (sscanf(val, "%d,%d%n", &x, &y, &k) == 2 &&
				   val[k] == '\0' && x >= 0 && y >= 0 &&
				   x < CPU_SETSIZE && y < CPU_SETSIZE) {
				opt.cpu[0] = x;
				opt.cpu[1] = y;
			} else {
				return bad("--cpu (A,B or none)", val);
			}
		} else if (strcmp(a, "--pin") == 0) {
			if (strcmp(val, "all") == 0)
				opt.pin_app = 0;
			else if (strcmp(val, "app") == 0)
				opt.pin_app = 1;
			else
				return bad("--pin", val);
		} else if (strcmp(a, "--wait") == 0) {
			if (strcmp(val, "block") == 0)
				opt.spin = 0;
			else if (strcmp(val, "spin") == 0)
				opt.spin = 1;
			else
				return bad("--wait", val);
		} else if (strcmp(a, "--pattern") == 0) {
			if (strcmp(val, "pair") == 0)
				opt.pattern = PEER_PAIR;
			else if (strcmp(val, "pipeline") == 0)
				opt.pattern = PEER_PIPELINE;
			else
				return bad("--pattern", val);
			opt.pattern_set = 1;
		} else if (strcmp(a, "--hwm") == 0) {
			if (parse_u64(val, &v) || v < 1 || v > INT_MAX)
				return bad("--hwm", val);
			opt.hwm = (int)v;
		} else {
			return bad("option", a);
		}
	}
	if (count_set && opt.duration_ns) {
		fprintf(stderr, "%s: give --count or --duration, not both\n",
			peer_prog);
		return -1;
	}
	if (opt.mode == MODE_PINGPONG) {
		if (opt.pattern_set && opt.pattern != PEER_PAIR) {
			fprintf(stderr, "%s: pingpong uses pair sockets\n",
				peer_prog);
			return -1;
		}
		opt.pattern = PEER_PAIR;
	}
	if (!count_set && !opt.duration_ns)
		opt.count = opt.mode == MODE_PINGPONG ? 100000 : 1000000;
	if (!warmup_set)
		opt.warmup = 10000;
	return 0;
}

int main(int argc, char **argv)
{
	static char prog[64];

	snprintf(prog, sizeof(prog), "muon-peer-%s", peer_lib.name);
	peer_prog = prog;
	if (parse(argc, argv) < 0)
		return 2;
	/* A ping or receiver gone makes the other side's send fail, not
	 * the process die. */
	signal(SIGPIPE, SIG_IGN);
	return run() == 0 ? 0 : 1;
}
