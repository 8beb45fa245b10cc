/*
 * Rogue peers, end to end: the test itself plays a malicious or broken
 * peer with raw sockets and raw ring mappings against real muon contexts in
 * this process, and checks that the context survives, says what went wrong,
 * closes only that connection, loses nothing it accepted, and keeps serving
 * a well-behaved peer all along.
 *
 *   p1  rogue TCP publisher   -> muon subscriber (also fed by a real pub)
 *   p2  rogue TCP subscriber  -> muon publisher (also feeding a real sub)
 *   p3  rogue shm publisher   -> muon subscriber (also fed by a real pub)
 *   p4  rogue shm subscriber  -> muon publisher (also feeding a real sub)
 *
 * Every wait polls all contexts in a loop with a deadline; nothing blocks.
 * Cases that can kill the process (SIGBUS through a shrunk ring file) run
 * in a forked child. Run the sanitizer build for out-of-bounds detection.
 *
 *   muon-unit-rogue [cmocka filter]     e.g. 'p3_*'
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "unit_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/muoni.h"
#include "transport/shm/shm.h"

/* Context ids are fixed so that the connection de-duplication takes the
 * same branch every run: SUB_ID/GOOD_ID are below PUB_ID. */
#define SUB_ID 0x0000000000000100ull   /* subscriber facing a rogue pub */
#define GOOD_ID 0x0000000000000200ull  /* well-behaved subscriber */
#define PUB_ID 0x7000000000000001ull   /* real publisher */
#define ROGUE_ID 0x5000000000000005ull /* the test's rogue peer */

#define RING 65536u /* ut_ctx_config ring_size */
#define MAXMSG 1024u /* ut_ctx_config max_msg_size */
#define SLOT(l) (((l) + 63u) & ~63u)

/* ------------------------------------------------------------ failing */

static bool g_child; /* in a forked child: no cmocka, exit instead */

#define FAIL(...)                                                          \
	do {                                                               \
		if (g_child) {                                             \
			fprintf(stderr, "[child] " __VA_ARGS__);           \
			fputc('\n', stderr);                               \
			_exit(3);                                          \
		}                                                          \
		fail_msg(__VA_ARGS__);                                     \
	} while (0)
#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond))                                               \
			FAIL(__VA_ARGS__);                                 \
	} while (0)

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------ logging */

struct logcap {
	const char *name;
	char buf[32768];
	size_t len;
};

static struct logcap LOG_P, LOG_S;

static void cap_log(void *arg, muon_log_level_t lvl, const char *m)
{
	struct logcap *lc = arg;
	size_t n = strlen(m);

	if (lvl <= MUON_LOG_WARN || getenv("MUON_UNIT_DEBUG"))
		fprintf(stderr, "  [%s L%d] %s\n", lc->name, (int)lvl, m);
	if (lc->len + n + 2 > sizeof(lc->buf))
		lc->len = 0;
	memcpy(lc->buf + lc->len, m, n);
	lc->len += n;
	lc->buf[lc->len++] = '\n';
	lc->buf[lc->len] = '\0';
}

static void log_reset(struct logcap *lc)
{
	lc->len = 0;
	lc->buf[0] = '\0';
}

/* ------------------------------------------------------------ world */

static struct {
	muon_ctx_t *ctx[4];
	unsigned n_ctx;
	/* the real publication, published from every poll loop */
	muon_pub_t *pump;
	bool pump_on;
	uint64_t pump_next_us;
	unsigned pump_interval_us, pump_burst;
	size_t len_hi;
	uint64_t accepted, bp;
	unsigned ev_slow_drop, ev_bp;
	uint64_t max_poll_us;
	int fds[32];
	unsigned n_fds;
	int fd_count0;
	unsigned name_seq;
} W;

static void track(int fd)
{
	CHECK(fd >= 0 && W.n_fds < 32, "fd table");
	W.fds[W.n_fds++] = fd;
}

static void xclose(int *fd)
{
	unsigned i;

	if (*fd < 0)
		return;
	for (i = 0; i < W.n_fds; i++)
		if (W.fds[i] == *fd) {
			W.fds[i] = W.fds[--W.n_fds];
			break;
		}
	close(*fd);
	*fd = -1;
}

static void pump(void)
{
	static uint8_t buf[MAXMSG];
	uint64_t now;
	unsigned i;

	if (!W.pump || !W.pump_on)
		return;
	now = now_us();
	if (now < W.pump_next_us)
		return;
	W.pump_next_us = now + W.pump_interval_us;
	for (i = 0; i < W.pump_burst; i++) {
		uint64_t seq = W.accepted + 1;
		size_t len = ut_len_for(seq, 0, W.len_hi);
		int64_t rc;

		ut_fill(buf, len, seq);
		rc = muon_publish(W.pump, buf, len);
		if (rc == (int64_t)seq) {
			W.accepted = seq;
		} else if (rc == MUON_EBACKPRESSURE) {
			W.bp++;
			break;
		} else {
			FAIL("publish of seq %llu returned %lld (%s): %s",
			     (unsigned long long)seq, (long long)rc,
			     muon_strerror((int)rc), muon_errmsg());
		}
	}
}

static void world_poll(void)
{
	unsigned i;

	for (i = 0; i < W.n_ctx; i++) {
		uint64_t t0 = now_us(), dt;
		int rc = muon_ctx_poll(W.ctx[i], 0);

		dt = now_us() - t0;
		if (dt > W.max_poll_us)
			W.max_poll_us = dt;
		CHECK(rc >= 0, "muon_ctx_poll: %s: %s", muon_strerror(rc),
		      muon_errmsg());
	}
	pump();
}

static void poll_for(unsigned ms)
{
	uint64_t dl = now_us() + (uint64_t)ms * 1000u;

	while (now_us() < dl)
		world_poll();
}

#define WAIT_UNTIL(ms, cond, ...)                                          \
	do {                                                               \
		uint64_t dl_ = now_us() + (uint64_t)(ms) * 1000u;          \
		while (!(cond)) {                                          \
			if (now_us() > dl_)                                \
				FAIL(__VA_ARGS__);                         \
			world_poll();                                      \
		}                                                          \
	} while (0)

static muon_counters_t ctrs(muon_ctx_t *ctx)
{
	muon_counters_t c;

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	CHECK(muon_ctx_counters(ctx, &c) == 0, "counters");
	return c;
}

static muon_ctx_t *mk_ctx(const char *name, uint64_t id, const char *listen,
			  const char *peers, struct logcap *lc)
{
	muon_ctx_config_t c;
	muon_ctx_t *ctx = NULL;
	int rc;

	ut_ctx_config(&c, name);
	c.ctx_id = id;
	c.listen = listen;
	c.peers = peers;
	c.reconnect_ms = 10;
	c.heartbeat_ms = 100;
	c.peer_timeout_ms = 1000;
	c.log_level = MUON_LOG_INFO;
	c.log_fn = cap_log;
	c.log_arg = lc;
	lc->name = name;
	rc = muon_ctx_create(&c, &ctx);
	CHECK(rc == 0, "context %s: %s: %s", name, muon_strerror(rc),
	      muon_errmsg());
	CHECK(W.n_ctx < 4, "too many contexts");
	W.ctx[W.n_ctx++] = ctx;
	return ctx;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own */
}

/* Ring files of process `pid` left in /dev/shm. */
static int count_rings(int pid, bool unlink_them)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	char prefix[64], path[512];
	int n = 0;

	if (!d)
		return 0;
	snprintf(prefix, sizeof(prefix), "muon-%d-", pid);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			n++;
			if (unlink_them) {
				snprintf(path, sizeof(path), "/dev/shm/%s",
					 e->d_name);
				unlink(path);
			}
		}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------ receiver */

#define ROGUE_LOG_MAX 4096

static struct {
	uint64_t real_id;
	uint64_t real_expect, real_n;
	unsigned real_errors, real_loss, real_up, real_down;
	int real_down_reason;
	uint64_t rogue_n;
	unsigned n_rogue;
	struct {
		uint32_t sid;
		uint64_t seq;
	} rogue[ROGUE_LOG_MAX];
	unsigned rogue_dups, rogue_payload_errors;
	unsigned rogue_up, rogue_down, rogue_loss;
	int rogue_down_reason;
	uint64_t rogue_loss_from, rogue_loss_to;
} RX;

static void rx_msg(void *arg, const muon_msg_t *m)
{
	unsigned i;

	(void)arg;
	if (m->publisher_id == RX.real_id) {
		size_t want = ut_len_for(m->seq, 0, W.len_hi);

		RX.real_n++;
		if (m->seq != RX.real_expect || m->len != want ||
		    ut_check(m->data, m->len, m->seq) || !m->topic ||
		    strcmp(m->topic, "t")) {
			if (!RX.real_errors)
				fprintf(stderr, "real stream: seq %llu "
					"(expected %llu), len %zu (want %zu)\n",
					(unsigned long long)m->seq,
					(unsigned long long)RX.real_expect,
					m->len, want);
			RX.real_errors++;
		}
		RX.real_expect = m->seq + 1;
		return;
	}
	RX.rogue_n++;
	for (i = 0; i < RX.n_rogue; i++)
		if (RX.rogue[i].sid == m->stream_id &&
		    RX.rogue[i].seq == m->seq) {
			fprintf(stderr, "rogue stream %u: seq %llu delivered "
				"twice\n", m->stream_id,
				(unsigned long long)m->seq);
			RX.rogue_dups++;
		}
	if (RX.n_rogue < ROGUE_LOG_MAX) {
		RX.rogue[RX.n_rogue].sid = m->stream_id;
		RX.rogue[RX.n_rogue].seq = m->seq;
		RX.n_rogue++;
	}
	if (ut_check(m->data, m->len, m->seq))
		RX.rogue_payload_errors++;
}

static void rx_event(void *arg, const muon_event_t *ev)
{
	bool real = ev->publisher_id == RX.real_id;

	(void)arg;
	switch (ev->type) {
	case MUON_EVENT_LOSS:
		if (real) {
			RX.real_loss++;
			RX.real_expect = ev->to_seq + 1;
		} else {
			RX.rogue_loss++;
			RX.rogue_loss_from = ev->from_seq;
			RX.rogue_loss_to = ev->to_seq;
		}
		break;
	case MUON_EVENT_IMAGE_UP:
		if (real)
			RX.real_up++;
		else
			RX.rogue_up++;
		break;
	case MUON_EVENT_IMAGE_DOWN:
		if (real) {
			RX.real_down++;
			RX.real_down_reason = ev->reason;
		} else {
			RX.rogue_down++;
			RX.rogue_down_reason = ev->reason;
		}
		break;
	default:
		break;
	}
}

static unsigned rogue_count(uint32_t sid, uint64_t seq)
{
	unsigned i, n = 0;

	for (i = 0; i < RX.n_rogue; i++)
		if (RX.rogue[i].sid == sid && RX.rogue[i].seq == seq)
			n++;
	return n;
}

static void pub_event(void *arg, const muon_event_t *ev)
{
	(void)arg;
	if (ev->type == MUON_EVENT_SLOW_DROP)
		W.ev_slow_drop++;
	else if (ev->type == MUON_EVENT_BACKPRESSURE)
		W.ev_bp++;
}

/* ------------------------------------------------------------ fixture */

struct rring {
	int fd;            /* the ring file */
	uint8_t *map;
	size_t map_len;
	struct muoni_shm_ring_hdr *hdr;
	uint8_t *ring;
	uint64_t cap;
	uint64_t pos;      /* p3: our write position; p4: our read position */
	char path[512];
	uint64_t seq;      /* p3: next DATA seq of the current stream */
	uint32_t sid;
};

static struct {
	muon_ctx_t *pc; /* publisher context */
	muon_ctx_t *sc; /* subscriber context */
	muon_pub_t *pub;
	muon_sub_t *sub;
	char pub_ep[128];
	char rogue_ep[256];
	char rogue_name[80];
	int lfd;
	uint16_t port;
	uint32_t next_sid;
	struct rring rr;
} F;

static void rr_close(struct rring *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	r->map = NULL;
	xclose(&r->fd);
}

static int setup(void **state)
{
	(void)state;
	memset(&W, 0, sizeof(W));
	memset(&F, 0, sizeof(F));
	memset(&RX, 0, sizeof(RX));
	F.lfd = -1;
	F.rr.fd = -1;
	F.next_sid = 100;
	RX.real_expect = 1;
	W.len_hi = 200;
	W.pump_interval_us = 100;
	W.pump_burst = 1;
	log_reset(&LOG_P);
	log_reset(&LOG_S);
	W.fd_count0 = count_fds();
	return 0;
}

static int teardown(void **state)
{
	int n;

	(void)state;
	W.pump_on = false;
	while (W.n_ctx)
		muon_ctx_destroy(W.ctx[--W.n_ctx]);
	rr_close(&F.rr);
	while (W.n_fds)
		xclose(&W.fds[W.n_fds - 1]);
	F.lfd = -1;
	n = count_fds();
	if (n != W.fd_count0) {
		fprintf(stderr, "fd leak: %d open before the test, %d after\n",
			W.fd_count0, n);
		return -1;
	}
	if (count_rings((int)getpid(), false)) {
		fprintf(stderr, "ring files of this process left in "
			"/dev/shm\n");
		count_rings((int)getpid(), true);
		return -1;
	}
	return 0;
}

