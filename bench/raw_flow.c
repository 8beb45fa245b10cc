/*
 * muon-bench: the raw throughput baselines over shared memory and TCP,
 * and the pacing and checking that they share with the verbs one
 * (raw_verbs.c). Each is one producer and one consumer without muon:
 *
 *   shm: a forked consumer on a MAP_SHARED ring of 64-byte aligned slots,
 *        each a commit word (the message's number + 1, stored with
 *        release) followed by the payload; the consumer publishes how far
 *        it has read every RING_CONS_EVERY messages, and the producer
 *        reads that only when the ring looks full. The producer prefetches
 *        the slots ahead of it for writing, so that its stores do not wait
 *        for the lines the consumer last read. Nothing else: the floor of
 *        any ring transport between two cores.
 *   tcp: a loopback connection; the producer writes length-prefixed
 *        messages into a batch buffer and sends everything that is due in
 *        one send() (a full batch at the maximum rate), the forked consumer
 *        recv()s large chunks and parses them; both busy-poll.
 *
 * The producer is the calling process (pinned to bench_cpu_of(o, 0) for
 * the run), the consumer a child on bench_cpu_of(o, 1); the consumer
 * checks every message's number and, once the producer's end marker says
 * how many were sent, ships its histogram back through a shared mapping.
 *
 * The fan-out is the same with bench_subs(o) consumers, consumer i a child
 * on bench_cpu_of(o, 1 + i) as muon's subscriber i is: over shm each has a
 * ring of its own and the producer writes every message into each ring in
 * turn; over tcp each has a connection and the producer sends each batch
 * to each connection in turn. Each consumer also keeps the latency of
 * every message in a window, from which the first and last rows come as
 * for muon (fanout.c).
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"
#include "raw.h"

#include <endian.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- pacing */

/* A --duration run warms up for at least a tenth of it, at most this long
 * (as muon_flow.c does). */
#define WARMUP_MAX_NS 1000000000ull

void raw_pace_init(struct raw_pace *p, const struct bench_opts *o,
		   const char *impl, struct bench_child *child,
		   const _Atomic int *abort)
{
	memset(p, 0, sizeof(*p));
	p->o = o;
	p->child = child;
	p->n_children = child ? 1 : 0;
	p->abort = abort;
	p->timed_first = UINT64_MAX;
	p->count = o->warmup;
	p->exact = o->count != 0;
	if (!o->count)
		p->min_ns = o->duration_ns / 10 < WARMUP_MAX_NS ?
			    o->duration_ns / 10 : WARMUP_MAX_NS;
	p->group = o->burst > 1 ? o->burst : 1;
	if (!o->rate && p->group < RAW_GROUP)
		p->group = RAW_GROUP;
	snprintf(p->label, sizeof(p->label), "%s %s %s %zu B", impl,
		 bench_mode_name(o->mode), bench_transport_name(o->transport),
		 o->size);
	p->t0 = bench_now_ns();
}

void raw_pace_fini(struct raw_pace *p)
{
	if (p->phase > 0)
		bench_progress_end(&p->progress);
}

/* Offset of send slot k from the start of a phase, exact and free of
 * overflow for any realistic run (as muon_flow.c computes it). */
static uint64_t slot_offset(uint64_t k, uint64_t burst, uint64_t rate)
{
	uint64_t m = k * burst;

	return m / rate * 1000000000ull + m % rate * 1000000000ull / rate;
}

/* Sleep through most of a long wait, spin the rest: a slot is sent on
 * time to within the clock's cost, and a slow rate leaves the CPU free. */
static int pace_wait(struct raw_pace *p, uint64_t due)
{
	for (;;) {
		uint64_t now = bench_now_ns();

		if (now >= due)
			return 0;
		if (due - now > 200000) {
			uint64_t ns = due - now - 100000;
			struct timespec ts = { (time_t)(ns / 1000000000u),
					       (long)(ns % 1000000000u) };

			nanosleep(&ts, NULL);
			for (unsigned i = 0; i < p->n_children; i++)
				if (bench_child_check(&p->child[i]) != 0)
					return -1;
			if (p->abort && atomic_load_explicit(
					    p->abort, memory_order_acquire))
				return -1;
		} else if (p->o->shared_cpu) {
			sched_yield();
		}
	}
}

/* Wait for `due` if allowed: 0 when it has come, else a RAW_PACE_ code. */
static int pace_due(struct raw_pace *p, int wait, uint64_t due)
{
	uint64_t now = bench_now_ns();

	if (now >= due) {
		if (p->phase == 1 && now - due > p->max_lag)
			p->max_lag = now - due;
		return 0;
	}
	if (!wait)
		return RAW_PACE_LATER;
	return pace_wait(p, due) == 0 ? 0 : RAW_PACE_FAIL;
}

static void pace_start_timed(struct raw_pace *p)
{
	const struct bench_opts *o = p->o;

	p->phase = 1;
	p->timed_first = p->n;
	p->sent = 0;
	p->slot = 0;
	p->count = o->count;
	p->exact = o->count != 0;
	p->min_ns = o->count ? 0 : o->duration_ns;
	p->t0 = bench_now_ns();
	bench_progress_start(&p->progress, o, p->label, o->count,
			     o->count ? 0 : p->t0 + o->duration_ns);
}

