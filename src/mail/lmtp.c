/* SPDX-License-Identifier: ISC */
/* lmtp.c -- the LMTP server protocol engine (RFC 2033), without I/O */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/macro.h"
#include "mail/lmtp.h"

#define LMTP_ADDR_MAX 254      /* a mailbox without <> (RFC 5321 4.5.3.1.3) */
#define LMTP_REPLY_MAX 512     /* one reply line with its CRLF (4.5.3.1.5) */
#define LMTP_LABEL_MAX 63      /* one label of a domain */
#define LMTP_DOMAIN_MAX 255
#define LMTP_LITERAL_MAX 64    /* inside the brackets of an address literal */
#define LMTP_HOSTNAME_MAX 255
#define LMTP_SIZE_DIGITS 20    /* SIZE=n: UINT64_MAX has 20 digits */
#define LMTP_DATA_CHUNK 4096   /* first allocation of the message buffer */

enum lmtp_state {
	LMTP_S_COMMAND,         /* reading command lines */
	LMTP_S_DATA,            /* reading message lines after 354 */
	LMTP_S_BUSY,            /* delivery handed out, input buffered */
	LMTP_S_CLOSED,          /* 221 or 421 sent: input is ignored */
};

enum lmtp_msg {
	LMTP_MSG_OK,
	LMTP_MSG_TOO_BIG,       /* over max_message */
	LMTP_MSG_LINE_TOO_LONG, /* a line over max_line */
};

struct lmtp_session {
	struct lmtp_limits limits;
	struct lmtp_callbacks cb;
	char *hostname;
	enum lmtp_state state;
	unsigned errors;        /* consecutive error replies */
	bool in_input;          /* inside lmtp_input() */
	bool pending;           /* the deliver callback is unanswered */

	/* The line being assembled: max_line bytes, a CR and a NUL. */
	char *line;
	size_t line_len;
	bool line_long;         /* over max_line: the rest is discarded */

	/* The transaction. */
	bool greeted;           /* LHLO seen */
	bool has_mail;
	bool rcpt_seen;         /* some RCPT was given since MAIL */
	char *mail_from;
	const char **rcpts;     /* n_rcpts malloc'd strings */
	size_t n_rcpts;
	size_t rcpts_cap;
	char *data;
	size_t data_len;
	size_t data_cap;
	enum lmtp_msg msg;
	struct lmtp_envelope env;

	/* Input that arrived while busy: at most 2 * max_line bytes. */
	char *pend;
	size_t pend_len;
};

struct lmtp_param {
	const char *key;
	size_t key_len;
	const char *val;        /* NULL when there is no "=value" */
	size_t val_len;
};

typedef int (*lmtp_cmd_fn)(struct lmtp_session *, const char *);

struct lmtp_verb {
	const char *name;
	lmtp_cmd_fn fn;
};

static int lmtp_input(struct lmtp_session *, const char *, size_t, size_t *);

static void
lmtp_enter_state(struct lmtp_session *s, enum lmtp_state new_state)
{
	s->state = new_state;
}

/* --- output --- */

static void
lmtp_emit(struct lmtp_session *s, const char *buf, size_t len)
{
	if (s->cb.output != NULL && len > 0)
		s->cb.output(s->cb.arg, buf, len);
}

/* Emit one reply line (CRLF added); returns its first character. */
static char _printf_(2, 0)
lmtp_vemit(struct lmtp_session *s, const char *fmt, va_list ap)
{
	char buf[LMTP_REPLY_MAX];
	int n;

	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	if (n < 0)
		return '5';
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)(sizeof(buf) - 2);
	buf[n++] = '\r';
	buf[n++] = '\n';
	lmtp_emit(s, buf, (size_t)n);
	return buf[0];
}

static void _printf_(2, 3)
lmtp_emitf(struct lmtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)lmtp_vemit(s, fmt, ap);
	va_end(ap);
}

/* Emit a final reply and enter LMTP_S_CLOSED. */
static void
lmtp_close(struct lmtp_session *s, const char *reply)
{
	lmtp_emitf(s, "%s", reply);
	lmtp_enter_state(s, LMTP_S_CLOSED);
}

