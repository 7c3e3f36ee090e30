/* SPDX-License-Identifier: ISC */
/* fax_decode.h -- unit tests decode a T.4 page with spandsp's receiver */
#ifndef TR_TESTS_FAX_DECODE_H
#define TR_TESTS_FAX_DECODE_H

/* Static functions for the one test that includes this, after <cmocka.h>. */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <spandsp.h>

#include "fax/page.h"

struct page_sink {
	uint8_t *page;
	int rows;
	int bad;
};

static int
page_sink_row(void *user_data, const uint8_t buf[], size_t len)
{
	struct page_sink *k = user_data;

	if (len == 0)
		return 0;
	if (len != FAX_PAGE_STRIDE || k->rows >= FAX_PAGE_HEIGHT) {
		k->bad = 1;
		return 0;
	}
	memcpy(k->page + (size_t)k->rows * FAX_PAGE_STRIDE, buf, len);
	k->rows++;
	return 0;
}

/* Decode ENC, a whole page in COMPRESSION (FAX_T4_1D or FAX_T4_2D), into
 * PAGE; the test fails unless every row of the page comes out clean. */
static void
page_decode(const uint8_t *enc, size_t len, int compression, uint8_t *page)
{
	struct page_sink k = { .page = page };
	t4_rx_state_t *r;
	t4_stats_t st;
	char path[64];
	int fd;

	fd = memfd_create("test-fax-rx", MFD_CLOEXEC);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = t4_rx_init(NULL, path, T4_COMPRESSION_ITU_T4_2D);
	assert_non_null(r);
	t4_rx_set_rx_encoding(r, compression == FAX_T4_1D ?
	    T4_COMPRESSION_ITU_T4_1D : T4_COMPRESSION_ITU_T4_2D);
	t4_rx_set_image_width(r, FAX_PAGE_WIDTH);
	t4_rx_set_x_resolution(r, T4_X_RESOLUTION_R8);
	t4_rx_set_y_resolution(r, T4_Y_RESOLUTION_FINE);
	t4_rx_set_row_write_handler(r, page_sink_row, &k);
	assert_int_equal(t4_rx_start_page(r), 0);
	/* RTC ends the page. */
	assert_true(t4_rx_put_chunk(r, enc, (int)len));
	t4_rx_end_page(r);
	t4_rx_get_transfer_statistics(r, &st);
	t4_rx_free(r);
	close(fd);
	assert_int_equal(k.bad, 0);
	assert_int_equal(k.rows, FAX_PAGE_HEIGHT);
	assert_int_equal(st.length, FAX_PAGE_HEIGHT);
	assert_int_equal(st.bad_rows, 0);
}

#endif
