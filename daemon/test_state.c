/*
 * Unit tests of muond's state (state.c): leases, registration, watches
 * and limits, driven with a fake clock and a recording push callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/state.h"

struct event {
	uint64_t watch_id;
	struct muond_client *client;
	int kind;
	uint32_t stream_id;
	uint64_t ctx_id;
	char topic[64];
	char ep0[64];
	char reason[32];
};

static struct event events[256];
static size_t n_events;

static void record(void *arg, struct muond_watch *w,
		   Muon__Disc__Update__Kind kind,
		   const Muon__Disc__Publication *p, const char *reason)
{
	struct event *e = &events[n_events++];

	assert_true(n_events <= 256);
	e->watch_id = w->id;
	e->client = w->client;
	e->kind = kind;
	e->stream_id = p->stream_id;
	e->ctx_id = p->ctx_id;
	snprintf(e->topic, sizeof(e->topic), "%s", p->topic);
	snprintf(e->ep0, sizeof(e->ep0), "%s",
		 p->n_endpoints ? p->endpoints[0] : "");
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static const struct muond_limits default_limits = {
	.lease_ms = 5000,
	.max_frame = 65536,
	.max_topics = 100,
	.max_publications = 100,
	.max_publications_per_session = 50,
	.max_watches_per_client = 10,
};

struct fixture {
	struct muond_state *st;
	struct muond_client *pub, *sub;
};

static int setup_limits(void **state, const struct muond_limits *lim)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->st = muond_state_new(lim, record, NULL);
	f->pub = muond_client_new(f->st, NULL);
	f->sub = muond_client_new(f->st, NULL);
	muond_client_hello(f->st, f->pub, 0x11, "pubctx", "host-a", "p");
	muond_client_hello(f->st, f->sub, 0, "muonctl", "host-b", "s");
	n_events = 0;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_limits(state, &default_limits);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	muond_state_free(f->st);
	free(f);
	return 0;
}

/* A publication as a client would send it. */
struct pubmsg {
	Muon__Disc__Publication pb;
	char *eps[2];
	char topic[300];
	char ep[2][64];
};

static Muon__Disc__Publication *mkpub(struct pubmsg *m, const char *topic,
				      uint32_t stream, const char *ep)
{
	muon__disc__publication__init(&m->pb);
	snprintf(m->topic, sizeof(m->topic), "%s", topic);
	snprintf(m->ep[0], sizeof(m->ep[0]), "%s", ep);
	m->eps[0] = m->ep[0];
	m->pb.topic = m->topic;
	m->pb.stream_id = stream;
	m->pb.endpoints = m->eps;
	m->pb.n_endpoints = 1;
	/* Lies the daemon must overwrite. */
	m->pb.ctx_id = 0x999;
	m->pb.host_id = (char *)"forged";
	m->pb.ctx_name = (char *)"forged";
	return &m->pb;
}

static int reg1(struct fixture *f, struct muond_client *c, const char *topic,
		uint32_t stream, const char *ep, uint64_t now)
{
	struct pubmsg m;
	Muon__Disc__Publication *p = mkpub(&m, topic, stream, ep);
	char err[200];

	return muond_register(f->st, c, &p, 1, now, err, sizeof(err));
}

static void watch(struct fixture *f, struct muond_client *c, uint64_t id,
		  const char *topic, bool prefix)
{
	struct muond_watch *w;
	char err[200];

	assert_int_equal(muond_watch_add(f->st, c, id, topic, prefix, &w, err,
					 sizeof(err)),
			 0);
}

static struct muond_stats stats(struct fixture *f)
{
	struct muond_stats s;

	muond_state_stats(f->st, &s);
	return s;
}

static void test_register_up_and_identity(void **state)
{
	struct fixture *f = *state;

	watch(f, f->sub, 7, "md.eurusd", false);
	assert_int_equal(reg1(f, f->pub, "md.eurusd", 1, "tcp://h:1", 0), 0);
	assert_int_equal(n_events, 1);
	assert_int_equal(events[0].kind, MUON__DISC__UPDATE__KIND__UP);
	assert_int_equal(events[0].watch_id, 7);
	assert_int_equal(events[0].stream_id, 1);
	/* The daemon's identity, not the forged one. */
	assert_int_equal(events[0].ctx_id, 0x11);
	assert_int_equal(stats(f).publications, 1);
	assert_int_equal(stats(f).topics, 1);
	assert_int_equal(stats(f).sessions, 1);
}

