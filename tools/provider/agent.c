/* SPDX-License-Identifier: ISC */
/* agent.c -- the provider agent's pure parts: dispatch JSON, backoff, token */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/macro.h"
#include "common/money.h"

#include "agent.h"

/* Big enough for money_format() of any amount and a 3-letter currency. */
#define AGENT_MONEY_BUF 64

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

/* The length of the well-formed UTF-8 sequence at s[0..n), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, surrogates, and beyond U+10FFFF. */
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

json_object *
agent_json_text(const char *s)
{
	static const char replacement[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), bad = 0;
	_cleanup_free_ char *clean = NULL;
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);

		bad += l == 0;
		i += l == 0 ? 1 : l;
	}
	if (bad == 0)
		return json_object_new_string_len((const char *)p, (int)n);
	/* Each bad byte grows to three: n + 2 * bad, no overflow below. */
	if (n > (size_t)INT32_MAX / 3)
		return NULL;
	clean = malloc(n + 2 * bad + 1);
	if (!clean)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);

		if (l == 0) {
			memcpy(clean + o, replacement, 3);
			o += 3;
			i++;
		} else {
			memcpy(clean + o, p + i, l);
			o += l;
			i += l;
		}
	}
	clean[o] = '\0';
	return json_object_new_string_len(clean, (int)o);
}

/* A key and its value; NULL stands for JSON null. */
struct kv {
	const char *key;
	json_object *value;
};

/*
 * A new object of the n pairs, in order, which takes the values over. When
 * ok is false on entry (a value failed) or the object cannot be made, it
 * releases them all and returns NULL.
 */
static json_object *
json_build(const struct kv *kv, size_t n, bool ok)
{
	json_object *o = ok ? json_object_new_object() : NULL;

	for (size_t i = 0; i < n; i++) {
		if (o && json_object_object_add(o, kv[i].key, kv[i].value) == 0)
			continue;
		json_object_put(kv[i].value);
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* A value that must not be NULL: NULL (ENOMEM) clears *ok. */
static json_object *
must(json_object *o, bool *ok)
{
	if (!o)
		*ok = false;
	return o;
}

/* { "minor": N, "currency": "EUR" }; NULL for m NULL, or ENOMEM (!*ok). */
static json_object *
money_json(const Twinroute__Money *m, bool *ok)
{
	bool mok = true;

	if (!m)
		return NULL;
	const struct kv kv[] = {
		{ "minor", must(json_object_new_int64(m->minor), &mok) },
		{ "currency", must(agent_json_text(m->currency), &mok) },
	};
	return must(json_build(kv, ELEMENTSOF(kv), mok), ok);
}

/* money_format() of m as a JSON string; NULL as money_json(). */
static json_object *
money_text_json(const Twinroute__Money *m, bool *ok)
{
	char buf[AGENT_MONEY_BUF];

	if (!m)
		return NULL;
	return must(agent_json_text(money_format(m->minor, m->currency, buf,
	    sizeof(buf))), ok);
}

char *
agent_dispatch_json(const Twinroute__Provider__OrderDispatch *d)
{
	_cleanup_(json_object_putp) json_object *o = NULL;
	bool ok = true;
	const char *s;
	const struct kv kv[] = {
		{ "order_id", must(json_object_new_uint64(d->order_id), &ok) },
		{ "service_id", must(agent_json_text(d->service_id), &ok) },
		{ "service_name", must(agent_json_text(d->service_name), &ok) },
		{ "quantity", must(json_object_new_int64(d->quantity), &ok) },
		{ "unit_price", money_json(d->unit_price, &ok) },
		{ "amount", money_json(d->amount, &ok) },
		{ "amount_text", money_text_json(d->amount, &ok) },
		{ "member_name", must(agent_json_text(d->member_name), &ok) },
		{ "member_email", must(agent_json_text(d->member_email), &ok) },
		{ "note", must(agent_json_text(d->note), &ok) },
		{ "fax_reference", must(agent_json_text(d->fax_reference),
		    &ok) },
		{ "redelivery", must(json_object_new_boolean(d->redelivery),
		    &ok) },
		{ "attempt", must(json_object_new_int64(d->attempt), &ok) },
		{ "confirmed_unix_ms",
		    must(json_object_new_uint64(d->confirmed_unix_ms), &ok) },
	};

	o = json_build(kv, ELEMENTSOF(kv), ok);
	if (!o)
		return NULL;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	return s ? strdup(s) : NULL;
}

uint32_t
agent_backoff_ms(unsigned attempt, uint32_t max_ms, uint32_t rnd)
{
	uint64_t cap = AGENT_BACKOFF_BASE_MS;

	for (unsigned i = 0; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	return (uint32_t)(rnd % (cap + 1));
}

int
agent_parse_seconds(const char *s, uint32_t max_s, uint32_t *ret_ms)
{
	uint64_t whole = 0, frac = 0, ms;
	size_t i = 0, digits = 0;

	if (!s)
		return -EINVAL;
	for (; s[i] >= '0' && s[i] <= '9'; i++, digits++) {
		whole = whole * 10 + (uint64_t)(s[i] - '0');
		if (whole > max_s)
			return -ERANGE;
	}
	if (s[i] == '.') {
		uint64_t scale = 100;
		size_t fdigits = 0;

		for (i++; s[i] >= '0' && s[i] <= '9'; i++, fdigits++) {
			if (fdigits == 3)
				return -EINVAL;
			frac += (uint64_t)(s[i] - '0') * scale;
			scale /= 10;
		}
		if (fdigits == 0)
			return -EINVAL;
		digits += fdigits;
	}
	if (digits == 0 || s[i] != '\0')
		return -EINVAL;
	ms = whole * 1000 + frac;
	if (ms == 0 || ms > (uint64_t)max_s * 1000)
		return -ERANGE;
	*ret_ms = (uint32_t)ms;
	return 0;
}

int
agent_read_token(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	char *nl;
	int fd, r = 0;

	if (!path || !buf || size < 2 || size > AGENT_TOKEN_MAX + 1)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* One byte more than fits tells a token that is too long. */
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0 || memchr(buf + len, '\n', (size_t)n)) {
			len += (size_t)n;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (r == 0) {
		nl = memchr(buf, '\n', len);
		if (nl)
			len = (size_t)(nl - buf);
		if (len > 0 && buf[len - 1] == '\r')
			len--;
		if (len == 0)
			r = -ENODATA;
		else if (len > size - 1)
			r = -E2BIG;
	}
	for (size_t i = 0; r == 0 && i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			r = -EINVAL;
	if (r < 0) {
		OPENSSL_cleanse(buf, size);
		return r;
	}
	buf[len] = '\0';
	return 0;
}
