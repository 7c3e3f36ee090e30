/* SPDX-License-Identifier: ISC */
/* dispatcher.c -- the card route on the loop: fax jobs, the modem pool */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "catalog/catalog.h"
#include "client/session.h"
#include "common/be64.h"
#include "common/clock.h"
#include "common/dueheap.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/money.h"
#include "daemon.h"
#include "fax/dispatcher.h"
#include "order/order.h"
#include "provider/provider.h"
#include "store/store.h"
#include "vault/faxdoc.h"
#include "vault/vault.h"

#define F(x) TWINROUTE__FAX_STATE__FAX_##x

/* One modem of the pool and the job it carries. */
struct fslot {
	struct fax_dispatcher *f;
	struct modem *modem;
	uint64_t order_id;		/* 0: free */
	uint64_t down_until_ms;		/* after a modem fault: wait */
	bool waiting_vault;		/* the page is being composed */
	struct fax_doc *doc;		/* locked memory; wiped after the call */
	struct class1_page page;
	char number[CLASS1_DIAL_MAX + 1];
	char expect_csi[CLASS1_IDENT_MAX + 1];
	char fax_ref[PROVIDER_FAX_REF_LEN + 1];
};

struct fax_dispatcher {
	struct daemon *d;
	const struct config *cfg;
	struct fax_policy policy;
	struct fslot *slots;
	size_t n_slots;
	struct dueheap heap;
	struct event *timer;
	struct fax_stats st;
	unsigned vault_pending;		/* replies still to come */
	bool closing;			/* freed: wait for vault replies */
};

static uint32_t
fax_random(void)
{
	uint32_t r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)clock_realtime_ms();
	return r;
}

static void fax_pump(struct fax_dispatcher *f);

/* "BUSY", "WRONG_RECIPIENT", ...: the result without its C prefix. */
static const char *
fax_result_name(enum class1_result r)
{
	const char *s = class1_strresult(r);

	return strncmp(s, "CLASS1_", 7) == 0 ? s + 7 : s;
}

/* Copy a string, cut to fit at a UTF-8 character boundary. */
static void
fax_strcpy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	if (src[n] != '\0')
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- the schedule --------------------------------------------------- */

static void
fax_arm(struct fax_dispatcher *f, uint64_t due_ms)
{
	uint64_t now = clock_realtime_ms();
	uint64_t wait = due_ms > now ? due_ms - now : 0;
	struct timeval tv = { .tv_sec = (time_t)(wait / 1000),
		.tv_usec = (suseconds_t)(wait % 1000) * 1000 };
	struct timeval cur, nowtv, left;

	if (event_pending(f->timer, EV_TIMEOUT, &cur)) {
		evutil_gettimeofday(&nowtv, NULL);
		evutil_timersub(&cur, &nowtv, &left);
		if (left.tv_sec < 0 || evutil_timercmp(&left, &tv, <=))
			return;
	}
	event_add(f->timer, &tv);
}

static void
fax_schedule(struct fax_dispatcher *f, uint64_t due_ms, uint64_t id)
{
	if (dueheap_push(&f->heap, due_ms, id) < 0) {
		log_err("%016" PRIx64 " fax: out of memory; the job runs at "
		    "the next restart", id);
		return;
	}
	fax_arm(f, due_ms);
}

static void
fax_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fax_pump(arg);
}

struct fax_kick {
	struct fax_dispatcher *f;
	uint64_t id;
};

static void
fax_kick_synced(void *arg, int err)
{
	struct fax_kick *k = arg;

	if (err == 0 && !k->f->closing)
		fax_schedule(k->f, 0, k->id);
	free(k);
}

void
fax_dispatcher_kick(struct fax_dispatcher *f, uint64_t order_id, uint64_t seq)
{
	struct fax_kick *k;

	if (f == NULL)
		return;
	k = malloc(sizeof(*k));
	if (k == NULL) {
		log_err("%016" PRIx64 " fax: out of memory; the job runs at "
		    "the next restart", order_id);
		return;
	}
	*k = (struct fax_kick){ f, order_id };
	if (store_after_sync(f->d->store, seq, fax_kick_synced, k) < 0)
		fax_kick_synced(k, 0);
}

/* ---- store helpers ---------------------------------------------------- */

/* Commit txn and tell the member's watchers about o's fax change. */
static int
fax_commit(struct fax_dispatcher *f, struct store_txn *txn, const Order *o,
    const char *cause)
{
	uint64_t seq;
	int r;

	r = store_txn_commit(txn, &seq);
	if (r < 0) {
		log_err("%016" PRIx64 " fax: store: %s", o->id, strerror(-r));
		return r;
	}
	client_order_notify(f->d, seq, o, o->state, cause);
	return 0;
}

