/* SPDX-License-Identifier: ISC */
/* mkstore.c -- a broker store with many orders, for start-up benchmarks */

/*
 * Writes, into a new broker store directory, a catalog (a JSON Lines file
 * imported through catalog_import, as twinroutectl's catalog import does),
 * MEMBERS members and ORDERS orders, through the daemon's own code: every
 * order is created with order_next_id and its idempotency key, and moved
 * through its states with order_enter_state and order_fax_enter, so the
 * orders, their member index, the outboxes, the confirmations with their
 * tokens and expiry entries, and the META counters (next_order_id, the
 * counts by state) are what the daemon would have written.
 *
 * The mix: the oldest orders (spread over --days days, ids in time order)
 * are settled: mostly CHARGED, some FULFILLED, DECLINED, EXPIRED,
 * CANCELLED, CONFIRMATION_FAILED, REJECTED. The newest (placed in the last
 * hour) are in flight: AUTHORIZED (a mail job each), AWAITING_CONFIRMATION
 * (a confirmation, token and expiry entry each), CONFIRMED (provider and
 * fax jobs), DISPATCHED (half with the card fax still queued) and
 * ACCEPTED; --received N leaves N orders RECEIVED, as a crash between the
 * order and the vault's answer does. Settled orders that went through
 * AWAITING_CONFIRMATION get no stored confirmation: leaving that state
 * would remove it anyway.
 *
 * Members share one password hash (scrypt is too slow for thousands):
 * the password on the first line of --password-file, else a random one
 * nobody knows. No vault is made: the daemon makes an empty one.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "catalog/catalog.h"
#include "common/be64.h"
#include "common/clock.h"
#include "common/errcode.h"
#include "common/log.h"
#include "common/macro.h"
#include "mail/reply.h"
#include "member/member.h"
#include "order/idem.h"
#include "order/order.h"
#include "store/store.h"

#define ST(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define FX(x) TWINROUTE__FAX_STATE__FAX_##x

#define MK_ORDERS_DEFAULT 1000000u
#define MK_ORDERS_MAX 100000000u
#define MK_MEMBERS_DEFAULT 5000u
#define MK_MEMBERS_MAX 1000000u
#define MK_MEMBER_FIRST 2000000u      /* member numbers 2000000, ... */
#define MK_TXN_DEFAULT 2000u          /* orders per write transaction */
#define MK_DAYS_DEFAULT 365u
#define MK_IDEM_TTL_DEFAULT 86400u  /* [orders] idempotency_ttl's default */
#define MK_CATALOG_MAX (1u << 20)     /* bytes of the catalog file */
#define MK_ITEMS_MAX 20000u
#define MK_TOKEN_LIFETIME_MS (24u * 3600 * 1000)
#define MK_DOMAIN "broker.example"
#define HOUR_MS (3600u * 1000)
#define DAY_MS (24u * HOUR_MS)

/* What becomes of an order. */
enum fate {
	FATE_RECEIVED,
	FATE_AUTHORIZED,
	FATE_AWAITING,
	FATE_CONFIRMED,
	FATE_DISPATCHED_FAX_QUEUED,
	FATE_DISPATCHED,
	FATE_ACCEPTED,
	FATE_FULFILLED,
	FATE_CHARGED,
	FATE_DECLINED,
	FATE_EXPIRED,
	FATE_CANCELLED,
	FATE_CANCELLED_CONFIRMED,
	FATE_CONFIRMATION_FAILED,
	FATE_REJECTED,
	FATE__COUNT,
};

/* Orders per million of each fate: the in-flight ones are the newest. */
static const struct {
	unsigned ppm;
	bool recent;
} fate_mix[FATE__COUNT] = {
	[FATE_RECEIVED] = { 0, true },            /* --received */
	[FATE_AUTHORIZED] = { 100, true },
	[FATE_AWAITING] = { 5000, true },
	[FATE_CONFIRMED] = { 500, true },
	[FATE_DISPATCHED_FAX_QUEUED] = { 500, true },
	[FATE_DISPATCHED] = { 500, true },
	[FATE_ACCEPTED] = { 1000, true },
	[FATE_FULFILLED] = { 50000, false },
	[FATE_CHARGED] = { 0, false },            /* the rest */
	[FATE_DECLINED] = { 30000, false },
	[FATE_EXPIRED] = { 20000, false },
	[FATE_CANCELLED] = { 19500, false },
	[FATE_CANCELLED_CONFIRMED] = { 500, false },
	[FATE_CONFIRMATION_FAILED] = { 5000, false },
	[FATE_REJECTED] = { 10000, false },
};

