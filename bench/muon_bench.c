/*
 * muon-bench: measure muon, and the bare-metal floor beside it.
 *
 *   muon-bench pingpong|throughput|fanout|streams [OPTIONS]
 *
 * This file is the command line: it checks every option and combination
 * up front (exit 2), chooses the CPUs, runs each --size through muon and
 * the baseline, and hands the results to report.c.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <muon/muon.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define BENCH_VERSION                                                  \
	STR(MUON_VERSION_MAJOR) "." STR(MUON_VERSION_MINOR) "."        \
	STR(MUON_VERSION_PATCH)

#define EXIT_USAGE 2
#define MAX_COUNT 1000000000000ull
#define MAX_DURATION_S 86400.0
#define MAX_RATE 10000000000ull
#define MAX_BURST 65536u
#define MAX_RUN_ID 64
#define SEC_NS 1000000000ull

/* Defaults that depend on the mode. */
#define DEF_PINGPONG_COUNT 100000u
#define DEF_FLOW_DURATION_NS (2 * SEC_NS)
#define DEF_WARMUP 10000u
#define DEF_FANOUT_SUBS 4u
#define DEF_STREAMS_PUBS 16u
#define DEF_STREAMS_TOPICS 4u

enum {
	OPT_RAW_ONLY = 256,
	OPT_ADDR,
	OPT_CSV,
	OPT_HGRM,
	OPT_PNG,
	OPT_NO_PROGRESS,
	OPT_RATE,
	OPT_BURST,
	OPT_BATCH,
	OPT_SUBS,
	OPT_PUBS,
	OPT_TOPICS,
	OPT_LAYOUT,
	OPT_ROLE,
	OPT_DISCOVERY,
	OPT_SECRET_FILE,
	OPT_RUN_ID,
	OPT_CHECK_HOST,
};

/* Which options were given, to check combinations once all are read. */
struct given {
	int count, duration, warmup, rate, burst, batch, subs, pubs, topics;
	int layout, discovery, secret_file, run_id, addr, cpu;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: " BENCH_PROG " MODE [OPTIONS]\n"
"       " BENCH_PROG " --help | --version\n"
"\n"
"Measure muon between two sides on this host (or two hosts with --role),\n"
"next to the bare shared-memory, TCP or RDMA floor (--raw).\n"
"\n"
"Modes:\n"
"  pingpong     one message in flight: round trip and half of it\n"
"  throughput   one publisher to one subscriber, flat out or at --rate\n"
"  fanout       one publisher to --subs subscribers\n"
"  streams      --pubs publications over --topics topics at once\n"
"\n"
"What to measure:\n"
"  -t, --transport shm|tcp|verbs  transport (default shm)\n"
"      --addr A             verbs: address of the local RDMA device\n"
"                           (default $MUON_RDMA_ADDR, else " BENCH_VERBS_ADDR
")\n"
"  -s, --size LIST          payload bytes, 1..%u: 32 | 32,64,1024 |\n"
"                           8..4096 (doubling) | 64..1024:+64 (step);\n"
"                           at most %u sizes (default 32)\n"
"  -n, --count N            timed messages (round trips) per size\n"
"                           (pingpong default %u)\n"
"  -d, --duration SECONDS   timed part per size instead of a count\n"
"                           (throughput, fanout, streams default 2)\n"
"  -w, --warmup N           untimed messages before them (default %u)\n"
"      --rate N[k|M|G]      offered messages/s per publication; latency\n"
"                           counts from the intended send time (not for\n"
"                           pingpong; default: as fast as possible)\n"
"      --burst N            messages sent back to back per send slot\n"
"                           (default 1)\n"
"      --batch              publish each burst with one muon_publishv()\n"
"                           call instead of N muon_publish() calls\n"
"      --subs N             fanout, streams: subscribers (fanout default\n"
"                           %u, streams 1; at most %u)\n"
"      --pubs N             streams: publications (default %u, at most %u)\n"
"      --topics N           streams: topics they spread over (default %u)\n"
"  -r, --raw                also run the bare baseline and print muon/raw\n"
"                           (fanout: one producer to as many consumers;\n"
"                           streams: the one-subscriber throughput floor)\n"
"\n"
"Where the sides run:\n"
"      --layout process|thread  subscribers (pingpong: the pong) in\n"
"                           processes of their own (default) or in threads\n"
"                           of this one (muon's sides; --raw keeps its own)\n"
"  -c, --cpu LIST           pin side i to the i-th CPU of LIST, cycling:\n"
"                           0,1 | 0-3 | 2,5-7 (pingpong: ping, pong;\n"
"                           others: publisher, then the subscribers)\n"
"      --role pub|sub       run one side of a two-host run; the sides find\n"
"                           each other through discovery\n"
"      --discovery DAEMONS  muond daemons for --role (default\n"
"                           $MUON_DISCOVERY)\n"
"      --secret-file F      the cluster secret for --role\n"
"      --run-id ID          names the run's topics; both hosts give the same\n"
"\n"
"Output (a table on stdout by default):\n"
"  -j, --json               one JSON object instead of the table\n"
"      --csv                CSV rows instead of the table\n"
"      --hgrm PREFIX        write PREFIX-IMPL-SERIES-SIZE.hgrm percentile\n"
"                           distributions (HdrHistogram format, us)\n"
"      --png FILE           plot latency by percentile (needs gnuplot)\n"
"      --no-progress        no progress line on a terminal's stderr\n"
"      --check-host         only check the host for this run's CPUs (clock,\n"
"                           1 s of stalls per CPU, siblings, NUMA, governor)\n"
"                           and print that; nothing is measured\n"
"  -h, --help               show this help\n"
"  -V, --version            show the tool and library versions\n"
"\n"
"Exit status: 0 success, 1 a run failed or lost messages, 2 bad usage.\n",
		BENCH_MAX_SIZE, BENCH_MAX_SIZES, DEF_PINGPONG_COUNT, DEF_WARMUP,
		DEF_FANOUT_SUBS, BENCH_MAX_SUBS, DEF_STREAMS_PUBS,
		BENCH_MAX_PUBS, DEF_STREAMS_TOPICS);
}