static void test_reregister_identical_pushes_nothing(void **state)
{
	struct fixture *f = *state;

	watch(f, f->sub, 1, "t", false);
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 0), 0);
	n_events = 0;
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 100), 0);
	assert_int_equal(n_events, 0);
	assert_int_equal(stats(f).publications, 1);
}

static void test_changed_endpoints_up(void **state)
{
	struct fixture *f = *state;

	watch(f, f->sub, 1, "t", false);
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 0), 0);
	n_events = 0;
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:2", 10), 0);
	assert_int_equal(n_events, 1);
	assert_int_equal(events[0].kind, MUON__DISC__UPDATE__KIND__UP);
	assert_string_equal(events[0].ep0, "tcp://h:2");
	assert_int_equal(stats(f).publications, 1);
}

static void test_topic_change_down_then_up(void **state)
{
	struct fixture *f = *state;

	watch(f, f->sub, 1, "a", false);
	watch(f, f->sub, 2, "b", false);
	assert_int_equal(reg1(f, f->pub, "a", 1, "tcp://h:1", 0), 0);
	n_events = 0;
	assert_int_equal(reg1(f, f->pub, "b", 1, "tcp://h:1", 10), 0);
	assert_int_equal(n_events, 2);
	assert_int_equal(events[0].kind, MUON__DISC__UPDATE__KIND__DOWN);
	assert_int_equal(events[0].watch_id, 1);
	assert_string_equal(events[0].topic, "a");
	assert_int_equal(events[1].kind, MUON__DISC__UPDATE__KIND__UP);
	assert_int_equal(events[1].watch_id, 2);
	assert_string_equal(events[1].topic, "b");
	assert_int_equal(stats(f).topics, 1);
}

/* A move that empties topic a while another publication joins a, in
 * one Register: the entry for a must survive for the newcomer. */
static void test_move_and_join_in_one_register(void **state)
{
	struct fixture *f = *state;
	struct pubmsg m1, m2;
	Muon__Disc__Publication *ps[2];
	char err[200];

	assert_int_equal(reg1(f, f->pub, "a", 1, "tcp://h:1", 0), 0);
	ps[0] = mkpub(&m1, "b", 1, "tcp://h:1");
	ps[1] = mkpub(&m2, "a", 2, "tcp://h:1");
	watch(f, f->sub, 9, "a", false);
	n_events = 0;
	assert_int_equal(muond_register(f->st, f->pub, ps, 2, 5, err,
					sizeof(err)),
			 0);
	assert_int_equal(n_events, 2); /* DOWN 1 on a, UP 2 on a */
	assert_int_equal(stats(f).publications, 2);
	assert_int_equal(stats(f).topics, 2);
}

static void test_unregister_down(void **state)
{
	struct fixture *f = *state;
	uint32_t ids[] = { 1, 77 };

	watch(f, f->sub, 3, "t", false);
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 0), 0);
	n_events = 0;
	assert_int_equal(muond_unregister(f->st, f->pub, ids, 2, 10), 0);
	assert_int_equal(n_events, 1);
	assert_int_equal(events[0].kind, MUON__DISC__UPDATE__KIND__DOWN);
	assert_string_equal(events[0].reason, "unregistered");
	assert_int_equal(stats(f).publications, 0);
	assert_int_equal(stats(f).topics, 0);
}

static void test_lease_expiry_exact(void **state)
{
	struct fixture *f = *state;

	watch(f, f->sub, 1, "t", false);
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 1000), 0);
	assert_int_equal(muond_state_next_expiry(f->st), 6000);
	n_events = 0;
	muond_state_expire(f->st, 5999);
	assert_int_equal(n_events, 0);
	assert_int_equal(stats(f).publications, 1);
	muond_state_expire(f->st, 6000);
	assert_int_equal(n_events, 1);
	assert_int_equal(events[0].kind, MUON__DISC__UPDATE__KIND__DOWN);
	assert_string_equal(events[0].reason, "lease expired");
	assert_int_equal(stats(f).publications, 0);
	assert_int_equal(stats(f).sessions, 0);
	assert_int_equal(stats(f).leases_expired, 1);
	assert_int_equal(muond_state_next_expiry(f->st), UINT64_MAX);
	/* The owner may register again: a new session. */
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 7000), 0);
	assert_int_equal(stats(f).sessions, 1);
}

