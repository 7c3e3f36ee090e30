/* SPDX-License-Identifier: ISC */
/* ctl_backup.c -- twinroutectl backup: a hot copy of both stores */

/*
 * One backup at a time, in steps that never block the loop:
 *
 *   1. the backup thread makes DIR (0700), or takes it if it is an empty
 *      directory, and DIR/broker and DIR/vault (0700);
 *   2. the vault thread copies its own environment, compacted, into
 *      DIR/vault/data.mdb, fsyncs it and writes its audit line
 *      (VAULT_OP_BACKUP): it owns that environment, and it is small;
 *   3. the backup thread copies the broker store, compacted, into
 *      DIR/broker/data.mdb inside one LMDB read transaction (store_copy),
 *      while the loop goes on serving and writing; then it fsyncs the
 *      directories up to DIR's parent;
 *   4. the reply, with what was copied.
 *
 * The vault goes first: members are never deleted, and a card is set only
 * for a member the broker store has, so every card in the copy belongs to
 * a member of the later broker copy. Orders acknowledged before the backup
 * began are in the broker copy (they were committed, and synced, before).
 *
 * What is not copied: the vault's key file. A copy is no use for card
 * data without the key file or the key shares: by design.
 *
 * A failure at any step removes what the backup made (the two files,
 * the folders, and DIR if it made it); the reply says which step failed
 * and why. While the daemon stops, a backup in progress finishes the step
 * it is in and is then abandoned and removed.
 *
 * The state below is the loop's (one daemon per process); the threads
 * touch only the backup they are handed.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/errcode.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/worker.h"
#include "ctl/ctl.h"
#include "ctl/ctl_check.h"
#include "ctl/ctl_server.h"
#include "daemon.h"
#include "store/store.h"
#include "vault/vault.h"

/* DIR plus "/broker/data.mdb", NUL included. */
#define BACKUP_PATH_MAX (CTL_BACKUP_DIR_MAX + 32)
#define BACKUP_MSG_MAX (CTL_BACKUP_DIR_MAX + 256)

_Static_assert(CTL_BACKUP_DIR_MAX + sizeof("/vault") <= VAULT_BACKUP_PATH_MAX,
    "a backup's vault folder must fit the vault's request");

struct backup {
	struct daemon *d;
	struct conn *conn;
	uint64_t id;
	char dir[CTL_BACKUP_DIR_MAX + 1];
	char actor[VAULT_ACTOR_MAX];
	struct timespec t0;
	bool made_dir, made_broker, made_vault;

	/* The first failure: an errno-style code, its wire code, the text. */
	int err;
	int code;
	char msg[BACKUP_MSG_MAX];

	uint64_t broker_bytes, vault_bytes, last_txn;
};

static struct worker *backup_worker;   /* started with the first backup */
static struct backup *backup_running;

static void _printf_(4, 5)
backup_fail(struct backup *b, int err, int code, const char *fmt, ...)
{
	va_list ap;

	if (b->err != 0)
		return;
	b->err = err < 0 ? err : -EIO;
	b->code = code;
	va_start(ap, fmt);
	vsnprintf(b->msg, sizeof(b->msg), fmt, ap);
	va_end(ap);
}

/* DIR/name (name "" : DIR itself). */
static void
backup_path(const struct backup *b, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", b->dir, name[0] ? "/" : "", name);
}

/* 0 if dir is an empty directory; -ENOTEMPTY, -ENOTDIR or -errno. */
static int
backup_dir_empty(const char *dir)
{
	struct dirent *de;
	DIR *dp;
	int r = 0;

	dp = opendir(dir);
	if (dp == NULL)
		return -errno;
	errno = 0;
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			r = -ENOTEMPTY;
			break;
		}
	}
	if (de == NULL && errno != 0)
		r = -errno;
	closedir(dp);
	return r;
}

/* ---- the backup thread ---------------------------------------------- */

/* Remove what this backup made: files first, then folders. */
static void
backup_cleanup(struct backup *b)
{
	static const char *const sub[] = { "broker", "vault" };
	const bool made[] = { b->made_broker, b->made_vault };
	char path[BACKUP_PATH_MAX];

	for (size_t i = 0; i < ELEMENTSOF(sub); i++) {
		if (!made[i])
			continue;
		/* The folder is ours: so is every file in it. */
		snprintf(path, sizeof(path), "%s/%s/data.mdb", b->dir, sub[i]);
		(void)unlink(path);
		backup_path(b, sub[i], path, sizeof(path));
		(void)rmdir(path);
	}
	if (b->made_dir)
		(void)rmdir(b->dir);
	b->made_broker = b->made_vault = b->made_dir = false;
}

static int
backup_mkdir(struct backup *b, const char *name, bool *ret_made)
{
	char path[BACKUP_PATH_MAX];

	backup_path(b, name, path, sizeof(path));
	if (mkdir(path, 0700) < 0) {
		int r = -errno;

		backup_fail(b, r, TWINROUTE__ERROR_CODE__ERR_STORE,
		    "backup: cannot create %s: %s", path, tr_strerror(r));
		return r;
	}
	*ret_made = true;
	return 0;
}

