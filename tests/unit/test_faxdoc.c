/* SPDX-License-Identifier: ISC */
/* test_faxdoc.c -- unit tests for the card fax page, its locked memory, the
 * vault's FAX_PAGE operation and the fax-pagecheck tool */

/*
 * The page is checked at three levels: its text (fax_card_lines), its
 * encodings (fax_doc_compose against fax_page_encode of the same page,
 * and decoded back with spandsp's receiver), and end to end through a
 * real vault thread. The TIFF comparison of tests/tools/fax_pagecheck.c
 * is included here and run on G3 and G4 files written with libtiff.
 * Card numbers are the schemes' public test numbers.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <spandsp.h>
#include <tiffio.h>

#include "common/macro.h"
#include "fax/page.h"
#include "vault/card.h"
#include "vault/envelope.h"
#include "vault/faxdoc.h"
#include "vault/secmem.h"
#include "vault/vault.h"

#include "fax_decode.h"
#include "tmpdir.h"

#define FAX_PAGECHECK_NO_MAIN
#include "../tools/fax_pagecheck.c"

#define W FAX_PAGE_WIDTH
#define H FAX_PAGE_HEIGHT
#define VISA "4111111111111111"
#define MISSING_FONT "/nonexistent/fax/font.ttf"

/* 2026-11-28T09:15:02Z */
#define T_PAGE INT64_C(1795857302)
/* 2026-06-15T12:00:00Z: the vault's clock when the card is enrolled */
#define T0 ((time_t)1781524800)

static const struct fax_card_fields fields = {
	.broker_name = "twinroute",
	.broker_ident = "+49 30 1234567",
	.time_unix = T_PAGE,
	.provider_id = "prov-1",
	.provider_name = "Example Provider Ltd",
	.order_id = 12345,
	.fax_ref = "FX-ABCD-EFGH",
	.service_name = "Express laundry",
	.quantity = 3,
	.amount = "12.50 EUR",
	.holder = "Zed Testholder",
	.number = VISA,
	.exp_month = 12,
	.exp_year = 2029,
};

typedef char line_t[FAX_CARD_LINE_LEN];

static int
lines_of(const struct fax_card_fields *f, line_t *lines)
{
	memset(lines, 0x5a, FAX_CARD_LINES_MAX * sizeof(*lines));
	return fax_card_lines(f, lines, FAX_CARD_LINES_MAX);
}

/* The one line that starts with PREFIX; fails the test if none. */
static const char *
find_line(line_t *lines, int n, const char *prefix)
{
	const char *hit = NULL;

	for (int i = 0; i < n; i++) {
		if (strncmp(lines[i], prefix, strlen(prefix)) == 0) {
			assert_null(hit);
			hit = lines[i];
		}
	}
	if (!hit) {
		fail_msg("no line starts with \"%s\"", prefix);
		return "";
	}
	return hit;
}

static bool
utf8_valid(const char *s)
{
	const unsigned char *b = (const unsigned char *)s;

	if (!b)
		return false;
	while (*b) {
		size_t k = *b < 0x80 ? 1 : (*b & 0xe0) == 0xc0 ? 2 :
		    (*b & 0xf0) == 0xe0 ? 3 : (*b & 0xf8) == 0xf0 ? 4 : 0;

		if (k == 0)
			return false;
		for (size_t j = 1; j < k; j++) {
			if ((b[j] & 0xc0) != 0x80)
				return false;
		}
		b += k;
	}
	return true;
}

static uint8_t *
page_new(void)
{
	uint8_t *p = calloc(1, FAX_PAGE_BYTES);

	assert_non_null(p);
	return p;
}

/* Render the page of F the way fax_doc_compose does. */
static void
render(const struct fax_page_opts *o, const struct fax_card_fields *f,
    uint8_t *bitmap)
{
	line_t lines[FAX_CARD_LINES_MAX];
	const char *ptrs[FAX_CARD_LINES_MAX];
	int n = fax_card_lines(f, lines, FAX_CARD_LINES_MAX);

	assert_true(n > 0);
	for (int i = 0; i < n; i++)
		ptrs[i] = lines[i];
	assert_true(fax_page_render(o, ptrs, (size_t)n, bitmap,
	    FAX_PAGE_BYTES) >= 0);
}

/* Is the page holding P still mapped? (Read from /proc/self/maps.) */
static bool
mapped(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	unsigned long lo, hi;
	bool found = false;
	char line[512];
	FILE *fp = fopen("/proc/self/maps", "r");

	assert_non_null(fp);
	while (!found && fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi)
			found = true;
	}
	fclose(fp);
	return found;
}

/* ---- fax_card_lines ------------------------------------------------------ */

static void
test_lines_content(void **state)
{
	line_t lines[FAX_CARD_LINES_MAX];
	int n;

	(void)state;
	n = lines_of(&fields, lines);
	assert_int_equal(n, 19);
	assert_string_equal(lines[0], "From:           twinroute");
	assert_string_equal(lines[1], "Fax ident:      +49 30 1234567");
	assert_string_equal(lines[2], "Date:           2026-11-28 09:15:02 UTC");
	assert_string_equal(find_line(lines, n, "CARD PAYMENT"),
	    "CARD PAYMENT DETAILS - CONFIDENTIAL");
	assert_string_equal(find_line(lines, n, "Provider:"),
	    "Provider:       Example Provider Ltd");
	assert_string_equal(find_line(lines, n, "Provider ID:"),
	    "Provider ID:    prov-1");
	assert_string_equal(find_line(lines, n, "Order:"),
	    "Order:          12345");
	assert_string_equal(find_line(lines, n, "Fax reference:"),
	    "Fax reference:  FX-ABCD-EFGH");
	assert_string_equal(find_line(lines, n, "Service:"),
	    "Service:        Express laundry");
	assert_string_equal(find_line(lines, n, "Quantity:"),
	    "Quantity:       3");
	assert_string_equal(find_line(lines, n, "Amount:"),
	    "Amount:         12.50 EUR");
	assert_string_equal(find_line(lines, n, "Cardholder:"),
	    "Cardholder:     Zed Testholder");
	assert_string_equal(find_line(lines, n, "Card number:"),
	    "Card number:    4111 1111 1111 1111");
	assert_string_equal(find_line(lines, n, "Expiry:"),
	    "Expiry:         12/2029");
	assert_string_equal(lines[n - 1],
	    "Destroy this page after the charge is made.");
	/* Every line is printable ASCII here, and no line carries a tab. */
	for (int i = 0; i < n; i++) {
		for (const char *p = lines[i]; *p; p++)
			assert_true(*p >= ' ' && *p <= '~');
	}
}

