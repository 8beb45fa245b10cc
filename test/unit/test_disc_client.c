/*
 * The library's discovery client against a fake daemon that this test
 * drives by hand: what a good daemon says makes a subscriber find and
 * receive a real publisher; what a bad one says (malformed welcome,
 * garbage, oversized or replayed frames, missing MACs, bad publications)
 * is refused with disc_errors counted, and never crashes the context nor
 * makes it connect anywhere it should not.
 */
#include "unit_util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "core/muoni.h"
#include "proto/disc.h"

/* ------------------------------------------------------------ fake daemon */

struct fake {
	int lfd;
	int fd;
	uint16_t port;
	char addr[64];
	uint8_t nonce[16];     /* ours: the client MACs with it */
	uint8_t cli_nonce[16]; /* the client's, from its Hello */
	uint64_t seq;
	uint64_t rx_seq;
	const uint8_t *key;
	struct muoni_disc_buf in;
	Muon__Disc__Message *last; /* last message from the client */
};

static void fake_open(struct fake *f, const uint8_t *key)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->key = key;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(f->lfd >= 0);
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	snprintf(f->addr, sizeof(f->addr), "tcp://127.0.0.1:%u", f->port);
	memset(f->nonce, 0x5a, sizeof(f->nonce));
}

static void fake_drop(struct fake *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	muoni_disc_buf_fini(&f->in);
	if (f->last)
		muon__disc__message__free_unpacked(f->last, NULL);
	f->last = NULL;
}

static void fake_close(struct fake *f)
{
	fake_drop(f);
	close(f->lfd);
}

/* Poll the context until `cond` or 3 s. */
#define POLL_UNTIL(ctx, cond)                                               \
	do {                                                                \
		uint64_t dl_ = ut_now_ms() + 3000;                          \
		while (!(cond) && ut_now_ms() < dl_) {                      \
			muon_ctx_poll((ctx), 0);                            \
			usleep(200);                                        \
		}                                                           \
	} while (0)

static void fake_accept(struct fake *f, muon_ctx_t *ctx)
{
	POLL_UNTIL(ctx, (f->fd = accept4(f->lfd, NULL, NULL,
					 SOCK_NONBLOCK)) >= 0);
	assert_true(f->fd >= 0);
	f->seq = 0;
	f->rx_seq = 0;
}

