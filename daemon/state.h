/*
 * muond's soft state: sessions with their leases, publications, topics and
 * watches. Pure logic: no I/O, no clock; time comes in as milliseconds on
 * any monotonic scale, and every Update to send is handed to a callback,
 * so that all of it can be driven by unit tests.
 */
#ifndef MUOND_STATE_H
#define MUOND_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/hash.h"
#include "proto/disc.h"

struct muond_limits {
	uint32_t lease_ms;
	uint32_t max_frame; /* a publication must fit an Update this big */
	uint32_t max_topics;
	uint32_t max_publications;
	uint32_t max_publications_per_session;
	uint32_t max_watches_per_client;
};

struct muond_state;
struct muond_session;
struct muond_topic;

/* One connection's view in the state: who it is, its watches and the
 * session it owns, if any. `conn` belongs to the caller. */
struct muond_client {
	struct muond_list link;
	struct muond_hash watches;
	struct muond_session *session;
	void *conn;
	uint64_t ctx_id;
	bool hello;
	char name[MUONI_DISC_NAME_MAX + 1];
	char host_id[MUONI_DISC_HOST_ID_MAX + 1];
	char label[160]; /* "name ctx_id@address" for WATCHERS */
};

struct muond_watch {
	struct muond_hnode by_id;
	struct muond_list in_topic;
	struct muond_client *client;
	struct muond_topic *topic;
	uint64_t id;
	bool prefix;
	uint64_t updates_sent;
};

/* Called once per Update for one watch, in the order of the changes. It
 * must not call back into the state. */
typedef void (*muond_push_fn)(void *arg, struct muond_watch *w,
			      Muon__Disc__Update__Kind kind,
			      const Muon__Disc__Publication *p,
			      const char *reason);

struct muond_stats {
	uint32_t sessions;
	uint32_t publications;
	uint32_t topics; /* topics with at least one publication */
	uint32_t watches;
	uint64_t updates_sent;
	uint64_t leases_expired;
};

struct muond_state *muond_state_new(const struct muond_limits *lim,
				    muond_push_fn push, void *arg);
void muond_state_free(struct muond_state *st);
void muond_state_stats(const struct muond_state *st, struct muond_stats *out);

struct muond_client *muond_client_new(struct muond_state *st, void *conn);
/* Record the Hello; a nonzero ctx_id takes over that session if one
 * exists (its lease is left as it is). */
void muond_client_hello(struct muond_state *st, struct muond_client *c,
			uint64_t ctx_id, const char *name, const char *host_id,
			const char *label);
/* Drops the client's watches; its session stays until its lease ends. */
void muond_client_free(struct muond_state *st, struct muond_client *c);

/*
 * Requests. Each returns 0 or the Muon__Disc__Error__Code to answer with
 * (non-fatal), a reason in `err`. Register is atomic: on error nothing
 * changed.
 */
int muond_register(struct muond_state *st, struct muond_client *c,
		   Muon__Disc__Publication *const *pubs, size_t n,
		   uint64_t now_ms, char *err, size_t errlen);
int muond_unregister(struct muond_state *st, struct muond_client *c,
		     const uint32_t *stream_ids, size_t n, uint64_t now_ms);
void muond_renew(struct muond_state *st, struct muond_client *c,
		 uint64_t now_ms);
int muond_watch_add(struct muond_state *st, struct muond_client *c,
		    uint64_t watch_id, const char *topic, bool prefix,
		    struct muond_watch **out, char *err, size_t errlen);
int muond_watch_remove(struct muond_state *st, struct muond_client *c,
		       uint64_t watch_id);

/* End every lease whose deadline is at or before `now_ms`. */
void muond_state_expire(struct muond_state *st, uint64_t now_ms);
/* The earliest lease deadline, UINT64_MAX when there is none. */
uint64_t muond_state_next_expiry(const struct muond_state *st);

/* Reading the state, for Snapshot and List. The callbacks see the stored
 * publication, lease_left_ms filled in where a time is given. */
typedef void (*muond_pub_fn)(void *arg, const Muon__Disc__Publication *p);
void muond_watch_snapshot(struct muond_state *st, const struct muond_watch *w,
			  muond_pub_fn fn, void *arg);
void muond_state_each_pub(struct muond_state *st, const char *topic,
			  uint64_t now_ms, muond_pub_fn fn, void *arg);
typedef void (*muond_topic_fn)(void *arg, const char *topic, uint32_t pubs,
			       uint32_t watchers);
void muond_state_each_topic(struct muond_state *st, muond_topic_fn fn,
			    void *arg);
typedef void (*muond_watch_fn)(void *arg, const struct muond_client *c,
			       const struct muond_watch *w, const char *topic);
void muond_state_each_watch(struct muond_state *st, muond_watch_fn fn,
			    void *arg);

#endif
