/* SPDX-License-Identifier: ISC */
/* provider_check.c -- the provider protocol's requests: checks, and service upserts */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/errcode.h"
#include "common/macro.h"
#include "provider/provider_check.h"

#define ST(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define E(x) TWINROUTE__ERROR_CODE__ERR_##x

int
provider_check_report(const Twinroute__Provider__Report *rp,
    Twinroute__OrderState *ret_to, const char **ret_what,
    const char **ret_why)
{
	Twinroute__OrderState to;
	const char *what;

	switch (rp->kind) {
	case TWINROUTE__PROVIDER__REPORT_KIND__REPORT_ACCEPTED:
		to = ST(ACCEPTED);
		what = "accepted";
		break;
	case TWINROUTE__PROVIDER__REPORT_KIND__REPORT_REJECTED:
		to = ST(REJECTED);
		what = "rejected";
		break;
	case TWINROUTE__PROVIDER__REPORT_KIND__REPORT_FULFILLED:
		to = ST(FULFILLED);
		what = "fulfilled";
		break;
	case TWINROUTE__PROVIDER__REPORT_KIND__REPORT_CHARGED:
		to = ST(CHARGED);
		what = "charged";
		break;
	case TWINROUTE__PROVIDER__REPORT_KIND__REPORT_UNSPECIFIED:
	case _TWINROUTE__PROVIDER__REPORT_KIND_IS_INT_SIZE:
	default:
		*ret_why = "report: kind must be ACCEPTED, REJECTED, FULFILLED "
		    "or CHARGED";
		return -EINVAL;
	}
	if (to == ST(REJECTED) && !rp->reason[0]) {
		*ret_why = "report: a rejection needs a reason";
		return -EINVAL;
	}
	if (strlen(rp->reason) > PROVIDER_REASON_MAX) {
		*ret_why = "report: reason longer than 200 bytes";
		return -EINVAL;
	}
	*ret_to = to;
	*ret_what = what;
	return 0;
}

int
provider_service_upsert(struct catalog *cat, const char *provider_id,
    const Twinroute__Service *in, uint64_t *ret_seq, bool *ret_added,
    int *ret_code, struct catalog_err *err)
{
	static char mask_category[] = "category", mask_name[] = "name",
	    mask_description[] = "description", mask_price[] = "price",
	    mask_active[] = "active";
	static char *const mask[] = { mask_category, mask_name,
		mask_description, mask_price, mask_active };
	const Twinroute__Service *old;
	Twinroute__Service svc;
	int r;

	err->index = -1;
	err->msg[0] = '\0';
	if (!in || !in->id || !in->id[0]) {
		*ret_code = E(BAD_REQUEST);
		snprintf(err->msg, sizeof(err->msg),
		    "upsert: a service with an id is needed");
		return -EINVAL;
	}
	svc = *in;
	svc.provider_id = unconst(provider_id);
	old = catalog_service(cat, in->id);
	if (old && strcmp(old->provider_id, provider_id) != 0) {
		*ret_code = E(FORBIDDEN);
		snprintf(err->msg, sizeof(err->msg),
		    "that service id belongs to another provider");
		return -EPERM;
	}
	if (old)
		r = catalog_service_update(cat, in->id, &svc, mask,
		    ELEMENTSOF(mask), ret_seq, err);
	else
		r = catalog_service_add(cat, &svc, ret_seq, err);
	if (r < 0) {
		*ret_code = r == -TR_EINVAL_FIELD || r == -EINVAL ?
		    E(BAD_REQUEST) : r == -ENOSPC ? E(STORE_FULL) : E(STORE);
		if (!err->msg[0])
			snprintf(err->msg, sizeof(err->msg), "%s",
			    tr_strerror(r));
		return r;
	}
	*ret_added = old == NULL;
	return 0;
}
