/*
 * muon-bench: ping-pong through muon. The pong's context listens, the
 * ping's dials it; each publishes on its own topic and subscribes to the
 * other's over that one connection; the ping (the parent process, or the
 * main thread with --layout thread, where the pong is a thread with a
 * context of its own) times each round trip, with one message in flight,
 * both sides busy-polling. After
 * the last round trip the ping publishes an end marker, a message of
 * another length, which is how the pong knows the run is over when it is
 * timed by --duration rather than counted.
 *
 * With --role pub or sub each host runs one side (pub: ping, sub: pong),
 * and the two find each other through the discovery daemons instead of
 * static peers, on topics named after --run-id.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"
#include "raw.h"
#include "muonutil.h"

#include <muon/muon.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC_PING "muon-bench.ping"
#define TOPIC_PONG "muon-bench.pong"
#define TOPIC_LEN 300 /* "muon-bench.<run id>.ping"; muon allows 255 */
#define EP_LEN 128 /* muon_ctx_listen_endpoint() needs at most this */

/* How long the sub side of a two-host run waits for the pub side to show
 * up: long enough to start the other host's half by hand. */
#define ROLE_WAIT_NS (120ull * 1000000000ull)

/* Two hosts: the connections must have stayed as they are this long
 * before the round trips start (see cond_both_ways). */
#define SETTLE_NS (300ull * 1000000ull)

/* What both sides know before the pong starts. */
struct run {
	const struct bench_opts *o;
	char pong_listen[EP_LEN]; /* what the pong asks to listen on */
	const _Atomic int *stop;  /* a pong thread: the ping gave up */
};

/* One side's muon objects plus what its callbacks report to its loop. */
struct side {
	const struct bench_opts *o;
	struct bench_logsink log; /* log.who: "ping" or "pong" */
	muon_ctx_t *ctx;
	muon_pub_t *pub;
	muon_sub_t *sub;
	unsigned char *buf; /* outgoing payload, overwritten by the reply */
	int is_pong;        /* the side that accepts an end marker */
	int have;           /* a message arrived and was copied to buf */
	int ended;          /* the pong got the ping's end marker */
	int bad;            /* something arrived that breaks the ping-pong */
	uint64_t peer_id;   /* the other side's context, from its messages */
	int peer_closed;    /* its stream is gone: closed, or down for good */
	int peer_down;      /* its stream went down on some connection */
	const _Atomic int *stop; /* a pong thread: the ping gave up */
	unsigned events;    /* events other than IMAGE_UP / BACKPRESSURE */
	unsigned events0;   /* of those, how many came before the run */
	muon_counters_t c0; /* the counters when the run started */
	char note[256];     /* why `bad`, or the last such event */
};

static void on_event(void *arg, const muon_event_t *ev)
{
	struct side *s = arg;

	if (ev->type == MUON_EVENT_IMAGE_UP ||
	    ev->type == MUON_EVENT_BACKPRESSURE)
		return;
	/*
	 * Only the stream we have heard from counts: with discovery, a
	 * context of a previous run (another --size) may still come and go.
	 * And only a close is the end of it: the two contexts dial each
	 * other, and when muon drops one of the two connections the stream's
	 * image goes down on it and comes back up on the other.
	 */
	if (ev->type == MUON_EVENT_IMAGE_DOWN && s->peer_id &&
	    ev->publisher_id == s->peer_id) {
		s->peer_down = 1;
		if (ev->reason == MUON_DOWN_CLOSED)
			s->peer_closed = 1;
	}
	s->events++;
	snprintf(s->note, sizeof(s->note), "%s event on '%s': %s",
		 muon_event_name(ev->type), ev->topic ? ev->topic : "-",
		 ev->detail);
	/* A lost ping or pong would otherwise only show as a 10 s timeout. */
	if (ev->type == MUON_EVENT_LOSS)
		s->bad = 1;
}

/* The end marker differs from every ping in its length alone. */
static size_t end_len(const struct bench_opts *o)
{
	return o->size ? 0 : 1;
}

/* Copy out, like the raw baseline does, rather than publish from inside
 * the callback, where back-pressure could not be waited out by polling. */
