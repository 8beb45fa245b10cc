/* Links against an installed muon: version, then a context with defaults. */
#include <muon/muon.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	muon_ctx_config_t cfg;
	muon_ctx_t *ctx = NULL;
	char want[32];

	snprintf(want, sizeof want, "%d.%d.%d", MUON_VERSION_MAJOR,
		 MUON_VERSION_MINOR, MUON_VERSION_PATCH);
	if (strcmp(muon_version(), want) != 0) {
		fprintf(stderr, "header %s, library %s\n", want, muon_version());
		return 1;
	}
	muon_ctx_config_init(&cfg);
	cfg.ignore_env = 1;
	int rc = muon_ctx_create(&cfg, &ctx);
	if (rc != MUON_OK) {
		fprintf(stderr, "muon_ctx_create: %s: %s\n", muon_strerror(rc),
			muon_errmsg());
		return 1;
	}
	muon_ctx_destroy(ctx);
	printf("OK muon %s\n", muon_version());
	return 0;
}
