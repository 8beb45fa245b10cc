/*
 * muon-peer-nng: the NNG backend of the peer benchmark (Debian package
 * libnng-dev). pair1 sockets for ping-pong, push0/pull0 (or pair1) for
 * throughput, send and receive buffers at their maximum (8192 messages)
 * unless --hwm says otherwise, TCP_NODELAY as NNG sets it by default.
 * nng_send copies the buffer into a message and nng_recv copies it out,
 * as the zmq backend's zmq_send and zmq_recv do.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#include "peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

struct peer_sock {
	nng_socket s;
};

static const char *nversion(void)
{
	return nng_version();
}

static int nfail(const char *what, const char *arg, int err)
{
	fprintf(stderr, "%s: %s%s%s: %s\n", peer_prog, what, arg ? " " : "",
		arg ? arg : "", nng_strerror(err));
	return -1;
}

static int nstart(void)
{
	return 0; /* NNG starts its threads with the first socket */
}

static void nstop(void)
{
	nng_fini();
}

static struct peer_sock *nopen(enum peer_pattern pat, enum peer_dir dir,
			       const struct peer_sockopts *o)
{
	struct peer_sock *p = calloc(1, sizeof(*p));
	int hwm = o->hwm ? o->hwm : 8192;
	int e;

	if (!p) {
		fprintf(stderr, "%s: out of memory\n", peer_prog);
		return NULL;
	}
	if (pat == PEER_PAIR)
		e = nng_pair1_open(&p->s);
	else if (dir == PEER_SEND)
		e = nng_push0_open(&p->s);
	else
		e = nng_pull0_open(&p->s);
	if (e) {
		nfail("opening a socket", NULL, e);
		free(p);
		return NULL;
	}
	/* The receive limit counts protocol headers too (pair1's hop count),
	 * hence the margin. Push has no receive buffer and pull no send buffer. */
	if (dir != PEER_RECV &&
	    (e = nng_socket_set_int(p->s, NNG_OPT_SENDBUF, hwm)) != 0)
		goto fail_opt;
	if (dir != PEER_SEND &&
	    (e = nng_socket_set_int(p->s, NNG_OPT_RECVBUF, hwm)) != 0)
		goto fail_opt;
	if ((e = nng_socket_set_ms(p->s, NNG_OPT_SENDTIMEO,
				   PEER_TIMEOUT_MS)) != 0 ||
	    (e = nng_socket_set_ms(p->s, NNG_OPT_RECVTIMEO,
				   PEER_TIMEOUT_MS)) != 0 ||
	    (e = nng_socket_set_size(p->s, NNG_OPT_RECVMAXSZ,
				     o->size + 4096)) != 0)
		goto fail_opt;
	return p;
fail_opt:
	nfail("nng_socket_set", "(buffers, timeouts, size)", e);
	nng_close(p->s);
	free(p);
	return NULL;
}

static void nclose(struct peer_sock *p)
{
	nng_close(p->s);
	free(p);
}

static struct peer_sock *nlisten(enum peer_pattern pat, enum peer_dir dir,
				 const struct peer_sockopts *o,
				 enum peer_transport tr, const char *ipc_path,
				 char *url, size_t url_len)
{
	struct peer_sock *p = nopen(pat, dir, o);
	nng_listener l;
	char ep[512];
	int e, port;

	if (!p)
		return NULL;
	if (tr == PEER_TCP)
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:0");
	else
		snprintf(ep, sizeof(ep), "ipc://%s", ipc_path);
	if ((e = nng_listener_create(&l, p->s, ep)) != 0 ||
	    (e = nng_listener_start(l, 0)) != 0) {
		nfail("nng_listen", ep, e);
		nclose(p);
		return NULL;
	}
	if (tr == PEER_TCP) {
		/* The port the system chose. */
		e = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
		if (e) {
			nfail("nng_listener_get_int", NNG_OPT_TCP_BOUND_PORT,
			      e);
			nclose(p);
			return NULL;
		}
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
	}
	if (strlen(ep) >= url_len) {
		fprintf(stderr, "%s: endpoint too long: %s\n", peer_prog, ep);
		nclose(p);
		return NULL;
	}
	strcpy(url, ep);
	return p;
}

static struct peer_sock *nconnect(enum peer_pattern pat, enum peer_dir dir,
				  const struct peer_sockopts *o,
				  const char *url)
{
	struct peer_sock *p = nopen(pat, dir, o);
	int e;

	if (!p)
		return NULL;
	/* Synchronous: returns once connected. */
	if ((e = nng_dial(p->s, url, NULL, 0)) != 0) {
		nfail("nng_dial", url, e);
		nclose(p);
		return NULL;
	}
	return p;
}

static int nsend(struct peer_sock *p, const void *buf, size_t len)
{
	int e = nng_send(p->s, (void *)buf, len, 0);

	if (e == NNG_ETIMEDOUT)
		fprintf(stderr, "%s: nng_send: nothing sent within %d s\n",
			peer_prog, PEER_TIMEOUT_MS / 1000);
	else if (e)
		nfail("nng_send", NULL, e);
	return e ? -1 : 0;
}

static int nrecv(struct peer_sock *p, void *buf, size_t cap, size_t *len,
		 int nonblock)
{
	size_t n = cap;
	int e = nng_recv(p->s, buf, &n, nonblock ? NNG_FLAG_NONBLOCK : 0);

	if (e == 0) {
		*len = n;
		return 1;
	}
	if (e == NNG_EAGAIN && nonblock)
		return 0;
	if (e == NNG_ETIMEDOUT)
		fprintf(stderr, "%s: nng_recv: no message within %d s\n",
			peer_prog, PEER_TIMEOUT_MS / 1000);
	else
		nfail("nng_recv", NULL, e);
	return -1;
}

const struct peer_lib peer_lib = {
	.name = "nng",
	.version = nversion,
	.start = nstart,
	.stop = nstop,
	.listen = nlisten,
	.connect = nconnect,
	.send = nsend,
	.recv = nrecv,
	.close = nclose,
};