/* Replace o's FaxReport with the outcome of a call (or a refusal). */
static int
fax_report(Order *o, const struct modem_result *mr, const char *modem,
    const struct fslot *s, int64_t page_unix,
    const Twinroute__Store__DispatchJob *job, const char *result,
    const char *reason, uint64_t now)
{
	Twinroute__FaxReport *rep;

	rep = calloc(1, sizeof(*rep));
	if (rep == NULL)
		return -ENOMEM;
	twinroute__fax_report__init(rep);
	rep->result = strdup(result);
	rep->reason = strdup(reason);
	rep->remote_csi = strdup(mr ? mr->remote_csi : "");
	rep->modem = strdup(modem ? modem : "");
	rep->fax_ref = strdup(s ? s->fax_ref : "");
	if (!rep->result || !rep->reason || !rep->remote_csi || !rep->modem ||
	    !rep->fax_ref) {
		twinroute__fax_report__free_unpacked(rep, NULL);
		return -ENOMEM;
	}
	if (mr != NULL) {
		rep->bps = mr->bps;
		rep->pages = (uint32_t)mr->pages;
		rep->duration_ms = mr->duration_ms;
		rep->compression = mr->compression > 0 ?
		    (uint32_t)mr->compression : 0;
	}
	rep->page_unix = page_unix;
	rep->unix_ms = now;
	if (job != NULL) {
		rep->dials = job->dials;
		rep->tries = job->tries;
	}
	if (o->fax != NULL)
		twinroute__fax_report__free_unpacked(o->fax, NULL);
	o->fax = rep;
	return 0;
}

/* Set a job's last_error (owned the protobuf-c way). */
static int
fax_job_error(Twinroute__Store__DispatchJob *job, const char *why)
{
	return order_set_str(&job->last_error, why);
}

/* Begin a batch txn and read order id with its fax job. On failure
 * nothing is left open or allocated. */
static int
fax_job_open(struct fax_dispatcher *f, uint64_t id, struct store_txn **ret_txn,
    Order **ret_o, Twinroute__Store__DispatchJob **ret_job)
{
	struct store_txn *txn;
	Order *o = NULL;
	int r;

	r = store_txn_begin(f->d->store, STORE_BATCH, &txn);
	if (r < 0)
		return r;
	r = order_get(txn, id, &o);
	if (r == 0)
		r = order_fax_job_get(txn, id, ret_job);
	if (r < 0) {
		store_txn_abort(txn);
		if (o != NULL)
			twinroute__order__free_unpacked(o, NULL);
		return r;
	}
	*ret_txn = txn;
	*ret_o = o;
	return 0;
}

/*
 * End a job that never reached a modem call (or was refused before it):
 * FAX_FAILED, FAX_CANCELLED (the order was cancelled or rejected while
 * its page was composed), or back to FAX_QUEUED until retry_at. From
 * FAX_QUEUED or FAX_DIALING.
 */
static void
fax_settle(struct fax_dispatcher *f, uint64_t id, fax_state to,
    uint64_t retry_at, const char *why)
{
	bool fail = to == F(FAILED);
	Twinroute__Store__DispatchJob *job = NULL;
	struct store_txn *txn;
	Order *o = NULL;
	char cause[ORDER_CAUSE_MAX];
	uint64_t now = clock_realtime_ms();
	int r;

	r = fax_job_open(f, id, &txn, &o, &job);
	if (r < 0)
		goto fail;
	snprintf(cause, sizeof(cause), "fax: %s", why);
	if (fail) {
		r = fax_report(o, NULL, NULL, NULL, 0, job, "FAILED", why, now);
		if (r == 0)
			r = order_fax_enter(txn, o, F(FAILED), cause, now);
	} else if (to == F(CANCELLED)) {
		r = order_fax_enter(txn, o, F(CANCELLED), cause, now);
	} else {
		job->next_attempt_unix_ms = retry_at;
		r = fax_job_error(job, why);
		if (r == 0)
			r = order_fax_job_put(txn, job);
		if (r == 0 && o->fax_state != F(QUEUED))
			r = order_fax_enter(txn, o, F(QUEUED), cause, now);
	}
	if (r < 0) {
		store_txn_abort(txn);
		goto fail;
	}
	if (fax_commit(f, txn, o, cause) == 0) {
		if (fail) {
			f->st.failed++;
			log_warn("%016" PRIx64 " fax: failed: %s", id, why);
		} else if (to == F(QUEUED)) {
			fax_schedule(f, retry_at, id);
		}
	}
	twinroute__store__dispatch_job__free_unpacked(job, NULL);
	twinroute__order__free_unpacked(o, NULL);
	return;
fail:
	if (job != NULL)
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
	if (o != NULL)
		twinroute__order__free_unpacked(o, NULL);
	log_err("%016" PRIx64 " fax: cannot record \"%s\": %s; the job runs "
	    "again at the next restart", id, why, strerror(-r));
}

/* ---- a call ----------------------------------------------------------- */

