/*
 * The discovery client: keeps a TCP session with every configured muond,
 * registers this context's publications there, watches the topics it
 * subscribes to, and turns what the daemons report into peers to connect
 * to. It runs from the control plane of muon_ctx_poll() (the context's
 * epoll set and timers), never on the data path.
 *
 * Several daemons: their answers are merged per publication, which stays
 * known while any daemon lists it. A daemon that cannot be reached keeps
 * the last picture it gave (stale, not forgotten), so losing every daemon
 * changes nothing for existing connections; a daemon that comes back
 * sends fresh snapshots and what it no longer lists is dropped then.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "core/muoni.h"
#include "proto/disc.h"

enum { D_IDLE = 0, D_CONNECTING, D_WELCOME, D_UP };

#define DISC_TICK_NS 10000000ull      /* timers every 10 ms at most */
#define DISC_CONNECT_TIMEOUT_MS 3000u
#define DISC_BACKOFF_MAX_MS 5000u
#define DISC_MAX_OUTPUT (16u << 20)
#define DISC_MAX_RECS 65536u

struct disc_daemon {
	struct muoni_disc *disc;
	unsigned index;
	struct muoni_endpoint ep;
	struct muoni_fdh h;
	int state;
	uint32_t events;
	struct muoni_disc_buf in;
	struct muoni_disc_buf out;
	uint8_t srv_nonce[MUONI_DISC_NONCE_LEN];
	uint8_t cli_nonce[MUONI_DISC_NONCE_LEN];
	struct muoni_disc_mac mac; /* key and srv_nonce, hashed once */
	uint64_t tx_seq;
	uint64_t rx_seq;
	uint64_t daemon_id;
	uint32_t lease_ms;
	uint32_t max_frame;
	uint32_t backoff_ms;
	uint64_t next_attempt_ns;
	uint64_t state_since_ns;
	uint64_t last_rx_ns;
	uint64_t next_renew_ns;
	uint32_t gen;
	int last_status;
	bool ever_up;
	/* what this host is called from the daemon's side, for wildcards */
	char local_host[INET6_ADDRSTRLEN];
	char adv[MUONI_DISC_MAX_ENDPOINTS][MUONI_EP_TEXT];
	unsigned n_adv;
};

/* A publication some daemon listed, keyed by (ctx_id, stream_id). */
struct disc_rec {
	uint64_t ctx_id;
	uint32_t stream_id;
	uint32_t mask; /* daemons that list it now */
	uint32_t gen[MUONI_DISC_MAX_DAEMONS];
	char topic[MUONI_TOPIC_MAX + 1];
	char host_id[MUONI_DISC_HOST_ID_MAX + 1];
	char eps[MUONI_DISC_MAX_ENDPOINTS][MUONI_EP_TEXT];
	unsigned n_eps;
};

struct muoni_disc {
	struct muon_ctx *ctx;
	struct disc_daemon d[MUONI_DISC_MAX_DAEMONS];
	unsigned n;
	struct disc_rec *recs;
	unsigned n_recs;
	unsigned cap_recs;
	uint64_t next_req;
	uint64_t next_watch;
	uint64_t next_tick_ns;
	char host_id[MUONI_DISC_HOST_ID_MAX + 1];
	bool peers_dirty;
};

static const uint8_t *disc_key(const struct muoni_disc *disc)
{
	return disc->ctx->cfg.has_secret ? disc->ctx->cfg.secret : NULL;
}

/* ------------------------------------------------------------ sending */

static void d_close(struct disc_daemon *d, int status, const char *why);

static void d_want_events(struct disc_daemon *d, uint32_t ev)
{
	if (d->h.fd < 0 || ev == d->events)
		return;
	if (!muoni_ctx_fd_mod(d->disc->ctx, &d->h, ev))
		d->events = ev;
	else
		muoni_err_clear();
}

