/*
 * muon: broker-less publish/subscribe for latency-critical systems.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 *
 * This header is the whole public API. It reads top to bottom as a manual.
 *
 * Model
 * -----
 * A *context* (muon_ctx_t) owns sockets, shared memory and (later) RDMA
 * resources and is driven by exactly one thread. A *publication*
 * (muon_pub_t) is one ordered stream of messages on a topic; every message
 * gets the next sequence number of that stream, starting at 1. A
 * *subscription* (muon_sub_t) receives every stream published on its topic;
 * each remote stream it receives is an *image*. A *connection* joins two
 * contexts and carries all streams between them, both ways: whichever side
 * connected, either may subscribe to the other's publications over it. Two
 * contexts that list each other as peers keep one connection.
 *
 * Threads
 * -------
 * Nothing in muon starts a thread. Every call that takes a context, or an
 * object created from it, must be made from the thread that drives that
 * context (one at a time; handing a context to another thread between calls
 * is fine). Callbacks run inside muon_ctx_poll() on that thread. Functions
 * that take no context (muon_strerror, muon_errmsg, muon_version,
 * muon_ctx_config_init) are safe from any thread.
 *
 * Errors
 * ------
 * Every call returns a status: 0 (MUON_OK) or a non-negative count on
 * success, a negative muon_status_t on failure. muon_strerror() names a
 * status; muon_errmsg() returns the calling thread's detail message for the
 * last failure: where it started and the context that callers added.
 * Output parameters are written only on success.
 *
 * Signals
 * -------
 * A peer holding a shared-memory ring could shrink it under our mapping.
 * muon installs a SIGBUS handler that turns that into a protocol error on
 * the connection instead of a crash; it chains to any handler installed
 * before it. Install your own SIGBUS handler before creating contexts, or
 * chain to the previous one.
 *
 * Ownership
 * ---------
 * Strings passed in are copied; nothing passed in must outlive the call,
 * except the callback argument pointers, which muon stores and hands back.
 * Every destroy function accepts NULL and does nothing then.
 */
#ifndef MUON_MUON_H
#define MUON_MUON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MUON_BUILDING_LIBRARY) && defined(__GNUC__)
#define MUON_API __attribute__((visibility("default")))
#else
#define MUON_API
#endif

/** Library version, also returned at run time by muon_version(). */
#define MUON_VERSION_MAJOR 0
#define MUON_VERSION_MINOR 1
#define MUON_VERSION_PATCH 0

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

/**
 * One status enum for the whole library. 0 is success; every error is
 * negative. MUON_EBACKPRESSURE and MUON_EAGAIN are retryable: the same call
 * may succeed later, after muon_ctx_poll() has made progress.
 */
typedef enum muon_status {
	MUON_OK = 0,
	MUON_EINVAL = -1,        /**< invalid argument */
	MUON_ENOMEM = -2,        /**< out of memory */
	MUON_EBACKPRESSURE = -3, /**< retryable: a subscriber is behind */
	MUON_EAGAIN = -4,        /**< retryable: resource busy, poll and retry */
	MUON_ESTATE = -5,        /**< call not valid in the object's state */
	MUON_ETOOBIG = -6,       /**< message or size above a configured limit */
	MUON_EIO = -7,           /**< operating system or device I/O error */
	MUON_EPROTO = -8,        /**< a peer broke the wire protocol */
	MUON_ENOTFOUND = -9,     /**< name, file or endpoint does not exist */
	MUON_ECONFIG = -10,      /**< bad configuration or environment value */
	MUON_ECLOSED = -11,      /**< peer or object closed */
	MUON_ETIMEDOUT = -12,    /**< operation timed out */
	MUON_EAUTH = -13,        /**< peer failed authentication */
	MUON_EUNSUPPORTED = -14, /**< not supported by this build or transport */
	MUON_EBUSY = -15,        /**< muon_ctx_arm(): work is pending, poll */
	MUON_ELIMIT = -16,       /**< a count limit (connections, streams) hit */
} muon_status_t;

/** Short constant description of a status ("back-pressure", ...). Never NULL. */
MUON_API const char *muon_strerror(int status);

/**
 * The calling thread's detail message for the most recent failed call: the
 * place the error started, then the context added by each caller, e.g.
 * "muon_pub_create: topic 'x': core/pub.c:120 send log of 1 GiB: out of
 * memory". Valid until the next muon call on this thread. Never NULL.
 */