/* The full help would bury the one line that matters. */
static void usage_hint(void)
{
	fprintf(stderr, "Usage: " BENCH_PROG " MODE [OPTIONS]\n"
		"Try '" BENCH_PROG " --help' for more information.\n");
	exit(EXIT_USAGE);
}

static void bad_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", BENCH_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage_hint();
	exit(EXIT_USAGE); /* not reached */
}

/* getopt_long said '?': `word` is the argument it stopped at. */
static void bad_option(const char *word, const struct option *longopts)
{
	size_t len = strcspn(word, "=");

	if (strncmp(word, "--", 2) != 0)
		bad_usage("unknown option '-%c'", optopt);
	if (word[len] == '=')
		for (const struct option *l = longopts; l->name; l++)
			if (strlen(l->name) == len - 2 &&
			    strncmp(l->name, word + 2, len - 2) == 0)
				bad_usage("%.*s: takes no argument", (int)len,
					  word);
	bad_usage("unknown option '%.*s'", (int)len, word);
}

/* ------------------------------------------------------------- numbers */

/* A decimal number that is all digits: strtoull would quietly take "-1",
 * " 5" or "0x10". `*end` is left after the digits. */
static int scan_u64(const char *s, uint64_t *v, const char **end)
{
	unsigned long long x;
	char *e;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	x = strtoull(s, &e, 10);
	if (errno)
		return -1;
	*v = x;
	*end = e;
	return 0;
}

static uint64_t parse_u64(const char *s, uint64_t min, uint64_t max,
			  const char *opt)
{
	const char *end;
	uint64_t v;

	if (scan_u64(s, &v, &end) != 0 || *end != '\0')
		bad_usage("%s: '%s' is not a number", opt, s);
	if (v < min || v > max)
		bad_usage("%s: %s: must be %llu..%llu", opt, s,
			  (unsigned long long)min, (unsigned long long)max);
	return v;
}

/* A decimal fraction of digits and one point: no signs, exponents, hex,
 * "inf" or "nan", which strtod would all accept. */
static int scan_decimal(const char *s, double *v, const char **end)
{
	const char *p = s;
	int digits = 0, points = 0;
	char *e;

	for (; isdigit((unsigned char)*p) || *p == '.'; p++) {
		if (*p == '.')
			points++;
		else
			digits++;
	}
	if (!digits || points > 1)
		return -1;
	*v = strtod(s, &e);
	if (e != p)
		return -1;
	*end = p;
	return 0;
}

