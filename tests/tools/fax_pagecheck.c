/* SPDX-License-Identifier: ISC */
/* fax_pagecheck.c -- compare a received fax page (TIFF) with the card page */

/*
 * fax-pagecheck [--page N] [--print-lines] TIFF_FILE
 *
 * Reads the page's fields as key=value lines on stdin (the card number
 * never goes on a command line), renders the page twinroute would send
 * with fax_card_lines() and fax_page_render(), decodes page N (1 unless
 * --page) of TIFF_FILE with libtiff and compares them pixel for pixel.
 *
 * Exit 0: "match width=1728 rows=2287". Exit 1: the page differs, and why
 * ("width 1728 != 1700", "rows 2287 != 1143", "first differing row 311").
 * Exit 2: usage, bad input, or a TIFF that cannot be read.
 * --print-lines prints the page's text instead (TIFF_FILE optional).
 *
 * Keys: broker_name broker_ident time_unix provider_id provider_name
 * order_id fax_ref service_name quantity amount holder number exp_month
 * exp_year, all required (a value may be empty), and font and font_px,
 * optional. Blank lines and lines starting with '#' are skipped.
 *
 * Built with FAX_PAGECHECK_NO_MAIN, this file is a set of static
 * functions a unit test includes.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <tiffio.h>

#include "fax/page.h"
#include "vault/faxdoc.h"
#include "vault/secmem.h"

#define PAGECHECK_LINE_MAX 512	/* one key=value line, newline included */
#define PAGECHECK_VALUE_MAX 256 /* one value, NUL included */
#define PAGECHECK_PAGE_MAX 9999

enum pagecheck_key {
	PK_BROKER_NAME = 0,
	PK_BROKER_IDENT,
	PK_TIME_UNIX,
	PK_PROVIDER_ID,
	PK_PROVIDER_NAME,
	PK_ORDER_ID,
	PK_FAX_REF,
	PK_SERVICE_NAME,
	PK_QUANTITY,
	PK_AMOUNT,
	PK_HOLDER,
	PK_NUMBER,
	PK_EXP_MONTH,
	PK_EXP_YEAR,
	PK_FONT,	/* optional from here */
	PK_FONT_PX,
	PK__COUNT,
};

#define PK__REQUIRED PK_FONT

static const char *const pagecheck_keys[PK__COUNT] = {
	[PK_BROKER_NAME] = "broker_name",
	[PK_BROKER_IDENT] = "broker_ident",
	[PK_TIME_UNIX] = "time_unix",
	[PK_PROVIDER_ID] = "provider_id",
	[PK_PROVIDER_NAME] = "provider_name",
	[PK_ORDER_ID] = "order_id",
	[PK_FAX_REF] = "fax_ref",
	[PK_SERVICE_NAME] = "service_name",
	[PK_QUANTITY] = "quantity",
	[PK_AMOUNT] = "amount",
	[PK_HOLDER] = "holder",
	[PK_NUMBER] = "number",
	[PK_EXP_MONTH] = "exp_month",
	[PK_EXP_YEAR] = "exp_year",
	[PK_FONT] = "font",
	[PK_FONT_PX] = "font_px",
};

/* The parsed input; it holds the card number: from secmem, wiped. */
struct pagecheck_input {
	char value[PK__COUNT][PAGECHECK_VALUE_MAX];
	bool set[PK__COUNT];
	struct fax_card_fields f;
	struct fax_page_opts o;
};

static int
pagecheck_u64(const char *s, uint64_t max, uint64_t *ret)
{
	unsigned long long x;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x > max)
		return -EINVAL;
	*ret = x;
	return 0;
}

static int
pagecheck_i64(const char *s, int64_t *ret)
{
	long long x;
	char *end;

	if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -EINVAL;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = x;
	return 0;
}

