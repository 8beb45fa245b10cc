/*
 * Discovery protocol codec, shared by the library's discovery client,
 * muond and muonctl: length-prefixed frames, the protocol version, the
 * HMAC that authenticates each message, and checks of every field a peer
 * sends. docs/discovery.md describes the protocol; this is its one
 * implementation of the wire format.
 */
#ifndef MUONI_DISC_H
#define MUONI_DISC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "muon_discovery.pb-c.h"

#define MUONI_DISC_VERSION 1u
#define MUONI_DISC_NONCE_LEN 16u
#define MUONI_DISC_MAC_LEN 16u
#define MUONI_DISC_LEN_BYTES 4u
#define MUONI_DISC_MAX_FRAME_DEFAULT 65536u
#define MUONI_DISC_MAX_FRAME_MIN 1024u
#define MUONI_DISC_MAX_FRAME_MAX (16u << 20)
#define MUONI_DISC_TOPIC_MAX 255u
#define MUONI_DISC_MAX_ENDPOINTS 8u
#define MUONI_DISC_ENDPOINT_MAX 127u
#define MUONI_DISC_HOST_ID_MAX 64u
#define MUONI_DISC_NAME_MAX 32u
#define MUONI_DISC_DEFAULT_PORT 7440u
#define MUONI_DISC_MAX_DAEMONS 16u

/* A byte queue: bytes received and not yet parsed, or encoded and not yet
 * sent. `off` is where unconsumed data starts. */
struct muoni_disc_buf {
	uint8_t *data;
	size_t off;
	size_t len; /* end of valid data */
	size_t cap;
};

void muoni_disc_buf_fini(struct muoni_disc_buf *b);
static inline size_t muoni_disc_buf_used(const struct muoni_disc_buf *b)
{
	return b->len - b->off;
}
/* Make room for `n` more bytes at data + len. 0 or MUON_ENOMEM. */
int muoni_disc_buf_reserve(struct muoni_disc_buf *b, size_t n);
void muoni_disc_buf_consume(struct muoni_disc_buf *b, size_t n);

/*
 * Encode `m` as one length-prefixed Frame at the end of `out`, with a MAC
 * over (nonce, body) when `key` is not NULL. Fails with MUON_ETOOBIG when
 * the frame would exceed `max_frame` (`out` unchanged), MUON_ENOMEM when
 * out of memory.
 */
int muoni_disc_pack(struct muoni_disc_buf *out, const Muon__Disc__Message *m,
		    const uint8_t *key, const uint8_t *nonce, size_t max_frame);

/* The MAC's fixed prefix (key, label, nonce) hashed once per connection:
 * a sender to one peer copies it per message instead of rehashing. */
struct muoni_disc_mac {
	crypto_auth_hmacsha256_state st;
};

void muoni_disc_mac_init(struct muoni_disc_mac *mac, const uint8_t *key,
			 const uint8_t *nonce);
void muoni_disc_mac_wipe(struct muoni_disc_mac *mac);

/* muoni_disc_pack with a prepared MAC state (NULL: no MAC). */
int muoni_disc_pack_mac(struct muoni_disc_buf *out,
			const Muon__Disc__Message *m,
			const struct muoni_disc_mac *mac, size_t max_frame);

/*
 * The next complete frame in `in`, if any: 1 and (*frame, *len) pointing
 * into the buffer (consume MUONI_DISC_LEN_BYTES + *len afterwards), 0 when
 * more bytes are needed, MUON_ETOOBIG when the length prefix announces more
 * than `max_frame` (or zero bytes: MUON_EPROTO).
 */
int muoni_disc_next(const struct muoni_disc_buf *in, size_t max_frame,
		    const uint8_t **frame, size_t *len);

/*
 * Decode one frame: its version, its MAC when `key` is not NULL (a missing
 * MAC is then an error; a MAC present without a key is ignored), and its
 * body. On failure returns a negative status, sets *code to the
 * Muon__Disc__Error__Code to send back and writes a reason to `err`.
 * On success *out is the message; free it with
 * muon__disc__message__free_unpacked(*out, NULL).
 */
int muoni_disc_unpack(const uint8_t *frame, size_t len, const uint8_t *key,
		      const uint8_t *nonce, Muon__Disc__Message **out,
		      int *code, char *err, size_t errlen);

/* Field checks, shared by both ends (each distrusts the other). Each
 * returns 0 or MUON_EINVAL with a reason in `err`. */
int muoni_disc_topic_check(const char *topic, bool allow_empty, char *err,
			   size_t errlen);
int muoni_disc_pub_check(const Muon__Disc__Publication *p, char *err,
			 size_t errlen);
int muoni_disc_text_check(const char *what, const char *s, size_t max,
			  char *err, size_t errlen);

/* Name of an error code, for logs ("AUTH"). */
const char *muoni_disc_code_name(int code);

struct muoni_endpoint;
/*
 * Parse a comma-separated list of daemon addresses: "tcp://HOST:PORT",
 * "HOST:PORT", "[V6]:PORT", "HOST" or "V6" (port 7440), at most
 * MUONI_DISC_MAX_DAEMONS. NULL or "" gives none. MUON_ECONFIG naming the
 * bad entry; on success *out (free()) and *n.
 */
int muoni_disc_daemons_parse(const char *list, struct muoni_endpoint **out,
			     unsigned *n);

/* This host's id: /etc/machine-id, else the host name. */
void muoni_disc_host_id(char *out, size_t n);

#endif
