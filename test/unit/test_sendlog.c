/*
 * The send log against an independent model: positions of frames and PADs,
 * eviction (a frame is kept while its position is >= head - cap), oldest(),
 * find(), need(), and iteration with run() from any retained sequence.
 */
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/muoni.h"

struct mframe {
	uint64_t seq;
	uint64_t pos;
	uint32_t len;
};

struct model {
	struct muoni_sendlog log;
	uint64_t cap;
	uint64_t head;
	uint64_t next_seq;
	struct mframe *fr; /* retained frames, oldest first (static store) */
	size_t n, max;
	unsigned pads, small_pads;
};

/* Static so that a failed assertion leaks nothing LeakSanitizer sees. */
static struct mframe frame_store[8192 / MUONI_FRAME_HDR_LEN + 1];

static void model_init(struct model *m, uint64_t cap)
{
	memset(m, 0, sizeof(*m));
	assert_true(cap <= 8192);
	assert_int_equal(muoni_sendlog_init(&m->log, cap, 7), 0);
	m->cap = cap;
	m->next_seq = 1;
	m->max = cap / MUONI_FRAME_HDR_LEN + 1;
	m->fr = frame_store;
}

static void model_fini(struct model *m)
{
	muoni_sendlog_fini(&m->log);
	assert_null(m->log.buf);
	muoni_sendlog_fini(&m->log); /* twice is harmless */
}

static size_t model_index(const struct model *m, uint64_t seq)
{
	assert_true(seq >= m->fr[0].seq && seq < m->next_seq);
	return (size_t)(seq - m->fr[0].seq);
}

/* Append one message of `len` bytes to both the log and the model and
 * check everything that can be checked cheaply. */
static void append(struct model *m, uint32_t len)
{
	struct muoni_sendlog *log = &m->log;
	uint64_t off = m->head & (m->cap - 1);
	uint64_t flen = muoni_align8(MUONI_FRAME_HDR_LEN + len);
	uint64_t pad = off + flen > m->cap ? m->cap - off : 0;
	uint64_t pos = m->head + pad, seq;
	struct muoni_frame_hdr *h;

	/* need() counts the PAD. */
	assert_true(muoni_sendlog_need(log, len) == flen + pad);
	h = muoni_sendlog_reserve(log, len);
	assert_ptr_equal((uint8_t *)h, log->buf + (pos & (m->cap - 1)));
	ut_fill(h + 1, len, m->next_seq);
	seq = muoni_sendlog_commit(log, len);
	assert_true(seq == m->next_seq);
	m->next_seq++;
	m->head = pos + flen;
	assert_true(log->head == m->head);
	assert_true(log->next_seq == m->next_seq);
	/* The frame as written. */
	assert_int_equal(h->type, MUONI_FT_DATA);
	assert_int_equal(h->len, MUONI_FRAME_HDR_LEN + len);
	assert_int_equal(h->stream_id, 7);
	assert_true(h->seq == seq);
	/* The PAD, which may start fewer than 32 bytes before the end. */
	if (pad) {
		struct muoni_frame_hdr ph;

		memcpy(&ph, log->buf + off, sizeof(ph));
		assert_int_equal(ph.type, MUONI_FT_PAD);
		assert_int_equal(ph.len, pad);
		m->pads++;
		if (pad < MUONI_FRAME_HDR_LEN)
			m->small_pads++;
	}
	/* Model: append, then evict whatever starts before head - cap. */
	assert_true(m->n < m->max);
	m->fr[m->n].seq = seq;
	m->fr[m->n].pos = pos;
	m->fr[m->n].len = len;
	m->n++;
	if (m->head > m->cap) {
		size_t k = 0;
		while (k < m->n && m->fr[k].pos < m->head - m->cap)
			k++;
		memmove(m->fr, m->fr + k, (m->n - k) * sizeof(*m->fr));
		m->n -= k;
	}
	assert_true(m->n > 0);
	assert_true(muoni_sendlog_oldest(log) == m->fr[0].seq);
	/* The tail is the oldest frame, or a PAD right before it. */
	assert_true(log->tail <= m->fr[0].pos);
	assert_true(m->head <= m->cap || log->tail >= m->head - m->cap);
	assert_true(log->tail == m->fr[0].pos ||
		    (m->fr[0].pos & (m->cap - 1)) == 0);
	assert_true(muoni_sendlog_find(log, m->fr[0].seq) == m->fr[0].pos);
	assert_true(muoni_sendlog_find(log, m->fr[m->n - 1].seq) ==
		    m->fr[m->n - 1].pos);
	assert_true(muoni_sendlog_find(log, m->next_seq) == log->head);
}

