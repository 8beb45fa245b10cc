/*
 * muon-bench: throughput, fan-out and streams through muon.
 *
 * One publisher context (this process) publishes on one or more
 * publications; every subscriber has a context of its own, in a forked
 * child (default) or a thread, and names the publisher's listen endpoint
 * as its static peer. With --role the two sides run on two hosts (or in
 * two terminals) and meet through discovery, on topics named after the
 * run id.
 *
 * Every message starts with a bench_stamp (intended send time, number in
 * its stream) when --size leaves room for one; smaller payloads carry the
 * number alone, truncated to what fits. The subscriber checks every
 * message (length, order and gaps per stream) and records delivery time -
 * intended time in its histogram inside the message callback.
 *
 * The phases of each stream are marked in band by two messages of a length
 * other than --size (struct marker): START after the warm-up, END after the
 * timed part. Markers work for any --size (a 4-byte payload has no room
 * for a phase flag); the muon sequence numbers of START and END give the
 * exact count of timed messages sent, so a loss just before END is still
 * counted; and START carries the publisher's boot id, which tells the
 * subscriber of a two-host run whether both sides read the same clock.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"
#include "muonutil.h"

#include <muon/muon.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EP_LEN 128 /* muon_ctx_listen_endpoint() needs at most this */
#define HIST_HIGHEST (60ull * 1000000000ull)
#define SEC_NS 1000000000ull

/* Streams: send logs share this budget, each within [256 KiB, 8 MiB]. */
#define STREAMS_LOG_BUDGET (128ull << 20)

/* A two-host run waits this long for the other side to show up. */
#define ROLE_WAIT_NS (120ull * SEC_NS)
/* Set-up steps (contexts, connections, images); verbs in the emulated
 * test VM needs seconds per connection. */
#define SETUP_NS (3 * BENCH_TIMEOUT_NS)

/* A duration-based run warms up for at least --warmup messages and at
 * least a tenth of --duration, but not more than a second of it: the
 * warm-up only has to fault in rings and logs, fill the socket buffers and
 * get the CPUs out of their idle states, which takes milliseconds. */
#define WARMUP_MAX_NS SEC_NS

/* Falling this far behind the --rate schedule means the offered rate was
 * not achieved. */
#define BEHIND_NS SEC_NS

#define BOOT_ID_LEN 40

/*
 * Flat out (no --rate), latency is recorded for one message in 64, picked
 * by a hash of its number so that every subscriber samples the same ones
 * and the pick does not line up with bursts. A clock reading costs 20 to
 * 30 ns here (kvm-clock), more than muon spends on a message at full
 * speed: reading it for every 32-byte message held the subscriber near 20
 * million messages/s, where it takes 30 to 40 million without. The
 * publisher decides (START says so): with --role only it knows the rate.
 */
#define LAT_SAMPLE_SHIFT 6

enum { MARK_START = 1, MARK_END = 2 };

struct marker {
	char magic[16];
	uint32_t kind;
	uint32_t sampled;  /* START: flat out, latency of 1 message in 64 */
	char boot_id[BOOT_ID_LEN]; /* publisher host's, "" if unknown */
};

static const char marker_magic[16] = "muon-bench-mark";

/* ------------------------------------------------------ shared memory */

enum { SUB_STARTING, SUB_READY, SUB_DONE, SUB_FAILED };

/* What one subscriber reports; written by it, read once it is DONE. */
struct slot {
	_Atomic int state;
	int same_host;          /* START's boot id is ours: one clock */
	int sampled;            /* START said latency is sampled */
	uint64_t messages;      /* timed messages delivered */
	uint64_t lost;          /* timed messages sent, not delivered */
	uint64_t order_errors;  /* a number other than the next expected */
	uint64_t bad_len;       /* messages of an unexpected length */
	uint64_t loss_events;
	uint64_t down_events;   /* IMAGE_DOWN before END */
	uint64_t start_ns;      /* earliest START delivery */
	uint64_t end_ns;        /* latest END delivery */
	uint64_t win_used;      /* window entries that may be set */
	struct bench_hist hist; /* all but `counts`, which is in the mapping */
	char note[256];         /* the first problem, for warnings */
};

/* Everything the sides know before they start; read-only afterwards. */
struct flow {
	const struct bench_opts *o;
	unsigned n_subs;   /* subscribers run here */
	unsigned n_pubs;   /* publications */
	unsigned n_topics;
	char run[96];      /* topics are "muon-bench.<run>.<t>" */
	int lat;           /* payloads carry the intended send time */
	int sampled;       /* publisher: flat out, so latency is sampled */
	int yield;         /* busy sides share a CPU */
	size_t marker_len;
	uint64_t mask;     /* of the message number as the payload holds it */
	uint64_t win_len;  /* window entries per subscriber, 0: none */
	uint32_t n_counts; /* histogram buckets */
	uint32_t ring_size, send_log_size, max_msg_size;
	uint64_t silence_ns; /* no message for this long: the stream died */
	char boot_id[BOOT_ID_LEN];
	struct shared *sh;
	uint64_t *counts;  /* n_subs x n_counts */
	uint64_t *win;     /* n_subs x win_len */
	size_t map_len, head;
	int map_fd;        /* the memfd behind sh */
};

/* The strings of bench_opts that a subscriber uses. */
enum { STR_ADDR, STR_DISCOVERY, STR_SECRET, STR_RUN_ID, N_STRS };

/*
 * One MAP_SHARED mapping of a memfd, made before the subscribers start, so
 * that forked children, re-executed children and threads report alike:
 * this header, then each subscriber's histogram counts, then (fan-out)
 * each one's window. A re-executed subscriber finds its flow and options
 * in the header.
 */
struct shared {
	_Atomic int go;     /* pub_ep is set */
	_Atomic int stop;   /* the publisher gave up: leave (it says why) */
	_Atomic int failed; /* a subscriber gave up (it says why) */
	char pub_ep[EP_LEN];
	struct flow flow;       /* pointers are the parent's */
	struct bench_opts opts; /* likewise */
	int has_str[N_STRS];
	char str[N_STRS][256];
	struct slot slot[BENCH_MAX_SUBS];
};

/* ------------------------------------------------------------ helpers */

static uint64_t pow2_at_most(uint64_t v)
{
	uint64_t p = 1;

	while (p * 2 <= v)
		p <<= 1;
	return p;
}

/* Same clock on both sides of a two-host run iff the same boot. */
static void read_boot_id(char *buf, size_t len)
{
	FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = '\0';
	if (!fp)
		return;
	if (!fgets(buf, (int)len, fp))
		buf[0] = '\0';
	fclose(fp);
	buf[strcspn(buf, "\n")] = '\0';
}

/* Offset of send slot k from the start of a phase at `rate` messages/s
 * per publication, exact and free of overflow for any realistic run. */
static uint64_t slot_offset(uint64_t k, unsigned burst, uint64_t rate)
{
	uint64_t m = k * burst;

	return m / rate * SEC_NS + m % rate * SEC_NS / rate;
}

/* Busy-polling sides that share a CPU must yield to each other. */
static int sides_share_cpu(const struct bench_opts *o, unsigned sides)
{
	cpu_set_t set;

	if (o->shared_cpu)
		return 1;
	if (o->n_cpus) {
		for (unsigned i = 1; i < sides; i++)
			for (unsigned j = 0; j < i; j++)
				if (bench_cpu_of(o, i) == bench_cpu_of(o, j))
					return 1;
		return 0;
	}
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	return (unsigned)CPU_COUNT(&set) < sides;
}

/*
 * muon requires max_msg_size <= ring_size/4 and <= send_log_size/4.
 * Otherwise muon's defaults: a 32 MiB send log (or ring) for throughput
 * made no difference beyond the noise of this host at 32 bytes.
 */
static void flow_sizes(struct flow *f)
{
	const struct bench_opts *o = f->o;
	muon_ctx_config_t def;
	uint64_t biggest = o->size > f->marker_len ? o->size : f->marker_len;
	uint32_t need;

	muon_ctx_config_init(&def);
	f->max_msg_size = def.max_msg_size;
	f->ring_size = def.ring_size;
	f->send_log_size = def.send_log_size;
	if (biggest > f->max_msg_size)
		f->max_msg_size = (uint32_t)biggest;
	need = bench_pow2_at_least(4 * (uint64_t)f->max_msg_size);
	if (o->mode == BENCH_STREAMS) {
		uint64_t each = pow2_at_most(STREAMS_LOG_BUDGET / f->n_pubs);

		if (each > def.send_log_size)
			each = def.send_log_size;
		if (each < (256u << 10))
			each = 256u << 10;
		f->send_log_size = (uint32_t)each;
	}
	if (f->ring_size < need)
		f->ring_size = need;
	if (f->send_log_size < need)
		f->send_log_size = need;
}

/* Point the flow's arrays into the mapping at `sh`. */
static void flow_attach(struct flow *f, struct shared *sh)
{
	f->sh = sh;
	f->counts = (uint64_t *)((char *)sh + f->head);
	f->win = f->counts + (size_t)f->n_subs * f->n_counts;
}

static void topic_name(const struct flow *f, unsigned t, char *buf,
		       size_t len)
{
	snprintf(buf, len, "muon-bench.%s.%u", f->run, t);
}

