/*
 * muonctl: ask one or more discovery daemons (muond) what they know.
 *
 *   muonctl [--daemon LIST] [--secret-file F] [--json] [--timeout-ms N]
 *           topics | publications [TOPIC] | watchers | health
 *
 * Every daemon of LIST is queried at once (one poll loop, one deadline),
 * so a dead daemon costs the timeout once, not once per daemon. The
 * exchange per daemon is the contract's: Welcome in, Hello and one List
 * out, ListReply parts in until last. docs/man/muonctl.1 is the manual.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/muoni.h"
#include "proto/disc.h"

#define PROG "muonctl"
#define STR_(x) #x
#define STR(x) STR_(x)
#define CTL_VERSION                                                    \
	STR(MUON_VERSION_MAJOR) "." STR(MUON_VERSION_MINOR) "."        \
	STR(MUON_VERSION_PATCH)

#define EXIT_SOME_FAILED 1
#define EXIT_USAGE 2
#define DEFAULT_DAEMON "tcp://127.0.0.1:7440"
#define DEFAULT_TIMEOUT_MS 2000u
#define MAX_TIMEOUT_MS 3600000u
#define MAX_DAEMONS 64u
#define LIST_REQUEST_ID 1u
/* What one daemon may send before we stop listening: a reply of 100000
 * publications is ~20 MB; a daemon streaming more is broken or hostile. */
#define MAX_REPLY_BYTES (256u << 20)

enum command { CMD_TOPICS, CMD_PUBLICATIONS, CMD_WATCHERS, CMD_HEALTH };

enum dstate {
	DS_CONNECTING, /* TCP connect in progress */
	DS_WELCOME,    /* connected, waiting for Welcome */
	DS_REPLY,      /* Hello and List sent (or queued), collecting parts */
	DS_DONE,
	DS_FAILED,
};

struct daemon {
	char host[256];
	char port[8];
	char addr[300]; /* "HOST:PORT" or "[V6]:PORT", for messages */
	struct addrinfo *ai_list, *ai_cur;
	int fd;
	enum dstate state;
	bool connected; /* a TCP connection was established */
	char err[512];
	struct muoni_disc_buf in, out;
	uint8_t nonce[MUONI_DISC_NONCE_LEN];  /* ours: the daemon MACs with it */
	uint8_t dnonce[MUONI_DISC_NONCE_LEN]; /* the daemon's, from Welcome */
	uint64_t rx_seq, tx_seq;
	uint32_t max_frame; /* what the daemon accepts */
	size_t rx_bytes;
	bool auth_required;
	/* Results: the ListReply parts, kept decoded until output is done. */
	Muon__Disc__ListReply **parts;
	Muon__Disc__Message **msgs;
	size_t n_parts, cap_parts;
};

struct opts {
	const char *daemons;
	const char *secret_file;
	bool json;
	uint32_t timeout_ms;
	enum command cmd;
	const char *topic; /* publications TOPIC, "" = all */
};

static bool have_key;
static uint8_t key[32];

/* ------------------------------------------------------------ helpers */

/* A command-line tool has nothing sensible left to do without memory;
 * dying with a message keeps every caller free of OOM branches. */
static void oom(void)
{
	fputs(PROG ": out of memory\n", stderr);
	exit(EXIT_SOME_FAILED);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

static char *xasprintf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return s;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Text from a daemon goes to a terminal: no escape sequences get through. */
static char *clean(const char *s)
{
	char *c = strdup(s ? s : "");
	size_t i;

	if (!c)
		oom();
	for (i = 0; c[i]; i++)
		if ((unsigned char)c[i] < 0x20 || (unsigned char)c[i] == 0x7f)
			c[i] = '?';
	return c;
}

/*
 * The library's error detail starts with where it arose ("core/auth.c:37:
 * "), which helps a developer and only distracts an operator: drop it.
 */
static const char *lib_reason(void)
{
	const char *m = muoni_err_msg(), *c = strstr(m, ".c:");
	size_t d;

	if (!c || memchr(m, ' ', (size_t)(c - m)))
		return m;
	d = strspn(c + 3, "0123456789");
	if (d && c[3 + d] == ':' && c[4 + d] == ' ')
		return c + 5 + d;
	return m;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTIONS] COMMAND\n"
		"       " PROG " --help | --version\n"
		"\n"
		"Ask muon discovery daemons (muond) what they know.\n"
		"\n"
		"Commands:\n"
		"  topics               topics with their publication and "
		"watcher counts\n"
		"  publications [TOPIC] publications, all or of one topic, "
		"merged across\n"
		"                       daemons by (context id, stream id)\n"
		"  watchers             each daemon's watches\n"
		"  health               one row per daemon: its counters, or "
		"why it failed\n"
		"\n"
		"Options:\n"
		"  -d, --daemon LIST      daemons, comma-separated: "
		"tcp://HOST:PORT, HOST:PORT,\n"
		"                         [V6]:PORT or HOST (port %u); default "
		"$MUON_DISCOVERY,\n"
		"                         else " DEFAULT_DAEMON "\n"
		"  -s, --secret-file F    cluster secret (default "
		"$MUON_SECRET_FILE); with it\n"
		"                         the daemons must prove they hold it "
		"too\n"
		"  -j, --json             print one JSON document instead of "
		"a table\n"
		"  -t, --timeout-ms N     deadline for every daemon's answer "
		"(default %u)\n"
		"  -h, --help             show this help\n"
		"  -V, --version          show the version\n"
		"\n"
		"Exit status: 0 every daemon answered, 1 some did not, 2 "
		"usage error.\n",
		MUONI_DISC_DEFAULT_PORT, DEFAULT_TIMEOUT_MS);
}

static void bad_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

/* ------------------------------------------------------------ daemon list */

/*
 * One entry of LIST into d->host / d->port / d->addr. The syntax is the
 * contract's: "tcp://HOST:PORT", "HOST:PORT", "[V6]:PORT", "HOST".
 * Returns 0, or -1 with the reason in `why`.
 */
