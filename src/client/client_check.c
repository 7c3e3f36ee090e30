/* SPDX-License-Identifier: ISC */
/* client_check.c -- the client protocol's request fields: page tokens and checks */
#include <errno.h>
#include <string.h>

#include "client/client_check.h"
#include "member/member.h"
#include "order/order.h"

#define E(x) TWINROUTE__ERROR_CODE__ERR_##x

int
client_page_token_decode(const ProtobufCBinaryData *tok,
    char ret_after[CATALOG_ID_MAX + 1])
{
	if (tok->len == 0) {
		ret_after[0] = '\0';
		return 0;
	}
	if (tok->len < 2 || tok->len > CLIENT_PAGE_TOKEN_MAX ||
	    tok->data[0] != CLIENT_PAGE_TOKEN_V1)
		return -EINVAL;
	for (size_t i = 1; i < tok->len; i++)
		if (tok->data[i] < 0x21 || tok->data[i] > 0x7e)
			return -EINVAL;
	memcpy(ret_after, tok->data + 1, tok->len - 1);
	ret_after[tok->len - 1] = '\0';
	return 0;
}

size_t
client_page_token_encode(const char *id, uint8_t ret_tok[CLIENT_PAGE_TOKEN_MAX])
{
	size_t n = strlen(id);

	if (n == 0 || n > CATALOG_ID_MAX)
		return 0;
	ret_tok[0] = CLIENT_PAGE_TOKEN_V1;
	memcpy(ret_tok + 1, id, n);
	return n + 1;
}

int
client_order_token_decode(const ProtobufCBinaryData *tok, uint64_t *ret_before)
{
	uint64_t id = 0;

	if (tok->len == 0) {
		*ret_before = 0;
		return 0;
	}
	if (tok->len != CLIENT_ORDER_TOKEN_LEN ||
	    tok->data[0] != CLIENT_ORDER_TOKEN_V1)
		return -EINVAL;
	for (size_t i = 1; i < CLIENT_ORDER_TOKEN_LEN; i++)
		id = id << 8 | tok->data[i];
	if (id == 0)
		return -EINVAL;
	*ret_before = id;
	return 0;
}

void
client_order_token_encode(uint64_t id, uint8_t ret_tok[CLIENT_ORDER_TOKEN_LEN])
{
	ret_tok[0] = CLIENT_ORDER_TOKEN_V1;
	for (int i = CLIENT_ORDER_TOKEN_LEN - 1; i >= 1; i--, id >>= 8)
		ret_tok[i] = (uint8_t)id;
}

int
client_check_login(const Twinroute__Client__Login *l, const char **ret_why)
{
	const char *why = NULL;

	if (l == NULL || member_check_number(l->member, &why) < 0) {
		*ret_why = why ? why : "login: missing";
		return -EINVAL;
	}
	if (strlen(l->password) > MEMBER_PASSWORD_MAX) {
		*ret_why = "password: at most 1024 bytes";
		return -EINVAL;
	}
	return 0;
}

int
client_check_place_order(const struct catalog *cat,
    const Twinroute__Client__PlaceOrder *po, uint32_t quantity_max,
    const Twinroute__Service **ret_svc, int64_t *ret_amount, int *ret_code,
    const char **ret_why)
{
	const Twinroute__Service *svc;
	int64_t amount;

	if (order_check_idem_key(po->idempotency_key) < 0) {
		*ret_code = E(BAD_REQUEST);
		*ret_why = "idempotency_key: 1 to 64 printable ASCII characters "
		    "are needed";
		return -EINVAL;
	}
	svc = catalog_service(cat, po->service_id);
	if (svc == NULL || svc->price == NULL) {
		*ret_code = E(NOT_FOUND);
		*ret_why = "no such service";
		return -ENOENT;
	}
	if (!catalog_service_visible(cat, svc)) {
		*ret_code = E(SERVICE_UNAVAILABLE);
		*ret_why = "the service or its provider is not active";
		return -EINVAL;
	}
	if (po->quantity < 1 || po->quantity > quantity_max ||
	    __builtin_mul_overflow(svc->price->minor, (int64_t)po->quantity,
	    &amount) || amount <= 0) {
		*ret_code = E(BAD_QUANTITY);
		*ret_why = "quantity: out of bounds, or the amount overflows";
		return -EINVAL;
	}
	if (order_check_note(po->note) < 0) {
		*ret_code = E(BAD_REQUEST);
		*ret_why = "note: at most 500 bytes of UTF-8";
		return -EINVAL;
	}
	*ret_svc = svc;
	*ret_amount = amount;
	return 0;
}
