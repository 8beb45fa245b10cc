/*
 * Connection hand-over between two contexts that dial each other.
 *
 * Each context publishes one topic and subscribes to the other's, and each
 * lists the other as a peer, so both dial at about the same moment and
 * muon keeps one of the two connections (conn.c, conn_dedupe). Streams
 * that were already flowing on the dropped connection move to the kept
 * one. DESIGN.md's guarantee must hold across that move: every message
 * published once the publisher had accepted the subscription arrives
 * exactly once, in order, byte for byte, or is reported by a LOSS event.
 *
 * Two processes race in ways one thread polling two contexts in turn
 * never does: the other side writes between this side's data-path poll
 * and its control plane, so a connection can be dropped with frames still
 * unread in it. The scheduler reproduces that on purpose: besides whole
 * polls it runs a context's control plane alone (muoni_ctx_control), the
 * way the second half of a poll sees a peer that wrote meanwhile. Steps
 * come from a seeded PRNG; a failure prints its seed, and
 * MUON_HANDOVER_SEED=S replays exactly that run. MUON_HANDOVER_LOOPS=N
 * (default 20) runs N seeds per test.
 *
 *   pingpong: a pings as soon as both subscriptions are accepted (see
 *             may_ping), b answers each ping; a round trip that never
 *             returns is a silent loss.
 *   stream:   both publish as fast as they can from the start.
 *   threads:  pingpong and stream at once, each context on its own thread
 *             (real concurrency, as between two processes; not seeded).
 *
 * argv[1] picks tests by name pattern (*_shm, *_tcp, *_verbs).
 */
#include "unit_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/muoni.h"

#define RTTS 200           /* round trips per pingpong run */
#define STREAM_N 3000      /* messages each way per stream run */
#define STALL_MS 3000      /* no progress for this long: lost */
#define MAXLEN 200

/* ------------------------------------------------------------ receiver */

/* Checks one stream: the first message may be any sequence (LATEST), every
 * later one must be the next, unless a LOSS event said what is gone. */
struct rx {
	const char *topic;
	uint64_t first;   /* first sequence delivered, 0: none yet */
	uint64_t expect;  /* next sequence, 0: none yet */
	uint64_t n_msgs;
	uint64_t lost;    /* sequences reported lost */
	unsigned n_loss;
	unsigned order_errors;
	unsigned payload_errors;
	uint64_t bad_seq;
	uint64_t bad_expect;
};

static void rx_msg(void *arg, const muon_msg_t *m)
{
	struct rx *r = arg;

	r->n_msgs++;
	if (!r->first)
		r->first = r->expect ? r->expect : m->seq;
	if (r->expect && m->seq != r->expect && !r->order_errors++) {
		r->bad_seq = m->seq;
		r->bad_expect = r->expect;
	}
	r->expect = m->seq + 1;
	if (m->len != ut_len_for(m->seq, 0, MAXLEN) ||
	    ut_check(m->data, m->len, m->seq)) {
		if (!r->payload_errors++ && !r->bad_seq)
			r->bad_seq = m->seq;
	}
}

static void rx_event(void *arg, const muon_event_t *ev)
{
	struct rx *r = arg;

	if (ev->type != MUON_EVENT_LOSS)
		return;
	r->n_loss++;
	r->lost += ev->to_seq - ev->from_seq + 1;
	if (!r->first)
		r->first = ev->from_seq;
	if (r->expect && ev->from_seq != r->expect && !r->order_errors++) {
		r->bad_seq = ev->from_seq;
		r->bad_expect = r->expect;
	}
	r->expect = ev->to_seq + 1;
}

static void rx_config(struct rx *r, const char *topic, muon_sub_config_t *c)
{
	memset(r, 0, sizeof(*r));
	r->topic = topic;
	muon_sub_config_init(c);
	c->msg_fn = rx_msg;
	c->msg_arg = r;
	c->event_fn = rx_event;
	c->event_arg = r;
	/* LATEST, as muon-bench and most applications: EARLIEST would hide
	 * a hand-over that forgets where a stream started. */
	c->start = MUON_START_LATEST;
}

/* ------------------------------------------------------------ contexts */

