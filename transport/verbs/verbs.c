/*
 * The RDMA transport: rdmacm connections, one RC queue pair per pair of
 * contexts, RDMA WRITE_WITH_IMM into a ring the receiving side owns,
 * completions through one shared receive queue per context and device.
 *
 * Per context and device (struct vdev): a protection domain, a shared
 * receive queue whose buffers take control SENDs (WRITE_WITH_IMM consumes
 * a receive without touching its buffer), one receive completion queue on a
 * completion channel that sits in the context's epoll set.
 *
 * Per connection (struct vconn): an RC QP on that SRQ, its own small send
 * CQ (a publisher reclaims its send slots without reading anybody else's
 * completions), and up to three registered regions: the receive ring
 * (LOCAL_WRITE|REMOTE_WRITE, only once we receive over the connection), the
 * credit word the peer writes its consumed position into (REMOTE_WRITE),
 * and a staging area for frames that live in unregistered memory.
 *
 * The writer learns free space from the credit word, read only when its
 * cached view runs out. The immediate of every write is the ring position
 * where it starts, in 8-byte units; a write that would cross the ring's end
 * starts at offset 0 instead and the immediate says so. The receiver trusts
 * neither the immediate nor byte_len: both are checked against where it
 * expects the next write, and every frame header against the bytes written.
 *
 * Connection setup: the subscriber side connects with its ring and a
 * HMAC-SHA256 tag (cluster secret) in the private data; the listener checks
 * the tag before it creates a QP or writes a byte, and answers with its
 * credit word and its own tag. A listener that wants to receive later
 * (connections are bidirectional) sends its ring in a RING message; the
 * connecting side sends its credit word in a CREDIT message right after
 * ESTABLISHED. See docs/verbs.md.
 */
#include "transport/verbs/verbs.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "core/muoni.h"

/* ------------------------------------------------------------ settings */

#define SQ_DEPTH 256u        /* send work requests per QP */
#define SIG_EVERY 32u        /* selective signalling interval */
#define SRQ_DEPTH_MAX 1024u  /* receive WQEs per SRQ */
#define SRQ_BATCH 32u        /* receives reposted per doorbell */
#define RBUF_LEN 4096u       /* receive buffer: one control SEND */
#define STAGE_LEN (256u << 10) /* copies of unregistered frames */
#define STAGE_MARKS 64u
#define INLINE_WANT 256u
#define CQ_POLL 32
#define PEND_MAX 64
#define RESOLVE_MS 2000
#define ZOMBIE_NS (2000ull * 1000000ull) /* LAST_WQE_REACHED wait at most */
#define MEM_GRAVE_NS (2000ull * 1000000ull)
#define REPLAY_SLOTS 1024u
#define REPLAY_WINDOW_S 120

/*
 * Queue pair timing, on purpose (docs/verbs.md):
 * - ack timeout 14 (4.096 us * 2^14 = 67 ms) and retry_cnt 7: a peer that
 *   stops answering is declared gone after about half a second, well
 *   inside the heartbeat-based peer timeout.
 * - rnr_retry 7 (infinite): a receiver whose SRQ ran dry for a moment is
 *   not a dead receiver; the SRQ limit event refills it.
 * - min_rnr_timer 6 (0.08 ms) instead of the 655 ms that rdmacm leaves:
 *   how long a sender waits before retrying after an RNR NAK.
 */
#define QP_ACK_TIMEOUT 14
#define QP_RETRY_CNT 7
#define QP_RNR_RETRY 7
#define QP_MIN_RNR_TIMER 6

/* ------------------------------------------------------------ objects */

struct vconn;

/* Async events of a device are per process (librdmacm shares one
 * ibv_context between every id), so whichever context reads one only sets
 * atomic flags on the object; its owner acts on them in its control plane. */
enum {
	AF_QP_FATAL = 1,
	AF_QP_ACCESS = 2,
	AF_LAST_WQE = 4,
};

struct vmem {
	const uint8_t *base;
	size_t len;
	struct ibv_mr *mr;
	uint64_t dead_at; /* in the graveyard since */
};

struct vdev {
	struct muoni_verbs_ctx *vc;
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	/* Where the provider has thread domains (mlx5): a parent domain for
	 * the QPs and send CQs, which then take no locks. A context is driven
	 * by one thread at a time, so that is all the locking it needs. */
	struct ibv_td *td;
	struct ibv_pd *qpd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *rcq;
	struct ibv_srq *srq;
	struct muoni_fdh ch_h;
	struct muoni_fdh async_h;
	uint8_t *rbufs;
	struct ibv_mr *rbuf_mr;
	uint32_t srq_depth;
	uint32_t srq_limit;
	uint32_t *refill;
	uint32_t n_refill;
	uint32_t max_inline_hint;
	unsigned cq_unacked;
	bool armed; /* a CQ notification is requested and not yet consumed */
	_Atomic int srq_limit_hit;
	_Atomic int fatal;
	bool dead;
	/* qp_num -> connection, open addressing */
	struct vconn **qpt;
	uint32_t qpt_mask;
	uint32_t qpt_n;
	struct vconn *last_c;
	/* completions taken by arm(), handed out by the next poll */
	struct ibv_wc pend[PEND_MAX];
	unsigned n_pend;
	/* registered send logs, and deregistered ones waiting out their
	 * in-flight writes */
	struct vmem *mems;
	unsigned n_mems;
	struct vmem *grave;
	unsigned n_grave;
	uint32_t mem_gen;
	unsigned users;
	/* rdmacm ids on a removed device, destroyed after its objects:
	 * librdmacm may close the device context with the last id. */
	struct rdma_cm_id **dead_ids;
	unsigned n_dead_ids;
	struct vdev *next;
};

enum vcm_state {
	VCM_RESOLVING = 1,
	VCM_CONNECTING = 2,
	VCM_UP = 3,
	VCM_GONE = 4,
};

struct vconn {
	struct muoni_conn base;
	struct rdma_cm_id *id;
	struct vdev *dev;
	struct ibv_qp *qp;
	struct ibv_cq *scq;
	uint32_t qp_num;
	int cm;
	_Atomic int aflags;
	bool peer_gone;   /* DISCONNECTED seen */
	bool in_qpt;
	bool zombie;
	uint64_t zombie_since;

	/* receiving: our ring */
	uint8_t *ring;
	uint64_t rcap;
	uint64_t rmask;
	struct ibv_mr *ring_mr;
	uint64_t rpos;
	uint64_t credited;
	uint64_t rpos_seen; /* rpos at the previous control-plane look */
	uint32_t max_data;
	bool ring_sent;
	uint64_t peer_credit_addr;
	uint32_t peer_credit_rkey;
	bool have_peer_credit;

	/* sending: the peer's ring */
	uint64_t raddr;
	uint32_t rkey;
	uint64_t tcap;
	uint64_t tmask;
	uint64_t wpos;
	uint64_t cons;
	bool have_ring;
	uint8_t *credit_page; /* credit word at offset 0, written by the peer */
	struct ibv_mr *credit_mr;

	/* send queue */
	uint32_t max_inline;
	uint64_t sq_posted;
	uint64_t sq_done;
	unsigned unsignaled;
	int tx_err;

	/* staging for frames in unregistered memory */
	uint8_t *stage;
	struct ibv_mr *stage_mr;
	uint64_t st_head;
	uint64_t st_tail;
	struct { uint64_t seq, head; } marks[STAGE_MARKS];
	unsigned m_head, m_tail;

	/* lkey of the send log the last push came from */
	const uint8_t *mc_base, *mc_end;
	uint32_t mc_lkey;
	uint32_t mc_gen;

	/* control messages waiting for send slots */
	uint8_t *txq;
	size_t txq_len;
	size_t txq_cap;

	struct muoni_vx_req req; /* ours (connecting) */
	struct vconn *znext;
};

struct vlistener {
	struct muoni_listener base;
	struct rdma_cm_id *id;
	bool lost; /* its device went away; re-listen from the tick */
	uint64_t next_try;
	struct vlistener *next;
};

struct replay {
	uint64_t rand;
	uint64_t ctx_id;
	uint32_t time;
};

struct muoni_verbs_ctx {
	struct muon_ctx *ctx;
	struct rdma_event_channel *ech;
	struct muoni_fdh ech_h;
	struct vdev *devs;
	struct vconn *zombies;
	struct vlistener *listeners;
	struct replay replay[REPLAY_SLOTS];
	unsigned replay_next;
	bool warned_noauth;
};

#define VC(c) ((struct vconn *)(c))

static pthread_mutex_t async_lock = PTHREAD_MUTEX_INITIALIZER;

static void vconn_fail(struct vconn *v, int rc, int reason)
{
	muoni_conn_fail(&v->base, rc, reason);
}

static void vconn_proto(struct vconn *v, int rc)
{
	v->base.ctx->ctr.proto_errors++;
	muoni_err_push(rc, "%s", v->base.desc);
	muoni_conn_fail(&v->base, rc, MUON_DOWN_PROTOCOL);
}

static const char *wc_status(enum ibv_wc_status s)
{
	return ibv_wc_status_str(s);
}

/* ---------------------------------------------------------- qp table */

static uint32_t qpt_hash(uint32_t qpn, uint32_t mask)
{
	return (qpn * 2654435761u) & mask;
}

static struct vconn *qpt_find(struct vdev *d, uint32_t qpn)
{
	uint32_t i;

	if (MUONI_LIKELY(d->last_c && d->last_c->qp_num == qpn))
		return d->last_c;
	if (!d->qpt)
		return NULL;
	for (i = qpt_hash(qpn, d->qpt_mask);; i = (i + 1) & d->qpt_mask) {
		struct vconn *v = d->qpt[i];
		if (!v)
			return NULL;
		if (v->qp_num == qpn) {
			d->last_c = v;
			return v;
		}
	}
}

static int qpt_insert(struct vdev *d, struct vconn *v)
{
	uint32_t i;

	if (!d->qpt || (d->qpt_n + 1) * 2 > d->qpt_mask + 1) {
		uint32_t nsize = d->qpt ? (d->qpt_mask + 1) * 2 : 64, k;
		struct vconn **nt = calloc(nsize, sizeof(*nt));

		if (!nt)
			return MUONI_ERR(MUON_ENOMEM, "queue pair table");
		for (k = 0; d->qpt && k <= d->qpt_mask; k++) {
			struct vconn *o = d->qpt[k];
			if (!o)
				continue;
			for (i = qpt_hash(o->qp_num, nsize - 1); nt[i];
			     i = (i + 1) & (nsize - 1))
				;
			nt[i] = o;
		}
		free(d->qpt);
		d->qpt = nt;
		d->qpt_mask = nsize - 1;
	}
	for (i = qpt_hash(v->qp_num, d->qpt_mask); d->qpt[i];
	     i = (i + 1) & d->qpt_mask)
		;
	d->qpt[i] = v;
	d->qpt_n++;
	v->in_qpt = true;
	return 0;
}

static void qpt_remove(struct vdev *d, struct vconn *v)
{
	uint32_t i, j;

	if (!v->in_qpt)
		return;
	v->in_qpt = false;
	if (d->last_c == v)
		d->last_c = NULL;
	for (i = qpt_hash(v->qp_num, d->qpt_mask); d->qpt[i] != v;
	     i = (i + 1) & d->qpt_mask)
		;
	d->qpt[i] = NULL;
	d->qpt_n--;
	/* Re-seat the rest of the cluster (linear probing deletion). */
	for (j = (i + 1) & d->qpt_mask; d->qpt[j]; j = (j + 1) & d->qpt_mask) {
		struct vconn *o = d->qpt[j];
		d->qpt[j] = NULL;
		for (i = qpt_hash(o->qp_num, d->qpt_mask); d->qpt[i];
		     i = (i + 1) & d->qpt_mask)
			;
		d->qpt[i] = o;
	}
}

/* ---------------------------------------------------------- memory */

static void *map_region(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (len >= (2u << 20))
		(void)madvise(p, len, MADV_HUGEPAGE);
	muoni_pretouch(p, len, true);
	return p;
}

