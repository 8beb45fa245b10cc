/*
 * muon-linkdown-peer: the two processes of rdma.linkdown (linkdown.sh), a
 * publisher that streams at a modest pace for as long as it runs and a
 * subscriber that checks every message and reports what it sees, so that
 * the script can take the link and the RDMA device away under them.
 *
 *   muon-linkdown-peer pub verbs://ADDR:PORT
 *   muon-linkdown-peer sub verbs://ADDR:PORT
 *
 * Lines on stdout (line-buffered; the library's log goes to stderr):
 *   pub: "LISTEN EP", every 500 ms "STAT sent=N subs=K bp=B errors=E
 *        connects=C disconnects=D", "PUBERR ..." for any publish error
 *        other than back-pressure;
 *   sub: "UP from=S", "DOWN reason=R to=S detail=...", "LOSS from=A to=B",
 *        "ERROR detail=...", every 500 ms "STAT recv=N last=S ups=U downs=D
 *        losses=L errors=E";
 *   both: "EXIT ..." on SIGTERM or SIGINT, then "DESTROYED" once
 *        muon_ctx_destroy() has returned. Exit status 0 unless a check
 *        failed (sub: a message out of order or with wrong bytes, a gap
 *        no LOSS event covers; pub: a publish error).
 * MUON_LINKDOWN_LOG=0..4 sets the library's log level (default 3, info).
 * MUON_LINKDOWN_STATUS=FILE (sub): every 100 ms, FILE is replaced by one
 * line "RECV LAST UPS DOWNS LOSSES ERRORS IMAGES" (a shell reads it with
 * `read`, no process per look).
 * Message `seq` has 0..1024 bytes, a function of seq (as in the unit tests'
 * ut_fill), so the subscriber can check it without any shared state.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <muon/muon.h>

#define MAX_LEN 1024
#define PERIOD_NS 2000000ull /* one message every 2 ms */
#define STAT_NS 500000000ull
#define STATUS_NS 100000000ull

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t len_for(uint64_t seq)
{
	return (size_t)((seq * 2654435761u) % (MAX_LEN + 1));
}

static uint8_t byte_at(uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + (i >> 8) + (seq >> 8) * 3u);
}

static void ctx_config(muon_ctx_config_t *cfg, const char *name)
{
	muon_ctx_config_init(cfg);
	cfg->name = name;
	cfg->ignore_env = 1;
	cfg->ring_size = 256u << 10;
	cfg->send_log_size = 1u << 20;
	cfg->max_msg_size = MAX_LEN;
	cfg->linger_ms = 200;
	/* A dead peer is declared within 3 s at the latest (heartbeats),
	 * whatever the transport notices by itself. */
	cfg->heartbeat_ms = 500;
	cfg->peer_timeout_ms = 3000;
	cfg->log_level = getenv("MUON_LINKDOWN_LOG")
				 ? (muon_log_level_t)atoi(getenv("MUON_LINKDOWN_LOG"))
				 : MUON_LOG_INFO;
}

static int die(const char *what, int rc)
{
	printf("FATAL %s: %s: %s\n", what, muon_strerror(rc), muon_errmsg());
	return 2;
}

/* ------------------------------------------------------------ pub */

