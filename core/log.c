#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "core/muoni.h"

const char *muoni_log_level_name(int level)
{
	static const char *const names[] = {"none", "error", "warn", "info",
					    "debug"};

	return level >= 0 && level <= MUON_LOG_DEBUG ? names[level] : NULL;
}

void muoni_log(const struct muon_ctx *ctx, muon_log_level_t lvl,
	       const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (ctx && lvl > ctx->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx && ctx->cfg.log_fn) {
		ctx->cfg.log_fn(ctx->cfg.log_arg, lvl, msg);
		return;
	}
	/* One fprintf per line so lines from several processes do not mix. */
	fprintf(stderr, "muon[%s] %s: %s\n", ctx ? ctx->cfg.name : "-",
		muoni_log_level_name(lvl) ? muoni_log_level_name(lvl) : "?", msg);
}
