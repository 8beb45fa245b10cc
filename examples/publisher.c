/* Publish N timestamped messages on "example.ticks", one every 10 us.
 * usage: muon-example-pub [ENDPOINT|- [N]]        (default: - 100000)
 * "-": register with the discovery daemon (MUON_DISCOVERY, else muond on
 * this host); ENDPOINT: listen there, for subscribers that name it. */
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

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 100000;
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = NULL;
	muon_pub_t *pub = NULL;

	muon_ctx_config_init(&cfg);
	if (argc > 1 && strcmp(argv[1], "-"))
		cfg.listen = argv[1];
	else
		cfg.discovery = "127.0.0.1"; /* MUON_DISCOVERY overrides */
	int64_t rc = muon_ctx_create(&cfg, &ctx);
	if (rc == MUON_OK)
		rc = muon_pub_create(ctx, "example.ticks", NULL, &pub);
	while (rc >= 0 && muon_pub_subscribers(pub) < 1) /* wait for one */
		rc = muon_ctx_poll(ctx, 0);
	for (uint64_t i = 0, t, next = 0; rc >= 0 && i < (uint64_t)n; i++) {
		while ((t = now_ns()) < next) /* pace; polling sends queued data */
			muon_ctx_poll(ctx, 0);
		next = t + 10000;
		while ((rc = muon_publish(pub, &t, sizeof t)) == MUON_EBACKPRESSURE)
			muon_ctx_poll(ctx, 0); /* a subscriber is behind: retry */
	}
	if (rc < 0)
		fprintf(stderr, "publisher: %s: %s\n", muon_strerror((int)rc),
			muon_errmsg());
	muon_pub_destroy(pub);
	muon_ctx_destroy(ctx); /* lingers until subscribers have it all */
	return rc < 0;
}