static struct ibv_mr *reg(struct vdev *d, void *p, size_t len, int access,
			  const char *what)
{
	struct ibv_mr *mr = ibv_reg_mr(d->pd, p, len, access);

	if (!mr && (errno == ENOMEM || errno == EPERM || errno == EAGAIN))
		MUONI_ERR(MUON_ENOMEM, "register %s of %zu bytes on %s: %s "
			  "(is the locked-memory limit, ulimit -l or systemd's "
			  "LimitMEMLOCK, high enough?)", what, len,
			  ibv_get_device_name(d->verbs->device),
			  strerror(errno));
	else if (!mr)
		MUONI_ERR_ERRNO("register %s of %zu bytes on %s", what, len,
				ibv_get_device_name(d->verbs->device));
	return mr;
}

/* ---------------------------------------------------------- devices */

static void srq_refill(struct vdev *d)
{
	struct ibv_recv_wr wrs[SRQ_BATCH], *bad;
	struct ibv_sge sges[SRQ_BATCH];
	uint32_t n, k;

	while (d->n_refill) {
		n = d->n_refill < SRQ_BATCH ? d->n_refill : SRQ_BATCH;
		for (k = 0; k < n; k++) {
			uint32_t idx = d->refill[d->n_refill - n + k];

			sges[k].addr = (uintptr_t)(d->rbufs +
						   (size_t)idx * RBUF_LEN);
			sges[k].length = RBUF_LEN;
			sges[k].lkey = d->rbuf_mr->lkey;
			wrs[k].wr_id = idx;
			wrs[k].sg_list = &sges[k];
			wrs[k].num_sge = 1;
			wrs[k].next = k + 1 < n ? &wrs[k + 1] : NULL;
		}
		if (ibv_post_srq_recv(d->srq, wrs, &bad)) {
			MUONI_WARN(d->vc->ctx, "%s: posting %u receives failed",
				   ibv_get_device_name(d->verbs->device), n);
			return;
		}
		d->n_refill -= n;
	}
}

static void srq_arm_limit(struct vdev *d)
{
	struct ibv_srq_attr a = {.srq_limit = d->srq_limit};

	/* One-shot: re-armed each time it fires. Soft devices without
	 * support just never fire; the data path refills anyway. */
	(void)ibv_modify_srq(d->srq, &a, IBV_SRQ_LIMIT);
}

static int vdev_poll(struct vdev *d, unsigned budget);
static bool vdev_has_rx(const struct vdev *d);
static void vdev_arm_idle(struct vdev *d);

static void ch_cb(struct muoni_fdh *h, uint32_t events)
{
	struct vdev *d = (void *)((char *)h - offsetof(struct vdev, ch_h));
	struct ibv_cq *cq;
	void *cq_ctx;

	(void)events;
	while (!ibv_get_cq_event(d->ch, &cq, &cq_ctx)) {
		d->armed = false;
		/* Acks take a lock in libibverbs: batch them. */
		if (++d->cq_unacked >= 64) {
			ibv_ack_cq_events(d->rcq, d->cq_unacked);
			d->cq_unacked = 0;
		}
	}
	if (d->dead)
		return;
	vdev_poll(d, 4096);
	/* While the data path polls this CQ (a connection on it receives),
	 * notifications would only cost the device a wake-up and us two
	 * system calls per event: muon_ctx_arm() asks for one before the
	 * application sleeps. Contexts that only publish never poll on the
	 * data path; their control messages come through here. */
	if (vdev_has_rx(d))
		return;
	vdev_arm_idle(d);
}

/* Nobody polls this CQ on the data path: keep a notification requested
 * so the control plane hears of what arrives. */
static void vdev_arm_idle(struct vdev *d)
{
	if (d->armed || d->dead)
		return;
	if (!ibv_req_notify_cq(d->rcq, 0))
		d->armed = true;
	vdev_poll(d, 4096);
}

/*
 * Every QP, send CQ, receive CQ and SRQ of every muon context in the
 * process, so that an async event (read by whichever context sees it
 * first: the device context is shared) touches only objects that are
 * muon's and still alive. Guarded by async_lock; async events are rare.
 */
enum { AREG_CONN = 1, AREG_DEV = 2 };

struct areg {
	const void *obj;
	void *owner;
	int kind;
};

static struct areg *areg;
static unsigned n_areg, cap_areg;

static int areg_add(const void *obj, void *owner, int kind)
{
	int rc = 0;

	pthread_mutex_lock(&async_lock);
	if (n_areg == cap_areg) {
		unsigned ncap = cap_areg ? cap_areg * 2 : 64;
		struct areg *nb = realloc(areg, ncap * sizeof(*nb));

		if (!nb) {
			rc = MUONI_ERR(MUON_ENOMEM, "async event table");
			goto out;
		}
		areg = nb;
		cap_areg = ncap;
	}
	areg[n_areg].obj = obj;
	areg[n_areg].owner = owner;
	areg[n_areg].kind = kind;
	n_areg++;
out:
	pthread_mutex_unlock(&async_lock);
	return rc;
}

static void areg_del(const void *obj)
{
	unsigned i;

	if (!obj)
		return;
	pthread_mutex_lock(&async_lock);
	for (i = 0; i < n_areg; i++)
		if (areg[i].obj == obj) {
			areg[i] = areg[--n_areg];
			break;
		}
	if (!n_areg) {
		free(areg);
		areg = NULL;
		cap_areg = 0;
	}
	pthread_mutex_unlock(&async_lock);
}

/* With async_lock held. */
static void *areg_find(const void *obj, int kind)
{
	unsigned i;

	for (i = 0; i < n_areg; i++)
		if (areg[i].obj == obj && areg[i].kind == kind)
			return areg[i].owner;
	return NULL;
}

static void async_cb(struct muoni_fdh *h, uint32_t events)
{
	struct vdev *d = (void *)((char *)h - offsetof(struct vdev, async_h));
	struct ibv_async_event ev;
	struct pollfd pfd = {.fd = d->verbs->async_fd, .events = POLLIN};

	(void)events;
	pthread_mutex_lock(&async_lock);
	/* The fd stays blocking (other verbs users in the process may rely
	 * on that); under the lock, readable means the read will not wait
	 * unless somebody outside muon took the event first. */
	while (poll(&pfd, 1, 0) == 1 && !ibv_get_async_event(d->verbs, &ev)) {
		struct vconn *v;
		struct vdev *o;

		switch (ev.event_type) {
		case IBV_EVENT_QP_FATAL:
		case IBV_EVENT_QP_REQ_ERR:
		case IBV_EVENT_PATH_MIG_ERR:
			v = areg_find(ev.element.qp, AREG_CONN);
			if (v)
				atomic_fetch_or(&v->aflags, AF_QP_FATAL);
			break;
		case IBV_EVENT_QP_ACCESS_ERR:
			v = areg_find(ev.element.qp, AREG_CONN);
			if (v)
				atomic_fetch_or(&v->aflags, AF_QP_ACCESS);
			break;
		case IBV_EVENT_QP_LAST_WQE_REACHED:
			v = areg_find(ev.element.qp, AREG_CONN);
			if (v)
				atomic_fetch_or(&v->aflags, AF_LAST_WQE);
			break;
		case IBV_EVENT_SRQ_LIMIT_REACHED:
			o = areg_find(ev.element.srq, AREG_DEV);
			if (o)
				atomic_store(&o->srq_limit_hit, 1);
			break;
		case IBV_EVENT_SRQ_ERR:
			o = areg_find(ev.element.srq, AREG_DEV);
			if (o)
				atomic_store(&o->fatal, ev.event_type);
			break;
		case IBV_EVENT_CQ_ERR:
			/* The shared receive CQ, or one connection's send CQ. */
			o = areg_find(ev.element.cq, AREG_DEV);
			if (o)
				atomic_store(&o->fatal, ev.event_type);
			v = areg_find(ev.element.cq, AREG_CONN);
			if (v)
				atomic_fetch_or(&v->aflags, AF_QP_FATAL);
			break;
		case IBV_EVENT_DEVICE_FATAL:
			/* Every context on the device finds out through its own
			 * rdmacm ids as well; this one notes it now. */
			atomic_store(&d->fatal, ev.event_type);
			break;
		case IBV_EVENT_PORT_ERR:
			MUONI_WARN(d->vc->ctx, "%s port %d is down: its "
				   "connections fail once their retries run out",
				   ibv_get_device_name(d->verbs->device),
				   ev.element.port_num);
			break;
		case IBV_EVENT_PORT_ACTIVE:
			MUONI_INFO(d->vc->ctx, "%s port %d is active",
				   ibv_get_device_name(d->verbs->device),
				   ev.element.port_num);
			break;
		default:
			MUONI_DEBUG(d->vc->ctx, "%s: async event %s",
				    ibv_get_device_name(d->verbs->device),
				    ibv_event_type_str(ev.event_type));
			break;
		}
		ibv_ack_async_event(&ev);
	}
	pthread_mutex_unlock(&async_lock);
}

static void id_release(struct muoni_verbs_ctx *vc, struct rdma_cm_id *id)
{
	struct vdev *d;

	if (!id)
		return;
	for (d = vc ? vc->devs : NULL; d; d = d->next) {
		struct rdma_cm_id **n;

		if (!d->dead || d->verbs != id->verbs)
			continue;
		n = realloc(d->dead_ids, (d->n_dead_ids + 1) * sizeof(*n));
		if (!n)
			break;
		d->dead_ids = n;
		d->dead_ids[d->n_dead_ids++] = id;
		return;
	}
	rdma_destroy_id(id);
}

