/*
 * muond's soft state: see state.h.
 *
 * Indexes: sessions by ctx_id; each session's publications by stream_id;
 * topics by name, each holding its publications, its exact watches and
 * the prefix watches whose prefix is that name. A change on topic T then
 * visits T's exact watches and, for every length L for which some prefix
 * watch exists, the prefix watches stored under T's first L bytes: one
 * hash lookup per length, whatever the number of watches.
 *
 * Leases all last lease_ms, so a renewed session always goes to the tail
 * of one list kept in deadline order: renewal and expiry are O(1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/state.h"

struct muond_topic {
	struct muond_hnode by_name;
	struct muond_list pubs, exact, prefix;
	uint32_t n_pubs, n_exact, n_prefix;
	uint32_t pins; /* a Register in progress is about to use it */
	size_t len;
	char name[]; /* NUL-terminated, `len` bytes */
};

struct muond_pub {
	struct muond_hnode by_stream;
	struct muond_list in_topic, in_session;
	struct muond_session *sess;
	struct muond_topic *topic;
	Muon__Disc__Publication pb; /* every string owned */
};

struct muond_session {
	struct muond_hnode by_ctx;
	struct muond_list in_lease;
	struct muond_hash pubs;
	struct muond_list pub_list;
	struct muond_client *owner;
	uint64_t ctx_id;
	uint64_t deadline;
};

struct muond_state {
	struct muond_limits lim;
	muond_push_fn push;
	void *arg;
	struct muond_hash sessions, topics;
	struct muond_list leases; /* sessions by deadline, earliest first */
	struct muond_list clients;
	/* How many prefix watches have a prefix of each length. */
	uint32_t prefix_len[MUONI_DISC_TOPIC_MAX + 1];
	uint32_t n_sessions, n_pubs, n_topics, n_watches;
	uint64_t updates_sent, leases_expired;
};

/* ------------------------------------------------------------ topics */

static struct muond_topic *topic_find_n(const struct muond_state *st,
					const char *name, size_t len,
					uint64_t h)
{
	struct muond_hnode *e;

	for (e = muond_hash_chain(&st->topics, h); e; e = e->next) {
		struct muond_topic *t =
			MUOND_CONTAINER(e, struct muond_topic, by_name);

		if (e->hash == h && t->len == len &&
		    !memcmp(t->name, name, len))
			return t;
	}
	return NULL;
}

static struct muond_topic *topic_find(const struct muond_state *st,
				      const char *name)
{
	size_t len = strlen(name);

	return topic_find_n(st, name, len, muond_hash_str(name, len));
}

static struct muond_topic *topic_get(struct muond_state *st, const char *name)
{
	size_t len = strlen(name);
	uint64_t h = muond_hash_str(name, len);
	struct muond_topic *t = topic_find_n(st, name, len, h);

	if (t)
		return t;
	t = calloc(1, sizeof(*t) + len + 1);
	if (!t)
		return NULL;
	memcpy(t->name, name, len);
	t->len = len;
	muond_list_init(&t->pubs);
	muond_list_init(&t->exact);
	muond_list_init(&t->prefix);
	if (muond_hash_insert(&st->topics, &t->by_name, h)) {
		free(t);
		return NULL;
	}
	return t;
}

/* Entries live only while something refers to them. */
static void topic_release(struct muond_state *st, struct muond_topic *t)
{
	if (!t || t->n_pubs || t->n_exact || t->n_prefix || t->pins)
		return;
	muond_hash_remove(&st->topics, &t->by_name);
	free(t);
}

/* ------------------------------------------------------------ pushes */

static void push_one(struct muond_state *st, struct muond_watch *w,
		     Muon__Disc__Update__Kind kind,
		     const Muon__Disc__Publication *p, const char *reason)
{
	w->updates_sent++;
	st->updates_sent++;
	st->push(st->arg, w, kind, p, reason);
}

/* Every watch that matches `p`'s topic: exact ones, then prefixes from the
 * shortest. */
