/*
 * The verbs transport's wire structures: what travels in rdmacm private
 * data and in the transport's own SEND messages. Little-endian and packed,
 * like every muon frame (core/frame.h refuses big-endian hosts). The
 * immediate of a WRITE_WITH_IMM is the one big-endian field, as verbs
 * defines it.
 */
#ifndef MUONI_VERBS_H
#define MUONI_VERBS_H

#include <stdint.h>

#define MUONI_VX_VERSION 1

/* Connect request (subscriber side to listener): at most 56 bytes, the
 * limit of RC private data. The tag covers every byte before it. */
struct muoni_vx_req {
	uint8_t version;
	uint8_t len;        /* sizeof(struct muoni_vx_req): data may be padded */
	uint16_t flags;     /* MUONI_VX_F_* */
	uint32_t ring_rkey;
	uint64_t ctx_id;
	uint64_t ring_addr;
	uint32_t ring_size;
	uint32_t nonce_time; /* seconds since the epoch, against replays */
	uint64_t nonce_rand;
	uint8_t tag[16];     /* HMAC-SHA256("muon-vx-req" | bytes 0..39) */
} __attribute__((packed));

/* Accept (listener to subscriber side). The tag also covers the request's
 * nonce, so an accept cannot be replayed into another connection. */
struct muoni_vx_rep {
	uint8_t version;
	uint8_t len;
	uint16_t flags;
	uint32_t credit_rkey;
	uint64_t ctx_id;
	uint64_t credit_addr;
	uint8_t tag[16]; /* HMAC-SHA256("muon-vx-rep" | bytes 0..23 | nonce) */
} __attribute__((packed));

/* Reject: why, so the other side can say it. */
struct muoni_vx_rej {
	uint8_t version;
	uint8_t len;
	uint8_t reason; /* MUONI_VX_REJ_* */
	uint8_t pad;
} __attribute__((packed));

#define MUONI_VX_F_AUTH 1u /* the tag is set */

enum {
	MUONI_VX_REJ_AUTH = 1,      /* missing or wrong tag, or a replay */
	MUONI_VX_REJ_VERSION = 2,   /* unknown version or malformed */
	MUONI_VX_REJ_LIMIT = 3,     /* connection limit reached */
	MUONI_VX_REJ_RESOURCE = 4,  /* could not create the queue pair */
};

/* Transport-private frame types on the SEND channel (64..127 are reserved
 * for transports; core never sees them). */
#define MUONI_VX_FT_RING 64   /* payload: struct muoni_vx_mem, our ring */
#define MUONI_VX_FT_CREDIT 65 /* payload: struct muoni_vx_mem, credit word */

struct muoni_vx_mem {
	uint64_t addr;
	uint32_t rkey;
	uint32_t size;
} __attribute__((packed));

_Static_assert(sizeof(struct muoni_vx_req) == 56, "RC private data limit");
_Static_assert(sizeof(struct muoni_vx_rep) == 40, "accept layout");

#endif
