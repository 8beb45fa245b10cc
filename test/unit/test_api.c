/*
 * Public API argument and state checks: every call with NULL, zero,
 * oversized or wrong-state arguments returns its documented status, leaves
 * output parameters alone and leaves a detail message.
 */
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/muoni.h"

#define SENTINEL ((void *)0x5a5a)

static void expect_status(int64_t rc, int want, const char *what)
{
	if (rc != want)
		fail_msg("%s: got %lld (%s), want %d (%s): %s", what,
			 (long long)rc, muon_strerror((int)rc), want,
			 muon_strerror(want), muon_errmsg());
	if (want < 0 && !*muon_errmsg())
		fail_msg("%s: empty muon_errmsg()", what);
}

static muon_ctx_t *plain_ctx(void)
{
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = NULL;

	ut_ctx_config(&cfg, "api");
	assert_int_equal(muon_ctx_create(&cfg, &ctx), 0);
	assert_non_null(ctx);
	return ctx;
}

static void nop_msg(void *arg, const muon_msg_t *msg)
{
	(void)arg;
	(void)msg;
}

/* ------------------------------------------------------------- basics */

static void test_strerror(void **state)
{
	int a, b;

	(void)state;
	for (a = MUON_ELIMIT; a <= MUON_OK; a++) {
		assert_non_null(muon_strerror(a));
		assert_true(strlen(muon_strerror(a)) > 0);
		for (b = MUON_ELIMIT; b < a; b++)
			if (!strcmp(muon_strerror(a), muon_strerror(b)))
				fail_msg("statuses %d and %d share '%s'", a, b,
					 muon_strerror(a));
	}
	assert_non_null(muon_strerror(-1000));
	assert_non_null(muon_strerror(12));
	assert_non_null(muon_strerror(INT32_MIN));
	assert_non_null(muon_errmsg());
	assert_string_equal(muon_version(), "0.1.0");
}

/* The names are for logs and scripts that grep them: exact spellings,
 * one per value, and a constant answer for values outside the enums. */
static void test_names(void **state)
{
	static const struct {
		const char *(*fn)(int);
		int first, last;
		const char *want[6];
	} tables[] = {
		{muon_event_name, MUON_EVENT_IMAGE_UP, MUON_EVENT_SLOW_DROP,
		 {"IMAGE_UP", "IMAGE_DOWN", "LOSS", "BACKPRESSURE", "ERROR",
		  "SLOW_DROP"}},
		{muon_down_reason_name, MUON_DOWN_CLOSED, MUON_DOWN_PROTOCOL,
		 {"CLOSED", "DISCONNECTED", "SLOW", "PROTOCOL"}},
		{muon_log_level_name, MUON_LOG_NONE, MUON_LOG_DEBUG,
		 {"none", "error", "warn", "info", "debug"}},
	};
	static const int outside[] = {INT32_MIN, -1, 0, 7, 1000, INT32_MAX};
	unsigned t, i;
	int v;

	(void)state;
	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (v = tables[t].first; v <= tables[t].last; v++)
			assert_string_equal(tables[t].fn(v),
					    tables[t].want[v - tables[t].first]);
		for (i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
			v = outside[i];
			if (v >= tables[t].first && v <= tables[t].last)
				continue;
			assert_string_equal(tables[t].fn(v), "unknown");
		}
	}
}

