/* SPDX-License-Identifier: ISC */
/* test_lmtp.c -- LMTP engine: grammar, sequence, pipelining, splits, limits */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/lmtp.h"

#define HOST "mx.test"
#define ELEMENTSOF_CASES(x) (sizeof(x) / sizeof((x)[0]))

enum deliver_mode {
	DELIVER_SYNC,           /* answer from within the callback */
	DELIVER_DEFER,          /* answer later, from the test */
};

/* A growing byte string. */
struct buf {
	char *p;
	size_t len, cap;
};

struct h {
	struct lmtp_session *s;
	struct lmtp_limits limits;
	enum deliver_mode mode;
	struct buf out;         /* everything the engine emitted */
	struct buf dlog;        /* one record per delivery */
	const struct lmtp_envelope *env; /* pending delivery */
	unsigned deliveries;
	unsigned rcpt_calls;
	int sync_ret;           /* what deliver_done returned in the callback */
};

static void
buf_add(struct buf *b, const char *p, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + len + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void
buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
buf_addf(struct buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(tmp));
	buf_add(b, tmp, (size_t)n);
}

static const char *
buf_str(struct buf *b)
{
	return b->p != NULL ? b->p : "";
}

static void
buf_clear(struct buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

static void
on_output(void *arg, const char *p, size_t len)
{
	struct h *h = arg;

	/* Complete lines only. */
	assert_true(len >= 2);
	assert_memory_equal(p + len - 2, "\r\n", 2);
	buf_add(&h->out, p, len);
}

static int
on_rcpt(void *arg, const char *addr, char *reply, size_t size)
{
	struct h *h = arg;

	h->rcpt_calls++;
	if (strncmp(addr, "bad", 3) == 0) {
		snprintf(reply, size, "550 5.1.1 no such user");
		return -1;
	}
	if (strncmp(addr, "temp", 4) == 0) {
		snprintf(reply, size, "450 4.2.0 try later");
		return -1;
	}
	if (strncmp(addr, "inject", 6) == 0) {
		snprintf(reply, size, "550 x\r\n250 2.1.5 ok");
		return -1;
	}
	if (strncmp(addr, "ok250", 5) == 0) {
		/* A success code is not a refusal. */
		snprintf(reply, size, "250 fine");
		return -1;
	}
	if (strncmp(addr, "silent", 6) == 0)
		return -1;
	return 0;
}

/* The replies to a delivery: recipients with "deny" in them get a 550. */
static int
answer(struct h *h)
{
	const struct lmtp_envelope *env = h->env;
	char text[8][300];
	const char *replies[8];
	size_t i;

	assert_non_null(env);
	assert_true(env->n_rcpts <= 8);
	for (i = 0; i < env->n_rcpts; i++) {
		if (strstr(env->rcpts[i], "deny") != NULL)
			snprintf(text[i], sizeof(text[i]),
			    "550 5.7.1 denied %s", env->rcpts[i]);
		else
			snprintf(text[i], sizeof(text[i]),
			    "250 2.0.0 delivered to %s", env->rcpts[i]);
		replies[i] = text[i];
	}
	h->env = NULL;
	return lmtp_session_deliver_done(h->s, replies, env->n_rcpts);
}

static void
on_deliver(void *arg, const struct lmtp_envelope *env)
{
	struct h *h = arg;
	size_t i;

	assert_null(h->env);
	assert_true(lmtp_session_busy(h->s));
	h->deliveries++;
	buf_addf(&h->dlog, "from=<%s> to=", env->mail_from);
	for (i = 0; i < env->n_rcpts; i++)
		buf_addf(&h->dlog, "%s<%s>", i ? "," : "", env->rcpts[i]);
	buf_addf(&h->dlog, " len=%zu\n", env->data_len);
	buf_add(&h->dlog, env->data, env->data_len);
	buf_add(&h->dlog, "|\n", 2);
	h->env = env;
	if (h->mode == DELIVER_SYNC)
		h->sync_ret = answer(h);
}

static const struct lmtp_limits default_limits = {
	.max_message = 300,
	.max_line = 512,
	.max_rcpts = 3,
};

static void
h_init(struct h *h, const struct lmtp_limits *limits, enum deliver_mode mode)
{
	struct lmtp_callbacks cb = {
		.output = on_output,
		.rcpt = on_rcpt,
		.deliver = on_deliver,
		.arg = h,
	};

	memset(h, 0, sizeof(*h));
	h->limits = limits != NULL ? *limits : default_limits;
	h->mode = mode;
	h->s = lmtp_session_new(&h->limits, HOST, &cb);
	assert_non_null(h->s);
	lmtp_session_start(h->s);
}

static void
h_fini(struct h *h)
{
	lmtp_session_free(h->s);
	free(h->out.p);
	free(h->dlog.p);
}

static int
h_feed(struct h *h, const char *str)
{
	return lmtp_session_feed(h->s, str, strlen(str));
}

/* The output since the last check is exactly want. */
static void
h_expect(struct h *h, const char *want)
{
	assert_string_equal(buf_str(&h->out), want);
	buf_clear(&h->out);
}

/* A session that has sent LHLO, with the output cleared. */
static void
h_greeted(struct h *h, const struct lmtp_limits *limits,
    enum deliver_mode mode)
{
	h_init(h, limits, mode);
	assert_int_equal(h_feed(h, "LHLO c.test\r\n"), 0);
	buf_clear(&h->out);
}

/* The reply to one command line, which must be a single line. */
static const char *
h_cmd(struct h *h, const char *line)
{
	static char last[600];

	buf_clear(&h->out);
	assert_int_equal(h_feed(h, line), 0);
	assert_true(h->out.len < sizeof(last));
	memcpy(last, buf_str(&h->out), h->out.len + 1);
	buf_clear(&h->out);
	return last;
}

/* --- basics --- */

static void
test_greeting_and_lhlo(void **state)
{
	struct h h;

	(void)state;
	h_init(&h, NULL, DELIVER_SYNC);
	h_expect(&h, "220 " HOST " LMTP twinroute ready\r\n");
	assert_int_equal(h_feed(&h, "LHLO client.example\r\n"), 0);
	h_expect(&h, "250-" HOST "\r\n"
	    "250-PIPELINING\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n"
	    "250 SIZE 300\r\n");
	/* Case-insensitive verbs, bare LF accepted. */
	assert_int_equal(h_feed(&h, "lhlo other\n"), 0);
	assert_non_null(strstr(buf_str(&h.out), "250 SIZE 300\r\n"));
	buf_clear(&h.out);
	assert_string_equal(h_cmd(&h, "LHLO\r\n"),
	    "501 5.5.4 syntax: LHLO hostname\r\n");
	assert_string_equal(h_cmd(&h, "LHLO a b\r\n"),
	    "501 5.5.4 syntax: LHLO hostname\r\n");
	assert_string_equal(h_cmd(&h, "EHLO x\r\n"),
	    "500 5.5.1 this is LMTP: use LHLO\r\n");
	assert_string_equal(h_cmd(&h, "HELO x\r\n"),
	    "500 5.5.1 this is LMTP: use LHLO\r\n");
	assert_string_equal(h_cmd(&h, "NOOP\r\n"), "250 2.0.0 ok\r\n");
	assert_string_equal(h_cmd(&h, "NOOP anything\r\n"), "250 2.0.0 ok\r\n");
	assert_string_equal(h_cmd(&h, "VRFY someone\r\n"),
	    "252 2.0.0 cannot VRFY, send some mail\r\n");
	assert_string_equal(h_cmd(&h, "VRFY\r\n"),
	    "501 5.5.4 syntax: VRFY address\r\n");
	assert_string_equal(h_cmd(&h, "HELP\r\n"),
	    "214 2.0.0 LHLO MAIL RCPT DATA RSET NOOP VRFY QUIT HELP\r\n");
	assert_string_equal(h_cmd(&h, "STARTTLS\r\n"),
	    "500 5.5.1 unknown command\r\n");
	assert_string_equal(h_cmd(&h, "MAILFROM:<a@b>\r\n"),
	    "500 5.5.1 unknown command\r\n");
	assert_string_equal(h_cmd(&h, "\r\n"), "500 5.5.2 empty command\r\n");
	assert_string_equal(h_cmd(&h, "NO\tOP\r\n"),
	    "500 5.5.2 invalid character in command\r\n");
	assert_string_equal(h_cmd(&h, "NOOP \xc3\xa9\r\n"),
	    "500 5.5.2 invalid character in command\r\n");
	assert_int_equal(lmtp_session_feed(h.s, "NO\0OP\r\n", 7), 0);
	h_expect(&h, "500 5.5.2 invalid character in command\r\n");
	/* Trailing spaces are tolerated. */
	assert_string_equal(h_cmd(&h, "RSET  \r\n"), "250 2.0.0 ok\r\n");
	assert_string_equal(h_cmd(&h, "RSET x\r\n"),
	    "501 5.5.4 syntax: RSET\r\n");
	h_fini(&h);
}

static void
test_transaction(void **state)
{
	struct h h;

	(void)state;
	h_greeted(&h, NULL, DELIVER_DEFER);
	assert_int_equal(h_feed(&h, "MAIL FROM:<sender@a.example>\r\n"), 0);
	h_expect(&h, "250 2.1.0 ok\r\n");
	assert_int_equal(h_feed(&h, "RCPT TO:<one@b.example>\r\n"), 0);
	h_expect(&h, "250 2.1.5 ok\r\n");
	assert_int_equal(h_feed(&h, "RCPT TO:<bad@b.example>\r\n"), 0);
	h_expect(&h, "550 5.1.1 no such user\r\n");
	assert_int_equal(h_feed(&h, "RCPT TO:<deny@b.example>\r\n"), 0);
	h_expect(&h, "250 2.1.5 ok\r\n");
	assert_int_equal(h_feed(&h, "DATA\r\n"), 0);
	h_expect(&h, "354 end data with <CR><LF>.<CR><LF>\r\n");
	assert_int_equal(h_feed(&h, "Subject: x\r\n\r\nbody\r\n"), 0);
	assert_int_equal(h.deliveries, 0);
	assert_false(lmtp_session_busy(h.s));
	assert_int_equal(h_feed(&h, ".\r\n"), 0);
	h_expect(&h, "");
	assert_int_equal(h.deliveries, 1);
	assert_true(lmtp_session_busy(h.s));
	assert_non_null(h.env);
	assert_string_equal(h.env->mail_from, "sender@a.example");
	assert_int_equal(h.env->n_rcpts, 2);
	assert_string_equal(h.env->rcpts[0], "one@b.example");
	assert_string_equal(h.env->rcpts[1], "deny@b.example");
	assert_int_equal(h.env->data_len, strlen("Subject: x\r\n\r\nbody\r\n"));
	assert_memory_equal(h.env->data, "Subject: x\r\n\r\nbody\r\n",
	    h.env->data_len);
	assert_int_equal(answer(&h), 0);
	assert_false(lmtp_session_busy(h.s));
	h_expect(&h, "250 2.0.0 delivered to one@b.example\r\n"
	    "550 5.7.1 denied deny@b.example\r\n");
	/* The envelope was reset. */
	assert_string_equal(h_cmd(&h, "RCPT TO:<x@y>\r\n"),
	    "503 5.5.1 need MAIL command\r\n");
	assert_int_equal(h_feed(&h, "QUIT\r\n"), LMTP_CLOSE);
	h_expect(&h, "221 2.0.0 " HOST " closing connection\r\n");
	/* Closed: nothing more is read or answered. */
	assert_int_equal(h_feed(&h, "NOOP\r\n"), LMTP_CLOSE);
	h_expect(&h, "");
	h_fini(&h);
}

static void
test_quit(void **state)
{
	struct h h;

	(void)state;
	h_greeted(&h, NULL, DELIVER_SYNC);
	assert_string_equal(h_cmd(&h, "QUIT now\r\n"),
	    "501 5.5.4 syntax: QUIT\r\n");
	/* Whatever follows QUIT in the same read is dropped. */
	assert_int_equal(h_feed(&h, "quit\r\nNOOP\r\nNOOP\r\n"), LMTP_CLOSE);
	h_expect(&h, "221 2.0.0 " HOST " closing connection\r\n");
	h_fini(&h);

	/* Before LHLO too. */
	h_init(&h, NULL, DELIVER_SYNC);
	buf_clear(&h.out);
	assert_int_equal(h_feed(&h, "QUIT\n"), LMTP_CLOSE);
	h_expect(&h, "221 2.0.0 " HOST " closing connection\r\n");
	h_fini(&h);
}

/* --- sequence --- */

static void
test_sequence(void **state)
{
	struct h h;

	(void)state;
	h_init(&h, NULL, DELIVER_SYNC);
	buf_clear(&h.out);
	assert_string_equal(h_cmd(&h, "MAIL FROM:<a@b>\r\n"),
	    "503 5.5.1 send LHLO first\r\n");
	assert_int_equal(h_feed(&h, "LHLO c\r\n"), 0);
	buf_clear(&h.out);
	assert_string_equal(h_cmd(&h, "RCPT TO:<a@b>\r\n"),
	    "503 5.5.1 need MAIL command\r\n");
	assert_string_equal(h_cmd(&h, "DATA\r\n"),
	    "503 5.5.1 need MAIL command\r\n");
	assert_string_equal(h_cmd(&h, "MAIL FROM:<a@b>\r\n"),
	    "250 2.1.0 ok\r\n");
	assert_string_equal(h_cmd(&h, "MAIL FROM:<a@b>\r\n"),
	    "503 5.5.1 nested MAIL command\r\n");
	assert_string_equal(h_cmd(&h, "DATA\r\n"),
	    "503 5.5.1 need RCPT command\r\n");
	assert_string_equal(h_cmd(&h, "RCPT TO:<bad@b>\r\n"),
	    "550 5.1.1 no such user\r\n");
	assert_string_equal(h_cmd(&h, "DATA\r\n"),
	    "503 5.5.1 no valid recipients\r\n");
	assert_string_equal(h_cmd(&h, "DATA now\r\n"),
	    "501 5.5.4 syntax: DATA\r\n");
	assert_string_equal(h_cmd(&h, "RCPT TO:<good@b>\r\n"),
	    "250 2.1.5 ok\r\n");
	/* RSET forgets the envelope. */
	assert_string_equal(h_cmd(&h, "RSET\r\n"), "250 2.0.0 ok\r\n");
	assert_string_equal(h_cmd(&h, "DATA\r\n"),
	    "503 5.5.1 need MAIL command\r\n");
	assert_string_equal(h_cmd(&h, "MAIL FROM:<a@b>\r\n"),
	    "250 2.1.0 ok\r\n");
	assert_string_equal(h_cmd(&h, "RCPT TO:<good@b>\r\n"),
	    "250 2.1.5 ok\r\n");
	/* So does LHLO. */
	assert_int_equal(h_feed(&h, "LHLO again\r\n"), 0);
	buf_clear(&h.out);
	assert_string_equal(h_cmd(&h, "RCPT TO:<good@b>\r\n"),
	    "503 5.5.1 need MAIL command\r\n");
	assert_string_equal(h_cmd(&h, "MAIL FROM:<a@b>\r\n"),
	    "250 2.1.0 ok\r\n");
	assert_int_equal(h.deliveries, 0);
	h_fini(&h);
}

/* --- address grammar --- */

struct addr_case {
	const char *line;
	const char *reply;
	const char *stored;     /* mail_from or the rcpt, when accepted */
};

static void
test_mail_from_grammar(void **state)
{
	static const struct addr_case cases[] = {
		{ "MAIL FROM:<a@b.example>", "250 2.1.0 ok", "a@b.example" },
		{ "mail from:<a@b.example>", "250 2.1.0 ok", "a@b.example" },
		{ "MAIL FROM: <a@b.example>", "250 2.1.0 ok", "a@b.example" },
		{ "MAIL FROM:<>", "250 2.1.0 ok", "" },
		{ "MAIL FROM:<@r1.example,@r2.example:u@d.example>",
		    "250 2.1.0 ok", "u@d.example" },
		{ "MAIL FROM:<@r1.example:u@d.example>", "250 2.1.0 ok",
		    "u@d.example" },
		{ "MAIL FROM:<\"john doe\"@d.example>", "250 2.1.0 ok",
		    "\"john doe\"@d.example" },
		{ "MAIL FROM:<\"a\\\"b\\\\c\"@d.example>", "250 2.1.0 ok",
		    "\"a\\\"b\\\\c\"@d.example" },
		{ "MAIL FROM:<\"\"@d.example>", "250 2.1.0 ok",
		    "\"\"@d.example" },
		{ "MAIL FROM:<first.last+tag@sub.d-x.example>", "250 2.1.0 ok",
		    "first.last+tag@sub.d-x.example" },
		{ "MAIL FROM:<!#$%&'*+-/=?^_`{|}~@d>", "250 2.1.0 ok",
		    "!#$%&'*+-/=?^_`{|}~@d" },
		{ "MAIL FROM:<a@[192.0.2.1]>", "250 2.1.0 ok",
		    "a@[192.0.2.1]" },
		{ "MAIL FROM:<a@[IPv6:2001:db8::1]>", "250 2.1.0 ok",
		    "a@[IPv6:2001:db8::1]" },
		{ "MAIL FROM:<a@[x-tag:content]>", "250 2.1.0 ok",
		    "a@[x-tag:content]" },
		{ "MAIL FROM:<a@b> SIZE=300", "250 2.1.0 ok", "a@b" },
		{ "MAIL FROM:<a@b> SIZE=0 BODY=7BIT", "250 2.1.0 ok", "a@b" },
		{ "MAIL FROM:<a@b> body=8bitmime size=12", "250 2.1.0 ok",
		    "a@b" },
		{ "MAIL FROM:<a@b>  BODY=8BITMIME", "250 2.1.0 ok", "a@b" },
		{ "MAIL FROM:<a@b> SIZE=301",
		    "552 5.3.4 message size exceeds fixed limit", NULL },
		{ "MAIL FROM:<a@b> SIZE=99999999999999999999999",
		    "552 5.3.4 message size exceeds fixed limit", NULL },
		{ "MAIL FROM:<a@b> SIZE=18446744073709551616",
		    "552 5.3.4 message size exceeds fixed limit", NULL },
		{ "MAIL FROM:<a@b> SIZE=12x", "501 5.5.4 bad SIZE parameter",
		    NULL },
		{ "MAIL FROM:<a@b> SIZE", "501 5.5.4 bad SIZE parameter",
		    NULL },
		{ "MAIL FROM:<a@b> SIZE=1 SIZE=2",
		    "501 5.5.4 duplicate SIZE parameter", NULL },
		{ "MAIL FROM:<a@b> BODY=BINARYMIME",
		    "555 5.5.4 unsupported BODY type", NULL },
		{ "MAIL FROM:<a@b> BODY", "501 5.5.4 bad BODY parameter",
		    NULL },
		{ "MAIL FROM:<a@b> AUTH=<>", "555 5.5.4 unsupported parameter",
		    NULL },
		{ "MAIL FROM:<a@b> SMTPUTF8",
		    "555 5.5.4 unsupported parameter", NULL },
		{ "MAIL FROM:<a@b> =x", "501 5.5.4 bad parameter syntax",
		    NULL },
		{ "MAIL FROM:<a@b> K=", "501 5.5.4 bad parameter syntax",
		    NULL },
		{ "MAIL FROM:<a@b>SIZE=1", "501 5.5.4 bad parameter syntax",
		    NULL },
		{ "MAIL FROM:<a@b> K=a=b", "501 5.5.4 bad parameter syntax",
		    NULL },
		{ "MAIL FROM:a@b", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@b", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<postmaster>",
		    "501 5.1.7 bad sender address syntax", NULL },
		{ "MAIL FROM:<a..b@d>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<.a@d>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a.@d>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a b@d>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@-d>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@d->", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@d.>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@d..e>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<@d>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@b@c>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<\"a@d>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@[300.1.1.1]>",
		    "501 5.1.7 bad sender address syntax", NULL },
		{ "MAIL FROM:<a@[IPv6:zz::1]>",
		    "501 5.1.7 bad sender address syntax", NULL },
		{ "MAIL FROM:<a@[]>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<a@[-x:y]>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<@r1:>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:<@r1,r2:u@d>",
		    "501 5.1.7 bad sender address syntax", NULL },
		{ "MAIL FROM:<@[1.2.3.4]:u@d>",
		    "501 5.1.7 bad sender address syntax", NULL },
		{ "MAIL FROM:<<>>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:  <a@b>", "501 5.1.7 bad sender address syntax",
		    NULL },
		{ "MAIL FROM:", "501 5.1.7 bad sender address syntax", NULL },
		{ "MAIL FROM <a@b>", "501 5.5.4 syntax: MAIL FROM:<address>",
		    NULL },
		{ "MAIL TO:<a@b>", "501 5.5.4 syntax: MAIL FROM:<address>",
		    NULL },
		{ "MAIL", "501 5.5.4 syntax: MAIL FROM:<address>", NULL },
	};
	struct h h;
	char line[700], want[600];
	size_t i;

	(void)state;
	for (i = 0; i < ELEMENTSOF_CASES(cases); i++) {
		h_greeted(&h, NULL, DELIVER_DEFER);
		snprintf(line, sizeof(line), "%s\r\n", cases[i].line);
		snprintf(want, sizeof(want), "%s\r\n", cases[i].reply);
		if (strcmp(h_cmd(&h, line), want) != 0)
			fail_msg("case %zu \"%s\": got \"%s\"", i,
			    cases[i].line, buf_str(&h.out));
		if (cases[i].stored != NULL) {
			/* See what was stored: run a delivery. */
			assert_string_equal(h_cmd(&h, "RCPT TO:<r@d>\r\n"),
			    "250 2.1.5 ok\r\n");
			assert_int_equal(h_feed(&h, "DATA\r\n.\r\n"), 0);
			assert_non_null(h.env);
			assert_string_equal(h.env->mail_from, cases[i].stored);
		}
		h_fini(&h);
	}
}

static void
test_rcpt_grammar(void **state)
{
	static const struct addr_case cases[] = {
		{ "RCPT TO:<u@d.example>", "250 2.1.5 ok", "u@d.example" },
		{ "rcpt to: <u@d.example>", "250 2.1.5 ok", "u@d.example" },
		{ "RCPT TO:<@r.example,@s.example:u@d.example>",
		    "250 2.1.5 ok", "u@d.example" },
		{ "RCPT TO:<\"odd one\"@d>", "250 2.1.5 ok",
		    "\"odd one\"@d" },
		{ "RCPT TO:<Postmaster>", "250 2.1.5 ok", "Postmaster" },
		{ "RCPT TO:<postmaster@d>", "250 2.1.5 ok", "postmaster@d" },
		{ "RCPT TO:<>", "501 5.1.3 bad recipient address syntax",
		    NULL },
		{ "RCPT TO:<user>", "501 5.1.3 bad recipient address syntax",
		    NULL },
		{ "RCPT TO:u@d", "501 5.1.3 bad recipient address syntax",
		    NULL },
		{ "RCPT TO:<u@d> NOTIFY=NEVER",
		    "555 5.5.4 unsupported parameter", NULL },
		{ "RCPT TO:<u@d> =", "501 5.5.4 bad parameter syntax", NULL },
		{ "RCPT TO:<u@d>x", "501 5.5.4 bad parameter syntax", NULL },
		{ "RCPT FROM:<u@d>", "501 5.5.4 syntax: RCPT TO:<address>",
		    NULL },
		{ "RCPT", "501 5.5.4 syntax: RCPT TO:<address>", NULL },
		{ "RCPT TO:<temp@d>", "450 4.2.0 try later", NULL },
		/* A bad reply from the callback is not passed through. */
		{ "RCPT TO:<inject@d>", "550 5.1.1 recipient rejected", NULL },
		{ "RCPT TO:<ok250@d>", "550 5.1.1 recipient rejected", NULL },
		{ "RCPT TO:<silent@d>", "550 5.1.1 recipient rejected", NULL },
	};
	struct h h;
	char line[700], want[600];
	size_t i;

	(void)state;
	for (i = 0; i < ELEMENTSOF_CASES(cases); i++) {
		h_greeted(&h, NULL, DELIVER_DEFER);
		assert_string_equal(h_cmd(&h, "MAIL FROM:<s@d>\r\n"),
		    "250 2.1.0 ok\r\n");
		snprintf(line, sizeof(line), "%s\r\n", cases[i].line);
		snprintf(want, sizeof(want), "%s\r\n", cases[i].reply);
		if (strcmp(h_cmd(&h, line), want) != 0)
			fail_msg("case %zu \"%s\"", i, cases[i].line);
		if (cases[i].stored != NULL) {
			assert_int_equal(h_feed(&h, "DATA\r\n.\r\n"), 0);
			assert_non_null(h.env);
			assert_int_equal(h.env->n_rcpts, 1);
			assert_string_equal(h.env->rcpts[0], cases[i].stored);
		} else {
			assert_string_equal(h_cmd(&h, "DATA\r\n"),
			    "503 5.5.1 no valid recipients\r\n");
		}
		h_fini(&h);
	}
}

/* Mailboxes of 254 bytes are taken, 255 refused, source route aside. */
static void
test_address_length(void **state)
{
	char local[80], dom[300], line[700];
	struct h h;
	size_t dlen;

	(void)state;
	memset(local, 'l', 64);
	local[64] = '\0';
	/* 64 + "@" + domain of 189 = 254: labels of 62 and dots. */
	snprintf(dom, sizeof(dom), "%.62s.%.62s.%.62s",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
	dlen = strlen(dom);
	assert_int_equal(dlen, 188);
	h_greeted(&h, NULL, DELIVER_DEFER);
	snprintf(line, sizeof(line), "MAIL FROM:<@route.example:%s@%sx>\r\n",
	    local, dom);
	assert_string_equal(h_cmd(&h, line), "250 2.1.0 ok\r\n");
	snprintf(line, sizeof(line), "RCPT TO:<%s@%sx>\r\n", local, dom);
	assert_string_equal(h_cmd(&h, line), "250 2.1.5 ok\r\n");
	snprintf(line, sizeof(line), "RCPT TO:<%s@%s.x>\r\n", local, dom);
	assert_string_equal(h_cmd(&h, line),
	    "501 5.1.3 recipient address too long\r\n");
	assert_int_equal(h_feed(&h, "DATA\r\n.\r\n"), 0);
	assert_non_null(h.env);
	assert_int_equal(strlen(h.env->mail_from), 254);
	assert_int_equal(strlen(h.env->rcpts[0]), 254);
	assert_int_equal(answer(&h), 0);
	buf_clear(&h.out);
	snprintf(line, sizeof(line), "MAIL FROM:<%s@%s.x>\r\n", local, dom);
	assert_string_equal(h_cmd(&h, line),
	    "501 5.1.7 sender address too long\r\n");
	/* A label over 63 bytes. */
	snprintf(line, sizeof(line), "MAIL FROM:<a@%.64s>\r\n", local);
	assert_string_equal(h_cmd(&h, line),
	    "501 5.1.7 bad sender address syntax\r\n");
	snprintf(line, sizeof(line), "MAIL FROM:<a@%.63s>\r\n", local);
	assert_string_equal(h_cmd(&h, line), "250 2.1.0 ok\r\n");
	h_fini(&h);
}

/* --- DATA --- */

static void
test_dot_unstuffing(void **state)
{
	static const char want[] =
	    ".x\r\n"
	    "..\r\n"
	    ".\r\n"
	    " .\r\n"
	    "x.\r\n"
	    "\r\r\n"
	    " \r\n"
	    "bare lf\r\n"
	    "cr\rinside\r\n"
	    "\r\n"
	    "end\r\n";
	struct h h;

	(void)state;
	h_greeted(&h, NULL, DELIVER_DEFER);
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "DATA\r\n"), 0);
	assert_int_equal(h_feed(&h,
	    "..x\r\n"
	    "...\r\n"
	    "..\r\n"
	    " .\r\n"
	    "x.\r\n"
	    ".\r\r\n"      /* "." then CR: not the end, unstuffed to CR */
	    ". \r\n"
	    "bare lf\n"
	    "cr\rinside\r\n"
	    "\n"
	    "end\r\n"), 0);
	assert_int_equal(h.deliveries, 0);
	assert_int_equal(h_feed(&h, ".\r\n"), 0);
	assert_int_equal(h.deliveries, 1);
	assert_int_equal(h.env->data_len, strlen(want));
	assert_memory_equal(h.env->data, want, strlen(want));
	h_fini(&h);

	/* "." with a bare LF ends the message too; so does an empty one. */
	h_greeted(&h, NULL, DELIVER_DEFER);
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\nRCPT TO:<c@d>\nDATA\n"
	    ".\n"), 0);
	assert_int_equal(h.deliveries, 1);
	assert_int_equal(h.env->data_len, 0);
	assert_non_null(h.env->data);
	h_fini(&h);
}

