/*
 * Role "pub": one context, one publication, deterministic payloads.
 *
 *   1. create the context (listening on --listen) and the publication;
 *      print "LISTEN endpoint=EP id=ID stream=SID"
 *   2. publish --pre-count messages right away (no subscriber needed) and
 *      print "PRE_DONE last=SEQ"
 *   3. wait for "GO" on stdin, then until muon_pub_subscribers() reaches
 *      --subscribers (deadline --wait-subs-ms)
 *   4. publish --count messages, print "DONE last=SEQ ..."
 *   5. keep polling until "FINISH" on stdin, print "PUBSTATS ...", destroy
 *      and exit 0.
 * Any failure prints the muon status and detail message and exits 1.
 */
#include "itest.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pub_opts {
	const char *transport;
	const char *listen;
	const char *discovery;
	const char *secret_file;
	const char *topic;
	const char *shm_dir;
	const char *name;
	const char *sizes_text;
	uint64_t seed;
	uint64_t count;
	uint64_t pre_count;
	uint32_t subscribers;
	uint32_t max_size;
	uint32_t max_msg_size;
	uint32_t send_log_size;
	uint32_t slow_timeout_ms;
	uint32_t wait_subs_ms;
	uint32_t max_stall_ms;
	uint32_t rate_mbps;
	int slow_policy;
	int use_claim;
	int use_batch;
	int allow_errors;
	int log_level;
};

struct pub_state {
	struct pub_opts o;
	muon_ctx_t *ctx;
	muon_pub_t *pub;
	pattern_t pat;
	size_spec_t sizes;
	uint8_t *scratch;
	uint8_t *batch_buf;  /* --api publishv: PUB_BATCH_MAX messages */
	muon_iov_t *batch_iov;
	uint64_t next_seq;
	uint64_t msgs;
	uint64_t bytes;
	uint64_t bp_retries;
	uint64_t bp_events;
	uint64_t slow_drop_events;
	uint64_t error_events;
	uint64_t max_stall_ns;
	/* rate limiting */
	uint64_t rate_t0;
	uint64_t rate_bytes;
	/* stdin commands */
	char cmdbuf[256];
	size_t cmdlen;
	int got_go;
	int got_finish;
};

static void pub_event(void *arg, const muon_event_t *ev)
{
	struct pub_state *st = arg;

	switch (ev->type) {
	case MUON_EVENT_BACKPRESSURE:
		st->bp_events++;
		break;
	case MUON_EVENT_SLOW_DROP:
		st->slow_drop_events++;
		note("event SLOW_DROP: %s", ev->detail);
		break;
	case MUON_EVENT_ERROR:
		st->error_events++;
		note("event ERROR reason=%d: %s", ev->reason, ev->detail);
		if (!st->o.allow_errors)
			die("unexpected ERROR event on the publisher: %s",
			    ev->detail);
		break;
	default:
		note("event %s: %s", muon_event_name(ev->type), ev->detail);
		break;
	}
}

static void read_commands(struct pub_state *st)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (st->cmdlen >= sizeof(st->cmdbuf) - 1)
			die("overlong command from the driver");
		n = read(0, st->cmdbuf + st->cmdlen,
			 sizeof(st->cmdbuf) - 1 - st->cmdlen);
		if (n == 0)
			die("the driver closed our stdin (driver gone?)");
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			die("read stdin: %s", strerror(errno));
		}
		st->cmdlen += (size_t)n;
		st->cmdbuf[st->cmdlen] = '\0';
		while ((nl = strchr(st->cmdbuf, '\n')) != NULL) {
			*nl = '\0';
			if (strcmp(st->cmdbuf, "GO") == 0)
				st->got_go = 1;
			else if (strcmp(st->cmdbuf, "FINISH") == 0)
				st->got_finish = 1;
			else
				die("unknown command from the driver: '%s'",
				    st->cmdbuf);
			st->cmdlen -= (size_t)(nl + 1 - st->cmdbuf);
			memmove(st->cmdbuf, nl + 1, st->cmdlen + 1);
		}
	}
}

