/* SPDX-License-Identifier: ISC */
/* test_agent.c -- the provider agent: dispatch JSON, backoff, seconds, token */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/macro.h"

#include "../../tools/provider/agent.h"

/* A dispatch with every field set, as the broker sends one. */
static void
full_dispatch(Twinroute__Provider__OrderDispatch *d, Twinroute__Money *unit,
    Twinroute__Money *amount)
{
	twinroute__provider__order_dispatch__init(d);
	twinroute__money__init(unit);
	twinroute__money__init(amount);
	unit->minor = 14500;
	unit->currency = unconst("EUR");
	amount->minor = 29000;
	amount->currency = unconst("EUR");
	d->order_id = 42;
	d->service_id = unconst("fuji-1");
	d->service_name = unconst("Fuji day tour");
	d->quantity = 2;
	d->unit_price = unit;
	d->amount = amount;
	d->member_name = unconst("Hanako Yamada");
	d->member_email = unconst("hanako@example.org");
	d->note = unconst("window seat\nplease \"quiet\"\t\x01 / end");
	d->fax_reference = unconst("FX-ABCD-EFGH");
	d->redelivery = true;
	d->confirmed_unix_ms = 1764000000123ull;
	d->attempt = 3;
}

/* Parse a line back; fails the test if it is not one JSON object. */
static json_object *
parse(const char *line)
{
	json_object *o;

	assert_non_null(line);
	assert_null(strchr(line, '\n'));
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_object));
	return o;
}

static json_object *
get(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static const char *
str(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static void
test_dispatch_fields(void **state)
{
	static const char *const keys[] = { "order_id", "service_id",
		"service_name", "quantity", "unit_price", "amount",
		"amount_text", "member_name", "member_email", "note",
		"fax_reference", "redelivery", "attempt", "confirmed_unix_ms" };
	Twinroute__Provider__OrderDispatch d;
	Twinroute__Money unit, amount;
	json_object *o, *m;
	char *line;
	size_t i = 0;

	(void)state;
	full_dispatch(&d, &unit, &amount);
	line = agent_dispatch_json(&d);
	o = parse(line);

	/* Every key, in the documented order, and no other. */
	json_object_object_foreach(o, k, v) {
		(void)v;
		assert_true(i < sizeof(keys) / sizeof(keys[0]));
		assert_string_equal(k, keys[i]);
		i++;
	}
	assert_int_equal(i, sizeof(keys) / sizeof(keys[0]));

	assert_true(json_object_is_type(get(o, "order_id"), json_type_int));
	assert_int_equal(json_object_get_uint64(get(o, "order_id")), 42);
	assert_string_equal(str(o, "service_id"), "fuji-1");
	assert_string_equal(str(o, "service_name"), "Fuji day tour");
	assert_int_equal(json_object_get_int64(get(o, "quantity")), 2);
	m = get(o, "unit_price");
	assert_int_equal(json_object_get_int64(get(m, "minor")), 14500);
	assert_string_equal(str(m, "currency"), "EUR");
	m = get(o, "amount");
	assert_int_equal(json_object_get_int64(get(m, "minor")), 29000);
	assert_string_equal(str(m, "currency"), "EUR");
	assert_string_equal(str(o, "amount_text"), "290.00 EUR");
	assert_string_equal(str(o, "member_name"), "Hanako Yamada");
	assert_string_equal(str(o, "member_email"), "hanako@example.org");
	assert_string_equal(str(o, "note"), d.note);
	assert_string_equal(str(o, "fax_reference"), "FX-ABCD-EFGH");
	assert_true(json_object_is_type(get(o, "redelivery"),
	    json_type_boolean));
	assert_true(json_object_get_boolean(get(o, "redelivery")));
	assert_int_equal(json_object_get_int64(get(o, "attempt")), 3);
	assert_int_equal(json_object_get_uint64(get(o, "confirmed_unix_ms")),
	    1764000000123ull);
	/* The note's newline, quote and control characters are escaped. */
	assert_non_null(strstr(line, "window seat\\nplease \\\"quiet\\\"\\t"
	    "\\u0001 / end"));
	json_object_put(o);
	free(line);
}

static void
test_dispatch_money_text(void **state)
{
	Twinroute__Provider__OrderDispatch d;
	Twinroute__Money unit, amount;
	json_object *o;
	char *line;

	(void)state;
	full_dispatch(&d, &unit, &amount);
	amount.minor = 29000;
	amount.currency = unconst("JPY");
	line = agent_dispatch_json(&d);
	o = parse(line);
	assert_string_equal(str(o, "amount_text"), "29000 JPY");
	json_object_put(o);
	free(line);

	amount.minor = 1234567;
	amount.currency = unconst("KWD");
	line = agent_dispatch_json(&d);
	o = parse(line);
	assert_string_equal(str(o, "amount_text"), "1234.567 KWD");
	json_object_put(o);
	free(line);
}

/* A dispatch with nothing set: empty strings, zeros, nulls for money. */
static void
test_dispatch_empty(void **state)
{
	Twinroute__Provider__OrderDispatch d;
	json_object *o;
	char *line;

	(void)state;
	twinroute__provider__order_dispatch__init(&d);
	d.order_id = UINT64_MAX;
	line = agent_dispatch_json(&d);
	o = parse(line);
	/* The largest order number survives, digit for digit. */
	assert_non_null(strstr(line, "\"order_id\":18446744073709551615,"));
	assert_true(json_object_is_type(get(o, "unit_price"), json_type_null));
	assert_true(json_object_is_type(get(o, "amount"), json_type_null));
	assert_true(json_object_is_type(get(o, "amount_text"),
	    json_type_null));
	assert_string_equal(str(o, "note"), "");
	assert_string_equal(str(o, "member_email"), "");
	assert_int_equal(json_object_get_int64(get(o, "quantity")), 0);
	assert_false(json_object_get_boolean(get(o, "redelivery")));
	json_object_put(o);
	free(line);
}

/* Bytes that are not UTF-8 become U+FFFD; valid text stays as it is. */
static void
test_json_text_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac" },
		{ "\xf0\x9f\x97\xbb", "\xf0\x9f\x97\xbb" },     /* U+1F5FB */
		{ "a\xff" "b", "a\xef\xbf\xbd" "b" },
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },      /* overlong */
		{ "\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf4\x90\x80\x80",                       /* > U+10FFFF */
		    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "x\xe6\x97", "x\xef\xbf\xbd\xef\xbf\xbd" }, /* cut short */
		{ "\xe6\x97x", "\xef\xbf\xbd\xef\xbf\xbdx" },
		{ "\x80", "\xef\xbf\xbd" },                      /* lone tail */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object *o = agent_json_text(cases[i].in);

		assert_non_null(o);
		assert_string_equal(json_object_get_string(o), cases[i].out);
		json_object_put(o);
	}
	{
		json_object *o = agent_json_text(NULL);

		assert_string_equal(json_object_get_string(o), "");
		json_object_put(o);
	}
}

