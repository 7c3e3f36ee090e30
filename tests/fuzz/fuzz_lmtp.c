/* SPDX-License-Identifier: ISC */
/* fuzz_lmtp.c -- the LMTP engine over client input cut at varying points */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "mail/lmtp.h"

/*
 * Each input is run three times: whole with every delivery answered from
 * within the callback (the reference); cut into small chunks with some
 * deliveries answered later, which must give the same output; and in two
 * reads with every delivery answered late, which hits the bound on input
 * buffered while busy. Small limits so that the other bounds are hit too.
 */

#define FZ_REPLY_MAX 512

static const struct lmtp_limits fz_limits = {
	.max_message = 256,
	.max_line = 512,
	.max_rcpts = 3,
};

struct fz {
	struct lmtp_session *s;
	const struct lmtp_envelope *env; /* unanswered delivery */
	bool defer_all;
	bool defer_some;
	uint32_t rng;
	unsigned deliveries;
	uint64_t hash;          /* of everything emitted */
	size_t out_len;
};

static uint32_t
fz_rand(struct fz *f)
{
	/* xorshift32: deterministic per input. */
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 17;
	f->rng ^= f->rng << 5;
	return f->rng;
}

static uint64_t
fz_fnv(uint64_t h, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Complete reply lines: "ddd" then ' ' or '-', printable, <= 512. */
static void
fz_output(void *arg, const char *buf, size_t len)
{
	struct fz *f = arg;
	size_t i, start = 0;

	FZ_CHECK(len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		FZ_CHECK(i > start && buf[i - 1] == '\r');
		FZ_CHECK(i + 1 - start <= FZ_REPLY_MAX);
		FZ_CHECK(i - start >= 4);
		FZ_CHECK(buf[start] >= '2' && buf[start] <= '5');
		FZ_CHECK(buf[start + 1] >= '0' && buf[start + 1] <= '9');
		FZ_CHECK(buf[start + 2] >= '0' && buf[start + 2] <= '9');
		FZ_CHECK(buf[start + 3] == ' ' || buf[start + 3] == '-');
		for (size_t j = start; j + 1 < i; j++)
			FZ_CHECK(buf[j] >= 0x20 && buf[j] <= 0x7e);
		start = i + 1;
	}
	FZ_CHECK(start == len);
	f->hash = fz_fnv(f->hash, buf, len);
	f->out_len += len;
}

/* Decided by the address alone, so every run decides alike. */
static int
fz_rcpt(void *arg, const char *addr, char *reply, size_t size)
{
	size_t len = strlen(addr);

	(void)arg;
	FZ_CHECK(len >= 1 && len <= 254);
	if (addr[0] == 'b' || addr[0] == 'B') {
		snprintf(reply, size, "550 5.1.1 no such user");
		return -1;
	}
	if (addr[0] == 't') {
		snprintf(reply, size, "451 4.3.0 try later");
		return -1;
	}
	if (addr[0] == 'g') {
		/* Garbage the engine must not pass through. */
		snprintf(reply, size, "2\r\n50 ok");
		return -1;
	}
	return 0;
}

static void
fz_check_env(const struct lmtp_envelope *env)
{
	size_t i, line = 0;

	FZ_CHECK(env->mail_from != NULL && strlen(env->mail_from) <= 254);
	FZ_CHECK(env->n_rcpts >= 1 && env->n_rcpts <= fz_limits.max_rcpts);
	for (i = 0; i < env->n_rcpts; i++)
		FZ_CHECK(strlen(env->rcpts[i]) >= 1 &&
		    strlen(env->rcpts[i]) <= 254);
	FZ_CHECK(env->data != NULL);
	FZ_CHECK(env->data_len <= fz_limits.max_message);
	/* CRLF lines only, none over max_line. */
	for (i = 0; i < env->data_len; i++) {
		if (env->data[i] == '\n') {
			FZ_CHECK(i > 0 && env->data[i - 1] == '\r');
			FZ_CHECK(line - 1 <= fz_limits.max_line);
			line = 0;
		} else {
			line++;
		}
	}
	FZ_CHECK(line == 0);
}

static int
fz_answer(struct fz *f)
{
	const struct lmtp_envelope *env = f->env;
	const char *replies[8];
	size_t i;

	FZ_CHECK(env != NULL && env->n_rcpts <= 8);
	for (i = 0; i < env->n_rcpts; i++)
		replies[i] = (f->deliveries + i) % 3 == 1 ?
		    "550 5.7.1 unknown token" : "250 2.1.5 confirmed";
	f->env = NULL;
	return lmtp_session_deliver_done(f->s, replies, env->n_rcpts);
}

static void
fz_deliver(void *arg, const struct lmtp_envelope *env)
{
	struct fz *f = arg;
	const char *wrong[1] = { "250 ok" };
	int r;

	FZ_CHECK(f->env == NULL);
	FZ_CHECK(lmtp_session_busy(f->s));
	fz_check_env(env);
	f->deliveries++;
	f->env = env;
	if (env->n_rcpts != 1)
		FZ_CHECK(lmtp_session_deliver_done(f->s, wrong, 1) < 0);
	if (f->defer_all || (f->defer_some && (fz_rand(f) & 1)))
		return;
	r = fz_answer(f);
	FZ_CHECK(r == 0);
	FZ_CHECK(!lmtp_session_busy(f->s));
}

static struct lmtp_session *
fz_session(struct fz *f)
{
	const struct lmtp_callbacks cb = {
		.output = fz_output,
		.rcpt = fz_rcpt,
		.deliver = fz_deliver,
		.arg = f,
	};

	f->hash = 0xcbf29ce484222325ULL;
	f->s = lmtp_session_new(&fz_limits, "mx.fuzz", &cb);
	FZ_CHECK(f->s != NULL);
	lmtp_session_start(f->s);
	return f->s;
}

/* Feed one piece; answer deferred deliveries once it is in. */
static int
fz_feed(struct fz *f, const char *p, size_t len)
{
	int r = lmtp_session_feed(f->s, p, len);

	while (r == 0 && f->env != NULL && !f->defer_all)
		r = fz_answer(f);
	FZ_CHECK(r == 0 || r == LMTP_CLOSE);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct fz ref = { 0 }, cut = { 0 }, late = { 0 };
	size_t off, n;
	int r;

	/* The reference: one read, every delivery answered at once. */
	fz_session(&ref);
	r = fz_feed(&ref, in, size);
	FZ_CHECK(!lmtp_session_busy(ref.s));
	lmtp_session_free(ref.s);

	/* Small chunks; some deliveries answered after the read. */
	cut.defer_some = true;
	cut.rng = (uint32_t)fz_fnv(0xcbf29ce484222325ULL, in, size) | 1;
	fz_session(&cut);
	for (off = 0, r = 0; off < size && r == 0; off += n) {
		n = 1 + fz_rand(&cut) % 64;
		if (n > size - off)
			n = size - off;
		r = fz_feed(&cut, in + off, n);
	}
	FZ_CHECK(cut.env == NULL);
	FZ_CHECK(cut.hash == ref.hash && cut.out_len == ref.out_len);
	FZ_CHECK(cut.deliveries == ref.deliveries);
	lmtp_session_free(cut.s);

	/* Two reads, deliveries answered only between and after them. */
	late.defer_all = true;
	fz_session(&late);
	off = size / 2;
	r = fz_feed(&late, in, off);
	if (late.env != NULL)
		r = fz_answer(&late);
	if (r == 0)
		r = fz_feed(&late, in + off, size - off);
	FZ_CHECK(r == 0 || r == LMTP_CLOSE);
	/* Sometimes freed busy, sometimes answered first. */
	if (late.env != NULL && (size & 1))
		(void)fz_answer(&late);
	lmtp_session_free(late.s);
	return 0;
}
