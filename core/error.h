/*
 * Error detail: a per-thread message that records where an error started and
 * lets every caller on the way up add context (Aeron-style). Status codes
 * stay plain ints from muon_status_t; this only carries the story.
 */
#ifndef MUONI_ERROR_H
#define MUONI_ERROR_H

#include <muon/muon.h>

/* Start a new message at file:line, return `status` so call sites read
 * `return MUONI_ERR(MUON_EINVAL, "ring_size %u not a power of two", x);`. */
#define MUONI_ERR(status, ...) \
	muoni_err_set((status), __FILE__, __LINE__, __VA_ARGS__)

int muoni_err_set(int status, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Put "context: " in front of the current message; returns `status`. */
int muoni_err_push(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Record errno as the cause: "what: strerror(errno)", mapped to a status. */
#define MUONI_ERR_ERRNO(what, ...) \
	muoni_err_errno(__FILE__, __LINE__, (what), ##__VA_ARGS__)
int muoni_err_errno(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const char *muoni_err_msg(void);
void muoni_err_clear(void);

#endif
