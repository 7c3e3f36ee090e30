/* SPDX-License-Identifier: ISC */
/* ctl_order.c -- control handlers for orders: list, show, cancel */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/session.h"
#include "common/be64.h"
#include "common/clock.h"
#include "common/errcode.h"
#include "common/log.h"
#include "common/macro.h"
#include "ctl/ctl.h"
#include "ctl/ctl_check.h"
#include "ctl/ctl_server.h"
#include "daemon.h"
#include "mail/mailer.h"
#include "order/order.h"
#include "store/store.h"

#define ORDER_LIST_DEFAULT 100
#define ORDER_LIST_MAX 100000
/* Room left in a reply frame for the fields around the orders. */
#define ORDER_LIST_SLACK 4096

#define E(x) TWINROUTE__ERROR_CODE__ERR_##x

int
ctl_order_target(struct conn *c, const CtlRequest *req, uint64_t *ret_id)
{
	if (ctl_order_id_parse(req->target, ret_id) < 0) {
		ctl_send_error(c, req->id, E(BAD_REQUEST),
		    "order id: a positive number is needed");
		return -EINVAL;
	}
	return 0;
}

void
ctl_order_not_found(struct conn *c, const CtlRequest *req, uint64_t id)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "no order %" PRIu64, id);
	ctl_send_error(c, req->id, E(NOT_FOUND), msg);
}

/* ---- list ----------------------------------------------------------- */

/* The newest `limit` matches, newest first. */
struct order_ring {
	const Twinroute__Ctl__Filter *f;
	Order **v;
	size_t limit, n;
	uint64_t in_state;      /* orders in the filter's state, to see */
};

static bool
order_matches(const Twinroute__Ctl__Filter *f, const Order *o)
{
	if (f == NULL)
		return true;
	if (f->state != TWINROUTE__ORDER_STATE__ORDER_STATE_UNSPECIFIED &&
	    o->state != f->state)
		return false;
	if (f->member[0] != '\0' && strcmp(o->member, f->member) != 0)
		return false;
	return f->provider_id[0] == '\0' ||
	    strcmp(o->provider_id, f->provider_id) == 0;
}

/* Orders come newest first: the scan stops once limit match, or once
 * every order of the filter's state has, so a listing reads what it shows
 * (and what it skips), not every order. */
static int
order_ring_add(const Order *o, void *arg)
{
	struct order_ring *ring = arg;
	bool counted = ring->in_state != UINT64_MAX &&
	    o->state == ring->f->state;

	if (counted && --ring->in_state == 0 && !order_matches(ring->f, o))
		return 1;
	if (!order_matches(ring->f, o))
		return 0;
	if (order_dup(o, &ring->v[ring->n]) < 0)
		return -ENOMEM;
	ring->n++;
	return ring->n == ring->limit || ring->in_state == 0 ? 1 : 0;
}

/* How many orders the filter's state holds (the counts in the store);
 * UINT64_MAX without a state or counts. */
static uint64_t
order_list_in_state(struct store_txn *txn, const Twinroute__Ctl__Filter *f)
{
	struct order_counts c;

	if (f == NULL || f->state ==
	    TWINROUTE__ORDER_STATE__ORDER_STATE_UNSPECIFIED ||
	    (unsigned)f->state >= ORDER_N_STATES ||
	    order_counts_get(txn, &c) < 0)
		return UINT64_MAX;
	return c.state[f->state];
}

/* A member's orders come from its index, newest first. */
static int
order_list_by_member(struct store_txn *txn, struct order_ring *ring)
{
	uint64_t *ids = calloc(ring->limit, sizeof(*ids)), before = 0;
	size_t n = 0;
	bool more = true;
	Order *o;
	int r = ids ? 0 : -ENOMEM;

	while (r == 0 && more && ring->n < ring->limit) {
		r = order_list_member(txn, ring->f->member, before, ids,
		    ring->limit, &n, &more);
		for (size_t i = 0; r == 0 && i < n && ring->n < ring->limit;
		    i++) {
			r = order_get(txn, ids[i], &o);
			if (r == 0 && order_matches(ring->f, o))
				ring->v[ring->n++] = o;
			else if (r == 0)
				twinroute__order__free_unpacked(o, NULL);
		}
		before = n ? ids[n - 1] : 0;
		more = more && n > 0;
	}
	free(ids);
	return r;
}

