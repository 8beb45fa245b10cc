/*
 * Publications: the send log, fan-out to subscriber connections through
 * per-connection cursors (senders), flow control against the slowest
 * cursor, the slow-consumer policy, replay and loss on subscribe, and the
 * linger on close.
 *
 * Hot path (muoni_publish): no allocation, no lock, no system call of its
 * own; shm pushes are plain stores, tcp pushes are one send().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/muoni.h"

static void sender_set_lagging(struct muoni_sender *s, bool lagging)
{
	struct muon_ctx *ctx = s->pub->ctx;

	if (lagging == s->lagging)
		return;
	s->lagging = lagging;
	if (lagging) {
		ctx->n_lagging++;
		s->stall_since_ns = ctx->now_ns;
		s->check_pos = s->pos;
	} else {
		ctx->n_lagging--;
	}
}

int muoni_sender_progress(struct muoni_sender *s)
{
	struct muoni_conn *c = s->conn;
	const struct muoni_sendlog *log = &s->pub->log;
	uint64_t start = s->pos;

	if (MUONI_UNLIKELY(c->ctl_len) && muoni_conn_ctl_flush(c) != 0) {
		if (c->state == MUONI_CONN_DEAD)
			return MUON_ECLOSED;
		sender_set_lagging(s, s->pos != log->head);
		return 0;
	}
	for (;;) {
		const uint8_t *p;
		size_t taken = 0, len = muoni_sendlog_run(log, &s->pos, &p);
		int rc;

		if (!len)
			break;
		rc = c->ops->push(c, p, len, &taken);
		if (MUONI_UNLIKELY(rc < 0)) {
			muoni_conn_push_failed(c, rc);
			return rc;
		}
		s->pos += taken;
		if (taken < len)
			break;
	}
	if (s->pos != start)
		c->tx_count++;
	sender_set_lagging(s, s->pos != log->head);
	return s->pos != start;
}

static int sender_add(struct muon_pub *p, struct muoni_conn *c, uint64_t pos,
		      struct muoni_sender **out)
{
	struct muoni_sender *s;

	if (p->n_senders == p->cap_senders) {
		unsigned ncap = p->cap_senders ? p->cap_senders * 2 : 4;
		void *nb = realloc(p->senders, ncap * sizeof(*p->senders));
		if (!nb)
			return MUONI_ERR(MUON_ENOMEM, "senders");
		p->senders = nb;
		p->cap_senders = ncap;
	}
	if (c->n_senders == c->cap_senders) {
		unsigned ncap = c->cap_senders ? c->cap_senders * 2 : 4;
		void *nb = realloc(c->senders, ncap * sizeof(*c->senders));
		if (!nb)
			return MUONI_ERR(MUON_ENOMEM, "senders");
		c->senders = nb;
		c->cap_senders = ncap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return MUONI_ERR(MUON_ENOMEM, "sender");
	s->pub = p;
	s->conn = c;
	s->pos = pos;
	s->pub_index = p->n_senders;
	s->conn_index = c->n_senders;
	p->senders[p->n_senders++] = s;
	c->senders[c->n_senders++] = s;
	/* A new cursor behind the head lowers the limit. */
	if (pos + p->log.cap < p->limit)
		p->limit = pos + p->log.cap;
	*out = s;
	return 0;
}

void muoni_sender_remove(struct muoni_sender *s)
{
	struct muon_pub *p = s->pub;
	struct muoni_conn *c = s->conn;

	sender_set_lagging(s, false);
	p->senders[s->pub_index] = p->senders[--p->n_senders];
	p->senders[s->pub_index]->pub_index = s->pub_index;
	c->senders[s->conn_index] = c->senders[--c->n_senders];
	c->senders[s->conn_index]->conn_index = s->conn_index;
	free(s);
}

static struct muoni_sender *sender_find(struct muon_pub *p,
					struct muoni_conn *c)
{
	unsigned i;