static void vdev_free(struct vdev *d)
{
	struct muon_ctx *ctx = d->vc->ctx;
	struct vdev **pp;
	unsigned i;

	for (pp = &d->vc->devs; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	if (d->async_h.fd >= 0)
		muoni_ctx_fd_del(ctx, &d->async_h);
	if (d->ch_h.fd >= 0)
		muoni_ctx_fd_del(ctx, &d->ch_h);
	for (i = 0; i < d->n_mems; i++)
		ibv_dereg_mr(d->mems[i].mr);
	for (i = 0; i < d->n_grave; i++)
		ibv_dereg_mr(d->grave[i].mr);
	free(d->mems);
	free(d->grave);
	areg_del(d->srq);
	areg_del(d->rcq);
	if (d->srq)
		ibv_destroy_srq(d->srq);
	if (d->rcq) {
		if (d->cq_unacked)
			ibv_ack_cq_events(d->rcq, d->cq_unacked);
		ibv_destroy_cq(d->rcq);
	}
	if (d->ch)
		ibv_destroy_comp_channel(d->ch);
	if (d->rbuf_mr)
		ibv_dereg_mr(d->rbuf_mr);
	if (d->rbufs)
		munmap(d->rbufs, (size_t)d->srq_depth * RBUF_LEN);
	if (d->qpd)
		ibv_dealloc_pd(d->qpd);
	if (d->td)
		ibv_dealloc_td(d->td);
	if (d->pd)
		ibv_dealloc_pd(d->pd);
	free(d->refill);
	free(d->qpt);
	if (d->n_dead_ids) {
		unsigned k;

		for (k = 0; k < d->n_dead_ids; k++)
			rdma_destroy_id(d->dead_ids[k]);
		/* Let librdmacm notice the removal and close its context of
		 * the dead device, so the kernel can finish removing it (it
		 * waits for every user context; librdmacm 44 only re-syncs
		 * while another device exists). */
		rdma_free_devices(rdma_get_devices(NULL));
	}
	free(d->dead_ids);
	free(d);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return MUONI_ERR_ERRNO("fcntl O_NONBLOCK");
	return 0;
}

/* The context's resources on the device an id resolved to. */
static int vdev_get(struct muoni_verbs_ctx *vc, struct ibv_context *verbs,
		    struct vdev **out)
{
	struct ibv_device_attr attr;
	struct ibv_srq_init_attr sa;
	const char *name;
	struct vdev *d;
	uint32_t k;
	int rc;

	for (d = vc->devs; d; d = d->next) {
		if (d->verbs != verbs)
			continue;
		if (d->dead)
			return MUONI_ERR(MUON_EIO, "%s was removed",
					 ibv_get_device_name(verbs->device));
		*out = d;
		return 0;
	}
	name = ibv_get_device_name(verbs->device);
	if (ibv_query_device(verbs, &attr))
		return MUONI_ERR_ERRNO("ibv_query_device %s", name);
	d = calloc(1, sizeof(*d));
	if (!d)
		return MUONI_ERR(MUON_ENOMEM, "device state");
	d->vc = vc;
	d->verbs = verbs;
	d->ch_h.fd = -1;
	d->async_h.fd = -1;
	d->next = vc->devs;
	vc->devs = d;
	d->srq_depth = SRQ_DEPTH_MAX;
	if (attr.max_srq_wr > 0 && (uint32_t)attr.max_srq_wr < d->srq_depth)
		d->srq_depth = (uint32_t)attr.max_srq_wr;
	if (d->srq_depth < 2 * SRQ_BATCH) {
		rc = MUONI_ERR(MUON_EUNSUPPORTED, "%s: shared receive queues of "
			       "%d entries at most", name, attr.max_srq_wr);
		goto err;
	}
	d->srq_limit = d->srq_depth / 4;
	d->pd = ibv_alloc_pd(verbs);
	if (!d->pd) {
		rc = MUONI_ERR_ERRNO("ibv_alloc_pd %s", name);
		goto err;
	}
	{
		struct ibv_td_init_attr ta = {.comp_mask = 0};

		d->td = ibv_alloc_td(verbs, &ta);
		if (d->td) {
			struct ibv_parent_domain_init_attr pa = {
				.pd = d->pd, .td = d->td, .comp_mask = 0};

			d->qpd = ibv_alloc_parent_domain(verbs, &pa);
			if (!d->qpd) {
				ibv_dealloc_td(d->td);
				d->td = NULL;
			}
		}
	}
	d->ch = ibv_create_comp_channel(verbs);
	if (!d->ch) {
		rc = MUONI_ERR_ERRNO("ibv_create_comp_channel %s", name);
		goto err;
	}
	d->rcq = ibv_create_cq(verbs, (int)d->srq_depth + PEND_MAX, d, d->ch,
			       0);
	if (!d->rcq) {
		rc = MUONI_ERR_ERRNO("ibv_create_cq %s (%u entries)", name,
				     d->srq_depth);
		goto err;
	}
	memset(&sa, 0, sizeof(sa));
	sa.srq_context = d;
	sa.attr.max_wr = d->srq_depth;
	sa.attr.max_sge = 1;
	d->srq = ibv_create_srq(d->pd, &sa);
	if (!d->srq) {
		rc = MUONI_ERR_ERRNO("ibv_create_srq %s (%u entries)", name,
				     d->srq_depth);
		goto err;
	}
	d->rbufs = map_region((size_t)d->srq_depth * RBUF_LEN);
	d->refill = calloc(d->srq_depth, sizeof(*d->refill));
	if (!d->rbufs || !d->refill) {
		rc = MUONI_ERR(MUON_ENOMEM, "receive buffers");
		goto err;
	}
	d->rbuf_mr = reg(d, d->rbufs, (size_t)d->srq_depth * RBUF_LEN,
			 IBV_ACCESS_LOCAL_WRITE, "receive buffers");
	if (!d->rbuf_mr) {
		rc = MUON_EIO;
		goto err;
	}
	for (k = 0; k < d->srq_depth; k++)
		d->refill[k] = k;
	d->n_refill = d->srq_depth;
	srq_refill(d);
	if (d->n_refill) {
		rc = MUONI_ERR(MUON_EIO, "%s: could not fill the shared "
			       "receive queue", name);
		goto err;
	}
	srq_arm_limit(d);
	rc = set_nonblock(d->ch->fd);
	if (!rc)
		rc = areg_add(d->srq, d, AREG_DEV);
	if (!rc)
		rc = areg_add(d->rcq, d, AREG_DEV);
	if (rc)
		goto err;
	d->ch_h.fd = d->ch->fd;
	d->ch_h.cb = ch_cb;
	rc = muoni_ctx_fd_add(vc->ctx, &d->ch_h, EPOLLIN);
	if (rc) {
		d->ch_h.fd = -1;
		goto err;
	}
	d->async_h.fd = verbs->async_fd;
	d->async_h.cb = async_cb;
	rc = muoni_ctx_fd_add(vc->ctx, &d->async_h, EPOLLIN);
	if (rc) {
		d->async_h.fd = -1;
		goto err;
	}
	if (ibv_req_notify_cq(d->rcq, 0)) {
		rc = MUONI_ERR_ERRNO("ibv_req_notify_cq %s", name);
		goto err;
	}
	d->armed = true;
	MUONI_INFO(vc->ctx, "verbs: using %s (SRQ of %u receives, %s)", name,
		   d->srq_depth, d->qpd ? "lock-free queue pairs through a "
		   "thread domain" : "no thread domains: the provider locks");
	*out = d;
	return 0;

err:
	vdev_free(d);
	return rc;
}

/* ---------------------------------------------------------- send side */

/* Reclaim send slots and staging space; 0, or the status of the first
 * failed work request. */
static int scq_reap(struct vconn *v)
{
	struct ibv_wc wc[16];
	int n, i;

	if (MUONI_UNLIKELY(v->tx_err))
		return v->tx_err;
	n = ibv_poll_cq(v->scq, 16, wc);
	for (i = 0; i < n; i++) {
		if (MUONI_UNLIKELY(wc[i].status != IBV_WC_SUCCESS)) {
			if (wc[i].status == IBV_WC_REM_ACCESS_ERR ||
			    wc[i].status == IBV_WC_REM_INV_REQ_ERR) {
				v->base.ctx->ctr.proto_errors++;
				v->tx_err = MUONI_ERR(MUON_EPROTO, "%s: the peer "
						      "refused our write (%s): "
						      "it gave a bad ring",
						      v->base.desc,
						      wc_status(wc[i].status));
			} else if (wc[i].status == IBV_WC_WR_FLUSH_ERR) {
				v->tx_err = MUONI_ERR(MUON_ECLOSED, "%s: queue "
						      "pair flushed",
						      v->base.desc);
			} else {
				v->tx_err = MUONI_ERR(MUON_EIO, "%s: send "
						      "failed: %s",
						      v->base.desc,
						      wc_status(wc[i].status));
			}
			return v->tx_err;
		}
		v->sq_done = wc[i].wr_id;
	}
	while (v->m_tail != v->m_head &&
	       v->marks[v->m_tail % STAGE_MARKS].seq <= v->sq_done) {
		v->st_tail = v->marks[v->m_tail % STAGE_MARKS].head;
		v->m_tail++;
	}
	if (n < 0)
		return MUONI_ERR(MUON_EIO, "%s: polling the send queue failed",
				 v->base.desc);
	return 0;
}

/* Room for `k` more send work requests: 1, 0 if not now, or an error. */
static inline int sq_room(struct vconn *v, unsigned k)
{
	int rc;

	if (MUONI_LIKELY(v->sq_posted - v->sq_done + k <= SQ_DEPTH &&
			 !v->tx_err))
		return 1;
	rc = scq_reap(v);
	if (rc)
		return rc;
	return v->sq_posted - v->sq_done + k <= SQ_DEPTH;
}

/* Signal this one? Every SIG_EVERY-th, and whatever stage space hangs on. */
static inline unsigned sig_flag(struct vconn *v, bool force)
{
	if (force || ++v->unsignaled >= SIG_EVERY) {
		v->unsignaled = 0;
		return IBV_SEND_SIGNALED;
	}
	return 0;
}

/* Copy into the staging area; NULL if it is full for now. */
static uint8_t *stage_put(struct vconn *v, const void *p, size_t len)
{
	uint64_t off, need;

	if (len > STAGE_LEN / 2 || v->m_head - v->m_tail >= STAGE_MARKS)
		return NULL;
	off = v->st_head % STAGE_LEN;
	/* Never wrap a copy: skip the tail end of the area. */
	need = off + len > STAGE_LEN ? len + (STAGE_LEN - off) : len;
	if (v->st_head + need - v->st_tail > STAGE_LEN) {
		if (scq_reap(v))
			return NULL;
		if (v->st_head + need - v->st_tail > STAGE_LEN)
			return NULL;
	}
	if (off + len > STAGE_LEN) {
		v->st_head += STAGE_LEN - off;
		off = 0;
	}
	memcpy(v->stage + off, p, len);
	v->st_head += len;
	/* Freed when the (signalled) work request after this copy is done. */
	v->marks[v->m_head % STAGE_MARKS].seq = v->sq_posted + 1;
	v->marks[v->m_head % STAGE_MARKS].head = v->st_head;
	v->m_head++;
	return v->stage + off;
}

/* The lkey of a send log, registering it on first use. */
static int mem_lkey(struct vconn *v, const uint8_t *p, size_t len,
		    uint32_t *lkey)
{
	struct vdev *d = v->dev;
	struct vmem *m;
	unsigned i;

	if (MUONI_LIKELY(p >= v->mc_base && p + len <= v->mc_end &&
			 v->mc_gen == d->mem_gen)) {
		*lkey = v->mc_lkey;
		return 1;
	}
	for (i = 0; i < d->n_mems; i++) {
		m = &d->mems[i];
		if (p >= m->base && p + len <= m->base + m->len)
			goto found;
	}
	return 0;
found:
	v->mc_base = m->base;
	v->mc_end = m->base + m->len;
	v->mc_lkey = m->mr->lkey;
	v->mc_gen = d->mem_gen;
	*lkey = v->mc_lkey;
	return 1;
}

/* Register a send log the first time a push comes from it. Core's send
 * logs are the only multi-frame sources that are not short control
 * queues; anything else goes through the staging area. */
static void mem_learn(struct vconn *v, const uint8_t *p)
{
	struct muon_pub *pub;
	struct vdev *d = v->dev;
	struct vmem *nm;

	for (pub = v->base.ctx->pubs; pub; pub = pub->next) {
		const uint8_t *b = pub->log.buf;
		size_t l = pub->log.cap + MUONI_SENDLOG_SLACK;

		if (!b || p < b || p >= b + l)
			continue;
		nm = realloc(d->mems, (d->n_mems + 1) * sizeof(*nm));
		if (!nm)
			return;
		d->mems = nm;
		nm = &d->mems[d->n_mems];
		nm->mr = ibv_reg_mr(d->pd, (void *)b, l, 0);
		if (!nm->mr) {
			MUONI_WARN(v->base.ctx, "%s: cannot register a send log "
				   "(%s): frames are copied", v->base.desc,
				   strerror(errno));
			return;
		}
		nm->base = b;
		nm->len = l;
		nm->dead_at = 0;
		d->n_mems++;
		return;
	}
}

/* Post one RDMA WRITE_WITH_IMM of `len` bytes (from sg) at ring offset
 * `off`, position `pos`. */
static inline int post_write(struct vconn *v, struct ibv_sge *sg, int nsg,
			     uint32_t len, uint64_t pos, bool force_sig)
{
	struct ibv_send_wr wr, *bad;
	int rc;

	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	wr.imm_data = htobe32((uint32_t)(pos >> 3));
	wr.wr.rdma.remote_addr = v->raddr + (pos & v->tmask);
	wr.wr.rdma.rkey = v->rkey;
	wr.sg_list = sg;
	wr.num_sge = nsg;
	wr.send_flags = (len <= v->max_inline ? IBV_SEND_INLINE : 0) |
			sig_flag(v, force_sig);
	wr.wr_id = v->sq_posted + 1;
	rc = ibv_post_send(v->qp, &wr, &bad);
	if (MUONI_UNLIKELY(rc))
		return MUONI_ERR(MUON_EIO, "%s: ibv_post_send: %s",
				 v->base.desc, strerror(rc));
	v->sq_posted++;
	v->base.tx_count++;
	return 0;
}

/* Refresh the reader's position from the credit word it writes. */
static inline int cons_refresh(struct vconn *v)
{
	uint64_t w = v->wpos;
	uint64_t c = atomic_load_explicit(
		(_Atomic uint64_t *)(void *)v->credit_page,
		memory_order_acquire);

	if (MUONI_UNLIKELY(c > w || w - c > v->tcap || c < v->cons))
		return MUONI_ERR(MUON_EPROTO, "%s: subscriber reports position "
				 "%llu, we wrote %llu", v->base.desc,
				 (unsigned long long)c, (unsigned long long)w);
	v->cons = c;
	return 0;
}

/*
 * Free ring space for a write of `len` bytes at the write position,
 * skipping to the next lap if it does not fit before the end. Returns 1
 * with *pos set, 0 when the reader has not freed enough, or an error.
 */
static inline int ring_room(struct vconn *v, uint64_t len, uint64_t *pos)
{
	uint64_t w = v->wpos, off = w & v->tmask;
	uint64_t need = off + len > v->tcap ? len + (v->tcap - off) : len;

	if (MUONI_UNLIKELY(w + need - v->cons > v->tcap)) {
		int rc = cons_refresh(v);
		if (rc)
			return rc;
		if (w + need - v->cons > v->tcap)
			return 0;
	}
	*pos = off + len > v->tcap ? w + (v->tcap - off) : w;
	return 1;
}

static int verbs_push(struct muoni_conn *c, const uint8_t *frames, size_t len,
		      size_t *taken)
{
	struct vconn *v = VC(c);
	const struct muoni_frame_hdr *h;
	size_t done = 0;
	int rc = 0;

	*taken = 0;
	if (MUONI_UNLIKELY(!v->have_ring || v->cm != VCM_UP))
		return 0;
	while (done < len) {
		uint64_t w = v->wpos, room_end, space, first, limit, chunk;
		struct ibv_sge sg;
		uint32_t lkey = 0;
		bool reg_ok, staged = false;

		h = (const void *)(frames + done);
		if (MUONI_UNLIKELY(h->len < MUONI_FRAME_HDR_LEN ||
				   h->type == MUONI_FT_PAD ||
				   muoni_align8(h->len) > len - done))
			goto bad_frame;
		first = muoni_align8(h->len);
		room_end = v->tcap - (w & v->tmask);
		space = v->tcap - (w - v->cons);
		if (first + (first > room_end ? room_end : 0) > space) {
			rc = cons_refresh(v);
			if (rc)
				goto out;
			space = v->tcap - (w - v->cons);
			if (first + (first > room_end ? room_end : 0) > space)
				goto out;
		}
		if (first > room_end) {
			/* Next lap; the immediate tells the reader. */
			w += room_end;
			space -= room_end;
			room_end = v->tcap;
		}
		/* Registered memory (a send log) goes straight from where it
		 * is; anything else inline, or through the staging area. */
		reg_ok = mem_lkey(v, frames + done, len - done, &lkey);
		if (!reg_ok) {
			mem_learn(v, frames + done);
			reg_ok = mem_lkey(v, frames + done, len - done, &lkey);
		}
		limit = room_end < space ? room_end : space;
		if (limit > (reg_ok ? (1u << 20) : STAGE_LEN / 4))
			limit = reg_ok ? (1u << 20) : STAGE_LEN / 4;
		if (limit < first)
			limit = first;
		/* Whole frames, as many as fit, in one write. */
		chunk = first;
		while (done + chunk < len) {
			const struct muoni_frame_hdr *n =
				(const void *)(frames + done + chunk);
			uint64_t fl = muoni_align8(n->len);

			if (MUONI_UNLIKELY(n->len < MUONI_FRAME_HDR_LEN ||
					   n->type == MUONI_FT_PAD ||
					   fl > len - done - chunk)) {
				h = n;
				goto bad_frame;
			}
			if (chunk + fl > limit)
				break;
			chunk += fl;
		}
		rc = sq_room(v, 1);
		if (rc <= 0)
			goto out;
		sg.addr = (uintptr_t)(frames + done);
		sg.length = (uint32_t)chunk;
		sg.lkey = lkey;
		if (chunk > v->max_inline && !reg_ok) {
			uint8_t *s = stage_put(v, frames + done, chunk);

			if (!s) {
				rc = chunk > STAGE_LEN / 2
					     ? MUONI_ERR(MUON_EIO, "%s: a frame "
							 "of %llu bytes from "
							 "unregistered memory",
							 c->desc,
							 (unsigned long long)
								 chunk)
					     : 0;
				goto out;
			}
			sg.addr = (uintptr_t)s;
			sg.lkey = v->stage_mr->lkey;
			staged = true;
		}
		rc = post_write(v, &sg, 1, (uint32_t)chunk, w, staged);
		if (rc)
			goto out;
		v->wpos = w + chunk;
		done += chunk;
	}
out:
	*taken = done;
	return rc < 0 ? rc : 0;

bad_frame:
	*taken = done;
	return MUONI_ERR(MUON_EPROTO, "%s: internal: frame of type %u and %u "
			 "bytes pushed", c->desc, h->type, h->len);
}

static int verbs_push_msg(struct muoni_conn *c, uint32_t stream_id,
			  uint64_t seq, const void *payload, uint32_t plen)
{
	struct vconn *v = VC(c);
	uint32_t flen = MUONI_FRAME_HDR_LEN + plen;
	struct muoni_frame_hdr h;
	struct ibv_sge sg[2];
	uint64_t pos = 0;
	int rc;

	/* Only what goes inline: anything bigger is written from the
	 * (registered) send log, where it lands anyway. */
	if (MUONI_UNLIKELY(!v->have_ring || v->cm != VCM_UP ||
			   flen > v->max_inline))
		return 0;
	rc = ring_room(v, muoni_align8(flen), &pos);
	if (rc <= 0)
		return rc;
	rc = sq_room(v, 1);
	if (rc <= 0)
		return rc;
	/* Copied inline by the post: the stack copy need not outlive it. */
	muoni_frame_hdr_init(&h, MUONI_FT_DATA, flen, stream_id, seq);
	sg[0].addr = (uintptr_t)&h;
	sg[0].length = MUONI_FRAME_HDR_LEN;
	sg[0].lkey = 0;
	sg[1].addr = (uintptr_t)payload;
	sg[1].length = plen;
	sg[1].lkey = 0;
	rc = post_write(v, sg, plen ? 2 : 1, flen, pos, false);
	if (rc)
		return rc;
	v->wpos = pos + muoni_align8(flen);
	return 1;
}

/* ------------------------------------------------------- control channel */

static int post_send_msg(struct vconn *v, const void *p, size_t len)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sg;
	bool staged = false;
	int rc;

	rc = sq_room(v, 1);
	if (rc <= 0)
		return rc < 0 ? rc : MUON_EAGAIN;
	sg.addr = (uintptr_t)p;
	sg.length = (uint32_t)len;
	sg.lkey = 0;
	if (len > v->max_inline) {
		uint8_t *s = stage_put(v, p, len);
		if (!s)
			return MUON_EAGAIN;
		sg.addr = (uintptr_t)s;
		sg.lkey = v->stage_mr->lkey;
		staged = true;
	}
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_SEND;
	wr.sg_list = &sg;
	wr.num_sge = 1;
	wr.send_flags = (len <= v->max_inline ? IBV_SEND_INLINE : 0) |
			sig_flag(v, staged);
	wr.wr_id = v->sq_posted + 1;
	rc = ibv_post_send(v->qp, &wr, &bad);
	if (rc)
		return MUONI_ERR(MUON_EIO, "%s: ibv_post_send (control): %s",
				 v->base.desc, strerror(rc));
	v->sq_posted++;
	return 0;
}

