/* SPDX-License-Identifier: ISC */
/* vault-bench.c -- card authentication through the vault thread: throughput and
 * latency */

/*
 * Opens a vault in a fresh temporary directory (key-file mode, so it is
 * unsealed at once), enrols N cards through enrolment envelopes, then
 * keeps Q authentications in flight for D seconds: each reply's callback
 * records the latency from vault_submit() to the callback (loop -> vault
 * thread -> loop) and submits the next request. Limits are set so that
 * every authentication succeeds, so every one writes the spend log and
 * an audit line.
 *
 * The card numbers are synthetic: a fixed test prefix, the card's index
 * and a Luhn digit.
 */

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench-card.h"
#include "vault/card.h"
#include "vault/envelope.h"
#include "vault/vault.h"

#define VB_CARDS_DEFAULT 1000u
#define VB_CARDS_MAX 1000000u
#define VB_SECONDS_DEFAULT 10u
#define VB_SECONDS_MAX 3600u
#define VB_INFLIGHT_DEFAULT 64u
#define VB_INFLIGHT_MAX 65536u
#define VB_ENROL_INFLIGHT 256u
#define VB_WARMUP_MS 500u

/* Latency histogram in ns: exact below 32, then 16 steps per power of 2. */
#define HIST_SUB 16u
#define HIST_BUCKETS (2 * HIST_SUB + 48 * HIST_SUB)

struct hist {
	uint64_t n[HIST_BUCKETS];
	uint64_t count, sum, max;
};

struct bench;

struct inflight {
	struct bench *b;
	uint64_t start;
	struct vault_request req;
};

struct bench {
	unsigned cards, seconds, depth;
	bool json;
	bool lazy;
	const char *tmpbase;
	char dir[256];
	struct event_base *base;
	struct vault *v;
	struct inflight *fl;
	uint64_t rng;

	/* enrolment */
	unsigned enrol_next, enrol_done, enrol_failed;
	uint8_t enrol_key[VAULT_ENROL_KEY_SIZE];

	/* load */
	bool measuring, stopping;
	uint64_t t_start, t_end;
	unsigned live;
	uint64_t ok, failed;
	const char *first_error;
	struct hist h;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned
hist_index(uint64_t v)
{
	unsigned msb, e;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	e = msb - 4; /* v >> e in [16, 32) */
	if (e > 48)
		return HIST_BUCKETS - 1;
	return 2 * HIST_SUB + (e - 1) * HIST_SUB +
	       (unsigned)((v >> e) - HIST_SUB);
}

/* The middle of a bucket. */
static uint64_t
hist_value(unsigned i)
{
	unsigned e, k;

	if (i < 2 * HIST_SUB)
		return i;
	e = (i - 2 * HIST_SUB) / HIST_SUB + 1;
	k = (i - 2 * HIST_SUB) % HIST_SUB;
	return ((uint64_t)(HIST_SUB + k) << e) + ((1ull << e) >> 1);
}

static void
hist_add(struct hist *h, uint64_t v)
{
	h->n[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static double
hist_pct_us(const struct hist *h, double pct)
{
	uint64_t want, seen = 0;

	if (h->count == 0)
		return 0;
	want = (uint64_t)((double)h->count * pct / 100.0 + 0.5);
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= want)
			return (double)hist_value(i) / 1000.0;
	}
	return (double)h->max / 1000.0;
}

static uint64_t
rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
member_of(unsigned i, char out[VAULT_MEMBER_MAX + 1])
{
	snprintf(out, VAULT_MEMBER_MAX + 1, "B%07u", i);
}

static void
die(const char *what, int err)
{
	fprintf(stderr, "twinroute-vault-bench: %s: %s\n", what,
	    err ? strerror(-err) : "failed");
	exit(1);
}

/* ---- enrolment ------------------------------------------------------------
 */

static void enrol_next(struct bench *b);

static void
on_enrolled(void *arg, struct vault_reply *y)
{
	struct bench *b = arg;

	b->enrol_done++;
	if (y->code != VAULT_OK) {
		if (b->enrol_failed++ == 0)
			fprintf(stderr, "enrol: %s: %s\n",
			    vault_strcode(y->code), y->message);
	}
	enrol_next(b);
}

static void
enrol_next(struct bench *b)
{
	struct vault_request q;
	struct card_input in;
	int r;

	if (b->enrol_next >= b->cards)
		return;
	memset(&q, 0, sizeof(q));
	memset(&in, 0, sizeof(in));
	q.op = VAULT_OP_CARD_SET;
	snprintf(q.actor, sizeof(q.actor), "vault-bench");
	member_of(b->enrol_next, q.member);
	bench_card_number(b->enrol_next, in.number);
	in.exp_month = 12;
	in.exp_year = 2099;
	snprintf(
	    in.holder, sizeof(in.holder), "Bench Holder %u", b->enrol_next);
	r = envelope_seal(b->enrol_key, q.member, &in, q.card_set.envelope,
	    sizeof(q.card_set.envelope), &q.card_set.len);
	memset(&in, 0, sizeof(in));
	if (r < 0)
		die("envelope_seal", r);
	b->enrol_next++;
	r = vault_submit(b->v, &q, on_enrolled, b);
	if (r < 0)
		die("vault_submit", r);
}

/* ---- load -----------------------------------------------------------------
 */

static void on_auth(void *arg, struct vault_reply *y);

static void
auth_send(struct inflight *f)
{
	struct bench *b = f->b;
	int r;

	member_of((unsigned)(rng_next(&b->rng) % b->cards), f->req.member);
	f->req.auth.order_id++;
	f->start = now_ns();
	r = vault_submit(b->v, &f->req, on_auth, f);
	if (r < 0)
		die("vault_submit", r);
	b->live++;
}

static void
on_auth(void *arg, struct vault_reply *y)
{
	struct inflight *f = arg;
	struct bench *b = f->b;
	uint64_t t = now_ns();

	b->live--;
	if (b->measuring && t <= b->t_end) {
		hist_add(&b->h, t - f->start);
		if (y->code == VAULT_OK) {
			b->ok++;
		} else {
			if (b->failed++ == 0)
				b->first_error = vault_strcode(y->code);
		}
	}
	if (t >= b->t_end && b->measuring)
		b->stopping = true;
	if (!b->stopping)
		auth_send(f);
	else if (b->live == 0)
		event_base_loopbreak(b->base);
}

static void
on_warm(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	b->measuring = true;
	b->t_start = now_ns();
	b->t_end = b->t_start + (uint64_t)b->seconds * 1000000000u;
}

/* ---- main -----------------------------------------------------------------
 */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: twinroute-vault-bench [-n CARDS] [-d SECONDS] [-q INFLIGHT]\n"
	    "           [-t DIR] [--lazy-auth-sync] [--json]\n"
	    "  -n CARDS      cards enrolled before the run (default %u)\n"
	    "  -d SECONDS    measured seconds (default %u), after %u ms warm-up\n"
	    "  -q INFLIGHT   authentications kept in flight (default %u)\n"
	    "  -t DIR        where the temporary vault goes (default $TMPDIR or /tmp)\n"
	    "      --lazy-auth-sync  audit lines of authentications synced within\n"
	    "                a second, not before each batch's replies\n"
	    "      --json    print one JSON object on stdout\n",
	    VB_CARDS_DEFAULT, VB_SECONDS_DEFAULT, VB_WARMUP_MS,
	    VB_INFLIGHT_DEFAULT);
}

