/* SPDX-License-Identifier: ISC */
/* test_compose.c -- confirmation template, RFC 5322 header, MIME body */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "mail/compose.h"

#define TOKEN "abcdefghijklmnopqrstuvwxyz"
#define NOW 1795846256          /* 2026-11-28 06:10:56 UTC */
#define DEADLINE 1795874700     /* 2026-11-28 14:05:00 UTC */
#define JA "\xe7\xbf\xbb\xe8\xa8\xb3\xe3\x82\xb5\xe3\x83\xbc\xe3\x83\x93" \
	"\xe3\x82\xb9"          /* 翻訳サービス */

static const struct mail_compose_opts opts0 = {
	.from_addr = "broker@example.org",
	.from_name = "Example Broker, Inc.",
	.domain = "example.org",
	.broker_name = "Example Broker",
	.now = NOW,
};

static const struct mail_confirm_vars vars0 = {
	.order_id = 42,
	.member_number = "M-1001",
	.member_name = "Jane Doe",
	.member_email = "jane@example.net",
	.service_name = "Document translation",
	.provider_name = "Acme Languages",
	.quantity = 3,
	.amount = "12.34 EUR",
	.card_brand = "Visa",
	.card_last4 = "4242",
	.note = "please hurry",
	.deadline = DEADLINE,
	.token = TOKEN,
};

/* ---- helpers: a strict reader of what the composer writes ---- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;              /* RFC 2045: uppercase only */
}

/* Quoted-printable with CRLF lines -> text with LF lines; -1 if bad. */
static long
qp_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t i = 0, o = 0;

	while (i < len) {
		if (o + 1 >= size)
			return -1;
		if (in[i] == '=') {
			if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n') {
				i += 3;
				continue;
			}
			if (i + 2 >= len || hexval(in[i + 1]) < 0 ||
			    hexval(in[i + 2]) < 0)
				return -1;
			out[o++] = (char)(hexval(in[i + 1]) << 4 |
			    hexval(in[i + 2]));
			i += 3;
		} else if (in[i] == '\r') {
			if (i + 1 >= len || in[i + 1] != '\n')
				return -1;
			out[o++] = '\n';
			i += 2;
		} else if (in[i] == '\n' || (unsigned char)in[i] > 126 ||
		    ((unsigned char)in[i] < 32 && in[i] != '\t')) {
			return -1;
		} else
			out[o++] = in[i++];
	}
	out[o] = '\0';
	return (long)o;
}

static int
b64val(char c)
{
	const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;

	return p ? (int)(p - a) : -1;
}

static long
b64_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
			} else if ((v[k] = b64val(in[i + k])) < 0 || pad)
				return -1;
		}
		if (o + 3 >= size)
			return -1;
		out[o++] = (char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (char)(v[1] << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (char)(v[2] << 6 | v[3]);
	}
	out[o] = '\0';
	return (long)o;
}

static bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t k = u[i] < 0x80 ? 1 : u[i] < 0xc2 ? 0 : u[i] < 0xe0 ? 2 :
		    u[i] < 0xf0 ? 3 : u[i] < 0xf5 ? 4 : 0;

		if (k == 0 || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((u[i + j] & 0xc0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

/*
 * An unstructured value: either plain text, or only B encoded-words
 * separated by white space. Each word must decode to whole UTF-8
 * characters (the composer cuts between characters) and be at most 75
 * characters long.
 */
static void
decode_words(const char *value, char *out, size_t size)
{
	const char *p = value;
	size_t o = 0;

	if (strncmp(value, "=?", 2) != 0) {
		assert_true(strlen(value) < size);
		strcpy(out, value);
		return;
	}
	while (*p != '\0') {
		const char *e;
		char word[128];
		long n;

		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		e = p + strcspn(p, " \t");
		assert_true(e - p <= 75);
		assert_memory_equal(p, "=?UTF-8?B?", 10);
		assert_memory_equal(e - 2, "?=", 2);
		n = b64_decode(p + 10, (size_t)(e - p - 12), word, sizeof(word));
		assert_true(n > 0);
		assert_true(utf8_valid(word, (size_t)n));
		assert_true(o + (size_t)n < size);
		memcpy(out + o, word, (size_t)n);
		o += (size_t)n;
		p = e;
	}
	out[o] = '\0';
}

#define FIELDS_MAX 32

struct msg {
	struct {
		char name[64];
		char value[8192];       /* unfolded */
	} f[FIELDS_MAX];
	size_t nfields;
	size_t max_header_line;
	char body[16384];               /* decoded */
	char raw[32768];                /* the whole message */
	const char *raw_body;           /* in raw */
};

/*
 * Check the framing of a whole message (every line ends in CRLF and has
 * at most 998 characters, body lines at most 76) and split it into
 * unfolded header fields and the decoded body.
 */
static void
parse_msg(const char *msg, size_t len, struct msg *m)
{
	const char *p = msg, *end = msg + len, *eol;
	bool header = true;
	long n;

	memset(m, 0, sizeof(*m));
	assert_int_equal(strlen(msg), len);
	assert_true(len < sizeof(m->raw));
	memcpy(m->raw, msg, len + 1);
	msg = m->raw;
	end = msg + len;
	p = msg;
	assert_true(len >= 2);
	assert_memory_equal(end - 2, "\r\n", 2);
	while (p < end) {
		size_t l;

		eol = strstr(p, "\r\n");
		assert_non_null(eol);
		l = (size_t)(eol - p);
		assert_null(memchr(p, '\r', l));
		assert_null(memchr(p, '\n', l));
		assert_true(l <= 998);
		if (header) {
			if (l == 0) {
				header = false;
				m->raw_body = eol + 2;
			} else if (p[0] == ' ' || p[0] == '\t') {
				assert_true(m->nfields > 0);
				/* Not a line of white space only. */
				assert_true(strspn(p, " \t") < l);
				strncat(m->f[m->nfields - 1].value, p, l);
			} else {
				const char *colon = memchr(p, ':', l);

				assert_non_null(colon);
				assert_true(m->nfields < FIELDS_MAX);
				assert_true(colon - p < 64);
				memcpy(m->f[m->nfields].name, p,
				    (size_t)(colon - p));
				colon++;
				if (*colon == ' ')
					colon++;
				strncat(m->f[m->nfields].value, colon,
				    (size_t)(eol - colon));
				m->nfields++;
			}
			if (l > m->max_header_line)
				m->max_header_line = l;
		} else
			assert_true(l <= 76);
		p = eol + 2;
	}
	assert_non_null(m->raw_body);
	n = qp_decode(m->raw_body, (size_t)(end - m->raw_body), m->body,
	    sizeof(m->body));
	assert_true(n >= 0);
}

/* The one field of that name; fails if missing or repeated. */
static const char *
field(const struct msg *m, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < m->nfields; i++)
		if (strcasecmp(m->f[i].name, name) == 0) {
			assert_null(v);
			v = m->f[i].value;
		}
	assert_non_null(v);
	return v;
}

static size_t
field_count(const struct msg *m, const char *name)
{
	size_t c = 0;

	for (size_t i = 0; i < m->nfields; i++)
		c += strcasecmp(m->f[i].name, name) == 0;
	return c;
}

static const char *const required_fields[] = {
	"Date", "From", "To", "Reply-To", "Subject", "Message-ID",
	"Auto-Submitted", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding",
};

static void
check_fields(const struct msg *m)
{
	size_t n = sizeof(required_fields) / sizeof(required_fields[0]);

	for (size_t i = 0; i < n; i++)
		assert_int_equal(field_count(m, required_fields[i]), 1);
	assert_int_equal(m->nfields, n);
	assert_string_equal(field(m, "Message-ID"), "<c-" TOKEN "@example.org>");
	assert_string_equal(field(m, "Reply-To"),
	    "confirm+" TOKEN "@example.org");
	assert_string_equal(field(m, "Auto-Submitted"), "auto-generated");
	assert_string_equal(field(m, "MIME-Version"), "1.0");
	assert_string_equal(field(m, "Content-Type"),
	    "text/plain; charset=UTF-8");
	assert_string_equal(field(m, "Content-Transfer-Encoding"),
	    "quoted-printable");
}

static void
compose_ok(const struct mail_template *t, const struct mail_compose_opts *o,
    const struct mail_confirm_vars *v, struct msg *m)
{
	char *raw = NULL;
	size_t len = 0;

	assert_int_equal(mail_compose(t, o, v, &raw, &len), 0);
	assert_non_null(raw);
	parse_msg(raw, len, m);
	check_fields(m);
	free(raw);
}

static char tmpdir[64];

static int
setup_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_compose.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown_tmpdir(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/t.tmpl", tmpdir);
	unlink(path);
	return rmdir(tmpdir);
}

static const char *
write_tmpl(const char *text, size_t len)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/t.tmpl", tmpdir);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static struct mail_template *
load_text(const char *text)
{
	struct mail_template *t = NULL;
	char err[256] = "";
	const char *path = write_tmpl(text, strlen(text));
	int r = mail_template_load(path, &t, err, sizeof(err));

	if (r != 0)
		print_error("%s\n", err);
	assert_int_equal(r, 0);
	assert_non_null(t);
	return t;
}

/* ---- the shipped template ---- */

static void
test_shipped_file_is_default(void **state)
{
	static char buf[MAIL_TEMPLATE_MAX + 2];
	FILE *f;
	size_t n;

	(void)state;
	f = fopen(TR_SOURCE_ROOT "/conf/confirmation.tmpl", "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_int_equal(n, strlen(mail_template_default_text));
	assert_memory_equal(buf, mail_template_default_text, n);
}

static void
test_shipped_file_composes(void **state)
{
	struct mail_template *def = NULL, *file = NULL;
	char err[256] = "", *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	(void)state;
	assert_int_equal(mail_template_default(&def), 0);
	assert_int_equal(mail_template_load(TR_SOURCE_ROOT
	    "/conf/confirmation.tmpl", &file, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(mail_compose(def, &opts0, &vars0, &a, &alen), 0);
	assert_int_equal(mail_compose(file, &opts0, &vars0, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
	mail_template_free(def);
	mail_template_free(file);
	mail_template_free(NULL);
}

/* ---- a whole message ---- */

static void
test_compose_full(void **state)
{
	struct mail_template *t = NULL;
	static struct msg m;
	char subject[512];

	(void)state;
	assert_int_equal(mail_template_default(&t), 0);
	compose_ok(t, &opts0, &vars0, &m);
	assert_string_equal(field(&m, "Date"), "Sat, 28 Nov 2026 06:10:56 +0000");
	assert_string_equal(field(&m, "To"), "jane@example.net");
	/* ',' and '.' are specials: a quoted-string. */
	assert_string_equal(field(&m, "From"),
	    "\"Example Broker, Inc.\" <broker@example.org>");
	decode_words(field(&m, "Subject"), subject, sizeof(subject));
	assert_string_equal(subject,
	    "Please confirm order 42 (ref c-" TOKEN ")");
	assert_true(m.max_header_line <= 78);

	assert_non_null(strstr(m.body, "Hello Jane Doe,\n"));
	assert_non_null(strstr(m.body, "Example Broker has received"));
	assert_non_null(strstr(m.body, "(member number\nM-1001)"));
	assert_non_null(strstr(m.body, "\n  Order:     42\n"));
	assert_non_null(strstr(m.body, "\n  Service:   Document translation\n"));
	assert_non_null(strstr(m.body, "\n  Provider:  Acme Languages\n"));
	assert_non_null(strstr(m.body, "\n  Quantity:  3\n"));
	assert_non_null(strstr(m.body, "\n  Amount:    12.34 EUR\n"));
	assert_non_null(strstr(m.body, "\n  Card:      Visa ending in 4242\n"));
	assert_non_null(strstr(m.body, "\n  Note:      please hurry\n"));
	assert_non_null(strstr(m.body, "before 2026-11-28 14:05 UTC."));
	assert_non_null(strstr(m.body, "confirm+" TOKEN "@example.org"));
	assert_non_null(strstr(m.body, "cancel+" TOKEN "@example.org"));
	assert_non_null(strstr(m.body, "Reference: c-" TOKEN "\n"));
	assert_null(strstr(m.body, "{{"));
	assert_null(strstr(m.body, "#"));  /* comments stay out */
	/* The body ends with the template's last line break. */
	assert_int_equal(m.body[strlen(m.body) - 1], '\n');
	mail_template_free(t);
}

static void
test_from_forms(void **state)
{
	struct mail_template *t = NULL;
	struct mail_compose_opts o = opts0;
	static struct msg m;
	char name[256], from[1024];

	(void)state;
	assert_int_equal(mail_template_default(&t), 0);
	o.from_name = "twinroute";
	compose_ok(t, &o, &vars0, &m);
	assert_string_equal(field(&m, "From"), "twinroute <broker@example.org>");

	o.from_name = "";
	compose_ok(t, &o, &vars0, &m);
	assert_string_equal(field(&m, "From"), "broker@example.org");

	o.from_name = "Say \"hi\" \\ bye";
	compose_ok(t, &o, &vars0, &m);
	assert_string_equal(field(&m, "From"),
	    "\"Say \\\"hi\\\" \\\\ bye\" <broker@example.org>");

	o.from_name = "Agence \xc3\x9c" "bersetzung " JA;
	compose_ok(t, &o, &vars0, &m);
	snprintf(from, sizeof(from), "%s", field(&m, "From"));
	assert_non_null(strstr(from, " <broker@example.org>"));
	*strstr(from, " <broker@example.org>") = '\0';
	decode_words(from, name, sizeof(name));
	assert_string_equal(name, o.from_name);
	mail_template_free(t);
}

static void
test_japanese(void **state)
{
	struct mail_template *t;
	struct mail_confirm_vars v = vars0;
	static struct msg m;
	char subject[2048], svc[1024] = "";
	size_t words = 0;
	const char *p;

	(void)state;
	t = load_text("Subject: {{service_name}} (ref {{token_ref}})\n"
	    "\n"
	    "Service: {{service_name}}\n");
	v.service_name = JA;
	compose_ok(t, &opts0, &v, &m);
	assert_non_null(strstr(field(&m, "Subject"), "=?UTF-8?B?"));
	decode_words(field(&m, "Subject"), subject, sizeof(subject));
	assert_string_equal(subject, JA " (ref c-" TOKEN ")");
	assert_string_equal(m.body, "Service: " JA "\n");
	/* Escaped in the body, not 8-bit. */
	assert_non_null(strstr(m.raw_body, "=E7=BF=BB=E8=A8=B3"));

	/* Long enough for several words, none cut inside a character
	 * (decode_words checks each word alone). */
	strcpy(svc, "\xc3\x9c");        /* 2 bytes: no word ends on 3n */
	for (int i = 0; i < 12; i++)
		strcat(svc, JA);
	v.service_name = svc;
	compose_ok(t, &opts0, &v, &m);
	assert_true(m.max_header_line <= 78);
	decode_words(field(&m, "Subject"), subject, sizeof(subject));
	assert_string_equal(subject + strlen(svc), " (ref c-" TOKEN ")");
	assert_memory_equal(subject, svc, strlen(svc));
	for (p = field(&m, "Subject"); (p = strstr(p, "=?UTF-8?B?")); p++)
		words++;
	assert_true(words >= 4);
	snprintf(subject, sizeof(subject), "Service: %s\n", svc);
	assert_string_equal(m.body, subject);
	mail_template_free(t);
}

static void
test_subject_folding(void **state)
{
	struct mail_template *t;
	struct mail_confirm_vars v = vars0;
	static struct msg m;
	static char svc[1300], subject[4096];
	const char *s;

	(void)state;
	t = load_text("Subject: Confirm {{service_name}} (ref {{token_ref}})\n"
	    "\n"
	    "{{service_name}}\n");
	/* Words: folded before white space, still plain text. */
	v.service_name = "the quick brown fox jumps over the lazy dog and "
	    "keeps running far beyond the seventy-eight column mark";
	compose_ok(t, &opts0, &v, &m);
	assert_true(m.max_header_line <= 78);
	s = field(&m, "Subject");
	assert_string_equal(s, "Confirm the quick brown fox jumps over the "
	    "lazy dog and keeps running far beyond the seventy-eight column "
	    "mark (ref c-" TOKEN ")");

	/* One word past 998 characters: encoded-words instead. */
	memset(svc, 'x', 1200);
	svc[1200] = '\0';
	v.service_name = svc;
	compose_ok(t, &opts0, &v, &m);
	assert_true(m.max_header_line <= 78);
	decode_words(field(&m, "Subject"), subject, sizeof(subject));
	assert_memory_equal(subject, "Confirm ", 8);
	assert_memory_equal(subject + 8, svc, 1200);
	assert_string_equal(subject + 1208, " (ref c-" TOKEN ")");

	/* Text that reads like an encoded-word is encoded itself. */
	v.service_name = "=?UTF-8?B?SGk=?=";
	compose_ok(t, &opts0, &v, &m);
	decode_words(field(&m, "Subject"), subject, sizeof(subject));
	assert_string_equal(subject, "Confirm =?UTF-8?B?SGk=?= (ref c-" TOKEN ")");
	mail_template_free(t);
}

/* No value can add a header field or a line to the header. */
static void
test_injection(void **state)
{
	struct mail_template *t;
	struct mail_confirm_vars v = vars0;
	struct mail_compose_opts o = opts0;
	static struct msg m;
	char subject[512], *raw = NULL;
	size_t len;

	(void)state;
	t = load_text("Subject: Order {{service_name}} {{member_name}} "
	    "{{token_ref}}\n"
	    "\n"
	    "S={{service_name}}|\n"
	    "N={{member_name}}|\n"
	    "A={{amount}}|\n"
	    "X={{note}}|\n");
	v.service_name = "Foo\r\nBcc: x@y";
	v.member_name = "Jane\nX-Evil: 1\r\n\r\nbody";
	v.amount = "12\xff EUR \xc0\xaf";
	v.note = "a\x01" "b\x7f" "c\t" "d\xc2\x85" "e\xed\xa0\x80";
	o.from_name = "Broker\r\nBcc: z@y";
	compose_ok(t, &o, &v, &m);
	assert_int_equal(field_count(&m, "Bcc"), 0);
	assert_int_equal(field_count(&m, "X-Evil"), 0);
	decode_words(field(&m, "Subject"), subject, sizeof(subject));
	assert_string_equal(subject, "Order Foo  Bcc: x@y Jane X-Evil: 1    "
	    "body c-" TOKEN);
	assert_string_equal(field(&m, "From"),
	    "\"Broker  Bcc: z@y\" <broker@example.org>");
	assert_non_null(strstr(m.body, "S=Foo  Bcc: x@y|\n"));
	assert_non_null(strstr(m.body, "N=Jane X-Evil: 1    body|\n"));
	/* Each bad byte is one U+FFFD. */
	assert_non_null(strstr(m.body,
	    "A=12\xef\xbf\xbd EUR \xef\xbf\xbd\xef\xbf\xbd|\n"));
	assert_non_null(strstr(m.body, "X=a b c d e\xef\xbf\xbd\xef\xbf\xbd"
	    "\xef\xbf\xbd|\n"));

	/* Addresses are refused rather than mended. */
	v = vars0;
	v.member_email = "jane@example.net\r\nBcc: x@y";
	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), -EINVAL);
	v.member_email = "Jane <jane@example.net>";
	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), -EINVAL);
	v.member_email = "";
	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), -EINVAL);
	o = opts0;
	o.domain = "example.org>\r\nBcc: x@y";
	assert_int_equal(mail_compose(t, &o, &vars0, &raw, &len), -EINVAL);
	o = opts0;
	o.from_addr = "broker";
	assert_int_equal(mail_compose(t, &o, &vars0, &raw, &len), -EINVAL);
	v = vars0;
	v.token = "abcdefghijklmnopqrstuvwxy\n";
	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), -EINVAL);
	v.token = "abcdefghijklmnopqrstuvwxy1";
	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), -EINVAL);
	v.token = "abcdefghijklmnopqrstuvwxyza";
	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), -EINVAL);
	assert_null(raw);
	mail_template_free(t);
}

