/*
 * Contexts: the epoll set behind muon_ctx_fd(), the poll duty cycle, the
 * control plane (accepts, control messages, timers, reconnects to static
 * peers) and deferred freeing of what died during a poll.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/muoni.h"
#include "proto/disc.h"
#include "transport/shm/shm.h"

const struct muoni_transport_ops *const muoni_transports[] = {
	&muoni_shm_ops,
	&muoni_tcp_ops,
	&muoni_verbs_ops,
};
const unsigned muoni_n_transports =
	sizeof(muoni_transports) / sizeof(muoni_transports[0]);

const struct muoni_transport_ops *muoni_transport_for(int kind)
{
	switch (kind) {
	case MUONI_EP_SHM:
		return &muoni_shm_ops;
	case MUONI_EP_TCP:
		return &muoni_tcp_ops;
	case MUONI_EP_VERBS:
		return &muoni_verbs_ops;
	default:
		return NULL;
	}
}

void muoni_ctx_mem_forget(struct muon_ctx *ctx, const void *base, size_t len)
{
	unsigned i;

	for (i = 0; i < muoni_n_transports; i++)
		if (muoni_transports[i]->mem_forget)
			muoni_transports[i]->mem_forget(ctx, base, len);
}

int muoni_ctx_fd_add(struct muon_ctx *ctx, struct muoni_fdh *h,
		     uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = h};

	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, h->fd, &ev))
		return MUONI_ERR_ERRNO("epoll_ctl add fd %d", h->fd);
	return 0;
}

int muoni_ctx_fd_mod(struct muon_ctx *ctx, struct muoni_fdh *h,
		     uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = h};

	if (epoll_ctl(ctx->epfd, EPOLL_CTL_MOD, h->fd, &ev))
		return MUONI_ERR_ERRNO("epoll_ctl mod fd %d", h->fd);
	return 0;
}

void muoni_ctx_fd_del(struct muon_ctx *ctx, struct muoni_fdh *h)
{
	if (h->fd >= 0)
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

void muoni_ctx_event(struct muon_ctx *ctx, muon_event_fn fn, void *arg,
		     const muon_event_t *ev)
{
	/* muon_ctx_destroy promises no callbacks. */
	if (fn && !ctx->destroying)
		fn(arg, ev);
}

int muoni_ctx_rx_add(struct muon_ctx *ctx, struct muoni_conn *c)
{
	if (c->rx_index != (unsigned)-1)
		return 0;
	if (ctx->n_rx == ctx->cap_rx) {
		unsigned ncap = ctx->cap_rx ? ctx->cap_rx * 2 : 8;
		void *nb = realloc(ctx->rx, ncap * sizeof(*ctx->rx));
		if (!nb)
			return MUONI_ERR(MUON_ENOMEM, "connection array");
		ctx->rx = nb;
		ctx->cap_rx = ncap;
	}
	c->rx_index = ctx->n_rx;
	ctx->rx[ctx->n_rx++] = c;
	return 0;
}

int muoni_listener_accept(struct muoni_listener *l, int lfd,
			  struct sockaddr *sa, socklen_t *sl)
{
	struct muon_ctx *ctx = l->ctx;

	for (;;) {
		int fd = accept4(lfd, sa, sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				MUONI_WARN(ctx, "%s: accept: %s", l->bound,
					   strerror(errno));
			return -1;
		}
		if (ctx->n_conns < MUONI_MAX_CONNS)
			return fd;
		MUONI_WARN(ctx, "%s: refusing a connection: %u connections "
			   "already", l->bound, ctx->n_conns);
		close(fd);
	}
}

static const char *const kind_names[] = {"?", "shm", "tcp", "verbs"};

static void peer_use(struct muoni_peer *pr, unsigned k)
{
	pr->cur = k;
	pr->ep = pr->alt[k];
	pr->ops = muoni_transport_for(pr->ep.kind);
}

