/* SPDX-License-Identifier: ISC */
/* test_catalog_import.c -- twinroutectl's JSON Lines catalog files */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tools/common/catalog_import.h"
#include "common/macro.h"

#define P "{\"type\":\"provider\",\"id\":\"newp\",\"name\":\"New\"," \
	"\"email\":\"a@newp.example\",\"fax\":\"+81399990000\"}"
#define S "{\"type\":\"service\",\"id\":\"new1\",\"provider\":\"newp\"," \
	"\"category\":\"misc\",\"name\":\"Fine\",\"price\":100," \
	"\"currency\":\"JPY\"}"

/* Read text as a file; its result, with im left for the caller. */
static int
read_text(struct import *im, const char *text)
{
	FILE *f;
	int r;

	assert_int_equal(import_init(im, "cat.jsonl"), 0);
	f = fmemopen(unconst(text), strlen(text), "r");
	assert_non_null(f);
	r = import_read(im, f);
	fclose(f);
	return r;
}

static void
test_read(void **state _unused_)
{
	struct import im;
	const struct import_item *it;

	assert_int_equal(read_text(&im, P "\r\n\n  \t\n" S "\n"
	    "{\"type\":\"service\",\"id\":\"new2\",\"provider\":\"newp\","
	    "\"category\":\"misc\",\"name\":\"Off\",\"description\":\"D\","
	    "\"price\":0,\"currency\":\"EUR\",\"active\":false}"), 0);
	assert_int_equal(im.n, 3);
	assert_int_equal(im.providers, 1);
	assert_int_equal(im.services, 2);

	it = im.v[0];
	assert_true(it->is_provider);
	assert_int_equal(it->line, 1);
	assert_int_equal(it->item.item_case,
	    TWINROUTE__CTL__CATALOG_ITEM__ITEM_PROVIDER);
	assert_ptr_equal(it->item.provider, &it->provider);
	assert_string_equal(it->provider.id, "newp");
	assert_string_equal(it->provider.fax, "+81399990000");
	assert_true(it->provider.active);

	it = im.v[1];
	assert_false(it->is_provider);
	assert_int_equal(it->line, 4);
	assert_ptr_equal(it->item.service, &it->service);
	assert_ptr_equal(it->service.price, &it->price);
	assert_string_equal(it->service.provider_id, "newp");
	assert_string_equal(it->service.description, "");
	assert_int_equal(it->price.minor, 100);
	assert_string_equal(it->price.currency, "JPY");
	assert_true(it->service.active);

	it = im.v[2];
	assert_int_equal(it->line, 5);
	assert_string_equal(it->service.description, "D");
	assert_false(it->service.active);

	assert_int_equal(import_items(&im), 0);
	for (size_t i = 0; i < im.n; i++)
		assert_ptr_equal(im.items[i], &im.v[i]->item);
	import_free(&im);
}

static void
test_errors(void **state _unused_)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ P "\n{\"type\":\"provider\", \"id\": \n",
		  "cat.jsonl:2: incomplete JSON (one object per line)" },
		{ "{\"type\":}\n", "cat.jsonl:1: bad JSON: " },
		{ P " " P "\n", "cat.jsonl:1: bad JSON: unexpected character" },
		{ "[1,2]\n", "cat.jsonl:1: not a JSON object" },
		{ "{\"id\":\"x\"}\n",
		  "cat.jsonl:1: missing \"type\" (\"provider\" or \"service\")" },
		{ "{\"type\":7}\n", "cat.jsonl:1: \"type\" must be a string" },
		{ "{\"type\":\"member\"}\n",
		  "cat.jsonl:1: unknown type \"member\" (\"provider\" or "
		  "\"service\")" },
		{ "{\"type\":\"provider\",\"colour\":\"red\"}\n",
		  "cat.jsonl:1: unknown key \"colour\" for a provider" },
		{ "{\"type\":\"provider\",\"id\":\"x\"}\n",
		  "cat.jsonl:1: missing \"name\" for a provider" },
		{ "{\"type\":\"provider\",\"active\":\"yes\"}\n",
		  "cat.jsonl:1: \"active\" must be true or false, not a string" },
		{ "{\"type\":\"service\",\"price\":12.5}\n",
		  "cat.jsonl:1: \"price\" must be an integer in minor units "
		  "(1250 for 12.50)" },
		{ "{\"type\":\"provider\",\"name\":\"N\\u0000ew\"}\n",
		  "cat.jsonl:1: \"name\" contains a NUL character" },
		{ "{\"type\":\"service\",\"id\":\"s\",\"provider\":\"p\","
		  "\"category\":\"c\",\"name\":\"n\",\"price\":-1,"
		  "\"currency\":\"JPY\"}\n",
		  "cat.jsonl:1: \"price\" must not be negative" },
		{ "{\"type\":\"service\",\"id\":\"s\",\"provider\":\"p\","
		  "\"category\":\"c\",\"name\":\"n\","
		  "\"price\":18446744073709551615,\"currency\":\"JPY\"}\n",
		  "cat.jsonl:1: \"price\" is out of range" },
		{ "{\"type\":\"provider\",\"name\":\"\xff\"}\n",
		  "cat.jsonl:1: bad JSON: " },
	};
	struct import im;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		assert_int_equal(read_text(&im, cases[i].text), -EINVAL);
		if (strncmp(im.err, cases[i].err, strlen(cases[i].err)) != 0)
			fail_msg("case %zu: \"%s\", not \"%s...\"", i, im.err,
			    cases[i].err);
		import_free(&im);
	}
}

/* A line is its len bytes: nothing after them is read. */
static void
test_line_bounds(void **state _unused_)
{
	static const char buf[] = P "garbage that is not JSON";
	static const char nul[] = "{\"type\":\"provider\"\0}";
	struct import im;

	assert_int_equal(import_init(&im, "f"), 0);
	assert_int_equal(import_line(&im, 1, buf, strlen(P)), 0);
	assert_int_equal(im.n, 1);
	assert_int_equal(import_line(&im, 2, buf, strlen(P) - 1), -EINVAL);
	assert_string_equal(im.err,
	    "f:2: incomplete JSON (one object per line)");
	assert_int_equal(import_line(&im, 3, " \t\r", 3), 0);
	assert_int_equal(import_line(&im, 4, buf, 0), 0);
	assert_int_equal(import_line(&im, 5, nul, sizeof(nul) - 1), -EINVAL);
	assert_string_equal(im.err, "f:5: NUL byte in the line");
	assert_int_equal(im.n, 1);
	import_free(&im);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_line_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
