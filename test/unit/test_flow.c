/*
 * Flow control and sequence/loss tracking, in process: a publisher context
 * and a subscriber context joined over shm or tcp (127.0.0.1, port 0).
 * Every scenario runs on both transports.
 *
 *   backpressure   small ring and send log, subscriber not polled until
 *                  publish refuses; then everything arrives, in order
 *   slow_drop      MUON_SLOW_DROP never refuses; the subscriber is cut
 *   late_join      START_EARLIEST replays the send log; START_LATEST not
 *   loss           START_SEQ 1 after the log dropped the start: one LOSS
 *   claim_commit   zero-copy messages arrive as written
 *   coalesce       bursts on two streams of one connection, the send log
 *                  wrapping: byte for byte and in order; on tcp in far
 *                  fewer sends than messages
 *   poll_flushes   a burst followed by one publisher poll arrives whole
 *                  (nothing held back is stranded); a lone message on an
 *                  idle connection arrives without any publisher poll
 *   arm_flushes    muon_ctx_arm() pushes what was held back, and nothing
 *                  is held from arm to the next poll (the fd-waiting style)
 *   unpolled_drop  MUON_SLOW_DROP, a publisher that never polls and a
 *                  subscriber that keeps up: nobody is cut
 *   publishv       batches that end early at back-pressure and at a
 *                  message above max_msg_size, resumed with the rest (the
 *                  subscriber reads only when the publisher is refused):
 *                  everything accepted arrives once, in order; on tcp
 *                  and verbs a batch costs about one push
 *   publishv_drop  MUON_SLOW_DROP and batches twice the send log's size
 *                  to a subscriber that keeps up: nobody is cut
 */
#include "unit_util.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/muoni.h"

#define DEADLINE_MS 4000

static struct {
	muon_ctx_t *pc; /* publisher context */
	muon_ctx_t *sc; /* subscriber context */
	muon_ctx_t *sc2;
	char ep[128];
	unsigned ev_backpressure;
	unsigned ev_slow_drop;
	unsigned ev_other;
} fx;

static void pub_event(void *arg, const muon_event_t *ev)
{
	(void)arg;
	if (ev->type == MUON_EVENT_BACKPRESSURE)
		fx.ev_backpressure++;
	else if (ev->type == MUON_EVENT_SLOW_DROP)
		fx.ev_slow_drop++;
	else
		fx.ev_other++;
}

static void close_all(void)
{
	muon_ctx_destroy(fx.sc2);
	muon_ctx_destroy(fx.sc);
	muon_ctx_destroy(fx.pc);
	fx.sc2 = fx.sc = fx.pc = NULL;
}

static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close_all();
	return 0;
}

/* No ring file of this process is left in /dev/shm. */
static void check_no_rings(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	char prefix[64];
	int n = 0;

	if (!d)
		return;
	snprintf(prefix, sizeof(prefix), "muon-%d-", (int)getpid());
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	assert_int_equal(n, 0);
}

static void finish(const char *transport)
{
	close_all();
	if (!strcmp(transport, "shm"))
		check_no_rings();
}

static void pub_config(muon_pub_config_t *pc, uint32_t log_size)
{
	muon_pub_config_init(pc);
	pc->send_log_size = log_size;
	pc->event_fn = pub_event;
}

/* Publisher and subscriber contexts with the test defaults (64 KiB rings,
 * 1 KiB messages), the subscription made and the stream up. */
static muon_pub_t *open_pair(const char *transport, const char *topic,
			     const muon_pub_config_t *pcfg, struct ut_rx *rx,
			     muon_start_t start, muon_sub_t **sub)
{
	muon_pub_t *pub = NULL;
	muon_sub_config_t scfg;

	fx.pc = ut_pub_ctx(transport, NULL, fx.ep, sizeof(fx.ep));
	fx.sc = ut_sub_ctx(fx.ep, NULL);
	assert_int_equal(muon_pub_create(fx.pc, topic, pcfg, &pub), 0);
	rx->publisher_id = muon_ctx_id(fx.pc);
	ut_rx_sub_config(rx, &scfg);
	scfg.start = start;
	assert_int_equal(muon_sub_create(fx.sc, topic, &scfg, sub), 0);
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS,
		      muon_pub_subscribers(pub) == 1 &&
			      muon_sub_images(*sub) == 1,
		      "%s: stream never came up (%d subscribers, %d images)",
		      transport, muon_pub_subscribers(pub),
		      muon_sub_images(*sub));
	return pub;
}

static int64_t publish_seq(muon_pub_t *pub, uint64_t seq, size_t lo,
			   size_t hi)
{
	static uint8_t buf[1024];
	size_t len = ut_len_for(seq, lo, hi);

	ut_fill(buf, len, seq);
	return muon_publish(pub, buf, len);
}