static void on_msg(void *arg, const muon_msg_t *m)
{
	struct side *s = arg;
	int end = s->is_pong && m->len == end_len(s->o);

	if ((m->len != s->o->size && !end) || s->have || s->ended ||
	    (s->peer_id && m->publisher_id != s->peer_id)) {
		snprintf(s->note, sizeof(s->note),
			 "unexpected message on '%s': seq %llu, %zu bytes%s",
			 m->topic, (unsigned long long)m->seq, m->len,
			 s->have ? ", while one was pending" :
			 s->ended ? ", after the end marker" :
			 s->peer_id && m->publisher_id != s->peer_id ?
			 ", from a second publisher" : "");
		s->bad = 1;
		return;
	}
	s->peer_id = m->publisher_id;
	if (end) {
		s->ended = 1;
		return;
	}
	memcpy(s->buf, m->data, m->len);
	s->have = 1;
}

static void report_bad(const struct side *s)
{
	fprintf(stderr, "%s: %s: %s\n", BENCH_PROG, s->log.who, s->note);
}

/* ------------------------------------------------------------ set-up */

static void fit_size(muon_ctx_config_t *cfg, size_t size)
{
	uint32_t need;

	if (size <= cfg->max_msg_size)
		return;
	cfg->max_msg_size = (uint32_t)size;
	need = bench_pow2_at_least(4 * (uint64_t)size);
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
	snprintf(s->log.who, sizeof(s->log.who), "%s", who);
	bench_quiet_begin(&s->log);
	s->buf = bench_payload_new(o->size, who);
	return s->buf ? 0 : -1;
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
	if (s->o->role != BENCH_ROLE_BOTH) {
		cfg.discovery = s->o->discovery;
		cfg.secret_file = s->o->secret_file;
	}
	cfg.transport = bench_transport_name(s->o->transport);
	cfg.ignore_env = 1;
	cfg.log_level = MUON_LOG_WARN;
	cfg.log_fn = bench_on_log;
	cfg.log_arg = &s->log;
	fit_size(&cfg, s->o->size);
	rc = muon_ctx_create(&cfg, &s->ctx);
	if (rc < 0) {
		bench_muon_fail(s->log.who, "muon_ctx_create", rc);
		fprintf(stderr, "%s: %s: listen %s, peers %s, discovery %s\n",
			BENCH_PROG, s->log.who, listen ? listen : "(default)",
			peers ? peers : "-",
			cfg.discovery ? cfg.discovery : "-");
		return -1;
	}
	rc = muon_pub_create(s->ctx, pub_topic, NULL, &s->pub);
	if (rc < 0) {
		bench_muon_fail(s->log.who, "muon_pub_create", rc);
		goto destroy_ctx;
	}
	muon_sub_config_init(&scfg);
	scfg.msg_fn = on_msg;
	scfg.msg_arg = s;
	scfg.event_fn = on_event;
	scfg.event_arg = s;
	rc = muon_sub_create(s->ctx, sub_topic, &scfg, &s->sub);
	if (rc < 0) {
		bench_muon_fail(s->log.who, "muon_sub_create", rc);
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
	bench_quiet_end(&s->log, 1);
	free(s->buf);
	s->buf = NULL;
}

/*
 * A set-up step: poll the context (once there is one) until `cond` says
 * done (1) or failed (-1). Nothing is timed yet, so it naps between rounds
 * instead of burning the CPU the other side may need.
 */
typedef int (*cond_fn)(struct side *s, void *arg);

struct side_step {
	struct side *s;
	struct bench_child *child;
	cond_fn cond;
	void *arg;
};

static int side_step(void *arg)
{
	struct side_step *a = arg;
	int r = a->cond(a->s, a->arg);

	if (r)
		return r;
	if (a->s->stop &&
	    atomic_load_explicit(a->s->stop, memory_order_acquire))
		return -1;
	if (a->s->bad) {
		report_bad(a->s);
		return -1;
	}
	if (a->child && bench_child_check(a->child) != 0)
		return -1;
	return 0;
}

static int setup_wait(struct side *s, struct bench_child *child, cond_fn cond,
		      void *arg, uint64_t timeout_ns, const char *what)
{
	struct side_step a = { s, child, cond, arg };

	return bench_setup_wait(s->ctx, s->log.who, side_step, &a, timeout_ns,
				what, &s->events, s->note);
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
			"set-up\n", BENCH_PROG, s->log.who);
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
		bench_muon_fail(s->log.who, "muon_sub_images", n);
		return -1;
	}
	return n > 0 && (r->peer_fd < 0 || r->peer_ready);
}