MUON_API const char *muon_errmsg(void);

/** "MAJOR.MINOR.PATCH" of the loaded library. */
MUON_API const char *muon_version(void);

/* ------------------------------------------------------------------------ */
/* Context                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct muon_ctx muon_ctx_t;
typedef struct muon_pub muon_pub_t;
typedef struct muon_sub muon_sub_t;

/** Log severities for muon_ctx_config_t.log_level and the log callback. */
typedef enum muon_log_level {
	MUON_LOG_NONE = 0,
	MUON_LOG_ERROR = 1,
	MUON_LOG_WARN = 2,
	MUON_LOG_INFO = 3,
	MUON_LOG_DEBUG = 4,
} muon_log_level_t;

/**
 * A log level as MUON_LOG_LEVEL and the config file spell it: "none",
 * "error", "warn", "info", "debug"; "unknown" for any other value.
 * Constant, never NULL.
 */
MUON_API const char *muon_log_level_name(int level);

typedef void (*muon_log_fn)(void *arg, muon_log_level_t level,
			    const char *message);

/**
 * Context configuration. Always start from muon_ctx_config_init(), which
 * sets `size` and every default; new fields are only ever appended, and the
 * library reads only the first `size` bytes, so a program built against an
 * older header keeps working with a newer library.
 *
 * Environment overrides: muon_ctx_create() applies, after the struct, the
 * variables MUON_NAME, MUON_CTX_ID, MUON_LISTEN, MUON_PEERS, MUON_TRANSPORT,
 * MUON_RING_SIZE, MUON_SEND_LOG_SIZE, MUON_MAX_MSG_SIZE, MUON_LOG_LEVEL,
 * MUON_HEARTBEAT_MS, MUON_PEER_TIMEOUT_MS, MUON_RECONNECT_MS,
 * MUON_LINGER_MS, MUON_SHM_DIR, MUON_SECRET_FILE, MUON_DISCOVERY and
 * MUON_ADVERTISE (see
 * docs/configuration.md). A malformed
 * value fails creation with MUON_ECONFIG naming the variable; set
 * `ignore_env` to disable them.
 *
 * Endpoints are URIs: "verbs://ADDR:PORT" (RDMA through rdmacm: the IPv4
 * or [IPv6] address of an RDMA-capable interface, or a host name; port 0
 * picks a free port for listen), "tcp://HOST:PORT" (same forms) and
 * "shm://NAME" (same host; NAME is [A-Za-z0-9._-]{1,64}). Lists are
 * comma-separated. A static peer may name one context's endpoints on
 * several transports joined by '|' ("verbs://10.0.0.2:7000|tcp://10.0.0.2:
 * 7001"): the `transport` setting picks one of them at each (re)connect.
 */
typedef struct muon_ctx_config {
	size_t size;            /**< sizeof(muon_ctx_config_t), set by init */
	const char *name;       /**< for logs and tools; default "muon" */
	uint64_t ctx_id;        /**< this context's id; 0 = random (default) */
	const char *listen;     /**< endpoints to accept connections on */
	const char *peers;      /**< static peers: endpoints of contexts whose
				     publications this one wants */
	const char *transport;  /**< "auto" (default), "verbs", "shm" or "tcp":
				     "auto" uses, per peer, verbs when an RDMA
				     device reaches it, shm on this host, tcp
				     otherwise; a name forces that transport */
	uint32_t ring_size;     /**< receive ring bytes per connection, power of
				     two from 64 KiB to 256 MiB, default 8 MiB */
	uint32_t send_log_size; /**< default send log bytes per publication,
				     power of two, default 8 MiB */
	uint32_t max_msg_size;  /**< largest payload, default 64 KiB; must be at
				     most send_log_size/4 and ring_size/4 */
	uint32_t heartbeat_ms;  /**< idle heartbeat period, default 1000 */
	uint32_t peer_timeout_ms; /**< silence before a peer is declared dead,
				       default 10000 */
	uint32_t reconnect_ms;  /**< first reconnect delay to a static peer,
				     doubled up to 32x, default 100 */
	uint32_t linger_ms;     /**< how long destroy keeps flushing unsent data
				     to live subscribers, default 2000 */
	muon_log_level_t log_level; /**< default MUON_LOG_WARN */
	muon_log_fn log_fn;     /**< NULL = write lines to stderr */
	void *log_arg;
	int ignore_env;         /**< nonzero: do not read MUON_* variables */
	const char *shm_dir;    /**< where shm rings live, default "/dev/shm" */
	const char *secret_file; /**< cluster secret (at least 16 bytes, not
				      readable by group or others) that
				      authenticates verbs connections and
				      discovery sessions; NULL =
				      unauthenticated (a warning is logged) */
	const char *discovery;  /**< discovery daemons (muond): "HOST[:PORT]"
				     or "tcp://HOST:PORT", comma-separated,
				     port 7440 by default. When set, the
				     context registers its publications with
				     every daemon, watches the topics it
				     subscribes to, and connects to the
				     publishers they report (static `peers`
				     still apply). NULL = static peers only.
				     See docs/discovery.md. */
	const char *advertise;  /**< endpoints registered for this context's
				     publications; NULL = the listen
				     endpoints, a wildcard address (0.0.0.0,
				     [::]) replaced by the address this host
				     uses to reach each daemon. With
				     `discovery` set and `listen` NULL, the
				     context listens on shm://<generated> and
				     tcp://0.0.0.0:0. */
} muon_ctx_config_t;

