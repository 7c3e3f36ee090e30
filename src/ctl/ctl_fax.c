/* SPDX-License-Identifier: ISC */
/* ctl_fax.c -- control handlers for the card route: fax ident, jobs, modems */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/errcode.h"
#include "common/log.h"
#include "common/macro.h"
#include "ctl/ctl.h"
#include "ctl/ctl_server.h"
#include "daemon.h"
#include "fax/class1.h"
#include "fax/dispatcher.h"
#include "fax/modem.h"
#include "order/order.h"
#include "provider/provider.h"
#include "store/store.h"

#define E(x) TWINROUTE__ERROR_CODE__ERR_##x
#define F(x) TWINROUTE__FAX_STATE__FAX_##x

/* Jobs queue fax lists when the filter names no limit, and at most. */
#define CTL_FAX_LIST_DEFAULT 1000
#define CTL_FAX_LIST_MAX 100000
/* Room left in a reply frame for the fields around the list. */
#define CTL_FAX_LIST_SLACK (64u * 1024u)

typedef Twinroute__Store__DispatchJob DispatchJob;
typedef Twinroute__Ctl__FaxQueueEntry FaxQueueEntry;

/* The modem whose call carries order_id, or "" when it is in none. The
 * name belongs to the modem: use it before the loop runs again. */
static const char *
ctl_fax_modem_of(const struct fax_dispatcher *f, uint64_t order_id)
{
	struct modem_info mi;
	uint64_t oid;

	if (f == NULL || !fax_dispatcher_calling(f, order_id))
		return "";
	for (size_t i = 0, n = fax_dispatcher_n_modems(f); i < n; i++) {
		fax_dispatcher_modem(f, i, &mi, &oid);
		if (oid == order_id)
			return mi.name ? mi.name : "";
	}
	return "";
}

/* One job as the reply shows it; e borrows job's strings. */
static void
ctl_fax_entry(const struct fax_dispatcher *f, const DispatchJob *job,
    const char *state, FaxQueueEntry *e)
{
	twinroute__ctl__fax_queue_entry__init(e);
	e->order_id = job->order_id;
	e->provider_id = job->provider_id;
	e->state = unconst(state);
	e->dials = job->dials;
	e->tries = job->tries;
	e->no_carrier = job->no_carrier;
	e->created_unix_ms = job->created_unix_ms;
	e->next_attempt_unix_ms = job->next_attempt_unix_ms;
	e->last_error = job->last_error;
	e->modem = unconst(ctl_fax_modem_of(f, job->order_id));
}

/* ---- provider fax-ident --------------------------------------------- */

/* Is s a CSI a fax can announce (ctl_fax_ident_check)? If not, why, into
 * why. */
static bool
ctl_fax_ident_valid(const char *s, char *why, size_t len)
{
	size_t pos = 0;

	switch (ctl_fax_ident_check(s, &pos)) {
	case 0:
		return true;
	case -ENODATA:
		snprintf(why, len, "fax ident: missing (a CSI, or remove)");
		break;
	case -E2BIG:
		snprintf(why, len, "fax ident: longer than %d characters",
		    CLASS1_IDENT_MAX);
		break;
	case -EILSEQ:
		snprintf(why, len, "fax ident: printable ASCII only "
		    "(character %zu is not)", pos);
		break;
	default:
		snprintf(why, len, "fax ident: only spaces");
		break;
	}
	return false;
}

static void
auth_set_fax_ident(ProviderAuth *a, void *arg)
{
	a->fax_ident = arg;
}

void
ctl_provider_fax_ident(struct conn *c, const CtlRequest *req)
{
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	const char *ident = req->remove ? "" : req->fax_ident;
	char why[96] = "";
	uint64_t seq;
	int r;

	if (!ctl_provider_known(c, req, true))
		return;
	if (req->remove && req->fax_ident[0] != '\0')
		snprintf(why, sizeof(why), "a fax ident and remove: one or the "
		    "other");
	else if (!req->remove)
		(void)ctl_fax_ident_valid(req->fax_ident, why, sizeof(why));
	if (why[0] != '\0') {
		/* Not the refused ident itself: it may hold anything. */
		ctl_audit(c, NULL, true, "provider %s fax ident: %s",
		    req->target, why);
		ctl_send_error(c, req->id, E(BAD_REQUEST), why);
		return;
	}
	r = ctl_auth_write(c, req->target, auth_set_fax_ident, unconst(ident),
	    &seq);
	if (r < 0) {
		ctl_audit(c, NULL, true, "provider %s fax ident: %s",
		    req->target, tr_strerror(r));
		ctl_store_error(c, req->id, r, "provider fax-ident");
		return;
	}
	if (req->remove) {
		log_info("control: provider %s fax ident pin removed",
		    req->target);
		ctl_audit(c, NULL, false, "provider %s fax ident pin removed",
		    req->target);
	} else {
		log_info("control: provider %s fax ident pinned \"%s\"",
		    req->target, ident);
		ctl_audit(c, NULL, false, "provider %s fax ident pinned \"%s\"",
		    req->target, ident);
	}
	resp.id = req->id;
	resp.fax_ident = unconst(ident);
	ctl_reply_durable(c, seq, &resp);
}