static void ctx_config(const struct flow *f, muon_ctx_config_t *cfg,
		       const char *name, struct bench_logsink *log)
{
	const struct bench_opts *o = f->o;

	muon_ctx_config_init(cfg);
	cfg->name = name;
	cfg->transport = bench_transport_name(o->transport);
	cfg->ignore_env = 1;
	cfg->log_level = MUON_LOG_WARN;
	cfg->log_fn = bench_on_log;
	cfg->log_arg = log;
	cfg->ring_size = f->ring_size;
	cfg->send_log_size = f->send_log_size;
	cfg->max_msg_size = f->max_msg_size;
	if (o->role != BENCH_ROLE_BOTH) {
		cfg->discovery = o->discovery;
		cfg->secret_file = o->secret_file;
	}
}

/* ------------------------------------------------------ the subscriber */

enum { PH_FREE, PH_WARM, PH_TIMED, PH_ENDED };

/* One stream (publisher_id, stream_id) as a subscriber sees it. */
struct stream {
	uint64_t publisher_id;
	uint32_t stream_id;
	int phase;
	uint64_t next;      /* next expected number (masked) */
	uint64_t base;      /* number of the first timed message */
	uint64_t timed;     /* timed messages delivered */
	uint64_t start_seq; /* muon sequence of START */
};

struct sub {
	struct flow *f;
	unsigned index;
	struct slot *slot;
	struct bench_logsink log;
	muon_ctx_t *ctx;
	muon_sub_t **subs;  /* one per topic */
	struct stream *streams; /* open addressing, cap a power of two */
	unsigned cap, n_streams;
	struct stream *last;
	size_t size;
	int lat;
	struct bench_hist hist;
	uint64_t *win;
	uint64_t win_used;
	unsigned ended;     /* streams whose END arrived */
	uint64_t delivered; /* every message, for the silence check */
	uint64_t order_errors, bad_len, lost;
	uint64_t loss_events, down_events;
	uint64_t start_ns, end_ns;
	int same_host;      /* -1 until START */
	int sampled;        /* latency of 1 message in 2^LAT_SAMPLE_SHIFT */
	int bad;            /* fatal: `note` says why */
	char note[256];
	char order_note[160];
};

