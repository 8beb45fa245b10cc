/*
 * Same-host shared-memory transport.
 *
 * The subscriber owns its receive ring: a file <shm_dir>/muon-<pid>-<ctx>-
 * <conn>.ring that it creates, locks (flock) for its lifetime, maps, and
 * passes to the publisher over a SOCK_SEQPACKET unix socket bound in the
 * abstract namespace as "muon-shm/<name>". The socket is the control
 * channel (HELLO, SUBSCRIBE, ...), the wake-up path for sleeping
 * subscribers, and the liveness signal: a peer that dies closes it.
 *
 * Frames are written into the ring whole, each starting on a 64-byte
 * boundary (never wrapping, PAD to the end)
 * and published by a release store of (position | 1) into the frame's
 * first word; the subscriber spins on that word at its read position, so
 * the hot path has no system call, no lock and no extra cache line for a
 * separate counter. The subscriber returns space by storing its read
 * position in the ring header, which the publisher reads only when its
 * cached view of free space runs out.
 */
#ifndef MUONI_SHM_H
#define MUONI_SHM_H

#include <stdint.h>

struct muon_ctx;

#define MUONI_SHM_MAGIC 0x31474e524e4f554dull /* "MUONRNG1" */
#define MUONI_SHM_VERSION 1u
#define MUONI_SHM_HDR_SIZE 4096u
#define MUONI_SHM_SLACK 64u /* a PAD header may start < 32 B before the end */

struct muoni_shm_ring_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t ring_size;
	uint64_t owner_ctx_id;
	int32_t owner_pid;
	uint32_t reserved;
	uint8_t pad0[64 - 40];
	/* Written by the subscriber only. */
	_Alignas(64) uint64_t consumed;
	uint8_t pad1[56];
	/* Set by a subscriber about to sleep; cleared by the publisher that
	 * wakes it. wake_enabled is sticky once the subscriber ever armed, so
	 * busy-polling pairs never pay for the fence on the publisher side. */
	_Alignas(64) uint32_t waiting;
	uint32_t wake_enabled;
};

/* Remove ring files whose owner is gone (no flock held, pid dead). */
void muoni_shm_cleanup_stale(struct muon_ctx *ctx);

#endif
