/* SPDX-License-Identifier: ISC */
/* provider_check.h -- the provider protocol's requests: checks, and service upserts */
#ifndef TR_PROVIDER_CHECK_H
#define TR_PROVIDER_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "provider.pb-c.h"
#include "catalog/catalog.h"

/*
 * What a provider's session does with a request's fields before (or
 * instead of) touching its orders: the handlers in provider.c call these,
 * and so does the fuzz target tests/fuzz/fuzz_provider_req.c.
 */

#define PROVIDER_REASON_MAX 200     /* bytes of a rejection's reason */

/*
 * A Report: 0 with the state it moves the order to and its verb
 * ("accepted", ...); else -EINVAL with *ret_why.
 */
int provider_check_report(const Twinroute__Provider__Report *rp,
    Twinroute__OrderState *ret_to, const char **ret_what,
    const char **ret_why);

/*
 * An UpsertService's service from provider_id's session: always
 * provider_id's. Updates the service (category, name, description, price,
 * active) when provider_id has it, adds it when nobody has. 0 with
 * *ret_seq and *ret_added; else a negative code with *ret_code (an
 * ErrorCode) and err->msg: no service or no id, a field the catalog
 * refuses, another provider's service (-EPERM), or the write's failure.
 */
int provider_service_upsert(struct catalog *cat, const char *provider_id,
    const Twinroute__Service *in, uint64_t *ret_seq, bool *ret_added,
    int *ret_code, struct catalog_err *err);

#endif