static void push_change(struct muond_state *st, const struct muond_pub *p,
			Muon__Disc__Update__Kind kind, const char *reason)
{
	const struct muond_topic *t = p->topic;
	struct muond_list *l, *next;
	uint64_t h = MUOND_FNV_BASIS;
	size_t len;

	for (l = t->exact.next; l != &t->exact; l = next) {
		next = l->next;
		push_one(st, MUOND_CONTAINER(l, struct muond_watch, in_topic),
			 kind, &p->pb, reason);
	}
	for (len = 0; len <= t->len && len <= MUONI_DISC_TOPIC_MAX; len++) {
		const struct muond_topic *pt;

		if (len)
			h = muond_fnv_step(h, (unsigned char)t->name[len - 1]);
		if (!st->prefix_len[len])
			continue;
		pt = topic_find_n(st, t->name, len, h);
		if (!pt)
			continue;
		for (l = pt->prefix.next; l != &pt->prefix; l = next) {
			next = l->next;
			push_one(st,
				 MUOND_CONTAINER(l, struct muond_watch,
						 in_topic),
				 kind, &p->pb, reason);
		}
	}
}

/* ------------------------------------------------------------ publications */

/* protobuf-c's init points empty strings at a shared constant. */
static void str_free(char *s)
{
	if (s != protobuf_c_empty_string)
		free(s);
}

static void pb_clear(Muon__Disc__Publication *pb)
{
	size_t i;

	str_free(pb->topic);
	str_free(pb->host_id);
	str_free(pb->ctx_name);
	for (i = 0; i < pb->n_endpoints; i++)
		free(pb->endpoints[i]);
	free(pb->endpoints);
	muon__disc__publication__init(pb);
}

/* A deep copy of `src` with the session's identity written over what the
 * client sent: clients cannot register under another context's name. */
static int pb_copy(Muon__Disc__Publication *dst,
		   const Muon__Disc__Publication *src,
		   const struct muond_client *c)
{
	size_t i;

	muon__disc__publication__init(dst);
	dst->stream_id = src->stream_id;
	dst->ctx_id = c->ctx_id;
	dst->topic = strdup(src->topic);
	dst->host_id = strdup(c->host_id);
	dst->ctx_name = strdup(c->name);
	dst->endpoints = calloc(src->n_endpoints ? src->n_endpoints : 1,
				sizeof(char *));
	if (!dst->topic || !dst->host_id || !dst->ctx_name || !dst->endpoints)
		goto free_copy;
	for (i = 0; i < src->n_endpoints; i++) {
		dst->endpoints[i] = strdup(src->endpoints[i]);
		if (!dst->endpoints[i])
			goto free_copy;
		dst->n_endpoints = i + 1;
	}
	return 0;
free_copy:
	pb_clear(dst);
	return -1;
}

static bool pb_same(const Muon__Disc__Publication *a,
		    const Muon__Disc__Publication *b)
{
	size_t i;

	if (strcmp(a->topic, b->topic) || strcmp(a->host_id, b->host_id) ||
	    strcmp(a->ctx_name, b->ctx_name) ||
	    a->n_endpoints != b->n_endpoints)
		return false;
	for (i = 0; i < a->n_endpoints; i++)
		if (strcmp(a->endpoints[i], b->endpoints[i]))
			return false;
	return true;
}

static struct muond_pub *pub_find(const struct muond_session *s, uint32_t id)
{
	uint64_t h = muond_hash_u64(id);
	struct muond_hnode *e;

	for (e = muond_hash_chain(&s->pubs, h); e; e = e->next) {
		struct muond_pub *p =
			MUOND_CONTAINER(e, struct muond_pub, by_stream);

		if (p->pb.stream_id == id)
			return p;
	}
	return NULL;
}

static void pub_attach_topic(struct muond_state *st, struct muond_pub *p,
			     struct muond_topic *t)
{
	p->topic = t;
	muond_list_add_tail(&t->pubs, &p->in_topic);
	if (!t->n_pubs++)
		st->n_topics++;
}

static void pub_detach_topic(struct muond_state *st, struct muond_pub *p)
{
	struct muond_topic *t = p->topic;

	muond_list_del(&p->in_topic);
	p->topic = NULL;
	if (!--t->n_pubs)
		st->n_topics--;
	topic_release(st, t);
}

/* Tell the watchers, then forget it. */
static void pub_remove(struct muond_state *st, struct muond_pub *p,
		       const char *reason)
{
	push_change(st, p, MUON__DISC__UPDATE__KIND__DOWN, reason);
	pub_detach_topic(st, p);
	muond_hash_remove(&p->sess->pubs, &p->by_stream);
	muond_list_del(&p->in_session);
	st->n_pubs--;
	pb_clear(&p->pb);
	free(p);
}