/* A tcp port nobody listens on now. */
static unsigned free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* A port free in rdmacm's own space at the device's address: bound by an
 * id and released, so another id may still take it first (pair_open then
 * guesses again). Without a device, free_port()'s guess: creating the
 * context fails anyway, and says why. */
static unsigned rdma_free_port(const char *addr)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct rdma_cm_id *id;
	unsigned port = 0;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    rdma_create_id(NULL, &id, NULL, RDMA_PS_TCP) != 0)
		return free_port();
	if (rdma_bind_addr(id, (struct sockaddr *)&sa) == 0)
		port = ntohs(rdma_get_src_port(id));
	rdma_destroy_id(id);
	return port ? port : free_port();
}

static void endpoint(char *buf, size_t len, const char *transport,
		     const char *tag)
{
	static unsigned n;

	if (!strcmp(transport, "shm"))
		snprintf(buf, len, "shm://unit-%d-ho-%s-%u", (int)getpid(), tag,
			 ++n);
	else if (!strcmp(transport, "tcp"))
		snprintf(buf, len, "tcp://127.0.0.1:%u", free_port());
	else
		snprintf(buf, len, "verbs://%s:%u", ut_rdma_addr(),
			 rdma_free_port(ut_rdma_addr()));
}

struct pair {
	muon_ctx_t *a, *b;
	muon_pub_t *ping, *pong; /* a publishes ping, b publishes pong */
	muon_sub_t *s_ping, *s_pong;
	struct rx rx_ping, rx_pong; /* at b, at a */
	uint64_t first_ping, first_pong; /* first published with a subscriber */
	uint64_t ping_sent, pong_sent;
};

/*
 * Both contexts list each other; a's first dial fails (b does not exist
 * yet) and is retried after reconnect_ms, b's goes out at once: with a
 * reconnect_ms of a few ms the two meet in every order the scheduler
 * makes. Publications and subscriptions exist before the first poll, as in
 * muon-bench.
 */
static void pair_open(struct pair *p, const char *transport,
		      uint32_t reconnect_ms)
{
	muon_ctx_config_t ca, cb;
	muon_sub_config_t sc;
	char ea[128], eb[128];
	unsigned attempt;
	int rc;

	memset(p, 0, sizeof(*p));
	/* Both peer lists need both ports before either context exists, so
	 * tcp and verbs ports are guesses (free_port, rdma_free_port) that
	 * another socket or rdmacm id can take first: a port in use means
	 * guess again. */
	for (attempt = 1;; attempt++) {
		endpoint(ea, sizeof(ea), transport, "a");
		endpoint(eb, sizeof(eb), transport, "b");
		ut_ctx_config(&ca, "a");
		ut_ctx_config(&cb, "b");
		ca.listen = ea;
		ca.peers = eb;
		cb.listen = eb;
		cb.peers = ea;
		ca.reconnect_ms = cb.reconnect_ms = reconnect_ms;
		rc = muon_ctx_create(&ca, &p->a);
		if (!rc) {
			rc = muon_ctx_create(&cb, &p->b);
			if (rc) {
				muon_ctx_destroy(p->a);
				p->a = NULL;
			}
		}
		if (!rc)
			break;
		if (attempt == 5 || !strstr(muon_errmsg(), "in use"))
			fail_msg("muon_ctx_create (listen %s and %s, attempt "
				 "%u): %s: %s", ea, eb, attempt,
				 muon_strerror(rc), muon_errmsg());
		fprintf(stderr, "handover %s: %s; new ports\n", transport,
			muon_errmsg());
	}
	assert_int_equal(muon_pub_create(p->a, "ho.ping", NULL, &p->ping), 0);
	assert_int_equal(muon_pub_create(p->b, "ho.pong", NULL, &p->pong), 0);
	rx_config(&p->rx_ping, "ho.ping", &sc);
	assert_int_equal(muon_sub_create(p->b, "ho.ping", &sc, &p->s_ping), 0);
	rx_config(&p->rx_pong, "ho.pong", &sc);
	assert_int_equal(muon_sub_create(p->a, "ho.pong", &sc, &p->s_pong), 0);
}

