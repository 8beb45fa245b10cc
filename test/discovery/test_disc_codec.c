/*
 * Unit tests of the discovery codec (proto/disc.c): framing, the version,
 * the MAC, body decoding, the field checks and the byte queue. Both muond
 * and every client trust this code to turn hostile bytes into either a
 * message or an error code, so each way of failing is pinned down here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/muoni.h"
#include "proto/disc.h"

#define MAXF MUONI_DISC_MAX_FRAME_DEFAULT

static const uint8_t key_a[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
static const uint8_t key_b[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 11 };
static const uint8_t nonce_a[MUONI_DISC_NONCE_LEN] = { 0xaa, 1, 2, 3 };
static const uint8_t nonce_b[MUONI_DISC_NONCE_LEN] = { 0xbb, 1, 2, 3 };

/* ------------------------------------------------------------ helpers */

/* Pack `m` into a fresh buffer; the test owns and finis the buffer. */
static void pack_ok(struct muoni_disc_buf *b, const Muon__Disc__Message *m,
		    const uint8_t *key, const uint8_t *nonce)
{
	assert_int_equal(muoni_disc_pack(b, m, key, nonce, MAXF), 0);
}

/* The first frame of `b` decoded with (key, nonce): status and code. */
static int unpack_first(const struct muoni_disc_buf *b, const uint8_t *key,
			const uint8_t *nonce, Muon__Disc__Message **out,
			int *code)
{
	const uint8_t *f = NULL;
	size_t len = 0;
	char err[256] = "";
	int rc;

	*out = NULL;
	*code = -1;
	assert_int_equal(muoni_disc_next(b, MAXF, &f, &len), 1);
	assert_ptr_equal(f, b->data + b->off + MUONI_DISC_LEN_BYTES);
	rc = muoni_disc_unpack(f, len, key, nonce, out, code, err,
			       sizeof(err));
	if (rc)
		assert_true(err[0] != '\0'); /* every failure says why */
	return rc;
}

/* Round trip: pack with (key, nonce), decode with the same. */
static Muon__Disc__Message *roundtrip(const Muon__Disc__Message *m,
				      const uint8_t *key)
{
	struct muoni_disc_buf b = { 0 };
	Muon__Disc__Message *out;
	int code;

	pack_ok(&b, m, key, nonce_a);
	assert_int_equal(unpack_first(&b, key, nonce_a, &out, &code), 0);
	assert_non_null(out);
	assert_int_equal(out->kind_case, m->kind_case);
	assert_int_equal(out->seq, m->seq);
	assert_int_equal(out->request_id, m->request_id);
	muoni_disc_buf_fini(&b);
	return out;
}

/* A hand-made Frame {version, body, mac} with its length prefix. */
static void raw_frame(struct muoni_disc_buf *b, uint32_t version,
		      const uint8_t *body, size_t blen, const uint8_t *mac,
		      size_t maclen)
{
	Muon__Disc__Frame f = MUON__DISC__FRAME__INIT;
	size_t flen;
	uint8_t *p;

	f.version = version;
	f.body.data = (uint8_t *)body;
	f.body.len = blen;
	f.mac.data = (uint8_t *)mac;
	f.mac.len = maclen;
	flen = muon__disc__frame__get_packed_size(&f);
	assert_int_equal(muoni_disc_buf_reserve(b, 4 + flen), 0);
	p = b->data + b->len;
	p[0] = (uint8_t)(flen >> 24);
	p[1] = (uint8_t)(flen >> 16);
	p[2] = (uint8_t)(flen >> 8);
	p[3] = (uint8_t)flen;
	muon__disc__frame__pack(&f, p + 4);
	b->len += 4 + flen;
}

