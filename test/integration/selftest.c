/*
 * "muon-itest selftest": the payload generator must catch what the tests
 * are meant to catch, and be fast enough for tens of GB.
 */
#include "itest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The payload generator must catch what the tests are meant to catch. */
int selftest_main(int argc, char **argv)
{
	size_spec_t rnd = {0, 65536}, fix = {1, 256};
	pattern_t p, q, f;
	uint8_t *buf;
	uint64_t seq, missed = 0, total = 0, bytes = 0;
	size_t lo = SIZE_MAX, hi = 0;
	double t0, secs;
	int i;
	const char *scale = getenv("MUON_ITEST_SCALE");
	uint64_t n = 100000, div = 1;

	(void)argc;
	(void)argv;
	set_role_name("selftest");
	if (scale && parse_u64(scale, &div) == 0 && div > 1)
		n = n / div < 20000 ? 20000 : n / div;
	if (pattern_init(&p, 1234, 1, &rnd) || pattern_init(&q, 1235, 1, &rnd) ||
	    pattern_init(&f, 1234, 1, &fix))
		die("out of memory");
	buf = malloc(65536 + 8);
	if (!buf)
		die("out of memory");

	for (seq = 1; seq <= n; seq++) {
		size_t len = pattern_len(&p, seq);

		if (len > 65536)
			die("seq %" PRIu64 ": length %zu above the maximum",
			    seq, len);
		if (len < lo)
			lo = len;
		if (len > hi)
			hi = len;
		pattern_fill(&p, seq, buf);
		if (pattern_check(&p, seq, buf, len) != -1)
			die("seq %" PRIu64 ": a correct payload fails", seq);
		if (len > 0) {
			size_t at = (size_t)(mix64(seq) % len);

			buf[at] ^= (uint8_t)(1u << (seq % 8));
			if (pattern_check(&p, seq, buf, len) != (long)at)
				die("seq %" PRIu64 ": flipped byte %zu not "
				    "reported",
				    seq, at);
			buf[at] ^= (uint8_t)(1u << (seq % 8));
			if (pattern_check(&p, seq, buf, len - 1) == -1)
				die("seq %" PRIu64 ": short payload accepted",
				    seq);
		}
		/* the neighbour's or another publisher's message is wrong */
		if (len >= 1) {
			total++;
			if (pattern_check(&p, seq + 1, buf, len) == -1)
				missed++;
			if (pattern_check(&q, seq, buf, len) == -1)
				missed++;
		}
	}
	if (missed > total / 100)
		die("%" PRIu64 " of %" PRIu64 " wrong messages accepted", missed,
		    total);
	if (lo > 64 || hi < 65536 - 64)
		die("sizes do not cover 0..65536 (%zu..%zu)", lo, hi);
	/* the extremes themselves */
	{
		size_spec_t z = {1, 0}, m = {1, 65536};
		pattern_t pz, pm;

		if (pattern_init(&pz, 99, 2, &z) || pattern_init(&pm, 99, 2, &m))
			die("out of memory");
		pattern_fill(&pm, 7, buf);
		if (pattern_len(&pz, 7) != 0 || pattern_len(&pm, 7) != 65536 ||
		    pattern_check(&pz, 7, buf, 0) != -1 ||
		    pattern_check(&pm, 7, buf, 65536) != -1 ||
		    pattern_check(&pm, 8, buf, 65536) == -1)
			die("empty or 64 KiB messages mishandled");
		pattern_free(&pz);
		pattern_free(&pm);
	}
	for (seq = 1; seq <= 1000; seq++)
		if (pattern_len(&f, seq) != 256)
			die("fixed size not honoured");

	t0 = now_s();
	for (i = 0; i < 2; i++)
		for (seq = 1; seq <= n / 4; seq++) {
			size_t len = pattern_len(&p, seq);

			pattern_fill(&p, seq, buf);
			if (pattern_check(&p, seq, buf, len) != -1)
				die("check failed");
			bytes += len;
		}
	secs = now_s() - t0;
	note("ok: %" PRIu64 " wrong messages out of %" PRIu64 " accepted; "
	     "fill+check %.2f GB/s",
	     missed, total, (double)bytes / 1e9 / secs);
	pattern_free(&p);
	pattern_free(&q);
	pattern_free(&f);
	free(buf);
	return 0;
}
