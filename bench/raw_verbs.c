/*
 * muon-bench: the bare RDMA ping-pong and stream that muon's verbs
 * transport is measured against, written with nothing but librdmacm and
 * libibverbs and set up the way muon sets up its own connections:
 *
 *   - rdma_cm connection (RDMA_PS_TCP: resolve address and route, connect;
 *     listen and accept), the private data of the connect and of the accept
 *     carrying the sender's receive ring (address, rkey and size) and how
 *     many writes with immediate it can take unconsumed;
 *   - one RC QP per side with separate send and receive CQs and a shared
 *     receive queue whose receives are refilled in batches;
 *   - each side owns a receive ring registered LOCAL_WRITE | REMOTE_WRITE;
 *     a message is one RDMA WRITE_WITH_IMM of --size bytes into the peer's
 *     ring at a rolling position, the position in imm_data, sent inline
 *     when it fits the QP's max_inline_data, signalled every 16th send
 *     (the send CQ is polled only to reclaim send queue slots);
 *   - the receiver busy-polls its receive CQ, checks position, length and
 *     the round-trip counter, copies the payload out and answers;
 *   - the ping ends the run with a zero-length write whose immediate has
 *     RAW_VERBS_END set (positions never do) and the number of round trips
 *     in the other bits.
 *
 * The stream (throughput) is described in its section below; the
 * fan-out is that stream to bench_subs(o) consumers, one connection each
 * (each with all of the above), the producer posting every group of
 * messages to each connection in turn.
 *
 * The two sides are two threads of this process, not two processes as in
 * the shm and tcp baselines: librdmacm keeps the RDMA devices it opened for
 * the life of the process, and a forked child would share those with its
 * parent (which has run muon's own verbs ping-pong by then). The threads
 * share nothing on the data path: each has its own rdma_cm id and event
 * channel, PD, CQs, SRQ, QP and memory, and they talk only through the
 * device, as two processes would. The pong thread is pinned to the pong
 * CPU (consumer i to bench_cpu_of(o, 1 + i), the producer, this thread, to
 * bench_cpu_of(o, 0) for the run); either side notices within a few
 * thousand spins that the other gave up.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"
#include "raw.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <rdma/rdma_cma.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SIGNAL_EVERY 16      /* selective signalling: 1 send in 16 */
#define SQ_DEPTH 64          /* send WRs: 4 signalled batches */
#define SRQ_DEPTH 256        /* receives posted at most */
#define FLOW_SQ_DEPTH 512    /* throughput: send WRs in flight at most */
#define FLOW_SRQ_DEPTH 4096  /* throughput: receives of the consumer */
#define FLOW_CHAIN 32        /* throughput: WRs per ibv_post_send */
#define SRQ_BATCH 32         /* refilled this many at a time */
#define INLINE_WANT 256      /* max_inline_data asked for */
#define RING_MIN (8u << 20)  /* muon's default ring_size */
#define SLOT_ALIGN 64        /* messages start on cache lines */
#define RESOLVE_MS 2000      /* rdma_resolve_addr / rdma_resolve_route */
#define MIN_RNR_TIMER 6      /* 0.08 ms, as muon sets it */
#define CM_SLICE_MS 100      /* poll() slice of rdma_cm event waits */
#define RAW_VERBS_END 0x80000000u /* in imm_data: the end marker */
#define RAW_VERBS_FIRST 0x40000000u /* and: the first timed message */

/* The private data of connect and accept: the sender's receive ring, and
 * how many writes with immediate it can take unconsumed (receives posted,
 * less one refill batch). Big-endian on the wire. */
struct ring_info {
	uint64_t addr;
	uint32_t rkey;
	uint32_t size;
	uint32_t window;
};

struct vside {
	const struct bench_opts *o;
	const char *who;            /* "ping" or "pong" */
	const _Atomic int *abort;   /* the other side gave up */
	struct rdma_event_channel *ch;
	int ch_borrowed;            /* the listener's: not ours to destroy */
	struct rdma_cm_id *listen_id; /* ping only */
	struct rdma_cm_id *id;      /* the connection */
	struct ibv_pd *pd;
	struct ibv_cq *scq, *rcq;
	struct ibv_srq *srq;
	struct ibv_mr *ring_mr, *buf_mr;
	unsigned char *ring;        /* ours; the peer writes into it */
	unsigned char *buf;         /* payload out; a reply is copied here */
	uint32_t ring_size;
	unsigned sq_depth;          /* send WRs; the send CQ's size */
	unsigned srq_depth;         /* receives; the receive CQ's size */
	unsigned buf_slots;         /* send buffers, one per WR in flight */
	size_t buf_len;
	uint32_t stride;            /* --size rounded up to SLOT_ALIGN */
	uint32_t max_inline;        /* the QP's, as created */
	int qp;                     /* rdma_create_qp succeeded */
	uint64_t peer_addr;         /* the peer's ring */
	uint32_t peer_rkey, peer_size;
	uint32_t peer_window;       /* writes it can take unconsumed */
	uint32_t peer_pos;          /* where our next write goes */
	uint32_t my_pos;            /* where the peer's next write lands */
	uint64_t nsent;
	uint64_t consumed;          /* producer: what the consumer credited */
	uint64_t window;            /* producer: writes it can take unconsumed */
	unsigned sq_used;           /* send WRs posted, not yet reclaimed */
	unsigned srq_used;          /* receives consumed since last refill */
	struct ibv_sge sge;
	struct ibv_send_wr wr;
	struct ibv_recv_wr rwr[SRQ_BATCH]; /* one chain, posted whole */
};

struct raw_verbs;

/* A connecting side, in a thread of its own: the pong, or a consumer. */
struct vcons {
	struct raw_verbs *r;
	unsigned index;               /* consumer i runs on CPU
					 bench_cpu_of(o, 1 + i) */
	struct vside v;
	struct raw_rx rx;             /* a consumer's figures */
	pthread_t thread;
};

