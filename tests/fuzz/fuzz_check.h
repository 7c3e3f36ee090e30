/* SPDX-License-Identifier: ISC */
/* fuzz_check.h -- a fuzz target's assertion: a failed promise is a finding */

#ifndef TWINROUTE_FUZZ_CHECK_H
#define TWINROUTE_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* Unlike assert(), kept in every build type: abort() is what libFuzzer
 * reports, with the input that broke the check. */
#define FZ_CHECK(x)                                                            \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			    __LINE__, #x);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
