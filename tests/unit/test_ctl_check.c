/* SPDX-License-Identifier: ISC */
/* test_ctl_check.c -- the control protocol's request checks in the daemon */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/macro.h"
#include "ctl/ctl.h"
#include "ctl/ctl_check.h"

static void
test_request(void **state _unused_)
{
	Twinroute__Ctl__CtlRequest req;
	char msg[128];

	twinroute__ctl__ctl_request__init(&req);
	req.version = CTL_PROTO_VERSION;
	req.command = CTL_STATUS;
	assert_int_equal(ctl_check_request(&req, msg, sizeof(msg)), 0);
	req.command = CTL__COUNT - 1;
	assert_int_equal(ctl_check_request(&req, msg, sizeof(msg)), 0);

	req.command = CTL__COUNT;
	assert_int_equal(ctl_check_request(&req, msg, sizeof(msg)), -ENOSYS);
	assert_non_null(strstr(msg, "unknown command"));
	req.command = UINT32_MAX;
	assert_int_equal(ctl_check_request(&req, msg, sizeof(msg)), -ENOSYS);

	/* The version first: another one closes the connection. */
	req.version = CTL_PROTO_VERSION + 1;
	assert_int_equal(ctl_check_request(&req, msg, sizeof(msg)), -EPROTO);
	assert_non_null(strstr(msg, "not supported"));
	req.version = 0;
	req.command = CTL_STATUS;
	assert_int_equal(ctl_check_request(&req, msg, sizeof(msg)), -EPROTO);
}

static void
test_order_id(void **state _unused_)
{
	static const struct {
		const char *s;
		uint64_t id;            /* 0: refused */
	} cases[] = {
		{ "42", 42 },
		{ "0x2a", 42 },
		{ "042", 42 },          /* decimal, not C's octal */
		{ "0X2A", 42 },
		{ "000000000000002a", 42 },
		{ "ffffffffffffffff", UINT64_MAX },
		{ "18446744073709551615", UINT64_MAX },
		{ "0000000000000042", 0x42 }, /* 16 digits: always hex */
		{ "", 0 },
		{ "0", 0 },
		{ "0000000000000000", 0 },
		{ "-1", 0 },
		{ "+1", 0 },
		{ " 1", 0 },
		{ " -1", 0 },           /* strtoull would take it */
		{ "0x-1", 0 },
		{ "1 ", 0 },
		{ "12abc", 0 },
		{ "00000000000000zz", 0 },
		{ "18446744073709551616", 0 },
		{ "0x", 0 },
	};
	uint64_t id;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		id = 7;
		if (cases[i].id == 0) {
			assert_int_equal(ctl_order_id_parse(cases[i].s, &id),
			    -EINVAL);
			assert_true(id == 7);
		} else {
			assert_int_equal(ctl_order_id_parse(cases[i].s, &id), 0);
			assert_true(id == cases[i].id);
		}
	}
}

static void
test_backup_dir(void **state _unused_)
{
	char path[CTL_BACKUP_DIR_MAX + 2];

	assert_null(ctl_check_backup_dir("/var/backups/twinroute/today"));
	assert_null(ctl_check_backup_dir("/"));
	assert_non_null(ctl_check_backup_dir(""));
	assert_non_null(ctl_check_backup_dir("backups/today"));
	assert_non_null(ctl_check_backup_dir("/var/back\nups"));
	assert_non_null(ctl_check_backup_dir("/var/back\x7fups"));
	path[0] = '/';
	memset(path + 1, 'd', CTL_BACKUP_DIR_MAX - 1);
	path[CTL_BACKUP_DIR_MAX] = '\0';
	assert_null(ctl_check_backup_dir(path));
	path[CTL_BACKUP_DIR_MAX] = 'd';
	path[CTL_BACKUP_DIR_MAX + 1] = '\0';
	assert_non_null(ctl_check_backup_dir(path));
}

/* A self-signed certificate, DER; *ret_len its length. Free with free(). */
static uint8_t *
make_cert(size_t *ret_len)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	uint8_t *der = NULL, *p;
	int len;

	assert_non_null(key);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"provider", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	len = i2d_X509(x, NULL);
	assert_true(len > 0);
	der = malloc((size_t)len + 1);
	assert_non_null(der);
	p = der;
	assert_int_equal(i2d_X509(x, &p), len);
	X509_free(x);
	EVP_PKEY_free(key);
	*ret_len = (size_t)len;
	return der;
}

static void
test_cert(void **state _unused_)
{
	uint8_t *der, *big;
	size_t len;

	der = make_cert(&len);
	assert_null(ctl_check_cert(false, der, len));
	assert_null(ctl_check_cert(true, NULL, 0));

	assert_string_equal(ctl_check_cert(true, der, len),
	    "a certificate and remove: one or the other");
	assert_string_equal(ctl_check_cert(false, NULL, 0),
	    "cert_der: missing");
	/* One whole certificate, nothing after it, nothing cut off. */
	der[len] = 0;
	assert_string_equal(ctl_check_cert(false, der, len + 1),
	    "cert_der: not one DER X.509 certificate");
	assert_string_equal(ctl_check_cert(false, der, len - 1),
	    "cert_der: not one DER X.509 certificate");
	assert_string_equal(ctl_check_cert(false, der + 1, len - 1),
	    "cert_der: not one DER X.509 certificate");
	big = calloc(1, CTL_CERT_MAX + 1);
	assert_non_null(big);
	assert_string_equal(ctl_check_cert(false, big, CTL_CERT_MAX + 1),
	    "cert_der: larger than 64 KiB");
	free(big);
	free(der);
}

static void
test_card_check_and_ledger(void **state _unused_)
{
	Twinroute__Ctl__CardCheck cc;
	Twinroute__Ctl__LedgerQuery lq;
	uint64_t from = 7, to = 7;

	twinroute__ctl__card_check__init(&cc);
	assert_non_null(ctl_check_card_check(NULL));
	assert_non_null(ctl_check_card_check(&cc));
	cc.amount = 1200;
	cc.currency = unconst("JPY");
	assert_null(ctl_check_card_check(&cc));
	cc.amount = -1;
	assert_non_null(ctl_check_card_check(&cc));
	cc.amount = 1;
	cc.currency = unconst("JPYX");
	assert_non_null(ctl_check_card_check(&cc));

	assert_null(ctl_check_ledger(NULL, &from, &to));
	assert_true(from == 0 && to == 0);
	twinroute__ctl__ledger_query__init(&lq);
	lq.from_unix_ms = 1000;
	assert_null(ctl_check_ledger(&lq, &from, &to));
	assert_true(from == 1000 && to == 0);
	lq.to_unix_ms = 2000;
	assert_null(ctl_check_ledger(&lq, &from, &to));
	assert_true(from == 1000 && to == 2000);
	from = to = 7;
	lq.to_unix_ms = 1000;
	assert_non_null(ctl_check_ledger(&lq, &from, &to));
	lq.to_unix_ms = 999;
	assert_non_null(ctl_check_ledger(&lq, &from, &to));
	assert_true(from == 7 && to == 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_order_id),
		cmocka_unit_test(test_backup_dir),
		cmocka_unit_test(test_cert),
		cmocka_unit_test(test_card_check_and_ledger),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
