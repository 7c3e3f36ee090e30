/* SPDX-License-Identifier: ISC */
/* ctl_server.c -- the daemon's side of the control socket */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "catalog/catalog.h"
#include "common/errcode.h"
#include "common/log.h"
#include "config-build.h"
#include "ctl/ctl.h"
#include "ctl/ctl_check.h"
#include "ctl/ctl_server.h"
#include "daemon.h"
#include "net/durable.h"
#include "net/metrics.h"
#include "net/server.h"
#include "store/store.h"


/* Providers or services a listing may return at once. */
#define CTL_LIST_MAX 100000

void
ctl_send_error(struct conn *c, uint64_t id, int code, const char *msg)
{
	Twinroute__Error err = TWINROUTE__ERROR__INIT;
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;

	metrics_count_error(METRICS_CONTROL, code);
	err.code = (Twinroute__ErrorCode)code;
	err.message = unconst(msg);
	err.index = -1;
	resp.id = id;
	resp.error = &err;
	conn_send(c, &resp.base);
}

/* Map a catalog or store error to a wire code. */
static int
ctl_code(int r)
{
	switch (r) {
	case -ENOENT:
		return TWINROUTE__ERROR_CODE__ERR_NOT_FOUND;
	case -TR_EEXISTS:
		return TWINROUTE__ERROR_CODE__ERR_EXISTS;
	case -TR_EINVAL_FIELD:
	case -EINVAL:
		return TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST;
	case -ENOSPC:
		return TWINROUTE__ERROR_CODE__ERR_STORE_FULL;
	default:
		return TWINROUTE__ERROR_CODE__ERR_STORE;
	}
}

static void
ctl_send_catalog_error(struct conn *c, const CtlRequest *req, int r,
    const struct catalog_err *cerr)
{
	Twinroute__Error err = TWINROUTE__ERROR__INIT;
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	char msg[300];

	if (r == -ENOSPC)
		snprintf(msg, sizeof(msg), "store full (raise [store] map_size):"
		    " %s", cerr->msg[0] ? cerr->msg : tr_strerror(r));
	else
		snprintf(msg, sizeof(msg), "%s",
		    cerr->msg[0] ? cerr->msg : tr_strerror(r));
	log_info("control %s refused: %s", ctl_cmds[req->command].name, msg);
	ctl_audit(c, NULL, true, "%s: %s", ctl_cmds[req->command].name, msg);
	err.code = (Twinroute__ErrorCode)ctl_code(r);
	metrics_count_error(METRICS_CONTROL, (int)err.code);
	err.message = msg;
	err.index = cerr->index;
	resp.id = req->id;
	resp.error = &err;
	conn_send(c, &resp.base);
}

static void
ctl_not_durable(struct conn *c, uint64_t id, int err)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "write not durable: %s", tr_strerror(err));
	log_err("control: %s", msg);
	ctl_send_error(c, id, TWINROUTE__ERROR_CODE__ERR_STORE, msg);
}

/* Send resp once the store has synced seq. */
void
ctl_reply_durable(struct conn *c, uint64_t seq, CtlResponse *resp)
{
	struct daemon *d = conn_ctx(c);

	d->requests++;
	if (durable_send(c, d->store, seq, &resp->base, resp->id,
	    ctl_not_durable) < 0)
		ctl_send_error(c, resp->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory (the change was made)");
}

/* A store failure as the admin reads it, logged too. */
void
ctl_store_error(struct conn *c, uint64_t id, int r, const char *what)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s: %s", what, tr_strerror(r));
	log_err("control: %s", msg);
	ctl_send_error(c, id, r == -ENOSPC ?
	    TWINROUTE__ERROR_CODE__ERR_STORE_FULL :
	    TWINROUTE__ERROR_CODE__ERR_STORE, msg);
}

void
ctl_reply(struct conn *c, CtlResponse *resp)
{
	struct daemon *d = conn_ctx(c);

	d->requests++;
	conn_send(c, &resp->base);
}

static void
ctl_status(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	Twinroute__Ctl__Status st = TWINROUTE__CTL__STATUS__INIT;
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	struct store_stats ss;
	size_t np, ns;

	store_get_stats(d->store, &ss);
	catalog_counts(d->catalog, &np, &ns);
	st.version = unconst(TR_VERSION);
	st.uptime_seconds = (uint64_t)(time(NULL) - d->started);
	st.client_connections = listener_conn_count(d->client_l);
	st.control_connections = listener_conn_count(d->control_l);
	st.providers = (uint32_t)np;
	st.services = (uint32_t)ns;
	st.store_used_bytes = ss.used_bytes;
	st.store_map_bytes = ss.map_size;
	st.store_last_txn = ss.last_txn;
	st.store_synced_txn = ss.synced_txn;
	st.requests_served = d->requests;
	st.pid = (uint32_t)getpid();
	st.client_addr = unconst(listener_address(d->client_l));
	resp.id = req->id;
	resp.status = &st;
	ctl_reply(c, &resp);
}

