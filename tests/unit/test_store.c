/* SPDX-License-Identifier: ISC */
/* test_store.c -- unit tests for the LMDB store and its group commit */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include <lmdb.h>

#include "common/errcode.h"
#include "common/macro.h"
#include "store.pb-c.h"
#include "store/store.h"

#include "tmpdir.h"

#define MAP_SIZE_DEFAULT (8u << 20)

struct fixture {
	char dir[64];   /* mkdtemp directory, removed at the end */
	char path[96];  /* the store directory inside it */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), "store") < 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int r;

	r = tmpdir_remove(f->dir);
	free(f);
	return r;
}

static struct store *
open_store(const struct fixture *f, size_t map_size, struct event_base *base)
{
	struct store_opts opts = {
		.path = f->path,
		.map_size = map_size,
	};
	struct store *s = NULL;

	assert_int_equal(store_open(&opts, base, &s), 0);
	assert_non_null(s);
	return s;
}

static void
put_one(struct store *s, enum store_db db, const char *key, const char *val,
    uint64_t *ret_seq)
{
	struct store_txn *txn;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, db, key, strlen(key), val, strlen(val)),
	    0);
	assert_int_equal(store_txn_commit(txn, ret_seq), 0);
}

/* Read key in a fresh read transaction: 0 and a match, or the error. */
static int
get_str(struct store *s, enum store_db db, const char *key, const char *want)
{
	struct store_txn *txn;
	const void *val;
	size_t len;
	int r;

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	r = store_get(txn, db, key, strlen(key), &val, &len);
	if (r == 0 && want) {
		assert_int_equal(len, strlen(want));
		assert_memory_equal(val, want, len);
	}
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	return r;
}

static void
test_roundtrip(void **state)
{
	struct store *s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	struct store_txn *txn;
	uint64_t seq = 0, seq2 = 0;
	const void *val = (const void *)&seq;
	size_t len = 7;

	put_one(s, STORE_DB_PROVIDERS, "p1", "alpha", &seq);
	assert_int_equal(seq, 1);
	assert_int_equal(get_str(s, STORE_DB_PROVIDERS, "p1", "alpha"), 0);
	/* Databases are separate. */
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "p1", NULL), -ENOENT);

	/* Overwrite. */
	put_one(s, STORE_DB_PROVIDERS, "p1", "beta", &seq2);
	assert_int_equal(seq2, 2);
	assert_int_equal(get_str(s, STORE_DB_PROVIDERS, "p1", "beta"), 0);

	/* A missing key is an answer: it does not spoil the transaction. */
	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(store_get(txn, STORE_DB_PROVIDERS, "nope", 4, &val,
	    &len), -ENOENT);
	assert_ptr_equal(val, (const void *)&seq);  /* untouched */
	assert_int_equal(len, 7);
	assert_int_equal(store_txn_error(txn), 0);
	assert_int_equal(store_get(txn, STORE_DB_PROVIDERS, "p1", 2, &val,
	    &len), 0);
	assert_int_equal(len, 4);
	/* Writes in a read transaction are refused. */
	assert_int_equal(store_put(txn, STORE_DB_PROVIDERS, "x", 1, "y", 1),
	    -EROFS);
	assert_int_equal(store_txn_commit(txn, NULL), -EROFS);

	/* Empty values are fine (the category index uses them). */
	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_SERVICES_BY_CATEGORY,
	    "food\0s1", 7, NULL, 0), 0);
	assert_int_equal(store_del(txn, STORE_DB_PROVIDERS, "p1", 2), 0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	assert_int_equal(get_str(s, STORE_DB_PROVIDERS, "p1", NULL), -ENOENT);

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(store_get(txn, STORE_DB_SERVICES_BY_CATEGORY,
	    "food\0s1", 7, &val, &len), 0);
	assert_int_equal(len, 0);
	store_txn_abort(txn);

	s = store_close(s);
	assert_null(s);
	assert_null(store_close(NULL));
}

