/*
 * muon-bench: the results of a run and how they are shown: the table,
 * JSON, CSV, .hgrm files and the percentile plot; the warnings about the
 * conditions of a run (clock, CPUs); the progress line.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <muon/muon.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define TOOL_VERSION                                                   \
	STR(MUON_VERSION_MAJOR) "." STR(MUON_VERSION_MINOR) "."        \
	STR(MUON_VERSION_PATCH)

#define CLOCKSOURCE_PATH \
	"/sys/devices/system/clocksource/clocksource0/current_clocksource"

/* The percentile columns. A percentile p is shown only from
 * 10 / (1 - p) samples on: below that its value is one of the last few
 * samples, i.e. the maximum by another name. */
struct pcol {
	const char *name; /* table and CSV header */
	const char *key;  /* JSON key */
	double p;
	uint64_t need;    /* samples */
};

static const struct pcol pcols[] = {
	{ "p50", "p50", 50.0, 20 },
	{ "p90", "p90", 90.0, 100 },
	{ "p99", "p99", 99.0, 1000 },
	{ "p99.9", "p99_9", 99.9, 10000 },
	{ "p99.99", "p99_99", 99.99, 100000 },
};

#define NPCOL (sizeof(pcols) / sizeof(pcols[0]))

/* What bench_check_clock found, for the header of the table. */
static struct {
	int measured;
	uint64_t read_ns;
	char source[32];
} clock_info;

/* ------------------------------------------------------------- storage */

int bench_report_add(struct bench_report *rep, struct bench_result *res)
{
	if (rep->n == rep->cap) {
		size_t cap = rep->cap ? rep->cap * 2 : 16;
		struct bench_result *r = realloc(rep->r, cap * sizeof(*r));

		if (!r) {
			fprintf(stderr, "%s: out of memory for results\n",
				BENCH_PROG);
			return -1;
		}
		rep->r = r;
		rep->cap = cap;
	}
	rep->r[rep->n++] = *res;
	/* The report owns the counts now. */
	memset(&res->hist, 0, sizeof(res->hist));
	return 0;
}

void bench_report_fini(struct bench_report *rep)
{
	for (size_t i = 0; i < rep->n; i++)
		bench_hist_fini(&rep->r[i].hist);
	free(rep->r);
	free(rep->warnings);
	memset(rep, 0, sizeof(*rep));
}

void bench_warn(struct bench_report *rep, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: warning: %s\n", BENCH_PROG, msg);
	if (rep->n_warnings == rep->cap_warnings) {
		size_t cap = rep->cap_warnings ? rep->cap_warnings * 2 : 8;
		char (*w)[256] = realloc(rep->warnings, cap * sizeof(*w));

		/* Said on stderr already; only the repetition is lost. */
		if (!w)
			return;
		rep->warnings = w;
		rep->cap_warnings = cap;
	}
	memcpy(rep->warnings[rep->n_warnings++], msg, sizeof(msg));
}

/* ------------------------------------------------------------- figures */

/* One result's numbers, with what is missing marked. */
struct figures {
	int lat;                 /* has a latency histogram with samples */
	uint64_t samples;
	uint64_t min, max, pv[NPCOL];
	int have[NPCOL];         /* enough samples for pcols[k] */
	double mean, stddev;
	int rated;               /* messages and a duration to divide */
	double msgs_s, gbit_s;
};

static void figures_of(const struct bench_result *r, struct figures *f)
{
	memset(f, 0, sizeof(*f));
	f->lat = r->lat != BENCH_LAT_NONE && r->hist.counts &&
		 r->hist.total > 0;
	if (f->lat) {
		f->samples = r->hist.total;
		f->min = r->hist.min;
		f->max = r->hist.max;
		for (size_t k = 0; k < NPCOL; k++) {
			f->have[k] = f->samples >= pcols[k].need;
			if (f->have[k])
				f->pv[k] = bench_hist_percentile(&r->hist,
								 pcols[k].p);
		}
		f->mean = bench_hist_mean(&r->hist);
		f->stddev = bench_hist_stddev(&r->hist);
	}
	f->rated = r->seconds_ns > 0;
	if (f->rated) {
		double s = (double)r->seconds_ns / 1e9;

		f->msgs_s = (double)r->messages / s;
		f->gbit_s = (double)r->messages * (double)r->size * 8.0 /
			    s / 1e9;
	}
}

static const char *lat_kind_name(enum bench_lat_kind k)
{
	switch (k) {
	case BENCH_LAT_NONE: return "none";
	case BENCH_LAT_RTT: return "rtt";
	case BENCH_LAT_HALF: return "half";
	case BENCH_LAT_ONEWAY: return "oneway";
	}
	return "?";
}

/* The baseline a muon result is compared with: a raw result of the same
 * mode, transport, size and series; -1 if there is none. */
static long baseline_of(const struct bench_report *rep, size_t i)
{
	const struct bench_result *m = &rep->r[i];

	if (strcmp(m->impl, "muon") != 0)
		return -1;
	for (size_t j = 0; j < rep->n; j++) {
		const struct bench_result *b = &rep->r[j];

		if (strncmp(b->impl, "raw", 3) == 0 && b->mode == m->mode &&
		    b->transport == m->transport && b->size == m->size &&
		    strcmp(b->series, m->series) == 0)
			return (long)j;
	}
	return -1;
}

/* One muon/raw quotient per column; NaN where either side is missing. */
struct ratios {
	double min, max, pv[NPCOL], msgs_s, gbit_s;
};

static double quot(int ok, double a, double b)
{
	return ok && b > 0 ? a / b : NAN;
}

