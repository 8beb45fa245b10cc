#include "transport/shm/shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/muoni.h"
#include "transport/shm/guard.h"

#define RXBUF_LEN (MUONI_CTRL_MAX + MUONI_FRAME_HDR_LEN + 64)

#define RING_MAX (256ull << 20) /* a peer's ring we map and touch */

/* One mapped ring: the one we own and read (rx), or the peer's that we
 * write (tx). */
struct shm_ring {
	uint8_t *map;
	size_t map_len;
	struct muoni_shm_ring_hdr *hdr;
	struct muoni_mring m; /* positions: see core/mring.h */
	int guard;     /* SIGBUS guard slot, -1 when unmapped */
};

struct shm_conn {
	struct muoni_conn base;
	struct muoni_fdh fdh;
	struct shm_ring rx;
	struct shm_ring tx;
	uint32_t max_data;
	int ring_fd;             /* rx ring file, keeps our flock */
	char path[320];
	bool fd_pending;         /* attach ring_fd to the next packet */
	bool peer_eof;
	bool want_out;
	uint8_t *txq;            /* queued control packets: u32 len + bytes */
	size_t txq_len;
	size_t txq_cap;
	uint8_t *rxbuf;
};

struct shm_listener {
	struct muoni_listener base;
	struct muoni_fdh fdh;
};

#define SC(c) ((struct shm_conn *)(c))

static socklen_t shm_addr(const char *name, struct sockaddr_un *a)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* Abstract namespace: nothing on disk, gone when the owner dies. */
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "muon-shm/%s",
		     name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)n);
}

/* ------------------------------------------------------- control channel */

static int send_packet(struct shm_conn *sc, const void *p, size_t len)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	bool attach = sc->fd_pending;
	ssize_t n;

	if (attach) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &sc->ring_fd, sizeof(int));
	}
	n = sendmsg(sc->fdh.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)len) {
		if (attach)
			sc->fd_pending = false;
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == ENOBUFS))
		return MUON_EAGAIN;
	if (n >= 0)
		return MUONI_ERR(MUON_EIO, "%s: short packet send",
				 sc->base.desc);
	return MUONI_ERR_ERRNO("%s: send", sc->base.desc);
}

static void set_want_out(struct shm_conn *sc, bool on)
{
	if (sc->want_out == on || sc->fdh.fd < 0 || sc->peer_eof)
		return;
	sc->want_out = on;
	muoni_ctx_fd_mod(sc->base.ctx, &sc->fdh,
			 EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0));
}

static int txq_flush(struct shm_conn *sc)
{
	size_t off = 0;
	int rc = 0;

	while (off < sc->txq_len) {
		uint32_t len;

		memcpy(&len, sc->txq + off, 4);
		rc = send_packet(sc, sc->txq + off + 4, len);
		if (rc)
			break;
		off += 4 + muoni_align8(len);
	}
	memmove(sc->txq, sc->txq + off, sc->txq_len - off);
	sc->txq_len -= off;
	set_want_out(sc, sc->txq_len != 0);
	return rc == MUON_EAGAIN ? 0 : rc;
}

static int txq_append(struct shm_conn *sc, const void *p, size_t len)
{
	size_t need = 4 + muoni_align8((uint32_t)len);
	uint32_t l32 = (uint32_t)len;

	if (sc->txq_len + need > sc->txq_cap) {
		size_t ncap = sc->txq_cap ? sc->txq_cap * 2 : 4096;
		uint8_t *nb;

		while (ncap < sc->txq_len + need)
			ncap *= 2;
		if (ncap > 16u * 1024 * 1024)
			return MUONI_ERR(MUON_ELIMIT, "%s: control queue above "
					 "16 MiB", sc->base.desc);
		nb = realloc(sc->txq, ncap);
		if (!nb)
			return MUONI_ERR(MUON_ENOMEM, "control queue");
		sc->txq = nb;
		sc->txq_cap = ncap;
	}
	memcpy(sc->txq + sc->txq_len, &l32, 4);
	memcpy(sc->txq + sc->txq_len + 4, p, len);
	sc->txq_len += need;
	set_want_out(sc, true);
	return 0;
}

