/* SPDX-License-Identifier: ISC */
/* envelope.c -- card data sealed by the client to the vault's enrolment key */

/*
 * seal:  ephemeral X25519 key e; shared = X25519(e, vault_pub);
 *        key = HKDF-SHA-256(ikm = shared, salt = e_pub || vault_pub,
 *                           info = "twinroute card enrol v1" || member);
 *        ciphertext = AES-256-GCM(key, random nonce, AAD = member,
 *                                 CardInput) || tag.
 * open:  the same with the vault's private key.
 *
 * The packed CardInput, the shared secret and the derived key live in
 * secmem blocks, wiped when released.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "common/macro.h"
#include "vault.pb-c.h"
#include "vault/envelope.h"
#include "vault/secmem.h"

#define ENV_KEY_SIZE 32
#define ENV_NONCE_SIZE 12
#define ENV_TAG_SIZE 16
#define ENV_INFO "twinroute card enrol v1"
#define ENV_MEMBER_MAX 255

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)

/* Secrets of one seal or open, in one secmem block. */
struct env_secrets {
	uint8_t shared[32];
	uint8_t key[ENV_KEY_SIZE];
};

static int
env_member_ok(const char *member, size_t *ret_len)
{
	size_t len;

	if (!member)
		return -EINVAL;
	len = strnlen(member, ENV_MEMBER_MAX + 1);
	if (len == 0 || len > ENV_MEMBER_MAX)
		return -EINVAL;
	*ret_len = len;
	return 0;
}

/* shared = X25519(mine, peer); key = HKDF(...). */
static int
env_derive(EVP_PKEY *mine, const uint8_t peer_pub[32],
    const uint8_t eph_pub[32], const uint8_t vault_pub[32], const char *member,
    size_t member_len, struct env_secrets *s)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *peer = NULL;
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *dctx = NULL;
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *kctx = NULL;
	uint8_t salt[64];
	uint8_t info[sizeof(ENV_INFO) - 1 + ENV_MEMBER_MAX];
	size_t len = sizeof(s->shared);

	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_pub, 32);
	if (!peer)
		return -EINVAL;
	dctx = EVP_PKEY_CTX_new(mine, NULL);
	if (!dctx)
		return -ENOMEM;
	/* Fails on a low-order peer key (all-zero shared secret). */
	if (EVP_PKEY_derive_init(dctx) <= 0 ||
	    EVP_PKEY_derive_set_peer(dctx, peer) <= 0 ||
	    EVP_PKEY_derive(dctx, s->shared, &len) <= 0 ||
	    len != sizeof(s->shared))
		return -EINVAL;

	memcpy(salt, eph_pub, 32);
	memcpy(salt + 32, vault_pub, 32);
	memcpy(info, ENV_INFO, sizeof(ENV_INFO) - 1);
	memcpy(info + sizeof(ENV_INFO) - 1, member, member_len);

	kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	if (!kctx)
		return -ENOMEM;
	len = sizeof(s->key);
	if (EVP_PKEY_derive_init(kctx) <= 0 ||
	    EVP_PKEY_CTX_set_hkdf_md(kctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_salt(kctx, salt, sizeof(salt)) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_key(kctx, s->shared, sizeof(s->shared)) <=
		0 ||
	    EVP_PKEY_CTX_add1_hkdf_info(
		kctx, info, (int)(sizeof(ENV_INFO) - 1 + member_len)) <= 0 ||
	    EVP_PKEY_derive(kctx, s->key, &len) <= 0 || len != sizeof(s->key))
		return -EIO;
	return 0;
}

int
envelope_seal(const uint8_t pub[32], const char *member,
    const struct card_input *in, uint8_t *out, size_t out_cap, size_t *ret_len)
{
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *gctx = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *eph = NULL;
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c = NULL;
	Twinroute__Vault__CardInput ci = TWINROUTE__VAULT__CARD_INPUT__INIT;
	Twinroute__Vault__CardEnvelope env =
	    TWINROUTE__VAULT__CARD_ENVELOPE__INIT;
	struct env_secrets *s = NULL;
	uint8_t *plain = NULL, *cipher = NULL;
	uint8_t eph_pub[32], nonce[ENV_NONCE_SIZE];
	size_t member_len, plain_len, len = sizeof(eph_pub), packed;
	int outl, r;

	if (!pub || !in || !out || !ret_len)
		return -EINVAL;
	r = env_member_ok(member, &member_len);
	if (r < 0)
		return r;
	if (strnlen(in->number, sizeof(in->number)) == sizeof(in->number) ||
	    strnlen(in->holder, sizeof(in->holder)) == sizeof(in->holder))
		return -EINVAL;

	gctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	if (!gctx)
		return -ENOMEM;
	if (EVP_PKEY_keygen_init(gctx) <= 0 || EVP_PKEY_keygen(gctx, &eph) <= 0)
		return -EIO;
	if (EVP_PKEY_get_raw_public_key(eph, eph_pub, &len) <= 0 || len != 32)
		return -EIO;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return -EIO;

	s = secmem_zalloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = env_derive(eph, pub, eph_pub, pub, member, member_len, s);
	if (r < 0)
		goto out;

	ci.number = unconst(in->number);
	ci.exp_month = in->exp_month;
	ci.exp_year = in->exp_year;
	ci.holder = unconst(in->holder);
	plain_len = twinroute__vault__card_input__get_packed_size(&ci);
	plain = secmem_zalloc(plain_len);
	cipher = OPENSSL_malloc(plain_len + ENV_TAG_SIZE);
	if (!plain || !cipher) {
		r = -ENOMEM;
		goto out;
	}
	twinroute__vault__card_input__pack(&ci, plain);

	c = EVP_CIPHER_CTX_new();
	if (!c) {
		r = -ENOMEM;
		goto out;
	}
	r = -EIO;
	if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(
		c, EVP_CTRL_GCM_SET_IVLEN, ENV_NONCE_SIZE, NULL) != 1 ||
	    EVP_EncryptInit_ex(c, NULL, NULL, s->key, nonce) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &outl, (const uint8_t *)member,
		(int)member_len) != 1 ||
	    EVP_EncryptUpdate(c, cipher, &outl, plain, (int)plain_len) != 1 ||
	    (size_t)outl != plain_len ||
	    EVP_EncryptFinal_ex(c, cipher + outl, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(
		c, EVP_CTRL_GCM_GET_TAG, ENV_TAG_SIZE, cipher + plain_len) != 1)
		goto out;

	env.version = ENVELOPE_VERSION;
	env.eph_pub.data = eph_pub;
	env.eph_pub.len = sizeof(eph_pub);
	env.nonce.data = nonce;
	env.nonce.len = sizeof(nonce);
	env.ciphertext.data = cipher;
	env.ciphertext.len = plain_len + ENV_TAG_SIZE;
	packed = twinroute__vault__card_envelope__get_packed_size(&env);
	if (packed > out_cap || packed > ENVELOPE_MAX) {
		r = -ENOBUFS;
		goto out;
	}
	*ret_len = twinroute__vault__card_envelope__pack(&env, out);
	r = 0;
