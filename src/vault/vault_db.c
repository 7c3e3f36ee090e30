/* SPDX-License-Identifier: ISC */
/* vault_db.c -- the vault's own LMDB environment: a small private wrapper */

/*
 * The same conventions as src/store (sticky transaction error, LMDB codes
 * as -errno), without its group-commit thread: the vault thread is the
 * only user of this environment and syncs it itself. Opened
 *
 *   MDB_NOSYNC   commits reach the OS; the vault thread syncs at least
 *                every second while writes are unsynced, and at once
 *                after key and card changes;
 *   MDB_WRITEMAP a commit writes into the map instead of one pwrite per
 *                dirty page: the authentication path commits once per
 *                batch, and this halves the latency of a small batch.
 *                The file is preallocated to the map size (fallocate), so
 *                a full disk cannot turn a write into the map into
 *                SIGBUS: the vault keeps its space;
 *   MDB_NOTLS    vault_open reads it on the caller's thread before the
 *                vault thread takes over.
 *
 * As with MDB_NOSYNC anywhere, a crash of the system (not of the process)
 * between two syncs may lose the last second of writes; the syncs after
 * every key or card change keep those.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/errcode.h"
#include "store/store.h"
#include "vault/vault_int.h"

#define VAULT_MAP_SIZE_DEFAULT (64ull << 20)
#define VAULT_MAXDBS 8

static const char *const vault_db_names[VDB__COUNT] = {
    [VDB_META] = "meta",
    [VDB_KEYS] = "keys",
    [VDB_CARDS] = "cards",
    [VDB_SPENDS] = "spends",
};

/* The directory: ours, a directory, no group or other access. */
static int
vault_db_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if ((st.st_mode & 077) != 0) {
		if (st.st_uid != geteuid())
			return -EPERM;
		if (chmod(path, 0700) < 0)
			return -errno;
	}
	return 0;
}

/* Back every page of the map with disk blocks now. */
static int
vault_db_prealloc(struct vault_db *db)
{
	MDB_envinfo info;
	int fd, r;

	r = store_mdb_errno(mdb_env_get_fd(db->env, &fd));
	if (r == 0)
		r = store_mdb_errno(mdb_env_info(db->env, &info));
	if (r < 0)
		return r;
	r = posix_fallocate(fd, 0, (off_t)info.me_mapsize);
	/* Some file systems cannot; they cannot run out of holes either. */
	if (r == EOPNOTSUPP || r == EINVAL)
		return 0;
	return -r;
}