static void
test_long_note(void **state)
{
	struct mail_template *t = NULL;
	struct mail_confirm_vars v = vars0;
	static struct msg m;
	char note[600] = "", line[640];
	char *raw = NULL;
	size_t len;

	(void)state;
	while (strlen(note) < 450)
		strcat(note, "Leave the parcel with the neighbour = fine. ");
	v.note = note;
	assert_int_equal(mail_template_default(&t), 0);
	compose_ok(t, &opts0, &v, &m);
	snprintf(line, sizeof(line), "\n  Note:      %s\n", note);
	assert_non_null(strstr(m.body, line));

	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), 0);
	assert_non_null(strstr(raw, "=\r\n"));      /* soft breaks */
	assert_non_null(strstr(raw, "=3D"));
	free(raw);
	mail_template_free(t);
}

static void
test_numbers_and_dates(void **state)
{
	struct mail_template *t;
	struct mail_confirm_vars v = vars0;
	struct mail_compose_opts o = opts0;
	static struct msg m;
	char *raw = NULL;
	size_t len;

	(void)state;
	t = load_text("Subject: {{order_id}} {{token_ref}}\n"
	    "\n"
	    "{{quantity}} {{deadline}}\n");
	v.order_id = UINT64_MAX;
	v.quantity = UINT32_MAX;
	v.deadline = 0;
	o.now = 0;
	compose_ok(t, &o, &v, &m);
	assert_string_equal(field(&m, "Date"), "Thu, 01 Jan 1970 00:00:00 +0000");
	assert_string_equal(field(&m, "Subject"),
	    "18446744073709551615 c-" TOKEN);
	assert_string_equal(m.body, "4294967295 1970-01-01 00:00 UTC\n");

	o.now = 951782400 + 86399;      /* 2000-02-29 23:59:59 */
	v.deadline = 951782400 + 86400 + 59;
	compose_ok(t, &o, &v, &m);
	assert_string_equal(field(&m, "Date"), "Tue, 29 Feb 2000 23:59:59 +0000");
	assert_string_equal(m.body, "4294967295 2000-03-01 00:00 UTC\n");

	/* NULL strings, a value too long. */
	v = vars0;
	v.note = NULL;
	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), -EINVAL);
	v = vars0;
	v.card_brand = NULL;
	assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), -EINVAL);
	o = opts0;
	o.broker_name = NULL;
	assert_int_equal(mail_compose(t, &o, &vars0, &raw, &len), -EINVAL);
	{
		static char big[MAIL_VALUE_MAX + 2];

		memset(big, 'n', MAIL_VALUE_MAX + 1);
		v = vars0;
		v.note = big;
		assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len),
		    -EINVAL);
		big[MAIL_VALUE_MAX] = '\0';
		assert_int_equal(mail_compose(t, &opts0, &v, &raw, &len), 0);
		free(raw);
	}
	mail_template_free(t);
}