static void
test_put_new_exists(void **state)
{
	struct store *s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	struct store_txn *txn;
	uint64_t seq = 42;

	put_one(s, STORE_DB_SERVICES, "s1", "one", NULL);

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_SERVICES, "s2", 2, "two", 3),
	    0);
	assert_int_equal(store_put_new(txn, STORE_DB_SERVICES, "s1", 2, "new",
	    3), -TR_EEXISTS);
	assert_int_equal(store_txn_error(txn), -TR_EEXISTS);
	/* Spoiled: later operations do nothing and return the error. */
	assert_int_equal(store_put(txn, STORE_DB_SERVICES, "s3", 2, "x", 1),
	    -TR_EEXISTS);
	assert_int_equal(store_txn_commit(txn, &seq), -TR_EEXISTS);
	assert_int_equal(seq, 42);

	assert_int_equal(get_str(s, STORE_DB_SERVICES, "s1", "one"), 0);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "s2", NULL), -ENOENT);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "s3", NULL), -ENOENT);

	/* The writer slot is free again; put_new on a new key works. */
	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put_new(txn, STORE_DB_SERVICES, "s2", 2, "two",
	    3), 0);
	assert_int_equal(store_txn_commit(txn, &seq), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "s2", "two"), 0);

	store_close(s);
}

static void
test_sticky_del(void **state)
{
	struct store *s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	struct store_txn *txn;
	struct store_stats st;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_PROVIDERS, "a", 1, "1", 1), 0);
	assert_int_equal(store_del(txn, STORE_DB_PROVIDERS, "missing", 7),
	    -ENOENT);
	assert_int_equal(store_txn_error(txn), -ENOENT);
	assert_int_equal(store_txn_commit(txn, NULL), -ENOENT);
	assert_int_equal(get_str(s, STORE_DB_PROVIDERS, "a", NULL), -ENOENT);

	/* A failed commit takes no sequence. */
	store_get_stats(s, &st);
	assert_int_equal(st.last_txn, 0);

	/* Abort discards too. */
	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_PROVIDERS, "b", 1, "2", 1), 0);
	store_txn_abort(txn);
	store_txn_abort(NULL);
	assert_int_equal(get_str(s, STORE_DB_PROVIDERS, "b", NULL), -ENOENT);

	store_close(s);
}

static void
test_one_writer(void **state)
{
	struct store *s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	struct store_txn *w, *w2 = NULL, *r;

	assert_int_equal(store_txn_begin(s, 0, &w), 0);
	assert_int_equal(store_txn_begin(s, 0, &w2), -EBUSY);
	assert_null(w2);
	/* Readers are not blocked by the writer. */
	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &r), 0);
	assert_int_equal(store_put(w, STORE_DB_META, "k", 1, "v", 1), 0);
	assert_int_equal(store_get(r, STORE_DB_META, "k", 1, NULL, NULL),
	    -ENOENT);
	assert_int_equal(store_txn_commit(w, NULL), 0);
	/* The reader keeps its snapshot. */
	assert_int_equal(store_get(r, STORE_DB_META, "k", 1, NULL, NULL),
	    -ENOENT);
	store_txn_abort(r);
	assert_int_equal(get_str(s, STORE_DB_META, "k", "v"), 0);

	assert_int_equal(store_txn_begin(s, 7, &w), -EINVAL);
	store_close(s);
}

static void
test_key_limits(void **state)
{
	struct store *s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	struct store_txn *txn;
	char key[600];

	memset(key, 'k', sizeof(key));

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_SERVICES, key, 511, "v", 1),
	    0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_SERVICES, key, 512, "v", 1),
	    -EINVAL);
	assert_int_equal(store_txn_commit(txn, NULL), -EINVAL);

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_SERVICES, key, 0, "v", 1),
	    -EINVAL);
	store_txn_abort(txn);

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, (enum store_db)STORE_DB__COUNT, key, 1,
	    "v", 1), -EINVAL);
	store_txn_abort(txn);

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(store_get(txn, STORE_DB_SERVICES, key, 511, NULL,
	    NULL), 0);
	assert_int_equal(store_get(txn, STORE_DB_SERVICES, key, 512, NULL,
	    NULL), -EINVAL);
	store_txn_abort(txn);

	store_close(s);
}

static void
test_reopen(void **state)
{
	struct store *s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	struct store_stats st;

	put_one(s, STORE_DB_PROVIDERS, "p1", "kept", NULL);
	put_one(s, STORE_DB_SERVICES, "s1", "also kept", NULL);
	s = store_close(s);

	s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	assert_int_equal(get_str(s, STORE_DB_PROVIDERS, "p1", "kept"), 0);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "s1", "also kept"), 0);
	/* Sequences count from open. */
	store_get_stats(s, &st);
	assert_int_equal(st.last_txn, 0);
	assert_int_equal(st.map_size, MAP_SIZE_DEFAULT);
	assert_true(st.used_bytes > 0);
	assert_true(st.used_bytes <= st.map_size);
	store_close(s);
}

