/*
 * muon-disc-hostile: muond against hostile and broken clients.
 *
 *   muon-disc-hostile PATH_TO_MUOND
 *
 * Starts its own muond (secret file, small limits) and keeps one
 * well-behaved client connected throughout: it registers publications
 * and watches a topic. Each case then opens a bad client and checks the
 * Error it gets (decoded through the shared codec, MAC and seq checked)
 * and that it is disconnected, or for non-fatal errors that the
 * connection stays usable; after every case the good client must still
 * get its answers (Renew -> Ok, Register/Unregister -> Update on its own
 * watch and Ok). Ends with 10,000 idle connections, the daemon's memory
 * before, during and after them, and its Health counters.
 *
 * Exit status 0 when every check passed, 1 otherwise (one FAIL line per
 * failed check: case, expected, seen), 2 on a setup problem.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sodium.h>

#include "core/muoni.h"
#include "proto/disc.h"

typedef Muon__Disc__Message Msg;

#define IDLE_MS 2000u
#define MAX_FRAME 65536u
#define MAX_OUTPUT (256u * 1024u)
#define N_IDLE 10000
#define RSS_GROWTH_MAX_KB (64u * 1024u)
/* How long any single expected answer may take, ASan included; below
 * IDLE_MS, so that waiting for an answer that never comes does not get
 * the good client cut for idleness as well. */
#define ANSWER_MS 1500

#define C_BAD_VERSION MUON__DISC__ERROR__CODE__BAD_VERSION
#define C_BAD_FRAME MUON__DISC__ERROR__CODE__BAD_FRAME
#define C_AUTH MUON__DISC__ERROR__CODE__AUTH
#define C_BAD_REQUEST MUON__DISC__ERROR__CODE__BAD_REQUEST
#define C_STATE MUON__DISC__ERROR__CODE__STATE
#define C_IDLE MUON__DISC__ERROR__CODE__IDLE
#define C_OVERLOADED MUON__DISC__ERROR__CODE__OVERLOADED
#define C_NONE (-1)

enum { R_MSG = 1, R_EOF = 0, R_TIMEOUT = -1, R_BAD = -2 };

/* One client connection, speaking the protocol through the codec. */
struct peer {
	int fd;
	struct muoni_disc_buf in, out;
	uint8_t nonce[MUONI_DISC_NONCE_LEN];  /* ours, sent in Hello */
	uint8_t dnonce[MUONI_DISC_NONCE_LEN]; /* the daemon's, from Welcome */
	uint64_t tx_seq, rx_seq, next_req;
	uint32_t max_frame;
	bool authed; /* the daemon MACs what it sends us */
	bool reset;  /* the connection ended with a RST, not a FIN */
	bool closed; /* the daemon closed it */
	char seq_err[160];
};

struct counters {
	uint64_t protocol_errors, auth_failures, clients_dropped;
	uint32_t clients, watches, publications;
};

static uint8_t key[32];
static pid_t daemon_pid = -1;
static uint16_t daemon_port;
static char tmpdir[64], secret_path[96], log_path[96];
static unsigned n_fail, n_checks;
/* What the cases should have moved in the daemon's Health. */
static struct counters expect;

static struct peer good;
static uint32_t good_stream = 1000;
/* Round trips of the good client's checks, in microseconds. */
static uint64_t good_lat[4096];
static size_t n_good_lat;

/* ------------------------------------------------------------ helpers */

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_ms(void)
{
	return mono_us() / 1000u;
}