static void
test_message_size(void **state)
{
	char body[400];
	struct h h;
	size_t i;

	(void)state;
	/* 300 bytes, the limit: 2 lines of 148 + CRLF. */
	for (i = 0; i < 148; i++)
		body[i] = 'a';
	memcpy(body + 148, "\r\n", 2);
	memcpy(body + 150, body, 150);
	body[300] = '\0';

	h_greeted(&h, NULL, DELIVER_SYNC);
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "RCPT TO:<deny@d>\r\nDATA\r\n"), 0);
	buf_clear(&h.out);
	assert_int_equal(h_feed(&h, body), 0);
	assert_int_equal(h_feed(&h, ".\r\n"), 0);
	assert_int_equal(h.deliveries, 1);
	assert_int_equal(h.sync_ret, 0);
	h_expect(&h, "250 2.0.0 delivered to c@d\r\n"
	    "550 5.7.1 denied deny@d\r\n");

	/* One byte more: read to the end, refused per recipient. */
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "RCPT TO:<e@d>\r\nDATA\r\n"), 0);
	buf_clear(&h.out);
	assert_int_equal(h_feed(&h, "b"), 0);
	assert_int_equal(h_feed(&h, body), 0);
	assert_int_equal(h_feed(&h, "more after the limit\r\n.\r\nNOOP\r\n"),
	    0);
	h_expect(&h, "552 5.3.4 message exceeds size limit\r\n"
	    "552 5.3.4 message exceeds size limit\r\n"
	    "250 2.0.0 ok\r\n");
	assert_int_equal(h.deliveries, 1);
	/* The envelope is gone; the next transaction works. */
	assert_string_equal(h_cmd(&h, "RCPT TO:<c@d>\r\n"),
	    "503 5.5.1 need MAIL command\r\n");
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "DATA\r\nsmall\r\n.\r\n"), 0);
	assert_int_equal(h.deliveries, 2);
	assert_non_null(strstr(buf_str(&h.out),
	    "354 end data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 delivered to c@d\r\n"));
	h_fini(&h);
}

