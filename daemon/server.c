/*
 * muond's network side: listeners, client connections, framing,
 * authentication, sequence checks, dispatch to the state and the timers
 * (idle clients, leases). One thread, one libev loop.
 *
 * Connections are never freed from inside a state call (a push may find
 * a client overloaded while the state walks its watches): they are only
 * marked closing, and freed from the loop's own callbacks.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "core/muoni.h"
#include "daemon/muond.h"
#include "daemon/state.h"
#include "proto/disc.h"

/* How long a closing connection may take to flush its last Error. */
#define MUOND_LINGER_MS 1000u
/* Bytes read per callback: a fair share among busy clients. */
#define MUOND_READ_CHUNK 16384u
/* First size of an output buffer; it doubles as needed. */
#define MUOND_OUT_FIRST 512u
/* Room a reply part leaves for Frame, Message and part headers. */
#define MUOND_PART_OVERHEAD 96u

typedef Muon__Disc__Message Msg;

struct muond_listener {
	ev_io io;
	struct muond_server *srv;
	int fd;
};

struct muond_conn {
	ev_io rio, wio;
	ev_timer timer; /* Hello, idle, then linger when closing */
	struct muond_server *srv;
	struct muond_list link, dirty;
	struct muond_client *cl;
	int fd;
	struct muoni_disc_buf in, out;
	size_t head_left; /* bytes of the partly sent frame at out's head */
	uint64_t started; /* frames whose first byte went out (their seqs) */
	uint8_t nonce[MUONI_DISC_NONCE_LEN];      /* ours, in Welcome */
	uint8_t peer_nonce[MUONI_DISC_NONCE_LEN]; /* from Hello */
	struct muoni_disc_mac mac; /* key and peer_nonce, hashed once */
	uint64_t rx_seq, tx_seq;
	uint64_t last_ms; /* last complete message, or the accept */
	bool hello, closing;
	char addr[80];
};

struct muond_server {
	struct ev_loop *loop;
	const struct muond_config *cfg;
	const uint8_t *key; /* NULL: no secret */
	uint8_t key_store[32];
	struct muond_state *st;
	struct muond_listener *ls;
	unsigned n_ls;
	ev_timer lease_timer, accept_retry;
	uint64_t lease_armed;
	ev_prepare flush;
	struct muond_list conns, dirty;
	uint32_t n_conns;
	uint64_t daemon_id, start_ms;
	uint64_t auth_failures, protocol_errors, clients_dropped;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *kind_name(int kind)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(
			&muon__disc__message__descriptor, (unsigned)kind);

	return f ? f->name : "unknown";
}

static void conn_timer_in(struct muond_conn *c, uint64_t ms)
{
	ev_timer_stop(c->srv->loop, &c->timer);
	/* A hair late rather than early, so one wake-up is enough. */
	ev_timer_set(&c->timer, (double)ms / 1000.0 + 0.0005, 0.);
	ev_timer_start(c->srv->loop, &c->timer);
}

static void conn_mark_dirty(struct muond_conn *c)
{
	if (c->dirty.next == &c->dirty)
		muond_list_add_tail(&c->srv->dirty, &c->dirty);
}

