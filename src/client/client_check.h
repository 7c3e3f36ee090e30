/* SPDX-License-Identifier: ISC */
/* client_check.h -- the client protocol's request fields: page tokens and checks */
#ifndef TR_CLIENT_CHECK_H
#define TR_CLIENT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "client.pb-c.h"
#include "catalog/catalog.h"

/*
 * Pure functions over what a client sent (no connection, no store): the
 * handlers call them, and so does the fuzz target tests/fuzz/fuzz_client_req.c.
 */

/* ListServices page tokens: one version byte, then the last service id. */
#define CLIENT_PAGE_TOKEN_V1 0x01
#define CLIENT_PAGE_TOKEN_MAX (1 + CATALOG_ID_MAX)
/* ListOrders page tokens: one version byte, then the last order id (BE). */
#define CLIENT_ORDER_TOKEN_V1 0x01
#define CLIENT_ORDER_TOKEN_LEN 9

/*
 * A ListServices page token into the id to list after: "" for an empty
 * token (the first page). 0, or -EINVAL for anything this server would
 * not have issued.
 */
int client_page_token_decode(const ProtobufCBinaryData *tok,
    char ret_after[CATALOG_ID_MAX + 1]);
/* The token for a page that ends with service id (1 to CATALOG_ID_MAX
 * bytes): its length, or 0 if id cannot be one. */
size_t client_page_token_encode(const char *id,
    uint8_t ret_tok[CLIENT_PAGE_TOKEN_MAX]);

/* A ListOrders page token into the order id to list before: 0 for an
 * empty token (the newest). 0, or -EINVAL. */
int client_order_token_decode(const ProtobufCBinaryData *tok,
    uint64_t *ret_before);
void client_order_token_encode(uint64_t id,
    uint8_t ret_tok[CLIENT_ORDER_TOKEN_LEN]);

/* A Login's fields (may be NULL): 0, or -EINVAL with *ret_why. */
int client_check_login(const Twinroute__Client__Login *l,
    const char **ret_why);

/*
 * A PlaceOrder against the catalog: the idempotency key, the service
 * (known, priced, visible), the quantity (1 to quantity_max, the amount
 * without overflow) and the note. 0 with *ret_svc and *ret_amount (minor
 * units); else -EINVAL or -ENOENT with *ret_code (an ErrorCode) and
 * *ret_why for the error reply.
 */
int client_check_place_order(const struct catalog *cat,
    const Twinroute__Client__PlaceOrder *po, uint32_t quantity_max,
    const Twinroute__Service **ret_svc, int64_t *ret_amount, int *ret_code,
    const char **ret_why);

#endif
