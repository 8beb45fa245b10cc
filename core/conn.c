/*
 * Connections, transport-independent: the HELLO handshake, one connection
 * per pair of contexts, dispatch of received frames (data to images,
 * subscriptions to publications), the ordered queue of stream-control
 * frames, liveness and teardown. A connection is bidirectional: each side
 * may subscribe to the other's publications over it. Transports call in
 * through the muoni_conn_* functions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/muoni.h"

void muoni_conn_init(struct muoni_conn *c, struct muon_ctx *ctx,
		     const struct muoni_transport_ops *ops, bool outbound,
		     const char *desc)
{
	c->ops = ops;
	c->ctx = ctx;
	c->outbound = outbound;
	c->state = outbound ? MUONI_CONN_CONNECTING : MUONI_CONN_HANDSHAKE;
	c->id = ++ctx->next_conn_id;
	c->rx_index = (unsigned)-1;
	c->last_rx_ns = muoni_now_ns();
	c->last_tx_ns = c->last_rx_ns;
	c->state_since_ns = c->last_rx_ns;
	snprintf(c->desc, sizeof(c->desc), "%s %s#%llu", ops->name, desc,
		 (unsigned long long)c->id);
	c->next = ctx->conns;
	c->prev = NULL;
	if (ctx->conns)
		ctx->conns->prev = c;
	ctx->conns = c;
	ctx->n_conns++;
}

int muoni_conn_accepted(struct muoni_conn *c)
{
	MUONI_DEBUG(c->ctx, "%s: accepted", c->desc);
	return 0;
}

/* ---------------------------------------------------------------- images */

static uint32_t img_hash(uint32_t stream_id, uint32_t mask)
{
	return (stream_id * 2654435761u) & mask;
}

static struct muoni_image *img_find(struct muoni_conn *c, uint32_t sid)
{
	uint32_t i;

	if (MUONI_LIKELY(c->img_last && c->img_last->stream_id == sid))
		return c->img_last;
	if (!c->img_tab)
		return NULL;
	for (i = img_hash(sid, c->img_mask);; i = (i + 1) & c->img_mask) {
		struct muoni_image *img = c->img_tab[i];
		if (!img)
			return NULL;
		if (img->stream_id == sid)
			return c->img_last = img;
	}
}

static int img_insert(struct muoni_conn *c, struct muoni_image *img)
{
	uint32_t i;

	if (c->n_img >= MUONI_MAX_STREAMS_PER_CONN)
		return MUONI_ERR(MUON_ELIMIT, "more than %u streams on one "
				 "connection", MUONI_MAX_STREAMS_PER_CONN);
	if (!c->img_tab || (c->n_img + 1) * 2 > c->img_mask + 1) {
		uint32_t ncap = c->img_tab ? (c->img_mask + 1) * 2 : 16;
		struct muoni_image **nt = calloc(ncap, sizeof(*nt));
		uint32_t j;

		if (!nt)
			return MUONI_ERR(MUON_ENOMEM, "image table");
		for (j = 0; c->img_tab && j <= c->img_mask; j++) {
			struct muoni_image *o = c->img_tab[j];
			if (!o)
				continue;
			for (i = img_hash(o->stream_id, ncap - 1); nt[i];
			     i = (i + 1) & (ncap - 1))
				;
			nt[i] = o;
		}
		free(c->img_tab);
		c->img_tab = nt;
		c->img_mask = ncap - 1;
	}
	for (i = img_hash(img->stream_id, c->img_mask); c->img_tab[i];
	     i = (i + 1) & c->img_mask)
		;
	c->img_tab[i] = img;
	c->n_img++;
	return 0;
}

/* Linear-probing delete by backward shift, so lookups need no tombstones. */
static void img_remove(struct muoni_conn *c, struct muoni_image *img)
{
	uint32_t i, j, k;

	if (c->img_last == img)
		c->img_last = NULL;
	for (i = img_hash(img->stream_id, c->img_mask); c->img_tab[i] != img;
	     i = (i + 1) & c->img_mask)
		;
	c->img_tab[i] = NULL;
	c->n_img--;
	for (j = (i + 1) & c->img_mask; c->img_tab[j];
	     j = (j + 1) & c->img_mask) {
		k = img_hash(c->img_tab[j]->stream_id, c->img_mask);
		/* Move j back to the hole at i unless its home lies in (i, j]. */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			c->img_tab[i] = c->img_tab[j];
			c->img_tab[j] = NULL;
			i = j;
		}
	}
	free(img);
}

