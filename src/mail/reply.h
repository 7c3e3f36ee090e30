/* SPDX-License-Identifier: ISC */
/* reply.h -- reading a confirmation reply: recipients, headers, tokens */
#ifndef TR_MAIL_REPLY_H
#define TR_MAIL_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A confirmation token is 16 random bytes written as 26 characters of
 * lowercase RFC 4648 base32 without padding ([a-z2-7]). Mail to the
 * member carries it three ways:
 *   Reply-To: confirm+TOKEN@DOMAIN   (cancel: cancel+TOKEN@DOMAIN)
 *   Message-ID: <c-TOKEN@DOMAIN>     (found again in In-Reply-To/References)
 *   Subject: ... (ref c-TOKEN)       (found again in a reply's subject)
 */
#define MAIL_TOKEN_RAW 16
#define MAIL_TOKEN_LEN 26
#define MAIL_ADDR_MAX 254   /* RFC 5321 path limit */

/* Bounds of mail_parse_reply(): the header (field lines with their line
 * ends, not the empty line after them) and one physical line without its
 * CRLF or LF (RFC 5322 section 2.1.1). */
#define MAIL_REPLY_HEADER_MAX (64 * 1024)
#define MAIL_REPLY_LINE_MAX 998

/* raw -> 26 chars + NUL. */
void mail_token_encode(const uint8_t raw[MAIL_TOKEN_RAW],
    char out[MAIL_TOKEN_LEN + 1]);
/* 26 chars, any case -> raw. 0 or -EINVAL (length, alphabet, or the
 * unused low bits of the last character not zero). */
int mail_token_decode(const char *s, size_t len, uint8_t raw[MAIL_TOKEN_RAW]);

enum mail_rcpt_kind {
	MAIL_RCPT_OTHER = 0,   /* not ours: another local part or domain */
	MAIL_RCPT_CONFIRM,     /* confirm+TOKEN@DOMAIN or confirm@DOMAIN */
	MAIL_RCPT_CANCEL,      /* cancel+TOKEN@DOMAIN or cancel@DOMAIN */
};

/*
 * Classify an envelope recipient (no angle brackets). Local part and
 * domain compare case-insensitively; the domain must equal domain. The
 * token, when present after '+', must decode; then token is filled (26
 * lowercase chars + NUL), otherwise token is "". A '+' part that is not a
 * valid token makes the result MAIL_RCPT_OTHER with *ret_why set.
 */
enum mail_rcpt_kind mail_parse_rcpt(const char *addr, const char *domain,
    char token[MAIL_TOKEN_LEN + 1], const char **ret_why);

/*
 * What the topmost Authentication-Results field of the trusted
 * authserv-id (RFC 8601) says about the From: address, the way DMARC
 * aligns (RFC 7489 section 3.1). A result counts when it is the
 * methodspec at the head of a resinfo; its properties are the
 * "ptype.property=value" pairs after it in the same resinfo (up to the
 * next ';'), values as tokens or quoted strings, comments ignored. The
 * field passes when one resinfo is
 *   dmarc=pass   without header.from, or with header.from equal to the
 *                From: domain (the server did the alignment);
 *   dkim=pass    with header.d (or, without header.d, the domain after
 *                the '@' of header.i) aligned with the From: domain;
 *   spf=pass     with smtp.mailfrom's domain (after its last '@', or the
 *                whole value without one) aligned with the From: domain.
 * Aligned is relaxed alignment, without a public suffix list: the domains
 * are equal, or one is a subdomain of the other at a label boundary
 * (mail.example.org and example.org, not notexample.org), ASCII
 * case-insensitive. A pass without the property it needs does not count;
 * a property given more than once counts only if every copy does; a
 * resinfo whose properties cannot be read does not count. With From: ""
 * (missing or ambiguous) nothing passes.
 */
enum mail_auth {
	MAIL_AUTH_NONE = 0,    /* no Authentication-Results from authserv_id */
	MAIL_AUTH_PASS,        /* its topmost one has a pass aligned with From */
	MAIL_AUTH_FAIL,        /* its topmost one has none, or From is "" */
};

struct mail_reply {
	/* The single addr-spec of From: (display name, comments, angle
	 * brackets removed; domain lowercased), "" when missing, unparseable
	 * or more than one mailbox. */
	char from[MAIL_ADDR_MAX + 1];
	/* Auto-Submitted other than "no" (RFC 3834), or Precedence bulk,
	 * junk or list. */
	bool automatic;
	enum mail_auth auth;
	/* A token from In-Reply-To, then References (a msg-id
	 * <c-TOKEN@DOMAIN>), then the Subject ("c-TOKEN" as a word); "" if
	 * none. */
	char token[MAIL_TOKEN_LEN + 1];
};

/*
 * Parse the header of an RFC 5322 message (CRLF or LF lines; the body is
 * not looked at). Header fields are unfolded; names compare
 * case-insensitively; encoded words (RFC 2047) in Subject are not
 * decoded (the token is ASCII). authserv_id NULL or "" means nobody is
 * trusted: auth is MAIL_AUTH_NONE. Only the topmost Authentication-Results
 * field whose authserv-id equals authserv_id (case-insensitive) counts
 * (RFC 8601 section 5), wherever From: stands; it is judged against the
 * From: domain as enum mail_auth says. Results inside comments do not
 * count.
 *
 * Returns 0, or -EINVAL with *ret_why ("no header", "header line too
 * long", "header too large", ...) for a message that cannot be read.
 * Bounded: at most 64 KiB of header, 998 bytes per physical line.
 */
int mail_parse_reply(const char *msg, size_t len, const char *domain,
    const char *authserv_id, struct mail_reply *ret, const char **ret_why);

/* Case-insensitive address comparison (what the sender check uses). */
bool mail_addr_equal(const char *a, const char *b);

#endif
