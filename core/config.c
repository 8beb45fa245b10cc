/*
 * Configuration: defaults, MUON_* environment overrides and endpoint
 * parsing. Everything a user can type is checked here with an error that
 * names the field or variable.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/muoni.h"
#include "proto/disc.h"

#define MIB (1024u * 1024u)

void muoni_config_defaults(muon_ctx_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->name = "muon";
	cfg->transport = "auto";
	cfg->ring_size = 8 * MIB;
	cfg->send_log_size = 8 * MIB;
	cfg->max_msg_size = 64 * 1024;
	cfg->heartbeat_ms = 1000;
	cfg->peer_timeout_ms = 10000;
	cfg->reconnect_ms = 100;
	cfg->linger_ms = 2000;
	cfg->log_level = MUON_LOG_WARN;
	cfg->shm_dir = "/dev/shm";
}

int muoni_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return MUONI_ERR(MUON_ECONFIG, "'%s' is not a number",
				 s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return MUONI_ERR(MUON_ECONFIG, "'%s' is not a number in "
				 "[%u, %u]", s, min, max);
	*out = (uint32_t)v;
	return 0;
}

/* Sizes accept a K, M or G suffix (binary). */
int muoni_parse_size(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v, mul = 1;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return MUONI_ERR(MUON_ECONFIG, "'%s' is not a size",
				 s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1024ull * 1024 * 1024, end++;
	if (errno || *end || v > UINT32_MAX / mul)
		return MUONI_ERR(MUON_ECONFIG, "'%s' is not a size below 4G",
				 s);
	*out = (uint32_t)(v * mul);
	return 0;
}

static int name_char_ok(char ch)
{
	return isalnum((unsigned char)ch) || ch == '.' || ch == '_' ||
	       ch == '-';
}

int muoni_endpoint_parse(const char *s, size_t n, struct muoni_endpoint *ep)
{
	const char *p, *colon;
	size_t i, hl;
	char portbuf[8];
	uint32_t port;

	memset(ep, 0, sizeof(*ep));
	if (n >= MUONI_EP_TEXT)
		return MUONI_ERR(MUON_ECONFIG, "endpoint '%.*s...' too long",
				 40, s);
	if (n > 6 && !strncmp(s, "shm://", 6)) {
		p = s + 6;
		n -= 6;
		if (n == 0 || n > MUONI_SHM_NAME_MAX)
			return MUONI_ERR(MUON_ECONFIG, "shm endpoint name must "
					 "be 1 to %d characters",
					 MUONI_SHM_NAME_MAX);
		for (i = 0; i < n; i++)
			if (!name_char_ok(p[i]))
				return MUONI_ERR(MUON_ECONFIG, "shm endpoint "
						 "'%.*s': only [A-Za-z0-9._-] "
						 "allowed", (int)n, p);
		ep->kind = MUONI_EP_SHM;
		memcpy(ep->name, p, n);
		snprintf(ep->text, sizeof(ep->text), "shm://%s", ep->name);
		return 0;
	}
	if ((n > 6 && !strncmp(s, "tcp://", 6)) ||
	    (n > 8 && !strncmp(s, "verbs://", 8))) {
		bool verbs = s[0] == 'v';
		const char *scheme = verbs ? "verbs" : "tcp";
		size_t sl = verbs ? 8 : 6;

		p = s + sl;
		n -= sl;
		if (*p == '[') {
			const char *rb = memchr(p, ']', n);
			if (!rb || rb + 1 >= p + n || rb[1] != ':')
				return MUONI_ERR(MUON_ECONFIG, "%s endpoint "
						 "'%.*s': want [IPv6]:PORT",
						 scheme, (int)n, p);
			hl = (size_t)(rb - p - 1);
			colon = rb + 1;
			p++;
		} else {
			colon = NULL;
			for (i = n; i > 0; i--)
				if (p[i - 1] == ':') {
					colon = p + i - 1;
					break;
				}
			if (!colon)
				return MUONI_ERR(MUON_ECONFIG, "%s endpoint "
						 "'%.*s' has no :PORT",
						 scheme, (int)n, p);
			hl = (size_t)(colon - p);
			if (memchr(p, ':', hl))
				return MUONI_ERR(MUON_ECONFIG, "%s endpoint "
						 "'%.*s': put IPv6 addresses "
						 "in brackets", scheme, (int)n,
						 p);
		}
		if (hl == 0 || hl >= sizeof(ep->host))
			return MUONI_ERR(MUON_ECONFIG, "%s endpoint: host "
					 "length %zu out of range", scheme, hl);
		i = (size_t)(s + sl + n - colon - 1);
		if (i == 0 || i >= sizeof(portbuf))
			return MUONI_ERR(MUON_ECONFIG, "%s endpoint '%.*s': "
					 "bad port", scheme, (int)n, s + sl);
		memcpy(portbuf, colon + 1, i);
		portbuf[i] = '\0';
		if (muoni_parse_u32(portbuf, 0, 65535, &port))
			return muoni_err_push(MUON_ECONFIG, "%s endpoint "
					      "'%.*s' port", scheme, (int)n,
					      s + sl);
		memcpy(ep->host, p, hl);
		ep->host[hl] = '\0';
		for (i = 0; i < hl; i++)
			if (!isalnum((unsigned char)ep->host[i]) &&
			    !strchr(".-_:%", ep->host[i]))
				return MUONI_ERR(MUON_ECONFIG, "%s endpoint "
						 "host '%s' has a bad "
						 "character", scheme, ep->host);
		ep->kind = verbs ? MUONI_EP_VERBS : MUONI_EP_TCP;
		ep->port = (uint16_t)port;
		snprintf(ep->text, sizeof(ep->text),
			 strchr(ep->host, ':') ? "%s://[%s]:%u" : "%s://%s:%u",
			 scheme, ep->host, port);
		return 0;
	}
	return MUONI_ERR(MUON_ECONFIG, "endpoint '%.*s': scheme must be "
			 "verbs://, tcp:// or shm://", (int)n, s);
}

/* One comma-separated entry: an endpoint, or for peers several
 * alternatives of one context joined by '|'. */
static int entry_parse(const char *p, size_t len, bool alternatives,
		       unsigned group, struct muoni_endpoint **eps,
		       unsigned *cnt, unsigned *cap)
{
	unsigned first = *cnt;

	while (len) {
		const char *bar = memchr(p, '|', len);
		size_t l = bar ? (size_t)(bar - p) : len;
		size_t a = l;
		const char *q = p;
		unsigned k;
		int rc;

		if (bar && !alternatives)
			return MUONI_ERR(MUON_ECONFIG, "'|' (alternatives) is "
					 "only allowed in peers");
		while (a && isspace((unsigned char)*q))
			q++, a--;
		while (a && isspace((unsigned char)q[a - 1]))
			a--;
		if (!a)
			return MUONI_ERR(MUON_ECONFIG, "empty alternative in "
					 "'%.*s'", (int)len, p);
		if (*cnt == *cap) {
			void *nb;

			if (*cap >= 256)
				return MUONI_ERR(MUON_ECONFIG, "more than 256 "
						 "endpoints");
			*cap = *cap ? *cap * 2 : 4;
			nb = realloc(*eps, *cap * sizeof(**eps));
			if (!nb)
				return MUONI_ERR(MUON_ENOMEM, "endpoint list");
			*eps = nb;
		}
		rc = muoni_endpoint_parse(q, a, &(*eps)[*cnt]);
		if (rc)
			return rc;
		for (k = first; k < *cnt; k++)
			if ((*eps)[k].kind == (*eps)[*cnt].kind)
				return MUONI_ERR(MUON_ECONFIG, "'%.*s': two "
						 "alternatives on one transport",
						 (int)len, p);
		(*eps)[*cnt].group = group;
		(*cnt)++;
		if (!bar)
			break;
		len -= l + 1;
		p = bar + 1;
		if (!len)
			return MUONI_ERR(MUON_ECONFIG, "empty alternative "
					 "after '|'");
	}
	return 0;
}

int muoni_endpoints_parse(const char *list, bool alternatives,
			  struct muoni_endpoint **out, unsigned *n)
{
	struct muoni_endpoint *eps = NULL;
	unsigned cnt = 0, cap = 0, group = 0;
	const char *p = list;

	*out = NULL;
	*n = 0;
	if (!list)
		return 0;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len && isspace((unsigned char)*p))
			p++, len--;
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (len) {
			int rc = entry_parse(p, len, alternatives, group++,
					     &eps, &cnt, &cap);
			if (rc) {
				free(eps);
				return rc;
			}
		}
		if (!end)
			break;
		p = end + 1;
	}
	*out = eps;
	*n = cnt;
	return 0;
}

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