/* ---- quoted-printable ---- */

static void
assert_qp(const char *in, const char *expect)
{
	size_t len = 0;
	char *out = mail_qp_encode(in, strlen(in), &len);

	assert_non_null(out);
	assert_string_equal(out, expect);
	assert_int_equal(len, strlen(expect));
	free(out);
}

static void
test_qp_cases(void **state)
{
	static char in[200], expect[400];

	(void)state;
	assert_qp("", "");
	assert_qp("plain\n", "plain\r\n");
	assert_qp("a=b\n", "a=3Db\r\n");
	assert_qp("CRLF\r\nin\r\n", "CRLF\r\nin\r\n");
	assert_qp("lone\rCR\n", "lone=0DCR\r\n");
	assert_qp("trailing \n", "trailing=20\r\n");
	assert_qp("tab\t\n", "tab=09\r\n");
	assert_qp("mid space\tand tab\n", "mid space\tand tab\r\n");
	assert_qp("no LF at end ", "no LF at end=20");
	assert_qp("caf\xc3\xa9\n", "caf=C3=A9\r\n");
	assert_qp("\x7f\x01~\n", "=7F=01~\r\n");
	assert_qp(".\n", "=2E\r\n");
	assert_qp("..x\n.\n", "=2E.x\r\n=2E\r\n");
	assert_qp("a.\n", "a.\r\n");
	assert_qp("From me\nFrom\nFroM x\n", "=46rom me\r\nFrom\r\nFroM x\r\n");
	assert_qp("\n\n", "\r\n\r\n");

	/* 76 characters fit a line; 77 take a soft break after 75. */
	memset(in, 'a', 76);
	in[76] = '\0';
	snprintf(expect, sizeof(expect), "%s\r\n", in);
	in[76] = '\n';
	in[77] = '\0';
	assert_qp(in, expect);
	memset(in, 'a', 77);
	in[77] = '\n';
	in[78] = '\0';
	memset(expect, 'a', 75);
	strcpy(expect + 75, "=\r\naa\r\n");
	assert_qp(in, expect);

	/* An escape is never split: 25 escapes fill 75 columns, the 26th
	 * goes after a soft break. */
	in[0] = '\0';
	for (int i = 0; i < 26; i++)
		strcat(in, "=");
	strcat(in, "\n");
	expect[0] = '\0';
	for (int i = 0; i < 25; i++)
		strcat(expect, "=3D");
	strcat(expect, "=\r\n=3D\r\n");
	assert_qp(in, expect);

	/* A '.' or "From " that a soft break puts first is escaped too;
	 * so is a space that would end a soft-broken line's last part. */
	memset(in, 'a', 75);
	strcpy(in + 75, ".b\n");
	memset(expect, 'a', 75);
	strcpy(expect + 75, "=\r\n=2Eb\r\n");
	assert_qp(in, expect);
	memset(in, 'a', 75);
	strcpy(in + 75, ".\n");
	memset(expect, 'a', 75);
	strcpy(expect + 75, ".\r\n");      /* fits: no break */
	assert_qp(in, expect);
	memset(in, 'a', 75);
	strcpy(in + 75, "From x\n");
	memset(expect, 'a', 75);
	strcpy(expect + 75, "=\r\n=46rom x\r\n");
	assert_qp(in, expect);
	memset(in, 'a', 75);
	strcpy(in + 75, "b \n");
	memset(expect, 'a', 75);
	strcpy(expect + 75, "=\r\nb=20\r\n");
	assert_qp(in, expect);
}