static void conn_drop_images(struct muoni_conn *c, int reason,
			     const char *detail)
{
	uint32_t i;

	for (i = 0; c->img_tab && i <= c->img_mask; i++) {
		struct muoni_image *img = c->img_tab[i];
		if (!img)
			continue;
		muoni_sub_image_down(img, reason, detail);
		free(img);
		c->img_tab[i] = NULL;
	}
	c->n_img = 0;
	c->img_last = NULL;
}

/* ---------------------------------------------------------- sending side */

int muoni_conn_ctl_queue(struct muoni_conn *c, const void *frame, size_t len)
{
	if (c->ctl_len + len > c->ctl_cap) {
		size_t ncap = c->ctl_cap ? c->ctl_cap : 4096;
		uint8_t *nb;

		while (ncap < c->ctl_len + len)
			ncap *= 2;
		if (ncap > 16u * 1024 * 1024)
			return MUONI_ERR(MUON_ELIMIT, "%s: control queue above "
					 "16 MiB; peer is not reading",
					 c->desc);
		nb = realloc(c->ctl_q, ncap);
		if (!nb)
			return MUONI_ERR(MUON_ENOMEM, "control queue");
		c->ctl_q = nb;
		c->ctl_cap = ncap;
	}
	memcpy(c->ctl_q + c->ctl_len, frame, len);
	c->ctl_len += len;
	return 0;
}

/* Push queued stream-control frames; 0 when the queue is empty after. */
int muoni_conn_ctl_flush(struct muoni_conn *c)
{
	size_t taken = 0;
	int rc;

	if (!c->ctl_len)
		return 0;
	rc = c->ops->push(c, c->ctl_q, c->ctl_len, &taken);
	if (rc < 0) {
		muoni_conn_push_failed(c, rc);
		return rc;
	}
	if (taken) {
		c->tx_count++;
		memmove(c->ctl_q, c->ctl_q + taken, c->ctl_len - taken);
		c->ctl_len -= taken;
	}
	return c->ctl_len ? MUON_EAGAIN : 0;
}

void muoni_conn_push_failed(struct muoni_conn *c, int rc)
{
	if (rc == MUON_EPROTO) {
		/* The peer lied about its ring (position, size): its fault. */
		c->ctx->ctr.proto_errors++;
		muoni_conn_fail(c, rc, MUON_DOWN_PROTOCOL);
	} else {
		muoni_conn_fail(c, rc, MUON_DOWN_DISCONNECTED);
	}
}

static int conn_ctrl_send(struct muoni_conn *c, const void *f, size_t len)
{
	int rc = c->ops->ctrl_send(c, f, len);

	if (rc < 0)
		muoni_conn_fail(c, rc, MUON_DOWN_DISCONNECTED);
	else
		c->tx_count++;
	return rc;
}

static void conn_send_hello(struct muoni_conn *c)
{
	struct muoni_hello h = {.version = MUONI_PROTO_VERSION,
				.ctx_id = c->ctx->id};
	uint8_t buf[128];
	size_t n;

	snprintf(h.name, sizeof(h.name), "%s", c->ctx->cfg.name);
	n = muoni_enc_hello(buf, sizeof(buf), &h);
	conn_ctrl_send(c, buf, n);
}

void muoni_conn_send_subscribe(struct muoni_conn *c, struct muon_sub *s)
{
	struct muoni_resume *res = NULL;
	uint32_t nres = 0;
	unsigned i;
	size_t cap, n;
	uint8_t *buf;

	if (c->state != MUONI_CONN_UP || s->closed)
		return;
	if (!c->receiving) {
		/* First subscription over this connection: data will flow
		 * towards us, so the transport must be ready and the data
		 * path must poll it. */
		int rc = c->ops->rx_open ? c->ops->rx_open(c) : 0;
		if (!rc)
			rc = muoni_ctx_rx_add(c->ctx, c);
		if (rc) {
			muoni_conn_fail(c, rc, MUON_DOWN_DISCONNECTED);
			return;
		}
		c->receiving = true;
	}
	/* Streams this subscription already saw from this very publisher
	 * context resume where they stopped. */
	if (s->n_resume) {
		res = malloc(s->n_resume * sizeof(*res));
		if (!res) {
			muoni_conn_fail(c, MUONI_ERR(MUON_ENOMEM, "resume"),
					MUON_DOWN_DISCONNECTED);
			return;
		}
		for (i = 0; i < s->n_resume; i++)
			if (s->resume[i].publisher_id == c->peer_ctx_id)
				res[nres++] = s->resume[i];
	}
	cap = MUONI_FRAME_HDR_LEN + 16 + MUONI_TOPIC_MAX + 8 + nres * 24u;
	buf = malloc(cap);
	if (!buf) {
		free(res);
		muoni_conn_fail(c, MUONI_ERR(MUON_ENOMEM, "subscribe"),
				MUON_DOWN_DISCONNECTED);
		return;
	}
	n = muoni_enc_subscribe(buf, cap, s->topic, s->topic_len, s->start,
				s->start_seq, res, nres);
	if (n)
		conn_ctrl_send(c, buf, n);
	free(buf);
	free(res);
}

