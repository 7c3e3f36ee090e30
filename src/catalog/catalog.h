/* SPDX-License-Identifier: ISC */
/* catalog.h -- providers and services: in memory for reads, in the store for truth */
#ifndef TR_CATALOG_H
#define TR_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.pb-c.h"
#include "store/store.h"

/* Field limits (bytes). */
#define CATALOG_ID_MAX 64
#define CATALOG_NAME_MAX 200
#define CATALOG_DESC_MAX 4000
#define CATALOG_CATEGORY_MAX 64
#define CATALOG_EMAIL_MAX 254
#define CATALOG_PRICE_MAX INT64_C(1000000000000) /* minor units */

struct catalog;

/* Why a write was refused: a message, and the item index for imports. */
struct catalog_err {
	int index;            /* -1 unless an import item failed */
	char msg[256];
};

/* Load every provider and service from the store and build the indexes. */
int catalog_open(struct store *store, struct catalog **ret_cat);
struct catalog *catalog_free(struct catalog *cat);

/*
 * Reads. Returned messages belong to the catalog and stay valid until the
 * next write; callers may point response fields at them but must not free
 * or change them.
 */
const Twinroute__Provider *catalog_provider(const struct catalog *cat,
    const char *id);
/* The provider as clients see it: id, name and active only. */
const Twinroute__Provider *catalog_provider_public(const struct catalog *cat,
    const char *id);
const Twinroute__Service *catalog_service(const struct catalog *cat,
    const char *id);
/* Active, and its provider exists and is active. */
bool catalog_service_visible(const struct catalog *cat,
    const Twinroute__Service *svc);

void catalog_counts(const struct catalog *cat, size_t *ret_providers,
    size_t *ret_services);

/* Categories with at least one visible service, sorted by name. */
typedef void (*catalog_category_fn)(const char *name, size_t services, void *arg);
void catalog_categories(struct catalog *cat, catalog_category_fn cb, void *arg);

/*
 * Services in id order (category NULL or "": all), visible ones only
 * unless all is set, starting after the id after (NULL: the start).
 * Fills up to max pointers; *ret_more says whether more follow.
 */
size_t catalog_list_services(struct catalog *cat, const char *category,
    const char *after, bool all, const char *provider_id,
    const Twinroute__Service **out, size_t max, bool *ret_more);
/* Providers in id order. */
size_t catalog_list_providers(struct catalog *cat,
    const Twinroute__Provider **out, size_t max);

/* Visible services matching every word of query, best first. */
int catalog_search(struct catalog *cat, const char *query,
    const Twinroute__Service **out, size_t max, size_t *ret_n,
    size_t *ret_total);

/*
 * Writes: validate, write the store in one transaction, commit, then
 * update memory. *ret_seq gets the store sequence to wait on for
 * durability. On failure nothing changed; err says why.
 */
int catalog_provider_add(struct catalog *cat, const Twinroute__Provider *p,
    uint64_t *ret_seq, struct catalog_err *err);
int catalog_provider_disable(struct catalog *cat, const char *id,
    uint64_t *ret_seq, struct catalog_err *err);
int catalog_service_add(struct catalog *cat, const Twinroute__Service *svc,
    uint64_t *ret_seq, struct catalog_err *err);
/* Apply the fields of svc named in mask ("provider", "category", "name",
 * "description", "price", "active"). */
int catalog_service_update(struct catalog *cat, const char *id,
    const Twinroute__Service *svc, char *const *mask, size_t n_mask,
    uint64_t *ret_seq, struct catalog_err *err);
int catalog_service_remove(struct catalog *cat, const char *id,
    uint64_t *ret_seq, struct catalog_err *err);
/*
 * Upsert every item in one transaction: all or nothing. A provider item
 * adds or replaces; a service item adds or replaces and must name a
 * provider that exists in the store or earlier in the batch.
 */
struct catalog_item {
	const Twinroute__Provider *provider; /* exactly one of the two */
	const Twinroute__Service *service;
};
int catalog_import(struct catalog *cat, const struct catalog_item *items,
    size_t n, size_t *ret_providers, size_t *ret_services, uint64_t *ret_seq,
    struct catalog_err *err);

/*
 * Dry run, for tests and the fuzz targets: every write checks, prepares
 * and writes its transaction as usual, then aborts it instead of
 * committing, and returns 0 (*ret_seq 0) where it would have committed.
 * Neither the store nor what reads see changes (only an empty category a
 * write named may stay behind, as after a failed write).
 */
void catalog_set_dry_run(struct catalog *cat, bool on);

/* Validation, exposed for the tools and tests. 0 or -TR_EINVAL_FIELD. */
int catalog_check_provider(const Twinroute__Provider *p, struct catalog_err *err);
int catalog_check_service(const Twinroute__Service *s, struct catalog_err *err);

#endif
