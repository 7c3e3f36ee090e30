/* SPDX-License-Identifier: ISC */
/* ctl_member.c -- control handlers for members, their cards and the vault */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/errcode.h"
#include "common/log.h"
#include "common/worker.h"
#include "ctl/ctl.h"
#include "ctl/ctl_check.h"
#include "ctl/ctl_server.h"
#include "daemon.h"
#include "member/member.h"
#include "store/store.h"
#include "vault/vault.h"

/* ---- the audit trail of admin actions -------------------------------- */

static void
ctl_audit_done(void *arg, struct vault_reply *r)
{
	(void)arg;
	if (r->code != VAULT_OK && r->code != VAULT_BAD_REQUEST)
		log_err("audit: cannot record an admin action: %s: %s",
		    vault_strcode(r->code), r->message);
}

void
ctl_audit(struct conn *c, const char *member, bool failed, const char *fmt,
    ...)
{
	struct daemon *d = conn_ctx(c);
	struct vault_request vr = { .op = VAULT_OP_AUDIT };
	va_list ap;

	ctl_actor(c, vr.actor, sizeof(vr.actor));
	if (member)
		snprintf(vr.member, sizeof(vr.member), "%s", member);
	vr.audit.failed = failed;
	va_start(ap, fmt);
	vsnprintf(vr.audit.detail, sizeof(vr.audit.detail), fmt, ap);
	va_end(ap);
	if (vault_submit(d->vault, &vr, ctl_audit_done, NULL) < 0)
		log_err("audit: cannot record an admin action: %s",
		    vr.audit.detail);
}

/* ---- members ------------------------------------------------------- */

static void
member_to_wire(const Twinroute__Store__MemberRecord *rec,
    Twinroute__Ctl__Member *m)
{
	twinroute__ctl__member__init(m);
	m->number = rec->number;
	m->name = rec->name;
	m->email = rec->email;
	m->active = rec->active;
	m->created_unix = rec->created_unix;
}

/* Read one member; on failure the error reply is sent. */
static Twinroute__Store__MemberRecord *
ctl_member_load(struct conn *c, const CtlRequest *req, const char *number)
{
	struct daemon *d = conn_ctx(c);
	Twinroute__Store__MemberRecord *rec = NULL;
	struct store_txn *txn;
	char msg[96];
	int r;

	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = member_get(txn, number, &rec);
		store_txn_abort(txn);
	}
	if (r == -ENOENT) {
		snprintf(msg, sizeof(msg), "no member %.32s", number);
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_NOT_FOUND,
		    msg);
		return NULL;
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "member %.32s: %s", number,
		    tr_strerror(r));
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_STORE, msg);
		return NULL;
	}
	return rec;
}

/* Write rec and answer once it is durable. */
static void
ctl_member_store(struct conn *c, uint64_t id,
    const Twinroute__Store__MemberRecord *rec, const char *what)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Ctl__Member m, *mp = &m;
	struct store_txn *txn;
	uint64_t seq;
	char msg[128];
	int r;

	r = store_txn_begin(d->store, 0, &txn);
	if (r == 0) {
		/* A failed put spoils the transaction: commit reports it. */
		(void)member_put(txn, rec);
		r = store_txn_commit(txn, &seq);
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "member %s: %s%s", rec->number,
		    tr_strerror(r), r == -ENOSPC ?
		    " (raise [store] map_size)" : "");
		log_err("control: %s", msg);
		ctl_audit(c, rec->number, true, "member %s: %s", what,
		    tr_strerror(r));
		ctl_send_error(c, id, r == -ENOSPC ?
		    TWINROUTE__ERROR_CODE__ERR_STORE_FULL :
		    TWINROUTE__ERROR_CODE__ERR_STORE, msg);
		return;
	}
	log_info("control: member %s %s", rec->number, what);
	ctl_audit(c, rec->number, false, "member %s", what);
	member_to_wire(rec, &m);
	resp.id = id;
	resp.n_members = 1;
	resp.members = &mp;
	ctl_reply_durable(c, seq, &resp);
}

