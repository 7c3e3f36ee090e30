/* SPDX-License-Identifier: ISC */
/* idem.c -- idempotency keys: a log in the store, an index in memory */
#include "order/idem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/be64.h"
#include "common/errcode.h"
#include "common/macro.h"
#include "common/siphash.h"
#include "store.pb-c.h"

typedef Twinroute__Store__IdempotencyRecord IdemRecord;

static const char idem_sipkey_key[] = "idempotency_siphash_key";

#define IDEM_LOG_KEY 16             /* order id BE, fingerprint BE */
#define IDEM_HINT_MIN 1024          /* slots at least */
#define IDEM_BIG (2u << 20)         /* bytes: mmap, huge pages */
#define IDEM_REC_MAX 16             /* a packed record: its time */

/* A slot: id 0 is empty (order ids start at 1). */
struct idem_slot {
	uint64_t fp;
	uint64_t id;
};

struct idem {
	uint8_t sipkey[SIPHASH_KEY_SIZE];
	struct idem_slot *slot;
	size_t mask;                /* slots - 1, a power of two less one */
	size_t count;
};

/* ---- the map: linear probing, backward-shift deletion ----------------- */

/*
 * Zeroed memory for a table or a load buffer. A large one is mapped with
 * transparent huge pages asked for: a million keys are 48 MB, and a fault
 * per 4 KiB page was a good part of a start's time.
 */
static void *
idem_big_alloc(size_t size)
{
	void *p;

	if (size < IDEM_BIG)
		return calloc(1, size);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, size, MADV_HUGEPAGE);
	return p;
}

static void
idem_big_free(void *p, size_t size)
{
	if (p == NULL)
		return;
	if (size < IDEM_BIG)
		free(p);
	else
		munmap(p, size);
}

static int
idem_map_alloc(struct idem *ix, size_t slots)
{
	struct idem_slot *old = ix->slot;
	size_t old_n = old ? ix->mask + 1 : 0;

	ix->slot = idem_big_alloc(slots * sizeof(*ix->slot));
	if (ix->slot == NULL) {
		ix->slot = old;
		return -ENOMEM;
	}
	ix->mask = slots - 1;
	for (size_t i = 0; i < old_n; i++) {
		size_t j = (size_t)old[i].fp & ix->mask;

		if (old[i].id == 0)
			continue;
		while (ix->slot[j].id != 0)
			j = (j + 1) & ix->mask;
		ix->slot[j] = old[i];
	}
	idem_big_free(old, old_n * sizeof(*old));
	return 0;
}

static int
idem_map_add(struct idem *ix, uint64_t fp, uint64_t id)
{
	size_t i;
	int r;

	/* Load at most 3/4. */
	if ((ix->count + 1) * 4 > (ix->mask + 1) * 3) {
		if (ix->mask + 1 > SIZE_MAX / 2 / sizeof(*ix->slot))
			return -ENOMEM;
		r = idem_map_alloc(ix, (ix->mask + 1) * 2);
		if (r < 0)
			return r;
	}
	for (i = (size_t)fp & ix->mask; ix->slot[i].id != 0;
	    i = (i + 1) & ix->mask)
		if (ix->slot[i].id == id && ix->slot[i].fp == fp)
			return 0;
	ix->slot[i] = (struct idem_slot){ .fp = fp, .id = id };
	ix->count++;
	return 0;
}

static void
idem_map_del(struct idem *ix, uint64_t fp, uint64_t id)
{
	size_t i, j, home;

	for (i = (size_t)fp & ix->mask; ix->slot[i].id != 0;
	    i = (i + 1) & ix->mask)
		if (ix->slot[i].id == id && ix->slot[i].fp == fp)
			break;
	if (ix->slot[i].id == 0)
		return;
	/* Pull back each later entry of the run that may sit in the hole:
	 * one whose home is not cyclically within (i, j]. */
	for (j = (i + 1) & ix->mask; ix->slot[j].id != 0;
	    j = (j + 1) & ix->mask) {
		home = (size_t)ix->slot[j].fp & ix->mask;
		if (((j - home) & ix->mask) >= ((j - i) & ix->mask)) {
			ix->slot[i] = ix->slot[j];
			i = j;
		}
	}
	ix->slot[i] = (struct idem_slot){ 0 };
	ix->count--;
}

/* ---- the log ------------------------------------------------------------ */

static uint64_t
idem_fp(const struct idem *ix, const char *member, const char *key)
{
	uint8_t buf[ORDER_MEMBER_MAX + 1 + ORDER_IDEM_KEY_MAX];
	size_t ml = strnlen(member, ORDER_MEMBER_MAX);
	size_t kl = strnlen(key, ORDER_IDEM_KEY_MAX);

	memcpy(buf, member, ml);
	buf[ml] = '\0';
	memcpy(buf + ml + 1, key, kl);
	return siphash24(ix->sipkey, buf, ml + 1 + kl);
}

