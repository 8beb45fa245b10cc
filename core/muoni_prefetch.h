/*
 * Write prefetch for the hot paths (send log, shm rings).
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#ifndef MUONI_PREFETCH_H
#define MUONI_PREFETCH_H

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

#endif /* MUONI_PREFETCH_H */
