/*
 * rdma.rogue_verbs: a malicious RDMA publisher against a real muon
 * subscriber, on Soft-RoCE (test/rdma/run-vm.sh), in one process.
 *
 * The subscriber is a muon context with two static peers: this program's
 * rogue listener and a real muon publisher context (both in-process). The
 * rogue speaks the verbs transport with raw rdmacm and verbs: it accepts
 * the subscriber's connect request (struct muoni_vx_req), answers with its
 * credit word (struct muoni_vx_rep), exchanges HELLO over SEND, answers
 * SUBSCRIBE with a STREAM_INFO written into the subscriber's ring with
 * RDMA WRITE_WITH_IMM, and then, one case per connection, breaks the
 * protocol. For every case the subscriber must cut the connection
 * (proto_errors +1, the rogue's id sees DISCONNECTED, an IMAGE_DOWN with
 * MUON_DOWN_PROTOCOL when a stream was up), deliver nothing that the rogue
 * did not send as a good frame, and reconnect for the next case; the real
 * publisher's stream must keep arriving complete, in order and byte for
 * byte all along. Valid-stream cases in between (frames of 0 to
 * max_msg_size bytes, several per write, every lap boundary crossed) prove
 * that a good rogue stream still arrives byte for byte. Run the sanitizer
 * build (-DMUON_SANITIZE=ON) for out-of-bounds detection.
 *
 *   muon-rdma-rogue [-l] [SUBSTRING...]   list cases, or run those whose
 *                                         name contains one of SUBSTRINGs
 *
 * Environment: MUON_RDMA_ADDR (default 192.0.2.1), the address of the RDMA
 * device; MUON_ROGUE_DEADLINE_S (default 480), the overall deadline;
 * MUON_ROGUE_STRICT=1 makes known transport bugs (cases marked "known")
 * fail the test instead of being reported; MUON_ROGUE_DEBUG=1 prints every
 * log line of the muon contexts; MUON_ROGUE_REAL=tcp puts the real
 * publisher on tcp://127.0.0.1 instead of verbs (the default, where its
 * connection shares the subscriber's receive queue with the rogue's).
 *
 * The rogue shares the process's ibv_context with muon (librdmacm opens one
 * per device and process), so muon's async-event handler also sees events
 * of the rogue's queue pairs: the rogue leaves qp_context and cq_context
 * NULL, which that handler skips.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "core/muoni.h"
#include "transport/verbs/verbs.h"

#define TEST_NAME "rdma.rogue_verbs"

#define SUB_ID 0x0000000000000100ull   /* the subscriber under attack */
#define PUB_ID 0x7000000000000001ull   /* the real publisher */
#define ROGUE_ID 0x5000000000000005ull /* the rogue publisher */

#define TOPIC "rogue.t"
#define RING 65536u   /* the subscriber's ring_size (the minimum) */
#define MAXMSG 4096u  /* its max_msg_size */
#define RBUF_MUON 4096u /* muon's receive buffer (RBUF_LEN in verbs.c) */

#define NRECV 64u          /* rogue receive buffers */
#define RBUF 8192u         /* of this size */
#define NSLOT 32u          /* rogue send slots (one work request each) */
#define SLOT (RING + 8192u)
#define RECV_TAG (1ull << 32)

#define GLEN_MAX 16384u /* good frames per case at most */
#define WAIT_MS 30000u  /* any single wait (TCG and ASan are slow) */

/* ------------------------------------------------------------ failing */

static const char *g_case = "setup";

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						       noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s: case %s: ", TEST_NAME, g_case);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	/* No cleanup on failure: leak reports would only bury the reason. */
	_exit(1);
}

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond))                                               \
			fail(__VA_ARGS__);                                 \
	} while (0)

static void on_alarm(int sig)
{
	static const char m[] = "FAIL " TEST_NAME ": overall deadline "
				"passed (something hangs); last case: ";

	(void)sig;
	(void)!write(2, m, sizeof(m) - 1);
	(void)!write(2, g_case, strlen(g_case));
	(void)!write(2, "\n", 1);
	_exit(1);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Milliseconds since start, for debug lines. */
static double t_ms(void)
{
	static uint64_t t0;

	if (!t0)
		t0 = now_us();
	return (double)(now_us() - t0) / 1000.0;
}

/* ------------------------------------------------------------ payloads */

static uint8_t pat(uint32_t sid, uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + sid * 17u + (i >> 8) * 3u + 1u);
}

static size_t real_len(uint64_t seq)
{
	return (size_t)((seq * 2654435761u) >> 7) % 513u;
}

/* ------------------------------------------------------------ the muon side */

static struct {
	muon_ctx_t *sub, *pub;
	muon_pub_t *pump;
	muon_sub_t *s;
	bool debug;

	/* the real publisher's stream */
	bool pump_on;
	uint64_t pump_next_us;
	uint64_t real_sent;   /* last seq accepted by muon_publish */
	uint64_t real_expect; /* next seq the subscriber must see */
	uint64_t real_n;
	unsigned real_errors, real_loss, real_down;

	/* the rogue's stream of the current case */
	uint32_t rsid;
	uint64_t r_expect;
	uint64_t r_good_last; /* highest seq the rogue sent as a good frame */
	uint32_t glen[GLEN_MAX];
	uint64_t r_n;
	unsigned r_errors;
	unsigned r_up, r_down, r_loss;
	int r_down_reason;

	char last_warn[512]; /* why the subscriber last closed, or warned */
	bool known_hit;      /* the case's known bug showed */
} S;

static void sub_log(void *arg, muon_log_level_t lvl, const char *m)
{
	const char *who = arg;

	if (S.debug || (lvl <= MUON_LOG_WARN && !strcmp(who, "pub")))
		fprintf(stderr, "  %9.1f [%s L%d] %s\n", t_ms(), who, (int)lvl,
			m);
	/* Why the subscriber closed a connection; logged at DEBUG while it
	 * backs off, so taken at any level. */
	if (!strcmp(who, "sub") &&
	    (lvl <= MUON_LOG_WARN || strstr(m, ": closed: ")))
		snprintf(S.last_warn, sizeof(S.last_warn), "%s", m);
}

static void on_msg(void *arg, const muon_msg_t *m)
{
	size_t i;

	(void)arg;
	if (m->publisher_id == PUB_ID) {
		size_t want = real_len(m->seq);
		bool bad = m->seq != S.real_expect || m->len != want;

		for (i = 0; !bad && i < m->len; i++)
			bad = ((const uint8_t *)m->data)[i] != pat(0, m->seq, i);
		if (bad && S.real_errors++ < 5)
			fprintf(stderr, "  real stream: seq %llu (expected %llu), "
				"%zu bytes (want %zu) or payload wrong\n",
				(unsigned long long)m->seq,
				(unsigned long long)S.real_expect, m->len, want);
		S.real_expect = m->seq + 1;
		S.real_n++;
		return;
	}
	{
		bool bad = m->publisher_id != ROGUE_ID ||
			   m->stream_id != S.rsid || m->seq != S.r_expect ||
			   m->seq > S.r_good_last || m->seq >= GLEN_MAX ||
			   m->len != S.glen[m->seq % GLEN_MAX] ||
			   strcmp(m->topic, TOPIC);

		for (i = 0; !bad && i < m->len; i++)
			bad = ((const uint8_t *)m->data)[i] !=
			      pat(m->stream_id, m->seq, i);
		if (bad && S.r_errors++ < 5)
			fprintf(stderr, "  rogue stream: publisher %016llx "
				"stream %u seq %llu, %zu bytes: not a good frame "
				"the rogue sent (expected stream %u seq %llu of "
				"%u bytes, last good %llu)\n",
				(unsigned long long)m->publisher_id,
				m->stream_id, (unsigned long long)m->seq,
				m->len, S.rsid, (unsigned long long)S.r_expect,
				S.glen[S.r_expect % GLEN_MAX],
				(unsigned long long)S.r_good_last);
		S.r_expect = m->seq + 1;
		S.r_n++;
	}
}

static void on_event(void *arg, const muon_event_t *ev)
{
	bool real = ev->publisher_id == PUB_ID;

	(void)arg;
	if (S.debug)
		fprintf(stderr, "  %9.1f [event] type %d pub %016llx stream %u "
			"reason %d: %s\n", t_ms(), (int)ev->type,
			(unsigned long long)ev->publisher_id, ev->stream_id,
			ev->reason, ev->detail);
	switch (ev->type) {
	case MUON_EVENT_IMAGE_UP:
		if (!real && ev->stream_id == S.rsid)
			S.r_up++;
		break;
	case MUON_EVENT_IMAGE_DOWN:
		if (real) {
			S.real_down++;
		} else if (ev->stream_id == S.rsid) {
			S.r_down++;
			S.r_down_reason = ev->reason;
		}
		break;
	case MUON_EVENT_LOSS:
		if (real)
			S.real_loss++;
		else
			S.r_loss++;
		break;
	default:
		break;
	}
}

static muon_counters_t ctrs(void)
{
	muon_counters_t c;

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	CHECK(muon_ctx_counters(S.sub, &c) == 0, "muon_ctx_counters");
	return c;
}