struct raw_verbs {
	const struct bench_opts *o;
	struct sockaddr_storage addr; /* --addr; the port is the listener's */
	_Atomic int ping_failed;
	_Atomic int pong_failed;      /* the pong, or any consumer */
	int flow;                     /* throughput or fanout */
	unsigned n;                   /* connections: fanout's subscribers,
					 else 1 */
	/* Per connection: the listening side's end (ping[0] listens; the
	 * others share its event channel) and the connecting side. */
	struct vside *ping;
	struct vcons *pong;
};

/* ------------------------------------------------------------ messages */

static void v_errno(const struct vside *v, const char *call)
{
	fprintf(stderr, "%s: raw verbs: %s: %s failed: %s\n", BENCH_PROG,
		v->who, call, strerror(errno));
}

/* For calls that return the error number instead of setting errno. */
static void v_err(const struct vside *v, const char *call, int err)
{
	fprintf(stderr, "%s: raw verbs: %s: %s failed: %s\n", BENCH_PROG,
		v->who, call, strerror(err));
}

static void v_msg(const struct vside *v, const char *msg)
{
	fprintf(stderr, "%s: raw verbs: %s: %s\n", BENCH_PROG, v->who, msg);
}

static int aborted(const struct vside *v)
{
	return atomic_load_explicit(v->abort, memory_order_acquire) != 0;
}

/* ------------------------------------------------------------- rdma_cm */

/*
 * Wait up to BENCH_TIMEOUT_NS for the next event on our channel, in poll()
 * slices so that the other side giving up is noticed; 0 and the event
 * (to be acked) when it is `want`, -1 after saying what came instead.
 */
static int cm_wait(struct vside *v, enum rdma_cm_event_type want,
		   struct rdma_cm_event **out)
{
	uint64_t deadline = bench_now_ns() + BENCH_TIMEOUT_NS;
	struct pollfd pfd = { .fd = v->ch->fd, .events = POLLIN };
	struct rdma_cm_event *ev;

	for (;;) {
		int n = poll(&pfd, 1, CM_SLICE_MS);

		if (n > 0)
			break;
		if (n < 0 && errno != EINTR) {
			v_errno(v, "poll (rdma_cm event channel)");
			return -1;
		}
		if (aborted(v))
			return -1;
		if (bench_now_ns() >= deadline) {
			fprintf(stderr, "%s: raw verbs: %s: timed out after "
				"%llu s waiting for the rdma_cm event %s\n",
				BENCH_PROG, v->who,
				BENCH_TIMEOUT_NS / 1000000000ull,
				rdma_event_str(want));
			return -1;
		}
	}
	if (rdma_get_cm_event(v->ch, &ev) != 0) {
		v_errno(v, "rdma_get_cm_event");
		return -1;
	}
	if (ev->event != want) {
		/* status: a negative errno, or for REJECTED the CM's reason.
		 * A side that gave up said why; its reject is no news. */
		if (!aborted(v))
			fprintf(stderr, "%s: raw verbs: %s: waiting for the "
				"rdma_cm event %s, got %s (status %d%s%s)\n",
				BENCH_PROG, v->who, rdma_event_str(want),
				rdma_event_str(ev->event), ev->status,
				ev->status < 0 ? ": " : "",
				ev->status < 0 ? strerror(-ev->status) : "");
		rdma_ack_cm_event(ev);
		return -1;
	}
	*out = ev;
	return 0;
}

static int cm_wait_ack(struct vside *v, enum rdma_cm_event_type want)
{
	struct rdma_cm_event *ev;

	if (cm_wait(v, want, &ev) != 0)
		return -1;
	rdma_ack_cm_event(ev);
	return 0;
}

static int read_ring_info(struct vside *v, const struct rdma_conn_param *p)
{
	struct ring_info ri;

	if (!p->private_data || p->private_data_len < sizeof(ri)) {
		fprintf(stderr, "%s: raw verbs: %s: the peer's private data "
			"has %u bytes, not the %zu of a ring description\n",
			BENCH_PROG, v->who, p->private_data_len, sizeof(ri));
		return -1;
	}
	memcpy(&ri, p->private_data, sizeof(ri));
	v->peer_addr = be64toh(ri.addr);
	v->peer_rkey = be32toh(ri.rkey);
	v->peer_size = be32toh(ri.size);
	v->peer_window = be32toh(ri.window);
	if (v->peer_size < v->o->size) {
		fprintf(stderr, "%s: raw verbs: %s: the peer's ring has %u "
			"bytes, too small for %zu-byte messages\n", BENCH_PROG,
			v->who, v->peer_size, v->o->size);
		return -1;
	}
	return 0;
}

static void conn_param(const struct vside *v, struct ring_info *ri,
		       struct rdma_conn_param *p)
{
	ri->addr = htobe64((uint64_t)(uintptr_t)v->ring);
	ri->rkey = htobe32(v->ring_mr->rkey);
	ri->size = htobe32(v->ring_size);
	ri->window = htobe32(v->srq_depth - SRQ_BATCH);
	memset(p, 0, sizeof(*p));
	p->private_data = ri;
	p->private_data_len = sizeof(*ri);
	p->responder_resources = 1;
	p->initiator_depth = 1;
	p->retry_count = 7;
	p->rnr_retry_count = 7;
}

/* As muon does; Soft-RoCE may refuse it, which changes nothing here. */
static void set_min_rnr_timer(struct vside *v)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.min_rnr_timer = MIN_RNR_TIMER;
	(void)ibv_modify_qp(v->id->qp, &a, IBV_QP_MIN_RNR_TIMER);
}

/* ----------------------------------------------------------- resources */

static uint32_t ring_bytes(size_t size)
{
	uint64_t p = RING_MIN;

	/* muon keeps max_msg_size <= ring_size / 4 */
	while (p < 4 * (uint64_t)size)
		p <<= 1;
	return (uint32_t)p;
}

static void *map_bytes(struct vside *v, size_t len, const char *what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "%s: raw verbs: %s: mmap of the %zu-byte %s "
			"failed: %s\n", BENCH_PROG, v->who, len, what,
			strerror(errno));
		return NULL;
	}
	return p;
}

static int post_recv_batch(struct vside *v)
{
	struct ibv_recv_wr *bad;
	int rc = ibv_post_srq_recv(v->srq, v->rwr, &bad);

	if (rc != 0) {
		v_err(v, "ibv_post_srq_recv", rc);
		return -1;
	}
	return 0;
}

