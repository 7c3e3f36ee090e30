/* SPDX-License-Identifier: ISC */
/* order.c -- the order state machine: its one table, orders in the store */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/be64.h"
#include "common/errcode.h"
#include "common/log.h"
#include "common/macro.h"
#include "order/order.h"

#define S(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define F(x) TWINROUTE__FAX_STATE__FAX_##x
#define BIT(x) (1u << (x))

/* META key of the order id counter: 8 bytes big-endian, the next id. */
static const char order_next_id_key[] = "next_order_id";

/*
 * The transition table (DESIGN.md "The order state machine"): for each
 * state, the states it may move to. A state with none is terminal.
 * Cancel is allowed until DISPATCHED.
 */
static const uint32_t order_next[] = {
	[S(STATE_UNSPECIFIED)] = BIT(S(RECEIVED)),
	[S(RECEIVED)] = BIT(S(AUTHORIZED)) | BIT(S(DECLINED)) |
	    BIT(S(CANCELLED)),
	[S(AUTHORIZED)] = BIT(S(AWAITING_CONFIRMATION)) | BIT(S(CANCELLED)) |
	    BIT(S(CONFIRMATION_FAILED)) | BIT(S(EXPIRED)),
	[S(AWAITING_CONFIRMATION)] = BIT(S(CONFIRMED)) | BIT(S(EXPIRED)) |
	    BIT(S(CANCELLED)) | BIT(S(CONFIRMATION_FAILED)),
	[S(CONFIRMED)] = BIT(S(DISPATCHED)) | BIT(S(CANCELLED)),
	[S(DISPATCHED)] = BIT(S(ACCEPTED)) | BIT(S(REJECTED)),
	[S(ACCEPTED)] = BIT(S(FULFILLED)) | BIT(S(REJECTED)),
	[S(FULFILLED)] = BIT(S(CHARGED)),
	[S(REJECTED)] = 0,
	[S(DECLINED)] = 0,
	[S(EXPIRED)] = 0,
	[S(CANCELLED)] = 0,
	[S(CONFIRMATION_FAILED)] = 0,
	[S(CHARGED)] = 0,
};

const char *
order_strstate(order_state s)
{
#define CASE(x) case TWINROUTE__ORDER_STATE__ORDER_##x: return #x
	switch (s) {
	CASE(STATE_UNSPECIFIED);
	CASE(RECEIVED);
	CASE(AUTHORIZED);
	CASE(AWAITING_CONFIRMATION);
	CASE(CONFIRMED);
	CASE(DISPATCHED);
	CASE(ACCEPTED);
	CASE(FULFILLED);
	CASE(REJECTED);
	CASE(DECLINED);
	CASE(EXPIRED);
	CASE(CANCELLED);
	CASE(CONFIRMATION_FAILED);
	CASE(CHARGED);
	case _TWINROUTE__ORDER_STATE_IS_INT_SIZE:
		break;
	}
#undef CASE
	return "UNKNOWN";
}

static bool
order_state_valid(order_state s)
{
	return (unsigned)s < ELEMENTSOF(order_next);
}

bool
order_transition_allowed(order_state from, order_state to)
{
	if (!order_state_valid(from) || !order_state_valid(to))
		return false;
	return (order_next[from] & BIT(to)) != 0;
}

bool
order_state_terminal(order_state s)
{
	return order_state_valid(s) && order_next[s] == 0;
}

/* ---- keys ------------------------------------------------------------ */

/* member "\0" BE(UINT64_MAX - id): forward iteration is newest first. */
#define MEMBER_KEY_MAX (ORDER_MEMBER_MAX + 1 + 8)

static size_t
order_member_key(const char *member, uint64_t id, uint8_t *key)
{
	size_t len = strnlen(member, ORDER_MEMBER_MAX);

	memcpy(key, member, len);
	key[len] = '\0';
	be64_put(key + len + 1, UINT64_MAX - id);
	return len + 1 + 8;
}

/* ---- orders in the store ---------------------------------------------- */

/* A uint64 kept in META as 8 bytes big-endian: -ENOENT when missing. */
static int
meta_u64_get(struct store_txn *txn, const char *key, uint64_t *ret_v)
{
	const void *val;
	size_t len;
	int r;

	r = store_get(txn, STORE_DB_META, key, strlen(key), &val, &len);
	if (r == 0 && len != 8)
		return -EIO;
	if (r == 0)
		*ret_v = be64_get(val);
	return r;
}

static int
meta_u64_put(struct store_txn *txn, const char *key, uint64_t v)
{
	uint8_t buf[8];

	be64_put(buf, v);
	return store_put(txn, STORE_DB_META, key, strlen(key), buf,
	    sizeof(buf));
}