	for (i = 0; i < p->n_senders; i++)
		if (p->senders[i]->conn == c)
			return p->senders[i];
	return NULL;
}

static int queue_frame(struct muoni_conn *c, const uint8_t *buf, size_t n)
{
	if (!n)
		return MUONI_ERR(MUON_EINVAL, "control frame did not encode");
	return muoni_conn_ctl_queue(c, buf, n);
}

int muoni_pub_subscribe(struct muon_pub *p, struct muoni_conn *c,
			const struct muoni_subscribe *req)
{
	struct muon_ctx *ctx = p->ctx;
	struct muoni_sendlog *log = &p->log;
	uint64_t oldest = muoni_sendlog_oldest(log), next = log->next_seq;
	uint64_t from, first, asked, deliver_from = 0;
	struct muoni_sender *s = NULL;
	uint8_t buf[MUONI_FRAME_HDR_LEN + 32 + MUONI_TOPIC_MAX + 8];
	uint32_t i;
	int rc;

	if (sender_find(p, c))
		return 0;
	switch (req->start) {
	case MUON_START_EARLIEST:
		from = oldest;
		break;
	case MUON_START_SEQ:
		from = req->start_seq;
		break;
	default:
		from = next;
	}
	for (i = 0; i < req->n_resume; i++) {
		struct muoni_resume r;
		muoni_subscribe_resume_get(req, i, &r);
		if (r.publisher_id == ctx->id && r.stream_id == p->stream_id &&
		    r.next_seq >= 1) {
			from = r.next_seq;
			break;
		}
	}
	asked = from;
	if (from > next) {
		/* A start in the future: send from now, deliver from there. */
		deliver_from = from;
		from = next;
	}
	first = from < oldest ? oldest : from;
	rc = queue_frame(c, buf, muoni_enc_stream_info(buf, sizeof(buf),
			 p->stream_id, from, ctx->id, deliver_from, p->topic,
			 p->topic_len));
	if (!rc && from < oldest)
		rc = queue_frame(c, buf, muoni_enc_loss(buf, sizeof(buf),
				 p->stream_id, from, oldest - 1));
	if (!rc)
		rc = sender_add(p, c, muoni_sendlog_find(log, first), &s);
	if (rc)
		return muoni_err_push(rc, "subscribe to '%s'", p->topic);
	/* Before the first push, which may close the connection: the close
	 * records where the stream started for this subscriber, for the
	 * connection that takes over (see conn_pub_subscribe()). */
	s->from_seq = asked;
	if (first < next)
		ctx->ctr.replays++;
	MUONI_INFO(ctx, "'%s' stream %u -> %s from seq %llu%s", p->topic,
		   p->stream_id, c->desc, (unsigned long long)first,
		   from < oldest ? " (earlier ones are lost)" : "");
	muoni_sender_progress(s);
	return 0;
}

void muoni_pub_unsubscribe(struct muon_pub *p, struct muoni_conn *c)
{
	struct muoni_sender *s = sender_find(p, c);
	uint8_t buf[64];

	if (!s)
		return;
	muoni_sender_remove(s);
	/* Tell the subscriber the stream is over so it drops its image; what
	 * it had not read yet it did not want any more. */
	if (queue_frame(c, buf, muoni_enc_simple(buf, sizeof(buf),
			MUONI_FT_STREAM_END, p->stream_id,
			p->log.next_seq - 1)) == 0)
		muoni_conn_ctl_flush(c);
}

static void pub_event(struct muon_pub *p, muon_event_type_t type,
		      const char *detail)
{
	muon_event_t ev = {.type = type,
			   .topic = p->topic,
			   .publisher_id = p->ctx->id,
			   .stream_id = p->stream_id,
			   .detail = detail};

	muoni_ctx_event(p->ctx, p->event_fn, p->event_arg, &ev);
}