static void
ctl_order_reply_list(struct conn *c, uint64_t id, struct order_ring *ring)
{
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	size_t room = ring->n ? ring->n : 1;
	_cleanup_free_ Order *bare = calloc(room, sizeof(*bare));
	_cleanup_free_ Order **p = calloc(room, sizeof(*p));
	size_t n = 0, bytes = 0;

	if (bare == NULL || p == NULL) {
		ctl_send_error(c, id, E(INTERNAL), "out of memory");
		return;
	}
	for (size_t i = 0; i < ring->n; i++, n++) {
		bare[i] = *ring->v[i];
		bare[i].n_history = 0;
		bare[i].history = NULL;
		p[i] = &bare[i];
		/* The newest that fit in one frame. */
		bytes += twinroute__order__get_packed_size(&bare[i]) + 8;
		if (bytes > CTL_FRAME_MAX - ORDER_LIST_SLACK)
			break;
	}
	resp.id = id;
	resp.n_orders = n;
	resp.orders = p;
	ctl_reply(c, &resp);
}

void
ctl_order_list(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	const Twinroute__Ctl__Filter *f = req->filter;
	struct order_ring ring = { .f = f };
	bool by_member = f && f->member[0] != '\0';
	struct store_txn *txn;
	int r;

	ring.limit = f && f->limit ? MIN(f->limit, ORDER_LIST_MAX) :
	    ORDER_LIST_DEFAULT;
	ring.v = calloc(ring.limit, sizeof(*ring.v));
	r = ring.v ? 0 : -ENOMEM;
	if (r == 0 && by_member)
		r = order_member_index_update(d->store, NULL);
	if (r == 0)
		r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		ring.in_state = order_list_in_state(txn, f);
		if (by_member)
			r = order_list_by_member(txn, &ring);
		else if (ring.in_state > 0)
			r = order_iter_newest(txn, order_ring_add, &ring);
		store_txn_abort(txn);
	}
	if (r < 0)
		ctl_store_error(c, req->id, r, "order list");
	else
		ctl_order_reply_list(c, req->id, &ring);
	for (size_t i = 0; i < ring.n; i++)
		twinroute__order__free_unpacked(ring.v[i], NULL);
	free(ring.v);
}

/* ---- show and cancel ------------------------------------------------ */

/* Read the order req->target names; on failure the reply is sent. */
static Order *
ctl_order_load(struct conn *c, const CtlRequest *req, struct store_txn *txn)
{
	Order *o = NULL;
	uint64_t id;
	int r;

	if (ctl_order_target(c, req, &id) < 0)
		return NULL;
	r = order_get(txn, id, &o);
	if (r == -ENOENT) {
		ctl_order_not_found(c, req, id);
	} else if (r < 0) {
		ctl_store_error(c, req->id, r, "order");
	}
	return r < 0 ? NULL : o;
}

void
ctl_order_show(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	struct store_txn *txn;
	Order *o;
	int r;

	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r < 0) {
		ctl_store_error(c, req->id, r, "order");
		return;
	}
	o = ctl_order_load(c, req, txn);
	store_txn_abort(txn);
	if (o == NULL)
		return;
	resp.id = req->id;
	resp.n_orders = 1;
	resp.orders = &o;
	ctl_reply(c, &resp);
	twinroute__order__free_unpacked(o, NULL);
}

