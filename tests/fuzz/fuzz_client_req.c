/* SPDX-License-Identifier: ISC */
/* fuzz_client_req.c -- libFuzzer target: a client's request, decoded and checked */

/*
 * The input is one frame's payload on the client socket. It decodes as a
 * Request or is refused; what decodes packs again to a stable form and
 * goes where the daemon's handlers send it, short of the connection:
 * the page tokens, the Login and PlaceOrder checks, and the catalog's
 * listing and search (a small catalog in a store of its own), with what
 * each promises checked: listings in id order after the token's id,
 * tokens that decode to what was encoded, amounts that are price times
 * quantity, search hits within the limit.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client.pb-c.h"
#include "client/client_check.h"
#include "fuzz_catalog.h"
#include "order/order.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The defaults of [client] and [orders]. */
#define FZ_PAGE_SIZE 50
#define FZ_PAGE_SIZE_MAX 500
#define FZ_QUANTITY_MAX 100
#define FZ_SEARCH_DEFAULT 20

static void
fz_category(const char *name, size_t services, void *arg)
{
	size_t *n = arg;

	FZ_CHECK(name != NULL && name[0] != '\0' && services > 0);
	(*n)++;
}

static void
fz_list_services(struct catalog *cat, const Twinroute__Client__ListServices *ls)
{
	char after[CATALOG_ID_MAX + 1], again[CATALOG_ID_MAX + 1];
	uint8_t tok[CLIENT_PAGE_TOKEN_MAX];
	ProtobufCBinaryData next;
	const Twinroute__Service **out;
	size_t size, n;
	bool more = false;

	if (client_page_token_decode(&ls->page_token, after) < 0) {
		FZ_CHECK(ls->page_token.len > 0);
		return;
	}
	FZ_CHECK(strlen(after) == (ls->page_token.len ? ls->page_token.len - 1 :
	    0));
	size = ls->page_size ? ls->page_size : FZ_PAGE_SIZE;
	if (size > FZ_PAGE_SIZE_MAX)
		size = FZ_PAGE_SIZE_MAX;
	out = calloc(size, sizeof(*out));
	FZ_CHECK(out != NULL);
	n = catalog_list_services(cat, ls->category, after[0] ? after : NULL,
	    false, NULL, out, size, &more);
	FZ_CHECK(n <= size);
	fz_check_listing(cat, out, n, false);
	for (size_t i = 0; i < n; i++) {
		FZ_CHECK(!after[0] || strcmp(out[i]->id, after) > 0);
		FZ_CHECK(!ls->category[0] ||
		    strcmp(out[i]->category, ls->category) == 0);
	}
	if (more && n > 0) {
		/* The next page's token names the last id of this one. */
		next.data = tok;
		next.len = client_page_token_encode(out[n - 1]->id, tok);
		FZ_CHECK(next.len == strlen(out[n - 1]->id) + 1);
		FZ_CHECK(client_page_token_decode(&next, again) == 0);
		FZ_CHECK(strcmp(again, out[n - 1]->id) == 0);
	}
	free(out);
}

static void
fz_get_service(struct catalog *cat, const char *id)
{
	const Twinroute__Service *svc = catalog_service(cat, id);

	if (svc == NULL)
		return;
	FZ_CHECK(strcmp(svc->id, id) == 0);
	if (catalog_service_visible(cat, svc))
		FZ_CHECK(catalog_provider_public(cat, svc->provider_id) != NULL);
}

static void
fz_search(struct catalog *cat, const Twinroute__Client__Search *sq)
{
	const Twinroute__Service **out;
	size_t limit, n = SIZE_MAX, total = SIZE_MAX;
	int r;

	limit = sq->limit ? sq->limit : FZ_SEARCH_DEFAULT;
	if (limit > FZ_PAGE_SIZE_MAX)
		limit = FZ_PAGE_SIZE_MAX;
	out = calloc(limit, sizeof(*out));
	FZ_CHECK(out != NULL);
	r = catalog_search(cat, sq->query, out, limit, &n, &total);
	FZ_CHECK(r == 0 || r == -EINVAL);
	if (r == 0) {
		FZ_CHECK(n <= limit && n <= total);
		for (size_t i = 0; i < n; i++) {
			FZ_CHECK(catalog_service(cat, out[i]->id) == out[i]);
			FZ_CHECK(catalog_service_visible(cat, out[i]));
			for (size_t j = 0; j < i; j++)
				FZ_CHECK(out[j] != out[i]);
		}
	}
	free(out);
}

