/*
 * Role "run": the scenario driver.
 *
 *   muon-itest run SCENARIO --transport T [--count N] [--scale D]
 *                  [--timeout S] [--host H] [--log-level L] [--keep-shm]
 *
 * Forks and execs /proc/self/exe in the pub and sub roles, reads their
 * protocol lines, sends GO/FINISH to publishers, kills everything on a
 * deadline and checks exit codes and reports. The transport is only a
 * parameter: the driver derives listen endpoints from it ("shm" gets
 * shm://itest-PID-N, any other transport X gets X://HOST:0 and the
 * publisher reports the resolved endpoint) and passes it through to every
 * role process.
 *
 * MUON_ITEST_SCALE=D divides the CPU-bound message counts by D (the
 * sanitizer build uses it); --scale overrides it.
 *
 * --daemons N (with --muond PATH, or MUON_ITEST_MUOND) starts N discovery
 * daemons on loopback first: publishers register with them and
 * subscribers find publishers through them instead of being given
 * endpoints. The disc_* scenarios need it.
 */
#include "itest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_KIDS 8
#define MAX_DAEMONS 4
#define ITEST_LEASE_MS 1000
#define MAX_ARGS 64

typedef struct child {
	char name[32];
	int is_pub;
	pid_t pid;
	int in_fd;
	int out_fd;
	char buf[4096];
	size_t len;
	int eof;
	int exited;
	int status;
	int killed;      /* we sent SIGKILL on purpose */
	int finish_sent; /* publisher was told to finish */
	/* protocol state */
	int listening;
	char endpoint[256];
	uint64_t id;
	uint32_t stream;
	int pre_done;
	uint64_t pre_last;
	int up;
	int marked;
	int done;
	uint64_t last;
	int result;
	char result_line[4096];
	int stats;
	char stats_line[4096];
	double t_start, t_up, t_done, t_result;
} child_t;

typedef struct args {
	char *v[MAX_ARGS + 1];
	int n;
} args_t;

static struct {
	const char *scenario;
	const char *transport;
	const char *host;
	char topic[64];
	char shm_dir[256];
	char exe[PATH_MAX];
	uint64_t count;   /* --count override, 0 = scenario default */
	uint64_t scale;
	double timeout;
	double deadline;
	double t0;
	int log_level;
	int keep_shm;
	int endpoints;
	child_t kids[MAX_KIDS];
	int nkids;
	/* discovery */
	const char *muond;
	const char *muonctl;
	int ndaemons;
	struct {
		pid_t pid;
		int port;
		int exited;
		int killed;
	} daemons[MAX_DAEMONS];
	char disc_list[256];
	char secret[64]; /* --secret: a cluster secret file for everyone */
} D;