static void expect_clean(const struct ut_rx *rx, const char *what)
{
	muon_counters_t p = ut_counters(fx.pc), s = ut_counters(fx.sc);

	if (rx->order_errors || rx->payload_errors || rx->meta_errors)
		fail_msg("%s: %u order, %u payload, %u metadata errors "
			 "(first bad seq %llu)", what, rx->order_errors,
			 rx->payload_errors, rx->meta_errors,
			 (unsigned long long)rx->first_bad_seq);
	if (s.proto_errors || p.proto_errors)
		fail_msg("%s: protocol errors: publisher %llu, subscriber %llu",
			 what, (unsigned long long)p.proto_errors,
			 (unsigned long long)s.proto_errors);
	if (s.disconnects || p.disconnects || rx->n_down)
		fail_msg("%s: connection dropped (publisher %llu, subscriber "
			 "%llu disconnects, %u images down)", what,
			 (unsigned long long)p.disconnects,
			 (unsigned long long)s.disconnects, rx->n_down);
}

/* --------------------------------------------------------- backpressure */

static void test_backpressure(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub;
	muon_sub_t *sub = NULL;
	struct ut_rx rx;
	uint64_t seq = 0, target, dl;
	unsigned i;
	int64_t rc = 0;
	muon_counters_t ctr;

	ut_rx_init(&rx, "bp", 16, 1024);
	pub_config(&pcfg, 16384);
	pub = open_pair(tp, "bp", &pcfg, &rx, MUON_START_EARLIEST, &sub);

	/* Fill the ring (or socket buffers) and the send log. */
	for (i = 0; i < 500000; i++) {
		rc = publish_seq(pub, seq + 1, 16, 1024);
		if (rc == MUON_EBACKPRESSURE)
			break;
		if (rc != (int64_t)seq + 1)
			fail_msg("publish %llu: %lld: %s",
				 (unsigned long long)seq + 1, (long long)rc,
				 muon_errmsg());
		seq++;
		if (i % 64 == 0)
			ut_poll2(fx.pc, NULL);
	}
	if (rc != MUON_EBACKPRESSURE)
		fail_msg("%s: %llu messages published without back-pressure",
			 tp, (unsigned long long)seq);
	assert_true(strlen(muon_errmsg()) > 0);
	/* Refused again while nothing moved, and counted each time. */
	assert_true(publish_seq(pub, seq + 1, 16, 1024) == MUON_EBACKPRESSURE);
	ctr = ut_counters(fx.pc);
	assert_true(ctr.backpressure >= 2);
	assert_true(ctr.msgs_sent == seq);
	assert_int_equal(fx.ev_backpressure, 1);
	assert_true(rx.n_msgs == 0);

	/* Now the subscriber reads, and publishing goes on. */
	target = seq + 3000;
	dl = ut_now_ms() + DEADLINE_MS;
	while (seq < target) {
		if (ut_now_ms() > dl)
			fail_msg("%s: stuck at %llu of %llu published, %llu "
				 "received", tp, (unsigned long long)seq,
				 (unsigned long long)target,
				 (unsigned long long)rx.n_msgs);
		rc = publish_seq(pub, seq + 1, 16, 1024);
		if (rc == MUON_EBACKPRESSURE) {
			ut_poll2(fx.pc, fx.sc);
			continue;
		}
		if (rc != (int64_t)seq + 1)
			fail_msg("publish %llu: %lld: %s",
				 (unsigned long long)seq + 1, (long long)rc,
				 muon_errmsg());
		seq++;
		if (seq % 8 == 0)
			ut_poll2(fx.pc, fx.sc);
	}
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS,
		      rx.last_seq >= target || rx.n_down,
		      "%s: received %llu of %llu (last seq %llu)", tp,
		      (unsigned long long)rx.n_msgs,
		      (unsigned long long)target,
		      (unsigned long long)rx.last_seq);
	ut_poll_for(fx.pc, fx.sc, 20);
	expect_clean(&rx, "backpressure");
	assert_true(rx.n_msgs == target);
	assert_true(rx.last_seq == target);
	assert_int_equal(rx.n_loss, 0);
	ctr = ut_counters(fx.sc);
	assert_true(ctr.losses == 0);
	assert_true(ctr.msgs_received == target);
	finish(tp);
}

/* ------------------------------------------------------------ slow drop */

static void test_slow_drop(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub;
	muon_sub_t *sub = NULL;
	struct ut_rx rx;
	uint64_t seq = 0, dl;
	muon_counters_t ctr;

	ut_rx_init(&rx, "drop", 16, 1024);
	pub_config(&pcfg, 16384);
	pcfg.slow_policy = MUON_SLOW_DROP;
	pcfg.slow_timeout_ms = 1000;
	pub = open_pair(tp, "drop", &pcfg, &rx, MUON_START_EARLIEST, &sub);

	/* The subscriber is never polled from here on. */
	dl = ut_now_ms() + DEADLINE_MS;
	for (;;) {
		int64_t rc = publish_seq(pub, seq + 1, 16, 1024);

		if (rc != (int64_t)seq + 1)
			fail_msg("%s: publish %llu under MUON_SLOW_DROP gave "
				 "%lld (%s): %s", tp,
				 (unsigned long long)seq + 1, (long long)rc,
				 muon_strerror((int)rc), muon_errmsg());
		seq++;
		ctr = ut_counters(fx.pc);
		if (ctr.slow_drops >= 1)
			break;
		if (ut_now_ms() > dl)
			fail_msg("%s: %llu messages published, subscriber "
				 "never cut", tp, (unsigned long long)seq);
	}
	assert_true(ctr.backpressure == 0);
	assert_true(fx.ev_slow_drop >= 1);
	assert_int_equal(fx.ev_backpressure, 0);
	assert_int_equal(muon_pub_subscribers(pub), 0);
	/* Publishing goes on without a subscriber. */
	assert_true(publish_seq(pub, seq + 1, 16, 1024) == (int64_t)seq + 1);
	seq++;

	/* The subscriber, polled again, gets what reached it, in order, and
	 * hears that its stream went down. */
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, rx.n_down >= 1,
		      "%s: subscriber never saw its image go down "
		      "(%llu received)", tp, (unsigned long long)rx.n_msgs);
	assert_int_equal(rx.order_errors, 0);
	assert_int_equal(rx.payload_errors, 0);
	assert_true(rx.n_msgs > 0);
	if (!strcmp(tp, "shm"))
		assert_int_equal(rx.down_reason, MUON_DOWN_SLOW);
	finish(tp);
}