static void sub_open(muon_ctx_t *ctx, uint64_t real_id)
{
	muon_sub_config_t sc;

	RX.real_id = real_id;
	muon_sub_config_init(&sc);
	sc.msg_fn = rx_msg;
	sc.event_fn = rx_event;
	sc.start = MUON_START_EARLIEST;
	CHECK(muon_sub_create(ctx, "t", &sc, &F.sub) == 0, "sub: %s",
	      muon_errmsg());
}

static void pub_open(muon_ctx_t *ctx, int policy, uint32_t log_size,
		     uint32_t slow_ms)
{
	muon_pub_config_t pc;

	muon_pub_config_init(&pc);
	pc.slow_policy = policy;
	pc.send_log_size = log_size;
	if (slow_ms)
		pc.slow_timeout_ms = slow_ms;
	pc.event_fn = pub_event;
	CHECK(muon_pub_create(ctx, "t", &pc, &F.pub) == 0, "pub: %s",
	      muon_errmsg());
	W.pump = F.pub;
}

static void real_up_and_pump(void)
{
	WAIT_UNTIL(3000, RX.real_up >= 1 && muon_pub_subscribers(F.pub) >= 1,
		   "the real stream never came up");
	W.pump_on = true;
	W.pump_next_us = 0;
}

/* End of every test: the real stream delivered everything accepted, in
 * order, once, with no loss, and the rogue streams had no duplicate. */
static void finish_ok(void)
{
	W.pump_on = false;
	WAIT_UNTIL(4000, RX.real_expect == W.accepted + 1,
		   "real stream: %llu of %llu accepted messages delivered "
		   "(next expected %llu)", (unsigned long long)RX.real_n,
		   (unsigned long long)W.accepted,
		   (unsigned long long)RX.real_expect);
	CHECK(RX.real_errors == 0, "real stream: %u order/payload errors",
	      RX.real_errors);
	CHECK(RX.real_loss == 0, "real stream: %u LOSS events", RX.real_loss);
	CHECK(RX.real_n == W.accepted, "real stream: %llu delivered, %llu "
	      "accepted", (unsigned long long)RX.real_n,
	      (unsigned long long)W.accepted);
	CHECK(RX.rogue_dups == 0, "a rogue message was delivered twice");
	CHECK(RX.rogue_payload_errors == 0, "rogue payload corrupted");
	CHECK(W.accepted > 0, "the real publication published nothing");
}

/* ------------------------------------------------------------ raw i/o */

static bool would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* 0, -1 closed or error, -2 timeout. */
static int read_exact(int fd, void *p, size_t n, unsigned ms)
{
	uint64_t dl = now_us() + (uint64_t)ms * 1000u;
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (uint8_t *)p + got, n - got,
				 MSG_DONTWAIT);

		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0 || !would_block())
			return -1;
		if (now_us() > dl)
			return -2;
		world_poll();
	}
	return 0;
}

/* Send everything, polling while the socket is full; false if the peer
 * closed or the deadline passed. */
static bool send_all(int fd, const void *p, size_t n)
{
	uint64_t dl = now_us() + 3000000u;
	size_t off = 0;

	while (off < n) {
		ssize_t r = send(fd, (const uint8_t *)p + off, n - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r < 0 && !would_block())
			return false;
		if (now_us() > dl)
			return false;
		world_poll();
	}
	return true;
}

/* Wait for the muon side to close: EOF or reset. Data is discarded. */
static bool wait_closed(int fd, unsigned ms)
{
	uint64_t dl = now_us() + (uint64_t)ms * 1000u;
	static uint8_t scratch[65536];

	for (;;) {
		ssize_t r = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		if (r == 0)
			return true;
		if (r < 0 && !would_block())
			return true;
		if (r > 0)
			continue;
		if (now_us() > dl)
			return false;
		world_poll();
	}
}

/* Still connected: reads and discards whatever muon sent. */
static bool still_open(int fd)
{
	static uint8_t scratch[65536];

	for (;;) {
		ssize_t r = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		if (r > 0)
			continue;
		return r < 0 && would_block();
	}
}

/* One TCP frame: returns its type, -1 closed, -2 timeout. */
static int tcp_read_frame(int fd, uint8_t *buf, size_t cap, uint32_t *len)
{
	struct muoni_frame_hdr h;
	int rc = read_exact(fd, buf, MUONI_FRAME_HDR_LEN, 1500);

	if (rc)
		return rc;
	memcpy(&h, buf, sizeof(h));
	CHECK(h.len >= MUONI_FRAME_HDR_LEN && muoni_align8(h.len) <= cap,
	      "muon sent a frame of %u bytes", h.len);
	rc = read_exact(fd, buf + MUONI_FRAME_HDR_LEN,
			muoni_align8(h.len) - MUONI_FRAME_HDR_LEN, 1500);
	if (rc)
		return rc;
	*len = h.len;
	return h.type;
}

/* Next frame of `type`, skipping heartbeats. */
static int tcp_expect(int fd, int type, uint8_t *buf, size_t cap,
		      uint32_t *len)
{
	for (;;) {
		int t = tcp_read_frame(fd, buf, cap, len);

		if (t < 0)
			return t;
		if (t == type)
			return t;
		CHECK(t == MUONI_FT_HEARTBEAT, "expected frame type %d, muon "
		      "sent %d", type, t);
	}
}

static size_t enc_hello(uint8_t *buf, uint64_t id, uint32_t version)
{
	struct muoni_hello h;

	memset(&h, 0, sizeof(h));
	h.version = version;
	h.ctx_id = id;
	snprintf(h.name, sizeof(h.name), "rogue");
	return muoni_enc_hello(buf, 128, &h);
}

static size_t enc_data(uint8_t *buf, uint32_t sid, uint64_t seq,
		       uint32_t plen)
{
	struct muoni_frame_hdr h;
	uint32_t len = MUONI_FRAME_HDR_LEN + plen;

	muoni_frame_hdr_init(&h, MUONI_FT_DATA, len, sid, seq);
	memcpy(buf, &h, sizeof(h));
	ut_fill(buf + MUONI_FRAME_HDR_LEN, plen, seq);
	memset(buf + len, 0, muoni_align8(len) - len);
	return muoni_align8(len);
}

static size_t enc_sinfo(uint8_t *buf, uint32_t sid, uint64_t first,
			uint64_t pub_id)
{
	return muoni_enc_stream_info(buf, 512, sid, first, pub_id, 0, "t", 1);
}

static size_t enc_hdr(uint8_t *buf, uint16_t type, uint32_t len,
		      uint32_t sid, uint64_t seq)
{
	struct muoni_frame_hdr h;

	muoni_frame_hdr_init(&h, type, len, sid, seq);
	memcpy(buf, &h, sizeof(h));
	return sizeof(h);
}

/* ------------------------------------------------------------ tcp raw */

static int tcp_listen_raw(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0, "socket: %s", strerror(errno));
	track(fd);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(!bind(fd, (struct sockaddr *)&a, sizeof(a)), "bind: %s",
	      strerror(errno));
	CHECK(!listen(fd, 64), "listen: %s", strerror(errno));
	CHECK(!getsockname(fd, (struct sockaddr *)&a, &al), "getsockname");
	*port = ntohs(a.sin_port);
	return fd;
}

static int tcp_connect_raw(const char *ep, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	unsigned port = 0;
	int fd, one = 1;

	CHECK(sscanf(ep, "tcp://127.0.0.1:%u", &port) == 1, "endpoint %s",
	      ep);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0, "socket: %s", strerror(errno));
	track(fd);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	/* Loopback to a listening socket completes without an accept. */
	CHECK(!connect(fd, (struct sockaddr *)&a, sizeof(a)), "connect %s: %s",
	      ep, strerror(errno));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* ------------------------------------------------------------ shm raw */

static socklen_t shm_sockaddr(const char *name, struct sockaddr_un *a)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "muon-shm/%s",
		     name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)n);
}

static int shm_listen_raw(const char *name)
{
	struct sockaddr_un a;
	socklen_t al = shm_sockaddr(name, &a);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);

	CHECK(fd >= 0, "socket: %s", strerror(errno));
	track(fd);
	CHECK(!bind(fd, (struct sockaddr *)&a, al), "bind %s: %s", name,
	      strerror(errno));
	CHECK(!listen(fd, 64), "listen");
	return fd;
}

static int shm_connect_raw(const char *name)
{
	struct sockaddr_un a;
	socklen_t al = shm_sockaddr(name, &a);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);

	CHECK(fd >= 0, "socket: %s", strerror(errno));
	track(fd);
	CHECK(!connect(fd, (struct sockaddr *)&a, al), "connect %s: %s", name,
	      strerror(errno));
	return fd;
}

/* One packet; fds received go to fds[] (closed if fds is NULL). Returns
 * its length, 0 at EOF, -1 error, -2 timeout. */
static ssize_t pkt_recv(int fd, void *buf, size_t cap, int *fds, int *nfds,
			unsigned ms)
{
	uint64_t dl = now_us() + (uint64_t)ms * 1000u;

	if (nfds)
		*nfds = 0;
	for (;;) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(8 * sizeof(int))];
		} cm;
		struct iovec iov = {.iov_base = buf, .iov_len = cap};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cm.b,
				     .msg_controllen = sizeof(cm.b)};
		struct cmsghdr *c;
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && would_block()) {
			if (now_us() > dl)
				return -2;
			world_poll();
			continue;
		}
		if (n < 0)
			return -1;
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			size_t k, nf;

			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS)
				continue;
			nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (k = 0; k < nf; k++) {
				int f;

				memcpy(&f, CMSG_DATA(c) + k * sizeof(int),
				       sizeof(int));
				if (fds && nfds && *nfds < 4)
					fds[(*nfds)++] = f;
				else
					close(f);
			}
		}
		return n;
	}
}

static bool pkt_send(int fd, const void *p, size_t n, const int *fds,
		     int nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} cm;
	struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	uint64_t dl = now_us() + 2000000u;

	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.b;
		msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	for (;;) {
		ssize_t r = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r == (ssize_t)n)
			return true;
		if (r >= 0 || !would_block() || now_us() > dl)
			return false;
		world_poll();
	}
}

/* Next control packet of `type`, skipping wake-up bytes and heartbeats;
 * fds attached to it go to *fd (-1 if none). Returns its length or < 0. */
static ssize_t pkt_expect(int s, int type, uint8_t *buf, size_t cap, int *fd)
{
	for (;;) {
		int fds[4], nfds = 0, i;
		struct muoni_frame_hdr h;
		ssize_t n = pkt_recv(s, buf, cap, fds, &nfds, 1500);

		if (fd)
			*fd = -1;
		if (n <= 0) {
			for (i = 0; i < nfds; i++)
				close(fds[i]);
			return n < 0 ? n : -1;
		}
		for (i = 0; i < nfds; i++) {
			if (fd && i == 0)
				*fd = fds[0];
			else
				close(fds[i]);
		}
		if (n == 1)
			continue;
		CHECK(n >= (ssize_t)MUONI_FRAME_HDR_LEN, "short packet");
		memcpy(&h, buf, sizeof(h));
		if (h.type == type)
			return n;
		CHECK(h.type == MUONI_FT_HEARTBEAT, "expected control frame "
		      "%d, muon sent %u", type, h.type);
		if (fd && *fd >= 0)
			close(*fd);
	}
}

static void unique_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "rogue-%d-%s-%u", (int)getpid(), tag,
		 ++W.name_seq);
}

/* ------------------------------------------------------------ rings */

static void rr_map(struct rring *r, int fd)
{
	struct stat st;
	void *m;

	CHECK(!fstat(fd, &st), "fstat ring");
	r->fd = fd;
	r->map_len = (size_t)st.st_size;
	m = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap ring: %s", strerror(errno));
	r->map = m;
	r->hdr = m;
	r->ring = (uint8_t *)m + MUONI_SHM_HDR_SIZE;
	r->cap = r->hdr->ring_size;
	r->pos = 0;
	CHECK(r->map_len == MUONI_SHM_HDR_SIZE + r->cap + MUONI_SHM_SLACK,
	      "ring file of %zu bytes for ring %llu", r->map_len,
	      (unsigned long long)r->cap);
}

/* A ring file as a subscriber would make it (memfd: nothing on disk). */
static int mk_ring_fd(uint64_t ring_size, uint64_t file_size, uint64_t magic,
		      uint32_t version)
{
	struct muoni_shm_ring_hdr h;
	int fd = memfd_create("rogue-ring", MFD_CLOEXEC);
	size_t n = sizeof(h);

	CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	track(fd);
	CHECK(!ftruncate(fd, (off_t)file_size), "ftruncate: %s",
	      strerror(errno));
	memset(&h, 0, sizeof(h));
	h.magic = magic;
	h.version = version;
	h.hdr_size = MUONI_SHM_HDR_SIZE;
	h.ring_size = ring_size;
	h.owner_ctx_id = ROGUE_ID;
	h.owner_pid = (int32_t)getpid();
	if (n > file_size)
		n = (size_t)file_size;
	CHECK(pwrite(fd, &h, n, 0) == (ssize_t)n, "pwrite ring header");
	return fd;
}

static int mk_good_ring_fd(void)
{
	return mk_ring_fd(RING, MUONI_SHM_HDR_SIZE + RING + MUONI_SHM_SLACK,
			  MUONI_SHM_MAGIC, MUONI_SHM_VERSION);
}

static uint64_t rr_consumed(struct rring *r)
{
	return __atomic_load_n(&r->hdr->consumed, __ATOMIC_ACQUIRE);
}