/* "+81 3-1234-5678" -> international prefix + digits. 0 or -EINVAL. */
static int
fax_dial_number(const char *fax, const char *intl, char *out, size_t size)
{
	size_t n = 0;

	if (*fax == '+') {
		size_t l = strlen(intl);

		if (l >= size)
			return -EINVAL;
		memcpy(out, intl, l);
		n = l;
		fax++;
	}
	for (; *fax; fax++) {
		if (*fax == ' ' || *fax == '-' || *fax == '(' || *fax == ')' ||
		    *fax == '.')
			continue;
		if (*fax < '0' || *fax > '9' || n + 1 >= size)
			return -EINVAL;
		out[n++] = *fax;
	}
	if (n == 0)
		return -EINVAL;
	out[n] = '\0';
	return 0;
}

static void
fax_release(struct fslot *s)
{
	if (s->doc != NULL)
		fax_doc_free(s->doc);
	s->doc = NULL;
	s->page = (struct class1_page){ 0 };
	s->order_id = 0;
	s->waiting_vault = false;
	/* fax_ref stays for the call's report: fax_take sets it anew. */
}

static void
fax_phase_cb(void *arg)
{
	struct fslot *s = arg;
	struct fax_dispatcher *f = s->f;
	struct store_txn *txn;
	Order *o = NULL;
	static const char cause[] = "fax: page data going out";
	int r;

	r = store_txn_begin(f->d->store, STORE_BATCH, &txn);
	if (r < 0)
		goto fail;
	r = order_get(txn, s->order_id, &o);
	if (r == 0 && o->fax_state == F(DIALING))
		r = order_fax_enter(txn, o, F(SENDING), cause,
		    clock_realtime_ms());
	if (r < 0) {
		store_txn_abort(txn);
		goto fail;
	}
	(void)fax_commit(f, txn, o, cause);
	twinroute__order__free_unpacked(o, NULL);
	return;
fail:
	if (o != NULL)
		twinroute__order__free_unpacked(o, NULL);
	log_err("%016" PRIx64 " fax: cannot record SENDING: %s", s->order_id,
	    strerror(-r));
}

static void
fax_done_cb(void *arg, const struct modem_result *mr)
{
	struct fslot *s = arg;
	struct fax_dispatcher *f = s->f;
	Twinroute__Store__DispatchJob *job = NULL;
	struct fax_job_counts counts;
	struct fax_call_outcome oc = {
		.result = mr->result,
		.dialed = mr->dialed,
		.carrier = mr->carrier,
		.modem_fault = mr->modem_fault,
		.pages = mr->pages,
		.pages_wanted = 1,
	};
	enum fax_verdict v;
	struct store_txn *txn;
	Order *o = NULL;
	uint64_t id = s->order_id, now = clock_realtime_ms(), next = 0;
	int64_t page_unix = s->doc ? s->doc->time_unix : 0;
	const char *why = "";
	char cause[ORDER_CAUSE_MAX];
	int r;

	/* The page goes first, whatever happens to the record. */
	fax_release(s);
	f->st.calls++;
	if (mr->modem_fault)
		s->down_until_ms = now + (uint64_t)f->policy.modem_s * 1000;

	r = fax_job_open(f, id, &txn, &o, &job);
	if (r < 0)
		goto fail;
	counts = (struct fax_job_counts){
		.created_ms = job->created_unix_ms,
		.dials = job->dials,
		.tries = job->tries,
		.no_carrier = job->no_carrier,
	};
	v = fax_policy_decide(&f->policy, &counts, &oc, now, fax_random(),
	    &next, &why);
	job->dials = counts.dials;
	job->tries = counts.tries;
	job->no_carrier = counts.no_carrier;

	r = fax_report(o, mr, modem_name(s->modem), s, page_unix, job,
	    fax_result_name(mr->result), mr->reason, now);
	if (r < 0) {
		store_txn_abort(txn);
		goto fail;
	}
	switch (v) {
	case FAX_VERDICT_SENT:
		snprintf(cause, sizeof(cause),
		    "fax: sent, CSI \"%s\", %u bit/s, %zu page", mr->remote_csi,
		    mr->bps, mr->pages);
		if (o->fax_state == F(DIALING))
			r = order_fax_enter(txn, o, F(SENDING), cause, now);
		if (r == 0)
			r = order_fax_enter(txn, o, F(SENT), cause, now);
		break;
	case FAX_VERDICT_RETRY:
		snprintf(cause, sizeof(cause), "fax: %s (%s), retry in %" PRIu64
		    " s", fax_result_name(mr->result), why,
		    (next - now + 999) / 1000);
		job->next_attempt_unix_ms = next;
		r = fax_job_error(job, mr->reason);
		if (r == 0)
			r = order_fax_job_put(txn, job);
		if (r == 0)
			r = order_fax_enter(txn, o, F(QUEUED), cause, now);
		break;
	case FAX_VERDICT_FAIL:
	default:
		snprintf(cause, sizeof(cause), "fax: %s (%s), failed",
		    fax_result_name(mr->result), why);
		r = order_fax_enter(txn, o, F(FAILED), cause, now);
		break;
	}
	if (r < 0) {
		store_txn_abort(txn);
		goto fail;
	}
	if (fax_commit(f, txn, o, cause) == 0) {
		if (v == FAX_VERDICT_SENT) {
			f->st.sent++;
			log_info("%016" PRIx64 " fax: sent to %s (CSI \"%s\"), "
			    "%u bit/s, %" PRIu64 " ms", id, s->number,
			    mr->remote_csi, mr->bps, mr->duration_ms);
		} else if (v == FAX_VERDICT_RETRY) {
			f->st.retried++;
			log_info("%016" PRIx64 " fax: %s: %s; dial %" PRIu32
			    "/%" PRIu32 ", next try in %" PRIu64 " s", id,
			    fax_result_name(mr->result), mr->reason, job->dials,
			    f->policy.max_dials, (next - now + 999) / 1000);
			fax_schedule(f, next, id);
		} else {
			f->st.failed++;
			log_warn("%016" PRIx64 " fax: failed (%s): %s: %s", id,
			    why, fax_result_name(mr->result), mr->reason);
		}
	}
	twinroute__store__dispatch_job__free_unpacked(job, NULL);
	twinroute__order__free_unpacked(o, NULL);
	fax_pump(f);
	return;
fail:
	if (job != NULL)
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
	if (o != NULL)
		twinroute__order__free_unpacked(o, NULL);
	log_err("%016" PRIx64 " fax: cannot record the call's result (%s: "
	    "%s): %s; the job runs again at the next restart", id,
	    fax_result_name(mr->result), mr->reason, strerror(-r));
	fax_pump(f);
}

