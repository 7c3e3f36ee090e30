/* SPDX-License-Identifier: ISC */
/* provider.c -- the provider channel: sessions, dispatch, reports */

/*
 * A provider's agent keeps one TLS session open (net/server.c does the TLS
 * through bufferevent_openssl). After Hello and Auth (a pinned client
 * certificate, or a token whose SHA-256 is in provider_auth), the session
 * registers under its provider id, replacing an older one, and loads its
 * backlog: every DispatchJob of outbox_provider for that provider, oldest
 * order first. At most `window` dispatches are in flight unacknowledged;
 * an Ack moves the order CONFIRMED -> DISPATCHED and removes the job in
 * one transaction, and frees a slot. A job's attempts count is written
 * before each send, so a dispatch sent before (to a session that died, or
 * before a restart) goes out again marked as a redelivery.
 *
 * Reports move the provider's own orders through the state machine
 * (DISPATCHED -> ACCEPTED -> FULFILLED -> CHARGED, or REJECTED); a report
 * the order already reflects answers with the order and changes nothing,
 * so an agent that retries is safe. Replies that change something go out
 * once the change is durable.
 *
 * Heartbeats: a timer sends one to every session idle for `heartbeat`
 * seconds; the listener's idle timeout (three heartbeats) closes a session
 * whose peer has gone silent.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "catalog/catalog.h"
#include "client/session.h"
#include "common/be64.h"
#include "common/clock.h"
#include "common/errcode.h"
#include "common/htab.h"
#include "common/log.h"
#include "common/macro.h"
#include "config-build.h"
#include "config.h"
#include "daemon.h"
#include "member/member.h"
#include "net/durable.h"
#include "net/metrics.h"
#include "net/server.h"
#include "order/order.h"
#include "provider.pb-c.h"
#include "provider/provider.h"
#include "provider/provider_check.h"
#include "store/store.h"

#define ST(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define E(x) TWINROUTE__ERROR_CODE__ERR_##x

typedef Twinroute__Provider__ProviderRequest PRequest;
typedef Twinroute__Provider__ProviderResponse PResponse;

/* One order waiting for, or using, a window slot. */
struct pjob {
	TAILQ_ENTRY(pjob) link;
	uint64_t order_id;
	bool in_flight;
};
TAILQ_HEAD(pjob_list, pjob);

struct psession {
	LIST_ENTRY(psession) link;
	struct providers *p;
	struct conn *conn;
	bool hello;
	bool authed;
	bool control_only;           /* no dispatches, not in by_id */
	char provider_id[64];
	const char *method;
	uint64_t since_ms;
	time_t last_tx;
	struct pjob_list jobs;       /* in flight first, then pending */
	uint32_t in_flight, pending;
	uint64_t dispatched;
};

struct providers {
	struct daemon *d;
	struct htab *by_id;          /* provider id -> psession (authed) */
	LIST_HEAD(, psession) all;
	struct event *tick;
	uint8_t fax_key[32];
	bool fax_key_ok;
};

/* ---- replies -------------------------------------------------------- */

static void
prov_send_error(struct conn *c, uint64_t id, int code, const char *msg)
{
	Twinroute__Error err = TWINROUTE__ERROR__INIT;
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;

	metrics_count_error(METRICS_PROVIDER, code);
	err.code = (Twinroute__ErrorCode)code;
	err.message = unconst(msg);
	err.index = -1;
	resp.id = id;
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ERROR;
	resp.error = &err;
	conn_send(c, &resp.base);
}

static void
prov_send(struct psession *s, PResponse *resp)
{
	s->p->d->requests++;
	s->last_tx = time(NULL);
	if (conn_send(s->conn, &resp->base) < 0)
		conn_close_after_flush(s->conn);
}

static void
prov_not_durable(struct conn *c, uint64_t id, int err)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "the change could not be made durable: %s",
	    tr_strerror(err));
	prov_send_error(c, id, E(STORE), msg);
}

static void
prov_send_durable(struct psession *s, uint64_t seq, PResponse *resp)
{
	s->p->d->requests++;
	s->last_tx = time(NULL);
	if (durable_send(s->conn, s->p->d->store, seq, &resp->base, resp->id,
	    prov_not_durable) < 0)
		prov_send_error(s->conn, resp->id, E(INTERNAL),
		    "out of memory (the change was made)");
}

