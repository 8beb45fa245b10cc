/*
 * libFuzzer target: the discovery codec (proto/disc.c) against anything a
 * peer of muond, or muond itself, can send.
 *
 * The first input byte chooses how the rest is used:
 *   bit 2 clear  the rest is a TCP stream: cut into frames by
 *                muoni_disc_next() and decoded by muoni_disc_unpack(),
 *                with the harness key when bit 0 is set (seeds carry MACs
 *                made with it, so the paths behind the MAC are reached);
 *   bit 2 set    the rest is a list of message bodies, each preceded by a
 *                2-byte big-endian length, that the harness wraps in a
 *                version-1 Frame with a valid MAC: a forged MAC is out of
 *                the fuzzer's reach, so this is how hostile bodies from an
 *                authenticated peer get tested;
 *   bit 1        a max_frame of 1024 instead of 65536.
 *
 * Every decoded message has its strings checked like the daemon and the
 * clients check them (muoni_disc_pub_check on every publication), and is
 * packed again and decoded again, which must succeed: what the codec
 * accepts it must be able to send on. Failures must carry an error code
 * the daemon can send back and a reason. The stream is copied into a
 * buffer of exactly its size so that ASan sees any read past it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/muoni.h"
#include "proto/disc.h"

#define FLAG_KEY 1u
#define FLAG_SMALL 2u
#define FLAG_BODIES 4u

static const uint8_t fkey[32] = {
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
};
static const uint8_t fnonce[MUONI_DISC_NONCE_LEN] = {
	0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
	0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
};

static void check_pubs(Muon__Disc__Publication *const *p, size_t n)
{
	char err[256];
	size_t i;

	for (i = 0; i < n; i++) {
		/* protobuf-c never leaves an element NULL; a NULL here
		 * would be a codec bug worth a crash. */
		if (!p[i])
			abort();
		if (muoni_disc_pub_check(p[i], err, sizeof(err)) &&
		    !err[0])
			abort();
	}
}

static void check_text(const char *s)
{
	char err[128];

	if (!s)
		abort();
	(void)muoni_disc_text_check("text", s, MUONI_DISC_NAME_MAX, err,
				    sizeof(err));
	(void)muoni_disc_topic_check(s, true, err, sizeof(err));
}

/* What a receiver of `m` would look at. */
static void check_fields(const Muon__Disc__Message *m)
{
	switch (m->kind_case) {
	case MUON__DISC__MESSAGE__KIND_WELCOME:
		check_text(m->welcome->daemon_name);
		break;
	case MUON__DISC__MESSAGE__KIND_HELLO:
		check_text(m->hello->name);
		check_text(m->hello->host_id);
		check_text(m->hello->role);
		break;
	case MUON__DISC__MESSAGE__KIND_REGISTER:
		check_pubs(m->register_->publications,
			   m->register_->n_publications);
		break;
	case MUON__DISC__MESSAGE__KIND_WATCH:
		check_text(m->watch->topic);
		break;
	case MUON__DISC__MESSAGE__KIND_SNAPSHOT:
		check_pubs(m->snapshot->publications,
			   m->snapshot->n_publications);
		break;
	case MUON__DISC__MESSAGE__KIND_UPDATE:
		if (m->update->publication)
			check_pubs(&m->update->publication, 1);
		check_text(m->update->reason);
		break;
	case MUON__DISC__MESSAGE__KIND_LIST:
		check_text(m->list->topic);
		break;
	case MUON__DISC__MESSAGE__KIND_LIST_REPLY:
		check_pubs(m->list_reply->publications,
			   m->list_reply->n_publications);
		for (size_t i = 0; i < m->list_reply->n_topics; i++)
			check_text(m->list_reply->topics[i]->topic);
		for (size_t i = 0; i < m->list_reply->n_watchers; i++)
			check_text(m->list_reply->watchers[i]->client);
		if (m->list_reply->health)
			check_text(m->list_reply->health->version);
		break;
	case MUON__DISC__MESSAGE__KIND_ERROR:
		check_text(m->error->reason);
		(void)muoni_disc_code_name((int)m->error->code);
		break;
	case MUON__DISC__MESSAGE__KIND_UNREGISTER:
	case MUON__DISC__MESSAGE__KIND_RENEW:
	case MUON__DISC__MESSAGE__KIND_UNWATCH:
	case MUON__DISC__MESSAGE__KIND_OK:
		break;
	default:
		/* unpack promised a message of a known kind */
		abort();
	}
}

/*
 * Whether `m` or any message inside it kept unknown fields. protobuf-c
 * keeps them and sends them on when the message is packed again, and it
 * accepts an overlong-encoded tag of field number 0 that it refuses in its
 * one-byte form: such a message decodes, but its re-encoding does not
 * (found by this fuzzer). Neither muond nor the library packs a received
 * message again (they copy the fields they use), so the round trip below
 * is only required of messages without unknown fields.
 */
