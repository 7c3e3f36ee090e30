/* SPDX-License-Identifier: ISC */
/* test_dueheap.c -- the outbox schedule: earliest first, ties by id */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/dueheap.h"

static void
test_order(void **state)
{
	struct dueheap h = { 0 };
	uint64_t last_due = 0, last_id = 0;

	(void)state;
	/* Pseudo-random dues, many ties, past the first growth. */
	for (uint64_t i = 1; i <= 1000; i++)
		assert_int_equal(dueheap_push(&h, (i * 7919) % 97, i), 0);
	assert_int_equal(h.n, 1000);
	for (size_t i = 0; i < 1000; i++) {
		struct due d = dueheap_pop(&h);

		assert_true(d.due_ms > last_due ||
		    (d.due_ms == last_due && d.id > last_id) || i == 0);
		last_due = d.due_ms;
		last_id = d.id;
	}
	assert_int_equal(h.n, 0);
	dueheap_free(&h);
	assert_null(h.v);
}

static void
test_top_and_interleave(void **state)
{
	struct dueheap h = { 0 };

	(void)state;
	assert_int_equal(dueheap_push(&h, 50, 5), 0);
	assert_int_equal(dueheap_push(&h, 10, 9), 0);
	assert_int_equal(dueheap_push(&h, 10, 3), 0);
	assert_int_equal(dueheap_top(&h)->id, 3);
	assert_int_equal(dueheap_pop(&h).id, 3);
	assert_int_equal(dueheap_push(&h, 0, 7), 0);
	assert_int_equal(dueheap_pop(&h).id, 7);
	assert_int_equal(dueheap_pop(&h).id, 9);
	assert_int_equal(dueheap_top(&h)->due_ms, 50);
	assert_int_equal(dueheap_pop(&h).id, 5);
	assert_int_equal(h.n, 0);
	dueheap_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_top_and_interleave),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
