/*
 * Discovery protocol codec: see disc.h and docs/discovery.md.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/muoni.h"
#include "proto/disc.h"

static const char mac_label[] = "muon-disc-1";

void muoni_disc_buf_fini(struct muoni_disc_buf *b)
{
	if (!b)
		return;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int muoni_disc_buf_reserve(struct muoni_disc_buf *b, size_t n)
{
	size_t used = b->len - b->off, cap;
	uint8_t *p;

	if (b->cap - b->len >= n)
		return 0;
	/* Slide unconsumed bytes down before growing. */
	if (b->off) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		if (b->cap - b->len >= n)
			return 0;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap - used < n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return MUON_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void muoni_disc_buf_consume(struct muoni_disc_buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len) {
		b->off = 0;
		b->len = 0;
	}
}

void muoni_disc_mac_init(struct muoni_disc_mac *mac, const uint8_t *key,
			 const uint8_t *nonce)
{
	crypto_auth_hmacsha256_init(&mac->st, key, 32);
	crypto_auth_hmacsha256_update(&mac->st, (const uint8_t *)mac_label,
				      sizeof(mac_label) - 1);
	crypto_auth_hmacsha256_update(&mac->st, nonce, MUONI_DISC_NONCE_LEN);
}

void muoni_disc_mac_wipe(struct muoni_disc_mac *mac)
{
	if (mac)
		sodium_memzero(mac, sizeof(*mac));
}