static int parse_daemon(const char *s, size_t n, struct daemon *d, char *why,
			size_t whylen)
{
	const char *host, *port = NULL, *end = s + n;
	size_t hl, pl = 0;
	bool v6 = false;
	char *e;
	unsigned long v;
	char pbuf[8];

	if (n > 6 && !strncmp(s, "tcp://", 6))
		s += 6;
	else if (memmem(s, n, "://", 3)) {
		snprintf(why, whylen, "only tcp:// daemons exist");
		return -1;
	}
	if (s < end && *s == '[') {
		const char *rb = memchr(s, ']', (size_t)(end - s));

		if (!rb || (rb + 1 < end && rb[1] != ':')) {
			snprintf(why, whylen, "want [IPv6]:PORT");
			return -1;
		}
		host = s + 1;
		hl = (size_t)(rb - host);
		if (rb + 1 < end)
			port = rb + 2;
		v6 = true;
	} else {
		const char *colon = memchr(s, ':', (size_t)(end - s));

		host = s;
		hl = colon ? (size_t)(colon - s) : (size_t)(end - s);
		if (colon) {
			if (memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
				snprintf(why, whylen, "put IPv6 addresses in "
					 "brackets: [V6]:PORT");
				return -1;
			}
			port = colon + 1;
		}
	}
	if (!hl || hl >= sizeof(d->host)) {
		snprintf(why, whylen, "host of %zu bytes", hl);
		return -1;
	}
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)host[i] <= ' ' || host[i] == '/' ||
		    (unsigned char)host[i] == 0x7f) {
			snprintf(why, whylen, "bad character in host");
			return -1;
		}
	if (port) {
		pl = (size_t)(end - port);
		if (!pl || pl >= sizeof(pbuf)) {
			snprintf(why, whylen, "bad port");
			return -1;
		}
		memcpy(pbuf, port, pl);
		pbuf[pl] = '\0';
		errno = 0;
		v = strtoul(pbuf, &e, 10);
		/* strtoul would take "+1" and " 1"; a port is digits. */
		if (pbuf[0] < '0' || pbuf[0] > '9' || *e || errno || !v ||
		    v > 65535) {
			snprintf(why, whylen, "port must be 1..65535");
			return -1;
		}
	} else {
		v = MUONI_DISC_DEFAULT_PORT;
	}
	memcpy(d->host, host, hl);
	d->host[hl] = '\0';
	snprintf(d->port, sizeof(d->port), "%lu", v);
	snprintf(d->addr, sizeof(d->addr), v6 ? "[%s]:%s" : "%s:%s", d->host,
		 d->port);
	return 0;
}

static struct daemon *parse_daemons(const char *list, size_t *count)
{
	struct daemon *ds = xcalloc(MAX_DAEMONS, sizeof(*ds));
	const char *p = list;
	size_t n = 0;
	char why[128];

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		/* Spaces after commas are how people write lists. */
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (!len)
			bad_usage("daemon list '%s' has an empty entry", list);
		if (n == MAX_DAEMONS)
			bad_usage("more than %u daemons", MAX_DAEMONS);
		if (parse_daemon(p, len, &ds[n], why, sizeof(why)))
			bad_usage("daemon '%.*s': %s", (int)len, p, why);
		ds[n].fd = -1;
		n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	*count = n;
	return ds;
}

/* ------------------------------------------------------------ one daemon */

static void close_fd(struct daemon *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static void fail(struct daemon *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct daemon *d, const char *fmt, ...)
{
	char msg[sizeof(d->err) - 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* "unreachable" only when no TCP connection ever came up: anything
	 * later is a daemon that answered, wrongly. */
	snprintf(d->err, sizeof(d->err), "%s: %s",
		 d->connected ? "error" : "unreachable", msg);
	d->state = DS_FAILED;
	close_fd(d);
}

/* Try the current address and, when it fails at once, the next ones. */
static void start_connect(struct daemon *d)
{
	int saved = 0;

	for (; d->ai_cur; d->ai_cur = d->ai_cur->ai_next) {
		struct addrinfo *ai = d->ai_cur;

		d->fd = socket(ai->ai_family,
			       ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			       ai->ai_protocol);
		if (d->fd < 0) {
			saved = errno;
			continue;
		}
		if (!connect(d->fd, ai->ai_addr, ai->ai_addrlen)) {
			d->state = DS_WELCOME;
			d->connected = true;
			return;
		}
		if (errno == EINPROGRESS) {
			d->state = DS_CONNECTING;
			return;
		}
		saved = errno;
		close_fd(d);
	}
	fail(d, "connect: %s", strerror(saved ? saved : ECONNREFUSED));
}

static void start(struct daemon *d)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	int rc;

	/* Name lookup blocks; with numeric addresses (the usual case) it is
	 * instant, and a slow resolver is the operator's to see. */
	rc = getaddrinfo(d->host, d->port, &hints, &d->ai_list);
	if (rc) {
		fail(d, "resolve %s: %s", d->host,
		     rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return;
	}
	d->ai_cur = d->ai_list;
	start_connect(d);
}

static void connected(struct daemon *d)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err) {
		close_fd(d);
		d->ai_cur = d->ai_cur->ai_next;
		if (d->ai_cur) {
			start_connect(d);
			return;
		}
		fail(d, "connect: %s", strerror(err));
		return;
	}
	d->state = DS_WELCOME;
	d->connected = true;
}

static int queue(struct daemon *d, Muon__Disc__Message *m)
{
	int rc;

	m->seq = ++d->tx_seq;
	rc = muoni_disc_pack(&d->out, m, have_key ? key : NULL, d->dnonce,
			     d->max_frame);
	if (rc) {
		fail(d, "encode: %s", lib_reason());
		muoni_err_clear();
	}
	return rc;
}

