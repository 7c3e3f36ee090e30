/* SPDX-License-Identifier: ISC */
/* vault.c -- the sealed card vault: its thread, its queues, its operations */

/*
 * Threads. The loop calls vault_submit(); the request is copied into a
 * slot (from a free list the loop owns: no malloc per request once warm)
 * and queued under req_lock; the vault thread is signalled only if it is
 * asleep. Submissions made while the loop is delivering replies are kept
 * on a loop-local list and queued with one lock at the end of the
 * delivery. The vault thread takes the whole queue at once, runs it, and
 * appends the finished slots to the reply queue under rep_lock, writing
 * the eventfd only if the loop has not been told already; the loop drains
 * every reply per wake-up, runs each callback, wipes the slot and puts it
 * back on its free list.
 *
 * Batches. Consecutive authentications are grouped (up to
 * VAULT_GROUP_MAX) into one LMDB write transaction; their audit lines go
 * out with one write(2) and one fdatasync before the transaction commits.
 * Any other operation ends the group and runs alone: its audit line is
 * written (and fdatasynced if it changes state) before its effect is
 * committed or installed. If the audit write fails, the operation (every
 * authentication of the group) is refused with VAULT_AUDIT_FAILED and its
 * transaction aborted. Sealing is the one exception: it always happens.
 *
 * Durability. The environment is MDB_NOSYNC: key, card and init changes
 * are synced at once after their commit; authentications (the spend log)
 * at least once a second while unsynced, and on seal and close.
 *
 * Keys. The KEK, the data key, the enrolment private key and the shares
 * given so far live in secmem (locked, not dumped, wiped on seal); every
 * decrypted record and every CardInput is unpacked into secmem scratch
 * that is wiped after each request.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/errcode.h"
#include "common/macro.h"
#include "vault.pb-c.h"
#include "vault/card.h"
#include "vault/envelope.h"
#include "vault/faxdoc.h"
#include "vault/secmem.h"
#include "vault/vault.h"
#include "vault/vault_int.h"

#define VAULT_CHUNK_SLOTS 64
#define VAULT_GROUP_MAX 256	 /* authentications per transaction */
#define VAULT_SYNC_INTERVAL 1	 /* seconds between syncs, at most */
#define VAULT_SPIN_NS 40000	 /* look for more work before sleeping */
#define VAULT_SPEND_WINDOW 86400 /* the rolling daily limit */
#define VAULT_SPEND_MAX 256	 /* entries per member and currency */
#define VAULT_PLAIN_ARENA (64u << 10)
#define VAULT_SECRET_ARENA 2048u
#define VAULT_RECORD_MAX 512 /* a packed CardInput, at most */
#define VAULT_META_KEY "vault"
#define VAULT_KEY_FILE_MAX 256
#define VAULT_SPEND_KEY_MAX (VAULT_MEMBER_MAX + 1 + 3)
#define VAULT_AAD_DEK "twinroute dek"
#define VAULT_AAD_ENROL "twinroute enrol"
#define VAULT_FAX_BROKER_DEFAULT "twinroute"

struct vault_slot {
	struct vault_slot *next;
	vault_reply_fn cb;
	void *arg;
	struct vault_request req;
	struct vault_reply reply;
};

struct vault_chunk {
	struct vault_chunk *next;
	struct vault_slot slots[VAULT_CHUNK_SLOTS];
};

/*
 * A bump allocator for protobuf-c unpacking: reset after every request.
 * A secret arena lives in secmem and is wiped on reset. Blocks beyond
 * the buffer come from malloc (or secmem) and are freed on reset.
 */
struct vault_arena_extra {
	struct vault_arena_extra *next;
	size_t size; /* keeps the block after it 16-byte aligned */
};

struct vault_arena {
	uint8_t *buf;
	size_t cap, used;
	bool secret;
	struct vault_arena_extra *extra;
	ProtobufCAllocator pb;
};

/* Key material, one secmem block; wiped on seal. */
struct vault_keys {
	uint8_t kek[VAULT_KEY_SIZE];
	uint8_t dek[VAULT_KEY_SIZE];
	struct vault_share given[VAULT_SHARES_MAX]; /* unseal progress */
	unsigned n_given;
};

/* Keys being made or tried before they are installed; secmem. */
struct vault_newkeys {
	uint8_t kek[VAULT_KEY_SIZE];
	uint8_t dek[VAULT_KEY_SIZE];
	uint8_t enrol[32];
	struct vault_share shares[VAULT_SHARES_MAX];
	char hex[VAULT_KEY_FILE_MAX];
};

/* VaultMeta, decoded. Nothing secret. */
struct vault_meta {
	uint8_t id[VAULT_ID_SIZE];
	uint8_t kcv[VAULT_KCV_SIZE];
	unsigned shares, threshold;
	bool key_file_mode;
	uint32_t key_version;
	uint8_t enrol_pub[32];
	uint8_t wrapped_enrol[32 + VAULT_TAG_SIZE];
	uint8_t wrapped_enrol_nonce[VAULT_NONCE_SIZE];
	uint64_t created_unix;
};

struct vault {
	/* Fixed at open. */
	char *path;
	char *key_file; /* NULL: shares */
	char *audit_path;
	int64_t order_limit, daily_limit;
	time_t (*now)(void);
	bool lazy_auth_sync;
	char *fax_font; /* NULL: the page's default font */
	unsigned fax_font_px;
	char *fax_broker;
	char *fax_ident;
	struct event_base *base;
	int efd;
	struct event *ev;
	struct event *flush_ev;      /* hands the round's requests over */
	pthread_t thread;
	bool thread_started;
	bool locks_init;

	/* Loop thread only. */
	struct vault_slot *free_slots;
	struct vault_chunk *chunks;
	size_t pending;
	bool dispatching;
	bool flush_armed;
	bool closing;
	/* Requests made in this round of the loop, handed to the thread
	 * together at its end: one wake-up per round, not per request. */
	struct vault_slot *loop_head, **loop_tail;
	bool seen_initialized;       /* as of the last reply (vault_state) */
	bool seen_sealed;

	/* Requests, under req_lock. */
	pthread_mutex_t req_lock;
	pthread_cond_t req_cond;
	struct vault_slot *req_head, **req_tail;
	bool idle;
	bool stop;
	bool spin;                   /* another CPU can run the loop meanwhile */

	/* Replies, under rep_lock. */
	pthread_mutex_t rep_lock;
	struct vault_slot *rep_head, **rep_tail;
	bool notified;

	/* The vault thread's (vault_open's before, vault_close's after). */
	struct vault_db db;
	struct vault_audit audit;
	struct vault_meta meta;
	bool initialized;
	bool sealed;
	struct vault_keys *keys;
	EVP_PKEY *enrol;
	struct vault_gcm gcm;
	uint32_t n_cards;
	bool dirty;	  /* store or audit lines not yet synced */
	bool audit_dirty; /* audit lines not yet fdatasynced */
	int sync_err;
	struct timespec last_sync;
	struct vault_arena plain;
	struct vault_arena secret;
	uint8_t *record; /* secmem, VAULT_RECORD_MAX */
	uint8_t *pack;	 /* packing scratch, pack_cap bytes */
	size_t pack_cap;
};

/* A run of authentications in one write transaction. */
struct vault_group {
	struct vault_txn txn;
	bool txn_open;
	bool wrote; /* spend logs changed: commit */
	bool sync;  /* an authentication succeeded: fdatasync */
	struct vault_slot *head, **tail;
	unsigned n;
};

/* ---- names -------------------------------------------------------------- */

const char *
vault_strcode(enum vault_code code)
{
	switch (code) {
	case VAULT_OK:
		return "OK";
	case VAULT_SEALED:
		return "VAULT_SEALED";
	case VAULT_NO_CARD:
		return "NO_CARD";
	case VAULT_EXPIRED:
		return "EXPIRED";
	case VAULT_DISABLED:
		return "DISABLED";
	case VAULT_LIMIT:
		return "LIMIT";
	case VAULT_TAMPERED:
		return "TAMPERED";
	case VAULT_NOT_INITIALIZED:
		return "NOT_INITIALIZED";
	case VAULT_ALREADY_INITIALIZED:
		return "ALREADY_INITIALIZED";
	case VAULT_BAD_SHARE:
		return "BAD_SHARE";
	case VAULT_WRONG_VAULT:
		return "WRONG_VAULT";
	case VAULT_BAD_KEY:
		return "BAD_KEY";
	case VAULT_BAD_CARD:
		return "BAD_CARD";
	case VAULT_BAD_REQUEST:
		return "BAD_REQUEST";
	case VAULT_AUDIT_FAILED:
		return "AUDIT_FAILED";
	case VAULT_ERROR:
		return "ERROR";
	case VAULT_CODE__COUNT:
		break;
	}
	return "ERROR";
}

const char *
vault_strop(enum vault_op op)
{
	switch (op) {
	case VAULT_OP_STATUS:
		return "status";
	case VAULT_OP_INIT:
		return "init";
	case VAULT_OP_UNSEAL:
		return "unseal";
	case VAULT_OP_SEAL:
		return "seal";
	case VAULT_OP_ROTATE:
		return "rotate";
	case VAULT_OP_CARD_SET:
		return "card_set";
	case VAULT_OP_CARD_SHOW:
		return "card_show";
	case VAULT_OP_CARD_REMOVE:
		return "card_remove";
	case VAULT_OP_AUTHENTICATE:
		return "authenticate";
	case VAULT_OP_AUDIT:
		return "admin";
	case VAULT_OP_FAX_PAGE:
		return "fax_page";
	case VAULT_OP_BACKUP:
		return "backup";
	case VAULT_OP__COUNT:
		break;
	}
	return "unknown";
}

static bool
vault_op_has_member(enum vault_op op)
{
	return op == VAULT_OP_CARD_SET || op == VAULT_OP_CARD_SHOW ||
	       op == VAULT_OP_CARD_REMOVE || op == VAULT_OP_AUTHENTICATE ||
	       op == VAULT_OP_AUDIT || op == VAULT_OP_FAX_PAGE;
}

/* ---- small helpers ------------------------------------------------------ */

static void _printf_(3, 4)
    vault_set(struct vault_reply *y, enum vault_code code, const char *fmt, ...)
{
	va_list ap;

	y->code = code;
	va_start(ap, fmt);
	if (vsnprintf(y->message, sizeof(y->message), fmt, ap) < 0)
		y->message[0] = '\0';
	va_end(ap);
}

static time_t
vault_now(const struct vault *v)
{
	return v->now ? v->now() : time(NULL);
}

/* Member numbers: 1..VAULT_MEMBER_MAX printable ASCII, no blanks. */
static bool
vault_member_ok(const char *member, size_t *ret_len)
{
	size_t len = strnlen(member, VAULT_MEMBER_MAX + 1);

	if (len == 0 || len > VAULT_MEMBER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (member[i] <= ' ' || member[i] > '~')
			return false;
	}
	*ret_len = len;
	return true;
}

/*
 * A string field of a request: NUL-terminated within its SIZE bytes,
 * non-empty unless may_be_empty, UTF-8 without control characters.
 */