static void check_find_all(const struct model *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (muoni_sendlog_find(&m->log, m->fr[i].seq) != m->fr[i].pos)
			fail_msg("find(%llu) = %llu, model says %llu",
				 (unsigned long long)m->fr[i].seq,
				 (unsigned long long)muoni_sendlog_find(
					 &m->log, m->fr[i].seq),
				 (unsigned long long)m->fr[i].pos);
}

/* Iterate with run() from `seq` to the head: exactly the retained frames
 * from seq on, in order, whole, with their bytes, and never a PAD. */
static void check_run_from(const struct model *m, uint64_t seq)
{
	const struct muoni_sendlog *log = &m->log;
	uint64_t pos = muoni_sendlog_find(log, seq);
	size_t idx = model_index(m, seq), n;
	const uint8_t *p = NULL;
	unsigned runs = 0;

	while ((n = muoni_sendlog_run(log, &pos, &p)) > 0) {
		size_t o = 0;

		assert_ptr_equal(p, log->buf + (pos & log->mask));
		assert_true(pos + n <= log->head);
		assert_true((pos & log->mask) + n <= log->cap);
		while (o < n) {
			struct muoni_frame_hdr h;

			assert_true(o + 8 <= n);
			memcpy(&h, p + o, sizeof(h));
			if (h.type != MUONI_FT_DATA)
				fail_msg("run from seq %llu: frame of type %u "
					 "(len %u) at position %llu inside a "
					 "run of %zu bytes at %llu; runs must "
					 "hold only DATA frames",
					 (unsigned long long)seq, h.type, h.len,
					 (unsigned long long)(pos + o), n,
					 (unsigned long long)pos);
			assert_true(idx < m->n);
			assert_true(h.seq == m->fr[idx].seq);
			assert_true(pos + o == m->fr[idx].pos);
			assert_int_equal(h.len,
					 MUONI_FRAME_HDR_LEN + m->fr[idx].len);
			assert_int_equal(ut_check(p + o + MUONI_FRAME_HDR_LEN,
						  m->fr[idx].len, h.seq), 0);
			o += muoni_align8(h.len);
			idx++;
		}
		assert_true(o == n);
		pos += n;
		assert_true(++runs <= 3);
	}
	assert_true(pos == log->head);
	assert_true(idx == m->n);
}

/* --------------------------------------------------------------- tests */

static void test_init(void **state)
{
	struct muoni_sendlog log;
	const uint64_t bad[] = {0, 1, 8, 2048, 4095, 4097, 4104, 6144, 12288,
				(1ull << 20) + 4096};
	const uint64_t good[] = {4096, 8192, 1ull << 20};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&log, 0, sizeof(log));
		assert_int_equal(muoni_sendlog_init(&log, bad[i], 1),
				 MUON_ECONFIG);
		assert_true(strlen(muon_errmsg()) > 0);
		assert_null(log.buf);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(muoni_sendlog_init(&log, good[i], 3), 0);
		assert_non_null(log.buf);
		assert_true(log.cap == good[i]);
		assert_true(log.head == 0 && log.tail == 0);
		assert_true(muoni_sendlog_oldest(&log) == 1);
		assert_true(muoni_sendlog_find(&log, 1) == 0);
		muoni_sendlog_fini(&log);
		assert_null(log.buf);
	}
}

/* A PAD that leaves 8, 16, 24 bytes or more: placement, need(), oldest. */
static void test_pad_placement(void **state)
{
	static const uint32_t fill[] = {8, 16, 24, 32, 40, 152, 1000};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fill) / sizeof(fill[0]); i++) {
		struct model m;
		uint64_t left;
		int k;

		model_init(&m, 4096);
		/* Fill to exactly `fill` bytes before the end. */
		while ((left = m.cap - m.head) > fill[i]) {
			uint64_t want = left - fill[i];
			uint64_t chunk = want < 1056 ? want : 1056;

			if (want - chunk > 0 && want - chunk < 32)
				chunk = want - 32;
			assert_true(chunk >= 32 && chunk % 8 == 0);
			append(&m, (uint32_t)chunk - 32);
		}
		assert_true(m.cap - m.head == fill[i]);
		/* A frame one byte bigger than the space left needs the PAD. */
		{
			uint32_t len = fill[i] >= 32 ? fill[i] - 31 : 0;
			uint64_t flen = muoni_align8(32 + len);
			assert_true(muoni_sendlog_need(&m.log, len) ==
				    flen + fill[i]);
			append(&m, len);
			assert_int_equal(m.pads, 1);
			assert_true(m.fr[m.n - 1].pos == m.cap);
		}
		check_find_all(&m);
		for (k = 0; k < 40; k++)
			append(&m, (uint32_t)(k * 37 % 300));
		check_find_all(&m);
		model_fini(&m);
	}
}