/** Fill `cfg` with defaults and set cfg->size. `cfg` must not be NULL. */
MUON_API void muon_ctx_config_init(muon_ctx_config_t *cfg);

/**
 * Create a context: validate the configuration, open the listen endpoints,
 * start connecting to static peers (connection completes inside
 * muon_ctx_poll()), and remove shm ring files left by crashed processes.
 *
 * @param cfg  configuration, or NULL for defaults (plus environment)
 * @param out  receives the context on success
 * @return MUON_OK; MUON_EINVAL (out NULL, cfg->size too small),
 *         MUON_ECONFIG (bad value or endpoint), MUON_EIO (cannot listen,
 *         e.g. address in use), MUON_ENOMEM.
 */
MUON_API int muon_ctx_create(const muon_ctx_config_t *cfg, muon_ctx_t **out);

/**
 * Destroy a context: keep flushing data that subscribers have not yet
 * received for up to linger_ms, then close every publication, subscription
 * and connection and free everything. Callbacks are not called. NULL-safe.
 */
MUON_API void muon_ctx_destroy(muon_ctx_t *ctx);

/** This context's id: the publisher_id its publications carry. */
MUON_API uint64_t muon_ctx_id(const muon_ctx_t *ctx);

/**
 * The actual address of listen endpoint number `index` (0-based, in the
 * order given), with any port 0 resolved, e.g. "tcp://127.0.0.1:40123".
 * @return MUON_OK; MUON_EINVAL (NULL, or buf too small: needs 128 bytes
 *         at most), MUON_ENOTFOUND (no such index).
 */
MUON_API int muon_ctx_listen_endpoint(const muon_ctx_t *ctx, unsigned index,
				      char *buf, size_t len);

/**
 * Do all pending work: deliver up to `budget` received messages to
 * subscription callbacks (0 means a default of 256), push queued data to
 * subscribers, and, at most every few hundred microseconds or after
 * muon_ctx_arm(), accept connections, process control messages, timers and
 * reconnects. Never blocks. No system call, allocation or lock happens per
 * message on the shm path.
 *
 * Poll is the publisher's duty cycle too. Over tcp a publish on an idle
 * connection is sent at once, inside the call; messages published while
 * the connection is busy (it sent in this poll interval, or the poll
 * before flushed a batch) are held back in the send log and leave
 * together, with one send(), at the next muon_ctx_poll() or
 * muon_ctx_arm() at the latest (or with a later publish once about 20 us
 * have passed, or once 64 KiB, at most max_msg_size, of a stream wait). A
 * thread that publishes should therefore keep polling, as it must anyway
 * to be told of back-pressure and slow subscribers. It should also publish
 * everything it has to send before it polls: a poll after every publish
 * makes each tcp message a send() of its own, several microseconds each
 * (on loopback about 150-200 k messages/s in all), where publishing a
 * backlog first sends it in two.
 *
 * @return the number of messages delivered and other work items done (0 when
 *         idle); MUON_EINVAL for a NULL ctx; MUON_ESTATE when called from a
 *         callback of the same context.
 */
MUON_API int muon_ctx_poll(muon_ctx_t *ctx, unsigned budget);

