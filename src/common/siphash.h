/* SPDX-License-Identifier: ISC */
/* siphash.h -- SipHash-2-4, a keyed 64-bit hash for tables fed by peers */
#ifndef TR_SIPHASH_H
#define TR_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_SIZE 16

/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012) of len bytes at p under a
 * 128-bit key. Without the key nobody can choose inputs that collide, so
 * a table indexed by it stays flat whatever its keys are.
 */
uint64_t siphash24(const uint8_t key[SIPHASH_KEY_SIZE], const void *p,
    size_t len);

#endif
