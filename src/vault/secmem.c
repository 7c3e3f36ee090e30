/* SPDX-License-Identifier: ISC */
/* secmem.c -- locked memory, excluded from core dumps, for keys and card
 * plaintext */

/*
 * Each block carries a 16-byte header with its size, so a block can be
 * wiped in full without the caller remembering how large it was (protobuf-c
 * frees without a size).
 *
 * The private arena is a first-fit allocator over a bitmap of
 * SECMEM_HEAP_MINSIZE-byte units under one mutex: secret allocations are
 * few and small (keys, one card at a time), never on a path where a scan
 * of a few thousand bits matters.
 */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "vault/secmem.h"

#define SECMEM_HDR 16u
#define SECMEM_UNIT SECMEM_HEAP_MINSIZE
#define SECMEM_UNITS (SECMEM_ARENA_SIZE / SECMEM_UNIT)

enum secmem_backend {
	SECMEM_HEAP = 0, /* not initialised: ordinary heap, wiped */
	SECMEM_OPENSSL,	 /* OpenSSL's secure heap */
	SECMEM_ARENA,	 /* the private arena below */
};

static pthread_once_t secmem_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t secmem_lock = PTHREAD_MUTEX_INITIALIZER;
static enum secmem_backend secmem_backend;
static bool secmem_is_locked;
static int secmem_init_err;

static uint8_t *arena;			     /* SECMEM_ARENA_SIZE bytes */
static uint8_t arena_used[SECMEM_UNITS / 8]; /* bit set: unit in use */
static uint16_t arena_len[SECMEM_UNITS]; /* units of a block, at its first */

static bool
arena_bit(size_t i)
{
	return arena_used[i / 8] & (1u << (i % 8));
}

static void
arena_set(size_t from, size_t n, bool on)
{
	for (size_t i = from; i < from + n; i++) {
		if (on)
			arena_used[i / 8] |= (uint8_t)(1u << (i % 8));
		else
			arena_used[i / 8] &= (uint8_t) ~(1u << (i % 8));
	}
}

static void *
arena_alloc(size_t size)
{
	size_t need = (size + SECMEM_UNIT - 1) / SECMEM_UNIT;
	size_t run = 0;
	void *p = NULL;

	if (need == 0 || need > SECMEM_UNITS)
		return NULL;
	pthread_mutex_lock(&secmem_lock);
	for (size_t i = 0; i < SECMEM_UNITS; i++) {
		if (arena_bit(i)) {
			run = 0;
			continue;
		}
		if (++run == need) {
			size_t first = i + 1 - need;

			arena_set(first, need, true);
			arena_len[first] = (uint16_t)need;
			p = arena + first * SECMEM_UNIT;
			break;
		}
	}
	pthread_mutex_unlock(&secmem_lock);
	if (p)
		memset(p, 0, need * SECMEM_UNIT);
	return p;
}

static bool
arena_owns(const void *p)
{
	const uint8_t *b = p;

	return arena && b >= arena && b < arena + SECMEM_ARENA_SIZE;
}

static void
arena_free(void *p)
{
	size_t first = (size_t)((uint8_t *)p - arena) / SECMEM_UNIT;
	size_t n;

	pthread_mutex_lock(&secmem_lock);
	n = arena_len[first];
	OPENSSL_cleanse(p, n * SECMEM_UNIT);
	arena_set(first, n, false);
	arena_len[first] = 0;
	pthread_mutex_unlock(&secmem_lock);
}

