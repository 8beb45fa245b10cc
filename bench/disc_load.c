/*
 * muon-disc-load: fan-out latency of muond under a realistic population.
 *
 *   muon-disc-load (--daemon ADDR | --muond PATH) [OPTION]...
 *
 * S sessions register P publications spread over T topics, W watcher
 * connections each watch one topic or a prefix, then C changes (a new
 * publication, or one withdrawn) are made one at a time. For each change
 * the time from sending the request to the moment the last watcher that
 * should hear of it has its Update is measured, as well as every single
 * delivery. All client sockets live in one epoll loop in one thread, so
 * the tool costs little next to the daemon; its own receive path is part
 * of what is measured, and the output says so.
 *
 * Exit status: 0 when every expected Update arrived, 1 when some did not
 * (or the daemon answered with an Error), 2 on a usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/muoni.h"
#include "proto/disc.h"

#define PROG "muon-disc-load"
#define EXIT_MISSED 1
#define EXIT_SETUP 2
/* Publications per Register while populating: well inside 64 KiB. */
#define REG_BATCH 200u
#define CHANGE_TIMEOUT_US 5000000u
#define PHASE_TIMEOUT_US 60000000u
#define TOPIC_FMT "load/t%0*u"
/* Request ids of keepalives and Health queries, told apart from the
 * requests being timed. */
#define RENEW_REQ (1ull << 63)
#define HEALTH_REQ (1ull << 62)

typedef Muon__Disc__Message Msg;

enum role { ROLE_SESSION, ROLE_WATCHER };

struct conn {
	int fd;
	enum role role;
	unsigned idx;
	bool welcomed, hello_sent, out_armed;
	struct muoni_disc_buf in, out;
	uint8_t nonce[MUONI_DISC_NONCE_LEN];
	uint8_t dnonce[MUONI_DISC_NONCE_LEN];
	uint64_t tx_seq, rx_seq, next_req;
	uint64_t ctx_id;
	uint64_t next_renew_us;
	unsigned answers_due; /* Register/Watch answers still awaited */
	/* Sessions: the next stream id to use. */
	uint32_t next_stream;
	/* Watchers: what is watched and what its Snapshot held. */
	char topic[64];
	bool prefix, snap_done;
	uint32_t snap_pubs;
	int64_t last_change; /* the last change this watcher heard of */
};

/* A live publication, for picking one to withdraw. */
struct live {
	unsigned sess;
	uint32_t stream;
	unsigned topic;
};

/* Growable array of microsecond figures. */
struct samples {
	uint32_t *v;
	size_t n, cap;
};

static struct {
	const char *daemon, *muond, *secret;
	unsigned pubs, sessions, topics, watchers, changes;
	unsigned prefix_pct, root_watchers, hot_watchers;
	unsigned target_us;
	unsigned seed;
	int pid; /* daemon to read /proc of, with --daemon */
} opt = {
	.pubs = 10000, .sessions = 100, .topics = 1000, .watchers = 1000,
	.changes = 1000, .prefix_pct = 20, .target_us = 10000, .seed = 1,
	.pid = -1,
};

static uint8_t key[32];
static bool have_key;
static int ep = -1;
static struct conn *conns;
static unsigned n_conns;
static uint32_t lease_ms = 5000, max_frame = MUONI_DISC_MAX_FRAME_DEFAULT;
static int width; /* digits of topic numbers */
static char host_id[MUONI_DISC_HOST_ID_MAX + 1];
static pid_t child = -1;
static int daemon_pid = -1;

static struct live *live;
static size_t n_live, cap_live;
static unsigned *topic_pubs;     /* live publications per topic */
static unsigned **topic_watch;   /* watcher indexes per topic */
static unsigned *n_topic_watch;

/* The change in flight. */
static struct {
	int64_t idx;
	uint64_t ctx_id;
	uint32_t stream;
	Muon__Disc__Update__Kind kind;
	uint64_t req;
	unsigned sess;
	uint64_t t_send, t_ok, t_last;
	unsigned expected, received;
	bool answered;
} cur = { .idx = -1 };

static uint64_t n_errors, n_stray, n_dup;
static struct {
	bool got;
	uint64_t updates_sent, leases_expired, clients_dropped;
	uint32_t publications, watches, clients;
} health;
static struct samples lat_deliver;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						      noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (child > 0) {
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	exit(EXIT_SETUP);
}

/* A fixed sequence, so that two runs make the same changes. */
static uint64_t rnd_state;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rnd_state >> 33);
}

static void samples_add(struct samples *s, uint64_t us)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint32_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			die("out of memory");
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t pct(const struct samples *s, double p)
{
	size_t i;

	if (!s->n)
		return 0;
	i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return s->v[i < s->n ? i : s->n - 1];
}