static uint64_t parse_duration(const char *s)
{
	const char *end;
	double d;

	if (scan_decimal(s, &d, &end) != 0 || *end != '\0')
		bad_usage("--duration: '%s' is not a number of seconds", s);
	if (!(d > 0) || d > MAX_DURATION_S)
		bad_usage("--duration: %s: must be more than 0 and at most "
			  "%.0f seconds", s, MAX_DURATION_S);
	if (d * 1e9 < 1e6)
		bad_usage("--duration: %s: at least a millisecond, please", s);
	return (uint64_t)llround(d * 1e9);
}

static uint64_t parse_rate(const char *s)
{
	const char *end;
	double d, mult = 1;

	if (scan_decimal(s, &d, &end) != 0)
		bad_usage("--rate: '%s' is not a rate (e.g. 500000, 250k, "
			  "1.5M)", s);
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mult = 1e3; end++; break;
	case 'M': mult = 1e6; end++; break;
	case 'G': mult = 1e9; end++; break;
	default: end = "?";
	}
	if (*end != '\0')
		bad_usage("--rate: '%s' is not a rate (e.g. 500000, 250k, "
			  "1.5M)", s);
	d = nearbyint(d * mult);
	if (d < 1 || d > (double)MAX_RATE)
		bad_usage("--rate: %s: must be 1..%llu messages/s", s,
			  (unsigned long long)MAX_RATE);
	return (uint64_t)d;
}

/* ---------------------------------------------------------------- sizes */

static void add_size(struct bench_opts *o, uint64_t v, const char *arg)
{
	if (v < 1 || v > BENCH_MAX_SIZE)
		bad_usage("--size %s: %llu is not 1..%u bytes", arg,
			  (unsigned long long)v, BENCH_MAX_SIZE);
	if (o->n_sizes == BENCH_MAX_SIZES)
		bad_usage("--size %s: more than %u sizes", arg,
			  BENCH_MAX_SIZES);
	o->sizes[o->n_sizes++] = (size_t)v;
}

/* One item of a --size list: N, A..B (doubling) or A..B:+S (step). */
static void parse_size_item(struct bench_opts *o, const char *item,
			    const char *arg)
{
	uint64_t a, b, step = 0;
	const char *p;

	if (scan_u64(item, &a, &p) != 0)
		bad_usage("--size %s: '%s' is not a size", arg, item);
	if (*p == '\0') {
		add_size(o, a, arg);
		return;
	}
	if (p[0] != '.' || p[1] != '.' || scan_u64(p + 2, &b, &p) != 0)
		bad_usage("--size %s: '%s' is not N, A..B or A..B:+STEP", arg,
			  item);
	if (*p == ':') {
		if (p[1] != '+' || scan_u64(p + 2, &step, &p) != 0 ||
		    step == 0)
			bad_usage("--size %s: '%s': the step is ':+N' with "
				  "N >= 1", arg, item);
	}
	if (*p != '\0')
		bad_usage("--size %s: '%s' is not N, A..B or A..B:+STEP", arg,
			  item);
	if (a < 1 || b > BENCH_MAX_SIZE || a > b)
		bad_usage("--size %s: '%s' is not a range within 1..%u", arg,
			  item, BENCH_MAX_SIZE);
	for (uint64_t v = a; v <= b; v = step ? v + step : v * 2)
		add_size(o, v, arg);
}

