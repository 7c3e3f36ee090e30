/* SPDX-License-Identifier: ISC */
/* mailer.c -- the confirmation state machine on the loop, and the replies */

/*
 * Sending. Jobs due now sit in a min-heap of (due time, order id) that
 * mirrors outbox_mail: filled by a scan at start, by mailer_kick() once
 * a new job is durable, and by deferrals. The heap may hold stale
 * entries (a job cancelled or rescheduled since): each one is checked
 * against the store when it comes up, so the store stays the truth. One
 * batch at a time goes to the mail thread (smtp.h); its results come back
 * on the loop, each in its own transaction:
 *   2xx  -> the Confirmation, its token hash and its expiry entry are
 *           written, the job removed, the order AWAITING_CONFIRMATION;
 *   4xx, timeouts, refused connections -> DEFERRED: attempts + 1, retry
 *           after retry_min * 2^(attempts-1) (at most retry_max), with
 *           jitter; past max_age the order CONFIRMATION_FAILED;
 *   5xx  -> the order CONFIRMATION_FAILED.
 * The token (16 random bytes) exists in plaintext only in the message; the
 * store keeps its SHA-256. A timer expires confirmations past their
 * deadline (confirm_expiry is sorted by deadline).
 *
 * Replies (LMTP). Every recipient is decided on its own: the token (from
 * the address, else In-Reply-To/References, else the subject) must be
 * known, its order AWAITING_CONFIRMATION, the deadline not passed, the
 * envelope sender and From: the member's address, and, when configured,
 * the trusted Authentication-Results must pass. Automatic replies change
 * nothing. A confirm moves the order to CONFIRMED (order.c queues the
 * provider and fax jobs in the same transaction), a cancel to CANCELLED;
 * the 250 goes out once that is durable.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "catalog/catalog.h"
#include "client/session.h"
#include "common/be64.h"
#include "common/clock.h"
#include "common/dueheap.h"
#include "common/errcode.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/money.h"
#include "config.h"
#include "daemon.h"
#include "mail/compose.h"
#include "mail/mailer.h"
#include "mail/reply.h"
#include "mail/smtp.h"
#include "member/member.h"
#include "order/order.h"
#include "store/store.h"

#define ST(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define MAILER_EXPIRE_BATCH 64      /* expiries per timer run */
#define MAILER_PASSWORD_MAX 512

struct inflight {
	uint64_t id;
	uint8_t token[MAIL_TOKEN_RAW];
	uint32_t attempts;           /* including this one */
	uint64_t created_ms;
	char *data;
	char to[MAIL_ADDR_MAX + 1];
};

struct mailer {
	struct daemon *d;
	struct config *cfg;
	struct smtp_sender *smtp;
	struct mail_template *tmpl;
	char *password;

	struct dueheap heap;
	struct event *timer;

	struct smtp_msg *msgs;
	struct inflight *inf;
	size_t n_inflight;

	struct mailer_stats stats;

	/*
	 * Token bytes, drawn from RAND_bytes a block at a time (one call,
	 * and its fork check, per block rather than per message); each
	 * token's bytes are wiped from the block as they are taken.
	 */
	uint8_t rnd[MAIL_TOKEN_RAW * 64];
	size_t rnd_left;
	uint64_t jitter;             /* xorshift64 state: retry jitter */
};

/* n fresh random bytes for a token; -EIO when the generator fails. */
static int
mailer_random(struct mailer *m, uint8_t *out, size_t n)
{
	uint8_t *p;

	if (n > sizeof(m->rnd))
		return -EINVAL;
	if (m->rnd_left < n) {
		if (RAND_bytes(m->rnd, sizeof(m->rnd)) != 1)
			return -EIO;
		m->rnd_left = sizeof(m->rnd);
	}
	p = m->rnd + sizeof(m->rnd) - m->rnd_left;
	memcpy(out, p, n);
	OPENSSL_cleanse(p, n);
	m->rnd_left -= n;
	return 0;
}

static void
token_hash(const uint8_t raw[MAIL_TOKEN_RAW], uint8_t out[ORDER_HASH_SIZE])
{
	unsigned int len = ORDER_HASH_SIZE;

	EVP_Digest(raw, MAIL_TOKEN_RAW, out, &len, EVP_sha256(), NULL);
}

/* ---- the schedule --------------------------------------------------- */

static void
mailer_arm(struct mailer *m, uint64_t due_ms)
{
	uint64_t now = clock_realtime_ms();
	uint64_t wait = due_ms > now ? due_ms - now : 0;
	struct timeval tv = { .tv_sec = (time_t)(wait / 1000),
		.tv_usec = (suseconds_t)(wait % 1000) * 1000 };
	const struct timeval *pending;
	struct timeval cur;

	/* Keep an earlier deadline already set. */
	if (event_pending(m->timer, EV_TIMEOUT, &cur)) {
		struct timeval nowtv, left;

		evutil_gettimeofday(&nowtv, NULL);
		evutil_timersub(&cur, &nowtv, &left);
		if (left.tv_sec < 0 || evutil_timercmp(&left, &tv, <=))
			return;
	}
	pending = &tv;
	event_add(m->timer, pending);
}