/* ------------------------------------------------------------ late join */

static void test_late_join(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub = NULL;
	muon_sub_t *sub = NULL, *sub2 = NULL;
	muon_sub_config_t scfg;
	struct ut_rx rx, rx2;
	uint64_t seq;

	pub_config(&pcfg, 65536);
	fx.pc = ut_pub_ctx(tp, NULL, fx.ep, sizeof(fx.ep));
	assert_int_equal(muon_pub_create(fx.pc, "late", &pcfg, &pub), 0);
	for (seq = 1; seq <= 100; seq++)
		assert_true(publish_seq(pub, seq, 1, 300) == (int64_t)seq);
	ut_poll_for(fx.pc, NULL, 5);

	/* EARLIEST: the whole history from the send log. */
	ut_rx_init(&rx, "late", 1, 300);
	rx.publisher_id = muon_ctx_id(fx.pc);
	fx.sc = ut_sub_ctx(fx.ep, NULL);
	ut_rx_sub_config(&rx, &scfg);
	scfg.start = MUON_START_EARLIEST;
	assert_int_equal(muon_sub_create(fx.sc, "late", &scfg, &sub), 0);

	/* LATEST: nothing of it. */
	ut_rx_init(&rx2, "late", 1, 300);
	rx2.expect = 101;
	fx.sc2 = ut_sub_ctx(fx.ep, NULL);
	ut_rx_sub_config(&rx2, &scfg);
	scfg.start = MUON_START_LATEST;
	assert_int_equal(muon_sub_create(fx.sc2, "late", &scfg, &sub2), 0);

	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, rx.last_seq >= 100,
		      "%s: late joiner got %llu of 100", tp,
		      (unsigned long long)rx.n_msgs);
	UT_POLL_UNTIL(fx.pc, fx.sc2, DEADLINE_MS, muon_sub_images(sub2) == 1,
		      "%s: second subscriber never came up", tp);
	ut_poll_for(fx.pc, fx.sc, 10);
	ut_poll_for(fx.pc, fx.sc2, 10);
	expect_clean(&rx, "late join");
	assert_true(rx.n_msgs == 100);
	assert_int_equal(rx.n_loss, 0);
	assert_int_equal(rx.n_up, 1);
	assert_true(rx.up_from == 1);
	assert_true(ut_counters(fx.pc).replays >= 1);
	assert_true(rx2.n_msgs == 0);
	assert_true(rx2.up_from == 101);

	/* Both get what comes next. */
	assert_true(publish_seq(pub, 101, 1, 300) == 101);
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, rx.last_seq == 101,
		      "%s: seq 101 never reached the first subscriber", tp);
	UT_POLL_UNTIL(fx.pc, fx.sc2, DEADLINE_MS, rx2.last_seq == 101,
		      "%s: seq 101 never reached the second subscriber", tp);
	assert_true(rx2.n_msgs == 1);
	assert_int_equal(rx2.order_errors + rx2.payload_errors, 0);
	finish(tp);
}

/* ----------------------------------------------------------------- loss */

static void test_loss(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub = NULL;
	muon_sub_t *sub = NULL;
	muon_sub_config_t scfg;
	struct ut_rx rx;
	muon_counters_t ctr;
	uint64_t seq, k;

	pub_config(&pcfg, 4096);
	fx.pc = ut_pub_ctx(tp, NULL, fx.ep, sizeof(fx.ep));
	assert_int_equal(muon_pub_create(fx.pc, "loss", &pcfg, &pub), 0);
	for (seq = 1; seq <= 1000; seq++)
		assert_true(publish_seq(pub, seq, 100, 100) == (int64_t)seq);
	/* The oldest message the 4 KiB log still holds. */
	k = muoni_sendlog_oldest(&pub->log);
	assert_true(k > 1 && k < 1000);
	assert_true(1000 - k + 1 <= 4096 / 136);

	ut_rx_init(&rx, "loss", 100, 100);
	rx.publisher_id = muon_ctx_id(fx.pc);
	fx.sc = ut_sub_ctx(fx.ep, NULL);
	ut_rx_sub_config(&rx, &scfg);
	scfg.start = MUON_START_SEQ;
	scfg.start_seq = 1;
	assert_int_equal(muon_sub_create(fx.sc, "loss", &scfg, &sub), 0);
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, rx.last_seq >= 1000,
		      "%s: got %llu messages, last %llu, %u losses", tp,
		      (unsigned long long)rx.n_msgs,
		      (unsigned long long)rx.last_seq, rx.n_loss);
	ut_poll_for(fx.pc, fx.sc, 20);
	expect_clean(&rx, "loss");
	assert_int_equal(rx.n_loss, 1);
	assert_true(rx.loss_from == 1);
	assert_true(rx.loss_to == k - 1);
	assert_true(rx.n_msgs == 1000 - k + 1);
	assert_true(rx.up_from == 1);
	ctr = ut_counters(fx.sc);
	assert_true(ctr.losses == 1);
	assert_true(ctr.msgs_lost == k - 1);
	assert_true(ctr.msgs_received == 1000 - k + 1);
	finish(tp);
}