static void test_renewal(void **state)
{
	struct fixture *f = *state;
	struct muond_client *other = muond_client_new(f->st, NULL);

	muond_client_hello(f->st, other, 0x22, "o", "h", "o");
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 0), 0);
	assert_int_equal(reg1(f, other, "u", 1, "tcp://h:2", 1000), 0);
	muond_renew(f->st, f->pub, 4000);
	assert_int_equal(muond_state_next_expiry(f->st), 6000);
	muond_state_expire(f->st, 6000);
	assert_int_equal(stats(f).publications, 1); /* the renewed one */
	assert_int_equal(muond_state_next_expiry(f->st), 9000);
	muond_state_expire(f->st, 8999);
	assert_int_equal(stats(f).publications, 1);
	muond_state_expire(f->st, 9000);
	assert_int_equal(stats(f).publications, 0);
	/* Renew without a session is a keepalive only. */
	muond_renew(f->st, f->sub, 9000);
	assert_int_equal(stats(f).sessions, 0);
}

static void test_disconnect_keeps_publications(void **state)
{
	struct fixture *f = *state;
	struct muond_client *again;

	watch(f, f->sub, 1, "t", false);
	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 0), 0);
	muond_client_free(f->st, f->pub);
	f->pub = NULL;
	assert_int_equal(stats(f).publications, 1);
	/* Reconnect within the lease and re-register: no flap. */
	again = muond_client_new(f->st, NULL);
	muond_client_hello(f->st, again, 0x11, "pubctx", "host-a", "p");
	n_events = 0;
	assert_int_equal(reg1(f, again, "t", 1, "tcp://h:1", 3000), 0);
	assert_int_equal(n_events, 0);
	muond_state_expire(f->st, 5000);
	assert_int_equal(stats(f).publications, 1);
	muond_state_expire(f->st, 8000);
	assert_int_equal(stats(f).publications, 0);
	assert_int_equal(n_events, 1);
}

static void test_session_takeover(void **state)
{
	struct fixture *f = *state;
	struct muond_client *newer = muond_client_new(f->st, NULL);

	assert_int_equal(reg1(f, f->pub, "t", 1, "tcp://h:1", 0), 0);
	muond_client_hello(f->st, newer, 0x11, "pubctx", "host-a", "p");
	/* The old connection no longer renews the lease... */
	muond_renew(f->st, f->pub, 4000);
	assert_int_equal(muond_state_next_expiry(f->st), 5000);
	/* ...the new one does, and owns the publications. */
	muond_renew(f->st, newer, 4000);
	assert_int_equal(muond_state_next_expiry(f->st), 9000);
	assert_null(f->pub->session);
	assert_non_null(newer->session);
	/* The old one's Unregister touches nothing. */
	uint32_t id = 1;
	muond_unregister(f->st, f->pub, &id, 1, 4000);
	assert_int_equal(stats(f).publications, 1);
}

static void test_prefix_and_exact_watches(void **state)
{
	struct fixture *f = *state;
	size_t i, all = 0, md = 0, mdx = 0, exact = 0;

	watch(f, f->sub, 1, "", true);
	watch(f, f->sub, 2, "md.", true);
	watch(f, f->sub, 3, "md.eur", true);
	watch(f, f->sub, 4, "md.eurusd", false);
	watch(f, f->sub, 5, "md.eurusd.x", false);
	watch(f, f->sub, 6, "ref.", true);
	assert_int_equal(reg1(f, f->pub, "md.eurusd", 1, "tcp://h:1", 0), 0);
	for (i = 0; i < n_events; i++) {
		all += events[i].watch_id == 1;
		md += events[i].watch_id == 2;
		mdx += events[i].watch_id == 3;
		exact += events[i].watch_id == 4;
	}
	assert_int_equal(n_events, 4);
	assert_int_equal(all + md + mdx + exact, 4);
	/* A prefix equal to the whole topic matches too. */
	watch(f, f->sub, 7, "md.eurusd", true);
	n_events = 0;
	assert_int_equal(reg1(f, f->pub, "md.gbpusd", 2, "tcp://h:1", 0), 0);
	assert_int_equal(n_events, 2); /* "" and "md." */
	n_events = 0;
	assert_int_equal(reg1(f, f->pub, "md.eurusd", 3, "tcp://h:1", 0), 0);
	assert_int_equal(n_events, 5);
	/* Unwatch stops the pushes; unknown ids are refused. */
	assert_int_equal(muond_watch_remove(f->st, f->sub, 7), 0);
	assert_int_not_equal(muond_watch_remove(f->st, f->sub, 7), 0);
	n_events = 0;
	assert_int_equal(reg1(f, f->pub, "md.eurusd", 4, "tcp://h:1", 0), 0);
	assert_int_equal(n_events, 4);
}

static size_t snap_n;
static void count_pub(void *arg, const Muon__Disc__Publication *p)
{
	snap_n++;
}

