#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

uint64_t ut_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

size_t ut_len_for(uint64_t seq, size_t lo, size_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + (size_t)((seq * 2654435761u) % (hi - lo + 1));
}

static uint8_t byte_at(uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + (i >> 8) + (seq >> 8) * 3u);
}

void ut_fill(void *buf, size_t len, uint64_t seq)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = byte_at(seq, i);
}

size_t ut_check(const void *buf, size_t len, uint64_t seq)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != byte_at(seq, i))
			return i + 1;
	return 0;
}

static void ut_log(void *arg, muon_log_level_t level, const char *message)
{
	fprintf(stderr, "[muon %s L%d] %s\n", (const char *)arg, (int)level,
		message);
}

void ut_ctx_config(muon_ctx_config_t *cfg, const char *name)
{
	muon_ctx_config_init(cfg);
	cfg->name = name;
	cfg->ignore_env = 1;
	cfg->linger_ms = 100;
	cfg->ring_size = 65536;
	cfg->max_msg_size = 1024;
	cfg->send_log_size = 1u << 20;
	cfg->log_level = getenv("MUON_UNIT_DEBUG") ? MUON_LOG_DEBUG
						    : MUON_LOG_WARN;
	cfg->log_fn = ut_log;
	cfg->log_arg = (void *)name;
}

const char *ut_rdma_addr(void)
{
	const char *a = getenv("MUON_RDMA_ADDR");

	return a && *a ? a : "192.0.2.1";
}

const char *ut_rdma_addr6(void)
{
	const char *a = getenv("MUON_RDMA_ADDR6");

	return a && *a ? a : "2001:db8::1";
}

void ut_listen_uri(char *buf, size_t len, const char *transport,
		   const char *tag)
{
	static unsigned counter;

	if (!strcmp(transport, "tcp"))
		snprintf(buf, len, "tcp://127.0.0.1:0");
	else if (!strcmp(transport, "verbs"))
		snprintf(buf, len, "verbs://%s:0", ut_rdma_addr());
	else if (!strcmp(transport, "verbs6"))
		snprintf(buf, len, "verbs://[%s]:0", ut_rdma_addr6());
	else
		snprintf(buf, len, "shm://unit-%d-%s-%u", (int)getpid(), tag,
			 ++counter);
}

muon_ctx_t *ut_pub_ctx(const char *transport, const muon_ctx_config_t *cfg,
		       char *ep, size_t eplen)
{
	muon_ctx_config_t c;
	char uri[128];
	muon_ctx_t *ctx = NULL;
	int rc;

	if (cfg)
		c = *cfg;
	else
		ut_ctx_config(&c, "pub");
	ut_listen_uri(uri, sizeof(uri), transport, "p");
	c.listen = uri;
	rc = muon_ctx_create(&c, &ctx);
	if (rc)
		fail_msg("publisher context on %s: %s: %s", uri,
			 muon_strerror(rc), muon_errmsg());
	rc = muon_ctx_listen_endpoint(ctx, 0, ep, eplen);
	if (rc)
		fail_msg("listen endpoint: %s", muon_errmsg());
	return ctx;
}

muon_ctx_t *ut_sub_ctx(const char *ep, const muon_ctx_config_t *cfg)
{
	muon_ctx_config_t c;
	muon_ctx_t *ctx = NULL;
	int rc;

	if (cfg)
		c = *cfg;
	else
		ut_ctx_config(&c, "sub");
	c.peers = ep;
	rc = muon_ctx_create(&c, &ctx);
	if (rc)
		fail_msg("subscriber context to %s: %s: %s", ep,
			 muon_strerror(rc), muon_errmsg());
	return ctx;
}

int ut_poll2(muon_ctx_t *a, muon_ctx_t *b)
{
	int n = 0, rc;

	if (a) {
		rc = muon_ctx_poll(a, 0);
		if (rc < 0)
			fail_msg("muon_ctx_poll: %s: %s", muon_strerror(rc),
				 muon_errmsg());
		n += rc;
	}
	if (b) {
		rc = muon_ctx_poll(b, 0);
		if (rc < 0)
			fail_msg("muon_ctx_poll: %s: %s", muon_strerror(rc),
				 muon_errmsg());
		n += rc;
	}
	return n;
}

void ut_poll_for(muon_ctx_t *a, muon_ctx_t *b, unsigned ms)
{
	uint64_t dl = ut_now_ms() + ms;

	while (ut_now_ms() < dl)
		ut_poll2(a, b);
}

muon_counters_t ut_counters(const muon_ctx_t *ctx)
{
	muon_counters_t c;

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	if (muon_ctx_counters(ctx, &c))
		fail_msg("muon_ctx_counters: %s", muon_errmsg());
	return c;
}

void ut_rx_init(struct ut_rx *rx, const char *topic, size_t lo, size_t hi)
{
	memset(rx, 0, sizeof(*rx));
	rx->topic = topic;
	rx->expect = 1;
	rx->len_lo = lo;
	rx->len_hi = hi;
}

void ut_rx_msg(void *arg, const muon_msg_t *msg)
{
	struct ut_rx *rx = arg;
	size_t want;

	rx->n_msgs++;
	if (msg->seq != rx->expect) {
		if (!rx->order_errors++)
			fprintf(stderr, "ut_rx: got seq %llu, expected %llu\n",
				(unsigned long long)msg->seq,
				(unsigned long long)rx->expect);
		if (!rx->first_bad_seq)
			rx->first_bad_seq = msg->seq;
	}
	rx->expect = msg->seq + 1;
	rx->last_seq = msg->seq;
	if (!msg->topic || strcmp(msg->topic, rx->topic) ||
	    (rx->publisher_id && msg->publisher_id != rx->publisher_id))
		rx->meta_errors++;
	want = rx->fixed_payload ? msg->len
				 : ut_len_for(msg->seq, rx->len_lo, rx->len_hi);
	if (msg->len != want || (msg->len && !msg->data) ||
	    ut_check(msg->data, msg->len, msg->seq)) {
		if (!rx->payload_errors++)
			fprintf(stderr, "ut_rx: seq %llu: bad payload (len "
				"%zu, want %zu)\n",
				(unsigned long long)msg->seq, msg->len, want);
		if (!rx->first_bad_seq)
			rx->first_bad_seq = msg->seq;
	}
}

void ut_rx_event(void *arg, const muon_event_t *ev)
{
	struct ut_rx *rx = arg;

	if (!ev->detail)
		rx->meta_errors++;
	switch (ev->type) {
	case MUON_EVENT_LOSS:
		rx->n_loss++;
		rx->loss_from = ev->from_seq;
		rx->loss_to = ev->to_seq;
		if (ev->from_seq != rx->expect || ev->to_seq < ev->from_seq)
			rx->order_errors++;
		rx->expect = ev->to_seq + 1;
		break;
	case MUON_EVENT_IMAGE_UP:
		rx->n_up++;
		rx->up_from = ev->from_seq;
		break;
	case MUON_EVENT_IMAGE_DOWN:
		rx->n_down++;
		rx->down_reason = ev->reason;
		fprintf(stderr, "ut_rx: image down, reason %d: %s\n",
			ev->reason, ev->detail ? ev->detail : "(null)");
		break;
	default:
		rx->n_other_events++;
	}
}

void ut_rx_sub_config(struct ut_rx *rx, muon_sub_config_t *cfg)
{
	muon_sub_config_init(cfg);
	cfg->msg_fn = ut_rx_msg;
	cfg->msg_arg = rx;
	cfg->event_fn = ut_rx_event;
	cfg->event_arg = rx;
}