int
vault_db_open(struct vault_db *db, const char *path, uint64_t map_size)
{
	MDB_txn *txn;
	int r;

	memset(db, 0, sizeof(*db));
	r = vault_db_dir(path);
	if (r < 0)
		return r;
	r = store_mdb_errno(mdb_env_create(&db->env));
	if (r < 0)
		return r;
	if (!map_size)
		map_size = VAULT_MAP_SIZE_DEFAULT;
	if (map_size > (uint64_t)INT64_MAX || map_size > SIZE_MAX) {
		r = -EINVAL;
		goto fail;
	}
	r = store_mdb_errno(mdb_env_set_maxdbs(db->env, VAULT_MAXDBS));
	if (r == 0)
		r = store_mdb_errno(
		    mdb_env_set_mapsize(db->env, (size_t)map_size));
	if (r == 0)
		r = store_mdb_errno(mdb_env_open(db->env, path,
		    MDB_NOSYNC | MDB_NOTLS | MDB_WRITEMAP, 0600));
	if (r == 0)
		r = vault_db_prealloc(db);
	if (r < 0)
		goto fail;

	r = store_mdb_errno(mdb_txn_begin(db->env, NULL, 0, &txn));
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < VDB__COUNT; i++) {
		r = store_mdb_errno(mdb_dbi_open(
		    txn, vault_db_names[i], MDB_CREATE, &db->dbi[i]));
		if (r < 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	r = store_mdb_errno(mdb_txn_commit(txn));
	if (r < 0)
		goto fail;
	return 0;
fail:
	mdb_env_close(db->env);
	db->env = NULL;
	return r;
}

int
vault_db_open_rdonly(struct vault_db *db, const char *path)
{
	MDB_txn *txn;
	int r;

	memset(db, 0, sizeof(*db));
	r = store_mdb_errno(mdb_env_create(&db->env));
	if (r < 0) {
		db->env = NULL;
		return r;
	}
	r = store_mdb_errno(mdb_env_set_maxdbs(db->env, VAULT_MAXDBS));
	if (r == 0)
		r = store_mdb_errno(mdb_env_open(db->env, path,
		    MDB_RDONLY | MDB_NOTLS, 0600));
	if (r == 0)
		r = store_mdb_errno(mdb_txn_begin(db->env, NULL, MDB_RDONLY,
		    &txn));
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < VDB__COUNT; i++) {
		r = store_mdb_errno(mdb_dbi_open(txn, vault_db_names[i], 0,
		    &db->dbi[i]));
		if (r < 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	/* Committed, the handles outlive the transaction. */
	r = store_mdb_errno(mdb_txn_commit(txn));
	if (r < 0)
		goto fail;
	return 0;
fail:
	mdb_env_close(db->env);
	db->env = NULL;
	return r;
}

int
vault_db_copy(struct vault_db *db, const char *dir, uint64_t *ret_bytes)
{
	return store_env_copy(db->env, dir, ret_bytes);
}

void
vault_db_copy_remove(const char *dir)
{
	char path[PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (n > 0 && (size_t)n < sizeof(path))
		(void)unlink(path);
}

void
vault_db_close(struct vault_db *db)
{
	if (!db->env)
		return;
	mdb_env_sync(db->env, 1);
	mdb_env_close(db->env);
	db->env = NULL;
}

int
vault_db_sync(struct vault_db *db)
{
	return store_mdb_errno(mdb_env_sync(db->env, 1));
}

int
vault_txn_begin(struct vault_db *db, bool rdonly, struct vault_txn *ret_t)
{
	MDB_txn *txn;
	int r;

	r = store_mdb_errno(
	    mdb_txn_begin(db->env, NULL, rdonly ? MDB_RDONLY : 0, &txn));
	if (r < 0)
		return r;
	ret_t->db = db;
	ret_t->txn = txn;
	ret_t->ret = 0;
	return 0;
}

int
vault_txn_commit(struct vault_txn *t)
{
	int r;

	if (!t->txn)
		return -EINVAL;
	if (t->ret < 0) {
		r = t->ret;
		mdb_txn_abort(t->txn);
	} else {
		r = store_mdb_errno(mdb_txn_commit(t->txn));
	}
	t->txn = NULL;
	return r;
}

void
vault_txn_abort(struct vault_txn *t)
{
	if (t->txn)
		mdb_txn_abort(t->txn);
	t->txn = NULL;
}

static int
vault_txn_fail(struct vault_txn *t, int err)
{
	if (t->ret == 0)
		t->ret = err;
	return err;
}

static MDB_val
vault_val(const void *p, size_t len)
{
	MDB_val v = {.mv_size = len, .mv_data = unconst(p)};

	return v;
}

int
vault_get(struct vault_txn *t, enum vault_dbi db, const void *key, size_t klen,
    MDB_val *ret)
{
	MDB_val k = vault_val(key, klen), v;
	int r;

	if (t->ret < 0)
		return t->ret;
	r = store_mdb_errno(mdb_get(t->txn, t->db->dbi[db], &k, &v));
	if (r == -ENOENT)
		return r;
	if (r < 0)
		return vault_txn_fail(t, r);
	*ret = v;
	return 0;
}

int
vault_put(struct vault_txn *t, enum vault_dbi db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	MDB_val k = vault_val(key, klen), v = vault_val(val, vlen);
	int r;

	if (t->ret < 0)
		return t->ret;
	r = store_mdb_errno(mdb_put(t->txn, t->db->dbi[db], &k, &v, 0));
	return r < 0 ? vault_txn_fail(t, r) : 0;
}

int
vault_del(struct vault_txn *t, enum vault_dbi db, const void *key, size_t klen)
{
	MDB_val k = vault_val(key, klen);
	int r;

	if (t->ret < 0)
		return t->ret;
	r = store_mdb_errno(mdb_del(t->txn, t->db->dbi[db], &k, NULL));
	return r < 0 ? vault_txn_fail(t, r) : 0;
}

int
vault_count(struct vault_txn *t, enum vault_dbi db, size_t *ret_n)
{
	MDB_stat st;
	int r;

	if (t->ret < 0)
		return t->ret;
	r = store_mdb_errno(mdb_stat(t->txn, t->db->dbi[db], &st));
	if (r < 0)
		return vault_txn_fail(t, r);
	*ret_n = st.ms_entries;
	return 0;
}