static int poll_ctx(struct pub_state *st)
{
	int rc = muon_ctx_poll(st->ctx, 0);

	if (rc < 0)
		die_muon(rc, "muon_ctx_poll");
	return rc;
}

/* A line on stderr every few seconds, so a timeout shows where it hung. */
static void progress(struct pub_state *st, const char *what)
{
	static uint64_t next;
	uint64_t now = now_ns();

	if (!next)
		next = now + 5000000000ull;
	if (now < next)
		return;
	next = now + 5000000000ull;
	note("progress: %s; next seq %" PRIu64 ", %d subscriber(s), "
	     "%" PRIu64 " back-pressure retries",
	     what, st->next_seq, muon_pub_subscribers(st->pub),
	     st->bp_retries);
}

/* Poll the context and the driver until `flag` is set. */
static void wait_command(struct pub_state *st, int *flag)
{
	unsigned spins = 0;

	while (!*flag) {
		progress(st, flag == &st->got_go ? "waiting for GO"
						 : "waiting for FINISH");
		read_commands(st);
		if (*flag)
			break;
		if (poll_ctx(st) > 0) {
			spins = 0;
			continue;
		}
		if (spins++ < 16)
			continue;
		wait_ctx(st->ctx, 0, 10);
	}
}

static void rate_limit(struct pub_state *st, size_t len)
{
	uint64_t target;

	if (st->o.rate_mbps == 0)
		return;
	/* count a per-message overhead so empty messages are paced too */
	st->rate_bytes += len + 64;
	target = st->rate_t0 + st->rate_bytes * 1000ull / st->o.rate_mbps;
	for (;;) {
		uint64_t now = now_ns();
		uint64_t left;
		struct timespec ts;

		if (now >= target)
			return;
		if (poll_ctx(st) > 0)
			continue;
		left = target - now;
		if (left > 200000)
			left = 200000;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left;
		nanosleep(&ts, NULL);
	}
}

static void on_backpressure(struct pub_state *st, uint64_t seq,
			    uint64_t t_first, unsigned *spins)
{
	uint64_t stalled = now_ns() - t_first;

	if (st->o.slow_policy == MUON_SLOW_DROP)
		die("publish of seq %" PRIu64 " returned MUON_EBACKPRESSURE "
		    "under MUON_SLOW_DROP, which must never refuse",
		    seq);
	st->bp_retries++;
	progress(st, "blocked by back-pressure");
	if (st->o.max_stall_ms &&
	    stalled > (uint64_t)st->o.max_stall_ms * 1000000ull)
		die("publish of seq %" PRIu64 " blocked by back-pressure for "
		    "more than %u ms (muon_pub_subscribers=%d): a subscriber "
		    "stalls the publisher",
		    seq, st->o.max_stall_ms, muon_pub_subscribers(st->pub));
	if (poll_ctx(st) > 0)
		*spins = 0;
	else
		backoff(spins);
}