int
order_next_id(struct store_txn *txn, uint64_t *ret_id)
{
	uint64_t id = 1;
	int r;

	r = meta_u64_get(txn, order_next_id_key, &id);
	if (r < 0 && r != -ENOENT)
		return r;
	r = meta_u64_put(txn, order_next_id_key, id + 1);
	if (r < 0)
		return r;
	*ret_id = id;
	return 0;
}

int
order_get(struct store_txn *txn, uint64_t id, Order **ret_order)
{
	const void *val;
	uint8_t key[8];
	size_t len;
	Order *o;
	int r;

	be64_put(key, id);
	r = store_get(txn, STORE_DB_ORDERS, key, sizeof(key), &val, &len);
	if (r < 0)
		return r;
	o = twinroute__order__unpack(NULL, len, val);
	if (o == NULL)
		return -TR_EBADMSG;
	*ret_order = o;
	return 0;
}

int
order_put(struct store_txn *txn, const Order *o)
{
	_cleanup_free_ uint8_t *buf = NULL;
	uint8_t key[8];
	size_t len;

	len = twinroute__order__get_packed_size(o);
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	twinroute__order__pack(o, buf);
	be64_put(key, o->id);
	return store_put(txn, STORE_DB_ORDERS, key, sizeof(key), buf, len);
}

/* ---- the member index, kept behind the orders ---------------------------- */

static const char order_indexed_key[] = "member_index_through";

#define INDEX_CHUNK 1024

struct index_chunk {
	size_t max, n;              /* what to take; what was taken */
	uint64_t last;              /* the last id read */
	uint8_t (*keys)[MEMBER_KEY_MAX];
	uint8_t *lens;
};

static int
index_one(const void *key, size_t key_len, const void *val, size_t val_len,
    void *arg)
{
	struct index_chunk *ch = arg;
	Order *o;

	if (ch->n == ch->max)
		return 1;
	if (key_len != 8)
		return -TR_EBADMSG;
	o = twinroute__order__unpack(NULL, val_len, val);
	if (o == NULL)
		return -TR_EBADMSG;
	ch->last = be64_get(key);
	ch->lens[ch->n] = (uint8_t)order_member_key(o->member, ch->last,
	    ch->keys[ch->n]);
	ch->n++;
	twinroute__order__free_unpacked(o, NULL);
	return 0;
}

int
order_indexed_set(struct store_txn *txn, uint64_t id)
{
	return meta_u64_put(txn, order_indexed_key, id);
}

int
order_member_index_lag(struct store_txn *txn, uint64_t *ret_n)
{
	uint64_t next = 1, through = 0;
	int r;

	r = meta_u64_get(txn, order_next_id_key, &next);
	if (r == 0 || r == -ENOENT)
		r = meta_u64_get(txn, order_indexed_key, &through);
	if (r == -ENOENT)
		r = 0;
	if (r == 0)
		*ret_n = next - 1 > through ? next - 1 - through : 0;
	return r;
}

int
order_member_index_update(struct store *s, size_t *ret_n)
{
	struct store_txn *txn;
	uint64_t lag = 0;
	size_t n = 0;
	int r;

	if (ret_n)
		*ret_n = 0;
	/* What is committed is indexed: no write (which would commit the
	 * loop's batch early). */
	r = store_txn_begin(s, STORE_RDONLY, &txn);
	if (r < 0)
		return r;
	r = order_member_index_lag(txn, &lag);
	store_txn_abort(txn);
	if (r < 0 || lag == 0)
		return r;

	r = store_txn_begin(s, 0, &txn);
	if (r < 0)
		return r;
	r = order_member_index_catch_up(txn, &n);
	if (r < 0 || n == 0)
		store_txn_abort(txn);
	else
		r = store_txn_commit(txn, NULL);
	if (r == 0 && ret_n)
		*ret_n = n;
	return r;
}

int
order_member_index_catch_up(struct store_txn *txn, size_t *ret_n)
{
	struct index_chunk ch = { .max = INDEX_CHUNK };
	uint64_t through = 0;
	size_t total = 0;
	uint8_t from[8];
	int r;

	if (ret_n)
		*ret_n = 0;
	/* No mark: a new store, or one of schema 1, which indexed each
	 * order as it wrote it; indexing those again changes nothing. */
	r = meta_u64_get(txn, order_indexed_key, &through);
	if (r < 0 && r != -ENOENT)
		return r;
	r = 0;
	ch.keys = malloc(INDEX_CHUNK * sizeof(*ch.keys));
	ch.lens = malloc(INDEX_CHUNK);
	if (ch.keys == NULL || ch.lens == NULL)
		r = -ENOMEM;
	do {
		ch.n = 0;
		ch.last = through;
		be64_put(from, through + 1);
		if (r == 0)
			r = store_iter(txn, STORE_DB_ORDERS, from, sizeof(from),
			    index_one, &ch);
		/* Puts after the walk: no write under its cursor. */
		for (size_t i = 0; r == 0 && i < ch.n; i++)
			r = store_put(txn, STORE_DB_ORDERS_BY_MEMBER,
			    ch.keys[i], ch.lens[i], "", 0);
		total += ch.n;
		through = ch.last;
	} while (r == 0 && ch.n == ch.max);
	free(ch.keys);
	free(ch.lens);
	if (r == 0 && total > 0)
		r = order_indexed_set(txn, through);
	if (r == 0 && ret_n)
		*ret_n = total;
	return r;
}