static void parse_sizes(struct bench_opts *o, const char *arg)
{
	char buf[512], *save = NULL;

	if (strlen(arg) >= sizeof(buf))
		bad_usage("--size: list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	o->n_sizes = 0;
	if (buf[0] == '\0' || buf[0] == ',' || buf[strlen(buf) - 1] == ',' ||
	    strstr(buf, ",,"))
		bad_usage("--size '%s': empty item", arg);
	for (char *item = strtok_r(buf, ",", &save); item;
	     item = strtok_r(NULL, ",", &save))
		parse_size_item(o, item, arg);
}

/* ----------------------------------------------------------------- CPUs */

/* "0,1", "0-3", "2,5-7", in the given order; repeats allowed. */
static void parse_cpus(struct bench_opts *o, const char *arg)
{
	const char *p = arg;

	o->n_cpus = 0;
	for (;;) {
		uint64_t a, b;

		if (scan_u64(p, &a, &p) != 0)
			bad_usage("--cpu %s: expected a list such as 0,1 or "
				  "0-3 or 2,5-7", arg);
		b = a;
		if (*p == '-' && scan_u64(p + 1, &b, &p) != 0)
			bad_usage("--cpu %s: expected a list such as 0,1 or "
				  "0-3 or 2,5-7", arg);
		if (a > b || b >= CPU_SETSIZE)
			bad_usage("--cpu %s: %llu-%llu is not a range of CPUs "
				  "0..%d", arg, (unsigned long long)a,
				  (unsigned long long)b, CPU_SETSIZE - 1);
		for (uint64_t c = a; c <= b; c++) {
			if (o->n_cpus == BENCH_MAX_CPUS)
				bad_usage("--cpu %s: more than %u CPUs", arg,
					  BENCH_MAX_CPUS);
			o->cpus[o->n_cpus++] = (int)c;
		}
		if (*p == '\0')
			break;
		if (*p != ',')
			bad_usage("--cpu %s: expected a list such as 0,1 or "
				  "0-3 or 2,5-7", arg);
		p++;
	}
}

/* Sides that busy-poll a CPU each: side 0 is the ping or publisher. With
 * --role the other host's sides are counted too, which only matters if
 * they were pinned to the same CPUs as ours. */
static unsigned busy_sides(const struct bench_opts *o)
{
	if (o->role == BENCH_ROLE_PUB)
		return 1;
	return 1 + bench_subs(o);
}

/*
 * By default pingpong takes the first two CPUs this process may use (as
 * muon-bench always did); the other modes put the publisher on the first
 * and the subscribers round-robin on the others. One CPU: nothing pinned.
 */
static int default_cpus(struct bench_opts *o, const cpu_set_t *allowed)
{
	int avail[CPU_SETSIZE];
	unsigned m = 0, subs = bench_subs(o);

	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, allowed))
			avail[m++] = c;
	if (m < 2)
		return 0;
	o->cpus[0] = avail[0];
	o->n_cpus = 1;
	if (o->mode == BENCH_PINGPONG)
		subs = 1;
	for (unsigned j = 0; j < subs && o->n_cpus < BENCH_MAX_CPUS; j++)
		o->cpus[o->n_cpus++] = avail[1 + j % (m - 1)];
	return 0;
}

/* Whether busy sides will share a CPU, so that their spin loops yield. */
static int sides_share(const struct bench_opts *o, unsigned sides,
		       const cpu_set_t *allowed)
{
	if (!o->n_cpus)
		return sides > (unsigned)CPU_COUNT(allowed);
	for (unsigned i = 1; i < sides; i++)
		for (unsigned j = 0; j < i; j++)
			if (bench_cpu_of(o, i) == bench_cpu_of(o, j))
				return 1;
	return 0;
}

static int choose_cpus(struct bench_opts *o, int given)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
		fprintf(stderr, "%s: sched_getaffinity: %s\n", BENCH_PROG,
			strerror(errno));
		return -1;
	}
	if (!given && default_cpus(o, &allowed) != 0)
		return -1;
	o->ping_cpu = bench_cpu_of(o, 0);
	o->pong_cpu = bench_cpu_of(o, 1);
	o->shared_cpu = sides_share(o, busy_sides(o), &allowed);
	return 0;
}

/* ---------------------------------------------------------------- options */

static void print_version(void)
{
	printf(BENCH_PROG " %s (libmuon %s)\n", BENCH_VERSION,
	       muon_version());
}

static enum bench_mode parse_mode(const char *s)
{
	if (strcmp(s, "pingpong") == 0)
		return BENCH_PINGPONG;
	if (strcmp(s, "throughput") == 0)
		return BENCH_THROUGHPUT;
	if (strcmp(s, "fanout") == 0)
		return BENCH_FANOUT;
	if (strcmp(s, "streams") == 0)
		return BENCH_STREAMS;
	bad_usage("unknown mode '%s' (pingpong, throughput, fanout or "
		  "streams)", s);
}

/* Names that become parts of topic names: keep them plain. */
static void check_run_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_RUN_ID)
		bad_usage("--run-id: 1..%d characters", MAX_RUN_ID);
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			bad_usage("--run-id '%s': only letters, digits, '.', "
				  "'_' and '-'", s);
}