static void ratios_of(const struct figures *m, const struct figures *b,
		      struct ratios *q)
{
	int lat = m->lat && b->lat;

	q->min = quot(lat, (double)m->min, (double)b->min);
	q->max = quot(lat, (double)m->max, (double)b->max);
	for (size_t k = 0; k < NPCOL; k++)
		q->pv[k] = quot(lat && m->have[k] && b->have[k],
				(double)m->pv[k], (double)b->pv[k]);
	q->msgs_s = quot(m->rated && b->rated, m->msgs_s, b->msgs_s);
	q->gbit_s = quot(m->rated && b->rated, m->gbit_s, b->gbit_s);
}

/* ------------------------------------------- warnings from the results */

/*
 * Said before any output so that they reach stderr first and are repeated
 * under the table and in the JSON: percentiles left out, lost messages,
 * values past the histogram's range, and what the baseline row of a
 * fan-out or streams run is.
 */
static void result_warnings(struct bench_report *rep)
{
	int dropped[NPCOL] = { 0 }, any = 0;
	uint64_t lost = 0, clamped = 0, range = 0;
	size_t n_lost = 0, n_clamped = 0, used = 0;
	char list[200] = "", what[160] = "";

	for (size_t i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];
		struct figures f;

		figures_of(r, &f);
		for (size_t k = 0; k < NPCOL; k++)
			if (f.lat && !f.have[k])
				dropped[k] = any = 1;
		if (r->lost) {
			size_t len = strlen(list);

			n_lost++;
			lost += r->lost;
			if (len < sizeof(list) - 1)
				snprintf(list + len, sizeof(list) - len,
					 "%s%s %s %zu B: %" PRIu64,
					 len ? "; " : "", r->impl, r->series,
					 r->size, r->lost);
		}
		if (r->lat != BENCH_LAT_NONE && r->hist.clamped) {
			n_clamped++;
			clamped += r->hist.clamped;
			range = r->hist.highest;
		}
	}
	for (size_t k = 0; any && k < NPCOL; k++)
		if (dropped[k] && used < sizeof(what))
			used += (size_t)snprintf(what + used,
				sizeof(what) - used, "%s%s (needs %" PRIu64
				" samples)", used ? ", " : "", pcols[k].name,
				pcols[k].need);
	if (any)
		bench_warn(rep, "too few samples for %s in some rows: shown "
			   "as '-'; a longer run (--count, --duration) fills "
			   "them in", what);
	if (n_lost)
		bench_warn(rep, "%zu result%s lost %" PRIu64 " messages (%s)",
			   n_lost, n_lost == 1 ? "" : "s", lost, list);
	if (n_clamped)
		bench_warn(rep, "%" PRIu64 " latencies in %zu result%s were "
			   "above the histogram's range (%.0f s) and count as "
			   "that", clamped, n_clamped,
			   n_clamped == 1 ? "" : "s", (double)range / 1e9);
}

/* A note, not a warning: what the raw rows of a fan-out or streams run
 * stand for. Empty when there is nothing to say. */
static void baseline_note(const struct bench_opts *o,
			  const struct bench_report *rep, char *buf,
			  size_t len)
{
	buf[0] = '\0';
	if (o->mode != BENCH_FANOUT && o->mode != BENCH_STREAMS)
		return;
	for (size_t i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];

		if (strncmp(r->impl, "raw", 3) != 0)
			continue;
		if (r->mode == BENCH_FANOUT)
			snprintf(buf, len, "the %s rows are the same fan-out "
				 "without muon: one producer hands every "
				 "message to each of %u consumers in turn (%s "
				 "each); muon/raw pairs the rows of each "
				 "series", r->impl, bench_subs(o),
				 r->transport == BENCH_SHM ? "a ring" :
				 r->transport == BENCH_TCP ? "a connection" :
				 "an RC QP");
		else
			snprintf(buf, len, "the %s rows are the bare "
				 "throughput to one subscriber, the floor for "
				 "%s (there is no raw %s)", r->impl,
				 bench_mode_name(o->mode),
				 bench_mode_name(o->mode));
		return;
	}
}

/* ---------------------------------------------------------- the header */

/* "0,2-5": a CPU list as sched_setaffinity's tools write it. */
static void cpu_list(const int *cpu, unsigned n, char *buf, size_t len)
{
	int seen[CPU_SETSIZE] = { 0 };
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < n; i++)
		if (cpu[i] >= 0 && cpu[i] < CPU_SETSIZE)
			seen[cpu[i]] = 1;
	for (int c = 0; c < CPU_SETSIZE && used < len; c++) {
		int e = c;

		if (!seen[c])
			continue;
		while (e + 1 < CPU_SETSIZE && seen[e + 1])
			e++;
		if (e == c)
			used += (size_t)snprintf(buf + used, len - used, "%s%d",
						 used ? "," : "", c);
		else
			used += (size_t)snprintf(buf + used, len - used,
						 "%s%d-%d", used ? "," : "", c,
						 e);
		c = e;
	}
}

