/* SPDX-License-Identifier: ISC */
/* test_order.c -- transitions, history, outbox, counts, idempotency, ids */
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
#include "order/order.h"
#include "store/store.h"

#include "store_fixture.h"

#define S(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define N_STATES 14

static int
setup(void **state)
{
	return store_fixture_setup(state, "order", 8u << 20);
}

static int
teardown(void **state)
{
	return store_fixture_teardown(state);
}

/* The allowed transitions, as DESIGN.md draws them. */
static const struct {
	order_state from, to;
} allowed[] = {
	{ S(STATE_UNSPECIFIED), S(RECEIVED) },
	{ S(RECEIVED), S(AUTHORIZED) },
	{ S(RECEIVED), S(DECLINED) },
	{ S(RECEIVED), S(CANCELLED) },
	{ S(AUTHORIZED), S(AWAITING_CONFIRMATION) },
	{ S(AUTHORIZED), S(CANCELLED) },
	{ S(AUTHORIZED), S(CONFIRMATION_FAILED) },
	{ S(AUTHORIZED), S(EXPIRED) },
	{ S(AWAITING_CONFIRMATION), S(CONFIRMED) },
	{ S(AWAITING_CONFIRMATION), S(EXPIRED) },
	{ S(AWAITING_CONFIRMATION), S(CANCELLED) },
	{ S(AWAITING_CONFIRMATION), S(CONFIRMATION_FAILED) },
	{ S(CONFIRMED), S(DISPATCHED) },
	{ S(CONFIRMED), S(CANCELLED) },
	{ S(DISPATCHED), S(ACCEPTED) },
	{ S(DISPATCHED), S(REJECTED) },
	{ S(ACCEPTED), S(FULFILLED) },
	{ S(ACCEPTED), S(REJECTED) },
	{ S(FULFILLED), S(CHARGED) },
};

static bool
in_allowed(order_state from, order_state to)
{
	for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
		if (allowed[i].from == from && allowed[i].to == to)
			return true;
	return false;
}

static void
test_table(void **state)
{
	(void)state;
	/* Every pair: exactly the listed ones are allowed. */
	for (int a = 0; a < N_STATES; a++)
		for (int b = 0; b < N_STATES; b++)
			assert_int_equal(order_transition_allowed(a, b),
			    in_allowed(a, b));
	/* A sample of forbidden ones, spelled out. */
	assert_false(order_transition_allowed(S(DISPATCHED), S(CANCELLED)));
	assert_false(order_transition_allowed(S(RECEIVED), S(CONFIRMED)));
	assert_false(order_transition_allowed(S(CANCELLED), S(RECEIVED)));
	assert_false(order_transition_allowed(S(CHARGED), S(REJECTED)));
	assert_false(order_transition_allowed(S(RECEIVED), S(RECEIVED)));
	assert_false(order_transition_allowed(S(RECEIVED), 99));
	assert_false(order_transition_allowed(99, S(RECEIVED)));
	assert_true(order_state_terminal(S(DECLINED)));
	assert_true(order_state_terminal(S(CHARGED)));
	assert_true(order_state_terminal(S(CONFIRMATION_FAILED)));
	assert_false(order_state_terminal(S(FULFILLED)));
	assert_string_equal(order_strstate(S(RECEIVED)), "RECEIVED");
	assert_string_equal(order_strstate(S(AWAITING_CONFIRMATION)),
	    "AWAITING_CONFIRMATION");
	assert_string_equal(order_strstate(S(CONFIRMATION_FAILED)),
	    "CONFIRMATION_FAILED");
}

/* A new order of member, RECEIVED, committed. */
static uint64_t
make_order(struct store *s, const char *member)
{
	static const order_state received = S(RECEIVED);
	static const uint64_t at = 1000;
	const struct fixture_order fo = { .member = member,
		.provider = "prov-1", .quantity = 2, .unit_minor = 250,
		.cause = "member: order" };
	struct store_txn *txn;
	uint64_t id;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	id = fixture_order_write(txn, &fo, &received, &at, 1);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	return id;
}

/* Move order id to `to` in one committed txn; the function's result. */
static int
move(struct store *s, uint64_t id, order_state to, const char *cause,
    uint64_t now)
{
	struct store_txn *txn;
	Order *o;
	int r;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(order_get(txn, id, &o), 0);
	r = order_enter_state(txn, o, to, cause, now);
	if (r == 0)
		assert_int_equal(store_txn_commit(txn, NULL), 0);
	else
		store_txn_abort(txn);
	twinroute__order__free_unpacked(o, NULL);
	return r;
}

static Order *
load(struct store *s, uint64_t id)
{
	struct store_txn *txn;
	Order *o = NULL;

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(order_get(txn, id, &o), 0);
	store_txn_abort(txn);
	return o;
}

