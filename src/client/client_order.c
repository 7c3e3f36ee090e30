/* SPDX-License-Identifier: ISC */
/* client_order.c -- client orders: place, get, list, cancel, watch */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "catalog/catalog.h"
#include "client/client_check.h"
#include "client/session.h"
#include "common/clock.h"
#include "common/errcode.h"
#include "common/htab.h"
#include "common/log.h"
#include "common/macro.h"
#include "daemon.h"
#include "fax/dispatcher.h"
#include "mail/mailer.h"
#include "provider/provider.h"
#include "member/member.h"
#include "net/durable.h"
#include "order/idem.h"
#include "order/order.h"
#include "store/store.h"
#include "vault/vault.h"

#define LIST_PAGE_DEFAULT 20
#define LIST_PAGE_MAX 100

#define ST(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define E(x) TWINROUTE__ERROR_CODE__ERR_##x

static int
store_errcode(int r)
{
	return r == -ENOSPC ? E(STORE_FULL) : E(STORE);
}

static void
client_store_error(struct conn *c, uint64_t id, int r, const char *what)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s: %s", what, tr_strerror(r));
	log_err("%016" PRIx64 " client %s", conn_id(c), msg);
	client_send_error(c, id, store_errcode(r), msg);
}

/* ---- replies that wait for durability ---------------------------------- */

static void
client_not_durable(struct conn *c, uint64_t id, int err)
{
	log_err("%016" PRIx64 " client write not durable: %s", conn_id(c),
	    tr_strerror(err));
	client_send_error(c, id, store_errcode(err), err == -ENOSPC ?
	    "write not durable: the store is full" : "write not durable");
}

/* Send resp once the store has synced seq (group commit). */
static void
client_reply_durable(struct conn *c, uint64_t seq, Response *resp)
{
	struct daemon *d = conn_ctx(c);

	d->requests++;
	if (durable_send(c, d->store, seq, &resp->base, resp->id,
	    client_not_durable) < 0)
		client_send_error(c, resp->id, E(INTERNAL), "out of memory");
}

static void
client_reply_order(struct conn *c, uint64_t id, uint64_t seq, const Order *o)
{
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;

	resp.id = id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_ORDER;
	resp.order = unconst(o);
	client_reply_durable(c, seq, &resp);
}

/* ---- watchers and events ---------------------------------------------- */

struct watcher {
	LIST_ENTRY(watcher) link;
	struct conn *conn;
	struct watch_list *wl;
};

struct watch_list {
	LIST_HEAD(, watcher) conns;
	char member[MEMBER_NUMBER_MAX + 1];   /* the htab key */
};

/* member -> watch_list; NULL while nobody watches. Loop only. */
static struct htab *watch_lists;

struct event_push {
	char member[MEMBER_NUMBER_MAX + 1];
	uint8_t *packed;
	size_t len;
};

static void
event_synced(void *arg, int err)
{
	struct event_push *ep = arg;
	struct watch_list *wl;
	struct watcher *w;

	wl = watch_lists && err == 0 ? htab_get(watch_lists, ep->member) : NULL;
	if (wl != NULL) {
		LIST_FOREACH(w, &wl->conns, link)
			if (!conn_is_closing(w->conn) &&
			    conn_send_packed(w->conn, ep->packed, ep->len) < 0)
				conn_close_after_flush(w->conn);
	}
	free(ep->packed);
	free(ep);
}

void
client_order_changed(struct daemon *d, uint64_t seq, const Order *o,
    order_state from, const char *cause)
{
	if (o->state == ST(AUTHORIZED))
		mailer_kick(d->mailer, o->id, seq);
	else if (o->state == ST(CONFIRMED) && from != ST(CONFIRMED)) {
		providers_order_confirmed(d->providers, o->provider_id, o->id,
		    seq);
		fax_dispatcher_kick(d->fax, o->id, seq);
	}
	client_order_notify(d, seq, o, from, cause);
}