static void conn_free(struct muond_conn *c)
{
	struct muond_server *s;

	if (!c)
		return;
	s = c->srv;
	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	ev_timer_stop(s->loop, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	muond_client_free(s->st, c->cl);
	muoni_disc_buf_fini(&c->in);
	muoni_disc_buf_fini(&c->out);
	muoni_disc_mac_wipe(&c->mac);
	muond_list_del(&c->link);
	muond_list_del(&c->dirty);
	s->n_conns--;
	free(c);
}

/* ------------------------------------------------------------ output */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Consume sent bytes, keeping track of where the next frame starts. */
static void out_consume(struct muond_conn *c, size_t n)
{
	struct muoni_disc_buf *b = &c->out;

	while (n) {
		size_t k;

		if (!c->head_left) {
			c->head_left = MUONI_DISC_LEN_BYTES +
				       be32(b->data + b->off);
			c->started++;
		}
		k = n < c->head_left ? n : c->head_left;
		muoni_disc_buf_consume(b, k);
		c->head_left -= k;
		n -= k;
	}
}

static void conn_fatal(struct muond_conn *c, int code, uint64_t req_id,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Append one message, numbered, MACed once the client's nonce is known. */
static void conn_send(struct muond_conn *c, Msg *m)
{
	struct muond_server *s = c->srv;
	size_t used;
	int rc;

	m->seq = ++c->tx_seq;
	/* The codec's first buffer is 4 KiB; an Update is a few hundred
	 * bytes. Starting small keeps a fan-out to a thousand watchers from
	 * touching a thousand fresh pages. */
	if (!c->out.data) {
		c->out.data = malloc(MUOND_OUT_FIRST);
		c->out.cap = c->out.data ? MUOND_OUT_FIRST : 0;
	}
	rc = muoni_disc_pack_mac(&c->out, m,
				 c->hello && s->key ? &c->mac : NULL,
				 s->cfg->max_frame);
	if (rc) {
		/* Every reply is sized to fit; this is a daemon bug or no
		 * memory. The client cannot be told, only dropped. */
		muond_log(MUOND_ERROR, "client %s: cannot encode %s: %s",
			  c->addr, kind_name(m->kind_case), muoni_err_msg());
		muoni_err_clear();
		if (!c->closing) {
			c->closing = true;
			s->clients_dropped++;
			ev_io_stop(s->loop, &c->rio);
			conn_timer_in(c, 0);
		}
		return;
	}
	conn_mark_dirty(c);
	used = muoni_disc_buf_used(&c->out);
	if (used > s->cfg->max_output && !c->closing) {
		struct muoni_disc_buf *b = &c->out;

		/* Keep only the frame the socket is in the middle of: the
		 * Error must be the next thing the client reads. */
		b->len = b->off + c->head_left;
		if (!c->head_left)
			muoni_disc_buf_consume(b, 0);
		/* The dropped frames' numbers are reused, so the client sees
		 * no gap before the Error. */
		c->tx_seq = c->started;
		conn_fatal(c, MUON__DISC__ERROR__CODE__OVERLOADED, 0,
			   "%zu bytes of output not read (limit %u)", used,
			   s->cfg->max_output);
	}
}

static void send_error(struct muond_conn *c, uint64_t req_id, int code,
		       const char *reason, bool fatal)
{
	Muon__Disc__Error e = MUON__DISC__ERROR__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	e.code = (Muon__Disc__Error__Code)code;
	e.reason = (char *)reason;
	e.fatal = fatal;
	m.request_id = req_id;
	m.kind_case = MUON__DISC__MESSAGE__KIND_ERROR;
	m.error = &e;
	conn_send(c, &m);
}

static void send_ok(struct muond_conn *c, uint64_t req_id)
{
	Muon__Disc__Ok ok = MUON__DISC__OK__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	m.request_id = req_id;
	m.kind_case = MUON__DISC__MESSAGE__KIND_OK;
	m.ok = &ok;
	conn_send(c, &m);
}

static void count_error(struct muond_server *s, int code)
{
	if (code == MUON__DISC__ERROR__CODE__AUTH)
		s->auth_failures++;
	else if (code != MUON__DISC__ERROR__CODE__LIMIT &&
		 code != MUON__DISC__ERROR__CODE__IDLE &&
		 code != MUON__DISC__ERROR__CODE__OVERLOADED)
		s->protocol_errors++;
}

/* Tell the client why, stop reading, and close once that is flushed. */
static void conn_fatal(struct muond_conn *c, int code, uint64_t req_id,
		       const char *fmt, ...)
{
	struct muond_server *s = c->srv;
	char reason[256];
	va_list ap;

	if (c->closing)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	c->closing = true;
	count_error(s, code);
	s->clients_dropped++;
	muond_log_reject("client %s%s%s: %s: %s; disconnected", c->addr,
			 c->cl->name[0] ? " " : "", c->cl->name,
			 muoni_disc_code_name(code), reason);
	ev_io_stop(s->loop, &c->rio);
	send_error(c, req_id, code, reason, true);
	conn_timer_in(c, MUOND_LINGER_MS);
}

static void conn_reject(struct muond_conn *c, uint64_t req_id, int code,
			const char *reason)
{
	count_error(c->srv, code);
	muond_log(code == MUON__DISC__ERROR__CODE__LIMIT ? MUOND_WARN
							  : MUOND_INFO,
		  "client %s %s: %s: %s", c->addr, c->cl->name,
		  muoni_disc_code_name(code), reason);
	send_error(c, req_id, code, reason, false);
}

/* Send what the socket takes; free the connection once a closing one
 * is drained or the peer is gone. Returns false when freed. */
static bool conn_write(struct muond_conn *c)
{
	struct muond_server *s = c->srv;

	muond_list_del(&c->dirty);
	while (muoni_disc_buf_used(&c->out)) {
		ssize_t n = send(c->fd, c->out.data + c->out.off,
				 muoni_disc_buf_used(&c->out), MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(s->loop, &c->wio);
			return true;
		}
		if (n < 0) {
			muond_log(MUOND_DEBUG, "client %s: send: %s", c->addr,
				  strerror(errno));
			conn_free(c);
			return false;
		}
		out_consume(c, (size_t)n);
	}
	ev_io_stop(s->loop, &c->wio);
	/* Idle clients hold no buffer: ten thousand of them stay cheap. */
	muoni_disc_buf_fini(&c->out);
	c->head_left = 0;
	if (c->closing) {
		shutdown(c->fd, SHUT_WR);
		conn_free(c);
		return false;
	}
	return true;
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	conn_write(MUOND_CONTAINER(w, struct muond_conn, wio));
}

/* Before the loop sleeps: everything queued this round goes out. */
static void on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct muond_server *s = MUOND_CONTAINER(w, struct muond_server, flush);

	while (!muond_list_empty(&s->dirty))
		conn_write(MUOND_CONTAINER(s->dirty.next, struct muond_conn,
					   dirty));
}

/* ------------------------------------------------------------ leases */

static void lease_rearm(struct muond_server *s)
{
	uint64_t next = muond_state_next_expiry(s->st), now;

	if (next == s->lease_armed)
		return;
	ev_timer_stop(s->loop, &s->lease_timer);
	s->lease_armed = next;
	if (next == UINT64_MAX)
		return;
	now = now_ms();
	ev_timer_set(&s->lease_timer,
		     (double)(next > now ? next - now : 0) / 1000.0 + 0.0005,
		     0.);
	ev_timer_start(s->loop, &s->lease_timer);
}

static void on_lease(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct muond_server *s =
		MUOND_CONTAINER(w, struct muond_server, lease_timer);
	struct muond_stats before, after;

	muond_state_stats(s->st, &before);
	muond_state_expire(s->st, now_ms());
	muond_state_stats(s->st, &after);
	if (after.leases_expired != before.leases_expired)
		muond_log(MUOND_INFO, "%" PRIu64 " lease(s) expired: %u "
			  "publication(s) withdrawn",
			  after.leases_expired - before.leases_expired,
			  before.publications - after.publications);
	s->lease_armed = 0;
	lease_rearm(s);
}

/* ------------------------------------------------------------ replies */

struct collect {
	void **p;
	size_t n, cap;
	bool oom;
};

static void collect_add(struct collect *v, void *item)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void **p = realloc(v->p, cap * sizeof(*p));

		if (!p) {
			v->oom = true;
			return;
		}
		v->p = p;
		v->cap = cap;
	}
	v->p[v->n++] = item;
}