static bool
has_mail_job(struct store *s, uint64_t id)
{
	Twinroute__Store__MailJob *job = NULL;
	struct store_txn *txn;
	int r;

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	r = order_mail_job_get(txn, id, &job);
	store_txn_abort(txn);
	if (r == 0) {
		assert_int_equal(job->order_id, id);
		assert_string_equal(job->member, "100001");
		twinroute__store__mail_job__free_unpacked(job, NULL);
	}
	return r == 0;
}

static void
test_history_and_outbox(void **state)
{
	struct store_fixture *f = *state;
	uint64_t id = make_order(f->s, "100001");
	Order *o;

	assert_false(has_mail_job(f->s, id));
	assert_int_equal(move(f->s, id, S(AUTHORIZED), "vault: OK", 2000), 0);
	assert_true(has_mail_job(f->s, id));
	/* Forbidden: nothing changes, the error names it. */
	assert_int_equal(move(f->s, id, S(DISPATCHED), "x", 2500),
	    -ORDER_EFORBIDDEN);
	assert_int_equal(move(f->s, id, S(CANCELLED), "member: cancel", 3000),
	    0);
	assert_false(has_mail_job(f->s, id));
	assert_int_equal(move(f->s, id, S(AUTHORIZED), "x", 3500),
	    -ORDER_EFORBIDDEN);

	o = load(f->s, id);
	assert_int_equal(o->state, S(CANCELLED));
	assert_int_equal(o->created_unix_ms, 1000);
	assert_int_equal(o->updated_unix_ms, 3000);
	assert_int_equal(o->n_history, 3);
	assert_int_equal(o->history[0]->state, S(RECEIVED));
	assert_int_equal(o->history[0]->unix_ms, 1000);
	assert_string_equal(o->history[0]->cause, "member: order");
	assert_int_equal(o->history[1]->state, S(AUTHORIZED));
	assert_string_equal(o->history[1]->cause, "vault: OK");
	assert_int_equal(o->history[2]->state, S(CANCELLED));
	assert_int_equal(o->history[2]->unix_ms, 3000);
	assert_string_equal(o->history[2]->cause, "member: cancel");
	twinroute__order__free_unpacked(o, NULL);
}

static void
test_outbox_same_txn(void **state)
{
	struct store_fixture *f = *state;
	uint64_t id = make_order(f->s, "100001");
	struct store_txn *txn;
	Order *o;

	/* An aborted transition leaves neither the state nor the job. */
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	assert_int_equal(order_get(txn, id, &o), 0);
	assert_int_equal(order_enter_state(txn, o, S(AUTHORIZED), "vault: OK",
	    2000), 0);
	store_txn_abort(txn);
	twinroute__order__free_unpacked(o, NULL);
	assert_false(has_mail_job(f->s, id));
	o = load(f->s, id);
	assert_int_equal(o->state, S(RECEIVED));
	twinroute__order__free_unpacked(o, NULL);

	/* The mail is sent: AWAITING_CONFIRMATION has no job left. */
	assert_int_equal(move(f->s, id, S(AUTHORIZED), "vault: OK", 2000), 0);
	assert_true(has_mail_job(f->s, id));
	assert_int_equal(move(f->s, id, S(AWAITING_CONFIRMATION), "mail: sent",
	    2100), 0);
	assert_false(has_mail_job(f->s, id));
	assert_int_equal(move(f->s, id, S(EXPIRED), "timer", 2200), 0);
	assert_false(has_mail_job(f->s, id));
	/* A walk to the end of the happy path. */
	id = make_order(f->s, "100001");
	assert_int_equal(move(f->s, id, S(AUTHORIZED), "a", 1), 0);
	assert_int_equal(move(f->s, id, S(AWAITING_CONFIRMATION), "b", 2), 0);
	assert_int_equal(move(f->s, id, S(CONFIRMED), "c", 3), 0);
	assert_int_equal(move(f->s, id, S(DISPATCHED), "d", 4), 0);
	assert_int_equal(move(f->s, id, S(CANCELLED), "e", 5),
	    -ORDER_EFORBIDDEN);
	assert_int_equal(move(f->s, id, S(ACCEPTED), "f", 6), 0);
	assert_int_equal(move(f->s, id, S(FULFILLED), "g", 7), 0);
	assert_int_equal(move(f->s, id, S(CHARGED), "h", 8), 0);
	o = load(f->s, id);
	assert_int_equal(o->n_history, 8);
	twinroute__order__free_unpacked(o, NULL);
}

static bool
has_key(struct store *s, enum store_db db, const void *key, size_t len)
{
	struct store_txn *txn;
	const void *val;
	size_t vlen;
	int r;

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	r = store_get(txn, db, key, len, &val, &vlen);
	store_txn_abort(txn);
	assert_true(r == 0 || r == -ENOENT);
	return r == 0;
}

