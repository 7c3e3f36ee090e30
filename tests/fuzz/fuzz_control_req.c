/* SPDX-License-Identifier: ISC */
/* fuzz_control_req.c -- libFuzzer target: an admin's request, decoded and checked */

/*
 * The input is one frame's payload on the control socket. It decodes as
 * a CtlRequest or is refused; what decodes packs again to a stable form,
 * passes or fails the version and command check, and goes where the
 * daemon's handler for its command sends it, short of the connection:
 * the field checks (member numbers and fields, passwords, order ids,
 * certificates, CSIs, backup folders, ledger periods, card checks), the
 * catalog's writes (dry: checked and prepared, never committed) and
 * reads, the store's member and order-index lookups, and what the vault
 * thread parses: a share as typed, and a card envelope opened with a
 * fixed enrolment key (seeds sealed to it reach the card checks).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/errcode.h"
#include "control.pb-c.h"
#include "ctl/ctl.h"
#include "ctl/ctl_check.h"
#include "fax/class1.h"
#include "fuzz_catalog.h"
#include "order/order.h"
#include "vault/card.h"
#include "vault/envelope.h"
#include "vault/vault.h"
#include "vault/vault_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The fuzz target's enrolment key: fixed, so that seed envelopes sealed
 * to its public half open (tests/fuzz/corpus/control_req/card_set_*).
 */
static const uint8_t fz_enrol_priv[32] = {
	0x74, 0x77, 0x69, 0x6e, 0x72, 0x6f, 0x75, 0x74, 0x65, 0x20, 0x66,
	0x75, 0x7a, 0x7a, 0x20, 0x65, 0x6e, 0x72, 0x6f, 0x6c, 0x20, 0x6b,
	0x65, 0x79, 0x20, 0x28, 0x74, 0x65, 0x73, 0x74, 0x29, 0x2e,
};

/* A fixed clock for card expiry: 2026-01-01. */
#define FZ_NOW ((time_t)1767225600)

static EVP_PKEY *
fz_enrol_key(void)
{
	static EVP_PKEY *key;
	uint8_t pub[32];

	if (key == NULL)
		FZ_CHECK(vault_x25519_load(fz_enrol_priv, &key, pub) == 0);
	return key;
}

/* What ctl_member_load does with a number: a store lookup. */
static void
fz_member_lookup(const char *number)
{
	Twinroute__Store__MemberRecord *rec = NULL;
	struct store_txn *txn;
	int r;

	FZ_CHECK(store_txn_begin(fz_cat.store, STORE_RDONLY, &txn) == 0);
	r = member_get(txn, number, &rec);
	store_txn_abort(txn);
	FZ_CHECK(r == 0 || r == -ENOENT || r == -EINVAL);
	if (r == 0) {
		FZ_CHECK(strcmp(rec->number, number) == 0);
		twinroute__store__member_record__free_unpacked(rec, NULL);
	}
}

static void
fz_member_fields(const Twinroute__Ctl__CtlRequest *req)
{
	const Twinroute__Ctl__Member *m = req->member;
	const char *why = NULL;

	if (m != NULL && member_check_number(m->number, &why) == 0 &&
	    member_check_name(m->name, &why) == 0 &&
	    member_check_email(m->email, &why) == 0) {
		FZ_CHECK(strlen(m->number) <= MEMBER_NUMBER_MAX);
		FZ_CHECK(strlen(m->name) <= MEMBER_NAME_MAX);
		FZ_CHECK(strlen(m->email) <= MEMBER_EMAIL_MAX);
		fz_member_lookup(m->number);
	} else if (m != NULL) {
		FZ_CHECK(why != NULL);
	}
	why = NULL;
	if (member_check_password(req->password, &why) == 0)
		FZ_CHECK(strlen(req->password) >= MEMBER_PASSWORD_MIN &&
		    strlen(req->password) <= MEMBER_PASSWORD_MAX);
	else
		FZ_CHECK(why != NULL);
}

/* A command on a member named by target. */
static bool
fz_member_target(const char *target)
{
	const char *why = NULL;

	if (member_check_number(target, &why) < 0) {
		FZ_CHECK(why != NULL);
		return false;
	}
	fz_member_lookup(target);
	return true;
}

