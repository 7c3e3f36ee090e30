/* SPDX-License-Identifier: ISC */
/* test_card.c -- unit tests for card number checks: Luhn, brands, lengths,
 * expiry */

/*
 * Card numbers here are the public test numbers of the card schemes, or
 * prefixes padded with zeros and completed with a Luhn digit by
 * luhn_complete(): nothing here is anyone's card.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "vault/card.h"

/* prefix, zero-padded to len - 1 digits, plus the Luhn check digit. */
static void
luhn_complete(const char *prefix, size_t len, char out[CARD_NUMBER_MAX + 2])
{
	size_t plen = strlen(prefix);

	assert_true(len >= 2 && len <= CARD_NUMBER_MAX + 1 && plen < len);
	memcpy(out, prefix, plen);
	memset(out + plen, '0', len - 1 - plen);
	out[len - 1] = '0';
	out[len] = '\0';
	for (char d = '0'; d <= '9'; d++) {
		out[len - 1] = d;
		if (card_luhn_ok(out))
			return;
	}
	fail_msg("no Luhn digit for %s", prefix);
}

static time_t
utc(int year, int mon, int day, int h, int m, int s)
{
	struct tm tm = {
	    .tm_year = year - 1900,
	    .tm_mon = mon - 1,
	    .tm_mday = day,
	    .tm_hour = h,
	    .tm_min = m,
	    .tm_sec = s,
	};

	return timegm(&tm);
}

static void
test_luhn(void **state)
{
	(void)state;
	assert_true(card_luhn_ok("4111111111111111"));
	assert_true(card_luhn_ok("5555555555554444"));
	assert_true(card_luhn_ok("378282246310005"));
	assert_true(card_luhn_ok("6011111111111117"));
	assert_true(card_luhn_ok("79927398713"));
	/* One digit off, two digits swapped. */
	assert_false(card_luhn_ok("4111111111111112"));
	assert_false(card_luhn_ok("79927398710"));
	assert_false(card_luhn_ok("4111111111111121"));
	/* Not digits, too short, NULL. */
	assert_false(card_luhn_ok("4111 1111 1111 1111"));
	assert_false(card_luhn_ok("41111111111111a1"));
	assert_false(card_luhn_ok("0"));
	assert_false(card_luhn_ok(""));
	assert_false(card_luhn_ok(NULL));
}

static void
test_brands(void **state)
{
	static const struct {
		const char *prefix;
		const char *brand;
	} cases[] = {
	    {"4", "visa"},
	    {"51", "mastercard"},
	    {"55", "mastercard"},
	    {"50", "unknown"},
	    {"56", "unknown"},
	    {"2221", "mastercard"},
	    {"2720", "mastercard"},
	    {"2220", "unknown"},
	    {"2721", "unknown"},
	    {"34", "amex"},
	    {"37", "amex"},
	    {"33", "unknown"},
	    {"35", "unknown"},
	    {"3528", "jcb"},
	    {"3589", "jcb"},
	    {"3527", "unknown"},
	    {"3590", "unknown"},
	    {"6011", "discover"},
	    {"644", "discover"},
	    {"649", "discover"},
	    {"65", "discover"},
	    {"6012", "unknown"},
	    {"643", "unknown"},
	    {"300", "diners"},
	    {"305", "diners"},
	    {"36", "diners"},
	    {"38", "diners"},
	    {"306", "unknown"},
	    {"39", "unknown"},
	    {"62", "unionpay"},
	    {"1", "unknown"},
	    {"9", "unknown"},
	};
	char num[CARD_NUMBER_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		luhn_complete(cases[i].prefix, 16, num);
		if (strcmp(card_brand(num), cases[i].brand) != 0)
			fail_msg("prefix %s: %s, want %s", cases[i].prefix,
			    card_brand(num), cases[i].brand);
	}
	/* The schemes' public test numbers. */
	assert_string_equal(card_brand("4111111111111111"), "visa");
	assert_string_equal(card_brand("5555555555554444"), "mastercard");
	assert_string_equal(card_brand("2223000048400011"), "mastercard");
	assert_string_equal(card_brand("378282246310005"), "amex");
	assert_string_equal(card_brand("6011111111111117"), "discover");
	assert_string_equal(card_brand("3530111333300000"), "jcb");
	assert_string_equal(card_brand("30569309025904"), "diners");
	assert_string_equal(card_brand("6200000000000005"), "unionpay");
	assert_string_equal(card_brand(""), "unknown");
	assert_string_equal(card_brand("3"), "unknown");
	assert_string_equal(card_brand(NULL), "unknown");
}