static void
prov_store_error(struct psession *s, uint64_t id, int r, const char *what)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "%s: %s", what, tr_strerror(r));
	log_err("provider %s: %s", s->provider_id[0] ? s->provider_id : "?",
	    msg);
	prov_send_error(s->conn, id, r == -ENOSPC ? E(STORE_FULL) : E(STORE),
	    msg);
}

/* ---- dispatching ---------------------------------------------------- */

static struct pjob *
session_find_job(struct psession *s, uint64_t order_id)
{
	struct pjob *j;

	TAILQ_FOREACH(j, &s->jobs, link)
		if (j->order_id == order_id)
			return j;
	return NULL;
}

static void
session_add_job(struct psession *s, uint64_t order_id)
{
	struct pjob *j;

	if (session_find_job(s, order_id))
		return;
	j = calloc(1, sizeof(*j));
	if (!j) {
		log_err("provider %s: order %" PRIu64 " waits for the next "
		    "session: out of memory", s->provider_id, order_id);
		return;
	}
	j->order_id = order_id;
	TAILQ_INSERT_TAIL(&s->jobs, j, link);
	s->pending++;
}

static void
session_drop_job(struct psession *s, struct pjob *j)
{
	if (j->in_flight)
		s->in_flight--;
	else
		s->pending--;
	TAILQ_REMOVE(&s->jobs, j, link);
	free(j);
}

/*
 * Build and send the dispatch of one order: count the attempt in its job
 * first. 0 sent; 1 nothing to send (the job is gone: acknowledged,
 * cancelled); <0 error.
 */
static int
session_send_dispatch(struct psession *s, uint64_t order_id)
{
	struct providers *p = s->p;
	Twinroute__Provider__OrderDispatch od =
	    TWINROUTE__PROVIDER__ORDER_DISPATCH__INIT;
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;
	Twinroute__Store__DispatchJob *job = NULL;
	Twinroute__Store__MemberRecord *mem = NULL;
	char ref[PROVIDER_FAX_REF_LEN + 1];
	struct store_txn *txn;
	uint8_t key[ORDER_DISPATCH_KEY_MAX], buf[256];
	const void *val;
	Order *o = NULL;
	size_t len, klen;
	int r;

	klen = order_dispatch_key(s->provider_id, order_id, key);
	r = store_txn_begin(p->d->store, STORE_BATCH, &txn);
	if (r < 0)
		return r;
	r = store_get(txn, STORE_DB_OUTBOX_PROVIDER, key, klen, &val, &len);
	if (r == -ENOENT) {
		store_txn_abort(txn);
		return 1;
	}
	if (r == 0) {
		job = twinroute__store__dispatch_job__unpack(NULL, len, val);
		r = job ? 0 : -EINVAL;
	}
	if (r == 0 && !p->fax_key_ok) {
		r = provider_fax_ref_key(txn, p->fax_key);
		p->fax_key_ok = r == 0;
	}
	if (r == 0)
		r = order_get(txn, order_id, &o);
	if (r == 0)
		r = member_get(txn, o->member, &mem);
	if (r == 0) {
		job->attempts++;
		len = twinroute__store__dispatch_job__get_packed_size(job);
		if (len > sizeof(buf))
			r = -EINVAL;
		else {
			twinroute__store__dispatch_job__pack(job, buf);
			r = store_put(txn, STORE_DB_OUTBOX_PROVIDER, key,
			    klen, buf, len);
		}
	}
	if (r == 0)
		r = store_txn_commit(txn, NULL);
	else
		store_txn_abort(txn);
	if (r == 0) {
		provider_fax_reference(p->fax_key, order_id, ref);
		od.order_id = order_id;
		od.service_id = o->service_id;
		od.service_name = o->service_name;
		od.quantity = o->quantity;
		od.unit_price = o->unit_price;
		od.amount = o->amount;
		od.member_name = mem->name;
		od.member_email = mem->email;
		od.note = o->note;
		od.fax_reference = ref;
		od.attempt = job->attempts;
		od.redelivery = job->attempts > 1;
		for (size_t i = 0; i < o->n_history; i++)
			if (o->history[i]->state == ST(CONFIRMED))
				od.confirmed_unix_ms = o->history[i]->unix_ms;
		resp.body_case =
		    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_DISPATCH;
		resp.dispatch = &od;
		prov_send(s, &resp);
		if (od.redelivery)
			log_info("%016" PRIx64 " redelivered to provider %s "
			    "(attempt %" PRIu32 ", fax reference %s)", order_id,
			    s->provider_id, job->attempts, ref);
		else
			log_info("%016" PRIx64 " dispatched to provider %s "
			    "(fax reference %s)", order_id, s->provider_id,
			    ref);
	}
	if (job)
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
	if (mem)
		twinroute__store__member_record__free_unpacked(mem, NULL);
	if (o)
		twinroute__order__free_unpacked(o, NULL);
	return r;
}

