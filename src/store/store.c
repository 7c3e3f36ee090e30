/* SPDX-License-Identifier: ISC */
/* store.c -- the broker's LMDB environment, with group commit */

/*
 * A thin wrapper over LMDB in the shape of LMDB itself and Knot's
 * knot_lmdb: a transaction carries a sticky error, so the first failing
 * operation spoils it, later operations do nothing and return that error,
 * and the commit aborts and returns it. LMDB codes become -errno or -TR_E*:
 * MDB_NOTFOUND -ENOENT, MDB_MAP_FULL -ENOSPC, MDB_KEYEXIST -TR_EEXISTS,
 * system errors their -errno, anything else -EIO.
 *
 * Which failures are sticky:
 *   - store_get: -ENOENT is an answer, not a failure, and does not spoil
 *     the transaction; any other error does.
 *   - store_put_new on an existing key (-TR_EEXISTS) and store_del of a
 *     missing key (-ENOENT) DO spoil it: callers validate beforehand, so
 *     these mean the transaction was built on a wrong assumption and must
 *     not commit.
 *   - store_iter: a cursor error spoils it; an error returned by the
 *     caller's callback is handed back but does not.
 *
 * Group commit. With an event_base, the environment is opened with
 * MDB_NOSYNC: a write commit reaches the OS but is not fsynced. Every
 * successful write commit gets a sequence number (1, 2, ... counted from
 * store_open). A sync thread fsyncs (mdb_env_sync) whenever commits are
 * newer than its last sync, outside the mutex, and reports the sequence
 * the sync covered through an eventfd watched by the loop. The loop then
 * runs, in sequence order, every store_after_sync() waiter that sync
 * covered. Commits made while an fsync runs are all covered by the next
 * one: that is the point, and stats count the fsyncs.
 *
 * A failed sync is reported to the waiters it was meant to cover with the
 * negative error; those sequences stay failed even if a later sync works
 * (after a failed fsync the kernel may have dropped the pages). Nothing is
 * logged here.
 *
 * Without an event_base (tools, tests) every commit is synced by LMDB, the
 * sequence still counts, and store_after_sync() calls back at once.
 *
 * Threads: only the loop thread (the thread that owns the event_base, or
 * the single caller without one) may call store_txn_begin/commit/abort,
 * the record operations, store_after_sync, store_sync_pending,
 * store_get_stats and store_close. The sync thread touches nothing but
 * mdb_env_sync, the fields under sync_lock and the fsync histogram's
 * atomic counters. There is one write transaction at a time:
 * store_txn_begin returns -EBUSY for a second one.
 * End every transaction before store_close; waiter callbacks must not
 * call store_close.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lmdb.h>

#include "common/errcode.h"
#include "common/macro.h"
#include "store.pb-c.h"
#include "store/store.h"

#define STORE_META_SCHEMA_KEY "schema_version"
/* A packed Meta: two tags and two varints. */
#define STORE_META_BUF_MAX 32

static const char *const store_db_names[STORE_DB__COUNT] = {
	[STORE_DB_META] = "meta",
	[STORE_DB_PROVIDERS] = "providers",
	[STORE_DB_SERVICES] = "services",
	[STORE_DB_SERVICES_BY_CATEGORY] = "services_by_category",
	[STORE_DB_MEMBERS] = "members",
	[STORE_DB_LOGIN] = "login",
	[STORE_DB_ORDERS] = "orders",
	[STORE_DB_ORDERS_BY_MEMBER] = "orders_by_member",
	[STORE_DB_IDEMPOTENCY] = "idempotency",
	[STORE_DB_OUTBOX_MAIL] = "outbox_mail",
	[STORE_DB_CONFIRMATIONS] = "confirmations",
	[STORE_DB_TOKENS] = "tokens",
	[STORE_DB_CONFIRM_EXPIRY] = "confirm_expiry",
	[STORE_DB_OUTBOX_PROVIDER] = "outbox_provider",
	[STORE_DB_OUTBOX_FAX] = "outbox_fax",
	[STORE_DB_PROVIDER_AUTH] = "provider_auth",
	[STORE_DB_ORDERS_RECEIVED] = "orders_received",
	[STORE_DB_IDEMPOTENCY_LOG] = "idempotency_log",
};

struct store_waiter {
	TAILQ_ENTRY(store_waiter) entry;
	uint64_t seq;
	store_sync_fn cb;
	void *arg;
};

TAILQ_HEAD(store_waiters, store_waiter);

/* Atomic: the commit histogram is written by the loop, the fsync one by
 * the sync thread; both are read by the loop. */