/* The durable reply to a write that leaves one provider. */
static void
ctl_reply_provider(struct conn *c, const CtlRequest *req, uint64_t seq,
    const Twinroute__Provider *provider)
{
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Provider *p = unconst(provider);

	resp.id = req->id;
	resp.n_providers = p ? 1 : 0;
	resp.providers = &p;
	ctl_reply_durable(c, seq, &resp);
}

static void
ctl_provider_add(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	struct catalog_err cerr = { .index = -1 };
	uint64_t seq;
	int r;

	if (req->provider == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    "provider: missing");
		return;
	}
	r = catalog_provider_add(d->catalog, req->provider, &seq, &cerr);
	if (r < 0) {
		ctl_send_catalog_error(c, req, r, &cerr);
		return;
	}
	log_info("control: provider %s added", req->provider->id);
	ctl_audit(c, NULL, false, "provider %s added", req->provider->id);
	ctl_reply_provider(c, req, seq,
	    catalog_provider(d->catalog, req->provider->id));
}

static const Twinroute__Provider **
ctl_alloc_list(size_t n)
{
	return calloc(n ? n : 1, sizeof(void *));
}

static void
ctl_provider_list(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	const Twinroute__Provider **out;
	size_t np, ns, n;

	catalog_counts(d->catalog, &np, &ns);
	out = ctl_alloc_list(np);
	if (out == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return;
	}
	n = catalog_list_providers(d->catalog, out, np);
	resp.id = req->id;
	resp.n_providers = n;
	resp.providers = unconst(out);
	ctl_reply(c, &resp);
	free(out);
}

static void
ctl_list_services(struct conn *c, const CtlRequest *req, const char *provider,
    const char *category, const Twinroute__Provider *with_provider)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	const Twinroute__Service **out;
	Twinroute__Provider *pp = unconst(with_provider);
	size_t np, ns, n;
	bool more;

	catalog_counts(d->catalog, &np, &ns);
	if (ns > CTL_LIST_MAX)
		ns = CTL_LIST_MAX;
	out = calloc(ns ? ns : 1, sizeof(*out));
	if (out == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return;
	}
	n = catalog_list_services(d->catalog, category, NULL, true,
	    provider && provider[0] ? provider : NULL, out, ns, &more);
	resp.id = req->id;
	resp.n_services = n;
	resp.services = unconst(out);
	if (pp) {
		resp.n_providers = 1;
		resp.providers = &pp;
	}
	ctl_reply(c, &resp);
	free(out);
}

static void
ctl_provider_show(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	const Twinroute__Provider *p = catalog_provider(d->catalog, req->target);

	if (p == NULL) {
		char msg[128];
		snprintf(msg, sizeof(msg), "no provider %.64s", req->target);
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_NOT_FOUND,
		    msg);
		return;
	}
	ctl_list_services(c, req, p->id, NULL, p);
}

static void
ctl_provider_disable(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	struct catalog_err cerr = { .index = -1 };
	uint64_t seq;
	int r;

	r = catalog_provider_disable(d->catalog, req->target, &seq, &cerr);
	if (r < 0) {
		ctl_send_catalog_error(c, req, r, &cerr);
		return;
	}
	log_info("control: provider %s disabled", req->target);
	ctl_audit(c, NULL, false, "provider %s disabled", req->target);
	ctl_reply_provider(c, req, seq, catalog_provider(d->catalog, req->target));
}

static void
ctl_reply_service(struct conn *c, const CtlRequest *req, uint64_t seq,
    const Twinroute__Service *svc)
{
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Service *s = unconst(svc);

	resp.id = req->id;
	resp.n_services = s ? 1 : 0;
	resp.services = &s;
	ctl_reply_durable(c, seq, &resp);
}

static void
ctl_service_add(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	struct catalog_err cerr = { .index = -1 };
	uint64_t seq;
	int r;

	if (req->service == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST,
		    "service: missing");
		return;
	}
	r = catalog_service_add(d->catalog, req->service, &seq, &cerr);
	if (r < 0) {
		ctl_send_catalog_error(c, req, r, &cerr);
		return;
	}
	log_info("control: service %s added", req->service->id);
	ctl_audit(c, NULL, false, "service %s added", req->service->id);
	ctl_reply_service(c, req, seq,
	    catalog_service(d->catalog, req->service->id));
}