struct mk {
	const char *dir, *catalog_path, *password_file;
	unsigned orders, members, received, txn_orders, days;
	uint32_t idem_ttl;          /* 0: keep every idempotency key */
	uint64_t seed, map_size;
	bool json;

	struct store *store;
	struct catalog *cat;
	struct idem *idem;
	const Twinroute__Service **svc;  /* visible services */
	size_t n_svc;
	char hash[MEMBER_HASH_MAX];
	uint64_t rng;
	uint64_t now;

	/* what was written */
	size_t providers, services;
	uint64_t mail_jobs, confirmations, provider_jobs, fax_jobs;
};

/* ---- randomness: splitmix64, reproducible by --seed ---------------- */

static uint64_t
mk_rand(struct mk *m)
{
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t
mk_below(struct mk *m, uint64_t n)
{
	return n ? mk_rand(m) % n : 0;
}

/* ---- the catalog ------------------------------------------------------ */

struct mk_items {
	struct catalog_item *v;
	size_t n;
	json_object **objs;   /* kept alive: the items point into them */
	Twinroute__Provider *prov;
	Twinroute__Service *svc;
	Twinroute__Money *price;
};

static const char *
mk_jstr(json_object *obj, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

static bool
mk_jactive(json_object *obj)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, "active", &v))
		return true;
	return json_object_get_boolean(v);
}