static int d_flush(struct disc_daemon *d)
{
	while (muoni_disc_buf_used(&d->out)) {
		ssize_t n = send(d->h.fd, d->out.data + d->out.off,
				 muoni_disc_buf_used(&d->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return MUONI_ERR_ERRNO("send");
		}
		muoni_disc_buf_consume(&d->out, (size_t)n);
	}
	d_want_events(d, muoni_disc_buf_used(&d->out) ? EPOLLIN | EPOLLOUT
						      : EPOLLIN);
	return 0;
}

/* Queue one message; the caller's status decides whether to go on. */
static int d_send(struct disc_daemon *d, Muon__Disc__Message *m)
{
	int rc;

	if (muoni_disc_buf_used(&d->out) > DISC_MAX_OUTPUT)
		return MUONI_ERR(MUON_EIO, "the daemon reads nothing: %zu "
				 "bytes unsent", muoni_disc_buf_used(&d->out));
	m->seq = ++d->tx_seq;
	rc = muoni_disc_pack_mac(&d->out, m,
				 disc_key(d->disc) ? &d->mac : NULL,
				 d->max_frame);
	if (rc)
		return rc;
	return d_flush(d);
}

/* ------------------------------------------------------------ registering */

static bool ep_is_wildcard(const struct muoni_endpoint *ep)
{
	return !strcmp(ep->host, "0.0.0.0") || !strcmp(ep->host, "::") ||
	       !ep->host[0];
}

/*
 * What this context registers with daemon d: `advertise` as given, else
 * every listener's real address, with a wildcard address replaced by the
 * address this host has on the connection to the daemon (the daemon's
 * clients reach us the way the daemon does).
 */

/* An endpoint that does not fit is left out rather than registered cut
 * short, which would send subscribers to a wrong address. */
static void adv_add(struct disc_daemon *d, const char *fmt, const char *host,
		    unsigned port)
{
	int n = snprintf(d->adv[d->n_adv], MUONI_EP_TEXT, fmt, host, port);

	if (n > 0 && n < MUONI_EP_TEXT)
		d->n_adv++;
}

static void d_build_adv(struct disc_daemon *d)
{
	struct muon_ctx *ctx = d->disc->ctx;
	unsigned i;

	d->n_adv = 0;
	if (ctx->cfg.n_advertise) {
		for (i = 0; i < ctx->cfg.n_advertise &&
			    d->n_adv < MUONI_DISC_MAX_ENDPOINTS; i++)
			snprintf(d->adv[d->n_adv++], MUONI_EP_TEXT, "%s",
				 ctx->cfg.advertise[i].text);
		return;
	}
	for (i = 0; i < ctx->n_listeners && d->n_adv < MUONI_DISC_MAX_ENDPOINTS;
	     i++) {
		struct muoni_endpoint ep;
		const char *b = ctx->listeners[i]->bound;

		if (muoni_endpoint_parse(b, strlen(b), &ep)) {
			muoni_err_clear();
			continue;
		}
		if (ep.kind == MUONI_EP_VERBS && ep_is_wildcard(&ep)) {
			/* Only addresses with an RDMA device behind them
			 * work, and the one the daemon sees may not have one
			 * (loopback, a management network). */
			char addrs[4][64];
			int k, na = muoni_verbs_local_addrs(addrs, 4);

			for (k = 0; k < na && d->n_adv < MUONI_DISC_MAX_ENDPOINTS;
			     k++)
				adv_add(d, strchr(addrs[k], ':')
						   ? "verbs://[%s]:%u"
						   : "verbs://%s:%u",
					addrs[k], ep.port);
		} else if (ep.kind == MUONI_EP_TCP && ep_is_wildcard(&ep))
			adv_add(d, strchr(d->local_host, ':') ? "tcp://[%s]:%u"
							      : "tcp://%s:%u",
				d->local_host, ep.port);
		else
			adv_add(d, "%s", ep.text, 0);
	}
}

static void pub_fill(struct disc_daemon *d, const struct muon_pub *p,
		     Muon__Disc__Publication *pb, char **eps)
{
	struct muon_ctx *ctx = d->disc->ctx;
	unsigned i;

	muon__disc__publication__init(pb);
	pb->topic = (char *)p->topic;
	pb->stream_id = p->stream_id;
	pb->ctx_id = ctx->id;
	pb->host_id = d->disc->host_id;
	pb->ctx_name = ctx->cfg.name;
	for (i = 0; i < d->n_adv; i++)
		eps[i] = d->adv[i];
	pb->endpoints = eps;
	pb->n_endpoints = d->n_adv;
}

/* Register `n` publications starting at `first` (NULL: all), in as many
 * messages as the daemon's frame limit needs. */
static int d_register(struct disc_daemon *d, struct muon_pub *only)
{
	struct muon_ctx *ctx = d->disc->ctx;
	Muon__Disc__Publication *pbs = NULL, **pp = NULL;
	char *eps[MUONI_DISC_MAX_ENDPOINTS];
	struct muon_pub *p = only ? only : ctx->pubs;
	unsigned cap = 0;
	int rc = 0;

	if (!d->n_adv) {
		if (ctx->pubs)
			MUONI_WARN(ctx, "muond %s: nothing to register: this "
				   "context listens on no endpoint",
				   d->ep.text);
		return 0;
	}
	while (p) {
		Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
		Muon__Disc__Register reg = MUON__DISC__REGISTER__INIT;
		size_t room = d->max_frame - 128, used = 0;
		unsigned k = 0;

		for (; p; p = only ? NULL : p->next) {
			size_t sz;

			if (p->closing)
				continue;
			if (k == cap) {
				unsigned nc = cap ? cap * 2 : 64;
				void *a = realloc(pbs, nc * sizeof(*pbs));
				void *b;

				if (!a) {
					rc = MUONI_ERR(MUON_ENOMEM, "register");
					goto free_arrays;
				}
				pbs = a;
				b = realloc(pp, nc * sizeof(*pp));
				if (!b) {
					rc = MUONI_ERR(MUON_ENOMEM, "register");
					goto free_arrays;
				}
				pp = b;
				cap = nc;
			}
			pub_fill(d, p, &pbs[k], eps);
			/* Each element costs its size plus tag and length. */
			sz = muon__disc__publication__get_packed_size(&pbs[k]) +
			     6;
			if (k && used + sz > room)
				break;
			used += sz;
			k++;
		}
		if (!k)
			break;
		/* pbs[] share `eps`; the pointers are all the same list. */
		for (unsigned i = 0; i < k; i++)
			pp[i] = &pbs[i];
		reg.publications = pp;
		reg.n_publications = k;
		m.request_id = ++d->disc->next_req;
		m.kind_case = MUON__DISC__MESSAGE__KIND_REGISTER;
		m.register_ = &reg;
		rc = d_send(d, &m);
		if (rc)
			break;
	}
free_arrays:
	free(pbs);
	free(pp);
	return rc;
}

static int d_unregister(struct disc_daemon *d, uint32_t stream_id)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Unregister u = MUON__DISC__UNREGISTER__INIT;

	u.stream_ids = &stream_id;
	u.n_stream_ids = 1;
	m.request_id = ++d->disc->next_req;
	m.kind_case = MUON__DISC__MESSAGE__KIND_UNREGISTER;
	m.unregister = &u;
	return d_send(d, &m);
}