static int txq_flush(struct vconn *v)
{
	size_t off = 0;
	int rc = 0;

	while (off < v->txq_len) {
		uint32_t l;

		memcpy(&l, v->txq + off, 4);
		rc = post_send_msg(v, v->txq + off + 4, l);
		if (rc)
			break;
		off += 4 + muoni_align8(l);
	}
	if (off) {
		memmove(v->txq, v->txq + off, v->txq_len - off);
		v->txq_len -= off;
	}
	return rc == MUON_EAGAIN ? 0 : rc;
}

static int txq_append(struct vconn *v, const void *p, size_t len)
{
	size_t need = 4 + muoni_align8((uint32_t)len);
	uint32_t l = (uint32_t)len;

	if (v->txq_len + need > v->txq_cap) {
		size_t ncap = v->txq_cap ? v->txq_cap * 2 : 4096;
		uint8_t *nb;

		while (ncap < v->txq_len + need)
			ncap *= 2;
		if (ncap > 16u << 20)
			return MUONI_ERR(MUON_ELIMIT, "%s: control queue above "
					 "16 MiB", v->base.desc);
		nb = realloc(v->txq, ncap);
		if (!nb)
			return MUONI_ERR(MUON_ENOMEM, "control queue");
		v->txq = nb;
		v->txq_cap = ncap;
	}
	memcpy(v->txq + v->txq_len, &l, 4);
	memcpy(v->txq + v->txq_len + 4, p, len);
	v->txq_len += need;
	return 0;
}

static int vx_send(struct vconn *v, const void *frame, size_t len)
{
	int rc;

	if (len > RBUF_LEN)
		return MUONI_ERR(MUON_ELIMIT, "%s: control message of %zu "
				 "bytes above the verbs limit of %u",
				 v->base.desc, len, RBUF_LEN);
	if (!v->qp || v->cm == VCM_GONE)
		return MUONI_ERR(MUON_ECLOSED, "%s: connection closed",
				 v->base.desc);
	if (v->txq_len || v->cm != VCM_UP)
		return txq_append(v, frame, len);
	rc = post_send_msg(v, frame, len);
	if (rc == MUON_EAGAIN)
		return txq_append(v, frame, len);
	return rc;
}

static int verbs_ctrl_send(struct muoni_conn *c, const void *frame, size_t len)
{
	return vx_send(VC(c), frame, len);
}

static int send_mem(struct vconn *v, int type, uint64_t addr, uint32_t rkey,
		    uint32_t size)
{
	uint8_t buf[MUONI_FRAME_HDR_LEN + sizeof(struct muoni_vx_mem)];
	struct muoni_frame_hdr h;
	struct muoni_vx_mem m = {.addr = addr, .rkey = rkey, .size = size};

	memset(&h, 0, sizeof(h));
	h.len = sizeof(buf);
	h.type = (uint16_t)type;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &m, sizeof(m));
	return vx_send(v, buf, sizeof(buf));
}

/* Subscriber side: tell the publisher how far we have read. */
static void credit_flush(struct vconn *v)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sg;
	uint64_t val = v->rpos;

	if (!v->have_peer_credit || v->cm != VCM_UP || v->rpos == v->credited)
		return;
	if (sq_room(v, 1) <= 0)
		return; /* the next poll or tick tries again */
	sg.addr = (uintptr_t)&val;
	sg.length = sizeof(val);
	sg.lkey = 0;
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.wr.rdma.remote_addr = v->peer_credit_addr;
	wr.wr.rdma.rkey = v->peer_credit_rkey;
	wr.sg_list = &sg;
	wr.num_sge = 1;
	wr.send_flags = IBV_SEND_INLINE | sig_flag(v, false);
	wr.wr_id = v->sq_posted + 1;
	if (ibv_post_send(v->qp, &wr, &bad))
		return;
	v->sq_posted++;
	v->credited = v->rpos;
}

/* ---------------------------------------------------------- receive side */

/* One WRITE_WITH_IMM landed in our ring. */
static int rx_write(struct vconn *v, uint32_t imm_be, uint32_t byte_len)
{
	uint64_t pos = v->rpos, off, used = 0;
	uint32_t got = be32toh(imm_be);
	int delivered = 0, rc;

	if (MUONI_UNLIKELY(!v->ring || !v->ring_sent)) {
		vconn_proto(v, MUONI_ERR(MUON_EPROTO, "RDMA write with no ring "
					 "given out"));
		return 0;
	}
	if (MUONI_UNLIKELY(got != (uint32_t)(pos >> 3))) {
		uint64_t next = (pos | v->rmask) + 1;

		if (!(pos & v->rmask) || got != (uint32_t)(next >> 3)) {
			vconn_proto(v, MUONI_ERR(MUON_EPROTO, "write at ring "
					"position %llu, expected %llu",
					(unsigned long long)got * 8,
					(unsigned long long)pos));
			return 0;
		}
		pos = next;
	}
	off = pos & v->rmask;
	if (MUONI_UNLIKELY(byte_len < MUONI_FRAME_HDR_LEN ||
			   byte_len > v->rcap - off)) {
		vconn_proto(v, MUONI_ERR(MUON_EPROTO, "write of %u bytes at "
					 "ring offset %llu", byte_len,
					 (unsigned long long)off));
		return 0;
	}
	while (used < byte_len) {
		const uint8_t *f = v->ring + off + used;
		uint64_t rem = byte_len - used;
		struct muoni_frame_hdr h;

		if (MUONI_UNLIKELY(rem < MUONI_FRAME_HDR_LEN)) {
			rc = MUONI_ERR(MUON_EPROTO, "%llu stray bytes after "
				       "the last frame",
				       (unsigned long long)rem);
			goto proto;
		}
		/* One copy of the header: the peer can rewrite the ring. */
		memcpy(&h, f, sizeof(h));
		if (MUONI_UNLIKELY(!(h.type == MUONI_FT_DATA &&
				     h.len >= MUONI_FRAME_HDR_LEN &&
				     h.len <= rem &&
				     h.len - MUONI_FRAME_HDR_LEN <=
					     v->max_data))) {
			rc = h.len > rem
				     ? MUONI_ERR(MUON_EPROTO, "frame of %u bytes "
						 "in a write of %llu left",
						 h.len, (unsigned long long)rem)
				     : muoni_frame_check(&h, h.len,
							 muoni_align8((uint32_t)
								      rem),
							 v->max_data);
			if (!rc && (muoni_frame_is_ctrl(h.type) ||
				    h.type == MUONI_FT_PAD))
				rc = MUONI_ERR(MUON_EPROTO, "frame type %u in "
					       "the ring", h.type);
			if (rc)
				goto proto;
		}
		used += muoni_align8(h.len);
		rc = muoni_conn_rx(&v->base, &h, f + MUONI_FRAME_HDR_LEN);
		if (MUONI_UNLIKELY(rc < 0))
			break;
		delivered += rc;
	}
	v->rpos = pos + muoni_align8(byte_len);
	if (v->rpos - v->credited >= v->rcap / 4)
		credit_flush(v);
	return delivered;

proto:
	v->rpos = pos + muoni_align8(byte_len);
	vconn_proto(v, rc);
	return delivered;
}