/* ------------------------------------------------------------ sessions */

static struct muond_session *session_find(const struct muond_state *st,
					  uint64_t ctx_id)
{
	uint64_t h = muond_hash_u64(ctx_id);
	struct muond_hnode *e;

	for (e = muond_hash_chain(&st->sessions, h); e; e = e->next) {
		struct muond_session *s =
			MUOND_CONTAINER(e, struct muond_session, by_ctx);

		if (s->ctx_id == ctx_id)
			return s;
	}
	return NULL;
}

/* Keep `leases` in deadline order. With one lease length for all, the
 * new deadline is the latest and this stops at the first step. */
static void lease_set(struct muond_state *st, struct muond_session *s,
		      uint64_t deadline)
{
	struct muond_list *pos;

	if (s->in_lease.next != &s->in_lease)
		muond_list_del(&s->in_lease);
	s->deadline = deadline;
	pos = st->leases.prev;
	while (pos != &st->leases &&
	       MUOND_CONTAINER(pos, struct muond_session, in_lease)->deadline >
		       deadline)
		pos = pos->prev;
	muond_list_add_after(pos, &s->in_lease);
}

static void session_own(struct muond_session *s, struct muond_client *c)
{
	if (s->owner == c)
		return;
	if (s->owner)
		s->owner->session = NULL;
	s->owner = c;
	c->session = s;
}

static struct muond_session *session_new(struct muond_state *st,
					 struct muond_client *c,
					 uint64_t now_ms)
{
	struct muond_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ctx_id = c->ctx_id;
	muond_list_init(&s->in_lease);
	muond_list_init(&s->pub_list);
	if (muond_hash_insert(&st->sessions, &s->by_ctx,
			      muond_hash_u64(s->ctx_id))) {
		free(s);
		return NULL;
	}
	st->n_sessions++;
	lease_set(st, s, now_ms + st->lim.lease_ms);
	session_own(s, c);
	return s;
}

static void session_free(struct muond_state *st, struct muond_session *s,
			 const char *reason)
{
	while (!muond_list_empty(&s->pub_list))
		pub_remove(st,
			   MUOND_CONTAINER(s->pub_list.next, struct muond_pub,
					   in_session),
			   reason);
	if (s->owner)
		s->owner->session = NULL;
	muond_list_del(&s->in_lease);
	muond_hash_remove(&st->sessions, &s->by_ctx);
	muond_hash_fini(&s->pubs);
	st->n_sessions--;
	free(s);
}

/* ------------------------------------------------------------ state */

struct muond_state *muond_state_new(const struct muond_limits *lim,
				    muond_push_fn push, void *arg)
{
	struct muond_state *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->lim = *lim;
	st->push = push;
	st->arg = arg;
	muond_list_init(&st->leases);
	muond_list_init(&st->clients);
	return st;
}

void muond_state_free(struct muond_state *st)
{
	if (!st)
		return;
	while (!muond_list_empty(&st->clients))
		muond_client_free(st, MUOND_CONTAINER(st->clients.next,
						      struct muond_client,
						      link));
	/* Nobody is left to tell. */
	st->push = NULL;
	while (!muond_list_empty(&st->leases)) {
		struct muond_session *s = MUOND_CONTAINER(
			st->leases.next, struct muond_session, in_lease);

		while (!muond_list_empty(&s->pub_list)) {
			struct muond_pub *p = MUOND_CONTAINER(
				s->pub_list.next, struct muond_pub,
				in_session);

			pub_detach_topic(st, p);
			muond_hash_remove(&s->pubs, &p->by_stream);
			muond_list_del(&p->in_session);
			pb_clear(&p->pb);
			free(p);
		}
		muond_list_del(&s->in_lease);
		muond_hash_remove(&st->sessions, &s->by_ctx);
		muond_hash_fini(&s->pubs);
		free(s);
	}
	muond_hash_fini(&st->sessions);
	muond_hash_fini(&st->topics);
	free(st);
}