static void sender_cut(struct muoni_sender *s, const char *why)
{
	struct muoni_conn *c = s->conn;
	struct muon_pub *p = s->pub;
	uint8_t buf[64];
	char detail[256];

	p->ctx->ctr.slow_drops++;
	snprintf(detail, sizeof(detail), "%s: %s", c->desc, why);
	MUONI_WARN(p->ctx, "'%s': cutting slow subscriber %s", p->topic,
		   detail);
	pub_event(p, MUON_EVENT_SLOW_DROP, detail);
	/* Best effort: the data path is full, the control channel may not be. */
	c->ops->ctrl_send(c, buf, muoni_enc_close(buf, sizeof(buf),
						  MUON_DOWN_SLOW));
	muoni_conn_close(c, MUON_DOWN_SLOW);
}

static void pub_update_limit(struct muon_pub *p)
{
	uint64_t min = p->log.head;
	unsigned i;

	for (i = 0; i < p->n_senders; i++)
		if (p->senders[i]->pos < min)
			min = p->senders[i]->pos;
	p->limit = min + p->log.cap;
}

/* Slow path of publish: the log would overrun the slowest cursor. */
static int pub_make_room(struct muon_pub *p, uint64_t need)
{
	uint64_t head = p->log.head;
	unsigned i;

	for (i = p->n_senders; i-- > 0;)
		if (p->senders[i]->lagging)
			muoni_sender_progress(p->senders[i]);
	pub_update_limit(p);
	if (head + need <= p->limit)
		return 0;
	if (p->slow_policy == MUON_SLOW_DROP) {
		for (i = p->n_senders; i-- > 0;) {
			struct muoni_sender *s = p->senders[i];
			if (s->pos + p->log.cap < head + need)
				sender_cut(s, "would lose unsent data");
		}
		pub_update_limit(p);
		return 0;
	}
	p->ctx->ctr.backpressure++;
	if (!p->bp_reported) {
		p->bp_reported = true;
		pub_event(p, MUON_EVENT_BACKPRESSURE,
			  "a subscriber is a whole send log behind");
		return MUONI_ERR(MUON_EBACKPRESSURE, "'%s': a subscriber is a "
				 "whole send log (%llu bytes) behind", p->topic,
				 (unsigned long long)p->log.cap);
	}
	return MUON_EBACKPRESSURE;
}

/* Everything that can refuse a message, before anything is written.
 * Sets *needp to how far the log's head will move. */
static inline int pub_admit(struct muon_pub *p, size_t len, uint64_t *needp)
{
	uint64_t need;
	int rc;

	if (MUONI_UNLIKELY(p->claim_open))
		return MUONI_ERR(MUON_ESTATE, "'%s': a claim is open",
				 p->topic);
	if (MUONI_UNLIKELY(len > p->ctx->cfg.max_msg_size))
		return MUONI_ERR(MUON_ETOOBIG, "message of %zu bytes above "
				 "max_msg_size %u", len,
				 p->ctx->cfg.max_msg_size);
	if (MUONI_UNLIKELY(p->closing))
		return MUONI_ERR(MUON_ESTATE, "'%s' is closing", p->topic);
	need = muoni_sendlog_need(&p->log, (uint32_t)len);
	if (MUONI_UNLIKELY(p->log.head + need > p->limit)) {
		rc = pub_make_room(p, need);
		if (rc)
			return rc;
	}
	if (MUONI_UNLIKELY(p->bp_reported))
		p->bp_reported = false;
	*needp = need;
	return 0;
}

/* Every sender behind the log's head pushes from its cursor. */
static inline void pub_push_all(struct muon_pub *p)
{
	unsigned i;

	/* Backwards: a failing connection removes its sender by swapping
	 * the last one into its slot, which has been visited already. */
	for (i = p->n_senders; i-- > 0;) {
		struct muoni_sender *s = p->senders[i];

		if (s->pos != p->log.head)
			muoni_sender_progress(s);
	}
}

/* The frame reserved at the head is written: it gets its header and its
 * sequence number, and counts as sent. */