static void fake_raw(struct fake *f, const void *p, size_t n)
{
	assert_int_equal(send(f->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Send m, MACed with the client's nonce when `mac` (and a key). */
static void fake_send(struct fake *f, Muon__Disc__Message *m, bool mac)
{
	struct muoni_disc_buf b = {0};

	if (!m->seq)
		m->seq = ++f->seq;
	assert_int_equal(muoni_disc_pack(&b, m, mac ? f->key : NULL,
					 f->cli_nonce, 1 << 20), 0);
	fake_raw(f, b.data + b.off, muoni_disc_buf_used(&b));
	muoni_disc_buf_fini(&b);
}

static void fake_welcome(struct fake *f, size_t nonce_len)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Welcome w = MUON__DISC__WELCOME__INIT;

	w.nonce.data = f->nonce;
	w.nonce.len = nonce_len;
	w.daemon_id = 42;
	w.daemon_name = "fake";
	w.lease_ms = 3000;
	w.auth_required = f->key != NULL;
	w.max_frame = 65536;
	m.kind_case = MUON__DISC__MESSAGE__KIND_WELCOME;
	m.welcome = &w;
	fake_send(f, &m, false);
}

/* The next message from the client of `kind` (others are skipped), or
 * NULL after 3 s or when the client closed. */
static Muon__Disc__Message *fake_expect(struct fake *f, muon_ctx_t *ctx,
					int kind)
{
	uint64_t dl = ut_now_ms() + 3000;

	for (;;) {
		const uint8_t *fr;
		size_t len;
		int code, rc;
		char err[128];
		ssize_t n;

		while ((rc = muoni_disc_next(&f->in, 1 << 20, &fr, &len)) ==
		       1) {
			Muon__Disc__Message *m = NULL;

			rc = muoni_disc_unpack(fr, len, f->key, f->nonce, &m,
					       &code, err, sizeof(err));
			muoni_disc_buf_consume(&f->in, 4 + len);
			if (rc)
				fail_msg("client sent a bad frame: %s", err);
			assert_int_equal(m->seq, f->rx_seq + 1);
			f->rx_seq = m->seq;
			if (m->kind_case == MUON__DISC__MESSAGE__KIND_HELLO) {
				assert_int_equal(m->hello->nonce.len, 16);
				memcpy(f->cli_nonce, m->hello->nonce.data, 16);
			}
			if (f->last)
				muon__disc__message__free_unpacked(f->last,
								   NULL);
			f->last = m;
			if ((int)m->kind_case == kind)
				return m;
		}
		if (ut_now_ms() > dl)
			return NULL;
		muon_ctx_poll(ctx, 0);
		assert_int_equal(muoni_disc_buf_reserve(&f->in, 4096), 0);
		n = recv(f->fd, f->in.data + f->in.len, f->in.cap - f->in.len,
			 MSG_DONTWAIT);
		if (n == 0)
			return NULL;
		if (n > 0)
			f->in.len += (size_t)n;
		else
			usleep(200);
	}
}

/* Whether the client closed its side (EOF within 3 s). */
static bool fake_closed_by_client(struct fake *f, muon_ctx_t *ctx)
{
	uint64_t dl = ut_now_ms() + 3000;
	char buf[4096];

	while (ut_now_ms() < dl) {
		ssize_t n = recv(f->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
		muon_ctx_poll(ctx, 0);
		usleep(200);
	}
	return false;
}

/* Welcome, then read the Hello: a session as the client sees it. */
static void fake_session(struct fake *f, muon_ctx_t *ctx)
{
	fake_accept(f, ctx);
	fake_welcome(f, 16);
	assert_non_null(fake_expect(f, ctx, MUON__DISC__MESSAGE__KIND_HELLO));
}

static uint64_t counter_disc_errors(muon_ctx_t *ctx)
{
	muon_counters_t c = {.size = sizeof(c)};

	assert_int_equal(muon_ctx_counters(ctx, &c), 0);
	return c.disc_errors;
}

static void send_pub(struct fake *f, uint64_t watch, bool snapshot,
		     int kind, const char *topic, uint64_t ctx_id,
		     const char *ep, bool mac)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Publication p = MUON__DISC__PUBLICATION__INIT;
	Muon__Disc__Publication *pp = &p;
	Muon__Disc__Snapshot sn = MUON__DISC__SNAPSHOT__INIT;
	Muon__Disc__Update up = MUON__DISC__UPDATE__INIT;
	char *eps[1] = {(char *)ep};
	char host[MUONI_DISC_HOST_ID_MAX + 1];

	muoni_disc_host_id(host, sizeof(host));
	p.topic = (char *)topic;
	p.stream_id = 1;
	p.ctx_id = ctx_id;
	p.host_id = host;
	p.ctx_name = "pub";
	p.endpoints = eps;
	p.n_endpoints = 1;
	if (snapshot) {
		sn.watch_id = watch;
		sn.publications = &pp;
		sn.n_publications = 1;
		sn.last = true;
		m.kind_case = MUON__DISC__MESSAGE__KIND_SNAPSHOT;
		m.snapshot = &sn;
	} else {
		up.watch_id = watch;
		up.kind = kind;
		up.publication = &p;
		up.reason = "test";
		m.kind_case = MUON__DISC__MESSAGE__KIND_UPDATE;
		m.update = &up;
	}
	fake_send(f, &m, mac);
}

/* ------------------------------------------------------------ the tests */

struct rx {
	uint64_t msgs;
};

static void on_msg(void *arg, const muon_msg_t *m)
{
	(void)m;
	((struct rx *)arg)->msgs++;
}

static muon_ctx_t *sub_ctx(struct fake *f, const char *secret,
			   struct rx *rx, muon_sub_t **sub)
{
	muon_ctx_config_t cfg;
	muon_sub_config_t sc;
	muon_ctx_t *ctx = NULL;

	ut_ctx_config(&cfg, "disc-sub");
	cfg.discovery = f->addr;
	cfg.transport = "tcp";
	cfg.secret_file = secret;
	cfg.reconnect_ms = 20;
	assert_int_equal(muon_ctx_create(&cfg, &ctx), 0);
	muon_sub_config_init(&sc);
	sc.msg_fn = on_msg;
	sc.msg_arg = rx;
	assert_int_equal(muon_sub_create(ctx, "disc.t", &sc, sub), 0);
	return ctx;
}

/* The good path: the watch is answered with a real publisher's endpoint,
 * the subscriber connects and receives; then DOWN makes no difference to
 * the established connection. */
static void test_found_and_kept(void **state)
{
	struct fake f;
	struct rx rx = {0};
	muon_ctx_config_t pc;
	muon_ctx_t *pub_ctx = NULL, *ctx;
	muon_pub_t *pub = NULL;
	muon_sub_t *sub = NULL;
	Muon__Disc__Message *w;
	char ep[128];
	uint64_t watch, i;

	(void)state;
	fake_open(&f, NULL);
	ut_ctx_config(&pc, "disc-pub");
	pc.listen = "tcp://127.0.0.1:0";
	assert_int_equal(muon_ctx_create(&pc, &pub_ctx), 0);
	assert_int_equal(muon_pub_create(pub_ctx, "disc.t", NULL, &pub), 0);
	assert_int_equal(muon_ctx_listen_endpoint(pub_ctx, 0, ep, sizeof(ep)),
			 0);
	ctx = sub_ctx(&f, NULL, &rx, &sub);
	fake_session(&f, ctx);
	w = fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_WATCH);
	assert_non_null(w);
	assert_string_equal(w->watch->topic, "disc.t");
	assert_false(w->watch->prefix);
	watch = w->watch->watch_id;
	send_pub(&f, watch, true, 0, "disc.t", muon_ctx_id(pub_ctx), ep, false);
	for (i = 0; i < 3000 && muon_pub_subscribers(pub) < 1; i++) {
		muon_ctx_poll(ctx, 0);
		muon_ctx_poll(pub_ctx, 0);
		usleep(1000);
	}
	assert_int_equal(muon_pub_subscribers(pub), 1);
	assert_true(muon_publish(pub, "x", 1) == 1);
	for (i = 0; i < 3000 && rx.msgs < 1; i++) {
		muon_ctx_poll(ctx, 0);
		muon_ctx_poll(pub_ctx, 0);
		usleep(1000);
	}
	assert_int_equal(rx.msgs, 1);
	/* The daemon says it is gone; the connection carries on. */
	send_pub(&f, watch, false, MUON__DISC__UPDATE__KIND__DOWN, "disc.t",
		 muon_ctx_id(pub_ctx), ep, false);
	for (i = 0; i < 200; i++) {
		muon_ctx_poll(ctx, 0);
		muon_ctx_poll(pub_ctx, 0);
		usleep(1000);
	}
	assert_true(muon_publish(pub, "y", 1) == 2);
	for (i = 0; i < 3000 && rx.msgs < 2; i++) {
		muon_ctx_poll(ctx, 0);
		muon_ctx_poll(pub_ctx, 0);
		usleep(1000);
	}
	assert_int_equal(rx.msgs, 2);
	assert_int_equal(counter_disc_errors(ctx), 0);
	muon_ctx_destroy(ctx);
	muon_ctx_destroy(pub_ctx);
	fake_close(&f);
}

/* Each bad session is cut by the client, counted, and followed by a
 * reconnect; the context goes on. */
static void test_bad_daemon_messages(void **state)
{
	static const uint8_t garbage[] = {0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8,
					  9};
	static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
	static const uint8_t empty[] = {0, 0, 0, 0};
	struct fake f;
	struct rx rx = {0};
	muon_sub_t *sub = NULL;
	muon_ctx_t *ctx;
	uint64_t errs;

	(void)state;
	fake_open(&f, NULL);
	ctx = sub_ctx(&f, NULL, &rx, &sub);

	/* A welcome with an 8-byte nonce. */
	fake_accept(&f, ctx);
	errs = counter_disc_errors(ctx);
	fake_welcome(&f, 8);
	assert_true(fake_closed_by_client(&f, ctx));
	assert_true(counter_disc_errors(ctx) > errs);
	fake_drop(&f);

	/* Garbage, a 2 GiB length, a zero length, before the welcome. */
	fake_accept(&f, ctx);
	fake_raw(&f, garbage, sizeof(garbage));
	assert_true(fake_closed_by_client(&f, ctx));
	fake_drop(&f);
	fake_accept(&f, ctx);
	fake_raw(&f, huge, sizeof(huge));
	assert_true(fake_closed_by_client(&f, ctx));
	fake_drop(&f);
	fake_accept(&f, ctx);
	fake_raw(&f, empty, sizeof(empty));
	assert_true(fake_closed_by_client(&f, ctx));
	fake_drop(&f);

	/* The first message is not a welcome. */
	fake_accept(&f, ctx);
	{
		Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
		Muon__Disc__Ok ok = MUON__DISC__OK__INIT;

		m.kind_case = MUON__DISC__MESSAGE__KIND_OK;
		m.ok = &ok;
		fake_send(&f, &m, false);
	}
	assert_true(fake_closed_by_client(&f, ctx));
	fake_drop(&f);

	/* A good session, then a replayed sequence number. */
	fake_session(&f, ctx);
	{
		Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
		Muon__Disc__Ok ok = MUON__DISC__OK__INIT;

		m.kind_case = MUON__DISC__MESSAGE__KIND_OK;
		m.ok = &ok;
		m.seq = 1;
		fake_send(&f, &m, false);
	}
	assert_true(fake_closed_by_client(&f, ctx));
	fake_drop(&f);

	/* A good session, then a request kind a daemon never sends. */
	fake_session(&f, ctx);
	{
		Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
		Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;

		m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
		m.renew = &r;
		fake_send(&f, &m, false);
	}
	assert_true(fake_closed_by_client(&f, ctx));
	fake_drop(&f);

	/* Bad publications are skipped, the session stays up: the next
	 * good message is still read (a Renew gets sent and answered). */
	fake_session(&f, ctx);
	{
		Muon__Disc__Message *w =
			fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_WATCH);
		uint64_t watch;
		char longt[300];

		assert_non_null(w);
		watch = w->watch->watch_id;
		errs = counter_disc_errors(ctx);
		send_pub(&f, watch, false, MUON__DISC__UPDATE__KIND__UP,
			 "disc.t", 7, "ftp://example:1", false);
		send_pub(&f, watch, false, MUON__DISC__UPDATE__KIND__UP,
			 "disc.t", 0, "tcp://127.0.0.1:1", false);
		memset(longt, 'a', sizeof(longt) - 1);
		longt[sizeof(longt) - 1] = 0;
		send_pub(&f, watch, false, MUON__DISC__UPDATE__KIND__UP,
			 longt, 7, "tcp://127.0.0.1:1", false);
		/* Our own context id and an unwatched topic: ignored. */
		send_pub(&f, watch, false, MUON__DISC__UPDATE__KIND__UP,
			 "disc.t", muon_ctx_id(ctx), "tcp://127.0.0.1:1",
			 false);
		send_pub(&f, watch + 100, false, MUON__DISC__UPDATE__KIND__UP,
			 "disc.t", 8, "tcp://127.0.0.1:1", false);
		/* The session is still up: the next renewal arrives. */
		assert_non_null(
			fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_RENEW));
		assert_int_equal(counter_disc_errors(ctx), errs + 2);
		assert_int_equal(ctx->n_peers, 0);
	}
	fake_drop(&f);
	muon_ctx_destroy(ctx);
	fake_close(&f);
}

