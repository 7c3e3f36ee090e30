/* SPDX-License-Identifier: ISC */
/* faxdoc.c -- the card page: its text, rendered and T.4-encoded in locked
 * memory */

/*
 * The text is plain ASCII apart from what the fields bring (a holder's
 * name may be UTF-8), so it survives any font and OCR on the provider's
 * side. Labels are padded to one column so the values line up in the
 * monospace page font.
 *
 * Every buffer that holds the page's text or image comes from secmem: the
 * lines from the secure heap, the bitmap and the encodings from
 * secmem_pages_alloc (too large for the heap). The one scratch buffer the
 * encoder writes into is sized for any page and reused for both
 * encodings; each encoding is copied into a block of its exact size.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/macro.h"
#include "vault/faxdoc.h"
#include "vault/secmem.h"

/* Width of the label column, in characters (the longest label and two). */
#define FAX_CARD_LABEL_W 16
#define FAX_CARD_HEADING "CARD PAYMENT DETAILS - CONFIDENTIAL"
#define FAX_CARD_FOOTER "Destroy this page after the charge is made."

/* The page's lines as they are being written. */
struct fax_lines {
	char (*line)[FAX_CARD_LINE_LEN];
	size_t n, max;
	int err;
};

/* Bytes in the UTF-8 sequence a lead byte starts; 1 for anything else. */
static size_t
utf8_seq_len(unsigned char c)
{
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 1;
}

/*
 * LINE holds the first LEN bytes of a longer text: drop a character the
 * cut split in two, so the line ends at a character boundary.
 */