/* Write one frame at the write position as a publisher would: bytes
 * 8..32 of the header, up to `plen` payload bytes (never past the ring's
 * slack), then the commit word, release store last. */
static void rr_put(struct rring *r, uint16_t type, uint32_t len, uint32_t sid,
		   uint64_t seq, uint32_t plen, uint64_t commit)
{
	uint64_t off = r->pos & (r->cap - 1);
	uint8_t *f = r->ring + off;
	uint64_t room = r->cap - off + MUONI_SHM_SLACK - MUONI_FRAME_HDR_LEN;
	struct muoni_frame_hdr h;

	muoni_frame_hdr_init(&h, type, len, sid, seq);
	memcpy(f + 8, (const uint8_t *)&h + 8, MUONI_FRAME_HDR_LEN - 8);
	if (plen > room)
		plen = (uint32_t)room;
	ut_fill(f + MUONI_FRAME_HDR_LEN, plen, seq);
	__atomic_store_n((uint64_t *)(void *)f, commit, __ATOMIC_RELEASE);
}

static void rr_wait_room(struct rring *r, uint64_t need)
{
	WAIT_UNTIL(2000, r->pos + need - rr_consumed(r) <= r->cap,
		   "subscriber does not consume its ring (pos %llu, consumed "
		   "%llu)", (unsigned long long)r->pos,
		   (unsigned long long)rr_consumed(r));
}

/* A well-formed frame with a payload copied from `payload` (or filled). */
static void rr_frame(struct rring *r, const uint8_t *frame, size_t flen)
{
	struct muoni_frame_hdr h;
	uint64_t off = r->pos & (r->cap - 1);
	uint32_t slot;

	memcpy(&h, frame, sizeof(h));
	slot = SLOT(h.len);
	if (off + slot > r->cap) {
		rr_wait_room(r, r->cap - off + slot);
		rr_put(r, MUONI_FT_PAD, (uint32_t)(r->cap - off), 0, 0, 0,
		       r->pos | 1);
		r->pos += r->cap - off;
		off = 0;
	} else {
		rr_wait_room(r, slot);
	}
	memcpy(r->ring + off + 8, frame + 8, flen - 8);
	__atomic_store_n((uint64_t *)(void *)(r->ring + off), r->pos | 1,
			 __ATOMIC_RELEASE);
	r->pos += slot;
}

static void rr_data(struct rring *r, uint32_t sid, uint64_t seq, uint32_t plen)
{
	static uint8_t buf[MAXMSG + 64];

	rr_frame(r, buf, enc_data(buf, sid, seq, plen));
}

/* Valid DATA frames of the current stream until the write offset is
 * `target` (a multiple of 64; 0 = the end of the ring), then wait until
 * the subscriber consumed them all. */
static void rr_fill_to(struct rring *r, uint64_t target)
{
	while ((r->pos & (r->cap - 1)) != target) {
		uint64_t off = r->pos & (r->cap - 1);
		uint64_t rem = (target > off ? target : r->cap) - off;
		uint64_t slot = rem > 1024 ? 1024 : rem;

		rr_data(r, r->sid, r->seq++, (uint32_t)slot - 32);
	}
	WAIT_UNTIL(2000, rr_consumed(r) == r->pos, "ring not consumed");
}

/* Read the frames muon wrote into our ring and hand the space back. */
static unsigned rr_consume(struct rring *r)
{
	unsigned n = 0;

	for (;;) {
		uint64_t off = r->pos & (r->cap - 1);
		uint8_t *f = r->ring + off;
		struct muoni_frame_hdr h;

		if (__atomic_load_n((uint64_t *)(void *)f, __ATOMIC_ACQUIRE) !=
		    (r->pos | 1))
			break;
		memcpy(&h, f, sizeof(h));
		if (h.type == MUONI_FT_PAD) {
			CHECK(h.len == r->cap - off, "muon wrote a bad PAD");
			r->pos += r->cap - off;
			continue;
		}
		CHECK(h.len >= 32 && SLOT(h.len) <= r->cap - off,
		      "muon wrote a bad frame");
		r->pos += SLOT(h.len);
		n++;
	}
	__atomic_store_n(&r->hdr->consumed, r->pos, __ATOMIC_RELEASE);
	return n;
}

/* ======================================================================
 * p1: rogue TCP publisher
 * ==================================================================== */

static void p1_open(void)
{
	char peers[512];

	F.lfd = tcp_listen_raw(&F.port);
	snprintf(F.rogue_ep, sizeof(F.rogue_ep), "tcp://127.0.0.1:%u",
		 F.port);
	F.pc = mk_ctx("real-pub", PUB_ID, "tcp://127.0.0.1:0", NULL, &LOG_P);
	CHECK(!muon_ctx_listen_endpoint(F.pc, 0, F.pub_ep, sizeof(F.pub_ep)),
	      "endpoint");
	pub_open(F.pc, MUON_SLOW_BACKPRESSURE, 0, 0);
	snprintf(peers, sizeof(peers), "%s,%s", F.rogue_ep, F.pub_ep);
	F.sc = mk_ctx("sub", SUB_ID, NULL, peers, &LOG_S);
	sub_open(F.sc, PUB_ID);
	real_up_and_pump();
}

/* Accept the subscriber, trade HELLOs, read its SUBSCRIBE. Connections
 * that time out in the handshake while nobody accepted them are skipped. */
static int p1_session(uint64_t hello_id)
{
	static uint8_t buf[4096];
	uint64_t dl = now_us() + 3000000u;

	for (;;) {
		struct muoni_hello h;
		struct muoni_subscribe sub;
		uint32_t len;
		int fd;

		CHECK(now_us() < dl, "rogue publisher: the subscriber never "
		      "completed a handshake");
		fd = accept4(F.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			world_poll();
			continue;
		}
		track(fd);
		if (tcp_expect(fd, MUONI_FT_HELLO, buf, sizeof(buf), &len) < 0) {
			xclose(&fd);
			continue;
		}
		CHECK(!muoni_dec_hello(buf + 32, len - 32, &h), "HELLO");
		CHECK(h.version == MUONI_PROTO_VERSION && h.ctx_id == SUB_ID,
		      "subscriber HELLO: version %u id %llx", h.version,
		      (unsigned long long)h.ctx_id);
		if (!send_all(fd, buf, enc_hello(buf, hello_id,
						 MUONI_PROTO_VERSION))) {
			xclose(&fd);
			continue;
		}
		if (hello_id == PUB_ID)
			return fd; /* impersonation: the caller looks */
		if (tcp_expect(fd, MUONI_FT_SUBSCRIBE, buf, sizeof(buf),
			       &len) < 0) {
			xclose(&fd);
			continue;
		}
		CHECK(!muoni_dec_subscribe(buf + 32, len - 32, &sub) &&
		      !strcmp(sub.topic, "t"), "subscriber SUBSCRIBE");
		return fd;
	}
}

/* STREAM_INFO for `sid` from seq 1, DATA 1..n, all delivered. */
static void p1_stream(int fd, uint32_t sid, unsigned n)
{
	static uint8_t buf[4096];
	uint64_t n0 = RX.rogue_n;
	unsigned up0 = RX.rogue_up, i;
	size_t len = enc_sinfo(buf, sid, 1, ROGUE_ID);

	for (i = 1; i <= n; i++)
		len += enc_data(buf + len, sid, i, 24 + i);
	CHECK(send_all(fd, buf, len), "send stream");
	WAIT_UNTIL(2000, RX.rogue_up > up0 && RX.rogue_n == n0 + n,
		   "rogue stream %u: %llu of %u messages delivered", sid,
		   (unsigned long long)(RX.rogue_n - n0), n);
}

/* After the rogue was cut: the subscriber reconnects and a fresh stream
 * from the same (now well-behaved) peer is delivered. */
static void p1_recover(void)
{
	unsigned down0;
	int fd = p1_session(ROGUE_ID);

	p1_stream(fd, F.next_sid++, 3);
	down0 = RX.rogue_down;
	xclose(&fd);
	WAIT_UNTIL(2000, RX.rogue_down > down0, "no IMAGE_DOWN after close");
	CHECK(RX.rogue_down_reason == MUON_DOWN_DISCONNECTED,
	      "clean close reported as reason %d", RX.rogue_down_reason);
}

enum p1_bad {
	B_LEN16, B_LEN0, B_LEN_FFFFFFFF, B_LEN_FFFFFFF0, B_TYPE0, B_TYPE11,
	B_TYPE_FFFF, B_DATA_UNKNOWN, B_DATA_BIG, B_DATA_BIG_HDR,
	B_SI_TOPIC_PAST, B_SI_TOPIC0, B_SI_NUL, B_SI_PUB, B_SI_SID0,
	B_SI_SHORT, B_LOSS_UNKNOWN, B_LOSS_START, B_LOSS_BACK, B_LOSS_SHORT,
	B_END_UNKNOWN, B_PAD, B_HELLO_AGAIN, B_CLOSE_SHORT, B_GARBAGE1,
	B_GARBAGE2, B_GARBAGE3, B_BIG_PAD,
};

/* The bad bytes, sent after stream 1 delivered seqs 1 and 2. */
static size_t p1_build(int kind, uint8_t *buf, size_t cap)
{
	size_t n;
	uint64_t s;

	switch (kind) {
	case B_LEN16:
		return enc_hdr(buf, MUONI_FT_DATA, 16, 1, 3);
	case B_LEN0:
		return enc_hdr(buf, MUONI_FT_HEARTBEAT, 0, 0, 0);
	case B_LEN_FFFFFFFF:
		return enc_hdr(buf, MUONI_FT_DATA, 0xffffffffu, 1, 3);
	case B_LEN_FFFFFFF0:
		return enc_hdr(buf, MUONI_FT_STREAM_INFO, 0xfffffff0u, 2, 1);
	case B_TYPE0:
		return enc_hdr(buf, 0, 32, 1, 3);
	case B_TYPE11:
		return enc_hdr(buf, MUONI_FT_MAX_, 32, 1, 3);
	case B_TYPE_FFFF:
		return enc_hdr(buf, 0xffff, 32, 1, 3);
	case B_DATA_UNKNOWN:
		return enc_data(buf, 99, 1, 8);
	case B_DATA_BIG:
		return enc_data(buf, 1, 3, MAXMSG + 1);
	case B_DATA_BIG_HDR:
		return enc_hdr(buf, MUONI_FT_DATA, 32 + 100000, 1, 3);
	case B_SI_TOPIC_PAST:
		n = enc_sinfo(buf, 2, 1, ROGUE_ID);
		buf[32 + 16] = 200; /* topic_len 200 in an 8-byte topic */
		return n;
	case B_SI_TOPIC0:
		n = enc_sinfo(buf, 2, 1, ROGUE_ID);
		buf[32 + 16] = 0;
		return n;
	case B_SI_NUL:
		return muoni_enc_stream_info(buf, cap, 2, 1, ROGUE_ID, 0,
					     "a\0b", 3);
	case B_SI_PUB:
		return enc_sinfo(buf, 2, 1, ROGUE_ID + 1);
	case B_SI_SID0:
		return enc_sinfo(buf, 0, 1, ROGUE_ID);
	case B_SI_SHORT:
		n = enc_hdr(buf, MUONI_FT_STREAM_INFO, 40, 2, 1);
		memset(buf + n, 0, 8);
		return n + 8;
	case B_LOSS_UNKNOWN:
		return muoni_enc_loss(buf, cap, 99, 3, 4);
	case B_LOSS_START:
		return muoni_enc_loss(buf, cap, 1, 5, 9);
	case B_LOSS_BACK:
		return muoni_enc_loss(buf, cap, 1, 3, 2);
	case B_LOSS_SHORT:
		return enc_hdr(buf, MUONI_FT_LOSS, 32, 1, 3);
	case B_END_UNKNOWN:
		return muoni_enc_simple(buf, cap, MUONI_FT_STREAM_END, 99, 1);
	case B_PAD:
		n = enc_hdr(buf, MUONI_FT_PAD, 64, 0, 0);
		memset(buf + n, 0, 32);
		return n + 32;
	case B_HELLO_AGAIN:
		return enc_hello(buf, ROGUE_ID, MUONI_PROTO_VERSION);
	case B_CLOSE_SHORT:
		return enc_hdr(buf, MUONI_FT_CLOSE, 32, 0, 0);
	case B_GARBAGE1:
	case B_GARBAGE2:
	case B_GARBAGE3:
		s = 0x9e3779b97f4a7c15ull * (uint64_t)(kind - B_GARBAGE1 + 1);
		for (n = 0; n < 4096; n += 8) {
			uint64_t v = ut_rand(&s);
			memcpy(buf + n, &v, 8);
		}
		return 4096;
	case B_BIG_PAD:
		/* A complete HEARTBEAT, then a PAD header whose length fits
		 * the receive buffer but not after the HEARTBEAT, then its
		 * body: a PAD is never valid in a stream, whatever its
		 * length. */
		n = muoni_enc_simple(buf, cap, MUONI_FT_HEARTBEAT, 0, 0);
		n += enc_hdr(buf + n, MUONI_FT_PAD,
			     65536 + 64 + 256 * 1024 - 16, 0, 0);
		CHECK(cap >= n + 330000, "buffer");
		memset(buf + n, 0, 330000);
		return n + 330000;
	}
	FAIL("bad kind %d", kind);
	return 0;
}

