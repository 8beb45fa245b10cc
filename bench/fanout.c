/*
 * muon-bench: what the muon fan-out (muon_flow.c) and the bare one
 * (raw_flow.c, raw_verbs.c) share, so that their first and last rows
 * mean the same thing and their muon/raw quotients compare like with
 * like: the size of the per-message windows, and the first/last results
 * computed from them.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

/* As every latency histogram of the tool: a minute, exactly. */
#define FANOUT_HIST_HIGHEST (60ull * 1000000000ull)

uint64_t bench_fanout_window(const struct bench_opts *o, unsigned subs)
{
	uint64_t w = BENCH_FANOUT_WINDOW_BYTES / 8 / (subs ? subs : 1);

	if (w > BENCH_FANOUT_WINDOW_MAX)
		w = BENCH_FANOUT_WINDOW_MAX;
	/* A counted run has no more timed messages than that. */
	if (o->count && o->count < w)
		w = o->count;
	return w;
}

static int fanout_result(struct bench_result *res, const struct bench_opts *o,
			 const struct bench_fanout *fo, const char *series)
{
	memset(res, 0, sizeof(*res));
	snprintf(res->impl, sizeof(res->impl), "%s", fo->impl);
	snprintf(res->series, sizeof(res->series), "%s", series);
	res->mode = o->mode;
	res->transport = o->transport;
	res->size = o->size;
	res->lat = BENCH_LAT_ONEWAY;
	/* Every subscriber had at least this many in the span. */
	res->messages = fo->messages;
	res->seconds_ns = fo->end_ns > fo->start_ns ?
			  fo->end_ns - fo->start_ns : 0;
	if (bench_hist_init(&res->hist, FANOUT_HIST_HIGHEST) != 0) {
		fprintf(stderr, "%s: out of memory\n", BENCH_PROG);
		return -1;
	}
	return 0;
}

static int fanout_add(struct bench_report *rep, struct bench_result *res)
{
	/* On failure bench_report_add said why and left the counts here. */
	int rc = bench_report_add(rep, res);

	bench_hist_fini(&res->hist);
	return rc;
}

static double quotient(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

/*
 * For each message number in the windows, the earliest and the latest
 * delivery among the subscribers (same intended time, so the smallest and
 * the largest latency). Messages some subscriber missed, or did not time,
 * are left out.
 */
int bench_fanout_first_last(const struct bench_opts *o,
			    struct bench_report *rep,
			    const struct bench_fanout *fo)
{
	struct bench_result first, last;
	uint64_t compared = 0;

	if (fanout_result(&first, o, fo, "first") != 0)
		return -1;
	if (fanout_result(&last, o, fo, "last") != 0) {
		bench_hist_fini(&first.hist);
		return -1;
	}
	for (uint64_t i = 0; i < fo->used && i < fo->len; i++) {
		uint64_t lo = UINT64_MAX, hi = 0;
		unsigned s;

		for (s = 0; s < fo->n_subs; s++) {
			uint64_t v = fo->win[s][i];

			if (!v)
				break;
			if (v < lo)
				lo = v;
			if (v > hi)
				hi = v;
		}
		if (s < fo->n_subs)
			continue;
		bench_hist_record(&first.hist, lo - 1);
		bench_hist_record(&last.hist, hi - 1);
		compared++;
	}
	if (fo->len < fo->messages)
		bench_warn(rep, "%s fanout %zu B: first/last cover only the "
			   "first %llu of %llu messages (%llu compared)",
			   fo->impl, o->size, (unsigned long long)fo->len,
			   (unsigned long long)fo->messages,
			   (unsigned long long)compared);
	if (compared) {
		double p50 = quotient(bench_hist_percentile(&last.hist, 50),
				      bench_hist_percentile(&first.hist, 50));
		double p99 = quotient(bench_hist_percentile(&last.hist, 99),
				      bench_hist_percentile(&first.hist, 99));
		int muon = strcmp(fo->impl, "muon") == 0;

		bench_warn(rep, "%s fanout %zu B to %u subscribers: latency "
			   "of the last / the first subscriber: p50 %.2f, p99 "
			   "%.2f (%s)", fo->impl, o->size, fo->n_subs, p50,
			   p99, muon ? "target: at most 2" :
			   "without muon: the host's own spread");
	}
	if (fanout_add(rep, &first) != 0) {
		bench_hist_fini(&last.hist);
		return -1;
	}
	return fanout_add(rep, &last);
}