bool muoni_peer_next_alt(struct muon_ctx *ctx, struct muoni_peer *pr)
{
	unsigned k = pr->cur + 1;

	if (pr->n_alt < 2)
		return false;
	if (k >= pr->n_alt) {
		peer_use(pr, 0);
		return false;
	}
	MUONI_INFO(ctx, "peer %s: %s did not work (%s); trying %s",
		   pr->alt[0].text, kind_names[pr->ep.kind], muoni_err_msg(),
		   pr->alt[k].text);
	peer_use(pr, k);
	return true;
}

static void peer_connect(struct muon_ctx *ctx, struct muoni_peer *pr)
{
	struct muoni_conn *c = NULL;
	int rc;

	for (;;) {
		rc = pr->ops->connect(ctx, &pr->ep, &c);
		if (!rc)
			break;
		ctx->ctr.connect_failures++;
		/* A transport that fails at once (nobody on this host's shm
		 * name, no RDMA stack) hands over to the next alternative. */
		if (!muoni_peer_next_alt(ctx, pr))
			break;
	}
	if (rc) {
		uint32_t max = ctx->cfg.reconnect_ms * 32;

		if (rc != pr->last_status)
			MUONI_INFO(ctx, "connect to %s: %s (retrying)",
				   pr->ep.text, muoni_err_msg());
		pr->last_status = rc;
		pr->next_attempt_ns = ctx->now_ns +
				      (uint64_t)pr->backoff_ms * 1000000ull;
		pr->backoff_ms = pr->backoff_ms * 2 > max ? max
							  : pr->backoff_ms * 2;
		return;
	}
	c->peer = pr;
	pr->conn = c;
}

static void ctx_reap(struct muon_ctx *ctx)
{
	struct muoni_conn *c, *next;
	struct muon_sub *s;

	ctx->reap_pending = false;
	for (c = ctx->conns; c; c = next) {
		next = c->next;
		if (c->state == MUONI_CONN_DEAD)
			muoni_conn_free(c);
	}
	while ((s = ctx->dead_subs)) {
		ctx->dead_subs = s->next;
		muoni_sub_free(s);
	}
}

/* Whether a live connection the peer made to us serves as this peer. */
static bool peer_covered(struct muon_ctx *ctx, struct muoni_peer *pr)
{
	const struct muoni_conn *c;

	if (pr->dynamic) {
		for (c = ctx->conns; c; c = c->next)
			if (c->state == MUONI_CONN_UP &&
			    c->peer_ctx_id == pr->ctx_id)
				return true;
		return false;
	}
	if (!pr->covered_by)
		return false;
	for (c = ctx->conns; c; c = c->next)
		if (c->state == MUONI_CONN_UP && c->peer_ctx_id == pr->covered_by)
			return true;
	pr->covered_by = 0;
	return false;
}

static void ctx_timers(struct muon_ctx *ctx)
{
	uint64_t now = ctx->now_ns;
	struct muoni_conn *c;
	struct muon_pub *p, *pnext;
	unsigned i;

	muoni_disc_tick(ctx);
	for (i = 0; i < ctx->n_peers;) {
		struct muoni_peer *pr = ctx->peers[i];

		/* No daemon lists it any more and nothing is connected. */
		if (pr->dynamic && !pr->wanted && !pr->conn) {
			MUONI_INFO(ctx, "peer %016llx: no longer listed by "
				   "discovery", (unsigned long long)pr->ctx_id);
			ctx->peers[i] = ctx->peers[--ctx->n_peers];
			free(pr);
			continue;
		}
		if (!pr->conn && now >= pr->next_attempt_ns &&
		    !ctx->destroying && !peer_covered(ctx, pr))
			peer_connect(ctx, pr);
		i++;
	}
	for (c = ctx->conns; c; c = c->next)
		muoni_conn_timers(c, now);
	for (p = ctx->pubs; p; p = pnext) {
		pnext = p->next;
		muoni_pub_timers(p, now);
	}
}