struct kick {
	struct mailer *m;
	uint64_t id;
};

static void
kick_synced(void *arg, int err)
{
	struct kick *k = arg;

	if (err == 0 && dueheap_push(&k->m->heap, 0, k->id) == 0)
		mailer_arm(k->m, 0);
	free(k);
}

void
mailer_kick(struct mailer *m, uint64_t order_id, uint64_t seq)
{
	struct kick *k;

	if (!m)
		return;
	k = malloc(sizeof(*k));
	if (!k) {
		log_err("%016" PRIx64 " mail: out of memory; the "
		    "confirmation goes at the next restart", order_id);
		return;
	}
	*k = (struct kick){ m, order_id };
	if (store_after_sync(m->d->store, seq, kick_synced, k) < 0)
		kick_synced(k, -ENOMEM);
}

/* ---- composing ------------------------------------------------------ */

static void
fmt_amount(const Twinroute__Money *mo, char *buf, size_t size)
{
	if (mo)
		money_format(mo->minor, mo->currency, buf, size);
	else
		snprintf(buf, size, "-");
}

/* Compose the confirmation of o into slot n of the batch. */
static int
mailer_compose(struct mailer *m, const Order *o,
    const Twinroute__Store__MemberRecord *mem, uint32_t attempts,
    uint64_t created_ms)
{
	struct inflight *f = &m->inf[m->n_inflight];
	struct smtp_msg *msg = &m->msgs[m->n_inflight];
	const Twinroute__Provider *p;
	struct mail_compose_opts opts = {
		.from_addr = m->cfg->mail_from,
		.from_name = m->cfg->mail_from_name,
		.domain = m->cfg->mail_domain,
		.broker_name = m->cfg->mail_broker_name,
		.now = time(NULL),
	};
	char amount[64], token[MAIL_TOKEN_LEN + 1], *data = NULL;
	size_t len = 0;
	int r;

	r = mailer_random(m, f->token, sizeof(f->token));
	if (r < 0)
		return r;
	mail_token_encode(f->token, token);
	p = catalog_provider(m->d->catalog, o->provider_id);
	fmt_amount(o->amount, amount, sizeof(amount));
	{
		struct mail_confirm_vars v = {
			.order_id = o->id,
			.member_number = o->member,
			.member_name = mem->name,
			.member_email = mem->email,
			.service_name = o->service_name,
			.provider_name = p && p->name ? p->name : o->provider_id,
			.quantity = o->quantity,
			.amount = amount,
			.card_brand = o->card_brand,
			.card_last4 = o->card_last4,
			.note = o->note,
			.deadline = (time_t)(opts.now +
			    (time_t)m->cfg->mail_token_lifetime),
			.token = token,
		};
		r = mail_compose(m->tmpl, &opts, &v, &data, &len);
	}
	OPENSSL_cleanse(token, sizeof(token));
	if (r < 0)
		return r;
	f->id = o->id;
	f->attempts = attempts;
	f->created_ms = created_ms;
	f->data = data;
	snprintf(f->to, sizeof(f->to), "%s", mem->email);
	*msg = (struct smtp_msg){ .id = o->id, .from = m->cfg->mail_from,
		.to = f->to, .data = data, .len = len };
	m->n_inflight++;
	return 0;
}

/* ---- state changes -------------------------------------------------- */

/*
 * Move order id to `to` in a transaction of its own (with extra() writing
 * more in it when given). Returns 0 (moved), 1 (the order was not in a
 * state that allows it: nothing changed) or -errno; *ret_seq set when
 * moved.
 */
typedef int (*mailer_extra_fn)(struct store_txn *txn, Order *o, void *arg);

static int
mailer_move(struct mailer *m, uint64_t id, order_state to,
    const char *cause, mailer_extra_fn extra, void *arg)
{
	struct store_txn *txn;
	Order *o = NULL;
	order_state from;
	uint64_t seq;
	int r;

	r = store_txn_begin(m->d->store, STORE_BATCH, &txn);
	if (r < 0)
		return r;
	r = order_get(txn, id, &o);
	if (r < 0) {
		store_txn_abort(txn);
		return r == -ENOENT ? 1 : r;
	}
	from = o->state;
	if (to != from && !order_transition_allowed(from, to)) {
		store_txn_abort(txn);
		twinroute__order__free_unpacked(o, NULL);
		return 1;
	}
	r = 0;
	if (to != from)
		r = order_enter_state(txn, o, to, cause, clock_realtime_ms());
	if (r == 0 && extra)
		r = extra(txn, o, arg);
	if (r < 0) {
		store_txn_abort(txn);
		twinroute__order__free_unpacked(o, NULL);
		return r;
	}
	r = store_txn_commit(txn, &seq);
	if (r == 0 && to != from)
		client_order_changed(m->d, seq, o, from, cause);
	twinroute__order__free_unpacked(o, NULL);
	return r;
}

