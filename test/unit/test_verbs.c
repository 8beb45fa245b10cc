/*
 * The verbs transport end to end, in one process, on the Soft-RoCE device
 * of the test VM (test/rdma/run-vm.sh; ctest label rdma):
 *
 * - cluster secret: different secrets, or a secret on one side only, never
 *   bring an image up and are counted (auth_rejects, connect_failures);
 *   the same secret on both sides carries a stream complete and in order.
 *   Secret files that are group/other-accessible or shorter than 16 bytes
 *   fail muon_ctx_create with MUON_ECONFIG (this one needs no RDMA device);
 * - fan-out: one publisher, 8 subscriber contexts, 2000 messages of 0..4096
 *   bytes, each subscriber gets all of them, byte for byte, in order;
 * - a publisher destroyed mid-stream: prompt IMAGE_DOWN, no loss, clean
 *   destroy of the subscriber; a subscriber destroyed mid-stream: the
 *   publisher drops its sender and keeps publishing;
 * - churn: CHURN_CYCLES subscriber contexts connect, receive one message and
 *   go; the process's fds and the QPs, MRs, CQs, PDs and rdma_cm ids the
 *   kernel lists for this pid (iproute2 `rdma resource show`) do not grow.
 *
 * argv[1] picks tests by name pattern; ctest runs each in its own process.
 * Without an RDMA device every verbs test fails and says how to run it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit_util.h"

/* Connect/disconnect cycles of test_churn, with resource checks at the
 * half and at the end. In the TCG guest one cycle (context, rdmacm
 * resolve + connect, handshake, one message, teardown) took 36 to 165 ms
 * depending on the host's load, so 1000 cycles take well under the
 * 5 minutes we allow (docs/rdma-vm.md); MUON_CHURN_CYCLES overrides the
 * count for runs by hand. */
#ifndef CHURN_CYCLES
#define CHURN_CYCLES 1000
#endif

/* ------------------------------------------------------------ helpers */

/* Fail, saying how to run these tests, unless an RDMA device exists. */
static void need_rdma(void)
{
	DIR *d = opendir("/sys/class/infiniband");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	if (!n)
		fail_msg("no RDMA device (/sys/class/infiniband is empty): the "
			 "verbs tests need the Soft-RoCE device rxe0 (%s) of "
			 "the test VM; run test/rdma/run-vm.sh -d BUILD -- "
			 "ctest --test-dir BUILD -L rdma --no-tests=error "
			 "(see docs/rdma-vm.md), or exclude them with "
			 "ctest -LE rdma", ut_rdma_addr());
}

static void poll_all(muon_ctx_t **c, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i += 2)
		ut_poll2(c[i], i + 1 < n ? c[i + 1] : NULL);
}

static void publish_range(muon_ctx_t **ctxs, unsigned n_ctx, muon_pub_t *p,
			  uint64_t first, uint64_t n, size_t lo, size_t hi)
{
	static uint8_t buf[65536];
	uint64_t seq;

	for (seq = first; seq < first + n; seq++) {
		size_t len = ut_len_for(seq, lo, hi);
		uint64_t dl = ut_now_ms() + 30000;
		int64_t rc;

		ut_fill(buf, len, seq);
		while ((rc = muon_publish(p, buf, len)) == MUON_EBACKPRESSURE) {
			if (ut_now_ms() > dl)
				fail_msg("publish %llu: back-pressure for 30 s",
					 (unsigned long long)seq);
			poll_all(ctxs, n_ctx);
		}
		if (rc != (int64_t)seq)
			fail_msg("publish %llu returned %lld (%s: %s)",
				 (unsigned long long)seq, (long long)rc,
				 rc < 0 ? muon_strerror((int)rc) : "seq",
				 muon_errmsg());
	}
}

static void check_rx(const struct ut_rx *rx, uint64_t n, const char *who)
{
	if (rx->n_msgs != n || rx->order_errors || rx->payload_errors ||
	    rx->meta_errors || rx->n_loss)
		fail_msg("%s: got %llu of %llu messages, %u order errors, %u "
			 "payload errors, %u meta errors, %u losses (first bad "
			 "seq %llu)", who, (unsigned long long)rx->n_msgs,
			 (unsigned long long)n, rx->order_errors,
			 rx->payload_errors, rx->meta_errors, rx->n_loss,
			 (unsigned long long)rx->first_bad_seq);
}