static char *
make_line(size_t n, char c)
{
	char *p = malloc(n + 1);

	assert_non_null(p);
	memset(p, c, n);
	p[n] = '\0';
	return p;
}

static void
test_line_length_data(void **state)
{
	const struct lmtp_limits lim = {
		.max_message = 4000, .max_line = 512, .max_rcpts = 3,
	};
	char *l512 = make_line(512, 'x');
	char *l513 = make_line(513, 'y');
	char *d513 = make_line(513, '.');
	struct h h;

	(void)state;
	/* 512 bytes with CRLF or LF; a stuffed 513 is 513 on the wire. */
	h_greeted(&h, &lim, DELIVER_SYNC);
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "DATA\r\n"), 0);
	buf_clear(&h.out);
	assert_int_equal(h_feed(&h, l512), 0);
	assert_int_equal(h_feed(&h, "\r\n"), 0);
	assert_int_equal(h_feed(&h, l512), 0);
	assert_int_equal(h_feed(&h, "\n.\r\n"), 0);
	assert_int_equal(h.deliveries, 1);
	h_expect(&h, "250 2.0.0 delivered to c@d\r\n");

	/* 513 bytes before CRLF: the whole message is refused. */
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "RCPT TO:<e@d>\r\nDATA\r\nfirst\r\n"), 0);
	buf_clear(&h.out);
	assert_int_equal(h_feed(&h, l513), 0);
	assert_int_equal(h_feed(&h, "\r\nlast\r\n.\r\n"), 0);
	h_expect(&h, "552 5.3.4 message line too long\r\n"
	    "552 5.3.4 message line too long\r\n");
	assert_int_equal(h.deliveries, 1);

	/* 513 dots: over the limit, and not the end of the message. */
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "DATA\r\n"), 0);
	buf_clear(&h.out);
	assert_int_equal(h_feed(&h, d513), 0);
	assert_int_equal(h_feed(&h, "\n"), 0);
	h_expect(&h, "");
	/* 512 + a CR that is not part of the CRLF: 513 of content. */
	assert_int_equal(h_feed(&h, l512), 0);
	assert_int_equal(h_feed(&h, "\r\r\n.\n"), 0);
	h_expect(&h, "552 5.3.4 message line too long\r\n");
	assert_int_equal(h.deliveries, 1);
	free(l512);
	free(l513);
	free(d513);
	h_fini(&h);
}