struct sent_arg {
	struct mailer *m;
	const struct inflight *f;
	bool resend;
};

/* Write the Confirmation of a sent message, with its token and expiry. */
static int
mailer_sent_extra(struct store_txn *txn, Order *o, void *arg)
{
	struct sent_arg *a = arg;
	Twinroute__Store__Confirmation c = TWINROUTE__STORE__CONFIRMATION__INIT;
	Twinroute__Store__TokenRecord t = TWINROUTE__STORE__TOKEN_RECORD__INIT;
	uint8_t hash[ORDER_HASH_SIZE], key[8], xkey[16], buf[256];
	char token[MAIL_TOKEN_LEN + 1], msgid[MAIL_TOKEN_LEN + 300];
	uint64_t now = clock_realtime_ms();
	const void *val;
	size_t len;
	int r;

	(void)o;
	be64_put(key, a->f->id);
	if (a->resend) {
		/* The old token stops working; the job is done. */
		r = order_confirmation_drop(txn, a->f->id);
		if (r < 0 && r != -ENOENT)
			return r;
		r = store_get(txn, STORE_DB_OUTBOX_MAIL, key, sizeof(key), &val,
		    &len);
		if (r == 0)
			r = store_del(txn, STORE_DB_OUTBOX_MAIL, key,
			    sizeof(key));
		if (r < 0 && r != -ENOENT)
			return r;
	}
	token_hash(a->f->token, hash);
	mail_token_encode(a->f->token, token);
	snprintf(msgid, sizeof(msgid), "<c-%s@%s>", token,
	    a->m->cfg->mail_domain);
	OPENSSL_cleanse(token, sizeof(token));
	c.token_hash.data = hash;
	c.token_hash.len = sizeof(hash);
	c.sent_unix_ms = now;
	c.expires_unix_ms = now + (uint64_t)a->m->cfg->mail_token_lifetime *
	    1000;
	c.attempts = a->f->attempts;
	c.message_id = msgid;
	len = twinroute__store__confirmation__get_packed_size(&c);
	if (len > sizeof(buf))
		return -EINVAL;
	twinroute__store__confirmation__pack(&c, buf);
	r = store_put(txn, STORE_DB_CONFIRMATIONS, key, sizeof(key), buf, len);
	OPENSSL_cleanse(msgid, sizeof(msgid));
	if (r < 0)
		return r;
	t.order_id = a->f->id;
	t.expires_unix_ms = c.expires_unix_ms;
	len = twinroute__store__token_record__get_packed_size(&t);
	twinroute__store__token_record__pack(&t, buf);
	r = store_put(txn, STORE_DB_TOKENS, hash, sizeof(hash), buf, len);
	if (r < 0)
		return r;
	be64_put(xkey, c.expires_unix_ms);
	be64_put(xkey + 8, a->f->id);
	return store_put(txn, STORE_DB_CONFIRM_EXPIRY, xkey, sizeof(xkey), "",
	    0);
}