static void print_cpus(FILE *f, const struct bench_opts *o)
{
	int subs_cpu[BENCH_MAX_SUBS];
	unsigned n = bench_subs(o);
	char list[256];

	fprintf(f, "# CPUs:      ");
	if (o->mode == BENCH_PINGPONG) {
		if (o->ping_cpu < 0)
			fprintf(f, "not pinned");
		else
			fprintf(f, "ping on %d, pong on %d", o->ping_cpu,
				o->pong_cpu);
	} else if (!o->n_cpus) {
		fprintf(f, "not pinned");
	} else {
		for (unsigned i = 0; i < n && i < BENCH_MAX_SUBS; i++)
			subs_cpu[i] = bench_cpu_of(o, 1 + i);
		cpu_list(subs_cpu, n < BENCH_MAX_SUBS ? n : BENCH_MAX_SUBS,
			 list, sizeof(list));
		fprintf(f, "publisher on %d, subscriber%s on %s",
			bench_cpu_of(o, 0), n == 1 ? "" : "s", list);
	}
	if (o->shared_cpu)
		fprintf(f, " (busy sides share a CPU and yield to each "
			"other)");
	fprintf(f, "\n");
}

static void print_header(FILE *f, const struct bench_opts *o,
			 const struct bench_report *rep, int us)
{
	int kinds[4] = { 0 };

	fprintf(f, "# muon-bench %s\n", bench_mode_name(o->mode));
	fprintf(f, "# transport: %s", bench_transport_name(o->transport));
	if (o->transport == BENCH_VERBS && o->addr)
		fprintf(f, " (address %s)", o->addr);
	if (o->role != BENCH_ROLE_BOTH)
		fprintf(f, ", two hosts: this is the %s side (discovery %s, "
			"run id %s)", o->role == BENCH_ROLE_PUB ? "pub" : "sub",
			o->discovery ? o->discovery : "-",
			o->run_id ? o->run_id : "default");
	else
		fprintf(f, ", layout: %s", o->layout == BENCH_LAYOUT_THREAD ?
			"threads of one process" : "one process per side");
	fprintf(f, "\n");
	print_cpus(f, o);
	if (o->mode == BENCH_FANOUT)
		fprintf(f, "# fan-out:   %u subscribers\n", bench_subs(o));
	if (o->mode == BENCH_STREAMS)
		fprintf(f, "# streams:   %u publications over %u topics, %u "
			"subscriber%s\n", o->pubs, o->topics, bench_subs(o),
			bench_subs(o) == 1 ? "" : "s");
	fprintf(f, "# sizes:     ");
	for (unsigned i = 0; i < o->n_sizes; i++)
		fprintf(f, "%s%zu", i ? ", " : "", o->sizes[i]);
	fprintf(f, " bytes\n");
	if (o->count)
		fprintf(f, "# each size: %" PRIu64 " timed %s after %" PRIu64
			" warm-up\n", o->count, o->mode == BENCH_PINGPONG ?
			"round trips" : "messages", o->warmup);
	else
		fprintf(f, "# each size: %.3f s timed after %" PRIu64
			" warm-up %s\n", (double)o->duration_ns / 1e9,
			o->warmup, o->mode == BENCH_PINGPONG ?
			"round trips" : "messages");
	if (o->rate)
		fprintf(f, "# rate:      %" PRIu64 " messages/s per "
			"publication, bursts of %u (latency from the intended "
			"send time)\n", o->rate, o->burst);
	else if (o->burst > 1)
		fprintf(f, "# rate:      as fast as possible, bursts of %u\n",
			o->burst);
	if (o->batch)
		fprintf(f, "# publish:   muon_publishv(), one call per burst "
			"of %u\n", o->burst);
	fprintf(f, "# libmuon:   %s (muon-bench %s)\n", muon_version(),
		TOOL_VERSION);
	fprintf(f, "# clock:     CLOCK_MONOTONIC");
	if (clock_info.source[0])
		fprintf(f, ", clock source %s", clock_info.source);
	if (clock_info.measured)
		fprintf(f, ", %" PRIu64 " ns per read", clock_info.read_ns);
	fprintf(f, "\n");
	if (bench_noise_measured()) {
		fprintf(f, "# stalls:    time lost in gaps of 2 us or more of a "
			"busy loop: ");
		bench_noise_print(f, 0);
		fprintf(f, "\n");
	}
	for (size_t i = 0; i < rep->n; i++)
		kinds[rep->r[i].lat] = 1;
	fprintf(f, "# latency:   in %s", us ? "microseconds" : "nanoseconds");
	if (kinds[BENCH_LAT_RTT])
		fprintf(f, "; rtt = round trip");
	if (kinds[BENCH_LAT_HALF])
		fprintf(f, "; half = round trip / 2");
	if (kinds[BENCH_LAT_ONEWAY])
		fprintf(f, "; one way = intended send time to delivery");
	if (kinds[BENCH_LAT_NONE])
		fprintf(f, "; '-' = not measured");
	fprintf(f, "\n");
	fprintf(f, "# msgs/s, Gb/s: %s delivered and their payload bits per "
		"second of the timed part\n", o->mode == BENCH_PINGPONG ?
		"round trips" : "messages");
}

/* ----------------------------------------------------------- the table */

#define LAT_W 10

static void put_lat(FILE *f, int ok, uint64_t v, int us)
{
	if (!ok)
		fprintf(f, " %*s", LAT_W, "-");
	else if (us)
		fprintf(f, " %*.2f", LAT_W, (double)v / 1000.0);
	else
		fprintf(f, " %*" PRIu64, LAT_W, v);
}

static void put_ratio(FILE *f, int w, double q)
{
	if (isnan(q))
		fprintf(f, " %*s", w, "-");
	else
		fprintf(f, " %*.2f", w, q);
}