static void
test_lines_variants(void **state)
{
	struct fax_card_fields f = fields;
	line_t lines[FAX_CARD_LINES_MAX];
	int n;

	(void)state;
	/* No ident: no ident line. */
	f.broker_ident = "";
	n = lines_of(&f, lines);
	assert_int_equal(n, 18);
	for (int i = 0; i < n; i++)
		assert_null(strstr(lines[i], "Fax ident"));
	assert_string_equal(lines[1], "Date:           2026-11-28 09:15:02 UTC");

	/* The epoch, a single-digit month, a large order and quantity. */
	f = fields;
	f.time_unix = 0;
	f.exp_month = 3;
	f.exp_year = 2031;
	f.order_id = UINT64_MAX;
	f.quantity = UINT32_MAX;
	n = lines_of(&f, lines);
	assert_string_equal(find_line(lines, n, "Date:"),
	    "Date:           1970-01-01 00:00:00 UTC");
	assert_string_equal(find_line(lines, n, "Expiry:"),
	    "Expiry:         03/2031");
	assert_string_equal(find_line(lines, n, "Order:"),
	    "Order:          18446744073709551615");
	assert_string_equal(find_line(lines, n, "Quantity:"),
	    "Quantity:       4294967295");

	/* Grouping in fours, whatever the length. */
	f = fields;
	f.number = "378282246310005";
	n = lines_of(&f, lines);
	assert_string_equal(find_line(lines, n, "Card number:"),
	    "Card number:    3782 8224 6310 005");
	f.number = "6011000990139424123";
	n = lines_of(&f, lines);
	assert_string_equal(find_line(lines, n, "Card number:"),
	    "Card number:    6011 0009 9013 9424 123");
	f.number = "4111";
	n = lines_of(&f, lines);
	assert_string_equal(find_line(lines, n, "Card number:"),
	    "Card number:    4111");
}

static void
test_lines_cut(void **state)
{
	struct fax_card_fields f = fields;
	line_t lines[FAX_CARD_LINES_MAX];
	char longs[300], two[300], three[300], four[300];
	const char *l;
	int n;

	(void)state;
	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	two[0] = three[0] = four[0] = '\0';
	for (int i = 0; i < 60; i++) {
		strcat(two, "\xc3\xa9");	 /* e acute: 2 bytes */
		strcat(three, "\xe2\x82\xac"); /* euro sign: 3 bytes */
		if (i < 40)
			strcat(four, "\xf0\x9f\x98\x80"); /* 4 bytes */
	}

	f.provider_name = longs;
	n = lines_of(&f, lines);
	l = find_line(lines, n, "Provider:");
	assert_int_equal(strlen(l), FAX_CARD_LINE_LEN - 1);
	assert_memory_equal(l + 16, longs, FAX_CARD_LINE_LEN - 1 - 16);

	/* 16 label bytes + 2k <= 95: 39 characters, 94 bytes. */
	f.holder = two;
	n = lines_of(&f, lines);
	l = find_line(lines, n, "Cardholder:");
	assert_int_equal(strlen(l), 16 + 2 * 39);
	assert_true(utf8_valid(l));

	/* 16 + 3k <= 95: 26 characters, 94 bytes. */
	f.holder = three;
	n = lines_of(&f, lines);
	l = find_line(lines, n, "Cardholder:");
	assert_int_equal(strlen(l), 16 + 3 * 26);
	assert_true(utf8_valid(l));

	/* 16 + 4k <= 95: 19 characters, 92 bytes. */
	f.holder = four;
	n = lines_of(&f, lines);
	l = find_line(lines, n, "Cardholder:");
	assert_int_equal(strlen(l), 16 + 4 * 19);
	assert_true(utf8_valid(l));

	/* A cut that falls right after a whole character keeps it. */
	memset(longs, 'b', sizeof(longs));
	memcpy(longs + 77, "\xc3\xa9", 2); /* bytes 93, 94 of the line */
	longs[79] = '\0';
	f.holder = longs;
	n = lines_of(&f, lines);
	l = find_line(lines, n, "Cardholder:");
	assert_int_equal(strlen(l), 95);
	assert_memory_equal(l + 93, "\xc3\xa9", 2);
	longs[79] = 'c';
	longs[80] = '\0';
	n = lines_of(&f, lines);
	l = find_line(lines, n, "Cardholder:");
	assert_int_equal(strlen(l), 95);

	/* Every line of an overlong page still renders. */
	f = fields;
	f.provider_name = f.service_name = f.amount = f.fax_ref = two;
	f.broker_name = f.holder = three;
	n = lines_of(&f, lines);
	{
		const char *ptrs[FAX_CARD_LINES_MAX];
		uint8_t *p = page_new();

		for (int i = 0; i < n; i++) {
			assert_true(strlen(lines[i]) < FAX_CARD_LINE_LEN);
			ptrs[i] = lines[i];
		}
		assert_true(fax_page_render(NULL, ptrs, (size_t)n, p,
		    FAX_PAGE_BYTES) >= 0);
		free(p);
	}
}

