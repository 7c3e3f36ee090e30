/* SPDX-License-Identifier: ISC */
/* vault_share.c -- Shamir shares of the KEK (libgfshare) and their typable text
 * form */

/*
 * A share as text: "tr1-" then lowercase base32 (RFC 4648 alphabet, no
 * padding) of
 *
 *     vault id (8) | share index (1) | share (32) | checksum (4)
 *
 * in groups of four separated by dashes, where the checksum is the first
 * four bytes of SHA-256("tr1" | vault id | index | share). 45 bytes make
 * exactly 72 base32 characters, so the text is 93 characters long. A
 * mistyped character changes the checksum, so a typo is caught before the
 * share is used; the vault id tells a share of another vault apart.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <libgfshare.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/evp.h>

#include "vault/secmem.h"
#include "vault/vault_int.h"

#define SHARE_TAG "tr1"
#define SHARE_CSUM 4
#define SHARE_RAW (VAULT_ID_SIZE + 1 + VAULT_KEY_SIZE + SHARE_CSUM)
#define SHARE_B32 (SHARE_RAW * 8 / 5) /* 72 */
#define SHARE_GROUP 4

static const char share_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/*
 * libgfshare draws the random polynomial coefficients through this hook;
 * a failure is remembered and fails the split.
 */
static _Thread_local bool share_rand_failed;

static void
share_fill_rand(unsigned char *buf, unsigned int len)
{
	if (RAND_bytes(buf, (int)len) != 1) {
		share_rand_failed = true;
		memset(buf, 0, len);
	}
}

void
vault_share_setup(void)
{
	gfshare_fill_rand = share_fill_rand;
}

int
vault_share_split(const uint8_t kek[VAULT_KEY_SIZE], unsigned n, unsigned k,
    const uint8_t vault_id[VAULT_ID_SIZE], struct vault_share *ret_shares)
{
	unsigned char nrs[VAULT_SHARES_MAX];
	uint8_t *secret;
	gfshare_ctx *g;

	if (k < 2 || k > n || n > VAULT_SHARES_MAX)
		return -EINVAL;
	if (gfshare_fill_rand != share_fill_rand)
		return -EINVAL; /* never libgfshare's own random() */
	for (unsigned i = 0; i < n; i++)
		nrs[i] = (unsigned char)(i + 1);
	secret = secmem_zalloc(VAULT_KEY_SIZE);
	if (!secret)
		return -ENOMEM;
	memcpy(secret, kek, VAULT_KEY_SIZE);
	g = gfshare_ctx_init_enc(nrs, n, (unsigned char)k, VAULT_KEY_SIZE);
	if (!g) {
		secmem_free(secret);
		return -ENOMEM;
	}
	share_rand_failed = false;
	gfshare_ctx_enc_setsecret(g, secret);
	for (unsigned i = 0; i < n; i++) {
		memcpy(ret_shares[i].vault_id, vault_id, VAULT_ID_SIZE);
		ret_shares[i].nr = nrs[i];
		gfshare_ctx_enc_getshare(
		    g, (unsigned char)i, ret_shares[i].bytes);
	}
	gfshare_ctx_free(g);
	secmem_free(secret);
	if (share_rand_failed) {
		OPENSSL_cleanse(ret_shares, n * sizeof(*ret_shares));
		return -EIO;
	}
	return 0;
}

int
vault_share_combine(const struct vault_share *shares, unsigned k,
    uint8_t ret_kek[VAULT_KEY_SIZE])
{
	unsigned char nrs[VAULT_SHARES_MAX];
	uint8_t *buf;
	gfshare_ctx *g;

	if (k < 1 || k > VAULT_SHARES_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < k; i++)
		nrs[i] = shares[i].nr;
	buf = secmem_zalloc(VAULT_KEY_SIZE);
	if (!buf)
		return -ENOMEM;
	g = gfshare_ctx_init_dec(nrs, k, VAULT_KEY_SIZE);
	if (!g) {
		secmem_free(buf);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < k; i++) {
		/* libgfshare copies the share; it does not write to it. */
		memcpy(buf, shares[i].bytes, VAULT_KEY_SIZE);
		gfshare_ctx_dec_giveshare(g, (unsigned char)i, buf);
	}
	gfshare_ctx_dec_extract(g, ret_kek);
	gfshare_ctx_free(g);
	secmem_free(buf);
	return 0;
}

