#include "core/sendlog.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <muon/muon.h>

#include "core/error.h"
#include "core/muoni.h"

int muoni_sendlog_init(struct muoni_sendlog *log, uint64_t cap,
		       uint32_t stream_id)
{
	void *buf;

	if (cap < 4096 || (cap & (cap - 1)))
		return MUONI_ERR(MUON_ECONFIG, "send log size %llu is not a "
				 "power of two >= 4096",
				 (unsigned long long)cap);
	/* The slack past cap holds a PAD header that starts fewer than 32
	 * bytes before the end. Huge pages where the system allows them:
	 * fewer TLB misses as the head sweeps the log. */
	buf = mmap(NULL, cap + MUONI_SENDLOG_SLACK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return MUONI_ERR_ERRNO("mmap send log of %llu bytes",
				       (unsigned long long)cap);
	madvise(buf, cap + MUONI_SENDLOG_SLACK, MADV_HUGEPAGE);
	/* Fault every page in now: a page fault on the publish path costs
	 * microseconds (tens under some hypervisors). */
	muoni_pretouch(buf, cap + MUONI_SENDLOG_SLACK, true);
	log->buf = buf;
	log->cap = cap;
	log->mask = cap - 1;
	log->head = 0;
	log->tail = 0;
	log->next_seq = 1;
	log->tail_seq = 1;
	log->pad_pos = UINT64_MAX;
	log->stream_id = stream_id;
	return 0;
}

void muoni_sendlog_fini(struct muoni_sendlog *log)
{
	if (log->buf)
		munmap(log->buf, log->cap + MUONI_SENDLOG_SLACK);
	log->buf = NULL;
}

/* Drop whole frames from the tail until nothing before `limit` is kept. */
static void sendlog_evict(struct muoni_sendlog *log, uint64_t limit)
{
	while (log->tail < limit && log->tail < log->head) {
		const struct muoni_frame_hdr *h =
			(const void *)(log->buf + (log->tail & log->mask));
		if (h->type == MUONI_FT_DATA)
			log->tail_seq = h->seq + 1;
		if (h->type == MUONI_FT_PAD)
			log->tail += log->cap - (log->tail & log->mask);
		else
			log->tail += muoni_align8(h->len);
	}
}

struct muoni_frame_hdr *muoni_sendlog_reserve_slow(struct muoni_sendlog *log,
						   uint32_t len)
{
	uint64_t flen = muoni_align8(MUONI_FRAME_HDR_LEN + len);
	uint64_t off = log->head & log->mask;
	uint64_t total = muoni_sendlog_need(log, len);

	if (log->head + total > log->cap)
		sendlog_evict(log, log->head + total - log->cap);
	if (off + flen > log->cap) {
		struct muoni_frame_hdr *pad = (void *)(log->buf + off);
		muoni_frame_hdr_init(pad, MUONI_FT_PAD,
				     (uint32_t)(log->cap - off),
				     log->stream_id, 0);
		if (log->tail == log->head)
			log->tail += log->cap - off; /* empty: skip the PAD */
		log->pad_pos = log->head;
		log->head += log->cap - off;
		off = 0;
	}
	return muoni_sendlog_zero_tail(log->buf + off, len);
}

uint64_t muoni_sendlog_find(const struct muoni_sendlog *log, uint64_t seq)
{
	uint64_t pos = log->tail;

	while (pos < log->head) {
		const struct muoni_frame_hdr *h =
			(const void *)(log->buf + (pos & log->mask));
		if (h->type == MUONI_FT_PAD) {
			pos += log->cap - (pos & log->mask);
			continue;
		}
		if (h->seq >= seq)
			return pos;
		pos += muoni_align8(h->len);
	}
	return log->head;
}