/* A password being hashed on the worker thread. */
struct hash_job {
	struct conn *conn;
	uint64_t id;
	bool is_new;                  /* member add, not passwd */
	Twinroute__Store__MemberRecord rec;
	char number[MEMBER_NUMBER_MAX + 1];
	char *name, *email;
	char *password;               /* wiped and freed after hashing */
	char hash[MEMBER_HASH_MAX];
	int ret;
};

static void
hash_job_free(struct hash_job *j)
{
	if (j->password) {
		OPENSSL_cleanse(j->password, strlen(j->password));
		free(j->password);
	}
	free(j->name);
	free(j->email);
	conn_unref(j->conn);
	free(j);
}

static void
hash_work(void *arg)
{
	struct hash_job *j = arg;

	j->ret = member_password_hash(j->password, j->hash);
	OPENSSL_cleanse(j->password, strlen(j->password));
}

static void
hash_done(void *arg)
{
	struct hash_job *j = arg;
	struct conn *c = j->conn;
	struct daemon *d = conn_ctx(c);
	Twinroute__Store__MemberRecord *old = NULL;
	struct store_txn *txn;
	char msg[96];
	int r;

	if (conn_is_closing(c))
		goto out;
	if (j->ret < 0) {
		ctl_send_error(c, j->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "password hashing failed");
		goto out;
	}
	/* The loop may have changed the member while the hash ran. */
	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = member_get(txn, j->number, &old);
		store_txn_abort(txn);
	}
	if (j->is_new && r == 0) {
		snprintf(msg, sizeof(msg), "member %s already exists", j->number);
		ctl_send_error(c, j->id, TWINROUTE__ERROR_CODE__ERR_EXISTS, msg);
		goto out;
	}
	if (!j->is_new && r < 0) {
		snprintf(msg, sizeof(msg), "no member %s", j->number);
		ctl_send_error(c, j->id, TWINROUTE__ERROR_CODE__ERR_NOT_FOUND, msg);
		goto out;
	}
	if (j->is_new) {
		twinroute__store__member_record__init(&j->rec);
		j->rec.number = j->number;
		j->rec.name = j->name;
		j->rec.email = j->email;
		j->rec.active = true;
		j->rec.created_unix = (uint64_t)time(NULL);
	} else {
		j->rec = *old;
	}
	j->rec.password_hash = j->hash;
	j->rec.updated_unix = (uint64_t)time(NULL);
	ctl_member_store(c, j->id, &j->rec, j->is_new ? "added" :
	    "password changed");
out:
	if (old)
		twinroute__store__member_record__free_unpacked(old, NULL);
	OPENSSL_cleanse(j->hash, sizeof(j->hash));
	hash_job_free(j);
}

static void
ctl_hash_and_store(struct conn *c, const CtlRequest *req, bool is_new,
    const char *number)
{
	struct daemon *d = conn_ctx(c);
	struct hash_job *j;
	const char *why;

	if (member_check_password(req->password, &why) < 0) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    why);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return;
	}
	j->conn = conn_ref(c);
	j->id = req->id;
	j->is_new = is_new;
	snprintf(j->number, sizeof(j->number), "%s", number);
	j->password = strdup(req->password);
	if (is_new) {
		j->name = strdup(req->member->name);
		j->email = strdup(req->member->email);
	}
	if (j->password == NULL || (is_new && (!j->name || !j->email)) ||
	    worker_submit(d->hasher, hash_work, hash_done, j) < 0) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "cannot queue the password hash");
		hash_job_free(j);
	}
}

void
ctl_member_add(struct conn *c, const CtlRequest *req)
{
	const Twinroute__Ctl__Member *m = req->member;
	const char *why = NULL;

	if (m == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    "member: missing");
		return;
	}
	if (member_check_number(m->number, &why) < 0 ||
	    member_check_name(m->name, &why) < 0 ||
	    member_check_email(m->email, &why) < 0) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    why);
		return;
	}
	ctl_hash_and_store(c, req, true, m->number);
}

void
ctl_member_passwd(struct conn *c, const CtlRequest *req)
{
	const char *why = NULL;

	if (member_check_number(req->target, &why) < 0) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    why);
		return;
	}
	ctl_hash_and_store(c, req, false, req->target);
}