static void
test_lines_errors(void **state)
{
	const char **strs[] = {
	    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	};
	struct fax_card_fields f;
	line_t lines[FAX_CARD_LINES_MAX];
	size_t k = 0;

	(void)state;
	assert_int_equal(fax_card_lines(NULL, lines, FAX_CARD_LINES_MAX),
	    -EINVAL);
	assert_int_equal(fax_card_lines(&fields, NULL, FAX_CARD_LINES_MAX),
	    -EINVAL);
	/* Each string field NULL in turn. */
	f = fields;
	strs[k++] = &f.broker_name;
	strs[k++] = &f.broker_ident;
	strs[k++] = &f.provider_id;
	strs[k++] = &f.provider_name;
	strs[k++] = &f.fax_ref;
	strs[k++] = &f.service_name;
	strs[k++] = &f.amount;
	strs[k++] = &f.holder;
	strs[k++] = &f.number;
	for (size_t i = 0; i < k; i++) {
		const char *save = *strs[i];

		*strs[i] = NULL;
		assert_int_equal(lines_of(&f, lines), -EINVAL);
		*strs[i] = save;
		assert_int_equal(lines_of(&f, lines), 19);
	}
	/* The number is digits, at least one. */
	f.number = "4111 1111 1111 1111";
	assert_int_equal(lines_of(&f, lines), -EINVAL);
	f.number = "";
	assert_int_equal(lines_of(&f, lines), -EINVAL);
	f.number = VISA;

	/* Too few lines: refused, and nothing of the card left behind. */
	memset(lines, 0, sizeof(lines));
	assert_int_equal(fax_card_lines(&f, lines, 18), -EINVAL);
	for (size_t i = 0; i < 18; i++)
		assert_int_equal(lines[i][0], 0);
	assert_int_equal(fax_card_lines(&f, lines, 0), -EINVAL);
	assert_int_equal(fax_card_lines(&f, lines, 19), 19);

	/* A time gmtime cannot show. */
	f.time_unix = INT64_MAX;
	assert_int_equal(lines_of(&f, lines), -EINVAL);
}

/* ---- secmem_pages -------------------------------------------------------- */

static void
test_secmem_pages(void **state)
{
	const size_t sizes[] = {0, 1, 63, 64, 4032, 4033, 4096, 100000,
	    FAX_PAGE_BYTES};

	(void)state;
	assert_int_equal(secmem_init(), 0);
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
		uint8_t *p = secmem_pages_alloc(sizes[i]);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 64, 0);
		for (size_t j = 0; j < sizes[i]; j++)
			assert_int_equal(p[j], 0);
		memset(p, 0xa5, sizes[i]);
		if (!secmem_pages_locked(p))
			print_message("secmem_pages: %zu bytes not locked\n",
			    sizes[i]);
		assert_true(mapped(p));
		secmem_pages_free(p);
		assert_false(mapped(p));
	}
	assert_null(secmem_pages_alloc(SIZE_MAX));
	assert_null(secmem_pages_alloc(SIZE_MAX - 64));
	secmem_pages_free(NULL);
	assert_false(secmem_pages_locked(NULL));
}

/* ---- fax_doc_compose ----------------------------------------------------- */

/* DOC is the page of F under O: the same bytes as encoding it here. */
static void
check_doc(const struct fax_doc *d, const struct fax_page_opts *o,
    const struct fax_card_fields *f)
{
	uint8_t *p = page_new(), *q = page_new();
	size_t max = fax_page_encoded_max(), len;
	uint8_t *enc = malloc(max);

	assert_non_null(enc);
	assert_non_null(d);
	assert_int_equal(d->time_unix, f->time_unix);
	render(o, f, p);

	assert_int_equal(fax_page_encode(p, FAX_T4_1D, enc, max, &len), 0);
	assert_int_equal(d->len_1d, len);
	assert_memory_equal(d->t4_1d, enc, len);
	assert_int_equal(fax_page_encode(p, FAX_T4_2D, enc, max, &len), 0);
	assert_int_equal(d->len_2d, len);
	assert_memory_equal(d->t4_2d, enc, len);
	assert_true(d->len_2d < d->len_1d);

	/* And both decode back to the page. */
	page_decode(d->t4_1d, d->len_1d, FAX_T4_1D, q);
	assert_memory_equal(p, q, FAX_PAGE_BYTES);
	memset(q, 0, FAX_PAGE_BYTES);
	page_decode(d->t4_2d, d->len_2d, FAX_T4_2D, q);
	assert_memory_equal(p, q, FAX_PAGE_BYTES);
	free(enc);
	free(p);
	free(q);
}

static void
test_compose(void **state)
{
	struct fax_doc *d = NULL;
	const struct fax_page_opts big = {.font_px = 40};
	uint8_t *p = page_new();

	(void)state;
	assert_int_equal(secmem_init(), 0);
	assert_int_equal(fax_doc_compose(NULL, &fields, &d), 0);
	check_doc(d, NULL, &fields);
	print_message("card page: T.4 1D %zu bytes, 2D %zu bytes%s\n",
	    d->len_1d, d->len_2d,
	    secmem_pages_locked(d->t4_1d) ? "" : " (not locked)");
	/* The page has ink where the text is, nowhere near the bottom. */
	render(NULL, &fields, p);
	{
		size_t ink = 0, low = 0;

		for (size_t i = 0; i < FAX_PAGE_BYTES; i++) {
			ink += p[i] != 0;
			if (i >= (size_t)(H / 2) * FAX_PAGE_STRIDE)
				low += p[i] != 0;
		}
		assert_true(ink > 1000);
		assert_int_equal(low, 0);
	}
	fax_doc_free(d);
	d = NULL;

	/* Another size is another page. */
	assert_int_equal(fax_doc_compose(&big, &fields, &d), 0);
	check_doc(d, &big, &fields);
	fax_doc_free(d);
	fax_doc_free(NULL);
	free(p);
}