static void on_welcome(struct daemon *d, const Muon__Disc__Message *m,
		       const struct opts *o)
{
	const Muon__Disc__Welcome *w = m->welcome;
	Muon__Disc__Message hm = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Message lm = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Hello hello = MUON__DISC__HELLO__INIT;
	Muon__Disc__List list = MUON__DISC__LIST__INIT;
	char host_id[MUONI_DISC_HOST_ID_MAX + 1];
	static const Muon__Disc__List__What what[] = {
		[CMD_TOPICS] = MUON__DISC__LIST__WHAT__TOPICS,
		[CMD_PUBLICATIONS] = MUON__DISC__LIST__WHAT__PUBLICATIONS,
		[CMD_WATCHERS] = MUON__DISC__LIST__WHAT__WATCHERS,
		[CMD_HEALTH] = MUON__DISC__LIST__WHAT__HEALTH,
	};

	if (w->nonce.len != MUONI_DISC_NONCE_LEN) {
		fail(d, "Welcome with a nonce of %zu bytes", w->nonce.len);
		return;
	}
	memcpy(d->dnonce, w->nonce.data, sizeof(d->dnonce));
	d->auth_required = w->auth_required;
	/* Our requests are tiny; a nonsensical limit is not worth failing
	 * on, the daemon will say if it minds. */
	d->max_frame = w->max_frame >= MUONI_DISC_MAX_FRAME_MIN &&
				       w->max_frame <= MUONI_DISC_MAX_FRAME_MAX
			       ? w->max_frame
			       : MUONI_DISC_MAX_FRAME_DEFAULT;
	/* With a key we must authenticate the daemon, and a daemon without
	 * the secret cannot MAC its replies: say so now rather than report
	 * a missing MAC on the first reply. */
	if (have_key && !w->auth_required) {
		fail(d, "the daemon has no cluster secret, so it cannot prove "
		     "its answers (run without --secret-file/MUON_SECRET_FILE "
		     "to trust it anyway)");
		return;
	}
	muoni_disc_host_id(host_id, sizeof(host_id));
	hello.nonce.data = d->nonce;
	hello.nonce.len = sizeof(d->nonce);
	hello.ctx_id = 0;
	hello.name = (char *)PROG;
	hello.host_id = host_id;
	hello.pid = (uint32_t)getpid();
	hello.role = (char *)PROG;
	hm.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
	hm.hello = &hello;
	list.what = what[o->cmd];
	list.topic = (char *)(o->cmd == CMD_PUBLICATIONS ? o->topic : "");
	lm.request_id = LIST_REQUEST_ID;
	lm.kind_case = MUON__DISC__MESSAGE__KIND_LIST;
	lm.list = &list;
	if (queue(d, &hm) || queue(d, &lm))
		return;
	d->state = DS_REPLY;
}

static void keep_part(struct daemon *d, Muon__Disc__Message *m)
{
	if (d->n_parts == d->cap_parts) {
		size_t cap = d->cap_parts ? 2 * d->cap_parts : 8;
		void *p = realloc(d->parts, cap * sizeof(*d->parts));
		void *q;

		if (!p)
			oom();
		d->parts = p;
		q = realloc(d->msgs, cap * sizeof(*d->msgs));
		if (!q)
			oom();
		d->msgs = q;
		d->cap_parts = cap;
	}
	d->parts[d->n_parts] = m->list_reply;
	d->msgs[d->n_parts++] = m;
}

/*
 * A reply whose MAC did not verify: if it is an Error (the daemon refusing
 * our Hello cannot be expected to MAC correctly for a key it does not
 * share), its code and reason are what the operator needs. Shown, never
 * acted upon, and marked as unauthenticated.
 */
static bool unauthenticated_error(struct daemon *d, const uint8_t *f,
				  size_t len)
{
	Muon__Disc__Message *m = NULL;
	char *reason;
	int code;
	char err[8];

	if (muoni_disc_unpack(f, len, NULL, NULL, &m, &code, err, sizeof(err)))
		return false;
	if (m->kind_case != MUON__DISC__MESSAGE__KIND_ERROR) {
		muon__disc__message__free_unpacked(m, NULL);
		return false;
	}
	reason = clean(m->error->reason);
	fail(d, "daemon error %s: %s (reply not authenticated)",
	     muoni_disc_code_name((int)m->error->code), reason);
	free(reason);
	muon__disc__message__free_unpacked(m, NULL);
	return true;
}

/* One frame from the daemon. Returns false when the daemon is finished
 * with (done or failed). */
static bool on_frame(struct daemon *d, const uint8_t *f, size_t len,
		     const struct opts *o)
{
	Muon__Disc__Message *m = NULL;
	bool welcome = d->state == DS_WELCOME;
	char err[256];
	int code, rc;

	/* Welcome comes before any nonce of ours was sent: never MACed. */
	rc = muoni_disc_unpack(f, len, welcome || !have_key ? NULL : key,
			       d->nonce, &m, &code, err, sizeof(err));
	if (rc) {
		if (rc == MUON_EAUTH && unauthenticated_error(d, f, len))
			return false;
		fail(d, "bad message from the daemon (%s): %s",
		     muoni_disc_code_name(code), err);
		return false;
	}
	if (m->seq != d->rx_seq + 1) {
		fail(d, "message seq %" PRIu64 " where %" PRIu64 " was due",
		     m->seq, d->rx_seq + 1);
		goto free_msg;
	}
	d->rx_seq = m->seq;
	if (m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR) {
		char *reason = clean(m->error->reason);

		fail(d, "daemon error %s: %s%s",
		     muoni_disc_code_name((int)m->error->code), reason,
		     m->error->code == MUON__DISC__ERROR__CODE__AUTH &&
				     !have_key && d->auth_required
			     ? " (the daemon requires the cluster secret: "
			       "give --secret-file or MUON_SECRET_FILE)"
			     : "");
		free(reason);
		goto free_msg;
	}
	if (welcome) {
		if (m->kind_case != MUON__DISC__MESSAGE__KIND_WELCOME) {
			fail(d, "first message is of kind %d, not Welcome",
			     (int)m->kind_case);
			goto free_msg;
		}
		on_welcome(d, m, o);
		goto free_msg;
	}
	if (m->kind_case != MUON__DISC__MESSAGE__KIND_LIST_REPLY) {
		fail(d, "unexpected message of kind %d", (int)m->kind_case);
		goto free_msg;
	}
	if (m->request_id != LIST_REQUEST_ID) {
		fail(d, "ListReply for request %" PRIu64 ", not %u",
		     m->request_id, LIST_REQUEST_ID);
		goto free_msg;
	}
	keep_part(d, m);
	if (m->list_reply->last) {
		d->state = DS_DONE;
		close_fd(d);
		return false;
	}
	return true;
free_msg:
	muon__disc__message__free_unpacked(m, NULL);
	return d->state != DS_FAILED;
}