static void pump(void)
{
	static uint8_t buf[600];
	uint64_t now, seq;
	size_t len, i;
	int64_t rc;

	if (!S.pump_on || (now = now_us()) < S.pump_next_us)
		return;
	S.pump_next_us = now + 3000;
	seq = S.real_sent + 1;
	len = real_len(seq);
	for (i = 0; i < len; i++)
		buf[i] = pat(0, seq, i);
	rc = muon_publish(S.pump, buf, len);
	if (rc == (int64_t)seq)
		S.real_sent = seq;
	else if (rc != MUON_EBACKPRESSURE)
		fail("real publisher: muon_publish returned %lld: %s",
		     (long long)rc, muon_errmsg());
}

static muon_ctx_t *mk_ctx(const char *name, uint64_t id, const char *listen,
			  const char *peers, const char *transport,
			  uint32_t hb_ms)
{
	muon_ctx_config_t c;
	muon_ctx_t *ctx = NULL;
	int rc;

	muon_ctx_config_init(&c);
	c.name = name;
	c.ctx_id = id;
	c.listen = listen;
	c.peers = peers;
	c.transport = transport;
	c.ring_size = RING;
	c.send_log_size = 1u << 20;
	c.max_msg_size = MAXMSG;
	c.reconnect_ms = 20;
	c.heartbeat_ms = hb_ms;
	c.peer_timeout_ms = 10000; /* also the handshake timeout */
	c.linger_ms = 200;
	c.ignore_env = 1;
	c.log_level = MUON_LOG_DEBUG;
	c.log_fn = sub_log;
	c.log_arg = (void *)name;
	rc = muon_ctx_create(&c, &ctx);
	CHECK(rc == 0, "muon_ctx_create %s: %s: %s", name, muon_strerror(rc),
	      muon_errmsg());
	return ctx;
}

/* ------------------------------------------------------------ the rogue */

enum { L_HANDSHAKE = 1, L_UP = 2, L_STREAM = 3 };

static struct {
	struct rdma_event_channel *ech;
	struct rdma_cm_id *lid;
	uint16_t port;
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	uint8_t *mem; /* receive buffers, then send slots */
	size_t mem_len;
	struct ibv_mr *mr;
	uint8_t *credit_page; /* the subscriber writes its position here */
	struct ibv_mr *cmr;
	uint32_t srq_depth; /* the subscriber's shared receive queue */

	/* a connect request not handled yet */
	struct rdma_cm_id *pend;
	struct muoni_vx_req pend_req;

	/* the connection of the current case */
	struct rdma_cm_id *id;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	bool established, disconnected, conn_error;
	uint64_t raddr;
	uint32_t rkey;
	uint64_t rcap;
	uint64_t wpos;
	bool slot_busy[NSLOT];
	unsigned next_slot;
	unsigned outstanding;
	int tx_status; /* first failed send completion */
	unsigned recv_flushed;
	bool got_credit, got_hello;
	unsigned got_subscribe, got_heartbeat, got_other;
	bool hello_sent;
	bool in_post;
	uint64_t hs_us;       /* our HELLO to their SUBSCRIBE */
	uint64_t hs_first_us; /* the same, of a handshake that failed */
	uint64_t last_hb_us;
	uint32_t sid;
	uint64_t next_seq;
} R;

static uint64_t credit_now(void)
{
	return __atomic_load_n((uint64_t *)(void *)R.credit_page,
			       __ATOMIC_ACQUIRE);
}

static void post_recv(unsigned i)
{
	struct ibv_sge sg = {.addr = (uintptr_t)(R.mem + (size_t)i * RBUF),
			     .length = RBUF,
			     .lkey = R.mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = RECV_TAG | i, .sg_list = &sg,
				 .num_sge = 1}, *bad;

	/* Fails once the queue pair is in error: nothing to receive then. */
	(void)ibv_post_recv(R.qp, &wr, &bad);
}

static void rx_msg(const uint8_t *p, uint32_t n)
{
	struct muoni_frame_hdr h;

	if (n < MUONI_FRAME_HDR_LEN) {
		R.got_other++;
		return;
	}
	memcpy(&h, p, sizeof(h));
	switch (h.type) {
	case MUONI_VX_FT_CREDIT:
		CHECK(n == MUONI_FRAME_HDR_LEN + sizeof(struct muoni_vx_mem) &&
		      h.len == n, "subscriber's CREDIT message of %u bytes", n);
		CHECK(!R.got_hello, "CREDIT after HELLO");
		R.got_credit = true;
		break;
	case MUONI_FT_HELLO: {
		struct muoni_hello m;

		CHECK(h.len == n && !muoni_dec_hello(p + 32, n - 32, &m),
		      "subscriber's HELLO does not decode");
		CHECK(m.ctx_id == SUB_ID && m.version == MUONI_PROTO_VERSION,
		      "subscriber's HELLO: ctx %016llx version %u",
		      (unsigned long long)m.ctx_id, m.version);
		CHECK(R.got_credit, "HELLO before CREDIT");
		R.got_hello = true;
		break;
	}
	case MUONI_FT_SUBSCRIBE: {
		struct muoni_subscribe m;

		CHECK(h.len == n && !muoni_dec_subscribe(p + 32, n - 32, &m),
		      "subscriber's SUBSCRIBE does not decode");
		CHECK(m.topic_len == strlen(TOPIC) && !strcmp(m.topic, TOPIC),
		      "SUBSCRIBE to '%s'", m.topic);
		R.got_subscribe++;
		break;
	}
	case MUONI_FT_HEARTBEAT:
		R.got_heartbeat++;
		break;
	default:
		R.got_other++;
		break;
	}
}

static int rogue_cq(void)
{
	struct ibv_wc wc[16];
	int n, i;

	if (!R.cq)
		return 0;
	n = ibv_poll_cq(R.cq, 16, wc);
	for (i = 0; i < n; i++) {
		if (wc[i].wr_id & RECV_TAG) {
			unsigned k = (unsigned)(wc[i].wr_id & 0xffffffffu);

			if (wc[i].status != IBV_WC_SUCCESS) {
				R.recv_flushed++;
				continue;
			}
			rx_msg(R.mem + (size_t)k * RBUF, wc[i].byte_len);
			post_recv(k);
			continue;
		}
		R.slot_busy[wc[i].wr_id % NSLOT] = false;
		R.outstanding--;
		if (wc[i].status != IBV_WC_SUCCESS && !R.tx_status) {
			R.tx_status = wc[i].status;
			if (S.debug)
				fprintf(stderr, "  %9.1f [rogue] send failed: "
					"%s\n", t_ms(),
					ibv_wc_status_str(wc[i].status));
		}
	}
	return n > 0 ? n : 0;
}

static void reject_destroy(struct rdma_cm_id *id)
{
	(void)rdma_reject(id, NULL, 0);
	rdma_destroy_id(id);
}

static int rogue_cm(void)
{
	struct rdma_cm_event *ev;
	int n = 0;

	while (!rdma_get_cm_event(R.ech, &ev)) {
		enum rdma_cm_event_type type = ev->event;
		struct rdma_cm_id *id = ev->id;
		struct muoni_vx_req req;
		size_t pdl = 0;

		memset(&req, 0, sizeof(req));
		if (type == RDMA_CM_EVENT_CONNECT_REQUEST &&
		    ev->param.conn.private_data) {
			pdl = ev->param.conn.private_data_len;
			memcpy(&req, ev->param.conn.private_data,
			       pdl < sizeof(req) ? pdl : sizeof(req));
		}
		rdma_ack_cm_event(ev);
		n++;
		if (S.debug)
			fprintf(stderr, "  %9.1f [rogue] %s\n", t_ms(),
				rdma_event_str(type));
		if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
			CHECK(pdl >= sizeof(req) &&
			      req.version == MUONI_VX_VERSION &&
			      req.len == sizeof(req) && !req.flags,
			      "connect request: %zu bytes of private data, "
			      "version %u, length %u, flags %u", pdl,
			      req.version, req.len, req.flags);
			CHECK(req.ring_size == RING && req.ctx_id == SUB_ID &&
			      req.ring_addr,
			      "connect request: ring of %u bytes, ctx %016llx",
			      req.ring_size, (unsigned long long)req.ctx_id);
			/* The subscriber retries if we are slow: keep the
			 * newest request. */
			if (R.pend)
				reject_destroy(R.pend);
			R.pend = id;
			R.pend_req = req;
			continue;
		}
		if (id != R.id || !R.id)
			continue; /* an earlier case's connection */
		switch (type) {
		case RDMA_CM_EVENT_ESTABLISHED:
			R.established = true;
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
			R.disconnected = true;
			break;
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
			R.conn_error = true;
			break;
		default:
			break;
		}
	}
	return n;
}

static void rogue_send_raw(const void *p, uint32_t len);