/* A receiver that also remembers IMAGE_DOWN's to_seq. */
struct drx {
	struct ut_rx rx;
	uint64_t down_to;
	uint64_t down_at_ms;
};

static void drx_event(void *arg, const muon_event_t *ev)
{
	struct drx *d = arg;

	if (ev->type == MUON_EVENT_IMAGE_DOWN && !d->down_at_ms) {
		d->down_to = ev->to_seq;
		d->down_at_ms = ut_now_ms();
	}
	ut_rx_event(&d->rx, ev);
}

/* ------------------------------------------------------------ secrets */

static char secret_dir[256];

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text);

	if (fd < 0)
		fail_msg("create %s: %s", path, strerror(errno));
	if (write(fd, text, len) != (ssize_t)len)
		fail_msg("write %s: %s", path, strerror(errno));
	/* Whatever the umask: chmod sets the mode the test means. */
	if (fchmod(fd, mode))
		fail_msg("chmod %s: %s", path, strerror(errno));
	close(fd);
}

static const char *secret_path(const char *name)
{
	static char paths[4][300];
	static unsigned k;
	char *p = paths[k++ % 4];

	snprintf(p, sizeof(paths[0]), "%s/%s", secret_dir, name);
	return p;
}

static int secret_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(secret_dir, sizeof(secret_dir), "%s/muon-verbs-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(secret_dir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", secret_dir,
			strerror(errno));
		return -1;
	}
	/* Two 32-byte secrets (a line of `openssl rand -hex 16` each). */
	write_file(secret_path("a"), "3f1c9a0d5b7e2468ace13579bdf02468\n", 0600);
	write_file(secret_path("b"), "c0ffee00deadbeef0123456789abcdef\n", 0600);
	return 0;
}

static int secret_teardown(void **state)
{
	static const char *const names[] = {"a", "b", "open", "short",
					     "group", "exact"};
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(secret_path(names[i]));
	rmdir(secret_dir);
	return 0;
}

/* Publisher with secret `ps`, subscriber with `ss` (NULL: none). Returns
 * after `ms` of polling with the image count and both counter sets. */
static void secret_pair(const char *ps, const char *ss, unsigned ms,
			muon_counters_t *pk, muon_counters_t *sk, int *images)
{
	muon_ctx_config_t pcfg, scfg;
	char ep[128];
	muon_ctx_t *pc, *sc;
	muon_pub_t *p;
	muon_sub_t *s;
	muon_sub_config_t cfg;
	struct ut_rx rx;

	ut_ctx_config(&pcfg, "pub");
	ut_ctx_config(&scfg, "sub");
	pcfg.secret_file = ps ? secret_path(ps) : NULL;
	scfg.secret_file = ss ? secret_path(ss) : NULL;
	pc = ut_pub_ctx("verbs", &pcfg, ep, sizeof(ep));
	sc = ut_sub_ctx(ep, &scfg);
	ut_rx_init(&rx, "sec", 0, 256);
	assert_int_equal(muon_pub_create(pc, "sec", NULL, &p), 0);
	ut_rx_sub_config(&rx, &cfg);
	assert_int_equal(muon_sub_create(sc, "sec", &cfg, &s), 0);
	ut_poll_for(pc, sc, ms);
	*images = muon_sub_images(s);
	*pk = ut_counters(pc);
	*sk = ut_counters(sc);
	fprintf(stderr, "secret %s vs %s: images %d; publisher auth_rejects "
		"%llu connects %llu; subscriber auth_rejects %llu "
		"connect_failures %llu connects %llu\n",
		ps ? ps : "(none)", ss ? ss : "(none)", *images,
		(unsigned long long)pk->auth_rejects,
		(unsigned long long)pk->connects,
		(unsigned long long)sk->auth_rejects,
		(unsigned long long)sk->connect_failures,
		(unsigned long long)sk->connects);
	assert_int_equal(rx.n_msgs, 0);
	muon_ctx_destroy(sc);
	muon_ctx_destroy(pc);
}

/* Publisher secret A, subscriber secret B: the listener refuses before it
 * creates a QP, and the subscriber learns why from the reject. */