static int rx_mem(struct vconn *v, const struct muoni_frame_hdr *h,
		  const uint8_t *p)
{
	struct muoni_vx_mem m;

	if (h->len != MUONI_FRAME_HDR_LEN + sizeof(m))
		return MUONI_ERR(MUON_EPROTO, "transport message of %u bytes",
				 h->len);
	memcpy(&m, p, sizeof(m));
	if (h->type == MUONI_VX_FT_CREDIT) {
		if (v->have_peer_credit || v->base.outbound)
			return MUONI_ERR(MUON_EPROTO, "unexpected CREDIT "
					 "message");
		v->peer_credit_addr = m.addr;
		v->peer_credit_rkey = m.rkey;
		v->have_peer_credit = true;
		return 0;
	}
	if (v->have_ring || !v->base.outbound)
		return MUONI_ERR(MUON_EPROTO, "unexpected RING message");
	if (m.size < 65536 || (m.size & (m.size - 1)) || m.size > (1u << 30))
		return MUONI_ERR(MUON_EPROTO, "ring size %u invalid", m.size);
	v->raddr = m.addr;
	v->rkey = m.rkey;
	v->tcap = m.size;
	v->tmask = m.size - 1;
	v->have_ring = true;
	return 0;
}

/* One SEND landed in receive buffer `idx`. */
static int rx_ctrl(struct vconn *v, uint32_t idx, uint32_t byte_len)
{
	const uint8_t *p = v->dev->rbufs + (size_t)idx * RBUF_LEN;
	struct muoni_frame_hdr h;
	int rc;

	if (byte_len < MUONI_FRAME_HDR_LEN || byte_len > RBUF_LEN) {
		rc = MUONI_ERR(MUON_EPROTO, "control message of %u bytes",
			       byte_len);
		goto proto;
	}
	memcpy(&h, p, sizeof(h));
	if (h.type == MUONI_VX_FT_RING || h.type == MUONI_VX_FT_CREDIT) {
		/* What arrived, not what the header claims: the rest of a
		 * shared receive buffer is some earlier message's. */
		rc = h.len == byte_len ? rx_mem(v, &h, p + MUONI_FRAME_HDR_LEN)
				       : MUONI_ERR(MUON_EPROTO, "transport "
						   "message of %u bytes says "
						   "%u", byte_len, h.len);
		if (rc)
			goto proto;
		v->base.rx_count++;
		return 0;
	}
	rc = muoni_frame_is_ctrl(h.type)
		     ? muoni_frame_check(&h, h.len, byte_len, 0)
		     : MUONI_ERR(MUON_EPROTO, "frame type %u on the control "
				 "channel", h.type);
	if (!rc && h.len != byte_len)
		rc = MUONI_ERR(MUON_EPROTO, "control frame of %u bytes in a "
			       "message of %u", h.len, byte_len);
	if (!rc && h.type == MUONI_FT_SUBSCRIBE && !v->have_ring)
		rc = MUONI_ERR(MUON_EPROTO, "SUBSCRIBE from a peer that gave "
			       "no ring to write into");
	if (rc)
		goto proto;
	rc = muoni_conn_rx(&v->base, &h, p + MUONI_FRAME_HDR_LEN);
	return rc < 0 ? 0 : rc;

proto:
	vconn_proto(v, rc);
	return 0;
}

static int wc_handle(struct vdev *d, const struct ibv_wc *wc)
{
	struct vconn *v;

	d->refill[d->n_refill++] = (uint32_t)wc->wr_id;
	v = qpt_find(d, wc->qp_num);
	if (MUONI_UNLIKELY(!v || v->zombie || v->base.state == MUONI_CONN_DEAD))
		return 0;
	if (MUONI_UNLIKELY(wc->status != IBV_WC_SUCCESS)) {
		switch (wc->status) {
		case IBV_WC_WR_FLUSH_ERR:
			break;
		case IBV_WC_REM_ACCESS_ERR:
		case IBV_WC_REM_INV_REQ_ERR:
		case IBV_WC_LOC_LEN_ERR:
		case IBV_WC_LOC_QP_OP_ERR:
			/* A write outside the ring or with a wrong rkey, a SEND
			 * bigger than a receive buffer (Soft-RoCE reports that
			 * as a local QP operation error): the peer's doing. */
			vconn_proto(v, MUONI_ERR(MUON_EPROTO, "receive failed: "
						 "%s", wc_status(wc->status)));
			break;
		default:
			vconn_fail(v, MUONI_ERR(MUON_EIO, "%s: receive failed: "
						"%s", v->base.desc,
						wc_status(wc->status)),
				   MUON_DOWN_DISCONNECTED);
		}
		return 0;
	}
	if (MUONI_LIKELY(wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM))
		return rx_write(v, wc->imm_data, wc->byte_len);
	if (wc->opcode == IBV_WC_RECV && !(wc->wc_flags & IBV_WC_WITH_IMM))
		return rx_ctrl(v, (uint32_t)wc->wr_id, wc->byte_len);
	vconn_proto(v, MUONI_ERR(MUON_EPROTO, "unexpected completion opcode "
				 "%d", wc->opcode));
	return 0;
}

/* Poll the shared receive CQ and hand completions to their connections. */
static int vdev_poll(struct vdev *d, unsigned budget)
{
	struct ibv_wc wc[CQ_POLL];
	int delivered = 0, n, i;
	unsigned seen = 0;

	if (MUONI_UNLIKELY(d->n_pend)) {
		unsigned k, np = d->n_pend;
		struct ibv_wc tmp[PEND_MAX];

		memcpy(tmp, d->pend, np * sizeof(*tmp));
		d->n_pend = 0;
		for (k = 0; k < np; k++)
			delivered += wc_handle(d, &tmp[k]);
		seen += np;
	}
	while (seen < budget) {
		unsigned want = budget - seen < CQ_POLL ? budget - seen
							 : CQ_POLL;
		n = ibv_poll_cq(d->rcq, (int)want, wc);
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			delivered += wc_handle(d, &wc[i]);
		seen += (unsigned)n;
		if ((unsigned)n < want)
			break;
	}
	if (d->n_refill >= SRQ_BATCH ||
	    (d->n_refill && d->srq_depth - d->n_refill <= d->srq_limit))
		srq_refill(d);
	return delivered;
}

/* Does the data path poll this device's CQ (a receiving connection)? */
static bool vdev_has_rx(const struct vdev *d)
{
	const struct muon_ctx *ctx = d->vc->ctx;
	unsigned i;

	for (i = 0; i < ctx->n_rx; i++) {
		const struct muoni_conn *c = ctx->rx[i];
		if (c->ops == &muoni_verbs_ops && c->state != MUONI_CONN_DEAD &&
		    VC(c)->dev == d)
			return true;
	}
	return false;
}

static int verbs_poll(struct muoni_conn *c, unsigned budget)
{
	struct vconn *v = VC(c);

	if (MUONI_UNLIKELY(!v->dev || v->dev->dead))
		return 0;
	return vdev_poll(v->dev, budget);
}

static int verbs_arm(struct muoni_conn *c)
{
	struct vconn *v = VC(c);
	struct vdev *d = v->dev;
	struct ibv_cq *cq;
	void *cq_ctx;
	int n;

	if (!d || d->dead || d->n_pend)
		return d && d->n_pend ? MUON_EBUSY : 0;
	while (!ibv_get_cq_event(d->ch, &cq, &cq_ctx)) {
		d->armed = false;
		if (++d->cq_unacked >= 64) {
			ibv_ack_cq_events(d->rcq, d->cq_unacked);
			d->cq_unacked = 0;
		}
	}
	if (ibv_req_notify_cq(d->rcq, 0))
		return 0;
	d->armed = true;
	/* Anything that arrived before the notification was armed would
	 * never wake us: take it now, deliver it on the next poll. */
	n = ibv_poll_cq(d->rcq, PEND_MAX, d->pend);
	if (n > 0) {
		d->n_pend = (unsigned)n;
		return MUON_EBUSY;
	}
	return 0;
}

/* ---------------------------------------------------------- connections */

static struct muoni_verbs_ctx *vctx_get(struct muon_ctx *ctx)
{
	struct muoni_verbs_ctx *vc = ctx->verbs;

	if (vc)
		return vc;
	vc = calloc(1, sizeof(*vc));
	if (!vc) {
		MUONI_ERR(MUON_ENOMEM, "verbs state");
		return NULL;
	}
	vc->ctx = ctx;
	vc->ech_h.fd = -1;
	vc->ech = rdma_create_event_channel();
	if (!vc->ech) {
		MUONI_ERR(errno == ENODEV || errno == ENOENT ? MUON_EUNSUPPORTED
							     : MUON_EIO,
			  "rdma_create_event_channel: %s (is rdma_ucm loaded "
			  "and an RDMA device present?)", strerror(errno));
		free(vc);
		return NULL;
	}
	ctx->verbs = vc;
	return vc;
}

static void ech_cb(struct muoni_fdh *h, uint32_t events);

static int vctx_watch(struct muoni_verbs_ctx *vc)
{
	int rc;

	if (vc->ech_h.fd >= 0)
		return 0;
	rc = set_nonblock(vc->ech->fd);
	if (rc)
		return rc;
	vc->ech_h.fd = vc->ech->fd;
	vc->ech_h.cb = ech_cb;
	rc = muoni_ctx_fd_add(vc->ctx, &vc->ech_h, EPOLLIN);
	if (rc)
		vc->ech_h.fd = -1;
	return rc;
}

static struct vconn *vconn_new(struct muon_ctx *ctx, struct rdma_cm_id *id,
			       bool outbound, const char *desc)
{
	struct vconn *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->id = id;
	v->max_data = ctx->cfg.max_msg_size;
	muoni_conn_init(&v->base, ctx, &muoni_verbs_ops, outbound, desc);
	return v;
}

static int ring_alloc(struct vconn *v)
{
	v->rcap = v->base.ctx->cfg.ring_size;
	v->rmask = v->rcap - 1;
	v->ring = map_region(v->rcap);
	if (!v->ring)
		return MUONI_ERR_ERRNO("%s: map a ring of %llu bytes",
				       v->base.desc,
				       (unsigned long long)v->rcap);
	v->ring_mr = reg(v->dev, v->ring, v->rcap,
			 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
			 "receive ring");
	return v->ring_mr ? 0 : MUON_EIO;
}