static void
test_backoff(void **state)
{
	(void)state;
	/* The cap: 0.5 s, doubling per attempt, never over max_ms. */
	assert_int_equal(agent_backoff_ms(0, 30000, UINT32_MAX),
	    UINT32_MAX % 501);
	assert_int_equal(agent_backoff_ms(0, 30000, 500), 500);
	assert_int_equal(agent_backoff_ms(0, 30000, 501), 0);
	assert_int_equal(agent_backoff_ms(1, 30000, 1000), 1000);
	assert_int_equal(agent_backoff_ms(1, 30000, 1001), 0);
	assert_int_equal(agent_backoff_ms(3, 30000, 4000), 4000);
	assert_int_equal(agent_backoff_ms(6, 30000, 30000), 30000);
	assert_int_equal(agent_backoff_ms(6, 30000, 30001), 0);
	/* Far past the cap: no overflow, still capped. */
	assert_int_equal(agent_backoff_ms(1000, 30000, 30000), 30000);
	assert_int_equal(agent_backoff_ms(UINT32_MAX, 3600000, 3600000),
	    3600000);
	/* A cap below the base wins from the start. */
	assert_int_equal(agent_backoff_ms(0, 200, 200), 200);
	assert_int_equal(agent_backoff_ms(0, 200, 201), 0);
	/* Full jitter: zero is possible, and never above the cap. */
	assert_int_equal(agent_backoff_ms(4, 30000, 0), 0);
	for (uint32_t r = 0; r < 100000; r += 7)
		assert_true(agent_backoff_ms(2, 30000, r * 2654435761u) <=
		    2000);
}

