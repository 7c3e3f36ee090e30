/* SPDX-License-Identifier: ISC */
/* twinroute-bench.c -- load generator: catalog, orders, Redis, provider dispatch */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "client.pb-c.h"
#include "common/conn.h"
#include "common/errcode.h"
#include "common/frame.h"
#include "common/macro.h"
#include "bench/fax-bench.h"
#include "provider.pb-c.h"

#define BENCH_CONNS_MAX 10000u
#define BENCH_SECONDS_MAX 3600u
#define BENCH_CONNS_DEFAULT 50u
#define BENCH_SECONDS_DEFAULT 10u
#define BENCH_CONNECT_TIMEOUT 30 /* seconds for every connection to be ready */
#define BENCH_ERRORS_SHOWN 10    /* error lines printed; the rest are counted */
#define BENCH_WEIGHT_MAX 1000000u
#define BENCH_SEED_ENV "TWINROUTE_BENCH_SEED"

/* Catalog mode. */
#define CAT_PROTO_VERSION 1u
#define CAT_RESP_MAX (16u * 1024u * 1024u) /* largest response frame taken */
#define CAT_RBUF_INIT 8192u
#define CAT_SETUP_PAGE 500u   /* page size asked for while collecting ids */
#define CAT_SETUP_PAGES_MAX 100000u
#define CAT_PAGE_SIZE 20u     /* ListServices page size under load */
#define CAT_SEARCH_LIMIT 20u  /* Search limit under load */
#define CAT_WORD_MIN 3u       /* shorter words of service names are not searched */
#define CAT_WORD_MAX 64u
#define CAT_FIELD_MAX 64u     /* longest id or category put in a request */

/* Redis mode. */
#define REDIS_SIZE_DEFAULT 300u
#define REDIS_SIZE_MAX (1024u * 1024u)
#define REDIS_KEYS_DEFAULT 1000u
#define REDIS_KEYS_MAX 10000000u
#define REDIS_LINE_MAX 4096u  /* status and error lines */
#define REDIS_SET_BATCH 64u   /* SETs pipelined per round trip at setup */
#define REDIS_SET_SIZE_DEFAULT 100u /* redis-set: value bytes */
#define REDIS_SET_SIZE_MAX 256u     /* redis-set: each SET fits in WBUF_SIZE */

/* Order mode. */
#define ORDER_MEMBERS_MAX 10000u    /* members are PREFIX0000 .. PREFIX9999 */
#define ORDER_PREFIX_MAX 32u
#define ORDER_PASSWORD_MAX 256u  /* a Login fits in WBUF_SIZE */
#define ORDER_STATE_FIELD 10u       /* Order.state */
#define ORDER_SERVICES_MAX 10000u   /* --service A,B,...: ordered in turn */
#define ORDER_COUNT_MAX 100000000u  /* --count */

/* Provider mode: one thread and one blocking TLS session per provider. */
#define PROV_PROTO_VERSION 1u
#define PROV_SESSIONS_MAX 1000u     /* lines of --providers-file */
#define PROV_LINE_MAX 512u          /* bytes of one line, newline excluded */
#define PROV_ID_MAX 63u             /* bytes of a provider id */
#define PROV_TOKEN_MAX 256u         /* bytes of a token */
#define PROV_SECONDS_DEFAULT 60u    /* -d: the whole run at most */
#define PROV_RESP_MAX (1024u * 1024u) /* largest response frame taken */
#define PROV_IDLE_NS UINT64_C(2000000000) /* no dispatch this long after the first: done */
#define PROV_POLL_MS 50             /* how often a session looks at the stop flag */
#define PROV_DRAIN_MS 2000          /* at the end, how long to wait for Oks due */
#define PROV_ACKS_INIT 64u          /* Acks awaiting their Ok, per session: */
#define PROV_ACKS_MAX (1u << 20)    /* a ring that doubles up to this */
#define PROV_STACK_SIZE (256u * 1024u)
#define PROV_ID_HELLO 1u            /* request ids: Hello, Auth, then Acks */
#define PROV_ID_AUTH 2u
#define PROV_ID_FIRST_ACK 3u

/* One request frame under construction: header, id, body template. */
#define WBUF_SIZE 512u
#define VARINT_MAX 10u

/*
 * Latency histogram, log-linear like HdrHistogram: values below
 * HIST_SUB nanoseconds are exact, each power of two above is split into
 * HIST_SUB linear buckets, so any value is within 1/128 (0.8 %) of its
 * bucket's bounds from 1 ns to the top of uint64_t.
 */
#define HIST_SUB_BITS 7u
#define HIST_SUB (UINT64_C(1) << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

struct hist {
	uint64_t counts[HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

enum bench_mode {
	MODE_CATALOG,
	MODE_REDIS,
	MODE_ORDER,      /* Login once, then PlaceOrder in a loop */
	MODE_REDIS_SET,  /* SET of a fresh key each time */
	MODE_PROVIDER,   /* provider sessions: Ack every OrderDispatch */
};

static const char *const mode_names[] = {
	[MODE_CATALOG] = "catalog",
	[MODE_REDIS] = "redis",
	[MODE_ORDER] = "order",
	[MODE_REDIS_SET] = "redis-set",
	[MODE_PROVIDER] = "provider",
};

enum bench_op {
	OP_GET = 0,
	OP_LIST,
	OP_SEARCH,
	OP__COUNT,
};

static const char *const op_names[OP__COUNT] = {
	[OP_GET] = "get",
	[OP_LIST] = "list",
	[OP_SEARCH] = "search",
};

enum bench_phase {
	PHASE_CONNECT, /* connecting, Hello in catalog mode */
	PHASE_WARMUP,  /* load on, nothing recorded */
	PHASE_MEASURE, /* load on, latencies recorded */
	PHASE_DONE,
};

enum conn_state {
	CONN_CONNECTING,
	CONN_HELLO,   /* Hello sent, waiting for HelloReply */
	CONN_LOGIN,   /* order mode: Login sent, waiting for LoginReply */
	CONN_READY,   /* nothing outstanding */
	CONN_BUSY,    /* one request outstanding */
	CONN_CLOSED,
};

/*
 * A request body packed once at start: in catalog mode the bytes of the
 * Request's body field (tag, length, message) without the id, which is
 * put in front for every request; in Redis mode the whole command.
 */
struct tmpl {
	uint8_t *buf;
	size_t len;
	unsigned expect;      /* catalog: the Response body case wanted */
	const char *want_id;  /* GetService: the service id to find */
	size_t want_id_len;
	bool order;           /* PlaceOrder: the Order must be decided */
};

struct strv {
	char **v;
	size_t n, cap;
};

struct bench;

/*
 * One provider session, run by its own thread. The thread alone touches
 * it until it is joined; then the main thread reads the results.
 */
struct prov_session {
	struct bench *b;
	unsigned idx;
	char provider_id[PROV_ID_MAX + 1];
	char token[PROV_TOKEN_MAX + 1];
	pthread_t thread;
	bool started;
	bool settled;         /* counted in prov_settled */
	uint64_t next_id;     /* the next Ack's request id */
	uint64_t last_tx_ns;  /* when something was last sent */
	/* Acks awaiting their Ok: request ids ack_lo .. ack_hi - 1, each
	 * slot the time its Ack was sent, 0 once answered */
	uint64_t *ack_sent;
	size_t ack_cap;       /* a power of two */
	uint64_t ack_lo, ack_hi;
	/* results */
	struct hist hist;     /* from an Ack's send to its Ok */
	uint64_t dispatches, redeliveries, acked;
	uint64_t first_ns, last_ok_ns;
};

struct conn {
	struct bench *b;
	unsigned idx;
	int fd;
	enum conn_state state;
	struct event *rev;    /* persistent read */
	struct event *wev;    /* connect completion, rest of a partial write */
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t wbuf[WBUF_SIZE];
	size_t wlen, woff;
	const struct tmpl *req;
	uint64_t req_id;
	uint64_t sent_ns;
	/* order mode */
	struct tmpl login;    /* Login as this connection's member */
	struct tmpl place;    /* the PlaceOrder being sent: a fresh key each */
	uint8_t place_buf[WBUF_SIZE];
	uint64_t seq;         /* orders (or redis-set keys) sent */
	uint64_t order_state; /* the last Order's state */
};

struct bench {
	/* options */
	enum bench_mode mode;
	const char *hostport;
	unsigned conns;
	unsigned seconds;
	unsigned warmup;
	unsigned weights[OP__COUNT];
	unsigned weight_total;
	char mix[64];
	size_t size;
	size_t keys;
	bool json;
	uint64_t rng;
	const char *member_prefix;
	const char *password_file;
	const char *service;  /* --service as given: one id or a list */
	struct strv services; /* ordered in turn */
	uint64_t count;       /* --count: orders in all; 0: no limit */
	uint64_t sent;        /* requests sent, every phase */
	uint64_t placed;      /* orders sent: picks the next service */
	unsigned n_idle;      /* with --count: connections done */
	unsigned members;
	char password[ORDER_PASSWORD_MAX + 2];
	char run_tag[17];     /* in every idempotency key: runs never collide */
	uint8_t *value;       /* redis-set: the value */

	struct sockaddr_storage addr;
	socklen_t addrlen;

	/* what the catalog holds */
	struct strv ids, cats, words;

	struct tmpl *tmpls[OP__COUNT];
	size_t n_tmpls[OP__COUNT];
	struct tmpl hello;

	struct event_base *base;
	struct event *timer;
	struct event *sigint;
	struct conn *c;
	unsigned n_open;      /* connections not closed */
	unsigned n_ready;     /* in PHASE_CONNECT: ready to start */
	enum bench_phase phase;
	uint64_t next_id;

	struct hist hist;
	uint64_t requests;
	uint64_t errors;
	uint64_t authorized, declined; /* order mode, while measuring */
	uint64_t t_start, t_end;

	/* provider mode */
	const char *providers_file;
	const char *ca_file;
	bool seconds_set;
	struct prov_session *ps;
	pthread_mutex_t prov_lock;  /* errors, prov_ready */
	unsigned prov_ready;        /* sessions past Hello, or failed */
	atomic_bool prov_go;        /* every session may send Auth */
	atomic_bool prov_stop;      /* sessions end */
	atomic_uint prov_live;      /* session threads running */
	atomic_uint prov_settled;   /* sessions with their AuthReply, or ended */
	atomic_uint_fast64_t prov_due; /* Acks awaiting their Ok, all sessions */
	atomic_uint_fast64_t prov_first_ns; /* the first dispatch, any session */
	atomic_uint_fast64_t prov_last_ns;  /* the latest dispatch */
	uint64_t redeliveries;
	uint64_t dispatches;
	uint64_t unanswered;        /* Acks without an Ok at the end */
};

static const char *progname = "twinroute-bench";

static void
msg(const char *fmt, ...) _printf_(1, 2);
static _noreturn_ void
die(const char *fmt, ...) _printf_(1, 2);

static void
msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: fast, good enough to pick keys. */
static inline uint64_t
rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

static uint64_t
splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* ---- histogram ---- */

static inline size_t
hist_index(uint64_t v)
{
	unsigned shift;

	if (v < HIST_SUB)
		return (size_t)v;
	shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
	return (size_t)(shift + 1) * HIST_SUB + (size_t)((v >> shift) - HIST_SUB);
}

/* The largest value that falls in bucket i. */
static uint64_t
hist_bucket_high(size_t i)
{
	unsigned shift;
	uint64_t sub;

	if (i < HIST_SUB)
		return i;
	shift = (unsigned)(i / HIST_SUB) - 1;
	sub = (uint64_t)(i % HIST_SUB) + HIST_SUB;
	return (sub << shift) + ((UINT64_C(1) << shift) - 1);
}

static inline void
hist_record(struct hist *h, uint64_t v)
{
	h->counts[hist_index(v)]++;
	h->total++;
	if (v > h->max)
		h->max = v;
}

/* The value at or below which pct percent of the samples fall. */
static uint64_t
hist_percentile(const struct hist *h, double pct)
{
	uint64_t rank, seen = 0;

	if (h->total == 0)
		return 0;
	rank = (uint64_t)ceil(pct / 100.0 * (double)h->total);
	if (rank < 1)
		rank = 1;
	if (rank > h->total)
		rank = h->total;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			return MIN(hist_bucket_high(i), h->max);
	}
	return h->max;
}

/* ---- string vectors ---- */

static int
strv_push(struct strv *sv, const char *s, size_t len)
{
	char *copy;

	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 64;
		char **v = realloc(sv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sv->v = v;
		sv->cap = cap;
	}
	copy = strndup(s, len);
	if (!copy)
		return -ENOMEM;
	sv->v[sv->n++] = copy;
	return 0;
}

static int
strv_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
strv_sort_uniq(struct strv *sv)
{
	size_t out = 0;

	if (sv->n == 0)
		return;
	qsort(sv->v, sv->n, sizeof(*sv->v), strv_cmp);
	for (size_t i = 1; i < sv->n; i++) {
		if (strcmp(sv->v[i], sv->v[out]) == 0)
			free(sv->v[i]);
		else
			sv->v[++out] = sv->v[i];
	}
	sv->n = out + 1;
}

static void
strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	*sv = (struct strv){ 0 };
}