static void
test_compose_errors(void **state)
{
	const struct fax_page_opts missing = {.font_path = MISSING_FONT};
	const struct fax_page_opts tiny = {.font_px = 2};
	const struct fax_page_opts notfont = {.font_path = "/etc/hostname"};
	struct fax_card_fields f = fields;
	struct fax_doc *d = (struct fax_doc *)(uintptr_t)0x1;

	(void)state;
	assert_int_equal(fax_doc_compose(&missing, &fields, &d), -ENOENT);
	assert_ptr_equal(d, (struct fax_doc *)(uintptr_t)0x1);
	assert_int_equal(fax_doc_compose(&tiny, &fields, &d), -EINVAL);
	assert_int_equal(fax_doc_compose(&notfont, &fields, &d), -EINVAL);
	assert_int_equal(fax_doc_compose(NULL, NULL, &d), -EINVAL);
	assert_int_equal(fax_doc_compose(NULL, &fields, NULL), -EINVAL);
	f.holder = NULL;
	assert_int_equal(fax_doc_compose(NULL, &f, &d), -EINVAL);
	f.holder = "Bad\tholder";
	assert_int_equal(fax_doc_compose(NULL, &f, &d), -EILSEQ);
	f.holder = "\xc3\x28";
	assert_int_equal(fax_doc_compose(NULL, &f, &d), -EILSEQ);
	/* 19 lines do not fit at the largest size. */
	{
		const struct fax_page_opts huge = {
		    .font_px = FAX_PAGE_FONT_PX_MAX};

		assert_int_equal(fax_doc_compose(&huge, &fields, &d), -E2BIG);
	}
	assert_ptr_equal(d, (struct fax_doc *)(uintptr_t)0x1);
}

/* ---- the vault's FAX_PAGE ------------------------------------------------ */

static time_t fake_now = T0;

static time_t
test_now(void)
{
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

struct fixture {
	char dir[64];
	char path[128];
	char audit[128];
	char key_file[128];
	char broker[32];	/* overwritten after vault_open */
	char ident[32];
	const char *font;
	unsigned font_px;
	struct event_base *base;
	struct vault *v;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), "faxdoc") < 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/vault", f->dir);
	snprintf(f->audit, sizeof(f->audit), "%s/audit.log", f->dir);
	snprintf(f->key_file, sizeof(f->key_file), "%s/vault.key", f->dir);
	snprintf(f->broker, sizeof(f->broker), "Broker One");
	snprintf(f->ident, sizeof(f->ident), "+1 555 0100");
	f->base = event_base_new();
	__atomic_store_n(&fake_now, T0, __ATOMIC_SEQ_CST);
	*state = f;
	return f->base ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int r;

	f->v = vault_close(f->v);
	event_base_free(f->base);
	r = tmpdir_remove(f->dir);
	free(f);
	return r;
}

static int
try_open(struct fixture *f, struct vault **ret)
{
	struct vault_opts o = {
	    .path = f->path,
	    .map_size = 16u << 20,
	    .key_file = f->key_file,
	    .audit_log = f->audit,
	    .now = test_now,
	    .fax_font = f->font,
	    .fax_font_px = f->font_px,
	    .fax_broker = f->broker,
	    .fax_ident = f->ident,
	};

	return vault_open(&o, f->base, ret);
}

struct result {
	bool done;
	bool take;		/* take the doc */
	struct vault_reply reply; /* fax_doc cleared */
	struct fax_doc *doc;	/* taken */
	const uint8_t *seen_1d, *seen_2d;
};

static void
on_reply(void *arg, struct vault_reply *y)
{
	struct result *r = arg;

	assert_false(r->done);
	r->reply = *y;
	r->reply.fax_doc = NULL;
	if (y->fax_doc) {
		r->seen_1d = y->fax_doc->t4_1d;
		r->seen_2d = y->fax_doc->t4_2d;
		if (r->take)
			r->doc = TAKE_PTR(y->fax_doc);
	}
	r->done = true;
}

static void
call_r(struct fixture *f, const struct vault_request *q, struct result *r)
{
	assert_int_equal(vault_submit(f->v, q, on_reply, r), 0);
	while (!r->done)
		assert_int_not_equal(event_base_loop(f->base, EVLOOP_ONCE), -1);
	assert_int_equal(r->reply.op, q->op);
}

static struct vault_reply
call(struct fixture *f, const struct vault_request *q)
{
	struct result r = {0};

	call_r(f, q, &r);
	return r.reply;
}

static struct vault_request
req(enum vault_op op, const char *member)
{
	struct vault_request q;

	memset(&q, 0, sizeof(q));
	q.op = op;
	snprintf(q.actor, sizeof(q.actor), "test uid=0");
	if (member)
		snprintf(q.member, sizeof(q.member), "%s", member);
	return q;
}

static void
check_code(struct vault_reply y, enum vault_code want, int line)
{
	if (y.code != want)
		fail_msg("line %d: %s: %s (%s), want %s", line,
		    vault_strop(y.op), vault_strcode(y.code), y.message,
		    vault_strcode(want));
}

#define assert_code(reply, want) check_code((reply), (want), __LINE__)