static void fail(const char *cas, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(const char *cas, const char *fmt, ...)
{
	va_list ap;

	n_fail++;
	fprintf(stdout, "FAIL [%s]: ", cas);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static const char *code_name(int code)
{
	return code == C_NONE ? "none" : muoni_disc_code_name(code);
}

static const char *kind_name(const Msg *m)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(
			&muon__disc__message__descriptor,
			(unsigned)m->kind_case);

	return f ? f->name : "unknown";
}

/* A fixed sequence, so that a failure can be replayed. */
static uint32_t rnd_state = 0x9e3779b9u;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* The daemon's resident memory in KiB, 0 when unreadable. */
static unsigned long daemon_rss_kb(void)
{
	char path[64], line[256];
	unsigned long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* ------------------------------------------------------------ peers */

static int send_all(int fd, const void *data, size_t n)
{
	const uint8_t *p = data;

	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			if (poll(&pfd, 1, ANSWER_MS) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	muoni_disc_buf_fini(&p->in);
	muoni_disc_buf_fini(&p->out);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

/* `rcvbuf` > 0 shrinks the receive buffer before connecting, so that a
 * client that does not read backs up into the daemon quickly. */
static int peer_connect(struct peer *p, int rcvbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int one = 1;

	memset(p, 0, sizeof(*p));
	p->max_frame = MUONI_DISC_MAX_FRAME_MAX;
	p->next_req = 1;
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return -errno;
	if (rcvbuf > 0)
		setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sa.sin_port = htons(daemon_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(p->fd);
		p->fd = -1;
		return -e;
	}
	return 0;
}

/*
 * The next message from the daemon, checked by the codec (MAC once the
 * daemon knows our nonce) and for its seq (a gap is recorded in
 * p->seq_err, the message still returned). R_MSG with *out, R_EOF when
 * the daemon closed, R_TIMEOUT, or R_BAD with a reason in `why`.
 */
static int peer_read(struct peer *p, int timeout_ms, Msg **out, char *why,
		     size_t wl)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

	for (;;) {
		const uint8_t *f;
		size_t len;
		int rc, code = 0;

		rc = muoni_disc_next(&p->in, p->max_frame, &f, &len);
		if (rc < 0) {
			muoni_err_clear();
			snprintf(why, wl, "the daemon sent a bad length prefix");
			return R_BAD;
		}
		if (rc == 1) {
			Msg *m = NULL;
			char err[200];

			rc = muoni_disc_unpack(f, len, p->authed ? key : NULL,
					       p->nonce, &m, &code, err,
					       sizeof(err));
			muoni_disc_buf_consume(&p->in,
					       MUONI_DISC_LEN_BYTES + len);
			if (rc) {
				muoni_err_clear();
				snprintf(why, wl, "undecodable message from "
					 "the daemon (%s): %s",
					 code_name(code), err);
				return R_BAD;
			}
			if (m->seq != p->rx_seq + 1 && !p->seq_err[0])
				snprintf(p->seq_err, sizeof(p->seq_err),
					 "daemon message %s has seq %" PRIu64
					 ", expected %" PRIu64,
					 kind_name(m), m->seq, p->rx_seq + 1);
			p->rx_seq = m->seq;
			*out = m;
			return R_MSG;
		}

		int64_t left = (int64_t)deadline - (int64_t)mono_ms();
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		ssize_t n;

		if (left <= 0)
			return R_TIMEOUT;
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0)
			return R_TIMEOUT;
		if (rc < 0) {
			snprintf(why, wl, "poll: %s", strerror(errno));
			return R_BAD;
		}
		if (muoni_disc_buf_reserve(&p->in, 16384)) {
			snprintf(why, wl, "out of memory");
			return R_BAD;
		}
		n = recv(p->fd, p->in.data + p->in.len, 16384, MSG_DONTWAIT);
		if (n == 0) {
			p->closed = true;
			return R_EOF;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0 && errno == ECONNRESET) {
			p->reset = true;
			p->closed = true;
			return R_EOF;
		}
		if (n < 0) {
			snprintf(why, wl, "recv: %s", strerror(errno));
			return R_BAD;
		}
		p->in.len += (size_t)n;
	}
}

/* Number `m`, MAC it with `k` (the daemon's nonce) and send it. */
static int peer_send_key(struct peer *p, Msg *m, const uint8_t *k)
{
	int rc;

	m->seq = ++p->tx_seq;
	p->out.off = p->out.len = 0;
	rc = muoni_disc_pack(&p->out, m, k, p->dnonce, MUONI_DISC_MAX_FRAME_MAX);
	if (rc) {
		muoni_err_clear();
		return rc;
	}
	return send_all(p->fd, p->out.data, p->out.len);
}

static int peer_send(struct peer *p, Msg *m)
{
	return peer_send_key(p, m, key);
}

/* Read the Welcome; 0 or -1 with the failure reported for `cas`. */
static int peer_welcome(struct peer *p, const char *cas)
{
	Msg *m = NULL;
	char why[256];
	int rc = peer_read(p, ANSWER_MS, &m, why, sizeof(why));

	if (rc != R_MSG) {
		fail(cas, "expected Welcome, saw %s", rc == R_EOF ? "close"
			  : rc == R_TIMEOUT ? "nothing" : why);
		return -1;
	}
	if (m->kind_case != MUON__DISC__MESSAGE__KIND_WELCOME ||
	    m->welcome->nonce.len != MUONI_DISC_NONCE_LEN ||
	    !m->welcome->auth_required ||
	    m->welcome->max_frame != MAX_FRAME) {
		fail(cas, "expected Welcome (16-byte nonce, auth_required, "
		     "max_frame %u), saw %s", MAX_FRAME, kind_name(m));
		muon__disc__message__free_unpacked(m, NULL);
		return -1;
	}
	memcpy(p->dnonce, m->welcome->nonce.data, MUONI_DISC_NONCE_LEN);
	p->max_frame = m->welcome->max_frame;
	muon__disc__message__free_unpacked(m, NULL);
	return 0;
}

static void hello_fill(struct peer *p, Muon__Disc__Hello *h, uint64_t ctx_id,
		       const char *name)
{
	randombytes_buf(p->nonce, sizeof(p->nonce));
	h->nonce.data = p->nonce;
	h->nonce.len = sizeof(p->nonce);
	h->ctx_id = ctx_id;
	h->name = (char *)name;
	h->host_id = (char *)"hostile-test";
	h->pid = (uint32_t)getpid();
	h->role = (char *)"test";
}

/* Connect, read the Welcome, send a correct Hello. */
static int peer_open_buf(struct peer *p, const char *cas, uint64_t ctx_id,
			 const char *name, int rcvbuf)
{
	Muon__Disc__Hello h = MUON__DISC__HELLO__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	int rc = peer_connect(p, rcvbuf);

	if (rc) {
		fail(cas, "expected to connect, saw %s", strerror(-rc));
		return -1;
	}
	if (peer_welcome(p, cas))
		return -1;
	hello_fill(p, &h, ctx_id, name);
	m.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
	m.hello = &h;
	if (peer_send(p, &m)) {
		fail(cas, "expected to send Hello, saw a send error");
		return -1;
	}
	p->authed = true;
	return 0;
}

static int peer_open(struct peer *p, const char *cas, uint64_t ctx_id,
		     const char *name)
{
	return peer_open_buf(p, cas, ctx_id, name, 0);
}

static int peer_open_bare(struct peer *p, const char *cas)
{
	int rc = peer_connect(p, 0);

	if (rc) {
		fail(cas, "expected to connect, saw %s", strerror(-rc));
		return -1;
	}
	return peer_welcome(p, cas);
}

/* ------------------------------------------------------------ requests */

struct pubspec {
	const char *topic;
	uint32_t stream;
	const char *eps[10];
	size_t n_eps;
};

static uint64_t send_register(struct peer *p, const struct pubspec *ps,
			      size_t n)
{
	Muon__Disc__Publication pubs[256], *pp[256];
	Muon__Disc__Register r = MUON__DISC__REGISTER__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	size_t i;

	for (i = 0; i < n && i < 256; i++) {
		muon__disc__publication__init(&pubs[i]);
		pubs[i].topic = (char *)ps[i].topic;
		pubs[i].stream_id = ps[i].stream;
		pubs[i].endpoints = (char **)ps[i].eps;
		pubs[i].n_endpoints = ps[i].n_eps;
		pp[i] = &pubs[i];
	}
	r.publications = pp;
	r.n_publications = i;
	m.request_id = p->next_req++;
	m.kind_case = MUON__DISC__MESSAGE__KIND_REGISTER;
	m.register_ = &r;
	return peer_send(p, &m) ? 0 : m.request_id;
}

static uint64_t send_unregister(struct peer *p, uint32_t *ids, size_t n)
{
	Muon__Disc__Unregister u = MUON__DISC__UNREGISTER__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	u.stream_ids = ids;
	u.n_stream_ids = n;
	m.request_id = p->next_req++;
	m.kind_case = MUON__DISC__MESSAGE__KIND_UNREGISTER;
	m.unregister = &u;
	return peer_send(p, &m) ? 0 : m.request_id;
}

static uint64_t send_renew(struct peer *p)
{
	Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	m.request_id = p->next_req++;
	m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
	m.renew = &r;
	return peer_send(p, &m) ? 0 : m.request_id;
}

static uint64_t send_watch(struct peer *p, uint64_t id, const char *topic,
			   bool prefix)
{
	Muon__Disc__Watch w = MUON__DISC__WATCH__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	w.watch_id = id;
	w.topic = (char *)topic;
	w.prefix = prefix;
	m.request_id = p->next_req++;
	m.kind_case = MUON__DISC__MESSAGE__KIND_WATCH;
	m.watch = &w;
	return peer_send(p, &m) ? 0 : m.request_id;
}

static uint64_t send_unwatch(struct peer *p, uint64_t id)
{
	Muon__Disc__Unwatch u = MUON__DISC__UNWATCH__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	u.watch_id = id;
	m.request_id = p->next_req++;
	m.kind_case = MUON__DISC__MESSAGE__KIND_UNWATCH;
	m.unwatch = &u;
	return peer_send(p, &m) ? 0 : m.request_id;
}

static uint64_t send_list(struct peer *p, Muon__Disc__List__What what)
{
	Muon__Disc__List l = MUON__DISC__LIST__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	l.what = what;
	m.request_id = p->next_req++;
	m.kind_case = MUON__DISC__MESSAGE__KIND_LIST;
	m.list = &l;
	return peer_send(p, &m) ? 0 : m.request_id;
}

/*
 * The final answer to request `req` (Ok, Error, the last Snapshot part or
 * ListReply part); *out is it, to free. Anything else that arrives
 * meanwhile is a failure unless `allow_other`.
 */
static int wait_answer(struct peer *p, const char *cas, const char *what,
		       uint64_t req, bool allow_other, Msg **out)
{
	char why[256];

	for (;;) {
		Msg *m = NULL;
		int rc = peer_read(p, ANSWER_MS, &m, why, sizeof(why));
		bool final;

		if (rc != R_MSG) {
			fail(cas, "%s: expected the answer to request %" PRIu64
			     ", saw %s", what, req, rc == R_EOF ? "the "
			     "connection closed" : rc == R_TIMEOUT ? "nothing "
			     "within the timeout" : why);
			return -1;
		}
		final = m->request_id == req &&
			(m->kind_case == MUON__DISC__MESSAGE__KIND_OK ||
			 m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR ||
			 (m->kind_case == MUON__DISC__MESSAGE__KIND_SNAPSHOT &&
			  m->snapshot->last) ||
			 (m->kind_case == MUON__DISC__MESSAGE__KIND_LIST_REPLY &&
			  m->list_reply->last));
		if (final) {
			*out = m;
			return 0;
		}
		if (!allow_other)
			fail(cas, "%s: expected only the answer to request "
			     "%" PRIu64 ", also saw %s (request %" PRIu64 ")",
			     what, req, kind_name(m), m->request_id);
		muon__disc__message__free_unpacked(m, NULL);
	}
}

/* Request `req` must be answered with Ok. */
static int expect_ok(struct peer *p, const char *cas, const char *what,
		     uint64_t req)
{
	Msg *m = NULL;
	int rc;

	if (!req) {
		fail(cas, "%s: expected to send the request, saw a send error",
		     what);
		return -1;
	}
	if (wait_answer(p, cas, what, req, false, &m))
		return -1;
	rc = m->kind_case == MUON__DISC__MESSAGE__KIND_OK ? 0 : -1;
	if (rc)
		fail(cas, "%s: expected Ok, saw %s%s%s", what, kind_name(m),
		     m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR ? " " : "",
		     m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR
			     ? code_name(m->error->code) : "");
	muon__disc__message__free_unpacked(m, NULL);
	return rc;
}

/* Request `req` must get a non-fatal Error `code`; the connection must
 * then still answer a Renew. Returns true when the daemon accepted the
 * request instead (already reported), so that the caller can undo it. */
static bool expect_nonfatal(struct peer *p, const char *cas, uint64_t req,
			    int code)
{
	bool accepted = false;
	Msg *m = NULL;

	n_checks++;
	if (!req) {
		fail(cas, "expected to send the request, saw a send error");
		return false;
	}
	if (wait_answer(p, cas, "request", req, false, &m))
		return false;
	accepted = m->kind_case == MUON__DISC__MESSAGE__KIND_OK;
	/* The daemon counts every Error it answers with, fatal or not. */
	if (m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR &&
	    m->error->code != MUON__DISC__ERROR__CODE__LIMIT)
		expect.protocol_errors++;
	if (m->kind_case != MUON__DISC__MESSAGE__KIND_ERROR)
		fail(cas, "expected Error %s (non-fatal), saw %s",
		     code_name(code), kind_name(m));
	else if ((int)m->error->code != code || m->error->fatal)
		fail(cas, "expected Error %s non-fatal, saw %s %s (\"%s\")",
		     code_name(code), code_name(m->error->code),
		     m->error->fatal ? "fatal" : "non-fatal",
		     m->error->reason);
	muon__disc__message__free_unpacked(m, NULL);
	expect_ok(p, cas, "Renew after the Error", send_renew(p));
	return accepted;
}

/*
 * The daemon must answer with a fatal Error `code` (or `alt`), echoing
 * `req` when not 0, and then close the connection. C_NONE for `code`:
 * the daemon must close without an Error. Moves the expected counters.
 * Returns the code seen (C_NONE for none).
 */
static int expect_fatal(struct peer *p, const char *cas, int code, int alt,
			uint64_t req)
{
	char why[256];
	int seen = C_NONE;
	uint64_t t0 = mono_ms();

	n_checks++;
	for (;;) {
		Msg *m = NULL;
		int rc = peer_read(p, ANSWER_MS, &m, why, sizeof(why));

		if (rc == R_MSG) {
			if (seen != C_NONE)
				fail(cas, "expected the connection closed "
				     "after the fatal Error, saw %s",
				     kind_name(m));
			else if (m->kind_case !=
				 MUON__DISC__MESSAGE__KIND_ERROR)
				fail(cas, "expected Error %s, saw %s first",
				     code_name(code), kind_name(m));
			else {
				seen = (int)m->error->code;
				if (code == C_NONE)
					fail(cas, "expected a close without "
					     "an Error, saw Error %s (\"%s\")",
					     code_name(seen),
					     m->error->reason);
				else if (seen != code && seen != alt)
					fail(cas, "expected Error %s%s%s, saw "
					     "%s (\"%s\")", code_name(code),
					     alt != C_NONE ? " or " : "",
					     alt != C_NONE ? code_name(alt) : "",
					     code_name(seen), m->error->reason);
				if (!m->error->fatal)
					fail(cas, "expected the Error fatal, "
					     "saw fatal = false");
				if (req && m->request_id != req)
					fail(cas, "expected the Error to echo "
					     "request %" PRIu64 ", saw %" PRIu64,
					     req, m->request_id);
				if (seen != C_NONE)
					note("  [%s] Error %s \"%s\"", cas,
					     code_name(seen), m->error->reason);
			}
			muon__disc__message__free_unpacked(m, NULL);
			continue;
		}
		if (rc == R_EOF) {
			if (seen == C_NONE && code != C_NONE)
				fail(cas, "expected Error %s then a close, saw "
				     "a close without an Error%s",
				     code_name(code),
				     p->reset ? " (reset)" : "");
			if (muoni_disc_buf_used(&p->in))
				fail(cas, "expected whole frames, saw the "
				     "connection end inside a frame (%zu "
				     "bytes)", muoni_disc_buf_used(&p->in));
			break;
		}
		fail(cas, "expected %s, saw %s after %" PRIu64 " ms",
		     seen == C_NONE ? "an Error and a close" : "a close",
		     rc == R_TIMEOUT ? "nothing" : why, mono_ms() - t0);
		break;
	}
	if (p->seq_err[0])
		fail(cas, "expected consecutive seqs, saw: %s", p->seq_err);
	/* Counted the way the contract defines them. */
	if (seen != C_NONE) {
		expect.clients_dropped++;
		if (seen == C_AUTH)
			expect.auth_failures++;
		else if (seen != C_IDLE && seen != C_OVERLOADED &&
			 seen != MUON__DISC__ERROR__CODE__LIMIT)
			expect.protocol_errors++;
	}
	peer_close(p);
	return seen;
}

/* ------------------------------------------------------------ frames */

static void mac_of(const uint8_t *k, const uint8_t *nonce, const uint8_t *body,
		   size_t len, uint8_t mac[MUONI_DISC_MAC_LEN])
{
	static const char label[] = "muon-disc-1";
	crypto_auth_hmacsha256_state st;
	uint8_t full[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_init(&st, k, 32);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label,
				      sizeof(label) - 1);
	crypto_auth_hmacsha256_update(&st, nonce, MUONI_DISC_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, body, len);
	crypto_auth_hmacsha256_final(&st, full);
	memcpy(mac, full, MUONI_DISC_MAC_LEN);
}

/* A hand-made frame: any version, any body, a correct MAC. */
static int send_frame(struct peer *p, uint32_t version, const uint8_t *body,
		      size_t blen)
{
	Muon__Disc__Frame f = MUON__DISC__FRAME__INIT;
	uint8_t mac[MUONI_DISC_MAC_LEN], buf[1024];
	size_t flen;

	mac_of(key, p->dnonce, body, blen, mac);
	f.version = version;
	f.body.data = (uint8_t *)body;
	f.body.len = blen;
	f.mac.data = mac;
	f.mac.len = sizeof(mac);
	flen = muon__disc__frame__get_packed_size(&f);
	if (flen + 4 > sizeof(buf))
		return -1;
	buf[0] = (uint8_t)(flen >> 24);
	buf[1] = (uint8_t)(flen >> 16);
	buf[2] = (uint8_t)(flen >> 8);
	buf[3] = (uint8_t)flen;
	muon__disc__frame__pack(&f, buf + 4);
	return send_all(p->fd, buf, flen + 4);
}

/* A correct Hello, encoded as a Message body with seq 1. */
static size_t hello_body(struct peer *p, uint8_t *buf, size_t cap)
{
	Muon__Disc__Hello h = MUON__DISC__HELLO__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	hello_fill(p, &h, 0x4e11, "hostile");
	m.seq = 1;
	m.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
	m.hello = &h;
	if (muon__disc__message__get_packed_size(&m) > cap)
		return 0;
	return muon__disc__message__pack(&m, buf);
}

/* ------------------------------------------------------------ good client */

static void lat_add(uint64_t us)
{
	if (n_good_lat < sizeof(good_lat) / sizeof(good_lat[0]))
		good_lat[n_good_lat++] = us;
}

/* Reads until the Ok of `req` (unless `req` is 0: no request in flight)
 * and the Update `kind` of (`ctx_id`, `stream`) on watch 1 have both
 * arrived; anything else is a failure. */
static int good_wait_change(const char *cas, const char *what, uint64_t req,
			    Muon__Disc__Update__Kind kind, uint64_t ctx_id,
			    uint32_t stream)
{
	bool ok = !req, upd = false;
	char why[256];

	while (!ok || !upd) {
		Msg *m = NULL;
		int rc = peer_read(&good, ANSWER_MS, &m, why, sizeof(why));
		const Muon__Disc__Update *u;

		if (rc != R_MSG) {
			fail(cas, "good client: %s: expected %s%s%s, saw %s",
			     what, ok ? "" : "Ok", ok || upd ? "" : " and ",
			     upd ? "" : "its Update", rc == R_EOF ? "the "
			     "connection closed" : rc == R_TIMEOUT ? "nothing "
			     "within the timeout" : why);
			return -1;
		}
		u = m->kind_case == MUON__DISC__MESSAGE__KIND_UPDATE ? m->update
								      : NULL;
		if (m->kind_case == MUON__DISC__MESSAGE__KIND_OK &&
		    m->request_id == req && !ok) {
			ok = true;
		} else if (u && u->watch_id == 1 && u->kind == kind &&
			   u->publication && !upd &&
			   u->publication->stream_id == stream &&
			   u->publication->ctx_id == ctx_id &&
			   !strcmp(u->publication->topic, "good/watch")) {
			upd = true;
		} else if (u) {
			fail(cas, "good client: %s: expected only Update %s "
			     "ctx %" PRIx64 " stream %u on watch 1, also saw "
			     "Update kind %d topic '%s' ctx %" PRIx64
			     " stream %u on watch %" PRIu64 " (leaked from a "
			     "rejected request?)", what,
			     kind == MUON__DISC__UPDATE__KIND__UP ? "UP" : "DOWN",
			     ctx_id, stream, (int)u->kind,
			     u->publication ? u->publication->topic : "?",
			     u->publication ? u->publication->ctx_id : 0,
			     u->publication ? u->publication->stream_id : 0,
			     u->watch_id);
		} else {
			fail(cas, "good client: %s: expected Ok and an Update, "
			     "saw %s%s%s", what, kind_name(m),
			     m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR
				     ? " " : "",
			     m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR
				     ? code_name(m->error->code) : "");
			muon__disc__message__free_unpacked(m, NULL);
			return -1;
		}
		muon__disc__message__free_unpacked(m, NULL);
	}
	return 0;
}

/* A request the good client could not even send. */
static int good_sent(const char *cas, const char *what, uint64_t req)
{
	if (req)
		return 0;
	fail(cas, "good client: %s: expected to send, saw a send error",
	     what);
	return -1;
}

/* The good client must still be served: Renew, then a publication on its
 * watched topic appears and disappears. Returns the round trip of the
 * whole check in microseconds, 0 when it failed. */
static uint64_t good_check(const char *cas)
{
	struct pubspec ps = { "good/watch", ++good_stream,
			      { "tcp://127.0.0.1:9" }, 1 };
	uint64_t t0 = mono_us(), dt;
	uint32_t id = ps.stream;

	n_checks++;
	uint64_t req;

	if (expect_ok(&good, cas, "good client Renew", send_renew(&good)))
		return 0;
	req = send_register(&good, &ps, 1);
	if (good_sent(cas, "Register", req) ||
	    good_wait_change(cas, "good client Register", req,
			     MUON__DISC__UPDATE__KIND__UP, 0x600d, id))
		return 0;
	req = send_unregister(&good, &id, 1);
	if (good_sent(cas, "Unregister", req) ||
	    good_wait_change(cas, "good client Unregister", req,
			     MUON__DISC__UPDATE__KIND__DOWN, 0x600d, id))
		return 0;
	if (good.seq_err[0]) {
		fail(cas, "good client: expected consecutive seqs, saw: %s",
		     good.seq_err);
		good.seq_err[0] = 0;
	}
	dt = mono_us() - t0;
	lat_add(dt);
	return dt ? dt : 1;
}

static int good_setup(void)
{
	struct pubspec ps[5];
	char topics[5][32];
	Msg *m = NULL;
	size_t i;

	if (peer_open(&good, "setup", 0x600d, "good"))
		return -1;
	for (i = 0; i < 5; i++) {
		snprintf(topics[i], sizeof(topics[i]), "good/pub.%zu", i);
		ps[i] = (struct pubspec){ topics[i], (uint32_t)i + 1,
					  { "tcp://127.0.0.1:7000",
					    "shm://good" }, 2 };
	}
	if (expect_ok(&good, "setup", "good client Register",
		      send_register(&good, ps, 5)))
		return -1;
	if (wait_answer(&good, "setup", "good client Watch",
			send_watch(&good, 1, "good/watch", false), false, &m))
		return -1;
	if (m->kind_case != MUON__DISC__MESSAGE__KIND_SNAPSHOT ||
	    m->snapshot->n_publications) {
		fail("setup", "good client Watch: expected an empty Snapshot, "
		     "saw %s", kind_name(m));
		muon__disc__message__free_unpacked(m, NULL);
		return -1;
	}
	muon__disc__message__free_unpacked(m, NULL);
	return good_check("setup") ? 0 : -1;
}

static int good_health(const char *cas, struct counters *c)
{
	Msg *m = NULL;
	const Muon__Disc__Health *h;

	if (wait_answer(&good, cas, "List HEALTH",
			send_list(&good, MUON__DISC__LIST__WHAT__HEALTH), false,
			&m))
		return -1;
	if (m->kind_case != MUON__DISC__MESSAGE__KIND_LIST_REPLY ||
	    !m->list_reply->health) {
		fail(cas, "List HEALTH: expected a ListReply with Health, saw "
		     "%s", kind_name(m));
		muon__disc__message__free_unpacked(m, NULL);
		return -1;
	}
	h = m->list_reply->health;
	c->protocol_errors = h->protocol_errors;
	c->auth_failures = h->auth_failures;
	c->clients_dropped = h->clients_dropped;
	c->clients = h->clients;
	c->watches = h->watches;
	c->publications = h->publications;
	muon__disc__message__free_unpacked(m, NULL);
	return 0;
}

/* After a request that should have been refused was accepted: read
 * what it pushed to the good client, so later checks start clean. */
static void good_drain(const char *cas, unsigned ms)
{
	char why[256];
	Msg *m = NULL;

	while (peer_read(&good, (int)ms, &m, why, sizeof(why)) == R_MSG) {
		if (m->kind_case == MUON__DISC__MESSAGE__KIND_UPDATE &&
		    m->update->publication)
			note("  [%s] the good client was told: Update kind %d "
			     "topic '%s' stream %u", cas, (int)m->update->kind,
			     m->update->publication->topic,
			     m->update->publication->stream_id);
		muon__disc__message__free_unpacked(m, NULL);
	}
}

/* Wait `ms` while the good client stays served (it would hit the idle
 * timeout otherwise). */
static void pause_serving(const char *cas, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		uint64_t left = end - mono_ms();

		usleep((useconds_t)(left > 300 ? 300 : left) * 1000u);
		good_check(cas);
	}
}

/* ------------------------------------------------------------ cases */

static void case_garbage(void)
{
	static const char *cas = "random garbage";
	uint8_t buf[4096];
	struct peer p;
	size_t i;

	/* Whatever the first four bytes announce, a 4 KiB burst of noise
	 * cannot be a valid frame. */
	if (!peer_open_bare(&p, cas)) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)rnd();
		send_all(p.fd, buf, sizeof(buf));
		expect_fatal(&p, cas, C_BAD_FRAME, C_BAD_VERSION, 0);
	}
	peer_close(&p);
	good_check(cas);

	/* A plausible length prefix, then noise: the Frame decoder itself
	 * must refuse it. */
	cas = "random garbage after a valid length";
	if (!peer_open_bare(&p, cas)) {
		buf[0] = 0;
		buf[1] = 0;
		buf[2] = 0;
		buf[3] = 200;
		for (i = 4; i < 204; i++)
			buf[i] = (uint8_t)rnd();
		buf[4] = 0xff; /* field 31, wire type 7: no such wire type */
		send_all(p.fd, buf, 204);
		expect_fatal(&p, cas, C_BAD_FRAME, C_BAD_VERSION, 0);
	}
	peer_close(&p);
	good_check(cas);
}