static void publish_one(struct pub_state *st)
{
	uint64_t seq = st->next_seq;
	size_t len = pattern_len(&st->pat, seq);
	uint64_t t_first = 0, stall;
	unsigned spins = 0;
	int64_t got;

	if (st->o.use_claim) {
		for (;;) {
			void *buf = NULL;
			int rc = muon_claim(st->pub, len, &buf);

			if (rc == MUON_EBACKPRESSURE) {
				if (!t_first)
					t_first = now_ns();
				on_backpressure(st, seq, t_first, &spins);
				continue;
			}
			if (rc != MUON_OK)
				die_muon(rc, "muon_claim(%zu bytes) for seq %"
					 PRIu64, len, seq);
			if (len > 0) {
				if (!buf)
					die("muon_claim(%zu) returned a NULL "
					    "buffer", len);
				pattern_fill(&st->pat, seq, buf);
			}
			got = muon_commit(st->pub);
			if (got < 0)
				die_muon((int)got, "muon_commit seq %" PRIu64,
					 seq);
			break;
		}
	} else {
		pattern_fill(&st->pat, seq, st->scratch);
		for (;;) {
			got = muon_publish(st->pub, st->scratch, len);
			if (got == MUON_EBACKPRESSURE) {
				if (!t_first)
					t_first = now_ns();
				on_backpressure(st, seq, t_first, &spins);
				continue;
			}
			if (got < 0)
				die_muon((int)got, "muon_publish(%zu bytes) "
					 "for seq %" PRIu64, len, seq);
			break;
		}
	}
	if ((uint64_t)got != seq)
		die("publish returned seq %" PRId64 ", expected %" PRIu64,
		    got, seq);
	if (t_first) {
		stall = now_ns() - t_first;
		if (stall > st->max_stall_ns)
			st->max_stall_ns = stall;
	}
	st->next_seq++;
	st->msgs++;
	st->bytes += len;
	poll_ctx(st);
	rate_limit(st, len);
}

/* --api publishv: batches of 1 to PUB_BATCH_MAX messages, the size of
 * each drawn from the sequence so that a run is reproducible. */
#define PUB_BATCH_MAX 32u

static unsigned batch_size(uint64_t seq, uint64_t left)
{
	uint64_t k = 1 + ((seq * 0x9e3779b97f4a7c15ull) >> 59); /* 1..32 */

	return (unsigned)(k < left ? k : left);
}

/* Publish the n messages from st->next_seq with muon_publishv(), going on
 * after back-pressure cut a batch short. */
static void publish_batch(struct pub_state *st, unsigned n)
{
	uint64_t first_seq = st->next_seq, t_first = 0, stall, bytes = 0;
	size_t slot = (size_t)st->sizes.size + 8;
	unsigned i, done = 0, spins = 0;
	int64_t first;

	for (i = 0; i < n; i++) {
		size_t len = pattern_len(&st->pat, first_seq + i);

		pattern_fill(&st->pat, first_seq + i, st->batch_buf + i * slot);
		st->batch_iov[i] = (muon_iov_t){st->batch_buf + i * slot, len};
		bytes += len;
	}
	while (done < n) {
		int got = muon_publishv(st->pub, st->batch_iov + done,
					n - done, &first);

		if (got == MUON_EBACKPRESSURE) {
			if (!t_first)
				t_first = now_ns();
			on_backpressure(st, first_seq + done, t_first, &spins);
			continue;
		}
		if (got <= 0)
			die_muon(got, "muon_publishv(%u messages) from seq %"
				 PRIu64, n - done, first_seq + done);
		if ((uint64_t)first != first_seq + done)
			die("muon_publishv: first_seq %" PRId64 ", expected %"
			    PRIu64, first, first_seq + done);
		done += (unsigned)got;
	}
	if (t_first) {
		stall = now_ns() - t_first;
		if (stall > st->max_stall_ns)
			st->max_stall_ns = stall;
	}
	st->next_seq += n;
	st->msgs += n;
	st->bytes += bytes;
	poll_ctx(st);
	rate_limit(st, bytes);
}

static void publish_range(struct pub_state *st, uint64_t n)
{
	uint64_t i, next_note = 0;

	st->rate_t0 = now_ns();
	st->rate_bytes = 0;
	for (i = 0; i < n;) {
		if (st->o.use_batch) {
			unsigned k = batch_size(st->next_seq, n - i);

			publish_batch(st, k);
			i += k;
		} else {
			publish_one(st);
			i++;
		}
		if (i >= next_note) {
			progress(st, "publishing");
			next_note = i + 1024;
		}
	}
}

