/*
 * muon-ring-spin: a bare shared-memory ping-pong that moves through a ring
 * of slots, as any buffering transport must, instead of reusing one cache
 * line the way muon-bench's --raw baseline does. No muon inside: it shows
 * what the ring access pattern itself costs on a host, so muon's figures
 * can be read against both floors. Optionally adds a fixed amount of local
 * work per message on each side.
 *
 * usage: muon-ring-spin [--slots N] [--stride BYTES] [--work N] [--pause]
 *                       [--count N] [--warmup N] [--cpu A,B]
 * Prints one line: min p50 p90 p99 p99.9 max of the round trip in ns.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fprintf(stderr, "muon-ring-spin: cannot pin to CPU %d: %s\n",
			cpu, strerror(errno));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct ring {
	uint8_t *base;
	size_t slots, stride;
};

static _Atomic uint64_t *slot_seq(const struct ring *r, uint64_t i)
{
	return (_Atomic uint64_t *)(void *)(r->base + (i % r->slots) * r->stride);
}

static void put(const struct ring *r, uint64_t i, const uint8_t *msg)
{
	uint8_t *s = (uint8_t *)slot_seq(r, i);

	memcpy(s + 8, msg, 32);
	atomic_store_explicit(slot_seq(r, i), i + 1, memory_order_release);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static void get(const struct ring *r, uint64_t i, uint8_t *msg, int pause)
{
	while (atomic_load_explicit(slot_seq(r, i), memory_order_acquire) !=
	       i + 1)
		if (pause)
			cpu_relax();
	memcpy(msg, (uint8_t *)slot_seq(r, i) + 8, 32);
}

static void work(unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		__asm__ __volatile__("" ::: "memory"); /* not optimised away */
}

static void usage(void)
{
	fprintf(stderr, "usage: muon-ring-spin [--slots N] [--stride BYTES] "
		"[--work N] [--pause] [--count N] [--warmup N] [--cpu A,B]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"slots", 1, 0, 's'}, {"stride", 1, 0, 't'},
		{"work", 1, 0, 'w'},  {"pause", 0, 0, 'p'},
		{"count", 1, 0, 'n'}, {"warmup", 1, 0, 'W'},
		{"cpu", 1, 0, 'c'},   {"help", 0, 0, 'h'},
		{0, 0, 0, 0}};
	size_t slots = 1024, stride = 64;
	unsigned wk = 0, n = 200000, warm = 20000;
	int pause = 0, cpu_a = 0, cpu_b = 1, o;
	struct ring to_pong, to_ping;
	uint8_t msg[32] = {0};
	uint64_t *t;
	size_t bytes;
	pid_t pid;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': slots = strtoul(optarg, NULL, 0); break;
		case 't': stride = strtoul(optarg, NULL, 0); break;
		case 'w': wk = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'p': pause = 1; break;
		case 'n': n = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'W': warm = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &cpu_a, &cpu_b) != 2)
				usage();
			break;
		default: usage();
		}
	}
	if (!slots || stride < 64 || (stride & 63) || !n)
		usage();
	bytes = slots * stride;
	to_pong.base = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	t = calloc(n + warm, sizeof(*t));
	if (to_pong.base == MAP_FAILED || !t) {
		fprintf(stderr, "muon-ring-spin: out of memory\n");
		return 1;
	}
	to_pong.slots = to_ping.slots = slots;
	to_pong.stride = to_ping.stride = stride;
	to_ping.base = to_pong.base + bytes;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pin(cpu_b);
		for (uint64_t i = 0; i < (uint64_t)n + warm; i++) {
			get(&to_pong, i, msg, pause);
			work(wk);
			put(&to_ping, i, msg);
		}
		_exit(0);
	}
	pin(cpu_a);
	for (uint64_t i = 0; i < (uint64_t)n + warm; i++) {
		uint64_t t0 = now_ns();

		put(&to_pong, i, msg);
		get(&to_ping, i, msg, pause);
		t[i] = now_ns() - t0;
		work(wk);
	}
	waitpid(pid, NULL, 0);
	qsort(t + warm, n, sizeof(*t), cmp_u64);
	t += warm;
	printf("ring %zu x %zu B, work %u, pause %d: round trip ns min %llu "
	       "p50 %llu p90 %llu p99 %llu p99.9 %llu max %llu\n", slots,
	       stride, wk, pause, (unsigned long long)t[0],
	       (unsigned long long)t[n / 2], (unsigned long long)t[n * 9 / 10],
	       (unsigned long long)t[n * 99 / 100],
	       (unsigned long long)t[n * 999 / 1000],
	       (unsigned long long)t[n - 1]);
	return 0;
}
