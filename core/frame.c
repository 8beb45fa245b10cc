#include "core/frame.h"

#include <muon/muon.h>

#include "core/error.h"

static const char *const type_names[MUONI_FT_MAX_] = {
	[MUONI_FT_PAD] = "PAD",
	[MUONI_FT_DATA] = "DATA",
	[MUONI_FT_HELLO] = "HELLO",
	[MUONI_FT_STREAM_INFO] = "STREAM_INFO",
	[MUONI_FT_LOSS] = "LOSS",
	[MUONI_FT_STREAM_END] = "STREAM_END",
	[MUONI_FT_HEARTBEAT] = "HEARTBEAT",
	[MUONI_FT_SUBSCRIBE] = "SUBSCRIBE",
	[MUONI_FT_UNSUBSCRIBE] = "UNSUBSCRIBE",
	[MUONI_FT_CLOSE] = "CLOSE",
};

int muoni_frame_check(const struct muoni_frame_hdr *h, uint32_t len,
		      size_t avail, uint32_t max_data)
{
	uint16_t type = h->type;

	if (len < MUONI_FRAME_HDR_LEN)
		return MUONI_ERR(MUON_EPROTO, "frame length %u below header",
				 len);
	if (muoni_align8(len) > avail || len > avail)
		return MUONI_ERR(MUON_EPROTO,
				 "frame length %u runs past the %zu bytes "
				 "available", len, avail);
	if (type == 0 || type >= MUONI_FT_MAX_)
		return MUONI_ERR(MUON_EPROTO, "unknown frame type %u", type);
	if (type == MUONI_FT_DATA) {
		if (len - MUONI_FRAME_HDR_LEN > max_data)
			return MUONI_ERR(MUON_EPROTO,
					 "data frame of %u bytes above the "
					 "limit %u", len - MUONI_FRAME_HDR_LEN,
					 max_data);
	} else if (type != MUONI_FT_PAD &&
		   len - MUONI_FRAME_HDR_LEN > MUONI_CTRL_MAX) {
		return MUONI_ERR(MUON_EPROTO, "%s frame of %u bytes too large",
				 type_names[type], len);
	}
	return 0;
}

/* ---- little helpers: unaligned-safe loads and stores ---- */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t *frame_start(void *buf, size_t cap, uint16_t type,
			    uint32_t payload, uint32_t stream_id, uint64_t seq)
{
	uint32_t len = MUONI_FRAME_HDR_LEN + payload;
	struct muoni_frame_hdr h;

	if (muoni_align8(len) > cap)
		return NULL;
	muoni_frame_hdr_init(&h, type, len, stream_id, seq);
	memcpy(buf, &h, sizeof(h));
	/* Zero the alignment tail so no stale bytes leave the process. */
	memset((uint8_t *)buf + len, 0, muoni_align8(len) - len);
	return (uint8_t *)buf + MUONI_FRAME_HDR_LEN;
}

#define HELLO_LEN 48u

size_t muoni_enc_hello(void *buf, size_t cap, const struct muoni_hello *m)
{
	uint8_t *p = frame_start(buf, cap, MUONI_FT_HELLO, HELLO_LEN, 0, 0);
	size_t nlen;

	if (!p)
		return 0;
	put32(p, m->version);
	put32(p + 4, m->flags);
	put64(p + 8, m->ctx_id);
	memset(p + 16, 0, 32);
	nlen = strnlen(m->name, 32);
	memcpy(p + 16, m->name, nlen);
	return muoni_align8(MUONI_FRAME_HDR_LEN + HELLO_LEN);
}

int muoni_dec_hello(const void *pv, size_t len, struct muoni_hello *m)
{
	const uint8_t *p = pv;
	size_t i;

	if (len < HELLO_LEN)
		return MUONI_ERR(MUON_EPROTO, "HELLO payload of %zu bytes is "
				 "shorter than %u", len, HELLO_LEN);
	m->version = get32(p);
	m->flags = get32(p + 4);
	m->ctx_id = get64(p + 8);
	memcpy(m->name, p + 16, 32);
	m->name[32] = '\0';
	/* Names end up in logs: keep them printable. */
	for (i = 0; m->name[i]; i++)
		if ((unsigned char)m->name[i] < 0x20 ||
		    (unsigned char)m->name[i] > 0x7e)
			m->name[i] = '?';
	return 0;
}

