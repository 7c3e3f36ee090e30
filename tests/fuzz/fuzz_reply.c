/* SPDX-License-Identifier: ISC */
/* fuzz_reply.c -- libFuzzer target: confirmation-reply header and recipient */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/reply.h"

#define FUZZ_DOMAIN "example.org"
#define FUZZ_AUTHSERV "mx.example.org"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
token_ok(const char *t)
{
	size_t n = strnlen(t, MAIL_TOKEN_LEN + 1);
	uint8_t raw[MAIL_TOKEN_RAW];
	char again[MAIL_TOKEN_LEN + 1];

	if (n == 0)
		return true;
	if (n != MAIL_TOKEN_LEN ||
	    strspn(t, "abcdefghijklmnopqrstuvwxyz234567") != MAIL_TOKEN_LEN)
		return false;
	/* Canonical: decodes and encodes back to itself. */
	if (mail_token_decode(t, n, raw) != 0)
		return false;
	mail_token_encode(raw, again);
	return strcmp(t, again) == 0;
}

static void
check_reply(const char *msg, size_t len, const char *authserv_id)
{
	struct mail_reply r;
	const char *why = NULL;
	size_t flen;
	int rc;

	memset(&r, 0x5a, sizeof(r));
	rc = mail_parse_reply(msg, len, FUZZ_DOMAIN, authserv_id, &r, &why);
	if (rc != 0) {
		if (rc != -EINVAL || why == NULL || *why == '\0')
			abort();
		return;
	}
	flen = strnlen(r.from, sizeof(r.from));
	if (flen == sizeof(r.from))
		abort();
	if (flen > 0) {
		const char *at = strrchr(r.from, '@');

		if (!at || at == r.from || at[1] == '\0')
			abort();
		char upper[MAIL_ADDR_MAX + 1];

		/* The domain part comes out lowercased; printable ASCII
		 * only (no folding, no control characters). */
		for (const char *c = at + 1; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				abort();
		for (size_t i = 0; i <= flen; i++) {
			char c = r.from[i];

			if (i < flen && (c < ' ' || c > '~'))
				abort();
			upper[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
		}
		if (!mail_addr_equal(r.from, upper))
			abort();
	}
	if (!token_ok(r.token))
		abort();
	if (r.auth != MAIL_AUTH_NONE && r.auth != MAIL_AUTH_PASS &&
	    r.auth != MAIL_AUTH_FAIL)
		abort();
	if (!authserv_id && r.auth != MAIL_AUTH_NONE)
		abort();
}

static void
check_rcpt(const uint8_t *data, size_t size)
{
	char addr[MAIL_ADDR_MAX + 2];
	char token[MAIL_TOKEN_LEN + 1];
	const char *why = NULL;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : size;
	enum mail_rcpt_kind kind;

	/* Longer than a path is cut: that is still an interesting input. */
	if (n > sizeof(addr) - 1)
		n = sizeof(addr) - 1;
	memcpy(addr, data, n);
	addr[n] = '\0';
	memset(token, 0x5a, sizeof(token));
	kind = mail_parse_rcpt(addr, FUZZ_DOMAIN, token, &why);
	if (!token_ok(token))
		abort();
	switch (kind) {
	case MAIL_RCPT_OTHER:
		if (token[0] != '\0')
			abort();
		break;
	case MAIL_RCPT_CONFIRM:
	case MAIL_RCPT_CANCEL:
		if (strnlen(addr, MAIL_ADDR_MAX + 1) > MAIL_ADDR_MAX)
			abort();
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg;

	/* An exact-size copy, so that ASan catches any read past the end. */
	msg = malloc(size ? size : 1);
	if (!msg)
		return 0;
	if (size)
		memcpy(msg, data, size);
	check_reply(msg, size, FUZZ_AUTHSERV);
	check_reply(msg, size, NULL);
	check_rcpt(data, size);
	free(msg);
	return 0;
}