/* ---- protobuf wire format, read in place ---- */

static inline size_t
pb_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static inline int
pb_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *ret)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
		uint8_t byte = *p++;

		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*pp = p;
			*ret = v;
			return 0;
		}
	}
	return -1;
}

/*
 * Step over one field of buf: *ret_field and *ret_wt get its number and
 * wire type; for wire type 0 *ret_val gets the value, for type 2
 * *ret_data and *ret_len the bytes. -1 when the bytes do not decode.
 */
static int
pb_next(const uint8_t **pp, const uint8_t *end, uint32_t *ret_field,
    unsigned *ret_wt, uint64_t *ret_val, const uint8_t **ret_data,
    size_t *ret_len)
{
	uint64_t key, v;

	if (pb_get_varint(pp, end, &key) < 0 || key >> 3 == 0 ||
	    key >> 3 > UINT32_MAX)
		return -1;
	*ret_field = (uint32_t)(key >> 3);
	*ret_wt = (unsigned)(key & 7);
	switch (key & 7) {
	case 0:
		if (pb_get_varint(pp, end, &v) < 0)
			return -1;
		*ret_val = v;
		return 0;
	case 1:
		if (end - *pp < 8)
			return -1;
		*pp += 8;
		return 0;
	case 2:
		if (pb_get_varint(pp, end, &v) < 0 || v > (uint64_t)(end - *pp))
			return -1;
		*ret_data = *pp;
		*ret_len = (size_t)v;
		*pp += v;
		return 0;
	case 5:
		if (end - *pp < 4)
			return -1;
		*pp += 4;
		return 0;
	default:
		return -1;
	}
}

/* The last length-delimited field number field of buf: 1 found, 0 not, -1 bad. */
static int
pb_find_bytes(const uint8_t *buf, size_t len, uint32_t field,
    const uint8_t **ret_data, size_t *ret_len)
{
	const uint8_t *p = buf, *end = buf + len, *data = NULL;
	size_t dlen = 0;
	int found = 0;

	while (p < end) {
		uint32_t f;
		unsigned wt;
		uint64_t v;
		const uint8_t *d = NULL;
		size_t l = 0;

		if (pb_next(&p, end, &f, &wt, &v, &d, &l) < 0)
			return -1;
		if (f == field && wt == 2) {
			data = d;
			dlen = l;
			found = 1;
		}
	}
	if (found) {
		*ret_data = data;
		*ret_len = dlen;
	}
	return found;
}

/* The last varint field number field of buf, or 0. */
static uint64_t
pb_find_varint(const uint8_t *buf, size_t len, uint32_t field)
{
	const uint8_t *p = buf, *end = buf + len;
	uint64_t found = 0;

	while (p < end) {
		uint32_t f;
		unsigned wt;
		uint64_t v = 0;
		const uint8_t *d;
		size_t l;

		if (pb_next(&p, end, &f, &wt, &v, &d, &l) < 0)
			return 0;
		if (f == field && wt == 0)
			found = v;
	}
	return found;
}

/*
 * The id and body case of a client Response, read in place. A oneof
 * member seen twice: the last one wins, as in protobuf. -1 when the
 * bytes do not decode.
 */
static int
cat_scan_response(const uint8_t *buf, size_t len, uint64_t *ret_id,
    unsigned *ret_case, const uint8_t **ret_body, size_t *ret_body_len)
{
	const uint8_t *p = buf, *end = buf + len, *body = NULL;
	uint64_t id = 0;
	unsigned which = 0;
	size_t body_len = 0;

	while (p < end) {
		uint32_t f;
		unsigned wt;
		uint64_t v = 0;
		const uint8_t *d = NULL;
		size_t l = 0;

		if (pb_next(&p, end, &f, &wt, &v, &d, &l) < 0)
			return -1;
		if (f == 1) {
			if (wt != 0)
				return -1;
			id = v;
		} else if (f == 2 || (f >= 10 && f <= 21)) {
			if (wt != 2)
				return -1;
			which = f;
			body = d;
			body_len = l;
		}
	}
	*ret_id = id;
	*ret_case = which;
	*ret_body = body;
	*ret_body_len = body_len;
	return 0;
}

/* ---- options ---- */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: %s catalog [-H HOST:PORT] [-c CONNS] [-d SECONDS] [-w SECONDS]\n"
	    "           [--mix get=W,list=W,search=W] [--seed N] [--json]\n"
	    "       %s redis [-H HOST:PORT] [-c CONNS] [-d SECONDS] [-w SECONDS]\n"
	    "           [--size BYTES] [--keys N] [--seed N] [--json]\n"
	    "       %s order [-H HOST:PORT] [-c CONNS] [-d SECONDS] [-w SECONDS]\n"
	    "           --member-prefix P --password-file F --service ID[,ID...]\n"
	    "           [--members N] [--count N] [--seed N] [--json]\n"
	    "       %s redis-set [-H HOST:PORT] [-c CONNS] [-d SECONDS]\n"
	    "           [-w SECONDS] [--size BYTES] [--seed N] [--json]\n"
	    "       %s provider -H HOST:PORT --providers-file FILE [-d SECONDS]\n"
	    "           [--ca FILE] [--json]\n"
	    "       %s fax [--count N] [--font PATH] [--json]\n"
	    "\n"
	    "Closed-loop load: every connection sends one request, waits for the\n"
	    "reply, records its latency and sends the next, for SECONDS after an\n"
	    "unrecorded warm-up. Every reply is checked; any error makes the exit\n"
	    "status 1. The provider mode is the other way round: the server\n"
	    "pushes, the generator answers.\n"
	    "\n"
	    "modes:\n"
	    "  catalog   twinrouted's client protocol. One setup connection sends\n"
	    "            Hello and pages through ListServices to learn the service\n"
	    "            ids, the categories and the words of the service names;\n"
	    "            then each request is GetService(random id), ListServices\n"
	    "            (page size %u, every category or a random one) or Search\n"
	    "            (a random word, limit %u), drawn by the --mix weights.\n"
	    "            Each load connection sends Hello before the clock starts.\n"
	    "  redis     RESP. SETs key:0 .. key:N-1 to values of --size bytes,\n"
	    "            then sends GET key:<random> and checks the reply's length.\n"
	    "  order     twinrouted's client protocol, as members. Connection i\n"
	    "            sends Hello and logs in as member P%%04u (i modulo\n"
	    "            --members, which defaults to CONNS) with the password on\n"
	    "            the first line of --password-file, before the clock\n"
	    "            starts; then each request is PlaceOrder(a service of\n"
	    "            --service, each in turn, quantity 1, a new idempotency\n"
	    "            key). A reply must be an Order AUTHORIZED or DECLINED\n"
	    "            (counted apart); anything else is an error. With\n"
	    "            --count N the run ends once N orders (warm-up included)\n"
	    "            are answered, or after SECONDS. The members, their\n"
	    "            cards and the services must exist beforehand.\n"
	    "  redis-set RESP. Each request is SET key:<conn>:<n> of a value of\n"
	    "            --size bytes (default %u) and wants +OK: against a Redis\n"
	    "            with appendonly yes and appendfsync always, a durable\n"
	    "            write per request.\n"
	    "  provider  twinrouted's provider protocol over TLS (no certificate\n"
	    "            check unless --ca). One session and one thread per line\n"
	    "            'PROVIDER_ID TOKEN' of --providers-file (blank lines and\n"
	    "            '#' comments skipped); each sends Hello, then, once every\n"
	    "            session has its HelloReply, Auth with the token, and\n"
	    "            answers every OrderDispatch pushed at once with\n"
	    "            Ack{order_id}. Latency is an Ack's round trip: from its\n"
	    "            send to its Ok (the broker answers once DISPATCHED is\n"
	    "            durable). The run ends once every session has its\n"
	    "            AuthReply, every Ack its answer, and no dispatch came\n"
	    "            for %u s after the first; or after SECONDS (default %u)\n"
	    "            in all. The rate is the Acks answered from the first\n"
	    "            dispatch to the last Ok.\n"
	    "\n"
	    "options:\n"
	    "  -H, --host HOST:PORT   server (default 127.0.0.1:7420 for catalog,\n"
	    "                         127.0.0.1:6379 for redis; [v6]:port works)\n"
	    "  -c, --conns N          connections, %u..%u (default %u)\n"
	    "  -d, --duration S       seconds measured, 1..%u (default %u)\n"
	    "  -w, --warmup S         seconds of load before measuring, not recorded,\n"
	    "                         0..%u (default 0)\n"
	    "      --mix SPEC         catalog: weights of get, list and search, e.g.\n"
	    "                         get=8,list=1,search=1 (default get=1; a bare\n"
	    "                         name weighs 1; each weight 0..%u)\n"
	    "      --size BYTES       redis: value size, 1..%u (default %u);\n"
	    "                         redis-set: 1..256 (default 100)\n"
	    "      --keys N           redis: keys, 1..%u (default %u)\n"
	    "      --member-prefix P  order: members are P0000, P0001, ...\n"
	    "      --members N        order: how many, 1..%u (default CONNS)\n"
	    "      --password-file F  order: the members' password, its first line\n"
	    "      --service ID[,ID]  order: the service ordered, or services ordered\n"
	    "                         in turn (at most %u)\n"
	    "      --count N          order: orders in all, 1..%u (default: no limit)\n"
	    "      --providers-file F provider: 'PROVIDER_ID TOKEN' per session, at\n"
	    "                         most %u sessions\n"
	    "      --ca FILE          provider: verify the broker's certificate\n"
	    "                         against this CA (default: no verification)\n"
	    "      --seed N           random seed (default: from the clock, or the\n"
	    "                         environment variable %s)\n"
	    "      --json             print a JSON object on stdout: mode, mix, conns,\n"
	    "                         seconds, requests, rps, p50_us, p99_us, p999_us,\n"
	    "                         max_us, errors, and in order mode authorized\n"
	    "                         and declined, in provider mode dispatches,\n"
	    "                         redeliveries, unanswered and elapsed_s (the\n"
	    "                         text line goes to stderr)\n"
	    "  -h, --help             this help\n"
	    "\n"
	    "Output: one line, e.g.\n"
	    "  catalog get conns=50 secs=10 requests=1234567 rps=123456 p50=0.350ms\n"
	    "  p99=0.800ms p99.9=1.200ms max=3.100ms errors=0\n"
	    "Latencies come from a log-linear histogram (0.8 %% precision), from\n"
	    "the write of a request to the read of its whole reply. In provider\n"
	    "mode: 'provider ack conns=SESSIONS ... requests=ACKS_ANSWERED ...\n"
	    "dispatches=N redeliveries=N unanswered=N elapsed=SECONDS'.\n"
	    "The fax mode composes the card fax page as the vault does and\n"
	    "reports its cost (see its --help).\n",
	    progname, progname, progname, progname, progname, progname,
	    CAT_PAGE_SIZE,
	    CAT_SEARCH_LIMIT, REDIS_SET_SIZE_DEFAULT,
	    (unsigned)(PROV_IDLE_NS / 1000000000u), PROV_SECONDS_DEFAULT, 1u,
	    BENCH_CONNS_MAX, BENCH_CONNS_DEFAULT, BENCH_SECONDS_MAX,
	    BENCH_SECONDS_DEFAULT, BENCH_SECONDS_MAX, BENCH_WEIGHT_MAX,
	    REDIS_SIZE_MAX, REDIS_SIZE_DEFAULT, REDIS_KEYS_MAX,
	    REDIS_KEYS_DEFAULT, ORDER_MEMBERS_MAX, ORDER_SERVICES_MAX,
	    ORDER_COUNT_MAX, PROV_SESSIONS_MAX, BENCH_SEED_ENV);
}

static int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

