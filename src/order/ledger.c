/* SPDX-License-Identifier: ISC */
/* ledger.c -- a provider's fulfilled and charged orders over a period */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "order/ledger.h"

#define S(x) TWINROUTE__ORDER_STATE__ORDER_##x

void
ledger_init(struct ledger *l, const struct ledger_query *q)
{
	memset(l, 0, sizeof(*l));
	l->q = *q;
	if (l->q.max_rows == 0 || l->q.max_rows > LEDGER_ROWS_MAX)
		l->q.max_rows = LEDGER_ROWS_MAX;
}

void
ledger_release(struct ledger *l)
{
	for (size_t i = 0; i < l->n_rows; i++) {
		free(l->rows[i].service_id);
		free(l->rows[i].service_name);
	}
	free(l->rows);
	free(l->totals);
	l->rows = NULL;
	l->totals = NULL;
	l->n_rows = l->cap_rows = l->n_totals = l->cap_totals = 0;
	l->matched = l->rejected = 0;
	l->truncated = false;
}

bool
ledger_entered(const Order *o, order_state s, uint64_t *ret_ms)
{
	for (size_t i = o->n_history; i > 0; i--) {
		const Twinroute__OrderTransition *h = o->history[i - 1];

		if (h != NULL && h->state == s) {
			*ret_ms = h->unix_ms;
			return true;
		}
	}
	return false;
}

static bool
ledger_in_period(const struct ledger_query *q, uint64_t ms)
{
	return ms >= q->from_ms && (q->to_ms == 0 || ms < q->to_ms);
}

static void
ledger_currency(const Order *o, char out[LEDGER_CURRENCY_MAX + 1])
{
	const char *cur = o->amount && o->amount->currency ?
	    o->amount->currency : "";
	size_t n = strnlen(cur, LEDGER_CURRENCY_MAX);

	memcpy(out, cur, n);
	out[n] = '\0';
}

/* The total of currency cur; a new one at the end if missing (NULL:
 * ENOMEM). Nothing is added to it here. */
static struct ledger_total *
ledger_total(struct ledger *l, const char *cur)
{
	struct ledger_total *t;

	for (size_t i = 0; i < l->n_totals; i++)
		if (strcmp(l->totals[i].currency, cur) == 0)
			return &l->totals[i];
	if (l->n_totals == l->cap_totals) {
		size_t cap = l->cap_totals ? 2 * l->cap_totals : 4;

		t = reallocarray(l->totals, cap, sizeof(*t));
		if (t == NULL)
			return NULL;
		l->totals = t;
		l->cap_totals = cap;
	}
	t = &l->totals[l->n_totals++];
	memset(t, 0, sizeof(*t));
	memcpy(t->currency, cur, strlen(cur) + 1);
	return t;
}

static int
ledger_add_row(struct ledger *l, const Order *o, uint64_t fulfilled_ms,
    uint64_t charged_ms, const char *cur)
{
	struct ledger_row *row;

	if (l->n_rows == l->cap_rows) {
		size_t cap = l->cap_rows ? 2 * l->cap_rows : 64;

		if (cap > l->q.max_rows)
			cap = l->q.max_rows;
		row = reallocarray(l->rows, cap, sizeof(*row));
		if (row == NULL)
			return -ENOMEM;
		l->rows = row;
		l->cap_rows = cap;
	}
	row = &l->rows[l->n_rows];
	memset(row, 0, sizeof(*row));
	row->service_id = strdup(o->service_id ? o->service_id : "");
	row->service_name = strdup(o->service_name ? o->service_name : "");
	if (row->service_id == NULL || row->service_name == NULL) {
		free(row->service_id);
		free(row->service_name);
		return -ENOMEM;
	}
	row->order_id = o->id;
	row->fulfilled_ms = fulfilled_ms;
	row->charged_ms = charged_ms;
	row->state = o->state;
	row->quantity = o->quantity;
	row->amount = o->amount ? o->amount->minor : 0;
	memcpy(row->currency, cur, strlen(cur) + 1);
	l->n_rows++;
	return 0;
}

int
ledger_add(struct ledger *l, const Order *o)
{
	struct ledger_total *t;
	uint64_t fulfilled_ms = 0, charged_ms = 0, ms;
	int64_t amount = o->amount ? o->amount->minor : 0;
	int64_t fulfilled, charged;
	bool is_charged = o->state == S(CHARGED);
	char cur[LEDGER_CURRENCY_MAX + 1];
	int r;

	if (o->provider_id == NULL || l->q.provider_id == NULL ||
	    strcmp(o->provider_id, l->q.provider_id) != 0)
		return 0;
	if (o->state == S(REJECTED)) {
		if (ledger_entered(o, S(REJECTED), &ms) &&
		    ledger_in_period(&l->q, ms))
			l->rejected++;
		return 0;
	}
	if (o->state != S(FULFILLED) && !is_charged)
		return 0;
	/* The table lets no order be charged without being fulfilled; one
	 * whose history says otherwise has no place in time: left out. */
	if (!ledger_entered(o, S(FULFILLED), &fulfilled_ms) ||
	    !ledger_in_period(&l->q, fulfilled_ms))
		return 0;
	if (is_charged && !ledger_entered(o, S(CHARGED), &charged_ms))
		charged_ms = 0;

	ledger_currency(o, cur);
	t = ledger_total(l, cur);
	if (t == NULL)
		return -ENOMEM;
	/* Check both sums before changing anything. */
	if (__builtin_add_overflow(t->fulfilled, amount, &fulfilled) ||
	    __builtin_add_overflow(t->charged, is_charged ? amount : 0,
	    &charged))
		return -EOVERFLOW;
	if (l->n_rows < l->q.max_rows) {
		r = ledger_add_row(l, o, fulfilled_ms, charged_ms, cur);
		if (r < 0)
			return r;
	} else {
		l->truncated = true;
	}
	t->orders++;
	t->fulfilled = fulfilled;
	if (is_charged) {
		t->charged_orders++;
		t->charged = charged;
	}
	l->matched++;
	return 0;
}

static int
ledger_row_cmp(const void *a, const void *b)
{
	const struct ledger_row *x = a, *y = b;

	if (x->fulfilled_ms != y->fulfilled_ms)
		return x->fulfilled_ms < y->fulfilled_ms ? -1 : 1;
	if (x->order_id != y->order_id)
		return x->order_id < y->order_id ? -1 : 1;
	return 0;
}

void
ledger_sort(struct ledger *l)
{
	if (l->n_rows > 1)
		qsort(l->rows, l->n_rows, sizeof(*l->rows), ledger_row_cmp);
}

static int
ledger_scan_one(const Order *o, void *arg)
{
	return ledger_add(arg, o);
}

int
ledger_scan(struct store_txn *txn, struct ledger *l)
{
	int r = order_iter(txn, ledger_scan_one, l);

	if (r == 0)
		ledger_sort(l);
	return r;
}