static void
test_line_length_command(void **state)
{
	char line[600];
	char *huge = make_line(10000, 'z');
	struct h h;

	(void)state;
	h_greeted(&h, NULL, DELIVER_SYNC);
	/* "NOOP " and padding: exactly 512 bytes, then 513. */
	memset(line, 'p', sizeof(line));
	memcpy(line, "NOOP ", 5);
	memcpy(line + 512, "\r\n", 3);
	assert_string_equal(h_cmd(&h, line), "250 2.0.0 ok\r\n");
	memset(line, 'p', sizeof(line));
	memcpy(line, "NOOP ", 5);
	memcpy(line + 513, "\r\n", 3);
	assert_string_equal(h_cmd(&h, line), "500 5.5.2 line too long\r\n");
	memcpy(line + 512, "\n", 2);
	assert_string_equal(h_cmd(&h, line), "250 2.0.0 ok\r\n");
	/* A huge line in pieces: one reply, and the rest is not a command. */
	huge[5000] = ' ';
	memcpy(huge + 6000, "QUIT\r", 5);
	assert_int_equal(h_feed(&h, huge), 0);
	assert_int_equal(h_feed(&h, huge), 0);
	h_expect(&h, "");
	assert_int_equal(h_feed(&h, "QUIT\r\nNOOP\r\n"), 0);
	h_expect(&h, "500 5.5.2 line too long\r\n250 2.0.0 ok\r\n");
	free(huge);
	h_fini(&h);

	/* max_line below the minimum is raised to it. */
	{
		const struct lmtp_limits lim = {
			.max_message = 100, .max_line = 10, .max_rcpts = 0,
		};
		h_greeted(&h, &lim, DELIVER_SYNC);
		memset(line, 'p', sizeof(line));
		memcpy(line, "NOOP ", 5);
		memcpy(line + 500, "\r\n", 3);
		assert_string_equal(h_cmd(&h, line), "250 2.0.0 ok\r\n");
		/* max_rcpts 0 is raised to 1. */
		assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\n"
		    "RCPT TO:<c@d>\r\nRCPT TO:<e@d>\r\n"), 0);
		h_expect(&h, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
		    "452 4.5.3 too many recipients\r\n");
		h_fini(&h);
	}
}