static int d_watch(struct disc_daemon *d, const struct muon_sub *s)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Watch w = MUON__DISC__WATCH__INIT;

	w.watch_id = s->disc_watch;
	w.topic = (char *)s->topic;
	m.request_id = ++d->disc->next_req;
	m.kind_case = MUON__DISC__MESSAGE__KIND_WATCH;
	m.watch = &w;
	return d_send(d, &m);
}

static int d_unwatch(struct disc_daemon *d, uint64_t watch_id)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Unwatch w = MUON__DISC__UNWATCH__INIT;

	w.watch_id = watch_id;
	m.request_id = ++d->disc->next_req;
	m.kind_case = MUON__DISC__MESSAGE__KIND_UNWATCH;
	m.unwatch = &w;
	return d_send(d, &m);
}

static int d_renew(struct disc_daemon *d)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;

	m.request_id = ++d->disc->next_req;
	m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
	m.renew = &r;
	return d_send(d, &m);
}

/* ------------------------------------------------------------ records */

static struct disc_rec *rec_find(struct muoni_disc *disc, uint64_t ctx_id,
				 uint32_t stream_id)
{
	unsigned i;

	for (i = 0; i < disc->n_recs; i++)
		if (disc->recs[i].ctx_id == ctx_id &&
		    disc->recs[i].stream_id == stream_id)
			return &disc->recs[i];
	return NULL;
}

static void rec_remove(struct muoni_disc *disc, struct disc_rec *r,
		       bool down)
{
	if (down)
		MUONI_INFO(disc->ctx, "discovery: publication down: '%s' "
			   "stream %u of context %016llx", r->topic,
			   r->stream_id, (unsigned long long)r->ctx_id);
	*r = disc->recs[--disc->n_recs];
	disc->peers_dirty = true;
}

static bool topic_watched(struct muon_ctx *ctx, const char *topic)
{
	return muoni_sub_find(ctx, topic, (uint32_t)strlen(topic)) != NULL;
}