static void
fz_card_set(const Twinroute__Ctl__CtlRequest *req)
{
	struct card_input in;
	const char *why = NULL;
	int r;

	if (!fz_member_target(req->target) || req->card_envelope.len == 0 ||
	    req->card_envelope.len > VAULT_ENVELOPE_MAX)
		return;
	memset(&in, 0x5a, sizeof(in));
	r = envelope_open(fz_enrol_key(), req->target, req->card_envelope.data,
	    req->card_envelope.len, &in);
	FZ_CHECK(r == 0 || r == -EBADMSG || r == -EINVAL);
	if (r < 0)
		return;
	FZ_CHECK(memchr(in.number, '\0', sizeof(in.number)) != NULL);
	FZ_CHECK(memchr(in.holder, '\0', sizeof(in.holder)) != NULL);
	if (card_check(&in, FZ_NOW, &why) < 0)
		FZ_CHECK(why != NULL);
	else
		FZ_CHECK(in.exp_month >= 1 && in.exp_month <= 12);
	OPENSSL_cleanse(&in, sizeof(in));
}

static void
fz_unseal(const char *share)
{
	struct vault_share sh;
	const char *why = NULL;
	char again[VAULT_SHARE_TEXT_MAX];
	struct vault_share sh2;
	int r;

	/* The handler refuses what does not fit the vault's request. */
	if (strlen(share) >= VAULT_SHARE_TEXT_MAX || share[0] == '\0')
		return;
	r = vault_share_decode(share, &sh, &why);
	if (r < 0) {
		FZ_CHECK(r == -EINVAL || r == -EBADMSG);
		FZ_CHECK(why != NULL);
		return;
	}
	/* A share that decodes encodes to one that decodes the same. */
	FZ_CHECK(vault_share_encode(&sh, again) == 0);
	FZ_CHECK(vault_share_decode(again, &sh2, &why) == 0);
	FZ_CHECK(memcmp(&sh, &sh2, sizeof(sh)) == 0);
	OPENSSL_cleanse(&sh, sizeof(sh));
	OPENSSL_cleanse(&sh2, sizeof(sh2));
}

static void
fz_order_target(const char *target)
{
	char hex[32];
	uint64_t id = 0, again = 0;

	if (ctl_order_id_parse(target, &id) < 0) {
		FZ_CHECK(id == 0);
		return;
	}
	FZ_CHECK(id != 0);
	/* The form the logs print reads back as the same id. */
	snprintf(hex, sizeof(hex), "%016" PRIx64, id);
	FZ_CHECK(ctl_order_id_parse(hex, &again) == 0 && again == id);
}

static void
fz_order_list(const Twinroute__Ctl__Filter *f)
{
	uint64_t ids[16];
	struct store_txn *txn;
	size_t n = 99;
	bool more = true;

	if (f == NULL)
		return;
	FZ_CHECK(order_strstate(f->state) != NULL);
	if (f->member[0] == '\0')
		return;
	FZ_CHECK(store_txn_begin(fz_cat.store, STORE_RDONLY, &txn) == 0);
	FZ_CHECK(order_list_member(txn, f->member, 0, ids, ELEMENTSOF(ids), &n,
	    &more) == 0);
	store_txn_abort(txn);
	FZ_CHECK(n == 0 && !more);
}

static void
fz_list_services(struct catalog *cat, const char *provider,
    const char *category)
{
	const Twinroute__Service *out[ELEMENTSOF(fz_services)];
	bool more = true;
	size_t n;

	n = catalog_list_services(cat, category, NULL, true,
	    provider && provider[0] ? provider : NULL, out, ELEMENTSOF(out),
	    &more);
	FZ_CHECK(!more);
	fz_check_listing(cat, out, n, true);
	for (size_t i = 0; i < n; i++) {
		FZ_CHECK(!provider || !provider[0] ||
		    strcmp(out[i]->provider_id, provider) == 0);
		FZ_CHECK(!category || !category[0] ||
		    strcmp(out[i]->category, category) == 0);
	}
}

