/* SPDX-License-Identifier: ISC */
/* card.h -- card number checks: Luhn, length, brand by IIN range, expiry */
#ifndef TR_CARD_H
#define TR_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define CARD_NUMBER_MIN 12
#define CARD_NUMBER_MAX 19
#define CARD_HOLDER_MAX 64

/*
 * Card fields as a person types them. Only twinroutectl (while enrolling)
 * and the vault thread ever hold one; wipe it with OPENSSL_cleanse.
 */
struct card_input {
	char number[CARD_NUMBER_MAX + 1];   /* digits only, NUL-terminated */
	unsigned exp_month;                 /* 1..12 */
	unsigned exp_year;                  /* four digits */
	char holder[CARD_HOLDER_MAX + 1];   /* UTF-8, no control characters */
};

/*
 * Copy the digits of text (spaces and dashes between digit groups
 * allowed) into ret_number. 0, or -EINVAL with *ret_why set.
 */
int card_normalize_number(const char *text, char ret_number[CARD_NUMBER_MAX + 1],
    const char **ret_why);
bool card_luhn_ok(const char *digits);
/* "visa", "mastercard", "amex", "jcb", "discover", "diners", "unionpay",
 * or "unknown". */
const char *card_brand(const char *digits);
/* "MM/YY" or "MM/YYYY" -> month and four-digit year. 0 or -EINVAL. */
int card_parse_expiry(const char *text, unsigned *ret_month, unsigned *ret_year);
/* Expired at the end of its month, as of now (UTC)? */
bool card_expired(unsigned month, unsigned year, time_t now);
/*
 * Check every field: length, digits, Luhn, a known brand, expiry not past,
 * holder 1..CARD_HOLDER_MAX bytes of printable UTF-8. 0, or -EINVAL with
 * *ret_why naming the field ("number: fails the Luhn check").
 */
int card_check(const struct card_input *in, time_t now, const char **ret_why);

#endif