int raw_pace_next(struct raw_pace *p, int wait, uint64_t max, uint64_t *first,
		  uint64_t *intended_ns)
{
	const struct bench_opts *o = p->o;
	uint64_t k;

	while (!p->left) {
		uint64_t t;
		int r;

		if (p->phase > 1)
			return RAW_PACE_DONE;
		t = o->rate ? p->t0 + slot_offset(p->slot, p->group, o->rate) :
			      bench_now_ns();
		if (p->sent >= p->count && t - p->t0 >= p->min_ns) {
			if (p->phase == 0) {
				pace_start_timed(p);
				continue;
			}
			/* The end goes out when the next slot would have. */
			if (o->rate && (r = pace_due(p, wait, t)) != 0)
				return r;
			p->phase = 2;
			return RAW_PACE_DONE;
		}
		if (o->rate && (r = pace_due(p, wait, t)) != 0)
			return r;
		p->slot++;
		p->t = t;
		p->left = p->group;
		if (p->exact && p->count - p->sent < p->left)
			p->left = p->count - p->sent;
		p->sent += p->left;
		if (p->phase == 1)
			bench_progress_tick(&p->progress, p->sent);
	}
	k = p->left < max ? p->left : max;
	*first = p->n;
	*intended_ns = p->t;
	p->n += k;
	p->left -= k;
	return (int)k;
}

/* Falling this far behind the --rate schedule means the offered rate was
 * not achieved (as muon_flow.c judges it). */
#define BEHIND_NS 1000000000ull

void raw_pace_warn(const struct raw_pace *p, struct bench_report *rep,
		   const char *impl)
{
	const struct bench_opts *o = p->o;

	if (o->rate && p->max_lag > BEHIND_NS)
		bench_warn(rep, "%s %s %zu B: the offered rate of %llu "
			   "messages/s was not kept: the producer fell %.3f s "
			   "behind its schedule", impl,
			   bench_mode_name(o->mode), o->size,
			   (unsigned long long)o->rate,
			   (double)p->max_lag / 1e9);
	if (!o->rate && o->size >= sizeof(struct bench_stamp))
		bench_warn(rep, "%s %s %zu B: flat out, producer and "
			   "consumer%s read the clock once per %llu messages, "
			   "which can only overstate latency, by up to that "
			   "many messages' time", impl,
			   bench_mode_name(o->mode), o->size,
			   o->mode == BENCH_FANOUT ? "s" : "",
			   (unsigned long long)(p->group > RAW_GROUP ?
						p->group : RAW_GROUP));
}

/* -------------------------------------------------------------- receiver */

int raw_rx_init(struct raw_rx *r, const struct bench_opts *o,
		const char *impl)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->impl = impl;
	r->stamped = o->size >= sizeof(struct bench_stamp);
	return bench_hist_init(&r->hist, RAW_HIST_HIGHEST);
}

void raw_rx_fini(struct raw_rx *r)
{
	bench_hist_fini(&r->hist);
}

/*
 * The groups since the last clock read hold the timed messages that end
 * with the last one taken (r->next - 1), in order: walk them back from
 * there, each message with its group's latency.
 */
void raw_rx_window(struct raw_rx *r, uint64_t now)
{
	uint64_t m = r->next;

	for (unsigned i = r->ngroups; i-- > 0;) {
		uint64_t lat = now > r->groups[i].t ? now - r->groups[i].t : 0;

		for (uint64_t k = 0; k < r->groups[i].n; k++) {
			uint64_t at = --m - r->win_base;

			if (at >= r->win_len)
				continue;
			r->win[at] = lat + 1;
			if (at >= r->win_used)
				r->win_used = at + 1;
		}
	}
}

int raw_rx_bad(const struct raw_rx *r, uint64_t got)
{
	fprintf(stderr, "%s: %s: consumer: message %llu arrived numbered "
		"%llu%s\n", BENCH_PROG, r->impl, (unsigned long long)r->next,
		(unsigned long long)got,
		r->stamped ? "" : " (the low bytes that fit the size)");
	return -1;
}

int raw_rx_end(struct raw_rx *r, uint64_t sent)
{
	raw_rx_flush(r);
	r->end_ns = bench_now_ns();
	if (sent == r->next)
		return 0;
	fprintf(stderr, "%s: %s: consumer: took %llu messages, the producer "
		"sent %llu\n", BENCH_PROG, r->impl,
		(unsigned long long)r->next, (unsigned long long)sent);
	return -1;
}

static int flow_row(const struct bench_opts *o, struct bench_report *rep,
		    const char *impl, const char *series, uint64_t messages,
		    uint64_t seconds_ns, struct bench_hist *hist)
{
	struct bench_result res;
	int rc;

	memset(&res, 0, sizeof(res));
	snprintf(res.impl, sizeof(res.impl), "%s", impl);
	snprintf(res.series, sizeof(res.series), "%s", series);
	res.mode = o->mode;
	res.transport = o->transport;
	res.size = o->size;
	res.messages = messages;
	res.seconds_ns = seconds_ns;
	res.lat = o->size >= sizeof(struct bench_stamp) ? BENCH_LAT_ONEWAY :
		  BENCH_LAT_NONE;
	res.hist = *hist;
	memset(hist, 0, sizeof(*hist));
	rc = bench_report_add(rep, &res);
	bench_hist_fini(&res.hist);
	return rc;
}

