/*
 * TCP transport: the same frames over a non-blocking stream socket with
 * TCP_NODELAY. The publisher sends runs of frames straight from the send
 * log; a frame the kernel took only part of is finished from a small
 * per-connection buffer before anything else, so streams never interleave
 * mid-frame. The subscriber reads into a buffer that always has room for
 * one whole frame and hands frames up in place.
 *
 * Coalescing. A send() costs microseconds (on loopback it also runs the
 * receiver's TCP processing), a publish tens of nanoseconds: one send per
 * message caps a stream at a few hundred thousand messages per second. So
 * a push to a busy connection is held back (taken = 0: the frames stay in
 * the send log, the sender lags) and the next one sends the whole run
 * that accumulated, with one send(). Busy means a send went out in this
 * poll interval (or the poll that began it flushed a batch) less than
 * TCP_HOLD_NS ago; a connection that was idle sends at once, inside the
 * publish, so a lone message pays nothing. What is held goes out at the
 * next muon_ctx_poll() (core pushes lagging senders with ctx->tx_flush
 * set), at muon_ctx_arm(), or with a later publish once TCP_HOLD_NS have
 * passed, whichever comes first; see tx_hold() for the rest of the rules.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/muoni.h"

#define RX_EXTRA (256u * 1024)

/* How long a send keeps the connection busy for tx_hold(): long enough to
 * gather a stream into few sends (a loopback send takes 5-10 us), short
 * enough that a publisher who does not poll still sends every so often. */
#define TCP_HOLD_NS 20000u
/* Most bytes held back per stream. It also keeps a held sender well inside
 * its send log (at least 4 x max_msg_size), so holding never makes a
 * publisher report back-pressure or cut a subscriber. */
#define TCP_HOLD_MAX (64u * 1024)
/* Streams held back at once per connection; a further one sends at once. */
#define TCP_HOLD_RUNS 4u

struct tcp_conn {
	struct muoni_conn base;
	struct muoni_fdh fdh;
	uint8_t *rx;
	size_t rx_cap;
	size_t rx_off;  /* first unparsed byte */
	size_t rx_len;  /* end of received bytes */
	uint32_t max_data;
	uint32_t frame_max; /* largest frame either way, header excluded */
	uint8_t *tx;    /* bytes that must go out before anything new */
	size_t tx_off;
	size_t tx_len;
	size_t tx_cap;
	bool connected;
	bool want_out;
	bool eof;
	/* coalescing, publisher side (tx_hold) */
	struct {
		const uint8_t *p; /* a run held back, one per send log */
		size_t len;
	} held[TCP_HOLD_RUNS];
	unsigned n_held;
	unsigned held_n;     /* pushes held since nothing was held */
	uint32_t hold_max;
	uint32_t busy_tick;  /* the poll interval in which we count as busy */
	uint64_t sent_ns;    /* when the last send returned */
};

struct tcp_listener {
	struct muoni_listener base;
	struct muoni_fdh fdh;
};

#define TC(c) ((struct tcp_conn *)(c))

static void set_want_out(struct tcp_conn *tc, bool on)
{
	if (tc->want_out == on || tc->eof)
		return;
	tc->want_out = on;
	muoni_ctx_fd_mod(tc->base.ctx, &tc->fdh,
			 EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0));
}

static int tx_keep(struct tcp_conn *tc, const uint8_t *p, size_t len)
{
	if (tc->tx_off && tc->tx_off == tc->tx_len)
		tc->tx_off = tc->tx_len = 0;
	if (tc->tx_len + len > tc->tx_cap) {
		size_t ncap = tc->tx_cap ? tc->tx_cap : 4096;
		uint8_t *nb;

		if (tc->tx_off) {
			memmove(tc->tx, tc->tx + tc->tx_off,
				tc->tx_len - tc->tx_off);
			tc->tx_len -= tc->tx_off;
			tc->tx_off = 0;
		}
		while (ncap < tc->tx_len + len)
			ncap *= 2;
		if (ncap > 64u * 1024 * 1024)
			return MUONI_ERR(MUON_ELIMIT, "%s: more than 64 MiB "
					 "waiting to be sent", tc->base.desc);
		if (ncap > tc->tx_cap) {
			nb = realloc(tc->tx, ncap);
			if (!nb)
				return MUONI_ERR(MUON_ENOMEM, "send buffer");
			tc->tx = nb;
			tc->tx_cap = ncap;
		}
	}
	memcpy(tc->tx + tc->tx_len, p, len);
	tc->tx_len += len;
	set_want_out(tc, true);
	return 0;
}