/* Fill the window from the pending jobs. */
static void
session_pump(struct psession *s)
{
	uint32_t window = s->p->d->cfg->provider_window;
	struct pjob *j, *next;

	for (j = TAILQ_FIRST(&s->jobs); j && s->in_flight < window; j = next) {
		int r;

		next = TAILQ_NEXT(j, link);
		if (j->in_flight)
			continue;
		if (conn_is_closing(s->conn))
			return;
		r = session_send_dispatch(s, j->order_id);
		if (r == 1) {
			session_drop_job(s, j);
			continue;
		}
		if (r < 0) {
			log_err("provider %s: order %" PRIu64 ": cannot "
			    "dispatch: %s; the next session tries again",
			    s->provider_id, j->order_id, tr_strerror(r));
			return;
		}
		j->in_flight = true;
		s->pending--;
		s->in_flight++;
	}
}

struct backlog {
	struct psession *s;
	size_t prefix_len;           /* provider id and its NUL */
	const uint8_t *prefix;
};

static int
backlog_cb(const void *key, size_t key_len, const void *val, size_t val_len,
    void *arg)
{
	struct backlog *b = arg;

	(void)val;
	(void)val_len;
	if (key_len != b->prefix_len + 8 ||
	    memcmp(key, b->prefix, b->prefix_len) != 0)
		return 1;       /* past this provider's range */
	session_add_job(b->s, be64_get((const uint8_t *)key + b->prefix_len));
	return 0;
}

static int
session_load_backlog(struct psession *s)
{
	uint8_t key[ORDER_DISPATCH_KEY_MAX];
	size_t klen = order_dispatch_key(s->provider_id, 0, key);
	struct backlog b = { s, klen - 8, key };
	struct store_txn *txn;
	int r;

	r = store_txn_begin(s->p->d->store, STORE_RDONLY, &txn);
	if (r < 0)
		return r;
	r = store_iter(txn, STORE_DB_OUTBOX_PROVIDER, key, klen, backlog_cb,
	    &b);
	store_txn_abort(txn);
	return r;
}

struct confirmed {
	struct providers *p;
	char provider_id[64];
	uint64_t order_id;
};

static void
confirmed_synced(void *arg, int err)
{
	struct confirmed *cf = arg;
	struct psession *s;

	if (err == 0 && cf->p->by_id &&
	    (s = htab_get(cf->p->by_id, cf->provider_id)) != NULL) {
		session_add_job(s, cf->order_id);
		session_pump(s);
	}
	free(cf);
}

void
providers_order_confirmed(struct providers *p, const char *provider_id,
    uint64_t order_id, uint64_t seq)
{
	struct confirmed *cf;

	if (!p || !htab_get(p->by_id, provider_id))
		return;         /* its next session loads it from the store */
	cf = calloc(1, sizeof(*cf));
	if (!cf)
		return;
	cf->p = p;
	snprintf(cf->provider_id, sizeof(cf->provider_id), "%s", provider_id);
	cf->order_id = order_id;
	if (store_after_sync(p->d->store, seq, confirmed_synced, cf) < 0)
		free(cf);
}

/* ---- requests ------------------------------------------------------- */