static void check_combinations(struct bench_opts *o, const struct given *g)
{
	int flow = o->mode != BENCH_PINGPONG;
	const char *mode = bench_mode_name(o->mode);

	if (g->count && g->duration)
		bad_usage("--count and --duration exclude each other");
	if (o->json && o->csv)
		bad_usage("--json and --csv exclude each other");
	if (!flow && g->rate)
		bad_usage("--rate: pingpong has one message in flight; use "
			  "throughput, fanout or streams");
	if (!flow && g->burst)
		bad_usage("--burst: pingpong has one message in flight; use "
			  "throughput, fanout or streams");
	if (!flow && g->batch)
		bad_usage("--batch: pingpong has one message in flight; use "
			  "throughput, fanout or streams");
	if (g->subs && o->mode != BENCH_FANOUT && o->mode != BENCH_STREAMS)
		bad_usage("--subs: %s has one subscriber; use fanout or "
			  "streams", mode);
	if (g->pubs && o->mode != BENCH_STREAMS)
		bad_usage("--pubs: only streams has several publications");
	if (g->topics && o->mode != BENCH_STREAMS)
		bad_usage("--topics: only streams has several topics");
	if (o->mode == BENCH_STREAMS && o->topics > o->pubs)
		bad_usage("--topics %u: more topics than publications (%u)",
			  o->topics, o->pubs);
	if (g->addr && o->transport != BENCH_VERBS)
		bad_usage("--addr %s: only --transport verbs uses an address",
			  o->addr);
	if (o->role == BENCH_ROLE_BOTH) {
		if (g->discovery || g->secret_file || g->run_id)
			bad_usage("--%s: only with --role pub|sub",
				  g->discovery ? "discovery" :
				  g->secret_file ? "secret-file" : "run-id");
		return;
	}
	if (o->raw || o->raw_only)
		bad_usage("--raw: the baselines run on one host; leave out "
			  "--role");
	if (g->layout)
		bad_usage("--layout: with --role each host runs its own side");
	if (!o->discovery)
		bad_usage("--role: needs --discovery DAEMONS (or "
			  "$MUON_DISCOVERY): the sides find each other "
			  "through muond");
}