int
order_dup(const Order *o, Order **ret_order)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	Order *copy;

	len = twinroute__order__get_packed_size(o);
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	twinroute__order__pack(o, buf);
	copy = twinroute__order__unpack(NULL, len, buf);
	if (copy == NULL)
		return -ENOMEM;
	*ret_order = copy;
	return 0;
}

int
order_mail_job_get(struct store_txn *txn, uint64_t id,
    Twinroute__Store__MailJob **ret_job)
{
	Twinroute__Store__MailJob *job;
	const void *val;
	uint8_t key[8];
	size_t len;
	int r;

	be64_put(key, id);
	r = store_get(txn, STORE_DB_OUTBOX_MAIL, key, sizeof(key), &val, &len);
	if (r < 0)
		return r;
	job = twinroute__store__mail_job__unpack(NULL, len, val);
	if (job == NULL)
		return -TR_EBADMSG;
	*ret_job = job;
	return 0;
}

int
order_set_str(char **field, const char *val)
{
	char *s = strdup(val);

	if (s == NULL)
		return -ENOMEM;
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = s;
	return 0;
}

/* ---- counts by state ---------------------------------------------------- */

/*
 * META key of the counts: ORDER_N_STATES, then ORDER_N_FAX counters, each
 * 8 bytes big-endian. A value of another length (written by a build that
 * knew other states) counts as none: the counts are made again.
 */
static const char order_counts_key[] = "order_counts";
#define ORDER_COUNTS_LEN ((ORDER_N_STATES + ORDER_N_FAX) * 8)

_Static_assert(ELEMENTSOF(order_next) == ORDER_N_STATES,
    "ORDER_N_STATES follows the transition table");

int
order_counts_get(struct store_txn *txn, struct order_counts *ret)
{
	const uint8_t *p;
	const void *val;
	size_t len;
	int r;

	r = store_get(txn, STORE_DB_META, order_counts_key,
	    sizeof(order_counts_key) - 1, &val, &len);
	if (r < 0)
		return r;
	if (len != ORDER_COUNTS_LEN)
		return -ENOENT;
	p = val;
	for (size_t i = 0; i < ORDER_N_STATES; i++, p += 8)
		ret->state[i] = be64_get(p);
	for (size_t i = 0; i < ORDER_N_FAX; i++, p += 8)
		ret->fax[i] = be64_get(p);
	return 0;
}

static int
order_counts_put(struct store_txn *txn, const struct order_counts *c)
{
	uint8_t buf[ORDER_COUNTS_LEN], *p = buf;

	for (size_t i = 0; i < ORDER_N_STATES; i++, p += 8)
		be64_put(p, c->state[i]);
	for (size_t i = 0; i < ORDER_N_FAX; i++, p += 8)
		be64_put(p, c->fax[i]);
	return store_put(txn, STORE_DB_META, order_counts_key,
	    sizeof(order_counts_key) - 1, buf, sizeof(buf));
}

static int
order_counts_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct order_counts *c = arg;
	Order *o;

	(void)key;
	(void)key_len;
	o = twinroute__order__unpack(NULL, val_len, val);
	if (o == NULL)
		return -TR_EBADMSG;
	if (o->state != S(STATE_UNSPECIFIED) &&
	    (unsigned)o->state < ORDER_N_STATES)
		c->state[o->state]++;
	if ((unsigned)o->fax_state < ORDER_N_FAX)
		c->fax[o->fax_state]++;
	twinroute__order__free_unpacked(o, NULL);
	return 0;
}

int
order_counts_rebuild(struct store_txn *txn, struct order_counts *ret)
{
	struct order_counts c = { 0 };
	int r;

	r = store_iter(txn, STORE_DB_ORDERS, NULL, 0, order_counts_one, &c);
	if (r == 0)
		r = order_counts_put(txn, &c);
	if (r < 0)
		return r;
	*ret = c;
	return 0;
}