static void samples_print(const char *what, struct samples *s)
{
	qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
	printf("%-34s n=%-7zu p50 %6" PRIu32 "  p90 %6" PRIu32 "  p99 %6"
	       PRIu32 "  p99.9 %6" PRIu32 "  max %6" PRIu32 "\n", what, s->n,
	       pct(s, 0.5), pct(s, 0.9), pct(s, 0.99), pct(s, 0.999),
	       pct(s, 1.0));
}

/* ------------------------------------------------------------ /proc */

static unsigned long proc_rss_kb(int pid)
{
	char path[64], line[256];
	unsigned long kb = 0;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* User + system CPU of `pid` in microseconds; 0 when unreadable. */
static uint64_t proc_cpu_us(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The command name may hold spaces: fields count from its ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%llu %llu", &ut, &st) != 2 || hz <= 0)
		return 0;
	return (ut + st) * 1000000ull / (unsigned long long)hz;
}

/* ------------------------------------------------------------ sending */

static void conn_flush(struct conn *c)
{
	while (muoni_disc_buf_used(&c->out)) {
		ssize_t n = send(c->fd, c->out.data + c->out.off,
				 muoni_disc_buf_used(&c->out), MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			die("connection %u: send: %s", c->idx, strerror(errno));
		muoni_disc_buf_consume(&c->out, (size_t)n);
	}
	bool want = muoni_disc_buf_used(&c->out) != 0;

	if (want != c->out_armed) {
		struct epoll_event ev = {
			.events = EPOLLIN | (want ? EPOLLOUT : 0),
			.data.u32 = c->idx,
		};

		if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev))
			die("epoll_ctl: %s", strerror(errno));
		c->out_armed = want;
	}
}

/* Queue `m` (numbered, MACed when we hold the secret) and send it. */
static uint64_t conn_send(struct conn *c, Msg *m)
{
	m->seq = ++c->tx_seq;
	if (!m->request_id && m->kind_case != MUON__DISC__MESSAGE__KIND_HELLO)
		m->request_id = c->next_req++;
	if (muoni_disc_pack(&c->out, m, have_key ? key : NULL, c->dnonce,
			    max_frame))
		die("connection %u: %s", c->idx, muoni_err_msg());
	conn_flush(c);
	return m->request_id;
}

static void send_hello(struct conn *c)
{
	Muon__Disc__Hello h = MUON__DISC__HELLO__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	char name[32];

	snprintf(name, sizeof(name), "%s%u",
		 c->role == ROLE_SESSION ? "load-s" : "load-w", c->idx);
	randombytes_buf(c->nonce, sizeof(c->nonce));
	h.nonce.data = c->nonce;
	h.nonce.len = sizeof(c->nonce);
	h.ctx_id = c->ctx_id;
	h.name = name;
	h.host_id = host_id;
	h.pid = (uint32_t)getpid();
	h.role = (char *)"load";
	m.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
	m.hello = &h;
	conn_send(c, &m);
	c->hello_sent = true;
}

static void send_renew(struct conn *c)
{
	Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
	m.renew = &r;
	m.request_id = RENEW_REQ | c->next_req++;
	conn_send(c, &m);
}

static void topic_name(unsigned t, char *out, size_t n)
{
	snprintf(out, n, TOPIC_FMT, width, t);
}

static char endpoint_buf[64];

static const char *endpoint_of(unsigned sess, uint32_t stream)
{
	snprintf(endpoint_buf, sizeof(endpoint_buf), "tcp://10.%u.%u.%u:%u",
		 (sess >> 8) & 255, sess & 255, stream & 255,
		 7000 + (stream >> 8) % 50000);
	return endpoint_buf;
}

/* One Register of `n` publications (`topics` and `streams`). */
static uint64_t send_register(struct conn *c, const unsigned *topics,
			      const uint32_t *streams, size_t n)
{
	Muon__Disc__Publication *pubs = calloc(n, sizeof(*pubs));
	Muon__Disc__Publication **pp = calloc(n, sizeof(*pp));
	char (*names)[64] = calloc(n, sizeof(*names));
	char (*eps)[64] = calloc(n, sizeof(*eps));
	char **epp = calloc(n, sizeof(*epp));
	Muon__Disc__Register r = MUON__DISC__REGISTER__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	uint64_t req;
	size_t i;

	if (!pubs || !pp || !names || !eps || !epp)
		die("out of memory");
	for (i = 0; i < n; i++) {
		muon__disc__publication__init(&pubs[i]);
		topic_name(topics[i], names[i], sizeof(names[i]));
		snprintf(eps[i], sizeof(eps[i]), "%s",
			 endpoint_of(c->idx, streams[i]));
		epp[i] = eps[i];
		pubs[i].topic = names[i];
		pubs[i].stream_id = streams[i];
		pubs[i].endpoints = &epp[i];
		pubs[i].n_endpoints = 1;
		pp[i] = &pubs[i];
	}
	r.publications = pp;
	r.n_publications = n;
	m.kind_case = MUON__DISC__MESSAGE__KIND_REGISTER;
	m.register_ = &r;
	req = conn_send(c, &m);
	free(epp);
	free(eps);
	free(names);
	free(pp);
	free(pubs);
	return req;
}