int raw_flow_add(const struct bench_opts *o, struct bench_report *rep,
		 const char *impl, uint64_t messages, uint64_t seconds_ns,
		 struct bench_hist *hist)
{
	return flow_row(o, rep, impl, "sub", messages, seconds_ns, hist);
}

int raw_flow_report(const struct bench_opts *o, struct bench_report *rep,
		    const char *impl, struct raw_rx *const *rx, unsigned n)
{
	struct bench_fanout fo = { .impl = impl, .n_subs = n,
				   .messages = UINT64_MAX,
				   .start_ns = UINT64_MAX };
	char series[24];

	if (o->mode != BENCH_FANOUT)
		return raw_flow_add(o, rep, impl, rx[0]->timed_n,
				    raw_rx_span(rx[0]), &rx[0]->hist);
	for (unsigned i = 0; i < n; i++) {
		snprintf(series, sizeof(series), "sub%u", i);
		fo.win[i] = rx[i]->win;
		fo.len = rx[i]->win_len;
		if (rx[i]->win_used > fo.used)
			fo.used = rx[i]->win_used;
		if (rx[i]->timed_n < fo.messages)
			fo.messages = rx[i]->timed_n;
		if (rx[i]->start_ns < fo.start_ns)
			fo.start_ns = rx[i]->start_ns;
		if (rx[i]->end_ns > fo.end_ns)
			fo.end_ns = rx[i]->end_ns;
		if (flow_row(o, rep, impl, series, rx[i]->timed_n,
			     raw_rx_span(rx[i]), &rx[i]->hist) != 0)
			return -1;
	}
	/* As the muon fan-out: no first and last of one, or without stamps. */
	if (n < 2 || o->size < sizeof(struct bench_stamp) || !fo.len)
		return 0;
	return bench_fanout_first_last(o, rep, &fo);
}

int raw_pin_push(int cpu, cpu_set_t *saved)
{
	CPU_ZERO(saved);
	if (sched_getaffinity(0, sizeof(*saved), saved) != 0) {
		fprintf(stderr, "%s: sched_getaffinity: %s\n", BENCH_PROG,
			strerror(errno));
		return -1;
	}
	return bench_pin_self(cpu);
}

void raw_pin_pop(const cpu_set_t *saved)
{
	/* Best effort: a failure only leaves us pinned. */
	(void)sched_setaffinity(0, sizeof(*saved), saved);
}

/* ----------------------------------------------- results of a forked side */

/*
 * A consumer's figures cross back to the parent in a MAP_SHARED area
 * made before fork: the scalars of its histogram, then its counts (the
 * parent sizes the area from a histogram made with the same `highest`),
 * then, in a fan-out, its window, written during the run.
 */
struct share {
	uint64_t messages;     /* timed messages taken */
	uint64_t start_ns;     /* its timed part */
	uint64_t end_ns;
	uint64_t win_used;     /* window entries that may be set */
	uint64_t win_len;      /* window entries after the counts */
	uint32_t n_counts;
	struct bench_hist hist; /* scalars; its counts pointer is meaningless */
	uint64_t counts[];
};

static struct share *share_map(const struct bench_hist *like,
			       uint64_t win_len, size_t *len, const char *impl)
{
	struct share *sh;

	*len = sizeof(*sh) + ((size_t)like->n_counts + win_len) *
			     sizeof(uint64_t);
	/* Populated now: a fault in the window would land in the timed
	 * part. */
	sh = mmap(NULL, *len, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (sh == MAP_FAILED) {
		fprintf(stderr, "%s: %s: mmap of %zu bytes for the consumer's "
			"results: %s\n", BENCH_PROG, impl, *len,
			strerror(errno));
		return NULL;
	}
	sh->n_counts = like->n_counts;
	sh->win_len = win_len;
	return sh;
}

/* In the consumer, before it takes anything: the window it fills. */
static int share_rx_init(struct share *sh, struct raw_rx *rx,
			 const struct bench_opts *o, const char *impl)
{
	if (raw_rx_init(rx, o, impl) != 0)
		return -1;
	if (sh->win_len) {
		rx->win = sh->counts + sh->n_counts;
		rx->win_len = sh->win_len;
	}
	return 0;
}

/* In the consumer, once it is done. */
static int share_put(struct share *sh, const struct raw_rx *rx)
{
	if (rx->hist.n_counts != sh->n_counts) {
		fprintf(stderr, "%s: %s: consumer: histogram of %u counts, "
			"%u expected\n", BENCH_PROG, rx->impl,
			rx->hist.n_counts, sh->n_counts);
		return -1;
	}
	memcpy(sh->counts, rx->hist.counts,
	       (size_t)sh->n_counts * sizeof(uint64_t));
	sh->hist = rx->hist;
	sh->hist.counts = NULL;
	sh->messages = rx->timed_n;
	sh->start_ns = rx->start_ns;
	sh->end_ns = rx->end_ns;
	sh->win_used = rx->win_used;
	return 0;
}

/* In the producer, once the consumer has exited cleanly: its figures
 * in `rx` (made by raw_rx_init), as it had them. */
static void share_get(struct share *sh, struct raw_rx *rx)
{
	struct bench_hist view = sh->hist;

	view.counts = sh->counts;
	bench_hist_add(&rx->hist, &view);
	rx->timed = 1;
	rx->timed_n = sh->messages;
	rx->start_ns = sh->start_ns;
	rx->end_ns = sh->end_ns;
	rx->win = sh->win_len ? sh->counts + sh->n_counts : NULL;
	rx->win_len = sh->win_len;
	rx->win_used = sh->win_used;
}

/* The consumer is ready: the producer may start, and nothing timed waits
 * for a process that is still starting up. */
static int consumer_ready(int wr)
{
	return bench_pipe_write(wr, "R", 1);
}

static int wait_ready(struct bench_child *child, const char *impl)
{
	const struct timespec nap = { 0, 100000 };
	uint64_t deadline = bench_now_ns() + BENCH_TIMEOUT_NS;
	char c;

	for (;;) {
		int r = bench_pipe_try_read(child->from_child, &c, 1);

		if (r > 0)
			return 0;
		if (r < 0 || bench_child_check(child) != 0)
			return -1;
		if (bench_now_ns() >= deadline)
			break;
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "%s: %s: the consumer was not ready within 10 s\n",
		BENCH_PROG, impl);
	return -1;
}

/*
 * The consumers of a shm or tcp run, forked children: one for throughput,
 * bench_subs(o) for fanout, consumer i on bench_cpu_of(o, 1 + i) as muon's
 * subscriber i is, each with its area to report through.
 */
struct consumers {
	const struct bench_opts *o;
	const char *impl;          /* "raw shm" or "raw tcp", for messages */
	unsigned n;
	unsigned spawned;          /* child[0 .. spawned) to reap */
	struct bench_child child[BENCH_MAX_SUBS];
	struct share *sh[BENCH_MAX_SUBS];
	size_t sh_len;
};

static void consumers_unmap(struct consumers *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->sh[i])
			munmap(c->sh[i], c->sh_len);
}