static uint64_t
opt_u64(const char *name, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (parse_u64(s, min, max, &v) < 0) {
		msg("%s: want a whole number in %" PRIu64 "..%" PRIu64 ", got '%s'",
		    name, min, max, s);
		exit(2);
	}
	return v;
}

/*
 * "ID" or "ID,ID,..." into *ret: each id 1..CAT_FIELD_MAX
 * bytes, at most ORDER_SERVICES_MAX of them. 0, -EINVAL or -ENOMEM.
 */
static int
parse_services(const char *spec, struct strv *ret)
{
	struct strv sv = { 0 };
	const char *p = spec;
	int r;

	for (;;) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n > CAT_FIELD_MAX ||
		    sv.n == ORDER_SERVICES_MAX) {
			strv_free(&sv);
			return -EINVAL;
		}
		r = strv_push(&sv, p, n);
		if (r < 0) {
			strv_free(&sv);
			return r;
		}
		p += n;
		if (*p == '\0')
			break;
		p++;
	}
	*ret = sv;
	return 0;
}

/* "get=8,list=1,search=1" into weights[]. 0 or -EINVAL. */
static int
parse_mix(const char *spec, unsigned weights[OP__COUNT])
{
	unsigned w[OP__COUNT] = { 0 };
	const char *p = spec;

	if (*p == '\0')
		return -EINVAL;
	for (;;) {
		size_t n = strcspn(p, ",");
		size_t name_len = strcspn(p, "=,");
		uint64_t v = 1;
		int op = -1;
		char num[24];

		for (int i = 0; i < OP__COUNT; i++)
			if (strlen(op_names[i]) == name_len &&
			    strncmp(p, op_names[i], name_len) == 0)
				op = i;
		if (op < 0)
			return -EINVAL;
		if (name_len < n) {
			size_t num_len = n - name_len - 1;

			if (num_len == 0 || num_len >= sizeof(num))
				return -EINVAL;
			memcpy(num, p + name_len + 1, num_len);
			num[num_len] = '\0';
			if (parse_u64(num, 0, BENCH_WEIGHT_MAX, &v) < 0)
				return -EINVAL;
		}
		w[op] = (unsigned)v;
		p += n;
		if (*p == '\0')
			break;
		p++;
	}
	if (w[OP_GET] + w[OP_LIST] + w[OP_SEARCH] == 0)
		return -EINVAL;
	memcpy(weights, w, sizeof(w));
	return 0;
}

/* The mix as printed: "get" alone, or every non-zero weight. */
static void
mix_name(const struct bench *b, char *out, size_t size)
{
	size_t used = 0;

	if (b->mode == MODE_ORDER || b->mode == MODE_REDIS_SET ||
	    b->mode == MODE_PROVIDER) {
		snprintf(out, size, "%s", b->mode == MODE_ORDER ? "place" :
		    b->mode == MODE_REDIS_SET ? "set" : "ack");
		return;
	}
	if (b->mode == MODE_REDIS || b->weight_total == b->weights[OP_GET]) {
		snprintf(out, size, "get");
		return;
	}
	out[0] = '\0';
	for (int i = 0; i < OP__COUNT; i++) {
		int n;

		if (b->weights[i] == 0)
			continue;
		n = snprintf(out + used, size - used, "%s%s=%u",
		    used ? "," : "", op_names[i], b->weights[i]);
		if (n < 0 || (size_t)n >= size - used)
			return;
		used += (size_t)n;
	}
}

static void
parse_args(struct bench *b, int argc, char **argv)
{
	enum {
		OPT_MIX = 0x100,
		OPT_SIZE,
		OPT_KEYS,
		OPT_SEED,
		OPT_JSON,
		OPT_MEMBER_PREFIX,
		OPT_MEMBERS,
		OPT_PASSWORD_FILE,
		OPT_SERVICE,
		OPT_COUNT,
		OPT_PROVIDERS_FILE,
		OPT_CA,
	};
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "conns", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "mix", required_argument, NULL, OPT_MIX },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "keys", required_argument, NULL, OPT_KEYS },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "member-prefix", required_argument, NULL, OPT_MEMBER_PREFIX },
		{ "members", required_argument, NULL, OPT_MEMBERS },
		{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
		{ "service", required_argument, NULL, OPT_SERVICE },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "providers-file", required_argument, NULL, OPT_PROVIDERS_FILE },
		{ "ca", required_argument, NULL, OPT_CA },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode, *seed_env;
	bool seeded = false, mix_set = false, size_set = false, keys_set = false;
	bool order_set = false, conns_set = false, warmup_set = false;
	bool prov_set = false;
	uint64_t seed = 0;
	int opt;

	if (argc < 2) {
		usage(stderr);
		exit(2);
	}
	mode = argv[1];
	if (strcmp(mode, "-h") == 0 || strcmp(mode, "--help") == 0) {
		usage(stdout);
		exit(0);
	}
	if (strcmp(mode, "fax") == 0)
		exit(fax_bench_main(argc - 1, argv + 1));
	if (strcmp(mode, "catalog") == 0)
		b->mode = MODE_CATALOG;
	else if (strcmp(mode, "redis") == 0)
		b->mode = MODE_REDIS;
	else if (strcmp(mode, "order") == 0)
		b->mode = MODE_ORDER;
	else if (strcmp(mode, "redis-set") == 0)
		b->mode = MODE_REDIS_SET;
	else if (strcmp(mode, "provider") == 0)
		b->mode = MODE_PROVIDER;
	else {
		msg("unknown mode '%s': catalog, redis, order, redis-set, "
		    "provider or fax (see --help)", mode);
		exit(2);
	}

	b->conns = BENCH_CONNS_DEFAULT;
	b->seconds = BENCH_SECONDS_DEFAULT;
	b->weights[OP_GET] = 1;
	b->size = REDIS_SIZE_DEFAULT;
	b->keys = REDIS_KEYS_DEFAULT;

	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, "H:c:d:w:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			b->hostport = optarg;
			break;
		case 'c':
			b->conns = (unsigned)opt_u64("--conns", optarg, 1,
			    BENCH_CONNS_MAX);
			conns_set = true;
			break;
		case 'd':
			b->seconds = (unsigned)opt_u64("--duration", optarg, 1,
			    BENCH_SECONDS_MAX);
			b->seconds_set = true;
			break;
		case 'w':
			b->warmup = (unsigned)opt_u64("--warmup", optarg, 0,
			    BENCH_SECONDS_MAX);
			warmup_set = true;
			break;
		case OPT_MIX:
			if (parse_mix(optarg, b->weights) < 0) {
				msg("--mix: want NAME[=WEIGHT],... with names get, list, search, weights 0..%u and one above 0; got '%s'",
				    BENCH_WEIGHT_MAX, optarg);
				exit(2);
			}
			mix_set = true;
			break;
		case OPT_SIZE:
			b->size = opt_u64("--size", optarg, 1, REDIS_SIZE_MAX);
			size_set = true;
			break;
		case OPT_KEYS:
			b->keys = opt_u64("--keys", optarg, 1, REDIS_KEYS_MAX);
			keys_set = true;
			break;
		case OPT_SEED:
			seed = opt_u64("--seed", optarg, 0, UINT64_MAX);
			seeded = true;
			break;
		case OPT_JSON:
			b->json = true;
			break;
		case OPT_MEMBER_PREFIX:
			b->member_prefix = optarg;
			order_set = true;
			break;
		case OPT_MEMBERS:
			b->members = (unsigned)opt_u64("--members", optarg, 1,
			    ORDER_MEMBERS_MAX);
			order_set = true;
			break;
		case OPT_PASSWORD_FILE:
			b->password_file = optarg;
			order_set = true;
			break;
		case OPT_SERVICE:
			b->service = optarg;
			order_set = true;
			break;
		case OPT_COUNT:
			b->count = opt_u64("--count", optarg, 1, ORDER_COUNT_MAX);
			order_set = true;
			break;
		case OPT_PROVIDERS_FILE:
			b->providers_file = optarg;
			prov_set = true;
			break;
		case OPT_CA:
			b->ca_file = optarg;
			prov_set = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		msg("unexpected argument '%s' (see --help)", argv[optind]);
		exit(2);
	}
	if ((b->mode == MODE_CATALOG || b->mode == MODE_ORDER ||
	    b->mode == MODE_PROVIDER) && (size_set || keys_set)) {
		msg("--size and --keys apply to the redis modes");
		exit(2);
	}
	if (b->mode == MODE_REDIS_SET && keys_set) {
		msg("--keys applies to the redis mode: redis-set writes new keys");
		exit(2);
	}
	if (b->mode != MODE_CATALOG && mix_set) {
		msg("--mix applies to the catalog mode");
		exit(2);
	}
	if (b->mode != MODE_ORDER && order_set) {
		msg("--member-prefix, --members, --password-file, --service "
		    "and --count apply to the order mode");
		exit(2);
	}
	if (b->mode != MODE_PROVIDER && prov_set) {
		msg("--providers-file and --ca apply to the provider mode");
		exit(2);
	}
	if (b->mode == MODE_ORDER) {
		int r;

		if (!b->member_prefix || !b->password_file || !b->service) {
			msg("order: --member-prefix, --password-file and --service "
			    "are required (see --help)");
			exit(2);
		}
		if (strlen(b->member_prefix) > ORDER_PREFIX_MAX) {
			msg("order: --member-prefix takes at most %u bytes",
			    ORDER_PREFIX_MAX);
			exit(2);
		}
		r = parse_services(b->service, &b->services);
		if (r < 0) {
			msg("order: --service: want ID[,ID...], at most %u ids "
			    "of 1..%u bytes each, got '%s'", ORDER_SERVICES_MAX,
			    CAT_FIELD_MAX, b->service);
			exit(2);
		}
		if (b->members == 0)
			b->members = MIN(b->conns, ORDER_MEMBERS_MAX);
	}
	if (b->mode == MODE_PROVIDER) {
		if (conns_set || warmup_set) {
			msg("provider: no -c (one session per line of "
			    "--providers-file) and no -w");
			exit(2);
		}
		if (!b->providers_file || !b->hostport) {
			msg("provider: -H and --providers-file are required "
			    "(see --help)");
			exit(2);
		}
		if (!b->seconds_set)
			b->seconds = PROV_SECONDS_DEFAULT;
	}
	if (b->mode == MODE_REDIS_SET) {
		if (!size_set)
			b->size = REDIS_SET_SIZE_DEFAULT;
		if (b->size > REDIS_SET_SIZE_MAX) {
			msg("redis-set: --size takes 1..%u", REDIS_SET_SIZE_MAX);
			exit(2);
		}
	}
	if (!b->hostport)
		b->hostport = b->mode == MODE_CATALOG ||
		    b->mode == MODE_ORDER ? "127.0.0.1:7420" : "127.0.0.1:6379";
	if (!seeded && (seed_env = getenv(BENCH_SEED_ENV)) != NULL) {
		if (parse_u64(seed_env, 0, UINT64_MAX, &seed) < 0) {
			msg("%s: not a number: '%s'", BENCH_SEED_ENV, seed_env);
			exit(2);
		}
		seeded = true;
	}
	if (!seeded)
		seed = now_ns() ^ ((uint64_t)getpid() << 32);
	b->rng = splitmix64(seed);
	if (b->rng == 0)
		b->rng = 1;
	b->weight_total = b->weights[OP_GET] + b->weights[OP_LIST] +
	    b->weights[OP_SEARCH];
	mix_name(b, b->mix, sizeof(b->mix));
}

/* ---- sockets ---- */

static void
resolve(struct bench *b)
{
	_cleanup_free_ char *host = NULL, *port = NULL;
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	struct addrinfo *ai;
	int r;

	if (tr_split_hostport(b->hostport, &host, &port) < 0)
		die("--host: want HOST:PORT, got '%s'", b->hostport);
	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0)
		die("%s: %s", b->hostport, gai_strerror(r));
	if (ai->ai_addrlen > sizeof(b->addr)) {
		freeaddrinfo(ai);
		die("%s: address too long", b->hostport);
	}
	memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
	b->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
}

/* Room for conns sockets: raise the soft descriptor limit if needed. */
static void
raise_nofile(unsigned conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		die("%u connections need %llu descriptors; the hard limit is %llu",
		    conns, (unsigned long long)want,
		    (unsigned long long)rl.rlim_max);
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit: %s", strerror(errno));
}