/* QP, send CQ, credit word and staging area, on the id's device. */
static int vconn_setup(struct vconn *v)
{
	struct ibv_qp_init_attr qa;
	uint32_t inl;
	int rc, k;

	rc = vdev_get(v->base.ctx->verbs, v->id->verbs, &v->dev);
	if (rc)
		return rc;
	v->dev->users++;
	if (v->dev->qpd) {
		struct ibv_cq_init_attr_ex ca = {
			.cqe = SQ_DEPTH + 8,
			.cq_context = NULL,
			.wc_flags = IBV_WC_STANDARD_FLAGS,
			.comp_mask = IBV_CQ_INIT_ATTR_MASK_FLAGS |
				     IBV_CQ_INIT_ATTR_MASK_PD,
			.flags = IBV_CREATE_CQ_ATTR_SINGLE_THREADED,
			.parent_domain = v->dev->qpd,
		};
		struct ibv_cq_ex *cx = ibv_create_cq_ex(v->id->verbs, &ca);

		if (cx)
			v->scq = ibv_cq_ex_to_cq(cx);
	}
	if (!v->scq)
		v->scq = ibv_create_cq(v->id->verbs, SQ_DEPTH + 8, NULL, NULL,
				       0);
	if (!v->scq)
		return MUONI_ERR_ERRNO("%s: ibv_create_cq", v->base.desc);
	/* The parent domain if there is one, else (or if the provider will
	 * not take it for a QP) the plain PD; the largest inline size the
	 * device grants out of 256, 64, 0. */
	for (k = v->dev->qpd ? 0 : 1; k < 2; k++) {
		struct ibv_pd *pd = k ? v->dev->pd : v->dev->qpd;

		for (inl = INLINE_WANT;; inl = inl > 64 ? 64 : 0) {
			memset(&qa, 0, sizeof(qa));
			qa.qp_context = v;
			qa.send_cq = v->scq;
			qa.recv_cq = v->dev->rcq;
			qa.srq = v->dev->srq;
			qa.qp_type = IBV_QPT_RC;
			qa.cap.max_send_wr = SQ_DEPTH;
			qa.cap.max_send_sge = 2;
			qa.cap.max_inline_data = inl;
			if (!rdma_create_qp(v->id, pd, &qa))
				goto created;
			if (!inl)
				break;
		}
	}
	return MUONI_ERR_ERRNO("%s: rdma_create_qp", v->base.desc);
created:
	v->qp = v->id->qp;
	v->qp_num = v->qp->qp_num;
	v->max_inline = qa.cap.max_inline_data;
	rc = areg_add(v->qp, v, AREG_CONN);
	if (!rc)
		rc = areg_add(v->scq, v, AREG_CONN);
	if (!rc)
		rc = qpt_insert(v->dev, v);
	if (rc)
		return rc;
	v->credit_page = map_region(4096);
	v->stage = map_region(STAGE_LEN);
	if (!v->credit_page || !v->stage)
		return MUONI_ERR(MUON_ENOMEM, "%s: credit word, staging",
				 v->base.desc);
	v->credit_mr = reg(v->dev, v->credit_page, 4096,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
			   "credit word");
	if (!v->credit_mr)
		return MUON_EIO;
	v->stage_mr = reg(v->dev, v->stage, STAGE_LEN, 0, "staging area");
	if (!v->stage_mr)
		return MUON_EIO;
	return 0;
}

static void tune_qp(struct vconn *v)
{
	struct ibv_qp_attr a = {.min_rnr_timer = QP_MIN_RNR_TIMER};

	/* RTS->RTS may change min_rnr_timer; rdmacm has no option for it. */
	if (ibv_modify_qp(v->qp, &a, IBV_QP_MIN_RNR_TIMER))
		MUONI_DEBUG(v->base.ctx, "%s: min_rnr_timer not changed: %s",
			    v->base.desc, strerror(errno));
}

static void conn_param_init(struct rdma_conn_param *p, const void *pd,
			    uint8_t len)
{
	memset(p, 0, sizeof(*p));
	p->private_data = pd;
	p->private_data_len = len;
	p->responder_resources = 1;
	p->initiator_depth = 1;
	p->retry_count = QP_RETRY_CNT;
	p->rnr_retry_count = QP_RNR_RETRY;
}

static void set_ack_timeout(struct rdma_cm_id *id)
{
	uint8_t t = QP_ACK_TIMEOUT;

	(void)rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT,
			      &t, sizeof(t));
}

/* Route known: build the QP and ring, then ask. */
static int connect_route(struct vconn *v)
{
	struct muon_ctx *ctx = v->base.ctx;
	struct rdma_conn_param p;
	struct muoni_vx_req *r = &v->req;
	int rc;

	rc = vconn_setup(v);
	if (!rc)
		rc = ring_alloc(v);
	if (rc)
		return rc;
	memset(r, 0, sizeof(*r));
	r->version = MUONI_VX_VERSION;
	r->len = sizeof(*r);
	r->ring_rkey = v->ring_mr->rkey;
	r->ctx_id = ctx->id;
	r->ring_addr = (uintptr_t)v->ring;
	r->ring_size = (uint32_t)v->rcap;
	r->nonce_time = (uint32_t)time(NULL);
	if (getrandom(&r->nonce_rand, sizeof(r->nonce_rand), 0) !=
	    sizeof(r->nonce_rand))
		r->nonce_rand = muoni_now_ns() ^ v->base.id;
	if (ctx->cfg.has_secret) {
		uint8_t m[11 + 40];

		r->flags = MUONI_VX_F_AUTH;
		memcpy(m, "muon-vx-req", 11);
		memcpy(m + 11, r, 40);
		muoni_auth_tag(ctx->cfg.secret, m, sizeof(m), r->tag);
	}
	v->ring_sent = true;
	conn_param_init(&p, r, sizeof(*r));
	if (rdma_connect(v->id, &p))
		return MUONI_ERR_ERRNO("%s: rdma_connect", v->base.desc);
	v->cm = VCM_CONNECTING;
	return 0;
}

static int check_rep(struct vconn *v, const uint8_t *pd, size_t len)
{
	struct muon_ctx *ctx = v->base.ctx;
	struct muoni_vx_rep rep;

	if (len < sizeof(rep))
		return MUONI_ERR(MUON_EPROTO, "%s: accept with %zu bytes of "
				 "private data", v->base.desc, len);
	memcpy(&rep, pd, sizeof(rep));
	if (rep.version != MUONI_VX_VERSION || rep.len != sizeof(rep))
		return MUONI_ERR(MUON_EPROTO, "%s: accept of version %u, "
				 "length %u", v->base.desc, rep.version,
				 rep.len);
	if (ctx->cfg.has_secret) {
		uint8_t m[11 + 24 + 12];

		if (!(rep.flags & MUONI_VX_F_AUTH)) {
			ctx->ctr.auth_rejects++;
			return MUONI_ERR(MUON_EAUTH, "%s: the listener has no "
					 "cluster secret: refusing it",
					 v->base.desc);
		}
		memcpy(m, "muon-vx-rep", 11);
		memcpy(m + 11, &rep, 24);
		memcpy(m + 35, &v->req.nonce_time, 4);
		memcpy(m + 39, &v->req.nonce_rand, 8);
		if (!muoni_auth_verify(ctx->cfg.secret, m, sizeof(m),
				       rep.tag)) {
			ctx->ctr.auth_rejects++;
			return MUONI_ERR(MUON_EAUTH, "%s: the listener's "
					 "authentication tag is wrong (another "
					 "cluster secret?)", v->base.desc);
		}
	}
	v->peer_credit_addr = rep.credit_addr;
	v->peer_credit_rkey = rep.credit_rkey;
	v->have_peer_credit = true;
	return 0;
}

static void on_established(struct vconn *v, const uint8_t *pd, size_t len)
{
	int rc;

	if (v->base.outbound) {
		rc = check_rep(v, pd, len);
		if (rc) {
			vconn_fail(v, rc, MUON_DOWN_PROTOCOL);
			return;
		}
	}
	v->cm = VCM_UP;
	tune_qp(v);
	MUONI_DEBUG(v->base.ctx, "%s: established, qp %u, inline %u",
		    v->base.desc, v->qp_num, v->max_inline);
	if (v->base.outbound) {
		/* First, before HELLO: where the listener returns credits if
		 * it ever subscribes over this connection. */
		rc = send_mem(v, MUONI_VX_FT_CREDIT,
			      (uintptr_t)v->credit_page, v->credit_mr->rkey, 8);
		if (rc) {
			vconn_fail(v, rc, MUON_DOWN_DISCONNECTED);
			return;
		}
		muoni_conn_transport_up(&v->base);
	} else {
		rc = txq_flush(v);
		if (rc)
			vconn_fail(v, rc, MUON_DOWN_DISCONNECTED);
	}
}

/* ---------------------------------------------------------- listener */

static void reject(struct muoni_verbs_ctx *vc, struct rdma_cm_id *id,
		   int reason)
{
	struct muoni_vx_rej r = {.version = MUONI_VX_VERSION,
				 .len = sizeof(r), .reason = (uint8_t)reason};

	if (rdma_reject(id, &r, sizeof(r)))
		MUONI_DEBUG(vc->ctx, "rdma_reject: %s", strerror(errno));
}

static bool replay_seen(struct muoni_verbs_ctx *vc,
			const struct muoni_vx_req *r)
{
	unsigned i;

	for (i = 0; i < REPLAY_SLOTS; i++)
		if (vc->replay[i].rand == r->nonce_rand &&
		    vc->replay[i].time == r->nonce_time &&
		    vc->replay[i].ctx_id == r->ctx_id)
			return true;
	vc->replay[vc->replay_next].rand = r->nonce_rand;
	vc->replay[vc->replay_next].time = r->nonce_time;
	vc->replay[vc->replay_next].ctx_id = r->ctx_id;
	vc->replay_next = (vc->replay_next + 1) % REPLAY_SLOTS;
	return false;
}

/* 0 to accept, else a MUONI_VX_REJ_* reason (with the error recorded). */
static int check_req(struct muoni_verbs_ctx *vc, const uint8_t *pd,
		     size_t len, struct muoni_vx_req *r, const char *from)
{
	struct muon_ctx *ctx = vc->ctx;
	int64_t skew;

	if (len < sizeof(*r)) {
		MUONI_ERR(MUON_EPROTO, "connect request from %s with %zu bytes "
			  "of private data", from, len);
		return MUONI_VX_REJ_VERSION;
	}
	memcpy(r, pd, sizeof(*r));
	if (r->version != MUONI_VX_VERSION || r->len != sizeof(*r)) {
		MUONI_ERR(MUON_EPROTO, "connect request from %s: version %u, "
			  "length %u", from, r->version, r->len);
		return MUONI_VX_REJ_VERSION;
	}
	if (ctx->cfg.has_secret) {
		uint8_t m[11 + 40];

		memcpy(m, "muon-vx-req", 11);
		memcpy(m + 11, r, 40);
		if (!(r->flags & MUONI_VX_F_AUTH)) {
			MUONI_ERR(MUON_EAUTH, "connect request from %s carries "
				  "no authentication tag", from);
			return MUONI_VX_REJ_AUTH;
		}
		if (!muoni_auth_verify(ctx->cfg.secret, m, sizeof(m), r->tag)) {
			MUONI_ERR(MUON_EAUTH, "connect request from %s: wrong "
				  "authentication tag", from);
			return MUONI_VX_REJ_AUTH;
		}
		skew = (int64_t)time(NULL) - (int64_t)r->nonce_time;
		if (skew > REPLAY_WINDOW_S || skew < -REPLAY_WINDOW_S) {
			MUONI_ERR(MUON_EAUTH, "connect request from %s is %lld s "
				  "off our clock: a replay, or unsynchronised "
				  "clocks", from, (long long)skew);
			return MUONI_VX_REJ_AUTH;
		}
		if (replay_seen(vc, r)) {
			MUONI_ERR(MUON_EAUTH, "connect request from %s replays "
				  "an earlier one", from);
			return MUONI_VX_REJ_AUTH;
		}
	} else if (!vc->warned_noauth) {
		vc->warned_noauth = true;
		MUONI_WARN(ctx, "verbs: accepting connections without "
			   "authentication (no secret_file configured)");
	}
	if (r->ring_size < 65536 || (r->ring_size & (r->ring_size - 1)) ||
	    r->ring_size > (1u << 30)) {
		MUONI_ERR(MUON_EPROTO, "connect request from %s: ring size %u",
			  from, r->ring_size);
		return MUONI_VX_REJ_VERSION;
	}
	if (ctx->n_conns >= MUONI_MAX_CONNS) {
		MUONI_ERR(MUON_ELIMIT, "refusing %s: %u connections already",
			  from, ctx->n_conns);
		return MUONI_VX_REJ_LIMIT;
	}
	return 0;
}

