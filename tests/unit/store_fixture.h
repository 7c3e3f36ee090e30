/* SPDX-License-Identifier: ISC */
/* store_fixture.h -- unit tests: a broker store in a folder of its own, and
 * orders written into it the way the daemon writes them */
#ifndef TR_TESTS_STORE_FIXTURE_H
#define TR_TESTS_STORE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/macro.h"
#include "order/order.h"
#include "store/store.h"
#include "tmpdir.h"

struct store_fixture {
	char dir[64];
	char path[96];              /* dir/broker */
	size_t map_size;
	struct store *s;
};

/* Open (again) the fixture's store, without an event base. */
static inline struct store *
store_fixture_open(const struct store_fixture *f)
{
	struct store_opts opts = { .path = f->path, .map_size = f->map_size };
	struct store *s = NULL;

	assert_int_equal(store_open(&opts, NULL, &s), 0);
	return s;
}

/* A new folder /tmp/test_NAME.XXXXXX with an open store. 0 or -1. */
static inline int
store_fixture_init(struct store_fixture *f, const char *name,
    size_t map_size)
{
	struct store_opts opts = { .map_size = map_size };

	if (tmpdir_make(f->dir, sizeof(f->dir), name) < 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/broker", f->dir);
	f->map_size = map_size;
	opts.path = f->path;
	return store_open(&opts, NULL, &f->s) < 0 ? -1 : 0;
}

/* Close the store, remove the folder. 0 or -1. */
static inline int
store_fixture_fini(struct store_fixture *f)
{
	f->s = store_close(f->s);
	return tmpdir_remove(f->dir);
}

/* cmocka setup and teardown for tests whose state is the fixture. */
static inline int
store_fixture_setup(void **state, const char *name, size_t map_size)
{
	struct store_fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || store_fixture_init(f, name, map_size) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static inline int
store_fixture_teardown(void **state)
{
	struct store_fixture *f = *state;
	int r = store_fixture_fini(f);

	free(f);
	return r;
}

/* What a test order is: its member, provider, idempotency key (NULL:
 * none), quantity and unit price in EUR cents, of service svc-1 ("One"),
 * with the note "note"; the cause its history gives each step (NULL:
 * "test"). */
struct fixture_order {
	const char *member;
	const char *provider;
	const char *key;
	uint32_t quantity;
	int64_t unit_minor;
	const char *cause;
};

/* Write order `fo` in txn, moved through states[] at times[] (ms) by
 * order_enter_state(), as the daemon would; its id. */
static inline uint64_t
fixture_order_write(struct store_txn *txn, const struct fixture_order *fo,
    const order_state *states, const uint64_t *times, size_t n)
{
	Twinroute__Money price = TWINROUTE__MONEY__INIT, total;
	Order t = TWINROUTE__ORDER__INIT, *o;
	uint64_t id;

	price.minor = fo->unit_minor;
	price.currency = unconst("EUR");
	total = price;
	total.minor = fo->unit_minor * fo->quantity;
	assert_int_equal(order_next_id(txn, &t.id), 0);
	t.member = unconst(fo->member);
	t.service_id = unconst("svc-1");
	t.service_name = unconst("One");
	t.provider_id = unconst(fo->provider);
	t.quantity = fo->quantity;
	t.unit_price = &price;
	t.amount = &total;
	t.note = unconst("note");
	if (fo->key)
		t.idempotency_key = unconst(fo->key);
	assert_int_equal(order_dup(&t, &o), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(order_enter_state(txn, o, states[i],
		    fo->cause ? fo->cause : "test", times[i]), 0);
	id = o->id;
	twinroute__order__free_unpacked(o, NULL);
	return id;
}

#endif