void
client_order_notify(struct daemon *d, uint64_t seq, const Order *o,
    order_state from, const char *cause)
{
	Twinroute__Client__OrderEvent ev = TWINROUTE__CLIENT__ORDER_EVENT__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;
	struct event_push *ep;
	Order bare = *o;

	if (watch_lists == NULL || htab_get(watch_lists, o->member) == NULL)
		return;
	bare.n_history = 0;
	bare.history = NULL;
	ev.order = &bare;
	ev.from = from;
	ev.cause = unconst(cause);
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_EVENT;
	resp.event = &ev;
	ep = calloc(1, sizeof(*ep));
	if (ep != NULL) {
		ep->len = protobuf_c_message_get_packed_size(&resp.base);
		ep->packed = malloc(ep->len);
	}
	if (ep == NULL || ep->packed == NULL) {
		log_err("%016" PRIx64 " order event lost: out of memory",
		    o->id);
		free(ep);
		return;
	}
	protobuf_c_message_pack(&resp.base, ep->packed);
	snprintf(ep->member, sizeof(ep->member), "%s", o->member);
	if (store_after_sync(d->store, seq, event_synced, ep) < 0)
		event_synced(ep, -ENOMEM);
}

void
client_watch(struct conn *c, const Request *req)
{
	Twinroute__Client__WatchReply wr = TWINROUTE__CLIENT__WATCH_REPLY__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;
	struct client_session *s = client_session(c);
	const char *member = client_session_member(c);
	struct watch_list *wl = NULL;
	struct watcher *w;

	if (member == NULL) {
		client_send_error(c, req->id, E(NOT_LOGGED_IN),
		    "watch: log in first");
		return;
	}
	if (!s->watching) {
		if (watch_lists == NULL && htab_new(0, &watch_lists) < 0)
			goto nomem;
		wl = htab_get(watch_lists, member);
		if (wl == NULL) {
			wl = calloc(1, sizeof(*wl));
			if (wl == NULL)
				goto nomem;
			LIST_INIT(&wl->conns);
			snprintf(wl->member, sizeof(wl->member), "%s", member);
			if (htab_put(watch_lists, wl->member, wl) < 0) {
				free(wl);
				goto nomem;
			}
		}
		w = calloc(1, sizeof(*w));
		if (w == NULL)
			goto nomem;
		w->conn = c;
		w->wl = wl;
		LIST_INSERT_HEAD(&wl->conns, w, link);
		s->watch_link = w;
		s->watching = true;
		log_debug("%016" PRIx64 " client member=%s watching",
		    conn_id(c), member);
	}
	resp.id = req->id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_WATCH;
	resp.watch = &wr;
	client_reply(c, &resp);
	return;
nomem:
	client_send_error(c, req->id, E(INTERNAL), "out of memory");
}

void
client_watch_drop(struct conn *c)
{
	struct client_session *s = client_session(c);
	struct watcher *w;
	struct watch_list *wl;

	if (s == NULL || !s->watching)
		return;
	w = s->watch_link;
	wl = w->wl;
	LIST_REMOVE(w, link);
	free(w);
	s->watch_link = NULL;
	s->watching = false;
	if (LIST_EMPTY(&wl->conns)) {
		htab_del(watch_lists, wl->member);
		free(wl);
	}
	if (htab_count(watch_lists) == 0)
		watch_lists = htab_free(watch_lists);
}

/* ---- placing an order -------------------------------------------------- */

/* An order waiting for the vault's answer. */
struct place_call {
	struct daemon *d;
	struct conn *conn;        /* NULL: recovery after a restart */
	uint64_t req_id;
	uint64_t order_id;
	bool held;                /* holds the batch with its RECEIVED */
	uint32_t hold_gen;
};

static void
place_call_free(struct place_call *call)
{
	if (call->conn)
		conn_unref(call->conn);
	free(call);
}

/* Record the vault's answer on the order; 0 with *ret_seq, or -errno. */
static int
place_record(struct place_call *call, const struct vault_reply *vr,
    Order **ret_order, uint64_t *ret_seq)
{
	struct store *st = call->d->store;
	struct store_txn *txn;
	Order *o = NULL;
	char cause[64];
	int r;

	r = store_txn_begin(st, STORE_BATCH, &txn);
	if (r < 0)
		return r;
	r = order_get(txn, call->order_id, &o);
	if (r < 0 || o->state != ST(RECEIVED)) {
		/* Cancelled meanwhile: the answer changes nothing. */
		store_txn_abort(txn);
		if (r == 0) {
			*ret_order = o;
			*ret_seq = store_last_seq(st);
		}
		return r;
	}
	snprintf(cause, sizeof(cause), "vault: %s", vault_strcode(vr->code));
	if (vr->code == VAULT_OK) {
		if ((r = order_set_str(&o->card_brand, vr->brand)) == 0 &&
		    (r = order_set_str(&o->card_last4, vr->last4)) == 0)
			r = order_enter_state(txn, o, ST(AUTHORIZED), cause,
			    clock_realtime_ms());
	} else if ((r = order_set_str(&o->decline_reason,
	    vault_strcode(vr->code))) == 0) {
		r = order_enter_state(txn, o, ST(DECLINED), cause,
		    clock_realtime_ms());
	}
	if (r < 0)
		store_txn_abort(txn);
	else
		r = store_txn_commit(txn, ret_seq);
	if (r < 0) {
		twinroute__order__free_unpacked(o, NULL);
		return r;
	}
	client_order_changed(call->d, *ret_seq, o, ST(RECEIVED), cause);
	*ret_order = o;
	return 0;
}

