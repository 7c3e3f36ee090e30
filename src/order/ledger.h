/* SPDX-License-Identifier: ISC */
/* ledger.h -- a provider's fulfilled and charged orders over a period */
#ifndef TR_LEDGER_H
#define TR_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "order/order.h"
#include "store/store.h"

/* Rows a ledger keeps at most; past it the totals still count. */
#define LEDGER_ROWS_MAX 100000
/* Bytes of a currency code kept ("EUR"); longer codes are cut. */
#define LEDGER_CURRENCY_MAX 7

/*
 * What a ledger covers: the orders of one provider whose last entry into
 * FULFILLED falls in [from_ms, to_ms). to_ms 0: no end. REJECTED orders
 * are counted, not listed, by their last entry into REJECTED.
 */
struct ledger_query {
	const char *provider_id;  /* borrowed; outlives the ledger */
	uint64_t from_ms;         /* inclusive; 0: from the start */
	uint64_t to_ms;           /* exclusive; 0: no end */
	size_t max_rows;          /* rows kept; 0 or past the max: ROWS_MAX */
};

/* One order in the ledger: FULFILLED, or CHARGED after it. */
struct ledger_row {
	uint64_t order_id;
	uint64_t fulfilled_ms;    /* its last entry into FULFILLED */
	uint64_t charged_ms;      /* its last entry into CHARGED; 0: none */
	order_state state;
	char *service_id;         /* owned */
	char *service_name;       /* owned */
	uint32_t quantity;
	int64_t amount;           /* minor units */
	char currency[LEDGER_CURRENCY_MAX + 1];
};

/* The sums of one currency, over every order that matched. */
struct ledger_total {
	char currency[LEDGER_CURRENCY_MAX + 1];
	uint64_t orders;          /* fulfilled, charged ones included */
	int64_t fulfilled;        /* minor units of those */
	uint64_t charged_orders;  /* of them, CHARGED */
	int64_t charged;          /* minor units of those */
};

struct ledger {
	struct ledger_query q;
	struct ledger_row *rows;  /* in the order added; ledger_sort() */
	size_t n_rows, cap_rows;
	struct ledger_total *totals; /* in the order first seen */
	size_t n_totals, cap_totals;
	uint64_t matched;         /* orders that belong, kept as rows or not */
	uint64_t rejected;        /* REJECTED within the period */
	bool truncated;           /* matched > n_rows */
};

/* An empty ledger for q (copied). */
void ledger_init(struct ledger *l, const struct ledger_query *q);
/* Free the rows and totals; l is empty again, its query kept. */
void ledger_release(struct ledger *l);

/*
 * The time of o's last entry into state s, from its history: true and
 * *ret_ms, or false when it never entered s.
 */
bool ledger_entered(const Order *o, order_state s, uint64_t *ret_ms);

/*
 * Take o into the ledger if it belongs: the query's provider, FULFILLED
 * or CHARGED with its FULFILLED entry in the period (a row while there is
 * room, and the totals), or REJECTED in the period (the count). Other
 * orders are ignored. o is only read. 0, -ENOMEM, or -EOVERFLOW when a
 * total no longer fits in 64 bits (the ledger is unchanged then).
 */
int ledger_add(struct ledger *l, const Order *o);

/* Rows by fulfilled time, then order id. */
void ledger_sort(struct ledger *l);

/* ledger_add() every order of the store, then ledger_sort(). */
int ledger_scan(struct store_txn *txn, struct ledger *l);

#endif