static void sub_bad(struct sub *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sub_bad(struct sub *s, const char *fmt, ...)
{
	va_list ap;

	if (s->bad)
		return;
	s->bad = 1;
	va_start(ap, fmt);
	vsnprintf(s->note, sizeof(s->note), fmt, ap);
	va_end(ap);
}

static struct stream *stream_find(struct sub *s, const muon_msg_t *m)
{
	unsigned h = (unsigned)((m->publisher_id * 0x9e3779b97f4a7c15ull) >>
				32) ^ (m->stream_id * 0x85ebca6bu);

	for (unsigned i = 0; i < s->cap; i++) {
		struct stream *st = &s->streams[(h + i) & (s->cap - 1)];

		if (st->phase == PH_FREE) {
			if (s->n_streams == s->f->n_pubs) {
				sub_bad(s, "more streams than the %u expected "
					"on '%s' (another publisher on the "
					"same run id?)", s->f->n_pubs, m->topic);
				return NULL;
			}
			/* Subscribers are up before the first message, so
			 * each stream must start at its first message. */
			if (m->seq != 1) {
				sub_bad(s, "joined stream %u of '%s' at "
					"message %llu: start the subscribers "
					"before the publisher", m->stream_id,
					m->topic, (unsigned long long)m->seq);
				return NULL;
			}
			st->publisher_id = m->publisher_id;
			st->stream_id = m->stream_id;
			st->phase = PH_WARM;
			s->n_streams++;
			return st;
		}
		if (st->publisher_id == m->publisher_id &&
		    st->stream_id == m->stream_id)
			return st;
	}
	return NULL;
}

static void on_marker(struct sub *s, struct stream *st, const muon_msg_t *m)
{
	struct marker mk;
	uint64_t now = bench_now_ns();

	if (m->len != s->f->marker_len ||
	    memcmp(m->data, marker_magic, sizeof(marker_magic)) != 0) {
		if (!s->bad_len++ && !s->order_errors)
			snprintf(s->order_note, sizeof(s->order_note),
				 "a message of %zu bytes on '%s' (expected "
				 "%zu)", m->len, m->topic, s->size);
		return;
	}
	memcpy(&mk, m->data, sizeof(mk));
	mk.boot_id[BOOT_ID_LEN - 1] = '\0';
	if (mk.kind == MARK_START && st->phase == PH_WARM) {
		st->phase = PH_TIMED;
		st->base = st->next;
		st->start_seq = m->seq;
		if (!s->start_ns || now < s->start_ns)
			s->start_ns = now;
		if (s->same_host < 0)
			s->same_host = mk.boot_id[0] &&
				       !strcmp(mk.boot_id, s->f->boot_id);
		s->sampled = mk.sampled != 0;
	} else if (mk.kind == MARK_END && st->phase == PH_TIMED) {
		uint64_t sent = m->seq - st->start_seq - 1;

		st->phase = PH_ENDED;
		if (sent > st->timed)
			s->lost += sent - st->timed;
		s->end_ns = now;
		s->ended++;
	} else {
		sub_bad(s, "marker %u out of place on stream %u of '%s'",
			mk.kind, m->stream_id, m->topic);
	}
}

static void order_error(struct sub *s, const struct stream *st, uint64_t n,
			const muon_msg_t *m)
{
	if (!s->order_errors++ && !s->bad_len)
		snprintf(s->order_note, sizeof(s->order_note),
			 "stream %u of '%s': message %llu where %llu was next",
			 m->stream_id, m->topic, (unsigned long long)n,
			 (unsigned long long)st->next);
}

static inline int lat_sampled(uint64_t n)
{
	return (n * 0x9e3779b97f4a7c15ull) >> (64 - LAT_SAMPLE_SHIFT) == 0;
}

/*
 * The hot path: no allocation, no system call but the clock. Everything it
 * checks is counted here and judged after the run.
 */
static void on_msg(void *arg, const muon_msg_t *m)
{
	struct sub *s = arg;
	struct stream *st = s->last;
	struct bench_stamp stamp = { 0, 0 };
	uint64_t n;

	s->delivered++;
	if (!st || st->stream_id != m->stream_id ||
	    st->publisher_id != m->publisher_id) {
		st = stream_find(s, m);
		if (!st)
			return;
		s->last = st;
	}
	if (m->len != s->size) {
		on_marker(s, st, m);
		return;
	}
	if (s->size >= sizeof(stamp)) {
		memcpy(&stamp, m->data, sizeof(stamp));
		n = stamp.n;
	} else {
		n = bench_get_counter(m->data, s->size);
	}
	if (n != st->next)
		order_error(s, st, n, m);
	st->next = (n + 1) & s->f->mask;
	if (st->phase != PH_TIMED)
		return;
	st->timed++;
	if (s->lat && (!s->sampled || lat_sampled(n))) {
		uint64_t now = bench_now_ns();
		uint64_t lat = now > stamp.intended_ns ?
				       now - stamp.intended_ns : 0;
		uint64_t i = n - st->base;

		bench_hist_record(&s->hist, lat);
		if (s->win && i < s->f->win_len) {
			s->win[i] = lat + 1; /* 0: not delivered */
			if (i >= s->win_used)
				s->win_used = i + 1;
		}
	}
}

static void on_sub_event(void *arg, const muon_event_t *ev)
{
	struct sub *s = arg;
	const char *topic = ev->topic ? ev->topic : "-";

	switch (ev->type) {
	case MUON_EVENT_IMAGE_UP:
	case MUON_EVENT_BACKPRESSURE:
		return;
	case MUON_EVENT_IMAGE_DOWN:
		/* The publisher closing after END is the normal end. */
		if (s->ended == s->f->n_pubs)
			return;
		s->down_events++;
		break;
	case MUON_EVENT_LOSS:
		s->loss_events++;
		break;
	default:
		break;
	}
	fprintf(stderr, "%s: %s: %s event on '%s': %s\n", BENCH_PROG,
		s->log.who, muon_event_name(ev->type), topic, ev->detail);
}

static int sub_init(struct sub *s, struct flow *f, unsigned index)
{
	memset(s, 0, sizeof(*s));
	s->f = f;
	s->index = index;
	s->slot = &f->sh->slot[index];
	s->size = f->o->size;
	s->lat = f->lat;
	s->same_host = -1;
	snprintf(s->log.who, sizeof(s->log.who), "sub%u", index);
	bench_quiet_begin(&s->log);
	s->cap = bench_pow2_at_least(2 * (uint64_t)f->n_pubs);
	s->streams = calloc(s->cap, sizeof(*s->streams));
	s->subs = calloc(f->n_topics, sizeof(*s->subs));
	if (!s->streams || !s->subs || bench_hist_init(&s->hist,
						       HIST_HIGHEST) != 0) {
		fprintf(stderr, "%s: %s: out of memory\n", BENCH_PROG,
			s->log.who);
		return -1;
	}
	if (s->hist.n_counts != f->n_counts) {
		fprintf(stderr, "%s: %s: histogram of %u buckets, expected "
			"%u\n", BENCH_PROG, s->log.who, s->hist.n_counts,
			f->n_counts);
		return -1;
	}
	if (f->win_len) {
		s->win = f->win + (uint64_t)index * f->win_len;
		/* Fault the pages in now, not in the callback. */
		memset(s->win, 0, f->win_len * sizeof(*s->win));
	}
	return 0;
}

static void sub_close(struct sub *s)
{
	for (unsigned t = 0; s->subs && t < s->f->n_topics; t++) {
		muon_sub_destroy(s->subs[t]);
		s->subs[t] = NULL;
	}
	muon_ctx_destroy(s->ctx);
	s->ctx = NULL;
}

static void sub_free(struct sub *s)
{
	sub_close(s);
	bench_quiet_end(&s->log, 1);
	bench_hist_fini(&s->hist);
	free(s->streams);
	free(s->subs);
	s->streams = NULL;
	s->subs = NULL;
}

static int sub_open(struct sub *s)
{
	const struct flow *f = s->f;
	muon_ctx_config_t cfg;
	muon_sub_config_t scfg;
	char name[32], topic[128];
	int rc;

	snprintf(name, sizeof(name), "muon-bench-%s", s->log.who);
	ctx_config(f, &cfg, name, &s->log);
	if (f->o->role == BENCH_ROLE_BOTH)
		cfg.peers = f->sh->pub_ep;
	rc = muon_ctx_create(&cfg, &s->ctx);
	if (rc < 0) {
		bench_muon_fail(s->log.who, "muon_ctx_create", rc);
		if (cfg.peers)
			fprintf(stderr, "%s: %s: peers %s\n", BENCH_PROG,
				s->log.who, cfg.peers);
		return -1;
	}
	muon_sub_config_init(&scfg);
	scfg.msg_fn = on_msg;
	scfg.msg_arg = s;
	scfg.event_fn = on_sub_event;
	scfg.event_arg = s;
	for (unsigned t = 0; t < f->n_topics; t++) {
		topic_name(f, t, topic, sizeof(topic));
		rc = muon_sub_create(s->ctx, topic, &scfg, &s->subs[t]);
		if (rc < 0) {
			bench_muon_fail(s->log.who, "muon_sub_create", rc);
			return -1;
		}
	}
	return 0;
}

/* Nap-polling wait for a set-up condition: 1 done, 0 not yet, -1 failed
 * (said why). Nothing is timed yet, so it leaves the CPU to the others. */
typedef int (*sub_cond_fn)(struct sub *s);

struct sub_step {
	struct sub *s;
	sub_cond_fn cond;
};

static int sub_step(void *arg)
{
	struct sub_step *a = arg;
	struct sub *s = a->s;
	int r;

	if (atomic_load(&s->f->sh->stop))
		return -1;
	r = a->cond(s);
	if (r)
		return r;
	if (s->bad) {
		fprintf(stderr, "%s: %s: %s\n", BENCH_PROG, s->log.who,
			s->note);
		return -1;
	}
	return 0;
}

static int sub_wait(struct sub *s, sub_cond_fn cond, uint64_t timeout_ns,
		    const char *what)
{
	struct sub_step a = { s, cond };

	return bench_setup_wait(s->ctx, s->log.who, sub_step, &a, timeout_ns,
				what, NULL, NULL);
}

static int cond_go(struct sub *s)
{
	return atomic_load(&s->f->sh->go);
}

static int cond_images(struct sub *s)
{
	int total = 0;

	for (unsigned t = 0; t < s->f->n_topics; t++) {
		int n = muon_sub_images(s->subs[t]);

		if (n < 0) {
			bench_muon_fail(s->log.who, "muon_sub_images", n);
			return -1;
		}
		total += n;
	}
	return total >= (int)s->f->n_pubs;
}

/* Busy-poll until every stream has ended; bounded by the silence check. */
static int sub_loop(struct sub *s)
{
	const struct flow *f = s->f;
	uint64_t seen = 0, quiet_since = bench_now_ns();
	uint64_t limit = f->o->role == BENCH_ROLE_BOTH ? SETUP_NS :
							  ROLE_WAIT_NS;
	unsigned spins = 0;

	while (s->ended < f->n_pubs) {
		int r = muon_ctx_poll(s->ctx, 0);
		uint64_t now;

		if (r < 0) {
			bench_muon_fail(s->log.who, "muon_ctx_poll", r);
			return -1;
		}
		if (r == 0 && f->yield)
			sched_yield();
		if (++spins & 4095)
			continue;
		if (s->bad) {
			fprintf(stderr, "%s: %s: %s\n", BENCH_PROG, s->log.who,
				s->note);
			return -1;
		}
		if (atomic_load_explicit(&f->sh->stop, memory_order_relaxed))
			return -1;
		now = bench_now_ns();
		if (s->delivered != seen) {
			/* Before the first message the publisher may still be
			 * waiting for the others; after it, silence is death. */
			if (!seen)
				limit = f->silence_ns;
			seen = s->delivered;
			quiet_since = now;
		} else if (now - quiet_since > limit) {
			fprintf(stderr, "%s: %s: no message for %llu s (%u of "
				"%u streams ended)\n", BENCH_PROG, s->log.who,
				(unsigned long long)(limit / SEC_NS), s->ended,
				f->n_pubs);
			return -1;
		}
	}
	return 0;
}

/* Into the shared slot: the histogram bucket by bucket, the rest whole. */
static void sub_report(struct sub *s)
{
	struct slot *sl = s->slot;
	const struct flow *f = s->f;

	sl->same_host = s->same_host > 0;
	sl->sampled = s->sampled;
	sl->messages = 0;
	for (unsigned i = 0; i < s->cap; i++)
		sl->messages += s->streams[i].timed;
	sl->lost = s->lost;
	sl->order_errors = s->order_errors;
	sl->bad_len = s->bad_len;
	sl->loss_events = s->loss_events;
	sl->down_events = s->down_events;
	sl->start_ns = s->start_ns;
	sl->end_ns = s->end_ns;
	sl->win_used = s->win_used;
	sl->hist = s->hist;
	sl->hist.counts = NULL;
	memcpy(f->counts + (uint64_t)s->index * f->n_counts, s->hist.counts,
	       (size_t)f->n_counts * sizeof(uint64_t));
	snprintf(sl->note, sizeof(sl->note), "%s", s->order_note);
}

static int sub_main(struct flow *f, unsigned index)
{
	struct sub s;
	const char *waiting = "the publisher's endpoint";
	int role = f->o->role != BENCH_ROLE_BOTH;

	if (sub_init(&s, f, index) != 0)
		goto fail;
	if (!role && sub_wait(&s, cond_go, SETUP_NS, waiting) != 0)
		goto fail;
	if (sub_open(&s) != 0)
		goto fail;
	if (role && index == 0)
		fprintf(stderr, "%s: waiting up to %llu s for the publisher "
			"of run '%s' (discovery %s)\n", BENCH_PROG,
			ROLE_WAIT_NS / SEC_NS, f->run, f->o->discovery);
	if (sub_wait(&s, cond_images, role ? ROLE_WAIT_NS : SETUP_NS,
		     "an image of every stream") != 0)
		goto fail;
	bench_quiet_end(&s.log, 0);
	atomic_store(&s.slot->state, SUB_READY);
	if (sub_loop(&s) != 0)
		goto fail;
	sub_report(&s);
	atomic_store(&s.slot->state, SUB_DONE);
	bench_quiet_begin(&s.log);
	sub_close(&s);
	bench_quiet_end(&s.log, 0);
	sub_free(&s);
	return 0;

fail:
	/* Told to stop, it leaves without a word: the publisher says why. */
	if (atomic_load(&f->sh->stop)) {
		bench_quiet_begin(&s.log);
		sub_close(&s);
		bench_quiet_end(&s.log, 0);
	}
	atomic_store(&f->sh->slot[index].state, SUB_FAILED);
	atomic_store(&f->sh->failed, 1);
	sub_free(&s);
	return -1;
}

/* -------------------------------------------------- running subscribers */

struct sub_arg {
	struct flow *f;
	unsigned index;
};

struct subs {
	struct flow *f;
	struct sub_arg arg[BENCH_MAX_SUBS];
	struct bench_child child[BENCH_MAX_SUBS];
	pthread_t thr[BENCH_MAX_SUBS];
	unsigned started;
};

/*
 * A verbs subscriber must not inherit this process's RDMA state: once it
 * has used a device (an earlier --size, the --raw baseline), librdmacm
 * keeps the device open for the life of the process, a forked child
 * finds it already open, and the kernel refuses the child's work on it
 * (ibv_post_send: EPERM). So the child runs this very program afresh; the
 * constructor below spots the variable and runs the subscriber instead of
 * main(). CPU pinning and the parent-death signal survive execve.
 */
#define EXEC_ENV "MUON_BENCH_FLOW_SUB"

extern char **environ;

static int sub_exec(struct sub_arg *a)
{
	char var[64], name[32];
	char *argv[] = { name, NULL };
	char **envp;
	size_t n = 0, k = 0;

	snprintf(name, sizeof(name), BENCH_PROG "-sub%u", a->index);
	snprintf(var, sizeof(var), EXEC_ENV "=%d,%u", a->f->map_fd,
		 a->index);
	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	if (!envp) {
		fprintf(stderr, "%s: sub%u: out of memory\n", BENCH_PROG,
			a->index);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], EXEC_ENV "=", sizeof(EXEC_ENV)) != 0)
			envp[k++] = environ[i];
	envp[k++] = var;
	/* Only this child's copy of the descriptor survives execve. */
	if (fcntl(a->f->map_fd, F_SETFD, 0) == 0)
		execve("/proc/self/exe", argv, envp);
	fprintf(stderr, "%s: sub%u: cannot run /proc/self/exe afresh: %s\n",
		BENCH_PROG, a->index, strerror(errno));
	free(envp);
	return 1;
}