/* Overwrite the schema record with raw LMDB, behind the store's back. */
static void
raw_put_meta(const char *path, const void *val, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {
		.mv_size = 14,
		.mv_data = (void *)(uintptr_t)"schema_version",
	};
	MDB_val v = { .mv_size = len, .mv_data = (void *)(uintptr_t)val };

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, STORE_DB__COUNT), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
test_schema_mismatch(void **state)
{
	struct fixture *f = *state;
	Twinroute__Store__Meta meta = TWINROUTE__STORE__META__INIT;
	Twinroute__Store__Meta *m;
	struct store_opts opts = {
		.path = f->path,
		.map_size = MAP_SIZE_DEFAULT,
	};
	struct store *s = open_store(f, MAP_SIZE_DEFAULT, NULL);
	struct store *s2 = NULL;
	struct store_txn *txn;
	const void *val;
	size_t len;
	uint8_t buf[32];

	/* The schema record is there and current. */
	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(store_get(txn, STORE_DB_META, "schema_version", 14,
	    &val, &len), 0);
	m = twinroute__store__meta__unpack(NULL, len, val);
	assert_non_null(m);
	assert_int_equal(m->schema_version, STORE_SCHEMA_VERSION);
	assert_true(m->created_unix > 0);
	twinroute__store__meta__free_unpacked(m, NULL);
	store_txn_abort(txn);

	/* A different version written through the store. */
	meta.schema_version = STORE_SCHEMA_VERSION + 1;
	meta.created_unix = 1;
	len = twinroute__store__meta__pack(&meta, buf);
	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_META, "schema_version", 14,
	    buf, len), 0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	store_close(s);

	assert_int_equal(store_open(&opts, NULL, &s2), -TR_ESCHEMA);
	assert_null(s2);
	{
		uint32_t v = 0;

		/* What the daemon's message names. */
		assert_int_equal(store_schema_read(f->path, &v), 0);
		assert_int_equal(v, STORE_SCHEMA_VERSION + 1);
	}
	/* Refused with a base too, and nothing is left running. */
	{
		struct event_base *base = event_base_new();

		assert_non_null(base);
		assert_int_equal(store_open(&opts, base, &s2), -TR_ESCHEMA);
		assert_null(s2);
		event_base_free(base);
	}

	/* A record that does not decode is refused. */
	raw_put_meta(f->path, "\xff\xff\xff", 3);
	assert_int_equal(store_open(&opts, NULL, &s2), -TR_ESCHEMA);
	assert_null(s2);

	/* Version 0 is no version; version 1 is upgraded in place. */
	meta.schema_version = 0;
	len = twinroute__store__meta__pack(&meta, buf);
	raw_put_meta(f->path, buf, len);
	assert_int_equal(store_open(&opts, NULL, &s2), -TR_ESCHEMA);
	meta.schema_version = 1;
	len = twinroute__store__meta__pack(&meta, buf);
	raw_put_meta(f->path, buf, len);
	s2 = open_store(f, MAP_SIZE_DEFAULT, NULL);
	store_close(s2);
	{
		uint32_t v = 0;

		assert_int_equal(store_schema_read(f->path, &v), 0);
		assert_int_equal(v, STORE_SCHEMA_VERSION);
	}

	/* The current version, written raw, opens again. */
	meta.schema_version = STORE_SCHEMA_VERSION;
	len = twinroute__store__meta__pack(&meta, buf);
	raw_put_meta(f->path, buf, len);
	s2 = open_store(f, MAP_SIZE_DEFAULT, NULL);
	store_close(s2);
}

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct store_opts opts = { .map_size = MAP_SIZE_DEFAULT };
	struct store *s = NULL;
	char path[160];

	assert_int_equal(store_open(&opts, NULL, &s), -EINVAL);
	/* The parent must exist. */
	snprintf(path, sizeof(path), "%s/no/such", f->dir);
	opts.path = path;
	assert_int_equal(store_open(&opts, NULL, &s), -ENOENT);
	assert_null(s);
}