static void raw_bytes(struct muoni_disc_buf *b, const void *p, size_t n)
{
	assert_int_equal(muoni_disc_buf_reserve(b, n), 0);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* A message of every kind, with its fields set to recognisable values. */
struct all_kinds {
	Muon__Disc__Message m[13];
	Muon__Disc__Welcome welcome;
	Muon__Disc__Hello hello;
	Muon__Disc__Register reg;
	Muon__Disc__Unregister unreg;
	Muon__Disc__Renew renew;
	Muon__Disc__Watch watch;
	Muon__Disc__Unwatch unwatch;
	Muon__Disc__Snapshot snap;
	Muon__Disc__Update update;
	Muon__Disc__List list;
	Muon__Disc__ListReply reply;
	Muon__Disc__Ok ok;
	Muon__Disc__Error error;
	Muon__Disc__Publication pub[2], *pubs[2];
	Muon__Disc__TopicInfo ti, *tis[1];
	Muon__Disc__WatcherInfo wi, *wis[1];
	Muon__Disc__Health health;
	uint32_t ids[3];
	char *eps[2];
	uint8_t nonce[MUONI_DISC_NONCE_LEN];
};

static void all_kinds_init(struct all_kinds *a)
{
	static const Muon__Disc__Message minit = MUON__DISC__MESSAGE__INIT;
	static const Muon__Disc__Publication pinit =
		MUON__DISC__PUBLICATION__INIT;
	size_t i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < 13; i++) {
		a->m[i] = minit;
		a->m[i].seq = 100 + i;
		a->m[i].request_id = 1000 + i;
		a->m[i].kind_case = (Muon__Disc__Message__KindCase)(10 + i);
	}
	memset(a->nonce, 0x5a, sizeof(a->nonce));
	a->eps[0] = "tcp://127.0.0.1:7000";
	a->eps[1] = "shm://feed";
	for (i = 0; i < 2; i++) {
		a->pub[i] = pinit;
		a->pub[i].topic = i ? "md.b" : "md.a";
		a->pub[i].stream_id = 7 + (uint32_t)i;
		a->pub[i].ctx_id = 0x1122334455667788ull + i;
		a->pub[i].host_id = "host-1";
		a->pub[i].ctx_name = "feed";
		a->pub[i].n_endpoints = 2;
		a->pub[i].endpoints = a->eps;
		a->pub[i].lease_left_ms = 4321;
		a->pubs[i] = &a->pub[i];
	}

	muon__disc__welcome__init(&a->welcome);
	a->welcome.nonce.data = a->nonce;
	a->welcome.nonce.len = sizeof(a->nonce);
	a->welcome.daemon_id = 0xdeadbeefcafef00dull;
	a->welcome.daemon_name = "d1";
	a->welcome.lease_ms = 5000;
	a->welcome.auth_required = 1;
	a->welcome.max_frame = MAXF;
	a->m[0].welcome = &a->welcome;

	muon__disc__hello__init(&a->hello);
	a->hello.nonce = a->welcome.nonce;
	a->hello.ctx_id = 42;
	a->hello.name = "ctx";
	a->hello.host_id = "host-1";
	a->hello.pid = 1234;
	a->hello.role = "context";
	a->m[1].hello = &a->hello;

	muon__disc__register__init(&a->reg);
	a->reg.n_publications = 2;
	a->reg.publications = a->pubs;
	a->m[2].register_ = &a->reg;

	muon__disc__unregister__init(&a->unreg);
	a->ids[0] = 7;
	a->ids[1] = 0;
	a->ids[2] = UINT32_MAX;
	a->unreg.n_stream_ids = 3;
	a->unreg.stream_ids = a->ids;
	a->m[3].unregister = &a->unreg;

	muon__disc__renew__init(&a->renew);
	a->m[4].renew = &a->renew;

	muon__disc__watch__init(&a->watch);
	a->watch.watch_id = 9;
	a->watch.topic = "md.";
	a->watch.prefix = 1;
	a->m[5].watch = &a->watch;

	muon__disc__unwatch__init(&a->unwatch);
	a->unwatch.watch_id = 9;
	a->m[6].unwatch = &a->unwatch;

	muon__disc__snapshot__init(&a->snap);
	a->snap.watch_id = 9;
	a->snap.n_publications = 2;
	a->snap.publications = a->pubs;
	a->snap.last = 1;
	a->m[7].snapshot = &a->snap;

	muon__disc__update__init(&a->update);
	a->update.watch_id = 9;
	a->update.kind = MUON__DISC__UPDATE__KIND__DOWN;
	a->update.publication = &a->pub[1];
	a->update.reason = "lease expired";
	a->m[8].update = &a->update;

	muon__disc__list__init(&a->list);
	a->list.what = MUON__DISC__LIST__WHAT__PUBLICATIONS;
	a->list.topic = "md.a";
	a->m[9].list = &a->list;

	muon__disc__list_reply__init(&a->reply);
	muon__disc__topic_info__init(&a->ti);
	a->ti.topic = "md.a";
	a->ti.publications = 3;
	a->ti.watchers = 4;
	a->tis[0] = &a->ti;
	muon__disc__watcher_info__init(&a->wi);
	a->wi.client = "ctx 2a@127.0.0.1:5000";
	a->wi.topic = "md.";
	a->wi.prefix = 1;
	a->wi.updates_sent = 77;
	a->wis[0] = &a->wi;
	muon__disc__health__init(&a->health);
	a->health.daemon_id = 5;
	a->health.daemon_name = "d1";
	a->health.version = "0.1.0";
	a->health.uptime_ms = 123456789012ull;
	a->health.clients = 1;
	a->health.sessions = 2;
	a->health.publications = 3;
	a->health.topics = 4;
	a->health.watches = 5;
	a->health.updates_sent = 6;
	a->health.leases_expired = 7;
	a->health.auth_failures = 8;
	a->health.protocol_errors = 9;
	a->health.clients_dropped = 10;
	a->health.lease_ms = 5000;
	a->reply.n_topics = 1;
	a->reply.topics = a->tis;
	a->reply.n_publications = 2;
	a->reply.publications = a->pubs;
	a->reply.n_watchers = 1;
	a->reply.watchers = a->wis;
	a->reply.health = &a->health;
	a->reply.last = 1;
	a->m[10].list_reply = &a->reply;

	muon__disc__ok__init(&a->ok);
	a->m[11].ok = &a->ok;

	muon__disc__error__init(&a->error);
	a->error.code = MUON__DISC__ERROR__CODE__LIMIT;
	a->error.reason = "too many publications";
	a->error.fatal = 1;
	a->m[12].error = &a->error;
}