/* A stop from the publisher is its failure, not the subscriber's. */
static int sub_status(struct flow *f, int rc)
{
	return rc == 0 || atomic_load(&f->sh->stop) ? 0 : 1;
}

static int sub_child(void *arg, int rd, int wr)
{
	struct sub_arg *a = arg;

	(void)rd;
	(void)wr;
	if (a->f->o->transport == BENCH_VERBS)
		return sub_exec(a);
	return sub_status(a->f, sub_main(a->f, a->index));
}

/* The re-executed subscriber: its flow and options from the mapping. */
static int sub_exec_main(const char *val)
{
	struct bench_opts o;
	struct flow f;
	struct shared *sh;
	const char **strs[N_STRS] = { &o.addr, &o.discovery, &o.secret_file,
				      &o.run_id };
	struct stat st;
	unsigned index;
	int fd;

	if (sscanf(val, "%d,%u", &fd, &index) != 2 || fstat(fd, &st) != 0 ||
	    (size_t)st.st_size < sizeof(*sh)) {
		fprintf(stderr, "%s: bad " EXEC_ENV " '%s'\n", BENCH_PROG, val);
		return 1;
	}
	sh = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		  MAP_SHARED, fd, 0);
	close(fd);
	if (sh == MAP_FAILED) {
		fprintf(stderr, "%s: sub%u: cannot map the shared memory: %s\n",
			BENCH_PROG, index, strerror(errno));
		return 1;
	}
	f = sh->flow;
	o = sh->opts;
	o.hgrm = o.png = NULL;
	for (unsigned i = 0; i < N_STRS; i++)
		*strs[i] = sh->has_str[i] ? sh->str[i] : NULL;
	f.o = &o;
	f.map_fd = -1;
	flow_attach(&f, sh);
	if (index >= f.n_subs || (size_t)st.st_size != f.map_len) {
		fprintf(stderr, "%s: bad " EXEC_ENV " '%s'\n", BENCH_PROG, val);
		return 1;
	}
	return sub_status(&f, sub_main(&f, index));
}

__attribute__((constructor)) static void sub_exec_entry(void)
{
	const char *val = getenv(EXEC_ENV);

	if (val) {
		fflush(NULL);
		_exit(sub_exec_main(val));
	}
}

static void *sub_thread(void *arg)
{
	struct sub_arg *a = arg;
	const struct bench_opts *o = a->f->o;

	if (bench_pin_self(bench_cpu_of(o, 1 + a->index)) != 0) {
		atomic_store(&a->f->sh->slot[a->index].state, SUB_FAILED);
		atomic_store(&a->f->sh->failed, 1);
		return NULL;
	}
	sub_main(a->f, a->index);
	return NULL;
}

static int subs_start(struct subs *r, struct flow *f)
{
	const struct bench_opts *o = f->o;

	r->f = f;
	r->started = 0;
	for (unsigned i = 0; i < f->n_subs; i++) {
		r->arg[i].f = f;
		r->arg[i].index = i;
		if (o->layout == BENCH_LAYOUT_THREAD) {
			int e = pthread_create(&r->thr[i], NULL, sub_thread,
					       &r->arg[i]);

			if (e) {
				fprintf(stderr, "%s: cannot start subscriber "
					"thread: %s\n", BENCH_PROG,
					strerror(e));
				return -1;
			}
		} else if (bench_child_spawn(&r->child[i],
					     bench_cpu_of(o, 1 + i), sub_child,
					     &r->arg[i]) != 0) {
			return -1;
		}
		r->started++;
	}
	return 0;
}

/* 0 while subscriber i runs or has finished well; -1 once it is gone
 * without reporting (a crash says so). */
static int subs_check(struct subs *r, unsigned i)
{
	int st = atomic_load(&r->f->sh->slot[i].state);

	if (st == SUB_FAILED)
		return -1;
	if (st == SUB_DONE || r->f->o->layout == BENCH_LAYOUT_THREAD)
		return 0;
	if (bench_child_check(&r->child[i]) == 0)
		return 0;
	fprintf(stderr, "%s: sub%u (process %ld) ended before the run did\n",
		BENCH_PROG, i, (long)r->child[i].pid);
	return -1;
}

/* Wait for every subscriber to end; `ok`: they are done or about to be,
 * else they are told to stop. 0 if all exited cleanly. */
static int subs_finish(struct subs *r, int ok)
{
	int rc = 0;

	if (!ok)
		atomic_store(&r->f->sh->stop, 1);
	for (unsigned i = 0; i < r->started; i++) {
		if (r->f->o->layout == BENCH_LAYOUT_THREAD) {
			pthread_join(r->thr[i], NULL);
			continue;
		}
		/* One that bench_child_check() reaped has been reported. */
		if (r->child[i].reaped) {
			bench_child_done(&r->child[i]);
			rc = -1;
		} else if (bench_child_finish(&r->child[i],
					      BENCH_TIMEOUT_NS) != 0) {
			rc = -1;
		}
	}
	r->started = 0;
	return rc;
}

/* ------------------------------------------------------- the publisher */

struct pubside {
	struct flow *f;
	struct bench_logsink log;
	struct subs *subs;   /* NULL with --role pub */
	muon_ctx_t *ctx;
	muon_pub_t **pubs;
	uint64_t *next_n;    /* per publication */
	unsigned char *buf;
	unsigned char *bbuf; /* --batch: a burst of messages, staged */
	muon_iov_t *iov;     /* --batch: bbuf's messages */
	unsigned char mark[sizeof(struct marker) + 1];
	uint64_t checks;
	uint64_t max_lag;    /* behind the --rate schedule, timed part */
	uint64_t sent;       /* timed messages per publication */
	uint64_t t0, t1;     /* timed part: start, END sent */
	unsigned events;
	char note[256];
};

static void on_pub_event(void *arg, const muon_event_t *ev)
{
	struct pubside *p = arg;

	if (ev->type == MUON_EVENT_BACKPRESSURE)
		return;
	p->events++;
	snprintf(p->note, sizeof(p->note), "%s event on '%s': %s",
		 muon_event_name(ev->type), ev->topic ? ev->topic : "-",
		 ev->detail);
}

static int pub_init(struct pubside *p, struct flow *f, struct subs *subs)
{
	memset(p, 0, sizeof(*p));
	p->f = f;
	p->subs = subs;
	snprintf(p->log.who, sizeof(p->log.who), "pub");
	bench_quiet_begin(&p->log);
	p->pubs = calloc(f->n_pubs, sizeof(*p->pubs));
	p->next_n = calloc(f->n_pubs, sizeof(*p->next_n));
	if (!p->pubs || !p->next_n) {
		fprintf(stderr, "%s: pub: out of memory\n", BENCH_PROG);
		return -1;
	}
	p->buf = bench_payload_new(f->o->size, "pub");
	if (!p->buf)
		return -1;
	if (f->o->batch) {
		size_t size = f->o->size;
		unsigned burst = f->o->burst ? f->o->burst : 1;

		p->bbuf = calloc(burst, size ? size : 1);
		p->iov = calloc(burst, sizeof(*p->iov));
		if (!p->bbuf || !p->iov) {
			fprintf(stderr, "%s: pub: out of memory for a batch of "
				"%u messages of %zu bytes\n", BENCH_PROG,
				burst, size);
			return -1;
		}
		for (unsigned i = 0; i < burst; i++)
			p->iov[i] = (muon_iov_t){ p->bbuf + i * size, size };
	}
	return 0;
}

static void pub_close(struct pubside *p)
{
	for (unsigned i = 0; p->pubs && i < p->f->n_pubs; i++) {
		muon_pub_destroy(p->pubs[i]);
		p->pubs[i] = NULL;
	}
	muon_ctx_destroy(p->ctx);
	p->ctx = NULL;
}

static void pub_free(struct pubside *p)
{
	pub_close(p);
	bench_quiet_end(&p->log, 1);
	free(p->pubs);
	free(p->next_n);
	free(p->buf);
	free(p->bbuf);
	free(p->iov);
	p->pubs = NULL;
	p->next_n = NULL;
	p->buf = NULL;
	p->bbuf = NULL;
	p->iov = NULL;
}

/* Where the publisher listens, into *listen: a fixed shm name, or port 0
 * (read back once listening) on loopback or the RDMA device's address.
 * With --role, discovery's defaults (NULL), but verbs on the given device
 * address. Returns -1 for an --addr that is not this host's. */
static int pub_listen(const struct flow *f, char *buf, size_t len,
		      const char **listen)
{
	const struct bench_opts *o = f->o;

	*listen = buf;
	if (o->transport == BENCH_VERBS)
		return bench_verbs_listen(o->addr ? o->addr : BENCH_VERBS_ADDR,
					  1, buf, len);
	if (o->role != BENCH_ROLE_BOTH)
		*listen = NULL;
	else if (o->transport == BENCH_SHM)
		snprintf(buf, len, "shm://muonbench-%ld-pub", (long)getpid());
	else
		snprintf(buf, len, "tcp://127.0.0.1:0");
	return 0;
}