static void
ctl_service_update(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	struct catalog_err cerr = { .index = -1 };
	Twinroute__Service empty = TWINROUTE__SERVICE__INIT;
	uint64_t seq;
	int r;

	r = catalog_service_update(d->catalog, req->target,
	    req->service ? req->service : &empty, req->update_mask,
	    req->n_update_mask, &seq, &cerr);
	if (r < 0) {
		ctl_send_catalog_error(c, req, r, &cerr);
		return;
	}
	log_info("control: service %s updated", req->target);
	ctl_audit(c, NULL, false, "service %s updated", req->target);
	ctl_reply_service(c, req, seq, catalog_service(d->catalog, req->target));
}

static void
ctl_service_remove(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	struct catalog_err cerr = { .index = -1 };
	uint64_t seq;
	int r;

	r = catalog_service_remove(d->catalog, req->target, &seq, &cerr);
	if (r < 0) {
		ctl_send_catalog_error(c, req, r, &cerr);
		return;
	}
	log_info("control: service %s removed", req->target);
	ctl_audit(c, NULL, false, "service %s removed", req->target);
	ctl_reply_service(c, req, seq, NULL);
}

static void
ctl_service_list(struct conn *c, const CtlRequest *req)
{
	const Twinroute__Ctl__Filter *f = req->filter;

	ctl_list_services(c, req, f ? f->provider_id : NULL,
	    f ? f->category : NULL, NULL);
}

static void
ctl_catalog_import(struct conn *c, const CtlRequest *req)
{
	struct daemon *d = conn_ctx(c);
	CtlResponse resp = TWINROUTE__CTL__CTL_RESPONSE__INIT;
	Twinroute__Ctl__ImportResult ir = TWINROUTE__CTL__IMPORT_RESULT__INIT;
	struct catalog_err cerr = { .index = -1 };
	struct catalog_item *items;
	size_t np = 0, ns = 0;
	uint64_t seq;
	int r;

	items = calloc(req->n_items ? req->n_items : 1, sizeof(*items));
	if (items == NULL) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return;
	}
	for (size_t i = 0; i < req->n_items; i++) {
		const Twinroute__Ctl__CatalogItem *it = req->items[i];
		items[i].provider = it->item_case ==
		    TWINROUTE__CTL__CATALOG_ITEM__ITEM_PROVIDER ? it->provider : NULL;
		items[i].service = it->item_case ==
		    TWINROUTE__CTL__CATALOG_ITEM__ITEM_SERVICE ? it->service : NULL;
	}
	r = catalog_import(d->catalog, items, req->n_items, &np, &ns, &seq, &cerr);
	free(items);
	if (r < 0) {
		ctl_send_catalog_error(c, req, r, &cerr);
		return;
	}
	log_info("control: catalog import: %zu providers, %zu services", np, ns);
	ctl_audit(c, NULL, false, "catalog import: %zu providers, %zu services",
	    np, ns);
	ir.providers = (uint32_t)np;
	ir.services = (uint32_t)ns;
	resp.id = req->id;
	resp.imported = &ir;
	ctl_reply_durable(c, seq, &resp);
}

typedef void (*ctl_handler_fn)(struct conn *c, const CtlRequest *req);

static const ctl_handler_fn ctl_handlers[CTL__COUNT] = {
	[CTL_STATUS] = ctl_status,
	[CTL_PROVIDER_ADD] = ctl_provider_add,
	[CTL_PROVIDER_LIST] = ctl_provider_list,
	[CTL_PROVIDER_SHOW] = ctl_provider_show,
	[CTL_PROVIDER_DISABLE] = ctl_provider_disable,
	[CTL_SERVICE_ADD] = ctl_service_add,
	[CTL_SERVICE_UPDATE] = ctl_service_update,
	[CTL_SERVICE_REMOVE] = ctl_service_remove,
	[CTL_SERVICE_LIST] = ctl_service_list,
	[CTL_CATALOG_IMPORT] = ctl_catalog_import,
	[CTL_MEMBER_ADD] = ctl_member_add,
	[CTL_MEMBER_SHOW] = ctl_member_show,
	[CTL_MEMBER_LIST] = ctl_member_list,
	[CTL_MEMBER_DISABLE] = ctl_member_disable,
	[CTL_MEMBER_PASSWD] = ctl_member_passwd,
	[CTL_MEMBER_CARD_SET] = ctl_member_card_set,
	[CTL_MEMBER_CARD_SHOW] = ctl_member_card_show,
	[CTL_MEMBER_CARD_REMOVE] = ctl_member_card_remove,
	[CTL_MEMBER_CARD_CHECK] = ctl_member_card_check,
	[CTL_VAULT_INIT] = ctl_vault_init,
	[CTL_VAULT_UNSEAL] = ctl_vault_unseal,
	[CTL_VAULT_SEAL] = ctl_vault_seal,
	[CTL_VAULT_STATUS] = ctl_vault_status,
	[CTL_VAULT_ROTATE] = ctl_vault_rotate,
	[CTL_MEMBER_UNLOCK] = ctl_member_unlock,
	[CTL_ORDER_LIST] = ctl_order_list,
	[CTL_ORDER_SHOW] = ctl_order_show,
	[CTL_ORDER_CANCEL] = ctl_order_cancel,
	[CTL_QUEUE_MAIL] = ctl_queue_mail,
	[CTL_ORDER_RESEND_CONFIRMATION] = ctl_order_resend_confirmation,
	[CTL_PROVIDER_CERT] = ctl_provider_cert,
	[CTL_PROVIDER_TOKEN] = ctl_provider_token,
	[CTL_PROVIDER_SESSIONS] = ctl_provider_sessions,
	[CTL_QUEUE_PROVIDER] = ctl_queue_provider,
	[CTL_LEDGER] = ctl_ledger,
	[CTL_PROVIDER_FAX_IDENT] = ctl_provider_fax_ident,
	[CTL_QUEUE_FAX] = ctl_queue_fax,
	[CTL_FAX_SHOW] = ctl_fax_show,
	[CTL_FAX_RETRY] = ctl_fax_retry,
	[CTL_MODEM_LIST] = ctl_modem_list,
	[CTL_BACKUP] = ctl_backup,
};