static int shm_ctrl_send(struct muoni_conn *c, const void *frame, size_t len)
{
	struct shm_conn *sc = SC(c);
	int rc;

	if (sc->fdh.fd < 0 || sc->peer_eof)
		return MUONI_ERR(MUON_ECLOSED, "%s: control channel closed",
				 c->desc);
	if (sc->txq_len)
		return txq_append(sc, frame, len);
	rc = send_packet(sc, frame, len);
	if (rc == MUON_EAGAIN)
		return txq_append(sc, frame, len);
	return rc;
}

/* ------------------------------------------------------------ ring setup */

static int ring_map(struct shm_conn *sc, struct shm_ring *r, int fd,
		    uint64_t cap, bool writer)
{
	size_t len = MUONI_SHM_HDR_SIZE + cap + MUONI_SHM_SLACK;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, fd, 0);

	if (m == MAP_FAILED)
		return MUONI_ERR_ERRNO("%s: mmap ring of %llu bytes",
				       sc->base.desc, (unsigned long long)cap);
	r->guard = muoni_shm_guard_add(m, len);
	if (r->guard < 0) {
		munmap(m, len);
		return r->guard;
	}
	/* The writer writes frames, the reader only the header. */
	muoni_pretouch(m, len, writer);
	r->map = m;
	r->map_len = len;
	r->hdr = m;
	r->m.ring = (uint8_t *)m + MUONI_SHM_HDR_SIZE;
	r->m.cap = cap;
	r->m.mask = cap - 1;
	return 0;
}

/* Map the ring the peer sent (we write into it), after checking it. */
static int ring_attach(struct shm_conn *sc, int fd)
{
	struct muoni_shm_ring_hdr h;
	struct stat st;
	ssize_t n;
	int rc;

	if (fstat(fd, &st))
		return MUONI_ERR_ERRNO("%s: fstat ring", sc->base.desc);
	n = pread(fd, &h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h) || !S_ISREG(st.st_mode))
		return MUONI_ERR(MUON_EPROTO, "%s: ring is not a readable "
				 "regular file", sc->base.desc);
	if (h.magic != MUONI_SHM_MAGIC || h.version != MUONI_SHM_VERSION ||
	    h.hdr_size != MUONI_SHM_HDR_SIZE)
		return MUONI_ERR(MUON_EPROTO, "%s: ring header has bad magic "
				 "or version %u", sc->base.desc, h.version);
	if (h.ring_size < 65536 || h.ring_size > RING_MAX ||
	    (h.ring_size & (h.ring_size - 1)))
		return MUONI_ERR(MUON_EPROTO, "%s: ring size %llu invalid",
				 sc->base.desc,
				 (unsigned long long)h.ring_size);
	if ((uint64_t)st.st_size !=
	    MUONI_SHM_HDR_SIZE + h.ring_size + MUONI_SHM_SLACK)
		return MUONI_ERR(MUON_EPROTO, "%s: ring file is %lld bytes, "
				 "header says %llu", sc->base.desc,
				 (long long)st.st_size,
				 (unsigned long long)h.ring_size);
	rc = ring_map(sc, &sc->tx, fd, h.ring_size, true);
	if (rc)
		return rc;
	sc->tx.m.wake = &sc->tx.hdr->wake_enabled;
	sc->base.mring = &sc->tx.m;
	return 0;
}

/* Create, lock and map our own receive ring; its fd goes to the peer with
 * the next control packet. */
static int ring_create(struct shm_conn *sc, struct muon_ctx *ctx)
{
	uint64_t cap = ctx->cfg.ring_size;
	struct muoni_shm_ring_hdr *h;
	int rc;

	snprintf(sc->path, sizeof(sc->path), "%s/muon-%d-%016llx-%llu.ring",
		 ctx->cfg.shm_dir, (int)getpid(), (unsigned long long)ctx->id,
		 (unsigned long long)sc->base.id);
	sc->ring_fd = open(sc->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
					     O_NOFOLLOW, 0600);
	if (sc->ring_fd < 0) {
		rc = MUONI_ERR_ERRNO("create ring file %s", sc->path);
		sc->path[0] = '\0';
		return rc;
	}
	if (flock(sc->ring_fd, LOCK_EX | LOCK_NB))
		return MUONI_ERR_ERRNO("flock %s", sc->path);
	if (ftruncate(sc->ring_fd, (off_t)(MUONI_SHM_HDR_SIZE + cap +
					   MUONI_SHM_SLACK)))
		return MUONI_ERR_ERRNO("size %s to %llu bytes", sc->path,
				       (unsigned long long)cap);
	rc = ring_map(sc, &sc->rx, sc->ring_fd, cap, false);
	if (rc)
		return rc;
	h = sc->rx.hdr;
	h->version = MUONI_SHM_VERSION;
	h->hdr_size = MUONI_SHM_HDR_SIZE;
	h->ring_size = cap;
	h->owner_ctx_id = ctx->id;
	h->owner_pid = (int32_t)getpid();
	atomic_store_explicit((_Atomic uint64_t *)&h->magic, MUONI_SHM_MAGIC,
			      memory_order_release);
	sc->fd_pending = true;
	return 0;
}