static void
test_map_full(void **state)
{
	struct store *s = open_store(*state, 256 * 1024, NULL);
	struct store_txn *txn;
	struct store_stats st;
	char val[6000];
	char key[16];
	int n = 0, r = 0;

	for (n = 0; n < 1000; n++) {
		snprintf(key, sizeof(key), "k%04d", n);
		memset(val, 'a' + n % 26, sizeof(val));
		assert_int_equal(store_txn_begin(s, 0, &txn), 0);
		r = store_put(txn, STORE_DB_SERVICES, key, strlen(key), val,
		    sizeof(val));
		if (r < 0) {
			assert_int_equal(r, -ENOSPC);
			assert_int_equal(store_txn_commit(txn, NULL), -ENOSPC);
			break;
		}
		r = store_txn_commit(txn, NULL);
		if (r < 0) {
			assert_int_equal(r, -ENOSPC);
			break;
		}
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(n > 3);

	/* Reads still work and every committed value is there. */
	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	for (int i = 0; i < n; i++) {
		const void *v;
		size_t len;

		snprintf(key, sizeof(key), "k%04d", i);
		memset(val, 'a' + i % 26, sizeof(val));
		assert_int_equal(store_get(txn, STORE_DB_SERVICES, key,
		    strlen(key), &v, &len), 0);
		assert_int_equal(len, sizeof(val));
		assert_memory_equal(v, val, len);
	}
	snprintf(key, sizeof(key), "k%04d", n);
	assert_int_equal(store_get(txn, STORE_DB_SERVICES, key, strlen(key),
	    NULL, NULL), -ENOENT);
	assert_int_equal(store_txn_commit(txn, NULL), 0);

	/* A smaller write may or may not fit, but must not break anything. */
	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	r = store_put(txn, STORE_DB_META, "small", 5, "x", 1);
	assert_true(r == 0 || r == -ENOSPC);
	r = store_txn_commit(txn, NULL);
	assert_true(r == 0 || r == -ENOSPC);

	store_get_stats(s, &st);
	assert_true(st.used_bytes <= st.map_size);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "k0000", NULL), 0);
	store_close(s);
}

/* ---- iteration ---- */

struct collect {
	char keys[8][8];
	size_t n;
	size_t stop_after;  /* 0: never */
	int fail;           /* returned after the first record when set */
};

static int
collect_cb(const void *key, size_t key_len, const void *val, size_t val_len,
    void *arg)
{
	struct collect *c = arg;

	assert_true(key_len < sizeof(c->keys[0]));
	assert_true(c->n < ELEMENTSOF(c->keys));
	assert_int_equal(val_len, key_len);
	assert_memory_equal(val, key, key_len);
	memcpy(c->keys[c->n], key, key_len);
	c->keys[c->n][key_len] = '\0';
	c->n++;
	if (c->fail)
		return c->fail;
	if (c->stop_after && c->n == c->stop_after)
		return 1;
	return 0;
}

static void
test_iter(void **state)
{
	struct store *s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	static const char *const in[] = { "bb", "a", "d", "c", "b" };
	struct store_txn *txn;
	struct collect c;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	for (size_t i = 0; i < ELEMENTSOF(in); i++)
		assert_int_equal(store_put(txn, STORE_DB_PROVIDERS, in[i],
		    strlen(in[i]), in[i], strlen(in[i])), 0);
	assert_int_equal(store_put(txn, STORE_DB_SERVICES, "zz", 2, "zz", 2),
	    0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(txn, STORE_DB_PROVIDERS, NULL, 0,
	    collect_cb, &c), 0);
	assert_int_equal(c.n, 5);
	assert_string_equal(c.keys[0], "a");
	assert_string_equal(c.keys[1], "b");
	assert_string_equal(c.keys[2], "bb");
	assert_string_equal(c.keys[3], "c");
	assert_string_equal(c.keys[4], "d");

	/* From a key that is not there: the next one up. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(txn, STORE_DB_PROVIDERS, "ba", 2,
	    collect_cb, &c), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.keys[0], "bb");
	assert_string_equal(c.keys[2], "d");

	/* From a key that is there: it comes first. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(txn, STORE_DB_PROVIDERS, "c", 1,
	    collect_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.keys[0], "c");

	/* Past the end. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(txn, STORE_DB_PROVIDERS, "e", 1,
	    collect_cb, &c), 0);
	assert_int_equal(c.n, 0);

	/* An empty database. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(txn, STORE_DB_SERVICES_BY_CATEGORY, NULL,
	    0, collect_cb, &c), 0);
	assert_int_equal(c.n, 0);

	/* Stop early. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(store_iter(txn, STORE_DB_PROVIDERS, NULL, 0,
	    collect_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.keys[1], "b");

	/* Backwards: every key from the last, or as far as the callback
	 * goes; an empty database gives nothing. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter_rev(txn, STORE_DB_PROVIDERS, collect_cb,
	    &c), 0);
	assert_int_equal(c.n, 5);
	assert_string_equal(c.keys[0], "d");
	assert_string_equal(c.keys[2], "bb");
	assert_string_equal(c.keys[4], "a");
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(store_iter_rev(txn, STORE_DB_PROVIDERS, collect_cb,
	    &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.keys[1], "c");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter_rev(txn, STORE_DB_SERVICES_BY_CATEGORY,
	    collect_cb, &c), 0);
	assert_int_equal(c.n, 0);
	memset(&c, 0, sizeof(c));
	c.fail = -EIO;
	assert_int_equal(store_iter_rev(txn, STORE_DB_PROVIDERS, collect_cb,
	    &c), -EIO);
	assert_int_equal(store_txn_error(txn), 0);

	/* A callback error comes back and does not spoil the transaction. */
	memset(&c, 0, sizeof(c));
	c.fail = -EIO;
	assert_int_equal(store_iter(txn, STORE_DB_PROVIDERS, NULL, 0,
	    collect_cb, &c), -EIO);
	assert_int_equal(c.n, 1);
	assert_int_equal(store_txn_error(txn), 0);

	assert_int_equal(store_txn_commit(txn, NULL), 0);
	store_close(s);
}