struct store_hist {
	uint64_t bucket[STORE_LATENCY_BUCKETS + 1];
	uint64_t sum_ns;
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_DB__COUNT];
	struct event_base *base;
	bool write_open;

	/* The loop's batch: a write transaction members nest into. */
	MDB_txn *batch;
	bool batch_deferred;         /* waiting for the running sync to end */
	/* Holds (store_batch_hold): taken in generation hold_gen; a batch
	 * closing with holds open waits for those (hold_closing) alone. */
	uint32_t hold_gen;
	unsigned hold_open;
	unsigned hold_closing;
	bool holding;                /* the batch waits for hold_closing */
	struct event *hold_timer;    /* ... at most STORE_HOLD_MAX_US */
	struct event *batch_ev;      /* commits the batch at the end of a round */
	unsigned batch_members;

	/* Loop side: waiters sorted by seq, and what the loop has seen. */
	struct store_waiters waiters;
	size_t n_waiters;
	uint64_t loop_synced;        /* highest seq known durable */
	uint64_t loop_failed;        /* highest seq whose sync failed */
	uint64_t loop_wanted;        /* highest seq told to the sync thread */
	int loop_failed_err;
	int commit_err;              /* of the last batch that failed */

	/* Shared with the sync thread, under sync_lock. */
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	bool sync_lock_init;
	uint64_t committed;          /* last write seq (written by the loop) */
	uint64_t wanted;             /* highest seq a waiter needs on disk */
	bool syncing;                /* the sync thread is in mdb_env_sync */
	struct timespec last_sync;   /* CLOCK_REALTIME, for the lazy sync */
	uint64_t attempted;          /* highest seq a sync was tried for */
	uint64_t synced;             /* highest seq a sync succeeded for */
	uint64_t failed;             /* highest seq a sync failed for */
	int failed_err;
	uint64_t syncs;
	bool stop;

	pthread_t thread;
	bool thread_started;
	int efd;
	struct event *ev;

	struct store_hist commit_hist, fsync_hist;
};

struct store_txn {
	struct store *s;
	MDB_txn *txn;
	int ret;                     /* sticky error */
	bool rdonly;
	bool nested;                 /* a member of the batch */
};

static void store_batch_commit(struct store *s);
static void store_batch_ready(struct store *s);

/* Writes no reply waits for still reach the disk within this long. */
#define STORE_LAZY_SYNC_MS 200
/* How long a batch waits for its holds, at most (a vault round trip
 * takes tens of microseconds). */
#define STORE_HOLD_MAX_US 1000

/* 100 us .. 1 s, roughly three steps a decade. */
const uint64_t store_latency_bounds_ns[STORE_LATENCY_BUCKETS] = {
	100000, 250000, 500000,
	1000000, 2500000, 5000000,
	10000000, 25000000, 50000000,
	100000000, 250000000, 500000000,
	1000000000,
};

static uint64_t
store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Count one duration since start_ns. Any thread. */
static void
store_hist_add(struct store_hist *h, uint64_t start_ns)
{
	uint64_t ns = store_now_ns() - start_ns;
	size_t i = 0;

	while (i < STORE_LATENCY_BUCKETS && ns > store_latency_bounds_ns[i])
		i++;
	__atomic_fetch_add(&h->bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_ns, ns, __ATOMIC_RELAXED);
}

static void
store_hist_get(const struct store_hist *h, struct store_latency *ret)
{
	for (size_t i = 0; i <= STORE_LATENCY_BUCKETS; i++)
		ret->bucket[i] = __atomic_load_n(&h->bucket[i],
		    __ATOMIC_RELAXED);
	ret->sum_ns = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
}

int
store_mdb_errno(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
		return -ENOSPC;
	case MDB_KEYEXIST:
		return -TR_EEXISTS;
	case MDB_BAD_VALSIZE:
		return -EINVAL;
	default:
		/* LMDB returns system errors as positive errno values. */
		return rc > 0 ? -rc : -EIO;
	}
}

/* Record the first failure of a transaction; returns it. */
static int
store_txn_fail(struct store_txn *txn, int err)
{
	if (txn->ret == 0)
		txn->ret = err;
	return err;
}

static int
store_check_key(const struct store_txn *txn, const void *key, size_t key_len)
{
	if (!key || key_len == 0)
		return -EINVAL;
	if (key_len > (size_t)mdb_env_get_maxkeysize(txn->s->env))
		return -EINVAL;
	return 0;
}

static bool
store_db_valid(enum store_db db)
{
	return (unsigned)db < STORE_DB__COUNT;
}

/* Common entry checks of the record operations. */
static int
store_op_check(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len, bool writing)
{
	int r;

	if (txn->ret != 0)
		return txn->ret;
	if (!store_db_valid(db))
		return store_txn_fail(txn, -EINVAL);
	if (writing && txn->rdonly)
		return store_txn_fail(txn, -EROFS);
	r = store_check_key(txn, key, key_len);
	if (r < 0)
		return store_txn_fail(txn, r);
	return 0;
}

/* ---- sync thread ------------------------------------------------------ */

