/*
 * Frame codec. Every byte that crosses a connection is a frame: a 32-byte
 * header and a payload, 8-byte aligned, little-endian host order (muon
 * refuses to build on big-endian hosts). The same frames travel in shm
 * rings, TCP streams and RDMA rings; see docs/protocol.md.
 *
 * Data and stream-control frames flow publisher -> subscriber in order;
 * HELLO/SUBSCRIBE/UNSUBSCRIBE/HEARTBEAT/CLOSE flow subscriber -> publisher
 * on the transport's control channel.
 */
#ifndef MUONI_FRAME_H
#define MUONI_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "muon's wire format is little-endian; big-endian hosts are unsupported"
#endif

#define MUONI_PROTO_VERSION 1
#define MUONI_FRAME_ALIGN 8u
#define MUONI_FRAME_HDR_LEN 32u
#define MUONI_TOPIC_MAX 255u
/* Control payloads are small; a peer cannot make us accept a bigger one. */
#define MUONI_CTRL_MAX 65536u

enum muoni_frame_type {
	MUONI_FT_PAD = 1,         /* filler up to the end of a ring/log */
	MUONI_FT_DATA = 2,        /* one message; seq = its sequence */
	MUONI_FT_HELLO = 3,       /* both ways, first frame: ids, version */
	MUONI_FT_STREAM_INFO = 4, /* pub->sub: stream up; seq = first seq */
	MUONI_FT_LOSS = 5,        /* pub->sub: [seq, payload.to] are gone */
	MUONI_FT_STREAM_END = 6,  /* pub->sub: stream closed; seq = last */
	MUONI_FT_HEARTBEAT = 7,   /* both ways, liveness when idle */
	MUONI_FT_SUBSCRIBE = 8,   /* sub->pub */
	MUONI_FT_UNSUBSCRIBE = 9, /* sub->pub */
	MUONI_FT_CLOSE = 10,      /* both ways: reason, then the link closes */
	MUONI_FT_MAX_ = 11,
};

struct muoni_frame_hdr {
	/* shm rings: (ring position | 1), stored last with release order so
	 * one acquire load tells a complete frame; other transports: 0. */
	uint64_t commit;
	uint32_t len;       /* header + payload bytes, not padded */
	uint16_t type;
	uint16_t flags;
	uint32_t stream_id;
	uint32_t reserved;
	uint64_t seq;
};

_Static_assert(sizeof(struct muoni_frame_hdr) == MUONI_FRAME_HDR_LEN,
	       "frame header is 32 bytes on the wire");

/* Frames of the control channel (the rest travel on the data path). */
static inline int muoni_frame_is_ctrl(uint16_t type)
{
	return type == MUONI_FT_HELLO || type == MUONI_FT_SUBSCRIBE ||
	       type == MUONI_FT_UNSUBSCRIBE || type == MUONI_FT_HEARTBEAT ||
	       type == MUONI_FT_CLOSE;
}

static inline uint32_t muoni_align8(uint32_t n)
{
	return (n + (MUONI_FRAME_ALIGN - 1)) & ~(MUONI_FRAME_ALIGN - 1);
}

static inline uint64_t muoni_align8_64(uint64_t n)
{
	return (n + (MUONI_FRAME_ALIGN - 1)) & ~(uint64_t)(MUONI_FRAME_ALIGN - 1);
}

static inline void muoni_frame_hdr_init(struct muoni_frame_hdr *h,
					uint16_t type, uint32_t len,
					uint32_t stream_id, uint64_t seq)
{
	h->commit = 0;
	h->len = len;
	h->type = type;
	h->flags = 0;
	h->stream_id = stream_id;
	h->reserved = 0;
	h->seq = seq;
}

/*
 * Store bytes 8..31 of a header (all but the commit word) from registers.
 * On the publish path the header is read back soon after (by a transport,
 * or by a replay from the send log); field-sized stores read back with one
 * wide load cannot be forwarded from the store buffer, and the load then
 * waits for every older store, ring stores stuck on another core's cache
 * line included. Three 8-byte stores have no such problem.
 */