/* A catalog write's answer: 0 (dry: nothing committed), or a reason. */
static void
fz_catalog_answer(int r, uint64_t seq, const struct catalog_err *err)
{
	if (r == 0) {
		FZ_CHECK(seq == 0);
		return;
	}
	if (r != -TR_EINVAL_FIELD && r != -ENOENT && r != -TR_EEXISTS)
		fprintf(stderr, "catalog write: %d %s\n", r, err->msg);
	FZ_CHECK(r == -TR_EINVAL_FIELD || r == -ENOENT || r == -TR_EEXISTS);
	FZ_CHECK(err->msg[0] != '\0');
}

static void
fz_import(struct catalog *cat, const Twinroute__Ctl__CtlRequest *req)
{
	struct catalog_err err = { .index = -1 };
	struct catalog_item *items;
	size_t np = 0, ns = 0;
	uint64_t seq = 1;
	int r;

	items = calloc(req->n_items ? req->n_items : 1, sizeof(*items));
	FZ_CHECK(items != NULL);
	for (size_t i = 0; i < req->n_items; i++) {
		const Twinroute__Ctl__CatalogItem *it = req->items[i];

		items[i].provider = it->item_case ==
		    TWINROUTE__CTL__CATALOG_ITEM__ITEM_PROVIDER ? it->provider :
		    NULL;
		items[i].service = it->item_case ==
		    TWINROUTE__CTL__CATALOG_ITEM__ITEM_SERVICE ? it->service :
		    NULL;
	}
	r = catalog_import(cat, items, req->n_items, &np, &ns, &seq, &err);
	free(items);
	/* Nothing to write: the seq of what is written already. */
	if (req->n_items == 0)
		seq = 0;
	fz_catalog_answer(r, seq, &err);
	if (r == 0) {
		FZ_CHECK(np + ns == req->n_items);
	} else if (err.index >= 0) {
		FZ_CHECK((size_t)err.index < req->n_items);
	}
}