/* ---- queue fax ------------------------------------------------------ */

struct fax_scan_item {
	DispatchJob *job;
	const char *state;          /* the order's fax track, static */
};

struct fax_scan {
	struct store_txn *txn;
	const char *provider_id;    /* NULL: every provider */
	struct fax_scan_item *v;
	size_t n, cap, limit;
	uint64_t total;             /* jobs matching, kept or not */
};

static int
fax_scan_cb(const void *key, size_t key_len, const void *val, size_t val_len,
    void *arg)
{
	struct fax_scan *q = arg;
	DispatchJob *job;
	Order *o = NULL;
	const char *state;
	int r;

	(void)key;
	/* key: the order id, 8 bytes big-endian. */
	if (key_len != 8)
		return 0;
	job = twinroute__store__dispatch_job__unpack(NULL, val_len, val);
	if (job == NULL)
		return -TR_EBADMSG;
	if (q->provider_id != NULL &&
	    strcmp(job->provider_id, q->provider_id) != 0)
		goto skip;
	q->total++;
	if (q->n == q->limit)
		goto skip;
	r = order_get(q->txn, job->order_id, &o);
	if (r == -ENOENT) {
		state = "NO_ORDER";
	} else if (r < 0) {
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
		return r;
	} else {
		state = order_strfax(o->fax_state);
		twinroute__order__free_unpacked(o, NULL);
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64;
		struct fax_scan_item *v;

		v = reallocarray(q->v, cap, sizeof(*v));
		if (v == NULL) {
			twinroute__store__dispatch_job__free_unpacked(job,
			    NULL);
			return -ENOMEM;
		}
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n].job = job;
	q->v[q->n++].state = state;
	return 0;
skip:
	twinroute__store__dispatch_job__free_unpacked(job, NULL);
	return 0;
}

static void
ctl_fax_stats(const struct fax_dispatcher *f, Twinroute__Ctl__FaxStats *fs)
{
	struct fax_stats st;

	fax_dispatcher_stats(f, &st);
	fs->sent = st.sent;
	fs->failed = st.failed;
	fs->retried = st.retried;
	fs->calls = st.calls;
	fs->pages_composed = st.pages_composed;
	fs->queued = (uint32_t)MIN(st.queued, (size_t)UINT32_MAX);
	fs->in_flight = (uint32_t)MIN(st.in_flight, (size_t)UINT32_MAX);
}

void
ctl_queue_fax(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Ctl__FaxStats fs = TWINROUTE__CTL__FAX_STATS__INIT;
	const Twinroute__Ctl__Filter *f = req->filter;
	struct fax_scan q = { 0 };
	FaxQueueEntry *e = NULL, **p = NULL;
	size_t n = 0, bytes = 0;
	int r;

	if (req->target[0] != '\0') {
		if (!ctl_provider_known(c, req, false))
			return;
		q.provider_id = req->target;
	}
	q.limit = f && f->limit ? MIN(f->limit, CTL_FAX_LIST_MAX) :
	    CTL_FAX_LIST_DEFAULT;
	r = store_txn_begin(d->store, STORE_RDONLY, &q.txn);
	if (r == 0) {
		r = store_iter(q.txn, STORE_DB_OUTBOX_FAX, NULL, 0,
		    fax_scan_cb, &q);
		store_txn_abort(q.txn);
	}
	if (r == 0) {
		e = calloc(q.n ? q.n : 1, sizeof(*e));
		p = calloc(q.n ? q.n : 1, sizeof(*p));
		if (e == NULL || p == NULL)
			r = -ENOMEM;
	}
	if (r < 0) {
		ctl_store_error(c, req->id, r, "queue fax");
		goto out;
	}
	for (; n < q.n; n++) {
		ctl_fax_entry(d->fax, q.v[n].job, q.v[n].state, &e[n]);
		/* The first that fit in one frame; the total counts all. */
		bytes += twinroute__ctl__fax_queue_entry__get_packed_size(
		    &e[n]) + 8;
		if (bytes > CTL_FRAME_MAX - CTL_FAX_LIST_SLACK)
			break;
		p[n] = &e[n];
	}
	resp.id = req->id;
	resp.n_fax_queue = n;
	resp.fax_queue = p;
	resp.dispatch_total = q.total;
	if (d->fax != NULL) {
		ctl_fax_stats(d->fax, &fs);
		resp.fax_stats = &fs;
	}
	ctl_reply(c, &resp);
out:
	for (size_t i = 0; i < q.n; i++)
		twinroute__store__dispatch_job__free_unpacked(q.v[i].job, NULL);
	free(q.v);
	free(e);
	free(p);
}

