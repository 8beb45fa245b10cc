/*
 * Unit test of muon-bench's histogram (hist.c): precision, percentiles,
 * extremes, clamping, merging, and the .hgrm output read back.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MINUTE_NS (60ull * 1000000000ull)

/* Within 0.1 % of `want`, and never below it: a value is reported as the
 * top of its step. */
static void assert_close(uint64_t got, uint64_t want)
{
	if (got < want || (double)(got - want) > (double)want * 0.001) {
		fail_msg("got %llu, want %llu within 0.1 %%",
			 (unsigned long long)got, (unsigned long long)want);
	}
}

static void test_init_errors(void **state)
{
	struct bench_hist h;

	(void)state;
	assert_int_equal(bench_hist_init(&h, 1), -1);
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	assert_int_equal(h.sub_bucket_count, 2048);
	bench_hist_fini(&h);
	bench_hist_fini(&h); /* twice is fine */
	bench_hist_fini(NULL);
}

/* Every magnitude from 1 ns to a minute keeps 3 significant digits. */
static void test_precision(void **state)
{
	struct bench_hist h;
	uint64_t x = 88172645463325252ull;

	(void)state;
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	for (uint64_t v = 1; v < 4096; v++) {
		bench_hist_reset(&h);
		bench_hist_record(&h, v);
		bench_hist_record(&h, 2 * v + 1000);
		if (v < 2048)
			assert_int_equal(bench_hist_percentile(&h, 50), v);
		else
			assert_close(bench_hist_percentile(&h, 50), v);
	}
	for (int i = 0; i < 20000; i++) {
		uint64_t v;

		/* xorshift: log-uniform values over 1 .. 2^35 */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = (x >> 29) >> (x % 35);
		if (v == 0)
			v = 1;
		if (v > MINUTE_NS / 4)
			v = MINUTE_NS / 4;
		bench_hist_reset(&h);
		bench_hist_record(&h, v);
		bench_hist_record(&h, 2 * v + 1000);
		assert_close(bench_hist_percentile(&h, 50), v);
		assert_int_equal(h.min, v);
	}
	bench_hist_fini(&h);
}

static void test_uniform(void **state)
{
	struct bench_hist h;
	static const double ps[] = { 10, 50, 90, 99, 99.9, 99.99 };

	(void)state;
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	for (uint64_t v = 1; v <= 1000000; v++)
		bench_hist_record(&h, v);
	assert_int_equal(h.total, 1000000);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		assert_close(bench_hist_percentile(&h, ps[i]),
			     (uint64_t)llround(ps[i] * 10000));
	assert_int_equal(bench_hist_percentile(&h, 100), 1000000);
	assert_int_equal(bench_hist_percentile(&h, 0), 1);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 1000000);
	bench_hist_fini(&h);
}

/* Exact below 2048: the nearest-rank definition, checked literally. */
static void test_rank_semantics(void **state)
{
	struct bench_hist h;

	(void)state;
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	for (uint64_t v = 1; v <= 100; v++)
		bench_hist_record(&h, v);
	assert_int_equal(bench_hist_percentile(&h, 0), 1);
	assert_int_equal(bench_hist_percentile(&h, 1), 1);
	assert_int_equal(bench_hist_percentile(&h, 1.5), 2);
	assert_int_equal(bench_hist_percentile(&h, 50), 50);
	assert_int_equal(bench_hist_percentile(&h, 50.5), 51);
	assert_int_equal(bench_hist_percentile(&h, 99), 99);
	assert_int_equal(bench_hist_percentile(&h, 99.9), 100);
	assert_int_equal(bench_hist_percentile(&h, 100), 100);
	bench_hist_reset(&h);
	/* 99.9 % of 100000 is 99900 exactly, not 99901. */
	for (uint64_t v = 1; v <= 100000; v++)
		bench_hist_record(&h, v < 99900 ? 1 : v == 99900 ? 2 : 3);
	assert_int_equal(bench_hist_percentile(&h, 99.9), 2);
	bench_hist_fini(&h);
}