static void *
store_sync_thread(void *arg)
{
	struct store *s = arg;
	const uint64_t one = 1;

	pthread_mutex_lock(&s->sync_lock);
	for (;;) {
		uint64_t target, start_ns;
		int rc;

		/* Sync when a waiter needs a committed write on disk, or
		 * when unwaited writes have been around for a while. */
		while (!s->stop) {
			struct timespec due = s->last_sync, now;

			if (s->committed <= s->attempted) {
				pthread_cond_wait(&s->sync_cond, &s->sync_lock);
				continue;
			}
			if (s->wanted > s->attempted)
				break;
			due.tv_nsec += STORE_LAZY_SYNC_MS * 1000000L;
			due.tv_sec += due.tv_nsec / 1000000000L;
			due.tv_nsec %= 1000000000L;
			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec > due.tv_sec || (now.tv_sec == due.tv_sec &&
			    now.tv_nsec >= due.tv_nsec))
				break;
			pthread_cond_timedwait(&s->sync_cond, &s->sync_lock, &due);
		}
		if (s->stop)
			break;
		target = s->committed;
		s->syncing = true;
		pthread_mutex_unlock(&s->sync_lock);

		start_ns = store_now_ns();
		rc = mdb_env_sync(s->env, 1);
		store_hist_add(&s->fsync_hist, start_ns);

		pthread_mutex_lock(&s->sync_lock);
		s->syncing = false;
		s->attempted = target;
		clock_gettime(CLOCK_REALTIME, &s->last_sync);
		s->syncs++;
		if (rc == 0) {
			s->synced = target;
		} else {
			s->failed = target;
			s->failed_err = store_mdb_errno(rc);
		}
		pthread_mutex_unlock(&s->sync_lock);

		/*
		 * Cannot fail short of the counter overflowing; the loop
		 * reads the state under the mutex anyway.
		 */
		if (write(s->efd, &one, sizeof(one)) < 0) {
			/* nothing to do: the next sync writes again */
		}

		pthread_mutex_lock(&s->sync_lock);
	}
	pthread_mutex_unlock(&s->sync_lock);
	return NULL;
}

/* A batch failed: its waiters, the only ones above committed, get err.
 * Taken off the queue first, since their callbacks may write again. */
static void
store_fail_batch_waiters(struct store *s, int err)
{
	struct store_waiters failed = TAILQ_HEAD_INITIALIZER(failed);
	struct store_waiter *w;

	while ((w = TAILQ_LAST(&s->waiters, store_waiters)) != NULL &&
	    w->seq > s->committed) {
		TAILQ_REMOVE(&s->waiters, w, entry);
		s->n_waiters--;
		TAILQ_INSERT_HEAD(&failed, w, entry);
	}
	while ((w = TAILQ_FIRST(&failed)) != NULL) {
		TAILQ_REMOVE(&failed, w, entry);
		w->cb(w->arg, err);
		free(w);
	}
}

/* Commit the loop's batch: one LMDB commit for every member. */
static void
store_batch_commit(struct store *s)
{
	uint64_t seq, start_ns;
	int r;

	s->batch_deferred = false;
	if (s->holding) {
		s->holding = false;
		s->hold_closing = 0;
		if (s->hold_timer)
			evtimer_del(s->hold_timer);
	}
	if (!s->batch)
		return;
	start_ns = store_now_ns();
	r = store_mdb_errno(mdb_txn_commit(s->batch));
	store_hist_add(&s->commit_hist, start_ns);
	s->batch = NULL;
	s->batch_members = 0;
	if (r < 0) {
		/*
		 * Nothing of the batch is in the store, and like any failed
		 * commit it takes no seq: the next batch gets it. Its members,
		 * waiting on that seq, learn it now; writes before it go on
		 * to their sync, and reads (which never saw the batch) stay
		 * served, however often a full map fails batches.
		 */
		s->commit_err = r;
		store_fail_batch_waiters(s, r);
		return;
	}
	pthread_mutex_lock(&s->sync_lock);
	seq = ++s->committed;
	/* A waiter needs it, or the thread sleeps with nothing to sync:
	 * either way it must look again. */
	if (s->wanted > s->attempted || seq == s->attempted + 1)
		pthread_cond_signal(&s->sync_cond);
	pthread_mutex_unlock(&s->sync_lock);
}

uint64_t
store_last_seq(const struct store *s)
{
	/* Only the loop writes committed. */
	return s->committed + (s->batch ? 1 : 0);
}

uint64_t
store_committed_seq(const struct store *s)
{
	return s->committed;
}

int
store_commit_error(const struct store *s)
{
	return s->commit_err;
}

/*
 * The loop's round is over. While a sync is running, the batch stays open
 * and takes the next rounds' writes too: its members could not be on disk
 * before that sync ends anyway, and one commit then covers them all. The
 * sync's end (store_sync_event) commits it.
 */
static void
store_batch_event(evutil_socket_t fd _unused_, short what _unused_, void *arg)
{
	store_batch_ready(arg);
}

/*
 * The batch may commit, unless a sync runs (the sync's end calls again)
 * or members hold it: then it waits for the holds taken so far, and for
 * those alone (holds taken meanwhile are the next batch's), at most
 * STORE_HOLD_MAX_US.
 */
static void
store_batch_ready(struct store *s)
{
	static const struct timeval cap = { 0, STORE_HOLD_MAX_US };
	bool syncing;

	if (!s->batch)
		return;
	pthread_mutex_lock(&s->sync_lock);
	syncing = s->syncing;
	pthread_mutex_unlock(&s->sync_lock);
	if (syncing) {
		s->batch_deferred = true;
		return;
	}
	if (!s->holding && s->hold_open > 0) {
		s->hold_closing = s->hold_open;
		s->hold_open = 0;
		s->hold_gen++;
		s->holding = true;
		evtimer_add(s->hold_timer, &cap);
	}
	if (s->holding && s->hold_closing > 0)
		return;
	store_batch_commit(s);
}