/* ---- fax show ------------------------------------------------------- */

/* Does the reply want the order's fax reference computed? */
static bool
ctl_fax_wants_ref(const Order *o)
{
	if (o->fax_state == F(NONE) && o->fax == NULL)
		return false;
	return o->fax == NULL || o->fax->fax_ref == NULL ||
	    o->fax->fax_ref[0] == '\0';
}

void
ctl_fax_show(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__FaxReport report = TWINROUTE__FAX_REPORT__INIT;
	FaxQueueEntry e, *ep = &e;
	DispatchJob *job = NULL;
	struct store_txn *txn;
	char ref[PROVIDER_FAX_REF_LEN + 1] = "", *stored_ref = NULL;
	bool own_report = false, own_ref = false;
	uint8_t key[32];
	Order *o = NULL;
	uint64_t id;
	int r;

	if (ctl_order_target(c, req, &id) < 0)
		return;
	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = order_get(txn, id, &o);
		if (r == 0) {
			r = order_fax_job_get(txn, id, &job);
			if (r == -ENOENT)
				r = 0;
		}
		/*
		 * Last: the key is made on its first use, which a read
		 * transaction cannot write (and the failed write spoils
		 * it). Then the reference stays empty.
		 */
		if (r == 0 && ctl_fax_wants_ref(o) &&
		    provider_fax_ref_key(txn, key) == 0)
			provider_fax_reference(key, id, ref);
		OPENSSL_cleanse(key, sizeof(key));
		store_txn_abort(txn);
	}
	if (r == -ENOENT && o == NULL) {
		ctl_order_not_found(c, req, id);
		goto out;
	}
	if (r < 0) {
		ctl_store_error(c, req->id, r, "fax show");
		goto out;
	}
	/* The reference goes in the report: borrowed, given back below. */
	if (ref[0] != '\0') {
		if (o->fax == NULL) {
			o->fax = &report;
			own_report = true;
		}
		stored_ref = o->fax->fax_ref;
		o->fax->fax_ref = ref;
		own_ref = true;
	}
	resp.id = req->id;
	resp.n_orders = 1;
	resp.orders = &o;
	if (job != NULL) {
		ctl_fax_entry(d->fax, job, order_strfax(o->fax_state), &e);
		resp.n_fax_queue = 1;
		resp.fax_queue = &ep;
	}
	ctl_reply(c, &resp);
	if (own_ref)
		o->fax->fax_ref = stored_ref;
	if (own_report)
		o->fax = NULL;
out:
	if (job != NULL)
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
	if (o != NULL)
		twinroute__order__free_unpacked(o, NULL);
}

/* ---- fax retry ------------------------------------------------------ */

/* Why the order's fax cannot be retried, from its fax track now. */
static void
ctl_fax_retry_refused(struct conn *c, const CtlRequest *req, uint64_t id)
{
	struct daemon *d = conn_ctx(c);
	struct store_txn *txn;
	Order *o = NULL;
	char msg[160];
	int r;

	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = order_get(txn, id, &o);
		store_txn_abort(txn);
	}
	if (r == -ENOENT) {
		ctl_audit(c, NULL, true,
		    "order %" PRIu64 " fax retry: no order", id);
		ctl_order_not_found(c, req, id);
		return;
	}
	if (r < 0) {
		ctl_store_error(c, req->id, r, "fax retry");
		return;
	}
	if (o->fax_state == F(NONE))
		snprintf(msg, sizeof(msg), "order %" PRIu64 " has no card fax "
		    "(it is %s, not confirmed)", id, order_strstate(o->state));
	else
		snprintf(msg, sizeof(msg), "order %" PRIu64 ": its fax is %s; "
		    "only a FAX_FAILED or FAX_QUEUED fax can be retried", id,
		    order_strfax(o->fax_state));
	ctl_audit(c, o->member, true, "order %" PRIu64 " fax retry: %s", id,
	    order_strfax(o->fax_state));
	ctl_send_error(c, req->id, E(WRONG_STATE), msg);
	twinroute__order__free_unpacked(o, NULL);
}