static int run_pub(const char *listen)
{
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = NULL;
	muon_pub_t *pub = NULL;
	muon_counters_t k;
	uint8_t buf[MAX_LEN];
	char ep[128];
	uint64_t seq = 1, next = 0, next_stat = 0, bp = 0, errors = 0, t;
	int rc;

	ctx_config(&cfg, "linkdown-pub");
	cfg.listen = listen;
	rc = muon_ctx_create(&cfg, &ctx);
	if (rc)
		return die("muon_ctx_create", rc);
	rc = muon_pub_create(ctx, "linkdown", NULL, &pub);
	if (rc)
		return die("muon_pub_create", rc);
	rc = muon_ctx_listen_endpoint(ctx, 0, ep, sizeof(ep));
	if (rc)
		return die("muon_ctx_listen_endpoint", rc);
	printf("LISTEN %s\n", ep);
	while (!stop) {
		rc = muon_ctx_poll(ctx, 0);
		if (rc < 0) {
			printf("PUBERR poll: %s: %s\n", muon_strerror(rc),
			       muon_errmsg());
			errors++;
		}
		t = now_ns();
		if (t >= next) {
			size_t i, len = len_for(seq);
			int64_t r;

			for (i = 0; i < len; i++)
				buf[i] = byte_at(seq, i);
			r = muon_publish(pub, buf, len);
			if (r == (int64_t)seq) {
				seq++;
				next = (next && t - next < PERIOD_NS * 100
						? next : t) + PERIOD_NS;
			} else if (r == MUON_EBACKPRESSURE) {
				bp++;
			} else {
				printf("PUBERR publish %llu: %lld %s: %s\n",
				       (unsigned long long)seq, (long long)r,
				       r < 0 ? muon_strerror((int)r) : "",
				       muon_errmsg());
				errors++;
				next = t + PERIOD_NS;
			}
		}
		if (t >= next_stat) {
			memset(&k, 0, sizeof(k));
			k.size = sizeof(k);
			muon_ctx_counters(ctx, &k);
			printf("STAT sent=%llu subs=%d bp=%llu errors=%llu "
			       "connects=%llu disconnects=%llu\n",
			       (unsigned long long)(seq - 1),
			       muon_pub_subscribers(pub),
			       (unsigned long long)bp,
			       (unsigned long long)errors,
			       (unsigned long long)k.connects,
			       (unsigned long long)k.disconnects);
			next_stat = t + STAT_NS;
		}
		/* Sleep until the next message is due (the control plane runs
		 * from every poll; the fd wakes us for control traffic). */
		if (next > t + 500000) {
			struct pollfd pfd = {.fd = muon_ctx_fd(ctx),
					     .events = POLLIN};

			poll(&pfd, 1, (int)((next - t) / 1000000));
		}
	}
	printf("EXIT sent=%llu errors=%llu\n", (unsigned long long)(seq - 1),
	       (unsigned long long)errors);
	muon_pub_destroy(pub);
	muon_ctx_destroy(ctx);
	printf("DESTROYED\n");
	return errors ? 1 : 0;
}

/* ------------------------------------------------------------ sub */

struct rx {
	uint64_t expect; /* 0 until the first IMAGE_UP */
	uint64_t msgs, last, ups, downs, losses, errors;
};

static void rx_msg(void *arg, const muon_msg_t *m)
{
	struct rx *r = arg;
	const uint8_t *p = m->data;
	size_t i;

	r->msgs++;
	if (m->seq != r->expect) {
		if (r->errors++ < 5)
			printf("BAD seq %llu, expected %llu\n",
			       (unsigned long long)m->seq,
			       (unsigned long long)r->expect);
	}
	r->expect = m->seq + 1;
	r->last = m->seq;
	if (m->len != len_for(m->seq)) {
		if (r->errors++ < 5)
			printf("BAD seq %llu: %zu bytes, want %zu\n",
			       (unsigned long long)m->seq, m->len,
			       len_for(m->seq));
		return;
	}
	for (i = 0; i < m->len; i++)
		if (p[i] != byte_at(m->seq, i)) {
			if (r->errors++ < 5)
				printf("BAD seq %llu: byte %zu\n",
				       (unsigned long long)m->seq, i);
			return;
		}
}

static void rx_event(void *arg, const muon_event_t *ev)
{
	struct rx *r = arg;

	switch (ev->type) {
	case MUON_EVENT_IMAGE_UP:
		r->ups++;
		printf("UP from=%llu\n", (unsigned long long)ev->from_seq);
		if (!r->expect)
			r->expect = ev->from_seq;
		break;
	case MUON_EVENT_IMAGE_DOWN:
		r->downs++;
		printf("DOWN reason=%d to=%llu detail=%s\n", ev->reason,
		       (unsigned long long)ev->to_seq, ev->detail);
		if (r->expect && ev->to_seq && ev->to_seq + 1 != r->expect) {
			r->errors++;
			printf("BAD IMAGE_DOWN to_seq %llu, last delivered "
			       "%llu\n", (unsigned long long)ev->to_seq,
			       (unsigned long long)(r->expect - 1));
		}
		break;
	case MUON_EVENT_LOSS:
		r->losses++;
		printf("LOSS from=%llu to=%llu\n",
		       (unsigned long long)ev->from_seq,
		       (unsigned long long)ev->to_seq);
		if (r->expect && ev->from_seq != r->expect) {
			r->errors++;
			printf("BAD LOSS from %llu, expected %llu\n",
			       (unsigned long long)ev->from_seq,
			       (unsigned long long)r->expect);
		}
		r->expect = ev->to_seq + 1;
		break;
	default:
		printf("ERROR detail=%s\n", ev->detail);
		break;
	}
}

