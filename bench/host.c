/*
 * muon-bench: what the host does to the run's CPUs, checked before the
 * run: how much time it takes from a busy thread (bench_check_noise), and
 * how the CPUs sit (bench_check_host: hyper-thread siblings, NUMA nodes,
 * frequency governor).
 *
 * Stalls.
 * A virtual machine's vCPU, a CPU that takes interrupts or one shared
 * with other tasks stops a busy-polling thread now and then for tens of
 * microseconds. Every message that falls due during such a stall carries
 * it, so at a fixed rate about that share of the messages end up in the
 * latency tail whatever the middleware does, and a percentile at that
 * edge (p90 on a VM that takes 7 %) swings with it. A loop that only
 * reads the clock shows the stalls as gaps between two reads: one such
 * loop per CPU, all at once, as the run's sides will be.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

/* Long enough to catch stalls that come every few milliseconds, short
 * enough not to matter next to a run; --check-host looks longer. */
#define NOISE_NS (100ull * 1000000ull)
#define NOISE_CHECK_NS (1000ull * 1000000ull)
/* Two clock reads in a row are tens of nanoseconds apart: a gap this long
 * is time the thread did not have. */
#define NOISE_GAP_NS 2000ull
/* Warn past this share of the loop lost, or a single stall this long. */
#define NOISE_WARN_PERMILLE 10
#define NOISE_WARN_MAX_NS 100000ull

struct noise_cpu {
	int cpu;           /* -1: wherever the scheduler puts it */
	int measured;
	uint64_t len_ns;   /* how long to loop */
	uint64_t span_ns;  /* the loop's length */
	uint64_t lost_ns;  /* in gaps of NOISE_GAP_NS or more */
	uint64_t gaps;
	uint64_t max_ns;
};

static struct {
	unsigned n;
	struct noise_cpu c[BENCH_MAX_CPUS];
} noise;

static void *noise_loop(void *arg)
{
	struct noise_cpu *c = arg;
	uint64_t t0, prev, t, len = c->len_ns;

	if (c->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(c->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set),
					   &set) != 0)
			return NULL;
	}
	t0 = prev = bench_now_ns();
	while ((t = bench_now_ns()) - t0 < len) {
		uint64_t gap = t - prev;

		prev = t;
		if (gap < NOISE_GAP_NS)
			continue;
		c->lost_ns += gap;
		c->gaps++;
		if (gap > c->max_ns)
			c->max_ns = gap;
	}
	c->span_ns = t - t0;
	c->measured = 1;
	return NULL;
}

/* The distinct pinned CPUs of the run's busy sides into out[]; how many. */
static unsigned run_cpus(const struct bench_opts *o, unsigned busy_sides,
			 int *out)
{
	int cpus[BENCH_MAX_CPUS + 2];
	unsigned n = 0, m = 0;

	if (o->mode == BENCH_PINGPONG) {
		cpus[n++] = o->ping_cpu;
		cpus[n++] = o->pong_cpu;
	} else {
		for (unsigned i = 0; i < busy_sides && n < BENCH_MAX_CPUS; i++)
			cpus[n++] = bench_cpu_of(o, i);
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned j;

		if (cpus[i] < 0)
			continue;
		for (j = 0; j < m && out[j] != cpus[i]; j++)
			;
		if (j == m && m < BENCH_MAX_CPUS)
			out[m++] = cpus[i];
	}
	return m;
}

/* The CPUs to loop on: the run's, or one unpinned loop if none is pinned. */
static void noise_cpus(const struct bench_opts *o, unsigned busy_sides)
{
	int cpus[BENCH_MAX_CPUS];

	noise.n = run_cpus(o, busy_sides, cpus);
	for (unsigned i = 0; i < noise.n; i++)
		noise.c[i].cpu = cpus[i];
	if (!noise.n)
		noise.c[noise.n++].cpu = -1;
}

void bench_check_noise(const struct bench_opts *o, unsigned busy_sides,
		       struct bench_report *rep)
{
	pthread_t thr[BENCH_MAX_CPUS];
	int started[BENCH_MAX_CPUS] = { 0 };

	memset(&noise, 0, sizeof(noise));
	noise_cpus(o, busy_sides);
	for (unsigned i = 0; i < noise.n; i++)
		noise.c[i].len_ns = o->check_host ? NOISE_CHECK_NS : NOISE_NS;
	for (unsigned i = 0; i < noise.n; i++) {
		int err = pthread_create(&thr[i], NULL, noise_loop,
					 &noise.c[i]);

		if (err) {
			bench_warn(rep, "host stalls not measured: "
				   "pthread_create: %s", strerror(err));
			break;
		}
		started[i] = 1;
	}
	for (unsigned i = 0; i < noise.n; i++)
		if (started[i])
			pthread_join(thr[i], NULL);
	for (unsigned i = 0; i < noise.n; i++) {
		const struct noise_cpu *c = &noise.c[i];
		char where[32];

		if (!c->measured || !c->span_ns)
			continue;
		if (c->lost_ns * 1000 < c->span_ns * NOISE_WARN_PERMILLE &&
		    c->max_ns < NOISE_WARN_MAX_NS)
			continue;
		if (c->cpu >= 0)
			snprintf(where, sizeof(where), "CPU %d", c->cpu);
		else
			snprintf(where, sizeof(where), "an unpinned thread");
		/* bench_warn keeps 255 characters. */
		bench_warn(rep, "%s lost %.1f%% of a %" PRIu64 " ms busy loop "
			   "in %" PRIu64 " stalls of %llu us or more (longest "
			   "%.0f us), taken by the host: at a fixed rate about "
			   "that share of messages carries such a stall", where,
			   100.0 * (double)c->lost_ns / (double)c->span_ns,
			   c->len_ns / 1000000, c->gaps,
			   NOISE_GAP_NS / 1000, (double)c->max_ns / 1e3);
	}
}