/* -------------------------------------------------------- receiving side */

void muoni_conn_transport_up(struct muoni_conn *c)
{
	c->state = MUONI_CONN_HANDSHAKE;
	c->state_since_ns = muoni_now_ns();
	conn_send_hello(c);
}

static int conn_proto_error(struct muoni_conn *c, int rc)
{
	c->ctx->ctr.proto_errors++;
	muoni_err_push(rc, "%s", c->desc);
	muoni_conn_fail(c, rc, MUON_DOWN_PROTOCOL);
	return rc;
}

static int hello_check(struct muoni_conn *c, const struct muoni_hello *h)
{
	if (h->version != MUONI_PROTO_VERSION)
		return MUONI_ERR(MUON_EPROTO, "peer speaks protocol version "
				 "%u, this side %u", h->version,
				 MUONI_PROTO_VERSION);
	if (h->ctx_id == c->ctx->id)
		return MUONI_ERR(MUON_ECLOSED, "connected to itself");
	return 0;
}

static void conn_up(struct muoni_conn *c, const struct muoni_hello *h)
{
	char tail[80];

	c->peer_ctx_id = h->ctx_id;
	memcpy(c->peer_name, h->name, sizeof(c->peer_name));
	c->state = MUONI_CONN_UP;
	c->ctx->ctr.connects++;
	snprintf(tail, sizeof(tail), " (%s %016llx)", c->peer_name,
		 (unsigned long long)c->peer_ctx_id);
	if (strlen(c->desc) + strlen(tail) < sizeof(c->desc))
		strcat(c->desc, tail);
	MUONI_INFO(c->ctx, "%s: up", c->desc);
}

/* Of an outbound and an inbound connection between the same pair of
 * contexts, both sides keep the one made by the context with the lower
 * id. */
static bool conn_preferred(const struct muoni_conn *c)
{
	return c->outbound ? c->ctx->id < c->peer_ctx_id
			   : c->peer_ctx_id < c->ctx->id;
}

/*
 * One connection per pair of contexts. Two contexts that list each other
 * as peers connect both ways (one outbound, one inbound on each side):
 * keep one, chosen the same way on both sides; a subscription on the
 * dropped one resumes on the kept one without loss or repetition, and the
 * static peer of the dropped one stays idle while the kept one is up.
 * Two connections in the same direction claiming the same context (the
 * same context listed twice, or another process claiming its id) keep the
 * older one: a newcomer cannot take over a working connection. Context
 * ids are not authenticated until the cluster secret lands, so a peer
 * that arrives first with a false id is believed. Returns false if `c`
 * itself was dropped.
 */
static bool conn_dedupe(struct muoni_conn *c)
{
	struct muoni_conn *o;

	for (o = c->ctx->conns; o; o = o->next) {
		struct muoni_conn *lose;
		bool mutual;

		if (o == c || o->state != MUONI_CONN_UP ||
		    o->peer_ctx_id != c->peer_ctx_id)
			continue;
		mutual = o->outbound != c->outbound;
		lose = !mutual || conn_preferred(o) ? c : o;
		if (mutual && lose->peer)
			lose->peer->covered_by = c->peer_ctx_id;
		MUONI_INFO(c->ctx, "%s: already connected to this context "
			   "over %s; closing %s", c->desc,
			   (lose == c ? o : c)->desc, lose->desc);
		muoni_conn_close(lose, MUON_DOWN_DISCONNECTED);
		return lose != c;
	}
	return true;
}

