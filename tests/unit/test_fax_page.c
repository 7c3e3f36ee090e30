/* SPDX-License-Identifier: ISC */
/* test_fax_page.c -- fax page: layout, glyphs, T.4 round trip, bad input */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <tiffio.h>
#include <spandsp.h>

#include "fax/page.h"

#include "fax_decode.h"

#define W FAX_PAGE_WIDTH
#define H FAX_PAGE_HEIGHT
#define MX FAX_PAGE_MARGIN_X
#define MY FAX_PAGE_MARGIN_Y

static uint8_t *
page_new(void)
{
	uint8_t *p = malloc(FAX_PAGE_BYTES);

	assert_non_null(p);
	memset(p, 0xa5, FAX_PAGE_BYTES);	/* render must clear it */
	return p;
}

static int
ink(const uint8_t *p, int x, int y)
{
	return p[(size_t)y * FAX_PAGE_STRIDE + (size_t)x / 8] >> (7 - (x & 7)) &
	    1;
}

static int
row_ink(const uint8_t *p, int y)
{
	int x, n = 0;

	for (x = 0; x < W; x++)
		n += ink(p, x, y);
	return n;
}

static long
page_ink(const uint8_t *p)
{
	long n = 0;

	for (int y = 0; y < H; y++)
		n += row_ink(p, y);
	return n;
}

/* Bands of consecutive inked rows: their first and last rows. */
static int
ink_bands(const uint8_t *p, int *first, int *last, int max)
{
	int y, n = 0, in = 0;

	for (y = 0; y < H; y++) {
		if (row_ink(p, y) > 0) {
			if (!in && n < max)
				first[n] = y;
			in = 1;
		} else if (in) {
			if (n < max)
				last[n] = y - 1;
			n++;
			in = 0;
		}
	}
	if (in) {
		if (n < max)
			last[n] = H - 1;
		n++;
	}
	return n;
}

