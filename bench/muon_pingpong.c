/*
 * muon-bench: ping-pong through muon. Each side's context listens on its
 * own endpoint and peers to the other's, publishes on its own topic and
 * subscribes to the other's; the ping process (the parent) times each
 * round trip, with one message in flight, both sides busy-polling.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <muon/muon.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOPIC_PING "muon-bench.ping"
#define TOPIC_PONG "muon-bench.pong"
#define EP_LEN 128 /* muon_ctx_listen_endpoint() needs at most this */
#define HELD_LOGS 8

/* What both processes know before fork. */
struct run {
	const struct bench_opts *o;
	char ping_ep[EP_LEN];    /* where the ping listens */
	char pong_listen[EP_LEN]; /* what the pong asks to listen on */
};

/* One side's muon objects plus what its callbacks report to its loop. */
struct side {
	const struct bench_opts *o;
	const char *who;
	muon_ctx_t *ctx;
	muon_pub_t *pub;
	muon_sub_t *sub;
	unsigned char *buf; /* outgoing payload, overwritten by the reply */
	int have;           /* a message arrived and was copied to buf */
	int bad;            /* something arrived that breaks the ping-pong */
	unsigned events;    /* events other than IMAGE_UP / BACKPRESSURE */
	char note[256];     /* why `bad`, or the last such event */
	int quiet;          /* set-up or tear-down: hold lines below error */
	unsigned nheld;
	char held[HELD_LOGS][256];
};

static void muon_fail(const struct side *s, const char *call, int64_t rc)
{
	char msg[512];

	/* Copied first: the message is only valid until the next muon call. */
	snprintf(msg, sizeof(msg), "%s", muon_errmsg());
	fprintf(stderr, "%s: %s: %s failed: %s: %s\n", BENCH_PROG, s->who, call,
		muon_strerror((int)rc), msg);
}

static const char *event_name(muon_event_type_t t)
{
	switch (t) {
	case MUON_EVENT_IMAGE_UP: return "IMAGE_UP";
	case MUON_EVENT_IMAGE_DOWN: return "IMAGE_DOWN";
	case MUON_EVENT_LOSS: return "LOSS";
	case MUON_EVENT_BACKPRESSURE: return "BACKPRESSURE";
	case MUON_EVENT_ERROR: return "ERROR";
	case MUON_EVENT_SLOW_DROP: return "SLOW_DROP";
	}
	return "unknown";
}

static const char *level_name(muon_log_level_t level)
{
	switch (level) {
	case MUON_LOG_NONE: break;
	case MUON_LOG_ERROR: return "error";
	case MUON_LOG_WARN: return "warn";
	case MUON_LOG_INFO: return "info";
	case MUON_LOG_DEBUG: return "debug";
	}
	return "log";
}

/*
 * Each side dials the other, so whichever creates its context first dials a
 * port nobody listens on yet, and muon warns about the refused connection
 * before its retry succeeds; at the end, whichever context closes second
 * may warn that the first one is gone. Such lines, from set-up and
 * tear-down only, are held back and shown only if that phase fails.
 */
static void on_log(void *arg, muon_log_level_t level, const char *message)
{
	struct side *s = arg;

	if (s->quiet && level != MUON_LOG_ERROR) {
		snprintf(s->held[s->nheld++ % HELD_LOGS], sizeof(s->held[0]),
			 "muon %s: %s", level_name(level), message);
		return;
	}
	fprintf(stderr, "%s: %s: muon %s: %s\n", BENCH_PROG, s->who,
		level_name(level), message);
}

static void show_held_logs(struct side *s)
{
	unsigned first = s->nheld > HELD_LOGS ? s->nheld - HELD_LOGS : 0;

	for (unsigned i = first; i < s->nheld; i++)
		fprintf(stderr, "%s: %s: %s\n", BENCH_PROG, s->who,
			s->held[i % HELD_LOGS]);
	s->nheld = 0;
}

static void quiet_begin(struct side *s)
{
	s->quiet = 1;
	s->nheld = 0;
}

static void quiet_end(struct side *s, int failed)
{
	if (failed)
		show_held_logs(s);
	s->quiet = 0;
	s->nheld = 0;
}