/* Daemon d lists publication `pb` now. */
static void rec_seen(struct disc_daemon *d, const Muon__Disc__Publication *pb)
{
	struct muoni_disc *disc = d->disc;
	struct muon_ctx *ctx = disc->ctx;
	struct disc_rec *r;
	char err[160];
	bool changed = false;
	unsigned i;

	if (muoni_disc_pub_check(pb, err, sizeof(err)) || !pb->ctx_id) {
		MUONI_WARN(ctx, "muond %s: ignoring a publication: %s",
			   d->ep.text, pb->ctx_id ? err : "context id 0");
		ctx->ctr.disc_errors++;
		return;
	}
	if (pb->ctx_id == ctx->id || !topic_watched(ctx, pb->topic))
		return;
	r = rec_find(disc, pb->ctx_id, pb->stream_id);
	if (!r) {
		if (disc->n_recs >= DISC_MAX_RECS) {
			MUONI_WARN(ctx, "discovery: more than %u publications "
				   "known; ignoring '%s'", DISC_MAX_RECS,
				   pb->topic);
			return;
		}
		if (disc->n_recs == disc->cap_recs) {
			unsigned nc = disc->cap_recs ? disc->cap_recs * 2 : 16;
			void *nr = realloc(disc->recs, nc * sizeof(*disc->recs));

			if (!nr) {
				MUONI_WARN(ctx, "discovery: out of memory");
				return;
			}
			disc->recs = nr;
			disc->cap_recs = nc;
		}
		r = &disc->recs[disc->n_recs++];
		memset(r, 0, sizeof(*r));
		r->ctx_id = pb->ctx_id;
		r->stream_id = pb->stream_id;
		changed = true;
	}
	if (strcmp(r->topic, pb->topic) || strcmp(r->host_id, pb->host_id) ||
	    r->n_eps != pb->n_endpoints)
		changed = true;
	for (i = 0; !changed && i < pb->n_endpoints; i++)
		changed = strcmp(r->eps[i], pb->endpoints[i]) != 0;
	if (changed) {
		snprintf(r->topic, sizeof(r->topic), "%s", pb->topic);
		snprintf(r->host_id, sizeof(r->host_id), "%s", pb->host_id);
		r->n_eps = (unsigned)pb->n_endpoints;
		for (i = 0; i < r->n_eps; i++)
			snprintf(r->eps[i], sizeof(r->eps[i]), "%s",
				 pb->endpoints[i]);
		MUONI_INFO(ctx, "discovery: publication up: '%s' stream %u of "
			   "%s %016llx at %s%s", r->topic, r->stream_id,
			   pb->ctx_name, (unsigned long long)r->ctx_id,
			   r->eps[0], r->n_eps > 1 ? " (and more)" : "");
		disc->peers_dirty = true;
	}
	r->mask |= 1u << d->index;
	r->gen[d->index] = d->gen;
}

static void rec_unseen(struct disc_daemon *d, struct disc_rec *r)
{
	r->mask &= ~(1u << d->index);
	if (!r->mask)
		rec_remove(d->disc, r, true);
}

/* A snapshot of `topic` from d is complete: what d listed before and did
 * not list now is gone as far as d knows. */
static void rec_sweep(struct disc_daemon *d, const char *topic)
{
	struct muoni_disc *disc = d->disc;
	unsigned i;

	for (i = disc->n_recs; i-- > 0;) {
		struct disc_rec *r = &disc->recs[i];

		if ((r->mask & (1u << d->index)) &&
		    r->gen[d->index] != d->gen && !strcmp(r->topic, topic))
			rec_unseen(d, r);
	}
}

/* The endpoints of r this context can use, best first, as peer
 * alternatives. */
static unsigned rec_alts(struct muoni_disc *disc, const struct disc_rec *r,
			 struct muoni_endpoint *alt)
{
	unsigned i, n = 0;

	for (i = 0; i < r->n_eps && n < MUONI_DISC_MAX_ENDPOINTS; i++) {
		if (muoni_endpoint_parse(r->eps[i], strlen(r->eps[i]),
					 &alt[n])) {
			muoni_err_clear();
			continue;
		}
		/* Shared memory only reaches contexts on this host. */
		if (alt[n].kind == MUONI_EP_SHM &&
		    strcmp(r->host_id, disc->host_id))
			continue;
		alt[n].group = 0;
		n++;
	}
	return n;
}

static void disc_sync_peers(struct muoni_disc *disc)
{
	struct muon_ctx *ctx = disc->ctx;
	struct muoni_endpoint alt[MUONI_DISC_MAX_ENDPOINTS];
	unsigned i;

	disc->peers_dirty = false;
	for (i = 0; i < ctx->n_peers; i++)
		if (ctx->peers[i]->dynamic)
			ctx->peers[i]->wanted = false;
	for (i = 0; i < disc->n_recs; i++) {
		const struct disc_rec *r = &disc->recs[i];
		struct muoni_peer *pr = muoni_ctx_peer_find(ctx, r->ctx_id);
		unsigned n = rec_alts(disc, r, alt);

		if (pr) {
			pr->wanted = true;
			if (!pr->conn)
				muoni_ctx_peer_set_alts(ctx, pr, alt, n);
			continue;
		}
		if (!n) {
			MUONI_WARN(ctx, "discovery: '%s' of context %016llx "
				   "offers no endpoint this context can use",
				   r->topic, (unsigned long long)r->ctx_id);
			continue;
		}
		if (muoni_ctx_peer_add(ctx, r->ctx_id, alt, n, &pr)) {
			MUONI_WARN(ctx, "discovery: %s", muoni_err_msg());
			muoni_err_clear();
			continue;
		}
	}
}

/* ------------------------------------------------------------ receiving */

