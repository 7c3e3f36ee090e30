/* SPDX-License-Identifier: ISC */
/* test_envelope.c -- unit tests for enrolment envelopes (X25519, HKDF,
 * AES-256-GCM) */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "vault.pb-c.h"
#include "vault/envelope.h"

struct keys {
	EVP_PKEY *priv;
	uint8_t pub[32];
};

static void
keys_new(struct keys *k)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	size_t len = sizeof(k->pub);

	assert_non_null(c);
	k->priv = NULL;
	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	assert_int_equal(EVP_PKEY_keygen(c, &k->priv), 1);
	assert_int_equal(EVP_PKEY_get_raw_public_key(k->priv, k->pub, &len), 1);
	assert_int_equal(len, 32);
	EVP_PKEY_CTX_free(c);
}

static struct card_input
test_card(void)
{
	struct card_input in;

	memset(&in, 0, sizeof(in));
	snprintf(in.number, sizeof(in.number), "4111111111111111");
	in.exp_month = 7;
	in.exp_year = 2031;
	snprintf(in.holder, sizeof(in.holder), "Zo\xc3\xab Example");
	return in;
}

static bool
contains(const uint8_t *buf, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(buf + i, needle, n) == 0)
			return true;
	}
	return false;
}

static void
test_roundtrip(void **state)
{
	struct keys k;
	struct card_input in = test_card(), out;
	uint8_t env[ENVELOPE_MAX], env2[ENVELOPE_MAX];
	size_t len = 0, len2 = 0;

	(void)state;
	keys_new(&k);
	assert_int_equal(
	    envelope_seal(k.pub, "M1001", &in, env, sizeof(env), &len), 0);
	assert_true(len > 32 + 12 + 16 && len <= ENVELOPE_MAX);
	assert_false(contains(env, len, "4111111111111111"));
	assert_false(contains(env, len, "Example"));

	memset(&out, 0x5a, sizeof(out));
	assert_int_equal(envelope_open(k.priv, "M1001", env, len, &out), 0);
	assert_string_equal(out.number, in.number);
	assert_string_equal(out.holder, in.holder);
	assert_int_equal(out.exp_month, 7);
	assert_int_equal(out.exp_year, 2031);

	/* A fresh ephemeral key and nonce every time. */
	assert_int_equal(
	    envelope_seal(k.pub, "M1001", &in, env2, sizeof(env2), &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_not_equal(env, env2, len);
	assert_int_equal(envelope_open(k.priv, "M1001", env2, len2, &out), 0);
	EVP_PKEY_free(k.priv);
}

static void
test_wrong_member_or_key(void **state)
{
	struct keys k, other;
	struct card_input in = test_card(), out, before;
	uint8_t env[ENVELOPE_MAX];
	size_t len = 0;

	(void)state;
	keys_new(&k);
	keys_new(&other);
	assert_int_equal(
	    envelope_seal(k.pub, "M1001", &in, env, sizeof(env), &len), 0);
	memset(&out, 0x5a, sizeof(out));
	before = out;
	assert_int_equal(
	    envelope_open(k.priv, "M1002", env, len, &out), -EBADMSG);
	assert_int_equal(
	    envelope_open(k.priv, "M100", env, len, &out), -EBADMSG);
	assert_int_equal(
	    envelope_open(other.priv, "M1001", env, len, &out), -EBADMSG);
	assert_memory_equal(&out, &before, sizeof(out));
	assert_int_equal(envelope_open(k.priv, "M1001", env, len, &out), 0);
	EVP_PKEY_free(k.priv);
	EVP_PKEY_free(other.priv);
}

static void
test_altered(void **state)
{
	struct keys k;
	struct card_input in = test_card(), out, before;
	uint8_t env[ENVELOPE_MAX], bad[ENVELOPE_MAX];
	size_t len = 0;

	(void)state;
	keys_new(&k);
	assert_int_equal(
	    envelope_seal(k.pub, "M1001", &in, env, sizeof(env), &len), 0);
	memset(&out, 0x5a, sizeof(out));
	before = out;
	/* Every byte, every position: nothing opens. */
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit += 3) {
			int r;

			memcpy(bad, env, len);
			bad[i] ^= (uint8_t)(1u << bit);
			r = envelope_open(k.priv, "M1001", bad, len, &out);
			if (r != -EBADMSG)
				fail_msg("byte %zu bit %u: %d", i, bit, r);
		}
	}
	/* Every truncation. */
	for (size_t n = 0; n < len; n++)
		assert_int_equal(
		    envelope_open(k.priv, "M1001", env, n, &out), -EBADMSG);
	/* Trailing garbage changes the ciphertext field's framing or adds
	 * an unknown field; neither opens to something else. */
	memcpy(bad, env, len);
	bad[len] = 0;
	assert_int_not_equal(
	    envelope_open(k.priv, "M1001", bad, len + 1, &out), 0);
	assert_memory_equal(&out, &before, sizeof(out));
	EVP_PKEY_free(k.priv);
}

static void
test_bad_input(void **state)
{
	Twinroute__Vault__CardEnvelope *e;
	struct keys k;
	struct card_input in = test_card(), out;
	uint8_t env[ENVELOPE_MAX], buf[ENVELOPE_MAX];
	uint8_t low[32] = {0};
	size_t len = 0, blen;

	(void)state;
	keys_new(&k);
	/* Output too small. */
	assert_int_equal(
	    envelope_seal(k.pub, "M1001", &in, env, 40, &len), -ENOBUFS);
	/* No member, NULLs. */
	assert_int_equal(
	    envelope_seal(k.pub, "", &in, env, sizeof(env), &len), -EINVAL);
	assert_int_equal(
	    envelope_seal(k.pub, NULL, &in, env, sizeof(env), &len), -EINVAL);
	assert_int_equal(
	    envelope_seal(NULL, "M1", &in, env, sizeof(env), &len), -EINVAL);
	/* An all-zero (low-order) public key gives no shared secret. */
	assert_int_equal(
	    envelope_seal(low, "M1", &in, env, sizeof(env), &len), -EINVAL);

	/* Another version is refused. */
	assert_int_equal(
	    envelope_seal(k.pub, "M1", &in, env, sizeof(env), &len), 0);
	e = twinroute__vault__card_envelope__unpack(NULL, len, env);
	assert_non_null(e);
	e->version = 2;
	blen = twinroute__vault__card_envelope__pack(e, buf);
	twinroute__vault__card_envelope__free_unpacked(e, NULL);
	assert_int_equal(
	    envelope_open(k.priv, "M1", buf, blen, &out), -EBADMSG);
	assert_int_equal(
	    envelope_open(k.priv, "M1", env, ENVELOPE_MAX + 1, &out), -EBADMSG);
	assert_int_equal(envelope_open(k.priv, "M1", env, len, &out), 0);
	EVP_PKEY_free(k.priv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_wrong_member_or_key),
	    cmocka_unit_test(test_altered),
	    cmocka_unit_test(test_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