/*
 * The reply to a command: a 2xx/3xx clears the error count, a 4xx/5xx
 * raises it, and the LMTP_MAX_ERRORS-th in a row closes the session.
 * Returns 0 so that handlers can "return lmtp_respond(...)".
 */
static int _printf_(2, 3)
lmtp_respond(struct lmtp_session *s, const char *fmt, ...)
{
	va_list ap;
	char code;

	va_start(ap, fmt);
	code = lmtp_vemit(s, fmt, ap);
	va_end(ap);
	if (code == '2' || code == '3') {
		s->errors = 0;
		return 0;
	}
	if (++s->errors >= LMTP_MAX_ERRORS)
		lmtp_close(s, "421 4.7.0 too many errors");
	return 0;
}

/*
 * A reply line from a callback: a code whose first digit is in classes,
 * then a space or nothing, printable ASCII only, short enough.
 */
static bool
lmtp_reply_valid(const char *r, const char *classes)
{
	size_t i;

	if (r == NULL || r[0] == '\0' || strchr(classes, r[0]) == NULL)
		return false;
	if (r[1] < '0' || r[1] > '9' || r[2] < '0' || r[2] > '9')
		return false;
	if (r[3] != ' ' && r[3] != '\0')
		return false;
	for (i = 0; r[i] != '\0'; i++) {
		if (i >= LMTP_REPLY_MAX - 2)
			return false;
		if (r[i] < 0x20 || r[i] > 0x7e)
			return false;
	}
	return true;
}

/* --- the transaction --- */

static void
lmtp_reset(struct lmtp_session *s)
{
	size_t i;

	free(s->mail_from);
	s->mail_from = NULL;
	s->has_mail = false;
	s->rcpt_seen = false;
	for (i = 0; i < s->n_rcpts; i++)
		free(unconst(s->rcpts[i]));
	s->n_rcpts = 0;
	free(s->data);
	s->data = NULL;
	s->data_len = 0;
	s->data_cap = 0;
	s->msg = LMTP_MSG_OK;
	memset(&s->env, 0, sizeof(s->env));
}

static int
lmtp_add_rcpt(struct lmtp_session *s, const char *addr)
{
	const char **v;
	char *copy;
	size_t cap;

	if (s->n_rcpts == s->rcpts_cap) {
		cap = s->rcpts_cap == 0 ? 8 : s->rcpts_cap * 2;
		if (cap > s->limits.max_rcpts)
			cap = s->limits.max_rcpts;
		v = reallocarray(s->rcpts, cap, sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		s->rcpts = v;
		s->rcpts_cap = cap;
	}
	copy = strdup(addr);
	if (copy == NULL)
		return -ENOMEM;
	s->rcpts[s->n_rcpts++] = copy;
	return 0;
}

/* --- address grammar (RFC 5321 4.1.2) --- */

static bool
lmtp_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
lmtp_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
lmtp_is_letdig(char c)
{
	return lmtp_is_alpha(c) || lmtp_is_digit(c);
}

static bool
lmtp_is_atext(char c)
{
	return lmtp_is_letdig(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Domain = sub-domain *("." sub-domain). Returns the end or NULL. */
static const char *
lmtp_parse_domain(const char *p)
{
	const char *start = p;
	size_t n;

	for (;;) {
		if (!lmtp_is_letdig(*p))
			return NULL;
		for (n = 1; lmtp_is_letdig(p[n]) || p[n] == '-'; n++)
			if (n >= LMTP_LABEL_MAX)
				return NULL;
		if (p[n - 1] == '-')
			return NULL;
		p += n;
		if (*p != '.')
			break;
		p++;
	}
	if ((size_t)(p - start) > LMTP_DOMAIN_MAX)
		return NULL;
	return p;
}

/* Standardized-tag = Ldh-str, ending in a letter or digit. */
static bool
lmtp_valid_tag(const char *t, size_t len)
{
	size_t i;

	if (len == 0 || !lmtp_is_letdig(t[0]) || !lmtp_is_letdig(t[len - 1]))
		return false;
	for (i = 0; i < len; i++)
		if (!lmtp_is_letdig(t[i]) && t[i] != '-')
			return false;
	return true;
}

/* address-literal at '[': IPv4, IPv6:..., or tag:content. */
static const char *
lmtp_parse_literal(const char *p)
{
	char buf[LMTP_LITERAL_MAX + 1];
	struct in6_addr a6;
	struct in_addr a4;
	const char *colon;
	size_t n = 0;

	for (p++; *p >= 33 && *p <= 126 && *p != '[' && *p != '\\' &&
	    *p != ']'; p++) {
		if (n >= LMTP_LITERAL_MAX)
			return NULL;
		buf[n++] = *p;
	}
	if (*p != ']' || n == 0)
		return NULL;
	buf[n] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, buf + 5, &a6) != 1)
			return NULL;
	} else if ((colon = strchr(buf, ':')) != NULL) {
		if (!lmtp_valid_tag(buf, (size_t)(colon - buf)) ||
		    colon[1] == '\0')
			return NULL;
	} else if (inet_pton(AF_INET, buf, &a4) != 1) {
		return NULL;
	}
	return p + 1;
}