static void
test_parse_seconds(void **state)
{
	static const struct {
		const char *s;
		int r;
		uint32_t ms;
	} cases[] = {
		{ "30", 0, 30000 },
		{ "0.5", 0, 500 },
		{ ".5", 0, 500 },
		{ "1.25", 0, 1250 },
		{ "0.001", 0, 1 },
		{ "3600", 0, 3600000 },
		{ "3600.000", 0, 3600000 },
		{ "3600.001", -ERANGE, 0 },
		{ "3601", -ERANGE, 0 },
		{ "99999999999999999999999", -ERANGE, 0 },
		{ "0", -ERANGE, 0 },
		{ "0.000", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ ".", -EINVAL, 0 },
		{ "1.", -EINVAL, 0 },
		{ "1.2345", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "1e3", -EINVAL, 0 },
		{ "1s", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t ms = 777;
		int r = agent_parse_seconds(cases[i].s, 3600, &ms);

		if (r != cases[i].r)
			fail_msg("'%s': %d, want %d", cases[i].s, r,
			    cases[i].r);
		/* Untouched on failure. */
		assert_int_equal(ms, r == 0 ? cases[i].ms : 777);
	}
	assert_int_equal(agent_parse_seconds(NULL, 10, NULL), -EINVAL);
}

/* A file holding exactly data; its path in buf. */
static void
write_file(char *path, size_t size, const char *data, size_t len)
{
	int fd;

	snprintf(path, size, "/tmp/test_agent.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int
token_of(const char *data, size_t len, char *buf, size_t size)
{
	char path[64];
	int r;

	write_file(path, sizeof(path), data, len);
	r = agent_read_token(path, buf, size);
	unlink(path);
	return r;
}

static void
test_read_token(void **state)
{
	char buf[AGENT_TOKEN_MAX + 1], big[AGENT_TOKEN_MAX + 2];

	(void)state;
	assert_int_equal(token_of("abc\n", 4, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "abc");
	assert_int_equal(token_of("abc", 3, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "abc");
	assert_int_equal(token_of("t0k-3n\r\nsecond line\n", 20, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "t0k-3n");

	assert_int_equal(token_of("\n", 1, buf, sizeof(buf)), -ENODATA);
	assert_int_equal(token_of("", 0, buf, sizeof(buf)), -ENODATA);
	assert_int_equal(token_of("\r\n", 2, buf, sizeof(buf)), -ENODATA);
	assert_int_equal(token_of("a\tb\n", 4, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(token_of("a\0b\n", 4, buf, sizeof(buf)), -EINVAL);
	/* The buffer is wiped on failure. */
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);

	/* As long as fits, with or without its newline; one more does not. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(token_of(big, AGENT_TOKEN_MAX, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), AGENT_TOKEN_MAX);
	big[AGENT_TOKEN_MAX] = '\n';
	assert_int_equal(token_of(big, AGENT_TOKEN_MAX + 1, buf, sizeof(buf)),
	    0);
	assert_int_equal(strlen(buf), AGENT_TOKEN_MAX);
	memset(big, 'x', sizeof(big));
	assert_int_equal(token_of(big, AGENT_TOKEN_MAX + 1, buf, sizeof(buf)),
	    -E2BIG);
	assert_int_equal(token_of(big, sizeof(big), buf, sizeof(buf)), -E2BIG);
	/* A smaller buffer, same rule. */
	assert_int_equal(token_of("abcd\n", 5, buf, 5), 0);
	assert_string_equal(buf, "abcd");
	assert_int_equal(token_of("abcde\n", 6, buf, 5), -E2BIG);

	assert_int_equal(agent_read_token("/nonexistent/token", buf,
	    sizeof(buf)), -ENOENT);
	assert_int_equal(agent_read_token("/tmp", buf, sizeof(buf)), -EISDIR);
	assert_int_equal(agent_read_token("x", buf, 1), -EINVAL);
	assert_int_equal(agent_read_token("x", buf, AGENT_TOKEN_MAX + 2),
	    -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch_fields),
		cmocka_unit_test(test_dispatch_money_text),
		cmocka_unit_test(test_dispatch_empty),
		cmocka_unit_test(test_json_text_utf8),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_parse_seconds),
		cmocka_unit_test(test_read_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