static inline uint64_t pub_commit(struct muon_pub *p, uint32_t len)
{
	p->ctx->ctr.msgs_sent++;
	p->ctx->ctr.bytes_sent += len;
	return muoni_sendlog_commit(&p->log, len);
}

/* After the frame is in the log: every sender not served directly (those
 * are at the head already) pushes from its cursor. */
static inline int64_t pub_send(struct muon_pub *p, uint32_t len)
{
	uint64_t seq = pub_commit(p, len);

	pub_push_all(p);
	return (int64_t)seq;
}

/*
 * The latency-critical part of publish: subscribers that are up to date get
 * the message written straight from the caller's buffer, before the send
 * log is touched, so the log bookkeeping overlaps the transfer. Their
 * cursors move to where the log's head will be once the frame is in it
 * (`need` ahead, a PAD included), so pub_send() leaves them alone.
 */
static inline void pub_push_direct(struct muon_pub *p, const void *data,
				   uint32_t len, uint64_t need)
{
	uint64_t head = p->log.head, seq = p->log.next_seq;
	unsigned i;

	for (i = p->n_senders; i-- > 0;) {
		struct muoni_sender *s = p->senders[i];
		struct muoni_conn *c = s->conn;
		int rc;

		if (s->pos != head || c->ctl_len)
			continue;
		if (c->mring && muoni_mring_put_fast(c->mring, p->stream_id,
						     seq, data, len)) {
			rc = 1;
		} else {
			if (!c->ops->push_msg)
				continue;
			rc = c->ops->push_msg(c, p->stream_id, seq, data, len);
		}
		if (MUONI_LIKELY(rc > 0)) {
			s->pos = head + need;
			c->tx_count++;
		} else if (rc < 0) {
			muoni_conn_push_failed(c, rc);
		}
	}
}

/* Publish in general: any number of subscribers in any state. */
static __attribute__((noinline)) int64_t
pub_publish_any(struct muon_pub *p, const void *data, size_t len)
{
	struct muoni_frame_hdr *h;
	uint64_t need = 0;
	int rc = pub_admit(p, len, &need);

	if (MUONI_UNLIKELY(rc))
		return rc;
	pub_push_direct(p, data, (uint32_t)len, need);
	h = muoni_sendlog_reserve(&p->log, (uint32_t)len);
	muoni_copy_small((unsigned char *)(h + 1), data, len);
	return pub_send(p, (uint32_t)len);
}

/* Up to here muoni_copy_small() calls nothing (bigger messages are set by
 * the copy, not by the stores around it). */
#define MUONI_PUB_FAST_MAX 64

/*
 * One up-to-date shm subscriber, a small message and nothing unusual: the case a flat-out
 * publisher lives in, written without a call so that the compiler neither
 * saves registers nor spills them. Each of those is a store, and every
 * store queues behind the ring store that waits for the subscriber's cache
 * line: at 32 bytes the stores per message set the rate. Anything else,
 * including a full ring, goes to pub_publish_any() with nothing written
 * (reserve_fast() may have evicted the oldest frame, which that path would
 * evict too). Returns the sequence number, or 0 for "take the general
 * path". Inlined into both publish calls, each a lane without calls.
 */
static inline __attribute__((always_inline)) int64_t
pub_publish_fast(struct muon_pub *p, const void *data, size_t len)
{
	struct muoni_sender *s;
	struct muoni_conn *c;
	struct muoni_frame_hdr *h;
	uint64_t head = p->log.head, seq = p->log.next_seq;

	if (p->n_senders != 1 || p->claim_open || p->closing ||
	    p->bp_reported || len > MUONI_PUB_FAST_MAX ||
	    len > p->ctx->cfg.max_msg_size)
		return 0;
	s = p->senders[0];
	c = s->conn;
	if (s->pos != head || !c->mring || c->ctl_len ||
	    head + muoni_align8(MUONI_FRAME_HDR_LEN + (uint32_t)len) > p->limit)
		return 0;
	h = muoni_sendlog_reserve_fast(&p->log, (uint32_t)len);
	if (!h || !muoni_mring_put_fast(c->mring, p->stream_id, seq, data,
					(uint32_t)len))
		return 0;
	muoni_copy_small((unsigned char *)(h + 1), data, len);
	seq = muoni_sendlog_commit(&p->log, (uint32_t)len);
	s->pos = p->log.head;
	c->tx_count++;
	p->ctx->ctr.msgs_sent++;
	p->ctx->ctr.bytes_sent += len;
	return (int64_t)seq;
}