static void case_truncated(void)
{
	static const char *cas = "truncated frame then close";
	struct peer p;
	uint8_t body[256];
	Muon__Disc__Hello h = MUON__DISC__HELLO__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	if (!peer_open_bare(&p, cas)) {
		hello_fill(&p, &h, 0x7777, "trunc");
		m.seq = 1;
		m.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
		m.hello = &h;
		if (muoni_disc_pack(&p.out, &m, key, p.dnonce, MAX_FRAME)) {
			fail(cas, "expected to encode a Hello, saw an error");
		} else {
			size_t half = muoni_disc_buf_used(&p.out) / 2;

			memcpy(body, p.out.data, half);
			send_all(p.fd, body, half);
			/* Only our sending side: we still read what the
			 * daemon does about it. */
			shutdown(p.fd, SHUT_WR);
			/* Nothing decodable arrived and the peer is gone:
			 * the daemon just closes, nobody is left to tell. */
			if (expect_fatal(&p, cas, C_NONE, C_NONE, 0) != C_NONE)
				note("  [%s] the daemon answered with an Error "
				     "before closing", cas);
			else
				note("  [%s] closed without an Error (nothing "
				     "decodable arrived)", cas);
		}
	}
	peer_close(&p);
	good_check(cas);
}

static void case_raw_prefix(const char *cas, uint32_t len)
{
	uint8_t pre[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16),
			   (uint8_t)(len >> 8), (uint8_t)len };
	struct peer p;
	uint64_t t0;

	if (!peer_open_bare(&p, cas)) {
		t0 = mono_ms();
		send_all(p.fd, pre, sizeof(pre));
		expect_fatal(&p, cas, C_BAD_FRAME, C_NONE, 0);
		/* A daemon that waited for the announced bytes would only
		 * give up at the idle timeout. */
		if (mono_ms() - t0 > IDLE_MS / 2)
			fail(cas, "expected the Error at once, saw it after "
			     "%" PRIu64 " ms", mono_ms() - t0);
	}
	peer_close(&p);
	good_check(cas);
}

