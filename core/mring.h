/*
 * The shared-memory ring's write side: frames on 64-byte slots, each made
 * visible by a release-ordered commit word (ring position | 1) in its first
 * eight bytes. The shm transport owns the rings (transport/shm/shm.c); the
 * write is here so that publish can run it inline for an up-to-date shm
 * subscriber. An indirect call per message costs more than the write: its
 * register saves are stores, and on x86 every store queues behind the ring
 * store that may be waiting for the subscriber's cache line.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#ifndef MUONI_MRING_H
#define MUONI_MRING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/frame.h"
#include "core/muoni_prefetch.h"

/* Frames start on cache-line boundaries: a small message and its commit
 * word then arrive in one line, one miss per message. */
#define MUONI_MRING_SLOT 64u

#define MUONI_MRING_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* How far ahead the writer takes lines for writing: a reader read each of
 * them a lap ago, and a store that waits for its line holds back every
 * store behind it, the commit word included. Far enough ahead not to take
 * the line a caught-up reader polls. */
#ifndef MUONI_MRING_PREFETCH
#define MUONI_MRING_PREFETCH 1024
#endif

struct muoni_mring {
	uint8_t *ring;
	uint64_t cap;  /* power of two */
	uint64_t mask;
	uint64_t pos;  /* reader: read position; writer: write position */
	uint64_t aux;  /* reader: last position stored in its consumed word;
			  writer: the reader's consumed position, cached */
	/* Writer: the reader's flag saying it may sleep and must be woken,
	 * which only the transport can do. */
	const uint32_t *wake;
};

static inline uint32_t muoni_mring_slot(uint32_t len)
{
	return (len + (MUONI_MRING_SLOT - 1)) & ~(MUONI_MRING_SLOT - 1);
}

static inline _Atomic uint64_t *muoni_mring_commit_word(uint8_t *p)
{
	return (_Atomic uint64_t *)(void *)p;
}

/*
 * Write one frame at write position `wpos` (offset `off`, slot length
 * `flen`), which the caller has checked is free and does not wrap: the
 * header from `tf` (type, flags in the high half), `stream_id` and `seq`,
 * then `plen` payload bytes, then the commit word.
 */
static inline void muoni_mring_write(struct muoni_mring *r, uint64_t wpos,
				     uint64_t off, uint32_t flen, uint32_t tf,
				     uint32_t stream_id, uint64_t seq,
				     const void *payload, uint32_t plen)
{
	uint8_t *dst = r->ring + off;

	MUONI_PREFETCH_W(r->ring + ((wpos + MUONI_MRING_PREFETCH) & r->mask));
	muoni_frame_hdr_put(dst, (uint16_t)tf, (uint16_t)(tf >> 16),
			    MUONI_FRAME_HDR_LEN + plen, stream_id, seq);
	muoni_copy_small(dst + MUONI_FRAME_HDR_LEN, payload, plen);
	atomic_store_explicit(muoni_mring_commit_word(dst), wpos | 1,
			      memory_order_release);
	r->pos = wpos + flen;
}

/*
 * Write a DATA frame if that is simple: the cached view of the reader's
 * position shows room, the frame does not wrap, and the reader does not
 * need a wake-up. Returns false otherwise, and the transport's own push
 * does the rest.
 */
static inline bool muoni_mring_put_fast(struct muoni_mring *r,
					uint32_t stream_id, uint64_t seq,
					const void *payload, uint32_t plen)
{
	uint32_t flen = muoni_mring_slot(MUONI_FRAME_HDR_LEN + plen);
	uint64_t wpos = r->pos, off = wpos & r->mask;

	if (MUONI_MRING_UNLIKELY(off + flen > r->cap ||
				 wpos + flen - r->aux > r->cap || *r->wake))
		return false;
	muoni_mring_write(r, wpos, off, flen, MUONI_FT_DATA, stream_id, seq,
			  payload, plen);
	return true;
}

#endif /* MUONI_MRING_H */