static void
idem_log_key(uint64_t id, uint64_t fp, uint8_t out[IDEM_LOG_KEY])
{
	be64_put(out, id);
	be64_put(out + 8, fp);
}

static int
idem_log_write(struct store_txn *txn, uint64_t id, uint64_t fp,
    uint64_t created_unix)
{
	IdemRecord rec = TWINROUTE__STORE__IDEMPOTENCY_RECORD__INIT;
	uint8_t k[IDEM_LOG_KEY], buf[IDEM_REC_MAX];
	size_t len;

	rec.created_unix = created_unix;
	len = twinroute__store__idempotency_record__pack(&rec, buf);
	idem_log_key(id, fp, k);
	return store_put(txn, STORE_DB_IDEMPOTENCY_LOG, k, sizeof(k), buf, len);
}

/* Is the log record val ttl seconds old at now? 1 or 0, or an error. */
static int
idem_expired(const void *val, size_t len, uint64_t now, uint32_t ttl)
{
	IdemRecord *rec;
	int r;

	rec = twinroute__store__idempotency_record__unpack(NULL, len, val);
	if (rec == NULL)
		return -TR_EBADMSG;
	r = rec->created_unix + ttl <= now;
	twinroute__store__idempotency_record__free_unpacked(rec, NULL);
	return r;
}

/* The store's SipHash key: read, or drawn and written on first use. */
static int
idem_sipkey_load(struct idem *ix, struct store_txn *txn)
{
	const void *val;
	size_t len;
	int r;

	r = store_get(txn, STORE_DB_META, idem_sipkey_key,
	    sizeof(idem_sipkey_key) - 1, &val, &len);
	if (r == 0 && len != SIPHASH_KEY_SIZE)
		return -TR_EBADMSG;
	if (r == 0) {
		memcpy(ix->sipkey, val, SIPHASH_KEY_SIZE);
		return 0;
	}
	if (r != -ENOENT)
		return r;
	if (RAND_bytes(ix->sipkey, SIPHASH_KEY_SIZE) != 1)
		return -EIO;
	return store_put(txn, STORE_DB_META, idem_sipkey_key,
	    sizeof(idem_sipkey_key) - 1, ix->sipkey, SIPHASH_KEY_SIZE);
}

struct idem_move {
	struct idem *ix;
	struct store_txn *txn;
	size_t n;
};

/* One schema 1 record (key member "\0" key) into the log. */
static int
idem_move_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct idem_move *mv = arg;
	char member[ORDER_MEMBER_MAX + 1], k[ORDER_IDEM_KEY_MAX + 1];
	const char *nul = memchr(key, '\0', key_len);
	size_t ml, kl;
	IdemRecord *rec;
	int r;

	if (nul == NULL)
		return -TR_EBADMSG;
	ml = (size_t)(nul - (const char *)key);
	kl = key_len - ml - 1;
	if (ml == 0 || ml > ORDER_MEMBER_MAX || kl == 0 ||
	    kl > ORDER_IDEM_KEY_MAX)
		return -TR_EBADMSG;
	memcpy(member, key, ml);
	member[ml] = '\0';
	memcpy(k, nul + 1, kl);
	k[kl] = '\0';
	rec = twinroute__store__idempotency_record__unpack(NULL, val_len, val);
	if (rec == NULL)
		return -TR_EBADMSG;
	r = rec->order_id == 0 ? -TR_EBADMSG : idem_log_write(mv->txn,
	    rec->order_id, idem_fp(mv->ix, member, k), rec->created_unix);
	twinroute__store__idempotency_record__free_unpacked(rec, NULL);
	if (r == 0)
		mv->n++;
	return r;
}

struct idem_load {
	struct idem_slot *v;
	size_t n, max;
};

/* One log key into the list. */
static int
idem_load_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct idem_load *ld = arg;

	(void)val;
	(void)val_len;
	if (key_len != IDEM_LOG_KEY || be64_get(key) == 0)
		return -TR_EBADMSG;
	if (ld->n == ld->max)
		return 1;
	ld->v[ld->n].id = be64_get(key);
	ld->v[ld->n].fp = be64_get((const uint8_t *)key + 8);
	ld->n++;
	return 0;
}

/*
 * Put the loaded keys in the map in the order of their home slots: the
 * table is then written front to back instead of at a random place per
 * key (a cache miss each: most of the start's time with a million keys).
 * LSD radix sort on the slot index, 11 bits a pass.
 */
