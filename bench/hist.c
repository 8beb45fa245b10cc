/*
 * muon-bench: a log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values are split into buckets by the position of their top bit; each
 * bucket holds sub_bucket_count linear steps, so that every value is kept
 * to 3 significant decimal digits whatever its magnitude. Bucket 0 covers
 * 0 .. sub_bucket_count - 1 exactly; each later bucket covers twice the
 * range of the one before at twice the step, and only its upper half is
 * stored, the lower half being the previous bucket's range. The counts
 * array is laid out in value order, which is what lets percentiles and the
 * .hgrm writer walk it once from the start.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 3 significant digits need 2 * 10^3 linear steps; the next power of two. */
#define SUB_BUCKET_COUNT 2048u
#define SUB_BUCKET_HALF_MAG 10u

static unsigned top_bit(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

/* How many buckets reach past `highest`. */
static uint32_t buckets_for(uint64_t highest)
{
	uint64_t reach = SUB_BUCKET_COUNT; /* first value past bucket 0 */
	uint32_t n = 1;

	while (reach <= highest) {
		if (reach > UINT64_MAX / 2) {
			n++;
			break;
		}
		reach <<= 1;
		n++;
	}
	return n;
}

static uint32_t bucket_count(const struct bench_hist *h)
{
	return (h->n_counts >> h->sub_bucket_half_count_mag) - 1;
}

static uint32_t index_of(const struct bench_hist *h, uint64_t v)
{
	/* The bucket is how far the top bit sits above sub-bucket range;
	 * or-ing the mask makes small values land in bucket 0. */
	uint32_t b = top_bit(v | h->sub_bucket_mask) - h->unit_mag -
		     h->sub_bucket_half_count_mag;
	uint32_t sb = (uint32_t)(v >> (b + h->unit_mag));

	return ((b + 1) << h->sub_bucket_half_count_mag) + sb -
	       h->sub_bucket_half_count;
}

/* The lowest value that lands on counts[i], and the width of its step. */
static uint64_t index_value(const struct bench_hist *h, uint32_t i,
			    uint64_t *width)
{
	int32_t b = (int32_t)(i >> h->sub_bucket_half_count_mag) - 1;
	uint32_t sb = (i & (h->sub_bucket_half_count - 1)) +
		      h->sub_bucket_half_count;

	if (b < 0) {
		sb -= h->sub_bucket_half_count;
		b = 0;
	}
	*width = 1ull << (h->unit_mag + (uint32_t)b);
	return (uint64_t)sb << (h->unit_mag + (uint32_t)b);
}

/* The highest value that shares counts[i]: what HdrHistogram reports. */
static uint64_t index_top(const struct bench_hist *h, uint32_t i)
{
	uint64_t width, low = index_value(h, i, &width);

	return low + width - 1;
}

int bench_hist_init(struct bench_hist *h, uint64_t highest)
{
	uint32_t buckets;

	memset(h, 0, sizeof(*h));
	if (highest < 2) {
		fprintf(stderr, "%s: histogram: highest value %llu is too "
			"small\n", BENCH_PROG, (unsigned long long)highest);
		return -1;
	}
	h->sub_bucket_count = SUB_BUCKET_COUNT;
	h->sub_bucket_half_count_mag = SUB_BUCKET_HALF_MAG;
	h->sub_bucket_half_count = SUB_BUCKET_COUNT / 2;
	h->unit_mag = 0;
	h->sub_bucket_mask = (uint64_t)(SUB_BUCKET_COUNT - 1) << h->unit_mag;
	h->highest = highest;
	buckets = buckets_for(highest);
	h->n_counts = (buckets + 1) * h->sub_bucket_half_count;
	h->counts = malloc((size_t)h->n_counts * sizeof(*h->counts));
	if (!h->counts) {
		fprintf(stderr, "%s: histogram: out of memory\n", BENCH_PROG);
		memset(h, 0, sizeof(*h));
		return -1;
	}
	/* Written rather than calloc'ed: the pages are faulted in now, not
	 * in the middle of a timed run. */
	memset(h->counts, 0, (size_t)h->n_counts * sizeof(*h->counts));
	return 0;
}

void bench_hist_fini(struct bench_hist *h)
{
	if (!h)
		return;
	free(h->counts);
	memset(h, 0, sizeof(*h));
}

void bench_hist_reset(struct bench_hist *h)
{
	if (h->counts)
		memset(h->counts, 0, (size_t)h->n_counts * sizeof(*h->counts));
	h->total = 0;
	h->min = 0;
	h->max = 0;
	h->clamped = 0;
	h->sum = 0;
	h->sum_sq = 0;
}

void bench_hist_record_n(struct bench_hist *h, uint64_t v, uint64_t n)
{
	double d;

	if (n == 0)
		return;
	if (v > h->highest) {
		v = h->highest;
		h->clamped += n;
	}
	h->counts[index_of(h, v)] += n;
	if (v < h->min || h->total == 0)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->total += n;
	d = (double)v;
	h->sum += d * (double)n;
	h->sum_sq += d * d * (double)n;
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
	bench_hist_record_n(h, v, 1);
}

void bench_hist_add(struct bench_hist *dst, const struct bench_hist *src)
{
	if (src->total == 0)
		return;
	if (dst->n_counts == src->n_counts &&
	    dst->unit_mag == src->unit_mag) {
		for (uint32_t i = 0; i < src->n_counts; i++)
			dst->counts[i] += src->counts[i];
		if (src->min < dst->min || dst->total == 0)
			dst->min = src->min;
		if (src->max > dst->max)
			dst->max = src->max;
		dst->total += src->total;
		dst->clamped += src->clamped;
		dst->sum += src->sum;
		dst->sum_sq += src->sum_sq;
		return;
	}
	/* Different layouts: re-record each step at its top value, which
	 * stays within dst's precision; the exact extremes and sums are
	 * carried over as they are. */
	{
		uint64_t lo = dst->total && dst->min < src->min ?
			      dst->min : src->min;
		uint64_t hi = dst->max > src->max ? dst->max : src->max;
		double sum = dst->sum + src->sum;
		double sum_sq = dst->sum_sq + src->sum_sq;
		uint64_t clamped = dst->clamped, again;

		for (uint32_t i = 0; i < src->n_counts; i++)
			if (src->counts[i])
				bench_hist_record_n(dst, index_top(src, i),
						    src->counts[i]);
		dst->min = lo > dst->highest ? dst->highest : lo;
		dst->max = hi > dst->highest ? dst->highest : hi;
		dst->sum = sum;
		dst->sum_sq = sum_sq;
		/* Values src clamped are clamped again here only if dst
		 * keeps less; count each once. */
		again = dst->clamped - clamped;
		dst->clamped = clamped + (again > src->clamped ?
					  again : src->clamped);
	}
}

/*
 * How many of `total` values must be at or below the value at percentile
 * p. p * total / 100 computed in floating point is often a hair above the
 * integer it stands for (99.9 % of 100000 gives 99900.00000000001), which
 * a plain ceil() would turn into the next count.
 */
static uint64_t count_at(double p, uint64_t total)
{
	double x = p / 100.0 * (double)total;
	double r = nearbyint(x);
	uint64_t c;

	if (fabs(x - r) <= 1e-9 * (x > 1 ? x : 1))
		c = (uint64_t)r;
	else
		c = (uint64_t)ceil(x);
	if (c < 1)
		c = 1;
	if (c > total)
		c = total;
	return c;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
	uint64_t want, seen = 0;

	if (h->total == 0)
		return 0;
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	want = count_at(p, h->total);
	for (uint32_t i = 0; i < h->n_counts; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			uint64_t v = index_top(h, i);

			/* A step's top may lie past the largest value
			 * seen: a p99.99 above max would be nonsense. */
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
	return h->total ? h->sum / (double)h->total : 0.0;
}

double bench_hist_stddev(const struct bench_hist *h)
{
	double mean, var;

	if (h->total == 0)
		return 0.0;
	mean = h->sum / (double)h->total;
	var = h->sum_sq / (double)h->total - mean * mean;
	/* Rounding can leave a tiny negative where the spread is nil. */
	return var > 0 ? sqrt(var) : 0.0;
}

/*
 * The percentile levels of the .hgrm rows: `ticks` rows for every halving
 * of the distance to 100 %, so the first half (0-50 %) gets `ticks` rows
 * 10 % apart with 5 ticks, the next quarter the same number 5 % apart, and
 * so on into the tail.
 */
static double next_level(double level, unsigned ticks)
{
	double halvings = floor(log2(100.0 / (100.0 - level)));
	double steps = (double)ticks * exp2(halvings + 1);

	return level + 100.0 / steps;
}

static int write_row(FILE *f, uint64_t v, double level, uint64_t seen,
		     double scale)
{
	double q = level / 100.0;

	return fprintf(f, "%12.3f %2.12f %10" PRIu64 " %14.2f\n",
		       (double)v / scale, q, seen, 1.0 / (1.0 - q));
}

int bench_hist_write_hgrm(const struct bench_hist *h, FILE *f,
			  unsigned ticks, double scale)
{
	uint64_t seen = 0, top = 0;
	double level = 0.0;

	if (ticks == 0)
		ticks = 5;
	if (!(scale > 0))
		scale = 1.0;
	fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile",
		"TotalCount", "1/(1-Percentile)");
	for (uint32_t i = 0; h->total && i < h->n_counts; i++) {
		uint64_t v;
		double reached;

		if (!h->counts[i])
			continue;
		seen += h->counts[i];
		v = index_top(h, i);
		if (v > h->max)
			v = h->max;
		top = v;
		reached = 100.0 * (double)seen / (double)h->total;
		/* One step can pass several levels: a row for each. The
		 * step that holds the largest value gets one row only, and
		 * the 100 % row below ends the table. */
		while (reached >= level) {
			write_row(f, v, level, seen, scale);
			if (seen == h->total)
				break;
			level = next_level(level, ticks);
		}
		if (seen == h->total)
			break;
	}
	/* The last row has no 1/(1-Percentile): it would be infinite. */
	if (h->total)
		fprintf(f, "%12.3f %2.12f %10" PRIu64 "\n",
			(double)top / scale, 1.0, h->total);
	fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n",
		bench_hist_mean(h) / scale, bench_hist_stddev(h) / scale);
	fprintf(f, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n",
		(double)h->max / scale, h->total);
	fprintf(f, "#[Buckets = %12u, SubBuckets     = %12u]\n",
		h->n_counts ? bucket_count(h) : 0, h->sub_bucket_count);
	fflush(f);
	return ferror(f) ? -1 : 0;
}