static void check_pub(const Muon__Disc__Publication *got,
		      const Muon__Disc__Publication *want)
{
	size_t i;

	assert_non_null(got);
	assert_string_equal(got->topic, want->topic);
	assert_int_equal(got->stream_id, want->stream_id);
	assert_true(got->ctx_id == want->ctx_id);
	assert_string_equal(got->host_id, want->host_id);
	assert_string_equal(got->ctx_name, want->ctx_name);
	assert_int_equal(got->n_endpoints, want->n_endpoints);
	for (i = 0; i < want->n_endpoints; i++)
		assert_string_equal(got->endpoints[i], want->endpoints[i]);
	assert_int_equal(got->lease_left_ms, want->lease_left_ms);
}

/* Every field of every kind survives pack + next + unpack. */
static void check_kind(const struct all_kinds *a, size_t i,
		       const Muon__Disc__Message *o)
{
	switch (o->kind_case) {
	case MUON__DISC__MESSAGE__KIND_WELCOME:
		assert_int_equal(o->welcome->nonce.len, MUONI_DISC_NONCE_LEN);
		assert_memory_equal(o->welcome->nonce.data, a->nonce,
				    MUONI_DISC_NONCE_LEN);
		assert_true(o->welcome->daemon_id == a->welcome.daemon_id);
		assert_string_equal(o->welcome->daemon_name, "d1");
		assert_int_equal(o->welcome->lease_ms, 5000);
		assert_true(o->welcome->auth_required);
		assert_int_equal(o->welcome->max_frame, MAXF);
		break;
	case MUON__DISC__MESSAGE__KIND_HELLO:
		assert_memory_equal(o->hello->nonce.data, a->nonce,
				    MUONI_DISC_NONCE_LEN);
		assert_int_equal(o->hello->ctx_id, 42);
		assert_string_equal(o->hello->name, "ctx");
		assert_string_equal(o->hello->host_id, "host-1");
		assert_int_equal(o->hello->pid, 1234);
		assert_string_equal(o->hello->role, "context");
		break;
	case MUON__DISC__MESSAGE__KIND_REGISTER:
		assert_int_equal(o->register_->n_publications, 2);
		check_pub(o->register_->publications[0], &a->pub[0]);
		check_pub(o->register_->publications[1], &a->pub[1]);
		break;
	case MUON__DISC__MESSAGE__KIND_UNREGISTER:
		assert_int_equal(o->unregister->n_stream_ids, 3);
		assert_memory_equal(o->unregister->stream_ids, a->ids,
				    sizeof(a->ids));
		break;
	case MUON__DISC__MESSAGE__KIND_RENEW:
		assert_non_null(o->renew);
		break;
	case MUON__DISC__MESSAGE__KIND_WATCH:
		assert_int_equal(o->watch->watch_id, 9);
		assert_string_equal(o->watch->topic, "md.");
		assert_true(o->watch->prefix);
		break;
	case MUON__DISC__MESSAGE__KIND_UNWATCH:
		assert_int_equal(o->unwatch->watch_id, 9);
		break;
	case MUON__DISC__MESSAGE__KIND_SNAPSHOT:
		assert_int_equal(o->snapshot->watch_id, 9);
		assert_int_equal(o->snapshot->n_publications, 2);
		check_pub(o->snapshot->publications[1], &a->pub[1]);
		assert_true(o->snapshot->last);
		break;
	case MUON__DISC__MESSAGE__KIND_UPDATE:
		assert_int_equal(o->update->watch_id, 9);
		assert_int_equal(o->update->kind,
				 MUON__DISC__UPDATE__KIND__DOWN);
		check_pub(o->update->publication, &a->pub[1]);
		assert_string_equal(o->update->reason, "lease expired");
		break;
	case MUON__DISC__MESSAGE__KIND_LIST:
		assert_int_equal(o->list->what,
				 MUON__DISC__LIST__WHAT__PUBLICATIONS);
		assert_string_equal(o->list->topic, "md.a");
		break;
	case MUON__DISC__MESSAGE__KIND_LIST_REPLY:
		assert_int_equal(o->list_reply->n_topics, 1);
		assert_string_equal(o->list_reply->topics[0]->topic, "md.a");
		assert_int_equal(o->list_reply->topics[0]->publications, 3);
		assert_int_equal(o->list_reply->topics[0]->watchers, 4);
		assert_int_equal(o->list_reply->n_publications, 2);
		check_pub(o->list_reply->publications[0], &a->pub[0]);
		assert_int_equal(o->list_reply->n_watchers, 1);
		assert_string_equal(o->list_reply->watchers[0]->client,
				    a->wi.client);
		assert_true(o->list_reply->watchers[0]->prefix);
		assert_int_equal(o->list_reply->watchers[0]->updates_sent, 77);
		assert_non_null(o->list_reply->health);
		assert_true(o->list_reply->health->uptime_ms ==
			    a->health.uptime_ms);
		assert_int_equal(o->list_reply->health->clients_dropped, 10);
		assert_int_equal(o->list_reply->health->lease_ms, 5000);
		assert_string_equal(o->list_reply->health->version, "0.1.0");
		assert_true(o->list_reply->last);
		break;
	case MUON__DISC__MESSAGE__KIND_OK:
		assert_non_null(o->ok);
		break;
	case MUON__DISC__MESSAGE__KIND_ERROR:
		assert_int_equal(o->error->code,
				 MUON__DISC__ERROR__CODE__LIMIT);
		assert_string_equal(o->error->reason, a->error.reason);
		assert_true(o->error->fatal);
		break;
	default:
		fail_msg("message %zu decoded with kind %d", i,
			 (int)o->kind_case);
	}
}