/* --- limits --- */

static void
test_too_many_recipients(void **state)
{
	struct h h;
	int i;

	(void)state;
	h_greeted(&h, NULL, DELIVER_DEFER);
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\n"
	    "RCPT TO:<r1@d>\r\n"
	    "RCPT TO:<bad@d>\r\n"
	    "RCPT TO:<r2@d>\r\n"
	    "RCPT TO:<r3@d>\r\n"
	    "RCPT TO:<r4@d>\r\n"
	    "RCPT TO:<bad@d>\r\n"), 0);
	h_expect(&h, "250 2.1.0 ok\r\n"
	    "250 2.1.5 ok\r\n"
	    "550 5.1.1 no such user\r\n"
	    "250 2.1.5 ok\r\n"
	    "250 2.1.5 ok\r\n"
	    "452 4.5.3 too many recipients\r\n"
	    "452 4.5.3 too many recipients\r\n");
	/* The callback is not asked for the extra ones. */
	assert_int_equal(h.rcpt_calls, 4);
	/* 452 does not count towards the error limit. */
	for (i = 0; i < 30; i++)
		assert_int_equal(h_feed(&h, "RCPT TO:<more@d>\r\n"), 0);
	buf_clear(&h.out);
	assert_int_equal(h_feed(&h, "DATA\r\nx\r\n.\r\n"), 0);
	assert_int_equal(h.env->n_rcpts, 3);
	assert_string_equal(h.env->rcpts[0], "r1@d");
	assert_string_equal(h.env->rcpts[1], "r2@d");
	assert_string_equal(h.env->rcpts[2], "r3@d");
	assert_int_equal(answer(&h), 0);
	h_expect(&h, "354 end data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 delivered to r1@d\r\n"
	    "250 2.0.0 delivered to r2@d\r\n"
	    "250 2.0.0 delivered to r3@d\r\n");
	h_fini(&h);
}