static struct card_input
card(const char *number)
{
	struct card_input in;

	memset(&in, 0, sizeof(in));
	snprintf(in.number, sizeof(in.number), "%s", number);
	in.exp_month = 12;
	in.exp_year = 2030;
	snprintf(in.holder, sizeof(in.holder), "Ada Example");
	return in;
}

static void
check_len(const char *prefix, size_t len, bool ok)
{
	char num[CARD_NUMBER_MAX + 2];
	struct card_input in;
	const char *why = NULL;
	time_t now = utc(2026, 11, 24, 12, 0, 0);

	luhn_complete(prefix, len, num);
	in = card(num);
	if (ok) {
		if (card_check(&in, now, &why) != 0)
			fail_msg("%s/%zu refused: %s", prefix, len, why);
	} else {
		assert_int_equal(card_check(&in, now, &why), -EINVAL);
		assert_non_null(why);
	}
}

static void
test_lengths(void **state)
{
	(void)state;
	check_len("4", 13, true);
	check_len("4", 16, true);
	check_len("4", 19, true);
	check_len("4", 14, false);
	check_len("4", 15, false);
	check_len("4", 12, false);
	check_len("51", 16, true);
	check_len("2720", 16, true);
	check_len("51", 15, false);
	check_len("51", 17, false);
	check_len("34", 15, true);
	check_len("37", 15, true);
	check_len("37", 16, false);
	check_len("37", 14, false);
	check_len("36", 14, true);
	check_len("300", 14, true);
	check_len("36", 13, false);
	check_len("3528", 16, true);
	check_len("3589", 19, true);
	check_len("3528", 15, false);
	check_len("6011", 16, true);
	check_len("65", 19, true);
	check_len("644", 15, false);
	check_len("62", 16, true);
	check_len("62", 19, true);
	check_len("62", 15, false);
	/* Luhn-valid but no known brand. */
	check_len("9", 16, false);
	check_len("1", 16, false);
}

static void
test_check_fields(void **state)
{
	time_t now = utc(2026, 11, 24, 12, 0, 0);
	struct card_input in;
	const char *why;

	(void)state;
	in = card("4111111111111111");
	why = NULL;
	assert_int_equal(card_check(&in, now, &why), 0);
	assert_null(why);

	in = card("4111111111111112");
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	assert_string_equal(why, "number: fails the Luhn check");

	in = card("4111 111111111111");
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	assert_string_equal(why, "number: only digits");

	in = card("411111111");
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	assert_string_equal(why, "number: too few digits");

	in = card("4111111111111111");
	in.exp_month = 13;
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	assert_non_null(strstr(why, "expiry"));
	in.exp_month = 0;
	assert_int_equal(card_check(&in, now, &why), -EINVAL);

	in = card("4111111111111111");
	in.exp_month = 10;
	in.exp_year = 2026;
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	assert_string_equal(why, "expiry: the card has expired");
	in.exp_month = 11; /* valid through the end of this month */
	assert_int_equal(card_check(&in, now, &why), 0);
	in.exp_year = 26; /* two digits are the parser's business */
	assert_int_equal(card_check(&in, now, &why), -EINVAL);

	in = card("4111111111111111");
	in.holder[0] = '\0';
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	assert_string_equal(why, "holder: missing");
	snprintf(in.holder, sizeof(in.holder), "   ");
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	snprintf(in.holder, sizeof(in.holder), "Ada\nExample");
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	assert_string_equal(why, "holder: not printable UTF-8");
	snprintf(in.holder, sizeof(in.holder), "Ada \xc3"); /* cut */
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	snprintf(in.holder, sizeof(in.holder), "Ada \xc0\xaf"); /* overlong */
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	snprintf(
	    in.holder, sizeof(in.holder), "Ada \xed\xa0\x80"); /* surrogate */
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	snprintf(in.holder, sizeof(in.holder), "Ada \xc2\x85"); /* C1 */
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	snprintf(in.holder, sizeof(in.holder),
	    "Zo\xc3\xab \xc5\x8ctsuka \xe5\xa4\xaa\xe9\x83\x8e \xf0\x9f\x98\x80");
	assert_int_equal(card_check(&in, now, &why), 0);
	memset(in.holder, 'a', sizeof(in.holder)); /* no NUL: too long */
	assert_int_equal(card_check(&in, now, &why), -EINVAL);
	assert_string_equal(why, "holder: too long");

	assert_int_equal(card_check(NULL, now, &why), -EINVAL);
}