static void test_ctx_create_args(void **state)
{
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = SENTINEL, *c2 = SENTINEL;
	char uri[128];

	(void)state;
	ut_ctx_config(&cfg, "api");
	expect_status(muon_ctx_create(&cfg, NULL), MUON_EINVAL, "out NULL");
	expect_status(muon_ctx_create(NULL, NULL), MUON_EINVAL,
		      "cfg and out NULL");

	cfg.size = 4;
	expect_status(muon_ctx_create(&cfg, &ctx), MUON_EINVAL, "size 4");
	assert_ptr_equal(ctx, SENTINEL);

	ut_ctx_config(&cfg, "api");
	cfg.listen = "shm://has space";
	expect_status(muon_ctx_create(&cfg, &ctx), MUON_ECONFIG, "bad listen");
	assert_ptr_equal(ctx, SENTINEL);

	ut_ctx_config(&cfg, "api");
	cfg.ring_size = 1000;
	expect_status(muon_ctx_create(&cfg, &ctx), MUON_ECONFIG, "bad ring");
	assert_ptr_equal(ctx, SENTINEL);

	/* The same shm name twice: the second cannot listen. */
	ut_ctx_config(&cfg, "api");
	ut_listen_uri(uri, sizeof(uri), "shm", "dup");
	cfg.listen = uri;
	assert_int_equal(muon_ctx_create(&cfg, &ctx), 0);
	expect_status(muon_ctx_create(&cfg, &c2), MUON_EIO, "shm name in use");
	assert_ptr_equal(c2, SENTINEL);
	muon_ctx_destroy(ctx);

	/* After the first is gone the name is free again. */
	assert_int_equal(muon_ctx_create(&cfg, &c2), 0);
	muon_ctx_destroy(c2);

	muon_ctx_destroy(NULL);
	muon_pub_destroy(NULL);
	muon_sub_destroy(NULL);
}

static void test_ctx_null_args(void **state)
{
	muon_counters_t ctr;
	char buf[128];

	(void)state;
	memset(&ctr, 0, sizeof(ctr));
	ctr.size = sizeof(ctr);
	expect_status(muon_ctx_poll(NULL, 0), MUON_EINVAL, "poll NULL");
	expect_status(muon_ctx_fd(NULL), MUON_EINVAL, "fd NULL");
	expect_status(muon_ctx_arm(NULL), MUON_EINVAL, "arm NULL");
	expect_status(muon_ctx_counters(NULL, &ctr), MUON_EINVAL,
		      "counters NULL ctx");
	expect_status(muon_ctx_listen_endpoint(NULL, 0, buf, sizeof(buf)),
		      MUON_EINVAL, "listen_endpoint NULL ctx");
	assert_true(muon_ctx_id(NULL) == 0);
	expect_status(muon_pub_subscribers(NULL), MUON_EINVAL,
		      "pub_subscribers NULL");
	expect_status(muon_sub_images(NULL), MUON_EINVAL, "sub_images NULL");
	assert_int_equal(muon_pub_stream_id(NULL), 0);
	expect_status(muon_publish(NULL, "x", 1), MUON_EINVAL, "publish NULL");
	{
		void *b = SENTINEL;
		expect_status(muon_claim(NULL, 1, &b), MUON_EINVAL,
			      "claim NULL");
		assert_ptr_equal(b, SENTINEL);
	}
	expect_status(muon_commit(NULL), MUON_EINVAL, "commit NULL");
	expect_status(muon_abort(NULL), MUON_EINVAL, "abort NULL");
}

static void test_counters_args(void **state)
{
	muon_ctx_t *ctx = plain_ctx();
	muon_counters_t ctr;
	struct {
		muon_counters_t c;
		uint64_t future[4];
	} big;

	(void)state;
	expect_status(muon_ctx_counters(ctx, NULL), MUON_EINVAL, "out NULL");
	memset(&ctr, 0xab, sizeof(ctr));
	ctr.size = 0;
	expect_status(muon_ctx_counters(ctx, &ctr), MUON_EINVAL, "size 0");
	ctr.size = sizeof(size_t);
	expect_status(muon_ctx_counters(ctx, &ctr), MUON_EINVAL,
		      "size without counters");
	assert_true(ctr.msgs_sent == 0xababababababababull);
	/* Just the first counter: nothing beyond it is written. */
	ctr.size = offsetof(muon_counters_t, bytes_sent);
	assert_int_equal(muon_ctx_counters(ctx, &ctr), 0);
	assert_true(ctr.msgs_sent == 0);
	assert_true(ctr.bytes_sent == 0xababababababababull);
	assert_true(ctr.replays == 0xababababababababull);
	ctr.size = sizeof(ctr);
	assert_int_equal(muon_ctx_counters(ctx, &ctr), 0);
	assert_int_equal(ctr.size, sizeof(ctr));
	assert_true(ctr.replays == 0 && ctr.backpressure == 0);
	/* A newer caller's bigger struct: the tail is left alone. */
	memset(&big, 0xcd, sizeof(big));
	big.c.size = sizeof(big);
	assert_int_equal(muon_ctx_counters(ctx, &big.c), 0);
	assert_true(big.c.replays == 0);
	assert_true(big.future[0] == 0xcdcdcdcdcdcdcdcdull);
	muon_ctx_destroy(ctx);
}