/* ---- group commit ---- */

#define GC_COMMITS 20

struct waits {
	struct event_base *base;
	uint64_t seqs[GC_COMMITS + 8];
	int errs[GC_COMMITS + 8];
	size_t n;
	size_t want;
};

struct waiter {
	struct waits *w;
	uint64_t seq;
};

static void
sync_cb(void *arg, int err)
{
	struct waiter *wt = arg;
	struct waits *w = wt->w;

	assert_true(w->n < ELEMENTSOF(w->seqs));
	w->seqs[w->n] = wt->seq;
	w->errs[w->n] = err;
	w->n++;
	if (w->base && w->n == w->want)
		event_base_loopbreak(w->base);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fail_msg("group commit: waiters did not run within the timeout");
}

static void
test_group_commit(void **state)
{
	struct event_base *base = event_base_new();
	struct waiter wt[GC_COMMITS + 2];
	struct waits w = { .base = base, .want = GC_COMMITS };
	struct timeval tv = { .tv_sec = 20 };
	struct event *timeout;
	struct store_stats st;
	struct store *s;
	uint64_t seq;
	char key[16];

	assert_non_null(base);
	s = open_store(*state, MAP_SIZE_DEFAULT, base);
	timeout = evtimer_new(base, timeout_cb, NULL);
	assert_non_null(timeout);
	assert_int_equal(evtimer_add(timeout, &tv), 0);

	for (int i = 0; i < GC_COMMITS; i++) {
		snprintf(key, sizeof(key), "o%02d", i);
		put_one(s, STORE_DB_SERVICES, key, key, &seq);
		assert_int_equal(seq, (uint64_t)i + 1);
		wt[i].w = &w;
		wt[i].seq = seq;
		assert_int_equal(store_after_sync(s, seq, sync_cb, &wt[i]), 0);
	}
	/* Nothing runs before the loop does. */
	assert_int_equal(w.n, 0);
	assert_int_equal(store_sync_pending(s), GC_COMMITS);
	/* A sequence that was never committed. */
	assert_int_equal(store_after_sync(s, GC_COMMITS + 1, sync_cb, &wt[0]),
	    -EINVAL);

	while (w.n < w.want)
		assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);

	for (size_t i = 0; i < w.n; i++) {
		assert_int_equal(w.seqs[i], i + 1);
		assert_int_equal(w.errs[i], 0);
	}
	assert_int_equal(store_sync_pending(s), 0);
	store_get_stats(s, &st);
	assert_int_equal(st.last_txn, GC_COMMITS);
	assert_true(st.synced_txn >= GC_COMMITS);
	assert_true(st.syncs >= 1);
	assert_true(st.syncs <= GC_COMMITS);

	/* Already durable: the callback runs before store_after_sync returns */
	wt[GC_COMMITS].w = &w;
	wt[GC_COMMITS].seq = 5;
	assert_int_equal(store_after_sync(s, 5, sync_cb, &wt[GC_COMMITS]), 0);
	assert_int_equal(w.n, GC_COMMITS + 1);
	assert_int_equal(w.seqs[GC_COMMITS], 5);
	assert_int_equal(w.errs[GC_COMMITS], 0);

	/* Still queued at close: the final sync covers it. */
	put_one(s, STORE_DB_SERVICES, "last", "last", &seq);
	wt[GC_COMMITS + 1].w = &w;
	wt[GC_COMMITS + 1].seq = seq;
	w.base = NULL;
	assert_int_equal(store_after_sync(s, seq, sync_cb,
	    &wt[GC_COMMITS + 1]), 0);
	assert_int_equal(w.n, GC_COMMITS + 1);
	assert_int_equal(store_sync_pending(s), 1);
	store_close(s);
	assert_int_equal(w.n, GC_COMMITS + 2);
	assert_int_equal(w.seqs[GC_COMMITS + 1], GC_COMMITS + 1);
	assert_int_equal(w.errs[GC_COMMITS + 1], 0);

	/* What the loop committed is on disk. */
	s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "o19", "o19"), 0);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "last", "last"), 0);
	store_close(s);

	event_free(timeout);
	event_base_free(base);
}