static void print_row(FILE *f, const struct bench_result *r,
		      const struct figures *g, int us)
{
	fprintf(f, "%-10s %-8s %9zu", r->impl, r->series, r->size);
	put_lat(f, g->lat, g->min, us);
	for (size_t k = 0; k < NPCOL; k++)
		put_lat(f, g->lat && g->have[k], g->pv[k], us);
	put_lat(f, g->lat, g->max, us);
	if (g->rated)
		fprintf(f, " %13.0f %8.3f", g->msgs_s, g->gbit_s);
	else
		fprintf(f, " %13s %8s", "-", "-");
	if (r->lost)
		fprintf(f, "  LOST %" PRIu64, r->lost);
	if (r->lat != BENCH_LAT_NONE && r->hist.clamped)
		fprintf(f, "  clamped %" PRIu64, r->hist.clamped);
	fprintf(f, "\n");
}

static void print_ratio_row(FILE *f, const struct bench_result *m,
			    const struct ratios *q)
{
	fprintf(f, "%-10s %-8s %9zu", "muon/raw", m->series, m->size);
	put_ratio(f, LAT_W, q->min);
	for (size_t k = 0; k < NPCOL; k++)
		put_ratio(f, LAT_W, q->pv[k]);
	put_ratio(f, LAT_W, q->max);
	put_ratio(f, 13, q->msgs_s);
	put_ratio(f, 8, q->gbit_s);
	fprintf(f, "\n");
}

/*
 * Nanoseconds unless the typical value (a median) reaches 100 us, where
 * nanosecond digits are noise: one unit for the whole table.
 */
static int table_in_us(const struct bench_report *rep)
{
	for (size_t i = 0; i < rep->n; i++) {
		struct figures g;

		figures_of(&rep->r[i], &g);
		if (g.lat && g.have[0] && g.pv[0] >= 100000)
			return 1;
	}
	return 0;
}

static void print_ratios_of_size(FILE *f, const struct bench_report *rep,
				 size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		long b = baseline_of(rep, i);
		struct figures m, r;
		struct ratios q;

		if (b < 0)
			continue;
		figures_of(&rep->r[i], &m);
		figures_of(&rep->r[b], &r);
		ratios_of(&m, &r, &q);
		print_ratio_row(f, &rep->r[i], &q);
	}
}

static void print_table(const struct bench_opts *o,
			const struct bench_report *rep)
{
	FILE *f = stdout;
	int us = table_in_us(rep);
	char note[256];
	size_t group = 0;

	print_header(f, o, rep, us);
	if (!o->check_host) {
		fprintf(f, "%-10s %-8s %9s", "impl", "series", "bytes");
		fprintf(f, " %*s", LAT_W, "min");
		for (size_t k = 0; k < NPCOL; k++)
			fprintf(f, " %*s", LAT_W, pcols[k].name);
		fprintf(f, " %*s %13s %8s\n", LAT_W, "max", "msgs/s",
			"Gb/s");
	}
	/* The ratio rows of a size follow its last row. */
	for (size_t i = 0; i < rep->n; i++) {
		struct figures g;

		figures_of(&rep->r[i], &g);
		print_row(f, &rep->r[i], &g, us);
		if (i + 1 == rep->n || rep->r[i + 1].size != rep->r[i].size) {
			print_ratios_of_size(f, rep, group, i + 1);
			group = i + 1;
		}
	}
	if (rep->n == 0)
		fprintf(f, "# %s\n", o->check_host ?
			"--check-host: the host's figures are above and in "
			"the warnings; nothing was measured" :
			"no results on this side");
	baseline_note(o, rep, note, sizeof(note));
	if (note[0])
		fprintf(f, "# note: %s\n", note);
	for (size_t i = 0; i < rep->n_warnings; i++)
		fprintf(f, "# warning: %s\n", rep->warnings[i]);
	fflush(f);
}

/* ------------------------------------------------------------------ JSON */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

static void json_num(FILE *f, const char *key, int ok, double v, int decimals,
		     int comma)
{
	fprintf(f, "%s\"%s\":", comma ? "," : "", key);
	if (ok && isfinite(v))
		fprintf(f, "%.*f", decimals, v);
	else
		fputs("null", f);
}

static void json_u64(FILE *f, const char *key, int ok, uint64_t v, int comma)
{
	fprintf(f, "%s\"%s\":", comma ? "," : "", key);
	if (ok)
		fprintf(f, "%" PRIu64, v);
	else
		fputs("null", f);
}

static void json_result(FILE *f, const struct bench_result *r)
{
	struct figures g;

	figures_of(r, &g);
	fputs("{\"impl\":", f);
	json_str(f, r->impl);
	fputs(",\"series\":", f);
	json_str(f, r->series);
	fprintf(f, ",\"size\":%zu,\"messages\":%" PRIu64 ",\"lost\":%" PRIu64
		",\"seconds\":%.9f", r->size, r->messages, r->lost,
		(double)r->seconds_ns / 1e9);
	json_num(f, "msgs_per_s", g.rated, g.msgs_s, 1, 1);
	json_num(f, "gbit_per_s", g.rated, g.gbit_s, 6, 1);
	fprintf(f, ",\"latency_kind\":\"%s\",\"latency_ns\":",
		lat_kind_name(r->lat));
	if (!g.lat) {
		fputs("null}", f);
		return;
	}
	fputc('{', f);
	json_u64(f, "min", 1, g.min, 0);
	for (size_t k = 0; k < NPCOL; k++)
		json_u64(f, pcols[k].key, g.have[k], g.pv[k], 1);
	json_u64(f, "max", 1, g.max, 1);
	fprintf(f, ",\"mean\":%.3f,\"stddev\":%.3f,\"samples\":%" PRIu64
		"}}", g.mean, g.stddev, g.samples);
}