/* NULL after saying why. Free with consumers_free. */
static struct consumers *consumers_new(const struct bench_opts *o,
				       const char *impl)
{
	struct consumers *c = calloc(1, sizeof(*c));
	struct bench_hist like;
	uint64_t win_len = 0;

	if (!c) {
		fprintf(stderr, "%s: %s: out of memory\n", BENCH_PROG, impl);
		return NULL;
	}
	c->o = o;
	c->impl = impl;
	c->n = o->mode == BENCH_FANOUT ? bench_subs(o) : 1;
	/* Windows only where there will be first and last rows. */
	if (c->n > 1 && o->size >= sizeof(struct bench_stamp))
		win_len = bench_fanout_window(o, c->n);
	if (bench_hist_init(&like, RAW_HIST_HIGHEST) != 0)
		goto free_c;
	for (unsigned i = 0; i < c->n; i++) {
		c->sh[i] = share_map(&like, win_len, &c->sh_len, impl);
		if (!c->sh[i])
			goto unmap_shares;
	}
	bench_hist_fini(&like);
	return c;

unmap_shares:
	consumers_unmap(c);
	bench_hist_fini(&like);
free_c:
	free(c);
	return NULL;
}

static void consumers_free(struct consumers *c)
{
	consumers_unmap(c);
	free(c);
}

static int consumers_spawn(struct consumers *c, bench_child_fn fn, void *arg)
{
	unsigned i = c->spawned;

	if (bench_child_spawn(&c->child[i], bench_cpu_of(c->o, 1 + i), fn,
			      arg) != 0)
		return -1;
	c->spawned++;
	return 0;
}

static void consumers_kill(struct consumers *c)
{
	for (unsigned i = 0; i < c->spawned; i++)
		bench_child_kill(&c->child[i]);
}

/* Each has BENCH_TIMEOUT_NS to exit cleanly; once one has not, the run
 * has failed and the rest are killed. 0 if every one did. */
static int consumers_finish(struct consumers *c)
{
	int rc = 0;

	for (unsigned i = 0; i < c->spawned; i++) {
		if (rc != 0)
			bench_child_kill(&c->child[i]);
		else if (bench_child_finish(&c->child[i],
					    BENCH_TIMEOUT_NS) != 0)
			rc = -1;
	}
	return rc;
}

/* Once all have exited cleanly: their rows, as raw_flow_report makes
 * them. */
static int consumers_report(struct consumers *c, struct bench_report *rep,
			    const char *impl)
{
	struct raw_rx *rx = calloc(c->n, sizeof(*rx));
	struct raw_rx *ptr[BENCH_MAX_SUBS];
	unsigned made = 0;
	int rc = -1;

	if (!rx) {
		fprintf(stderr, "%s: %s: out of memory\n", BENCH_PROG,
			c->impl);
		return -1;
	}
	for (; made < c->n; made++) {
		if (raw_rx_init(&rx[made], c->o, c->impl) != 0)
			goto fini_rx;
		share_get(c->sh[made], &rx[made]);
		ptr[made] = &rx[made];
	}
	rc = raw_flow_report(c->o, rep, impl, ptr, c->n);
fini_rx:
	while (made-- > 0)
		raw_rx_fini(&rx[made]);
	free(rx);
	return rc;
}

