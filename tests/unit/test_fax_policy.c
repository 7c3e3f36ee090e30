/* SPDX-License-Identifier: ISC */
/* test_fax_policy.c -- when a fax job is tried again, and when given up */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fax/policy.h"

#define MIN_MS 60000ull

static struct fax_policy
policy(void)
{
	struct fax_policy p;

	fax_policy_defaults(&p);
	p.jitter_pct = 0;
	return p;
}

static enum fax_verdict
call(const struct fax_policy *p, struct fax_job_counts *c,
    enum class1_result res, bool dialed, bool carrier, size_t pages,
    uint64_t now, uint64_t *next, const char **why)
{
	struct fax_call_outcome o = {
		.result = res,
		.dialed = dialed,
		.carrier = carrier,
		.pages = pages,
		.pages_wanted = 1,
	};

	return fax_policy_decide(p, c, &o, now, 12345, next, why);
}

static void
test_defaults_are_hylafax(void **state)
{
	struct fax_policy p;

	(void)state;
	fax_policy_defaults(&p);
	assert_int_equal(p.busy_s, 180);
	assert_int_equal(p.no_answer_s, 300);
	assert_int_equal(p.no_carrier_s, 300);
	assert_int_equal(p.protocol_s, 60);
	assert_int_equal(p.max_dials, 12);
	assert_int_equal(p.max_tries, 3);
	assert_int_equal(p.kill_s, 3 * 3600);
}

static void
test_sent_only_with_confirmed_page(void **state)
{
	struct fax_policy p = policy();
	struct fax_job_counts c = { 0 };
	uint64_t next = 0;
	const char *why;

	(void)state;
	assert_int_equal(call(&p, &c, CLASS1_OK, true, true, 1, 1000, &next,
	    &why), FAX_VERDICT_SENT);
	/* OK with no page confirmed is not a sent fax. */
	c = (struct fax_job_counts){ 0 };
	assert_int_equal(call(&p, &c, CLASS1_OK, true, true, 0, 1000, &next,
	    &why), FAX_VERDICT_RETRY);
	assert_string_equal(why, "protocol");
	assert_int_equal(next, 1000 + MIN_MS);
}

static void
test_delays_by_result(void **state)
{
	struct fax_policy p = policy();
	struct fax_job_counts c = { 0 };
	uint64_t next = 0;
	const char *why;

	(void)state;
	assert_int_equal(call(&p, &c, CLASS1_BUSY, true, false, 0, 0, &next,
	    &why), FAX_VERDICT_RETRY);
	assert_int_equal(next, 3 * MIN_MS);
	assert_int_equal(c.dials, 1);
	assert_int_equal(c.tries, 0);
	assert_int_equal(call(&p, &c, CLASS1_NO_ANSWER, true, false, 0, 0,
	    &next, &why), FAX_VERDICT_RETRY);
	assert_int_equal(next, 5 * MIN_MS);
	assert_int_equal(call(&p, &c, CLASS1_PROTOCOL_ERROR, true, true, 0, 0,
	    &next, &why), FAX_VERDICT_RETRY);
	assert_int_equal(next, 1 * MIN_MS);
	assert_int_equal(c.tries, 1);
	assert_int_equal(c.dials, 3);
}

static void
test_no_carrier_twice_fails(void **state)
{
	struct fax_policy p = policy();
	struct fax_job_counts c = { 0 };
	uint64_t next = 0;
	const char *why;

	(void)state;
	assert_int_equal(call(&p, &c, CLASS1_NO_CARRIER, true, false, 0, 0,
	    &next, &why), FAX_VERDICT_RETRY);
	assert_int_equal(next, 5 * MIN_MS);
	assert_int_equal(call(&p, &c, CLASS1_NO_CARRIER, true, false, 0, 0,
	    &next, &why), FAX_VERDICT_FAIL);
	assert_string_equal(why, "no carrier again");
}

