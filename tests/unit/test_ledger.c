/* SPDX-License-Identifier: ISC */
/* test_ledger.c -- a provider's ledger: period, states, totals, limits */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/macro.h"
#include "order/ledger.h"
#include "order/order.h"
#include "store/store.h"

#include "store_fixture.h"

#define S(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define DAY (86400ull * 1000)
/* 2026-01-01T00:00:00Z in ms. */
#define JAN1 (1767225600ull * 1000)

/* ---- orders in memory ------------------------------------------------ */

/* An order with up to 8 history entries, all on the stack. */
struct test_order {
	Order o;
	Twinroute__Money amount;
	Twinroute__OrderTransition h[8];
	Twinroute__OrderTransition *hp[8];
};

static void
mk(struct test_order *t, uint64_t id, const char *provider, int64_t minor,
    const char *currency)
{
	memset(t, 0, sizeof(*t));
	twinroute__order__init(&t->o);
	twinroute__money__init(&t->amount);
	t->amount.minor = minor;
	t->amount.currency = unconst(currency);
	t->o.id = id;
	t->o.provider_id = unconst(provider);
	t->o.service_id = unconst("svc-1");
	t->o.service_name = unconst("Service, \"one\"");
	t->o.member = unconst("100001");
	t->o.quantity = 2;
	t->o.amount = &t->amount;
	t->o.history = t->hp;
}

/* Append a transition to state at ms; the order's state follows. */
static void
enter(struct test_order *t, order_state s, uint64_t ms)
{
	size_t n = t->o.n_history;

	assert_true(n < ELEMENTSOF(t->h));
	twinroute__order_transition__init(&t->h[n]);
	t->h[n].state = s;
	t->h[n].unix_ms = ms;
	t->h[n].cause = unconst("test");
	t->hp[n] = &t->h[n];
	t->o.n_history = n + 1;
	t->o.state = s;
}

/* Through the happy path to FULFILLED at ms (earlier steps before it). */
static void
fulfil(struct test_order *t, uint64_t ms)
{
	enter(t, S(RECEIVED), ms - 6000);
	enter(t, S(AUTHORIZED), ms - 5000);
	enter(t, S(AWAITING_CONFIRMATION), ms - 4000);
	enter(t, S(CONFIRMED), ms - 3000);
	enter(t, S(DISPATCHED), ms - 2000);
	enter(t, S(ACCEPTED), ms - 1000);
	enter(t, S(FULFILLED), ms);
}

/* The total of cur; an all-zero one (currency "") when there is none. */
static const struct ledger_total *
total_of(const struct ledger *l, const char *cur)
{
	static const struct ledger_total none;

	for (size_t i = 0; i < l->n_totals; i++)
		if (strcmp(l->totals[i].currency, cur) == 0)
			return &l->totals[i];
	return &none;
}

static void
test_entered(void **state)
{
	struct test_order t;
	uint64_t ms = 0;

	(void)state;
	mk(&t, 1, "p", 100, "EUR");
	assert_false(ledger_entered(&t.o, S(FULFILLED), &ms));
	assert_int_equal(ms, 0);
	enter(&t, S(RECEIVED), 10);
	enter(&t, S(FULFILLED), 20);
	/* A history that enters a state twice: the last entry counts. */
	enter(&t, S(FULFILLED), 30);
	enter(&t, S(CHARGED), 40);
	assert_true(ledger_entered(&t.o, S(FULFILLED), &ms));
	assert_int_equal(ms, 30);
	assert_true(ledger_entered(&t.o, S(CHARGED), &ms));
	assert_int_equal(ms, 40);
	assert_true(ledger_entered(&t.o, S(RECEIVED), &ms));
	assert_int_equal(ms, 10);
	assert_false(ledger_entered(&t.o, S(REJECTED), &ms));
	assert_int_equal(ms, 10);
}

