/* SPDX-License-Identifier: ISC */
/* test_reply.c -- tokens, recipients and confirmation-reply headers */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/reply.h"

/* RFC 4648 base32 of bytes 00..0f, 0123..3210 and ff..ff (lowercased). */
#define T1 "aaaqeayeaudaocajbifqydiob4"
#define T2 "aerukz4jvpg677w4xkmhmvbsca"
#define T3 "77777777777777777777777774"
#define T1_UPPER "AAAQEAYEAUDAOCAJBIFQYDIOB4"
/* T1 with the last character's two unused bits not zero. */
#define T1_BADPAD "aaaqeayeaudaocajbifqydiob5"

#define DOMAIN "example.org"
#define AUTHSERV "mx.example.org"

static int
parse(const char *msg, struct mail_reply *r)
{
	const char *why = NULL;

	memset(r, 0x5a, sizeof(*r));
	return mail_parse_reply(msg, strlen(msg), DOMAIN, AUTHSERV, r, &why);
}

/* Parse a message that must be accepted. */
static struct mail_reply
ok(const char *msg)
{
	struct mail_reply r;

	assert_int_equal(parse(msg, &r), 0);
	return r;
}

static const char *
from_of(const char *field)
{
	static char buf[2048];
	static struct mail_reply r;

	snprintf(buf, sizeof(buf), "%s\r\nSubject: x\r\n\r\nbody\r\n", field);
	r = ok(buf);
	return r.from;
}

/* The auth of fields above a From: field (a whole field, or "" for
 * none). */
static enum mail_auth
auth_from(const char *fields, const char *from)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s%s\r\n", fields, from);
	return ok(buf).auth;
}

/* From user@example.org (the local domain, as for most members). */
static enum mail_auth
auth_of(const char *fields)
{
	return auth_from(fields, "From: Jane <user@example.org>\r\n");
}

/* One field of ours: "Authentication-Results: mx.example.org; " res. */
static enum mail_auth
ar_of(const char *res)
{
	char buf[2048];

	snprintf(buf, sizeof(buf), "Authentication-Results: mx.example.org; "
	    "%s\r\n", res);
	return auth_of(buf);
}

static bool
automatic_of(const char *fields)
{
	char buf[2048];

	snprintf(buf, sizeof(buf), "From: a@b.example\r\n%s\r\n", fields);
	return ok(buf).automatic;
}

static const char *
token_of(const char *fields)
{
	static char buf[4096];
	static struct mail_reply r;

	snprintf(buf, sizeof(buf), "From: a@b.example\r\n%s\r\nbody\r\n",
	    fields);
	r = ok(buf);
	return r.token;
}

/* Tokens */

static void
test_token_encode(void **state)
{
	uint8_t raw[MAIL_TOKEN_RAW];
	char out[MAIL_TOKEN_LEN + 1];
	const uint8_t v2[MAIL_TOKEN_RAW] = { 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32,
		0x10 };

	(void)state;
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)i;
	mail_token_encode(raw, out);
	assert_string_equal(out, T1);
	mail_token_encode(v2, out);
	assert_string_equal(out, T2);
	memset(raw, 0xff, sizeof(raw));
	mail_token_encode(raw, out);
	assert_string_equal(out, T3);
	memset(raw, 0, sizeof(raw));
	mail_token_encode(raw, out);
	assert_string_equal(out, "aaaaaaaaaaaaaaaaaaaaaaaaaa");
}

static void
test_token_round_trip(void **state)
{
	uint8_t raw[MAIL_TOKEN_RAW], back[MAIL_TOKEN_RAW];
	char out[MAIL_TOKEN_LEN + 1];
	uint32_t x = 0x12345678;

	(void)state;
	for (int n = 0; n < 2000; n++) {
		for (size_t i = 0; i < sizeof(raw); i++) {
			x = x * 1103515245u + 12345u;
			raw[i] = (uint8_t)(x >> 16);
		}
		mail_token_encode(raw, out);
		assert_int_equal(strlen(out), MAIL_TOKEN_LEN);
		assert_int_equal(strspn(out, "abcdefghijklmnopqrstuvwxyz234567"),
		    MAIL_TOKEN_LEN);
		assert_int_equal(mail_token_decode(out, MAIL_TOKEN_LEN, back), 0);
		assert_memory_equal(raw, back, sizeof(raw));
	}
}

static void
test_token_decode(void **state)
{
	uint8_t raw[MAIL_TOKEN_RAW], want[MAIL_TOKEN_RAW];

	(void)state;
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)i;
	assert_int_equal(mail_token_decode(T1, MAIL_TOKEN_LEN, raw), 0);
	assert_memory_equal(raw, want, sizeof(raw));
	/* Any case. */
	memset(raw, 0, sizeof(raw));
	assert_int_equal(mail_token_decode(T1_UPPER, MAIL_TOKEN_LEN, raw), 0);
	assert_memory_equal(raw, want, sizeof(raw));
	assert_int_equal(mail_token_decode("aAaQeAyEaUdAoCaJbIfQyDiOb4",
	    MAIL_TOKEN_LEN, raw), 0);
	assert_memory_equal(raw, want, sizeof(raw));
}

static void
test_token_decode_bad(void **state)
{
	uint8_t raw[MAIL_TOKEN_RAW];
	char s[MAIL_TOKEN_LEN + 2];
	const char bad_chars[] = "01890=-_ +/.@\xc3";

	(void)state;
	/* Length. */
	assert_int_equal(mail_token_decode(T1, 25, raw), -EINVAL);
	assert_int_equal(mail_token_decode(T1 "a", 27, raw), -EINVAL);
	assert_int_equal(mail_token_decode("", 0, raw), -EINVAL);
	assert_int_equal(mail_token_decode(NULL, 26, raw), -EINVAL);
	/* Alphabet: each bad character in each position. */
	for (size_t c = 0; c < sizeof(bad_chars) - 1; c++) {
		for (size_t i = 0; i < MAIL_TOKEN_LEN; i++) {
			memcpy(s, T1, sizeof(T1));
			s[i] = bad_chars[c];
			assert_int_equal(mail_token_decode(s, MAIL_TOKEN_LEN,
			    raw), -EINVAL);
		}
	}
	/* Padding bits: only a e i m q u y 4 may end a token. */
	memcpy(s, T1, sizeof(T1));
	for (const char *c = "abcdefghijklmnopqrstuvwxyz234567"; *c; c++) {
		bool zero_low = strchr("aeimquy4", *c) != NULL;

		s[MAIL_TOKEN_LEN - 1] = *c;
		assert_int_equal(mail_token_decode(s, MAIL_TOKEN_LEN, raw),
		    zero_low ? 0 : -EINVAL);
	}
	assert_int_equal(mail_token_decode(T1_BADPAD, MAIL_TOKEN_LEN, raw),
	    -EINVAL);
	assert_int_equal(mail_token_decode("77777777777777777777777777",
	    MAIL_TOKEN_LEN, raw), -EINVAL);
	/* Untouched on failure. */
	memset(raw, 0xa5, sizeof(raw));
	assert_int_equal(mail_token_decode(T1_BADPAD, MAIL_TOKEN_LEN, raw),
	    -EINVAL);
	for (size_t i = 0; i < sizeof(raw); i++)
		assert_int_equal(raw[i], 0xa5);
}