static void rogue_heartbeat(void)
{
	uint8_t buf[MUONI_FRAME_HDR_LEN];
	uint64_t now;

	if (!R.qp || !R.hello_sent || R.disconnected || R.tx_status ||
	    R.in_post || R.outstanding >= NSLOT / 2)
		return;
	now = now_us();
	if (now - R.last_hb_us < 150000)
		return;
	R.last_hb_us = now;
	muoni_enc_simple(buf, sizeof(buf), MUONI_FT_HEARTBEAT, 0, 0);
	rogue_send_raw(buf, sizeof(buf));
}

/* One round of everything: both muon contexts, the real publisher's pump,
 * the rogue's events and completions. Never blocks. */
static void step(void)
{
	int rc, w = 0;

	rc = muon_ctx_poll(S.sub, 0);
	CHECK(rc >= 0, "subscriber: muon_ctx_poll: %s: %s", muon_strerror(rc),
	      muon_errmsg());
	w += rc;
	rc = muon_ctx_poll(S.pub, 0);
	CHECK(rc >= 0, "publisher: muon_ctx_poll: %s: %s", muon_strerror(rc),
	      muon_errmsg());
	w += rc;
	pump();
	w += rogue_cm();
	w += rogue_cq();
	rogue_heartbeat();
	/* Two emulated CPUs run rxe's kernel work too: do not hog them. */
	if (!w)
		usleep(50);
}

#define WAIT(ms, cond, ...)                                                \
	do {                                                               \
		uint64_t dl_ = now_us() + (uint64_t)(ms) * 1000u;          \
		while (!(cond)) {                                          \
			if (now_us() > dl_)                                \
				fail(__VA_ARGS__);                         \
			step();                                            \
		}                                                          \
	} while (0)

static void poll_for(unsigned ms)
{
	uint64_t dl = now_us() + (uint64_t)ms * 1000u;

	while (now_us() < dl)
		step();
}

static unsigned slot_get(void)
{
	unsigned k = R.next_slot++ % NSLOT;

	WAIT(WAIT_MS, !R.slot_busy[k], "rogue: send slot %u never completed "
	     "(%u outstanding)", k, R.outstanding);
	return k;
}

/* Post one work request from a send slot: SEND (roff ignored), or an RDMA
 * WRITE[_WITH_IMM] of `len` bytes at ring offset `roff` with key `rkey`.
 * Returns false if the queue pair refused it (already in error). */
static bool post(enum ibv_wr_opcode op, const void *p, uint32_t len,
		 uint64_t roff, uint32_t rkey, uint32_t imm)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sg;
	unsigned k;

	CHECK(len <= SLOT, "rogue: %u bytes do not fit a slot", len);
	R.in_post = true;
	k = slot_get();
	R.in_post = false;
	if (len)
		memcpy(R.mem + (size_t)NRECV * RBUF + (size_t)k * SLOT, p, len);
	sg.addr = (uintptr_t)(R.mem + (size_t)NRECV * RBUF + (size_t)k * SLOT);
	sg.length = len;
	sg.lkey = R.mr->lkey;
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = k;
	wr.opcode = op;
	wr.sg_list = len ? &sg : NULL;
	wr.num_sge = len ? 1 : 0;
	wr.send_flags = IBV_SEND_SIGNALED;
	if (op != IBV_WR_SEND) {
		wr.wr.rdma.remote_addr = R.raddr + roff;
		wr.wr.rdma.rkey = rkey;
	}
	if (op == IBV_WR_RDMA_WRITE_WITH_IMM)
		wr.imm_data = htobe32(imm);
	if (ibv_post_send(R.qp, &wr, &bad))
		return false;
	R.slot_busy[k] = true;
	R.outstanding++;
	return true;
}

static void rogue_send_raw(const void *p, uint32_t len)
{
	(void)post(IBV_WR_SEND, p, len, 0, 0, 0);
}

/* A SEND the connection must still take (set-up, staging). */
static void rogue_send(const void *p, uint32_t len)
{
	CHECK(post(IBV_WR_SEND, p, len, 0, 0, 0), "rogue: ibv_post_send");
}

/* WRITE_WITH_IMM of `len` bytes at ring offset `roff` saying position
 * `imm_pos` (bytes; the immediate is imm_pos / 8). */
static void write_at(const void *p, uint32_t len, uint64_t roff,
		     uint64_t imm_pos)
{
	CHECK(post(IBV_WR_RDMA_WRITE_WITH_IMM, p, len, roff, R.rkey,
		   (uint32_t)(imm_pos >> 3)),
	      "rogue: ibv_post_send (write)");
}

/* Write frames the way muon's publisher does: at the write position, or at
 * the start of the next lap if they do not fit before the ring's end, once
 * the subscriber's credit word says there is room. */
static void ring_put(const void *p, uint32_t len)
{
	uint64_t w = R.wpos, off = w & (R.rcap - 1), pos, need;

	need = muoni_align8_64(len);
	pos = off + need > R.rcap ? w + (R.rcap - off) : w;
	WAIT(WAIT_MS, pos + need - credit_now() <= R.rcap,
	     "rogue: no ring space (write position %llu, credit %llu)",
	     (unsigned long long)pos, (unsigned long long)credit_now());
	write_at(p, len, pos & (R.rcap - 1), pos);
	R.wpos = pos + need;
}

/* ------------------------------------------------------------ frames */

static uint8_t fbuf[SLOT];

/* A DATA frame at buf; `evil` fills the payload with bytes that no good
 * frame has. Returns its length padded to 8. */
static uint32_t mk_data(uint8_t *buf, uint32_t sid, uint64_t seq,
			uint32_t plen, bool evil)
{
	struct muoni_frame_hdr h;
	uint32_t i, len = MUONI_FRAME_HDR_LEN + plen;

	muoni_frame_hdr_init(&h, MUONI_FT_DATA, len, sid, seq);
	memcpy(buf, &h, sizeof(h));
	for (i = 0; i < plen; i++)
		buf[32 + i] = evil ? 0xee : pat(sid, seq, i);
	memset(buf + len, 0, muoni_align8(len) - len);
	return muoni_align8(len);
}

/* The next good frame: recorded first, so the callback can check it. */
static uint32_t mk_good(uint8_t *buf, uint32_t plen)
{
	uint64_t seq = R.next_seq++;

	CHECK(seq < GLEN_MAX, "too many good frames in one case");
	S.glen[seq] = plen;
	S.r_good_last = seq;
	return mk_data(buf, R.sid, seq, plen, false);
}

/* A header-only frame (any type, any len claimed). */
static uint32_t mk_hdr(uint8_t *buf, uint16_t type, uint32_t len)
{
	struct muoni_frame_hdr h;

	muoni_frame_hdr_init(&h, type, len, R.sid, R.next_seq);
	memcpy(buf, &h, sizeof(h));
	return MUONI_FRAME_HDR_LEN;
}

static void good_frames(unsigned n, uint32_t plen)
{
	unsigned i;

	for (i = 0; i < n; i++)
		ring_put(fbuf, mk_good(fbuf, plen));
}

static void send_hello(uint32_t version, uint64_t id, uint32_t trunc)
{
	struct muoni_hello m = {.version = version, .ctx_id = id};
	uint8_t buf[128];
	size_t n;

	snprintf(m.name, sizeof(m.name), "rogue");
	n = muoni_enc_hello(buf, sizeof(buf), &m);
	if (trunc) {
		struct muoni_frame_hdr h;

		memcpy(&h, buf, sizeof(h));
		h.len = trunc;
		memcpy(buf, &h, sizeof(h));
		n = trunc;
	}
	rogue_send(buf, (uint32_t)n);
}

static uint32_t mk_stream_info(uint8_t *buf, uint32_t sid, uint64_t pub)
{
	return (uint32_t)muoni_enc_stream_info(buf, 512, sid, 1, pub, 1, TOPIC,
					       strlen(TOPIC));
}

static uint32_t mk_mem(uint8_t *buf, uint16_t type, uint32_t hlen,
		       uint64_t addr, uint32_t rkey, uint32_t size)
{
	struct muoni_vx_mem m = {.addr = addr, .rkey = rkey, .size = size};
	struct muoni_frame_hdr h;

	muoni_frame_hdr_init(&h, type, hlen, 0, 0);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &m, sizeof(m));
	return MUONI_FRAME_HDR_LEN + sizeof(m);
}

/* ------------------------------------------------------------ connections */

static void rogue_teardown(void)
{
	if (!R.id)
		return;
	if (!R.disconnected)
		(void)rdma_disconnect(R.id);
	if (R.qp)
		rdma_destroy_qp(R.id);
	if (R.cq)
		ibv_destroy_cq(R.cq);
	rdma_destroy_id(R.id);
	R.id = NULL;
	R.qp = NULL;
	R.cq = NULL;
	R.hello_sent = false;
}

static void conn_reset(void)
{
	memset(R.slot_busy, 0, sizeof(R.slot_busy));
	R.outstanding = 0;
	R.tx_status = 0;
	R.recv_flushed = 0;
	R.established = R.disconnected = R.conn_error = false;
	R.got_credit = R.got_hello = R.hello_sent = false;
	R.got_subscribe = R.got_heartbeat = R.got_other = 0;
	R.wpos = 0;
	R.last_hb_us = 0;
	memset(R.credit_page, 0, 8);
}