/*
 * Two hosts, no pipe: the ping may start once the pong's stream reaches
 * us and ours reaches the pong (it has a subscriber), so that neither the
 * first ping nor the first reply falls before a subscription's start; and
 * once there has been one connection for SETTLE_NS. Both sides subscribe
 * to the other's topic, so discovery has both dial; muon then closes one
 * of the two connections and moves the streams to the other. That move
 * once lost messages (fixed in muon: the hand-over in core/conn.c, tested
 * by unit.handover.*); it still costs a replay and a reconnect, which would
 * show as outliers if it fell into the timed round trips.
 */
struct settle {
	uint64_t connects, disconnects;
	uint64_t since;     /* when they last changed */
};

static int cond_both_ways(struct side *s, void *arg)
{
	struct settle *st = arg;
	int images = muon_sub_images(s->sub);
	int subs = muon_pub_subscribers(s->pub);
	muon_counters_t c;
	uint64_t now = bench_now_ns();
	int rc;

	if (images < 0 || subs < 0) {
		bench_muon_fail(s->log.who, images < 0 ? "muon_sub_images" :
			  "muon_pub_subscribers", images < 0 ? images : subs);
		return -1;
	}
	c.size = sizeof(c);
	rc = muon_ctx_counters(s->ctx, &c);
	if (rc < 0) {
		bench_muon_fail(s->log.who, "muon_ctx_counters", rc);
		return -1;
	}
	if (!st->since || c.connects != st->connects ||
	    c.disconnects != st->disconnects) {
		st->connects = c.connects;
		st->disconnects = c.disconnects;
		st->since = now;
	}
	return images > 0 && subs > 0 && c.connects == c.disconnects + 1 &&
	       now - st->since >= SETTLE_NS;
}

/* The ping closes its pipe when it has seen the last pong. */
static int cond_peer_done(struct side *s, void *arg)
{
	int fd = *(int *)arg;
	char c;

	(void)s;
	return bench_pipe_try_read(fd, &c, 1) < 0 ? 1 : 0;
}

/* Two hosts: the pong closes its context once it has the end marker. */
static int cond_peer_gone(struct side *s, void *arg)
{
	(void)arg;
	return s->peer_down;
}

/* ---------------------------------------------------------- hot path */

static int publish_retry(struct side *s, size_t len, struct bench_spin *spin)
{
	for (;;) {
		int64_t rc = muon_publish(s->pub, s->buf, len);
		int prc;

		if (rc >= 0)
			return 0;
		if (rc != MUON_EBACKPRESSURE && rc != MUON_EAGAIN) {
			bench_muon_fail(s->log.who, "muon_publish", rc);
			return -1;
		}
		prc = muon_ctx_poll(s->ctx, 0);
		if (prc < 0) {
			bench_muon_fail(s->log.who, "muon_ctx_poll", prc);
			return -1;
		}
		if (bench_spin_check(spin) != 0)
			return -1;
	}
}

/* 0: a message is in s->buf; 1: the end marker came (pong only); -1. */
static int wait_msg(struct side *s, struct bench_spin *spin)
{
	while (!s->have && !s->ended && !s->bad && !s->peer_closed) {
		int rc = muon_ctx_poll(s->ctx, 0);

		if (rc < 0) {
			bench_muon_fail(s->log.who, "muon_ctx_poll", rc);
			return -1;
		}
		/* Down on one connection may be up on another; down on all
		 * is gone: no need to sit out the timeout. */
		if (s->peer_down) {
			s->peer_down = 0;
			if (muon_sub_images(s->sub) == 0)
				s->peer_closed = 1;
		}
		if (bench_spin_check(spin) != 0) {
			if (s->events)
				fprintf(stderr, "%s: %s: last event: %s\n",
					BENCH_PROG, s->log.who, s->note);
			return -1;
		}
	}
	if (s->bad) {
		report_bad(s);
		return -1;
	}
	if (s->have) {
		s->have = 0;
		return 0;
	}
	if (s->ended)
		return 1;
	fprintf(stderr, "%s: %s: the other side's stream went down in the "
		"middle of the run (%s)\n", BENCH_PROG, s->log.who, s->note);
	return -1;
}