static void
test_error_limit(void **state)
{
	struct buf want = { 0 };
	struct h h;
	int i;

	(void)state;
	h_greeted(&h, NULL, DELIVER_SYNC);
	/* 19 errors, then a success resets the count. */
	for (i = 0; i < 19; i++)
		assert_int_equal(h_feed(&h, "BOGUS\r\n"), 0);
	assert_string_equal(h_cmd(&h, "NOOP\r\n"), "250 2.0.0 ok\r\n");
	for (i = 0; i < 19; i++)
		assert_int_equal(h_feed(&h, "EHLO x\r\n"), 0);
	buf_clear(&h.out);
	/* The 20th in a row in one read: its reply, 421, nothing after. */
	assert_int_equal(h_feed(&h, "RCPT TO:<a@b>\r\nNOOP\r\n"), LMTP_CLOSE);
	h_expect(&h, "503 5.5.1 need MAIL command\r\n"
	    "421 4.7.0 too many errors\r\n");
	assert_int_equal(h_feed(&h, "NOOP\r\n"), LMTP_CLOSE);
	h_expect(&h, "");
	h_fini(&h);

	/* Refused recipients count too, and 20 of them in one read. */
	h_greeted(&h, NULL, DELIVER_SYNC);
	assert_string_equal(h_cmd(&h, "MAIL FROM:<a@b>\r\n"),
	    "250 2.1.0 ok\r\n");
	buf_clear(&want);
	for (i = 0; i < 19; i++) {
		assert_int_equal(h_feed(&h, "RCPT TO:<bad@d>\r\n"), 0);
		buf_add(&want, "550 5.1.1 no such user\r\n", 24);
	}
	assert_int_equal(h_feed(&h, "RCPT TO:<bad@d>\r\nRCPT TO:<ok@d>\r\n"),
	    LMTP_CLOSE);
	buf_add(&want, "550 5.1.1 no such user\r\n"
	    "421 4.7.0 too many errors\r\n", 51);
	h_expect(&h, buf_str(&want));
	free(want.p);
	h_fini(&h);
}

/* --- pipelining and busy --- */

static const char pipelined[] =
    "LHLO c.test\r\n"
    "MAIL FROM:<a@b>\r\n"
    "RCPT TO:<x@d>\r\n"
    "RCPT TO:<deny@d>\r\n"
    "DATA\r\n"
    "hello\r\n"
    ".\r\n"
    "MAIL FROM:<c@d> SIZE=10\r\n"
    "RCPT TO:<y@d>\r\n"
    "DATA\r\n"
    "second\r\n"
    ".\r\n"
    "NOOP\r\n"
    "QUIT\r\n"
    "NOOP\r\n";

static const char pipelined_reply_1[] =
    "250-" HOST "\r\n"
    "250-PIPELINING\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-8BITMIME\r\n"
    "250 SIZE 300\r\n"
    "250 2.1.0 ok\r\n"
    "250 2.1.5 ok\r\n"
    "250 2.1.5 ok\r\n"
    "354 end data with <CR><LF>.<CR><LF>\r\n";
static const char pipelined_reply_2[] =
    "250 2.0.0 delivered to x@d\r\n"
    "550 5.7.1 denied deny@d\r\n"
    "250 2.1.0 ok\r\n"
    "250 2.1.5 ok\r\n"
    "354 end data with <CR><LF>.<CR><LF>\r\n";
static const char pipelined_reply_3[] =
    "250 2.0.0 delivered to y@d\r\n"
    "250 2.0.0 ok\r\n"
    "221 2.0.0 " HOST " closing connection\r\n";

static void
test_pipelining_deferred(void **state)
{
	struct h h;

	(void)state;
	h_init(&h, NULL, DELIVER_DEFER);
	buf_clear(&h.out);
	/* Everything in one read: replies up to the first 354 only. */
	assert_int_equal(h_feed(&h, pipelined), 0);
	h_expect(&h, pipelined_reply_1);
	assert_true(lmtp_session_busy(h.s));
	assert_int_equal(h.deliveries, 1);
	/* More input while busy is buffered, not answered. */
	assert_int_equal(h_feed(&h, "NOOP\r\n"), 0);
	h_expect(&h, "");
	assert_int_equal(answer(&h), 0);
	h_expect(&h, pipelined_reply_2);
	assert_true(lmtp_session_busy(h.s));
	assert_int_equal(h.deliveries, 2);
	assert_string_equal(h.env->mail_from, "c@d");
	assert_int_equal(h.env->data_len, 8);
	assert_memory_equal(h.env->data, "second\r\n", 8);
	/* The buffered QUIT ends the session from deliver_done. */
	assert_int_equal(answer(&h), LMTP_CLOSE);
	h_expect(&h, pipelined_reply_3);
	assert_false(lmtp_session_busy(h.s));
	assert_int_equal(h_feed(&h, "NOOP\r\n"), LMTP_CLOSE);
	h_expect(&h, "");
	h_fini(&h);
}