/* Step 1: DIR and its two folders. */
static void
backup_prepare(void *arg)
{
	struct backup *b = arg;
	int r;

	if (mkdir(b->dir, 0700) == 0) {
		b->made_dir = true;
	} else if (errno != EEXIST) {
		r = -errno;
		backup_fail(b, r, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    "backup: cannot create %s: %s%s", b->dir, tr_strerror(r),
		    r == -ENOENT ? " (its parent folder must exist)" : "");
		return;
	} else if ((r = backup_dir_empty(b->dir)) < 0) {
		backup_fail(b, r, r == -ENOTEMPTY ?
		    TWINROUTE__ERROR_CODE__ERR_EXISTS :
		    TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    "backup: %s %s", b->dir, r == -ENOTEMPTY ?
		    "exists and is not empty: give a new or an empty folder" :
		    r == -ENOTDIR ? "exists and is not a folder" :
		    tr_strerror(r));
		return;
	}
	if (backup_mkdir(b, "broker", &b->made_broker) < 0 ||
	    backup_mkdir(b, "vault", &b->made_vault) < 0)
		backup_cleanup(b);
}

/* Step 3: the broker store, then the folders' entries on disk. */
static void
backup_finish(void *arg)
{
	struct backup *b = arg;
	char path[BACKUP_PATH_MAX];
	int r;

	if (b->err == 0) {
		backup_path(b, "broker", path, sizeof(path));
		r = store_copy(b->d->store, path, &b->last_txn,
		    &b->broker_bytes);
		if (r < 0)
			backup_fail(b, r, r == -ENOSPC ?
			    TWINROUTE__ERROR_CODE__ERR_STORE_FULL :
			    TWINROUTE__ERROR_CODE__ERR_STORE,
			    "backup: broker store copy into %s: %s", path,
			    tr_strerror(r));
	}
	if (b->err == 0) {
		/* The two folders' entries, then DIR's own in its parent. */
		r = store_fsync_dir(b->dir);
		if (r == 0 && b->made_dir) {
			char *slash;

			backup_path(b, "", path, sizeof(path));
			slash = strrchr(path, '/');
			if (slash == path)
				slash[1] = '\0';
			else if (slash)
				*slash = '\0';
			r = store_fsync_dir(path);
		}
		if (r < 0)
			backup_fail(b, r, TWINROUTE__ERROR_CODE__ERR_STORE,
			    "backup: fsync of %s: %s", b->dir, tr_strerror(r));
	}
	if (b->err != 0)
		backup_cleanup(b);
}

/* ---- the loop ------------------------------------------------------- */

/* The admin action's line in the audit trail, as ctl_audit writes it. */
static void
backup_audit_done(void *arg, struct vault_reply *r)
{
	(void)arg;
	if (r->code != VAULT_OK && r->code != VAULT_BAD_REQUEST)
		log_err("audit: cannot record a backup: %s: %s",
		    vault_strcode(r->code), r->message);
}

static void
backup_audit(const struct backup *b)
{
	struct vault_request vr = { .op = VAULT_OP_AUDIT };
	struct vault *v = b->d->vault;

	if (v == NULL)
		return;           /* stopping: the vault is gone */
	snprintf(vr.actor, sizeof(vr.actor), "%s", b->actor);
	vr.audit.failed = b->err != 0;
	if (b->err != 0)
		snprintf(vr.audit.detail, sizeof(vr.audit.detail), "%.159s",
		    b->msg);
	else
		snprintf(vr.audit.detail, sizeof(vr.audit.detail),
		    "backup to %.100s: done", b->dir);
	if (vault_submit(v, &vr, backup_audit_done, NULL) < 0)
		log_err("audit: cannot record a backup to %s", b->dir);
}

static uint64_t
backup_elapsed_ms(const struct backup *b)
{
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - b->t0.tv_sec) * 1000 +
	    (now.tv_nsec - b->t0.tv_nsec) / 1000000;
	return ms > 0 ? (uint64_t)ms : 0;
}

static void
backup_send_result(struct backup *b, uint64_t ms)
{
	Twinroute__Ctl__BackupResult br = TWINROUTE__CTL__BACKUP_RESULT__INIT;
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	const char *key_file = b->d->cfg->vault_key_file;
	char broker[BACKUP_PATH_MAX], vault[BACKUP_PATH_MAX];
	char note[PATH_MAX + 200];

	backup_path(b, "broker", broker, sizeof(broker));
	backup_path(b, "vault", vault, sizeof(vault));
	if (key_file && key_file[0])
		snprintf(note, sizeof(note), "the vault's key file (%s) is not "
		    "in the backup: keep a copy of it apart from the backup; "
		    "the card data cannot be unsealed without it", key_file);
	else
		snprintf(note, sizeof(note), "the vault's key is not in the "
		    "backup: a restored vault is unsealed with its key shares");
	br.dir = b->dir;
	br.broker_path = broker;
	br.broker_bytes = b->broker_bytes;
	br.vault_path = vault;
	br.vault_bytes = b->vault_bytes;
	br.broker_last_txn = b->last_txn;
	br.duration_ms = ms;
	br.key_note = note;
	resp.id = b->id;
	resp.backup = &br;
	ctl_reply(b->conn, &resp);
}

