/* SPDX-License-Identifier: ISC */
/* ctl_provider.c -- control handlers: provider credentials, outbox, ledger */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "catalog/catalog.h"
#include "common/errcode.h"
#include "common/log.h"
#include "common/macro.h"
#include "ctl/ctl.h"
#include "ctl/ctl_check.h"
#include "ctl/ctl_server.h"
#include "daemon.h"
#include "order/ledger.h"
#include "provider/provider.h"
#include "store/store.h"

#define E(x) TWINROUTE__ERROR_CODE__ERR_##x

/* Sessions and queue entries one reply lists at most. */
#define CTL_SESSIONS_MAX 100000
#define CTL_DISPATCH_LIST_MAX 100000
/* Room left in a reply frame for the fields around a list. */
#define CTL_LIST_SLACK (64u * 1024u)
/* Characters of a token: base64url of PROVIDER_TOKEN_BYTES, no padding. */
#define TOKEN_TEXT_LEN ((PROVIDER_TOKEN_BYTES * 4 + 2) / 3)

bool
ctl_provider_known(struct conn *c, const CtlRequest *req, bool change)
{
	struct daemon *d = conn_ctx(c);
	char msg[128];

	if (req->target[0] != '\0' &&
	    catalog_provider(d->catalog, req->target) != NULL)
		return true;
	if (req->target[0] == '\0')
		snprintf(msg, sizeof(msg), "a provider ID is needed");
	else
		snprintf(msg, sizeof(msg), "no provider %.64s", req->target);
	if (change)
		ctl_audit(c, NULL, true, "%s %.64s: %s",
		    ctl_cmds[req->command].name, req->target, msg);
	ctl_send_error(c, req->id, req->target[0] ? E(NOT_FOUND) :
	    E(BAD_REQUEST), msg);
	return false;
}

/*
 * Read the provider's ProviderAuth in txn, let edit change the copy, write
 * it back. A provider without a record starts from an empty one.
 */
static int
ctl_auth_update(struct store_txn *txn, const char *provider_id,
    ctl_auth_edit_fn edit, void *arg)
{
	ProviderAuth *old = NULL, a = TWINROUTE__STORE__PROVIDER_AUTH__INIT;
	int r;

	r = provider_auth_get(txn, provider_id, &old);
	if (r < 0 && r != -ENOENT)
		return r;
	if (old != NULL)
		a = *old;
	edit(&a, arg);
	a.updated_unix = (uint64_t)time(NULL);
	r = provider_auth_put(txn, provider_id, &a);
	if (old != NULL)
		twinroute__store__provider_auth__free_unpacked(old, NULL);
	return r;
}

int
ctl_auth_write(struct conn *c, const char *provider_id,
    ctl_auth_edit_fn edit, void *arg, uint64_t *ret_seq)
{
	struct daemon *d = conn_ctx(c);
	struct store_txn *txn;
	int r;

	r = store_txn_begin(d->store, 0, &txn);
	if (r < 0)
		return r;
	r = ctl_auth_update(txn, provider_id, edit, arg);
	if (r < 0) {
		store_txn_abort(txn);
		return r;
	}
	return store_txn_commit(txn, ret_seq);
}

/* ---- provider cert -------------------------------------------------- */

static void
auth_set_cert(ProviderAuth *a, void *arg)
{
	uint8_t *fp = arg;

	a->cert_sha256.data = fp;
	a->cert_sha256.len = fp ? SHA256_DIGEST_LENGTH : 0;
}

static void
hex(const uint8_t *v, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[v[i] >> 4];
		out[2 * i + 1] = digits[v[i] & 15];
	}
	out[2 * n] = '\0';
}