/* Random lines: line limits, no trailing white space, no lone '.',
 * no "From ", and decoding gives the input back. */
static void
test_qp_round_trip(void **state)
{
	static const char *const pieces[] = {
		"a", "b", " ", "\t", "=", ".", "From ", "\xc3\xa9", "\xe7\xbf\xbb",
		"\x7f", "\xff", "\n", "\n", "\r\n", "F",
	};
	static char in[1024], norm[1024], dec[4096];
	uint32_t seed = 12345;

	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		size_t n = 0, m = 0, olen = 0;
		size_t want = (size_t)(iter % 300);
		char *out, *p, *eol;
		long dl;

		while (n < want) {
			const char *pc;

			seed = seed * 1103515245u + 12345u;
			pc = pieces[(seed >> 16) % (sizeof(pieces) /
			    sizeof(pieces[0]))];
			memcpy(in + n, pc, strlen(pc));
			n += strlen(pc);
		}
		/* What comes back: LF lines, a final LF kept or not. */
		for (size_t i = 0; i < n; i++)
			if (!(in[i] == '\r' && i + 1 < n && in[i + 1] == '\n'))
				norm[m++] = in[i];
		out = mail_qp_encode(in, n, &olen);
		assert_non_null(out);
		assert_int_equal(strlen(out), olen);
		for (p = out; *p != '\0'; p = eol + 2) {
			size_t l;

			/* The last line may have no CRLF. */
			eol = strstr(p, "\r\n");
			l = eol ? (size_t)(eol - p) : strlen(p);
			assert_null(memchr(p, '\n', l));
			assert_true(l <= 76);
			if (l > 0)
				assert_true(p[l - 1] != ' ' && p[l - 1] != '\t');
			assert_false(l == 1 && p[0] == '.');
			assert_false(l >= 5 && memcmp(p, "From ", 5) == 0);
			if (eol == NULL)
				break;
		}
		dl = qp_decode(out, olen, dec, sizeof(dec));
		assert_true(dl >= 0);
		assert_int_equal((size_t)dl, m);
		assert_memory_equal(dec, norm, m);
		free(out);
	}
}