/**
 * A file descriptor that becomes readable when muon_ctx_poll() has work.
 * Use it with poll/epoll/libev: call muon_ctx_arm(); if it returns MUON_OK,
 * wait on the fd, then call muon_ctx_poll() until it returns 0 and arm
 * again. Owned by the context; do not read from or close it.
 * @return the fd (>= 0), or MUON_EINVAL.
 */
MUON_API int muon_ctx_fd(muon_ctx_t *ctx);

/**
 * Prepare to block on muon_ctx_fd(): ask shared-memory publishers to signal
 * the fd when they write, and push what tcp held back for coalescing (see
 * muon_ctx_poll()). From a successful arm until the next muon_ctx_poll(),
 * nothing is held back: messages published meanwhile (from another event
 * source, say) are sent inside the publish call, so the thread may go back
 * to sleep without polling. Busy-polling threads never need this.
 * @return MUON_OK: safe to wait; MUON_EBUSY: messages are already pending,
 *         call muon_ctx_poll() first; MUON_EINVAL.
 */
MUON_API int muon_ctx_arm(muon_ctx_t *ctx);

/**
 * Counters of a context. Plain integers updated by the context's thread
 * without atomics; read them through muon_ctx_counters() on that thread.
 */
typedef struct muon_counters {
	size_t size;              /**< set by the caller to sizeof */
	uint64_t msgs_sent;       /**< messages accepted by publish/commit */
	uint64_t bytes_sent;      /**< payload bytes accepted */
	uint64_t msgs_received;   /**< messages delivered to callbacks */
	uint64_t bytes_received;  /**< payload bytes delivered */
	uint64_t backpressure;    /**< publish calls refused with back-pressure */
	uint64_t losses;          /**< loss events reported */
	uint64_t msgs_lost;       /**< messages covered by those loss events */
	uint64_t connects;        /**< connections established */
	uint64_t disconnects;     /**< connections closed */
	uint64_t slow_drops;      /**< subscribers cut loose as too slow */
	uint64_t proto_errors;    /**< frames or control messages rejected */
	uint64_t connect_failures; /**< connection attempts that failed */
	uint64_t replays;         /**< streams started from the send log */
	uint64_t auth_rejects;    /**< connection requests refused because their
				       authentication tag was missing or wrong */
	uint64_t disc_connects;   /**< sessions established with discovery
				       daemons */
	uint64_t disc_errors;     /**< errors from or about discovery daemons
				       (refusals, bad messages, bad entries) */
} muon_counters_t;

/**
 * Copy the counters into `out`; set out->size = sizeof(*out) first (fields
 * beyond `size` are not written).
 * @return MUON_OK; MUON_EINVAL (NULL, or size too small).
 */
MUON_API int muon_ctx_counters(const muon_ctx_t *ctx, muon_counters_t *out);

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum muon_event_type {
	MUON_EVENT_IMAGE_UP = 1,     /**< a stream started arriving */
	MUON_EVENT_IMAGE_DOWN = 2,   /**< a stream stopped (see reason) */
	MUON_EVENT_LOSS = 3,         /**< messages [from_seq, to_seq] are gone */
	MUON_EVENT_BACKPRESSURE = 4, /**< a publication started refusing */
	MUON_EVENT_ERROR = 5,        /**< an error not tied to a call */
	MUON_EVENT_SLOW_DROP = 6,    /**< a slow subscriber was cut loose */
} muon_event_type_t;

/** Why an image went down (muon_event_t.reason for IMAGE_DOWN). */
typedef enum muon_down_reason {
	MUON_DOWN_CLOSED = 1,       /**< the publisher closed the stream */
	MUON_DOWN_DISCONNECTED = 2, /**< the connection broke or timed out */
	MUON_DOWN_SLOW = 3,         /**< the publisher cut us loose as too slow */
	MUON_DOWN_PROTOCOL = 4,     /**< the peer broke the protocol */
} muon_down_reason_t;

/**
 * An event. Pointers are valid only during the callback. For LOSS,
 * [from_seq, to_seq] is inclusive and the stream continues at to_seq + 1.
 * For IMAGE_UP, from_seq is the first sequence that will be delivered.
 * For IMAGE_DOWN, to_seq is the last sequence delivered (0 if none).
 */
