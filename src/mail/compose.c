/* SPDX-License-Identifier: ISC */
/* compose.c -- the confirmation message: template loader, RFC 5322/MIME composer */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/macro.h"
#include "mail/compose.h"
#include "mail/reply.h"

#define TMPL_HDR_LINE_MAX 998   /* a header or comment line of the template */
#define HDR_FOLD 78             /* RFC 5322 2.1.1: SHOULD */
#define HDR_LINE_MAX 998        /* RFC 5322 2.1.1: MUST */
#define EW_MAX 75               /* RFC 2047 2: an encoded-word */
#define EW_OVERHEAD 12          /* "=?UTF-8?B?" "?=" */
#define QP_LINE_MAX 76          /* RFC 2045 6.7 (5) */
#define PH_NAME_SHOWN 32        /* of an unknown placeholder, in errors */

const char mail_template_default_text[] =
	"# The message twinrouted sends a member to approve an order.\n"
	"#\n"
	"# Lines starting with '#' before the header are comments. The header may\n"
	"# set only the Subject (everything else is generated); the subject must\n"
	"# contain {{token_ref}}, which matches a reply to its order when a mail\n"
	"# client drops In-Reply-To. An empty line ends the header; the body\n"
	"# follows. The file is UTF-8, at most 64 KiB.\n"
	"#\n"
	"# Placeholders, in the subject and the body:\n"
	"#   {{order_id}}         the order number\n"
	"#   {{member_number}}    the member's number\n"
	"#   {{member_name}}      the member's name\n"
	"#   {{service_name}}     the service ordered\n"
	"#   {{provider_name}}    the provider of the service\n"
	"#   {{quantity}}         how many\n"
	"#   {{amount}}           the total with its currency, \"12.34 EUR\"\n"
	"#   {{card_brand}}       the card's brand\n"
	"#   {{card_last4}}       the last four digits of the card\n"
	"#   {{note}}             the member's note (empty when none)\n"
	"#   {{deadline}}         the time it expires, \"2026-11-28 14:05 UTC\"\n"
	"#   {{confirm_address}}  the address that approves (the Reply-To)\n"
	"#   {{cancel_address}}   the address that cancels\n"
	"#   {{token_ref}}        the reference of this request, \"c-...\"\n"
	"#   {{broker_name}}      the name of this service\n"
	"Subject: Please confirm order {{order_id}} (ref {{token_ref}})\n"
	"\n"
	"Hello {{member_name}},\n"
	"\n"
	"{{broker_name}} has received an order in your name (member number\n"
	"{{member_number}}). It needs your approval before it goes ahead:\n"
	"\n"
	"  Order:     {{order_id}}\n"
	"  Service:   {{service_name}}\n"
	"  Provider:  {{provider_name}}\n"
	"  Quantity:  {{quantity}}\n"
	"  Amount:    {{amount}}\n"
	"  Card:      {{card_brand}} ending in {{card_last4}}\n"
	"  Note:      {{note}}\n"
	"\n"
	"Please answer before {{deadline}}.\n"
	"\n"
	"To approve the order, reply to this message from the address it was\n"
	"sent to; what you write in the reply does not matter. The reply-to\n"
	"address is\n"
	"  {{confirm_address}}\n"
	"\n"
	"To cancel the order, send a message to\n"
	"  {{cancel_address}}\n"
	"\n"
	"Nothing happens unless you reply: if we have no answer from you by the\n"
	"deadline, the order expires and is not placed.\n"
	"\n"
	"Thank you,\n"
	"{{broker_name}}\n"
	"\n"
	"Reference: {{token_ref}}\n"
    ;

/* The placeholders, in the order of the template's comment. */
enum ph {
	PH_ORDER_ID,
	PH_MEMBER_NUMBER,
	PH_MEMBER_NAME,
	PH_SERVICE_NAME,
	PH_PROVIDER_NAME,
	PH_QUANTITY,
	PH_AMOUNT,
	PH_CARD_BRAND,
	PH_CARD_LAST4,
	PH_NOTE,
	PH_DEADLINE,
	PH_CONFIRM_ADDRESS,
	PH_CANCEL_ADDRESS,
	PH_TOKEN_REF,
	PH_BROKER_NAME,
	PH__MAX,
};