static void
test_pipelining_sync(void **state)
{
	char want[1024];
	struct h h;

	(void)state;
	h_init(&h, NULL, DELIVER_SYNC);
	buf_clear(&h.out);
	assert_int_equal(h_feed(&h, pipelined), LMTP_CLOSE);
	snprintf(want, sizeof(want), "%s%s%s", pipelined_reply_1,
	    pipelined_reply_2, pipelined_reply_3);
	h_expect(&h, want);
	/* Answered from within the callback: 0, the rest left to feed. */
	assert_int_equal(h.sync_ret, 0);
	assert_int_equal(h.deliveries, 2);
	h_fini(&h);
}

static void
test_deliver_done_misuse(void **state)
{
	const char *one[] = { "250 2.0.0 ok" };
	const char *two[] = { "250 2.0.0 ok", "251 2.0.0 also" };
	const char *bad[] = { "250 2.0.0 ok\r\n550 x", NULL };
	struct h h;

	(void)state;
	h_greeted(&h, NULL, DELIVER_DEFER);
	assert_int_equal(lmtp_session_deliver_done(h.s, one, 1), -EINVAL);
	assert_false(lmtp_session_busy(h.s));
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "RCPT TO:<e@d>\r\nDATA\r\nx\r\n.\r\n"), 0);
	buf_clear(&h.out);
	assert_true(lmtp_session_busy(h.s));
	assert_int_equal(lmtp_session_deliver_done(h.s, one, 1), -EINVAL);
	assert_int_equal(lmtp_session_deliver_done(h.s, two, 3), -EINVAL);
	assert_int_equal(lmtp_session_deliver_done(h.s, NULL, 2), -EINVAL);
	assert_int_equal(lmtp_session_deliver_done(h.s, one, 0), -EINVAL);
	/* Still pending, the envelope intact, nothing emitted. */
	assert_true(lmtp_session_busy(h.s));
	assert_string_equal(h.env->rcpts[1], "e@d");
	h_expect(&h, "");
	h.env = NULL;
	assert_int_equal(lmtp_session_deliver_done(h.s, two, 2), 0);
	h_expect(&h, "250 2.0.0 ok\r\n251 2.0.0 also\r\n");
	assert_int_equal(lmtp_session_deliver_done(h.s, two, 2), -EINVAL);
	h_expect(&h, "");

	/* Malformed replies are not passed through. */
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "RCPT TO:<e@d>\r\nDATA\r\nx\r\n.\r\n"), 0);
	buf_clear(&h.out);
	h.env = NULL;
	assert_int_equal(lmtp_session_deliver_done(h.s, bad, 2), 0);
	h_expect(&h, "451 4.3.0 delivery status unknown\r\n"
	    "451 4.3.0 delivery status unknown\r\n");
	h_fini(&h);
}

static void
test_busy_overflow(void **state)
{
	char *fill = make_line(1024, 'n');
	struct h h;

	(void)state;
	h_greeted(&h, NULL, DELIVER_DEFER);
	/* 2 * max_line = 1024 bytes may wait; one more closes. */
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "DATA\r\nx\r\n.\r\nNOOP\r\n"), 0);
	buf_clear(&h.out);
	assert_true(lmtp_session_busy(h.s));
	assert_int_equal(lmtp_session_feed(h.s, fill, 1024 - 6), 0);
	h_expect(&h, "");
	assert_int_equal(h_feed(&h, "n"), LMTP_CLOSE);
	h_expect(&h, "421 4.7.0 too much pipelined input\r\n");
	/* The delivery is still pending; answering it emits nothing. */
	assert_true(lmtp_session_busy(h.s));
	assert_int_equal(h_feed(&h, "NOOP\r\n"), LMTP_CLOSE);
	assert_int_equal(answer(&h), LMTP_CLOSE);
	assert_false(lmtp_session_busy(h.s));
	h_expect(&h, "");
	h_fini(&h);

	/* Too much left over in the very read that ended the message. */
	h_greeted(&h, NULL, DELIVER_DEFER);
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "DATA\r\nx\r\n"), 0);
	buf_clear(&h.out);
	memcpy(fill, ".\r\n", 3);
	assert_int_equal(lmtp_session_feed(h.s, fill, 1024), 0);
	assert_true(lmtp_session_busy(h.s));
	assert_int_equal(lmtp_session_feed(h.s, fill, 4), LMTP_CLOSE);
	h_expect(&h, "421 4.7.0 too much pipelined input\r\n");
	free(fill);
	h_fini(&h);
}

/* Freed with a delivery pending and input buffered: nothing leaks. */
static void
test_free_busy(void **state)
{
	struct h h;

	(void)state;
	h_greeted(&h, NULL, DELIVER_DEFER);
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "RCPT TO:<e@d>\r\nDATA\r\nbody\r\n.\r\nMAIL FROM:<x@y>\r\n"), 0);
	assert_true(lmtp_session_busy(h.s));
	assert_int_equal(h_feed(&h, "RCPT TO:<z@y>\r\nDA"), 0);
	h_fini(&h);

	/* In the middle of DATA. */
	h_greeted(&h, NULL, DELIVER_DEFER);
	assert_int_equal(h_feed(&h, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "DATA\r\nbody\r\nmore"), 0);
	h_fini(&h);

	lmtp_session_free(NULL);
}

/* --- splits --- */

static const struct lmtp_limits split_limits = {
	.max_message = 300, .max_line = 512, .max_rcpts = 3,
};

static char *
split_script(size_t *ret_len)
{
	struct buf b = { 0 };
	char *x600 = make_line(600, 'x');
	char *y400 = make_line(400, 'y');

	buf_addf(&b, "LHLO client.example\r\nNOOP\r\n");
	buf_addf(&b, "%s\r\n", x600);
	buf_addf(&b, "MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME\r\n"
	    "RCPT TO:<one@d.example>\r\n"
	    "RCPT TO:<bad@d.example>\r\n"
	    "RCPT TO:<deny@d.example>\r\n"
	    "DATA\r\n"
	    "Subject: hi\r\n"
	    "\r\n"
	    "..dotted\n"
	    "line\r\n"
	    ".\r\n"
	    "MAIL FROM:<>\r\n"
	    "RCPT TO:<@r.example:two@d.example>\r\n"
	    "DATA\r\n");
	buf_addf(&b, "%s\r\n", y400);
	buf_addf(&b, ".\n"
	    "RSET\r\n"
	    "mail from:<x@y>\r\n"
	    "rcpt to:<z@y>\r\n"
	    "data\r\n"
	    ".\r\n"
	    "BOGUS\r\n"
	    "VRFY x\r\n"
	    "HELP\r\n"
	    "EHLO x\r\n"
	    "MAIL FROM:<\"q u\"@y>\n"
	    "RCPT TO:<r1@y>\n"
	    "RCPT TO:<r2@y>\n"
	    "RCPT TO:<r3@y>\n"
	    "RCPT TO:<r4@y>\n"
	    "DATA\n"
	    "a\n"
	    "...\n"
	    ".\n"
	    "QUIT\r\n"
	    "NOOP\r\n");
	free(x600);
	free(y400);
	*ret_len = b.len;
	return b.p;
}