static void
fz_command(struct catalog *cat, const Twinroute__Ctl__CtlRequest *req)
{
	Twinroute__Service empty;
	const Twinroute__Provider *provs[ELEMENTSOF(fz_providers)];
	const Twinroute__Provider *p;
	struct catalog_err err = { .index = -1 };
	uint64_t seq = 1, from, to;
	const char *why;
	size_t pos = 0;

	twinroute__service__init(&empty);
	switch ((enum ctl_cmd)req->command) {
	case CTL_STATUS:
	case CTL_VAULT_SEAL:
	case CTL_VAULT_STATUS:
	case CTL_VAULT_ROTATE:
	case CTL_PROVIDER_SESSIONS:
	case CTL_MODEM_LIST:
	case CTL_QUEUE_MAIL:
		return;
	case CTL_PROVIDER_ADD:
		if (req->provider)
			fz_catalog_answer(catalog_provider_add(cat,
			    req->provider, &seq, &err), seq, &err);
		return;
	case CTL_PROVIDER_LIST:
		FZ_CHECK(catalog_list_providers(cat, provs, ELEMENTSOF(provs)) ==
		    ELEMENTSOF(provs));
		return;
	case CTL_PROVIDER_SHOW:
		p = catalog_provider(cat, req->target);
		if (p)
			fz_list_services(cat, p->id, NULL);
		return;
	case CTL_PROVIDER_DISABLE:
		fz_catalog_answer(catalog_provider_disable(cat, req->target,
		    &seq, &err), seq, &err);
		return;
	case CTL_SERVICE_ADD:
		if (req->service)
			fz_catalog_answer(catalog_service_add(cat, req->service,
			    &seq, &err), seq, &err);
		return;
	case CTL_SERVICE_UPDATE:
		fz_catalog_answer(catalog_service_update(cat, req->target,
		    req->service ? req->service : &empty, req->update_mask,
		    req->n_update_mask, &seq, &err), seq, &err);
		return;
	case CTL_SERVICE_REMOVE:
		fz_catalog_answer(catalog_service_remove(cat, req->target,
		    &seq, &err), seq, &err);
		return;
	case CTL_SERVICE_LIST:
		if (req->filter)
			fz_list_services(cat, req->filter->provider_id,
			    req->filter->category);
		return;
	case CTL_CATALOG_IMPORT:
		fz_import(cat, req);
		return;
	case CTL_MEMBER_ADD:
		fz_member_fields(req);
		return;
	case CTL_MEMBER_PASSWD:
		if (fz_member_target(req->target))
			fz_member_fields(req);
		return;
	case CTL_MEMBER_SHOW:
	case CTL_MEMBER_DISABLE:
	case CTL_MEMBER_UNLOCK:
	case CTL_MEMBER_CARD_SHOW:
	case CTL_MEMBER_CARD_REMOVE:
		(void)fz_member_target(req->target);
		return;
	case CTL_MEMBER_LIST:
		return;
	case CTL_MEMBER_CARD_SET:
		fz_card_set(req);
		return;
	case CTL_MEMBER_CARD_CHECK:
		if (!fz_member_target(req->target))
			return;
		why = ctl_check_card_check(req->card_check);
		FZ_CHECK(why != NULL || (req->card_check->amount > 0 &&
		    strlen(req->card_check->currency) == 3));
		return;
	case CTL_VAULT_INIT:
		return;
	case CTL_VAULT_UNSEAL:
		fz_unseal(req->share);
		return;
	case CTL_ORDER_LIST:
		fz_order_list(req->filter);
		return;
	case CTL_ORDER_SHOW:
	case CTL_ORDER_CANCEL:
	case CTL_ORDER_RESEND_CONFIRMATION:
	case CTL_FAX_SHOW:
	case CTL_FAX_RETRY:
		fz_order_target(req->target);
		return;
	case CTL_PROVIDER_CERT:
		if (catalog_provider(cat, req->target) == NULL)
			return;
		why = ctl_check_cert(req->remove, req->cert_der.data,
		    req->cert_der.len);
		FZ_CHECK(why != NULL || (req->remove ? req->cert_der.len == 0 :
		    req->cert_der.len > 0 && req->cert_der.len <= CTL_CERT_MAX));
		return;
	case CTL_PROVIDER_TOKEN:
	case CTL_QUEUE_PROVIDER:
	case CTL_QUEUE_FAX:
		(void)catalog_provider(cat, req->target);
		return;
	case CTL_LEDGER:
		if (catalog_provider(cat, req->target) == NULL)
			return;
		from = to = 7;
		why = ctl_check_ledger(req->ledger, &from, &to);
		FZ_CHECK(why != NULL || to == 0 || to > from);
		return;
	case CTL_PROVIDER_FAX_IDENT:
		if (catalog_provider(cat, req->target) == NULL || req->remove)
			return;
		switch (ctl_fax_ident_check(req->fax_ident, &pos)) {
		case 0:
			FZ_CHECK(strlen(req->fax_ident) <= CLASS1_IDENT_MAX);
			break;
		case -EILSEQ:
			FZ_CHECK(pos >= 1 && pos <= strlen(req->fax_ident));
			break;
		case -ENODATA:
		case -E2BIG:
		case -EINVAL:
			break;
		default:
			abort();
		}
		return;
	case CTL_BACKUP:
		why = ctl_check_backup_dir(req->backup_dir);
		FZ_CHECK(why != NULL || (req->backup_dir[0] == '/' &&
		    strlen(req->backup_dir) <= CTL_BACKUP_DIR_MAX));
		return;
	case CTL__COUNT:
		break;
	}
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog *cat = fz_catalog();
	Twinroute__Ctl__CtlRequest *req;
	char msg[128];
	int r;

	req = twinroute__ctl__ctl_request__unpack(NULL, size, data);
	if (req == NULL)
		return 0;
	fz_repack(&req->base);
	msg[0] = '\0';
	r = ctl_check_request(req, msg, sizeof(msg));
	if (r == 0) {
		FZ_CHECK(req->version == CTL_PROTO_VERSION &&
		    req->command < CTL__COUNT);
		fz_command(cat, req);
	} else {
		FZ_CHECK(r == -EPROTO || r == -ENOSYS);
		FZ_CHECK(msg[0] != '\0');
	}
	twinroute__ctl__ctl_request__free_unpacked(req, NULL);
	return 0;
}