void
ctl_order_cancel(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	struct store_txn *txn;
	order_state from;
	uint64_t seq;
	char msg[96];
	Order *o;
	int r;

	r = store_txn_begin(d->store, 0, &txn);
	if (r < 0) {
		ctl_store_error(c, req->id, r, "order cancel");
		return;
	}
	o = ctl_order_load(c, req, txn);
	if (o == NULL) {
		store_txn_abort(txn);
		return;
	}
	from = o->state;
	r = order_enter_state(txn, o, TWINROUTE__ORDER_STATE__ORDER_CANCELLED,
	    "admin: cancel", clock_realtime_ms());
	if (r < 0)
		store_txn_abort(txn);
	else
		r = store_txn_commit(txn, &seq);
	if (r == -ORDER_EFORBIDDEN) {
		snprintf(msg, sizeof(msg), "order %" PRIu64 " is %s: it can no "
		    "longer be cancelled", o->id, order_strstate(from));
		ctl_audit(c, o->member, true, "order %" PRIu64 " cancel: %s",
		    o->id, order_strstate(from));
		ctl_send_error(c, req->id, E(WRONG_STATE), msg);
	} else if (r < 0) {
		ctl_audit(c, o->member, true, "order %" PRIu64 " cancel: %s",
		    o->id, tr_strerror(r));
		ctl_store_error(c, req->id, r, "order cancel");
	} else {
		ctl_audit(c, o->member, false, "order %" PRIu64 " cancelled "
		    "(was %s)", o->id, order_strstate(from));
		client_order_changed(d, seq, o, from, "admin: cancel");
		resp.id = req->id;
		resp.n_orders = 1;
		resp.orders = &o;
		ctl_reply_durable(c, seq, &resp);
	}
	twinroute__order__free_unpacked(o, NULL);
}

/* ---- the mail route ------------------------------------------------- */

struct mail_queue_scan {
	struct daemon *d;
	Twinroute__Ctl__MailQueueEntry *e;
	Twinroute__Ctl__MailQueueEntry **v;
	Twinroute__Store__MailJob **jobs;
	size_t n, cap;
	uint64_t now;
};

static int
mail_queue_cb(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct mail_queue_scan *q = arg;
	Twinroute__Store__MailJob *job;
	Twinroute__Ctl__MailQueueEntry *e;

	(void)key;
	if (key_len != 8)
		return 0;
	if (q->n == q->cap)
		return 1;
	job = twinroute__store__mail_job__unpack(NULL, val_len, val);
	if (!job)
		return 0;
	e = &q->e[q->n];
	twinroute__ctl__mail_queue_entry__init(e);
	e->order_id = job->order_id;
	e->member = job->member;
	e->state = unconst(mailer_sending(q->d->mailer, job->order_id) ?
	    "SENDING" : job->next_attempt_unix_ms > q->now ? "DEFERRED" :
	    "QUEUED");
	e->attempts = job->attempts;
	e->created_unix_ms = job->created_unix_ms;
	e->next_attempt_unix_ms = job->next_attempt_unix_ms;
	e->last_error = job->last_error;
	e->resend = job->resend;
	q->v[q->n] = e;
	q->jobs[q->n++] = job;
	return 0;
}

static int
count_cb(const void *key, size_t key_len, const void *val, size_t val_len,
    void *arg)
{
	(void)key;
	(void)key_len;
	(void)val;
	(void)val_len;
	(*(uint64_t *)arg)++;
	return 0;
}