static bool
vault_text_ok(const char *s, size_t size, bool may_be_empty)
{
	size_t len = strnlen(s, size), i, k;

	if (len == size || (len == 0 && !may_be_empty))
		return false;
	for (i = 0; i < len; i += k) {
		const unsigned char *b = (const unsigned char *)s + i;
		uint32_t cp, min;

		if (b[0] < 0x80) {
			if (b[0] < 0x20 || b[0] == 0x7f)
				return false;
			k = 1;
			continue;
		}
		if ((b[0] & 0xe0) == 0xc0)
			k = 2, cp = b[0] & 0x1fu, min = 0x80;
		else if ((b[0] & 0xf0) == 0xe0)
			k = 3, cp = b[0] & 0x0fu, min = 0x800;
		else if ((b[0] & 0xf8) == 0xf0)
			k = 4, cp = b[0] & 0x07u, min = 0x10000;
		else
			return false;
		if (k > len - i)
			return false;
		for (size_t j = 1; j < k; j++) {
			if ((b[j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (b[j] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
			return false;
	}
	return true;
}

static void
vault_be32(uint8_t *p, uint32_t x)
{
	p[0] = (uint8_t)(x >> 24);
	p[1] = (uint8_t)(x >> 16);
	p[2] = (uint8_t)(x >> 8);
	p[3] = (uint8_t)x;
}

static uint8_t *
vault_pack_buf(struct vault *v, size_t len)
{
	uint8_t *p;

	if (len <= v->pack_cap)
		return v->pack;
	p = realloc(v->pack, len);
	if (!p)
		return NULL;
	v->pack = p;
	v->pack_cap = len;
	return p;
}

/* ---- arenas ------------------------------------------------------------- */

static void *
vault_arena_alloc(void *data, size_t size)
{
	struct vault_arena *a = data;
	struct vault_arena_extra *x;
	size_t need = (size + 15) & ~(size_t)15;

	if (need < size)
		return NULL;
	if (need <= a->cap - a->used) {
		void *p = a->buf + a->used;

		a->used += need;
		return p;
	}
	if (size > SIZE_MAX - sizeof(*x))
		return NULL;
	x = a->secret ? secmem_zalloc(sizeof(*x) + size)
		      : malloc(sizeof(*x) + size);
	if (!x)
		return NULL;
	x->next = a->extra;
	x->size = size;
	a->extra = x;
	return x + 1;
}

static void
vault_arena_free(void *data, void *p)
{
	/* Everything goes at the next reset. */
	(void)data;
	(void)p;
}

static void
vault_arena_reset(struct vault_arena *a)
{
	while (a->extra) {
		struct vault_arena_extra *x = a->extra;

		a->extra = x->next;
		if (a->secret)
			secmem_free(x);
		else
			free(x);
	}
	if (a->secret && a->used)
		OPENSSL_cleanse(a->buf, a->used);
	a->used = 0;
}

static int
vault_arena_init(struct vault_arena *a, size_t cap, bool secret)
{
	a->buf = secret ? secmem_zalloc(cap) : malloc(cap);
	if (!a->buf)
		return -ENOMEM;
	a->cap = cap;
	a->used = 0;
	a->secret = secret;
	a->extra = NULL;
	a->pb.alloc = vault_arena_alloc;
	a->pb.free = vault_arena_free;
	a->pb.allocator_data = a;
	return 0;
}

static void
vault_arena_done(struct vault_arena *a)
{
	vault_arena_reset(a);
	if (a->secret)
		secmem_free(a->buf);
	else
		free(a->buf);
	a->buf = NULL;
}

/* ---- meta ---------------------------------------------------------------- */

static int
vault_meta_put(struct vault *v, struct vault_txn *t, const struct vault_meta *m)
{
	Twinroute__Vault__VaultMeta pm = TWINROUTE__VAULT__VAULT_META__INIT;
	uint8_t buf[512];
	size_t len;

	pm.vault_id.data = unconst(m->id);
	pm.vault_id.len = VAULT_ID_SIZE;
	pm.kcv.data = unconst(m->kcv);
	pm.kcv.len = VAULT_KCV_SIZE;
	pm.shares = m->shares;
	pm.threshold = m->threshold;
	pm.key_file_mode = m->key_file_mode;
	pm.current_key_version = m->key_version;
	pm.enrol_pub.data = unconst(m->enrol_pub);
	pm.enrol_pub.len = sizeof(m->enrol_pub);
	pm.wrapped_enrol_key.data = unconst(m->wrapped_enrol);
	pm.wrapped_enrol_key.len = sizeof(m->wrapped_enrol);
	pm.wrapped_enrol_nonce.data = unconst(m->wrapped_enrol_nonce);
	pm.wrapped_enrol_nonce.len = sizeof(m->wrapped_enrol_nonce);
	pm.created_unix = m->created_unix;
	pm.schema_version = VAULT_SCHEMA_VERSION;
	len = twinroute__vault__vault_meta__get_packed_size(&pm);
	if (len > sizeof(buf))
		return -EOVERFLOW;
	len = twinroute__vault__vault_meta__pack(&pm, buf);
	(void)v;
	return vault_put(
	    t, VDB_META, VAULT_META_KEY, sizeof(VAULT_META_KEY) - 1, buf, len);
}

/* Read the meta record: 0 (initialized), -ENOENT (not yet), -EBADMSG. */
static int
vault_meta_load(struct vault *v)
{
	Twinroute__Vault__VaultMeta *pm;
	struct vault_meta *m = &v->meta;
	struct vault_txn t;
	MDB_val val;
	size_t n = 0;
	int r;

	r = vault_txn_begin(&v->db, true, &t);
	if (r < 0)
		return r;
	r = vault_count(&t, VDB_CARDS, &n);
	if (r == 0)
		v->n_cards = (uint32_t)n;
	if (r == 0)
		r = vault_get(&t, VDB_META, VAULT_META_KEY,
		    sizeof(VAULT_META_KEY) - 1, &val);
	if (r < 0)
		goto out;
	pm = twinroute__vault__vault_meta__unpack(
	    NULL, val.mv_size, val.mv_data);
	if (!pm) {
		r = -EBADMSG;
		goto out;
	}
	/* Another schema is not damage: say which, so the admin can tell. */
	if (pm->schema_version != VAULT_SCHEMA_VERSION) {
		twinroute__vault__vault_meta__free_unpacked(pm, NULL);
		r = -TR_ESCHEMA;
		goto out;
	}
	r = -EBADMSG;
	if (pm->vault_id.len != VAULT_ID_SIZE ||
	    pm->kcv.len != VAULT_KCV_SIZE ||
	    pm->enrol_pub.len != sizeof(m->enrol_pub) ||
	    pm->wrapped_enrol_key.len != sizeof(m->wrapped_enrol) ||
	    pm->wrapped_enrol_nonce.len != sizeof(m->wrapped_enrol_nonce) ||
	    pm->current_key_version == 0 ||
	    (!pm->key_file_mode &&
		(pm->threshold < 2 || pm->threshold > pm->shares ||
		    pm->shares > VAULT_SHARES_MAX))) {
		twinroute__vault__vault_meta__free_unpacked(pm, NULL);
		goto out;
	}
	memcpy(m->id, pm->vault_id.data, VAULT_ID_SIZE);
	memcpy(m->kcv, pm->kcv.data, VAULT_KCV_SIZE);
	m->shares = pm->shares;
	m->threshold = pm->threshold;
	m->key_file_mode = pm->key_file_mode;
	m->key_version = pm->current_key_version;
	memcpy(m->enrol_pub, pm->enrol_pub.data, sizeof(m->enrol_pub));
	memcpy(m->wrapped_enrol, pm->wrapped_enrol_key.data,
	    sizeof(m->wrapped_enrol));
	memcpy(m->wrapped_enrol_nonce, pm->wrapped_enrol_nonce.data,
	    sizeof(m->wrapped_enrol_nonce));
	m->created_unix = pm->created_unix;
	twinroute__vault__vault_meta__free_unpacked(pm, NULL);
	r = 0;
out:
	vault_txn_abort(&t);
	return r;
}

/* ---- keys ---------------------------------------------------------------- */

/* AAD of a wrapped data key: label, vault id, version. */
static size_t
vault_dek_aad(const struct vault_meta *m, uint32_t version, uint8_t *aad)
{
	size_t n = sizeof(VAULT_AAD_DEK) - 1;

	memcpy(aad, VAULT_AAD_DEK, n);
	memcpy(aad + n, m->id, VAULT_ID_SIZE);
	n += VAULT_ID_SIZE;
	vault_be32(aad + n, version);
	return n + 4;
}

/* AAD of the wrapped enrolment key: label, vault id, public key. */
static size_t
vault_enrol_aad(const struct vault_meta *m, uint8_t *aad)
{
	size_t n = sizeof(VAULT_AAD_ENROL) - 1;

	memcpy(aad, VAULT_AAD_ENROL, n);
	memcpy(aad + n, m->id, VAULT_ID_SIZE);
	n += VAULT_ID_SIZE;
	memcpy(aad + n, m->enrol_pub, sizeof(m->enrol_pub));
	return n + sizeof(m->enrol_pub);
}

/* Wrap dek under kek and put it into the keys database. */
static int
vault_dek_put(struct vault_txn *t, const struct vault_meta *m,
    const uint8_t kek[VAULT_KEY_SIZE], uint32_t version,
    const uint8_t dek[VAULT_KEY_SIZE])
{
	Twinroute__Vault__WrappedKey wk = TWINROUTE__VAULT__WRAPPED_KEY__INIT;
	uint8_t nonce[VAULT_NONCE_SIZE];
	uint8_t ct[VAULT_KEY_SIZE + VAULT_TAG_SIZE];
	uint8_t aad[64], key[4], buf[128];
	size_t alen, len;
	int r;

	r = vault_random(nonce, sizeof(nonce));
	if (r < 0)
		return r;
	alen = vault_dek_aad(m, version, aad);
	r = vault_aead_seal(kek, nonce, aad, alen, dek, VAULT_KEY_SIZE, ct);
	if (r < 0)
		return r;
	wk.version = version;
	wk.nonce.data = nonce;
	wk.nonce.len = sizeof(nonce);
	wk.ciphertext.data = ct;
	wk.ciphertext.len = sizeof(ct);
	len = twinroute__vault__wrapped_key__get_packed_size(&wk);
	if (len > sizeof(buf))
		return -EOVERFLOW;
	len = twinroute__vault__wrapped_key__pack(&wk, buf);
	vault_be32(key, version);
	return vault_put(t, VDB_KEYS, key, sizeof(key), buf, len);
}

/*
 * Try a KEK: key check value, then unwrap the current data key and the
 * enrolment key into nk. VAULT_OK, VAULT_BAD_KEY, VAULT_TAMPERED, or
 * VAULT_ERROR, with the message set.
 */
static enum vault_code
vault_try_kek(struct vault *v, struct vault_newkeys *nk, struct vault_reply *y)
{
	Twinroute__Vault__WrappedKey *wk = NULL;
	const struct vault_meta *m = &v->meta;
	uint8_t kcv[VAULT_KCV_SIZE], aad[64], key[4], pub[32];
	EVP_PKEY *pk = NULL;
	struct vault_txn t;
	MDB_val val;
	size_t alen;
	enum vault_code code;
	int r;

	if (vault_kcv(nk->kek, kcv) < 0) {
		vault_set(y, VAULT_ERROR, "cannot compute the key check value");
		return y->code;
	}
	if (CRYPTO_memcmp(kcv, m->kcv, sizeof(kcv)) != 0) {
		vault_set(y, VAULT_BAD_KEY,
		    "the key does not match this vault (key check value differs)");
		return y->code;
	}

	r = vault_txn_begin(&v->db, true, &t);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		return y->code;
	}
	vault_be32(key, m->key_version);
	r = vault_get(&t, VDB_KEYS, key, sizeof(key), &val);
	if (r < 0) {
		vault_set(y, r == -ENOENT ? VAULT_TAMPERED : VAULT_ERROR,
		    "data key %u: %s", m->key_version,
		    r == -ENOENT ? "missing" : strerror(-r));
		goto out;
	}
	wk = twinroute__vault__wrapped_key__unpack(
	    NULL, val.mv_size, val.mv_data);
	if (!wk || wk->version != m->key_version ||
	    wk->nonce.len != VAULT_NONCE_SIZE ||
	    wk->ciphertext.len != VAULT_KEY_SIZE + VAULT_TAG_SIZE) {
		vault_set(y, VAULT_TAMPERED, "data key %u does not decode",
		    m->key_version);
		goto out;
	}
	alen = vault_dek_aad(m, m->key_version, aad);
	if (vault_aead_open(nk->kek, wk->nonce.data, aad, alen,
		wk->ciphertext.data, wk->ciphertext.len, nk->dek) < 0) {
		vault_set(y, VAULT_TAMPERED,
		    "wrapped data key %u fails its integrity check",
		    m->key_version);
		goto out;
	}
	alen = vault_enrol_aad(m, aad);
	if (vault_aead_open(nk->kek, m->wrapped_enrol_nonce, aad, alen,
		m->wrapped_enrol, sizeof(m->wrapped_enrol), nk->enrol) < 0) {
		vault_set(y, VAULT_TAMPERED,
		    "wrapped enrolment key fails its integrity check");
		goto out;
	}
	if (vault_x25519_load(nk->enrol, &pk, pub) < 0 ||
	    CRYPTO_memcmp(pub, m->enrol_pub, sizeof(pub)) != 0) {
		vault_set(y, VAULT_TAMPERED,
		    "enrolment key does not match its public half");
		goto out;
	}
	vault_set(y, VAULT_OK, "unsealed");
out:
	code = y->code;
	EVP_PKEY_free(pk);
	if (wk)
		twinroute__vault__wrapped_key__free_unpacked(wk, NULL);
	vault_txn_abort(&t);
	return code;
}

/* Wipe every key from memory (and the shares given so far). */
static void
vault_wipe_keys(struct vault *v)
{
	vault_gcm_free(&v->gcm);
	EVP_PKEY_free(v->enrol);
	v->enrol = NULL;
	if (v->keys)
		OPENSSL_cleanse(v->keys, sizeof(*v->keys));
	v->sealed = true;
}

/* Put tried keys in place: unsealed. 0 or -ENOMEM. */
static int
vault_install(struct vault *v, const struct vault_newkeys *nk)
{
	uint8_t pub[32];
	int r;

	vault_wipe_keys(v);
	r = vault_x25519_load(nk->enrol, &v->enrol, pub);
	if (r == 0)
		r = vault_gcm_init(&v->gcm, nk->dek);
	if (r < 0) {
		vault_wipe_keys(v);
		return r;
	}
	memcpy(v->keys->kek, nk->kek, VAULT_KEY_SIZE);
	memcpy(v->keys->dek, nk->dek, VAULT_KEY_SIZE);
	v->sealed = false;
	return 0;
}

static int
vault_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Read the KEK from the key file into nk->kek: 64 hex digits. -EPERM if
 * the file allows group or other access or is not ours; -ENOENT; -EINVAL.
 */
static int
vault_key_file_read(const char *path, struct vault_newkeys *nk)
{
	struct stat st;
	ssize_t n;
	size_t len;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if ((st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
		r = -EPERM;
		goto out;
	}
	do {
		n = read(fd, nk->hex, sizeof(nk->hex) - 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	len = (size_t)n;
	while (
	    len > 0 && (nk->hex[len - 1] == '\n' || nk->hex[len - 1] == '\r' ||
			   nk->hex[len - 1] == ' ' || nk->hex[len - 1] == '\t'))
		len--;
	if (len != 2 * VAULT_KEY_SIZE) {
		r = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < VAULT_KEY_SIZE; i++) {
		int hi = vault_hexval(nk->hex[2 * i]);
		int lo = vault_hexval(nk->hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			r = -EINVAL;
			goto out;
		}
		nk->kek[i] = (uint8_t)(hi << 4 | lo);
	}
out:
	OPENSSL_cleanse(nk->hex, sizeof(nk->hex));
	close(fd);
	return r;
}

/* Create the key file with the KEK in hex: 0600, O_EXCL. */
static int
vault_key_file_write(const char *path, struct vault_newkeys *nk)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = 0;
	ssize_t w;
	int fd, r = 0;

	fd = open(path,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
	    0600);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < VAULT_KEY_SIZE; i++) {
		nk->hex[len++] = hex[nk->kek[i] >> 4];
		nk->hex[len++] = hex[nk->kek[i] & 15];
	}
	nk->hex[len++] = '\n';
	if (fchmod(fd, 0600) < 0)
		r = -errno;
	if (r == 0) {
		do {
			w = write(fd, nk->hex, len);
		} while (w < 0 && errno == EINTR);
		if (w < 0)
			r = -errno;
		else if ((size_t)w != len)
			r = -EIO;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	OPENSSL_cleanse(nk->hex, sizeof(nk->hex));
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlink(path);
	return r;
}

/* ---- records ------------------------------------------------------------- */

static size_t
vault_record_aad(
    const char *member, size_t mlen, uint32_t key_version, uint8_t *aad)
{
	memcpy(aad, member, mlen);
	vault_be32(aad + mlen, VAULT_RECORD_VERSION);
	vault_be32(aad + mlen + 4, key_version);
	return mlen + 8;
}

/*
 * Seal plain (len bytes) for member under gcm/key_version into a packed
 * SealedCard in v->pack; *ret_len its size.
 */
static int
vault_record_seal(struct vault *v, struct vault_gcm *gcm, uint32_t key_version,
    const char *member, size_t mlen, const uint8_t *plain, size_t len,
    size_t *ret_len)
{
	Twinroute__Vault__SealedCard sc = TWINROUTE__VAULT__SEALED_CARD__INIT;
	uint8_t nonce[VAULT_NONCE_SIZE];
	uint8_t ct[VAULT_RECORD_MAX + VAULT_TAG_SIZE];
	uint8_t aad[VAULT_MEMBER_MAX + 8];
	uint8_t *out;
	size_t alen, plen;
	int r;

	if (len > VAULT_RECORD_MAX)
		return -EOVERFLOW;
	r = vault_random(nonce, sizeof(nonce));
	if (r < 0)
		return r;
	alen = vault_record_aad(member, mlen, key_version, aad);
	r = vault_gcm_seal(gcm, nonce, aad, alen, plain, len, ct);
	if (r < 0)
		return r;
	sc.key_version = key_version;
	sc.record_version = VAULT_RECORD_VERSION;
	sc.nonce.data = nonce;
	sc.nonce.len = sizeof(nonce);
	sc.ciphertext.data = ct;
	sc.ciphertext.len = len + VAULT_TAG_SIZE;
	plen = twinroute__vault__sealed_card__get_packed_size(&sc);
	out = vault_pack_buf(v, plen);
	if (!out)
		return -ENOMEM;
	*ret_len = twinroute__vault__sealed_card__pack(&sc, out);
	return 0;
}

/*
 * Open member's sealed record (val) into v->record; *ret_len the plaintext
 * length. VAULT_OK, VAULT_TAMPERED or VAULT_ERROR with the message set.
 * Unpacks into v->plain: reset it after.
 */
static enum vault_code
vault_record_open(struct vault *v, const char *member, size_t mlen,
    const MDB_val *val, size_t *ret_len, struct vault_reply *y)
{
	Twinroute__Vault__SealedCard *sc;
	uint8_t aad[VAULT_MEMBER_MAX + 8];
	size_t alen;
	int r;

	sc = twinroute__vault__sealed_card__unpack(
	    &v->plain.pb, val->mv_size, val->mv_data);
	if (!sc || sc->nonce.len != VAULT_NONCE_SIZE ||
	    sc->ciphertext.len <= VAULT_TAG_SIZE ||
	    sc->ciphertext.len > VAULT_RECORD_MAX + VAULT_TAG_SIZE ||
	    sc->record_version != VAULT_RECORD_VERSION) {
		vault_set(y, VAULT_TAMPERED,
		    "the sealed card record does not decode");
		return y->code;
	}
	if (sc->key_version != v->meta.key_version) {
		vault_set(y, VAULT_TAMPERED,
		    "the sealed card record names data key %u, not the current %u",
		    sc->key_version, v->meta.key_version);
		return y->code;
	}
	alen = vault_record_aad(member, mlen, sc->key_version, aad);
	r = vault_gcm_open(&v->gcm, sc->nonce.data, aad, alen,
	    sc->ciphertext.data, sc->ciphertext.len, v->record);
	if (r == -EBADMSG) {
		vault_set(y, VAULT_TAMPERED,
		    "the sealed card record fails its integrity check");
		return y->code;
	}
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "cannot open the sealed card record");
		return y->code;
	}
	*ret_len = sc->ciphertext.len - VAULT_TAG_SIZE;
	return VAULT_OK;
}

/* What a display may show of a card. */
struct vault_brief {
	char brand[16];
	char last4[5];
	unsigned exp_month, exp_year;
};

/* Wipe what vault_card_open() left: the plaintext record, the arenas. */
static void
vault_card_wipe(struct vault *v, size_t plen)
{
	OPENSSL_cleanse(v->record, plen);
	vault_arena_reset(&v->secret);
	vault_arena_reset(&v->plain);
}

/*
 * Open member's sealed record val and unpack the card: VAULT_OK with
 * *ret_ci (in v->record and the arenas: vault_card_wipe(v, *ret_plen)
 * after use) and *ret_brief; or VAULT_TAMPERED or VAULT_ERROR with the
 * message set and nothing of the card left.
 */
static enum vault_code
vault_card_open(struct vault *v, const char *member, size_t mlen,
    const MDB_val *val, Twinroute__Vault__CardInput **ret_ci,
    size_t *ret_plen, struct vault_brief *ret_brief, struct vault_reply *y)
{
	Twinroute__Vault__CardInput *ci;
	enum vault_code code;
	size_t plen = 0, nlen;

	code = vault_record_open(v, member, mlen, val, &plen, y);
	if (code != VAULT_OK) {
		vault_card_wipe(v, plen);
		return code;
	}
	ci = twinroute__vault__card_input__unpack(
	    &v->secret.pb, plen, v->record);
	nlen = ci && ci->number ? strlen(ci->number) : 0;
	if (!ci || nlen < 4 || nlen > CARD_NUMBER_MAX) {
		vault_set(
		    y, VAULT_TAMPERED, "the sealed card record holds no card");
		vault_card_wipe(v, plen);
		return y->code;
	}
	snprintf(ret_brief->brand, sizeof(ret_brief->brand), "%s",
	    card_brand(ci->number));
	memcpy(ret_brief->last4, ci->number + nlen - 4, 4);
	ret_brief->last4[4] = '\0';
	ret_brief->exp_month = ci->exp_month;
	ret_brief->exp_year = ci->exp_year;
	*ret_ci = ci;
	*ret_plen = plen;
	return VAULT_OK;
}

/*
 * Load and open member's card: VAULT_OK with *ret brief, VAULT_NO_CARD,
 * VAULT_TAMPERED, VAULT_ERROR. Every plaintext byte is wiped before
 * return.
 */
static enum vault_code
vault_card_brief(struct vault *v, struct vault_txn *t, const char *member,
    size_t mlen, struct vault_brief *ret, struct vault_reply *y)
{
	Twinroute__Vault__CardInput *ci;
	enum vault_code code;
	MDB_val val;
	size_t plen;
	int r;

	r = vault_get(t, VDB_CARDS, member, mlen, &val);
	if (r == -ENOENT) {
		vault_set(y, VAULT_NO_CARD, "no card on file");
		return y->code;
	}
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		return y->code;
	}
	code = vault_card_open(v, member, mlen, &val, &ci, &plen, ret, y);
	if (code == VAULT_OK)
		vault_card_wipe(v, plen);
	return code;
}

static void
vault_reply_brief(struct vault_reply *y, const struct vault_brief *b)
{
	memcpy(y->brand, b->brand, sizeof(y->brand));
	memcpy(y->last4, b->last4, sizeof(y->last4));
	y->exp_month = b->exp_month;
	y->exp_year = b->exp_year;
}

/* ---- replies and audit --------------------------------------------------- */

static void
vault_status_fill(const struct vault *v, struct vault_reply *y)
{
	y->initialized = v->initialized;
	y->sealed = v->sealed;
	y->key_file = v->initialized && v->meta.key_file_mode;
	y->shares = v->meta.shares;
	y->threshold = v->meta.threshold;
	y->progress = v->keys ? v->keys->n_given : 0;
	y->key_version = v->meta.key_version;
	y->cards = v->n_cards;
	if (v->initialized)
		memcpy(y->enrol_key, v->meta.enrol_pub, sizeof(y->enrol_key));
}

static void
vault_reply_reset(struct vault_reply *y, enum vault_op op)
{
	memset(y, 0, offsetof(struct vault_reply, share_text));
	memset(y->brand, 0, sizeof(*y) - offsetof(struct vault_reply, brand));
	y->op = op;
}

/* Queue the line of a finished request. */
static void
vault_audit_slot(
    struct vault *v, const struct vault_slot *s, bool error, const char *extra)
{
	const struct vault_request *q = &s->req;

	vault_audit_add(&v->audit, error, q->actor, q->op,
	    vault_op_has_member(q->op) ? q->member : NULL, s->reply.code,
	    "%s%s%s", extra ? extra : "", extra ? ": " : "", s->reply.message);
}

/*
 * Write the line of a standalone request now (fdatasync if sync). On
 * failure the request becomes VAULT_AUDIT_FAILED and -errno is returned:
 * the caller must then leave no effect.
 */
static int
vault_audit_now_x(struct vault *v, struct vault_slot *s, bool error,
    bool sync, const char *extra)
{
	int r;

	vault_audit_slot(v, s, error, extra);
	r = vault_audit_flush(&v->audit, sync);
	if (r < 0) {
		/* Whatever the reply held is not to go out now. */
		if (s->reply.n_shares)
			OPENSSL_cleanse(
			    s->reply.share_text, sizeof(s->reply.share_text));
		s->reply.n_shares = 0;
		memset(s->reply.brand, 0, sizeof(s->reply.brand));
		memset(s->reply.last4, 0, sizeof(s->reply.last4));
		s->reply.exp_month = s->reply.exp_year = 0;
		s->reply.resealed = 0;
		vault_set(&s->reply, VAULT_AUDIT_FAILED,
		    "the audit log cannot be written (%s): refused",
		    strerror(-r));
	}
	return r;
}

static int
vault_audit_now(struct vault *v, struct vault_slot *s, bool error, bool sync)
{
	return vault_audit_now_x(v, s, error, sync, NULL);
}

/* After an effect failed to commit: say so in the log too (best effort). */
static void
vault_audit_failed_commit(struct vault *v, struct vault_slot *s, int err)
{
	vault_set(&s->reply, VAULT_ERROR,
	    "store: commit failed (%s); nothing changed", strerror(-err));
	vault_audit_slot(v, s, true, NULL);
	(void)vault_audit_flush(&v->audit, true);
}

static void
vault_sync(struct vault *v)
{
	int r = vault_db_sync(&v->db);

	if (v->audit_dirty) {
		int ra = vault_audit_flush(&v->audit, true);

		v->audit_dirty = ra < 0;
		if (r == 0)
			r = ra;
	}
	clock_gettime(CLOCK_MONOTONIC, &v->last_sync);
	v->sync_err = r;
	v->dirty = r < 0;
}

/* ---- operations ---------------------------------------------------------- */

static void
vault_op_status(struct vault *v, struct vault_slot *s)
{
	struct vault_reply *y = &s->reply;
	char sync_note[64] = "";

	if (v->sync_err < 0)
		snprintf(sync_note, sizeof(sync_note),
		    "; store sync failing: %s", strerror(-v->sync_err));
	if (!v->initialized)
		vault_set(y, VAULT_OK, "not initialized; memory: %s%s",
		    secmem_describe(), sync_note);
	else if (v->sealed && !v->meta.key_file_mode)
		vault_set(y, VAULT_OK,
		    "sealed: %u of %u shares given; key version %u, %u cards; memory: %s%s",
		    v->keys->n_given, v->meta.threshold, v->meta.key_version,
		    v->n_cards, secmem_describe(), sync_note);
	else
		vault_set(y, VAULT_OK,
		    "%s (%s); key version %u, %u cards; memory: %s%s",
		    v->sealed ? "sealed" : "unsealed",
		    v->meta.key_file_mode ? "key file" : "shares",
		    v->meta.key_version, v->n_cards, secmem_describe(),
		    sync_note);
	(void)vault_audit_now(v, s, false, false);
}

static void
vault_op_init(struct vault *v, struct vault_slot *s)
{
	const struct vault_request *q = &s->req;
	struct vault_reply *y = &s->reply;
	struct vault_newkeys *nk = NULL;
	struct vault_meta m;
	struct vault_txn t = {0};
	bool key_file = q->init.key_file;
	bool made_file = false;
	unsigned n = q->init.shares, k = q->init.threshold;
	uint8_t aad[64];
	size_t alen;
	int r;

	memset(&m, 0, sizeof(m));
	if (v->initialized) {
		vault_set(y, VAULT_ALREADY_INITIALIZED,
		    "the vault is already initialized");
		goto plain;
	}
	if (key_file && !v->key_file) {
		vault_set(y, VAULT_BAD_REQUEST, "no key file is configured");
		goto plain;
	}
	if (!key_file && (k < 2 || k > n || n > VAULT_SHARES_MAX)) {
		vault_set(y, VAULT_BAD_REQUEST,
		    "shares: need 2 <= threshold <= shares <= %d",
		    VAULT_SHARES_MAX);
		goto plain;
	}

	nk = secmem_zalloc(sizeof(*nk));
	if (!nk) {
		vault_set(y, VAULT_ERROR, "out of locked memory");
		goto plain;
	}
	r = vault_random(m.id, sizeof(m.id));
	if (r == 0)
		r = vault_random(nk->kek, sizeof(nk->kek));
	if (r == 0)
		r = vault_random(nk->dek, sizeof(nk->dek));
	if (r == 0)
		r = vault_x25519_new(nk->enrol, m.enrol_pub);
	if (r == 0)
		r = vault_kcv(nk->kek, m.kcv);
	if (r == 0)
		r = vault_random(
		    m.wrapped_enrol_nonce, sizeof(m.wrapped_enrol_nonce));
	if (r == 0) {
		alen = vault_enrol_aad(&m, aad);
		r = vault_aead_seal(nk->kek, m.wrapped_enrol_nonce, aad, alen,
		    nk->enrol, sizeof(nk->enrol), m.wrapped_enrol);
	}
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "cannot make keys: %s", strerror(-r));
		goto plain;
	}
	m.shares = key_file ? 0 : n;
	m.threshold = key_file ? 0 : k;
	m.key_file_mode = key_file;
	m.key_version = 1;
	m.created_unix = (uint64_t)vault_now(v);

	if (key_file) {
		r = vault_key_file_write(v->key_file, nk);
		if (r == -EEXIST) {
			vault_set(y, VAULT_ERROR,
			    "the key file %s already exists: refusing to overwrite it",
			    v->key_file);
			goto plain;
		}
		if (r < 0) {
			vault_set(y, VAULT_ERROR,
			    "cannot write the key file %s: %s", v->key_file,
			    strerror(-r));
			goto plain;
		}
		made_file = true;
	} else {
		r = vault_share_split(nk->kek, n, k, m.id, nk->shares);
		for (unsigned i = 0; r == 0 && i < n; i++)
			r = vault_share_encode(
			    &nk->shares[i], y->share_text[i]);
		if (r < 0) {
			vault_set(y, VAULT_ERROR, "cannot split the key: %s",
			    strerror(-r));
			goto plain;
		}
		y->n_shares = n;
	}

	r = vault_txn_begin(&v->db, false, &t);
	if (r == 0)
		r = vault_meta_put(v, &t, &m);
	if (r == 0)
		r = vault_dek_put(&t, &m, nk->kek, 1, nk->dek);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		goto plain;
	}
	if (key_file)
		vault_set(y, VAULT_OK,
		    "initialized with the key file %s: unsealed", v->key_file);
	else
		vault_set(y, VAULT_OK,
		    "initialized: %u shares, %u needed to unseal; sealed until then",
		    n, k);
	if (vault_audit_now(v, s, false, true) < 0)
		goto fail;
	r = vault_txn_commit(&t);
	if (r < 0) {
		vault_audit_failed_commit(v, s, r);
		goto fail;
	}
	vault_sync(v);
	v->meta = m;
	v->initialized = true;
	v->sealed = true;
	if (key_file && vault_install(v, nk) < 0)
		snprintf(y->message, sizeof(y->message),
		    "initialized with the key file %s, but out of locked memory: sealed",
		    v->key_file);
	goto out;

plain:
	(void)vault_audit_now(v, s, false, false);
fail:
	vault_txn_abort(&t);
	if (made_file)
		unlink(v->key_file);
	if (y->n_shares) {
		OPENSSL_cleanse(y->share_text, sizeof(y->share_text));
		y->n_shares = 0;
	}
out:
	secmem_free(nk);
}

