/* SPDX-License-Identifier: ISC */
/* fuzz_class1.c -- libFuzzer target: what a Class 1 modem may say */

/*
 * One fax call per input. The input is what the modem sends, cut into
 * chunks: each chunk starts with a control byte whose low 6 bits give
 * the chunk's length and whose top bits say what happens before it is
 * fed: the caller drains everything the call wants written (00), writes
 * only part of it (01), lets time pass to the next deadline (10), or
 * both (11). Invariants: the call never asks to write past what it gave,
 * ends in a result with a reason, and never runs past its deadlines'
 * logic (every timeout leaves it either running with a later deadline,
 * or done).
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fax/class1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A tiny page: what the page encoder's output looks like to the call. */
static const uint8_t page_1d[] = { 0x00, 0x08, 0x80, 0x00, 0x10, 0x10,
	0x01, 0x00, 0x08, 0x80, 0x00, 0x08, 0x80, 0x00, 0x08, 0x80 };

static void
drain(struct class1_call *c, uint64_t now, int partial)
{
	for (int i = 0; i < 64; i++) {
		const uint8_t *buf = NULL;
		size_t len = 0;

		class1_output(c, &buf, &len);
		if (len == 0)
			return;
		if (!buf)
			abort();
		if (partial && len > 1)
			len /= 2;
		class1_consume(c, len, now);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct class1_page page = { page_1d, sizeof(page_1d),
		NULL, 0 };
	struct class1_params p = { .number = "5551234", .tsi = "+81 3 0000",
		.expect_csi = (size > 0 && (data[0] & 1)) ? "+81312345678" :
		    NULL, .pages = &page, .n_pages = 1 };
	struct class1_call *c = NULL;
	uint64_t now = 1000;
	size_t i = 0;

	if (class1_new(&p, &c) < 0)
		return 0;
	if (class1_start(c, now) < 0)
		abort();
	while (i < size && !class1_done(c)) {
		uint8_t ctl = data[i++];
		size_t n = ctl & 0x3f;

		if (n > size - i)
			n = size - i;
		drain(c, now, ctl & 0x40);
		if (ctl & 0x80) {
			uint64_t d = class1_next_deadline(c);

			if (d != UINT64_MAX) {
				if (d > now)
					now = d;
				class1_timeout(c, now);
			}
		}
		if (!class1_done(c))
			class1_input(c, data + i, n, now);
		i += n;
		now += 1;
	}
	/* Let the call run out its timers: a silent modem must end it. */
	for (int k = 0; k < 1000 && !class1_done(c); k++) {
		uint64_t d;

		drain(c, now, 0);
		d = class1_next_deadline(c);
		if (d == UINT64_MAX)
			abort();        /* waiting for nothing: a hang */
		if (d > now)
			now = d;
		class1_timeout(c, now);
	}
	if (!class1_done(c) || class1_reason(c) == NULL ||
	    class1_strresult(class1_result(c)) == NULL)
		abort();
	class1_free(c);
	return 0;
}