static void p1_fatal(const char *what, int kind, const char *kw)
{
	static uint8_t buf[400 * 1024];
	muon_counters_t c0, c1;
	unsigned down0;
	uint64_t n0;
	size_t n;
	int fd;

	p1_open();
	fd = p1_session(ROGUE_ID);
	p1_stream(fd, 1, 2);
	c0 = ctrs(F.sc);
	down0 = RX.rogue_down;
	n0 = RX.rogue_n;
	log_reset(&LOG_S);
	n = p1_build(kind, buf, sizeof(buf));
	send_all(fd, buf, n); /* may stop early: muon cut us */
	CHECK(wait_closed(fd, 2000), "%s: the subscriber kept the rogue "
	      "connection open", what);
	WAIT_UNTIL(2000, RX.rogue_down > down0, "%s: no IMAGE_DOWN for the "
		   "rogue stream", what);
	c1 = ctrs(F.sc);
	CHECK(RX.rogue_n == n0, "%s: the bad input delivered %llu messages",
	      what, (unsigned long long)(RX.rogue_n - n0));
	CHECK(c1.disconnects > c0.disconnects, "%s: disconnects did not move",
	      what);
	CHECK(RX.rogue_down_reason == MUON_DOWN_PROTOCOL &&
	      c1.proto_errors > c0.proto_errors,
	      "%s: IMAGE_DOWN reason %d (want %d, MUON_DOWN_PROTOCOL), "
	      "proto_errors %llu -> %llu; log:\n%s", what,
	      RX.rogue_down_reason, MUON_DOWN_PROTOCOL,
	      (unsigned long long)c0.proto_errors,
	      (unsigned long long)c1.proto_errors, LOG_S.buf);
	CHECK(!kw[0] || strstr(LOG_S.buf, kw), "%s: log does not say '%s':\n%s",
	      what, kw, LOG_S.buf);
	xclose(&fd);
	p1_recover();
	finish_ok();
}