static void
prov_hello(struct psession *s, const PRequest *req)
{
	const Twinroute__Provider__Hello *h = req->hello;
	Twinroute__Provider__HelloReply hr =
	    TWINROUTE__PROVIDER__HELLO_REPLY__INIT;
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;
	struct daemon *d = s->p->d;

	if (h->version < 1) {
		prov_send_error(s->conn, req->id, E(VERSION),
		    "protocol version 0 not supported; this broker speaks 1");
		return;
	}
	s->hello = true;
	log_debug("%016" PRIx64 " provider hello version=%" PRIu32
	    " agent=%.64s", conn_id(s->conn), h->version, h->agent);
	hr.version = PROVIDER_PROTO_VERSION;
	hr.server = unconst("twinrouted " TR_VERSION);
	hr.max_frame = listener_get_limits(conn_listener(s->conn))->max_frame;
	hr.heartbeat_seconds = d->cfg->provider_heartbeat;
	resp.id = req->id;
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HELLO;
	resp.hello = &hr;
	prov_send(s, &resp);
}

static void
prov_auth(struct psession *s, const PRequest *req)
{
	const Twinroute__Provider__Auth *a = req->auth;
	Twinroute__Provider__AuthReply ar = TWINROUTE__PROVIDER__AUTH_REPLY__INIT;
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;
	struct providers *p = s->p;
	Twinroute__Store__ProviderAuth *pa = NULL;
	const Twinroute__Provider *prov;
	struct psession *old;
	struct store_txn *txn;
	uint8_t fp[32], th[32];
	const char *method = NULL;
	bool have_fp;
	int r;

	if (!s->hello) {
		prov_send_error(s->conn, req->id, E(BAD_REQUEST),
		    "Hello comes first");
		return;
	}
	if (s->authed) {
		prov_send_error(s->conn, req->id, E(BAD_REQUEST),
		    "already authenticated");
		return;
	}
	prov = a->provider_id[0] ? catalog_provider(p->d->catalog,
	    a->provider_id) : NULL;
	have_fp = conn_peer_cert_sha256(s->conn, fp) == 0;
	r = store_txn_begin(p->d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		if (prov)
			r = provider_auth_get(txn, a->provider_id, &pa);
		store_txn_abort(txn);
	}
	if (r < 0 && r != -ENOENT) {
		prov_store_error(s, req->id, r, "auth");
		return;
	}
	if (pa && a->token[0]) {
		unsigned int n = sizeof(th);

		EVP_Digest(a->token, strlen(a->token), th, &n, EVP_sha256(),
		    NULL);
		if (pa->token_hash.len == sizeof(th) &&
		    CRYPTO_memcmp(th, pa->token_hash.data, sizeof(th)) == 0)
			method = "token";
		OPENSSL_cleanse(th, sizeof(th));
	} else if (pa && have_fp && pa->cert_sha256.len == sizeof(fp) &&
	    CRYPTO_memcmp(fp, pa->cert_sha256.data, sizeof(fp)) == 0) {
		method = "certificate";
	}
	if (pa)
		twinroute__store__provider_auth__free_unpacked(pa, NULL);
	if (!method || !prov || !prov->active) {
		/* One answer for every failure: nothing to probe. */
		log_warn("provider auth refused: id=%.64s peer=%s method=%s%s",
		    a->provider_id, conn_peer_name(s->conn),
		    a->token[0] ? "token" : "certificate",
		    a->token[0] || have_fp ? "" : " (no client certificate)");
		prov_send_error(s->conn, req->id, E(AUTH),
		    "not authenticated: unknown provider, or no matching "
		    "pinned certificate or token");
		conn_close_after_flush(s->conn);
		return;
	}
	snprintf(s->provider_id, sizeof(s->provider_id), "%s", a->provider_id);
	s->authed = true;
	s->method = method;
	s->since_ms = clock_realtime_ms();
	if (a->control_only) {
		/* Reports and services only: no dispatches, no takeover. */
		s->control_only = true;
		log_info("provider %s: control session from %s (%s)",
		    s->provider_id, conn_peer_name(s->conn), method);
		ar.provider_id = s->provider_id;
		ar.method = unconst(method);
		resp.id = req->id;
		resp.body_case =
		    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_AUTH;
		resp.auth = &ar;
		prov_send(s, &resp);
		return;
	}
	old = htab_get(p->by_id, a->provider_id);
	if (old) {
		log_info("provider %s: new session from %s replaces the one "
		    "from %s", a->provider_id, conn_peer_name(s->conn),
		    conn_peer_name(old->conn));
		htab_del(p->by_id, old->provider_id);
		old->authed = false;
		prov_send_error(old->conn, 0, E(REPLACED),
		    "a newer session of this provider took over");
		conn_close_after_flush(old->conn);
		while (!TAILQ_EMPTY(&old->jobs))
			session_drop_job(old, TAILQ_FIRST(&old->jobs));
	}
	if (htab_put(p->by_id, s->provider_id, s) < 0) {
		s->authed = false;
		prov_send_error(s->conn, req->id, E(INTERNAL), "out of memory");
		conn_close_after_flush(s->conn);
		return;
	}
	r = session_load_backlog(s);
	if (r < 0)
		log_err("provider %s: cannot read its backlog: %s",
		    s->provider_id, tr_strerror(r));
	log_info("provider %s connected from %s (%s), %" PRIu32 " dispatches "
	    "waiting", s->provider_id, conn_peer_name(s->conn), method,
	    s->pending);
	ar.provider_id = s->provider_id;
	ar.method = unconst(method);
	ar.window = p->d->cfg->provider_window;
	ar.pending = s->pending;
	resp.id = req->id;
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_AUTH;
	resp.auth = &ar;
	prov_send(s, &resp);
	session_pump(s);
}

