/* SPDX-License-Identifier: ISC */
/* vault_int.h -- the vault's internal pieces: store, keys, shares, audit */
#ifndef TR_VAULT_INT_H
#define TR_VAULT_INT_H

/*
 * Everything here runs on the vault thread (or in vault_open before the
 * thread starts). Nothing here logs.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <lmdb.h>
#include <openssl/evp.h>

#include "common/macro.h"
#include "store/store.h"
#include "vault/vault.h"

#define VAULT_ID_SIZE 8	  /* random, made at init, in every share */
#define VAULT_KEY_SIZE 32 /* KEK and data keys: AES-256 */
#define VAULT_NONCE_SIZE 12
#define VAULT_TAG_SIZE 16
#define VAULT_KCV_SIZE 32
#define VAULT_RECORD_VERSION 1

/* ---- store (vault_db.c) ------------------------------------------------ */

enum vault_dbi {
	VDB_META = 0, /* "vault" -> VaultMeta */
	VDB_KEYS,     /* version (be32) -> WrappedKey */
	VDB_CARDS,    /* member -> SealedCard */
	VDB_SPENDS,   /* member NUL currency -> SpendLog */
	VDB__COUNT,
};

struct vault_db {
	MDB_env *env;
	MDB_dbi dbi[VDB__COUNT];
};

/* A transaction with a sticky error, as in src/store. */
struct vault_txn {
	struct vault_db *db;
	MDB_txn *txn;
	int ret;
};

/* Directory created 0700 (tightened to 0700 if ours and looser). */
int vault_db_open(struct vault_db *db, const char *path, uint64_t map_size);
/* Read-only, every database must exist (vault_schema_read). */
int vault_db_open_rdonly(struct vault_db *db, const char *path);
void vault_db_close(struct vault_db *db);
int vault_db_sync(struct vault_db *db);
/* A hot copy, compacted, into dir/data.mdb, fsynced (store_env_copy). */
int vault_db_copy(struct vault_db *db, const char *dir, uint64_t *ret_bytes);
/* Remove what vault_db_copy made in dir. */
void vault_db_copy_remove(const char *dir);

int vault_txn_begin(struct vault_db *db, bool rdonly, struct vault_txn *ret_t);
/* Commits unless an operation failed: then aborts and returns that. */
int vault_txn_commit(struct vault_txn *t);
void vault_txn_abort(struct vault_txn *t);
/* -ENOENT (not sticky) when missing; *ret valid until the txn ends. */
int vault_get(struct vault_txn *t, enum vault_dbi db, const void *key,
    size_t klen, MDB_val *ret);
int vault_put(struct vault_txn *t, enum vault_dbi db, const void *key,
    size_t klen, const void *val, size_t vlen);
/* -ENOENT (sticky) when missing. */
int vault_del(
    struct vault_txn *t, enum vault_dbi db, const void *key, size_t klen);
int vault_count(struct vault_txn *t, enum vault_dbi db, size_t *ret_n);

/* ---- crypto (vault_crypto.c) ------------------------------------------- */

/* A data key held as two keyed AES-256-GCM contexts. */
struct vault_gcm {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

int vault_gcm_init(struct vault_gcm *g, const uint8_t key[VAULT_KEY_SIZE]);
void vault_gcm_free(struct vault_gcm *g);
/* out: len + VAULT_TAG_SIZE bytes. */
int vault_gcm_seal(struct vault_gcm *g, const uint8_t nonce[VAULT_NONCE_SIZE],
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
    uint8_t *out);
/* in: ciphertext then tag, len > VAULT_TAG_SIZE; -EBADMSG on a bad tag. */
int vault_gcm_open(struct vault_gcm *g, const uint8_t nonce[VAULT_NONCE_SIZE],
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
    uint8_t *out);
/* One-shot, for wrapping keys with the KEK. */
int vault_aead_seal(const uint8_t key[VAULT_KEY_SIZE],
    const uint8_t nonce[VAULT_NONCE_SIZE], const uint8_t *aad, size_t aad_len,
    const uint8_t *in, size_t len, uint8_t *out);
int vault_aead_open(const uint8_t key[VAULT_KEY_SIZE],
    const uint8_t nonce[VAULT_NONCE_SIZE], const uint8_t *aad, size_t aad_len,
    const uint8_t *in, size_t len, uint8_t *out);
/* HMAC-SHA-256(kek, "twinroute kcv"). */
int vault_kcv(
    const uint8_t kek[VAULT_KEY_SIZE], uint8_t ret_kcv[VAULT_KCV_SIZE]);
int vault_random(void *buf, size_t len);
/* A new X25519 key: raw private (secret) and public halves. */
int vault_x25519_new(uint8_t ret_priv[32], uint8_t ret_pub[32]);
/* EVP_PKEY from a raw private key; its public half in ret_pub. */
int vault_x25519_load(
    const uint8_t priv[32], EVP_PKEY **ret_key, uint8_t ret_pub[32]);

/* ---- shares (vault_share.c) -------------------------------------------- */

struct vault_share {
	uint8_t vault_id[VAULT_ID_SIZE];
	uint8_t nr; /* libgfshare sharenr, 1..n */
	uint8_t bytes[VAULT_KEY_SIZE];
};

/* Set gfshare_fill_rand to OpenSSL's RAND_bytes; idempotent. */
void vault_share_setup(void);
/*
 * Split kek into n shares, k needed: ret_shares[i] gets sharenr i + 1.
 * ret_shares points at n entries (secmem). 0, -EINVAL, -ENOMEM, -EIO.
 */
int vault_share_split(const uint8_t kek[VAULT_KEY_SIZE], unsigned n, unsigned k,
    const uint8_t vault_id[VAULT_ID_SIZE], struct vault_share *ret_shares);
/* Combine k shares (distinct nr) into ret_kek. */
int vault_share_combine(const struct vault_share *shares, unsigned k,
    uint8_t ret_kek[VAULT_KEY_SIZE]);
/* "tr1-xxxx-xxxx-..." with its checksum; NUL-terminated. */
int vault_share_encode(
    const struct vault_share *s, char ret_text[VAULT_SHARE_TEXT_MAX]);
/*
 * Parse a share as typed: dashes and whitespace anywhere, any case.
 * 0; -EINVAL (not a share: wrong prefix, length, character), -EBADMSG
 * (checksum mismatch) or -EIO (no digest), with *ret_why a message for the operator that
 * never quotes the share.
 */
int vault_share_decode(
    const char *text, struct vault_share *ret_share, const char **ret_why);

/* ---- audit (vault_audit.c) --------------------------------------------- */

struct vault_audit {
	int fd;
	char *buf; /* lines not yet written */
	size_t len, cap;
	int err;       /* a line could not be formatted: flush fails */
	time_t ts_sec; /* cached "YYYY-MM-DDTHH:MM:SS" of ts_sec */
	char ts[24];
};

/* O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0600. */
int vault_audit_open(struct vault_audit *a, const char *path);
void vault_audit_close(struct vault_audit *a);
/*
 * Queue one line: time, level, actor, op, member (NULL: none), result,
 * detail. Quoted fields are escaped; the detail must never hold a card
 * number, share, key or envelope.
 */
void vault_audit_add(struct vault_audit *a, bool error, const char *actor,
    enum vault_op op, const char *member, enum vault_code code, const char *fmt,
    ...) _printf_(7, 8);
/*
 * Write every queued line with one write(2), then fdatasync if sync.
 * The queue is emptied either way. 0 or -errno.
 */
int vault_audit_flush(struct vault_audit *a, bool sync);

#endif