static int pub_open(struct pubside *p)
{
	struct flow *f = p->f;
	muon_ctx_config_t cfg;
	muon_pub_config_t pcfg;
	char listen[EP_LEN], topic[128];
	int rc;

	ctx_config(f, &cfg, "muon-bench-pub", &p->log);
	if (pub_listen(f, listen, sizeof(listen), &cfg.listen) != 0)
		return -1;
	rc = muon_ctx_create(&cfg, &p->ctx);
	if (rc < 0) {
		bench_muon_fail("pub", "muon_ctx_create", rc);
		if (cfg.listen)
			fprintf(stderr, "%s: pub: listen %s\n", BENCH_PROG,
				cfg.listen);
		return -1;
	}
	muon_pub_config_init(&pcfg);
	pcfg.event_fn = on_pub_event;
	pcfg.event_arg = p;
	for (unsigned i = 0; i < f->n_pubs; i++) {
		topic_name(f, i % f->n_topics, topic, sizeof(topic));
		rc = muon_pub_create(p->ctx, topic, &pcfg, &p->pubs[i]);
		if (rc < 0) {
			bench_muon_fail("pub", "muon_pub_create", rc);
			return -1;
		}
	}
	if (f->o->role != BENCH_ROLE_BOTH)
		return 0;
	rc = muon_ctx_listen_endpoint(p->ctx, 0, f->sh->pub_ep, EP_LEN);
	if (rc < 0) {
		bench_muon_fail("pub", "muon_ctx_listen_endpoint", rc);
		return -1;
	}
	atomic_store(&f->sh->go, 1);
	return 0;
}

/* Cheap enough for every send slot: one load of a line nobody writes
 * unless something went wrong; the children's liveness now and then. */
static int pub_check(struct pubside *p)
{
	struct subs *r = p->subs;

	if (atomic_load_explicit(&p->f->sh->failed, memory_order_relaxed))
		return -1;
	if (!r || r->f->o->layout == BENCH_LAYOUT_THREAD ||
	    (++p->checks & 4095))
		return 0;
	for (unsigned i = 0; i < r->started; i++)
		if (subs_check(r, i) != 0)
			return -1;
	return 0;
}

static int publish_wait(struct pubside *p, muon_pub_t *pub, const void *buf,
			size_t len, int64_t rc)
{
	struct bench_spin spin = { .yield = p->f->yield,
				   .abort = &p->f->sh->failed,
				   .who = "pub" };

	bench_spin_start(&spin, "a subscriber to make room (back-pressure)");
	for (;;) {
		int prc;

		if (rc != MUON_EBACKPRESSURE && rc != MUON_EAGAIN) {
			bench_muon_fail("pub", "muon_publish", rc);
			return -1;
		}
		prc = muon_ctx_poll(p->ctx, 0);
		if (prc < 0) {
			bench_muon_fail("pub", "muon_ctx_poll", prc);
			return -1;
		}
		if (bench_spin_check(&spin) != 0)
			return -1;
		rc = muon_publish(pub, buf, len);
		if (rc >= 0)
			return 0;
	}
}

static inline int publish(struct pubside *p, muon_pub_t *pub,
			  const void *buf, size_t len)
{
	int64_t rc = muon_publish(pub, buf, len);

	return rc >= 0 ? 0 : publish_wait(p, pub, buf, len, rc);
}

/* --batch: the first n messages staged in p->bbuf, with muon_publishv();
 * what back-pressure cut off goes again after a poll. */
static int publish_batch(struct pubside *p, muon_pub_t *pub, unsigned n)
{
	struct bench_spin spin = { .yield = p->f->yield,
				   .abort = &p->f->sh->failed,
				   .who = "pub" };
	unsigned done = 0;
	int waiting = 0;

	while (done < n) {
		int rc = muon_publishv(pub, p->iov + done, n - done, NULL);

		if (rc > 0) {
			done += (unsigned)rc;
			continue;
		}
		if (rc != MUON_EBACKPRESSURE && rc != MUON_EAGAIN) {
			bench_muon_fail("pub", "muon_publishv", rc);
			return -1;
		}
		if (!waiting) {
			bench_spin_start(&spin, "a subscriber to make room "
					 "(back-pressure)");
			waiting = 1;
		}
		rc = muon_ctx_poll(p->ctx, 0);
		if (rc < 0) {
			bench_muon_fail("pub", "muon_ctx_poll", rc);
			return -1;
		}
		if (bench_spin_check(&spin) != 0)
			return -1;
	}
	return 0;
}

static int publish_markers(struct pubside *p, uint32_t kind)
{
	const struct flow *f = p->f;
	struct marker mk;

	memset(&mk, 0, sizeof(mk));
	memcpy(mk.magic, marker_magic, sizeof(mk.magic));
	mk.kind = kind;
	mk.sampled = (uint32_t)f->sampled;
	memcpy(mk.boot_id, f->boot_id, sizeof(mk.boot_id));
	memset(p->mark, 0, sizeof(p->mark));
	memcpy(p->mark, &mk, sizeof(mk));
	for (unsigned i = 0; i < f->n_pubs; i++)
		if (publish(p, p->pubs[i], p->mark, f->marker_len) != 0)
			return -1;
	return 0;
}

/* Spin (polling, so that lagging subscribers are served) until `t`. */
static int wait_until(struct pubside *p, uint64_t t, uint64_t *now)
{
	for (;;) {
		int r;

		*now = bench_now_ns();
		if (*now >= t)
			return 0;
		r = muon_ctx_poll(p->ctx, 0);
		if (r < 0) {
			bench_muon_fail("pub", "muon_ctx_poll", r);
			return -1;
		}
		if (pub_check(p) != 0)
			return -1;
		if (r == 0 && p->f->yield)
			sched_yield();
	}
}

static inline void put_payload(const struct flow *f, unsigned char *buf,
			       uint64_t intended, uint64_t n)
{
	if (f->o->size >= sizeof(struct bench_stamp)) {
		struct bench_stamp st = { intended, n };

		memcpy(buf, &st, sizeof(st));
	} else {
		bench_put_counter(buf, f->o->size, n);
	}
}

/* A phase ends once at least `count` messages per publication are out and
 * at least `min_ns` has passed; with `exact`, at exactly `count`. */
struct phase {
	uint64_t count;
	uint64_t min_ns;
	int exact;
	int timed;
};

/* Flat out, the publisher looks at the clock and polls once per this many
 * send slots. */
#define FLAT_CHECK_SLOTS 64

/* Poll, check the subscribers and tick the progress line: what the
 * publisher does between slots at a rate, or between chunks flat out. */
static int pub_between(struct pubside *p, struct bench_progress *prog,
		       uint64_t sent)
{
	int rc = muon_ctx_poll(p->ctx, 0);

	if (rc < 0) {
		bench_muon_fail("pub", "muon_ctx_poll", rc);
		return -1;
	}
	if (pub_check(p) != 0)
		return -1;
	if (prog)
		bench_progress_tick(prog, sent * p->f->n_pubs);
	return 0;
}

/*
 * Flat out, in chunks of FLAT_CHECK_SLOTS slots: a clock read, the end
 * test and a poll per chunk, and per message only what muon's own user
 * would do (fill the buffer, publish). Everything else per message would
 * be charged to muon: the loop must cost next to nothing, as the raw
 * baseline's does. A message whose latency the subscribers record (see
 * lat_sampled()) is stamped with a clock read of its own; the others carry
 * the chunk's start, which is never used for latency.
 */
static int run_flat(struct pubside *p, const struct phase *ph,
		    struct bench_progress *prog)
{
	const struct flow *f = p->f;
	const struct bench_opts *o = f->o;
	unsigned burst = o->burst ? o->burst : 1;
	uint64_t per_chunk = (uint64_t)FLAT_CHECK_SLOTS * burst;
	uint64_t t0 = bench_now_ns(), now = t0, sent = 0;
	size_t size = o->size;
	int sampled = f->sampled; /* flat out: whether latency is on */

	for (;;) {
		uint64_t n = per_chunk;

		if (sent >= ph->count && now - t0 >= ph->min_ns)
			break;
		if (ph->exact && ph->count - sent < n)
			n = ph->count - sent;
		for (unsigned i = 0; i < f->n_pubs; i++) {
			muon_pub_t *pub = p->pubs[i];
			uint64_t seq = p->next_n[i];

			unsigned k = 0; /* --batch: messages staged */

			for (uint64_t b = 0; b < n; b++, seq++) {
				uint64_t st = sampled && lat_sampled(seq) ?
						      bench_now_ns() : now;

				if (!o->batch) {
					put_payload(f, p->buf, st, seq);
					if (publish(p, pub, p->buf, size) != 0)
						return -1;
					continue;
				}
				put_payload(f, p->bbuf + k++ * size, st, seq);
				if (k < burst && b + 1 < n)
					continue;
				if (publish_batch(p, pub, k) != 0)
					return -1;
				k = 0;
			}
			p->next_n[i] = seq;
		}
		sent += n;
		if (pub_between(p, prog, sent) != 0)
			return -1;
		now = bench_now_ns();
	}
	if (ph->timed) {
		p->sent = sent;
		p->t0 = t0;
		p->t1 = now;
	}
	return 0;
}

