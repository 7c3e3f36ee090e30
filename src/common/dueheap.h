/* SPDX-License-Identifier: ISC */
/* dueheap.h -- a min-heap of (due time, id): the schedule of an outbox */
#ifndef TR_DUEHEAP_H
#define TR_DUEHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct due {
	uint64_t due_ms;
	uint64_t id;
};

/* Zero-initialised is empty. Ties go to the smaller id. */
struct dueheap {
	struct due *v;
	size_t n, cap;
};

/* 0 or -ENOMEM. */
int dueheap_push(struct dueheap *h, uint64_t due_ms, uint64_t id);
/* The earliest entry; h must not be empty. */
static inline const struct due *
dueheap_top(const struct dueheap *h)
{
	return &h->v[0];
}
/* Remove and return the earliest; h must not be empty. */
struct due dueheap_pop(struct dueheap *h);
void dueheap_free(struct dueheap *h);

#endif