void muond_state_stats(const struct muond_state *st, struct muond_stats *out)
{
	out->sessions = st->n_sessions;
	out->publications = st->n_pubs;
	out->topics = st->n_topics;
	out->watches = st->n_watches;
	out->updates_sent = st->updates_sent;
	out->leases_expired = st->leases_expired;
}

/* ------------------------------------------------------------ clients */

struct muond_client *muond_client_new(struct muond_state *st, void *conn)
{
	struct muond_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->conn = conn;
	muond_list_add_tail(&st->clients, &c->link);
	return c;
}

void muond_client_hello(struct muond_state *st, struct muond_client *c,
			uint64_t ctx_id, const char *name, const char *host_id,
			const char *label)
{
	struct muond_session *s;

	c->hello = true;
	c->ctx_id = ctx_id;
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->host_id, sizeof(c->host_id), "%s", host_id);
	snprintf(c->label, sizeof(c->label), "%s", label);
	if (ctx_id && (s = session_find(st, ctx_id)))
		session_own(s, c);
}

static void watch_free(struct muond_state *st, struct muond_watch *w)
{
	struct muond_topic *t = w->topic;

	muond_list_del(&w->in_topic);
	if (w->prefix) {
		t->n_prefix--;
		st->prefix_len[t->len]--;
	} else {
		t->n_exact--;
	}
	muond_hash_remove(&w->client->watches, &w->by_id);
	st->n_watches--;
	free(w);
	topic_release(st, t);
}

void muond_client_free(struct muond_state *st, struct muond_client *c)
{
	struct muond_hnode *e, *tmp;
	size_t i;

	if (!c)
		return;
	MUOND_HASH_EACH(&c->watches, e, tmp, i)
		watch_free(st, MUOND_CONTAINER(e, struct muond_watch, by_id));
	muond_hash_fini(&c->watches);
	if (c->session)
		c->session->owner = NULL;
	muond_list_del(&c->link);
	free(c);
}

/* ------------------------------------------------------------ requests */

static int cmp_stream(const void *a, const void *b)
{
	uint32_t x = (*(Muon__Disc__Publication *const *)a)->stream_id;
	uint32_t y = (*(Muon__Disc__Publication *const *)b)->stream_id;

	return x < y ? -1 : x > y;
}

static int cmp_topic(const void *a, const void *b)
{
	return strcmp((*(Muon__Disc__Publication *const *)a)->topic,
		      (*(Muon__Disc__Publication *const *)b)->topic);
}

/* Room an Update needs besides its publication: Frame and Message
 * headers, MAC, watch id, kind and the longest reason. */
#define MUOND_UPDATE_OVERHEAD 128u

/* Every check of a Register, with nothing changed yet. */
static int register_check(struct muond_state *st, struct muond_client *c,
			  Muon__Disc__Publication *const *pubs, size_t n,
			  Muon__Disc__Publication **sorted, char *err,
			  size_t errlen)
{
	struct muond_session *s = c->session;
	size_t i, new_pubs = 0, new_topics = 0;

	for (i = 0; i < n; i++) {
		Muon__Disc__Publication v = *pubs[i];

		v.ctx_id = c->ctx_id;
		v.host_id = c->host_id;
		v.ctx_name = c->name;
		v.lease_left_ms = 0;
		v.daemons = 0;
		if (muoni_disc_pub_check(&v, err, errlen))
			return MUON__DISC__ERROR__CODE__BAD_REQUEST;
		if (muon__disc__publication__get_packed_size(&v) +
			    MUOND_UPDATE_OVERHEAD > st->lim.max_frame) {
			snprintf(err, errlen, "topic '%.64s' stream %u: too "
				 "big for a %u-byte frame", v.topic,
				 v.stream_id, st->lim.max_frame);
			return MUON__DISC__ERROR__CODE__BAD_REQUEST;
		}
		sorted[i] = pubs[i];
		if (!s || !pub_find(s, v.stream_id))
			new_pubs++;
	}
	qsort(sorted, n, sizeof(*sorted), cmp_stream);
	for (i = 1; i < n; i++)
		if (sorted[i]->stream_id == sorted[i - 1]->stream_id) {
			snprintf(err, errlen, "stream %u twice in one Register",
				 sorted[i]->stream_id);
			return MUON__DISC__ERROR__CODE__BAD_REQUEST;
		}
	/* Topics that would gain their first publication; a topic emptied
	 * by a move is not credited, so this may refuse slightly early. */
	qsort(sorted, n, sizeof(*sorted), cmp_topic);
	for (i = 0; i < n; i++) {
		const struct muond_topic *t;

		if (i && !strcmp(sorted[i]->topic, sorted[i - 1]->topic))
			continue;
		t = topic_find(st, sorted[i]->topic);
		if (!t || !t->n_pubs)
			new_topics++;
	}
	if ((uint64_t)st->n_pubs + new_pubs > st->lim.max_publications) {
		snprintf(err, errlen, "%zu new publications: the daemon's "
			 "limit of %u would be passed", new_pubs,
			 st->lim.max_publications);
		return MUON__DISC__ERROR__CODE__LIMIT;
	}
	if ((uint64_t)(s ? s->pubs.n : 0) + new_pubs >
	    st->lim.max_publications_per_session) {
		snprintf(err, errlen, "%zu new publications: the limit of %u "
			 "per session would be passed", new_pubs,
			 st->lim.max_publications_per_session);
		return MUON__DISC__ERROR__CODE__LIMIT;
	}
	if ((uint64_t)st->n_topics + new_topics > st->lim.max_topics) {
		snprintf(err, errlen, "%zu new topics: the daemon's limit of "
			 "%u would be passed", new_topics, st->lim.max_topics);
		return MUON__DISC__ERROR__CODE__LIMIT;
	}
	return 0;
}