static void
test_layout(void **state)
{
	char long_line[300];
	const char *lines[] = { "HXH HXH", "", "EHE", long_line, "HH" };
	int first[8], last[8];
	int x, y, maxx = -1;
	uint8_t *p = page_new();

	(void)state;
	memset(long_line, 'H', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	/* One line is too wide: exactly one cut reported. */
	assert_int_equal(fax_page_render(NULL, lines, 5, p, FAX_PAGE_BYTES),
	    1);

	/* No ink outside the margins. */
	for (y = 0; y < H; y++)
		for (x = 0; x < W; x++) {
			if (!ink(p, x, y))
				continue;
			assert_true(x >= MX && x < W - MX);
			assert_true(y >= MY && y < H - MY);
			if (x > maxx)
				maxx = x;
		}
	/* The long line runs up to the right margin. */
	assert_true(maxx >= W - MX - 40);

	/* Capitals only: four bands, each about one cap height tall. */
	assert_int_equal(ink_bands(p, first, last, 8), 4);
	for (int i = 0; i < 4; i++) {
		int h = last[i] - first[i] + 1;

		assert_true(h >= (int)FAX_PAGE_FONT_PX_DEFAULT - 2 &&
		    h <= (int)FAX_PAGE_FONT_PX_DEFAULT + 2);
	}
	/* The first line sits just below the top margin. */
	assert_true(first[0] >= MY);
	assert_true(first[0] <= MY + 2 * (int)FAX_PAGE_FONT_PX_DEFAULT);
	/* The blank line kept its slot: line 2 is two pitches below line 0. */
	int pitch = first[3] - first[2];

	assert_true(pitch >= (int)FAX_PAGE_FONT_PX_DEFAULT * 3 / 2);
	assert_int_equal(first[1] - first[0], 2 * pitch);
	assert_int_equal(first[2] - first[1], pitch);
	/* And left no ink between the bands of lines 0 and 2. */
	for (y = last[0] + 1; y < first[1]; y++)
		assert_int_equal(row_ink(p, y), 0);
	free(p);
}

static void
test_font_px(void **state)
{
	const char *lines[] = { "HHHH" };
	const struct fax_page_opts o = { .font_px = 40 };
	int first[2], last[2];
	uint8_t *p = page_new();

	(void)state;
	assert_int_equal(fax_page_render(&o, lines, 1, p, FAX_PAGE_BYTES), 0);
	assert_int_equal(ink_bands(p, first, last, 2), 1);
	assert_in_range(last[0] - first[0] + 1, 38, 42);
	free(p);
}

static void
test_glyphs(void **state)
{
	const char *eight[] = { "8" }, *one[] = { "1" };
	const char *card[] = { "4111 1111 1111 1111", "\xc3\xa9t\xc3\xa9" };
	uint8_t *a = page_new(), *b = page_new();
	long n8, n1;

	(void)state;
	assert_int_equal(fax_page_render(NULL, eight, 1, a, FAX_PAGE_BYTES), 0);
	assert_int_equal(fax_page_render(NULL, one, 1, b, FAX_PAGE_BYTES), 0);
	n8 = page_ink(a);
	n1 = page_ink(b);
	assert_true(n1 > 50);
	assert_true(n8 > n1 + n1 / 4);

	/* Deterministic: same text, same page. */
	memset(b, 0x5a, FAX_PAGE_BYTES);
	assert_int_equal(fax_page_render(NULL, card, 2, a, FAX_PAGE_BYTES), 0);
	assert_int_equal(fax_page_render(NULL, card, 2, b, FAX_PAGE_BYTES), 0);
	assert_memory_equal(a, b, FAX_PAGE_BYTES);
	free(a);
	free(b);
}

/* Ink extent of a page, in columns. */
static void
ink_columns(const uint8_t *p, int *ret_left, int *ret_right)
{
	int x, y, left = W, right = -1;

	for (y = 0; y < H; y++)
		for (x = 0; x < W; x++)
			if (ink(p, x, y)) {
				left = x < left ? x : left;
				right = x > right ? x : right;
			}
	*ret_left = left;
	*ret_right = right;
}

/* Monospace: a glyph lands on the same columns whatever precedes it. */
static void
test_columns(void **state)
{
	const char *a[] = { "A" }, *sa[] = { " A" }, *ia[] = { "iA" },
		   *wa[] = { "WA" };
	uint8_t *p = page_new(), *q = page_new(), *r = page_new();
	int l0, r0, l1, r1, x, y;

	(void)state;
	assert_int_equal(fax_page_render(NULL, a, 1, p, FAX_PAGE_BYTES), 0);
	ink_columns(p, &l0, &r0);
	assert_int_equal(fax_page_render(NULL, sa, 1, p, FAX_PAGE_BYTES), 0);
	ink_columns(p, &l1, &r1);
	/* One cell to the right: about 0.6 em, some 20 pixels. */
	assert_in_range(l1 - l0, 15, 25);
	assert_int_equal(r1 - l1, r0 - l0);
	assert_int_equal(fax_page_render(NULL, ia, 1, q, FAX_PAGE_BYTES), 0);
	assert_int_equal(fax_page_render(NULL, wa, 1, r, FAX_PAGE_BYTES), 0);
	for (y = 0; y < H; y++)
		for (x = l1; x <= r1; x++) {
			assert_int_equal(ink(q, x, y), ink(p, x, y));
			assert_int_equal(ink(r, x, y), ink(p, x, y));
		}
	free(p);
	free(q);
	free(r);
}

static void
test_render_errors(void **state)
{
	const struct fax_page_opts missing = {
		.font_path = "/nonexistent/fax/font.ttf" };
	const struct fax_page_opts prop = {
		.font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf" };
	const struct fax_page_opts tiny = { .font_px = 2 };
	const struct fax_page_opts notfont = { .font_path = "/etc/hostname" };
	const char *ok[] = { "1234" };
	const char *bad_utf8[] = { "ok", "\xc3\x28" };
	const char *overlong[] = { "\xc0\xaf" };
	const char *ctl[] = { "a\tb" };
	const char *null_line[] = { "a", NULL };
	static const char *many[200];
	uint8_t *p = page_new();

	(void)state;
	assert_int_equal(fax_page_render(&missing, ok, 1, p, FAX_PAGE_BYTES),
	    -ENOENT);
	assert_int_equal(fax_page_render(&prop, ok, 1, p, FAX_PAGE_BYTES),
	    -EINVAL);
	assert_int_equal(fax_page_render(&notfont, ok, 1, p, FAX_PAGE_BYTES),
	    -EINVAL);
	assert_int_equal(fax_page_render(&tiny, ok, 1, p, FAX_PAGE_BYTES),
	    -EINVAL);
	assert_int_equal(fax_page_render(NULL, ok, 1, p, FAX_PAGE_BYTES - 1),
	    -EINVAL);
	assert_int_equal(fax_page_render(NULL, ok, 1, NULL, FAX_PAGE_BYTES),
	    -EINVAL);
	assert_int_equal(fax_page_render(NULL, NULL, 1, p, FAX_PAGE_BYTES),
	    -EINVAL);
	assert_int_equal(fax_page_render(NULL, null_line, 2, p,
	    FAX_PAGE_BYTES), -EINVAL);
	assert_int_equal(fax_page_render(NULL, bad_utf8, 2, p, FAX_PAGE_BYTES),
	    -EILSEQ);
	assert_int_equal(fax_page_render(NULL, overlong, 1, p, FAX_PAGE_BYTES),
	    -EILSEQ);
	assert_int_equal(fax_page_render(NULL, ctl, 1, p, FAX_PAGE_BYTES),
	    -EILSEQ);
	for (size_t i = 0; i < 200; i++)
		many[i] = "x";
	assert_int_equal(fax_page_render(NULL, many, 200, p, FAX_PAGE_BYTES),
	    -E2BIG);
	/* An empty page is fine and blank. */
	assert_int_equal(fax_page_render(NULL, NULL, 0, p, FAX_PAGE_BYTES), 0);
	assert_int_equal(page_ink(p), 0);
	free(p);
}

/* ---- encoding, decoded back with spandsp's receiver ------------------- */

static const char *card_page[12] = {
	"TWINROUTE PAYMENT ORDER 000000000000A1F3",
	"Provider: Example Provider Ltd",
	"",
	"Card number:  4111 1111 1111 1111",
	"Expiry:       12/29",
	"Cardholder:   JANE Q EXAMPLE",
	"CVC:          123",
	"",
	"Amount:       EUR 1234.56",
	"Order:        2026-11-28 07:56 UTC",
	"Reference:    TR-000000000000A1F3",
	"Please destroy this page after use.",
};

static void
round_trip(int compression, size_t *ret_len)
{
	uint8_t *p = page_new(), *q = page_new();
	size_t max = fax_page_encoded_max(), len = 0;
	uint8_t *enc = malloc(max);

	assert_non_null(enc);
	assert_int_equal(fax_page_render(NULL, card_page, 12, p,
	    FAX_PAGE_BYTES), 0);
	assert_int_equal(fax_page_encode(p, compression, enc, max, &len), 0);
	assert_true(len > 0 && len < max);
	/* Line order, LSB first: the page opens with EOL 000000000001. */
	assert_int_equal(enc[0], 0x00);
	assert_int_equal(enc[1] & 0x0f, 0x08);
	if (compression == FAX_T4_2D)	/* tag bit: first row is 1D */
		assert_int_equal(enc[1] & 0x10, 0x10);
	page_decode(enc, len, compression, q);
	assert_memory_equal(p, q, FAX_PAGE_BYTES);

	/* Exactly the bytes needed is enough; one fewer is not. */
	uint8_t *exact = malloc(len);
	size_t len2 = 7;

	assert_non_null(exact);
	assert_int_equal(fax_page_encode(p, compression, exact, len, &len2),
	    0);
	assert_int_equal(len2, len);
	assert_memory_equal(exact, enc, len);
	len2 = 7;
	assert_int_equal(fax_page_encode(p, compression, exact, len - 1,
	    &len2), -ENOSPC);
	assert_int_equal(len2, 7);
	free(exact);
	free(enc);
	free(p);
	free(q);
	*ret_len = len;
}

static void
test_encode_round_trip(void **state)
{
	size_t len1, len2;

	(void)state;
	round_trip(FAX_T4_1D, &len1);
	round_trip(FAX_T4_2D, &len2);
	print_message("12-line card page: T.4 1D %zu bytes, 2D %zu bytes\n",
	    len1, len2);
	assert_true(len2 < len1);
}

/* The worst pages still fit in fax_page_encoded_max() and decode back. */
static void
test_encode_worst(void **state)
{
	uint8_t *p = page_new(), *q = page_new();
	size_t max = fax_page_encoded_max(), len = 0;
	uint8_t *enc = malloc(max);
	const int comp[] = { FAX_T4_1D, FAX_T4_2D };

	(void)state;
	assert_non_null(enc);
	for (size_t i = 0; i < 2; i++) {
		for (int y = 0; y < H; y++)
			memset(p + (size_t)y * FAX_PAGE_STRIDE,
			    (y & 1) ? 0x55 : 0xaa, FAX_PAGE_STRIDE);
		assert_int_equal(fax_page_encode(p, comp[i], enc, max, &len),
		    0);
		assert_true(len <= max);
		print_message("worst %zu of %zu\n", len, max);
		page_decode(enc, len, comp[i], q);
		assert_memory_equal(p, q, FAX_PAGE_BYTES);
		/* Blank page: tiny. */
		memset(p, 0, FAX_PAGE_BYTES);
		assert_int_equal(fax_page_encode(p, comp[i], enc, max, &len),
		    0);
		assert_true(len < 10 * 1024);
		page_decode(enc, len, comp[i], q);
		assert_memory_equal(p, q, FAX_PAGE_BYTES);
	}
	free(enc);
	free(p);
	free(q);
}

static void
test_encode_errors(void **state)
{
	uint8_t *p = page_new();
	uint8_t small[16];
	size_t len = 42;

	(void)state;
	memset(p, 0, FAX_PAGE_BYTES);
	assert_int_equal(fax_page_encode(p, FAX_T4_1D, small, sizeof(small),
	    &len), -ENOSPC);
	assert_int_equal(len, 42);
	assert_int_equal(fax_page_encode(p, FAX_T4_2D, small, sizeof(small),
	    &len), -ENOSPC);
	assert_int_equal(fax_page_encode(p, 3, small, sizeof(small), &len),
	    -EINVAL);
	assert_int_equal(fax_page_encode(p, 0, small, sizeof(small), &len),
	    -EINVAL);
	assert_int_equal(fax_page_encode(NULL, FAX_T4_1D, small, sizeof(small),
	    &len), -EINVAL);
	assert_int_equal(fax_page_encode(p, FAX_T4_1D, NULL, sizeof(small),
	    &len), -EINVAL);
	assert_int_equal(fax_page_encode(p, FAX_T4_1D, small, sizeof(small),
	    NULL), -EINVAL);
	assert_int_equal(len, 42);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_font_px),
		cmocka_unit_test(test_glyphs),
		cmocka_unit_test(test_columns),
		cmocka_unit_test(test_render_errors),
		cmocka_unit_test(test_encode_round_trip),
		cmocka_unit_test(test_encode_worst),
		cmocka_unit_test(test_encode_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