static void
place_vault_done(void *arg, struct vault_reply *vr)
{
	struct place_call *call = arg;
	Order *o = NULL;
	uint64_t seq = 0;
	int r;

	if (vr->code != VAULT_OK && vr->code != VAULT_NO_CARD &&
	    vr->code != VAULT_EXPIRED && vr->code != VAULT_LIMIT)
		log_warn("%016" PRIx64 " order vault: %s%s%s", call->order_id,
		    vault_strcode(vr->code), vr->message[0] ? ": " : "",
		    vr->message);
	r = place_record(call, vr, &o, &seq);
	/* Its answer is in the batch (or failed): the batch may go. */
	if (call->held) {
		call->held = false;
		store_batch_release(call->d->store, call->hold_gen);
	}
	if (r == -ENOENT && store_commit_error(call->d->store) < 0) {
		/* Its RECEIVED write was lost with its batch (a full map). */
		r = store_commit_error(call->d->store);
		log_err("%016" PRIx64 " order: not placed: its write "
		    "failed: %s", call->order_id, tr_strerror(r));
	} else if (r < 0) {
		log_err("%016" PRIx64 " order: cannot record the vault's "
		    "answer: %s (stays RECEIVED until restart)", call->order_id,
		    tr_strerror(r));
	}
	if (call->conn && !conn_is_closing(call->conn)) {
		if (r < 0)
			client_store_error(call->conn, call->req_id, r,
			    "order");
		else
			client_reply_order(call->conn, call->req_id, seq, o);
	}
	if (o)
		twinroute__order__free_unpacked(o, NULL);
	place_call_free(call);
}

/* Ask the vault to authenticate o's amount; the answer comes to
 * place_vault_done, which also handles a refused submission. */
static void
place_authenticate(struct daemon *d, struct conn *c, uint64_t req_id,
    const Order *o)
{
	struct vault_request vr = { .op = VAULT_OP_AUTHENTICATE };
	struct vault_reply fail = { .op = VAULT_OP_AUTHENTICATE };
	struct place_call *call;

	call = calloc(1, sizeof(*call));
	if (call == NULL) {
		log_err("%016" PRIx64 " order: out of memory", o->id);
		if (c)
			client_send_error(c, req_id, E(INTERNAL),
			    "out of memory");
		return;
	}
	call->d = d;
	call->conn = c ? conn_ref(c) : NULL;
	call->req_id = req_id;
	call->order_id = o->id;
	/* The answer is a vault round trip away: its write and the order's
	 * RECEIVED then share one commit and one fsync. */
	if (c)
		call->held = store_batch_hold(d->store, &call->hold_gen) == 0;
	snprintf(vr.actor, sizeof(vr.actor), "order");
	snprintf(vr.member, sizeof(vr.member), "%s", o->member);
	vr.auth.amount = o->amount ? o->amount->minor : 0;
	snprintf(vr.auth.currency, sizeof(vr.auth.currency), "%s",
	    o->amount ? o->amount->currency : "");
	vr.auth.order_id = o->id;
	if (vault_submit(d->vault, &vr, place_vault_done, call) < 0) {
		fail.code = VAULT_ERROR;
		snprintf(fail.message, sizeof(fail.message),
		    "the vault is not taking requests");
		place_vault_done(call, &fail);
	}
}

