/*
 * The public API: argument checks and error context, then core. Kept thin
 * on purpose; the hot calls (publish, poll) add one direct call.
 */
#include <limits.h>
#include <string.h>

#include <muon/muon.h>

#include "core/muoni.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *muon_version(void)
{
	return STR(MUON_VERSION_MAJOR) "." STR(MUON_VERSION_MINOR) "." STR(
		MUON_VERSION_PATCH);
}

const char *muon_strerror(int status)
{
	switch (status) {
	case MUON_OK: return "success";
	case MUON_EINVAL: return "invalid argument";
	case MUON_ENOMEM: return "out of memory";
	case MUON_EBACKPRESSURE: return "back-pressure: a subscriber is behind";
	case MUON_EAGAIN: return "resource busy, try again";
	case MUON_ESTATE: return "not valid in the current state";
	case MUON_ETOOBIG: return "above a configured size limit";
	case MUON_EIO: return "I/O error";
	case MUON_EPROTO: return "protocol error from a peer";
	case MUON_ENOTFOUND: return "not found";
	case MUON_ECONFIG: return "bad configuration";
	case MUON_ECLOSED: return "closed";
	case MUON_ETIMEDOUT: return "timed out";
	case MUON_EAUTH: return "authentication failed";
	case MUON_EUNSUPPORTED: return "not supported";
	case MUON_EBUSY: return "work pending, poll first";
	case MUON_ELIMIT: return "limit reached";
	default: return status > 0 ? "success (count)" : "unknown status";
	}
}

const char *muon_event_name(int type)
{
	switch (type) {
	case MUON_EVENT_IMAGE_UP: return "IMAGE_UP";
	case MUON_EVENT_IMAGE_DOWN: return "IMAGE_DOWN";
	case MUON_EVENT_LOSS: return "LOSS";
	case MUON_EVENT_BACKPRESSURE: return "BACKPRESSURE";
	case MUON_EVENT_ERROR: return "ERROR";
	case MUON_EVENT_SLOW_DROP: return "SLOW_DROP";
	default: return "unknown";
	}
}

const char *muon_down_reason_name(int reason)
{
	switch (reason) {
	case MUON_DOWN_CLOSED: return "CLOSED";
	case MUON_DOWN_DISCONNECTED: return "DISCONNECTED";
	case MUON_DOWN_SLOW: return "SLOW";
	case MUON_DOWN_PROTOCOL: return "PROTOCOL";
	default: return "unknown";
	}
}

const char *muon_log_level_name(int level)
{
	const char *name = muoni_log_level_name(level);

	return name ? name : "unknown";
}

const char *muon_errmsg(void)
{
	return muoni_err_msg();
}

void muon_ctx_config_init(muon_ctx_config_t *cfg)
{
	if (cfg)
		muoni_config_defaults(cfg);
}

int muon_ctx_create(const muon_ctx_config_t *cfg, muon_ctx_t **out)
{
	int rc;

	if (!out)
		return MUONI_ERR(MUON_EINVAL, "muon_ctx_create: out is NULL");
	rc = muoni_ctx_create(cfg, out);
	if (rc)
		return muoni_err_push(rc, "muon_ctx_create");
	return 0;
}

void muon_ctx_destroy(muon_ctx_t *ctx)
{
	if (ctx)
		muoni_ctx_destroy(ctx);
}

uint64_t muon_ctx_id(const muon_ctx_t *ctx)
{
	return ctx ? ctx->id : 0;
}

int muon_ctx_listen_endpoint(const muon_ctx_t *ctx, unsigned index, char *buf,
			     size_t len)
{
	size_t n;

	if (!ctx || !buf)
		return MUONI_ERR(MUON_EINVAL, "muon_ctx_listen_endpoint: NULL "
				 "argument");
	if (index >= ctx->n_listeners)
		return MUONI_ERR(MUON_ENOTFOUND, "muon_ctx_listen_endpoint: "
				 "no listen endpoint %u (have %u)", index,
				 ctx->n_listeners);
	n = strlen(ctx->listeners[index]->bound);
	if (n + 1 > len)
		return MUONI_ERR(MUON_EINVAL, "muon_ctx_listen_endpoint: "
				 "buffer of %zu bytes, need %zu", len, n + 1);
	memcpy(buf, ctx->listeners[index]->bound, n + 1);
	return 0;
}

int muon_ctx_poll(muon_ctx_t *ctx, unsigned budget)
{
	if (MUONI_UNLIKELY(!ctx))
		return MUONI_ERR(MUON_EINVAL, "muon_ctx_poll: ctx is NULL");
	return muoni_ctx_poll(ctx, budget);
}

int muon_ctx_fd(muon_ctx_t *ctx)
{
	if (!ctx)
		return MUONI_ERR(MUON_EINVAL, "muon_ctx_fd: ctx is NULL");
	return ctx->epfd;
}