/* ------------------------------------------------------------ fd events */

static void shm_peer_gone(struct shm_conn *sc, const char *why)
{
	if (!sc->rx.map || !sc->base.receiving) {
		muoni_conn_fail(&sc->base, MUONI_ERR(MUON_ECLOSED, "%s: %s",
				sc->base.desc, why), MUON_DOWN_DISCONNECTED);
		return;
	}
	/* What the peer wrote before it went is still in our ring; poll
	 * drains it and then reports the connection down. */
	sc->peer_eof = true;
	muoni_ctx_fd_del(sc->base.ctx, &sc->fdh);
}

/* One control packet: a whole control frame, checked before core sees it. */
static int shm_rx_packet(struct shm_conn *sc, size_t n)
{
	struct muoni_frame_hdr h;
	int rc;

	if (n < MUONI_FRAME_HDR_LEN) {
		rc = MUONI_ERR(MUON_EPROTO, "control packet of %zu bytes", n);
		goto proto;
	}
	memcpy(&h, sc->rxbuf, sizeof(h));
	rc = muoni_frame_is_ctrl(h.type)
		     ? muoni_frame_check(&h, h.len, n, 0)
		     : MUONI_ERR(MUON_EPROTO, "frame type %u on the control "
				 "channel", h.type);
	if (!rc && h.type == MUONI_FT_SUBSCRIBE && !sc->tx.map)
		rc = MUONI_ERR(MUON_EPROTO, "SUBSCRIBE from a peer that gave "
			       "no ring to write into");
	if (rc)
		goto proto;
	return muoni_conn_rx(&sc->base, &h, sc->rxbuf + MUONI_FRAME_HDR_LEN);

proto:
	sc->base.ctx->ctr.proto_errors++;
	muoni_err_push(rc, "%s", sc->base.desc);
	muoni_conn_fail(&sc->base, rc, MUON_DOWN_PROTOCOL);
	return rc;
}

static void shm_read_ctrl(struct shm_conn *sc)
{
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(4 * sizeof(int))];
		} cm;
		struct iovec iov = {.iov_base = sc->rxbuf, .iov_len = RXBUF_LEN};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cm.buf,
				     .msg_controllen = sizeof(cm.buf)};
		struct cmsghdr *c;
		int rfd = -1, rc;
		ssize_t n = recvmsg(sc->fdh.fd, &msg,
				    MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			shm_peer_gone(sc, n == 0 ? "peer closed the connection"
						 : strerror(errno));
			return;
		}
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_RIGHTS) {
				size_t k, nfd = (c->cmsg_len - CMSG_LEN(0)) /
						sizeof(int);
				for (k = 0; k < nfd; k++) {
					int f;
					memcpy(&f, CMSG_DATA(c) + k * sizeof(int),
					       sizeof(int));
					if (rfd < 0 && k == 0)
						rfd = f;
					else
						close(f);
				}
			}
		}
		if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
			if (rfd >= 0)
				close(rfd);
			sc->base.ctx->ctr.proto_errors++;
			muoni_conn_fail(&sc->base, MUONI_ERR(MUON_EPROTO,
					"%s: oversized control packet",
					sc->base.desc), MUON_DOWN_PROTOCOL);
			return;
		}
		if (rfd >= 0) {
			/* The peer's receive ring: we write into it. */
			rc = sc->tx.map ? MUONI_ERR(MUON_EPROTO, "%s: second "
						    "ring offered",
						    sc->base.desc)
					: ring_attach(sc, rfd);
			close(rfd);
			if (rc) {
				sc->base.ctx->ctr.proto_errors++;
				muoni_conn_fail(&sc->base, rc,
						MUON_DOWN_PROTOCOL);
				return;
			}
		}
		if (n == 1)
			continue; /* a wake-up byte: nothing to read */
		if (shm_rx_packet(sc, (size_t)n) < 0)
			return;
	}
}