static void json_ratio(FILE *f, const struct bench_result *m,
		       const struct bench_result *b)
{
	struct figures gm, gb;
	struct ratios q;

	figures_of(m, &gm);
	figures_of(b, &gb);
	ratios_of(&gm, &gb, &q);
	fputs("{\"impl\":", f);
	json_str(f, m->impl);
	fputs(",\"base\":", f);
	json_str(f, b->impl);
	fputs(",\"series\":", f);
	json_str(f, m->series);
	fprintf(f, ",\"size\":%zu", m->size);
	json_num(f, "min", 1, q.min, 4, 1);
	for (size_t k = 0; k < NPCOL; k++)
		json_num(f, pcols[k].key, 1, q.pv[k], 4, 1);
	json_num(f, "max", 1, q.max, 4, 1);
	json_num(f, "msgs_per_s", 1, q.msgs_s, 4, 1);
	json_num(f, "gbit_per_s", 1, q.gbit_s, 4, 1);
	fputc('}', f);
}

static void print_json(const struct bench_opts *o,
		       const struct bench_report *rep)
{
	FILE *f = stdout;
	char note[256];
	int first = 1;

	fprintf(f, "{\"tool\":\"%s\",\"version\":\"%s\",\"libmuon\":",
		BENCH_PROG, TOOL_VERSION);
	json_str(f, muon_version());
	fprintf(f, ",\"mode\":\"%s\",\"transport\":\"%s\",\"layout\":\"%s\"",
		bench_mode_name(o->mode), bench_transport_name(o->transport),
		o->layout == BENCH_LAYOUT_THREAD ? "thread" : "process");
	fprintf(f, ",\"role\":\"%s\"", o->role == BENCH_ROLE_PUB ? "pub" :
		o->role == BENCH_ROLE_SUB ? "sub" : "both");
	fputs(",\"cpus\":[", f);
	if (o->mode == BENCH_PINGPONG && o->ping_cpu >= 0)
		fprintf(f, "%d,%d", o->ping_cpu, o->pong_cpu);
	else if (o->mode != BENCH_PINGPONG)
		for (unsigned i = 0; i < o->n_cpus; i++)
			fprintf(f, "%s%d", i ? "," : "", o->cpus[i]);
	fprintf(f, "],\"count\":%" PRIu64 ",\"duration_s\":%.3f,"
		"\"warmup\":%" PRIu64 ",\"rate\":%" PRIu64 ",\"burst\":%u,"
		"\"batch\":%s",
		o->count, (double)o->duration_ns / 1e9, o->warmup, o->rate,
		o->burst, o->batch ? "true" : "false");
	if (clock_info.source[0]) {
		fputs(",\"clocksource\":", f);
		json_str(f, clock_info.source);
	}
	if (bench_noise_measured()) {
		fputs(",\"host_stalls\":[", f);
		bench_noise_print(f, 1);
		fputc(']', f);
	}
	fputs(",\"results\":[", f);
	for (size_t i = 0; i < rep->n; i++) {
		if (i)
			fputc(',', f);
		json_result(f, &rep->r[i]);
	}
	fputs("],\"ratios\":[", f);
	for (size_t i = 0; i < rep->n; i++) {
		long b = baseline_of(rep, i);

		if (b < 0)
			continue;
		if (!first)
			fputc(',', f);
		first = 0;
		json_ratio(f, &rep->r[i], &rep->r[b]);
	}
	fputs("],\"notes\":[", f);
	baseline_note(o, rep, note, sizeof(note));
	if (note[0])
		json_str(f, note);
	fputs("],\"warnings\":[", f);
	for (size_t i = 0; i < rep->n_warnings; i++) {
		if (i)
			fputc(',', f);
		json_str(f, rep->warnings[i]);
	}
	fputs("]}\n", f);
	fflush(f);
}

/* ------------------------------------------------------------------- CSV */

/* Our names hold no commas or quotes, but a field is a field. */
static void csv_str(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void csv_u64(FILE *f, int ok, uint64_t v)
{
	if (ok)
		fprintf(f, ",%" PRIu64, v);
	else
		fputc(',', f);
}

static void print_csv(const struct bench_report *rep)
{
	FILE *f = stdout;

	fputs("impl,series,mode,transport,size,messages,lost,seconds,"
	      "msgs_per_s,gbit_per_s,latency_kind,samples,min_ns", f);
	for (size_t k = 0; k < NPCOL; k++)
		fprintf(f, ",%s_ns", pcols[k].key);
	fputs(",max_ns,mean_ns,stddev_ns\n", f);
	for (size_t i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];
		struct figures g;

		figures_of(r, &g);
		csv_str(f, r->impl);
		fputc(',', f);
		csv_str(f, r->series);
		fprintf(f, ",%s,%s,%zu,%" PRIu64 ",%" PRIu64 ",%.9f",
			bench_mode_name(r->mode),
			bench_transport_name(r->transport), r->size,
			r->messages, r->lost, (double)r->seconds_ns / 1e9);
		if (g.rated)
			fprintf(f, ",%.3f,%.6f", g.msgs_s, g.gbit_s);
		else
			fputs(",,", f);
		fprintf(f, ",%s", lat_kind_name(r->lat));
		csv_u64(f, g.lat, g.samples);
		csv_u64(f, g.lat, g.min);
		for (size_t k = 0; k < NPCOL; k++)
			csv_u64(f, g.lat && g.have[k], g.pv[k]);
		csv_u64(f, g.lat, g.max);
		if (g.lat)
			fprintf(f, ",%.3f,%.3f\n", g.mean, g.stddev);
		else
			fputs(",,\n", f);
	}
	fflush(f);
}

/* ------------------------------------------------------------ .hgrm files */