int
order_counts_ensure(struct store *s, bool *ret_rebuilt)
{
	struct order_counts c;
	struct store_txn *txn;
	int r;

	r = store_txn_begin(s, STORE_RDONLY, &txn);
	if (r < 0)
		return r;
	r = order_counts_get(txn, &c);
	store_txn_abort(txn);
	if (r != -ENOENT) {
		if (r == 0 && ret_rebuilt)
			*ret_rebuilt = false;
		return r;
	}
	r = store_txn_begin(s, 0, &txn);
	if (r < 0)
		return r;
	r = order_counts_rebuild(txn, &c);
	if (r < 0) {
		store_txn_abort(txn);
		return r;
	}
	r = store_txn_commit(txn, NULL);
	if (r == 0 && ret_rebuilt)
		*ret_rebuilt = true;
	return r;
}

/*
 * An order moved from (state, fax) to (to, to_fax), or was created (then
 * from and from_fax are not counted). Runs before the order is written,
 * so a rebuild here counts the store as it was before the move. A count
 * that would go below zero means the stored counts are wrong (an older
 * build wrote orders meanwhile): they are made again.
 */
static int
order_counts_move(struct store_txn *txn, order_state from, fax_state from_fax,
    order_state to, fax_state to_fax, bool created)
{
	struct order_counts c;
	bool from_ok = !created && (unsigned)from < ORDER_N_STATES &&
	    from != S(STATE_UNSPECIFIED);
	bool from_fax_ok = !created && (unsigned)from_fax < ORDER_N_FAX;
	int r;

	if (!created && from == to && from_fax == to_fax)
		return 0;
	r = order_counts_get(txn, &c);
	if (r == 0 && ((from_ok && c.state[from] == 0) ||
	    (from_fax_ok && c.fax[from_fax] == 0)))
		r = -ENOENT;
	if (r == -ENOENT)
		r = order_counts_rebuild(txn, &c);
	if (r < 0)
		return r;
	if (from_ok && c.state[from] > 0)
		c.state[from]--;
	if (from_fax_ok && c.fax[from_fax] > 0)
		c.fax[from_fax]--;
	if ((unsigned)to < ORDER_N_STATES && to != S(STATE_UNSPECIFIED))
		c.state[to]++;
	if ((unsigned)to_fax < ORDER_N_FAX)
		c.fax[to_fax]++;
	return order_counts_put(txn, &c);
}

/* ---- the transition ---------------------------------------------------- */