static void on_readable(struct daemon *d, const struct opts *o)
{
	const uint8_t *f;
	size_t len;
	ssize_t n;
	bool eof = false;
	int rc;

	for (;;) {
		if (muoni_disc_buf_reserve(&d->in, 65536))
			oom();
		n = recv(d->fd, d->in.data + d->in.len,
			 d->in.cap - d->in.len, 0);
		if (n > 0) {
			d->in.len += (size_t)n;
			d->rx_bytes += (size_t)n;
			if (d->rx_bytes > MAX_REPLY_BYTES) {
				fail(d, "more than %u MiB of reply",
				     MAX_REPLY_BYTES >> 20);
				return;
			}
			continue;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		/* An Error the daemon sent before resetting the connection
		 * is still worth reading: parse what arrived first. */
		eof = true;
		break;
	}
	/* Frames already received may explain a close (a fatal Error). */
	while (d->state != DS_FAILED && d->state != DS_DONE) {
		rc = muoni_disc_next(&d->in, MUONI_DISC_MAX_FRAME_MAX, &f,
				     &len);
		if (rc < 0) {
			fail(d, "bad frame from the daemon: %s",
			     lib_reason());
			muoni_err_clear();
			return;
		}
		if (!rc)
			break;
		if (!on_frame(d, f, len, o))
			return;
		muoni_disc_buf_consume(&d->in, MUONI_DISC_LEN_BYTES + len);
	}
	if (eof && d->state != DS_FAILED && d->state != DS_DONE)
		fail(d, "the daemon closed the connection%s",
		     muoni_disc_buf_used(&d->in) ? " in the middle of a frame"
						 : "");
}

static void on_writable(struct daemon *d)
{
	ssize_t n;

	while (muoni_disc_buf_used(&d->out)) {
		n = send(d->fd, d->out.data + d->out.off,
			 muoni_disc_buf_used(&d->out), MSG_NOSIGNAL);
		if (n > 0) {
			muoni_disc_buf_consume(&d->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* The daemon may have closed after a fatal Error: reading
		 * it tells more than EPIPE does. */
		d->out.off = d->out.len = 0;
		return;
	}
}

static bool active(const struct daemon *d)
{
	return d->state != DS_DONE && d->state != DS_FAILED;
}

static void query_all(struct daemon *ds, size_t n, const struct opts *o)
{
	struct pollfd *pfd = xcalloc(n, sizeof(*pfd));
	size_t *idx = xcalloc(n, sizeof(*idx));
	uint64_t deadline = now_ms() + o->timeout_ms;
	size_t i;

	for (i = 0; i < n; i++) {
		randombytes_buf(ds[i].nonce, sizeof(ds[i].nonce));
		start(&ds[i]);
	}
	for (;;) {
		size_t np = 0;
		uint64_t now = now_ms();
		int rc;

		for (i = 0; i < n; i++) {
			if (!active(&ds[i]))
				continue;
			pfd[np].fd = ds[i].fd;
			pfd[np].events = ds[i].state == DS_CONNECTING
						 ? POLLOUT
						 : POLLIN;
			if (ds[i].state != DS_CONNECTING &&
			    muoni_disc_buf_used(&ds[i].out))
				pfd[np].events |= POLLOUT;
			pfd[np].revents = 0;
			idx[np++] = i;
		}
		if (!np)
			break;
		if (now >= deadline) {
			for (i = 0; i < np; i++) {
				struct daemon *d = &ds[idx[i]];
				static const char *const waiting[] = {
					[DS_CONNECTING] = "to connect",
					[DS_WELCOME] = "for Welcome",
					[DS_REPLY] = "for the reply",
				};

				fail(d, "timed out after %u ms waiting %s",
				     o->timeout_ms, waiting[d->state]);
			}
			break;
		}
		rc = poll(pfd, np, (int)(deadline - now));
		if (rc < 0 && errno != EINTR) {
			for (i = 0; i < np; i++)
				fail(&ds[idx[i]], "poll: %s", strerror(errno));
			break;
		}
		for (i = 0; rc > 0 && i < np; i++) {
			struct daemon *d = &ds[idx[i]];
			short re = pfd[i].revents;

			if (!re)
				continue;
			if (d->state == DS_CONNECTING) {
				connected(d);
				continue;
			}
			if (re & POLLOUT)
				on_writable(d);
			if (re & (POLLIN | POLLHUP | POLLERR))
				on_readable(d, o);
			if (active(d) && muoni_disc_buf_used(&d->out))
				on_writable(d);
		}
	}
	free(idx);
	free(pfd);
}

static void daemon_fini(struct daemon *d)
{
	size_t i;

	close_fd(d);
	if (d->ai_list)
		freeaddrinfo(d->ai_list);
	d->ai_list = NULL;
	for (i = 0; i < d->n_parts; i++)
		muon__disc__message__free_unpacked(d->msgs[i], NULL);
	free(d->parts);
	free(d->msgs);
	muoni_disc_buf_fini(&d->in);
	muoni_disc_buf_fini(&d->out);
}

/* ------------------------------------------------------------ output */

/* Columns of text, aligned on output. A `span` row is a daemon that
 * failed: its second cell is a message running across the rest. */
struct table {
	size_t ncol;
	const char *const *head;
	const bool *right;
	struct row {
		char **cell;
		bool span;
	} *rows;
	size_t nrows, cap;
};

/* Width on screen: count UTF-8 lead bytes, not continuation bytes. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Append a row of ncol cells (strings this takes ownership of). */
static void table_add(struct table *t, char **cells, bool span)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		void *p = realloc(t->rows, cap * sizeof(*t->rows));

		if (!p)
			oom();
		t->rows = p;
		t->cap = cap;
	}
	t->rows[t->nrows].cell = xcalloc(t->ncol, sizeof(char *));
	memcpy(t->rows[t->nrows].cell, cells, t->ncol * sizeof(char *));
	t->rows[t->nrows++].span = span;
}

static void table_print(struct table *t)
{
	size_t *w = xcalloc(t->ncol, sizeof(*w));
	size_t r, c;

	for (c = 0; c < t->ncol; c++)
		w[c] = width(t->head[c]);
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < (t->rows[r].span ? 1 : t->ncol); c++)
			if (width(t->rows[r].cell[c]) > w[c])
				w[c] = width(t->rows[r].cell[c]);
	for (r = 0; r <= t->nrows; r++) {
		const char *const *cells = r ? (const char *const *)t->rows[r - 1].cell
					     : t->head;
		bool span = r && t->rows[r - 1].span;

		for (c = 0; c < t->ncol; c++) {
			const char *s = cells[c] ? cells[c] : "";
			size_t pad = w[c] - width(s);
			bool lastcol = c + 1 == t->ncol || (span && c == 1);

			if (c)
				fputs("  ", stdout);
			if (span && c == 1) {
				fputs(s, stdout);
				break;
			}
			if (t->right[c])
				printf("%*s%s", (int)pad, "", s);
			else if (lastcol)
				fputs(s, stdout);
			else
				printf("%s%*s", s, (int)pad, "");
		}
		putchar('\n');
	}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncol; c++)
			free(t->rows[r].cell[c]);
		free(t->rows[r].cell);
	}
	free(t->rows);
	free(w);
}