/* Validate a PlaceOrder; on failure the error reply is sent. */
static int
place_check(struct conn *c, const Request *req,
    const Twinroute__Service **ret_svc, int64_t *ret_amount)
{
	struct daemon *d = conn_ctx(c);
	const char *why;
	int code, r;

	r = client_check_place_order(d->catalog, req->place_order,
	    d->cfg->orders_quantity_max, ret_svc, ret_amount, &code, &why);
	if (r < 0)
		client_send_error(c, req->id, code, why);
	return r;
}

/* A new order, RECEIVED, in txn. */
static int
place_create(struct store_txn *txn, const char *member,
    const Twinroute__Client__PlaceOrder *po, const Twinroute__Service *svc,
    int64_t amount, Order **ret_order)
{
	Order t = TWINROUTE__ORDER__INIT;
	Twinroute__Money total = TWINROUTE__MONEY__INIT;
	Order *o;
	int r;

	r = order_next_id(txn, &t.id);
	if (r < 0)
		return r;
	t.member = unconst(member);
	t.service_id = svc->id;
	t.provider_id = svc->provider_id;
	t.service_name = svc->name;
	t.quantity = po->quantity;
	t.unit_price = svc->price;
	total.minor = amount;
	total.currency = svc->price->currency;
	t.amount = &total;
	t.note = po->note;
	t.idempotency_key = po->idempotency_key;
	r = order_dup(&t, &o);
	if (r < 0)
		return r;
	r = order_enter_state(txn, o, ST(RECEIVED), "member: order",
	    clock_realtime_ms());
	if (r < 0) {
		twinroute__order__free_unpacked(o, NULL);
		return r;
	}
	*ret_order = o;
	return 0;
}

static bool
member_active(struct store_txn *txn, const char *member)
{
	Twinroute__Store__MemberRecord *rec;
	bool active;

	if (member_get(txn, member, &rec) < 0)
		return false;
	active = rec->active;
	twinroute__store__member_record__free_unpacked(rec, NULL);
	return active;
}

/* The key is known: the same request gets the order as it is now. */
static void
place_replay(struct conn *c, uint64_t req_id, uint64_t order_id)
{
	struct daemon *d = conn_ctx(c);
	struct store_txn *txn;
	Order *o = NULL;
	int r;

	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = order_get(txn, order_id, &o);
		store_txn_abort(txn);
	}
	if (r == -ENOENT) {
		/* Placed in this very round: only the batch has it yet. */
		r = store_txn_begin(d->store, STORE_BATCH, &txn);
		if (r == 0) {
			r = order_get(txn, order_id, &o);
			store_txn_abort(txn);
		}
	}
	if (r < 0) {
		client_store_error(c, req_id, r, "order");
		return;
	}
	client_reply_order(c, req_id, store_last_seq(d->store), o);
	twinroute__order__free_unpacked(o, NULL);
}

/*
 * One write: the idempotency check, the order RECEIVED (or DECLINED for
 * a disabled member) and its key. 1 when the request is answered already.
 */
static int
place_write(struct conn *c, const Request *req, const Twinroute__Service *svc,
    int64_t amount, Order **ret_order, uint64_t *ret_seq)
{
	const Twinroute__Client__PlaceOrder *po = req->place_order;
	const char *member = client_session_member(c);
	struct daemon *d = conn_ctx(c);
	uint8_t hash[ORDER_HASH_SIZE], old[ORDER_HASH_SIZE];
	uint64_t now = (uint64_t)time(NULL), id;
	struct store_txn *txn;
	Order *o = NULL;
	int r;

	r = store_txn_begin(d->store, STORE_BATCH, &txn);
	if (r < 0)
		return r;
	r = idem_get(d->idem, txn, member, po->idempotency_key, now,
	    d->cfg->orders_idempotency_ttl, &id, old);
	if (r != -ENOENT) {
		store_txn_abort(txn);
		if (r == 0)
			order_request_hash(po->service_id, po->quantity,
			    po->note, hash);
		if (r == 0 && memcmp(hash, old, sizeof(hash)) == 0)
			place_replay(c, req->id, id);
		else if (r == 0)
			client_send_error(c, req->id, E(IDEMPOTENCY_MISMATCH),
			    "idempotency_key: used with other parameters");
		return r < 0 ? r : 1;
	}
	r = place_create(txn, member, po, svc, amount, &o);
	if (r == 0)
		r = idem_put(d->idem, txn, member, po->idempotency_key, o->id,
		    now);
	if (r == 0 && !member_active(txn, member) &&
	    (r = order_set_str(&o->decline_reason, "DISABLED")) == 0)
		r = order_enter_state(txn, o, ST(DECLINED), "member: disabled",
		    clock_realtime_ms());
	if (r < 0)
		store_txn_abort(txn);
	else
		r = store_txn_commit(txn, ret_seq);
	if (r < 0) {
		if (o)
			twinroute__order__free_unpacked(o, NULL);
		return r;
	}
	*ret_order = o;
	return 0;
}