struct env_num {
	const char *var;
	uint32_t *dst;
	int is_size;
	uint32_t min, max;
};

/* Which fields the environment set, so errors can name the variable. */
struct env_src {
	bool listen, peers, transport, shm_dir, ring, log, max, hb, pt, secret;
	bool discovery, advertise;
};

static int apply_env(muon_ctx_config_t *c, const char **ctx_id_s,
		     const char **level_s, struct env_src *src)
{
	struct env_num nums[] = {
		{"MUON_RING_SIZE", &c->ring_size, 1, 0, 0},
		{"MUON_SEND_LOG_SIZE", &c->send_log_size, 1, 0, 0},
		{"MUON_MAX_MSG_SIZE", &c->max_msg_size, 1, 0, 0},
		{"MUON_HEARTBEAT_MS", &c->heartbeat_ms, 0, 1, 3600000},
		{"MUON_PEER_TIMEOUT_MS", &c->peer_timeout_ms, 0, 1, 86400000},
		{"MUON_RECONNECT_MS", &c->reconnect_ms, 0, 1, 3600000},
		{"MUON_LINGER_MS", &c->linger_ms, 0, 0, 3600000},
	};
	const char *v;
	size_t i;

	if ((v = getenv("MUON_NAME")))
		c->name = v;
	if ((v = getenv("MUON_LISTEN")))
		c->listen = v, src->listen = true;
	if ((v = getenv("MUON_PEERS")))
		c->peers = v, src->peers = true;
	if ((v = getenv("MUON_TRANSPORT")))
		c->transport = v, src->transport = true;
	if ((v = getenv("MUON_SHM_DIR")))
		c->shm_dir = v, src->shm_dir = true;
	if ((v = getenv("MUON_SECRET_FILE")))
		c->secret_file = v, src->secret = true;
	if ((v = getenv("MUON_DISCOVERY")))
		c->discovery = v, src->discovery = true;
	if ((v = getenv("MUON_ADVERTISE")))
		c->advertise = v, src->advertise = true;
	src->ring = getenv("MUON_RING_SIZE") != NULL;
	src->log = getenv("MUON_SEND_LOG_SIZE") != NULL;
	src->max = getenv("MUON_MAX_MSG_SIZE") != NULL;
	src->hb = getenv("MUON_HEARTBEAT_MS") != NULL;
	src->pt = getenv("MUON_PEER_TIMEOUT_MS") != NULL;
	if ((v = getenv("MUON_CTX_ID")))
		*ctx_id_s = v;
	if ((v = getenv("MUON_LOG_LEVEL")))
		*level_s = v;
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		int rc;

		v = getenv(nums[i].var);
		if (!v)
			continue;
		rc = nums[i].is_size
			     ? muoni_parse_size(v, nums[i].dst)
			     : muoni_parse_u32(v, nums[i].min, nums[i].max,
					       nums[i].dst);
		if (rc)
			return muoni_err_push(rc, "environment %s",
					      nums[i].var);
	}
	return 0;
}