/* Recipients */

static void
test_rcpt_ours(void **state)
{
	char tok[MAIL_TOKEN_LEN + 1];
	const char *why = NULL;

	(void)state;
	assert_int_equal(mail_parse_rcpt("confirm+" T1 "@example.org", DOMAIN,
	    tok, &why), MAIL_RCPT_CONFIRM);
	assert_string_equal(tok, T1);
	assert_int_equal(mail_parse_rcpt("cancel+" T2 "@example.org", DOMAIN,
	    tok, &why), MAIL_RCPT_CANCEL);
	assert_string_equal(tok, T2);
	/* Case-insensitive, token written back in lowercase. */
	assert_int_equal(mail_parse_rcpt("CONFIRM+" T1_UPPER "@Example.ORG",
	    DOMAIN, tok, &why), MAIL_RCPT_CONFIRM);
	assert_string_equal(tok, T1);
	assert_int_equal(mail_parse_rcpt("confirm+" T1 "@example.org",
	    "EXAMPLE.org", tok, &why), MAIL_RCPT_CONFIRM);
	/* Without a token. */
	strcpy(tok, "junk");
	assert_int_equal(mail_parse_rcpt("confirm@example.org", DOMAIN, tok,
	    &why), MAIL_RCPT_CONFIRM);
	assert_string_equal(tok, "");
	assert_int_equal(mail_parse_rcpt("Cancel@example.org", DOMAIN, tok,
	    NULL), MAIL_RCPT_CANCEL);
	assert_string_equal(tok, "");
	assert_null(why);
}

static void
test_rcpt_other(void **state)
{
	char tok[MAIL_TOKEN_LEN + 1];
	const char *why;
	static const char *const others[] = {
		"other@example.org",
		"confirmx@example.org",
		"xconfirm@example.org",
		"confirm+" T1 "@example.com",
		"confirm+" T1 "@sub.example.org",
		"confirm+" T1 "@example.org.evil.test",
		"confirm+" T1 "@",
		("confirm+" T1),
		"@example.org",
		"",
		"\"confirm\"@example.org",
		"confirm@evil.test@example.org",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		why = NULL;
		strcpy(tok, "junk");
		assert_int_equal(mail_parse_rcpt(others[i], DOMAIN, tok, &why),
		    MAIL_RCPT_OTHER);
		assert_string_equal(tok, "");
		assert_non_null(why);
	}
	/* No local domain configured. */
	assert_int_equal(mail_parse_rcpt("confirm@example.org", "", tok, &why),
	    MAIL_RCPT_OTHER);
	assert_int_equal(mail_parse_rcpt("confirm@example.org", NULL, tok,
	    &why), MAIL_RCPT_OTHER);
	assert_int_equal(mail_parse_rcpt(NULL, DOMAIN, tok, NULL),
	    MAIL_RCPT_OTHER);
}

static void
test_rcpt_bad_token(void **state)
{
	char tok[MAIL_TOKEN_LEN + 1], addr[400];
	const char *why;
	static const char *const bad[] = {
		"confirm+@example.org",
		"confirm+" T1 "a@example.org",                 /* 27 */
		"confirm+aaaqeayeaudaocajbifqydiob@example.org", /* 25 */
		"cancel+aaaqeayeaudaocajbifqydio01@example.org", /* alphabet */
		"cancel+" T1_BADPAD "@example.org",
		"confirm+" T1 "+x@example.org",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		strcpy(tok, "junk");
		assert_int_equal(mail_parse_rcpt(bad[i], DOMAIN, tok, &why),
		    MAIL_RCPT_OTHER);
		assert_string_equal(tok, "");
		assert_string_equal(why, "bad token in address");
	}
	/* Longer than an RFC 5321 path. */
	memset(addr, 'a', sizeof(addr));
	memcpy(addr, "confirm+", 8);
	strcpy(addr + 300, "@example.org");
	why = NULL;
	assert_int_equal(mail_parse_rcpt(addr, DOMAIN, tok, &why),
	    MAIL_RCPT_OTHER);
	assert_string_equal(why, "address too long");
}

/* From: */

static void
test_from_forms(void **state)
{
	(void)state;
	assert_string_equal(from_of("From: Jane Doe <jane@example.net>"),
	    "jane@example.net");
	assert_string_equal(from_of("From: \"Doe, Jane\" <jane@example.net>"),
	    "jane@example.net");
	assert_string_equal(from_of("From: jane@example.net (Jane Doe)"),
	    "jane@example.net");
	assert_string_equal(from_of("From: <jane@example.net>"),
	    "jane@example.net");
	assert_string_equal(from_of("From: jane@example.net"),
	    "jane@example.net");
	assert_string_equal(from_of("From:jane@example.net"),
	    "jane@example.net");
	/* Comments anywhere CFWS may go, nested. */
	assert_string_equal(from_of("From: (x (y) z) Jane <(c) jane@example.net"
	    " (d)> (e)"), "jane@example.net");
	/* Obsolete '.' in a display name, encoded words, 8-bit names. */
	assert_string_equal(from_of("From: John Q. Public <jqp@example.net>"),
	    "jqp@example.net");
	assert_string_equal(from_of("From: =?UTF-8?Q?Ren=C3=A9?= "
	    "<rene@example.net>"), "rene@example.net");
	assert_string_equal(from_of("From: Ren\xc3\xa9 <rene@example.net>"),
	    "rene@example.net");
	/* A display name that looks like an address. */
	assert_string_equal(from_of("From: \"a@evil.test\" <jane@example.net>"),
	    "jane@example.net");
	/* Quoted local part is kept as written. */
	assert_string_equal(from_of("From: \"jane doe\"@example.net"),
	    "\"jane doe\"@example.net");
	/* Obsolete white space before the colon. */
	assert_string_equal(from_of("From : jane@example.net"),
	    "jane@example.net");
}