static void
test_normalize(void **state)
{
	static const char *const good[] = {
	    "4111111111111111",
	    "4111 1111 1111 1111",
	    "4111-1111-1111-1111",
	    "  4111 1111 1111 1111 \n",
	    "4111-1111 1111-1111",
	    "41 11 11 11 11 11 11 11",
	};
	static const char *const bad[] = {
	    "4111  1111 1111 1111", /* two separators */
	    "4111--1111-1111-1111",
	    "-4111111111111111",
	    "4111111111111111-",
	    "4111 1111 1111 111a",
	    "4111.1111.1111.1111",
	    "41111111111",	    /* 11 digits */
	    "41111111111111111111", /* 20 digits */
	    "",
	    "    ",
	};
	char out[CARD_NUMBER_MAX + 1];
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(out, 'x', sizeof(out));
		why = NULL;
		if (card_normalize_number(good[i], out, &why) != 0)
			fail_msg("refused \"%s\": %s", good[i], why);
		assert_string_equal(out, "4111111111111111");
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'x', sizeof(out));
		why = NULL;
		if (card_normalize_number(bad[i], out, &why) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(why);
		/* Untouched on failure. */
		for (size_t k = 0; k < sizeof(out); k++)
			assert_int_equal(out[k], 'x');
	}
	assert_int_equal(
	    card_normalize_number("5555 5555 5555 4444", out, NULL), 0);
	assert_string_equal(out, "5555555555554444");
	assert_int_equal(card_normalize_number(NULL, out, &why), -EINVAL);
}

static void
test_expiry(void **state)
{
	unsigned m = 99, y = 99;

	(void)state;
	assert_int_equal(card_parse_expiry("12/30", &m, &y), 0);
	assert_int_equal(m, 12);
	assert_int_equal(y, 2030);
	assert_int_equal(card_parse_expiry("01/2031", &m, &y), 0);
	assert_int_equal(m, 1);
	assert_int_equal(y, 2031);
	assert_int_equal(card_parse_expiry("7/28", &m, &y), 0);
	assert_int_equal(m, 7);
	assert_int_equal(y, 2028);
	assert_int_equal(card_parse_expiry(" 07 / 28 \n", &m, &y), 0);
	assert_int_equal(m, 7);

	m = y = 99;
	assert_int_equal(card_parse_expiry("13/30", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("00/30", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("12-30", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("12/3", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("12/300", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("12/30x", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("123/30", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("12/1999", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("/30", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry("", &m, &y), -EINVAL);
	assert_int_equal(card_parse_expiry(NULL, &m, &y), -EINVAL);
	assert_int_equal(m, 99); /* untouched */
	assert_int_equal(y, 99);

	/* Valid through the last second of its month, UTC. */
	assert_false(card_expired(11, 2026, utc(2026, 11, 30, 23, 59, 59)));
	assert_true(card_expired(11, 2026, utc(2026, 12, 1, 0, 0, 0)));
	assert_false(card_expired(12, 2026, utc(2026, 12, 31, 23, 59, 59)));
	assert_true(card_expired(12, 2026, utc(2027, 1, 1, 0, 0, 0)));
	assert_false(card_expired(1, 2027, utc(2026, 12, 15, 0, 0, 0)));
	assert_true(card_expired(10, 2026, utc(2026, 11, 1, 0, 0, 0)));
	assert_true(card_expired(0, 2030, utc(2026, 11, 1, 0, 0, 0)));
	assert_true(card_expired(13, 2030, utc(2026, 11, 1, 0, 0, 0)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_luhn),
	    cmocka_unit_test(test_brands),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_check_fields),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test(test_expiry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