static void
store_hold_timeout(evutil_socket_t fd _unused_, short what _unused_,
    void *arg)
{
	struct store *s = arg;

	s->hold_closing = 0;
	store_batch_ready(s);
}

int
store_batch_hold(struct store *s, uint32_t *ret_gen)
{
	if (!s || !ret_gen || !s->batch)
		return -EINVAL;
	s->hold_open++;
	*ret_gen = s->hold_gen;
	return 0;
}

void
store_batch_release(struct store *s, uint32_t gen)
{
	if (!s)
		return;
	if (gen == s->hold_gen) {
		if (s->hold_open > 0)
			s->hold_open--;
		return;
	}
	/* The closing batch's hold; older ones went with a commit. */
	if (!s->holding || gen != s->hold_gen - 1 || s->hold_closing == 0)
		return;
	/* Not here: the releasing member may still be waiting on the
	 * batch's seq. At the end of this round, like any batch. */
	if (--s->hold_closing == 0)
		event_active(s->batch_ev, 0, 0);
}

/* Run, in order, every queued waiter the loop's view covers. */
static void
store_run_waiters(struct store *s)
{
	struct store_waiter *w;

	while ((w = TAILQ_FIRST(&s->waiters))) {
		int err;

		if (w->seq <= s->loop_failed)
			err = s->loop_failed_err;
		else if (w->seq <= s->loop_synced)
			err = 0;
		else
			break;
		TAILQ_REMOVE(&s->waiters, w, entry);
		s->n_waiters--;
		/* The callback may queue new waiters: w is already out. */
		w->cb(w->arg, err);
		free(w);
	}
}

static void
store_sync_event(evutil_socket_t fd, short what _unused_, void *arg)
{
	struct store *s = arg;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: woken for nothing; the state below is what counts */
	}

	pthread_mutex_lock(&s->sync_lock);
	s->loop_synced = s->synced;
	if (s->failed > s->loop_failed) {
		s->loop_failed = s->failed;
		s->loop_failed_err = s->failed_err;
	}
	pthread_mutex_unlock(&s->sync_lock);

	store_run_waiters(s);
	/* A batch held back by that sync goes now (or once its holds end). */
	if (s->batch_deferred)
		store_batch_ready(s);
}

static int
store_start_sync(struct store *s)
{
	sigset_t all, old;
	int r;

	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0)
		return -errno;

	s->ev = event_new(s->base, s->efd, EV_READ | EV_PERSIST,
	    store_sync_event, s);
	if (!s->ev)
		return -ENOMEM;
	if (event_add(s->ev, NULL) < 0)
		return -EIO;
	s->batch_ev = event_new(s->base, -1, 0, store_batch_event, s);
	if (!s->batch_ev)
		return -ENOMEM;
	s->hold_timer = evtimer_new(s->base, store_hold_timeout, s);
	if (!s->hold_timer)
		return -ENOMEM;

	/* Signals belong to the loop: the sync thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&s->thread, NULL, store_sync_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	s->thread_started = true;
	return 0;
}

/* ---- open / close ----------------------------------------------------- */

/* Write the schema record: on creation, and on an upgrade. */
static int
store_meta_put(struct store *s, MDB_txn *txn, MDB_val *key,
    const Twinroute__Store__Meta *meta)
{
	uint8_t buf[STORE_META_BUF_MAX];
	MDB_val val;

	if (twinroute__store__meta__get_packed_size(meta) > sizeof(buf))
		return -EOVERFLOW;
	val.mv_size = twinroute__store__meta__pack(meta, buf);
	val.mv_data = buf;
	return store_mdb_errno(mdb_put(txn, s->dbi[STORE_DB_META], key, &val,
	    0));
}

static int
store_meta_check(struct store *s, MDB_txn *txn)
{
	MDB_val key = {
		.mv_size = sizeof(STORE_META_SCHEMA_KEY) - 1,
		.mv_data = (void *)(uintptr_t)STORE_META_SCHEMA_KEY,
	};
	Twinroute__Store__Meta *meta;
	MDB_val val;
	int rc;

	rc = mdb_get(txn, s->dbi[STORE_DB_META], &key, &val);
	if (rc == MDB_NOTFOUND) {
		Twinroute__Store__Meta init = TWINROUTE__STORE__META__INIT;

		init.schema_version = STORE_SCHEMA_VERSION;
		init.created_unix = (uint64_t)time(NULL);
		return store_meta_put(s, txn, &key, &init);
	}
	if (rc != 0)
		return store_mdb_errno(rc);

	meta = twinroute__store__meta__unpack(NULL, val.mv_size, val.mv_data);
	if (!meta)
		return -TR_ESCHEMA;
	if (meta->schema_version == STORE_SCHEMA_VERSION) {
		rc = 0;
	} else if (meta->schema_version == 1) {
		/* The upgrade: the version here, the records at the start of
		 * the daemon (STORE_SCHEMA_VERSION). */
		meta->schema_version = STORE_SCHEMA_VERSION;
		rc = store_meta_put(s, txn, &key, meta);
	} else {
		rc = -TR_ESCHEMA;
	}
	twinroute__store__meta__free_unpacked(meta, NULL);
	return rc;
}