static int rx_hello(struct muoni_conn *c, const void *payload, uint32_t plen)
{
	struct muoni_hello h;
	struct muon_sub *s;
	int rc;

	if (c->state != MUONI_CONN_HANDSHAKE)
		return MUONI_ERR(MUON_EPROTO, "HELLO after handshake");
	rc = muoni_dec_hello(payload, plen, &h);
	if (!rc)
		rc = hello_check(c, &h);
	if (rc)
		return rc;
	conn_up(c, &h);
	if (!c->outbound)
		conn_send_hello(c); /* the answer */
	if (c->peer) {
		c->peer->backoff_ms = c->ctx->cfg.reconnect_ms;
		c->peer->last_status = 0;
		c->peer->covered_by = 0;
	}
	if (c->state != MUONI_CONN_UP || !conn_dedupe(c))
		return 0;
	for (s = c->ctx->subs; s && c->state == MUONI_CONN_UP; s = s->next)
		muoni_conn_send_subscribe(c, s);
	return 0;
}

static int rx_stream_info(struct muoni_conn *c, const struct muoni_frame_hdr *h,
			  const void *payload, uint32_t plen)
{
	struct muoni_stream_info si;
	struct muoni_image *img;
	int rc = muoni_dec_stream_info(payload, plen, &si);

	if (rc)
		return rc;
	if (h->stream_id == 0)
		return MUONI_ERR(MUON_EPROTO, "STREAM_INFO for stream 0");
	if (h->seq == 0 || h->seq == UINT64_MAX)
		return MUONI_ERR(MUON_EPROTO, "STREAM_INFO starting at sequence "
				 "%llu", (unsigned long long)h->seq);
	if (si.publisher_id != c->peer_ctx_id)
		return MUONI_ERR(MUON_EPROTO, "STREAM_INFO names publisher "
				 "%016llx on a connection to %016llx",
				 (unsigned long long)si.publisher_id,
				 (unsigned long long)c->peer_ctx_id);
	img = img_find(c, h->stream_id);
	if (img) {
		/* Re-announced (unsubscribe then subscribe): start over. */
		muoni_sub_image_down(img, MUON_DOWN_CLOSED, "stream restarted");
		img_remove(c, img);
	}
	img = calloc(1, sizeof(*img));
	if (!img)
		return MUONI_ERR(MUON_ENOMEM, "image");
	img->conn = c;
	img->publisher_id = si.publisher_id;
	img->stream_id = h->stream_id;
	img->next_seq = h->seq;
	img->skip_below = si.deliver_from;
	rc = img_insert(c, img);
	if (rc) {
		free(img);
		return rc;
	}
	img->sub = muoni_sub_find(c->ctx, si.topic, si.topic_len);
	if (img->sub) {
		/* Never twice: a publisher that replays from before where
		 * this subscription already is (it did not honour the
		 * resume entry) has the repeats skipped here. */
		uint64_t next = muoni_sub_resume_next(img->sub,
						      si.publisher_id,
						      h->stream_id);
		if (next > img->next_seq && next > img->skip_below)
			img->skip_below = next;
		muoni_sub_image_up(img->sub, img);
	}
	return 0;
}

static int rx_loss(struct muoni_conn *c, const struct muoni_frame_hdr *h,
		   const void *payload, uint32_t plen)
{
	struct muoni_image *img = img_find(c, h->stream_id);
	uint64_t to;
	int rc = muoni_dec_loss(payload, plen, &to);

	if (rc)
		return rc;
	if (!img)
		return MUONI_ERR(MUON_EPROTO, "LOSS for unknown stream %u",
				 h->stream_id);
	if (h->seq != img->next_seq || to < h->seq || to == UINT64_MAX)
		return MUONI_ERR(MUON_EPROTO, "LOSS [%llu, %llu] does not "
				 "start at the expected %llu",
				 (unsigned long long)h->seq,
				 (unsigned long long)to,
				 (unsigned long long)img->next_seq);
	img->next_seq = to + 1;
	/* Below skip_below the subscription asked for nothing (a start in
	 * the future) or has it already (resume): no loss to it. */
	if (to < img->skip_below)
		return 0;
	muoni_sub_loss(img, h->seq > img->skip_below ? h->seq : img->skip_below,
		       to, "messages left the publisher's send log before they "
		       "could be sent");
	return 0;
}