/* ------------------------------------------------------------ tests */

static void roundtrip_kinds(const uint8_t *key)
{
	struct all_kinds *a = calloc(1, sizeof(*a));
	size_t i;

	assert_non_null(a);
	all_kinds_init(a);
	for (i = 0; i < 13; i++) {
		Muon__Disc__Message *o = roundtrip(&a->m[i], key);

		check_kind(a, i, o);
		muon__disc__message__free_unpacked(o, NULL);
	}
	free(a);
}

static void test_roundtrip_no_key(void **state)
{
	roundtrip_kinds(NULL);
}

static void test_roundtrip_key(void **state)
{
	roundtrip_kinds(key_a);
}

/* All kinds back to back in one buffer, read as a stream would be. */
static void test_stream_of_frames(void **state)
{
	struct all_kinds *a = calloc(1, sizeof(*a));
	struct muoni_disc_buf b = { 0 };
	size_t i;

	assert_non_null(a);
	all_kinds_init(a);
	for (i = 0; i < 13; i++)
		pack_ok(&b, &a->m[i], key_a, nonce_a);
	for (i = 0; i < 13; i++) {
		Muon__Disc__Message *o;
		const uint8_t *f;
		size_t len;
		int code;

		assert_int_equal(unpack_first(&b, key_a, nonce_a, &o, &code),
				 0);
		assert_int_equal(o->seq, 100 + i);
		check_kind(a, i, o);
		muon__disc__message__free_unpacked(o, NULL);
		assert_int_equal(muoni_disc_next(&b, MAXF, &f, &len), 1);
		muoni_disc_buf_consume(&b, MUONI_DISC_LEN_BYTES + len);
	}
	assert_int_equal(muoni_disc_buf_used(&b), 0);
	muoni_disc_buf_fini(&b);
	free(a);
}

/* A MAC made with a key is ignored by a receiver without one. */
static void test_mac_ignored_without_key(void **state)
{
	struct all_kinds a;
	struct muoni_disc_buf b = { 0 };
	Muon__Disc__Message *o;
	int code;

	all_kinds_init(&a);
	pack_ok(&b, &a.m[11], key_a, nonce_a);
	assert_int_equal(unpack_first(&b, NULL, NULL, &o, &code), 0);
	assert_int_equal(o->kind_case, MUON__DISC__MESSAGE__KIND_OK);
	muon__disc__message__free_unpacked(o, NULL);
	muoni_disc_buf_fini(&b);
}

static void expect_auth(const uint8_t *pkey, const uint8_t *pnonce,
			const uint8_t *ukey, const uint8_t *unonce)
{
	struct all_kinds a;
	struct muoni_disc_buf b = { 0 };
	Muon__Disc__Message *o;
	int code;

	all_kinds_init(&a);
	pack_ok(&b, &a.m[2], pkey, pnonce);
	assert_int_equal(unpack_first(&b, ukey, unonce, &o, &code),
			 MUON_EAUTH);
	assert_int_equal(code, MUON__DISC__ERROR__CODE__AUTH);
	assert_null(o);
	muoni_disc_buf_fini(&b);
}

static void test_mac_wrong_key(void **state)
{
	expect_auth(key_b, nonce_a, key_a, nonce_a);
}

static void test_mac_missing(void **state)
{
	expect_auth(NULL, NULL, key_a, nonce_a);
}

/* A message replayed to a connection with another nonce must not pass. */
static void test_mac_wrong_nonce(void **state)
{
	expect_auth(key_a, nonce_b, key_a, nonce_a);
}

/* A MAC of the wrong length, or one tampered bit of the body. */
static void test_mac_short_and_tampered(void **state)
{
	struct muoni_disc_buf b = { 0 };
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Ok ok = MUON__DISC__OK__INIT;
	Muon__Disc__Message *o;
	uint8_t body[64], mac[MUONI_DISC_MAC_LEN] = { 0 };
	size_t blen;
	int code;

	m.seq = 1;
	m.kind_case = MUON__DISC__MESSAGE__KIND_OK;
	m.ok = &ok;
	blen = muon__disc__message__pack(&m, body);
	raw_frame(&b, 1, body, blen, mac, MUONI_DISC_MAC_LEN - 1);
	assert_int_equal(unpack_first(&b, key_a, nonce_a, &o, &code),
			 MUON_EAUTH);
	assert_int_equal(code, MUON__DISC__ERROR__CODE__AUTH);
	muoni_disc_buf_fini(&b);

	/* Flip the last byte of the body of a correctly MACed frame. */
	pack_ok(&b, &m, key_a, nonce_a);
	{
		Muon__Disc__Frame *f = muon__disc__frame__unpack(
			NULL, b.len - 4, b.data + 4);
		struct muoni_disc_buf t = { 0 };

		assert_non_null(f);
		f->body.data[f->body.len - 1] ^= 1;
		raw_frame(&t, 1, f->body.data, f->body.len, f->mac.data,
			  f->mac.len);
		assert_int_equal(unpack_first(&t, key_a, nonce_a, &o, &code),
				 MUON_EAUTH);
		assert_int_equal(code, MUON__DISC__ERROR__CODE__AUTH);
		muon__disc__frame__free_unpacked(f, NULL);
		muoni_disc_buf_fini(&t);
	}
	muoni_disc_buf_fini(&b);
}