/* The named databases and the schema check, in one write transaction. */
static int
store_init_dbs(struct store *s)
{
	MDB_txn *txn;
	int r;

	r = store_mdb_errno(mdb_txn_begin(s->env, NULL, 0, &txn));
	if (r < 0)
		return r;
	for (size_t i = 0; i < STORE_DB__COUNT; i++) {
		r = store_mdb_errno(mdb_dbi_open(txn, store_db_names[i],
		    MDB_CREATE, &s->dbi[i]));
		if (r < 0)
			goto fail;
	}
	r = store_meta_check(s, txn);
	if (r < 0)
		goto fail;
	return store_mdb_errno(mdb_txn_commit(txn));
fail:
	mdb_txn_abort(txn);
	return r;
}

int
store_open(const struct store_opts *opts, struct event_base *base,
    struct store **ret_store)
{
	struct store *s;
	unsigned flags = MDB_NOTLS;
	int r;

	if (!opts || !opts->path || !ret_store)
		return -EINVAL;

	if (mkdir(opts->path, 0700) < 0 && errno != EEXIST)
		return -errno;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->efd = -1;
	s->base = base;
	TAILQ_INIT(&s->waiters);

	r = pthread_mutex_init(&s->sync_lock, NULL);
	if (r != 0) {
		free(s);
		return -r;
	}
	r = pthread_cond_init(&s->sync_cond, NULL);
	if (r != 0) {
		pthread_mutex_destroy(&s->sync_lock);
		free(s);
		return -r;
	}
	s->sync_lock_init = true;

	r = store_mdb_errno(mdb_env_create(&s->env));
	if (r < 0) {
		s->env = NULL;
		goto fail;
	}
	if (opts->map_size > 0) {
		r = store_mdb_errno(mdb_env_set_mapsize(s->env, opts->map_size));
		if (r < 0)
			goto fail;
	}
	r = store_mdb_errno(mdb_env_set_maxdbs(s->env, STORE_DB__COUNT));
	if (r < 0)
		goto fail;
	if (opts->max_readers > 0) {
		r = store_mdb_errno(mdb_env_set_maxreaders(s->env,
		    opts->max_readers));
		if (r < 0)
			goto fail;
	}
	if (base)
		flags |= MDB_NOSYNC;
	r = store_mdb_errno(mdb_env_open(s->env, opts->path, flags, 0600));
	if (r < 0)
		goto fail;

	r = store_init_dbs(s);
	if (r < 0)
		goto fail;

	if (base) {
		r = store_start_sync(s);
		if (r < 0)
			goto fail;
	}

	*ret_store = s;
	return 0;
fail:
	store_close(s);
	return r;
}

struct store *
store_close(struct store *s)
{
	bool had_thread;
	int final = 0;

	if (!s)
		return NULL;

	store_batch_commit(s);
	had_thread = s->thread_started;
	if (s->thread_started) {
		pthread_mutex_lock(&s->sync_lock);
		s->stop = true;
		pthread_cond_signal(&s->sync_cond);
		pthread_mutex_unlock(&s->sync_lock);
		pthread_join(s->thread, NULL);
		s->thread_started = false;
	}

	if (had_thread) {
		uint64_t target = s->committed;
		int rc;

		/* The thread is gone: no lock needed from here on. */
		rc = mdb_env_sync(s->env, 1);
		s->attempted = target;
		s->syncs++;
		if (rc == 0) {
			s->synced = target;
		} else {
			final = store_mdb_errno(rc);
			s->failed = target;
			s->failed_err = final;
		}
		if (s->failed > s->loop_failed) {
			s->loop_failed = s->failed;
			s->loop_failed_err = s->failed_err;
		}
		s->loop_synced = s->synced;
	}

	/* Every queued seq is <= committed: the final sync decided them. */
	while (!TAILQ_EMPTY(&s->waiters)) {
		struct store_waiter *w = TAILQ_FIRST(&s->waiters);
		int err = w->seq <= s->loop_failed ? s->loop_failed_err : final;

		TAILQ_REMOVE(&s->waiters, w, entry);
		s->n_waiters--;
		w->cb(w->arg, err);
		free(w);
	}

	if (s->ev)
		event_free(s->ev);
	if (s->batch_ev)
		event_free(s->batch_ev);
	if (s->hold_timer)
		event_free(s->hold_timer);
	if (s->efd >= 0)
		close(s->efd);
	if (s->env)
		mdb_env_close(s->env);
	if (s->sync_lock_init) {
		pthread_cond_destroy(&s->sync_cond);
		pthread_mutex_destroy(&s->sync_lock);
	}
	free(s);
	return NULL;
}

/* ---- transactions ----------------------------------------------------- */