static int
order_history_add(Order *o, order_state to, fax_state fax, const char *cause,
    uint64_t now_ms)
{
	Twinroute__OrderTransition *t, **h;

	t = malloc(sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	twinroute__order_transition__init(t);
	t->state = to;
	t->fax = fax;
	t->unix_ms = now_ms;
	t->cause = strndup(cause ? cause : "", ORDER_CAUSE_MAX);
	h = realloc(o->history, (o->n_history + 1) * sizeof(*h));
	if (t->cause == NULL || h == NULL) {
		if (h != NULL)
			o->history = h;
		free(t->cause);
		free(t);
		return -ENOMEM;
	}
	o->history = h;
	o->history[o->n_history++] = t;
	return 0;
}

int
order_confirmation_drop(struct store_txn *txn, uint64_t id)
{
	Twinroute__Store__Confirmation *c;
	uint8_t key[8], xkey[16];
	const void *val;
	size_t len;
	int r;

	be64_put(key, id);
	r = store_get(txn, STORE_DB_CONFIRMATIONS, key, sizeof(key), &val,
	    &len);
	if (r < 0)
		return r;
	c = twinroute__store__confirmation__unpack(NULL, len, val);
	if (!c)
		return -EINVAL;
	r = 0;
	if (c->token_hash.len == ORDER_HASH_SIZE) {
		r = store_get(txn, STORE_DB_TOKENS, c->token_hash.data,
		    c->token_hash.len, &val, &len);
		if (r == 0)
			r = store_del(txn, STORE_DB_TOKENS, c->token_hash.data,
			    c->token_hash.len);
		if (r == -ENOENT)
			r = 0;
	}
	be64_put(xkey, c->expires_unix_ms);
	be64_put(xkey + 8, id);
	if (r == 0) {
		r = store_get(txn, STORE_DB_CONFIRM_EXPIRY, xkey, sizeof(xkey),
		    &val, &len);
		if (r == 0)
			r = store_del(txn, STORE_DB_CONFIRM_EXPIRY, xkey,
			    sizeof(xkey));
		if (r == -ENOENT)
			r = 0;
	}
	twinroute__store__confirmation__free_unpacked(c, NULL);
	if (r == 0)
		r = store_del(txn, STORE_DB_CONFIRMATIONS, key, sizeof(key));
	return r;
}

size_t
order_dispatch_key(const char *provider_id, uint64_t id,
    uint8_t out[ORDER_DISPATCH_KEY_MAX])
{
	size_t n = strnlen(provider_id, ORDER_DISPATCH_KEY_MAX - 9);

	memcpy(out, provider_id, n);
	out[n] = '\0';
	be64_put(out + n + 1, id);
	return n + 9;
}

/* Queue a DispatchJob for o in db: outbox_provider (key: provider and
 * order id) or outbox_fax (key: order id). */
static int
order_dispatch_job(struct store_txn *txn, enum store_db db, const Order *o,
    uint64_t now_ms)
{
	Twinroute__Store__DispatchJob job = TWINROUTE__STORE__DISPATCH_JOB__INIT;
	uint8_t key[ORDER_DISPATCH_KEY_MAX], buf[128];
	size_t len, klen;

	if (db == STORE_DB_OUTBOX_PROVIDER) {
		klen = order_dispatch_key(o->provider_id, o->id, key);
	} else {
		be64_put(key, o->id);
		klen = 8;
	}
	job.order_id = o->id;
	job.provider_id = o->provider_id;
	job.created_unix_ms = now_ms;
	len = twinroute__store__dispatch_job__get_packed_size(&job);
	if (len > sizeof(buf))
		return -EINVAL;
	twinroute__store__dispatch_job__pack(&job, buf);
	return store_put(txn, db, key, klen, buf, len);
}

/*
 * The outbox entries entering `to` from `from` creates or ends: a mail
 * job while AUTHORIZED (and after a resend while AWAITING_CONFIRMATION);
 * the confirmation and its token while AWAITING_CONFIRMATION; the
 * provider and fax dispatch jobs from CONFIRMED on.
 */
static int
order_outbox(struct store_txn *txn, const Order *o, order_state from,
    order_state to, uint64_t now_ms)
{
	Twinroute__Store__MailJob job = TWINROUTE__STORE__MAIL_JOB__INIT;
	uint8_t key[8], buf[128];
	const void *val;
	size_t len;
	int r;

	be64_put(key, o->id);
	if (from == S(AUTHORIZED) || from == S(AWAITING_CONFIRMATION)) {
		r = store_get(txn, STORE_DB_OUTBOX_MAIL, key, sizeof(key), &val,
		    &len);
		if (r == 0)
			r = store_del(txn, STORE_DB_OUTBOX_MAIL, key,
			    sizeof(key));
		if (r < 0 && r != -ENOENT)
			return r;
	}
	if (from == S(AWAITING_CONFIRMATION)) {
		r = order_confirmation_drop(txn, o->id);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	if (to == S(CONFIRMED)) {
		r = order_dispatch_job(txn, STORE_DB_OUTBOX_PROVIDER, o, now_ms);
		if (r == 0)
			r = order_dispatch_job(txn, STORE_DB_OUTBOX_FAX, o,
			    now_ms);
		return r;
	}
	if ((to == S(CANCELLED) || to == S(REJECTED)) &&
	    o->fax_state == F(CANCELLED)) {
		r = store_del(txn, STORE_DB_OUTBOX_FAX, key, sizeof(key));
		return r == -ENOENT ? 0 : r;
	}
	if (to != S(AUTHORIZED))
		return 0;
	job.order_id = o->id;
	job.member = o->member;
	job.created_unix_ms = now_ms;
	len = twinroute__store__mail_job__get_packed_size(&job);
	if (len > sizeof(buf))
		return -EINVAL;
	twinroute__store__mail_job__pack(&job, buf);
	return store_put(txn, STORE_DB_OUTBOX_MAIL, key, sizeof(key), buf, len);
}

/*
 * The orders_received index: an order is in it while RECEIVED, so the
 * start finds the orders a crash left waiting for the vault without a
 * scan of every order.
 */
static int
order_received_mark(struct store_txn *txn, uint64_t id, order_state from,
    order_state to)
{
	const void *val;
	uint8_t key[8];
	size_t len;
	int r;

	if (from == to)
		return 0;
	be64_put(key, id);
	if (to == S(RECEIVED))
		return store_put(txn, STORE_DB_ORDERS_RECEIVED, key,
		    sizeof(key), "", 0);
	if (from != S(RECEIVED))
		return 0;
	/* A store an older build wrote may lack the entry. */
	r = store_get(txn, STORE_DB_ORDERS_RECEIVED, key, sizeof(key), &val,
	    &len);
	if (r == 0)
		r = store_del(txn, STORE_DB_ORDERS_RECEIVED, key, sizeof(key));
	return r == -ENOENT ? 0 : r;
}

int
order_enter_state(struct store_txn *txn, Order *o, order_state to,
    const char *cause, uint64_t now_ms)
{
	order_state from = o->state;
	fax_state from_fax = o->fax_state;
	int r;

	if (!order_transition_allowed(from, to))
		return -ORDER_EFORBIDDEN;
	r = order_history_add(o, to, o->fax_state, cause, now_ms);
	if (r < 0)
		return r;
	/* The card route starts with the confirmation, and stops with the
	 * order if no call has begun yet. */
	if (to == S(CONFIRMED))
		o->fax_state = F(QUEUED);
	else if ((to == S(CANCELLED) || to == S(REJECTED)) &&
	    o->fax_state == F(QUEUED))
		o->fax_state = F(CANCELLED);
	o->state = to;
	o->updated_unix_ms = now_ms;
	if (from == S(STATE_UNSPECIFIED))
		o->created_unix_ms = now_ms;
	r = order_counts_move(txn, from, from_fax, to, o->fax_state,
	    from == S(STATE_UNSPECIFIED));
	if (r == 0)
		r = order_put(txn, o);
	if (r == 0)
		r = order_received_mark(txn, o->id, from, to);
	if (r == 0)
		r = order_outbox(txn, o, from, to, now_ms);
	if (r < 0)
		return r;
	log_info("%016" PRIx64 " order state %s -> %s cause=%s", o->id,
	    order_strstate(from), order_strstate(to), cause ? cause : "");
	return 0;
}

/* ---- the card route ---------------------------------------------------- */

/*
 * The fax track's table. QUEUED is entered by the order's confirmation
 * (order_enter_state), by a retry and by the admin's retry of a FAILED
 * job; SENT, FAILED and CANCELLED end the job.
 */
static const uint32_t order_fax_next[] = {
	[F(NONE)] = BIT(F(QUEUED)),
	[F(QUEUED)] = BIT(F(DIALING)) | BIT(F(FAILED)) | BIT(F(CANCELLED)),
	[F(DIALING)] = BIT(F(SENDING)) | BIT(F(QUEUED)) | BIT(F(FAILED)) |
	    BIT(F(CANCELLED)),
	[F(SENDING)] = BIT(F(SENT)) | BIT(F(QUEUED)) | BIT(F(FAILED)),
	[F(SENT)] = 0,
	[F(FAILED)] = BIT(F(QUEUED)),
	[F(CANCELLED)] = 0,
};

_Static_assert(ELEMENTSOF(order_fax_next) == ORDER_N_FAX,
    "ORDER_N_FAX follows the fax table");

const char *
order_strfax(fax_state s)
{
#define CASE(x) case TWINROUTE__FAX_STATE__FAX_##x: return "FAX_" #x
	switch (s) {
	CASE(NONE);
	CASE(QUEUED);
	CASE(DIALING);
	CASE(SENDING);
	CASE(SENT);
	CASE(FAILED);
	CASE(CANCELLED);
	case _TWINROUTE__FAX_STATE_IS_INT_SIZE:
		break;
	}
#undef CASE
	return "FAX_UNKNOWN";
}

bool
order_fax_allowed(fax_state from, fax_state to)
{
	if ((unsigned)from >= ELEMENTSOF(order_fax_next) ||
	    (unsigned)to >= ELEMENTSOF(order_fax_next))
		return false;
	return (order_fax_next[from] & BIT(to)) != 0;
}

int
order_fax_job_get(struct store_txn *txn, uint64_t id,
    Twinroute__Store__DispatchJob **ret_job)
{
	Twinroute__Store__DispatchJob *job;
	const void *val;
	uint8_t key[8];
	size_t len;
	int r;

	be64_put(key, id);
	r = store_get(txn, STORE_DB_OUTBOX_FAX, key, sizeof(key), &val, &len);
	if (r < 0)
		return r;
	job = twinroute__store__dispatch_job__unpack(NULL, len, val);
	if (job == NULL)
		return -TR_EBADMSG;
	*ret_job = job;
	return 0;
}

int
order_fax_job_put(struct store_txn *txn,
    const Twinroute__Store__DispatchJob *job)
{
	uint8_t key[8], buf[512];
	size_t len;

	len = twinroute__store__dispatch_job__get_packed_size(job);
	if (len > sizeof(buf))
		return -EINVAL;
	twinroute__store__dispatch_job__pack(job, buf);
	be64_put(key, job->order_id);
	return store_put(txn, STORE_DB_OUTBOX_FAX, key, sizeof(key), buf, len);
}

int
order_fax_enter(struct store_txn *txn, Order *o, fax_state to,
    const char *cause, uint64_t now_ms)
{
	fax_state from = o->fax_state;
	uint8_t key[8];
	int r;

	if (!order_fax_allowed(from, to))
		return -ORDER_EFORBIDDEN;
	r = order_history_add(o, o->state, to, cause, now_ms);
	if (r < 0)
		return r;
	o->fax_state = to;
	o->updated_unix_ms = now_ms;
	r = order_counts_move(txn, o->state, from, o->state, to, false);
	if (r == 0)
		r = order_put(txn, o);
	if (r < 0)
		return r;
	be64_put(key, o->id);
	if (to == F(SENT) || to == F(FAILED) || to == F(CANCELLED)) {
		r = store_del(txn, STORE_DB_OUTBOX_FAX, key, sizeof(key));
		if (r < 0 && r != -ENOENT)
			return r;
	} else if (to == F(QUEUED) && (from == F(FAILED) ||
	    from == F(NONE))) {
		/* A new job: the policy's counters start again. */
		r = order_dispatch_job(txn, STORE_DB_OUTBOX_FAX, o, now_ms);
		if (r < 0)
			return r;
	}
	log_info("%016" PRIx64 " order fax %s -> %s cause=%s", o->id,
	    order_strfax(from), order_strfax(to), cause ? cause : "");
	return 0;
}

/* ---- orders left RECEIVED ------------------------------------------- */

struct received_scan {
	uint64_t *ids;
	size_t n, cap;
	struct store_txn *txn;
	bool stale;      /* the index names an order not RECEIVED */
};

static int
received_add(struct received_scan *sc, uint64_t id)
{
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? 2 * sc->cap : 16;
		uint64_t *v = reallocarray(sc->ids, cap, sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		sc->ids = v;
		sc->cap = cap;
	}
	sc->ids[sc->n++] = id;
	return 0;
}

static int
received_index_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct received_scan *sc = arg;
	uint64_t id;
	Order *o;
	int r;

	(void)val;
	(void)val_len;
	if (key_len != 8) {
		sc->stale = true;
		return 1;
	}
	id = be64_get(key);
	r = order_get(sc->txn, id, &o);
	if (r == -ENOENT) {
		sc->stale = true;
		return 1;
	}
	if (r < 0)
		return r;
	if (o->state != S(RECEIVED))
		sc->stale = true;
	twinroute__order__free_unpacked(o, NULL);
	return sc->stale ? 1 : received_add(sc, id);
}

/* The scan that makes the index again: every order's state. */
static int
received_scan_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct received_scan *sc = arg;
	Order *o;
	int r = 0;

	if (key_len != 8)
		return 0;
	o = twinroute__order__unpack(NULL, val_len, val);
	if (o == NULL)
		return -TR_EBADMSG;
	if (o->state == S(RECEIVED))
		r = received_add(sc, be64_get(key));
	twinroute__order__free_unpacked(o, NULL);
	return r;
}

