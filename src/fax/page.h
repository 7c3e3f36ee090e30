/* SPDX-License-Identifier: ISC */
/* page.h -- one A4 fax page: text rendered with FreeType, T.4 encoded */
#ifndef TR_FAX_PAGE_H
#define TR_FAX_PAGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The page is composed in the vault thread, the only place the card number
 * exists in plaintext, and never touches disk. Nothing here allocates a
 * page-sized buffer for the image: the caller owns the bitmap and the
 * encoded output (locked memory) and wipes both when done.
 *
 * Geometry: ITU-T T.4 A4 at fine resolution, 204 x 196 dpi (R8 x 7.7
 * lines/mm): 1728 pixels wide, 2287 rows (297 mm at 7.7 lines/mm).
 *
 * Bitmap convention (what spandsp's T.4 encoder reads through its row
 * handler): 1 bit per pixel, rows of FAX_PAGE_STRIDE bytes top to bottom,
 * the leftmost pixel in the most significant bit of the first byte, and
 * 1 = black (ink), 0 = white.
 */
#define FAX_PAGE_WIDTH 1728
#define FAX_PAGE_HEIGHT 2287
#define FAX_PAGE_STRIDE (FAX_PAGE_WIDTH / 8)
#define FAX_PAGE_BYTES ((size_t)FAX_PAGE_STRIDE * FAX_PAGE_HEIGHT)

/* Margins: about 10 mm on every side (80 px at 204 dpi, 77 rows). */
#define FAX_PAGE_MARGIN_X 80
#define FAX_PAGE_MARGIN_Y 77

/* Cap height used when font_px is 0: 24 rows, about 3.1 mm. */
#define FAX_PAGE_FONT_PX_DEFAULT 24u
/* Smallest and largest cap height accepted, in pixels. */
#define FAX_PAGE_FONT_PX_MIN 8u
#define FAX_PAGE_FONT_PX_MAX 200u
/* Longest text line accepted, in bytes of UTF-8. */
#define FAX_PAGE_LINE_MAX 1024
#define FAX_PAGE_FONT_DEFAULT "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"

struct fax_page_opts {
	const char *font_path;	/* NULL: FAX_PAGE_FONT_DEFAULT; monospace */
	unsigned font_px;	/* cap height in pixels; 0: default */
};

/*
 * Render LINES (UTF-8, no control characters) onto BITMAP, which is
 * cleared first. O may be NULL (defaults). Lines start at the top-left
 * margin, one every 1.5 em (ppem of the chosen cap height); an empty line
 * leaves its band blank. A line too wide for the area inside the margins is
 * cut at the last whole character that fits.
 *
 * Returns the number of lines cut (>= 0), or:
 *   -EINVAL  NULL bitmap or line pointer, bitmap_size < FAX_PAGE_BYTES,
 *            font_px out of range, or a font that is not a scalable
 *            fixed-width face FreeType can read;
 *   -ENOENT  the font file does not exist (-EACCES: not readable);
 *   -EILSEQ  a line is not valid UTF-8 or holds a control character;
 *   -E2BIG   more lines than fit on the page, or a line longer than
 *            FAX_PAGE_LINE_MAX bytes;
 *   -ENOMEM.
 * On error the bitmap may hold part of the page: the caller wipes it.
 *
 * FreeType runs in a private library instance whose allocator wipes every
 * block before freeing it, so the glyph bitmaps and outlines of the digits
 * rendered do not outlive the call; the face and library are released
 * before returning.
 */
int fax_page_render(const struct fax_page_opts *o, const char *const *lines,
    size_t n_lines, uint8_t *bitmap, size_t bitmap_size);

enum fax_compression {
	FAX_T4_1D = 1,	/* Modified Huffman */
	FAX_T4_2D = 2,	/* Modified READ, K = 4 at fine resolution */
};

/*
 * T.4-encode a page BITMAP (FAX_PAGE_BYTES, convention above) with
 * spandsp into OUT. The output is the page as a Class 1 modem sends it
 * after the training: every row starts with an EOL (in 2D followed by the
 * 1D/2D tag bit), the page ends with RTC (6 EOLs, each with its tag bit in
 * 2D), and the last byte is padded with 1 bits. Bits are in line order:
 * the first bit on the line is the least significant bit of out[0] (an EOL
 * 000000000001 appears as 0x00 0x08 in the first byte and low nibble of
 * the second). No fill bits are added for a minimum scan line time.
 *
 * spandsp 0.0.6 takes the page geometry from a TIFF file: a one-row blank
 * TIFF is written to an anonymous memory file (memfd, opened through
 * /proc/self/fd) and the rows are fed from BITMAP through the row handler.
 * spandsp's encoded-image buffer is sized by this module to
 * fax_page_encoded_max() so it never grows (no stale copies) and is wiped,
 * with spandsp's row and run buffers, before it is freed.
 *
 * Returns 0 and the length in *ret_len, or:
 *   -EINVAL  NULL pointer or unknown compression;
 *   -ENOSPC  OUT_SIZE is smaller than the encoded page (nothing written);
 *   -EIO     spandsp refused the page;
 *   -ENOMEM, or the -errno of memfd_create.
 */
int fax_page_encode(const uint8_t *bitmap, int compression, uint8_t *out,
    size_t out_size, size_t *ret_len);

/* An OUT_SIZE that holds any encoded page, whatever its content. */
size_t fax_page_encoded_max(void);

#endif