void
ctl_fax_retry(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	char actor[64], msg[96];
	Order *o = NULL;
	uint64_t id, seq = 0;
	int r;

	if (ctl_order_target(c, req, &id) < 0)
		return;
	if (d->fax == NULL) {
		ctl_audit(c, NULL, true,
		    "order %" PRIu64 " fax retry: no fax dispatcher", id);
		ctl_send_error(c, req->id, E(UNSUPPORTED), "the card route is "
		    "not running: no fax dispatcher");
		return;
	}
	ctl_actor(c, actor, sizeof(actor));
	r = fax_dispatcher_retry(d->fax, id, actor, &seq, &o);
	switch (r) {
	case 0:
		break;
	case -ENOENT:
		ctl_audit(c, NULL, true,
		    "order %" PRIu64 " fax retry: no order", id);
		ctl_order_not_found(c, req, id);
		return;
	case -EBUSY:
		snprintf(msg, sizeof(msg), "order %" PRIu64 ": the fax is in a "
		    "call now", id);
		ctl_audit(c, NULL, true,
		    "order %" PRIu64 " fax retry: in a call", id);
		ctl_send_error(c, req->id, E(WRONG_STATE), msg);
		return;
	case -ORDER_EFORBIDDEN:
		ctl_fax_retry_refused(c, req, id);
		return;
	default:
		ctl_audit(c, NULL, true, "order %" PRIu64 " fax retry: %s", id,
		    tr_strerror(r));
		ctl_store_error(c, req->id, r, "fax retry");
		return;
	}
	log_info("control: order %" PRIu64 " fax queued again", id);
	ctl_audit(c, o ? o->member : NULL, false,
	    "order %" PRIu64 " fax queued again", id);
	resp.id = req->id;
	if (o != NULL) {
		resp.n_orders = 1;
		resp.orders = &o;
	}
	ctl_reply_durable(c, seq, &resp);
	if (o != NULL)
		twinroute__order__free_unpacked(o, NULL);
}

/* ---- modem list ----------------------------------------------------- */

void
ctl_modem_list(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	size_t n = d->fax ? fax_dispatcher_n_modems(d->fax) : 0;
	_cleanup_free_ struct modem_info *info = calloc(n ? n : 1,
	    sizeof(*info));
	_cleanup_free_ Twinroute__Ctl__ModemStatus *ms = calloc(n ? n : 1,
	    sizeof(*ms));
	_cleanup_free_ Twinroute__Ctl__ModemStatus **p = calloc(n ? n : 1,
	    sizeof(*p));
	uint64_t now = clock_monotonic_ms();

	if (info == NULL || ms == NULL || p == NULL) {
		ctl_send_error(c, req->id, E(INTERNAL), "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct modem_info *mi = &info[i];
		uint64_t order_id = 0;

		fax_dispatcher_modem(d->fax, i, &info[i], &order_id);
		twinroute__ctl__modem_status__init(&ms[i]);
		/* Borrowed from the modems and info[]: sent before both go. */
		ms[i].name = unconst(mi->name ? mi->name : "");
		ms[i].device = unconst(mi->device ? mi->device : "");
		ms[i].state = unconst(modem_strstate(mi->state));
		ms[i].flow = unconst(mi->flow ? mi->flow : "");
		ms[i].speed = mi->speed;
		ms[i].state_seconds = now > mi->since_ms ?
		    (now - mi->since_ms) / 1000 : 0;
		ms[i].calls = mi->calls;
		ms[i].ok = mi->ok;
		ms[i].failed = mi->failed;
		ms[i].last_result = info[i].last_result;
		ms[i].last_reason = info[i].last_reason;
		ms[i].order_id = order_id;
		p[i] = &ms[i];
	}
	resp.id = req->id;
	resp.n_modems = n;
	resp.modems = p;
	ctl_reply(c, &resp);
}