static int
arena_setup(void)
{
	void *m;

	m = mmap(NULL, SECMEM_ARENA_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	secmem_is_locked = mlock(m, SECMEM_ARENA_SIZE) == 0;
#ifdef MADV_DONTDUMP
	if (madvise(m, SECMEM_ARENA_SIZE, MADV_DONTDUMP) < 0)
		secmem_is_locked = false;
#else
	secmem_is_locked = false;
#endif
	arena = m;
	return 0;
}

static void
secmem_setup(void)
{
	int r;

	if (CRYPTO_secure_malloc_initialized()) {
		/* Someone set it up already; OpenSSL locked it or said so. */
		secmem_backend = SECMEM_OPENSSL;
		secmem_is_locked = true;
		return;
	}
	r = CRYPTO_secure_malloc_init(SECMEM_HEAP_SIZE, SECMEM_HEAP_MINSIZE);
	if (r == 1) {
		secmem_backend = SECMEM_OPENSSL;
		secmem_is_locked = true;
		return;
	}
	/*
	 * 2: the heap exists but could not be locked or kept out of core
	 * dumps; give it back (nothing is allocated yet) and try a smaller
	 * arena of our own. 0: no secure heap at all.
	 */
	if (r == 2)
		CRYPTO_secure_malloc_done();
	r = arena_setup();
	if (r < 0) {
		secmem_init_err = r;
		return;
	}
	secmem_backend = SECMEM_ARENA;
}

int
secmem_init(void)
{
	pthread_once(&secmem_once, secmem_setup);
	return secmem_init_err;
}

bool
secmem_locked(void)
{
	return secmem_backend != SECMEM_HEAP && secmem_is_locked;
}

const char *
secmem_describe(void)
{
	switch (secmem_backend) {
	case SECMEM_HEAP:
		return "heap";
	case SECMEM_OPENSSL:
		return "secure heap";
	case SECMEM_ARENA:
		return secmem_is_locked ? "private arena"
					: "private arena, NOT locked";
	}
	return "heap";
}

void *
secmem_zalloc(size_t size)
{
	uint8_t *b = NULL;

	if (size > SIZE_MAX - SECMEM_HDR)
		return NULL;
	if (secmem_backend == SECMEM_ARENA)
		b = arena_alloc(size + SECMEM_HDR);
	if (!b)
		b = OPENSSL_secure_zalloc(size + SECMEM_HDR);
	if (!b)
		return NULL;
	memcpy(b, &size, sizeof(size));
	return b + SECMEM_HDR;
}

void
secmem_free(void *p)
{
	uint8_t *b;
	size_t size;

	if (!p)
		return;
	b = (uint8_t *)p - SECMEM_HDR;
	if (arena_owns(b)) {
		arena_free(b);
		return;
	}
	memcpy(&size, b, sizeof(size));
	OPENSSL_secure_clear_free(b, size + SECMEM_HDR);
}

/*
 * secmem_pages_*: one anonymous mapping per block. The mapping opens with
 * a header of SECMEM_PAGES_HDR bytes (a multiple of 64, so the block after
 * it is aligned for any type and for cache lines) recording the size of
 * the mapping and whether it is locked.
 */
#define SECMEM_PAGES_HDR 64u

struct secmem_pages_hdr {
	size_t map_len;
	bool locked; /* mlocked and excluded from core dumps */
};

void *
secmem_pages_alloc(size_t size)
{
	struct secmem_pages_hdr h;
	long page = sysconf(_SC_PAGESIZE);
	size_t len;
	void *m;

	_Static_assert(sizeof(h) <= SECMEM_PAGES_HDR, "header too large");
	if (page <= 0)
		page = 4096;
	if (size > SIZE_MAX - SECMEM_PAGES_HDR - (size_t)page)
		return NULL;
	len = (size + SECMEM_PAGES_HDR + (size_t)page - 1) &
	    ~((size_t)page - 1);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	h.map_len = len;
	h.locked = mlock(m, len) == 0;
#ifdef MADV_DONTDUMP
	if (madvise(m, len, MADV_DONTDUMP) < 0)
		h.locked = false;
#else
	h.locked = false;
#endif
	/* Fresh anonymous pages are zero: only the header is written. */
	memcpy(m, &h, sizeof(h));
	return (uint8_t *)m + SECMEM_PAGES_HDR;
}

void
secmem_pages_free(void *p)
{
	struct secmem_pages_hdr h;
	uint8_t *m;

	if (!p)
		return;
	m = (uint8_t *)p - SECMEM_PAGES_HDR;
	memcpy(&h, m, sizeof(h));
	OPENSSL_cleanse(m, h.map_len);
	(void)munlock(m, h.map_len); /* harmless where mlock failed */
	(void)munmap(m, h.map_len);
}

bool
secmem_pages_locked(const void *p)
{
	struct secmem_pages_hdr h;

	if (!p)
		return false;
	memcpy(&h, (const uint8_t *)p - SECMEM_PAGES_HDR, sizeof(h));
	return h.locked;
}

static void *
secmem_pb_alloc(void *data, size_t size)
{
	(void)data;
	return secmem_zalloc(size);
}

static void
secmem_pb_free(void *data, void *p)
{
	(void)data;
	secmem_free(p);
}

ProtobufCAllocator secmem_protobuf_allocator = {
    .alloc = secmem_pb_alloc,
    .free = secmem_pb_free,
    .allocator_data = NULL,
};