static void test_bad_version(void **state)
{
	struct muoni_disc_buf b = { 0 };
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;
	Muon__Disc__Message *o;
	uint8_t body[64];
	size_t blen;
	uint32_t v;
	int code;
	static const uint32_t bad[] = { 0, 2, UINT32_MAX };

	m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
	m.renew = &r;
	blen = muon__disc__message__pack(&m, body);
	for (v = 0; v < 3; v++) {
		raw_frame(&b, bad[v], body, blen, NULL, 0);
		/* The version is checked before the MAC: with or without a
		 * key the answer is BAD_VERSION. */
		assert_int_equal(unpack_first(&b, NULL, NULL, &o, &code),
				 MUON_EPROTO);
		assert_int_equal(code, MUON__DISC__ERROR__CODE__BAD_VERSION);
		assert_int_equal(unpack_first(&b, key_a, nonce_a, &o, &code),
				 MUON_EPROTO);
		assert_int_equal(code, MUON__DISC__ERROR__CODE__BAD_VERSION);
		muoni_disc_buf_fini(&b);
	}
	/* And the right version passes. */
	raw_frame(&b, MUONI_DISC_VERSION, body, blen, NULL, 0);
	assert_int_equal(unpack_first(&b, NULL, NULL, &o, &code), 0);
	muon__disc__message__free_unpacked(o, NULL);
	muoni_disc_buf_fini(&b);
}

/* Every proper prefix of a frame asks for more bytes and points nowhere. */
static void test_truncated_needs_more(void **state)
{
	struct all_kinds a;
	struct muoni_disc_buf b = { 0 }, t = { 0 };
	const uint8_t *f = NULL;
	size_t len = 12345, i;

	all_kinds_init(&a);
	pack_ok(&b, &a.m[10], key_a, nonce_a);
	assert_true(b.len > 4);
	assert_int_equal(muoni_disc_buf_reserve(&t, b.len), 0);
	for (i = 0; i < b.len; i++) {
		t.off = t.len = 0;
		raw_bytes(&t, b.data, i);
		assert_int_equal(muoni_disc_next(&t, MAXF, &f, &len), 0);
		assert_null(f);
		assert_int_equal(len, 12345);
	}
	t.off = t.len = 0;
	raw_bytes(&t, b.data, b.len);
	assert_int_equal(muoni_disc_next(&t, MAXF, &f, &len), 1);
	assert_int_equal(len, b.len - 4);
	muoni_disc_buf_fini(&t);
	muoni_disc_buf_fini(&b);
}

/* A queue nothing was ever reserved in (data == NULL) has no frame; the
 * check must not compute NULL + 0 (clang's UBSan reports that). */
static void test_next_on_empty_buffer(void **state)
{
	struct muoni_disc_buf b = { 0 };
	const uint8_t *f = NULL;
	size_t len = 0;

	assert_int_equal(muoni_disc_next(&b, MAXF, &f, &len), 0);
	assert_null(f);
	muoni_disc_buf_consume(&b, 0);
	assert_int_equal(muoni_disc_buf_used(&b), 0);
}

static void test_zero_length(void **state)
{
	struct muoni_disc_buf b = { 0 };
	const uint8_t zero[4] = { 0 };
	const uint8_t *f;
	size_t len;

	raw_bytes(&b, zero, sizeof(zero));
	assert_int_equal(muoni_disc_next(&b, MAXF, &f, &len), MUON_EPROTO);
	muoni_err_clear();
	muoni_disc_buf_fini(&b);
}

/* The length prefix alone decides: no need to wait for the bytes. */
static void test_oversized_prefix(void **state)
{
	struct muoni_disc_buf b = { 0 };
	const uint8_t over[4] = { 0, 1, 0, 1 }; /* 65537 */
	const uint8_t huge[4] = { 0xff, 0xff, 0xff, 0xff };
	const uint8_t exact[4] = { 0, 1, 0, 0 }; /* 65536: allowed */
	const uint8_t *f;
	size_t len;

	raw_bytes(&b, over, 4);
	assert_int_equal(muoni_disc_next(&b, MAXF, &f, &len), MUON_ETOOBIG);
	b.off = b.len = 0;
	raw_bytes(&b, huge, 4);
	assert_int_equal(muoni_disc_next(&b, MAXF, &f, &len), MUON_ETOOBIG);
	assert_int_equal(muoni_disc_next(&b, MUONI_DISC_MAX_FRAME_MAX, &f,
					 &len),
			 MUON_ETOOBIG);
	b.off = b.len = 0;
	raw_bytes(&b, exact, 4);
	assert_int_equal(muoni_disc_next(&b, MAXF, &f, &len), 0);
	muoni_err_clear();
	muoni_disc_buf_fini(&b);
}