static int rx_stream_end(struct muoni_conn *c, const struct muoni_frame_hdr *h)
{
	struct muoni_image *img = img_find(c, h->stream_id);

	if (!img)
		return MUONI_ERR(MUON_EPROTO, "STREAM_END for unknown stream "
				 "%u", h->stream_id);
	muoni_sub_image_down(img, MUON_DOWN_CLOSED, "publication closed");
	img_remove(c, img);
	return 0;
}

static int rx_data(struct muoni_conn *c, const struct muoni_frame_hdr *h,
		   const void *payload)
{
	struct muoni_image *img = img_find(c, h->stream_id);
	struct muon_ctx *ctx = c->ctx;
	muon_msg_t msg;
	uint64_t seq = h->seq;

	if (MUONI_UNLIKELY(!img))
		return MUONI_ERR(MUON_EPROTO, "data for unknown stream %u",
				 h->stream_id);
	if (MUONI_UNLIKELY(seq != img->next_seq)) {
		/* Sequences run from 1 and never wrap: 2^64-1 would. */
		if (seq == UINT64_MAX)
			return MUONI_ERR(MUON_EPROTO, "sequence 2^64-1");
		ctx->ctr.proto_errors++;
		if (seq < img->next_seq)
			return 0; /* never deliver twice */
		/* Only a broken peer skips without a LOSS frame; still, the
		 * application hears about every gap. */
		muoni_sub_loss(img, img->next_seq, seq - 1,
			       "sequence gap without a LOSS frame");
	}
	img->next_seq = seq + 1;
	if (MUONI_UNLIKELY(!img->sub || seq < img->skip_below))
		return 0;
	msg.data = payload;
	msg.len = h->len - MUONI_FRAME_HDR_LEN;
	msg.topic = img->sub->topic;
	msg.publisher_id = img->publisher_id;
	msg.stream_id = img->stream_id;
	msg.seq = seq;
	ctx->ctr.msgs_received++;
	ctx->ctr.bytes_received += msg.len;
	img->sub->msg_fn(img->sub->msg_arg, &msg);
	return 1;
}

/* ------------------------------------------------- publisher-side control */

static struct muoni_rsub *rsub_find(struct muoni_conn *c, const char *topic,
				    uint32_t len)
{
	unsigned i;

	for (i = 0; i < c->n_rsubs; i++)
		if (c->rsubs[i].topic_len == len &&
		    !memcmp(c->rsubs[i].topic, topic, len))
			return &c->rsubs[i];
	return NULL;
}

/* ------------------------------------------------------------ hand-over */

static struct muoni_handover *handover_find(struct muon_ctx *ctx,
					    uint64_t peer, uint32_t stream)
{
	unsigned i;

	for (i = 0; i < ctx->n_handovers; i++)
		if (ctx->handovers[i].peer_ctx_id == peer &&
		    ctx->handovers[i].stream_id == stream)
			return &ctx->handovers[i];
	return NULL;
}

static void handover_drop(struct muon_ctx *ctx, struct muoni_handover *h)
{
	size_t i = (size_t)(h - ctx->handovers);

	memmove(h, h + 1, (ctx->n_handovers - i - 1) * sizeof(*h));
	ctx->n_handovers--;
}

/* A connection with our streams on it went down: remember where each
 * started for its subscriber (see struct muoni_handover). */
static void handover_add(struct muon_ctx *ctx, uint64_t peer, uint32_t stream,
			 uint64_t from)
{
	struct muoni_handover *h = handover_find(ctx, peer, stream);

	if (h)
		handover_drop(ctx, h);
	if (ctx->n_handovers == MUONI_MAX_HANDOVERS)
		/* The oldest goes; its subscriber, if it ever comes back,
		 * starts over as it asks. */
		handover_drop(ctx, &ctx->handovers[0]);
	if (ctx->n_handovers == ctx->cap_handovers) {
		unsigned ncap = ctx->cap_handovers ? ctx->cap_handovers * 2 : 8;
		void *nb = realloc(ctx->handovers, ncap * sizeof(*h));

		if (!nb) {
			MUONI_WARN(ctx, "out of memory: a subscriber of stream "
				   "%u that comes back may miss messages",
				   stream);
			return;
		}
		ctx->handovers = nb;
		ctx->cap_handovers = ncap;
	}
	h = &ctx->handovers[ctx->n_handovers++];
	h->peer_ctx_id = peer;
	h->stream_id = stream;
	h->from_seq = from;
}