/* A start in the future: nothing before start_seq is delivered, and no
 * loss is reported for it. */
static void test_start_seq_future(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub = NULL;
	muon_sub_t *sub = NULL;
	muon_sub_config_t scfg;
	struct ut_rx rx;
	uint64_t seq;

	pub_config(&pcfg, 65536);
	fx.pc = ut_pub_ctx(tp, NULL, fx.ep, sizeof(fx.ep));
	assert_int_equal(muon_pub_create(fx.pc, "future", &pcfg, &pub), 0);
	for (seq = 1; seq <= 10; seq++)
		assert_true(publish_seq(pub, seq, 8, 64) == (int64_t)seq);
	ut_rx_init(&rx, "future", 8, 64);
	rx.expect = 20;
	fx.sc = ut_sub_ctx(fx.ep, NULL);
	ut_rx_sub_config(&rx, &scfg);
	scfg.start = MUON_START_SEQ;
	scfg.start_seq = 20;
	assert_int_equal(muon_sub_create(fx.sc, "future", &scfg, &sub), 0);
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, muon_sub_images(sub) == 1,
		      "%s: stream never came up", tp);
	for (; seq <= 30; seq++)
		assert_true(publish_seq(pub, seq, 8, 64) == (int64_t)seq);
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, rx.last_seq >= 30,
		      "%s: got %llu messages", tp,
		      (unsigned long long)rx.n_msgs);
	expect_clean(&rx, "future start");
	assert_true(rx.n_msgs == 11);
	assert_int_equal(rx.n_loss, 0);
	assert_true(rx.up_from == 20);
	finish(tp);
}

/* -------------------------------------------------------- claim/commit */

static void test_claim_commit(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub;
	muon_sub_t *sub = NULL;
	struct ut_rx rx;
	uint64_t seq = 0, dl;
	unsigned i, aborted = 0;

	ut_rx_init(&rx, "zc", 0, 1024);
	pub_config(&pcfg, 0); /* the context's 1 MiB */
	pub = open_pair(tp, "zc", &pcfg, &rx, MUON_START_LATEST, &sub);
	dl = ut_now_ms() + DEADLINE_MS;
	for (i = 0; i < 600; i++) {
		size_t len = ut_len_for(seq + 1, 0, 1024);
		void *buf = NULL;
		int rc = muon_claim(pub, len, &buf);

		if (ut_now_ms() > dl)
			fail_msg("%s: claims stuck at %u", tp, i);
		if (rc == MUON_EBACKPRESSURE) {
			ut_poll2(fx.pc, fx.sc);
			i--;
			continue;
		}
		assert_int_equal(rc, 0);
		assert_non_null(buf);
		if (i % 7 == 3) {
			/* Scribble, then drop it: none of this may arrive. */
			memset(buf, 0xee, len);
			assert_int_equal(muon_abort(pub), 0);
			aborted++;
			continue;
		}
		ut_fill(buf, len, seq + 1);
		assert_true(muon_commit(pub) == (int64_t)seq + 1);
		seq++;
		ut_poll2(fx.pc, fx.sc);
	}
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, rx.last_seq >= seq,
		      "%s: got %llu of %llu", tp,
		      (unsigned long long)rx.n_msgs, (unsigned long long)seq);
	ut_poll_for(fx.pc, fx.sc, 10);
	expect_clean(&rx, "claim/commit");
	assert_true(aborted > 50);
	assert_true(rx.n_msgs == seq);
	assert_true(ut_counters(fx.pc).msgs_sent == seq);
	finish(tp);
}

/* ------------------------------------------------------------ coalesce */

/* Sends on the publisher's connections: tcp counts one per push that moved
 * a cursor, so held-back messages that went out together count once. */
static uint64_t pub_pushes(void)
{
	const struct muoni_conn *c;
	uint64_t n = 0;

	for (c = fx.pc->conns; c; c = c->next)
		n += c->tx_count;
	return n;
}

/* Something published is held back (or still queued) on the publisher. */
static bool pub_holding(void)
{
	return fx.pc->n_lagging > 0;
}