static void pair_close(struct pair *p)
{
	muon_ctx_destroy(p->b);
	muon_ctx_destroy(p->a);
}

static uint64_t live_conns(const muon_ctx_t *c)
{
	muon_counters_t k = ut_counters(c);

	return k.connects - k.disconnects;
}

/* Publish the next message of `pub`; false on back-pressure. Records the
 * first sequence published while the publication had a subscriber: from
 * there on, everything must arrive. */
static bool publish_next(muon_pub_t *pub, uint64_t *sent, uint64_t *first)
{
	uint8_t buf[MAXLEN];
	uint64_t seq = *sent + 1;
	size_t len = ut_len_for(seq, 0, MAXLEN);
	int subs = muon_pub_subscribers(pub);
	int64_t rc;

	ut_fill(buf, len, seq);
	rc = muon_publish(pub, buf, len);
	if (rc == MUON_EBACKPRESSURE)
		return false;
	if (rc < 0)
		fail_msg("muon_publish: %s: %s", muon_strerror((int)rc),
			 muon_errmsg());
	assert_int_equal(rc, (int64_t)seq);
	*sent = seq;
	if (!*first && subs > 0)
		*first = seq;
	return true;
}

/*
 * The first ping goes out once b's subscription was accepted (ping has a
 * subscriber) and b accepted a's (a has b's stream), as muon-bench waits,
 * without its settling time. Earlier, the first pong could legitimately
 * miss a: on shm the ping travels in the data ring and a's SUBSCRIBE on
 * the control socket, so b may read the ping first and answer before it
 * has accepted a's subscription (a START_LATEST subscription begins where
 * the publisher accepts it, which IMAGE_UP reports).
 */
static bool may_ping(struct pair *p)
{
	return muon_pub_subscribers(p->ping) > 0 &&
	       muon_sub_images(p->s_pong) > 0;
}

/* ------------------------------------------------------------ scheduler */

/* The control plane alone: epoll callbacks (accepts, handshakes, control
 * frames, on tcp whatever the socket holds) and timers, as a poll runs
 * them after its data-path pass. */
static void control_only(muon_ctx_t *ctx)
{
	if (ctx->reap_pending)
		return; /* only a whole poll frees the dead */
	ctx->in_poll = true;
	muoni_ctx_control(ctx);
	ctx->in_poll = false;
}

static void step(muon_ctx_t *a, muon_ctx_t *b, uint64_t *rng)
{
	int rc = 0;

	switch (ut_below(rng, 6)) {
	case 0:
	case 1:
		rc = muon_ctx_poll(a, 0);
		break;
	case 2:
	case 3:
		rc = muon_ctx_poll(b, 0);
		break;
	case 4:
		control_only(a);
		break;
	default:
		control_only(b);
	}
	if (rc < 0)
		fail_msg("muon_ctx_poll: %s: %s", muon_strerror(rc),
			 muon_errmsg());
}

static void report(const char *what, const struct rx *r, uint64_t sent,
		   uint64_t first_pub)
{
	fprintf(stderr, "  %s: sent %llu (first with a subscriber %llu); "
		"received %llu from %llu, next expected %llu, %u loss events "
		"(%llu msgs), %u order errors (got %llu, expected %llu), %u "
		"payload errors\n", what, (unsigned long long)sent,
		(unsigned long long)first_pub, (unsigned long long)r->n_msgs,
		(unsigned long long)r->first, (unsigned long long)r->expect,
		r->n_loss, (unsigned long long)r->lost, r->order_errors,
		(unsigned long long)r->bad_seq,
		(unsigned long long)r->bad_expect, r->payload_errors);
}

/* Exactly once and in order from the first sequence published with a
 * subscriber (or earlier) up to the last one sent, gaps only as LOSS. */
static bool rx_complete(const struct rx *r, uint64_t sent, uint64_t first_pub)
{
	return r->order_errors == 0 && r->payload_errors == 0 &&
	       (!first_pub || (r->first && r->first <= first_pub)) &&
	       r->expect == sent + 1;
}

