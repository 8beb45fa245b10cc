/*
 * muon-bench: shared declarations of the benchmark tool.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#ifndef MUON_BENCH_H
#define MUON_BENCH_H

#include <sched.h>
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

/* Where the verbs runs listen when neither --addr nor MUON_RDMA_ADDR says:
 * the Soft-RoCE address of the test VM (docs/rdma-vm.md). */
#define BENCH_VERBS_ADDR "192.0.2.1"

struct bench_opts {
	enum bench_transport transport;
	size_t size;
	uint64_t count;
	uint64_t warmup;
	int raw;       /* also run the bare baseline */
	int raw_only;  /* run only the baseline (hidden; works without muon) */
	int json;
	int ping_cpu;  /* -1: not pinned */
	int pong_cpu;
	int shared_cpu; /* both sides may run on one CPU: spin loops yield */
	const char *addr; /* verbs: local address of the RDMA device */
};

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

/* The pong side of a run, forked from the ping side. */
struct bench_child {
	pid_t pid;
	int reaped;
	int status;  /* wait status, valid once reaped */
	int to_child;   /* write end: parent -> child; EOF = done or gone */
	int from_child; /* read end, non-blocking: child -> parent */
};

/*
 * Runs in the child with its ends of the two pipes; the return value is the
 * child's exit status. `rd` is non-blocking.
 */
typedef int (*bench_child_fn)(void *arg, int rd, int wr);

int bench_child_spawn(struct bench_child *c, int cpu, bench_child_fn fn,
		      void *arg);
/* 0 while the child runs; -1 (and a message) once it has exited. */
int bench_child_check(struct bench_child *c);
/* Close our pipe ends: the child reads EOF, its cue that we are done. */
void bench_child_done(struct bench_child *c);
/* Wait up to timeout_ns for a clean exit; kill it past that. 0 if status 0. */
int bench_child_finish(struct bench_child *c, uint64_t timeout_ns);
/* Kill and reap; safe to call on a child already reaped or never spawned. */
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

/* -------------------------------------------------------------- results */

struct bench_stats {
	uint64_t min, p50, p90, p99, p999, max;
};

/* Sorts `samples` in place. */
void bench_stats_compute(uint64_t *samples, size_t n, struct bench_stats *st);

void bench_print_table(const struct bench_opts *o,
		       const struct bench_stats *muon,
		       const struct bench_stats *raw);
void bench_print_json(const struct bench_opts *o,
		      const struct bench_stats *muon,
		      const struct bench_stats *raw);

/* ------------------------------------------------------------- the runs */

/*
 * Each run forks the pong side, does o->warmup + o->count round trips and
 * leaves the o->count timed round-trip times in `samples` (preallocated).
 * 0 on success, -1 after printing why; no child is left behind either way.
 */
int bench_muon_pingpong(const struct bench_opts *o, uint64_t *samples);
int bench_raw_shm_pingpong(const struct bench_opts *o, uint64_t *samples);
int bench_raw_tcp_pingpong(const struct bench_opts *o, uint64_t *samples);
int bench_raw_verbs_pingpong(const struct bench_opts *o, uint64_t *samples);

#endif /* MUON_BENCH_H */
