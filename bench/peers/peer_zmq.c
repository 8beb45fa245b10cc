/*
 * muon-peer-zmq: the ZeroMQ backend of the peer benchmark (libzmq, Debian
 * package libzmq3-dev). One context per process with libzmq's default of one
 * I/O thread; ZMQ_PAIR sockets for ping-pong, ZMQ_PUSH/ZMQ_PULL (or PAIR)
 * for throughput, high-water marks raised (peer.h), TCP_NODELAY as libzmq
 * always sets it.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct peer_sock {
	void *s;
};

static void *ctx;

static const char *zversion(void)
{
	static char v[32];
	int a, b, c;

	zmq_version(&a, &b, &c);
	snprintf(v, sizeof(v), "%d.%d.%d", a, b, c);
	return v;
}

static int zfail(const char *what, const char *arg)
{
	fprintf(stderr, "%s: %s%s%s: %s\n", peer_prog, what, arg ? " " : "",
		arg ? arg : "", zmq_strerror(zmq_errno()));
	return -1;
}

static int zstart(void)
{
	ctx = zmq_ctx_new();
	if (!ctx)
		return zfail("zmq_ctx_new", NULL);
	return 0;
}

static void zstop(void)
{
	if (ctx)
		zmq_ctx_term(ctx);
	ctx = NULL;
}

static int setint(void *s, int opt, int v, const char *name)
{
	if (zmq_setsockopt(s, opt, &v, sizeof(v)) != 0)
		return zfail("zmq_setsockopt", name);
	return 0;
}

static struct peer_sock *zopen(enum peer_pattern pat, enum peer_dir dir,
			       const struct peer_sockopts *o)
{
	int type = pat == PEER_PAIR ? ZMQ_PAIR
		 : dir == PEER_SEND ? ZMQ_PUSH : ZMQ_PULL;
	struct peer_sock *p = calloc(1, sizeof(*p));
	int hwm = o->hwm;

	if (!p) {
		fprintf(stderr, "%s: out of memory\n", peer_prog);
		return NULL;
	}
	if (hwm == 0) {
		/* 64 MiB of messages, within [1000, 1000000]. */
		size_t n = (64u << 20) / (o->size ? o->size : 1);

		hwm = n < 1000 ? 1000 : n > 1000000 ? 1000000 : (int)n;
	}
	p->s = zmq_socket(ctx, type);
	if (!p->s) {
		zfail("zmq_socket", NULL);
		free(p);
		return NULL;
	}
	if (setint(p->s, ZMQ_SNDHWM, hwm, "ZMQ_SNDHWM") ||
	    setint(p->s, ZMQ_RCVHWM, hwm, "ZMQ_RCVHWM") ||
	    setint(p->s, ZMQ_SNDTIMEO, PEER_TIMEOUT_MS, "ZMQ_SNDTIMEO") ||
	    setint(p->s, ZMQ_RCVTIMEO, PEER_TIMEOUT_MS, "ZMQ_RCVTIMEO") ||
	    setint(p->s, ZMQ_LINGER, PEER_TIMEOUT_MS, "ZMQ_LINGER")) {
		zmq_close(p->s);
		free(p);
		return NULL;
	}
	return p;
}

static void zclose(struct peer_sock *p)
{
	zmq_close(p->s);
	free(p);
}

static struct peer_sock *zlisten(enum peer_pattern pat, enum peer_dir dir,
				 const struct peer_sockopts *o,
				 enum peer_transport tr, const char *ipc_path,
				 char *url, size_t url_len)
{
	struct peer_sock *p = zopen(pat, dir, o);
	char ep[512];
	size_t n = sizeof(ep);

	if (!p)
		return NULL;
	if (tr == PEER_TCP)
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:*");
	else
		snprintf(ep, sizeof(ep), "ipc://%s", ipc_path);
	if (zmq_bind(p->s, ep) != 0) {
		zfail("zmq_bind", ep);
		zclose(p);
		return NULL;
	}
	/* The port the system chose. */
	if (zmq_getsockopt(p->s, ZMQ_LAST_ENDPOINT, ep, &n) != 0) {
		zfail("zmq_getsockopt", "ZMQ_LAST_ENDPOINT");
		zclose(p);
		return NULL;
	}
	if (strlen(ep) >= url_len) {
		fprintf(stderr, "%s: endpoint too long: %s\n", peer_prog, ep);
		zclose(p);
		return NULL;
	}
	strcpy(url, ep);
	return p;
}

static struct peer_sock *zconnect(enum peer_pattern pat, enum peer_dir dir,
				  const struct peer_sockopts *o,
				  const char *url)
{
	struct peer_sock *p = zopen(pat, dir, o);

	if (!p)
		return NULL;
	/* Connects in the background; the first send or receive waits for
	 * it (bounded by the timeouts). */
	if (zmq_connect(p->s, url) != 0) {
		zfail("zmq_connect", url);
		zclose(p);
		return NULL;
	}
	return p;
}

static int zsend(struct peer_sock *p, const void *buf, size_t len)
{
	while (zmq_send(p->s, buf, len, 0) < 0) {
		if (zmq_errno() == EINTR)
			continue;
		if (zmq_errno() == EAGAIN)
			fprintf(stderr, "%s: zmq_send: nothing sent within "
				"%d s\n", peer_prog, PEER_TIMEOUT_MS / 1000);
		else
			zfail("zmq_send", NULL);
		return -1;
	}
	return 0;
}

static int zrecv(struct peer_sock *p, void *buf, size_t cap, size_t *len,
		 int nonblock)
{
	int n;

	for (;;) {
		n = zmq_recv(p->s, buf, cap, nonblock ? ZMQ_DONTWAIT : 0);
		if (n >= 0)
			break;
		if (zmq_errno() == EINTR)
			continue;
		if (zmq_errno() == EAGAIN) {
			if (nonblock)
				return 0;
			fprintf(stderr, "%s: zmq_recv: no message within "
				"%d s\n", peer_prog, PEER_TIMEOUT_MS / 1000);
			return -1;
		}
		return zfail("zmq_recv", NULL);
	}
	*len = (size_t)n; /* the full length, even when cut to cap */
	return 1;
}

const struct peer_lib peer_lib = {
	.name = "zmq",
	.version = zversion,
	.start = zstart,
	.stop = zstop,
	.listen = zlisten,
	.connect = zconnect,
	.send = zsend,
	.recv = zrecv,
	.close = zclose,
};
