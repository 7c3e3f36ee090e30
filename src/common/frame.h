/* SPDX-License-Identifier: ISC */
/* frame.h -- 4-byte big-endian length prefix + one protobuf message */
#ifndef TR_FRAME_H
#define TR_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR_SIZE 4
#define FRAME_MAX_DEFAULT (64u * 1024u)
/* No listener accepts frames larger than this, whatever the config says. */
#define FRAME_MAX_LIMIT (64u * 1024u * 1024u)

/*
 * Look at the start of buf[0..len) for one frame.
 *   returns 1 and sets *ret_payload, *ret_payload_len, *ret_frame_len
 *             (header + payload) when a whole frame is there;
 *   returns 0 when more bytes are needed (outputs untouched);
 *   returns -TR_EFRAME_TOO_LARGE when the length prefix exceeds max.
 * A zero-length frame is a valid frame with an empty payload.
 * Pure: no allocation, no I/O; safe to fuzz.
 */
int frame_parse(const uint8_t *buf, size_t len, uint32_t max,
    const uint8_t **ret_payload, uint32_t *ret_payload_len,
    size_t *ret_frame_len);

/* Write the 4-byte header for a payload of payload_len bytes. */
void frame_put_header(uint8_t hdr[FRAME_HDR_SIZE], uint32_t payload_len);

/* Read the length prefix of a 4-byte header. */
uint32_t frame_get_length(const uint8_t hdr[FRAME_HDR_SIZE]);

#endif
