/* SPDX-License-Identifier: ISC */
/* provider_auth.c -- provider credentials in the store, and fax references */

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/be64.h"
#include "provider/provider.h"

#define FAX_REF_KEY "fax_ref_key"

int
provider_auth_get(struct store_txn *txn, const char *provider_id,
    Twinroute__Store__ProviderAuth **ret)
{
	const void *val;
	size_t len;
	int r;

	r = store_get(txn, STORE_DB_PROVIDER_AUTH, provider_id,
	    strlen(provider_id), &val, &len);
	if (r < 0)
		return r;
	*ret = twinroute__store__provider_auth__unpack(NULL, len, val);
	return *ret ? 0 : -EINVAL;
}

int
provider_auth_put(struct store_txn *txn, const char *provider_id,
    const Twinroute__Store__ProviderAuth *a)
{
	uint8_t buf[512];
	size_t len = twinroute__store__provider_auth__get_packed_size(a);

	if (len > sizeof(buf))
		return -EINVAL;
	twinroute__store__provider_auth__pack(a, buf);
	return store_put(txn, STORE_DB_PROVIDER_AUTH, provider_id,
	    strlen(provider_id), buf, len);
}

int
provider_fax_ref_key(struct store_txn *txn, uint8_t ret_key[32])
{
	const void *val;
	size_t len;
	int r;

	r = store_get(txn, STORE_DB_META, FAX_REF_KEY, sizeof(FAX_REF_KEY) - 1,
	    &val, &len);
	if (r == 0 && len == 32) {
		memcpy(ret_key, val, 32);
		return 0;
	}
	if (r < 0 && r != -ENOENT)
		return r;
	/* First use: make it (needs a write transaction). */
	if (RAND_bytes(ret_key, 32) != 1)
		return -EIO;
	return store_put(txn, STORE_DB_META, FAX_REF_KEY,
	    sizeof(FAX_REF_KEY) - 1, ret_key, 32);
}

void
provider_fax_reference(const uint8_t key[32], uint64_t order_id,
    char out[PROVIDER_FAX_REF_LEN + 1])
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	uint64_t bits = 0;
	char *p = out;

	be64_put(msg, order_id);
	HMAC(EVP_sha256(), key, 32, msg, sizeof(msg), mac, &mac_len);
	/* 40 bits: 8 base32 characters. */
	for (int i = 0; i < 5; i++)
		bits = bits << 8 | mac[i];
	memcpy(p, "FX-", 3);
	p += 3;
	for (int i = 0; i < 8; i++) {
		if (i == 4)
			*p++ = '-';
		*p++ = b32[(bits >> (35 - 5 * i)) & 31];
	}
	*p = '\0';
	OPENSSL_cleanse(mac, sizeof(mac));
}