void
client_place_order(struct conn *c, const Request *req)
{
	struct daemon *d = conn_ctx(c);
	const Twinroute__Service *svc;
	Order *o = NULL;
	int64_t amount;
	uint64_t seq;
	int r;

	if (client_session_member(c) == NULL) {
		client_send_error(c, req->id, E(NOT_LOGGED_IN),
		    "order: log in first");
		return;
	}
	if (place_check(c, req, &svc, &amount) < 0)
		return;
	r = place_write(c, req, svc, amount, &o, &seq);
	if (r == 1)
		return;
	if (r < 0) {
		client_store_error(c, req->id, r, "order");
		return;
	}
	if (o->state == ST(DECLINED)) {
		client_order_changed(d, seq, o, ST(RECEIVED),
		    "member: disabled");
		client_reply_order(c, req->id, seq, o);
	} else {
		client_order_changed(d, seq, o, ST(STATE_UNSPECIFIED),
		    "member: order");
		place_authenticate(d, c, req->id, o);
	}
	twinroute__order__free_unpacked(o, NULL);
}

/* ---- upkeep ------------------------------------------------------------ */

/*
 * Every 100 ms the member index catches up with the orders, and the
 * idempotency log drops what expired (up to 1024 records: 10,000 a
 * second), as one batch member, with no commit of its own. Short enough
 * that one round's work (an order costs about a microsecond to index)
 * does not show in the latency of the orders waiting meanwhile; long
 * enough that each member's leaf of the index is written once for many
 * of its orders.
 */
#define UPKEEP_INTERVAL_US 100000
#define UPKEEP_SWEEP_MAX 1024

static void
order_upkeep(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	uint64_t now = (uint64_t)time(NULL), lag = 0;
	uint32_t ttl = d->cfg->orders_idempotency_ttl;
	struct store_txn *txn;
	size_t indexed = 0, swept = 0;
	int r, due = 0;

	(void)fd;
	(void)what;
	/* A look first: a write, even an empty one, is a commit and a sync,
	 * ten a second on an idle daemon. What the open batch holds comes
	 * up next round. */
	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r < 0)
		goto out;
	r = order_member_index_lag(txn, &lag);
	if (r == 0)
		r = due = idem_sweep_due(txn, now, ttl);
	store_txn_abort(txn);
	if (r < 0 || (lag == 0 && due == 0))
		goto out;
	r = store_txn_begin(d->store, STORE_BATCH, &txn);
	if (r < 0)
		goto out;
	r = order_member_index_catch_up(txn, &indexed);
	if (r == 0 && due)
		r = idem_sweep(d->idem, txn, now, ttl, UPKEEP_SWEEP_MAX,
		    &swept);
	if (r < 0)
		store_txn_abort(txn);
	else
		r = store_txn_commit(txn, NULL);
	if (r == 0 && swept > 0)
		log_debug("orders: %zu idempotency keys expired", swept);
out:
	/* Once per spell of failures (a full store fails every round). */
	if (r < 0 && !d->order_upkeep_failing)
		log_warn("orders: upkeep of the member index and the "
		    "idempotency keys: %s (tried again every 100 ms)",
		    tr_strerror(r));
	else if (r == 0 && d->order_upkeep_failing)
		log_info("orders: upkeep of the member index and the "
		    "idempotency keys works again");
	d->order_upkeep_failing = r < 0;
}