typedef struct muon_event {
	muon_event_type_t type;
	const char *topic;     /**< topic, or NULL for context events */
	uint64_t publisher_id; /**< publishing context id (0 if none) */
	uint32_t stream_id;    /**< stream within that publisher (0 if none) */
	uint64_t from_seq;
	uint64_t to_seq;
	int reason;            /**< muon_down_reason_t, or a muon_status_t */
	const char *detail;    /**< human-readable explanation, never NULL */
} muon_event_t;

typedef void (*muon_event_fn)(void *arg, const muon_event_t *event);

/**
 * The enum's own name without its prefix, for logs: "IMAGE_UP",
 * "IMAGE_DOWN", "LOSS", "BACKPRESSURE", "ERROR", "SLOW_DROP"; "unknown" for
 * any other value. Constant, never NULL.
 */
MUON_API const char *muon_event_name(int type);

/**
 * Name of an IMAGE_DOWN reason (muon_event_t.reason): "CLOSED",
 * "DISCONNECTED", "SLOW", "PROTOCOL"; "unknown" for any other value.
 * Constant, never NULL.
 */
MUON_API const char *muon_down_reason_name(int reason);

/* ------------------------------------------------------------------------ */
/* Publications                                                             */
/* ------------------------------------------------------------------------ */

/** What a publication does when a subscriber cannot keep up. */
typedef enum muon_slow_policy {
	/** publish returns MUON_EBACKPRESSURE while the slowest subscriber is
	 *  a whole send log behind (default). */
	MUON_SLOW_BACKPRESSURE = 0,
	/** never refuse: a subscriber that would lose unsent data, or that has
	 *  taken nothing for slow_timeout_ms, is disconnected; it reconnects
	 *  and replays what the send log still holds, or gets a LOSS event. */
	MUON_SLOW_DROP = 1,
} muon_slow_policy_t;

/** Publication options; start from muon_pub_config_init(). Growable like
 *  muon_ctx_config_t. */
typedef struct muon_pub_config {
	size_t size;
	uint32_t send_log_size;     /**< 0 = context default; power of two */
	muon_slow_policy_t slow_policy;
	uint32_t slow_timeout_ms;   /**< MUON_SLOW_DROP only, default 1000 */
	muon_event_fn event_fn;     /**< BACKPRESSURE / SLOW_DROP, may be NULL */
	void *event_arg;
} muon_pub_config_t;

MUON_API void muon_pub_config_init(muon_pub_config_t *cfg);

/**
 * Create a publication on `topic` (1 to 255 bytes, any bytes but NUL).
 * Subscribers connected now or later that subscribe to the topic receive it.
 * @param cfg NULL for defaults.
 * @return MUON_OK; MUON_EINVAL, MUON_ETOOBIG (topic too long), MUON_ENOMEM,
 *         MUON_ELIMIT (too many publications in this context).
 */
MUON_API int muon_pub_create(muon_ctx_t *ctx, const char *topic,
			     const muon_pub_config_t *cfg, muon_pub_t **out);

/**
 * Close a publication. Data already accepted keeps flowing to connected
 * subscribers (for up to the context's linger_ms) before they see
 * IMAGE_DOWN with MUON_DOWN_CLOSED. NULL-safe.
 */
MUON_API void muon_pub_destroy(muon_pub_t *pub);

/**
 * Copy `len` bytes (0 allowed, `data` may then be NULL) into the send log
 * and send them to every subscriber (over tcp, possibly at the next
 * muon_ctx_poll(): see there).
 * @return the message's sequence number (>= 1); MUON_EBACKPRESSURE
 *         (retryable: poll, then call again), MUON_ETOOBIG (len >
 *         max_msg_size), MUON_EINVAL, MUON_ESTATE (a claim is open).
 */
MUON_API int64_t muon_publish(muon_pub_t *pub, const void *data, size_t len);

/** One message of muon_publishv(). */
typedef struct muon_iov {
	const void *data; /**< may be NULL when len is 0 */
	size_t len;
} muon_iov_t;