static void case_version2(void)
{
	static const char *cas = "frame version 2";
	uint8_t body[256];
	struct peer p;
	size_t n;

	if (!peer_open_bare(&p, cas)) {
		n = hello_body(&p, body, sizeof(body));
		send_frame(&p, 2, body, n);
		expect_fatal(&p, cas, C_BAD_VERSION, C_NONE, 0);
	}
	peer_close(&p);
	good_check(cas);
}

static void case_body_not_message(void)
{
	static const char *cas = "frame body not a Message";
	/* Field 10 (Welcome), length-delimited, announcing 127 bytes of
	 * which two follow. */
	static const uint8_t body[] = { 0x52, 0x7f, 0x01, 0x02 };
	struct peer p;

	if (!peer_open_bare(&p, cas)) {
		send_frame(&p, 1, body, sizeof(body));
		expect_fatal(&p, cas, C_BAD_FRAME, C_NONE, 0);
	}
	peer_close(&p);
	good_check(cas);
}

static void case_no_kind(void)
{
	static const char *cas = "Message without a kind";
	Msg m = MUON__DISC__MESSAGE__INIT;
	struct peer p;

	if (!peer_open_bare(&p, cas)) {
		m.request_id = 9;
		if (peer_send(&p, &m))
			fail(cas, "expected to send, saw a send error");
		expect_fatal(&p, cas, C_BAD_FRAME, C_NONE, 0);
	}
	peer_close(&p);
	good_check(cas);
}