int muond_register(struct muond_state *st, struct muond_client *c,
		   Muon__Disc__Publication *const *pubs, size_t n,
		   uint64_t now_ms, char *err, size_t errlen)
{
	Muon__Disc__Publication **sorted = NULL;
	struct muond_pub **fresh = NULL;
	struct muond_topic **topics = NULL;
	struct muond_session *s;
	size_t i;
	int rc;

	if (!c->hello || !c->ctx_id) {
		snprintf(err, errlen, "Register needs a Hello with a nonzero "
			 "ctx_id");
		return MUON__DISC__ERROR__CODE__STATE;
	}
	if (!c->session) {
		s = session_find(st, c->ctx_id);
		if (s)
			session_own(s, c);
	}
	sorted = calloc(n ? n : 1, sizeof(*sorted));
	fresh = calloc(n ? n : 1, sizeof(*fresh));
	topics = calloc(n ? n : 1, sizeof(*topics));
	if (!sorted || !fresh || !topics)
		goto out_of_memory;
	rc = register_check(st, c, pubs, n, sorted, err, errlen);
	if (rc)
		goto free_scratch;

	/* Everything that can fail to allocate happens before the first
	 * change, so that a Register is all or nothing. */
	s = c->session;
	if (!s && !(s = session_new(st, c, now_ms)))
		goto out_of_memory;
	if (muond_hash_reserve(&s->pubs, s->pubs.n + n) ||
	    muond_hash_reserve(&st->topics, st->topics.n + n))
		goto out_of_memory;
	for (i = 0; i < n; i++) {
		struct muond_pub *old = pub_find(s, pubs[i]->stream_id);

		fresh[i] = calloc(1, sizeof(**fresh));
		if (!fresh[i] || pb_copy(&fresh[i]->pb, pubs[i], c))
			goto out_of_memory;
		if (old && pb_same(&old->pb, &fresh[i]->pb)) {
			pb_clear(&fresh[i]->pb);
			free(fresh[i]);
			fresh[i] = NULL;
			continue;
		}
		topics[i] = topic_get(st, fresh[i]->pb.topic);
		if (!topics[i])
			goto out_of_memory;
		/* A move below may empty this entry before it is used. */
		topics[i]->pins++;
	}

	for (i = 0; i < n; i++) {
		struct muond_pub *p = fresh[i], *old;

		if (!p)
			continue;
		old = pub_find(s, p->pb.stream_id);
		if (!old) {
			p->sess = s;
			muond_hash_insert(&s->pubs, &p->by_stream,
					  muond_hash_u64(p->pb.stream_id));
			muond_list_add_tail(&s->pub_list, &p->in_session);
			st->n_pubs++;
			pub_attach_topic(st, p, topics[i]);
			fresh[i] = NULL;
		} else {
			if (old->topic != topics[i]) {
				push_change(st, old,
					    MUON__DISC__UPDATE__KIND__DOWN,
					    "topic changed");
				pub_detach_topic(st, old);
				pub_attach_topic(st, old, topics[i]);
			}
			/* The new content moves in; the shell goes. */
			pb_clear(&old->pb);
			old->pb = p->pb;
			muon__disc__publication__init(&p->pb);
			p = old;
		}
		push_change(st, p, MUON__DISC__UPDATE__KIND__UP, "");
	}
	lease_set(st, s, now_ms + st->lim.lease_ms);
	rc = 0;
	goto free_scratch;

out_of_memory:
	snprintf(err, errlen, "daemon out of memory");
	rc = MUON__DISC__ERROR__CODE__LIMIT;
free_scratch:
	for (i = 0; fresh && i < n; i++) {
		if (!fresh[i])
			continue;
		pb_clear(&fresh[i]->pb);
		free(fresh[i]);
	}
	/* Topic entries made for a failed Register, or left empty by a
	 * move, are dropped here. */
	for (i = 0; topics && i < n; i++) {
		if (!topics[i])
			continue;
		topics[i]->pins--;
		topic_release(st, topics[i]);
	}
	free(topics);
	free(fresh);
	free(sorted);
	return rc;
}