#define SUB_FIXED 16u
#define RESUME_LEN 24u

size_t muoni_enc_subscribe(void *buf, size_t cap, const char *topic,
			   uint32_t topic_len, uint8_t start, uint64_t start_seq,
			   const struct muoni_resume *resume, uint32_t n_resume)
{
	uint32_t tpad = muoni_align8(topic_len);
	uint64_t payload = SUB_FIXED + tpad + (uint64_t)n_resume * RESUME_LEN;
	uint8_t *p;
	uint32_t i;

	if (topic_len == 0 || topic_len > MUONI_TOPIC_MAX ||
	    n_resume > MUONI_SUB_RESUME_MAX || payload > MUONI_CTRL_MAX)
		return 0;
	p = frame_start(buf, cap, MUONI_FT_SUBSCRIBE, (uint32_t)payload, 0, 0);
	if (!p)
		return 0;
	put16(p, (uint16_t)topic_len);
	p[2] = start;
	p[3] = 0;
	put32(p + 4, n_resume);
	put64(p + 8, start_seq);
	memset(p + SUB_FIXED, 0, tpad);
	memcpy(p + SUB_FIXED, topic, topic_len);
	p += SUB_FIXED + tpad;
	for (i = 0; i < n_resume; i++, p += RESUME_LEN) {
		put64(p, resume[i].publisher_id);
		put32(p + 8, resume[i].stream_id);
		put32(p + 12, 0);
		put64(p + 16, resume[i].next_seq);
	}
	return muoni_align8(MUONI_FRAME_HDR_LEN + (uint32_t)payload);
}

static int check_topic(const uint8_t *t, uint32_t n)
{
	if (n == 0 || n > MUONI_TOPIC_MAX)
		return MUONI_ERR(MUON_EPROTO, "topic length %u out of range",
				 n);
	if (memchr(t, '\0', n))
		return MUONI_ERR(MUON_EPROTO, "topic contains a NUL byte");
	return 0;
}

int muoni_dec_subscribe(const void *pv, size_t len, struct muoni_subscribe *m)
{
	const uint8_t *p = pv;
	uint32_t tl, tpad, n;
	int rc;

	if (len < SUB_FIXED)
		return MUONI_ERR(MUON_EPROTO, "SUBSCRIBE payload too short");
	tl = get16(p);
	m->start = p[2];
	n = get32(p + 4);
	m->start_seq = get64(p + 8);
	rc = check_topic(p + SUB_FIXED, tl > len - SUB_FIXED ? 0 : tl);
	if (rc)
		return muoni_err_push(rc, "SUBSCRIBE");
	tpad = muoni_align8(tl);
	if (m->start > MUON_START_SEQ)
		return MUONI_ERR(MUON_EPROTO, "SUBSCRIBE start mode %u unknown",
				 m->start);
	if (m->start == MUON_START_SEQ && m->start_seq == 0)
		return MUONI_ERR(MUON_EPROTO, "SUBSCRIBE from sequence 0");
	if (n > MUONI_SUB_RESUME_MAX ||
	    (uint64_t)SUB_FIXED + tpad + (uint64_t)n * RESUME_LEN > len)
		return MUONI_ERR(MUON_EPROTO, "SUBSCRIBE resume list of %u "
				 "entries does not fit in %zu bytes", n, len);
	memcpy(m->topic, p + SUB_FIXED, tl);
	m->topic[tl] = '\0';
	m->topic_len = tl;
	m->n_resume = n;
	m->resume_raw = p + SUB_FIXED + tpad;
	return 0;
}

void muoni_subscribe_resume_get(const struct muoni_subscribe *m, uint32_t i,
				struct muoni_resume *out)
{
	const uint8_t *p = m->resume_raw + (size_t)i * RESUME_LEN;

	out->publisher_id = get64(p);
	out->stream_id = get32(p + 8);
	out->next_seq = get64(p + 16);
}

