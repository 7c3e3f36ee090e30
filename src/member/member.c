/* SPDX-License-Identifier: ISC */
/* member.c -- members in the broker store, and their password hashes */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "common/errcode.h"
#include "common/macro.h"
#include "member/member.h"

#define SALT_SIZE 16
#define DK_SIZE 32
/* Highest cost a stored hash may ask for: refuse absurd parameters. */
#define SCRYPT_LOG_N_MAX 20

int
member_check_number(const char *number, const char **ret_why)
{
	size_t n = strlen(number);

	if (n < MEMBER_NUMBER_MIN || n > MEMBER_NUMBER_MAX) {
		*ret_why = "member number: 4 to 16 digits";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (number[i] < '0' || number[i] > '9') {
			*ret_why = "member number: digits only";
			return -EINVAL;
		}
	return 0;
}

int
member_check_email(const char *email, const char **ret_why)
{
	const char *at = strchr(email, '@');
	size_t n = strlen(email);

	*ret_why = "email: not an address (local@domain.example)";
	if (n == 0 || n > MEMBER_EMAIL_MAX || at == NULL || at == email ||
	    strchr(at + 1, '@') != NULL || strchr(at + 1, '.') == NULL ||
	    at[1] == '.' || email[n - 1] == '.')
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)email[i] <= 0x20 ||
		    (unsigned char)email[i] >= 0x7f)
			return -EINVAL;
	return 0;
}

int
member_check_name(const char *name, const char **ret_why)
{
	size_t n = strlen(name);

	if (n == 0 || n > MEMBER_NAME_MAX) {
		*ret_why = "name: 1 to 200 bytes";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
			*ret_why = "name: control characters are not allowed";
			return -EINVAL;
		}
	return 0;
}

int
member_check_password(const char *password, const char **ret_why)
{
	size_t n = strlen(password);

	if (n < MEMBER_PASSWORD_MIN) {
		*ret_why = "password: at least 8 characters";
		return -EINVAL;
	}
	if (n > MEMBER_PASSWORD_MAX) {
		*ret_why = "password: at most 1024 bytes";
		return -EINVAL;
	}
	return 0;
}

static int
scrypt(const char *password, const uint8_t *salt, size_t salt_len,
    unsigned log_n, unsigned r, unsigned p, uint8_t *out, size_t out_len)
{
	uint64_t n = UINT64_C(1) << log_n;
	/* OpenSSL's default memory cap (32 MiB) is exactly what N=2^15,
	 * r=8 needs plus a little: give it room. */
	uint64_t maxmem = 128 * n * r * 2 + (UINT64_C(1) << 20);

	if (EVP_PBE_scrypt(password, strlen(password), salt, salt_len, n, r, p,
	    maxmem, out, out_len) != 1)
		return -EIO;
	return 0;
}

static size_t
b64_encode(const uint8_t *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);

	/* Drop the padding: the hash format does not use it. */
	while (n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
	return (size_t)n;
}

/* Decode unpadded base64 of exactly want bytes. */
static int
b64_decode(const char *in, size_t in_len, uint8_t *out, size_t want)
{
	char buf[128];
	uint8_t tmp[96];
	int n;

	if (in_len == 0 || in_len + 3 >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, in, in_len);
	while (in_len % 4 != 0)
		buf[in_len++] = '=';
	buf[in_len] = '\0';
	n = EVP_DecodeBlock(tmp, (const unsigned char *)buf, (int)in_len);
	if (n < 0)
		return -EINVAL;
	/* EVP_DecodeBlock counts padding as zero bytes. */
	if ((size_t)n < want || (size_t)n > want + 2)
		return -EINVAL;
	memcpy(out, tmp, want);
	return 0;
}

int
member_password_hash(const char *password, char ret_hash[MEMBER_HASH_MAX])
{
	uint8_t salt[SALT_SIZE], dk[DK_SIZE];
	char salt64[32], dk64[64];
	int r;

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	r = scrypt(password, salt, sizeof(salt), MEMBER_SCRYPT_LOG_N,
	    MEMBER_SCRYPT_R, MEMBER_SCRYPT_P, dk, sizeof(dk));
	if (r < 0)
		return r;
	b64_encode(salt, sizeof(salt), salt64);
	b64_encode(dk, sizeof(dk), dk64);
	OPENSSL_cleanse(dk, sizeof(dk));
	snprintf(ret_hash, MEMBER_HASH_MAX, "$scrypt$ln=%u,r=%u,p=%u$%s$%s",
	    MEMBER_SCRYPT_LOG_N, MEMBER_SCRYPT_R, MEMBER_SCRYPT_P, salt64, dk64);
	OPENSSL_cleanse(dk64, sizeof(dk64));
	return 0;
}

int
member_password_verify(const char *password, const char *hash)
{
	unsigned log_n, r, p;
	int consumed = 0;
	const char *salt, *dkp;
	uint8_t salt_raw[SALT_SIZE], want[DK_SIZE], got[DK_SIZE];
	int ret;

	if (sscanf(hash, "$scrypt$ln=%u,r=%u,p=%u$%n", &log_n, &r, &p,
	    &consumed) != 3 || consumed == 0)
		return -EINVAL;
	if (log_n < 10 || log_n > SCRYPT_LOG_N_MAX || r < 1 || r > 32 ||
	    p < 1 || p > 16)
		return -EINVAL;
	salt = hash + consumed;
	dkp = strchr(salt, '$');
	if (dkp == NULL)
		return -EINVAL;
	if (b64_decode(salt, (size_t)(dkp - salt), salt_raw, sizeof(salt_raw)) < 0 ||
	    b64_decode(dkp + 1, strlen(dkp + 1), want, sizeof(want)) < 0)
		return -EINVAL;
	ret = scrypt(password, salt_raw, sizeof(salt_raw), log_n, r, p, got,
	    sizeof(got));
	if (ret == 0)
		ret = CRYPTO_memcmp(got, want, sizeof(got)) == 0 ? 1 : 0;
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return ret;
}

int
member_get(struct store_txn *txn, const char *number,
    Twinroute__Store__MemberRecord **ret_rec)
{
	Twinroute__Store__MemberRecord *rec;
	const void *val;
	size_t len;
	int r;

	r = store_get(txn, STORE_DB_MEMBERS, number, strlen(number), &val, &len);
	if (r < 0)
		return r;
	rec = twinroute__store__member_record__unpack(NULL, len, val);
	if (rec == NULL)
		return -TR_EBADMSG;
	*ret_rec = rec;
	return 0;
}

int
member_put(struct store_txn *txn, const Twinroute__Store__MemberRecord *rec)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;

	len = twinroute__store__member_record__get_packed_size(rec);
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	twinroute__store__member_record__pack(rec, buf);
	return store_put(txn, STORE_DB_MEMBERS, rec->number, strlen(rec->number),
	    buf, len);
}

struct iter_ctx {
	member_iter_fn cb;
	void *arg;
};

static int
member_iter_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct iter_ctx *ctx = arg;
	Twinroute__Store__MemberRecord *rec;
	int r;

	(void)key;
	(void)key_len;
	rec = twinroute__store__member_record__unpack(NULL, val_len, val);
	if (rec == NULL)
		return -TR_EBADMSG;
	r = ctx->cb(rec, ctx->arg);
	twinroute__store__member_record__free_unpacked(rec, NULL);
	return r;
}

int
member_iter(struct store_txn *txn, member_iter_fn cb, void *arg)
{
	struct iter_ctx ctx = { .cb = cb, .arg = arg };

	return store_iter(txn, STORE_DB_MEMBERS, NULL, 0, member_iter_one, &ctx);
}
