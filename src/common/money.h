/* SPDX-License-Identifier: ISC */
/* money.h -- amounts in minor units, written the way people read them */
#ifndef TR_COMMON_MONEY_H
#define TR_COMMON_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Digits after the decimal point of an ISO 4217 currency (ISO 4217's
 * minor unit: 0 for JPY, 3 for KWD, 2 otherwise and for NULL). */
int money_exponent(const char *currency);
/* "1234.56 EUR", "1500 JPY", "-0.05 USD". Returns buf. */
char *money_format(int64_t minor, const char *currency, char *buf,
    size_t size);

#endif
