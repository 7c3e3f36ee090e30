/* SPDX-License-Identifier: ISC */
/* card.c -- card number checks: Luhn, length, brand by IIN range, expiry */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vault/card.h"

/* Expiry years accepted at all (a card lives a few years). */
#define CARD_YEAR_MIN 2000u
#define CARD_YEAR_MAX 2099u

/*
 * Issuer ranges: the first `digits` digits of the number, as a number,
 * within [lo, hi]; lengths lmin..lmax. Longer prefixes first where ranges
 * could meet.
 */
struct card_range {
	const char *brand;
	unsigned digits;
	unsigned lo, hi;
	unsigned lmin, lmax;
};

static const struct card_range card_ranges[] = {
    {"amex", 2, 34, 34, 15, 15},
    {"amex", 2, 37, 37, 15, 15},
    {"diners", 3, 300, 305, 14, 19},
    {"diners", 2, 36, 36, 14, 19},
    {"diners", 2, 38, 38, 14, 19},
    {"jcb", 4, 3528, 3589, 16, 19},
    {"mastercard", 2, 51, 55, 16, 16},
    {"mastercard", 4, 2221, 2720, 16, 16},
    {"discover", 4, 6011, 6011, 16, 19},
    {"discover", 3, 644, 649, 16, 19},
    {"discover", 2, 65, 65, 16, 19},
    {"unionpay", 2, 62, 62, 16, 19},
    {"visa", 1, 4, 4, 13, 19},
};

static bool
card_all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

static const struct card_range *
card_range_of(const char *digits)
{
	size_t len = strlen(digits);

	for (size_t i = 0; i < sizeof(card_ranges) / sizeof(card_ranges[0]);
	     i++) {
		const struct card_range *r = &card_ranges[i];
		unsigned prefix = 0;

		if (len < r->digits || !card_all_digits(digits, r->digits))
			continue;
		for (unsigned k = 0; k < r->digits; k++)
			prefix = prefix * 10 + (unsigned)(digits[k] - '0');
		if (prefix >= r->lo && prefix <= r->hi)
			return r;
	}
	return NULL;
}

/* Visa is 13, 16 or 19 digits; the table's range alone would allow more. */
static bool
card_length_ok(const struct card_range *r, size_t len)
{
	if (len < r->lmin || len > r->lmax)
		return false;
	if (strcmp(r->brand, "visa") == 0)
		return len == 13 || len == 16 || len == 19;
	return true;
}

int
card_normalize_number(const char *text, char ret_number[CARD_NUMBER_MAX + 1],
    const char **ret_why)
{
	char buf[CARD_NUMBER_MAX + 1];
	const char *why = NULL;
	size_t n = 0;
	bool prev_digit = false;
	const char *p;
	const char *end;

	if (!text || !ret_number) {
		why = "number: missing";
		goto fail;
	}
	/* Leading and trailing blanks are forgiven. */
	while (*text == ' ' || *text == '\t')
		text++;
	end = text + strlen(text);
	while (end > text && (end[-1] == ' ' || end[-1] == '\t' ||
				 end[-1] == '\n' || end[-1] == '\r'))
		end--;

	for (p = text; p < end; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n == CARD_NUMBER_MAX) {
				why = "number: too many digits";
				goto fail;
			}
			buf[n++] = *p;
			prev_digit = true;
		} else if (*p == ' ' || *p == '-') {
			/* Only one separator, only between digits. */
			if (!prev_digit || p + 1 >= end || p[1] < '0' ||
			    p[1] > '9') {
				why =
				    "number: spaces and dashes only between digit groups";
				goto fail;
			}
			prev_digit = false;
		} else {
			why = "number: only digits, spaces and dashes";
			goto fail;
		}
	}
	if (n < CARD_NUMBER_MIN) {
		why = "number: too few digits";
		goto fail;
	}
	buf[n] = '\0';
	memcpy(ret_number, buf, n + 1);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
fail:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (ret_why)
		*ret_why = why;
	return -EINVAL;
}

bool
card_luhn_ok(const char *digits)
{
	size_t len;
	unsigned sum = 0;
	bool dbl = false;

	if (!digits)
		return false;
	len = strlen(digits);
	if (len < 2 || !card_all_digits(digits, len))
		return false;
	for (size_t i = len; i-- > 0;) {
		unsigned d = (unsigned)(digits[i] - '0');

		if (dbl) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
		dbl = !dbl;
	}
	return sum % 10 == 0;
}