/*
 * A JSON string. Daemons send protobuf strings, which may hold any bytes:
 * control characters are escaped and bytes that are not valid UTF-8 become
 * U+FFFD, so the document always parses.
 */
static void json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	putchar('"');
	while (*p) {
		unsigned char c = *p;
		size_t n, i;
		uint32_t cp;

		if (c == '"' || c == '\\') {
			printf("\\%c", c);
			p++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			printf("\\u%04x", c);
			p++;
			continue;
		}
		if (c < 0x80) {
			putchar(c);
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			n = 0, cp = 0;
		for (i = 0; n && i < n; i++) {
			if ((p[1 + i] & 0xc0) != 0x80)
				break;
			cp = cp << 6 | (p[1 + i] & 0x3f);
		}
		/* Truncated, overlong, surrogate or beyond U+10FFFF. */
		if (!n || i < n || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff)) {
			fputs("\\ufffd", stdout);
			p++;
			continue;
		}
		fwrite(p, 1, n + 1, stdout);
		p += n + 1;
	}
	putchar('"');
}

static void json_key(const char *k, bool first)
{
	printf("%s\"%s\": ", first ? "" : ", ", k);
}

/* The per-daemon status every JSON document carries. */
static void json_daemons(const struct daemon *ds, size_t n)
{
	size_t i;

	fputs("  \"daemons\": [", stdout);
	for (i = 0; i < n; i++) {
		printf("%s\n    {", i ? "," : "");
		json_key("daemon", true);
		json_str(ds[i].addr);
		json_key("ok", false);
		fputs(ds[i].state == DS_DONE ? "true" : "false", stdout);
		if (ds[i].state != DS_DONE) {
			json_key("error", false);
			json_str(ds[i].err);
		}
		putchar('}');
	}
	fputs(n ? "\n  ],\n" : "],\n", stdout);
}

static void json_begin(const char *cmd, const struct daemon *ds, size_t n)
{
	printf("{\n  \"command\": ");
	json_str(cmd);
	fputs(",\n", stdout);
	json_daemons(ds, n);
}

/* ---- topics */

struct topic_row {
	const char *topic;
	uint32_t publications, watchers;
	size_t daemon;
};

static int topic_cmp(const void *a, const void *b)
{
	const struct topic_row *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);

	if (c)
		return c;
	return x->daemon < y->daemon ? -1 : x->daemon > y->daemon;
}

static void out_topics(const struct daemon *ds, size_t n, bool json)
{
	static const char *const head[] = { "TOPIC", "PUBLICATIONS",
					    "WATCHERS", "DAEMONS" };
	static const bool right[] = { false, true, true, true };
	struct table t = { .ncol = 4, .head = head, .right = right };
	struct topic_row *all = NULL;
	size_t cnt = 0, cap = 0, i, j, k, p, out = 0;

	for (i = 0; i < n; i++)
		for (p = 0; p < ds[i].n_parts; p++)
			for (k = 0; k < ds[i].parts[p]->n_topics; k++) {
				const Muon__Disc__TopicInfo *ti =
					ds[i].parts[p]->topics[k];

				if (cnt == cap) {
					cap = cap ? 2 * cap : 64;
					all = realloc(all, cap * sizeof(*all));
					if (!all)
						oom();
				}
				all[cnt++] = (struct topic_row){
					ti->topic, ti->publications,
					ti->watchers, i };
			}
	if (cnt)
		qsort(all, cnt, sizeof(*all), topic_cmp);
	if (json)
		json_begin("topics", ds, n), fputs("  \"topics\": [", stdout);
	/*
	 * Merge by topic. A publication is normally registered with every
	 * daemon, so the largest count any daemon has is the best figure
	 * without listing them all; every watch is its own connection to its
	 * own daemon, so watches add up.
	 */
	for (i = 0; i < cnt; i = j) {
		uint32_t pubs = 0;
		uint64_t watchers = 0;
		size_t daemons = 0, last = SIZE_MAX;

		for (j = i; j < cnt && !strcmp(all[j].topic, all[i].topic);
		     j++) {
			if (all[j].publications > pubs)
				pubs = all[j].publications;
			watchers += all[j].watchers;
			if (all[j].daemon != last)
				daemons++, last = all[j].daemon;
		}
		if (json) {
			printf("%s\n    {", out++ ? "," : "");
			json_key("topic", true);
			json_str(all[i].topic);
			printf(", \"publications\": %" PRIu32
			       ", \"watchers\": %" PRIu64
			       ", \"daemons\": %zu}",
			       pubs, watchers, daemons);
		} else {
			char *cells[] = { clean(all[i].topic),
					  xasprintf("%" PRIu32, pubs),
					  xasprintf("%" PRIu64, watchers),
					  xasprintf("%zu", daemons) };

			table_add(&t, cells, false);
		}
	}
	if (json)
		fputs(out ? "\n  ]\n}\n" : "]\n}\n", stdout);
	else
		table_print(&t);
	free(all);
}