void
ctl_provider_cert(struct conn *c, const CtlRequest *req)
{
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	uint8_t fp[SHA256_DIGEST_LENGTH];
	char fp_hex[2 * SHA256_DIGEST_LENGTH + 1];
	const char *why = NULL;
	uint64_t seq;
	int r;

	if (!ctl_provider_known(c, req, true))
		return;
	why = ctl_check_cert(req->remove, req->cert_der.data,
	    req->cert_der.len);
	if (why != NULL) {
		ctl_audit(c, NULL, true, "provider %s certificate: %s",
		    req->target, why);
		ctl_send_error(c, req->id, E(BAD_REQUEST), why);
		return;
	}
	if (!req->remove)
		SHA256(req->cert_der.data, req->cert_der.len, fp);
	r = ctl_auth_write(c, req->target, auth_set_cert,
	    req->remove ? NULL : fp, &seq);
	if (r < 0) {
		ctl_audit(c, NULL, true, "provider %s certificate: %s",
		    req->target, tr_strerror(r));
		ctl_store_error(c, req->id, r, "provider cert");
		return;
	}
	if (req->remove) {
		log_info("control: provider %s certificate pin removed",
		    req->target);
		ctl_audit(c, NULL, false, "provider %s certificate pin removed",
		    req->target);
	} else {
		hex(fp, sizeof(fp), fp_hex);
		log_info("control: provider %s certificate pinned sha256:%s",
		    req->target, fp_hex);
		ctl_audit(c, NULL, false, "provider %s certificate pinned "
		    "sha256:%s", req->target, fp_hex);
		resp.cert_sha256.data = fp;
		resp.cert_sha256.len = sizeof(fp);
	}
	/* A session opened with the old certificate does not outlive it. */
	providers_drop(((struct daemon *)conn_ctx(c))->providers, req->target,
	    "certificate");
	resp.id = req->id;
	ctl_reply_durable(c, seq, &resp);
}

/* ---- provider token ------------------------------------------------- */

static void
auth_set_token(ProviderAuth *a, void *arg)
{
	uint8_t *hash = arg;

	a->token_hash.data = hash;
	a->token_hash.len = hash ? SHA256_DIGEST_LENGTH : 0;
}

/* RFC 4648 base64url of n bytes, without padding: (4n + 2) / 3 chars. */
static void
base64url(const uint8_t *v, size_t n, char *out)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t bits;
	size_t i, o = 0;

	for (i = 0; i + 3 <= n; i += 3) {
		bits = (uint32_t)v[i] << 16 | (uint32_t)v[i + 1] << 8 | v[i + 2];
		out[o++] = b64[bits >> 18 & 63];
		out[o++] = b64[bits >> 12 & 63];
		out[o++] = b64[bits >> 6 & 63];
		out[o++] = b64[bits & 63];
	}
	if (n - i == 1) {
		bits = (uint32_t)v[i] << 16;
		out[o++] = b64[bits >> 18 & 63];
		out[o++] = b64[bits >> 12 & 63];
	} else if (n - i == 2) {
		bits = (uint32_t)v[i] << 16 | (uint32_t)v[i + 1] << 8;
		out[o++] = b64[bits >> 18 & 63];
		out[o++] = b64[bits >> 12 & 63];
		out[o++] = b64[bits >> 6 & 63];
	}
	out[o] = '\0';
}

void
ctl_provider_token(struct conn *c, const CtlRequest *req)
{
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	uint8_t raw[PROVIDER_TOKEN_BYTES], hash[SHA256_DIGEST_LENGTH];
	char token[TOKEN_TEXT_LEN + 1];
	uint64_t seq;
	int r;

	if (!ctl_provider_known(c, req, true))
		return;
	if (!req->remove) {
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			ctl_audit(c, NULL, true, "provider %s token: no "
			    "random bytes", req->target);
			ctl_send_error(c, req->id, E(INTERNAL),
			    "cannot make random bytes");
			return;
		}
		base64url(raw, sizeof(raw), token);
		OPENSSL_cleanse(raw, sizeof(raw));
		/* The provider sends the text: its bytes are what is hashed. */
		SHA256((const uint8_t *)token, strlen(token), hash);
	}
	r = ctl_auth_write(c, req->target, auth_set_token,
	    req->remove ? NULL : hash, &seq);
	if (r < 0) {
		ctl_audit(c, NULL, true, "provider %s token: %s", req->target,
		    tr_strerror(r));
		ctl_store_error(c, req->id, r, "provider token");
		goto out;
	}
	/* Never the token itself, here or anywhere. */
	log_info("control: provider %s token %s", req->target,
	    req->remove ? "removed" : "issued");
	ctl_audit(c, NULL, false, "provider %s token %s", req->target,
	    req->remove ? "removed" : "issued");
	/* Nor one opened with the old token. */
	providers_drop(((struct daemon *)conn_ctx(c))->providers, req->target,
	    "token");
	resp.id = req->id;
	if (!req->remove)
		resp.provider_token = token;
	/* The reply is packed here: the token may be wiped after. */
	ctl_reply_durable(c, seq, &resp);
out:
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(hash, sizeof(hash));
}

/* ---- provider sessions ---------------------------------------------- */

struct session_list {
	Twinroute__Ctl__ProviderSession *v;
	Twinroute__Ctl__ProviderSession **p;
	size_t n, cap;
	int err;
};