static void d_up(struct disc_daemon *d)
{
	struct muoni_disc *disc = d->disc;
	struct muon_ctx *ctx = disc->ctx;
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Hello hello = MUON__DISC__HELLO__INIT;
	struct muon_sub *s;
	char host_id[MUONI_DISC_HOST_ID_MAX + 1];
	int rc;

	if (getrandom(d->cli_nonce, sizeof(d->cli_nonce), 0) !=
	    (ssize_t)sizeof(d->cli_nonce)) {
		d_close(d, MUONI_ERR_ERRNO("getrandom"), "no nonce");
		return;
	}
	snprintf(host_id, sizeof(host_id), "%s", disc->host_id);
	hello.nonce.data = d->cli_nonce;
	hello.nonce.len = sizeof(d->cli_nonce);
	hello.ctx_id = ctx->id;
	hello.name = ctx->cfg.name;
	hello.host_id = host_id;
	hello.pid = (uint32_t)getpid();
	hello.role = "context";
	m.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
	m.hello = &hello;
	rc = d_send(d, &m);
	if (rc) {
		d_close(d, rc, "sending hello");
		return;
	}
	d->state = D_UP;
	d->gen++;
	d->backoff_ms = ctx->cfg.reconnect_ms;
	d->next_renew_ns = ctx->now_ns + (uint64_t)d->lease_ms * 1000000ull / 3;
	ctx->ctr.disc_connects++;
	MUONI_INFO(ctx, "muond %s: session up (daemon %016llx, lease %u ms%s)",
		   d->ep.text, (unsigned long long)d->daemon_id, d->lease_ms,
		   disc_key(disc) ? ", authenticated" : "");
	d->ever_up = true;
	d_build_adv(d);
	rc = d_register(d, NULL);
	for (s = ctx->subs; !rc && s; s = s->next)
		rc = d_watch(d, s);
	if (rc)
		d_close(d, rc, "sending registrations");
}

static int d_on_welcome(struct disc_daemon *d, const Muon__Disc__Welcome *w)
{
	struct muon_ctx *ctx = d->disc->ctx;

	if (w->nonce.len != MUONI_DISC_NONCE_LEN)
		return MUONI_ERR(MUON_EPROTO, "welcome with a %zu-byte nonce",
				 w->nonce.len);
	if (w->auth_required && !disc_key(d->disc))
		return MUONI_ERR(MUON_EAUTH, "the daemon requires the cluster "
				 "secret: set secret_file (MUON_SECRET_FILE)");
	memcpy(d->srv_nonce, w->nonce.data, sizeof(d->srv_nonce));
	if (disc_key(d->disc))
		muoni_disc_mac_init(&d->mac, disc_key(d->disc), d->srv_nonce);
	d->daemon_id = w->daemon_id;
	d->lease_ms = w->lease_ms;
	if (d->lease_ms < 100 || d->lease_ms > 3600000) {
		MUONI_WARN(ctx, "muond %s: lease of %u ms out of range; "
			   "renewing as for 5000 ms", d->ep.text, w->lease_ms);
		d->lease_ms = 5000;
	}
	d->max_frame = w->max_frame;
	if (d->max_frame < MUONI_DISC_MAX_FRAME_MIN)
		d->max_frame = MUONI_DISC_MAX_FRAME_MIN;
	if (d->max_frame > MUONI_DISC_MAX_FRAME_MAX)
		d->max_frame = MUONI_DISC_MAX_FRAME_MAX;
	d_up(d);
	return 0;
}

static struct muon_sub *sub_by_watch(struct muon_ctx *ctx, uint64_t id)
{
	struct muon_sub *s;

	for (s = ctx->subs; s; s = s->next)
		if (s->disc_watch == id)
			return s;
	return NULL;
}

static int d_on_message(struct disc_daemon *d, const Muon__Disc__Message *m)
{
	struct muoni_disc *disc = d->disc;
	struct muon_ctx *ctx = disc->ctx;
	struct muon_sub *s;
	size_t i;

	if (m->seq != d->rx_seq + 1)
		return MUONI_ERR(MUON_EAUTH, "message number %llu, expected "
				 "%llu (replayed or lost)",
				 (unsigned long long)m->seq,
				 (unsigned long long)d->rx_seq + 1);
	d->rx_seq = m->seq;
	if (d->state == D_WELCOME) {
		if (m->kind_case != MUON__DISC__MESSAGE__KIND_WELCOME)
			return MUONI_ERR(MUON_EPROTO, "first message is not "
					 "a welcome (kind %d)",
					 (int)m->kind_case);
		return d_on_welcome(d, m->welcome);
	}
	switch (m->kind_case) {
	case MUON__DISC__MESSAGE__KIND_OK:
		return 0;
	case MUON__DISC__MESSAGE__KIND_ERROR:
		ctx->ctr.disc_errors++;
		MUONI_WARN(ctx, "muond %s: %s: %s%s", d->ep.text,
			   muoni_disc_code_name(m->error->code),
			   m->error->reason,
			   m->error->fatal ? " (closing)" : "");
		return 0;
	case MUON__DISC__MESSAGE__KIND_SNAPSHOT:
		s = sub_by_watch(ctx, m->snapshot->watch_id);
		if (!s)
			return 0; /* unsubscribed meanwhile */
		for (i = 0; i < m->snapshot->n_publications; i++)
			if (!strcmp(m->snapshot->publications[i]->topic,
				    s->topic))
				rec_seen(d, m->snapshot->publications[i]);
		if (m->snapshot->last)
			rec_sweep(d, s->topic);
		return 0;
	case MUON__DISC__MESSAGE__KIND_UPDATE: {
		const Muon__Disc__Publication *pb = m->update->publication;
		struct disc_rec *r;

		s = sub_by_watch(ctx, m->update->watch_id);
		if (!s || !pb || strcmp(pb->topic, s->topic))
			return 0;
		if (m->update->kind == MUON__DISC__UPDATE__KIND__UP) {
			rec_seen(d, pb);
		} else if (m->update->kind == MUON__DISC__UPDATE__KIND__DOWN) {
			r = rec_find(disc, pb->ctx_id, pb->stream_id);
			if (r && (r->mask & (1u << d->index))) {
				MUONI_INFO(ctx, "muond %s: '%s' stream %u of "
					   "%016llx down: %s", d->ep.text,
					   r->topic, r->stream_id,
					   (unsigned long long)r->ctx_id,
					   m->update->reason);
				rec_unseen(d, r);
			}
		}
		return 0;
	}
	default:
		return MUONI_ERR(MUON_EPROTO, "unexpected message kind %d",
				 (int)m->kind_case);
	}
}