/* Fill in->f and in->o from the values; -EINVAL with *ret_why. */
static int
pagecheck_fields(struct pagecheck_input *in, const char **ret_why)
{
	char (*v)[PAGECHECK_VALUE_MAX] = in->value;
	uint64_t u;

	for (int k = 0; k < PK__REQUIRED; k++) {
		if (!in->set[k]) {
			*ret_why = pagecheck_keys[k];
			return -EINVAL;
		}
	}
	in->f.broker_name = v[PK_BROKER_NAME];
	in->f.broker_ident = v[PK_BROKER_IDENT];
	if (pagecheck_i64(v[PK_TIME_UNIX], &in->f.time_unix) < 0) {
		*ret_why = "time_unix";
		return -EINVAL;
	}
	in->f.provider_id = v[PK_PROVIDER_ID];
	in->f.provider_name = v[PK_PROVIDER_NAME];
	if (pagecheck_u64(v[PK_ORDER_ID], UINT64_MAX, &in->f.order_id) < 0) {
		*ret_why = "order_id";
		return -EINVAL;
	}
	in->f.fax_ref = v[PK_FAX_REF];
	in->f.service_name = v[PK_SERVICE_NAME];
	if (pagecheck_u64(v[PK_QUANTITY], UINT32_MAX, &u) < 0) {
		*ret_why = "quantity";
		return -EINVAL;
	}
	in->f.quantity = (uint32_t)u;
	in->f.amount = v[PK_AMOUNT];
	in->f.holder = v[PK_HOLDER];
	in->f.number = v[PK_NUMBER];
	if (pagecheck_u64(v[PK_EXP_MONTH], 12, &u) < 0 || u == 0) {
		*ret_why = "exp_month";
		return -EINVAL;
	}
	in->f.exp_month = (unsigned)u;
	if (pagecheck_u64(v[PK_EXP_YEAR], 9999, &u) < 0) {
		*ret_why = "exp_year";
		return -EINVAL;
	}
	in->f.exp_year = (unsigned)u;
	in->o.font_path = in->set[PK_FONT] ? v[PK_FONT] : NULL;
	in->o.font_px = 0;
	if (in->set[PK_FONT_PX]) {
		if (pagecheck_u64(v[PK_FONT_PX], FAX_PAGE_FONT_PX_MAX, &u) <
		    0) {
			*ret_why = "font_px";
			return -EINVAL;
		}
		in->o.font_px = (unsigned)u;
	}
	return 0;
}

/*
 * Read key=value lines from FP into IN (zeroed by the caller). 0, or
 * -EINVAL (an unknown, repeated or missing key, a bad number), -E2BIG (a
 * line or value too long), -EIO; *ret_why names the line or key.
 */
static int
pagecheck_parse(FILE *fp, struct pagecheck_input *in, const char **ret_why)
{
	static char why[64];
	char line[PAGECHECK_LINE_MAX];
	unsigned lineno = 0;
	int r = 0;

	while (fgets(line, sizeof(line), fp)) {
		size_t len = strlen(line), klen;
		char *eq;
		int k;

		lineno++;
		snprintf(why, sizeof(why), "line %u", lineno);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			*ret_why = why;
			r = -E2BIG;
			goto out;
		}
		while (len > 0 &&
		    (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			*ret_why = why;
			r = -EINVAL;
			goto out;
		}
		klen = (size_t)(eq - line);
		for (k = 0; k < PK__COUNT; k++) {
			if (strlen(pagecheck_keys[k]) == klen &&
			    memcmp(pagecheck_keys[k], line, klen) == 0)
				break;
		}
		if (k == PK__COUNT || in->set[k]) {
			*ret_why = why;
			r = -EINVAL;
			goto out;
		}
		if (strlen(eq + 1) >= PAGECHECK_VALUE_MAX) {
			*ret_why = why;
			r = -E2BIG;
			goto out;
		}
		memcpy(in->value[k], eq + 1, strlen(eq + 1) + 1);
		in->set[k] = true;
	}
	if (ferror(fp)) {
		*ret_why = "stdin";
		r = -EIO;
		goto out;
	}
	r = pagecheck_fields(in, ret_why);
out:
	OPENSSL_cleanse(line, sizeof(line));
	return r;
}