static void
fax_dispatcher_destroy(struct fax_dispatcher *f)
{
	for (size_t i = 0; i < f->n_slots; i++) {
		fax_release(&f->slots[i]);
		modem_free(f->slots[i].modem);
	}
	free(f->slots);
	dueheap_free(&f->heap);
	if (f->timer != NULL)
		event_free(f->timer);
	free(f);
}

/* Did the order end (CANCELLED, REJECTED) since its job was taken? */
static bool
fax_order_gone(struct fax_dispatcher *f, uint64_t id)
{
	struct store_txn *txn;
	Order *o = NULL;
	bool gone = false;

	if (store_txn_begin(f->d->store, STORE_RDONLY, &txn) < 0)
		return false;
	if (order_get(txn, id, &o) == 0) {
		gone = o->state == TWINROUTE__ORDER_STATE__ORDER_CANCELLED ||
		    o->state == TWINROUTE__ORDER_STATE__ORDER_REJECTED;
		twinroute__order__free_unpacked(o, NULL);
	}
	store_txn_abort(txn);
	return gone;
}

static void
fax_vault_cb(void *arg, struct vault_reply *y)
{
	struct fslot *s = arg;
	struct fax_dispatcher *f = s->f;
	uint64_t id = s->order_id;
	char why[ORDER_CAUSE_MAX];
	int r;

	f->vault_pending--;
	s->waiting_vault = false;
	if (f->closing) {
		if (f->vault_pending == 0)
			fax_dispatcher_destroy(f);
		return;
	}
	if (y->code != VAULT_OK || y->fax_doc == NULL) {
		bool fail = y->code == VAULT_NO_CARD ||
		    y->code == VAULT_BAD_REQUEST || y->code == VAULT_TAMPERED ||
		    y->code == VAULT_NOT_INITIALIZED;

		fax_release(s);
		if (snprintf(why, sizeof(why), "vault: %s: %s",
		    vault_strcode(y->code), y->message) >= (int)sizeof(why))
			log_debug("%016" PRIx64 " fax: reason cut", id);
		fax_settle(f, id, fail ? F(FAILED) : F(QUEUED),
		    clock_realtime_ms() +
		    fax_policy_jitter(&f->policy, f->policy.modem_s,
		    fax_random()), why);
		fax_pump(f);
		return;
	}
	f->st.pages_composed++;
	if (fax_order_gone(f, id)) {
		/* Cancelled or rejected while the page was composed: the
		 * card data stays home (the doc is wiped after this call). */
		fax_release(s);
		fax_settle(f, id, F(CANCELLED), 0,
		    "the order ended before the call");
		fax_pump(f);
		return;
	}
	s->doc = TAKE_PTR(y->fax_doc);
	s->page = (struct class1_page){
		.t4_1d = s->doc->t4_1d,
		.len_1d = s->doc->len_1d,
		.t4_2d = s->doc->t4_2d,
		.len_2d = s->doc->len_2d,
	};
	r = modem_call(s->modem, s->number, s->expect_csi, &s->page, 1,
	    fax_phase_cb, fax_done_cb, s);
	if (r < 0) {
		fax_release(s);
		snprintf(why, sizeof(why), "modem %s: %s",
		    modem_name(s->modem), strerror(-r));
		fax_settle(f, id, r == -EINVAL ? F(FAILED) : F(QUEUED),
		    clock_realtime_ms() +
		    fax_policy_jitter(&f->policy, f->policy.modem_s,
		    fax_random()), why);
		fax_pump(f);
	}
}

/*
 * Take job id for slot s (NULL: no modem exists). Returns true when the
 * slot is now busy with it.
 */