static void arg(args_t *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void arg(args_t *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->n >= MAX_ARGS)
		die("too many arguments");
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void args_free(args_t *a)
{
	int i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

/* ---------------------------------------------------------------- cleanup */

static void cleanup_shm_dir(int report)
{
	DIR *d;
	struct dirent *e;

	if (!D.shm_dir[0])
		return;
	d = opendir(D.shm_dir);
	if (d) {
		while ((e = readdir(d)) != NULL) {
			char p[PATH_MAX];

			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			if (report)
				note("warning: left behind in %s: %s",
				     D.shm_dir, e->d_name);
			if (D.keep_shm)
				continue;
			snprintf(p, sizeof(p), "%s/%s", D.shm_dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	if (!D.keep_shm)
		rmdir(D.shm_dir);
}

/* Remove the private shm dirs of drivers that were killed (e.g. by a ctest
 * timeout) before they could clean up. */
static void remove_stale_dirs(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		char path[300], file[600];
		struct dirent *f;
		DIR *sub;
		int pid;

		if (sscanf(e->d_name, "muon-itest-%d", &pid) != 1 || pid <= 0 ||
		    kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
		sub = opendir(path);
		while (sub && (f = readdir(sub)) != NULL) {
			if (f->d_name[0] == '.')
				continue;
			snprintf(file, sizeof(file), "%s/%s", path, f->d_name);
			unlink(file);
		}
		if (sub)
			closedir(sub);
		if (rmdir(path) == 0)
			note("removed %s, left by a driver that was killed",
			     path);
	}
	if (d)
		closedir(d);
}

static int count_shm_files(void)
{
	DIR *d = opendir(D.shm_dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	if (d)
		closedir(d);
	return n;
}

static void dump_state(void)
{
	int i;

	for (i = 0; i < D.nkids; i++) {
		child_t *k = &D.kids[i];

		note("  %-10s pid %d: %s%s%s%s%s%s%s%s", k->name, (int)k->pid,
		     k->exited ? "exited " : "running ",
		     k->listening ? "listening " : "",
		     k->pre_done ? "pre_done " : "", k->up ? "up " : "",
		     k->marked ? "marked " : "", k->done ? "done " : "",
		     k->result ? "result " : "",
		     k->killed ? "killed-by-driver" : "");
	}
}

static void kill_all(void)
{
	int i;

	for (i = 0; i < D.nkids; i++) {
		child_t *k = &D.kids[i];

		if (k->pid > 0 && !k->exited) {
			kill(k->pid, SIGKILL);
			waitpid(k->pid, &k->status, 0);
			k->exited = 1;
		}
	}
	for (i = 0; i < D.ndaemons; i++)
		if (D.daemons[i].pid > 0 && !D.daemons[i].exited) {
			kill(D.daemons[i].pid, SIGKILL);
			waitpid(D.daemons[i].pid, NULL, 0);
			D.daemons[i].exited = 1;
		}
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						      noreturn));

static void fail(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	note("FAIL %s on %s: %s", D.scenario, D.transport, buf);
	note("process states:");
	dump_state();
	kill_all();
	if (D.secret[0] == '/')
		unlink(D.secret);
	cleanup_shm_dir(0);
	exit(1);
}

/* ---------------------------------------------------------------- children */

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit code %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "status 0x%x", status);
}

static child_t *spawn(const char *name, int is_pub, args_t *a)
{
	child_t *k;
	int out[2], in[2] = {-1, -1};
	pid_t driver = getpid();
	pid_t pid;

	if (D.nkids >= MAX_KIDS)
		fail("too many processes");
	k = &D.kids[D.nkids++];
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->is_pub = is_pub;
	k->in_fd = -1;
	if (pipe2(out, O_CLOEXEC) != 0)
		fail("pipe: %s", strerror(errno));
	if (is_pub && pipe2(in, O_CLOEXEC) != 0)
		fail("pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int devnull;

		/* the driver ignores SIGPIPE; the roles get the default so
		 * that a library write without MSG_NOSIGNAL shows */
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != driver)
			_exit(126);
		if (is_pub) {
			dup2(in[0], 0);
		} else {
			devnull = open("/dev/null", O_RDONLY);
			if (devnull >= 0)
				dup2(devnull, 0);
		}
		dup2(out[1], 1);
		execv(D.exe, a->v);
		fprintf(stderr, "exec %s: %s\n", D.exe, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	k->out_fd = out[0];
	if (is_pub) {
		close(in[0]);
		k->in_fd = in[1];
	}
	k->pid = pid;
	k->t_start = now_s();
	{
		char line[2048];
		size_t off = 0;
		int i;

		for (i = 1; i < a->n && off < sizeof(line) - 1; i++)
			off += (size_t)snprintf(line + off, sizeof(line) - off,
						" %s", a->v[i]);
		note("started %s (pid %d):%s", name, (int)pid, line);
	}
	args_free(a);
	return k;
}

static int kv_str(const char *line, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p;
	size_t n;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	n = strcspn(p, " ");
	if (n >= len)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static uint64_t kv_u64(child_t *k, const char *line, const char *key)
{
	char v[64];
	uint64_t x;

	if (kv_str(line, key, v, sizeof(v)) != 0 || parse_u64(v, &x) != 0)
		fail("%s: no valid %s= in '%s'", k->name, key, line);
	return x;
}

static void handle_line(child_t *k, char *line)
{
	note("<%s> %s", k->name, line);
	if (strncmp(line, "LISTEN ", 7) == 0) {
		if (kv_str(line, "endpoint", k->endpoint,
			   sizeof(k->endpoint)) != 0)
			fail("%s: bad LISTEN line", k->name);
		k->id = kv_u64(k, line, "id");
		k->stream = (uint32_t)kv_u64(k, line, "stream");
		k->listening = 1;
	} else if (strncmp(line, "PRE_DONE ", 9) == 0) {
		k->pre_last = kv_u64(k, line, "last");
		k->pre_done = 1;
	} else if (strncmp(line, "UP ", 3) == 0) {
		k->up = 1;
		k->t_up = now_s();
	} else if (strncmp(line, "MARK ", 5) == 0) {
		k->marked = 1;
	} else if (strncmp(line, "DONE ", 5) == 0) {
		k->last = kv_u64(k, line, "last");
		k->done = 1;
		k->t_done = now_s();
	} else if (strncmp(line, "RESULT ", 7) == 0) {
		snprintf(k->result_line, sizeof(k->result_line), "%s", line);
		k->result = 1;
		k->t_result = now_s();
	} else if (strncmp(line, "PUBSTATS ", 9) == 0) {
		snprintf(k->stats_line, sizeof(k->stats_line), "%s", line);
		k->stats = 1;
	} else {
		fail("%s: unexpected line '%s'", k->name, line);
	}
}

static void read_child(child_t *k)
{
	char *nl;
	ssize_t n;

	if (k->len >= sizeof(k->buf) - 1)
		fail("%s: overlong line", k->name);
	n = read(k->out_fd, k->buf + k->len, sizeof(k->buf) - 1 - k->len);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		fail("read from %s: %s", k->name, strerror(errno));
	}
	if (n == 0) {
		k->eof = 1;
		close(k->out_fd);
		k->out_fd = -1;
		return;
	}
	k->len += (size_t)n;
	k->buf[k->len] = '\0';
	while ((nl = strchr(k->buf, '\n')) != NULL) {
		*nl = '\0';
		handle_line(k, k->buf);
		k->len -= (size_t)(nl + 1 - k->buf);
		memmove(k->buf, nl + 1, k->len + 1);
	}
}

static void reap(void)
{
	for (;;) {
		char how[128];
		child_t *k = NULL;
		int status, i;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid <= 0)
			return;
		for (i = 0; i < D.nkids; i++)
			if (D.kids[i].pid == pid)
				k = &D.kids[i];
		for (i = 0; i < D.ndaemons; i++)
			if (D.daemons[i].pid == pid) {
				describe_status(status, how, sizeof(how));
				D.daemons[i].exited = 1;
				if (!D.daemons[i].killed)
					fail("muond %d (pid %d) died: %s", i,
					     (int)pid, how);
				note("muond %d ended as intended: %s", i, how);
			}
		if (!k)
			continue;
		/* read what it wrote before judging it */
		while (k->out_fd >= 0)
			read_child(k);
		k->exited = 1;
		k->status = status;
		describe_status(status, how, sizeof(how));
		if (k->killed) {
			if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
				fail("%s: killed with SIGKILL but ended with "
				     "%s", k->name, how);
			note("%s ended as intended: %s", k->name, how);
			continue;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail("%s (pid %d) failed: %s", k->name, (int)pid, how);
		if (k->is_pub && !k->finish_sent)
			fail("%s exited before it was told to finish",
			     k->name);
		if (!k->is_pub && !k->result)
			fail("%s exited without a RESULT line", k->name);
		note("%s exited cleanly after %.2f s", k->name,
		     now_s() - k->t_start);
	}
}

static void pump(int timeout_ms)
{
	struct pollfd pfd[MAX_KIDS];
	child_t *who[MAX_KIDS];
	int i, n = 0, rc;

	for (i = 0; i < D.nkids; i++) {
		if (D.kids[i].out_fd < 0)
			continue;
		pfd[n].fd = D.kids[i].out_fd;
		pfd[n].events = POLLIN;
		who[n++] = &D.kids[i];
	}
	rc = poll(pfd, (nfds_t)n, timeout_ms);
	if (rc < 0 && errno != EINTR)
		fail("poll: %s", strerror(errno));
	for (i = 0; rc > 0 && i < n; i++)
		if (pfd[i].revents)
			read_child(who[i]);
	reap();
}

#define WAIT_UNTIL(cond, limit_s, ...)                                      \
	do {                                                                \
		double dl_ = now_s() + (limit_s);                           \
		if (dl_ > D.deadline)                                       \
			dl_ = D.deadline;                                   \
		while (!(cond)) {                                           \
			if (now_s() > dl_) {                                \
				char w_[512];                               \
				snprintf(w_, sizeof(w_), __VA_ARGS__);      \
				fail("timed out after %.0f s waiting for "  \
				     "%s",                                  \
				     now_s() - D.t0, w_);                   \
			}                                                   \
			pump(50);                                           \
		}                                                           \
	} while (0)

static void send_cmd(child_t *k, const char *cmd)
{
	char line[64];
	size_t len;

	if (k->in_fd < 0)
		fail("no command pipe to %s", k->name);
	len = (size_t)snprintf(line, sizeof(line), "%s\n", cmd);
	if (write(k->in_fd, line, len) != (ssize_t)len)
		fail("write to %s: %s", k->name, strerror(errno));
	if (strcmp(cmd, "FINISH") == 0)
		k->finish_sent = 1;
}

static void finish_pubs(child_t **pubs, int n)
{
	int i;

	for (i = 0; i < n; i++)
		send_cmd(pubs[i], "FINISH");
	for (i = 0; i < n; i++)
		WAIT_UNTIL(pubs[i]->exited, 60,
			   "%s to exit after FINISH", pubs[i]->name);
	for (i = 0; i < n; i++)
		if (!pubs[i]->stats)
			fail("%s exited without PUBSTATS", pubs[i]->name);
}

/* ---------------------------------------------------------------- daemons */

/* Start muond number i on loopback, on its earlier port if it had one
 * (a restart), and wait for its "listening tcp://ADDR:PORT" line. */
static void daemon_start(int i)
{
	char listen[64], lease[16], name[16], line[256];
	int out[2];
	size_t len = 0;
	double dl = now_s() + 10;
	pid_t pid;

	snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d",
		 D.daemons[i].port);
	snprintf(lease, sizeof(lease), "%d", ITEST_LEASE_MS);
	snprintf(name, sizeof(name), "itest-d%d", i);
	if (pipe2(out, O_CLOEXEC) != 0)
		fail("pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out[1], 1);
		execl(D.muond, D.muond, "--listen", listen, "--lease-ms",
		      lease, "--name", name, "--log-level",
		      D.log_level >= MUON_LOG_INFO ? "debug" : "info",
		      D.secret[0] ? "--secret-file" : (char *)NULL, D.secret,
		      (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", D.muond, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	D.daemons[i].pid = pid;
	D.daemons[i].exited = 0;
	D.daemons[i].killed = 0;
	/* The first line says where it listens; later lines are not read
	 * (muond writes nothing else to stdout). */
	while (!memchr(line, '\n', len)) {
		struct pollfd pfd = {.fd = out[0], .events = POLLIN};
		ssize_t n;

		if (now_s() > dl)
			fail("muond %d printed no listening line in 10 s", i);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(out[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			fail("muond %d exited before it listened (%s)", i,
			     n ? strerror(errno) : "end of output");
		len += (size_t)n;
		line[len] = '\0';
		if (len >= sizeof(line) - 1)
			break;
	}
	close(out[0]);
	{
		char *colon = strrchr(line, ':');
		int port = colon ? atoi(colon + 1) : 0;

		if (strncmp(line, "listening tcp://", 16) || port <= 0)
			fail("muond %d: unexpected first line '%s'", i, line);
		D.daemons[i].port = port;
	}
	note("muond %d (pid %d) listens on 127.0.0.1:%d", i, (int)pid,
	     D.daemons[i].port);
}

static void daemon_kill(int i)
{
	D.daemons[i].killed = 1;
	kill(D.daemons[i].pid, SIGKILL);
	WAIT_UNTIL(D.daemons[i].exited, 10, "muond %d to die", i);
}

/* A cluster secret for the daemons and every role: 32 random bytes in a
 * 0600 file, removed at the end (and on failure, by fail()). */
static void secret_make(void)
{
	uint8_t words[32];
	int fd;

	snprintf(D.secret, sizeof(D.secret), "/tmp/muon-itest-secret-XXXXXX");
	fd = mkstemp(D.secret);
	if (fd < 0)
		fail("mkstemp: %s", strerror(errno));
	if (getrandom(words, sizeof(words), 0) != (ssize_t)sizeof(words))
		fail("getrandom: %s", strerror(errno));
	if (write(fd, words, sizeof(words)) != (ssize_t)sizeof(words))
		fail("write %s: %s", D.secret, strerror(errno));
	close(fd);
	note("cluster secret in %s", D.secret);
}

static void daemons_start(void)
{
	size_t off = 0;
	int i;

	if (!D.ndaemons)
		return;
	if (!D.muond)
		fail("--daemons needs --muond PATH or MUON_ITEST_MUOND");
	for (i = 0; i < D.ndaemons; i++) {
		daemon_start(i);
		off += (size_t)snprintf(D.disc_list + off,
					sizeof(D.disc_list) - off,
					"%stcp://127.0.0.1:%d", i ? "," : "",
					D.daemons[i].port);
	}
}

static void daemons_stop(void)
{
	int i;

	for (i = 0; i < D.ndaemons; i++)
		if (!D.daemons[i].exited) {
			D.daemons[i].killed = 1;
			kill(D.daemons[i].pid, SIGTERM);
			WAIT_UNTIL(D.daemons[i].exited, 10,
				   "muond %d to exit on SIGTERM", i);
		}
}

/* ---------------------------------------------------------------- roles */

static void common_args(args_t *a, const char *role, const char *name)
{
	arg(a, "%s", D.exe);
	arg(a, "%s", role);
	arg(a, "--name");
	arg(a, "%s", name);
	arg(a, "--transport");
	arg(a, "%s", D.transport);
	arg(a, "--topic");
	arg(a, "%s", D.topic);
	arg(a, "--shm-dir");
	arg(a, "%s", D.shm_dir);
	arg(a, "--log-level");
	arg(a, "%d", D.log_level);
	if (D.secret[0]) {
		arg(a, "--secret-file");
		arg(a, "%s", D.secret);
	}
}

static uint64_t new_seed(int n)
{
	uint64_t s = mix64((uint64_t)getpid() << 20 ^ now_ns() ^
			   (uint64_t)n * 0x9e37ull);

	return s ? s : 1;
}

/* A publisher args_t with listen endpoint and seed filled in. */
static void pub_args(args_t *a, const char *name)
{
	common_args(a, "pub", name);
	arg(a, "--listen");
	if (strcmp(D.transport, "shm") == 0)
		arg(a, "shm://itest-%d-%d", (int)getpid(), D.endpoints++);
	else
		arg(a, "%s://%s:0", D.transport, D.host);
	arg(a, "--seed");
	arg(a, "%" PRIu64, new_seed(D.nkids));
	if (D.ndaemons) {
		arg(a, "--discovery");
		arg(a, "%s", D.disc_list);
	}
}

static void sub_args(args_t *a, const char *name, child_t **pubs, int npubs)
{
	char peers[1024];
	size_t off = 0;
	int i;

	common_args(a, "sub", name);
	if (D.ndaemons) {
		/* The publishers' endpoints come from the daemons. */
		for (i = 0; i < npubs; i++)
			if (!pubs[i]->listening)
				fail("%s has not started", pubs[i]->name);
		arg(a, "--discovery");
		arg(a, "%s", D.disc_list);
		return;
	}
	for (i = 0; i < npubs; i++) {
		if (!pubs[i]->listening)
			fail("%s has not reported its endpoint", pubs[i]->name);
		off += (size_t)snprintf(peers + off, sizeof(peers) - off,
					"%s%s", i ? "," : "",
					pubs[i]->endpoint);
		if (off >= sizeof(peers))
			fail("peer list too long");
	}
	arg(a, "--peers");
	arg(a, "%s", peers);
}

static void expect(args_t *a, child_t *pub, uint64_t first, uint64_t last)
{
	arg(a, "--expect");
	arg(a, "%" PRIu64 ":%" PRIu64 ":%" PRIu64, pub->id, first, last);
}

static uint64_t scaled(uint64_t dflt, uint64_t min)
{
	uint64_t n = D.count ? D.count : dflt / D.scale;

	if (!D.count && n < min)
		n = min;
	return n;
}

/* The MUON_SLOW_DROP scenarios pace the publisher, so they are bound by
 * time rather than CPU; under a scale (sanitizer builds) they run at a
 * quarter of the rate with a quarter of the messages, same duration. */
static uint32_t paced_rate(uint32_t mbps)
{
	return D.scale > 1 ? mbps / 4 : mbps;
}

static uint64_t paced_count(uint64_t n)
{
	return D.count ? D.count : D.scale > 1 ? n / 4 : n;
}

static void report_subs(child_t **subs, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (subs[i]->result)
			note("%s: done %.2f s after start: %s", subs[i]->name,
			     subs[i]->t_result - subs[i]->t_start,
			     subs[i]->result_line);
}

static void wait_subs_done(child_t **subs, int n, double limit)
{
	int i;

	for (i = 0; i < n; i++)
		WAIT_UNTIL(subs[i]->exited, limit,
			   "%s to receive and verify everything (RESULT)",
			   subs[i]->name);
}

static void check_result_u64(child_t *k, const char *key, uint64_t want)
{
	uint64_t got = kv_u64(k, k->result_line, key);

	if (got != want)
		fail("%s reports %s=%" PRIu64 ", expected %" PRIu64, k->name,
		     key, got, want);
}

/* ---------------------------------------------------------------- scenarios */

/* 1 publisher, 3 subscribers, random sizes 0..64 KiB, everything verified */
static void sc_fanout(void)
{
	uint64_t n = scaled(1000000, 1000);
	child_t *pub, *subs[3];
	args_t a = {0};
	int i;

	note("fanout_1x3: %" PRIu64 " messages, sizes 0..65536", n);
	pub_args(&a, "pub");
	arg(&a, "--count");
	arg(&a, "%" PRIu64, n);
	arg(&a, "--subscribers");
	arg(&a, "3");
	pub = spawn("pub", 1, &a);
	WAIT_UNTIL(pub->listening, 30, "pub to listen (LISTEN line)");
	for (i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "sub%d", i);
		sub_args(&a, name, &pub, 1);
		expect(&a, pub, 1, n);
		subs[i] = spawn(name, 0, &a);
	}
	for (i = 0; i < 3; i++)
		WAIT_UNTIL(subs[i]->up, 30, "%s IMAGE_UP", subs[i]->name);
	send_cmd(pub, "GO");
	wait_subs_done(subs, 3, D.timeout);
	WAIT_UNTIL(pub->done, 30, "pub DONE");
	if (pub->last != n)
		fail("pub published up to %" PRIu64 ", expected %" PRIu64,
		     pub->last, n);
	for (i = 0; i < 3; i++)
		check_result_u64(subs[i], "msgs", n);
	finish_pubs(&pub, 1);
	report_subs(subs, 3);
}

/* 3 publishers (one using claim/commit, one muon_publishv() batches),
 * 1 subscriber */
static void sc_fanin(void)
{
	uint64_t n = scaled(1000000, 1000);
	uint64_t share[3];
	child_t *pubs[3], *sub;
	args_t a = {0};
	int i;

	share[1] = share[2] = n / 3;
	share[0] = n - 2 * (n / 3);
	note("fanin_3x1: %" PRIu64 " messages (%" PRIu64 " + %" PRIu64
	     " + %" PRIu64 "), sizes 0..65536",
	     n, share[0], share[1], share[2]);
	for (i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "pub%d", i);
		pub_args(&a, name);
		arg(&a, "--count");
		arg(&a, "%" PRIu64, share[i]);
		arg(&a, "--subscribers");
		arg(&a, "1");
		if (i == 1) {
			arg(&a, "--api");
			arg(&a, "claim");
		}
		if (i == 2) {
			arg(&a, "--api");
			arg(&a, "publishv");
		}
		pubs[i] = spawn(name, 1, &a);
	}
	for (i = 0; i < 3; i++)
		WAIT_UNTIL(pubs[i]->listening, 30, "%s LISTEN", pubs[i]->name);
	sub_args(&a, "sub", pubs, 3);
	for (i = 0; i < 3; i++)
		expect(&a, pubs[i], 1, share[i]);
	sub = spawn("sub", 0, &a);
	WAIT_UNTIL(sub->up, 30, "sub to see 3 images up");
	for (i = 0; i < 3; i++)
		send_cmd(pubs[i], "GO");
	wait_subs_done(&sub, 1, D.timeout);
	check_result_u64(sub, "msgs", n);
	for (i = 0; i < 3; i++)
		if (!pubs[i]->done || pubs[i]->last != share[i])
			fail("%s did not report DONE last=%" PRIu64,
			     pubs[i]->name, share[i]);
	finish_pubs(pubs, 3);
	report_subs(&sub, 1);
}

/* 1 publisher, 3 subscribers, one SIGKILLed mid-stream */
static void sc_kill_sub(int drop)
{
	uint64_t n = drop ? paced_count(100000) : scaled(200000, 5000);
	uint64_t mark = n / 4 < 5000 ? n / 4 : 5000;
	uint32_t rate = paced_rate(60);
	child_t *pub, *subs[3];
	args_t a = {0};
	double t_kill;
	int i;

	if (drop)
		note("kill_sub_drop: MUON_SLOW_DROP, %" PRIu64 " messages, "
		     "sizes 0..4096, paced at %u MB/s, sub2 killed after %"
		     PRIu64 " messages",
		     n, rate, mark);
	else
		note("kill_sub: back-pressure, %" PRIu64 " messages, sizes "
		     "0..65536, sub2 killed after %" PRIu64 " messages",
		     n, mark);
	pub_args(&a, "pub");
	arg(&a, "--count");
	arg(&a, "%" PRIu64, n);
	arg(&a, "--subscribers");
	arg(&a, "3");
	if (drop) {
		arg(&a, "--slow-policy");
		arg(&a, "drop");
		arg(&a, "--max-size");
		arg(&a, "4096");
		arg(&a, "--rate-mbps");
		arg(&a, "%u", rate);
		arg(&a, "--send-log-size");
		arg(&a, "32M");
	} else {
		/* a publisher blocked by the dead subscriber fails itself */
		arg(&a, "--max-stall-ms");
		arg(&a, "5000");
	}
	pub = spawn("pub", 1, &a);
	WAIT_UNTIL(pub->listening, 30, "pub LISTEN");
	for (i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "sub%d", i);
		sub_args(&a, name, &pub, 1);
		expect(&a, pub, 1, n);
		if (drop) {
			arg(&a, "--max-size");
			arg(&a, "4096");
		}
		if (i == 2) {
			arg(&a, "--mark");
			arg(&a, "%" PRIu64, mark);
		} else {
			/* a stall waiting for the 10 s peer timeout fails */
			arg(&a, "--max-gap-ms");
			arg(&a, "5000");
		}
		subs[i] = spawn(name, 0, &a);
	}
	for (i = 0; i < 3; i++)
		WAIT_UNTIL(subs[i]->up, 30, "%s IMAGE_UP", subs[i]->name);
	send_cmd(pub, "GO");
	WAIT_UNTIL(subs[2]->marked, D.timeout, "sub2 to receive %" PRIu64
		   " messages (MARK)", mark);
	if (pub->done)
		fail("the publisher had already finished when sub2 was "
		     "killed: not mid-stream");
	subs[2]->killed = 1;
	if (kill(subs[2]->pid, SIGKILL) != 0)
		fail("kill: %s", strerror(errno));
	t_kill = now_s();
	note("killed sub2 (pid %d) with SIGKILL", (int)subs[2]->pid);
	wait_subs_done(subs, 2, D.timeout);
	WAIT_UNTIL(subs[2]->exited, 10, "sub2 to die");
	WAIT_UNTIL(pub->done, 30, "pub DONE");
	for (i = 0; i < 2; i++)
		check_result_u64(subs[i], "msgs", n);
	note("survivors finished %.2f s after the kill", now_s() - t_kill);
	finish_pubs(&pub, 1);
	report_subs(subs, 2);
}

/* Joiners after 10,000 messages: START_SEQ 5001, EARLIEST, LATEST and a
 * START_SEQ in the future (15000) */
static void sc_late_join(void)
{
	uint64_t pre = 10000, more = D.count ? D.count : 10000;
	uint64_t future = pre + more / 2;
	child_t *pub, *subs[4];
	static const char *names[4] = {"seq5001", "earliest", "latest",
				       "future"};
	args_t a = {0};
	int i;

	note("late_join: %" PRIu64 " messages of 256 bytes before the "
	     "joiners, %" PRIu64 " after; joiners start at seq 5001, "
	     "earliest, latest and seq %" PRIu64,
	     pre, more, future);
	pub_args(&a, "pub");
	arg(&a, "--pre-count");
	arg(&a, "%" PRIu64, pre);
	arg(&a, "--count");
	arg(&a, "%" PRIu64, more);
	arg(&a, "--sizes");
	arg(&a, "fixed:256");
	arg(&a, "--send-log-size");
	arg(&a, "8M");
	arg(&a, "--subscribers");
	arg(&a, "4");
	pub = spawn("pub", 1, &a);
	WAIT_UNTIL(pub->listening && pub->pre_done, 60,
		   "pub to publish %" PRIu64 " messages (PRE_DONE)", pre);
	if (pub->pre_last != pre)
		fail("pub PRE_DONE last=%" PRIu64 ", expected %" PRIu64,
		     pub->pre_last, pre);
	for (i = 0; i < 4; i++) {
		sub_args(&a, names[i], &pub, 1);
		arg(&a, "--sizes");
		arg(&a, "fixed:256");
		arg(&a, "--start");
		if (i == 0) {
			arg(&a, "seq:5001");
			expect(&a, pub, 5001, pre + more);
		} else if (i == 1) {
			arg(&a, "earliest");
			expect(&a, pub, 1, pre + more);
		} else if (i == 2) {
			arg(&a, "latest");
			expect(&a, pub, pre + 1, pre + more);
		} else {
			arg(&a, "seq:%" PRIu64, future);
			expect(&a, pub, future, pre + more);
		}
		subs[i] = spawn(names[i], 0, &a);
	}
	for (i = 0; i < 4; i++)
		WAIT_UNTIL(subs[i]->up, 30, "%s IMAGE_UP", subs[i]->name);
	send_cmd(pub, "GO");
	wait_subs_done(subs, 4, D.timeout);
	check_result_u64(subs[0], "msgs", pre + more - 5000);
	check_result_u64(subs[1], "msgs", pre + more);
	check_result_u64(subs[2], "msgs", more);
	check_result_u64(subs[3], "msgs", pre + more - future + 1);
	for (i = 0; i < 4; i++)
		check_result_u64(subs[i], "losses", 0);
	finish_pubs(&pub, 1);
	report_subs(subs, 4);
}

/* Small send log: a START_SEQ 1 joiner gets one LOSS [1, first_kept-1] */
static void sc_loss_on_join(void)
{
	const uint32_t log_size = 65536, msg_size = 1024;
	uint64_t pre = 10000, more = D.count ? D.count : 1000;
	uint64_t kept_max = log_size / msg_size;
	child_t *pub, *sub;
	args_t a = {0};
	uint64_t lost;

	note("loss_on_join: %" PRIu64 " messages of %u bytes through a %u "
	     "byte send log, then %" PRIu64 " more; at most %" PRIu64
	     " can be kept",
	     pre, msg_size, log_size, more, kept_max);
	pub_args(&a, "pub");
	arg(&a, "--pre-count");
	arg(&a, "%" PRIu64, pre);
	arg(&a, "--count");
	arg(&a, "%" PRIu64, more);
	arg(&a, "--sizes");
	arg(&a, "fixed:%u", msg_size);
	arg(&a, "--send-log-size");
	arg(&a, "%u", log_size);
	arg(&a, "--max-msg-size");
	arg(&a, "%u", log_size / 4);
	arg(&a, "--subscribers");
	arg(&a, "1");
	pub = spawn("pub", 1, &a);
	WAIT_UNTIL(pub->listening && pub->pre_done, 60,
		   "pub to publish %" PRIu64 " messages (PRE_DONE)", pre);
	if (pub->pre_last != pre)
		fail("pub PRE_DONE last=%" PRIu64 ", expected %" PRIu64,
		     pub->pre_last, pre);
	sub_args(&a, "joiner", &pub, 1);
	arg(&a, "--sizes");
	arg(&a, "fixed:%u", msg_size);
	arg(&a, "--start");
	arg(&a, "seq:1");
	expect(&a, pub, 1, pre + more);
	/* LOSS from 1 to somewhere in [pre - kept_max, pre - 1]: the log
	 * cannot keep more than log_size/msg_size payloads, and it must keep
	 * at least the last one */
	arg(&a, "--expect-loss");
	arg(&a, "1:%" PRIu64 ":%" PRIu64, pre - kept_max, pre - 1);
	sub = spawn("joiner", 0, &a);
	WAIT_UNTIL(sub->up, 30, "joiner IMAGE_UP");
	send_cmd(pub, "GO");
	wait_subs_done(&sub, 1, D.timeout);
	check_result_u64(sub, "losses", 1);
	lost = kv_u64(sub, sub->result_line, "lost");
	check_result_u64(sub, "msgs", pre + more - lost);
	note("first retained seq %" PRIu64 ": %" PRIu64 " of %" PRIu64
	     " pre-join messages were still in the send log",
	     lost + 1, pre - lost, pre);
	finish_pubs(&pub, 1);
	report_subs(&sub, 1);
}

/* MUON_SLOW_DROP: one subscriber sleeps in its callback and is cut loose */
static void sc_slow_sub(void)
{
	uint64_t n = paced_count(120000);
	uint32_t rate = paced_rate(40);
	child_t *pub, *subs[2];
	args_t a = {0};
	uint64_t msgs, lost;
	int i;

	note("slow_sub_drop: MUON_SLOW_DROP, %" PRIu64 " messages, sizes "
	     "0..4096, paced at %u MB/s; 'slow' (1 MiB ring) sleeps 2500 ms "
	     "in its callback after %" PRIu64 " messages",
	     n, rate, n / 12);
	pub_args(&a, "pub");
	arg(&a, "--count");
	arg(&a, "%" PRIu64, n);
	arg(&a, "--subscribers");
	arg(&a, "2");
	arg(&a, "--slow-policy");
	arg(&a, "drop");
	arg(&a, "--max-size");
	arg(&a, "4096");
	arg(&a, "--rate-mbps");
	arg(&a, "%u", rate);
	/* the fast subscriber's slack: 8 MiB ring + send log at the rate */
	arg(&a, "--send-log-size");
	arg(&a, "%s", D.scale > 1 ? "2M" : "8M");
	pub = spawn("pub", 1, &a);
	WAIT_UNTIL(pub->listening, 30, "pub LISTEN");
	for (i = 0; i < 2; i++) {
		const char *name = i ? "slow" : "fast";

		sub_args(&a, name, &pub, 1);
		expect(&a, pub, 1, n);
		arg(&a, "--max-size");
		arg(&a, "4096");
		if (i == 1) {
			arg(&a, "--sleep-after");
			arg(&a, "%" PRIu64, n / 12);
			arg(&a, "--sleep-ms");
			arg(&a, "2500");
			arg(&a, "--ring-size");
			arg(&a, "1M");
			arg(&a, "--allow-loss");
			arg(&a, "--expect-down");
				}
		subs[i] = spawn(name, 0, &a);
	}
	for (i = 0; i < 2; i++)
		WAIT_UNTIL(subs[i]->up, 30, "%s IMAGE_UP", subs[i]->name);
	send_cmd(pub, "GO");
	wait_subs_done(subs, 2, D.timeout);
	check_result_u64(subs[0], "msgs", n);
	check_result_u64(subs[0], "losses", 0);
	msgs = kv_u64(subs[1], subs[1]->result_line, "msgs");
	lost = kv_u64(subs[1], subs[1]->result_line, "lost");
	if (msgs + lost != n)
		fail("slow: delivered %" PRIu64 " + lost %" PRIu64
		     " != %" PRIu64 " published",
		     msgs, lost, n);
	note("slow subscriber: %" PRIu64 " delivered, %" PRIu64 " lost, "
	     "%" PRIu64 " IMAGE_DOWN",
	     msgs, lost, kv_u64(subs[1], subs[1]->result_line, "downs"));
	WAIT_UNTIL(pub->done, 30, "pub DONE");
	finish_pubs(&pub, 1);
	report_subs(subs, 2);
}

static void sc_kill_bp(void)
{
	sc_kill_sub(0);
}

static void sc_kill_drop(void)
{
	sc_kill_sub(1);
}

/* ---------------------------------------------------------------- discovery */

static void need_daemons(int n)
{
	if (D.ndaemons != n)
		fail("scenario %s needs --daemons %d (have %d)", D.scenario, n,
		     D.ndaemons);
}

/* Pump for `secs` seconds, failing if the publisher finished meanwhile:
 * the event under test must happen while data flows. */
static void pump_while_publishing(child_t *pub, double secs)
{
	double until = now_s() + secs;

	while (now_s() < until) {
		pump(20);
		if (pub->done)
			fail("pub finished before the event under test: "
			     "the stream is too short for this machine");
	}
}

/* The publisher of the disc_* scenarios: n messages of 0..1024 bytes at
 * 2 MB/s for one subscriber, a send log that holds them all (a late
 * joiner starting at the earliest gets everything). */
static child_t *disc_paced_pub(uint64_t n)
{
	args_t a = {0};
	child_t *pub;

	pub_args(&a, "pub");
	arg(&a, "--count");
	arg(&a, "%" PRIu64, n);
	arg(&a, "--max-size");
	arg(&a, "1024");
	arg(&a, "--rate-mbps");
	arg(&a, "2");
	arg(&a, "--send-log-size");
	arg(&a, "32M");
	arg(&a, "--subscribers");
	arg(&a, "1");
	pub = spawn("pub", 1, &a);
	WAIT_UNTIL(pub->listening, 30, "pub to listen (LISTEN line)");
	return pub;
}

/* A paced stream (about 5 s) from one publisher found through discovery
 * to sub1; during it something happens to the daemons (what = 0: daemon
 * 0 killed and restarted on its port; what = 1: daemon 0 killed for good
 * with daemon 1 still up); then a second subscriber joins, which can only
 * find the publisher through a daemon that knows it now. sub1 must see no
 * gap longer than a second and both get every message. */
static void disc_stream(int what)
{
	/* 2 MB/s of 512-byte messages on average: the events below happen
	 * within the first 2 s, so the stream must last longer, even when
	 * a sanitizer build scales counts down. */
	uint64_t n = D.count ? D.count : D.scale > 1 ? 12000 : 20000;
	double t_event, up_in;
	child_t *pub, *subs[2];
	args_t a = {0};

	need_daemons(what == 0 ? 1 : 2);
	note("%s: %" PRIu64 " messages of 0..1024 bytes at 2 MB/s; "
	     "lease %d ms", D.scenario, n, ITEST_LEASE_MS);
	pub = disc_paced_pub(n);
	sub_args(&a, "sub1", &pub, 1);
	arg(&a, "--max-size");
	arg(&a, "1024");
	arg(&a, "--max-gap-ms");
	arg(&a, "1000");
	expect(&a, pub, 1, n);
	subs[0] = spawn("sub1", 0, &a);
	WAIT_UNTIL(subs[0]->up, 30, "sub1 to find the publisher (IMAGE_UP)");
	note("sub1 found the publisher through discovery in %.2f s",
	     subs[0]->t_up - subs[0]->t_start);
	send_cmd(pub, "GO");
	pump_while_publishing(pub, 1.0);
	daemon_kill(0);
	if (what == 0) {
		pump_while_publishing(pub, 0.5);
		daemon_start(0);
		note("muond 0 restarted on the same port");
	} else {
		note("muond 0 is gone; muond 1 stays");
	}
	t_event = now_s();
	sub_args(&a, "sub2", &pub, 1);
	arg(&a, "--max-size");
	arg(&a, "1024");
	arg(&a, "--start");
	arg(&a, "earliest");
	expect(&a, pub, 1, n);
	subs[1] = spawn("sub2", 0, &a);
	WAIT_UNTIL(subs[1]->up, 30, "sub2 to find the publisher (IMAGE_UP)");
	up_in = subs[1]->t_up - t_event;
	note("sub2 found the publisher %.3f s after the %s", up_in,
	     what == 0 ? "restart" : "kill");
	/* Registrations are back within one lease (plus a process start). */
	if (up_in > ITEST_LEASE_MS / 1000.0 + 1.0)
		fail("sub2 needed %.3f s to find the publisher: more than "
		     "one lease (%d ms) + 1 s", up_in, ITEST_LEASE_MS);
	if (pub->done)
		fail("pub finished before sub2 joined: the stream is too "
		     "short for this machine");
	wait_subs_done(subs, 2, D.timeout);
	WAIT_UNTIL(pub->done, 30, "pub DONE");
	check_result_u64(subs[0], "msgs", n);
	check_result_u64(subs[1], "msgs", n);
	check_result_u64(subs[0], "losses", 0);
	check_result_u64(subs[1], "losses", 0);
	finish_pubs(&pub, 1);
	report_subs(subs, 2);
}

static void sc_disc_restart(void)
{
	disc_stream(0);
}

static void sc_disc_failover(void)
{
	disc_stream(1);
}

/* How many publications muonctl lists for our topic: -1 on failure. */
static int muonctl_count(void)
{
	char cmd[1024], line[512];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "'%s' --daemon '%s'%s%s%s publications "
		 "'%s'", D.muonctl, D.disc_list,
		 D.secret[0] ? " --secret-file '" : "", D.secret[0] ? D.secret : "",
		 D.secret[0] ? "'" : "", D.topic);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, D.topic))
			n++;
	if (pclose(f) != 0)
		return -1;
	return n;
}

/* A publisher killed with SIGKILL mid-stream: the daemon must drop its
 * publication within one lease (it cannot unregister), which muonctl
 * shows; the subscriber sees the stream go down. */
static void sc_disc_kill_pub(void)
{
	uint64_t n = D.count ? D.count : 20000;
	child_t *pub, *sub;
	args_t a = {0};
	double t_kill, gone = 0;
	int cnt;

	need_daemons(1);
	if (!D.muonctl)
		fail("disc_kill_pub needs --muonctl PATH or MUON_ITEST_MUONCTL");
	pub = disc_paced_pub(n);
	sub_args(&a, "sub", &pub, 1);
	arg(&a, "--max-size");
	arg(&a, "1024");
	arg(&a, "--expect-down");
	expect(&a, pub, 1, n);
	sub = spawn("sub", 0, &a);
	WAIT_UNTIL(sub->up, 30, "sub to find the publisher (IMAGE_UP)");
	cnt = muonctl_count();
	if (cnt != 1)
		fail("muonctl lists %d publication(s) of '%s' while the "
		     "publisher runs, expected 1", cnt, D.topic);
	send_cmd(pub, "GO");
	pump_while_publishing(pub, 1.0);
	pub->killed = 1;
	kill(pub->pid, SIGKILL);
	t_kill = now_s();
	while (now_s() < t_kill + 10) {
		cnt = muonctl_count();
		if (cnt < 0)
			fail("muonctl failed");
		if (cnt == 0) {
			gone = now_s() - t_kill;
			break;
		}
		pump(50);
	}
	if (!gone)
		fail("the killed publisher is still listed 10 s later");
	note("publication down at the daemon %.3f s after SIGKILL (lease "
	     "%d ms)", gone, ITEST_LEASE_MS);
	if (gone > ITEST_LEASE_MS / 1000.0 + 0.5)
		fail("publication down after %.3f s: more than one lease "
		     "(%d ms) + 0.5 s", gone, ITEST_LEASE_MS);
	/* The subscriber cannot complete the stream; it was only needed to
	 * make the stream flow. */
	sub->killed = 1;
	kill(sub->pid, SIGKILL);
	WAIT_UNTIL(sub->exited && pub->exited, 10, "killed processes to go");
}

static const struct scenario {
	const char *name;
	void (*fn)(void);
	double timeout;
	int kills; /* leaves a crashed process's shm files behind */
} scenarios[] = {
	{"fanout_1x3", sc_fanout, 400, 0},
	{"fanin_3x1", sc_fanin, 300, 0},
	{"kill_sub", sc_kill_bp, 200, 1},
	{"kill_sub_drop", sc_kill_drop, 200, 1},
	{"late_join", sc_late_join, 60, 0},
	{"loss_on_join", sc_loss_on_join, 60, 0},
	{"slow_sub_drop", sc_slow_sub, 120, 0},
	{"disc_restart", sc_disc_restart, 120, 0},
	{"disc_failover", sc_disc_failover, 120, 0},
	{"disc_kill_pub", sc_disc_kill_pub, 60, 1},
};

static void usage(void)
{
	size_t i;

	fprintf(stderr,
		"usage: muon-itest run SCENARIO --transport T [--count N] "
		"[--scale D] [--timeout S] [--host H] [--log-level L] "
		"[--keep-shm]\n       [--daemons N --muond PATH] "
		"[--muonctl PATH] [--secret]\nscenarios:");
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(stderr, " %s", scenarios[i].name);
	fprintf(stderr, "\n");
	exit(2);
}

int driver_main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"transport", 1, 0, 't'}, {"count", 1, 0, 'n'},
		{"scale", 1, 0, 's'},     {"timeout", 1, 0, 'T'},
		{"host", 1, 0, 'h'},      {"log-level", 1, 0, 'v'},
		{"keep-shm", 0, 0, 'k'},  {"daemons", 1, 0, 'D'},
		{"muond", 1, 0, 'M'},     {"muonctl", 1, 0, 'C'},
		{"secret", 0, 0, 'S'},    {0, 0, 0, 0},
	};
	const struct scenario *sc = NULL;
	void (*fn)(void);
	const char *env;
	ssize_t len;
	size_t i;
	int opt, leftovers = 0;

	if (argc < 2)
		usage();
	D.scenario = argv[1];
	D.scale = 1;
	D.log_level = MUON_LOG_WARN;
	D.host = getenv("MUON_ITEST_HOST") ? getenv("MUON_ITEST_HOST")
					   : "127.0.0.1";
	D.muond = getenv("MUON_ITEST_MUOND");
	D.muonctl = getenv("MUON_ITEST_MUONCTL");
	env = getenv("MUON_ITEST_SCALE");
	if (env && *env && (parse_u64(env, &D.scale) != 0 || D.scale == 0))
		die("MUON_ITEST_SCALE='%s': expected a positive integer",
		    env);
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 't': D.transport = optarg; break;
		case 'n': D.count = opt_u64("--count", optarg); break;
		case 's':
			D.scale = opt_u64("--scale", optarg);
			if (!D.scale)
				die("--scale must be positive");
			break;
		case 'T': D.timeout = (double)opt_u32("--timeout", optarg);
			break;
		case 'h': D.host = optarg; break;
		case 'v': D.log_level = (int)opt_u32("--log-level", optarg);
			break;
		case 'k': D.keep_shm = 1; break;
		case 'D':
			D.ndaemons = (int)opt_u32("--daemons", optarg);
			if (D.ndaemons > MAX_DAEMONS)
				die("--daemons: at most %d", MAX_DAEMONS);
			break;
		case 'M': D.muond = optarg; break;
		case 'C': D.muonctl = optarg; break;
		case 'S': D.secret[0] = 1; break;
		default: usage();
		}
	}
	if (optind != argc || !D.transport)
		usage();
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (strcmp(scenarios[i].name, D.scenario) == 0)
			sc = &scenarios[i];
	if (!sc)
		usage();
	fn = sc->fn;
	if (!D.timeout)
		D.timeout = sc->timeout;

	set_role_name("driver");
	signal(SIGPIPE, SIG_IGN);
	len = readlink("/proc/self/exe", D.exe, sizeof(D.exe) - 1);
	if (len <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	D.exe[len] = '\0';
	snprintf(D.topic, sizeof(D.topic), "itest.%s.%d", sc->name,
		 (int)getpid());
	snprintf(D.shm_dir, sizeof(D.shm_dir), "/dev/shm/muon-itest-%d",
		 (int)getpid());
	remove_stale_dirs();
	if (mkdir(D.shm_dir, 0700) != 0 && errno == EEXIST) {
		/* left by an earlier driver with our pid */
		cleanup_shm_dir(0);
	}
	if (access(D.shm_dir, F_OK) != 0 && mkdir(D.shm_dir, 0700) != 0)
		die("mkdir %s: %s", D.shm_dir, strerror(errno));
	D.t0 = now_s();
	D.deadline = D.t0 + D.timeout;
	note("scenario %s, transport %s, muon %s, scale 1/%" PRIu64
	     ", count override %" PRIu64 ", timeout %.0f s, shm dir %s",
	     sc->name, D.transport, muon_version(), D.scale, D.count,
	     D.timeout, D.shm_dir);

	if (D.secret[0])
		secret_make();
	daemons_start();
	fn();
	daemons_stop();
	if (D.secret[0])
		unlink(D.secret);

	/* every process must have exited by now */
	for (i = 0; i < (size_t)D.nkids; i++)
		WAIT_UNTIL(D.kids[i].exited, 30, "%s to exit",
			   D.kids[i].name);
	leftovers = count_shm_files();
	if (leftovers && sc->kills) {
		/* muon_ctx_create() removes ring files of crashed processes */
		muon_ctx_config_t cfg;
		muon_ctx_t *ctx = NULL;
		int rc;

		note("%d file(s) left by the killed process; a new context on "
		     "the same shm_dir must remove them",
		     leftovers);
		muon_ctx_config_init(&cfg);
		cfg.name = "cleanup";
		cfg.ignore_env = 1;
		cfg.shm_dir = D.shm_dir;
		cfg.log_fn = log_to_stderr;
		rc = muon_ctx_create(&cfg, &ctx);
		if (rc != MUON_OK)
			fail("muon_ctx_create(shm_dir=%s): %s: %s", D.shm_dir,
			     muon_strerror(rc), muon_errmsg());
		muon_ctx_destroy(ctx);
		leftovers = count_shm_files();
		if (leftovers) {
			cleanup_shm_dir(1);
			fail("%d file(s) of the killed process still in %s "
			     "after muon_ctx_create()",
			     leftovers, D.shm_dir);
		}
	}
	cleanup_shm_dir(1);
	if (leftovers)
		fail("%d file(s) left in the shm dir after every process "
		     "exited cleanly",
		     leftovers);
	note("PASS %s on %s in %.1f s", sc->name, D.transport,
	     now_s() - D.t0);
	return 0;
}