static void coalesce_cfg(muon_ctx_config_t *cfg, const char *name)
{
	ut_ctx_config(cfg, name);
	/* Room for long coalesced runs: tcp holds back at most max_msg_size
	 * bytes per connection. */
	cfg->max_msg_size = 16384;
}

static void test_coalesce(const char *tp)
{
	enum { N = 60000 };
	muon_ctx_config_t pcc, scc;
	muon_pub_config_t pcfg;
	muon_sub_config_t scfg;
	muon_pub_t *pub[2] = {NULL, NULL};
	muon_sub_t *sub[2] = {NULL, NULL};
	struct ut_rx rx[2];
	static const char *const topics[2] = {"co.a", "co.b"};
	static uint8_t buf[1024];
	uint64_t seq[2] = {0, 0}, rng = 42, pushes, dl;
	unsigned i, total = 0;

	coalesce_cfg(&pcc, "pub");
	coalesce_cfg(&scc, "sub");
	fx.pc = ut_pub_ctx(tp, &pcc, fx.ep, sizeof(fx.ep));
	fx.sc = ut_sub_ctx(fx.ep, &scc);
	/* A small log: runs end at its end and PADs, over and over. */
	pub_config(&pcfg, 65536);
	for (i = 0; i < 2; i++) {
		assert_int_equal(muon_pub_create(fx.pc, topics[i], &pcfg,
						 &pub[i]), 0);
		ut_rx_init(&rx[i], topics[i], 0, 300);
		rx[i].publisher_id = muon_ctx_id(fx.pc);
		ut_rx_sub_config(&rx[i], &scfg);
		scfg.start = MUON_START_LATEST;
		assert_int_equal(muon_sub_create(fx.sc, topics[i], &scfg,
						 &sub[i]), 0);
	}
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS,
		      muon_pub_subscribers(pub[0]) == 1 &&
			      muon_pub_subscribers(pub[1]) == 1 &&
			      muon_sub_images(sub[0]) == 1 &&
			      muon_sub_images(sub[1]) == 1,
		      "%s: streams never came up", tp);
	ut_poll_for(fx.pc, fx.sc, 5);
	pushes = pub_pushes();

	/* Bursts of 1 to 256 messages between polls, the two streams
	 * interleaved at random, mostly one of them (the other's runs go
	 * at once while one is held). */
	dl = ut_now_ms() + 4 * DEADLINE_MS;
	while (total < N) {
		unsigned burst = 1 + (unsigned)ut_below(&rng, 256), b;

		for (b = 0; b < burst && total < N; b++) {
			unsigned k = ut_below(&rng, 8) == 0;
			size_t len = ut_len_for(seq[k] + 1, 0, 300);
			int64_t rc;

			ut_fill(buf, len, seq[k] + 1);
			rc = muon_publish(pub[k], buf, len);
			if (rc == MUON_EBACKPRESSURE) {
				if (ut_now_ms() > dl)
					fail_msg("%s: stuck at %u published",
						 tp, total);
				ut_poll2(fx.pc, fx.sc);
				continue;
			}
			if (rc != (int64_t)seq[k] + 1)
				fail_msg("%s: publish %llu: %lld: %s", tp,
					 (unsigned long long)seq[k] + 1,
					 (long long)rc, muon_errmsg());
			seq[k]++;
			total++;
		}
		ut_poll2(fx.pc, fx.sc);
	}
	pushes = pub_pushes() - pushes;
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS,
		      rx[0].last_seq >= seq[0] && rx[1].last_seq >= seq[1],
		      "%s: received %llu of %llu and %llu of %llu", tp,
		      (unsigned long long)rx[0].n_msgs,
		      (unsigned long long)seq[0],
		      (unsigned long long)rx[1].n_msgs,
		      (unsigned long long)seq[1]);
	ut_poll_for(fx.pc, fx.sc, 10);
	for (i = 0; i < 2; i++) {
		expect_clean(&rx[i], "coalesce");
		assert_true(rx[i].n_msgs == seq[i]);
		assert_int_equal(rx[i].n_loss, 0);
	}
	print_message("%s: %u messages in %llu pushes\n", tp, total,
		      (unsigned long long)pushes);
	/* Bursts average 128 messages: held back, they go in a few sends
	 * each (a preempted publisher sends more, hence the slack). */
	if (!strcmp(tp, "tcp") && pushes * 8 > N)
		fail_msg("tcp: %llu pushes for %u messages: not coalesced",
			 (unsigned long long)pushes, total);
	finish(tp);
}

/* ------------------------------------------------------------ publishv */