static void pair_check(struct pair *p, const char *transport, uint64_t seed)
{
	bool ok = rx_complete(&p->rx_ping, p->ping_sent, p->first_ping) &&
		  rx_complete(&p->rx_pong, p->pong_sent, p->first_pong) &&
		  p->rx_ping.n_loss == 0 && p->rx_pong.n_loss == 0;

	if (ok)
		return;
	fprintf(stderr, "handover %s seed %llu failed:\n", transport,
		(unsigned long long)seed);
	report("ping a->b", &p->rx_ping, p->ping_sent, p->first_ping);
	report("pong b->a", &p->rx_pong, p->pong_sent, p->first_pong);
	fail_msg("%s: seed %llu: stream not complete (MUON_HANDOVER_SEED="
		 "%llu to replay)", transport, (unsigned long long)seed,
		 (unsigned long long)seed);
}

/* ------------------------------------------------------------ scenarios */

static void run_pingpong(const char *transport, uint64_t seed)
{
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
	uint64_t progress_ms, last_pongs = 0;
	struct pair p;

	pair_open(&p, transport, 1 + (uint32_t)ut_below(&rng, 8));
	progress_ms = ut_now_ms();
	while (p.rx_pong.n_msgs < RTTS) {
		step(p.a, p.b, &rng);
		/* a: the next ping once the last came back, the first as soon
		 * as b's subscription was accepted */
		if (p.ping_sent == p.rx_pong.n_msgs && p.ping_sent < RTTS &&
		    (p.ping_sent || may_ping(&p)))
			publish_next(p.ping, &p.ping_sent, &p.first_ping);
		/* b: one pong per ping, after the poll (not inside it) */
		while (p.pong_sent < p.rx_ping.n_msgs &&
		       publish_next(p.pong, &p.pong_sent, &p.first_pong))
			;
		if (p.rx_pong.n_msgs != last_pongs) {
			last_pongs = p.rx_pong.n_msgs;
			progress_ms = ut_now_ms();
		} else if (ut_now_ms() - progress_ms > STALL_MS) {
			fprintf(stderr, "handover %s seed %llu: round trip "
				"%llu never came back; connections a %llu b "
				"%llu\n", transport, (unsigned long long)seed,
				(unsigned long long)p.ping_sent,
				(unsigned long long)live_conns(p.a),
				(unsigned long long)live_conns(p.b));
			pair_check(&p, transport, seed);
			fail_msg("%s: seed %llu: round trip %llu lost and no "
				 "LOSS event", transport,
				 (unsigned long long)seed,
				 (unsigned long long)p.ping_sent);
		}
	}
	pair_check(&p, transport, seed);
	assert_int_equal(live_conns(p.a), 1);
	assert_int_equal(live_conns(p.b), 1);
	pair_close(&p);
}

static void run_stream(const char *transport, uint64_t seed)
{
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 7;
	uint64_t progress_ms, last = 0;
	struct pair p;

	pair_open(&p, transport, 1 + (uint32_t)ut_below(&rng, 8));
	progress_ms = ut_now_ms();
	while (p.rx_ping.expect != STREAM_N + 1 ||
	       p.rx_pong.expect != STREAM_N + 1) {
		unsigned k;

		step(p.a, p.b, &rng);
		for (k = (unsigned)ut_below(&rng, 4); k-- > 0;) {
			if (p.ping_sent < STREAM_N)
				publish_next(p.ping, &p.ping_sent,
					     &p.first_ping);
			if (p.pong_sent < STREAM_N)
				publish_next(p.pong, &p.pong_sent,
					     &p.first_pong);
		}
		if (p.rx_ping.n_msgs + p.rx_pong.n_msgs != last) {
			last = p.rx_ping.n_msgs + p.rx_pong.n_msgs;
			progress_ms = ut_now_ms();
		} else if (ut_now_ms() - progress_ms > STALL_MS) {
			fprintf(stderr, "handover %s seed %llu: stream "
				"stalled\n", transport,
				(unsigned long long)seed);
			pair_check(&p, transport, seed);
			fail_msg("%s: seed %llu: streams stalled: messages "
				 "lost and no LOSS event", transport,
				 (unsigned long long)seed);
		}
	}
	pair_check(&p, transport, seed);
	assert_int_equal(live_conns(p.a), 1);
	assert_int_equal(live_conns(p.b), 1);
	pair_close(&p);
}