static void test_secret_wrong(void **state)
{
	muon_counters_t pk, sk;
	int images;

	(void)state;
	need_rdma();
	secret_pair("a", "b", 3000, &pk, &sk, &images);
	assert_int_equal(images, 0);
	assert_true(pk.auth_rejects >= 1);
	assert_int_equal(pk.connects, 0);
	assert_true(sk.connect_failures >= 1);
	assert_true(sk.auth_rejects >= 1);
	assert_int_equal(sk.connects, 0);
}

/* Subscriber without a secret, publisher with one: refused likewise. */
static void test_secret_nosub(void **state)
{
	muon_counters_t pk, sk;
	int images;

	(void)state;
	need_rdma();
	secret_pair("a", NULL, 3000, &pk, &sk, &images);
	assert_int_equal(images, 0);
	assert_true(pk.auth_rejects >= 1);
	assert_int_equal(pk.connects, 0);
	assert_true(sk.connect_failures >= 1);
	assert_true(sk.auth_rejects >= 1);
	assert_int_equal(sk.connects, 0);
}

/* Publisher without a secret, subscriber with one: the listener accepts
 * (it checks nothing), but the subscriber refuses an unauthenticated
 * answer before it sends a byte. */
static void test_secret_nopub(void **state)
{
	muon_counters_t pk, sk;
	int images;

	(void)state;
	need_rdma();
	secret_pair(NULL, "a", 3000, &pk, &sk, &images);
	assert_int_equal(images, 0);
	assert_true(sk.auth_rejects >= 1);
	assert_true(sk.connect_failures >= 1);
	assert_int_equal(sk.connects, 0);
	assert_int_equal(pk.connects, 0);
}

/* The same secret on both sides: 1000 messages, complete and in order. */
static void test_secret_same(void **state)
{
	muon_ctx_config_t pcfg, scfg;
	char ep[128];
	muon_ctx_t *c[2];
	muon_pub_t *p;
	muon_sub_t *s;
	muon_sub_config_t cfg;
	struct ut_rx rx;

	(void)state;
	need_rdma();
	ut_ctx_config(&pcfg, "pub");
	ut_ctx_config(&scfg, "sub");
	pcfg.secret_file = secret_path("a");
	scfg.secret_file = secret_path("a");
	c[0] = ut_pub_ctx("verbs", &pcfg, ep, sizeof(ep));
	c[1] = ut_sub_ctx(ep, &scfg);
	ut_rx_init(&rx, "sec", 0, 1024);
	assert_int_equal(muon_pub_create(c[0], "sec", NULL, &p), 0);
	ut_rx_sub_config(&rx, &cfg);
	assert_int_equal(muon_sub_create(c[1], "sec", &cfg, &s), 0);
	UT_POLL_UNTIL(c[0], c[1], 10000, muon_sub_images(s) == 1,
		      "same secret: no image within 10 s");
	publish_range(c, 2, p, 1, 1000, 0, 1024);
	UT_POLL_UNTIL(c[0], c[1], 30000, rx.n_msgs >= 1000,
		      "same secret: got %llu of 1000",
		      (unsigned long long)rx.n_msgs);
	check_rx(&rx, 1000, "same secret");
	assert_int_equal(ut_counters(c[0]).auth_rejects, 0);
	assert_int_equal(ut_counters(c[1]).auth_rejects, 0);
	assert_int_equal(ut_counters(c[1]).connect_failures, 0);
	muon_ctx_destroy(c[1]);
	muon_ctx_destroy(c[0]);
}