static void collect_pub(void *arg, const Muon__Disc__Publication *p)
{
	collect_add(arg, (void *)p);
}

enum part_kind { PART_SNAPSHOT, PART_PUBS, PART_TOPICS, PART_WATCHERS };

static size_t item_size(enum part_kind k, const void *item)
{
	switch (k) {
	case PART_SNAPSHOT:
	case PART_PUBS:
		return muon__disc__publication__get_packed_size(item);
	case PART_TOPICS:
		return muon__disc__topic_info__get_packed_size(item);
	default:
		return muon__disc__watcher_info__get_packed_size(item);
	}
}

/* Items in as many parts as max_frame needs, the last one marked; an
 * empty result is one empty last part. */
static void send_parts(struct muond_conn *c, uint64_t req_id,
		       enum part_kind k, uint64_t watch_id, void **items,
		       size_t n)
{
	size_t budget = c->srv->cfg->max_frame - MUOND_PART_OVERHEAD;
	size_t start = 0;

	do {
		Muon__Disc__Snapshot snap = MUON__DISC__SNAPSHOT__INIT;
		Muon__Disc__ListReply lr = MUON__DISC__LIST_REPLY__INIT;
		Msg m = MUON__DISC__MESSAGE__INIT;
		size_t end = start, used = 0;

		/* +4: the field's tag and length. At least one per part. */
		while (end < n) {
			size_t sz = item_size(k, items[end]) + 4;

			if (end > start && used + sz > budget)
				break;
			used += sz;
			end++;
		}
		m.request_id = req_id;
		if (k == PART_SNAPSHOT) {
			snap.watch_id = watch_id;
			snap.publications =
				(Muon__Disc__Publication **)items + start;
			snap.n_publications = end - start;
			snap.last = end == n;
			m.kind_case = MUON__DISC__MESSAGE__KIND_SNAPSHOT;
			m.snapshot = &snap;
		} else {
			if (k == PART_PUBS) {
				lr.publications = (Muon__Disc__Publication **)
							  items + start;
				lr.n_publications = end - start;
			} else if (k == PART_TOPICS) {
				lr.topics = (Muon__Disc__TopicInfo **)items +
					    start;
				lr.n_topics = end - start;
			} else {
				lr.watchers = (Muon__Disc__WatcherInfo **)
						      items + start;
				lr.n_watchers = end - start;
			}
			lr.last = end == n;
			m.kind_case = MUON__DISC__MESSAGE__KIND_LIST_REPLY;
			m.list_reply = &lr;
		}
		conn_send(c, &m);
		start = end;
	} while (start < n && !c->closing);
}