static char *
dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static void
session_add(const struct provider_session_info *i, void *arg)
{
	struct session_list *l = arg;
	Twinroute__Ctl__ProviderSession *s;

	if (l->err < 0 || l->n == CTL_SESSIONS_MAX)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;

		s = reallocarray(l->v, cap, sizeof(*s));
		if (s == NULL) {
			l->err = -ENOMEM;
			return;
		}
		l->v = s;
		l->cap = cap;
	}
	s = &l->v[l->n];
	twinroute__ctl__provider_session__init(s);
	/* The session's strings are copied: the reply owns what it sends. */
	s->provider_id = dup_or_empty(i->provider_id);
	s->peer = dup_or_empty(i->peer);
	s->method = dup_or_empty(i->method);
	if (!s->provider_id || !s->peer || !s->method) {
		free(s->provider_id);
		free(s->peer);
		free(s->method);
		l->err = -ENOMEM;
		return;
	}
	s->since_unix_ms = i->since_unix_ms;
	s->in_flight = i->in_flight;
	s->pending = i->pending;
	s->dispatched = i->dispatched;
	l->n++;
}

void
ctl_provider_sessions(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	struct session_list l = { 0 };

	/* No provider channel: no session. */
	if (d->providers != NULL)
		providers_sessions(d->providers, session_add, &l);
	if (l.err == 0 && l.n > 0) {
		l.p = calloc(l.n, sizeof(*l.p));
		if (l.p == NULL)
			l.err = -ENOMEM;
	}
	if (l.err < 0) {
		ctl_send_error(c, req->id, E(INTERNAL), "out of memory");
	} else {
		for (size_t i = 0; i < l.n; i++)
			l.p[i] = &l.v[i];
		resp.id = req->id;
		resp.n_provider_sessions = l.n;
		resp.provider_sessions = l.p;
		ctl_reply(c, &resp);
	}
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].provider_id);
		free(l.v[i].peer);
		free(l.v[i].method);
	}
	free(l.p);
	free(l.v);
}

/* ---- queue provider ------------------------------------------------- */

struct dispatch_scan {
	const char *provider_id;    /* NULL: every provider */
	Twinroute__Store__DispatchJob **jobs;
	size_t n, cap;
	uint64_t total;
};

static int
dispatch_scan_cb(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct dispatch_scan *q = arg;
	Twinroute__Store__DispatchJob *job;

	/* key: provider id, NUL, order id (order_dispatch_key()). */
	if (key_len < 10 || ((const uint8_t *)key)[key_len - 9] != '\0')
		return 0;
	job = twinroute__store__dispatch_job__unpack(NULL, val_len, val);
	if (job == NULL)
		return -TR_EBADMSG;
	if (q->provider_id != NULL &&
	    strcmp(job->provider_id, q->provider_id) != 0) {
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
		return 0;
	}
	q->total++;
	if (q->n == CTL_DISPATCH_LIST_MAX) {
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
		return 0;
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64;
		Twinroute__Store__DispatchJob **v;

		v = reallocarray(q->jobs, cap, sizeof(*v));
		if (v == NULL) {
			twinroute__store__dispatch_job__free_unpacked(job, NULL);
			return -ENOMEM;
		}
		q->jobs = v;
		q->cap = cap;
	}
	q->jobs[q->n++] = job;
	return 0;
}

void
ctl_queue_provider(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	struct dispatch_scan q = { 0 };
	Twinroute__Ctl__DispatchQueueEntry *e = NULL, **p = NULL;
	struct store_txn *txn;
	size_t n = 0, bytes = 0;
	int r;

	if (req->target[0] != '\0') {
		if (!ctl_provider_known(c, req, false))
			return;
		q.provider_id = req->target;
	}
	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = store_iter(txn, STORE_DB_OUTBOX_PROVIDER, NULL, 0,
		    dispatch_scan_cb, &q);
		store_txn_abort(txn);
	}
	if (r == 0) {
		e = calloc(q.n ? q.n : 1, sizeof(*e));
		p = calloc(q.n ? q.n : 1, sizeof(*p));
		if (e == NULL || p == NULL)
			r = -ENOMEM;
	}
	if (r < 0) {
		ctl_store_error(c, req->id, r, "queue provider");
		goto out;
	}
	for (; n < q.n; n++) {
		const Twinroute__Store__DispatchJob *job = q.jobs[n];

		twinroute__ctl__dispatch_queue_entry__init(&e[n]);
		e[n].order_id = job->order_id;
		e[n].provider_id = job->provider_id;
		e[n].attempts = job->attempts;
		e[n].created_unix_ms = job->created_unix_ms;
		bytes += twinroute__ctl__dispatch_queue_entry__get_packed_size(
		    &e[n]) + 8;
		if (bytes > CTL_FRAME_MAX - CTL_LIST_SLACK)
			break;
		p[n] = &e[n];
	}
	resp.id = req->id;
	resp.n_dispatch_queue = n;
	resp.dispatch_queue = p;
	resp.dispatch_total = q.total;
	ctl_reply(c, &resp);
