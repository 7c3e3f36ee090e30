/* SPDX-License-Identifier: ISC */
/* client_login.c -- Login on the client protocol: lockouts and rate limits */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "client.pb-c.h"
#include "store.pb-c.h"
#include "client/client_check.h"
#include "client/session.h"
#include "common/errcode.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/worker.h"
#include "ctl/ctl_server.h"
#include "daemon.h"
#include "member/member.h"
#include "net/server.h"
#include "store/store.h"

/* One message for an unknown member and a wrong password. */
#define LOGIN_AUTH_MSG "unknown member or wrong password"

/*
 * Verified when the member is unknown or disabled, so the reply takes as
 * long as for a wrong password. No password hashes to an all-zero key.
 */
static const char login_dummy_hash[] =
    "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/* The per-address table: a fixed window per address, reused once expired. */
#define LOGIN_ADDR_SLOTS 1024
#define LOGIN_ADDR_MAX 64

struct login_addr {
	char addr[LOGIN_ADDR_MAX];
	time_t start;           /* the window's first attempt */
	uint32_t count;         /* attempts in the window */
};

/* Loop thread only. */
static struct login_addr login_addrs[LOGIN_ADDR_SLOTS];

/* A password being verified on the hasher thread. */
struct login_job {
	struct conn *conn;
	struct daemon *d;
	uint64_t id;
	bool known;             /* an active member: failures count */
	char member[MEMBER_NUMBER_MAX + 1];
	char peer[LOGIN_ADDR_MAX];
	char hash[MEMBER_HASH_MAX];
	char *password;         /* wiped right after hashing */
	size_t password_len;
	int ret;                /* member_password_verify() */
};

/* "127.0.0.1:5555" -> "127.0.0.1", "[::1]:5555" -> "::1". */
static void
login_peer_addr(const char *peer, char *buf, size_t len)
{
	const char *end;

	if (peer[0] == '[') {
		end = strchr(peer, ']');
		if (end != NULL) {
			snprintf(buf, len, "%.*s", (int)(end - peer - 1),
			    peer + 1);
			return;
		}
	} else {
		end = strrchr(peer, ':');
		if (end != NULL) {
			snprintf(buf, len, "%.*s", (int)(end - peer), peer);
			return;
		}
	}
	snprintf(buf, len, "%s", peer);
}

static bool
login_window_over(const struct login_addr *a, time_t now, uint32_t window)
{
	return now < a->start || now - a->start >= (time_t)window;
}

/*
 * Count one attempt from addr. 0 if allowed, -EAGAIN over the limit with
 * *ret_wait the seconds until the window ends.
 */
static int
login_rate_check(const char *addr, time_t now, uint32_t max, uint32_t window,
    time_t *ret_wait)
{
	struct login_addr *hit = NULL, *spare = NULL, *oldest = NULL;

	for (size_t i = 0; i < LOGIN_ADDR_SLOTS; i++) {
		struct login_addr *a = &login_addrs[i];

		if (a->addr[0] != '\0' && strcmp(a->addr, addr) == 0) {
			hit = a;
			break;
		}
		if (a->addr[0] == '\0' || login_window_over(a, now, window)) {
			/* Prune as we go: an expired slot is free. */
			a->addr[0] = '\0';
			if (spare == NULL)
				spare = a;
		} else if (oldest == NULL || a->start < oldest->start) {
			oldest = a;
		}
	}
	if (hit != NULL) {
		if (login_window_over(hit, now, window)) {
			hit->start = now;
			hit->count = 1;
			return 0;
		}
		if (hit->count >= max) {
			*ret_wait = hit->start + (time_t)window - now;
			return -EAGAIN;
		}
		hit->count++;
		return 0;
	}
	/* Full of live windows: the oldest gives way. */
	hit = spare ? spare : oldest;
	snprintf(hit->addr, sizeof(hit->addr), "%s", addr);
	hit->start = now;
	hit->count = 1;
	return 0;
}

/* Read a member's LoginState; -ENOENT when there is none. */
static int
login_state_get(struct store_txn *txn, const char *member,
    uint32_t *ret_failures, uint64_t *ret_locked_until)
{
	Twinroute__Store__LoginState *ls;
	const void *val;
	size_t len;
	int r;

	r = store_get(txn, STORE_DB_LOGIN, member, strlen(member), &val, &len);
	if (r < 0)
		return r;
	ls = twinroute__store__login_state__unpack(NULL, len, val);
	if (ls == NULL)
		return -TR_EBADMSG;
	*ret_failures = ls->failures;
	*ret_locked_until = ls->locked_until_unix;
	twinroute__store__login_state__free_unpacked(ls, NULL);
	return 0;
}