/* What the mailer writes when a confirmation is sent. */
static void
put_confirmation(struct store *s, uint64_t id, const uint8_t hash[32],
    uint64_t expires)
{
	Twinroute__Store__Confirmation c = TWINROUTE__STORE__CONFIRMATION__INIT;
	uint8_t key[8], xkey[16], buf[128];
	struct store_txn *txn;
	size_t len;

	for (int i = 0; i < 8; i++) {
		key[i] = (uint8_t)(id >> (56 - 8 * i));
		xkey[i] = (uint8_t)(expires >> (56 - 8 * i));
		xkey[8 + i] = key[i];
	}
	c.token_hash.data = unconst(hash);
	c.token_hash.len = 32;
	c.expires_unix_ms = expires;
	len = twinroute__store__confirmation__get_packed_size(&c);
	twinroute__store__confirmation__pack(&c, buf);
	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_CONFIRMATIONS, key, 8, buf,
	    len), 0);
	assert_int_equal(store_put(txn, STORE_DB_TOKENS, hash, 32, "t", 1), 0);
	assert_int_equal(store_put(txn, STORE_DB_CONFIRM_EXPIRY, xkey, 16, "",
	    0), 0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
}

static void
test_confirmation_outboxes(void **state)
{
	struct store_fixture *f = *state;
	uint64_t id = make_order(f->s, "100001"), id2;
	uint8_t hash[32], key[8], xkey[16], pkey[ORDER_DISPATCH_KEY_MAX];
	size_t pklen;

	memset(hash, 0xab, sizeof(hash));
	for (int i = 0; i < 8; i++) {
		key[i] = (uint8_t)(id >> (56 - 8 * i));
		xkey[i] = (uint8_t)((uint64_t)5000 >> (56 - 8 * i));
		xkey[8 + i] = key[i];
	}
	assert_int_equal(move(f->s, id, S(AUTHORIZED), "vault: OK", 2000), 0);
	assert_int_equal(move(f->s, id, S(AWAITING_CONFIRMATION), "mail: sent",
	    2100), 0);
	put_confirmation(f->s, id, hash, 5000);
	assert_true(has_key(f->s, STORE_DB_TOKENS, hash, 32));
	/* Confirming ends the token and queues both dispatch jobs. */
	pklen = order_dispatch_key("prov-1", id, pkey);
	assert_int_equal(pklen, 7 + 8);
	assert_memory_equal(pkey, "prov-1\0", 7);
	assert_false(has_key(f->s, STORE_DB_OUTBOX_PROVIDER, pkey, pklen));
	assert_int_equal(move(f->s, id, S(CONFIRMED), "mail: reply", 3000), 0);
	assert_false(has_key(f->s, STORE_DB_TOKENS, hash, 32));
	assert_false(has_key(f->s, STORE_DB_CONFIRMATIONS, key, 8));
	assert_false(has_key(f->s, STORE_DB_CONFIRM_EXPIRY, xkey, 16));
	assert_true(has_key(f->s, STORE_DB_OUTBOX_PROVIDER, pkey, pklen));
	assert_true(has_key(f->s, STORE_DB_OUTBOX_FAX, key, 8));

	/* Expiry ends it too, and queues nothing. */
	id2 = make_order(f->s, "100001");
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(id2 >> (56 - 8 * i));
	assert_int_equal(move(f->s, id2, S(AUTHORIZED), "vault: OK", 2000), 0);
	assert_int_equal(move(f->s, id2, S(AWAITING_CONFIRMATION), "sent",
	    2100), 0);
	hash[0] = 0xcd;
	put_confirmation(f->s, id2, hash, 6000);
	assert_int_equal(move(f->s, id2, S(EXPIRED), "deadline", 6000), 0);
	assert_false(has_key(f->s, STORE_DB_TOKENS, hash, 32));
	assert_false(has_key(f->s, STORE_DB_CONFIRMATIONS, key, 8));
	pklen = order_dispatch_key("prov-1", id2, pkey);
	assert_false(has_key(f->s, STORE_DB_OUTBOX_PROVIDER, pkey, pklen));
	assert_false(has_key(f->s, STORE_DB_OUTBOX_FAX, key, 8));
}

#define FX(x) TWINROUTE__FAX_STATE__FAX_##x

/* Move order id's fax track to `to`; the function's result. */
static int
fax_move(struct store *s, uint64_t id, fax_state to, uint64_t now)
{
	struct store_txn *txn;
	Order *o;
	int r;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(order_get(txn, id, &o), 0);
	r = order_fax_enter(txn, o, to, "fax: test", now);
	if (r == 0)
		assert_int_equal(store_txn_commit(txn, NULL), 0);
	else
		store_txn_abort(txn);
	twinroute__order__free_unpacked(o, NULL);
	return r;
}

static void
confirm_order(struct store *s, uint64_t id)
{
	assert_int_equal(move(s, id, S(AUTHORIZED), "vault: OK", 2000), 0);
	assert_int_equal(move(s, id, S(AWAITING_CONFIRMATION), "sent", 2100),
	    0);
	assert_int_equal(move(s, id, S(CONFIRMED), "reply", 3000), 0);
}