/* Frames exactly filling the buffer need no PAD. */
static void test_exact_fit(void **state)
{
	struct model m;
	int k;

	(void)state;
	model_init(&m, 4096);
	for (k = 0; k < 16; k++)
		append(&m, 256 - 32);
	assert_true(m.head == 4096);
	assert_true(muoni_sendlog_need(&m.log, 224) == 256);
	for (k = 0; k < 64; k++)
		append(&m, 256 - 32);
	assert_int_equal(m.pads, 0);
	assert_int_equal(m.n, 16);
	check_find_all(&m);
	model_fini(&m);
}

static void random_laps(uint64_t cap, uint32_t maxlen, unsigned appends,
			uint64_t seed, bool runs)
{
	struct model m;
	uint64_t rng = seed;
	unsigned i;

	model_init(&m, cap);
	for (i = 0; i < appends; i++) {
		append(&m, (uint32_t)ut_below(&rng, maxlen + 1));
		if (!runs) {
			if (i % 16 == 0)
				check_find_all(&m);
			continue;
		}
		if (i % 4 == 0)
			check_run_from(&m, m.fr[ut_below(&rng, m.n)].seq);
		if (i % 64 == 0) {
			check_run_from(&m, m.fr[0].seq);
			check_run_from(&m, m.fr[m.n - 1].seq);
		}
	}
	assert_true(m.head > 100 * cap); /* many laps round */
	assert_true(m.pads > 50);
	assert_true(m.small_pads > 0);
	model_fini(&m);
}

static void test_model_4096(void **state)
{
	(void)state;
	random_laps(4096, 1024, 40000, 0x1234567887654321ull, false);
}

static void test_model_8192(void **state)
{
	(void)state;
	random_laps(8192, 1024, 40000, 0xdeadbeef01234567ull, false);
	random_laps(8192, 64, 60000, 0x0badcafe0badcafeull, false);
}

/* Runs from the oldest frame across the end of the buffer. */
static void test_run_skips_pad(void **state)
{
	struct model m;
	int k;

	(void)state;
	/* 30 frames of 136 bytes leave 16 bytes: a PAD shorter than a
	 * header, then the 31st frame at position 4096. */
	model_init(&m, 4096);
	for (k = 0; k < 31; k++)
		append(&m, 100);
	assert_int_equal(m.small_pads, 1);
	assert_true(m.fr[0].seq == 2); /* seq 1 made room for 31 */
	check_run_from(&m, 31);
	check_run_from(&m, 30);
	check_run_from(&m, 2);
	model_fini(&m);

	/* 17 frames of 232 bytes leave 152: an ordinary PAD. */
	model_init(&m, 4096);
	for (k = 0; k < 18; k++)
		append(&m, 200);
	assert_int_equal(m.pads, 1);
	assert_int_equal(m.small_pads, 0);
	check_run_from(&m, 18);
	check_run_from(&m, 17);
	check_run_from(&m, m.fr[0].seq);
	model_fini(&m);
}

static void test_run_random(void **state)
{
	(void)state;
	random_laps(4096, 1024, 20000, 0x5555aaaa5555aaaaull, true);
	random_laps(8192, 1024, 20000, 0x0123456789abcdefull, true);
}

/* Run from the head is empty; from a PAD at the head of an empty log it
 * moves to the next lap. */
static void test_run_edges(void **state)
{
	struct model m;
	uint64_t pos;
	const uint8_t *p = NULL;

	(void)state;
	model_init(&m, 4096);
	pos = 0;
	assert_int_equal(muoni_sendlog_run(&m.log, &pos, &p), 0);
	append(&m, 10);
	pos = m.log.head;
	assert_int_equal(muoni_sendlog_run(&m.log, &pos, &p), 0);
	pos = 0;
	assert_int_equal(muoni_sendlog_run(&m.log, &pos, &p), 48);
	assert_ptr_equal(p, m.log.buf);
	model_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_pad_placement),
		cmocka_unit_test(test_exact_fit),
		cmocka_unit_test(test_model_4096),
		cmocka_unit_test(test_model_8192),
		cmocka_unit_test(test_run_edges),
		cmocka_unit_test(test_run_skips_pad),
		cmocka_unit_test(test_run_random),
	};

	return cmocka_run_group_tests_name("unit.sendlog", tests, NULL, NULL);
}