/* Answers pings until the end marker: returns how many, or -1. */
static int64_t pong_loop(struct side *s)
{
	struct bench_spin spin = { .yield = s->o->shared_cpu, .who = "pong",
				   .abort = s->stop };
	int64_t n = 0;

	for (;;) {
		int r;

		bench_spin_start(&spin, "the next ping");
		r = wait_msg(s, &spin);
		if (r < 0)
			return -1;
		if (r > 0)
			return n;
		if (publish_retry(s, s->o->size, &spin) != 0)
			return -1;
		n++;
	}
}

static int ping_loop(struct side *s, struct bench_child *child,
		     struct bench_pp *pp)
{
	const struct bench_opts *o = s->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .child = child,
				   .who = "ping" };
	uint64_t t0, t1;

	do {
		uint64_t got;

		bench_put_counter(s->buf, o->size, pp->i);
		bench_spin_start(&spin, "the pong's reply");
		t0 = bench_now_ns();
		if (publish_retry(s, o->size, &spin) != 0 ||
		    wait_msg(s, &spin) != 0)
			return -1;
		t1 = bench_now_ns();
		got = bench_get_counter(s->buf, o->size);
		if (got != bench_counter_mask(pp->i, o->size)) {
			fprintf(stderr, "%s: ping: round trip %llu came back "
				"with counter %llu\n", BENCH_PROG,
				(unsigned long long)pp->i,
				(unsigned long long)got);
			return -1;
		}
	} while (bench_pp_next(pp, t0, t1));
	/* The pong does not count: it answers until this. */
	bench_spin_start(&spin, "room for the end marker");
	return publish_retry(s, end_len(o), &spin);
}

/*
 * The counters and events when the timed loop starts: set-up has its own
 * (with discovery both contexts dial, and muon closes one of the two
 * connections), which do not concern the figures.
 */
static int mark_counters(struct side *s)
{
	int rc;

	s->c0.size = sizeof(s->c0);
	rc = muon_ctx_counters(s->ctx, &s->c0);
	if (rc < 0) {
		bench_muon_fail(s->log.who, "muon_ctx_counters", rc);
		return -1;
	}
	s->events0 = s->events;
	return 0;
}

/* Anything muon had to work around during the run skews the figures. */
static void report_counters(const struct side *s)
{
	muon_counters_t c;
	unsigned long long bp, losses, disc;
	unsigned events = s->events - s->events0;
	int rc;

	c.size = sizeof(c);
	rc = muon_ctx_counters(s->ctx, &c);
	if (rc < 0) {
		bench_muon_fail(s->log.who, "muon_ctx_counters", rc);
		return;
	}
	bp = c.backpressure - s->c0.backpressure;
	losses = c.losses - s->c0.losses;
	disc = c.disconnects - s->c0.disconnects;
	if (bp || losses || disc || events)
		fprintf(stderr, "%s: note: during the run the ping saw %llu "
			"back-pressure, %llu loss events, %llu disconnects, "
			"%u other events\n", BENCH_PROG, bp, losses, disc,
			events);
	if (events)
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
	s.is_pong = 1;
	s.stop = run->stop;
	if (side_open(&s, "muon-bench-pong", run->pong_listen, NULL,
		      TOPIC_PONG, TOPIC_PING) != 0)
		goto free_side;
	rc = muon_ctx_listen_endpoint(s.ctx, 0, ep, sizeof(ep));
	if (rc < 0) {
		bench_muon_fail(s.log.who, "muon_ctx_listen_endpoint", rc);
		goto free_side;
	}
	if (bench_pipe_write(wr, ep, sizeof(ep)) != 0)
		goto free_side;
	if (setup_wait(&s, NULL, cond_ready, &ready, BENCH_TIMEOUT_NS,
		       "an image of '" TOPIC_PING "'") != 0)
		goto free_side;
	bench_quiet_end(&s.log, 0);
	if (bench_pipe_write(wr, "R", 1) != 0 || pong_loop(&s) < 0)
		goto free_side;
	/* Keep polling until the ping has its last reply: leaving earlier
	 * could cut off data still on its way. */
	bench_quiet_begin(&s.log);
	if (setup_wait(&s, NULL, cond_peer_done, &rd, BENCH_TIMEOUT_NS,
		       "the ping to finish"))
		goto free_side;
	side_close(&s);
	bench_quiet_end(&s.log, 0);
	side_free(&s);
	return 0;

free_side:
	side_free(&s);
	return 1;
}