static void test_publishv(const char *tp)
{
	enum { N = 30000, MAXB = 64, MAXLEN = 300 };
	static uint8_t bufs[MAXB][2048];
	muon_iov_t iov[MAXB];
	muon_pub_config_t pcfg;
	muon_pub_t *pub;
	muon_sub_t *sub = NULL;
	struct ut_rx rx;
	uint64_t seq = 0, rng = 7, pushes, dl, batches = 0;
	unsigned cut_bp = 0, too_big = 0, bp = 0;
	muon_counters_t ctr;
	int64_t first;
	int rc;

	ut_rx_init(&rx, "pv", 0, MAXLEN);
	/* A send log smaller than the ring: back-pressure comes from the
	 * log, part-way through a batch. */
	pub_config(&pcfg, 16384);
	pub = open_pair(tp, "pv", &pcfg, &rx, MUON_START_EARLIEST, &sub);
	pushes = pub_pushes();

	/* The argument checks come first and publish nothing. */
	first = -1;
	assert_int_equal(muon_publishv(pub, iov, 0, &first), 0);
	assert_int_equal(muon_publishv(pub, NULL, 0, NULL), 0);
	assert_int_equal(muon_publishv(pub, NULL, 1, &first), MUON_EINVAL);
	assert_int_equal(muon_publishv(NULL, iov, 1, &first), MUON_EINVAL);
	iov[0] = (muon_iov_t){NULL, 1};
	assert_int_equal(muon_publishv(pub, iov, 2, &first), MUON_EINVAL);
	assert_non_null(strstr(muon_errmsg(), "message 0 of 2"));
	assert_int_equal(muon_publishv(pub, iov, (unsigned)INT_MAX + 1,
				       &first), MUON_EINVAL);
	assert_true(first == -1);
	/* A NULL message later in a batch ends it there, like a refusal. */
	ut_fill(bufs[0], ut_len_for(1, 0, MAXLEN), 1);
	iov[0] = (muon_iov_t){bufs[0], ut_len_for(1, 0, MAXLEN)};
	iov[1] = (muon_iov_t){NULL, 1};
	assert_int_equal(muon_publishv(pub, iov, 2, &first), 1);
	assert_true(first == 1);
	assert_int_equal(muon_publishv(pub, iov + 1, 1, &first), MUON_EINVAL);
	assert_non_null(strstr(muon_errmsg(), "message 0 of 1"));
	seq = 1;

	dl = ut_now_ms() + 4 * DEADLINE_MS;
	/* Until N are published and some batch was cut short by
	 * back-pressure (on tcp, once the socket buffers are full). */
	while (seq < N || !cut_bp) {
		unsigned n = 1 + (unsigned)ut_below(&rng, MAXB), i, done = 0;
		bool cut = false;
		/* One batch in eight holds a message above max_msg_size
		 * (1 KiB in the test contexts) somewhere. */
		unsigned big = ut_below(&rng, 8) ? MAXB : ut_below(&rng, n);

		for (i = 0; i < n; i++) {
			/* seq numbers as they would be if nothing is
			 * refused; the big one takes none. */
			uint64_t s = seq + 1 + i - (i > big);
			size_t len = i == big ? 1500 : ut_len_for(s, 0, MAXLEN);

			ut_fill(bufs[i], len, s);
			iov[i] = (muon_iov_t){bufs[i], len};
		}
		batches++;
		while (done < n) {
			first = -1;
			rc = muon_publishv(pub, iov + done, n - done, &first);
			if (rc == MUON_ETOOBIG) {
				assert_int_equal(done, big);
				too_big++;
				done++;
				continue;
			}
			if (rc == MUON_EBACKPRESSURE) {
				if (ut_now_ms() > dl)
					fail_msg("%s: stuck at %llu (%u cut "
						 "short by back-pressure)", tp,
						 (unsigned long long)seq,
						 cut_bp);
				bp++;
				cut_bp += cut;
				cut = false;
				ut_poll2(fx.pc, fx.sc);
				continue;
			}
			if (rc <= 0)
				fail_msg("%s: publishv of %u at %llu: %d: %s",
					 tp, n - done,
					 (unsigned long long)seq, rc,
					 muon_errmsg());
			if (first != (int64_t)seq + 1)
				fail_msg("%s: first_seq %lld, want %llu", tp,
					 (long long)first,
					 (unsigned long long)seq + 1);
			cut = (unsigned)rc < n - done;
			seq += (unsigned)rc;
			done += (unsigned)rc;
		}
		ut_poll2(fx.pc, NULL);
	}
	pushes = pub_pushes() - pushes;
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, rx.last_seq >= seq,
		      "%s: received %llu of %llu", tp,
		      (unsigned long long)rx.n_msgs, (unsigned long long)seq);
	ut_poll_for(fx.pc, fx.sc, 10);
	expect_clean(&rx, "publishv");
	assert_true(rx.n_msgs == seq);
	assert_int_equal(rx.n_loss, 0);
	ctr = ut_counters(fx.pc);
	assert_true(ctr.msgs_sent == seq);
	print_message("%s: %llu messages in %llu batches, %llu pushes; "
		      "refused: %u for size, %u for back-pressure (%u of "
		      "them after part of the batch)\n", tp,
		      (unsigned long long)seq, (unsigned long long)batches,
		      (unsigned long long)pushes, too_big, bp, cut_bp);
	assert_true(too_big > 0);
	/* Batches average 32 messages; one push each (two where the ring
	 * or log wraps, or verbs counts the write too). */
	if (strcmp(tp, "shm") && pushes * 4 > seq)
		fail_msg("%s: %llu pushes for %llu messages: batches were not "
			 "sent together", tp, (unsigned long long)pushes,
			 (unsigned long long)seq);
	finish(tp);
}