#define P1_FATAL(name, kind, kw)                                           \
	static void test_p1_##name(void **state)                           \
	{                                                                  \
		(void)state;                                               \
		p1_fatal("p1 " #name, kind, kw);                           \
	}

P1_FATAL(len16, B_LEN16, "below header")
P1_FATAL(len0, B_LEN0, "below header")
P1_FATAL(len_ffffffff, B_LEN_FFFFFFFF, "runs past")
P1_FATAL(len_fffffff0, B_LEN_FFFFFFF0, "runs past")
P1_FATAL(type0, B_TYPE0, "unknown frame type 0")
P1_FATAL(type11, B_TYPE11, "unknown frame type 11")
P1_FATAL(type_ffff, B_TYPE_FFFF, "unknown frame type 65535")
P1_FATAL(data_unknown_stream, B_DATA_UNKNOWN, "data for unknown stream 99")
P1_FATAL(data_above_max, B_DATA_BIG, "above the limit")
P1_FATAL(data_above_max_header_only, B_DATA_BIG_HDR, "above the limit")
P1_FATAL(sinfo_topic_past_payload, B_SI_TOPIC_PAST, "STREAM_INFO")
P1_FATAL(sinfo_topic_len0, B_SI_TOPIC0, "topic length 0")
P1_FATAL(sinfo_nul_in_topic, B_SI_NUL, "NUL")
P1_FATAL(sinfo_wrong_publisher, B_SI_PUB, "names publisher")
P1_FATAL(sinfo_stream0, B_SI_SID0, "stream 0")
P1_FATAL(sinfo_short_payload, B_SI_SHORT, "STREAM_INFO payload too short")
P1_FATAL(loss_unknown_stream, B_LOSS_UNKNOWN, "LOSS for unknown stream")
P1_FATAL(loss_wrong_start, B_LOSS_START, "does not start at the expected 3")
P1_FATAL(loss_backwards, B_LOSS_BACK, "does not start")
P1_FATAL(loss_short_payload, B_LOSS_SHORT, "LOSS payload too short")
P1_FATAL(stream_end_unknown, B_END_UNKNOWN, "STREAM_END for unknown stream")
P1_FATAL(pad_in_stream, B_PAD, "PAD frame in a stream")
P1_FATAL(hello_twice, B_HELLO_AGAIN, "HELLO after handshake")
P1_FATAL(close_short_payload, B_CLOSE_SHORT, "CLOSE payload too short")
P1_FATAL(garbage1, B_GARBAGE1, "")
P1_FATAL(garbage2, B_GARBAGE2, "")
P1_FATAL(garbage3, B_GARBAGE3, "")
P1_FATAL(big_pad_in_stream, B_BIG_PAD, "PAD")

/* A frame cut short by the peer closing: nothing of it is delivered, the
 * image goes down as disconnected, the subscriber reconnects. */
static void test_p1_truncated_then_close(void **state)
{
	static uint8_t buf[4096];
	muon_counters_t c0, c1;
	unsigned down0;
	uint64_t n0;
	size_t n;
	int fd;

	(void)state;
	p1_open();
	fd = p1_session(ROGUE_ID);
	p1_stream(fd, 1, 2);
	c0 = ctrs(F.sc);
	down0 = RX.rogue_down;
	n0 = RX.rogue_n;
	n = enc_data(buf, 1, 3, 100);
	CHECK(send_all(fd, buf, n - 60), "send");
	poll_for(20);
	xclose(&fd);
	WAIT_UNTIL(2000, RX.rogue_down > down0, "no IMAGE_DOWN");
	c1 = ctrs(F.sc);
	CHECK(RX.rogue_n == n0, "a truncated frame was delivered");
	CHECK(c1.disconnects > c0.disconnects, "disconnects did not move");
	CHECK(RX.rogue_down_reason == MUON_DOWN_DISCONNECTED ||
	      RX.rogue_down_reason == MUON_DOWN_PROTOCOL,
	      "reason %d", RX.rogue_down_reason);
	p1_recover();
	finish_ok();
}

/* Duplicates are dropped (never delivered twice) and counted, a gap
 * without LOSS becomes a LOSS event, and the stream goes on. */
static void test_p1_dup_and_gap(void **state)
{
	static uint8_t buf[4096];
	muon_counters_t c0, c1;
	size_t n = 0;
	int fd;

	(void)state;
	p1_open();
	fd = p1_session(ROGUE_ID);
	p1_stream(fd, 1, 2);
	c0 = ctrs(F.sc);
	n += enc_data(buf + n, 1, 2, 26); /* dup of the last */
	n += enc_data(buf + n, 1, 1, 25); /* older */
	n += enc_data(buf + n, 1, 3, 27);
	n += enc_data(buf + n, 1, 3, 27); /* dup */
	n += enc_data(buf + n, 1, 6, 30); /* gap: 4, 5 */
	n += enc_data(buf + n, 1, 7, 31);
	CHECK(send_all(fd, buf, n), "send");
	WAIT_UNTIL(2000, rogue_count(1, 7) == 1, "seq 7 never delivered");
	poll_for(50);
	c1 = ctrs(F.sc);
	CHECK(rogue_count(1, 1) == 1 && rogue_count(1, 2) == 1 &&
	      rogue_count(1, 3) == 1 && rogue_count(1, 6) == 1,
	      "deliveries: 1:%u 2:%u 3:%u 6:%u", rogue_count(1, 1),
	      rogue_count(1, 2), rogue_count(1, 3), rogue_count(1, 6));
	CHECK(rogue_count(1, 4) == 0 && rogue_count(1, 5) == 0, "ghosts");
	CHECK(RX.rogue_loss == 1 && RX.rogue_loss_from == 4 &&
	      RX.rogue_loss_to == 5, "%u LOSS events, last [%llu, %llu]",
	      RX.rogue_loss, (unsigned long long)RX.rogue_loss_from,
	      (unsigned long long)RX.rogue_loss_to);
	CHECK(c1.losses == c0.losses + 1 && c1.msgs_lost == c0.msgs_lost + 2,
	      "loss counters %llu/%llu", (unsigned long long)c1.losses,
	      (unsigned long long)c1.msgs_lost);
	CHECK(c1.proto_errors > c0.proto_errors, "duplicates not counted");
	CHECK(still_open(fd) && RX.rogue_down == 0,
	      "duplicates or a gap closed the connection");
	xclose(&fd);
	finish_ok();
}

/* Sequence numbers start at 1 and never wrap; a peer that sends DATA with
 * seq 2^64-1, or LOSS up to 2^64-1, must not make an already delivered
 * sequence deliverable again. */
static void p1_wrap(bool via_loss)
{
	static uint8_t buf[4096];
	size_t n = 0;
	int fd;

	p1_open();
	fd = p1_session(ROGUE_ID);
	p1_stream(fd, 1, 2);
	if (via_loss)
		n += muoni_enc_loss(buf + n, sizeof(buf) - n, 1, 3,
				    UINT64_MAX);
	else
		n += enc_data(buf + n, 1, UINT64_MAX, 8);
	n += enc_data(buf + n, 1, 1, 25); /* replay of seq 1 */
	n += enc_data(buf + n, 1, 2, 26);
	CHECK(send_all(fd, buf, n), "send");
	poll_for(100);
	CHECK(rogue_count(1, 1) == 1 && rogue_count(1, 2) == 1,
	      "after %s up to 2^64-1, already delivered seq 1 was delivered "
	      "%u times and seq 2 %u times (core/conn.c: next_seq wraps to "
	      "0)", via_loss ? "LOSS" : "DATA", rogue_count(1, 1),
	      rogue_count(1, 2));
	xclose(&fd);
	RX.rogue_dups = 0;
	finish_ok();
}

static void test_p1_seq_wrap_data(void **state)
{
	(void)state;
	p1_wrap(false);
}

static void test_p1_seq_wrap_loss(void **state)
{
	(void)state;
	p1_wrap(true);
}

/* One byte of a header, then nothing: polls stay short, the real stream
 * keeps flowing, and the silent peer is timed out. */
static void test_p1_one_byte_stall(void **state)
{
	muon_counters_t c0, c1;
	uint64_t real0;
	unsigned down0;
	int fd;

	(void)state;
	p1_open();
	fd = p1_session(ROGUE_ID);
	p1_stream(fd, 1, 2);
	c0 = ctrs(F.sc);
	down0 = RX.rogue_down;
	CHECK(send_all(fd, "\x40", 1), "send");
	real0 = RX.real_n;
	W.max_poll_us = 0;
	poll_for(300);
	CHECK(W.max_poll_us < 100000, "a poll took %llu us",
	      (unsigned long long)W.max_poll_us);
	CHECK(RX.real_n > real0 + 100, "real stream stalled: %llu messages",
	      (unsigned long long)(RX.real_n - real0));
	CHECK(still_open(fd), "one byte closed the connection");
	CHECK(wait_closed(fd, 2500), "a silent peer was never timed out");
	WAIT_UNTIL(1000, RX.rogue_down > down0, "no IMAGE_DOWN");
	c1 = ctrs(F.sc);
	CHECK(c1.disconnects > c0.disconnects, "disconnects");
	CHECK(strstr(LOG_S.buf, "silent"), "log: %s", LOG_S.buf);
	xclose(&fd);
	finish_ok();
}

/* A rogue that claims, in its HELLO, to be the real publisher the
 * subscriber is already connected to must not take that publisher's
 * place: the real stream keeps flowing. */
static void test_p1_hello_impersonates_real_publisher(void **state)
{
	muon_counters_t c0, c1;
	uint64_t real0, real1;
	unsigned down;
	int fd, reason;
	bool alive;

	(void)state;
	p1_open();
	poll_for(20);
	c0 = ctrs(F.sc);
	fd = p1_session(PUB_ID);
	poll_for(100);
	real0 = RX.real_n;
	poll_for(300);
	c1 = ctrs(F.sc);
	real1 = RX.real_n;
	down = RX.real_down;
	reason = RX.real_down_reason;
	alive = still_open(fd);
	xclose(&fd);
	finish_ok(); /* once the rogue is gone: no loss either way */
	CHECK(!down && real1 > real0 + 100,
	      "a peer claiming the real publisher's ctx id in HELLO cut the "
	      "real connection (real IMAGE_DOWN %u, reason %d, disconnects "
	      "%llu -> %llu) and the real stream delivered %llu messages in "
	      "300 ms while the rogue stayed up (%d): core/conn.c conn_dedupe "
	      "trusts the unauthenticated id and marks the real peer "
	      "covered_by the rogue, so it is not reconnected", down, reason,
	      (unsigned long long)c0.disconnects,
	      (unsigned long long)c1.disconnects,
	      (unsigned long long)(real1 - real0), alive);
}

/* ======================================================================
 * p2: rogue TCP subscriber
 * ==================================================================== */

static void p2_open(int policy, uint32_t log_size, uint32_t slow_ms)
{
	F.pc = mk_ctx("pub", PUB_ID, "tcp://127.0.0.1:0", NULL, &LOG_P);
	CHECK(!muon_ctx_listen_endpoint(F.pc, 0, F.pub_ep, sizeof(F.pub_ep)),
	      "endpoint");
	pub_open(F.pc, policy, log_size, slow_ms);
	F.sc = mk_ctx("good-sub", GOOD_ID, NULL, F.pub_ep, &LOG_S);
	sub_open(F.sc, PUB_ID);
	real_up_and_pump();
}

/* HELLO from the rogue, the publisher's answer read. */
static int p2_hello(uint64_t id, int rcvbuf)
{
	static uint8_t buf[4096];
	uint32_t len;
	int fd = tcp_connect_raw(F.pub_ep, rcvbuf);

	CHECK(send_all(fd, buf, enc_hello(buf, id, MUONI_PROTO_VERSION)),
	      "send HELLO");
	if (!rcvbuf)
		CHECK(tcp_expect(fd, MUONI_FT_HELLO, buf, sizeof(buf), &len) ==
		      MUONI_FT_HELLO, "no HELLO from the publisher");
	return fd;
}

static size_t p2_subscribe(uint8_t *buf, uint8_t start, uint64_t start_seq)
{
	return muoni_enc_subscribe(buf, 1024, "t", 1, start, start_seq, NULL,
				   0);
}

enum p2_bad {
	S_GARBAGE, S_SUB_BEFORE_HELLO, S_DATA_BEFORE_HELLO, S_HELLO_VERSION,
	S_HELLO_SELF, S_HELLO_SHORT, S_CTRL_1MIB_EARLY, S_HELLO_AGAIN,
	S_SUB_TOPIC0, S_SUB_TOPIC_PAST, S_SUB_START7, S_SUB_SEQ0,
	S_SUB_RESUME_PAST, S_SUB_RESUME_HUGE, S_SUB_SHORT, S_UNSUB_TOPIC0,
	S_DATA, S_LOSS, S_CTRL_1MIB, S_CTRL_70K, S_PAD,
};

static size_t p2_build(int kind, uint8_t *buf)
{
	size_t n;
	uint64_t s = 12345;

	switch (kind) {
	case S_GARBAGE:
		for (n = 0; n < 4096; n += 8) {
			uint64_t v = ut_rand(&s);
			memcpy(buf + n, &v, 8);
		}
		return 4096;
	case S_SUB_BEFORE_HELLO:
		return p2_subscribe(buf, MUON_START_LATEST, 0);
	case S_DATA_BEFORE_HELLO:
	case S_DATA:
		return enc_data(buf, 1, 1, 16);
	case S_HELLO_VERSION:
		return enc_hello(buf, ROGUE_ID, 2);
	case S_HELLO_SELF:
		return enc_hello(buf, PUB_ID, MUONI_PROTO_VERSION);
	case S_HELLO_SHORT:
		n = enc_hdr(buf, MUONI_FT_HELLO, 40, 0, 0);
		memset(buf + n, 0, 8);
		buf[n] = 1;
		return n + 8;
	case S_CTRL_1MIB_EARLY:
	case S_CTRL_1MIB:
		return enc_hdr(buf, MUONI_FT_SUBSCRIBE, 32 + (1u << 20), 0, 0);
	case S_CTRL_70K:
		return enc_hdr(buf, MUONI_FT_SUBSCRIBE, 32 + 70000, 0, 0);
	case S_HELLO_AGAIN:
		return enc_hello(buf, ROGUE_ID, MUONI_PROTO_VERSION);
	case S_SUB_TOPIC0:
		n = p2_subscribe(buf, 0, 0);
		buf[32] = 0;
		return n;
	case S_SUB_TOPIC_PAST:
		n = p2_subscribe(buf, 0, 0);
		buf[32] = 100; /* 100-byte topic in an 8-byte field */
		return n;
	case S_SUB_START7:
		return p2_subscribe(buf, 7, 0);
	case S_SUB_SEQ0:
		return p2_subscribe(buf, MUON_START_SEQ, 0);
	case S_SUB_RESUME_PAST:
		n = p2_subscribe(buf, 0, 0);
		buf[32 + 4] = 3; /* three entries, none in the frame */
		return n;
	case S_SUB_RESUME_HUGE:
		n = p2_subscribe(buf, 0, 0);
		buf[32 + 4] = 0xff;
		buf[32 + 5] = 0xff;
		buf[32 + 6] = 0xff;
		buf[32 + 7] = 0xff;
		return n;
	case S_SUB_SHORT:
		n = enc_hdr(buf, MUONI_FT_SUBSCRIBE, 40, 0, 0);
		memset(buf + n, 0, 8);
		return n + 8;
	case S_UNSUB_TOPIC0:
		n = muoni_enc_unsubscribe(buf, 1024, "t", 1);
		buf[32] = 0;
		return n;
	case S_LOSS:
		return muoni_enc_loss(buf, 1024, 1, 1, 5);
	case S_PAD:
		n = enc_hdr(buf, MUONI_FT_PAD, 64, 0, 0);
		memset(buf + n, 0, 32);
		return n + 32;
	}
	FAIL("bad kind %d", kind);
	return 0;
}

static void p2_fatal(const char *what, int kind, bool after_hello,
		     bool want_proto, const char *kw)
{
	static uint8_t buf[8192];
	muon_counters_t c0, c1;
	int fd;

	p2_open(MUON_SLOW_BACKPRESSURE, 0, 0);
	c0 = ctrs(F.pc);
	log_reset(&LOG_P);
	fd = after_hello ? p2_hello(ROGUE_ID, 0) : tcp_connect_raw(F.pub_ep, 0);
	send_all(fd, buf, p2_build(kind, buf));
	CHECK(wait_closed(fd, 2000), "%s: the publisher kept the rogue "
	      "connection open", what);
	poll_for(5);
	c1 = ctrs(F.pc);
	CHECK(!kw[0] || strstr(LOG_P.buf, kw), "%s: log does not say '%s':\n%s",
	      what, kw, LOG_P.buf);
	if (want_proto)
		CHECK(c1.proto_errors > c0.proto_errors, "%s: proto_errors did "
		      "not move", what);
	if (after_hello)
		CHECK(c1.disconnects > c0.disconnects, "%s: disconnects", what);
	else
		CHECK(c1.connect_failures > c0.connect_failures ||
		      c1.proto_errors > c0.proto_errors,
		      "%s: neither connect_failures nor proto_errors", what);
	CHECK(c1.slow_drops == c0.slow_drops, "slow drop");
	xclose(&fd);
	finish_ok();
}

#define P2_FATAL(name, kind, after, proto, kw)                             \
	static void test_p2_##name(void **state)                           \
	{                                                                  \
		(void)state;                                               \
		p2_fatal("p2 " #name, kind, after, proto, kw);             \
	}

P2_FATAL(garbage, S_GARBAGE, false, true, "")
P2_FATAL(subscribe_before_hello, S_SUB_BEFORE_HELLO, false, true,
	 "frame type 8 before HELLO")
P2_FATAL(data_before_hello, S_DATA_BEFORE_HELLO, false, true,
	 "frame type 2 before HELLO")
P2_FATAL(hello_wrong_version, S_HELLO_VERSION, false, true,
	 "protocol version 2")
P2_FATAL(hello_publishers_own_id, S_HELLO_SELF, false, false,
	 "connected to itself")
P2_FATAL(hello_short_payload, S_HELLO_SHORT, false, true, "HELLO payload")
P2_FATAL(ctrl_1mib_before_hello, S_CTRL_1MIB_EARLY, false, true, "runs past")
P2_FATAL(hello_twice, S_HELLO_AGAIN, true, true, "HELLO after handshake")
P2_FATAL(subscribe_topic_len0, S_SUB_TOPIC0, true, true, "topic length 0")
P2_FATAL(subscribe_topic_past_frame, S_SUB_TOPIC_PAST, true, true,
	 "SUBSCRIBE")
P2_FATAL(subscribe_start_mode7, S_SUB_START7, true, true, "start mode 7")
P2_FATAL(subscribe_start_seq0, S_SUB_SEQ0, true, true, "from sequence 0")
P2_FATAL(subscribe_resume_past_frame, S_SUB_RESUME_PAST, true, true,
	 "resume list of 3 entries")
P2_FATAL(subscribe_resume_huge, S_SUB_RESUME_HUGE, true, true, "resume list")
P2_FATAL(subscribe_short_payload, S_SUB_SHORT, true, true,
	 "SUBSCRIBE payload too short")
P2_FATAL(unsubscribe_topic_len0, S_UNSUB_TOPIC0, true, true, "UNSUBSCRIBE")
P2_FATAL(data_towards_publisher, S_DATA, true, true, "data for unknown stream")
P2_FATAL(loss_towards_publisher, S_LOSS, true, true, "LOSS for unknown stream")
P2_FATAL(ctrl_claims_1mib, S_CTRL_1MIB, true, true, "runs past")
P2_FATAL(ctrl_claims_70k, S_CTRL_70K, true, true, "too large")
P2_FATAL(pad_towards_publisher, S_PAD, true, true, "PAD frame in a stream")

/* One byte and silence before HELLO: polls stay short, the good
 * subscriber keeps receiving, the handshake times out. */
static void test_p2_one_byte_stall(void **state)
{
	muon_counters_t c0, c1;
	uint64_t real0;
	int fd;

	(void)state;
	p2_open(MUON_SLOW_BACKPRESSURE, 0, 0);
	c0 = ctrs(F.pc);
	fd = tcp_connect_raw(F.pub_ep, 0);
	CHECK(send_all(fd, "\x50", 1), "send");
	real0 = RX.real_n;
	W.max_poll_us = 0;
	poll_for(300);
	CHECK(W.max_poll_us < 100000, "a poll took %llu us",
	      (unsigned long long)W.max_poll_us);
	CHECK(RX.real_n > real0 + 100, "good subscriber starved");
	CHECK(still_open(fd), "one byte closed the connection");
	CHECK(wait_closed(fd, 2500), "a stalled handshake never timed out");
	c1 = ctrs(F.pc);
	CHECK(c1.connect_failures > c0.connect_failures, "connect_failures");
	CHECK(strstr(LOG_P.buf, "handshake not finished"), "log: %s",
	      LOG_P.buf);
	xclose(&fd);
	finish_ok();
}

/* A subscriber that never reads, with MUON_SLOW_BACKPRESSURE: publish may
 * refuse (documented), no poll blocks, nothing accepted is lost for the
 * good subscriber, and once the silent rogue is timed out publishing goes
 * on. */
static void test_p2_never_reads_backpressure(void **state)
{
	static uint8_t buf[1024];
	muon_counters_t c0, c1;
	uint64_t acc;
	int fd;

	(void)state;
	W.len_hi = 1000;
	W.pump_burst = 4;
	p2_open(MUON_SLOW_BACKPRESSURE, 64 * 1024, 0);
	c0 = ctrs(F.pc);
	fd = p2_hello(ROGUE_ID, 2048);
	CHECK(send_all(fd, buf, p2_subscribe(buf, MUON_START_LATEST, 0)),
	      "SUBSCRIBE");
	W.max_poll_us = 0;
	WAIT_UNTIL(3000, W.bp > 0, "publish never refused although a "
		   "subscriber reads nothing (accepted %llu)",
		   (unsigned long long)W.accepted);
	CHECK(W.ev_bp >= 1, "no BACKPRESSURE event");
	/* Wait for the timeout itself: the rogue's socket buffers on loopback
	 * grow (autotuning) and can let a few hundred messages through
	 * before it, which is not "resumed after the timeout". */
	WAIT_UNTIL(4000, ctrs(F.pc).disconnects > c0.disconnects,
		   "rogue never disconnected");
	acc = W.accepted;
	WAIT_UNTIL(4000, W.accepted > acc + 200, "publishing never resumed "
		   "after the non-reading subscriber went silent");
	CHECK(W.max_poll_us < 100000, "a poll took %llu us",
	      (unsigned long long)W.max_poll_us);
	c1 = ctrs(F.pc);
	CHECK(c1.disconnects > c0.disconnects, "rogue never disconnected");
	xclose(&fd);
	finish_ok();
}

/* The same with MUON_SLOW_DROP, the rogue alive (it heartbeats) but never
 * reading: publish never refuses, the rogue is cut as slow (not timed out),
 * the good subscriber loses nothing. */
static void test_p2_never_reads_slow_drop(void **state)
{
	static uint8_t buf[1024];
	muon_counters_t c0, c1;
	uint64_t dl, hb = 0;
	int fd;

	(void)state;
	W.len_hi = 1000;
	p2_open(MUON_SLOW_DROP, 64 * 1024, 200);
	c0 = ctrs(F.pc);
	fd = p2_hello(ROGUE_ID, 2048);
	CHECK(send_all(fd, buf, p2_subscribe(buf, MUON_START_LATEST, 0)),
	      "SUBSCRIBE");
	W.max_poll_us = 0;
	dl = now_us() + 4000000u;
	while (ctrs(F.pc).slow_drops == c0.slow_drops) {
		CHECK(now_us() < dl, "the live, non-reading subscriber was "
		      "never cut (accepted %llu; log:\n%s)",
		      (unsigned long long)W.accepted, LOG_P.buf);
		if (now_us() > hb) {
			(void)!send(fd, buf, muoni_enc_simple(buf, sizeof(buf),
				    MUONI_FT_HEARTBEAT, 0, 0),
				    MSG_DONTWAIT | MSG_NOSIGNAL);
			hb = now_us() + 100000u;
		}
		world_poll();
	}
	CHECK(W.ev_slow_drop >= 1, "no SLOW_DROP event");
	poll_for(100);
	c1 = ctrs(F.pc);
	CHECK(W.bp == 0, "publish refused %llu times under MUON_SLOW_DROP",
	      (unsigned long long)W.bp);
	CHECK(W.max_poll_us < 100000, "a poll took %llu us",
	      (unsigned long long)W.max_poll_us);
	CHECK(c1.disconnects > c0.disconnects, "disconnects");
	CHECK(!strstr(LOG_P.buf, "silent"), "timed out, not cut:\n%s",
	      LOG_P.buf);
	CHECK(wait_closed(fd, 2000), "rogue socket still open");
	xclose(&fd);
	finish_ok();
}

/* A rogue that claims the good subscriber's ctx id must not knock the
 * good subscriber off the publisher. */
static void test_p2_hello_impersonates_good_subscriber(void **state)
{
	static uint8_t buf[1024];
	muon_counters_t g0, g1;
	int fd;

	(void)state;
	p2_open(MUON_SLOW_BACKPRESSURE, 0, 0);
	poll_for(20);
	g0 = ctrs(F.sc);
	fd = p2_hello(GOOD_ID, 0);
	send_all(fd, buf, p2_subscribe(buf, MUON_START_LATEST, 0));
	poll_for(300);
	g1 = ctrs(F.sc);
	xclose(&fd);
	finish_ok(); /* no loss, whatever happened */
	CHECK(g1.disconnects == g0.disconnects && RX.real_down == 0,
	      "a peer claiming the good subscriber's ctx id in HELLO made the "
	      "publisher close the good subscriber's connection (its "
	      "disconnects %llu -> %llu, IMAGE_DOWN %u reason %d): "
	      "core/conn.c conn_dedupe trusts the unauthenticated id",
	      (unsigned long long)g0.disconnects,
	      (unsigned long long)g1.disconnects, RX.real_down,
	      RX.real_down_reason);
}

/* ======================================================================
 * p3: rogue shm publisher
 * ==================================================================== */

static void p3_open(void)
{
	char real_uri[128], peers[512];

	unique_name(F.rogue_name, sizeof(F.rogue_name), "p");
	F.lfd = shm_listen_raw(F.rogue_name);
	unique_name(real_uri, sizeof(real_uri), "r");
	memmove(real_uri + 6, real_uri, strlen(real_uri) + 1);
	memcpy(real_uri, "shm://", 6);
	F.pc = mk_ctx("real-pub", PUB_ID, real_uri, NULL, &LOG_P);
	CHECK(!muon_ctx_listen_endpoint(F.pc, 0, F.pub_ep, sizeof(F.pub_ep)),
	      "endpoint");
	pub_open(F.pc, MUON_SLOW_BACKPRESSURE, 0, 0);
	snprintf(peers, sizeof(peers), "shm://%s,%s", F.rogue_name, F.pub_ep);
	F.sc = mk_ctx("sub", SUB_ID, NULL, peers, &LOG_S);
	sub_open(F.sc, PUB_ID);
	real_up_and_pump();
}

/* Accept the subscriber, take its ring from the HELLO, answer HELLO
 * (with `give_fd` attached if >= 0), read its SUBSCRIBE. Returns the
 * socket; the ring is mapped in F.rr. */
static int p3_session(int give_fd)
{
	static uint8_t buf[70000];
	uint64_t dl = now_us() + 3000000u;

	for (;;) {
		char link[64];
		ssize_t n;
		int s, rfd = -1;

		CHECK(now_us() < dl, "rogue shm publisher: the subscriber "
		      "never completed a handshake");
		s = accept4(F.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s < 0) {
			world_poll();
			continue;
		}
		track(s);
		n = pkt_expect(s, MUONI_FT_HELLO, buf, sizeof(buf), &rfd);
		if (n < 0 || rfd < 0) {
			if (rfd >= 0)
				close(rfd);
			xclose(&s);
			continue;
		}
		track(rfd);
		rr_close(&F.rr);
		rr_map(&F.rr, rfd);
		CHECK(F.rr.hdr->magic == MUONI_SHM_MAGIC && F.rr.cap == RING,
		      "subscriber ring header");
		snprintf(link, sizeof(link), "/proc/self/fd/%d", rfd);
		n = readlink(link, F.rr.path, sizeof(F.rr.path) - 1);
		CHECK(n > 0, "readlink ring");
		F.rr.path[n] = '\0';
		CHECK(!strncmp(F.rr.path, "/dev/shm/muon-", 14), "ring path %s",
		      F.rr.path);
		if (!pkt_send(s, buf, enc_hello(buf, ROGUE_ID,
						MUONI_PROTO_VERSION),
			      &give_fd, give_fd >= 0 ? 1 : 0)) {
			xclose(&s);
			continue;
		}
		if (give_fd >= 0)
			return s;
		n = pkt_expect(s, MUONI_FT_SUBSCRIBE, buf, sizeof(buf), NULL);
		if (n < 0) {
			xclose(&s);
			continue;
		}
		return s;
	}
}

static void p3_stream(struct rring *r, uint32_t sid, unsigned n)
{
	static uint8_t buf[512];
	uint64_t n0 = RX.rogue_n;
	unsigned up0 = RX.rogue_up, i;

	r->sid = sid;
	rr_frame(r, buf, enc_sinfo(buf, sid, 1, ROGUE_ID));
	for (i = 1; i <= n; i++)
		rr_data(r, sid, i, 24 + i);
	r->seq = n + 1;
	WAIT_UNTIL(2000, RX.rogue_up > up0 && RX.rogue_n == n0 + n,
		   "rogue shm stream %u: %llu of %u delivered", sid,
		   (unsigned long long)(RX.rogue_n - n0), n);
}

static bool ring_file_gone(const char *path)
{
	return access(path, F_OK) != 0 && errno == ENOENT;
}

static void p3_recover(void)
{
	unsigned down0;
	int s = p3_session(-1);

	p3_stream(&F.rr, F.next_sid++, 3);
	down0 = RX.rogue_down;
	xclose(&s);
	WAIT_UNTIL(2000, RX.rogue_down > down0, "no IMAGE_DOWN after close");
	CHECK(RX.rogue_down_reason == MUON_DOWN_DISCONNECTED, "reason %d",
	      RX.rogue_down_reason);
	CHECK(ring_file_gone(F.rr.path), "ring file %s left after close",
	      F.rr.path);
	rr_close(&F.rr);
}

enum p3_bad {
	R_LEN16, R_LEN0, R_LEN_PAST, R_LEN_FFFFFFFF, R_PAD_SHORT, R_PAD_LONG,
	R_PAD_LEN0, R_SLOT_CROSS, R_NEAR_END, R_TYPE0, R_TYPE11, R_HELLO,
	R_SUBSCRIBE, R_UNSUBSCRIBE, R_CLOSE, R_DATA_BIG, R_DATA_UNKNOWN,
	R_SI_PUB, R_LOSS_START,
};

/* Write the bad frame at the write position, with a correct commit. */
static void p3_write_bad(struct rring *r, int kind)
{
	uint64_t c = r->pos | 1;
	uint64_t left = r->cap - (r->pos & (r->cap - 1));

	switch (kind) {
	case R_LEN16:
		rr_put(r, MUONI_FT_DATA, 16, 1, r->seq, 0, c);
		return;
	case R_LEN0:
		rr_put(r, MUONI_FT_STREAM_END, 0, 1, r->seq, 0, c);
		return;
	case R_LEN_PAST:
		rr_put(r, MUONI_FT_STREAM_INFO, (uint32_t)left + 64, 2, 1, 0, c);
		return;
	case R_LEN_FFFFFFFF:
		rr_put(r, MUONI_FT_DATA, 0xffffffffu, 1, r->seq, 0, c);
		return;
	case R_PAD_SHORT:
		rr_put(r, MUONI_FT_PAD, 64, 0, 0, 0, c);
		return;
	case R_PAD_LONG:
		rr_put(r, MUONI_FT_PAD, (uint32_t)left + 64, 0, 0, 0, c);
		return;
	case R_PAD_LEN0:
		rr_put(r, MUONI_FT_PAD, 0, 0, 0, 0, c);
		return;
	case R_SLOT_CROSS:
		/* 128 bytes to the end, a DATA frame of 160 (slot 192). */
		rr_put(r, MUONI_FT_DATA, 160, 1, r->seq, 128, r->pos | 1);
		return;
	case R_NEAR_END:
		/* 64 bytes to the end, a STREAM_INFO of 100. */
		rr_put(r, MUONI_FT_STREAM_INFO, 100, 2, 1, 64, r->pos | 1);
		return;
	case R_TYPE0:
		rr_put(r, 0, 32, 1, r->seq, 0, c);
		return;
	case R_TYPE11:
		rr_put(r, MUONI_FT_MAX_, 32, 1, r->seq, 0, c);
		return;
	case R_HELLO:
		rr_put(r, MUONI_FT_HELLO, 80, 0, 0, 48, c);
		return;
	case R_SUBSCRIBE:
		rr_put(r, MUONI_FT_SUBSCRIBE, 56, 0, 0, 24, c);
		return;
	case R_UNSUBSCRIBE:
		rr_put(r, MUONI_FT_UNSUBSCRIBE, 48, 0, 0, 16, c);
		return;
	case R_CLOSE:
		rr_put(r, MUONI_FT_CLOSE, 40, 0, 0, 8, c);
		return;
	case R_DATA_BIG:
		rr_put(r, MUONI_FT_DATA, 32 + MAXMSG + 1, 1, r->seq,
		       MAXMSG + 1, c);
		return;
	case R_DATA_UNKNOWN:
		rr_put(r, MUONI_FT_DATA, 40, 99, 1, 8, c);
		return;
	case R_SI_PUB: {
		static uint8_t buf[512];
		size_t n = enc_sinfo(buf, 2, 1, ROGUE_ID + 1);
		memcpy(r->ring + (r->pos & (r->cap - 1)) + 8, buf + 8, n - 8);
		__atomic_store_n((uint64_t *)(void *)(r->ring +
			(r->pos & (r->cap - 1))), c, __ATOMIC_RELEASE);
		return;
	}
	case R_LOSS_START: {
		static uint8_t buf[512];
		size_t n = muoni_enc_loss(buf, sizeof(buf), 1, r->seq + 5,
					  r->seq + 9);
		memcpy(r->ring + (r->pos & (r->cap - 1)) + 8, buf + 8, n - 8);
		__atomic_store_n((uint64_t *)(void *)(r->ring +
			(r->pos & (r->cap - 1))), c, __ATOMIC_RELEASE);
		return;
	}
	}
	FAIL("bad kind %d", kind);
}

static void p3_fatal(const char *what, int kind, const char *kw)
{
	muon_counters_t c0, c1;
	unsigned down0;
	uint64_t n0;
	char path[512];
	int s;

	p3_open();
	s = p3_session(-1);
	p3_stream(&F.rr, 1, 2);
	if (kind == R_SLOT_CROSS)
		rr_fill_to(&F.rr, F.rr.cap - 128);
	if (kind == R_NEAR_END)
		rr_fill_to(&F.rr, F.rr.cap - 64);
	snprintf(path, sizeof(path), "%s", F.rr.path);
	c0 = ctrs(F.sc);
	down0 = RX.rogue_down;
	n0 = RX.rogue_n;
	log_reset(&LOG_S);
	p3_write_bad(&F.rr, kind);
	CHECK(wait_closed(s, 2000), "%s: the subscriber kept the rogue "
	      "connection open", what);
	WAIT_UNTIL(2000, RX.rogue_down > down0, "%s: no IMAGE_DOWN", what);
	c1 = ctrs(F.sc);
	CHECK(RX.rogue_n == n0, "%s: the bad frame delivered something", what);
	CHECK(c1.proto_errors > c0.proto_errors, "%s: proto_errors", what);
	CHECK(c1.disconnects > c0.disconnects, "%s: disconnects", what);
	CHECK(RX.rogue_down_reason == MUON_DOWN_PROTOCOL, "%s: reason %d",
	      what, RX.rogue_down_reason);
	CHECK(strstr(LOG_S.buf, kw), "%s: log does not say '%s':\n%s", what,
	      kw, LOG_S.buf);
	CHECK(ring_file_gone(path), "%s: ring file %s left after close", what,
	      path);
	xclose(&s);
	rr_close(&F.rr);
	p3_recover();
	finish_ok();
}

#define P3_FATAL(name, kind, kw)                                           \
	static void test_p3_##name(void **state)                           \
	{                                                                  \
		(void)state;                                               \
		p3_fatal("p3 " #name, kind, kw);                           \
	}

P3_FATAL(len16, R_LEN16, "below header")
P3_FATAL(len0, R_LEN0, "below header")
P3_FATAL(len_past_ring_end, R_LEN_PAST, "runs past")
P3_FATAL(len_ffffffff, R_LEN_FFFFFFFF, "runs past")
P3_FATAL(pad_not_to_end, R_PAD_SHORT, "PAD of 64 bytes")
P3_FATAL(pad_past_end, R_PAD_LONG, "PAD of")
P3_FATAL(pad_len0, R_PAD_LEN0, "PAD of 0 bytes")
P3_FATAL(slot_crosses_ring_end, R_SLOT_CROSS, "runs past")
P3_FATAL(frame_near_end_too_long, R_NEAR_END, "runs past")
P3_FATAL(type0, R_TYPE0, "unknown frame type 0")
P3_FATAL(type11, R_TYPE11, "unknown frame type 11")
P3_FATAL(hello_in_ring, R_HELLO, "control frame type 3 in the ring")
P3_FATAL(subscribe_in_ring, R_SUBSCRIBE, "control frame type 8 in the ring")
P3_FATAL(unsubscribe_in_ring, R_UNSUBSCRIBE,
	 "control frame type 9 in the ring")
P3_FATAL(close_in_ring, R_CLOSE, "control frame type 10 in the ring")
P3_FATAL(data_above_max, R_DATA_BIG, "above the limit")
P3_FATAL(data_unknown_stream, R_DATA_UNKNOWN, "data for unknown stream 99")
P3_FATAL(sinfo_wrong_publisher, R_SI_PUB, "names publisher")
P3_FATAL(loss_wrong_start, R_LOSS_START, "does not start")

/* Commit words for another lap, another position or without the low bit
 * are not a frame: nothing is delivered, nothing is an error, and the
 * correct commit word then delivers it. A stale frame of the previous lap
 * at offset 0 is ignored the same way. */
static void test_p3_commit_word_other_lap(void **state)
{
	struct rring *r = &F.rr;
	muon_counters_t c0, c1;
	unsigned up0;
	uint64_t n0;
	int s;

	(void)state;
	p3_open();
	s = p3_session(-1);
	p3_stream(r, 1, 2);
	c0 = ctrs(F.sc);
	n0 = RX.rogue_n;
	rr_put(r, MUONI_FT_DATA, 40, 1, r->seq, 8, (r->pos + r->cap) | 1);
	poll_for(60);
	CHECK(RX.rogue_n == n0, "next-lap commit word delivered");
	rr_put(r, MUONI_FT_DATA, 40, 1, r->seq, 8, r->pos);
	poll_for(30);
	CHECK(RX.rogue_n == n0, "commit word without the low bit delivered");
	rr_put(r, MUONI_FT_DATA, 40, 1, r->seq, 8, (r->pos + 64) | 1);
	poll_for(30);
	CHECK(RX.rogue_n == n0, "commit word of another position delivered");
	rr_put(r, MUONI_FT_DATA, 40, 1, r->seq, 8, r->pos | 1);
	WAIT_UNTIL(1000, RX.rogue_n == n0 + 1, "the right commit word was "
		   "not delivered");
	r->pos += 64;
	r->seq++;
	/* Fill to the end of the ring: the reader is then at lap 1, offset
	 * 0, where lap 0's STREAM_INFO still sits with commit word 1. */
	rr_fill_to(r, 0);
	up0 = RX.rogue_up;
	n0 = RX.rogue_n;
	poll_for(60);
	CHECK(RX.rogue_n == n0 && RX.rogue_up == up0,
	      "a stale frame of the previous lap was taken");
	rr_data(r, 1, r->seq++, 8);
	WAIT_UNTIL(1000, RX.rogue_n == n0 + 1, "lap 1 frame not delivered");
	c1 = ctrs(F.sc);
	CHECK(c1.proto_errors == c0.proto_errors && still_open(s) &&
	      RX.rogue_down == 0, "an ignored commit word was an error");
	xclose(&s);
	finish_ok();
}

static void test_p3_dup_and_gap(void **state)
{
	struct rring *r = &F.rr;
	muon_counters_t c0, c1;
	int s;

	(void)state;
	p3_open();
	s = p3_session(-1);
	p3_stream(r, 1, 2);
	c0 = ctrs(F.sc);
	rr_data(r, 1, 2, 26);
	rr_data(r, 1, 1, 25);
	rr_data(r, 1, 3, 27);
	rr_data(r, 1, 3, 27);
	rr_data(r, 1, 6, 30);
	rr_data(r, 1, 7, 31);
	WAIT_UNTIL(2000, rogue_count(1, 7) == 1, "seq 7 never delivered");
	poll_for(30);
	c1 = ctrs(F.sc);
	CHECK(rogue_count(1, 1) == 1 && rogue_count(1, 2) == 1 &&
	      rogue_count(1, 3) == 1 && rogue_count(1, 6) == 1 &&
	      !rogue_count(1, 4) && !rogue_count(1, 5), "deliveries");
	CHECK(RX.rogue_loss == 1 && RX.rogue_loss_from == 4 &&
	      RX.rogue_loss_to == 5, "LOSS events %u", RX.rogue_loss);
	CHECK(c1.proto_errors > c0.proto_errors, "duplicates not counted");
	CHECK(still_open(s) && RX.rogue_down == 0, "connection closed");
	xclose(&s);
	finish_ok();
}

/* The rogue publisher answers HELLO with a ring of its own (as for a
 * reverse subscription) that has a bad header: refused as a protocol
 * error. */
static void test_p3_bad_ring_offered_to_subscriber(void **state)
{
	muon_counters_t c0, c1;
	int s, bad;

	(void)state;
	p3_open();
	c0 = ctrs(F.sc);
	log_reset(&LOG_S);
	bad = mk_ring_fd(RING, MUONI_SHM_HDR_SIZE + RING + MUONI_SHM_SLACK,
			 0x1234, MUONI_SHM_VERSION);
	s = p3_session(bad);
	CHECK(wait_closed(s, 2000), "subscriber kept a connection whose peer "
	      "offered a bad ring");
	c1 = ctrs(F.sc);
	CHECK(c1.proto_errors > c0.proto_errors, "proto_errors");
	CHECK(strstr(LOG_S.buf, "bad magic"), "log: %s", LOG_S.buf);
	CHECK(ring_file_gone(F.rr.path), "ring file left");
	xclose(&s);
	xclose(&bad);
	rr_close(&F.rr);
	p3_recover();
	finish_ok();
}

/* ======================================================================
 * p4: rogue shm subscriber
 * ==================================================================== */

static void p4_open(void)
{
	char uri[128];

	unique_name(F.rogue_name, sizeof(F.rogue_name), "pub");
	snprintf(uri, sizeof(uri), "shm://%s", F.rogue_name);
	F.pc = mk_ctx("pub", PUB_ID, uri, NULL, &LOG_P);
	CHECK(!muon_ctx_listen_endpoint(F.pc, 0, F.pub_ep, sizeof(F.pub_ep)),
	      "endpoint");
	pub_open(F.pc, MUON_SLOW_BACKPRESSURE, 256 * 1024, 0);
	F.sc = mk_ctx("good-sub", GOOD_ID, NULL, F.pub_ep, &LOG_S);
	sub_open(F.sc, PUB_ID);
	real_up_and_pump();
}

/* Connect, send HELLO with the given fds, read the publisher's HELLO. */
static int p4_hello(const int *fds, int nfds, bool expect_answer)
{
	static uint8_t buf[256];
	int s = shm_connect_raw(F.rogue_name);

	CHECK(pkt_send(s, buf, enc_hello(buf, ROGUE_ID, MUONI_PROTO_VERSION),
		       fds, nfds), "send HELLO");
	if (expect_answer)
		CHECK(pkt_expect(s, MUONI_FT_HELLO, buf, sizeof(buf), NULL) > 0,
		      "no HELLO from the publisher");
	return s;
}

static void p4_subscribe(int s, const int *fds, int nfds)
{
	static uint8_t buf[256];

	CHECK(pkt_send(s, buf, p2_subscribe(buf, MUON_START_LATEST, 0), fds,
		       nfds), "send SUBSCRIBE");
}

enum p4_bad {
	H_SMALL_FILE, H_PIPE, H_BAD_MAGIC, H_BAD_VERSION, H_NOT_POW2,
	H_RING_TINY, H_RING_HUGE, H_SIZE_MISMATCH, H_READ_ONLY, H_SECOND_RING,
	H_BIG_PACKET, H_SHORT_PACKET, H_DATA_PACKET, H_FIVE_FDS,
};

static int p4_send_bad(int kind)
{
	static uint8_t buf[120000];
	int fd = -1, fd2 = -1, fds[5], s, i;
	char link[64];

	switch (kind) {
	case H_SMALL_FILE:
		fd = mk_ring_fd(RING, 100, MUONI_SHM_MAGIC, 1);
		break;
	case H_PIPE: {
		int p[2];
		CHECK(!pipe2(p, O_CLOEXEC), "pipe");
		track(p[0]);
		track(p[1]);
		fd = p[0];
		fd2 = p[1];
		break;
	}
	case H_BAD_MAGIC:
		fd = mk_ring_fd(RING, MUONI_SHM_HDR_SIZE + RING + 64, 0xdead, 1);
		break;
	case H_BAD_VERSION:
		fd = mk_ring_fd(RING, MUONI_SHM_HDR_SIZE + RING + 64,
				MUONI_SHM_MAGIC, 2);
		break;
	case H_NOT_POW2:
		fd = mk_ring_fd(RING + 4096,
				MUONI_SHM_HDR_SIZE + RING + 4096 + 64,
				MUONI_SHM_MAGIC, 1);
		break;
	case H_RING_TINY:
		fd = mk_ring_fd(4096, MUONI_SHM_HDR_SIZE + 4096 + 64,
				MUONI_SHM_MAGIC, 1);
		break;
	case H_RING_HUGE:
		fd = mk_ring_fd(1ull << 31, MUONI_SHM_HDR_SIZE + RING + 64,
				MUONI_SHM_MAGIC, 1);
		break;
	case H_SIZE_MISMATCH:
		fd = mk_ring_fd(RING, MUONI_SHM_HDR_SIZE + RING + 64 + 4096,
				MUONI_SHM_MAGIC, 1);
		break;
	case H_READ_ONLY:
		fd2 = mk_good_ring_fd();
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd2);
		fd = open(link, O_RDONLY | O_CLOEXEC);
		CHECK(fd >= 0, "reopen read-only");
		track(fd);
		break;
	case H_SECOND_RING:
		fd = mk_good_ring_fd();
		fd2 = mk_good_ring_fd();
		s = p4_hello(&fd, 1, true);
		p4_subscribe(s, &fd2, 1);
		xclose(&fd);
		xclose(&fd2);
		return s;
	case H_FIVE_FDS:
		for (i = 0; i < 5; i++)
			fds[i] = mk_good_ring_fd();
		s = p4_hello(fds, 5, false);
		for (i = 0; i < 5; i++)
			xclose(&fds[i]);
		return s;
	case H_BIG_PACKET:
	case H_SHORT_PACKET:
	case H_DATA_PACKET:
		fd = mk_good_ring_fd();
		s = p4_hello(&fd, 1, true);
		xclose(&fd);
		if (kind == H_BIG_PACKET) {
			size_t n = enc_hdr(buf, MUONI_FT_SUBSCRIBE,
					   sizeof(buf), 0, 0);
			memset(buf + n, 0, sizeof(buf) - n);
			CHECK(pkt_send(s, buf, sizeof(buf), NULL, 0),
			      "send big packet: %s", strerror(errno));
		} else if (kind == H_SHORT_PACKET) {
			memset(buf, 7, 10);
			CHECK(pkt_send(s, buf, 10, NULL, 0), "send");
		} else {
			CHECK(pkt_send(s, buf, enc_data(buf, 1, 1, 8), NULL, 0),
			      "send");
		}
		return s;
	}
	s = p4_hello(&fd, 1, false);
	xclose(&fd);
	xclose(&fd2);
	return s;
}

static void p4_fatal(const char *what, int kind, const char *kw)
{
	muon_counters_t c0, c1;
	int s;

	p4_open();
	c0 = ctrs(F.pc);
	log_reset(&LOG_P);
	s = p4_send_bad(kind);
	CHECK(wait_closed(s, 2000), "%s: the publisher kept the rogue "
	      "connection open", what);
	poll_for(5);
	c1 = ctrs(F.pc);
	CHECK(c1.proto_errors > c0.proto_errors, "%s: proto_errors", what);
	CHECK(strstr(LOG_P.buf, kw), "%s: log does not say '%s':\n%s", what,
	      kw, LOG_P.buf);
	xclose(&s);
	finish_ok();
}

#define P4_FATAL(name, kind, kw)                                           \
	static void test_p4_##name(void **state)                           \
	{                                                                  \
		(void)state;                                               \
		p4_fatal("p4 " #name, kind, kw);                           \
	}

P4_FATAL(ring_file_too_small, H_SMALL_FILE, "not a readable regular file")
P4_FATAL(ring_fd_is_a_pipe, H_PIPE, "not a readable regular file")
P4_FATAL(ring_bad_magic, H_BAD_MAGIC, "bad magic")
P4_FATAL(ring_bad_version, H_BAD_VERSION, "bad magic or version 2")
P4_FATAL(ring_size_not_pow2, H_NOT_POW2, "ring size 69632 invalid")
P4_FATAL(ring_size_tiny, H_RING_TINY, "ring size 4096 invalid")
P4_FATAL(ring_size_huge, H_RING_HUGE, "invalid")
P4_FATAL(ring_file_size_mismatch, H_SIZE_MISMATCH, "header says 65536")
P4_FATAL(ring_fd_read_only, H_READ_ONLY, "mmap ring")
P4_FATAL(second_ring_offered, H_SECOND_RING, "second ring")
P4_FATAL(oversized_control_packet, H_BIG_PACKET, "oversized control packet")
P4_FATAL(short_control_packet, H_SHORT_PACKET, "control packet of 10 bytes")
P4_FATAL(data_on_control_channel, H_DATA_PACKET,
	 "frame type 2 on the control channel")
P4_FATAL(five_fds_in_hello, H_FIVE_FDS, "oversized control packet")

/* HELLO without the ring fd the protocol requires, then SUBSCRIBE, then
 * heartbeats: a publisher has nowhere to write that stream. It must refuse
 * the peer as broken rather than hold a sender that can never progress. */
static void test_p4_hello_without_ring_fd(void **state)
{
	static uint8_t buf[64];
	muon_counters_t c0, c1;
	uint64_t dl, hb = 0, bp0;
	bool closed = false;
	int s;

	(void)state;
	p4_open();
	c0 = ctrs(F.pc);
	s = p4_hello(NULL, 0, true);
	p4_subscribe(s, NULL, 0);
	bp0 = W.bp;
	dl = now_us() + 1500000u;
	while (now_us() < dl) {
		if (now_us() > hb) {
			pkt_send(s, buf, muoni_enc_simple(buf, sizeof(buf),
				 MUONI_FT_HEARTBEAT, 0, 0), NULL, 0);
			hb = now_us() + 100000u;
		}
		if (!still_open(s)) {
			closed = true;
			break;
		}
		world_poll();
	}
	c1 = ctrs(F.pc);
	xclose(&s);
	finish_ok();
	CHECK(closed && c1.proto_errors > c0.proto_errors,
	      "a shm subscriber that sent HELLO and SUBSCRIBE without ever "
	      "passing its ring was kept for 1.5 s (closed: %d, proto_errors "
	      "%llu -> %llu); meanwhile publish was refused %llu times with "
	      "MUON_EBACKPRESSURE because its sender can never progress "
	      "(transport/shm/shm.c: no ring required before SUBSCRIBE)",
	      closed, (unsigned long long)c0.proto_errors,
	      (unsigned long long)c1.proto_errors,
	      (unsigned long long)(W.bp - bp0));
}

/* A valid ring, then a `consumed` position the publisher never wrote up
 * to, or more than a ring behind: the publisher checks it before trusting
 * it and closes the connection as a protocol error. */
static void p4_bogus_consumed(bool ahead)
{
	struct rring *r = &F.rr;
	muon_counters_t c0, c1;
	int s, fd;

	p4_open();
	c0 = ctrs(F.pc);
	log_reset(&LOG_P);
	fd = mk_good_ring_fd();
	rr_map(r, fd);
	s = p4_hello(&fd, 1, true);
	p4_subscribe(s, NULL, 0);
	if (ahead) {
		__atomic_store_n(&r->hdr->consumed, 1ull << 40,
				 __ATOMIC_RELEASE);
	} else {
		WAIT_UNTIL(3000, (rr_consume(r), r->pos > r->cap + 4096),
			   "publisher did not write a ring's worth (%llu)",
			   (unsigned long long)r->pos);
		__atomic_store_n(&r->hdr->consumed, 0, __ATOMIC_RELEASE);
	}
	CHECK(wait_closed(s, 3000), "the publisher kept a subscriber that "
	      "reports consumed position %s", ahead ? "2^40" : "0");
	poll_for(5);
	c1 = ctrs(F.pc);
	CHECK(strstr(LOG_P.buf, "subscriber reports position"),
	      "log: %s", LOG_P.buf);
	CHECK(c1.disconnects > c0.disconnects, "disconnects");
	xclose(&s);
	rr_close(r);
	finish_ok();
	CHECK(c1.proto_errors > c0.proto_errors,
	      "bogus consumed position (%s): the publisher closed the "
	      "connection but proto_errors did not move (%llu -> %llu): the "
	      "MUON_EPROTO from ring_put (transport/shm/shm.c) goes through "
	      "muoni_conn_fail(..., MUON_DOWN_DISCONNECTED) in core/pub.c "
	      "without counting", ahead ? "ahead" : "behind",
	      (unsigned long long)c0.proto_errors,
	      (unsigned long long)c1.proto_errors);
}

static void test_p4_consumed_beyond_written(void **state)
{
	(void)state;
	p4_bogus_consumed(true);
}

static void test_p4_consumed_more_than_ring_behind(void **state)
{
	(void)state;
	p4_bogus_consumed(false);
}

/* Connect and send only wake-up bytes: ignored, no poll blocks, the good
 * subscriber keeps receiving, the handshake times out. */
static void test_p4_stall_before_hello(void **state)
{
	muon_counters_t c0, c1;
	uint64_t real0;
	int s;

	(void)state;
	p4_open();
	c0 = ctrs(F.pc);
	s = shm_connect_raw(F.rogue_name);
	CHECK(pkt_send(s, "W", 1, NULL, 0), "send");
	real0 = RX.real_n;
	W.max_poll_us = 0;
	poll_for(300);
	CHECK(W.max_poll_us < 100000, "a poll took %llu us",
	      (unsigned long long)W.max_poll_us);
	CHECK(RX.real_n > real0 + 100, "good subscriber starved");
	CHECK(still_open(s), "a wake-up byte closed the connection");
	CHECK(wait_closed(s, 2500), "a stalled handshake never timed out");
	c1 = ctrs(F.pc);
	CHECK(c1.connect_failures > c0.connect_failures, "connect_failures");
	xclose(&s);
	finish_ok();
}

/* ======================================================================
 * Shrinking a peer's ring file: in a child process, because the expected
 * failure mode of an unprotected mapping is SIGBUS.
 * ==================================================================== */

static void child_shrink_publishers_ring(void)
{
	struct rring r;
	int fd, s;
	uint8_t buf[64];
	uint64_t dl;
	unsigned i, got = 0;

	memset(&r, 0, sizeof(r));
	p4_open();
	fd = mk_good_ring_fd();
	rr_map(&r, fd);
	s = p4_hello(&fd, 1, true);
	p4_subscribe(s, NULL, 0);
	WAIT_UNTIL(2000, (got += rr_consume(&r)) > 3,
		   "no frames in the rogue ring");
	/* The rogue shrinks the file the publisher has mapped and writes. */
	CHECK(!ftruncate(fd, 0), "ftruncate");
	fprintf(stderr, "[child] ring shrunk; the publisher writes on\n");
	dl = now_us() + 300000u;
	for (i = 0; now_us() < dl; i++) {
		world_poll();
		if (!(i & 255))
			pkt_send(s, buf, muoni_enc_simple(buf, sizeof(buf),
				 MUONI_FT_HEARTBEAT, 0, 0), NULL, 0);
	}
	fprintf(stderr, "[child] publisher survived (proto_errors %llu, "
		"disconnects %llu)\n",
		(unsigned long long)ctrs(F.pc).proto_errors,
		(unsigned long long)ctrs(F.pc).disconnects);
}

static void child_shrink_subscribers_ring(void)
{
	int s;
	uint64_t dl;

	p3_open();
	s = p3_session(-1);
	p3_stream(&F.rr, 1, 2);
	/* The rogue publisher shrinks the ring file the subscriber reads. */
	CHECK(!ftruncate(F.rr.fd, 0), "ftruncate");
	fprintf(stderr, "[child] ring shrunk; the subscriber polls on\n");
	dl = now_us() + 300000u;
	while (now_us() < dl)
		world_poll();
	fprintf(stderr, "[child] subscriber survived (proto_errors %llu)\n",
		(unsigned long long)ctrs(F.sc).proto_errors);
	(void)s;
}

/* cmocka catches SIGBUS/SIGSEGV and would go on running the remaining
 * tests inside the child: die from the signal instead, with a backtrace. */
static void child_crash(int sig)
{
	static const char m[] = "[child] fatal signal; backtrace:\n";
	void *bt[64];
	int n = backtrace(bt, 64);

	if (write(2, m, sizeof(m) - 1) < 0)
		_exit(4);
	backtrace_symbols_fd(bt, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run_child(const char *what, void (*fn)(void))
{
	uint64_t dl;
	pid_t pid, w;
	int st = 0;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		g_child = true;
		/* Keep a SIGBUS handler already installed (muon's ring guard,
		 * from earlier tests in this process): replacing it would test
		 * an application that disables the guard. */
		{
			struct sigaction cur;
			if (sigaction(SIGBUS, NULL, &cur) == 0 &&
			    !(cur.sa_flags & SA_SIGINFO) &&
			    cur.sa_handler == SIG_DFL)
				signal(SIGBUS, child_crash);
		}
		signal(SIGSEGV, child_crash);
		signal(SIGILL, child_crash);
		signal(SIGFPE, child_crash);
		signal(SIGABRT, child_crash);
		alarm(20);
		memset(&W, 0, sizeof(W));
		memset(&F, 0, sizeof(F));
		memset(&RX, 0, sizeof(RX));
		F.lfd = F.rr.fd = -1;
		RX.real_expect = 1;
		W.len_hi = 200;
		W.pump_interval_us = 100;
		W.pump_burst = 1;
		fn();
		while (W.n_ctx)
			muon_ctx_destroy(W.ctx[--W.n_ctx]);
		_exit(0);
	}
	dl = now_us() + 15000000u;
	while ((w = waitpid(pid, &st, WNOHANG)) == 0 && now_us() < dl)
		usleep(2000);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		count_rings((int)pid, true);
		FAIL("%s: child hung", what);
	}
	count_rings((int)pid, true);
	if (WIFSIGNALED(st))
		FAIL("%s: the muon context was killed by signal %d (%s): a peer "
		     "shrank the shared ring file under the mapping "
		     "(transport/shm/shm.c maps peer-controlled files with no "
		     "seal or SIGBUS protection)", what, WTERMSIG(st),
		     strsignal(WTERMSIG(st)));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "%s: the child running the muon context exited with %d (a "
	      "sanitizer report above means it crashed: a peer shrank the "
	      "shared ring file under the mapping)", what, WEXITSTATUS(st));
}

static void test_p4_shrink_ring_under_publisher(void **state)
{
	(void)state;
	run_child("rogue shm subscriber shrinks its ring",
		  child_shrink_publishers_ring);
}

static void test_p3_shrink_ring_under_subscriber(void **state)
{
	(void)state;
	run_child("rogue shm publisher shrinks the subscriber's ring",
		  child_shrink_subscribers_ring);
}

/* ------------------------------------------------------------ main */

#define T(fn) cmocka_unit_test_setup_teardown(test_##fn, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(p1_len16),
		T(p1_len0),
		T(p1_len_ffffffff),
		T(p1_len_fffffff0),
		T(p1_type0),
		T(p1_type11),
		T(p1_type_ffff),
		T(p1_data_unknown_stream),
		T(p1_data_above_max),
		T(p1_data_above_max_header_only),
		T(p1_sinfo_topic_past_payload),
		T(p1_sinfo_topic_len0),
		T(p1_sinfo_nul_in_topic),
		T(p1_sinfo_wrong_publisher),
		T(p1_sinfo_stream0),
		T(p1_sinfo_short_payload),
		T(p1_loss_unknown_stream),
		T(p1_loss_wrong_start),
		T(p1_loss_backwards),
		T(p1_loss_short_payload),
		T(p1_stream_end_unknown),
		T(p1_pad_in_stream),
		T(p1_hello_twice),
		T(p1_close_short_payload),
		T(p1_garbage1),
		T(p1_garbage2),
		T(p1_garbage3),
		T(p1_big_pad_in_stream),
		T(p1_truncated_then_close),
		T(p1_dup_and_gap),
		T(p1_seq_wrap_data),
		T(p1_seq_wrap_loss),
		T(p1_one_byte_stall),
		T(p1_hello_impersonates_real_publisher),

		T(p2_garbage),
		T(p2_subscribe_before_hello),
		T(p2_data_before_hello),
		T(p2_hello_wrong_version),
		T(p2_hello_publishers_own_id),
		T(p2_hello_short_payload),
		T(p2_ctrl_1mib_before_hello),
		T(p2_hello_twice),
		T(p2_subscribe_topic_len0),
		T(p2_subscribe_topic_past_frame),
		T(p2_subscribe_start_mode7),
		T(p2_subscribe_start_seq0),
		T(p2_subscribe_resume_past_frame),
		T(p2_subscribe_resume_huge),
		T(p2_subscribe_short_payload),
		T(p2_unsubscribe_topic_len0),
		T(p2_data_towards_publisher),
		T(p2_loss_towards_publisher),
		T(p2_ctrl_claims_1mib),
		T(p2_ctrl_claims_70k),
		T(p2_pad_towards_publisher),
		T(p2_one_byte_stall),
		T(p2_never_reads_backpressure),
		T(p2_never_reads_slow_drop),
		T(p2_hello_impersonates_good_subscriber),

		T(p3_len16),
		T(p3_len0),
		T(p3_len_past_ring_end),
		T(p3_len_ffffffff),
		T(p3_pad_not_to_end),
		T(p3_pad_past_end),
		T(p3_pad_len0),
		T(p3_slot_crosses_ring_end),
		T(p3_frame_near_end_too_long),
		T(p3_type0),
		T(p3_type11),
		T(p3_hello_in_ring),
		T(p3_subscribe_in_ring),
		T(p3_unsubscribe_in_ring),
		T(p3_close_in_ring),
		T(p3_data_above_max),
		T(p3_data_unknown_stream),
		T(p3_sinfo_wrong_publisher),
		T(p3_loss_wrong_start),
		T(p3_commit_word_other_lap),
		T(p3_dup_and_gap),
		T(p3_bad_ring_offered_to_subscriber),
		T(p3_shrink_ring_under_subscriber),

		T(p4_ring_file_too_small),
		T(p4_ring_fd_is_a_pipe),
		T(p4_ring_bad_magic),
		T(p4_ring_bad_version),
		T(p4_ring_size_not_pow2),
		T(p4_ring_size_tiny),
		T(p4_ring_size_huge),
		T(p4_ring_file_size_mismatch),
		T(p4_ring_fd_read_only),
		T(p4_second_ring_offered),
		T(p4_oversized_control_packet),
		T(p4_short_control_packet),
		T(p4_data_on_control_channel),
		T(p4_five_fds_in_hello),
		T(p4_hello_without_ring_fd),
		T(p4_consumed_beyond_written),
		T(p4_consumed_more_than_ring_behind),
		T(p4_stall_before_hello),
		T(p4_shrink_ring_under_publisher),
	};

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("unit.rogue", tests, NULL, NULL);
}