struct topic_rows {
	Muon__Disc__TopicInfo *rows;
	size_t n, cap;
	bool oom;
};

/* Room for one more row in a growing array; false when out of memory. */
static bool rows_room(void **rows, size_t n, size_t *cap, size_t size)
{
	size_t nc;
	void *p;

	if (n < *cap)
		return true;
	nc = *cap ? *cap * 2 : 64;
	p = realloc(*rows, nc * size);
	if (!p)
		return false;
	*rows = p;
	*cap = nc;
	return true;
}

static void collect_topic(void *arg, const char *topic, uint32_t pubs,
			  uint32_t watchers)
{
	struct topic_rows *r = arg;

	if (!rows_room((void **)&r->rows, r->n, &r->cap, sizeof(*r->rows))) {
		r->oom = true;
		return;
	}
	muon__disc__topic_info__init(&r->rows[r->n]);
	r->rows[r->n].topic = (char *)topic;
	r->rows[r->n].publications = pubs;
	r->rows[r->n].watchers = watchers;
	r->n++;
}

struct watch_rows {
	Muon__Disc__WatcherInfo *rows;
	size_t n, cap;
	bool oom;
};

static void collect_watch(void *arg, const struct muond_client *cl,
			  const struct muond_watch *w, const char *topic)
{
	struct watch_rows *r = arg;

	if (!rows_room((void **)&r->rows, r->n, &r->cap, sizeof(*r->rows))) {
		r->oom = true;
		return;
	}
	muon__disc__watcher_info__init(&r->rows[r->n]);
	r->rows[r->n].client = (char *)cl->label;
	r->rows[r->n].topic = (char *)topic;
	r->rows[r->n].prefix = w->prefix;
	r->rows[r->n].updates_sent = w->updates_sent;
	r->n++;
}

static void send_health(struct muond_conn *c, uint64_t req_id)
{
	struct muond_server *s = c->srv;
	Muon__Disc__Health h = MUON__DISC__HEALTH__INIT;
	Muon__Disc__ListReply lr = MUON__DISC__LIST_REPLY__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	struct muond_stats st;

	muond_state_stats(s->st, &st);
	h.daemon_id = s->daemon_id;
	h.daemon_name = (char *)s->cfg->name;
	h.version = (char *)MUOND_VERSION;
	h.uptime_ms = now_ms() - s->start_ms;
	h.clients = s->n_conns;
	h.sessions = st.sessions;
	h.publications = st.publications;
	h.topics = st.topics;
	h.watches = st.watches;
	h.updates_sent = st.updates_sent;
	h.leases_expired = st.leases_expired;
	h.auth_failures = s->auth_failures;
	h.protocol_errors = s->protocol_errors;
	h.clients_dropped = s->clients_dropped;
	h.lease_ms = s->cfg->lease_ms;
	lr.health = &h;
	lr.last = true;
	m.request_id = req_id;
	m.kind_case = MUON__DISC__MESSAGE__KIND_LIST_REPLY;
	m.list_reply = &lr;
	conn_send(c, &m);
}

static void do_list(struct muond_conn *c, uint64_t req_id,
		    const Muon__Disc__List *l)
{
	struct muond_server *s = c->srv;
	struct collect v = { 0 };
	struct topic_rows tr = { 0 };
	struct watch_rows wr = { 0 };
	char err[160];
	size_t i;

	switch (l->what) {
	case MUON__DISC__LIST__WHAT__HEALTH:
		send_health(c, req_id);
		return;
	case MUON__DISC__LIST__WHAT__PUBLICATIONS:
		if (muoni_disc_topic_check(l->topic, true, err, sizeof(err))) {
			conn_reject(c, req_id,
				    MUON__DISC__ERROR__CODE__BAD_REQUEST, err);
			return;
		}
		muond_state_each_pub(s->st, l->topic, now_ms(), collect_pub,
				     &v);
		if (!v.oom)
			send_parts(c, req_id, PART_PUBS, 0, v.p, v.n);
		break;
	case MUON__DISC__LIST__WHAT__TOPICS:
		muond_state_each_topic(s->st, collect_topic, &tr);
		for (i = 0; !tr.oom && i < tr.n; i++)
			collect_add(&v, &tr.rows[i]);
		if (!tr.oom && !v.oom)
			send_parts(c, req_id, PART_TOPICS, 0, v.p, v.n);
		v.oom |= tr.oom;
		break;
	case MUON__DISC__LIST__WHAT__WATCHERS:
		muond_state_each_watch(s->st, collect_watch, &wr);
		for (i = 0; !wr.oom && i < wr.n; i++)
			collect_add(&v, &wr.rows[i]);
		if (!wr.oom && !v.oom)
			send_parts(c, req_id, PART_WATCHERS, 0, v.p, v.n);
		v.oom |= wr.oom;
		break;
	default:
		conn_reject(c, req_id, MUON__DISC__ERROR__CODE__BAD_REQUEST,
			    "List of nothing: what must be TOPICS, "
			    "PUBLICATIONS, WATCHERS or HEALTH");
		return;
	}
	if (v.oom)
		conn_reject(c, req_id, MUON__DISC__ERROR__CODE__LIMIT,
			    "daemon out of memory");
	free(v.p);
	free(tr.rows);
	free(wr.rows);
}