static int
login_state_put(struct store_txn *txn, const char *member, uint32_t failures,
    uint64_t locked_until)
{
	Twinroute__Store__LoginState ls = TWINROUTE__STORE__LOGIN_STATE__INIT;
	uint8_t buf[32];
	size_t len;

	ls.failures = failures;
	ls.locked_until_unix = locked_until;
	len = twinroute__store__login_state__get_packed_size(&ls);
	if (len > sizeof(buf))
		return -EOVERFLOW;
	twinroute__store__login_state__pack(&ls, buf);
	return store_put(txn, STORE_DB_LOGIN, member, strlen(member), buf, len);
}

/* An expired lockout is forgotten: the count starts afresh. */
static void
login_expire(uint32_t *failures, uint64_t *locked_until, time_t now)
{
	if (*locked_until != 0 && *locked_until <= (uint64_t)now) {
		*failures = 0;
		*locked_until = 0;
	}
}

static void
login_send_locked(struct conn *c, uint64_t id, uint64_t locked_until)
{
	char msg[128], hhmm[8] = "?";
	time_t t = (time_t)locked_until;
	struct tm tm;

	if (gmtime_r(&t, &tm) != NULL)
		strftime(hhmm, sizeof(hhmm), "%H:%M", &tm);
	snprintf(msg, sizeof(msg), "locked after too many failed logins; try "
	    "again after %s UTC or ask an administrator", hhmm);
	client_send_error(c, id, TWINROUTE__ERROR_CODE__ERR_LOCKED, msg);
}

static void
login_job_free(struct login_job *j)
{
	if (j->password) {
		OPENSSL_cleanse(j->password, j->password_len);
		free(j->password);
	}
	OPENSSL_cleanse(j->hash, sizeof(j->hash));
	if (j->conn)
		conn_unref(j->conn);
	free(j);
}

/* On the hasher thread. */
static void
login_work(void *arg)
{
	struct login_job *j = arg;

	j->ret = member_password_verify(j->password,
	    j->known ? j->hash : login_dummy_hash);
	OPENSSL_cleanse(j->password, j->password_len);
	if (!j->known)
		j->ret = 0;
}

/* A wrong password, an unknown member or a disabled one. */
static void
login_failed(struct login_job *j)
{
	struct daemon *d = j->d;
	const struct config *cfg = d->cfg;
	struct store_txn *txn;
	uint32_t failures = 0;
	uint64_t locked_until = 0;
	time_t now = time(NULL);
	bool locked_now = false;
	int r;

	if (!j->known) {
		log_info("%016" PRIx64 " login failed member=%s peer=%s "
		    "failures=0 (unknown or disabled)", conn_id(j->conn),
		    j->member, j->peer);
		goto reply;
	}
	r = store_txn_begin(d->store, 0, &txn);
	if (r == 0) {
		r = login_state_get(txn, j->member, &failures, &locked_until);
		if (r == -ENOENT || r == -TR_EBADMSG) {
			failures = 0;
			locked_until = 0;
			r = 0;
		}
		if (r == 0) {
			login_expire(&failures, &locked_until, now);
			if (failures < UINT32_MAX)
				failures++;
			if (failures >= cfg->login_max_failures &&
			    locked_until == 0) {
				locked_until = (uint64_t)now +
				    cfg->login_lockout;
				locked_now = true;
			}
			/* A failed put spoils the transaction: commit says. */
			(void)login_state_put(txn, j->member, failures,
			    locked_until);
			r = store_txn_commit(txn, NULL);
		} else {
			store_txn_abort(txn);
		}
	}
	if (r < 0)
		log_err("%016" PRIx64 " login: cannot record a failure of "
		    "member %s: %s", conn_id(j->conn), j->member,
		    tr_strerror(r));
	log_info("%016" PRIx64 " login failed member=%s peer=%s failures=%"
	    PRIu32, conn_id(j->conn), j->member, j->peer, failures);
	if (locked_now)
		log_warn("member %s locked out after %" PRIu32 " failed logins",
		    j->member, failures);
reply:
	client_send_error(j->conn, j->id, TWINROUTE__ERROR_CODE__ERR_AUTH,
	    LOGIN_AUTH_MSG);
}

