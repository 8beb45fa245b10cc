/*
 * muon-bench: percentiles and the two output formats.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least permille/1000 of the
 * samples at or below it. */
static uint64_t rank(const uint64_t *sorted, size_t n, unsigned permille)
{
	size_t r = (n * permille + 999) / 1000;

	return sorted[r ? r - 1 : 0];
}

void bench_stats_compute(uint64_t *samples, size_t n, struct bench_stats *st)
{
	qsort(samples, n, sizeof(*samples), cmp_u64);
	st->min = samples[0];
	st->p50 = rank(samples, n, 500);
	st->p90 = rank(samples, n, 900);
	st->p99 = rank(samples, n, 990);
	st->p999 = rank(samples, n, 999);
	st->max = samples[n - 1];
}

/* ----------------------------------------------------------------- table */

#define ROW_FMT_HEAD "%-7s %-9s %10s %10s %10s %10s %12s %10s   %s\n"

static void print_row(const struct bench_opts *o, const struct bench_stats *s,
		      const char *label)
{
	printf("%-7zu %-9llu %10llu %10llu %10llu %10llu %12llu %10llu   %s\n",
	       o->size, (unsigned long long)o->count,
	       (unsigned long long)s->min, (unsigned long long)s->p50,
	       (unsigned long long)s->p90, (unsigned long long)s->p99,
	       (unsigned long long)s->p999, (unsigned long long)s->max, label);
}

static void format_ratio(char *buf, size_t len, uint64_t a, uint64_t b)
{
	if (b == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2f", (double)a / (double)b);
}

static void print_ratio_row(const struct bench_opts *o,
			    const struct bench_stats *m,
			    const struct bench_stats *r)
{
	char c[6][32];

	format_ratio(c[0], sizeof(c[0]), m->min, r->min);
	format_ratio(c[1], sizeof(c[1]), m->p50, r->p50);
	format_ratio(c[2], sizeof(c[2]), m->p90, r->p90);
	format_ratio(c[3], sizeof(c[3]), m->p99, r->p99);
	format_ratio(c[4], sizeof(c[4]), m->p999, r->p999);
	format_ratio(c[5], sizeof(c[5]), m->max, r->max);
	printf("%-7zu %-9llu %10s %10s %10s %10s %12s %10s   %s\n", o->size,
	       (unsigned long long)o->count, c[0], c[1], c[2], c[3], c[4], c[5],
	       "muon/raw");
}

static void print_cpu(const char *who, int cpu)
{
	if (cpu < 0)
		printf(", %s unpinned", who);
	else
		printf(", %s on CPU %d", who, cpu);
}

void bench_print_table(const struct bench_opts *o,
		       const struct bench_stats *muon,
		       const struct bench_stats *raw)
{
	char title[64];

	printf("# muon-bench pingpong: warmup %llu",
	       (unsigned long long)o->warmup);
	print_cpu("ping", o->ping_cpu);
	print_cpu("pong", o->pong_cpu);
	if (o->transport == BENCH_VERBS)
		printf(", address %s", o->addr);
	printf("\n");
	snprintf(title, sizeof(title), "(transport %s, round trip)",
		 bench_transport_name(o->transport));
	printf(ROW_FMT_HEAD, "#bytes", "#iters", "t_min[ns]", "t_p50[ns]",
	       "t_p90[ns]", "t_p99[ns]", "t_p99.9[ns]", "t_max[ns]", title);
	if (muon)
		print_row(o, muon, "muon");
	if (raw)
		print_row(o, raw, "raw");
	if (muon && raw)
		print_ratio_row(o, muon, raw);
	fflush(stdout);
}

/* ------------------------------------------------------------------ json */

static void print_json_stats(const char *key, const struct bench_stats *s)
{
	printf(",\"%s\":{\"min\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
	       "\"p999\":%llu,\"max\":%llu}",
	       key, (unsigned long long)s->min, (unsigned long long)s->p50,
	       (unsigned long long)s->p90, (unsigned long long)s->p99,
	       (unsigned long long)s->p999, (unsigned long long)s->max);
}

static void print_json_ratio(const char *key, uint64_t a, uint64_t b,
			     int first)
{
	printf("%s\"%s\":", first ? "" : ",", key);
	if (b == 0)
		printf("null");
	else
		printf("%.3f", (double)a / (double)b);
}

/* A JSON string; --addr is the only one that comes from the user. */
static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

void bench_print_json(const struct bench_opts *o,
		      const struct bench_stats *muon,
		      const struct bench_stats *raw)
{
	printf("{\"mode\":\"pingpong\",\"transport\":\"%s\",\"size\":%zu,"
	       "\"count\":%llu,\"warmup\":%llu,\"ping_cpu\":%d,"
	       "\"pong_cpu\":%d",
	       bench_transport_name(o->transport), o->size,
	       (unsigned long long)o->count, (unsigned long long)o->warmup,
	       o->ping_cpu, o->pong_cpu);
	if (o->transport == BENCH_VERBS) {
		printf(",\"addr\":");
		print_json_string(o->addr);
	}
	if (muon)
		print_json_stats("rtt_ns", muon);
	if (raw)
		print_json_stats("raw_rtt_ns", raw);
	if (muon && raw) {
		printf(",\"ratio\":{");
		print_json_ratio("min", muon->min, raw->min, 1);
		print_json_ratio("p50", muon->p50, raw->p50, 0);
		print_json_ratio("p90", muon->p90, raw->p90, 0);
		print_json_ratio("p99", muon->p99, raw->p99, 0);
		print_json_ratio("p999", muon->p999, raw->p999, 0);
		print_json_ratio("max", muon->max, raw->max, 0);
		printf("}");
	}
	printf("}\n");
	fflush(stdout);
}