static unsigned
parse_uint(const char *s, unsigned min, unsigned max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "twinroute-vault-bench: %s: %u..%u\n", what,
		    min, max);
		exit(2);
	}
	return (unsigned)v;
}

static void
report(const struct bench *b)
{
	double secs = (double)b->seconds;
	double rate = (double)b->h.count / secs;
	double mean =
	    b->h.count ? (double)b->h.sum / (double)b->h.count / 1000.0 : 0;

	if (b->json) {
		printf("{\"cards\": %u, \"seconds\": %u, \"inflight\": %u, "
		       "\"auths\": %" PRIu64 ", \"ok\": %" PRIu64
		       ", \"failed\": %" PRIu64 ", \"auths_per_sec\": %.0f, "
		       "\"mean_us\": %.2f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
		       "\"p999_us\": %.2f, \"max_us\": %.2f, \"dir\": \"%s\", "
		       "\"audit_sync\": \"%s\"}\n",
		    b->cards, b->seconds, b->depth, b->h.count, b->ok,
		    b->failed, rate, mean, hist_pct_us(&b->h, 50),
		    hist_pct_us(&b->h, 99), hist_pct_us(&b->h, 99.9),
		    (double)b->h.max / 1000.0, b->tmpbase,
		    b->lazy ? "lazy" : "batch");
		return;
	}
	printf(
	    "vault authentications: %u cards, %u in flight, %u s, vault in %s, audit sync %s\n",
	    b->cards, b->depth, b->seconds, b->tmpbase,
	    b->lazy ? "lazy (within 1 s)" : "per batch");
	printf("  auths      %" PRIu64 " (%" PRIu64 " ok, %" PRIu64
	       " failed%s%s)\n",
	    b->h.count, b->ok, b->failed, b->first_error ? ": first " : "",
	    b->first_error ? b->first_error : "");
	printf("  auths/s    %.0f\n", rate);
	printf(
	    "  latency    mean %.1f us, p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
	    mean, hist_pct_us(&b->h, 50), hist_pct_us(&b->h, 99),
	    hist_pct_us(&b->h, 99.9), (double)b->h.max / 1000.0);
}

struct waiter {
	bool done;
	struct vault_reply y;
};