out:
	secmem_free(s);
	secmem_free(plain);
	OPENSSL_free(cipher);
	return r;
}

/* Copy a decoded CardInput into *ret_in; -EBADMSG if a field won't fit. */
static int
env_copy_input(const Twinroute__Vault__CardInput *ci, struct card_input *ret_in)
{
	size_t nl, hl;

	if (!ci->number || !ci->holder)
		return -EBADMSG;
	nl = strlen(ci->number);
	hl = strlen(ci->holder);
	if (nl > CARD_NUMBER_MAX || hl > CARD_HOLDER_MAX)
		return -EBADMSG;
	memset(ret_in, 0, sizeof(*ret_in));
	memcpy(ret_in->number, ci->number, nl);
	memcpy(ret_in->holder, ci->holder, hl);
	ret_in->exp_month = ci->exp_month;
	ret_in->exp_year = ci->exp_year;
	return 0;
}

int
envelope_open(EVP_PKEY *priv, const char *member, const uint8_t *env_buf,
    size_t len, struct card_input *ret_in)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c = NULL;
	Twinroute__Vault__CardEnvelope *env = NULL;
	Twinroute__Vault__CardInput *ci = NULL;
	struct env_secrets *s = NULL;
	uint8_t *plain = NULL;
	uint8_t vault_pub[32];
	size_t member_len, plain_len, pub_len = sizeof(vault_pub);
	uint8_t tag[ENV_TAG_SIZE];
	int outl, r;

	if (!priv || !env_buf || !ret_in)
		return -EINVAL;
	r = env_member_ok(member, &member_len);
	if (r < 0)
		return r;
	if (len == 0 || len > ENVELOPE_MAX)
		return -EBADMSG;
	if (EVP_PKEY_get_raw_public_key(priv, vault_pub, &pub_len) <= 0 ||
	    pub_len != 32)
		return -EINVAL;

	env = twinroute__vault__card_envelope__unpack(NULL, len, env_buf);
	if (!env)
		return -EBADMSG;
	r = -EBADMSG;
	if (env->version != ENVELOPE_VERSION || env->eph_pub.len != 32 ||
	    env->nonce.len != ENV_NONCE_SIZE ||
	    env->ciphertext.len <= ENV_TAG_SIZE)
		goto out;
	plain_len = env->ciphertext.len - ENV_TAG_SIZE;

	s = secmem_zalloc(sizeof(*s));
	plain = secmem_zalloc(plain_len);
	if (!s || !plain) {
		r = -ENOMEM;
		goto out;
	}
	r = env_derive(priv, env->eph_pub.data, env->eph_pub.data, vault_pub,
	    member, member_len, s);
	if (r == -EINVAL)
		r = -EBADMSG; /* a bad ephemeral key is a bad envelope */
	if (r < 0)
		goto out;

	c = EVP_CIPHER_CTX_new();
	if (!c) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(tag, env->ciphertext.data + plain_len, ENV_TAG_SIZE);
	r = -EBADMSG;
	if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(
		c, EVP_CTRL_GCM_SET_IVLEN, ENV_NONCE_SIZE, NULL) != 1 ||
	    EVP_DecryptInit_ex(c, NULL, NULL, s->key, env->nonce.data) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &outl, (const uint8_t *)member,
		(int)member_len) != 1 ||
	    EVP_DecryptUpdate(
		c, plain, &outl, env->ciphertext.data, (int)plain_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, ENV_TAG_SIZE, tag) !=
		1 ||
	    EVP_DecryptFinal_ex(c, plain + outl, &outl) != 1)
		goto out;

	ci = twinroute__vault__card_input__unpack(
	    &secmem_protobuf_allocator, plain_len, plain);
	if (!ci)
		goto out;
	r = env_copy_input(ci, ret_in);
out:
	if (ci)
		twinroute__vault__card_input__free_unpacked(
		    ci, &secmem_protobuf_allocator);
	secmem_free(plain);
	secmem_free(s);
	twinroute__vault__card_envelope__free_unpacked(env, NULL);
	return r;
}