/* Returns bytes sent (>= 0) or a negative status for a broken link. */
static ssize_t tcp_send(struct tcp_conn *tc, const uint8_t *p, size_t len)
{
	ssize_t n;

	do
		n = send(tc->fdh.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	return MUONI_ERR_ERRNO("%s: send", tc->base.desc);
}

/* 0 when nothing is left pending. */
static int tx_flush(struct tcp_conn *tc)
{
	ssize_t n;

	if (tc->tx_off == tc->tx_len)
		return 0;
	n = tcp_send(tc, tc->tx + tc->tx_off, tc->tx_len - tc->tx_off);
	if (n < 0)
		return (int)n;
	tc->tx_off += (size_t)n;
	if (tc->tx_off < tc->tx_len)
		return MUON_EAGAIN;
	tc->tx_off = tc->tx_len = 0;
	set_want_out(tc, false);
	return 0;
}

/*
 * Whether to hold back the run at `frames` instead of sending it: only
 * while the connection is busy (see the file comment), never when core
 * wants it out now (ctx->tx_flush, ctx->armed), never for the control
 * queue, never past hold_max bytes. A run (one per send log, so one per
 * stream) is held only while it grows: offered again unchanged, nothing
 * was added behind it (core asks again: make room, drain) or the log
 * wrapped (the rest of the stream is at the log's start), and it goes. So
 * holding leaves no sender more than hold_max bytes behind.
 */
static inline bool tx_hold(struct tcp_conn *tc, const uint8_t *frames,
			   size_t len)
{
	const struct muon_ctx *ctx = tc->base.ctx;
	unsigned i;

	if (ctx->tx_flush || ctx->armed || tc->busy_tick != ctx->poll_tick ||
	    len > tc->hold_max || frames == tc->base.ctl_q)
		return false;
	for (i = 0; i < tc->n_held && tc->held[i].p != frames; i++)
		;
	if (i < tc->n_held ? len <= tc->held[i].len : i == TCP_HOLD_RUNS)
		return false;
	/* A clock read costs about as much as the rest of a publish: read it
	 * for the first hold after a send (a connection idle that long sends
	 * at once) and for every 8th after (a publisher that does not poll
	 * still sends every TCP_HOLD_NS or so). */
	if ((tc->held_n & 7) == 0 &&
	    muoni_elapsed(muoni_now_ns(), tc->sent_ns) >= TCP_HOLD_NS)
		return false;
	tc->held[i].p = frames;
	tc->held[i].len = len;
	if (i == tc->n_held)
		tc->n_held++;
	tc->held_n++;
	return true;
}

/* After a send of the run at `frames` that wrote something. */
static inline void tx_sent(struct tcp_conn *tc, const uint8_t *frames)
{
	const struct muon_ctx *ctx = tc->base.ctx;
	bool batch = tc->held_n > 1;
	unsigned i;

	if (ctx->tx_flush || tc->busy_tick != ctx->poll_tick) {
		/* The poll's flush, or a poll came since: whatever was held
		 * went (or its sender is gone). */
		tc->n_held = 0;
	} else {
		for (i = 0; i < tc->n_held; i++)
			if (tc->held[i].p == frames) {
				tc->held[i] = tc->held[--tc->n_held];
				break;
			}
	}
	if (!tc->n_held)
		tc->held_n = 0;
	/* The poll that flushed a batch was inside a stream: the interval it
	 * opens is busy too, else every batch would cost two sends. A single
	 * held message does not carry over, so a publisher that publishes
	 * once per poll is back to sending at once. */
	tc->busy_tick = ctx->poll_tick;
	if (ctx->tx_flush && ctx->in_poll && batch)
		tc->busy_tick++;
	tc->sent_ns = muoni_now_ns();
}

static int tcp_push(struct muoni_conn *c, const uint8_t *frames, size_t len,
		    size_t *taken)
{
	struct tcp_conn *tc = TC(c);
	size_t off = 0;
	ssize_t n;
	int rc;

	*taken = 0;
	if (tx_hold(tc, frames, len))
		return 0;
	if (MUONI_UNLIKELY(tc->tx_len)) {
		rc = tx_flush(tc);
		if (rc == MUON_EAGAIN)
			return 0;
		if (rc < 0)
			return rc;
	}
	n = tcp_send(tc, frames, len);
	if (n < 0)
		return (int)n;
	if (n > 0)
		tx_sent(tc, frames);
	if ((size_t)n < len) {
		/* Count the whole frames that went; keep the rest of a split
		 * one so the stream stays frame-aligned. */
		while (off < len) {
			const struct muoni_frame_hdr *h =
				(const void *)(frames + off);
			size_t flen = muoni_align8(h->len);
			if (off + flen > (size_t)n) {
				if ((size_t)n > off) {
					rc = tx_keep(tc, frames + n,
						     off + flen - (size_t)n);
					if (rc)
						return rc;
					off += flen;
				}
				break;
			}
			off += flen;
		}
		if (off < len)
			set_want_out(tc, true);
		*taken = off;
		return 0;
	}
	*taken = len;
	return 0;
}

static int tcp_ctrl_send(struct muoni_conn *c, const void *frame, size_t len)
{
	struct tcp_conn *tc = TC(c);
	ssize_t n = 0;

	if (tc->eof || !tc->connected)
		return MUONI_ERR(MUON_ECLOSED, "%s: not connected", c->desc);
	if (!tc->tx_len) {
		n = tcp_send(tc, frame, len);
		if (n < 0)
			return (int)n;
	}
	if ((size_t)n < len)
		return tx_keep(tc, (const uint8_t *)frame + n, len - (size_t)n);
	return 0;
}

/* Hand complete frames in rx to core. Returns DATA frames delivered. */
static int rx_parse(struct tcp_conn *tc, unsigned budget, int *err)
{
	struct muoni_conn *c = &tc->base;
	unsigned n = 0;

	while (n < budget && tc->rx_len - tc->rx_off >= MUONI_FRAME_HDR_LEN) {
		const uint8_t *f = tc->rx + tc->rx_off;
		struct muoni_frame_hdr h;
		size_t avail = tc->rx_len - tc->rx_off;
		int rc;

		memcpy(&h, f, sizeof(h));
		if (h.type == MUONI_FT_PAD) {
			*err = MUONI_ERR(MUON_EPROTO, "PAD frame in a stream");
			return (int)n;
		}
		if (muoni_align8(h.len) > avail) {
			/* Incomplete, but the header must still be sane and the
			 * frame must fit the buffer once compacted. */
			rc = muoni_frame_check(&h, h.len, tc->rx_cap,
					       tc->max_data);
			if (!rc && h.len > tc->frame_max + MUONI_FRAME_HDR_LEN)
				rc = MUONI_ERR(MUON_EPROTO, "frame of %u bytes "
					       "above the limit", h.len);
			if (rc) {
				*err = rc;
				return (int)n;
			}
			break;
		}
		rc = muoni_frame_check(&h, h.len, avail, tc->max_data);
		if (!rc && h.type == MUONI_FT_PAD)
			rc = MUONI_ERR(MUON_EPROTO, "PAD frame in a stream");
		if (rc) {
			*err = rc;
			return (int)n;
		}
		tc->rx_off += muoni_align8(h.len);
		rc = muoni_conn_rx(c, &h, f + MUONI_FRAME_HDR_LEN);
		if (rc < 0) {
			*err = MUON_ECLOSED;
			return (int)n;
		}
		n += (unsigned)rc;
	}
	if (tc->rx_off == tc->rx_len) {
		tc->rx_off = tc->rx_len = 0;
	} else if (tc->rx_cap - tc->rx_off < tc->frame_max + 2u * MUONI_FRAME_HDR_LEN +
					       RX_EXTRA / 2) {
		memmove(tc->rx, tc->rx + tc->rx_off, tc->rx_len - tc->rx_off);
		tc->rx_len -= tc->rx_off;
		tc->rx_off = 0;
	}
	return (int)n;
}

static void tcp_fail(struct tcp_conn *tc, int rc)
{
	struct muoni_conn *c = &tc->base;

	if (c->state == MUONI_CONN_DEAD)
		return;
	if (rc == MUON_EPROTO) {
		c->ctx->ctr.proto_errors++;
		muoni_err_push(rc, "%s", c->desc);
		muoni_conn_fail(c, rc, MUON_DOWN_PROTOCOL);
	} else {
		muoni_conn_fail(c, rc, MUON_DOWN_DISCONNECTED);
	}
}

static int tcp_read(struct tcp_conn *tc, unsigned budget)
{
	struct muoni_conn *c = &tc->base;
	int err = 0, n;
	ssize_t r;

	n = rx_parse(tc, budget, &err);
	if (err || (unsigned)n >= budget)
		goto out;
	if (tc->rx_len == tc->rx_cap) {
		/* Cannot happen with frames within limits: refuse, do not
		 * mistake a zero-length read for the end of the stream. */
		err = MUONI_ERR(MUON_EPROTO, "%s: receive buffer full without "
				"a whole frame", c->desc);
		goto out;
	}
	do
		r = recv(tc->fdh.fd, tc->rx + tc->rx_len,
			 tc->rx_cap - tc->rx_len, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		tc->rx_len += (size_t)r;
		n += rx_parse(tc, budget - (unsigned)n, &err);
	} else if (r == 0) {
		err = MUONI_ERR(MUON_ECLOSED, "%s: peer closed the connection",
				c->desc);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
		err = MUONI_ERR_ERRNO("%s: recv", c->desc);
	}
out:
	if (err && err != MUON_ECLOSED)
		tcp_fail(tc, err);
	else if (err && c->state != MUONI_CONN_DEAD)
		muoni_conn_fail(c, err, MUON_DOWN_DISCONNECTED);
	return n;
}

static int tcp_poll(struct muoni_conn *c, unsigned budget)
{
	struct tcp_conn *tc = TC(c);

	if (MUONI_UNLIKELY(!tc->connected))
		return 0;
	return tcp_read(tc, budget);
}

static void tcp_conn_cb(struct muoni_fdh *h, uint32_t events)
{
	struct tcp_conn *tc = (void *)((char *)h -
				       offsetof(struct tcp_conn, fdh));
	struct muoni_conn *c = &tc->base;
	int rc;

	if (c->state == MUONI_CONN_DEAD)
		return;
	if (!tc->connected) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
			errno = err ? err : errno;
			muoni_conn_fail(c, MUONI_ERR_ERRNO("connect %s",
					c->desc), MUON_DOWN_DISCONNECTED);
			return;
		}
		tc->connected = true;
		set_want_out(tc, false);
		muoni_conn_transport_up(c);
		return;
	}
	if (events & EPOLLOUT) {
		rc = tx_flush(tc);
		if (rc < 0 && rc != MUON_EAGAIN) {
			tcp_fail(tc, rc);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		tcp_read(tc, MUONI_DEFAULT_BUDGET);
}

static void tcp_tune(int fd)
{
	int one = 1;

	/* Latency first: no Nagle. Keepalive catches dead hosts that never
	 * send a FIN; muon's own heartbeats catch hung processes. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

static struct tcp_conn *tcp_conn_new(struct muon_ctx *ctx, int fd,
				     bool outbound, const char *desc)
{
	struct tcp_conn *tc = calloc(1, sizeof(*tc));
	uint32_t frame_max = ctx->cfg.max_msg_size > MUONI_CTRL_MAX
				     ? ctx->cfg.max_msg_size : MUONI_CTRL_MAX;

	if (!tc)
		return NULL;
	tc->max_data = ctx->cfg.max_msg_size;
	tc->frame_max = frame_max;
	tc->hold_max = ctx->cfg.max_msg_size < TCP_HOLD_MAX
			       ? ctx->cfg.max_msg_size : TCP_HOLD_MAX;
	/* Not busy: the first push goes at once. */
	tc->busy_tick = ctx->poll_tick - 1;
	tc->rx_cap = frame_max + 2u * MUONI_FRAME_HDR_LEN + RX_EXTRA;
	tc->rx = malloc(tc->rx_cap);
	if (!tc->rx) {
		free(tc);
		return NULL;
	}
	tc->fdh.fd = fd;
	tc->fdh.cb = tcp_conn_cb;
	muoni_conn_init(&tc->base, ctx, &muoni_tcp_ops, outbound, desc);
	return tc;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "tcp://[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const void *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, len, "tcp://%s:%u", host, ntohs(a->sin_port));
	}
}