static void d_read(struct disc_daemon *d)
{
	struct muon_ctx *ctx = d->disc->ctx;
	size_t limit = (d->state == D_UP ? d->max_frame
					 : MUONI_DISC_MAX_FRAME_DEFAULT) +
		       MUONI_DISC_LEN_BYTES;

	for (;;) {
		const uint8_t *frame;
		size_t flen;
		ssize_t n;
		int rc;

		/* Parse what is there before reading more: bounded memory. */
		while ((rc = muoni_disc_next(&d->in, limit, &frame, &flen)) ==
		       1) {
			Muon__Disc__Message *m = NULL;
			char err[160];
			int code;
			bool welcome = d->state == D_WELCOME;

			rc = muoni_disc_unpack(frame, flen,
					       welcome ? NULL : disc_key(d->disc),
					       d->cli_nonce, &m, &code, err,
					       sizeof(err));
			muoni_disc_buf_consume(&d->in,
					       MUONI_DISC_LEN_BYTES + flen);
			if (rc) {
				ctx->ctr.disc_errors++;
				d_close(d, MUONI_ERR(rc, "%s", err),
					"bad message");
				return;
			}
			d->last_rx_ns = ctx->now_ns;
			rc = d_on_message(d, m);
			muon__disc__message__free_unpacked(m, NULL);
			if (rc) {
				ctx->ctr.disc_errors++;
				d_close(d, rc, "bad message");
				return;
			}
			if (d->state != D_UP && d->state != D_WELCOME)
				return;
		}
		if (rc < 0) {
			ctx->ctr.disc_errors++;
			d_close(d, rc, "bad frame");
			return;
		}
		if (muoni_disc_buf_reserve(&d->in, 16384)) {
			d_close(d, MUONI_ERR(MUON_ENOMEM, "receive buffer"),
				"out of memory");
			return;
		}
		n = recv(d->h.fd, d->in.data + d->in.len,
			 d->in.cap - d->in.len, MSG_DONTWAIT);
		if (n > 0) {
			d->in.len += (size_t)n;
			continue;
		}
		if (n == 0) {
			d_close(d, MUONI_ERR(MUON_ECLOSED, "the daemon closed "
					     "the session"), "closed");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			d_close(d, MUONI_ERR_ERRNO("recv"), "receive error");
		return;
	}
}

static void d_connected(struct disc_daemon *d)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int err = 0;
	socklen_t el = sizeof(err);

	if (getsockopt(d->h.fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		errno = err ? err : errno;
		d_close(d, MUONI_ERR_ERRNO("connect"), "connect failed");
		return;
	}
	d->local_host[0] = 0;
	if (!getsockname(d->h.fd, (struct sockaddr *)&ss, &sl)) {
		if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)&ss;

			if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
				inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12],
					  d->local_host,
					  sizeof(d->local_host));
			else
				inet_ntop(AF_INET6, &a->sin6_addr,
					  d->local_host,
					  sizeof(d->local_host));
		} else {
			const struct sockaddr_in *a = (const void *)&ss;

			inet_ntop(AF_INET, &a->sin_addr, d->local_host,
				  sizeof(d->local_host));
		}
	}
	d->state = D_WELCOME;
	d->state_since_ns = d->disc->ctx->now_ns;
	d_want_events(d, EPOLLIN);
}