/*
 * Only the pong listens (on port 0 for tcp and verbs) and reports where
 * through the pipe; the ping dials it, and the one connection carries both
 * streams. Were each side also the other's static peer, the two contexts
 * would dial each other and muon would close one of the two connections,
 * moving the streams over to the other, possibly in the middle of the
 * timed round trips.
 */
static int run_endpoints(struct run *run, const struct bench_opts *o)
{
	run->o = o;
	run->stop = NULL;
	if (o->transport == BENCH_SHM) {
		snprintf(run->pong_listen, EP_LEN, "shm://muonbench-%ld",
			 (long)getpid());
		return 0;
	}
	if (o->transport == BENCH_VERBS)
		return bench_verbs_listen(o->addr, 1, run->pong_listen,
					  EP_LEN);
	snprintf(run->pong_listen, EP_LEN, "tcp://127.0.0.1:0");
	return 0;
}

static int ping_setup(struct side *s, struct run *run,
		      struct bench_child *child)
{
	char pong_ep[EP_LEN];
	struct pipe_msg m = { child->from_child, pong_ep, sizeof(pong_ep) };
	struct ready ready = { .peer_fd = child->from_child };

	if (setup_wait(s, child, cond_pipe_msg, &m, BENCH_TIMEOUT_NS,
		       "the pong's endpoint"))
		return -1;
	pong_ep[EP_LEN - 1] = '\0';
	if (side_open(s, "muon-bench-ping", NULL, pong_ep, TOPIC_PING,
		      TOPIC_PONG) != 0)
		return -1;
	if (setup_wait(s, child, cond_ready, &ready, BENCH_TIMEOUT_NS,
		       "an image of '" TOPIC_PONG "' on both sides") != 0)
		return -1;
	bench_quiet_end(&s->log, 0);
	return 0;
}

/* Ping here, pong in a forked process or (--layout thread) a thread. */
static int pingpong_local(const struct bench_opts *o, struct bench_report *rep)
{
	struct run run;
	struct side s;
	struct bench_child child;
	struct bench_pp pp;
	int rc;

	if (run_endpoints(&run, o) != 0 || side_init(&s, o, "ping") != 0)
		return -1;
	if (bench_pp_init(&pp, o, "muon") != 0)
		goto free_side;
	if (o->layout == BENCH_LAYOUT_THREAD) {
		run.stop = &child.stop;
		rc = bench_child_spawn_thread(&child, o->pong_cpu, pong_main,
					      &run);
	} else {
		rc = bench_child_spawn(&child, o->pong_cpu, pong_main, &run);
	}
	if (rc != 0)
		goto free_pp;
	if (ping_setup(&s, &run, &child) != 0 || mark_counters(&s) != 0 ||
	    ping_loop(&s, &child, &pp) != 0)
		goto kill_child;
	report_counters(&s);
	/* The pong closes first (on EOF), then we do: one at a time keeps
	 * tear-down simple to reason about. */
	bench_quiet_begin(&s.log);
	rc = bench_child_finish(&child, BENCH_TIMEOUT_NS);
	side_close(&s);
	bench_quiet_end(&s.log, rc != 0);
	side_free(&s);
	if (rc == 0)
		rc = bench_pp_add(&pp, rep, "muon");
	bench_pp_fini(&pp);
	return rc;

kill_child:
	bench_child_kill(&child);
free_pp:
	bench_pp_fini(&pp);
free_side:
	side_free(&s);
	return -1;
}

/* ---------------------------------------------------- two hosts (--role) */

static int role_topics(const struct bench_opts *o, char *ping, char *pong)
{
	const char *id = o->run_id && *o->run_id ? o->run_id : "default";

	snprintf(ping, TOPIC_LEN, "muon-bench.%s.ping", id);
	snprintf(pong, TOPIC_LEN, "muon-bench.%s.pong", id);
	if (strlen(ping) > 255) {
		fprintf(stderr, "%s: --run-id is too long for a topic name "
			"(255 bytes)\n", BENCH_PROG);
		return -1;
	}
	return 0;
}

/*
 * Where a context of a two-host run listens: for verbs the RDMA device's
 * address (muon's discovery default listens on shm and tcp only); for tcp
 * and shm muon's default, which it advertises with this host's address
 * as the daemon sees it.
 */
