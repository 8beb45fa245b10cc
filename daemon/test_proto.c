/*
 * unit.muond_proto: a real muond process spoken to over TCP with the
 * shared codec: authenticated Hello, Register, Watch with Snapshot and
 * Updates, List HEALTH, and hostile input (bad MAC, replayed seq, garbage,
 * oversized length, requests before Hello), each answered with an Error
 * while other clients keep being served; then a fan-out timing: 10,000
 * publications, 1,000 watchers, one change pushed to all of them.
 * usage: muond-test-proto PATH/TO/muond
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/muoni.h"
#include "proto/disc.h"

#define CHECK(c)                                                          \
	do {                                                              \
		if (!(c)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n",      \
				__FILE__, __LINE__, #c);                  \
			exit(1);                                          \
		}                                                         \
	} while (0)

typedef Muon__Disc__Message Msg;

static uint8_t key[32];
static int port;
static pid_t daemon_pid;
static char secret[] = "/tmp/muond-test-secret-XXXXXX";
static bool secret_made;

struct cl {
	int fd;
	struct muoni_disc_buf in, out;
	uint8_t dnonce[16], nonce[16];
	uint64_t tx, rx;
	bool keyed, hello;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int tcp_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0);
	CHECK(!connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	return fd;
}

static void send_raw(struct cl *c, const void *p, size_t n)
{
	CHECK(write(c->fd, p, n) == (ssize_t)n);
}

/* The next message, or NULL at EOF or after `ms`. */
static Msg *recv_msg(struct cl *c, int ms)
{
	const uint8_t *f;
	size_t len;
	int rc, code;
	Msg *m = NULL;
	char err[200];

	for (;;) {
		rc = muoni_disc_next(&c->in, 1 << 24, &f, &len);
		CHECK(rc >= 0);
		if (rc == 1) {
			CHECK(!muoni_disc_unpack(f, len,
						 c->hello && c->keyed ? key : NULL,
						 c->nonce, &m, &code, err,
						 sizeof(err)));
			muoni_disc_buf_consume(&c->in, 4 + len);
			CHECK(m->seq == ++c->rx);
			return m;
		}
		struct pollfd p = { c->fd, POLLIN, 0 };
		if (poll(&p, 1, ms) != 1)
			return NULL;
		CHECK(!muoni_disc_buf_reserve(&c->in, 65536));
		ssize_t n = read(c->fd, c->in.data + c->in.len, 65536);
		if (n <= 0)
			return NULL;
		c->in.len += (size_t)n;
	}
}

static void send_msg(struct cl *c, Msg *m)
{
	m->seq = ++c->tx;
	CHECK(!muoni_disc_pack(&c->out, m, c->keyed ? key : NULL, c->dnonce,
			       65536));
	send_raw(c, c->out.data + c->out.off, muoni_disc_buf_used(&c->out));
	muoni_disc_buf_consume(&c->out, muoni_disc_buf_used(&c->out));
}

static void cl_close(struct cl *c)
{
	close(c->fd);
	muoni_disc_buf_fini(&c->in);
	muoni_disc_buf_fini(&c->out);
}

/* Connect, read Welcome; with `hello`, send it. */
static void cl_open(struct cl *c, bool keyed, uint64_t ctx_id, bool hello)
{
	Msg *m;

	memset(c, 0, sizeof(*c));
	c->keyed = keyed;
	c->fd = tcp_connect();
	m = recv_msg(c, 2000);
	CHECK(m && m->kind_case == MUON__DISC__MESSAGE__KIND_WELCOME);
	CHECK(m->welcome->nonce.len == 16 && m->welcome->auth_required);
	memcpy(c->dnonce, m->welcome->nonce.data, 16);
	muon__disc__message__free_unpacked(m, NULL);
	if (!hello)
		return;
	Muon__Disc__Hello h = MUON__DISC__HELLO__INIT;
	Msg hm = MUON__DISC__MESSAGE__INIT;

	for (int i = 0; i < 16; i++)
		c->nonce[i] = (uint8_t)rand();
	h.nonce.data = c->nonce;
	h.nonce.len = 16;
	h.ctx_id = ctx_id;
	h.name = (char *)"tester";
	h.host_id = (char *)"host";
	h.role = (char *)"test";
	hm.kind_case = MUON__DISC__MESSAGE__KIND_HELLO;
	hm.hello = &h;
	send_msg(c, &hm);
	c->hello = true;
}