static void mac_finish(const struct muoni_disc_mac *mac, const uint8_t *body,
		       size_t len, uint8_t out[MUONI_DISC_MAC_LEN])
{
	crypto_auth_hmacsha256_state st = mac->st;
	uint8_t full[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_update(&st, body, len);
	crypto_auth_hmacsha256_final(&st, full);
	memcpy(out, full, MUONI_DISC_MAC_LEN);
	sodium_memzero(&st, sizeof(st));
}

static void mac_compute(const uint8_t *key, const uint8_t *nonce,
			const uint8_t *body, size_t len,
			uint8_t mac[MUONI_DISC_MAC_LEN])
{
	struct muoni_disc_mac m;

	muoni_disc_mac_init(&m, key, nonce);
	mac_finish(&m, body, len, mac);
	muoni_disc_mac_wipe(&m);
}

static size_t varint_len(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *varint_put(uint8_t *p, size_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/*
 * The Frame is written by hand, straight into `out`, so the body is
 * encoded once and in place (no temporary copy, no allocation): field 1
 * (version, varint), field 2 (body, bytes), field 3 (mac, 16 bytes), the
 * encoding protobuf-c itself produces for a non-empty body.
 */
int muoni_disc_pack_mac(struct muoni_disc_buf *out,
			const Muon__Disc__Message *m,
			const struct muoni_disc_mac *mac, size_t max_frame)
{
	size_t blen = muon__disc__message__get_packed_size(m);
	size_t flen = 2 + 1 + varint_len(blen) + blen +
		      (mac ? 2 + MUONI_DISC_MAC_LEN : 0);
	uint8_t *p, *body;
	int rc;

	if (flen > max_frame)
		return MUONI_ERR(MUON_ETOOBIG, "discovery frame of %zu bytes "
				 "above the %zu-byte limit", flen, max_frame);
	rc = muoni_disc_buf_reserve(out, MUONI_DISC_LEN_BYTES + flen);
	if (rc)
		return MUONI_ERR(rc, "discovery send buffer");
	p = out->data + out->len;
	p[0] = (uint8_t)(flen >> 24);
	p[1] = (uint8_t)(flen >> 16);
	p[2] = (uint8_t)(flen >> 8);
	p[3] = (uint8_t)flen;
	p += MUONI_DISC_LEN_BYTES;
	*p++ = 0x08; /* field 1, varint */
	*p++ = MUONI_DISC_VERSION;
	*p++ = 0x12; /* field 2, length-delimited */
	p = varint_put(p, blen);
	body = p;
	muon__disc__message__pack(m, body);
	p += blen;
	if (mac) {
		*p++ = 0x1a; /* field 3, length-delimited */
		*p++ = MUONI_DISC_MAC_LEN;
		mac_finish(mac, body, blen, p);
	}
	out->len += MUONI_DISC_LEN_BYTES + flen;
	return 0;
}

int muoni_disc_pack(struct muoni_disc_buf *out, const Muon__Disc__Message *m,
		    const uint8_t *key, const uint8_t *nonce, size_t max_frame)
{
	struct muoni_disc_mac mac;
	int rc;

	if (!key)
		return muoni_disc_pack_mac(out, m, NULL, max_frame);
	muoni_disc_mac_init(&mac, key, nonce);
	rc = muoni_disc_pack_mac(out, m, &mac, max_frame);
	muoni_disc_mac_wipe(&mac);
	return rc;
}

int muoni_disc_next(const struct muoni_disc_buf *in, size_t max_frame,
		    const uint8_t **frame, size_t *len)
{
	size_t used = in->len - in->off;
	const uint8_t *p;
	uint32_t n;

	/* Before touching data: a buffer never reserved has data == NULL,
	 * and NULL + 0 is undefined behaviour (UBSan reports it). */
	if (used < MUONI_DISC_LEN_BYTES)
		return 0;
	p = in->data + in->off;
	n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	if (n == 0)
		return MUONI_ERR(MUON_EPROTO, "empty discovery frame");
	if (n > max_frame)
		return MUONI_ERR(MUON_ETOOBIG, "discovery frame of %u bytes "
				 "above the %zu-byte limit", n, max_frame);
	if (used - MUONI_DISC_LEN_BYTES < n)
		return 0;
	*frame = p + MUONI_DISC_LEN_BYTES;
	*len = n;
	return 1;
}

static int fail(int *code, int c, char *err, size_t errlen, int status,
		const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int fail(int *code, int c, char *err, size_t errlen, int status,
		const char *fmt, ...)
{
	va_list ap;

	*code = c;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return status;
}

int muoni_disc_unpack(const uint8_t *frame, size_t len, const uint8_t *key,
		      const uint8_t *nonce, Muon__Disc__Message **out,
		      int *code, char *err, size_t errlen)
{
	Muon__Disc__Frame *f;
	Muon__Disc__Message *m;
	uint8_t mac[MUONI_DISC_MAC_LEN];
	int rc = 0;

	f = muon__disc__frame__unpack(NULL, len, frame);
	if (!f)
		return fail(code, MUON__DISC__ERROR__CODE__BAD_FRAME, err,
			    errlen, MUON_EPROTO, "undecodable frame (%zu "
			    "bytes)", len);
	if (f->version != MUONI_DISC_VERSION) {
		rc = fail(code, MUON__DISC__ERROR__CODE__BAD_VERSION, err,
			  errlen, MUON_EPROTO, "protocol version %u, this "
			  "side speaks %u", f->version, MUONI_DISC_VERSION);
		goto free_frame;
	}
	if (key) {
		if (f->mac.len != MUONI_DISC_MAC_LEN) {
			rc = fail(code, MUON__DISC__ERROR__CODE__AUTH, err,
				  errlen, MUON_EAUTH, "message without a MAC "
				  "(is the cluster secret set on both "
				  "sides?)");
			goto free_frame;
		}
		mac_compute(key, nonce, f->body.data, f->body.len, mac);
		if (sodium_memcmp(mac, f->mac.data, sizeof(mac))) {
			rc = fail(code, MUON__DISC__ERROR__CODE__AUTH, err,
				  errlen, MUON_EAUTH, "wrong MAC (different "
				  "cluster secret?)");
			goto free_frame;
		}
	}
	m = muon__disc__message__unpack(NULL, f->body.len, f->body.data);
	if (!m) {
		rc = fail(code, MUON__DISC__ERROR__CODE__BAD_FRAME, err,
			  errlen, MUON_EPROTO, "undecodable message body (%zu "
			  "bytes)", f->body.len);
		goto free_frame;
	}
	if (m->kind_case == MUON__DISC__MESSAGE__KIND__NOT_SET) {
		muon__disc__message__free_unpacked(m, NULL);
		rc = fail(code, MUON__DISC__ERROR__CODE__BAD_FRAME, err,
			  errlen, MUON_EPROTO, "message of unknown kind");
		goto free_frame;
	}
	*out = m;
free_frame:
	muon__disc__frame__free_unpacked(f, NULL);
	return rc;
}

/* A peer's string as it may appear in a log line or an error reason:
 * control bytes as '?', cut to fit with "..." so lines stay lines. */
static void printable(const char *s, char *out, size_t n)
{
	size_t i, len = strlen(s);

	for (i = 0; i + 1 < n && i < len; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[i] = 0;
	if (len >= n && n > 4)
		memcpy(out + n - 4, "...", 4);
}

int muoni_disc_text_check(const char *what, const char *s, size_t max,
			  char *err, size_t errlen)
{
	size_t i, n = strlen(s);

	if (n > max) {
		snprintf(err, errlen, "%s of %zu bytes (at most %zu)", what, n,
			 max);
		return MUON_EINVAL;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) {
			snprintf(err, errlen, "%s has a control character at "
				 "byte %zu", what, i);
			return MUON_EINVAL;
		}
	return 0;
}

int muoni_disc_topic_check(const char *topic, bool allow_empty, char *err,
			   size_t errlen)
{
	size_t n = strlen(topic);

	/* Strings arrive NUL-terminated; one with an embedded NUL is
	 * judged by its first part, which is all that is ever used. */
	if (!n && !allow_empty) {
		snprintf(err, errlen, "empty topic");
		return MUON_EINVAL;
	}
	if (n > MUONI_DISC_TOPIC_MAX) {
		snprintf(err, errlen, "topic of %zu bytes (at most %u)", n,
			 MUONI_DISC_TOPIC_MAX);
		return MUON_EINVAL;
	}
	return 0;
}

int muoni_disc_pub_check(const Muon__Disc__Publication *p, char *err,
			 size_t errlen)
{
	struct muoni_endpoint ep;
	size_t i;
	char sub[160], topic[68], bad[68];

	if (muoni_disc_topic_check(p->topic, false, err, errlen))
		return MUON_EINVAL;
	printable(p->topic, topic, sizeof(topic));
	if (muoni_disc_text_check("host id", p->host_id,
				  MUONI_DISC_HOST_ID_MAX, err, errlen) ||
	    muoni_disc_text_check("context name", p->ctx_name,
				  MUONI_DISC_NAME_MAX, err, errlen))
		return MUON_EINVAL;
	if (!p->n_endpoints || p->n_endpoints > MUONI_DISC_MAX_ENDPOINTS) {
		snprintf(err, errlen, "topic '%s': %zu endpoints (1 to %u)",
			 topic, p->n_endpoints, MUONI_DISC_MAX_ENDPOINTS);
		return MUON_EINVAL;
	}
	for (i = 0; i < p->n_endpoints; i++) {
		const char *e = p->endpoints[i];
		size_t n = strlen(e);

		if (muoni_disc_text_check("endpoint", e,
					  MUONI_DISC_ENDPOINT_MAX, sub,
					  sizeof(sub)) ||
		    muoni_endpoint_parse(e, n, &ep)) {
			printable(e, bad, sizeof(bad));
			snprintf(err, errlen, "topic '%s': bad endpoint '%s'",
				 topic, bad);
			muoni_err_clear();
			return MUON_EINVAL;
		}
	}
	return 0;
}

const char *muoni_disc_code_name(int code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		&muon__disc__error__code__descriptor, code);

	return v ? v->name : "UNKNOWN";
}

void muoni_disc_host_id(char *out, size_t n)
{
	FILE *f = fopen("/etc/machine-id", "re");
	char line[128] = "";
	size_t l;

	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		fclose(f);
	}
	l = strcspn(line, "\r\n");
	line[l] = 0;
	if (!l && gethostname(line, sizeof(line) - 1))
		snprintf(line, sizeof(line), "unknown");
	line[sizeof(line) - 1] = 0;
	snprintf(out, n, "%.*s", (int)MUONI_DISC_HOST_ID_MAX, line);
}

int muoni_disc_daemons_parse(const char *list, struct muoni_endpoint **out,
			     unsigned *n)
{
	struct muoni_endpoint *eps = NULL;
	unsigned cnt = 0;
	const char *p = list;
	int rc;

	*out = NULL;
	*n = 0;
	if (!list)
		return 0;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char buf[MUONI_EP_TEXT + 16];
		const char *host, *rb;
		bool has_scheme, has_port, bare6;
		size_t hl, i;
		unsigned colons;

		while (len && isspace((unsigned char)*p))
			p++, len--;
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (len) {
			void *nb;

			if (len >= MUONI_EP_TEXT) {
				rc = MUONI_ERR(MUON_ECONFIG, "daemon address "
					       "'%.32s...' too long", p);
				goto free_eps;
			}
			if (cnt == MUONI_DISC_MAX_DAEMONS) {
				rc = MUONI_ERR(MUON_ECONFIG, "more than %u "
					       "discovery daemons",
					       MUONI_DISC_MAX_DAEMONS);
				goto free_eps;
			}
			/* "tcp://" and the port are optional: an operator
			 * types "host1,host2". */
			host = memmem(p, len, "://", 3);
			has_scheme = host != NULL;
			host = host ? host + 3 : p;
			hl = len - (size_t)(host - p);
			for (i = 0, colons = 0; i < hl; i++)
				colons += host[i] == ':';
			if (hl && host[0] == '[') {
				rb = memchr(host, ']', hl);
				has_port = rb && rb + 1 < host + hl;
				bare6 = false;
			} else {
				has_port = colons == 1;
				bare6 = colons > 1;
			}
			snprintf(buf, sizeof(buf), "%s%s%.*s%s%s",
				 has_scheme ? "" : "tcp://", bare6 ? "[" : "",
				 (int)len - (int)(host - p), host,
				 bare6 ? "]" : "", has_port ? "" : ":7440");
			if (has_scheme && host - p > 6) {
				rc = MUONI_ERR(MUON_ECONFIG, "daemon address "
					       "'%.*s': muond speaks tcp:// "
					       "only", (int)len, p);
				goto free_eps;
			}
			if (has_scheme)
				snprintf(buf, sizeof(buf), "%.*s%s%.*s%s%s",
					 (int)(host - p), p, bare6 ? "[" : "",
					 (int)hl, host, bare6 ? "]" : "",
					 has_port ? "" : ":7440");
			nb = realloc(eps, (cnt + 1) * sizeof(*eps));
			if (!nb) {
				rc = MUONI_ERR(MUON_ENOMEM, "daemon list");
				goto free_eps;
			}
			eps = nb;
			rc = muoni_endpoint_parse(buf, strlen(buf), &eps[cnt]);
			if (!rc && eps[cnt].kind != MUONI_EP_TCP)
				rc = MUONI_ERR(MUON_ECONFIG, "daemon address "
					       "'%.*s': muond speaks tcp:// "
					       "only", (int)len, p);
			if (!rc && eps[cnt].port == 0)
				rc = MUONI_ERR(MUON_ECONFIG, "daemon address "
					       "'%.*s': port 0", (int)len, p);
			if (rc)
				goto free_eps;
			cnt++;
		}
		if (!end)
			break;
		p = end + 1;
	}
	*out = eps;
	*n = cnt;
	return 0;
free_eps:
	free(eps);
	return rc;
}
