/*
 * Configuration: defaults, endpoint and list parsing, sizes, resolution of
 * the struct plus MUON_* environment overrides, and the checks that tie
 * the sizes together.
 */
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/muoni.h"
#include "proto/disc.h"

static const char *const env_vars[] = {
	"MUON_NAME", "MUON_CTX_ID", "MUON_LISTEN", "MUON_PEERS",
	"MUON_TRANSPORT", "MUON_RING_SIZE", "MUON_SEND_LOG_SIZE",
	"MUON_MAX_MSG_SIZE", "MUON_LOG_LEVEL", "MUON_HEARTBEAT_MS",
	"MUON_PEER_TIMEOUT_MS", "MUON_RECONNECT_MS", "MUON_LINGER_MS",
	"MUON_SHM_DIR", "MUON_SECRET_FILE", "MUON_DISCOVERY", "MUON_ADVERTISE",
};

static void clear_env(void)
{
	size_t i;

	for (i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
}

static int setup_env(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

static int teardown_env(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

/* ------------------------------------------------------------ defaults */

static void test_defaults(void **state)
{
	muon_ctx_config_t c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	muon_ctx_config_init(&c);
	assert_int_equal(c.size, sizeof(c));
	assert_string_equal(c.name, "muon");
	assert_true(c.ctx_id == 0);
	assert_null(c.listen);
	assert_null(c.peers);
	assert_string_equal(c.transport, "auto");
	assert_int_equal(c.ring_size, 8u << 20);
	assert_int_equal(c.send_log_size, 8u << 20);
	assert_int_equal(c.max_msg_size, 64u << 10);
	assert_int_equal(c.heartbeat_ms, 1000);
	assert_int_equal(c.peer_timeout_ms, 10000);
	assert_int_equal(c.reconnect_ms, 100);
	assert_int_equal(c.linger_ms, 2000);
	assert_int_equal(c.log_level, MUON_LOG_WARN);
	assert_null(c.log_fn);
	assert_null(c.log_arg);
	assert_int_equal(c.ignore_env, 0);
	assert_string_equal(c.shm_dir, "/dev/shm");
	muon_ctx_config_init(NULL); /* tolerated */

	{
		muon_pub_config_t p;
		muon_sub_config_t s;

		memset(&p, 0xa5, sizeof(p));
		muon_pub_config_init(&p);
		assert_int_equal(p.size, sizeof(p));
		assert_int_equal(p.send_log_size, 0);
		assert_int_equal(p.slow_policy, MUON_SLOW_BACKPRESSURE);
		assert_int_equal(p.slow_timeout_ms, 1000);
		assert_null(p.event_fn);
		memset(&s, 0xa5, sizeof(s));
		muon_sub_config_init(&s);
		assert_int_equal(s.size, sizeof(s));
		assert_null(s.msg_fn);
		assert_null(s.event_fn);
		assert_int_equal(s.start, MUON_START_LATEST);
		assert_true(s.start_seq == 0);
	}
}

/* The resolved form of the defaults. */
static void test_resolve_defaults(void **state)
{
	struct muoni_config r;

	(void)state;
	assert_int_equal(muoni_config_resolve(NULL, &r), 0);
	assert_string_equal(r.name, "muon");
	assert_int_equal(r.ring_size, 8u << 20);
	assert_int_equal(r.send_log_size, 8u << 20);
	assert_int_equal(r.max_msg_size, 65536);
	assert_int_equal(r.heartbeat_ms, 1000);
	assert_int_equal(r.peer_timeout_ms, 10000);
	assert_int_equal(r.reconnect_ms, 100);
	assert_int_equal(r.linger_ms, 2000);
	assert_int_equal(r.log_level, MUON_LOG_WARN);
	assert_int_equal(r.transport, 0);
	assert_int_equal(r.n_listen, 0);
	assert_int_equal(r.n_peers, 0);
	assert_true(r.ctx_id == 0);
	assert_string_equal(r.shm_dir, "/dev/shm");
	muoni_config_fini(&r);
}

/* ----------------------------------------------------------- endpoints */

static int parse(const char *s, struct muoni_endpoint *ep)
{
	return muoni_endpoint_parse(s, strlen(s), ep);
}

static void test_endpoint_accepts(void **state)
{
	struct muoni_endpoint ep;
	char name64[80];

	(void)state;
	assert_int_equal(parse("shm://name", &ep), 0);
	assert_int_equal(ep.kind, MUONI_EP_SHM);
	assert_string_equal(ep.name, "name");
	assert_string_equal(ep.text, "shm://name");

	assert_int_equal(parse("shm://A.b_c-9", &ep), 0);
	assert_string_equal(ep.name, "A.b_c-9");

	snprintf(name64, sizeof(name64), "shm://%064d", 7);
	assert_int_equal(parse(name64, &ep), 0);
	assert_int_equal(strlen(ep.name), 64);

	assert_int_equal(parse("tcp://1.2.3.4:5", &ep), 0);
	assert_int_equal(ep.kind, MUONI_EP_TCP);
	assert_string_equal(ep.host, "1.2.3.4");
	assert_int_equal(ep.port, 5);
	assert_string_equal(ep.text, "tcp://1.2.3.4:5");

	assert_int_equal(parse("tcp://[::1]:7", &ep), 0);
	assert_int_equal(ep.kind, MUONI_EP_TCP);
	assert_string_equal(ep.host, "::1");
	assert_int_equal(ep.port, 7);
	assert_string_equal(ep.text, "tcp://[::1]:7");

	assert_int_equal(parse("tcp://[fe80::1%eth0]:65535", &ep), 0);
	assert_string_equal(ep.host, "fe80::1%eth0");
	assert_int_equal(ep.port, 65535);

	assert_int_equal(parse("tcp://host-name:0", &ep), 0);
	assert_string_equal(ep.host, "host-name");
	assert_int_equal(ep.port, 0);
	assert_string_equal(ep.text, "tcp://host-name:0");

	/* Only the first n bytes count. */
	assert_int_equal(muoni_endpoint_parse("shm://abc,shm://x", 9, &ep), 0);
	assert_string_equal(ep.name, "abc");
	assert_int_equal(muoni_endpoint_parse("tcp://h:12,junk", 10, &ep), 0);
	assert_int_equal(ep.port, 12);
}

static void test_endpoint_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"name",
		"shm:name",
		"shm:/name",
		"udp://1.2.3.4:5",
		"SHM://name",
		"shm://",
		"shm://a b",
		"shm://a/b",
		"shm://a:b",
		"shm://na\tme",
		"shm://ab\xc3\xa9",
		"tcp://",
		"tcp://1.2.3.4",
		"tcp://1.2.3.4:",
		"tcp://:5",
		"tcp://1.2.3.4:65536",
		"tcp://1.2.3.4:99999999999",
		"tcp://1.2.3.4:-1",
		"tcp://1.2.3.4: 5",
		"tcp://1.2.3.4:5x",
		"tcp://1.2.3.4:0x10",
		"tcp://::1:7",
		"tcp://fe80::1:7",
		"tcp://[::1]",
		"tcp://[::1]:",
		"tcp://[::1]7",
		"tcp://[]:7",
		"tcp://[::1:7",
		"tcp://ho st:5",
		"tcp://ho/st:5",
		"tcp://h\"st:5",
	};
	struct muoni_endpoint ep;
	char buf[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &ep);
		if (rc != MUON_ECONFIG)
			fail_msg("endpoint '%s' gave %d, want MUON_ECONFIG",
				 bad[i], rc);
		assert_true(strlen(muon_errmsg()) > 0);
	}
	/* Name of 65 characters. */
	snprintf(buf, sizeof(buf), "shm://%065d", 7);
	assert_int_equal(parse(buf, &ep), MUON_ECONFIG);
	/* A host too long for the host field. */
	snprintf(buf, sizeof(buf), "tcp://%070d:5", 1);
	assert_int_equal(parse(buf, &ep), MUON_ECONFIG);
	/* Text of 128 characters or more, even when each part is fine. */
	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "tcp://%s:5",
		 "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aa.bb.cc"
		 ".dd.ee.ff.gg.hh.ii.jj.kk.ll.mm.nn.oo.pp.qq.rr.ss.tt.uu.vv.ww");
	assert_true(strlen(buf) >= 128);
	assert_int_equal(parse(buf, &ep), MUON_ECONFIG);
	memset(buf, 'a', 200);
	memcpy(buf, "shm://", 6);
	buf[127] = '\0';
	assert_int_equal(parse(buf, &ep), MUON_ECONFIG);
	buf[127] = 'a';
	buf[200] = '\0';
	assert_int_equal(parse(buf, &ep), MUON_ECONFIG);
}