/* ------------------------------------------------------------ requests */

static void do_hello(struct muond_conn *c, const Muon__Disc__Hello *h)
{
	char err[160], label[160];

	if (h->nonce.len != MUONI_DISC_NONCE_LEN) {
		conn_fatal(c, MUON__DISC__ERROR__CODE__BAD_REQUEST, 0,
			   "Hello nonce of %zu bytes, want %u", h->nonce.len,
			   MUONI_DISC_NONCE_LEN);
		return;
	}
	if (muoni_disc_text_check("name", h->name, MUONI_DISC_NAME_MAX, err,
				  sizeof(err)) ||
	    muoni_disc_text_check("host id", h->host_id,
				  MUONI_DISC_HOST_ID_MAX, err, sizeof(err)) ||
	    muoni_disc_text_check("role", h->role, MUONI_DISC_NAME_MAX, err,
				  sizeof(err))) {
		conn_fatal(c, MUON__DISC__ERROR__CODE__BAD_REQUEST, 0,
			   "Hello: %s", err);
		return;
	}
	memcpy(c->peer_nonce, h->nonce.data, MUONI_DISC_NONCE_LEN);
	if (c->srv->key)
		muoni_disc_mac_init(&c->mac, c->srv->key, c->peer_nonce);
	c->hello = true;
	snprintf(label, sizeof(label), "%s %016" PRIx64 "@%s", h->name,
		 h->ctx_id, c->addr);
	muond_client_hello(c->srv->st, c->cl, h->ctx_id, h->name, h->host_id,
			   label);
	muond_log(MUOND_DEBUG, "client %s: hello name '%s' ctx %" PRIx64
		  " role '%s' pid %u", c->addr, h->name, h->ctx_id, h->role,
		  h->pid);
}

static void do_watch(struct muond_conn *c, uint64_t req_id,
		     const Muon__Disc__Watch *wm)
{
	struct collect v = { 0 };
	struct muond_watch *w;
	char err[200];
	int code;

	code = muond_watch_add(c->srv->st, c->cl, wm->watch_id, wm->topic,
			       wm->prefix, &w, err, sizeof(err));
	if (code) {
		conn_reject(c, req_id, code, err);
		return;
	}
	muond_watch_snapshot(c->srv->st, w, collect_pub, &v);
	if (v.oom) {
		muond_watch_remove(c->srv->st, c->cl, wm->watch_id);
		conn_reject(c, req_id, MUON__DISC__ERROR__CODE__LIMIT,
			    "daemon out of memory");
	} else {
		send_parts(c, req_id, PART_SNAPSHOT, wm->watch_id, v.p, v.n);
	}
	free(v.p);
}

