/* SPDX-License-Identifier: ISC */
/* bench-card.h -- synthetic card numbers for the benchmarks */

#ifndef TR_BENCH_CARD_H
#define TR_BENCH_CARD_H

#include <stdio.h>

#include "vault/card.h"

/*
 * Number i of a synthetic range: the 400000 test prefix, i, and the Luhn
 * digit that makes the vault take it. Made at run time, so that no card
 * number is written in the benchmarks' sources.
 */
static inline void
bench_card_number(unsigned i, char out[CARD_NUMBER_MAX + 1])
{
	snprintf(out, CARD_NUMBER_MAX + 1, "400000%09u0", i);
	for (char d = '0'; d <= '9'; d++) {
		out[15] = d;
		if (card_luhn_ok(out))
			return;
	}
}

#endif