static void addr_text(struct sockaddr *sa, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa && sa->sa_family == AF_INET) {
		struct sockaddr_in *a = (void *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(buf, n, "%s:%u", host, port);
	} else if (sa && sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *a = (void *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(buf, n, "[%s]:%u", host, port);
	} else {
		snprintf(buf, n, "?");
	}
}

static void on_request(struct muoni_verbs_ctx *vc, struct vlistener *l,
		       struct rdma_cm_id *id, const uint8_t *pd, size_t len)
{
	struct muon_ctx *ctx = vc->ctx;
	struct muoni_vx_req r;
	struct muoni_vx_rep rep;
	struct rdma_conn_param p;
	struct vconn *v;
	char from[80];
	int why, rc;

	addr_text(rdma_get_peer_addr(id), from, sizeof(from));
	why = check_req(vc, pd, len, &r, from);
	if (why) {
		if (why == MUONI_VX_REJ_AUTH)
			ctx->ctr.auth_rejects++;
		else
			ctx->ctr.proto_errors++;
		MUONI_WARN(ctx, "%s: rejected: %s", l->base.bound,
			   muoni_err_msg());
		reject(vc, id, why);
		rdma_destroy_id(id);
		return;
	}
	v = vconn_new(ctx, id, false, l->base.bound);
	if (!v) {
		reject(vc, id, MUONI_VX_REJ_RESOURCE);
		rdma_destroy_id(id);
		return;
	}
	id->context = v;
	v->cm = VCM_CONNECTING;
	rc = vconn_setup(v);
	if (rc)
		goto fail;
	/* Authenticated: only now may anything be written to its ring. */
	v->raddr = r.ring_addr;
	v->rkey = r.ring_rkey;
	v->tcap = r.ring_size;
	v->tmask = r.ring_size - 1;
	v->have_ring = true;
	memset(&rep, 0, sizeof(rep));
	rep.version = MUONI_VX_VERSION;
	rep.len = sizeof(rep);
	rep.credit_rkey = v->credit_mr->rkey;
	rep.ctx_id = ctx->id;
	rep.credit_addr = (uintptr_t)v->credit_page;
	if (ctx->cfg.has_secret) {
		uint8_t m[11 + 24 + 12];

		rep.flags = MUONI_VX_F_AUTH;
		memcpy(m, "muon-vx-rep", 11);
		memcpy(m + 11, &rep, 24);
		memcpy(m + 35, &r.nonce_time, 4);
		memcpy(m + 39, &r.nonce_rand, 8);
		muoni_auth_tag(ctx->cfg.secret, m, sizeof(m), rep.tag);
	}
	conn_param_init(&p, &rep, sizeof(rep));
	if (rdma_accept(id, &p)) {
		rc = MUONI_ERR_ERRNO("%s: rdma_accept", v->base.desc);
		goto fail;
	}
	snprintf(v->base.desc + strlen(v->base.desc),
		 sizeof(v->base.desc) - strlen(v->base.desc), " from %s", from);
	muoni_conn_accepted(&v->base);
	return;

fail:
	reject(vc, id, MUONI_VX_REJ_RESOURCE);
	vconn_fail(v, rc, MUON_DOWN_DISCONNECTED);
}

static int rej_status(struct vconn *v, int status, const uint8_t *pd,
		      size_t len)
{
	struct muoni_vx_rej r;

	/* 28: IB_CM_REJ_CONSUMER_DEFINED, i.e. the listener said why. */
	if (status == 28 && len >= sizeof(r)) {
		memcpy(&r, pd, sizeof(r));
		if (r.version == MUONI_VX_VERSION && r.len == sizeof(r)) {
			switch (r.reason) {
			case MUONI_VX_REJ_AUTH:
				v->base.ctx->ctr.auth_rejects++;
				return MUONI_ERR(MUON_EAUTH, "%s: rejected: "
						 "authentication failed (check "
						 "the cluster secret)",
						 v->base.desc);
			case MUONI_VX_REJ_LIMIT:
				return MUONI_ERR(MUON_ELIMIT, "%s: rejected: the "
						 "peer has too many "
						 "connections", v->base.desc);
			case MUONI_VX_REJ_VERSION:
				return MUONI_ERR(MUON_EPROTO, "%s: rejected: "
						 "version or request not "
						 "understood", v->base.desc);
			default:
				return MUONI_ERR(MUON_EIO, "%s: rejected: peer "
						 "out of resources",
						 v->base.desc);
			}
		}
	}
	return MUONI_ERR(MUON_ENOTFOUND, "%s: rejected (status %d): nobody "
			 "listens there", v->base.desc, status);
}

/* ---------------------------------------------------------- cm events */

static void device_lost(struct muoni_verbs_ctx *vc, struct ibv_context *verbs,
			const char *why);

static void on_conn_event(struct muoni_verbs_ctx *vc, struct vconn *v,
			  enum rdma_cm_event_type type, int status,
			  const uint8_t *pd, size_t pdl)
{
	int rc;

	if (v->zombie) {
		if (type == RDMA_CM_EVENT_DISCONNECTED ||
		    type == RDMA_CM_EVENT_TIMEWAIT_EXIT ||
		    type == RDMA_CM_EVENT_DEVICE_REMOVAL)
			v->peer_gone = true;
		return;
	}
	switch (type) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		if (rdma_resolve_route(v->id, RESOLVE_MS))
			vconn_fail(v, MUONI_ERR_ERRNO("%s: rdma_resolve_route",
						      v->base.desc),
				   MUON_DOWN_DISCONNECTED);
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		rc = connect_route(v);
		if (rc)
			vconn_fail(v, rc, MUON_DOWN_DISCONNECTED);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
		vconn_fail(v, MUONI_ERR(MUON_ENOTFOUND, "%s: no RDMA device "
					"reaches the address (status %d)",
					v->base.desc, status),
			   MUON_DOWN_DISCONNECTED);
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
		vconn_fail(v, MUONI_ERR(MUON_ENOTFOUND, "%s: no route (status "
					"%d)", v->base.desc, status),
			   MUON_DOWN_DISCONNECTED);
		break;
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_CONNECT_ERROR:
		vconn_fail(v, MUONI_ERR(MUON_ENOTFOUND, "%s: %s (status %d)",
					v->base.desc, rdma_event_str(type),
					status),
			   MUON_DOWN_DISCONNECTED);
		break;
	case RDMA_CM_EVENT_REJECTED:
		rc = rej_status(v, status, pd, pdl);
		vconn_fail(v, rc, rc == MUON_EAUTH ? MUON_DOWN_PROTOCOL
						   : MUON_DOWN_DISCONNECTED);
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		on_established(v, pd, pdl);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		v->peer_gone = true;
		v->cm = VCM_GONE;
		/* What the peer wrote before it went is in our ring and CQ:
		 * deliver it, then report the connection down. */
		if (v->dev && !v->dev->dead)
			vdev_poll(v->dev, 1u << 20);
		vconn_fail(v, MUONI_ERR(MUON_ECLOSED, "%s: peer disconnected",
					v->base.desc),
			   MUON_DOWN_DISCONNECTED);
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		device_lost(vc, v->id->verbs, "device removed");
		break;
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
	case RDMA_CM_EVENT_ADDR_CHANGE:
	default:
		MUONI_DEBUG(vc->ctx, "%s: %s", v->base.desc,
			    rdma_event_str(type));
		break;
	}
}

static void ech_cb(struct muoni_fdh *h, uint32_t events)
{
	struct muoni_verbs_ctx *vc =
		(void *)((char *)h - offsetof(struct muoni_verbs_ctx, ech_h));
	struct rdma_cm_event *ev;
	struct vlistener *l;

	(void)events;
	while (!rdma_get_cm_event(vc->ech, &ev)) {
		/* Copy and ack first: destroying an id waits for its events
		 * to be acked. */
		enum rdma_cm_event_type type = ev->event;
		struct rdma_cm_id *id = ev->id, *lid = ev->listen_id;
		int status = ev->status;
		uint8_t pd[256];
		size_t pdl = 0;

		if (ev->param.conn.private_data) {
			pdl = ev->param.conn.private_data_len;
			if (pdl > sizeof(pd))
				pdl = sizeof(pd);
			memcpy(pd, ev->param.conn.private_data, pdl);
		}
		rdma_ack_cm_event(ev);
		if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
			on_request(vc, lid->context, id, pd, pdl);
			continue;
		}
		if (!id->context)
			continue;
		/* A listener's id, or a connection's. */
		for (l = vc->listeners; l; l = l->next)
			if (l->id == id)
				break;
		if (!l) {
			on_conn_event(vc, id->context, type, status, pd, pdl);
		} else if (type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
			device_lost(vc, id->verbs, "device removed");
		} else {
			MUONI_DEBUG(vc->ctx, "%s: %s", l->base.bound,
				    rdma_event_str(type));
		}
	}
}

/* ---------------------------------------------------------- teardown */

static void vconn_release(struct vconn *v)
{
	if (v->dev) {
		qpt_remove(v->dev, v);
		v->dev->users--;
	}
	areg_del(v->qp);
	areg_del(v->scq);
	if (v->qp)
		rdma_destroy_qp(v->id);
	if (v->scq)
		ibv_destroy_cq(v->scq);
	if (v->ring_mr)
		ibv_dereg_mr(v->ring_mr);
	if (v->credit_mr)
		ibv_dereg_mr(v->credit_mr);
	if (v->stage_mr)
		ibv_dereg_mr(v->stage_mr);
	/* Last: with it librdmacm may let go of the device. */
	id_release(v->base.ctx->verbs, v->id);
	if (v->ring)
		munmap(v->ring, v->rcap);
	if (v->credit_page)
		munmap(v->credit_page, 4096);
	if (v->stage)
		munmap(v->stage, STAGE_LEN);
	free(v->txq);
	free(v);
}

/* A zombie may go once its QP has no receive in flight: LAST_WQE_REACHED,
 * or a timeout for devices that never say so. Its last completions are
 * drained first so the QP number can be reused safely. */
static void zombies_reap(struct muoni_verbs_ctx *vc, bool all)
{
	struct vconn **pp = &vc->zombies, *v;
	uint64_t now = muoni_now_ns();

	while ((v = *pp)) {
		bool ready = all || !v->qp || !v->dev || v->dev->dead ||
			     (atomic_load(&v->aflags) & AF_LAST_WQE) ||
			     muoni_elapsed(now, v->zombie_since) > ZOMBIE_NS;
		if (!ready) {
			pp = &v->znext;
			continue;
		}
		*pp = v->znext;
		if (v->dev && !v->dev->dead && !all)
			vdev_poll(v->dev, 1u << 20);
		vconn_release(v);
	}
}

static void verbs_destroy(struct muoni_conn *c)
{
	struct vconn *v = VC(c);
	struct muoni_verbs_ctx *vc = c->ctx->verbs;
	struct ibv_qp_attr a = {.qp_state = IBV_QPS_ERR};

	if (!v->qp || !vc) {
		vconn_release(v);
		return;
	}
	/* Flush the QP; it stays in the CQ table until the receives it
	 * consumed have come out of the shared CQ. */
	if (v->cm == VCM_UP || v->cm == VCM_CONNECTING)
		(void)rdma_disconnect(v->id);
	(void)ibv_modify_qp(v->qp, &a, IBV_QP_STATE);
	v->zombie = true;
	v->cm = VCM_GONE;
	v->zombie_since = muoni_now_ns();
	v->znext = vc->zombies;
	vc->zombies = v;
}

static void device_lost(struct muoni_verbs_ctx *vc, struct ibv_context *verbs,
			const char *why)
{
	struct muoni_conn *c;
	struct vlistener *l;
	struct vdev *d;

	for (d = vc->devs; d; d = d->next)
		if (d->verbs == verbs && !d->dead) {
			MUONI_WARN(vc->ctx, "verbs: %s: %s; closing its "
				   "connections", ibv_get_device_name(
					   verbs->device), why);
			d->dead = true;
		}
	for (c = vc->ctx->conns; c; c = c->next) {
		struct vconn *v = VC(c);
		if (c->ops != &muoni_verbs_ops || c->state == MUONI_CONN_DEAD ||
		    !v->id || v->id->verbs != verbs)
			continue;
		vconn_fail(v, MUONI_ERR(MUON_EIO, "%s: %s", c->desc, why),
			   MUON_DOWN_DISCONNECTED);
	}
	/* Listeners bound to it must let go of the device too. */
	for (l = vc->listeners; l; l = l->next)
		if (l->id && l->id->verbs == verbs) {
			id_release(vc, l->id);
			l->id = NULL;
			l->lost = true;
			l->next_try = muoni_now_ns() + 1000000000ull;
		}
	zombies_reap(vc, false);
}

