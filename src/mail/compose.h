/* SPDX-License-Identifier: ISC */
/* compose.h -- the confirmation message: template and RFC 5322 MIME */
#ifndef TR_MAIL_COMPOSE_H
#define TR_MAIL_COMPOSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * The site's template (conf/confirmation.tmpl, or the embedded default,
 * byte for byte the same as that file): header lines, an empty line, the
 * body, UTF-8. Lines starting with '#' before the first header line are
 * comments. Only these header lines are allowed in the template:
 *   Subject: ...
 * (everything else in the header is generated). Placeholders {{name}}
 * may appear in the subject and the body:
 *   order_id member_number member_name service_name provider_name
 *   quantity amount card_brand card_last4 note deadline confirm_address
 *   cancel_address token_ref broker_name
 * An unknown placeholder or a missing Subject is an error at load time.
 * The subject must contain {{token_ref}} (replies are matched by it when
 * a mail client drops In-Reply-To).
 */
struct mail_template;

#define MAIL_TEMPLATE_MAX (64 * 1024)  /* bytes of a template file */
#define MAIL_VALUE_MAX 4096            /* bytes of one string in vars/opts */
#define MAIL_MSG_MAX (4 * 1024 * 1024) /* bytes of a composed message */

/* Load and check a template file. 0, -errno (file) or -EINVAL with the
 * reason ("FILE:LINE: unknown placeholder {{x}}") in err. */
int mail_template_load(const char *path, struct mail_template **ret,
    char *err, size_t err_size);
/* The embedded default. 0 or -ENOMEM. */
int mail_template_default(struct mail_template **ret);
void mail_template_free(struct mail_template *t);
/* The embedded default's text (tests compare it with the shipped file). */
extern const char mail_template_default_text[];

struct mail_compose_opts {
	const char *from_addr;     /* "broker@example.org" */
	const char *from_name;     /* "twinroute" (display name, may be UTF-8) */
	const char *domain;        /* DOMAIN of confirm+TOKEN@DOMAIN */
	const char *broker_name;   /* {{broker_name}} */
	time_t now;                /* Date: */
};

/* What one confirmation says. Strings are UTF-8, never NULL ("" allowed). */
struct mail_confirm_vars {
	uint64_t order_id;
	const char *member_number;
	const char *member_name;
	const char *member_email;  /* To: */
	const char *service_name;
	const char *provider_name;
	uint32_t quantity;
	const char *amount;        /* "12.34 EUR", formatted by the caller */
	const char *card_brand;
	const char *card_last4;
	const char *note;
	time_t deadline;           /* the token's expiry */
	const char *token;         /* 26 chars, reply.h */
};

/*
 * Render the template into a complete message: Date (RFC 5322, UTC),
 * Message-ID <c-TOKEN@DOMAIN>, From ("name" <addr>, RFC 2047 encoded-word
 * when not ASCII), To, Reply-To confirm+TOKEN@DOMAIN, Subject (RFC 2047
 * B or Q encoded when not ASCII, folded at 78), Auto-Submitted:
 * auto-generated, MIME-Version 1.0, Content-Type text/plain;
 * charset=UTF-8, Content-Transfer-Encoding quoted-printable; then the
 * body, quoted-printable (RFC 2045: soft line breaks at 76, '=' and
 * non-ASCII escaped, trailing space escaped, CRLF hard breaks). Header
 * values from vars have CR, LF and other controls replaced by spaces, so
 * no variable can add a header field. Every line ends in CRLF.
 * {{token_ref}} is "c-TOKEN"; {{deadline}} "2026-11-28 14:05 UTC";
 * {{confirm_address}}/{{cancel_address}} the two reply addresses.
 * 0 and a malloc'ed *ret_msg (NUL-terminated, *ret_len without the NUL),
 * or -ENOMEM / -EINVAL (a NULL string in vars or opts; a from_addr or
 * member_email that is not a plain ASCII addr-spec; a domain that is not
 * a host name; a token that is not 26 [a-z2-7]; a string longer than
 * MAIL_VALUE_MAX; a time gmtime_r cannot express as a 4-digit year) /
 * -EMSGSIZE (past MAIL_MSG_MAX). Values are UTF-8-checked: each byte that
 * is not part of well-formed UTF-8 becomes U+FFFD, C0/C1 controls and DEL
 * become spaces, in the header and the body alike. To: is the bare
 * address; an empty from_name gives a bare From: address.
 */
int mail_compose(const struct mail_template *t,
    const struct mail_compose_opts *opts, const struct mail_confirm_vars *v,
    char **ret_msg, size_t *ret_len);

/* Quoted-printable body encoding of in (lines split on LF, CR before LF
 * dropped), for tests and reuse. Malloc'ed, NUL-terminated; NULL on
 * -ENOMEM. Each LF becomes CRLF; a last line without LF gets none. A '.'
 * or "From " starting a line (hard or soft) is escaped, so no line is a
 * lone "." and none starts "From ". */
char *mail_qp_encode(const char *in, size_t len, size_t *ret_len);

#endif