/* ------------------------------------------------------------ shm ring */

#define RING_BYTES (8u << 20)  /* muon's default ring_size */
#define RING_CONS_EVERY 64     /* consumer publishes its position */
/* How far ahead the producer prefetches for writing. On this host a line
 * the other core touched last takes long enough to arrive that 512 bytes
 * ahead gave 24 M msg/s (32-byte messages), 2 KiB 36 M and 8 KiB 45 M. */
#define RING_PREFETCH 8192
#define RING_END_NONE 0
/* In a commit word: the first message of the timed part. */
#define RING_FIRST (1ull << 63)

/* Each word on its own pair of lines (adjacent-line prefetch). */
struct ring_ctl {
	_Alignas(128) _Atomic uint64_t cons; /* messages taken, published */
	_Alignas(128) _Atomic uint64_t end;  /* 1 + messages sent, at the end */
};

struct ring_slot {
	_Atomic uint64_t seq; /* message number + 1, once written */
	unsigned char data[];
};

/* One consumer's ring; a fan-out has one per consumer. */
struct ring {
	const struct bench_opts *o;
	void *map;
	size_t map_len;
	struct ring_ctl *ctl;
	unsigned char *slots;
	size_t stride;       /* slot bytes, a multiple of 64 */
	uint64_t nslots;     /* a power of two */
	struct share *sh;    /* where its consumer reports */
};

static inline struct ring_slot *ring_at(const struct ring *r, uint64_t n)
{
	return (struct ring_slot *)(r->slots + (n & (r->nslots - 1)) *
					       r->stride);
}

static int ring_map(struct ring *r, const struct bench_opts *o)
{
	size_t want = RING_BYTES;

	r->o = o;
	r->stride = (sizeof(struct ring_slot) + o->size + 63) & ~(size_t)63;
	while (want < 4 * r->stride)
		want <<= 1;
	for (r->nslots = 1; r->nslots * 2 * r->stride <= want;)
		r->nslots <<= 1;
	r->map_len = sizeof(struct ring_ctl) + r->nslots * r->stride;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r->map == MAP_FAILED) {
		fprintf(stderr, "%s: raw shm: mmap of the %zu-byte ring: %s\n",
			BENCH_PROG, r->map_len, strerror(errno));
		r->map = NULL;
		return -1;
	}
	/* Every page touched now, by the producer, before fork: under a
	 * hypervisor the first touch of a page costs tens of microseconds,
	 * which would land in the timed part. Zero is "not written yet". */
	memset(r->map, 0, r->map_len);
	r->ctl = r->map;
	r->slots = (unsigned char *)r->map + sizeof(struct ring_ctl);
	return 0;
}

static int ring_consumer_main(void *arg, int rd, int wr)
{
	struct ring *r = arg;
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "consumer" };
	struct raw_rx rx;
	uint64_t n = 0, published = 0;
	int waiting = 0, rc = 1;

	(void)rd;
	if (share_rx_init(r->sh, &rx, o, "raw shm") != 0)
		return 1;
	if (consumer_ready(wr) != 0)
		goto fini;
	for (;;) {
		struct ring_slot *s = ring_at(r, n);
		uint64_t seq = atomic_load_explicit(&s->seq,
						    memory_order_acquire);
		uint64_t end;

		if (seq == n + 1 || seq == ((n + 1) | RING_FIRST)) {
			if ((seq == n + 1 ? raw_rx_take(&rx, s->data) :
			     raw_rx_take_first(&rx, s->data)) != 0)
				goto fini;
			waiting = 0;
			if (!(++n & (RING_CONS_EVERY - 1))) {
				atomic_store_explicit(&r->ctl->cons, n,
						      memory_order_release);
				published = n;
			}
			continue;
		}
		/* Dry: settle the clock and the position, then wait. */
		raw_rx_flush(&rx);
		if (published != n) {
			atomic_store_explicit(&r->ctl->cons, n,
					      memory_order_release);
			published = n;
		}
		end = atomic_load_explicit(&r->ctl->end, memory_order_acquire);
		if (end != RING_END_NONE) {
			/* Every slot before it was committed before it. */
			if (end - 1 > n)
				continue;
			if (raw_rx_end(&rx, end - 1) != 0)
				goto fini;
			break;
		}
		if (!waiting) {
			bench_spin_start(&spin, "the next raw shm message");
			waiting = 1;
		}
		if (bench_spin_check(&spin) != 0)
			goto fini;
	}
	if (share_put(r->sh, &rx) == 0)
		rc = 0;
fini:
	raw_rx_fini(&rx);
	return rc;
}

/* Wait until message n has a free slot: 0, or -1 (said why). */
static int ring_room(struct ring *r, uint64_t n, uint64_t *cons,
		     struct bench_spin *spin)
{
	bench_spin_start(spin, "room in the raw shm ring");
	while (n - *cons >= r->nslots) {
		*cons = atomic_load_explicit(&r->ctl->cons,
					     memory_order_acquire);
		if (n - *cons >= r->nslots && bench_spin_check(spin) != 0)
			return -1;
	}
	return 0;
}

/*
 * Every message into every ring, ring after ring, from `buf`. Inlined
 * into its two callers so that the throughput run, with its constant one
 * ring, keeps the single-ring loop it had before there was a fan-out.
 */