static const char *const ph_names[PH__MAX] = {
	[PH_ORDER_ID] = "order_id",
	[PH_MEMBER_NUMBER] = "member_number",
	[PH_MEMBER_NAME] = "member_name",
	[PH_SERVICE_NAME] = "service_name",
	[PH_PROVIDER_NAME] = "provider_name",
	[PH_QUANTITY] = "quantity",
	[PH_AMOUNT] = "amount",
	[PH_CARD_BRAND] = "card_brand",
	[PH_CARD_LAST4] = "card_last4",
	[PH_NOTE] = "note",
	[PH_DEADLINE] = "deadline",
	[PH_CONFIRM_ADDRESS] = "confirm_address",
	[PH_CANCEL_ADDRESS] = "cancel_address",
	[PH_TOKEN_REF] = "token_ref",
	[PH_BROKER_NAME] = "broker_name",
};

struct mail_template {
	char *subject;          /* unfolded, trimmed; may hold TABs */
	char *body;             /* LF line ends */
	size_t body_len;
};

/* A growing output buffer with a sticky error and a size limit. */
struct obuf {
	char *p;
	size_t len, cap, max;
	int ret;
};

static void
ob_put(struct obuf *b, const void *s, size_t n)
{
	size_t cap;
	char *p;

	if (b->ret != 0)
		return;
	if (n > b->max - b->len) {
		b->ret = -EMSGSIZE;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->ret = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
ob_puts(struct obuf *b, const char *s)
{
	ob_put(b, s, strlen(s));
}

static void
ob_putc(struct obuf *b, char c)
{
	ob_put(b, &c, 1);
}

/* Hand the buffer out (an empty string when nothing was put), or the
 * sticky error. */
static int
ob_take(struct obuf *b, char **ret, size_t *ret_len)
{
	int r;

	ob_put(b, "", 0);
	if ((r = b->ret) != 0) {
		free(b->p);
		*b = (struct obuf){ 0 };
		return r;
	}
	*ret = b->p;
	if (ret_len)
		*ret_len = b->len;
	*b = (struct obuf){ 0 };
	return 0;
}

static void
ob_free(struct obuf *b)
{
	free(b->p);
	b->p = NULL;
}

/*
 * Length of the well-formed UTF-8 sequence at s (1 to 4), or 0 for an
 * ill-formed one: overlong forms, surrogates and code points past
 * U+10FFFF are ill-formed (RFC 3629 4).
 */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* Length of the character starting at a lead byte of valid UTF-8. */
static size_t
utf8_char_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c < 0xe0)
		return 2;
	if (c < 0xf0)
		return 3;
	return 4;
}

/*
 * A value as it goes into the message: C0 controls (CR and LF among
 * them), DEL and C1 controls become spaces; each byte that is not part of
 * well-formed UTF-8 becomes U+FFFD.
 */
static void
ob_put_clean(struct obuf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), k;

	while (n > 0) {
		k = utf8_seq(s, n);
		if (k == 0) {
			ob_put(b, "\xef\xbf\xbd", 3);
			k = 1;
		} else if ((k == 1 && (s[0] < 0x20 || s[0] == 0x7f)) ||
		    (k == 2 && s[0] == 0xc2 && s[1] < 0xa0))
			ob_putc(b, ' ');
		else
			ob_put(b, s, k);
		s += k;
		n -= k;
	}
}

static int
ph_lookup(const char *name, size_t n)
{
	for (int i = 0; i < PH__MAX; i++)
		if (strlen(ph_names[i]) == n && memcmp(ph_names[i], name, n) == 0)
			return i;
	return -1;
}

/* ---- template ---- */

struct tparse {
	const char *file;
	char *err;
	size_t err_size;
};