static int parse_level(const char *s, muon_log_level_t *out)
{
	int i;

	for (i = MUON_LOG_NONE; i <= MUON_LOG_DEBUG; i++)
		if (!strcasecmp(s, muoni_log_level_name(i))) {
			*out = (muon_log_level_t)i;
			return 0;
		}
	return MUONI_ERR(MUON_ECONFIG, "log level '%s': want none, error, "
			 "warn, info or debug", s);
}

static int parse_transport(const char *s, int *out)
{
	if (!s || !strcmp(s, "auto") || !*s)
		*out = 0;
	else if (!strcmp(s, "shm"))
		*out = MUONI_EP_SHM;
	else if (!strcmp(s, "tcp"))
		*out = MUONI_EP_TCP;
	else if (!strcmp(s, "verbs"))
		*out = MUONI_EP_VERBS;
	else
		return MUONI_ERR(MUON_ECONFIG, "transport '%s': want auto, "
				 "verbs, shm or tcp", s);
	return 0;
}

static int check_sizes_(const muon_ctx_config_t *c);

static int check_sizes(const muon_ctx_config_t *c, const struct env_src *src)
{
	int rc = check_sizes_(c);

	if (rc && (src->ring || src->log || src->max || src->hb || src->pt))
		return muoni_err_push(rc, "environment%s%s%s%s%s",
				      src->ring ? " MUON_RING_SIZE" : "",
				      src->log ? " MUON_SEND_LOG_SIZE" : "",
				      src->max ? " MUON_MAX_MSG_SIZE" : "",
				      src->hb ? " MUON_HEARTBEAT_MS" : "",
				      src->pt ? " MUON_PEER_TIMEOUT_MS" : "");
	return rc;
}

