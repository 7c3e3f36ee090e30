/* SPDX-License-Identifier: ISC */
/* page.c -- one A4 fax page: text rendered with FreeType, T.4 encoded */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_MODULE_H
#include FT_SYSTEM_H
#include FT_TRUETYPE_TABLES_H

#include <tiffio.h>
#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES
#include <spandsp.h>

#include "common/macro.h"
#include "fax/page.h"

/* Horizontal and vertical resolution, in dots per inch (R8 x fine). */
#define FAX_PAGE_XDPI 204
#define FAX_PAGE_YDPI 196

/*
 * Worst case of the T.4 encoding of one row: EOL and tag bit (13 bits),
 * at most 7 bits per pixel (a vertical code of 7 bits advances at least one
 * pixel; pass, horizontal and 1D codes cost less per pixel), and slack.
 */
#define FAX_PAGE_ROW_BITS_MAX (13 + 7 * FAX_PAGE_WIDTH + 19)
/* RTC: 6 EOLs with their tag bits, and the pad to a whole byte. */
#define FAX_PAGE_RTC_BITS_MAX (6 * 13 + 8)

/* ---- FreeType with an allocator that wipes ---------------------------- */

static void
ftmem_wipe_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

static void *
ftmem_alloc(FT_Memory memory, long size)
{
	(void)memory;
	if (size <= 0)
		return NULL;
	return malloc((size_t)size);
}

static void
ftmem_free(FT_Memory memory, void *block)
{
	(void)memory;
	ftmem_wipe_free(block);
}

/* Move, never grow in place: the old block is wiped before it is freed. */
static void *
ftmem_realloc(FT_Memory memory, long cur_size, long new_size, void *block)
{
	void *p;

	(void)memory;
	if (new_size <= 0)
		return NULL;
	if ((p = malloc((size_t)new_size)) == NULL)
		return NULL;
	if (block != NULL && cur_size > 0)
		memcpy(p, block, (size_t)MIN(cur_size, new_size));
	ftmem_wipe_free(block);
	return p;
}

struct render_ctx {
	struct FT_MemoryRec_ memory;
	FT_Library lib;
	FT_Face face;
	int ascender;	/* pixels above the baseline */
	int descender;	/* pixels below the baseline, >= 0 */
	int advance;	/* fixed cell width, pixels */
	int pitch;	/* baseline to baseline, rows */
};

static void
render_ctx_done(struct render_ctx *c)
{
	if (c->face != NULL)
		FT_Done_Face(c->face);
	c->face = NULL;
	if (c->lib != NULL)
		FT_Done_Library(c->lib);
	c->lib = NULL;
}

static int
ft_error_to_errno(FT_Error e)
{
	switch (e) {
	case FT_Err_Out_Of_Memory:
		return -ENOMEM;
	default:
		return -EINVAL;
	}
}

/* Cap height of the face in font units, from OS/2 or the 'H' outline. */
static long
face_cap_units(FT_Face face)
{
	const TT_OS2 *os2;

	os2 = FT_Get_Sfnt_Table(face, FT_SFNT_OS2);
	if (os2 != NULL && os2->version >= 2 && os2->sCapHeight > 0)
		return os2->sCapHeight;
	if (FT_Load_Char(face, 'H', FT_LOAD_NO_SCALE) == 0 &&
	    face->glyph->metrics.height > 0)
		return face->glyph->metrics.height;
	return (long)face->units_per_EM * 7 / 10;
}