int
store_txn_begin(struct store *s, unsigned flags, struct store_txn **ret_txn)
{
	struct store_txn *txn;
	bool rdonly = flags & STORE_RDONLY;
	int r;

	bool batch = flags & STORE_BATCH;

	if (!s || !ret_txn || (flags & ~(STORE_RDONLY | STORE_BATCH)) ||
	    (rdonly && batch) || (batch && !s->batch_ev))
		return -EINVAL;
	if (!rdonly && s->write_open)
		return -EBUSY;
	/* A plain writer goes after the batch: commit it now. */
	if (!rdonly && !batch && s->batch)
		store_batch_commit(s);

	txn = calloc(1, sizeof(*txn));
	if (!txn)
		return -ENOMEM;
	txn->s = s;
	txn->rdonly = rdonly;
	if (batch && !s->batch) {
		r = store_mdb_errno(mdb_txn_begin(s->env, NULL, 0, &s->batch));
		if (r < 0) {
			s->batch = NULL;
			free(txn);
			return r;
		}
		event_active(s->batch_ev, 0, 0);
	}
	txn->nested = batch;
	r = store_mdb_errno(mdb_txn_begin(s->env, batch ? s->batch : NULL,
	    rdonly ? MDB_RDONLY : 0, &txn->txn));
	if (r < 0) {
		free(txn);
		return r;
	}
	if (!rdonly)
		s->write_open = true;
	*ret_txn = txn;
	return 0;
}

void
store_txn_abort(struct store_txn *txn)
{
	if (!txn)
		return;
	mdb_txn_abort(txn->txn);
	if (!txn->rdonly)
		txn->s->write_open = false;
	free(txn);
}

