/* Receive N messages on "example.ticks"; print one-way latency percentiles
 * (publisher and subscriber share the host, so they share CLOCK_MONOTONIC).
 * usage: muon-example-sub [PEERS|- [N]]           (default: - 100000)
 * "-": find the publisher through discovery (MUON_DISCOVERY, else muond on
 * this host); PEERS: connect to these endpoints. */
#include <muon/muon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t *lat; /* latency of each message received, ns */
static long got, n = 100000;

static void on_msg(void *arg, const muon_msg_t *msg)
{
	uint64_t sent, now = now_ns();
	if (msg->len == sizeof sent && got < n) {
		memcpy(&sent, msg->data, sizeof sent);
		lat[got++] = now - sent;
	}
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static double pct(double q) /* the q-quantile, in microseconds */
{
	return lat[(size_t)(q * (double)(got - 1))] / 1e3;
}

int main(int argc, char **argv)
{
	muon_ctx_config_t cfg;
	muon_sub_config_t sc;
	muon_ctx_t *ctx = NULL;
	muon_sub_t *sub = NULL;
	uint64_t deadline = now_ns() + 60000000000ull; /* give up after 60 s */

	n = argc > 2 ? atol(argv[2]) : n;
	muon_ctx_config_init(&cfg);
	if (argc > 1 && strcmp(argv[1], "-"))
		cfg.peers = argv[1];
	else
		cfg.discovery = "127.0.0.1"; /* MUON_DISCOVERY overrides */
	muon_sub_config_init(&sc);
	sc.msg_fn = on_msg;
	int rc = (lat = calloc(n, sizeof *lat)) ? MUON_OK : MUON_ENOMEM;
	if (rc == MUON_OK)
		rc = muon_ctx_create(&cfg, &ctx);
	if (rc == MUON_OK)
		rc = muon_sub_create(ctx, "example.ticks", &sc, &sub);
	while (rc >= 0 && got < n && now_ns() < deadline)
		rc = muon_ctx_poll(ctx, 0);
	if (rc < 0)
		fprintf(stderr, "subscriber: %s: %s\n", muon_strerror(rc),
			muon_errmsg());
	muon_sub_destroy(sub);
	muon_ctx_destroy(ctx);
	qsort(lat, got, sizeof *lat, cmp);
	printf("received %ld of %ld messages\n", got, n);
	if (got > 0)
		printf("one-way latency, us: p50 %.2f  p90 %.2f  p99 %.2f  "
		       "p99.9 %.2f  max %.2f\n", pct(0.5), pct(0.9),
		       pct(0.99), pct(0.999), pct(1));
	free(lat);
	return got == n ? 0 : 1;
}