/* A write no reply waits for still reaches the disk, soon. */
static void
test_lazy_sync(void **state)
{
	struct event_base *base = event_base_new();
	struct store_stats st;
	struct store *s;
	uint64_t seq;

	assert_non_null(base);
	s = open_store(*state, MAP_SIZE_DEFAULT, base);
	put_one(s, STORE_DB_SERVICES, "lazy", "lazy", &seq);
	/* Poll (up to 10 s) until the sync thread has covered it. */
	for (int i = 0; i < 1000; i++) {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		store_get_stats(s, &st);
		if (st.synced_txn >= seq)
			break;
	}
	assert_true(st.synced_txn >= seq);
	store_close(s);
	event_base_free(base);
}

/* Batched writers share one commit; one member's failure is its own. */
static void
test_batch(void **state)
{
	struct event_base *base = event_base_new();
	struct waiter wt[3];
	struct waits w = { .base = base, .want = 2 };
	struct store_txn *a, *b, *c, *r;
	const void *val;
	size_t len;
	uint64_t sa, sb, sc;
	struct store *s;

	assert_non_null(base);
	s = open_store(*state, MAP_SIZE_DEFAULT, base);

	/* Two members: the second sees the first's write. */
	assert_int_equal(store_txn_begin(s, STORE_BATCH, &a), 0);
	assert_int_equal(store_put(a, STORE_DB_SERVICES, "a", 1, "A", 1), 0);
	assert_int_equal(store_txn_commit(a, &sa), 0);
	assert_int_equal(store_txn_begin(s, STORE_BATCH, &b), 0);
	assert_int_equal(store_get(b, STORE_DB_SERVICES, "a", 1, &val, &len), 0);
	assert_int_equal(store_put(b, STORE_DB_SERVICES, "b", 1, "B", 1), 0);
	assert_int_equal(store_txn_commit(b, &sb), 0);
	assert_int_equal(sa, sb);
	assert_int_equal(store_last_seq(s), sa);
	/* A member that fails leaves the others alone. */
	assert_int_equal(store_txn_begin(s, STORE_BATCH, &c), 0);
	assert_int_equal(store_put(c, STORE_DB_SERVICES, "c", 1, "C", 1), 0);
	assert_int_equal(store_del(c, STORE_DB_SERVICES, "zz", 2), -ENOENT);
	assert_int_equal(store_txn_commit(c, &sc), -ENOENT);
	/* Readers do not see the batch before it commits. */
	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &r), 0);
	assert_int_equal(store_get(r, STORE_DB_SERVICES, "a", 1, &val, &len),
	    -ENOENT);
	store_txn_abort(r);
	/* Its seq can be waited on before it commits. */
	wt[0].w = wt[1].w = &w;
	wt[0].seq = wt[1].seq = sa;
	assert_int_equal(store_after_sync(s, sa, sync_cb, &wt[0]), 0);
	assert_int_equal(store_after_sync(s, sb, sync_cb, &wt[1]), 0);
	assert_int_equal(store_after_sync(s, sa + 1, sync_cb, &wt[2]), -EINVAL);
	/* The loop's round ends: one commit, one sync, both waiters. */
	while (w.n < w.want)
		assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
	assert_int_equal(w.errs[0], 0);
	assert_int_equal(w.errs[1], 0);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "a", "A"), 0);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "b", "B"), 0);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "c", "C"), -ENOENT);

	/* A plain writer commits an open batch first. */
	assert_int_equal(store_txn_begin(s, STORE_BATCH, &a), 0);
	assert_int_equal(store_put(a, STORE_DB_SERVICES, "d", 1, "D", 1), 0);
	assert_int_equal(store_txn_commit(a, &sa), 0);
	put_one(s, STORE_DB_SERVICES, "e", "E", &sb);
	assert_int_equal(sb, sa + 1);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "d", "D"), 0);
	/* And store_close commits one still open. */
	assert_int_equal(store_txn_begin(s, STORE_BATCH, &a), 0);
	assert_int_equal(store_put(a, STORE_DB_SERVICES, "f", 1, "F", 1), 0);
	assert_int_equal(store_txn_commit(a, NULL), 0);
	store_close(s);
	s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "f", "F"), 0);
	/* Without an event base there is no batch. */
	assert_int_equal(store_txn_begin(s, STORE_BATCH, &a), -EINVAL);
	store_close(s);
	event_base_free(base);
}