/*
 * Send slots of --burst messages per publication. At a fixed --rate, slot
 * k is due at t0 + k * burst / rate and its messages carry that time, not
 * the time they actually leave: a stall counts against latency (no
 * coordinated omission). Flat out, a slot carries the time it started.
 */
static int run_phase(struct pubside *p, const struct phase *ph,
		     struct bench_progress *prog)
{
	const struct flow *f = p->f;
	const struct bench_opts *o = f->o;
	unsigned burst = o->burst ? o->burst : 1, unpolled = 0;
	uint64_t t0 = bench_now_ns(), now = t0, due, sent = 0, k;

	if (!o->rate)
		return run_flat(p, ph, prog);
	for (k = 0;; k++) {
		uint64_t n = burst;

		due = t0 + slot_offset(k, burst, o->rate);
		/* A publisher behind its schedule stops when the time is up,
		 * not when the schedule is: the warning about the rate says
		 * so. */
		if (sent >= ph->count && (due > now ? due : now) - t0 >= ph->min_ns)
			break;
		if (wait_until(p, due, &now) != 0)
			return -1;
		if (ph->timed && now - due > p->max_lag)
			p->max_lag = now - due;
		if (ph->exact && ph->count - sent < n)
			n = ph->count - sent;
		for (unsigned i = 0; i < f->n_pubs; i++) {
			for (uint64_t b = 0; b < n; b++) {
				if (o->batch) {
					put_payload(f, p->bbuf + b * o->size,
						    due, p->next_n[i]++);
					continue;
				}
				put_payload(f, p->buf, due, p->next_n[i]++);
				if (publish(p, p->pubs[i], p->buf,
					    o->size) != 0)
					return -1;
			}
			if (o->batch &&
			    publish_batch(p, p->pubs[i], (unsigned)n) != 0)
				return -1;
		}
		sent += n;
		/* A publisher behind its schedule publishes every slot that
		 * is due before it polls, as an application drains what it
		 * has to send first (and as the raw baseline puts everything
		 * due into one send): a poll per slot would let tcp send
		 * each message alone, which caps the rate at one send()
		 * per message. */
		if (++unpolled < FLAT_CHECK_SLOTS &&
		    t0 + slot_offset(k + 1, burst, o->rate) <= now)
			continue;
		unpolled = 0;
		if (pub_between(p, prog, sent) != 0)
			return -1;
	}
	if (!ph->timed)
		return 0;
	/* END goes out when the next slot would have: the run then lasts k
	 * whole periods, so the rate measured is the rate offered. */
	if (wait_until(p, due, &now) != 0)
		return -1;
	p->sent = sent;
	p->t0 = t0;
	p->t1 = now;
	return 0;
}

static int pub_run(struct pubside *p)
{
	const struct bench_opts *o = p->f->o;
	struct phase warm = { .count = o->warmup, .exact = 1 };
	struct phase timed = { .count = o->count, .exact = 1, .timed = 1 };
	struct bench_progress prog;
	char what[96];
	uint64_t end_ns = 0;
	int rc;

	if (!o->count) {
		uint64_t w = o->duration_ns / 10;

		warm.min_ns = w < WARMUP_MAX_NS ? w : WARMUP_MAX_NS;
		warm.exact = 0;
		timed.min_ns = o->duration_ns;
		timed.exact = 0;
	}
	if (run_phase(p, &warm, NULL) != 0 ||
	    publish_markers(p, MARK_START) != 0)
		return -1;
	snprintf(what, sizeof(what), "%s %s %zu B",
		 bench_mode_name(o->mode), bench_transport_name(o->transport),
		 o->size);
	if (!o->count)
		end_ns = bench_now_ns() + o->duration_ns;
	bench_progress_start(&prog, o, what, o->count * p->f->n_pubs, end_ns);
	rc = run_phase(p, &timed, &prog);
	bench_progress_end(&prog);
	if (rc != 0)
		return -1;
	return publish_markers(p, MARK_END);
}

/* Nap-polling set-up wait of the publisher. */
typedef int (*pub_cond_fn)(struct pubside *p);

struct pub_step {
	struct pubside *p;
	pub_cond_fn cond;
};

static int pub_step(void *arg)
{
	struct pub_step *a = arg;

	return a->cond(a->p);
}

static int pub_wait(struct pubside *p, pub_cond_fn cond, uint64_t timeout_ns,
		    const char *what)
{
	struct pub_step a = { p, cond };

	return bench_setup_wait(p->ctx, "pub", pub_step, &a, timeout_ns, what,
				&p->events, p->note);
}

/* Every subscriber has an image of every stream, so none misses the
 * start, and the publisher sees each of them. */
static int cond_subs_ready(struct pubside *p)
{
	struct subs *r = p->subs;

	for (unsigned i = 0; i < r->started; i++) {
		if (subs_check(r, i) != 0)
			return -1;
		if (atomic_load(&r->f->sh->slot[i].state) != SUB_READY)
			return 0;
	}
	for (unsigned i = 0; i < p->f->n_pubs; i++)
		if (muon_pub_subscribers(p->pubs[i]) < (int)r->started)
			return 0;
	return 1;
}

static int cond_subs_done(struct pubside *p)
{
	struct subs *r = p->subs;
	int done = 1;

	for (unsigned i = 0; i < r->started; i++) {
		if (subs_check(r, i) != 0)
			return -1;
		if (atomic_load(&r->f->sh->slot[i].state) != SUB_DONE)
			done = 0;
	}
	return done;
}

/* --role pub: the expected number of subscribers has connected to every
 * publication (through discovery, from wherever they run). */
static int cond_role_subs(struct pubside *p)
{
	unsigned want = p->f->n_subs;

	for (unsigned i = 0; i < p->f->n_pubs; i++)
		if (muon_pub_subscribers(p->pubs[i]) < (int)want)
			return 0;
	return 1;
}

/* --role pub: subscribers leave once they have END. */
static int cond_role_left(struct pubside *p)
{
	for (unsigned i = 0; i < p->f->n_pubs; i++)
		if (muon_pub_subscribers(p->pubs[i]) > 0)
			return 0;
	return 1;
}

/* Anything muon had to work around during the run skews the figures. */
static void pub_counters(struct pubside *p, struct bench_report *rep)
{
	muon_counters_t c;
	int rc;

	c.size = sizeof(c);
	rc = muon_ctx_counters(p->ctx, &c);
	if (rc < 0) {
		bench_muon_fail("pub", "muon_ctx_counters", rc);
		return;
	}
	if (c.losses || c.disconnects || c.slow_drops || p->events)
		bench_warn(rep, "muon %s %zu B: the publisher saw %llu loss "
			   "events, %llu disconnects, %llu slow drops, %u "
			   "other events%s%s", bench_mode_name(p->f->o->mode),
			   p->f->o->size, (unsigned long long)c.losses,
			   (unsigned long long)c.disconnects,
			   (unsigned long long)c.slow_drops, p->events,
			   p->events ? "; the last: " : "",
			   p->events ? p->note : "");
}

/* The schedule of a fixed --rate slipped: say by how much and what the
 * publisher managed. */
static void pub_rate_check(struct pubside *p, struct bench_report *rep)
{
	const struct bench_opts *o = p->f->o;
	double secs = (double)(p->t1 - p->t0) / 1e9;

	if (!o->rate || p->max_lag <= BEHIND_NS)
		return;
	bench_warn(rep, "muon %s %zu B: the offered rate of %llu messages/s "
		   "per publication was not achieved: the publisher fell "
		   "%.1f s behind its schedule and sent %.0f messages/s",
		   bench_mode_name(o->mode), o->size,
		   (unsigned long long)o->rate, (double)p->max_lag / 1e9,
		   secs > 0 ? (double)p->sent / secs : 0.0);
}

/* ------------------------------------------------------------- results */

static int result_init(struct bench_result *res, const struct flow *f,
		       const char *series, enum bench_lat_kind lat)
{
	memset(res, 0, sizeof(*res));
	snprintf(res->impl, sizeof(res->impl), "muon");
	snprintf(res->series, sizeof(res->series), "%s", series);
	res->mode = f->o->mode;
	res->transport = f->o->transport;
	res->size = f->o->size;
	res->lat = lat;
	if (bench_hist_init(&res->hist, HIST_HIGHEST) != 0) {
		fprintf(stderr, "%s: out of memory\n", BENCH_PROG);
		return -1;
	}
	return 0;
}

static int result_add(struct bench_report *rep, struct bench_result *res)
{
	if (bench_report_add(rep, res) != 0) {
		bench_hist_fini(&res->hist);
		fprintf(stderr, "%s: out of memory\n", BENCH_PROG);
		return -1;
	}
	return 0;
}

/* A subscriber's histogram from its slot and its counts in the mapping. */
static void hist_from_slot(struct bench_hist *h, const struct flow *f,
			   unsigned i)
{
	uint64_t *counts = h->counts;

	*h = f->sh->slot[i].hist;
	h->counts = counts;
	memcpy(counts, f->counts + (uint64_t)i * f->n_counts,
	       (size_t)f->n_counts * sizeof(uint64_t));
}

static int add_sub_result(struct bench_report *rep, const struct flow *f,
			  unsigned i, const char *series,
			  enum bench_lat_kind lat)
{
	const struct slot *sl = &f->sh->slot[i];
	struct bench_result res;