/* A blocking TCP connection for setup, with 10 s timeouts. */
static int
sock_open_blocking(const struct bench *b)
{
	struct timeval tv = { .tv_sec = 10 };
	int one = 1;
	int fd;

	fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&b->addr, b->addrlen) < 0)
		die("connect %s: %s", b->hostport, strerror(errno));
	return fd;
}

static void
write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* ---- catalog setup ---- */

static Twinroute__Client__Response *
cat_call(struct tr_conn *conn, Twinroute__Client__Request *req,
    Twinroute__Client__Response__BodyCase want)
{
	_cleanup_free_ uint8_t *buf = NULL;
	Twinroute__Client__Response *resp;
	uint32_t len;
	int r;

	r = tr_conn_send(conn, &req->base);
	if (r < 0)
		die("setup: send: %s", tr_strerror(r));
	r = tr_conn_recv(conn, CAT_RESP_MAX, &buf, &len);
	if (r < 0)
		die("setup: receive: %s", tr_strerror(r));
	resp = twinroute__client__response__unpack(NULL, len, buf);
	if (!resp)
		die("setup: the response does not decode");
	if (resp->id != req->id)
		die("setup: response id %" PRIu64 " for request %" PRIu64,
		    resp->id, req->id);
	if (resp->body_case == TWINROUTE__CLIENT__RESPONSE__BODY_ERROR &&
	    resp->error)
		die("setup: server error %d: %s", (int)resp->error->code,
		    resp->error->message ? resp->error->message : "");
	if (resp->body_case != want)
		die("setup: response body %d, wanted %d", (int)resp->body_case,
		    (int)want);
	return resp;
}

/* Add the words of name, as the server's search index splits them. */
static void
cat_add_words(struct strv *words, const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	while (*p) {
		const unsigned char *start;
		char w[CAT_WORD_MAX + 1];
		size_t n = 0;

		while (*p && !((*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p >= 0x80))
			p++;
		start = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p >= 0x80) {
			if (n < CAT_WORD_MAX)
				w[n++] = (char)(*p >= 'A' && *p <= 'Z' ?
				    *p - 'A' + 'a' : *p);
			p++;
		}
		if (p - start < (ptrdiff_t)CAT_WORD_MIN)
			continue;
		if (strv_push(words, w, n) < 0)
			die("out of memory");
	}
}

static void
cat_setup(struct bench *b)
{
	Twinroute__Client__Request req;
	Twinroute__Client__Hello hello;
	Twinroute__Client__ListServices ls;
	Twinroute__Client__Response *resp;
	struct tr_conn_opts opts = { .timeout_ms = 10000 };
	struct tr_conn *conn = NULL;
	uint8_t *token = NULL;
	size_t token_len = 0;
	unsigned pages = 0;
	int r;

	twinroute__client__request__init(&req);
	twinroute__client__hello__init(&hello);
	twinroute__client__list_services__init(&ls);
	r = tr_conn_open_tcp(b->hostport, &opts, &conn);
	if (r < 0)
		die("connect %s: %s", b->hostport, tr_strerror(r));

	hello.version = CAT_PROTO_VERSION;
	hello.client = unconst("twinroute-bench");
	req.id = ++b->next_id;
	req.body_case = TWINROUTE__CLIENT__REQUEST__BODY_HELLO;
	req.hello = &hello;
	resp = cat_call(conn, &req, TWINROUTE__CLIENT__RESPONSE__BODY_HELLO);
	if (!resp->hello || resp->hello->version != CAT_PROTO_VERSION)
		die("setup: the server speaks protocol version %u, not %u",
		    resp->hello ? resp->hello->version : 0, CAT_PROTO_VERSION);
	twinroute__client__response__free_unpacked(resp, NULL);

	do {
		Twinroute__Client__ServiceList *sl;

		ls.page_size = CAT_SETUP_PAGE;
		ls.page_token.data = token;
		ls.page_token.len = token_len;
		req.id = ++b->next_id;
		req.body_case = TWINROUTE__CLIENT__REQUEST__BODY_LIST_SERVICES;
		req.list_services = &ls;
		resp = cat_call(conn, &req,
		    TWINROUTE__CLIENT__RESPONSE__BODY_SERVICES);
		sl = resp->services;
		free(token);
		token = NULL;
		token_len = 0;
		if (!sl)
			die("setup: empty ServiceList");
		for (size_t i = 0; i < sl->n_services; i++) {
			const Twinroute__Service *s = sl->services[i];

			if (!s->id || s->id[0] == '\0')
				continue;
			if (strlen(s->id) > CAT_FIELD_MAX) {
				msg("setup: skipping service id longer than %u bytes",
				    CAT_FIELD_MAX);
				continue;
			}
			if (strv_push(&b->ids, s->id, strlen(s->id)) < 0)
				die("out of memory");
			if (s->category && s->category[0] != '\0' &&
			    strlen(s->category) <= CAT_FIELD_MAX &&
			    strv_push(&b->cats, s->category,
			    strlen(s->category)) < 0)
				die("out of memory");
			if (s->name)
				cat_add_words(&b->words, s->name);
		}
		if (sl->next_page_token.len > 0) {
			token = malloc(sl->next_page_token.len);
			if (!token)
				die("out of memory");
			memcpy(token, sl->next_page_token.data,
			    sl->next_page_token.len);
			token_len = sl->next_page_token.len;
		}
		twinroute__client__response__free_unpacked(resp, NULL);
		if (++pages > CAT_SETUP_PAGES_MAX)
			die("setup: more than %u pages of services",
			    CAT_SETUP_PAGES_MAX);
	} while (token);
	tr_conn_close(conn);

	strv_sort_uniq(&b->ids);
	strv_sort_uniq(&b->cats);
	strv_sort_uniq(&b->words);
	if (b->ids.n == 0)
		die("setup: the catalog lists no service");
	if (b->weights[OP_SEARCH] > 0 && b->words.n == 0)
		die("setup: no word of %u letters or more in the service names to search for",
		    CAT_WORD_MIN);
	if (!b->json)
		msg("catalog: %zu services, %zu categories, %zu words",
		    b->ids.n, b->cats.n, b->words.n);
}

/* Pack inner as body field field of a Request, without the id. */
static void
cat_tmpl(struct tmpl *t, const ProtobufCMessage *inner, unsigned field,
    unsigned expect)
{
	size_t inner_len = protobuf_c_message_get_packed_size(inner);
	uint8_t *p;

	/* header, id tag and id, field tag, length, message */
	if (FRAME_HDR_SIZE + 1 + VARINT_MAX + 2 + VARINT_MAX + inner_len >
	    WBUF_SIZE)
		die("a request is too large for the frame buffer");
	t->buf = p = malloc(2 + VARINT_MAX + inner_len);
	if (!p)
		die("out of memory");
	p += pb_put_varint(p, (uint64_t)field << 3 | 2);
	p += pb_put_varint(p, inner_len);
	p += protobuf_c_message_pack(inner, p);
	t->len = (size_t)(p - t->buf);
	t->expect = expect;
}

static void
cat_build(struct bench *b)
{
	Twinroute__Client__Hello hello;

	twinroute__client__hello__init(&hello);
	hello.version = CAT_PROTO_VERSION;
	hello.client = unconst("twinroute-bench");
	cat_tmpl(&b->hello, &hello.base, TWINROUTE__CLIENT__REQUEST__BODY_HELLO,
	    TWINROUTE__CLIENT__RESPONSE__BODY_HELLO);

	b->n_tmpls[OP_GET] = b->ids.n;
	b->n_tmpls[OP_LIST] = b->cats.n + 1;
	b->n_tmpls[OP_SEARCH] = b->words.n;
	for (int op = 0; op < OP__COUNT; op++) {
		if (b->weights[op] == 0) {
			b->n_tmpls[op] = 0;
			continue;
		}
		b->tmpls[op] = calloc(b->n_tmpls[op], sizeof(struct tmpl));
		if (!b->tmpls[op])
			die("out of memory");
	}
	for (size_t i = 0; i < b->n_tmpls[OP_GET]; i++) {
		Twinroute__Client__GetService gs;
		struct tmpl *t = &b->tmpls[OP_GET][i];

		twinroute__client__get_service__init(&gs);
		gs.id = b->ids.v[i];
		cat_tmpl(t, &gs.base, TWINROUTE__CLIENT__REQUEST__BODY_GET_SERVICE,
		    TWINROUTE__CLIENT__RESPONSE__BODY_SERVICE);
		t->want_id = b->ids.v[i];
		t->want_id_len = strlen(b->ids.v[i]);
	}
	for (size_t i = 0; i < b->n_tmpls[OP_LIST]; i++) {
		Twinroute__Client__ListServices ls;

		twinroute__client__list_services__init(&ls);
		/* The first asks for every category. */
		if (i > 0)
			ls.category = b->cats.v[i - 1];
		ls.page_size = CAT_PAGE_SIZE;
		cat_tmpl(&b->tmpls[OP_LIST][i], &ls.base,
		    TWINROUTE__CLIENT__REQUEST__BODY_LIST_SERVICES,
		    TWINROUTE__CLIENT__RESPONSE__BODY_SERVICES);
	}
	for (size_t i = 0; i < b->n_tmpls[OP_SEARCH]; i++) {
		Twinroute__Client__Search se;

		twinroute__client__search__init(&se);
		se.query = b->words.v[i];
		se.limit = CAT_SEARCH_LIMIT;
		cat_tmpl(&b->tmpls[OP_SEARCH][i], &se.base,
		    TWINROUTE__CLIENT__REQUEST__BODY_SEARCH,
		    TWINROUTE__CLIENT__RESPONSE__BODY_SEARCH);
	}
}

/* ---- redis setup ---- */

/* Read one reply line (without CRLF) into line. */
static void
redis_read_line(int fd, uint8_t *buf, size_t *len, char *line, size_t size)
{
	for (;;) {
		uint8_t *nl = memchr(buf, '\n', *len);
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - buf) + 1;
			size_t copy = l >= 2 ? l - 2 : 0;

			if (copy >= size)
				copy = size - 1;
			memcpy(line, buf, copy);
			line[copy] = '\0';
			memmove(buf, buf + l, *len - l);
			*len -= l;
			return;
		}
		if (*len == REDIS_LINE_MAX)
			die("redis: reply line too long");
		n = recv(fd, buf + *len, REDIS_LINE_MAX - *len, 0);
		if (n == 0)
			die("redis: connection closed during setup");
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("redis: read: %s", strerror(errno));
		*len += (size_t)n;
	}
}

static void
redis_setup(struct bench *b)
{
	_cleanup_free_ uint8_t *value = NULL, *rbuf = NULL, *out = NULL;
	size_t cmd_max = 64 + b->size, rlen = 0;
	int fd;

	value = malloc(b->size);
	rbuf = malloc(REDIS_LINE_MAX);
	out = malloc(REDIS_SET_BATCH * cmd_max);
	if (!value || !rbuf || !out)
		die("out of memory");
	for (size_t i = 0; i < b->size; i++)
		value[i] = (uint8_t)('a' + i % 26);

	fd = sock_open_blocking(b);
	for (size_t k = 0; k < b->keys; k += REDIS_SET_BATCH) {
		size_t batch = MIN((size_t)REDIS_SET_BATCH, b->keys - k);
		size_t olen = 0;

		for (size_t j = 0; j < batch; j++) {
			char key[32];
			int kl = snprintf(key, sizeof(key), "key:%zu", k + j);

			olen += (size_t)snprintf((char *)out + olen, cmd_max,
			    "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%zu\r\n", kl, key,
			    b->size);
			memcpy(out + olen, value, b->size);
			olen += b->size;
			memcpy(out + olen, "\r\n", 2);
			olen += 2;
		}
		write_all(fd, out, olen);
		for (size_t j = 0; j < batch; j++) {
			char line[256];

			redis_read_line(fd, rbuf, &rlen, line, sizeof(line));
			if (strcmp(line, "+OK") != 0)
				die("redis: SET key:%zu: %s", k + j, line);
		}
	}
	close(fd);
	if (!b->json)
		msg("redis: %zu keys of %zu bytes set", b->keys, b->size);
}

static void
redis_build(struct bench *b)
{
	b->n_tmpls[OP_GET] = b->keys;
	b->tmpls[OP_GET] = calloc(b->keys, sizeof(struct tmpl));
	if (!b->tmpls[OP_GET])
		die("out of memory");
	for (size_t i = 0; i < b->keys; i++) {
		struct tmpl *t = &b->tmpls[OP_GET][i];
		char key[32], cmd[96];
		int kl = snprintf(key, sizeof(key), "key:%zu", i);
		int n = snprintf(cmd, sizeof(cmd),
		    "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", kl, key);

		t->buf = malloc((size_t)n);
		if (!t->buf)
			die("out of memory");
		memcpy(t->buf, cmd, (size_t)n);
		t->len = (size_t)n;
	}
}

