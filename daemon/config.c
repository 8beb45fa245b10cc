/*
 * muond's configuration: defaults, then the INI file named by --config
 * (section [muond]), then the command line, each overriding the one
 * before.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "daemon/muond.h"
#include "proto/disc.h"

static const char usage_text[] =
	"usage: muond [OPTION]...\n"
	"The muon discovery daemon: publications register with a lease, "
	"watchers\nare told when they appear and disappear.\n"
	"\n"
	"  --listen LIST        where to accept clients: tcp://HOST:PORT, "
	"HOST:PORT,\n"
	"                       [V6]:PORT or HOST (port 7440); "
	"comma-separated or\n"
	"                       repeated (default " MUOND_DEFAULT_LISTEN ")\n"
	"  --config FILE        read settings from FILE, section [muond]; "
	"options\n"
	"                       given here override it\n"
	"  --name NAME          daemon name sent to clients (default: host "
	"name)\n"
	"  --lease-ms MS        lease granted to sessions (default 5000)\n"
	"  --secret-file FILE   cluster secret (mode 0600 or 0400); without "
	"one,\n"
	"                       registrations are not authenticated\n"
	"  --log-level LEVEL    error, warn, info or debug (default info)\n"
	"  --syslog             log to syslog instead of stderr\n"
	"  --max-frame BYTES    largest message accepted and sent "
	"(default 64K)\n"
	"  --max-topics N       topics with publications (default 100000)\n"
	"  --max-publications N publications in all (default 100000)\n"
	"  --max-publications-per-session N   (default 65536)\n"
	"  --max-clients N      connections at once (default 16384)\n"
	"  --max-watches-per-client N         (default 10000)\n"
	"  --idle-timeout-ms MS close a client silent this long "
	"(default 30000)\n"
	"  --max-output BYTES   unsent output per client before it is cut "
	"off\n"
	"                       (default 16M)\n"
	"  --version            print the version and exit\n"
	"  --help               print this help and exit\n"
	"\n"
	"Sizes take a K, M or G suffix. Each listener is printed on stdout "
	"as\n"
	"'listening tcp://ADDR:PORT' once bound. SIGTERM or SIGINT stops the "
	"daemon.\n"
	"Exit status: 0 after a signal, 1 when it cannot start, 2 on a "
	"usage or\n"
	"configuration error.\n";

enum key_kind { K_LISTEN, K_STR, K_NAME, K_LEVEL, K_BOOL, K_NUM, K_SIZE };

struct key {
	const char *ini;  /* INI key; the flag is this with '-' for '_' */
	enum key_kind kind;
	size_t off;       /* into struct muond_config */
	uint32_t min, max;
};