	if (result_init(&res, f, series, lat) != 0)
		return -1;
	if (lat != BENCH_LAT_NONE)
		hist_from_slot(&res.hist, f, i);
	res.messages = sl->messages;
	res.lost = sl->lost;
	res.seconds_ns = sl->end_ns - sl->start_ns;
	return result_add(rep, &res);
}

/* What went wrong on subscriber i's streams, as warnings. */
static void warn_sub(struct bench_report *rep, const struct flow *f,
		     unsigned i)
{
	const struct slot *sl = &f->sh->slot[i];
	const char *m = bench_mode_name(f->o->mode);
	size_t size = f->o->size;

	if (sl->lost)
		bench_warn(rep, "muon %s %zu B: sub%u lost %llu of the timed "
			   "messages", m, size, i,
			   (unsigned long long)sl->lost);
	if (sl->order_errors || sl->bad_len)
		bench_warn(rep, "muon %s %zu B: sub%u: %llu messages out of "
			   "order or after a gap, %llu of a wrong length; the "
			   "first: %s", m, size, i,
			   (unsigned long long)sl->order_errors,
			   (unsigned long long)sl->bad_len, sl->note);
	if (sl->loss_events || sl->down_events)
		bench_warn(rep, "muon %s %zu B: sub%u saw %llu LOSS and %llu "
			   "IMAGE_DOWN events during the run", m, size, i,
			   (unsigned long long)sl->loss_events,
			   (unsigned long long)sl->down_events);
}

/* Fan-out: the first and the last delivery of each message (fanout.c). */
static int add_first_last(struct bench_report *rep, const struct flow *f)
{
	struct bench_fanout fo = { .impl = "muon", .n_subs = f->n_subs,
				   .len = f->win_len, .messages = UINT64_MAX,
				   .start_ns = UINT64_MAX };

	for (unsigned s = 0; s < f->n_subs; s++) {
		const struct slot *sl = &f->sh->slot[s];

		fo.win[s] = f->win + (uint64_t)s * f->win_len;
		if (sl->win_used > fo.used)
			fo.used = sl->win_used;
		if (sl->messages < fo.messages)
			fo.messages = sl->messages;
		if (sl->start_ns < fo.start_ns)
			fo.start_ns = sl->start_ns;
		if (sl->end_ns > fo.end_ns)
			fo.end_ns = sl->end_ns;
	}
	return bench_fanout_first_last(f->o, rep, &fo);
}

/* Streams: every subscriber's every stream in one row. */
static int add_streams_all(struct bench_report *rep, const struct flow *f,
			   enum bench_lat_kind lat)
{
	struct bench_result res, one;
	uint64_t start = UINT64_MAX, end = 0;

	if (result_init(&res, f, "all", lat) != 0)
		return -1;
	if (lat != BENCH_LAT_NONE &&
	    bench_hist_init(&one.hist, HIST_HIGHEST) != 0) {
		bench_hist_fini(&res.hist);
		fprintf(stderr, "%s: out of memory\n", BENCH_PROG);
		return -1;
	}
	for (unsigned i = 0; i < f->n_subs; i++) {
		const struct slot *sl = &f->sh->slot[i];

		res.messages += sl->messages;
		res.lost += sl->lost;
		if (sl->start_ns < start)
			start = sl->start_ns;
		if (sl->end_ns > end)
			end = sl->end_ns;
		if (lat != BENCH_LAT_NONE) {
			hist_from_slot(&one.hist, f, i);
			bench_hist_add(&res.hist, &one.hist);
		}
	}
	if (lat != BENCH_LAT_NONE)
		bench_hist_fini(&one.hist);
	res.seconds_ns = end - start;
	return result_add(rep, &res);
}

static void note_streams(const struct flow *f)
{
	uint64_t order = 0, lost = 0, len = 0;

	for (unsigned i = 0; i < f->n_subs; i++) {
		order += f->sh->slot[i].order_errors;
		lost += f->sh->slot[i].lost;
		len += f->sh->slot[i].bad_len;
	}
	fprintf(stderr, "%s: note: streams: %u streams on %u topics x %u "
		"subscribers checked message by message: %llu out of order, "
		"%llu lost, %llu of a wrong length\n", BENCH_PROG, f->n_pubs,
		f->n_topics, f->n_subs, (unsigned long long)order,
		(unsigned long long)lost, (unsigned long long)len);
}

static int add_results(struct bench_report *rep, const struct flow *f)
{
	const struct bench_opts *o = f->o;
	enum bench_lat_kind lat = f->lat ? BENCH_LAT_ONEWAY : BENCH_LAT_NONE;
	char series[24];

	if (f->lat && o->role == BENCH_ROLE_SUB) {
		for (unsigned i = 0; i < f->n_subs; i++)
			if (!f->sh->slot[i].same_host)
				lat = BENCH_LAT_NONE;
		if (lat == BENCH_LAT_NONE)
			bench_warn(rep, "muon %s %zu B: the publisher runs on "
				   "another host (another boot id): one-way "
				   "latency would compare two clocks, so only "
				   "throughput is reported",
				   bench_mode_name(o->mode), o->size);
	}
	if (lat != BENCH_LAT_NONE && f->sh->slot[0].sampled)
		bench_warn(rep, "muon %s %zu B: flat out, latency is sampled on "
			   "1 message in %u (a clock reading per message would "
			   "cost more than muon does); use --rate to time "
			   "every message", bench_mode_name(o->mode), o->size,
			   1u << LAT_SAMPLE_SHIFT);
	for (unsigned i = 0; i < f->n_subs; i++)
		warn_sub(rep, f, i);
	switch (o->mode) {
	case BENCH_FANOUT:
		for (unsigned i = 0; i < f->n_subs; i++) {
			snprintf(series, sizeof(series), "sub%u", i);
			if (add_sub_result(rep, f, i, series, lat) != 0)
				return -1;
		}
		if (lat != BENCH_LAT_NONE && f->n_subs > 1)
			return add_first_last(rep, f);
		return 0;
	case BENCH_STREAMS:
		note_streams(f);
		if (add_streams_all(rep, f, lat) != 0)
			return -1;
		for (unsigned i = 0; f->n_subs > 1 && i < f->n_subs; i++) {
			snprintf(series, sizeof(series), "sub%u", i);
			if (add_sub_result(rep, f, i, series, lat) != 0)
				return -1;
		}
		return 0;
	default:
		for (unsigned i = 0; i < f->n_subs; i++) {
			if (f->n_subs > 1)
				snprintf(series, sizeof(series), "sub%u", i);
			else
				snprintf(series, sizeof(series), "sub");
			if (add_sub_result(rep, f, i, series, lat) != 0)
				return -1;
		}
		return 0;
	}
}

/* --role pub: the publisher's own view, no latency. */
static int add_pub_result(struct bench_report *rep, struct pubside *p)
{
	struct bench_result res;

	if (result_init(&res, p->f, "pub", BENCH_LAT_NONE) != 0)
		return -1;
	res.messages = p->sent * p->f->n_pubs;
	res.seconds_ns = p->t1 - p->t0;
	return result_add(rep, &res);
}

/* ---------------------------------------------------------------- set-up */

/* What a re-executed subscriber needs: the flow, the options and the
 * strings they point to, by value. */
static void flow_export(const struct flow *f)
{
	struct shared *sh = f->sh;
	const char *strs[N_STRS] = { f->o->addr, f->o->discovery,
				     f->o->secret_file, f->o->run_id };

	sh->flow = *f;
	sh->opts = *f->o;
	for (unsigned i = 0; i < N_STRS; i++) {
		sh->has_str[i] = strs[i] != NULL;
		snprintf(sh->str[i], sizeof(sh->str[i]), "%s",
			 strs[i] ? strs[i] : "");
	}
}

static int flow_init(struct flow *f, const struct bench_opts *o,
		     struct bench_report *rep)
{
	struct bench_hist h;
	unsigned sides;