/* Bad secret files fail creation with MUON_ECONFIG; needs no device. */
static void test_secret_file(void **state)
{
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = NULL;
	int rc;

	(void)state;
	/* Readable by everybody. */
	write_file(secret_path("open"), "0123456789abcdef0123456789abcdef",
		   0644);
	/* Readable by the group. */
	write_file(secret_path("group"), "0123456789abcdef0123456789abcdef",
		   0640);
	/* 15 bytes (the newline does not count). */
	write_file(secret_path("short"), "0123456789abcde\n", 0600);
	/* Exactly 16: fine. */
	write_file(secret_path("exact"), "0123456789abcdef\n", 0600);

	ut_ctx_config(&cfg, "secret");
	cfg.secret_file = secret_path("open");
	rc = muon_ctx_create(&cfg, &ctx);
	assert_int_equal(rc, MUON_ECONFIG);
	assert_null(ctx);
	assert_non_null(strstr(muon_errmsg(), "secret"));

	cfg.secret_file = secret_path("group");
	assert_int_equal(muon_ctx_create(&cfg, &ctx), MUON_ECONFIG);
	assert_null(ctx);

	cfg.secret_file = secret_path("short");
	rc = muon_ctx_create(&cfg, &ctx);
	assert_int_equal(rc, MUON_ECONFIG);
	assert_null(ctx);
	assert_non_null(strstr(muon_errmsg(), "15 bytes"));

	cfg.secret_file = secret_path("exact");
	rc = muon_ctx_create(&cfg, &ctx);
	if (rc)
		fail_msg("16-byte secret, mode 0600: %s: %s",
			 muon_strerror(rc), muon_errmsg());
	muon_ctx_destroy(ctx);
}

/* ------------------------------------------------------------ fan-out */

#define FAN_SUBS 8
#define FAN_MSGS 2000
#define FAN_MAX 4096

static void test_fanout8(void **state)
{
	muon_ctx_config_t cfg;
	char ep[128], name[FAN_SUBS][16];
	muon_ctx_t *c[1 + FAN_SUBS];
	muon_sub_t *s[FAN_SUBS];
	muon_pub_t *p;
	muon_sub_config_t scfg;
	static struct ut_rx rx[FAN_SUBS];
	uint64_t t0, dl;
	unsigned i, up = 0, done = 0;

	(void)state;
	need_rdma();
	ut_ctx_config(&cfg, "pub");
	cfg.max_msg_size = FAN_MAX;
	c[0] = ut_pub_ctx("verbs", &cfg, ep, sizeof(ep));
	assert_int_equal(muon_pub_create(c[0], "fan", NULL, &p), 0);
	for (i = 0; i < FAN_SUBS; i++) {
		snprintf(name[i], sizeof(name[i]), "sub%u", i);
		ut_ctx_config(&cfg, name[i]);
		cfg.max_msg_size = FAN_MAX;
		c[1 + i] = ut_sub_ctx(ep, &cfg);
		ut_rx_init(&rx[i], "fan", 0, FAN_MAX);
		ut_rx_sub_config(&rx[i], &scfg);
		assert_int_equal(muon_sub_create(c[1 + i], "fan", &scfg,
						 &s[i]), 0);
	}
	t0 = ut_now_ms();
	dl = t0 + 30000;
	do {
		if (ut_now_ms() > dl)
			fail_msg("fan-out: %u of %u images up after 30 s", up,
				 FAN_SUBS);
		poll_all(c, 1 + FAN_SUBS);
		for (i = up = 0; i < FAN_SUBS; i++)
			up += muon_sub_images(s[i]) == 1;
	} while (up < FAN_SUBS || muon_pub_subscribers(p) < FAN_SUBS);
	fprintf(stderr, "fan-out: %u images up after %llu ms\n", FAN_SUBS,
		(unsigned long long)(ut_now_ms() - t0));
	t0 = ut_now_ms();
	publish_range(c, 1 + FAN_SUBS, p, 1, FAN_MSGS, 0, FAN_MAX);
	dl = ut_now_ms() + 120000;
	do {
		if (ut_now_ms() > dl)
			fail_msg("fan-out: %u of %u subscribers complete after "
				 "the last publish + 120 s", done, FAN_SUBS);
		poll_all(c, 1 + FAN_SUBS);
		for (i = done = 0; i < FAN_SUBS; i++)
			done += rx[i].n_msgs >= FAN_MSGS;
	} while (done < FAN_SUBS);
	fprintf(stderr, "fan-out: %u messages of 0..%u bytes to %u "
		"subscribers in %llu ms\n", FAN_MSGS, FAN_MAX, FAN_SUBS,
		(unsigned long long)(ut_now_ms() - t0));
	/* A little longer: nothing more, nothing twice. */
	dl = ut_now_ms() + 200;
	while (ut_now_ms() < dl)
		poll_all(c, 1 + FAN_SUBS);
	for (i = 0; i < FAN_SUBS; i++) {
		check_rx(&rx[i], FAN_MSGS, name[i]);
		assert_int_equal(rx[i].n_up, 1);
		assert_int_equal(rx[i].n_down, 0);
	}
	assert_int_equal(ut_counters(c[0]).msgs_sent, FAN_MSGS);
	for (i = 0; i < FAN_SUBS; i++)
		muon_ctx_destroy(c[1 + i]);
	muon_ctx_destroy(c[0]);
}