/* Open a key-file vault, initialize it, enrol VISA for member "M1". */
static void
open_with_card(struct fixture *f)
{
	struct vault_request q = req(VAULT_OP_INIT, NULL);
	struct vault_reply y;
	struct card_input in;

	assert_int_equal(try_open(f, &f->v), 0);
	/* The vault keeps its own copies of the option strings. */
	memset(f->broker, 'X', sizeof(f->broker) - 1);
	memset(f->ident, 'Y', sizeof(f->ident) - 1);
	q.init.key_file = true;
	y = call(f, &q);
	assert_code(y, VAULT_OK);
	assert_false(y.sealed);

	memset(&in, 0, sizeof(in));
	snprintf(in.number, sizeof(in.number), VISA);
	in.exp_month = 12;
	in.exp_year = 2029;
	snprintf(in.holder, sizeof(in.holder), "Zed Testholder");
	q = req(VAULT_OP_CARD_SET, "M1");
	assert_int_equal(envelope_seal(y.enrol_key, "M1", &in,
	    q.card_set.envelope, sizeof(q.card_set.envelope),
	    &q.card_set.len), 0);
	y = call(f, &q);
	assert_code(y, VAULT_OK);
}

static struct vault_request
fax_req(const char *member)
{
	struct vault_request q = req(VAULT_OP_FAX_PAGE, member);

	q.fax.order_id = fields.order_id;
	snprintf(q.fax.provider_id, sizeof(q.fax.provider_id), "%s",
	    fields.provider_id);
	snprintf(q.fax.provider_name, sizeof(q.fax.provider_name), "%s",
	    fields.provider_name);
	snprintf(q.fax.fax_ref, sizeof(q.fax.fax_ref), "%s", fields.fax_ref);
	snprintf(q.fax.service_name, sizeof(q.fax.service_name), "%s",
	    fields.service_name);
	q.fax.quantity = fields.quantity;
	snprintf(q.fax.amount, sizeof(q.fax.amount), "%s", fields.amount);
	q.fax.time_unix = fields.time_unix;
	return q;
}

/* The fields the vault should have put on the page for fax_req(). */
static struct fax_card_fields
vault_fields(void)
{
	struct fax_card_fields cf = fields;

	cf.broker_name = "Broker One";
	cf.broker_ident = "+1 555 0100";
	return cf;
}

static char *
read_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	return buf;
}

static void
test_vault_fax_page(void **state)
{
	struct fixture *f = *state;
	struct fax_card_fields cf = vault_fields();
	struct vault_request q;
	struct result r = {.take = true};
	char *log;

	assert_string_equal(vault_strop(VAULT_OP_FAX_PAGE), "fax_page");
	open_with_card(f);
	q = fax_req("M1");
	call_r(f, &q, &r);
	assert_code(r.reply, VAULT_OK);
	assert_non_null(r.doc);
	assert_string_equal(r.reply.brand, "visa");
	assert_string_equal(r.reply.last4, "1111");
	assert_int_equal(r.reply.exp_month, 12);
	assert_int_equal(r.reply.exp_year, 2029);
	assert_null(strstr(r.reply.message, VISA));
	check_doc(r.doc, NULL, &cf);
	/* Taken: still there after the callback, until freed. */
	assert_true(mapped(r.doc->t4_1d));
	assert_true(mapped(r.doc->t4_2d));
	fax_doc_free(r.doc);
	assert_false(mapped(r.seen_1d));
	assert_false(mapped(r.seen_2d));

	/* Not taken: the vault frees it after the callback. */
	memset(&r, 0, sizeof(r));
	call_r(f, &q, &r);
	assert_code(r.reply, VAULT_OK);
	assert_null(r.doc);
	assert_non_null(r.seen_1d);
	assert_false(mapped(r.seen_1d));
	assert_false(mapped(r.seen_2d));

	/* The card expired since: the order was paid for, the page goes. */
	__atomic_store_n(&fake_now, (time_t)T_PAGE + 5 * 366 * 86400,
	    __ATOMIC_SEQ_CST);
	memset(&r, 0, sizeof(r));
	r.take = true;
	call_r(f, &q, &r);
	assert_code(r.reply, VAULT_OK);
	check_doc(r.doc, NULL, &cf);
	fax_doc_free(r.doc);

	/* Other order fields, other page. */
	q.fax.order_id = 777;
	q.fax.time_unix = 0;
	snprintf(q.fax.provider_name, sizeof(q.fax.provider_name),
	    "Caf\xc3\xa9 M\xc3\xbcller");
	snprintf(q.fax.service_name, sizeof(q.fax.service_name), "%s", "");
	cf.order_id = 777;
	cf.time_unix = 0;
	cf.provider_name = "Caf\xc3\xa9 M\xc3\xbcller";
	cf.service_name = "";
	memset(&r, 0, sizeof(r));
	r.take = true;
	call_r(f, &q, &r);
	assert_code(r.reply, VAULT_OK);
	check_doc(r.doc, NULL, &cf);
	fax_doc_free(r.doc);

	/* The audit trail names the order, never the card. */
	f->v = vault_close(f->v);
	log = read_file(f->audit);
	assert_non_null(strstr(log, "op=fax_page"));
	assert_non_null(strstr(log, "order=12345"));
	assert_non_null(strstr(log, "order=777"));
	assert_null(strstr(log, VISA));
	assert_null(strstr(log, "4111 1111"));
	assert_null(strstr(log, "Zed"));
	free(log);
}