static Msg *expect_kind_within(struct cl *c, int kind, int ms)
{
	Msg *m = recv_msg(c, ms);

	if (!m || (int)m->kind_case != kind) {
		fprintf(stderr, "want kind %d, got %d", kind,
			m ? (int)m->kind_case : -1);
		if (m && m->kind_case == MUON__DISC__MESSAGE__KIND_ERROR)
			fprintf(stderr, " (%s)", m->error->reason);
		fprintf(stderr, "\n");
		exit(1);
	}
	return m;
}

static Msg *expect_kind(struct cl *c, int kind)
{
	return expect_kind_within(c, kind, 3000);
}

static void expect_error(struct cl *c, int code, bool fatal)
{
	Msg *m = expect_kind(c, MUON__DISC__MESSAGE__KIND_ERROR);

	CHECK((int)m->error->code == code && m->error->fatal == fatal);
	muon__disc__message__free_unpacked(m, NULL);
	if (fatal)
		CHECK(recv_msg(c, 2000) == NULL); /* closed */
}

static void do_register(struct cl *c, uint64_t req, const char *topic,
			uint32_t n, uint32_t first)
{
	Muon__Disc__Register r = MUON__DISC__REGISTER__INIT;
	Muon__Disc__Publication *pubs = calloc(n, sizeof(*pubs));
	Muon__Disc__Publication **pp = calloc(n, sizeof(*pp));
	char (*topics)[40] = calloc(n, 40);
	char *ep = (char *)"tcp://10.0.0.1:5000";
	Msg m = MUON__DISC__MESSAGE__INIT;

	for (uint32_t i = 0; i < n; i++) {
		muon__disc__publication__init(&pubs[i]);
		snprintf(topics[i], 40, "%s%u", topic, first + i);
		pubs[i].topic = topics[i];
		pubs[i].stream_id = first + i;
		pubs[i].endpoints = &ep;
		pubs[i].n_endpoints = 1;
		pp[i] = &pubs[i];
	}
	r.publications = pp;
	r.n_publications = n;
	m.request_id = req;
	m.kind_case = MUON__DISC__MESSAGE__KIND_REGISTER;
	m.register_ = &r;
	send_msg(c, &m);
	free(pubs);
	free(pp);
	free(topics);
}

static void do_watch(struct cl *c, uint64_t req, uint64_t id,
		     const char *topic, bool prefix)
{
	Muon__Disc__Watch w = MUON__DISC__WATCH__INIT;
	Msg m = MUON__DISC__MESSAGE__INIT;

	w.watch_id = id;
	w.topic = (char *)topic;
	w.prefix = prefix;
	m.request_id = req;
	m.kind_case = MUON__DISC__MESSAGE__KIND_WATCH;
	m.watch = &w;
	send_msg(c, &m);
}

/* Snapshot parts for one watch: the number of publications. */
static size_t read_snapshot(struct cl *c, uint64_t req)
{
	size_t n = 0;
	bool last = false;

	while (!last) {
		Msg *m = expect_kind(c, MUON__DISC__MESSAGE__KIND_SNAPSHOT);

		CHECK(m->request_id == req);
		n += m->snapshot->n_publications;
		last = m->snapshot->last;
		muon__disc__message__free_unpacked(m, NULL);
	}
	return n;
}

static void expect_ok(struct cl *c, uint64_t req)
{
	Msg *m = expect_kind(c, MUON__DISC__MESSAGE__KIND_OK);

	CHECK(m->request_id == req);
	muon__disc__message__free_unpacked(m, NULL);
}

/* A CHECK that fails exits: the daemon must not outlive this process, or
 * ctest waits for its end of the output pipe until the test times out. */
static void at_exit(void)
{
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	if (secret_made)
		unlink(secret);
}