/* ------------------------------------------------------------ deaths */

/* The publisher's context goes while messages are in flight. */
static void test_pub_dies(void **state)
{
	char ep[128];
	muon_ctx_t *c[2];
	muon_pub_t *p;
	muon_sub_t *s;
	muon_sub_config_t cfg;
	static struct drx d;
	static uint8_t buf[1024];
	uint64_t seq, t_kill, t0;
	muon_counters_t k;

	(void)state;
	need_rdma();
	c[0] = ut_pub_ctx("verbs", NULL, ep, sizeof(ep));
	c[1] = ut_sub_ctx(ep, NULL);
	memset(&d, 0, sizeof(d));
	ut_rx_init(&d.rx, "die", 0, 1024);
	assert_int_equal(muon_pub_create(c[0], "die", NULL, &p), 0);
	ut_rx_sub_config(&d.rx, &cfg);
	cfg.event_fn = drx_event;
	cfg.event_arg = &d;
	assert_int_equal(muon_sub_create(c[1], "die", &cfg, &s), 0);
	UT_POLL_UNTIL(c[0], c[1], 10000, muon_sub_images(s) == 1,
		      "no image within 10 s");
	/* Publish until the subscriber is well into the stream, then 500 more
	 * without polling it, so that the publisher dies with messages in
	 * flight: in the subscriber's ring and not yet sent. */
	for (seq = 1; seq <= 100000; seq++) {
		size_t len = ut_len_for(seq, 0, 1024);
		int64_t rc;
		bool sub_polled = d.rx.n_msgs < 300;

		ut_fill(buf, len, seq);
		while ((rc = muon_publish(p, buf, len)) == MUON_EBACKPRESSURE)
			ut_poll2(c[0], sub_polled ? c[1] : NULL);
		assert_int_equal(rc, (int64_t)seq);
		ut_poll2(c[0], sub_polled ? c[1] : NULL);
		if (!sub_polled && seq >= d.rx.n_msgs + 500)
			break;
	}
	if (d.rx.n_msgs < 300)
		fail_msg("subscriber got only %llu of 100000",
			 (unsigned long long)d.rx.n_msgs);
	fprintf(stderr, "pub_dies: destroying the publisher after %llu "
		"published, %llu received\n", (unsigned long long)seq,
		(unsigned long long)d.rx.n_msgs);
	t_kill = ut_now_ms();
	muon_ctx_destroy(c[0]);
	c[0] = NULL;
	fprintf(stderr, "pub_dies: publisher destroyed in %llu ms\n",
		(unsigned long long)(ut_now_ms() - t_kill));
	UT_POLL_UNTIL(NULL, c[1], 5000, d.rx.n_down >= 1,
		      "no IMAGE_DOWN within 5 s of the publisher's destroy "
		      "(received %llu)", (unsigned long long)d.rx.n_msgs);
	fprintf(stderr, "pub_dies: IMAGE_DOWN (reason %d, to_seq %llu) %llu "
		"ms after the destroy began, %llu received\n",
		d.rx.down_reason, (unsigned long long)d.down_to,
		(unsigned long long)(d.down_at_ms - t_kill),
		(unsigned long long)d.rx.n_msgs);
	assert_true(d.rx.down_reason == MUON_DOWN_CLOSED ||
		    d.rx.down_reason == MUON_DOWN_DISCONNECTED);
	/* Promptly: within 5 s of the start of the destroy, linger included. */
	assert_true(d.down_at_ms - t_kill <= 5000);
	/* Keep going a while: reconnect attempts fail, nothing else comes. */
	ut_poll_for(NULL, c[1], 1000);
	assert_int_equal(d.rx.n_down, 1);
	assert_int_equal(d.rx.n_loss, 0);
	assert_int_equal(d.rx.order_errors, 0);
	assert_int_equal(d.rx.payload_errors, 0);
	assert_int_equal(d.rx.meta_errors, 0);
	/* A prefix of the stream, and IMAGE_DOWN says where it ended. */
	assert_true(d.rx.n_msgs >= 300);
	assert_int_equal(d.rx.last_seq, d.rx.n_msgs);
	assert_int_equal(d.down_to, d.rx.last_seq);
	k = ut_counters(c[1]);
	assert_int_equal(k.losses, 0);
	assert_int_equal(k.msgs_received, d.rx.n_msgs);
	t0 = ut_now_ms();
	muon_ctx_destroy(c[1]);
	fprintf(stderr, "pub_dies: subscriber destroyed in %llu ms\n",
		(unsigned long long)(ut_now_ms() - t0));
	assert_true(ut_now_ms() - t0 < 3000);
}

