#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MUONI_ERRMSG_LEN 1024

static _Thread_local char err_buf[MUONI_ERRMSG_LEN];

static const char *err_basename(const char *file)
{
	/* Keep "core/x.c" rather than the absolute build path: from the
	 * source tree's top directory, else the last directory and file. */
	static const char *const tops[] = {"/core/", "/transport/", "/api/",
					   "/proto/", "/daemon/", "/tools/"};
	const char *p, *last = strrchr(file, '/');
	size_t i;

	for (i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
		if ((p = strstr(file, tops[i])))
			return p + 1;
	if (!last)
		return file;
	for (p = last; p > file && p[-1] != '/'; p--)
		;
	return p;
}

int muoni_err_set(int status, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err_buf, sizeof(err_buf), "%s:%d: ",
			 err_basename(file), line);
	if (n < 0 || (size_t)n >= sizeof(err_buf))
		return status;
	va_start(ap, fmt);
	vsnprintf(err_buf + n, sizeof(err_buf) - (size_t)n, fmt, ap);
	va_end(ap);
	return status;
}

int muoni_err_push(int status, const char *fmt, ...)
{
	char old[MUONI_ERRMSG_LEN];
	va_list ap;
	int n;

	memcpy(old, err_buf, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(err_buf) - 3)
		return status;
	/* Append ": old", cut to fit; by hand so the compiler's truncation
	 * warning has nothing to say. */
	{
		size_t pos = (size_t)n, room = sizeof(err_buf) - pos - 3;
		size_t olen = strnlen(old, room);

		err_buf[pos++] = ':';
		err_buf[pos++] = ' ';
		memcpy(err_buf + pos, old, olen);
		err_buf[pos + olen] = '\0';
	}
	return status;
}

static int errno_status(int e)
{
	switch (e) {
	case ENOMEM:
		return MUON_ENOMEM;
	case EINVAL:
		return MUON_EINVAL;
	case ENOENT:
	case ECONNREFUSED:
		return MUON_ENOTFOUND;
	case EAGAIN:
		return MUON_EAGAIN;
	case ETIMEDOUT:
		return MUON_ETIMEDOUT;
	case EPIPE:
	case ECONNRESET:
		return MUON_ECLOSED;
	case EMFILE:
	case ENFILE:
		return MUON_ELIMIT;
	default:
		return MUON_EIO;
	}
}

int muoni_err_errno(const char *file, int line, const char *fmt, ...)
{
	int e = errno;
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return muoni_err_set(errno_status(e), file, line, "%s: %s", what,
			     strerror(e));
}

const char *muoni_err_msg(void)
{
	return err_buf[0] ? err_buf : "no error detail recorded";
}

void muoni_err_clear(void)
{
	err_buf[0] = '\0';
}