/* pack refuses what the peer would refuse, and leaves `out` alone. */
static void test_pack_too_big(void **state)
{
	struct all_kinds a;
	struct muoni_disc_buf b = { 0 };
	size_t flen;

	all_kinds_init(&a);
	pack_ok(&b, &a.m[10], key_a, nonce_a);
	flen = b.len - 4;
	b.off = b.len = 0;
	assert_int_equal(muoni_disc_pack(&b, &a.m[10], key_a, nonce_a,
					 flen - 1),
			 MUON_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(muoni_disc_pack(&b, &a.m[10], NULL, NULL, 10),
			 MUON_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(muoni_disc_pack(&b, &a.m[10], key_a, nonce_a, flen),
			 0);
	assert_int_equal(b.len, flen + 4);
	muoni_err_clear();
	muoni_disc_buf_fini(&b);
}

static void expect_bad_frame(const struct muoni_disc_buf *b,
			     const uint8_t *key)
{
	Muon__Disc__Message *o;
	int code;

	assert_int_equal(unpack_first(b, key, nonce_a, &o, &code),
			 MUON_EPROTO);
	assert_int_equal(code, MUON__DISC__ERROR__CODE__BAD_FRAME);
	assert_null(o);
}

/* Bytes that are no Frame at all. */
static void test_garbage_frame(void **state)
{
	struct muoni_disc_buf b = { 0 };
	/* Field 1 as a length-delimited run longer than the frame. */
	const uint8_t garbage[] = { 0, 0, 0, 6, 0x0a, 0x7f, 1, 2, 3, 4 };
	const uint8_t ones[] = { 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff };

	raw_bytes(&b, garbage, sizeof(garbage));
	expect_bad_frame(&b, NULL);
	expect_bad_frame(&b, key_a);
	b.off = b.len = 0;
	raw_bytes(&b, ones, sizeof(ones));
	expect_bad_frame(&b, NULL);
	muoni_disc_buf_fini(&b);
}

/* A well-formed Frame whose body is not a Message. */
static void test_garbage_body(void **state)
{
	struct muoni_disc_buf b = { 0 };
	const uint8_t body[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t mac[MUONI_DISC_MAC_LEN];

	raw_frame(&b, 1, body, sizeof(body), NULL, 0);
	expect_bad_frame(&b, NULL);
	muoni_disc_buf_fini(&b);
	/* With a correct MAC the body still has to decode. */
	{
		crypto_auth_hmacsha256_state st;
		uint8_t full[32];

		crypto_auth_hmacsha256_init(&st, key_a, 32);
		crypto_auth_hmacsha256_update(&st,
					      (const uint8_t *)"muon-disc-1",
					      11);
		crypto_auth_hmacsha256_update(&st, nonce_a, 16);
		crypto_auth_hmacsha256_update(&st, body, sizeof(body));
		crypto_auth_hmacsha256_final(&st, full);
		memcpy(mac, full, sizeof(mac));
	}
	raw_frame(&b, 1, body, sizeof(body), mac, sizeof(mac));
	expect_bad_frame(&b, key_a);
	muoni_disc_buf_fini(&b);
}

/* seq and request_id but no oneof member: nothing to act on. */
static void test_no_kind(void **state)
{
	struct muoni_disc_buf b = { 0 };
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;

	m.seq = 1;
	m.request_id = 2;
	pack_ok(&b, &m, NULL, NULL);
	expect_bad_frame(&b, NULL);
	muoni_disc_buf_fini(&b);
	pack_ok(&b, &m, key_a, nonce_a);
	expect_bad_frame(&b, key_a);
	muoni_disc_buf_fini(&b);
	/* An empty body is a message with no kind, too. */
	raw_frame(&b, 1, NULL, 0, NULL, 0);
	expect_bad_frame(&b, NULL);
	muoni_disc_buf_fini(&b);
}

/* ---- field checks */

static Muon__Disc__Publication good_pub(char **eps)
{
	Muon__Disc__Publication p = MUON__DISC__PUBLICATION__INIT;

	p.topic = "md.ticks";
	p.stream_id = 1;
	p.host_id = "0123456789abcdef0123456789abcdef";
	p.ctx_name = "feed";
	eps[0] = "tcp://127.0.0.1:7000";
	p.n_endpoints = 1;
	p.endpoints = eps;
	return p;
}

static void expect_pub(const Muon__Disc__Publication *p, int want)
{
	char err[256] = "";

	assert_int_equal(muoni_disc_pub_check(p, err, sizeof(err)), want);
	if (want)
		assert_true(err[0] != '\0');
	muoni_err_clear();
}

static void test_pub_check_topic(void **state)
{
	char *eps[1];
	Muon__Disc__Publication p = good_pub(eps);
	char topic[MUONI_DISC_TOPIC_MAX + 2];

	expect_pub(&p, 0);
	p.topic = "";
	expect_pub(&p, MUON_EINVAL);
	memset(topic, 't', sizeof(topic) - 1);
	topic[sizeof(topic) - 1] = '\0';
	p.topic = topic; /* 256 bytes */
	expect_pub(&p, MUON_EINVAL);
	topic[MUONI_DISC_TOPIC_MAX] = '\0'; /* 255 bytes */
	expect_pub(&p, 0);
}

static void test_pub_check_endpoint_count(void **state)
{
	char *eps[MUONI_DISC_MAX_ENDPOINTS + 1];
	Muon__Disc__Publication p = good_pub(eps);
	size_t i;

	p.n_endpoints = 0;
	expect_pub(&p, MUON_EINVAL);
	for (i = 0; i <= MUONI_DISC_MAX_ENDPOINTS; i++)
		eps[i] = "shm://a";
	p.n_endpoints = MUONI_DISC_MAX_ENDPOINTS;
	expect_pub(&p, 0);
	p.n_endpoints = MUONI_DISC_MAX_ENDPOINTS + 1;
	expect_pub(&p, MUON_EINVAL);
}

static void test_pub_check_endpoints(void **state)
{
	char *eps[1];
	Muon__Disc__Publication p = good_pub(eps);
	char longep[MUONI_DISC_ENDPOINT_MAX + 2];
	static const char *const bad[] = {
		"", "tcp://", "tcp://host", "tcp://:7000", "tcp://h:",
		"tcp://h:x", "tcp://h:65536", "tcp://h:-1", "tcp://::1:7000",
		"tcp://[::1]", "tcp://[::1:7000", "tcp://h o:1", "udp://h:1",
		"127.0.0.1:7000", "shm://", "shm://a/b", "shm://a b",
		"verbs://", "verbs://h", "tcp://h:1\n", "shm://a\tb",
	};
	static const char *const good[] = {
		"tcp://127.0.0.1:7000", "tcp://[::1]:7000", "tcp://host-1:1",
		"verbs://10.0.0.1:7471", "verbs://[fe80::1%eth0]:7471",
		"shm://feed.1_a-b",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		eps[0] = (char *)bad[i];
		expect_pub(&p, MUON_EINVAL);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		eps[0] = (char *)good[i];
		expect_pub(&p, 0);
	}
	/* Longer than an endpoint may be, though well formed. */
	memcpy(longep, "shm://", 6);
	memset(longep + 6, 'a', sizeof(longep) - 7);
	longep[sizeof(longep) - 1] = '\0';
	eps[0] = longep;
	expect_pub(&p, MUON_EINVAL);
}

static void test_pub_check_text(void **state)
{
	char *eps[1];
	Muon__Disc__Publication p = good_pub(eps);
	char host[MUONI_DISC_HOST_ID_MAX + 2], name[MUONI_DISC_NAME_MAX + 2];

	p.host_id = "host\x1b[2J";
	expect_pub(&p, MUON_EINVAL);
	p.host_id = "host\n";
	expect_pub(&p, MUON_EINVAL);
	p.host_id = "host\x7f";
	expect_pub(&p, MUON_EINVAL);
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	p.host_id = host; /* 65 bytes */
	expect_pub(&p, MUON_EINVAL);
	host[MUONI_DISC_HOST_ID_MAX] = '\0';
	expect_pub(&p, 0);
	p.host_id = "";
	expect_pub(&p, 0); /* set by the daemon: may be empty in Register */
	p.ctx_name = "a\tb";
	expect_pub(&p, MUON_EINVAL);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	p.ctx_name = name; /* 33 bytes */
	expect_pub(&p, MUON_EINVAL);
	p.ctx_name = "caf\xc3\xa9"; /* UTF-8 is text */
	expect_pub(&p, 0);
}

static void test_topic_and_text_check(void **state)
{
	char err[128];

	assert_int_equal(muoni_disc_topic_check("", true, err, sizeof(err)),
			 0);
	assert_int_equal(muoni_disc_topic_check("", false, err, sizeof(err)),
			 MUON_EINVAL);
	assert_int_equal(muoni_disc_topic_check("a", false, err, sizeof(err)),
			 0);
	assert_int_equal(muoni_disc_text_check("x", "abc", 3, err,
					       sizeof(err)),
			 0);
	assert_int_equal(muoni_disc_text_check("x", "abcd", 3, err,
					       sizeof(err)),
			 MUON_EINVAL);
	assert_non_null(strstr(err, "x of 4 bytes"));
	assert_string_equal(muoni_disc_code_name(
				    MUON__DISC__ERROR__CODE__AUTH),
			    "AUTH");
	assert_string_equal(muoni_disc_code_name(
				    MUON__DISC__ERROR__CODE__BAD_VERSION),
			    "BAD_VERSION");
	assert_string_equal(muoni_disc_code_name(999), "UNKNOWN");
	assert_string_equal(muoni_disc_code_name(-1), "UNKNOWN");
}

static void test_host_id(void **state)
{
	char id[MUONI_DISC_HOST_ID_MAX + 1], err[128];
	char small[5];

	muoni_disc_host_id(id, sizeof(id));
	assert_true(id[0] != '\0');
	assert_int_equal(muoni_disc_text_check("host id", id,
					       MUONI_DISC_HOST_ID_MAX, err,
					       sizeof(err)),
			 0);
	muoni_disc_host_id(small, sizeof(small));
	assert_int_equal(strlen(small), 4);
}

/* ---- byte queue */

static void test_buf_reserve_consume(void **state)
{
	struct muoni_disc_buf b = { 0 };
	uint8_t pattern[6000];
	size_t i, cap;

	for (i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7);
	assert_int_equal(muoni_disc_buf_used(&b), 0);
	assert_int_equal(muoni_disc_buf_reserve(&b, 10), 0);
	assert_non_null(b.data);
	assert_true(b.cap >= 10);
	cap = b.cap;
	/* Room already there: nothing moves. */
	assert_int_equal(muoni_disc_buf_reserve(&b, cap), 0);
	assert_int_equal(b.cap, cap);

	memcpy(b.data, pattern, 1000);
	b.len = 1000;
	muoni_disc_buf_consume(&b, 300);
	assert_int_equal(b.off, 300);
	assert_int_equal(muoni_disc_buf_used(&b), 700);
	/* Asking for more than the tail but less than tail + consumed slides
	 * the unconsumed bytes to the front instead of growing. */
	assert_int_equal(muoni_disc_buf_reserve(&b, cap - 1000 + 200), 0);
	assert_int_equal(b.cap, cap);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 700);
	assert_memory_equal(b.data, pattern + 300, 700);

	/* Growing keeps the unconsumed bytes, from a nonzero offset too. */
	muoni_disc_buf_consume(&b, 100);
	assert_int_equal(muoni_disc_buf_reserve(&b, sizeof(pattern)), 0);
	assert_true(b.cap - b.len >= sizeof(pattern));
	assert_int_equal(muoni_disc_buf_used(&b), 600);
	assert_memory_equal(b.data + b.off, pattern + 400, 600);
	/* Growth is geometric: a power of two from 4096. */
	assert_true((b.cap & (b.cap - 1)) == 0);

	/* Consuming everything resets to the start. */
	muoni_disc_buf_consume(&b, 600);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 0);
	muoni_disc_buf_consume(&b, 0);
	assert_int_equal(b.off, 0);

	muoni_disc_buf_fini(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	muoni_disc_buf_fini(&b); /* twice is fine */
	muoni_disc_buf_fini(NULL);
}

/* Frames arriving a byte at a time through a queue that is consumed as it
 * goes decode exactly as they were sent. */
static void test_buf_trickle(void **state)
{
	struct all_kinds *a = calloc(1, sizeof(*a));
	struct muoni_disc_buf src = { 0 }, in = { 0 };
	size_t i, got = 0;

	assert_non_null(a);
	all_kinds_init(a);
	for (i = 0; i < 13; i++)
		pack_ok(&src, &a->m[i], NULL, NULL);
	for (i = 0; i < src.len; i++) {
		const uint8_t *f;
		size_t len;
		int rc;

		raw_bytes(&in, src.data + i, 1);
		while ((rc = muoni_disc_next(&in, MAXF, &f, &len)) == 1) {
			Muon__Disc__Message *o;
			char err[128];
			int code;

			assert_int_equal(muoni_disc_unpack(f, len, NULL, NULL,
							   &o, &code, err,
							   sizeof(err)),
					 0);
			check_kind(a, got, o);
			assert_int_equal(o->seq, 100 + got);
			got++;
			muon__disc__message__free_unpacked(o, NULL);
			muoni_disc_buf_consume(&in, MUONI_DISC_LEN_BYTES + len);
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(got, 13);
	assert_int_equal(muoni_disc_buf_used(&in), 0);
	muoni_disc_buf_fini(&in);
	muoni_disc_buf_fini(&src);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_no_key),
		cmocka_unit_test(test_roundtrip_key),
		cmocka_unit_test(test_stream_of_frames),
		cmocka_unit_test(test_mac_ignored_without_key),
		cmocka_unit_test(test_mac_wrong_key),
		cmocka_unit_test(test_mac_missing),
		cmocka_unit_test(test_mac_wrong_nonce),
		cmocka_unit_test(test_mac_short_and_tampered),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_truncated_needs_more),
		cmocka_unit_test(test_next_on_empty_buffer),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_oversized_prefix),
		cmocka_unit_test(test_pack_too_big),
		cmocka_unit_test(test_garbage_frame),
		cmocka_unit_test(test_garbage_body),
		cmocka_unit_test(test_no_kind),
		cmocka_unit_test(test_pub_check_topic),
		cmocka_unit_test(test_pub_check_endpoint_count),
		cmocka_unit_test(test_pub_check_endpoints),
		cmocka_unit_test(test_pub_check_text),
		cmocka_unit_test(test_topic_and_text_check),
		cmocka_unit_test(test_host_id),
		cmocka_unit_test(test_buf_reserve_consume),
		cmocka_unit_test(test_buf_trickle),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