int64_t muoni_publish(struct muon_pub *p, const void *data, size_t len)
{
	int64_t seq = pub_publish_fast(p, data, len);

	return MUONI_LIKELY(seq) ? seq : pub_publish_any(p, data, len);
}

/* Whether every subscriber is on shm: then a batch gains nothing over
 * messages written one by one, straight into each ring. */
static bool pub_all_shm(const struct muon_pub *p)
{
	unsigned i;

	for (i = 0; i < p->n_senders; i++)
		if (!p->senders[i]->conn->mring)
			return false;
	return true;
}

static int publishv_null(unsigned i, unsigned n, size_t len)
{
	return MUONI_ERR(MUON_EINVAL, "muon_publishv: message %u of %u: NULL "
			 "data, %zu bytes", i, n, len);
}

/*
 * A batch: every message into the send log first, then one push per
 * sender, which hands the transport the whole run (one send() on tcp, one
 * RDMA write on verbs). Room is sought only after what the batch has
 * written so far was pushed: pub_make_room() judges senders by their
 * cursors, and a sender not yet offered the batch would look a whole
 * batch behind (back-pressure too early, or, under MUON_SLOW_DROP, a
 * subscriber cut for what it was never sent).
 */
int muoni_publishv(struct muon_pub *p, const muon_iov_t *msgs, unsigned n,
		   int64_t *first_seq)
{
	uint64_t first = p->log.next_seq;
	unsigned i = 0;
	int rc = 0;

	if (pub_all_shm(p)) {
		for (; i < n; i++) {
			int64_t seq;

			if (MUONI_UNLIKELY(!msgs[i].data && msgs[i].len)) {
				rc = publishv_null(i, n, msgs[i].len);
				break;
			}
			seq = pub_publish_fast(p, msgs[i].data, msgs[i].len);
			if (!seq)
				seq = pub_publish_any(p, msgs[i].data,
						      msgs[i].len);
			if (seq < 0) {
				rc = (int)seq;
				break;
			}
		}
	} else {
		for (; i < n; i++) {
			size_t len = msgs[i].len;
			struct muoni_frame_hdr *h;
			uint64_t need = 0;

			if (MUONI_UNLIKELY(!msgs[i].data && len)) {
				rc = publishv_null(i, n, len);
				break;
			}
			if (i && len <= p->ctx->cfg.max_msg_size &&
			    p->log.head + muoni_sendlog_need(&p->log,
							     (uint32_t)len) >
				    p->limit)
				pub_push_all(p);
			rc = pub_admit(p, len, &need);
			if (rc)
				break;
			h = muoni_sendlog_reserve(&p->log, (uint32_t)len);
			muoni_copy_small((unsigned char *)(h + 1),
					 msgs[i].data, len);
			pub_commit(p, (uint32_t)len);
		}
		if (i)
			pub_push_all(p);
	}
	if (!i)
		return rc;
	if (first_seq)
		*first_seq = (int64_t)first;
	return (int)i;
}

int muoni_claim(struct muon_pub *p, size_t len, void **buf)
{
	struct muoni_frame_hdr *h;
	uint64_t need = 0;
	int rc = pub_admit(p, len, &need);

	if (rc)
		return rc;
	h = muoni_sendlog_reserve(&p->log, (uint32_t)len);
	p->claim_open = true;
	p->claim_len = (uint32_t)len;
	*buf = h + 1;
	return 0;
}