static void stop_daemon(void)
{
	int status;

	kill(daemon_pid, SIGTERM);
	CHECK(waitpid(daemon_pid, &status, 0) == daemon_pid);
	daemon_pid = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Lease and idle timeout are the test's to choose: short where it waits
 * for them to run out, far longer than any stall of a loaded machine
 * where they must not (a session opened first must outlive the setup of
 * 1,000 more, however slow that is). */
static void start_daemon(const char *muond, const char *lease_ms,
			 const char *idle_ms)
{
	int pfd[2];
	char line[128];
	FILE *f;

	CHECK(!pipe(pfd));
	daemon_pid = fork();
	CHECK(daemon_pid >= 0);
	if (!daemon_pid) {
		/* Also when this process dies of a signal (no atexit). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(muond, muond, "--listen", "127.0.0.1:0", "--secret-file",
		      secret, "--log-level", "warn", "--max-frame", "64K",
		      "--lease-ms", lease_ms, "--idle-timeout-ms", idle_ms,
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	CHECK(f && fgets(line, sizeof(line), f));
	CHECK(sscanf(line, "listening tcp://127.0.0.1:%d", &port) == 1);
	fclose(f);
}

int main(int argc, char **argv)
{
	struct cl a, b, x;
	Msg *m;
	int fd;

	CHECK(argc == 2);
	signal(SIGPIPE, SIG_IGN);
	atexit(at_exit);
	fd = mkstemp(secret);
	CHECK(fd >= 0);
	secret_made = true;
	CHECK(write(fd, "a cluster secret for tests", 26) == 26);
	close(fd);
	CHECK(!muoni_secret_load(secret, key));
	/* 3 s: the steps between the Register below and the publisher's
	 * silence must fit in one lease even on a loaded machine. */
	start_daemon(argv[1], "3000", "30000");

	/* A publisher and a watcher. */
	cl_open(&a, true, 0xabc, true);
	cl_open(&b, true, 0, true);
	do_watch(&b, 1, 10, "md.", true);
	CHECK(read_snapshot(&b, 1) == 0);
	do_register(&a, 5, "md.x", 3, 1);
	expect_ok(&a, 5);
	for (int i = 0; i < 3; i++) {
		m = expect_kind(&b, MUON__DISC__MESSAGE__KIND_UPDATE);
		CHECK(m->request_id == 0 && m->update->watch_id == 10 &&
		      m->update->kind == MUON__DISC__UPDATE__KIND__UP &&
		      m->update->publication->ctx_id == 0xabc);
		muon__disc__message__free_unpacked(m, NULL);
	}
	do_watch(&b, 2, 11, "md.x2", false);
	CHECK(read_snapshot(&b, 2) == 1);
	do_watch(&b, 3, 11, "md.x2", false);
	expect_error(&b, MUON__DISC__ERROR__CODE__BAD_REQUEST, false);
	/* Register from a tool is refused, not fatal. */
	do_register(&b, 4, "t", 1, 1);
	expect_error(&b, MUON__DISC__ERROR__CODE__STATE, false);

	/* Hostile clients: each gets its Error and is closed. */
	cl_open(&x, false, 1, true); /* no MAC */
	expect_error(&x, MUON__DISC__ERROR__CODE__AUTH, true);
	cl_close(&x);
	cl_open(&x, true, 1, false);
	do_watch(&x, 1, 1, "t", false); /* before Hello */
	expect_error(&x, MUON__DISC__ERROR__CODE__STATE, true);
	cl_close(&x);
	cl_open(&x, true, 1, true);
	x.tx = 5; /* skips 2..5 */
	do_watch(&x, 1, 1, "t", false);
	expect_error(&x, MUON__DISC__ERROR__CODE__AUTH, true);
	cl_close(&x);
	cl_open(&x, true, 1, false);
	send_raw(&x, "\xff\xff\xff\xff", 4);
	expect_error(&x, MUON__DISC__ERROR__CODE__BAD_FRAME, true);
	cl_close(&x);
	cl_open(&x, true, 1, false);
	send_raw(&x, "\x00\x00\x00\x05garbage", 9);
	expect_error(&x, MUON__DISC__ERROR__CODE__BAD_FRAME, true);
	cl_close(&x);
	cl_open(&x, true, 1, false);
	send_raw(&x, "\x00\x00\x00\x04\x08\x02\x12\x00", 8); /* version 2 */
	expect_error(&x, MUON__DISC__ERROR__CODE__BAD_VERSION, true);
	cl_close(&x);

	/* Still serving: health counts what happened. */
	{
		Muon__Disc__List l = MUON__DISC__LIST__INIT;
		Msg lm = MUON__DISC__MESSAGE__INIT;

		l.what = MUON__DISC__LIST__WHAT__HEALTH;
		lm.request_id = 9;
		lm.kind_case = MUON__DISC__MESSAGE__KIND_LIST;
		lm.list = &l;
		send_msg(&b, &lm);
		m = expect_kind(&b, MUON__DISC__MESSAGE__KIND_LIST_REPLY);
		CHECK(m->list_reply->health && m->list_reply->last);
		CHECK(m->list_reply->health->publications == 3);
		CHECK(m->list_reply->health->auth_failures == 2);
		CHECK(m->list_reply->health->protocol_errors >= 4);
		muon__disc__message__free_unpacked(m, NULL);
	}

	/* The publisher goes silent: its lease (3 s) ends, DOWN for each. */
	cl_close(&a);
	for (int i = 0; i < 4; i++) { /* 3 on md., 1 on md.x2 */
		m = expect_kind_within(&b, MUON__DISC__MESSAGE__KIND_UPDATE,
				       10000);
		CHECK(m->update->kind == MUON__DISC__UPDATE__KIND__DOWN);
		CHECK(!strcmp(m->update->reason, "lease expired"));
		muon__disc__message__free_unpacked(m, NULL);
	}
	cl_close(&b);
	stop_daemon();

	/* Fan-out: 10,000 publications, 1,000 watchers of one topic. Leases
	 * and idle timeouts of ten minutes: under load, opening 1,000
	 * watchers took longer than the 1 s lease this part once shared with
	 * the one above, and the registrations expired half-way. */
	start_daemon(argv[1], "600000", "600000");
	{
		enum { W = 1000 };
		struct cl *w = calloc(W, sizeof(*w));
		struct rlimit rl;
		uint64_t t0, worst = 0;

		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		cl_open(&a, true, 0xdef, true);
		for (uint32_t i = 0; i < 10000; i += 500) {
			do_register(&a, 100 + i, "fan.", 500, i);
			expect_ok(&a, 100 + i);
		}
		for (int i = 0; i < W; i++) {
			cl_open(&w[i], true, 0, true);
			do_watch(&w[i], 1, 1, "fan.77", false);
			CHECK(read_snapshot(&w[i], 1) == 1);
		}
		do_register(&a, 1, "fan.", 1, 77000); /* not watched */
		expect_ok(&a, 1);
		t0 = now_us();
		{ /* stream 77 changes endpoints */
			Muon__Disc__Register r = MUON__DISC__REGISTER__INIT;
			Muon__Disc__Publication p =
				MUON__DISC__PUBLICATION__INIT;
			Muon__Disc__Publication *pp = &p;
			char *ep = (char *)"tcp://10.0.0.2:5000";
			Msg rm = MUON__DISC__MESSAGE__INIT;

			p.topic = (char *)"fan.77";
			p.stream_id = 77;
			p.endpoints = &ep;
			p.n_endpoints = 1;
			r.publications = &pp;
			r.n_publications = 1;
			rm.request_id = 2;
			rm.kind_case = MUON__DISC__MESSAGE__KIND_REGISTER;
			rm.register_ = &r;
			send_msg(&a, &rm);
		}
		/* The daemon pushes in the order the watches were made, so
		 * the last watcher's socket turning readable bounds the
		 * fan-out without timing this program's own reading. */
		{
			struct pollfd p = { w[W - 1].fd, POLLIN, 0 };

			CHECK(poll(&p, 1, 5000) == 1);
			worst = now_us() - t0;
		}
		for (int i = 0; i < W; i++) {
			m = expect_kind(&w[i],
					MUON__DISC__MESSAGE__KIND_UPDATE);
			CHECK(!strcmp(m->update->publication->endpoints[0],
				      "tcp://10.0.0.2:5000"));
			muon__disc__message__free_unpacked(m, NULL);
		}
		printf("fan-out: last of %d watchers had its update after "
		       "%.2f ms (10,000 publications)\n", W, worst / 1000.0);
		expect_ok(&a, 2);
		for (int i = 0; i < W; i++)
			cl_close(&w[i]);
		free(w);
		cl_close(&a);
	}

	stop_daemon();
	printf("muond_proto: ok\n");
	return 0;
}
