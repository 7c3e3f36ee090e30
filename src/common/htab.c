/* SPDX-License-Identifier: ISC */
/* htab.c -- open-addressing hash table: C string keys to pointers */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"

#define HTAB_MIN_SLOTS 8u

struct htab_slot {
	const char *key;        /* NULL: empty */
	void *val;
	uint64_t hash;
};

struct htab {
	struct htab_slot *slots;
	size_t cap;             /* a power of two */
	size_t count;
};

/* FNV-1a 64, then a final mix so the low bits used as index vary well. */
static uint64_t
htab_hash(const char *key)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= UINT64_C(0x100000001b3);
	}
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return h;
}

/* Most entries a table of cap slots holds: 70% of it. */
static size_t
htab_limit(size_t cap)
{
	return cap / 10 * 7 + cap % 10 * 7 / 10;
}

static size_t
htab_cap_for(size_t n)
{
	size_t cap = HTAB_MIN_SLOTS;

	while (htab_limit(cap) < n) {
		if (cap > SIZE_MAX / 2 / sizeof(struct htab_slot))
			return 0;
		cap *= 2;
	}
	return cap;
}

int
htab_new(size_t hint, struct htab **ret_h)
{
	struct htab *h;
	size_t cap = htab_cap_for(hint);

	if (cap == 0)
		return -ENOMEM;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->slots = calloc(cap, sizeof(*h->slots));
	if (!h->slots) {
		free(h);
		return -ENOMEM;
	}
	h->cap = cap;
	*ret_h = h;
	return 0;
}

struct htab *
htab_free(struct htab *h)
{
	if (!h)
		return NULL;
	free(h->slots);
	free(h);
	return NULL;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t
htab_find(const struct htab *h, const char *key, uint64_t hash)
{
	size_t mask = h->cap - 1;
	size_t i = (size_t)hash & mask;

	for (;;) {
		const struct htab_slot *s = &h->slots[i];

		if (!s->key)
			return i;
		if (s->hash == hash && strcmp(s->key, key) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

static int
htab_resize(struct htab *h, size_t cap)
{
	struct htab_slot *old = h->slots;
	size_t old_cap = h->cap;
	struct htab_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	h->slots = slots;
	h->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].key) {
			size_t j = htab_find(h, old[i].key, old[i].hash);

			h->slots[j] = old[i];
		}
	}
	free(old);
	return 0;
}

int
htab_reserve(struct htab *h, size_t n)
{
	size_t cap;

	if (n <= htab_limit(h->cap))
		return 0;
	cap = htab_cap_for(n);
	if (cap == 0)
		return -ENOMEM;
	return htab_resize(h, cap);
}

void *
htab_get(const struct htab *h, const char *key)
{
	size_t i = htab_find(h, key, htab_hash(key));

	return h->slots[i].key ? h->slots[i].val : NULL;
}

int
htab_put(struct htab *h, const char *key, void *val)
{
	uint64_t h64 = htab_hash(key);
	size_t i;
	int r;

	if (!val)
		return -EINVAL;
	i = htab_find(h, key, h64);
	if (h->slots[i].key) {
		h->slots[i].key = key;
		h->slots[i].val = val;
		return 0;
	}
	if (h->count + 1 > htab_limit(h->cap)) {
		r = htab_reserve(h, h->count + 1);
		if (r < 0)
			return r;
		i = htab_find(h, key, h64);
	}
	h->slots[i] = (struct htab_slot){ .key = key, .val = val, .hash = h64 };
	h->count++;
	return 0;
}

void *
htab_del(struct htab *h, const char *key)
{
	size_t mask = h->cap - 1;
	size_t i = htab_find(h, key, htab_hash(key));
	size_t j;
	void *val = h->slots[i].val;

	if (!h->slots[i].key)
		return NULL;
	/*
	 * Backward shift: pull later members of the probe run into the hole
	 * when the hole lies between their home slot and where they sit.
	 */
	j = i;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!h->slots[j].key)
			break;
		home = (size_t)h->slots[j].hash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			h->slots[i] = h->slots[j];
			i = j;
		}
	}
	h->slots[i] = (struct htab_slot){ 0 };
	h->count--;
	return val;
}

size_t
htab_count(const struct htab *h)
{
	return h->count;
}

void
htab_iter_init(const struct htab *h, struct htab_iter *it)
{
	it->h = h;
	it->i = 0;
}

bool
htab_iter_next(struct htab_iter *it, const char **ret_key, void **ret_val)
{
	const struct htab *h = it->h;

	while (it->i < h->cap) {
		const struct htab_slot *s = &h->slots[it->i++];

		if (s->key) {
			if (ret_key)
				*ret_key = s->key;
			if (ret_val)
				*ret_val = s->val;
			return true;
		}
	}
	return false;
}