/* Local-part = Dot-string / Quoted-string. Returns the end or NULL. */
static const char *
lmtp_parse_local(const char *p)
{
	if (*p == '"') {
		for (p++;; p++) {
			if (*p == '"')
				return p + 1;
			if (*p == '\\') {
				p++;
				if (*p < 32 || *p > 126)
					return NULL;
			} else if (*p < 32 || *p > 126) {
				return NULL;
			}
		}
	}
	for (;;) {
		if (!lmtp_is_atext(*p))
			return NULL;
		while (lmtp_is_atext(*p))
			p++;
		if (*p != '.')
			return p;
		p++;
	}
}

/*
 * Path = "<" [ A-d-l ":" ] Mailbox ">", or "<>" when null_ok. The
 * mailbox (source route dropped, quoting kept) goes to out, which holds
 * LMTP_ADDR_MAX + 1 bytes; "" for the null path. RCPT may also name
 * "<Postmaster>" without a domain. Returns 0, -EINVAL or -ENAMETOOLONG.
 */
static int
lmtp_parse_path(const char *p, bool is_rcpt, char *out, const char **ret_end)
{
	const char *mb, *q;
	size_t len;

	if (*p++ != '<')
		return -EINVAL;
	if (*p == '>') {
		if (is_rcpt)
			return -EINVAL;
		out[0] = '\0';
		*ret_end = p + 1;
		return 0;
	}
	if (*p == '@') {
		for (;;) {
			p = lmtp_parse_domain(p + 1);
			if (p == NULL)
				return -EINVAL;
			if (*p == ':')
				break;
			if (p[0] != ',' || p[1] != '@')
				return -EINVAL;
			p++;
		}
		p++;
	}
	mb = p;
	q = lmtp_parse_local(p);
	if (q == NULL)
		return -EINVAL;
	if (*q == '@') {
		q++;
		q = *q == '[' ? lmtp_parse_literal(q) : lmtp_parse_domain(q);
		if (q == NULL)
			return -EINVAL;
	} else if (!is_rcpt || q - mb != 10 ||
	    strncasecmp(mb, "postmaster", 10) != 0) {
		return -EINVAL;
	}
	if (*q != '>')
		return -EINVAL;
	len = (size_t)(q - mb);
	if (len > LMTP_ADDR_MAX)
		return -ENAMETOOLONG;
	memcpy(out, mb, len);
	out[len] = '\0';
	*ret_end = q + 1;
	return 0;
}

/*
 * The next esmtp-param after a path: 1 with ret filled, 0 at the end,
 * -EINVAL on bad syntax.
 */
