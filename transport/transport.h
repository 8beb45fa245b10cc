/*
 * The one interface between core and a transport. Core picks the ops table
 * once per connection (by endpoint scheme), so the hot path costs one
 * indirect call at most. A transport knows nothing of topics or streams: it
 * moves whole frames on a data path (stream frames, towards the side that
 * subscribed) and small control frames on a control channel. Connections
 * are bidirectional: either side may subscribe over one.
 *
 * A transport embeds `struct muoni_conn` at the start of its own
 * connection struct and `struct muoni_listener` in its listener.
 */
#ifndef MUONI_TRANSPORT_H
#define MUONI_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct muon_ctx;
struct muoni_conn;
struct muoni_listener;
struct muoni_endpoint;
struct muoni_frame_hdr;

struct muoni_transport_ops {
	const char *name;

	/* Open a listening endpoint; accepted connections are created by the
	 * transport and handed to core with muoni_conn_accepted(). */
	int (*listen)(struct muon_ctx *ctx, const struct muoni_endpoint *ep,
		      struct muoni_listener **out);
	void (*listener_close)(struct muoni_listener *l);

	/* Start connecting (subscriber side). Completion is reported with
	 * muoni_conn_transport_up() or muoni_conn_fail(). */
	int (*connect)(struct muon_ctx *ctx, const struct muoni_endpoint *ep,
		       struct muoni_conn **out);

	/* Release everything and free the connection. Never called while one
	 * of the transport's own functions is on the stack. */
	void (*destroy)(struct muoni_conn *c);

	/* Publisher side: write a prefix of the run of whole frames in
	 * `frames` (len bytes) towards the subscriber; set *taken to the bytes
	 * of whole frames accepted (0 when the peer's ring or socket is
	 * full). Returns 0, or a negative status when the link is broken. */
	int (*push)(struct muoni_conn *c, const uint8_t *frames, size_t len,
		    size_t *taken);

	/* Optional fast path, publisher side: write one DATA frame of
	 * `stream_id` and `seq` with the caller's payload, without going
	 * through the send log first. The header comes as values so that a
	 * transport can store it straight from registers (see ring_put() in
	 * shm.c for why that matters). Returns 1 when written, 0 when there
	 * is no room (core then falls back to push), or a negative status. */
	int (*push_msg)(struct muoni_conn *c, uint32_t stream_id, uint64_t seq,
			const void *payload, uint32_t plen);

	/* Receiving side: hand up to `budget` received frames to
	 * muoni_conn_rx(). Returns the number of DATA frames delivered, or a
	 * negative status when the link is broken. */
	int (*poll)(struct muoni_conn *c, unsigned budget);

	/* Optional: get ready to receive data on a connection we accepted
	 * (before our first SUBSCRIBE on it). Idempotent. */
	int (*rx_open)(struct muoni_conn *c);

	/* Send one whole control frame (HELLO, SUBSCRIBE, UNSUBSCRIBE,
	 * HEARTBEAT, CLOSE) on the control channel, either direction. Queued
	 * if the channel is busy; never blocks. */
	int (*ctrl_send)(struct muoni_conn *c, const void *frame, size_t len);

	/* Optional, from the control plane: 0, or a negative status if the
	 * connection broke in a way only the transport can see. */
	int (*check)(struct muoni_conn *c);

	/* Subscriber side: prepare for the application to sleep on the
	 * context fd. Returns 0, or MUON_EBUSY if frames are already there. */
	int (*arm)(struct muoni_conn *c);

	/* Optional, per context: called by the control plane on every run
	 * (for work not tied to one live connection), and once when the
	 * context is freed, after every connection and listener is gone. */
	void (*ctx_tick)(struct muon_ctx *ctx);
	void (*ctx_fini)(struct muon_ctx *ctx);

	/* Optional: memory core handed to push() (a send log) is about to be
	 * unmapped; forget any registration of it. */
	void (*mem_forget)(struct muon_ctx *ctx, const void *base, size_t len);
};

extern const struct muoni_transport_ops muoni_shm_ops;
extern const struct muoni_transport_ops muoni_tcp_ops;
extern const struct muoni_transport_ops muoni_verbs_ops;

/* Number of RDMA devices on this host (0 without rdma-core's providers):
 * whether a default verbs listener is worth opening. */
int muoni_verbs_device_count(void);

/* Up to `max` addresses of this host's interfaces that rdmacm binds to an
 * RDMA device (numeric, IPv6 without brackets): what a verbs listener on
 * a wildcard address is reachable at. Returns how many. */
int muoni_verbs_local_addrs(char (*out)[64], int max);

/* Every transport built in, for the per-context hooks. */
extern const struct muoni_transport_ops *const muoni_transports[];
extern const unsigned muoni_n_transports;

#endif