void
ctl_queue_mail(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Ctl__MailStats ms = TWINROUTE__CTL__MAIL_STATS__INIT;
	struct mail_queue_scan q = { .d = d, .now = clock_realtime_ms() };
	struct mailer_stats st;
	struct store_txn *txn;
	uint32_t limit = req->filter && req->filter->limit ?
	    req->filter->limit : 1000;
	int r;

	q.cap = limit;
	q.e = calloc(q.cap, sizeof(*q.e));
	q.v = calloc(q.cap, sizeof(*q.v));
	q.jobs = calloc(q.cap, sizeof(*q.jobs));
	if (!q.e || !q.v || !q.jobs) {
		ctl_store_error(c, req->id, -ENOMEM, "queue mail");
		goto out;
	}
	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = store_iter(txn, STORE_DB_OUTBOX_MAIL, NULL, 0,
		    mail_queue_cb, &q);
		if (r == 0)
			r = store_iter(txn, STORE_DB_CONFIRMATIONS, NULL, 0,
			    count_cb, &ms.awaiting);
		store_txn_abort(txn);
	}
	if (r < 0) {
		ctl_store_error(c, req->id, r, "queue mail");
		goto out;
	}
	mailer_get_stats(d->mailer, &st);
	ms.sent = st.sent;
	ms.deferred = st.deferred;
	ms.failed = st.failed;
	ms.confirmed = st.confirmed;
	ms.cancelled = st.cancelled;
	ms.expired = st.expired;
	ms.replies_refused = st.replies_refused;
	ms.replies_ignored = st.replies_ignored;
	ms.in_flight = (uint32_t)st.in_flight;
	resp.id = req->id;
	resp.n_mail_queue = q.n;
	resp.mail_queue = q.v;
	resp.mail_stats = &ms;
	ctl_reply(c, &resp);
out:
	for (size_t i = 0; i < q.n; i++)
		twinroute__store__mail_job__free_unpacked(q.jobs[i], NULL);
	free(q.jobs);
	free(q.v);
	free(q.e);
}

void
ctl_order_resend_confirmation(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Store__MailJob job = TWINROUTE__STORE__MAIL_JOB__INIT;
	struct store_txn *txn;
	uint8_t key[8], buf[256];
	uint64_t seq;
	char msg[128];
	size_t len;
	Order *o;
	int r;

	r = store_txn_begin(d->store, 0, &txn);
	if (r < 0) {
		ctl_store_error(c, req->id, r, "order resend-confirmation");
		return;
	}
	o = ctl_order_load(c, req, txn);
	if (o == NULL) {
		store_txn_abort(txn);
		return;
	}
	if (o->state != TWINROUTE__ORDER_STATE__ORDER_AUTHORIZED &&
	    o->state != TWINROUTE__ORDER_STATE__ORDER_AWAITING_CONFIRMATION) {
		store_txn_abort(txn);
		snprintf(msg, sizeof(msg), "order %" PRIu64 " is %s: only an "
		    "order awaiting its confirmation can get it again", o->id,
		    order_strstate(o->state));
		ctl_send_error(c, req->id, E(WRONG_STATE), msg);
		twinroute__order__free_unpacked(o, NULL);
		return;
	}
	/* A new job, due now; while AUTHORIZED it replaces the queued one. */
	be64_put(key, o->id);
	job.order_id = o->id;
	job.member = o->member;
	job.created_unix_ms = clock_realtime_ms();
	job.resend = o->state ==
	    TWINROUTE__ORDER_STATE__ORDER_AWAITING_CONFIRMATION;
	len = twinroute__store__mail_job__get_packed_size(&job);
	twinroute__store__mail_job__pack(&job, buf);
	r = store_put(txn, STORE_DB_OUTBOX_MAIL, key, sizeof(key), buf, len);
	if (r == 0)
		r = store_txn_commit(txn, &seq);
	else
		store_txn_abort(txn);
	if (r < 0) {
		ctl_store_error(c, req->id, r, "order resend-confirmation");
	} else {
		ctl_audit(c, o->member, false, "order %" PRIu64 ": "
		    "confirmation to be sent again", o->id);
		mailer_kick(d->mailer, o->id, seq);
		resp.id = req->id;
		resp.n_orders = 1;
		resp.orders = &o;
		ctl_reply_durable(c, seq, &resp);
	}
	twinroute__order__free_unpacked(o, NULL);
}
