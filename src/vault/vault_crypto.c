/* SPDX-License-Identifier: ISC */
/* vault_crypto.c -- AES-256-GCM records and wrapped keys, key check value,
 * X25519 */

/*
 * A data key is kept as two EVP contexts keyed once (one to seal, one to
 * open), so sealing or opening a record only sets a fresh nonce: no key
 * schedule per record. OpenSSL keeps that schedule in its own heap and
 * wipes it when the context is freed.
 */

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "vault/vault_int.h"

#define VAULT_KCV_LABEL "twinroute kcv"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)

static EVP_CIPHER_CTX *
vault_gcm_ctx(const uint8_t key[VAULT_KEY_SIZE], bool enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	if (!c)
		return NULL;
	if (EVP_CipherInit_ex(
		c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc ? 1 : 0) != 1 ||
	    EVP_CIPHER_CTX_ctrl(
		c, EVP_CTRL_GCM_SET_IVLEN, VAULT_NONCE_SIZE, NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, key, NULL, enc ? 1 : 0) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return c;
}

int
vault_gcm_init(struct vault_gcm *g, const uint8_t key[VAULT_KEY_SIZE])
{
	g->enc = vault_gcm_ctx(key, true);
	g->dec = vault_gcm_ctx(key, false);
	if (!g->enc || !g->dec) {
		vault_gcm_free(g);
		return -ENOMEM;
	}
	return 0;
}

void
vault_gcm_free(struct vault_gcm *g)
{
	EVP_CIPHER_CTX_free(g->enc);
	EVP_CIPHER_CTX_free(g->dec);
	g->enc = g->dec = NULL;
}

static int
vault_gcm_seal_ctx(EVP_CIPHER_CTX *c, const uint8_t *nonce, const uint8_t *aad,
    size_t aad_len, const uint8_t *in, size_t len, uint8_t *out)
{
	int outl;

	if (len > INT_MAX / 2 || aad_len > INT_MAX / 2)
		return -EINVAL;
	if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 ||
	    (aad_len > 0 &&
		EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1) ||
	    EVP_EncryptUpdate(c, out, &outl, in, (int)len) != 1 ||
	    (size_t)outl != len ||
	    EVP_EncryptFinal_ex(c, out + len, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(
		c, EVP_CTRL_GCM_GET_TAG, VAULT_TAG_SIZE, out + len) != 1)
		return -EIO;
	return 0;
}

static int
vault_gcm_open_ctx(EVP_CIPHER_CTX *c, const uint8_t *nonce, const uint8_t *aad,
    size_t aad_len, const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t tag[VAULT_TAG_SIZE];
	size_t plen;
	int outl;

	if (len <= VAULT_TAG_SIZE || len > INT_MAX / 2 || aad_len > INT_MAX / 2)
		return -EBADMSG;
	plen = len - VAULT_TAG_SIZE;
	memcpy(tag, in + plen, VAULT_TAG_SIZE);
	if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1)
		return -EIO;
	if ((aad_len > 0 &&
		EVP_DecryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1) ||
	    EVP_DecryptUpdate(c, out, &outl, in, (int)plen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, VAULT_TAG_SIZE, tag) !=
		1 ||
	    EVP_DecryptFinal_ex(c, out + outl, &outl) != 1) {
		/* Whatever was decrypted is not to be trusted or kept. */
		OPENSSL_cleanse(out, plen);
		return -EBADMSG;
	}
	return 0;
}

int
vault_gcm_seal(struct vault_gcm *g, const uint8_t nonce[VAULT_NONCE_SIZE],
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
    uint8_t *out)
{
	if (!g->enc)
		return -EINVAL;
	return vault_gcm_seal_ctx(g->enc, nonce, aad, aad_len, in, len, out);
}

int
vault_gcm_open(struct vault_gcm *g, const uint8_t nonce[VAULT_NONCE_SIZE],
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
    uint8_t *out)
{
	if (!g->dec)
		return -EINVAL;
	return vault_gcm_open_ctx(g->dec, nonce, aad, aad_len, in, len, out);
}

int
vault_aead_seal(const uint8_t key[VAULT_KEY_SIZE],
    const uint8_t nonce[VAULT_NONCE_SIZE], const uint8_t *aad, size_t aad_len,
    const uint8_t *in, size_t len, uint8_t *out)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c =
	    vault_gcm_ctx(key, true);

	if (!c)
		return -ENOMEM;
	return vault_gcm_seal_ctx(c, nonce, aad, aad_len, in, len, out);
}

int
vault_aead_open(const uint8_t key[VAULT_KEY_SIZE],
    const uint8_t nonce[VAULT_NONCE_SIZE], const uint8_t *aad, size_t aad_len,
    const uint8_t *in, size_t len, uint8_t *out)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c =
	    vault_gcm_ctx(key, false);

	if (!c)
		return -ENOMEM;
	return vault_gcm_open_ctx(c, nonce, aad, aad_len, in, len, out);
}

int
vault_kcv(const uint8_t kek[VAULT_KEY_SIZE], uint8_t ret_kcv[VAULT_KCV_SIZE])
{
	unsigned len = VAULT_KCV_SIZE;

	if (!HMAC(EVP_sha256(), kek, VAULT_KEY_SIZE,
		(const uint8_t *)VAULT_KCV_LABEL, sizeof(VAULT_KCV_LABEL) - 1,
		ret_kcv, &len) ||
	    len != VAULT_KCV_SIZE)
		return -EIO;
	return 0;
}

int
vault_random(void *buf, size_t len)
{
	if (len > INT_MAX)
		return -EINVAL;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

int
vault_x25519_new(uint8_t ret_priv[32], uint8_t ret_pub[32])
{
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *g = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
	size_t lpriv = 32, lpub = 32;

	g = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	if (!g)
		return -ENOMEM;
	if (EVP_PKEY_keygen_init(g) <= 0 || EVP_PKEY_keygen(g, &k) <= 0)
		return -EIO;
	if (EVP_PKEY_get_raw_private_key(k, ret_priv, &lpriv) <= 0 ||
	    lpriv != 32 ||
	    EVP_PKEY_get_raw_public_key(k, ret_pub, &lpub) <= 0 || lpub != 32) {
		OPENSSL_cleanse(ret_priv, 32);
		return -EIO;
	}
	return 0;
}

int
vault_x25519_load(
    const uint8_t priv[32], EVP_PKEY **ret_key, uint8_t ret_pub[32])
{
	EVP_PKEY *k;
	size_t len = 32;

	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	if (!k)
		return -EINVAL;
	if (EVP_PKEY_get_raw_public_key(k, ret_pub, &len) <= 0 || len != 32) {
		EVP_PKEY_free(k);
		return -EIO;
	}
	*ret_key = k;
	return 0;
}