	memset(f, 0, sizeof(*f));
	f->o = o;
	f->map_fd = -1;
	f->n_subs = o->mode == BENCH_THROUGHPUT ? 1 : o->subs ? o->subs : 1;
	f->n_pubs = o->mode == BENCH_STREAMS ? (o->pubs ? o->pubs : 1) : 1;
	f->n_topics = o->mode == BENCH_STREAMS ?
			      (o->topics ? o->topics : 1) : 1;
	if (f->n_topics > f->n_pubs)
		f->n_topics = f->n_pubs;
	if (f->n_subs > BENCH_MAX_SUBS || f->n_pubs > BENCH_MAX_PUBS) {
		fprintf(stderr, "%s: at most %u subscribers and %u "
			"publications\n", BENCH_PROG, BENCH_MAX_SUBS,
			BENCH_MAX_PUBS);
		return -1;
	}
	if (o->role != BENCH_ROLE_BOTH && !o->discovery) {
		fprintf(stderr, "%s: --role needs --discovery (the muond "
			"daemons both sides use)\n", BENCH_PROG);
		return -1;
	}
	/* With --role the size is part of the run: a subscriber of the next
	 * --size must not find this size's publisher, which stays until its
	 * subscribers have left. */
	if (o->role != BENCH_ROLE_BOTH)
		snprintf(f->run, sizeof(f->run), "%s.%zu",
			 o->run_id && *o->run_id ? o->run_id : "default",
			 o->size);
	else
		snprintf(f->run, sizeof(f->run), "%ld", (long)getpid());
	f->lat = o->size >= sizeof(struct bench_stamp);
	if (!f->lat && o->role != BENCH_ROLE_PUB)
		bench_warn(rep, "muon %s %zu B: latency not measured: a "
			   "payload under %zu bytes has no room for the send "
			   "time, only for the message number%s",
			   bench_mode_name(o->mode), o->size,
			   sizeof(struct bench_stamp),
			   o->size < 8 ? " (checked modulo 2^(8 x size))" : "");
	f->sampled = f->lat && !o->rate;
	f->mask = bench_counter_mask(UINT64_MAX, o->size);
	f->marker_len = o->size == sizeof(struct marker) ?
				sizeof(struct marker) + 1 :
				sizeof(struct marker);
	sides = o->role == BENCH_ROLE_SUB ? f->n_subs :
		o->role == BENCH_ROLE_PUB ? 1 : 1 + f->n_subs;
	f->yield = sides_share_cpu(o, sides);
	/* A stream is dead after 10 s without a message, or 3 send slots at
	 * a slow --rate. */
	f->silence_ns = BENCH_TIMEOUT_NS;
	if (o->rate) {
		uint64_t slot3 = slot_offset(3, o->burst ? o->burst : 1,
					     o->rate);

		if (slot3 > f->silence_ns)
			f->silence_ns = slot3;
	}
	flow_sizes(f);
	read_boot_id(f->boot_id, sizeof(f->boot_id));
	if (o->mode == BENCH_FANOUT && f->lat && o->role != BENCH_ROLE_PUB) {
		f->win_len = bench_fanout_window(o, f->n_subs);
	}
	/* The bucket count every side will have, for the mapping's size. */
	if (bench_hist_init(&h, HIST_HIGHEST) != 0) {
		fprintf(stderr, "%s: out of memory\n", BENCH_PROG);
		return -1;
	}
	f->n_counts = h.n_counts;
	bench_hist_fini(&h);
	f->head = (sizeof(struct shared) + 63) & ~(size_t)63;
	f->map_len = f->head + (size_t)f->n_subs * f->n_counts * 8 +
		     (size_t)f->n_subs * f->win_len * 8;
	/* A memfd rather than anonymous memory: a re-executed subscriber
	 * (verbs) maps it again from the descriptor it inherits. */
	f->map_fd = memfd_create("muon-bench-flow", MFD_CLOEXEC);
	if (f->map_fd < 0 || ftruncate(f->map_fd, (off_t)f->map_len) != 0) {
		fprintf(stderr, "%s: cannot make %zu bytes of shared memory: "
			"%s\n", BENCH_PROG, f->map_len, strerror(errno));
		return -1;
	}
	f->sh = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		     f->map_fd, 0);
	if (f->sh == MAP_FAILED) {
		fprintf(stderr, "%s: cannot map %zu bytes of shared memory: "
			"%s\n", BENCH_PROG, f->map_len, strerror(errno));
		f->sh = NULL;
		return -1;
	}
	flow_attach(f, f->sh);
	flow_export(f);
	return 0;
}

static void flow_fini(struct flow *f)
{
	if (f->sh)
		munmap(f->sh, f->map_len);
	if (f->map_fd >= 0)
		close(f->map_fd);
	f->sh = NULL;
	f->map_fd = -1;
}

/* The publisher runs on side 0's CPU for the run only. */
struct pinning {
	cpu_set_t saved;
	int pinned;
};

static int pin_publisher(const struct bench_opts *o, struct pinning *pin)
{
	pin->pinned = 0;
	if (bench_cpu_of(o, 0) < 0)
		return 0;
	if (sched_getaffinity(0, sizeof(pin->saved), &pin->saved) != 0) {
		fprintf(stderr, "%s: sched_getaffinity: %s\n", BENCH_PROG,
			strerror(errno));
		return -1;
	}
	if (bench_pin_self(bench_cpu_of(o, 0)) != 0)
		return -1;
	pin->pinned = 1;
	return 0;
}

static void unpin_publisher(struct pinning *pin)
{
	if (pin->pinned)
		sched_setaffinity(0, sizeof(pin->saved), &pin->saved);
	pin->pinned = 0;
}

/* ------------------------------------------------------------- the runs */

/* Publisher here, subscribers in children or threads. */
static int run_both(struct flow *f, struct bench_report *rep)
{
	struct subs subs;
	struct pubside p;
	struct pinning pin;
	int rc;

	/* Subscribers first: a child forked after the publisher's context
	 * exists would inherit its sockets, rings and RDMA state. */
	if (subs_start(&subs, f) != 0)
		goto stop_subs;
	if (pin_publisher(f->o, &pin) != 0)
		goto stop_subs;
	if (pub_init(&p, f, &subs) != 0 || pub_open(&p) != 0)
		goto free_pub;
	if (pub_wait(&p, cond_subs_ready, SETUP_NS,
		     "every subscriber to see every stream") != 0)
		goto free_pub;
	bench_quiet_end(&p.log, 0);
	if (pub_run(&p) != 0)
		goto free_pub;
	/* Before the subscribers leave, which counts as disconnects. */
	pub_counters(&p, rep);
	pub_rate_check(&p, rep);
	bench_quiet_begin(&p.log);
	if (pub_wait(&p, cond_subs_done, BENCH_TIMEOUT_NS,
		     "the subscribers to receive the end of the run") != 0)
		goto free_pub;
	/* Subscribers close first, then we do: no linger on live peers. */
	rc = subs_finish(&subs, 1);
	pub_close(&p);
	bench_quiet_end(&p.log, rc != 0);
	pub_free(&p);
	unpin_publisher(&pin);
	if (rc != 0)
		return -1;
	return add_results(rep, f);

free_pub:
	bench_quiet_begin(&p.log);
	subs_finish(&subs, 0);
	pub_free(&p);
	unpin_publisher(&pin);
	return -1;
stop_subs:
	subs_finish(&subs, 0);
	return -1;
}

/* --role pub: the publisher alone; subscribers come through discovery. */
static int run_pub(struct flow *f, struct bench_report *rep)
{
	const struct bench_opts *o = f->o;
	struct pubside p;
	struct pinning pin;
	char what[160];
	int rc;

	if (pin_publisher(o, &pin) != 0)
		return -1;
	if (pub_init(&p, f, NULL) != 0 || pub_open(&p) != 0)
		goto free_pub;
	snprintf(what, sizeof(what), "%u subscriber(s) of run '%s'",
		 f->n_subs, f->run);
	fprintf(stderr, "%s: waiting up to %llu s for %s (discovery %s)\n",
		BENCH_PROG, ROLE_WAIT_NS / SEC_NS, what, o->discovery);
	if (pub_wait(&p, cond_role_subs, ROLE_WAIT_NS, what) != 0)
		goto free_pub;
	bench_quiet_end(&p.log, 0);
	if (pub_run(&p) != 0)
		goto free_pub;
	pub_counters(&p, rep);
	pub_rate_check(&p, rep);
	bench_quiet_begin(&p.log);
	if (pub_wait(&p, cond_role_left, BENCH_TIMEOUT_NS,
		     "the subscribers to take the end of the run") != 0)
		goto free_pub;
	bench_warn(rep, "muon %s %zu B: publisher side of a two-host run: "
		   "the subscriber side reports delivery and latency",
		   bench_mode_name(o->mode), o->size);
	rc = add_pub_result(rep, &p);
	pub_close(&p);
	bench_quiet_end(&p.log, 0);
	pub_free(&p);
	unpin_publisher(&pin);
	return rc;

free_pub:
	pub_free(&p);
	unpin_publisher(&pin);
	return -1;
}

/* --role sub: subscribers only, until they have END or give up. */
static int run_sub(struct flow *f, struct bench_report *rep)
{
	struct subs subs;
	const struct timespec nap = { 0, 1000000 };
	int failed = 0;

	if (subs_start(&subs, f) != 0) {
		subs_finish(&subs, 0);
		return -1;
	}
	/* Each subscriber bounds its own waits; this only notices a crash. */
	for (unsigned done = 0; done < subs.started && !failed;) {
		done = 0;
		for (unsigned i = 0; i < subs.started; i++) {
			if (subs_check(&subs, i) != 0)
				failed = 1;
			else if (atomic_load(&f->sh->slot[i].state) ==
				 SUB_DONE)
				done++;
		}
		nanosleep(&nap, NULL);
	}
	if (subs_finish(&subs, !failed) != 0 || failed)
		return -1;
	return add_results(rep, f);
}

int bench_muon_flow(const struct bench_opts *o, struct bench_report *rep)
{
	struct flow f;
	int rc;

	if (o->mode == BENCH_PINGPONG) {
		fprintf(stderr, "%s: pingpong is not a flow mode\n",
			BENCH_PROG);
		return -1;
	}
	if (flow_init(&f, o, rep) != 0) {
		flow_fini(&f);
		return -1;
	}
	if (o->role == BENCH_ROLE_PUB)
		rc = run_pub(&f, rep);
	else if (o->role == BENCH_ROLE_SUB)
		rc = run_sub(&f, rep);
	else
		rc = run_both(&f, rep);
	flow_fini(&f);
	return rc;
}