static void
test_period_and_states(void **state)
{
	struct ledger_query q = { .provider_id = "p", .from_ms = JAN1,
	    .to_ms = JAN1 + 31 * DAY };
	struct test_order t[10];
	struct ledger l;

	(void)state;
	/* 1: fulfilled at the first instant: in (from is inclusive). */
	mk(&t[0], 1, "p", 1000, "EUR");
	fulfil(&t[0], JAN1);
	/* 2: fulfilled at the end's instant: out (to is exclusive). */
	mk(&t[1], 2, "p", 2000, "EUR");
	fulfil(&t[1], JAN1 + 31 * DAY);
	/* 3: one ms before the end, then charged after the period: in. */
	mk(&t[2], 3, "p", 4000, "EUR");
	fulfil(&t[2], JAN1 + 31 * DAY - 1);
	enter(&t[2], S(CHARGED), JAN1 + 40 * DAY);
	/* 4: one ms before the start: out. */
	mk(&t[3], 4, "p", 8000, "EUR");
	fulfil(&t[3], JAN1 - 1);
	/* 5: another provider's: out. */
	mk(&t[4], 5, "q", 16000, "EUR");
	fulfil(&t[4], JAN1 + DAY);
	/* 6: rejected in the period: counted, not listed. */
	mk(&t[5], 6, "p", 32000, "EUR");
	enter(&t[5], S(RECEIVED), JAN1);
	enter(&t[5], S(DISPATCHED), JAN1 + DAY);
	enter(&t[5], S(REJECTED), JAN1 + 2 * DAY);
	/* 7: rejected before the period: not counted. */
	mk(&t[6], 7, "p", 64000, "EUR");
	enter(&t[6], S(REJECTED), JAN1 - DAY);
	/* 8: accepted, not fulfilled yet: out. */
	mk(&t[7], 8, "p", 128000, "EUR");
	fulfil(&t[7], JAN1 + DAY);
	t[7].o.state = S(ACCEPTED);
	t[7].o.n_history--;
	/* 9: in JPY, charged in the period. */
	mk(&t[8], 9, "p", 12000, "JPY");
	fulfil(&t[8], JAN1 + 2 * DAY);
	enter(&t[8], S(CHARGED), JAN1 + 3 * DAY);
	/* 10: CHARGED without a FULFILLED entry (a damaged history): out. */
	mk(&t[9], 10, "p", 256000, "EUR");
	enter(&t[9], S(CHARGED), JAN1 + DAY);

	ledger_init(&l, &q);
	for (size_t i = 0; i < ELEMENTSOF(t); i++)
		assert_int_equal(ledger_add(&l, &t[i].o), 0);
	ledger_sort(&l);

	assert_int_equal(l.matched, 3);
	assert_int_equal(l.n_rows, 3);
	assert_false(l.truncated);
	assert_int_equal(l.rejected, 1);
	/* By fulfilled time: 1, 9, 3. */
	assert_int_equal(l.rows[0].order_id, 1);
	assert_int_equal(l.rows[0].fulfilled_ms, JAN1);
	assert_int_equal(l.rows[0].charged_ms, 0);
	assert_int_equal(l.rows[0].state, S(FULFILLED));
	assert_int_equal(l.rows[0].amount, 1000);
	assert_int_equal(l.rows[0].quantity, 2);
	assert_string_equal(l.rows[0].currency, "EUR");
	assert_string_equal(l.rows[0].service_id, "svc-1");
	assert_string_equal(l.rows[0].service_name, "Service, \"one\"");
	assert_int_equal(l.rows[1].order_id, 9);
	assert_int_equal(l.rows[1].state, S(CHARGED));
	assert_int_equal(l.rows[1].charged_ms, JAN1 + 3 * DAY);
	assert_int_equal(l.rows[2].order_id, 3);
	assert_int_equal(l.rows[2].fulfilled_ms, JAN1 + 31 * DAY - 1);
	assert_int_equal(l.rows[2].charged_ms, JAN1 + 40 * DAY);

	/* Totals per currency: fulfilled counts charged orders too. */
	assert_int_equal(l.n_totals, 2);
	assert_string_equal(total_of(&l, "EUR")->currency, "EUR");
	assert_int_equal(total_of(&l, "EUR")->orders, 2);
	assert_int_equal(total_of(&l, "EUR")->fulfilled, 5000);
	assert_int_equal(total_of(&l, "EUR")->charged_orders, 1);
	assert_int_equal(total_of(&l, "EUR")->charged, 4000);
	assert_int_equal(total_of(&l, "JPY")->orders, 1);
	assert_int_equal(total_of(&l, "JPY")->fulfilled, 12000);
	assert_int_equal(total_of(&l, "JPY")->charged, 12000);
	assert_string_equal(total_of(&l, "USD")->currency, "");

	/* All time: orders 2 and 4 join; 7's rejection counts. */
	ledger_release(&l);
	q.from_ms = 0;
	q.to_ms = 0;
	ledger_init(&l, &q);
	for (size_t i = 0; i < ELEMENTSOF(t); i++)
		assert_int_equal(ledger_add(&l, &t[i].o), 0);
	assert_int_equal(l.matched, 5);
	assert_int_equal(l.rejected, 2);
	assert_int_equal(total_of(&l, "EUR")->fulfilled, 15000);
	assert_int_equal(total_of(&l, "EUR")->charged, 4000);
	ledger_sort(&l);
	assert_int_equal(l.rows[0].order_id, 4);
	assert_int_equal(l.rows[4].order_id, 2);
	ledger_release(&l);
	assert_int_equal(l.n_rows, 0);
	assert_null(l.rows);
}