/* ---- order and redis-set setup ---- */

/* The modes that speak twinrouted's client protocol. */
static inline bool
proto_mode(const struct bench *b)
{
	return b->mode == MODE_CATALOG || b->mode == MODE_ORDER;
}

/* The password (first line of --password-file), the hello, a run tag. */
static void
order_setup(struct bench *b)
{
	size_t len = 0;
	char *nl;
	int fd;

	fd = open(b->password_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("--password-file %s: %s", b->password_file,
		    strerror(errno));
	while (len < sizeof(b->password) - 1) {
		ssize_t n = read(fd, b->password + len,
		    sizeof(b->password) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("--password-file %s: %s", b->password_file,
			    strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
		if (memchr(b->password, '\n', len))
			break;
	}
	close(fd);
	b->password[len] = '\0';
	nl = strchr(b->password, '\n');
	if (nl)
		*nl = '\0';
	len = strlen(b->password);
	if (len > 0 && b->password[len - 1] == '\r')
		b->password[--len] = '\0';
	if (len == 0 || len > ORDER_PASSWORD_MAX)
		die("--password-file %s: want a password of 1..%u bytes on "
		    "the first line", b->password_file, ORDER_PASSWORD_MAX);
	/* Keys are kept a day per member: a new run must not replay an old one. */
	snprintf(b->run_tag, sizeof(b->run_tag), "%016" PRIx64,
	    rng_next(&b->rng));
}

static void
order_build(struct bench *b)
{
	Twinroute__Client__Hello hello;

	twinroute__client__hello__init(&hello);
	hello.version = CAT_PROTO_VERSION;
	hello.client = unconst("twinroute-bench");
	cat_tmpl(&b->hello, &hello.base, TWINROUTE__CLIENT__REQUEST__BODY_HELLO,
	    TWINROUTE__CLIENT__RESPONSE__BODY_HELLO);
}

/* Connection c's Login, as member PREFIX%04u. */
static void
order_conn_login(struct bench *b, struct conn *c)
{
	Twinroute__Client__Login li;
	char member[ORDER_PREFIX_MAX + 8];

	snprintf(member, sizeof(member), "%s%04u", b->member_prefix,
	    c->idx % b->members);
	twinroute__client__login__init(&li);
	li.member = member;
	li.password = b->password;
	cat_tmpl(&c->login, &li.base, TWINROUTE__CLIENT__REQUEST__BODY_LOGIN,
	    TWINROUTE__CLIENT__RESPONSE__BODY_LOGIN);
}

static void
redis_set_setup(struct bench *b)
{
	b->value = malloc(b->size);
	if (!b->value)
		die("out of memory");
	for (size_t i = 0; i < b->size; i++)
		b->value[i] = (uint8_t)('a' + i % 26);
}

/* ---- the load loop ---- */

static void
bench_error(struct bench *b, const char *fmt, ...) _printf_(2, 3);

static void
bench_error(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	if (b->errors++ < BENCH_ERRORS_SHOWN) {
		fprintf(stderr, "%s: ", progname);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
		if (b->errors == BENCH_ERRORS_SHOWN)
			msg("further errors are counted, not shown");
	}
}

static void
bench_timer_add(struct bench *b, unsigned seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	evtimer_add(b->timer, &tv);
}

static void
bench_finish(struct bench *b)
{
	if (b->phase == PHASE_DONE)
		return;
	b->t_end = now_ns();
	if (b->phase != PHASE_MEASURE)
		b->t_start = b->t_end;
	b->phase = PHASE_DONE;
	event_base_loopbreak(b->base);
}

static void conn_send_next(struct conn *c, uint64_t now);

/* Every connection is ready or closed: start the load. */
static void
bench_start(struct bench *b)
{
	uint64_t now;

	if (b->n_open == 0) {
		bench_finish(b);
		return;
	}
	now = now_ns();
	if (b->warmup > 0) {
		b->phase = PHASE_WARMUP;
		bench_timer_add(b, b->warmup);
	} else {
		b->phase = PHASE_MEASURE;
		b->t_start = now;
		bench_timer_add(b, b->seconds);
	}
	for (unsigned i = 0; i < b->conns; i++)
		if (b->c[i].state == CONN_READY)
			conn_send_next(&b->c[i], now);
}

static void
bench_check_ready(struct bench *b)
{
	if (b->phase == PHASE_CONNECT && b->n_ready == b->n_open)
		bench_start(b);
}

/*
 * Close a connection after an error. The events stay allocated until
 * the end (never freed from inside their own callbacks).
 */
static void
conn_fail(struct conn *c, const char *fmt, ...) _printf_(2, 3);

static void
conn_fail(struct conn *c, const char *fmt, ...)
{
	struct bench *b = c->b;
	enum conn_state prev = c->state;
	char text[512];
	va_list ap;

	if (prev == CONN_CLOSED)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	bench_error(b, "connection %u: %s", c->idx, text);

	if (c->rev)
		event_del(c->rev);
	if (c->wev)
		event_del(c->wev);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CONN_CLOSED;
	b->n_open--;
	if (b->phase == PHASE_CONNECT) {
		if (prev == CONN_READY)
			b->n_ready--;
		bench_check_ready(b);
		return;
	}
	/* Under load, a ready connection is one done with its --count. */
	if (prev == CONN_READY && b->n_idle > 0)
		b->n_idle--;
	if (b->n_open == 0 || (b->count > 0 && b->n_idle >= b->n_open))
		bench_finish(b);
}

/* Write what is left of wbuf; the write event finishes a partial write. */
static void
conn_flush(struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
		    MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				event_add(c->wev, NULL);
				return;
			}
			conn_fail(c, "write: %s", strerror(errno));
			return;
		}
		c->woff += (size_t)n;
	}
}

/* Put request t with a fresh id in wbuf and send it. */
static void
conn_send(struct conn *c, const struct tmpl *t, uint64_t now)
{
	struct bench *b = c->b;
	uint8_t *p = c->wbuf;

	c->req = t;
	if (proto_mode(b)) {
		c->req_id = ++b->next_id;
		p += FRAME_HDR_SIZE;
		*p++ = 0x08; /* field 1, varint: the id */
		p += pb_put_varint(p, c->req_id);
		memcpy(p, t->buf, t->len);
		p += t->len;
		frame_put_header(c->wbuf,
		    (uint32_t)(p - c->wbuf - FRAME_HDR_SIZE));
	} else {
		memcpy(p, t->buf, t->len);
		p += t->len;
	}
	c->wlen = (size_t)(p - c->wbuf);
	c->woff = 0;
	c->sent_ns = now;
	conn_flush(c);
}

static inline const struct tmpl *
bench_pick(struct bench *b)
{
	unsigned op = OP_GET;
	size_t n;

	if (b->weight_total != b->weights[OP_GET]) {
		unsigned r = (unsigned)(rng_next(&b->rng) % b->weight_total);

		while (r >= b->weights[op]) {
			r -= b->weights[op];
			op++;
		}
	}
	n = b->n_tmpls[op];
	return &b->tmpls[op][n == 1 ? 0 : rng_next(&b->rng) % n];
}

/*
 * A PlaceOrder of the next service in turn, quantity 1, with a key never
 * used before.
 */
static void
conn_send_order(struct conn *c, uint64_t now)
{
	struct bench *b = c->b;
	uint8_t inner[WBUF_SIZE / 2], *p = inner, *q = c->place_buf;
	const char *service = b->services.v[b->placed++ % b->services.n];
	size_t slen = strlen(service);
	char key[64];
	int klen;

	klen = snprintf(key, sizeof(key), "%s-%u-%" PRIu64, b->run_tag, c->idx,
	    ++c->seq);
	*p++ = 0x0a; /* service_id */
	p += pb_put_varint(p, slen);
	memcpy(p, service, slen);
	p += slen;
	*p++ = 0x10; /* quantity */
	*p++ = 0x01;
	*p++ = 0x22; /* idempotency_key */
	p += pb_put_varint(p, (uint64_t)klen);
	memcpy(p, key, (size_t)klen);
	p += klen;

	q += pb_put_varint(q,
	    (uint64_t)TWINROUTE__CLIENT__REQUEST__BODY_PLACE_ORDER << 3 | 2);
	q += pb_put_varint(q, (uint64_t)(p - inner));
	memcpy(q, inner, (size_t)(p - inner));
	q += p - inner;
	c->place = (struct tmpl){ .buf = c->place_buf,
	    .len = (size_t)(q - c->place_buf),
	    .expect = TWINROUTE__CLIENT__RESPONSE__BODY_ORDER, .order = true };
	conn_send(c, &c->place, now);
}

/* SET key:<conn>:<n> of the value. */
static void
conn_send_set(struct conn *c, uint64_t now)
{
	struct bench *b = c->b;
	char key[48];
	size_t len;
	int kl;

	kl = snprintf(key, sizeof(key), "key:%u:%" PRIu64, c->idx, ++c->seq);
	len = (size_t)snprintf((char *)c->place_buf, sizeof(c->place_buf),
	    "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%zu\r\n", kl, key, b->size);
	memcpy(c->place_buf + len, b->value, b->size);
	len += b->size;
	memcpy(c->place_buf + len, "\r\n", 2);
	len += 2;
	c->place = (struct tmpl){ .buf = c->place_buf, .len = len };
	conn_send(c, &c->place, now);
}

static void
conn_send_next(struct conn *c, uint64_t now)
{
	struct bench *b = c->b;

	if (b->count > 0 && b->sent >= b->count) {
		/* Every request is out: this connection is done. */
		c->state = CONN_READY;
		b->n_idle++;
		if (b->n_idle >= b->n_open)
			bench_finish(b);
		return;
	}
	b->sent++;
	c->state = CONN_BUSY;
	if (c->b->mode == MODE_ORDER)
		conn_send_order(c, now);
	else if (c->b->mode == MODE_REDIS_SET)
		conn_send_set(c, now);
	else
		conn_send(c, bench_pick(c->b), now);
}

/*
 * A reply's verdict. Parsers return 1 with the reply's length in
 * *ret_used (verdict in *ret_ok, reason in why), 0 when more bytes are
 * needed (*ret_need: the whole reply's length if known), -1 when the
 * stream cannot be followed any more (reason in why).
 */
static int
cat_reply(struct conn *c, size_t *ret_used, size_t *ret_need, bool *ret_ok,
    char *why, size_t why_size)
{
	const struct tmpl *t = c->req;
	const uint8_t *payload, *body, *d;
	uint32_t plen;
	size_t flen, body_len, dl;
	uint64_t id;
	unsigned which;
	int r;

	r = frame_parse(c->rbuf, c->rlen, CAT_RESP_MAX, &payload, &plen, &flen);
	if (r < 0) {
		snprintf(why, why_size, "response frame over %u bytes",
		    CAT_RESP_MAX);
		return -1;
	}
	if (r == 0) {
		*ret_need = c->rlen >= FRAME_HDR_SIZE ?
		    FRAME_HDR_SIZE + (size_t)frame_get_length(c->rbuf) : 0;
		return 0;
	}
	if (cat_scan_response(payload, plen, &id, &which, &body,
	    &body_len) < 0) {
		snprintf(why, why_size, "response does not decode");
		return -1;
	}
	if (id != c->req_id) {
		snprintf(why, why_size, "response id %" PRIu64
		    " for request %" PRIu64, id, c->req_id);
		return -1;
	}
	*ret_used = flen;
	*ret_ok = false;
	if (which == TWINROUTE__CLIENT__RESPONSE__BODY_ERROR) {
		const char *m = "";
		int ml = 0;

		if (pb_find_bytes(body, body_len, 2, &d, &dl) > 0) {
			m = (const char *)d;
			ml = (int)MIN(dl, (size_t)200);
		}
		snprintf(why, why_size, "error %" PRIu64 ": %.*s",
		    pb_find_varint(body, body_len, 1), ml, m);
		return 1;
	}
	if (which != t->expect) {
		snprintf(why, why_size, "response body %u, wanted %u", which,
		    t->expect);
		return 1;
	}
	if (t->want_id) {
		/* ServiceInfo.service (1) -> Service.id (1) */
		if (pb_find_bytes(body, body_len, 1, &d, &dl) <= 0 ||
		    pb_find_bytes(d, dl, 1, &d, &dl) <= 0 ||
		    dl != t->want_id_len || memcmp(d, t->want_id, dl) != 0) {
			snprintf(why, why_size,
			    "GetService %s: another service or none",
			    t->want_id);
			return 1;
		}
	}
	if (t->order) {
		/* Order.state: decided one way or the other, durably. */
		c->order_state = pb_find_varint(body, body_len,
		    ORDER_STATE_FIELD);
		if (c->order_state != TWINROUTE__ORDER_STATE__ORDER_AUTHORIZED &&
		    c->order_state != TWINROUTE__ORDER_STATE__ORDER_DECLINED) {
			snprintf(why, why_size, "order in state %" PRIu64
			    ", wanted AUTHORIZED or DECLINED", c->order_state);
			return 1;
		}
	}
	if (which == TWINROUTE__CLIENT__RESPONSE__BODY_HELLO &&
	    pb_find_varint(body, body_len, 1) != CAT_PROTO_VERSION) {
		snprintf(why, why_size, "the server speaks protocol version %" PRIu64,
		    pb_find_varint(body, body_len, 1));
		return 1;
	}
	*ret_ok = true;
	return 1;
}

