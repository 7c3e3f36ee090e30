/* SPDX-License-Identifier: ISC */
/* metrics.h -- Prometheus text exposition over HTTP on loopback */
#ifndef TR_NET_METRICS_H
#define TR_NET_METRICS_H

/*
 * `[metrics] listen` opens an HTTP listener (libevent's evhttp, on the
 * loop) that answers GET /metrics with the text exposition format 0.0.4:
 * connections, requests and errors, orders by state and by fax track,
 * outbox depths and ages, the vault's state, store latency histograms,
 * modems, fax and mail counters. A scrape reads counters the loop keeps
 * and a few records of the store (the order counts in META, the first job
 * of two outboxes, LMDB's entry counts): nothing in it grows with the
 * number of orders. Loopback only (config_finish refuses other addresses;
 * metrics_open checks the resolved address again); no card data, member
 * or order identifiers ever appear in it.
 */

#include <stdint.h>

struct daemon;
struct metrics;

/* Error replies, by protocol and ErrorCode (proto/common.proto). The
 * loop's own counters: one increment per Error sent. */
enum metrics_proto {
	METRICS_CLIENT = 0,
	METRICS_CONTROL,
	METRICS_PROVIDER,
	METRICS_PROTO__COUNT,
};
#define METRICS_ERROR_CODES 64
extern uint64_t metrics_errors[METRICS_PROTO__COUNT][METRICS_ERROR_CODES];

static inline void
metrics_count_error(enum metrics_proto p, int code)
{
	if ((unsigned)p < METRICS_PROTO__COUNT &&
	    (unsigned)code < METRICS_ERROR_CODES)
		metrics_errors[p][code]++;
}

/* Limits of the HTTP side: a scrape is one small GET. */
#define METRICS_MAX_HEADERS (8 * 1024)   /* request line and headers */
#define METRICS_MAX_BODY 1024            /* a GET has none */
#define METRICS_TIMEOUT_SECONDS 10       /* read or write stalled that long */

/*
 * Bind hostport ("127.0.0.1:9420", "[::1]:0", "localhost:9420") on d's
 * loop. 0, -EINVAL (not host:port), -EADDRNOTAVAIL (does not resolve to a
 * loopback address), -ENOMEM, or the bind's -errno.
 */
int metrics_open(struct daemon *d, const char *hostport,
    struct metrics **ret_m);
/* Close the listener and its connections. NULL-safe; returns NULL. */
struct metrics *metrics_free(struct metrics *m);
/* The bound address: "127.0.0.1:9420", "[::1]:9420". */
const char *metrics_address(const struct metrics *m);

#endif