static void
test_from_case(void **state)
{
	const char *f;

	(void)state;
	/* Domain lowercased, local part kept. */
	assert_string_equal(from_of("From: Jane <Jane.Doe@Example.NET>"),
	    "Jane.Doe@example.net");
	assert_string_equal(from_of("FROM: JANE@EXAMPLE.NET"),
	    "JANE@example.net");
	f = from_of("from: Jane.Doe@EXAMPLE.net");
	assert_true(mail_addr_equal(f, "jane.doe@example.net"));
	assert_true(mail_addr_equal(f, "JANE.DOE@EXAMPLE.NET"));
	assert_false(mail_addr_equal(f, "jane.doe@example.ne"));
	assert_false(mail_addr_equal(f, "jane.doe@example.nett"));
	assert_false(mail_addr_equal(f, "jane.dou@example.net"));
	assert_false(mail_addr_equal(f, NULL));
	assert_false(mail_addr_equal(NULL, NULL));
	assert_true(mail_addr_equal("", ""));
	/* ASCII only: no folding of 8-bit bytes. */
	assert_false(mail_addr_equal("\xc3\xa9@x", "\xc3\x89@x"));
}

static void
test_from_refused(void **state)
{
	char field[400];
	static const char *const refused[] = {
		"From: a@example.net, b@example.net",
		"From: Jane <a@example.net>, Joe <b@example.net>",
		"From: Doe, Jane <jane@example.net>",
		"From: a@example.net,",
		"From: Team: a@example.net, b@example.net;",
		"From: Team: a@example.net;",
		"From: undisclosed-recipients:;",
		"From:",
		"From:   ",
		"From: Jane Doe",
		"From: jane",
		"From: jane@",
		"From: @example.net",
		"From: jane@example..net",
		"From: .jane@example.net",
		"From: jane.@example.net",
		"From: jane@example.net.",
		"From: <jane@example.net",
		"From: Jane <jane@example.net> <joe@example.net>",
		"From: jane@example.net <joe@example.net>",
		"From: <@route.example:jane@example.net>",
		"From: jane@[192.0.2.1]",
		"From: jane@example.net (unterminated",
		"From: jane@example.net )",
		"From: <>",
		"From: jane@exa\xc3\xa9mple.net",
		"From: \"jane\xc3\xa9\"@example.net",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *f = from_of(refused[i]);

		if (*f)
			fail_msg("%s: got \"%s\"", refused[i], f);
	}
	/* 255 characters. */
	memset(field, 'a', sizeof(field));
	memcpy(field, "From: ", 6);
	strcpy(field + 6 + 255 - 12, "@example.net");
	assert_string_equal(from_of(field), "");
	/* 254 characters is the limit. */
	strcpy(field + 6 + 254 - 12, "@example.net");
	assert_int_equal(strlen(from_of(field)), 254);
}

static void
test_from_count(void **state)
{
	struct mail_reply r;

	(void)state;
	/* Two From fields: ambiguous. */
	r = ok("From: a@example.net\r\nFrom: a@example.net\r\n\r\n");
	assert_string_equal(r.from, "");
	/* None. */
	r = ok("Subject: hi\r\n\r\n");
	assert_string_equal(r.from, "");
	/* Folded. */
	r = ok("From: \"Jane\r\n Doe\"\r\n\t<jane@Example.net>\r\n\r\n");
	assert_string_equal(r.from, "jane@example.net");
	/* From in the body does not count. */
	r = ok("Subject: hi\r\n\r\nFrom: a@example.net\r\n");
	assert_string_equal(r.from, "");
}

/* Header framing and bounds */

static void
test_header_ends(void **state)
{
	struct mail_reply r;

	(void)state;
	/* Bare LF like CRLF. */
	r = ok("From: a@example.net\nPrecedence: bulk\n\nbody\n");
	assert_string_equal(r.from, "a@example.net");
	assert_true(r.automatic);
	/* No empty line: all header. */
	r = ok("From: a@example.net\r\nPrecedence: bulk");
	assert_string_equal(r.from, "a@example.net");
	assert_true(r.automatic);
	/* Nothing after the empty line is read. */
	r = ok("From: a@example.net\r\n\r\nPrecedence: bulk\r\n"
	    "In-Reply-To: <c-" T1 "@example.org>\r\n");
	assert_false(r.automatic);
	assert_string_equal(r.token, "");
	/* A line without a colon ends the header. */
	r = ok("From: a@example.net\r\nthis is body\r\nPrecedence: bulk\r\n");
	assert_string_equal(r.from, "a@example.net");
	assert_false(r.automatic);
	r = ok("From: a@example.net\r\nbad name: x\r\nPrecedence: bulk\r\n");
	assert_false(r.automatic);
	/* A white-space-only line is a continuation, not the end. */
	r = ok("From: a@example.net\r\n \r\nPrecedence: bulk\r\n\r\n");
	assert_string_equal(r.from, "a@example.net");
	assert_true(r.automatic);
	/* Field names compare case-insensitively. */
	r = ok("PRECEDENCE: bulk\r\n\r\n");
	assert_true(r.automatic);
	/* The value starts right after the colon. */
	r = ok("Precedence:bulk\r\n\r\n");
	assert_true(r.automatic);
	/* Defaults. */
	r = ok("X-Whatever: 1\r\n\r\n");
	assert_string_equal(r.from, "");
	assert_false(r.automatic);
	assert_int_equal(r.auth, MAIL_AUTH_NONE);
	assert_string_equal(r.token, "");
}

static void
test_no_header(void **state)
{
	struct mail_reply r, keep;
	const char *why;
	static const char *const msgs[] = {
		"",
		"\r\n",
		"\n",
		"\r\nFrom: a@example.net\r\n",
		"no colon here\r\nFrom: a@example.net\r\n",
		" From: a@example.net\r\n",
		": empty name\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		why = NULL;
		memset(&r, 0x5a, sizeof(r));
		keep = r;
		assert_int_equal(mail_parse_reply(msgs[i], strlen(msgs[i]),
		    DOMAIN, AUTHSERV, &r, &why), -EINVAL);
		assert_string_equal(why, "no header");
		assert_memory_equal(&r, &keep, sizeof(r));
	}
	assert_int_equal(mail_parse_reply(NULL, 0, DOMAIN, AUTHSERV, &r, NULL),
	    -EINVAL);
}