static void
test_limits(void **state)
{
	struct fax_policy p = policy();
	struct fax_job_counts c = { 0 };
	uint64_t next = 0;
	const char *why;
	int i;

	(void)state;
	/* 12 dials at most. */
	for (i = 1; i < 12; i++)
		assert_int_equal(call(&p, &c, CLASS1_BUSY, true, false, 0, 0,
		    &next, &why), FAX_VERDICT_RETRY);
	assert_int_equal(call(&p, &c, CLASS1_BUSY, true, false, 0, 0, &next,
	    &why), FAX_VERDICT_FAIL);
	assert_string_equal(why, "too many dials");
	/* 3 calls a fax answered at most. */
	c = (struct fax_job_counts){ 0 };
	for (i = 1; i < 3; i++)
		assert_int_equal(call(&p, &c, CLASS1_PAGE_REJECTED, true, true,
		    0, 0, &next, &why), FAX_VERDICT_RETRY);
	assert_int_equal(call(&p, &c, CLASS1_TRAINING_FAILED, true, true, 0, 0,
	    &next, &why), FAX_VERDICT_FAIL);
	assert_string_equal(why, "too many tries");
}

static void
test_wrong_recipient_fails_at_once(void **state)
{
	struct fax_policy p = policy();
	struct fax_job_counts c = { 0 };
	uint64_t next = 0;
	const char *why;

	(void)state;
	assert_int_equal(call(&p, &c, CLASS1_WRONG_RECIPIENT, true, true, 0, 0,
	    &next, &why), FAX_VERDICT_FAIL);
	assert_string_equal(why, "wrong recipient");
}

static void
test_modem_fault_counts_no_dial(void **state)
{
	struct fax_policy p = policy();
	struct fax_job_counts c = { 0 };
	struct fax_call_outcome o = {
		.result = CLASS1_TIMEOUT,
		.modem_fault = true,
		.pages_wanted = 1,
	};
	uint64_t next = 0;
	const char *why;

	(void)state;
	for (int i = 0; i < 50; i++)
		assert_int_equal(fax_policy_decide(&p, &c, &o, 0, 1, &next,
		    &why), FAX_VERDICT_RETRY);
	assert_int_equal(c.dials, 0);
	assert_string_equal(why, "modem");
	assert_int_equal(next, p.modem_s * 1000ull);
	/* A timeout after the dial is the line's: no answer. */
	o.modem_fault = false;
	o.dialed = true;
	assert_int_equal(fax_policy_decide(&p, &c, &o, 0, 1, &next, &why),
	    FAX_VERDICT_RETRY);
	assert_int_equal(c.dials, 1);
	assert_string_equal(why, "no answer");
}

static void
test_kill_time(void **state)
{
	struct fax_policy p = policy();
	struct fax_job_counts c = { .created_ms = 0 };
	uint64_t next = 0;
	const char *why;

	(void)state;
	assert_false(fax_policy_killed(&p, 0, 3 * 3600 * 1000ull - 1));
	assert_true(fax_policy_killed(&p, 0, 3 * 3600 * 1000ull));
	/* A retry that would land past the kill time fails now. */
	assert_int_equal(call(&p, &c, CLASS1_NO_ANSWER, true, false, 0,
	    3 * 3600 * 1000ull - 4 * MIN_MS, &next, &why), FAX_VERDICT_FAIL);
	assert_string_equal(why, "kill time");
}

static void
test_jitter_bounds(void **state)
{
	struct fax_policy p;
	uint64_t lo = UINT64_MAX, hi = 0;

	(void)state;
	fax_policy_defaults(&p);
	for (uint32_t r = 0; r < 100000; r += 7) {
		uint64_t v = fax_policy_jitter(&p, 100, r * 2654435761u);

		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	assert_true(lo >= 80000 && hi <= 120000);
	/* It does spread. */
	assert_true(lo < 85000 && hi > 115000);
	p.jitter_pct = 0;
	assert_int_equal(fax_policy_jitter(&p, 100, 999), 100000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_hylafax),
		cmocka_unit_test(test_sent_only_with_confirmed_page),
		cmocka_unit_test(test_delays_by_result),
		cmocka_unit_test(test_no_carrier_twice_fails),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_wrong_recipient_fails_at_once),
		cmocka_unit_test(test_modem_fault_counts_no_dial),
		cmocka_unit_test(test_kill_time),
		cmocka_unit_test(test_jitter_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