/*
 * Read the session's provider's order id in a write transaction: the
 * error reply is sent when it cannot be used (not found, or another
 * provider's: both ERR_FORBIDDEN / NOT_FOUND as the code says).
 */
static Order *
prov_order_load(struct psession *s, uint64_t rid, uint64_t id,
    struct store_txn *txn)
{
	Order *o = NULL;
	char msg[96];
	int r;

	r = order_get(txn, id, &o);
	if (r == -ENOENT) {
		snprintf(msg, sizeof(msg), "no order %" PRIu64, id);
		prov_send_error(s->conn, rid, E(NOT_FOUND), msg);
		return NULL;
	}
	if (r < 0) {
		prov_store_error(s, rid, r, "order");
		return NULL;
	}
	if (strcmp(o->provider_id, s->provider_id) != 0) {
		snprintf(msg, sizeof(msg), "order %" PRIu64 " is another "
		    "provider's", id);
		log_warn("provider %s: refused: %s", s->provider_id, msg);
		prov_send_error(s->conn, rid, E(FORBIDDEN), msg);
		twinroute__order__free_unpacked(o, NULL);
		return NULL;
	}
	return o;
}

static void
prov_ack(struct psession *s, const PRequest *req)
{
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;
	Twinroute__Provider__Ok ok = TWINROUTE__PROVIDER__OK__INIT;
	uint64_t id = req->ack->order_id, seq = 0;
	uint8_t key[ORDER_DISPATCH_KEY_MAX];
	struct store_txn *txn;
	struct pjob *j;
	const void *val;
	size_t len, klen;
	Order *o;
	int r;

	r = store_txn_begin(s->p->d->store, STORE_BATCH, &txn);
	if (r < 0) {
		prov_store_error(s, req->id, r, "ack");
		return;
	}
	o = prov_order_load(s, req->id, id, txn);
	if (!o) {
		store_txn_abort(txn);
		return;
	}
	klen = order_dispatch_key(o->provider_id, id, key);
	r = store_get(txn, STORE_DB_OUTBOX_PROVIDER, key, klen, &val, &len);
	if (r == 0) {
		r = store_del(txn, STORE_DB_OUTBOX_PROVIDER, key, klen);
		if (r == 0 && o->state == ST(CONFIRMED))
			r = order_enter_state(txn, o, ST(DISPATCHED),
			    "provider: acknowledged", clock_realtime_ms());
		if (r == 0)
			r = store_txn_commit(txn, &seq);
		else
			store_txn_abort(txn);
		if (r < 0) {
			prov_store_error(s, req->id, r, "ack");
			twinroute__order__free_unpacked(o, NULL);
			return;
		}
		if (o->state == ST(DISPATCHED)) {
			client_order_changed(s->p->d, seq, o, ST(CONFIRMED),
			    "provider: acknowledged");
			s->dispatched++;
			log_info("%016" PRIx64 " acknowledged by provider %s",
			    id, s->provider_id);
		}
	} else {
		store_txn_abort(txn);
		if (r != -ENOENT) {
			prov_store_error(s, req->id, r, "ack");
			twinroute__order__free_unpacked(o, NULL);
			return;
		}
		/* Acknowledged before (a redelivery): fine, unless the
		 * order was never dispatched at all. */
		if (o->state == ST(CONFIRMED) || o->state == ST(AUTHORIZED) ||
		    o->state == ST(AWAITING_CONFIRMATION) ||
		    o->state == ST(RECEIVED)) {
			char msg[96];

			snprintf(msg, sizeof(msg), "order %" PRIu64 " is %s: "
			    "nothing was dispatched", id,
			    order_strstate(o->state));
			prov_send_error(s->conn, req->id, E(WRONG_STATE), msg);
			twinroute__order__free_unpacked(o, NULL);
			return;
		}
	}
	twinroute__order__free_unpacked(o, NULL);
	if ((j = session_find_job(s, id)) != NULL)
		session_drop_job(s, j);
	resp.id = req->id;
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_OK;
	resp.ok = &ok;
	if (seq)
		prov_send_durable(s, seq, &resp);
	else
		prov_send(s, &resp);
	session_pump(s);
}