/* A message of header lines of the given content length. */
static char *
make_lines(size_t line_len, size_t n_lines, const char *eol, size_t *ret_len)
{
	size_t el = strlen(eol), len = n_lines * (line_len + el) + el;
	char *m = malloc(len + 1), *p = m;

	assert_non_null(m);
	for (size_t i = 0; i < n_lines; i++) {
		memset(p, 'x', line_len);
		memcpy(p, "X-Pad:", 6);
		p += line_len;
		memcpy(p, eol, el);
		p += el;
	}
	memcpy(p, eol, el);
	m[len] = '\0';
	*ret_len = len;
	return m;
}

static void
test_line_bound(void **state)
{
	struct mail_reply r;
	const char *why;
	size_t len;
	char *m;

	(void)state;
	for (int crlf = 0; crlf < 2; crlf++) {
		const char *eol = crlf ? "\r\n" : "\n";

		m = make_lines(998, 3, eol, &len);
		assert_int_equal(mail_parse_reply(m, len, DOMAIN, AUTHSERV,
		    &r, &why), 0);
		free(m);
		m = make_lines(999, 3, eol, &len);
		why = NULL;
		assert_int_equal(mail_parse_reply(m, len, DOMAIN, AUTHSERV,
		    &r, &why), -EINVAL);
		assert_string_equal(why, "header line too long");
		free(m);
	}
	/* The last line, without a line end. */
	m = make_lines(999, 1, "", &len);
	assert_int_equal(mail_parse_reply(m, len, DOMAIN, AUTHSERV, &r, &why),
	    -EINVAL);
	assert_string_equal(why, "header line too long");
	assert_int_equal(mail_parse_reply(m, 998, DOMAIN, AUTHSERV, &r, &why),
	    0);
	free(m);
	/* A long line in the body is not looked at. */
	m = make_lines(5000, 1, "\r\n", &len);
	memcpy(m, "X-A: 1\r\n\r\n", 10);
	assert_int_equal(mail_parse_reply(m, len, DOMAIN, AUTHSERV, &r, &why),
	    0);
	free(m);
}

static void
test_header_bound(void **state)
{
	struct mail_reply r;
	const char *why;
	size_t len;
	char *m;

	(void)state;
	/* 65 lines of 998 + CRLF, then one line topping the header up to
	 * exactly MAIL_REPLY_HEADER_MAX bytes. */
	{
		size_t full = MAIL_REPLY_HEADER_MAX;
		size_t n = full / 1000, rest = full - n * 1000;
		char *buf = malloc(full + 64);

		assert_non_null(buf);
		m = make_lines(998, n, "\r\n", &len);
		memcpy(buf, m, n * 1000);
		free(m);
		/* One line of rest bytes: content rest - 2, then CRLF. */
		memset(buf + n * 1000, 'y', rest - 2);
		memcpy(buf + n * 1000, "X-Last:", 7);
		memcpy(buf + full - 2, "\r\n\r\nbody", 8);
		assert_int_equal(mail_parse_reply(buf, full + 6, DOMAIN,
		    AUTHSERV, &r, &why), 0);
		/* Without the empty line: all header, still within. */
		assert_int_equal(mail_parse_reply(buf, full, DOMAIN, AUTHSERV,
		    &r, &why), 0);
		/* One byte more. */
		memcpy(buf + full - 2, "y\r\n\r\n", 5);
		why = NULL;
		assert_int_equal(mail_parse_reply(buf, full + 3, DOMAIN,
		    AUTHSERV, &r, &why), -EINVAL);
		assert_string_equal(why, "header too large");
		free(buf);
	}
	/* Many short lines. */
	m = make_lines(10, 10000, "\n", &len);
	why = NULL;
	assert_int_equal(mail_parse_reply(m, len, DOMAIN, AUTHSERV, &r, &why),
	    -EINVAL);
	assert_string_equal(why, "header too large");
	free(m);
}

static void
test_nul(void **state)
{
	struct mail_reply r;
	const char *why;
	const char hdr[] = "From: a@example.net\r\nSubject: a\0b\r\n\r\nbody";
	const char body[] = "From: a@example.net\r\n\r\nbo\0dy\r\n";

	(void)state;
	why = NULL;
	assert_int_equal(mail_parse_reply(hdr, sizeof(hdr) - 1, DOMAIN,
	    AUTHSERV, &r, &why), -EINVAL);
	assert_string_equal(why, "NUL in header");
	assert_int_equal(mail_parse_reply(body, sizeof(body) - 1, DOMAIN,
	    AUTHSERV, &r, &why), 0);
	assert_string_equal(r.from, "a@example.net");
}

/* Auto-Submitted, Precedence */

static void
test_automatic(void **state)
{
	(void)state;
	assert_false(automatic_of(""));
	assert_false(automatic_of("Auto-Submitted: no\r\n"));
	assert_false(automatic_of("Auto-Submitted: No (a person wrote it)\r\n"));
	assert_false(automatic_of("Auto-Submitted: (x) NO ; foo=bar\r\n"));
	assert_false(automatic_of("Auto-Submitted:\r\n no\r\n"));
	assert_true(automatic_of("Auto-Submitted: auto-replied\r\n"));
	assert_true(automatic_of("Auto-Submitted: Auto-Generated\r\n"));
	assert_true(automatic_of("auto-submitted: auto-notified; owner-email="
	    "\"a@b\"\r\n"));
	assert_true(automatic_of("Auto-Submitted: no-way\r\n"));
	assert_true(automatic_of("Auto-Submitted: no x\r\n"));
	assert_true(automatic_of("Auto-Submitted:\r\n"));
	assert_true(automatic_of("Auto-Submitted: (no)\r\n"));
	assert_true(automatic_of("Auto-Submitted: no\r\n"
	    "Auto-Submitted: auto-replied\r\n"));
	assert_true(automatic_of("Precedence: bulk\r\n"));
	assert_true(automatic_of("Precedence: JUNK\r\n"));
	assert_true(automatic_of("Precedence: List (mailing list)\r\n"));
	assert_false(automatic_of("Precedence: first-class\r\n"));
	assert_false(automatic_of("Precedence: bulky\r\n"));
	assert_false(automatic_of("Precedence: (bulk)\r\n"));
	assert_false(automatic_of("X-Precedence: bulk\r\n"));
}

/* Authentication-Results */