static int _printf_(3, 4)
tp_error(struct tparse *tp, unsigned line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (tp->err == NULL || tp->err_size == 0)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(tp->err, tp->err_size, "%s:%u: %s", tp->file, line, msg);
	else
		snprintf(tp->err, tp->err_size, "%s: %s", tp->file, msg);
	return -EINVAL;
}

/* Every byte of a line: UTF-8, no control other than TAB. */
static int
tp_check_text(struct tparse *tp, unsigned line, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;

	while (i < n) {
		k = utf8_seq(s + i, n - i);
		if (k == 0)
			return tp_error(tp, line, "not UTF-8");
		if (k == 1 && ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f))
			return tp_error(tp, line, "control character 0x%02x",
			    s[i]);
		i += k;
	}
	return 0;
}

/* Every {{name}} of a line is known and closed on that line. */
static int
tp_check_placeholders(struct tparse *tp, unsigned line, const char *s,
    size_t n)
{
	const char *p = s, *end = s + n, *open, *close;
	size_t len;

	while ((open = memmem(p, (size_t)(end - p), "{{", 2)) != NULL) {
		open += 2;
		close = memmem(open, (size_t)(end - open), "}}", 2);
		if (close == NULL)
			return tp_error(tp, line, "unterminated {{");
		len = (size_t)(close - open);
		if (ph_lookup(open, len) < 0)
			return tp_error(tp, line, "unknown placeholder {{%.*s}}%s",
			    (int)MIN(len, PH_NAME_SHOWN), open,
			    len > PH_NAME_SHOWN ? " (cut)" : "");
		p = close + 2;
	}
	return 0;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
all_wsp(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_wsp(s[i]) && s[i] != '\n')
			return false;
	return true;
}

static int
tmpl_parse(struct tparse *tp, const char *text, size_t len,
    struct mail_template **ret)
{
	struct obuf subj = { .max = MAIL_TEMPLATE_MAX }, body = {
		.max = MAIL_TEMPLATE_MAX };
	struct mail_template *t = NULL;
	const char *p = text, *end = text + len, *eol, *next, *colon, *v;
	unsigned line = 0, subj_line = 0;
	bool in_header = false, blank = false;
	size_t n;
	int r;

	if (len > MAIL_TEMPLATE_MAX)
		return tp_error(tp, 0, "larger than %u bytes",
		    (unsigned)MAIL_TEMPLATE_MAX);
	if (memchr(text, '\0', len) != NULL)
		return tp_error(tp, 0, "NUL byte");
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;