static int check_sizes_(const muon_ctx_config_t *c)
{
	/* The top matches what a shm publisher agrees to map (and what
	 * verbs allows), so a ring is never refused only at connect time,
	 * where it would show up as endless reconnects. */
	if (!is_pow2(c->ring_size) || c->ring_size < 64 * 1024 ||
	    c->ring_size > 256u * 1024 * 1024)
		return MUONI_ERR(MUON_ECONFIG, "ring_size %u: want a power of "
				 "two from 64 KiB to 256 MiB", c->ring_size);
	if (!is_pow2(c->send_log_size) || c->send_log_size < 4096)
		return MUONI_ERR(MUON_ECONFIG, "send_log_size %u: want a power "
				 "of two of at least 4 KiB", c->send_log_size);
	if (c->max_msg_size > c->ring_size / 4)
		return MUONI_ERR(MUON_ECONFIG, "max_msg_size %u above a "
				 "quarter of ring_size %u", c->max_msg_size,
				 c->ring_size);
	if (c->max_msg_size > c->send_log_size / 4)
		return MUONI_ERR(MUON_ECONFIG, "max_msg_size %u above a "
				 "quarter of send_log_size %u",
				 c->max_msg_size, c->send_log_size);
	if (c->heartbeat_ms == 0 || c->peer_timeout_ms <= c->heartbeat_ms)
		return MUONI_ERR(MUON_ECONFIG, "peer_timeout_ms %u must exceed "
				 "heartbeat_ms %u (> 0)", c->peer_timeout_ms,
				 c->heartbeat_ms);
	if (c->reconnect_ms == 0)
		return MUONI_ERR(MUON_ECONFIG, "reconnect_ms must be > 0");
	return 0;
}