/**
 * Publish a batch: msgs[0] .. msgs[n-1], in that order, with consecutive
 * sequence numbers, each accepted or refused exactly as by muon_publish().
 * The whole batch goes into the send log before any of it is handed to a
 * transport, so it travels together: over tcp in one send(), over verbs in
 * one RDMA write per subscriber (one work request, one completion at the
 * subscriber, as long as it fits the ring's free space), where n calls of
 * muon_publish() would each post their own. With only shm subscribers each
 * message goes straight into the ring, as by muon_publish().
 *
 * The first refused message ends the batch; the ones before it are
 * published, and calling again with the rest returns why it was refused.
 * Nothing is read from `msgs` after the call returns.
 * @param first_seq set to the first message's sequence number when the
 *        call returns 1 or more; may be NULL.
 * @return the number of messages published, 1 to n; 0 when n is 0; or,
 *         when the first message is refused and nothing was published,
 *         the status muon_publish() gives (MUON_EBACKPRESSURE,
 *         MUON_ETOOBIG, MUON_ESTATE), or MUON_EINVAL: pub NULL, msgs NULL
 *         with n above 0, n above INT_MAX, or a message with NULL data
 *         and a non-zero len (refused like any other: the ones before it
 *         are published).
 */
MUON_API int muon_publishv(muon_pub_t *pub, const muon_iov_t *msgs,
			   unsigned n, int64_t *first_seq);

/**
 * Zero-copy publish. muon_claim() reserves `len` bytes in the send log and
 * sets *buf to them; fill them, then muon_commit() to send (it returns the
 * sequence number) or muon_abort() to drop the claim. One claim may be open
 * per publication; no other call on that publication is allowed until it
 * is committed or aborted.
 * @return claim: MUON_OK, MUON_EBACKPRESSURE, MUON_ETOOBIG, MUON_EINVAL,
 *         MUON_ESTATE (a claim is already open); commit: seq >= 1 or
 *         MUON_ESTATE (no claim open); abort: MUON_OK or MUON_ESTATE.
 */
MUON_API int muon_claim(muon_pub_t *pub, size_t len, void **buf);
MUON_API int64_t muon_commit(muon_pub_t *pub);
MUON_API int muon_abort(muon_pub_t *pub);

/** Stream id of this publication (unique within its context). */
MUON_API uint32_t muon_pub_stream_id(const muon_pub_t *pub);

/** Number of subscriber connections currently receiving this stream. */
MUON_API int muon_pub_subscribers(const muon_pub_t *pub);

/* ------------------------------------------------------------------------ */
/* Subscriptions                                                            */
/* ------------------------------------------------------------------------ */

/** A received message. Pointers are valid only during the callback; `data`
 *  points into the receive ring (zero copy). */
typedef struct muon_msg {
	const void *data;
	size_t len;
	const char *topic;
	uint64_t publisher_id;
	uint32_t stream_id;
	uint64_t seq;
} muon_msg_t;

typedef void (*muon_msg_fn)(void *arg, const muon_msg_t *msg);

/** Where a new subscription starts in each stream. */
typedef enum muon_start {
	MUON_START_LATEST = 0,   /**< next message published (default) */
	MUON_START_EARLIEST = 1, /**< oldest message still in the send log */
	MUON_START_SEQ = 2,      /**< start_seq; LOSS event if already gone */
} muon_start_t;

/** Subscription options; start from muon_sub_config_init(). Growable. */
typedef struct muon_sub_config {
	size_t size;
	muon_msg_fn msg_fn;      /**< required */
	void *msg_arg;
	muon_event_fn event_fn;  /**< IMAGE_UP/DOWN, LOSS, ERROR; may be NULL */
	void *event_arg;
	muon_start_t start;
	uint64_t start_seq;      /**< MUON_START_SEQ only, >= 1 */
} muon_sub_config_t;

MUON_API void muon_sub_config_init(muon_sub_config_t *cfg);

/**
 * Subscribe to `topic` on every connected and future peer.
 * One subscription per topic per context; a second one on the same topic
 * fails with MUON_ESTATE (use another context for an independent cursor).
 * @return MUON_OK; MUON_EINVAL (no msg_fn, start_seq 0 with START_SEQ),
 *         MUON_ETOOBIG, MUON_ESTATE, MUON_ENOMEM.
 */
MUON_API int muon_sub_create(muon_ctx_t *ctx, const char *topic,
			     const muon_sub_config_t *cfg, muon_sub_t **out);

/** Unsubscribe and free; no callback runs after it returns. May be called
 *  from within this subscription's own callback. NULL-safe. */
MUON_API void muon_sub_destroy(muon_sub_t *sub);

/** Number of images (streams) currently up for this subscription. */
MUON_API int muon_sub_images(const muon_sub_t *sub);

#ifdef __cplusplus
}
#endif

#endif /* MUON_MUON_H */