static bool req_has_resume(const struct muoni_subscribe *req, uint64_t pub,
			   uint32_t stream)
{
	struct muoni_resume r;
	uint32_t i;

	for (i = 0; i < req->n_resume; i++) {
		muoni_subscribe_resume_get(req, i, &r);
		if (r.publisher_id == pub && r.stream_id == stream &&
		    r.next_seq >= 1)
			return true;
	}
	return false;
}

static struct muoni_sender *conn_sender(struct muoni_conn *c,
					const struct muon_pub *p)
{
	unsigned i;

	for (i = 0; i < c->n_senders; i++)
		if (c->senders[i]->pub == p)
			return c->senders[i];
	return NULL;
}

/*
 * Subscribe the peer to `p`. A subscription that was already served over
 * a connection now gone (stream-0 resume entry for us) and that never saw
 * this stream (no entry of its own) continues from where the stream
 * started for it then: what went out on the old connection may never
 * have been read. Whatever it did see, it resumes from its own entry.
 */
static int conn_pub_subscribe(struct muoni_conn *c, struct muon_pub *p,
			      const struct muoni_subscribe *req)
{
	struct muon_ctx *ctx = c->ctx;
	struct muoni_subscribe r = *req;
	struct muoni_handover *h = handover_find(ctx, c->peer_ctx_id,
						 p->stream_id);
	int rc;

	if (conn_sender(c, p))
		return 0;
	if (h) {
		if (!req_has_resume(req, ctx->id, p->stream_id) &&
		    req_has_resume(req, ctx->id, 0)) {
			r.start = MUON_START_SEQ;
			r.start_seq = h->from_seq;
			MUONI_INFO(ctx, "'%s' stream %u -> %s: continues the "
				   "subscription of a lost connection",
				   p->topic, p->stream_id, c->desc);
		}
		handover_drop(ctx, h);
	}
	rc = muoni_pub_subscribe(p, c, &r);
	return rc < 0 ? rc : 0;
}

static int rx_subscribe(struct muoni_conn *c, const void *payload,
			uint32_t plen)
{
	struct muoni_subscribe req;
	struct muon_pub *p;
	int rc = muoni_dec_subscribe(payload, plen, &req);

	if (rc)
		return rc;
	if (!rsub_find(c, req.topic, req.topic_len)) {
		if (c->n_rsubs == c->cap_rsubs) {
			unsigned ncap = c->cap_rsubs ? c->cap_rsubs * 2 : 4;
			void *nb;
			if (ncap > 65536)
				return MUONI_ERR(MUON_ELIMIT, "peer subscribed "
						 "to more than 65536 topics");
			nb = realloc(c->rsubs, ncap * sizeof(*c->rsubs));
			if (!nb)
				return MUONI_ERR(MUON_ENOMEM, "subscriptions");
			c->rsubs = nb;
			c->cap_rsubs = ncap;
		}
		c->rsubs[c->n_rsubs].topic_len = req.topic_len;
		memcpy(c->rsubs[c->n_rsubs].topic, req.topic,
		       req.topic_len + 1);
		c->n_rsubs++;
	}
	for (p = c->ctx->pubs; p && c->state == MUONI_CONN_UP; p = p->next)
		if (!p->closing && p->topic_len == req.topic_len &&
		    !memcmp(p->topic, req.topic, req.topic_len)) {
			rc = conn_pub_subscribe(c, p, &req);
			if (rc < 0)
				return rc;
		}
	return 0;
}

static int rx_unsubscribe(struct muoni_conn *c, const void *payload,
			  uint32_t plen)
{
	char topic[MUONI_TOPIC_MAX + 1];
	uint32_t tl;
	struct muoni_rsub *rs;
	struct muon_pub *p;
	int rc = muoni_dec_unsubscribe(payload, plen, topic, &tl);

	if (rc)
		return rc;
	rs = rsub_find(c, topic, tl);
	if (rs)
		*rs = c->rsubs[--c->n_rsubs];
	for (p = c->ctx->pubs; p; p = p->next)
		if (p->topic_len == tl && !memcmp(p->topic, topic, tl))
			muoni_pub_unsubscribe(p, c);
	return 0;
}

int muoni_conn_peer_subscribed(struct muoni_conn *c, const char *topic,
			       uint32_t len)
{
	return rsub_find(c, topic, len) != NULL;
}