int
client_order_open(struct daemon *d)
{
	static const struct timeval every = { 0, UPKEEP_INTERVAL_US };
	size_t moved = 0, indexed = 0;
	int r;

	r = order_member_index_update(d->store, &indexed);
	if (r < 0) {
		log_err("orders: member index: %s", tr_strerror(r));
		return r;
	}
	if (indexed > 0)
		log_info("orders: %zu orders of the last run added to the "
		    "member index", indexed);
	r = idem_open(d->store, &d->idem, &moved);
	if (r < 0) {
		log_err("orders: idempotency keys: %s", tr_strerror(r));
		return r;
	}
	if (moved > 0)
		log_info("orders: %zu idempotency keys moved to the log "
		    "(schema 1 to 2)", moved);
	log_debug("orders: %zu idempotency keys loaded",
	    idem_count(d->idem));
	d->order_upkeep = event_new(d->base, -1, EV_PERSIST, order_upkeep, d);
	if (d->order_upkeep == NULL || event_add(d->order_upkeep, &every) < 0)
		return -ENOMEM;
	return 0;
}

void
client_order_close(struct daemon *d)
{
	if (d->order_upkeep) {
		event_free(d->order_upkeep);
		d->order_upkeep = NULL;
	}
	d->idem = idem_free(d->idem);
}

/* ---- recovery ---------------------------------------------------------- */

/* The orders a crash left RECEIVED go to the vault again: found through
 * the orders_received index, not a scan of every order. */
void
client_order_recover(struct daemon *d)
{
	_cleanup_free_ uint64_t *ids = NULL;
	_cleanup_free_ Order **v = NULL;
	struct store_txn *txn = NULL;
	size_t n = 0, nv = 0;
	bool rebuilt = false;
	int r;

	r = order_received_ids(d->store, &ids, &n, &rebuilt);
	if (r < 0) {
		log_err("order recovery: %s", tr_strerror(r));
		return;
	}
	if (rebuilt)
		log_info("order recovery: the index of RECEIVED orders was "
		    "made again (a scan of the orders)");
	if (n == 0)
		return;
	v = calloc(n, sizeof(*v));
	if (v == NULL) {
		log_err("order recovery: %s", tr_strerror(-ENOMEM));
		return;
	}
	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	for (size_t i = 0; r == 0 && i < n; i++) {
		Order *o;

		r = order_get(txn, ids[i], &o);
		if (r == 0 && o->state != ST(RECEIVED))
			twinroute__order__free_unpacked(o, NULL);
		else if (r == 0)
			v[nv++] = o;
	}
	store_txn_abort(txn);
	if (r < 0)
		log_err("order recovery: %s", tr_strerror(r));
	if (nv > 0)
		log_info("order recovery: asking the vault again about %zu "
		    "RECEIVED orders", nv);
	for (size_t i = 0; i < nv; i++) {
		place_authenticate(d, NULL, 0, v[i]);
		twinroute__order__free_unpacked(v[i], NULL);
	}
}

/* ---- reading and cancelling ------------------------------------------- */

/* Load one of the member's own orders; on failure the reply is sent.
 * Another member's order is "not found", like an unknown id. */
static Order *
client_own_order(struct conn *c, uint64_t req_id, struct store_txn *txn,
    uint64_t id)
{
	const char *member = client_session_member(c);
	Order *o = NULL;
	int r;

	r = order_get(txn, id, &o);
	if (r == 0 && strcmp(o->member, member) != 0) {
		twinroute__order__free_unpacked(o, NULL);
		r = -ENOENT;
	}
	if (r == -ENOENT)
		client_send_error(c, req_id, E(NOT_FOUND), "no such order");
	else if (r < 0)
		client_store_error(c, req_id, r, "order");
	return r < 0 ? NULL : o;
}

void
client_get_order(struct conn *c, const Request *req)
{
	struct daemon *d = conn_ctx(c);
	struct store_txn *txn;
	Order *o;
	int r;

	if (client_session_member(c) == NULL) {
		client_send_error(c, req->id, E(NOT_LOGGED_IN),
		    "order: log in first");
		return;
	}
	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r < 0) {
		client_store_error(c, req->id, r, "order");
		return;
	}
	o = client_own_order(c, req->id, txn, req->get_order->id);
	store_txn_abort(txn);
	if (o == NULL)
		return;
	/* Not yet synced writes are shown only once they are durable; the
	 * read saw committed writes only (not the open batch). */
	client_reply_order(c, req->id, store_committed_seq(d->store), o);
	twinroute__order__free_unpacked(o, NULL);
}

struct order_page {
	Order *full[LIST_PAGE_MAX];
	Order bare[LIST_PAGE_MAX];
	Order *ptrs[LIST_PAGE_MAX];
	size_t n;
	bool more;
};