static void parse_args(int argc, char **argv, struct bench_opts *o,
		       struct given *g)
{
	static const struct option longopts[] = {
		{ "transport", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "raw", no_argument, NULL, 'r' },
		{ "raw-only", no_argument, NULL, OPT_RAW_ONLY },
		{ "check-host", no_argument, NULL, OPT_CHECK_HOST },
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "json", no_argument, NULL, 'j' },
		{ "csv", no_argument, NULL, OPT_CSV },
		{ "hgrm", required_argument, NULL, OPT_HGRM },
		{ "png", required_argument, NULL, OPT_PNG },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "cpu", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "burst", required_argument, NULL, OPT_BURST },
		{ "batch", no_argument, NULL, OPT_BATCH },
		{ "subs", required_argument, NULL, OPT_SUBS },
		{ "pubs", required_argument, NULL, OPT_PUBS },
		{ "topics", required_argument, NULL, OPT_TOPICS },
		{ "layout", required_argument, NULL, OPT_LAYOUT },
		{ "role", required_argument, NULL, OPT_ROLE },
		{ "discovery", required_argument, NULL, OPT_DISCOVERY },
		{ "secret-file", required_argument, NULL, OPT_SECRET_FILE },
		{ "run-id", required_argument, NULL, OPT_RUN_ID },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* Our own complaints, in our own format (getopt's name the path). */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:s:n:d:w:rjc:hV", longopts,
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
				bad_usage("--addr: empty address");
			o->addr = optarg;
			g->addr = 1;
			break;
		case 's':
			parse_sizes(o, optarg);
			break;
		case 'n':
			o->count = parse_u64(optarg, 1, MAX_COUNT, "--count");
			g->count = 1;
			break;
		case 'd':
			o->duration_ns = parse_duration(optarg);
			g->duration = 1;
			break;
		case 'w':
			o->warmup = parse_u64(optarg, 0, MAX_COUNT,
					      "--warmup");
			g->warmup = 1;
			break;
		case 'r':
			o->raw = 1;
			break;
		case OPT_RAW_ONLY:
			o->raw_only = 1;
			break;
		case OPT_CHECK_HOST:
			o->check_host = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case OPT_CSV:
			o->csv = 1;
			break;
		case OPT_HGRM:
			if (*optarg == '\0')
				bad_usage("--hgrm: empty prefix");
			o->hgrm = optarg;
			break;
		case OPT_PNG:
			if (*optarg == '\0')
				bad_usage("--png: empty file name");
			o->png = optarg;
			break;
		case OPT_NO_PROGRESS:
			o->progress = 0;
			break;
		case 'c':
			parse_cpus(o, optarg);
			g->cpu = 1;
			break;
		case OPT_RATE:
			o->rate = parse_rate(optarg);
			g->rate = 1;
			break;
		case OPT_BURST:
			o->burst = (unsigned)parse_u64(optarg, 1, MAX_BURST,
						       "--burst");
			g->burst = 1;
			break;
		case OPT_BATCH:
			o->batch = 1;
			g->batch = 1;
			break;
		case OPT_SUBS:
			o->subs = (unsigned)parse_u64(optarg, 1,
						      BENCH_MAX_SUBS,
						      "--subs");
			g->subs = 1;
			break;
		case OPT_PUBS:
			o->pubs = (unsigned)parse_u64(optarg, 1,
						      BENCH_MAX_PUBS,
						      "--pubs");
			g->pubs = 1;
			break;
		case OPT_TOPICS:
			o->topics = (unsigned)parse_u64(optarg, 1,
							BENCH_MAX_PUBS,
							"--topics");
			g->topics = 1;
			break;
		case OPT_LAYOUT:
			if (strcmp(optarg, "process") == 0)
				o->layout = BENCH_LAYOUT_PROCESS;
			else if (strcmp(optarg, "thread") == 0)
				o->layout = BENCH_LAYOUT_THREAD;
			else
				bad_usage("--layout: '%s' is not process or "
					  "thread", optarg);
			g->layout = 1;
			break;
		case OPT_ROLE:
			if (strcmp(optarg, "pub") == 0)
				o->role = BENCH_ROLE_PUB;
			else if (strcmp(optarg, "sub") == 0)
				o->role = BENCH_ROLE_SUB;
			else
				bad_usage("--role: '%s' is not pub or sub",
					  optarg);
			break;
		case OPT_DISCOVERY:
			if (*optarg == '\0')
				bad_usage("--discovery: empty list of "
					  "daemons");
			o->discovery = optarg;
			g->discovery = 1;
			break;
		case OPT_SECRET_FILE:
			if (*optarg == '\0')
				bad_usage("--secret-file: empty file name");
			o->secret_file = optarg;
			g->secret_file = 1;
			break;
		case OPT_RUN_ID:
			check_run_id(optarg);
			o->run_id = optarg;
			g->run_id = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			print_version();
			exit(0);
		case ':':
			bad_usage("%s: missing argument", argv[optind - 1]);
		default:
			bad_option(argv[optind - 1], longopts);
		}
	}
	if (optind >= argc)
		bad_usage("missing mode (pingpong, throughput, fanout or "
			  "streams)");
	o->mode = parse_mode(argv[optind]);
	if (optind + 1 < argc)
		bad_usage("unexpected argument '%s'", argv[optind + 1]);
}

/* Defaults that depend on the mode or on other options. */
static void fill_defaults(struct bench_opts *o, const struct given *g)
{
	const char *env;

	if (o->n_sizes == 0) {
		o->sizes[0] = 32;
		o->n_sizes = 1;
	}
	if (!g->count && !g->duration) {
		if (o->mode == BENCH_PINGPONG)
			o->count = DEF_PINGPONG_COUNT;
		else
			o->duration_ns = DEF_FLOW_DURATION_NS;
	}
	if (!g->burst)
		o->burst = 1;
	if (o->mode == BENCH_FANOUT && !g->subs)
		o->subs = DEF_FANOUT_SUBS;
	if (o->mode == BENCH_STREAMS) {
		if (!g->pubs)
			o->pubs = DEF_STREAMS_PUBS;
		if (!g->topics)
			o->topics = o->pubs < DEF_STREAMS_TOPICS ?
				    o->pubs : DEF_STREAMS_TOPICS;
	}
	env = getenv("MUON_DISCOVERY");
	if (o->role != BENCH_ROLE_BOTH && !o->discovery && env && *env)
		o->discovery = env;
}

/* ----------------------------------------------------------------- runs */