static void tcp_listener_cb(struct muoni_fdh *h, uint32_t events)
{
	struct tcp_listener *l = (void *)((char *)h -
					  offsetof(struct tcp_listener, fdh));
	struct muon_ctx *ctx = l->base.ctx;

	(void)events;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct tcp_conn *tc;
		char peer[MUONI_EP_TEXT];
		int fd = muoni_listener_accept(&l->base, h->fd,
					       (struct sockaddr *)&ss, &sl);

		if (fd < 0)
			return;
		tcp_tune(fd);
		addr_text((struct sockaddr *)&ss, peer, sizeof(peer));
		tc = tcp_conn_new(ctx, fd, false, peer);
		if (!tc) {
			close(fd);
			continue;
		}
		tc->connected = true;
		if (muoni_ctx_fd_add(ctx, &tc->fdh, EPOLLIN | EPOLLRDHUP) ||
		    muoni_conn_accepted(&tc->base))
			muoni_conn_fail(&tc->base, MUON_EIO,
					MUON_DOWN_DISCONNECTED);
	}
}

static int resolve(const struct muoni_endpoint *ep, int passive,
		   struct addrinfo **out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = passive ? AI_PASSIVE : 0};
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", ep->port);
	/* Numeric first: a name lookup may block, numeric never does. */
	hints.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(ep->host, port, &hints, out);
	if (rc == EAI_NONAME) {
		hints.ai_flags &= ~AI_NUMERICHOST;
		rc = getaddrinfo(ep->host, port, &hints, out);
	}
	if (rc)
		return MUONI_ERR(MUON_ENOTFOUND, "resolve %s: %s", ep->text,
				 gai_strerror(rc));
	return 0;
}

