/*
 * muon internals: the engine's objects and the calls between core files
 * and transports. Nothing here is installed. `muoni_` is the private
 * prefix; public names (`muon_`) live only in api/include/muon/muon.h.
 */
#ifndef MUONI_H
#define MUONI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <muon/muon.h>

#include "core/error.h"
#include "core/frame.h"
#include "core/mring.h"
#include "core/muoni_prefetch.h"
#include "core/sendlog.h"
#include "transport/transport.h"

#define MUONI_LIKELY(x) __builtin_expect(!!(x), 1)
#define MUONI_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define MUONI_CTL_INTERVAL_NS 200000ull /* control plane every 200 us */
#define MUONI_MAX_CONNS 4096u
#define MUONI_MAX_PUBS 65536u
#define MUONI_MAX_STREAMS_PER_CONN 65536u
#define MUONI_DEFAULT_BUDGET 256u

/* ------------------------------------------------------------ config */

enum muoni_ep_kind { MUONI_EP_SHM = 1, MUONI_EP_TCP = 2, MUONI_EP_VERBS = 3 };

#define MUONI_EP_TEXT 128
#define MUONI_SHM_NAME_MAX 64

struct muoni_endpoint {
	int kind;
	char text[MUONI_EP_TEXT];          /* canonical "scheme://..." */
	char name[MUONI_SHM_NAME_MAX + 1]; /* shm */
	char host[64];                     /* tcp, without brackets */
	uint16_t port;                     /* tcp, verbs */
	unsigned group;                    /* peers: alternatives share it */
};

struct muoni_config {
	char name[33];
	uint64_t ctx_id;
	struct muoni_endpoint *listen;
	unsigned n_listen;
	struct muoni_endpoint *peers;
	unsigned n_peers;
	struct muoni_endpoint *daemons;   /* discovery */
	unsigned n_daemons;
	struct muoni_endpoint *advertise; /* registered instead of listeners */
	unsigned n_advertise;
	int transport; /* 0 = auto, else MUONI_EP_* */
	uint32_t ring_size;
	uint32_t send_log_size;
	uint32_t max_msg_size;
	uint32_t heartbeat_ms;
	uint32_t peer_timeout_ms;
	uint32_t reconnect_ms;
	uint32_t linger_ms;
	muon_log_level_t log_level;
	muon_log_fn log_fn;
	void *log_arg;
	char shm_dir[256];
	bool has_secret;
	uint8_t secret[32]; /* SHA-256 of the cluster secret file */
};

void muoni_config_defaults(muon_ctx_config_t *cfg);
int muoni_config_resolve(const muon_ctx_config_t *in,
			 struct muoni_config *out);
void muoni_config_fini(struct muoni_config *c);
int muoni_endpoint_parse(const char *s, size_t n, struct muoni_endpoint *ep);
int muoni_endpoints_parse(const char *list, bool alternatives,
			  struct muoni_endpoint **out, unsigned *n);
/* auth.c: the cluster secret and the tags made with it. */
int muoni_secret_load(const char *path, uint8_t key[32]);
void muoni_secret_wipe(void *p, size_t n);
void muoni_auth_tag(const uint8_t key[32], const void *msg, size_t len,
		    uint8_t tag[16]);
bool muoni_auth_verify(const uint8_t key[32], const void *msg, size_t len,
		       const uint8_t tag[16]);
int muoni_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
int muoni_parse_size(const char *s, uint32_t *out);

/* ------------------------------------------------------------ logging */

