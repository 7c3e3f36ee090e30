/* SPDX-License-Identifier: ISC */
/* reply.c -- reading a confirmation reply: recipients, headers, tokens */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"
#include "mail/reply.h"

/*
 * Everything here is a pure function over a caller's buffer: no
 * allocation, no locale (ASCII case folding only), every loop bounded by
 * the end of its input. Header field values are not copied to unfold
 * them: a value is the span from after the colon to the end of its last
 * continuation line, and the scanners below treat the CR and LF inside it
 * as folding white space, which is what unfolding (RFC 5322 section
 * 2.2.3) would have left as spaces anyway.
 */

static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/* Local parts we answer to, before an optional "+TOKEN". */
#define RCPT_CONFIRM "confirm"
#define RCPT_CANCEL "cancel"
/* Prefix of the token in our Message-ID and in the Subject. */
#define TOKEN_PREFIX "c-"
#define TOKEN_PREFIX_LEN 2

static inline char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static inline bool
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* FWS, with the line ends of a folded field included (see above). */
static inline bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 5322 section 3.2.3 atext. */
static bool
is_atext(char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 2045 section 5.1 token: printable ASCII except tspecials. */
static bool
is_token_char(char c)
{
	return c > ' ' && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* RFC 5321 Keyword (ldh-str), used by RFC 8601 for methods and results. */
static inline bool
is_keyword_char(char c)
{
	return is_alnum(c) || c == '-';
}

static bool
ascii_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

bool
mail_addr_equal(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	for (; *a && *b; a++, b++)
		if (ascii_lower(*a) != ascii_lower(*b))
			return false;
	return *a == *b;
}

/* Tokens: RFC 4648 section 6 base32, lowercase, no padding. */

void
mail_token_encode(const uint8_t raw[MAIL_TOKEN_RAW],
    char out[MAIL_TOKEN_LEN + 1])
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;

	for (size_t i = 0; i < MAIL_TOKEN_RAW; i++) {
		acc = (acc << 8 | raw[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[n++] = b32_alphabet[(acc >> bits) & 31];
		}
	}
	/* 128 = 25 * 5 + 3: the last character carries 3 bits and 2 zeros. */
	if (bits > 0)
		out[n++] = b32_alphabet[(acc << (5 - bits)) & 31];
	out[n] = '\0';
}

static int
b32_value(char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

int
mail_token_decode(const char *s, size_t len, uint8_t raw[MAIL_TOKEN_RAW])
{
	uint8_t out[MAIL_TOKEN_RAW];
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;

	if (!s || len != MAIL_TOKEN_LEN)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int v = b32_value(s[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 5 | (uint32_t)v) & 0x1fff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* 26 * 5 = 130 bits: the 2 left over must be zero, so that every
	 * token has exactly one spelling (RFC 4648 section 3.5). */
	if (acc & ((1u << bits) - 1))
		return -EINVAL;
	memcpy(raw, out, sizeof(out));
	return 0;
}

/* Decode and write back in canonical (lowercase) form. */
static int
token_canon(const char *s, size_t len, char out[MAIL_TOKEN_LEN + 1])
{
	uint8_t raw[MAIL_TOKEN_RAW];

	if (mail_token_decode(s, len, raw) < 0)
		return -EINVAL;
	mail_token_encode(raw, out);
	return 0;
}

enum mail_rcpt_kind
mail_parse_rcpt(const char *addr, const char *domain,
    char token[MAIL_TOKEN_LEN + 1], const char **ret_why)
{
	enum mail_rcpt_kind kind;
	const char *at, *plus, *why;
	size_t len, local_len, base_len;

	token[0] = '\0';
	if (!domain || !*domain) {
		why = "no local domain";
		goto other;
	}
	if (!addr || !*addr) {
		why = "empty address";
		goto other;
	}
	len = strnlen(addr, MAIL_ADDR_MAX + 1);
	if (len > MAIL_ADDR_MAX) {
		why = "address too long";
		goto other;
	}
	at = memrchr(addr, '@', len);
	if (!at) {
		why = "address without domain";
		goto other;
	}
	if (!ascii_eq(at + 1, len - (size_t)(at + 1 - addr), domain,
		strlen(domain))) {
		why = "not our domain";
		goto other;
	}
	local_len = (size_t)(at - addr);
	plus = memchr(addr, '+', local_len);
	base_len = plus ? (size_t)(plus - addr) : local_len;
	if (ascii_eq(addr, base_len, RCPT_CONFIRM, strlen(RCPT_CONFIRM)))
		kind = MAIL_RCPT_CONFIRM;
	else if (ascii_eq(addr, base_len, RCPT_CANCEL, strlen(RCPT_CANCEL)))
		kind = MAIL_RCPT_CANCEL;
	else {
		why = "not our local part";
		goto other;
	}
	if (plus && token_canon(plus + 1, (size_t)(at - plus - 1), token) < 0) {
		why = "bad token in address";
		goto other;
	}
	return kind;
other:
	if (ret_why)
		*ret_why = why;
	return MAIL_RCPT_OTHER;
}

/*
 * Lexical helpers over [*pp, end). On success they advance *pp; on error
 * they return -1 and leave *pp alone.
 */

/* RFC 5322 section 3.2.2 CFWS: white space and comments, which nest and
 * may hold quoted pairs. An unterminated comment is an error. */
static int
skip_cfws(const char **pp, const char *end)
{
	const char *p = *pp;

	while (p < end) {
		size_t depth = 0;

		if (is_fws(*p)) {
			p++;
			continue;
		}
		if (*p != '(')
			break;
		do {
			if (*p == '\\') {
				if (++p == end)
					return -1;
			} else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
			p++;
		} while (depth > 0 && p < end);
		if (depth > 0)
			return -1;
	}
	*pp = p;
	return 0;
}

/* A quoted-string starting at *pp (which is '"'). */
static int
skip_quoted(const char **pp, const char *end)
{
	const char *p = *pp + 1;

	while (p < end && *p != '"') {
		if (*p == '\\' && ++p == end)
			return -1;
		p++;
	}
	if (p == end)
		return -1;
	*pp = p + 1;
	return 0;
}

/* Up to the next ';' outside comments and quoted strings, or the end. */
static void
skip_to_semicolon(const char **pp, const char *end)
{
	const char *p = *pp;

	while (p < end && *p != ';') {
		if (*p == '(') {
			if (skip_cfws(&p, end) < 0)
				p = end;
		} else if (*p == '"') {
			if (skip_quoted(&p, end) < 0)
				p = end;
		} else
			p++;
	}
	*pp = p;
}

/* A run of characters of one class; returns its length (maybe 0). */
static size_t
take_run(const char **pp, const char *end, bool (*cls)(char))
{
	const char *s = *pp, *p = s;

	while (p < end && cls(*p))
		p++;
	*pp = p;
	return (size_t)(p - s);
}

/* From: (RFC 5322 section 3.4) */

struct addr_buf {
	char s[MAIL_ADDR_MAX + 1];
	size_t n;
	bool overflow;
};

static void
addr_put(struct addr_buf *b, char c)
{
	if (b->n < MAIL_ADDR_MAX)
		b->s[b->n++] = c;
	else
		b->overflow = true;
}

/* dot-atom-text (ASCII atext only), copied, optionally lowercased. */
static int
copy_dot_atom(const char **pp, const char *end, struct addr_buf *b,
    bool lower)
{
	const char *p = *pp;

	for (;;) {
		const char *s = p;

		while (p < end && (unsigned char)*p < 0x80 && is_atext(*p)) {
			addr_put(b, lower ? ascii_lower(*p) : *p);
			p++;
		}
		if (p == s)
			return -1;      /* empty atom: leading/double/trailing dot */
		if (p == end || *p != '.')
			break;
		addr_put(b, '.');
		p++;
	}
	*pp = p;
	return 0;
}

/* A quoted local part, kept with its quotes; printable ASCII only, so no
 * folding inside it. */
static int
copy_quoted(const char **pp, const char *end, struct addr_buf *b)
{
	const char *p = *pp;

	addr_put(b, *p++);
	while (p < end && *p != '"') {
		if (*p < ' ' || *p > '~')
			return -1;
		if (*p == '\\') {
			addr_put(b, *p++);
			if (p == end || *p < ' ' || *p > '~')
				return -1;
		}
		addr_put(b, *p++);
	}
	if (p == end)
		return -1;
	addr_put(b, *p++);
	*pp = p;
	return 0;
}

/*
 * addr-spec = local-part "@" domain, with the CFWS the grammar allows
 * around the dot-atoms. The obsolete forms (CFWS around dots, a local
 * part of several quoted words) and domain literals are refused: none of
 * them is a member's address.
 */
static int
parse_addr_spec(const char **pp, const char *end, struct addr_buf *ret)
{
	struct addr_buf b = { .n = 0 };
	const char *p = *pp;

	if (skip_cfws(&p, end) < 0 || p == end)
		return -1;
	if (*p == '"') {
		if (copy_quoted(&p, end, &b) < 0)
			return -1;
	} else if (copy_dot_atom(&p, end, &b, false) < 0)
		return -1;
	if (skip_cfws(&p, end) < 0 || p == end || *p != '@')
		return -1;
	addr_put(&b, *p++);
	if (skip_cfws(&p, end) < 0 || p == end)
		return -1;
	if (copy_dot_atom(&p, end, &b, true) < 0 || b.overflow)
		return -1;
	b.s[b.n] = '\0';
	*ret = b;
	*pp = p;
	return 0;
}

/* angle-addr = [CFWS] "<" addr-spec ">" [CFWS]; no obsolete route. */
static int
parse_angle_addr(const char **pp, const char *end, struct addr_buf *ret)
{
	const char *p = *pp;

	if (p == end || *p != '<')
		return -1;
	p++;
	if (parse_addr_spec(&p, end, ret) < 0)
		return -1;
	if (skip_cfws(&p, end) < 0 || p == end || *p != '>')
		return -1;
	*pp = p + 1;
	return 0;
}

/* display-name = phrase = 1*word, plus the obsolete '.' between words
 * ("John Q. Public") that mail clients still write. Raw 8-bit bytes are
 * accepted in words (RFC 6532); they are skipped, not copied. */
static bool
is_phrase_char(char c)
{
	return (unsigned char)c >= 0x80 || is_atext(c) || c == '.';
}

static int
skip_phrase(const char **pp, const char *end)
{
	const char *p = *pp;
	unsigned words = 0;

	for (;;) {
		if (skip_cfws(&p, end) < 0)
			return -1;
		if (p == end)
			break;
		if (*p == '"') {
			if (skip_quoted(&p, end) < 0)
				return -1;
		} else if (take_run(&p, end, is_phrase_char) == 0)
			break;
		words++;
	}
	if (words == 0)
		return -1;
	*pp = p;
	return 0;
}

/*
 * From: must be exactly one mailbox: name-addr or addr-spec. A second
 * mailbox (a ',') or a group (a ':' after the display name) makes the
 * sender ambiguous, and that is refused like garbage.
 */
static int
parse_from(const char *p, const char *end, char out[MAIL_ADDR_MAX + 1])
{
	struct addr_buf b;
	const char *q;

	if (skip_cfws(&p, end) < 0 || p == end)
		return -1;
	q = p;
	if (*p != '<' && parse_addr_spec(&q, end, &b) == 0)
		p = q;                          /* addr-spec */
	else {
		/* name-addr; a group's ':' or a second word list fails. */
		if (*p != '<' && skip_phrase(&p, end) < 0)
			return -1;
		if (parse_angle_addr(&p, end, &b) < 0)
			return -1;
	}
	if (skip_cfws(&p, end) < 0 || p != end)
		return -1;
	memcpy(out, b.s, b.n + 1);
	return 0;
}

/* Auto-Submitted (RFC 3834 section 5): anything but "no" is automatic;
 * so is a value that cannot be read. */
static bool
auto_submitted_is_no(const char *p, const char *end)
{
	const char *s;
	size_t n;

	if (skip_cfws(&p, end) < 0)
		return false;
	s = p;
	n = take_run(&p, end, is_token_char);
	if (!ascii_eq(s, n, "no", 2))
		return false;
	if (skip_cfws(&p, end) < 0)
		return false;
	return p == end || *p == ';';
}

/* Precedence (RFC 3834 section 3.1.8 and RFC 2076): bulk, junk, list. */
static bool
precedence_is_bulk(const char *p, const char *end)
{
	const char *s;
	size_t n;

	if (skip_cfws(&p, end) < 0)
		return false;
	s = p;
	n = take_run(&p, end, is_token_char);
	return ascii_eq(s, n, "bulk", 4) || ascii_eq(s, n, "junk", 4) ||
	    ascii_eq(s, n, "list", 4);
}

/*
 * Authentication-Results (RFC 8601 section 2.2):
 *   authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo )
 *   resinfo = [CFWS] ";" methodspec [ CFWS reasonspec ]
 *             [ CFWS 1*propspec ]
 *   methodspec = [CFWS] method [CFWS] "=" [CFWS] result
 *   propspec = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
 *
 * Reading a field takes two steps, because From: may come anywhere in the
 * header and the results are judged against its domain: ar_ours() picks
 * the field while the header is read, ar_pass() judges it at the end.
 * An authserv-id written as a quoted-string is not recognised (ours is a
 * host name, a plain token).
 */

/* Whether the field is from authserv_id; if so *ret_rest is where its
 * results start, or end when what follows the id cannot be read (such a
 * field of ours counts as one without a pass). */
static bool
ar_ours(const char *p, const char *end, const char *authserv_id,
    const char **ret_rest)
{
	const char *s;
	size_t n;

	if (skip_cfws(&p, end) < 0)
		return false;
	s = p;
	n = take_run(&p, end, is_token_char);
	if (n == 0 || !ascii_eq(s, n, authserv_id, strlen(authserv_id)))
		return false;
	if ((p < end && !is_fws(*p) && *p != '(' && *p != ';') ||
	    skip_cfws(&p, end) < 0) {
		*ret_rest = end;
		return true;
	}
	if (p < end && is_digit(*p)) {
		take_run(&p, end, is_keyword_char);      /* authres-version */
		if (skip_cfws(&p, end) < 0)
			p = end;
	}
	*ret_rest = p;
	return true;
}

/* Longest property value kept: an address (smtp.mailfrom, header.i). */
#define AR_VALUE_MAX MAIL_ADDR_MAX

/*
 * A pvalue, read leniently: quoted strings and runs of other characters
 * up to CFWS, ';' or the end make one value ("header.b=ab/c+d" is not an
 * RFC 2045 token, yet verifiers write it). The value is copied to buf
 * without its quotes, quoted pairs unescaped; *ret_len is its length, or
 * AR_VALUE_MAX + 1 when it is longer than that (not usable). An empty
 * value or an unterminated quoted string is an error.
 */
static int
take_pvalue(const char **pp, const char *end, char buf[AR_VALUE_MAX],
    size_t *ret_len)
{
	const char *p = *pp;
	size_t n = 0;
	bool over = false;

	while (p < end && !is_fws(*p) && *p != '(' && *p != ';') {
		bool quoted = *p == '"';

		if (quoted)
			p++;
		while (p < end && (quoted ? *p != '"' : (!is_fws(*p) &&
		    *p != '(' && *p != ';' && *p != '"'))) {
			if (quoted && *p == '\\' && ++p == end)
				return -1;
			if (n < AR_VALUE_MAX)
				buf[n++] = *p;
			else
				over = true;
			p++;
		}
		if (quoted) {
			if (p == end)
				return -1;
			p++;
		}
	}
	if (p == *pp)
		return -1;
	*ret_len = over ? AR_VALUE_MAX + 1 : n;
	*pp = p;
	return 0;
}

/* A domain name as a verifier writes it: dot-separated labels of
 * letters, digits, '-' and '_', none empty (no leading or trailing dot). */
static bool
domain_ok(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (is_alnum(s[i]) || s[i] == '-' || s[i] == '_') {
			if (++label > 63)
				return false;
		} else
			return false;
	}
	return label > 0;
}

/* Whether sub is a subdomain of dom, at a label boundary. */
static bool
domain_below(const char *sub, size_t slen, const char *dom, size_t dlen)
{
	return slen > dlen && sub[slen - dlen - 1] == '.' &&
	    ascii_eq(sub + slen - dlen, dlen, dom, dlen);
}

/* Relaxed alignment (RFC 7489 section 3.1), without a public suffix
 * list: the domains are equal, or one is a subdomain of the other, the
 * shorter having at least two labels (so "org" never aligns with
 * "example.org"; a public suffix of two labels, like "co.uk", would). */
static bool
domain_aligned(const char *a, size_t alen, const char *b, size_t blen)
{
	if (ascii_eq(a, alen, b, blen))
		return true;
	if (alen < blen)
		return memchr(a, '.', alen) != NULL &&
		    domain_below(b, blen, a, alen);
	return memchr(b, '.', blen) != NULL && domain_below(a, alen, b, blen);
}

/* The domain of an address value: after its last '@', or, with
 * bare_ok, the whole value when it has none. NULL when unusable. */
static const char *
value_domain(const char *v, size_t n, bool bare_ok, size_t *ret_n)
{
	const char *at;

	if (n > AR_VALUE_MAX)
		return NULL;
	at = memrchr(v, '@', n);
	if (!at && !bare_ok)
		return NULL;
	if (at) {
		n -= (size_t)(at + 1 - v);
		v = at + 1;
	}
	if (!domain_ok(v, n))
		return NULL;
	*ret_n = n;
	return v;
}

/* What the properties of one resinfo say about the From: domain. Each
 * property may appear more than once; it counts only if every copy does. */
struct ar_props {
	bool d_seen, d_ok;           /* header.d, aligned */
	bool i_seen, i_ok;           /* header.i's domain, aligned */
	bool mf_seen, mf_ok;         /* smtp.mailfrom's domain, aligned */
	bool hf_seen, hf_ok;         /* header.from, equal */
};

static void
ar_prop(struct ar_props *pr, const char *ptype, size_t tlen,
    const char *prop, size_t plen, const char *v, size_t vlen,
    const char *fdom, size_t flen)
{
	const char *d;
	size_t dlen = 0;
	bool ok;

	if (ascii_eq(ptype, tlen, "header", 6) && ascii_eq(prop, plen, "d", 1)) {
		ok = vlen <= AR_VALUE_MAX && domain_ok(v, vlen) &&
		    domain_aligned(v, vlen, fdom, flen);
		pr->d_ok = (pr->d_seen ? pr->d_ok : true) && ok;
		pr->d_seen = true;
	} else if (ascii_eq(ptype, tlen, "header", 6) &&
	    ascii_eq(prop, plen, "i", 1)) {
		d = value_domain(v, vlen, false, &dlen);
		ok = d && domain_aligned(d, dlen, fdom, flen);
		pr->i_ok = (pr->i_seen ? pr->i_ok : true) && ok;
		pr->i_seen = true;
	} else if (ascii_eq(ptype, tlen, "smtp", 4) &&
	    ascii_eq(prop, plen, "mailfrom", 8)) {
		d = value_domain(v, vlen, true, &dlen);
		ok = d && domain_aligned(d, dlen, fdom, flen);
		pr->mf_ok = (pr->mf_seen ? pr->mf_ok : true) && ok;
		pr->mf_seen = true;
	} else if (ascii_eq(ptype, tlen, "header", 6) &&
	    ascii_eq(prop, plen, "from", 4)) {
		ok = vlen <= AR_VALUE_MAX && domain_ok(v, vlen) &&
		    ascii_eq(v, vlen, fdom, flen);
		pr->hf_ok = (pr->hf_seen ? pr->hf_ok : true) && ok;
		pr->hf_seen = true;
	}
}

/*
 * The reason and properties after a methodspec, up to the next ';' or the
 * end. Besides "ptype.property=value", "name=value" is skipped whatever
 * the name (reason=, and the action= some servers add to dmarc). Anything
 * else is an error: the resinfo then does not count.
 */
static int
ar_props(const char **pp, const char *end, const char *fdom, size_t flen,
    struct ar_props *pr)
{
	const char *p = *pp;

	for (;;) {
		const char *t, *prop = NULL;
		size_t tlen, plen = 0, vlen;
		char v[AR_VALUE_MAX];

		if (skip_cfws(&p, end) < 0)
			return -1;
		if (p == end || *p == ';')
			break;
		t = p;
		tlen = take_run(&p, end, is_keyword_char);
		if (tlen == 0 || skip_cfws(&p, end) < 0)
			return -1;
		if (p < end && *p == '.') {
			p++;
			if (skip_cfws(&p, end) < 0)
				return -1;
			prop = p;
			plen = take_run(&p, end, is_keyword_char);
			if (plen == 0 || skip_cfws(&p, end) < 0)
				return -1;
		}
		if (p == end || *p != '=')
			return -1;
		p++;
		if (skip_cfws(&p, end) < 0 || take_pvalue(&p, end, v, &vlen) < 0)
			return -1;
		if (prop)
			ar_prop(pr, t, tlen, prop, plen, v, vlen, fdom, flen);
	}
	*pp = p;
	return 0;
}

/*
 * Whether the results of our field (from ar_ours()) hold a pass aligned
 * with the From: domain fdom (see reply.h for the rules). Only the
 * methodspec at the head of each resinfo is taken as a result, and
 * properties only from the same resinfo; comments and quoted strings are
 * skipped whole, so nothing in a comment, a quoted reason or a property
 * value can count.
 */
static bool
ar_pass(const char *p, const char *end, const char *fdom)
{
	size_t flen = strlen(fdom);

	if (flen == 0)
		return false;
	while (p < end) {
		struct ar_props pr = { .d_seen = false };
		const char *m, *r;
		size_t mlen, rlen;
		bool dkim, spf, dmarc;

		if (*p != ';') {
			skip_to_semicolon(&p, end);
			continue;
		}
		p++;
		if (skip_cfws(&p, end) < 0)
			break;
		m = p;
		mlen = take_run(&p, end, is_keyword_char);
		if (skip_cfws(&p, end) < 0)
			break;
		if (p < end && *p == '/') {             /* method-version */
			p++;
			if (skip_cfws(&p, end) < 0)
				break;
			take_run(&p, end, is_keyword_char);
			if (skip_cfws(&p, end) < 0)
				break;
		}
		if (mlen == 0 || p == end || *p != '=')
			continue;               /* "none", or garbage */
		p++;
		if (skip_cfws(&p, end) < 0)
			break;
		r = p;
		rlen = take_run(&p, end, is_keyword_char);
		/* The result keyword ends at CFWS, ';' or the end. */
		if (p < end && !is_fws(*p) && *p != '(' && *p != ';')
			continue;
		if (!ascii_eq(r, rlen, "pass", 4))
			continue;
		dkim = ascii_eq(m, mlen, "dkim", 4);
		spf = ascii_eq(m, mlen, "spf", 3);
		dmarc = ascii_eq(m, mlen, "dmarc", 5);
		if (!dkim && !spf && !dmarc)
			continue;
		if (ar_props(&p, end, fdom, flen, &pr) < 0)
			continue;
		if (dkim && (pr.d_seen ? pr.d_ok : pr.i_seen && pr.i_ok))
			return true;
		if (spf && pr.mf_seen && pr.mf_ok)
			return true;
		if (dmarc && (!pr.hf_seen || pr.hf_ok))
			return true;
	}
	return false;
}

/* "c-TOKEN@DOMAIN", the inside of one of our msg-ids. */
static int
msgid_token(const char *s, size_t n, const char *domain,
    char out[MAIL_TOKEN_LEN + 1])
{
	const size_t head = TOKEN_PREFIX_LEN + MAIL_TOKEN_LEN;

	if (n < head + 2 || !ascii_eq(s, TOKEN_PREFIX_LEN, TOKEN_PREFIX,
		TOKEN_PREFIX_LEN) || s[head] != '@')
		return -1;
	if (!ascii_eq(s + head + 1, n - head - 1, domain, strlen(domain)))
		return -1;
	return token_canon(s + TOKEN_PREFIX_LEN, MAIL_TOKEN_LEN, out);
}

/*
 * In-Reply-To and References (RFC 5322 section 3.6.4): msg-ids between
 * CFWS, and in the obsolete form phrases too. Comments and quoted strings
 * are skipped; a msg-id holds no white space. Keeps the first of ours, or
 * with last the last one (the direct parent in References).
 */
static void
scan_msgids(const char *p, const char *end, const char *domain, bool last,
    char out[MAIL_TOKEN_LEN + 1])
{
	char tok[MAIL_TOKEN_LEN + 1];

	while (p < end) {
		const char *s;

		if (*p == '(') {
			if (skip_cfws(&p, end) < 0)
				return;
			continue;
		}
		if (*p == '"') {
			if (skip_quoted(&p, end) < 0)
				return;
			continue;
		}
		if (*p++ != '<')
			continue;
		s = p;
		while (p < end && *p != '>' && *p != '<' && !is_fws(*p))
			p++;
		if (p == end || *p != '>')
			continue;
		if (msgid_token(s, (size_t)(p - s), domain, tok) == 0) {
			memcpy(out, tok, sizeof(tok));
			if (!last)
				return;
		}
		p++;
	}
}

/* Subject: the first "c-TOKEN" standing as a word, i.e. with no letter or
 * digit right before or after it. Encoded words are not decoded; a token
 * inside a Q-encoded word is still found, as '_' and '?' bound it. */
static void
scan_subject(const char *p, const char *end, char out[MAIL_TOKEN_LEN + 1])
{
	const size_t wlen = TOKEN_PREFIX_LEN + MAIL_TOKEN_LEN;

	for (const char *s = p; (size_t)(end - s) >= wlen; s++) {
		if (!ascii_eq(s, TOKEN_PREFIX_LEN, TOKEN_PREFIX,
			TOKEN_PREFIX_LEN))
			continue;
		if (s > p && is_alnum(s[-1]))
			continue;
		if ((size_t)(end - s) > wlen && is_alnum(s[wlen]))
			continue;
		if (token_canon(s + TOKEN_PREFIX_LEN, MAIL_TOKEN_LEN, out) == 0)
			return;
	}
}

struct reply_state {
	const char *domain;          /* NULL: no msg-id is ours */
	const char *authserv_id;     /* NULL: no A-R is trusted */
	struct mail_reply r;
	unsigned n_fields;
	unsigned n_from;
	bool auth_seen;
	const char *ar, *ar_end;     /* results of our topmost A-R field */
	char irt[MAIL_TOKEN_LEN + 1];
	char refs[MAIL_TOKEN_LEN + 1];
	char subj[MAIL_TOKEN_LEN + 1];
};

#define FIELD_IS(name, nlen, lit) ascii_eq(name, nlen, lit, sizeof(lit) - 1)

static void
reply_field(struct reply_state *st, const char *name, size_t nlen,
    const char *v, const char *vend)
{
	st->n_fields++;
	if (FIELD_IS(name, nlen, "From")) {
		/* RFC 5322 section 3.6: exactly one From; a second one
		 * makes the sender ambiguous. */
		if (++st->n_from == 1 && parse_from(v, vend, st->r.from) < 0)
			st->r.from[0] = '\0';
	} else if (FIELD_IS(name, nlen, "Auto-Submitted")) {
		if (!auto_submitted_is_no(v, vend))
			st->r.automatic = true;
	} else if (FIELD_IS(name, nlen, "Precedence")) {
		if (precedence_is_bulk(v, vend))
			st->r.automatic = true;
	} else if (FIELD_IS(name, nlen, "Authentication-Results")) {
		/* Fields are prepended on the way: the topmost one of our
		 * authserv-id is our own MTA's (RFC 8601 section 5). It is
		 * judged once From: is known. */
		if (st->authserv_id && !st->auth_seen &&
		    ar_ours(v, vend, st->authserv_id, &st->ar)) {
			st->auth_seen = true;
			st->ar_end = vend;
		}
	} else if (FIELD_IS(name, nlen, "In-Reply-To")) {
		if (st->domain && !st->irt[0])
			scan_msgids(v, vend, st->domain, false, st->irt);
	} else if (FIELD_IS(name, nlen, "References")) {
		if (st->domain)
			scan_msgids(v, vend, st->domain, true, st->refs);
	} else if (FIELD_IS(name, nlen, "Subject")) {
		if (!st->subj[0])
			scan_subject(v, vend, st->subj);
	}
}

/*
 * The length of a field name at the start of a line and the offset of its
 * colon, or -1 when the line does not start a field. ftext is printable
 * ASCII but ':' (RFC 5322 section 3.6.8); white space before the colon is
 * the obsolete form (section 4.5) and accepted.
 */
static int
field_name(const char *p, size_t n, size_t *ret_nlen, size_t *ret_colon)
{
	size_t i = 0, nlen;

	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	nlen = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (nlen == 0 || i == n || p[i] != ':')
		return -1;
	*ret_nlen = nlen;
	*ret_colon = i;
	return 0;
}

/*
 * The header is the lines up to the first empty line, or the whole
 * message when there is none. A line that is neither a field nor a
 * continuation (no colon, a bad field name, or white space before any
 * field) also ends the header: it is taken as the first line of a body
 * whose empty separator line is missing, rather than refused, because the
 * fields above it are still good. Every line read as a header line, the
 * one that ends the header included, is checked against the bounds.
 */
int
mail_parse_reply(const char *msg, size_t len, const char *domain,
    const char *authserv_id, struct mail_reply *ret, const char **ret_why)
{
	struct reply_state st = {
		.domain = domain && *domain ? domain : NULL,
		.authserv_id = authserv_id && *authserv_id ? authserv_id : NULL,
	};
	const char *p, *end, *why;
	const char *fname = NULL, *fval = NULL, *fend = NULL;
	size_t fnlen = 0, hdr_len = 0;

	if (!msg || len == 0) {
		why = "no header";
		goto fail;
	}
	p = msg;
	end = msg + len;
	while (p < end) {
		size_t rem = (size_t)(end - p), n, nlen, colon;
		const char *lf, *next;

		/* 998 bytes, CR, LF: no need to look further. */
		lf = memchr(p, '\n', MIN(rem, (size_t)MAIL_REPLY_LINE_MAX + 2));
		if (lf) {
			n = (size_t)(lf - p);
			next = lf + 1;
		} else {
			n = rem;
			next = end;
		}
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > MAIL_REPLY_LINE_MAX) {
			why = "header line too long";
			goto fail;
		}
		if (n == 0)
			break;
		hdr_len += (size_t)(next - p);
		if (hdr_len > MAIL_REPLY_HEADER_MAX) {
			why = "header too large";
			goto fail;
		}
		if (memchr(p, '\0', n)) {
			why = "NUL in header";
			goto fail;
		}
		if (*p == ' ' || *p == '\t') {
			if (!fname)
				break;
			fend = p + n;           /* RFC 5322 section 2.2.3 */
		} else if (field_name(p, n, &nlen, &colon) == 0) {
			if (fname)
				reply_field(&st, fname, fnlen, fval, fend);
			fname = p;
			fnlen = nlen;
			fval = p + colon + 1;
			fend = p + n;
		} else
			break;
		p = next;
	}
	if (fname)
		reply_field(&st, fname, fnlen, fval, fend);
	if (st.n_fields == 0) {
		why = "no header";
		goto fail;
	}
	if (st.n_from != 1)
		st.r.from[0] = '\0';
	if (st.auth_seen) {
		const char *at = strrchr(st.r.from, '@');

		st.r.auth = at && ar_pass(st.ar, st.ar_end, at + 1) ?
		    MAIL_AUTH_PASS : MAIL_AUTH_FAIL;
	}
	if (st.irt[0])
		memcpy(st.r.token, st.irt, sizeof(st.r.token));
	else if (st.refs[0])
		memcpy(st.r.token, st.refs, sizeof(st.r.token));
	else
		memcpy(st.r.token, st.subj, sizeof(st.r.token));
	*ret = st.r;
	return 0;
fail:
	if (ret_why)
		*ret_why = why;
	return -EINVAL;
}
