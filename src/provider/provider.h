/* SPDX-License-Identifier: ISC */
/* provider.h -- the provider channel: sessions, dispatch, reports */
#ifndef TR_PROVIDER_H
#define TR_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.pb-c.h"
#include "store/store.h"

struct daemon;
struct providers;
struct conn;

#define PROVIDER_PROTO_VERSION 1
#define PROVIDER_TOKEN_BYTES 32     /* random bytes of a token */
#define PROVIDER_FAX_REF_LEN 12     /* "FX-XXXX-XXXX" */

/* The provider listener's protocol (src/provider/provider.c). */
extern const struct listener_ops provider_listener_ops;

/*
 * Sessions and dispatch state, owned by the loop. providers_new() reads
 * nothing yet; sessions load their backlog when they authenticate.
 */
int providers_new(struct daemon *d, struct providers **ret);
void providers_free(struct providers *p);

/* An order entered CONFIRMED in commit seq: dispatch it once durable. */
void providers_order_confirmed(struct providers *p, const char *provider_id,
    uint64_t order_id, uint64_t seq);

/*
 * The provider's credentials for method ("certificate" or "token")
 * changed: close its sessions that authenticated that way (they get
 * ERR_AUTH and must authenticate again). Returns how many.
 */
unsigned providers_drop(struct providers *p, const char *provider_id,
    const char *method);

/* One live session, for twinroutectl provider sessions. */
struct provider_session_info {
	const char *provider_id;
	const char *peer;           /* "127.0.0.1:40000" */
	const char *method;         /* "certificate" or "token" */
	uint64_t since_unix_ms;
	uint32_t in_flight;         /* dispatches sent, not acknowledged */
	uint32_t pending;           /* dispatches waiting for window room */
	uint64_t dispatched;        /* acknowledged in this session */
};
typedef void (*provider_session_fn)(const struct provider_session_info *i,
    void *arg);
void providers_sessions(const struct providers *p, provider_session_fn cb,
    void *arg);

/* ---- provider_auth records (also for twinroutectl) ------------------- */

/* Read one (-ENOENT); free with ..._provider_auth__free_unpacked. */
int provider_auth_get(struct store_txn *txn, const char *provider_id,
    Twinroute__Store__ProviderAuth **ret);
int provider_auth_put(struct store_txn *txn, const char *provider_id,
    const Twinroute__Store__ProviderAuth *a);

/*
 * The fax reference of an order: "FX-" and 8 characters of RFC 4648
 * base32 (uppercase, in two groups of four) of HMAC-SHA256(key, the order
 * id as 8 big-endian bytes). The key is the store's (meta "fax_ref_key",
 * 32 random bytes made on first use). The provider gets it with the
 * dispatch and the fax page prints it, so the two can be matched and a
 * forged fax spotted. out: PROVIDER_FAX_REF_LEN + 1 bytes.
 */
int provider_fax_ref_key(struct store_txn *txn, uint8_t ret_key[32]);
void provider_fax_reference(const uint8_t key[32], uint64_t order_id,
    char out[PROVIDER_FAX_REF_LEN + 1]);

#endif
