/* SPDX-License-Identifier: ISC */
/* test_idem.c -- SipHash; the idempotency log and its map in memory */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/be64.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/siphash.h"
#include "order/idem.h"
#include "order/order.h"
#include "store.pb-c.h"
#include "store/store.h"

#include "store_fixture.h"

/* ---- SipHash ----------------------------------------------------------- */

/* The paper's vectors: key 00..0f, message 00..(len-1). */
static void
test_siphash_vectors(void **state)
{
	uint8_t key[16], msg[64];

	(void)state;
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
}

/* Against OpenSSL's SIPHASH MAC (8-byte output, 2 and 4 rounds), every
 * length 0..63 under random keys. */
static void
test_siphash_openssl(void **state)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	uint8_t key[16], msg[64], out[8];
	size_t out_len;

	(void)state;
	assert_non_null(mac);
	for (size_t len = 0; len < sizeof(msg); len++) {
		EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
		unsigned size = 8;
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &size),
			OSSL_PARAM_construct_end(),
		};
		uint64_t want = 0;

		assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
		assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
		assert_non_null(ctx);
		assert_int_equal(EVP_MAC_init(ctx, key, sizeof(key), params), 1);
		assert_int_equal(EVP_MAC_update(ctx, msg, len), 1);
		assert_int_equal(EVP_MAC_final(ctx, out, &out_len, sizeof(out)),
		    1);
		assert_int_equal(out_len, 8);
		for (int i = 7; i >= 0; i--)
			want = want << 8 | out[i];
		assert_true(siphash24(key, msg, len) == want);
		EVP_MAC_CTX_free(ctx);
	}
	EVP_MAC_free(mac);
}

/* ---- the index --------------------------------------------------------- */

struct fixture {
	struct store_fixture sf;
	struct idem *ix;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || store_fixture_init(&f->sf, "idem", 256u << 20) < 0 ||
	    idem_open(f->sf.s, &f->ix, NULL) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int r;

	idem_free(f->ix);
	r = store_fixture_fini(&f->sf);
	free(f);
	return r;
}

static void
reopen(struct fixture *f, size_t *ret_moved)
{
	f->ix = idem_free(f->ix);
	f->sf.s = store_close(f->sf.s);
	f->sf.s = store_fixture_open(&f->sf);
	assert_int_equal(idem_open(f->sf.s, &f->ix, ret_moved), 0);
}

/* A new order of member with idempotency key `key` and quantity qty,
 * logged at now, in txn; its id. */
static uint64_t
order_in(struct fixture *f, struct store_txn *txn, const char *member,
    const char *key, uint32_t qty, uint64_t now)
{
	static const order_state received =
	    TWINROUTE__ORDER_STATE__ORDER_RECEIVED;
	const struct fixture_order fo = { .member = member,
		.provider = "prov-1", .key = key, .quantity = qty,
		.unit_minor = 250 };
	const uint64_t at = now * 1000;
	uint64_t id = fixture_order_write(txn, &fo, &received, &at, 1);

	assert_int_equal(idem_put(f->ix, txn, member, key, id, now), 0);
	return id;
}

/* The same, committed. */
static uint64_t
put(struct fixture *f, const char *member, const char *key, uint32_t qty,
    uint64_t now)
{
	struct store_txn *txn;
	uint64_t id;

	assert_int_equal(store_txn_begin(f->sf.s, 0, &txn), 0);
	id = order_in(f, txn, member, key, qty, now);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	return id;
}

static int
get(struct fixture *f, const char *member, const char *key, uint64_t now,
    uint32_t ttl, uint64_t *ret_id, uint8_t *ret_hash)
{
	struct store_txn *txn;
	int r;

	assert_int_equal(store_txn_begin(f->sf.s, 0, &txn), 0);
	r = idem_get(f->ix, txn, member, key, now, ttl, ret_id, ret_hash);
	store_txn_abort(txn);
	return r;
}