static void
test_vault_fax_refused(void **state)
{
	struct fixture *f = *state;
	struct vault_request q, good;
	struct vault_reply y;
	struct result r = {0};

	open_with_card(f);
	good = fax_req("M1");

	q = fax_req("M2");
	assert_code(call(f, &q), VAULT_NO_CARD);
	q = fax_req("bad member");
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = fax_req("");
	assert_code(call(f, &q), VAULT_BAD_REQUEST);

	/* Strings not terminated within their arrays. */
	q = good;
	memset(q.fax.fax_ref, 'F', sizeof(q.fax.fax_ref));
	y = call(f, &q);
	assert_code(y, VAULT_BAD_REQUEST);
	assert_non_null(strstr(y.message, "fax reference"));
	q = good;
	memset(q.fax.provider_id, 'p', sizeof(q.fax.provider_id));
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	memset(q.fax.provider_name, 'n', sizeof(q.fax.provider_name));
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	memset(q.fax.service_name, 's', sizeof(q.fax.service_name));
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	memset(q.fax.amount, '1', sizeof(q.fax.amount));
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	/* The longest string that fits is fine. */
	q = good;
	memset(q.fax.service_name, 's', sizeof(q.fax.service_name) - 1);
	q.fax.service_name[sizeof(q.fax.service_name) - 1] = '\0';
	r.take = false;
	call_r(f, &q, &r);
	assert_code(r.reply, VAULT_OK);
	assert_false(mapped(r.seen_1d));

	/* Control characters, bad UTF-8, C1 controls, empty fields. */
	q = good;
	snprintf(q.fax.provider_name, sizeof(q.fax.provider_name), "a\nb");
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	snprintf(q.fax.service_name, sizeof(q.fax.service_name), "a\x7f");
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	snprintf(q.fax.service_name, sizeof(q.fax.service_name), "\xc3\x28");
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	snprintf(q.fax.service_name, sizeof(q.fax.service_name), "\xc2\x85");
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	snprintf(q.fax.service_name, sizeof(q.fax.service_name), "\xe2\x82");
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	q.fax.amount[0] = '\0';
	y = call(f, &q);
	assert_code(y, VAULT_BAD_REQUEST);
	assert_non_null(strstr(y.message, "amount"));
	q = good;
	q.fax.fax_ref[0] = '\0';
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	q.fax.provider_id[0] = '\0';
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	q.fax.time_unix = -1;
	assert_code(call(f, &q), VAULT_BAD_REQUEST);
	q = good;
	q.fax.time_unix = INT64_MAX;
	assert_code(call(f, &q), VAULT_BAD_REQUEST);

	/* Sealed: no page. */
	q = req(VAULT_OP_SEAL, NULL);
	assert_code(call(f, &q), VAULT_OK);
	y = call(f, &good);
	assert_code(y, VAULT_SEALED);
	assert_true(y.sealed);
	/* An unknown member while sealed: still sealed first. */
	q = fax_req("M2");
	assert_code(call(f, &q), VAULT_SEALED);
}

static void
test_vault_fax_font(void **state)
{
	struct fixture *f = *state;
	struct vault_request q;
	struct vault_reply y;
	struct vault *v = NULL;
	char *log;

	/* Options checked at open. */
	f->font_px = FAX_PAGE_FONT_PX_MAX + 1;
	assert_int_equal(try_open(f, &v), -EINVAL);
	f->font_px = FAX_PAGE_FONT_PX_MIN - 1;
	assert_int_equal(try_open(f, &v), -EINVAL);
	f->font_px = 0;
	snprintf(f->broker, sizeof(f->broker), "bad\tbroker");
	assert_int_equal(try_open(f, &v), -EINVAL);
	snprintf(f->broker, sizeof(f->broker), "Broker One");
	snprintf(f->ident, sizeof(f->ident), "\x01");
	assert_int_equal(try_open(f, &v), -EINVAL);
	snprintf(f->ident, sizeof(f->ident), "+1 555 0100");
	assert_null(v);

	/* A font that is not there: an error that says so. */
	f->font = MISSING_FONT;
	open_with_card(f);
	q = fax_req("M1");
	y = call(f, &q);
	assert_code(y, VAULT_ERROR);
	assert_non_null(strstr(y.message, "font"));
	assert_non_null(strstr(y.message, MISSING_FONT));
	assert_non_null(strstr(y.message, strerror(ENOENT)));
	assert_null(strstr(y.message, VISA));
	assert_null(strstr(y.message, "1111"));
	assert_null(y.fax_doc);
	f->v = vault_close(f->v);
	log = read_file(f->audit);
	assert_non_null(strstr(log, "order=12345"));
	assert_non_null(strstr(log, MISSING_FONT));
	assert_null(strstr(log, VISA));
	free(log);
}

/* Requests still queued at close get their replies, and their pages go. */
static void
test_vault_fax_close(void **state)
{
	struct fixture *f = *state;
	struct result r[4];
	struct vault_request q;

	open_with_card(f);
	memset(r, 0, sizeof(r));
	q = fax_req("M1");
	for (size_t i = 0; i < ELEMENTSOF(r); i++)
		assert_int_equal(vault_submit(f->v, &q, on_reply, &r[i]), 0);
	f->v = vault_close(f->v);
	for (size_t i = 0; i < ELEMENTSOF(r); i++) {
		assert_true(r[i].done);
		assert_code(r[i].reply, VAULT_OK);
		assert_false(mapped(r[i].seen_1d));
	}
}

/* ---- fax-pagecheck ------------------------------------------------------- */

/*
 * Write BITMAP's first ROWS rows, WIDTH pixels wide, as one page per
 * entry of PAGES to a TIFF at PATH.
 */