static int role_listen(const struct bench_opts *o, char *buf,
		       const char **listen)
{
	*listen = NULL;
	if (o->transport != BENCH_VERBS)
		return 0;
	*listen = buf;
	return bench_verbs_listen(o->addr, 1, buf, EP_LEN);
}

/*
 * The ping host: times the round trips as in one host, then publishes the
 * end marker and waits until the pong has closed its context before it
 * closes its own, so that the next run (the next --size) does not find
 * this one's pong through the daemon.
 */
static int role_ping(const struct bench_opts *o, struct bench_report *rep)
{
	char t_ping[TOPIC_LEN], t_pong[TOPIC_LEN], listen[EP_LEN];
	char what[TOPIC_LEN + 128];
	const char *where;
	struct settle settle = { 0, 0, 0 };
	struct side s;
	struct bench_pp pp;
	int rc = -1;

	if (role_topics(o, t_ping, t_pong) != 0 ||
	    role_listen(o, listen, &where) != 0 ||
	    side_init(&s, o, "ping") != 0)
		return -1;
	if (bench_pp_init(&pp, o, "muon") != 0)
		goto free_side;
	if (side_open(&s, "muon-bench-ping", where, NULL,
		      t_ping, t_pong) != 0)
		goto free_pp;
	snprintf(what, sizeof(what), "the pong side on '%s' (muon-bench "
		 "--role sub with the same --run-id and daemons)", t_pong);
	if (setup_wait(&s, NULL, cond_both_ways, &settle, ROLE_WAIT_NS,
		       what) != 0)
		goto free_pp;
	bench_quiet_end(&s.log, 0);
	if (mark_counters(&s) != 0 || ping_loop(&s, NULL, &pp) != 0)
		goto free_pp;
	report_counters(&s);
	bench_quiet_begin(&s.log);
	s.peer_down = s.peer_closed;
	if (setup_wait(&s, NULL, cond_peer_gone, NULL, BENCH_TIMEOUT_NS,
		       "the pong side to close") != 0)
		fprintf(stderr, "%s: ping: note: closing anyway; the next run "
			"may find a stale pong\n", BENCH_PROG);
	side_close(&s);
	bench_quiet_end(&s.log, 0);
	rc = bench_pp_add(&pp, rep, "muon");
free_pp:
	bench_pp_fini(&pp);
free_side:
	side_free(&s);
	return rc;
}

/*
 * The pong host: answers until the ping's end marker, then closes at once
 * (the ping waits for that). It has no figures of its own: the round
 * trips are timed on the ping host.
 */
static int role_pong(const struct bench_opts *o)
{
	char t_ping[TOPIC_LEN], t_pong[TOPIC_LEN], listen[EP_LEN];
	char what[TOPIC_LEN + 128];
	const char *where;
	struct ready ready = { .peer_fd = -1 };
	struct side s;
	int64_t n;

	if (role_topics(o, t_ping, t_pong) != 0 ||
	    role_listen(o, listen, &where) != 0 ||
	    side_init(&s, o, "pong") != 0)
		return -1;
	s.is_pong = 1;
	if (side_open(&s, "muon-bench-pong", where, NULL,
		      t_pong, t_ping) != 0)
		goto free_side;
	snprintf(what, sizeof(what), "the ping side on '%s' (muon-bench "
		 "--role pub with the same --run-id and daemons)", t_ping);
	if (setup_wait(&s, NULL, cond_ready, &ready, ROLE_WAIT_NS, what) != 0)
		goto free_side;
	bench_quiet_end(&s.log, 0);
	n = pong_loop(&s);
	if (n < 0)
		goto free_side;
	bench_quiet_begin(&s.log);
	side_close(&s);
	bench_quiet_end(&s.log, 0);
	side_free(&s);
	fprintf(stderr, "%s: pong: answered %lld pings of %zu bytes\n",
		BENCH_PROG, (long long)n, o->size);
	return 0;

free_side:
	side_free(&s);
	return -1;
}

int bench_muon_pingpong(const struct bench_opts *o, struct bench_report *rep)
{
	switch (o->role) {
	case BENCH_ROLE_PUB:
		return role_ping(o, rep);
	case BENCH_ROLE_SUB:
		return role_pong(o);
	case BENCH_ROLE_BOTH:
		break;
	}
	return pingpong_local(o, rep);
}