static void test_snapshot(void **state)
{
	struct fixture *f = *state;
	struct muond_watch *w;
	char err[200];

	assert_int_equal(reg1(f, f->pub, "md.a", 1, "tcp://h:1", 0), 0);
	assert_int_equal(reg1(f, f->pub, "md.b", 2, "tcp://h:1", 0), 0);
	assert_int_equal(reg1(f, f->pub, "ref.a", 3, "tcp://h:1", 0), 0);
	assert_int_equal(muond_watch_add(f->st, f->sub, 1, "md.", true, &w,
					 err, sizeof(err)),
			 0);
	snap_n = 0;
	muond_watch_snapshot(f->st, w, count_pub, NULL);
	assert_int_equal(snap_n, 2);
	assert_int_equal(muond_watch_add(f->st, f->sub, 2, "", true, &w, err,
					 sizeof(err)),
			 0);
	snap_n = 0;
	muond_watch_snapshot(f->st, w, count_pub, NULL);
	assert_int_equal(snap_n, 3);
	assert_int_equal(muond_watch_add(f->st, f->sub, 3, "ref.a", false, &w,
					 err, sizeof(err)),
			 0);
	snap_n = 0;
	muond_watch_snapshot(f->st, w, count_pub, NULL);
	assert_int_equal(snap_n, 1);
}

static void test_watch_checks(void **state)
{
	struct fixture *f = *state;
	struct muond_watch *w;
	char err[200], big[300];
	uint64_t i;

	assert_int_equal(muond_watch_add(f->st, f->sub, 1, "", false, &w, err,
					 sizeof(err)),
			 MUON__DISC__ERROR__CODE__BAD_REQUEST);
	memset(big, 'x', 256);
	big[256] = 0;
	assert_int_equal(muond_watch_add(f->st, f->sub, 1, big, true, &w, err,
					 sizeof(err)),
			 MUON__DISC__ERROR__CODE__BAD_REQUEST);
	watch(f, f->sub, 1, "a", false);
	assert_int_equal(muond_watch_add(f->st, f->sub, 1, "b", false, &w,
					 err, sizeof(err)),
			 MUON__DISC__ERROR__CODE__BAD_REQUEST);
	for (i = 2; i <= 10; i++)
		watch(f, f->sub, i, "a", false);
	assert_int_equal(muond_watch_add(f->st, f->sub, 11, "b", false, &w,
					 err, sizeof(err)),
			 MUON__DISC__ERROR__CODE__LIMIT);
	assert_int_equal(stats(f).watches, 10);
}

static void test_register_checks_atomic(void **state)
{
	struct fixture *f = *state;
	struct pubmsg m[3];
	Muon__Disc__Publication *ps[3];
	char err[200];

	watch(f, f->sub, 1, "", true);
	/* A bad endpoint in the third: nothing of the first two. */
	ps[0] = mkpub(&m[0], "a", 1, "tcp://h:1");
	ps[1] = mkpub(&m[1], "b", 2, "tcp://h:1");
	ps[2] = mkpub(&m[2], "c", 3, "bogus://x");
	assert_int_equal(muond_register(f->st, f->pub, ps, 3, 0, err,
					sizeof(err)),
			 MUON__DISC__ERROR__CODE__BAD_REQUEST);
	assert_int_equal(n_events, 0);
	assert_int_equal(stats(f).publications, 0);
	/* The same stream twice. */
	ps[2] = mkpub(&m[2], "c", 1, "tcp://h:1");
	assert_int_equal(muond_register(f->st, f->pub, ps, 3, 0, err,
					sizeof(err)),
			 MUON__DISC__ERROR__CODE__BAD_REQUEST);
	/* An empty topic. */
	ps[2] = mkpub(&m[2], "", 3, "tcp://h:1");
	assert_int_equal(muond_register(f->st, f->pub, ps, 3, 0, err,
					sizeof(err)),
			 MUON__DISC__ERROR__CODE__BAD_REQUEST);
	assert_int_equal(n_events, 0);
	assert_int_equal(stats(f).publications, 0);
	/* Tools (ctx_id 0) may not register. */
	assert_int_equal(reg1(f, f->sub, "a", 1, "tcp://h:1", 0),
			 MUON__DISC__ERROR__CODE__STATE);
}

static int setup_small(void **state)
{
	static const struct muond_limits lim = {
		.lease_ms = 5000,
		.max_frame = 65536,
		.max_topics = 3,
		.max_publications = 5,
		.max_publications_per_session = 4,
		.max_watches_per_client = 10,
	};

	return setup_limits(state, &lim);
}