static void shm_conn_cb(struct muoni_fdh *h, uint32_t events)
{
	struct shm_conn *sc = (void *)((char *)h -
				       offsetof(struct shm_conn, fdh));

	if (sc->base.state == MUONI_CONN_DEAD)
		return;
	if (events & EPOLLOUT) {
		if (sc->base.state == MUONI_CONN_CONNECTING) {
			/* Connected: start the handshake. */
			set_want_out(sc, sc->txq_len != 0);
			muoni_conn_transport_up(&sc->base);
			if (sc->base.state == MUONI_CONN_DEAD)
				return;
		}
		if (sc->txq_len) {
			int rc = txq_flush(sc);
			if (rc < 0) {
				muoni_conn_fail(&sc->base, rc,
						MUON_DOWN_DISCONNECTED);
				return;
			}
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		shm_read_ctrl(sc);
}

static struct shm_conn *shm_conn_new(struct muon_ctx *ctx, int fd,
				     bool outbound, const char *desc)
{
	struct shm_conn *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->rxbuf = malloc(RXBUF_LEN);
	if (!sc->rxbuf) {
		free(sc);
		return NULL;
	}
	sc->ring_fd = -1;
	sc->fdh.fd = fd;
	sc->fdh.cb = shm_conn_cb;
	muoni_conn_init(&sc->base, ctx, &muoni_shm_ops, outbound, desc);
	sc->max_data = ctx->cfg.max_msg_size;
	return sc;
}

static void shm_listener_cb(struct muoni_fdh *h, uint32_t events)
{
	struct shm_listener *l = (void *)((char *)h -
					  offsetof(struct shm_listener, fdh));
	struct muon_ctx *ctx = l->base.ctx;

	(void)events;
	for (;;) {
		struct shm_conn *sc;
		int fd = muoni_listener_accept(&l->base, h->fd, NULL, NULL);

		if (fd < 0)
			return;
		sc = shm_conn_new(ctx, fd, false, l->base.bound);
		if (!sc) {
			close(fd);
			continue;
		}
		if (muoni_ctx_fd_add(ctx, &sc->fdh, EPOLLIN | EPOLLRDHUP) ||
		    muoni_conn_accepted(&sc->base))
			muoni_conn_fail(&sc->base, MUON_EIO,
					MUON_DOWN_DISCONNECTED);
	}
}

/* ------------------------------------------------------------------ ops */

static int shm_listen(struct muon_ctx *ctx, const struct muoni_endpoint *ep,
		      struct muoni_listener **out)
{
	struct shm_listener *l = calloc(1, sizeof(*l));
	struct sockaddr_un a;
	socklen_t alen = shm_addr(ep->name, &a);
	int fd, rc;

	if (!l)
		return MUONI_ERR(MUON_ENOMEM, "listener");
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = MUONI_ERR_ERRNO("socket");
		goto err_free;
	}
	if (bind(fd, (struct sockaddr *)&a, alen)) {
		rc = errno == EADDRINUSE
			     ? MUONI_ERR(MUON_EIO, "%s is already in use by "
					 "another context", ep->text)
			     : MUONI_ERR_ERRNO("bind %s", ep->text);
		goto err_close;
	}
	if (listen(fd, 128)) {
		rc = MUONI_ERR_ERRNO("listen %s", ep->text);
		goto err_close;
	}
	l->base.ops = &muoni_shm_ops;
	l->base.ctx = ctx;
	l->base.ep = *ep;
	snprintf(l->base.bound, sizeof(l->base.bound), "%s", ep->text);
	l->fdh.fd = fd;
	l->fdh.cb = shm_listener_cb;
	rc = muoni_ctx_fd_add(ctx, &l->fdh, EPOLLIN);
	if (rc)
		goto err_close;
	*out = &l->base;
	return 0;

err_close:
	close(fd);
err_free:
	free(l);
	return rc;
}

static void shm_listener_close(struct muoni_listener *lb)
{
	struct shm_listener *l = (struct shm_listener *)lb;

	muoni_ctx_fd_del(lb->ctx, &l->fdh);
	close(l->fdh.fd);
	free(l);
}

static int shm_connect(struct muon_ctx *ctx, const struct muoni_endpoint *ep,
		       struct muoni_conn **out)
{
	struct sockaddr_un a;
	socklen_t alen = shm_addr(ep->name, &a);
	struct shm_conn *sc;
	int fd, rc;

	if (ctx->n_conns >= MUONI_MAX_CONNS)
		return MUONI_ERR(MUON_ELIMIT, "%u connections already",
				 ctx->n_conns);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MUONI_ERR_ERRNO("socket");
	if (connect(fd, (struct sockaddr *)&a, alen)) {
		rc = errno == ECONNREFUSED || errno == ENOENT
			     ? MUONI_ERR(MUON_ENOTFOUND, "nobody listens on %s",
					 ep->text)
			     : MUONI_ERR_ERRNO("connect %s", ep->text);
		close(fd);
		return rc;
	}
	sc = shm_conn_new(ctx, fd, true, ep->text);
	if (!sc) {
		close(fd);
		return MUONI_ERR(MUON_ENOMEM, "connection");
	}
	/* Ours to read; it goes to the peer with HELLO. */
	rc = ring_create(sc, ctx);
	if (!rc)
		rc = muoni_ctx_fd_add(ctx, &sc->fdh,
				      EPOLLIN | EPOLLOUT | EPOLLRDHUP);
	if (rc) {
		/* Reaped like any dead connection; its ops free the rest. */
		sc->base.state = MUONI_CONN_DEAD;
		ctx->reap_pending = true;
		return rc;
	}
	sc->want_out = true;
	*out = &sc->base;
	return 0;
}

static void shm_destroy(struct muoni_conn *c)
{
	struct shm_conn *sc = SC(c);

	if (sc->fdh.fd >= 0) {
		if (!sc->peer_eof)
			muoni_ctx_fd_del(c->ctx, &sc->fdh);
		close(sc->fdh.fd);
	}
	if (sc->rx.map) {
		muoni_shm_guard_del(sc->rx.guard);
		munmap(sc->rx.map, sc->rx.map_len);
	}
	if (sc->tx.map) {
		c->mring = NULL;
		muoni_shm_guard_del(sc->tx.guard);
		munmap(sc->tx.map, sc->tx.map_len);
	}
	if (sc->path[0])
		unlink(sc->path);
	if (sc->ring_fd >= 0)
		close(sc->ring_fd);
	free(sc->txq);
	free(sc->rxbuf);
	free(sc);
}

static void shm_wake(struct shm_conn *sc)
{
	_Atomic uint32_t *w = (_Atomic uint32_t *)&sc->tx.hdr->waiting;

	/* Pairs with the subscriber's store to `waiting` then load of the
	 * commit word in shm_arm(): one of the two sides sees the other. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(w, memory_order_relaxed) &&
	    atomic_exchange_explicit(w, 0, memory_order_relaxed))
		(void)send(sc->fdh.fd, "W", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Write one frame at the write position (see muoni_mring_write()). Returns
 * 0 when the subscriber has not freed enough room; a PAD to the end of the
 * ring is written first when the slot does not fit before it. The header
 * comes as values for the reason given at muoni_frame_hdr_put(): copying a
 * header struct that the caller had just written field by field was most
 * of the publisher's time.
 */
static inline int ring_put(struct shm_conn *sc, uint32_t tf,
			   uint32_t stream_id, uint64_t seq,
			   const void *payload, uint32_t plen)
{
	struct shm_ring *r = &sc->tx;
	uint32_t flen = muoni_mring_slot(MUONI_FRAME_HDR_LEN + plen);
	uint64_t wpos = r->m.pos, cap = r->m.cap;
	uint64_t off = wpos & r->m.mask;
	uint64_t need = off + flen > cap ? flen + (cap - off) : flen;

	if (MUONI_UNLIKELY(wpos + need - r->m.aux > cap)) {
		uint64_t cons = atomic_load_explicit(
			(_Atomic uint64_t *)&r->hdr->consumed,
			memory_order_acquire);
		if (cons > wpos || wpos - cons > cap)
			return MUONI_ERR(MUON_EPROTO, "%s: subscriber reports "
					 "position %llu, we wrote %llu",
					 sc->base.desc, (unsigned long long)cons,
					 (unsigned long long)wpos);
		r->m.aux = cons;
		if (wpos + need - cons > cap)
			return 0;
	}
	if (MUONI_UNLIKELY(off + flen > cap)) {
		struct muoni_frame_hdr *pad = (void *)(r->m.ring + off);
		pad->len = (uint32_t)(cap - off);
		pad->type = MUONI_FT_PAD;
		pad->flags = 0;
		atomic_store_explicit(muoni_mring_commit_word(r->m.ring + off),
				      wpos | 1, memory_order_release);
		wpos += cap - off;
		off = 0;
	}
	muoni_mring_write(&r->m, wpos, off, flen, tf, stream_id, seq, payload,
			  plen);
	return 1;
}

static int shm_push(struct muoni_conn *c, const uint8_t *frames, size_t len,
		    size_t *taken)
{
	struct shm_conn *sc = SC(c);
	size_t done = 0;
	int rc = 0;

	if (MUONI_UNLIKELY(!sc->tx.map)) {
		*taken = 0;
		return 0;
	}
	while (done < len) {
		const struct muoni_frame_hdr *h = (const void *)(frames + done);

		/* Our own frames; a bad one is a bug here, never a crash. */
		if (MUONI_UNLIKELY(h->len < MUONI_FRAME_HDR_LEN ||
				   h->type == MUONI_FT_PAD ||
				   muoni_align8(h->len) > len - done)) {
			rc = MUONI_ERR(MUON_EPROTO, "%s: internal: frame of "
				       "type %u and %u bytes pushed", c->desc,
				       h->type, h->len);
			break;
		}
		rc = ring_put(sc, h->type | (uint32_t)h->flags << 16,
			      h->stream_id, h->seq, h + 1,
			      h->len - MUONI_FRAME_HDR_LEN);
		if (rc <= 0)
			break;
		done += muoni_align8(h->len);
	}
	*taken = done;
	if (done && MUONI_UNLIKELY(sc->tx.hdr->wake_enabled))
		shm_wake(sc);
	return rc < 0 ? rc : 0;
}

static int shm_push_msg(struct muoni_conn *c, uint32_t stream_id, uint64_t seq,
			const void *payload, uint32_t plen)
{
	struct shm_conn *sc = SC(c);
	int rc;

	if (MUONI_UNLIKELY(!sc->tx.map))
		return 0;
	rc = ring_put(sc, MUONI_FT_DATA, stream_id, seq, payload, plen);
	if (rc > 0 && MUONI_UNLIKELY(sc->tx.hdr->wake_enabled))
		shm_wake(sc);
	return rc;
}

static int shm_poll(struct muoni_conn *c, unsigned budget)
{
	struct shm_conn *sc = SC(c);
	struct shm_ring *r = &sc->rx;
	uint64_t pos = r->m.pos, cap = r->m.cap;
	unsigned n = 0, frames = 0, max_frames = budget * 4 + 64;
	int rc = 0;

	if (MUONI_UNLIKELY(!r->map))
		return 0;
	while (n < budget && frames++ < max_frames) {
		uint64_t off = pos & r->m.mask;
		uint8_t *f = r->m.ring + off;
		struct muoni_frame_hdr h;

		if (atomic_load_explicit(muoni_mring_commit_word(f), memory_order_acquire) !=
		    (pos | 1))
			break;
		/* One copy of the header: the peer can rewrite the ring under
		 * us, so checks and use must see the same values. */
		memcpy(&h, f, sizeof(h));
		/* len below the header wraps past max_data: one compare */
		if (MUONI_LIKELY(h.type == MUONI_FT_DATA &&
				 (uint32_t)(h.len - MUONI_FRAME_HDR_LEN) <=
					 sc->max_data &&
				 muoni_mring_slot(h.len) <= cap - off))
			goto deliver;
		if (h.type == MUONI_FT_PAD) {
			if (h.len != cap - off) {
				rc = MUONI_ERR(MUON_EPROTO, "PAD of %u bytes at "
					       "offset %llu", h.len,
					       (unsigned long long)off);
				goto proto;
			}
			pos += cap - off;
			continue;
		}
		rc = muoni_frame_check(&h, h.len, cap - off, sc->max_data);
		if (!rc && muoni_frame_is_ctrl(h.type))
			rc = MUONI_ERR(MUON_EPROTO, "control frame type %u in "
				       "the ring", h.type);
		if (!rc && muoni_mring_slot(h.len) > cap - off)
			rc = MUONI_ERR(MUON_EPROTO, "frame slot runs past the "
				       "ring end");
		if (MUONI_UNLIKELY(rc))
			goto proto;
deliver:
		rc = muoni_conn_rx(c, &h, f + MUONI_FRAME_HDR_LEN);
		pos += muoni_mring_slot(h.len);
		if (MUONI_UNLIKELY(rc < 0))
			break;
		n += (unsigned)rc;
		if (MUONI_UNLIKELY(pos - r->m.aux > cap / 4)) {
			r->m.aux = pos;
			atomic_store_explicit((_Atomic uint64_t *)&r->hdr->consumed,
					      pos, memory_order_release);
		}
	}
	r->m.pos = pos;
	if (pos != r->m.aux) {
		r->m.aux = pos;
		atomic_store_explicit((_Atomic uint64_t *)&r->hdr->consumed,
				      pos, memory_order_release);
	}
	if (rc < 0)
		return c->state == MUONI_CONN_DEAD ? 0 : rc;
	if (MUONI_UNLIKELY(sc->peer_eof) && n == 0 && frames == 1)
		muoni_conn_fail(c, MUONI_ERR(MUON_ECLOSED, "%s: publisher "
				"closed the connection", c->desc),
				MUON_DOWN_DISCONNECTED);
	return (int)n;

proto:
	r->m.pos = pos;
	c->ctx->ctr.proto_errors++;
	muoni_err_push(rc, "%s", c->desc);
	muoni_conn_fail(c, rc, MUON_DOWN_PROTOCOL);
	return 0;
}

static int shm_arm(struct muoni_conn *c)
{
	struct shm_conn *sc = SC(c);
	struct shm_ring *r = &sc->rx;
	uint8_t *f;

	if (sc->peer_eof)
		return MUON_EBUSY;
	if (!r->map)
		return 0;
	f = r->m.ring + (r->m.pos & r->m.mask);
	if (!r->hdr->wake_enabled)
		atomic_store_explicit((_Atomic uint32_t *)&r->hdr->wake_enabled,
				      1, memory_order_seq_cst);
	atomic_store_explicit((_Atomic uint32_t *)&r->hdr->waiting, 1,
			      memory_order_seq_cst);
	if (atomic_load_explicit(muoni_mring_commit_word(f), memory_order_seq_cst) ==
	    (r->m.pos | 1))
		return MUON_EBUSY;
	return 0;
}

static int shm_check(struct muoni_conn *c)
{
	struct shm_conn *sc = SC(c);

	if ((sc->rx.map && muoni_shm_guard_hit(sc->rx.guard)) ||
	    (sc->tx.map && muoni_shm_guard_hit(sc->tx.guard))) {
		c->ctx->ctr.proto_errors++;
		return MUONI_ERR(MUON_EPROTO, "%s: the peer shrank a shared "
				 "ring under our mapping", c->desc);
	}
	return 0;
}

/* Before our first subscription over a connection we accepted. */
static int shm_rx_open(struct muoni_conn *c)
{
	struct shm_conn *sc = SC(c);

	return sc->rx.map ? 0 : ring_create(sc, c->ctx);
}

const struct muoni_transport_ops muoni_shm_ops = {
	.name = "shm",
	.listen = shm_listen,
	.listener_close = shm_listener_close,
	.connect = shm_connect,
	.destroy = shm_destroy,
	.push = shm_push,
	.push_msg = shm_push_msg,
	.poll = shm_poll,
	.rx_open = shm_rx_open,
	.check = shm_check,
	.ctrl_send = shm_ctrl_send,
	.arm = shm_arm,
};

/* --------------------------------------------------------- stale rings */

void muoni_shm_cleanup_stale(struct muon_ctx *ctx)
{
	DIR *d = opendir(ctx->cfg.shm_dir);
	struct dirent *e;
	time_t now = time(NULL);

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[512];
		struct stat st;
		int pid, fd;
		size_t nl = strlen(e->d_name);

		if (strncmp(e->d_name, "muon-", 5) || nl < 6 ||
		    strcmp(e->d_name + nl - 5, ".ring") ||
		    sscanf(e->d_name, "muon-%d-", &pid) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/%s", ctx->cfg.shm_dir,
			 e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		/* The owner holds the lock for the ring's whole life; a free
		 * lock means it is gone, unless it is just being created, which
		 * the pid check (and, against pid reuse, the age) rules out. */
		if (!fstat(fd, &st) && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid() && !flock(fd, LOCK_EX | LOCK_NB) &&
		    ((kill(pid, 0) && errno == ESRCH) || now - st.st_mtime > 60)) {
			if (!unlink(path))
				MUONI_INFO(ctx, "removed stale ring %s", path);
		}
		close(fd);
	}
	closedir(d);
}
