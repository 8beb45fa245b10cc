/*
 * Deterministic payloads: generation and byte-for-byte verification.
 */
#include "itest.h"

#include <stdlib.h>
#include <string.h>

/* Offsets into the pool are multiples of 8 in [0, POOL_OFFSETS * 8). */
#define POOL_OFFSETS 4096u

uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int parse_sizes(const char *text, uint32_t max_size, size_spec_t *out)
{
	size_spec_t s = {0, max_size};

	if (strcmp(text, "random") == 0) {
		s.fixed = 0;
	} else if (strncmp(text, "fixed:", 6) == 0) {
		if (parse_u32(text + 6, &s.size) != 0)
			return -1;
		s.fixed = 1;
	} else {
		return -1;
	}
	*out = s;
	return 0;
}

int pattern_init(pattern_t *p, uint64_t publisher_id, uint32_t stream_id,
		 const size_spec_t *sizes)
{
	size_t words, i;
	uint64_t x, *w;

	memset(p, 0, sizeof(*p));
	p->key = mix64(publisher_id ^ mix64(0x5eed0000ull + stream_id));
	p->sizes = *sizes;
	words = (size_t)sizes->size / 8 + POOL_OFFSETS + 2;
	p->pool_len = words * 8;
	/* 64-byte alignment keeps memcmp/memcpy on their fast paths. */
	if (posix_memalign((void **)&w, 64, p->pool_len) != 0)
		return -1;
	x = p->key;
	for (i = 0; i < words; i++) {
		x += 0x9e3779b97f4a7c15ull;
		w[i] = mix64(x);
	}
	p->pool = (uint8_t *)w;
	return 0;
}

void pattern_free(pattern_t *p)
{
	free(p->pool);
	p->pool = NULL;
}

struct msg_shape {
	size_t len;
	size_t off;
	uint64_t tag;
};

static inline struct msg_shape shape(const pattern_t *p, uint64_t seq)
{
	struct msg_shape m;
	uint64_t h = mix64(p->key ^ (seq * 0xd6e8feb86659fd93ull));
	uint64_t h2 = mix64(h);

	if (p->sizes.fixed)
		m.len = p->sizes.size;
	else
		m.len = (size_t)(h % ((uint64_t)p->sizes.size + 1));
	m.off = (size_t)(h2 % POOL_OFFSETS) * 8;
	m.tag = mix64(h2 ^ seq);
	return m;
}

size_t pattern_len(const pattern_t *p, uint64_t seq)
{
	return shape(p, seq).len;
}

void pattern_fill(const pattern_t *p, uint64_t seq, void *buf)
{
	struct msg_shape m = shape(p, seq);
	uint8_t *b = buf;
	size_t i, head = m.len < 8 ? m.len : 8;

	memcpy(b, p->pool + m.off, m.len);
	for (i = 0; i < head; i++)
		b[i] ^= (uint8_t)(m.tag >> (8 * i));
}

long pattern_check(const pattern_t *p, uint64_t seq, const void *data,
		   size_t len)
{
	struct msg_shape m = shape(p, seq);
	const uint8_t *d = data, *ref = p->pool + m.off;
	size_t i, head = m.len < 8 ? m.len : 8;

	if (len != m.len)
		return (long)len;
	for (i = 0; i < head; i++)
		if (d[i] != (uint8_t)(ref[i] ^ (uint8_t)(m.tag >> (8 * i))))
			return (long)i;
	if (m.len > 8 && memcmp(d + 8, ref + 8, m.len - 8) != 0) {
		for (i = 8; i < m.len; i++)
			if (d[i] != ref[i])
				return (long)i;
	}
	return -1;
}
