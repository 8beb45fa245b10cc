/*
 * muon integration tests: shared declarations.
 *
 * One program, muon-itest, with three roles:
 *   pub   a publishing process (one context, one publication)
 *   sub   a subscribing process (one context, one subscription) that
 *         regenerates every payload and checks it byte for byte and in order
 *   run   the driver: forks/execs pub and sub processes for a scenario,
 *         talks to them over pipes and checks what they report
 * plus `selftest`, which checks the payload generator without the library.
 *
 * Child -> driver protocol: one line per event on the child's stdout,
 * "WORD key=value ...". Driver -> publisher: lines "GO" and "FINISH" on the
 * publisher's stdin. Human-readable diagnostics go to stderr.
 */
#ifndef MUON_ITEST_H
#define MUON_ITEST_H

#include <stddef.h>
#include <stdint.h>

#include <muon/muon.h>

/* ---------------------------------------------------------------- payload */

/* How message sizes are drawn: uniformly in [0, max] or always `fixed`. */
typedef struct size_spec {
	int fixed;     /* nonzero: every message is `size` bytes */
	uint32_t size; /* fixed size, or the maximum for random sizes */
} size_spec_t;

/*
 * The deterministic payload of one stream. Every stream has a key derived
 * from (publisher seed = publisher_id, stream_id). Message `seq` is a slice
 * of a random pool (generated once from the key) at an offset and with a
 * length both drawn from mix64(key, seq); its first 8 bytes are XORed with
 * a word derived from (key, seq) so that every message differs. Generating
 * is one memcpy, checking one memcmp.
 */
typedef struct pattern {
	uint64_t key;
	size_spec_t sizes;
	uint8_t *pool;
	size_t pool_len;
} pattern_t;

int parse_sizes(const char *text, uint32_t max_size, size_spec_t *out);
uint64_t mix64(uint64_t x);
int pattern_init(pattern_t *p, uint64_t publisher_id, uint32_t stream_id,
		 const size_spec_t *sizes);
void pattern_free(pattern_t *p);
size_t pattern_len(const pattern_t *p, uint64_t seq);
/* Write message `seq` (pattern_len(p, seq) bytes) to buf. */
void pattern_fill(const pattern_t *p, uint64_t seq, void *buf);
/* -1 if data/len is exactly message `seq`, else the first bad byte offset
 * (len itself if only the length is wrong). */
long pattern_check(const pattern_t *p, uint64_t seq, const void *data,
		   size_t len);

/* ---------------------------------------------------------------- util */

double now_s(void);
uint64_t now_ns(void);
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						 noreturn));
void die_muon(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void set_role_name(const char *name);
const char *role_name(void);
int parse_u64(const char *text, uint64_t *out);
int parse_u32(const char *text, uint32_t *out);
uint64_t opt_u64(const char *opt, const char *text);
uint32_t opt_u32(const char *opt, const char *text);
/* Emit a protocol line on stdout (flushed). */
void proto(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wait for the context's fd (after muon_ctx_arm) and optionally extra_fd,
 * at most timeout_ms. Returns 1 if extra_fd became readable. */
int wait_ctx(muon_ctx_t *ctx, int extra_fd, int timeout_ms);
/* Escalating back-off for a busy loop that made no progress. */
void backoff(unsigned *spins);
void log_to_stderr(void *arg, muon_log_level_t level, const char *message);

/* ---------------------------------------------------------------- roles */

int pub_main(int argc, char **argv);
int sub_main(int argc, char **argv);
int driver_main(int argc, char **argv);
int selftest_main(int argc, char **argv);

#endif