static uint64_t
mailer_backoff_ms(struct mailer *m, uint32_t attempts)
{
	uint64_t d = (uint64_t)m->cfg->mail_retry_min * 1000;
	uint64_t max = (uint64_t)m->cfg->mail_retry_max * 1000;
	uint64_t x = m->jitter;
	uint32_t r;

	for (uint32_t i = 1; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	/* Jitter, somewhere in [d/2, d]: spreads retries, needs no secrecy. */
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	m->jitter = x;
	r = (uint32_t)(x >> 32);
	return d / 2 + (d / 2 + 1) * r / UINT32_MAX;
}

/* Write job back with one more attempt and its next time. */
static int
mailer_job_update(struct store_txn *txn, uint64_t id, uint32_t attempts,
    uint64_t next_ms, const char *err)
{
	Twinroute__Store__MailJob *job;
	uint8_t key[8], buf[512];
	const void *val;
	char *old_err;
	size_t len;
	int r;

	be64_put(key, id);
	r = store_get(txn, STORE_DB_OUTBOX_MAIL, key, sizeof(key), &val, &len);
	if (r < 0)
		return r;
	job = twinroute__store__mail_job__unpack(NULL, len, val);
	if (!job)
		return -EINVAL;
	job->attempts = attempts;
	job->next_attempt_unix_ms = next_ms;
	old_err = job->last_error;
	job->last_error = unconst(err);
	len = twinroute__store__mail_job__get_packed_size(job);
	if (len <= sizeof(buf)) {
		twinroute__store__mail_job__pack(job, buf);
		r = store_put(txn, STORE_DB_OUTBOX_MAIL, key, sizeof(key), buf,
		    len);
	} else {
		r = -EINVAL;
	}
	job->last_error = old_err;
	twinroute__store__mail_job__free_unpacked(job, NULL);
	return r;
}

static void
mailer_fail(struct mailer *m, uint64_t id, const char *why)
{
	char cause[ORDER_CAUSE_MAX];
	int r;

	/* The history's cause is bounded: the reason is cut to fit. */
	snprintf(cause, sizeof(cause), "mail: %.*s",
	    (int)(sizeof(cause) - sizeof("mail: ")), why);
	r = mailer_move(m, id, ST(CONFIRMATION_FAILED), cause, NULL, NULL);
	if (r < 0)
		log_err("%016" PRIx64 " mail: cannot record the failure: %s",
		    id, tr_strerror(r));
	else if (r == 0) {
		m->stats.failed++;
		log_warn("%016" PRIx64 " confirmation failed: %s", id, why);
	}
}

static void mailer_run(evutil_socket_t fd, short what, void *arg);

static void
mailer_done(void *arg, struct smtp_msg *msgs, size_t n)
{
	struct mailer *m = arg;
	char first_why[sizeof(msgs->text) + 32] = "";
	uint64_t first_next_s = 0;
	size_t deferred = 0;

	for (size_t i = 0; i < n; i++) {
		struct inflight *f = &m->inf[i];
		const struct smtp_msg *msg = &msgs[i];
		char why[sizeof(msg->text) + 32];
		int r = 0;

		snprintf(why, sizeof(why), "%d %s", msg->code, msg->text);
		switch (msg->result) {
		case SMTP_OK: {
			struct sent_arg sa = { m, f, false };
			struct store_txn *txn;
			Order *o = NULL;
			order_state st = ST(STATE_UNSPECIFIED);

			/* Resend (the order already awaits a reply)? */
			if (store_txn_begin(m->d->store, STORE_RDONLY,
			    &txn) == 0) {
				if (order_get(txn, f->id, &o) == 0) {
					st = o->state;
					twinroute__order__free_unpacked(o, NULL);
				}
				store_txn_abort(txn);
			}
			sa.resend = st == ST(AWAITING_CONFIRMATION);
			if (st != ST(AUTHORIZED) && !sa.resend) {
				log_info("%016" PRIx64 " confirmation sent, but "
				    "the order is %s now", f->id,
				    order_strstate(st));
				break;
			}
			r = mailer_move(m, f->id, ST(AWAITING_CONFIRMATION),
			    "mail: confirmation sent", mailer_sent_extra, &sa);
			if (r == 0) {
				m->stats.sent++;
				log_info("%016" PRIx64 " confirmation sent "
				    "(attempt %" PRIu32 "): %s", f->id,
				    f->attempts, why);
			}
			break;
		}
		case SMTP_TEMP: {
			uint64_t now = clock_realtime_ms();
			struct store_txn *txn;
			uint64_t seq;

			if (now - f->created_ms >=
			    (uint64_t)m->cfg->mail_max_age * 1000) {
				char w[sizeof(why) + 64];

				snprintf(w, sizeof(w), "gave up after %" PRIu32
				    " attempts: %s", f->attempts, why);
				mailer_fail(m, f->id, w);
				break;
			}
			uint64_t next = now + mailer_backoff_ms(m, f->attempts);
			r = store_txn_begin(m->d->store, STORE_BATCH, &txn);
			if (r == 0) {
				r = mailer_job_update(txn, f->id, f->attempts,
				    next, why);
				if (r == 0)
					r = store_txn_commit(txn, &seq);
				else
					store_txn_abort(txn);
			}
			if (r == -ENOENT) {
				r = 0;  /* cancelled meanwhile */
				break;
			}
			if (r == 0) {
				m->stats.deferred++;
				dueheap_push(&m->heap, next, f->id);
				log_info("%016" PRIx64 " confirmation deferred "
				    "(attempt %" PRIu32 ", next in %" PRIu64
				    " s): %s", f->id, f->attempts,
				    (next - now + 999) / 1000, why);
				if (deferred++ == 0) {
					snprintf(first_why, sizeof(first_why),
					    "%s", why);
					first_next_s = (next - now + 999) / 1000;
				}
			}
			break;
		}
		case SMTP_PERM: {
			char w[sizeof(why) + 32];

			snprintf(w, sizeof(w), "relay refused it: %s", why);
			mailer_fail(m, f->id, w);
			break;
		}
		}
		if (r < 0)
			log_err("%016" PRIx64 " mail: cannot record the result "
			    "(%s): %s; it is sent again", f->id, why,
			    tr_strerror(r));
		free(f->data);
		f->data = NULL;
	}
	/* One warning per batch: a relay that is down is one event, not
	 * one per queued confirmation (each has its info line). */
	if (deferred > 0)
		log_warn("mail: %zu of %zu confirmations deferred (the first "
		    "retries in %" PRIu64 " s): %s", deferred, n,
		    first_next_s, first_why);
	m->n_inflight = 0;
	mailer_arm(m, 0);
}

/* ---- the timer: expiries, then the next batch ----------------------- */

struct expiry_scan {
	uint64_t now;
	uint64_t ids[MAILER_EXPIRE_BATCH];
	size_t n;
	uint64_t next;               /* first deadline still ahead, or 0 */
};

static int
expiry_cb(const void *key, size_t key_len, const void *val, size_t val_len,
    void *arg)
{
	struct expiry_scan *x = arg;
	uint64_t at;

	(void)val;
	(void)val_len;
	if (key_len != 16)
		return 0;
	at = be64_get(key);
	if (at > x->now) {
		x->next = at;
		return 1;
	}
	x->ids[x->n++] = be64_get((const uint8_t *)key + 8);
	return x->n == MAILER_EXPIRE_BATCH ? 1 : 0;
}

/* Expire what is due; returns when to look again (0: nothing ahead). */
static uint64_t
mailer_expire(struct mailer *m)
{
	struct expiry_scan x = { .now = clock_realtime_ms() };
	struct store_txn *txn;

	if (store_txn_begin(m->d->store, STORE_RDONLY, &txn) < 0)
		return x.now + 1000;
	store_iter(txn, STORE_DB_CONFIRM_EXPIRY, NULL, 0, expiry_cb, &x);
	store_txn_abort(txn);
	for (size_t i = 0; i < x.n; i++) {
		int r = mailer_move(m, x.ids[i], ST(EXPIRED),
		    "mail: no reply before the deadline", NULL, NULL);

		if (r == 0) {
			m->stats.expired++;
			log_info("%016" PRIx64 " confirmation expired",
			    x.ids[i]);
		} else if (r < 0) {
			log_err("%016" PRIx64 " cannot expire: %s", x.ids[i],
			    tr_strerror(r));
			return x.now + 1000;
		}
	}
	return x.n == MAILER_EXPIRE_BATCH ? x.now : x.next;
}

static bool
mailer_in_batch(const struct mailer *m, uint64_t id)
{
	for (size_t i = 0; i < m->n_inflight; i++)
		if (m->inf[i].id == id)
			return true;
	return false;
}

/* Take due jobs from the heap into a batch and hand it to the thread. */
static void
mailer_fill(struct mailer *m)
{
	uint64_t now = clock_realtime_ms();
	struct store_txn *txn;
	uint64_t fails[64];
	size_t n_fails = 0;

	if (smtp_sender_busy(m->smtp) || m->n_inflight > 0)
		return;
	if (store_txn_begin(m->d->store, STORE_RDONLY, &txn) < 0)
		return;
	while (m->heap.n > 0 && dueheap_top(&m->heap)->due_ms <= now &&
	    m->n_inflight < m->cfg->mail_batch_size &&
	    n_fails < ELEMENTSOF(fails)) {
		struct due j = dueheap_pop(&m->heap);
		Twinroute__Store__MailJob *job;
		Twinroute__Store__MemberRecord *mem = NULL;
		Order *o = NULL;
		uint8_t key[8];
		const void *val;
		size_t len;
		int r;

		if (mailer_in_batch(m, j.id))
			continue;
		be64_put(key, j.id);
		if (store_get(txn, STORE_DB_OUTBOX_MAIL, key, sizeof(key), &val,
		    &len) < 0)
			continue;    /* sent, cancelled or failed meanwhile */
		job = twinroute__store__mail_job__unpack(NULL, len, val);
		if (!job)
			continue;
		if (job->next_attempt_unix_ms > now) {
			/* Deferred: this entry is stale, the job's own is
			 * in the heap too (or goes there now). */
			if (job->next_attempt_unix_ms != j.due_ms)
				dueheap_push(&m->heap, job->next_attempt_unix_ms,
				    j.id);
			twinroute__store__mail_job__free_unpacked(job, NULL);
			continue;
		}
		if (now - job->created_unix_ms >=
		    (uint64_t)m->cfg->mail_max_age * 1000) {
			fails[n_fails++] = j.id;
			twinroute__store__mail_job__free_unpacked(job, NULL);
			continue;
		}
		r = order_get(txn, j.id, &o);
		if (r == 0)
			r = member_get(txn, o->member, &mem);
		if (r == 0)
			r = mailer_compose(m, o, mem, job->attempts + 1,
			    job->created_unix_ms);
		if (r < 0)
			log_err("%016" PRIx64 " cannot compose the "
			    "confirmation: %s", j.id, tr_strerror(r));
		if (mem)
			twinroute__store__member_record__free_unpacked(mem,
			    NULL);
		if (o)
			twinroute__order__free_unpacked(o, NULL);
		twinroute__store__mail_job__free_unpacked(job, NULL);
	}
	store_txn_abort(txn);
	for (size_t i = 0; i < n_fails; i++)
		mailer_fail(m, fails[i], "no relay took it before mail.max_age");
	if (m->n_inflight == 0)
		return;
	if (smtp_sender_submit(m->smtp, m->msgs, m->n_inflight) < 0) {
		for (size_t i = 0; i < m->n_inflight; i++) {
			dueheap_push(&m->heap, now + 1000, m->inf[i].id);
			free(m->inf[i].data);
		}
		m->n_inflight = 0;
	}
}

static void
mailer_run(evutil_socket_t fd, short what, void *arg)
{
	struct mailer *m = arg;
	uint64_t next;

	(void)fd;
	(void)what;
	if (m->d->stopping)
		return;
	next = mailer_expire(m);
	mailer_fill(m);
	if (m->n_inflight == 0 && m->heap.n > 0 &&
	    (next == 0 || dueheap_top(&m->heap)->due_ms < next))
		next = dueheap_top(&m->heap)->due_ms;
	if (next != 0)
		mailer_arm(m, next);
}

/* ---- start and stop ------------------------------------------------- */

static int
scan_job_cb(const void *key, size_t key_len, const void *val, size_t val_len,
    void *arg)
{
	struct mailer *m = arg;
	Twinroute__Store__MailJob *job;
	int r;

	if (key_len != 8)
		return 0;
	job = twinroute__store__mail_job__unpack(NULL, val_len, val);
	if (!job)
		return 0;
	r = dueheap_push(&m->heap, job->next_attempt_unix_ms, be64_get(key));
	twinroute__store__mail_job__free_unpacked(job, NULL);
	return r;
}

static int
read_password(const char *path, char **ret)
{
	char buf[MAILER_PASSWORD_MAX + 2];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	*ret = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return *ret ? 0 : -ENOMEM;
}

int
mailer_open(struct daemon *d, struct mailer **ret)
{
	struct config *cfg = d->cfg;
	struct mailer *m;
	struct smtp_opts so = { 0 };
	char host[CONFIG_HOST_MAX], err[512];
	struct store_txn *txn;
	uint16_t port = 25;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->d = d;
	if (RAND_bytes((unsigned char *)&m->jitter, sizeof(m->jitter)) != 1)
		m->jitter = (uint64_t)clock_realtime_ms();
	m->jitter |= 1;              /* xorshift's state is never 0 */
	m->cfg = cfg;
	m->msgs = calloc(cfg->mail_batch_size, sizeof(*m->msgs));
	m->inf = calloc(cfg->mail_batch_size, sizeof(*m->inf));
	m->timer = evtimer_new(d->base, mailer_run, m);
	if (!m->msgs || !m->inf || !m->timer) {
		mailer_free(m);
		return -ENOMEM;
	}
	if (*cfg->mail_template) {
		r = mail_template_load(cfg->mail_template, &m->tmpl, err,
		    sizeof(err));
		if (r < 0) {
			log_err("mail.template: %s", r == -EINVAL ? err :
			    tr_strerror(r));
			mailer_free(m);
			return r;
		}
	} else if ((r = mail_template_default(&m->tmpl)) < 0) {
		mailer_free(m);
		return r;
	}
	if (*cfg->mail_password_file) {
		r = read_password(cfg->mail_password_file, &m->password);
		if (r < 0) {
			log_err("mail.password_file %s: %s",
			    cfg->mail_password_file, r == -EINVAL ?
			    "empty" : tr_strerror(r));
			mailer_free(m);
			return r;
		}
	}
	if (config_split_hostport(cfg->mail_relay, host, &port) < 0) {
		mailer_free(m);
		return -EINVAL;
	}
	so.host = host;
	so.port = port;
	so.starttls = strcmp(cfg->mail_starttls, "never") == 0 ?
	    SMTP_STARTTLS_NEVER : strcmp(cfg->mail_starttls, "required") == 0 ?
	    SMTP_STARTTLS_REQUIRED : SMTP_STARTTLS_WHEN_AVAILABLE;
	so.user = cfg->mail_user;
	so.password = m->password;
	so.timeout_s = cfg->mail_timeout;
	so.ca_file = *cfg->mail_ca_file ? cfg->mail_ca_file : NULL;
	r = smtp_sender_new(d->base, &so, mailer_done, m, &m->smtp);
	if (r < 0) {
		log_err("mail thread: %s", tr_strerror(r));
		mailer_free(m);
		return r;
	}

	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = store_iter(txn, STORE_DB_OUTBOX_MAIL, NULL, 0, scan_job_cb,
		    m);
		store_txn_abort(txn);
	}
	if (r < 0) {
		log_err("mail outbox: %s", tr_strerror(r));
		mailer_free(m);
		return r;
	}
	if (m->heap.n > 0)
		log_info("mail: %zu confirmations queued from before", m->heap.n);
	mailer_arm(m, 0);
	*ret = m;
	return 0;
}

