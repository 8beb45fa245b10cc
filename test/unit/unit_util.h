/*
 * Helpers shared by the unit tests: cmocka includes in the order it needs,
 * a fixed-seed PRNG, clocks, deterministic payloads, and in-process
 * publisher/subscriber context pairs over shm or tcp with bounded polling.
 */
#ifndef MUON_UNIT_UTIL_H
#define MUON_UNIT_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <muon/muon.h>

/* ---- PRNG (xorshift64*), deterministic for a given seed ---- */

static inline uint64_t ut_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform-ish in [0, n). */
static inline uint64_t ut_below(uint64_t *s, uint64_t n)
{
	return n ? ut_rand(s) % n : 0;
}

uint64_t ut_now_ms(void);

/* ---- payloads: length and bytes are functions of the sequence ---- */

/* Payload length for message `seq` in [lo, hi]. */
size_t ut_len_for(uint64_t seq, size_t lo, size_t hi);
void ut_fill(void *buf, size_t len, uint64_t seq);
/* 0 if buf holds exactly ut_fill(len, seq), else 1 + index of the first
 * wrong byte. */
size_t ut_check(const void *buf, size_t len, uint64_t seq);

/* ---- contexts ---- */

/* Defaults for tests: ignore_env, short linger, 64 KiB rings, warnings to
 * stderr prefixed with the context name. */
void ut_ctx_config(muon_ctx_config_t *cfg, const char *name);

/* A unique endpoint for a listener: "shm://unit-<pid>-<tag>-<n>" or
 * "tcp://127.0.0.1:0". */
/* The RDMA device's address for verbs tests: $MUON_RDMA_ADDR, default the
 * Soft-RoCE guest's 192.0.2.1. */
const char *ut_rdma_addr(void);
/* The same device's IPv6 address: $MUON_RDMA_ADDR6, default 2001:db8::1. */
const char *ut_rdma_addr6(void);
void ut_listen_uri(char *buf, size_t len, const char *transport,
		   const char *tag);

/* Create a publisher context listening on `transport` (cfg may be NULL for
 * ut_ctx_config defaults) and store its bound endpoint in ep. */
muon_ctx_t *ut_pub_ctx(const char *transport, const muon_ctx_config_t *cfg,
		       char *ep, size_t eplen);
/* Create a subscriber context with `ep` as its static peer. */
muon_ctx_t *ut_sub_ctx(const char *ep, const muon_ctx_config_t *cfg);

/* Poll each non-NULL context once (asserting a non-negative result);
 * returns the sum. */
int ut_poll2(muon_ctx_t *a, muon_ctx_t *b);

muon_counters_t ut_counters(const muon_ctx_t *ctx);

/* Poll a and b until `cond` holds, failing the test with the message if
 * `ms` milliseconds pass first. */
#define UT_POLL_UNTIL(a, b, ms, cond, ...)                                 \
	do {                                                               \
		uint64_t ut_dl_ = ut_now_ms() + (ms);                      \
		while (!(cond)) {                                          \
			if (ut_now_ms() > ut_dl_)                          \
				fail_msg(__VA_ARGS__);                     \
			ut_poll2((a), (b));                                \
		}                                                          \
	} while (0)

/* Poll a and b for `ms` milliseconds regardless. */
void ut_poll_for(muon_ctx_t *a, muon_ctx_t *b, unsigned ms);

/* ---- a receiver that checks order, payloads and events ---- */

struct ut_rx {
	const char *topic;
	uint64_t publisher_id; /* 0 = do not check */
	uint64_t expect;       /* next sequence expected */
	uint64_t n_msgs;
	uint64_t last_seq;
	size_t len_lo, len_hi; /* payload length rule (ut_len_for) */
	bool fixed_payload;    /* payload bytes from ut_fill; length free */
	unsigned order_errors;
	unsigned payload_errors;
	unsigned meta_errors;
	uint64_t first_bad_seq;
	unsigned n_loss;
	uint64_t loss_from, loss_to;
	unsigned n_up, n_down;
	int down_reason;
	uint64_t up_from;
	unsigned n_other_events;
};

void ut_rx_init(struct ut_rx *rx, const char *topic, size_t lo, size_t hi);
void ut_rx_msg(void *arg, const muon_msg_t *msg);
void ut_rx_event(void *arg, const muon_event_t *ev);
/* Subscription config wired to the receiver. */
void ut_rx_sub_config(struct ut_rx *rx, muon_sub_config_t *cfg);

#endif