/* Hello MACed with `k` (NULL: no MAC at all). */
static void case_hello_mac(const char *cas, const uint8_t *k)
{
	Muon__Disc__Hello h = MUON__DISC__HELLO__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	struct peer p;

	if (!peer_open_bare(&p, cas)) {
		hello_fill(&p, &h, 0x8888, "badmac");
		m.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
		m.hello = &h;
		if (peer_send_key(&p, &m, k))
			fail(cas, "expected to send, saw a send error");
		/* Not authenticated: the daemon must not MAC with our
		 * nonce, and the Error is read without a key. */
		expect_fatal(&p, cas, C_AUTH, C_NONE, 0);
	}
	peer_close(&p);
	good_check(cas);
}

/* A valid Hello, then a Renew numbered `seq` instead of 2. */
static void case_seq(const char *cas, uint64_t seq)
{
	Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	struct peer p;

	if (!peer_open(&p, cas, 0, "replay")) {
		m.request_id = 77;
		m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
		m.renew = &r;
		p.tx_seq = seq - 1;
		if (peer_send(&p, &m))
			fail(cas, "expected to send, saw a send error");
		expect_fatal(&p, cas, C_AUTH, C_NONE, 77);
	}
	peer_close(&p);
	good_check(cas);
}

static void case_register_before_hello(void)
{
	static const char *cas = "Register before Hello";
	struct pubspec ps = { "early/topic", 1, { "tcp://127.0.0.1:1" }, 1 };
	struct peer p;
	uint64_t req;

	if (!peer_open_bare(&p, cas)) {
		req = send_register(&p, &ps, 1);
		/* Nothing is authenticated before Hello: the daemon closes. */
		expect_fatal(&p, cas, C_STATE, C_NONE, req);
	}
	peer_close(&p);
	good_check(cas);
}

static void case_register_tool(void)
{
	static const char *cas = "Register with ctx_id 0";
	struct pubspec ps = { "good/watch", 1, { "tcp://127.0.0.1:1" }, 1 };
	struct peer p;

	if (!peer_open(&p, cas, 0, "tool")) {
		expect_nonfatal(&p, cas, send_register(&p, &ps, 1), C_STATE);
		peer_close(&p);
	}
	peer_close(&p);
	good_check(cas);
}

static void case_bad_pubs(void)
{
	static const char *cas = "Register with bad publications";
	char long_topic[301], long_ep[200], name[96];
	struct pubspec bad[8];
	struct pubspec ok = { "good/watch", 5, { "tcp://127.0.0.1:5" }, 1 };
	struct pubspec pair[2];
	struct peer p;
	uint32_t id = 5;
	size_t i;

	memset(long_topic, 'x', 300);
	long_topic[300] = 0;
	memcpy(long_ep, "tcp://", 6);
	memset(long_ep + 6, 'h', sizeof(long_ep) - 6);
	memcpy(long_ep + sizeof(long_ep) - 6, ":7000", 6);
	bad[0] = (struct pubspec){ "", 1, { "tcp://127.0.0.1:1" }, 1 };
	bad[1] = (struct pubspec){ long_topic, 1, { "tcp://127.0.0.1:1" }, 1 };
	bad[2] = (struct pubspec){ "bad/zero-endpoints", 1, { NULL }, 0 };
	bad[3] = (struct pubspec){ "bad/nine-endpoints", 1,
				   { "tcp://127.0.0.1:1", "tcp://127.0.0.1:2",
				     "tcp://127.0.0.1:3", "tcp://127.0.0.1:4",
				     "tcp://127.0.0.1:5", "tcp://127.0.0.1:6",
				     "tcp://127.0.0.1:7", "tcp://127.0.0.1:8",
				     "tcp://127.0.0.1:9" }, 9 };
	bad[4] = (struct pubspec){ "bad/ftp", 1, { "ftp://x" }, 1 };
	bad[5] = (struct pubspec){ "bad/ctl-endpoint", 1,
				   { "tcp://127.0.0.1:1\n" }, 1 };
	/* Control characters are legal in topics (muon.h: any byte but
	 * NUL), so the boundary here is length: one byte over the limit. */
	bad[6] = (struct pubspec){ long_topic + 300 - 256, 1,
				   { "tcp://127.0.0.1:1" }, 1 };
	bad[7] = (struct pubspec){ "bad/long-endpoint", 1, { long_ep }, 1 };
	static const char *what[] = { "empty topic", "300-byte topic",
				      "0 endpoints", "9 endpoints",
				      "endpoint ftp://x",
				      "control character in an endpoint",
				      "256-byte topic",
				      "199-byte endpoint" };

	if (peer_open(&p, cas, 0xbad1, "badpubs")) {
		peer_close(&p);
		good_check(cas);
		return;
	}
	for (i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "%s: %s", cas, what[i]);
		/* Paired with a valid publication on the good client's
		 * topic: a Register is all or nothing, so the good client
		 * must not hear of it. */
		pair[0] = ok;
		pair[1] = bad[i];
		pair[1].stream = 6;
		if (expect_nonfatal(&p, name, send_register(&p, pair, 2),
				    C_BAD_REQUEST)) {
			uint32_t both[2] = { 5, 6 };

			expect_ok(&p, name, "Unregister of what should not "
				  "have been registered",
				  send_unregister(&p, both, 2));
			good_drain(name, 200);
		}
		good_check(name);
	}
	/* Still usable: a valid Register reaches the good client, under
	 * the identity of this connection's Hello. */
	snprintf(name, sizeof(name), "%s: valid Register afterwards", cas);
	if (!expect_ok(&p, name, "Register", send_register(&p, &ok, 1)) &&
	    !good_wait_change(name, "Update of the bad client's valid "
			      "publication", 0, MUON__DISC__UPDATE__KIND__UP,
			      0xbad1, 5) &&
	    !expect_ok(&p, name, "Unregister", send_unregister(&p, &id, 1)))
		good_wait_change(name, "Update of the bad client's valid "
				 "publication", 0,
				 MUON__DISC__UPDATE__KIND__DOWN, 0xbad1, 5);
	peer_close(&p);
	good_check(cas);
}