static int
received_key_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	(void)val;
	(void)val_len;
	return key_len == 8 ? received_add(arg, be64_get(key)) : 0;
}

/* Scan every order and write the index anew, in a transaction of its
 * own; sc gets the RECEIVED ids. */
static int
order_received_rebuild(struct store *s, struct received_scan *sc)
{
	struct received_scan old = { 0 };
	struct store_txn *txn;
	uint8_t key[8];
	int r;

	r = store_txn_begin(s, 0, &txn);
	if (r < 0)
		return r;
	r = store_iter(txn, STORE_DB_ORDERS_RECEIVED, NULL, 0,
	    received_key_one, &old);
	for (size_t i = 0; r == 0 && i < old.n; i++) {
		be64_put(key, old.ids[i]);
		r = store_del(txn, STORE_DB_ORDERS_RECEIVED, key, sizeof(key));
	}
	free(old.ids);
	sc->n = 0;
	if (r == 0)
		r = store_iter(txn, STORE_DB_ORDERS, NULL, 0, received_scan_one,
		    sc);
	for (size_t i = 0; r == 0 && i < sc->n; i++) {
		be64_put(key, sc->ids[i]);
		r = store_put(txn, STORE_DB_ORDERS_RECEIVED, key, sizeof(key),
		    "", 0);
	}
	if (r < 0) {
		store_txn_abort(txn);
		return r;
	}
	return store_txn_commit(txn, NULL);
}