int muond_unregister(struct muond_state *st, struct muond_client *c,
		     const uint32_t *stream_ids, size_t n, uint64_t now_ms)
{
	struct muond_session *s = c->session;
	size_t i;

	if (!s)
		return 0;
	for (i = 0; i < n; i++) {
		struct muond_pub *p = pub_find(s, stream_ids[i]);

		if (p)
			pub_remove(st, p, "unregistered");
	}
	lease_set(st, s, now_ms + st->lim.lease_ms);
	return 0;
}

void muond_renew(struct muond_state *st, struct muond_client *c,
		 uint64_t now_ms)
{
	if (c->session)
		lease_set(st, c->session, now_ms + st->lim.lease_ms);
}

static struct muond_watch *watch_find(const struct muond_client *c,
				      uint64_t id)
{
	uint64_t h = muond_hash_u64(id);
	struct muond_hnode *e;

	for (e = muond_hash_chain(&c->watches, h); e; e = e->next) {
		struct muond_watch *w =
			MUOND_CONTAINER(e, struct muond_watch, by_id);

		if (w->id == id)
			return w;
	}
	return NULL;
}

int muond_watch_add(struct muond_state *st, struct muond_client *c,
		    uint64_t watch_id, const char *topic, bool prefix,
		    struct muond_watch **out, char *err, size_t errlen)
{
	struct muond_watch *w;
	struct muond_topic *t;

