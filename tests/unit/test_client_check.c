/* SPDX-License-Identifier: ISC */
/* test_client_check.c -- the client protocol's page tokens, Login and PlaceOrder checks */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "client/client_check.h"
#include "common/macro.h"
#include "member/member.h"
#include "store/store.h"

#include "tmpdir.h"

#define E(x) TWINROUTE__ERROR_CODE__ERR_##x

static ProtobufCBinaryData
tok(const void *p, size_t len)
{
	return (ProtobufCBinaryData){ .len = len, .data = unconst(p) };
}

static void
test_page_token(void **state _unused_)
{
	char after[CATALOG_ID_MAX + 1], id[CATALOG_ID_MAX + 2];
	uint8_t buf[CLIENT_PAGE_TOKEN_MAX + 1];
	ProtobufCBinaryData t;

	t = tok("", 0);
	strcpy(after, "x");
	assert_int_equal(client_page_token_decode(&t, after), 0);
	assert_string_equal(after, "");
	t = tok("\x01svc-1", 6);
	assert_int_equal(client_page_token_decode(&t, after), 0);
	assert_string_equal(after, "svc-1");

	/* Not issued here: another version, no id, a space, a control
	 * character or a byte past ASCII, an id too long. */
	t = tok("\x02svc-1", 6);
	assert_int_equal(client_page_token_decode(&t, after), -EINVAL);
	t = tok("\x01", 1);
	assert_int_equal(client_page_token_decode(&t, after), -EINVAL);
	t = tok("\x01svc 1", 6);
	assert_int_equal(client_page_token_decode(&t, after), -EINVAL);
	t = tok("\x01svc\n", 5);
	assert_int_equal(client_page_token_decode(&t, after), -EINVAL);
	t = tok("\x01s\xc3\xa9", 4);
	assert_int_equal(client_page_token_decode(&t, after), -EINVAL);
	t = tok("\x01s\0v", 4);
	assert_int_equal(client_page_token_decode(&t, after), -EINVAL);

	/* The longest id fits; one byte more does not. */
	memset(id, 'a', CATALOG_ID_MAX);
	id[CATALOG_ID_MAX] = '\0';
	t.data = buf;
	t.len = client_page_token_encode(id, buf);
	assert_int_equal(t.len, CLIENT_PAGE_TOKEN_MAX);
	assert_int_equal(client_page_token_decode(&t, after), 0);
	assert_string_equal(after, id);
	buf[CLIENT_PAGE_TOKEN_MAX] = 'a';
	t.len = CLIENT_PAGE_TOKEN_MAX + 1;
	assert_int_equal(client_page_token_decode(&t, after), -EINVAL);
	id[CATALOG_ID_MAX] = 'a';
	id[CATALOG_ID_MAX + 1] = '\0';
	assert_int_equal(client_page_token_encode(id, buf), 0);
	assert_int_equal(client_page_token_encode("", buf), 0);
}

static void
test_order_token(void **state _unused_)
{
	static const uint64_t ids[] = { 1, 42, 0x0102030405060708ULL,
		UINT64_MAX };
	uint8_t buf[CLIENT_ORDER_TOKEN_LEN];
	ProtobufCBinaryData t;
	uint64_t before;

	t = tok("", 0);
	before = 7;
	assert_int_equal(client_order_token_decode(&t, &before), 0);
	assert_int_equal(before, 0);
	for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
		client_order_token_encode(ids[i], buf);
		t = tok(buf, sizeof(buf));
		assert_int_equal(client_order_token_decode(&t, &before), 0);
		assert_true(before == ids[i]);
	}
	client_order_token_encode(42, buf);
	assert_memory_equal(buf, "\x01\0\0\0\0\0\0\0\x2a", sizeof(buf));

	before = 7;
	t = tok("\x01\0\0\0\0\0\0\0\0", 9);     /* no order has id 0 */
	assert_int_equal(client_order_token_decode(&t, &before), -EINVAL);
	t = tok("\x02\0\0\0\0\0\0\0\x2a", 9);
	assert_int_equal(client_order_token_decode(&t, &before), -EINVAL);
	t = tok("\x01\0\0\0\0\0\0\x2a", 8);
	assert_int_equal(client_order_token_decode(&t, &before), -EINVAL);
	t = tok("\x01\0\0\0\0\0\0\0\x2a\0", 10);
	assert_int_equal(client_order_token_decode(&t, &before), -EINVAL);
	assert_int_equal(before, 7);
}

