/*
 * muon-bench: the bare shared-memory ping-pong that muon's shm transport is
 * measured against. Two slots in one MAP_SHARED anonymous mapping made
 * before fork; a writer copies the payload in and then publishes it with a
 * release store of the slot's sequence number; the reader spins on acquire
 * loads and copies the payload out. Nothing cheaper moves bytes between two
 * processes, so this is the floor. The ping ends the run by publishing
 * the sequence number RAW_SHM_END instead of a ping.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"
#include "raw.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* 128 rather than 64: adjacent-line prefetchers fetch lines in pairs, so
 * slots only 64 bytes apart would still disturb each other. */
#define SLOT_ALIGN 128

#define RAW_SHM_END UINT64_MAX

/* The payload follows the sequence number directly, so a small message and
 * its sequence travel in one cache line, as they would in a tuned ring. */
struct slot {
	_Atomic uint64_t seq;
	unsigned char data[];
};

struct raw_shm {
	const struct bench_opts *o;
	void *map;
	size_t map_len;
	struct slot *to_pong;
	struct slot *to_ping;
	unsigned char *buf; /* private copy of the payload */
};

static int raw_shm_map(struct raw_shm *r, const struct bench_opts *o)
{
	size_t slot_len = (sizeof(struct slot) + o->size + SLOT_ALIGN - 1) &
			  ~(size_t)(SLOT_ALIGN - 1);

	r->o = o;
	r->map_len = 2 * slot_len;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->map == MAP_FAILED) {
		fprintf(stderr, "%s: raw shm: mmap %zu bytes: %s\n",
			BENCH_PROG, r->map_len, strerror(errno));
		return -1;
	}
	/* Page aligned, hence SLOT_ALIGN aligned; the mapping starts zeroed,
	 * which is "nothing published yet" for both slots. */
	r->to_pong = r->map;
	r->to_ping = (struct slot *)((char *)r->map + slot_len);
	r->buf = bench_payload_new(o->size, "raw shm");
	if (!r->buf) {
		munmap(r->map, r->map_len);
		return -1;
	}
	return 0;
}

static void raw_shm_unmap(struct raw_shm *r)
{
	free(r->buf);
	munmap(r->map, r->map_len);
}

static void slot_write(struct slot *s, const void *buf, size_t len,
		       uint64_t seq)
{
	memcpy(s->data, buf, len);
	atomic_store_explicit(&s->seq, seq, memory_order_release);
}

/* Wait until the slot's sequence number is no longer `old`; return it. */
static int slot_wait(struct slot *s, uint64_t old, uint64_t *seq,
		     struct bench_spin *spin)
{
	while ((*seq = atomic_load_explicit(&s->seq, memory_order_acquire)) ==
	       old)
		if (bench_spin_check(spin) != 0)
			return -1;
	return 0;
}

static int shm_pong_main(void *arg, int rd, int wr)
{
	struct raw_shm *r = arg;
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "pong" };

	(void)rd;
	(void)wr;
	for (uint64_t i = 1;; i++) {
		uint64_t seq;

		bench_spin_start(&spin, "the next raw shm ping");
		if (slot_wait(r->to_pong, i - 1, &seq, &spin) != 0)
			return 1;
		if (seq == RAW_SHM_END)
			return 0;
		if (seq != i) {
			fprintf(stderr, "%s: raw shm: pong: expected ping "
				"%llu, got %llu\n", BENCH_PROG,
				(unsigned long long)i, (unsigned long long)seq);
			return 1;
		}
		memcpy(r->buf, r->to_pong->data, o->size);
		slot_write(r->to_ping, r->buf, o->size, i);
	}
}

static int shm_ping(struct raw_shm *r, struct bench_child *child,
		    struct bench_pp *pp)
{
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .child = child,
				   .who = "ping" };
	uint64_t t0, t1;

	do {
		uint64_t i = pp->i, got, seq;

		bench_put_counter(r->buf, o->size, i);
		bench_spin_start(&spin, "the raw shm reply");
		t0 = bench_now_ns();
		slot_write(r->to_pong, r->buf, o->size, i + 1);
		if (slot_wait(r->to_ping, i, &seq, &spin) != 0)
			return -1;
		memcpy(r->buf, r->to_ping->data, o->size);
		t1 = bench_now_ns();
		got = bench_get_counter(r->buf, o->size);
		if (seq != i + 1 || got != bench_counter_mask(i, o->size)) {
			fprintf(stderr, "%s: raw shm: round trip %llu came "
				"back as %llu with counter %llu\n", BENCH_PROG,
				(unsigned long long)i,
				(unsigned long long)seq - 1,
				(unsigned long long)got);
			return -1;
		}
	} while (bench_pp_next(pp, t0, t1));
	atomic_store_explicit(&r->to_pong->seq, RAW_SHM_END,
			      memory_order_release);
	return 0;
}

int bench_raw_shm_pingpong(const struct bench_opts *o, struct bench_report *rep)
{
	struct raw_shm r;
	struct bench_child child;
	struct bench_pp pp;
	int rc = -1;

	if (raw_shm_map(&r, o) != 0)
		return -1;
	if (bench_pp_init(&pp, o, "raw") != 0)
		goto unmap;
	if (bench_child_spawn(&child, o->pong_cpu, shm_pong_main, &r) != 0)
		goto free_pp;
	if (shm_ping(&r, &child, &pp) != 0)
		goto kill_child;
	rc = bench_child_finish(&child, BENCH_TIMEOUT_NS);
	if (rc == 0)
		rc = bench_pp_add(&pp, rep, "raw-shm");
	goto free_pp;

kill_child:
	bench_child_kill(&child);
free_pp:
	bench_pp_fini(&pp);
unmap:
	raw_shm_unmap(&r);
	return rc;
}