static int
idem_load_sorted(struct idem *ix, struct idem_load *ld)
{
	struct idem_slot *tmp = idem_big_alloc(ld->max * sizeof(*tmp)), *swap;
	size_t count[2048], bits = 0;
	int r = 0;

	if (tmp == NULL)
		return -ENOMEM;
	while (((size_t)1 << bits) <= ix->mask)
		bits++;
	for (size_t shift = 0; shift < bits; shift += 11) {
		size_t sum = 0;

		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < ld->n; i++)
			count[(ld->v[i].fp & ix->mask) >> shift & 2047]++;
		for (size_t b = 0; b < 2048; b++) {
			size_t c = count[b];

			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < ld->n; i++)
			tmp[count[(ld->v[i].fp & ix->mask) >> shift & 2047]++] =
			    ld->v[i];
		swap = ld->v;
		ld->v = tmp;
		tmp = swap;
	}
	idem_big_free(tmp, ld->max * sizeof(*tmp));
	for (size_t i = 0; r == 0 && i < ld->n; i++)
		r = idem_map_add(ix, ld->v[i].fp, ld->v[i].id);
	return r;
}

int
idem_open(struct store *s, struct idem **ret_idem, size_t *ret_moved)
{
	struct idem *ix;
	struct store_txn *txn;
	struct idem_move mv = { 0 };
	struct idem_load ld = { 0 };
	uint64_t entries = 0;
	size_t slots = IDEM_HINT_MIN;
	int r;

	if (s == NULL || ret_idem == NULL)
		return -EINVAL;
	ix = calloc(1, sizeof(*ix));
	if (ix == NULL)
		return -ENOMEM;
	mv.ix = ix;

	r = store_txn_begin(s, 0, &txn);
	if (r < 0)
		goto fail;
	r = idem_sipkey_load(ix, txn);
	if (r == 0) {
		mv.txn = txn;
		r = store_iter(txn, STORE_DB_IDEMPOTENCY, NULL, 0,
		    idem_move_one, &mv);
	}
	if (r == 0 && mv.n > 0)
		r = store_drop(txn, STORE_DB_IDEMPOTENCY);
	if (r < 0) {
		store_txn_abort(txn);
		goto fail;
	}
	r = store_txn_commit(txn, NULL);
	if (r < 0)
		goto fail;

	r = store_txn_begin(s, STORE_RDONLY, &txn);
	if (r < 0)
		goto fail;
	r = store_db_entries(txn, STORE_DB_IDEMPOTENCY_LOG, &entries);
	if (r == 0 && entries > SIZE_MAX / 4 / sizeof(*ld.v))
		r = -ENOMEM;
	while (r == 0 && slots / 4 * 3 < entries)
		slots *= 2;
	if (r == 0)
		r = idem_map_alloc(ix, slots);
	if (r == 0 && entries > 0) {
		ld.max = (size_t)entries;
		ld.v = idem_big_alloc(ld.max * sizeof(*ld.v));
		r = ld.v ? store_iter(txn, STORE_DB_IDEMPOTENCY_LOG, NULL, 0,
		    idem_load_one, &ld) : -ENOMEM;
	}
	store_txn_abort(txn);
	if (r == 0 && ld.n > 0)
		r = idem_load_sorted(ix, &ld);
	idem_big_free(ld.v, ld.max * sizeof(*ld.v));
	if (r < 0)
		goto fail;
	if (ret_moved)
		*ret_moved = mv.n;
	*ret_idem = ix;
	return 0;
fail:
	idem_free(ix);
	return r;
}

struct idem *
idem_free(struct idem *ix)
{
	if (ix == NULL)
		return NULL;
	if (ix->slot)
		idem_big_free(ix->slot, (ix->mask + 1) * sizeof(*ix->slot));
	OPENSSL_cleanse(ix->sipkey, sizeof(ix->sipkey));
	free(ix);
	return NULL;
}

size_t
idem_count(const struct idem *ix)
{
	return ix ? ix->count : 0;
}

/* ---- lookups and writes --------------------------------------------------- */

/*
 * Is (id, fp) member's key, younger than ttl? 0 with the hash of the
 * order's parameters; 1 when it is not (expired, or another key with the
 * same fingerprint); -ENOENT when the log has no such record.
 */
static int
idem_check(struct store_txn *txn, uint64_t id, uint64_t fp,
    const char *member, const char *key, uint64_t now, uint32_t ttl,
    uint8_t ret_hash[ORDER_HASH_SIZE])
{
	uint8_t k[IDEM_LOG_KEY];
	const void *val;
	size_t len;
	Order *o;
	int r;

	idem_log_key(id, fp, k);
	r = store_get(txn, STORE_DB_IDEMPOTENCY_LOG, k, sizeof(k), &val, &len);
	if (r < 0)
		return r;
	r = idem_expired(val, len, now, ttl);
	if (r != 0)
		return r;
	/* Member, key and parameters are the order's own. */
	r = order_get(txn, id, &o);
	if (r < 0)
		return r == -ENOENT ? -TR_EBADMSG : r;
	r = 1;
	if (strcmp(o->member, member) == 0 &&
	    strcmp(o->idempotency_key, key) == 0) {
		order_request_hash(o->service_id, o->quantity, o->note,
		    ret_hash);
		r = 0;
	}
	twinroute__order__free_unpacked(o, NULL);
	return r;
}

