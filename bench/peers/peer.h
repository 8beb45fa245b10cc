/*
 * muon-peer-zmq, muon-peer-nng: the figures muon-bench measures for muon,
 * measured the same way for ZeroMQ and NNG, so that bench/compare-peers.sh
 * can print ratios. peer.c holds everything but the library calls; each
 * library is one backend (peer_zmq.c, peer_nng.c) behind struct peer_lib.
 *
 * Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
 */
#ifndef MUON_PEER_H
#define MUON_PEER_H

#include <stddef.h>

/* Every blocking call of a backend gives up after this long. */
#define PEER_TIMEOUT_MS 10000

/* The program's name, for messages ("muon-peer-zmq"). */
extern const char *peer_prog;

enum peer_transport { PEER_TCP, PEER_IPC };

/* Socket kinds: a pair socket at both ends, or a pipeline (push, pull). */
enum peer_pattern { PEER_PAIR, PEER_PIPELINE };

/* What this end does with the socket (chooses push or pull). */
enum peer_dir { PEER_SEND, PEER_RECV, PEER_BOTH };

struct peer_sock;

/* Socket options every socket gets. */
struct peer_sockopts {
	size_t size;          /* largest message */
	int hwm;              /* queue limit in messages (0: library default) */
};

struct peer_lib {
	const char *name;     /* "zmq", "nng": the "impl" of the JSON */
	const char *(*version)(void);
	/* Per process, after the fork: 0 or -1 (message printed). */
	int (*start)(void);
	void (*stop)(void);
	/*
	 * Listen on a fresh endpoint of `tr`: loopback TCP on a port the
	 * system picks, or the IPC socket file `ipc_path`. The URL that
	 * the other side connects to goes into `url`. NULL on failure
	 * (message printed).
	 */
	struct peer_sock *(*listen)(enum peer_pattern pat, enum peer_dir dir,
				    const struct peer_sockopts *o,
				    enum peer_transport tr,
				    const char *ipc_path, char *url,
				    size_t url_len);
	/* Connect to `url`; returns once connected or it failed. */
	struct peer_sock *(*connect)(enum peer_pattern pat, enum peer_dir dir,
				     const struct peer_sockopts *o,
				     const char *url);
	/* Send len bytes (0 allowed), blocking: 0, or -1 (message printed). */
	int (*send)(struct peer_sock *s, const void *buf, size_t len);
	/*
	 * Receive one message into buf (cap bytes): 1 and its full length
	 * in *len; with `nonblock`, 0 when none is there; -1 on error or
	 * timeout (message printed).
	 */
	int (*recv)(struct peer_sock *s, void *buf, size_t cap, size_t *len,
		    int nonblock);
	void (*close)(struct peer_sock *s);
};

extern const struct peer_lib peer_lib;

#endif /* MUON_PEER_H */
