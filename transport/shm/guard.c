#include "transport/shm/guard.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/muoni.h"

#define GUARD_SLOTS 16384

struct guard {
	_Atomic uintptr_t start; /* 0: free */
	_Atomic size_t len;
	_Atomic int hit;
};

static struct guard guards[GUARD_SLOTS];
static struct sigaction prev_bus;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	int i;

	for (i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t s = atomic_load_explicit(&guards[i].start,
						   memory_order_acquire);
		size_t len = atomic_load_explicit(&guards[i].len,
						  memory_order_acquire);

		if (!s || a < s || a >= s + len)
			continue;
		/* Zero pages in place of the shrunk file: the access that
		 * faulted is retried and succeeds; the owner sees `hit`. */
		if (mmap((void *)s, len, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
		    MAP_FAILED)
			break;
		atomic_store_explicit(&guards[i].hit, 1, memory_order_release);
		return;
	}
	/* Not ours: behave as if we were never installed. */
	if (prev_bus.sa_flags & SA_SIGINFO) {
		prev_bus.sa_sigaction(sig, si, uc);
	} else if (prev_bus.sa_handler != SIG_DFL &&
		   prev_bus.sa_handler != SIG_IGN) {
		prev_bus.sa_handler(sig);
	} else {
		/* Default action: restore it; the access faults again and
		 * the process dies as it would have. */
		signal(SIGBUS, SIG_DFL);
	}
}

/*
 * (Re)install the handler if someone replaced it since: applications and
 * test frameworks install SIGBUS handlers of their own; the latest one
 * becomes the one we chain to. Called at every ring mapping, so a handler
 * installed before a context creates its rings is always covered.
 */
static int install(void)
{
	struct sigaction sa, cur;
	int rc = 0;

	pthread_mutex_lock(&install_lock);
	if (sigaction(SIGBUS, NULL, &cur)) {
		rc = -1;
	} else if (!((cur.sa_flags & SA_SIGINFO) &&
		     cur.sa_sigaction == on_sigbus)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sigbus;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		prev_bus = cur;
		if (sigaction(SIGBUS, &sa, NULL))
			rc = -1;
	}
	pthread_mutex_unlock(&install_lock);
	return rc;
}

int muoni_shm_guard_add(void *addr, size_t len)
{
	int i;

	if (install())
		return MUONI_ERR_ERRNO("install the SIGBUS guard for shared "
				       "rings");
	for (i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t zero = 0;

		if (atomic_load_explicit(&guards[i].start,
					 memory_order_relaxed))
			continue;
		atomic_store_explicit(&guards[i].len, len,
				      memory_order_relaxed);
		atomic_store_explicit(&guards[i].hit, 0, memory_order_relaxed);
		if (atomic_compare_exchange_strong(&guards[i].start, &zero,
						   (uintptr_t)addr))
			return i;
	}
	return MUONI_ERR(MUON_ELIMIT, "more than %d shared rings mapped",
			 GUARD_SLOTS);
}

void muoni_shm_guard_del(int slot)
{
	if (slot >= 0 && slot < GUARD_SLOTS)
		atomic_store_explicit(&guards[slot].start, 0,
				      memory_order_release);
}

bool muoni_shm_guard_hit(int slot)
{
	return slot >= 0 && slot < GUARD_SLOTS &&
	       atomic_load_explicit(&guards[slot].hit, memory_order_acquire);
}