static void
test_login(void **state _unused_)
{
	Twinroute__Client__Login l;
	char pw[MEMBER_PASSWORD_MAX + 2];
	const char *why;

	twinroute__client__login__init(&l);
	why = NULL;
	assert_int_equal(client_check_login(NULL, &why), -EINVAL);
	assert_string_equal(why, "login: missing");
	l.member = unconst("10000001");
	l.password = unconst("secret password");
	assert_int_equal(client_check_login(&l, &why), 0);

	why = NULL;
	l.member = unconst("1000abc1");
	assert_int_equal(client_check_login(&l, &why), -EINVAL);
	assert_non_null(why);
	why = NULL;
	l.member = unconst("");
	assert_int_equal(client_check_login(&l, &why), -EINVAL);
	assert_non_null(why);

	l.member = unconst("10000001");
	memset(pw, 'p', MEMBER_PASSWORD_MAX);
	pw[MEMBER_PASSWORD_MAX] = '\0';
	l.password = pw;
	assert_int_equal(client_check_login(&l, &why), 0);
	pw[MEMBER_PASSWORD_MAX] = 'p';
	pw[MEMBER_PASSWORD_MAX + 1] = '\0';
	assert_int_equal(client_check_login(&l, &why), -EINVAL);
	assert_string_equal(why, "password: at most 1024 bytes");
}

struct fixture {
	char dir[64];
	char path[96];
	struct store *store;
	struct catalog *cat;
};

static void
add_provider(struct catalog *cat, const char *id, bool active)
{
	Twinroute__Provider p;
	struct catalog_err err;

	twinroute__provider__init(&p);
	p.id = unconst(id);
	p.name = unconst("Provider");
	p.email = unconst("orders@example.org");
	p.fax = unconst("+81312345678");
	assert_int_equal(catalog_provider_add(cat, &p, NULL, &err), 0);
	if (!active)
		assert_int_equal(catalog_provider_disable(cat, id, NULL, &err),
		    0);
}

static void
add_service(struct catalog *cat, const char *id, const char *provider,
    int64_t minor, bool active)
{
	Twinroute__Service s;
	Twinroute__Money m;
	struct catalog_err err;
	char *mask[] = { unconst("active") };

	twinroute__service__init(&s);
	twinroute__money__init(&m);
	s.id = unconst(id);
	s.provider_id = unconst(provider);
	s.category = unconst("misc");
	s.name = unconst("Service");
	s.description = unconst("");
	m.minor = minor;
	m.currency = unconst("JPY");
	s.price = &m;
	assert_int_equal(catalog_service_add(cat, &s, NULL, &err), 0);
	if (!active) {
		s.active = false;
		assert_int_equal(catalog_service_update(cat, id, &s, mask, 1,
		    NULL, &err), 0);
	}
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_opts opts;

	if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "client_check") <
	    0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	opts = (struct store_opts){ .path = f->path, .map_size = 8u << 20 };
	if (store_open(&opts, NULL, &f->store) < 0 ||
	    catalog_open(f->store, &f->cat) < 0)
		return -1;
	add_provider(f->cat, "p", true);
	add_provider(f->cat, "off", false);
	add_service(f->cat, "std", "p", 1500, true);
	add_service(f->cat, "free", "p", 0, true);
	add_service(f->cat, "dear", "p", INT64_C(1000000000000), true);
	add_service(f->cat, "paused", "p", 100, false);
	add_service(f->cat, "orphaned", "off", 100, true);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int r;

	f->cat = catalog_free(f->cat);
	f->store = store_close(f->store);
	r = tmpdir_remove(f->dir);
	free(f);
	return r;
}