static void d_event(struct muoni_fdh *h, uint32_t events)
{
	struct disc_daemon *d = (void *)((char *)h -
					 offsetof(struct disc_daemon, h));
	int rc;

	d->disc->ctx->now_ns = muoni_now_ns();
	if (d->state == D_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		d_connected(d);
		if (d->state != D_WELCOME)
			return;
	}
	if (events & EPOLLOUT) {
		rc = d_flush(d);
		if (rc) {
			d_close(d, rc, "send failed");
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		d_read(d);
}

/* ------------------------------------------------------------ lifecycle */

static void d_close(struct disc_daemon *d, int status, const char *why)
{
	struct muon_ctx *ctx = d->disc->ctx;
	/* Back off, but come back well within a lease: a restarted daemon
	 * must have our registrations before watchers give up on them. */
	uint32_t max = d->lease_ms / 4 < DISC_BACKOFF_MAX_MS ? d->lease_ms / 4
							     : DISC_BACKOFF_MAX_MS;
	muon_log_level_t lvl;

	(void)why;
	if (d->h.fd >= 0) {
		muoni_ctx_fd_del(ctx, &d->h);
		close(d->h.fd);
		d->h.fd = -1;
	}
	/* The first failure of a state is news; repeats while backing off
	 * are not. */
	lvl = status == d->last_status ? MUON_LOG_DEBUG
	      : d->state == D_UP       ? MUON_LOG_WARN
				       : MUON_LOG_INFO;
	muoni_log(ctx, lvl, "muond %s: %s%s", d->ep.text, muoni_err_msg(),
		  d->state == D_UP ? "; known publications kept, "
				     "reconnecting" : "; retrying");
	muoni_err_clear();
	d->last_status = status;
	d->state = D_IDLE;
	d->events = 0;
	muoni_disc_buf_fini(&d->in);
	muoni_disc_buf_fini(&d->out);
	d->next_attempt_ns = ctx->now_ns + (uint64_t)d->backoff_ms * 1000000ull;
	if (max < ctx->cfg.reconnect_ms)
		max = ctx->cfg.reconnect_ms;
	d->backoff_ms = d->backoff_ms * 2 > max ? max : d->backoff_ms * 2;
}

static void d_connect(struct disc_daemon *d)
{
	struct muon_ctx *ctx = d->disc->ctx;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char port[8];
	int fd = -1, one = 1, rc;

	snprintf(port, sizeof(port), "%u", d->ep.port);
	rc = getaddrinfo(d->ep.host, port, &hints, &ai);
	if (rc) {
		d_close(d, MUONI_ERR(MUON_ENOTFOUND, "resolving %s: %s",
				     d->ep.host, gai_strerror(rc)),
			"resolve");
		return;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		freeaddrinfo(ai);
		d_close(d, MUONI_ERR_ERRNO("socket"), "socket");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	d->h.fd = fd;
	d->tx_seq = 0;
	d->rx_seq = 0;
	d->state = D_CONNECTING;
	d->state_since_ns = ctx->now_ns;
	d->last_rx_ns = ctx->now_ns;
	if (rc && errno != EINPROGRESS) {
		d_close(d, MUONI_ERR_ERRNO("connect"), "connect");
		return;
	}
	d->events = EPOLLOUT | EPOLLIN;
	if (muoni_ctx_fd_add(ctx, &d->h, d->events)) {
		d->events = 0;
		d_close(d, MUONI_ERR(MUON_EIO, "%s", muoni_err_msg()),
			"epoll");
		return;
	}
	if (!rc)
		d_connected(d);
}

static void d_timers(struct disc_daemon *d, uint64_t now)
{
	uint64_t lease_ns = (uint64_t)d->lease_ms * 1000000ull;
	int rc;

	switch (d->state) {
	case D_IDLE:
		if (now >= d->next_attempt_ns && !d->disc->ctx->destroying)
			d_connect(d);
		break;
	case D_CONNECTING:
	case D_WELCOME:
		if (muoni_elapsed(now, d->state_since_ns) >
		    DISC_CONNECT_TIMEOUT_MS * 1000000ull)
			d_close(d, MUONI_ERR(MUON_ETIMEDOUT, "no %s within %u "
					     "ms", d->state == D_CONNECTING
							   ? "connection"
							   : "welcome",
					     DISC_CONNECT_TIMEOUT_MS),
				"timeout");
		break;
	case D_UP:
		/* Every request is answered, so a daemon that has been
		 * silent for a whole lease while we renewed is gone. */
		if (muoni_elapsed(now, d->last_rx_ns) > lease_ns + lease_ns / 3) {
			d_close(d, MUONI_ERR(MUON_ETIMEDOUT, "no answer for "
					     "%llu ms",
					     (unsigned long long)(muoni_elapsed(
						     now, d->last_rx_ns) /
						     1000000ull)),
				"silent");
			break;
		}
		if (now >= d->next_renew_ns) {
			d->next_renew_ns = now + lease_ns / 3;
			rc = d_renew(d);
			if (rc)
				d_close(d, rc, "renew");
		}
		break;
	}
}

int muoni_disc_create(struct muon_ctx *ctx)
{
	struct muoni_disc *disc;
	unsigned i;

	if (!ctx->cfg.n_daemons)
		return 0;
	disc = calloc(1, sizeof(*disc));
	if (!disc)
		return MUONI_ERR(MUON_ENOMEM, "discovery");
	disc->ctx = ctx;
	muoni_disc_host_id(disc->host_id, sizeof(disc->host_id));
	disc->n = ctx->cfg.n_daemons;
	for (i = 0; i < disc->n; i++) {
		struct disc_daemon *d = &disc->d[i];

		d->disc = disc;
		d->index = i;
		d->ep = ctx->cfg.daemons[i];
		d->h.fd = -1;
		d->h.cb = d_event;
		d->backoff_ms = ctx->cfg.reconnect_ms;
		d->lease_ms = 5000;
		d->max_frame = MUONI_DISC_MAX_FRAME_DEFAULT;
	}
	ctx->disc = disc;
	for (i = 0; i < disc->n; i++)
		d_connect(&disc->d[i]);
	return 0;
}

void muoni_disc_destroy(struct muon_ctx *ctx)
{
	struct muoni_disc *disc = ctx ? ctx->disc : NULL;
	unsigned i;

	if (!disc)
		return;
	for (i = 0; i < disc->n; i++) {
		struct disc_daemon *d = &disc->d[i];

		/* Unregistrations queued by muon_pub_destroy: one last try,
		 * never blocking, so watchers need not wait for the lease. */
		if (d->state == D_UP)
			d_flush(d);
		if (d->h.fd >= 0) {
			muoni_ctx_fd_del(ctx, &d->h);
			close(d->h.fd);
		}
		muoni_disc_buf_fini(&d->in);
		muoni_disc_buf_fini(&d->out);
		muoni_disc_mac_wipe(&d->mac);
	}
	muoni_err_clear();
	free(disc->recs);
	free(disc);
	ctx->disc = NULL;
}

void muoni_disc_tick(struct muon_ctx *ctx)
{
	struct muoni_disc *disc = ctx->disc;
	unsigned i;

	if (!disc)
		return;
	if (ctx->now_ns >= disc->next_tick_ns) {
		disc->next_tick_ns = ctx->now_ns + DISC_TICK_NS;
		for (i = 0; i < disc->n; i++)
			d_timers(&disc->d[i], ctx->now_ns);
	}
	if (disc->peers_dirty)
		disc_sync_peers(disc);
}

/* Calls from pub.c and sub.c: a failure to tell one daemon closes that
 * session, which re-sends everything when it comes back. */
void muoni_disc_pub_added(struct muon_pub *p)
{
	struct muoni_disc *disc = p->ctx->disc;
	unsigned i;
	int rc;

	for (i = 0; disc && i < disc->n; i++)
		if (disc->d[i].state == D_UP &&
		    (rc = d_register(&disc->d[i], p)))
			d_close(&disc->d[i], rc, "register");
}

void muoni_disc_pub_removed(struct muon_pub *p)
{
	struct muoni_disc *disc = p->ctx->disc;
	unsigned i;
	int rc;

	for (i = 0; disc && i < disc->n; i++)
		if (disc->d[i].state == D_UP &&
		    (rc = d_unregister(&disc->d[i], p->stream_id)))
			d_close(&disc->d[i], rc, "unregister");
}

void muoni_disc_sub_added(struct muon_sub *s)
{
	struct muoni_disc *disc = s->ctx->disc;
	unsigned i;
	int rc;

	if (!disc)
		return;
	s->disc_watch = ++disc->next_watch;
	for (i = 0; i < disc->n; i++)
		if (disc->d[i].state == D_UP && (rc = d_watch(&disc->d[i], s)))
			d_close(&disc->d[i], rc, "watch");
}

void muoni_disc_sub_removed(struct muon_sub *s)
{
	struct muoni_disc *disc = s->ctx->disc;
	unsigned i;
	int rc;

	if (!disc)
		return;
	for (i = 0; i < disc->n; i++)
		if (disc->d[i].state == D_UP &&
		    (rc = d_unwatch(&disc->d[i], s->disc_watch)))
			d_close(&disc->d[i], rc, "unwatch");
	for (i = disc->n_recs; i-- > 0;)
		if (!strcmp(disc->recs[i].topic, s->topic))
			rec_remove(disc, &disc->recs[i], false);
}

int muoni_disc_daemons_up(const struct muon_ctx *ctx)
{
	unsigned i;
	int n = 0;

	for (i = 0; ctx->disc && i < ctx->disc->n; i++)
		n += ctx->disc->d[i].state == D_UP;
	return n;
}
