/*
 * muon-bench: measure muon's latency, and the bare-metal floor beside it.
 *
 *   muon-bench pingpong [--transport shm|tcp|verbs] [--addr A]
 *                       [--size BYTES] [--count N] [--warmup N] [--raw]
 *                       [--json] [--cpu A,B]
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <muon/muon.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define BENCH_VERSION                                                  \
	STR(MUON_VERSION_MAJOR) "." STR(MUON_VERSION_MINOR) "."        \
	STR(MUON_VERSION_PATCH)

#define EXIT_USAGE 2
#define MAX_COUNT 1000000000ull /* 8 GB of samples */

enum { OPT_RAW_ONLY = 256, OPT_ADDR };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " BENCH_PROG " pingpong [OPTIONS]\n"
		"       " BENCH_PROG " --help | --version\n"
		"\n"
		"Round-trip latency of muon between two processes on this "
		"host.\n"
		"\n"
		"Options:\n"
		"  -t, --transport shm|tcp|verbs\n"
		"                           transport to measure (default "
		"shm)\n"
		"      --addr A             verbs: address of the local RDMA "
		"device to use\n"
		"                           (default $MUON_RDMA_ADDR, else "
		BENCH_VERBS_ADDR ")\n"
		"  -s, --size BYTES         payload size, 1..%u (default 32)\n"
		"  -n, --count N            timed round trips (default "
		"100000)\n"
		"  -w, --warmup N           untimed round trips before them "
		"(default 10000)\n"
		"  -r, --raw                also run a bare shared-memory, "
		"TCP or verbs ping-pong\n"
		"                           and print the ratio muon/raw\n"
		"  -j, --json               print one JSON object instead of "
		"the table\n"
		"  -c, --cpu A,B            pin ping to CPU A, pong to CPU B "
		"(default: the\n"
		"                           first two CPUs this process may "
		"use)\n"
		"  -h, --help               show this help\n"
		"  -V, --version            show the tool and library "
		"versions\n",
		BENCH_MAX_SIZE);
}

/* The full help would bury the one line that matters. */
static void usage_hint(void)
{
	fprintf(stderr, "Usage: " BENCH_PROG " pingpong [OPTIONS]\n"
		"Try '" BENCH_PROG " --help' for more information.\n");
	exit(EXIT_USAGE);
}

static void bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", BENCH_PROG);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage_hint();
}

static uint64_t parse_u64(const char *s, uint64_t min, uint64_t max,
			  const char *opt)
{
	char *end;
	unsigned long long v;

	errno = 0;
	/* strtoull would quietly wrap "-1". */
	if (*s < '0' || *s > '9')
		bad_usage("%s: not a number", opt);
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0')
		bad_usage("%s: not a number", opt);
	if (v < min || v > max) {
		fprintf(stderr, "%s: %s: must be %llu..%llu\n", BENCH_PROG,
			opt, (unsigned long long)min,
			(unsigned long long)max);
		usage_hint();
	}
	return v;
}

static void parse_cpus(const char *s, struct bench_opts *o)
{
	const char *comma = strchr(s, ',');
	char a[32];
	size_t n = comma ? (size_t)(comma - s) : 0;

	if (!comma || n == 0 || n >= sizeof(a))
		bad_usage("--cpu: expected A,B, got '%s'", s);
	memcpy(a, s, n);
	a[n] = '\0';
	o->ping_cpu = (int)parse_u64(a, 0, CPU_SETSIZE - 1, "--cpu");
	o->pong_cpu = (int)parse_u64(comma + 1, 0, CPU_SETSIZE - 1, "--cpu");
}

static void print_version(void)
{
	printf(BENCH_PROG " %s (libmuon %s)\n", BENCH_VERSION,
	       muon_version());
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "transport", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "raw", no_argument, NULL, 'r' },
		{ "raw-only", no_argument, NULL, OPT_RAW_ONLY },
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "json", no_argument, NULL, 'j' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c, addr_given = 0;

	/* getopt prints its own complaint for unknown options. */
	while ((c = getopt_long(argc, argv, "t:s:n:w:rjc:hV", longopts,
				NULL)) != -1) {
		switch (c) {
		case 't':
			if (strcmp(optarg, "shm") == 0)
				o->transport = BENCH_SHM;
			else if (strcmp(optarg, "tcp") == 0)
				o->transport = BENCH_TCP;
			else if (strcmp(optarg, "verbs") == 0)
				o->transport = BENCH_VERBS;
			else
				bad_usage("--transport: '%s' is not shm, tcp "
					  "or verbs", optarg);
			break;
		case OPT_ADDR:
			if (*optarg == '\0')
				bad_usage("%s", "--addr: empty address");
			o->addr = optarg;
			addr_given = 1;
			break;
		case 's':
			o->size = parse_u64(optarg, 1, BENCH_MAX_SIZE,
					    "--size");
			break;
		case 'n':
			o->count = parse_u64(optarg, 1, MAX_COUNT, "--count");
			break;
		case 'w':
			o->warmup = parse_u64(optarg, 0, MAX_COUNT,
					      "--warmup");
			break;
		case 'r':
			o->raw = 1;
			break;
		case OPT_RAW_ONLY:
			o->raw_only = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'c':
			parse_cpus(optarg, o);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			print_version();
			exit(0);
		default:
			usage_hint();
		}
	}
	if (optind >= argc)
		bad_usage("%s", "missing command (pingpong)");
	if (strcmp(argv[optind], "pingpong") != 0)
		bad_usage("unknown command '%s'", argv[optind]);
	if (optind + 1 < argc)
		bad_usage("unexpected argument '%s'", argv[optind + 1]);
	if (addr_given && o->transport != BENCH_VERBS)
		bad_usage("--addr %s: only --transport verbs uses an address",
			  o->addr);
}