int muoni_config_resolve(const muon_ctx_config_t *in, struct muoni_config *out)
{
	muon_ctx_config_t c;
	const char *ctx_id_s = NULL, *level_s = NULL;
	struct env_src src = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	muoni_config_defaults(&c);
	if (in) {
		/* Take what the caller's (possibly older) struct has. */
		size_t n = in->size < sizeof(c) ? in->size : sizeof(c);
		if (in->size < offsetof(muon_ctx_config_t, name))
			return MUONI_ERR(MUON_EINVAL, "config size %zu too "
					 "small: call muon_ctx_config_init()",
					 in->size);
		memcpy(&c, in, n);
		c.size = sizeof(c);
	}
	/* c, not in: a caller's struct may end before ignore_env. */
	if (!c.ignore_env) {
		rc = apply_env(&c, &ctx_id_s, &level_s, &src);
		if (rc)
			return rc;
	}
	rc = check_sizes(&c, &src);
	if (rc)
		return rc;
	if (c.log_level > MUON_LOG_DEBUG)
		return MUONI_ERR(MUON_ECONFIG, "log_level %d out of range",
				 (int)c.log_level);
	out->log_level = c.log_level;
	if (level_s && (rc = parse_level(level_s, &out->log_level)))
		return muoni_err_push(rc, "environment MUON_LOG_LEVEL");
	if (ctx_id_s) {
		char *end;
		errno = 0;
		out->ctx_id = strtoull(ctx_id_s, &end, 0);
		if (errno || *end || !out->ctx_id)
			return MUONI_ERR(MUON_ECONFIG, "environment "
					 "MUON_CTX_ID '%s' is not a nonzero "
					 "integer", ctx_id_s);
	} else {
		out->ctx_id = c.ctx_id;
	}
	rc = parse_transport(c.transport, &out->transport);
	if (rc)
		return src.transport ? muoni_err_push(rc, "environment "
						      "MUON_TRANSPORT") : rc;
	if (!c.name || !*c.name)
		c.name = "muon";
	snprintf(out->name, sizeof(out->name), "%s", c.name);
	if (!c.shm_dir || !*c.shm_dir || strlen(c.shm_dir) > 200)
		return MUONI_ERR(MUON_ECONFIG, "%s must be a path of 1 to 200 "
				 "characters", src.shm_dir ? "environment "
				 "MUON_SHM_DIR" : "shm_dir");
	snprintf(out->shm_dir, sizeof(out->shm_dir), "%s", c.shm_dir);
	if (c.secret_file && *c.secret_file) {
		rc = muoni_secret_load(c.secret_file, out->secret);
		if (rc)
			return muoni_err_push(rc, src.secret ? "environment "
					      "MUON_SECRET_FILE" : "secret_file");
		out->has_secret = true;
	}
	out->ring_size = c.ring_size;
	out->send_log_size = c.send_log_size;
	out->max_msg_size = c.max_msg_size;
	out->heartbeat_ms = c.heartbeat_ms;
	out->peer_timeout_ms = c.peer_timeout_ms;
	out->reconnect_ms = c.reconnect_ms;
	out->linger_ms = c.linger_ms;
	out->log_fn = c.log_fn;
	out->log_arg = c.log_arg;
	rc = muoni_endpoints_parse(c.listen, false, &out->listen,
				   &out->n_listen);
	if (rc)
		return muoni_err_push(rc, src.listen ? "environment MUON_LISTEN"
						     : "listen");
	rc = muoni_endpoints_parse(c.peers, true, &out->peers, &out->n_peers);
	if (rc) {
		muoni_config_fini(out);
		return muoni_err_push(rc, src.peers ? "environment MUON_PEERS"
						    : "peers");
	}
	rc = muoni_disc_daemons_parse(c.discovery, &out->daemons,
				      &out->n_daemons);
	if (rc) {
		muoni_config_fini(out);
		return muoni_err_push(rc, src.discovery ? "environment "
				      "MUON_DISCOVERY" : "discovery");
	}
	rc = muoni_endpoints_parse(c.advertise, false, &out->advertise,
				   &out->n_advertise);
	if (!rc && out->n_advertise > MUONI_DISC_MAX_ENDPOINTS)
		rc = MUONI_ERR(MUON_ECONFIG, "%u endpoints, at most %u",
			       out->n_advertise, MUONI_DISC_MAX_ENDPOINTS);
	if (rc) {
		muoni_config_fini(out);
		return muoni_err_push(rc, src.advertise ? "environment "
				      "MUON_ADVERTISE" : "advertise");
	}
	return 0;
}

void muoni_config_fini(struct muoni_config *c)
{
	muoni_secret_wipe(c->secret, sizeof(c->secret));
	c->has_secret = false;
	free(c->listen);
	free(c->peers);
	free(c->daemons);
	free(c->advertise);
	c->listen = NULL;
	c->peers = NULL;
	c->daemons = NULL;
	c->advertise = NULL;
}