/* ------------------------------------------------------------ threads */

struct side {
	muon_ctx_t *ctx;
	struct pair *p;
	bool is_a;
	volatile int *stop;
};

/* Each context on its own thread, pingpong on ping/pong plus nothing
 * shared but the counters each thread owns; the main thread only waits. */
static void *side_main(void *arg)
{
	struct side *s = arg;
	struct pair *p = s->p;

	while (!*s->stop) {
		if (muon_ctx_poll(s->ctx, 0) < 0)
			break;
		if (s->is_a) {
			if (p->ping_sent == p->rx_pong.n_msgs &&
			    p->ping_sent < RTTS * 5 &&
			    (p->ping_sent || may_ping(p)))
				publish_next(p->ping, &p->ping_sent,
					     &p->first_ping);
		} else {
			while (p->pong_sent < p->rx_ping.n_msgs &&
			       publish_next(p->pong, &p->pong_sent,
					    &p->first_pong))
				;
		}
	}
	return NULL;
}

static void run_threads(const char *transport, uint64_t seed)
{
	struct pair p;
	struct side sa, sb;
	pthread_t ta, tb;
	volatile int stop = 0;
	uint64_t dl, n = 0;

	pair_open(&p, transport, 1 + (uint32_t)(seed % 8));
	sa = (struct side){p.a, &p, true, &stop};
	sb = (struct side){p.b, &p, false, &stop};
	assert_int_equal(pthread_create(&ta, NULL, side_main, &sa), 0);
	assert_int_equal(pthread_create(&tb, NULL, side_main, &sb), 0);
	dl = ut_now_ms() + STALL_MS;
	while (ut_now_ms() < dl) {
		uint64_t m = __atomic_load_n(&p.rx_pong.n_msgs,
					     __ATOMIC_RELAXED);
		if (m >= RTTS * 5)
			break;
		if (m != n) {
			n = m;
			dl = ut_now_ms() + STALL_MS;
		}
		usleep(1000);
	}
	stop = 1;
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (p.rx_pong.n_msgs < RTTS * 5)
		fprintf(stderr, "handover %s threads run %llu: round trip "
			"%llu never came back\n", transport,
			(unsigned long long)seed,
			(unsigned long long)p.ping_sent);
	pair_check(&p, transport, seed);
	assert_int_equal(p.rx_pong.n_msgs, RTTS * 5);
	pair_close(&p);
}

/* ------------------------------------------------------------ driver */

static void loop(const char *transport,
		 void (*run)(const char *, uint64_t))
{
	const char *one = getenv("MUON_HANDOVER_SEED");
	const char *n = getenv("MUON_HANDOVER_LOOPS");
	unsigned loops = n && *n ? (unsigned)atoi(n) : 20, i;

	if (one && *one) {
		run(transport, strtoull(one, NULL, 0));
		return;
	}
	for (i = 1; i <= loops; i++)
		run(transport, i);
}

#define HO_TESTS(t)                                                        \
	static void test_pingpong_##t(void **s)                            \
	{                                                                  \
		(void)s;                                                   \
		loop(#t, run_pingpong);                                    \
	}                                                                  \
	static void test_stream_##t(void **s)                              \
	{                                                                  \
		(void)s;                                                   \
		loop(#t, run_stream);                                      \
	}                                                                  \
	static void test_threads_##t(void **s)                             \
	{                                                                  \
		(void)s;                                                   \
		loop(#t, run_threads);                                     \
	}

HO_TESTS(shm)
HO_TESTS(tcp)
HO_TESTS(verbs)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pingpong_shm),
		cmocka_unit_test(test_stream_shm),
		cmocka_unit_test(test_threads_shm),
		cmocka_unit_test(test_pingpong_tcp),
		cmocka_unit_test(test_stream_tcp),
		cmocka_unit_test(test_threads_tcp),
		cmocka_unit_test(test_pingpong_verbs),
		cmocka_unit_test(test_stream_verbs),
		cmocka_unit_test(test_threads_verbs),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