int muon_ctx_arm(muon_ctx_t *ctx)
{
	if (!ctx)
		return MUONI_ERR(MUON_EINVAL, "muon_ctx_arm: ctx is NULL");
	return muoni_ctx_arm(ctx);
}

int muon_ctx_counters(const muon_ctx_t *ctx, muon_counters_t *out)
{
	size_t n;

	if (!ctx || !out)
		return MUONI_ERR(MUON_EINVAL, "muon_ctx_counters: NULL "
				 "argument");
	if (out->size < sizeof(size_t) + sizeof(uint64_t))
		return MUONI_ERR(MUON_EINVAL, "muon_ctx_counters: set "
				 "out->size = sizeof(muon_counters_t)");
	n = out->size < sizeof(*out) ? out->size : sizeof(*out);
	memcpy((char *)out + sizeof(size_t),
	       (const char *)&ctx->ctr + sizeof(size_t), n - sizeof(size_t));
	return 0;
}

void muon_pub_config_init(muon_pub_config_t *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->slow_policy = MUON_SLOW_BACKPRESSURE;
	cfg->slow_timeout_ms = 1000;
}

int muon_pub_create(muon_ctx_t *ctx, const char *topic,
		    const muon_pub_config_t *cfg, muon_pub_t **out)
{
	int rc;

	if (!ctx || !topic || !out)
		return MUONI_ERR(MUON_EINVAL, "muon_pub_create: NULL argument");
	if (ctx->in_poll && ctx->destroying)
		return MUONI_ERR(MUON_ESTATE, "muon_pub_create: context is "
				 "being destroyed");
	rc = muoni_pub_create(ctx, topic, cfg, out);
	if (rc)
		return muoni_err_push(rc, "muon_pub_create '%.64s'", topic);
	return 0;
}

void muon_pub_destroy(muon_pub_t *pub)
{
	if (pub && !pub->closing)
		muoni_pub_destroy(pub);
}

int64_t muon_publish(muon_pub_t *pub, const void *data, size_t len)
{
	if (MUONI_UNLIKELY(!pub || (!data && len)))
		return MUONI_ERR(MUON_EINVAL, "muon_publish: NULL argument");
	return muoni_publish(pub, data, len);
}

int muon_publishv(muon_pub_t *pub, const muon_iov_t *msgs, unsigned n,
		  int64_t *first_seq)
{
	if (MUONI_UNLIKELY(!pub || (!msgs && n)))
		return MUONI_ERR(MUON_EINVAL, "muon_publishv: NULL argument");
	if (MUONI_UNLIKELY(n > INT_MAX))
		return MUONI_ERR(MUON_EINVAL, "muon_publishv: %u messages, "
				 "above INT_MAX", n);
	return muoni_publishv(pub, msgs, n, first_seq);
}

int muon_claim(muon_pub_t *pub, size_t len, void **buf)
{
	if (MUONI_UNLIKELY(!pub || !buf))
		return MUONI_ERR(MUON_EINVAL, "muon_claim: NULL argument");
	return muoni_claim(pub, len, buf);
}

int64_t muon_commit(muon_pub_t *pub)
{
	if (MUONI_UNLIKELY(!pub))
		return MUONI_ERR(MUON_EINVAL, "muon_commit: pub is NULL");
	return muoni_commit(pub);
}

int muon_abort(muon_pub_t *pub)
{
	if (!pub)
		return MUONI_ERR(MUON_EINVAL, "muon_abort: pub is NULL");
	return muoni_abort(pub);
}

uint32_t muon_pub_stream_id(const muon_pub_t *pub)
{
	return pub ? pub->stream_id : 0;
}

int muon_pub_subscribers(const muon_pub_t *pub)
{
	if (!pub)
		return MUONI_ERR(MUON_EINVAL, "muon_pub_subscribers: NULL");
	return (int)pub->n_senders;
}

void muon_sub_config_init(muon_sub_config_t *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->start = MUON_START_LATEST;
}

int muon_sub_create(muon_ctx_t *ctx, const char *topic,
		    const muon_sub_config_t *cfg, muon_sub_t **out)
{
	int rc;

	if (!ctx || !topic || !out)
		return MUONI_ERR(MUON_EINVAL, "muon_sub_create: NULL argument");
	rc = muoni_sub_create(ctx, topic, cfg, out);
	if (rc)
		return muoni_err_push(rc, "muon_sub_create '%.64s'", topic);
	return 0;
}

void muon_sub_destroy(muon_sub_t *sub)
{
	if (sub && !sub->closed)
		muoni_sub_destroy(sub);
}

int muon_sub_images(const muon_sub_t *sub)
{
	if (!sub)
		return MUONI_ERR(MUON_EINVAL, "muon_sub_images: NULL");
	return sub->n_images;
}
