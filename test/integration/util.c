/*
 * Small helpers shared by the roles.
 */
#include "itest.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char g_role[64] = "itest";

void set_role_name(const char *name)
{
	snprintf(g_role, sizeof(g_role), "%s", name);
}

const char *role_name(void)
{
	return g_role;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double now_s(void)
{
	return (double)now_ns() / 1e9;
}

static void vmsg(const char *kind, const char *fmt, va_list ap)
{
	char buf[2048];
	struct timespec ts;
	struct tm tm;
	int n;

	/* wall-clock stamps so that lines of different processes compare */
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03ld [%s] %s",
		     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     g_role, kind);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	fprintf(stderr, "%s\n", buf);
	fflush(stderr);
}

void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("FAIL: ", fmt, ap);
	va_end(ap);
	fflush(stdout);
	exit(1);
}

void die_muon(int status, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	die("%s: %d (%s): %s", buf, status, muon_strerror(status),
	    muon_errmsg());
}

void proto(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

int parse_u64(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned long long mul = 1;

	if (!text || !*text || *text == '-')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 0);
	if (errno != 0 || end == text)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1024ull, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024ull * 1024ull, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1024ull * 1024ull * 1024ull, end++;
	if (*end != '\0')
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int parse_u32(const char *text, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(text, &v) != 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

uint64_t opt_u64(const char *opt, const char *text)
{
	uint64_t v;

	if (parse_u64(text, &v) != 0)
		die("bad value for %s: '%s'", opt, text ? text : "(null)");
	return v;
}

uint32_t opt_u32(const char *opt, const char *text)
{
	uint32_t v;

	if (parse_u32(text, &v) != 0)
		die("bad value for %s: '%s'", opt, text ? text : "(null)");
	return v;
}

int wait_ctx(muon_ctx_t *ctx, int extra_fd, int timeout_ms)
{
	struct pollfd pfd[2];
	int rc, n = 0, fd;

	rc = muon_ctx_arm(ctx);
	if (rc == MUON_EBUSY)
		return 0;
	if (rc != MUON_OK)
		die_muon(rc, "muon_ctx_arm");
	fd = muon_ctx_fd(ctx);
	if (fd < 0)
		die_muon(fd, "muon_ctx_fd");
	pfd[n].fd = fd;
	pfd[n].events = POLLIN;
	n++;
	if (extra_fd >= 0) {
		pfd[n].fd = extra_fd;
		pfd[n].events = POLLIN;
		n++;
	}
	rc = poll(pfd, (nfds_t)n, timeout_ms);
	if (rc < 0 && errno != EINTR)
		die("poll: %s", strerror(errno));
	return rc > 0 && extra_fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP));
}

void backoff(unsigned *spins)
{
	unsigned s = (*spins)++;

	if (s < 32)
		return;
	if (s < 256) {
		sched_yield();
		return;
	}
	{
		struct timespec ts = {0, 50000};

		nanosleep(&ts, NULL);
	}
}

void log_to_stderr(void *arg, muon_log_level_t level, const char *message)
{
	(void)arg;
	note("muon %s: %s", muon_log_level_name(level), message);
}

