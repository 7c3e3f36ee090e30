/* SPDX-License-Identifier: ISC */
/* fax2png.c -- a received fax page (TIFF, T.4/T.6) as a PNG to look at */

/*
 * fax2png [--page N] FAX.tif OUT.png
 *
 * Decodes one page of a fax TIFF (what faxline, HylaFAX or a fax modem's
 * software writes: 1 bit per pixel, G3 or G4 compressed, MinIsWhite) with
 * libtiff and writes it as a 1-bit grayscale PNG with libpng. Fax fine
 * resolution is 204 x 196 dpi, close enough to square that the PNG keeps
 * one PNG pixel per fax pixel; its pHYs chunk records the TIFF's
 * resolution.
 */
#include <errno.h>
#include <getopt.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#define PROG "fax2png"
/* Largest page accepted: wider than A3 at 400 dpi, taller than 1.5 m. */
#define MAX_WIDTH 8192u
#define MAX_ROWS 12000u

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " [--page N] FAX.tif OUT.png\n"
	    "Write page N (default 1) of a fax TIFF as a 1-bit PNG.\n");
}

static void
tiff_quiet(const char *module, const char *fmt, va_list ap)
{
	(void)module;
	(void)fmt;
	(void)ap;
}

struct page {
	uint32_t width, rows;
	size_t stride;
	uint8_t *bits;		/* 1 = black, MSB first */
	float xres, yres;	/* dots per inch; 0 if absent */
};

static int
read_page(const char *path, unsigned page_no, struct page *p, char *why,
    size_t why_len)
{
	TIFF *t;
	uint16_t bps = 1, spp = 1, photo = PHOTOMETRIC_MINISWHITE, unit = 0;
	int r = -EINVAL;

	TIFFSetWarningHandler(tiff_quiet);
	t = TIFFOpen(path, "r");
	if (t == NULL) {
		snprintf(why, why_len, "%s: not a TIFF file that can be read",
		    path);
		return -EINVAL;
	}
	if (page_no > 1 && !TIFFSetDirectory(t, (tdir_t)(page_no - 1))) {
		snprintf(why, why_len, "%s: has no page %u", path, page_no);
		goto out;
	}
	TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &p->width);
	TIFFGetField(t, TIFFTAG_IMAGELENGTH, &p->rows);
	TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
	TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
	TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo);
	if (bps != 1 || spp != 1) {
		snprintf(why, why_len, "%s: not a 1-bit fax page (%u bits, %u "
		    "samples)", path, bps, spp);
		goto out;
	}
	if (p->width == 0 || p->width > MAX_WIDTH || p->rows == 0 ||
	    p->rows > MAX_ROWS) {
		snprintf(why, why_len, "%s: page size %ux%u out of bounds", path,
		    p->width, p->rows);
		goto out;
	}
	if (!TIFFGetField(t, TIFFTAG_XRESOLUTION, &p->xres) ||
	    !TIFFGetField(t, TIFFTAG_YRESOLUTION, &p->yres))
		p->xres = p->yres = 0;
	TIFFGetFieldDefaulted(t, TIFFTAG_RESOLUTIONUNIT, &unit);
	if (unit == RESUNIT_CENTIMETER) {
		p->xres *= 2.54f;
		p->yres *= 2.54f;
	}
	p->stride = (p->width + 7) / 8;
	if ((size_t)TIFFScanlineSize(t) > p->stride) {
		snprintf(why, why_len, "%s: unexpected scanline size", path);
		goto out;
	}
	p->bits = calloc(p->rows, p->stride);
	if (p->bits == NULL) {
		snprintf(why, why_len, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t y = 0; y < p->rows; y++) {
		uint8_t *row = p->bits + (size_t)y * p->stride;

		if (TIFFReadScanline(t, row, y, 0) < 0) {
			snprintf(why, why_len, "%s: row %u does not decode",
			    path, y);
			goto out;
		}
		if (photo == PHOTOMETRIC_MINISBLACK)
			for (size_t i = 0; i < p->stride; i++)
				row[i] = (uint8_t)~row[i];
	}
	r = 0;
out:
	TIFFClose(t);
	return r;
}

static int
write_png(const char *path, const struct page *p, char *why, size_t why_len)
{
	png_structp png = NULL;
	png_infop info = NULL;
	/* Both live across png's longjmp. */
	uint8_t *volatile row = NULL;
	volatile int r = -EIO;
	FILE *f;

	f = fopen(path, "wbe");
	if (f == NULL) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png ? png_create_info_struct(png) : NULL;
	row = malloc(p->stride);
	if (png == NULL || info == NULL || row == NULL) {
		snprintf(why, why_len, "out of memory");
		goto out;
	}
	if (setjmp(png_jmpbuf(png))) {
		snprintf(why, why_len, "%s: cannot write the PNG", path);
		goto out;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, p->width, p->rows, 1, PNG_COLOR_TYPE_GRAY,
	    PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
	    PNG_FILTER_TYPE_DEFAULT);
	if (p->xres > 0 && p->yres > 0)
		png_set_pHYs(png, info, (png_uint_32)(p->xres / 0.0254f + 0.5f),
		    (png_uint_32)(p->yres / 0.0254f + 0.5f),
		    PNG_RESOLUTION_METER);
	png_write_info(png, info);
	for (uint32_t y = 0; y < p->rows; y++) {
		const uint8_t *src = p->bits + (size_t)y * p->stride;

		/* PNG gray: 0 is black; the fax's 1 is black. */
		for (size_t i = 0; i < p->stride; i++)
			row[i] = (uint8_t)~src[i];
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	r = 0;
out:
	png_destroy_write_struct(&png, &info);
	free((uint8_t *)row);
	if (fclose(f) != 0 && r == 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		r = -EIO;
	}
	if (r < 0)
		(void)remove(path);
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "page", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct page p = { 0 };
	unsigned page_no = 1;
	char why[512] = "";
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v < 1 || v > 1000) {
				fprintf(stderr, PROG ": --page: 1..1000: %s\n",
				    optarg);
				return 2;
			}
			page_no = (unsigned)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (read_page(argv[optind], page_no, &p, why, sizeof(why)) < 0 ||
	    write_png(argv[optind + 1], &p, why, sizeof(why)) < 0) {
		fprintf(stderr, PROG ": %s\n", why);
		free(p.bits);
		return 1;
	}
	printf("%s: %ux%u\n", argv[optind + 1], p.width, p.rows);
	free(p.bits);
	return 0;
}