static void test_listen_endpoint(void **state)
{
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = NULL;
	char uri[128], list[300], buf[128];
	size_t n;
	unsigned port = 0;

	(void)state;
	ut_ctx_config(&cfg, "api");
	ut_listen_uri(uri, sizeof(uri), "shm", "ep");
	snprintf(list, sizeof(list), "%s, tcp://127.0.0.1:0", uri);
	cfg.listen = list;
	assert_int_equal(muon_ctx_create(&cfg, &ctx), 0);

	assert_int_equal(muon_ctx_listen_endpoint(ctx, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, uri);
	assert_int_equal(muon_ctx_listen_endpoint(ctx, 1, buf, sizeof(buf)), 0);
	assert_int_equal(sscanf(buf, "tcp://127.0.0.1:%u", &port), 1);
	assert_true(port > 0 && port < 65536);

	memset(buf, 'z', sizeof(buf));
	expect_status(muon_ctx_listen_endpoint(ctx, 2, buf, sizeof(buf)),
		      MUON_ENOTFOUND, "index 2");
	expect_status(muon_ctx_listen_endpoint(ctx, 1000, buf, sizeof(buf)),
		      MUON_ENOTFOUND, "index 1000");
	assert_int_equal(buf[0], 'z');
	n = strlen(uri);
	expect_status(muon_ctx_listen_endpoint(ctx, 0, buf, n), MUON_EINVAL,
		      "buffer one short");
	assert_int_equal(buf[0], 'z');
	expect_status(muon_ctx_listen_endpoint(ctx, 0, buf, 0), MUON_EINVAL,
		      "buffer 0");
	expect_status(muon_ctx_listen_endpoint(ctx, 0, NULL, 128), MUON_EINVAL,
		      "buffer NULL");
	assert_int_equal(muon_ctx_listen_endpoint(ctx, 0, buf, n + 1), 0);
	assert_string_equal(buf, uri);
	muon_ctx_destroy(ctx);

	/* No listeners at all. */
	ctx = plain_ctx();
	expect_status(muon_ctx_listen_endpoint(ctx, 0, buf, sizeof(buf)),
		      MUON_ENOTFOUND, "no listeners");
	assert_true(muon_ctx_fd(ctx) >= 0);
	assert_int_equal(muon_ctx_poll(ctx, 0), 0);
	assert_int_equal(muon_ctx_arm(ctx), 0);
	assert_true(muon_ctx_id(ctx) != 0);
	muon_ctx_destroy(ctx);
}

/* --------------------------------------------------------- publications */

static void test_pub_create_args(void **state)
{
	muon_ctx_t *ctx = plain_ctx();
	muon_pub_t *pub = SENTINEL;
	muon_pub_config_t pc;
	char topic[300];

	(void)state;
	expect_status(muon_pub_create(NULL, "t", NULL, &pub), MUON_EINVAL,
		      "ctx NULL");
	expect_status(muon_pub_create(ctx, NULL, NULL, &pub), MUON_EINVAL,
		      "topic NULL");
	expect_status(muon_pub_create(ctx, "t", NULL, NULL), MUON_EINVAL,
		      "out NULL");
	expect_status(muon_pub_create(ctx, "", NULL, &pub), MUON_EINVAL,
		      "empty topic");
	memset(topic, 'q', sizeof(topic));
	topic[256] = '\0';
	expect_status(muon_pub_create(ctx, topic, NULL, &pub), MUON_ETOOBIG,
		      "256-byte topic");
	topic[299] = '\0';
	topic[256] = 'q';
	expect_status(muon_pub_create(ctx, topic, NULL, &pub), MUON_ETOOBIG,
		      "299-byte topic");
	assert_ptr_equal(pub, SENTINEL);

	muon_pub_config_init(&pc);
	pc.size = 4;
	expect_status(muon_pub_create(ctx, "t", &pc, &pub), MUON_EINVAL,
		      "pub config size 4");
	muon_pub_config_init(&pc);
	pc.slow_policy = (muon_slow_policy_t)7;
	expect_status(muon_pub_create(ctx, "t", &pc, &pub), MUON_EINVAL,
		      "slow_policy 7");
	muon_pub_config_init(&pc);
	pc.slow_policy = MUON_SLOW_DROP;
	pc.slow_timeout_ms = 0;
	expect_status(muon_pub_create(ctx, "t", &pc, &pub), MUON_EINVAL,
		      "slow_timeout_ms 0");
	muon_pub_config_init(&pc);
	pc.send_log_size = 5000;
	expect_status(muon_pub_create(ctx, "t", &pc, &pub), MUON_ECONFIG,
		      "send log not a power of two");
	muon_pub_config_init(&pc);
	pc.send_log_size = 2048; /* below 4 x max_msg_size (1024) */
	expect_status(muon_pub_create(ctx, "t", &pc, &pub), MUON_ECONFIG,
		      "send log below 4 x max_msg_size");
	assert_ptr_equal(pub, SENTINEL);

	/* 255 bytes is the longest topic. */
	topic[255] = '\0';
	assert_int_equal(muon_pub_create(ctx, topic, NULL, &pub), 0);
	assert_true(muon_pub_stream_id(pub) != 0);
	assert_int_equal(muon_pub_subscribers(pub), 0);
	muon_pub_destroy(pub);
	muon_ctx_destroy(ctx);
}

static void test_publish_args(void **state)
{
	muon_ctx_t *ctx = plain_ctx();
	muon_pub_t *pub = NULL;
	static uint8_t big[2048];
	muon_counters_t ctr;

	(void)state;
	assert_int_equal(muon_pub_create(ctx, "pubargs", NULL, &pub), 0);
	expect_status(muon_publish(pub, NULL, 1), MUON_EINVAL,
		      "data NULL, len 1");
	expect_status(muon_publish(pub, big, 1025), MUON_ETOOBIG,
		      "len > max_msg_size");
	expect_status(muon_publish(pub, big, SIZE_MAX), MUON_ETOOBIG,
		      "len SIZE_MAX");
	expect_status(muon_publish(pub, NULL, 0), 1, "empty message");
	expect_status(muon_publish(pub, big, 0), 2, "empty message, data");
	expect_status(muon_publish(pub, big, 1024), 3, "len == max_msg_size");
	ctr = ut_counters(ctx);
	assert_true(ctr.msgs_sent == 3);
	assert_true(ctr.bytes_sent == 1024);
	muon_pub_destroy(pub);
	muon_ctx_destroy(ctx);
}

static void test_claim_state(void **state)
{
	muon_ctx_t *ctx = plain_ctx();
	muon_pub_t *pub = NULL;
	void *buf = SENTINEL, *buf2 = SENTINEL;
	int i;

	(void)state;
	assert_int_equal(muon_pub_create(ctx, "claims", NULL, &pub), 0);

	expect_status(muon_commit(pub), MUON_ESTATE, "commit without claim");
	expect_status(muon_abort(pub), MUON_ESTATE, "abort without claim");
	expect_status(muon_claim(pub, 10, NULL), MUON_EINVAL, "claim buf NULL");
	expect_status(muon_claim(pub, 1025, &buf), MUON_ETOOBIG,
		      "claim too big");
	assert_ptr_equal(buf, SENTINEL);

	/* claim + commit: consecutive sequences from 1. */
	for (i = 1; i <= 3; i++) {
		assert_int_equal(muon_claim(pub, 16, &buf), 0);
		assert_non_null(buf);
		assert_ptr_not_equal(buf, SENTINEL);
		memset(buf, i, 16);
		expect_status(muon_commit(pub), i, "commit");
	}

	/* One claim at a time; nothing else on the publication meanwhile. */
	assert_int_equal(muon_claim(pub, 8, &buf), 0);
	expect_status(muon_claim(pub, 8, &buf2), MUON_ESTATE, "claim twice");
	assert_ptr_equal(buf2, SENTINEL);
	expect_status(muon_publish(pub, "x", 1), MUON_ESTATE,
		      "publish during claim");
	expect_status(muon_commit(pub), 4, "commit after refused calls");
	expect_status(muon_commit(pub), MUON_ESTATE, "second commit");

	/* abort: the sequence number is not used up. */
	assert_int_equal(muon_claim(pub, 100, &buf), 0);
	expect_status(muon_abort(pub), 0, "abort");
	expect_status(muon_abort(pub), MUON_ESTATE, "abort twice");
	expect_status(muon_commit(pub), MUON_ESTATE, "commit after abort");
	expect_status(muon_publish(pub, "abc", 3), 5, "publish after abort");
	assert_int_equal(muon_claim(pub, 0, &buf), 0);
	expect_status(muon_commit(pub), 6, "commit of 0 bytes");
	{
		muon_counters_t ctr = ut_counters(ctx);
		assert_true(ctr.msgs_sent == 6);
		assert_true(ctr.bytes_sent == 3 * 16 + 8 + 3);
	}
	/* A publication destroyed with a claim open goes quietly. */
	assert_int_equal(muon_claim(pub, 8, &buf), 0);
	muon_pub_destroy(pub);
	muon_ctx_destroy(ctx);
}

/* Many claim/abort rounds in a small log, across its end: the sequence
 * continues, nothing breaks. */
static void test_claim_abort_laps(void **state)
{
	muon_ctx_t *ctx = plain_ctx();
	muon_pub_config_t pc;
	muon_pub_t *pub = NULL;
	void *buf;
	int64_t seq = 0;
	int i;

	(void)state;
	muon_pub_config_init(&pc);
	pc.send_log_size = 4096;
	assert_int_equal(muon_pub_create(ctx, "laps", &pc, &pub), 0);
	for (i = 0; i < 2000; i++) {
		size_t len = (size_t)(i * 97 % 1025);
		assert_int_equal(muon_claim(pub, len, &buf), 0);
		if (i % 3 == 0) {
			assert_int_equal(muon_abort(pub), 0);
			continue;
		}
		memset(buf, 0x11, len);
		expect_status(muon_commit(pub), seq + 1, "commit in laps");
		seq++;
	}
	muon_pub_destroy(pub);
	muon_ctx_destroy(ctx);
}

/* -------------------------------------------------------- subscriptions */

static void test_sub_create_args(void **state)
{
	muon_ctx_t *ctx = plain_ctx();
	muon_sub_t *sub = SENTINEL, *s1 = NULL, *s2 = SENTINEL;
	muon_sub_config_t sc;
	char topic[300];

	(void)state;
	muon_sub_config_init(&sc);
	expect_status(muon_sub_create(ctx, "t", &sc, &sub), MUON_EINVAL,
		      "no msg_fn");
	expect_status(muon_sub_create(ctx, "t", NULL, &sub), MUON_EINVAL,
		      "no config");
	sc.msg_fn = nop_msg;
	expect_status(muon_sub_create(NULL, "t", &sc, &sub), MUON_EINVAL,
		      "ctx NULL");
	expect_status(muon_sub_create(ctx, NULL, &sc, &sub), MUON_EINVAL,
		      "topic NULL");
	expect_status(muon_sub_create(ctx, "t", &sc, NULL), MUON_EINVAL,
		      "out NULL");
	expect_status(muon_sub_create(ctx, "", &sc, &sub), MUON_EINVAL,
		      "empty topic");
	memset(topic, 'r', sizeof(topic));
	topic[256] = '\0';
	expect_status(muon_sub_create(ctx, topic, &sc, &sub), MUON_ETOOBIG,
		      "256-byte topic");
	sc.start = MUON_START_SEQ;
	sc.start_seq = 0;
	expect_status(muon_sub_create(ctx, "t", &sc, &sub), MUON_EINVAL,
		      "START_SEQ with start_seq 0");
	sc.start = (muon_start_t)3;
	sc.start_seq = 1;
	expect_status(muon_sub_create(ctx, "t", &sc, &sub), MUON_EINVAL,
		      "start mode 3");
	sc.size = 4;
	sc.start = MUON_START_LATEST;
	expect_status(muon_sub_create(ctx, "t", &sc, &sub), MUON_EINVAL,
		      "sub config size 4");
	assert_ptr_equal(sub, SENTINEL);

	muon_sub_config_init(&sc);
	sc.msg_fn = nop_msg;
	sc.start = MUON_START_SEQ;
	sc.start_seq = 1;
	assert_int_equal(muon_sub_create(ctx, "t", &sc, &s1), 0);
	assert_int_equal(muon_sub_images(s1), 0);
	expect_status(muon_sub_create(ctx, "t", &sc, &s2), MUON_ESTATE,
		      "second subscription on a topic");
	assert_ptr_equal(s2, SENTINEL);
	/* Another topic is fine, and after destroy the topic is free. */
	topic[255] = '\0';
	assert_int_equal(muon_sub_create(ctx, topic, &sc, &s2), 0);
	muon_sub_destroy(s1);
	assert_int_equal(muon_sub_create(ctx, "t", &sc, &s1), 0);
	muon_sub_destroy(s1);
	muon_sub_destroy(s2);
	muon_ctx_destroy(ctx);
}

/* ------------------------------------------------- calls from callbacks */

struct cb_state {
	muon_ctx_t *ctx;
	muon_sub_t *sub;
	int poll_rc;
	char errmsg[256];
	unsigned calls;
	bool destroy_sub;
};

static void poll_from_cb(void *arg, const muon_msg_t *msg)
{
	struct cb_state *st = arg;

	(void)msg;
	st->calls++;
	st->poll_rc = muon_ctx_poll(st->ctx, 0);
	snprintf(st->errmsg, sizeof(st->errmsg), "%s", muon_errmsg());
	if (st->destroy_sub) {
		muon_sub_destroy(st->sub);
		st->sub = NULL;
	}
}

static void test_poll_from_callback(void **state)
{
	char ep[128];
	muon_ctx_t *pc, *sc;
	muon_pub_t *pub = NULL;
	muon_sub_config_t cfg;
	struct cb_state st;
	int i;

	(void)state;
	memset(&st, 0, sizeof(st));
	pc = ut_pub_ctx("shm", NULL, ep, sizeof(ep));
	sc = ut_sub_ctx(ep, NULL);
	st.ctx = sc;
	assert_int_equal(muon_pub_create(pc, "cb", NULL, &pub), 0);
	muon_sub_config_init(&cfg);
	cfg.msg_fn = poll_from_cb;
	cfg.msg_arg = &st;
	assert_int_equal(muon_sub_create(sc, "cb", &cfg, &st.sub), 0);
	UT_POLL_UNTIL(pc, sc, 5000, muon_pub_subscribers(pub) == 1 &&
		      muon_sub_images(st.sub) == 1,
		      "subscriber never connected");
	assert_true(muon_publish(pub, "hello", 5) == 1);
	UT_POLL_UNTIL(pc, sc, 5000, st.calls > 0, "message never arrived");
	assert_int_equal(st.poll_rc, MUON_ESTATE);
	assert_true(strlen(st.errmsg) > 0);

	/* A subscription may destroy itself in its own callback; nothing is
	 * delivered to it after that. */
	st.destroy_sub = true;
	for (i = 0; i < 10; i++)
		assert_true(muon_publish(pub, "more", 4) == 2 + i);
	UT_POLL_UNTIL(pc, sc, 5000, st.calls > 1, "second message lost");
	ut_poll_for(pc, sc, 50);
	assert_int_equal(st.calls, 2);
	assert_null(st.sub);

	muon_ctx_destroy(sc);
	muon_ctx_destroy(pc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ctx_create_args),
		cmocka_unit_test(test_ctx_null_args),
		cmocka_unit_test(test_counters_args),
		cmocka_unit_test(test_listen_endpoint),
		cmocka_unit_test(test_pub_create_args),
		cmocka_unit_test(test_publish_args),
		cmocka_unit_test(test_claim_state),
		cmocka_unit_test(test_claim_abort_laps),
		cmocka_unit_test(test_sub_create_args),
		cmocka_unit_test(test_poll_from_callback),
	};

	return cmocka_run_group_tests_name("unit.api", tests, NULL, NULL);
}