/* Run the script cut at the given points; the output and deliveries. */
static void
split_run(const char *script, size_t len, const size_t *cuts, size_t n_cuts,
    enum deliver_mode mode, struct buf *ret_out, struct buf *ret_dlog)
{
	struct h h;
	size_t start = 0, i, end;
	int r = 0;

	h_init(&h, &split_limits, mode);
	for (i = 0; i <= n_cuts && r == 0; i++) {
		end = i < n_cuts ? cuts[i] : len;
		r = lmtp_session_feed(h.s, script + start, end - start);
		while (r == 0 && h.env != NULL)
			r = answer(&h);
		start = end;
	}
	assert_int_equal(r, LMTP_CLOSE);
	buf_add(ret_out, buf_str(&h.out), h.out.len);
	buf_add(ret_dlog, buf_str(&h.dlog), h.dlog.len);
	h_fini(&h);
}

static void
test_split_everywhere(void **state)
{
	struct buf ref_out = { 0 }, ref_dlog = { 0 };
	struct buf out = { 0 }, dlog = { 0 };
	size_t len, i, *cuts;
	char *script = split_script(&len);
	enum deliver_mode mode;

	(void)state;
	split_run(script, len, NULL, 0, DELIVER_SYNC, &ref_out, &ref_dlog);
	/* The reference itself, checked in places. */
	assert_non_null(strstr(buf_str(&ref_out),
	    "250 SIZE 300\r\n250 2.0.0 ok\r\n500 5.5.2 line too long\r\n"
	    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n"
	    "250 2.1.5 ok\r\n354 end data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 delivered to one@d.example\r\n"
	    "550 5.7.1 denied deny@d.example\r\n"
	    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
	    "354 end data with <CR><LF>.<CR><LF>\r\n"
	    "552 5.3.4 message exceeds size limit\r\n"
	    "250 2.0.0 ok\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
	    "354 end data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 delivered to z@y\r\n"
	    "500 5.5.1 unknown command\r\n"));
	assert_non_null(strstr(buf_str(&ref_out),
	    "452 4.5.3 too many recipients\r\n"
	    "354 end data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 delivered to r1@y\r\n"
	    "250 2.0.0 delivered to r2@y\r\n"
	    "250 2.0.0 delivered to r3@y\r\n"
	    "221 2.0.0 " HOST " closing connection\r\n"));
	assert_string_equal(buf_str(&ref_dlog),
	    "from=<a@b.example> to=<one@d.example>,<deny@d.example> len=30\n"
	    "Subject: hi\r\n\r\n.dotted\r\nline\r\n|\n"
	    "from=<x@y> to=<z@y> len=0\n|\n"
	    "from=<\"q u\"@y> to=<r1@y>,<r2@y>,<r3@y> len=7\n"
	    "a\r\n..\r\n|\n");

	cuts = calloc(len, sizeof(*cuts));
	assert_non_null(cuts);
	for (mode = DELIVER_SYNC; mode <= DELIVER_DEFER; mode++) {
		/* Whole, then one byte at a time. */
		buf_clear(&out);
		buf_clear(&dlog);
		split_run(script, len, NULL, 0, mode, &out, &dlog);
		assert_string_equal(buf_str(&out), buf_str(&ref_out));
		assert_string_equal(buf_str(&dlog), buf_str(&ref_dlog));
		for (i = 0; i + 1 < len; i++)
			cuts[i] = i + 1;
		buf_clear(&out);
		buf_clear(&dlog);
		split_run(script, len, cuts, len - 1, mode, &out, &dlog);
		assert_string_equal(buf_str(&out), buf_str(&ref_out));
		assert_string_equal(buf_str(&dlog), buf_str(&ref_dlog));
		/* Cut in two at every point. */
		for (i = 0; i <= len; i++) {
			buf_clear(&out);
			buf_clear(&dlog);
			split_run(script, len, &i, 1, mode, &out, &dlog);
			if (strcmp(buf_str(&out), buf_str(&ref_out)) != 0)
				fail_msg("mode %d cut at %zu differs", mode, i);
			assert_string_equal(buf_str(&dlog),
			    buf_str(&ref_dlog));
		}
	}
	free(cuts);
	free(script);
	free(ref_out.p);
	free(ref_dlog.p);
	free(out.p);
	free(dlog.p);
}

/* --- setup --- */

static void
test_null_callbacks_and_hostname(void **state)
{
	struct lmtp_callbacks cb = { 0 };
	struct lmtp_session *s;
	struct h h;

	(void)state;
	/* No callbacks: recipients taken, no delivery agent, no output. */
	s = lmtp_session_new(&default_limits, NULL, &cb);
	assert_non_null(s);
	lmtp_session_start(s);
	assert_int_equal(lmtp_session_feed(s, "LHLO x\r\nMAIL FROM:<a@b>\r\n"
	    "RCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\n", 52), 0);
	assert_false(lmtp_session_busy(s));
	assert_int_equal(lmtp_session_feed(s, "QUIT\r\n", 6), LMTP_CLOSE);
	lmtp_session_free(s);

	/* The host name cannot break a reply line. */
	memset(&h, 0, sizeof(h));
	cb.output = on_output;
	cb.arg = &h;
	s = lmtp_session_new(&default_limits, "bad host\r\nX", &cb);
	assert_non_null(s);
	h.s = s;
	lmtp_session_start(s);
	h_expect(&h, "220 bad-host--X LMTP twinroute ready\r\n");
	assert_int_equal(lmtp_session_feed(s, "LHLO x\r\nMAIL FROM:<a@b>\r\n"
	    "RCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\n", 52), 0);
	assert_non_null(strstr(buf_str(&h.out),
	    "354 end data with <CR><LF>.<CR><LF>\r\n"
	    "451 4.3.0 no delivery agent\r\n"));
	lmtp_session_free(s);
	free(h.out.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_lhlo),
		cmocka_unit_test(test_transaction),
		cmocka_unit_test(test_quit),
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_mail_from_grammar),
		cmocka_unit_test(test_rcpt_grammar),
		cmocka_unit_test(test_address_length),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_message_size),
		cmocka_unit_test(test_line_length_data),
		cmocka_unit_test(test_line_length_command),
		cmocka_unit_test(test_too_many_recipients),
		cmocka_unit_test(test_error_limit),
		cmocka_unit_test(test_pipelining_deferred),
		cmocka_unit_test(test_pipelining_sync),
		cmocka_unit_test(test_deliver_done_misuse),
		cmocka_unit_test(test_busy_overflow),
		cmocka_unit_test(test_free_busy),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_null_callbacks_and_hostname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
