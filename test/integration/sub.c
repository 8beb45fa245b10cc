/*
 * Role "sub": one context, one subscription; every message is regenerated
 * from (publisher_id, stream_id, seq) and compared byte for byte, and the
 * sequence numbers of every stream must be consecutive from the expected
 * first one to the expected last one (gaps only where a LOSS event says so,
 * when losses are allowed).
 *
 *   --expect ID:FIRST:LAST   one per expected stream (publisher id = the
 *                            publisher's seed / ctx_id)
 *   prints "UP images=K" once all expected images are up, "MARK
 *   received=N" after --mark messages, and "RESULT ..." when every stream
 *   is complete; exits 0 only if every check passed.
 */
#include "itest.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 16

struct stream {
	uint64_t pub_id;
	uint32_t stream_id;
	int bound;           /* stream_id known (an IMAGE_UP was seen) */
	int up;
	int done;
	uint64_t first;      /* expected first seq */
	uint64_t last;       /* expected last seq */
	uint64_t next_seq;   /* next seq expected */
	uint64_t first_delivered;
	uint64_t msgs;
	uint64_t bytes;
	uint64_t losses;
	uint64_t lost;
	uint64_t ups;
	uint64_t downs;
	uint64_t image_msgs; /* messages in the current image */
	pattern_t pat;
};

struct sub_opts {
	const char *transport;
	const char *peers;
	const char *discovery;
	const char *secret_file;
	const char *topic;
	const char *shm_dir;
	const char *name;
	const char *sizes_text;
	uint32_t max_size;
	uint32_t ring_size;
	int start;
	uint64_t start_seq;
	uint64_t mark;
	uint64_t sleep_after;
	uint32_t sleep_ms;
	uint32_t max_gap_ms;
	uint32_t wait_up_ms;
	int allow_loss;
	int expect_loss;
	uint64_t loss_from, loss_min_to, loss_max_to;
	int expect_down;
	int allow_errors;
	int log_level;
};

struct sub_state {
	struct sub_opts o;
	size_spec_t sizes;
	muon_ctx_t *ctx;
	muon_sub_t *sub;
	struct stream streams[MAX_STREAMS];
	int nstreams;
	int nbound;
	int images_up;
	int ndone;
	struct stream *cache;
	uint64_t total_msgs;
	uint64_t total_bytes;
	uint64_t total_losses;
	uint64_t total_lost;
	uint64_t total_downs;
	uint64_t t_first;
	uint64_t t_last;
	uint64_t max_gap_ns;
	int slept;
	int marked;
};

static struct sub_state S;

static struct stream *find_stream(uint64_t pub_id, uint32_t stream_id,
				  const char *what)
{
	struct stream *s = S.cache;
	int i;

	if (s && s->pub_id == pub_id && s->stream_id == stream_id &&
	    s->bound)
		return s;
	for (i = 0; i < S.nstreams; i++) {
		s = &S.streams[i];
		if (s->pub_id != pub_id)
			continue;
		if (s->bound && s->stream_id != stream_id)
			die("%s from publisher %" PRIu64 " stream %u, but that "
			    "publisher's stream is %u (one stream per "
			    "publisher expected)",
			    what, pub_id, stream_id, s->stream_id);
		if (!s->bound)
			die("%s for publisher %" PRIu64 " stream %u before its "
			    "IMAGE_UP event",
			    what, pub_id, stream_id);
		S.cache = s;
		return s;
	}
	die("%s from unexpected publisher %" PRIu64 " stream %u", what,
	    pub_id, stream_id);
}

static void check_topic(const char *topic, const char *what)
{
	if (!topic || strcmp(topic, S.o.topic) != 0)
		die("%s carries topic '%s', subscribed to '%s'", what,
		    topic ? topic : "(null)", S.o.topic);
}

static void stream_complete(struct stream *s)
{
	if (s->next_seq > s->last && !s->done) {
		s->done = 1;
		S.ndone++;
	}
}