/* "none" .. "debug" for MUON_LOG_NONE .. MUON_LOG_DEBUG, else NULL. */
const char *muoni_log_level_name(int level);
void muoni_log(const struct muon_ctx *ctx, muon_log_level_t lvl,
	       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define MUONI_WARN(ctx, ...) muoni_log((ctx), MUON_LOG_WARN, __VA_ARGS__)
#define MUONI_INFO(ctx, ...) muoni_log((ctx), MUON_LOG_INFO, __VA_ARGS__)
#define MUONI_DEBUG(ctx, ...) muoni_log((ctx), MUON_LOG_DEBUG, __VA_ARGS__)

static inline uint64_t muoni_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Time since `since`, 0 if `now` was read before it (no wrap-around). */
static inline uint64_t muoni_elapsed(uint64_t now, uint64_t since)
{
	return now > since ? now - since : 0;
}

/*
 * Touch every page of a fresh mapping so no page-table work is left for
 * the hot path (MAP_POPULATE fills the guest's tables, but virtual machines
 * with shadow paging fault again on the first access). `write` rewrites
 * each page's first word with its own value, so it is safe on memory a
 * peer has not started using yet.
 */
static inline void muoni_pretouch(void *p, size_t len, bool write)
{
	volatile uint64_t *w;
	size_t off;

	for (off = 0; off < len; off += 4096) {
		w = (volatile uint64_t *)((uint8_t *)p + off);
		if (write)
			*w = *w;
		else
			(void)*w;
	}
}

/* ------------------------------------------------------------ fd events */

/* A file descriptor watched by the context's epoll set (control plane). */
struct muoni_fdh {
	int fd;
	void (*cb)(struct muoni_fdh *h, uint32_t events);
};

int muoni_ctx_fd_add(struct muon_ctx *ctx, struct muoni_fdh *h,
		     uint32_t events);
int muoni_ctx_fd_mod(struct muon_ctx *ctx, struct muoni_fdh *h,
		     uint32_t events);
void muoni_ctx_fd_del(struct muon_ctx *ctx, struct muoni_fdh *h);

/* ------------------------------------------------------------ objects */

struct muoni_listener {
	const struct muoni_transport_ops *ops;
	struct muon_ctx *ctx;
	struct muoni_endpoint ep;
	char bound[MUONI_EP_TEXT]; /* with the real port */
};

/* A peer: a context whose publications this one wants, kept connected.
 * Static peers come from the configuration; dynamic ones from discovery,
 * for as long as a daemon lists a publication of theirs that we watch. */
struct muoni_peer {
	struct muoni_endpoint ep; /* the alternative in use: alt[cur] */
	struct muoni_endpoint alt[3]; /* by preference: shm, verbs, tcp */
	unsigned n_alt;
	unsigned cur;
	const struct muoni_transport_ops *ops;
	struct muoni_conn *conn;
	uint64_t next_attempt_ns;
	uint32_t backoff_ms;
	int last_status;
	/* The peer context turned out to be reachable over a connection it
	 * made to us; no need to connect while that one is up. */
	uint64_t covered_by;
	bool dynamic;    /* from discovery */
	bool wanted;     /* dynamic: a daemon still lists it */
	uint64_t ctx_id; /* dynamic: the context discovery named */
};

enum muoni_conn_state {
	MUONI_CONN_CONNECTING = 1, /* transport connecting */
	MUONI_CONN_HANDSHAKE = 2,  /* transport up, HELLO not yet exchanged */
	MUONI_CONN_UP = 3,
	MUONI_CONN_DEAD = 4,       /* closed, waiting to be reaped */
};

struct muoni_image;
struct muoni_sender;

struct muoni_conn {
	const struct muoni_transport_ops *ops;
	struct muon_ctx *ctx;
	bool outbound; /* we connected (else we accepted) */
	bool receiving; /* we subscribed over it: polled on the data path */
	bool failed;    /* closed by an error, not by choice */
	int state;
	uint64_t id;
	uint64_t peer_ctx_id;
	char peer_name[33];
	char desc[MUONI_EP_TEXT + 48];
	struct muoni_peer *peer;
	int down_reason;

	/* liveness: rx_count is bumped on the data path, looked at by timers */
	uint64_t rx_count;
	uint64_t rx_count_seen;
	uint64_t last_rx_ns;
	uint64_t tx_count;
	uint64_t tx_count_seen;
	uint64_t last_tx_ns;
	uint64_t state_since_ns;

	/* receiving side: images by stream id (open addressing) */
	struct muoni_image **img_tab;
	uint32_t img_mask;
	uint32_t n_img;
	struct muoni_image *img_last;
	unsigned rx_index;

	/* sending side */
	/* shm: the peer's ring, which publish writes inline while it is
	 * simple (muoni_mring_put_fast()); NULL until mapped and on every
	 * other transport. */
	struct muoni_mring *mring;
	struct muoni_sender **senders;
	unsigned n_senders;
	unsigned cap_senders;
	uint8_t *ctl_q;    /* stream control frames not yet pushed */
	size_t ctl_len;
	size_t ctl_cap;
	struct muoni_rsub *rsubs; /* topics the peer subscribed to */
	unsigned n_rsubs;
	unsigned cap_rsubs;

	struct muoni_conn *next;
	struct muoni_conn *prev;
};

struct muoni_rsub {
	uint32_t topic_len;
	char topic[MUONI_TOPIC_MAX + 1];
};

struct muoni_image {
	struct muoni_conn *conn;
	struct muon_sub *sub; /* NULL once unsubscribed: frames dropped */
	uint64_t publisher_id;
	uint32_t stream_id;
	uint64_t next_seq;
	uint64_t skip_below;
};

struct muon_sub {
	struct muon_ctx *ctx;
	char topic[MUONI_TOPIC_MAX + 1];
	uint32_t topic_len;
	muon_msg_fn msg_fn;
	void *msg_arg;
	muon_event_fn event_fn;
	void *event_arg;
	uint8_t start;
	uint64_t start_seq;
	uint64_t disc_watch; /* discovery watch id */
	int n_images;
	bool closed;
	/* where each stream we have seen stopped, for resume on reconnect */
	struct muoni_resume *resume;
	unsigned n_resume;
	unsigned cap_resume;
	struct muon_sub *next;
	struct muon_sub *prev;
};

struct muoni_sender {
	struct muon_pub *pub;
	struct muoni_conn *conn;
	uint64_t pos;            /* next log position to push */
	uint64_t stall_since_ns; /* when pos last moved while lagging */
	uint64_t check_pos;
	/* First sequence this cursor owed its subscriber: the start the
	 * SUBSCRIBE asked for, before the send log or a future start clamped
	 * it. Kept for hand-over. */
	uint64_t from_seq;
	unsigned pub_index;
	unsigned conn_index;
	bool lagging;
};

struct muon_pub {
	struct muon_ctx *ctx;
	char topic[MUONI_TOPIC_MAX + 1];
	uint32_t topic_len;
	uint32_t stream_id;
	struct muoni_sendlog log;
	int slow_policy;
	uint32_t slow_timeout_ms;
	muon_event_fn event_fn;
	void *event_arg;
	struct muoni_sender **senders;
	unsigned n_senders;
	unsigned cap_senders;
	uint64_t limit;          /* head may grow to here without a check */
	uint32_t claim_len;
	bool claim_open;
	bool bp_reported;
	bool closing;
	uint64_t close_deadline_ns;
	struct muon_pub *next;
	struct muon_pub *prev;
};

/*
 * Publisher side of a hand-over: a subscriber context lost a connection on
 * which it was subscribed to one of our streams. If the same subscription
 * comes back on another connection (its SUBSCRIBE carries a stream-0
 * resume entry for us) without knowing the stream, the stream continues
 * from `from_seq`, where it started for that subscriber.
 */
struct muoni_handover {
	uint64_t peer_ctx_id;
	uint64_t from_seq;
	uint32_t stream_id;
};

#define MUONI_MAX_HANDOVERS 1024u

struct muoni_verbs_ctx;
struct muoni_disc;

struct muon_ctx {
	struct muoni_config cfg;
	struct muoni_verbs_ctx *verbs; /* verbs transport state, lazily */
	struct muoni_disc *disc;       /* discovery client, if configured */
	uint64_t id;
	muon_counters_t ctr;
	int epfd;
	int timerfd;
	struct muoni_fdh timer_h;

	struct muoni_listener **listeners;
	unsigned n_listeners;
	struct muoni_peer **peers;
	unsigned n_peers;
	unsigned cap_peers;

	struct muoni_conn *conns;
	unsigned n_conns;
	struct muoni_conn **rx;
	unsigned n_rx;
	unsigned cap_rx;

	struct muon_pub *pubs;
	unsigned n_pubs;
	struct muon_sub *subs;
	struct muon_sub *dead_subs; /* destroyed inside a callback */
	unsigned n_lagging;
	struct muoni_handover *handovers; /* oldest first */
	unsigned n_handovers;
	unsigned cap_handovers;

	uint32_t next_stream_id;
	uint64_t next_conn_id;
	uint64_t now_ns;
	uint64_t next_ctl_ns;
	uint32_t poll_tick; /* counts polls: transports tell poll intervals
			     * apart with it (tcp coalescing) */
	bool in_poll;
	/* A transport may hold back a push to coalesce it with the next ones
	 * (tcp: see tx_hold() in tcp.c) unless one of these is set. tx_flush:
	 * core wants everything out now (the poll's pass over lagging
	 * senders, muon_ctx_arm). armed: from a successful muon_ctx_arm to
	 * the next poll, the application may be asleep on the context fd and
	 * no poll would come to push what was held. */
	bool tx_flush;
	bool armed;
	bool force_ctl;
	bool reap_pending;
	bool destroying;
};

/* ------------------------------------------------------------ core calls */

/* ctx.c */
int muoni_ctx_create(const muon_ctx_config_t *cfg, struct muon_ctx **out);
void muoni_ctx_destroy(struct muon_ctx *ctx);
int muoni_ctx_poll(struct muon_ctx *ctx, unsigned budget);
int muoni_ctx_arm(struct muon_ctx *ctx);
void muoni_ctx_event(struct muon_ctx *ctx, muon_event_fn fn, void *arg,
		     const muon_event_t *ev);
int muoni_ctx_rx_add(struct muon_ctx *ctx, struct muoni_conn *c);
/* Accept the next connection on a listening socket (non-blocking, close on
 * exec), refusing those above the context's connection limit. Returns the
 * fd, or -1 when there is nothing more to accept. */
int muoni_listener_accept(struct muoni_listener *l, int lfd,
			  struct sockaddr *sa, socklen_t *sl);
const struct muoni_transport_ops *muoni_transport_for(int kind);
void muoni_ctx_mem_forget(struct muon_ctx *ctx, const void *base, size_t len);
void muoni_ctx_control(struct muon_ctx *ctx);
/* A static peer's connection failed before it came up: move on to its
 * next alternative endpoint. Returns true if there was another one. */
bool muoni_peer_next_alt(struct muon_ctx *ctx, struct muoni_peer *pr);

/* Peers by context id (dynamic ones), adding one, and setting the
 * endpoints one may be reached at (ordered by cost, filtered by the
 * transport setting). */
struct muoni_peer *muoni_ctx_peer_find(struct muon_ctx *ctx, uint64_t ctx_id);
int muoni_ctx_peer_add(struct muon_ctx *ctx, uint64_t ctx_id,
		       const struct muoni_endpoint *eps, unsigned n,
		       struct muoni_peer **out);
void muoni_ctx_peer_set_alts(struct muon_ctx *ctx, struct muoni_peer *pr,
			     const struct muoni_endpoint *eps, unsigned n);

/* disc.c: the discovery client (no-ops without configured daemons) */
int muoni_disc_create(struct muon_ctx *ctx);
void muoni_disc_destroy(struct muon_ctx *ctx);
void muoni_disc_tick(struct muon_ctx *ctx);
void muoni_disc_pub_added(struct muon_pub *p);
void muoni_disc_pub_removed(struct muon_pub *p);
void muoni_disc_sub_added(struct muon_sub *s);
void muoni_disc_sub_removed(struct muon_sub *s);
int muoni_disc_daemons_up(const struct muon_ctx *ctx);

/* conn.c: called by transports */
void muoni_conn_init(struct muoni_conn *c, struct muon_ctx *ctx,
		     const struct muoni_transport_ops *ops, bool outbound,
		     const char *desc);
int muoni_conn_accepted(struct muoni_conn *c);
void muoni_conn_transport_up(struct muoni_conn *c);
/* Every frame a transport receives, on either channel, after the header
 * passed muoni_frame_check(). Returns DATA frames delivered (0 or 1), or a
 * negative status when the connection is gone (stop reading). Inline
 * below for the next DATA frame of the stream last seen; everything else
 * goes to muoni_conn_rx_any(). */
static inline int muoni_conn_rx(struct muoni_conn *c,
				const struct muoni_frame_hdr *h,
				const void *payload);
int muoni_conn_rx_any(struct muoni_conn *c, const struct muoni_frame_hdr *h,
		      const void *payload);
void muoni_conn_fail(struct muoni_conn *c, int status, int down_reason);
/* A push failed: count a protocol error if the peer caused it, close. */
void muoni_conn_push_failed(struct muoni_conn *c, int rc);

static inline uint32_t muoni_conn_max_data(const struct muoni_conn *c);

/* conn.c: called by core */
int muoni_conn_ctl_queue(struct muoni_conn *c, const void *frame, size_t len);
int muoni_conn_ctl_flush(struct muoni_conn *c);
void muoni_conn_close(struct muoni_conn *c, int down_reason);
void muoni_conn_timers(struct muoni_conn *c, uint64_t now);
void muoni_conn_free(struct muoni_conn *c);
void muoni_conn_send_subscribe(struct muoni_conn *c, struct muon_sub *s);
int muoni_conn_peer_subscribed(struct muoni_conn *c, const char *topic,
			       uint32_t len);

/* pub.c */
int muoni_pub_create(struct muon_ctx *ctx, const char *topic,
		     const muon_pub_config_t *cfg, struct muon_pub **out);
void muoni_pub_destroy(struct muon_pub *p);
int64_t muoni_publish(struct muon_pub *p, const void *data, size_t len);
int muoni_publishv(struct muon_pub *p, const muon_iov_t *msgs, unsigned n,
		   int64_t *first_seq);
int muoni_claim(struct muon_pub *p, size_t len, void **buf);
int64_t muoni_commit(struct muon_pub *p);
int muoni_abort(struct muon_pub *p);
int muoni_pub_subscribe(struct muon_pub *p, struct muoni_conn *c,
			const struct muoni_subscribe *req);
void muoni_pub_unsubscribe(struct muon_pub *p, struct muoni_conn *c);
int muoni_sender_progress(struct muoni_sender *s);
void muoni_sender_remove(struct muoni_sender *s);
void muoni_pub_timers(struct muon_pub *p, uint64_t now);
int muoni_ctx_progress_lagging(struct muon_ctx *ctx);
void muoni_pub_free(struct muon_pub *p);

/* sub.c */
int muoni_sub_create(struct muon_ctx *ctx, const char *topic,
		     const muon_sub_config_t *cfg, struct muon_sub **out);
void muoni_sub_destroy(struct muon_sub *s);
struct muon_sub *muoni_sub_find(struct muon_ctx *ctx, const char *topic,
				uint32_t len);
void muoni_sub_image_up(struct muon_sub *s, struct muoni_image *img);
void muoni_sub_image_down(struct muoni_image *img, int reason,
			  const char *detail);
void muoni_sub_loss(struct muoni_image *img, uint64_t from, uint64_t to,
		    const char *detail);
void muoni_sub_free(struct muon_sub *s);
/* The resume position a subscription keeps for (publisher, stream), 0 if
 * none. */
uint64_t muoni_sub_resume_next(const struct muon_sub *s, uint64_t publisher_id,
			       uint32_t stream_id);
/* A connection to `peer_ctx_id` over which every live subscription was
 * sent went down: remember, per subscription, that it continues there. */
void muoni_sub_peer_lost(struct muon_ctx *ctx, uint64_t peer_ctx_id);

static inline uint32_t muoni_conn_max_data(const struct muoni_conn *c)
{
	return c->ctx->cfg.max_msg_size;
}

/*
 * The receive hot path: one call from the transport's poll loop to the
 * application's callback. A call into conn.c cost about 20 register saves
 * and restores per message there, a fifth of the subscriber's work at
 * 32 B; the checks are those of muoni_conn_rx_any(), in the same order of
 * outcome (a frame that fails one takes the full path).
 */
static inline int muoni_conn_rx(struct muoni_conn *c,
				const struct muoni_frame_hdr *h,
				const void *payload)
{
	struct muoni_image *img = c->img_last;
	struct muon_sub *sub;
	muon_msg_t msg;

	if (MUONI_UNLIKELY(!img || h->type != MUONI_FT_DATA ||
			   img->stream_id != h->stream_id ||
			   h->seq != img->next_seq ||
			   c->state != MUONI_CONN_UP))
		return muoni_conn_rx_any(c, h, payload);
	sub = img->sub;
	if (MUONI_UNLIKELY(!sub || h->seq < img->skip_below))
		return muoni_conn_rx_any(c, h, payload);
	c->rx_count++;
	img->next_seq = h->seq + 1;
	msg.data = payload;
	msg.len = h->len - MUONI_FRAME_HDR_LEN;
	msg.topic = sub->topic;
	msg.publisher_id = img->publisher_id;
	msg.stream_id = img->stream_id;
	msg.seq = h->seq;
	c->ctx->ctr.msgs_received++;
	c->ctx->ctr.bytes_received += msg.len;
	sub->msg_fn(sub->msg_arg, &msg);
	/* The callback may have closed the context's connections. */
	return MUONI_LIKELY(c->state != MUONI_CONN_DEAD) ? 1 : MUON_ECLOSED;
}

#endif
