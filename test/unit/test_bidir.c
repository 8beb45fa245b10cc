/*
 * Connections are bidirectional and there is one per pair of contexts:
 * - a publisher context subscribes, over the connection a subscriber
 *   context made to it, to a topic that subscriber context publishes;
 * - two contexts that list each other as peers end up with exactly one
 *   connection, and messages both ways arrive once, in order, complete.
 * Run on shm, tcp and (in the Soft-RoCE VM) verbs; argv[1] picks tests
 * by name pattern.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unit_util.h"

#define N 2000

static void publish_n(muon_ctx_t *a, muon_ctx_t *b, muon_pub_t *p,
		      uint64_t first, uint64_t n)
{
	uint8_t buf[256];
	uint64_t seq;

	for (seq = first; seq < first + n; seq++) {
		size_t len = ut_len_for(seq, 0, sizeof(buf));
		int64_t rc;

		ut_fill(buf, len, seq);
		while ((rc = muon_publish(p, buf, len)) == MUON_EBACKPRESSURE)
			ut_poll2(a, b);
		assert_int_equal(rc, (int64_t)seq);
	}
}

static void check_rx(const struct ut_rx *rx, uint64_t n)
{
	assert_int_equal(rx->n_msgs, n);
	assert_int_equal(rx->order_errors, 0);
	assert_int_equal(rx->payload_errors, 0);
	assert_int_equal(rx->meta_errors, 0);
	assert_int_equal(rx->n_loss, 0);
}

/* Count live connections of a context through its counters. */
static uint64_t live_conns(const muon_ctx_t *c)
{
	muon_counters_t k = ut_counters(c);

	return k.connects - k.disconnects;
}

static void reverse_subscription(const char *transport)
{
	char ep[128];
	muon_ctx_t *pc = ut_pub_ctx(transport, NULL, ep, sizeof(ep));
	muon_ctx_t *sc = ut_sub_ctx(ep, NULL);
	muon_pub_t *p_fwd, *p_rev;
	muon_sub_t *s_fwd, *s_rev;
	muon_sub_config_t cfg;
	struct ut_rx fwd, rev;

	/* pc publishes "fwd" and subscribes to "rev", which sc publishes;
	 * pc has no peers: "rev" must come over the connection sc made. */
	ut_rx_init(&fwd, "fwd", 0, 256);
	ut_rx_init(&rev, "rev", 0, 256);
	assert_int_equal(muon_pub_create(pc, "fwd", NULL, &p_fwd), 0);
	assert_int_equal(muon_pub_create(sc, "rev", NULL, &p_rev), 0);
	ut_rx_sub_config(&fwd, &cfg);
	assert_int_equal(muon_sub_create(sc, "fwd", &cfg, &s_fwd), 0);
	ut_rx_sub_config(&rev, &cfg);
	assert_int_equal(muon_sub_create(pc, "rev", &cfg, &s_rev), 0);
	UT_POLL_UNTIL(pc, sc, 5000, muon_sub_images(s_fwd) == 1 &&
		      muon_sub_images(s_rev) == 1,
		      "%s: images not up both ways", transport);
	publish_n(pc, sc, p_fwd, 1, N);
	publish_n(pc, sc, p_rev, 1, N);
	UT_POLL_UNTIL(pc, sc, 10000, fwd.n_msgs == N && rev.n_msgs == N,
		      "%s: got %llu and %llu of %d", transport,
		      (unsigned long long)fwd.n_msgs,
		      (unsigned long long)rev.n_msgs, N);
	check_rx(&fwd, N);
	check_rx(&rev, N);
	assert_int_equal(live_conns(pc), 1);
	assert_int_equal(live_conns(sc), 1);
	muon_ctx_destroy(sc);
	muon_ctx_destroy(pc);
}