const char *
card_brand(const char *digits)
{
	const struct card_range *r;

	if (!digits)
		return "unknown";
	r = card_range_of(digits);
	return r ? r->brand : "unknown";
}

/* One to four digits from *p; advances *p. */
static int
card_parse_uint(const char **p, unsigned max_digits, unsigned *ret_val,
    unsigned *ret_digits)
{
	unsigned v = 0, n = 0;

	while (**p >= '0' && **p <= '9') {
		if (++n > max_digits)
			return -EINVAL;
		v = v * 10 + (unsigned)(**p - '0');
		(*p)++;
	}
	if (n == 0)
		return -EINVAL;
	*ret_val = v;
	*ret_digits = n;
	return 0;
}

int
card_parse_expiry(const char *text, unsigned *ret_month, unsigned *ret_year)
{
	const char *p = text;
	unsigned month, year, nm, ny;

	if (!text || !ret_month || !ret_year)
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (card_parse_uint(&p, 2, &month, &nm) < 0)
		return -EINVAL;
	while (*p == ' ')
		p++;
	if (*p != '/')
		return -EINVAL;
	p++;
	while (*p == ' ')
		p++;
	if (card_parse_uint(&p, 4, &year, &ny) < 0)
		return -EINVAL;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p != '\0')
		return -EINVAL;
	if (month < 1 || month > 12)
		return -EINVAL;
	if (ny == 2)
		year += 2000;
	else if (ny != 4)
		return -EINVAL;
	if (year < CARD_YEAR_MIN || year > CARD_YEAR_MAX)
		return -EINVAL;
	*ret_month = month;
	*ret_year = year;
	return 0;
}

bool
card_expired(unsigned month, unsigned year, time_t now)
{
	struct tm tm;
	unsigned cur;

	if (month < 1 || month > 12)
		return true;
	if (!gmtime_r(&now, &tm))
		return true;
	/* Valid through the last day of its month. */
	cur = (unsigned)(tm.tm_year + 1900) * 12 + (unsigned)tm.tm_mon;
	return year * 12 + (month - 1) < cur;
}

/*
 * Well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF) with
 * no control characters (C0, DEL, C1).
 */
static bool
card_holder_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	bool visible = false;

	while (i < len) {
		unsigned c = p[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			if (c != ' ')
				visible = true;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		if (cp >= 0x80 && cp <= 0x9f)
			return false;
		visible = true;
		i += n + 1;
	}
	return visible;
}

int
card_check(const struct card_input *in, time_t now, const char **ret_why)
{
	const struct card_range *r;
	const char *why;
	size_t len;

	if (!in) {
		why = "card: missing";
		goto fail;
	}
	len = strnlen(in->number, sizeof(in->number));
	if (len == sizeof(in->number)) {
		why = "number: too many digits";
		goto fail;
	}
	if (!card_all_digits(in->number, len)) {
		why = "number: only digits";
		goto fail;
	}
	if (len < CARD_NUMBER_MIN) {
		why = "number: too few digits";
		goto fail;
	}
	if (!card_luhn_ok(in->number)) {
		why = "number: fails the Luhn check";
		goto fail;
	}
	r = card_range_of(in->number);
	if (!r) {
		why = "number: unknown card brand";
		goto fail;
	}
	if (!card_length_ok(r, len)) {
		why = "number: wrong length for its brand";
		goto fail;
	}
	if (in->exp_month < 1 || in->exp_month > 12) {
		why = "expiry: month must be 1..12";
		goto fail;
	}
	if (in->exp_year < CARD_YEAR_MIN || in->exp_year > CARD_YEAR_MAX) {
		why = "expiry: year out of range";
		goto fail;
	}
	if (card_expired(in->exp_month, in->exp_year, now)) {
		why = "expiry: the card has expired";
		goto fail;
	}
	len = strnlen(in->holder, sizeof(in->holder));
	if (len == sizeof(in->holder)) {
		why = "holder: too long";
		goto fail;
	}
	if (len == 0) {
		why = "holder: missing";
		goto fail;
	}
	if (!card_holder_ok(in->holder, len)) {
		why = "holder: not printable UTF-8";
		goto fail;
	}
	return 0;
fail:
	if (ret_why)
		*ret_why = why;
	return -EINVAL;
}