static bool
fax_take(struct fax_dispatcher *f, struct fslot *s, uint64_t id)
{
	Twinroute__Store__DispatchJob *job = NULL;
	Twinroute__Store__ProviderAuth *auth = NULL;
	const Twinroute__Provider *p;
	struct vault_request q = { .op = VAULT_OP_FAX_PAGE };
	struct store_txn *txn;
	Order *o = NULL;
	uint8_t key[32];
	uint64_t now = clock_realtime_ms();
	const char *fail = NULL;
	char cause[ORDER_CAUSE_MAX];
	bool taken = false;
	int r;

	r = store_txn_begin(f->d->store, STORE_BATCH, &txn);
	if (r < 0)
		goto err;
	r = order_get(txn, id, &o);
	if (r == 0 && o->fax_state != F(QUEUED)) {
		/* Stale: sent, failed, cancelled, or taken already. */
		store_txn_abort(txn);
		goto out;
	}
	if (r == 0)
		r = order_fax_job_get(txn, id, &job);
	if (r < 0) {
		store_txn_abort(txn);
		goto err;
	}
	if (job->next_attempt_unix_ms > now) {
		/* Retried meanwhile; its own entry is (or goes) there. */
		store_txn_abort(txn);
		fax_schedule(f, job->next_attempt_unix_ms, id);
		goto out;
	}
	if (fax_policy_killed(&f->policy, job->created_unix_ms, now)) {
		store_txn_abort(txn);
		fax_settle(f, id, F(FAILED), 0, "kill time: not sent in time");
		goto out;
	}
	if (s == NULL) {
		/* No modem: the job waits for its kill time. */
		store_txn_abort(txn);
		fax_schedule(f, job->created_unix_ms +
		    (uint64_t)f->policy.kill_s * 1000, id);
		goto out;
	}

	p = catalog_provider(f->d->catalog, o->provider_id);
	if (p == NULL || p->fax == NULL || p->fax[0] == '\0')
		fail = "the provider has no fax number";
	else if (fax_dial_number(p->fax, f->cfg->fax_international_prefix,
	    s->number, sizeof(s->number)) < 0)
		fail = "the provider's fax number cannot be dialled";
	if (fail != NULL) {
		store_txn_abort(txn);
		fax_settle(f, id, F(FAILED), 0, fail);
		goto out;
	}
	r = provider_auth_get(txn, o->provider_id, &auth);
	if (r < 0 && r != -ENOENT) {
		store_txn_abort(txn);
		goto err;
	}
	fax_strcpy(s->expect_csi, sizeof(s->expect_csi),
	    auth && auth->fax_ident ? auth->fax_ident : "");
	r = provider_fax_ref_key(txn, key);
	if (r < 0) {
		store_txn_abort(txn);
		goto err;
	}
	provider_fax_reference(key, id, s->fax_ref);
	OPENSSL_cleanse(key, sizeof(key));

	if (snprintf(cause, sizeof(cause), "fax: dialing %s on %s%s%s",
	    s->number, modem_name(s->modem), s->expect_csi[0] ?
	    ", expecting CSI " : "", s->expect_csi) >= (int)sizeof(cause))
		log_debug("%016" PRIx64 " fax: history entry cut", id);
	r = order_fax_enter(txn, o, F(DIALING), cause, now);
	if (r < 0) {
		store_txn_abort(txn);
		goto err;
	}

	/* The page's fields: the order's, never card data. */
	fax_strcpy(q.actor, sizeof(q.actor), "fax dispatcher");
	fax_strcpy(q.member, sizeof(q.member), o->member);
	q.fax.order_id = id;
	fax_strcpy(q.fax.provider_id, sizeof(q.fax.provider_id),
	    o->provider_id);
	fax_strcpy(q.fax.provider_name, sizeof(q.fax.provider_name),
	    p->name ? p->name : "");
	_Static_assert(sizeof(q.fax.fax_ref) >= sizeof(s->fax_ref),
	    "fax reference fits the vault request");
	memcpy(q.fax.fax_ref, s->fax_ref, sizeof(s->fax_ref));
	fax_strcpy(q.fax.service_name, sizeof(q.fax.service_name),
	    o->service_name ? o->service_name : "");
	q.fax.quantity = o->quantity;
	if (o->amount != NULL)
		money_format(o->amount->minor, o->amount->currency,
		    q.fax.amount, sizeof(q.fax.amount));
	q.fax.time_unix = (int64_t)(now / 1000);

	if (fax_commit(f, txn, o, cause) < 0)
		goto out;
	s->order_id = id;
	s->waiting_vault = true;
	taken = true;
	r = vault_submit(f->d->vault, &q, fax_vault_cb, s);
	if (r < 0) {
		char why[96];

		fax_release(s);
		snprintf(why, sizeof(why), "vault: %s", strerror(-r));
		fax_settle(f, id, F(QUEUED), now + fax_policy_jitter(&f->policy,
		    f->policy.modem_s, fax_random()), why);
		taken = false;
		goto out;
	}
	f->vault_pending++;
	goto out;
err:
	log_err("%016" PRIx64 " fax: cannot start the job: %s", id,
	    strerror(-r));
out:
	if (auth != NULL)
		twinroute__store__provider_auth__free_unpacked(auth, NULL);
	if (job != NULL)
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
	if (o != NULL)
		twinroute__order__free_unpacked(o, NULL);
	return taken;
}

