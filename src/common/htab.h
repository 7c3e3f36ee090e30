/* SPDX-License-Identifier: ISC */
/* htab.h -- open-addressing hash table: C string keys to pointers */
#ifndef TR_HTAB_H
#define TR_HTAB_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Linear probing with backward-shift deletion, grown to keep the load at
 * or under 70%. The table does NOT own its keys: a key string must stay
 * valid and unchanged while its entry is in the table (usually it lives
 * inside the value). Values are never NULL, so htab_get() can say
 * "missing" with NULL.
 */
struct htab;

struct htab_iter {
	const struct htab *h;
	size_t i;
};

/* A table sized for hint entries (0: small). 0 or -ENOMEM. */
int htab_new(size_t hint, struct htab **ret_h);
/* Frees the table, not the keys or values. Accepts NULL; returns NULL. */
struct htab *htab_free(struct htab *h);

/* The value stored under key, or NULL. */
void *htab_get(const struct htab *h, const char *key);
/*
 * Store val (not NULL) under key, replacing the key pointer and the value
 * of an equal key already there. Replacing never allocates and never
 * fails. 0, -EINVAL (val NULL) or -ENOMEM (the table is unchanged).
 */
int htab_put(struct htab *h, const char *key, void *val);
/* Remove key; its value, or NULL if it was not there. Never allocates. */
void *htab_del(struct htab *h, const char *key);
size_t htab_count(const struct htab *h);
/*
 * Make room for n entries in all: until the count exceeds n, htab_put()
 * does not allocate and cannot fail. 0 or -ENOMEM.
 */
int htab_reserve(struct htab *h, size_t n);

/*
 * Visit every entry in no particular order. The table must not change
 * while an iteration is under way.
 */
void htab_iter_init(const struct htab *h, struct htab_iter *it);
bool htab_iter_next(struct htab_iter *it, const char **ret_key, void **ret_val);

#endif