static uint64_t send_unregister(struct conn *c, uint32_t stream)
{
	Muon__Disc__Unregister u = MUON__DISC__UNREGISTER__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	u.stream_ids = &stream;
	u.n_stream_ids = 1;
	m.kind_case = MUON__DISC__MESSAGE__KIND_UNREGISTER;
	m.unregister = &u;
	return conn_send(c, &m);
}

static void send_watch(struct conn *c)
{
	Muon__Disc__Watch w = MUON__DISC__WATCH__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	w.watch_id = 1;
	w.topic = c->topic;
	w.prefix = c->prefix;
	m.kind_case = MUON__DISC__MESSAGE__KIND_WATCH;
	m.watch = &w;
	conn_send(c, &m);
	c->answers_due++;
}

/* ------------------------------------------------------------ receiving */

static unsigned n_welcomed, n_snapshots;

static void on_update(struct conn *c, const Muon__Disc__Update *u,
		      uint64_t t_recv)
{
	const Muon__Disc__Publication *p = u->publication;

	if (c->role != ROLE_WATCHER || !p || cur.idx < 0 ||
	    p->ctx_id != cur.ctx_id || p->stream_id != cur.stream ||
	    u->kind != cur.kind) {
		n_stray++;
		return;
	}
	if (c->last_change == cur.idx) {
		n_dup++;
		return;
	}
	c->last_change = cur.idx;
	cur.received++;
	cur.t_last = t_recv;
	samples_add(&lat_deliver, t_recv - cur.t_send);
}

static void on_message(struct conn *c, Msg *m, uint64_t t_recv)
{
	if (m->seq != c->rx_seq + 1)
		die("connection %u: daemon message seq %" PRIu64 ", expected %"
		    PRIu64, c->idx, m->seq, c->rx_seq + 1);
	c->rx_seq = m->seq;
	switch (m->kind_case) {
	case MUON__DISC__MESSAGE__KIND_WELCOME:
		memcpy(c->dnonce, m->welcome->nonce.data,
		       m->welcome->nonce.len < sizeof(c->dnonce)
			       ? m->welcome->nonce.len : sizeof(c->dnonce));
		if (m->welcome->auth_required && !have_key)
			die("the daemon requires a secret: --secret-file");
		lease_ms = m->welcome->lease_ms ? m->welcome->lease_ms : 5000;
		max_frame = m->welcome->max_frame;
		c->welcomed = true;
		n_welcomed++;
		send_hello(c);
		/* Stagger keepalives over the period. */
		c->next_renew_us = now_us() + (uint64_t)lease_ms * 1000u / 3u *
					      (c->idx + 1) / (n_conns + 1);
		break;
	case MUON__DISC__MESSAGE__KIND_UPDATE:
		on_update(c, m->update, t_recv);
		break;
	case MUON__DISC__MESSAGE__KIND_SNAPSHOT:
		c->snap_pubs += (uint32_t)m->snapshot->n_publications;
		if (m->snapshot->last) {
			c->snap_done = true;
			c->answers_due--;
			n_snapshots++;
		}
		break;
	case MUON__DISC__MESSAGE__KIND_OK:
		if (cur.req && m->request_id == cur.req &&
		    c->idx == cur.sess) {
			cur.answered = true;
			cur.t_ok = t_recv;
		} else if (c->answers_due && !(m->request_id & RENEW_REQ)) {
			c->answers_due--;
		}
		break;
	case MUON__DISC__MESSAGE__KIND_LIST_REPLY:
		if (m->request_id & HEALTH_REQ && m->list_reply->health) {
			const Muon__Disc__Health *h = m->list_reply->health;

			health.updates_sent = h->updates_sent;
			health.leases_expired = h->leases_expired;
			health.clients_dropped = h->clients_dropped;
			health.publications = h->publications;
			health.watches = h->watches;
			health.clients = h->clients;
			health.got = true;
		}
		break;
	case MUON__DISC__MESSAGE__KIND_ERROR:
		if (n_errors++ < 10)
			fprintf(stderr, PROG ": connection %u: Error %s%s: %s\n",
				c->idx, muoni_disc_code_name(m->error->code),
				m->error->fatal ? " (fatal)" : "",
				m->error->reason);
		if (m->error->fatal)
			die("the daemon closed connection %u", c->idx);
		if (c->answers_due)
			c->answers_due--;
		break;
	default:
		break;
	}
}

/* One recv per wake-up: level-triggered epoll comes back for the rest,
 * and a watcher with a big Snapshot does not hold up the others. */