void bench_noise_print(FILE *f, int json)
{
	int first = 1;

	for (unsigned i = 0; i < noise.n; i++) {
		const struct noise_cpu *c = &noise.c[i];
		double pct;

		if (!c->measured || !c->span_ns)
			continue;
		pct = 100.0 * (double)c->lost_ns / (double)c->span_ns;
		if (json)
			fprintf(f, "%s{\"cpu\":%d,\"loop_ms\":%" PRIu64
				",\"lost_pct\":%.2f,\"stalls\":%" PRIu64
				",\"max_ns\":%" PRIu64 "}",
				first ? "" : ",", c->cpu, c->len_ns / 1000000,
				pct, c->gaps, c->max_ns);
		else if (c->cpu >= 0)
			fprintf(f, "%sCPU %d %.1f%% (longest %.0f us)",
				first ? "" : ", ", c->cpu, pct,
				(double)c->max_ns / 1e3);
		else
			fprintf(f, "%sunpinned %.1f%% (longest %.0f us)",
				first ? "" : ", ", pct,
				(double)c->max_ns / 1e3);
		first = 0;
	}
}

int bench_noise_measured(void)
{
	for (unsigned i = 0; i < noise.n; i++)
		if (noise.c[i].measured)
			return 1;
	return 0;
}

/* ------------------------------------------------------------ topology */

/* sysfs, or a tree laid out like it (MUON_BENCH_SYSFS, for the tests). */
static const char *sysfs(void)
{
	const char *s = getenv("MUON_BENCH_SYSFS");

	return s && *s ? s : "/sys";
}

/* The first line of a sysfs file of CPU `cpu`, without its newline; 0,
 * or -1 when there is no such file. */
static int cpu_attr(int cpu, const char *name, char *buf, size_t len)
{
	char path[512];
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/devices/system/cpu/cpu%d/%s",
		 sysfs(), cpu, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\n")] = '\0';
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* Whether `cpu` is in a CPU list as sysfs writes them ("0-3,8"). */
static int list_has(const char *list, int cpu)
{
	const char *p = list;

	while (*p) {
		char *end;
		long a = strtol(p, &end, 10), b;

		if (end == p)
			return 0;
		b = a;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p)
				return 0;
		}
		if (cpu >= a && cpu <= b)
			return 1;
		p = *end == ',' ? end + 1 : end;
		if (*end != ',')
			break;
	}
	return 0;
}

/* The NUMA node of `cpu` (its nodeN entry in sysfs), or -1 if unknown. */
static int cpu_node(int cpu)
{
	char path[512];
	struct dirent *e;
	DIR *d;
	int node = -1;

	snprintf(path, sizeof(path), "%s/devices/system/cpu/cpu%d", sysfs(),
		 cpu);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long n;

		if (strncmp(e->d_name, "node", 4) != 0)
			continue;
		n = strtol(e->d_name + 4, &end, 10);
		if (end != e->d_name + 4 && *end == '\0' && n >= 0) {
			node = (int)n;
			break;
		}
	}
	closedir(d);
	return node;
}

void bench_check_host(const struct bench_opts *o, unsigned busy_sides,
		      struct bench_report *rep)
{
	int cpus[BENCH_MAX_CPUS];
	unsigned n = run_cpus(o, busy_sides, cpus);
	int first_node = -1, first_cpu = -1, warned_numa = 0;
	char buf[256];

	for (unsigned i = 0; i < n; i++) {
		int node;

		/* Siblings share a core's caches and pipeline: two sides on
		 * them measure something no pair of cores does. */
		if (cpu_attr(cpus[i], "topology/thread_siblings_list", buf,
			     sizeof(buf)) == 0)
			for (unsigned j = i + 1; j < n; j++)
				if (list_has(buf, cpus[j]))
					bench_warn(rep, "CPUs %d and %d are "
						   "hyper-thread siblings of one "
						   "core: they share its caches "
						   "and pipeline, so the figures "
						   "are not those of two cores",
						   cpus[i], cpus[j]);
		node = cpu_node(cpus[i]);
		if (node >= 0 && first_node < 0) {
			first_node = node;
			first_cpu = cpus[i];
		} else if (node >= 0 && node != first_node && !warned_numa) {
			bench_warn(rep, "the run's CPUs are on more than one "
				   "NUMA node (CPU %d on node %d, CPU %d on "
				   "node %d): what crosses between them goes "
				   "over the interconnect", first_cpu,
				   first_node, cpus[i], node);
			warned_numa = 1;
		}
		if (cpu_attr(cpus[i], "cpufreq/scaling_governor", buf,
			     sizeof(buf)) == 0 && strcmp(buf, "performance"))
			bench_warn(rep, "CPU %d's frequency governor is '%.32s', "
				   "not 'performance': its clock follows the "
				   "load, and latency with it", cpus[i], buf);
	}
}