	/* Comments, then the header, up to the empty line. */
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		next = eol ? eol + 1 : end;
		if (eol == NULL)
			eol = end;
		if (eol > p && eol[-1] == '\r')
			eol--;
		n = (size_t)(eol - p);
		line++;
		if (n > TMPL_HDR_LINE_MAX) {
			r = tp_error(tp, line, "line longer than %u bytes",
			    TMPL_HDR_LINE_MAX);
			goto out;
		}
		if ((r = tp_check_text(tp, line, p, n)) < 0)
			goto out;
		if (n == 0) {
			p = next;
			blank = true;
			break;
		}
		if (p[0] == '#') {
			if (in_header) {
				r = tp_error(tp, line, "comments only before the header");
				goto out;
			}
		} else if (is_wsp(p[0])) {
			/* A folded Subject goes on (RFC 5322 2.2.3). */
			if (!in_header) {
				r = tp_error(tp, line, "continuation line before any header line");
				goto out;
			}
			if ((r = tp_check_placeholders(tp, line, p, n)) < 0)
				goto out;
			ob_put(&subj, p, n);
		} else {
			colon = memchr(p, ':', n);
			if (colon == NULL) {
				r = tp_error(tp, line, "not a header line (an empty line must end the header)");
				goto out;
			}
			if ((size_t)(colon - p) != 7 ||
			    strncasecmp(p, "Subject", 7) != 0) {
				r = tp_error(tp, line, "only Subject may be set");
				goto out;
			}
			if (subj_line > 0) {
				r = tp_error(tp, line, "Subject set twice");
				goto out;
			}
			for (v = colon + 1; v < eol && is_wsp(*v); v++)
				;
			if ((r = tp_check_placeholders(tp, line, v,
			    (size_t)(eol - v))) < 0)
				goto out;
			ob_put(&subj, v, (size_t)(eol - v));
			subj_line = line;
			in_header = true;
		}
		p = next;
	}
	if (!blank) {
		r = tp_error(tp, 0, "no empty line after the header");
		goto out;
	}
	if (subj_line == 0) {
		r = tp_error(tp, line, "no Subject before the empty line");
		goto out;
	}
	while (subj.len > 0 && is_wsp(subj.p[subj.len - 1]))
		subj.p[--subj.len] = '\0';
	if (subj.ret == 0 && strstr(subj.p, "{{token_ref}}") == NULL) {
		r = tp_error(tp, subj_line, "Subject must contain {{token_ref}}");
		goto out;
	}

	/* The body, with LF line ends. */
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		next = eol ? eol + 1 : end;
		if (eol == NULL)
			eol = end;
		if (eol > p && eol[-1] == '\r')
			eol--;
		n = (size_t)(eol - p);
		line++;
		if ((r = tp_check_text(tp, line, p, n)) < 0 ||
		    (r = tp_check_placeholders(tp, line, p, n)) < 0)
			goto out;
		ob_put(&body, p, n);
		ob_putc(&body, '\n');
		p = next;
	}
	if (body.len == 0 || all_wsp(body.p, body.len)) {
		r = tp_error(tp, 0, "empty body");
		goto out;
	}

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = ob_take(&subj, &t->subject, NULL)) < 0 ||
	    (r = ob_take(&body, &t->body, &t->body_len)) < 0) {
		/* Cannot be -EMSGSIZE: both are shorter than the file. */
		mail_template_free(t);
		goto out;
	}
	*ret = t;
	r = 0;
out:
	ob_free(&subj);
	ob_free(&body);
	return r;
}

