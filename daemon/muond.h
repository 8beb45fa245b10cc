/*
 * muond, the discovery daemon: configuration, logging and the server,
 * shared between its files. The state (state.h) stands alone.
 */
#ifndef MUOND_H
#define MUOND_H

#include <stdbool.h>
#include <stdint.h>

#define MUOND_VERSION "0.1.0"
#define MUOND_DEFAULT_LISTEN "tcp://0.0.0.0:7440"
#define MUOND_HELLO_TIMEOUT_MS 5000u

enum muond_level {
	MUOND_ERROR = 1,
	MUOND_WARN = 2,
	MUOND_INFO = 3,
	MUOND_DEBUG = 4,
};

struct muond_config {
	char **listen; /* as given; parsed again when binding */
	unsigned n_listen;
	char *config_file;
	char *secret_file;
	char name[33];
	int log_level;
	bool syslog;
	uint32_t lease_ms;
	uint32_t max_frame;
	uint32_t max_topics;
	uint32_t max_publications;
	uint32_t max_publications_per_session;
	uint32_t max_clients;
	uint32_t max_watches_per_client;
	uint32_t idle_timeout_ms;
	uint32_t max_output;
};

/* config.c. Returns 0 to run, 1 when done (--help, --version: exit 0),
 * 2 on a usage or configuration error (already reported on stderr). */
int muond_config_load(struct muond_config *cfg, int argc, char **argv);
void muond_config_fini(struct muond_config *cfg);
/* "tcp://HOST:PORT", "HOST:PORT", "[V6]:PORT" or "HOST" (port 7440).
 * 0, or -1 with a reason in `err`. */
int muond_listen_split(const char *s, char *host, size_t hostlen,
		       char *port, size_t portlen, char *err, size_t errlen);

/* muond.c */
void muond_log_open(int level, bool use_syslog);
void muond_log_close(void);
bool muond_log_enabled(int level);
void muond_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Client rejections: at most a burst per second, then a count. */
void muond_log_reject(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* server.c */
struct ev_loop;
struct muond_server;
int muond_server_new(struct ev_loop *loop, const struct muond_config *cfg,
		     const uint8_t *key, struct muond_server **out);
void muond_server_free(struct muond_server *s);

#endif