static void
test_auth_basic(void **state)
{
	(void)state;
	assert_int_equal(auth_of(""), MAIL_AUTH_NONE);
	assert_int_equal(ar_of("dkim=pass header.d=example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=user@example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dmarc=pass header.from=example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dkim=fail header.d=example.org;"
	    " spf=softfail smtp.mailfrom=example.org;"
	    " dmarc=fail header.from=example.org"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("none"), MAIL_AUTH_FAIL);
	assert_int_equal(auth_of("Authentication-Results: mx.example.org\r\n"),
	    MAIL_AUTH_FAIL);
	/* Second resinfo. */
	assert_int_equal(ar_of("spf=fail smtp.mailfrom=user@example.org;"
	    " dkim=pass header.i=@example.org"), MAIL_AUTH_PASS);
	/* Case, version, CFWS, method version. */
	assert_int_equal(auth_of("authentication-results: MX.Example.ORG;"
	    " DKIM=PASS HEADER.D=EXAMPLE.ORG\r\n"), MAIL_AUTH_PASS);
	assert_int_equal(auth_of("Authentication-Results: mx.example.org 1;"
	    " dkim=pass header.d=example.org\r\n"), MAIL_AUTH_PASS);
	assert_int_equal(auth_of("Authentication-Results: (c) mx.example.org"
	    " (c) 1 (c) ; (c) dkim (c) = (c) pass (c) header (c) . (c) d (c)"
	    " = (c) example.org (c)\r\n"), MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dkim/1=pass header.d=example.org"),
	    MAIL_AUTH_PASS);
	/* Folded. */
	assert_int_equal(auth_of("Authentication-Results: mx.example.org;\r\n"
	    "\tdkim=fail;\r\n\tspf=pass\r\n\tsmtp.mailfrom=user@example.org\r\n"),
	    MAIL_AUTH_PASS);
}

static void
test_auth_dkim_aligned(void **state)
{
	(void)state;
	assert_int_equal(ar_of("dkim=pass header.d=example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dkim=pass header.d=Example.ORG"),
	    MAIL_AUTH_PASS);
	/* Relaxed: a subdomain either way. */
	assert_int_equal(ar_of("dkim=pass header.d=mail.example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(auth_from("Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=example.org\r\n",
	    "From: jane@eu.mail.example.org\r\n"), MAIL_AUTH_PASS);
	/* Not aligned. */
	assert_int_equal(ar_of("dkim=pass header.d=evil.example"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=notexample.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=example.org.evil.example"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=example.or"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=xample.org"),
	    MAIL_AUTH_FAIL);
	/* A bare top-level domain aligns with nothing below it. */
	assert_int_equal(ar_of("dkim=pass header.d=org"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=x@org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(auth_from("Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=example.org\r\n",
	    "From: jane@notexample.org\r\n"), MAIL_AUTH_FAIL);
	/* Not domain names. */
	assert_int_equal(ar_of("dkim=pass header.d=.example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=x..example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=example.org."),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=@example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=x@example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=\"\""), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=\"exa mple.org\""),
	    MAIL_AUTH_FAIL);
	/* header.i when there is no header.d: its domain part. */
	assert_int_equal(ar_of("dkim=pass header.i=@example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dkim=pass header.i=user@mail.example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dkim=pass header.i=@evil.example"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.i=example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.i=example.org@"),
	    MAIL_AUTH_FAIL);
	/* header.d decides when present, wherever it stands. */
	assert_int_equal(ar_of("dkim=pass header.i=@example.org"
	    " header.d=evil.example"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=example.org"
	    " header.i=@evil.example"), MAIL_AUTH_PASS);
	/* Given twice, both must align. */
	assert_int_equal(ar_of("dkim=pass header.d=example.org"
	    " header.d=evil.example"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=evil.example"
	    " header.d=example.org"), MAIL_AUTH_FAIL);
	/* Another ptype or property is not header.d. */
	assert_int_equal(ar_of("dkim=pass smtp.d=example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.dd=example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.s=example.org"
	    " header.b=example.org"), MAIL_AUTH_FAIL);
	/* Only the properties of its own resinfo. */
	assert_int_equal(ar_of("dkim=pass header.d=evil.example;"
	    " dkim=fail header.d=example.org"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass; dkim=fail header.d=example.org"),
	    MAIL_AUTH_FAIL);
	/* Two signatures, one of them aligned. */
	assert_int_equal(ar_of("dkim=pass header.d=evil.example;"
	    " dkim=pass header.d=example.org"), MAIL_AUTH_PASS);
}

static void
test_auth_spf_aligned(void **state)
{
	(void)state;
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=user@example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=bounce@mail.Example.Org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=x@evil.example"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=evil.example"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=x@notexample.org"),
	    MAIL_AUTH_FAIL);
	/* The domain is after the last '@'. */
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=\"a@example.org\""
	    "@evil.example"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=\"a@evil.example\""
	    "@example.org"), MAIL_AUTH_PASS);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=user@"),
	    MAIL_AUTH_FAIL);
	/* HELO identity, or SPF properties of another method, are not
	 * MAIL FROM. */
	assert_int_equal(ar_of("spf=pass smtp.helo=example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("spf=pass smtp.rcptto=user@example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("spf=pass header.d=example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass smtp.mailfrom=user@example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("spf=fail smtp.mailfrom=user@example.org"),
	    MAIL_AUTH_FAIL);
}

static void
test_auth_dmarc(void **state)
{
	(void)state;
	assert_int_equal(ar_of("dmarc=pass header.from=example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dmarc=pass (p=none dis=none)"
	    " header.from=EXAMPLE.org"), MAIL_AUTH_PASS);
	/* Without header.from, the server's word. */
	assert_int_equal(ar_of("dmarc=pass"), MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dmarc=pass action=none"
	    " header.from=example.org"), MAIL_AUTH_PASS);
	/* header.from must be equal: no relaxed match here. */
	assert_int_equal(ar_of("dmarc=pass header.from=evil.example"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dmarc=pass header.from=mail.example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dmarc=pass header.from=org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dmarc=pass header.from=user@example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dmarc=pass header.from=example.org"
	    " header.from=evil.example"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dmarc=fail header.from=example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dmarc=bestguesspass header.from=example.org"),
	    MAIL_AUTH_FAIL);
}

static void
test_auth_no_property(void **state)
{
	(void)state;
	assert_int_equal(ar_of("dkim=pass"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("spf=pass"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass; spf=pass"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass (example.org); spf=pass"
	    " (user@example.org)"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass reason=\"header.d=example.org\""),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d="), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=;"), MAIL_AUTH_FAIL);
}

static void
test_auth_property_syntax(void **state)
{
	char buf[600];

	(void)state;
	/* Quoted values, with quoted pairs. */
	assert_int_equal(ar_of("dkim=pass header.d=\"example.org\""),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=\"user@example.org\""),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("spf=pass smtp.mailfrom=\"jane doe\"@example.org"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dkim=pass header.d=\"ex\\ample.org\""),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dmarc=pass header.from=\"evil.example\""),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=\"evil.example\";"
	    " x=\"; dkim=pass header.d=example.org\""), MAIL_AUTH_FAIL);
	/* Comments between tokens and around values. */
	assert_int_equal(ar_of("dkim=pass (good signature) header.d=(x)"
	    "example.org(y) header.s=sel"), MAIL_AUTH_PASS);
	assert_int_equal(ar_of("spf=pass (sender ok; really) smtp"
	    " (a) . (b) mailfrom (c) = (d) user@example.org (e)"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("dkim=pass header.d=evil.example"
	    " (header.d=example.org)"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass (header.d=example.org)"),
	    MAIL_AUTH_FAIL);
	/* Reason, other properties, values that are not RFC 2045 tokens. */
	assert_int_equal(ar_of("dkim=pass reason=\"good; fine\""
	    " header.i=@example.org header.s=s1 header.a=rsa-sha256"
	    " header.b=AbC/d+Ef"), MAIL_AUTH_PASS);
	/* A resinfo whose properties cannot be read does not count. */
	assert_int_equal(ar_of("dkim=pass header.d=example.org garbage"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=example.org header."),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=example.org .d=x"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=\"example.org"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=pass header.d=example.org (open"),
	    MAIL_AUTH_FAIL);
	/* ... but the next one still does. */
	assert_int_equal(ar_of("dkim=pass header.d=example.org garbage;"
	    " spf=pass smtp.mailfrom=user@example.org"), MAIL_AUTH_PASS);
	/* A value too long to be an address. */
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "spf=pass smtp.mailfrom=");
	memset(buf + strlen(buf), 'a', 300);
	strcat(buf, "@example.org");
	assert_int_equal(ar_of(buf), MAIL_AUTH_FAIL);
	/* A label of 64 characters is not a domain name; 63 is. */
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "dkim=pass header.d=");
	memset(buf + strlen(buf), 'a', 64);
	strcat(buf, ".example.org");
	assert_int_equal(ar_of(buf), MAIL_AUTH_FAIL);
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "dkim=pass header.d=");
	memset(buf + strlen(buf), 'a', 63);
	strcat(buf, ".example.org");
	assert_int_equal(ar_of(buf), MAIL_AUTH_PASS);
}

