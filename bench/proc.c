/*
 * muon-bench: the pong child (a process, or a thread with --layout thread),
 * CPU pinning, bounded waits, pipes.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		fprintf(stderr, "%s: cannot pin to CPU %d: %s\n", BENCH_PROG,
			cpu, strerror(errno));
		return -1;
	}
	return 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		fprintf(stderr, "%s: fcntl: %s\n", BENCH_PROG, strerror(errno));
		return -1;
	}
	return 0;
}

static int child_main(pid_t parent, int cpu, bench_child_fn fn, void *arg,
		      int rd, int wr)
{
	/* A pong that outlives its ping would spin on a CPU forever. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		return 1;
	/* The parent may have died before prctl took effect. */
	if (getppid() != parent)
		return 1;
	if (bench_pin_self(cpu) != 0 || set_nonblock(rd) != 0)
		return 1;
	return fn(arg, rd, wr);
}

/* A child not started yet, and the two pipes to it: 0, or -1 with errno
 * set and nothing left open. */
static int child_init(struct bench_child *c, int p2c[2], int c2p[2])
{
	int e;

	memset(c, 0, sizeof(*c));
	c->pid = -1;
	c->to_child = -1;
	c->from_child = -1;
	if (pipe2(p2c, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(c2p, O_CLOEXEC) == 0)
		return 0;
	e = errno;
	close(p2c[0]);
	close(p2c[1]);
	errno = e;
	return -1;
}

static void close_both(int p2c[2], int c2p[2])
{
	int e = errno;

	close(c2p[0]);
	close(c2p[1]);
	close(p2c[0]);
	close(p2c[1]);
	errno = e;
}

int bench_child_spawn(struct bench_child *c, int cpu, bench_child_fn fn,
		      void *arg)
{
	int p2c[2], c2p[2];
	pid_t parent = getpid();
	pid_t pid;

	if (child_init(c, p2c, c2p) != 0)
		goto fail;
	/* Otherwise buffered output would be printed twice. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		goto close_pipes;
	if (pid == 0) {
		close(p2c[1]);
		close(c2p[0]);
		_exit(child_main(parent, cpu, fn, arg, p2c[0], c2p[1]));
	}
	close(p2c[0]);
	close(c2p[1]);
	c->pid = pid;
	c->to_child = p2c[1];
	c->from_child = c2p[0];
	if (set_nonblock(c->from_child) != 0) {
		bench_child_kill(c);
		return -1;
	}
	return 0;

close_pipes:
	close_both(p2c, c2p);
fail:
	fprintf(stderr, "%s: cannot start the pong process: %s\n", BENCH_PROG,
		strerror(errno));
	return -1;
}

static void *thread_main(void *arg)
{
	struct bench_child *c = arg;
	int rc = 1;

	/* sched_setaffinity(0) pins the calling thread only. */
	if (bench_pin_self(c->cpu) == 0 && set_nonblock(c->rd) == 0)
		rc = c->fn(c->arg, c->rd, c->wr);
	/* What a process's exit would do: the ping reads EOF. */
	close(c->rd);
	close(c->wr);
	c->rc = rc;
	atomic_store_explicit(&c->done, 1, memory_order_release);
	return NULL;
}

int bench_child_spawn_thread(struct bench_child *c, int cpu, bench_child_fn fn,
			     void *arg)
{
	int p2c[2], c2p[2], err;

	if (child_init(c, p2c, c2p) != 0) {
		err = errno;
		goto fail;
	}
	c->is_thread = 1;
	c->fn = fn;
	c->arg = arg;
	c->cpu = cpu;
	if (set_nonblock(c2p[0]) != 0) {
		err = errno;
		goto close_pipes;
	}
	c->rd = p2c[0];
	c->wr = c2p[1];
	c->to_child = p2c[1];
	c->from_child = c2p[0];
	err = pthread_create(&c->thread, NULL, thread_main, c);
	if (err == 0)
		return 0;
	c->to_child = -1;
	c->from_child = -1;
close_pipes:
	close_both(p2c, c2p);
fail:
	c->reaped = 1;
	fprintf(stderr, "%s: cannot start the pong thread: %s\n", BENCH_PROG,
		strerror(err));
	return -1;
}

static int exited_ok(const struct bench_child *c)
{
	if (c->is_thread)
		return c->status == 0;
	return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

static void report_exit(const struct bench_child *c)
{
	int status = c->status;

	if (exited_ok(c))
		return;
	if (c->is_thread) {
		/* The pong said why itself. */
		fprintf(stderr, "%s: pong thread gave up\n", BENCH_PROG);
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (WIFEXITED(status))
		fprintf(stderr, "%s: pong process exited with status %d\n",
			BENCH_PROG, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "%s: pong process killed by signal %d (%s)\n",
			BENCH_PROG, WTERMSIG(status),
			strsignal(WTERMSIG(status)));
}

/* 1 reaped now, 0 still running, -1 waitpid failed. */
static int try_reap(struct bench_child *c)
{
	pid_t r;

	if (c->reaped)
		return 1;
	if (c->is_thread) {
		if (!atomic_load_explicit(&c->done, memory_order_acquire))
			return 0;
		pthread_join(c->thread, NULL);
		c->status = c->rc;
		c->reaped = 1;
		return 1;
	}
	if (c->pid <= 0)
		return 1;
	do
		r = waitpid(c->pid, &c->status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		fprintf(stderr, "%s: waitpid: %s\n", BENCH_PROG,
			strerror(errno));
		return -1;
	}
	if (r == 0)
		return 0;
	c->reaped = 1;
	return 1;
}

int bench_child_check(struct bench_child *c)
{
	int was_reaped = c->reaped;
	int r = try_reap(c);

	if (r == 0)
		return 0;
	if (r > 0 && !was_reaped) {
		report_exit(c);
		if (exited_ok(c))
			fprintf(stderr, "%s: pong %s ended early\n",
				BENCH_PROG, c->is_thread ? "thread" :
				"process");
	}
	return -1;
}

static void close_pipes(struct bench_child *c)
{
	if (c->to_child >= 0)
		close(c->to_child);
	if (c->from_child >= 0)
		close(c->from_child);
	c->to_child = -1;
	c->from_child = -1;
}

void bench_child_done(struct bench_child *c)
{
	close_pipes(c);
}

void bench_child_kill(struct bench_child *c)
{
	close_pipes(c);
	if (c->reaped)
		return;
	if (c->is_thread) {
		/* Every wait of the pong looks at `stop` at least once per
		 * few milliseconds (bench_spin_slow, bench_setup_wait). */
		atomic_store_explicit(&c->stop, 1, memory_order_release);
		pthread_join(c->thread, NULL);
		c->status = c->rc;
		c->reaped = 1;
		return;
	}
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGKILL);
	while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
		;
	c->reaped = 1;
}

int bench_child_finish(struct bench_child *c, uint64_t timeout_ns)
{
	uint64_t deadline = bench_now_ns() + timeout_ns;
	const struct timespec tick = { 0, 1000000 };
	int r;

	bench_child_done(c);
	while ((r = try_reap(c)) == 0 && bench_now_ns() < deadline)
		nanosleep(&tick, NULL);
	if (r == 0) {
		fprintf(stderr, "%s: pong %s did not finish; %s it\n",
			BENCH_PROG, c->is_thread ? "thread" : "process",
			c->is_thread ? "stopping" : "killing");
		bench_child_kill(c);
		return -1;
	}
	if (r < 0) {
		bench_child_kill(c);
		return -1;
	}
	report_exit(c);
	return exited_ok(c) ? 0 : -1;
}

int bench_spin_slow(struct bench_spin *s)
{
	uint64_t now = bench_now_ns();

	if (s->child && bench_child_check(s->child) != 0)
		return -1;
	if (s->abort && atomic_load_explicit(s->abort, memory_order_acquire))
		return -1;
	/* The clock is first read here, not at the start of the wait, so that
	 * starting a wait costs nothing inside a timed round trip. */
	if (s->deadline == 0) {
		s->deadline = now + BENCH_TIMEOUT_NS;
		return 0;
	}
	if (now < s->deadline)
		return 0;
	fprintf(stderr, "%s: %s: timed out after %llu s waiting for %s\n",
		BENCH_PROG, s->who, BENCH_TIMEOUT_NS / 1000000000ull, s->what);
	return -1;
}

int bench_pipe_try_read(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	if (n == (ssize_t)len)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		fprintf(stderr, "%s: pipe read: %s\n", BENCH_PROG,
			strerror(errno));
	else if (n > 0)
		fprintf(stderr, "%s: pipe read: short message (%zd of %zu)\n",
			BENCH_PROG, n, len);
	/* n == 0 is EOF: the other side is gone, and it says why itself. */
	return -1;
}

int bench_pipe_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: pipe write: %s\n", BENCH_PROG,
				strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

unsigned char *bench_payload_new(size_t size, const char *who)
{
	unsigned char *buf = malloc(size ? size : 1);

	if (!buf) {
		fprintf(stderr, "%s: %s: out of memory\n", BENCH_PROG, who);
		return NULL;
	}
	memset(buf, 0xa5, size ? size : 1);
	return buf;
}