/* The page twinroute sends for IN, into BITMAP (FAX_PAGE_BYTES). */
static int
pagecheck_expect(const struct pagecheck_input *in, uint8_t *bitmap)
{
	char (*lines)[FAX_CARD_LINE_LEN];
	const char *ptrs[FAX_CARD_LINES_MAX];
	int n, r;

	lines = secmem_zalloc(FAX_CARD_LINES_MAX * sizeof(*lines));
	if (!lines)
		return -ENOMEM;
	n = fax_card_lines(&in->f, lines, FAX_CARD_LINES_MAX);
	if (n < 0) {
		secmem_free(lines);
		return n;
	}
	for (int i = 0; i < n; i++)
		ptrs[i] = lines[i];
	r = fax_page_render(&in->o, ptrs, (size_t)n, bitmap, FAX_PAGE_BYTES);
	secmem_free(lines);
	return r < 0 ? r : 0;
}

/*
 * Compare page PAGE (1-based) of the TIFF at PATH with EXPECT (a page
 * bitmap, 1 = black). 0: it matches; 1: it differs; -errno: it cannot be
 * read (-EINVAL: not a bilevel page, or no such page). WHY says which.
 */
static int
pagecheck_tiff(const char *path, unsigned page, const uint8_t *expect,
    char *why, size_t why_size)
{
	uint32_t width = 0, rows = 0, diff_row = UINT32_MAX;
	uint16_t bps = 1, spp = 1, photo = PHOTOMETRIC_MINISWHITE;
	uint8_t *row = NULL;
	tmsize_t row_size;
	TIFF *t;
	int r;

	if (page == 0 || page > PAGECHECK_PAGE_MAX) {
		snprintf(why, why_size, "bad page number %u", page);
		return -EINVAL;
	}
	t = TIFFOpen(path, "r");
	if (!t) {
		snprintf(why, why_size, "%s: cannot open as TIFF", path);
		return -EIO;
	}
	if (!TIFFSetDirectory(t, (tdir_t)(page - 1))) {
		snprintf(why, why_size, "%s: no page %u", path, page);
		r = -EINVAL;
		goto out;
	}
	if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &width) ||
	    !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &rows)) {
		snprintf(why, why_size, "%s: page %u has no size", path, page);
		r = -EINVAL;
		goto out;
	}
	TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
	TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
	TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo);
	if (bps != 1 || spp != 1 || (photo != PHOTOMETRIC_MINISWHITE &&
	    photo != PHOTOMETRIC_MINISBLACK)) {
		snprintf(why, why_size,
		    "%s: page %u is not bilevel (%u bits, %u samples, photometric %u)",
		    path, page, bps, spp, photo);
		r = -EINVAL;
		goto out;
	}
	if (width != FAX_PAGE_WIDTH) {
		snprintf(why, why_size, "width %d != %" PRIu32, FAX_PAGE_WIDTH,
		    width);
		r = 1;
		goto out;
	}
	row_size = TIFFScanlineSize(t);
	if (row_size < FAX_PAGE_STRIDE) {
		snprintf(why, why_size, "%s: scanline of %lld bytes", path,
		    (long long)row_size);
		r = -EINVAL;
		goto out;
	}
	row = calloc(1, (size_t)row_size);
	if (!row) {
		snprintf(why, why_size, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	/* libtiff undoes FillOrder; only the photometric is ours to do. */
	for (uint32_t y = 0; y < rows && y < FAX_PAGE_HEIGHT; y++) {
		if (TIFFReadScanline(t, row, y, 0) < 0) {
			snprintf(why, why_size, "%s: row %" PRIu32
			    " does not decode", path, y);
			r = -EIO;
			goto out;
		}
		if (photo == PHOTOMETRIC_MINISBLACK) {
			for (size_t i = 0; i < FAX_PAGE_STRIDE; i++)
				row[i] = (uint8_t)~row[i];
		}
		if (memcmp(row, expect + (size_t)y * FAX_PAGE_STRIDE,
		    FAX_PAGE_STRIDE) != 0) {
			diff_row = y;
			break;
		}
	}
	if (rows != FAX_PAGE_HEIGHT) {
		int n = snprintf(why, why_size, "rows %d != %" PRIu32,
		    FAX_PAGE_HEIGHT, rows);

		if (diff_row != UINT32_MAX && n > 0 && (size_t)n < why_size)
			snprintf(why + n, why_size - (size_t)n,
			    " (first differing row %" PRIu32 ")", diff_row);
		r = 1;
	} else if (diff_row != UINT32_MAX) {
		snprintf(why, why_size, "first differing row %" PRIu32,
		    diff_row);
		r = 1;
	} else {
		snprintf(why, why_size, "match width=%" PRIu32 " rows=%" PRIu32,
		    width, rows);
		r = 0;
	}
out:
	if (row) {
		OPENSSL_cleanse(row, (size_t)row_size);
		free(row);
	}
	TIFFClose(t);
	return r;
}

#ifndef FAX_PAGECHECK_NO_MAIN

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: fax-pagecheck [--page N] [--print-lines] TIFF_FILE < fields\n"
	    "Fields, one key=value a line: broker_name broker_ident time_unix\n"
	    "provider_id provider_name order_id fax_ref service_name quantity\n"
	    "amount holder number exp_month exp_year [font] [font_px].\n"
	    "Exit 0: the page matches; 1: it differs; 2: usage or input error.\n");
}

