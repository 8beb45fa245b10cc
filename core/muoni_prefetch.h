/*
 * Write prefetch and small copies for the hot paths (send log, shm rings).
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#ifndef MUONI_PREFETCH_H
#define MUONI_PREFETCH_H

#include <stddef.h>
#include <string.h>

/*
 * Ask for a cache line in the state a store needs. A plain prefetch only
 * gets it shared, and the store must then still invalidate the other
 * core's copy, stalling every store queued behind it. x86 CPUs without
 * PREFETCHW run the opcode as a NOP; elsewhere the compiler's write hint
 * is the best there is.
 */
#if defined(__x86_64__) || defined(__i386__)
#define MUONI_PREFETCH_W(p) \
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)(p)))
#else
#define MUONI_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#endif

/*
 * Copy for the small sizes that dominate latency, inline and without a
 * libc call: a call pushes registers, and on the publish path every store
 * queues behind the ring store that may be waiting for its cache line.
 * Copies exactly n bytes (overlapping moves for the odd sizes); calls
 * nothing for n <= 64, so a caller that knows that stays a leaf.
 */
static inline void muoni_copy_small(unsigned char *d, const unsigned char *s,
				    size_t n)
{
	if (n <= 16) {
		if (n >= 8) {
			__builtin_memcpy(d, s, 8);
			__builtin_memcpy(d + n - 8, s + n - 8, 8);
		} else if (n >= 4) {
			__builtin_memcpy(d, s, 4);
			__builtin_memcpy(d + n - 4, s + n - 4, 4);
		} else if (n) {
			d[0] = s[0];
			d[n / 2] = s[n / 2];
			d[n - 1] = s[n - 1];
		}
	} else if (n <= 64) {
		__builtin_memcpy(d, s, 16);
		if (n > 32) {
			__builtin_memcpy(d + 16, s + 16, 16);
			__builtin_memcpy(d + n - 32, s + n - 32, 16);
		}
		__builtin_memcpy(d + n - 16, s + n - 16, 16);
	} else {
		memcpy(d, s, n);
	}
}

#endif /* MUONI_PREFETCH_H */