static void
login_succeeded(struct login_job *j)
{
	struct daemon *d = j->d;
	struct conn *c = j->conn;
	struct client_session *s = client_session(c);
	Twinroute__Client__LoginReply lr = TWINROUTE__CLIENT__LOGIN_REPLY__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;
	Twinroute__Store__MemberRecord *rec = NULL;
	struct store_txn *txn;
	uint32_t failures = 0;
	uint64_t locked_until = 0;
	time_t now = time(NULL);
	int r;

	/* Another connection may have locked the member, or an admin
	 * disabled it, while the hash ran. */
	r = store_txn_begin(d->store, 0, &txn);
	if (r < 0)
		goto store_err;
	r = member_get(txn, j->member, &rec);
	if (r == -ENOENT || (r == 0 && !rec->active)) {
		store_txn_abort(txn);
		log_info("%016" PRIx64 " login failed member=%s peer=%s "
		    "failures=0 (disabled meanwhile)", conn_id(c), j->member,
		    j->peer);
		client_send_error(c, j->id, TWINROUTE__ERROR_CODE__ERR_AUTH,
		    LOGIN_AUTH_MSG);
		goto out;
	}
	if (r == 0) {
		r = login_state_get(txn, j->member, &failures, &locked_until);
		if (r == -TR_EBADMSG)
			failures = 1;   /* the bad record is removed below */
		if (r == -ENOENT || r == -TR_EBADMSG)
			r = 0;
	}
	if (r < 0) {
		store_txn_abort(txn);
		goto store_err;
	}
	if (locked_until > (uint64_t)now) {
		store_txn_abort(txn);
		log_info("%016" PRIx64 " login refused member=%s peer=%s "
		    "(locked)", conn_id(c), j->member, j->peer);
		login_send_locked(c, j->id, locked_until);
		goto out;
	}
	if (failures != 0 || locked_until != 0) {
		(void)store_del(txn, STORE_DB_LOGIN, j->member,
		    strlen(j->member));
		r = store_txn_commit(txn, NULL);
		if (r < 0)
			log_err("%016" PRIx64 " login: cannot reset the "
			    "failures of member %s: %s", conn_id(c), j->member,
			    tr_strerror(r));
	} else {
		store_txn_abort(txn);
	}
	s->logged_in = true;
	snprintf(s->member, sizeof(s->member), "%s", j->member);
	log_info("%016" PRIx64 " login member=%s peer=%s", conn_id(c),
	    j->member, j->peer);
	lr.member = s->member;
	lr.name = rec->name;
	resp.id = j->id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_LOGIN;
	resp.login = &lr;
	client_reply(c, &resp);
	goto out;
store_err:
	log_err("%016" PRIx64 " login: member %s: %s", conn_id(c), j->member,
	    tr_strerror(r));
	client_send_error(c, j->id, TWINROUTE__ERROR_CODE__ERR_STORE,
	    "the store failed; try again");
out:
	if (rec)
		twinroute__store__member_record__free_unpacked(rec, NULL);
}

/* Back on the loop. */
static void
login_done(void *arg)
{
	struct login_job *j = arg;
	struct client_session *s;

	/* Closed meanwhile (even the listener may be gone): drop it. */
	if (conn_is_closing(j->conn))
		goto out;
	s = client_session(j->conn);
	s->login_pending = false;
	if (j->known && j->ret < 0) {
		log_err("%016" PRIx64 " login: member %s has a password hash "
		    "this server cannot read", conn_id(j->conn), j->member);
		client_send_error(j->conn, j->id,
		    TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "cannot verify the password");
		goto out;
	}
	if (j->known && j->ret == 1)
		login_succeeded(j);
	else
		login_failed(j);
out:
	login_job_free(j);
}