static bool has_unknown(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	unsigned i;

	if (m->n_unknown_fields)
		return true;
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *a =
				*(ProtobufCMessage *const *const *)(base +
								    f->offset);

			for (size_t k = 0; k < n; k++)
				if (has_unknown(a[k]))
					return true;
			continue;
		}
		/* A oneof member is there only when the case names it. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		{
			const ProtobufCMessage *sub =
				*(ProtobufCMessage *const *)(base + f->offset);

			if (sub && has_unknown(sub))
				return true;
		}
	}
	return false;
}

/* Re-encode and decode again: must work for anything that fits. */
static void repack(const Muon__Disc__Message *m, const uint8_t *key)
{
	struct muoni_disc_buf b = { 0 };
	Muon__Disc__Message *again = NULL;
	const uint8_t *f;
	size_t len;
	char err[256];
	int code, rc;

	rc = muoni_disc_pack(&b, m, key, fnonce, MUONI_DISC_MAX_FRAME_MAX);
	if (rc == MUON_ETOOBIG) {
		muoni_err_clear();
		return;
	}
	if (rc)
		abort();
	if (muoni_disc_next(&b, MUONI_DISC_MAX_FRAME_MAX, &f, &len) != 1)
		abort();
	if (len + MUONI_DISC_LEN_BYTES != b.len)
		abort();
	if (muoni_disc_unpack(f, len, key, fnonce, &again, &code, err,
			      sizeof(err))) {
		if (!has_unknown(&m->base))
			abort();
		muoni_disc_buf_fini(&b);
		return;
	}
	if (again->kind_case != m->kind_case || again->seq != m->seq ||
	    again->request_id != m->request_id)
		abort();
	muon__disc__message__free_unpacked(again, NULL);
	muoni_disc_buf_fini(&b);
}

static void decode(const uint8_t *f, size_t len, const uint8_t *key)
{
	Muon__Disc__Message *m = NULL;
	char err[256];
	int code = -1, rc;

	err[0] = '\0';
	rc = muoni_disc_unpack(f, len, key, fnonce, &m, &code, err,
			       sizeof(err));
	if (rc) {
		if (m || !err[0] ||
		    (code != MUON__DISC__ERROR__CODE__BAD_FRAME &&
		     code != MUON__DISC__ERROR__CODE__BAD_VERSION &&
		     code != MUON__DISC__ERROR__CODE__AUTH) ||
		    (rc == MUON_EAUTH) !=
			    (code == MUON__DISC__ERROR__CODE__AUTH))
			abort();
		return;
	}
	if (!m || m->kind_case == MUON__DISC__MESSAGE__KIND__NOT_SET)
		abort();
	check_fields(m);
	repack(m, key);
	muon__disc__message__free_unpacked(m, NULL);
}

/* Bit 2 clear: the input as a stream of length-prefixed frames. */
static void run_stream(const uint8_t *data, size_t size, size_t max_frame,
		       const uint8_t *key)
{
	struct muoni_disc_buf in = { 0 };
	const uint8_t *f;
	size_t len;
	int rc;

	if (!size)
		return;
	in.data = malloc(size);
	if (!in.data)
		return;
	memcpy(in.data, data, size);
	in.len = in.cap = size;
	for (;;) {
		rc = muoni_disc_next(&in, max_frame, &f, &len);
		if (rc < 0) {
			/* Only a zero or oversized length is an error. */
			if (rc != MUON_EPROTO && rc != MUON_ETOOBIG)
				abort();
			muoni_err_clear();
			break;
		}
		if (!rc)
			break;
		if (len == 0 || len > max_frame ||
		    f + len > in.data + in.len)
			abort();
		decode(f, len, key);
		/* A daemon decodes the same frame with and without a key
		 * depending on the connection's state (Welcome is never
		 * MACed): both must be safe. */
		if (key)
			decode(f, len, NULL);
		muoni_disc_buf_consume(&in, MUONI_DISC_LEN_BYTES + len);
	}
	muoni_disc_buf_fini(&in);
}

/* Bit 2 set: bodies, framed and MACed here as an authenticated peer would. */
static void run_bodies(const uint8_t *data, size_t size, size_t max_frame)
{
	while (size >= 2) {
		size_t blen = (size_t)data[0] << 8 | data[1];
		Muon__Disc__Frame fr = MUON__DISC__FRAME__INIT;
		crypto_auth_hmacsha256_state st;
		uint8_t full[crypto_auth_hmacsha256_BYTES];
		uint8_t *body, *frame;
		size_t flen;

		data += 2;
		size -= 2;
		if (blen > size)
			blen = size;
		/* An exact-size copy: reads past the body are caught. */
		body = malloc(blen ? blen : 1);
		if (!body)
			return;
		memcpy(body, data, blen);
		crypto_auth_hmacsha256_init(&st, fkey, sizeof(fkey));
		crypto_auth_hmacsha256_update(&st,
					      (const uint8_t *)"muon-disc-1",
					      11);
		crypto_auth_hmacsha256_update(&st, fnonce, sizeof(fnonce));
		crypto_auth_hmacsha256_update(&st, body, blen);
		crypto_auth_hmacsha256_final(&st, full);
		fr.version = MUONI_DISC_VERSION;
		fr.body.data = body;
		fr.body.len = blen;
		fr.mac.data = full;
		fr.mac.len = MUONI_DISC_MAC_LEN;
		flen = muon__disc__frame__get_packed_size(&fr);
		frame = malloc(flen);
		if (frame) {
			muon__disc__frame__pack(&fr, frame);
			if (flen <= max_frame)
				decode(frame, flen, fkey);
			free(frame);
		}
		free(body);
		data += blen;
		size -= blen;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sodium_init() < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags;
	size_t max_frame;

	if (!size)
		return 0;
	flags = data[0];
	max_frame = flags & FLAG_SMALL ? MUONI_DISC_MAX_FRAME_MIN
				       : MUONI_DISC_MAX_FRAME_DEFAULT;
	if (flags & FLAG_BODIES)
		run_bodies(data + 1, size - 1, max_frame);
	else
		run_stream(data + 1, size - 1, max_frame,
			   flags & FLAG_KEY ? fkey : NULL);
	return 0;
}
