/*
 * muon-bench: shared declarations of the benchmark tool.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#ifndef MUON_BENCH_H
#define MUON_BENCH_H

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define BENCH_PROG "muon-bench"

/* How long any single wait (setup step, one reply) may take. */
#define BENCH_TIMEOUT_NS (10ull * 1000000000ull)

/* Largest --size we accept; muon's limits are raised to fit it. */
#define BENCH_MAX_SIZE (16u * 1024u * 1024u)

enum bench_transport { BENCH_SHM, BENCH_TCP, BENCH_VERBS };

enum bench_mode {
	BENCH_PINGPONG,   /* one message in flight: round trip (and half) */
	BENCH_THROUGHPUT, /* one publisher to one subscriber, max or --rate */
	BENCH_FANOUT,     /* one publisher to --subs subscribers */
	BENCH_STREAMS,    /* --pubs publications over --topics topics */
};

/* Where the sides of a run live. */
enum bench_layout {
	BENCH_LAYOUT_PROCESS, /* one process per side, forked (default) */
	BENCH_LAYOUT_THREAD,  /* one thread per side in this process */
};

/* Two hosts: each runs one side and finds the other through discovery. */
enum bench_role { BENCH_ROLE_BOTH, BENCH_ROLE_PUB, BENCH_ROLE_SUB };

#define BENCH_MAX_SIZES 64
#define BENCH_MAX_CPUS 256
#define BENCH_MAX_SUBS 64
#define BENCH_MAX_PUBS 1024

/* Where the verbs runs listen when neither --addr nor MUON_RDMA_ADDR says:
 * the Soft-RoCE address of the test VM (docs/rdma-vm.md). */
#define BENCH_VERBS_ADDR "192.0.2.1"

struct bench_opts {
	enum bench_mode mode;
	enum bench_transport transport;
	enum bench_layout layout;
	enum bench_role role;
	size_t sizes[BENCH_MAX_SIZES]; /* --size list or sweep, in order */
	unsigned n_sizes;
	size_t size;       /* the size being measured now (set per run) */
	uint64_t count;    /* timed messages (round trips) per size; 0 when
			      --duration is given */
	uint64_t duration_ns; /* timed part per size when count == 0 */
	uint64_t warmup;   /* untimed messages before them */
	uint64_t rate;     /* offered messages/s per publisher; 0 = as fast
			      as possible */
	unsigned burst;    /* messages sent back to back per send slot */
	int batch;         /* muon: a burst is one muon_publishv() call */
	unsigned subs;     /* fanout: subscribers (default 4) */
	unsigned pubs;     /* streams: publications (default 16) */
	unsigned topics;   /* streams: topics (default 4), pubs spread over */
	int raw;           /* also run the bare baseline */
	int raw_only;      /* run only the baseline (hidden; works without
			      muon) */
	int check_host;    /* only the checks before a run, stalls for 1 s */
	int json;
	int csv;
	const char *hgrm;  /* prefix of HdrHistogram percentile files, or
			      NULL */
	const char *png;   /* percentile plot, or NULL */
	int progress;      /* progress lines on stderr (a terminal) */
	int cpus[BENCH_MAX_CPUS]; /* --cpu list: side i runs on cpus[i % n] */
	unsigned n_cpus;   /* 0: not pinned */
	int ping_cpu;      /* pingpong: cpus[0] / cpus[1], -1: not pinned */
	int pong_cpu;
	int shared_cpu;    /* some busy sides share a CPU: spin loops yield */
	const char *addr;  /* verbs: local address of the RDMA device */
	const char *discovery;   /* --role: daemons to find the peer with */
	const char *secret_file; /* --role: cluster secret, or NULL */
	const char *run_id;      /* --role: names the topics, so several runs
				    can share daemons; both hosts give the
				    same one */
};

/* The CPU that side number `i` (0 = publisher or ping) is pinned to, or -1. */
static inline int bench_cpu_of(const struct bench_opts *o, unsigned i)
{
	return o->n_cpus ? o->cpus[i % o->n_cpus] : -1;
}