/* A bulk string of exactly b->size bytes is right; anything else is not. */
static int
redis_reply(struct conn *c, size_t *ret_used, size_t *ret_need, bool *ret_ok,
    char *why, size_t why_size)
{
	const struct bench *b = c->b;
	const uint8_t *buf = c->rbuf, *nl;
	size_t line, total;
	uint64_t n;
	char num[24];

	if (c->rlen == 0)
		return 0;
	nl = memchr(buf, '\n', MIN(c->rlen, (size_t)REDIS_LINE_MAX));
	if (!nl) {
		if (c->rlen >= REDIS_LINE_MAX) {
			snprintf(why, why_size, "reply line too long");
			return -1;
		}
		*ret_need = 0;
		return 0;
	}
	line = (size_t)(nl - buf) + 1;
	if (line < 3 || buf[line - 2] != '\r') {
		snprintf(why, why_size, "reply line without CRLF");
		return -1;
	}
	switch (buf[0]) {
	case '+':
		if (b->mode != MODE_REDIS_SET) {
			snprintf(why, why_size, "unexpected status reply");
			return -1;
		}
		*ret_used = line;
		*ret_ok = line == 5 && memcmp(buf, "+OK\r\n", 5) == 0;
		if (!*ret_ok)
			snprintf(why, why_size, "status reply: %.*s",
			    (int)MIN(line - 3, (size_t)200),
			    (const char *)buf + 1);
		return 1;
	case '-':
		*ret_used = line;
		*ret_ok = false;
		snprintf(why, why_size, "error reply: %.*s",
		    (int)MIN(line - 3, (size_t)200), (const char *)buf + 1);
		return 1;
	case '$':
		break;
	default:
		snprintf(why, why_size, "unexpected reply type '%c'",
		    buf[0] >= 0x20 && buf[0] < 0x7f ? buf[0] : '?');
		return -1;
	}
	if (line == 5 && memcmp(buf, "$-1\r\n", 5) == 0) {
		*ret_used = line;
		*ret_ok = false;
		snprintf(why, why_size, "nil reply: key missing");
		return 1;
	}
	if (line - 3 >= sizeof(num)) {
		snprintf(why, why_size, "bad bulk length");
		return -1;
	}
	memcpy(num, buf + 1, line - 3);
	num[line - 3] = '\0';
	if (parse_u64(num, 0, REDIS_SIZE_MAX * 16u, &n) < 0) {
		snprintf(why, why_size, "bad bulk length '%s'", num);
		return -1;
	}
	total = line + (size_t)n + 2;
	if (c->rlen < total) {
		*ret_need = total;
		return 0;
	}
	if (buf[total - 2] != '\r' || buf[total - 1] != '\n') {
		snprintf(why, why_size, "bulk string without CRLF");
		return -1;
	}
	*ret_used = total;
	if (n != b->size) {
		*ret_ok = false;
		snprintf(why, why_size, "value of %" PRIu64 " bytes, wanted %zu",
		    n, b->size);
		return 1;
	}
	*ret_ok = true;
	return 1;
}

static void
conn_on_reply(struct conn *c, bool ok, const char *why, uint64_t now)
{
	struct bench *b = c->b;

	if (c->state == CONN_HELLO && ok && b->mode == MODE_ORDER) {
		c->state = CONN_LOGIN;
		conn_send(c, &c->login, now);
		return;
	}
	if (c->state == CONN_HELLO || c->state == CONN_LOGIN) {
		if (!ok) {
			conn_fail(c, "%s: %s", c->state == CONN_HELLO ? "Hello" :
			    "Login", why);
			return;
		}
		if (c->login.buf)
			explicit_bzero(c->login.buf, c->login.len);
		c->state = CONN_READY;
		b->n_ready++;
		bench_check_ready(b);
		return;
	}
	c->state = CONN_READY;
	if (!ok)
		bench_error(b, "connection %u: %s", c->idx, why);
	else if (b->phase == PHASE_MEASURE) {
		hist_record(&b->hist, now - c->sent_ns);
		b->requests++;
		if (c->req->order &&
		    c->order_state == TWINROUTE__ORDER_STATE__ORDER_AUTHORIZED)
			b->authorized++;
		else if (c->req->order)
			b->declined++;
	}
	if (b->phase == PHASE_WARMUP || b->phase == PHASE_MEASURE)
		conn_send_next(c, now);
}

static void
conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct bench *b = c->b;
	size_t used = 0, need = 0;
	bool ok = false;
	char why[320];
	ssize_t n;
	int r;

	(void)what;
	if (c->rlen == c->rcap) {
		size_t cap = c->rcap * 2;
		uint8_t *nb = realloc(c->rbuf, cap);

		if (!nb)
			die("out of memory");
		c->rbuf = nb;
		c->rcap = cap;
	}
	n = recv(fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	if (n == 0) {
		conn_fail(c, "closed by the server");
		return;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_fail(c, "read: %s", strerror(errno));
		return;
	}
	c->rlen += (size_t)n;
	if (c->state != CONN_BUSY && c->state != CONN_HELLO &&
	    c->state != CONN_LOGIN) {
		conn_fail(c, "data from the server with no request outstanding");
		return;
	}
	why[0] = '\0';
	if (proto_mode(b))
		r = cat_reply(c, &used, &need, &ok, why, sizeof(why));
	else
		r = redis_reply(c, &used, &need, &ok, why, sizeof(why));
	if (r < 0) {
		conn_fail(c, "%s", why);
		return;
	}
	if (r == 0) {
		/* Grow now to the whole reply when its length is known. */
		if (need > c->rcap) {
			uint8_t *nb = realloc(c->rbuf, need);

			if (!nb)
				die("out of memory");
			c->rbuf = nb;
			c->rcap = need;
		}
		return;
	}
	if (used != c->rlen) {
		conn_fail(c, "%zu bytes after the reply, with one request outstanding",
		    c->rlen - used);
		return;
	}
	c->rlen = 0;
	conn_on_reply(c, ok, why, now_ns());
}

static void
conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct bench *b = c->b;
	socklen_t len;
	int err = 0;

	(void)what;
	if (c->state != CONN_CONNECTING) {
		conn_flush(c);
		return;
	}
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		conn_fail(c, "connect %s: %s", b->hostport, strerror(err));
		return;
	}
	event_add(c->rev, NULL);
	if (proto_mode(b)) {
		c->state = CONN_HELLO;
		conn_send(c, &b->hello, now_ns());
		return;
	}
	c->state = CONN_READY;
	b->n_ready++;
	bench_check_ready(b);
}

static void
conn_start(struct bench *b, unsigned idx)
{
	struct conn *c = &b->c[idx];
	int one = 1;

	c->b = b;
	c->idx = idx;
	c->state = CONN_CONNECTING;
	c->rcap = proto_mode(b) ? CAT_RBUF_INIT : b->size + 64;
	if (b->mode == MODE_ORDER)
		order_conn_login(b, c);
	c->rbuf = malloc(c->rcap);
	if (!c->rbuf)
		die("out of memory");
	c->fd = socket(b->addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("TCP_NODELAY: %s", strerror(errno));
	c->rev = event_new(b->base, c->fd, EV_READ | EV_PERSIST, conn_on_read,
	    c);
	c->wev = event_new(b->base, c->fd, EV_WRITE, conn_on_write, c);
	if (!c->rev || !c->wev)
		die("event_new failed");
	if (connect(c->fd, (const struct sockaddr *)&b->addr, b->addrlen) < 0 &&
	    errno != EINPROGRESS) {
		conn_fail(c, "connect %s: %s", b->hostport, strerror(errno));
		return;
	}
	/* Connected or in progress: writable says which. */
	event_add(c->wev, NULL);
}

static void
bench_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	switch (b->phase) {
	case PHASE_CONNECT:
		for (unsigned i = 0; i < b->conns; i++) {
			struct conn *c = &b->c[i];

			if (c->state == CONN_CONNECTING || c->state == CONN_HELLO ||
			    c->state == CONN_LOGIN)
				conn_fail(c, "not ready after %d s",
				    BENCH_CONNECT_TIMEOUT);
		}
		return;
	case PHASE_WARMUP:
		b->phase = PHASE_MEASURE;
		b->t_start = now_ns();
		bench_timer_add(b, b->seconds);
		return;
	case PHASE_MEASURE:
		bench_finish(b);
		return;
	case PHASE_DONE:
		return;
	}
}

static void
bench_on_sigint(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	msg("interrupted");
	bench_finish(b);
}

static void
bench_run(struct bench *b)
{
	struct event_config *cfg;

	cfg = event_config_new();
	if (!cfg)
		die("event_config_new failed");
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	b->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!b->base)
		die("event_base_new failed");
	b->timer = evtimer_new(b->base, bench_on_timer, b);
	b->sigint = evsignal_new(b->base, SIGINT, bench_on_sigint, b);
	b->c = calloc(b->conns, sizeof(*b->c));
	if (!b->timer || !b->sigint || !b->c)
		die("out of memory");
	evsignal_add(b->sigint, NULL);

	b->phase = PHASE_CONNECT;
	b->n_open = b->conns;
	bench_timer_add(b, BENCH_CONNECT_TIMEOUT);
	for (unsigned i = 0; i < b->conns; i++)
		conn_start(b, i);
	if (b->phase != PHASE_DONE)
		event_base_dispatch(b->base);
	if (b->phase != PHASE_DONE)
		bench_finish(b);
}

static void
bench_free(struct bench *b)
{
	for (unsigned i = 0; b->c && i < b->conns; i++) {
		struct conn *c = &b->c[i];

		if (c->rev)
			event_free(c->rev);
		if (c->wev)
			event_free(c->wev);
		if (c->fd >= 0)
			close(c->fd);
		free(c->rbuf);
		if (c->login.buf)
			explicit_bzero(c->login.buf, c->login.len);
		free(c->login.buf);
	}
	explicit_bzero(b->password, sizeof(b->password));
	free(b->value);
	free(b->c);
	if (b->timer)
		event_free(b->timer);
	if (b->sigint)
		event_free(b->sigint);
	if (b->base)
		event_base_free(b->base);
	for (int op = 0; op < OP__COUNT; op++) {
		for (size_t i = 0; b->tmpls[op] && i < b->n_tmpls[op]; i++)
			free(b->tmpls[op][i].buf);
		free(b->tmpls[op]);
	}
	free(b->hello.buf);
	strv_free(&b->ids);
	strv_free(&b->cats);
	strv_free(&b->words);
	strv_free(&b->services);
}