int
mail_template_load(const char *path, struct mail_template **ret, char *err,
    size_t err_size)
{
	struct tparse tp = { .file = path, .err = err, .err_size = err_size };
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r;

	if (err != NULL && err_size > 0)
		err[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		r = -errno;
		goto fail;
	}
	/* One byte more than allowed tells a file too large. */
	if ((buf = malloc(MAIL_TEMPLATE_MAX + 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (len < MAIL_TEMPLATE_MAX + 1) {
		n = read(fd, buf + len, MAIL_TEMPLATE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			close(fd);
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	return tmpl_parse(&tp, buf, len, ret);
fail:
	if (err != NULL && err_size > 0)
		snprintf(err, err_size, "%s: %s", path, strerror(-r));
	return r;
}

int
mail_template_default(struct mail_template **ret)
{
	struct tparse tp = { .file = "(default template)" };
	/* The tests check the text: only memory can fail. */
	return tmpl_parse(&tp, mail_template_default_text,
	    sizeof(mail_template_default_text) - 1, ret);
}

void
mail_template_free(struct mail_template *t)
{
	if (t == NULL)
		return;
	free(t->subject);
	free(t->body);
	free(t);
}

/* ---- quoted-printable (RFC 2045 6.7) ---- */

static const char hex_upper[] = "0123456789ABCDEF";

/* One encoded line (no line break in s) and its CRLF when hard. */
static void
qp_line(struct obuf *b, const unsigned char *s, size_t n, bool hard)
{
	size_t col = 0, w, o = 0;
	char tok[3], out[256];       /* staged: one ob_put per 256 bytes */

	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		bool last = i + 1 == n;

		for (int pass = 0; pass < 2; pass++) {
			bool esc;

			if (c == '.' && col == 0)
				esc = true;     /* never a lone "." line */
			else if (c == 'F' && col == 0 && n - i >= 5 &&
			    memcmp(s + i, "From ", 5) == 0)
				esc = true;     /* nor an mbox "From " */
			else if (c == ' ' || c == '\t')
				esc = last;     /* trailing white space */
			else
				esc = c < 33 || c > 126 || c == '=';
			if (esc) {
				tok[0] = '=';
				tok[1] = hex_upper[c >> 4];
				tok[2] = hex_upper[c & 0xf];
				w = 3;
			} else {
				tok[0] = (char)c;
				w = 1;
			}
			/* Room for a soft break's '=' unless this ends the
			 * line; an escape is never split. */
			if (pass == 0 && col > 0 &&
			    col + w > (last ? QP_LINE_MAX : QP_LINE_MAX - 1)) {
				memcpy(out + o, "=\r\n", 3);
				o += 3;
				col = 0;
				continue;
			}
			break;
		}
		memcpy(out + o, tok, w);
		o += w;
		col += w;
		/* Room for a soft break and an escape: 6 bytes. */
		if (o > sizeof(out) - 6) {
			ob_put(b, out, o);
			o = 0;
		}
	}
	ob_put(b, out, o);
	if (hard)
		ob_put(b, "\r\n", 2);
}

static void
qp_put(struct obuf *b, const char *in, size_t len)
{
	const char *p = in, *end = in + len, *eol, *next;
	bool hard;

	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		hard = eol != NULL;
		next = hard ? eol + 1 : end;
		if (!hard)
			eol = end;
		else if (eol > p && eol[-1] == '\r')
			eol--;
		qp_line(b, (const unsigned char *)p, (size_t)(eol - p), hard);
		p = next;
	}
}

char *
mail_qp_encode(const char *in, size_t len, size_t *ret_len)
{
	struct obuf b = { .max = SIZE_MAX / 2 };
	char *out = NULL;

	if (len > SIZE_MAX / 8)
		return NULL;
	qp_put(&b, in, len);
	if (ob_take(&b, &out, ret_len) < 0)
		return NULL;
	return out;
}

/* ---- header fields ---- */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
ob_put_base64(struct obuf *b, const unsigned char *s, size_t n)
{
	char q[4];

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = b64_chars[v >> 18 & 0x3f];
		q[1] = b64_chars[v >> 12 & 0x3f];
		q[2] = i + 1 < n ? b64_chars[v >> 6 & 0x3f] : '=';
		q[3] = i + 2 < n ? b64_chars[v & 0x3f] : '=';
		ob_put(b, q, 4);
	}
}

/*
 * s (valid UTF-8) as RFC 2047 B encoded-words, each at most EW_MAX
 * characters and cut only between characters, separated by CRLF SPACE;
 * col is where the first starts. Returns the column after the last.
 */
static size_t
ob_put_encoded_words(struct obuf *b, const char *str, size_t n, size_t col)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t maxw, maxb, k, cl;
	bool first = true;

	while (n > 0) {
		/* Each word after the first on a line of its own. */
		if (!first || col + EW_OVERHEAD + 8 > HDR_FOLD) {
			ob_put(b, "\r\n ", 3);
			col = 1;
		}
		first = false;
		maxw = MIN(EW_MAX, HDR_FOLD - col);
		maxb = (maxw - EW_OVERHEAD) / 4 * 3;
		for (k = 0; k < n; k += cl) {
			cl = MIN(utf8_char_len(s[k]), n - k);
			if (k + cl > maxb)
				break;
		}
		ob_puts(b, "=?UTF-8?B?");
		ob_put_base64(b, s, k);
		ob_puts(b, "?=");
		col += EW_OVERHEAD + (k + 2) / 3 * 4;
		s += k;
		n -= k;
	}
	return col;
}

/*
 * "Name: value" folded before white space to keep lines within
 * HDR_FOLD. -E2BIG, with nothing put, when a line would still pass
 * HDR_LINE_MAX. value is printable ASCII without leading or trailing
 * white space.
 */
static int
ob_put_folded(struct obuf *b, const char *name, const char *value)
{
	const char *s = value, *e;
	size_t mark = b->len, col, n;

	ob_puts(b, name);
	ob_puts(b, ": ");
	col = strlen(name) + 2;
	while (*s != '\0') {
		for (e = s; *e == ' '; e++)
			;
		for (; *e != '\0' && *e != ' '; e++)
			;
		n = (size_t)(e - s);
		if (s != value && col + n > HDR_FOLD) {
			ob_put(b, "\r\n", 2);
			col = 0;
		}
		if (col + n > HDR_LINE_MAX) {
			if (b->ret == 0) {
				b->len = mark;
				b->p[mark] = '\0';
			}
			return -E2BIG;
		}
		ob_put(b, s, n);
		col += n;
		s = e;
	}
	ob_put(b, "\r\n", 2);
	return 0;
}

/* Printable ASCII, and nothing a reader could take for an
 * encoded-word. */
static bool
is_plain_ascii(const char *s)
{
	for (const char *p = s; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return strstr(s, "=?") == NULL;
}

/* RFC 5322 3.2.3 atext, or a space: a phrase of atoms. */
static bool
is_atom_phrase(const char *s)
{
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == ' ' ||
		    strchr("!#$%&'*+-/=?^_`{|}~", *p) != NULL))
			return false;
	return true;
}