static void case_watch_reuse(void)
{
	static const char *cas = "watch-id reuse";
	struct peer p;
	Msg *m = NULL;

	if (peer_open(&p, cas, 0, "watcher")) {
		peer_close(&p);
		good_check(cas);
		return;
	}
	if (!wait_answer(&p, cas, "Watch 7", send_watch(&p, 7, "reuse/a",
							false), false, &m)) {
		if (m->kind_case != MUON__DISC__MESSAGE__KIND_SNAPSHOT)
			fail(cas, "Watch 7: expected a Snapshot, saw %s",
			     kind_name(m));
		muon__disc__message__free_unpacked(m, NULL);
	}
	expect_nonfatal(&p, cas, send_watch(&p, 7, "reuse/b", true),
			C_BAD_REQUEST);
	expect_nonfatal(&p, "Unwatch of an unknown id", send_unwatch(&p, 99),
			C_BAD_REQUEST);
	expect_nonfatal(&p, "Watch with an empty exact topic",
			send_watch(&p, 8, "", false), C_BAD_REQUEST);
	expect_ok(&p, cas, "Unwatch 7", send_unwatch(&p, 7));
	if (!wait_answer(&p, cas, "Watch 7 after Unwatch",
			 send_watch(&p, 7, "reuse/b", true), false, &m)) {
		if (m->kind_case != MUON__DISC__MESSAGE__KIND_SNAPSHOT)
			fail(cas, "Watch 7 after Unwatch: expected a Snapshot, "
			     "saw %s", kind_name(m));
		muon__disc__message__free_unpacked(m, NULL);
	}
	peer_close(&p);
	good_check(cas);
}

/* Bytes of a valid frame, one per second: the idle timeout counts
 * complete messages, not bytes. One client mid-Hello, one mid-Renew. */
static void case_slowloris(void)
{
	static const char *cas[2] = { "slowloris after Hello",
				      "slowloris during Hello" };
	Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;
	Muon__Disc__Hello h = MUON__DISC__HELLO__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;
	struct peer p[2];
	uint64_t t0[2], cut[2] = { 0, 0 }, start, last_byte = 0;
	size_t sent[2] = { 0, 0 };
	int i;

	if (peer_open(&p[0], cas[0], 0, "slow")) {
		peer_close(&p[0]);
		return;
	}
	t0[0] = mono_ms();
	if (peer_open_bare(&p[1], cas[1])) {
		peer_close(&p[0]);
		peer_close(&p[1]);
		return;
	}
	t0[1] = mono_ms();
	m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
	m.renew = &r;
	m.seq = ++p[0].tx_seq;
	muoni_disc_pack(&p[0].out, &m, key, p[0].dnonce, MAX_FRAME);
	hello_fill(&p[1], &h, 0x5105, "slow2");
	m.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
	m.hello = &h;
	m.seq = ++p[1].tx_seq;
	muoni_disc_pack(&p[1].out, &m, key, p[1].dnonce, MAX_FRAME);

	start = mono_ms();
	while ((!cut[0] || !cut[1]) && mono_ms() - start < IDLE_MS + 4000) {
		struct pollfd pfd[2] = { { .fd = p[0].fd, .events = POLLIN },
					 { .fd = p[1].fd, .events = POLLIN } };

		if (mono_ms() - last_byte >= 1000) {
			last_byte = mono_ms();
			for (i = 0; i < 2; i++)
				if (!cut[i] && sent[i] + 1 <
					       muoni_disc_buf_used(&p[i].out) &&
				    send(p[i].fd, p[i].out.data + sent[i], 1,
					 MSG_NOSIGNAL) == 1)
					sent[i]++;
		}
		for (i = 0; i < 2; i++)
			if (cut[i])
				pfd[i].fd = -1;
		if (poll(pfd, 2, 150) > 0)
			for (i = 0; i < 2; i++)
				if (pfd[i].revents && !cut[i])
					cut[i] = mono_ms();
		good_check("slowloris (meanwhile)");
	}
	for (i = 0; i < 2; i++) {
		expect_fatal(&p[i], cas[i], C_IDLE, C_NONE, 0);
		if (!cut[i])
			continue;
		note("  [%s] cut after %" PRIu64 " ms, %zu bytes trickled in",
		     cas[i], cut[i] - t0[i], sent[i]);
		if (sent[i] < 2)
			fail(cas[i], "expected bytes to keep arriving before "
			     "the cut, saw %zu sent", sent[i]);
		/* Not before the timeout (a tick late is fine); not much
		 * after it, although bytes kept arriving. */
		if (cut[i] - t0[i] + 50 < IDLE_MS ||
		    cut[i] - t0[i] > IDLE_MS + 1500)
			fail(cas[i], "expected the cut %u ms after the last "
			     "complete message, saw %" PRIu64 " ms", IDLE_MS,
			     cut[i] - t0[i]);
	}
	good_check(cas[0]);
}

/*
 * A client watching the same prefix 50 times that never reads, while
 * another registers 200 publications there: 10,000 Updates, far beyond
 * the 256 KiB output limit. The daemon must cut it with OVERLOADED and
 * the stream up to there must still be whole, numbered frames.
 */
static void case_overload(void)
{
	static const char *cas = "client that never reads";
	static char topics[200][24];
	struct pubspec ps[200];
	struct peer slow, fl;
	uint32_t ids[200];
	unsigned updates = 0, others = 0, w;
	int seen = C_NONE;
	uint64_t t0;
	char why[256];
	Msg *m = NULL;
	size_t i;

	n_checks++;
	if (peer_open_buf(&slow, cas, 0, "never-reads", 4096)) {
		peer_close(&slow);
		return;
	}
	for (w = 1; w <= 50; w++) {
		if (wait_answer(&slow, cas, "Watch flood/", send_watch(&slow, w,
				"flood/", true), false, &m)) {
			peer_close(&slow);
			return;
		}
		muon__disc__message__free_unpacked(m, NULL);
	}
	if (peer_open(&fl, cas, 0xf100d, "flooder")) {
		peer_close(&slow);
		peer_close(&fl);
		return;
	}
	for (i = 0; i < 200; i++) {
		snprintf(topics[i], sizeof(topics[i]), "flood/t%zu", i % 7);
		ps[i] = (struct pubspec){ topics[i], (uint32_t)i + 1,
					  { "tcp://127.0.0.1:4000",
					    "shm://flood-endpoint-name" }, 2 };
		ids[i] = (uint32_t)i + 1;
	}
	t0 = mono_ms();
	expect_ok(&fl, cas, "flooder Register", send_register(&fl, ps, 200));
	/* The daemon gives a cut client MUOND_LINGER_MS to take its Error:
	 * read now. */
	for (;;) {
		int rc = peer_read(&slow, ANSWER_MS, &m, why, sizeof(why));

		if (rc == R_EOF)
			break;
		if (rc != R_MSG) {
			fail(cas, "expected Updates, an Error OVERLOADED and a "
			     "close, saw %s after %u Updates",
			     rc == R_TIMEOUT ? "nothing more" : why, updates);
			break;
		}
		if (seen != C_NONE) {
			fail(cas, "expected the connection closed after the "
			     "fatal Error, saw %s", kind_name(m));
		} else if (m->kind_case == MUON__DISC__MESSAGE__KIND_UPDATE) {
			updates++;
		} else if (m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR) {
			seen = (int)m->error->code;
			note("  [%s] Error %s \"%s\" after %u Updates, %" PRIu64
			     " ms after the Register", cas, code_name(seen),
			     m->error->reason, updates, mono_ms() - t0);
			if (seen != C_OVERLOADED || !m->error->fatal)
				fail(cas, "expected Error OVERLOADED fatal, saw "
				     "%s %s", code_name(seen),
				     m->error->fatal ? "fatal" : "non-fatal");
		} else {
			others++;
		}
		muon__disc__message__free_unpacked(m, NULL);
	}
	if (seen == C_NONE)
		fail(cas, "expected Error OVERLOADED then a close, saw a close "
		     "without an Error%s after %u Updates",
		     slow.reset ? " (reset)" : "", updates);
	else
		expect.clients_dropped++;
	if (others)
		fail(cas, "expected only Updates before the Error, saw %u "
		     "other messages", others);
	if (updates >= 200u * 50u)
		fail(cas, "expected the cut before all 10000 Updates were "
		     "sent, saw all of them");
	if (muoni_disc_buf_used(&slow.in))
		fail(cas, "expected whole frames, saw the connection end "
		     "inside a frame (%zu bytes)", muoni_disc_buf_used(&slow.in));
	/* Updates dropped when the client was cut must not leave a hole
	 * in the numbering: a client (core/disc.c) checks seq before
	 * anything else and would report a replay instead of the Error. */
	if (slow.seq_err[0])
		fail(cas, "expected the OVERLOADED Error numbered right after "
		     "the last Update delivered, saw: %s", slow.seq_err);
	peer_close(&slow);
	expect_ok(&fl, cas, "flooder Unregister", send_unregister(&fl, ids,
								  200));
	peer_close(&fl);
	good_check(cas);
}