int
store_txn_commit(struct store_txn *txn, uint64_t *ret_seq)
{
	struct store *s;
	uint64_t seq, start_ns;
	int r;

	if (!txn)
		return -EINVAL;
	s = txn->s;

	if (txn->rdonly) {
		r = txn->ret;
		mdb_txn_abort(txn->txn);
		free(txn);
		if (r < 0)
			return r;
		/* Nothing written: nothing to wait for. */
		if (ret_seq)
			*ret_seq = 0;
		return 0;
	}

	if (txn->ret != 0) {
		r = txn->ret;
		store_txn_abort(txn);
		return r;
	}

	/* mdb_txn_commit frees the LMDB transaction even when it fails. */
	start_ns = txn->nested ? 0 : store_now_ns();
	r = store_mdb_errno(mdb_txn_commit(txn->txn));
	if (!txn->nested)
		store_hist_add(&s->commit_hist, start_ns);
	s->write_open = false;
	if (txn->nested) {
		/* Into the batch: durable with the batch's seq. */
		free(txn);
		if (r < 0)
			return r;
		s->batch_members++;
		if (ret_seq)
			*ret_seq = s->committed + 1;
		return 0;
	}
	free(txn);
	if (r < 0)
		return r;

	pthread_mutex_lock(&s->sync_lock);
	seq = ++s->committed;
	if (s->base) {
		/* Wake the sync thread if a reply waits for the disk; else it
		 * syncs within STORE_LAZY_SYNC_MS anyway. */
		if (s->wanted > s->attempted || seq == s->attempted + 1)
			pthread_cond_signal(&s->sync_cond);
	} else {
		/* LMDB synced this commit already. */
		s->attempted = s->synced = seq;
		s->syncs++;
	}
	pthread_mutex_unlock(&s->sync_lock);
	if (!s->base)
		s->loop_synced = seq;

	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

int
store_txn_error(const struct store_txn *txn)
{
	return txn ? txn->ret : -EINVAL;
}

/* ---- records ---------------------------------------------------------- */

int
store_get(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len, const void **ret_val, size_t *ret_val_len)
{
	MDB_val k, v;
	int r;

	if (!txn)
		return -EINVAL;
	r = store_op_check(txn, db, key, key_len, false);
	if (r < 0)
		return r;

	k.mv_size = key_len;
	k.mv_data = (void *)(uintptr_t)key;
	r = store_mdb_errno(mdb_get(txn->txn, txn->s->dbi[db], &k, &v));
	if (r == -ENOENT)
		return r;        /* an answer, not a failure */
	if (r < 0)
		return store_txn_fail(txn, r);

	if (ret_val)
		*ret_val = v.mv_data;
	if (ret_val_len)
		*ret_val_len = v.mv_size;
	return 0;
}

static int
store_put_flags(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len, const void *val, size_t val_len, unsigned flags)
{
	MDB_val k, v;
	int r;

	if (!txn)
		return -EINVAL;
	r = store_op_check(txn, db, key, key_len, true);
	if (r < 0)
		return r;
	if (!val && val_len > 0)
		return store_txn_fail(txn, -EINVAL);

	k.mv_size = key_len;
	k.mv_data = (void *)(uintptr_t)key;
	v.mv_size = val_len;
	v.mv_data = (void *)(uintptr_t)val;
	r = store_mdb_errno(mdb_put(txn->txn, txn->s->dbi[db], &k, &v, flags));
	if (r < 0)
		return store_txn_fail(txn, r);
	return 0;
}

int
store_put(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len, const void *val, size_t val_len)
{
	return store_put_flags(txn, db, key, key_len, val, val_len, 0);
}

int
store_put_new(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len, const void *val, size_t val_len)
{
	return store_put_flags(txn, db, key, key_len, val, val_len,
	    MDB_NOOVERWRITE);
}

int
store_del(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len)
{
	MDB_val k;
	int r;

	if (!txn)
		return -EINVAL;
	r = store_op_check(txn, db, key, key_len, true);
	if (r < 0)
		return r;

	k.mv_size = key_len;
	k.mv_data = (void *)(uintptr_t)key;
	r = store_mdb_errno(mdb_del(txn->txn, txn->s->dbi[db], &k, NULL));
	if (r < 0)
		return store_txn_fail(txn, r);
	return 0;
}

/* What both iterations check first: 0, or the error to return. */
static int
store_iter_check(struct store_txn *txn, enum store_db db, store_iter_fn cb)
{
	if (!txn || !cb)
		return -EINVAL;
	if (txn->ret != 0)
		return txn->ret;
	if (!store_db_valid(db))
		return store_txn_fail(txn, -EINVAL);
	return 0;
}

/* Walk db from the cursor position op, then by step, until cb stops it. */
static int
store_walk(struct store_txn *txn, enum store_db db, MDB_val *k,
    MDB_cursor_op op, MDB_cursor_op step, store_iter_fn cb, void *arg)
{
	MDB_cursor *cur;
	MDB_val v = { 0 };
	int r;

	r = store_mdb_errno(mdb_cursor_open(txn->txn, txn->s->dbi[db], &cur));
	if (r < 0)
		return store_txn_fail(txn, r);
	for (;;) {
		int rc = store_mdb_errno(mdb_cursor_get(cur, k, &v, op));

		if (rc == -ENOENT) {
			r = 0;
			break;
		}
		if (rc < 0) {
			r = store_txn_fail(txn, rc);
			break;
		}
		rc = cb(k->mv_data, k->mv_size, v.mv_data, v.mv_size, arg);
		if (rc != 0) {
			r = rc < 0 ? rc : 0;
			break;
		}
		op = step;
	}
	mdb_cursor_close(cur);
	return r;
}

/*
 * from NULL or empty: start at the first key. The callback must not write
 * to db while the iteration runs.
 */
int
store_iter(struct store_txn *txn, enum store_db db, const void *from,
    size_t from_len, store_iter_fn cb, void *arg)
{
	MDB_val k = { 0 };
	MDB_cursor_op op = MDB_FIRST;
	int r;

	r = store_iter_check(txn, db, cb);
	if (r < 0)
		return r;
	if (from && from_len > 0) {
		r = store_check_key(txn, from, from_len);
		if (r < 0)
			return store_txn_fail(txn, r);
		k.mv_size = from_len;
		k.mv_data = (void *)(uintptr_t)from;
		op = MDB_SET_RANGE;
	}
	return store_walk(txn, db, &k, op, MDB_NEXT, cb, arg);
}

int
store_iter_rev(struct store_txn *txn, enum store_db db, store_iter_fn cb,
    void *arg)
{
	MDB_val k = { 0 };
	int r;

	r = store_iter_check(txn, db, cb);
	if (r < 0)
		return r;
	return store_walk(txn, db, &k, MDB_LAST, MDB_PREV, cb, arg);
}

/* ---- group commit ----------------------------------------------------- */

int
store_after_sync(struct store *s, uint64_t seq, store_sync_fn cb, void *arg)
{
	struct store_waiter *w, *pos;

	if (!s || !cb)
		return -EINVAL;

	/*
	 * Decided by the loop's view only, so a waiter never overtakes a
	 * queued one with a lower seq: every queued seq is above both marks.
	 */
	if (seq <= s->loop_failed) {
		cb(arg, s->loop_failed_err);
		return 0;
	}
	if (seq <= s->loop_synced) {
		cb(arg, 0);
		return 0;
	}
	/* Only the loop writes committed: no lock needed to read it here.
	 * An open batch will commit as committed + 1. */
	if (seq > s->committed + (s->batch ? 1 : 0))
		return -EINVAL;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->seq = seq;
	w->cb = cb;
	w->arg = arg;

	/* Keep the queue sorted; callers nearly always append. */
	TAILQ_FOREACH_REVERSE(pos, &s->waiters, store_waiters, entry) {
		if (pos->seq <= seq)
			break;
	}
	if (pos)
		TAILQ_INSERT_AFTER(&s->waiters, pos, w, entry);
	else
		TAILQ_INSERT_HEAD(&s->waiters, w, entry);
	s->n_waiters++;

	/*
	 * A reply waits: the sync thread syncs as soon as seq is committed.
	 * Told once per seq, not once per waiter (the lock is shared with
	 * the thread); a batch's seq may still be open, and its commit
	 * wakes the thread then.
	 */
	if (seq <= s->loop_wanted)
		return 0;
	s->loop_wanted = seq;
	pthread_mutex_lock(&s->sync_lock);
	if (seq > s->wanted)
		s->wanted = seq;
	if (seq <= s->committed)
		pthread_cond_signal(&s->sync_cond);
	pthread_mutex_unlock(&s->sync_lock);
	return 0;
}

size_t
store_sync_pending(const struct store *s)
{
	return s ? s->n_waiters : 0;
}

void
store_get_stats(struct store *s, struct store_stats *ret_stats)
{
	MDB_envinfo info;
	MDB_stat st;

	memset(ret_stats, 0, sizeof(*ret_stats));
	if (mdb_env_info(s->env, &info) == 0) {
		ret_stats->map_size = info.me_mapsize;
		if (mdb_env_stat(s->env, &st) == 0)
			ret_stats->used_bytes = ((uint64_t)info.me_last_pgno +
			    1) * st.ms_psize;
	}
	pthread_mutex_lock(&s->sync_lock);
	ret_stats->last_txn = s->committed;
	ret_stats->synced_txn = s->synced;
	ret_stats->syncs = s->syncs;
	pthread_mutex_unlock(&s->sync_lock);
}

void
store_get_latency(const struct store *s, struct store_latency *ret_commit,
    struct store_latency *ret_fsync)
{
	store_hist_get(&s->commit_hist, ret_commit);
	store_hist_get(&s->fsync_hist, ret_fsync);
}

int
store_drop(struct store_txn *txn, enum store_db db)
{
	int r;

	if (!txn)
		return -EINVAL;
	if (txn->ret != 0)
		return txn->ret;
	if (txn->rdonly || !store_db_valid(db))
		return store_txn_fail(txn, -EINVAL);
	r = store_mdb_errno(mdb_drop(txn->txn, txn->s->dbi[db], 0));
	return r < 0 ? store_txn_fail(txn, r) : 0;
}

int
store_db_entries(struct store_txn *txn, enum store_db db,
    uint64_t *ret_entries)
{
	MDB_stat st;
	int r;

	if (!txn || !ret_entries)
		return -EINVAL;
	if (txn->ret != 0)
		return txn->ret;
	if (!store_db_valid(db))
		return store_txn_fail(txn, -EINVAL);
	r = store_mdb_errno(mdb_stat(txn->txn, txn->s->dbi[db], &st));
	if (r < 0)
		return store_txn_fail(txn, r);
	*ret_entries = st.ms_entries;
	return 0;
}

/* ---- backups ------------------------------------------------------------ */

int
store_fsync_dir(const char *dir)
{
	int fd, r = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int
store_env_copy(MDB_env *env, const char *dir, uint64_t *ret_bytes)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, r, n;

	if (!env || !dir || !dir[0] || !ret_bytes)
		return -EINVAL;
	n = snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* Its own read transaction: the writer goes on meanwhile. Write
	 * errors come back as errno (ENOSPC). */
	r = store_mdb_errno(mdb_env_copyfd2(env, fd, MDB_CP_COMPACT));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0)
		r = store_fsync_dir(dir);
	if (r < 0) {
		unlink(path);
		return r;
	}
	*ret_bytes = (uint64_t)st.st_size;
	return 0;
}