out:
	for (size_t i = 0; i < q.n; i++)
		twinroute__store__dispatch_job__free_unpacked(q.jobs[i], NULL);
	free(q.jobs);
	free(e);
	free(p);
}

/* ---- ledger --------------------------------------------------------- */

void
ctl_ledger(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Ctl__Ledger lw = TWINROUTE__CTL__LEDGER__INIT;
	struct ledger_query q = { .provider_id = req->target };
	const char *why;
	struct ledger l;
	Twinroute__Ctl__LedgerEntry *e = NULL, **ep = NULL;
	Twinroute__Ctl__LedgerTotal *t = NULL, **tp = NULL;
	Twinroute__Money *m = NULL;
	struct store_txn *txn;
	size_t n = 0, bytes = 0;
	int r;

	if (!ctl_provider_known(c, req, false))
		return;
	why = ctl_check_ledger(req->ledger, &q.from_ms, &q.to_ms);
	if (why != NULL) {
		ctl_send_error(c, req->id, E(BAD_REQUEST), why);
		return;
	}
	ledger_init(&l, &q);
	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = ledger_scan(txn, &l);
		store_txn_abort(txn);
	}
	if (r == -EOVERFLOW) {
		ctl_send_error(c, req->id, E(BAD_REQUEST), "ledger: a total "
		    "does not fit in 64 bits: ask for a shorter period");
		goto out;
	}
	if (r == 0) {
		e = calloc(l.n_rows ? l.n_rows : 1, sizeof(*e));
		ep = calloc(l.n_rows ? l.n_rows : 1, sizeof(*ep));
		m = calloc(l.n_rows ? l.n_rows : 1, sizeof(*m));
		t = calloc(l.n_totals ? l.n_totals : 1, sizeof(*t));
		tp = calloc(l.n_totals ? l.n_totals : 1, sizeof(*tp));
		if (!e || !ep || !m || !t || !tp)
			r = -ENOMEM;
	}
	if (r < 0) {
		ctl_store_error(c, req->id, r, "ledger");
		goto out;
	}
	for (size_t i = 0; i < l.n_totals; i++) {
		twinroute__ctl__ledger_total__init(&t[i]);
		t[i].currency = l.totals[i].currency;
		t[i].orders = l.totals[i].orders;
		t[i].fulfilled_minor = l.totals[i].fulfilled;
		t[i].charged_orders = l.totals[i].charged_orders;
		t[i].charged_minor = l.totals[i].charged;
		tp[i] = &t[i];
	}
	for (; n < l.n_rows; n++) {
		struct ledger_row *row = &l.rows[n];

		twinroute__ctl__ledger_entry__init(&e[n]);
		twinroute__money__init(&m[n]);
		m[n].minor = row->amount;
		m[n].currency = row->currency;
		e[n].order_id = row->order_id;
		e[n].fulfilled_unix_ms = row->fulfilled_ms;
		e[n].charged_unix_ms = row->charged_ms;
		e[n].service_id = row->service_id;
		e[n].service_name = row->service_name;
		e[n].quantity = row->quantity;
		e[n].amount = &m[n];
		e[n].state = row->state;
		/* The first that fit in one frame; the totals count all. */
		bytes += twinroute__ctl__ledger_entry__get_packed_size(&e[n]) + 8;
		if (bytes > CTL_FRAME_MAX - CTL_LIST_SLACK)
			break;
		ep[n] = &e[n];
	}
	lw.provider_id = req->target;
	lw.from_unix_ms = q.from_ms;
	lw.to_unix_ms = q.to_ms;
	lw.n_entries = n;
	lw.entries = ep;
	lw.n_totals = l.n_totals;
	lw.totals = tp;
	lw.matched = l.matched;
	lw.rejected = l.rejected;
	lw.truncated = l.truncated || n < l.n_rows;
	resp.id = req->id;
	resp.ledger = &lw;
	ctl_reply(c, &resp);
out:
	ledger_release(&l);
	free(e);
	free(ep);
	free(m);
	free(t);
	free(tp);
}