int muoni_conn_rx_any(struct muoni_conn *c, const struct muoni_frame_hdr *h,
		      const void *payload)
{
	uint32_t plen = h->len - MUONI_FRAME_HDR_LEN;
	int rc;

	c->rx_count++;
	if (MUONI_LIKELY(h->type == MUONI_FT_DATA && c->state == MUONI_CONN_UP)) {
		rc = rx_data(c, h, payload);
		if (MUONI_UNLIKELY(rc < 0))
			return conn_proto_error(c, rc);
		return c->state == MUONI_CONN_DEAD ? MUON_ECLOSED : rc;
	}
	if (c->state == MUONI_CONN_DEAD)
		return MUON_ECLOSED;
	switch (h->type) {
	case MUONI_FT_HELLO:
		rc = rx_hello(c, payload, plen);
		break;
	case MUONI_FT_HEARTBEAT:
		rc = 0;
		break;
	case MUONI_FT_CLOSE: {
		uint32_t reason;

		rc = muoni_dec_close(payload, plen, &reason);
		if (rc)
			break;
		if (reason >= MUON_DOWN_CLOSED && reason <= MUON_DOWN_PROTOCOL)
			c->down_reason = (int)reason;
		muoni_conn_close(c, MUON_DOWN_DISCONNECTED);
		return MUON_ECLOSED;
	}
	default:
		if (c->state != MUONI_CONN_UP) {
			rc = MUONI_ERR(MUON_EPROTO, "frame type %u before "
				       "HELLO", h->type);
			break;
		}
		switch (h->type) {
		case MUONI_FT_STREAM_INFO:
			rc = rx_stream_info(c, h, payload, plen);
			break;
		case MUONI_FT_LOSS:
			rc = rx_loss(c, h, payload, plen);
			break;
		case MUONI_FT_STREAM_END:
			rc = rx_stream_end(c, h);
			break;
		case MUONI_FT_SUBSCRIBE:
			rc = rx_subscribe(c, payload, plen);
			break;
		case MUONI_FT_UNSUBSCRIBE:
			rc = rx_unsubscribe(c, payload, plen);
			break;
		case MUONI_FT_DATA:
			rc = 0; /* state checked above; cannot happen */
			break;
		default:
			rc = MUONI_ERR(MUON_EPROTO, "frame type %u not valid on "
				       "a connection", h->type);
		}
	}
	if (rc < 0) {
		if (c->state == MUONI_CONN_DEAD)
			return MUON_ECLOSED;
		if (rc == MUON_EPROTO)
			return conn_proto_error(c, rc);
		muoni_conn_fail(c, rc, rc == MUON_ECLOSED ? MUON_DOWN_CLOSED
							  : MUON_DOWN_DISCONNECTED);
		return MUON_ECLOSED;
	}
	return c->state == MUONI_CONN_DEAD ? MUON_ECLOSED : 0;
}

/* ------------------------------------------------------------- lifecycle */

void muoni_conn_fail(struct muoni_conn *c, int status, int down_reason)
{
	muon_log_level_t lvl;

	if (c->state == MUONI_CONN_DEAD)
		return;
	if (c->state != MUONI_CONN_UP)
		c->ctx->ctr.connect_failures++;
	if (c->peer)
		c->peer->last_status = status;
	/* A peer that closes, or a static peer that is not up yet, is routine
	 * (the application hears of it through events); broken protocol,
	 * timeouts and I/O errors are not. Repeated connect failures while
	 * backing off go to debug. */
	if (status == MUON_ECLOSED || status == MUON_ENOTFOUND)
		lvl = MUON_LOG_INFO;
	else
		lvl = MUON_LOG_WARN;
	if (c->state != MUONI_CONN_UP && c->peer &&
	    c->peer->backoff_ms > c->ctx->cfg.reconnect_ms)
		lvl = MUON_LOG_DEBUG;
	muoni_log(c->ctx, lvl, "%s: closed: %s", c->desc, muoni_err_msg());
	c->failed = true;
	muoni_conn_close(c, down_reason);
}