/* ---- template errors ---- */

struct bad_tmpl {
	const char *text;
	const char *why;        /* after "PATH:" */
};

static void
test_template_errors(void **state)
{
	static const struct bad_tmpl bad[] = {
		{ "X-Mailer: me\nSubject: {{token_ref}}\n\nhi\n",
		    "1: only Subject may be set" },
		{ "# c\nSubject: {{token_ref}}\nFrom: a@b\n\nhi\n",
		    "3: only Subject may be set" },
		{ "Comment: {{token_ref}}\n\nhi\n",
		    "1: only Subject may be set" },
		{ "Subject: {{token_ref}}\n\nHello\n\n{{nope}}\n",
		    "5: unknown placeholder {{nope}}" },
		{ "Subject: {{token_ref}} {{Order_ID}}\n\nhi\n",
		    "1: unknown placeholder {{Order_ID}}" },
		{ "Subject: {{token_ref}}\n\nhi {{ order_id }}\n",
		    "3: unknown placeholder {{ order_id }}" },
		{ "Subject: {{token_ref}}\n\nhi\nthere {{order_id\n}}\n",
		    "4: unterminated {{" },
		{ "Subject: {{token_ref}} {{order_id\n\nhi\n",
		    "1: unterminated {{" },
		{ "Subject: {{token_ref}}\n", " no empty line after the header" },
		{ "Subject: {{token_ref}}\nhello there\n",
		    "2: not a header line" },
		{ "Subject: {{token_ref}}\n\n", " empty body" },
		{ "Subject: {{token_ref}}\n\n \n\n", " empty body" },
		{ "# only a comment\n\nbody\n", "2: no Subject" },
		{ "Subject: Please confirm {{order_id}}\n\nbody\n",
		    "1: Subject must contain {{token_ref}}" },
		{ "Subject: {{token_ref}}\n# late\n\nbody\n",
		    "2: comments only before the header" },
		{ "Subject: {{token_ref}}\nSubject: again\n\nbody\n",
		    "2: Subject set twice" },
		{ " folded\nSubject: {{token_ref}}\n\nbody\n",
		    "1: continuation line before any header line" },
		{ "Subject: {{token_ref}}\n\nbad \xc3\x28 utf-8\n",
		    "3: not UTF-8" },
		{ "Subject: {{token_ref}}\n\nbad \xed\xa0\x80 surrogate\n",
		    "3: not UTF-8" },
		{ "Subject: {{token_ref}}\n\nbell \a\n",
		    "3: control character 0x07" },
		{ "Subject: {{token_ref}}\r\rmore\n\nbody\n",
		    "1: control character 0x0d" },
	};
	static char big[MAIL_TEMPLATE_MAX + 16];
	struct mail_template *t = NULL;
	char err[512], expect[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *path = write_tmpl(bad[i].text, strlen(bad[i].text));

		snprintf(err, sizeof(err), "untouched");
		assert_int_equal(mail_template_load(path, &t, err, sizeof(err)),
		    -EINVAL);
		assert_null(t);
		snprintf(expect, sizeof(expect), "%s:%s", path, bad[i].why);
		if (strncmp(err, expect, strlen(expect)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err,
			    expect);
	}

	/* A NUL byte, and a file one byte too large. */
	{
		static const char nul[] = "Subject: {{token_ref}}\n\na\0b\n";
		const char *path = write_tmpl(nul, sizeof(nul) - 1);

		assert_int_equal(mail_template_load(path, &t, err, sizeof(err)),
		    -EINVAL);
		assert_non_null(strstr(err, ": NUL byte"));
	}
	strcpy(big, "Subject: {{token_ref}}\n\n");
	memset(big + strlen(big), 'x', MAIL_TEMPLATE_MAX - strlen(big) - 1);
	big[MAIL_TEMPLATE_MAX - 1] = '\n';
	{
		const char *path = write_tmpl(big, MAIL_TEMPLATE_MAX);

		/* At the limit: fine. */
		assert_int_equal(mail_template_load(path, &t, err, sizeof(err)),
		    0);
		mail_template_free(t);
		t = NULL;
		path = write_tmpl(big, MAIL_TEMPLATE_MAX + 1);
		assert_int_equal(mail_template_load(path, &t, err, sizeof(err)),
		    -EINVAL);
		assert_non_null(strstr(err, ": larger than 65536 bytes"));
		assert_null(t);
	}

	/* A missing file is an errno, with the path. */
	assert_int_equal(mail_template_load("/nonexistent/t.tmpl", &t, err,
	    sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/t.tmpl: No such file or directory");
	/* No room for the reason is fine. */
	assert_int_equal(mail_template_load(write_tmpl("x\n", 2), &t, NULL, 0),
	    -EINVAL);
	assert_null(t);
}

/* CRLF lines, a BOM, a folded Subject, a lowercase name, TABs. */
static void
test_template_forms(void **state)
{
	struct mail_template *t;
	static struct msg m;

	(void)state;
	t = load_text("\xef\xbb\xbf# comment\r\n"
	    "#\r\n"
	    "subject:\tOrder {{order_id}}\r\n"
	    " \t(ref {{token_ref}})  \r\n"
	    "\r\n"
	    "# not a comment here\r\n"
	    "Subject: neither is this\r\n"
	    "\tindented {{amount}}");
	compose_ok(t, &opts0, &vars0, &m);
	assert_string_equal(field(&m, "Subject"),
	    "Order 42  (ref c-" TOKEN ")");
	assert_string_equal(m.body, "# not a comment here\n"
	    "Subject: neither is this\n"
	    "\tindented 12.34 EUR\n");
	mail_template_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_file_is_default),
		cmocka_unit_test(test_shipped_file_composes),
		cmocka_unit_test(test_compose_full),
		cmocka_unit_test(test_from_forms),
		cmocka_unit_test(test_japanese),
		cmocka_unit_test(test_subject_folding),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_long_note),
		cmocka_unit_test(test_numbers_and_dates),
		cmocka_unit_test(test_qp_cases),
		cmocka_unit_test(test_qp_round_trip),
		cmocka_unit_test(test_template_errors),
		cmocka_unit_test(test_template_forms),
	};

	return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