int
idem_get(struct idem *ix, struct store_txn *txn, const char *member,
    const char *key, uint64_t now, uint32_t ttl, uint64_t *ret_order_id,
    uint8_t ret_hash[ORDER_HASH_SIZE])
{
	uint64_t fp, id;
	size_t i;
	int r;

	if (ix == NULL || txn == NULL || member == NULL || key == NULL ||
	    ret_order_id == NULL || ret_hash == NULL)
		return -EINVAL;
	fp = idem_fp(ix, member, key);
	for (i = (size_t)fp & ix->mask; ix->slot[i].id != 0;) {
		if (ix->slot[i].fp != fp) {
			i = (i + 1) & ix->mask;
			continue;
		}
		id = ix->slot[i].id;
		r = idem_check(txn, id, fp, member, key, now, ttl, ret_hash);
		if (r == 0) {
			*ret_order_id = id;
			return 0;
		}
		if (r == -ENOENT) {
			/* A hint of a write that failed: the slot now holds
			 * the next entry of the run, if any. */
			idem_map_del(ix, fp, id);
			continue;
		}
		if (r < 0)
			return r;
		i = (i + 1) & ix->mask;
	}
	return -ENOENT;
}

int
idem_put(struct idem *ix, struct store_txn *txn, const char *member,
    const char *key, uint64_t order_id, uint64_t now)
{
	uint64_t fp;
	int r;

	if (ix == NULL || txn == NULL || member == NULL || key == NULL ||
	    order_id == 0)
		return -EINVAL;
	fp = idem_fp(ix, member, key);
	/* The hint first: a record nobody could find would be worse than an
	 * order refused for want of memory. */
	r = idem_map_add(ix, fp, order_id);
	if (r < 0)
		return r;
	r = idem_log_write(txn, order_id, fp, now);
	if (r < 0)
		idem_map_del(ix, fp, order_id);
	return r;
}

struct idem_sweep_ctx {
	uint64_t now;
	uint32_t ttl;
	uint8_t (*keys)[IDEM_LOG_KEY];
	size_t max, n;
};

static int
idem_sweep_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct idem_sweep_ctx *ctx = arg;
	int r;

	if (ctx->n == ctx->max)
		return 1;
	if (key_len != IDEM_LOG_KEY)
		return -TR_EBADMSG;
	r = idem_expired(val, val_len, ctx->now, ctx->ttl);
	if (r <= 0)
		return r < 0 ? r : 1;
	memcpy(ctx->keys[ctx->n++], key, IDEM_LOG_KEY);
	return 0;
}

int
idem_sweep_due(struct store_txn *txn, uint64_t now, uint32_t ttl)
{
	uint8_t key[IDEM_LOG_KEY];
	struct idem_sweep_ctx ctx = { .now = now, .ttl = ttl, .max = 1,
		.keys = &key };
	int r;

	if (txn == NULL)
		return -EINVAL;
	/* The front record's key is taken if it is expired; the walk stops
	 * there, or at once at a young one. */
	r = store_iter(txn, STORE_DB_IDEMPOTENCY_LOG, NULL, 0, idem_sweep_one,
	    &ctx);
	return r < 0 ? r : ctx.n > 0;
}

int
idem_sweep(struct idem *ix, struct store_txn *txn, uint64_t now,
    uint32_t ttl, size_t max, size_t *ret_n)
{
	struct idem_sweep_ctx ctx = { .now = now, .ttl = ttl, .max = max };
	int r;

	if (ix == NULL || txn == NULL)
		return -EINVAL;
	if (ret_n)
		*ret_n = 0;
	if (max == 0)
		return 0;
	ctx.keys = malloc(max * sizeof(*ctx.keys));
	if (ctx.keys == NULL)
		return -ENOMEM;
	/* Keys first, deletes after: no write under the open cursor. */
	r = store_iter(txn, STORE_DB_IDEMPOTENCY_LOG, NULL, 0, idem_sweep_one,
	    &ctx);
	for (size_t i = 0; r == 0 && i < ctx.n; i++) {
		r = store_del(txn, STORE_DB_IDEMPOTENCY_LOG, ctx.keys[i],
		    IDEM_LOG_KEY);
		if (r == 0)
			idem_map_del(ix, be64_get(ctx.keys[i] + 8),
			    be64_get(ctx.keys[i]));
	}
	free(ctx.keys);
	if (r == 0 && ret_n)
		*ret_n = ctx.n;
	return r;
}