/*
 * Verify nk->kek and, if it is right, audit then install the keys.
 * progress tells the audit what happened (NULL: key file).
 */
static void
vault_unseal_with(struct vault *v, struct vault_slot *s,
    struct vault_newkeys *nk, const char *how)
{
	struct vault_reply *y = &s->reply;
	enum vault_code code;

	code = vault_try_kek(v, nk, y);
	if (code != VAULT_OK) {
		if (code == VAULT_BAD_KEY && !v->meta.key_file_mode)
			snprintf(y->message, sizeof(y->message),
			    "the shares do not combine to this vault's key: progress reset, start again");
		/* Shares given so far are no good together: start over. */
		OPENSSL_cleanse(v->keys->given, sizeof(v->keys->given));
		v->keys->n_given = 0;
		(void)vault_audit_now(v, s, code == VAULT_TAMPERED, true);
		return;
	}
	vault_set(y, VAULT_OK, "unsealed (%s)", how);
	if (vault_audit_now(v, s, false, true) < 0)
		return;
	if (vault_install(v, nk) < 0) {
		vault_set(y, VAULT_ERROR, "out of locked memory: still sealed");
		(void)vault_audit_now(v, s, true, true);
	}
}

static void
vault_op_unseal(struct vault *v, struct vault_slot *s)
{
	struct vault_reply *y = &s->reply;
	struct vault_keys *ks = v->keys;
	struct vault_newkeys *nk = NULL;
	struct vault_share sh;
	const char *why = NULL;
	int r;

	if (!v->initialized) {
		vault_set(
		    y, VAULT_NOT_INITIALIZED, "the vault is not initialized");
		goto plain;
	}
	if (!v->sealed) {
		vault_set(y, VAULT_OK, "already unsealed");
		goto plain;
	}
	nk = secmem_zalloc(sizeof(*nk));
	if (!nk) {
		vault_set(y, VAULT_ERROR, "out of locked memory");
		goto plain;
	}

	if (v->meta.key_file_mode) {
		if (!v->key_file) {
			vault_set(y, VAULT_BAD_REQUEST,
			    "this vault unseals with its key file, and none is configured");
			goto plain;
		}
		r = vault_key_file_read(v->key_file, nk);
		if (r < 0) {
			vault_set(y, VAULT_ERROR, "key file %s: %s",
			    v->key_file,
			    r == -EPERM
				? "group or other may access it, or it is not ours: refused"
				: strerror(-r));
			goto plain;
		}
		vault_unseal_with(v, s, nk, "key file");
		goto out;
	}

	r = vault_share_decode(s->req.unseal.share, &sh, &why);
	if (r < 0) {
		vault_set(y, r == -EIO ? VAULT_ERROR : VAULT_BAD_SHARE, "%s",
		    why);
		goto plain;
	}
	if (CRYPTO_memcmp(sh.vault_id, v->meta.id, VAULT_ID_SIZE) != 0) {
		vault_set(y, VAULT_WRONG_VAULT,
		    "this share belongs to another vault");
		goto plain;
	}
	if (sh.nr < 1 || sh.nr > v->meta.shares) {
		vault_set(y, VAULT_BAD_SHARE,
		    "share index %u is out of range 1..%u", sh.nr,
		    v->meta.shares);
		goto plain;
	}
	for (unsigned i = 0; i < ks->n_given; i++) {
		if (ks->given[i].nr == sh.nr) {
			vault_set(y, VAULT_OK,
			    "share %u was given already: still %u of %u", sh.nr,
			    ks->n_given, v->meta.threshold);
			goto plain;
		}
	}
	if (ks->n_given + 1 < v->meta.threshold) {
		vault_set(y, VAULT_OK, "share %u accepted: %u of %u", sh.nr,
		    ks->n_given + 1, v->meta.threshold);
		if (vault_audit_now(v, s, false, true) < 0)
			goto out;
		ks->given[ks->n_given++] = sh;
		goto out;
	}
	/* The last one: combine, check, unwrap. */
	memcpy(nk->shares, ks->given, ks->n_given * sizeof(ks->given[0]));
	nk->shares[ks->n_given] = sh;
	r = vault_share_combine(nk->shares, ks->n_given + 1, nk->kek);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "cannot combine the shares: %s",
		    strerror(-r));
		goto plain;
	}
	vault_unseal_with(v, s, nk, "shares");
	goto out;