static void
write_tiff(const char *path, const uint8_t *const *pages, size_t n_pages,
    uint32_t width, uint32_t rows, uint16_t compression, uint16_t photo,
    uint16_t fill)
{
	uint8_t row[FAX_PAGE_STRIDE];
	TIFF *t = TIFFOpen(path, "w");

	assert_non_null(t);
	for (size_t pg = 0; pg < n_pages; pg++) {
		assert_true(TIFFSetField(t, TIFFTAG_IMAGEWIDTH, width));
		assert_true(TIFFSetField(t, TIFFTAG_IMAGELENGTH, rows));
		assert_true(TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1));
		assert_true(TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1));
		assert_true(TIFFSetField(t, TIFFTAG_COMPRESSION, compression));
		if (compression == COMPRESSION_CCITTFAX3)
			assert_true(TIFFSetField(t, TIFFTAG_GROUP3OPTIONS,
			    GROUP3OPT_2DENCODING | GROUP3OPT_FILLBITS));
		assert_true(TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photo));
		assert_true(TIFFSetField(t, TIFFTAG_FILLORDER, fill));
		assert_true(TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rows));
		assert_true(TIFFSetField(t, TIFFTAG_XRESOLUTION, 204.0));
		assert_true(TIFFSetField(t, TIFFTAG_YRESOLUTION, 196.0));
		assert_true(TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT,
		    RESUNIT_INCH));
		if (n_pages > 1)
			assert_true(TIFFSetField(t, TIFFTAG_PAGENUMBER,
			    (uint16_t)pg, (uint16_t)n_pages));
		for (uint32_t y = 0; y < rows; y++) {
			memcpy(row, pages[pg] + (size_t)(y % H) *
			    FAX_PAGE_STRIDE, sizeof(row));
			if (photo == PHOTOMETRIC_MINISBLACK) {
				for (size_t i = 0; i < sizeof(row); i++)
					row[i] = (uint8_t)~row[i];
			}
			assert_int_equal(TIFFWriteScanline(t, row, y, 0), 1);
		}
		assert_true(TIFFWriteDirectory(t));
	}
	TIFFClose(t);
}

static int
check_tiff(const char *path, unsigned page, const uint8_t *expect,
    char *why)
{
	return pagecheck_tiff(path, page, expect, why, 256);
}

static void
test_pagecheck_tiff(void **state)
{
	struct fixture *f = *state;
	uint8_t *p = page_new(), *q = page_new(), *blank = page_new();
	const uint8_t *pages[2];
	char path[160], why[256];

	snprintf(path, sizeof(path), "%s/page.tif", f->dir);
	render(NULL, &fields, p);
	pages[0] = p;

	/* G3 2D, LSB-first fill order, as a fax receiver writes. */
	write_tiff(path, pages, 1, W, H, COMPRESSION_CCITTFAX3,
	    PHOTOMETRIC_MINISWHITE, FILLORDER_LSB2MSB);
	assert_int_equal(check_tiff(path, 1, p, why), 0);
	assert_string_equal(why, "match width=1728 rows=2287");

	/* G4, MSB-first, MinIsBlack (the pixels inverted in the file). */
	write_tiff(path, pages, 1, W, H, COMPRESSION_CCITTFAX4,
	    PHOTOMETRIC_MINISBLACK, FILLORDER_MSB2LSB);
	assert_int_equal(check_tiff(path, 1, p, why), 0);
	assert_string_equal(why, "match width=1728 rows=2287");

	/* One pixel differs. */
	memcpy(q, p, FAX_PAGE_BYTES);
	q[(size_t)1500 * FAX_PAGE_STRIDE + 100] ^= 0x10;
	pages[0] = q;
	write_tiff(path, pages, 1, W, H, COMPRESSION_CCITTFAX3,
	    PHOTOMETRIC_MINISWHITE, FILLORDER_LSB2MSB);
	assert_int_equal(check_tiff(path, 1, p, why), 1);
	assert_string_equal(why, "first differing row 1500");

	/* The other card's page is another page. */
	{
		struct fax_card_fields g = fields;

		g.number = "5555555555554444";
		render(NULL, &g, q);
		write_tiff(path, pages, 1, W, H, COMPRESSION_CCITTFAX4,
		    PHOTOMETRIC_MINISWHITE, FILLORDER_MSB2LSB);
		assert_int_equal(check_tiff(path, 1, p, why), 1);
		assert_non_null(strstr(why, "first differing row "));
	}

	/* Half the rows (standard resolution), or too narrow. */
	pages[0] = p;
	write_tiff(path, pages, 1, W, 1143, COMPRESSION_CCITTFAX3,
	    PHOTOMETRIC_MINISWHITE, FILLORDER_LSB2MSB);
	assert_int_equal(check_tiff(path, 1, p, why), 1);
	assert_string_equal(why, "rows 2287 != 1143");
	write_tiff(path, pages, 1, 1216, H, COMPRESSION_CCITTFAX4,
	    PHOTOMETRIC_MINISWHITE, FILLORDER_LSB2MSB);
	assert_int_equal(check_tiff(path, 1, p, why), 1);
	assert_string_equal(why, "width 1728 != 1216");

	/* Pages: the second of two. */
	pages[0] = blank;
	pages[1] = p;
	write_tiff(path, pages, 2, W, H, COMPRESSION_CCITTFAX3,
	    PHOTOMETRIC_MINISWHITE, FILLORDER_LSB2MSB);
	assert_int_equal(check_tiff(path, 1, p, why), 1);
	assert_int_equal(check_tiff(path, 2, p, why), 0);
	assert_int_equal(check_tiff(path, 3, p, why), -EINVAL);
	assert_non_null(strstr(why, "no page 3"));
	assert_int_equal(check_tiff(path, 0, p, why), -EINVAL);

	/* Not a TIFF. */
	TIFFSetErrorHandler(NULL);
	{
		FILE *fp;

		snprintf(path, sizeof(path), "%s/not.tif", f->dir);
		fp = fopen(path, "w");
		assert_non_null(fp);
		fputs("not a TIFF\n", fp);
		fclose(fp);
	}
	assert_true(check_tiff(path, 1, p, why) < 0);
	assert_true(check_tiff("/nonexistent.tif", 1, p, why) < 0);
	free(p);
	free(q);
	free(blank);
}