static int create_qp(struct vside *v)
{
	struct ibv_qp_init_attr qa;
	uint32_t want = INLINE_WANT;

	for (;;) {
		memset(&qa, 0, sizeof(qa));
		qa.send_cq = v->scq;
		qa.recv_cq = v->rcq;
		qa.srq = v->srq;
		qa.qp_type = IBV_QPT_RC;
		qa.sq_sig_all = 0;
		qa.cap.max_send_wr = v->sq_depth;
		qa.cap.max_send_sge = 1;
		qa.cap.max_inline_data = want;
		if (rdma_create_qp(v->id, v->pd, &qa) == 0)
			break;
		/* A device with less inline room refuses the QP: ask for
		 * less, down to none, before giving up. */
		if (want == 0) {
			v_errno(v, "rdma_create_qp");
			return -1;
		}
		want = want > 64 ? 64 : 0;
	}
	v->qp = 1;
	v->max_inline = qa.cap.max_inline_data;
	return 0;
}

/* The depths asked for, within what the device allows. */
static int fit_device(struct vside *v, struct ibv_context *dev)
{
	struct ibv_device_attr a;
	int rc = ibv_query_device(dev, &a);

	if (rc != 0) {
		v_err(v, "ibv_query_device", rc);
		return -1;
	}
	if (a.max_qp_wr > 0 && v->sq_depth > (unsigned)a.max_qp_wr)
		v->sq_depth = (unsigned)a.max_qp_wr;
	if (a.max_srq_wr > 0 && v->srq_depth > (unsigned)a.max_srq_wr)
		v->srq_depth = (unsigned)a.max_srq_wr;
	if (a.max_cqe > 0 && v->sq_depth > (unsigned)a.max_cqe)
		v->sq_depth = (unsigned)a.max_cqe;
	if (a.max_cqe > 0 && v->srq_depth > (unsigned)a.max_cqe)
		v->srq_depth = (unsigned)a.max_cqe;
	/* Whole refill batches; whole signalled runs of sends. */
	v->srq_depth -= v->srq_depth % SRQ_BATCH;
	v->sq_depth -= v->sq_depth % SIGNAL_EVERY;
	if (v->srq_depth < SRQ_BATCH || v->sq_depth < SIGNAL_EVERY) {
		v_msg(v, "the device allows too few work requests");
		return -1;
	}
	if (v->buf_slots > v->sq_depth)
		v->buf_slots = v->sq_depth;
	return 0;
}

