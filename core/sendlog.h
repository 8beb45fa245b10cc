/*
 * The send log: a publication's ring of encoded frames. Every message is
 * written here once; each subscriber connection has a cursor into it, so
 * the log is both the fan-out source and the retransmit window for late
 * joiners and reconnects. Frames never wrap: one that does not fit before
 * the end is preceded by a PAD frame to the end. Positions are 64-bit and
 * only grow, so position - cap is always the oldest byte that may exist.
 */
#ifndef MUONI_SENDLOG_H
#define MUONI_SENDLOG_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "core/frame.h"
#include "core/muoni_prefetch.h"

#define MUONI_SENDLOG_SLACK 4096u

struct muoni_sendlog {
	uint8_t *buf;
	uint64_t cap;       /* power of two */
	uint64_t mask;
	uint64_t head;      /* where the next frame (or its PAD) goes */
	uint64_t tail;      /* oldest retained frame */
	uint64_t next_seq;  /* sequence of the next DATA frame (from 1) */
	uint64_t tail_seq;  /* sequence of the first DATA frame at/after tail */
	uint64_t pad_pos;   /* where the latest PAD starts; UINT64_MAX: none */
	uint32_t stream_id;
};

int muoni_sendlog_init(struct muoni_sendlog *log, uint64_t cap,
		       uint32_t stream_id);
void muoni_sendlog_fini(struct muoni_sendlog *log);

/*
 * Bytes the head will advance to append a payload of `len`, including a
 * PAD to the end of the buffer when the frame would not fit before it.
 */
static inline uint64_t muoni_sendlog_need(const struct muoni_sendlog *log,
					  uint32_t len)
{
	uint64_t flen = muoni_align8(MUONI_FRAME_HDR_LEN + len);
	uint64_t off = log->head & log->mask;

	return off + flen > log->cap ? flen + (log->cap - off) : flen;
}

/*
 * Zero the alignment tail of the frame at `f` (it is sent as-is to every
 * subscriber) before the payload is written: the payload then leaves it
 * alone, and no call to memset is needed after.
 */
static inline struct muoni_frame_hdr *muoni_sendlog_zero_tail(uint8_t *f,
							      uint32_t len)
{
	uint32_t flen = MUONI_FRAME_HDR_LEN + len;

	if (flen & (MUONI_FRAME_ALIGN - 1)) {
		uint64_t z = 0;

		__builtin_memcpy(f + muoni_align8(flen) - 8, &z, 8);
	}
	return (struct muoni_frame_hdr *)(void *)f;
}

/*
 * Make room for a payload of `len` at the head: write the PAD if needed,
 * evict the oldest frames that overlap, and return the frame's header
 * (payload follows; its alignment tail is zeroed). The caller has already
 * checked that no cursor still needs the evicted bytes. Does not advance
 * head past the frame itself.
 */
struct muoni_frame_hdr *muoni_sendlog_reserve_slow(struct muoni_sendlog *log,
						   uint32_t len);

/* Far enough ahead that the line has arrived when the store comes. */
#define MUONI_SENDLOG_PREFETCH 512

/*
 * Inline because publish runs them per message: each call would push
 * registers, and on x86 every store, pushes included, queues behind the
 * one to the subscriber's ring that may be waiting for its cache line.
 *
 * reserve_fast: the reserve of the steady state (no wrap, at most one
 * frame evicted). Returns NULL, having changed nothing, when it would take
 * the slow path.
 */
static inline struct muoni_frame_hdr *
muoni_sendlog_reserve_fast(struct muoni_sendlog *log, uint32_t len)
{
	uint64_t flen = muoni_align8(MUONI_FRAME_HDR_LEN + len);
	uint64_t off = log->head & log->mask;

	if (__builtin_expect(off + flen > log->cap, 0))
		return NULL;
	/* Evict the one frame the new one overwrites, in the steady state of
	 * a full log with frames of one size; anything else is slow. */
	if (log->head + flen > log->tail + log->cap) {
		const struct muoni_frame_hdr *t =
			(const void *)(log->buf + (log->tail & log->mask));
		uint64_t tlen = muoni_align8(t->len);

		if (__builtin_expect(t->type != MUONI_FT_DATA ||
				     log->head + flen > log->tail + tlen +
							log->cap, 0))
			return NULL;
		log->tail_seq = t->seq + 1;
		log->tail += tlen;
	}
	return muoni_sendlog_zero_tail(log->buf + off, len);
}

static inline struct muoni_frame_hdr *
muoni_sendlog_reserve(struct muoni_sendlog *log, uint32_t len)
{
	struct muoni_frame_hdr *h = muoni_sendlog_reserve_fast(log, len);

	return __builtin_expect(h != NULL, 1) ? h
					      : muoni_sendlog_reserve_slow(log, len);
}

/* Finish the frame reserved at head with `len` payload bytes; returns its
 * sequence number and advances head. */
static inline uint64_t muoni_sendlog_commit(struct muoni_sendlog *log,
					    uint32_t len)
{
	struct muoni_frame_hdr *h = (void *)(log->buf + (log->head & log->mask));
	uint32_t flen = MUONI_FRAME_HDR_LEN + len;
	uint64_t seq = log->next_seq++;

	h->commit = 0;
	muoni_frame_hdr_put(h, MUONI_FT_DATA, 0, flen, log->stream_id, seq);
	if (log->tail == log->head)
		log->tail_seq = seq;
	log->head += muoni_align8(flen);
	/* Own the next lines before the stores come: on x86 a store miss here
	 * would hold back the ring's commit store, which must become visible
	 * after it. The same lines hold the oldest frames that the next
	 * reserve evicts. */
	MUONI_PREFETCH_W(log->buf + ((log->head + MUONI_SENDLOG_PREFETCH) &
				     log->mask));
	return seq;
}

/*
 * Oldest sequence still in the log (next_seq if empty). Replay from any
 * seq in [oldest, next_seq] is possible.
 */
static inline uint64_t muoni_sendlog_oldest(const struct muoni_sendlog *log)
{
	return log->tail == log->head ? log->next_seq : log->tail_seq;
}

/* Position of the DATA frame carrying `seq`, which must be in
 * [oldest, next_seq]; next_seq maps to head. */
uint64_t muoni_sendlog_find(const struct muoni_sendlog *log, uint64_t seq);

/*
 * The contiguous run of whole frames starting at *pos (skipping a PAD
 * there, which moves *pos to the next lap). Sets *p and returns its length;
 * 0 when *pos == head.
 */
static inline size_t muoni_sendlog_run(const struct muoni_sendlog *log,
				       uint64_t *pos, const uint8_t **p)
{
	uint64_t off, end;
	const struct muoni_frame_hdr *h;

	if (*pos == log->head)
		return 0;
	off = *pos & log->mask;
	h = (const struct muoni_frame_hdr *)(log->buf + off);
	if (h->type == MUONI_FT_PAD) {
		*pos += log->cap - off;
		if (*pos == log->head)
			return 0;
		off = 0;
	}
	end = log->head - *pos;
	if (off + end > log->cap)
		end = log->cap - off;
	/* A cursor behind a wrap would otherwise send the PAD that ends its
	 * lap: there is at most one PAD between a cursor and the head. */
	if (log->pad_pos >= *pos && log->pad_pos < *pos + end)
		end = log->pad_pos - *pos;
	*p = log->buf + off;
	return (size_t)end;
}

#endif