/* Default to the first two CPUs we are allowed on (0 and 1 on an
 * unrestricted machine), and say so when both sides must share one. */
static int choose_cpus(struct bench_opts *o, int cpu_given)
{
	cpu_set_t allowed;
	int found = 0;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
		fprintf(stderr, "%s: sched_getaffinity: %s\n", BENCH_PROG,
			strerror(errno));
		return -1;
	}
	if (cpu_given) {
		if (!CPU_ISSET(o->ping_cpu, &allowed) ||
		    !CPU_ISSET(o->pong_cpu, &allowed)) {
			fprintf(stderr, "%s: --cpu %d,%d: CPU not available "
				"to this process\n", BENCH_PROG, o->ping_cpu,
				o->pong_cpu);
			return -1;
		}
	} else {
		for (int i = 0; i < CPU_SETSIZE && found < 2; i++) {
			if (!CPU_ISSET(i, &allowed))
				continue;
			if (found++ == 0)
				o->ping_cpu = i;
			else
				o->pong_cpu = i;
		}
		if (found < 2)
			o->ping_cpu = o->pong_cpu = -1;
	}
	if (o->ping_cpu < 0 || o->ping_cpu == o->pong_cpu) {
		o->shared_cpu = 1;
		fprintf(stderr, "%s: warning: ping and pong share one CPU; "
			"their busy-polling yields to each other and the "
			"figures mean little\n", BENCH_PROG);
	}
	return 0;
}

/* Touched now so that no page fault lands in a timed round trip. */
static uint64_t *alloc_samples(uint64_t count)
{
	uint64_t *s = malloc(count * sizeof(*s));

	if (!s) {
		fprintf(stderr, "%s: cannot allocate %llu samples\n",
			BENCH_PROG, (unsigned long long)count);
		return NULL;
	}
	memset(s, 0, count * sizeof(*s));
	return s;
}

static int run_raw(const struct bench_opts *o, uint64_t *samples)
{
	switch (o->transport) {
	case BENCH_SHM:
		return bench_raw_shm_pingpong(o, samples);
	case BENCH_TCP:
		return bench_raw_tcp_pingpong(o, samples);
	case BENCH_VERBS:
		return bench_raw_verbs_pingpong(o, samples);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.transport = BENCH_SHM,
		.size = 32,
		.count = 100000,
		.warmup = 10000,
		.ping_cpu = -1,
		.pong_cpu = -1,
	};
	struct bench_stats muon_st, raw_st;
	uint64_t *samples;
	int have_muon = 0, have_raw = 0, rc = 1;
	const char *env_addr = getenv("MUON_RDMA_ADDR");

	o.addr = env_addr && *env_addr ? env_addr : BENCH_VERBS_ADDR;
	parse_args(argc, argv, &o);
	/* A dead peer must show up as an error return, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (choose_cpus(&o, o.ping_cpu >= 0) != 0)
		return 1;
	if (bench_pin_self(o.ping_cpu) != 0)
		return 1;
	samples = alloc_samples(o.count);
	if (!samples)
		return 1;
	if (!o.raw_only) {
		if (bench_muon_pingpong(&o, samples) != 0)
			goto free_samples;
		bench_stats_compute(samples, o.count, &muon_st);
		have_muon = 1;
	}
	if (o.raw || o.raw_only) {
		if (run_raw(&o, samples) != 0)
			goto free_samples;
		bench_stats_compute(samples, o.count, &raw_st);
		have_raw = 1;
	}
	if (o.json)
		bench_print_json(&o, have_muon ? &muon_st : NULL,
				 have_raw ? &raw_st : NULL);
	else
		bench_print_table(&o, have_muon ? &muon_st : NULL,
				  have_raw ? &raw_st : NULL);
	rc = 0;
free_samples:
	free(samples);
	return rc;
}