/* Subscribers of a run: one for pingpong and throughput, --subs (at least
 * one) for fanout and streams. */
static inline unsigned bench_subs(const struct bench_opts *o)
{
	switch (o->mode) {
	case BENCH_PINGPONG:
	case BENCH_THROUGHPUT:
		return 1;
	case BENCH_FANOUT:
	case BENCH_STREAMS:
		return o->subs ? o->subs : 1;
	}
	return 1;
}

static inline const char *bench_mode_name(enum bench_mode m)
{
	switch (m) {
	case BENCH_PINGPONG: return "pingpong";
	case BENCH_THROUGHPUT: return "throughput";
	case BENCH_FANOUT: return "fanout";
	case BENCH_STREAMS: return "streams";
	}
	return "?";
}

static inline const char *bench_transport_name(enum bench_transport t)
{
	switch (t) {
	case BENCH_SHM: return "shm";
	case BENCH_TCP: return "tcp";
	case BENCH_VERBS: return "verbs";
	}
	return "?";
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The round-trip counter lives in the first min(size, 8) payload bytes,
 * little-endian, so the check works for any --size and any host order.
 */
static inline void bench_put_counter(unsigned char *buf, size_t size,
				     uint64_t v)
{
	size_t n = size < 8 ? size : 8;

	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t bench_get_counter(const unsigned char *buf,
					 size_t size)
{
	size_t n = size < 8 ? size : 8;
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)buf[i] << (8 * i);
	return v;
}

/* The counter as it survives truncation to a payload of `size` bytes. */
static inline uint64_t bench_counter_mask(uint64_t v, size_t size)
{
	return size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
}

/* ------------------------------------------------------------ processes */

/*
 * The pong side of a run: a process forked from the ping side, or with
 * --layout thread a thread of the ping's process. Both talk to the ping
 * through the same two pipes, so the pong's code does not know which it
 * is, except that a thread cannot be killed: its waits watch `stop`
 * (bench_spin.abort), which bench_child_kill() sets.
 */
typedef int (*bench_child_fn)(void *arg, int rd, int wr);

struct bench_child {
	pid_t pid;      /* -1 for a thread */
	int reaped;
	int status;     /* wait status (a thread: its return value), valid
			 * once reaped */
	int to_child;   /* write end: parent -> child; EOF = done or gone */
	int from_child; /* read end, non-blocking: child -> parent */
	/* A thread only: */
	int is_thread;
	pthread_t thread;
	_Atomic int done; /* fn returned and the thread closed its ends */
	_Atomic int stop; /* the ping gave up: so should the pong */
	bench_child_fn fn;
	void *arg;
	int cpu, rd, wr;
	int rc;         /* fn's return value, once done */
};

/*
 * Runs in the child with its ends of the two pipes; the return value is the
 * child's exit status. `rd` is non-blocking.
 */
int bench_child_spawn(struct bench_child *c, int cpu, bench_child_fn fn,
		      void *arg);
/* The same in a thread pinned to `cpu`; fn's ends of the pipes are closed
 * when it returns, as a process's would be when it exits. */
int bench_child_spawn_thread(struct bench_child *c, int cpu, bench_child_fn fn,
			     void *arg);
/* 0 while the child runs; -1 (and a message) once it has exited. */
int bench_child_check(struct bench_child *c);
/* Close our pipe ends: the child reads EOF, its cue that we are done. */
void bench_child_done(struct bench_child *c);
/* Wait up to timeout_ns for a clean exit; kill it past that. 0 if status 0. */
int bench_child_finish(struct bench_child *c, uint64_t timeout_ns);
/* Kill (a thread: stop) and reap; safe to call on a child already reaped
 * or never spawned. */
void bench_child_kill(struct bench_child *c);

int bench_pin_self(int cpu);

/*
 * Bounded busy wait. The hot path is one increment and one branch; the
 * clock and the child's liveness are looked at every few thousand spins,
 * so a timing loop pays nothing for the safety net.
 */
struct bench_spin {
	unsigned n;
	int yield;           /* ping and pong share a CPU: let the other run */
	uint64_t deadline;   /* 0 until the first slow check */
	struct bench_child *child; /* NULL on the pong side */
	/* Two threads instead of two processes: nonzero once the other side
	 * gave up (it says why itself). NULL when unused. */
	const _Atomic int *abort;
	const char *who;     /* "ping" or "pong", for the timeout message */
	const char *what;
};

int bench_spin_slow(struct bench_spin *s);

static inline void bench_spin_start(struct bench_spin *s, const char *what)
{
	s->n = 0;
	s->deadline = 0;
	s->what = what;
}

/* 0: keep waiting; -1: give up (message printed). */
static inline int bench_spin_check(struct bench_spin *s)
{
	if (s->yield)
		sched_yield();
	if (++s->n & 4095)
		return 0;
	return bench_spin_slow(s);
}

/* Non-blocking read of exactly `len` bytes: 1 read, 0 nothing yet, -1 error
 * or EOF. Messages are written whole (<= PIPE_BUF), so they arrive whole. */
int bench_pipe_try_read(int fd, void *buf, size_t len);
int bench_pipe_write(int fd, const void *buf, size_t len);

/* A message buffer of `size` bytes (at least 1), filled with a fixed
 * pattern; NULL after saying "<who>: out of memory". Free with free(). */
unsigned char *bench_payload_new(size_t size, const char *who);

/* ------------------------------------------------------------ histogram */

/*
 * A log-linear histogram of nanosecond values in the manner of
 * HdrHistogram: values up to `highest` are kept with 3 significant decimal
 * digits (relative error under 0.1 %), in a fixed array allocated once, so
 * recording is one index computation and one increment: no allocation, no
 * system call. Values above `highest` are clamped to it and counted in
 * `clamped`.
 */
struct bench_hist {
	uint64_t *counts;
	uint32_t n_counts;
	uint32_t sub_bucket_count;   /* 2048 for 3 significant digits */
	uint32_t sub_bucket_half_count_mag;
	uint32_t sub_bucket_half_count;
	uint64_t sub_bucket_mask;
	uint32_t unit_mag;           /* 0: resolution 1 ns */
	uint64_t highest;
	uint64_t total;
	uint64_t min, max;           /* exact */
	uint64_t clamped;
	double sum;                  /* for the mean */
	double sum_sq;               /* for the standard deviation */
};

/* highest: the largest value to keep exactly (e.g. 60 s in ns). 0 or -1. */
int bench_hist_init(struct bench_hist *h, uint64_t highest);
void bench_hist_fini(struct bench_hist *h);  /* NULL-safe */
void bench_hist_reset(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t v);
void bench_hist_record_n(struct bench_hist *h, uint64_t v, uint64_t n);
/* dst += src; both made with the same `highest`. */
void bench_hist_add(struct bench_hist *dst, const struct bench_hist *src);
/* The value at percentile p (0..100): the lowest recorded value that at
 * least p percent of values are at or below, reported as the highest value
 * equivalent to its bucket (as HdrHistogram does). 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);
double bench_hist_mean(const struct bench_hist *h);
double bench_hist_stddev(const struct bench_hist *h);
/*
 * Write the percentile distribution in HdrHistogram's text format (the
 * .hgrm that its plotter and HistogramLogAnalyzer read): columns Value,
 * Percentile, TotalCount, 1/(1-Percentile), `ticks` steps per halving
 * distance (5 as HdrHistogram's default), values divided by `scale` (1000
 * for microseconds), then the Mean/StdDeviation/Max/Total count footer.
 */
int bench_hist_write_hgrm(const struct bench_hist *h, FILE *f,
			  unsigned ticks, double scale);

/* -------------------------------------------------------------- results */

/* What the latency of a result measures. */
enum bench_lat_kind {
	BENCH_LAT_NONE,    /* throughput only (e.g. clocks of two hosts) */
	BENCH_LAT_RTT,     /* round trip */
	BENCH_LAT_HALF,    /* round trip / 2 */
	BENCH_LAT_ONEWAY,  /* intended send time to delivery, same clock */
};

/* One measured series: a row of the table. */
struct bench_result {
	char impl[24];        /* "muon", "raw-shm", "raw-tcp", "raw-verbs" */
	char series[24];      /* "rtt", "half", "sub", "sub3", "first",
				 "last", "all", ... */
	enum bench_mode mode;
	enum bench_transport transport;
	size_t size;          /* payload bytes */
	uint64_t messages;    /* delivered in the timed part */
	uint64_t lost;        /* expected but not delivered (must be 0) */
	uint64_t seconds_ns;  /* length of the timed part */
	enum bench_lat_kind lat;
	struct bench_hist hist; /* empty when lat == BENCH_LAT_NONE */
};

/* All results of one invocation, printed together at the end. */
struct bench_report {
	struct bench_result *r;
	size_t n, cap;
	char (*warnings)[256];
	size_t n_warnings, cap_warnings;
};

/* Moves `res` (and its histogram) into the report; `res` is left empty. */
int bench_report_add(struct bench_report *rep, struct bench_result *res);
void bench_report_fini(struct bench_report *rep);
/*
 * Record a warning: printed on stderr now and again under the table (and
 * in the JSON "warnings" array), so that it is not scrolled away.
 */
void bench_warn(struct bench_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Table (default), --json or --csv on stdout; then --hgrm and --png files.
 * 0, or -1 after saying why a file could not be written. */
int bench_report_print(const struct bench_opts *o, struct bench_report *rep);

/* Warnings about the conditions of a run, before it starts. */
void bench_check_clock(struct bench_report *rep);
/* Also -1 (and a message) when a pinned side's CPU is not one this process
 * may run on: the caller exits 1. */
int bench_check_cpus(const struct bench_opts *o, unsigned busy_sides,
		     struct bench_report *rep);
/*
 * How much time the host takes from a busy thread (host.c): a 100 ms
 * loop reading the clock on each CPU of the run's sides at once, gaps of
 * 2 us or more counted as lost. Warns past 1 % lost or a 100 us stall.
 * bench_noise_print() writes what was found for the report's header
 * (json: the elements of an array); nothing if it was not measured.
 */
void bench_check_noise(const struct bench_opts *o, unsigned busy_sides,
		       struct bench_report *rep);
void bench_noise_print(FILE *f, int json);
int bench_noise_measured(void);
/*
 * Where the run's pinned CPUs sit (host.c, from sysfs, or the tree named
 * by $MUON_BENCH_SYSFS): warns when two are hyper-thread siblings, when
 * they span NUMA nodes, and when a CPU's frequency governor is not
 * "performance". Says nothing when sysfs does not tell.
 */
void bench_check_host(const struct bench_opts *o, unsigned busy_sides,
		      struct bench_report *rep);

/*
 * Progress on stderr, one line rewritten in place, only when stderr is a
 * terminal and o->progress. Cheap to call per message: it looks at the
 * clock every 4096 calls and prints at most 4 times a second.
 */
struct bench_progress {
	int on;
	unsigned n;
	uint64_t next_ns;
	uint64_t start_ns;
	uint64_t total;       /* messages expected, or 0 with end_ns */
	uint64_t end_ns;      /* --duration end, or 0 */
	char what[96];
};
void bench_progress_start(struct bench_progress *p, const struct bench_opts *o,
			  const char *what, uint64_t total, uint64_t end_ns);
void bench_progress_slow(struct bench_progress *p, uint64_t done);
static inline void bench_progress_tick(struct bench_progress *p, uint64_t done)
{
	if (p->on && !(++p->n & 4095))
		bench_progress_slow(p, done);
}
void bench_progress_end(struct bench_progress *p);

/* ------------------------------------------------------------- the runs */

/*
 * Each run measures o->size for every mode it supports and adds its
 * results to `rep` (o->count or o->duration_ns timed, after o->warmup).
 * 0 on success, -1 after printing why; no child process or thread is left
 * behind either way.
 *
 * muon: muon_pingpong.c (pingpong) and muon_flow.c (throughput, fanout,
 * streams); o->role selects one side of a two-host run.
 * raw: bare shared memory, TCP and RDMA WRITE_WITH_IMM without muon,
 * for pingpong, throughput and fanout (declared with the fan-out
 * helpers below); streams compares against the raw throughput floor.
 */
int bench_muon_pingpong(const struct bench_opts *o, struct bench_report *rep);
int bench_muon_flow(const struct bench_opts *o, struct bench_report *rep);
int bench_raw_shm_pingpong(const struct bench_opts *o, struct bench_report *rep);
int bench_raw_tcp_pingpong(const struct bench_opts *o, struct bench_report *rep);
int bench_raw_verbs_pingpong(const struct bench_opts *o,
			     struct bench_report *rep);
int bench_raw_shm_throughput(const struct bench_opts *o,
			     struct bench_report *rep);
int bench_raw_tcp_throughput(const struct bench_opts *o,
			     struct bench_report *rep);
int bench_raw_verbs_throughput(const struct bench_opts *o,
			       struct bench_report *rep);

/*
 * The payload of the one-way modes starts with a bench_stamp (when the
 * size allows; smaller payloads carry what fits of it): the intended send
 * time on CLOCK_MONOTONIC (not the actual one: at a fixed rate a late send
 * counts its lateness, so there is no coordinated omission) and the
 * message's number in its stream, which the subscriber checks for order
 * and gaps.
 */
struct bench_stamp {
	uint64_t intended_ns;
	uint64_t n;
};

/* ------------------------------------------------------------- fan-out */

/*
 * What the muon and the raw fan-out share (fanout.c). Each subscriber
 * keeps, per timed message number i (counted from the first timed one),
 * its latency + 1 in win[i] (0: not delivered, or not timed), for the
 * first `len` messages: memory stays bounded however long the run.
 */
#define BENCH_FANOUT_WINDOW_MAX (1ull << 20)   /* entries per subscriber */
#define BENCH_FANOUT_WINDOW_BYTES (64ull << 20) /* all subscribers */

/* Entries per subscriber for a fan-out to `subs`. */
uint64_t bench_fanout_window(const struct bench_opts *o, unsigned subs);

struct bench_fanout {
	const char *impl;      /* "muon", "raw-shm", ... */
	unsigned n_subs;
	const uint64_t *win[BENCH_MAX_SUBS]; /* each subscriber's window */
	uint64_t len;          /* entries in each */
	uint64_t used;         /* entries any subscriber may have set */
	uint64_t messages;     /* the fewest timed messages a subscriber took */
	uint64_t start_ns, end_ns; /* the earliest start, the latest end */
};

/*
 * Adds the "first" and "last" results: per message in the windows that
 * every subscriber got, the smallest and the largest latency; and warns
 * with the ratio last / first at p50 and p99. 0, or -1 (said why).
 */
int bench_fanout_first_last(const struct bench_opts *o,
			    struct bench_report *rep,
			    const struct bench_fanout *fo);

/*
 * The bare fan-out (raw_flow.c, raw_verbs.c): one producer hands every
 * message to each of bench_subs(o) consumers in turn, rows sub0.. and
 * first/last as the muon fan-out has.
 */
int bench_raw_shm_fanout(const struct bench_opts *o, struct bench_report *rep);
int bench_raw_tcp_fanout(const struct bench_opts *o, struct bench_report *rep);
int bench_raw_verbs_fanout(const struct bench_opts *o,
			   struct bench_report *rep);

#endif /* MUON_BENCH_H */