/* A batch larger than the send log must be offered to subscribers while
 * it is written: judged by cursors that were never offered it, a
 * subscriber that keeps up would look a log behind and be cut. */
static void test_publishv_drop(const char *tp)
{
	enum { B = 40, BATCHES = 300 };
	static uint8_t bufs[B][1024];
	muon_iov_t iov[B];
	muon_pub_config_t pcfg;
	muon_pub_t *pub;
	muon_sub_t *sub = NULL;
	struct ut_rx rx;
	uint64_t seq = 0, dl = ut_now_ms() + 4 * DEADLINE_MS;
	muon_counters_t ctr;
	unsigned k, i;

	ut_rx_init(&rx, "pvdrop", 700, 1000);
	/* 16 KiB of log; a batch is 40 messages of 700-1000 bytes. */
	pub_config(&pcfg, 16384);
	pcfg.slow_policy = MUON_SLOW_DROP;
	pcfg.slow_timeout_ms = 1000;
	pub = open_pair(tp, "pvdrop", &pcfg, &rx, MUON_START_LATEST, &sub);
	for (k = 0; k < BATCHES && !fx.ev_slow_drop; k++) {
		unsigned done = 0;

		for (i = 0; i < B; i++) {
			size_t len = ut_len_for(seq + 1 + i, 700, 1000);

			ut_fill(bufs[i], len, seq + 1 + i);
			iov[i] = (muon_iov_t){bufs[i], len};
		}
		while (done < B) {
			int rc = muon_publishv(pub, iov + done, B - done, NULL);

			if (rc <= 0)
				fail_msg("%s: batch %u: %d under MUON_SLOW_DROP:"
					 " %s", tp, k, rc, muon_errmsg());
			done += (unsigned)rc;
		}
		seq += B;
		/* The subscriber reads everything sent before the next. */
		UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS,
			      rx.last_seq >= seq || fx.ev_slow_drop ||
				      ut_now_ms() > dl,
			      "%s: batch %u not received (%llu of %llu)", tp,
			      k, (unsigned long long)rx.n_msgs,
			      (unsigned long long)seq);
	}
	ctr = ut_counters(fx.pc);
	if (ctr.slow_drops || fx.ev_slow_drop)
		fail_msg("%s: a subscriber that kept up was cut after batch %u",
			 tp, k);
	expect_clean(&rx, "publishv_drop");
	assert_true(rx.n_msgs == seq);
	assert_int_equal(rx.n_loss, 0);
	finish(tp);
}

/* -------------------------------------------------- no stranded messages */

/* A burst, published until the transport holds some of it back (on tcp
 * the first message goes at once, the rest waits for the next send). */
static uint64_t publish_burst(muon_pub_t *pub, uint64_t seq, const char *tp)
{
	unsigned tries, i;

	for (tries = 0; tries < 20; tries++) {
		for (i = 0; i < 32; i++) {
			seq++;
			assert_true(publish_seq(pub, seq, 0, 200) ==
				    (int64_t)seq);
		}
		/* Only tcp holds back; a preempted burst may not have. */
		if (strcmp(tp, "tcp") || pub_holding())
			return seq;
	}
	fail_msg("%s: 20 bursts of 32 and nothing was held back", tp);
	return seq;
}

static void test_poll_flushes(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub;
	muon_sub_t *sub = NULL;
	struct ut_rx rx;
	uint64_t seq = 0;
	unsigned round;

	ut_rx_init(&rx, "flush", 0, 200);
	pub_config(&pcfg, 0);
	pub = open_pair(tp, "flush", &pcfg, &rx, MUON_START_LATEST, &sub);
	for (round = 0; round < 50; round++) {
		/* One publisher poll, then only the subscriber is polled. */
		seq = publish_burst(pub, seq, tp);
		assert_true(muon_ctx_poll(fx.pc, 0) >= 0);
		assert_false(pub_holding());
		UT_POLL_UNTIL(NULL, fx.sc, DEADLINE_MS, rx.last_seq >= seq,
			      "%s: round %u: %llu of %llu arrived after one "
			      "publisher poll", tp, round,
			      (unsigned long long)rx.n_msgs,
			      (unsigned long long)seq);

		/* The connection is idle again (the publisher has polled
		 * since it last sent): one message goes at once, inside
		 * the publish. */
		ut_poll2(fx.pc, NULL);
		ut_poll2(fx.pc, NULL);
		seq++;
		assert_true(publish_seq(pub, seq, 0, 200) == (int64_t)seq);
		assert_false(pub_holding());
		UT_POLL_UNTIL(NULL, fx.sc, DEADLINE_MS, rx.last_seq >= seq,
			      "%s: round %u: a lone message on an idle "
			      "connection did not go at once", tp, round);
	}
	expect_clean(&rx, "poll flushes");
	assert_true(rx.n_msgs == seq);
	finish(tp);
}

/* ------------------------------------------------------ fd-waiting style */