static inline __attribute__((always_inline)) int
ring_produce(struct ring *rings, unsigned nr, const unsigned char *buf,
	     struct raw_pace *pace, struct bench_child *children)
{
	const struct bench_opts *o = rings[0].o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "producer" };
	size_t off = o->size >= sizeof(struct bench_stamp) ?
		     sizeof(struct bench_stamp) : o->size < 8 ? o->size : 8;
	uint64_t ahead = (RING_PREFETCH + rings[0].stride - 1) /
			 rings[0].stride;
	uint64_t cons[BENCH_MAX_SUBS] = { 0 }, first, t;
	int k;

	while ((k = raw_pace_next(pace, 1, UINT64_MAX, &first, &t)) > 0) {
		for (uint64_t n = first; n < first + (uint64_t)k; n++) {
			for (unsigned j = 0; j < nr; j++) {
				struct ring *r = &rings[j];
				struct ring_slot *s;

				if (n - cons[j] >= r->nslots) {
					spin.child = &children[j];
					if (ring_room(r, n, &cons[j],
						      &spin) != 0)
						return -1;
				}
				/* Ask for the lines ahead in exclusive
				 * state, unless the consumer may still have
				 * to read them (of a big slot, the first
				 * RING_PREFETCH bytes). */
				if (n + ahead - cons[j] < r->nslots) {
					unsigned char *p = (unsigned char *)
						ring_at(r, n + ahead);

					for (size_t b = 0; b < r->stride &&
							   b < RING_PREFETCH;
					     b += 64)
						__builtin_prefetch(p + b, 1, 3);
				}
				s = ring_at(r, n);
				raw_stamp_put(s->data, o->size, t, n);
				memcpy(s->data + off, buf + off, o->size - off);
				atomic_store_explicit(&s->seq,
					n == pace->timed_first ?
					(n + 1) | RING_FIRST : n + 1,
					memory_order_release);
			}
		}
	}
	if (k == RAW_PACE_FAIL)
		return -1;
	for (unsigned j = 0; j < nr; j++)
		atomic_store_explicit(&rings[j].ctl->end, pace->n + 1,
				      memory_order_release);
	return 0;
}

static int ring_produce_one(struct ring *r, const unsigned char *buf,
			    struct raw_pace *pace, struct bench_child *child)
{
	return ring_produce(r, 1, buf, pace, child);
}

static int ring_produce_all(struct ring *rings, unsigned nr,
			    const unsigned char *buf, struct raw_pace *pace,
			    struct bench_child *children)
{
	return ring_produce(rings, nr, buf, pace, children);
}

/* Both shm runs: throughput (one ring) and fanout (one per consumer). */
static int shm_run(const struct bench_opts *o, struct bench_report *rep)
{
	struct consumers *c;
	struct ring *rings;
	struct raw_pace pace;
	unsigned char *buf;
	unsigned mapped = 0;
	cpu_set_t saved;
	int rc = -1;

	c = consumers_new(o, "raw shm");
	if (!c)
		return -1;
	rings = calloc(c->n, sizeof(*rings));
	if (!rings) {
		fprintf(stderr, "%s: raw shm: out of memory\n", BENCH_PROG);
		goto free_consumers;
	}
	buf = bench_payload_new(o->size, "raw shm");
	if (!buf)
		goto free_rings;
	for (; mapped < c->n; mapped++) {
		if (ring_map(&rings[mapped], o) != 0)
			goto unmap_rings;
		rings[mapped].sh = c->sh[mapped];
	}
	if (raw_pin_push(bench_cpu_of(o, 0), &saved) != 0)
		goto unmap_rings;
	for (unsigned i = 0; i < c->n; i++) {
		if (consumers_spawn(c, ring_consumer_main, &rings[i]) != 0 ||
		    wait_ready(&c->child[i], "raw shm") != 0) {
			consumers_kill(c);
			goto unpin;
		}
	}
	raw_pace_init(&pace, o, "raw-shm", c->child, NULL);
	pace.n_children = c->n;
	if ((c->n == 1 ? ring_produce_one(rings, buf, &pace, c->child) :
	     ring_produce_all(rings, c->n, buf, &pace, c->child)) != 0) {
		consumers_kill(c);
		goto fini_pace;
	}
	if (consumers_finish(c) != 0)
		goto fini_pace;
	raw_pace_fini(&pace);
	raw_pace_warn(&pace, rep, "raw-shm");
	rc = consumers_report(c, rep, "raw-shm");
	goto unpin;

fini_pace:
	raw_pace_fini(&pace);
unpin:
	raw_pin_pop(&saved);
unmap_rings:
	while (mapped-- > 0)
		munmap(rings[mapped].map, rings[mapped].map_len);
	free(buf);
free_rings:
	free(rings);
free_consumers:
	consumers_free(c);
	return rc;
}

int bench_raw_shm_throughput(const struct bench_opts *o,
			     struct bench_report *rep)
{
	return shm_run(o, rep);
}

int bench_raw_shm_fanout(const struct bench_opts *o, struct bench_report *rep)
{
	return shm_run(o, rep);
}

/* -------------------------------------------------------------- tcp stream */

