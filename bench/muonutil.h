/*
 * muon-bench: helpers of the muon sides of every mode (muonutil.c).
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#ifndef MUON_BENCH_MUONUTIL_H
#define MUON_BENCH_MUONUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <muon/muon.h>

/* Print "<who>: <call> failed: <status>: <muon_errmsg()>". */
void bench_muon_fail(const char *who, const char *call, int64_t rc);


#define BENCH_HELD_LOGS 8

/*
 * A muon log callback's target. Set-up and tear-down make muon warn about
 * connections that are not up yet or already gone; between quiet_begin and
 * quiet_end such lines (below error) are held back, and shown only if that
 * phase failed. The last BENCH_HELD_LOGS are kept.
 */
struct bench_logsink {
	char who[16];
	int quiet;
	unsigned nheld;
	char held[BENCH_HELD_LOGS][256];
};

/* muon_ctx_config_t.log_fn; log_arg is a struct bench_logsink. */
void bench_on_log(void *arg, muon_log_level_t level, const char *message);
void bench_quiet_begin(struct bench_logsink *l);
void bench_quiet_end(struct bench_logsink *l, int failed);

uint32_t bench_pow2_at_least(uint64_t v);

/*
 * The verbs endpoint to listen on at `addr` (an IPv4 or IPv6 literal,
 * port 0) into buf. With `check`, first make sure the address is this
 * host's. Returns 0, or -1 after printing why.
 */
int bench_verbs_listen(const char *addr, int check, char *buf, size_t len);

/*
 * Wait for a set-up condition, polling `ctx` (if not NULL) and napping
 * between rounds: nothing is timed yet, so the CPU is left to the other
 * sides. step(arg): 1 done, 0 not yet, -1 failed (and said why). Returns 0
 * or -1; after a timeout it says what it waited for and, when *events is
 * not 0, the last event (`note`).
 */
int bench_setup_wait(muon_ctx_t *ctx, const char *who, int (*step)(void *),
		     void *arg, uint64_t timeout_ns, const char *what,
		     const unsigned *events, const char *note);

#endif /* MUON_BENCH_MUONUTIL_H */
