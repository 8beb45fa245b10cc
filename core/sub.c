/*
 * Subscriptions: one per topic per context. Images (one per remote stream)
 * live on their connection; a subscription counts them, reports their
 * events and remembers where each stream stopped so a reconnect resumes
 * there instead of losing or repeating messages.
 */
#include <stdlib.h>
#include <string.h>

#include "core/muoni.h"

struct muon_sub *muoni_sub_find(struct muon_ctx *ctx, const char *topic,
				uint32_t len)
{
	struct muon_sub *s;

	for (s = ctx->subs; s; s = s->next)
		if (!s->closed && s->topic_len == len &&
		    !memcmp(s->topic, topic, len))
			return s;
	return NULL;
}

static struct muoni_resume *resume_slot(struct muon_sub *s, uint64_t pub,
					uint32_t stream, bool create)
{
	unsigned i;

	for (i = 0; i < s->n_resume; i++)
		if (s->resume[i].publisher_id == pub &&
		    s->resume[i].stream_id == stream)
			return &s->resume[i];
	if (!create)
		return NULL;
	if (s->n_resume == MUONI_SUB_RESUME_MAX) {
		/* Forget the oldest; a resume for it becomes a fresh start. */
		memmove(s->resume, s->resume + 1,
			(s->n_resume - 1) * sizeof(*s->resume));
		s->n_resume--;
	}
	if (s->n_resume == s->cap_resume) {
		unsigned ncap = s->cap_resume ? s->cap_resume * 2 : 4;
		void *nb = realloc(s->resume, ncap * sizeof(*s->resume));
		if (!nb)
			return NULL;
		s->resume = nb;
		s->cap_resume = ncap;
	}
	s->resume[s->n_resume].publisher_id = pub;
	s->resume[s->n_resume].stream_id = stream;
	s->resume[s->n_resume].next_seq = 0;
	return &s->resume[s->n_resume++];
}

uint64_t muoni_sub_resume_next(const struct muon_sub *s, uint64_t publisher_id,
			       uint32_t stream_id)
{
	unsigned i;

	for (i = 0; i < s->n_resume; i++)
		if (s->resume[i].publisher_id == publisher_id &&
		    s->resume[i].stream_id == stream_id)
			return s->resume[i].next_seq;
	return 0;
}

/*
 * Streams a subscription has seen resume from their own entries. Streams
 * the publisher had started for it that it never saw (the connection went
 * before their STREAM_INFO was read; two contexts that dial each other
 * drop one connection right after the handshake) are known only to the
 * publisher: the stream-0 entry, sent with the next SUBSCRIBE to that
 * context, asks it to continue them from where they started. Without it a
 * START_LATEST subscription would silently skip what was sent meanwhile.
 */
void muoni_sub_peer_lost(struct muon_ctx *ctx, uint64_t peer_ctx_id)
{
	struct muon_sub *s;

	for (s = ctx->subs; s; s = s->next) {
		struct muoni_resume *r;

		if (s->closed)
			continue;
		r = resume_slot(s, peer_ctx_id, 0, true);
		if (r)
			r->next_seq = 1;
	}
}

static void sub_event(struct muon_sub *s, const struct muoni_image *img,
		      muon_event_type_t type, uint64_t from, uint64_t to,
		      int reason, const char *detail)
{
	muon_event_t ev = {.type = type,
			   .topic = s->topic,
			   .publisher_id = img->publisher_id,
			   .stream_id = img->stream_id,
			   .from_seq = from,
			   .to_seq = to,
			   .reason = reason,
			   .detail = detail ? detail : ""};

	muoni_ctx_event(s->ctx, s->event_fn, s->event_arg, &ev);
}

void muoni_sub_image_up(struct muon_sub *s, struct muoni_image *img)
{
	uint64_t first = img->next_seq > img->skip_below ? img->next_seq
							 : img->skip_below;

	s->n_images++;
	sub_event(s, img, MUON_EVENT_IMAGE_UP, first, 0, 0, "stream up");
}

void muoni_sub_image_down(struct muoni_image *img, int reason,
			  const char *detail)
{
	struct muon_sub *s = img->sub;
	struct muoni_resume *r;

	if (!s)
		return;
	img->sub = NULL;
	s->n_images--;
	r = resume_slot(s, img->publisher_id, img->stream_id,
			reason != MUON_DOWN_CLOSED);
	if (reason == MUON_DOWN_CLOSED) {
		if (r)
			*r = s->resume[--s->n_resume];
	} else if (r) {
		r->next_seq = img->next_seq;
	}
	sub_event(s, img, MUON_EVENT_IMAGE_DOWN, 0, img->next_seq - 1, reason,
		  detail);
}