static void
on_wait(void *arg, struct vault_reply *y)
{
	struct waiter *w = arg;

	w->y = *y;
	w->done = true;
}

static struct vault_reply
call(struct bench *b, enum vault_op op, bool key_file)
{
	struct vault_request q;
	struct waiter w = {0};
	int r;

	memset(&q, 0, sizeof(q));
	q.op = op;
	snprintf(q.actor, sizeof(q.actor), "vault-bench");
	q.init.key_file = key_file;
	r = vault_submit(b->v, &q, on_wait, &w);
	if (r < 0)
		die("vault_submit", r);
	while (!w.done)
		event_base_loop(b->base, EVLOOP_ONCE);
	return w.y;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"lazy-auth-sync", no_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench b;
	struct vault_opts opts;
	struct vault_reply y;
	struct event *warm;
	struct timeval tv;
	char path[320], audit[320], key[320];
	int opt, r;

	memset(&b, 0, sizeof(b));
	b.cards = VB_CARDS_DEFAULT;
	b.seconds = VB_SECONDS_DEFAULT;
	b.depth = VB_INFLIGHT_DEFAULT;
	b.tmpbase = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	b.rng = (uint64_t)now_ns();
	while ((opt = getopt_long(argc, argv, "n:d:q:t:h", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'n':
			b.cards = parse_uint(optarg, 1, VB_CARDS_MAX, "-n");
			break;
		case 'd':
			b.seconds = parse_uint(optarg, 1, VB_SECONDS_MAX, "-d");
			break;
		case 'q':
			b.depth = parse_uint(optarg, 1, VB_INFLIGHT_MAX, "-q");
			break;
		case 't':
			b.tmpbase = optarg;
			break;
		case 'j':
			b.json = true;
			break;
		case 'l':
			b.lazy = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	snprintf(
	    b.dir, sizeof(b.dir), "%s/twinroute-vault-bench.XXXXXX", b.tmpbase);
	if (!mkdtemp(b.dir))
		die("mkdtemp", -errno);
	snprintf(path, sizeof(path), "%s/vault", b.dir);
	snprintf(audit, sizeof(audit), "%s/audit.log", b.dir);
	snprintf(key, sizeof(key), "%s/vault.key", b.dir);
	b.base = event_base_new();
	if (!b.base)
		die("event_base_new", -ENOMEM);
	memset(&opts, 0, sizeof(opts));
	opts.path = path;
	opts.map_size = 256ull << 20;
	opts.key_file = key;
	opts.audit_log = audit;
	opts.order_limit = INT64_MAX / 4;
	opts.daily_limit = INT64_MAX / 4;
	opts.lazy_auth_sync = b.lazy;
	r = vault_open(&opts, b.base, &b.v);
	if (r < 0)
		die("vault_open", r);

	/* A key-file vault is unsealed from its init on. */
	y = call(&b, VAULT_OP_INIT, true);
	if (y.code != VAULT_OK) {
		fprintf(
		    stderr, "init: %s: %s\n", vault_strcode(y.code), y.message);
		return 1;
	}
	memcpy(b.enrol_key, y.enrol_key, sizeof(b.enrol_key));

	/* Enrol the cards, VB_ENROL_INFLIGHT at a time. */
	for (unsigned i = 0; i < VB_ENROL_INFLIGHT; i++)
		enrol_next(&b);
	while (b.enrol_done < b.cards)
		event_base_loop(b.base, EVLOOP_ONCE);
	if (b.enrol_failed) {
		fprintf(stderr, "%u enrolments failed\n", b.enrol_failed);
		return 1;
	}

	/* The load: a warm-up, then the measured seconds. */
	b.fl = calloc(b.depth, sizeof(*b.fl));
	if (!b.fl)
		die("calloc", -ENOMEM);
	b.t_end = UINT64_MAX;
	warm = evtimer_new(b.base, on_warm, &b);
	tv.tv_sec = VB_WARMUP_MS / 1000;
	tv.tv_usec = (VB_WARMUP_MS % 1000) * 1000;
	if (!warm || evtimer_add(warm, &tv) < 0)
		die("evtimer", -ENOMEM);
	for (unsigned i = 0; i < b.depth; i++) {
		struct inflight *f = &b.fl[i];

		f->b = &b;
		f->req.op = VAULT_OP_AUTHENTICATE;
		snprintf(f->req.actor, sizeof(f->req.actor), "vault-bench");
		f->req.auth.amount = 1;
		memcpy(f->req.auth.currency, "EUR", 4);
		f->req.auth.order_id = (uint64_t)i << 32;
		auth_send(f);
	}
	event_base_dispatch(b.base);
	report(&b);

	event_free(warm);
	b.v = vault_close(b.v);
	event_base_free(b.base);
	free(b.fl);
	nftw(b.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return b.failed ? 1 : 0;
}