/* The subscriber's context goes mid-stream: the publisher drops its sender
 * and goes on publishing; a newcomer gets the rest. */
static void test_sub_dies(void **state)
{
	char ep[128];
	muon_ctx_t *c[2];
	muon_pub_t *p;
	muon_sub_t *s;
	muon_sub_config_t cfg;
	static struct ut_rx rx, rx2;
	static uint8_t buf[1024];
	uint64_t seq, t_kill, first2;
	muon_counters_t k;

	(void)state;
	need_rdma();
	c[0] = ut_pub_ctx("verbs", NULL, ep, sizeof(ep));
	c[1] = ut_sub_ctx(ep, NULL);
	ut_rx_init(&rx, "die", 0, 1024);
	assert_int_equal(muon_pub_create(c[0], "die", NULL, &p), 0);
	ut_rx_sub_config(&rx, &cfg);
	assert_int_equal(muon_sub_create(c[1], "die", &cfg, &s), 0);
	UT_POLL_UNTIL(c[0], c[1], 10000, muon_sub_images(s) == 1 &&
		      muon_pub_subscribers(p) == 1, "no image within 10 s");
	for (seq = 1; rx.n_msgs < 300; seq++) {
		size_t len = ut_len_for(seq, 0, 1024);
		int64_t rc;

		ut_fill(buf, len, seq);
		while ((rc = muon_publish(p, buf, len)) == MUON_EBACKPRESSURE)
			ut_poll2(c[0], c[1]);
		assert_int_equal(rc, (int64_t)seq);
		ut_poll2(c[0], c[1]);
		if (seq > 100000)
			fail_msg("subscriber got only %llu of 100000",
				 (unsigned long long)rx.n_msgs);
	}
	check_rx(&rx, rx.n_msgs, "before the destroy");
	t_kill = ut_now_ms();
	muon_ctx_destroy(c[1]);
	c[1] = NULL;
	/* Publishing goes on (back-pressure at most while the sender still
	 * exists), and the publisher notices the subscriber has gone. */
	for (;; seq++) {
		size_t len = ut_len_for(seq, 0, 1024);
		int64_t rc;

		ut_fill(buf, len, seq);
		while ((rc = muon_publish(p, buf, len)) == MUON_EBACKPRESSURE) {
			if (ut_now_ms() - t_kill > 5000)
				fail_msg("publisher still back-pressured 5 s "
					 "after its subscriber went");
			ut_poll2(c[0], NULL);
		}
		if (rc != (int64_t)seq)
			fail_msg("publish %llu after the subscriber went: %lld "
				 "(%s)", (unsigned long long)seq, (long long)rc,
				 muon_errmsg());
		ut_poll2(c[0], NULL);
		k = ut_counters(c[0]);
		if (k.disconnects >= 1 && muon_pub_subscribers(p) == 0)
			break;
		if (ut_now_ms() - t_kill > 5000)
			fail_msg("5 s after the subscriber's destroy: "
				 "disconnects %llu, subscribers %d",
				 (unsigned long long)k.disconnects,
				 muon_pub_subscribers(p));
	}
	fprintf(stderr, "sub_dies: sender removed %llu ms after the "
		"subscriber's destroy (seq %llu)\n",
		(unsigned long long)(ut_now_ms() - t_kill),
		(unsigned long long)seq);
	/* 2000 more with nobody listening: never an error. */
	publish_range(c, 1, p, seq + 1, 2000, 0, 1024);
	seq += 2000;
	/* A newcomer takes the stream from the next message on. */
	c[1] = ut_sub_ctx(ep, NULL);
	ut_rx_init(&rx2, "die", 0, 1024);
	ut_rx_sub_config(&rx2, &cfg);
	assert_int_equal(muon_sub_create(c[1], "die", &cfg, &s), 0);
	UT_POLL_UNTIL(c[0], c[1], 10000, muon_sub_images(s) == 1 &&
		      muon_pub_subscribers(p) == 1,
		      "the second subscriber's image did not come up");
	first2 = seq + 1;
	rx2.expect = first2;
	publish_range(c, 2, p, first2, 500, 0, 1024);
	UT_POLL_UNTIL(c[0], c[1], 20000, rx2.n_msgs >= 500,
		      "second subscriber: %llu of 500",
		      (unsigned long long)rx2.n_msgs);
	check_rx(&rx2, 500, "second subscriber");
	assert_int_equal(rx2.up_from, first2);
	k = ut_counters(c[0]);
	assert_int_equal(k.msgs_sent, first2 + 499);
	muon_ctx_destroy(c[1]);
	muon_ctx_destroy(c[0]);
}

