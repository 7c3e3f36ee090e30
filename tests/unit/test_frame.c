/* SPDX-License-Identifier: ISC */
/* test_frame.c -- framing: split, merged, empty, oversize and garbage input */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/errcode.h"
#include "common/frame.h"

static size_t
put_frame(uint8_t *buf, const char *payload, uint32_t len)
{
	frame_put_header(buf, len);
	memcpy(buf + FRAME_HDR_SIZE, payload, len);
	return FRAME_HDR_SIZE + len;
}

static void
test_header_round_trip(void **state)
{
	uint8_t hdr[FRAME_HDR_SIZE];
	const uint32_t values[] = { 0, 1, 255, 256, 65535, 65536, 0x01020304,
		UINT32_MAX };

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		frame_put_header(hdr, values[i]);
		assert_int_equal(frame_get_length(hdr), values[i]);
	}
	/* Big-endian on the wire, whatever the host. */
	frame_put_header(hdr, 0x01020304);
	assert_int_equal(hdr[0], 1);
	assert_int_equal(hdr[3], 4);
}

static void
test_whole_frame(void **state)
{
	uint8_t buf[64];
	const uint8_t *p = NULL;
	uint32_t plen = 0;
	size_t flen = 0;
	size_t n = put_frame(buf, "hello", 5);

	(void)state;
	assert_int_equal(frame_parse(buf, n, 1024, &p, &plen, &flen), 1);
	assert_ptr_equal(p, buf + FRAME_HDR_SIZE);
	assert_int_equal(plen, 5);
	assert_int_equal(flen, n);
	assert_memory_equal(p, "hello", 5);
}

/* Every prefix of a frame is "need more"; outputs stay untouched. */
static void
test_split_frame(void **state)
{
	uint8_t buf[64];
	size_t n = put_frame(buf, "abcdefgh", 8);

	(void)state;
	for (size_t cut = 0; cut < n; cut++) {
		const uint8_t *p = (const uint8_t *)"sentinel";
		uint32_t plen = 77;
		size_t flen = 99;

		assert_int_equal(frame_parse(buf, cut, 1024, &p, &plen, &flen), 0);
		assert_string_equal((const char *)p, "sentinel");
		assert_int_equal(plen, 77);
		assert_int_equal(flen, 99);
	}
}

/* Two frames back to back come out one after the other. */
static void
test_merged_frames(void **state)
{
	uint8_t buf[64];
	size_t n = put_frame(buf, "one", 3);
	const uint8_t *p;
	uint32_t plen;
	size_t flen;

	(void)state;
	n += put_frame(buf + n, "second", 6);
	n += put_frame(buf + n, "", 0);
	assert_int_equal(frame_parse(buf, n, 1024, &p, &plen, &flen), 1);
	assert_int_equal(plen, 3);
	assert_memory_equal(p, "one", 3);
	assert_int_equal(frame_parse(buf + flen, n - flen, 1024, &p, &plen,
	    &flen), 1);
	assert_int_equal(plen, 6);
	assert_memory_equal(p, "second", 6);
	assert_int_equal(frame_parse(buf + 7 + 10, n - 17, 1024, &p, &plen,
	    &flen), 1);
	assert_int_equal(plen, 0);
	assert_int_equal(flen, FRAME_HDR_SIZE);
}

static void
test_zero_length(void **state)
{
	uint8_t buf[FRAME_HDR_SIZE] = { 0, 0, 0, 0 };
	const uint8_t *p = NULL;
	uint32_t plen = 1;
	size_t flen = 0;

	(void)state;
	assert_int_equal(frame_parse(buf, sizeof(buf), 16, &p, &plen, &flen), 1);
	assert_int_equal(plen, 0);
	assert_int_equal(flen, FRAME_HDR_SIZE);
}

/* The limit is known from the header alone: no need to wait for the body. */
static void
test_oversize(void **state)
{
	uint8_t buf[FRAME_HDR_SIZE];
	const uint8_t *p;
	uint32_t plen;
	size_t flen;

	(void)state;
	frame_put_header(buf, 1025);
	assert_int_equal(frame_parse(buf, sizeof(buf), 1024, &p, &plen, &flen),
	    -TR_EFRAME_TOO_LARGE);
	frame_put_header(buf, 1024);
	assert_int_equal(frame_parse(buf, sizeof(buf), 1024, &p, &plen, &flen),
	    0);
	frame_put_header(buf, UINT32_MAX);
	assert_int_equal(frame_parse(buf, sizeof(buf), FRAME_MAX_LIMIT, &p,
	    &plen, &flen), -TR_EFRAME_TOO_LARGE);
}

/* Random bytes never read past the buffer or claim more than is there. */
static void
test_garbage(void **state)
{
	uint8_t buf[256];
	uint32_t seed = 12345;

	(void)state;
	for (int round = 0; round < 10000; round++) {
		size_t len = (size_t)(round % (int)sizeof(buf));
		const uint8_t *p;
		uint32_t plen;
		size_t flen;
		int r;

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		/* Small lengths so some garbage parses as whole frames. */
		if (len >= 4 && round % 3 == 0)
			buf[0] = buf[1] = buf[2] = 0;
		r = frame_parse(buf, len, 200, &p, &plen, &flen);
		assert_true(r == 0 || r == 1 || r == -TR_EFRAME_TOO_LARGE);
		if (r == 1) {
			assert_true(flen <= len);
			assert_true(plen <= 200);
			assert_int_equal(flen, plen + FRAME_HDR_SIZE);
		}
	}
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(tr_strerror(-TR_EFRAME_TOO_LARGE), "frame too large");
	assert_string_equal(tr_strerror(0), "success");
	assert_non_null(tr_strerror(-TR_ELAST));
	assert_non_null(tr_strerror(-2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_whole_frame),
		cmocka_unit_test(test_split_frame),
		cmocka_unit_test(test_merged_frames),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