/* Read the catalog file into items; 0 or -errno with a message said. */
static int
mk_catalog_read(const char *path, struct mk_items *it)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, total = 0;
	unsigned long lineno = 0;
	ssize_t n;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL) {
		fprintf(stderr, "mkstore: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	it->v = calloc(MK_ITEMS_MAX, sizeof(*it->v));
	it->objs = calloc(MK_ITEMS_MAX, sizeof(*it->objs));
	it->prov = calloc(MK_ITEMS_MAX, sizeof(*it->prov));
	it->svc = calloc(MK_ITEMS_MAX, sizeof(*it->svc));
	it->price = calloc(MK_ITEMS_MAX, sizeof(*it->price));
	if (!it->v || !it->objs || !it->prov || !it->svc || !it->price) {
		fclose(f);
		return -ENOMEM;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		json_object *obj;
		const char *type;
		size_t i = it->n;

		lineno++;
		total += (size_t)n;
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		if (total > MK_CATALOG_MAX || i == MK_ITEMS_MAX) {
			fprintf(stderr, "mkstore: %s: too large\n", path);
			fclose(f);
			return -EFBIG;
		}
		obj = json_tokener_parse(line);
		if (obj == NULL ||
		    !json_object_is_type(obj, json_type_object)) {
			fprintf(stderr, "mkstore: %s:%lu: not a JSON object\n",
			    path, lineno);
			json_object_put(obj);
			fclose(f);
			return -EINVAL;
		}
		it->objs[i] = obj;
		it->n++;
		type = mk_jstr(obj, "type");
		if (strcmp(type, "provider") == 0) {
			Twinroute__Provider *p = &it->prov[i];

			twinroute__provider__init(p);
			p->id = unconst(mk_jstr(obj, "id"));
			p->name = unconst(mk_jstr(obj, "name"));
			p->email = unconst(mk_jstr(obj, "email"));
			p->fax = unconst(mk_jstr(obj, "fax"));
			p->active = mk_jactive(obj);
			it->v[i].provider = p;
		} else if (strcmp(type, "service") == 0) {
			Twinroute__Service *s = &it->svc[i];
			json_object *price;

			twinroute__service__init(s);
			twinroute__money__init(&it->price[i]);
			s->id = unconst(mk_jstr(obj, "id"));
			s->provider_id = unconst(mk_jstr(obj, "provider"));
			s->category = unconst(mk_jstr(obj, "category"));
			s->name = unconst(mk_jstr(obj, "name"));
			s->description = unconst(mk_jstr(obj, "description"));
			if (json_object_object_get_ex(obj, "price", &price))
				it->price[i].minor =
				    json_object_get_int64(price);
			it->price[i].currency = unconst(mk_jstr(obj,
			    "currency"));
			s->price = &it->price[i];
			s->active = mk_jactive(obj);
			it->v[i].service = s;
		} else {
			fprintf(stderr, "mkstore: %s:%lu: \"type\" must be "
			    "provider or service\n", path, lineno);
			fclose(f);
			return -EINVAL;
		}
	}
	fclose(f);
	return 0;
}

static void
mk_items_free(struct mk_items *it)
{
	for (size_t i = 0; it->objs && i < it->n; i++)
		json_object_put(it->objs[i]);
	free(it->objs);
	free(it->v);
	free(it->prov);
	free(it->svc);
	free(it->price);
}

static int
mk_catalog(struct mk *m)
{
	struct mk_items it = { 0 };
	struct catalog_err err = { .index = -1 };
	const Twinroute__Service *page[256];
	const char *after = NULL;
	bool more = true;
	uint64_t seq;
	int r;

	r = mk_catalog_read(m->catalog_path, &it);
	if (r == 0) {
		r = catalog_import(m->cat, it.v, it.n, &m->providers,
		    &m->services, &seq, &err);
		if (r < 0) {
			fprintf(stderr, "mkstore: %s: item %d: %s\n",
			    m->catalog_path, err.index + 1, err.msg);
			r = -EINVAL;    /* said */
		}
	}
	mk_items_free(&it);
	if (r < 0)
		return r;
	/* Orders go to the services a client could order. */
	while (more) {
		size_t n = catalog_list_services(m->cat, NULL, after, false,
		    NULL, page, ELEMENTSOF(page), &more);
		const Twinroute__Service **v;

		if (n == 0)
			break;
		v = reallocarray(m->svc, m->n_svc + n, sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		m->svc = v;
		memcpy(m->svc + m->n_svc, page, n * sizeof(*page));
		m->n_svc += n;
		after = page[n - 1]->id;
	}
	if (m->n_svc == 0) {
		fprintf(stderr, "mkstore: %s has no active service\n",
		    m->catalog_path);
		return -EINVAL;
	}
	return 0;
}

/* ---- members ------------------------------------------------------- */

static int
mk_password_hash(struct mk *m)
{
	char pw[MEMBER_PASSWORD_MAX + 2];
	uint8_t raw[18];
	int r;

	if (m->password_file) {
		FILE *f = fopen(m->password_file, "re");

		if (f == NULL || fgets(pw, sizeof(pw), f) == NULL) {
			fprintf(stderr, "mkstore: %s: %s\n", m->password_file,
			    f ? "empty" : strerror(errno));
			if (f)
				fclose(f);
			return -EINVAL;
		}
		fclose(f);
		pw[strcspn(pw, "\r\n")] = '\0';
	} else {
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return -EIO;
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(pw + 2 * i, 3, "%02x", raw[i]);
	}
	r = member_password_hash(pw, m->hash);
	OPENSSL_cleanse(pw, sizeof(pw));
	return r;
}

static void
mk_member_number(unsigned i, char out[MEMBER_NUMBER_MAX + 1])
{
	snprintf(out, MEMBER_NUMBER_MAX + 1, "%u", MK_MEMBER_FIRST + i);
}

static int
mk_members(struct mk *m)
{
	struct store_txn *txn;
	int r;

	r = store_txn_begin(m->store, 0, &txn);
	if (r < 0)
		return r;
	for (unsigned i = 0; r == 0 && i < m->members; i++) {
		Twinroute__Store__MemberRecord rec =
		    TWINROUTE__STORE__MEMBER_RECORD__INIT;
		char number[MEMBER_NUMBER_MAX + 1], name[64], email[64];

		mk_member_number(i, number);
		snprintf(name, sizeof(name), "Bench Member %u", i);
		snprintf(email, sizeof(email), "member%u@example.org", i);
		rec.number = number;
		rec.name = name;
		rec.email = email;
		rec.password_hash = m->hash;
		rec.active = true;
		rec.created_unix = (m->now - (uint64_t)m->days * DAY_MS) / 1000;
		rec.updated_unix = rec.created_unix;
		r = member_put(txn, &rec);
	}
	if (r < 0) {
		store_txn_abort(txn);
		return r;
	}
	return store_txn_commit(txn, NULL);
}

/* ---- orders -------------------------------------------------------- */

/* The confirmation a sent mail leaves, as the mailer writes it. */
static int
mk_confirmation(struct mk *m, struct store_txn *txn, uint64_t id,
    uint64_t sent_ms)
{
	Twinroute__Store__Confirmation c = TWINROUTE__STORE__CONFIRMATION__INIT;
	Twinroute__Store__TokenRecord t = TWINROUTE__STORE__TOKEN_RECORD__INIT;
	uint8_t raw[MAIL_TOKEN_RAW], hash[ORDER_HASH_SIZE], key[8], xkey[16];
	uint8_t buf[256];
	char token[MAIL_TOKEN_LEN + 1], msgid[MAIL_TOKEN_LEN + 64];
	unsigned hlen = sizeof(hash);
	size_t len;
	int r;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	EVP_Digest(raw, sizeof(raw), hash, &hlen, EVP_sha256(), NULL);
	mail_token_encode(raw, token);
	snprintf(msgid, sizeof(msgid), "<c-%s@%s>", token, MK_DOMAIN);
	OPENSSL_cleanse(raw, sizeof(raw));
	c.token_hash.data = hash;
	c.token_hash.len = sizeof(hash);
	c.sent_unix_ms = sent_ms;
	c.expires_unix_ms = sent_ms + MK_TOKEN_LIFETIME_MS;
	c.attempts = 1;
	c.message_id = msgid;
	len = twinroute__store__confirmation__get_packed_size(&c);
	if (len > sizeof(buf))
		return -EINVAL;
	twinroute__store__confirmation__pack(&c, buf);
	be64_put(key, id);
	r = store_put(txn, STORE_DB_CONFIRMATIONS, key, sizeof(key), buf, len);
	if (r < 0)
		return r;
	t.order_id = id;
	t.expires_unix_ms = c.expires_unix_ms;
	len = twinroute__store__token_record__get_packed_size(&t);
	twinroute__store__token_record__pack(&t, buf);
	r = store_put(txn, STORE_DB_TOKENS, hash, sizeof(hash), buf, len);
	if (r < 0)
		return r;
	be64_put(xkey, c.expires_unix_ms);
	be64_put(xkey + 8, id);
	m->confirmations++;
	return store_put(txn, STORE_DB_CONFIRM_EXPIRY, xkey, sizeof(xkey), "",
	    0);
}

/* The provider's acknowledgement removes its job, as prov_ack does. */
static int
mk_dispatched(struct store_txn *txn, Order *o, uint64_t t)
{
	uint8_t key[ORDER_DISPATCH_KEY_MAX];
	size_t klen = order_dispatch_key(o->provider_id, o->id, key);
	int r;

	r = store_del(txn, STORE_DB_OUTBOX_PROVIDER, key, klen);
	if (r == 0)
		r = order_enter_state(txn, o, ST(DISPATCHED),
		    "provider: acknowledged", t);
	return r;
}

/* A card fax sent: the dispatcher's steps. */
static int
mk_fax_sent(struct store_txn *txn, Order *o, uint64_t t)
{
	int r;

	r = order_fax_enter(txn, o, FX(DIALING), "fax: dialing", t);
	if (r == 0)
		r = order_fax_enter(txn, o, FX(SENDING), "fax: connected",
		    t + 20000);
	if (r == 0)
		r = order_fax_enter(txn, o, FX(SENT), "fax: sent", t + 45000);
	return r;
}

/* Walk order o from RECEIVED to its fate; t: its creation time. */
static int
mk_walk(struct mk *m, struct store_txn *txn, Order *o, enum fate fate,
    uint64_t t)
{
	static const char *const declines[] = { "NO_CARD", "LIMIT", "EXPIRED" };
	bool recent = fate_mix[fate].recent;
	/* Steps of a settled order are days apart; in-flight ones minutes. */
	uint64_t later = recent ? 60000 : DAY_MS;
	int r;

	if (fate == FATE_RECEIVED)
		return 0;
	if (fate == FATE_DECLINED) {
		const char *why = declines[mk_below(m, ELEMENTSOF(declines))];
		char cause[64];

		snprintf(cause, sizeof(cause), "vault: %s", why);
		r = order_set_str(&o->decline_reason, why);
		return r ? r : order_enter_state(txn, o, ST(DECLINED), cause,
		    t + 30);
	}
	if ((r = order_set_str(&o->card_brand, mk_below(m, 2) ? "VISA" :
	    "MASTERCARD")) < 0)
		return r;
	{
		char last4[5];

		snprintf(last4, sizeof(last4), "%04u",
		    (unsigned)mk_below(m, 10000));
		if ((r = order_set_str(&o->card_last4, last4)) < 0)
			return r;
	}
	r = order_enter_state(txn, o, ST(AUTHORIZED), "vault: OK", t + 30);
	if (r < 0 || fate == FATE_AUTHORIZED) {
		m->mail_jobs += r == 0;
		return r;
	}
	if (fate == FATE_CONFIRMATION_FAILED)
		return order_enter_state(txn, o, ST(CONFIRMATION_FAILED),
		    "mail: 550 5.1.1 no such user", t + 2000);
	r = order_enter_state(txn, o, ST(AWAITING_CONFIRMATION),
	    "mail: sent", t + 2000);
	if (r == 0 && fate == FATE_AWAITING)
		return mk_confirmation(m, txn, o->id, t + 2000);
	if (r < 0)
		return r;
	if (fate == FATE_EXPIRED)
		return order_enter_state(txn, o, ST(EXPIRED),
		    "mail: no reply before the deadline", t + DAY_MS);
	if (fate == FATE_CANCELLED)
		return order_enter_state(txn, o, ST(CANCELLED),
		    "mail: cancelled by the member", t + 600000);
	r = order_enter_state(txn, o, ST(CONFIRMED), "mail: confirmed",
	    t + 600000);
	if (r < 0)
		return r;
	t += 600000;
	if (fate == FATE_CONFIRMED) {
		m->provider_jobs++;
		m->fax_jobs++;
		return 0;
	}
	/* As twinroutectl order cancel does: the fax job goes, the provider
	 * job stays in its outbox. */
	if (fate == FATE_CANCELLED_CONFIRMED)
		return order_enter_state(txn, o, ST(CANCELLED),
		    "admin: cancelled", t + 1000);
	r = mk_dispatched(txn, o, t + 1000);
	if (r < 0)
		return r;
	if (fate == FATE_DISPATCHED_FAX_QUEUED) {
		m->fax_jobs++;
		return 0;
	}
	r = mk_fax_sent(txn, o, t + 2000);
	if (r < 0 || fate == FATE_DISPATCHED)
		return r;
	t += 60000;
	if (fate == FATE_REJECTED)
		return order_enter_state(txn, o, ST(REJECTED),
		    "provider: rejected: no staff on that day", t + later);
	r = order_enter_state(txn, o, ST(ACCEPTED), "provider: accepted",
	    t + later / 10);
	if (r < 0 || fate == FATE_ACCEPTED)
		return r;
	r = order_enter_state(txn, o, ST(FULFILLED), "provider: fulfilled",
	    t + later);
	if (r < 0 || fate == FATE_FULFILLED)
		return r;
	return order_enter_state(txn, o, ST(CHARGED), "provider: charged",
	    t + 2 * later);
}

/* One order: created RECEIVED with its idempotency key, then its fate. */
static int
mk_order(struct mk *m, struct store_txn *txn, enum fate fate, uint64_t t)
{
	Order tmpl = TWINROUTE__ORDER__INIT;
	Twinroute__Money total = TWINROUTE__MONEY__INIT;
	const Twinroute__Service *svc = m->svc[mk_below(m, m->n_svc)];
	char member[MEMBER_NUMBER_MAX + 1], idem[32];
	Order *o;
	int r;

	r = order_next_id(txn, &tmpl.id);
	if (r < 0)
		return r;
	mk_member_number((unsigned)mk_below(m, m->members), member);
	snprintf(idem, sizeof(idem), "mk-%016" PRIx64, mk_rand(m));
	tmpl.member = member;
	tmpl.service_id = svc->id;
	tmpl.provider_id = svc->provider_id;
	tmpl.service_name = svc->name;
	/* Mostly one; a quarter of the orders two or three. */
	tmpl.quantity = 1 + (uint32_t)(mk_below(m, 4) == 0 ?
	    1 + mk_below(m, 2) : 0);
	tmpl.unit_price = svc->price;
	total.minor = svc->price->minor * tmpl.quantity;
	total.currency = svc->price->currency;
	tmpl.amount = &total;
	tmpl.note = unconst("");
	tmpl.idempotency_key = idem;
	r = order_dup(&tmpl, &o);
	if (r < 0)
		return r;
	r = order_enter_state(txn, o, ST(RECEIVED), "member: order", t);
	if (r == 0)
		r = idem_put(m->idem, txn, member, idem, o->id, t / 1000);
	if (r == 0)
		r = mk_walk(m, txn, o, fate, t);
	twinroute__order__free_unpacked(o, NULL);
	return r;
}

/* Orders of an in-flight fate: rounded up, so a small store has some of
 * each (a mail job, a fax job, ...). */
static uint64_t
mk_recent_count(const struct mk *m, size_t f)
{
	return ((uint64_t)m->orders * fate_mix[f].ppm + 999999) / 1000000;
}

/* The fate of the i-th settled order, by weight. */
static enum fate
mk_settled_fate(struct mk *m)
{
	uint64_t x = mk_below(m, 1000000);

	for (size_t f = 0; f < FATE__COUNT; f++) {
		if (fate_mix[f].recent || f == FATE_CHARGED)
			continue;
		if (x < fate_mix[f].ppm)
			return (enum fate)f;
		x -= fate_mix[f].ppm;
	}
	return FATE_CHARGED;
}

static int
mk_orders(struct mk *m)
{
	uint64_t n_recent = m->received, n_old;
	enum fate *recent;
	uint64_t old_start, old_span, new_start, k = 0;
	struct store_txn *txn = NULL;
	int r = 0;

	for (size_t f = 0; f < FATE__COUNT; f++)
		if (fate_mix[f].recent)
			n_recent += mk_recent_count(m, f);
	if (n_recent > m->orders)
		n_recent = m->orders;
	n_old = m->orders - n_recent;
	/* The newest orders, in flight, shuffled. */
	recent = calloc(n_recent ? n_recent : 1, sizeof(*recent));
	if (recent == NULL)
		return -ENOMEM;
	for (size_t f = 0; f < FATE__COUNT; f++) {
		uint64_t c = f == FATE_RECEIVED ? m->received :
		    mk_recent_count(m, f);

		if (!fate_mix[f].recent)
			continue;
		for (uint64_t j = 0; j < c && k < n_recent; j++)
			recent[k++] = (enum fate)f;
	}
	for (uint64_t j = n_recent; j > 1; j--) {
		uint64_t s = mk_below(m, j);
		enum fate tmp = recent[j - 1];

		recent[j - 1] = recent[s];
		recent[s] = tmp;
	}
	/* Settled orders: from --days ago to four days ago (their last
	 * step is up to three days after the order); then the last hour. */
	old_start = m->now - (uint64_t)m->days * DAY_MS;
	old_span = (uint64_t)m->days * DAY_MS - 4 * DAY_MS;
	new_start = m->now - HOUR_MS;

	for (uint64_t i = 0; r == 0 && i < m->orders; i++) {
		enum fate fate;
		uint64_t t;

		if (txn == NULL && (r = store_txn_begin(m->store, 0, &txn)) < 0)
			break;
		if (i < n_old) {
			fate = mk_settled_fate(m);
			t = old_start + old_span * i / (n_old ? n_old : 1);
		} else {
			fate = recent[i - n_old];
			/* Up to 50 minutes ago: every step is in the past. */
			t = new_start + (50 * 60000) * (i - n_old) /
			    (n_recent ? n_recent : 1);
		}
		r = mk_order(m, txn, fate, t);
		if (r == 0 && ((i + 1) % m->txn_orders == 0 ||
		    i + 1 == m->orders)) {
			/* The member index, as the daemon keeps it. */
			r = order_member_index_catch_up(txn, NULL);
			if (r == 0)
				r = store_txn_commit(txn, NULL);
			else
				store_txn_abort(txn);
			txn = NULL;
			if (!m->json && isatty(STDERR_FILENO))
				fprintf(stderr, "\rmkstore: %" PRIu64 " orders",
				    i + 1);
		}
	}
	if (txn != NULL)
		store_txn_abort(txn);
	if (!m->json && isatty(STDERR_FILENO))
		fprintf(stderr, "\n");
	free(recent);
	return r;
}

/* ---- the summary ------------------------------------------------------ */

static int
mk_summary(struct mk *m, double secs)
{
	struct order_counts c;
	struct store_txn *txn;
	struct stat st;
	char path[PATH_MAX];
	uint64_t next = 0, n_mail = 0, n_prov = 0, n_fax = 0, n_conf = 0;
	const void *val;
	size_t len;
	int r;

	r = store_txn_begin(m->store, STORE_RDONLY, &txn);
	if (r < 0)
		return r;
	r = order_counts_get(txn, &c);
	if (r == -ENOENT) {
		/* No order, no counts: the daemon counts none at start. */
		memset(&c, 0, sizeof(c));
		r = 0;
	}
	if (r == 0 && store_get(txn, STORE_DB_META, "next_order_id", 13, &val,
	    &len) == 0 && len == 8)
		next = be64_get(val);
	if (r == 0)
		r = store_db_entries(txn, STORE_DB_OUTBOX_MAIL, &n_mail);
	if (r == 0)
		r = store_db_entries(txn, STORE_DB_OUTBOX_PROVIDER, &n_prov);
	if (r == 0)
		r = store_db_entries(txn, STORE_DB_OUTBOX_FAX, &n_fax);
	if (r == 0)
		r = store_db_entries(txn, STORE_DB_CONFIRMATIONS, &n_conf);
	store_txn_abort(txn);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/data.mdb", m->dir);
	if (stat(path, &st) < 0)
		st.st_size = 0;
	if (m->json) {
		printf("{\"orders\":%u,\"members\":%u,\"providers\":%zu,"
		    "\"services\":%zu,\"next_order_id\":%" PRIu64 ","
		    "\"seconds\":%.2f,\"bytes\":%lld,\"mail_jobs\":%" PRIu64
		    ",\"confirmations\":%" PRIu64 ",\"provider_jobs\":%" PRIu64
		    ",\"fax_jobs\":%" PRIu64 ",\"states\":{", m->orders,
		    m->members, m->providers, m->services, next, secs,
		    (long long)st.st_size, n_mail, n_conf, n_prov, n_fax);
		for (size_t i = 1, first = 1; i < ORDER_N_STATES; i++) {
			if (c.state[i] == 0)
				continue;
			printf("%s\"%s\":%" PRIu64, first ? "" : ",",
			    order_strstate((order_state)i), c.state[i]);
			first = 0;
		}
		printf("},\"fax\":{");
		for (size_t i = 0, first = 1; i < ORDER_N_FAX; i++) {
			if (c.fax[i] == 0)
				continue;
			printf("%s\"%s\":%" PRIu64, first ? "" : ",",
			    order_strfax((fax_state)i), c.fax[i]);
			first = 0;
		}
		printf("}}\n");
		return 0;
	}
	printf("%s: %u orders (next id %" PRIu64 "), %u members, %zu "
	    "providers, %zu services in %.1f s, %lld bytes\n", m->dir,
	    m->orders, next, m->members, m->providers, m->services, secs,
	    (long long)st.st_size);
	printf("outboxes: %" PRIu64 " mail, %" PRIu64 " provider, %" PRIu64
	    " fax; %" PRIu64 " confirmations awaiting a reply\n", n_mail,
	    n_prov, n_fax, n_conf);
	for (size_t i = 1; i < ORDER_N_STATES; i++)
		if (c.state[i] != 0)
			printf("  %-22s %" PRIu64 "\n",
			    order_strstate((order_state)i), c.state[i]);
	for (size_t i = 0; i < ORDER_N_FAX; i++)
		if (c.fax[i] != 0)
			printf("  %-22s %" PRIu64 "\n",
			    order_strfax((fax_state)i), c.fax[i]);
	return 0;
}

/* Expire the idempotency keys the daemon's upkeep would have: with a
 * year of orders, the log keeps only the last day's. */
static int
mk_idem_expire(struct mk *m)
{
	const size_t chunk = 65536;
	struct store_txn *txn;
	size_t n = chunk;
	int r = 0;

	while (r == 0 && m->idem_ttl > 0 && n == chunk) {
		r = store_txn_begin(m->store, 0, &txn);
		if (r < 0)
			break;
		r = idem_sweep(m->idem, txn, m->now / 1000, m->idem_ttl, chunk,
		    &n);
		if (r == 0)
			r = store_txn_commit(txn, NULL);
		else
			store_txn_abort(txn);
	}
	return r;
}

/* ---- main --------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mkstore [-n ORDERS] [-m MEMBERS] [-c CATALOG] [-p FILE]\n"
	    "           [--received N] [--days D] [--idem-ttl SECS] [--txn N]\n"
	    "           [--seed N] [--map-size BYTES] [--json] DIR\n"
	    "\n"
	    "Writes a new broker store in DIR (the daemon's [store] path,\n"
	    "STATE_DIR/broker by default) with a catalog, members and orders\n"
	    "in a realistic mix of states, through the daemon's own code.\n"
	    "\n"
	    "  -n, --orders N       orders (default %u)\n"
	    "  -m, --members N      members 2000000, 2000001, ...\n"
	    "                       (default %u)\n"
	    "  -c, --catalog FILE   JSON Lines catalog, as twinroutectl\n"
	    "                       catalog import reads it (default\n"
	    "                       conf/sample-catalog.jsonl)\n"
	    "  -p, --password-file FILE  every member's password: its first\n"
	    "                       line (default: a random one)\n"
	    "      --received N     also leave N orders RECEIVED (a crash\n"
	    "                       before the vault answered)\n"
	    "      --days D         the orders span D days, at least 5\n"
	    "                       (default %u)\n"
	    "      --idem-ttl SECS  idempotency keys older than this are\n"
	    "                       expired, as the daemon would have done\n"
	    "                       (default 86400, [orders] idempotency_ttl's\n"
	    "                       default; 0 keeps every key)\n"
	    "      --txn N          orders per write transaction (default %u)\n"
	    "      --seed N         for the mix and the members (default 1)\n"
	    "      --map-size BYTES LMDB map size (default 8 GiB)\n"
	    "      --json           the summary as one JSON object\n",
	    MK_ORDERS_DEFAULT, MK_MEMBERS_DEFAULT, MK_DAYS_DEFAULT,
	    MK_TXN_DEFAULT);
}

/* The folders above path, mode 0700 where made (store_open makes the
 * last one). 0, or -1 with errno. */
static int
mk_mkdir_parents(const char *path)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

static int
mk_num(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "mkstore: %s: want a number from %" PRIu64
		    " to %" PRIu64 "\n", s, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int
main(int argc, char **argv)
{
	enum { O_RECEIVED = 256, O_DAYS, O_IDEM_TTL, O_TXN, O_SEED, O_MAP,
		O_JSON };
	static const struct option longopts[] = {
		{ "orders", required_argument, NULL, 'n' },
		{ "members", required_argument, NULL, 'm' },
		{ "catalog", required_argument, NULL, 'c' },
		{ "password-file", required_argument, NULL, 'p' },
		{ "received", required_argument, NULL, O_RECEIVED },
		{ "days", required_argument, NULL, O_DAYS },
		{ "idem-ttl", required_argument, NULL, O_IDEM_TTL },
		{ "txn", required_argument, NULL, O_TXN },
		{ "seed", required_argument, NULL, O_SEED },
		{ "map-size", required_argument, NULL, O_MAP },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mk m = {
		.catalog_path = "conf/sample-catalog.jsonl",
		.orders = MK_ORDERS_DEFAULT,
		.members = MK_MEMBERS_DEFAULT,
		.txn_orders = MK_TXN_DEFAULT,
		.days = MK_DAYS_DEFAULT,
		.idem_ttl = MK_IDEM_TTL_DEFAULT,
		.seed = 1,
		.map_size = (uint64_t)8 << 30,
	};
	struct store_opts so = { 0 };
	struct event_base *base;
	char path[PATH_MAX];
	uint64_t v, t0;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "n:m:c:p:h", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'n':
			if (mk_num(optarg, 0, MK_ORDERS_MAX, &v) < 0)
				return 2;
			m.orders = (unsigned)v;
			break;
		case 'm':
			if (mk_num(optarg, 1, MK_MEMBERS_MAX, &v) < 0)
				return 2;
			m.members = (unsigned)v;
			break;
		case 'c':
			m.catalog_path = optarg;
			break;
		case 'p':
			m.password_file = optarg;
			break;
		case O_RECEIVED:
			if (mk_num(optarg, 0, MK_ORDERS_MAX, &v) < 0)
				return 2;
			m.received = (unsigned)v;
			break;
		case O_DAYS:
			if (mk_num(optarg, 5, 100 * 365, &v) < 0)
				return 2;
			m.days = (unsigned)v;
			break;
		case O_IDEM_TTL:
			if (mk_num(optarg, 0, UINT32_MAX, &v) < 0)
				return 2;
			m.idem_ttl = (uint32_t)v;
			break;
		case O_TXN:
			if (mk_num(optarg, 1, 1000000, &v) < 0)
				return 2;
			m.txn_orders = (unsigned)v;
			break;
		case O_SEED:
			if (mk_num(optarg, 0, UINT64_MAX, &m.seed) < 0)
				return 2;
			break;
		case O_MAP:
			if (mk_num(optarg, 1u << 20, (uint64_t)1 << 40,
			    &m.map_size) < 0)
				return 2;
			break;
		case O_JSON:
			m.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	m.dir = argv[optind];
	if (m.received > m.orders) {
		fprintf(stderr, "mkstore: --received is more than --orders\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/data.mdb", m.dir);
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "mkstore: %s holds a store already\n", m.dir);
		return 1;
	}
	if (mk_mkdir_parents(m.dir) < 0) {
		fprintf(stderr, "mkstore: %s: %s\n", m.dir, strerror(errno));
		return 1;
	}
	/* Not a line per transition. */
	log_init("mkstore", LOG_TARGET_STDERR, LOG_LEVEL_WARN, 0);
	m.rng = m.seed;
	m.now = clock_realtime_ms();
	t0 = clock_monotonic_us();

	/* With an event base the store commits without fsync (its sync
	 * thread syncs behind) and store_close syncs once: the loop itself
	 * never runs. */
	base = event_base_new();
	if (base == NULL) {
		fprintf(stderr, "mkstore: cannot create an event base\n");
		return 1;
	}
	so.path = m.dir;
	so.map_size = (size_t)m.map_size;
	r = store_open(&so, base, &m.store);
	if (r < 0) {
		fprintf(stderr, "mkstore: store %s: %s\n", m.dir,
		    tr_strerror(r));
		return 1;
	}
	r = catalog_open(m.store, &m.cat);
	if (r == 0)
		r = idem_open(m.store, &m.idem, NULL);
	if (r == 0)
		r = mk_catalog(&m);
	if (r == 0)
		r = mk_password_hash(&m);
	if (r == 0)
		r = mk_members(&m);
	if (r == 0)
		r = mk_orders(&m);
	if (r == 0)
		r = mk_idem_expire(&m);
	if (r == 0)
		r = mk_summary(&m, (double)(clock_monotonic_us() - t0) / 1e6);
	if (r < 0 && r != -EINVAL && r != -EFBIG)
		fprintf(stderr, "mkstore: %s: %s\n", m.dir, tr_strerror(r));
	free(m.svc);
	m.cat = catalog_free(m.cat);
	m.idem = idem_free(m.idem);
	m.store = store_close(m.store);
	event_base_free(base);
	return r < 0 ? 1 : 0;
}