/* ------------------------------------------------------------ idle flood */

struct idle_conn {
	int fd;
	bool closed, reset;
	uint16_t len;
	uint64_t t_open, t_close;
	uint8_t buf[240];
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* Welcome then Error IDLE, decoded from what one idle connection got. */
static int idle_decode(const struct idle_conn *c)
{
	struct muoni_disc_buf b = { .data = (uint8_t *)c->buf, .len = c->len,
				    .cap = c->len };
	int kinds = 0, code;

	for (;;) {
		const uint8_t *f;
		size_t len;
		Msg *m = NULL;
		char err[200];
		int rc = muoni_disc_next(&b, MAX_FRAME, &f, &len);

		if (rc <= 0) {
			muoni_err_clear();
			break;
		}
		if (muoni_disc_unpack(f, len, NULL, NULL, &m, &code, err,
				      sizeof(err)))
			return -1;
		if (kinds == 0 && m->kind_case == MUON__DISC__MESSAGE__KIND_WELCOME)
			kinds = 1;
		else if (kinds == 1 &&
			 m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR &&
			 m->error->code == C_IDLE && m->error->fatal)
			kinds = 2;
		else
			kinds = -1;
		muon__disc__message__free_unpacked(m, NULL);
		b.off += MUONI_DISC_LEN_BYTES + len;
		if (kinds < 0)
			return -1;
	}
	return b.off == b.len && kinds == 2 ? 0 : -1;
}

static void case_idle_flood(unsigned long rss_base)
{
	static const char *cas = "10000 idle connections";
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct idle_conn *cs = calloc(N_IDLE, sizeof(*cs));
	struct pollfd *pfd = calloc(N_IDLE, sizeof(*pfd));
	uint64_t *lat = calloc(4096, sizeof(*lat)), *life = NULL;
	size_t n_lat = 0, n_life = 0;
	unsigned long rss_peak = 0, rss_open = 0, rss_gone, kb;
	unsigned n_open = 0, n_closed = 0, n_ok = 0, n_bad = 0, n_early = 0;
	uint64_t t_start, t_opened = 0, last_check = 0, last_rss = 0, dt;
	struct rlimit rl;
	int i;

	n_checks++;
	if (!cs || !pfd || !lat) {
		fail(cas, "expected memory for the test, saw none");
		goto free_arrays;
	}
	life = calloc(N_IDLE, sizeof(*life));
	if (!life)
		goto free_arrays;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < N_IDLE + 256 && rl.rlim_max >= N_IDLE + 256) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < N_IDLE + 256) {
		fail(cas, "expected a descriptor limit of %d, saw %llu (hard "
		     "limit too low)", N_IDLE + 256,
		     (unsigned long long)rl.rlim_cur);
		goto free_arrays;
	}
	sa.sin_port = htons(daemon_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	/* All at once: connects do not wait for the daemon's accepts. */
	t_start = mono_ms();
	for (i = 0; i < N_IDLE; i++) {
		struct idle_conn *c = &cs[i];

		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
					    SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			fail(cas, "expected socket %d, saw %s", i,
			     strerror(errno));
			c->closed = true;
			continue;
		}
		if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) &&
		    errno != EINPROGRESS) {
			fail(cas, "expected connect %d to start, saw %s", i,
			     strerror(errno));
			close(c->fd);
			c->fd = -1;
			c->closed = true;
			continue;
		}
		c->t_open = mono_ms();
		n_open++;
		if (!(i % 500) && mono_ms() - last_check >= 250) {
			dt = good_check("10000 idle connections (opening)");
			if (dt && n_lat < 4096)
				lat[n_lat++] = dt;
			last_check = mono_ms();
		}
	}
	t_opened = mono_ms();
	note("  [%s] %u connects started in %" PRIu64 " ms", cas, n_open,
	     t_opened - t_start);

	/* Each must get a Welcome, then IDLE at the timeout, then a close;
	 * the good client is served meanwhile. */
	while (n_closed < n_open &&
	       mono_ms() - t_opened < IDLE_MS + 10000) {
		int n = 0, rc;

		for (i = 0; i < N_IDLE; i++) {
			if (cs[i].closed)
				continue;
			pfd[n].fd = cs[i].fd;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			n++;
		}
		rc = poll(pfd, (nfds_t)n, 100);
		for (i = 0, n = 0; rc > 0 && i < N_IDLE; i++) {
			struct idle_conn *c = &cs[i];
			ssize_t k;

			if (c->closed)
				continue;
			if (!pfd[n++].revents)
				continue;
			k = recv(c->fd, c->buf + c->len,
				 sizeof(c->buf) - c->len, MSG_DONTWAIT);
			if (k > 0) {
				c->len += (uint16_t)k;
				if (c->len < sizeof(c->buf))
					continue;
			} else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
				continue;
			} else if (k < 0) {
				c->reset = true;
			}
			c->closed = true;
			c->t_close = mono_ms();
			n_closed++;
		}
		if (mono_ms() - last_check >= 250) {
			dt = good_check("10000 idle connections (open)");
			if (dt && n_lat < 4096)
				lat[n_lat++] = dt;
			last_check = mono_ms();
			if (good.closed)
				break;
		}
		if (mono_ms() - last_rss >= 200) {
			kb = daemon_rss_kb();
			if (kb > rss_peak)
				rss_peak = kb;
			if (!rss_open && n_closed == 0 &&
			    mono_ms() - t_opened > 500)
				rss_open = kb;
			last_rss = mono_ms();
		}
	}
	for (i = 0; i < N_IDLE; i++) {
		struct idle_conn *c = &cs[i];

		if (c->fd < 0)
			continue;
		if (!c->closed) {
			n_bad++;
		} else if (c->reset || idle_decode(c)) {
			if (n_bad++ < 5)
				fail(cas, "connection %d: expected Welcome, "
				     "Error IDLE fatal and a close, saw %u "
				     "bytes%s", i, c->len,
				     c->reset ? " and a reset" : "");
		} else {
			n_ok++;
			life[n_life++] = c->t_close - c->t_open;
			if (c->t_close - c->t_open + 50 < IDLE_MS)
				n_early++;
		}
		close(c->fd);
	}
	expect.clients_dropped += n_ok;
	qsort(life, n_life, sizeof(*life), cmp_u64);
	note("  [%s] %u opened, %u closed by the daemon with IDLE, %u "
	     "not; connection lifetime ms: min %" PRIu64 " p50 %" PRIu64
	     " max %" PRIu64, cas, n_open, n_ok, n_bad, pct(life, n_life, 0),
	     pct(life, n_life, 0.5), pct(life, n_life, 1));
	if (n_ok != n_open)
		fail(cas, "expected all %u connections closed with Error IDLE "
		     "by the idle timeout (%u ms), saw %u (%u still open "
		     "after %u ms)", n_open, IDLE_MS, n_ok, n_open - n_closed,
		     IDLE_MS + 10000);
	if (n_early)
		fail(cas, "expected no connection cut before %u ms, saw %u",
		     IDLE_MS, n_early);
	qsort(lat, n_lat, sizeof(*lat), cmp_u64);
	note("  [%s] good client meanwhile: %zu checks (Renew + Register + "
	     "Unregister round trips), us: p50 %" PRIu64 " p90 %" PRIu64
	     " max %" PRIu64, cas, n_lat, pct(lat, n_lat, 0.5),
	     pct(lat, n_lat, 0.9), pct(lat, n_lat, 1));
	if (n_lat < 3)
		fail(cas, "expected the good client served throughout, saw "
		     "%zu checks", n_lat);

	/* Let the daemon free what the last ones held. */
	pause_serving(cas, 500);
	rss_gone = daemon_rss_kb();
	note("  [%s] daemon VmRSS kB: baseline %lu, with the connections "
	     "open %lu (peak %lu), after they are gone %lu", cas, rss_base,
	     rss_open, rss_peak, rss_gone);
	if (rss_gone > rss_base + RSS_GROWTH_MAX_KB)
		fail(cas, "expected VmRSS at most %u kB over the baseline "
		     "after the connections are gone, saw %lu -> %lu kB",
		     RSS_GROWTH_MAX_KB, rss_base, rss_gone);
free_arrays:
	free(life);
	free(lat);
	free(pfd);
	free(cs);
	good_check(cas);
}

/* ------------------------------------------------------------ daemon */