static void mutual_peers(const char *transport)
{
	muon_ctx_config_t ca, cb;
	char la[128], lb[128], ea[128], eb[128];
	muon_ctx_t *a, *b;
	muon_pub_t *pa, *pb;
	muon_sub_t *sa, *sb;
	muon_sub_config_t cfg;
	struct ut_rx ra, rb;

	/* Each lists the other as a peer: both connect, one connection must
	 * remain, and nothing may arrive twice. */
	ut_ctx_config(&ca, "a");
	ut_ctx_config(&cb, "b");
	if (!strcmp(transport, "shm")) {
		ut_listen_uri(la, sizeof(la), "shm", "mutual-a");
		ut_listen_uri(lb, sizeof(lb), "shm", "mutual-b");
		strcpy(ea, la);
		strcpy(eb, lb);
		ca.listen = la;
		ca.peers = eb;
		cb.listen = lb;
		cb.peers = ea;
		assert_int_equal(muon_ctx_create(&ca, &a), 0);
		assert_int_equal(muon_ctx_create(&cb, &b), 0);
	} else {
		/* Ports are known only after listening: b learns a's, then
		 * a is re-created knowing b's. */
		ut_listen_uri(la, sizeof(la), transport, "mutual-a");
		ut_listen_uri(lb, sizeof(lb), transport, "mutual-b");
		ca.listen = la;
		assert_int_equal(muon_ctx_create(&ca, &a), 0);
		assert_int_equal(muon_ctx_listen_endpoint(a, 0, ea, sizeof(ea)),
				 0);
		cb.listen = lb;
		cb.peers = ea;
		assert_int_equal(muon_ctx_create(&cb, &b), 0);
		assert_int_equal(muon_ctx_listen_endpoint(b, 0, eb, sizeof(eb)),
				 0);
		muon_ctx_destroy(a);
		ca.listen = ea;
		ca.peers = eb;
		assert_int_equal(muon_ctx_create(&ca, &a), 0);
	}
	ut_rx_init(&ra, "to-a", 0, 256);
	ut_rx_init(&rb, "to-b", 0, 256);
	assert_int_equal(muon_pub_create(a, "to-b", NULL, &pb), 0);
	assert_int_equal(muon_pub_create(b, "to-a", NULL, &pa), 0);
	ut_rx_sub_config(&ra, &cfg);
	cfg.start = MUON_START_EARLIEST;
	assert_int_equal(muon_sub_create(a, "to-a", &cfg, &sa), 0);
	ut_rx_sub_config(&rb, &cfg);
	cfg.start = MUON_START_EARLIEST;
	assert_int_equal(muon_sub_create(b, "to-b", &cfg, &sb), 0);
	/* Publish while connections are still forming and being deduped. */
	publish_n(a, b, pb, 1, N / 2);
	publish_n(a, b, pa, 1, N / 2);
	ut_poll_for(a, b, 300);
	publish_n(a, b, pb, N / 2 + 1, N / 2);
	publish_n(a, b, pa, N / 2 + 1, N / 2);
	UT_POLL_UNTIL(a, b, 10000, ra.n_msgs == N && rb.n_msgs == N,
		      "%s: got %llu and %llu of %d", transport,
		      (unsigned long long)ra.n_msgs,
		      (unsigned long long)rb.n_msgs, N);
	ut_poll_for(a, b, 300);
	check_rx(&ra, N);
	check_rx(&rb, N);
	assert_int_equal(muon_sub_images(sa), 1);
	assert_int_equal(muon_sub_images(sb), 1);
	assert_int_equal(live_conns(a), 1);
	assert_int_equal(live_conns(b), 1);
	/* And it stays that way: the covered peer does not reconnect. */
	ut_poll_for(a, b, 1000);
	assert_int_equal(live_conns(a), 1);
	assert_int_equal(live_conns(b), 1);
	muon_ctx_destroy(b);
	muon_ctx_destroy(a);
}

/*
 * A peer offered on several transports: the ones that cannot work here (no
 * such shm name on this host; no RDMA device for 127.0.0.1) hand over to
 * the next, and the stream arrives over the one that does; shm, when it
 * works, wins wherever it is listed. `last` is the listed-last transport
 * that must win.
 */
static void alternatives(const char *last)
{
	char ep[128], peers[400];
	muon_ctx_t *pc = ut_pub_ctx(last, NULL, ep, sizeof(ep));
	muon_ctx_t *sc;
	muon_pub_t *p;
	muon_sub_t *s;
	muon_sub_config_t cfg;
	struct ut_rx rx;

	snprintf(peers, sizeof(peers), "%s%s|verbs://127.0.0.1:9|%s",
		 strcmp(last, "shm") ? "shm://nobody-here-" : "tcp://127.0.0.1:",
		 strcmp(last, "shm") ? "x" : "9", ep);
	sc = ut_sub_ctx(peers, NULL);
	ut_rx_init(&rx, "alt", 0, 256);
	assert_int_equal(muon_pub_create(pc, "alt", NULL, &p), 0);
	ut_rx_sub_config(&rx, &cfg);
	assert_int_equal(muon_sub_create(sc, "alt", &cfg, &s), 0);
	UT_POLL_UNTIL(pc, sc, 10000, muon_sub_images(s) == 1,
		      "%s: no image over the alternatives %s", last, peers);
	publish_n(pc, sc, p, 1, N);
	UT_POLL_UNTIL(pc, sc, 10000, rx.n_msgs == N, "%s: got %llu of %d", last,
		      (unsigned long long)rx.n_msgs, N);
	check_rx(&rx, N);
	/* shm is preferred whatever the order: nothing failed on the way;
	 * tcp comes after shm and verbs, which both had to fail first. */
	if (!strcmp(last, "shm"))
		assert_int_equal(ut_counters(sc).connect_failures, 0);
	else
		assert_true(ut_counters(sc).connect_failures >= 2);
	muon_ctx_destroy(sc);
	muon_ctx_destroy(pc);
}

static void test_alt_fallback_tcp(void **s) { (void)s; alternatives("tcp"); }
static void test_alt_fallback_shm(void **s) { (void)s; alternatives("shm"); }

static void test_reverse_shm(void **s) { (void)s; reverse_subscription("shm"); }
static void test_reverse_tcp(void **s) { (void)s; reverse_subscription("tcp"); }
static void test_mutual_shm(void **s) { (void)s; mutual_peers("shm"); }
static void test_mutual_tcp(void **s) { (void)s; mutual_peers("tcp"); }
static void test_reverse_verbs(void **s) { (void)s; reverse_subscription("verbs"); }
static void test_mutual_verbs(void **s) { (void)s; mutual_peers("verbs"); }
/* rdmacm over IPv6: the connect private data and everything after it are
 * the same; only addressing differs. */
static void test_reverse_verbs6(void **s) { (void)s; reverse_subscription("verbs6"); }

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reverse_shm),
		cmocka_unit_test(test_reverse_tcp),
		cmocka_unit_test(test_mutual_shm),
		cmocka_unit_test(test_mutual_tcp),
		cmocka_unit_test(test_alt_fallback_shm),
		cmocka_unit_test(test_alt_fallback_tcp),
		cmocka_unit_test(test_reverse_verbs),
		cmocka_unit_test(test_mutual_verbs),
		cmocka_unit_test(test_reverse_verbs6),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("unit.bidir", tests, NULL, NULL);
}