void
mailer_free(struct mailer *m)
{
	if (!m)
		return;
	smtp_sender_free(m->smtp);
	for (size_t i = 0; i < m->n_inflight; i++)
		free(m->inf[i].data);
	if (m->inf)
		OPENSSL_cleanse(m->inf,
		    m->cfg->mail_batch_size * sizeof(*m->inf));
	free(m->inf);
	free(m->msgs);
	OPENSSL_cleanse(m->rnd, sizeof(m->rnd));
	dueheap_free(&m->heap);
	if (m->timer)
		event_free(m->timer);
	mail_template_free(m->tmpl);
	if (m->password) {
		OPENSSL_cleanse(m->password, strlen(m->password));
		free(m->password);
	}
	free(m);
}

void
mailer_get_stats(const struct mailer *m, struct mailer_stats *ret)
{
	*ret = m->stats;
	ret->in_flight = m->n_inflight;
}

int
mailer_sending(const struct mailer *m, uint64_t order_id)
{
	return m && mailer_in_batch(m, order_id);
}

/* ---- replies -------------------------------------------------------- */

int
mailer_lmtp_rcpt(struct mailer *m, const char *addr, char *reply,
    size_t reply_size)
{
	char token[MAIL_TOKEN_LEN + 1];
	const char *why = NULL;

	if (mail_parse_rcpt(addr, m->cfg->mail_domain, token, &why) !=
	    MAIL_RCPT_OTHER)
		return 0;
	snprintf(reply, reply_size, "550 5.1.1 <%s>: %s", addr,
	    why ? why : "no such recipient here");
	return 1;
}