#define OFF(f) offsetof(struct muond_config, f)
static const struct key keys[] = {
	{ "listen", K_LISTEN, 0, 0, 0 },
	{ "name", K_NAME, OFF(name), 0, 0 },
	{ "lease_ms", K_NUM, OFF(lease_ms), 100, 3600000 },
	{ "secret_file", K_STR, OFF(secret_file), 0, 0 },
	{ "log_level", K_LEVEL, OFF(log_level), 0, 0 },
	{ "syslog", K_BOOL, OFF(syslog), 0, 0 },
	{ "max_frame", K_SIZE, OFF(max_frame), MUONI_DISC_MAX_FRAME_MIN,
	  MUONI_DISC_MAX_FRAME_MAX },
	{ "max_topics", K_NUM, OFF(max_topics), 1, 10000000 },
	{ "max_publications", K_NUM, OFF(max_publications), 1, 10000000 },
	{ "max_publications_per_session", K_NUM,
	  OFF(max_publications_per_session), 1, 10000000 },
	{ "max_clients", K_NUM, OFF(max_clients), 1, 1000000 },
	{ "max_watches_per_client", K_NUM, OFF(max_watches_per_client), 1,
	  10000000 },
	{ "idle_timeout_ms", K_NUM, OFF(idle_timeout_ms), 100, 86400000 },
	{ "max_output", K_SIZE, OFF(max_output), 65536, 1u << 30 },
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static int parse_num(const char *s, bool size, uint32_t min, uint32_t max,
		     uint32_t *out, char *err, size_t errlen)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!isdigit((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (size && *end) {
		switch (*end++) {
		case 'k': case 'K': mul = 1ull << 10; break;
		case 'm': case 'M': mul = 1ull << 20; break;
		case 'g': case 'G': mul = 1ull << 30; break;
		default: goto bad;
		}
	}
	if (errno || *end || v > UINT32_MAX / mul)
		goto bad;
	v *= mul;
	if (v < min || v > max) {
		snprintf(err, errlen, "'%s' is outside [%u, %u]", s, min, max);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not a %s", s,
		 size ? "size (digits, then K, M or G)" : "number");
	return -1;
}

int muond_listen_split(const char *s, char *host, size_t hostlen,
		       char *port, size_t portlen, char *err, size_t errlen)
{
	const char *h = s, *p = NULL, *colon;
	size_t hl;

	if (!strncmp(h, "tcp://", 6))
		h += 6;
	else if (strstr(h, "://")) {
		snprintf(err, errlen, "'%s': only tcp:// is served", s);
		return -1;
	}
	if (*h == '[') {
		const char *close = strchr(h, ']');

		if (!close || (close[1] && close[1] != ':'))
			goto bad;
		hl = (size_t)(close - h - 1);
		h++;
		if (close[1] == ':')
			p = close + 2;
	} else {
		colon = strchr(h, ':');
		/* Two colons without brackets: a bare IPv6 address. */
		if (colon && !strchr(colon + 1, ':'))
			p = colon + 1;
		hl = p ? (size_t)(colon - h) : strlen(h);
	}
	if (!hl || hl >= hostlen)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = 0;
	if (p) {
		uint32_t v;
		char sub[96];

		if (parse_num(p, false, 0, 65535, &v, sub, sizeof(sub))) {
			snprintf(err, errlen, "'%s': port %s", s, sub);
			return -1;
		}
		snprintf(port, portlen, "%u", v);
	} else {
		snprintf(port, portlen, "%u", MUONI_DISC_DEFAULT_PORT);
	}
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not tcp://HOST:PORT, HOST:PORT, "
		 "[V6]:PORT or HOST", s);
	return -1;
}

static void listen_clear(struct muond_config *cfg)
{
	unsigned i;

	for (i = 0; i < cfg->n_listen; i++)
		free(cfg->listen[i]);
	free(cfg->listen);
	cfg->listen = NULL;
	cfg->n_listen = 0;
}

/* Append every entry of a comma-separated list, checking each. */
static int listen_add(struct muond_config *cfg, const char *list, char *err,
		      size_t errlen)
{
	const char *p = list;

	do {
		size_t n = strcspn(p, ",");
		char one[300], host[256], port[8], **grown;

		while (n && isspace((unsigned char)*p))
			p++, n--;
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (!n || n >= sizeof(one)) {
			snprintf(err, errlen, "empty or overlong entry in "
				 "listen list '%s'", list);
			return -1;
		}
		memcpy(one, p, n);
		one[n] = 0;
		if (muond_listen_split(one, host, sizeof(host), port,
				       sizeof(port), err, errlen))
			return -1;
		grown = realloc(cfg->listen,
				(cfg->n_listen + 1) * sizeof(*grown));
		if (!grown) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		cfg->listen = grown;
		cfg->listen[cfg->n_listen] = strdup(one);
		if (!cfg->listen[cfg->n_listen]) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		cfg->n_listen++;
		p += strcspn(p, ",");
	} while (*p++ == ',');
	return 0;
}

static int set_key(struct muond_config *cfg, const struct key *k,
		   const char *v, char *err, size_t errlen)
{
	char *base = (char *)cfg;
	char *dup;

	switch (k->kind) {
	case K_LISTEN:
		return listen_add(cfg, v, err, errlen);
	case K_STR:
		dup = strdup(v);
		if (!dup) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		free(*(char **)(base + k->off));
		*(char **)(base + k->off) = dup;
		return 0;
	case K_NAME:
		if (!*v || strlen(v) > MUONI_DISC_NAME_MAX ||
		    muoni_disc_text_check("name", v, MUONI_DISC_NAME_MAX, err,
					  errlen)) {
			snprintf(err, errlen, "'%s' is not 1 to %u printable "
				 "bytes", v, MUONI_DISC_NAME_MAX);
			return -1;
		}
		snprintf(cfg->name, sizeof(cfg->name), "%s", v);
		return 0;
	case K_LEVEL: {
		static const char *const names[] = { "error", "warn", "info",
						      "debug" };
		int i;

		for (i = 0; i < 4; i++)
			if (!strcasecmp(v, names[i])) {
				cfg->log_level = MUOND_ERROR + i;
				return 0;
			}
		snprintf(err, errlen, "'%s' is not error, warn, info or debug",
			 v);
		return -1;
	}
	case K_BOOL:
		if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
		    !strcasecmp(v, "on") || !strcmp(v, "1"))
			cfg->syslog = true;
		else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") ||
			 !strcasecmp(v, "off") || !strcmp(v, "0"))
			cfg->syslog = false;
		else {
			snprintf(err, errlen, "'%s' is not true or false", v);
			return -1;
		}
		return 0;
	case K_NUM:
	case K_SIZE:
		return parse_num(v, k->kind == K_SIZE, k->min, k->max,
				 (uint32_t *)(void *)(base + k->off), err,
				 errlen);
	}
	return -1;
}

static const struct key *key_find(const char *name)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++)
		if (!strcmp(keys[i].ini, name))
			return &keys[i];
	return NULL;
}

struct ini_ctx {
	struct muond_config *cfg;
	char err[512]; /* the first error only: ini_parse gives its line */
	bool listen_seen;
};

