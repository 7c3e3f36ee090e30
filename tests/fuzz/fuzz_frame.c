/* SPDX-License-Identifier: ISC */
/* fuzz_frame.c -- libFuzzer target: the frame decoder over a stream cut anywhere */

/*
 * The input: one byte choosing the frame limit, one seeding the cuts,
 * then the stream. The stream is decoded twice: whole, frame after frame
 * (the reference), and as a receiver would, appending pieces of 1 to 64
 * bytes (sizes drawn from the seed) to a buffer and taking out every
 * whole frame after each. Both must see the same frames and end alike:
 * on the same error, or with the same bytes waiting.
 *
 * Every call of frame_parse is checked: a frame is never over the limit,
 * its payload starts right after the header, its lengths agree with each
 * other, with the header and with the buffer; "need more" means the
 * frame is not all there and leaves the outputs alone; an error means
 * the header is over the limit, and leaves them alone too.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errcode.h"
#include "common/frame.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t fz_limits[8] = { 0, 1, 5, 16, 255, 4096,
	FRAME_MAX_DEFAULT, FRAME_MAX_LIMIT };

/* What a decode saw: every frame, and how it ended. */
struct fz_run {
	uint64_t hash;          /* of each frame's length and payload */
	size_t frames;
	size_t payload_bytes;
	int end;                /* 0: bytes left waiting; or the error */
	size_t left;            /* bytes waiting at the end */
};

static uint64_t
fz_fnv(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* One checked call: 1, 0 or the error, as frame_parse. */
static int
fz_parse(const uint8_t *buf, size_t len, uint32_t max,
    const uint8_t **ret_payload, uint32_t *ret_plen)
{
	static const uint8_t canary;
	const uint8_t *payload = &canary;
	uint32_t plen = 0xdeadbeef, hlen;
	size_t flen = 0xfeedface;
	int r;

	r = frame_parse(buf, len, max, &payload, &plen, &flen);
	hlen = len >= FRAME_HDR_SIZE ? frame_get_length(buf) : 0;
	if (r == 1) {
		FZ_CHECK(len >= FRAME_HDR_SIZE);
		FZ_CHECK(payload == buf + FRAME_HDR_SIZE);
		FZ_CHECK(plen <= max && plen == hlen);
		FZ_CHECK(flen == (size_t)FRAME_HDR_SIZE + plen);
		FZ_CHECK(flen <= len);
		*ret_payload = payload;
		*ret_plen = plen;
		return 1;
	}
	/* Outputs untouched otherwise. */
	FZ_CHECK(payload == &canary && plen == 0xdeadbeef &&
	    flen == 0xfeedface);
	if (r == 0) {
		FZ_CHECK(len < FRAME_HDR_SIZE ||
		    (hlen <= max && len - FRAME_HDR_SIZE < hlen));
		return 0;
	}
	FZ_CHECK(r == -TR_EFRAME_TOO_LARGE);
	FZ_CHECK(len >= FRAME_HDR_SIZE && hlen > max);
	return r;
}

static void
fz_frame_seen(struct fz_run *run, const uint8_t *payload, uint32_t plen)
{
	uint8_t hdr[FRAME_HDR_SIZE];

	frame_put_header(hdr, plen);
	FZ_CHECK(frame_get_length(hdr) == plen);
	run->hash = fz_fnv(run->hash, hdr, sizeof(hdr));
	run->hash = fz_fnv(run->hash, payload, plen);
	run->frames++;
	run->payload_bytes += plen;
}

/* The whole stream at once. */
static void
fz_whole(const uint8_t *s, size_t len, uint32_t max, struct fz_run *run)
{
	const uint8_t *payload;
	uint32_t plen;
	size_t off = 0;
	int r;

	run->hash = 0xcbf29ce484222325ULL;
	while ((r = fz_parse(s + off, len - off, max, &payload, &plen)) == 1) {
		fz_frame_seen(run, payload, plen);
		off += FRAME_HDR_SIZE + (size_t)plen;
	}
	run->end = r;
	run->left = len - off;
}

/* Pieces into a receive buffer, frames taken out after each. */
static void
fz_pieces(const uint8_t *s, size_t len, uint32_t max, uint32_t rng,
    struct fz_run *run)
{
	uint8_t *buf = malloc(len ? len : 1);
	const uint8_t *payload;
	uint32_t plen;
	size_t have = 0, off = 0, n;
	int r = 0;

	FZ_CHECK(buf != NULL);
	run->hash = 0xcbf29ce484222325ULL;
	while (off < len && r == 0) {
		rng ^= rng << 13;
		rng ^= rng >> 17;
		rng ^= rng << 5;
		n = 1 + rng % 64;
		if (n > len - off)
			n = len - off;
		memcpy(buf + have, s + off, n);
		have += n;
		off += n;
		while ((r = fz_parse(buf, have, max, &payload, &plen)) == 1) {
			size_t flen = FRAME_HDR_SIZE + (size_t)plen;

			fz_frame_seen(run, payload, plen);
			memmove(buf, buf + flen, have - flen);
			have -= flen;
		}
	}
	run->end = r;
	/* After an error the receiver stops reading: what it did not read
	 * is left too. */
	run->left = have + (len - off);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_run whole = { 0 }, cut = { 0 };
	uint32_t max;
	uint32_t rng;

	if (size < 2)
		return 0;
	max = fz_limits[data[0] & 7];
	if (data[0] & 0x80)
		max = (uint32_t)data[0] << 8 | data[1];
	rng = (uint32_t)data[1] * 0x9e3779b1u | 1;
	data += 2;
	size -= 2;

	fz_whole(data, size, max, &whole);
	fz_pieces(data, size, max, rng, &cut);
	FZ_CHECK(cut.frames == whole.frames);
	FZ_CHECK(cut.payload_bytes == whole.payload_bytes);
	FZ_CHECK(cut.hash == whole.hash);
	FZ_CHECK(cut.end == whole.end);
	FZ_CHECK(cut.left == whole.left);
	return 0;
}