/*
 * A free modem that is not resting after a fault; NULL when none. A modem
 * whose last call failed on the modem itself (DOWN) is taken only when no
 * other is free, so a broken modem does not keep the next job from a
 * good one.
 */
static struct fslot *
fax_free_slot(struct fax_dispatcher *f, uint64_t now, uint64_t *ret_wake)
{
	struct fslot *down = NULL;

	*ret_wake = UINT64_MAX;
	for (size_t i = 0; i < f->n_slots; i++) {
		struct fslot *s = &f->slots[i];

		if (s->order_id != 0)
			continue;
		if (s->down_until_ms > now) {
			if (s->down_until_ms < *ret_wake)
				*ret_wake = s->down_until_ms;
			continue;
		}
		if (modem_state(s->modem) != MODEM_DOWN)
			return s;
		if (down == NULL)
			down = s;
	}
	return down;
}

static void
fax_pump(struct fax_dispatcher *f)
{
	uint64_t now = clock_realtime_ms(), wake;

	if (f->closing)
		return;
	while (f->heap.n > 0) {
		const struct due *top = dueheap_top(&f->heap);
		struct fslot *s = NULL;
		struct due j;

		if (top->due_ms > now) {
			fax_arm(f, top->due_ms);
			return;
		}
		if (f->n_slots > 0) {
			s = fax_free_slot(f, now, &wake);
			if (s == NULL) {
				/* A call's end pumps again; a modem's rest
				 * ends by the timer. */
				if (wake != UINT64_MAX)
					fax_arm(f, wake);
				return;
			}
		}
		j = dueheap_pop(&f->heap);
		if (fax_dispatcher_calling(f, j.id))
			continue;
		(void)fax_take(f, s, j.id);
	}
}

/* ---- start, stop -------------------------------------------------------- */

struct fax_scan {
	struct fax_dispatcher *f;
	struct store_txn *txn;
	uint64_t *ids, *due;
	bool *fix;           /* the order is not FAX_QUEUED: fax_recover */
	bool check;          /* read each job's order to set fix */
	size_t n, cap;
	int err;
};

static int
fax_scan_one(const void *key, size_t key_len, const void *val, size_t len,
    void *arg)
{
	struct fax_scan *sc = arg;
	Twinroute__Store__DispatchJob *job;

	(void)key;
	if (key_len != 8)
		return 0;
	job = twinroute__store__dispatch_job__unpack(NULL, len, val);
	if (job == NULL) {
		log_warn("fax: an outbox_fax record does not decode; skipped");
		return 0;
	}
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		uint64_t *a = reallocarray(sc->ids, cap, sizeof(*a));
		uint64_t *b = a ? reallocarray(sc->due, cap, sizeof(*b)) : NULL;
		bool *c = b ? reallocarray(sc->fix, cap, sizeof(*c)) : NULL;

		if (a != NULL)
			sc->ids = a;
		if (b != NULL)
			sc->due = b;
		if (c == NULL) {
			twinroute__store__dispatch_job__free_unpacked(job,
			    NULL);
			sc->err = -ENOMEM;
			return -ENOMEM;
		}
		sc->fix = c;
		sc->cap = cap;
	}
	sc->ids[sc->n] = be64_get(key);
	sc->due[sc->n] = job->next_attempt_unix_ms;
	/* Without a modem a job only waits for its kill time (fax_take):
	 * no need to look at each one as soon as the loop runs. */
	if (sc->f->n_slots == 0) {
		uint64_t kill = job->created_unix_ms +
		    (uint64_t)sc->f->policy.kill_s * 1000;

		if (kill > sc->due[sc->n])
			sc->due[sc->n] = kill;
	}
	twinroute__store__dispatch_job__free_unpacked(job, NULL);
	/* Most jobs wait FAX_QUEUED and need no write: only the others
	 * (a call cut by a stop, a job left behind) go to fax_recover. */
	sc->fix[sc->n] = false;
	if (sc->check) {
		Order *o = NULL;
		int r = order_get(sc->txn, sc->ids[sc->n], &o);

		sc->fix[sc->n] = r < 0 || o->fax_state != F(QUEUED);
		if (o != NULL)
			twinroute__order__free_unpacked(o, NULL);
	}
	sc->n++;
	return 0;
}

/*
 * Must each job's order be read at start? Not when the counts by fax
 * state say no call was under way (none DIALING or SENDING) and there are
 * as many jobs as FAX_QUEUED orders: then every job is its QUEUED order's
 * (each transition writes the job and the counts in one transaction), and
 * reading a thousand orders scattered over a large store costs more than
 * the rest of the start.
 */