static void
test_rows_max_and_overflow(void **state)
{
	struct ledger_query q = { .provider_id = "p", .max_rows = 2 };
	struct test_order t[4], big;
	struct ledger l;

	(void)state;
	ledger_init(&l, &q);
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		mk(&t[i], i + 1, "p", 100, "EUR");
		fulfil(&t[i], JAN1 + i * DAY);
		assert_int_equal(ledger_add(&l, &t[i].o), 0);
	}
	/* Two rows kept, all four counted. */
	assert_int_equal(l.n_rows, 2);
	assert_int_equal(l.matched, 4);
	assert_true(l.truncated);
	assert_int_equal(total_of(&l, "EUR")->orders, 4);
	assert_int_equal(total_of(&l, "EUR")->fulfilled, 400);

	/* A sum past INT64_MAX: refused, the ledger unchanged. */
	mk(&big, 99, "p", INT64_MAX, "EUR");
	fulfil(&big, JAN1);
	assert_int_equal(ledger_add(&l, &big.o), -EOVERFLOW);
	assert_int_equal(l.matched, 4);
	assert_int_equal(total_of(&l, "EUR")->orders, 4);
	assert_int_equal(total_of(&l, "EUR")->fulfilled, 400);
	/* Alone in its currency it fits. */
	big.amount.currency = unconst("USD");
	assert_int_equal(ledger_add(&l, &big.o), 0);
	assert_int_equal(total_of(&l, "USD")->fulfilled, INT64_MAX);
	ledger_release(&l);

	/* max_rows 0 or past the limit: the limit. */
	q.max_rows = 0;
	ledger_init(&l, &q);
	assert_int_equal(l.q.max_rows, LEDGER_ROWS_MAX);
	q.max_rows = LEDGER_ROWS_MAX + 1;
	ledger_init(&l, &q);
	assert_int_equal(l.q.max_rows, LEDGER_ROWS_MAX);
}

/* ---- orders in a store ------------------------------------------------ */

static int
setup(void **state)
{
	return store_fixture_setup(state, "ledger", 8u << 20);
}

static int
teardown(void **state)
{
	return store_fixture_teardown(state);
}

/*
 * A committed order of provider for minor cents (two at half of it),
 * moved through states[] at times[] with order_enter_state(), as the
 * daemon would.
 */
static uint64_t
store_order(struct store *s, const char *provider, int64_t minor,
    const order_state *states, const uint64_t *times, size_t n)
{
	const struct fixture_order fo = { .member = "100001",
		.provider = provider, .quantity = 2, .unit_minor = minor / 2 };
	struct store_txn *txn;
	uint64_t id;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	id = fixture_order_write(txn, &fo, states, times, n);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	return id;
}

