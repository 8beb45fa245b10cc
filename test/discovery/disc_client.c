/*
 * disc-client: a scriptable discovery client for tests. It connects to one
 * muond, does the handshake through the shared codec (proto/disc.c) and
 * runs the ACTIONs of its command line in order, each waiting for its
 * reply, printing one line per event on stdout so a shell test can wait
 * for and match them. While it runs it renews its lease every lease_ms/3,
 * like a muon context does.
 *
 *   disc-client [-d ADDR] [-s SECRET_FILE] [-c CTX_ID] [-n NAME]
 *               [-t TIMEOUT_MS] ACTION...
 *
 * ACTIONs:
 *   register TOPIC STREAM EP[,EP...]   one publication, one Register
 *   register-n N PREFIX EP[,EP...]     N publications PREFIX.0 ..
 *                                      PREFIX.<N-1>, streams 1..N, one
 *                                      Register
 *   unregister STREAM
 *   watch TOPIC | watch-prefix PREFIX  watch ids count from 1
 *   unwatch WATCH_ID
 *   list topics|publications|watchers|health   prints the item count
 *   renew
 *   hold MS                            stay connected MS ms
 *   hold-stdin                         stay connected until stdin closes
 *
 * Output lines (fields separated by one space; free text last):
 *   WELCOME NAME LEASE_MS AUTH_REQUIRED
 *   OK ACTION                          Ok (register, unregister, ...)
 *   ERROR ACTION CODE fatal|nonfatal REASON
 *   SNAPSHOT WATCH_ID COUNT            after the last part
 *   PUB WATCH_ID TOPIC STREAM CTX_ID ENDPOINTS
 *   LIST WHAT COUNT
 *   UPDATE WATCH_ID UP|DOWN TOPIC STREAM CTX_ID REASON
 *   HOLD MS | HOLD stdin, then DONE when all actions are finished
 *
 * Exit status: 0 every action got its answer and none was an Error, 1 an
 * Error answered some action, 2 usage, 3 the connection or the protocol
 * failed (reason on stderr).
 *
 * ADDR defaults to 127.0.0.1:7440, CTX_ID to a random nonzero id (0 is
 * allowed, to test that a tool cannot register), NAME to "disc-client".
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

#define PROG "disc-client"
#define EXIT_ERROR_REPLY 1
#define EXIT_USAGE 2
#define EXIT_FAILED 3

static int fd = -1;
static struct muoni_disc_buf in;
static uint8_t key[32], my_nonce[MUONI_DISC_NONCE_LEN];
static uint8_t their_nonce[MUONI_DISC_NONCE_LEN];
static bool have_key;
static uint64_t tx_seq, rx_seq, next_request = 1, next_watch = 1;
static uint32_t lease_ms = 5000, max_frame = MUONI_DISC_MAX_FRAME_DEFAULT;
static uint64_t ctx_id;
static uint64_t renew_at; /* ms; 0 = no lease to renew */
static uint32_t timeout_ms = 5000;
static int status;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						      noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILED);
}