/* One line, replaced atomically: "RECV LAST UPS DOWNS LOSSES ERRORS
 * IMAGES", for a shell to `read` without forking anything. */
static void write_status(const char *path, const struct rx *r, int images)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%llu %llu %llu %llu %llu %llu %d\n",
		(unsigned long long)r->msgs, (unsigned long long)r->last,
		(unsigned long long)r->ups, (unsigned long long)r->downs,
		(unsigned long long)r->losses, (unsigned long long)r->errors,
		images);
	if (fclose(f) == 0)
		rename(tmp, path);
}

static int run_sub(const char *peer)
{
	const char *status = getenv("MUON_LINKDOWN_STATUS");
	uint64_t next_status = 0;
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = NULL;
	muon_sub_t *sub = NULL;
	muon_sub_config_t scfg;
	struct rx r;
	uint64_t next_stat = 0, t;
	struct pollfd pfd;
	int rc;

	memset(&r, 0, sizeof(r));
	ctx_config(&cfg, "linkdown-sub");
	cfg.peers = peer;
	rc = muon_ctx_create(&cfg, &ctx);
	if (rc)
		return die("muon_ctx_create", rc);
	muon_sub_config_init(&scfg);
	scfg.msg_fn = rx_msg;
	scfg.msg_arg = &r;
	scfg.event_fn = rx_event;
	scfg.event_arg = &r;
	rc = muon_sub_create(ctx, "linkdown", &scfg, &sub);
	if (rc)
		return die("muon_sub_create", rc);
	pfd.fd = muon_ctx_fd(ctx);
	pfd.events = POLLIN;
	while (!stop) {
		/* Sleep on the context's fd (at most 20 ms, so a missed
		 * wake-up costs latency, never progress), then drain. */
		if (muon_ctx_arm(ctx) == MUON_OK)
			poll(&pfd, 1, 20);
		while ((rc = muon_ctx_poll(ctx, 0)) > 0)
			;
		if (rc < 0) {
			printf("BAD poll: %s: %s\n", muon_strerror(rc),
			       muon_errmsg());
			r.errors++;
		}
		t = now_ns();
		if (status && t >= next_status) {
			write_status(status, &r, muon_sub_images(sub));
			next_status = t + STATUS_NS;
		}
		if (t >= next_stat) {
			printf("STAT recv=%llu last=%llu ups=%llu downs=%llu "
			       "losses=%llu errors=%llu images=%d\n",
			       (unsigned long long)r.msgs,
			       (unsigned long long)r.last,
			       (unsigned long long)r.ups,
			       (unsigned long long)r.downs,
			       (unsigned long long)r.losses,
			       (unsigned long long)r.errors,
			       muon_sub_images(sub));
			next_stat = t + STAT_NS;
		}
	}
	if (status)
		write_status(status, &r, muon_sub_images(sub));
	printf("EXIT recv=%llu errors=%llu\n", (unsigned long long)r.msgs,
	       (unsigned long long)r.errors);
	muon_sub_destroy(sub);
	muon_ctx_destroy(ctx);
	printf("DESTROYED\n");
	return r.errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc != 3 || (strcmp(argv[1], "pub") && strcmp(argv[1], "sub"))) {
		fprintf(stderr, "usage: %s pub|sub verbs://ADDR:PORT\n",
			argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	return strcmp(argv[1], "pub") ? run_sub(argv[2]) : run_pub(argv[2]);
}