int
order_received_ids(struct store *s, uint64_t **ret_ids, size_t *ret_n,
    bool *ret_rebuilt)
{
	struct received_scan sc = { 0 };
	struct order_counts c;
	struct store_txn *txn;
	uint64_t entries = 0;
	bool rebuild;
	int r;

	r = store_txn_begin(s, STORE_RDONLY, &txn);
	if (r < 0)
		return r;
	sc.txn = txn;
	r = order_counts_get(txn, &c);
	if (r == 0)
		r = store_db_entries(txn, STORE_DB_ORDERS_RECEIVED, &entries);
	/* No counts, or counts that disagree: the index is not to be
	 * trusted either. */
	rebuild = r == -ENOENT ||
	    (r == 0 && entries != c.state[S(RECEIVED)]);
	if (r == 0 && !rebuild && entries > 0)
		r = store_iter(txn, STORE_DB_ORDERS_RECEIVED, NULL, 0,
		    received_index_one, &sc);
	store_txn_abort(txn);
	if (r < 0 && r != -ENOENT) {
		free(sc.ids);
		return r;
	}
	rebuild = rebuild || sc.stale;
	if (rebuild && (r = order_received_rebuild(s, &sc)) < 0) {
		free(sc.ids);
		return r;
	}
	if (ret_rebuilt)
		*ret_rebuilt = rebuild;
	*ret_ids = sc.ids;
	*ret_n = sc.n;
	return 0;
}