static int plottable(const struct bench_result *r)
{
	return r->lat != BENCH_LAT_NONE && r->hist.counts && r->hist.total;
}

/* In microseconds, as HdrHistogram's plotter expects by default. */
static int write_hgrm_file(const char *path, const struct bench_result *r)
{
	FILE *f = fopen(path, "we");
	int rc;

	if (!f) {
		fprintf(stderr, "%s: cannot write %s: %s\n", BENCH_PROG, path,
			strerror(errno));
		return -1;
	}
	rc = bench_hist_write_hgrm(&r->hist, f, 5, 1000.0);
	if (fclose(f) != 0)
		rc = -1;
	if (rc != 0) {
		fprintf(stderr, "%s: error writing %s: %s\n", BENCH_PROG, path,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int write_hgrms(const char *prefix, const struct bench_report *rep)
{
	char path[PATH_MAX];
	int rc = 0;

	for (size_t i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];
		int n;

		if (!plottable(r))
			continue;
		n = snprintf(path, sizeof(path), "%s-%s-%s-%zu.hgrm", prefix,
			     r->impl, r->series, r->size);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			fprintf(stderr, "%s: --hgrm: path too long\n",
				BENCH_PROG);
			return -1;
		}
		if (write_hgrm_file(path, r) != 0) {
			rc = -1;
			continue;
		}
		fprintf(stderr, "%s: wrote %s\n", BENCH_PROG, path);
	}
	return rc;
}

/* --------------------------------------------------------------- the plot */

/* Whether `prog` is an executable on $PATH: said before any work. */
static int on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		int n = snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path,
				 prog);

		if (len && n > 0 && (size_t)n < sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return 1;
		path += len;
		if (*path == ':')
			path++;
	}
	return 0;
}

/* A gnuplot single-quoted string: a quote is doubled. */
static void gp_str(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static int write_plot_script(const char *script, const char *dir,
			     const struct bench_opts *o,
			     const struct bench_report *rep)
{
	/* gnuplot reads a tic label as a format: '%' is doubled. */
	static const char *const tick_names[] = {
		"0%%", "90%%", "99%%", "99.9%%", "99.99%%", "99.999%%",
		"99.9999%%", "99.99999%%", "99.999999%%",
	};
	FILE *f = fopen(script, "we");
	uint64_t most = 1;
	double xmax = 10, tick = 1;
	int first = 1;

	if (!f) {
		fprintf(stderr, "%s: --png: cannot write %s: %s\n", BENCH_PROG,
			script, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < rep->n; i++)
		if (plottable(&rep->r[i]) && rep->r[i].hist.total > most)
			most = rep->r[i].hist.total;
	/* The tail ends where 1/(1-p) reaches the sample count. */
	while (xmax < (double)most && xmax < 1e8)
		xmax *= 10;
	fputs("set encoding utf8\n"
	      "set terminal pngcairo size 1200,720 noenhanced font ',10'\n",
	      f);
	fputs("set output ", f);
	gp_str(f, o->png);
	fprintf(f, "\nset title 'muon-bench %s, %s: latency by percentile'\n",
		bench_mode_name(o->mode), bench_transport_name(o->transport));
	fprintf(f, "set logscale xy\nset xrange [1:%g]\n", xmax);
	fputs("set xtics (", f);
	for (size_t t = 0; t < sizeof(tick_names) / sizeof(tick_names[0]) &&
			   tick <= xmax; t++, tick *= 10)
		fprintf(f, "%s\"%s\" %g", t ? ", " : "", tick_names[t],
			tick);
	fputs(")\n"
	      "set xlabel 'percentile'\n"
	      "set ylabel 'latency (µs)'\n"
	      "set grid xtics ytics mytics\n"
	      "set key left top\n"
	      "plot", f);
	for (size_t i = 0; i < rep->n; i++) {
		const struct bench_result *r = &rep->r[i];
		char title[96];

		if (!plottable(r))
			continue;
		snprintf(title, sizeof(title), "%s %s %zu B", r->impl,
			 r->series, r->size);
		/* Column 4 is 1/(1-p); the header lines and the 100 % row
		 * (no column 4) are skipped by gnuplot as invalid points. */
		fprintf(f, "%s '%s/%zu.hgrm' using 4:1 with lines lw 2 "
			"title ", first ? "" : ", \\\n    ", dir, i);
		gp_str(f, title);
		first = 0;
	}
	fputc('\n', f);
	if (fclose(f) != 0) {
		fprintf(stderr, "%s: --png: error writing %s\n", BENCH_PROG,
			script);
		return -1;
	}
	return 0;
}

/* gnuplot's own output goes to stderr: stdout may be our JSON. */
static int run_gnuplot(const char *script)
{
	pid_t pid;
	int status;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: --png: fork: %s\n", BENCH_PROG,
			strerror(errno));
		return -1;
	}
	if (pid == 0) {
		dup2(2, 1);
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		fprintf(stderr, "%s: --png: cannot run gnuplot: %s\n",
			BENCH_PROG, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "%s: --png: waitpid: %s\n", BENCH_PROG,
				strerror(errno));
			return -1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: --png: gnuplot failed (%s %d)\n",
			BENCH_PROG, WIFEXITED(status) ? "exit status" :
			"signal", WIFEXITED(status) ? WEXITSTATUS(status) :
			WTERMSIG(status));
		return -1;
	}
	return 0;
}