static void test_limits_atomic(void **state)
{
	struct fixture *f = *state;
	struct pubmsg m[5];
	Muon__Disc__Publication *ps[5];
	struct muond_client *other = muond_client_new(f->st, NULL);
	char err[200];
	uint32_t i;

	muond_client_hello(f->st, other, 0x22, "o", "h", "o");
	watch(f, f->sub, 1, "", true);
	/* Per session: 5 > 4. */
	for (i = 0; i < 5; i++)
		ps[i] = mkpub(&m[i], "a", i + 1, "tcp://h:1");
	assert_int_equal(muond_register(f->st, f->pub, ps, 5, 0, err,
					sizeof(err)),
			 MUON__DISC__ERROR__CODE__LIMIT);
	assert_int_equal(stats(f).publications, 0);
	assert_int_equal(muond_register(f->st, f->pub, ps, 4, 0, err,
					sizeof(err)),
			 0);
	/* Replacing existing ones needs no room. */
	assert_int_equal(muond_register(f->st, f->pub, ps, 4, 0, err,
					sizeof(err)),
			 0);
	/* Total: 4 + 2 > 5. */
	ps[0] = mkpub(&m[0], "b", 1, "tcp://h:1");
	ps[1] = mkpub(&m[1], "b", 2, "tcp://h:1");
	n_events = 0;
	assert_int_equal(muond_register(f->st, other, ps, 2, 0, err,
					sizeof(err)),
			 MUON__DISC__ERROR__CODE__LIMIT);
	assert_int_equal(n_events, 0);
	assert_int_equal(stats(f).publications, 4);
	/* Topics: a exists; b, c, d would make 4 > 3. */
	assert_int_equal(muond_unregister(f->st, f->pub,
					  (uint32_t[]){ 1, 2, 3 }, 3, 0),
			 0);
	ps[0] = mkpub(&m[0], "b", 1, "tcp://h:1");
	ps[1] = mkpub(&m[1], "c", 2, "tcp://h:1");
	ps[2] = mkpub(&m[2], "d", 3, "tcp://h:1");
	n_events = 0;
	assert_int_equal(muond_register(f->st, other, ps, 3, 0, err,
					sizeof(err)),
			 MUON__DISC__ERROR__CODE__LIMIT);
	assert_int_equal(n_events, 0);
	assert_int_equal(muond_register(f->st, other, ps, 2, 0, err,
					sizeof(err)),
			 0);
	assert_int_equal(stats(f).topics, 3);
}

/* Many publications and watchers: a change reaches exactly the watchers
 * of its topic, found by index. */
static void test_scale(void **state)
{
	static const struct muond_limits lim = {
		.lease_ms = 5000,
		.max_frame = 65536,
		.max_topics = 100000,
		.max_publications = 100000,
		.max_publications_per_session = 65536,
		.max_watches_per_client = 10000,
	};
	struct muond_state *st = muond_state_new(&lim, record, NULL);
	struct muond_client *p = muond_client_new(st, NULL);
	struct muond_client *s = muond_client_new(st, NULL);
	struct pubmsg m;
	Muon__Disc__Publication *pp;
	struct muond_watch *w;
	char err[200], topic[32];
	uint32_t i;

	muond_client_hello(st, p, 1, "p", "h", "p");
	muond_client_hello(st, s, 0, "s", "h", "s");
	for (i = 0; i < 1000; i++) {
		snprintf(topic, sizeof(topic), "t.%u", i);
		assert_int_equal(muond_watch_add(st, s, i, topic, false, &w,
						 err, sizeof(err)),
				 0);
	}
	n_events = 0;
	for (i = 0; i < 10000; i++) {
		snprintf(topic, sizeof(topic), "t.%u", i);
		pp = mkpub(&m, topic, i, "tcp://h:1");
		assert_int_equal(muond_register(st, p, &pp, 1, 0, err,
						sizeof(err)),
				 0);
		if (n_events > 200)
			n_events = 0;
	}
	muond_state_stats(st, &(struct muond_stats){ 0 });
	n_events = 0;
	muond_state_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_up_and_identity,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_reregister_identical_pushes_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_changed_endpoints_up,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_topic_change_down_then_up,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_move_and_join_in_one_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unregister_down, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lease_expiry_exact, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_renewal, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_disconnect_keeps_publications, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_takeover, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_prefix_and_exact_watches,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_checks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_register_checks_atomic,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_atomic, setup_small,
						teardown),
		cmocka_unit_test(test_scale),
	};

	return cmocka_run_group_tests_name("muond_state", tests, NULL, NULL);
}