void
ctl_member_disable(struct conn *c, const CtlRequest *req)
{
	Twinroute__Store__MemberRecord *rec;

	rec = ctl_member_load(c, req, req->target);
	if (rec == NULL)
		return;
	rec->active = false;
	rec->updated_unix = (uint64_t)time(NULL);
	ctl_member_store(c, req->id, rec, "disabled");
	twinroute__store__member_record__free_unpacked(rec, NULL);
}

struct member_list {
	Twinroute__Ctl__Member *v;
	Twinroute__Ctl__Member **p;
	Twinroute__Store__MemberRecord **recs;
	size_t n, cap;
};

static int
member_list_add(const Twinroute__Store__MemberRecord *rec, void *arg)
{
	struct member_list *l = arg;
	Twinroute__Store__MemberRecord *copy;
	uint8_t *buf;
	size_t len;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		void *r = realloc(l->recs, cap * sizeof(*l->recs));
		if (r == NULL)
			return -ENOMEM;
		l->recs = r;
		l->cap = cap;
	}
	/* The record passed in lives for the callback only: keep a copy. */
	len = twinroute__store__member_record__get_packed_size(rec);
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	twinroute__store__member_record__pack(rec, buf);
	copy = twinroute__store__member_record__unpack(NULL, len, buf);
	free(buf);
	if (copy == NULL)
		return -ENOMEM;
	l->recs[l->n++] = copy;
	return 0;
}

void
ctl_member_list(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	struct member_list l = { 0 };
	struct store_txn *txn;
	int r;

	r = store_txn_begin(d->store, STORE_RDONLY, &txn);
	if (r == 0) {
		r = member_iter(txn, member_list_add, &l);
		store_txn_abort(txn);
	}
	if (r == 0 && l.n > 0) {
		l.v = calloc(l.n, sizeof(*l.v));
		l.p = calloc(l.n, sizeof(*l.p));
		if (!l.v || !l.p)
			r = -ENOMEM;
	}
	if (r < 0) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_STORE,
		    tr_strerror(r));
	} else {
		for (size_t i = 0; i < l.n; i++) {
			member_to_wire(l.recs[i], &l.v[i]);
			l.p[i] = &l.v[i];
		}
		resp.id = req->id;
		resp.n_members = l.n;
		resp.members = l.p;
		ctl_reply(c, &resp);
	}
	for (size_t i = 0; i < l.n; i++)
		twinroute__store__member_record__free_unpacked(l.recs[i], NULL);
	free(l.recs);
	free(l.v);
	free(l.p);
}

/* ---- the vault ------------------------------------------------------ */

/* A control request waiting for the vault thread. */
struct vault_call {
	struct conn *conn;
	uint64_t id;
	enum ctl_cmd cmd;
	Twinroute__Store__MemberRecord *member;  /* member show */
};

static void
vault_status_to_wire(const struct vault_reply *r, Twinroute__Ctl__VaultStatus *s)
{
	twinroute__ctl__vault_status__init(s);
	s->initialized = r->initialized;
	s->sealed = r->sealed;
	s->key_file = r->key_file;
	s->shares = r->shares;
	s->threshold = r->threshold;
	s->progress = r->progress;
	s->key_version = r->key_version;
	s->cards = r->cards;
	if (r->initialized) {
		s->enrol_key.data = unconst(r->enrol_key);
		s->enrol_key.len = sizeof(r->enrol_key);
	}
}

static void
card_to_wire(const struct vault_reply *r, Twinroute__Ctl__CardInfo *ci)
{
	twinroute__ctl__card_info__init(ci);
	ci->brand = unconst(r->brand);
	ci->last4 = unconst(r->last4);
	ci->exp_month = r->exp_month;
	ci->exp_year = r->exp_year;
}