static int tcp_listen(struct muon_ctx *ctx, const struct muoni_endpoint *ep,
		      struct muoni_listener **out)
{
	struct tcp_listener *l = calloc(1, sizeof(*l));
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1, rc;

	if (!l)
		return MUONI_ERR(MUON_ENOMEM, "listener");
	rc = resolve(ep, 1, &ai);
	if (rc)
		goto err_free;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		rc = MUONI_ERR_ERRNO("socket");
		goto err_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen)) {
		rc = MUONI_ERR_ERRNO("bind %s", ep->text);
		goto err_close;
	}
	if (listen(fd, 128)) {
		rc = MUONI_ERR_ERRNO("listen %s", ep->text);
		goto err_close;
	}
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	l->base.ops = &muoni_tcp_ops;
	l->base.ctx = ctx;
	l->base.ep = *ep;
	addr_text((struct sockaddr *)&ss, l->base.bound, sizeof(l->base.bound));
	l->fdh.fd = fd;
	l->fdh.cb = tcp_listener_cb;
	rc = muoni_ctx_fd_add(ctx, &l->fdh, EPOLLIN);
	if (rc)
		goto err_close;
	freeaddrinfo(ai);
	*out = &l->base;
	return 0;

err_close:
	close(fd);
err_free:
	if (ai)
		freeaddrinfo(ai);
	free(l);
	return rc;
}