static void on_event(void *arg, const muon_event_t *ev)
{
	struct side *s = arg;

	if (ev->type == MUON_EVENT_IMAGE_UP ||
	    ev->type == MUON_EVENT_BACKPRESSURE)
		return;
	s->events++;
	snprintf(s->note, sizeof(s->note), "%s event on '%s': %s",
		 event_name(ev->type), ev->topic ? ev->topic : "-",
		 ev->detail);
	/* A lost ping or pong would otherwise only show as a 10 s timeout. */
	if (ev->type == MUON_EVENT_LOSS)
		s->bad = 1;
}

/* Copy out, like the raw baseline does, rather than publish from inside
 * the callback, where back-pressure could not be waited out by polling. */
static void on_msg(void *arg, const muon_msg_t *m)
{
	struct side *s = arg;

	if (m->len != s->o->size || s->have) {
		snprintf(s->note, sizeof(s->note),
			 "unexpected message on '%s': seq %llu, %zu bytes%s",
			 m->topic, (unsigned long long)m->seq, m->len,
			 s->have ? ", while one was pending" : "");
		s->bad = 1;
		return;
	}
	memcpy(s->buf, m->data, m->len);
	s->have = 1;
}

static void report_bad(const struct side *s)
{
	fprintf(stderr, "%s: %s: %s\n", BENCH_PROG, s->who, s->note);
}

/* ------------------------------------------------------------ set-up */

static uint32_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return (uint32_t)p;
}

/* muon requires max_msg_size <= ring_size/4 and <= send_log_size/4. */
static void fit_size(muon_ctx_config_t *cfg, size_t size)
{
	uint32_t need;

	if (size <= cfg->max_msg_size)
		return;
	cfg->max_msg_size = (uint32_t)size;
	need = pow2_at_least(4 * (uint64_t)size);
	if (cfg->ring_size < need)
		cfg->ring_size = need;
	if (cfg->send_log_size < need)
		cfg->send_log_size = need;
}

static int side_init(struct side *s, const struct bench_opts *o,
		     const char *who)
{
	memset(s, 0, sizeof(*s));
	s->o = o;
	s->who = who;
	quiet_begin(s);
	s->buf = malloc(o->size);
	if (!s->buf) {
		fprintf(stderr, "%s: %s: out of memory\n", BENCH_PROG, who);
		return -1;
	}
	memset(s->buf, 0xa5, o->size);
	return 0;
}

static int side_open(struct side *s, const char *name, const char *listen,
		     const char *peers, const char *pub_topic,
		     const char *sub_topic)
{
	muon_ctx_config_t cfg;
	muon_sub_config_t scfg;
	int rc;

	muon_ctx_config_init(&cfg);
	cfg.name = name;
	cfg.listen = listen;
	cfg.peers = peers;
	cfg.transport = bench_transport_name(s->o->transport);
	cfg.ignore_env = 1;
	cfg.log_level = MUON_LOG_WARN;
	cfg.log_fn = on_log;
	cfg.log_arg = s;
	fit_size(&cfg, s->o->size);
	rc = muon_ctx_create(&cfg, &s->ctx);
	if (rc < 0) {
		muon_fail(s, "muon_ctx_create", rc);
		fprintf(stderr, "%s: %s: listen %s, peers %s\n", BENCH_PROG,
			s->who, listen, peers);
		return -1;
	}
	rc = muon_pub_create(s->ctx, pub_topic, NULL, &s->pub);
	if (rc < 0) {
		muon_fail(s, "muon_pub_create", rc);
		goto destroy_ctx;
	}
	muon_sub_config_init(&scfg);
	scfg.msg_fn = on_msg;
	scfg.msg_arg = s;
	scfg.event_fn = on_event;
	scfg.event_arg = s;
	rc = muon_sub_create(s->ctx, sub_topic, &scfg, &s->sub);
	if (rc < 0) {
		muon_fail(s, "muon_sub_create", rc);
		goto destroy_pub;
	}
	return 0;

destroy_pub:
	muon_pub_destroy(s->pub);
	s->pub = NULL;
destroy_ctx:
	muon_ctx_destroy(s->ctx);
	s->ctx = NULL;
	return -1;
}

static void side_close(struct side *s)
{
	muon_sub_destroy(s->sub);
	muon_pub_destroy(s->pub);
	muon_ctx_destroy(s->ctx);
	s->sub = NULL;
	s->pub = NULL;
	s->ctx = NULL;
}

static void side_free(struct side *s)
{
	side_close(s);
	/* Lines still held belong to a phase that did not finish. */
	quiet_end(s, 1);
	free(s->buf);
	s->buf = NULL;
}