static void
utf8_trim_cut(char *line, size_t len)
{
	size_t start = len;

	while (start > 0 && ((unsigned char)line[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return; /* no lead byte: not UTF-8; the renderer refuses it */
	start--;
	if (((unsigned char)line[start] & 0xc0) == 0xc0 &&
	    len - start < utf8_seq_len((unsigned char)line[start]))
		line[start] = '\0';
}

/* The next line, empty; NULL (and the error set) if the array is full. */
static char *
lines_next(struct fax_lines *l)
{
	char *s;

	if (l->err)
		return NULL;
	if (l->n >= l->max) {
		l->err = -EINVAL;
		return NULL;
	}
	s = l->line[l->n++];
	s[0] = '\0';
	return s;
}

/* Append formatted text to LINE, cut at a character boundary. */
static void _printf_(2, 3)
line_add(char *line, const char *fmt, ...)
{
	size_t len = strlen(line);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line + len, FAX_CARD_LINE_LEN - len, fmt, ap);
	va_end(ap);
	if (n < 0)
		line[len] = '\0';
	else if ((size_t)n >= FAX_CARD_LINE_LEN - len)
		utf8_trim_cut(line, FAX_CARD_LINE_LEN - 1);
}

static void
lines_text(struct fax_lines *l, const char *text)
{
	char *s = lines_next(l);

	if (s)
		line_add(s, "%s", text);
}

static void
lines_field(struct fax_lines *l, const char *label, const char *value)
{
	char *s = lines_next(l);

	if (s)
		line_add(s, "%-*s%s", FAX_CARD_LABEL_W, label, value);
}

static void
lines_field_u64(struct fax_lines *l, const char *label, uint64_t value)
{
	char *s = lines_next(l);

	if (s)
		line_add(s, "%-*s%" PRIu64, FAX_CARD_LABEL_W, label, value);
}

/* The card number in groups of four digits, written straight to the line. */
static void
lines_number(struct fax_lines *l, const char *number)
{
	char *s = lines_next(l);
	size_t len, i;

	if (!s)
		return;
	line_add(s, "%-*s", FAX_CARD_LABEL_W, "Card number:");
	len = strlen(s);
	for (i = 0; number[i] && len + 2 < FAX_CARD_LINE_LEN; i++) {
		if (i > 0 && i % 4 == 0)
			s[len++] = ' ';
		s[len++] = number[i];
	}
	s[len] = '\0';
}

static bool
digits_only(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
	}
	return true;
}

int
fax_card_lines(const struct fax_card_fields *f,
    char (*lines)[FAX_CARD_LINE_LEN], size_t max)
{
	struct fax_lines l = {.line = lines, .max = max};
	char date[40];
	char *s;
	struct tm tm;
	time_t t;

	if (!f || !lines || !f->broker_name || !f->broker_ident ||
	    !f->provider_id || !f->provider_name || !f->fax_ref ||
	    !f->service_name || !f->amount || !f->holder || !f->number)
		return -EINVAL;
	if (!digits_only(f->number))
		return -EINVAL;
	t = (time_t)f->time_unix;
	if ((int64_t)t != f->time_unix || !gmtime_r(&t, &tm) ||
	    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		return -EINVAL;

	lines_field(&l, "From:", f->broker_name);
	if (f->broker_ident[0])
		lines_field(&l, "Fax ident:", f->broker_ident);
	lines_field(&l, "Date:", date);
	lines_text(&l, "");
	lines_text(&l, FAX_CARD_HEADING);
	lines_text(&l, "");
	lines_field(&l, "Provider:", f->provider_name);
	lines_field(&l, "Provider ID:", f->provider_id);
	lines_field_u64(&l, "Order:", f->order_id);
	lines_field(&l, "Fax reference:", f->fax_ref);
	lines_field(&l, "Service:", f->service_name);
	lines_field_u64(&l, "Quantity:", f->quantity);
	lines_field(&l, "Amount:", f->amount);
	lines_text(&l, "");
	lines_field(&l, "Cardholder:", f->holder);
	lines_number(&l, f->number);
	if ((s = lines_next(&l)))
		line_add(s, "%-*s%02u/%04u", FAX_CARD_LABEL_W, "Expiry:",
		    f->exp_month, f->exp_year);
	lines_text(&l, "");
	lines_text(&l, FAX_CARD_FOOTER);

	if (l.err) {
		OPENSSL_cleanse(lines, l.n * sizeof(*lines));
		return l.err;
	}
	return (int)l.n;
}

/*
 * The scratch buffer's first size. A text page encodes to some tens of KB;
 * the worst case (fax_page_encoded_max(), megabytes) is allocated only for
 * a page that does not fit, since locking and wiping it costs more than
 * rendering and encoding the page.
 */
#define DOC_SCRATCH_FIRST (256u * 1024u)

/* Encode BITMAP into *SCRATCH (grown to the worst case if the page does
 * not fit), then into an exact-size locked block. */
static int
doc_encode(const uint8_t *bitmap, int compression, uint8_t **scratch,
    size_t *scratch_size, uint8_t **ret_buf, size_t *ret_len)
{
	uint8_t *buf;
	size_t len = 0;
	int r;

	r = fax_page_encode(bitmap, compression, *scratch, *scratch_size, &len);
	if (r == -ENOSPC && *scratch_size < fax_page_encoded_max()) {
		/* Nothing was written: the small buffer goes as it is. */
		secmem_pages_free(*scratch);
		*scratch_size = fax_page_encoded_max();
		*scratch = secmem_pages_alloc(*scratch_size);
		if (!*scratch)
			return -ENOMEM;
		r = fax_page_encode(bitmap, compression, *scratch,
		    *scratch_size, &len);
	}
	if (r < 0)
		return r;
	buf = secmem_pages_alloc(len);
	if (buf)
		memcpy(buf, *scratch, len);
	OPENSSL_cleanse(*scratch, len);
	if (!buf)
		return -ENOMEM;
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int
fax_doc_compose(const struct fax_page_opts *o,
    const struct fax_card_fields *f, struct fax_doc **ret_doc)
{
	char (*lines)[FAX_CARD_LINE_LEN] = NULL;
	const char *ptrs[FAX_CARD_LINES_MAX];
	uint8_t *bitmap = NULL, *scratch = NULL;
	struct fax_doc *d = NULL;
	size_t scratch_size = DOC_SCRATCH_FIRST;
	int n, r;

	if (!f || !ret_doc)
		return -EINVAL;
	lines = secmem_zalloc(FAX_CARD_LINES_MAX * sizeof(*lines));
	bitmap = secmem_pages_alloc(FAX_PAGE_BYTES);
	if (!lines || !bitmap) {
		r = -ENOMEM;
		goto out;
	}
	n = fax_card_lines(f, lines, FAX_CARD_LINES_MAX);
	if (n < 0) {
		r = n;
		goto out;
	}
	for (int i = 0; i < n; i++)
		ptrs[i] = lines[i];
	r = fax_page_render(o, ptrs, (size_t)n, bitmap, FAX_PAGE_BYTES);
	/* The text is in the bitmap now (or not needed): wipe it at once. */
	secmem_free(lines);
	lines = NULL;
	if (r < 0)
		goto out;

	scratch = secmem_pages_alloc(scratch_size);
	d = secmem_zalloc(sizeof(*d));
	if (!scratch || !d) {
		r = -ENOMEM;
		goto out;
	}
	r = doc_encode(bitmap, FAX_T4_1D, &scratch, &scratch_size, &d->t4_1d,
	    &d->len_1d);
	if (r == 0)
		r = doc_encode(bitmap, FAX_T4_2D, &scratch, &scratch_size,
		    &d->t4_2d, &d->len_2d);
	if (r < 0)
		goto out;
	d->time_unix = f->time_unix;
	*ret_doc = TAKE_PTR(d);
	r = 0;
out:
	fax_doc_free(d);
	secmem_pages_free(scratch);
	secmem_pages_free(bitmap);
	secmem_free(lines);
	return r;
}

void
fax_doc_free(struct fax_doc *d)
{
	if (!d)
		return;
	/* secmem_pages_free and secmem_free wipe what they release. */
	secmem_pages_free(d->t4_1d);
	secmem_pages_free(d->t4_2d);
	secmem_free(d);
}