size_t muoni_enc_unsubscribe(void *buf, size_t cap, const char *topic,
			     uint32_t topic_len)
{
	uint32_t tpad = muoni_align8(topic_len);
	uint8_t *p;

	if (topic_len == 0 || topic_len > MUONI_TOPIC_MAX)
		return 0;
	p = frame_start(buf, cap, MUONI_FT_UNSUBSCRIBE, 8 + tpad, 0, 0);
	if (!p)
		return 0;
	memset(p, 0, 8 + tpad);
	put16(p, (uint16_t)topic_len);
	memcpy(p + 8, topic, topic_len);
	return muoni_align8(MUONI_FRAME_HDR_LEN + 8 + tpad);
}

int muoni_dec_unsubscribe(const void *pv, size_t len, char *topic,
			  uint32_t *topic_len)
{
	const uint8_t *p = pv;
	uint32_t tl;
	int rc;

	if (len < 8)
		return MUONI_ERR(MUON_EPROTO, "UNSUBSCRIBE payload too short");
	tl = get16(p);
	rc = check_topic(p + 8, tl > len - 8 ? 0 : tl);
	if (rc)
		return muoni_err_push(rc, "UNSUBSCRIBE");
	memcpy(topic, p + 8, tl);
	topic[tl] = '\0';
	*topic_len = tl;
	return 0;
}

#define SINFO_FIXED 24u

size_t muoni_enc_stream_info(void *buf, size_t cap, uint32_t stream_id,
			     uint64_t first_seq, uint64_t publisher_id,
			     uint64_t deliver_from, const char *topic,
			     uint32_t topic_len)
{
	uint32_t tpad = muoni_align8(topic_len);
	uint8_t *p;

	if (topic_len == 0 || topic_len > MUONI_TOPIC_MAX)
		return 0;
	p = frame_start(buf, cap, MUONI_FT_STREAM_INFO, SINFO_FIXED + tpad,
			stream_id, first_seq);
	if (!p)
		return 0;
	memset(p, 0, SINFO_FIXED + tpad);
	put64(p, publisher_id);
	put64(p + 8, deliver_from);
	put16(p + 16, (uint16_t)topic_len);
	memcpy(p + SINFO_FIXED, topic, topic_len);
	return muoni_align8(MUONI_FRAME_HDR_LEN + SINFO_FIXED + tpad);
}

int muoni_dec_stream_info(const void *pv, size_t len,
			  struct muoni_stream_info *m)
{
	const uint8_t *p = pv;
	uint32_t tl;
	int rc;

	if (len < SINFO_FIXED)
		return MUONI_ERR(MUON_EPROTO, "STREAM_INFO payload too short");
	m->publisher_id = get64(p);
	m->deliver_from = get64(p + 8);
	tl = get16(p + 16);
	rc = check_topic(p + SINFO_FIXED, tl > len - SINFO_FIXED ? 0 : tl);
	if (rc)
		return muoni_err_push(rc, "STREAM_INFO");
	memcpy(m->topic, p + SINFO_FIXED, tl);
	m->topic[tl] = '\0';
	m->topic_len = tl;
	return 0;
}

size_t muoni_enc_loss(void *buf, size_t cap, uint32_t stream_id,
		      uint64_t from_seq, uint64_t to_seq)
{
	uint8_t *p = frame_start(buf, cap, MUONI_FT_LOSS, 8, stream_id,
				 from_seq);
	if (!p)
		return 0;
	put64(p, to_seq);
	return MUONI_FRAME_HDR_LEN + 8;
}

int muoni_dec_loss(const void *p, size_t len, uint64_t *to_seq)
{
	if (len < 8)
		return MUONI_ERR(MUON_EPROTO, "LOSS payload too short");
	*to_seq = get64(p);
	return 0;
}

size_t muoni_enc_simple(void *buf, size_t cap, uint16_t type,
			uint32_t stream_id, uint64_t seq)
{
	if (!frame_start(buf, cap, type, 0, stream_id, seq))
		return 0;
	return MUONI_FRAME_HDR_LEN;
}

size_t muoni_enc_close(void *buf, size_t cap, uint32_t reason)
{
	uint8_t *p = frame_start(buf, cap, MUONI_FT_CLOSE, 8, 0, 0);
	if (!p)
		return 0;
	put32(p, reason);
	put32(p + 4, 0);
	return MUONI_FRAME_HDR_LEN + 8;
}

int muoni_dec_close(const void *p, size_t len, uint32_t *reason)
{
	if (len < 8)
		return MUONI_ERR(MUON_EPROTO, "CLOSE payload too short");
	*reason = get32(p);
	return 0;
}