/*
 * A set-up step: poll the context (once there is one) until `cond` says
 * done (1) or failed (-1). Nothing is timed yet, so it naps between rounds
 * instead of burning the CPU the other side may need.
 */
typedef int (*cond_fn)(struct side *s, void *arg);

static int setup_wait(struct side *s, struct bench_child *child, cond_fn cond,
		      void *arg, const char *what)
{
	const struct timespec nap = { 0, 50000 };
	uint64_t deadline = bench_now_ns() + BENCH_TIMEOUT_NS;

	for (;;) {
		int r;

		if (s->ctx) {
			r = muon_ctx_poll(s->ctx, 0);
			if (r < 0) {
				muon_fail(s, "muon_ctx_poll", r);
				return -1;
			}
		}
		r = cond(s, arg);
		if (r != 0)
			return r > 0 ? 0 : -1;
		if (s->bad) {
			report_bad(s);
			return -1;
		}
		if (child && bench_child_check(child) != 0)
			return -1;
		if (bench_now_ns() >= deadline)
			break;
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "%s: %s: timed out after 10 s waiting for %s\n",
		BENCH_PROG, s->who, what);
	if (s->events)
		fprintf(stderr, "%s: %s: last event: %s\n", BENCH_PROG, s->who,
			s->note);
	return -1;
}

struct pipe_msg {
	int fd;
	void *buf;
	size_t len;
};

static int cond_pipe_msg(struct side *s, void *arg)
{
	struct pipe_msg *p = arg;
	int r = bench_pipe_try_read(p->fd, p->buf, p->len);

	if (r < 0)
		fprintf(stderr, "%s: %s: the other side went away during "
			"set-up\n", BENCH_PROG, s->who);
	return r;
}

/* Our subscription has an image and, if `peer_fd` >= 0, the other side
 * has said the same of its own. */
struct ready {
	int peer_fd;
	int peer_ready;
};

static int cond_ready(struct side *s, void *arg)
{
	struct ready *r = arg;
	int n;

	if (r->peer_fd >= 0 && !r->peer_ready) {
		char c;
		struct pipe_msg m = { r->peer_fd, &c, 1 };

		n = cond_pipe_msg(s, &m);
		if (n < 0)
			return -1;
		r->peer_ready = n;
	}
	n = muon_sub_images(s->sub);
	if (n < 0) {
		muon_fail(s, "muon_sub_images", n);
		return -1;
	}
	return n > 0 && (r->peer_fd < 0 || r->peer_ready);
}

/* The ping closes its pipe when it has seen the last pong. */
static int cond_peer_done(struct side *s, void *arg)
{
	int fd = *(int *)arg;
	char c;

	(void)s;
	return bench_pipe_try_read(fd, &c, 1) < 0 ? 1 : 0;
}

/* ---------------------------------------------------------- hot path */

static int publish_retry(struct side *s, struct bench_spin *spin)
{
	for (;;) {
		int64_t rc = muon_publish(s->pub, s->buf, s->o->size);
		int prc;

		if (rc >= 0)
			return 0;
		if (rc != MUON_EBACKPRESSURE && rc != MUON_EAGAIN) {
			muon_fail(s, "muon_publish", rc);
			return -1;
		}
		prc = muon_ctx_poll(s->ctx, 0);
		if (prc < 0) {
			muon_fail(s, "muon_ctx_poll", prc);
			return -1;
		}
		if (bench_spin_check(spin) != 0)
			return -1;
	}
}

static int wait_msg(struct side *s, struct bench_spin *spin)
{
	while (!s->have && !s->bad) {
		int rc = muon_ctx_poll(s->ctx, 0);

		if (rc < 0) {
			muon_fail(s, "muon_ctx_poll", rc);
			return -1;
		}
		if (bench_spin_check(spin) != 0) {
			if (s->events)
				fprintf(stderr, "%s: %s: last event: %s\n",
					BENCH_PROG, s->who, s->note);
			return -1;
		}
	}
	if (s->bad) {
		report_bad(s);
		return -1;
	}
	s->have = 0;
	return 0;
}

static int pong_loop(struct side *s)
{
	uint64_t total = s->o->warmup + s->o->count;
	struct bench_spin spin = { .yield = s->o->shared_cpu, .who = "pong" };

	for (uint64_t i = 0; i < total; i++) {
		bench_spin_start(&spin, "the next ping");
		if (wait_msg(s, &spin) != 0 || publish_retry(s, &spin) != 0)
			return -1;
	}
	return 0;
}

