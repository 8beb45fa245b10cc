/*
 * muond: the muon discovery daemon. main(), signals and logging; the
 * protocol is in server.c, the state in state.c.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <syslog.h>
#include <time.h>

#include <ev.h>

#include "core/muoni.h"
#include "daemon/muond.h"

static int log_level = MUOND_INFO;
static bool log_syslog;

/* Rejection lines per second before they are only counted. */
#define MUOND_REJECT_BURST 20
static time_t reject_sec;
static unsigned reject_lines, reject_dropped;

static const char *level_name(int level)
{
	switch (level) {
	case MUOND_ERROR: return "ERROR";
	case MUOND_WARN: return "WARN";
	case MUOND_INFO: return "INFO";
	default: return "DEBUG";
	}
}

void muond_log_open(int level, bool use_syslog)
{
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("muond", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void muond_log_close(void)
{
	if (log_syslog)
		closelog();
}

bool muond_log_enabled(int level)
{
	return level <= log_level;
}

static void log_va(int level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_ERR, LOG_WARNING, LOG_INFO,
				    LOG_DEBUG };
	char msg[1024], stamp[40];
	struct timespec ts;
	struct tm tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog) {
		syslog(prio[level], "%s: %s", level_name(level), msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One write per line, so lines from a restart never interleave. */
	fprintf(stderr, "%s.%03ldZ muond %s: %s\n", stamp,
		ts.tv_nsec / 1000000, level_name(level), msg);
}

void muond_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_va(level, fmt, ap);
	va_end(ap);
}

void muond_log_reject(const char *fmt, ...)
{
	time_t now = time(NULL);
	va_list ap;

	if (MUOND_WARN > log_level)
		return;
	/* A flood of bad clients must not become a flood of log lines. */
	if (now != reject_sec) {
		if (reject_dropped)
			muond_log(MUOND_WARN, "%u more rejected clients not "
				  "logged", reject_dropped);
		reject_sec = now;
		reject_lines = 0;
		reject_dropped = 0;
	}
	if (++reject_lines > MUOND_REJECT_BURST) {
		reject_dropped++;
		return;
	}
	va_start(ap, fmt);
	log_va(MUOND_WARN, fmt, ap);
	va_end(ap);
}

/* Ten thousand idle clients need ten thousand descriptors. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			muond_log(MUOND_WARN, "cannot raise the descriptor "
				  "limit: %s", strerror(errno));
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	muond_log(MUOND_DEBUG, "descriptor limit %llu",
		  (unsigned long long)rl.rlim_cur);
}

/* The library's messages start with "core/file.c:NN: "; operators only
 * need what follows. */
static const char *err_text(void)
{
	const char *m = muoni_err_msg(), *p = strstr(m, ".c:");

	if (p && (p = strstr(p, ": ")))
		return p + 2;
	return m;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	muond_log(MUOND_INFO, "signal %d: shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	struct muond_config cfg;
	struct muond_server *srv = NULL;
	struct ev_loop *loop = NULL;
	ev_signal sig_term, sig_int;
	uint8_t key[32];
	bool have_key = false;
	int rc, status = 1;

	rc = muond_config_load(&cfg, argc, argv);
	if (rc) {
		muond_config_fini(&cfg);
		return rc == 1 ? 0 : 2;
	}
	muond_log_open(cfg.log_level, cfg.syslog);
	/* Output buffers are freed whenever a client is drained, so that idle
	 * clients cost nothing; without this glibc hands the memory back to
	 * the kernel and a fan-out to a thousand watchers page-faults on
	 * every buffer again. */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (cfg.secret_file) {
		if (muoni_secret_load(cfg.secret_file, key)) {
			muond_log(MUOND_ERROR, "%s", err_text());
			goto free_config;
		}
		have_key = true;
	} else {
		muond_log(MUOND_WARN, "no secret file: registrations are "
			  "unauthenticated; anyone who reaches the daemon "
			  "can publish endpoints");
	}

	loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		muond_log(MUOND_ERROR, "cannot create the event loop");
		goto wipe_key;
	}
	if (muond_server_new(loop, &cfg, have_key ? key : NULL, &srv))
		goto destroy_loop;
	ev_signal_init(&sig_term, on_signal, SIGTERM);
	ev_signal_init(&sig_int, on_signal, SIGINT);
	ev_signal_start(loop, &sig_term);
	ev_signal_start(loop, &sig_int);
	muond_log(MUOND_INFO, "muond %s '%s' ready: lease %u ms, %s", MUOND_VERSION,
		  cfg.name, cfg.lease_ms,
		  have_key ? "authenticated" : "unauthenticated");
	ev_run(loop, 0);
	ev_signal_stop(loop, &sig_term);
	ev_signal_stop(loop, &sig_int);
	status = 0;

	muond_server_free(srv);
destroy_loop:
	ev_loop_destroy(loop);
wipe_key:
	muoni_secret_wipe(key, sizeof(key));
free_config:
	muond_config_fini(&cfg);
	muond_log_close();
	return status;
}