static void
fz_login(const Twinroute__Client__Login *l)
{
	const char *why = NULL, *why2 = NULL;

	if (client_check_login(l, &why) < 0) {
		FZ_CHECK(why != NULL && why[0] != '\0');
		return;
	}
	FZ_CHECK(member_check_number(l->member, &why2) == 0);
	FZ_CHECK(strlen(l->member) >= MEMBER_NUMBER_MIN &&
	    strlen(l->member) <= MEMBER_NUMBER_MAX);
	FZ_CHECK(strlen(l->password) <= MEMBER_PASSWORD_MAX);
}

static void
fz_place_order(struct catalog *cat, const Twinroute__Client__PlaceOrder *po)
{
	const Twinroute__Service *svc = NULL;
	uint8_t hash[ORDER_HASH_SIZE], hash2[ORDER_HASH_SIZE];
	const char *why = NULL;
	int64_t amount = -1;
	int code = 0, r;

	r = client_check_place_order(cat, po, FZ_QUANTITY_MAX, &svc, &amount,
	    &code, &why);
	if (r < 0) {
		FZ_CHECK(r == -EINVAL || r == -ENOENT);
		FZ_CHECK(code != 0 && why != NULL && why[0] != '\0');
		FZ_CHECK(svc == NULL && amount == -1);
		return;
	}
	FZ_CHECK(order_check_idem_key(po->idempotency_key) == 0);
	FZ_CHECK(order_check_note(po->note) == 0);
	FZ_CHECK(svc == catalog_service(cat, po->service_id));
	FZ_CHECK(catalog_service_visible(cat, svc));
	FZ_CHECK(po->quantity >= 1 && po->quantity <= FZ_QUANTITY_MAX);
	FZ_CHECK(amount > 0 && amount == svc->price->minor *
	    (int64_t)po->quantity);
	/* What an idempotency key stands for: the same request, the same
	 * hash. */
	order_request_hash(po->service_id, po->quantity, po->note, hash);
	order_request_hash(po->service_id, po->quantity, po->note, hash2);
	FZ_CHECK(memcmp(hash, hash2, sizeof(hash)) == 0);
}

static void
fz_list_orders(const Twinroute__Client__ListOrders *lo)
{
	uint8_t tok[CLIENT_ORDER_TOKEN_LEN];
	uint64_t before = UINT64_MAX;

	if (client_order_token_decode(&lo->page_token, &before) < 0) {
		FZ_CHECK(lo->page_token.len > 0 && before == UINT64_MAX);
		return;
	}
	if (lo->page_token.len == 0) {
		FZ_CHECK(before == 0);
		return;
	}
	FZ_CHECK(before != 0);
	client_order_token_encode(before, tok);
	FZ_CHECK(lo->page_token.len == sizeof(tok));
	FZ_CHECK(memcmp(lo->page_token.data, tok, sizeof(tok)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog *cat = fz_catalog();
	Twinroute__Client__Request *req;
	size_t n = 0;

	req = twinroute__client__request__unpack(NULL, size, data);
	if (req == NULL)
		return 0;
	fz_repack(&req->base);
	switch (req->body_case) {
	case TWINROUTE__CLIENT__REQUEST__BODY_HELLO:
		FZ_CHECK(req->hello->client != NULL);
		break;
	case TWINROUTE__CLIENT__REQUEST__BODY_LIST_CATEGORIES:
		catalog_categories(cat, fz_category, &n);
		FZ_CHECK(n > 0);
		break;
	case TWINROUTE__CLIENT__REQUEST__BODY_LIST_SERVICES:
		fz_list_services(cat, req->list_services);
		break;
	case TWINROUTE__CLIENT__REQUEST__BODY_GET_SERVICE:
		fz_get_service(cat, req->get_service->id);
		break;
	case TWINROUTE__CLIENT__REQUEST__BODY_SEARCH:
		fz_search(cat, req->search);
		break;
	case TWINROUTE__CLIENT__REQUEST__BODY_LOGIN:
		fz_login(req->login);
		break;
	case TWINROUTE__CLIENT__REQUEST__BODY_PLACE_ORDER:
		fz_place_order(cat, req->place_order);
		break;
	case TWINROUTE__CLIENT__REQUEST__BODY_LIST_ORDERS:
		fz_list_orders(req->list_orders);
		break;
	case TWINROUTE__CLIENT__REQUEST__BODY_GET_ORDER:
	case TWINROUTE__CLIENT__REQUEST__BODY_CANCEL_ORDER:
	case TWINROUTE__CLIENT__REQUEST__BODY_WATCH:
	case TWINROUTE__CLIENT__REQUEST__BODY__NOT_SET:
		/* An id, or nothing: no bytes to parse. */
		break;
	case _TWINROUTE__CLIENT__REQUEST__BODY__CASE_IS_INT_SIZE:
		abort();
	}
	twinroute__client__request__free_unpacked(req, NULL);
	return 0;
}