plain:
	(void)vault_audit_now(v, s, false, false);
out:
	OPENSSL_cleanse(&sh, sizeof(sh));
	secmem_free(nk);
}

static void
vault_op_seal(struct vault *v, struct vault_slot *s)
{
	struct vault_reply *y = &s->reply;
	bool was_sealed = v->sealed;

	if (!v->initialized) {
		vault_set(
		    y, VAULT_NOT_INITIALIZED, "the vault is not initialized");
		(void)vault_audit_now(v, s, false, false);
		return;
	}
	/* Sealing never waits for the audit log: it always happens. */
	vault_wipe_keys(v);
	vault_sync(v);
	vault_set(y, VAULT_OK, "%s",
	    was_sealed ? "sealed (it was; shares given so far are wiped)"
		       : "sealed: every key wiped from memory");
	vault_audit_slot(v, s, false, NULL);
	if (vault_audit_flush(&v->audit, true) < 0)
		vault_set(y, VAULT_OK,
		    "sealed (but the audit log cannot be written)");
}

/*
 * Reseal every card record under ng (version): VAULT_OK with *ret_count,
 * VAULT_TAMPERED (a record fails its check: nothing may be lost, so the
 * rotation stops) or VAULT_ERROR, with the message set.
 */
static enum vault_code
vault_reseal_all(struct vault *v, struct vault_txn *t, struct vault_gcm *ng,
    uint32_t version, uint32_t *ret_count, struct vault_reply *y)
{
	enum vault_code code = VAULT_OK;
	MDB_cursor *cur;
	MDB_val key, val;
	uint32_t count = 0;
	int r, rc;

	r = store_mdb_errno(mdb_cursor_open(t->txn, v->db.dbi[VDB_CARDS], &cur));
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		return y->code;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		char member[VAULT_MEMBER_MAX + 1];
		size_t plen = 0, len = 0;
		MDB_val nv;

		if (key.mv_size == 0 || key.mv_size > VAULT_MEMBER_MAX) {
			vault_set(y, VAULT_TAMPERED,
			    "a card record has a bad key: rotation aborted");
			code = y->code;
			break;
		}
		memcpy(member, key.mv_data, key.mv_size);
		member[key.mv_size] = '\0';
		code =
		    vault_record_open(v, member, key.mv_size, &val, &plen, y);
		if (code == VAULT_OK)
			r = vault_record_seal(v, ng, version, member,
			    key.mv_size, v->record, plen, &len);
		OPENSSL_cleanse(v->record, plen);
		vault_arena_reset(&v->plain);
		if (code != VAULT_OK) {
			snprintf(y->message, sizeof(y->message),
			    "the card of member %s fails its check: rotation aborted (remove that card first)",
			    member);
			break;
		}
		if (r < 0) {
			vault_set(
			    y, VAULT_ERROR, "cannot reseal: %s", strerror(-r));
			code = y->code;
			break;
		}
		nv.mv_data = v->pack;
		nv.mv_size = len;
		rc = mdb_cursor_put(cur, &key, &nv, MDB_CURRENT);
		if (rc != 0)
			break;
		count++;
	}
	mdb_cursor_close(cur);
	if (code == VAULT_OK && rc != MDB_NOTFOUND) {
		t->ret = store_mdb_errno(rc);
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-t->ret));
		code = y->code;
	}
	if (code == VAULT_OK)
		*ret_count = count;
	return code;
}