/* With a secret: a daemon that does not MAC its messages, or MACs with
 * another key, is not believed. */
static void test_auth(void **state)
{
	static const uint8_t other[32] = {9, 9, 9};
	char path[] = "/tmp/muon-unit-secret-XXXXXX";
	uint8_t loaded[32];
	struct fake f;
	struct rx rx = {0};
	muon_sub_t *sub = NULL;
	muon_ctx_t *ctx;
	Muon__Disc__Message *h, *w;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789abcdef0123", 20), 20);
	close(fd);
	assert_int_equal(muoni_secret_load(path, loaded), 0);
	fake_open(&f, loaded);
	ctx = sub_ctx(&f, path, &rx, &sub);

	/* The Hello carries a MAC the fake verifies (fake_expect). */
	fake_accept(&f, ctx);
	fake_welcome(&f, 16);
	h = fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_HELLO);
	assert_non_null(h);
	/* An unauthenticated message from the "daemon": refused. */
	w = fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_WATCH);
	assert_non_null(w);
	send_pub(&f, w->watch->watch_id, true, 0, "disc.t", 5,
		 "tcp://127.0.0.1:1", false);
	assert_true(fake_closed_by_client(&f, ctx));
	fake_drop(&f);

	/* MACed with another key: refused. */
	fake_accept(&f, ctx);
	fake_welcome(&f, 16);
	assert_non_null(fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_HELLO));
	f.key = other;
	send_pub(&f, 1, true, 0, "disc.t", 5, "tcp://127.0.0.1:1", true);
	f.key = loaded;
	assert_true(fake_closed_by_client(&f, ctx));
	fake_drop(&f);
	assert_int_equal(ctx->n_peers, 0);

	/* The right key: believed. */
	fake_accept(&f, ctx);
	fake_welcome(&f, 16);
	assert_non_null(fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_HELLO));
	w = fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_WATCH);
	assert_non_null(w);
	send_pub(&f, w->watch->watch_id, true, 0, "disc.t", 5,
		 "tcp://127.0.0.1:1", true);
	POLL_UNTIL(ctx, ctx->n_peers == 1);
	assert_int_equal(ctx->n_peers, 1);
	fake_drop(&f);
	muon_ctx_destroy(ctx);
	fake_close(&f);
	unlink(path);
}