static void
prov_report(struct psession *s, const PRequest *req)
{
	const Twinroute__Provider__Report *rp = req->report;
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;
	char cause[ORDER_CAUSE_MAX], msg[160];
	const char *what, *why;
	struct store_txn *txn;
	order_state to, from;
	uint64_t seq;
	Order *o;
	int r;

	if (provider_check_report(rp, &to, &what, &why) < 0) {
		prov_send_error(s->conn, req->id, E(BAD_REQUEST), why);
		return;
	}
	r = store_txn_begin(s->p->d->store, STORE_BATCH, &txn);
	if (r < 0) {
		prov_store_error(s, req->id, r, "report");
		return;
	}
	o = prov_order_load(s, req->id, rp->order_id, txn);
	if (!o) {
		store_txn_abort(txn);
		return;
	}
	from = o->state;
	resp.id = req->id;
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ORDER;
	if (from == to) {
		/* Reported before: the same answer, nothing changes. */
		store_txn_abort(txn);
		resp.order = o;
		prov_send(s, &resp);
		twinroute__order__free_unpacked(o, NULL);
		return;
	}
	if (to == ST(REJECTED))
		snprintf(cause, sizeof(cause), "provider: rejected: %s",
		    rp->reason);
	else
		snprintf(cause, sizeof(cause), "provider: %s", what);
	r = order_enter_state(txn, o, to, cause, clock_realtime_ms());
	if (r == 0)
		r = store_txn_commit(txn, &seq);
	else
		store_txn_abort(txn);
	if (r == -ORDER_EFORBIDDEN) {
		snprintf(msg, sizeof(msg), "order %" PRIu64 " is %s: it cannot "
		    "be %s now", rp->order_id, order_strstate(from), what);
		prov_send_error(s->conn, req->id, E(WRONG_STATE), msg);
	} else if (r < 0) {
		prov_store_error(s, req->id, r, "report");
	} else {
		client_order_changed(s->p->d, seq, o, from, cause);
		log_info("%016" PRIx64 " %s by provider %s", o->id, what,
		    s->provider_id);
		resp.order = o;
		prov_send_durable(s, seq, &resp);
	}
	twinroute__order__free_unpacked(o, NULL);
}

static void
prov_list_services_reply(struct psession *s, uint64_t rid, uint64_t seq)
{
	Twinroute__Provider__ServiceList sl =
	    TWINROUTE__PROVIDER__SERVICE_LIST__INIT;
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;
	const Twinroute__Service **v = NULL;
	size_t n = 0, cap = 64;
	bool more = true;

	while (more) {
		const Twinroute__Service **nv = reallocarray(v, cap,
		    sizeof(*v));

		if (!nv) {
			free(v);
			prov_send_error(s->conn, rid, E(INTERNAL),
			    "out of memory");
			return;
		}
		v = nv;
		n = catalog_list_services(s->p->d->catalog, NULL, NULL, true,
		    s->provider_id, v, cap, &more);
		if (more)
			cap *= 2;
	}
	sl.n_services = n;
	sl.services = unconst(v);
	resp.id = rid;
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICES;
	resp.services = &sl;
	if (seq)
		prov_send_durable(s, seq, &resp);
	else
		prov_send(s, &resp);
	free(v);
}

