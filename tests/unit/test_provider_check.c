/* SPDX-License-Identifier: ISC */
/* test_provider_check.c -- the provider protocol's Report check and service upserts */
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
#include "common/errcode.h"
#include "common/macro.h"
#include "provider/provider_check.h"
#include "store/store.h"

#include "tmpdir.h"

#define E(x) TWINROUTE__ERROR_CODE__ERR_##x
#define ST(x) TWINROUTE__ORDER_STATE__ORDER_##x
#define K(x) TWINROUTE__PROVIDER__REPORT_KIND__REPORT_##x

static int
report(Twinroute__Provider__ReportKind kind, const char *reason,
    Twinroute__OrderState *ret_to)
{
	Twinroute__Provider__Report rp;
	const char *what = NULL, *why = NULL;
	int r;

	twinroute__provider__report__init(&rp);
	rp.order_id = 42;
	rp.kind = kind;
	rp.reason = unconst(reason);
	r = provider_check_report(&rp, ret_to, &what, &why);
	if (r < 0)
		assert_non_null(why);
	else
		assert_non_null(what);
	return r;
}

static void
test_report(void **state _unused_)
{
	Twinroute__OrderState to = ST(STATE_UNSPECIFIED);
	char reason[PROVIDER_REASON_MAX + 2];

	assert_int_equal(report(K(ACCEPTED), "", &to), 0);
	assert_int_equal(to, ST(ACCEPTED));
	assert_int_equal(report(K(FULFILLED), "", &to), 0);
	assert_int_equal(to, ST(FULFILLED));
	assert_int_equal(report(K(CHARGED), "", &to), 0);
	assert_int_equal(to, ST(CHARGED));
	assert_int_equal(report(K(REJECTED), "Fully booked", &to), 0);
	assert_int_equal(to, ST(REJECTED));

	to = ST(STATE_UNSPECIFIED);
	assert_int_equal(report(K(UNSPECIFIED), "", &to), -EINVAL);
	assert_int_equal(report((Twinroute__Provider__ReportKind)99, "", &to),
	    -EINVAL);
	assert_int_equal(report(K(REJECTED), "", &to), -EINVAL);
	assert_int_equal(to, ST(STATE_UNSPECIFIED));

	memset(reason, 'r', PROVIDER_REASON_MAX);
	reason[PROVIDER_REASON_MAX] = '\0';
	assert_int_equal(report(K(REJECTED), reason, &to), 0);
	reason[PROVIDER_REASON_MAX] = 'r';
	reason[PROVIDER_REASON_MAX + 1] = '\0';
	assert_int_equal(report(K(REJECTED), reason, &to), -EINVAL);
	assert_int_equal(report(K(ACCEPTED), reason, &to), -EINVAL);
}

struct fixture {
	char dir[64];
	char path[96];
	struct store *store;
	struct catalog *cat;
};

static void
add_provider(struct catalog *cat, const char *id)
{
	Twinroute__Provider p;
	struct catalog_err err;

	twinroute__provider__init(&p);
	p.id = unconst(id);
	p.name = unconst("Provider");
	p.email = unconst("orders@example.org");
	p.fax = unconst("+81312345678");
	assert_int_equal(catalog_provider_add(cat, &p, NULL, &err), 0);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_opts opts;

	if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "provider_check") <
	    0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	opts = (struct store_opts){ .path = f->path, .map_size = 8u << 20 };
	if (store_open(&opts, NULL, &f->store) < 0 ||
	    catalog_open(f->store, &f->cat) < 0)
		return -1;
	add_provider(f->cat, "mine");
	add_provider(f->cat, "theirs");
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

struct svc {
	Twinroute__Service s;
	Twinroute__Money m;
};

static Twinroute__Service *
svc(struct svc *v, const char *id, const char *provider, const char *name,
    const char *currency)
{
	twinroute__service__init(&v->s);
	twinroute__money__init(&v->m);
	v->s.id = unconst(id);
	v->s.provider_id = unconst(provider);
	v->s.category = unconst("misc");
	v->s.name = unconst(name);
	v->s.description = unconst("");
	v->m.minor = 700;
	v->m.currency = unconst(currency);
	v->s.price = &v->m;
	v->s.active = true;
	return &v->s;
}

static int
upsert(struct fixture *f, const char *provider, const Twinroute__Service *in,
    bool *ret_added, struct catalog_err *err)
{
	uint64_t seq = 0;
	int code = 0, r;

	r = provider_service_upsert(f->cat, provider, in, &seq, ret_added,
	    &code, err);
	if (r < 0) {
		assert_true(err->msg[0] != '\0');
		return code;
	}
	assert_true(seq > 0);
	return 0;
}

static void
test_upsert(void **state)
{
	struct fixture *f = *state;
	struct catalog_err err;
	struct svc v;
	bool added = false;
	const Twinroute__Service *s;

	/* Added as the session's provider's, whatever it names. */
	assert_int_equal(upsert(f, "mine", svc(&v, "s1", "theirs", "Tea",
	    "JPY"), &added, &err), 0);
	assert_true(added);
	s = catalog_service(f->cat, "s1");
	assert_non_null(s);
	assert_string_equal(s->provider_id, "mine");

	/* Updated in place. */
	assert_int_equal(upsert(f, "mine", svc(&v, "s1", "", "Green tea",
	    "JPY"), &added, &err), 0);
	assert_false(added);
	assert_string_equal(catalog_service(f->cat, "s1")->name, "Green tea");

	/* Another provider's service: refused, unchanged. */
	assert_int_equal(upsert(f, "theirs", svc(&v, "s1", "theirs", "Taken",
	    "JPY"), &added, &err), E(FORBIDDEN));
	assert_string_equal(err.msg,
	    "that service id belongs to another provider");
	assert_string_equal(catalog_service(f->cat, "s1")->name, "Green tea");

	/* A field the catalog refuses is the request's fault, not the
	 * store's: on an add and on an update. */
	assert_int_equal(upsert(f, "mine", svc(&v, "s2", "", "Coffee", "yen"),
	    &added, &err), E(BAD_REQUEST));
	assert_null(catalog_service(f->cat, "s2"));
	assert_int_equal(upsert(f, "mine", svc(&v, "s1", "", "Bell\a",
	    "JPY"), &added, &err), E(BAD_REQUEST));
	assert_int_equal(upsert(f, "mine", svc(&v, "bad id", "", "Coffee",
	    "JPY"), &added, &err), E(BAD_REQUEST));

	/* No service, or one without an id. */
	assert_int_equal(upsert(f, "mine", NULL, &added, &err),
	    E(BAD_REQUEST));
	assert_int_equal(upsert(f, "mine", svc(&v, "", "", "Coffee", "JPY"),
	    &added, &err), E(BAD_REQUEST));
	assert_string_equal(err.msg, "upsert: a service with an id is needed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report),
		cmocka_unit_test_setup_teardown(test_upsert, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