static int run_muon(const struct bench_opts *o, struct bench_report *rep)
{
	if (o->mode == BENCH_PINGPONG)
		return bench_muon_pingpong(o, rep);
	return bench_muon_flow(o, rep);
}

/*
 * Fan-out has a bare version with as many consumers, on the CPUs of the
 * muon run's subscribers. Streams has none: the bare throughput to one
 * subscriber is its floor (the report says so under the table).
 */
static int run_raw(const struct bench_opts *o, struct bench_report *rep)
{
	struct bench_opts one = *o;
	cpu_set_t allowed;

	if (o->mode == BENCH_PINGPONG) {
		switch (o->transport) {
		case BENCH_SHM: return bench_raw_shm_pingpong(o, rep);
		case BENCH_TCP: return bench_raw_tcp_pingpong(o, rep);
		case BENCH_VERBS: return bench_raw_verbs_pingpong(o, rep);
		}
		return -1;
	}
	/* The same busy sides as the muon run: o->shared_cpu holds. */
	if (o->mode == BENCH_FANOUT) {
		switch (o->transport) {
		case BENCH_SHM: return bench_raw_shm_fanout(o, rep);
		case BENCH_TCP: return bench_raw_tcp_fanout(o, rep);
		case BENCH_VERBS: return bench_raw_verbs_fanout(o, rep);
		}
		return -1;
	}
	one.mode = BENCH_THROUGHPUT;
	/* Two sides now, however many subscribers the muon run had. */
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		one.shared_cpu = sides_share(&one, 2, &allowed);
	switch (o->transport) {
	case BENCH_SHM: return bench_raw_shm_throughput(&one, rep);
	case BENCH_TCP: return bench_raw_tcp_throughput(&one, rep);
	case BENCH_VERBS: return bench_raw_verbs_throughput(&one, rep);
	}
	return -1;
}

static int any_lost(const struct bench_report *rep)
{
	for (size_t i = 0; i < rep->n; i++)
		if (rep->r[i].lost)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.transport = BENCH_SHM,
		.layout = BENCH_LAYOUT_PROCESS,
		.role = BENCH_ROLE_BOTH,
		.warmup = DEF_WARMUP,
		.progress = 1,
		.ping_cpu = -1,
		.pong_cpu = -1,
	};
	struct given g = { 0 };
	struct bench_report rep = { 0 };
	const char *env_addr = getenv("MUON_RDMA_ADDR");
	int failed = 0, rc;

	o.addr = env_addr && *env_addr ? env_addr : BENCH_VERBS_ADDR;
	parse_args(argc, argv, &o, &g);
	fill_defaults(&o, &g);
	check_combinations(&o, &g);
	/* A dead peer must show up as an error return, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (choose_cpus(&o, g.cpu) != 0)
		return 1;
	bench_check_clock(&rep);
	if (bench_check_cpus(&o, busy_sides(&o), &rep) != 0)
		goto fini_report;
	bench_check_host(&o, busy_sides(&o), &rep);
	bench_check_noise(&o, busy_sides(&o), &rep);
	if (o.check_host) {
		/* The header and the warnings are the whole report. */
		rc = bench_report_print(&o, &rep);
		bench_report_fini(&rep);
		return rc != 0;
	}
	/* The ping side of every ping-pong runs in this thread; the flow
	 * modes pin their publisher themselves. */
	if (o.mode == BENCH_PINGPONG &&
	    bench_pin_self(o.role == BENCH_ROLE_SUB ? o.pong_cpu :
			   o.ping_cpu) != 0)
		goto fini_report;
	if (o.layout == BENCH_LAYOUT_THREAD && (o.raw || o.raw_only))
		bench_warn(&rep, "--layout thread is for muon's sides: the "
			   "raw baselines run theirs as always (shm, tcp: "
			   "processes; verbs: threads)");
	for (unsigned i = 0; i < o.n_sizes; i++) {
		o.size = o.sizes[i];
		if (!o.raw_only && run_muon(&o, &rep) != 0)
			failed = 1;
		if ((o.raw || o.raw_only) && run_raw(&o, &rep) != 0)
			failed = 1;
	}
	rc = bench_report_print(&o, &rep);
	if (rc != 0 || any_lost(&rep))
		failed = 1;
	bench_report_fini(&rep);
	return failed ? 1 : 0;

fini_report:
	bench_report_fini(&rep);
	return 1;
}