/* Delete every wrapped data key but version keep. */
static int
vault_drop_keys(struct vault *v, struct vault_txn *t, uint32_t keep)
{
	MDB_cursor *cur;
	MDB_val key, val;
	uint8_t want[4];
	int r, rc;

	vault_be32(want, keep);
	r = store_mdb_errno(mdb_cursor_open(t->txn, v->db.dbi[VDB_KEYS], &cur));
	if (r < 0)
		return r;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size == sizeof(want) &&
		    memcmp(key.mv_data, want, sizeof(want)) == 0)
			continue;
		rc = mdb_cursor_del(cur, 0);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		t->ret = store_mdb_errno(rc);
		return t->ret;
	}
	return 0;
}

static void
vault_op_rotate(struct vault *v, struct vault_slot *s)
{
	struct vault_reply *y = &s->reply;
	struct vault_newkeys *nk = NULL;
	struct vault_gcm ng = {0};
	struct vault_txn t = {0};
	struct vault_meta m = v->meta;
	uint32_t count = 0, old = v->meta.key_version;
	enum vault_code code;
	int r;

	if (!v->initialized) {
		vault_set(
		    y, VAULT_NOT_INITIALIZED, "the vault is not initialized");
		goto plain;
	}
	if (v->sealed) {
		vault_set(y, VAULT_SEALED, "the vault is sealed");
		goto plain;
	}
	if (old == UINT32_MAX) {
		vault_set(y, VAULT_ERROR, "no key version left");
		goto plain;
	}
	m.key_version = old + 1;
	nk = secmem_zalloc(sizeof(*nk));
	if (!nk) {
		vault_set(y, VAULT_ERROR, "out of locked memory");
		goto plain;
	}
	r = vault_random(nk->dek, sizeof(nk->dek));
	if (r == 0)
		r = vault_gcm_init(&ng, nk->dek);
	if (r == 0)
		r = vault_txn_begin(&v->db, false, &t);
	if (r == 0)
		r = vault_dek_put(&t, &m, v->keys->kek, m.key_version, nk->dek);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "cannot make the new data key: %s",
		    strerror(-r));
		goto plain;
	}
	code = vault_reseal_all(v, &t, &ng, m.key_version, &count, y);
	if (code != VAULT_OK) {
		(void)vault_audit_now(v, s, code == VAULT_TAMPERED, false);
		goto out;
	}
	r = vault_drop_keys(v, &t, m.key_version);
	if (r == 0)
		r = vault_meta_put(v, &t, &m);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		goto plain;
	}

	vault_set(y, VAULT_OK,
	    "data key rotated: version %u -> %u, %u records resealed", old,
	    m.key_version, count);
	y->resealed = count;
	if (vault_audit_now(v, s, false, true) < 0)
		goto out;
	r = vault_txn_commit(&t);
	if (r < 0) {
		vault_audit_failed_commit(v, s, r);
		y->resealed = 0;
		goto out;
	}
	vault_sync(v);
	/* The new key takes the old one's place; the old one is wiped. */
	vault_gcm_free(&v->gcm);
	v->gcm = ng;
	ng.enc = ng.dec = NULL;
	memcpy(v->keys->dek, nk->dek, VAULT_KEY_SIZE);
	v->meta = m;
	goto out;
plain:
	(void)vault_audit_now(v, s, false, false);
out:
	vault_txn_abort(&t);
	vault_gcm_free(&ng);
	secmem_free(nk);
}

static void
vault_op_card_set(struct vault *v, struct vault_slot *s)
{
	Twinroute__Vault__CardInput ci = TWINROUTE__VAULT__CARD_INPUT__INIT;
	struct vault_request *q = &s->req;
	struct vault_reply *y = &s->reply;
	struct card_input in; /* wiped before return */
	struct vault_brief b;
	struct vault_txn t = {0};
	const char *why = NULL;
	MDB_val old;
	size_t mlen = 0, plen = 0, len = 0;
	bool existed = false;
	int r;

	memset(&in, 0, sizeof(in));
	memset(&b, 0, sizeof(b));
	if (!vault_member_ok(q->member, &mlen)) {
		vault_set(y, VAULT_BAD_REQUEST, "bad member number");
		goto plain;
	}
	if (!v->initialized) {
		vault_set(
		    y, VAULT_NOT_INITIALIZED, "the vault is not initialized");
		goto plain;
	}
	if (v->sealed) {
		vault_set(y, VAULT_SEALED, "the vault is sealed");
		goto plain;
	}
	if (q->card_set.len == 0 || q->card_set.len > VAULT_ENVELOPE_MAX) {
		vault_set(y, VAULT_BAD_CARD, "no envelope, or one too large");
		goto plain;
	}
	r = envelope_open(
	    v->enrol, q->member, q->card_set.envelope, q->card_set.len, &in);
	if (r == -EBADMSG) {
		vault_set(y, VAULT_BAD_CARD,
		    "the envelope does not open: altered, or sealed to another key or member");
		goto plain;
	}
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "cannot open the envelope: %s",
		    strerror(-r));
		goto plain;
	}
	/* The client checked too; the vault does not trust it. */
	if (card_check(&in, vault_now(v), &why) < 0) {
		vault_set(y, VAULT_BAD_CARD, "%s", why);
		goto plain;
	}

	ci.number = in.number;
	ci.exp_month = in.exp_month;
	ci.exp_year = in.exp_year;
	ci.holder = in.holder;
	plen = twinroute__vault__card_input__get_packed_size(&ci);
	if (plen > VAULT_RECORD_MAX) {
		vault_set(y, VAULT_BAD_CARD, "card record too large");
		goto plain;
	}
	twinroute__vault__card_input__pack(&ci, v->record);
	r = vault_record_seal(v, &v->gcm, v->meta.key_version, q->member, mlen,
	    v->record, plen, &len);
	OPENSSL_cleanse(v->record, plen);
	if (r < 0) {
		vault_set(
		    y, VAULT_ERROR, "cannot seal the card: %s", strerror(-r));
		goto plain;
	}
	snprintf(b.brand, sizeof(b.brand), "%s", card_brand(in.number));
	memcpy(b.last4, in.number + strlen(in.number) - 4, 4);
	b.exp_month = in.exp_month;
	b.exp_year = in.exp_year;
	OPENSSL_cleanse(&in, sizeof(in));

	r = vault_txn_begin(&v->db, false, &t);
	if (r == 0) {
		existed = vault_get(&t, VDB_CARDS, q->member, mlen, &old) == 0;
		r = vault_put(&t, VDB_CARDS, q->member, mlen, v->pack, len);
	}
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		goto plain;
	}
	vault_set(y, VAULT_OK, "%s ending %s, expires %02u/%u%s", b.brand,
	    b.last4, b.exp_month, b.exp_year,
	    existed ? " (replaces the previous card)" : "");
	vault_reply_brief(y, &b);
	if (vault_audit_now(v, s, false, true) < 0)
		goto out;
	r = vault_txn_commit(&t);
	if (r < 0) {
		vault_audit_failed_commit(v, s, r);
		memset(y->brand, 0, sizeof(y->brand));
		memset(y->last4, 0, sizeof(y->last4));
		y->exp_month = y->exp_year = 0;
		goto out;
	}
	vault_sync(v);
	if (!existed)
		v->n_cards++;
	goto out;
plain:
	(void)vault_audit_now(v, s, false, false);
out:
	vault_txn_abort(&t);
	OPENSSL_cleanse(&in, sizeof(in));
	OPENSSL_cleanse(&ci, sizeof(ci));
	/* The envelope is ciphertext, but it is card data: no copy stays. */
	OPENSSL_cleanse(q->card_set.envelope, sizeof(q->card_set.envelope));
}

static void
vault_op_card_show(struct vault *v, struct vault_slot *s)
{
	struct vault_reply *y = &s->reply;
	struct vault_brief b;
	struct vault_txn t;
	size_t mlen = 0;
	enum vault_code code;
	int r;

	if (!vault_member_ok(s->req.member, &mlen)) {
		vault_set(y, VAULT_BAD_REQUEST, "bad member number");
		goto plain;
	}
	if (!v->initialized) {
		vault_set(
		    y, VAULT_NOT_INITIALIZED, "the vault is not initialized");
		goto plain;
	}
	if (v->sealed) {
		vault_set(y, VAULT_SEALED, "the vault is sealed");
		goto plain;
	}
	r = vault_txn_begin(&v->db, true, &t);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		goto plain;
	}
	code = vault_card_brief(v, &t, s->req.member, mlen, &b, y);
	vault_txn_abort(&t);
	if (code == VAULT_OK) {
		vault_set(y, VAULT_OK, "%s ending %s, expires %02u/%u", b.brand,
		    b.last4, b.exp_month, b.exp_year);
		vault_reply_brief(y, &b);
	}
	(void)vault_audit_now(v, s, code == VAULT_TAMPERED, false);
	return;
plain:
	(void)vault_audit_now(v, s, false, false);
}

static void
vault_op_card_remove(struct vault *v, struct vault_slot *s)
{
	struct vault_reply *y = &s->reply;
	struct vault_txn t = {0};
	MDB_val val;
	size_t mlen = 0;
	int r;

	if (!vault_member_ok(s->req.member, &mlen)) {
		vault_set(y, VAULT_BAD_REQUEST, "bad member number");
		goto plain;
	}
	if (!v->initialized) {
		vault_set(
		    y, VAULT_NOT_INITIALIZED, "the vault is not initialized");
		goto plain;
	}
	/* Removing ciphertext needs no key: allowed while sealed. */
	r = vault_txn_begin(&v->db, false, &t);
	if (r == 0)
		r = vault_get(&t, VDB_CARDS, s->req.member, mlen, &val);
	if (r == -ENOENT) {
		vault_set(y, VAULT_NO_CARD, "no card on file");
		goto plain;
	}
	if (r == 0)
		r = vault_del(&t, VDB_CARDS, s->req.member, mlen);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		goto plain;
	}
	vault_set(y, VAULT_OK, "card removed");
	if (vault_audit_now(v, s, false, true) < 0)
		goto out;
	r = vault_txn_commit(&t);
	if (r < 0) {
		vault_audit_failed_commit(v, s, r);
		goto out;
	}
	vault_sync(v);
	if (v->n_cards > 0)
		v->n_cards--;
	goto out;