static void test_endpoints_list(void **state)
{
	struct muoni_endpoint *eps = (void *)1;
	unsigned n = 99, i;
	char *big;
	size_t off;

	(void)state;
	assert_int_equal(muoni_endpoints_parse(NULL, false, &eps, &n), 0);
	assert_null(eps);
	assert_int_equal(n, 0);
	assert_int_equal(muoni_endpoints_parse("", false, &eps, &n), 0);
	assert_null(eps);
	assert_int_equal(n, 0);
	assert_int_equal(muoni_endpoints_parse(" , ,,\t,", false, &eps, &n), 0);
	assert_int_equal(n, 0);
	free(eps);

	assert_int_equal(muoni_endpoints_parse(
		" shm://a ,tcp://1.2.3.4:5,, \ttcp://[::1]:7\t, ", false, &eps,
		&n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(eps[0].text, "shm://a");
	assert_string_equal(eps[1].text, "tcp://1.2.3.4:5");
	assert_string_equal(eps[2].text, "tcp://[::1]:7");
	free(eps);

	eps = (void *)1;
	assert_int_equal(muoni_endpoints_parse("shm://a, shm://b c, shm://d",
					       false, &eps, &n), MUON_ECONFIG);
	assert_null(eps);
	assert_int_equal(n, 0);
	assert_int_equal(muoni_endpoints_parse("shm://a,bogus", false, &eps, &n),
			 MUON_ECONFIG);

	/* 256 endpoints are fine, 257 are not. */
	big = malloc(257 * 24);
	assert_non_null(big);
	for (off = 0, i = 0; i < 257; i++)
		off += (size_t)sprintf(big + off, "%sshm://n%u", i ? "," : "", i);
	assert_int_equal(muoni_endpoints_parse(big, false, &eps, &n), MUON_ECONFIG);
	*strrchr(big, ',') = '\0';
	assert_int_equal(muoni_endpoints_parse(big, false, &eps, &n), 0);
	assert_int_equal(n, 256);
	assert_string_equal(eps[255].name, "n255");
	free(eps);
	free(big);
}

/* ---------------------------------------------------------- numbers */

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint32_t v;
	} good[] = {
		{"0", 0},
		{"1", 1},
		{"4096", 4096},
		{"1k", 1024},
		{"1K", 1024},
		{"64K", 65536},
		{"1m", 1u << 20},
		{"8M", 8u << 20},
		{"1G", 1u << 30},
		{"3g", 3u << 30},
		{"4194303K", 4194303u * 1024},
		{"4095M", 4095u << 20},
		{"4294967295", 4294967295u},
	};
	static const char *const bad[] = {
		"", "K", "-1", "+1", " 1", "1 ", "1 K", "1KB", "1T", "1.5M",
		"0x10", "4G", "4096M", "4194304K", "4294967296",
		"99999999999999999999999", "18446744073709551615",
		"18446744073709551616K", "abc",
	};
	uint32_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		if (muoni_parse_size(good[i].s, &v) != 0 || v != good[i].v)
			fail_msg("size '%s': got %u, want %u", good[i].s, v,
				 good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (muoni_parse_size(bad[i], &v) != MUON_ECONFIG)
			fail_msg("size '%s' accepted as %u", bad[i], v);
		assert_int_equal(v, 12345);
	}
	assert_int_equal(muoni_parse_size(NULL, &v), MUON_ECONFIG);
}