static int
lmtp_next_param(const char **pp, struct lmtp_param *ret)
{
	const char *p = *pp;

	if (*p == '\0')
		return 0;
	if (*p != ' ')
		return -EINVAL;
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return 0;
	if (!lmtp_is_letdig(*p))
		return -EINVAL;
	ret->key = p;
	while (lmtp_is_letdig(*p) || *p == '-')
		p++;
	ret->key_len = (size_t)(p - ret->key);
	ret->val = NULL;
	ret->val_len = 0;
	if (*p == '=') {
		ret->val = ++p;
		while (*p >= 33 && *p <= 126 && *p != '=')
			p++;
		ret->val_len = (size_t)(p - ret->val);
		if (ret->val_len == 0)
			return -EINVAL;
	}
	if (*p != ' ' && *p != '\0')
		return -EINVAL;
	*pp = p;
	return 1;
}

static bool
lmtp_is_word(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* SIZE=n: 0 with the value, -EINVAL if not digits, -ERANGE if huge. */
static int
lmtp_parse_size(const struct lmtp_param *prm, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (prm->val == NULL)
		return -EINVAL;
	for (i = 0; i < prm->val_len; i++)
		if (!lmtp_is_digit(prm->val[i]))
			return -EINVAL;
	if (prm->val_len > LMTP_SIZE_DIGITS)
		return -ERANGE;
	for (i = 0; i < prm->val_len; i++) {
		unsigned d = (unsigned)(prm->val[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/* --- commands --- */

static int
lmtp_cmd_lhlo(struct lmtp_session *s, const char *arg)
{
	char buf[LMTP_REPLY_MAX];
	int n;

	if (arg == NULL || strchr(arg, ' ') != NULL)
		return lmtp_respond(s, "501 5.5.4 syntax: LHLO hostname");
	lmtp_reset(s);
	s->greeted = true;
	s->errors = 0;
	n = snprintf(buf, sizeof(buf),
	    "250-%s\r\n"
	    "250-PIPELINING\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n"
	    "250 SIZE %zu\r\n",
	    s->hostname, s->limits.max_message);
	if (n > 0 && (size_t)n < sizeof(buf))
		lmtp_emit(s, buf, (size_t)n);
	return 0;
}

static int
lmtp_cmd_helo(struct lmtp_session *s, const char *arg)
{
	(void)arg;
	return lmtp_respond(s, "500 5.5.1 this is LMTP: use LHLO");
}

static int
lmtp_cmd_mail(struct lmtp_session *s, const char *arg)
{
	char addr[LMTP_ADDR_MAX + 1];
	struct lmtp_param prm;
	bool seen_size = false, seen_body = false;
	uint64_t size;
	const char *p;
	int r;

	if (!s->greeted)
		return lmtp_respond(s, "503 5.5.1 send LHLO first");
	if (s->has_mail)
		return lmtp_respond(s, "503 5.5.1 nested MAIL command");
	if (arg == NULL || strncasecmp(arg, "FROM:", 5) != 0)
		return lmtp_respond(s, "501 5.5.4 syntax: MAIL FROM:<address>");
	p = arg + 5;
	if (*p == ' ')
		p++;
	r = lmtp_parse_path(p, false, addr, &p);
	if (r == -ENAMETOOLONG)
		return lmtp_respond(s, "501 5.1.7 sender address too long");
	if (r < 0)
		return lmtp_respond(s, "501 5.1.7 bad sender address syntax");
	while ((r = lmtp_next_param(&p, &prm)) > 0) {
		if (lmtp_is_word(prm.key, prm.key_len, "SIZE")) {
			if (seen_size)
				return lmtp_respond(s,
				    "501 5.5.4 duplicate SIZE parameter");
			seen_size = true;
			r = lmtp_parse_size(&prm, &size);
			if (r == -EINVAL)
				return lmtp_respond(s,
				    "501 5.5.4 bad SIZE parameter");
			if (r < 0 || size > s->limits.max_message)
				return lmtp_respond(s,
				    "552 5.3.4 message size exceeds fixed limit");
		} else if (lmtp_is_word(prm.key, prm.key_len, "BODY")) {
			if (seen_body)
				return lmtp_respond(s,
				    "501 5.5.4 duplicate BODY parameter");
			seen_body = true;
			if (prm.val == NULL)
				return lmtp_respond(s,
				    "501 5.5.4 bad BODY parameter");
			if (!lmtp_is_word(prm.val, prm.val_len, "7BIT") &&
			    !lmtp_is_word(prm.val, prm.val_len, "8BITMIME"))
				return lmtp_respond(s,
				    "555 5.5.4 unsupported BODY type");
		} else {
			return lmtp_respond(s,
			    "555 5.5.4 unsupported parameter");
		}
	}
	if (r < 0)
		return lmtp_respond(s, "501 5.5.4 bad parameter syntax");
	s->mail_from = strdup(addr);
	if (s->mail_from == NULL)
		return -ENOMEM;
	s->has_mail = true;
	return lmtp_respond(s, "250 2.1.0 ok");
}

static int
lmtp_cmd_rcpt(struct lmtp_session *s, const char *arg)
{
	char addr[LMTP_ADDR_MAX + 1];
	char reply[LMTP_REPLY_MAX];
	struct lmtp_param prm;
	const char *p;
	int r;

	if (!s->has_mail)
		return lmtp_respond(s, "503 5.5.1 need MAIL command");
	s->rcpt_seen = true;
	if (arg == NULL || strncasecmp(arg, "TO:", 3) != 0)
		return lmtp_respond(s, "501 5.5.4 syntax: RCPT TO:<address>");
	p = arg + 3;
	if (*p == ' ')
		p++;
	r = lmtp_parse_path(p, true, addr, &p);
	if (r == -ENAMETOOLONG)
		return lmtp_respond(s, "501 5.1.3 recipient address too long");
	if (r < 0)
		return lmtp_respond(s, "501 5.1.3 bad recipient address syntax");
	r = lmtp_next_param(&p, &prm);
	if (r > 0)
		return lmtp_respond(s, "555 5.5.4 unsupported parameter");
	if (r < 0)
		return lmtp_respond(s, "501 5.5.4 bad parameter syntax");
	if (s->n_rcpts >= s->limits.max_rcpts) {
		/* Not an error: the client sends the rest later. */
		lmtp_emitf(s, "452 4.5.3 too many recipients");
		return 0;
	}
	reply[0] = '\0';
	if (s->cb.rcpt != NULL &&
	    s->cb.rcpt(s->cb.arg, addr, reply, sizeof(reply)) != 0) {
		reply[sizeof(reply) - 1] = '\0';
		if (!lmtp_reply_valid(reply, "45"))
			return lmtp_respond(s, "550 5.1.1 recipient rejected");
		return lmtp_respond(s, "%s", reply);
	}
	r = lmtp_add_rcpt(s, addr);
	if (r < 0)
		return r;
	return lmtp_respond(s, "250 2.1.5 ok");
}

static int
lmtp_cmd_data(struct lmtp_session *s, const char *arg)
{
	if (arg != NULL)
		return lmtp_respond(s, "501 5.5.4 syntax: DATA");
	if (!s->has_mail)
		return lmtp_respond(s, "503 5.5.1 need MAIL command");
	if (s->n_rcpts == 0)
		return lmtp_respond(s, s->rcpt_seen ?
		    "503 5.5.1 no valid recipients" :
		    "503 5.5.1 need RCPT command");
	s->data_len = 0;
	s->msg = LMTP_MSG_OK;
	lmtp_enter_state(s, LMTP_S_DATA);
	/* No enhanced code: RFC 3463 has no class 3. */
	return lmtp_respond(s, "354 end data with <CR><LF>.<CR><LF>");
}

static int
lmtp_cmd_rset(struct lmtp_session *s, const char *arg)
{
	if (arg != NULL)
		return lmtp_respond(s, "501 5.5.4 syntax: RSET");
	lmtp_reset(s);
	return lmtp_respond(s, "250 2.0.0 ok");
}

static int
lmtp_cmd_noop(struct lmtp_session *s, const char *arg)
{
	(void)arg;
	return lmtp_respond(s, "250 2.0.0 ok");
}

static int
lmtp_cmd_vrfy(struct lmtp_session *s, const char *arg)
{
	if (arg == NULL)
		return lmtp_respond(s, "501 5.5.4 syntax: VRFY address");
	return lmtp_respond(s, "252 2.0.0 cannot VRFY, send some mail");
}

static int
lmtp_cmd_help(struct lmtp_session *s, const char *arg)
{
	(void)arg;
	return lmtp_respond(s,
	    "214 2.0.0 LHLO MAIL RCPT DATA RSET NOOP VRFY QUIT HELP");
}

static int
lmtp_cmd_quit(struct lmtp_session *s, const char *arg)
{
	if (arg != NULL)
		return lmtp_respond(s, "501 5.5.4 syntax: QUIT");
	lmtp_emitf(s, "221 2.0.0 %s closing connection", s->hostname);
	lmtp_enter_state(s, LMTP_S_CLOSED);
	return 0;
}

static const struct lmtp_verb lmtp_verbs[] = {
	{ "LHLO", lmtp_cmd_lhlo },
	{ "MAIL", lmtp_cmd_mail },
	{ "RCPT", lmtp_cmd_rcpt },
	{ "DATA", lmtp_cmd_data },
	{ "RSET", lmtp_cmd_rset },
	{ "NOOP", lmtp_cmd_noop },
	{ "VRFY", lmtp_cmd_vrfy },
	{ "HELP", lmtp_cmd_help },
	{ "QUIT", lmtp_cmd_quit },
	{ "EHLO", lmtp_cmd_helo },
	{ "HELO", lmtp_cmd_helo },
};

/* One command line, CRLF removed, NUL-terminated at line[len]. */
static int
lmtp_command(struct lmtp_session *s, char *line, size_t len, bool too_long)
{
	const char *sp, *arg;
	size_t i, verb_len;

	if (too_long)
		return lmtp_respond(s, "500 5.5.2 line too long");
	for (i = 0; i < len; i++)
		if (line[i] < 0x20 || line[i] > 0x7e)
			return lmtp_respond(s,
			    "500 5.5.2 invalid character in command");
	while (len > 0 && line[len - 1] == ' ')
		len--;
	line[len] = '\0';
	if (len == 0)
		return lmtp_respond(s, "500 5.5.2 empty command");
	sp = strchr(line, ' ');
	verb_len = sp != NULL ? (size_t)(sp - line) : len;
	arg = sp != NULL ? sp + 1 : NULL;
	for (i = 0; i < ELEMENTSOF(lmtp_verbs); i++)
		if (lmtp_is_word(line, verb_len, lmtp_verbs[i].name))
			return lmtp_verbs[i].fn(s, arg);
	return lmtp_respond(s, "500 5.5.1 unknown command");
}

/* --- the message --- */

static int
lmtp_data_append(struct lmtp_session *s, const char *line, size_t len)
{
	size_t need, cap;
	char *p;

	if (len + 2 > s->limits.max_message - s->data_len) {
		s->msg = LMTP_MSG_TOO_BIG;
		return 0;
	}
	need = s->data_len + len + 2;
	if (need > s->data_cap) {
		cap = s->data_cap == 0 ? LMTP_DATA_CHUNK : s->data_cap;
		while (cap < need)
			cap *= 2;
		if (cap > s->limits.max_message)
			cap = s->limits.max_message;
		p = realloc(s->data, cap);
		if (p == NULL)
			return -ENOMEM;
		s->data = p;
		s->data_cap = cap;
	}
	memcpy(s->data + s->data_len, line, len);
	s->data[s->data_len + len] = '\r';
	s->data[s->data_len + len + 1] = '\n';
	s->data_len = need;
	return 0;
}

static int
lmtp_data_end(struct lmtp_session *s)
{
	size_t i;

	if (s->msg != LMTP_MSG_OK || s->cb.deliver == NULL) {
		const char *why = s->msg == LMTP_MSG_TOO_BIG ?
		    "552 5.3.4 message exceeds size limit" :
		    s->msg == LMTP_MSG_LINE_TOO_LONG ?
		    "552 5.3.4 message line too long" :
		    "451 4.3.0 no delivery agent";

		for (i = 0; i < s->n_rcpts; i++)
			lmtp_emitf(s, "%s", why);
		lmtp_reset(s);
		lmtp_enter_state(s, LMTP_S_COMMAND);
		return 0;
	}
	s->env.mail_from = s->mail_from;
	s->env.rcpts = s->rcpts;
	s->env.n_rcpts = s->n_rcpts;
	s->env.data = s->data != NULL ? s->data : "";
	s->env.data_len = s->data_len;
	s->pending = true;
	lmtp_enter_state(s, LMTP_S_BUSY);
	/* May answer at once through lmtp_session_deliver_done(). */
	s->cb.deliver(s->cb.arg, &s->env);
	return 0;
}

/* One message line, CRLF removed. */
static int
lmtp_data_line(struct lmtp_session *s, const char *line, size_t len,
    bool too_long)
{
	if (too_long) {
		if (s->msg == LMTP_MSG_OK) {
			s->msg = LMTP_MSG_LINE_TOO_LONG;
			free(s->data);
			s->data = NULL;
			s->data_len = s->data_cap = 0;
		}
		return 0;
	}
	if (len == 1 && line[0] == '.')
		return lmtp_data_end(s);
	if (s->msg != LMTP_MSG_OK)
		return 0;
	if (len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	return lmtp_data_append(s, line, len);
}

/* --- input --- */

static void
lmtp_line_add(struct lmtp_session *s, const char *buf, size_t len)
{
	if (s->line_long)
		return;
	if (len > s->limits.max_line + 1 - s->line_len) {
		s->line_long = true;
		return;
	}
	memcpy(s->line + s->line_len, buf, len);
	s->line_len += len;
}

static int
lmtp_line_end(struct lmtp_session *s)
{
	size_t len = s->line_len;
	bool too_long = s->line_long;

	s->line_len = 0;
	s->line_long = false;
	if (!too_long && len > 0 && s->line[len - 1] == '\r')
		len--;
	if (len > s->limits.max_line)
		too_long = true;
	if (too_long)
		len = 0;
	s->line[len] = '\0';
	if (s->state == LMTP_S_DATA)
		return lmtp_data_line(s, s->line, len, too_long);
	return lmtp_command(s, s->line, len, too_long);
}

/*
 * Run lines through the engine until the input ends or the session
 * becomes busy or closed; *ret_used says how far it got.
 */
static int
lmtp_input(struct lmtp_session *s, const char *buf, size_t len,
    size_t *ret_used)
{
	const char *nl;
	size_t i = 0, n;
	int r;

	while (i < len &&
	    (s->state == LMTP_S_COMMAND || s->state == LMTP_S_DATA)) {
		nl = memchr(buf + i, '\n', len - i);
		n = nl != NULL ? (size_t)(nl - (buf + i)) : len - i;
		lmtp_line_add(s, buf + i, n);
		i += n;
		if (nl == NULL)
			break;
		i++;
		r = lmtp_line_end(s);
		if (r < 0) {
			lmtp_enter_state(s, LMTP_S_CLOSED);
			*ret_used = i;
			return r;
		}
	}
	*ret_used = i;
	return 0;
}

static int
lmtp_pend_add(struct lmtp_session *s, const char *buf, size_t len)
{
	size_t max = 2 * s->limits.max_line;

	if (len > max - s->pend_len) {
		lmtp_close(s, "421 4.7.0 too much pipelined input");
		return LMTP_CLOSE;
	}
	if (s->pend == NULL) {
		s->pend = malloc(max);
		if (s->pend == NULL)
			return -ENOMEM;
	}
	memcpy(s->pend + s->pend_len, buf, len);
	s->pend_len += len;
	return 0;
}

/* Run the input buffered while busy, keeping what a new delivery stops. */
static int
lmtp_drain(struct lmtp_session *s)
{
	size_t used = 0;
	int r;

	if (s->pend_len == 0)
		return 0;
	s->in_input = true;
	r = lmtp_input(s, s->pend, s->pend_len, &used);
	s->in_input = false;
	if (r < 0)
		return r;
	if (s->state == LMTP_S_CLOSED) {
		s->pend_len = 0;
		return LMTP_CLOSE;
	}
	memmove(s->pend, s->pend + used, s->pend_len - used);
	s->pend_len -= used;
	return 0;
}

/* --- public --- */

struct lmtp_session *
lmtp_session_new(const struct lmtp_limits *limits, const char *hostname,
    const struct lmtp_callbacks *cb)
{
	struct lmtp_session *s;
	size_t i, n;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->limits = *limits;
	if (s->limits.max_line < LMTP_LINE_MIN)
		s->limits.max_line = LMTP_LINE_MIN;
	if (s->limits.max_line > LMTP_LINE_LIMIT)
		s->limits.max_line = LMTP_LINE_LIMIT;
	if (s->limits.max_rcpts < 1)
		s->limits.max_rcpts = 1;
	if (cb != NULL)
		s->cb = *cb;
	if (hostname == NULL || hostname[0] == '\0')
		hostname = "localhost";
	n = strnlen(hostname, LMTP_HOSTNAME_MAX);
	s->hostname = strndup(hostname, n);
	s->line = malloc(s->limits.max_line + 2);
	if (s->hostname == NULL || s->line == NULL) {
		lmtp_session_free(s);
		return NULL;
	}
	/* It goes into replies: printable, no spaces. */
	for (i = 0; i < n; i++)
		if (s->hostname[i] <= 0x20 || s->hostname[i] > 0x7e)
			s->hostname[i] = '-';
	lmtp_enter_state(s, LMTP_S_COMMAND);
	return s;
}

void
lmtp_session_free(struct lmtp_session *s)
{
	if (s == NULL)
		return;
	lmtp_reset(s);
	free(s->rcpts);
	free(s->line);
	free(s->pend);
	free(s->hostname);
	free(s);
}

void
lmtp_session_start(struct lmtp_session *s)
{
	lmtp_emitf(s, "220 %s LMTP twinroute ready", s->hostname);
}

int
lmtp_session_feed(struct lmtp_session *s, const char *buf, size_t len)
{
	size_t used = 0;
	int r;

	if (s->in_input)
		return -EBUSY;
	switch (s->state) {
	case LMTP_S_CLOSED:
		return LMTP_CLOSE;
	case LMTP_S_BUSY:
		return lmtp_pend_add(s, buf, len);
	case LMTP_S_COMMAND:
	case LMTP_S_DATA:
		break;
	}
	s->in_input = true;
	r = lmtp_input(s, buf, len, &used);
	s->in_input = false;
	if (r < 0)
		return r;
	if (s->state == LMTP_S_CLOSED)
		return LMTP_CLOSE;
	if (s->state == LMTP_S_BUSY && used < len)
		return lmtp_pend_add(s, buf + used, len - used);
	return 0;
}

int
lmtp_session_deliver_done(struct lmtp_session *s, const char *const *replies,
    size_t n)
{
	size_t i;

	if (s == NULL || !s->pending || n != s->n_rcpts || replies == NULL)
		return -EINVAL;
	s->pending = false;
	if (s->state == LMTP_S_CLOSED) {
		lmtp_reset(s);
		return LMTP_CLOSE;
	}
	for (i = 0; i < n; i++) {
		if (lmtp_reply_valid(replies[i], "245"))
			lmtp_emitf(s, "%s", replies[i]);
		else
			lmtp_emitf(s, "451 4.3.0 delivery status unknown");
	}
	lmtp_reset(s);
	lmtp_enter_state(s, LMTP_S_COMMAND);
	if (s->in_input)
		return 0;
	return lmtp_drain(s);
}

bool
lmtp_session_busy(const struct lmtp_session *s)
{
	return s->pending;
}