static void test_all_equal(void **state)
{
	struct bench_hist h;

	(void)state;
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	bench_hist_record_n(&h, 123457, 100000);
	assert_int_equal(h.total, 100000);
	assert_int_equal(bench_hist_percentile(&h, 0), 123457);
	assert_int_equal(bench_hist_percentile(&h, 50), 123457);
	assert_int_equal(bench_hist_percentile(&h, 99.99), 123457);
	assert_int_equal(bench_hist_percentile(&h, 100), 123457);
	assert_true(fabs(bench_hist_mean(&h) - 123457.0) < 1e-6);
	assert_true(bench_hist_stddev(&h) < 1e-3);
	bench_hist_record_n(&h, 5, 0); /* nothing */
	assert_int_equal(h.total, 100000);
	assert_int_equal(h.min, 123457);
	bench_hist_fini(&h);
}

static void test_single_value(void **state)
{
	struct bench_hist h;

	(void)state;
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	bench_hist_record(&h, 987654321);
	assert_int_equal(h.total, 1);
	assert_int_equal(bench_hist_percentile(&h, 0), 987654321);
	assert_int_equal(bench_hist_percentile(&h, 50), 987654321);
	assert_int_equal(bench_hist_percentile(&h, 100), 987654321);
	assert_true(bench_hist_mean(&h) == 987654321.0);
	assert_true(bench_hist_stddev(&h) == 0.0);
	bench_hist_fini(&h);
}

static void test_min_max_exact(void **state)
{
	struct bench_hist h;

	(void)state;
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	bench_hist_record(&h, 5000000017ull);
	bench_hist_record(&h, 1000003);
	bench_hist_record(&h, 77777777);
	assert_int_equal(h.min, 1000003);
	assert_int_equal(h.max, 5000000017ull);
	/* The top of the max's step lies above it: reported as the max. */
	assert_int_equal(bench_hist_percentile(&h, 100), 5000000017ull);
	bench_hist_fini(&h);
}

static void test_clamp(void **state)
{
	struct bench_hist h;

	(void)state;
	assert_int_equal(bench_hist_init(&h, 1000000), 0);
	bench_hist_record(&h, 10);
	bench_hist_record(&h, 1000000);
	bench_hist_record(&h, 5000000);
	bench_hist_record_n(&h, UINT64_MAX, 3);
	assert_int_equal(h.clamped, 4);
	assert_int_equal(h.total, 6);
	assert_int_equal(h.max, 1000000);
	assert_int_equal(bench_hist_percentile(&h, 100), 1000000);
	assert_int_equal(bench_hist_percentile(&h, 0), 10);
	bench_hist_fini(&h);
}

static void test_add(void **state)
{
	struct bench_hist a, b, all, other;

	(void)state;
	assert_int_equal(bench_hist_init(&a, MINUTE_NS), 0);
	assert_int_equal(bench_hist_init(&b, MINUTE_NS), 0);
	assert_int_equal(bench_hist_init(&all, MINUTE_NS), 0);
	assert_int_equal(bench_hist_init(&other, 10ull * MINUTE_NS), 0);
	for (uint64_t v = 1; v <= 200000; v++) {
		bench_hist_record(v % 3 ? &a : &b, v * 7);
		bench_hist_record(&all, v * 7);
	}
	bench_hist_add(&a, &b);
	assert_int_equal(a.total, all.total);
	assert_int_equal(a.min, all.min);
	assert_int_equal(a.max, all.max);
	assert_true(fabs(a.sum - all.sum) < 1e-6 * all.sum);
	for (double p = 0; p <= 100; p += 0.5)
		assert_int_equal(bench_hist_percentile(&a, p),
				 bench_hist_percentile(&all, p));
	/* Another range: merged value by value, still within 0.1 %. */
	bench_hist_record(&other, 3 * MINUTE_NS); /* clamped in `a` */
	bench_hist_add(&other, &all);
	assert_int_equal(other.total, all.total + 1);
	assert_int_equal(other.min, 7);
	assert_int_equal(other.max, 3 * MINUTE_NS);
	assert_close(bench_hist_percentile(&other, 50),
		     bench_hist_percentile(&all, 50));
	bench_hist_add(&a, &other);
	assert_int_equal(a.clamped, 1);
	assert_int_equal(a.max, MINUTE_NS);
	/* Adding an empty one changes nothing. */
	bench_hist_reset(&b);
	bench_hist_add(&all, &b);
	assert_int_equal(all.total, 200000);
	assert_int_equal(all.min, 7);
	bench_hist_fini(&a);
	bench_hist_fini(&b);
	bench_hist_fini(&all);
	bench_hist_fini(&other);
}

