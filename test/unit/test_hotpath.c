/*
 * The hot-path promises, checked rather than claimed: in steady state a
 * publish (muon_publish() or a muon_publishv() batch) plus the poll that
 * delivers it make no heap allocation (malloc,
 * calloc and realloc are wrapped at link time, so every call from the
 * library is counted), and on shm no system call per message (a ptrace
 * parent counts the child's system calls across the measured loop; the
 * control plane's periodic epoll_wait is allowed, per-message calls are
 * not). On tcp one send() per publish and one recv() per poll are the
 * transport's nature, so only allocations are checked there.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <muon/muon.h>

#define MSGS 100000
#define WARMUP 20000

/* ---- allocation counting (linked with --wrap) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static volatile int counting;
static volatile unsigned long allocs;

void *__wrap_malloc(size_t n)
{
	if (counting)
		allocs++;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	if (counting)
		allocs++;
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	if (counting)
		allocs++;
	return __real_realloc(p, n);
}

/* ---- a publisher and a subscriber context in one thread ---- */

struct pair {
	muon_ctx_t *pub_ctx, *sub_ctx;
	muon_pub_t *pub;
	muon_sub_t *sub;
	uint64_t got;
	uint64_t next_seq;
	int bad;
};

static void on_msg(void *arg, const muon_msg_t *m)
{
	struct pair *p = arg;

	if (m->seq != p->next_seq || m->len != 32)
		p->bad = 1;
	p->next_seq = m->seq + 1;
	p->got++;
}

static void pair_open(struct pair *p, const char *transport)
{
	muon_ctx_config_t pc, sc;
	muon_sub_config_t subc;
	char ep[128], name[64];
	time_t t0 = 0;
	long i;

	memset(p, 0, sizeof(*p));
	p->next_seq = 1;
	muon_ctx_config_init(&pc);
	pc.ignore_env = 1;
	pc.log_level = MUON_LOG_ERROR;
	sc = pc;
	if (!strcmp(transport, "shm")) {
		snprintf(name, sizeof(name), "shm://unit-hot-%d", (int)getpid());
		pc.listen = name;
	} else if (!strcmp(transport, "verbs")) {
		const char *a = getenv("MUON_RDMA_ADDR");

		snprintf(name, sizeof(name), "verbs://%s:0",
			 a && *a ? a : "192.0.2.1");
		pc.listen = name;
	} else {
		pc.listen = "tcp://127.0.0.1:0";
	}
	assert_int_equal(muon_ctx_create(&pc, &p->pub_ctx), 0);
	assert_int_equal(muon_ctx_listen_endpoint(p->pub_ctx, 0, ep,
						  sizeof(ep)), 0);
	sc.peers = ep;
	assert_int_equal(muon_ctx_create(&sc, &p->sub_ctx), 0);
	assert_int_equal(muon_pub_create(p->pub_ctx, "hot", NULL, &p->pub), 0);
	muon_sub_config_init(&subc);
	subc.msg_fn = on_msg;
	subc.msg_arg = p;
	assert_int_equal(muon_sub_create(p->sub_ctx, "hot", &subc, &p->sub), 0);
	/* By the clock, not by iterations: connection setup over rdmacm in
	 * a traced process under QEMU takes seconds. */
	for (i = 0; muon_pub_subscribers(p->pub) < 1 ||
		    muon_sub_images(p->sub) < 1; i++) {
		struct timespec ts;

		muon_ctx_poll(p->pub_ctx, 0);
		muon_ctx_poll(p->sub_ctx, 0);
		if (i % 1024)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (!t0)
			t0 = ts.tv_sec;
		else if (ts.tv_sec - t0 > 60)
			break;
	}
	assert_true(muon_pub_subscribers(p->pub) == 1);
}

/* Publish n messages (n > 1: one muon_publishv() batch) and poll until
 * they arrived. */
static int some(struct pair *p, unsigned n)
{
	static const char buf[32];
	const muon_iov_t iov[4] = {{buf, 32}, {buf, 32}, {buf, 32}, {buf, 32}};
	uint64_t want = p->got + n;
	unsigned done = 0;
	long spins = 0;

	while (done < n) {
		int rc = n == 1 ? (muon_publish(p->pub, buf, sizeof(buf)) > 0)
				: muon_publishv(p->pub, iov + done, n - done,
						NULL);

		if (rc > 0) {
			done += (unsigned)rc;
			continue;
		}
		muon_ctx_poll(p->sub_ctx, 0);
		muon_ctx_poll(p->pub_ctx, 0);
	}
	while (p->got < want && spins++ < 100000000) {
		muon_ctx_poll(p->sub_ctx, 0);
		muon_ctx_poll(p->pub_ctx, 0);
	}
	return p->got == want && !p->bad ? 0 : -1;
}

static int one(struct pair *p)
{
	return some(p, 1);
}

static void pair_close(struct pair *p)
{
	muon_ctx_destroy(p->sub_ctx);
	muon_ctx_destroy(p->pub_ctx);
}