static void
vault_done(void *arg, struct vault_reply *r)
{
	struct vault_call *call = arg;
	struct conn *c = call->conn;
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Ctl__VaultStatus vs;
	Twinroute__Ctl__CardInfo ci;
	Twinroute__Ctl__Member m, *mp = &m;
	char *shares[VAULT_SHARES_MAX];
	char msg[280];
	bool is_check = call->cmd == CTL_MEMBER_CARD_CHECK;
	bool is_show = call->cmd == CTL_MEMBER_SHOW;

	if (r->code != VAULT_OK)
		log_info("control: %s: %s%s%s", ctl_cmds[call->cmd].name,
		    vault_strcode(r->code), r->message[0] ? ": " : "",
		    r->message);
	if (conn_is_closing(c))
		goto out;
	/* A card check's decline is an answer, not an error; so is a member
	 * shown without a card or while the vault is sealed. */
	if (r->code != VAULT_OK && !is_check && !is_show) {
		snprintf(msg, sizeof(msg), "%s%s%s", vault_strcode(r->code),
		    r->message[0] ? ": " : "", r->message);
		ctl_send_error(c, call->id, r->code == VAULT_SEALED ?
		    TWINROUTE__ERROR_CODE__ERR_VAULT_SEALED :
		    TWINROUTE__ERROR_CODE__ERR_VAULT, msg);
		goto out;
	}
	resp.id = call->id;
	vault_status_to_wire(r, &vs);
	resp.vault = &vs;
	if (r->code == VAULT_OK && (r->op == VAULT_OP_CARD_SET ||
	    r->op == VAULT_OP_CARD_SHOW || r->op == VAULT_OP_AUTHENTICATE)) {
		card_to_wire(r, &ci);
		resp.card = &ci;
	}
	if (is_check || is_show) {
		resp.card_result = unconst(vault_strcode(r->code));
		resp.card_detail = r->message;
	}
	if (is_show && call->member) {
		member_to_wire(call->member, &m);
		resp.n_members = 1;
		resp.members = &mp;
	}
	if (r->op == VAULT_OP_INIT) {
		for (unsigned i = 0; i < r->n_shares; i++)
			shares[i] = r->share_text[i];
		resp.n_shares = r->n_shares;
		resp.shares = shares;
	}
	resp.resealed = r->resealed;
	ctl_reply(c, &resp);
out:
	if (call->member)
		twinroute__store__member_record__free_unpacked(call->member, NULL);
	conn_unref(c);
	free(call);
}

/* Hand req to the vault; the reply goes out from vault_done. */
static void
ctl_vault_call(struct conn *c, const CtlRequest *req, enum ctl_cmd cmd,
    struct vault_request *vr, Twinroute__Store__MemberRecord *member)
{
	struct daemon *d = conn_ctx(c);
	struct vault_call *call = calloc(1, sizeof(*call));
	int r;

	ctl_actor(c, vr->actor, sizeof(vr->actor));
	if (call == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		goto fail;
	}
	call->conn = conn_ref(c);
	call->id = req->id;
	call->cmd = cmd;
	call->member = member;
	r = vault_submit(d->vault, vr, vault_done, call);
	OPENSSL_cleanse(vr, sizeof(*vr));
	if (r < 0) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "the vault is not taking requests");
		conn_unref(c);
		free(call);
		goto fail;
	}
	return;
fail:
	if (member)
		twinroute__store__member_record__free_unpacked(member, NULL);
	OPENSSL_cleanse(vr, sizeof(*vr));
}

void
ctl_member_show(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_CARD_SHOW };
	Twinroute__Store__MemberRecord *rec;

	rec = ctl_member_load(c, req, req->target);
	if (rec == NULL)
		return;
	snprintf(vr.member, sizeof(vr.member), "%s", rec->number);
	ctl_vault_call(c, req, CTL_MEMBER_SHOW, &vr, rec);
}

/* Card commands name an existing member. */
static bool
ctl_member_exists(struct conn *c, const CtlRequest *req, bool *ret_active)
{
	Twinroute__Store__MemberRecord *rec = ctl_member_load(c, req,
	    req->target);

	if (rec == NULL)
		return false;
	if (ret_active)
		*ret_active = rec->active;
	twinroute__store__member_record__free_unpacked(rec, NULL);
	return true;
}

void
ctl_member_card_set(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_CARD_SET };

	if (!ctl_member_exists(c, req, NULL))
		return;
	if (req->card_envelope.len == 0 ||
	    req->card_envelope.len > sizeof(vr.card_set.envelope)) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    "card_envelope: missing or too large");
		return;
	}
	snprintf(vr.member, sizeof(vr.member), "%s", req->target);
	memcpy(vr.card_set.envelope, req->card_envelope.data,
	    req->card_envelope.len);
	vr.card_set.len = req->card_envelope.len;
	ctl_vault_call(c, req, CTL_MEMBER_CARD_SET, &vr, NULL);
}