/* Check po; the error code on failure, 0 with the amount on success. */
static int
place(struct fixture *f, Twinroute__Client__PlaceOrder *po,
    uint32_t quantity_max, int64_t *ret_amount)
{
	const Twinroute__Service *svc = NULL;
	const char *why = NULL;
	int code = 0, r;

	r = client_check_place_order(f->cat, po, quantity_max, &svc,
	    ret_amount, &code, &why);
	if (r < 0) {
		assert_non_null(why);
		assert_int_not_equal(code, 0);
		assert_null(svc);
		return code;
	}
	assert_non_null(svc);
	assert_string_equal(svc->id, po->service_id);
	return 0;
}

static void
test_place_order(void **state)
{
	struct fixture *f = *state;
	Twinroute__Client__PlaceOrder po;
	char note[502];
	int64_t amount = -1;

	twinroute__client__place_order__init(&po);
	po.service_id = unconst("std");
	po.quantity = 3;
	po.idempotency_key = unconst("key-1");
	po.note = unconst("Ring twice, please: \xe6\x9d\xb1\xe4\xba\xac.");
	assert_int_equal(place(f, &po, 100, &amount), 0);
	assert_int_equal(amount, 4500);

	/* The idempotency key comes first: 1 to 64 printable ASCII. */
	po.service_id = unconst("nothing");
	po.idempotency_key = unconst("");
	assert_int_equal(place(f, &po, 100, &amount), E(BAD_REQUEST));
	po.idempotency_key = unconst("tab\there");
	assert_int_equal(place(f, &po, 100, &amount), E(BAD_REQUEST));
	po.idempotency_key = unconst("k");
	assert_int_equal(place(f, &po, 100, &amount), E(NOT_FOUND));

	/* Services one cannot order. */
	po.service_id = unconst("paused");
	assert_int_equal(place(f, &po, 100, &amount), E(SERVICE_UNAVAILABLE));
	po.service_id = unconst("orphaned");
	assert_int_equal(place(f, &po, 100, &amount), E(SERVICE_UNAVAILABLE));

	/* Quantities, and amounts that are zero or do not fit. */
	po.service_id = unconst("std");
	po.quantity = 0;
	assert_int_equal(place(f, &po, 100, &amount), E(BAD_QUANTITY));
	po.quantity = 101;
	assert_int_equal(place(f, &po, 100, &amount), E(BAD_QUANTITY));
	po.quantity = 100;
	assert_int_equal(place(f, &po, 100, &amount), 0);
	assert_int_equal(amount, 150000);
	po.service_id = unconst("free");
	po.quantity = 1;
	assert_int_equal(place(f, &po, 100, &amount), E(BAD_QUANTITY));
	po.service_id = unconst("dear");
	po.quantity = 9000000;
	assert_int_equal(place(f, &po, UINT32_MAX, &amount), 0);
	assert_true(amount == INT64_C(9000000000000000000));
	po.quantity = 10000000;
	assert_int_equal(place(f, &po, UINT32_MAX, &amount), E(BAD_QUANTITY));

	/* The note: at most 500 bytes of UTF-8. */
	po.service_id = unconst("std");
	po.quantity = 1;
	memset(note, 'n', 500);
	note[500] = '\0';
	po.note = note;
	assert_int_equal(place(f, &po, 100, &amount), 0);
	note[500] = 'n';
	note[501] = '\0';
	assert_int_equal(place(f, &po, 100, &amount), E(BAD_REQUEST));
	po.note = unconst("overlong \xc0\xaf slash");
	assert_int_equal(place(f, &po, 100, &amount), E(BAD_REQUEST));
	po.note = unconst("cut \xe6\x9d");
	assert_int_equal(place(f, &po, 100, &amount), E(BAD_REQUEST));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_token),
		cmocka_unit_test(test_order_token),
		cmocka_unit_test(test_login),
		cmocka_unit_test_setup_teardown(test_place_order, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