int
store_copy(struct store *s, const char *dir, uint64_t *ret_last_txn,
    uint64_t *ret_bytes)
{
	uint64_t seq, bytes;
	int r;

	if (!s || !ret_last_txn || !ret_bytes)
		return -EINVAL;
	/*
	 * A commit is counted after LMDB has it: every write counted now
	 * is in the snapshot the copy's read transaction takes below.
	 */
	pthread_mutex_lock(&s->sync_lock);
	seq = s->committed;
	pthread_mutex_unlock(&s->sync_lock);
	r = store_env_copy(s->env, dir, &bytes);
	if (r < 0)
		return r;
	*ret_last_txn = seq;
	*ret_bytes = bytes;
	return 0;
}

int
store_schema_read(const char *path, uint32_t *ret_version)
{
	MDB_val key = {
		.mv_size = sizeof(STORE_META_SCHEMA_KEY) - 1,
		.mv_data = (void *)(uintptr_t)STORE_META_SCHEMA_KEY,
	};
	Twinroute__Store__Meta *meta = NULL;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val val;
	int r;

	if (!path || !ret_version)
		return -EINVAL;
	r = store_mdb_errno(mdb_env_create(&env));
	if (r < 0)
		return r;
	r = store_mdb_errno(mdb_env_set_maxdbs(env, STORE_DB__COUNT));
	if (r == 0)
		r = store_mdb_errno(mdb_env_open(env, path,
		    MDB_RDONLY | MDB_NOTLS, 0600));
	if (r == 0)
		r = store_mdb_errno(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
	if (r == 0)
		r = store_mdb_errno(mdb_dbi_open(txn,
		    store_db_names[STORE_DB_META], 0, &dbi));
	if (r == 0)
		r = store_mdb_errno(mdb_get(txn, dbi, &key, &val));
	if (r == 0) {
		meta = twinroute__store__meta__unpack(NULL, val.mv_size,
		    val.mv_data);
		if (!meta)
			r = -TR_ESCHEMA;
	}
	if (r == 0) {
		*ret_version = meta->schema_version;
		twinroute__store__meta__free_unpacked(meta, NULL);
	}
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return r;
}