plain:
	(void)vault_audit_now(v, s, false, false);
out:
	vault_txn_abort(&t);
}

/* ---- the card fax page --------------------------------------------------- */

/* Latest page date accepted: 9999-12-31T23:59:59Z. */
#define VAULT_FAX_TIME_MAX INT64_C(253402300799)

/* The first bad field of a FAX_PAGE request, or NULL. */
static const char *
vault_fax_bad_field(const struct vault_request *q)
{
	if (!vault_text_ok(q->fax.provider_id, sizeof(q->fax.provider_id),
		false))
		return "provider id";
	if (!vault_text_ok(q->fax.provider_name, sizeof(q->fax.provider_name),
		true))
		return "provider name";
	if (!vault_text_ok(q->fax.fax_ref, sizeof(q->fax.fax_ref), false))
		return "fax reference";
	if (!vault_text_ok(q->fax.service_name, sizeof(q->fax.service_name),
		true))
		return "service name";
	if (!vault_text_ok(q->fax.amount, sizeof(q->fax.amount), false))
		return "amount";
	if (q->fax.time_unix < 0 || q->fax.time_unix > VAULT_FAX_TIME_MAX)
		return "page time";
	return NULL;
}

/* Why fax_doc_compose failed, for the operator: never card data. */
static void
vault_fax_error(const struct vault *v, struct vault_reply *y, int err)
{
	const char *font = v->fax_font ? v->fax_font : FAX_PAGE_FONT_DEFAULT;

	switch (err) {
	case -ENOENT:
	case -EACCES:
		vault_set(y, VAULT_ERROR, "fax page: font %s: %s", font,
		    strerror(-err));
		break;
	case -EINVAL:
		vault_set(y, VAULT_ERROR,
		    "fax page: font %s: not a scalable monospace font FreeType can read, or a size that does not fit the page",
		    font);
		break;
	case -E2BIG:
		vault_set(y, VAULT_ERROR,
		    "fax page: the text does not fit the page at this font size");
		break;
	case -EILSEQ:
		vault_set(y, VAULT_ERROR,
		    "fax page: a field of the page is not printable text");
		break;
	case -ENOMEM:
		vault_set(y, VAULT_ERROR, "fax page: out of locked memory");
		break;
	default:
		vault_set(y, VAULT_ERROR, "fax page: %s", strerror(-err));
		break;
	}
}

/*
 * Compose the page from the order's fields and member's card. The card
 * may have expired since the order was authenticated: the page is made
 * anyway. The doc goes out only if the audit line was written.
 */
static void
vault_op_fax_page(struct vault *v, struct vault_slot *s)
{
	const struct vault_request *q = &s->req;
	struct vault_reply *y = &s->reply;
	const struct fax_page_opts po = {
	    .font_path = v->fax_font,
	    .font_px = v->fax_font_px,
	};
	Twinroute__Vault__CardInput *ci;
	struct fax_card_fields cf;
	struct fax_doc *doc = NULL;
	struct vault_brief b;
	struct vault_txn t;
	enum vault_code code;
	const char *bad;
	char extra[48];
	MDB_val val;
	size_t mlen = 0, plen = 0;
	int r;

	snprintf(extra, sizeof(extra), "order=%llu",
	    (unsigned long long)q->fax.order_id);
	memset(&b, 0, sizeof(b));
	memset(&cf, 0, sizeof(cf));
	if (!vault_member_ok(q->member, &mlen)) {
		vault_set(y, VAULT_BAD_REQUEST, "bad member number");
		goto plain;
	}
	if ((bad = vault_fax_bad_field(q))) {
		vault_set(y, VAULT_BAD_REQUEST, "bad %s", bad);
		goto plain;
	}
	if (!v->initialized) {
		vault_set(
		    y, VAULT_NOT_INITIALIZED, "the vault is not initialized");
		goto plain;
	}
	if (v->sealed) {
		vault_set(y, VAULT_SEALED, "the vault is sealed");
		goto plain;
	}
	r = vault_txn_begin(&v->db, true, &t);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		goto plain;
	}
	r = vault_get(&t, VDB_CARDS, q->member, mlen, &val);
	if (r < 0) {
		vault_txn_abort(&t);
		if (r == -ENOENT)
			vault_set(y, VAULT_NO_CARD, "no card on file");
		else
			vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		goto plain;
	}
	code = vault_card_open(v, q->member, mlen, &val, &ci, &plen, &b, y);
	vault_txn_abort(&t);
	if (code != VAULT_OK)
		goto wipe;
	if (!ci->holder) {
		vault_set(
		    y, VAULT_TAMPERED, "the sealed card record holds no card");
		goto wipe;
	}
	cf.broker_name = v->fax_broker;
	cf.broker_ident = v->fax_ident;
	cf.time_unix = q->fax.time_unix;
	cf.provider_id = q->fax.provider_id;
	cf.provider_name = q->fax.provider_name;
	cf.order_id = q->fax.order_id;
	cf.fax_ref = q->fax.fax_ref;
	cf.service_name = q->fax.service_name;
	cf.quantity = q->fax.quantity;
	cf.amount = q->fax.amount;
	cf.holder = ci->holder;
	cf.number = ci->number;
	cf.exp_month = ci->exp_month;
	cf.exp_year = ci->exp_year;
	r = fax_doc_compose(&po, &cf, &doc);
	if (r < 0)
		vault_fax_error(v, y, r);
	else
		vault_set(y, VAULT_OK,
		    "fax page for %s ending %s: T.4 %zu bytes 1D, %zu bytes 2D",
		    b.brand, b.last4, doc->len_1d, doc->len_2d);
wipe:
	OPENSSL_cleanse(&cf, sizeof(cf));
	vault_card_wipe(v, plen);
	if (y->code != VAULT_OK) {
		(void)vault_audit_now_x(v, s, true, false, extra);
		return;
	}
	vault_reply_brief(y, &b);
	/* The card number leaves the vault: its line is on disk first. */
	if (vault_audit_now_x(v, s, false, true, extra) < 0) {
		fax_doc_free(doc);
		return;
	}
	y->fax_doc = doc;
	return;
plain:
	(void)vault_audit_now_x(v, s, false, false, extra);
}

/* ---- authentication ------------------------------------------------------ */

static bool
vault_currency_ok(const char *c)
{
	return c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
	       c[2] >= 'A' && c[2] <= 'Z' && c[3] == '\0';
}

/*
 * The member's spend log in this currency: drop what is older than 24 h,
 * check the daily limit, record amount. VAULT_OK, VAULT_LIMIT or
 * VAULT_ERROR. Entries of the same second merge (exact); past
 * VAULT_SPEND_MAX entries the two oldest merge at the newer's time
 * (counted a little longer: stricter, never looser).
 */
static enum vault_code
vault_spend(struct vault *v, struct vault_txn *t, const char *member,
    size_t mlen, const char *currency, int64_t amount, time_t now,
    struct vault_reply *y)
{
	Twinroute__Vault__SpendLog empty = TWINROUTE__VAULT__SPEND_LOG__INIT;
	Twinroute__Vault__SpendLog *log = &empty;
	Twinroute__Vault__SpendLog__Spend **arr, *last;
	uint8_t key[VAULT_SPEND_KEY_MAX];
	size_t klen = mlen + 1 + 3, first = 0, n, len;
	int64_t total = 0;
	uint8_t *out;
	MDB_val val;
	int r;

	memcpy(key, member, mlen);
	key[mlen] = '\0';
	memcpy(key + mlen + 1, currency, 3);
	r = vault_get(t, VDB_SPENDS, key, klen, &val);
	if (r == 0) {
		log = twinroute__vault__spend_log__unpack(
		    &v->plain.pb, val.mv_size, val.mv_data);
		if (!log) {
			vault_set(
			    y, VAULT_ERROR, "the spend log does not decode");
			return y->code;
		}
	} else if (r != -ENOENT) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		return y->code;
	}

	while (
	    first < log->n_spends && (int64_t)log->spends[first]->unix_time <=
					 (int64_t)now - VAULT_SPEND_WINDOW)
		first++;
	for (size_t i = first; i < log->n_spends; i++) {
		if (__builtin_add_overflow(
			total, log->spends[i]->amount, &total))
			total = INT64_MAX;
	}
	if (total > v->daily_limit - amount) {
		vault_set(y, VAULT_LIMIT, "over the 24-hour limit");
		return y->code;
	}

	n = log->n_spends - first;
	last = n ? log->spends[log->n_spends - 1] : NULL;
	arr = vault_arena_alloc(&v->plain, (n + 1) * sizeof(*arr));
	if (!arr)
		goto nomem;
	if (n)
		memcpy(arr, log->spends + first, n * sizeof(*arr));
	if (last && (int64_t)last->unix_time == (int64_t)now) {
		last->amount += amount; /* <= daily_limit: no overflow */
	} else {
		Twinroute__Vault__SpendLog__Spend *sp;

		sp = vault_arena_alloc(&v->plain, sizeof(*sp));
		if (!sp)
			goto nomem;
		twinroute__vault__spend_log__spend__init(sp);
		sp->unix_time = (uint64_t)now;
		sp->amount = amount;
		arr[n++] = sp;
	}
	if (n > VAULT_SPEND_MAX) {
		arr[1]->amount += arr[0]->amount;
		memmove(arr, arr + 1, (n - 1) * sizeof(*arr));
		n--;
	}
	log->spends = arr;
	log->n_spends = n;
	len = twinroute__vault__spend_log__get_packed_size(log);
	out = vault_pack_buf(v, len);
	if (!out)
		goto nomem;
	len = twinroute__vault__spend_log__pack(log, out);
	r = vault_put(t, VDB_SPENDS, key, klen, out, len);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
		return y->code;
	}
	return VAULT_OK;
nomem:
	vault_set(y, VAULT_ERROR, "out of memory");
	return y->code;
}

static enum vault_code
vault_auth_one(struct vault *v, struct vault_group *g, struct vault_slot *s)
{
	const struct vault_request *q = &s->req;
	struct vault_reply *y = &s->reply;
	struct vault_brief b;
	enum vault_code code;
	size_t mlen = 0;
	time_t now;
	int r;

	if (!vault_member_ok(q->member, &mlen)) {
		vault_set(y, VAULT_BAD_REQUEST, "bad member number");
		return y->code;
	}
	if (q->auth.amount <= 0) {
		vault_set(y, VAULT_BAD_REQUEST, "amount must be positive");
		return y->code;
	}
	if (!vault_currency_ok(q->auth.currency)) {
		vault_set(y, VAULT_BAD_REQUEST,
		    "currency must be three upper-case letters");
		return y->code;
	}
	if (!v->initialized) {
		vault_set(
		    y, VAULT_NOT_INITIALIZED, "the vault is not initialized");
		return y->code;
	}
	if (v->sealed) {
		vault_set(y, VAULT_SEALED, "the vault is sealed");
		return y->code;
	}
	if (!g->txn_open) {
		r = vault_txn_begin(&v->db, false, &g->txn);
		if (r < 0) {
			vault_set(y, VAULT_ERROR, "store: %s", strerror(-r));
			return y->code;
		}
		g->txn_open = true;
	}
	if (g->txn.ret < 0) {
		vault_set(y, VAULT_ERROR, "store: %s", strerror(-g->txn.ret));
		return y->code;
	}
	code = vault_card_brief(v, &g->txn, q->member, mlen, &b, y);
	if (code != VAULT_OK)
		return code;
	now = vault_now(v);
	if (card_expired(b.exp_month, b.exp_year, now)) {
		vault_set(y, VAULT_EXPIRED, "the card expired %02u/%u",
		    b.exp_month, b.exp_year);
		return y->code;
	}
	if (v->order_limit > 0 && q->auth.amount > v->order_limit) {
		vault_set(y, VAULT_LIMIT, "over the per-order limit");
		return y->code;
	}
	if (v->daily_limit > 0) {
		code = vault_spend(v, &g->txn, q->member, mlen,
		    q->auth.currency, q->auth.amount, now, y);
		vault_arena_reset(&v->plain);
		if (code != VAULT_OK)
			return code;
		g->wrote = true;
	}
	g->sync = true;
	vault_set(y, VAULT_OK, "authenticated");
	vault_reply_brief(y, &b);
	return VAULT_OK;
}