static int
render_ctx_init(struct render_ctx *c, const char *path, unsigned font_px)
{
	FT_Error e;
	long cap, ppem_y, ppem_x;
	int fd;

	memset(c, 0, sizeof(*c));
	c->memory.alloc = ftmem_alloc;
	c->memory.free = ftmem_free;
	c->memory.realloc = ftmem_realloc;

	/* FreeType reports any open failure alike; tell them apart. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	close(fd);

	if ((e = FT_New_Library(&c->memory, &c->lib)) != 0)
		return ft_error_to_errno(e);
	FT_Add_Default_Modules(c->lib);
	FT_Set_Default_Properties(c->lib);
	if ((e = FT_New_Face(c->lib, path, 0, &c->face)) != 0)
		return ft_error_to_errno(e);
	if (!FT_IS_SCALABLE(c->face) || !FT_IS_FIXED_WIDTH(c->face) ||
	    c->face->units_per_EM == 0)
		return -EINVAL;

	cap = face_cap_units(c->face);
	if (cap <= 0)
		return -EINVAL;
	ppem_y = ((long)font_px * c->face->units_per_EM + cap / 2) / cap;
	ppem_x = (ppem_y * FAX_PAGE_XDPI + FAX_PAGE_YDPI / 2) / FAX_PAGE_YDPI;
	if ((e = FT_Set_Pixel_Sizes(c->face, (FT_UInt)ppem_x,
	    (FT_UInt)ppem_y)) != 0)
		return ft_error_to_errno(e);

	c->ascender = (int)((c->face->size->metrics.ascender + 63) >> 6);
	c->descender = (int)((-c->face->size->metrics.descender + 63) >> 6);
	if (c->descender < 0)
		c->descender = 0;
	c->pitch = (int)((3 * ppem_y + 1) / 2);
	if ((e = FT_Load_Char(c->face, '0',
	    FT_LOAD_DEFAULT | FT_LOAD_TARGET_MONO)) != 0)
		return ft_error_to_errno(e);
	c->advance = (int)((c->face->glyph->advance.x + 32) >> 6);
	if (c->advance <= 0 || c->ascender <= 0)
		return -EINVAL;
	return 0;
}

/* ---- text ------------------------------------------------------------- */

/*
 * Decode one UTF-8 sequence from S (LEN bytes left): strict (no overlong
 * forms, surrogates or values past U+10FFFF). Returns its length, or 0.
 */
static size_t
utf8_decode(const uint8_t *s, size_t len, uint32_t *ret_cp)
{
	uint32_t cp, min;
	size_t n, i;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, cp = s[0] & 0x07, min = 0x10000;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return n;
}

static int
is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

/* Check every line before anything is drawn. */
static int
check_lines(const char *const *lines, size_t n_lines)
{
	size_t i, off, len, k;
	uint32_t cp;

	for (i = 0; i < n_lines; i++) {
		if (lines[i] == NULL)
			return -EINVAL;
		len = strnlen(lines[i], FAX_PAGE_LINE_MAX + 1);
		if (len > FAX_PAGE_LINE_MAX)
			return -E2BIG;
		for (off = 0; off < len; off += k) {
			k = utf8_decode((const uint8_t *)lines[i] + off,
			    len - off, &cp);
			if (k == 0 || is_control(cp))
				return -EILSEQ;
		}
	}
	return 0;
}

static void
set_pixel(uint8_t *bitmap, int x, int y)
{
	bitmap[(size_t)y * FAX_PAGE_STRIDE + (size_t)x / 8] |=
	    (uint8_t)(0x80u >> (x & 7));
}

/* OR the glyph in SLOT onto the page, clipped to the area inside margins. */
static void
blit_glyph(uint8_t *bitmap, const FT_GlyphSlot slot, int pen_x, int baseline)
{
	const FT_Bitmap *b = &slot->bitmap;
	int x, y, px, py, ink;
	const uint8_t *row;

	for (y = 0; y < (int)b->rows; y++) {
		py = baseline - slot->bitmap_top + y;
		if (py < FAX_PAGE_MARGIN_Y ||
		    py >= FAX_PAGE_HEIGHT - FAX_PAGE_MARGIN_Y)
			continue;
		row = b->buffer + (ptrdiff_t)y * b->pitch;
		if (b->pitch < 0)
			row = b->buffer + (ptrdiff_t)((int)b->rows - 1 - y) *
			    -b->pitch;
		for (x = 0; x < (int)b->width; x++) {
			px = pen_x + slot->bitmap_left + x;
			if (px < FAX_PAGE_MARGIN_X ||
			    px >= FAX_PAGE_WIDTH - FAX_PAGE_MARGIN_X)
				continue;
			if (b->pixel_mode == FT_PIXEL_MODE_MONO)
				ink = row[x / 8] & (0x80 >> (x & 7));
			else if (b->pixel_mode == FT_PIXEL_MODE_GRAY)
				ink = row[x] >= 128;
			else
				ink = 0;
			if (ink)
				set_pixel(bitmap, px, py);
		}
	}
}

static void
wipe_glyph(FT_GlyphSlot slot)
{
	FT_Bitmap *b = &slot->bitmap;

	if (b->buffer != NULL)
		explicit_bzero(b->buffer,
		    (size_t)b->rows * (size_t)(b->pitch < 0 ? -b->pitch :
		    b->pitch));
}

/* Draw one line; returns 1 if it was cut at the right margin, or -errno. */
static int
render_line(struct render_ctx *c, const char *line, int baseline,
    uint8_t *bitmap)
{
	size_t len, off, k;
	uint32_t cp;
	int pen_x, e;

	len = strlen(line);
	pen_x = FAX_PAGE_MARGIN_X;
	for (off = 0; off < len; off += k) {
		if ((k = utf8_decode((const uint8_t *)line + off, len - off,
		    &cp)) == 0)
			return -EILSEQ;
		if (pen_x + c->advance > FAX_PAGE_WIDTH - FAX_PAGE_MARGIN_X)
			return 1;
		if ((e = FT_Load_Char(c->face, cp,
		    FT_LOAD_RENDER | FT_LOAD_TARGET_MONO)) != 0)
			return ft_error_to_errno(e);
		blit_glyph(bitmap, c->face->glyph, pen_x, baseline);
		wipe_glyph(c->face->glyph);
		pen_x += c->advance;
	}
	return 0;
}

int
fax_page_render(const struct fax_page_opts *o, const char *const *lines,
    size_t n_lines, uint8_t *bitmap, size_t bitmap_size)
{
	struct render_ctx c;
	const char *path = FAX_PAGE_FONT_DEFAULT;
	unsigned font_px = FAX_PAGE_FONT_PX_DEFAULT;
	size_t i, max_lines, cut = 0;
	int r, baseline, bottom;

	if (bitmap == NULL || bitmap_size < FAX_PAGE_BYTES ||
	    (lines == NULL && n_lines > 0))
		return -EINVAL;
	if (o != NULL && o->font_path != NULL)
		path = o->font_path;
	if (o != NULL && o->font_px != 0)
		font_px = o->font_px;
	if (font_px < FAX_PAGE_FONT_PX_MIN || font_px > FAX_PAGE_FONT_PX_MAX)
		return -EINVAL;
	if ((r = check_lines(lines, n_lines)) < 0)
		return r;
	memset(bitmap, 0, FAX_PAGE_BYTES);

	if ((r = render_ctx_init(&c, path, font_px)) < 0)
		goto out;
	bottom = FAX_PAGE_HEIGHT - FAX_PAGE_MARGIN_Y;
	if (FAX_PAGE_MARGIN_Y + c.ascender + c.descender > bottom) {
		r = -EINVAL;
		goto out;
	}
	max_lines = (size_t)((bottom - FAX_PAGE_MARGIN_Y - c.ascender -
	    c.descender) / c.pitch) + 1;
	if (n_lines > max_lines) {
		r = -E2BIG;
		goto out;
	}
	for (i = 0; i < n_lines; i++) {
		baseline = FAX_PAGE_MARGIN_Y + c.ascender + (int)i * c.pitch;
		if ((r = render_line(&c, lines[i], baseline, bitmap)) < 0)
			goto out;
		cut += (size_t)r;
	}
	r = (int)MIN(cut, (size_t)INT32_MAX);
out:
	render_ctx_done(&c);
	return r;
}

/* ---- T.4 encoding ----------------------------------------------------- */

size_t
fax_page_encoded_max(void)
{
	return ((size_t)FAX_PAGE_HEIGHT * FAX_PAGE_ROW_BITS_MAX +
	    FAX_PAGE_RTC_BITS_MAX + 7) / 8;
}

struct row_feed {
	const uint8_t *bitmap;
	int row;
	int bad_len;
};

/* spandsp's row handler: one row per call, 0 at the end of the page. */
static int
feed_row(void *user_data, uint8_t buf[], size_t len)
{
	struct row_feed *f = user_data;

	if (f->row >= FAX_PAGE_HEIGHT)
		return 0;
	if (len != FAX_PAGE_STRIDE) {
		f->bad_len = 1;
		return -1;
	}
	memcpy(buf, f->bitmap + (size_t)f->row * FAX_PAGE_STRIDE, len);
	f->row++;
	return (int)len;
}

/*
 * A blank one-row TIFF carrying the page geometry, in an anonymous memory
 * file. Returns its descriptor or -errno.
 */
static int
geometry_tiff(void)
{
	static const uint8_t blank[FAX_PAGE_STRIDE];
	TIFF *t;
	int fd, ok;

	if ((fd = memfd_create("fax-page-geometry", MFD_CLOEXEC)) == -1)
		return -errno;
	if ((t = TIFFFdOpen(fd, "fax-page-geometry", "w")) == NULL) {
		close(fd);
		return -EIO;
	}
	ok = TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)FAX_PAGE_WIDTH) &&
	    TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)1) &&
	    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1) &&
	    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1) &&
	    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_NONE) &&
	    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE) &&
	    TIFFSetField(t, TIFFTAG_FILLORDER, FILLORDER_MSB2LSB) &&
	    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
	    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)1) &&
	    TIFFSetField(t, TIFFTAG_XRESOLUTION, (double)FAX_PAGE_XDPI) &&
	    TIFFSetField(t, TIFFTAG_YRESOLUTION, (double)FAX_PAGE_YDPI) &&
	    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH) &&
	    TIFFWriteScanline(t, unconst(blank), 0, 0) == 1 &&
	    TIFFWriteDirectory(t) && TIFFFlush(t);
	/* Frees libtiff's state but leaves FD open. */
	TIFFCleanup(t);
	if (!ok) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* Wipe spandsp's copies of the page: the encoded image, row and runs. */