#define TCP_BATCH (256u << 10) /* bytes per send() at the maximum rate */
#define TCP_RECV (256u << 10)  /* bytes per recv() */
#define TCP_HDR 4              /* little-endian payload length */
#define TCP_END UINT32_MAX     /* length of the end record: 8 bytes of count
				  follow */
#define TCP_FIRST 0x80000000u  /* in a length: the first timed message */

/* One consumer's connection; a fan-out has one per consumer. */
struct tcp_flow {
	const struct bench_opts *o;
	int lfd;
	uint16_t port;
	int fd;                 /* the producer's end, -1 until accepted */
	unsigned index;         /* the consumer's number */
	const struct tcp_flow *all; /* every consumer's, [0 .. index) open */
	struct share *sh;
};

static void put_le32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static void tcp_error(const char *who, const char *what)
{
	fprintf(stderr, "%s: raw tcp: %s: %s: %s\n", BENCH_PROG, who, what,
		strerror(errno));
}

/*
 * Parse what is in buf[0, len): each whole message is taken; the end
 * record ends the timed part and sets *end. Returns the bytes used, or -1
 * (said why).
 */
static ssize_t tcp_parse(struct raw_rx *rx, const unsigned char *buf,
			 size_t len, int *end)
{
	const size_t size = rx->o->size;
	size_t off = 0;

	while (len - off >= TCP_HDR) {
		uint32_t l = get_le32(buf + off);
		int r;

		if (l == TCP_END) {
			uint64_t v;

			if (len - off < TCP_HDR + 8)
				break;
			memcpy(&v, buf + off + TCP_HDR, 8);
			if (raw_rx_end(rx, le64toh(v)) != 0)
				return -1;
			*end = 1;
			return (ssize_t)(off + TCP_HDR + 8);
		}
		if ((l & ~TCP_FIRST) != size) {
			fprintf(stderr, "%s: raw tcp: consumer: message %llu "
				"has length %u, not %zu\n", BENCH_PROG,
				(unsigned long long)rx->next, l, size);
			return -1;
		}
		if (len - off < TCP_HDR + size)
			break;
		r = l == size ? raw_rx_take(rx, buf + off + TCP_HDR) :
				raw_rx_take_first(rx, buf + off + TCP_HDR);
		if (r != 0)
			return -1;
		off += TCP_HDR + size;
	}
	return (ssize_t)off;
}

static int tcp_consumer_main(void *arg, int rd, int wr)
{
	struct tcp_flow *f = arg;
	const struct bench_opts *o = f->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "consumer" };
	size_t cap = TCP_RECV > 2 * (TCP_HDR + o->size) ? TCP_RECV :
		     2 * (TCP_HDR + o->size);
	unsigned char *buf;
	size_t have = 0;
	struct raw_rx rx;
	int fd, end = 0, rc = 1;

	(void)rd;
	/* The producer's sockets, inherited: held open here, a consumer
	 * that died would not be seen to close. */
	close(f->lfd);
	for (unsigned i = 0; i < f->index; i++)
		close(f->all[i].fd);
	if (share_rx_init(f->sh, &rx, o, "raw tcp") != 0)
		return 1;
	buf = malloc(cap);
	if (!buf) {
		fprintf(stderr, "%s: raw tcp: consumer: out of memory\n",
			BENCH_PROG);
		goto fini_rx;
	}
	fd = raw_tcp_connect(f->port, "consumer");
	if (fd < 0)
		goto free_buf;
	if (consumer_ready(wr) != 0)
		goto close_fd;
	bench_spin_start(&spin, "the next raw tcp message");
	while (!end) {
		ssize_t n = recv(fd, buf + have, cap - have, MSG_DONTWAIT);
		ssize_t used;

		if (n > 0) {
			have += (size_t)n;
			used = tcp_parse(&rx, buf, have, &end);
			if (used < 0)
				goto close_fd;
			/* What is left is less than one message. */
			memmove(buf, buf + used, have - (size_t)used);
			have -= (size_t)used;
			bench_spin_start(&spin, "the next raw tcp message");
			continue;
		}
		if (n == 0) {
			fprintf(stderr, "%s: raw tcp: consumer: the producer "
				"closed the connection after %llu messages, "
				"before its end record\n", BENCH_PROG,
				(unsigned long long)rx.next);
			goto close_fd;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			tcp_error("consumer", "recv");
			goto close_fd;
		}
		raw_rx_flush(&rx);
		if (bench_spin_check(&spin) != 0)
			goto close_fd;
	}
	if (share_put(f->sh, &rx) == 0)
		rc = 0;
close_fd:
	close(fd);
free_buf:
	free(buf);
fini_rx:
	raw_rx_fini(&rx);
	return rc;
}

/* Send all of buf[0, len), busy-polling a full socket. */
static int tcp_send_all(int fd, const unsigned char *buf, size_t len,
			struct bench_spin *spin)
{
	bench_spin_start(spin, "room in the raw tcp socket");
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			bench_spin_start(spin, "room in the raw tcp socket");
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			tcp_error("producer", "send");
			return -1;
		}
		if (bench_spin_check(spin) != 0)
			return -1;
	}
	return 0;
}

/* The same bytes to every connection, in turn; a full one is waited
 * for, watching the consumer at its other end. */