/* ---- iteration -------------------------------------------------------- */

struct order_iter_ctx {
	order_iter_fn cb;
	void *arg;
};

static int
order_iter_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct order_iter_ctx *ctx = arg;
	Order *o;
	int r;

	(void)key;
	(void)key_len;
	o = twinroute__order__unpack(NULL, val_len, val);
	if (o == NULL)
		return -TR_EBADMSG;
	r = ctx->cb(o, ctx->arg);
	twinroute__order__free_unpacked(o, NULL);
	return r;
}

int
order_iter(struct store_txn *txn, order_iter_fn cb, void *arg)
{
	struct order_iter_ctx ctx = { cb, arg };

	return store_iter(txn, STORE_DB_ORDERS, NULL, 0, order_iter_one, &ctx);
}

int
order_iter_newest(struct store_txn *txn, order_iter_fn cb, void *arg)
{
	struct order_iter_ctx ctx = { cb, arg };

	return store_iter_rev(txn, STORE_DB_ORDERS, order_iter_one, &ctx);
}

struct member_list_ctx {
	const uint8_t *prefix;
	size_t prefix_len;
	uint64_t *ids;
	size_t max, n;
	bool more;
};

static int
order_member_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct member_list_ctx *ctx = arg;

	(void)val;
	(void)val_len;
	if (key_len != ctx->prefix_len + 8 ||
	    memcmp(key, ctx->prefix, ctx->prefix_len) != 0)
		return 1;
	if (ctx->n == ctx->max) {
		ctx->more = true;
		return 1;
	}
	ctx->ids[ctx->n++] = UINT64_MAX -
	    be64_get((const uint8_t *)key + ctx->prefix_len);
	return 0;
}

int
order_list_member(struct store_txn *txn, const char *member,
    uint64_t before_id, uint64_t *ids, size_t max, size_t *ret_n,
    bool *ret_more)
{
	uint8_t from[MEMBER_KEY_MAX];
	struct member_list_ctx ctx = { .prefix = from, .ids = ids, .max = max };
	size_t from_len;
	int r;

	/* Ids below before_id: keys from UINT64_MAX - (before_id - 1) on. */
	from_len = order_member_key(member, before_id ? before_id - 1 :
	    UINT64_MAX, from);
	ctx.prefix_len = from_len - 8;
	r = store_iter(txn, STORE_DB_ORDERS_BY_MEMBER, from, from_len,
	    order_member_one, &ctx);
	if (r < 0)
		return r;
	*ret_n = ctx.n;
	*ret_more = ctx.more;
	return 0;
}

/* ---- idempotency ------------------------------------------------------ */

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)

static void
hash_field(EVP_MD_CTX *ctx, const void *p, size_t len)
{
	uint8_t hdr[8];

	/* Length-prefixed: no two parameter sets hash the same bytes. */
	be64_put(hdr, len);
	EVP_DigestUpdate(ctx, hdr, sizeof(hdr));
	EVP_DigestUpdate(ctx, p, len);
}

void
order_request_hash(const char *service_id, uint32_t quantity, const char *note,
    uint8_t ret_hash[ORDER_HASH_SIZE])
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t q[4] = { (uint8_t)(quantity >> 24), (uint8_t)(quantity >> 16),
		(uint8_t)(quantity >> 8), (uint8_t)quantity };
	unsigned len = ORDER_HASH_SIZE;

	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		memset(ret_hash, 0, ORDER_HASH_SIZE);
		return;
	}
	hash_field(ctx, service_id, strlen(service_id));
	hash_field(ctx, q, sizeof(q));
	hash_field(ctx, note, strlen(note));
	EVP_DigestFinal_ex(ctx, ret_hash, &len);
}

/* ---- input checks ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
order_check_note(const char *note)
{
	const uint8_t *p = (const uint8_t *)note;
	size_t n = strlen(note), i = 0, l;

	if (n > ORDER_NOTE_MAX)
		return -EINVAL;
	for (; i < n; i += l) {
		l = utf8_seq(p + i, n - i);
		if (l == 0)
			return -EINVAL;
	}
	return 0;
}

int
order_check_idem_key(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > ORDER_IDEM_KEY_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (key[i] < 0x20 || key[i] > 0x7e)
			return -EINVAL;
	return 0;
}