static bool
fax_jobs_need_check(struct store_txn *txn)
{
	struct order_counts c;
	uint64_t jobs;

	if (order_counts_get(txn, &c) < 0 ||
	    store_db_entries(txn, STORE_DB_OUTBOX_FAX, &jobs) < 0)
		return true;
	return c.fax[F(DIALING)] != 0 || c.fax[F(SENDING)] != 0 ||
	    c.fax[F(QUEUED)] != jobs;
}

/* Jobs a stop cut in a call go back to FAX_QUEUED, due now. */
static int
fax_recover(struct fax_dispatcher *f, uint64_t id, uint64_t *due)
{
	struct store_txn *txn;
	Twinroute__Store__DispatchJob *job = NULL;
	static const char cause[] = "fax: the call was cut by a stop";
	Order *o = NULL;
	uint8_t k[8];
	int r;

	r = store_txn_begin(f->d->store, 0, &txn);
	if (r < 0)
		return r;
	r = order_get(txn, id, &o);
	if (r == 0 && (o->fax_state == F(DIALING) ||
	    o->fax_state == F(SENDING))) {
		r = order_fax_job_get(txn, id, &job);
		if (r == 0) {
			job->next_attempt_unix_ms = 0;
			r = fax_job_error(job, "cut by a stop");
		}
		if (r == 0)
			r = order_fax_job_put(txn, job);
		if (r == 0)
			r = order_fax_enter(txn, o, F(QUEUED), cause,
			    clock_realtime_ms());
		*due = 0;
	} else if (r == 0 && o->fax_state != F(QUEUED)) {
		log_warn("%016" PRIx64 " fax: a job for an order in %s; "
		    "removed", id, order_strfax(o->fax_state));
		be64_put(k, id);
		r = store_del(txn, STORE_DB_OUTBOX_FAX, k, sizeof(k));
		*due = UINT64_MAX;
	}
	if (r == 0)
		r = store_txn_commit(txn, NULL);
	else
		store_txn_abort(txn);
	if (job != NULL)
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
	if (o != NULL)
		twinroute__order__free_unpacked(o, NULL);
	return r;
}

static int
fax_modems_open(struct fax_dispatcher *f)
{
	const struct config *cfg = f->cfg;
	const char *cur = cfg->fax_modems;
	char dev[MODEM_DEVICE_MAX];
	enum modem_flow flow;
	int r;

	if (modem_parse_flow(cfg->fax_flow, &flow) < 0)
		return -EINVAL;
	f->slots = calloc(CONFIG_FAX_MODEMS_MAX, sizeof(*f->slots));
	if (f->slots == NULL)
		return -ENOMEM;
	while ((r = config_fax_modem_next(&cur, dev, sizeof(dev))) > 0 &&
	    f->n_slots < CONFIG_FAX_MODEMS_MAX) {
		const char *base = strrchr(dev, '/');
		char name[MODEM_NAME_MAX];
		struct modem_opts mo = {
			.device = dev,
			.speed = cfg->fax_speed,
			.flow = flow,
			.init = cfg->fax_init,
			.dial_prefix = *cfg->fax_dial_prefix ?
			    cfg->fax_dial_prefix : NULL,
			.tsi = cfg->fax_ident,
			.max_bps = cfg->fax_max_bps,
		};
		struct fslot *s = &f->slots[f->n_slots];

		fax_strcpy(name, sizeof(name), base ? base + 1 : dev);
		mo.name = name;
		r = modem_new(f->d->base, &mo, &s->modem);
		if (r < 0) {
			log_err("fax: modem %s: %s", dev, strerror(-r));
			return r;
		}
		s->f = f;
		f->n_slots++;
		log_info("fax: modem %s on %s, %u baud, flow %s", name, dev,
		    cfg->fax_speed, cfg->fax_flow);
	}
	return r < 0 ? r : 0;
}

int
fax_dispatcher_open(struct daemon *d, struct fax_dispatcher **ret)
{
	struct fax_dispatcher *f;
	struct fax_scan sc = { 0 };
	struct store_txn *txn;
	const struct config *cfg = d->cfg;
	int r;

	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->d = d;
	f->cfg = cfg;
	f->policy = (struct fax_policy){
		.busy_s = cfg->fax_retry_busy,
		.no_answer_s = cfg->fax_retry_no_answer,
		.no_carrier_s = cfg->fax_retry_no_carrier,
		.protocol_s = cfg->fax_retry_protocol,
		.modem_s = cfg->fax_retry_modem,
		.max_dials = cfg->fax_max_dials,
		.max_tries = cfg->fax_max_tries,
		.max_no_carrier = cfg->fax_max_no_carrier,
		.kill_s = cfg->fax_kill_time,
		.jitter_pct = cfg->fax_jitter,
	};
	f->timer = evtimer_new(d->base, fax_timer_cb, f);
	if (f->timer == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	r = fax_modems_open(f);
	if (r < 0)
		goto fail;
	if (f->n_slots == 0)
		log_info("fax: no modem configured ([fax] modems): card "
		    "faxes wait in the queue");

	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r < 0)
		goto fail;
	sc.f = f;
	sc.txn = txn;
	sc.check = fax_jobs_need_check(txn);
	r = store_iter(txn, STORE_DB_OUTBOX_FAX, NULL, 0, fax_scan_one, &sc);
	store_txn_abort(txn);
	if (sc.err < 0)
		r = sc.err;
	for (size_t i = 0; r >= 0 && i < sc.n; i++) {
		uint64_t due = sc.due[i];

		if (sc.fix[i])
			r = fax_recover(f, sc.ids[i], &due);
		if (r == -ENOENT) {
			log_warn("%016" PRIx64 " fax: a job without its "
			    "order; left alone", sc.ids[i]);
			r = 0;
			continue;
		}
		if (r == 0 && due != UINT64_MAX &&
		    dueheap_push(&f->heap, due, sc.ids[i]) < 0)
			r = -ENOMEM;
	}
	free(sc.ids);
	free(sc.due);
	free(sc.fix);
	if (r < 0) {
		log_err("fax: cannot read the fax outbox: %s", strerror(-r));
		goto fail;
	}
	if (f->heap.n > 0) {
		log_info("fax: %zu card faxes queued from before", f->heap.n);
		fax_arm(f, dueheap_top(&f->heap)->due_ms);
	}
	*ret = f;
	return 0;
fail:
	fax_dispatcher_destroy(f);
	return r;
}