/* ---- publications */

struct pub_row {
	const Muon__Disc__Publication *p;
	size_t daemon;
	uint32_t daemons, lease;
};

static int pub_key_cmp(const void *a, const void *b)
{
	const struct pub_row *x = a, *y = b;

	if (x->p->ctx_id != y->p->ctx_id)
		return x->p->ctx_id < y->p->ctx_id ? -1 : 1;
	if (x->p->stream_id != y->p->stream_id)
		return x->p->stream_id < y->p->stream_id ? -1 : 1;
	return x->daemon < y->daemon ? -1 : x->daemon > y->daemon;
}

static bool same_key(const Muon__Disc__Publication *a,
		     const Muon__Disc__Publication *b)
{
	return a->ctx_id == b->ctx_id && a->stream_id == b->stream_id;
}

static int pub_show_cmp(const void *a, const void *b)
{
	const struct pub_row *x = a, *y = b;
	int c = strcmp(x->p->topic, y->p->topic);

	return c ? c : pub_key_cmp(a, b);
}

static char *join_endpoints(const Muon__Disc__Publication *p)
{
	size_t i, len = 1;
	char *s, *q;

	for (i = 0; i < p->n_endpoints; i++)
		len += strlen(p->endpoints[i]) + 1;
	s = q = xcalloc(len, 1);
	for (i = 0; i < p->n_endpoints; i++)
		q += sprintf(q, "%s%s", i ? "," : "", p->endpoints[i]);
	q = clean(s);
	free(s);
	return q;
}

static void out_publications(const struct daemon *ds, size_t n, bool json,
			     const char *topic)
{
	static const char *const head[] = { "TOPIC",  "CTX_ID",   "STREAM",
					    "CONTEXT", "HOST",     "LEASE_MS",
					    "DAEMONS", "ENDPOINTS" };
	static const bool right[] = { false, false, true,  false,
				      false, true,  true, false };
	struct table t = { .ncol = 8, .head = head, .right = right };
	struct pub_row *all = NULL;
	size_t cnt = 0, cap = 0, i, j, k, p, m = 0;

	for (i = 0; i < n; i++)
		for (p = 0; p < ds[i].n_parts; p++)
			for (k = 0; k < ds[i].parts[p]->n_publications; k++) {
				if (cnt == cap) {
					cap = cap ? 2 * cap : 64;
					all = realloc(all, cap * sizeof(*all));
					if (!all)
						oom();
				}
				all[cnt++] = (struct pub_row){
					ds[i].parts[p]->publications[k], i, 0,
					0 };
			}
	if (cnt)
		qsort(all, cnt, sizeof(*all), pub_key_cmp);
	/* Collapse each (ctx_id, stream_id) onto its first daemon's row (the
	 * order of LIST); the lease shown is the longest any daemon has. */
	for (i = 0; i < cnt; i = j) {
		uint32_t daemons = 0, lease = 0;
		size_t last = SIZE_MAX;

		for (j = i; j < cnt && same_key(all[j].p, all[i].p); j++) {
			if (all[j].daemon != last)
				daemons++, last = all[j].daemon;
			if (all[j].p->lease_left_ms > lease)
				lease = all[j].p->lease_left_ms;
		}
		all[m] = all[i];
		all[m].daemons = daemons;
		all[m++].lease = lease;
	}
	if (m)
		qsort(all, m, sizeof(*all), pub_show_cmp);
	if (json) {
		json_begin("publications", ds, n);
		fputs("  \"topic\": ", stdout);
		json_str(topic);
		fputs(",\n  \"publications\": [", stdout);
	}
	for (i = 0; i < m; i++) {
		const Muon__Disc__Publication *pb = all[i].p;

		if (json) {
			printf("%s\n    {", i ? "," : "");
			json_key("topic", true);
			json_str(pb->topic);
			printf(", \"ctx_id\": \"%016" PRIx64 "\""
			       ", \"stream_id\": %" PRIu32,
			       pb->ctx_id, pb->stream_id);
			json_key("ctx_name", false);
			json_str(pb->ctx_name);
			json_key("host_id", false);
			json_str(pb->host_id);
			json_key("endpoints", false);
			putchar('[');
			for (k = 0; k < pb->n_endpoints; k++) {
				if (k)
					fputs(", ", stdout);
				json_str(pb->endpoints[k]);
			}
			printf("], \"lease_left_ms\": %" PRIu32
			       ", \"daemons\": %" PRIu32 "}",
			       all[i].lease, all[i].daemons);
		} else {
			char *cells[] = {
				clean(pb->topic),
				xasprintf("%016" PRIx64, pb->ctx_id),
				xasprintf("%" PRIu32, pb->stream_id),
				clean(pb->ctx_name),
				clean(pb->host_id),
				xasprintf("%" PRIu32, all[i].lease),
				xasprintf("%" PRIu32, all[i].daemons),
				join_endpoints(pb),
			};

			table_add(&t, cells, false);
		}
	}
	if (json)
		fputs(m ? "\n  ]\n}\n" : "]\n}\n", stdout);
	else
		table_print(&t);
	free(all);
}