static void
t4_wipe(t4_tx_state_t *s)
{
	size_t runs = ((size_t)s->image_width + 4) * sizeof(uint32_t);

	if (s->image_buffer != NULL && s->image_buffer_size > 0)
		explicit_bzero(s->image_buffer, (size_t)MIN(s->image_size,
		    s->image_buffer_size));
	if (s->row_buf != NULL && s->bytes_per_row > 0)
		explicit_bzero(s->row_buf, (size_t)s->bytes_per_row);
	if (s->cur_runs != NULL && s->image_width > 0)
		explicit_bzero(s->cur_runs, runs);
	if (s->ref_runs != NULL && s->image_width > 0)
		explicit_bzero(s->ref_runs, runs);
}

int
fax_page_encode(const uint8_t *bitmap, int compression, uint8_t *out,
    size_t out_size, size_t *ret_len)
{
	struct row_feed feed = { .bitmap = bitmap };
	t4_tx_state_t *s = NULL;
	char path[64];
	size_t max, len;
	int fd, r, n;

	if (bitmap == NULL || out == NULL || ret_len == NULL)
		return -EINVAL;
	if (compression != FAX_T4_1D && compression != FAX_T4_2D)
		return -EINVAL;

	if ((fd = geometry_tiff()) < 0)
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	s = t4_tx_init(NULL, path, -1, -1);
	close(fd);
	if (s == NULL)
		return -EIO;
	if (t4_tx_get_image_width(s) != FAX_PAGE_WIDTH ||
	    t4_tx_get_x_resolution(s) != T4_X_RESOLUTION_R8 ||
	    t4_tx_get_y_resolution(s) != T4_Y_RESOLUTION_FINE) {
		r = -EIO;
		goto out;
	}
	/*
	 * Give spandsp an image buffer that holds any page, so it never
	 * reallocates (which would leave a stale copy behind); it frees it.
	 */
	max = fax_page_encoded_max();
	if (s->image_buffer == NULL && s->image_buffer_size == 0) {
		if ((s->image_buffer = malloc(max)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		s->image_buffer_size = (int)max;
	}
	t4_tx_set_tx_encoding(s, compression == FAX_T4_1D ?
	    T4_COMPRESSION_ITU_T4_1D : T4_COMPRESSION_ITU_T4_2D);
	t4_tx_set_header_info(s, NULL);
	t4_tx_set_row_read_handler(s, feed_row, &feed);
	if (t4_tx_start_page(s) != 0 || feed.bad_len ||
	    feed.row != FAX_PAGE_HEIGHT || s->image_size <= 0) {
		r = -EIO;
		goto out;
	}
	len = (size_t)s->image_size;
	if (len > out_size) {
		r = -ENOSPC;
		goto out;
	}
	n = t4_tx_get_chunk(s, out, (int)len);
	if (n < 0 || (size_t)n != len) {
		explicit_bzero(out, len);
		r = -EIO;
		goto out;
	}
	t4_tx_end_page(s);
	*ret_len = len;
	r = 0;
out:
	t4_wipe(s);
	t4_tx_free(s);
	return r;
}
