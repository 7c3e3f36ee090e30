/* SPDX-License-Identifier: ISC */
/* store.h -- the broker's LMDB environment, with group commit */
#ifndef TR_STORE_H
#define TR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

/*
 * 2: idempotency keys moved to idempotency_log (src/order/idem.c) and
 * orders_by_member kept behind the orders (order_member_index_catch_up).
 * store_open upgrades a schema 1 store's version; the daemon's start
 * moves its records (both steps are safe to repeat).
 */
#define STORE_SCHEMA_VERSION 2

/* Named databases in the broker environment. */
enum store_db {
	STORE_DB_META = 0,
	STORE_DB_PROVIDERS,
	STORE_DB_SERVICES,
	STORE_DB_SERVICES_BY_CATEGORY, /* key: category "\0" service id; value: empty */
	STORE_DB_MEMBERS,              /* key: member number; MemberRecord */
	STORE_DB_LOGIN,                /* key: member number; LoginState */
	STORE_DB_ORDERS,               /* key: order id, 8 bytes big-endian; Order */
	STORE_DB_ORDERS_BY_MEMBER,     /* key: member "\0" id (8 bytes BE); empty */
	STORE_DB_IDEMPOTENCY,          /* schema 1's; empty from schema 2 */
	STORE_DB_OUTBOX_MAIL,          /* key: order id (8 bytes BE); MailJob */
	STORE_DB_CONFIRMATIONS,        /* key: order id; Confirmation */
	STORE_DB_TOKENS,               /* key: SHA-256 of a token; TokenRecord */
	STORE_DB_CONFIRM_EXPIRY,       /* key: expiry ms BE, order id BE; empty */
	STORE_DB_OUTBOX_PROVIDER,      /* key: provider "\0" order id; DispatchJob */
	STORE_DB_OUTBOX_FAX,           /* key: order id; DispatchJob */
	STORE_DB_PROVIDER_AUTH,        /* key: provider id; ProviderAuth */
	STORE_DB_ORDERS_RECEIVED,      /* key: order id; empty: RECEIVED ones */
	STORE_DB_IDEMPOTENCY_LOG,      /* key: order id, key's SipHash */
	STORE_DB__COUNT,
};

struct store;
struct store_txn;

/*
 * An LMDB return code as the project's: 0, -ENOENT (MDB_NOTFOUND),
 * -ENOSPC (MDB_MAP_FULL), -TR_EEXISTS (MDB_KEYEXIST), -EINVAL
 * (MDB_BAD_VALSIZE), -errno for system errors, else -EIO. For every
 * LMDB environment of the daemon, the vault's included.
 */
int store_mdb_errno(int rc);

struct store_opts {
	const char *path;       /* directory; created 0700 if missing */
	size_t map_size;        /* bytes */
	unsigned max_readers;   /* 0: LMDB's default */
};

struct store_stats {
	uint64_t map_size;
	uint64_t used_bytes;    /* (last page + 1) * page size */
	uint64_t last_txn;      /* sequence of the last committed write */
	uint64_t synced_txn;    /* sequence covered by the last fsync */
	uint64_t syncs;         /* fsyncs run */
};

/*
 * Open the environment, create the named databases, check or write the
 * schema version (-TR_ESCHEMA on a mismatch). Write transactions commit
 * without fsync (MDB_NOSYNC); a sync thread makes them durable. If base
 * is NULL the store syncs on every commit instead (tools, tests).
 */
int store_open(const struct store_opts *opts, struct event_base *base,
    struct store **ret_store);
/* Sync, stop the sync thread, close. Accepts NULL; returns NULL. */
struct store *store_close(struct store *s);

/*
 * flags: 0 for a write transaction, STORE_RDONLY for a read, STORE_BATCH
 * for a write that joins the loop's batch: a nested transaction inside
 * one shared write transaction that commits once, after the callbacks of
 * the current loop round have run. Batch members see each other's writes;
 * one member's failure (its commit returns the error) leaves the others
 * alone. Commit gives the seq the batch will have: wait on it with
 * store_after_sync() as usual; if the batch itself cannot commit, every
 * member's waiter gets the error. A plain write transaction, and
 * store_close, commit an open batch first. Read transactions do not see a
 * batch that has not committed yet. Needs an event base.
 */
#define STORE_RDONLY 1u
#define STORE_BATCH 2u
int store_txn_begin(struct store *s, unsigned flags, struct store_txn **ret_txn);
/*
 * Commit. If any operation in the transaction failed (sticky error) the
 * transaction is aborted and that error returned. On success *ret_seq
 * (may be NULL) receives the write sequence for store_after_sync().
 * Read transactions: commit simply ends them. Frees txn either way.
 */
int store_txn_commit(struct store_txn *txn, uint64_t *ret_seq);
void store_txn_abort(struct store_txn *txn);
/* The sticky error of the transaction: 0 while every op succeeded. */
int store_txn_error(const struct store_txn *txn);