/* Take the subscriber's next connect request: our own queue pair, then
 * accept with the credit word. True once ESTABLISHED. */
static bool rogue_accept(void)
{
	struct ibv_qp_init_attr qa;
	struct rdma_conn_param cp;
	struct muoni_vx_rep rep;
	uint64_t dl;
	unsigned i;

	WAIT(WAIT_MS, R.pend, "the subscriber did not connect to the rogue "
	     "(static peer, reconnect_ms 20)");
	conn_reset();
	R.id = R.pend;
	R.pend = NULL;
	CHECK(R.id->verbs == R.verbs, "connection on another device context");
	R.raddr = R.pend_req.ring_addr;
	R.rkey = R.pend_req.ring_rkey;
	R.rcap = R.pend_req.ring_size;
	R.cq = ibv_create_cq(R.verbs, 2 * (NSLOT + NRECV), NULL, NULL, 0);
	CHECK(R.cq, "rogue: ibv_create_cq: %s", strerror(errno));
	memset(&qa, 0, sizeof(qa));
	qa.qp_context = NULL; /* muon's async handler reads this */
	qa.send_cq = R.cq;
	qa.recv_cq = R.cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = NSLOT + 4;
	qa.cap.max_recv_wr = NRECV;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	CHECK(!rdma_create_qp(R.id, R.pd, &qa), "rogue: rdma_create_qp: %s",
	      strerror(errno));
	R.qp = R.id->qp;
	for (i = 0; i < NRECV; i++)
		post_recv(i);
	memset(&rep, 0, sizeof(rep));
	rep.version = MUONI_VX_VERSION;
	rep.len = sizeof(rep);
	rep.credit_rkey = R.cmr->rkey;
	rep.ctx_id = ROGUE_ID;
	rep.credit_addr = (uintptr_t)R.credit_page;
	memset(&cp, 0, sizeof(cp));
	cp.private_data = &rep;
	cp.private_data_len = sizeof(rep);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.retry_count = 7;
	cp.rnr_retry_count = 7;
	if (rdma_accept(R.id, &cp)) {
		rogue_teardown();
		return false;
	}
	dl = now_us() + 10000000u;
	while (!R.established && !R.conn_error && !R.disconnected &&
	       now_us() < dl)
		step();
	if (!R.established) {
		/* A request the subscriber had already given up on. */
		rogue_teardown();
		return false;
	}
	return true;
}

/* Up to `level`. `hs_retry`: a handshake the subscriber gives up on (its
 * handshake timeout) is measured in R.hs_us and retried once. */
static void rogue_connect(int level, bool hs_retry)
{
	unsigned tries = 0;

	for (;;) {
		while (!rogue_accept())
			CHECK(++tries < 5, "no connection came up in 5 attempts");
		WAIT(WAIT_MS, R.got_credit && R.got_hello, "no CREDIT and HELLO "
		     "from the subscriber (credit %d, hello %d)", R.got_credit,
		     R.got_hello);
		if (level < L_UP)
			return;
		send_hello(MUONI_PROTO_VERSION, ROGUE_ID, 0);
		R.hello_sent = true;
		R.hs_us = now_us();
		if (S.debug)
			fprintf(stderr, "  %9.1f [rogue] HELLO sent\n", t_ms());
		WAIT(WAIT_MS, R.got_subscribe || (hs_retry && R.disconnected),
		     "no SUBSCRIBE within %u s of our HELLO", WAIT_MS / 1000);
		R.hs_us = now_us() - R.hs_us;
		if (R.got_subscribe)
			break;
		fprintf(stderr, "  %s: the subscriber gave up on the handshake "
			"after %.1f s: %s\n", g_case, (double)R.hs_us / 1e6,
			S.last_warn);
		rogue_teardown();
		R.hs_first_us = R.hs_us;
		hs_retry = false;
	}
	if (level < L_STREAM)
		return;
	ring_put(fbuf, mk_stream_info(fbuf, R.sid, ROGUE_ID));
	WAIT(WAIT_MS, S.r_up, "no IMAGE_UP for the rogue's stream %u", R.sid);
	good_frames(3, 100);
	WAIT(WAIT_MS, S.r_n == 3, "the first 3 good frames did not arrive "
	     "(%llu)", (unsigned long long)S.r_n);
}

/* ------------------------------------------------------------ attacks */

/* Valid streams: frames of 0..MAXMSG bytes, 1 to 4 per write, many laps,
 * one write ending exactly at the ring's end. */
static void a_good(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull ^ R.sid;
	unsigned i, k, nf = 400;
	bool exact = false;

	for (i = 0; i < nf;) {
		uint32_t len = 0, n = 1 + (unsigned)(x >> 60) % 4;
		uint64_t off = R.wpos & (R.rcap - 1);

		uint64_t rem = R.rcap - off;

		if (!exact && i > nf / 2 && rem >= 32 && rem <= 32 + MAXMSG) {
			/* fill the lap to its last byte */
			len = mk_good(fbuf, (uint32_t)rem - 32);
			exact = true;
			i++;
		} else if (!exact && i > nf / 2 && rem > 32 + MAXMSG) {
			/* close in on the lap's end: leave 2 KiB, or less
			 * than a maximal frame's worth */
			uint64_t pl = rem - 32 - 2048;

			len = mk_good(fbuf, pl > MAXMSG ? MAXMSG
							: (uint32_t)pl & ~7u);
			i++;
		} else {
			for (k = 0; k < n && i < nf; k++, i++) {
				uint32_t pl;

				x = x * 6364136223846793005ull +
				    1442695040888963407ull;
				pl = (uint32_t)(x >> 33) % (MAXMSG + 1);
				if (i % 17 == 0)
					pl = 0;
				else if (i % 23 == 0)
					pl = MAXMSG;
				len += mk_good(fbuf + len, pl);
			}
		}
		ring_put(fbuf, len);
	}
	CHECK(exact, "the stream never ended a write at the ring's end");
	WAIT(WAIT_MS, S.r_n == S.r_good_last,
	     "good stream: %llu of %llu frames arrived",
	     (unsigned long long)S.r_n, (unsigned long long)S.r_good_last);
	CHECK(R.wpos > 4 * R.rcap, "good stream: only %llu bytes written",
	      (unsigned long long)R.wpos);
}

static void a_good_short(void)
{
	good_frames(20, 300);
	WAIT(WAIT_MS, S.r_n == S.r_good_last, "good frames: %llu of %llu "
	     "arrived", (unsigned long long)S.r_n,
	     (unsigned long long)S.r_good_last);
}

static void evil_at(uint64_t roff, uint64_t imm_pos)
{
	write_at(fbuf, mk_data(fbuf, R.sid, R.next_seq, 32, true), roff,
		 imm_pos);
}

static void a_imm_ahead(void)
{
	evil_at(R.wpos & (R.rcap - 1), R.wpos + 64);
}

static void a_imm_behind(void)
{
	evil_at(R.wpos & (R.rcap - 1), R.wpos - 64);
}

static void a_imm_two_laps(void)
{
	evil_at(R.wpos & (R.rcap - 1), R.wpos + 2 * R.rcap);
}

/* At ring position 0 the reader cannot be asked to skip to the next lap. */
static void a_imm_lap_at_zero(void)
{
	write_at(fbuf, mk_stream_info(fbuf, R.sid, ROGUE_ID), 0, R.rcap);
}

static void a_imm_not_lap(void)
{
	/* Skips to position rcap + 8 instead of the next lap's start. */
	evil_at(8, (R.wpos | (R.rcap - 1)) + 1 + 8);
}