static void test_parse_u32(void **state)
{
	uint32_t v;

	(void)state;
	assert_int_equal(muoni_parse_u32("10", 1, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(muoni_parse_u32("1", 1, 10, &v), 0);
	assert_int_equal(muoni_parse_u32("0", 1, 10, &v), MUON_ECONFIG);
	assert_int_equal(muoni_parse_u32("11", 1, 10, &v), MUON_ECONFIG);
	assert_int_equal(muoni_parse_u32("-1", 0, 10, &v), MUON_ECONFIG);
	assert_int_equal(muoni_parse_u32(" 1", 0, 10, &v), MUON_ECONFIG);
	assert_int_equal(muoni_parse_u32("1x", 0, 10, &v), MUON_ECONFIG);
	assert_int_equal(muoni_parse_u32("", 0, 10, &v), MUON_ECONFIG);
	assert_int_equal(muoni_parse_u32(NULL, 0, 10, &v), MUON_ECONFIG);
	assert_int_equal(muoni_parse_u32("4294967296", 0, UINT32_MAX, &v),
			 MUON_ECONFIG);
	assert_int_equal(muoni_parse_u32("4294967295", 0, UINT32_MAX, &v), 0);
	assert_int_equal(v, UINT32_MAX);
}

/* ---------------------------------------------------------- resolve */

static void base(muon_ctx_config_t *c)
{
	muon_ctx_config_init(c);
}

static void expect_resolve_fail(const muon_ctx_config_t *c, int want,
				const char *needle, const char *what)
{
	struct muoni_config r;
	int rc = muoni_config_resolve(c, &r);

	if (rc == 0) {
		muoni_config_fini(&r);
		fail_msg("%s: accepted", what);
	}
	if (rc != want)
		fail_msg("%s: got %d (%s), want %d: %s", what, rc,
			 muon_strerror(rc), want, muon_errmsg());
	if (needle && !strstr(muon_errmsg(), needle))
		fail_msg("%s: error message '%s' does not mention '%s'", what,
			 muon_errmsg(), needle);
}

static void test_resolve_struct(void **state)
{
	muon_ctx_config_t c;
	struct muoni_config r;

	(void)state;
	base(&c);
	c.name = "a-very-long-name-that-is-cut-at-32-characters";
	c.ctx_id = 0x77;
	c.listen = "shm://x, tcp://127.0.0.1:0";
	c.peers = "tcp://[::1]:9";
	c.transport = "tcp";
	c.ring_size = 65536;
	c.send_log_size = 4096;
	c.max_msg_size = 1024;
	c.heartbeat_ms = 5;
	c.peer_timeout_ms = 6;
	c.reconnect_ms = 1;
	c.linger_ms = 0;
	c.log_level = MUON_LOG_DEBUG;
	c.shm_dir = "/tmp";
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_int_equal(strlen(r.name), 32);
	assert_memory_equal(r.name, c.name, 32);
	assert_true(r.ctx_id == 0x77);
	assert_int_equal(r.n_listen, 2);
	assert_int_equal(r.listen[0].kind, MUONI_EP_SHM);
	assert_int_equal(r.listen[1].kind, MUONI_EP_TCP);
	assert_int_equal(r.n_peers, 1);
	assert_int_equal(r.peers[0].port, 9);
	assert_int_equal(r.transport, MUONI_EP_TCP);
	assert_int_equal(r.ring_size, 65536);
	assert_int_equal(r.send_log_size, 4096);
	assert_int_equal(r.max_msg_size, 1024);
	assert_int_equal(r.heartbeat_ms, 5);
	assert_int_equal(r.peer_timeout_ms, 6);
	assert_int_equal(r.reconnect_ms, 1);
	assert_int_equal(r.linger_ms, 0);
	assert_int_equal(r.log_level, MUON_LOG_DEBUG);
	assert_string_equal(r.shm_dir, "/tmp");
	muoni_config_fini(&r);
	assert_null(r.listen);
	assert_null(r.peers);

	base(&c);
	c.name = "";
	c.transport = "shm";
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_string_equal(r.name, "muon");
	assert_int_equal(r.transport, MUONI_EP_SHM);
	muoni_config_fini(&r);
	c.transport = NULL;
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_int_equal(r.transport, 0);
	muoni_config_fini(&r);
}

static void test_resolve_rejects(void **state)
{
	muon_ctx_config_t c;
	char longdir[260];

	(void)state;
	base(&c);
	c.ring_size = 65536 + 4096;
	expect_resolve_fail(&c, MUON_ECONFIG, "ring_size", "ring not pow2");
	base(&c);
	c.ring_size = 32768;
	c.max_msg_size = 1024;
	expect_resolve_fail(&c, MUON_ECONFIG, "ring_size", "ring < 64K");
	base(&c);
	c.ring_size = 512u << 20; /* more than a shm publisher maps */
	expect_resolve_fail(&c, MUON_ECONFIG, "ring_size", "ring > 256M");
	base(&c);
	c.ring_size = 0;
	expect_resolve_fail(&c, MUON_ECONFIG, "ring_size", "ring 0");
	base(&c);
	c.send_log_size = 6000;
	expect_resolve_fail(&c, MUON_ECONFIG, "send_log_size", "log not pow2");
	base(&c);
	c.send_log_size = 2048;
	c.max_msg_size = 512;
	expect_resolve_fail(&c, MUON_ECONFIG, "send_log_size", "log < 4K");
	base(&c);
	c.ring_size = 65536;
	c.max_msg_size = 16385;
	expect_resolve_fail(&c, MUON_ECONFIG, "max_msg_size", "msg > ring/4");
	base(&c);
	c.ring_size = 65536;
	c.max_msg_size = 16384;
	{
		struct muoni_config r;
		assert_int_equal(muoni_config_resolve(&c, &r), 0);
		muoni_config_fini(&r);
	}
	base(&c);
	c.send_log_size = 65536;
	c.max_msg_size = 16385;
	expect_resolve_fail(&c, MUON_ECONFIG, "max_msg_size", "msg > log/4");
	base(&c);
	c.peer_timeout_ms = c.heartbeat_ms;
	expect_resolve_fail(&c, MUON_ECONFIG, "peer_timeout_ms",
			    "timeout == heartbeat");
	base(&c);
	c.peer_timeout_ms = 500;
	expect_resolve_fail(&c, MUON_ECONFIG, "peer_timeout_ms",
			    "timeout < heartbeat");
	base(&c);
	c.heartbeat_ms = 0;
	expect_resolve_fail(&c, MUON_ECONFIG, "heartbeat_ms", "heartbeat 0");
	base(&c);
	c.reconnect_ms = 0;
	expect_resolve_fail(&c, MUON_ECONFIG, "reconnect_ms", "reconnect 0");
	base(&c);
	c.log_level = (muon_log_level_t)7;
	expect_resolve_fail(&c, MUON_ECONFIG, "log_level", "log level 7");
	base(&c);
	c.secret_file = "/nonexistent/muon-secret";
	expect_resolve_fail(&c, MUON_ENOTFOUND, "secret_file", "no secret");
	base(&c);
	c.transport = "udp";
	expect_resolve_fail(&c, MUON_ECONFIG, "udp", "transport udp");
	base(&c);
	c.shm_dir = "";
	expect_resolve_fail(&c, MUON_ECONFIG, "shm_dir", "shm_dir empty");
	base(&c);
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[201] = '\0';
	c.shm_dir = longdir;
	expect_resolve_fail(&c, MUON_ECONFIG, "shm_dir", "shm_dir long");
	base(&c);
	c.listen = "shm://ok, shm://not ok";
	expect_resolve_fail(&c, MUON_ECONFIG, "listen", "listen");
	base(&c);
	c.listen = "shm://ok";
	c.peers = "tcp://nohost";
	expect_resolve_fail(&c, MUON_ECONFIG, "peers", "peers");
	base(&c);
	c.size = 4;
	expect_resolve_fail(&c, MUON_EINVAL, NULL, "size 4");
	c.size = 0;
	expect_resolve_fail(&c, MUON_EINVAL, NULL, "size 0");
}

/* An older caller's struct: only the first `size` bytes are read. */
static void test_resolve_older_struct(void **state)
{
	muon_ctx_config_t c;
	struct muoni_config r;

	(void)state;
	base(&c);
	c.ring_size = 1u << 20;
	c.shm_dir = "/this/is/beyond/size"; /* must not be read */
	c.log_level = MUON_LOG_DEBUG;
	c.size = offsetof(muon_ctx_config_t, log_level);
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_int_equal(r.ring_size, 1u << 20);
	assert_string_equal(r.shm_dir, "/dev/shm");
	assert_int_equal(r.log_level, MUON_LOG_WARN);
	muoni_config_fini(&r);

	/* Just the size field. */
	base(&c);
	c.ring_size = 12345; /* beyond size: ignored */
	c.size = sizeof(size_t);
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_int_equal(r.ring_size, 8u << 20);
	muoni_config_fini(&r);

	/* A bigger struct from a newer header. */
	{
		struct {
			muon_ctx_config_t c;
			uint64_t future[4];
		} big;
		memset(&big, 0xee, sizeof(big));
		muon_ctx_config_init(&big.c);
		big.c.size = sizeof(big);
		big.c.ignore_env = 1;
		assert_int_equal(muoni_config_resolve(&big.c, &r), 0);
		muoni_config_fini(&r);
	}
}

/*
 * ignore_env lies beyond an older caller's `size`: the library must not
 * read it there (the header promises only the first `size` bytes are
 * read), so the environment applies. Checked with a heap block of exactly
 * `size` bytes (ASan) and with a stale 1 in the unread field.
 */
static void test_resolve_older_struct_ignore_env(void **state)
{
	size_t sz = offsetof(muon_ctx_config_t, ignore_env);
	muon_ctx_config_t full, *c;
	struct muoni_config r;

	(void)state;
	/* A stale 1 in the unread ignore_env must not switch the environment
	 * off (fails without sanitizers too). */
	muon_ctx_config_init(&full);
	full.size = sz;
	full.ignore_env = 1;
	setenv("MUON_RING_SIZE", "garbage", 1);
	expect_resolve_fail(&full, MUON_ECONFIG, "MUON_RING_SIZE",
			    "ignore_env read beyond size");

	/* Exactly `size` bytes on the heap: ASan reports any read past them
	 * (this test runs last in the group for that reason). */
	c = malloc(sz);
	assert_non_null(c);
	full.ignore_env = 0;
	memcpy(c, &full, sz);
	setenv("MUON_RING_SIZE", "1M", 1);
	assert_int_equal(muoni_config_resolve(c, &r), 0);
	assert_int_equal(r.ring_size, 1u << 20);
	muoni_config_fini(&r);
	free(c);
}

static void test_env_overrides(void **state)
{
	muon_ctx_config_t c;
	struct muoni_config r;

	(void)state;
	setenv("MUON_NAME", "from-env", 1);
	setenv("MUON_CTX_ID", "0x1234", 1);
	setenv("MUON_LISTEN", "shm://env-l", 1);
	setenv("MUON_PEERS", "tcp://10.0.0.1:99, shm://env-p", 1);
	setenv("MUON_TRANSPORT", "shm", 1);
	setenv("MUON_RING_SIZE", "1M", 1);
	setenv("MUON_SEND_LOG_SIZE", "64k", 1);
	setenv("MUON_MAX_MSG_SIZE", "4K", 1);
	setenv("MUON_LOG_LEVEL", "DEBUG", 1);
	setenv("MUON_HEARTBEAT_MS", "50", 1);
	setenv("MUON_PEER_TIMEOUT_MS", "500", 1);
	setenv("MUON_RECONNECT_MS", "7", 1);
	setenv("MUON_LINGER_MS", "0", 1);
	setenv("MUON_SHM_DIR", "/tmp", 1);
	base(&c);
	c.name = "from-struct";
	c.ring_size = 65536;
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_string_equal(r.name, "from-env");
	assert_true(r.ctx_id == 0x1234);
	assert_int_equal(r.n_listen, 1);
	assert_string_equal(r.listen[0].name, "env-l");
	assert_int_equal(r.n_peers, 2);
	assert_int_equal(r.peers[0].port, 99);
	assert_string_equal(r.peers[1].name, "env-p");
	assert_int_equal(r.transport, MUONI_EP_SHM);
	assert_int_equal(r.ring_size, 1u << 20);
	assert_int_equal(r.send_log_size, 65536);
	assert_int_equal(r.max_msg_size, 4096);
	assert_int_equal(r.log_level, MUON_LOG_DEBUG);
	assert_int_equal(r.heartbeat_ms, 50);
	assert_int_equal(r.peer_timeout_ms, 500);
	assert_int_equal(r.reconnect_ms, 7);
	assert_int_equal(r.linger_ms, 0);
	assert_string_equal(r.shm_dir, "/tmp");
	muoni_config_fini(&r);

	/* A NULL config takes the environment too. */
	assert_int_equal(muoni_config_resolve(NULL, &r), 0);
	assert_int_equal(r.ring_size, 1u << 20);
	assert_string_equal(r.name, "from-env");
	muoni_config_fini(&r);

	/* ignore_env: the struct alone, even with bad variables around. */
	clear_env();
	setenv("MUON_RING_SIZE", "not-a-size", 1);
	setenv("MUON_TRANSPORT", "nonsense", 1);
	setenv("MUON_LISTEN", "nonsense", 1);
	setenv("MUON_CTX_ID", "0", 1);
	base(&c);
	c.ignore_env = 1;
	c.ring_size = 1u << 18;
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_int_equal(r.ring_size, 1u << 18);
	assert_int_equal(r.transport, 0);
	assert_int_equal(r.n_listen, 0);
	assert_true(r.ctx_id == 0);
	muoni_config_fini(&r);
}

struct bad_env {
	const char *var;
	const char *value;
};

/* Every entry must fail with MUON_ECONFIG naming its variable, both in
 * muoni_config_resolve() and muon_ctx_create(); all offenders are listed. */
static void check_bad_env(const struct bad_env *b, size_t n)
{
	muon_ctx_config_t c;
	char report[4096] = "";
	size_t i, used = 0;

	for (i = 0; i < n; i++) {
		struct muoni_config r;
		muon_ctx_t *ctx = (void *)1;
		int rc;

		clear_env();
		setenv(b[i].var, b[i].value, 1);
		base(&c);
		rc = muoni_config_resolve(&c, &r);
		if (rc == 0)
			muoni_config_fini(&r);
		if (rc != MUON_ECONFIG || !strstr(muon_errmsg(), b[i].var)) {
			used += (size_t)snprintf(report + used,
				sizeof(report) - used, "\n  %s='%s' -> %d '%.90s'",
				b[i].var, b[i].value, rc,
				rc ? muon_errmsg() : "");
			continue;
		}
		rc = muon_ctx_create(&c, &ctx);
		if (rc == 0)
			muon_ctx_destroy(ctx);
		if (rc != MUON_ECONFIG || ctx != (void *)1 ||
		    !strstr(muon_errmsg(), b[i].var))
			used += (size_t)snprintf(report + used,
				sizeof(report) - used,
				"\n  muon_ctx_create %s='%s' -> %d '%.90s'",
				b[i].var, b[i].value, rc,
				rc ? muon_errmsg() : "");
		if (used >= sizeof(report) - 1)
			break;
	}
	clear_env();
	if (used)
		fail_msg("bad environment values not reported as MUON_ECONFIG "
			 "naming the variable:%s", report);
}

/* Values that do not parse as what the variable holds. */
static void test_env_bad_numbers(void **state)
{
	static const struct bad_env bad[] = {
		{"MUON_RING_SIZE", "abc"},
		{"MUON_RING_SIZE", ""},
		{"MUON_RING_SIZE", "8X"},
		{"MUON_RING_SIZE", "5G"},
		{"MUON_SEND_LOG_SIZE", "-4096"},
		{"MUON_SEND_LOG_SIZE", "1.5M"},
		{"MUON_MAX_MSG_SIZE", "64 K"},
		{"MUON_HEARTBEAT_MS", "0"},
		{"MUON_HEARTBEAT_MS", "fast"},
		{"MUON_PEER_TIMEOUT_MS", "-1"},
		{"MUON_PEER_TIMEOUT_MS", "86400001"},
		{"MUON_RECONNECT_MS", "0"},
		{"MUON_RECONNECT_MS", "1s"},
		{"MUON_LINGER_MS", "3600001"},
		{"MUON_LINGER_MS", ""},
		{"MUON_LOG_LEVEL", "loud"},
		{"MUON_LOG_LEVEL", ""},
		{"MUON_CTX_ID", "0"},
		{"MUON_CTX_ID", "xyz"},
		{"MUON_CTX_ID", "99999999999999999999999"},
	};

	(void)state;
	check_bad_env(bad, sizeof(bad) / sizeof(bad[0]));
}

/* Malformed endpoint, transport and directory variables. */
static void test_env_bad_strings(void **state)
{
	static const struct bad_env bad[] = {
		{"MUON_TRANSPORT", "carrier-pigeon"},
		{"MUON_LISTEN", "bogus"},
		{"MUON_LISTEN", "shm://bad name"},
		{"MUON_PEERS", "tcp://1.2.3.4"},
		{"MUON_SHM_DIR", ""},
	};

	(void)state;
	check_bad_env(bad, sizeof(bad) / sizeof(bad[0]));
}

/* Values that parse but break the size rules. */
static void test_env_bad_sizes(void **state)
{
	static const struct bad_env bad[] = {
		{"MUON_RING_SIZE", "100000"},
		{"MUON_SEND_LOG_SIZE", "1K"},
		{"MUON_MAX_MSG_SIZE", "1G"},
	};

	(void)state;
	check_bad_env(bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_env_verbs(void **state)
{
	struct muoni_config r;

	(void)state;
	setenv("MUON_TRANSPORT", "verbs", 1);
	assert_int_equal(muoni_config_resolve(NULL, &r), 0);
	assert_int_equal(r.transport, MUONI_EP_VERBS);
	muoni_config_fini(&r);
	setenv("MUON_TRANSPORT", "rdma", 1);
	assert_int_equal(muoni_config_resolve(NULL, &r), MUON_ECONFIG);
	assert_non_null(strstr(muon_errmsg(), "MUON_TRANSPORT"));
	clear_env();
}

/* Peers may list one context's endpoints on several transports. */
static void test_alternatives(void **state)
{
	struct muoni_endpoint *eps = NULL;
	unsigned n = 0;

	(void)state;
	assert_int_equal(muoni_endpoints_parse(
		"verbs://192.0.2.1:7000 | tcp://192.0.2.1:7001|shm://p, "
		"verbs://[2001:db8::1]:9", true, &eps, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(eps[0].kind, MUONI_EP_VERBS);
	assert_string_equal(eps[0].text, "verbs://192.0.2.1:7000");
	assert_int_equal(eps[1].kind, MUONI_EP_TCP);
	assert_int_equal(eps[2].kind, MUONI_EP_SHM);
	assert_int_equal(eps[0].group, 0);
	assert_int_equal(eps[2].group, 0);
	assert_int_equal(eps[3].group, 1);
	assert_string_equal(eps[3].host, "2001:db8::1");
	assert_string_equal(eps[3].text, "verbs://[2001:db8::1]:9");
	free(eps);
	/* not for listen; no empty or same-transport alternatives */
	assert_int_equal(muoni_endpoints_parse("tcp://a:1|shm://b", false,
					       &eps, &n), MUON_ECONFIG);
	assert_int_equal(muoni_endpoints_parse("tcp://a:1|", true, &eps, &n),
			 MUON_ECONFIG);
	assert_int_equal(muoni_endpoints_parse("tcp://a:1||shm://x", true,
					       &eps, &n), MUON_ECONFIG);
	assert_int_equal(muoni_endpoints_parse("tcp://a:1|tcp://b:2", true,
					       &eps, &n), MUON_ECONFIG);
	assert_non_null(strstr(muon_errmsg(), "two alternatives"));
	assert_int_equal(muoni_endpoints_parse("verbs://a", true, &eps, &n),
			 MUON_ECONFIG);
	assert_non_null(strstr(muon_errmsg(), "verbs endpoint"));
}

/* ------------------------------------------------------------ discovery */

static void test_daemons_parse(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} ok[] = {
		{"host1", "tcp://host1:7440"},
		{"10.0.0.1:7441", "tcp://10.0.0.1:7441"},
		{"tcp://10.0.0.1:9", "tcp://10.0.0.1:9"},
		{"tcp://muond-a", "tcp://muond-a:7440"},
		{"[2001:db8::5]:7000", "tcp://[2001:db8::5]:7000"},
		{"[2001:db8::5]", "tcp://[2001:db8::5]:7440"},
		{"2001:db8::5", "tcp://[2001:db8::5]:7440"},
		{"  spaced.example  ", "tcp://spaced.example:7440"},
	};
	static const char *const bad[] = {
		"shm://x", "verbs://1.2.3.4:5", "udp://h:1", "h:0", "h:99999",
		"h:port", "bad host", "[::1", "a,,shm://b",
		"h1,h2,h3,h4,h5,h6,h7,h8,h9,h10,h11,h12,h13,h14,h15,h16,h17",
	};
	struct muoni_endpoint *eps;
	unsigned n, i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(muoni_disc_daemons_parse(ok[i].in, &eps, &n),
				 0);
		assert_int_equal(n, 1);
		assert_string_equal(eps[0].text, ok[i].out);
		free(eps);
	}
	assert_int_equal(muoni_disc_daemons_parse("a, b:1 ,tcp://c:2", &eps,
						  &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(eps[1].text, "tcp://b:1");
	free(eps);
	assert_int_equal(muoni_disc_daemons_parse(NULL, &eps, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(muoni_disc_daemons_parse("", &eps, &n), 0);
	assert_int_equal(n, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		eps = (void *)1;
		n = 77;
		if (muoni_disc_daemons_parse(bad[i], &eps, &n) !=
		    MUON_ECONFIG)
			fail_msg("'%s' accepted", bad[i]);
		assert_null(eps);
		assert_int_equal(n, 0);
		assert_true(strlen(muon_errmsg()) > 0);
	}
}

static void test_resolve_discovery(void **state)
{
	muon_ctx_config_t c;
	struct muoni_config r;

	(void)state;
	muon_ctx_config_init(&c);
	assert_null(c.discovery);
	assert_null(c.advertise);
	c.discovery = "a,b:7000";
	c.advertise = "tcp://192.0.2.7:9000,shm://x";
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_int_equal(r.n_daemons, 2);
	assert_string_equal(r.daemons[1].text, "tcp://b:7000");
	assert_int_equal(r.n_advertise, 2);
	assert_string_equal(r.advertise[0].text, "tcp://192.0.2.7:9000");
	muoni_config_fini(&r);

	/* The environment wins, and errors name the variable. */
	setenv("MUON_DISCOVERY", "env-host", 1);
	assert_int_equal(muoni_config_resolve(&c, &r), 0);
	assert_int_equal(r.n_daemons, 1);
	assert_string_equal(r.daemons[0].text, "tcp://env-host:7440");
	muoni_config_fini(&r);
	setenv("MUON_DISCOVERY", "shm://nope", 1);
	assert_int_equal(muoni_config_resolve(&c, &r), MUON_ECONFIG);
	assert_non_null(strstr(muon_errmsg(), "MUON_DISCOVERY"));
	unsetenv("MUON_DISCOVERY");
	c.discovery = "bad host";
	assert_int_equal(muoni_config_resolve(&c, &r), MUON_ECONFIG);
	assert_non_null(strstr(muon_errmsg(), "discovery"));
	c.discovery = NULL;
	c.advertise = "tcp://a:1,tcp://a:2,tcp://a:3,tcp://a:4,tcp://a:5,"
		      "tcp://a:6,tcp://a:7,tcp://a:8,tcp://a:9";
	assert_int_equal(muoni_config_resolve(&c, &r), MUON_ECONFIG);
	assert_non_null(strstr(muon_errmsg(), "advertise"));
	setenv("MUON_ADVERTISE", "nonsense", 1);
	assert_int_equal(muoni_config_resolve(&c, &r), MUON_ECONFIG);
	assert_non_null(strstr(muon_errmsg(), "MUON_ADVERTISE"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup_env,
						teardown_env),
		cmocka_unit_test_setup_teardown(test_resolve_defaults, setup_env,
						teardown_env),
		cmocka_unit_test(test_endpoint_accepts),
		cmocka_unit_test(test_daemons_parse),
		cmocka_unit_test_setup_teardown(test_resolve_discovery,
						setup_env, teardown_env),
		cmocka_unit_test(test_endpoint_rejects),
		cmocka_unit_test(test_endpoints_list),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_u32),
		cmocka_unit_test_setup_teardown(test_resolve_struct, setup_env,
						teardown_env),
		cmocka_unit_test_setup_teardown(test_resolve_rejects, setup_env,
						teardown_env),
		cmocka_unit_test_setup_teardown(test_resolve_older_struct,
						setup_env, teardown_env),
		cmocka_unit_test_setup_teardown(test_env_overrides, setup_env,
						teardown_env),
		cmocka_unit_test_setup_teardown(test_env_bad_numbers, setup_env,
						teardown_env),
		cmocka_unit_test_setup_teardown(test_env_bad_strings, setup_env,
						teardown_env),
		cmocka_unit_test_setup_teardown(test_env_bad_sizes, setup_env,
						teardown_env),
		cmocka_unit_test_setup_teardown(test_alternatives, setup_env,
						teardown_env),
		cmocka_unit_test_setup_teardown(test_env_verbs, setup_env,
						teardown_env),
		/* Last: under ASan its out-of-bounds read ends the process. */
		cmocka_unit_test_setup_teardown(
			test_resolve_older_struct_ignore_env, setup_env,
			teardown_env),
	};

	return cmocka_run_group_tests_name("unit.config", tests, NULL, NULL);
}