/* One recipient's decision. Fills reply; *ret_seq when it committed. */
static void
mailer_decide(struct mailer *m, const struct lmtp_envelope *env,
    const struct mail_reply *rep, const char *rcpt, char *reply,
    size_t size, uint64_t *ret_seq)
{
	char token[MAIL_TOKEN_LEN + 1], cause[ORDER_CAUSE_MAX];
	uint8_t raw[MAIL_TOKEN_RAW], hash[ORDER_HASH_SIZE];
	Twinroute__Store__TokenRecord *tr = NULL;
	Twinroute__Store__MemberRecord *mem = NULL;
	enum mail_rcpt_kind kind;
	struct store_txn *txn = NULL;
	Order *o = NULL;
	const char *why = NULL;
	const void *val;
	size_t len;
	uint64_t id = 0;
	order_state to;
	int r;

	kind = mail_parse_rcpt(rcpt, m->cfg->mail_domain, token, &why);
	to = kind == MAIL_RCPT_CANCEL ? ST(CANCELLED) : ST(CONFIRMED);
	if (rep->automatic) {
		m->stats.replies_ignored++;
		snprintf(reply, size, "250 2.0.0 ignored: an automatic reply "
		    "confirms nothing");
		log_info("lmtp: <%s> from <%s>: automatic reply ignored", rcpt,
		    env->mail_from);
		return;
	}
	if (!*token)
		memcpy(token, rep->token, sizeof(token));
	if (!*token || mail_token_decode(token, strlen(token), raw) < 0) {
		snprintf(reply, size, "550 5.7.1 no confirmation token in the "
		    "address, In-Reply-To, References or Subject");
		goto refused;
	}
	token_hash(raw, hash);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(token, sizeof(token));
	r = store_txn_begin(m->d->store, STORE_RDONLY, &txn);
	if (r == 0)
		r = store_get(txn, STORE_DB_TOKENS, hash, sizeof(hash), &val,
		    &len);
	if (r == -ENOENT) {
		snprintf(reply, size, "550 5.7.1 unknown or already used "
		    "token");
		goto refused;
	}
	if (r < 0)
		goto tempfail;
	tr = twinroute__store__token_record__unpack(NULL, len, val);
	if (!tr)
		goto tempfail;
	id = tr->order_id;
	if (tr->expires_unix_ms <= clock_realtime_ms()) {
		snprintf(reply, size, "550 5.7.1 order %" PRIu64 ": the "
		    "confirmation has expired", id);
		goto refused;
	}
	r = order_get(txn, id, &o);
	if (r == 0)
		r = member_get(txn, o->member, &mem);
	if (r < 0)
		goto tempfail;
	if (o->state != ST(AWAITING_CONFIRMATION)) {
		snprintf(reply, size, "550 5.7.1 order %" PRIu64 " is %s: the "
		    "token was used", id, order_strstate(o->state));
		goto refused;
	}
	if (!mail_addr_equal(env->mail_from, mem->email) ||
	    !mail_addr_equal(rep->from, mem->email)) {
		snprintf(reply, size, "550 5.7.1 order %" PRIu64 ": the sender "
		    "is not the member's address", id);
		goto refused;
	}
	if (m->cfg->lmtp_require_authentication && rep->auth != MAIL_AUTH_PASS) {
		snprintf(reply, size, "550 5.7.1 order %" PRIu64 ": no dkim=pass "
		    "or spf=pass from %s", id, m->cfg->lmtp_authserv_id);
		goto refused;
	}
	store_txn_abort(txn);
	txn = NULL;
	snprintf(cause, sizeof(cause), "mail: %s by reply from %s",
	    to == ST(CONFIRMED) ? "confirmed" : "cancelled", mem->email);
	r = mailer_move(m, id, to, cause, NULL, NULL);
	if (r == 0) {
		*ret_seq = store_last_seq(m->d->store);
		if (to == ST(CONFIRMED))
			m->stats.confirmed++;
		else
			m->stats.cancelled++;
		snprintf(reply, size, "250 2.0.0 order %" PRIu64 " %s", id,
		    to == ST(CONFIRMED) ? "confirmed" : "cancelled");
		log_info("%016" PRIx64 " %s by reply from <%s>", id,
		    to == ST(CONFIRMED) ? "confirmed" : "cancelled",
		    env->mail_from);
		goto out;
	}
	if (r == 1) {
		snprintf(reply, size, "550 5.7.1 order %" PRIu64 ": the token "
		    "was used", id);
		goto refused;
	}
tempfail:
	snprintf(reply, size, "451 4.3.0 cannot read the store now: try "
	    "again later");
	log_err("lmtp: <%s>: store: %s", rcpt, tr_strerror(r));
	goto out;
refused:
	m->stats.replies_refused++;
	log_warn("lmtp: <%s> from <%s>: %s", rcpt, env->mail_from, reply + 10);
out:
	OPENSSL_cleanse(token, sizeof(token));
	if (txn)
		store_txn_abort(txn);
	if (tr)
		twinroute__store__token_record__free_unpacked(tr, NULL);
	if (mem)
		twinroute__store__member_record__free_unpacked(mem, NULL);
	if (o)
		twinroute__order__free_unpacked(o, NULL);
}