int64_t muoni_commit(struct muon_pub *p)
{
	if (!p->claim_open)
		return MUONI_ERR(MUON_ESTATE, "'%s': no claim is open",
				 p->topic);
	p->claim_open = false;
	return pub_send(p, p->claim_len);
}

int muoni_abort(struct muon_pub *p)
{
	if (!p->claim_open)
		return MUONI_ERR(MUON_ESTATE, "'%s': no claim is open",
				 p->topic);
	/* Nothing was committed at head, so there is nothing to undo. */
	p->claim_open = false;
	return 0;
}

int muoni_pub_create(struct muon_ctx *ctx, const char *topic,
		     const muon_pub_config_t *ucfg, struct muon_pub **out)
{
	muon_pub_config_t cfg;
	struct muon_pub *p;
	struct muoni_conn *c;
	size_t tl = strnlen(topic, MUONI_TOPIC_MAX + 1);
	uint64_t log_size;
	int rc;

	muon_pub_config_init(&cfg);
	if (ucfg) {
		if (ucfg->size < offsetof(muon_pub_config_t, send_log_size) +
				     sizeof(uint32_t))
			return MUONI_ERR(MUON_EINVAL, "pub config size %zu too "
					 "small: use muon_pub_config_init()",
					 ucfg->size);
		memcpy(&cfg, ucfg, ucfg->size < sizeof(cfg) ? ucfg->size
							    : sizeof(cfg));
	}
	if (tl == 0)
		return MUONI_ERR(MUON_EINVAL, "empty topic");
	if (tl > MUONI_TOPIC_MAX)
		return MUONI_ERR(MUON_ETOOBIG, "topic longer than %u bytes",
				 MUONI_TOPIC_MAX);
	if (cfg.slow_policy != MUON_SLOW_BACKPRESSURE &&
	    cfg.slow_policy != MUON_SLOW_DROP)
		return MUONI_ERR(MUON_EINVAL, "slow_policy %d unknown",
				 (int)cfg.slow_policy);
	if (cfg.slow_policy == MUON_SLOW_DROP && cfg.slow_timeout_ms == 0)
		return MUONI_ERR(MUON_EINVAL, "slow_timeout_ms must be > 0");
	log_size = cfg.send_log_size ? cfg.send_log_size
				     : ctx->cfg.send_log_size;
	if (log_size < (uint64_t)ctx->cfg.max_msg_size * 4)
		return MUONI_ERR(MUON_ECONFIG, "send_log_size %llu below 4 x "
				 "max_msg_size %u",
				 (unsigned long long)log_size,
				 ctx->cfg.max_msg_size);
	if (ctx->n_pubs >= MUONI_MAX_PUBS)
		return MUONI_ERR(MUON_ELIMIT, "more than %u publications",
				 MUONI_MAX_PUBS);
	p = calloc(1, sizeof(*p));
	if (!p)
		return MUONI_ERR(MUON_ENOMEM, "publication");
	if (++ctx->next_stream_id == 0)
		++ctx->next_stream_id;
	p->stream_id = ctx->next_stream_id;
	rc = muoni_sendlog_init(&p->log, log_size, p->stream_id);
	if (rc) {
		free(p);
		return rc;
	}
	p->ctx = ctx;
	memcpy(p->topic, topic, tl);
	p->topic_len = (uint32_t)tl;
	p->slow_policy = cfg.slow_policy;
	p->slow_timeout_ms = cfg.slow_timeout_ms;
	p->event_fn = cfg.event_fn;
	p->event_arg = cfg.event_arg;
	p->limit = p->log.cap;
	p->next = ctx->pubs;
	if (ctx->pubs)
		ctx->pubs->prev = p;
	ctx->pubs = p;
	ctx->n_pubs++;
	/* Subscribers already connected and waiting for this topic. */
	for (c = ctx->conns; c; c = c->next) {
		struct muoni_subscribe req = {.start = MUON_START_EARLIEST};

		if (c->state != MUONI_CONN_UP ||
		    !muoni_conn_peer_subscribed(c, p->topic, p->topic_len))
			continue;
		rc = muoni_pub_subscribe(p, c, &req);
		if (rc < 0)
			muoni_conn_fail(c, rc, MUON_DOWN_DISCONNECTED);
	}
	muoni_disc_pub_added(p);
	*out = p;
	return 0;
}