void
fax_dispatcher_free(struct fax_dispatcher *f)
{
	if (f == NULL)
		return;
	f->closing = true;
	/* Calls in progress hang up; their jobs stay DIALING or SENDING in
	 * the store and the next start queues them again. */
	for (size_t i = 0; i < f->n_slots; i++) {
		struct fslot *s = &f->slots[i];

		if (s->order_id != 0 && !s->waiting_vault)
			log_info("%016" PRIx64 " fax: call on %s cut by the "
			    "stop", s->order_id, modem_name(s->modem));
		s->modem = modem_free(s->modem);
		if (!s->waiting_vault)
			fax_release(s);
	}
	if (f->vault_pending == 0)
		fax_dispatcher_destroy(f);
}

/* ---- queries ------------------------------------------------------------ */

bool
fax_dispatcher_calling(const struct fax_dispatcher *f, uint64_t order_id)
{
	if (f == NULL)
		return false;
	for (size_t i = 0; i < f->n_slots; i++)
		if (f->slots[i].order_id == order_id)
			return true;
	return false;
}

size_t
fax_dispatcher_n_modems(const struct fax_dispatcher *f)
{
	return f ? f->n_slots : 0;
}

void
fax_dispatcher_modem(const struct fax_dispatcher *f, size_t i,
    struct modem_info *ret, uint64_t *ret_order_id)
{
	modem_info(f->slots[i].modem, ret);
	*ret_order_id = f->slots[i].order_id;
}

void
fax_dispatcher_stats(const struct fax_dispatcher *f, struct fax_stats *ret)
{
	*ret = (struct fax_stats){ 0 };
	if (f == NULL)
		return;
	*ret = f->st;
	ret->queued = f->heap.n;
	for (size_t i = 0; i < f->n_slots; i++)
		if (f->slots[i].order_id != 0)
			ret->in_flight++;
}

int
fax_dispatcher_retry(struct fax_dispatcher *f, uint64_t order_id,
    const char *actor, uint64_t *ret_seq, Order **ret_order)
{
	Twinroute__Store__DispatchJob *job = NULL;
	struct store_txn *txn;
	Order *o = NULL;
	char cause[ORDER_CAUSE_MAX];
	uint64_t now = clock_realtime_ms();
	int r;

	if (fax_dispatcher_calling(f, order_id))
		return -EBUSY;
	r = store_txn_begin(f->d->store, 0, &txn);
	if (r < 0)
		return r;
	r = order_get(txn, order_id, &o);
	if (r < 0)
		goto out;
	snprintf(cause, sizeof(cause), "%s: fax retry", actor);
	if (o->fax_state == F(FAILED)) {
		r = order_fax_enter(txn, o, F(QUEUED), cause, now);
	} else if (o->fax_state == F(QUEUED)) {
		r = order_fax_job_get(txn, order_id, &job);
		if (r == 0) {
			job->next_attempt_unix_ms = 0;
			r = order_fax_job_put(txn, job);
		}
		if (r == 0)
			log_info("%016" PRIx64 " fax: %s", order_id, cause);
	} else {
		r = -ORDER_EFORBIDDEN;
	}
out:
	if (job != NULL)
		twinroute__store__dispatch_job__free_unpacked(job, NULL);
	if (r < 0) {
		store_txn_abort(txn);
		if (o != NULL)
			twinroute__order__free_unpacked(o, NULL);
		return r;
	}
	r = store_txn_commit(txn, ret_seq);
	if (r < 0) {
		twinroute__order__free_unpacked(o, NULL);
		return r;
	}
	client_order_notify(f->d, *ret_seq, o, o->state, cause);
	fax_dispatcher_kick(f, order_id, *ret_seq);
	if (ret_order != NULL)
		*ret_order = o;
	else
		twinroute__order__free_unpacked(o, NULL);
	return 0;
}