static void
test_auth_from(void **state)
{
	const char *ar = "Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=example.org; spf=pass"
	    " smtp.mailfrom=user@example.org; dmarc=pass\r\n";

	(void)state;
	assert_int_equal(auth_from(ar, "From: user@example.org\r\n"),
	    MAIL_AUTH_PASS);
	/* No From, two From, an ambiguous From: never a pass. */
	assert_int_equal(auth_from(ar, ""), MAIL_AUTH_FAIL);
	assert_int_equal(auth_from(ar, "From: user@example.org\r\n"
	    "From: user@example.org\r\n"), MAIL_AUTH_FAIL);
	assert_int_equal(auth_from(ar, "From: user@example.org,"
	    " other@example.org\r\n"), MAIL_AUTH_FAIL);
	assert_int_equal(auth_from(ar, "From: user@example.org (open\r\n"),
	    MAIL_AUTH_FAIL);
	/* Another domain. */
	assert_int_equal(auth_from(ar, "From: user@evil.example\r\n"),
	    MAIL_AUTH_PASS);   /* the bare dmarc=pass: the server's word */
	assert_int_equal(auth_from("Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=example.org; spf=pass"
	    " smtp.mailfrom=user@example.org\r\n",
	    "From: user@evil.example\r\n"), MAIL_AUTH_FAIL);
	/* From: above the field counts too. */
	assert_int_equal(auth_from("From: user@example.org\r\n"
	    "Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=example.org\r\n", ""), MAIL_AUTH_PASS);
	assert_int_equal(auth_from("From: user@evil.example\r\n"
	    "Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=example.org\r\n", ""), MAIL_AUTH_FAIL);
	/* The local part plays no part; a quoted one may hold '@'. */
	assert_int_equal(auth_from("Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=example.org\r\n",
	    "From: \"x@evil.example\"@example.org\r\n"), MAIL_AUTH_PASS);
	assert_int_equal(auth_from("Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=evil.example\r\n",
	    "From: \"x@evil.example\"@example.org\r\n"), MAIL_AUTH_FAIL);
}