/*
 * Get: *ret_val points into the map and is valid until the transaction
 * ends -- copy it out before. -ENOENT when missing.
 */
int store_get(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len, const void **ret_val, size_t *ret_val_len);
int store_put(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len, const void *val, size_t val_len);
/* Like store_put but -TR_EEXISTS if the key is there. */
int store_put_new(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len, const void *val, size_t val_len);
int store_del(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len);
/* Delete every record of db. */
int store_drop(struct store_txn *txn, enum store_db db);

/*
 * Visit every record of db in key order, starting at the first key >=
 * from (NULL: the beginning). cb returns 0 to go on, 1 to stop, <0 to
 * abort with that error. Returns 0 or the error.
 */
typedef int (*store_iter_fn)(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg);
int store_iter(struct store_txn *txn, enum store_db db, const void *from,
    size_t from_len, store_iter_fn cb, void *arg);
/* The same from the last key back to the first. */
int store_iter_rev(struct store_txn *txn, enum store_db db, store_iter_fn cb,
    void *arg);

/*
 * Call cb(arg, err) on the loop once the write with sequence seq is on
 * disk (err 0), or could not be made durable (err < 0). If it already is,
 * cb runs before this returns.
 */
typedef void (*store_sync_fn)(void *arg, int err);
int store_after_sync(struct store *s, uint64_t seq, store_sync_fn cb, void *arg);

/*
 * Hold the open batch: a member that will write again soon (an order
 * written RECEIVED, whose vault answer comes next) keeps the batch from
 * committing until it calls store_batch_release(gen), or for at most a
 * millisecond, so that one commit and one fsync take both writes. Holds
 * taken while a batch already waits for its holds are the next batch's.
 * -EINVAL when no batch is open.
 */
int store_batch_hold(struct store *s, uint32_t *ret_gen);
void store_batch_release(struct store *s, uint32_t gen);

/* The seq covering every write made so far, an open batch included: a
 * reply that waits on it waits for everything the loop has written. */
uint64_t store_last_seq(const struct store *s);
/* The seq of the last write that committed: all a read transaction begun
 * now can see, so what a reply showing it waits on. */
uint64_t store_committed_seq(const struct store *s);
/* The error of the last batch whose commit failed (-ENOSPC: the map is
 * full), 0 if none has. */
int store_commit_error(const struct store *s);

/* Writes waiting for a sync. */
size_t store_sync_pending(const struct store *s);

void store_get_stats(struct store *s, struct store_stats *ret_stats);

/* fsync a directory (after creating or renaming files in it). 0 or -errno. */
int store_fsync_dir(const char *dir);

/*
 * Latency histograms (metrics): commit is mdb_txn_commit of a write
 * transaction or of the loop's batch (nested members are not timed:
 * they cost nothing on disk), measured on the loop; fsync is
 * mdb_env_sync in the sync thread. bucket[i] counts durations of at
 * most store_latency_bounds_ns[i] and above the bound before it (not
 * cumulative); bucket[STORE_LATENCY_BUCKETS] those above the last bound.
 * The counters are atomic: a snapshot taken while the sync thread runs
 * may miss the sync in progress, never count half of it.
 */
#define STORE_LATENCY_BUCKETS 13
extern const uint64_t store_latency_bounds_ns[STORE_LATENCY_BUCKETS];
struct store_latency {
	uint64_t bucket[STORE_LATENCY_BUCKETS + 1];
	uint64_t sum_ns;
};
void store_get_latency(const struct store *s, struct store_latency *ret_commit,
    struct store_latency *ret_fsync);

/* Records in db (LMDB keeps the count: no scan). */
int store_db_entries(struct store_txn *txn, enum store_db db,
    uint64_t *ret_entries);

/*
 * Backups. A hot copy of the environment, compacted, into dir/data.mdb
 * (dir must exist; the file must not: -EEXIST), made inside one LMDB read
 * transaction, so the loop goes on writing meanwhile. The file (mode
 * 0600) and dir are fsynced before it returns; on failure the partial
 * file is removed. *ret_last_txn: every write whose seq is at most this
 * (store_get_stats' last_txn) is in the copy; later ones may be too.
 * *ret_bytes: the copy's size. Unlike the rest of this interface it may
 * run on any thread (it reads the environment and takes the sync lock),
 * but store_close must not run before it returns.
 */
int store_copy(struct store *s, const char *dir, uint64_t *ret_last_txn,
    uint64_t *ret_bytes);
/* The same for another LMDB environment of the daemon (the vault's), on
 * the thread that owns it. */
struct MDB_env;
int store_env_copy(struct MDB_env *env, const char *dir, uint64_t *ret_bytes);

/*
 * The schema version the store at path records, read through a read-only
 * environment: what to tell the admin after store_open said -TR_ESCHEMA.
 * -ENOENT if it records none.
 */
int store_schema_read(const char *path, uint32_t *ret_version);

#endif