static void
test_fax_track(void **state)
{
	struct store_fixture *f = *state;
	uint64_t id = make_order(f->s, "100001"), id2;
	Twinroute__Store__DispatchJob *job = NULL;
	struct store_txn *txn;
	uint8_t key[8];
	Order *o;

	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(id >> (56 - 8 * i));
	/* No fax before the confirmation; the table forbids a start. */
	o = load(f->s, id);
	assert_int_equal(o->fax_state, FX(NONE));
	twinroute__order__free_unpacked(o, NULL);
	assert_int_equal(fax_move(f->s, id, FX(DIALING), 1500),
	    -ORDER_EFORBIDDEN);
	confirm_order(f->s, id);
	o = load(f->s, id);
	assert_int_equal(o->fax_state, FX(QUEUED));
	twinroute__order__free_unpacked(o, NULL);

	/* QUEUED -> DIALING -> SENDING -> QUEUED (a retry keeps the job
	 * and its counters) -> ... -> SENT (the job goes). */
	assert_int_equal(fax_move(f->s, id, FX(SENT), 3100),
	    -ORDER_EFORBIDDEN);
	assert_int_equal(fax_move(f->s, id, FX(DIALING), 3100), 0);
	assert_int_equal(fax_move(f->s, id, FX(SENDING), 3200), 0);
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	assert_int_equal(order_fax_job_get(txn, id, &job), 0);
	job->dials = 1;
	assert_int_equal(order_fax_job_put(txn, job), 0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	twinroute__store__dispatch_job__free_unpacked(job, NULL);
	assert_int_equal(fax_move(f->s, id, FX(QUEUED), 3300), 0);
	assert_int_equal(store_txn_begin(f->s, STORE_RDONLY, &txn), 0);
	assert_int_equal(order_fax_job_get(txn, id, &job), 0);
	store_txn_abort(txn);
	assert_int_equal(job->dials, 1);
	twinroute__store__dispatch_job__free_unpacked(job, NULL);
	assert_int_equal(fax_move(f->s, id, FX(DIALING), 3400), 0);
	assert_int_equal(fax_move(f->s, id, FX(SENDING), 3500), 0);
	assert_int_equal(fax_move(f->s, id, FX(SENT), 3600), 0);
	assert_false(has_key(f->s, STORE_DB_OUTBOX_FAX, key, 8));
	assert_int_equal(fax_move(f->s, id, FX(QUEUED), 3700),
	    -ORDER_EFORBIDDEN);
	o = load(f->s, id);
	assert_int_equal(o->fax_state, FX(SENT));
	/* The history records the fax steps beside the main state. */
	assert_int_equal(o->history[o->n_history - 1]->fax, FX(SENT));
	assert_int_equal(o->history[o->n_history - 1]->state, S(CONFIRMED));
	twinroute__order__free_unpacked(o, NULL);

	/* FAILED drops the job; the admin's retry makes a fresh one. */
	id2 = make_order(f->s, "100001");
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(id2 >> (56 - 8 * i));
	confirm_order(f->s, id2);
	assert_int_equal(fax_move(f->s, id2, FX(DIALING), 4000), 0);
	assert_int_equal(fax_move(f->s, id2, FX(FAILED), 4100), 0);
	assert_false(has_key(f->s, STORE_DB_OUTBOX_FAX, key, 8));
	assert_int_equal(fax_move(f->s, id2, FX(QUEUED), 4200), 0);
	assert_true(has_key(f->s, STORE_DB_OUTBOX_FAX, key, 8));

	/* Cancelling the order cancels a job only queued. */
	assert_int_equal(move(f->s, id2, S(CANCELLED), "member: cancel", 4300),
	    0);
	o = load(f->s, id2);
	assert_int_equal(o->fax_state, FX(CANCELLED));
	twinroute__order__free_unpacked(o, NULL);
	assert_false(has_key(f->s, STORE_DB_OUTBOX_FAX, key, 8));
	assert_string_equal(order_strfax(FX(SENDING)), "FAX_SENDING");
}

static void
test_request_hash(void **state)
{
	uint8_t h1[ORDER_HASH_SIZE], h2[ORDER_HASH_SIZE], h3[ORDER_HASH_SIZE];

	(void)state;
	order_request_hash("svc-1", 2, "note", h1);
	order_request_hash("svc-1", 2, "note", h2);
	assert_memory_equal(h1, h2, sizeof(h1));
	order_request_hash("svc-1", 3, "note", h2);
	assert_memory_not_equal(h1, h2, sizeof(h1));
	order_request_hash("svc-1", 2, "note!", h3);
	assert_memory_not_equal(h1, h3, sizeof(h1));
	/* Field boundaries count: "ab"+"c" is not "a"+"bc". */
	order_request_hash("svc-1a", 2, "", h2);
	order_request_hash("svc-1", 2, "a", h3);
	assert_memory_not_equal(h2, h3, sizeof(h2));

}

static void
test_ids_and_listing(void **state)
{
	struct store_fixture *f = *state;
	uint64_t ids[8], a, b, c, d, e, lag = 9;
	size_t n = 0;
	bool more = false;
	struct store_txn *txn;

	a = make_order(f->s, "100001");
	b = make_order(f->s, "100002");
	c = make_order(f->s, "100001");
	assert_int_equal(a, 1);
	assert_true(b > a && c > b);
	/* Ids survive a reopen. */
	store_close(f->s);
	f->s = store_fixture_open(f);
	d = make_order(f->s, "100001");
	e = make_order(f->s, "1000010");  /* a longer number, same prefix */
	assert_true(d > c && e > d);

	/* The index trails the orders until it catches up. */
	assert_int_equal(store_txn_begin(f->s, STORE_RDONLY, &txn), 0);
	assert_int_equal(order_list_member(txn, "100001", 0, ids, 8, &n, &more),
	    0);
	assert_int_equal(n, 0);
	assert_int_equal(order_member_index_lag(txn, &lag), 0);
	assert_int_equal(lag, 5);
	store_txn_abort(txn);
	assert_int_equal(order_member_index_update(f->s, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(order_member_index_update(f->s, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_txn_begin(f->s, STORE_RDONLY, &txn), 0);
	assert_int_equal(order_member_index_lag(txn, &lag), 0);
	assert_int_equal(lag, 0);
	store_txn_abort(txn);

	assert_int_equal(store_txn_begin(f->s, STORE_RDONLY, &txn), 0);
	assert_int_equal(order_list_member(txn, "100001", 0, ids, 8, &n, &more),
	    0);
	assert_int_equal(n, 3);
	assert_false(more);
	assert_int_equal(ids[0], d);
	assert_int_equal(ids[1], c);
	assert_int_equal(ids[2], a);
	/* Pages: two, then the rest below the last id. */
	assert_int_equal(order_list_member(txn, "100001", 0, ids, 2, &n, &more),
	    0);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_int_equal(order_list_member(txn, "100001", ids[1], ids, 2, &n,
	    &more), 0);
	assert_int_equal(n, 1);
	assert_false(more);
	assert_int_equal(ids[0], a);
	assert_int_equal(order_list_member(txn, "100002", 0, ids, 8, &n, &more),
	    0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], b);
	assert_int_equal(order_list_member(txn, "999999", 0, ids, 8, &n, &more),
	    0);
	assert_int_equal(n, 0);
	store_txn_abort(txn);

	/* More than one chunk of the catch-up (1024 orders) at once; the
	 * next catches up only what came after. */
	for (int i = 0; i < 2500; i++)
		make_order(f->s, i % 2 ? "200001" : "200002");
	assert_int_equal(order_member_index_update(f->s, &n), 0);
	assert_int_equal(n, 2500);
	c = make_order(f->s, "200001");
	assert_int_equal(order_member_index_update(f->s, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_txn_begin(f->s, STORE_RDONLY, &txn), 0);
	assert_int_equal(order_list_member(txn, "200001", 0, ids, 8, &n, &more),
	    0);
	assert_int_equal(n, 8);
	assert_true(more);
	assert_int_equal(ids[0], c);
	assert_int_equal(ids[1], c - 1);
	assert_int_equal(store_db_entries(txn, STORE_DB_ORDERS_BY_MEMBER,
	    &a), 0);
	assert_int_equal(a, 5 + 2500 + 1);
	store_txn_abort(txn);
}

/* A store without the mark (new, or of schema 1, which wrote the index
 * with each order) indexes every order; what was indexed stays once. */
static void
test_index_mark_missing(void **state)
{
	struct store_fixture *f = *state;
	struct store_txn *txn;
	uint64_t a, ids[4], entries = 0;
	size_t n = 0;
	bool more = true;

	a = make_order(f->s, "100001");
	make_order(f->s, "100001");
	assert_int_equal(order_member_index_update(f->s, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	assert_int_equal(store_del(txn, STORE_DB_META, "member_index_through",
	    20), 0);
	assert_int_equal(order_member_index_catch_up(txn, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_db_entries(txn, STORE_DB_ORDERS_BY_MEMBER,
	    &entries), 0);
	assert_int_equal(entries, 2);
	/* With the mark at the first order, only the second is read. */
	assert_int_equal(order_indexed_set(txn, a), 0);
	assert_int_equal(order_member_index_catch_up(txn, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(order_list_member(txn, "100001", 0, ids, 4, &n,
	    &more), 0);
	assert_int_equal(n, 2);
	assert_false(more);
	assert_int_equal(ids[1], a);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
}

/* ---- counts by state ------------------------------------------------- */

/* The META key the counts live under (order.c). */
#define COUNTS_KEY "order_counts"

static int
count_one(const Order *o, void *arg)
{
	struct order_counts *c = arg;

	c->state[o->state]++;
	c->fax[o->fax_state]++;
	return 0;
}

/* What a scan of every order says. */
static void
counts_scan(struct store *s, struct order_counts *ret)
{
	struct store_txn *txn;

	memset(ret, 0, sizeof(*ret));
	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(order_iter(txn, count_one, ret), 0);
	store_txn_abort(txn);
}

/* What the store keeps. */
static void
counts_stored(struct store *s, struct order_counts *ret)
{
	struct store_txn *txn;

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(order_counts_get(txn, ret), 0);
	store_txn_abort(txn);
}

static void
assert_counts_match_scan(struct store *s)
{
	struct order_counts kept, scan;

	counts_stored(s, &kept);
	counts_scan(s, &scan);
	assert_memory_equal(&kept, &scan, sizeof(kept));
}

static void
drop_counts(struct store *s)
{
	struct store_txn *txn;
	struct order_counts c;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_del(txn, STORE_DB_META, COUNTS_KEY,
	    sizeof(COUNTS_KEY) - 1), 0);
	assert_int_equal(order_counts_get(txn, &c), -ENOENT);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
}

static uint64_t
entries(struct store *s, enum store_db db)
{
	struct store_txn *txn;
	uint64_t n = 99;

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(store_db_entries(txn, db, &n), 0);
	store_txn_abort(txn);
	return n;
}

static void
test_counts(void **state)
{
	struct store_fixture *f = *state;
	struct order_counts c, before, zero = { 0 };
	struct store_latency commit, fsync;
	struct store_txn *txn;
	uint64_t a, b, cf, d, n;
	uint8_t wrong[(ORDER_N_STATES + ORDER_N_FAX) * 8] = { 0 };
	bool rebuilt = false;
	Order *o;

	/* A new store: counted at start (nothing), and only once. */
	assert_int_equal(order_counts_ensure(f->s, &rebuilt), 0);
	assert_true(rebuilt);
	counts_stored(f->s, &c);
	assert_memory_equal(&c, &zero, sizeof(c));
	assert_int_equal(order_counts_ensure(f->s, &rebuilt), 0);
	assert_false(rebuilt);

	/* The counts follow every transition, the fax track's too. */
	a = make_order(f->s, "100001");
	counts_stored(f->s, &c);
	assert_int_equal(c.state[S(RECEIVED)], 1);
	assert_int_equal(c.fax[FX(NONE)], 1);
	assert_int_equal(move(f->s, a, S(AUTHORIZED), "vault: OK", 2000), 0);
	b = make_order(f->s, "100002");
	assert_int_equal(move(f->s, b, S(DECLINED), "vault: NO_CARD", 2000),
	    0);
	cf = make_order(f->s, "100001");
	confirm_order(f->s, cf);
	assert_int_equal(fax_move(f->s, cf, FX(DIALING), 3100), 0);
	d = make_order(f->s, "100002");
	confirm_order(f->s, d);
	assert_int_equal(move(f->s, d, S(CANCELLED), "member: cancel", 3200),
	    0);
	/* Refused transitions change nothing. */
	assert_int_equal(move(f->s, b, S(AUTHORIZED), "x", 3300),
	    -ORDER_EFORBIDDEN);
	assert_int_equal(fax_move(f->s, a, FX(DIALING), 3300),
	    -ORDER_EFORBIDDEN);
	counts_stored(f->s, &c);
	assert_int_equal(c.state[S(STATE_UNSPECIFIED)], 0);
	assert_int_equal(c.state[S(RECEIVED)], 0);
	assert_int_equal(c.state[S(AUTHORIZED)], 1);
	assert_int_equal(c.state[S(DECLINED)], 1);
	assert_int_equal(c.state[S(CONFIRMED)], 1);
	assert_int_equal(c.state[S(CANCELLED)], 1);
	assert_int_equal(c.state[S(AWAITING_CONFIRMATION)], 0);
	assert_int_equal(c.fax[FX(NONE)], 2);
	assert_int_equal(c.fax[FX(QUEUED)], 0);
	assert_int_equal(c.fax[FX(DIALING)], 1);
	assert_int_equal(c.fax[FX(CANCELLED)], 1);
	assert_counts_match_scan(f->s);

	/* Aborted transactions leave them as they were, though the
	 * transaction itself saw its change. */
	before = c;
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	assert_int_equal(order_get(txn, a, &o), 0);
	assert_int_equal(order_enter_state(txn, o, S(AWAITING_CONFIRMATION),
	    "mail: sent", 4000), 0);
	twinroute__order__free_unpacked(o, NULL);
	assert_int_equal(order_get(txn, cf, &o), 0);
	assert_int_equal(order_fax_enter(txn, o, FX(SENDING), "fax", 4000), 0);
	twinroute__order__free_unpacked(o, NULL);
	assert_int_equal(order_counts_get(txn, &c), 0);
	assert_int_equal(c.state[S(AWAITING_CONFIRMATION)], 1);
	assert_int_equal(c.fax[FX(SENDING)], 1);
	store_txn_abort(txn);
	counts_stored(f->s, &c);
	assert_memory_equal(&c, &before, sizeof(c));
	/* A creation that aborts is not counted either. */
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	{
		Order t = TWINROUTE__ORDER__INIT;

		assert_int_equal(order_next_id(txn, &t.id), 0);
		t.member = unconst("100003");
		t.service_id = unconst("svc-1");
		t.provider_id = unconst("prov-1");
		assert_int_equal(order_dup(&t, &o), 0);
	}
	assert_int_equal(order_enter_state(txn, o, S(RECEIVED), "order", 4100),
	    0);
	twinroute__order__free_unpacked(o, NULL);
	store_txn_abort(txn);
	counts_stored(f->s, &c);
	assert_memory_equal(&c, &before, sizeof(c));

	/* A store made before the counts were kept: the start-up count
	 * matches what the transitions kept, and a scan. */
	drop_counts(f->s);
	assert_int_equal(order_counts_ensure(f->s, &rebuilt), 0);
	assert_true(rebuilt);
	counts_stored(f->s, &c);
	assert_memory_equal(&c, &before, sizeof(c));
	/* Without the start-up count, the first transition counts. */
	drop_counts(f->s);
	assert_int_equal(move(f->s, a, S(AWAITING_CONFIRMATION), "sent", 4200),
	    0);
	assert_counts_match_scan(f->s);
	/* Counts found wrong (a count below zero to come) are made again. */
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_META, COUNTS_KEY,
	    sizeof(COUNTS_KEY) - 1, wrong, sizeof(wrong)), 0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	assert_int_equal(fax_move(f->s, cf, FX(SENDING), 4300), 0);
	assert_counts_match_scan(f->s);
	/* A value of another size (other states) is no counts at all. */
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_META, COUNTS_KEY,
	    sizeof(COUNTS_KEY) - 1, wrong, 8), 0);
	assert_int_equal(order_counts_get(txn, &c), -ENOENT);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	assert_int_equal(order_counts_ensure(f->s, &rebuilt), 0);
	assert_true(rebuilt);
	assert_counts_match_scan(f->s);

	/* They survive a reopen. */
	store_close(f->s);
	f->s = store_fixture_open(f);
	assert_int_equal(order_counts_ensure(f->s, &rebuilt), 0);
	assert_false(rebuilt);
	assert_counts_match_scan(f->s);
	counts_stored(f->s, &c);
	assert_int_equal(c.state[S(AWAITING_CONFIRMATION)], 1);
	assert_int_equal(c.fax[FX(SENDING)], 1);

	/* Outbox depths without a scan: cf's fax and provider jobs. */
	assert_int_equal(entries(f->s, STORE_DB_OUTBOX_FAX), 1);
	assert_int_equal(entries(f->s, STORE_DB_OUTBOX_PROVIDER), 2);
	assert_int_equal(entries(f->s, STORE_DB_OUTBOX_MAIL), 0);
	assert_int_equal(entries(f->s, STORE_DB_ORDERS), 4);

	/* Every commit since the reopen was timed; no sync thread ran. */
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_META, "x", 1, "y", 1), 0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	store_get_latency(f->s, &commit, &fsync);
	n = 0;
	for (size_t i = 0; i <= STORE_LATENCY_BUCKETS; i++) {
		n += commit.bucket[i];
		assert_int_equal(fsync.bucket[i], 0);
	}
	assert_true(n >= 1);
	assert_true(commit.sum_ns > 0);
	for (size_t i = 1; i < STORE_LATENCY_BUCKETS; i++)
		assert_true(store_latency_bounds_ns[i] >
		    store_latency_bounds_ns[i - 1]);
}

/* The ids order_received_ids() gives, checked against want[]. */
static void
assert_received(struct store *s, const uint64_t *want, size_t n_want,
    bool want_rebuilt)
{
	uint64_t *ids = NULL;
	size_t n = 99;
	bool rebuilt = !want_rebuilt;

	assert_int_equal(order_received_ids(s, &ids, &n, &rebuilt), 0);
	assert_int_equal(n, n_want);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], want[i]);
	assert_int_equal(rebuilt, want_rebuilt);
	free(ids);
}

static void
index_put(struct store *s, uint64_t id, bool del)
{
	struct store_txn *txn;
	uint8_t key[8];

	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(id >> (56 - 8 * i));
	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	if (del)
		assert_int_equal(store_del(txn, STORE_DB_ORDERS_RECEIVED, key,
		    sizeof(key)), 0);
	else
		assert_int_equal(store_put(txn, STORE_DB_ORDERS_RECEIVED, key,
		    sizeof(key), "", 0), 0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
}

/* The orders left RECEIVED are found through their index, which follows
 * every transition; an index that disagrees is made again. */
static void
test_received_index(void **state)
{
	struct store_fixture *f = *state;
	struct store_txn *txn;
	uint64_t a, b, c, d;
	bool rebuilt;
	Order *o;

	assert_int_equal(order_counts_ensure(f->s, &rebuilt), 0);
	assert_received(f->s, NULL, 0, false);
	a = make_order(f->s, "100001");
	b = make_order(f->s, "100002");
	c = make_order(f->s, "100001");
	d = make_order(f->s, "100003");
	assert_int_equal(entries(f->s, STORE_DB_ORDERS_RECEIVED), 4);
	{
		const uint64_t want[] = { a, b, c, d };
		assert_received(f->s, want, 4, false);
	}
	/* Leaving RECEIVED, whichever way, leaves the index. */
	assert_int_equal(move(f->s, a, S(AUTHORIZED), "vault: OK", 2000), 0);
	assert_int_equal(move(f->s, b, S(DECLINED), "vault: NO_CARD", 2000),
	    0);
	assert_int_equal(move(f->s, d, S(CANCELLED), "member: cancel", 2000),
	    0);
	{
		const uint64_t want[] = { c };
		assert_received(f->s, want, 1, false);
	}
	assert_int_equal(entries(f->s, STORE_DB_ORDERS_RECEIVED), 1);
	/* An aborted creation leaves nothing behind. */
	assert_int_equal(store_txn_begin(f->s, 0, &txn), 0);
	{
		Order t = TWINROUTE__ORDER__INIT;

		assert_int_equal(order_next_id(txn, &t.id), 0);
		t.member = unconst("100004");
		t.service_id = unconst("svc-1");
		t.provider_id = unconst("prov-1");
		assert_int_equal(order_dup(&t, &o), 0);
	}
	assert_int_equal(order_enter_state(txn, o, S(RECEIVED), "order", 2100),
	    0);
	twinroute__order__free_unpacked(o, NULL);
	store_txn_abort(txn);
	assert_int_equal(entries(f->s, STORE_DB_ORDERS_RECEIVED), 1);

	/* A store made before the index: c is RECEIVED, the index empty.
	 * The counts disagree, one scan makes it again, and only once. */
	index_put(f->s, c, true);
	{
		const uint64_t want[] = { c };
		assert_received(f->s, want, 1, true);
		assert_received(f->s, want, 1, false);
	}
	/* The order leaves RECEIVED with no entry to remove. */
	index_put(f->s, c, true);
	assert_int_equal(move(f->s, c, S(AUTHORIZED), "vault: OK", 2200), 0);
	assert_received(f->s, NULL, 0, false);
	/* An entry for an order no longer RECEIVED, while the count says
	 * one (another RECEIVED order has none): made again. */
	d = make_order(f->s, "100005");
	index_put(f->s, d, true);
	index_put(f->s, a, false);
	{
		const uint64_t want[] = { d };
		assert_received(f->s, want, 1, true);
		assert_received(f->s, want, 1, false);
	}
	assert_int_equal(entries(f->s, STORE_DB_ORDERS_RECEIVED), 1);
	/* It survives a reopen. */
	store_close(f->s);
	f->s = store_fixture_open(f);
	{
		const uint64_t want[] = { d };
		assert_received(f->s, want, 1, false);
	}
}

static void
test_checks(void **state)
{
	char big[ORDER_NOTE_MAX + 2];

	(void)state;
	assert_int_equal(order_check_note(""), 0);
	assert_int_equal(order_check_note("caf\xc3\xa9, 2 \xe2\x82\xac"), 0);
	assert_int_equal(order_check_note("\xc3"), -EINVAL);
	assert_int_equal(order_check_note("\xc0\xaf"), -EINVAL);
	assert_int_equal(order_check_note("\xed\xa0\x80"), -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(order_check_note(big), -EINVAL);
	big[ORDER_NOTE_MAX] = '\0';
	assert_int_equal(order_check_note(big), 0);
	assert_int_equal(order_check_idem_key("k-1"), 0);
	assert_int_equal(order_check_idem_key(""), -EINVAL);
	assert_int_equal(order_check_idem_key("tab\there"), -EINVAL);
	assert_int_equal(order_check_idem_key("\xc3\xa9"), -EINVAL);
	memset(big, 'k', 65);
	big[65] = '\0';
	assert_int_equal(order_check_idem_key(big), -EINVAL);
	big[64] = '\0';
	assert_int_equal(order_check_idem_key(big), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test_setup_teardown(test_history_and_outbox, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_outbox_same_txn, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_confirmation_outboxes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_fax_track, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_request_hash, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ids_and_listing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_index_mark_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_received_index, setup,
		    teardown),
		cmocka_unit_test(test_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