void
ctl_member_card_show(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_CARD_SHOW };

	if (!ctl_member_exists(c, req, NULL))
		return;
	snprintf(vr.member, sizeof(vr.member), "%s", req->target);
	ctl_vault_call(c, req, CTL_MEMBER_CARD_SHOW, &vr, NULL);
}

void
ctl_member_card_remove(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_CARD_REMOVE };

	if (!ctl_member_exists(c, req, NULL))
		return;
	snprintf(vr.member, sizeof(vr.member), "%s", req->target);
	ctl_vault_call(c, req, CTL_MEMBER_CARD_REMOVE, &vr, NULL);
}

void
ctl_member_card_check(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_AUTHENTICATE };
	const Twinroute__Ctl__CardCheck *cc = req->card_check;
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	const char *why;
	bool active = false;

	if (!ctl_member_exists(c, req, &active))
		return;
	why = ctl_check_card_check(cc);
	if (why != NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    why);
		return;
	}
	if (!active) {
		/* Member status lives here, not in the vault. */
		ctl_audit(c, req->target, true, "card check: DISABLED "
		    "(amount=%" PRId64 " currency=%.3s)", cc->amount,
		    cc->currency);
		resp.id = req->id;
		resp.card_result = unconst(vault_strcode(VAULT_DISABLED));
		resp.card_detail = unconst("the member is disabled");
		ctl_reply(c, &resp);
		return;
	}
	snprintf(vr.member, sizeof(vr.member), "%s", req->target);
	vr.auth.amount = cc->amount;
	snprintf(vr.auth.currency, sizeof(vr.auth.currency), "%s", cc->currency);
	ctl_vault_call(c, req, CTL_MEMBER_CARD_CHECK, &vr, NULL);
}

void
ctl_vault_init(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_INIT };
	const Twinroute__Ctl__VaultInit *vi = req->vault_init;

	if (vi && vi->key_file[0] != '\0') {
		struct daemon *d = conn_ctx(c);
		char msg[512];

		/* The daemon unseals from its configured file at start: a
		 * file anywhere else would never be read. */
		if (strcmp(vi->key_file, d->cfg->vault_key_file) != 0) {
			snprintf(msg, sizeof(msg), "--key-file %.100s: set "
			    "[vault] key_file = %.100s in the daemon's "
			    "configuration and restart it first%s%.60s%s",
			    vi->key_file, vi->key_file,
			    d->cfg->vault_key_file[0] ? " (it is now " : "",
			    d->cfg->vault_key_file,
			    d->cfg->vault_key_file[0] ? ")" : "");
			ctl_send_error(c, req->id,
			    TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST, msg);
			return;
		}
		vr.init.key_file = true;
	} else {
		vr.init.shares = vi && vi->shares ? vi->shares : 5;
		vr.init.threshold = vi && vi->threshold ? vi->threshold : 3;
	}
	ctl_vault_call(c, req, CTL_VAULT_INIT, &vr, NULL);
}

void
ctl_vault_unseal(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_UNSEAL };

	/* No share: the vault reads its key file, if it has one, and says
	 * what it needs otherwise. */
	if (strlen(req->share) >= sizeof(vr.unseal.share)) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    "share: too long");
		return;
	}
	snprintf(vr.unseal.share, sizeof(vr.unseal.share), "%s", req->share);
	ctl_vault_call(c, req, CTL_VAULT_UNSEAL, &vr, NULL);
}

void
ctl_vault_seal(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_SEAL };

	ctl_vault_call(c, req, CTL_VAULT_SEAL, &vr, NULL);
}

void
ctl_vault_status(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_STATUS };

	ctl_vault_call(c, req, CTL_VAULT_STATUS, &vr, NULL);
}

void
ctl_vault_rotate(struct conn *c, const CtlRequest *req)
{
	struct vault_request vr = { .op = VAULT_OP_ROTATE };

	ctl_vault_call(c, req, CTL_VAULT_ROTATE, &vr, NULL);
}
