/*
 * SIGBUS guard for shared rings. A peer holding a ring's file descriptor
 * can shrink the file under our mapping; the next access would kill the
 * process with SIGBUS. Named tmpfs files cannot be sealed against that, so
 * (as Wayland compositors do with client buffers) muon installs a SIGBUS
 * handler, chained to any handler installed before it, that replaces a
 * faulting ring mapping with anonymous memory and marks it. The connection
 * is then closed as a protocol error on the next control-plane run.
 * The handler is re-installed at every ring mapping if something replaced
 * it; a SIGBUS handler installed after a context mapped its rings must
 * chain to the one it replaced, or those rings lose the guard.
 */
#ifndef MUONI_SHM_GUARD_H
#define MUONI_SHM_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Register a mapping; returns a slot (>= 0) or a negative status. */
int muoni_shm_guard_add(void *addr, size_t len);
void muoni_shm_guard_del(int slot);
/* Whether the mapping in `slot` was shrunk under us. */
bool muoni_shm_guard_hit(int slot);

#endif