void muoni_pub_free(struct muon_pub *p)
{
	struct muon_ctx *ctx = p->ctx;

	while (p->n_senders)
		muoni_sender_remove(p->senders[p->n_senders - 1]);
	if (p->prev)
		p->prev->next = p->next;
	else
		ctx->pubs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	ctx->n_pubs--;
	if (p->log.buf)
		muoni_ctx_mem_forget(p->ctx, p->log.buf,
				     p->log.cap + MUONI_SENDLOG_SLACK);
	muoni_sendlog_fini(&p->log);
	free(p->senders);
	free(p);
}

/* Closing: every cursor that reached the head gets STREAM_END and goes;
 * returns true when none is left. */
static bool pub_drain(struct muon_pub *p)
{
	unsigned i;

	for (i = p->n_senders; i-- > 0;) {
		struct muoni_sender *s = p->senders[i];
		struct muoni_conn *c = s->conn;
		uint8_t buf[64];

		if (s->pos != p->log.head)
			muoni_sender_progress(s);
		if (i >= p->n_senders || p->senders[i] != s ||
		    s->pos != p->log.head)
			continue;
		muoni_sender_remove(s);
		if (queue_frame(c, buf, muoni_enc_simple(buf, sizeof(buf),
				MUONI_FT_STREAM_END, p->stream_id,
				p->log.next_seq - 1)) == 0)
			muoni_conn_ctl_flush(c);
	}
	return p->n_senders == 0;
}

void muoni_pub_destroy(struct muon_pub *p)
{
	muoni_disc_pub_removed(p);
	p->claim_open = false;
	p->closing = true;
	p->close_deadline_ns = muoni_now_ns() +
			       (uint64_t)p->ctx->cfg.linger_ms * 1000000ull;
	if (pub_drain(p))
		muoni_pub_free(p);
	/* else muoni_pub_timers finishes it */
}

void muoni_pub_timers(struct muon_pub *p, uint64_t now)
{
	unsigned i;

	if (p->closing) {
		if (pub_drain(p)) {
			muoni_pub_free(p);
			return;
		}
		if (now < p->close_deadline_ns)
			return;
		for (i = p->n_senders; i-- > 0;) {
			struct muoni_sender *s = p->senders[i];
			MUONI_WARN(p->ctx, "'%s' closed with data %s never "
				   "took within linger_ms", p->topic,
				   s->conn->desc);
			muoni_conn_close(s->conn, MUON_DOWN_DISCONNECTED);
		}
		muoni_pub_free(p);
		return;
	}
	if (p->slow_policy != MUON_SLOW_DROP)
		return;
	for (i = p->n_senders; i-- > 0;) {
		struct muoni_sender *s = p->senders[i];
		if (!s->lagging)
			continue;
		if (s->pos != s->check_pos) {
			s->check_pos = s->pos;
			s->stall_since_ns = now;
		} else if (muoni_elapsed(now, s->stall_since_ns) >
			   (uint64_t)p->slow_timeout_ms * 1000000ull) {
			sender_cut(s, "took nothing for slow_timeout_ms");
		}
	}
}

int muoni_ctx_progress_lagging(struct muon_ctx *ctx)
{
	struct muon_pub *p, *next;
	int work = 0;
	unsigned i;

	for (p = ctx->pubs; p; p = next) {
		next = p->next;
		for (i = p->n_senders; i-- > 0;) {
			if (i >= p->n_senders || !p->senders[i]->lagging)
				continue;
			if (muoni_sender_progress(p->senders[i]) > 0)
				work++;
		}
	}
	return work;
}