static void test_arm_flushes(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub;
	muon_sub_t *sub = NULL;
	struct ut_rx rx;
	uint64_t seq = 0;
	unsigned round, i;
	int rc;

	ut_rx_init(&rx, "arm", 0, 200);
	pub_config(&pcfg, 0);
	pub = open_pair(tp, "arm", &pcfg, &rx, MUON_START_LATEST, &sub);
	for (round = 0; round < 50; round++) {
		/* Published after its last poll, then the application arms
		 * to sleep on the fd: arm must push what was held. */
		seq = publish_burst(pub, seq, tp);
		rc = muon_ctx_arm(fx.pc);
		assert_true(rc == MUON_OK || rc == MUON_EBUSY);
		assert_false(pub_holding());
		UT_POLL_UNTIL(NULL, fx.sc, DEADLINE_MS, rx.last_seq >= seq,
			      "%s: round %u: %llu of %llu arrived after arm",
			      tp, round, (unsigned long long)rx.n_msgs,
			      (unsigned long long)seq);

		/* Armed: the application may publish from another event
		 * source and sleep again without polling. Nothing is held,
		 * however fast it publishes. */
		if (muon_ctx_arm(fx.pc) != MUON_OK)
			continue;
		for (i = 0; i < 32; i++) {
			seq++;
			assert_true(publish_seq(pub, seq, 0, 200) ==
				    (int64_t)seq);
		}
		assert_false(pub_holding());
		UT_POLL_UNTIL(NULL, fx.sc, DEADLINE_MS, rx.last_seq >= seq,
			      "%s: round %u: published while armed, %llu of "
			      "%llu arrived", tp, round,
			      (unsigned long long)rx.n_msgs,
			      (unsigned long long)seq);
		ut_poll2(fx.pc, NULL);
	}
	expect_clean(&rx, "arm flushes");
	assert_true(rx.n_msgs == seq);
	finish(tp);
}

/* -------------------------------------------- holding never cuts anybody */

static void test_unpolled_drop(const char *tp)
{
	muon_pub_config_t pcfg;
	muon_pub_t *pub;
	muon_sub_t *sub = NULL;
	struct ut_rx rx;
	uint64_t seq;
	muon_counters_t ctr;

	ut_rx_init(&rx, "unpolled", 16, 1024);
	/* 16 KiB of log: 16 messages of the largest size. */
	pub_config(&pcfg, 16384);
	pcfg.slow_policy = MUON_SLOW_DROP;
	pcfg.slow_timeout_ms = 1000;
	pub = open_pair(tp, "unpolled", &pcfg, &rx, MUON_START_LATEST, &sub);
	/* The publisher is never polled; the subscriber after every
	 * message, so that it keeps up. */
	for (seq = 1; seq <= 20000; seq++) {
		assert_true(publish_seq(pub, seq, 16, 1024) == (int64_t)seq);
		ut_poll2(NULL, fx.sc);
		if (fx.ev_slow_drop)
			break;
	}
	ctr = ut_counters(fx.pc);
	if (ctr.slow_drops || fx.ev_slow_drop)
		fail_msg("%s: a subscriber that kept up was cut at seq %llu",
			 tp, (unsigned long long)seq);
	seq--;
	UT_POLL_UNTIL(fx.pc, fx.sc, DEADLINE_MS, rx.last_seq >= seq,
		      "%s: received %llu of %llu", tp,
		      (unsigned long long)rx.n_msgs, (unsigned long long)seq);
	expect_clean(&rx, "unpolled publisher");
	assert_true(rx.n_msgs == seq);
	assert_int_equal(rx.n_loss, 0);
	finish(tp);
}

#define BOTH(fn)                                                         \
	static void fn##_shm(void **state)                               \
	{                                                                \
		(void)state;                                             \
		fn("shm");                                               \
	}                                                                \
	static void fn##_tcp(void **state)                               \
	{                                                                \
		(void)state;                                             \
		fn("tcp");                                               \
	}                                                                \
	static void fn##_verbs(void **state)                             \
	{                                                                \
		(void)state;                                             \
		fn("verbs");                                             \
	}

BOTH(test_backpressure)
BOTH(test_slow_drop)
BOTH(test_late_join)
BOTH(test_loss)
BOTH(test_start_seq_future)
BOTH(test_claim_commit)
BOTH(test_coalesce)
BOTH(test_poll_flushes)
BOTH(test_arm_flushes)
BOTH(test_unpolled_drop)
BOTH(test_publishv)
BOTH(test_publishv_drop)

#define T(fn)                                                            \
	cmocka_unit_test_setup_teardown(fn##_shm, setup, teardown),       \
	cmocka_unit_test_setup_teardown(fn##_tcp, setup, teardown),       \
	cmocka_unit_test_setup_teardown(fn##_verbs, setup, teardown)

/* argv[1], if given, picks tests by name (cmocka pattern): ctest runs
 * each scenario in its own process so that one crash cannot hide the
 * others. */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_backpressure),
		T(test_slow_drop),
		T(test_late_join),
		T(test_loss),
		T(test_start_seq_future),
		T(test_claim_commit),
		T(test_coalesce),
		T(test_poll_flushes),
		T(test_arm_flushes),
		T(test_unpolled_drop),
		T(test_publishv),
		T(test_publishv_drop),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("unit.flow", tests, NULL, NULL);
}