static void tcp_listener_close(struct muoni_listener *lb)
{
	struct tcp_listener *l = (struct tcp_listener *)lb;

	muoni_ctx_fd_del(lb->ctx, &l->fdh);
	close(l->fdh.fd);
	free(l);
}

static int tcp_connect(struct muon_ctx *ctx, const struct muoni_endpoint *ep,
		       struct muoni_conn **out)
{
	struct addrinfo *ai = NULL;
	struct tcp_conn *tc;
	int fd, rc;

	if (ctx->n_conns >= MUONI_MAX_CONNS)
		return MUONI_ERR(MUON_ELIMIT, "%u connections already",
				 ctx->n_conns);
	rc = resolve(ep, 0, &ai);
	if (rc)
		return rc;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return MUONI_ERR_ERRNO("socket");
	}
	tcp_tune(fd);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
		rc = errno == ECONNREFUSED
			     ? MUONI_ERR(MUON_ENOTFOUND, "nobody listens on %s",
					 ep->text)
			     : MUONI_ERR_ERRNO("connect %s", ep->text);
		freeaddrinfo(ai);
		close(fd);
		return rc;
	}
	freeaddrinfo(ai);
	tc = tcp_conn_new(ctx, fd, true, ep->text);
	if (!tc) {
		close(fd);
		return MUONI_ERR(MUON_ENOMEM, "connection");
	}
	rc = muoni_ctx_fd_add(ctx, &tc->fdh, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
	if (rc) {
		tc->base.state = MUONI_CONN_DEAD;
		ctx->reap_pending = true;
		return rc;
	}
	tc->want_out = true;
	*out = &tc->base;
	return 0;
}

static void tcp_destroy(struct muoni_conn *c)
{
	struct tcp_conn *tc = TC(c);

	muoni_ctx_fd_del(c->ctx, &tc->fdh);
	close(tc->fdh.fd);
	free(tc->rx);
	free(tc->tx);
	free(tc);
}

static int tcp_arm(struct muoni_conn *c)
{
	struct tcp_conn *tc = TC(c);

	/* Bytes already buffered will not make the socket readable again. */
	return tc->rx_len - tc->rx_off >= MUONI_FRAME_HDR_LEN ? MUON_EBUSY : 0;
}

const struct muoni_transport_ops muoni_tcp_ops = {
	.name = "tcp",
	.listen = tcp_listen,
	.listener_close = tcp_listener_close,
	.connect = tcp_connect,
	.destroy = tcp_destroy,
	.push = tcp_push,
	.poll = tcp_poll,
	.ctrl_send = tcp_ctrl_send,
	.arm = tcp_arm,
};