/* ------------------------------------------------------------ churn */

struct res {
	long fds, qp, mr, cq, pd, cm_id;
};

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		fail_msg("opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* Objects of `kind` that `rdma -j resource show KIND` lists for this pid. */
static long count_rdma(const char *kind)
{
	char cmd[128], *buf = NULL, *q;
	size_t cap = 0, len = 0, n;
	long count = 0, me = (long)getpid();
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "rdma -j resource show %s 2>&1", kind);
	f = popen(cmd, "r");
	if (!f)
		fail_msg("popen %s: %s", cmd, strerror(errno));
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		if (!n)
			break;
		len += n;
	}
	buf[len] = 0;
	st = pclose(f);
	if (st)
		fail_msg("`%s` failed (status %d; iproute2's rdma tool is "
			 "needed): %.300s", cmd, st, buf);
	/* JSON objects with "pid":N for user-space owners. */
	for (q = buf; (q = strstr(q, "\"pid\"")); ) {
		char *e;
		long v;

		q += 5;
		while (*q == ' ' || *q == ':')
			q++;
		v = strtol(q, &e, 10);
		if (e != q && v == me)
			count++;
		q = e;
	}
	free(buf);
	return count;
}

static struct res res_now(void)
{
	struct res r;

	r.fds = count_fds();
	r.qp = count_rdma("qp");
	r.mr = count_rdma("mr");
	r.cq = count_rdma("cq");
	r.pd = count_rdma("pd");
	r.cm_id = count_rdma("cm_id");
	return r;
}

static void res_print(const char *when, const struct res *r)
{
	fprintf(stderr, "churn: %-16s fds %ld, qp %ld, mr %ld, cq %ld, pd "
		"%ld, cm_id %ld\n", when, r->fds, r->qp, r->mr, r->cq, r->pd,
		r->cm_id);
}

static void res_same(const struct res *base, const struct res *now,
		     unsigned cycles)
{
	/* No slack: after the publisher's control plane has run for longer
	 * than its zombie and MR-graveyard delays (2 s each, verbs.c),
	 * everything a subscriber connection made is gone on both sides, and
	 * what the publisher keeps (listener, its device state, its send
	 * log's MR) already existed at the baseline. */
	if (now->fds != base->fds || now->qp != base->qp ||
	    now->mr != base->mr || now->cq != base->cq ||
	    now->pd != base->pd || now->cm_id != base->cm_id)
		fail_msg("after %u connect/disconnect cycles: fds %ld (was "
			 "%ld), qp %ld (%ld), mr %ld (%ld), cq %ld (%ld), pd "
			 "%ld (%ld), cm_id %ld (%ld)", cycles, now->fds,
			 base->fds, now->qp, base->qp, now->mr, base->mr,
			 now->cq, base->cq, now->pd, base->pd, now->cm_id,
			 base->cm_id);
}