void muoni_sub_loss(struct muoni_image *img, uint64_t from, uint64_t to,
		    const char *detail)
{
	struct muon_ctx *ctx = img->conn->ctx;

	ctx->ctr.losses++;
	ctx->ctr.msgs_lost += to - from + 1;
	MUONI_WARN(ctx, "stream %u of %016llx: messages %llu..%llu lost: %s",
		   img->stream_id, (unsigned long long)img->publisher_id,
		   (unsigned long long)from, (unsigned long long)to, detail);
	if (img->sub)
		sub_event(img->sub, img, MUON_EVENT_LOSS, from, to, 0, detail);
}

int muoni_sub_create(struct muon_ctx *ctx, const char *topic,
		     const muon_sub_config_t *ucfg, struct muon_sub **out)
{
	muon_sub_config_t cfg;
	struct muon_sub *s;
	struct muoni_conn *c;
	size_t tl = strnlen(topic, MUONI_TOPIC_MAX + 1);

	if (!ucfg)
		return MUONI_ERR(MUON_EINVAL, "subscription needs a config "
				 "with msg_fn");
	if (ucfg->size < offsetof(muon_sub_config_t, msg_arg))
		return MUONI_ERR(MUON_EINVAL, "sub config size %zu too small: "
				 "use muon_sub_config_init()", ucfg->size);
	muon_sub_config_init(&cfg);
	memcpy(&cfg, ucfg, ucfg->size < sizeof(cfg) ? ucfg->size : sizeof(cfg));
	if (!cfg.msg_fn)
		return MUONI_ERR(MUON_EINVAL, "msg_fn is NULL");
	if (tl == 0)
		return MUONI_ERR(MUON_EINVAL, "empty topic");
	if (tl > MUONI_TOPIC_MAX)
		return MUONI_ERR(MUON_ETOOBIG, "topic longer than %u bytes",
				 MUONI_TOPIC_MAX);
	if (cfg.start > MUON_START_SEQ)
		return MUONI_ERR(MUON_EINVAL, "start mode %d unknown",
				 (int)cfg.start);
	if (cfg.start == MUON_START_SEQ && cfg.start_seq == 0)
		return MUONI_ERR(MUON_EINVAL, "MUON_START_SEQ needs start_seq "
				 ">= 1");
	if (muoni_sub_find(ctx, topic, (uint32_t)tl))
		return MUONI_ERR(MUON_ESTATE, "topic '%s' already has a "
				 "subscription in this context", topic);
	s = calloc(1, sizeof(*s));
	if (!s)
		return MUONI_ERR(MUON_ENOMEM, "subscription");
	s->ctx = ctx;
	memcpy(s->topic, topic, tl);
	s->topic_len = (uint32_t)tl;
	s->msg_fn = cfg.msg_fn;
	s->msg_arg = cfg.msg_arg;
	s->event_fn = cfg.event_fn;
	s->event_arg = cfg.event_arg;
	s->start = (uint8_t)cfg.start;
	s->start_seq = cfg.start_seq;
	s->next = ctx->subs;
	if (ctx->subs)
		ctx->subs->prev = s;
	ctx->subs = s;
	for (c = ctx->conns; c; c = c->next)
		muoni_conn_send_subscribe(c, s);
	muoni_disc_sub_added(s);
	*out = s;
	return 0;
}

void muoni_sub_free(struct muon_sub *s)
{
	free(s->resume);
	free(s);
}

void muoni_sub_destroy(struct muon_sub *s)
{
	struct muon_ctx *ctx = s->ctx;
	struct muoni_conn *c;
	uint8_t buf[MUONI_FRAME_HDR_LEN + 8 + MUONI_TOPIC_MAX + 8];
	size_t n = muoni_enc_unsubscribe(buf, sizeof(buf), s->topic,
					 s->topic_len);

	s->closed = true;
	muoni_disc_sub_removed(s);
	for (c = ctx->conns; c; c = c->next) {
		uint32_t i;

		if (!c->receiving)
			continue;
		for (i = 0; c->img_tab && i <= c->img_mask; i++)
			if (c->img_tab[i] && c->img_tab[i]->sub == s)
				c->img_tab[i]->sub = NULL;
		if (c->state == MUONI_CONN_UP) {
			int rc = c->ops->ctrl_send(c, buf, n);
			if (rc < 0)
				muoni_conn_fail(c, rc, MUON_DOWN_DISCONNECTED);
		}
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		ctx->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (ctx->in_poll) {
		/* A callback of ours may be running it: free after poll. */
		s->next = ctx->dead_subs;
		ctx->dead_subs = s;
		ctx->reap_pending = true;
	} else {
		muoni_sub_free(s);
	}
}
