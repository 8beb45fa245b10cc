/*
 * muon-bench: helpers private to the ping-pong runs (muon_pingpong.c,
 * raw_shm.c, raw_tcp.c, raw_verbs.c) and the raw throughput baselines
 * (raw_flow.c, raw_verbs.c): the rtt and half series of a ping side, and
 * the pacing, stamping and checking of a one-way stream.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#ifndef MUON_BENCH_RAW_H
#define MUON_BENCH_RAW_H

#include "bench.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Every histogram keeps values up to a minute exactly. */
#define RAW_HIST_HIGHEST (60ull * 1000000000ull)

/* ------------------------------------------------------ ping-pong series */

/*
 * The ping side of a ping-pong: each timed round trip goes into `rtt` and
 * its half into `half`, after the round trip's second clock read, so that
 * recording costs the next round trip nothing. With o->count the run is
 * warmup + count round trips; with o->duration_ns instead it is warmup
 * round trips and then timed ones until the timed part has lasted that
 * long (the clock is read in every round trip anyway).
 */
struct bench_pp {
	const struct bench_opts *o;
	struct bench_hist rtt, half;
	uint64_t i;         /* round trips done, warm-up included */
	uint64_t start_ns;  /* t0 of the first timed round trip */
	uint64_t end_ns;    /* t1 of the last one */
	char label[96];     /* of the progress line */
	struct bench_progress progress; /* from the first timed round trip */
};

static inline int bench_pp_init(struct bench_pp *p, const struct bench_opts *o,
				const char *what)
{
	memset(p, 0, sizeof(*p));
	p->o = o;
	if (bench_hist_init(&p->rtt, RAW_HIST_HIGHEST) != 0)
		return -1;
	if (bench_hist_init(&p->half, RAW_HIST_HIGHEST) != 0) {
		bench_hist_fini(&p->rtt);
		return -1;
	}
	snprintf(p->label, sizeof(p->label), "%s pingpong %s %zu B", what,
		 bench_transport_name(o->transport), o->size);
	return 0;
}

/* After round trip p->i, timed from t0 to t1: 1 while more are due. */
static inline int bench_pp_next(struct bench_pp *p, uint64_t t0, uint64_t t1)
{
	const struct bench_opts *o = p->o;

	if (p->i >= o->warmup) {
		if (p->i == o->warmup) {
			p->start_ns = t0;
			bench_progress_start(&p->progress, o, p->label,
					     o->count, o->count ? 0 :
					     t0 + o->duration_ns);
		}
		p->end_ns = t1;
		bench_hist_record(&p->rtt, t1 - t0);
		bench_hist_record(&p->half, (t1 - t0) / 2);
		bench_progress_tick(&p->progress, p->i + 1 - o->warmup);
	}
	p->i++;
	if (o->count)
		return p->i < o->warmup + o->count;
	return p->i <= o->warmup || t1 - p->start_ns < o->duration_ns;
}

/* The round trips since the last warm-up one. */
static inline uint64_t bench_pp_timed(const struct bench_pp *p)
{
	return p->i > p->o->warmup ? p->i - p->o->warmup : 0;
}

static inline void bench_pp_fini(struct bench_pp *p)
{
	bench_progress_end(&p->progress);
	bench_hist_fini(&p->rtt);
	bench_hist_fini(&p->half);
}

static inline int bench_pp_add_one(struct bench_pp *p,
				   struct bench_report *rep, const char *impl,
				   const char *series, enum bench_lat_kind lat,
				   struct bench_hist *h)
{
	struct bench_result res;
	int rc;

	memset(&res, 0, sizeof(res));
	snprintf(res.impl, sizeof(res.impl), "%s", impl);
	snprintf(res.series, sizeof(res.series), "%s", series);
	res.mode = BENCH_PINGPONG;
	res.transport = p->o->transport;
	res.size = p->o->size;
	res.messages = bench_pp_timed(p);
	res.seconds_ns = p->end_ns - p->start_ns;
	res.lat = lat;
	res.hist = *h;
	memset(h, 0, sizeof(*h));
	rc = bench_report_add(rep, &res);
	bench_hist_fini(&res.hist);
	return rc;
}

/* Moves both histograms into two results of `rep`: "rtt" and "half". */
static inline int bench_pp_add(struct bench_pp *p, struct bench_report *rep,
			       const char *impl)
{
	bench_progress_end(&p->progress);
	if (bench_pp_add_one(p, rep, impl, "rtt", BENCH_LAT_RTT,
			     &p->rtt) != 0)
		return -1;
	return bench_pp_add_one(p, rep, impl, "half", BENCH_LAT_HALF,
				&p->half);
}

/* ------------------------------------------------------ one-way streams */