void muoni_conn_close(struct muoni_conn *c, int down_reason)
{
	struct muon_ctx *ctx = c->ctx;
	bool was_up;

	if (c->state == MUONI_CONN_DEAD)
		return;
	if (c->down_reason)
		down_reason = c->down_reason;
	was_up = c->state == MUONI_CONN_UP;
	if (was_up)
		ctx->ctr.disconnects++;
	c->state = MUONI_CONN_DEAD;
	conn_drop_images(c, down_reason, c->desc);
	if (was_up && !ctx->destroying) {
		unsigned i;

		/* Lossless hand-over to the next connection between the
		 * two contexts (the other of a mutual pair, or a
		 * reconnect): see conn_pub_subscribe. */
		for (i = 0; i < c->n_senders; i++)
			handover_add(ctx, c->peer_ctx_id,
				     c->senders[i]->pub->stream_id,
				     c->senders[i]->from_seq
					     ? c->senders[i]->from_seq : 1);
		if (c->receiving)
			muoni_sub_peer_lost(ctx, c->peer_ctx_id);
	}
	while (c->n_senders)
		muoni_sender_remove(c->senders[c->n_senders - 1]);
	if (c->peer) {
		struct muoni_peer *pr = c->peer;
		uint32_t max = ctx->cfg.reconnect_ms * 32;

		pr->conn = NULL;
		if (!was_up && c->failed && muoni_peer_next_alt(ctx, pr)) {
			/* Another transport to try: at once. */
			pr->next_attempt_ns = muoni_now_ns();
			c->peer = NULL;
			ctx->reap_pending = true;
			return;
		}
		pr->next_attempt_ns = muoni_now_ns() +
				      (uint64_t)pr->backoff_ms * 1000000ull;
		pr->backoff_ms = pr->backoff_ms * 2 > max ? max
							  : pr->backoff_ms * 2;
		c->peer = NULL;
	}
	ctx->reap_pending = true;
}

void muoni_conn_free(struct muoni_conn *c)
{
	struct muon_ctx *ctx = c->ctx;

	if (c->prev)
		c->prev->next = c->next;
	else
		ctx->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctx->n_conns--;
	if (c->rx_index != (unsigned)-1) {
		struct muoni_conn *last = ctx->rx[--ctx->n_rx];
		ctx->rx[c->rx_index] = last;
		last->rx_index = c->rx_index;
	}
	free(c->img_tab);
	free(c->senders);
	free(c->ctl_q);
	free(c->rsubs);
	c->ops->destroy(c);
}

void muoni_conn_timers(struct muoni_conn *c, uint64_t now)
{
	struct muon_ctx *ctx = c->ctx;
	uint64_t timeout = (uint64_t)ctx->cfg.peer_timeout_ms * 1000000ull;
	uint64_t hb = (uint64_t)ctx->cfg.heartbeat_ms * 1000000ull;
	uint8_t buf[64];
	size_t n;

	if (c->state == MUONI_CONN_DEAD)
		return;
	if (c->ops->check) {
		int rc = c->ops->check(c);
		if (rc < 0) {
			muoni_conn_fail(c, rc, rc == MUON_EPROTO
						       ? MUON_DOWN_PROTOCOL
						       : MUON_DOWN_DISCONNECTED);
			return;
		}
	}
	if (c->state != MUONI_CONN_UP) {
		if (muoni_elapsed(now, c->state_since_ns) > timeout)
			muoni_conn_fail(c, MUONI_ERR(MUON_ETIMEDOUT,
					"handshake not finished within %u ms",
					ctx->cfg.peer_timeout_ms),
					MUON_DOWN_DISCONNECTED);
		return;
	}
	if (c->rx_count != c->rx_count_seen) {
		c->rx_count_seen = c->rx_count;
		c->last_rx_ns = now;
	} else if (muoni_elapsed(now, c->last_rx_ns) > timeout) {
		muoni_conn_fail(c, MUONI_ERR(MUON_ETIMEDOUT, "peer silent for "
					     "%u ms", ctx->cfg.peer_timeout_ms),
				MUON_DOWN_DISCONNECTED);
		return;
	}
	if (c->tx_count != c->tx_count_seen) {
		c->tx_count_seen = c->tx_count;
		c->last_tx_ns = now;
		return;
	}
	if (muoni_elapsed(now, c->last_tx_ns) < hb)
		return;
	/* On the control channel, so a full data path does not read as
	 * silence. */
	n = muoni_enc_simple(buf, sizeof(buf), MUONI_FT_HEARTBEAT, 0, 0);
	conn_ctrl_send(c, buf, n);
	c->last_tx_ns = now;
}