#define MAILER_REPLY_MAX 200

struct deliver {
	mailer_reply_done_fn done;
	void *arg;
	size_t n;
	char **replies;              /* n pointers into text */
	char text[];
};

static void
deliver_synced(void *arg, int err)
{
	struct deliver *dl = arg;

	if (err < 0)
		for (size_t i = 0; i < dl->n; i++)
			if (dl->replies[i][0] == '2')
				snprintf(dl->replies[i], MAILER_REPLY_MAX,
				    "451 4.3.0 not durable: %s",
				    tr_strerror(err));
	dl->done(dl->arg, (const char *const *)dl->replies, dl->n);
	free(dl->replies);
	free(dl);
}

int
mailer_lmtp_deliver(struct mailer *m, const struct lmtp_envelope *env,
    mailer_reply_done_fn done, void *arg)
{
	struct mail_reply rep;
	struct deliver *dl;
	const char *why = NULL;
	uint64_t seq = 0;
	int r;

	dl = calloc(1, sizeof(*dl) + env->n_rcpts * MAILER_REPLY_MAX);
	if (!dl)
		return -ENOMEM;
	dl->replies = calloc(env->n_rcpts, sizeof(*dl->replies));
	if (!dl->replies) {
		free(dl);
		return -ENOMEM;
	}
	dl->n = env->n_rcpts;
	for (size_t i = 0; i < dl->n; i++)
		dl->replies[i] = dl->text + i * MAILER_REPLY_MAX;
	dl->done = done;
	dl->arg = arg;
	r = mail_parse_reply(env->data, env->data_len, m->cfg->mail_domain,
	    m->cfg->lmtp_authserv_id, &rep, &why);
	for (size_t i = 0; i < env->n_rcpts; i++) {
		if (r < 0) {
			snprintf(dl->replies[i], MAILER_REPLY_MAX, "550 5.6.0 "
			    "cannot read the message: %s",
			    why ? why : "bad header");
			continue;
		}
		mailer_decide(m, env, &rep, env->rcpts[i], dl->replies[i],
		    MAILER_REPLY_MAX, &seq);
	}
	if (seq == 0 || store_after_sync(m->d->store, seq, deliver_synced,
	    dl) < 0)
		deliver_synced(dl, 0);
	return 0;
}