/* Put key in a batch member; its seq. */
static uint64_t
batch_put(struct store *s, const char *key)
{
	struct store_txn *t;
	uint64_t seq;

	assert_int_equal(store_txn_begin(s, STORE_BATCH, &t), 0);
	assert_int_equal(store_put(t, STORE_DB_SERVICES, key, strlen(key), "v",
	    1), 0);
	assert_int_equal(store_txn_commit(t, &seq), 0);
	return seq;
}

/* Run the loop's rounds for about ms milliseconds. */
static void
run_for(struct event_base *base, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	assert_int_equal(event_base_loopexit(base, &tv), 0);
	assert_true(event_base_dispatch(base) >= 0);
}

/* Run rounds until seq has committed (a sync running may defer it). */
static void
wait_committed(struct event_base *base, struct store *s, uint64_t seq)
{
	for (int i = 0; i < 5000 && store_committed_seq(s) < seq; i++) {
		assert_true(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
		usleep(1000);
	}
	assert_int_equal(store_committed_seq(s), seq);
}

/* Run rounds until the sync thread has synced every commit: idle, it
 * defers no batch, so the next round's commit is the holds' to decide. */
static void
wait_sync_idle(struct event_base *base, struct store *s)
{
	struct store_stats st;

	for (int i = 0; i < 5000; i++) {
		store_get_stats(s, &st);
		if (st.synced_txn == store_committed_seq(s))
			return;
		assert_true(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
		usleep(1000);
	}
	fail_msg("the sync thread never caught up");
}

/* A held batch waits for its holds (and those alone), then commits. */
static void
test_batch_hold(void **state)
{
	struct event_base *base = event_base_new();
	uint32_t g1, g2, g3;
	uint64_t seq, seq2;
	struct store *s;

	assert_non_null(base);
	s = open_store(*state, MAP_SIZE_DEFAULT, base);
	/* No batch, no hold. */
	assert_int_equal(store_batch_hold(s, &g1), -EINVAL);
	wait_sync_idle(base, s);

	seq = batch_put(s, "h1");
	assert_int_equal(store_batch_hold(s, &g1), 0);
	/* Rounds end; the hold keeps it open (the cap is far away). */
	assert_true(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(store_committed_seq(s), seq - 1);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "h1", "v"), -ENOENT);
	/* A hold taken now is the next batch's: releasing the first is
	 * enough, and the member's second write joins the same commit. */
	assert_int_equal(store_batch_hold(s, &g2), 0);
	assert_int_equal(batch_put(s, "h2"), seq);
	store_batch_release(s, g1);
	assert_int_equal(store_committed_seq(s), seq - 1);  /* not inline */
	assert_true(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(store_committed_seq(s), seq);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "h1", "v"), 0);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "h2", "v"), 0);

	/* The next batch waits for g2, taken while the first closed. */
	wait_sync_idle(base, s);
	seq2 = batch_put(s, "h3");
	assert_int_equal(seq2, seq + 1);
	assert_true(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(store_committed_seq(s), seq);
	store_batch_release(s, g2);
	assert_true(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(store_committed_seq(s), seq2);

	/* A hold never released holds the batch a millisecond at most. */
	seq = batch_put(s, "h4");
	assert_int_equal(store_batch_hold(s, &g3), 0);
	run_for(base, 50);
	wait_committed(base, s, seq);
	assert_int_equal(get_str(s, STORE_DB_SERVICES, "h4", "v"), 0);
	/* Its late release is harmless. */
	store_batch_release(s, g3);
	seq2 = batch_put(s, "h5");
	wait_committed(base, s, seq2);
	store_close(s);
	event_base_free(base);
}

/* Many commits and one waiter: fewer syncs than commits is allowed. */
static void
test_group_commit_burst(void **state)
{
	struct event_base *base = event_base_new();
	struct waits w = { .base = base, .want = 1 };
	struct waiter wt = { .w = &w };
	struct store_stats st;
	struct store *s;
	struct store_txn *txn;
	uint64_t seq = 0;
	char key[16];

	assert_non_null(base);
	s = open_store(*state, MAP_SIZE_DEFAULT, base);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "b%03d", i);
		assert_int_equal(store_txn_begin(s, 0, &txn), 0);
		assert_int_equal(store_put(txn, STORE_DB_PROVIDERS, key,
		    strlen(key), key, strlen(key)), 0);
		assert_int_equal(store_txn_commit(txn, &seq), 0);
	}
	wt.seq = seq;
	assert_int_equal(store_after_sync(s, seq, sync_cb, &wt), 0);
	while (w.n < w.want)
		assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
	assert_int_equal(w.errs[0], 0);

	store_get_stats(s, &st);
	assert_int_equal(st.last_txn, 200);
	assert_true(st.synced_txn >= 200);
	assert_true(st.syncs >= 1 && st.syncs <= 200);
	store_close(s);
	event_base_free(base);
}