static void
test_get_put(void **state)
{
	struct fixture *f = *state;
	uint8_t h2[ORDER_HASH_SIZE], h3[ORDER_HASH_SIZE], got[ORDER_HASH_SIZE];
	uint64_t id = 0, first, second;

	order_request_hash("svc-1", 2, "note", h2);
	order_request_hash("svc-1", 3, "note", h3);
	assert_int_equal(get(f, "100001", "k1", 1000, 3600, &id, got),
	    -ENOENT);
	first = put(f, "100001", "k1", 2, 1000);
	assert_int_equal(get(f, "100001", "k1", 4599, 3600, &id, got), 0);
	assert_int_equal(id, first);
	/* The hash of the order's parameters, as the request's would be. */
	assert_memory_equal(got, h2, sizeof(h2));
	/* Scoped to the member; the bytes of member and key do not run
	 * into each other. */
	assert_int_equal(get(f, "100002", "k1", 1000, 3600, &id, got),
	    -ENOENT);
	assert_int_equal(get(f, "10000", "1k1", 1000, 3600, &id, got),
	    -ENOENT);
	assert_int_equal(get(f, "100001", "k", 1000, 3600, &id, got),
	    -ENOENT);
	/* Expired: treated as absent. */
	assert_int_equal(get(f, "100001", "k1", 4600, 3600, &id, got),
	    -ENOENT);
	/* An expired key may be used again; the new order wins. */
	second = put(f, "100001", "k1", 3, 5000);
	assert_int_equal(get(f, "100001", "k1", 5000, 3600, &id, got), 0);
	assert_int_equal(id, second);
	assert_memory_equal(got, h3, sizeof(h3));
	assert_int_equal(idem_count(f->ix), 2);

	/* Everything is there after a reopen, from the log's keys. */
	reopen(f, NULL);
	assert_int_equal(idem_count(f->ix), 2);
	assert_int_equal(get(f, "100001", "k1", 5000, 3600, &id, got), 0);
	assert_int_equal(id, second);
	assert_int_equal(get(f, "100001", "k1", 1000, 3600, &id, got), 0);
	assert_int_equal(id, first);
}

/* Many keys: the map grows, and every one is found after a reopen
 * (loaded in the order of home slots). */
static void
test_many(void **state)
{
	struct fixture *f = *state;
	uint8_t h[ORDER_HASH_SIZE], got[ORDER_HASH_SIZE];
	struct store_txn *txn;
	char key[32], member[16];
	uint64_t id;
	/* Past 2 MiB of slots and of load buffer: mmap, huge pages. */
	const unsigned n = 140000;

	assert_int_equal(store_txn_begin(f->sf.s, 0, &txn), 0);
	for (unsigned i = 1; i <= n; i++) {
		snprintf(member, sizeof(member), "%u", 100000 + i % 7);
		snprintf(key, sizeof(key), "key-%u", i);
		assert_int_equal(order_in(f, txn, member, key, 1 + i % 5, 100),
		    i);
	}
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(idem_count(f->ix), n);
		for (unsigned i = 1; i <= n; i += 7) {
			snprintf(member, sizeof(member), "%u", 100000 + i % 7);
			snprintf(key, sizeof(key), "key-%u", i);
			assert_int_equal(get(f, member, key, 100, 60, &id, got),
			    0);
			assert_int_equal(id, i);
			order_request_hash("svc-1", 1 + i % 5, "note", h);
			assert_memory_equal(got, h, sizeof(h));
			/* The same key under another member is another. */
			snprintf(member, sizeof(member), "%u",
			    100000 + (i + 1) % 7);
			assert_int_equal(get(f, member, key, 100, 60, &id, got),
			    -ENOENT);
		}
		reopen(f, NULL);
	}
}

/* A write that never commits leaves a hint; the lookup drops it. */
static void
test_failed_write(void **state)
{
	struct fixture *f = *state;
	uint8_t got[ORDER_HASH_SIZE];
	struct store_txn *txn;
	uint64_t id, kept, lost;

	kept = put(f, "100001", "kept", 1, 100);
	assert_int_equal(store_txn_begin(f->sf.s, 0, &txn), 0);
	order_in(f, txn, "100001", "lost", 1, 100);
	store_txn_abort(txn);
	assert_int_equal(idem_count(f->ix), 2);
	assert_int_equal(get(f, "100001", "lost", 100, 60, &id, got), -ENOENT);
	assert_int_equal(idem_count(f->ix), 1);
	assert_int_equal(get(f, "100001", "kept", 100, 60, &id, got), 0);
	assert_int_equal(id, kept);
	/* The key is free for the order that does commit (the same id: the
	 * failed write took back its id too). */
	lost = put(f, "100001", "lost", 1, 100);
	assert_int_equal(get(f, "100001", "lost", 100, 60, &id, got), 0);
	assert_int_equal(id, lost);
	assert_int_equal(idem_count(f->ix), 2);
}