static int
print_lines(const struct pagecheck_input *in)
{
	char (*lines)[FAX_CARD_LINE_LEN];
	int n;

	lines = secmem_zalloc(FAX_CARD_LINES_MAX * sizeof(*lines));
	if (!lines)
		return -ENOMEM;
	n = fax_card_lines(&in->f, lines, FAX_CARD_LINES_MAX);
	for (int i = 0; i < n; i++)
		printf("%s\n", lines[i]);
	secmem_free(lines);
	return n < 0 ? n : 0;
}

int
main(int argc, char **argv)
{
	struct pagecheck_input *in = NULL;
	const char *path = NULL, *why = "";
	uint8_t *bitmap = NULL;
	bool lines_only = false;
	unsigned page = 1;
	char msg[256];
	int r, ret = 2;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--page") == 0 && i + 1 < argc) {
			uint64_t u;

			if (pagecheck_u64(argv[++i], PAGECHECK_PAGE_MAX, &u) <
				0 ||
			    u == 0) {
				usage(stderr);
				return 2;
			}
			page = (unsigned)u;
		} else if (strcmp(argv[i], "--print-lines") == 0) {
			lines_only = true;
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || path) {
			usage(stderr);
			return 2;
		} else {
			path = argv[i];
		}
	}
	if (!path && !lines_only) {
		usage(stderr);
		return 2;
	}
	TIFFSetWarningHandler(NULL);

	in = secmem_zalloc(sizeof(*in));
	if (!in) {
		fprintf(stderr, "fax-pagecheck: out of memory\n");
		return 2;
	}
	r = pagecheck_parse(stdin, in, &why);
	if (r < 0) {
		fprintf(stderr, "fax-pagecheck: input: %s: %s\n", why,
		    strerror(-r));
		goto out;
	}
	if (lines_only) {
		r = print_lines(in);
		if (r < 0)
			fprintf(stderr, "fax-pagecheck: page text: %s\n",
			    strerror(-r));
		ret = r < 0 ? 2 : 0;
		goto out;
	}
	bitmap = secmem_pages_alloc(FAX_PAGE_BYTES);
	if (!bitmap) {
		fprintf(stderr, "fax-pagecheck: out of memory\n");
		goto out;
	}
	r = pagecheck_expect(in, bitmap);
	if (r < 0) {
		fprintf(stderr, "fax-pagecheck: rendering the page: %s\n",
		    strerror(-r));
		goto out;
	}
	r = pagecheck_tiff(path, page, bitmap, msg, sizeof(msg));
	if (r < 0) {
		fprintf(stderr, "fax-pagecheck: %s\n", msg);
		goto out;
	}
	printf("%s\n", msg);
	ret = r == 0 ? 0 : 1;
out:
	secmem_pages_free(bitmap);
	secmem_free(in);
	return ret;
}

#endif