static void
ob_put_subject(struct obuf *b, const char *subject)
{
	if (is_plain_ascii(subject) && ob_put_folded(b, "Subject",
	    subject) == 0)
		return;
	ob_puts(b, "Subject: ");
	ob_put_encoded_words(b, subject, strlen(subject), 9);
	ob_put(b, "\r\n", 2);
}

static int
ob_put_from(struct obuf *b, const char *name, const char *addr)
{
	struct obuf v = { .max = MAIL_MSG_MAX };
	size_t col;
	int r;

	if (*name == '\0') {
		ob_puts(b, "From: ");
		ob_puts(b, addr);
		ob_put(b, "\r\n", 2);
		return 0;
	}
	if (is_plain_ascii(name)) {
		if (is_atom_phrase(name))
			ob_puts(&v, name);
		else {
			ob_putc(&v, '"');
			for (const char *p = name; *p != '\0'; p++) {
				if (*p == '"' || *p == '\\')
					ob_putc(&v, '\\');
				ob_putc(&v, *p);
			}
			ob_putc(&v, '"');
		}
		ob_puts(&v, " <");
		ob_puts(&v, addr);
		ob_putc(&v, '>');
		if ((r = v.ret) == 0 && ob_put_folded(b, "From", v.p) == 0) {
			ob_free(&v);
			return 0;
		}
		ob_free(&v);
		if (r < 0)
			return r;
	}
	ob_puts(b, "From: ");
	col = ob_put_encoded_words(b, name, strlen(name), 6);
	if (col + 3 + strlen(addr) > HDR_FOLD)
		ob_put(b, "\r\n", 2);
	ob_puts(b, " <");
	ob_puts(b, addr);
	ob_puts(b, ">\r\n");
	return 0;
}

/* ---- values ---- */

/* An addr-spec we are willing to write in a header: printable ASCII
 * without white space, angle brackets, quotes, commas or parentheses,
 * one '@' with something on both sides. */
static bool
addr_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	size_t n = strlen(s);

	if (n == 0 || n > MAIL_ADDR_MAX || at == NULL || at == s || at[1] == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("<>\"(),;\\", *p))
			return false;
	return true;
}

static bool
domain_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return false;
	return true;
}

static bool
token_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7')))
			return false;
	return i == MAIL_TOKEN_LEN;
}

static const char wday_names[7][4] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
};
static const char month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static int
utc_tm(time_t t, struct tm *tm)
{
	if (gmtime_r(&t, tm) == NULL)
		return -EINVAL;
	if (tm->tm_year < 0 || tm->tm_year > 9999 - 1900 ||
	    tm->tm_wday < 0 || tm->tm_wday > 6 || tm->tm_mon < 0 ||
	    tm->tm_mon > 11)
		return -EINVAL;
	return 0;
}