static int
share_checksum(const uint8_t *raw, size_t len, uint8_t ret[SHARE_CSUM])
{
	uint8_t buf[sizeof(SHARE_TAG) - 1 + SHARE_RAW];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int r;

	memcpy(buf, SHARE_TAG, sizeof(SHARE_TAG) - 1);
	memcpy(buf + sizeof(SHARE_TAG) - 1, raw, len);
	r = EVP_Digest(buf, sizeof(SHARE_TAG) - 1 + len, md, &mdlen,
		EVP_sha256(), NULL) == 1 && mdlen >= SHARE_CSUM ? 0 : -EIO;
	if (r == 0)
		memcpy(ret, md, SHARE_CSUM);
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

int
vault_share_encode(
    const struct vault_share *s, char ret_text[VAULT_SHARE_TEXT_MAX])
{
	uint8_t raw[SHARE_RAW];
	char *p = ret_text;
	unsigned acc = 0, bits = 0, n = 0;

	memcpy(raw, s->vault_id, VAULT_ID_SIZE);
	raw[VAULT_ID_SIZE] = s->nr;
	memcpy(raw + VAULT_ID_SIZE + 1, s->bytes, VAULT_KEY_SIZE);
	if (share_checksum(raw, SHARE_RAW - SHARE_CSUM,
		raw + SHARE_RAW - SHARE_CSUM) < 0) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return -EIO;
	}

	memcpy(p, SHARE_TAG, sizeof(SHARE_TAG) - 1);
	p += sizeof(SHARE_TAG) - 1;
	for (size_t i = 0; i < SHARE_RAW; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			if (n % SHARE_GROUP == 0)
				*p++ = '-';
			*p++ = share_alphabet[(acc >> bits) & 31];
			n++;
		}
		acc &= (1u << bits) - 1;
	}
	*p = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

static int
share_b32_value(char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

int
vault_share_decode(
    const char *text, struct vault_share *ret_share, const char **ret_why)
{
	/* Secrets on the stack of the vault thread, wiped before return. */
	char norm[VAULT_SHARE_TEXT_MAX];
	uint8_t raw[SHARE_RAW];
	uint8_t sum[SHARE_CSUM];
	const char *why = NULL;
	size_t n = 0, len;
	unsigned acc = 0, bits = 0, out = 0;
	int r = -EINVAL;

	if (!text) {
		why = "share is empty";
		goto out;
	}
	len = strnlen(text, VAULT_SHARE_TEXT_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (n + 1 >= sizeof(norm)) {
			why = "share is too long: mistyped?";
			goto out;
		}
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		norm[n++] = c;
	}
	norm[n] = '\0';
	if (n == 0) {
		why = "share is empty";
		goto out;
	}
	if (n < sizeof(SHARE_TAG) - 1 ||
	    memcmp(norm, SHARE_TAG, sizeof(SHARE_TAG) - 1) != 0) {
		why = "not a twinroute share (it starts with tr1-)";
		goto out;
	}
	if (n - (sizeof(SHARE_TAG) - 1) != SHARE_B32) {
		why = "share has the wrong length: mistyped or incomplete?";
		goto out;
	}
	for (size_t i = sizeof(SHARE_TAG) - 1; i < n; i++) {
		int v = share_b32_value(norm[i]);

		if (v < 0) {
			why =
			    "share has a character that cannot occur in a share (0, 1, 8, 9 or a sign): mistyped?";
			goto out;
		}
		acc = (acc << 5) | (unsigned)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			raw[out++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (share_checksum(raw, SHARE_RAW - SHARE_CSUM, sum) < 0) {
		why = "cannot compute the share's checksum";
		r = -EIO;
		goto out;
	}
	if (CRYPTO_memcmp(sum, raw + SHARE_RAW - SHARE_CSUM, SHARE_CSUM) != 0) {
		why = "share is corrupted (checksum mismatch): mistyped?";
		r = -EBADMSG;
		goto out;
	}
	memcpy(ret_share->vault_id, raw, VAULT_ID_SIZE);
	ret_share->nr = raw[VAULT_ID_SIZE];
	memcpy(ret_share->bytes, raw + VAULT_ID_SIZE + 1, VAULT_KEY_SIZE);
	r = 0;
out:
	OPENSSL_cleanse(norm, sizeof(norm));
	OPENSSL_cleanse(raw, sizeof(raw));
	if (r < 0 && ret_why)
		*ret_why = why;
	return r;
}