static void check_no_alloc(const char *transport)
{
	struct pair p;
	unsigned long msgs = 0;
	int i;

	pair_open(&p, transport);
	for (i = 0; i < WARMUP; i++)
		assert_int_equal(some(&p, i & 1 ? 4 : 1), 0);
	allocs = 0;
	counting = 1;
	for (i = 0; i < MSGS; i++) {
		if (some(&p, i & 1 ? 4 : 1))
			break;
		msgs += i & 1 ? 4 : 1;
	}
	counting = 0;
	assert_int_equal(i, MSGS);
	print_message("%s: %lu allocations in %lu messages (half of the "
		      "publishes batches of 4)\n", transport,
		      (unsigned long)allocs, msgs);
	assert_int_equal(allocs, 0);
	pair_close(&p);
}

static void test_no_alloc_shm(void **state)
{
	(void)state;
	check_no_alloc("shm");
}

static void test_no_alloc_tcp(void **state)
{
	(void)state;
	check_no_alloc("tcp");
}

static void test_no_alloc_verbs(void **state)
{
	(void)state;
	check_no_alloc("verbs");
}

/* ---- system calls on shm and verbs, counted by a tracing parent ---- */

static void child_run(const char *transport, int msgs)
{
	struct pair p;
	int i, ok = 1;

	pair_open(&p, transport);
	for (i = 0; i < WARMUP; i++)
		ok &= one(&p) == 0;
	/* Markers the tracer recognises: start, then stop counting. */
	syscall(SYS_getppid);
	for (i = 0; i < msgs; i++)
		ok &= one(&p) == 0;
	syscall(SYS_getppid);
	pair_close(&p);
	_exit(ok ? 0 : 3);
}

static void count_syscalls(const char *transport, int msgs,
			   unsigned long *per_nr, unsigned long *in_loop_out)
{
	struct __ptrace_syscall_info info;
	unsigned long in_loop = 0;
	int status, markers = 0;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
		child_run(transport, msgs);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSTOPPED(status));
	assert_int_equal(ptrace(PTRACE_SETOPTIONS, pid, NULL,
				(void *)(long)(PTRACE_O_TRACESYSGOOD |
					       PTRACE_O_EXITKILL)), 0);
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL))
			break;
		if (waitpid(pid, &status, 0) != pid || WIFEXITED(status) ||
		    WIFSIGNALED(status))
			break;
		if (!(WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80)))
			continue;
		if (ptrace(PTRACE_GET_SYSCALL_INFO, pid,
			   (void *)sizeof(info), &info) <= 0)
			continue;
		if (info.op != PTRACE_SYSCALL_INFO_ENTRY)
			continue;
		if (info.entry.nr == SYS_getppid) {
			markers++;
			continue;
		}
		if (markers == 1) {
			in_loop++;
			if (info.entry.nr < 512)
				per_nr[info.entry.nr]++;
		}
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(markers, 2);
	*in_loop_out = in_loop;
}

static void test_no_syscall_per_msg_shm(void **state)
{
	unsigned long in_loop = 0, per_nr[512] = {0};

	(void)state;
	count_syscalls("shm", MSGS, per_nr, &in_loop);
	print_message("shm: %lu system calls in %d messages (epoll_wait %lu, "
		      "read %lu)\n", in_loop, MSGS, per_nr[SYS_epoll_wait],
		      per_nr[SYS_read]);
	/* The control plane runs at most every 200 us on each context and
	 * the timerfd ticks every 100 ms: a few per millisecond, never one
	 * per message. */
	assert_true(in_loop < MSGS / 20);
}

/*
 * verbs: muon makes no system call per message, but the Soft-RoCE
 * provider rings its doorbell with one write() per ibv_post_send (a
 * hardware NIC's doorbell is a store to mapped device memory). So: writes
 * at most one per message plus the occasional credit write-back, nothing
 * else beyond the control plane's budget. clock_gettime is left out: it is
 * a vDSO call on hosts with a TSC clock source, and a system call only in
 * guests (QEMU TCG) whose clock source has no vDSO support.
 */
static void test_no_syscall_per_msg_verbs(void **state)
{
	/* A tenth of the messages: tracing every doorbell under QEMU TCG
	 * costs about a millisecond each. */
	const int n = MSGS / 10;
	unsigned long in_loop = 0, per_nr[512] = {0}, other;

	(void)state;
	count_syscalls("verbs", n, per_nr, &in_loop);
	other = in_loop - per_nr[SYS_write] - per_nr[SYS_clock_gettime];
	print_message("verbs: %lu system calls in %d messages (write %lu, "
		      "clock_gettime %lu, epoll_wait %lu, read %lu, other "
		      "%lu)\n", in_loop, n, per_nr[SYS_write],
		      per_nr[SYS_clock_gettime], per_nr[SYS_epoll_wait],
		      per_nr[SYS_read], other);
	assert_true(per_nr[SYS_write] <= (unsigned long)(n + n / 20));
	assert_true(other < (unsigned long)n / 20);
}

/* argv[1], if given, picks tests by name pattern, or "--skip PATTERN"
 * leaves some out (the verbs ones need an RDMA device and run in the
 * Soft-RoCE VM). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_alloc_shm),
		cmocka_unit_test(test_no_alloc_tcp),
		cmocka_unit_test(test_no_syscall_per_msg_shm),
		cmocka_unit_test(test_no_alloc_verbs),
		cmocka_unit_test(test_no_syscall_per_msg_verbs),
	};

	if (argc > 2 && !strcmp(argv[1], "--skip"))
		cmocka_set_skip_filter(argv[2]);
	else if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("unit.hotpath", tests, NULL, NULL);
}