static int
bench_report(const struct bench *b)
{
	const char *mode = mode_names[b->mode];
	char extra[96] = "", jextra[96] = "";
	uint64_t elapsed = b->t_end > b->t_start ? b->t_end - b->t_start : 0;
	double rps = elapsed ? (double)b->requests * 1e9 / (double)elapsed : 0;
	double p50 = (double)hist_percentile(&b->hist, 50.0) / 1e3;
	double p99 = (double)hist_percentile(&b->hist, 99.0) / 1e3;
	double p999 = (double)hist_percentile(&b->hist, 99.9) / 1e3;
	double max = (double)b->hist.max / 1e3;

	if (b->mode == MODE_ORDER) {
		snprintf(extra, sizeof(extra), " authorized=%" PRIu64
		    " declined=%" PRIu64, b->authorized, b->declined);
		snprintf(jextra, sizeof(jextra), ",\"authorized\":%" PRIu64
		    ",\"declined\":%" PRIu64, b->authorized, b->declined);
	}
	fprintf(b->json ? stderr : stdout,
	    "%s %s conns=%u secs=%u requests=%" PRIu64 " rps=%.0f"
	    " p50=%.3fms p99=%.3fms p99.9=%.3fms max=%.3fms errors=%" PRIu64
	    "%s\n",
	    mode, b->mix, b->conns, b->seconds, b->requests, rps, p50 / 1e3,
	    p99 / 1e3, p999 / 1e3, max / 1e3, b->errors, extra);
	if (b->json)
		printf("{\"mode\":\"%s\",\"mix\":\"%s\",\"conns\":%u,"
		    "\"seconds\":%u,\"requests\":%" PRIu64 ",\"rps\":%.1f,"
		    "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
		    "\"max_us\":%.1f,\"errors\":%" PRIu64 "%s}\n",
		    mode, b->mix, b->conns, b->seconds, b->requests, rps, p50,
		    p99, p999, max, b->errors, jextra);
	fflush(stdout);
	if (b->errors > 0)
		return 1;
	if (b->requests == 0) {
		msg("no request completed");
		return 1;
	}
	return 0;
}

/* ---- provider mode ---- */

typedef Twinroute__Provider__ProviderRequest PRequest;
typedef Twinroute__Provider__ProviderResponse PResponse;

static volatile sig_atomic_t prov_interrupted;

static void
prov_on_signal(int sig)
{
	(void)sig;
	prov_interrupted = 1;
}

/* bench_error() for the session threads. */
static void
prov_error(struct prov_session *s, const char *fmt, ...) _printf_(2, 3);

static void
prov_error(struct prov_session *s, const char *fmt, ...)
{
	struct bench *b = s->b;
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&b->prov_lock);
	bench_error(b, "session %u (%s): %s", s->idx, s->provider_id, text);
	pthread_mutex_unlock(&b->prov_lock);
}

/*
 * One line of --providers-file, without its newline: "PROVIDER_ID TOKEN"
 * (spaces or tabs around and between). 1 with the two fields copied out,
 * 0 for a blank line or a '#' comment, -EINVAL with *ret_why.
 */
static int
prov_parse_line(const char *line, size_t len, char ret_id[PROV_ID_MAX + 1],
    char ret_token[PROV_TOKEN_MAX + 1], const char **ret_why)
{
	const char *p = line, *end = line + len, *field[2];
	size_t flen[2], nf = 0;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p == '#')
		return 0;
	while (p < end) {
		const char *start = p;

		while (p < end && *p != ' ' && *p != '\t') {
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
				*ret_why = "a byte that is not printable ASCII";
				return -EINVAL;
			}
			p++;
		}
		if (nf == 2) {
			*ret_why = "more than two fields";
			return -EINVAL;
		}
		field[nf] = start;
		flen[nf++] = (size_t)(p - start);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
	}
	if (nf != 2) {
		*ret_why = "want 'PROVIDER_ID TOKEN'";
		return -EINVAL;
	}
	if (flen[0] > PROV_ID_MAX) {
		*ret_why = "provider id too long";
		return -EINVAL;
	}
	if (flen[1] > PROV_TOKEN_MAX) {
		*ret_why = "token too long";
		return -EINVAL;
	}
	memcpy(ret_id, field[0], flen[0]);
	ret_id[flen[0]] = '\0';
	memcpy(ret_token, field[1], flen[1]);
	ret_token[flen[1]] = '\0';
	return 1;
}

/* Read --providers-file into b->ps and b->conns. */
static void
prov_setup(struct bench *b)
{
	char line[PROV_LINE_MAX + 2];
	unsigned lineno = 0, n = 0;
	FILE *f;

	f = fopen(b->providers_file, "re");
	if (!f)
		die("--providers-file %s: %s", b->providers_file,
		    strerror(errno));
	b->ps = calloc(PROV_SESSIONS_MAX, sizeof(*b->ps));
	if (!b->ps)
		die("out of memory");
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		struct prov_session *s;
		const char *why = NULL;
		int r;

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f))
			die("--providers-file %s:%u: longer than %u bytes",
			    b->providers_file, lineno, PROV_LINE_MAX);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (memchr(line, '\0', len))
			die("--providers-file %s:%u: a NUL byte",
			    b->providers_file, lineno);
		if (n == PROV_SESSIONS_MAX)
			die("--providers-file %s: more than %u sessions",
			    b->providers_file, PROV_SESSIONS_MAX);
		s = &b->ps[n];
		r = prov_parse_line(line, len, s->provider_id, s->token, &why);
		explicit_bzero(line, sizeof(line));
		if (r < 0)
			die("--providers-file %s:%u: %s", b->providers_file,
			    lineno, why);
		if (r == 0)
			continue;
		for (unsigned i = 0; i < n; i++)
			if (strcmp(b->ps[i].provider_id, s->provider_id) == 0)
				die("--providers-file %s:%u: provider %s again "
				    "(a second session replaces the first)",
				    b->providers_file, lineno, s->provider_id);
		s->b = b;
		s->idx = n++;
	}
	if (ferror(f))
		die("--providers-file %s: %s", b->providers_file,
		    strerror(errno));
	fclose(f);
	if (n == 0)
		die("--providers-file %s: no session", b->providers_file);
	b->conns = n;
}

/* Pack and send req; note the time. 0, or -1 after reporting. */
static int
prov_send(struct prov_session *s, struct tr_conn *conn, PRequest *req,
    const char *what)
{
	int r;

	r = tr_conn_send(conn, &req->base);
	if (r < 0) {
		prov_error(s, "send %s: %s", what, tr_strerror(r));
		return -1;
	}
	s->last_tx_ns = now_ns();
	return 0;
}

/* Read and decode one response. 0, or -1 after reporting. */
static int
prov_recv(struct prov_session *s, struct tr_conn *conn, PResponse **ret)
{
	_cleanup_free_ uint8_t *buf = NULL;
	PResponse *resp;
	uint32_t len;
	int r;

	r = tr_conn_recv(conn, PROV_RESP_MAX, &buf, &len);
	if (r < 0) {
		prov_error(s, "receive: %s", tr_strerror(r));
		return -1;
	}
	resp = twinroute__provider__provider_response__unpack(NULL, len, buf);
	if (!resp) {
		prov_error(s, "a response that does not decode");
		return -1;
	}
	*ret = resp;
	return 0;
}

static void
prov_resp_error(struct prov_session *s, const PResponse *resp,
    const char *what)
{
	const Twinroute__Error *e = resp->error;

	prov_error(s, "%s: error %d: %s", what, e ? (int)e->code : -1,
	    e && e->message ? e->message : "");
}

/* Connect, send Hello, read the HelloReply: 0 or -1 after reporting. */
static int
prov_hello(struct prov_session *s, struct tr_conn **ret_conn,
    uint64_t *ret_heartbeat_ns)
{
	struct bench *b = s->b;
	struct tr_conn_opts opts = {
		.timeout_ms = 10000,
		.tls = true,
		.ca_file = b->ca_file,
	};
	Twinroute__Provider__Hello hello;
	PRequest req;
	struct tr_conn *conn = NULL;
	PResponse *resp = NULL;
	int r;

	twinroute__provider__hello__init(&hello);
	twinroute__provider__provider_request__init(&req);
	r = tr_conn_open_tcp(b->hostport, &opts, &conn);
	if (r < 0) {
		prov_error(s, "connect %s: %s", b->hostport, tr_strerror(r));
		return -1;
	}
	hello.version = PROV_PROTO_VERSION;
	hello.agent = unconst("twinroute-bench");
	req.id = PROV_ID_HELLO;
	req.body_case = TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HELLO;
	req.hello = &hello;
	if (prov_send(s, conn, &req, "Hello") < 0)
		goto fail;
	/* Skip heartbeats pushed meanwhile. */
	do {
		if (resp)
			twinroute__provider__provider_response__free_unpacked(
			    resp, NULL);
		resp = NULL;
		if (prov_recv(s, conn, &resp) < 0)
			goto fail;
	} while (resp->id == 0 && resp->body_case ==
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HEARTBEAT);
	if (resp->id != PROV_ID_HELLO || resp->body_case !=
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HELLO ||
	    !resp->hello) {
		if (resp->body_case ==
		    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ERROR)
			prov_resp_error(s, resp, "Hello");
		else
			prov_error(s, "Hello: response id %" PRIu64 " body %d",
			    resp->id, (int)resp->body_case);
		goto fail;
	}
	*ret_heartbeat_ns = (uint64_t)resp->hello->heartbeat_seconds *
	    UINT64_C(1000000000);
	twinroute__provider__provider_response__free_unpacked(resp, NULL);
	*ret_conn = conn;
	return 0;
fail:
	if (resp)
		twinroute__provider__provider_response__free_unpacked(resp, NULL);
	tr_conn_close(conn);
	return -1;
}

/* Room for one more Ack awaiting its Ok: the ring doubles when full. */
static int
prov_acks_reserve(struct prov_session *s)
{
	size_t cap;
	uint64_t *v;

	if (s->ack_hi - s->ack_lo < s->ack_cap)
		return 0;
	cap = s->ack_cap ? s->ack_cap * 2 : PROV_ACKS_INIT;
	if (cap > PROV_ACKS_MAX)
		return -ENOBUFS;
	v = calloc(cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint64_t id = s->ack_lo; id < s->ack_hi; id++)
		v[id & (cap - 1)] = s->ack_sent[id & (s->ack_cap - 1)];
	free(s->ack_sent);
	s->ack_sent = v;
	s->ack_cap = cap;
	return 0;
}

/*
 * Take the Ack of request id off the ring: its send time, or 0 when id
 * is not an Ack awaiting its answer.
 */
static uint64_t
prov_acks_take(struct prov_session *s, uint64_t id)
{
	uint64_t sent;

	if (id < s->ack_lo || id >= s->ack_hi)
		return 0;
	sent = s->ack_sent[id & (s->ack_cap - 1)];
	if (sent == 0)
		return 0;
	atomic_fetch_sub(&s->b->prov_due, 1);
	s->ack_sent[id & (s->ack_cap - 1)] = 0;
	while (s->ack_lo < s->ack_hi &&
	    s->ack_sent[s->ack_lo & (s->ack_cap - 1)] == 0)
		s->ack_lo++;
	return sent;
}

/* Acks still awaiting their Ok. */
static uint64_t
prov_acks_due(const struct prov_session *s)
{
	uint64_t n = 0;

	for (uint64_t id = s->ack_lo; id < s->ack_hi; id++)
		if (s->ack_sent[id & (s->ack_cap - 1)] != 0)
			n++;
	return n;
}

/* A dispatch pushed: count it and Ack it at once. */
static int
prov_on_dispatch(struct prov_session *s, struct tr_conn *conn,
    const PResponse *resp, uint64_t now)
{
	struct bench *b = s->b;
	const Twinroute__Provider__OrderDispatch *d = resp->dispatch;
	Twinroute__Provider__Ack ack;
	PRequest req;
	uint_fast64_t none = 0;
	uint64_t id;
	int r;

	if (resp->id != 0 || !d || d->order_id == 0) {
		prov_error(s, "a dispatch with request id %" PRIu64
		    " or no order id", resp->id);
		return -1;
	}
	if (s->first_ns == 0)
		s->first_ns = now;
	atomic_compare_exchange_strong(&b->prov_first_ns, &none, now);
	atomic_store(&b->prov_last_ns, now);
	s->dispatches++;
	if (d->redelivery)
		s->redeliveries++;

	r = prov_acks_reserve(s);
	if (r < 0) {
		prov_error(s, "more than %u Acks await their Ok",
		    PROV_ACKS_MAX);
		return -1;
	}
	id = s->next_id++;
	twinroute__provider__ack__init(&ack);
	twinroute__provider__provider_request__init(&req);
	ack.order_id = d->order_id;
	req.id = id;
	req.body_case = TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_ACK;
	req.ack = &ack;
	s->ack_sent[id & (s->ack_cap - 1)] = now_ns();
	s->ack_hi = id + 1;
	atomic_fetch_add(&b->prov_due, 1);
	return prov_send(s, conn, &req, "Ack");
}

/*
 * One response of an authenticated (or authenticating) session: 0 to go
 * on, -1 to end the session (reported).
 */