static void dispatch(struct muond_conn *c, Msg *m)
{
	struct muond_server *s = c->srv;
	uint64_t req = m->request_id;
	char err[300];
	int code;

	if (!c->hello) {
		if (m->kind_case != MUON__DISC__MESSAGE__KIND_HELLO)
			conn_fatal(c, MUON__DISC__ERROR__CODE__STATE, req,
				   "%s before Hello", kind_name(m->kind_case));
		else
			do_hello(c, m->hello);
		return;
	}
	switch (m->kind_case) {
	case MUON__DISC__MESSAGE__KIND_HELLO:
		conn_reject(c, req, MUON__DISC__ERROR__CODE__STATE,
			    "Hello twice on one connection");
		break;
	case MUON__DISC__MESSAGE__KIND_REGISTER:
		code = muond_register(s->st, c->cl,
				      m->register_->publications,
				      m->register_->n_publications, now_ms(),
				      err, sizeof(err));
		if (code)
			conn_reject(c, req, code, err);
		else
			send_ok(c, req);
		lease_rearm(s);
		break;
	case MUON__DISC__MESSAGE__KIND_UNREGISTER:
		muond_unregister(s->st, c->cl, m->unregister->stream_ids,
				 m->unregister->n_stream_ids, now_ms());
		send_ok(c, req);
		lease_rearm(s);
		break;
	case MUON__DISC__MESSAGE__KIND_RENEW:
		muond_renew(s->st, c->cl, now_ms());
		send_ok(c, req);
		lease_rearm(s);
		break;
	case MUON__DISC__MESSAGE__KIND_WATCH:
		do_watch(c, req, m->watch);
		break;
	case MUON__DISC__MESSAGE__KIND_UNWATCH:
		if (muond_watch_remove(s->st, c->cl, m->unwatch->watch_id)) {
			snprintf(err, sizeof(err), "no watch %" PRIu64,
				 m->unwatch->watch_id);
			conn_reject(c, req,
				    MUON__DISC__ERROR__CODE__BAD_REQUEST, err);
		} else {
			send_ok(c, req);
		}
		break;
	case MUON__DISC__MESSAGE__KIND_LIST:
		do_list(c, req, m->list);
		break;
	default:
		snprintf(err, sizeof(err), "%s is not a request",
			 kind_name(m->kind_case));
		conn_reject(c, req, MUON__DISC__ERROR__CODE__BAD_REQUEST, err);
		break;
	}
}

static void handle_frame(struct muond_conn *c, const uint8_t *f, size_t len)
{
	struct muond_server *s = c->srv;
	Msg *m = NULL;
	char err[200];
	int code = 0;

	if (muoni_disc_unpack(f, len, s->key, c->nonce, &m, &code, err,
			      sizeof(err))) {
		conn_fatal(c, code, 0, "%s", err);
		return;
	}
	if (m->seq != c->rx_seq + 1) {
		conn_fatal(c, MUON__DISC__ERROR__CODE__AUTH, m->request_id,
			   "replay: message seq %" PRIu64 ", expected %" PRIu64,
			   m->seq, c->rx_seq + 1);
		goto free_message;
	}
	c->rx_seq = m->seq;
	c->last_ms = now_ms();
	dispatch(c, m);
free_message:
	muon__disc__message__free_unpacked(m, NULL);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct muond_conn *c = MUOND_CONTAINER(w, struct muond_conn, rio);
	size_t room = c->srv->cfg->max_frame + MUONI_DISC_LEN_BYTES -
		      muoni_disc_buf_used(&c->in);
	const uint8_t *f;
	size_t len;
	ssize_t n;
	int rc;

	if (room > MUOND_READ_CHUNK)
		room = MUOND_READ_CHUNK;
	if (muoni_disc_buf_reserve(&c->in, room)) {
		muond_log(MUOND_ERROR, "client %s: out of memory", c->addr);
		conn_free(c);
		return;
	}
	n = recv(c->fd, c->in.data + c->in.len, room, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return;
	if (n <= 0) {
		muond_log(MUOND_DEBUG, "client %s: %s", c->addr,
			  n ? strerror(errno) : "closed by peer");
		conn_free(c);
		return;
	}
	c->in.len += (size_t)n;
	while (!c->closing) {
		rc = muoni_disc_next(&c->in, c->srv->cfg->max_frame, &f, &len);
		if (rc < 0) {
			conn_fatal(c, MUON__DISC__ERROR__CODE__BAD_FRAME, 0,
				   "%s", rc == MUON_ETOOBIG
						 ? "length prefix above "
						   "max_frame"
						 : "frame of length 0");
			muoni_err_clear();
			break;
		}
		if (!rc)
			break;
		handle_frame(c, f, len);
		muoni_disc_buf_consume(&c->in, MUONI_DISC_LEN_BYTES + len);
	}
	if (!muoni_disc_buf_used(&c->in) || c->closing)
		muoni_disc_buf_fini(&c->in);
}

static void on_conn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct muond_conn *c = MUOND_CONTAINER(w, struct muond_conn, timer);
	const struct muond_config *cfg = c->srv->cfg;
	uint64_t limit = cfg->idle_timeout_ms, now = now_ms(), due;

	if (c->closing) {
		conn_free(c);
		return;
	}
	if (!c->hello && limit > MUOND_HELLO_TIMEOUT_MS)
		limit = MUOND_HELLO_TIMEOUT_MS;
	due = c->last_ms + limit;
	if (now < due) {
		conn_timer_in(c, due - now);
		return;
	}
	conn_fatal(c, MUON__DISC__ERROR__CODE__IDLE, 0,
		   "no complete message for %" PRIu64 " ms%s", limit,
		   c->hello ? "" : " (waiting for Hello)");
}