static void usage(void)
{
	fputs("usage: " PROG " [-d ADDR] [-s SECRET_FILE] [-c CTX_ID] "
	      "[-n NAME] [-t TIMEOUT_MS] ACTION...\n"
	      "(see the comment at the top of disc_client.c)\n",
	      stderr);
	exit(EXIT_USAGE);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t num(const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		usage();
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		usage();
	return v;
}

/* ------------------------------------------------------------ wire */

static void send_msg(Muon__Disc__Message *m)
{
	struct muoni_disc_buf out = { 0 };
	size_t off = 0;
	ssize_t n;

	m->seq = ++tx_seq;
	if (muoni_disc_pack(&out, m, have_key ? key : NULL, their_nonce,
			    max_frame))
		die("encode: %s", muoni_err_msg());
	while (off < out.len) {
		n = send(fd, out.data + off, out.len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("send: %s", strerror(errno));
		off += (size_t)n;
	}
	muoni_disc_buf_fini(&out);
}

/* The next message, or NULL when `deadline` (ms) passes first. */
static Muon__Disc__Message *recv_msg(uint64_t deadline, bool welcome)
{
	for (;;) {
		const uint8_t *f;
		size_t len;
		int rc = muoni_disc_next(&in, MUONI_DISC_MAX_FRAME_MAX, &f,
					 &len);

		if (rc < 0)
			die("bad frame from the daemon: %s", muoni_err_msg());
		if (rc) {
			Muon__Disc__Message *m = NULL;
			char err[256];
			int code;

			if (muoni_disc_unpack(f, len,
					      welcome || !have_key ? NULL : key,
					      my_nonce, &m, &code, err,
					      sizeof(err)))
				die("bad message from the daemon (%s): %s",
				    muoni_disc_code_name(code), err);
			muoni_disc_buf_consume(&in, MUONI_DISC_LEN_BYTES + len);
			if (m->seq != rx_seq + 1)
				die("daemon seq %" PRIu64 ", want %" PRIu64,
				    m->seq, rx_seq + 1);
			rx_seq = m->seq;
			return m;
		}

		uint64_t now = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (now >= deadline)
			return NULL;
		rc = poll(&p, 1, (int)(deadline - now));
		if (rc < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (rc <= 0)
			continue;
		if (muoni_disc_buf_reserve(&in, 65536))
			die("out of memory");
		n = recv(fd, in.data + in.len, in.cap - in.len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("recv: %s", strerror(errno));
		if (n == 0)
			die("the daemon closed the connection");
		in.len += (size_t)n;
	}
}

static void print_pub(uint64_t watch, const Muon__Disc__Publication *p)
{
	size_t i;

	printf("PUB %" PRIu64 " %s %" PRIu32 " %016" PRIx64 " ", watch,
	       p->topic, p->stream_id, p->ctx_id);
	for (i = 0; i < p->n_endpoints; i++)
		printf("%s%s", i ? "," : "", p->endpoints[i]);
	putchar('\n');
}

/* Something the daemon sent on its own: an Update. */
static void unsolicited(const Muon__Disc__Message *m)
{
	const Muon__Disc__Update *u;
	const Muon__Disc__Publication *p;

	if (m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR &&
	    m->error->fatal)
		die("fatal error from the daemon: %s: %s",
		    muoni_disc_code_name((int)m->error->code),
		    m->error->reason);
	if (m->kind_case != MUON__DISC__MESSAGE__KIND_UPDATE)
		die("unexpected message of kind %d (request %" PRIu64 ")",
		    (int)m->kind_case, m->request_id);
	u = m->update;
	p = u->publication;
	printf("UPDATE %" PRIu64 " %s %s %" PRIu32 " %016" PRIx64 " %s\n",
	       u->watch_id,
	       u->kind == MUON__DISC__UPDATE__KIND__UP     ? "UP"
	       : u->kind == MUON__DISC__UPDATE__KIND__DOWN ? "DOWN"
							   : "?",
	       p ? p->topic : "-", p ? p->stream_id : 0, p ? p->ctx_id : 0,
	       u->reason);
	fflush(stdout);
}

static void send_renew(uint64_t request_id)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;

	m.request_id = request_id;
	m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
	m.renew = &r;
	send_msg(&m);
}

/*
 * Wait for the answer to `request_id` (0: none, just pass time until
 * `until`), handling updates and renewals on the way. Returns the answer,
 * which the caller frees, or NULL when waiting for nothing.
 */
static Muon__Disc__Message *await(uint64_t request_id, uint64_t until)
{
	static uint64_t renew_pending; /* request id of our own Renew */
	uint64_t give_up = request_id ? now_ms() + timeout_ms : until;

	for (;;) {
		uint64_t now = now_ms(), deadline = give_up;
		Muon__Disc__Message *m;

		if (renew_at && now >= renew_at && !renew_pending) {
			renew_pending = next_request++;
			send_renew(renew_pending);
			renew_at = now + lease_ms / 3;
		}
		if (renew_at > now && renew_at < deadline)
			deadline = renew_at;
		m = recv_msg(deadline, false);
		if (!m) {
			if (now_ms() < give_up)
				continue;
			if (request_id)
				die("no answer to request %" PRIu64 " in %u ms",
				    request_id, timeout_ms);
			return NULL;
		}
		if (renew_pending && m->request_id == renew_pending) {
			if (m->kind_case != MUON__DISC__MESSAGE__KIND_OK)
				die("lease renewal refused");
			renew_pending = 0;
			muon__disc__message__free_unpacked(m, NULL);
			continue;
		}
		if (request_id && m->request_id == request_id &&
		    m->kind_case != MUON__DISC__MESSAGE__KIND_UPDATE)
			return m;
		unsolicited(m);
		muon__disc__message__free_unpacked(m, NULL);
	}
}

/* Ok or Error for a simple request: print it, note the outcome. */
static void simple_reply(const char *action, Muon__Disc__Message *m)
{
	if (m->kind_case == MUON__DISC__MESSAGE__KIND_OK) {
		printf("OK %s\n", action);
	} else if (m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR) {
		printf("ERROR %s %s %s %s\n", action,
		       muoni_disc_code_name((int)m->error->code),
		       m->error->fatal ? "fatal" : "nonfatal",
		       m->error->reason);
		status = EXIT_ERROR_REPLY;
		if (m->error->fatal) {
			fflush(stdout);
			exit(status);
		}
	} else {
		die("%s: answered by a message of kind %d", action,
		    (int)m->kind_case);
	}
	fflush(stdout);
	muon__disc__message__free_unpacked(m, NULL);
}

static void request(const char *action, Muon__Disc__Message *m)
{
	m->request_id = next_request++;
	send_msg(m);
	simple_reply(action, await(m->request_id, 0));
}

/* ------------------------------------------------------------ actions */

/* Comma-separated endpoints; *copy holds the strings, free it after. */
static char **split_endpoints(const char *list, size_t *n, char **copy)
{
	char *save = NULL, *tok;
	char **eps = calloc(MUONI_DISC_MAX_ENDPOINTS * 2 + 1, sizeof(*eps));

	*copy = strdup(list);
	if (!*copy || !eps)
		die("out of memory");
	*n = 0;
	/* More than the protocol allows is allowed here: tests send it. */
	for (tok = strtok_r(*copy, ",", &save);
	     tok && *n < MUONI_DISC_MAX_ENDPOINTS * 2;
	     tok = strtok_r(NULL, ",", &save))
		eps[(*n)++] = tok;
	return eps;
}

static void do_register(const char *prefix, uint32_t count, uint32_t stream,
			const char *eplist, bool numbered)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Register r = MUON__DISC__REGISTER__INIT;
	Muon__Disc__Publication *pubs = calloc(count ? count : 1, sizeof(*pubs));
	Muon__Disc__Publication **pp = calloc(count ? count : 1, sizeof(*pp));
	char **topics = calloc(count ? count : 1, sizeof(*topics));
	size_t neps, i;
	char *eptext;
	char **eps = split_endpoints(eplist, &neps, &eptext);

	if (!pubs || !pp || !topics)
		die("out of memory");
	for (i = 0; i < count; i++) {
		muon__disc__publication__init(&pubs[i]);
		if (numbered) {
			if (asprintf(&topics[i], "%s.%zu", prefix, i) < 0)
				die("out of memory");
		} else {
			topics[i] = strdup(prefix);
		}
		pubs[i].topic = topics[i];
		pubs[i].stream_id = stream + (uint32_t)i;
		pubs[i].n_endpoints = neps;
		pubs[i].endpoints = eps;
		pp[i] = &pubs[i];
	}
	r.n_publications = count;
	r.publications = pp;
	m.kind_case = MUON__DISC__MESSAGE__KIND_REGISTER;
	m.register_ = &r;
	request(numbered ? "register-n" : "register", &m);
	/* The lease runs from the first Register: keep it alive. */
	if (!renew_at && ctx_id)
		renew_at = now_ms() + lease_ms / 3;
	for (i = 0; i < count; i++)
		free(topics[i]);
	free(topics);
	free(pp);
	free(pubs);
	free(eptext);
	free(eps);
}

static void do_watch(const char *topic, bool prefix)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Watch w = MUON__DISC__WATCH__INIT;
	uint64_t id = next_watch++, total = 0;

	w.watch_id = id;
	w.topic = (char *)topic;
	w.prefix = prefix;
	m.kind_case = MUON__DISC__MESSAGE__KIND_WATCH;
	m.watch = &w;
	m.request_id = next_request++;
	send_msg(&m);
	for (;;) {
		Muon__Disc__Message *r = await(m.request_id, 0);
		bool last;
		size_t i;

		if (r->kind_case != MUON__DISC__MESSAGE__KIND_SNAPSHOT) {
			simple_reply(prefix ? "watch-prefix" : "watch", r);
			return;
		}
		if (r->snapshot->watch_id != id)
			die("snapshot for watch %" PRIu64 ", want %" PRIu64,
			    r->snapshot->watch_id, id);
		for (i = 0; i < r->snapshot->n_publications; i++)
			print_pub(id, r->snapshot->publications[i]);
		total += r->snapshot->n_publications;
		last = r->snapshot->last;
		muon__disc__message__free_unpacked(r, NULL);
		if (last)
			break;
	}
	printf("SNAPSHOT %" PRIu64 " %" PRIu64 "\n", id, total);
	fflush(stdout);
}

static void do_list(const char *what)
{
	Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__List l = MUON__DISC__LIST__INIT;
	size_t total = 0;

	if (!strcmp(what, "topics"))
		l.what = MUON__DISC__LIST__WHAT__TOPICS;
	else if (!strcmp(what, "publications"))
		l.what = MUON__DISC__LIST__WHAT__PUBLICATIONS;
	else if (!strcmp(what, "watchers"))
		l.what = MUON__DISC__LIST__WHAT__WATCHERS;
	else if (!strcmp(what, "health"))
		l.what = MUON__DISC__LIST__WHAT__HEALTH;
	else
		usage();
	m.kind_case = MUON__DISC__MESSAGE__KIND_LIST;
	m.list = &l;
	m.request_id = next_request++;
	send_msg(&m);
	for (;;) {
		Muon__Disc__Message *r = await(m.request_id, 0);
		const Muon__Disc__ListReply *lr = r->list_reply;
		bool last;

		if (r->kind_case != MUON__DISC__MESSAGE__KIND_LIST_REPLY) {
			simple_reply("list", r);
			return;
		}
		total += lr->n_topics + lr->n_publications + lr->n_watchers +
			 (lr->health ? 1 : 0);
		last = lr->last;
		muon__disc__message__free_unpacked(r, NULL);
		if (last)
			break;
	}
	printf("LIST %s %zu\n", what, total);
	fflush(stdout);
}

static void hold(uint64_t ms)
{
	printf("HOLD %" PRIu64 "\n", ms);
	fflush(stdout);
	await(0, now_ms() + ms);
}

/* Until stdin closes: how a test script keeps a client alive and then
 * ends it without signals. */
static void hold_stdin(void)
{
	char buf[256];

	puts("HOLD stdin");
	fflush(stdout);
	for (;;) {
		struct pollfd p = { .fd = 0, .events = POLLIN };

		await(0, now_ms() + 50);
		if (poll(&p, 1, 0) > 0 && read(0, buf, sizeof(buf)) <= 0)
			return;
	}
}

static void handshake(const char *name)
{
	Muon__Disc__Message *w, hm = MUON__DISC__MESSAGE__INIT;
	Muon__Disc__Hello hello = MUON__DISC__HELLO__INIT;
	char host_id[MUONI_DISC_HOST_ID_MAX + 1];

	w = recv_msg(now_ms() + timeout_ms, true);
	if (!w)
		die("no Welcome in %u ms", timeout_ms);
	if (w->kind_case == MUON__DISC__MESSAGE__KIND_ERROR)
		die("refused: %s: %s", muoni_disc_code_name((int)w->error->code),
		    w->error->reason);
	if (w->kind_case != MUON__DISC__MESSAGE__KIND_WELCOME ||
	    w->welcome->nonce.len != MUONI_DISC_NONCE_LEN)
		die("bad Welcome");
	memcpy(their_nonce, w->welcome->nonce.data, sizeof(their_nonce));
	if (w->welcome->lease_ms >= 3)
		lease_ms = w->welcome->lease_ms;
	if (w->welcome->max_frame >= MUONI_DISC_MAX_FRAME_MIN)
		max_frame = w->welcome->max_frame;
	printf("WELCOME %s %" PRIu32 " %d\n", w->welcome->daemon_name,
	       w->welcome->lease_ms, w->welcome->auth_required ? 1 : 0);
	fflush(stdout);
	muon__disc__message__free_unpacked(w, NULL);

	randombytes_buf(my_nonce, sizeof(my_nonce));
	muoni_disc_host_id(host_id, sizeof(host_id));
	hello.nonce.data = my_nonce;
	hello.nonce.len = sizeof(my_nonce);
	hello.ctx_id = ctx_id;
	hello.name = (char *)name;
	hello.host_id = host_id;
	hello.pid = (uint32_t)getpid();
	hello.role = "context";
	hm.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
	hm.hello = &hello;
	send_msg(&hm);
}

static void connect_to(const char *addr)
{
	char host[256], port[8] = "7440";
	const char *s = addr, *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	size_t hl;
	int rc;

	if (!strncmp(s, "tcp://", 6))
		s += 6;
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb)
			usage();
		hl = (size_t)(rb - s - 1);
		s++;
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (!hl || hl >= sizeof(host))
		usage();
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (colon)
		snprintf(port, sizeof(port), "%s", colon + 1);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		die("resolve %s: %s", addr, gai_strerror(rc));
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
			    a->ai_protocol);
		if (fd >= 0 && !connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		die("connect %s: %s", addr, strerror(errno));
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1:7440", *secret = NULL;
	const char *name = PROG;
	bool random_id = true;
	int c, i;

	while ((c = getopt(argc, argv, "+d:s:c:n:t:")) != -1) {
		switch (c) {
		case 'd':
			addr = optarg;
			break;
		case 's':
			secret = optarg;
			break;
		case 'c':
			ctx_id = num(optarg, UINT64_MAX);
			random_id = false;
			break;
		case 'n':
			name = optarg;
			break;
		case 't':
			timeout_ms = (uint32_t)num(optarg, 3600000);
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	if (sodium_init() < 0)
		die("libsodium failed to initialise");
	if (secret) {
		if (muoni_secret_load(secret, key))
			die("%s", muoni_err_msg());
		have_key = true;
	}
	while (random_id && !ctx_id)
		randombytes_buf(&ctx_id, sizeof(ctx_id));
	signal(SIGPIPE, SIG_IGN);
	connect_to(addr);
	handshake(name);
	for (i = optind; i < argc; i++) {
		const char *a = argv[i];
		Muon__Disc__Message m = MUON__DISC__MESSAGE__INIT;

#define NEED(n)                    \
	do {                       \
		if (i + (n) >= argc) \
			usage();   \
	} while (0)
		if (!strcmp(a, "register")) {
			NEED(3);
			do_register(argv[i + 1], 1,
				    (uint32_t)num(argv[i + 2], UINT32_MAX),
				    argv[i + 3], false);
			i += 3;
		} else if (!strcmp(a, "register-n")) {
			NEED(3);
			do_register(argv[i + 2],
				    (uint32_t)num(argv[i + 1], 1000000), 1,
				    argv[i + 3], true);
			i += 3;
		} else if (!strcmp(a, "unregister")) {
			Muon__Disc__Unregister u = MUON__DISC__UNREGISTER__INIT;
			uint32_t id;

			NEED(1);
			id = (uint32_t)num(argv[++i], UINT32_MAX);
			u.n_stream_ids = 1;
			u.stream_ids = &id;
			m.kind_case = MUON__DISC__MESSAGE__KIND_UNREGISTER;
			m.unregister = &u;
			request("unregister", &m);
		} else if (!strcmp(a, "watch") || !strcmp(a, "watch-prefix")) {
			NEED(1);
			do_watch(argv[i + 1], a[5] == '-');
			i++;
		} else if (!strcmp(a, "unwatch")) {
			Muon__Disc__Unwatch u = MUON__DISC__UNWATCH__INIT;

			NEED(1);
			u.watch_id = num(argv[++i], UINT64_MAX);
			m.kind_case = MUON__DISC__MESSAGE__KIND_UNWATCH;
			m.unwatch = &u;
			request("unwatch", &m);
		} else if (!strcmp(a, "list")) {
			NEED(1);
			do_list(argv[++i]);
		} else if (!strcmp(a, "renew")) {
			Muon__Disc__Renew r = MUON__DISC__RENEW__INIT;

			m.kind_case = MUON__DISC__MESSAGE__KIND_RENEW;
			m.renew = &r;
			request("renew", &m);
		} else if (!strcmp(a, "hold")) {
			NEED(1);
			hold(num(argv[++i], UINT32_MAX));
		} else if (!strcmp(a, "hold-stdin")) {
			hold_stdin();
		} else {
			usage();
		}
#undef NEED
	}
	puts("DONE");
	fflush(stdout);
	close(fd);
	muoni_disc_buf_fini(&in);
	return status;
}