/* ---- watchers */

struct watch_row {
	const Muon__Disc__WatcherInfo *w;
	size_t daemon;
};

static int watch_cmp(const void *a, const void *b)
{
	const struct watch_row *x = a, *y = b;
	int c;

	if (x->daemon != y->daemon)
		return x->daemon < y->daemon ? -1 : 1;
	c = strcmp(x->w->topic, y->w->topic);
	return c ? c : strcmp(x->w->client, y->w->client);
}

static void out_watchers(const struct daemon *ds, size_t n, bool json)
{
	static const char *const head[] = { "DAEMON", "TOPIC", "MATCH",
					    "UPDATES", "CLIENT" };
	static const bool right[] = { false, false, false, true, false };
	struct table t = { .ncol = 5, .head = head, .right = right };
	struct watch_row *all = NULL;
	size_t cnt = 0, cap = 0, i, k, p;

	for (i = 0; i < n; i++)
		for (p = 0; p < ds[i].n_parts; p++)
			for (k = 0; k < ds[i].parts[p]->n_watchers; k++) {
				if (cnt == cap) {
					cap = cap ? 2 * cap : 64;
					all = realloc(all, cap * sizeof(*all));
					if (!all)
						oom();
				}
				all[cnt++] = (struct watch_row){
					ds[i].parts[p]->watchers[k], i };
			}
	if (cnt)
		qsort(all, cnt, sizeof(*all), watch_cmp);
	if (json)
		json_begin("watchers", ds, n), fputs("  \"watchers\": [", stdout);
	for (i = 0; i < cnt; i++) {
		const Muon__Disc__WatcherInfo *w = all[i].w;

		if (json) {
			printf("%s\n    {", i ? "," : "");
			json_key("daemon", true);
			json_str(ds[all[i].daemon].addr);
			json_key("client", false);
			json_str(w->client);
			json_key("topic", false);
			json_str(w->topic);
			printf(", \"prefix\": %s, \"updates_sent\": %" PRIu64
			       "}",
			       w->prefix ? "true" : "false", w->updates_sent);
		} else {
			char *cells[] = {
				clean(ds[all[i].daemon].addr),
				/* An all-topics watch has an empty prefix,
				 * which would vanish from the table. */
				w->prefix && !w->topic[0] ? xasprintf("*")
							  : clean(w->topic),
				xasprintf(w->prefix ? "prefix" : "exact"),
				xasprintf("%" PRIu64, w->updates_sent),
				clean(w->client),
			};

			table_add(&t, cells, false);
		}
	}
	if (json)
		fputs(cnt ? "\n  ]\n}\n" : "]\n}\n", stdout);
	else
		table_print(&t);
	free(all);
}

/* ---- health */

static const Muon__Disc__Health *health_of(const struct daemon *d)
{
	size_t p;

	for (p = 0; p < d->n_parts; p++)
		if (d->parts[p]->health)
			return d->parts[p]->health;
	return NULL;
}