static void test_reset_and_empty(void **state)
{
	struct bench_hist h;

	(void)state;
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	assert_int_equal(bench_hist_percentile(&h, 50), 0);
	assert_true(bench_hist_mean(&h) == 0.0);
	assert_true(bench_hist_stddev(&h) == 0.0);
	assert_int_equal(h.min, 0);
	assert_int_equal(h.max, 0);
	for (uint64_t v = 1000; v < 2000; v++)
		bench_hist_record(&h, v);
	bench_hist_reset(&h);
	assert_int_equal(h.total, 0);
	assert_int_equal(h.min, 0);
	assert_int_equal(h.max, 0);
	assert_int_equal(h.clamped, 0);
	assert_int_equal(bench_hist_percentile(&h, 99), 0);
	for (uint32_t i = 0; i < h.n_counts; i++)
		assert_int_equal(h.counts[i], 0);
	bench_hist_record(&h, 42);
	assert_int_equal(h.min, 42);
	assert_int_equal(bench_hist_percentile(&h, 50), 42);
	bench_hist_fini(&h);
}

static void test_mean_stddev(void **state)
{
	struct bench_hist h;
	double sd = sqrt((1000.0 * 1000.0 - 1.0) / 12.0);

	(void)state;
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	for (uint64_t v = 1; v <= 1000; v++)
		bench_hist_record(&h, v);
	assert_true(fabs(bench_hist_mean(&h) - 500.5) < 1e-9);
	assert_true(fabs(bench_hist_stddev(&h) - sd) < 1e-6 * sd);
	bench_hist_reset(&h);
	bench_hist_record_n(&h, 1000, 3);
	bench_hist_record(&h, 5000);
	assert_true(fabs(bench_hist_mean(&h) - 2000.0) < 1e-9);
	assert_true(fabs(bench_hist_stddev(&h) - sqrt(3.0) * 1000.0) < 1e-6);
	bench_hist_fini(&h);
}

/* ------------------------------------------------------------ .hgrm */

struct hgrm_row {
	double value, pct, inv;
	unsigned long long count;
	int cols;
};

struct hgrm {
	struct hgrm_row rows[2000];
	int n;
	double mean, sd, max;
	unsigned long long total;
	unsigned buckets, sub_buckets;
	int footer;
};

