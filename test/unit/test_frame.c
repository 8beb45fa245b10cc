/*
 * Frame codec: header checks, every control message encoder/decoder round
 * trip, decoder rejection of malformed payloads, and a fixed-seed mutation
 * loop that runs every decoder over damaged encodings (meant for ASan).
 */
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/muoni.h"

static struct muoni_frame_hdr hdr_of(const void *buf)
{
	struct muoni_frame_hdr h;

	memcpy(&h, buf, sizeof(h));
	return h;
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* A heap copy of exactly `len` bytes, so ASan sees any read past it. */
static uint8_t *exact(const void *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

static void expect_err(int rc)
{
	assert_int_equal(rc, MUON_EPROTO);
	assert_true(strlen(muon_errmsg()) > 0);
}

/* ------------------------------------------------------- frame_check */

static struct muoni_frame_hdr mkhdr(uint16_t type, uint32_t len)
{
	struct muoni_frame_hdr h;

	muoni_frame_hdr_init(&h, type, len, 1, 1);
	return h;
}

static void test_check_accepts(void **state)
{
	struct muoni_frame_hdr h;
	uint16_t t;

	(void)state;
	for (t = 1; t < MUONI_FT_MAX_; t++) {
		h = mkhdr(t, 32);
		assert_int_equal(muoni_frame_check(&h, 32, 32, 0), 0);
		h = mkhdr(t, 40);
		assert_int_equal(muoni_frame_check(&h, 40, 4096, 1024), 0);
	}
	/* Exactly max_data and exactly the bytes available. */
	h = mkhdr(MUONI_FT_DATA, 32 + 1024);
	assert_int_equal(muoni_frame_check(&h, h.len, h.len, 1024), 0);
	h = mkhdr(MUONI_FT_DATA, 32);
	assert_int_equal(muoni_frame_check(&h, 32, 32, 0), 0);
	/* Control payload exactly at the limit. */
	h = mkhdr(MUONI_FT_SUBSCRIBE, 32 + MUONI_CTRL_MAX);
	assert_int_equal(muoni_frame_check(&h, h.len, h.len, 0), 0);
	/* PAD frames have no size limit of their own. */
	h = mkhdr(MUONI_FT_PAD, 1u << 20);
	assert_int_equal(muoni_frame_check(&h, h.len, h.len, 0), 0);
}

static void test_check_rejects(void **state)
{
	struct muoni_frame_hdr h;
	uint32_t len;

	(void)state;
	/* Below the header, at every length. */
	for (len = 0; len < 32; len++) {
		h = mkhdr(MUONI_FT_DATA, len);
		expect_err(muoni_frame_check(&h, len, 4096, 1024));
		h = mkhdr(MUONI_FT_HEARTBEAT, len);
		expect_err(muoni_frame_check(&h, len, 4096, 1024));
	}
	/* Past what is available, including the alignment tail. */
	h = mkhdr(MUONI_FT_DATA, 48);
	expect_err(muoni_frame_check(&h, 48, 40, 1024));
	expect_err(muoni_frame_check(&h, 48, 47, 1024));
	h = mkhdr(MUONI_FT_DATA, 41);
	expect_err(muoni_frame_check(&h, 41, 41, 1024));
	assert_int_equal(muoni_frame_check(&h, 41, 48, 1024), 0);
	h = mkhdr(MUONI_FT_DATA, 32);
	expect_err(muoni_frame_check(&h, 32, 0, 1024));
	expect_err(muoni_frame_check(&h, 32, 31, 1024));
	/* Lengths near 2^32 must not wrap the alignment round-up. */
	for (len = 0xfffffff8u; len != 0; len++) {
		h = mkhdr(MUONI_FT_DATA, len);
		expect_err(muoni_frame_check(&h, len, 4096, 1024));
		h = mkhdr(MUONI_FT_PAD, len);
		expect_err(muoni_frame_check(&h, len, 1u << 20, 1024));
	}
	/* Unknown types. */
	h = mkhdr(0, 32);
	expect_err(muoni_frame_check(&h, 32, 32, 0));
	h = mkhdr(MUONI_FT_MAX_, 32);
	expect_err(muoni_frame_check(&h, 32, 32, 0));
	h = mkhdr(MUONI_FT_MAX_ + 1, 32);
	expect_err(muoni_frame_check(&h, 32, 32, 0));
	h = mkhdr(0xffff, 32);
	expect_err(muoni_frame_check(&h, 32, 32, 0));
	/* Data above max_data. */
	h = mkhdr(MUONI_FT_DATA, 32 + 1025);
	expect_err(muoni_frame_check(&h, h.len, 8192, 1024));
	h = mkhdr(MUONI_FT_DATA, 33);
	expect_err(muoni_frame_check(&h, 33, 64, 0));
	/* Control frames above MUONI_CTRL_MAX. */
	for (len = MUONI_FT_HELLO; len < MUONI_FT_MAX_; len++) {
		h = mkhdr((uint16_t)len, 32 + MUONI_CTRL_MAX + 1);
		expect_err(muoni_frame_check(&h, h.len, 1u << 20, 1u << 20));
		h = mkhdr((uint16_t)len, 32 + MUONI_CTRL_MAX + 8);
		expect_err(muoni_frame_check(&h, h.len, 1u << 20, 1u << 20));
	}
}

/* --------------------------------------------------------- round trips */

static void test_hello_roundtrip(void **state)
{
	uint8_t buf[256];
	struct muoni_hello in = {.version = 1, .flags = 0xa5a5u,
				 .ctx_id = 0x0123456789abcdefull};
	struct muoni_hello out;
	struct muoni_frame_hdr h;
	size_t n;

	(void)state;
	snprintf(in.name, sizeof(in.name), "node-7");
	n = muoni_enc_hello(buf, sizeof(buf), &in);
	assert_int_equal(n, 80);
	h = hdr_of(buf);
	assert_int_equal(h.type, MUONI_FT_HELLO);
	assert_int_equal(h.len, 80);
	assert_int_equal(h.stream_id, 0);
	assert_int_equal(h.commit, 0);
	assert_int_equal(muoni_frame_check(&h, h.len, n, 0), 0);
	memset(&out, 0x55, sizeof(out));
	assert_int_equal(muoni_dec_hello(buf + 32, h.len - 32, &out), 0);
	assert_int_equal(out.version, 1);
	assert_int_equal(out.flags, 0xa5a5u);
	assert_true(out.ctx_id == in.ctx_id);
	assert_string_equal(out.name, "node-7");

	/* A 32-character name survives whole and is terminated. */
	memset(in.name, 'n', 32);
	in.name[32] = '\0';
	assert_int_equal(muoni_enc_hello(buf, sizeof(buf), &in), 80);
	assert_int_equal(muoni_dec_hello(buf + 32, 48, &out), 0);
	assert_int_equal(strlen(out.name), 32);

	/* Unprintable bytes from a peer are replaced. */
	assert_int_equal(muoni_enc_hello(buf, sizeof(buf), &in), 80);
	buf[32 + 16] = 0x07;
	buf[32 + 17] = (uint8_t)0xc3;
	assert_int_equal(muoni_dec_hello(buf + 32, 48, &out), 0);
	assert_int_equal(out.name[0], '?');
	assert_int_equal(out.name[1], '?');

	/* Too small a buffer: nothing encoded. */
	assert_int_equal(muoni_enc_hello(buf, 79, &in), 0);
}

static void check_subscribe_roundtrip(const char *topic, uint32_t tl,
				      uint8_t start, uint64_t start_seq,
				      uint32_t n_resume)
{
	size_t cap = 32 + 16 + 256 + (size_t)n_resume * 24 + 64;
	uint8_t *buf = calloc(1, cap), *pl;
	struct muoni_resume *res = calloc(n_resume + 1, sizeof(*res));
	struct muoni_subscribe m;
	struct muoni_frame_hdr h;
	size_t n;
	uint32_t i;

	assert_non_null(buf);
	assert_non_null(res);
	for (i = 0; i < n_resume; i++) {
		res[i].publisher_id = 0x1000000000000000ull + i * 977;
		res[i].stream_id = 7 + i;
		res[i].next_seq = 1 + (uint64_t)i * 1000003;
	}
	n = muoni_enc_subscribe(buf, cap, topic, tl, start, start_seq, res,
				n_resume);
	assert_int_not_equal(n, 0);
	assert_int_equal(n % 8, 0);
	h = hdr_of(buf);
	assert_int_equal(h.type, MUONI_FT_SUBSCRIBE);
	assert_int_equal(muoni_align8(h.len), n);
	assert_int_equal(muoni_frame_check(&h, h.len, n, 0), 0);
	pl = exact(buf + 32, h.len - 32);
	memset(&m, 0, sizeof(m));
	assert_int_equal(muoni_dec_subscribe(pl, h.len - 32, &m), 0);
	assert_int_equal(m.topic_len, tl);
	assert_memory_equal(m.topic, topic, tl);
	assert_int_equal(m.topic[tl], '\0');
	assert_int_equal(m.start, start);
	assert_true(m.start_seq == start_seq);
	assert_int_equal(m.n_resume, n_resume);
	for (i = 0; i < n_resume; i++) {
		struct muoni_resume r;
		muoni_subscribe_resume_get(&m, i, &r);
		assert_true(r.publisher_id == res[i].publisher_id);
		assert_int_equal(r.stream_id, res[i].stream_id);
		assert_true(r.next_seq == res[i].next_seq);
	}
	free(pl);
	free(res);
	free(buf);
}

static void test_subscribe_roundtrip(void **state)
{
	char topic[256];
	uint32_t max_fit;

	(void)state;
	memset(topic, 'T', sizeof(topic));
	topic[3] = '/';
	check_subscribe_roundtrip("a", 1, MUON_START_LATEST, 0, 0);
	check_subscribe_roundtrip("prices.eu", 9, MUON_START_EARLIEST, 0, 0);
	check_subscribe_roundtrip("prices.eu", 9, MUON_START_SEQ, 42, 0);
	check_subscribe_roundtrip("12345678", 8, MUON_START_SEQ, 1, 1);
	check_subscribe_roundtrip(topic, 255, MUON_START_SEQ, UINT64_MAX, 3);
	check_subscribe_roundtrip(topic, 100, MUON_START_LATEST, 0, 100);
	/* As many resume entries as fit in a control payload... */
	max_fit = (MUONI_CTRL_MAX - 16 - 256) / 24;
	check_subscribe_roundtrip(topic, 255, MUON_START_EARLIEST, 0, max_fit);
	/* ...and one more does not encode. */
	{
		size_t cap = 32 + MUONI_CTRL_MAX + 4096;
		uint8_t *buf = calloc(1, cap);
		struct muoni_resume *res = calloc(max_fit + 1, sizeof(*res));

		assert_int_equal(muoni_enc_subscribe(buf, cap, topic, 255, 0, 0,
						     res, max_fit + 1), 0);
		assert_int_equal(muoni_enc_subscribe(buf, cap, topic, 0, 0, 0,
						     res, 0), 0);
		assert_int_equal(muoni_enc_subscribe(buf, cap, topic, 256, 0, 0,
						     res, 0), 0);
		/* Buffer too small. */
		assert_int_equal(muoni_enc_subscribe(buf, 32 + 16 + 7, "abc", 3,
						     0, 0, res, 0), 0);
		free(res);
		free(buf);
	}
}

static void test_unsubscribe_roundtrip(void **state)
{
	uint8_t buf[512];
	char topic[256], out[MUONI_TOPIC_MAX + 1];
	struct muoni_frame_hdr h;
	uint32_t tl, got;
	size_t n;

	(void)state;
	for (tl = 1; tl <= 255; tl += (tl < 20 ? 1 : 29)) {
		uint8_t *pl;
		memset(topic, 'a' + (int)(tl % 26), tl);
		n = muoni_enc_unsubscribe(buf, sizeof(buf), topic, tl);
		assert_int_equal(n, muoni_align8(32 + 8 + muoni_align8(tl)));
		h = hdr_of(buf);
		assert_int_equal(h.type, MUONI_FT_UNSUBSCRIBE);
		assert_int_equal(muoni_frame_check(&h, h.len, n, 0), 0);
		pl = exact(buf + 32, h.len - 32);
		got = 0;
		assert_int_equal(muoni_dec_unsubscribe(pl, h.len - 32, out,
						       &got), 0);
		assert_int_equal(got, tl);
		assert_memory_equal(out, topic, tl);
		assert_int_equal(out[tl], '\0');
		free(pl);
	}
	assert_int_equal(muoni_enc_unsubscribe(buf, sizeof(buf), topic, 0), 0);
	assert_int_equal(muoni_enc_unsubscribe(buf, sizeof(buf), topic, 256),
			 0);
	assert_int_equal(muoni_enc_unsubscribe(buf, 40, "abc", 3), 0);
}

static void test_stream_info_roundtrip(void **state)
{
	uint8_t buf[512];
	char topic[256];
	struct muoni_stream_info m;
	struct muoni_frame_hdr h;
	uint32_t tl;
	size_t n;

	(void)state;
	for (tl = 1; tl <= 255; tl += (tl < 20 ? 1 : 23)) {
		uint64_t df = tl % 3 ? 0 : 1000 + tl;
		uint8_t *pl;

		memset(topic, 'A' + (int)(tl % 26), tl);
		n = muoni_enc_stream_info(buf, sizeof(buf), 77 + tl, 5 + tl,
					  0xfeedfacecafebeefull, df, topic, tl);
		assert_int_equal(n, muoni_align8(32 + 24 + muoni_align8(tl)));
		h = hdr_of(buf);
		assert_int_equal(h.type, MUONI_FT_STREAM_INFO);
		assert_int_equal(h.stream_id, 77 + tl);
		assert_true(h.seq == 5 + tl);
		assert_int_equal(muoni_frame_check(&h, h.len, n, 0), 0);
		pl = exact(buf + 32, h.len - 32);
		memset(&m, 0, sizeof(m));
		assert_int_equal(muoni_dec_stream_info(pl, h.len - 32, &m), 0);
		assert_true(m.publisher_id == 0xfeedfacecafebeefull);
		assert_true(m.deliver_from == df);
		assert_int_equal(m.topic_len, tl);
		assert_memory_equal(m.topic, topic, tl);
		assert_int_equal(m.topic[tl], '\0');
		free(pl);
	}
	assert_int_equal(muoni_enc_stream_info(buf, sizeof(buf), 1, 1, 1, 0,
					       topic, 0), 0);
	assert_int_equal(muoni_enc_stream_info(buf, sizeof(buf), 1, 1, 1, 0,
					       topic, 256), 0);
	assert_int_equal(muoni_enc_stream_info(buf, 32 + 24, 1, 1, 1, 0,
					       "abc", 3), 0);
}

static void test_loss_close_simple_roundtrip(void **state)
{
	uint8_t buf[128];
	struct muoni_frame_hdr h;
	uint64_t to = 0;
	uint32_t reason = 0;
	uint16_t t;
	size_t n;

	(void)state;
	n = muoni_enc_loss(buf, sizeof(buf), 9, 100, 250);
	assert_int_equal(n, 40);
	h = hdr_of(buf);
	assert_int_equal(h.type, MUONI_FT_LOSS);
	assert_int_equal(h.len, 40);
	assert_int_equal(h.stream_id, 9);
	assert_true(h.seq == 100);
	assert_int_equal(muoni_frame_check(&h, h.len, n, 0), 0);
	assert_int_equal(muoni_dec_loss(buf + 32, 8, &to), 0);
	assert_true(to == 250);
	assert_int_equal(muoni_enc_loss(buf, 39, 9, 1, 2), 0);

	n = muoni_enc_close(buf, sizeof(buf), MUON_DOWN_SLOW);
	assert_int_equal(n, 40);
	h = hdr_of(buf);
	assert_int_equal(h.type, MUONI_FT_CLOSE);
	assert_int_equal(muoni_frame_check(&h, h.len, n, 0), 0);
	assert_int_equal(muoni_dec_close(buf + 32, 8, &reason), 0);
	assert_int_equal(reason, MUON_DOWN_SLOW);
	assert_int_equal(muoni_enc_close(buf, 39, 1), 0);

	for (t = MUONI_FT_STREAM_END; t <= MUONI_FT_HEARTBEAT; t++) {
		n = muoni_enc_simple(buf, sizeof(buf), t, 3, 99);
		assert_int_equal(n, 32);
		h = hdr_of(buf);
		assert_int_equal(h.type, t);
		assert_int_equal(h.len, 32);
		assert_int_equal(h.stream_id, 3);
		assert_true(h.seq == 99);
		assert_int_equal(muoni_frame_check(&h, h.len, n, 0), 0);
	}
	assert_int_equal(muoni_enc_simple(buf, 31, MUONI_FT_HEARTBEAT, 0, 0),
			 0);
}

/* ------------------------------------------------------ decoder rejects */

static void test_truncated(void **state)
{
	uint8_t big[4096];
	struct muoni_hello hm;
	struct muoni_subscribe sm;
	struct muoni_stream_info si;
	char topic[MUONI_TOPIC_MAX + 1];
	uint32_t tl, reason;
	uint64_t to;
	size_t len, full;
	uint8_t buf[1024];
	struct muoni_resume res[3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};

	(void)state;
	memset(big, 0, sizeof(big));
	for (len = 0; len < 48; len++) {
		uint8_t *p = exact(big, len);
		expect_err(muoni_dec_hello(p, len, &hm));
		free(p);
	}
	/* Fixed parts: every length below the minimum. */
	for (len = 0; len < 16; len++) {
		uint8_t *p = exact(big, len);
		expect_err(muoni_dec_subscribe(p, len, &sm));
		free(p);
	}
	for (len = 0; len < 8; len++) {
		uint8_t *p = exact(big, len);
		expect_err(muoni_dec_unsubscribe(p, len, topic, &tl));
		expect_err(muoni_dec_loss(p, len, &to));
		expect_err(muoni_dec_close(p, len, &reason));
		free(p);
	}
	for (len = 0; len < 24; len++) {
		uint8_t *p = exact(big, len);
		expect_err(muoni_dec_stream_info(p, len, &si));
		free(p);
	}

	/* Whole messages cut anywhere before their end. */
	full = muoni_enc_subscribe(buf, sizeof(buf), "topic-ten!", 10,
				   MUON_START_SEQ, 5, res, 3);
	assert_int_not_equal(full, 0);
	full = hdr_of(buf).len - 32;
	for (len = 0; len < full; len++) {
		uint8_t *p = exact(buf + 32, len);
		expect_err(muoni_dec_subscribe(p, len, &sm));
		free(p);
	}
	full = muoni_enc_subscribe(buf, sizeof(buf), "abc", 3, 0, 0, NULL, 0);
	full = hdr_of(buf).len - 32;
	assert_int_equal(full, 16 + 8);
	for (len = 0; len < full; len++) {
		uint8_t *p = exact(buf + 32, len);
		expect_err(muoni_dec_subscribe(p, len, &sm));
		free(p);
	}
	muoni_enc_unsubscribe(buf, sizeof(buf), "topic-ten!", 10);
	for (len = 0; len < 8 + 10; len++) {
		uint8_t *p = exact(buf + 32, len);
		expect_err(muoni_dec_unsubscribe(p, len, topic, &tl));
		free(p);
	}
	muoni_enc_stream_info(buf, sizeof(buf), 1, 1, 2, 0, "topic-ten!", 10);
	for (len = 0; len < 24 + 10; len++) {
		uint8_t *p = exact(buf + 32, len);
		expect_err(muoni_dec_stream_info(p, len, &si));
		free(p);
	}
}

/* Payload builders with free-form fields. */
static size_t raw_subscribe(uint8_t *p, uint16_t tl, uint8_t start,
			    uint32_t n, uint64_t seq, const char *topic,
			    size_t topic_bytes)
{
	put16(p, tl);
	p[2] = start;
	p[3] = 0;
	put32(p + 4, n);
	put64(p + 8, seq);
	memcpy(p + 16, topic, topic_bytes);
	return 16 + topic_bytes;
}

static void test_bad_topics(void **state)
{
	uint8_t p[2048];
	char topic[MUONI_TOPIC_MAX + 1];
	struct muoni_subscribe sm;
	struct muoni_stream_info si;
	char many[600];
	uint32_t tl, big;
	size_t len;

	(void)state;
	memset(many, 'x', sizeof(many));

	/* NUL inside the topic, at the start, middle and end. */
	{
		const char *nul_topics[] = {"\0bcdefgh", "abc\0efgh", "abcdefg\0"};
		size_t i;

		for (i = 0; i < 3; i++) {
			len = raw_subscribe(p, 8, 0, 0, 0, nul_topics[i], 8);
			expect_err(muoni_dec_subscribe(p, len, &sm));
			memset(p, 0, 8);
			put16(p, 8);
			memcpy(p + 8, nul_topics[i], 8);
			expect_err(muoni_dec_unsubscribe(p, 16, topic, &tl));
			memset(p, 0, 24);
			put64(p, 1);
			put16(p + 16, 8);
			memcpy(p + 24, nul_topics[i], 8);
			expect_err(muoni_dec_stream_info(p, 32, &si));
		}
	}

	/* topic_len 0. */
	len = raw_subscribe(p, 0, 0, 0, 0, many, 8);
	expect_err(muoni_dec_subscribe(p, len, &sm));
	memset(p, 0, 16);
	memcpy(p + 8, many, 8);
	expect_err(muoni_dec_unsubscribe(p, 16, topic, &tl));
	memset(p, 0, 24);
	memcpy(p + 24, many, 8);
	expect_err(muoni_dec_stream_info(p, 32, &si));

	/* topic_len above 255 with enough bytes behind it. */
	for (big = 256; big <= 512; big += 256) {
		len = raw_subscribe(p, (uint16_t)big, 0, 0, 0, many, 520);
		expect_err(muoni_dec_subscribe(p, len, &sm));
		memset(p, 0, 8);
		put16(p, (uint16_t)big);
		memcpy(p + 8, many, 520);
		expect_err(muoni_dec_unsubscribe(p, 8 + 520, topic, &tl));
		memset(p, 0, 24);
		put16(p + 16, (uint16_t)big);
		memcpy(p + 24, many, 520);
		expect_err(muoni_dec_stream_info(p, 24 + 520, &si));
	}
	len = raw_subscribe(p, 0xffff, 0, 0, 0, many, 520);
	expect_err(muoni_dec_subscribe(p, len, &sm));

	/* topic_len pointing past the payload. */
	len = raw_subscribe(p, 20, 0, 0, 0, many, 19);
	expect_err(muoni_dec_subscribe(p, len, &sm));
	memset(p, 0, 8);
	put16(p, 20);
	memcpy(p + 8, many, 19);
	expect_err(muoni_dec_unsubscribe(p, 8 + 19, topic, &tl));
	memset(p, 0, 24);
	put16(p + 16, 20);
	memcpy(p + 24, many, 19);
	expect_err(muoni_dec_stream_info(p, 24 + 19, &si));
}

static void test_subscribe_fields(void **state)
{
	uint8_t *p = calloc(1, 200000), *q;
	struct muoni_subscribe sm;
	size_t len;

	(void)state;
	assert_non_null(p);
	/* Start modes. */
	len = raw_subscribe(p, 8, 3, 0, 1, "abcdefgh", 8);
	expect_err(muoni_dec_subscribe(p, len, &sm));
	len = raw_subscribe(p, 8, 255, 0, 1, "abcdefgh", 8);
	expect_err(muoni_dec_subscribe(p, len, &sm));
	len = raw_subscribe(p, 8, MUON_START_SEQ, 0, 0, "abcdefgh", 8);
	expect_err(muoni_dec_subscribe(p, len, &sm));
	len = raw_subscribe(p, 8, MUON_START_SEQ, 0, 1, "abcdefgh", 8);
	assert_int_equal(muoni_dec_subscribe(p, len, &sm), 0);
	len = raw_subscribe(p, 8, MUON_START_EARLIEST, 0, 0, "abcdefgh", 8);
	assert_int_equal(muoni_dec_subscribe(p, len, &sm), 0);
	len = raw_subscribe(p, 8, MUON_START_LATEST, 0, 0, "abcdefgh", 8);
	assert_int_equal(muoni_dec_subscribe(p, len, &sm), 0);

	/* Resume counts that do not fit the payload. */
	len = raw_subscribe(p, 8, 0, 1, 0, "abcdefgh", 8);
	expect_err(muoni_dec_subscribe(p, len, &sm));
	expect_err(muoni_dec_subscribe(p, len + 23, &sm));
	assert_int_equal(muoni_dec_subscribe(p, len + 24, &sm), 0);
	assert_int_equal(sm.n_resume, 1);
	len = raw_subscribe(p, 8, 0, 2, 0, "abcdefgh", 8);
	expect_err(muoni_dec_subscribe(p, len + 47, &sm));
	len = raw_subscribe(p, 8, 0, 0xffffffffu, 0, "abcdefgh", 8);
	expect_err(muoni_dec_subscribe(p, 200000, &sm));
	len = raw_subscribe(p, 8, 0, 0x0aaaaaabu, 0, "abcdefgh", 8);
	expect_err(muoni_dec_subscribe(p, 200000, &sm));
	/* Above MUONI_SUB_RESUME_MAX even though the bytes are there. */
	len = raw_subscribe(p, 8, 0, MUONI_SUB_RESUME_MAX + 1, 0, "abcdefgh",
			    8);
	expect_err(muoni_dec_subscribe(p, 200000, &sm));
	len = raw_subscribe(p, 8, 0, MUONI_SUB_RESUME_MAX, 0, "abcdefgh", 8);
	assert_int_equal(muoni_dec_subscribe(p, 200000, &sm), 0);
	assert_int_equal(sm.n_resume, MUONI_SUB_RESUME_MAX);

	/* An odd topic length: resume entries start after its padding. */
	len = raw_subscribe(p, 3, 0, 1, 0, "abc\0\0\0\0\0", 8);
	put64(p + len, 0x1111);
	put32(p + len + 8, 0x22);
	put32(p + len + 12, 0);
	put64(p + len + 16, 0x3333);
	q = exact(p, len + 24);
	assert_int_equal(muoni_dec_subscribe(q, len + 24, &sm), 0);
	{
		struct muoni_resume r;
		muoni_subscribe_resume_get(&sm, 0, &r);
		assert_true(r.publisher_id == 0x1111);
		assert_int_equal(r.stream_id, 0x22);
		assert_true(r.next_seq == 0x3333);
	}
	assert_string_equal(sm.topic, "abc");
	free(q);
	free(p);
}

/* ------------------------------------------------------------ mutation */

static size_t seed_encodings(uint8_t bufs[][1024], size_t *lens)
{
	struct muoni_hello hm = {.version = 1, .ctx_id = 42};
	struct muoni_resume res[4] = {
		{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}};
	size_t k = 0;

	snprintf(hm.name, sizeof(hm.name), "mutant");
	lens[k] = muoni_enc_hello(bufs[k], 1024, &hm), k++;
	lens[k] = muoni_enc_subscribe(bufs[k], 1024, "a/b/c", 5, 0, 0, NULL, 0),
	k++;
	lens[k] = muoni_enc_subscribe(bufs[k], 1024, "topic.with.resume", 17,
				      MUON_START_SEQ, 77, res, 4), k++;
	lens[k] = muoni_enc_unsubscribe(bufs[k], 1024, "zz", 2), k++;
	lens[k] = muoni_enc_stream_info(bufs[k], 1024, 5, 10, 99, 12, "info",
					4), k++;
	lens[k] = muoni_enc_loss(bufs[k], 1024, 5, 1, 9), k++;
	lens[k] = muoni_enc_close(bufs[k], 1024, 3), k++;
	lens[k] = muoni_enc_simple(bufs[k], 1024, MUONI_FT_HEARTBEAT, 0, 0), k++;
	return k;
}

static unsigned long n_ok[4], n_bad[4];

static void decode_all(const uint8_t *frame, size_t flen)
{
	struct muoni_frame_hdr h;
	struct muoni_hello hm;
	struct muoni_subscribe sm;
	struct muoni_stream_info si;
	char topic[MUONI_TOPIC_MAX + 1];
	uint32_t tl, reason;
	uint64_t to;
	const uint8_t *pl = frame + (flen >= 32 ? 32 : flen);
	size_t plen = flen >= 32 ? flen - 32 : 0;
	uint8_t *p = exact(pl, plen);

	if (flen >= 32) {
		memcpy(&h, frame, sizeof(h));
		if (muoni_frame_check(&h, h.len, flen, 1024) == 0) {
			assert_true(h.len >= 32 && h.len <= flen);
			assert_true(h.type > 0 && h.type < MUONI_FT_MAX_);
		}
	}
	if (muoni_dec_hello(p, plen, &hm) == 0) {
		size_t i;

		assert_true(strlen(hm.name) <= 32);
		for (i = 0; hm.name[i]; i++)
			assert_true(hm.name[i] >= 0x20 && hm.name[i] <= 0x7e);
	}
	if (muoni_dec_subscribe(p, plen, &sm) != 0) {
		n_bad[0]++;
	} else {
		uint32_t i;

		n_ok[0]++;
		assert_true(sm.topic_len >= 1 && sm.topic_len <= 255);
		assert_int_equal(strlen(sm.topic), sm.topic_len);
		assert_true(sm.start <= MUON_START_SEQ);
		assert_false(sm.start == MUON_START_SEQ && sm.start_seq == 0);
		assert_true(16 + muoni_align8(sm.topic_len) +
				    (uint64_t)sm.n_resume * 24 <= plen);
		for (i = 0; i < sm.n_resume; i++) {
			struct muoni_resume r;
			muoni_subscribe_resume_get(&sm, i, &r);
		}
	}
	if (muoni_dec_unsubscribe(p, plen, topic, &tl) != 0) {
		n_bad[1]++;
	} else {
		n_ok[1]++;
		assert_true(tl >= 1 && tl <= 255 && 8 + tl <= plen);
		assert_int_equal(strlen(topic), tl);
	}
	if (muoni_dec_stream_info(p, plen, &si) != 0) {
		n_bad[2]++;
	} else {
		n_ok[2]++;
		assert_true(si.topic_len >= 1 && si.topic_len <= 255 &&
			    24 + si.topic_len <= plen);
		assert_int_equal(strlen(si.topic), si.topic_len);
	}
	(void)muoni_dec_loss(p, plen, &to);
	(void)muoni_dec_close(p, plen, &reason);
	free(p);
}

static void test_mutation(void **state)
{
	static uint8_t seeds[8][1024];
	size_t lens[8], n_seeds, it, iters = 100000;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	uint8_t work[1100];
	const char *env = getenv("MUON_UNIT_FUZZ_ITERS");

	(void)state;
	if (env)
		iters = strtoull(env, NULL, 10);
	n_seeds = seed_encodings(seeds, lens);
	for (it = 0; it < n_seeds; it++)
		assert_int_not_equal(lens[it], 0);
	for (it = 0; it < iters; it++) {
		size_t s = ut_below(&rng, n_seeds), len = lens[s];
		unsigned flips = 1 + (unsigned)ut_below(&rng, 4), f;

		memcpy(work, seeds[s], len);
		memset(work + len, 0, sizeof(work) - len);
		for (f = 0; f < flips; f++) {
			size_t at = ut_below(&rng, len);
			switch (ut_below(&rng, 4)) {
			case 0: /* flip a bit */
				work[at] ^= (uint8_t)(1u << ut_below(&rng, 8));
				break;
			case 1: /* random byte */
				work[at] = (uint8_t)ut_rand(&rng);
				break;
			case 2: /* interesting values into a length field */
				work[at] = (uint8_t[]){0, 0xff, 0x7f, 0x80,
						       1}[ut_below(&rng, 5)];
				break;
			default: /* overwrite a 16-bit field */
				if (at + 1 < len)
					put16(work + at, (uint16_t)ut_rand(&rng));
			}
		}
		switch (ut_below(&rng, 3)) {
		case 0: /* truncate */
			len = ut_below(&rng, len + 1);
			break;
		case 1: /* extend with garbage */
			{
				size_t extra = ut_below(&rng, 64), i;
				for (i = 0; i < extra; i++)
					work[len + i] = (uint8_t)ut_rand(&rng);
				len += extra;
			}
			break;
		default:
			break;
		}
		decode_all(work, len);
	}
	/* The loop must exercise both outcomes of every topic decoder. */
	for (it = 0; it < 3 && iters >= 10000; it++) {
		assert_true(n_ok[it] > 100);
		assert_true(n_bad[it] > 100);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_accepts),
		cmocka_unit_test(test_check_rejects),
		cmocka_unit_test(test_hello_roundtrip),
		cmocka_unit_test(test_subscribe_roundtrip),
		cmocka_unit_test(test_unsubscribe_roundtrip),
		cmocka_unit_test(test_stream_info_roundtrip),
		cmocka_unit_test(test_loss_close_simple_roundtrip),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_topics),
		cmocka_unit_test(test_subscribe_fields),
		cmocka_unit_test(test_mutation),
	};

	return cmocka_run_group_tests_name("unit.frame", tests, NULL, NULL);
}