/* ------------------------------------------------------------ accept */

static void addr_text(const struct sockaddr_storage *sa, socklen_t len,
		      char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN + 8], port[8];

	if (getnameinfo((const struct sockaddr *)sa, len, host, sizeof(host),
			port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, n, "?");
		return;
	}
	snprintf(out, n, sa->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

/* Above max_clients: a connection is told why, not left hanging. */
static void reject_full(struct muond_server *s, int fd, const char *addr)
{
	struct muoni_disc_buf b = { 0 };
	Muon__Disc__Error e = MUON__DISC__ERROR__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	char reason[96];

	snprintf(reason, sizeof(reason), "daemon has max_clients (%u) "
		 "clients", s->cfg->max_clients);
	e.code = MUON__DISC__ERROR__CODE__LIMIT;
	e.reason = reason;
	e.fatal = true;
	m.seq = 1;
	m.kind_case = MUON__DISC__MESSAGE__KIND_ERROR;
	m.error = &e;
	if (!muoni_disc_pack(&b, &m, NULL, NULL, s->cfg->max_frame) &&
	    send(fd, b.data + b.off, muoni_disc_buf_used(&b),
		 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		muond_log(MUOND_DEBUG, "client %s: send: %s", addr,
			  strerror(errno));
	muoni_err_clear();
	muoni_disc_buf_fini(&b);
	close(fd);
	s->clients_dropped++;
	muond_log_reject("client %s: LIMIT: %s; disconnected", addr, reason);
}

static void conn_new(struct muond_server *s, int fd, const char *addr)
{
	Muon__Disc__Welcome wel = MUON__DISC__WELCOME__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	struct muond_conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		goto close_fd;
	c->srv = s;
	c->fd = fd;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->cl = muond_client_new(s->st, c);
	if (!c->cl)
		goto free_conn;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	muond_list_init(&c->dirty);
	muond_list_add_tail(&s->conns, &c->link);
	s->n_conns++;
	randombytes_buf(c->nonce, sizeof(c->nonce));
	c->last_ms = now_ms();
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	ev_io_init(&c->wio, on_write, fd, EV_WRITE);
	ev_timer_init(&c->timer, on_conn_timer, 0., 0.);
	ev_io_start(s->loop, &c->rio);
	conn_timer_in(c, s->cfg->idle_timeout_ms < MUOND_HELLO_TIMEOUT_MS
				 ? s->cfg->idle_timeout_ms
				 : MUOND_HELLO_TIMEOUT_MS);

	wel.nonce.data = c->nonce;
	wel.nonce.len = sizeof(c->nonce);
	wel.daemon_id = s->daemon_id;
	wel.daemon_name = (char *)s->cfg->name;
	wel.lease_ms = s->cfg->lease_ms;
	wel.auth_required = s->key != NULL;
	wel.max_frame = s->cfg->max_frame;
	m.kind_case = MUON__DISC__MESSAGE__KIND_WELCOME;
	m.welcome = &wel;
	conn_send(c, &m);
	muond_log(MUOND_DEBUG, "client %s: connected", addr);
	return;
free_conn:
	free(c);
close_fd:
	muond_log(MUOND_ERROR, "client %s: out of memory", addr);
	close(fd);
}

static void listeners_set(struct muond_server *s, bool on)
{
	unsigned i;

	for (i = 0; i < s->n_ls; i++) {
		if (on)
			ev_io_start(s->loop, &s->ls[i].io);
		else
			ev_io_stop(s->loop, &s->ls[i].io);
	}
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct muond_server *s =
		MUOND_CONTAINER(w, struct muond_server, accept_retry);

	listeners_set(s, true);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct muond_listener *l = MUOND_CONTAINER(w, struct muond_listener,
						   io);
	struct muond_server *s = l->srv;
	unsigned i;

	/* A bounded batch, so that a connection storm does not starve the
	 * clients already connected. */
	for (i = 0; i < 256; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		char addr[80];
		int fd = accept4(l->fd, (struct sockaddr *)&sa, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Level-triggered accept would spin: pause
				 * until descriptors come back. */
				muond_log(MUOND_WARN, "accept: %s; pausing "
					  "for 100 ms", strerror(errno));
				listeners_set(s, false);
				ev_timer_stop(loop, &s->accept_retry);
				ev_timer_set(&s->accept_retry, 0.1, 0.);
				ev_timer_start(loop, &s->accept_retry);
			}
			return;
		}
		addr_text(&sa, len, addr, sizeof(addr));
		if (s->n_conns >= s->cfg->max_clients)
			reject_full(s, fd, addr);
		else
			conn_new(s, fd, addr);
	}
}

/* ------------------------------------------------------------ updates */

static void on_push(void *arg, struct muond_watch *w,
		    Muon__Disc__Update__Kind kind,
		    const Muon__Disc__Publication *p, const char *reason)
{
	struct muond_conn *c = w->client->conn;
	Muon__Disc__Update u = MUON__DISC__UPDATE__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	if (c->closing)
		return;
	u.watch_id = w->id;
	u.kind = kind;
	u.publication = (Muon__Disc__Publication *)p;
	u.reason = (char *)reason;
	m.kind_case = MUON__DISC__MESSAGE__KIND_UPDATE;
	m.update = &u;
	conn_send(c, &m);
}

/* ------------------------------------------------------------ setup */

static int listener_open(struct muond_server *s, const char *spec,
			 struct muond_listener *l)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char host[256], port[8], err[300], bound[96];
	int fd = -1, one = 1, rc, saved = 0;

	if (muond_listen_split(spec, host, sizeof(host), port, sizeof(port),
			       err, sizeof(err))) {
		muond_log(MUOND_ERROR, "listen %s", err);
		return -1;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		muond_log(MUOND_ERROR, "listen %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) &&
		    !listen(fd, 4096))
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		muond_log(MUOND_ERROR, "listen %s: %s", spec, strerror(saved));
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&sa, &len);
	addr_text(&sa, len, bound, sizeof(bound));
	l->fd = fd;
	l->srv = s;
	ev_io_init(&l->io, on_accept, fd, EV_READ);
	ev_io_start(s->loop, &l->io);
	/* Tests read the port from this line: stdout carries nothing else. */
	printf("listening tcp://%s\n", bound);
	fflush(stdout);
	muond_log(MUOND_INFO, "listening on tcp://%s", bound);
	return 0;
}

int muond_server_new(struct ev_loop *loop, const struct muond_config *cfg,
		     const uint8_t *key, struct muond_server **out)
{
	struct muond_limits lim = {
		.lease_ms = cfg->lease_ms,
		.max_frame = cfg->max_frame,
		.max_topics = cfg->max_topics,
		.max_publications = cfg->max_publications,
		.max_publications_per_session =
			cfg->max_publications_per_session,
		.max_watches_per_client = cfg->max_watches_per_client,
	};
	struct muond_server *s;
	unsigned i;

	if (sodium_init() < 0) {
		muond_log(MUOND_ERROR, "libsodium failed to initialise");
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_of_memory;
	s->loop = loop;
	s->cfg = cfg;
	if (key) {
		memcpy(s->key_store, key, sizeof(s->key_store));
		s->key = s->key_store;
	}
	muond_list_init(&s->conns);
	muond_list_init(&s->dirty);
	randombytes_buf(&s->daemon_id, sizeof(s->daemon_id));
	s->daemon_id |= 1; /* never 0, which reads as "unknown" */
	s->start_ms = now_ms();
	ev_timer_init(&s->lease_timer, on_lease, 0., 0.);
	ev_timer_init(&s->accept_retry, on_accept_retry, 0., 0.);
	s->lease_armed = UINT64_MAX;
	ev_prepare_init(&s->flush, on_flush);
	ev_prepare_start(loop, &s->flush);
	s->st = muond_state_new(&lim, on_push, s);
	s->ls = calloc(cfg->n_listen, sizeof(*s->ls));
	if (!s->st || !s->ls)
		goto free_server;
	for (i = 0; i < cfg->n_listen; i++) {
		s->ls[i].fd = -1;
		if (listener_open(s, cfg->listen[i], &s->ls[i]))
			goto free_server;
		s->n_ls = i + 1;
	}
	*out = s;
	return 0;
free_server:
	if (!s->st || !s->ls)
		muond_log(MUOND_ERROR, "out of memory");
	muond_server_free(s);
	return -1;
out_of_memory:
	muond_log(MUOND_ERROR, "out of memory");
	return -1;
}

void muond_server_free(struct muond_server *s)
{
	unsigned i;

	if (!s)
		return;
	while (!muond_list_empty(&s->conns))
		conn_free(MUOND_CONTAINER(s->conns.next, struct muond_conn,
					  link));
	for (i = 0; i < s->n_ls; i++) {
		ev_io_stop(s->loop, &s->ls[i].io);
		close(s->ls[i].fd);
	}
	free(s->ls);
	ev_timer_stop(s->loop, &s->lease_timer);
	ev_timer_stop(s->loop, &s->accept_retry);
	ev_prepare_stop(s->loop, &s->flush);
	muond_state_free(s->st);
	sodium_memzero(s->key_store, sizeof(s->key_store));
	free(s);
}