static int ping_loop(struct side *s, struct bench_child *child,
		     uint64_t *samples)
{
	const struct bench_opts *o = s->o;
	uint64_t total = o->warmup + o->count;
	struct bench_spin spin = { .yield = o->shared_cpu, .child = child,
				   .who = "ping" };

	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0, t1, got;

		bench_put_counter(s->buf, o->size, i);
		bench_spin_start(&spin, "the pong's reply");
		t0 = bench_now_ns();
		if (publish_retry(s, &spin) != 0 || wait_msg(s, &spin) != 0)
			return -1;
		t1 = bench_now_ns();
		got = bench_get_counter(s->buf, o->size);
		if (got != bench_counter_mask(i, o->size)) {
			fprintf(stderr, "%s: ping: round trip %llu came back "
				"with counter %llu\n", BENCH_PROG,
				(unsigned long long)i, (unsigned long long)got);
			return -1;
		}
		if (i >= o->warmup)
			samples[i - o->warmup] = t1 - t0;
	}
	return 0;
}

/* Anything muon had to work around during the run skews the figures. */
static void report_counters(const struct side *s)
{
	muon_counters_t c;
	int rc;

	c.size = sizeof(c);
	rc = muon_ctx_counters(s->ctx, &c);
	if (rc < 0) {
		muon_fail(s, "muon_ctx_counters", rc);
		return;
	}
	if (c.backpressure || c.losses || c.disconnects || s->events)
		fprintf(stderr, "%s: note: ping saw %llu back-pressure, %llu "
			"loss events, %llu disconnects, %u other events\n",
			BENCH_PROG, (unsigned long long)c.backpressure,
			(unsigned long long)c.losses,
			(unsigned long long)c.disconnects, s->events);
	if (s->events)
		fprintf(stderr, "%s: note: the last of those events: %s\n",
			BENCH_PROG, s->note);
}

/* ------------------------------------------------------------- sides */

static int pong_main(void *arg, int rd, int wr)
{
	struct run *run = arg;
	struct side s;
	char ep[EP_LEN] = { 0 };
	struct ready ready = { .peer_fd = -1 };
	int rc;

	if (side_init(&s, run->o, "pong") != 0)
		return 1;
	if (side_open(&s, "muon-bench-pong", run->pong_listen, run->ping_ep,
		      TOPIC_PONG, TOPIC_PING) != 0)
		goto free_side;
	rc = muon_ctx_listen_endpoint(s.ctx, 0, ep, sizeof(ep));
	if (rc < 0) {
		muon_fail(&s, "muon_ctx_listen_endpoint", rc);
		goto free_side;
	}
	if (bench_pipe_write(wr, ep, sizeof(ep)) != 0)
		goto free_side;
	if (setup_wait(&s, NULL, cond_ready, &ready,
		       "an image of '" TOPIC_PING "'") != 0)
		goto free_side;
	quiet_end(&s, 0);
	if (bench_pipe_write(wr, "R", 1) != 0 || pong_loop(&s) != 0)
		goto free_side;
	/* Keep polling until the ping has its last reply: leaving earlier
	 * could cut off data still on its way. */
	quiet_begin(&s);
	if (setup_wait(&s, NULL, cond_peer_done, &rd, "the ping to finish"))
		goto free_side;
	side_close(&s);
	quiet_end(&s, 0);
	side_free(&s);
	return 0;

free_side:
	side_free(&s);
	return 1;
}

/* A free TCP port on `sa` (whose port is 0), in host order. */
static int probe_tcp_port(struct sockaddr *sa, socklen_t sa_len,
			  const char *addr, uint16_t *port)
{
	struct sockaddr_storage got;
	socklen_t len = sizeof(got);
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = -1;

	if (fd < 0)
		goto fail;
	if (bind(fd, sa, sa_len) != 0 ||
	    getsockname(fd, (struct sockaddr *)&got, &len) != 0)
		goto close_fd;
	*port = ntohs(got.ss_family == AF_INET6 ?
		      ((struct sockaddr_in6 *)&got)->sin6_port :
		      ((struct sockaddr_in *)&got)->sin_port);
	rc = 0;
close_fd:
	close(fd);
fail:
	if (rc != 0) {
		int e = errno;

		fprintf(stderr, "%s: cannot find a free TCP port on %s: %s\n",
			BENCH_PROG, addr, strerror(e));
		if (e == EADDRNOTAVAIL)
			fprintf(stderr, "%s: %s is not an address of this "
				"host (--addr, MUON_RDMA_ADDR)\n", BENCH_PROG,
				addr);
	}
	return rc;
}