/* Post slots head..*tail to the loop. */
static void
vault_post(struct vault *v, struct vault_slot *head, struct vault_slot **tail)
{
	const uint64_t one = 1;
	bool wake;

	if (!head)
		return;
	pthread_mutex_lock(&v->rep_lock);
	*v->rep_tail = head;
	v->rep_tail = tail;
	wake = !v->notified;
	v->notified = true;
	pthread_mutex_unlock(&v->rep_lock);
	if (wake && write(v->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so the loop is woken anyway */
	}
}

/* Write the group's audit lines, commit, post its replies. */
static void
vault_group_finish(struct vault *v, struct vault_group *g)
{
	struct vault_slot *s;
	int r;

	if (!g->head)
		return;
	r = vault_audit_flush(&v->audit, g->sync && !v->lazy_auth_sync);
	if (r == 0 && g->sync && v->lazy_auth_sync)
		v->audit_dirty = v->dirty = true;
	if (r < 0) {
		if (g->txn_open)
			vault_txn_abort(&g->txn);
		for (s = g->head; s; s = s->next) {
			memset(s->reply.brand, 0, sizeof(s->reply.brand));
			memset(s->reply.last4, 0, sizeof(s->reply.last4));
			s->reply.exp_month = s->reply.exp_year = 0;
			vault_set(&s->reply, VAULT_AUDIT_FAILED,
			    "the audit log cannot be written (%s): refused",
			    strerror(-r));
		}
	} else if (g->txn_open && g->wrote) {
		r = vault_txn_commit(&g->txn);
		if (r < 0) {
			for (s = g->head; s; s = s->next) {
				if (s->reply.code != VAULT_OK)
					continue;
				memset(
				    s->reply.brand, 0, sizeof(s->reply.brand));
				memset(
				    s->reply.last4, 0, sizeof(s->reply.last4));
				s->reply.exp_month = s->reply.exp_year = 0;
				vault_set(&s->reply, VAULT_ERROR,
				    "store: commit failed (%s)", strerror(-r));
				vault_audit_slot(v, s, true, NULL);
			}
			(void)vault_audit_flush(&v->audit, true);
		} else {
			v->dirty = true;
		}
	} else if (g->txn_open) {
		vault_txn_abort(&g->txn);
	}
	g->txn_open = false;
	for (s = g->head; s; s = s->next)
		vault_status_fill(v, &s->reply);
	vault_post(v, g->head, g->tail);
	g->head = NULL;
	g->tail = &g->head;
	g->n = 0;
	g->wrote = g->sync = false;
}

static void
vault_group_add(struct vault *v, struct vault_group *g, struct vault_slot *s)
{
	const struct vault_request *q = &s->req;
	enum vault_code code;
	char extra[96];

	code = vault_auth_one(v, g, s);
	snprintf(extra, sizeof(extra), "amount=%lld currency=%.3s order=%llu",
	    (long long)q->auth.amount, q->auth.currency,
	    (unsigned long long)q->auth.order_id);
	vault_audit_slot(v, s, code == VAULT_TAMPERED, extra);
	s->next = NULL;
	*g->tail = s;
	g->tail = &s->next;
	if (++g->n >= VAULT_GROUP_MAX)
		vault_group_finish(v, g);
}

/* ---- backup -------------------------------------------------------------- */

/*
 * A hot copy of the environment (twinroutectl backup), compacted, into
 * the directory the request names: sealed records, wrapped keys, spend
 * logs -- never the KEK, which no file of the vault holds. The vault
 * answers nothing else meanwhile; it is small. The audit line comes
 * after the copy and before the reply: if it cannot be written, the copy
 * is removed and the request refused, as for every other operation.
 */
static void
vault_op_backup(struct vault *v, struct vault_slot *s)
{
	struct vault_request *q = &s->req;
	struct vault_reply *y = &s->reply;
	char extra[VAULT_BACKUP_PATH_MAX + 8];
	uint64_t bytes = 0;
	int r;

	q->backup.dir[sizeof(q->backup.dir) - 1] = '\0';
	snprintf(extra, sizeof(extra), "to %s", q->backup.dir);
	if (q->backup.dir[0] != '/') {
		vault_set(y, VAULT_BAD_REQUEST,
		    "the backup directory must be an absolute path");
		(void)vault_audit_now_x(v, s, false, false, extra);
		return;
	}
	r = vault_db_copy(&v->db, q->backup.dir, &bytes);
	if (r < 0) {
		vault_set(y, VAULT_ERROR, "copy failed: %s", strerror(-r));
		(void)vault_audit_now_x(v, s, true, true, extra);
		return;
	}
	vault_set(y, VAULT_OK, "copied, compacted: %llu bytes; no key in it",
	    (unsigned long long)bytes);
	if (vault_audit_now_x(v, s, false, true, extra) < 0) {
		vault_db_copy_remove(q->backup.dir);
		return;
	}
	y->backup_bytes = bytes;
}

/* ---- the vault thread ---------------------------------------------------- */

static void
vault_run_one(struct vault *v, struct vault_slot *s)
{
	switch (s->req.op) {
	case VAULT_OP_STATUS:
		vault_op_status(v, s);
		break;
	case VAULT_OP_INIT:
		vault_op_init(v, s);
		break;
	case VAULT_OP_UNSEAL:
		vault_op_unseal(v, s);
		break;
	case VAULT_OP_SEAL:
		vault_op_seal(v, s);
		break;
	case VAULT_OP_ROTATE:
		vault_op_rotate(v, s);
		break;
	case VAULT_OP_CARD_SET:
		vault_op_card_set(v, s);
		break;
	case VAULT_OP_CARD_SHOW:
		vault_op_card_show(v, s);
		break;
	case VAULT_OP_CARD_REMOVE:
		vault_op_card_remove(v, s);
		break;
	case VAULT_OP_FAX_PAGE:
		vault_op_fax_page(v, s);
		break;
	case VAULT_OP_BACKUP:
		vault_op_backup(v, s);
		break;
	case VAULT_OP_AUDIT:
		/* An admin action done by the loop: the same trail, synced. */
		s->req.audit.detail[sizeof(s->req.audit.detail) - 1] = '\0';
		vault_set(&s->reply, s->req.audit.failed ? VAULT_BAD_REQUEST :
		    VAULT_OK, "%s", s->req.audit.detail);
		(void)vault_audit_now(v, s, false, true);
		break;
	case VAULT_OP_AUTHENTICATE: /* grouped by the caller */
	case VAULT_OP__COUNT:
	default:
		vault_set(&s->reply, VAULT_BAD_REQUEST, "unknown operation");
		(void)vault_audit_now(v, s, false, false);
		break;
	}
	/* Secrets of the request go as soon as the request is done. */
	OPENSSL_cleanse(s->req.unseal.share, sizeof(s->req.unseal.share));
	vault_status_fill(v, &s->reply);
	s->next = NULL;
	vault_post(v, s, &s->next);
}

static void
vault_process(struct vault *v, struct vault_slot *batch)
{
	struct vault_group g = {.tail = &g.head};
	struct vault_slot *s, *next;

	for (s = batch; s; s = next) {
		next = s->next;
		vault_reply_reset(&s->reply, s->req.op);
		if (s->req.op == VAULT_OP_AUTHENTICATE) {
			vault_group_add(v, &g, s);
			continue;
		}
		vault_group_finish(v, &g);
		vault_run_one(v, s);
	}
	vault_group_finish(v, &g);
}

static bool
vault_sync_due(const struct vault *v, struct timespec *ret_due)
{
	struct timespec now;

	ret_due->tv_sec = v->last_sync.tv_sec + VAULT_SYNC_INTERVAL;
	ret_due->tv_nsec = v->last_sync.tv_nsec;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > ret_due->tv_sec ||
	       (now.tv_sec == ret_due->tv_sec &&
		   now.tv_nsec >= ret_due->tv_nsec);
}

static uint64_t
vault_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void
vault_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * After a batch, watch the queue a little before going to sleep: the
 * loop usually answers a reply with the next request within microseconds,
 * and finding it here saves the loop a wake-up call and this thread a
 * sleep and a wake (which cost more than the work itself).
 */
static void
vault_spin(struct vault *v)
{
	uint64_t end = vault_mono_ns() + VAULT_SPIN_NS;
	unsigned n = 0;

	while (!__atomic_load_n(&v->req_head, __ATOMIC_ACQUIRE)) {
		if (++n % 64 == 0 && vault_mono_ns() >= end)
			return;
		vault_cpu_relax();
	}
}

static void *
vault_thread(void *arg)
{
	struct vault *v = arg;
	bool worked = false;

	for (;;) {
		struct vault_slot *batch;
		struct timespec due;
		bool stop;

		if (worked && v->spin)
			vault_spin(v);
		pthread_mutex_lock(&v->req_lock);
		while (!v->req_head && !v->stop) {
			if (v->dirty && vault_sync_due(v, &due))
				break;
			v->idle = true;
			if (v->dirty)
				pthread_cond_timedwait(
				    &v->req_cond, &v->req_lock, &due);
			else
				pthread_cond_wait(&v->req_cond, &v->req_lock);
			v->idle = false;
		}
		batch = v->req_head;
		v->req_head = NULL;
		v->req_tail = &v->req_head;
		stop = v->stop && !batch;
		pthread_mutex_unlock(&v->req_lock);

		worked = batch != NULL;
		if (batch)
			vault_process(v, batch);
		if (v->dirty && vault_sync_due(v, &due))
			vault_sync(v);
		if (stop)
			break;
	}

	/* Closing: seal, and leave the store synced. */
	if (v->initialized && !v->sealed) {
		vault_wipe_keys(v);
		vault_audit_add(&v->audit, false, "vault_close", VAULT_OP_SEAL,
		    NULL, VAULT_OK, "sealed on close");
		(void)vault_audit_flush(&v->audit, true);
	}
	vault_wipe_keys(v);
	vault_sync(v);
	return NULL;
}

/* ---- the loop side ------------------------------------------------------- */

static struct vault_slot *
vault_slot_get(struct vault *v)
{
	struct vault_slot *s;

	if (!v->free_slots) {
		struct vault_chunk *c = calloc(1, sizeof(*c));

		if (!c)
			return NULL;
		c->next = v->chunks;
		v->chunks = c;
		for (size_t i = 0; i < VAULT_CHUNK_SLOTS; i++) {
			c->slots[i].next = v->free_slots;
			v->free_slots = &c->slots[i];
		}
	}
	s = v->free_slots;
	v->free_slots = s->next;
	return s;
}

static void
vault_slot_put(struct vault *v, struct vault_slot *s)
{
	/* A page the callback did not take. */
	fax_doc_free(s->reply.fax_doc);
	s->reply.fax_doc = NULL;
	if (s->reply.n_shares) {
		OPENSSL_cleanse(
		    s->reply.share_text, sizeof(s->reply.share_text));
		s->reply.n_shares = 0;
	}
	if (s->req.op == VAULT_OP_UNSEAL)
		OPENSSL_cleanse(
		    s->req.unseal.share, sizeof(s->req.unseal.share));
	if (s->req.op == VAULT_OP_CARD_SET)
		OPENSSL_cleanse(
		    s->req.card_set.envelope, sizeof(s->req.card_set.envelope));
	s->next = v->free_slots;
	v->free_slots = s;
}

/* Queue slots head..*tail for the vault thread; wake it if it sleeps. */
static void
vault_queue(struct vault *v, struct vault_slot *head, struct vault_slot **tail)
{
	bool wake;

	pthread_mutex_lock(&v->req_lock);
	/* The vault thread peeks at req_head without the lock. */
	__atomic_store_n(v->req_tail, head, __ATOMIC_RELEASE);
	v->req_tail = tail;
	wake = v->idle;
	pthread_mutex_unlock(&v->req_lock);
	if (wake)
		pthread_cond_signal(&v->req_cond);
}

/* Hand the round's requests to the thread. */
static void
vault_flush(struct vault *v)
{
	struct vault_slot *head = v->loop_head;
	struct vault_slot **tail = v->loop_tail;

	if (!head)
		return;
	v->loop_head = NULL;
	v->loop_tail = &v->loop_head;
	vault_queue(v, head, tail);
}

static void
vault_flush_event(evutil_socket_t fd _unused_, short what _unused_,
    void *arg)
{
	struct vault *v = arg;

	v->flush_armed = false;
	vault_flush(v);
}

/* Run every reply that is ready. */
static void
vault_deliver(struct vault *v)
{
	struct vault_slot *s, *next;

	pthread_mutex_lock(&v->rep_lock);
	s = v->rep_head;
	v->rep_head = NULL;
	v->rep_tail = &v->rep_head;
	v->notified = false;
	pthread_mutex_unlock(&v->rep_lock);

	v->dispatching = true;
	for (; s; s = next) {
		next = s->next;
		v->pending--;
		v->seen_initialized = s->reply.initialized;
		v->seen_sealed = s->reply.sealed;
		s->cb(s->arg, &s->reply);
		vault_slot_put(v, s);
	}
	v->dispatching = false;
	vault_flush(v);
}

static void
vault_event(evutil_socket_t fd, short what, void *arg)
{
	struct vault *v = arg;
	uint64_t count;

	(void)what;
	if (read(fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: the replies below are what counts */
	}
	vault_deliver(v);
}

int
vault_submit(struct vault *v, const struct vault_request *req,
    vault_reply_fn cb, void *arg)
{
	struct vault_slot *s;

	if (!v || !req || !cb)
		return -EINVAL;
	if (v->closing)
		return -ESHUTDOWN;
	if (v->pending >= VAULT_PENDING_MAX)
		return -EAGAIN;
	s = vault_slot_get(v);
	if (!s)
		return -ENOMEM;
	/* Only what the operation uses: an authentication copies little. */
	if (req->op == VAULT_OP_AUTHENTICATE)
		memcpy(&s->req, req,
		    offsetof(struct vault_request, auth) + sizeof(req->auth));
	else
		s->req = *req;
	s->req.actor[VAULT_ACTOR_MAX - 1] = '\0';
	s->req.member[VAULT_MEMBER_MAX] = '\0';
	if (req->op == VAULT_OP_UNSEAL)
		s->req.unseal.share[VAULT_SHARE_TEXT_MAX - 1] = '\0';
	if (req->op == VAULT_OP_AUTHENTICATE)
		s->req.auth.currency[3] = '\0';
	s->cb = cb;
	s->arg = arg;
	s->next = NULL;
	v->pending++;
	*v->loop_tail = s;
	v->loop_tail = &s->next;
	/* Replies being run flush at their end; otherwise the round's. */
	if (!v->dispatching && !v->flush_armed) {
		v->flush_armed = true;
		event_active(v->flush_ev, 0, 0);
	}
	return 0;
}

size_t
vault_pending(const struct vault *v)
{
	return v ? v->pending : 0;
}

void
vault_state(const struct vault *v, bool *ret_initialized, bool *ret_sealed)
{
	*ret_initialized = v && v->seen_initialized;
	*ret_sealed = !v || v->seen_sealed;
}

/* ---- open / close -------------------------------------------------------- */

static void
vault_free(struct vault *v)
{
	while (v->chunks) {
		struct vault_chunk *c = v->chunks;

		v->chunks = c->next;
		OPENSSL_cleanse(c, sizeof(*c));
		free(c);
	}
	if (v->ev)
		event_free(v->ev);
	if (v->flush_ev)
		event_free(v->flush_ev);
	if (v->efd >= 0)
		close(v->efd);
	vault_wipe_keys(v);
	vault_db_close(&v->db);
	vault_audit_close(&v->audit);
	secmem_free(v->keys);
	secmem_free(v->record);
	if (v->plain.buf)
		vault_arena_done(&v->plain);
	if (v->secret.buf)
		vault_arena_done(&v->secret);
	free(v->pack);
	if (v->locks_init) {
		pthread_mutex_destroy(&v->req_lock);
		pthread_mutex_destroy(&v->rep_lock);
		pthread_cond_destroy(&v->req_cond);
	}
	free(v->path);
	free(v->key_file);
	free(v->audit_path);
	free(v->fax_font);
	free(v->fax_broker);
	free(v->fax_ident);
	free(v);
}

static int
vault_locks_init(struct vault *v)
{
	pthread_condattr_t ca;
	int r;

	r = pthread_condattr_init(&ca);
	if (r != 0)
		return -r;
	r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(&v->req_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (r != 0)
		return -r;
	pthread_mutex_init(&v->req_lock, NULL);
	pthread_mutex_init(&v->rep_lock, NULL);
	v->locks_init = true;
	return 0;
}

/* A configured key file at start: unseal with it, or refuse to start. */
static int
vault_open_key_file(struct vault *v)
{
	struct vault_newkeys *nk;
	struct vault_slot *s;
	struct stat st;
	int r;

	if (stat(v->key_file, &st) < 0) {
		if (errno == ENOENT &&
		    !(v->initialized && v->meta.key_file_mode))
			return 0; /* INIT may write it */
		return -errno;
	}
	if ((st.st_mode & 077) != 0 || st.st_uid != geteuid())
		return -EPERM;
	if (!v->initialized)
		return 0; /* INIT refuses to overwrite it */
	if (!v->meta.key_file_mode)
		return -EINVAL;

	nk = secmem_zalloc(sizeof(*nk));
	s = calloc(1, sizeof(*s));
	if (!nk || !s) {
		r = -ENOMEM;
		goto out;
	}
	r = vault_key_file_read(v->key_file, nk);
	if (r < 0)
		goto out;
	s->req.op = VAULT_OP_UNSEAL;
	snprintf(s->req.actor, sizeof(s->req.actor), "vault_open");
	vault_reply_reset(&s->reply, VAULT_OP_UNSEAL);
	vault_unseal_with(v, s, nk, "key file at start");
	switch (s->reply.code) {
	case VAULT_OK:
		r = v->sealed ? -ENOMEM : 0;
		break;
	case VAULT_BAD_KEY:
		r = -EKEYREJECTED;
		break;
	case VAULT_TAMPERED:
		r = -EBADMSG;
		break;
	case VAULT_AUDIT_FAILED:
		r = -EIO;
		break;
	case VAULT_SEALED:
	case VAULT_NO_CARD:
	case VAULT_EXPIRED:
	case VAULT_DISABLED:
	case VAULT_LIMIT:
	case VAULT_NOT_INITIALIZED:
	case VAULT_ALREADY_INITIALIZED:
	case VAULT_BAD_SHARE:
	case VAULT_WRONG_VAULT:
	case VAULT_BAD_CARD:
	case VAULT_BAD_REQUEST:
	case VAULT_ERROR:
	case VAULT_CODE__COUNT:
	default:
		r = -EIO;
		break;
	}
out:
	free(s);
	secmem_free(nk);
	return r;
}

int
vault_schema_read(const char *path, uint32_t *ret_version)
{
	Twinroute__Vault__VaultMeta *pm;
	struct vault_db db;
	struct vault_txn t;
	MDB_val val;
	int r;

	if (!path || !ret_version)
		return -EINVAL;
	r = vault_db_open_rdonly(&db, path);
	if (r < 0)
		return r;
	r = vault_txn_begin(&db, true, &t);
	if (r == 0) {
		r = vault_get(&t, VDB_META, VAULT_META_KEY,
		    sizeof(VAULT_META_KEY) - 1, &val);
		if (r == 0) {
			pm = twinroute__vault__vault_meta__unpack(NULL,
			    val.mv_size, val.mv_data);
			if (pm) {
				*ret_version = pm->schema_version;
				twinroute__vault__vault_meta__free_unpacked(pm,
				    NULL);
			} else {
				r = -EBADMSG;
			}
		}
		vault_txn_abort(&t);
	}
	mdb_env_close(db.env);
	return r;
}

int
vault_open(const struct vault_opts *opts, struct event_base *base,
    struct vault **ret_vault)
{
	struct vault *v;
	sigset_t all, old;
	int r;

	if (!opts || !opts->path || !opts->path[0] || !opts->audit_log ||
	    !opts->audit_log[0] || !base || !ret_vault)
		return -EINVAL;
	if (opts->fax_font_px != 0 &&
	    (opts->fax_font_px < FAX_PAGE_FONT_PX_MIN ||
		opts->fax_font_px > FAX_PAGE_FONT_PX_MAX))
		return -EINVAL;
	if ((opts->fax_broker && !vault_text_ok(opts->fax_broker,
		strlen(opts->fax_broker) + 1, true)) ||
	    (opts->fax_ident && !vault_text_ok(opts->fax_ident,
		strlen(opts->fax_ident) + 1, true)))
		return -EINVAL;
	r = secmem_init();
	if (r < 0)
		return r;
	vault_share_setup();

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->efd = -1;
	v->audit.fd = -1;
	v->base = base;
	v->order_limit = opts->order_limit;
	v->daily_limit = opts->daily_limit;
	v->now = opts->now;
	v->lazy_auth_sync = opts->lazy_auth_sync;
	v->sealed = true;
	v->req_tail = &v->req_head;
	v->rep_tail = &v->rep_head;
	v->loop_tail = &v->loop_head;
	v->path = strdup(opts->path);
	v->audit_path = strdup(opts->audit_log);
	if (opts->key_file && opts->key_file[0])
		v->key_file = strdup(opts->key_file);
	/* The caller's strings need not outlive this call. */
	v->fax_font_px = opts->fax_font_px;
	if (opts->fax_font && opts->fax_font[0])
		v->fax_font = strdup(opts->fax_font);
	v->fax_broker = strdup(
	    opts->fax_broker ? opts->fax_broker : VAULT_FAX_BROKER_DEFAULT);
	v->fax_ident = strdup(opts->fax_ident ? opts->fax_ident : "");
	if (!v->path || !v->audit_path ||
	    (opts->key_file && opts->key_file[0] && !v->key_file) ||
	    (opts->fax_font && opts->fax_font[0] && !v->fax_font) ||
	    !v->fax_broker || !v->fax_ident) {
		r = -ENOMEM;
		goto fail;
	}
	r = vault_locks_init(v);
	if (r < 0)
		goto fail;

	v->keys = secmem_zalloc(sizeof(*v->keys));
	v->record = secmem_zalloc(VAULT_RECORD_MAX);
	if (!v->keys || !v->record) {
		r = -ENOMEM;
		goto fail;
	}
	r = vault_arena_init(&v->plain, VAULT_PLAIN_ARENA, false);
	if (r == 0)
		r = vault_arena_init(&v->secret, VAULT_SECRET_ARENA, true);
	if (r < 0)
		goto fail;

	r = vault_db_open(&v->db, v->path, opts->map_size);
	if (r < 0)
		goto fail;
	r = vault_meta_load(v);
	if (r == 0)
		v->initialized = true;
	else if (r != -ENOENT)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &v->last_sync);

	r = vault_audit_open(&v->audit, v->audit_path);
	if (r < 0)
		goto fail;
	if (v->key_file) {
		r = vault_open_key_file(v);
		if (r < 0)
			goto fail;
	}

	/* Spinning on the loop's only CPU would only take it from the loop. */
	{
		cpu_set_t cpus;

		v->spin = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 &&
		    CPU_COUNT(&cpus) > 1;
	}

	v->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->efd < 0) {
		r = -errno;
		goto fail;
	}
	v->ev = event_new(base, v->efd, EV_READ | EV_PERSIST, vault_event, v);
	if (!v->ev) {
		r = -ENOMEM;
		goto fail;
	}
	if (event_add(v->ev, NULL) < 0) {
		r = -EIO;
		goto fail;
	}
	v->flush_ev = event_new(base, -1, 0, vault_flush_event, v);
	if (!v->flush_ev) {
		r = -ENOMEM;
		goto fail;
	}

	v->seen_initialized = v->initialized;
	v->seen_sealed = v->sealed;
	/* Signals belong to the loop: the vault thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&v->thread, NULL, vault_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		r = -r;
		goto fail;
	}
	v->thread_started = true;
	*ret_vault = v;
	return 0;
fail:
	vault_free(v);
	return r;
}

struct vault *
vault_close(struct vault *v)
{
	if (!v)
		return NULL;
	v->closing = true;
	vault_flush(v);
	if (v->thread_started) {
		pthread_mutex_lock(&v->req_lock);
		v->stop = true;
		pthread_mutex_unlock(&v->req_lock);
		pthread_cond_signal(&v->req_cond);
		pthread_join(v->thread, NULL);
		v->thread_started = false;
	}
	/* Every request got its reply: hand out the ones not yet seen. */
	vault_deliver(v);
	vault_free(v);
	return NULL;
}
