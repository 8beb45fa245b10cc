/*
 * libFuzzer target: everything a peer can send, through the whole receive
 * path. The input is cut into frames (each header's own len decides where
 * the next starts, as on a TCP stream); every frame is checked with
 * muoni_frame_check() like a transport does, then handed to muoni_conn_rx()
 * of a connection whose transport is a stub that accepts every push. The
 * context has a publication and a subscription, so SUBSCRIBE, STREAM_INFO,
 * LOSS and DATA all reach real state. The first input byte picks whether
 * the connection starts as the connecting or the accepting side, and
 * whether the handshake is done already. A protocol error closes the
 * connection and the next frame goes to a fresh one.
 *
 * Also runs every control-message decoder on the raw input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/muoni.h"

struct stub_conn {
	struct muoni_conn base;
};

static int stub_push(struct muoni_conn *c, const uint8_t *f, size_t len,
		     size_t *taken)
{
	size_t off = 0;

	(void)c;
	/* Walk what core pushes: it must be well-formed frames. */
	while (off < len) {
		const struct muoni_frame_hdr *h = (const void *)(f + off);
		if (h->len < MUONI_FRAME_HDR_LEN || muoni_align8(h->len) >
		    len - off)
			abort();
		off += muoni_align8(h->len);
	}
	*taken = len;
	return 0;
}

static int stub_push_msg(struct muoni_conn *c, uint32_t stream_id,
			 uint64_t seq, const void *p, uint32_t plen)
{
	(void)c;
	(void)stream_id;
	(void)seq;
	(void)p;
	(void)plen;
	return 1;
}

static int stub_ctrl(struct muoni_conn *c, const void *f, size_t len)
{
	(void)c;
	(void)f;
	if (len < MUONI_FRAME_HDR_LEN)
		abort();
	return 0;
}

static int stub_poll(struct muoni_conn *c, unsigned budget)
{
	(void)c;
	(void)budget;
	return 0;
}

static int stub_arm(struct muoni_conn *c)
{
	(void)c;
	return 0;
}

static void stub_destroy(struct muoni_conn *c)
{
	free(c);
}

static const struct muoni_transport_ops stub_ops = {
	.name = "stub",
	.destroy = stub_destroy,
	.push = stub_push,
	.push_msg = stub_push_msg,
	.poll = stub_poll,
	.ctrl_send = stub_ctrl,
	.arm = stub_arm,
};

static void on_msg(void *arg, const muon_msg_t *m)
{
	static volatile uint8_t sink;
	size_t i;

	(void)arg;
	/* Touch every byte we were told is there. */
	for (i = 0; i < m->len; i++)
		sink = sink ^ ((const uint8_t *)m->data)[i];
}

static struct muoni_conn *new_conn(struct muon_ctx *ctx, uint8_t mode)
{
	struct stub_conn *sc = calloc(1, sizeof(*sc));
	struct muoni_conn *c;

	if (!sc)
		abort();
	c = &sc->base;
	muoni_conn_init(c, ctx, &stub_ops, mode & 1, "fuzz");
	if (mode & 1)
		muoni_conn_transport_up(c);
	if (mode & 2) {
		/* Skip the handshake: as if HELLO from ctx id 7 arrived. */
		uint8_t buf[128];
		struct muoni_hello h = {.version = MUONI_PROTO_VERSION,
					.ctx_id = 7};
		struct muoni_frame_hdr fh;

		muoni_enc_hello(buf, sizeof(buf), &h);
		memcpy(&fh, buf, sizeof(fh));
		if (c->state != MUONI_CONN_HANDSHAKE)
			c->state = MUONI_CONN_HANDSHAKE;
		muoni_conn_rx(c, &fh, buf + MUONI_FRAME_HDR_LEN);
	}
	return c;
}

static void decoders(const uint8_t *d, size_t n)
{
	struct muoni_hello h;
	struct muoni_subscribe s;
	struct muoni_stream_info si;
	char topic[MUONI_TOPIC_MAX + 1];
	uint32_t tl, reason;
	uint64_t to;

	muoni_dec_hello(d, n, &h);
	if (muoni_dec_subscribe(d, n, &s) == 0) {
		struct muoni_resume r;
		uint32_t i;

		for (i = 0; i < s.n_resume; i++)
			muoni_subscribe_resume_get(&s, i, &r);
	}
	muoni_dec_unsubscribe(d, n, topic, &tl);
	muoni_dec_stream_info(d, n, &si);
	muoni_dec_loss(d, n, &to);
	muoni_dec_close(d, n, &reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct muon_ctx *ctx;
	static struct muon_pub *pub;
	struct muoni_conn *c;
	uint8_t mode;
	size_t off = 1;

	if (size < 1)
		return 0;
	if (!ctx) {
		muon_ctx_config_t cfg;
		muon_sub_config_t sc;
		struct muon_sub *sub;

		muon_ctx_config_init(&cfg);
		cfg.ignore_env = 1;
		cfg.log_level = MUON_LOG_NONE;
		cfg.max_msg_size = 1024;
		cfg.send_log_size = 65536;
		cfg.ring_size = 65536;
		if (muoni_ctx_create(&cfg, &ctx) ||
		    muoni_pub_create(ctx, "t", NULL, &pub))
			abort();
		muon_sub_config_init(&sc);
		sc.msg_fn = on_msg;
		if (muoni_sub_create(ctx, "t", &sc, &sub))
			abort();
	}
	decoders(data, size);
	mode = data[0];
	c = new_conn(ctx, mode);
	while (off + MUONI_FRAME_HDR_LEN <= size) {
		struct muoni_frame_hdr h;
		size_t avail = size - off;

		memcpy(&h, data + off, sizeof(h));
		if (muoni_frame_check(&h, h.len, avail, 1024) ||
		    h.type == MUONI_FT_PAD)
			break;
		/* Heap copy of exactly the frame: ASan sees any over-read. */
		{
			uint8_t *f = malloc(h.len);
			if (!f)
				abort();
			memcpy(f, data + off, h.len);
			muoni_conn_rx(c, &h, f + MUONI_FRAME_HDR_LEN);
			free(f);
		}
		off += muoni_align8(h.len);
		if (c->state == MUONI_CONN_DEAD)
			c = new_conn(ctx, mode);
		/* Keep the publication flowing so senders have work. */
		muoni_publish(pub, data, size < 64 ? size : 64);
	}
	muoni_conn_close(c, MUON_DOWN_CLOSED);
	/* Reap (frees connections) and run timers. */
	muoni_ctx_poll(ctx, 0);
	return 0;
}