/* A daemon that requires a secret the context lacks: refused at the
 * welcome with a message that says what to do. */
static void test_secret_required(void **state)
{
	static const uint8_t key[32] = {7};
	struct fake f;
	struct rx rx = {0};
	muon_sub_t *sub = NULL;
	muon_ctx_t *ctx;

	(void)state;
	fake_open(&f, key);
	ctx = sub_ctx(&f, NULL, &rx, &sub);
	fake_accept(&f, ctx);
	fake_welcome(&f, 16);
	assert_true(fake_closed_by_client(&f, ctx));
	assert_true(counter_disc_errors(ctx) >= 1);
	fake_drop(&f);
	muon_ctx_destroy(ctx);
	fake_close(&f);
}

/* A publisher registers, re-registers after a reconnect, renews, and
 * unregisters at destroy; its wildcard endpoint is advertised with the
 * address it reaches the daemon from. */
static void test_registration(void **state)
{
	struct fake f;
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = NULL;
	muon_pub_t *pub = NULL;
	Muon__Disc__Message *m;
	uint32_t sid;
	int round;

	(void)state;
	fake_open(&f, NULL);
	ut_ctx_config(&cfg, "disc-reg");
	cfg.discovery = f.addr;
	cfg.listen = "tcp://0.0.0.0:0";
	cfg.reconnect_ms = 20;
	assert_int_equal(muon_ctx_create(&cfg, &ctx), 0);
	assert_int_equal(muon_pub_create(ctx, "disc.reg", NULL, &pub), 0);
	sid = muon_pub_stream_id(pub);
	for (round = 0; round < 2; round++) {
		fake_session(&f, ctx);
		assert_int_equal(f.last->hello->ctx_id, muon_ctx_id(ctx));
		m = fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_REGISTER);
		assert_non_null(m);
		assert_int_equal(m->register_->n_publications, 1);
		assert_string_equal(m->register_->publications[0]->topic,
				    "disc.reg");
		assert_int_equal(m->register_->publications[0]->stream_id,
				 sid);
		assert_int_equal(m->register_->publications[0]->n_endpoints,
				 1);
		assert_non_null(strstr(
			m->register_->publications[0]->endpoints[0],
			"tcp://127.0.0.1:"));
		/* A renewal comes within a third of the 3 s lease. */
		assert_non_null(
			fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_RENEW));
		if (round == 0)
			fake_drop(&f); /* "daemon restart" */
	}
	muon_pub_destroy(pub);
	m = fake_expect(&f, ctx, MUON__DISC__MESSAGE__KIND_UNREGISTER);
	assert_non_null(m);
	assert_int_equal(m->unregister->n_stream_ids, 1);
	assert_int_equal(m->unregister->stream_ids[0], sid);
	fake_drop(&f);
	muon_ctx_destroy(ctx);
	fake_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_and_kept),
		cmocka_unit_test(test_bad_daemon_messages),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_secret_required),
		cmocka_unit_test(test_registration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