static void a_len_zero(void)
{
	write_at(NULL, 0, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_len_short(void)
{
	mk_data(fbuf, R.sid, R.next_seq, 32, true);
	write_at(fbuf, 16, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_len_unaligned_stray(void)
{
	/* A 40-byte good frame, then 17 stray bytes. */
	uint32_t n = mk_good(fbuf, 8);

	memset(fbuf + n, 0xee, 17);
	write_at(fbuf, n + 17, R.wpos & (R.rcap - 1), R.wpos);
}

/* The whole ring, starting at offset 0, said to start at the write
 * position: more bytes than are left before the end. */
static void a_len_past_end(void)
{
	memset(fbuf, 0xee, R.rcap);
	mk_data(fbuf, R.sid, R.next_seq, 32, true);
	write_at(fbuf, (uint32_t)R.rcap, 0, R.wpos);
}

/* A lap skip, then more than a whole ring. The RDMA write itself stays in
 * the ring (the memory region would refuse it otherwise). */
static void a_len_lap_full_plus(void)
{
	memset(fbuf, 0xee, R.rcap);
	mk_data(fbuf, R.sid, R.next_seq, 32, true);
	write_at(fbuf, (uint32_t)R.rcap - 8, 8, R.wpos);
}

static void a_hdr_len_over_write(void)
{
	mk_data(fbuf, R.sid, R.next_seq, 32, true);
	((struct muoni_frame_hdr *)(void *)fbuf)->len = 200;
	write_at(fbuf, 64, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_hdr_len_below_hdr(void)
{
	mk_hdr(fbuf, MUONI_FT_DATA, 16);
	write_at(fbuf, 32, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_hdr_len_zero(void)
{
	mk_hdr(fbuf, MUONI_FT_DATA, 0);
	memset(fbuf + 32, 0, 32);
	write_at(fbuf, 64, R.wpos & (R.rcap - 1), R.wpos);
}

static void type_in_ring(uint16_t type)
{
	mk_hdr(fbuf, type, 32);
	write_at(fbuf, 32, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_type_unknown(void) { type_in_ring(99); }
static void a_type_zero(void) { type_in_ring(0); }
static void a_type_pad(void) { type_in_ring(MUONI_FT_PAD); }
static void a_type_heartbeat(void) { type_in_ring(MUONI_FT_HEARTBEAT); }

static void a_type_transport(void)
{
	uint32_t n = mk_mem(fbuf, MUONI_VX_FT_RING, 48, R.raddr, R.rkey, RING);

	write_at(fbuf, n, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_type_hello(void)
{
	struct muoni_hello m = {.version = MUONI_PROTO_VERSION,
				.ctx_id = ROGUE_ID};
	size_t n = muoni_enc_hello(fbuf, 128, &m);

	write_at(fbuf, (uint32_t)n, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_type_subscribe(void)
{
	size_t n = muoni_enc_subscribe(fbuf, 512, TOPIC, strlen(TOPIC), 0, 0,
				       NULL, 0);

	write_at(fbuf, (uint32_t)n, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_data_over_max(void)
{
	uint32_t n = mk_data(fbuf, R.sid, R.next_seq, MAXMSG + 1, true);

	write_at(fbuf, n, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_data_huge_len(void)
{
	mk_data(fbuf, R.sid, R.next_seq, 32, true);
	((struct muoni_frame_hdr *)(void *)fbuf)->len = 0xfffffff8u;
	write_at(fbuf, 64, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_data_len_wraps(void)
{
	/* len - 32 wraps to a small number if computed carelessly */
	mk_data(fbuf, R.sid, R.next_seq, 32, true);
	((struct muoni_frame_hdr *)(void *)fbuf)->len = 0xffffffffu;
	write_at(fbuf, 64, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_good_then_bad(void)
{
	uint32_t n = mk_good(fbuf, 64);

	n += mk_good(fbuf + n, 0);
	n += mk_hdr(fbuf + n, 99, 32);
	write_at(fbuf, n, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_good_then_huge(void)
{
	uint32_t n = mk_good(fbuf, 8);

	mk_data(fbuf + n, R.sid, R.next_seq, 32, true);
	((struct muoni_frame_hdr *)(void *)(fbuf + n))->len = 1u << 30;
	write_at(fbuf, n + 64, R.wpos & (R.rcap - 1), R.wpos);
}

/* Set-up L_HANDSHAKE: the ring is known from the connect request, but the
 * handshake is not done. */
static void a_write_before_hello(void)
{
	write_at(fbuf, mk_data(fbuf, 7, 1, 32, true), 0, 0);
}

/* L_UP: data for a stream never announced. */
static void a_data_unknown_stream(void)
{
	write_at(fbuf, mk_data(fbuf, 4242, 1, 32, true), 0, 0);
}

static void a_stream_info_impostor(void)
{
	/* announces a stream of the real publisher's context */
	write_at(fbuf, mk_stream_info(fbuf, R.sid, PUB_ID), 0, 0);
}

static void a_stream_info_topic_overrun(void)
{
	uint32_t n = mk_stream_info(fbuf, R.sid, ROGUE_ID);
	uint16_t tl = 200;

	memcpy(fbuf + 32 + 16, &tl, 2);
	write_at(fbuf, n, 0, 0);
}

static void a_stream_info_seq_zero(void)
{
	uint32_t n = (uint32_t)muoni_enc_stream_info(fbuf, 512, R.sid, 0,
						     ROGUE_ID, 0, TOPIC,
						     strlen(TOPIC));

	write_at(fbuf, n, 0, 0);
}

static void a_loss_backwards(void)
{
	uint32_t n = (uint32_t)muoni_enc_loss(fbuf, 64, R.sid, R.next_seq,
					      R.next_seq - 2);

	write_at(fbuf, n, R.wpos & (R.rcap - 1), R.wpos);
}

static void a_stream_end_unknown(void)
{
	uint32_t n = (uint32_t)muoni_enc_simple(fbuf, 64, MUONI_FT_STREAM_END,
						R.sid + 1000, 1);

	write_at(fbuf, n, R.wpos & (R.rcap - 1), R.wpos);
}

/* A sequence already delivered: dropped and counted, not fatal. */
static void a_seq_replay(void)
{
	uint32_t n = mk_data(fbuf, R.sid, 2, 100, false);

	write_at(fbuf, n, R.wpos & (R.rcap - 1), R.wpos);
	R.wpos += n;
}

/* Outside the memory the subscriber registered. */
static void a_write_outside_ring(void)
{
	mk_data(fbuf, R.sid, R.next_seq, 32, true);
	(void)post(IBV_WR_RDMA_WRITE_WITH_IMM, fbuf, 64, R.rcap - 8, R.rkey,
		   (uint32_t)(R.wpos >> 3));
}

static void a_write_bad_rkey(void)
{
	mk_data(fbuf, R.sid, R.next_seq, 32, true);
	(void)post(IBV_WR_RDMA_WRITE_WITH_IMM, fbuf, 64,
		   R.wpos & (R.rcap - 1), R.rkey ^ 0x5a5a00u,
		   (uint32_t)(R.wpos >> 3));
}

/* SENDs on the control channel */

static void a_send_oversize(void)
{
	memset(fbuf, 0, RBUF_MUON + 904);
	mk_hdr(fbuf, MUONI_FT_HEARTBEAT, RBUF_MUON + 904);
	rogue_send_raw(fbuf, RBUF_MUON + 904);
}

static void a_send_exactly_rbuf_bad(void)
{
	/* the largest SEND that fits, with a frame claiming one byte more */
	memset(fbuf, 0, RBUF_MUON);
	mk_hdr(fbuf, MUONI_FT_UNSUBSCRIBE, RBUF_MUON + 1);
	rogue_send(fbuf, RBUF_MUON);
}

static void a_send_short(void)
{
	mk_hdr(fbuf, MUONI_FT_HEARTBEAT, 32);
	rogue_send(fbuf, 16);
}

static void a_send_empty(void)
{
	rogue_send(NULL, 0);
}

static void a_send_hdr_claims_more(void)
{
	mk_hdr(fbuf, MUONI_FT_HEARTBEAT, 64);
	rogue_send(fbuf, 32);
}

static void a_send_hdr_claims_less(void)
{
	mk_hdr(fbuf, MUONI_FT_HEARTBEAT, 32);
	memset(fbuf + 32, 0, 32);
	rogue_send(fbuf, 64);
}

static void a_send_close_truncated(void)
{
	mk_hdr(fbuf, MUONI_FT_CLOSE, 32);
	rogue_send(fbuf, 32);
}

static void a_send_unsubscribe_truncated(void)
{
	size_t n = muoni_enc_unsubscribe(fbuf, 512, TOPIC, strlen(TOPIC));
	uint16_t tl = 250; /* topic longer than the frame */

	memcpy(fbuf + 32, &tl, 2);
	rogue_send(fbuf, (uint32_t)n);
}

static void a_send_hello_truncated(void)
{
	send_hello(MUONI_PROTO_VERSION, ROGUE_ID, 40);
}

static void a_send_hello_version(void)
{
	send_hello(MUONI_PROTO_VERSION + 1, ROGUE_ID, 0);
}

static void a_send_hello_again(void)
{
	send_hello(MUONI_PROTO_VERSION, ROGUE_ID, 0);
}

static void a_send_before_hello(void)
{
	size_t n = muoni_enc_unsubscribe(fbuf, 512, TOPIC, strlen(TOPIC));

	rogue_send(fbuf, (uint32_t)n);
}

static void a_send_subscribe_no_ring(void)
{
	size_t n = muoni_enc_subscribe(fbuf, 512, TOPIC, strlen(TOPIC), 0, 0,
				       NULL, 0);

	rogue_send(fbuf, (uint32_t)n);
}

static void a_send_data(void)
{
	rogue_send(fbuf, mk_data(fbuf, R.sid, R.next_seq, 32, true));
}

static void a_send_stream_info(void)
{
	rogue_send(fbuf, mk_stream_info(fbuf, R.sid + 1, ROGUE_ID));
}

static void a_send_unknown_type(void)
{
	mk_hdr(fbuf, 99, 32);
	rogue_send(fbuf, 32);
}

static void a_send_ring_bad_size(void)
{
	rogue_send(fbuf, mk_mem(fbuf, MUONI_VX_FT_RING, 48, 0x1000, 1, 1000));
}

static void a_send_ring_huge(void)
{
	rogue_send(fbuf, mk_mem(fbuf, MUONI_VX_FT_RING, 48, 0x1000, 1,
				1u << 31));
}

static void a_send_ring_bad_len(void)
{
	mk_mem(fbuf, MUONI_VX_FT_RING, 40, 0x1000, 1, RING);
	rogue_send(fbuf, 40);
}

static void a_send_ring_twice(void)
{
	uint32_t n = mk_mem(fbuf, MUONI_VX_FT_RING, 48, 0x1000, 1, RING);

	rogue_send(fbuf, n);
	rogue_send(fbuf, n);
}

static void a_send_credit(void)
{
	rogue_send(fbuf, mk_mem(fbuf, MUONI_VX_FT_CREDIT, 48, 0x1000, 1, 8));
}

/*
 * A RING message of header only (32 bytes) whose header claims the full
 * 48. The 16 bytes the receiver then reads are whatever an earlier message
 * left in that receive buffer. First every buffer of the subscriber's
 * shared receive queue gets a valid UNSUBSCRIBE whose (unchecked) padding
 * makes those bytes a well-formed ring {addr, rkey, size 64 KiB}; then the
 * short RING. A receiver that checks the bytes it received rejects it at
 * once; one that reads stale bytes takes the stale ring and only fails on
 * the valid RING sent after it ("unexpected RING").
 */
static void a_send_ring_header_only(void)
{
	uint8_t u[48];
	struct muoni_frame_hdr h;
	uint16_t tl = 4;
	uint32_t size = RING, i, n = 2 * R.srq_depth + 64;
	muon_counters_t c0 = ctrs();

	muoni_frame_hdr_init(&h, MUONI_FT_UNSUBSCRIBE, sizeof(u), 0, 0);
	memcpy(u, &h, sizeof(h));
	memset(u + 32, 0, 16);
	memcpy(u + 32, &tl, 2);          /* topic length 4 ... */
	memcpy(u + 32 + 2, "\x11\x22\x33\x44\x55\x66", 6); /* addr bytes */
	memcpy(u + 40, "junk", 4);       /* ... the topic, and the rkey */
	memcpy(u + 44, &size, 4);        /* topic padding: the ring size */
	S.pump_on = false; /* its writes would consume receives too */
	for (i = 0; i < n; i++) {
		rogue_send(u, sizeof(u));
		if (R.disconnected)
			break;
	}
	WAIT(WAIT_MS, !R.outstanding || R.disconnected,
	     "staging UNSUBSCRIBEs did not complete");
	poll_for(50);
	CHECK(ctrs().proto_errors == c0.proto_errors && !R.disconnected,
	      "the subscriber refused a valid UNSUBSCRIBE (staging)");
	mk_mem(fbuf, MUONI_VX_FT_RING, 48, 0, 0, 0);
	rogue_send(fbuf, 32);
	poll_for(300);
	S.pump_on = true;
	if (!R.disconnected && ctrs().proto_errors == c0.proto_errors) {
		fprintf(stderr, "  %s: the 32-byte RING message was accepted; "
			"a valid RING now must be refused as unexpected\n",
			g_case);
		rogue_send(fbuf, mk_mem(fbuf, MUONI_VX_FT_RING, 48, 0x1000, 1,
					RING));
		/* the case's verdict: see KNOWN below */
		S.last_warn[0] = '\0';
		WAIT(WAIT_MS, R.disconnected, "the second RING was taken too");
		fprintf(stderr, "  %s: then: %s\n", g_case, S.last_warn);
		S.known_hit = true;
	}
}

/* ------------------------------------------------------------ cases */

enum expect {
	EX_GOOD = 1,   /* no error; every good frame arrives byte for byte */
	EX_PROTO = 2,  /* proto_errors +1, cut off, IMAGE_DOWN PROTOCOL */
	EX_CLOSE = 3,  /* cut off (the transport does not call it protocol) */
	EX_DROP = 4,   /* proto_errors +1, frame dropped, connection stays */
};

struct rcase {
	const char *name;
	int level;
	enum expect expect;
	void (*attack)(void);
	const char *what;
	/* A known transport bug this case shows (it sets S.known_hit when it
	 * does): reported, not fatal unless MUON_ROGUE_STRICT=1. */
	const char *known;
	unsigned accept_delay_ms; /* before taking the connect request */
};

#define CASE(name, level, expect, attack, what)                          \
	{name, level, expect, attack, what, NULL, 0}

static const struct rcase cases[] = {
	CASE("good_stream_first", L_STREAM, EX_GOOD, a_good,
	 "400 frames of 0..4096 bytes, 1-4 per write, over many laps"),
	/* immediates */
	CASE("imm_ahead", L_STREAM, EX_PROTO, a_imm_ahead,
	 "immediate 64 bytes past the write position"),
	CASE("imm_behind", L_STREAM, EX_PROTO, a_imm_behind,
	 "immediate 64 bytes before the write position"),
	CASE("imm_two_laps", L_STREAM, EX_PROTO, a_imm_two_laps,
	 "immediate two laps ahead"),
	CASE("imm_lap_skip_at_zero", L_UP, EX_PROTO, a_imm_lap_at_zero,
	 "lap skip claimed at ring position 0"),
	CASE("imm_lap_skip_plus_8", L_STREAM, EX_PROTO, a_imm_not_lap,
	 "immediate 8 bytes past the next lap's start"),
	/* byte_len */
	CASE("len_zero", L_STREAM, EX_PROTO, a_len_zero,
	 "WRITE_WITH_IMM of 0 bytes"),
	CASE("len_below_header", L_STREAM, EX_PROTO, a_len_short,
	 "WRITE_WITH_IMM of 16 bytes"),
	CASE("len_stray_tail", L_STREAM, EX_PROTO, a_len_unaligned_stray,
	 "a good frame, then 17 stray bytes"),
	CASE("len_past_ring_end", L_STREAM, EX_PROTO, a_len_past_end,
	 "byte_len of a whole ring at a position past 0"),
	CASE("len_lap_full", L_STREAM, EX_PROTO, a_len_lap_full_plus,
	 "byte_len of a ring less 8, at offset 8"),
	/* frame headers */
	CASE("hdr_len_over_write", L_STREAM, EX_PROTO, a_hdr_len_over_write,
	 "frame len 200 in a 64-byte write"),
	CASE("hdr_len_below_header", L_STREAM, EX_PROTO, a_hdr_len_below_hdr,
	 "frame len 16"),
	CASE("hdr_len_zero", L_STREAM, EX_PROTO, a_hdr_len_zero, "frame len 0"),
	CASE("type_unknown", L_STREAM, EX_PROTO, a_type_unknown,
	 "frame type 99"),
	CASE("type_zero", L_STREAM, EX_PROTO, a_type_zero, "frame type 0"),
	CASE("type_transport_ring", L_STREAM, EX_PROTO, a_type_transport,
	 "transport RING message (type 64) in the ring"),
	CASE("type_hello_in_ring", L_STREAM, EX_PROTO, a_type_hello,
	 "HELLO control frame in the ring"),
	CASE("type_subscribe_in_ring", L_STREAM, EX_PROTO, a_type_subscribe,
	 "SUBSCRIBE control frame in the ring"),
	CASE("type_heartbeat_in_ring", L_STREAM, EX_PROTO, a_type_heartbeat,
	 "HEARTBEAT control frame in the ring"),
	CASE("type_pad", L_STREAM, EX_PROTO, a_type_pad, "PAD frame in the ring"),
	CASE("data_over_max", L_STREAM, EX_PROTO, a_data_over_max,
	 "DATA of max_msg_size + 1 bytes"),
	CASE("data_huge_len", L_STREAM, EX_PROTO, a_data_huge_len,
	 "DATA claiming 0xfffffff8 bytes"),
	CASE("data_len_ffffffff", L_STREAM, EX_PROTO, a_data_len_wraps,
	 "DATA claiming 0xffffffff bytes"),
	CASE("good_then_bad_type", L_STREAM, EX_PROTO, a_good_then_bad,
	 "two good frames, then type 99, in one write"),
	CASE("good_then_huge", L_STREAM, EX_PROTO, a_good_then_huge,
	 "a good frame, then one claiming 1 GiB, in one write"),
	CASE("good_stream_middle", L_STREAM, EX_GOOD, a_good,
	 "the same valid stream again"),
	/* stream control */
	CASE("write_before_hello", L_HANDSHAKE, EX_PROTO, a_write_before_hello,
	 "RDMA write into the ring before the HELLO exchange"),
	CASE("data_unknown_stream", L_UP, EX_PROTO, a_data_unknown_stream,
	 "DATA for a stream never announced"),
	CASE("stream_info_impostor", L_UP, EX_PROTO, a_stream_info_impostor,
	 "STREAM_INFO naming the real publisher's context"),
	CASE("stream_info_topic_overrun", L_UP, EX_PROTO,
	 a_stream_info_topic_overrun, "STREAM_INFO topic longer than its frame"),
	CASE("stream_info_seq_zero", L_UP, EX_PROTO, a_stream_info_seq_zero,
	 "STREAM_INFO starting at sequence 0"),
	CASE("loss_backwards", L_STREAM, EX_PROTO, a_loss_backwards,
	 "LOSS whose end is before its start"),
	CASE("stream_end_unknown", L_STREAM, EX_PROTO, a_stream_end_unknown,
	 "STREAM_END for an unknown stream"),
	CASE("seq_replay", L_STREAM, EX_DROP, a_seq_replay,
	 "DATA repeating an earlier sequence (dropped, counted)"),
	/* memory the subscriber never gave */
	CASE("write_outside_ring", L_STREAM, EX_CLOSE, a_write_outside_ring,
	 "RDMA write running 56 bytes past the ring's memory region"),
	CASE("write_bad_rkey", L_STREAM, EX_CLOSE, a_write_bad_rkey,
	 "RDMA write with a wrong rkey"),
	/* the control channel */
	CASE("send_oversize", L_UP, EX_CLOSE, a_send_oversize,
	 "SEND of 5000 bytes, above the 4096-byte receive buffers"),
	CASE("send_rbuf_frame_longer", L_UP, EX_PROTO, a_send_exactly_rbuf_bad,
	 "SEND of 4096 bytes whose frame claims 4097"),
	CASE("send_below_header", L_UP, EX_PROTO, a_send_short, "SEND of 16 bytes"),
	CASE("send_empty", L_UP, EX_PROTO, a_send_empty, "SEND of 0 bytes"),
	CASE("send_frame_longer", L_UP, EX_PROTO, a_send_hdr_claims_more,
	 "HEARTBEAT claiming 64 bytes in a 32-byte SEND"),
	CASE("send_frame_shorter", L_UP, EX_PROTO, a_send_hdr_claims_less,
	 "HEARTBEAT claiming 32 bytes in a 64-byte SEND"),
	CASE("send_close_truncated", L_UP, EX_PROTO, a_send_close_truncated,
	 "CLOSE without its payload"),
	CASE("send_unsubscribe_overrun", L_UP, EX_PROTO,
	 a_send_unsubscribe_truncated, "UNSUBSCRIBE topic longer than the frame"),
	CASE("send_hello_truncated", L_HANDSHAKE, EX_PROTO, a_send_hello_truncated,
	 "HELLO of 8 payload bytes"),
	CASE("send_hello_version", L_HANDSHAKE, EX_PROTO, a_send_hello_version,
	 "HELLO of protocol version 2"),
	CASE("send_hello_again", L_UP, EX_PROTO, a_send_hello_again,
	 "a second HELLO"),
	CASE("send_before_hello", L_HANDSHAKE, EX_PROTO, a_send_before_hello,
	 "UNSUBSCRIBE before the HELLO exchange"),
	CASE("send_subscribe_no_ring", L_UP, EX_PROTO, a_send_subscribe_no_ring,
	 "SUBSCRIBE from a side that gave no ring"),
	CASE("send_data", L_STREAM, EX_PROTO, a_send_data,
	 "DATA frame on the control channel"),
	CASE("send_stream_info", L_UP, EX_PROTO, a_send_stream_info,
	 "STREAM_INFO on the control channel"),
	CASE("send_unknown_type", L_UP, EX_PROTO, a_send_unknown_type,
	 "frame type 99 on the control channel"),
	CASE("send_ring_bad_size", L_UP, EX_PROTO, a_send_ring_bad_size,
	 "RING (type 64) of 1000 bytes"),
	CASE("send_ring_2gib", L_UP, EX_PROTO, a_send_ring_huge,
	 "RING (type 64) of 2 GiB"),
	CASE("send_ring_bad_len", L_UP, EX_PROTO, a_send_ring_bad_len,
	 "RING (type 64) message of 40 bytes"),
	CASE("send_ring_twice", L_UP, EX_PROTO, a_send_ring_twice,
	 "two valid RING messages"),
	CASE("send_credit", L_UP, EX_PROTO, a_send_credit,
	 "CREDIT (type 65) to the connecting side"),
	{"send_ring_header_only", L_UP, EX_PROTO, a_send_ring_header_only,
	 "RING of 32 bytes claiming 48 (stale receive-buffer bytes)",
	 "rx_ctrl() hands RING/CREDIT messages to rx_mem() without checking "
	 "that the SEND carried the 48 bytes the header claims", 0},
	{"slow_accept", L_STREAM, EX_GOOD, a_good_short,
	 "the publisher accepts 2.5 s after the request (a restart)",
	 "with no receiving verbs connection left on the device, nothing "
	 "polls or arms its receive CQ (ch_cb() since 719c67c): the "
	 "publisher's HELLO waits for a zombie reap or the handshake timeout",
	 2500},
	CASE("good_stream_last", L_STREAM, EX_GOOD, a_good,
	 "the same valid stream, last"),
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static bool strict;
static unsigned n_known;

/* The subscriber closed a connection (the rogue's) since `c`. */
static bool closed_since(const muon_counters_t *c)
{
	muon_counters_t x = ctrs();

	return x.disconnects + x.connect_failures >
	       c->disconnects + c->connect_failures;
}

static void run_case(const struct rcase *c, unsigned idx)
{
	muon_counters_t c0, c1, c2;
	uint64_t real0, t0 = now_us();
	bool stream = c->level >= L_STREAM;

	g_case = c->name;
	R.sid = 100 + idx;
	R.next_seq = 1;
	S.rsid = R.sid;
	S.r_expect = 1;
	S.r_good_last = 0;
	S.r_n = 0;
	S.r_errors = 0;
	S.r_up = S.r_down = S.r_loss = 0;
	S.r_down_reason = 0;
	S.known_hit = false;
	c0 = ctrs();
	real0 = S.real_n;

	R.hs_first_us = 0;
	if (c->accept_delay_ms)
		poll_for(c->accept_delay_ms);
	rogue_connect(c->level, c->accept_delay_ms > 0);
	if (c->accept_delay_ms && (R.hs_first_us || R.hs_us > 1500000u)) {
		/* milliseconds when the device's CQ is polled or armed */
		fprintf(stderr, "  %s: our HELLO was answered after %.1f s%s\n",
			c->name, (double)R.hs_us / 1e6,
			R.hs_first_us ? " on the second connection" : "");
		S.known_hit = true;
	}
	c1 = ctrs();
	CHECK(c1.proto_errors == c0.proto_errors, "set-up caused %llu "
	      "protocol errors", (unsigned long long)(c1.proto_errors -
						      c0.proto_errors));
	CHECK(!R.disconnected, "the subscriber closed during set-up: %s",
	      S.last_warn);
	S.last_warn[0] = '\0';

	c->attack();

	switch (c->expect) {
	case EX_GOOD:
		poll_for(100);
		CHECK(ctrs().proto_errors == c1.proto_errors && !R.disconnected,
		      "a valid stream was refused: %s", S.last_warn);
		rogue_teardown();
		if (stream)
			WAIT(WAIT_MS, S.r_down, "no IMAGE_DOWN after the rogue "
			     "disconnected");
		CHECK(S.r_down_reason == MUON_DOWN_DISCONNECTED,
		      "IMAGE_DOWN reason %d, expected DISCONNECTED",
		      S.r_down_reason);
		break;
	case EX_PROTO:
	case EX_CLOSE:
		WAIT(WAIT_MS, R.disconnected,
		     "not detected: the subscriber did not cut the rogue off "
		     "within %u s (proto_errors +%llu)", WAIT_MS / 1000,
		     (unsigned long long)(ctrs().proto_errors -
					  c1.proto_errors));
		if (stream)
			WAIT(WAIT_MS, S.r_down, "no IMAGE_DOWN for the rogue's "
			     "stream");
		break;
	case EX_DROP:
		poll_for(200);
		CHECK(ctrs().proto_errors == c1.proto_errors + 1,
		      "proto_errors +%llu, expected +1",
		      (unsigned long long)(ctrs().proto_errors -
					   c1.proto_errors));
		CHECK(!R.disconnected, "the connection was closed: %s",
		      S.last_warn);
		good_frames(2, 33);
		WAIT(WAIT_MS, S.r_n == S.r_good_last, "good frames after the "
		     "dropped one did not arrive");
		rogue_teardown();
		WAIT(WAIT_MS, S.r_down, "no IMAGE_DOWN");
		break;
	}
	/* Whatever the rogue did: its connection is gone on our side. */
	WAIT(WAIT_MS, closed_since(&c1), "the subscriber still counts the "
	     "rogue's connection as up");
	c2 = ctrs();
	rogue_teardown();

	if (c->expect == EX_PROTO) {
		CHECK(c2.proto_errors >= c1.proto_errors + 1,
		      "cut off, but proto_errors did not move (%s)",
		      S.last_warn);
		CHECK(c2.proto_errors == c1.proto_errors + 1,
		      "proto_errors +%llu, expected +1",
		      (unsigned long long)(c2.proto_errors - c1.proto_errors));
		if (stream)
			CHECK(S.r_down_reason == MUON_DOWN_PROTOCOL,
			      "IMAGE_DOWN reason %d, expected PROTOCOL (%d)",
			      S.r_down_reason, MUON_DOWN_PROTOCOL);
	}
	CHECK(!S.r_errors, "%u frames delivered that the rogue did not send "
	      "as good (or corrupted)", S.r_errors);
	CHECK(S.r_n == S.r_good_last, "%llu of the %llu good frames arrived",
	      (unsigned long long)S.r_n, (unsigned long long)S.r_good_last);
	CHECK(!S.r_loss, "loss events on the rogue's stream");
	/* Still alive and still serving the real publisher. */
	WAIT(WAIT_MS, S.real_n > real0 + 2, "the real publisher's stream "
	     "stopped (%llu messages, %u errors)",
	     (unsigned long long)S.real_n, S.real_errors);
	CHECK(!S.real_errors && !S.real_loss && !S.real_down,
	      "the real stream suffered: %u errors, %u losses, %u downs",
	      S.real_errors, S.real_loss, S.real_down);

	if (S.known_hit) {
		n_known++;
		printf("KNOWN %-26s %s: passed, but shows a known transport "
		       "bug: %s\n", c->name, c->what, c->known);
		CHECK(!strict, "known transport bug (MUON_ROGUE_STRICT=1): %s",
		      c->known);
	} else {
		printf("ok    %-26s %s: proto_errors +%llu, %llu good frames; "
		       "%.0f ms%s%s\n", c->name, c->what,
		       (unsigned long long)(c2.proto_errors - c1.proto_errors),
		       (unsigned long long)S.r_n,
		       (double)(now_us() - t0) / 1000.0,
		       S.last_warn[0] ? "\n        subscriber: " : "",
		       S.last_warn);
	}
	fflush(stdout);
}

/* ------------------------------------------------------------ set-up */

static void rogue_init(const char *addr)
{
	struct addrinfo hints, *res = NULL;
	struct ibv_device_attr da;
	int rc;

	R.ech = rdma_create_event_channel();
	if (!R.ech) {
		fprintf(stderr, "FAIL %s: rdma_create_event_channel: %s: this "
			"test needs an RDMA device (the Soft-RoCE VM: "
			"test/rdma/run-vm.sh, docs/rdma-vm.md)\n", TEST_NAME,
			strerror(errno));
		exit(1);
	}
	rc = fcntl(R.ech->fd, F_GETFL);
	CHECK(rc >= 0 && !fcntl(R.ech->fd, F_SETFL, rc | O_NONBLOCK),
	      "O_NONBLOCK");
	CHECK(!rdma_create_id(R.ech, &R.lid, NULL, RDMA_PS_TCP),
	      "rdma_create_id: %s", strerror(errno));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	CHECK(!getaddrinfo(addr, "0", &hints, &res) && res, "address %s", addr);
	if (rdma_bind_addr(R.lid, res->ai_addr)) {
		fprintf(stderr, "FAIL %s: rdma_bind_addr %s: %s: no RDMA device "
			"has that address; run in the Soft-RoCE VM "
			"(test/rdma/run-vm.sh, docs/rdma-vm.md) or set "
			"MUON_RDMA_ADDR\n", TEST_NAME, addr, strerror(errno));
		exit(1);
	}
	freeaddrinfo(res);
	CHECK(!rdma_listen(R.lid, 16), "rdma_listen: %s", strerror(errno));
	R.port = ntohs(rdma_get_src_port(R.lid));
	R.verbs = R.lid->verbs;
	CHECK(R.verbs && R.port, "listener has no device or port");
	CHECK(!ibv_query_device(R.verbs, &da), "ibv_query_device");
	R.srq_depth = da.max_srq_wr > 0 && da.max_srq_wr < 1024
			      ? (uint32_t)da.max_srq_wr : 1024;
	R.pd = ibv_alloc_pd(R.verbs);
	CHECK(R.pd, "ibv_alloc_pd: %s", strerror(errno));
	R.mem_len = (size_t)NRECV * RBUF + (size_t)NSLOT * SLOT;
	R.mem = mmap(NULL, R.mem_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	R.credit_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(R.mem != MAP_FAILED && R.credit_page != MAP_FAILED, "mmap");
	R.mr = ibv_reg_mr(R.pd, R.mem, R.mem_len, IBV_ACCESS_LOCAL_WRITE);
	R.cmr = ibv_reg_mr(R.pd, R.credit_page, 4096,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	CHECK(R.mr && R.cmr, "ibv_reg_mr: %s", strerror(errno));
}

static void rogue_fini(void)
{
	rogue_teardown();
	if (R.pend)
		reject_destroy(R.pend);
	ibv_dereg_mr(R.mr);
	ibv_dereg_mr(R.cmr);
	ibv_dealloc_pd(R.pd);
	munmap(R.mem, R.mem_len);
	munmap(R.credit_page, 4096);
	rdma_destroy_id(R.lid);
	rdma_destroy_event_channel(R.ech);
}

static bool selected(const char *name, int argc, char **argv)
{
	int i;

	if (argc < 2)
		return true;
	for (i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const char *addr = getenv("MUON_RDMA_ADDR");
	const char *dls = getenv("MUON_ROGUE_DEADLINE_S");
	const char *real = getenv("MUON_ROGUE_REAL");
	char ep[128], peers[300];
	muon_sub_config_t sc;
	muon_counters_t cf;
	unsigned i, n_run = 0;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "-l")) {
		for (i = 0; i < N_CASES; i++)
			printf("%-26s %s\n", cases[i].name, cases[i].what);
		return 0;
	}
	if (!addr || !*addr)
		addr = "192.0.2.1";
	S.debug = getenv("MUON_ROGUE_DEBUG") &&
		  strcmp(getenv("MUON_ROGUE_DEBUG"), "0");
	strict = getenv("MUON_ROGUE_STRICT") &&
		 strcmp(getenv("MUON_ROGUE_STRICT"), "0");
	signal(SIGALRM, on_alarm);
	alarm(dls && atoi(dls) > 0 ? (unsigned)atoi(dls) : 480);

	if (!real || !*real)
		real = "verbs";
	CHECK(!strcmp(real, "verbs") || !strcmp(real, "tcp"),
	      "MUON_ROGUE_REAL=%s: want verbs or tcp", real);
	rogue_init(addr);
	if (!strcmp(real, "tcp"))
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:0");
	else
		snprintf(ep, sizeof(ep), "verbs://%s:0", addr);
	S.pub = mk_ctx("pub", PUB_ID, ep, NULL, real, 1000);
	CHECK(muon_ctx_listen_endpoint(S.pub, 0, ep, sizeof(ep)) == 0,
	      "publisher endpoint");
	rc = muon_pub_create(S.pub, TOPIC, NULL, &S.pump);
	CHECK(rc == 0, "muon_pub_create: %s", muon_errmsg());
	snprintf(peers, sizeof(peers), "verbs://%s:%u,%s", addr,
		 (unsigned)R.port, ep);
	printf("rogue listens on verbs://%s:%u, real publisher on %s\n", addr,
	       (unsigned)R.port, ep);
	S.sub = mk_ctx("sub", SUB_ID, NULL, peers, "auto", 200);
	muon_sub_config_init(&sc);
	sc.msg_fn = on_msg;
	sc.event_fn = on_event;
	rc = muon_sub_create(S.sub, TOPIC, &sc, &S.s);
	CHECK(rc == 0, "muon_sub_create: %s", muon_errmsg());
	S.real_expect = 1;

	/* The real stream first: subscribed, and flowing. */
	WAIT(WAIT_MS, muon_pub_subscribers(S.pump) == 1,
	     "the subscriber never subscribed to the real publisher");
	S.pump_on = true;
	WAIT(WAIT_MS, S.real_n >= 5, "the real stream does not flow");

	for (i = 0; i < N_CASES; i++) {
		if (!selected(cases[i].name, argc, argv))
			continue;
		run_case(&cases[i], i);
		n_run++;
	}
	g_case = "end";
	CHECK(n_run, "no case matches");

	/* The real stream, complete: everything published arrives. */
	S.pump_on = false;
	WAIT(WAIT_MS, S.real_expect == S.real_sent + 1,
	     "the real stream stopped at %llu of %llu",
	     (unsigned long long)S.real_expect - 1,
	     (unsigned long long)S.real_sent);
	CHECK(!S.real_errors && !S.real_loss && !S.real_down,
	      "the real stream: %u errors, %u losses, %u downs", S.real_errors,
	      S.real_loss, S.real_down);
	cf = ctrs();
	printf("%u cases passed, %u of them showing a known transport bug; "
	       "subscriber: %llu protocol errors, %llu connects, %llu "
	       "disconnects, %llu connect failures; real stream: %llu "
	       "messages, complete\n", n_run, n_known,
	       (unsigned long long)cf.proto_errors,
	       (unsigned long long)cf.connects,
	       (unsigned long long)cf.disconnects,
	       (unsigned long long)cf.connect_failures,
	       (unsigned long long)S.real_n);

	muon_sub_destroy(S.s);
	muon_ctx_destroy(S.sub);
	muon_ctx_destroy(S.pub);
	rogue_fini();
	alarm(0);
	return 0;
}