void
ctl_actor(struct conn *c, char *buf, size_t len)
{
	pid_t pid = 0;
	uid_t uid = 0;

	conn_peer_cred(c, &pid, &uid, NULL);
	snprintf(buf, len, "ctl uid=%u pid=%d", (unsigned)uid, (int)pid);
}

/* May this uid or gid use the control socket? */
static bool
ctl_peer_allowed(const struct daemon *d, uid_t uid, gid_t gid)
{
	const char *group = d->cfg->control_admin_group;
	struct group *gr;
	struct passwd *pw;
	gid_t groups[256];
	int ngroups = (int)ELEMENTSOF(groups);

	if (uid == 0 || uid == geteuid())
		return true;
	if (group == NULL || group[0] == '\0')
		return false;
	gr = getgrnam(group);
	if (gr == NULL)
		return false;
	if (gid == gr->gr_gid)
		return true;
	pw = getpwuid(uid);
	if (pw == NULL)
		return false;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) < 0)
		return false;
	for (int i = 0; i < ngroups; i++)
		if (groups[i] == gr->gr_gid)
			return true;
	return false;
}

static int
ctl_on_accept(struct conn *c)
{
	struct daemon *d = conn_ctx(c);
	uid_t uid;
	gid_t gid;
	pid_t pid;

	if (conn_peer_cred(c, &pid, &uid, &gid) < 0 ||
	    !ctl_peer_allowed(d, uid, gid)) {
		char msg[160];
		snprintf(msg, sizeof(msg), "permission denied: uid %u may not "
		    "use the control socket (root, the daemon's user or the "
		    "admin group only)", (unsigned)uid);
		log_warn("control: refused pid=%d uid=%u gid=%u", (int)pid,
		    (unsigned)uid, (unsigned)gid);
		ctl_send_error(c, 0, TWINROUTE__ERROR_CODE__ERR_PERMISSION, msg);
		return -1;
	}
	return 0;
}

static int
ctl_on_frame(struct conn *c, const uint8_t *payload, uint32_t len)
{
	struct daemon *d = conn_ctx(c);
	CtlRequest *req;
	char msg[128];
	int r = 0;

	req = twinroute__ctl__ctl_request__unpack(NULL, len, payload);
	if (req == NULL) {
		log_info("control: frame does not decode (%" PRIu32 " bytes)",
		    len);
		ctl_send_error(c, 0, TWINROUTE__ERROR_CODE__ERR_BAD_FRAME,
		    "frame does not decode as a CtlRequest");
		return -1;
	}
	r = ctl_check_request(req, msg, sizeof(msg));
	if (r == -EPROTO) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_VERSION, msg);
		r = -1;
	} else if (r < 0) {
		ctl_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_UNSUPPORTED,
		    msg);
		r = 0;
	} else if (d->stopping && !(ctl_cmds[req->command].flags &
	    CTL_F_READONLY)) {
		ctl_send_error(c, req->id,
		    TWINROUTE__ERROR_CODE__ERR_SHUTTING_DOWN,
		    "daemon is shutting down");
	} else {
		log_debug("control: %s", ctl_cmds[req->command].name);
		ctl_handlers[req->command](c, req);
	}
	twinroute__ctl__ctl_request__free_unpacked(req, NULL);
	return r;
}

const struct listener_ops ctl_listener_ops = {
	.name = "control",
	.on_accept = ctl_on_accept,
	.on_frame = ctl_on_frame,
	.send_error = ctl_send_error,
	.on_close = NULL,
};