/*
 * Message number n of a stream carries a struct bench_stamp when the size
 * allows (host order: both ends are on this host); a smaller payload
 * carries what fits of the number alone, little-endian, as the ping-pongs
 * do, so that order is still checked.
 */
static inline void raw_stamp_put(unsigned char *p, size_t size,
				 uint64_t intended_ns, uint64_t n)
{
	if (size >= sizeof(struct bench_stamp)) {
		struct bench_stamp st = { intended_ns, n };

		memcpy(p, &st, sizeof(st));
	} else {
		bench_put_counter(p, size, n);
	}
}

/*
 * At the maximum rate there is no schedule: the intended send time of a
 * message is the time its sender got to it. The clock costs ~30 ns here
 * (as much as a whole raw message), so the sender reads it once per group
 * of this many messages (or per --burst, if larger) and stamps the group
 * with it: a stamp is at most a group old, which can only make the
 * latency look worse. The receiver reads it once per group taken, for
 * the same reason and with the same bias.
 */
#define RAW_GROUP 32

/* What raw_pace_next returns besides a count. */
#define RAW_PACE_DONE 0     /* the run is over: send the end marker */
#define RAW_PACE_LATER (-1) /* nothing is due yet (wait == 0 only) */
#define RAW_PACE_FAIL (-2)  /* the other side went away (said why) */

/*
 * The sender's schedule, in the two phases of the muon flow modes
 * (muon_flow.c): a warm-up of o->warmup messages (with --duration: and at
 * least a tenth of it, at most 1 s), then the timed part of o->count
 * messages or o->duration_ns. Each phase starts its own schedule: with
 * o->rate, send slot k of a phase is due at t0 + k * burst / rate and its
 * o->burst messages carry that time however late they go out, so a sender
 * held up by the receiver makes the latency of everything behind it count
 * from when it should have been sent (no coordinated omission); the timed
 * part ends when its next slot would have been due, so it lasts whole
 * periods. Without a rate, groups of max(burst, RAW_GROUP) go out as fast
 * as the receiver allows. The receiver learns where the timed part starts
 * from a flag on message number `timed_first`, which each transport
 * carries in its framing.
 */
struct raw_pace {
	const struct bench_opts *o;
	int phase;             /* 0 warm-up, 1 timed, 2 over */
	uint64_t n;            /* number of the next message */
	uint64_t timed_first;  /* number of the first timed one, once known */
	uint64_t sent;         /* in this phase */
	uint64_t count;        /* this phase: at least this many messages */
	uint64_t min_ns;       /* and at least this long */
	int exact;             /* and exactly `count` */
	uint64_t t0;           /* this phase's start */
	uint64_t slot;         /* next send slot of this phase */
	uint64_t group;        /* messages per slot or per clock read */
	uint64_t left;         /* of the current group, not handed out yet */
	uint64_t t;            /* the current group's intended time */
	uint64_t max_lag;      /* timed part: furthest behind the schedule */
	struct bench_child *child; /* the receivers, watched while waiting: */
	unsigned n_children;       /* child[0 .. n_children) */
	const _Atomic int *abort;  /* or: nonzero once one gave up */
	char label[96];
	struct bench_progress progress;
};

void raw_pace_init(struct raw_pace *p, const struct bench_opts *o,
		   const char *impl, struct bench_child *child,
		   const _Atomic int *abort);
void raw_pace_fini(struct raw_pace *p);
/*
 * The next messages to send: how many (> 0, at most `max`, all of one
 * group), the number of the first and their intended send time. With
 * `wait`, sleeps or spins until the next slot is due; without, returns
 * RAW_PACE_LATER if it is not due yet.
 */
int raw_pace_next(struct raw_pace *p, int wait, uint64_t max, uint64_t *first,
		  uint64_t *intended_ns);
/* After a run: what the figures should be read with, as warnings. */
void raw_pace_warn(const struct raw_pace *p, struct bench_report *rep,
		   const char *impl);

/*
 * The receiver: checks that message numbers come in order from 0, and
 * records the latency of each timed message from its intended send time
 * to the clock read after it was taken (one read per RAW_GROUP taken, or
 * when the stream runs dry). Its timed part lasts from the clock read
 * after the first timed message to the one when the end marker came.
 */