static void wait_subscribers(struct pub_state *st)
{
	uint64_t deadline = now_ns() + (uint64_t)st->o.wait_subs_ms * 1000000;
	int n;

	for (;;) {
		n = muon_pub_subscribers(st->pub);
		if (n < 0)
			die_muon(n, "muon_pub_subscribers");
		if ((uint32_t)n >= st->o.subscribers)
			break;
		if (now_ns() > deadline)
			die("waited %u ms for %u subscriber(s) on topic '%s' "
			    "(muon_pub_subscribers), have %d",
			    st->o.wait_subs_ms, st->o.subscribers,
			    st->o.topic, n);
		if (poll_ctx(st) == 0)
			wait_ctx(st->ctx, -1, 1);
		progress(st, "waiting for subscribers");
	}
	if ((uint32_t)n != st->o.subscribers)
		die("muon_pub_subscribers() = %d, expected exactly %u", n,
		    st->o.subscribers);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: muon-itest pub --transport T --listen EP --topic T "
		"--seed S [options]\n"
		"  --count N --pre-count N --subscribers K\n"
		"  --sizes random|fixed:N --max-size B --max-msg-size B\n"
		"  --send-log-size B --slow-policy bp|drop "
		"--slow-timeout-ms MS\n"
		"  --rate-mbps R --api publish|claim|publishv "
		"--max-stall-ms MS\n"
		"  --wait-subs-ms MS --allow-errors --shm-dir D "
		"--log-level L --name N\n"
		"  --discovery DAEMONS (register with muond)\n");
	exit(2);
}