/* "Sat, 28 Nov 2026 06:10:56 +0000" (RFC 5322 3.3), in English. */
static int
format_date(time_t t, char buf[64])
{
	struct tm tm;
	int r;

	if ((r = utc_tm(t, &tm)) < 0)
		return r;
	snprintf(buf, 64, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    wday_names[tm.tm_wday], tm.tm_mday, month_names[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return 0;
}

/* "2026-11-28 14:05 UTC" */
static int
format_deadline(time_t t, char buf[64])
{
	struct tm tm;
	int r;

	if ((r = utc_tm(t, &tm)) < 0)
		return r;
	snprintf(buf, 64, "%04d-%02d-%02d %02d:%02d UTC", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
	return 0;
}

struct values {
	char *v[PH__MAX];
};

static void
values_free(struct values *vals)
{
	for (int i = 0; i < PH__MAX; i++)
		free(vals->v[i]);
}

static int
values_set(struct values *vals, enum ph ph, const char *s)
{
	struct obuf b = { .max = 4 * MAIL_VALUE_MAX };

	if (strlen(s) > MAIL_VALUE_MAX)
		return -EINVAL;
	ob_put_clean(&b, s);
	return ob_take(&b, &vals->v[ph], NULL);
}

/* Cut trailing spaces; return past the leading ones. */
static char *
trim_spaces(char *s)
{
	char *e;

	s += strspn(s, " ");
	for (e = s + strlen(s); e > s && e[-1] == ' '; e--)
		;
	*e = '\0';
	return s;
}

/* Expand the placeholders of tmpl (checked at load time). */
static void
render(struct obuf *b, const char *tmpl, const struct values *vals)
{
	const char *p = tmpl, *open, *close;
	int ph;

	while ((open = strstr(p, "{{")) != NULL) {
		close = strstr(open + 2, "}}");
		if (close == NULL)
			break;
		ph = ph_lookup(open + 2, (size_t)(close - open - 2));
		if (ph < 0) {
			ob_put(b, p, (size_t)(open + 2 - p));
			p = open + 2;
			continue;
		}
		ob_put(b, p, (size_t)(open - p));
		ob_puts(b, vals->v[ph]);
		p = close + 2;
	}
	ob_puts(b, p);
}

int
mail_compose(const struct mail_template *t,
    const struct mail_compose_opts *opts, const struct mail_confirm_vars *v,
    char **ret_msg, size_t *ret_len)
{
	_cleanup_(values_free) struct values vals = { 0 };
	struct obuf subj = { .max = MAIL_MSG_MAX }, body = {
		.max = MAIL_MSG_MAX }, from = { .max = MAIL_MSG_MAX },
		msg = { .max = MAIL_MSG_MAX };
	char date[64], deadline[64], num[32], confirm[MAIL_ADDR_MAX + 1],
	    cancel[MAIL_ADDR_MAX + 1], ref[MAIL_TOKEN_LEN + 3];
	char *s, *subject, *from_name;
	int r, n;

	if (t == NULL || opts == NULL || v == NULL || ret_msg == NULL ||
	    ret_len == NULL || opts->from_addr == NULL ||
	    opts->from_name == NULL || opts->domain == NULL ||
	    opts->broker_name == NULL || v->member_number == NULL ||
	    v->member_name == NULL || v->member_email == NULL ||
	    v->service_name == NULL || v->provider_name == NULL ||
	    v->amount == NULL || v->card_brand == NULL ||
	    v->card_last4 == NULL || v->note == NULL || v->token == NULL)
		return -EINVAL;
	if (!addr_ok(opts->from_addr) || !addr_ok(v->member_email) ||
	    !domain_ok(opts->domain) || !token_ok(v->token))
		return -EINVAL;
	n = snprintf(confirm, sizeof(confirm), "confirm+%s@%s", v->token,
	    opts->domain);
	if (n < 0 || (size_t)n >= sizeof(confirm))
		return -EINVAL;
	n = snprintf(cancel, sizeof(cancel), "cancel+%s@%s", v->token,
	    opts->domain);
	if (n < 0 || (size_t)n >= sizeof(cancel))
		return -EINVAL;
	snprintf(ref, sizeof(ref), "c-%s", v->token);
	if ((r = format_date(opts->now, date)) < 0 ||
	    (r = format_deadline(v->deadline, deadline)) < 0)
		return r;

	snprintf(num, sizeof(num), "%" PRIu64, v->order_id);
	if ((r = values_set(&vals, PH_ORDER_ID, num)) < 0)
		return r;
	snprintf(num, sizeof(num), "%" PRIu32, v->quantity);
	if ((r = values_set(&vals, PH_QUANTITY, num)) < 0 ||
	    (r = values_set(&vals, PH_MEMBER_NUMBER, v->member_number)) < 0 ||
	    (r = values_set(&vals, PH_MEMBER_NAME, v->member_name)) < 0 ||
	    (r = values_set(&vals, PH_SERVICE_NAME, v->service_name)) < 0 ||
	    (r = values_set(&vals, PH_PROVIDER_NAME, v->provider_name)) < 0 ||
	    (r = values_set(&vals, PH_AMOUNT, v->amount)) < 0 ||
	    (r = values_set(&vals, PH_CARD_BRAND, v->card_brand)) < 0 ||
	    (r = values_set(&vals, PH_CARD_LAST4, v->card_last4)) < 0 ||
	    (r = values_set(&vals, PH_NOTE, v->note)) < 0 ||
	    (r = values_set(&vals, PH_DEADLINE, deadline)) < 0 ||
	    (r = values_set(&vals, PH_CONFIRM_ADDRESS, confirm)) < 0 ||
	    (r = values_set(&vals, PH_CANCEL_ADDRESS, cancel)) < 0 ||
	    (r = values_set(&vals, PH_TOKEN_REF, ref)) < 0 ||
	    (r = values_set(&vals, PH_BROKER_NAME, opts->broker_name)) < 0)
		return r;

	/* The subject on one line, trimmed; the body ending in a line
	 * break. */
	render(&subj, t->subject, &vals);
	ob_put(&subj, "", 0);
	if ((r = subj.ret) < 0)
		goto out;
	for (s = subj.p; *s != '\0'; s++)
		if (*s == '\t')
			*s = ' ';
	subject = trim_spaces(subj.p);
	render(&body, t->body, &vals);
	if (body.len == 0 || body.p[body.len - 1] != '\n')
		ob_putc(&body, '\n');
	ob_put_clean(&from, opts->from_name);
	ob_put(&from, "", 0);
	if ((r = body.ret) < 0 || (r = from.ret) < 0)
		goto out;
	from_name = trim_spaces(from.p);

	ob_puts(&msg, "Date: ");
	ob_puts(&msg, date);
	ob_put(&msg, "\r\n", 2);
	if ((r = ob_put_from(&msg, from_name, opts->from_addr)) < 0)
		goto out;
	ob_puts(&msg, "To: ");
	ob_puts(&msg, v->member_email);
	ob_puts(&msg, "\r\nReply-To: ");
	ob_puts(&msg, confirm);
	ob_put(&msg, "\r\n", 2);
	ob_put_subject(&msg, subject);
	ob_puts(&msg, "Message-ID: <");
	ob_puts(&msg, ref);
	ob_putc(&msg, '@');
	ob_puts(&msg, opts->domain);
	ob_puts(&msg, ">\r\n"
	    "Auto-Submitted: auto-generated\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n");
	qp_put(&msg, body.p, body.len);
	r = ob_take(&msg, ret_msg, ret_len);
out:
	ob_free(&subj);
	ob_free(&body);
	ob_free(&from);
	ob_free(&msg);
	return r;
}