static void log_tail(void)
{
	char line[512];
	FILE *f = fopen(log_path, "re");
	long n = 0, skip;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		n++;
	rewind(f);
	skip = n > 40 ? n - 40 : 0;
	fprintf(stdout, "--- last lines of the daemon's log (%s) ---\n",
		log_path);
	while (fgets(line, sizeof(line), f))
		if (skip-- <= 0)
			fputs(line, stdout);
	fclose(f);
}

static int write_secret(void)
{
	uint8_t raw[32];
	char hex[65];
	int fd, rc = -1;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	fd = open(secret_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, hex, 64) == 64)
		rc = 0;
	close(fd);
	if (!rc && muoni_secret_load(secret_path, key)) {
		fprintf(stderr, "hostile: %s\n", muoni_err_msg());
		rc = -1;
	}
	return rc;
}

static int daemon_start(const char *muond)
{
	int out[2], lfd;
	char line[256] = "", *p;
	size_t used = 0;
	uint64_t t0 = mono_ms();
	unsigned port;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/muon-hostile.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(secret_path, sizeof(secret_path), "%s/secret", tmpdir);
	snprintf(log_path, sizeof(log_path), "%s/muond.log", tmpdir);
	if (write_secret())
		return -1;
	if (pipe2(out, O_CLOEXEC))
		return -1;
	lfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (lfd < 0)
		goto close_pipe;
	daemon_pid = fork();
	if (daemon_pid < 0)
		goto close_log;
	if (!daemon_pid) {
		dup2(out[1], STDOUT_FILENO);
		dup2(lfd, STDERR_FILENO);
		execl(muond, "muond", "--listen", "tcp://127.0.0.1:0",
		      "--name", "hostile", "--secret-file", secret_path,
		      "--idle-timeout-ms", "2000", "--max-frame", "65536",
		      "--max-output", "256K", (char *)NULL);
		_exit(127);
	}
	close(lfd);
	close(out[1]);
	/* ASan builds take a moment to start. */
	while (!strchr(line, '\n') && mono_ms() - t0 < 15000) {
		struct pollfd pfd = { .fd = out[0], .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		n = read(out[0], line + used, sizeof(line) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		line[used] = 0;
	}
	close(out[0]);
	p = strstr(line, "listening tcp://127.0.0.1:");
	if (!p || sscanf(p + strlen("listening tcp://127.0.0.1:"), "%u",
			 &port) != 1 || !port || port > 65535) {
		fprintf(stdout, "hostile: muond did not say where it listens "
			"(stdout: '%s')\n", line);
		return -1;
	}
	daemon_port = (uint16_t)port;
	return 0;
close_log:
	close(lfd);
close_pipe:
	close(out[0]);
	close(out[1]);
	return -1;
}

/* SIGTERM, and the exit status: a sanitizer build reports leaks and
 * errors through it. */
static int daemon_stop(void)
{
	uint64_t t0 = mono_ms();
	int st = 0;

	if (daemon_pid <= 0)
		return 0;
	kill(daemon_pid, SIGTERM);
	while (waitpid(daemon_pid, &st, WNOHANG) == 0) {
		if (mono_ms() - t0 > 15000) {
			kill(daemon_pid, SIGKILL);
			waitpid(daemon_pid, &st, 0);
			fail("shutdown", "expected muond to exit within 15 s of "
			     "SIGTERM, saw it still running");
			daemon_pid = -1;
			return -1;
		}
		usleep(20000);
	}
	daemon_pid = -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fail("shutdown", "expected muond to exit with status 0 after "
		     "SIGTERM, saw %s %d", WIFEXITED(st) ? "status" : "signal",
		     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ main */

static void check_counters(const struct counters *base)
{
	static const char *cas = "Health counters";
	struct counters now = { 0 };
	uint64_t t0 = mono_ms();

	/* Closed connections go as soon as the daemon sees the close. */
	do {
		if (good_health(cas, &now))
			return;
		if (now.clients == 1 && now.watches == 1)
			break;
		usleep(100000);
	} while (mono_ms() - t0 < 3000);
	note("  [%s] moved: protocol_errors +%" PRIu64 " (expected +%" PRIu64
	     "), auth_failures +%" PRIu64 " (expected +%" PRIu64 "), "
	     "clients_dropped +%" PRIu64 " (expected +%" PRIu64 "); now %u "
	     "clients, %u watches, %u publications", cas,
	     now.protocol_errors - base->protocol_errors,
	     expect.protocol_errors,
	     now.auth_failures - base->auth_failures, expect.auth_failures,
	     now.clients_dropped - base->clients_dropped,
	     expect.clients_dropped, now.clients, now.watches,
	     now.publications);
	if (now.protocol_errors - base->protocol_errors !=
	    expect.protocol_errors)
		fail(cas, "expected protocol_errors +%" PRIu64 ", saw +%" PRIu64,
		     expect.protocol_errors,
		     now.protocol_errors - base->protocol_errors);
	if (now.auth_failures - base->auth_failures != expect.auth_failures)
		fail(cas, "expected auth_failures +%" PRIu64 ", saw +%" PRIu64,
		     expect.auth_failures,
		     now.auth_failures - base->auth_failures);
	if (now.clients_dropped - base->clients_dropped !=
	    expect.clients_dropped)
		fail(cas, "expected clients_dropped +%" PRIu64 ", saw +%" PRIu64,
		     expect.clients_dropped,
		     now.clients_dropped - base->clients_dropped);
	if (now.clients != 1 || now.watches != 1 || now.publications != 5)
		fail(cas, "expected only the good client left (1 client, 1 "
		     "watch, 5 publications), saw %u clients, %u watches, "
		     "%u publications", now.clients, now.watches,
		     now.publications);
}

int main(int argc, char **argv)
{
	struct counters base = { 0 };
	uint8_t wrong[32];
	unsigned long rss_base;
	uint64_t t0 = mono_ms();
	int status = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH_TO_MUOND\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 2;
	good.fd = -1;
	if (daemon_start(argv[1]))
		goto stop_daemon;
	note("muond pid %d on 127.0.0.1:%u (idle timeout %u ms, max_frame "
	     "%u, max_output %u)", (int)daemon_pid, daemon_port, IDLE_MS,
	     MAX_FRAME, MAX_OUTPUT);
	if (good_setup() || good_health("setup", &base))
		goto stop_daemon;
	rss_base = daemon_rss_kb();
	status = 1;

	memcpy(wrong, key, sizeof(wrong));
	wrong[0] ^= 1;
	case_garbage();
	case_truncated();
	case_raw_prefix("length prefix above max_frame", MAX_FRAME + 1);
	case_raw_prefix("length prefix 0xffffffff", 0xffffffffu);
	case_raw_prefix("length prefix 0", 0);
	case_version2();
	case_body_not_message();
	case_no_kind();
	case_hello_mac("Hello with a wrong MAC", wrong);
	case_hello_mac("Hello without a MAC", NULL);
	case_seq("replayed seq after Hello", 1);
	case_seq("skipped seq after Hello", 3);
	case_register_before_hello();
	case_register_tool();
	case_bad_pubs();
	case_watch_reuse();
	if (good.closed)
		goto report;
	case_slowloris();
	case_overload();
	if (good.closed)
		goto report;
	case_idle_flood(rss_base);
	if (good.closed)
		goto report;
	check_counters(&base);

report:
	if (good.closed)
		fail("good client", "expected it served to the end, saw the "
		     "daemon close its connection");
	if (n_good_lat) {
		qsort(good_lat, n_good_lat, sizeof(good_lat[0]), cmp_u64);
		note("good client: %zu checks, round trip of Renew + Register "
		     "+ Unregister (us): p50 %" PRIu64 " p99 %" PRIu64 " max %"
		     PRIu64, n_good_lat, pct(good_lat, n_good_lat, 0.5),
		     pct(good_lat, n_good_lat, 0.99),
		     pct(good_lat, n_good_lat, 1));
	}
stop_daemon:
	peer_close(&good);
	if (daemon_stop() && status != 2)
		status = 1;
	if (n_fail || status == 2)
		log_tail();
	if (status != 2)
		status = n_fail ? 1 : 0;
	note("%s: %u checks, %u failures, %.1f s", status ? "FAILED" : "PASSED",
	     n_checks, n_fail, (double)(mono_ms() - t0) / 1000.0);
	if (!status) {
		unlink(secret_path);
		unlink(log_path);
		rmdir(tmpdir);
	}
	return status;
}