static void
prov_upsert_service(struct psession *s, const PRequest *req)
{
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;
	struct catalog_err cerr = { .index = -1 };
	const Twinroute__Service *in = req->upsert_service->service;
	uint64_t seq = 0;
	bool added = false;
	int code, r;

	r = provider_service_upsert(s->p->d->catalog, s->provider_id, in, &seq,
	    &added, &code, &cerr);
	if (r == -EPERM)
		log_warn("provider %s: refused to change service %.64s of "
		    "provider %s", s->provider_id, in->id,
		    catalog_service(s->p->d->catalog, in->id)->provider_id);
	if (r < 0) {
		prov_send_error(s->conn, req->id, code, cerr.msg);
		return;
	}
	log_info("provider %s: service %s %s", s->provider_id, in->id,
	    added ? "added" : "updated");
	resp.id = req->id;
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICE;
	resp.service = unconst(catalog_service(s->p->d->catalog, in->id));
	prov_send_durable(s, seq, &resp);
}

static void
prov_remove_service(struct psession *s, const PRequest *req)
{
	struct catalog_err cerr = { .index = -1 };
	const char *id = req->remove_service->service_id;
	const Twinroute__Service *old = catalog_service(s->p->d->catalog, id);
	uint64_t seq;
	int r;

	if (!old) {
		prov_send_error(s->conn, req->id, E(NOT_FOUND), "no such "
		    "service");
		return;
	}
	if (strcmp(old->provider_id, s->provider_id) != 0) {
		log_warn("provider %s: refused to remove service %.64s of "
		    "provider %s", s->provider_id, id, old->provider_id);
		prov_send_error(s->conn, req->id, E(FORBIDDEN),
		    "that service belongs to another provider");
		return;
	}
	r = catalog_service_remove(s->p->d->catalog, id, &seq, &cerr);
	if (r < 0) {
		prov_send_error(s->conn, req->id, E(STORE),
		    cerr.msg[0] ? cerr.msg : tr_strerror(r));
		return;
	}
	log_info("provider %s: service %s removed", s->provider_id, id);
	prov_list_services_reply(s, req->id, seq);
}

static void
prov_heartbeat(struct psession *s, const PRequest *req)
{
	Twinroute__Provider__Heartbeat hb = TWINROUTE__PROVIDER__HEARTBEAT__INIT;
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;

	/* An answer only when asked by id; id 0 is the agent's own beat. */
	if (req->id == 0)
		return;
	hb.unix_ms = clock_realtime_ms();
	resp.id = req->id;
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HEARTBEAT;
	resp.heartbeat = &hb;
	prov_send(s, &resp);
}

/* ---- the listener's protocol ---------------------------------------- */