static void
test_auth_not_a_pass(void **state)
{
	(void)state;
	/* In a comment, nested or not. */
	assert_int_equal(ar_of("dkim=fail header.d=example.org"
	    " (dkim=pass header.d=example.org) spf=none"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=fail (a (b; dkim=pass header.d="
	    "example.org) c; spf=pass smtp.mailfrom=example.org)"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(auth_of("Authentication-Results: mx.example.org"
	    " (; dkim=pass header.d=example.org); dkim=fail\r\n"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=fail (see; dkim=pass header.d=example.org"
	    " or; dmarc=pass too)"), MAIL_AUTH_FAIL);
	/* As a property or reason value. */
	assert_int_equal(ar_of("dkim=fail header.d=pass header.b=dkim=pass"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=fail reason=\"x; dmarc=pass\""),
	    MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=fail reason=x;dmarc=pass"),
	    MAIL_AUTH_PASS);
	assert_int_equal(ar_of("header.d=pass"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("header.d=example.org"), MAIL_AUTH_FAIL);
	/* Other methods, look-alike results. */
	assert_int_equal(ar_of("arc=pass header.d=example.org;"
	    " x-dkim=pass header.d=example.org; dkim2=pass header.d="
	    "example.org; dmarc2=pass; x-dmarc=pass"), MAIL_AUTH_FAIL);
	assert_int_equal(ar_of("dkim=passed header.d=example.org;"
	    " spf=pass.x smtp.mailfrom=example.org;"
	    " spf=pass-ish smtp.mailfrom=example.org; dmarc=pass/x"),
	    MAIL_AUTH_FAIL);
	/* No ';' before the method. */
	assert_int_equal(auth_of("Authentication-Results: mx.example.org"
	    " dkim=pass header.d=example.org\r\n"), MAIL_AUTH_FAIL);
	/* ARC's own field is not ours. */
	assert_int_equal(auth_of("ARC-Authentication-Results: i=1;"
	    " mx.example.org; dkim=pass header.d=example.org\r\n"),
	    MAIL_AUTH_NONE);
}

#define AR_PASS "dkim=pass header.d=example.org"

static void
test_auth_topmost(void **state)
{
	(void)state;
	/* A forged pass below our own fail. */
	assert_int_equal(auth_of(
	    "Authentication-Results: mx.example.org; dkim=fail; spf=fail\r\n"
	    "Authentication-Results: mx.example.org; " AR_PASS "\r\n"),
	    MAIL_AUTH_FAIL);
	/* Our unaligned pass above a forged aligned one. */
	assert_int_equal(auth_of(
	    "Authentication-Results: mx.example.org; dkim=pass"
	    " header.d=evil.example\r\n"
	    "Authentication-Results: mx.example.org; " AR_PASS "\r\n"),
	    MAIL_AUTH_FAIL);
	/* Our pass above a forged fail. */
	assert_int_equal(auth_of(
	    "Authentication-Results: mx.example.org; spf=pass"
	    " smtp.mailfrom=user@example.org\r\n"
	    "Authentication-Results: mx.example.org; dkim=fail\r\n"),
	    MAIL_AUTH_PASS);
	/* Someone else's pass above ours. */
	assert_int_equal(auth_of(
	    "Authentication-Results: relay.example.com; " AR_PASS "\r\n"
	    "Authentication-Results: mx.example.org; dkim=fail\r\n"),
	    MAIL_AUTH_FAIL);
	/* Others only. */
	assert_int_equal(auth_of(
	    "Authentication-Results: relay.example.com; " AR_PASS "\r\n"
	    "Authentication-Results: mx.example.org.evil.test; " AR_PASS "\r\n"
	    "Authentication-Results: mx.example; " AR_PASS "\r\n"
	    "Authentication-Results: \"mx.example.org\"; " AR_PASS "\r\n"
	    "Authentication-Results: " AR_PASS "\r\n"), MAIL_AUTH_NONE);
	/* Our id glued to garbage is a malformed field of ours: FAIL. */
	assert_int_equal(auth_of(
	    "Authentication-Results: mx.example.org/x; " AR_PASS "\r\n"
	    "Authentication-Results: mx.example.org; " AR_PASS "\r\n"),
	    MAIL_AUTH_FAIL);
	assert_int_equal(auth_of(
	    "Authentication-Results: mx.example.org (open; " AR_PASS "\r\n"
	    "Authentication-Results: mx.example.org; " AR_PASS "\r\n"),
	    MAIL_AUTH_FAIL);
}

static void
test_auth_untrusted(void **state)
{
	struct mail_reply r;
	const char msg[] = "From: user@example.org\r\n"
	    "Authentication-Results: mx.example.org; " AR_PASS "\r\n\r\n";

	(void)state;
	assert_int_equal(mail_parse_reply(msg, strlen(msg), DOMAIN, NULL, &r,
	    NULL), 0);
	assert_int_equal(r.auth, MAIL_AUTH_NONE);
	assert_int_equal(mail_parse_reply(msg, strlen(msg), DOMAIN, "", &r,
	    NULL), 0);
	assert_int_equal(r.auth, MAIL_AUTH_NONE);
	assert_int_equal(mail_parse_reply(msg, strlen(msg), DOMAIN,
	    "mx.example.org", &r, NULL), 0);
	assert_int_equal(r.auth, MAIL_AUTH_PASS);
}

/* Tokens in a reply */

static void
test_token_in_reply_to(void **state)
{
	(void)state;
	assert_string_equal(token_of("In-Reply-To: <c-" T1 "@example.org>\r\n"),
	    T1);
	/* The domain and the token in any case; token written lowercase. */
	assert_string_equal(token_of("In-Reply-To: <C-" T1_UPPER
	    "@EXAMPLE.org>\r\n"), T1);
	/* First valid one. */
	assert_string_equal(token_of("In-Reply-To: <x@example.org>"
	    " <c-" T1_BADPAD "@example.org> <c-" T2 "@example.org>"
	    " <c-" T1 "@example.org>\r\n"), T2);
	/* Wins over References and Subject, wherever it stands. */
	assert_string_equal(token_of(
	    "Subject: Re: order (ref c-" T3 ")\r\n"
	    "References: <c-" T1 "@example.org>\r\n"
	    "In-Reply-To: <c-" T2 "@example.org>\r\n"), T2);
	/* Invalid ones fall through to References. */
	assert_string_equal(token_of(
	    "In-Reply-To: <c-" T2 "@example.com>\r\n"
	    "References: <c-" T1 "@example.org>\r\n"), T1);
}

static void
test_token_references(void **state)
{
	(void)state;
	/* The last of ours is the direct parent. */
	assert_string_equal(token_of("References: <c-" T1 "@example.org>"
	    " <c-" T2 "@example.org> <other@example.net>\r\n"), T2);
	/* Folded over lines. */
	assert_string_equal(token_of("References: <a@example.net>\r\n"
	    " <c-" T1 "@example.org>\r\n\t<c-" T3 "@example.org>\r\n"
	    " <b@example.net>\r\n"), T3);
	/* Comments and quoted strings are not msg-ids. */
	assert_string_equal(token_of("References: <c-" T1 "@example.org>"
	    " (<c-" T2 "@example.org>) \"<c-" T3 "@example.org>\"\r\n"), T1);
}

static void
test_token_msgid_bad(void **state)
{
	static const char *const bad[] = {
		"In-Reply-To: <c-" T1 "@example.org.evil.test>\r\n",
		"In-Reply-To: <c-" T1 "@sub.example.org>\r\n",
		"In-Reply-To: <c-" T1 "@>\r\n",
		"In-Reply-To: <c-" T1 ">\r\n",
		"In-Reply-To: <x-" T1 "@example.org>\r\n",
		"In-Reply-To: <c" T1 "@example.org>\r\n",
		"In-Reply-To: <c-" T1 "a@example.org>\r\n",
		"In-Reply-To: <c-aaaqeayeaudaocajbifqydiob@example.org>\r\n",
		"In-Reply-To: <c-" T1_BADPAD "@example.org>\r\n",
		"In-Reply-To: <c-aaaqeayeaudaocajbifqydio01@example.org>\r\n",
		"In-Reply-To: < c-" T1 "@example.org>\r\n",
		"In-Reply-To: <c-" T1 "@example.org\r\n",
		"In-Reply-To: c-" T1 "@example.org\r\n",
		"References: <c-" T1 "@example.org.>\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *t = token_of(bad[i]);

		if (*t)
			fail_msg("%s: got \"%s\"", bad[i], t);
	}
}

static void
test_token_no_domain(void **state)
{
	struct mail_reply r;
	const char msg[] = "In-Reply-To: <c-" T1 "@example.org>\r\n"
	    "Subject: Re: (ref c-" T2 ")\r\n\r\n";

	(void)state;
	assert_int_equal(mail_parse_reply(msg, strlen(msg), NULL, AUTHSERV, &r,
	    NULL), 0);
	assert_string_equal(r.token, T2);
	assert_int_equal(mail_parse_reply(msg, strlen(msg), "", AUTHSERV, &r,
	    NULL), 0);
	assert_string_equal(r.token, T2);
	assert_int_equal(mail_parse_reply(msg, strlen(msg), "Example.Org",
	    AUTHSERV, &r, NULL), 0);
	assert_string_equal(r.token, T1);
}

static void
test_token_subject(void **state)
{
	(void)state;
	assert_string_equal(token_of("Subject: Re: Confirm order 42 (ref c-" T1
	    ")\r\n"), T1);
	assert_string_equal(token_of("Subject: c-" T1 "\r\n"), T1);
	assert_string_equal(token_of("Subject: AW: ref C-" T1_UPPER "\r\n"),
	    T1);
	assert_string_equal(token_of("Subject: [c-" T1 "]\r\n"), T1);
	/* Q-encoded word: '_' and '?' bound it. */
	assert_string_equal(token_of("Subject: =?UTF-8?Q?Re:_Best=C3=A4tigung_"
	    "(ref_c-" T1 ")?=\r\n"), T1);
	assert_string_equal(token_of("Subject: =?utf-8?q?c-" T1 "?=\r\n"), T1);
	/* Folded subject. */
	assert_string_equal(token_of("Subject: Re: confirm\r\n (ref c-" T1
	    ")\r\n"), T1);
	/* First valid word. */
	assert_string_equal(token_of("Subject: c-" T1_BADPAD " c-" T2 " c-" T3
	    "\r\n"), T2);
	/* Not words. */
	assert_string_equal(token_of("Subject: xc-" T1 "\r\n"), "");
	assert_string_equal(token_of("Subject: 1c-" T1 "\r\n"), "");
	assert_string_equal(token_of("Subject: c-" T1 "x\r\n"), "");
	assert_string_equal(token_of("Subject: c-" T1 "2\r\n"), "");
	assert_string_equal(token_of("Subject: c-aaaqeayeaudaocajbifqydiob\r\n"),
	    "");
	assert_string_equal(token_of("Subject: c- " T1 "\r\n"), "");
	assert_string_equal(token_of("Subject: c-" T1_BADPAD "\r\n"), "");
	/* A base64 encoded word is not decoded. */
	assert_string_equal(token_of("Subject: =?UTF-8?B?Yy1hYWFxZWF5ZWF1ZGFv"
	    "Y2FqYmlmcXlkaW9iNA==?=\r\n"), "");
	/* Only the Subject field. */
	assert_string_equal(token_of("X-Subject: c-" T1 "\r\n"), "");
	assert_string_equal(token_of("Subject: hi\r\n\r\nc-" T1 "\r\n"), "");
	/* References win over Subject. */
	assert_string_equal(token_of("Subject: c-" T1 "\r\n"
	    "References: <c-" T2 "@example.org>\r\n"), T2);
}

/* A realistic reply from a mail client. */
static void
test_whole_reply(void **state)
{
	struct mail_reply r;

	(void)state;
	r = ok("Return-Path: <jane@example.net>\r\n"
	    "Authentication-Results: mx.example.org;\r\n"
	    "\tdkim=pass (2048-bit key; unprotected) header.d=example.net"
	    " header.i=@example.net header.b=\"AbCd1234\";\r\n"
	    "\tspf=pass (mx.example.org: domain of jane@example.net designates"
	    " 192.0.2.7 as permitted sender) smtp.mailfrom=jane@example.net\r\n"
	    "Authentication-Results: relay.example.net; dkim=fail\r\n"
	    "Received: from mail.example.net (mail.example.net [192.0.2.7])\r\n"
	    "\tby mx.example.org (Postfix) with ESMTPS id 4F1A2\r\n"
	    "\tfor <confirm+" T1 "@example.org>; Mon, 1 Jan 2024 10:00:00 +0000"
	    "\r\n"
	    "Message-ID: <9a8b7c@mail.example.net>\r\n"
	    "Date: Mon, 1 Jan 2024 11:00:00 +0100\r\n"
	    "MIME-Version: 1.0\r\n"
	    "User-Agent: Mozilla Thunderbird\r\n"
	    "Subject: Re: Please confirm order 1234 (ref c-" T1 ")\r\n"
	    "To: twinroute <confirm+" T1 "@example.org>\r\n"
	    "References: <c-" T1 "@example.org>\r\n"
	    "From: \"Doe, Jane\" <Jane@Example.NET>\r\n"
	    "In-Reply-To: <c-" T1 "@example.org>\r\n"
	    "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
	    "\r\n"
	    "yes\r\n"
	    "\r\n"
	    "On 01/01/2024 10:00, twinroute wrote:\r\n"
	    "> Subject: c-" T2 "\r\n");
	assert_string_equal(r.from, "Jane@example.net");
	assert_false(r.automatic);
	assert_int_equal(r.auth, MAIL_AUTH_PASS);
	assert_string_equal(r.token, T1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_encode),
		cmocka_unit_test(test_token_round_trip),
		cmocka_unit_test(test_token_decode),
		cmocka_unit_test(test_token_decode_bad),
		cmocka_unit_test(test_rcpt_ours),
		cmocka_unit_test(test_rcpt_other),
		cmocka_unit_test(test_rcpt_bad_token),
		cmocka_unit_test(test_from_forms),
		cmocka_unit_test(test_from_case),
		cmocka_unit_test(test_from_refused),
		cmocka_unit_test(test_from_count),
		cmocka_unit_test(test_header_ends),
		cmocka_unit_test(test_no_header),
		cmocka_unit_test(test_line_bound),
		cmocka_unit_test(test_header_bound),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_automatic),
		cmocka_unit_test(test_auth_basic),
		cmocka_unit_test(test_auth_dkim_aligned),
		cmocka_unit_test(test_auth_spf_aligned),
		cmocka_unit_test(test_auth_dmarc),
		cmocka_unit_test(test_auth_no_property),
		cmocka_unit_test(test_auth_property_syntax),
		cmocka_unit_test(test_auth_from),
		cmocka_unit_test(test_auth_not_a_pass),
		cmocka_unit_test(test_auth_topmost),
		cmocka_unit_test(test_auth_untrusted),
		cmocka_unit_test(test_token_in_reply_to),
		cmocka_unit_test(test_token_references),
		cmocka_unit_test(test_token_msgid_bad),
		cmocka_unit_test(test_token_no_domain),
		cmocka_unit_test(test_token_subject),
		cmocka_unit_test(test_whole_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