static int
prov_on_response(struct prov_session *s, struct tr_conn *conn,
    const PResponse *resp, bool stopping)
{
	uint64_t now = now_ns(), sent;
	char what[64];

	switch (resp->body_case) {
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_DISPATCH:
		/* Past the end: neither taken nor counted. */
		if (stopping)
			return 0;
		return prov_on_dispatch(s, conn, resp, now);
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_OK:
		sent = prov_acks_take(s, resp->id);
		if (sent == 0) {
			prov_error(s, "Ok for request %" PRIu64 ", not an Ack "
			    "awaiting its answer", resp->id);
			return 0;
		}
		hist_record(&s->hist, now - sent);
		s->acked++;
		s->last_ok_ns = now;
		return 0;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_AUTH:
		if (resp->id != PROV_ID_AUTH || !resp->auth || s->settled) {
			prov_error(s, "AuthReply with request id %" PRIu64,
			    resp->id);
			return -1;
		}
		s->settled = true;
		atomic_fetch_add(&s->b->prov_settled, 1);
		atomic_store(&s->b->prov_last_ns, now);
		return 0;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HEARTBEAT:
		return 0;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ERROR:
		if (prov_acks_take(s, resp->id) != 0) {
			snprintf(what, sizeof(what), "Ack (request %" PRIu64 ")",
			    resp->id);
			prov_resp_error(s, resp, what);
			return 0;
		}
		prov_resp_error(s, resp, resp->id == PROV_ID_AUTH ? "Auth" :
		    "session");
		return -1;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HELLO:
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ORDER:
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICE:
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICES:
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY__NOT_SET:
	case _TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY__CASE_IS_INT_SIZE:
		prov_error(s, "unexpected response: id %" PRIu64 " body %d",
		    resp->id, (int)resp->body_case);
		return -1;
	}
	prov_error(s, "unknown response body %d", (int)resp->body_case);
	return -1;
}

/* Auth, then answer pushes until told to stop and every Ok is in. */
static void
prov_serve(struct prov_session *s, struct tr_conn *conn,
    uint64_t heartbeat_ns)
{
	struct bench *b = s->b;
	Twinroute__Provider__Auth auth;
	Twinroute__Provider__Heartbeat hb;
	PRequest req;
	uint64_t drain_until = 0;
	int r;

	twinroute__provider__auth__init(&auth);
	twinroute__provider__provider_request__init(&req);
	auth.provider_id = s->provider_id;
	auth.token = s->token;
	req.id = PROV_ID_AUTH;
	req.body_case = TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_AUTH;
	req.auth = &auth;
	r = prov_send(s, conn, &req, "Auth");
	explicit_bzero(s->token, sizeof(s->token));
	if (r < 0)
		return;
	s->next_id = s->ack_lo = s->ack_hi = PROV_ID_FIRST_ACK;

	for (;;) {
		bool stopping = atomic_load(&b->prov_stop);
		PResponse *resp = NULL;
		uint64_t now = now_ns();

		if (stopping) {
			if (drain_until == 0)
				drain_until = now + (uint64_t)PROV_DRAIN_MS *
				    UINT64_C(1000000);
			if (s->ack_lo == s->ack_hi || now >= drain_until)
				return;
		}
		r = tr_conn_wait(conn, PROV_POLL_MS);
		if (r == -EINTR)
			continue;
		if (r < 0) {
			prov_error(s, "wait: %s", tr_strerror(r));
			return;
		}
		if (r == 0) {
			/* Idle: a beat now and then keeps the session alive. */
			if (heartbeat_ns > 0 &&
			    now_ns() - s->last_tx_ns >= heartbeat_ns) {
				PRequest beat;

				twinroute__provider__provider_request__init(
				    &beat);
				twinroute__provider__heartbeat__init(&hb);
				hb.unix_ms = (uint64_t)time(NULL) * 1000u;
				beat.body_case =
				    TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HEARTBEAT;
				beat.heartbeat = &hb;
				if (prov_send(s, conn, &beat, "Heartbeat") < 0)
					return;
			}
			continue;
		}
		if (prov_recv(s, conn, &resp) < 0)
			return;
		r = prov_on_response(s, conn, resp, stopping);
		twinroute__provider__provider_response__free_unpacked(resp,
		    NULL);
		if (r < 0)
			return;
	}
}

static void *
prov_thread(void *arg)
{
	struct prov_session *s = arg;
	struct bench *b = s->b;
	struct tr_conn *conn = NULL;
	uint64_t heartbeat_ns = 0;
	int r;

	r = prov_hello(s, &conn, &heartbeat_ns);
	pthread_mutex_lock(&b->prov_lock);
	b->prov_ready++;
	pthread_mutex_unlock(&b->prov_lock);
	if (r == 0) {
		/* Every session authenticates at about the same time. */
		while (!atomic_load(&b->prov_go))
			usleep(1000);
		if (!atomic_load(&b->prov_stop))
			prov_serve(s, conn, heartbeat_ns);
	}
	explicit_bzero(s->token, sizeof(s->token));
	tr_conn_close(conn);
	/* Gone: nothing of this session is awaited any more. */
	if (s->ack_cap > 0)
		atomic_fetch_sub(&b->prov_due, prov_acks_due(s));
	if (!s->settled)
		atomic_fetch_add(&b->prov_settled, 1);
	atomic_fetch_sub(&b->prov_live, 1);
	return NULL;
}

static void
prov_run(struct bench *b)
{
	struct sigaction sa = { .sa_handler = prov_on_signal };
	sigset_t block, old;
	pthread_attr_t attr;
	uint64_t t0, deadline;
	unsigned ready;
	int r;

	r = pthread_mutex_init(&b->prov_lock, NULL);
	if (r != 0)
		die("pthread_mutex_init: %s", strerror(r));
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Signals go to the main thread only. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setstacksize(&attr, PROV_STACK_SIZE) != 0)
		die("pthread_attr: cannot set the stack size");
	atomic_store(&b->prov_live, b->conns);
	for (unsigned i = 0; i < b->conns; i++) {
		r = pthread_create(&b->ps[i].thread, &attr, prov_thread,
		    &b->ps[i]);
		if (r != 0)
			die("pthread_create: %s", strerror(r));
		b->ps[i].started = true;
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	/* Every session connected and past Hello (or failed): go. */
	deadline = now_ns() + (uint64_t)BENCH_CONNECT_TIMEOUT *
	    UINT64_C(1000000000);
	for (;;) {
		pthread_mutex_lock(&b->prov_lock);
		ready = b->prov_ready;
		pthread_mutex_unlock(&b->prov_lock);
		if (ready == b->conns || prov_interrupted)
			break;
		if (now_ns() >= deadline) {
			msg("%u of %u sessions not past Hello after %d s",
			    b->conns - ready, b->conns, BENCH_CONNECT_TIMEOUT);
			atomic_store(&b->prov_stop, true);
			break;
		}
		usleep(10000);
	}
	t0 = now_ns();
	atomic_store(&b->prov_go, true);

	for (;;) {
		uint64_t now, first;

		if (atomic_load(&b->prov_stop))
			break;
		if (prov_interrupted) {
			msg("interrupted");
			break;
		}
		if (atomic_load(&b->prov_live) == 0)
			break;
		now = now_ns();
		first = atomic_load(&b->prov_first_ns);
		/* Done: every session in, every Ack answered, and quiet. */
		if (first != 0 && atomic_load(&b->prov_settled) == b->conns &&
		    atomic_load(&b->prov_due) == 0 &&
		    now - atomic_load(&b->prov_last_ns) >= PROV_IDLE_NS)
			break;
		if (now - t0 >= (uint64_t)b->seconds * UINT64_C(1000000000))
			break;
		usleep(PROV_POLL_MS * 1000);
	}
	atomic_store(&b->prov_stop, true);
	for (unsigned i = 0; i < b->conns; i++)
		if (b->ps[i].started)
			pthread_join(b->ps[i].thread, NULL);

	/* Merge: every session's histogram and counts. */
	for (unsigned i = 0; i < b->conns; i++) {
		struct prov_session *s = &b->ps[i];
		uint64_t due = s->ack_cap ? prov_acks_due(s) : 0;

		for (size_t k = 0; k < HIST_BUCKETS; k++)
			b->hist.counts[k] += s->hist.counts[k];
		b->hist.total += s->hist.total;
		b->hist.max = MAX(b->hist.max, s->hist.max);
		b->requests += s->acked;
		b->dispatches += s->dispatches;
		b->redeliveries += s->redeliveries;
		if (due > 0) {
			prov_error(s, "%" PRIu64 " Acks got no Ok", due);
			b->unanswered += due;
		}
	}
}

static int
prov_report(struct bench *b)
{
	uint64_t first = UINT64_MAX, last = 0, elapsed;
	double rps, p50, p99, p999, max, run;

	for (unsigned i = 0; i < b->conns; i++) {
		const struct prov_session *s = &b->ps[i];

		if (s->first_ns != 0)
			first = MIN(first, s->first_ns);
		if (s->last_ok_ns != 0)
			last = MAX(last, s->last_ok_ns);
	}
	elapsed = first != UINT64_MAX && last > first ? last - first : 0;
	rps = elapsed ? (double)b->requests * 1e9 / (double)elapsed : 0;
	p50 = (double)hist_percentile(&b->hist, 50.0) / 1e3;
	p99 = (double)hist_percentile(&b->hist, 99.0) / 1e3;
	p999 = (double)hist_percentile(&b->hist, 99.9) / 1e3;
	max = (double)b->hist.max / 1e3;
	run = (double)elapsed / 1e9;

	fprintf(b->json ? stderr : stdout,
	    "provider %s conns=%u secs=%u requests=%" PRIu64 " rps=%.0f"
	    " p50=%.3fms p99=%.3fms p99.9=%.3fms max=%.3fms errors=%" PRIu64
	    " dispatches=%" PRIu64 " redeliveries=%" PRIu64
	    " unanswered=%" PRIu64 " elapsed=%.3fs\n",
	    b->mix, b->conns, b->seconds, b->requests, rps, p50 / 1e3,
	    p99 / 1e3, p999 / 1e3, max / 1e3, b->errors, b->dispatches,
	    b->redeliveries, b->unanswered, run);
	if (b->json)
		printf("{\"mode\":\"provider\",\"mix\":\"%s\",\"conns\":%u,"
		    "\"seconds\":%u,\"requests\":%" PRIu64 ",\"rps\":%.1f,"
		    "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
		    "\"max_us\":%.1f,\"errors\":%" PRIu64 ",\"dispatches\":%"
		    PRIu64 ",\"redeliveries\":%" PRIu64 ",\"unanswered\":%"
		    PRIu64 ",\"elapsed_s\":%.3f}\n",
		    b->mix, b->conns, b->seconds, b->requests, rps, p50, p99,
		    p999, max, b->errors, b->dispatches, b->redeliveries,
		    b->unanswered, run);
	fflush(stdout);
	if (b->errors > 0)
		return 1;
	if (b->requests == 0) {
		msg("no dispatch acknowledged");
		return 1;
	}
	return 0;
}

static void
prov_free(struct bench *b)
{
	for (unsigned i = 0; b->ps && i < PROV_SESSIONS_MAX; i++) {
		explicit_bzero(b->ps[i].token, sizeof(b->ps[i].token));
		free(b->ps[i].ack_sent);
	}
	free(b->ps);
	b->ps = NULL;
	pthread_mutex_destroy(&b->prov_lock);
}

int
main(int argc, char **argv)
{
	static struct bench b; /* the histogram is large: not on the stack */
	int ret;

	signal(SIGPIPE, SIG_IGN);
	parse_args(&b, argc, argv);
	resolve(&b);
	if (b.mode == MODE_PROVIDER) {
		prov_setup(&b);
		raise_nofile(b.conns);
		prov_run(&b);
		ret = prov_report(&b);
		prov_free(&b);
		return ret;
	}
	raise_nofile(b.conns);
	switch (b.mode) {
	case MODE_CATALOG:
		cat_setup(&b);
		cat_build(&b);
		break;
	case MODE_REDIS:
		redis_setup(&b);
		redis_build(&b);
		break;
	case MODE_ORDER:
		order_setup(&b);
		order_build(&b);
		break;
	case MODE_REDIS_SET:
		redis_set_setup(&b);
		break;
	case MODE_PROVIDER:
		break;
	}
	bench_run(&b);
	ret = bench_report(&b);
	bench_free(&b);
	return ret;
}