static int
prov_on_accept(struct conn *c)
{
	struct daemon *d = conn_ctx(c);
	struct providers *p = d->providers;
	struct psession *s;

	if (d->stopping) {
		prov_send_error(c, 0, E(SHUTTING_DOWN), "shutting down");
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p = p;
	s->conn = c;
	s->last_tx = time(NULL);
	TAILQ_INIT(&s->jobs);
	LIST_INSERT_HEAD(&p->all, s, link);
	conn_set_data(c, s);
	return 0;
}

static int
prov_on_frame(struct conn *c, const uint8_t *payload, uint32_t len)
{
	struct psession *s = conn_data(c);
	PRequest *req;

	req = twinroute__provider__provider_request__unpack(NULL, len, payload);
	if (!req) {
		prov_send_error(c, 0, E(BAD_FRAME),
		    "the frame is not a ProviderRequest");
		return -1;
	}
	if (req->body_case != TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HELLO &&
	    req->body_case != TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_AUTH &&
	    req->body_case !=
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HEARTBEAT &&
	    !s->authed) {
		prov_send_error(c, req->id, E(NOT_AUTHENTICATED),
		    "Hello and Auth come first");
		twinroute__provider__provider_request__free_unpacked(req, NULL);
		return 0;
	}
	switch (req->body_case) {
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HELLO:
		prov_hello(s, req);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_AUTH:
		prov_auth(s, req);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_ACK:
		prov_ack(s, req);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_REPORT:
		prov_report(s, req);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_UPSERT_SERVICE:
		prov_upsert_service(s, req);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_REMOVE_SERVICE:
		prov_remove_service(s, req);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_LIST_SERVICES:
		prov_list_services_reply(s, req->id, 0);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HEARTBEAT:
		prov_heartbeat(s, req);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY__NOT_SET:
	case _TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY__CASE_IS_INT_SIZE:
	default:
		prov_send_error(c, req->id, E(UNSUPPORTED),
		    "unknown request type");
		break;
	}
	twinroute__provider__provider_request__free_unpacked(req, NULL);
	return 0;
}

static void
prov_on_close(struct conn *c)
{
	struct psession *s = conn_data(c);

	if (!s)
		return;
	if (s->authed && !s->control_only) {
		log_info("provider %s disconnected (%" PRIu32 " dispatches "
		    "unacknowledged, %" PRIu32 " waiting)", s->provider_id,
		    s->in_flight, s->pending);
		htab_del(s->p->by_id, s->provider_id);
	}
	while (!TAILQ_EMPTY(&s->jobs))
		session_drop_job(s, TAILQ_FIRST(&s->jobs));
	LIST_REMOVE(s, link);
	conn_set_data(c, NULL);
	free(s);
}

const struct listener_ops provider_listener_ops = {
	.name = "provider",
	.on_accept = prov_on_accept,
	.on_frame = prov_on_frame,
	.send_error = prov_send_error,
	.on_close = prov_on_close,
};

/* ---- heartbeats ----------------------------------------------------- */

static void
providers_tick(evutil_socket_t fd, short what, void *arg)
{
	struct providers *p = arg;
	Twinroute__Provider__Heartbeat hb = TWINROUTE__PROVIDER__HEARTBEAT__INIT;
	PResponse resp = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__INIT;
	time_t now = time(NULL);
	struct psession *s;

	(void)fd;
	(void)what;
	hb.unix_ms = clock_realtime_ms();
	resp.body_case = TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HEARTBEAT;
	resp.heartbeat = &hb;
	LIST_FOREACH(s, &p->all, link) {
		if (now - s->last_tx < (time_t)p->d->cfg->provider_heartbeat ||
		    conn_is_closing(s->conn))
			continue;
		s->last_tx = now;
		if (conn_send(s->conn, &resp.base) < 0)
			conn_close_after_flush(s->conn);
	}
}

int
providers_new(struct daemon *d, struct providers **ret)
{
	struct providers *p;
	struct timeval tv = { .tv_sec = 1 };
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->d = d;
	LIST_INIT(&p->all);
	r = htab_new(16, &p->by_id);
	if (r < 0) {
		free(p);
		return r;
	}
	p->tick = event_new(d->base, -1, EV_PERSIST, providers_tick, p);
	if (!p->tick || event_add(p->tick, &tv) < 0) {
		providers_free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

void
providers_free(struct providers *p)
{
	if (!p)
		return;
	if (p->tick)
		event_free(p->tick);
	p->by_id = htab_free(p->by_id);
	OPENSSL_cleanse(p->fax_key, sizeof(p->fax_key));
	free(p);
}

unsigned
providers_drop(struct providers *p, const char *provider_id,
    const char *method)
{
	struct psession *s;
	unsigned n = 0;

	if (!p)
		return 0;
	LIST_FOREACH(s, &p->all, link) {
		if (!s->authed || strcmp(s->provider_id, provider_id) != 0 ||
		    strcmp(s->method, method) != 0 || conn_is_closing(s->conn))
			continue;
		prov_send_error(s->conn, 0, E(AUTH), "the provider's "
		    "credentials changed: authenticate again");
		conn_close_after_flush(s->conn);
		n++;
	}
	if (n)
		log_info("provider %s: %s changed: %u session%s closed",
		    provider_id, method, n, n == 1 ? "" : "s");
	return n;
}

void
providers_sessions(const struct providers *p, provider_session_fn cb,
    void *arg)
{
	const struct psession *s;

	if (!p)
		return;
	LIST_FOREACH(s, &p->all, link) {
		struct provider_session_info i = {
			.provider_id = s->provider_id,
			.peer = conn_peer_name(s->conn),
			.method = s->method,
			.since_unix_ms = s->since_ms,
			.in_flight = s->in_flight,
			.pending = s->pending,
			.dispatched = s->dispatched,
		};

		if (s->authed && !s->control_only)
			cb(&i, arg);
	}
}