static int muond_ini_key(void *user, const char *section, const char *name,
		       const char *value)
{
	struct ini_ctx *ic = user;
	const struct key *k;
	char sub[400];

	if (ic->err[0])
		return 0;
	if (strcmp(section, "muond")) {
		snprintf(ic->err, sizeof(ic->err), "key '%s' outside section "
			 "[muond] (in '[%s]')", name, section);
		return 0;
	}
	k = key_find(name);
	if (!k) {
		snprintf(ic->err, sizeof(ic->err), "unknown key '%s'", name);
		return 0;
	}
	/* The file's listen entries replace the default, and add up. */
	if (k->kind == K_LISTEN && !ic->listen_seen) {
		listen_clear(ic->cfg);
		ic->listen_seen = true;
	}
	if (set_key(ic->cfg, k, value, sub, sizeof(sub))) {
		snprintf(ic->err, sizeof(ic->err), "key '%s': %s", name, sub);
		return 0;
	}
	return 1;
}

static int config_file_load(struct muond_config *cfg, const char *path)
{
	struct ini_ctx ic = { .cfg = cfg };
	int line = ini_parse(path, muond_ini_key, &ic);

	if (line == -1) {
		fprintf(stderr, "muond: %s: %s\n", path, strerror(errno));
		return 2;
	}
	if (line) {
		fprintf(stderr, "muond: %s:%d: %s\n", path, line,
			ic.err[0] ? ic.err : "syntax error");
		return 2;
	}
	return 0;
}

enum { OPT_HELP = 0x100, OPT_VERSION, OPT_SYSLOG, OPT_KEY };

static struct option long_opts[N_KEYS + 4];

/* Flags derive from the key table: one name to keep in step. */
static void opts_build(char names[N_KEYS][40])
{
	size_t i, j, n = 0;

	for (i = 0; i < N_KEYS; i++) {
		for (j = 0; keys[i].ini[j] && j < 39; j++)
			names[i][j] = keys[i].ini[j] == '_' ? '-'
							    : keys[i].ini[j];
		names[i][j] = 0;
		long_opts[n++] = (struct option){
			names[i],
			keys[i].kind == K_BOOL ? no_argument
					       : required_argument,
			NULL, OPT_KEY + (int)i };
	}
	long_opts[n++] = (struct option){ "config", required_argument, NULL,
					  'c' };
	long_opts[n++] = (struct option){ "help", no_argument, NULL,
					  OPT_HELP };
	long_opts[n++] = (struct option){ "version", no_argument, NULL,
					  OPT_VERSION };
	long_opts[n] = (struct option){ NULL, 0, NULL, 0 };
}

int muond_config_load(struct muond_config *cfg, int argc, char **argv)
{
	char names[N_KEYS][40], err[400];
	bool listen_flag = false;
	int opt, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = MUOND_INFO;
	cfg->lease_ms = 5000;
	cfg->max_frame = MUONI_DISC_MAX_FRAME_DEFAULT;
	cfg->max_topics = 100000;
	cfg->max_publications = 100000;
	cfg->max_publications_per_session = 65536;
	cfg->max_clients = 16384;
	cfg->max_watches_per_client = 10000;
	cfg->idle_timeout_ms = 30000;
	cfg->max_output = 16u << 20;
	if (gethostname(cfg->name, sizeof(cfg->name) - 1) || !cfg->name[0])
		snprintf(cfg->name, sizeof(cfg->name), "muond");
	cfg->name[strcspn(cfg->name, ".")] = 0;
	opts_build(names);

	/* First pass: what ends at once, and the file to read first. */
	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 1;
		case OPT_VERSION:
			printf("muond %s (protocol %u)\n", MUOND_VERSION,
			       MUONI_DISC_VERSION);
			return 1;
		case 'c':
			free(cfg->config_file);
			cfg->config_file = strdup(optarg);
			if (!cfg->config_file)
				return 2;
			break;
		case '?':
			if (optopt)
				fprintf(stderr, "muond: option '%s' needs a "
					"value\n", argv[optind - 1]);
			else
				fprintf(stderr, "muond: unknown option "
					"'%s'\n", argv[optind - 1]);
			fprintf(stderr, "Try 'muond --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "muond: unexpected argument '%s'\nTry 'muond "
			"--help'.\n", argv[optind]);
		return 2;
	}
	if (listen_add(cfg, MUOND_DEFAULT_LISTEN, err, sizeof(err)))
		return 2;
	if (cfg->config_file) {
		rc = config_file_load(cfg, cfg->config_file);
		if (rc)
			return rc;
	}

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		const struct key *k;

		if (opt < OPT_KEY)
			continue;
		k = &keys[opt - OPT_KEY];
		if (k->kind == K_LISTEN && !listen_flag) {
			listen_clear(cfg);
			listen_flag = true;
		}
		if (set_key(cfg, k, k->kind == K_BOOL ? "true" : optarg, err,
			    sizeof(err))) {
			fprintf(stderr, "muond: --%s: %s\n", names[k - keys],
				err);
			return 2;
		}
	}
	return 0;
}

void muond_config_fini(struct muond_config *cfg)
{
	if (!cfg)
		return;
	listen_clear(cfg);
	free(cfg->config_file);
	free(cfg->secret_file);
	cfg->config_file = cfg->secret_file = NULL;
}