static void on_msg(void *arg, const muon_msg_t *m)
{
	struct stream *s;
	uint64_t now = now_ns();
	long bad;

	(void)arg;
	s = find_stream(m->publisher_id, m->stream_id, "message");
	if (!s->up)
		die("message seq %" PRIu64 " from publisher %" PRIu64
		    " while its image is down",
		    m->seq, m->publisher_id);
	if (m->seq != s->next_seq) {
		if (m->seq < s->next_seq)
			die("duplicate or reordered message: publisher %" PRIu64
			    " stream %u seq %" PRIu64 ", expected %" PRIu64,
			    s->pub_id, s->stream_id, m->seq, s->next_seq);
		die("gap without LOSS event: publisher %" PRIu64 " stream %u "
		    "seq %" PRIu64 ", expected %" PRIu64 " (%" PRIu64
		    " messages missing)",
		    s->pub_id, s->stream_id, m->seq, s->next_seq,
		    m->seq - s->next_seq);
	}
	if (m->seq > s->last)
		die("message seq %" PRIu64 " beyond the last one published "
		    "(%" PRIu64 ") from publisher %" PRIu64,
		    m->seq, s->last, s->pub_id);
	if (s->msgs == 0 && s->losses == 0 && S.o.expect_loss)
		die("expected a LOSS event before the first message, got seq "
		    "%" PRIu64, m->seq);
	bad = pattern_check(&s->pat, m->seq, m->data, m->len);
	if (bad >= 0) {
		size_t want = pattern_len(&s->pat, m->seq);

		if (m->len != want)
			die("publisher %" PRIu64 " seq %" PRIu64 ": length %zu, "
			    "expected %zu",
			    s->pub_id, m->seq, m->len, want);
		die("publisher %" PRIu64 " seq %" PRIu64 " (len %zu): payload "
		    "differs at byte %ld (got 0x%02x)",
		    s->pub_id, m->seq, m->len, bad,
		    ((const uint8_t *)m->data)[bad]);
	}
	if (!S.t_first)
		S.t_first = now;
	else if (now - S.t_last > S.max_gap_ns)
		S.max_gap_ns = now - S.t_last;
	S.t_last = now;
	if (s->msgs == 0)
		s->first_delivered = m->seq;
	if (S.o.max_gap_ms && S.max_gap_ns > S.o.max_gap_ms * 1000000ull)
		die("%.0f ms without a message before seq %" PRIu64
		    " (limit %u ms): the stream stalled",
		    (double)S.max_gap_ns / 1e6, m->seq, S.o.max_gap_ms);
	s->next_seq++;
	s->msgs++;
	s->image_msgs++;
	s->bytes += m->len;
	S.total_msgs++;
	S.total_bytes += m->len;
	stream_complete(s);
	if (S.o.mark && !S.marked && S.total_msgs >= S.o.mark) {
		S.marked = 1;
		proto("MARK received=%" PRIu64, S.total_msgs);
	}
	if (S.o.sleep_after && !S.slept && S.total_msgs >= S.o.sleep_after) {
		struct timespec ts;

		S.slept = 1;
		note("sleeping %u ms inside the callback after %" PRIu64
		     " messages",
		     S.o.sleep_ms, S.total_msgs);
		ts.tv_sec = S.o.sleep_ms / 1000;
		ts.tv_nsec = (long)(S.o.sleep_ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		S.t_last = now_ns(); /* the deliberate sleep is no stall */
	}
}

static void on_image_up(const muon_event_t *ev)
{
	struct stream *s = NULL;
	int i;

	for (i = 0; i < S.nstreams; i++)
		if (S.streams[i].pub_id == ev->publisher_id)
			s = &S.streams[i];
	if (!s)
		die("IMAGE_UP from unexpected publisher %" PRIu64
		    " stream %u",
		    ev->publisher_id, ev->stream_id);
	if (!s->bound) {
		s->stream_id = ev->stream_id;
		s->bound = 1;
		S.nbound++;
		if (pattern_init(&s->pat, s->pub_id, s->stream_id,
				 &S.sizes) != 0)
			die("out of memory for a payload pattern");
	} else if (s->stream_id != ev->stream_id) {
		die("IMAGE_UP from publisher %" PRIu64 " stream %u, but that "
		    "publisher's stream is %u",
		    ev->publisher_id, ev->stream_id, s->stream_id);
	}
	if (s->up)
		die("IMAGE_UP for publisher %" PRIu64 " stream %u, whose image "
		    "is already up",
		    s->pub_id, s->stream_id);
	s->up = 1;
	s->ups++;
	s->image_msgs = 0;
	S.images_up++;
	if (s->ups == 1) {
		if (S.o.expect_loss) {
			if (ev->from_seq < S.o.loss_from ||
			    ev->from_seq > S.o.loss_max_to + 1)
				die("IMAGE_UP from_seq %" PRIu64 " outside "
				    "[%" PRIu64 ", %" PRIu64 "]",
				    ev->from_seq, S.o.loss_from,
				    S.o.loss_max_to + 1);
		} else if (ev->from_seq != s->first) {
			die("IMAGE_UP from publisher %" PRIu64 " says the "
			    "first sequence delivered will be %" PRIu64
			    ", expected %" PRIu64,
			    s->pub_id, ev->from_seq, s->first);
		}
	}
	note("IMAGE_UP publisher %" PRIu64 " stream %u from_seq %" PRIu64
	     " (next expected %" PRIu64 "): %s",
	     s->pub_id, s->stream_id, ev->from_seq, s->next_seq, ev->detail);
}

static void on_image_down(const muon_event_t *ev)
{
	struct stream *s = find_stream(ev->publisher_id, ev->stream_id,
				       "IMAGE_DOWN");

	note("IMAGE_DOWN publisher %" PRIu64 " stream %u reason %s to_seq "
	     "%" PRIu64 " (last delivered %" PRIu64 "): %s",
	     s->pub_id, s->stream_id, muon_down_reason_name(ev->reason),
	     ev->to_seq, s->next_seq - 1, ev->detail);
	if (!s->up)
		die("IMAGE_DOWN for an image that is not up");
	if (!S.o.expect_down)
		die("unexpected IMAGE_DOWN (reason %s) from publisher %" PRIu64
		    " after seq %" PRIu64 ": %s",
		    muon_down_reason_name(ev->reason), s->pub_id, s->next_seq - 1,
		    ev->detail);
	if (ev->reason != MUON_DOWN_SLOW &&
	    ev->reason != MUON_DOWN_DISCONNECTED)
		die("IMAGE_DOWN reason %d (%s), expected SLOW or "
		    "DISCONNECTED",
		    ev->reason, muon_down_reason_name(ev->reason));
	if (ev->to_seq != s->next_seq - 1 &&
	    !(ev->to_seq == 0 && s->image_msgs == 0))
		die("IMAGE_DOWN to_seq %" PRIu64 ", but the last sequence "
		    "delivered is %" PRIu64,
		    ev->to_seq, s->next_seq - 1);
	s->up = 0;
	s->downs++;
	S.total_downs++;
	S.images_up--;
}

static void on_loss(const muon_event_t *ev)
{
	struct stream *s = find_stream(ev->publisher_id, ev->stream_id,
				       "LOSS");

	note("LOSS publisher %" PRIu64 " stream %u [%" PRIu64 ", %" PRIu64
	     "] (next expected %" PRIu64 "): %s",
	     s->pub_id, s->stream_id, ev->from_seq, ev->to_seq, s->next_seq,
	     ev->detail);
	if (!s->up)
		die("LOSS event while the image is down");
	if (ev->to_seq < ev->from_seq)
		die("LOSS [%" PRIu64 ", %" PRIu64 "] is an empty range",
		    ev->from_seq, ev->to_seq);
	if (S.o.expect_loss) {
		if (s->losses != 0 || s->msgs != 0)
			die("LOSS event after %" PRIu64 " losses and %" PRIu64
			    " messages; expected exactly one, before the "
			    "first message",
			    s->losses, s->msgs);
		if (ev->from_seq != S.o.loss_from)
			die("LOSS from_seq %" PRIu64 ", expected %" PRIu64,
			    ev->from_seq, S.o.loss_from);
		if (ev->to_seq < S.o.loss_min_to ||
		    ev->to_seq > S.o.loss_max_to)
			die("LOSS to_seq %" PRIu64 " outside [%" PRIu64
			    ", %" PRIu64 "], what the send log can hold",
			    ev->to_seq, S.o.loss_min_to, S.o.loss_max_to);
	} else if (!S.o.allow_loss) {
		die("unexpected LOSS [%" PRIu64 ", %" PRIu64 "] from "
		    "publisher %" PRIu64,
		    ev->from_seq, ev->to_seq, s->pub_id);
	}
	if (ev->from_seq != s->next_seq)
		die("LOSS starts at %" PRIu64 ", but the next sequence "
		    "expected is %" PRIu64,
		    ev->from_seq, s->next_seq);
	if (ev->to_seq > s->last)
		die("LOSS ends at %" PRIu64 ", beyond the last published "
		    "seq %" PRIu64,
		    ev->to_seq, s->last);
	s->losses++;
	s->lost += ev->to_seq - ev->from_seq + 1;
	S.total_losses++;
	S.total_lost += ev->to_seq - ev->from_seq + 1;
	s->next_seq = ev->to_seq + 1;
	stream_complete(s);
}

static void on_event(void *arg, const muon_event_t *ev)
{
	(void)arg;
	switch (ev->type) {
	case MUON_EVENT_IMAGE_UP:
		check_topic(ev->topic, "IMAGE_UP");
		on_image_up(ev);
		break;
	case MUON_EVENT_IMAGE_DOWN:
		check_topic(ev->topic, "IMAGE_DOWN");
		on_image_down(ev);
		break;
	case MUON_EVENT_LOSS:
		check_topic(ev->topic, "LOSS");
		on_loss(ev);
		break;
	case MUON_EVENT_ERROR:
		note("event ERROR reason=%d: %s", ev->reason, ev->detail);
		if (!S.o.allow_errors)
			die("unexpected ERROR event: %s", ev->detail);
		break;
	default:
		note("event %s (%d): %s", muon_event_name(ev->type), ev->type,
		     ev->detail);
		break;
	}
}

static void add_expect(const char *spec)
{
	struct stream *s;
	char buf[128], *a, *b;

	if (S.nstreams >= MAX_STREAMS)
		die("too many --expect");
	snprintf(buf, sizeof(buf), "%s", spec);
	a = strchr(buf, ':');
	b = a ? strchr(a + 1, ':') : NULL;
	if (!a || !b)
		die("--expect ID:FIRST:LAST, got '%s'", spec);
	*a++ = '\0';
	*b++ = '\0';
	s = &S.streams[S.nstreams++];
	s->pub_id = opt_u64("--expect ID", buf);
	s->first = opt_u64("--expect FIRST", a);
	s->last = opt_u64("--expect LAST", b);
	s->next_seq = s->first;
	if (s->first == 0 || s->last + 1 < s->first)
		die("--expect '%s': bad range", spec);
}

static void parse_loss(const char *spec)
{
	char buf[128], *a, *b;

	snprintf(buf, sizeof(buf), "%s", spec);
	a = strchr(buf, ':');
	b = a ? strchr(a + 1, ':') : NULL;
	if (!a || !b)
		die("--expect-loss FROM:MINTO:MAXTO, got '%s'", spec);
	*a++ = '\0';
	*b++ = '\0';
	S.o.expect_loss = 1;
	S.o.loss_from = opt_u64("--expect-loss FROM", buf);
	S.o.loss_min_to = opt_u64("--expect-loss MINTO", a);
	S.o.loss_max_to = opt_u64("--expect-loss MAXTO", b);
}

/* A line on stderr every few seconds, so a timeout shows where it hung. */
static void progress(void)
{
	static uint64_t next;
	uint64_t now = now_ns();
	int i;

	if (!next)
		next = now + 5000000000ull;
	if (now < next)
		return;
	next = now + 5000000000ull;
	for (i = 0; i < S.nstreams; i++)
		note("progress: publisher %" PRIu64 " stream %s next seq %"
		     PRIu64 " of %" PRIu64 ", %" PRIu64 " delivered, %"
		     PRIu64 " lost",
		     S.streams[i].pub_id, S.streams[i].up ? "up" : "down",
		     S.streams[i].next_seq, S.streams[i].last,
		     S.streams[i].msgs, S.streams[i].lost);
}

static int poll_once(void)
{
	int rc = muon_ctx_poll(S.ctx, 0);

	if (rc < 0)
		die_muon(rc, "muon_ctx_poll");
	return rc;
}

static void idle(unsigned *spins)
{
	if ((*spins)++ < 64)
		return;
	wait_ctx(S.ctx, -1, 5);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: muon-itest sub --transport T --peers EPS|--discovery "
		"DAEMONS\n  --topic T --expect ID:FIRST:LAST... [options]\n"
		"  --sizes random|fixed:N --max-size B\n"
		"  --start latest|earliest|seq:N --mark N\n"
		"  --sleep-after N --sleep-ms MS --max-gap-ms MS "
		"--wait-up-ms MS\n"
		"  --allow-loss --expect-loss FROM:MINTO:MAXTO --expect-down\n"
		"  --allow-errors --ring-size B --shm-dir D --log-level L "
		"--name N\n");
	exit(2);
}