/* The page of the member's orders below before (0: the newest). */
static int
order_page_load(struct store *st, const char *member, uint64_t before,
    size_t size, struct order_page *pg)
{
	uint64_t ids[LIST_PAGE_MAX];
	struct store_txn *txn;
	size_t n = 0;
	int r;

	r = order_member_index_update(st, NULL);
	if (r < 0)
		return r;
	r = store_txn_begin(st, STORE_RDONLY, &txn);
	if (r < 0)
		return r;
	r = order_list_member(txn, member, before, ids, size, &n, &pg->more);
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = order_get(txn, ids[i], &pg->full[i]);
		if (r < 0)
			break;
		pg->bare[i] = *pg->full[i];
		pg->bare[i].n_history = 0;
		pg->bare[i].history = NULL;
		pg->ptrs[i] = &pg->bare[i];
		pg->n++;
	}
	store_txn_abort(txn);
	return r;
}

void
client_list_orders(struct conn *c, const Request *req)
{
	const Twinroute__Client__ListOrders *lo = req->list_orders;
	const char *member = client_session_member(c);
	struct daemon *d = conn_ctx(c);
	Twinroute__Client__OrderList ol = TWINROUTE__CLIENT__ORDER_LIST__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;
	_cleanup_free_ struct order_page *pg = NULL;
	uint8_t token[CLIENT_ORDER_TOKEN_LEN];
	uint64_t before;
	size_t size;
	int r;

	if (member == NULL) {
		client_send_error(c, req->id, E(NOT_LOGGED_IN),
		    "orders: log in first");
		return;
	}
	if (client_order_token_decode(&lo->page_token, &before) < 0) {
		client_send_error(c, req->id, E(BAD_PAGE_TOKEN),
		    "page_token: not a token this server issued");
		return;
	}
	size = lo->page_size ? MIN(lo->page_size, LIST_PAGE_MAX) :
	    LIST_PAGE_DEFAULT;
	pg = calloc(1, sizeof(*pg));
	if (pg == NULL) {
		client_send_error(c, req->id, E(INTERNAL), "out of memory");
		return;
	}
	r = order_page_load(d->store, member, before, size, pg);
	if (r < 0) {
		client_store_error(c, req->id, r, "orders");
	} else {
		ol.n_orders = pg->n;
		ol.orders = pg->ptrs;
		if (pg->more && pg->n > 0) {
			client_order_token_encode(pg->full[pg->n - 1]->id,
			    token);
			ol.next_page_token.data = token;
			ol.next_page_token.len = sizeof(token);
		}
		resp.id = req->id;
		resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_ORDERS;
		resp.orders = &ol;
		client_reply_durable(c, store_committed_seq(d->store), &resp);
	}
	for (size_t i = 0; i < pg->n; i++)
		twinroute__order__free_unpacked(pg->full[i], NULL);
}

void
client_cancel_order(struct conn *c, const Request *req)
{
	struct daemon *d = conn_ctx(c);
	struct store_txn *txn;
	order_state from;
	uint64_t seq;
	char msg[96];
	Order *o;
	int r;

	if (client_session_member(c) == NULL) {
		client_send_error(c, req->id, E(NOT_LOGGED_IN),
		    "cancel: log in first");
		return;
	}
	r = store_txn_begin(d->store, STORE_BATCH, &txn);
	if (r < 0) {
		client_store_error(c, req->id, r, "cancel");
		return;
	}
	o = client_own_order(c, req->id, txn, req->cancel_order->id);
	if (o == NULL) {
		store_txn_abort(txn);
		return;
	}
	from = o->state;
	r = order_enter_state(txn, o, ST(CANCELLED), "member: cancel",
	    clock_realtime_ms());
	if (r < 0)
		store_txn_abort(txn);
	else
		r = store_txn_commit(txn, &seq);
	if (r == -ORDER_EFORBIDDEN) {
		snprintf(msg, sizeof(msg), "the order is %s: it can no longer "
		    "be cancelled", order_strstate(from));
		client_send_error(c, req->id, E(WRONG_STATE), msg);
	} else if (r < 0) {
		client_store_error(c, req->id, r, "cancel");
	} else {
		client_order_changed(d, seq, o, from, "member: cancel");
		client_reply_order(c, req->id, seq, o);
	}
	twinroute__order__free_unpacked(o, NULL);
}