static void conn_read(struct conn *c)
{
	uint64_t t;
	ssize_t n;

	if (muoni_disc_buf_reserve(&c->in, 65536))
		die("out of memory");
	n = recv(c->fd, c->in.data + c->in.len, 65536, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return;
	if (n <= 0)
		die("connection %u closed by the daemon%s%s", c->idx,
		    n ? ": " : "", n ? strerror(errno) : "");
	t = now_us();
	c->in.len += (size_t)n;
	for (;;) {
		const uint8_t *f;
		size_t len;
		Msg *m = NULL;
		char err[200];
		int code, rc;

		rc = muoni_disc_next(&c->in, MUONI_DISC_MAX_FRAME_MAX, &f,
				     &len);
		if (rc < 0)
			die("connection %u: %s", c->idx, muoni_err_msg());
		if (!rc)
			break;
		/* Daemon messages are MACed with our Hello nonce once it
		 * has it; the Welcome is not. */
		rc = muoni_disc_unpack(f, len,
				       have_key && c->hello_sent && c->welcomed
					       ? key : NULL,
				       c->nonce, &m, &code, err, sizeof(err));
		if (rc)
			die("connection %u: undecodable message: %s", c->idx,
			    err);
		muoni_disc_buf_consume(&c->in, MUONI_DISC_LEN_BYTES + len);
		on_message(c, m, t);
		muon__disc__message__free_unpacked(m, NULL);
	}
}

/* Keepalives: sessions renew their lease, watchers stay inside the idle
 * timeout. */
static void renew_due(uint64_t now)
{
	unsigned i;

	for (i = 0; i < n_conns; i++) {
		struct conn *c = &conns[i];

		if (!c->welcomed || now < c->next_renew_us)
			continue;
		send_renew(c);
		c->next_renew_us = now + (uint64_t)lease_ms * 1000u / 3u;
	}
}

/* Run the loop until `done()` holds or `timeout_us` passes. */
static bool run_until(bool (*done)(void), uint64_t timeout_us)
{
	struct epoll_event evs[256];
	uint64_t end = now_us() + timeout_us, last_renew = 0;

	while (!done()) {
		uint64_t now = now_us();
		int n, i;

		if (now >= end)
			return false;
		/* The renew scan is O(connections): not on every wake. */
		if (now - last_renew > 100000) {
			renew_due(now);
			last_renew = now;
		}
		n = epoll_wait(ep, evs, 256, 10);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			struct conn *c = &conns[evs[i].data.u32];

			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				conn_read(c);
			if (evs[i].events & EPOLLOUT)
				conn_flush(c);
		}
	}
	return true;
}

static bool all_welcomed(void)
{
	return n_welcomed == n_conns;
}

static bool all_answered(void)
{
	unsigned i;

	for (i = 0; i < n_conns; i++)
		if (conns[i].answers_due)
			return false;
	return true;
}

static bool health_done(void)
{
	return health.got;
}

/* The daemon's own counters, asked through the first session. */
static void query_health(void)
{
	Muon__Disc__List l = MUON__DISC__LIST__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	struct conn *c = &conns[0];

	health.got = false;
	l.what = MUON__DISC__LIST__WHAT__HEALTH;
	m.kind_case = MUON__DISC__MESSAGE__KIND_LIST;
	m.list = &l;
	m.request_id = HEALTH_REQ | c->next_req++;
	conn_send(c, &m);
	if (!run_until(health_done, PHASE_TIMEOUT_US))
		die("no answer to List HEALTH");
}

static bool change_done(void)
{
	return cur.answered && cur.received >= cur.expected;
}

/* ------------------------------------------------------------ setup */

static void connect_all(const char *addr)
{
	struct muoni_endpoint *eps = NULL;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char host[256], port[16];
	unsigned n = 0, i;
	int one = 1;

	if (muoni_disc_daemons_parse(addr, &eps, &n) || n != 1)
		die("--daemon %s: %s", addr, n ? "one daemon only"
						 : muoni_err_msg());
	snprintf(host, sizeof(host), "%s", eps[0].host);
	snprintf(port, sizeof(port), "%u", eps[0].port);
	free(eps);
	if (getaddrinfo(host, port, &hints, &ai))
		die("cannot resolve %s", addr);
	for (i = 0; i < n_conns; i++) {
		struct conn *c = &conns[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
						      SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			die("socket: %s", strerror(errno));
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) &&
		    errno != EINPROGRESS)
			die("connect %s: %s", addr, strerror(errno));
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev))
			die("epoll_ctl: %s", strerror(errno));
	}
	freeaddrinfo(ai);
}