	if (muoni_disc_topic_check(topic, prefix, err, errlen))
		return MUON__DISC__ERROR__CODE__BAD_REQUEST;
	if (watch_find(c, watch_id)) {
		snprintf(err, errlen, "watch id %llu already in use",
			 (unsigned long long)watch_id);
		return MUON__DISC__ERROR__CODE__BAD_REQUEST;
	}
	if (c->watches.n >= st->lim.max_watches_per_client) {
		snprintf(err, errlen, "limit of %u watches per client reached",
			 st->lim.max_watches_per_client);
		return MUON__DISC__ERROR__CODE__LIMIT;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		goto out_of_memory;
	t = topic_get(st, topic);
	if (!t)
		goto free_watch;
	if (muond_hash_insert(&c->watches, &w->by_id,
			      muond_hash_u64(watch_id)))
		goto release_topic;
	w->client = c;
	w->topic = t;
	w->id = watch_id;
	w->prefix = prefix;
	if (prefix) {
		muond_list_add_tail(&t->prefix, &w->in_topic);
		t->n_prefix++;
		st->prefix_len[t->len]++;
	} else {
		muond_list_add_tail(&t->exact, &w->in_topic);
		t->n_exact++;
	}
	st->n_watches++;
	*out = w;
	return 0;
release_topic:
	topic_release(st, t);
free_watch:
	free(w);
out_of_memory:
	snprintf(err, errlen, "daemon out of memory");
	return MUON__DISC__ERROR__CODE__LIMIT;
}

int muond_watch_remove(struct muond_state *st, struct muond_client *c,
		       uint64_t watch_id)
{
	struct muond_watch *w = watch_find(c, watch_id);

	if (!w)
		return MUON__DISC__ERROR__CODE__BAD_REQUEST;
	watch_free(st, w);
	return 0;
}

void muond_state_expire(struct muond_state *st, uint64_t now_ms)
{
	while (!muond_list_empty(&st->leases)) {
		struct muond_session *s = MUOND_CONTAINER(
			st->leases.next, struct muond_session, in_lease);

		if (s->deadline > now_ms)
			break;
		st->leases_expired++;
		session_free(st, s, "lease expired");
	}
}

uint64_t muond_state_next_expiry(const struct muond_state *st)
{
	if (muond_list_empty(&st->leases))
		return UINT64_MAX;
	return MUOND_CONTAINER(st->leases.next, struct muond_session, in_lease)
		->deadline;
}

/* ------------------------------------------------------------ reading */

static void topic_pubs(struct muond_topic *t, uint64_t now_ms,
		       muond_pub_fn fn, void *arg)
{
	struct muond_list *l;

	for (l = t->pubs.next; l != &t->pubs; l = l->next) {
		struct muond_pub *p =
			MUOND_CONTAINER(l, struct muond_pub, in_topic);

		p->pb.lease_left_ms = 0;
		if (now_ms && p->sess->deadline > now_ms)
			p->pb.lease_left_ms =
				(uint32_t)(p->sess->deadline - now_ms);
		fn(arg, &p->pb);
	}
}

void muond_watch_snapshot(struct muond_state *st, const struct muond_watch *w,
			  muond_pub_fn fn, void *arg)
{
	struct muond_hnode *e, *tmp;
	size_t i;

	if (!w->prefix) {
		topic_pubs(w->topic, 0, fn, arg);
		return;
	}
	MUOND_HASH_EACH(&st->topics, e, tmp, i) {
		struct muond_topic *t =
			MUOND_CONTAINER(e, struct muond_topic, by_name);

		if (t->n_pubs && t->len >= w->topic->len &&
		    !memcmp(t->name, w->topic->name, w->topic->len))
			topic_pubs(t, 0, fn, arg);
	}
}

void muond_state_each_pub(struct muond_state *st, const char *topic,
			  uint64_t now_ms, muond_pub_fn fn, void *arg)
{
	struct muond_hnode *e, *tmp;
	struct muond_topic *t;
	size_t i;

	if (topic && *topic) {
		t = topic_find(st, topic);
		if (t)
			topic_pubs(t, now_ms, fn, arg);
		return;
	}
	MUOND_HASH_EACH(&st->topics, e, tmp, i)
		topic_pubs(MUOND_CONTAINER(e, struct muond_topic, by_name),
			   now_ms, fn, arg);
}

void muond_state_each_topic(struct muond_state *st, muond_topic_fn fn,
			    void *arg)
{
	struct muond_hnode *e, *tmp;
	size_t i;

	MUOND_HASH_EACH(&st->topics, e, tmp, i) {
		struct muond_topic *t =
			MUOND_CONTAINER(e, struct muond_topic, by_name);
		uint64_t h = MUOND_FNV_BASIS;
		uint32_t watchers = t->n_exact;
		size_t len;

		/* Entries that only hold prefix watches are not topics. */
		if (!t->n_pubs && !t->n_exact)
			continue;
		for (len = 0; len <= t->len; len++) {
			const struct muond_topic *pt;

			if (len)
				h = muond_fnv_step(h, (unsigned char)
						   t->name[len - 1]);
			if (st->prefix_len[len] &&
			    (pt = topic_find_n(st, t->name, len, h)))
				watchers += pt->n_prefix;
		}
		fn(arg, t->name, t->n_pubs, watchers);
	}
}

void muond_state_each_watch(struct muond_state *st, muond_watch_fn fn,
			    void *arg)
{
	struct muond_list *l;

	for (l = st->clients.next; l != &st->clients; l = l->next) {
		struct muond_client *c =
			MUOND_CONTAINER(l, struct muond_client, link);
		struct muond_hnode *e, *tmp;
		size_t i;

		MUOND_HASH_EACH(&c->watches, e, tmp, i) {
			struct muond_watch *w =
				MUOND_CONTAINER(e, struct muond_watch, by_id);

			fn(arg, c, w, w->topic->name);
		}
	}
}