static int probe_loopback_port(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return probe_tcp_port((struct sockaddr *)&sa, sizeof(sa), "127.0.0.1",
			      port);
}

/*
 * The verbs endpoints name the RDMA device's own IP address. rdma_cm ports
 * are a space of their own, but a port that TCP hands out on that address
 * is as good a guess as the tcp mode's, and probing it here, before fork,
 * needs no RDMA state that the pong process would inherit. IPv6 literals
 * go in brackets, as in tcp:// endpoints.
 */
static int verbs_endpoints(struct run *run, const char *addr)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	const char *l, *r;
	uint16_t port;
	int rc;

	rc = getaddrinfo(addr, "0", &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "%s: --addr %s: not an IPv4 or IPv6 address: "
			"%s\n", BENCH_PROG, addr, gai_strerror(rc));
		return -1;
	}
	rc = probe_tcp_port(ai->ai_addr, ai->ai_addrlen, addr, &port);
	l = ai->ai_family == AF_INET6 ? "[" : "";
	r = ai->ai_family == AF_INET6 ? "]" : "";
	freeaddrinfo(ai);
	if (rc != 0)
		return -1;
	snprintf(run->ping_ep, EP_LEN, "verbs://%s%s%s:%u", l, addr, r, port);
	snprintf(run->pong_listen, EP_LEN, "verbs://%s%s%s:0", l, addr, r);
	return 0;
}

/*
 * Both sides must know the other's endpoint when they create their
 * context. tcp and verbs work alike: the pong listens on port 0 and
 * reports the real port through the pipe; the ping's port must be fixed
 * before that, so it is probed: the kernel hands out a port that no one
 * holds, and it stays free for the few milliseconds until the ping
 * listens on it (a clash is reported).
 */
static int run_endpoints(struct run *run, const struct bench_opts *o)
{
	uint16_t port;

	run->o = o;
	if (o->transport == BENCH_SHM) {
		snprintf(run->ping_ep, EP_LEN, "shm://muonbench-%ld-a",
			 (long)getpid());
		snprintf(run->pong_listen, EP_LEN, "shm://muonbench-%ld-b",
			 (long)getpid());
		return 0;
	}
	if (o->transport == BENCH_VERBS)
		return verbs_endpoints(run, o->addr);
	if (probe_loopback_port(&port) != 0)
		return -1;
	snprintf(run->ping_ep, EP_LEN, "tcp://127.0.0.1:%u", port);
	snprintf(run->pong_listen, EP_LEN, "tcp://127.0.0.1:0");
	return 0;
}

static int ping_setup(struct side *s, struct run *run,
		      struct bench_child *child)
{
	char pong_ep[EP_LEN];
	struct pipe_msg m = { child->from_child, pong_ep, sizeof(pong_ep) };
	struct ready ready = { .peer_fd = child->from_child };

	if (setup_wait(s, child, cond_pipe_msg, &m, "the pong's endpoint"))
		return -1;
	pong_ep[EP_LEN - 1] = '\0';
	if (side_open(s, "muon-bench-ping", run->ping_ep, pong_ep, TOPIC_PING,
		      TOPIC_PONG) != 0)
		return -1;
	if (setup_wait(s, child, cond_ready, &ready,
		       "an image of '" TOPIC_PONG "' on both sides") != 0)
		return -1;
	quiet_end(s, 0);
	return 0;
}

int bench_muon_pingpong(const struct bench_opts *o, uint64_t *samples)
{
	struct run run;
	struct side s;
	struct bench_child child;
	int rc;

	if (run_endpoints(&run, o) != 0 || side_init(&s, o, "ping") != 0)
		return -1;
	if (bench_child_spawn(&child, o->pong_cpu, pong_main, &run) != 0)
		goto free_side;
	if (ping_setup(&s, &run, &child) != 0 ||
	    ping_loop(&s, &child, samples) != 0)
		goto kill_child;
	report_counters(&s);
	/* The pong closes first (on EOF), then we do: one at a time keeps
	 * tear-down simple to reason about. */
	quiet_begin(&s);
	rc = bench_child_finish(&child, BENCH_TIMEOUT_NS);
	side_close(&s);
	quiet_end(&s, rc != 0);
	side_free(&s);
	return rc;

kill_child:
	bench_child_kill(&child);
free_side:
	side_free(&s);
	return -1;
}
