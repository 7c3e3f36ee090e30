/* SPDX-License-Identifier: ISC */
/* test_member.c -- member checks, scrypt hashes, member records in the store */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/macro.h"
#include "member/member.h"

static void
test_checks(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_int_equal(member_check_number("100234", &why), 0);
	assert_int_equal(member_check_number("123", &why), -EINVAL);
	assert_int_equal(member_check_number("12345678901234567", &why), -EINVAL);
	assert_int_equal(member_check_number("12a456", &why), -EINVAL);
	assert_non_null(strstr(why, "digits"));
	assert_int_equal(member_check_email("ann@example.org", &why), 0);
	assert_int_equal(member_check_email("ann@example", &why), -EINVAL);
	assert_int_equal(member_check_email("a b@example.org", &why), -EINVAL);
	assert_int_equal(member_check_email("@example.org", &why), -EINVAL);
	assert_int_equal(member_check_email("a@b@example.org", &why), -EINVAL);
	assert_int_equal(member_check_name("Ann Lee", &why), 0);
	assert_int_equal(member_check_name("", &why), -EINVAL);
	assert_int_equal(member_check_name("tab\there", &why), -EINVAL);
	assert_int_equal(member_check_password("correct horse", &why), 0);
	assert_int_equal(member_check_password("short", &why), -EINVAL);
}

static void
test_hash_verify(void **state)
{
	char h1[MEMBER_HASH_MAX], h2[MEMBER_HASH_MAX];

	(void)state;
	assert_int_equal(member_password_hash("correct horse", h1), 0);
	assert_int_equal(member_password_hash("correct horse", h2), 0);
	assert_non_null(strstr(h1, "$scrypt$ln=15,r=8,p=1$"));
	/* Salted: the same password hashes differently. */
	assert_string_not_equal(h1, h2);
	/* The password itself is not in the hash. */
	assert_null(strstr(h1, "horse"));
	assert_int_equal(member_password_verify("correct horse", h1), 1);
	assert_int_equal(member_password_verify("correct horse", h2), 1);
	assert_int_equal(member_password_verify("correct hors", h1), 0);
	assert_int_equal(member_password_verify("", h1), 0);
}

static void
test_bad_hashes(void **state)
{
	char h[MEMBER_HASH_MAX], bad[MEMBER_HASH_MAX + 16];

	(void)state;
	assert_int_equal(member_password_verify("x", ""), -EINVAL);
	assert_int_equal(member_password_verify("x", "$2b$10$abc"), -EINVAL);
	assert_int_equal(member_password_verify("x",
	    "$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA"), -EINVAL);
	assert_int_equal(member_password_verify("x",
	    "$scrypt$ln=15,r=8,p=1$nosalthash"), -EINVAL);
	/* A hash cut short no longer decodes. */
	assert_int_equal(member_password_hash("correct horse", h), 0);
	snprintf(bad, sizeof(bad), "%.*s", (int)strlen(h) - 6, h);
	assert_int_equal(member_password_verify("correct horse", bad), -EINVAL);
}

struct iter_acc {
	char seen[256];
};

static int
collect(const Twinroute__Store__MemberRecord *rec, void *arg)
{
	struct iter_acc *acc = arg;

	strcat(acc->seen, rec->number);
	strcat(acc->seen, " ");
	return 0;
}

static void
test_records(void **state)
{
	char dir[] = "/tmp/test_member.XXXXXX";
	char path[64], cmd[128];
	struct store_opts opts = { .map_size = 1u << 24 };
	struct store *s = NULL;
	struct store_txn *txn = NULL;
	Twinroute__Store__MemberRecord rec = TWINROUTE__STORE__MEMBER_RECORD__INIT;
	Twinroute__Store__MemberRecord *got = NULL;
	struct iter_acc acc = { "" };
	const char *numbers[] = { "300003", "100001", "200002" };

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/broker", dir);
	opts.path = path;
	assert_int_equal(store_open(&opts, NULL, &s), 0);
	assert_int_equal(store_txn_begin(s, 0, &txn), 0);
	for (size_t i = 0; i < 3; i++) {
		rec.number = unconst(numbers[i]);
		rec.name = unconst("Ann");
		rec.email = unconst("ann@example.org");
		rec.password_hash = unconst("$scrypt$x");
		rec.active = true;
		assert_int_equal(member_put(txn, &rec), 0);
	}
	assert_int_equal(store_txn_commit(txn, NULL), 0);

	assert_int_equal(store_txn_begin(s, STORE_RDONLY, &txn), 0);
	assert_int_equal(member_get(txn, "200002", &got), 0);
	assert_string_equal(got->number, "200002");
	assert_true(got->active);
	twinroute__store__member_record__free_unpacked(got, NULL);
	assert_int_equal(member_get(txn, "999999", &got), -ENOENT);
	assert_int_equal(member_iter(txn, collect, &acc), 0);
	assert_string_equal(acc.seen, "100001 200002 300003 ");
	store_txn_abort(txn);
	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_bad_hashes),
		cmocka_unit_test(test_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