static void start_muond(char *addr, size_t n)
{
	int out[2];
	char line[256] = "", *p;
	size_t used = 0;
	uint64_t t0 = now_us();

	if (pipe2(out, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (!child) {
		/* Not left behind when this tool is killed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(out[1], STDOUT_FILENO);
		if (opt.secret)
			execl(opt.muond, "muond", "--listen",
			      "tcp://127.0.0.1:0", "--log-level", "warn",
			      "--secret-file", opt.secret, (char *)NULL);
		else
			execl(opt.muond, "muond", "--listen",
			      "tcp://127.0.0.1:0", "--log-level", "error",
			      (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	while (!strchr(line, '\n') && now_us() - t0 < 15000000u) {
		struct pollfd pfd = { .fd = out[0], .events = POLLIN };
		ssize_t k;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		k = read(out[0], line + used, sizeof(line) - 1 - used);
		if (k <= 0)
			break;
		used += (size_t)k;
		line[used] = 0;
	}
	close(out[0]);
	p = strstr(line, "listening ");
	if (!p)
		die("%s did not say where it listens", opt.muond);
	p += strlen("listening ");
	p[strcspn(p, "\r\n")] = 0;
	snprintf(addr, n, "%s", p);
	daemon_pid = (int)child;
}

/* Which watchers each topic's changes must reach. */
static void index_watchers(void)
{
	unsigned t, w;
	char name[64];

	topic_watch = calloc(opt.topics, sizeof(*topic_watch));
	n_topic_watch = calloc(opt.topics, sizeof(*n_topic_watch));
	if (!topic_watch || !n_topic_watch)
		die("out of memory");
	for (t = 0; t < opt.topics; t++) {
		topic_name(t, name, sizeof(name));
		for (w = 0; w < opt.watchers; w++) {
			const struct conn *c = &conns[opt.sessions + w];

			if (c->prefix ? strncmp(name, c->topic,
						strlen(c->topic))
				      : strcmp(name, c->topic))
				continue;
			if (!(n_topic_watch[t] & (n_topic_watch[t] - 1))) {
				size_t cap = n_topic_watch[t]
						     ? 2 * n_topic_watch[t] : 1;
				unsigned *v = realloc(topic_watch[t],
						      cap * sizeof(*v));

				if (!v)
					die("out of memory");
				topic_watch[t] = v;
			}
			topic_watch[t][n_topic_watch[t]++] = w;
		}
	}
}

static void live_add(unsigned sess, uint32_t stream, unsigned topic)
{
	if (n_live == cap_live) {
		size_t cap = cap_live ? cap_live * 2 : 1024;
		struct live *v = realloc(live, cap * sizeof(*v));

		if (!v)
			die("out of memory");
		live = v;
		cap_live = cap;
	}
	live[n_live++] = (struct live){ sess, stream, topic };
	topic_pubs[topic]++;
}

/* Snapshot a watcher should get: the publications of its topics. */
static uint32_t expected_snapshot(const struct conn *c)
{
	uint32_t n = 0;
	unsigned t;

	for (t = 0; t < opt.topics; t++) {
		unsigned i;

		for (i = 0; i < n_topic_watch[t]; i++)
			if (topic_watch[t][i] == c->idx - opt.sessions) {
				n += topic_pubs[t];
				break;
			}
	}
	return n;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " (--daemon ADDR | --muond PATH) [OPTION]...\n"
"Fan-out latency of a muon discovery daemon: sessions register\n"
"publications, watchers watch topics or prefixes, then changes are made\n"
"one at a time and timed until the last watcher concerned has its Update.\n"
"\n"
"  --daemon ADDR        an already running muond (tcp://HOST:PORT)\n"
"  --pid PID            its process, for RSS and CPU figures\n"
"  --muond PATH         start this muond on 127.0.0.1 (stopped at the end)\n"
"  --secret-file FILE   cluster secret (also given to a started muond)\n"
"  --pubs N             publications in all (default 10000)\n"
"  --sessions N         sessions (connections that register, 100)\n"
"  --topics N           topics the publications spread over (1000)\n"
"  --watchers N         watcher connections, one watch each (1000)\n"
"  --prefix-pct N       percent of watchers on a prefix, the rest on one\n"
"                       topic (20)\n"
"  --root-watchers N    of the watchers, N watch every topic (prefix\n"
"                       'load/'): worst-case fan-out (0)\n"
"  --hot-watchers N     of the watchers, N watch topic 0, and every change\n"
"                       is made there: each reaches them all, without\n"
"                       the huge snapshots of --root-watchers (0)\n"
"  --changes N          changes to time (1000)\n"
"  --target-us N        fan-out target to report against (10000)\n"
"  --seed N             random seed of the changes (1)\n");
}

static unsigned num_arg(const char *name, const char *s, unsigned min)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < min || v > 100000000ul) {
		fprintf(stderr, PROG ": %s: bad number '%s'\n", name, s);
		exit(EXIT_SETUP);
	}
	return (unsigned)v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "daemon", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'P' },
		{ "muond", required_argument, NULL, 'm' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "pubs", required_argument, NULL, 'p' },
		{ "sessions", required_argument, NULL, 's' },
		{ "topics", required_argument, NULL, 't' },
		{ "watchers", required_argument, NULL, 'w' },
		{ "prefix-pct", required_argument, NULL, 'x' },
		{ "root-watchers", required_argument, NULL, 'r' },
		{ "hot-watchers", required_argument, NULL, 'H' },
		{ "changes", required_argument, NULL, 'c' },
		{ "target-us", required_argument, NULL, 'T' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'd': opt.daemon = optarg; break;
		case 'P': opt.pid = (int)num_arg("--pid", optarg, 1); break;
		case 'm': opt.muond = optarg; break;
		case 'k': opt.secret = optarg; break;
		case 'p': opt.pubs = num_arg("--pubs", optarg, 0); break;
		case 's': opt.sessions = num_arg("--sessions", optarg, 1);
			break;
		case 't': opt.topics = num_arg("--topics", optarg, 1); break;
		case 'w': opt.watchers = num_arg("--watchers", optarg, 1);
			break;
		case 'x': opt.prefix_pct = num_arg("--prefix-pct", optarg, 0);
			break;
		case 'r': opt.root_watchers = num_arg("--root-watchers",
						      optarg, 0);
			break;
		case 'H': opt.hot_watchers = num_arg("--hot-watchers",
						     optarg, 0);
			break;
		case 'c': opt.changes = num_arg("--changes", optarg, 0); break;
		case 'T': opt.target_us = num_arg("--target-us", optarg, 1);
			break;
		case 'S': opt.seed = num_arg("--seed", optarg, 0); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(EXIT_SETUP);
		}
	}
	if (optind != argc || !opt.daemon == !opt.muond) {
		usage(stderr);
		exit(EXIT_SETUP);
	}
	if (opt.prefix_pct > 100 ||
	    opt.root_watchers + opt.hot_watchers > opt.watchers)
		die("--prefix-pct at most 100, --root-watchers plus "
		    "--hot-watchers at most --watchers");
}