static int tcp_send_each(const struct tcp_flow *f, unsigned n,
			 struct bench_child *children,
			 const unsigned char *buf, size_t len,
			 struct bench_spin *spin)
{
	for (unsigned j = 0; j < n; j++) {
		spin->child = &children[j];
		if (tcp_send_all(f[j].fd, buf, len, spin) != 0)
			return -1;
	}
	return 0;
}

/*
 * A batch holds `per` messages laid out once (length prefixes and filler
 * payload); sending one only rewrites the stamps. At a fixed rate every
 * message that is due goes out in one send() (several slots if the
 * producer is late); at the maximum rate a full batch does. A fan-out
 * sends each batch to every connection in turn.
 */
static int tcp_produce(const struct tcp_flow *f, unsigned nf,
		       struct raw_pace *pace, struct bench_child *children)
{
	const struct bench_opts *o = f[0].o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "producer" };
	const size_t msg = TCP_HDR + o->size;
	uint64_t per = TCP_BATCH / msg ? TCP_BATCH / msg : 1;
	unsigned char *batch = malloc(per * msg);
	unsigned char endrec[TCP_HDR + 8];
	uint64_t fill = 0, first, t, v;
	int rc = -1, k = 1;

	if (!batch) {
		fprintf(stderr, "%s: raw tcp: producer: out of memory\n",
			BENCH_PROG);
		return -1;
	}
	memset(batch, 0xa5, per * msg);
	while (k != RAW_PACE_DONE) {
		/* Wait for the next slot only with nothing to send. */
		k = raw_pace_next(pace, fill == 0, per - fill, &first, &t);
		if (k == RAW_PACE_FAIL)
			goto free_batch;
		for (int j = 0; j < k; j++) {
			unsigned char *m = batch + (fill + (uint64_t)j) * msg;
			uint64_t n = first + (uint64_t)j;

			put_le32(m, (uint32_t)o->size |
				    (n == pace->timed_first ? TCP_FIRST : 0));
			raw_stamp_put(m + TCP_HDR, o->size, t, n);
		}
		if (k > 0)
			fill += (uint64_t)k;
		/* Full, or nothing more is due now, or the run is over. */
		if (fill == per || (fill && k <= 0)) {
			if (tcp_send_each(f, nf, children, batch, fill * msg,
					  &spin) != 0)
				goto free_batch;
			fill = 0;
		}
	}
	put_le32(endrec, TCP_END);
	v = htole64(pace->n);
	memcpy(endrec + TCP_HDR, &v, 8);
	rc = tcp_send_each(f, nf, children, endrec, sizeof(endrec), &spin);
free_batch:
	free(batch);
	return rc;
}

/* Both tcp runs: throughput (one connection) and fanout (one per
 * consumer, set up one after the other so that connection i is
 * consumer i's). */
static int tcp_run(const struct bench_opts *o, struct bench_report *rep)
{
	struct consumers *c;
	struct tcp_flow *f;
	struct raw_pace pace;
	cpu_set_t saved;
	int lfd, rc = -1;
	uint16_t port;

	c = consumers_new(o, "raw tcp");
	if (!c)
		return -1;
	f = calloc(c->n, sizeof(*f));
	if (!f) {
		fprintf(stderr, "%s: raw tcp: out of memory\n", BENCH_PROG);
		goto free_consumers;
	}
	if (raw_tcp_listen(&lfd, &port, "producer") != 0)
		goto free_flows;
	for (unsigned i = 0; i < c->n; i++)
		f[i] = (struct tcp_flow){ .o = o, .lfd = lfd, .port = port,
					  .fd = -1, .index = i, .all = f,
					  .sh = c->sh[i] };
	if (raw_pin_push(bench_cpu_of(o, 0), &saved) != 0)
		goto close_listener;
	for (unsigned i = 0; i < c->n; i++) {
		if (consumers_spawn(c, tcp_consumer_main, &f[i]) != 0) {
			consumers_kill(c);
			goto close_fds;
		}
		f[i].fd = raw_tcp_accept(lfd, &c->child[i], "producer");
		if (f[i].fd < 0 || wait_ready(&c->child[i], "raw tcp") != 0) {
			consumers_kill(c);
			goto close_fds;
		}
	}
	raw_pace_init(&pace, o, "raw-tcp", c->child, NULL);
	pace.n_children = c->n;
	if (tcp_produce(f, c->n, &pace, c->child) != 0) {
		consumers_kill(c);
		goto fini_pace;
	}
	if (consumers_finish(c) != 0)
		goto fini_pace;
	raw_pace_warn(&pace, rep, "raw-tcp");
	rc = consumers_report(c, rep, "raw-tcp");
fini_pace:
	raw_pace_fini(&pace);
close_fds:
	for (unsigned i = 0; i < c->n; i++)
		if (f[i].fd >= 0)
			close(f[i].fd);
	raw_pin_pop(&saved);
close_listener:
	close(lfd);
free_flows:
	free(f);
free_consumers:
	consumers_free(c);
	return rc;
}

int bench_raw_tcp_throughput(const struct bench_opts *o,
			     struct bench_report *rep)
{
	return tcp_run(o, rep);
}

int bench_raw_tcp_fanout(const struct bench_opts *o, struct bench_report *rep)
{
	return tcp_run(o, rep);
}