/* Everything a side needs on its connected (or connecting) id. */
static int side_resources(struct vside *v)
{
	struct ibv_context *dev = v->id->verbs;
	struct ibv_srq_init_attr sa;
	const size_t size = v->o->size;

	if (fit_device(v, dev) != 0)
		return -1;
	v->ring_size = ring_bytes(size);
	v->stride = (uint32_t)((size + SLOT_ALIGN - 1) &
			       ~(size_t)(SLOT_ALIGN - 1));
	if (!v->stride)
		v->stride = SLOT_ALIGN;
	v->buf_len = (size_t)v->buf_slots * v->stride;
	v->pd = ibv_alloc_pd(dev);
	if (!v->pd) {
		v_errno(v, "ibv_alloc_pd");
		return -1;
	}
	v->ring = map_bytes(v, v->ring_size, "receive ring");
	if (!v->ring)
		return -1;
	v->buf = map_bytes(v, v->buf_len, "send buffer");
	if (!v->buf)
		return -1;
	memset(v->buf, 0xa5, v->buf_len);
	v->ring_mr = ibv_reg_mr(v->pd, v->ring, v->ring_size,
				IBV_ACCESS_LOCAL_WRITE |
				IBV_ACCESS_REMOTE_WRITE);
	if (!v->ring_mr) {
		v_errno(v, "ibv_reg_mr (receive ring)");
		return -1;
	}
	v->buf_mr = ibv_reg_mr(v->pd, v->buf, v->buf_len,
			       IBV_ACCESS_LOCAL_WRITE);
	if (!v->buf_mr) {
		v_errno(v, "ibv_reg_mr (send buffer)");
		return -1;
	}
	v->scq = ibv_create_cq(dev, (int)v->sq_depth, NULL, NULL, 0);
	if (!v->scq) {
		v_errno(v, "ibv_create_cq (send)");
		return -1;
	}
	v->rcq = ibv_create_cq(dev, (int)v->srq_depth, NULL, NULL, 0);
	if (!v->rcq) {
		v_errno(v, "ibv_create_cq (receive)");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.attr.max_wr = v->srq_depth;
	sa.attr.max_sge = 1;
	v->srq = ibv_create_srq(v->pd, &sa);
	if (!v->srq) {
		v_errno(v, "ibv_create_srq");
		return -1;
	}
	/* A WRITE_WITH_IMM lands where the writer says; its receive only
	 * carries the completion, so it needs no buffer. */
	for (unsigned i = 0; i < SRQ_BATCH; i++) {
		memset(&v->rwr[i], 0, sizeof(v->rwr[i]));
		v->rwr[i].wr_id = i;
		v->rwr[i].next = i + 1 < SRQ_BATCH ? &v->rwr[i + 1] : NULL;
	}
	for (unsigned i = 0; i < v->srq_depth / SRQ_BATCH; i++)
		if (post_recv_batch(v) != 0)
			return -1;
	if (create_qp(v) != 0)
		return -1;
	v->sge.addr = (uintptr_t)v->buf;
	v->sge.length = (uint32_t)size;
	v->sge.lkey = v->buf_mr->lkey;
	memset(&v->wr, 0, sizeof(v->wr));
	v->wr.sg_list = &v->sge;
	v->wr.num_sge = 1;
	v->wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	return 0;
}

static void side_destroy(struct vside *v)
{
	if (v->qp)
		rdma_destroy_qp(v->id);
	if (v->srq && ibv_destroy_srq(v->srq) != 0)
		v_errno(v, "ibv_destroy_srq");
	if (v->rcq && ibv_destroy_cq(v->rcq) != 0)
		v_errno(v, "ibv_destroy_cq (receive)");
	if (v->scq && ibv_destroy_cq(v->scq) != 0)
		v_errno(v, "ibv_destroy_cq (send)");
	if (v->buf_mr && ibv_dereg_mr(v->buf_mr) != 0)
		v_errno(v, "ibv_dereg_mr (send buffer)");
	if (v->ring_mr && ibv_dereg_mr(v->ring_mr) != 0)
		v_errno(v, "ibv_dereg_mr (receive ring)");
	if (v->pd && ibv_dealloc_pd(v->pd) != 0)
		v_errno(v, "ibv_dealloc_pd");
	if (v->buf)
		munmap(v->buf, v->buf_len);
	if (v->ring)
		munmap(v->ring, v->ring_size);
	if (v->id)
		rdma_destroy_id(v->id);
	if (v->listen_id)
		rdma_destroy_id(v->listen_id);
	if (v->ch && !v->ch_borrowed)
		rdma_destroy_event_channel(v->ch);
	v->qp = 0;
	v->srq = NULL;
	v->rcq = v->scq = NULL;
	v->buf_mr = v->ring_mr = NULL;
	v->pd = NULL;
	v->buf = v->ring = NULL;
	v->id = v->listen_id = NULL;
	v->ch = NULL;
}

static int open_channel(struct vside *v, struct rdma_cm_id **id)
{
	v->ch = rdma_create_event_channel();
	if (!v->ch) {
		int e = errno;

		v_errno(v, "rdma_create_event_channel");
		if (e == ENODEV || e == ENOENT)
			fprintf(stderr, "%s: raw verbs: no RDMA device here, "
				"or the rdma_ucm module is not loaded (muon's "
				"Soft-RoCE VM: docs/rdma-vm.md)\n", BENCH_PROG);
		return -1;
	}
	if (rdma_create_id(v->ch, id, v, RDMA_PS_TCP) != 0) {
		v_errno(v, "rdma_create_id");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ hot path */

static inline uint32_t next_pos(uint32_t pos, uint32_t stride, size_t size,
				uint32_t ring)
{
	pos += stride;
	return pos + size > ring ? 0 : pos;
}

/* Reclaim send queue slots: one success per SIGNAL_EVERY sends. */
static int reclaim(struct vside *v)
{
	struct ibv_wc wc[4];
	int n = ibv_poll_cq(v->scq, 4, wc);

	if (n < 0) {
		fprintf(stderr, "%s: raw verbs: %s: ibv_poll_cq (send) "
			"failed: %d\n", BENCH_PROG, v->who, n);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (wc[i].status != IBV_WC_SUCCESS) {
			fprintf(stderr, "%s: raw verbs: %s: send %llu "
				"completed with %s (vendor error 0x%x)\n",
				BENCH_PROG, v->who,
				(unsigned long long)wc[i].wr_id,
				ibv_wc_status_str(wc[i].status),
				wc[i].vendor_err);
			return -1;
		}
		v->sq_used -= SIGNAL_EVERY;
	}
	return 0;
}

/* One write with immediate at the peer's next position: the payload in
 * v->buf, or nothing (num_sge 0) for an end marker. */
static int post_one(struct vside *v, int num_sge, uint32_t imm,
		    struct bench_spin *spin)
{
	struct ibv_send_wr *bad;
	unsigned flags = num_sge && v->o->size <= v->max_inline ?
			 IBV_SEND_INLINE : 0;
	int rc;

	/* Only when the peer has not acked 64 writes: never in a ping-pong */
	while (v->sq_used >= v->sq_depth) {
		if (reclaim(v) != 0 || bench_spin_check(spin) != 0)
			return -1;
	}
	if (++v->nsent % SIGNAL_EVERY == 0)
		flags |= IBV_SEND_SIGNALED;
	v->wr.wr_id = v->nsent;
	v->wr.send_flags = flags;
	v->wr.num_sge = num_sge;
	v->wr.imm_data = htobe32(imm);
	v->wr.wr.rdma.remote_addr = v->peer_addr + v->peer_pos;
	v->wr.wr.rdma.rkey = v->peer_rkey;
	rc = ibv_post_send(v->id->qp, &v->wr, &bad);
	if (rc != 0) {
		v_err(v, "ibv_post_send", rc);
		return -1;
	}
	v->sq_used++;
	return 0;
}

static int post_write(struct vside *v, struct bench_spin *spin)
{
	if (post_one(v, 1, v->peer_pos, spin) != 0)
		return -1;
	v->peer_pos = next_pos(v->peer_pos, v->stride, v->o->size,
			       v->peer_size);
	return 0;
}

/* The end marker, with the low 31 bits of the count of messages sent. */
static int post_end(struct vside *v, uint64_t n, struct bench_spin *spin)
{
	return post_one(v, 0, RAW_VERBS_END | ((uint32_t)n & ~RAW_VERBS_END),
			spin);
}

/*
 * Busy-poll the receive CQ for the peer's next write and copy it out: 0.
 * 1 when it is the end marker, *end_n then the low 31 bits of the count
 * the peer sent with it.
 */
static int wait_write(struct vside *v, struct bench_spin *spin,
		      uint32_t *end_n)
{
	struct ibv_wc wc;
	int n;

	while ((n = ibv_poll_cq(v->rcq, 1, &wc)) == 0) {
		if (bench_spin_check(spin) != 0)
			return -1;
	}
	if (n < 0) {
		fprintf(stderr, "%s: raw verbs: %s: ibv_poll_cq (receive) "
			"failed: %d\n", BENCH_PROG, v->who, n);
		return -1;
	}
	if (wc.status != IBV_WC_SUCCESS) {
		fprintf(stderr, "%s: raw verbs: %s: receive completed with "
			"%s (vendor error 0x%x)\n", BENCH_PROG, v->who,
			ibv_wc_status_str(wc.status), wc.vendor_err);
		return -1;
	}
	v->srq_used++;
	if (wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM &&
	    (wc.wc_flags & IBV_WC_WITH_IMM) && wc.byte_len == 0 &&
	    (be32toh(wc.imm_data) & RAW_VERBS_END)) {
		*end_n = be32toh(wc.imm_data) & ~RAW_VERBS_END;
		return 1;
	}
	if (wc.opcode != IBV_WC_RECV_RDMA_WITH_IMM ||
	    !(wc.wc_flags & IBV_WC_WITH_IMM) || wc.byte_len != v->o->size ||
	    be32toh(wc.imm_data) != v->my_pos) {
		fprintf(stderr, "%s: raw verbs: %s: unexpected receive: "
			"opcode %d, flags 0x%x, %u bytes at %u (want a write "
			"with immediate, %zu bytes at %u)\n", BENCH_PROG,
			v->who, (int)wc.opcode, wc.wc_flags, wc.byte_len,
			be32toh(wc.imm_data), v->o->size, v->my_pos);
		return -1;
	}
	memcpy(v->buf, v->ring + v->my_pos, v->o->size);
	v->my_pos = next_pos(v->my_pos, v->stride, v->o->size, v->ring_size);
	return 0;
}

/* Off the timed path: give the SRQ back its receives, reclaim sends. */
static int housekeeping(struct vside *v)
{
	while (v->srq_used >= SRQ_BATCH) {
		if (post_recv_batch(v) != 0)
			return -1;
		v->srq_used -= SRQ_BATCH;
	}
	if (v->sq_used >= SIGNAL_EVERY)
		return reclaim(v);
	return 0;
}

/* ---------------------------------------------------------------- pong */

static int pong_connect(struct raw_verbs *r, struct vside *v)
{
	struct rdma_cm_event *ev;
	struct rdma_conn_param p;
	struct ring_info ri;
	int rc;

	if (open_channel(v, &v->id) != 0)
		return -1;
	if (rdma_resolve_addr(v->id, NULL, (struct sockaddr *)&r->addr,
			      RESOLVE_MS) != 0) {
		v_errno(v, "rdma_resolve_addr");
		return -1;
	}
	if (cm_wait_ack(v, RDMA_CM_EVENT_ADDR_RESOLVED) != 0)
		return -1;
	if (rdma_resolve_route(v->id, RESOLVE_MS) != 0) {
		v_errno(v, "rdma_resolve_route");
		return -1;
	}
	if (cm_wait_ack(v, RDMA_CM_EVENT_ROUTE_RESOLVED) != 0)
		return -1;
	if (side_resources(v) != 0)
		return -1;
	conn_param(v, &ri, &p);
	if (rdma_connect(v->id, &p) != 0) {
		v_errno(v, "rdma_connect");
		return -1;
	}
	if (cm_wait(v, RDMA_CM_EVENT_ESTABLISHED, &ev) != 0)
		return -1;
	rc = read_ring_info(v, &ev->param.conn);
	rdma_ack_cm_event(ev);
	if (rc != 0)
		return -1;
	set_min_rnr_timer(v);
	return 0;
}

/* The pong's end: the ping has had every reply, and says how many. */
static int check_end(const struct vside *v, uint64_t n, uint32_t end_n)
{
	if (end_n == ((uint32_t)n & ~RAW_VERBS_END))
		return 0;
	fprintf(stderr, "%s: raw verbs: %s: the end marker says %u messages "
		"(mod 2^31), %llu arrived\n", BENCH_PROG, v->who, end_n,
		(unsigned long long)n);
	return -1;
}

static int pong_run(struct raw_verbs *r, struct vside *v)
{
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "pong",
				   .abort = &r->ping_failed };

	if (bench_pin_self(o->pong_cpu) != 0 || pong_connect(r, v) != 0)
		return -1;
	for (uint64_t i = 0;; i++) {
		uint64_t got;
		uint32_t end_n;
		int w;

		bench_spin_start(&spin, "the next raw verbs ping");
		w = wait_write(v, &spin, &end_n);
		if (w < 0)
			return -1;
		if (w > 0)
			return check_end(v, i, end_n);
		got = bench_get_counter(v->buf, o->size);
		if (got != bench_counter_mask(i, o->size)) {
			fprintf(stderr, "%s: raw verbs: pong: ping %llu came "
				"with counter %llu\n", BENCH_PROG,
				(unsigned long long)i, (unsigned long long)got);
			return -1;
		}
		if (post_write(v, &spin) != 0 || housekeeping(v) != 0)
			return -1;
	}
}

static int consumer_run(struct vcons *c);

static void *pong_thread(void *arg)
{
	struct vcons *c = arg;
	struct raw_verbs *r = c->r;
	struct vside *v = &c->v;
	int rc = r->flow ? consumer_run(c) : pong_run(r, v);

	if (rc != 0)
		atomic_store_explicit(&r->pong_failed, 1, memory_order_release);
	side_destroy(v);
	return NULL;
}

/* ---------------------------------------------------------------- ping */

static int ping_listen(struct raw_verbs *r, struct vside *v)
{
	if (open_channel(v, &v->listen_id) != 0)
		return -1;
	if (rdma_bind_addr(v->listen_id, (struct sockaddr *)&r->addr) != 0) {
		v_errno(v, "rdma_bind_addr");
		fprintf(stderr, "%s: raw verbs: is %s the IP address of an "
			"RDMA device's interface here? (--addr, "
			"MUON_RDMA_ADDR; the Soft-RoCE VM has %s: "
			"docs/rdma-vm.md)\n", BENCH_PROG, r->o->addr,
			BENCH_VERBS_ADDR);
		return -1;
	}
	if (rdma_listen(v->listen_id, (int)r->n) != 0) {
		v_errno(v, "rdma_listen");
		return -1;
	}
	/* The pong connects to the port the listener got. */
	if (r->addr.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&r->addr)->sin6_port =
			rdma_get_src_port(v->listen_id);
	else
		((struct sockaddr_in *)&r->addr)->sin_port =
			rdma_get_src_port(v->listen_id);
	return 0;
}

static int ping_accept(struct raw_verbs *r, struct vside *v)
{
	struct rdma_cm_event *ev;
	struct rdma_conn_param p;
	struct ring_info ri;
	int rc;

	(void)r;
	if (cm_wait(v, RDMA_CM_EVENT_CONNECT_REQUEST, &ev) != 0)
		return -1;
	v->id = ev->id;
	rc = read_ring_info(v, &ev->param.conn);
	rdma_ack_cm_event(ev);
	if (rc != 0 || side_resources(v) != 0)
		goto reject;
	conn_param(v, &ri, &p);
	if (rdma_accept(v->id, &p) != 0) {
		v_errno(v, "rdma_accept");
		goto reject;
	}
	if (cm_wait_ack(v, RDMA_CM_EVENT_ESTABLISHED) != 0)
		return -1;
	set_min_rnr_timer(v);
	return 0;

reject:
	/* Tell the pong now rather than let it time out. */
	if (rdma_reject(v->id, NULL, 0) != 0)
		v_errno(v, "rdma_reject");
	return -1;
}

static int ping_run(struct raw_verbs *r, struct vside *v, struct bench_pp *pp)
{
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "ping",
				   .abort = &r->pong_failed };
	uint64_t t0, t1;

	do {
		uint64_t i = pp->i, got;
		uint32_t end_n;

		bench_put_counter(v->buf, o->size, i);
		bench_spin_start(&spin, "the raw verbs reply");
		t0 = bench_now_ns();
		if (post_write(v, &spin) != 0 ||
		    wait_write(v, &spin, &end_n) != 0)
			return -1;
		t1 = bench_now_ns();
		got = bench_get_counter(v->buf, o->size);
		if (got != bench_counter_mask(i, o->size)) {
			fprintf(stderr, "%s: raw verbs: round trip %llu came "
				"back with counter %llu\n", BENCH_PROG,
				(unsigned long long)i, (unsigned long long)got);
			return -1;
		}
		if (housekeeping(v) != 0)
			return -1;
	} while (bench_pp_next(pp, t0, t1));
	bench_spin_start(&spin, "room for the end marker");
	return post_end(v, pp->i, &spin);
}

static int parse_addr(struct raw_verbs *r)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	int rc = getaddrinfo(r->o->addr, "0", &hints, &ai);

	if (rc != 0) {
		fprintf(stderr, "%s: raw verbs: --addr %s: not an IPv4 or "
			"IPv6 address: %s\n", BENCH_PROG, r->o->addr,
			gai_strerror(rc));
		return -1;
	}
	memcpy(&r->addr, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

/* ----------------------------------------------------------- throughput */

/*
 * The throughput run: the listening side produces, the connecting one (a
 * thread, as the pong is) consumes. The producer chains up to FLOW_CHAIN
 * writes with immediate per ibv_post_send, from a send buffer per WR that
 * can be in flight, as many in flight as its send queue holds, one in
 * SIGNAL_EVERY signalled. The consumer takes each write where it landed
 * (no copy), and every quarter of the window posts back how many it has
 * consumed: a zero-length write with immediate carrying the count's low
 * 32 bits. The window is what the consumer's ring holds and what it has
 * receives posted for, whichever is less, so the producer never overruns
 * either (a missing receive would stall it in RNR retries).
 */
static uint64_t flow_window(const struct vside *v)
{
	uint64_t slots = (v->peer_size - v->o->size) / v->stride + 1;

	return v->peer_window < slots ? v->peer_window : slots;
}

static int consumer_take(struct vcons *c, const struct ibv_wc *wc, int *end)
{
	struct vside *v = &c->v;
	struct raw_rx *rx = &c->rx;
	uint32_t imm = be32toh(wc->imm_data);
	const unsigned char *p = v->ring + v->my_pos;

	if (wc->status != IBV_WC_SUCCESS) {
		fprintf(stderr, "%s: raw verbs: consumer: receive completed "
			"with %s (vendor error 0x%x)\n", BENCH_PROG,
			ibv_wc_status_str(wc->status), wc->vendor_err);
		return -1;
	}
	v->srq_used++;
	if (wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM &&
	    (wc->wc_flags & IBV_WC_WITH_IMM) && wc->byte_len == 0 &&
	    (imm & RAW_VERBS_END)) {
		*end = 1;
		if (check_end(v, rx->next, imm & ~RAW_VERBS_END) != 0)
			return -1;
		return raw_rx_end(rx, rx->next);
	}
	if (wc->opcode != IBV_WC_RECV_RDMA_WITH_IMM ||
	    !(wc->wc_flags & IBV_WC_WITH_IMM) || wc->byte_len != v->o->size ||
	    (imm & ~RAW_VERBS_FIRST) != v->my_pos) {
		fprintf(stderr, "%s: raw verbs: consumer: unexpected receive: "
			"opcode %d, flags 0x%x, %u bytes at %u (want a write "
			"with immediate, %zu bytes at %u)\n", BENCH_PROG,
			(int)wc->opcode, wc->wc_flags, wc->byte_len,
			imm & ~RAW_VERBS_FIRST, v->o->size, v->my_pos);
		return -1;
	}
	v->my_pos = next_pos(v->my_pos, v->stride, v->o->size, v->ring_size);
	return imm & RAW_VERBS_FIRST ? raw_rx_take_first(rx, p) :
				       raw_rx_take(rx, p);
}

static int consumer_run(struct vcons *c)
{
	struct raw_verbs *r = c->r;
	struct vside *v = &c->v;
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "consumer",
				   .abort = &r->ping_failed };
	struct ibv_wc wc[16];
	uint64_t credited = 0, every;
	int end = 0, waiting = 0;

	if (bench_pin_self(bench_cpu_of(o, 1 + c->index)) != 0 ||
	    pong_connect(r, v) != 0)
		return -1;
	every = (v->srq_depth - SRQ_BATCH) / 4;
	while (!end) {
		int n = ibv_poll_cq(v->rcq, 16, wc);

		if (n < 0) {
			fprintf(stderr, "%s: raw verbs: consumer: ibv_poll_cq "
				"(receive) failed: %d\n", BENCH_PROG, n);
			return -1;
		}
		if (n == 0) {
			raw_rx_flush(&c->rx);
			if (!waiting) {
				bench_spin_start(&spin, "the next raw verbs "
						 "message");
				waiting = 1;
			}
			if (bench_spin_check(&spin) != 0)
				return -1;
			continue;
		}
		waiting = 0;
		for (int i = 0; i < n && !end; i++)
			if (consumer_take(c, &wc[i], &end) != 0)
				return -1;
		if (!end && c->rx.next - credited >= every) {
			credited = c->rx.next;
			bench_spin_start(&spin, "room to post a credit");
			if (post_one(v, 0, (uint32_t)credited, &spin) != 0)
				return -1;
		}
		if (housekeeping(v) != 0)
			return -1;
	}
	return 0;
}

/* Take the consumer's credits off our receive CQ. */
static int producer_credits(struct vside *v, uint64_t *consumed)
{
	struct ibv_wc wc[16];
	int n = ibv_poll_cq(v->rcq, 16, wc);

	if (n < 0) {
		fprintf(stderr, "%s: raw verbs: producer: ibv_poll_cq "
			"(receive) failed: %d\n", BENCH_PROG, n);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		uint32_t c = be32toh(wc[i].imm_data);

		if (wc[i].status != IBV_WC_SUCCESS) {
			fprintf(stderr, "%s: raw verbs: producer: receive "
				"completed with %s (vendor error 0x%x)\n",
				BENCH_PROG, ibv_wc_status_str(wc[i].status),
				wc[i].vendor_err);
			return -1;
		}
		/* The low 32 bits of a count that only grows. */
		*consumed += (uint32_t)(c - (uint32_t)*consumed);
		v->srq_used++;
	}
	return housekeeping(v);
}

/*
 * Messages [m, end), all with intended time t, to one consumer: as many
 * per ibv_post_send as its credits, our send queue and FLOW_CHAIN allow.
 */
static int producer_send(struct vside *v, const struct raw_pace *pace,
			 uint64_t m, uint64_t end, uint64_t t,
			 struct bench_spin *spin)
{
	const struct bench_opts *o = v->o;
	struct ibv_send_wr wr[FLOW_CHAIN], *bad;
	struct ibv_sge sge[FLOW_CHAIN];
	unsigned inl = o->size <= v->max_inline ? IBV_SEND_INLINE : 0;

	bench_spin_start(spin, "credit or send queue room");
	while (m < end) {
		uint64_t c = end - m, room = v->window - (m - v->consumed);
		int rc;

		if (v->sq_depth - v->sq_used < c)
			c = v->sq_depth - v->sq_used;
		if (room < c)
			c = room;
		if (c > FLOW_CHAIN)
			c = FLOW_CHAIN;
		if (!c) {
			if (producer_credits(v, &v->consumed) != 0 ||
			    reclaim(v) != 0 || bench_spin_check(spin) != 0)
				return -1;
			continue;
		}
		for (uint64_t i = 0; i < c; i++, m++) {
			uint64_t id = ++v->nsent;
			unsigned char *b = v->buf +
				(id % v->buf_slots) * v->stride;

			raw_stamp_put(b, o->size, t, m);
			sge[i] = (struct ibv_sge){
				.addr = (uintptr_t)b,
				.length = (uint32_t)o->size,
				.lkey = v->buf_mr->lkey };
			wr[i] = (struct ibv_send_wr){
				.wr_id = id,
				.next = i + 1 < c ? &wr[i + 1] : NULL,
				.sg_list = &sge[i],
				.num_sge = 1,
				.opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
				.send_flags = inl |
					(id % SIGNAL_EVERY ? 0 :
					 IBV_SEND_SIGNALED),
				.imm_data = htobe32(v->peer_pos |
					(m == pace->timed_first ?
					 RAW_VERBS_FIRST : 0)) };
			wr[i].wr.rdma.remote_addr = v->peer_addr + v->peer_pos;
			wr[i].wr.rdma.rkey = v->peer_rkey;
			v->peer_pos = next_pos(v->peer_pos, v->stride,
					       o->size, v->peer_size);
		}
		rc = ibv_post_send(v->id->qp, wr, &bad);
		if (rc != 0) {
			v_err(v, "ibv_post_send", rc);
			return -1;
		}
		v->sq_used += (unsigned)c;
		if (v->sq_used >= SIGNAL_EVERY && reclaim(v) != 0)
			return -1;
	}
	return 0;
}

/* Each group of messages to every consumer in turn, then the end. */
static int producer_run(struct raw_verbs *r, struct raw_pace *pace)
{
	const struct bench_opts *o = r->o;
	struct bench_spin spin = { .yield = o->shared_cpu, .who = "producer",
				   .abort = &r->pong_failed };
	uint64_t first, t;
	int k;

	for (unsigned j = 0; j < r->n; j++)
		r->ping[j].window = flow_window(&r->ping[j]);
	while ((k = raw_pace_next(pace, 1, UINT64_MAX, &first, &t)) > 0)
		for (unsigned j = 0; j < r->n; j++)
			if (producer_send(&r->ping[j], pace, first,
					  first + (uint64_t)k, t, &spin) != 0)
				return -1;
	if (k == RAW_PACE_FAIL)
		return -1;
	bench_spin_start(&spin, "room for the end marker");
	for (unsigned j = 0; j < r->n; j++)
		if (post_end(&r->ping[j], pace->n, &spin) != 0)
			return -1;
	return 0;
}

/* -------------------------------------------------------------- the runs */

/* A fan-out's consumers record per-message latencies for first/last:
 * one mapping for all, touched now so that no page faults in the timed
 * part. 0, or -1 (said why). */
static int consumer_windows(struct raw_verbs *r, uint64_t **win, size_t *len)
{
	const struct bench_opts *o = r->o;
	uint64_t n = 0;

	*win = NULL;
	*len = 0;
	if (o->mode == BENCH_FANOUT && r->n > 1 &&
	    o->size >= sizeof(struct bench_stamp))
		n = bench_fanout_window(o, r->n);
	if (!n)
		return 0;
	*len = (size_t)(n * r->n * sizeof(uint64_t));
	*win = mmap(NULL, *len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (*win == MAP_FAILED) {
		fprintf(stderr, "%s: raw verbs: mmap of %zu bytes for the "
			"consumers' windows failed: %s\n", BENCH_PROG, *len,
			strerror(errno));
		*win = NULL;
		return -1;
	}
	for (unsigned i = 0; i < r->n; i++) {
		r->pong[i].rx.win = *win + i * n;
		r->pong[i].rx.win_len = n;
	}
	return 0;
}

/* NULL after saying why; free with verbs_free. */
static struct raw_verbs *verbs_new(const struct bench_opts *o, int flow)
{
	/* Big and shared between the threads: not on the stack. */
	struct raw_verbs *r = calloc(1, sizeof(*r));

	if (!r)
		goto oom;
	r->o = o;
	r->flow = flow;
	r->n = flow && o->mode == BENCH_FANOUT ? bench_subs(o) : 1;
	r->ping = calloc(r->n, sizeof(*r->ping));
	r->pong = calloc(r->n, sizeof(*r->pong));
	if (!r->ping || !r->pong)
		goto free_r;
	for (unsigned i = 0; i < r->n; i++) {
		r->ping[i] = (struct vside){
			.o = o, .who = flow ? "producer" : "ping",
			.abort = &r->pong_failed,
			.sq_depth = flow ? FLOW_SQ_DEPTH : SQ_DEPTH,
			.srq_depth = SRQ_DEPTH,
			.buf_slots = flow ? FLOW_SQ_DEPTH : 1 };
		r->pong[i] = (struct vcons){ .r = r, .index = i };
		r->pong[i].v = (struct vside){
			.o = o, .who = flow ? "consumer" : "pong",
			.abort = &r->ping_failed,
			.sq_depth = SQ_DEPTH,
			.srq_depth = flow ? FLOW_SRQ_DEPTH : SRQ_DEPTH,
			.buf_slots = 1 };
	}
	return r;

free_r:
	free(r->ping);
	free(r->pong);
	free(r);
oom:
	fprintf(stderr, "%s: raw verbs: out of memory\n", BENCH_PROG);
	return NULL;
}

static void verbs_free(struct raw_verbs *r)
{
	free(r->ping);
	free(r->pong);
	free(r);
}

/*
 * Start connecting side i and accept its connection, before the next
 * one starts: the listener's events then come one connection at a time.
 * 1 if the thread started (to be joined), 0 if not; *ok cleared on any
 * failure.
 */
static int verbs_connect_one(struct raw_verbs *r, unsigned i, int *ok)
{
	struct vside *v = &r->ping[i];
	int err;

	if (i > 0) {
		v->ch = r->ping[0].ch;
		v->ch_borrowed = 1;
	}
	err = pthread_create(&r->pong[i].thread, NULL, pong_thread,
			     &r->pong[i]);
	if (err != 0) {
		v_err(v, "pthread_create", err);
		*ok = 0;
		return 0;
	}
	*ok = ping_accept(r, v) == 0;
	return 1;
}

/*
 * Every run: the listening side in this thread, the connecting ones (one,
 * or a fan-out's consumers) in threads of their own, which report failure
 * through pong_failed and see ours through ping_failed. `flow` selects
 * throughput or fanout, by o->mode.
 */
static int verbs_run(const struct bench_opts *o, int flow,
		     struct bench_report *rep)
{
	struct raw_verbs *r;
	struct bench_pp pp;
	struct raw_pace pace;
	struct raw_rx *rx[BENCH_MAX_SUBS];
	uint64_t *win = NULL;
	size_t win_len = 0;
	unsigned inited = 0, started = 0;
	cpu_set_t saved;
	int rc = -1, err, ok = 1;

	r = verbs_new(o, flow);
	if (!r)
		return -1;
	if (!flow && bench_pp_init(&pp, o, "raw") != 0)
		goto free_r;
	for (; flow && inited < r->n; inited++) {
		if (raw_rx_init(&r->pong[inited].rx, o, "raw verbs") != 0)
			goto fini;
		rx[inited] = &r->pong[inited].rx;
	}
	if (flow && consumer_windows(r, &win, &win_len) != 0)
		goto fini;
	if (raw_pin_push(flow ? bench_cpu_of(o, 0) : -1, &saved) != 0)
		goto unmap_windows;
	if (parse_addr(r) != 0 || ping_listen(r, &r->ping[0]) != 0)
		goto destroy;
	while (ok && started < r->n)
		started += (unsigned)verbs_connect_one(r, started, &ok);
	if (ok && flow) {
		raw_pace_init(&pace, o, "raw-verbs", NULL, &r->pong_failed);
		ok = producer_run(r, &pace) == 0;
		raw_pace_fini(&pace);
		if (ok)
			raw_pace_warn(&pace, rep, "raw-verbs");
	} else if (ok) {
		ok = ping_run(r, &r->ping[0], &pp) == 0;
	}
	if (!ok)
		atomic_store_explicit(&r->ping_failed, 1, memory_order_release);
	/* Every wait of the other threads is bounded, and they see
	 * ping_failed. */
	for (unsigned i = 0; i < started; i++) {
		err = pthread_join(r->pong[i].thread, NULL);
		if (err != 0) {
			v_err(&r->ping[i], "pthread_join", err);
			ok = 0;
		}
	}
	if (ok && !atomic_load(&r->pong_failed))
		rc = flow ? raw_flow_report(o, rep, "raw-verbs", rx, r->n) :
			    bench_pp_add(&pp, rep, "raw-verbs");
destroy:
	/* The first side owns the event channel the others borrow. */
	for (unsigned i = r->n; i-- > 0;)
		side_destroy(&r->ping[i]);
	raw_pin_pop(&saved);
unmap_windows:
	if (win)
		munmap(win, win_len);
fini:
	while (inited-- > 0)
		raw_rx_fini(&r->pong[inited].rx);
	if (!flow)
		bench_pp_fini(&pp);
free_r:
	verbs_free(r);
	return rc;
}

int bench_raw_verbs_pingpong(const struct bench_opts *o,
			     struct bench_report *rep)
{
	return verbs_run(o, 0, rep);
}

int bench_raw_verbs_throughput(const struct bench_opts *o,
			       struct bench_report *rep)
{
	return verbs_run(o, 1, rep);
}

int bench_raw_verbs_fanout(const struct bench_opts *o,
			   struct bench_report *rep)
{
	return verbs_run(o, 1, rep);
}