struct raw_rx {
	const struct bench_opts *o;
	struct bench_hist hist;
	int stamped;           /* payloads carry a struct bench_stamp */
	int timed;             /* the first timed message has come */
	uint64_t next;         /* number of the next message expected */
	uint64_t timed_n;      /* timed messages taken */
	uint64_t start_ns;     /* clock read after the first timed one */
	uint64_t end_ns;       /* clock read at the end marker */
	unsigned pending;      /* taken since the last clock read */
	unsigned ngroups;
	struct { uint64_t t, n; } groups[RAW_GROUP];
	const char *impl;      /* "raw shm", ... for messages */
	/* Fan-out: latency + 1 of timed message i (from the first timed
	 * one) in win[i] for i < win_len, as bench_fanout_first_last wants
	 * it; NULL otherwise. */
	uint64_t *win;
	uint64_t win_len;
	uint64_t win_base;     /* number of the first timed message */
	uint64_t win_used;     /* entries that may be set */
};

int raw_rx_init(struct raw_rx *r, const struct bench_opts *o,
		const char *impl);
void raw_rx_fini(struct raw_rx *r);
int raw_rx_bad(const struct raw_rx *r, uint64_t got);
void raw_rx_window(struct raw_rx *r, uint64_t now);

/* Read the clock for the timed messages taken since the last read: the
 * time read, or 0 when there were none. */
static inline uint64_t raw_rx_flush(struct raw_rx *r)
{
	uint64_t now;

	r->pending = 0;
	if (!r->ngroups)
		return 0;
	now = bench_now_ns();
	if (r->win)
		raw_rx_window(r, now);
	for (unsigned i = 0; i < r->ngroups; i++)
		bench_hist_record_n(&r->hist,
				    now > r->groups[i].t ?
				    now - r->groups[i].t : 0,
				    r->groups[i].n);
	r->ngroups = 0;
	return now;
}

/* Take one payload: 0, or -1 (said why) when it is out of order. */
static inline int raw_rx_take(struct raw_rx *r, const unsigned char *p)
{
	size_t size = r->o->size;

	if (r->stamped) {
		struct bench_stamp st;

		memcpy(&st, p, sizeof(st));
		if (st.n != r->next)
			return raw_rx_bad(r, st.n);
		if (r->timed) {
			if (r->ngroups && r->groups[r->ngroups - 1].t ==
					  st.intended_ns) {
				r->groups[r->ngroups - 1].n++;
			} else {
				r->groups[r->ngroups].t = st.intended_ns;
				r->groups[r->ngroups].n = 1;
				r->ngroups++;
			}
		}
	} else if (size) {
		uint64_t got = bench_get_counter(p, size);

		if (got != bench_counter_mask(r->next, size))
			return raw_rx_bad(r, got);
	}
	r->next++;
	r->timed_n += (uint64_t)r->timed;
	if (++r->pending >= RAW_GROUP)
		raw_rx_flush(r);
	return 0;
}

/* The message flagged as the first timed one: the timed part starts. */
static inline int raw_rx_take_first(struct raw_rx *r, const unsigned char *p)
{
	raw_rx_flush(r);
	r->timed = 1;
	r->win_base = r->next;
	if (raw_rx_take(r, p) != 0)
		return -1;
	r->start_ns = raw_rx_flush(r);
	if (!r->start_ns)
		r->start_ns = bench_now_ns();
	return 0;
}

/*
 * The end marker said `sent` messages went out: 0 if that is how many
 * came (and the timed part is over), -1 after saying otherwise.
 */
int raw_rx_end(struct raw_rx *r, uint64_t sent);

/* The span of the receiver's timed part. */
static inline uint64_t raw_rx_span(const struct raw_rx *r)
{
	return r->timed && r->end_ns > r->start_ns ?
	       r->end_ns - r->start_ns : 0;
}

/*
 * The one result of a raw throughput run: series "sub", the timed
 * messages and span of the receiver. Moves `hist` into the report.
 */
int raw_flow_add(const struct bench_opts *o, struct bench_report *rep,
		 const char *impl, uint64_t messages, uint64_t seconds_ns,
		 struct bench_hist *hist);

/* raw_tcp.c: a loopback connection, TCP_NODELAY on both ends. */
int raw_tcp_listen(int *lfd, uint16_t *port, const char *who);
int raw_tcp_connect(uint16_t port, const char *who);
int raw_tcp_accept(int lfd, struct bench_child *child, const char *who);

/* Pin the calling thread to `cpu` (-1: leave it) and restore it after. */
int raw_pin_push(int cpu, cpu_set_t *saved);
void raw_pin_pop(const cpu_set_t *saved);

/* ------------------------------------------------------------ fan-out */

/*
 * The results of a raw flow run with `n` consumers (raw_flow.c): for
 * throughput (n == 1) the row "sub", for fanout rows sub0.. and, when
 * the payloads carry a stamp and n > 1, first and last from the
 * consumers' windows. Moves the histograms of rx[] into the report.
 */
int raw_flow_report(const struct bench_opts *o, struct bench_report *rep,
		    const char *impl, struct raw_rx *const *rx, unsigned n);

#endif /* MUON_BENCH_RAW_H */