static inline void muoni_frame_hdr_put(void *dst, uint16_t type,
				       uint16_t flags, uint32_t len,
				       uint32_t stream_id, uint64_t seq)
{
	uint64_t w1 = len | (uint64_t)type << 32 | (uint64_t)flags << 48;
	uint64_t w2 = stream_id; /* reserved: 0 */

	__builtin_memcpy((unsigned char *)dst + 8, &w1, 8);
	__builtin_memcpy((unsigned char *)dst + 16, &w2, 8);
	__builtin_memcpy((unsigned char *)dst + 24, &seq, 8);
}

/*
 * Check a header read from a peer before anything else touches the frame.
 * `avail` is how many bytes are readable from the header on; `max_data` is
 * the largest payload this side accepts. Returns 0 or MUON_EPROTO with the
 * reason in the error detail.
 */
int muoni_frame_check(const struct muoni_frame_hdr *h, uint32_t len,
		      size_t avail, uint32_t max_data);

/* ---- control payloads (decoded into host structs, never cast) ---- */

struct muoni_hello {
	uint32_t version;
	uint32_t flags;
	uint64_t ctx_id;
	char name[33];
};

#define MUONI_SUB_RESUME_MAX 4096u

struct muoni_resume {
	uint64_t publisher_id;
	uint32_t stream_id;
	uint64_t next_seq;
};

struct muoni_subscribe {
	char topic[MUONI_TOPIC_MAX + 1];
	uint32_t topic_len;
	uint8_t start;       /* muon_start_t */
	uint64_t start_seq;
	uint32_t n_resume;
	const uint8_t *resume_raw; /* points into the frame; use _resume_get */
};

struct muoni_stream_info {
	uint64_t publisher_id;
	uint64_t deliver_from; /* frames below this seq are not delivered */
	char topic[MUONI_TOPIC_MAX + 1];
	uint32_t topic_len;
};

/*
 * Encoders write a whole frame (header included) into buf of size cap and
 * return its length, or 0 if it does not fit. Decoders take the payload
 * (after the header) and its length and return 0 or MUON_EPROTO.
 */
size_t muoni_enc_hello(void *buf, size_t cap, const struct muoni_hello *m);
int muoni_dec_hello(const void *p, size_t len, struct muoni_hello *m);

size_t muoni_enc_subscribe(void *buf, size_t cap, const char *topic,
			   uint32_t topic_len, uint8_t start, uint64_t start_seq,
			   const struct muoni_resume *resume, uint32_t n_resume);
int muoni_dec_subscribe(const void *p, size_t len, struct muoni_subscribe *m);
void muoni_subscribe_resume_get(const struct muoni_subscribe *m, uint32_t i,
				struct muoni_resume *out);

size_t muoni_enc_unsubscribe(void *buf, size_t cap, const char *topic,
			     uint32_t topic_len);
int muoni_dec_unsubscribe(const void *p, size_t len, char *topic,
			  uint32_t *topic_len);

size_t muoni_enc_stream_info(void *buf, size_t cap, uint32_t stream_id,
			     uint64_t first_seq, uint64_t publisher_id,
			     uint64_t deliver_from, const char *topic,
			     uint32_t topic_len);
int muoni_dec_stream_info(const void *p, size_t len,
			  struct muoni_stream_info *m);

size_t muoni_enc_loss(void *buf, size_t cap, uint32_t stream_id,
		      uint64_t from_seq, uint64_t to_seq);
int muoni_dec_loss(const void *p, size_t len, uint64_t *to_seq);

size_t muoni_enc_simple(void *buf, size_t cap, uint16_t type,
			uint32_t stream_id, uint64_t seq);

size_t muoni_enc_close(void *buf, size_t cap, uint32_t reason);
int muoni_dec_close(const void *p, size_t len, uint32_t *reason);

#endif