/* ---------------------------------------------------------- ops */

static int resolve(const struct muoni_endpoint *ep, bool passive,
		   struct sockaddr_storage *ss)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(port, sizeof(port), "%u", ep->port);
	rc = getaddrinfo(ep->host, port, &hints, &res);
	if (rc || !res)
		return MUONI_ERR(MUON_ENOTFOUND, "%s: %s", ep->text,
				 gai_strerror(rc));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

static int listen_id(struct muoni_verbs_ctx *vc, struct vlistener *l)
{
	struct sockaddr_storage ss;
	struct sockaddr *sa = (struct sockaddr *)&ss;
	char txt[80];
	int rc;

	rc = resolve(&l->base.ep, true, &ss);
	if (rc)
		return rc;
	if (rdma_create_id(vc->ech, &l->id, l, RDMA_PS_TCP))
		return MUONI_ERR_ERRNO("rdma_create_id");
	set_ack_timeout(l->id);
	if (sa->sa_family == AF_INET6) {
		int one = 1;
		(void)rdma_set_option(l->id, RDMA_OPTION_ID,
				      RDMA_OPTION_ID_AFONLY, &one, sizeof(one));
	}
	if (rdma_bind_addr(l->id, sa)) {
		rc = errno == EADDRINUSE
			     ? MUONI_ERR(MUON_EIO, "%s is already in use",
					 l->base.ep.text)
			     : MUONI_ERR_ERRNO("rdma_bind_addr %s (an "
					       "address of an RDMA device?)",
					       l->base.ep.text);
		goto err;
	}
	if (rdma_listen(l->id, 128)) {
		rc = MUONI_ERR_ERRNO("rdma_listen %s", l->base.ep.text);
		goto err;
	}
	addr_text(rdma_get_local_addr(l->id), txt, sizeof(txt));
	/* A listener that re-listens after its device came back keeps the
	 * port its peers know. */
	if (l->base.ep.port == 0)
		l->base.ep.port = ntohs(rdma_get_src_port(l->id));
	if (!l->base.bound[0])
		snprintf(l->base.bound, sizeof(l->base.bound), "verbs://%s",
			 txt);
	return 0;
err:
	rdma_destroy_id(l->id);
	l->id = NULL;
	return rc;
}

int muoni_verbs_local_addrs(char (*out)[64], int max)
{
	struct ifaddrs *ifa, *i;
	int n = 0;

	if (getifaddrs(&ifa))
		return 0;
	for (i = ifa; i && n < max; i = i->ifa_next) {
		struct rdma_cm_id *id = NULL;
		const struct sockaddr *sa = i->ifa_addr;
		bool rdma;

		if (!sa || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK) ||
		    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
			continue;
		/* Link-local IPv6 needs a scope a peer cannot use as is. */
		if (sa->sa_family == AF_INET6 &&
		    IN6_IS_ADDR_LINKLOCAL(
			    &((const struct sockaddr_in6 *)(const void *)sa)
				     ->sin6_addr))
			continue;
		/* An address is RDMA-capable when rdmacm binds it to a
		 * device; the synchronous id needs no event channel. */
		if (rdma_create_id(NULL, &id, NULL, RDMA_PS_TCP))
			break;
		rdma = !rdma_bind_addr(id, (struct sockaddr *)sa) && id->verbs;
		rdma_destroy_id(id);
		if (!rdma)
			continue;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
				  &((const struct sockaddr_in *)(const void *)sa)
					   ->sin_addr,
				  out[n], 64);
		else
			inet_ntop(AF_INET6,
				  &((const struct sockaddr_in6 *)(const void *)sa)
					   ->sin6_addr,
				  out[n], 64);
		n++;
	}
	freeifaddrs(ifa);
	return n;
}

int muoni_verbs_device_count(void)
{
	struct ibv_device **list;
	int n = 0;

	list = ibv_get_device_list(&n);
	if (!list)
		return 0;
	ibv_free_device_list(list);
	return n;
}

static int verbs_listen(struct muon_ctx *ctx, const struct muoni_endpoint *ep,
			struct muoni_listener **out)
{
	struct muoni_verbs_ctx *vc = vctx_get(ctx);
	struct vlistener *l;
	int rc;

	if (!vc)
		return MUON_EUNSUPPORTED;
	rc = vctx_watch(vc);
	if (rc)
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l)
		return MUONI_ERR(MUON_ENOMEM, "listener");
	l->base.ops = &muoni_verbs_ops;
	l->base.ctx = ctx;
	l->base.ep = *ep;
	rc = listen_id(vc, l);
	if (rc) {
		free(l);
		return rc;
	}
	l->next = vc->listeners;
	vc->listeners = l;
	*out = &l->base;
	return 0;
}

static void verbs_listener_close(struct muoni_listener *lb)
{
	struct vlistener *l = (struct vlistener *)lb, **pp;
	struct muoni_verbs_ctx *vc = lb->ctx->verbs;

	for (pp = &vc->listeners; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	if (l->id)
		rdma_destroy_id(l->id);
	free(l);
}

static int verbs_connect(struct muon_ctx *ctx, const struct muoni_endpoint *ep,
			 struct muoni_conn **out)
{
	struct muoni_verbs_ctx *vc = vctx_get(ctx);
	struct sockaddr_storage ss;
	struct rdma_cm_id *id;
	struct vconn *v;
	int rc;

	if (!vc)
		return MUON_EUNSUPPORTED;
	if (ctx->n_conns >= MUONI_MAX_CONNS)
		return MUONI_ERR(MUON_ELIMIT, "%u connections already",
				 ctx->n_conns);
	rc = vctx_watch(vc);
	if (!rc)
		rc = resolve(ep, false, &ss);
	if (rc)
		return rc;
	if (rdma_create_id(vc->ech, &id, NULL, RDMA_PS_TCP))
		return MUONI_ERR_ERRNO("rdma_create_id");
	v = vconn_new(ctx, id, true, ep->text);
	if (!v) {
		rdma_destroy_id(id);
		return MUONI_ERR(MUON_ENOMEM, "connection");
	}
	id->context = v;
	set_ack_timeout(id);
	v->cm = VCM_RESOLVING;
	if (rdma_resolve_addr(id, NULL, (struct sockaddr *)&ss, RESOLVE_MS)) {
		rc = MUONI_ERR_ERRNO("rdma_resolve_addr %s", ep->text);
		/* Reaped like any dead connection. */
		v->base.state = MUONI_CONN_DEAD;
		ctx->reap_pending = true;
		return rc;
	}
	*out = &v->base;
	return 0;
}

static int verbs_rx_open(struct muoni_conn *c)
{
	struct vconn *v = VC(c);
	int rc;

	if (v->ring)
		return 0;
	if (!v->dev)
		return MUONI_ERR(MUON_ESTATE, "%s: not connected", c->desc);
	rc = ring_alloc(v);
	if (rc)
		return rc;
	/* Before the SUBSCRIBE that follows: the send queue keeps order. */
	v->ring_sent = true;
	return send_mem(v, MUONI_VX_FT_RING, (uintptr_t)v->ring,
			v->ring_mr->rkey, (uint32_t)v->rcap);
}

static int verbs_check(struct muoni_conn *c)
{
	struct vconn *v = VC(c);
	int af = atomic_load(&v->aflags), rc;

	if (af & AF_QP_ACCESS) {
		c->ctx->ctr.proto_errors++;
		return MUONI_ERR(MUON_EPROTO, "%s: remote access error (the "
				 "peer broke the memory protocol)", c->desc);
	}
	if (af & AF_QP_FATAL)
		return MUONI_ERR(MUON_EIO, "%s: queue pair failed", c->desc);
	if (v->dev && (v->dev->dead || atomic_load(&v->dev->fatal)))
		return MUONI_ERR(MUON_EIO, "%s: device failed", c->desc);
	if (!v->qp || v->cm != VCM_UP)
		return 0;
	rc = scq_reap(v);
	if (!rc && v->txq_len)
		rc = txq_flush(v);
	if (rc)
		return rc;
	/* Credits below the write-back threshold still go out: when the
	 * stream went quiet since the last look (the write costs nothing
	 * then), or once a sixteenth of the ring is waiting. A publisher that
	 * ran out of room is waiting on exactly that. */
	if (v->rpos == v->rpos_seen || v->rpos - v->credited >= v->rcap / 16)
		credit_flush(v);
	v->rpos_seen = v->rpos;
	return 0;
}

static void verbs_ctx_tick(struct muon_ctx *ctx)
{
	struct muoni_verbs_ctx *vc = ctx->verbs;
	struct vlistener *l;
	struct vdev *d, *dn;
	uint64_t now;

	if (!vc)
		return;
	now = muoni_now_ns();
	for (d = vc->devs; d; d = dn) {
		dn = d->next;
		if (!d->dead && atomic_load(&d->fatal))
			device_lost(vc, d->verbs, "device or queue failed");
		if (!d->dead && atomic_exchange(&d->srq_limit_hit, 0)) {
			vdev_poll(d, 4096);
			srq_refill(d);
			srq_arm_limit(d);
		}
		if (!d->dead && d->n_refill)
			srq_refill(d);
		/* The last receiving connection may have gone since the last
		 * notification: poll and re-arm what the data path does not. */
		if (!d->dead && !vdev_has_rx(d)) {
			vdev_poll(d, 4096);
			vdev_arm_idle(d);
		}
		while (d->n_grave &&
		       muoni_elapsed(now, d->grave[0].dead_at) > MEM_GRAVE_NS) {
			ibv_dereg_mr(d->grave[0].mr);
			memmove(d->grave, d->grave + 1,
				--d->n_grave * sizeof(*d->grave));
		}
	}
	zombies_reap(vc, false);
	for (d = vc->devs; d; d = dn) {
		dn = d->next;
		if (d->dead && !d->users)
			vdev_free(d);
	}
	for (l = vc->listeners; l; l = l->next) {
		if (!l->lost || now < l->next_try)
			continue;
		if (listen_id(vc, l)) {
			l->next_try = now + 1000000000ull;
			continue;
		}
		l->lost = false;
		MUONI_INFO(ctx, "listening again on %s", l->base.bound);
	}
}

static void verbs_mem_forget(struct muon_ctx *ctx, const void *base,
			     size_t len)
{
	struct muoni_verbs_ctx *vc = ctx->verbs;
	struct vdev *d;
	unsigned i;

	if (!vc)
		return;
	for (d = vc->devs; d; d = d->next)
		for (i = 0; i < d->n_mems; i++) {
			struct vmem *m = &d->mems[i], *ng;

			if (m->base != base || m->len != len)
				continue;
			d->mem_gen++;
			/* Writes from it may still be in flight: the MR keeps
			 * its pages pinned until the graveyard lets go. */
			ng = realloc(d->grave, (d->n_grave + 1) * sizeof(*ng));
			if (ng) {
				d->grave = ng;
				m->dead_at = muoni_now_ns();
				d->grave[d->n_grave++] = *m;
			} else {
				ibv_dereg_mr(m->mr);
			}
			d->mems[i] = d->mems[--d->n_mems];
			break;
		}
}

static void verbs_ctx_fini(struct muon_ctx *ctx)
{
	struct muoni_verbs_ctx *vc = ctx->verbs;

	if (!vc)
		return;
	zombies_reap(vc, true);
	while (vc->listeners)
		verbs_listener_close(&vc->listeners->base);
	while (vc->devs)
		vdev_free(vc->devs);
	if (vc->ech_h.fd >= 0)
		muoni_ctx_fd_del(ctx, &vc->ech_h);
	rdma_destroy_event_channel(vc->ech);
	free(vc);
	ctx->verbs = NULL;
}

const struct muoni_transport_ops muoni_verbs_ops = {
	.name = "verbs",
	.listen = verbs_listen,
	.listener_close = verbs_listener_close,
	.connect = verbs_connect,
	.destroy = verbs_destroy,
	.push = verbs_push,
	.push_msg = verbs_push_msg,
	.poll = verbs_poll,
	.rx_open = verbs_rx_open,
	.ctrl_send = verbs_ctrl_send,
	.check = verbs_check,
	.arm = verbs_arm,
	.ctx_tick = verbs_ctx_tick,
	.ctx_fini = verbs_ctx_fini,
	.mem_forget = verbs_mem_forget,
};