void muoni_ctx_control(struct muon_ctx *ctx)
{
	struct epoll_event evs[64];
	int i, n;

	n = epoll_wait(ctx->epfd, evs, 64, 0);
	for (i = 0; i < n; i++) {
		struct muoni_fdh *h = evs[i].data.ptr;
		h->cb(h, evs[i].events);
	}
	ctx->now_ns = muoni_now_ns();
	for (i = 0; i < (int)muoni_n_transports; i++)
		if (muoni_transports[i]->ctx_tick)
			muoni_transports[i]->ctx_tick(ctx);
	ctx_timers(ctx);
}

static void timer_cb(struct muoni_fdh *h, uint32_t events)
{
	uint64_t ticks;

	(void)events;
	/* Only here to wake sleepers for timers; the count does not matter. */
	if (read(h->fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
}

/* Push every lagging sender, letting no transport hold anything back:
 * senders behind because tcp coalesces (muon_ctx_poll()'s contract) as
 * well as those behind a full socket or ring. */
static int ctx_push_held(struct muon_ctx *ctx)
{
	int work;

	ctx->tx_flush = true;
	work = muoni_ctx_progress_lagging(ctx);
	ctx->tx_flush = false;
	return work;
}

int muoni_ctx_poll(struct muon_ctx *ctx, unsigned budget)
{
	int work = 0;
	unsigned i, left;

	if (MUONI_UNLIKELY(ctx->in_poll))
		return MUONI_ERR(MUON_ESTATE, "muon_ctx_poll called from a "
				 "callback of the same context");
	ctx->in_poll = true;
	ctx->armed = false;
	left = budget ? budget : MUONI_DEFAULT_BUDGET;
	for (i = 0; i < ctx->n_rx && left; i++) {
		struct muoni_conn *c = ctx->rx[i];
		int rc;

		if (MUONI_UNLIKELY(c->state == MUONI_CONN_DEAD))
			continue;
		rc = c->ops->poll(c, left);
		if (MUONI_UNLIKELY(rc < 0)) {
			muoni_conn_fail(c, rc, MUON_DOWN_DISCONNECTED);
			continue;
		}
		work += rc;
		left -= (unsigned)rc;
	}
	/* Before poll_tick moves: what tcp held back since the last poll goes
	 * out here, one send per stream and connection. */
	if (ctx->n_lagging)
		work += ctx_push_held(ctx);
	/* The clock is read every 64 polls, the control plane run every
	 * MUONI_CTL_INTERVAL_NS: one syscall per ~200 us, none per message. */
	if (MUONI_UNLIKELY((++ctx->poll_tick & 63) == 0 || ctx->force_ctl)) {
		uint64_t now = muoni_now_ns();

		ctx->now_ns = now;
		if (now >= ctx->next_ctl_ns || ctx->force_ctl) {
			ctx->force_ctl = false;
			muoni_ctx_control(ctx);
			ctx->next_ctl_ns = now + MUONI_CTL_INTERVAL_NS;
		}
	}
	if (MUONI_UNLIKELY(ctx->reap_pending))
		ctx_reap(ctx);
	ctx->in_poll = false;
	return work;
}

int muoni_ctx_arm(struct muon_ctx *ctx)
{
	unsigned i;

	/* The application is about to sleep: nothing would push what was
	 * held back for coalescing. A push the socket cannot take arms
	 * EPOLLOUT, which wakes the fd when it can. */
	if (ctx->n_lagging)
		ctx_push_held(ctx);
	for (i = 0; i < ctx->n_rx; i++) {
		struct muoni_conn *c = ctx->rx[i];
		if (c->state != MUONI_CONN_DEAD && c->ops->arm(c) == MUON_EBUSY)
			return MUON_EBUSY;
	}
	/* The application slept: run the control plane on the next poll. */
	ctx->force_ctl = true;
	ctx->armed = true;
	return 0;
}

static int ctx_timerfd(struct muon_ctx *ctx)
{
	uint32_t ms = ctx->cfg.heartbeat_ms / 2;
	struct itimerspec its;

	if (ctx->cfg.reconnect_ms < ms)
		ms = ctx->cfg.reconnect_ms;
	if (ms > 100)
		ms = 100;
	if (ms == 0)
		ms = 1;
	ctx->timerfd = timerfd_create(CLOCK_MONOTONIC,
				      TFD_NONBLOCK | TFD_CLOEXEC);
	if (ctx->timerfd < 0)
		return MUONI_ERR_ERRNO("timerfd_create");
	its.it_interval.tv_sec = ms / 1000;
	its.it_interval.tv_nsec = (long)(ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	if (timerfd_settime(ctx->timerfd, 0, &its, NULL))
		return MUONI_ERR_ERRNO("timerfd_settime");
	ctx->timer_h.fd = ctx->timerfd;
	ctx->timer_h.cb = timer_cb;
	return muoni_ctx_fd_add(ctx, &ctx->timer_h, EPOLLIN);
}

static bool transport_allowed(const struct muon_ctx *ctx,
			      const struct muoni_endpoint *ep)
{
	return !ctx->cfg.transport || ctx->cfg.transport == ep->kind;
}

struct muoni_peer *muoni_ctx_peer_find(struct muon_ctx *ctx, uint64_t ctx_id)
{
	unsigned i;

	for (i = 0; i < ctx->n_peers; i++)
		if (ctx->peers[i]->dynamic && ctx->peers[i]->ctx_id == ctx_id)
			return ctx->peers[i];
	return NULL;
}

void muoni_ctx_peer_set_alts(struct muon_ctx *ctx, struct muoni_peer *pr,
			     const struct muoni_endpoint *eps, unsigned n)
{
	/* auto: shm reaches only this host and is fastest there; verbs
	 * needs an RDMA device that reaches the peer; tcp always. One
	 * endpoint per transport: the first one given. */
	static const int rank[] = {MUONI_EP_SHM, MUONI_EP_VERBS, MUONI_EP_TCP};
	unsigned r, j;

	pr->n_alt = 0;
	for (r = 0; r < 3; r++)
		for (j = 0; j < n; j++)
			if (eps[j].kind == rank[r] &&
			    transport_allowed(ctx, &eps[j])) {
				pr->alt[pr->n_alt++] = eps[j];
				break;
			}
	if (pr->n_alt)
		peer_use(pr, 0);
}

static int peer_append(struct muon_ctx *ctx, struct muoni_peer *pr)
{
	if (ctx->n_peers == ctx->cap_peers) {
		unsigned nc = ctx->cap_peers ? ctx->cap_peers * 2 : 8;
		void *np = realloc(ctx->peers, nc * sizeof(*ctx->peers));

		if (!np)
			return MUONI_ERR(MUON_ENOMEM, "peer list");
		ctx->peers = np;
		ctx->cap_peers = nc;
	}
	ctx->peers[ctx->n_peers++] = pr;
	return 0;
}

int muoni_ctx_peer_add(struct muon_ctx *ctx, uint64_t ctx_id,
		       const struct muoni_endpoint *eps, unsigned n,
		       struct muoni_peer **out)
{
	struct muoni_peer *pr;
	int rc;

	if (ctx->n_peers >= MUONI_MAX_CONNS)
		return MUONI_ERR(MUON_ELIMIT, "more than %u peers",
				 MUONI_MAX_CONNS);
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return MUONI_ERR(MUON_ENOMEM, "peer");
	muoni_ctx_peer_set_alts(ctx, pr, eps, n);
	if (!pr->n_alt) {
		free(pr);
		return MUONI_ERR(MUON_ENOTFOUND, "context %016llx: no "
				 "endpoint on transport %s",
				 (unsigned long long)ctx_id,
				 kind_names[ctx->cfg.transport]);
	}
	pr->dynamic = true;
	pr->wanted = true;
	pr->ctx_id = ctx_id;
	pr->backoff_ms = ctx->cfg.reconnect_ms;
	pr->next_attempt_ns = ctx->now_ns;
	rc = peer_append(ctx, pr);
	if (rc) {
		free(pr);
		return rc;
	}
	MUONI_INFO(ctx, "peer %016llx from discovery: %s%s", (unsigned long
		   long)ctx_id, pr->ep.text, pr->n_alt > 1 ? " first" : "");
	*out = pr;
	return 0;
}

/* With discovery and no listen endpoints, a context still has to be
 * reachable by its subscribers: shared memory under a name made from its
 * id, RDMA on every address when the host has a device, and TCP on every
 * address, ports chosen by the kernel. A transport setting keeps only its
 * own. */
static int ctx_default_listen(struct muon_ctx *ctx)
{
	int t = ctx->cfg.transport;
	char list[160];
	int rc;

	if (ctx->cfg.n_listen || !ctx->cfg.n_daemons)
		return 0;
	snprintf(list, sizeof(list), "%s%016llx,%s%s",
		 "shm://muon-", (unsigned long long)ctx->id,
		 (!t || t == MUONI_EP_VERBS) && muoni_verbs_device_count() > 0
			 ? "verbs://0.0.0.0:0,"
			 : "",
		 "tcp://0.0.0.0:0");
	rc = muoni_endpoints_parse(list, false, &ctx->cfg.listen,
				   &ctx->cfg.n_listen);
	if (rc)
		return muoni_err_push(rc, "default listen endpoints");
	return 0;
}

static int ctx_open_endpoints(struct muon_ctx *ctx)
{
	unsigned i;
	int rc;

	rc = ctx_default_listen(ctx);
	if (rc)
		return rc;
	ctx->listeners = calloc(ctx->cfg.n_listen + 1, sizeof(*ctx->listeners));
	if (!ctx->listeners)
		return MUONI_ERR(MUON_ENOMEM, "endpoints");
	for (i = 0; i < ctx->cfg.n_listen; i++) {
		const struct muoni_endpoint *ep = &ctx->cfg.listen[i];
		const struct muoni_transport_ops *ops =
			muoni_transport_for(ep->kind);
		struct muoni_listener *l;

		if (!transport_allowed(ctx, ep)) {
			MUONI_INFO(ctx, "not listening on %s: transport "
				   "restricted", ep->text);
			continue;
		}
		rc = ops->listen(ctx, ep, &l);
		if (rc)
			return muoni_err_push(rc, "listen on %s", ep->text);
		ctx->listeners[ctx->n_listeners++] = l;
		MUONI_INFO(ctx, "listening on %s", l->bound);
	}
	for (i = 0; i < ctx->cfg.n_peers;) {
		const struct muoni_endpoint *ep = &ctx->cfg.peers[i];
		struct muoni_peer *pr;
		unsigned end = i;

		while (end < ctx->cfg.n_peers &&
		       ctx->cfg.peers[end].group == ep->group)
			end++;
		pr = calloc(1, sizeof(*pr));
		if (!pr)
			return MUONI_ERR(MUON_ENOMEM, "peer");
		muoni_ctx_peer_set_alts(ctx, pr, ep, end - i);
		i = end;
		if (!pr->n_alt) {
			MUONI_INFO(ctx, "ignoring peer %s: no endpoint on "
				   "transport %s", ep->text,
				   kind_names[ctx->cfg.transport]);
			free(pr);
			continue;
		}
		rc = peer_append(ctx, pr);
		if (rc) {
			free(pr);
			return rc;
		}
		if (pr->n_alt > 1)
			MUONI_INFO(ctx, "peer %s: %u transports offered, "
				   "trying %s first", ep->text, pr->n_alt,
				   kind_names[pr->ep.kind]);
		pr->backoff_ms = ctx->cfg.reconnect_ms;
		peer_connect(ctx, pr);
	}
	return 0;
}

static void ctx_free(struct muon_ctx *ctx)
{
	struct muoni_conn *c;
	struct muon_sub *s;
	unsigned i;

	while (ctx->pubs)
		muoni_pub_free(ctx->pubs);
	muoni_disc_destroy(ctx);
	for (c = ctx->conns; c; c = c->next)
		muoni_conn_close(c, MUON_DOWN_CLOSED);
	ctx_reap(ctx);
	while ((s = ctx->subs)) {
		ctx->subs = s->next;
		muoni_sub_free(s);
	}
	for (i = 0; i < ctx->n_listeners; i++)
		ctx->listeners[i]->ops->listener_close(ctx->listeners[i]);
	for (i = 0; i < muoni_n_transports; i++)
		if (muoni_transports[i]->ctx_fini)
			muoni_transports[i]->ctx_fini(ctx);
	free(ctx->listeners);
	for (i = 0; i < ctx->n_peers; i++)
		free(ctx->peers[i]);
	free(ctx->peers);
	free(ctx->rx);
	free(ctx->handovers);
	if (ctx->timerfd >= 0)
		close(ctx->timerfd);
	if (ctx->epfd >= 0)
		close(ctx->epfd);
	muoni_config_fini(&ctx->cfg);
	free(ctx);
}

int muoni_ctx_create(const muon_ctx_config_t *cfg, struct muon_ctx **out)
{
	struct muon_ctx *ctx = calloc(1, sizeof(*ctx));
	int rc;

	if (!ctx)
		return MUONI_ERR(MUON_ENOMEM, "context");
	ctx->epfd = -1;
	ctx->timerfd = -1;
	rc = muoni_config_resolve(cfg, &ctx->cfg);
	if (rc) {
		free(ctx);
		return rc;
	}
	ctx->id = ctx->cfg.ctx_id;
	while (!ctx->id)
		if (getrandom(&ctx->id, sizeof(ctx->id), 0) != sizeof(ctx->id))
			ctx->id = muoni_now_ns() ^ ((uint64_t)getpid() << 32);
	ctx->ctr.size = sizeof(ctx->ctr);
	ctx->now_ns = muoni_now_ns();
	ctx->force_ctl = true;
	ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ctx->epfd < 0) {
		rc = MUONI_ERR_ERRNO("epoll_create1");
		goto err_free;
	}
	rc = ctx_timerfd(ctx);
	if (rc)
		goto err_free;
	muoni_shm_cleanup_stale(ctx);
	rc = ctx_open_endpoints(ctx);
	if (rc)
		goto err_free;
	rc = muoni_disc_create(ctx);
	if (rc)
		goto err_free;
	*out = ctx;
	return 0;

err_free:
	ctx_free(ctx);
	return rc;
}

static bool ctx_ctl_pending(const struct muon_ctx *ctx)
{
	const struct muoni_conn *c;

	for (c = ctx->conns; c; c = c->next)
		if (c->state != MUONI_CONN_DEAD && c->ctl_len)
			return true;
	return false;
}

void muoni_ctx_destroy(struct muon_ctx *ctx)
{
	struct muon_pub *p, *next;
	uint64_t deadline;

	if (ctx->in_poll) {
		MUONI_WARN(ctx, "muon_ctx_destroy called from a callback: "
			   "ignored, the context is still alive");
		return;
	}
	ctx->destroying = true;
	/* Stop receiving first: nothing may reach the application now. */
	while (ctx->subs)
		muoni_sub_destroy(ctx->subs);
	for (p = ctx->pubs; p; p = next) {
		next = p->next;
		if (!p->closing)
			muoni_pub_destroy(p);
	}
	/* Linger: keep pushing what subscribers have not taken yet. */
	deadline = muoni_now_ns() + (uint64_t)ctx->cfg.linger_ms * 1000000ull;
	while ((ctx->pubs || ctx_ctl_pending(ctx)) &&
	       muoni_now_ns() < deadline) {
		muoni_ctx_poll(ctx, 0);
		ctx->force_ctl = true;
		if (ctx->n_lagging || ctx_ctl_pending(ctx))
			usleep(100);
	}
	if (ctx->pubs)
		MUONI_WARN(ctx, "destroy: %u publications still had unsent "
			   "data after linger_ms %u", ctx->n_pubs,
			   ctx->cfg.linger_ms);
	ctx_free(ctx);
}