static char *uptime(uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		return xasprintf("%" PRIu64 ".%" PRIu64 "s", s,
				 ms % 1000 / 100);
	if (s < 3600)
		return xasprintf("%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	if (s < 86400)
		return xasprintf("%" PRIu64 "h%02" PRIu64 "m", s / 3600,
				 s % 3600 / 60);
	return xasprintf("%" PRIu64 "d%02" PRIu64 "h", s / 86400,
			 s % 86400 / 3600);
}

static void out_health(const struct daemon *ds, size_t n, bool json)
{
	static const char *const head[] = {
		"DAEMON",   "NAME",    "ID",      "VERSION",  "UPTIME",
		"CLIENTS",  "SESSIONS", "PUBS",   "TOPICS",   "WATCHES",
		"LEASE_MS", "UPDATES", "EXPIRED", "AUTH_FAIL", "PROTO_ERR",
		"DROPPED",
	};
	static const bool right[] = { false, false, false, false, true, true,
				      true,  true,  true,  true,  true, true,
				      true,  true,  true,  true };
	struct table t = { .ncol = 16, .head = head, .right = right };
	size_t i;

	if (json)
		printf("{\n  \"command\": \"health\",\n  \"health\": [");
	for (i = 0; i < n; i++) {
		const Muon__Disc__Health *h =
			ds[i].state == DS_DONE ? health_of(&ds[i]) : NULL;

		if (json) {
			printf("%s\n    {", i ? "," : "");
			json_key("daemon", true);
			json_str(ds[i].addr);
			printf(", \"ok\": %s", h ? "true" : "false");
			if (!h) {
				json_key("error", false);
				json_str(ds[i].state == DS_DONE
						 ? "error: reply without health"
						 : ds[i].err);
				putchar('}');
				continue;
			}
			printf(", \"daemon_id\": \"%016" PRIx64 "\"",
			       h->daemon_id);
			json_key("daemon_name", false);
			json_str(h->daemon_name);
			json_key("version", false);
			json_str(h->version);
			printf(", \"uptime_ms\": %" PRIu64
			       ", \"clients\": %" PRIu32
			       ", \"sessions\": %" PRIu32
			       ", \"publications\": %" PRIu32
			       ", \"topics\": %" PRIu32
			       ", \"watches\": %" PRIu32
			       ", \"lease_ms\": %" PRIu32
			       ", \"updates_sent\": %" PRIu64
			       ", \"leases_expired\": %" PRIu64
			       ", \"auth_failures\": %" PRIu64
			       ", \"protocol_errors\": %" PRIu64
			       ", \"clients_dropped\": %" PRIu64 "}",
			       h->uptime_ms, h->clients, h->sessions,
			       h->publications, h->topics, h->watches,
			       h->lease_ms, h->updates_sent,
			       h->leases_expired, h->auth_failures,
			       h->protocol_errors, h->clients_dropped);
		} else if (!h) {
			char *cells[16] = {
				clean(ds[i].addr),
				ds[i].state == DS_DONE
					? xasprintf("error: reply without "
						    "health")
					: clean(ds[i].err),
			};

			table_add(&t, cells, true);
		} else {
			char *cells[] = {
				clean(ds[i].addr),
				clean(h->daemon_name),
				xasprintf("%016" PRIx64, h->daemon_id),
				clean(h->version),
				uptime(h->uptime_ms),
				xasprintf("%" PRIu32, h->clients),
				xasprintf("%" PRIu32, h->sessions),
				xasprintf("%" PRIu32, h->publications),
				xasprintf("%" PRIu32, h->topics),
				xasprintf("%" PRIu32, h->watches),
				xasprintf("%" PRIu32, h->lease_ms),
				xasprintf("%" PRIu64, h->updates_sent),
				xasprintf("%" PRIu64, h->leases_expired),
				xasprintf("%" PRIu64, h->auth_failures),
				xasprintf("%" PRIu64, h->protocol_errors),
				xasprintf("%" PRIu64, h->clients_dropped),
			};

			table_add(&t, cells, false);
		}
	}
	if (json)
		fputs(n ? "\n  ]\n}\n" : "]\n}\n", stdout);
	else
		table_print(&t);
}

/* ------------------------------------------------------------ main */

static uint32_t parse_timeout(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	/* strtoull would quietly wrap "-1". */
	if (*s < '0' || *s > '9')
		bad_usage("--timeout-ms: '%s' is not a number", s);
	v = strtoull(s, &end, 10);
	if (errno || *end)
		bad_usage("--timeout-ms: '%s' is not a number", s);
	if (v < 1 || v > MAX_TIMEOUT_MS)
		bad_usage("--timeout-ms: must be 1..%u", MAX_TIMEOUT_MS);
	return (uint32_t)v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "daemon", required_argument, NULL, 'd' },
		{ "secret-file", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env;
	char err[128];
	int c;

	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	o->topic = "";
	/* '+': options end at the command, so a topic may start with '-'. */
	while ((c = getopt_long(argc, argv, "+d:s:jt:hV", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd':
			o->daemons = optarg;
			break;
		case 's':
			o->secret_file = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 't':
			o->timeout_ms = parse_timeout(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(PROG " %s (discovery protocol %u)\n",
			       CTL_VERSION, MUONI_DISC_VERSION);
			exit(0);
		default:
			fputs("Try '" PROG " --help' for more information.\n",
			      stderr);
			exit(EXIT_USAGE);
		}
	}
	if (optind >= argc)
		bad_usage("no command (topics, publications, watchers, "
			  "health)");
	if (!strcmp(argv[optind], "topics"))
		o->cmd = CMD_TOPICS;
	else if (!strcmp(argv[optind], "publications"))
		o->cmd = CMD_PUBLICATIONS;
	else if (!strcmp(argv[optind], "watchers"))
		o->cmd = CMD_WATCHERS;
	else if (!strcmp(argv[optind], "health"))
		o->cmd = CMD_HEALTH;
	else
		bad_usage("unknown command '%s'", argv[optind]);
	optind++;
	if (o->cmd == CMD_PUBLICATIONS && optind < argc) {
		o->topic = argv[optind++];
		if (muoni_disc_topic_check(o->topic, true, err, sizeof(err)))
			bad_usage("%s", err);
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (!o->daemons) {
		env = getenv("MUON_DISCOVERY");
		o->daemons = env && *env ? env : DEFAULT_DAEMON;
	}
	if (!o->secret_file) {
		env = getenv("MUON_SECRET_FILE");
		if (env && *env)
			o->secret_file = env;
	}
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct daemon *ds;
	size_t n, i;
	int status = 0;

	parse_args(argc, argv, &o);
	ds = parse_daemons(o.daemons, &n);
	if (sodium_init() < 0) {
		fputs(PROG ": libsodium failed to initialise\n", stderr);
		free(ds);
		return EXIT_SOME_FAILED;
	}
	if (o.secret_file) {
		if (muoni_secret_load(o.secret_file, key)) {
			fprintf(stderr, PROG ": %s\n", lib_reason());
			free(ds);
			return EXIT_SOME_FAILED;
		}
		have_key = true;
	}
	/* A daemon that closes while we write must not kill us (send() has
	 * MSG_NOSIGNAL; this also covers stdout into a closed pipe). */
	signal(SIGPIPE, SIG_IGN);
	query_all(ds, n, &o);
	for (i = 0; i < n; i++)
		if (ds[i].state != DS_DONE) {
			fprintf(stderr, PROG ": %s: %s\n", ds[i].addr,
				ds[i].err);
			status = EXIT_SOME_FAILED;
		}
	switch (o.cmd) {
	case CMD_TOPICS:
		out_topics(ds, n, o.json);
		break;
	case CMD_PUBLICATIONS:
		out_publications(ds, n, o.json, o.topic);
		break;
	case CMD_WATCHERS:
		out_watchers(ds, n, o.json);
		break;
	case CMD_HEALTH:
		out_health(ds, n, o.json);
		for (i = 0; i < n; i++)
			if (ds[i].state == DS_DONE && !health_of(&ds[i])) {
				fprintf(stderr, PROG ": %s: error: reply "
					"without health\n", ds[i].addr);
				status = EXIT_SOME_FAILED;
			}
		break;
	}
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, PROG ": writing output: %s\n",
			strerror(errno));
		status = EXIT_SOME_FAILED;
	}
	for (i = 0; i < n; i++)
		daemon_fini(&ds[i]);
	free(ds);
	sodium_memzero(key, sizeof(key));
	return status;
}