static void
test_scan_store(void **state)
{
	static const order_state path[] = { S(RECEIVED), S(AUTHORIZED),
	    S(AWAITING_CONFIRMATION), S(CONFIRMED), S(DISPATCHED),
	    S(ACCEPTED), S(FULFILLED), S(CHARGED) };
	static const order_state rejected[] = { S(RECEIVED), S(AUTHORIZED),
	    S(AWAITING_CONFIRMATION), S(CONFIRMED), S(DISPATCHED),
	    S(REJECTED) };
	struct store_fixture *f = *state;
	struct ledger_query q = { .provider_id = "prov-1", .from_ms = JAN1,
	    .to_ms = JAN1 + 10 * DAY };
	uint64_t t1[8], t2[8], t3[8], t4[6], charged, fulfilled;
	struct store_txn *txn;
	struct ledger l;

	for (size_t i = 0; i < 8; i++) {
		t1[i] = JAN1 + 5 * DAY + i * 1000;  /* fulfilled day 5 */
		t2[i] = JAN1 + 2 * DAY + i * 1000;  /* fulfilled day 2 */
		t3[i] = JAN1 + 20 * DAY + i * 1000; /* after the period */
	}
	for (size_t i = 0; i < 6; i++)
		t4[i] = JAN1 + 3 * DAY + i * 1000;
	charged = store_order(f->s, "prov-1", 500, path, t1, 8);
	/* Fulfilled after the period; another provider's; only received;
	 * rejected in the period. */
	store_order(f->s, "prov-1", 700, path, t3, 7);
	store_order(f->s, "prov-2", 900, path, t2, 8);
	store_order(f->s, "prov-1", 1100, path, t2, 1);
	store_order(f->s, "prov-1", 1300, rejected, t4, 6);
	/* Made last, fulfilled first: listed first. */
	fulfilled = store_order(f->s, "prov-1", 300, path, t2, 7);

	ledger_init(&l, &q);
	assert_int_equal(store_txn_begin(f->s, STORE_RDONLY, &txn), 0);
	assert_int_equal(ledger_scan(txn, &l), 0);
	store_txn_abort(txn);
	assert_int_equal(l.matched, 2);
	assert_int_equal(l.n_rows, 2);
	assert_int_equal(l.rejected, 1);
	assert_int_equal(l.rows[0].order_id, fulfilled);
	assert_int_equal(l.rows[0].state, S(FULFILLED));
	assert_int_equal(l.rows[0].fulfilled_ms, t2[6]);
	assert_int_equal(l.rows[0].charged_ms, 0);
	assert_int_equal(l.rows[1].order_id, charged);
	assert_int_equal(l.rows[1].state, S(CHARGED));
	assert_int_equal(l.rows[1].fulfilled_ms, t1[6]);
	assert_int_equal(l.rows[1].charged_ms, t1[7]);
	assert_string_equal(l.rows[1].service_name, "One");
	assert_int_equal(l.n_totals, 1);
	assert_int_equal(l.totals[0].orders, 2);
	assert_int_equal(l.totals[0].fulfilled, 800);
	assert_int_equal(l.totals[0].charged_orders, 1);
	assert_int_equal(l.totals[0].charged, 500);
	ledger_release(&l);

	/* A provider with no order: an empty ledger. */
	q.provider_id = "prov-3";
	ledger_init(&l, &q);
	assert_int_equal(store_txn_begin(f->s, STORE_RDONLY, &txn), 0);
	assert_int_equal(ledger_scan(txn, &l), 0);
	store_txn_abort(txn);
	assert_int_equal(l.matched, 0);
	assert_int_equal(l.n_rows, 0);
	assert_int_equal(l.n_totals, 0);
	assert_int_equal(l.rejected, 0);
	ledger_release(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entered),
		cmocka_unit_test(test_period_and_states),
		cmocka_unit_test(test_rows_max_and_overflow),
		cmocka_unit_test_setup_teardown(test_scan_store, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