static int make_temp_dir(char *dir, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/tmp";
	if ((size_t)snprintf(dir, len, "%s/muon-bench-XXXXXX", tmp) >= len ||
	    !mkdtemp(dir)) {
		fprintf(stderr, "%s: --png: cannot make a temporary directory "
			"in %s: %s\n", BENCH_PROG, tmp, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_png(const struct bench_opts *o,
		     const struct bench_report *rep)
{
	char dir[PATH_MAX - 64], path[PATH_MAX];
	struct stat st;
	int rc = -1;
	size_t i;

	if (make_temp_dir(dir, sizeof(dir)) != 0)
		return -1;
	for (i = 0; i < rep->n; i++) {
		if (!plottable(&rep->r[i]))
			continue;
		snprintf(path, sizeof(path), "%s/%zu.hgrm", dir, i);
		if (write_hgrm_file(path, &rep->r[i]) != 0)
			goto remove_files;
	}
	snprintf(path, sizeof(path), "%s/plot.gp", dir);
	if (write_plot_script(path, dir, o, rep) != 0)
		goto remove_files;
	if (run_gnuplot(path) != 0) {
		/* Whatever gnuplot left there is no plot. */
		unlink(o->png);
		goto remove_files;
	}
	if (stat(o->png, &st) != 0 || st.st_size == 0) {
		fprintf(stderr, "%s: --png: gnuplot left no image in %s\n",
			BENCH_PROG, o->png);
		goto remove_files;
	}
	fprintf(stderr, "%s: wrote %s\n", BENCH_PROG, o->png);
	rc = 0;
remove_files:
	for (size_t j = 0; j < rep->n; j++) {
		snprintf(path, sizeof(path), "%s/%zu.hgrm", dir, j);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/plot.gp", dir);
	unlink(path);
	if (rmdir(dir) != 0)
		fprintf(stderr, "%s: --png: cannot remove %s: %s\n",
			BENCH_PROG, dir, strerror(errno));
	return rc;
}

/* ---------------------------------------------------------------- print */

int bench_report_print(const struct bench_opts *o, struct bench_report *rep)
{
	int plot = 0, rc = 0;

	result_warnings(rep);
	if (o->png) {
		for (size_t i = 0; i < rep->n; i++)
			plot |= plottable(&rep->r[i]);
		if (!plot)
			bench_warn(rep, "--png: no result has latencies to "
				   "plot; no image written");
		/* Said before the table, so that a missing tool does not
		 * cost a whole run's output its point. */
		else if (!on_path("gnuplot")) {
			fprintf(stderr, "%s: --png needs gnuplot, which is "
				"not installed (Debian package gnuplot-nox)\n",
				BENCH_PROG);
			rc = -1;
			plot = 0;
		}
	}
	if (o->json)
		print_json(o, rep);
	else if (o->csv)
		print_csv(rep);
	else
		print_table(o, rep);
	if (o->hgrm && write_hgrms(o->hgrm, rep) != 0)
		rc = -1;
	if (plot && write_png(o, rep) != 0)
		rc = -1;
	return rc;
}

/* ---------------------------------------------------------------- clock */

static int read_clocksource(char *buf, size_t len)
{
	FILE *f = fopen(CLOCKSOURCE_PATH, "re");

	buf[0] = '\0';
	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, " \n")] = '\0';
	return buf[0] ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

#define CLOCK_READS 4001

void bench_check_clock(struct bench_report *rep)
{
	static uint64_t t[CLOCK_READS];
	uint64_t d[CLOCK_READS - 1], smallest_step = 0;
	unsigned backwards = 0, zero = 0;
	struct timespec res;

	for (int i = 0; i < 100; i++)
		t[0] = bench_now_ns();
	for (int i = 0; i < CLOCK_READS; i++)
		t[i] = bench_now_ns();
	for (int i = 0; i + 1 < CLOCK_READS; i++) {
		if (t[i + 1] < t[i]) {
			backwards++;
			d[i] = 0;
			continue;
		}
		d[i] = t[i + 1] - t[i];
		if (d[i] == 0)
			zero++;
		else if (!smallest_step || d[i] < smallest_step)
			smallest_step = d[i];
	}
	qsort(d, CLOCK_READS - 1, sizeof(d[0]), cmp_u64);
	clock_info.read_ns = d[(CLOCK_READS - 1) / 2];
	clock_info.measured = 1;
	if (read_clocksource(clock_info.source, sizeof(clock_info.source))
	    == 0 && strcmp(clock_info.source, "tsc") != 0)
		bench_warn(rep, "the clock source is %s, not tsc: a clock "
			   "read may be a system call (here one takes %" PRIu64
			   " ns), which adds to every latency measured",
			   clock_info.source, clock_info.read_ns);
	if (clock_info.read_ns > 200)
		bench_warn(rep, "a clock read (clock_gettime(CLOCK_MONOTONIC)) "
			   "takes %" PRIu64 " ns (median of %d): each latency "
			   "carries about that much, and the highest rates "
			   "are out of reach", clock_info.read_ns,
			   CLOCK_READS - 1);
	if (backwards)
		bench_warn(rep, "CLOCK_MONOTONIC went backwards %u times in "
			   "%d reads: latencies cannot be trusted", backwards,
			   CLOCK_READS);
	if (clock_getres(CLOCK_MONOTONIC, &res) == 0 &&
	    (res.tv_sec || res.tv_nsec > 1000))
		bench_warn(rep, "CLOCK_MONOTONIC has a resolution of %.0f ns: "
			   "shorter latencies are rounded to that",
			   (double)res.tv_sec * 1e9 + (double)res.tv_nsec);
	else if (zero > (CLOCK_READS - 1) / 2 && smallest_step > 1000)
		bench_warn(rep, "CLOCK_MONOTONIC advances in steps of about "
			   "%" PRIu64 " ns: shorter latencies are rounded to "
			   "that", smallest_step);
}

/* ----------------------------------------------------------------- CPUs */

static void side_name(const struct bench_opts *o, unsigned i, char *buf,
		      size_t len)
{
	if (o->mode == BENCH_PINGPONG)
		snprintf(buf, len, "%s", i == 0 ? "ping" : "pong");
	else if (i == 0)
		snprintf(buf, len, "publisher");
	else if (bench_subs(o) == 1)
		snprintf(buf, len, "subscriber");
	else
		snprintf(buf, len, "sub%u", i - 1);
}

static int side_cpu(const struct bench_opts *o, unsigned i)
{
	if (o->mode == BENCH_PINGPONG)
		return i == 0 ? o->ping_cpu : o->pong_cpu;
	return bench_cpu_of(o, i);
}

/* "CPU 1 runs sub0, sub1, sub2": the first CPU with two busy sides. */
static int shared_cpu_text(const struct bench_opts *o, unsigned sides,
			   char *buf, size_t len)
{
	for (unsigned i = 0; i < sides; i++) {
		int cpu = side_cpu(o, i), n = 0;
		size_t used;

		for (unsigned j = 0; j < i; j++)
			if (side_cpu(o, j) == cpu)
				goto next; /* reported with j */
		used = (size_t)snprintf(buf, len, "CPU %d runs", cpu);
		for (unsigned j = i; j < sides && used < len; j++) {
			char name[24];

			if (side_cpu(o, j) != cpu)
				continue;
			side_name(o, j, name, sizeof(name));
			used += (size_t)snprintf(buf + used, len - used,
						 "%s %s", n ? "," : "", name);
			n++;
		}
		if (n > 1)
			return 1;
next:;
	}
	return 0;
}

int bench_check_cpus(const struct bench_opts *o, unsigned busy_sides,
		     struct bench_report *rep)
{
	cpu_set_t allowed;
	int pinned = o->mode == BENCH_PINGPONG ? o->ping_cpu >= 0 :
		     o->n_cpus > 0;
	char text[200];

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
		bench_warn(rep, "sched_getaffinity: %s: the CPUs were not "
			   "checked", strerror(errno));
		return 0;
	}
	if (!pinned) {
		if (busy_sides > (unsigned)CPU_COUNT(&allowed))
			bench_warn(rep, "%u busy-polling sides but only %d "
				   "CPU%s to run on: they take turns, and the "
				   "figures measure the scheduler more than "
				   "muon", busy_sides, CPU_COUNT(&allowed),
				   CPU_COUNT(&allowed) == 1 ? "" : "s");
		return 0;
	}
	for (unsigned i = 0; i < busy_sides; i++) {
		int cpu = side_cpu(o, i);

		if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
			int all[CPU_SETSIZE], n = 0;
			char list[256];

			for (int c = 0; c < CPU_SETSIZE; c++)
				if (CPU_ISSET(c, &allowed))
					all[n++] = c;
			cpu_list(all, (unsigned)n, list, sizeof(list));
			fprintf(stderr, "%s: --cpu: CPU %d is not available "
				"to this process (it may use %s)\n",
				BENCH_PROG, cpu, list);
			return -1;
		}
	}
	if (shared_cpu_text(o, busy_sides, text, sizeof(text)))
		bench_warn(rep, "busy-polling sides share a CPU (%s): they "
			   "yield to each other, and the figures measure the "
			   "scheduler more than muon", text);
	return 0;
}

/* ------------------------------------------------------------- progress */

#define PROGRESS_EVERY_NS 250000000ull

void bench_progress_start(struct bench_progress *p, const struct bench_opts *o,
			  const char *what, uint64_t total, uint64_t end_ns)
{
	memset(p, 0, sizeof(*p));
	p->on = o->progress && isatty(STDERR_FILENO);
	if (!p->on)
		return;
	snprintf(p->what, sizeof(p->what), "%s", what);
	p->total = total;
	p->end_ns = end_ns;
	p->start_ns = bench_now_ns();
	p->next_ns = p->start_ns + PROGRESS_EVERY_NS;
}

void bench_progress_slow(struct bench_progress *p, uint64_t done)
{
	uint64_t now = bench_now_ns();
	double secs, rate, pct = -1;
	const char *unit = "";

	if (now < p->next_ns)
		return;
	p->next_ns = now + PROGRESS_EVERY_NS;
	secs = (double)(now - p->start_ns) / 1e9;
	rate = secs > 0 ? (double)done / secs : 0;
	if (p->total)
		pct = 100.0 * (double)done / (double)p->total;
	else if (p->end_ns > p->start_ns)
		pct = 100.0 * (double)(now - p->start_ns) /
		      (double)(p->end_ns - p->start_ns);
	if (pct > 100)
		pct = 100;
	if (rate >= 1e9) {
		rate /= 1e9;
		unit = " G";
	} else if (rate >= 1e6) {
		rate /= 1e6;
		unit = " M";
	} else if (rate >= 1e3) {
		rate /= 1e3;
		unit = " k";
	}
	if (pct >= 0)
		fprintf(stderr, "\r%s: %3.0f%% %.1f%s msg/s\033[K", p->what,
			pct, rate, unit);
	else
		fprintf(stderr, "\r%s: %.1f%s msg/s\033[K", p->what, rate,
			unit);
}

void bench_progress_end(struct bench_progress *p)
{
	if (!p->on)
		return;
	fputs("\r\033[K", stderr);
	p->on = 0;
}