/* Step 4: the reply; the end of the backup. */
static void
backup_done(void *arg)
{
	struct backup *b = arg;
	struct conn *c = b->conn;
	uint64_t ms = backup_elapsed_ms(b);

	if (b->err == 0)
		log_info("control: backup to %s done: broker %" PRIu64 " bytes "
		    "(writes up to %" PRIu64 "), vault %" PRIu64 " bytes, %"
		    PRIu64 " ms", b->dir, b->broker_bytes, b->last_txn,
		    b->vault_bytes, ms);
	else
		log_warn("control: %s", b->msg);
	backup_audit(b);
	conn_hold_idle(c, false);
	if (!conn_is_closing(c)) {
		if (b->err == 0)
			backup_send_result(b, ms);
		else
			ctl_send_error(c, b->id, b->code, b->msg);
	}
	conn_unref(c);
	if (backup_running == b)
		backup_running = NULL;
	free(b);
}

/* Queue step 3 (or, after a failure, the cleanup it does). */
static void
backup_submit_finish(struct backup *b)
{
	/* The thread is stopping with the daemon: finish here and now. */
	if (backup_worker == NULL ||
	    worker_submit(backup_worker, backup_finish, backup_done, b) < 0) {
		backup_finish(b);
		backup_done(b);
	}
}

static void
backup_vault_done(void *arg, struct vault_reply *r)
{
	struct backup *b = arg;

	if (r->code != VAULT_OK)
		backup_fail(b, -EIO, TWINROUTE__ERROR_CODE__ERR_VAULT,
		    "backup: vault copy into %s/vault: %s%s%s", b->dir,
		    vault_strcode(r->code), r->message[0] ? ": " : "",
		    r->message);
	else
		b->vault_bytes = r->backup_bytes;
	if (b->d->stopping)
		backup_fail(b, -ESHUTDOWN,
		    TWINROUTE__ERROR_CODE__ERR_SHUTTING_DOWN,
		    "backup to %s: abandoned: the daemon is stopping", b->dir);
	backup_submit_finish(b);
}

static void
backup_prepared(void *arg)
{
	struct backup *b = arg;
	struct daemon *d = b->d;
	struct vault_request vr = { .op = VAULT_OP_BACKUP };

	if (b->err != 0) {
		backup_done(b);       /* step 1 cleaned up after itself */
		return;
	}
	if (d->stopping || d->vault == NULL) {
		backup_fail(b, -ESHUTDOWN,
		    TWINROUTE__ERROR_CODE__ERR_SHUTTING_DOWN,
		    "backup to %s: abandoned: the daemon is stopping", b->dir);
		backup_submit_finish(b);
		return;
	}
	snprintf(vr.actor, sizeof(vr.actor), "%s", b->actor);
	backup_path(b, "vault", vr.backup.dir, sizeof(vr.backup.dir));
	if (vault_submit(d->vault, &vr, backup_vault_done, b) < 0) {
		backup_fail(b, -EAGAIN, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "backup: the vault is not taking requests");
		backup_submit_finish(b);
	}
}

void
ctl_backup(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	const char *why = ctl_check_backup_dir(req->backup_dir);
	char msg[BACKUP_MSG_MAX];
	struct backup *b;
	int r;

	if (why) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    why);
		return;
	}
	if (backup_running) {
		snprintf(msg, sizeof(msg), "a backup is running (into %s, for "
		    "%" PRIu64 " s): one at a time", backup_running->dir,
		    backup_elapsed_ms(backup_running) / 1000);
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_EXISTS,
		    msg);
		return;
	}
	if (backup_worker == NULL &&
	    (r = worker_start(d->base, "tr-backup", &backup_worker)) < 0) {
		snprintf(msg, sizeof(msg), "backup: cannot start its thread: %s",
		    tr_strerror(r));
		log_err("control: %s", msg);
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    msg);
		return;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return;
	}
	b->d = d;
	b->id = req->id;
	snprintf(b->dir, sizeof(b->dir), "%s", req->backup_dir);
	/* "/x/y/" is "/x/y": its parent is "/x". */
	for (size_t n = strlen(b->dir); n > 1 && b->dir[n - 1] == '/'; n--)
		b->dir[n - 1] = '\0';
	ctl_actor(c, b->actor, sizeof(b->actor));
	clock_gettime(CLOCK_MONOTONIC, &b->t0);
	b->conn = conn_ref(c);
	if (worker_submit(backup_worker, backup_prepare, backup_prepared,
	    b) < 0) {
		conn_unref(c);
		free(b);
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "backup: cannot queue it");
		return;
	}
	backup_running = b;
	/* A large store takes longer than the control idle timeout. */
	conn_hold_idle(c, true);
	log_info("control: backup to %s begins", b->dir);
}

void
ctl_backup_close(void)
{
	/* Finishes the step a backup is in (a copy cannot be interrupted);
	 * its done() then abandons the rest. */
	backup_worker = worker_stop(backup_worker);
}