/* The sweep deletes from the front while expired, at most max. */
static void
test_sweep(void **state)
{
	struct fixture *f = *state;
	uint8_t got[ORDER_HASH_SIZE];
	struct store_txn *txn;
	char key[16];
	uint64_t id, entries = 0, six = 0;
	size_t n = 0;

	for (unsigned i = 1; i <= 10; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		id = put(f, "100001", key, 1, 1000 + i * 10);
		if (i == 6)
			six = id;
	}
	/* ttl 100 at 1155: 1010..1050 expired (five), 1060.. not. */
	assert_int_equal(store_txn_begin(f->sf.s, 0, &txn), 0);
	assert_int_equal(idem_sweep_due(txn, 1109, 100), 0);
	assert_int_equal(idem_sweep_due(txn, 1110, 100), 1);
	assert_int_equal(idem_sweep(f->ix, txn, 1155, 100, 3, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(idem_sweep(f->ix, txn, 1155, 100, 100, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(idem_sweep_due(txn, 1155, 100), 0);
	assert_int_equal(idem_sweep(f->ix, txn, 1155, 100, 100, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(idem_sweep_due(txn, 1000000, 100), 1);
	assert_int_equal(store_db_entries(txn, STORE_DB_IDEMPOTENCY_LOG,
	    &entries), 0);
	assert_int_equal(entries, 5);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	assert_int_equal(idem_count(f->ix), 5);
	/* A swept key is gone even for a longer ttl; a kept one is there. */
	assert_int_equal(get(f, "100001", "k5", 1155, 100000, &id, got),
	    -ENOENT);
	assert_int_equal(get(f, "100001", "k6", 1155, 100, &id, got), 0);
	assert_int_equal(id, six);
	reopen(f, NULL);
	assert_int_equal(idem_count(f->ix), 5);
}

/* A schema 1 store's records (key member "\0" key, value with the order
 * id) move to the log. */
static void
test_schema1_move(void **state)
{
	struct fixture *f = *state;
	Twinroute__Store__IdempotencyRecord rec =
	    TWINROUTE__STORE__IDEMPOTENCY_RECORD__INIT;
	uint8_t h[ORDER_HASH_SIZE] = { 4 }, got[ORDER_HASH_SIZE], buf[128];
	struct store_txn *txn;
	uint64_t id, entries = 1, ids[4];
	size_t moved = 0;

	/* The orders, with the log emptied: what a schema 1 store holds is
	 * the orders and the old records. */
	assert_int_equal(store_txn_begin(f->sf.s, 0, &txn), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		char k[24];

		snprintf(k, sizeof(k), "old-%" PRIu64, i);
		ids[i] = order_in(f, txn, i == 2 ? "100002" : "100001", k, 2,
		    500);
	}
	assert_int_equal(store_drop(txn, STORE_DB_IDEMPOTENCY_LOG), 0);
	rec.request_hash.data = h;
	rec.request_hash.len = sizeof(h);
	rec.created_unix = 500;
	for (uint64_t i = 1; i <= 3; i++) {
		char k[24];
		size_t klen;

		rec.order_id = ids[i];
		klen = (size_t)snprintf(k, sizeof(k), "%s%cold-%" PRIu64,
		    i == 2 ? "100002" : "100001", '\0', i);
		assert_int_equal(store_put(txn, STORE_DB_IDEMPOTENCY, k, klen,
		    buf, twinroute__store__idempotency_record__pack(&rec, buf)),
		    0);
	}
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	reopen(f, &moved);
	assert_int_equal(moved, 3);
	assert_int_equal(idem_count(f->ix), 3);
	assert_int_equal(get(f, "100002", "old-2", 600, 3600, &id, got), 0);
	assert_int_equal(id, ids[2]);
	order_request_hash("svc-1", 2, "note", h);
	assert_memory_equal(got, h, sizeof(h));
	assert_int_equal(get(f, "100001", "old-2", 600, 3600, &id, got),
	    -ENOENT);
	/* Their time came along: expired at 500 + ttl. */
	assert_int_equal(get(f, "100001", "old-3", 4100, 3600, &id, got),
	    -ENOENT);
	assert_int_equal(store_txn_begin(f->sf.s, STORE_RDONLY, &txn), 0);
	assert_int_equal(store_db_entries(txn, STORE_DB_IDEMPOTENCY, &entries),
	    0);
	assert_int_equal(entries, 0);
	store_txn_abort(txn);
	/* Once only. */
	reopen(f, &moved);
	assert_int_equal(moved, 0);
	assert_int_equal(idem_count(f->ix), 3);
}

/* The hash key is the store's: drawn once, kept. */
static void
test_sipkey_kept(void **state)
{
	struct fixture *f = *state;
	struct store_txn *txn;
	const void *val;
	uint8_t first[SIPHASH_KEY_SIZE];
	size_t len;

	assert_int_equal(store_txn_begin(f->sf.s, STORE_RDONLY, &txn), 0);
	assert_int_equal(store_get(txn, STORE_DB_META,
	    "idempotency_siphash_key", 23, &val, &len), 0);
	assert_int_equal(len, SIPHASH_KEY_SIZE);
	memcpy(first, val, len);
	store_txn_abort(txn);
	reopen(f, NULL);
	assert_int_equal(store_txn_begin(f->sf.s, STORE_RDONLY, &txn), 0);
	assert_int_equal(store_get(txn, STORE_DB_META,
	    "idempotency_siphash_key", 23, &val, &len), 0);
	assert_memory_equal(val, first, sizeof(first));
	store_txn_abort(txn);
}

int
main(void)
{
	/* Not a line per order of the 140,000. */
	log_set_level(LOG_LEVEL_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_siphash_openssl),
		cmocka_unit_test_setup_teardown(test_get_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema1_move, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sipkey_kept, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