static void
test_no_base_sync(void **state)
{
	struct store *s = open_store(*state, MAP_SIZE_DEFAULT, NULL);
	struct waits w = { 0 };
	struct waiter wt = { .w = &w };
	struct store_stats st;
	uint64_t seq;

	put_one(s, STORE_DB_PROVIDERS, "p", "v", &seq);
	wt.seq = seq;
	assert_int_equal(store_after_sync(s, seq, sync_cb, &wt), 0);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.errs[0], 0);
	assert_int_equal(store_sync_pending(s), 0);
	store_get_stats(s, &st);
	assert_int_equal(st.last_txn, 1);
	assert_int_equal(st.synced_txn, 1);
	store_close(s);
}

struct copy_arg {
	struct store *s;
	const char *dir;
	uint64_t last_txn, bytes;
	int r;
};

static void *
copy_thread(void *arg)
{
	struct copy_arg *a = arg;

	a->r = store_copy(a->s, a->dir, &a->last_txn, &a->bytes);
	return NULL;
}

/* store_copy on another thread while a write transaction is open. */
static void
test_copy(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, MAP_SIZE_DEFAULT, NULL);
	struct store_opts opts = { .map_size = MAP_SIZE_DEFAULT };
	struct copy_arg a = { .s = s };
	struct store_txn *txn;
	struct stat st;
	char dest[128], file[160];
	uint64_t seq = 0, last, bytes;
	uint32_t version = 0;
	pthread_t t;

	put_one(s, STORE_DB_PROVIDERS, "p1", "before", &seq);
	snprintf(dest, sizeof(dest), "%s/copy", f->dir);
	snprintf(file, sizeof(file), "%s/data.mdb", dest);
	assert_int_equal(mkdir(dest, 0700), 0);
	a.dir = dest;

	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	assert_int_equal(store_put(txn, STORE_DB_PROVIDERS, "p2", 2, "w", 1),
	    0);
	assert_int_equal(pthread_create(&t, NULL, copy_thread, &a), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(store_txn_commit(txn, NULL), 0);
	assert_int_equal(a.r, 0);
	assert_int_equal(a.last_txn, seq);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal((uint64_t)st.st_size, a.bytes);

	/* The file is there: not overwritten. No folder: nothing made. */
	assert_int_equal(store_copy(s, dest, &last, &bytes), -EEXIST);
	snprintf(file, sizeof(file), "%s/none", f->dir);
	assert_int_equal(store_copy(s, file, &last, &bytes), -ENOENT);
	store_close(s);

	/* The copy is a store: what was committed, not what was open. */
	opts.path = dest;
	assert_int_equal(store_open(&opts, NULL, &s), 0);
	assert_int_equal(get_str(s, STORE_DB_PROVIDERS, "p1", "before"), 0);
	assert_int_equal(get_str(s, STORE_DB_PROVIDERS, "p2", NULL), -ENOENT);
	store_close(s);
	assert_int_equal(store_schema_read(dest, &version), 0);
	assert_int_equal(version, STORE_SCHEMA_VERSION);
	assert_int_equal(store_schema_read(file, &version), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_put_new_exists, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sticky_del, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_one_writer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_limits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_mismatch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_hold, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lazy_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_burst, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_base_sync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