void
client_login(struct conn *c, const Request *req)
{
	struct daemon *d = conn_ctx(c);
	const struct config *cfg = d->cfg;
	struct client_session *s = client_session(c);
	const Twinroute__Client__Login *l = req->login;
	Twinroute__Store__MemberRecord *rec = NULL;
	struct login_job *j;
	struct store_txn *txn;
	char addr[LOGIN_ADDR_MAX], msg[128];
	const char *why = NULL;
	uint32_t failures = 0;
	uint64_t locked_until = 0;
	time_t now = time(NULL), wait = 0;
	int r;

	if (s->logged_in || s->login_pending) {
		client_send_error(c, req->id,
		    TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST, s->logged_in ?
		    "already logged in on this connection" :
		    "a login is already in progress on this connection");
		return;
	}
	if (client_check_login(l, &why) < 0) {
		client_send_error(c, req->id,
		    TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST, why);
		return;
	}

	login_peer_addr(conn_peer_name(c), addr, sizeof(addr));
	if (login_rate_check(addr, now, cfg->login_address_attempts,
	    cfg->login_address_window, &wait) < 0) {
		log_info("%016" PRIx64 " login refused member=%s peer=%s "
		    "(rate limited)", conn_id(c), l->member, addr);
		snprintf(msg, sizeof(msg), "too many login attempts from this "
		    "address; try again in %lld s", (long long)wait);
		client_send_error(c, req->id,
		    TWINROUTE__ERROR_CODE__ERR_RATE_LIMITED, msg);
		return;
	}

	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = login_state_get(txn, l->member, &failures, &locked_until);
		if (r == -ENOENT || r == -TR_EBADMSG)
			r = 0;
		if (r == 0) {
			r = member_get(txn, l->member, &rec);
			if (r == -ENOENT)
				r = 0;
		}
		store_txn_abort(txn);
	}
	if (r < 0) {
		log_err("%016" PRIx64 " login: member %s: %s", conn_id(c),
		    l->member, tr_strerror(r));
		client_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_STORE,
		    "the store failed; try again");
		goto out;
	}
	if (locked_until > (uint64_t)now) {
		log_info("%016" PRIx64 " login refused member=%s peer=%s "
		    "(locked)", conn_id(c), l->member, addr);
		login_send_locked(c, req->id, locked_until);
		goto out;
	}

	j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto nomem;
	j->d = d;
	j->id = req->id;
	j->known = rec != NULL && rec->active && rec->password_hash[0] != '\0';
	snprintf(j->member, sizeof(j->member), "%s", l->member);
	snprintf(j->peer, sizeof(j->peer), "%s", addr);
	if (j->known)
		snprintf(j->hash, sizeof(j->hash), "%s", rec->password_hash);
	j->password_len = strlen(l->password);
	j->password = strdup(l->password);
	if (j->password == NULL) {
		login_job_free(j);
		goto nomem;
	}
	j->conn = conn_ref(c);
	if (worker_submit(d->hasher, login_work, login_done, j) < 0) {
		login_job_free(j);
		goto nomem;
	}
	s->login_pending = true;
	goto out;
nomem:
	client_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
	    "cannot queue the password check");
out:
	if (rec)
		twinroute__store__member_record__free_unpacked(rec, NULL);
}

/* ---- control: twinroutectl member unlock ---------------------------- */

void
ctl_member_unlock(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Store__MemberRecord *rec = NULL;
	struct store_txn *txn;
	const char *why = NULL;
	uint32_t failures = 0;
	uint64_t locked_until = 0, seq = 0;
	char msg[128];
	int r;

	if (member_check_number(req->target, &why) < 0) {
		ctl_send_error(c, req->id,
		    TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST, why);
		return;
	}
	r = store_txn_begin(d->store, 0, &txn);
	if (r < 0)
		goto fail;
	r = member_get(txn, req->target, &rec);
	if (r == -ENOENT) {
		store_txn_abort(txn);
		snprintf(msg, sizeof(msg), "no member %s", req->target);
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_NOT_FOUND,
		    msg);
		return;
	}
	if (r == 0) {
		twinroute__store__member_record__free_unpacked(rec, NULL);
		r = login_state_get(txn, req->target, &failures, &locked_until);
		if (r == 0 || r == -TR_EBADMSG)
			r = store_del(txn, STORE_DB_LOGIN, req->target,
			    strlen(req->target));
		else if (r == -ENOENT)
			r = 0;
	}
	if (r < 0) {
		store_txn_abort(txn);
		goto fail;
	}
	r = store_txn_commit(txn, &seq);
	if (r < 0)
		goto fail;
	log_info("control: member %s unlocked (failures=%" PRIu32 "%s)",
	    req->target, failures, locked_until > (uint64_t)time(NULL) ?
	    ", was locked" : "");
	ctl_audit(c, req->target, false, "member unlock");
	resp.id = req->id;
	ctl_reply_durable(c, seq, &resp);
	return;
fail:
	snprintf(msg, sizeof(msg), "member %s: %s", req->target,
	    tr_strerror(r));
	log_err("control: member unlock: %s", msg);
	ctl_audit(c, req->target, true, "member unlock: %s", tr_strerror(r));
	ctl_send_error(c, req->id, r == -ENOSPC ?
	    TWINROUTE__ERROR_CODE__ERR_STORE_FULL :
	    TWINROUTE__ERROR_CODE__ERR_STORE, msg);
}
