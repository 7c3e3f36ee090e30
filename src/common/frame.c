/* SPDX-License-Identifier: ISC */
/* frame.c -- 4-byte big-endian length prefix + one protobuf message */
#include "common/errcode.h"
#include "common/frame.h"

uint32_t
frame_get_length(const uint8_t hdr[FRAME_HDR_SIZE])
{
	return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | (uint32_t)hdr[3];
}

void
frame_put_header(uint8_t hdr[FRAME_HDR_SIZE], uint32_t payload_len)
{
	hdr[0] = (uint8_t)(payload_len >> 24);
	hdr[1] = (uint8_t)(payload_len >> 16);
	hdr[2] = (uint8_t)(payload_len >> 8);
	hdr[3] = (uint8_t)payload_len;
}

int
frame_parse(const uint8_t *buf, size_t len, uint32_t max,
    const uint8_t **ret_payload, uint32_t *ret_payload_len,
    size_t *ret_frame_len)
{
	uint32_t n;

	if (len < FRAME_HDR_SIZE)
		return 0;
	n = frame_get_length(buf);
	if (n > max)
		return -TR_EFRAME_TOO_LARGE;
	if (len - FRAME_HDR_SIZE < n)
		return 0;
	*ret_payload = buf + FRAME_HDR_SIZE;
	*ret_payload_len = n;
	*ret_frame_len = (size_t)FRAME_HDR_SIZE + n;
	return 1;
}