static char *hgrm_text(const struct bench_hist *h, unsigned ticks,
		       double scale)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(bench_hist_write_hgrm(h, f, ticks, scale), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void parse_hgrm(char *text, struct hgrm *g)
{
	char *line;
	int lineno = 0;

	memset(g, 0, sizeof(*g));
	/* strtok_r would swallow the empty second line: split by hand. */
	for (line = text; line && *line; lineno++) {
		char *nl = strchr(line, '\n');

		assert_non_null(nl);
		*nl = '\0';
		if (lineno == 0) {
			assert_string_equal(line, "       Value     Percentile "
					    "TotalCount 1/(1-Percentile)");
		} else if (lineno == 1) {
			assert_string_equal(line, "");
		} else if (strncmp(line, "#[Mean    = ", 12) == 0) {
			assert_int_equal(sscanf(line, "#[Mean    = %lf, "
						"StdDeviation   = %lf]",
						&g->mean, &g->sd), 2);
			g->footer |= 1;
		} else if (strncmp(line, "#[Max     = ", 12) == 0) {
			assert_int_equal(sscanf(line, "#[Max     = %lf, Total "
						"count    = %llu]", &g->max,
						&g->total), 2);
			g->footer |= 2;
		} else if (strncmp(line, "#[Buckets = ", 12) == 0) {
			assert_int_equal(sscanf(line, "#[Buckets = %u, "
						"SubBuckets     = %u]",
						&g->buckets, &g->sub_buckets),
					 2);
			g->footer |= 4;
		} else {
			struct hgrm_row *r = &g->rows[g->n++];

			assert_true(g->n < 2000);
			assert_int_equal(g->footer, 0);
			r->cols = sscanf(line, "%lf %lf %llu %lf", &r->value,
					 &r->pct, &r->count, &r->inv);
			assert_true(r->cols == 3 || r->cols == 4);
		}
		line = nl + 1;
	}
	assert_int_equal(g->footer, 7);
}

static void test_hgrm(void **state)
{
	struct bench_hist h;
	struct hgrm *g = malloc(sizeof(*g));
	char *text;
	int below_half = 0;

	(void)state;
	assert_non_null(g);
	assert_int_equal(bench_hist_init(&h, MINUTE_NS), 0);
	for (uint64_t v = 1; v <= 100000; v++)
		bench_hist_record(&h, v * 10);
	text = hgrm_text(&h, 5, 1000.0);
	parse_hgrm(text, g);
	assert_true(g->n > 20);
	assert_true(g->rows[0].pct == 0.0);
	for (int i = 0; i < g->n; i++) {
		struct hgrm_row *r = &g->rows[i];

		if (i > 0) {
			assert_true(r->value >= g->rows[i - 1].value);
			assert_true(r->pct >= g->rows[i - 1].pct);
			assert_true(r->count >= g->rows[i - 1].count);
		}
		if (i + 1 < g->n) {
			assert_int_equal(r->cols, 4);
			assert_true(r->pct < 1.0);
			assert_true(fabs(r->inv - 1.0 / (1.0 - r->pct)) <
				    0.01);
			/* The value holds at least that share. */
			assert_true((double)r->count >=
				    r->pct * 100000.0 - 1e-6);
		}
		if (r->pct < 0.5)
			below_half++;
	}
	/* 5 ticks per halving: 0, 10, 20, 30, 40 % below the median. */
	assert_int_equal(below_half, 5);
	assert_int_equal(g->rows[g->n - 1].cols, 3);
	assert_true(g->rows[g->n - 1].pct == 1.0);
	assert_int_equal(g->rows[g->n - 1].count, 100000);
	assert_true(fabs(g->rows[g->n - 1].value - 1000.0) < 1e-9);
	assert_int_equal(g->total, 100000);
	assert_true(fabs(g->max - 1000.0) < 1e-9);
	assert_true(fabs(g->mean - bench_hist_mean(&h) / 1000.0) < 0.001);
	assert_true(fabs(g->sd - bench_hist_stddev(&h) / 1000.0) < 0.001);
	assert_int_equal(g->sub_buckets, 2048);
	assert_true(g->buckets > 20 && g->buckets < 40);
	free(text);

	/* One value: the row at 0 % and the 100 % row. */
	bench_hist_reset(&h);
	bench_hist_record_n(&h, 2500, 10);
	text = hgrm_text(&h, 5, 1.0);
	parse_hgrm(text, g);
	assert_int_equal(g->n, 2);
	assert_true(g->rows[0].value == 2500.0 && g->rows[1].value == 2500.0);
	assert_int_equal(g->rows[1].count, 10);
	free(text);

	/* Empty: header and footer only. */
	bench_hist_reset(&h);
	text = hgrm_text(&h, 5, 1000.0);
	parse_hgrm(text, g);
	assert_int_equal(g->n, 0);
	assert_int_equal(g->total, 0);
	free(text);
	bench_hist_fini(&h);
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_errors),
		cmocka_unit_test(test_precision),
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_rank_semantics),
		cmocka_unit_test(test_all_equal),
		cmocka_unit_test(test_single_value),
		cmocka_unit_test(test_min_max_exact),
		cmocka_unit_test(test_clamp),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_reset_and_empty),
		cmocka_unit_test(test_mean_stddev),
		cmocka_unit_test(test_hgrm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
