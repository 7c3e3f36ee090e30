/* SPDX-License-Identifier: ISC */
/* money.c -- amounts in minor units, written the way people read them */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/macro.h"
#include "common/money.h"

int
money_exponent(const char *currency)
{
	static const char *const zero[] = {
		"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
		"RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
	};
	static const char *const three[] = {
		"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND",
	};

	if (!currency)
		return 2;
	for (size_t i = 0; i < ELEMENTSOF(zero); i++)
		if (strcmp(currency, zero[i]) == 0)
			return 0;
	for (size_t i = 0; i < ELEMENTSOF(three); i++)
		if (strcmp(currency, three[i]) == 0)
			return 3;
	return 2;
}

char *
money_format(int64_t minor, const char *currency, char *buf, size_t size)
{
	int exp = money_exponent(currency);
	uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor :
	    (uint64_t)minor;
	uint64_t div = exp == 0 ? 1 : exp == 3 ? 1000 : 100;
	const char *sign = minor < 0 ? "-" : "";
	const char *sep = currency && *currency ? " " : "";

	if (!currency)
		currency = "";
	if (exp == 0)
		snprintf(buf, size, "%s%" PRIu64 "%s%s", sign, mag, sep,
		    currency);
	else
		snprintf(buf, size, "%s%" PRIu64 ".%0*" PRIu64 "%s%s", sign,
		    mag / div, exp, mag % div, sep, currency);
	return buf;
}