int sub_main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"transport", 1, 0, 't'},   {"peers", 1, 0, 'p'},
		{"topic", 1, 0, 'T'},       {"expect", 1, 0, 'e'},
		{"sizes", 1, 0, 'z'},       {"max-size", 1, 0, 'm'},
		{"start", 1, 0, 'b'},       {"mark", 1, 0, 'k'},
		{"sleep-after", 1, 0, 'a'}, {"sleep-ms", 1, 0, 'A'},
		{"max-gap-ms", 1, 0, 'g'},  {"wait-up-ms", 1, 0, 'w'},
		{"allow-loss", 0, 0, 'l'},  {"expect-loss", 1, 0, 'L'},
		{"expect-down", 0, 0, 'D'}, {"allow-errors", 0, 0, 'E'},
		{"shm-dir", 1, 0, 'd'},     {"log-level", 1, 0, 'v'},
		{"name", 1, 0, 'N'},        {"ring-size", 1, 0, 'R'},
		{"discovery", 1, 0, 'Y'},   {"secret-file", 1, 0, 'F'},
		{0, 0, 0, 0},
	};
	struct sub_opts *o = &S.o;
	muon_ctx_config_t cfg;
	muon_sub_config_t scfg;
	muon_counters_t c;
	uint64_t deadline;
	unsigned spins = 0;
	double secs;
	int opt, rc, i, n;

	o->transport = "auto";
	o->topic = "itest";
	o->sizes_text = "random";
	o->name = "sub";
	o->max_size = 65536;
	o->wait_up_ms = 20000;
	o->log_level = MUON_LOG_WARN;
	o->start = MUON_START_LATEST;

	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 't': o->transport = optarg; break;
		case 'p': o->peers = optarg; break;
		case 'Y': o->discovery = optarg; break;
		case 'F': o->secret_file = optarg; break;
		case 'T': o->topic = optarg; break;
		case 'e': add_expect(optarg); break;
		case 'z': o->sizes_text = optarg; break;
		case 'm': o->max_size = opt_u32("--max-size", optarg); break;
		case 'b':
			if (strcmp(optarg, "latest") == 0) {
				o->start = MUON_START_LATEST;
			} else if (strcmp(optarg, "earliest") == 0) {
				o->start = MUON_START_EARLIEST;
			} else if (strncmp(optarg, "seq:", 4) == 0) {
				o->start = MUON_START_SEQ;
				o->start_seq = opt_u64("--start seq",
						       optarg + 4);
			} else {
				die("--start latest|earliest|seq:N");
			}
			break;
		case 'k': o->mark = opt_u64("--mark", optarg); break;
		case 'a': o->sleep_after = opt_u64("--sleep-after", optarg);
			break;
		case 'A': o->sleep_ms = opt_u32("--sleep-ms", optarg); break;
		case 'g': o->max_gap_ms = opt_u32("--max-gap-ms", optarg);
			break;
		case 'w': o->wait_up_ms = opt_u32("--wait-up-ms", optarg);
			break;
		case 'l': o->allow_loss = 1; break;
		case 'L': parse_loss(optarg); break;
		case 'D': o->expect_down = 1; break;
		case 'E': o->allow_errors = 1; break;
		case 'd': o->shm_dir = optarg; break;
		case 'v': o->log_level = (int)opt_u32("--log-level", optarg);
			break;
		case 'N': o->name = optarg; break;
		case 'R': o->ring_size = opt_u32("--ring-size", optarg); break;
		default: usage();
		}
	}
	if (optind != argc || (!o->peers && !o->discovery) ||
	    S.nstreams == 0)
		usage();
	set_role_name(o->name);
	if (parse_sizes(o->sizes_text, o->max_size, &S.sizes) != 0)
		die("bad --sizes '%s'", o->sizes_text);

	muon_ctx_config_init(&cfg);
	cfg.name = o->name;
	cfg.peers = o->peers;
	cfg.discovery = o->discovery;
	cfg.secret_file = o->secret_file;
	cfg.transport = o->transport;
	cfg.ignore_env = 1;
	cfg.log_level = (muon_log_level_t)o->log_level;
	cfg.log_fn = log_to_stderr;
	if (o->shm_dir)
		cfg.shm_dir = o->shm_dir;
	if (o->ring_size)
		cfg.ring_size = o->ring_size;
	rc = muon_ctx_create(&cfg, &S.ctx);
	if (rc != MUON_OK)
		die_muon(rc, "muon_ctx_create(peers=%s, transport=%s)",
			 o->peers, o->transport);

	muon_sub_config_init(&scfg);
	scfg.msg_fn = on_msg;
	scfg.event_fn = on_event;
	scfg.start = (muon_start_t)o->start;
	scfg.start_seq = o->start_seq;
	rc = muon_sub_create(S.ctx, o->topic, &scfg, &S.sub);
	if (rc != MUON_OK)
		die_muon(rc, "muon_sub_create(topic=%s)", o->topic);

	/* Readiness: every expected image up. */
	deadline = now_ns() + (uint64_t)o->wait_up_ms * 1000000ull;
	for (;;) {
		n = muon_sub_images(S.sub);
		if (n < 0)
			die_muon(n, "muon_sub_images");
		if (S.images_up == S.nstreams && n == S.nstreams)
			break;
		if (now_ns() > deadline)
			die("waited %u ms for %d image(s) (IMAGE_UP events) "
			    "from peers %s on topic '%s': %d IMAGE_UP events, "
			    "muon_sub_images() = %d",
			    o->wait_up_ms, S.nstreams, o->peers, o->topic,
			    S.images_up, n);
		if (poll_once() > 0)
			spins = 0;
		else
			idle(&spins);
		progress();
	}
	proto("UP images=%d", n);

	while (S.ndone < S.nstreams) {
		progress();
		if (poll_once() > 0) {
			spins = 0;
			continue;
		}
		if (o->max_gap_ms && S.t_first &&
		    now_ns() - S.t_last > o->max_gap_ms * 1000000ull)
			die("no message for %u ms after %" PRIu64 " messages: "
			    "the stream stalled",
			    o->max_gap_ms, S.total_msgs);
		idle(&spins);
	}
	secs = S.t_first ? (double)(S.t_last - S.t_first) / 1e9 : 0.0;

	for (i = 0; i < S.nstreams; i++) {
		struct stream *s = &S.streams[i];

		note("stream publisher %" PRIu64 " stream %u: seqs %" PRIu64
		     "..%" PRIu64 ", %" PRIu64 " delivered from %" PRIu64
		     ", %" PRIu64 " lost in %" PRIu64 " LOSS events, %" PRIu64
		     " MB, %" PRIu64 " ups, %" PRIu64 " downs",
		     s->pub_id, s->stream_id, s->first, s->last, s->msgs,
		     s->first_delivered, s->lost, s->losses, s->bytes >> 20,
		     s->ups, s->downs);
		if (s->msgs + s->lost != s->last - s->first + 1)
			die("delivered %" PRIu64 " + lost %" PRIu64 " != %" PRIu64
			    " published",
			    s->msgs, s->lost, s->last - s->first + 1);
		if (o->expect_loss) {
			if (s->losses != 1)
				die("expected exactly one LOSS event, got %" PRIu64,
				    s->losses);
			if (s->first + s->lost != s->first_delivered)
				die("LOSS ended at %" PRIu64 " but the first "
				    "delivered seq is %" PRIu64,
				    s->first + s->lost - 1, s->first_delivered);
		}
		if (o->expect_down && s->downs == 0)
			die("expected the publisher to cut this slow "
			    "subscriber loose (IMAGE_DOWN), it never did");
		pattern_free(&s->pat);
	}

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	rc = muon_ctx_counters(S.ctx, &c);
	if (rc != MUON_OK)
		die_muon(rc, "muon_ctx_counters");
	if (c.msgs_received != S.total_msgs ||
	    c.bytes_received != S.total_bytes)
		die("counters say %" PRIu64 " messages / %" PRIu64 " bytes "
		    "received, callbacks saw %" PRIu64 " / %" PRIu64,
		    c.msgs_received, c.bytes_received, S.total_msgs,
		    S.total_bytes);
	if (c.losses != S.total_losses || c.msgs_lost != S.total_lost)
		die("counters say %" PRIu64 " loss events / %" PRIu64
		    " messages lost, callbacks saw %" PRIu64 " / %" PRIu64,
		    c.losses, c.msgs_lost, S.total_losses, S.total_lost);

	note("received %" PRIu64 " messages, %.1f MB in %.2f s (%.0f msg/s, "
	     "%.0f MB/s), max gap %.1f ms",
	     S.total_msgs, (double)S.total_bytes / 1e6, secs,
	     secs > 0 ? (double)S.total_msgs / secs : 0.0,
	     secs > 0 ? (double)S.total_bytes / 1e6 / secs : 0.0,
	     (double)S.max_gap_ns / 1e6);
	proto("RESULT msgs=%" PRIu64 " bytes=%" PRIu64 " losses=%" PRIu64
	      " lost=%" PRIu64 " downs=%" PRIu64 " max_gap_ms=%.1f secs=%.3f"
	      " connects=%" PRIu64 " disconnects=%" PRIu64,
	      S.total_msgs, S.total_bytes, S.total_losses, S.total_lost,
	      S.total_downs, (double)S.max_gap_ns / 1e6, secs, c.connects,
	      c.disconnects);
	muon_sub_destroy(S.sub);
	muon_ctx_destroy(S.ctx);
	return 0;
}
