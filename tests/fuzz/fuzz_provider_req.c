/* SPDX-License-Identifier: ISC */
/* fuzz_provider_req.c -- libFuzzer target: a provider's request, decoded and checked */

/*
 * The input is one frame's payload on the provider socket, from the
 * session of one of the catalog's providers (chosen by the request id).
 * It decodes as a ProviderRequest or is refused; what decodes packs again
 * to a stable form and goes where the daemon's handlers send it, short
 * of the connection and the orders: the Auth's lookup and token digest,
 * the Report check, and the service upsert and removal through the
 * catalog (dry: checked and prepared, never committed). A provider only
 * ever changes its own services.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/errcode.h"
#include "fuzz_catalog.h"
#include "order/order.h"
#include "provider.pb-c.h"
#include "provider/provider_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_auth(struct catalog *cat, const Twinroute__Provider__Auth *a)
{
	const Twinroute__Provider *p;
	uint8_t th[EVP_MAX_MD_SIZE];
	unsigned int n = sizeof(th);

	p = a->provider_id[0] ? catalog_provider(cat, a->provider_id) : NULL;
	if (p != NULL)
		FZ_CHECK(strcmp(p->id, a->provider_id) == 0);
	if (a->token[0]) {
		FZ_CHECK(EVP_Digest(a->token, strlen(a->token), th, &n,
		    EVP_sha256(), NULL) == 1);
		FZ_CHECK(n == 32);
	}
}

static void
fz_report(const Twinroute__Provider__Report *rp)
{
	Twinroute__OrderState to = TWINROUTE__ORDER_STATE__ORDER_STATE_UNSPECIFIED;
	const char *what = NULL, *why = NULL;

	if (provider_check_report(rp, &to, &what, &why) < 0) {
		FZ_CHECK(why != NULL && what == NULL);
		return;
	}
	FZ_CHECK(what != NULL && why == NULL);
	FZ_CHECK(to == TWINROUTE__ORDER_STATE__ORDER_ACCEPTED ||
	    to == TWINROUTE__ORDER_STATE__ORDER_REJECTED ||
	    to == TWINROUTE__ORDER_STATE__ORDER_FULFILLED ||
	    to == TWINROUTE__ORDER_STATE__ORDER_CHARGED);
	FZ_CHECK(strlen(rp->reason) <= PROVIDER_REASON_MAX);
	FZ_CHECK(to != TWINROUTE__ORDER_STATE__ORDER_REJECTED ||
	    rp->reason[0] != '\0');
	FZ_CHECK(order_strstate(to) != NULL);
}

static void
fz_upsert(struct catalog *cat, const char *provider_id,
    const Twinroute__Service *in)
{
	struct catalog_err err;
	const Twinroute__Service *old;
	Twinroute__Service mine;
	uint64_t seq = 1;
	bool added = false;
	int code = 0, r;

	old = in && in->id ? catalog_service(cat, in->id) : NULL;
	r = provider_service_upsert(cat, provider_id, in, &seq, &added, &code,
	    &err);
	if (r < 0) {
		FZ_CHECK(err.msg[0] != '\0');
		/* Another provider's service, or the request's fault: never
		 * the store's (the catalog is dry), nor a missing provider
		 * (the service is always the session's). */
		if (r == -EPERM) {
			FZ_CHECK(code == TWINROUTE__ERROR_CODE__ERR_FORBIDDEN);
			FZ_CHECK(old != NULL &&
			    strcmp(old->provider_id, provider_id) != 0);
		} else {
			if (r != -EINVAL && r != -TR_EINVAL_FIELD)
				fprintf(stderr, "upsert: %d %s\n", r, err.msg);
			FZ_CHECK(r == -EINVAL || r == -TR_EINVAL_FIELD);
			FZ_CHECK(code == TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST);
		}
		return;
	}
	FZ_CHECK(seq == 0);
	FZ_CHECK(added == (old == NULL));
	FZ_CHECK(old == NULL || strcmp(old->provider_id, provider_id) == 0);
	/* As added, the service passes the catalog's checks as the
	 * session's provider's. */
	if (added) {
		mine = *in;
		mine.provider_id = unconst(provider_id);
		FZ_CHECK(catalog_check_service(&mine, &err) == 0);
	}
}

static void
fz_remove(struct catalog *cat, const char *provider_id, const char *id)
{
	const Twinroute__Service *old = catalog_service(cat, id);
	struct catalog_err err;
	uint64_t seq = 1;

	if (old == NULL || strcmp(old->provider_id, provider_id) != 0)
		return;
	FZ_CHECK(catalog_service_remove(cat, id, &seq, &err) == 0);
	FZ_CHECK(seq == 0 && catalog_service(cat, id) == old);
}

static void
fz_list(struct catalog *cat, const char *provider_id)
{
	const Twinroute__Service *out[ELEMENTSOF(fz_services)];
	bool more = true;
	size_t n;

	n = catalog_list_services(cat, NULL, NULL, true, provider_id, out,
	    ELEMENTSOF(out), &more);
	FZ_CHECK(!more);
	fz_check_listing(cat, out, n, true);
	for (size_t i = 0; i < n; i++)
		FZ_CHECK(strcmp(out[i]->provider_id, provider_id) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog *cat = fz_catalog();
	Twinroute__Provider__ProviderRequest *req;
	const char *me;

	req = twinroute__provider__provider_request__unpack(NULL, size, data);
	if (req == NULL)
		return 0;
	fz_repack(&req->base);
	me = fz_providers[req->id % ELEMENTSOF(fz_providers)].id;
	switch (req->body_case) {
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HELLO:
		FZ_CHECK(req->hello->agent != NULL);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_AUTH:
		fz_auth(cat, req->auth);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_REPORT:
		fz_report(req->report);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_UPSERT_SERVICE:
		fz_upsert(cat, me, req->upsert_service->service);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_REMOVE_SERVICE:
		fz_remove(cat, me, req->remove_service->service_id);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_LIST_SERVICES:
		fz_list(cat, me);
		break;
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_ACK:
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HEARTBEAT:
	case TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY__NOT_SET:
		/* An order id, a time, or nothing: no bytes to parse. */
		break;
	case _TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY__CASE_IS_INT_SIZE:
		abort();
	}
	twinroute__provider__provider_request__free_unpacked(req, NULL);
	return 0;
}
