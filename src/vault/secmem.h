/* SPDX-License-Identifier: ISC */
/* secmem.h -- locked memory, excluded from core dumps, for keys and card
 * plaintext */
#ifndef TR_SECMEM_H
#define TR_SECMEM_H

/*
 * Every key and every plaintext card field lives in memory from here.
 * secmem_init() sets it up once per process: OpenSSL's secure heap
 * (mlocked, MADV_DONTDUMP, guard pages), or -- when that cannot be locked,
 * e.g. RLIMIT_MEMLOCK is too small -- a private mmap'ed arena with mlock
 * and MADV_DONTDUMP (unlocked if even that mlock fails: secmem_locked()
 * says so). Before secmem_init() (twinroutectl, tools), allocations come
 * from the ordinary heap and are still wiped on release.
 *
 * Every block is wiped with OPENSSL_cleanse when freed. Thread-safe.
 */

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#define SECMEM_HEAP_SIZE (256u << 10) /* OpenSSL secure heap, bytes */
#define SECMEM_HEAP_MINSIZE 32u
#define SECMEM_ARENA_SIZE (128u << 10) /* the private fallback arena */

/* Idempotent. 0, or -ENOMEM when no locked or unlocked arena exists. */
int secmem_init(void);
/* The memory is mlocked and excluded from core dumps. */
bool secmem_locked(void);
/* "secure heap", "private arena", "private arena, NOT locked", "heap". */
const char *secmem_describe(void);

/* Zeroed block, or NULL. */
void *secmem_zalloc(size_t size);
/* Wipe and release; NULL-safe. */
void secmem_free(void *p);

/*
 * Page-sized locked blocks for buffers too large for the secure heap (a
 * fax page's bitmap is 494 KB): their own anonymous mapping, mlocked (best
 * effort: secmem_pages_locked() says), MADV_DONTDUMP, wiped and unmapped
 * by secmem_pages_free. Zeroed block, or NULL.
 */
void *secmem_pages_alloc(size_t size);
void secmem_pages_free(void *p);	/* NULL-safe */
bool secmem_pages_locked(const void *p);

/* For protobuf-c unpacking of plaintext: every block from secmem. */
extern ProtobufCAllocator secmem_protobuf_allocator;

#endif
