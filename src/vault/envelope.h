/* SPDX-License-Identifier: ISC */
/* envelope.h -- card data sealed by the client to the vault's enrolment key */
#ifndef TR_ENVELOPE_H
#define TR_ENVELOPE_H

/*
 * How a card reaches the vault without its number crossing a socket in
 * the clear: twinroutectl seals it to the vault's X25519 enrolment public
 * key (ephemeral X25519 key agreement, HKDF-SHA-256, AES-256-GCM with the
 * member number as associated data); only the vault thread holds the
 * private key. The control socket carries ciphertext.
 *
 * Wire form (proto/vault.proto CardEnvelope): version, the ephemeral
 * public key, a 96-bit nonce, and the ciphertext with its tag.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "vault/card.h"

#define ENVELOPE_VERSION 1
#define ENVELOPE_MAX 1024

/*
 * Seal in to the vault key pub for member. 0, -EINVAL, -ENOMEM, -EIO;
 * -ENOBUFS when out_cap (or ENVELOPE_MAX) is too small.
 */
int envelope_seal(const uint8_t pub[32], const char *member,
    const struct card_input *in, uint8_t *out, size_t out_cap,
    size_t *ret_len);
/*
 * Open with the vault's private key. 0; -EBADMSG when the envelope does
 * not decode or fails authentication (wrong key, wrong member, altered).
 * *ret_in is untouched on failure.
 */
int envelope_open(EVP_PKEY *priv, const char *member, const uint8_t *env,
    size_t len, struct card_input *ret_in);

#endif