static int
parse_text(const char *text, struct pagecheck_input *in, const char **why)
{
	FILE *fp = fmemopen((void *)(uintptr_t)text, strlen(text), "r");
	int r;

	assert_non_null(fp);
	memset(in, 0, sizeof(*in));
	r = pagecheck_parse(fp, in, why);
	fclose(fp);
	return r;
}

#define INPUT_FIELDS                                                           \
	"broker_name=twinroute\n"                                              \
	"broker_ident=+49 30 1234567\n"                                        \
	"time_unix=1795857302\n"                                               \
	"provider_id=prov-1\n"                                                 \
	"provider_name=Example Provider Ltd\n"                                 \
	"order_id=12345\n"                                                     \
	"fax_ref=FX-ABCD-EFGH\n"                                               \
	"service_name=Express laundry\n"                                       \
	"quantity=3\n"                                                         \
	"amount=12.50 EUR\n"                                                   \
	"holder=Zed Testholder\n"                                              \
	"number=4111111111111111\n"                                            \
	"exp_month=12\n"

static void
test_pagecheck_parse(void **state)
{
	struct pagecheck_input *in = calloc(1, sizeof(*in));
	const char *why = NULL;
	uint8_t *p = page_new(), *q = page_new();
	char longline[700];

	(void)state;
	assert_non_null(in);
	assert_int_equal(parse_text("# fields\n\n" INPUT_FIELDS
	    "exp_year=2029\r\n", in, &why), 0);
	assert_string_equal(in->f.broker_name, "twinroute");
	assert_int_equal(in->f.time_unix, T_PAGE);
	assert_int_equal(in->f.order_id, 12345);
	assert_int_equal(in->f.quantity, 3);
	assert_string_equal(in->f.number, VISA);
	assert_int_equal(in->f.exp_month, 12);
	assert_int_equal(in->f.exp_year, 2029);
	assert_null(in->o.font_path);
	assert_int_equal(in->o.font_px, 0);
	/* The page it renders is the page of the same fields. */
	assert_int_equal(pagecheck_expect(in, p), 0);
	render(NULL, &fields, q);
	assert_memory_equal(p, q, FAX_PAGE_BYTES);

	assert_int_equal(parse_text(INPUT_FIELDS "exp_year=2029\nfont="
	    MISSING_FONT "\nfont_px=30\n", in, &why), 0);
	assert_string_equal(in->o.font_path, MISSING_FONT);
	assert_int_equal(in->o.font_px, 30);
	assert_int_equal(pagecheck_expect(in, p), -ENOENT);

	/* A key missing, unknown, repeated; a bad number; no '='. */
	assert_int_equal(parse_text(INPUT_FIELDS, in, &why), -EINVAL);
	assert_string_equal(why, "exp_year");
	assert_int_equal(parse_text(INPUT_FIELDS "exp_year=2029\ncvc=1\n", in,
	    &why), -EINVAL);
	assert_string_equal(why, "line 15");
	assert_int_equal(parse_text(INPUT_FIELDS "exp_year=2029\nexp_month=1\n",
	    in, &why), -EINVAL);
	assert_int_equal(parse_text(INPUT_FIELDS "exp_year=20x9\n", in, &why),
	    -EINVAL);
	assert_string_equal(why, "exp_year");
	assert_int_equal(parse_text(INPUT_FIELDS "exp_year=2029\nfont_px=-1\n",
	    in, &why), -EINVAL);
	assert_int_equal(parse_text("order_id=1\nnonsense\n", in, &why),
	    -EINVAL);
	assert_string_equal(why, "line 2");
	{
		char text[1024];
		char *qty;

		snprintf(text, sizeof(text), "%s", INPUT_FIELDS "exp_year=2029\n");
		qty = strstr(text, "quantity=3\n");
		assert_non_null(qty);
		memcpy(qty, "quantity=x\n", 11);
		assert_int_equal(parse_text(text, in, &why), -EINVAL);
		assert_string_equal(why, "quantity");
		qty = strstr(text, "quantity=x\n");
		assert_non_null(qty);
		memmove(qty, "quantity=4294967296\n",
		    strlen("quantity=4294967296\n"));
		/* (the lines after it are gone: fields missing come first) */
		qty[strlen("quantity=4294967296\n")] = '\0';
		strcat(text, "amount=1 EUR\nholder=A\nnumber=4111\n"
		    "exp_month=1\nexp_year=2030\n");
		assert_int_equal(parse_text(text, in, &why), -EINVAL);
		assert_string_equal(why, "quantity");
		qty = strstr(text, "4294967296");
		memcpy(qty, "4294967295", 10);
		assert_int_equal(parse_text(text, in, &why), 0);
		assert_int_equal(in->f.quantity, UINT32_MAX);
		assert_string_equal(in->f.number, "4111");
		assert_int_equal(in->f.exp_month, 1);
	}
	/* Too long a line or value. */
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "holder=", 7);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(parse_text(longline, in, &why), -E2BIG);
	longline[300] = '\n';
	longline[301] = '\0';
	assert_int_equal(parse_text(longline, in, &why), -E2BIG);
	free(in);
	free(p);
	free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines_content),
	    cmocka_unit_test(test_lines_variants),
	    cmocka_unit_test(test_lines_cut),
	    cmocka_unit_test(test_lines_errors),
	    cmocka_unit_test(test_secmem_pages),
	    cmocka_unit_test(test_compose),
	    cmocka_unit_test(test_compose_errors),
	    cmocka_unit_test_setup_teardown(test_vault_fax_page, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_vault_fax_refused, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_vault_fax_font, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_vault_fax_close, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_pagecheck_tiff, setup,
		teardown),
	    cmocka_unit_test(test_pagecheck_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