static void raise_nofile(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < need + 64) {
		rl.rlim_cur = rl.rlim_max < need + 64 ? rl.rlim_max
						      : need + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need + 16)
		die("%u connections need %u descriptors, the limit is %llu",
		    need, need + 16, (unsigned long long)rl.rlim_cur);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	struct samples lat_fanout = { 0 }, lat_ok = { 0 };
	char addr[300];
	unsigned i, s, w, n_reg = 0, n_unreg = 0, n_late = 0, over = 0;
	uint64_t t0, t_pop, t_snap, cpu0, cpu1, updates_expected = 0;
	uint64_t updates_got = 0, no_watchers = 0, t_changes, h_updates0;
	uint64_t self0, self1;
	unsigned long rss_setup, rss_end;
	bool snap_ok = true;
	int status = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		die("libsodium failed to initialise");
	if (opt.secret) {
		if (muoni_secret_load(opt.secret, key))
			die("%s", muoni_err_msg());
		have_key = true;
	}
	rnd_state = opt.seed * 2654435761u + 1;
	muoni_disc_host_id(host_id, sizeof(host_id));
	for (width = 4, i = 10000; i < opt.topics; i *= 10)
		width++;
	n_conns = opt.sessions + opt.watchers;
	raise_nofile(n_conns);
	conns = calloc(n_conns, sizeof(*conns));
	topic_pubs = calloc(opt.topics, sizeof(*topic_pubs));
	if (!conns || !topic_pubs)
		die("out of memory");
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	if (opt.muond) {
		start_muond(addr, sizeof(addr));
	} else {
		snprintf(addr, sizeof(addr), "%s", opt.daemon);
		daemon_pid = opt.pid;
	}

	/* Who is who. Exact watchers are spread evenly over the topics;
	 * prefix watchers cover a tenth or a hundredth of the numbering. */
	for (i = 0; i < n_conns; i++) {
		struct conn *c = &conns[i];

		c->idx = i;
		c->next_req = 1;
		c->last_change = -1;
		if (i < opt.sessions) {
			c->role = ROLE_SESSION;
			c->ctx_id = 0x10ad000000000000ull | (i + 1);
			c->next_stream = 1;
			continue;
		}
		w = i - opt.sessions;
		c->role = ROLE_WATCHER;
		if (w < opt.root_watchers) {
			snprintf(c->topic, sizeof(c->topic), "load/");
			c->prefix = true;
		} else if (w < opt.root_watchers + opt.hot_watchers) {
			topic_name(0, c->topic, sizeof(c->topic));
		} else if (w % 100 < opt.prefix_pct) {
			unsigned t = rnd() % opt.topics;
			int cut = width - 1 - (int)(w & 1);

			topic_name(t, c->topic, sizeof(c->topic));
			c->topic[strlen("load/t") + (size_t)cut] = 0;
			c->prefix = true;
		} else {
			topic_name((w * 7919u) % opt.topics, c->topic,
				   sizeof(c->topic));
		}
	}
	index_watchers();

	printf("muon-disc-load: daemon %s, %u publications over %u sessions "
	       "and %u topics, %u watchers (%u%% on a prefix, %u on all, %u "
	       "on the hot topic), %u changes%s\n", addr, opt.pubs,
	       opt.sessions, opt.topics, opt.watchers, opt.prefix_pct,
	       opt.root_watchers, opt.hot_watchers, opt.changes,
	       opt.hot_watchers ? " all on the hot topic" : "");

	t0 = now_us();
	connect_all(addr);
	if (!run_until(all_welcomed, PHASE_TIMEOUT_US))
		die("only %u of %u connections got a Welcome", n_welcomed,
		    n_conns);
	printf("connected and greeted %u connections in %.1f ms\n", n_conns,
	       (double)(now_us() - t0) / 1000.0);

	/* Publication i: topic i % T, session i % S. */
	t0 = now_us();
	for (s = 0; s < opt.sessions; s++) {
		struct conn *c = &conns[s];
		unsigned topics[REG_BATCH];
		uint32_t streams[REG_BATCH];
		size_t n = 0;

		for (i = s; i < opt.pubs; i += opt.sessions) {
			topics[n] = i % opt.topics;
			streams[n] = c->next_stream++;
			live_add(s, streams[n], topics[n]);
			if (++n == REG_BATCH) {
				send_register(c, topics, streams, n);
				c->answers_due++;
				n = 0;
			}
		}
		if (n) {
			send_register(c, topics, streams, n);
			c->answers_due++;
		}
	}
	if (!run_until(all_answered, PHASE_TIMEOUT_US))
		die("registrations not all answered");
	t_pop = now_us() - t0;
	printf("registered %u publications in %.1f ms\n", opt.pubs,
	       (double)t_pop / 1000.0);

	t0 = now_us();
	cpu0 = proc_cpu_us(daemon_pid);
	for (w = 0; w < opt.watchers; w++)
		send_watch(&conns[opt.sessions + w]);
	if (!run_until(all_answered, PHASE_TIMEOUT_US))
		die("only %u of %u snapshots complete", n_snapshots,
		    opt.watchers);
	t_snap = now_us() - t0;
	for (w = 0; w < opt.watchers; w++) {
		struct conn *c = &conns[opt.sessions + w];
		uint32_t want = expected_snapshot(c);

		if (c->snap_pubs != want) {
			if (snap_ok)
				fprintf(stderr, PROG ": watcher %u ('%s'%s): "
					"snapshot of %u publications, expected "
					"%u\n", w, c->topic,
					c->prefix ? " prefix" : "",
					c->snap_pubs, want);
			snap_ok = false;
		}
	}
	printf("%u snapshots complete in %.1f ms%s (daemon CPU %.1f ms)\n",
	       opt.watchers, (double)t_snap / 1000.0,
	       snap_ok ? "" : " (SOME WITH THE WRONG CONTENT)",
	       (double)(proc_cpu_us(daemon_pid) - cpu0) / 1000.0);
	if (!snap_ok)
		status = EXIT_MISSED;

	query_health();
	h_updates0 = health.updates_sent;
	if (health.leases_expired || n_stray) {
		printf("WARNING: %" PRIu64 " leases expired and %" PRIu64
		       " unexpected Updates during setup: the daemon was too "
		       "busy to take renewals in time; figures below are not "
		       "those of a steady state\n", health.leases_expired,
		       n_stray);
		status = EXIT_MISSED;
	}
	rss_setup = proc_rss_kb(daemon_pid);
	cpu0 = proc_cpu_us(daemon_pid);
	self0 = proc_cpu_us((int)getpid());
	t_changes = now_us();
	for (i = 0; i < opt.changes; i++) {
		struct conn *c;
		unsigned topic;

		memset(&cur, 0, sizeof(cur));
		cur.idx = i;
		/* Alternate adds and removals, so the population stays
		 * near P; an empty population only grows. */
		if ((i & 1) && n_live) {
			size_t k = rnd() % n_live;

			/* Hot mode: withdraw from topic 0 only. */
			if (opt.hot_watchers) {
				size_t j;

				for (j = 0; j < n_live; j++)
					if (!live[(k + j) % n_live].topic)
						break;
				k = (k + j) % n_live;
			}

			cur.sess = live[k].sess;
			cur.stream = live[k].stream;
			topic = live[k].topic;
			cur.kind = MUON__DISC__UPDATE__KIND__DOWN;
			topic_pubs[topic]--;
			live[k] = live[--n_live];
			c = &conns[cur.sess];
			cur.ctx_id = c->ctx_id;
			cur.expected = n_topic_watch[topic];
			cur.t_send = now_us();
			cur.req = send_unregister(c, cur.stream);
			n_unreg++;
		} else {
			cur.sess = rnd() % opt.sessions;
			c = &conns[cur.sess];
			topic = opt.hot_watchers ? 0 : rnd() % opt.topics;
			cur.stream = c->next_stream++;
			cur.kind = MUON__DISC__UPDATE__KIND__UP;
			cur.ctx_id = c->ctx_id;
			cur.expected = n_topic_watch[topic];
			live_add(cur.sess, cur.stream, topic);
			cur.t_send = now_us();
			cur.req = send_register(c, &topic, &cur.stream, 1);
			n_reg++;
		}
		updates_expected += cur.expected;
		if (!run_until(change_done, CHANGE_TIMEOUT_US)) {
			if (n_late++ < 10)
				fprintf(stderr, PROG ": change %u: %u of %u "
					"Updates%s within %u ms\n", i,
					cur.received, cur.expected,
					cur.answered ? "" : " and no Ok",
					CHANGE_TIMEOUT_US / 1000);
		}
		updates_got += cur.received;
		if (cur.answered)
			samples_add(&lat_ok, cur.t_ok - cur.t_send);
		if (!cur.expected)
			no_watchers++;
		else if (cur.received == cur.expected) {
			samples_add(&lat_fanout, cur.t_last - cur.t_send);
			if (cur.t_last - cur.t_send > opt.target_us)
				over++;
		}
	}
	t_changes = now_us() - t_changes;
	cpu1 = proc_cpu_us(daemon_pid);
	self1 = proc_cpu_us((int)getpid());
	/* Stragglers of the last change and stray Updates, if any. */
	cur.idx = -1;
	rss_end = proc_rss_kb(daemon_pid);
	query_health();

	printf("\n%u changes (%u registers, %u unregisters) in %.1f ms; "
	       "Updates expected %" PRIu64 ", delivered %" PRIu64 ", "
	       "duplicates %" PRIu64 ", unexpected %" PRIu64 "; changes "
	       "without a watcher %" PRIu64 "\n", opt.changes, n_reg, n_unreg,
	       (double)t_changes / 1000.0, updates_expected, updates_got,
	       n_dup, n_stray, no_watchers);
	printf("latencies in microseconds, measured in this process from "
	       "just before the request's send() to the recv() that "
	       "brought the message (one epoll thread: includes loopback "
	       "TCP both ways, the daemon, and this tool's decoding of "
	       "the watchers served before):\n");
	samples_print("fan-out (request -> last watcher)", &lat_fanout);
	samples_print("per-watcher delivery", &lat_deliver);
	samples_print("request -> Ok to the session", &lat_ok);
	printf("daemon Health: %" PRIu64 " Updates sent during the changes, "
	       "%u publications, %u watches, %u clients, %" PRIu64 " leases "
	       "expired, %" PRIu64 " clients dropped\n",
	       health.updates_sent - h_updates0, health.publications,
	       health.watches, health.clients, health.leases_expired,
	       health.clients_dropped);
	if (health.leases_expired || health.clients_dropped)
		status = EXIT_MISSED;
	if (daemon_pid > 0)
		printf("daemon pid %d: VmRSS %lu kB after setup, %lu kB at "
		       "the end; CPU %.1f ms during the changes (%.1f us per "
		       "change, %.2f us per Update; includes the keepalives "
		       "of %u connections)\n", daemon_pid, rss_setup, rss_end,
		       (double)(cpu1 - cpu0) / 1000.0,
		       opt.changes ? (double)(cpu1 - cpu0) / opt.changes : 0.0,
		       updates_got ? (double)(cpu1 - cpu0) / (double)updates_got
				   : 0.0, n_conns);
	else
		printf("daemon RSS and CPU: not measured (give --pid)\n");
	printf("this tool: CPU %.1f ms during the changes (one thread, "
	       "epoll)\n", (double)(self1 - self0) / 1000.0);
	printf("target: every watcher within %u us of a change: %s (%u of "
	       "%zu changes over; worst %" PRIu32 " us)\n", opt.target_us,
	       over || n_late ? "MISSED" : "met", over, lat_fanout.n,
	       lat_fanout.n ? lat_fanout.v[lat_fanout.n - 1] : 0);
	if (updates_got != updates_expected || n_late || n_errors) {
		printf("FAILED: %" PRIu64 " Updates missing, %u changes "
		       "incomplete, %" PRIu64 " Errors\n",
		       updates_expected - updates_got, n_late, n_errors);
		status = EXIT_MISSED;
	}

	for (i = 0; i < n_conns; i++) {
		close(conns[i].fd);
		muoni_disc_buf_fini(&conns[i].in);
		muoni_disc_buf_fini(&conns[i].out);
	}
	if (child > 0) {
		int st = 0;

		kill(child, SIGTERM);
		waitpid(child, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("FAILED: muond exited with %s %d\n",
			       WIFEXITED(st) ? "status" : "signal",
			       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			status = EXIT_MISSED;
		}
	}
	for (i = 0; i < opt.topics; i++)
		free(topic_watch[i]);
	free(topic_watch);
	free(n_topic_watch);
	free(topic_pubs);
	free(live);
	free(conns);
	free(lat_fanout.v);
	free(lat_deliver.v);
	free(lat_ok.v);
	close(ep);
	return status;
}