/* One subscriber context: connect, take one message, go. */
static void churn_cycle(muon_ctx_t *pc, muon_pub_t *p, const char *ep,
			uint64_t seq, unsigned cycle)
{
	muon_ctx_t *sc = ut_sub_ctx(ep, NULL);
	muon_sub_t *s;
	muon_sub_config_t cfg;
	struct ut_rx rx;
	uint8_t buf[64];
	int64_t rc;

	ut_rx_init(&rx, "churn", 0, 64);
	rx.expect = seq;
	ut_rx_sub_config(&rx, &cfg);
	assert_int_equal(muon_sub_create(sc, "churn", &cfg, &s), 0);
	UT_POLL_UNTIL(pc, sc, 10000, muon_sub_images(s) == 1,
		      "cycle %u: no image within 10 s", cycle);
	ut_fill(buf, ut_len_for(seq, 0, 64), seq);
	rc = muon_publish(p, buf, ut_len_for(seq, 0, 64));
	if (rc != (int64_t)seq)
		fail_msg("cycle %u: publish returned %lld: %s", cycle,
			 (long long)rc, muon_errmsg());
	UT_POLL_UNTIL(pc, sc, 10000, rx.n_msgs == 1,
		      "cycle %u: message %llu did not arrive within 10 s",
		      cycle, (unsigned long long)seq);
	check_rx(&rx, 1, "churn");
	muon_ctx_destroy(sc);
}

static void test_churn(void **state)
{
	char ep[128];
	muon_ctx_t *pc;
	muon_pub_t *p;
	struct res r0, base, now;
	uint64_t t0, t100 = 0;
	unsigned i, cycles = CHURN_CYCLES;
	muon_counters_t k;

	(void)state;
	need_rdma();
	if (getenv("MUON_CHURN_CYCLES")) /* shorter runs by hand */
		cycles = (unsigned)strtoul(getenv("MUON_CHURN_CYCLES"), NULL,
					   10);
	r0 = res_now();
	res_print("before anything", &r0);
	pc = ut_pub_ctx("verbs", NULL, ep, sizeof(ep));
	assert_int_equal(muon_pub_create(pc, "churn", NULL, &p), 0);
	/* One cycle first: the publisher's device state (PD, SRQ, CQ,
	 * receive buffers, the send log's MR) and librdmacm's device handle
	 * come with the first connection and stay; that is the baseline. */
	churn_cycle(pc, p, ep, 1, 0);
	ut_poll_for(pc, NULL, 2500);
	base = res_now();
	res_print("baseline", &base);
	t0 = ut_now_ms();
	for (i = 1; i <= cycles; i++) {
		churn_cycle(pc, p, ep, 1 + i, i);
		if (i == 100) {
			t100 = ut_now_ms() - t0;
			fprintf(stderr, "churn: 100 cycles in %llu ms\n",
				(unsigned long long)t100);
		}
		if (i == cycles / 2 || i == cycles) {
			char when[32];

			ut_poll_for(pc, NULL, 2500);
			now = res_now();
			snprintf(when, sizeof(when), "after %u", i);
			res_print(when, &now);
			res_same(&base, &now, i);
		}
	}
	fprintf(stderr, "churn: %u cycles in %llu ms\n", cycles,
		(unsigned long long)(ut_now_ms() - t0));
	k = ut_counters(pc);
	assert_int_equal(k.connects, cycles + 1);
	assert_int_equal(k.disconnects, cycles + 1);
	assert_int_equal(muon_pub_subscribers(p), 0);
	muon_ctx_destroy(pc);
	now = res_now();
	res_print("all destroyed", &now);
	/* With the publisher gone too, only what librdmacm keeps for the
	 * process (its device handle: fds, no verbs objects of ours) may
	 * remain beyond the start. */
	assert_int_equal(now.qp, r0.qp);
	assert_int_equal(now.mr, r0.mr);
	assert_int_equal(now.cq, r0.cq);
	assert_int_equal(now.pd, r0.pd);
	assert_int_equal(now.cm_id, r0.cm_id);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_secret_file, secret_setup,
						secret_teardown),
		cmocka_unit_test_setup_teardown(test_secret_wrong, secret_setup,
						secret_teardown),
		cmocka_unit_test_setup_teardown(test_secret_nosub, secret_setup,
						secret_teardown),
		cmocka_unit_test_setup_teardown(test_secret_nopub, secret_setup,
						secret_teardown),
		cmocka_unit_test_setup_teardown(test_secret_same, secret_setup,
						secret_teardown),
		cmocka_unit_test(test_fanout8),
		cmocka_unit_test(test_pub_dies),
		cmocka_unit_test(test_sub_dies),
		cmocka_unit_test(test_churn),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("unit.verbs", tests, NULL, NULL);
}