int pub_main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"transport", 1, 0, 't'},    {"listen", 1, 0, 'l'},
		{"topic", 1, 0, 'T'},        {"seed", 1, 0, 's'},
		{"count", 1, 0, 'n'},        {"pre-count", 1, 0, 'p'},
		{"subscribers", 1, 0, 'k'},  {"sizes", 1, 0, 'z'},
		{"max-size", 1, 0, 'm'},     {"max-msg-size", 1, 0, 'M'},
		{"send-log-size", 1, 0, 'L'}, {"slow-policy", 1, 0, 'P'},
		{"slow-timeout-ms", 1, 0, 'o'}, {"rate-mbps", 1, 0, 'r'},
		{"api", 1, 0, 'a'},          {"max-stall-ms", 1, 0, 'S'},
		{"wait-subs-ms", 1, 0, 'w'}, {"allow-errors", 0, 0, 'E'},
		{"shm-dir", 1, 0, 'd'},      {"log-level", 1, 0, 'v'},
		{"name", 1, 0, 'N'},         {"discovery", 1, 0, 'D'},
		{"secret-file", 1, 0, 'F'},  {0, 0, 0, 0},
	};
	static struct pub_state st;
	struct pub_opts *o = &st.o;
	muon_ctx_config_t cfg;
	muon_pub_config_t pcfg;
	muon_counters_t c;
	char ep[256];
	uint64_t t0;
	double secs;
	int opt, rc, subs_at_finish;

	o->transport = "auto";
	o->topic = "itest";
	o->sizes_text = "random";
	o->name = "pub";
	o->max_size = 65536;
	o->count = 1000;
	o->wait_subs_ms = 20000;
	o->log_level = MUON_LOG_WARN;
	o->slow_policy = MUON_SLOW_BACKPRESSURE;

	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 't': o->transport = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'D': o->discovery = optarg; break;
		case 'F': o->secret_file = optarg; break;
		case 'T': o->topic = optarg; break;
		case 's': o->seed = opt_u64("--seed", optarg); break;
		case 'n': o->count = opt_u64("--count", optarg); break;
		case 'p': o->pre_count = opt_u64("--pre-count", optarg); break;
		case 'k': o->subscribers = opt_u32("--subscribers", optarg);
			break;
		case 'z': o->sizes_text = optarg; break;
		case 'm': o->max_size = opt_u32("--max-size", optarg); break;
		case 'M': o->max_msg_size = opt_u32("--max-msg-size", optarg);
			break;
		case 'L': o->send_log_size = opt_u32("--send-log-size",
						     optarg);
			break;
		case 'P':
			if (strcmp(optarg, "bp") == 0)
				o->slow_policy = MUON_SLOW_BACKPRESSURE;
			else if (strcmp(optarg, "drop") == 0)
				o->slow_policy = MUON_SLOW_DROP;
			else
				die("--slow-policy: bp or drop");
			break;
		case 'o': o->slow_timeout_ms = opt_u32("--slow-timeout-ms",
						       optarg);
			break;
		case 'r': o->rate_mbps = opt_u32("--rate-mbps", optarg); break;
		case 'a':
			if (strcmp(optarg, "claim") == 0)
				o->use_claim = 1;
			else if (strcmp(optarg, "publishv") == 0)
				o->use_batch = 1;
			else if (strcmp(optarg, "publish") != 0)
				die("--api: publish, claim or publishv");
			break;
		case 'S': o->max_stall_ms = opt_u32("--max-stall-ms", optarg);
			break;
		case 'w': o->wait_subs_ms = opt_u32("--wait-subs-ms", optarg);
			break;
		case 'E': o->allow_errors = 1; break;
		case 'd': o->shm_dir = optarg; break;
		case 'v': o->log_level = (int)opt_u32("--log-level", optarg);
			break;
		case 'N': o->name = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || !o->listen || o->seed == 0)
		usage();
	set_role_name(o->name);
	if (parse_sizes(o->sizes_text, o->max_size, &st.sizes) != 0)
		die("bad --sizes '%s'", o->sizes_text);
	if (fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) != 0)
		die("fcntl(stdin): %s", strerror(errno));

	muon_ctx_config_init(&cfg);
	cfg.name = o->name;
	cfg.ctx_id = o->seed;
	cfg.listen = o->listen;
	cfg.discovery = o->discovery;
	cfg.secret_file = o->secret_file;
	cfg.transport = o->transport;
	cfg.ignore_env = 1;
	cfg.log_level = (muon_log_level_t)o->log_level;
	cfg.log_fn = log_to_stderr;
	if (o->shm_dir)
		cfg.shm_dir = o->shm_dir;
	if (o->max_msg_size)
		cfg.max_msg_size = o->max_msg_size;
	rc = muon_ctx_create(&cfg, &st.ctx);
	if (rc != MUON_OK)
		die_muon(rc, "muon_ctx_create(listen=%s, transport=%s)",
			 o->listen, o->transport);
	if (muon_ctx_id(st.ctx) != o->seed)
		die("muon_ctx_id() = %" PRIu64 ", configured ctx_id %" PRIu64,
		    muon_ctx_id(st.ctx), o->seed);

	muon_pub_config_init(&pcfg);
	pcfg.slow_policy = (muon_slow_policy_t)o->slow_policy;
	if (o->send_log_size)
		pcfg.send_log_size = o->send_log_size;
	if (o->slow_timeout_ms)
		pcfg.slow_timeout_ms = o->slow_timeout_ms;
	pcfg.event_fn = pub_event;
	pcfg.event_arg = &st;
	rc = muon_pub_create(st.ctx, o->topic, &pcfg, &st.pub);
	if (rc != MUON_OK)
		die_muon(rc, "muon_pub_create(topic=%s, send_log_size=%u)",
			 o->topic, o->send_log_size);

	rc = muon_ctx_listen_endpoint(st.ctx, 0, ep, sizeof(ep));
	if (rc != MUON_OK)
		die_muon(rc, "muon_ctx_listen_endpoint(0)");
	if (pattern_init(&st.pat, muon_ctx_id(st.ctx),
			 muon_pub_stream_id(st.pub), &st.sizes) != 0)
		die("out of memory for the payload pattern");
	st.scratch = malloc((size_t)st.sizes.size + 8);
	if (!st.scratch)
		die("out of memory");
	if (o->use_batch) {
		st.batch_buf = malloc(PUB_BATCH_MAX *
				      ((size_t)st.sizes.size + 8));
		st.batch_iov = calloc(PUB_BATCH_MAX, sizeof(*st.batch_iov));
		if (!st.batch_buf || !st.batch_iov)
			die("out of memory for batches of %u", PUB_BATCH_MAX);
	}
	st.next_seq = 1;
	note("listening on %s, id %" PRIu64 ", stream %u, topic '%s', "
	     "sizes %s max %u, policy %s, send log %u, api %s",
	     ep, muon_ctx_id(st.ctx), muon_pub_stream_id(st.pub), o->topic,
	     o->sizes_text, st.sizes.size,
	     o->slow_policy == MUON_SLOW_DROP ? "drop" : "backpressure",
	     o->send_log_size,
	     o->use_claim ? "claim" : o->use_batch ? "publishv" : "publish");
	proto("LISTEN endpoint=%s id=%" PRIu64 " stream=%u", ep,
	      muon_ctx_id(st.ctx), muon_pub_stream_id(st.pub));

	if (o->pre_count) {
		publish_range(&st, o->pre_count);
		note("published %" PRIu64 " messages before any subscriber",
		     o->pre_count);
		proto("PRE_DONE last=%" PRIu64, st.next_seq - 1);
	}

	wait_command(&st, &st.got_go);
	wait_subscribers(&st);
	note("%u subscriber(s) connected, publishing %" PRIu64 " messages",
	     o->subscribers, o->count);
	st.msgs = st.bytes = 0;
	t0 = now_ns();
	publish_range(&st, o->count);
	secs = (double)(now_ns() - t0) / 1e9;
	note("published %" PRIu64 " messages, %.1f MB in %.2f s "
	     "(%.0f msg/s, %.0f MB/s), max back-pressure stall %.1f ms",
	     st.msgs, (double)st.bytes / 1e6, secs,
	     secs > 0 ? (double)st.msgs / secs : 0.0,
	     secs > 0 ? (double)st.bytes / 1e6 / secs : 0.0,
	     (double)st.max_stall_ns / 1e6);
	proto("DONE last=%" PRIu64 " msgs=%" PRIu64 " bytes=%" PRIu64
	      " secs=%.3f",
	      st.next_seq - 1, st.msgs, st.bytes, secs);

	wait_command(&st, &st.got_finish);
	subs_at_finish = muon_pub_subscribers(st.pub);
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	rc = muon_ctx_counters(st.ctx, &c);
	if (rc != MUON_OK)
		die_muon(rc, "muon_ctx_counters");
	proto("PUBSTATS sent=%" PRIu64 " bytes_sent=%" PRIu64
	      " backpressure=%" PRIu64 " bp_retries=%" PRIu64
	      " bp_events=%" PRIu64 " slow_drops=%" PRIu64
	      " slow_drop_events=%" PRIu64 " connects=%" PRIu64
	      " disconnects=%" PRIu64 " replays=%" PRIu64
	      " proto_errors=%" PRIu64 " max_stall_ms=%.1f subscribers=%d",
	      c.msgs_sent, c.bytes_sent, c.backpressure, st.bp_retries,
	      st.bp_events, c.slow_drops, st.slow_drop_events, c.connects,
	      c.disconnects, c.replays, c.proto_errors,
	      (double)st.max_stall_ns / 1e6, subs_at_finish);
	if (c.msgs_sent != o->pre_count + o->count)
		die("counters.msgs_sent = %" PRIu64 ", published %" PRIu64,
		    c.msgs_sent, o->pre_count + o->count);
	muon_pub_destroy(st.pub);
	muon_ctx_destroy(st.ctx);
	pattern_free(&st.pat);
	free(st.scratch);
	free(st.batch_buf);
	free(st.batch_iov);
	note("finished");
	return 0;
}
