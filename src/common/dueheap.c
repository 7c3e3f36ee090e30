/* SPDX-License-Identifier: ISC */
/* dueheap.c -- a min-heap of (due time, id): the schedule of an outbox */
#include <errno.h>
#include <stdlib.h>

#include "common/dueheap.h"

static bool
due_less(const struct due *a, const struct due *b)
{
	return a->due_ms < b->due_ms ||
	    (a->due_ms == b->due_ms && a->id < b->id);
}

static void
due_swap(struct due *a, struct due *b)
{
	struct due t = *a;

	*a = *b;
	*b = t;
}

int
dueheap_push(struct dueheap *h, uint64_t due_ms, uint64_t id)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct due *v = reallocarray(h->v, cap, sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	i = h->n++;
	h->v[i] = (struct due){ due_ms, id };
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!due_less(&h->v[i], &h->v[p]))
			break;
		due_swap(&h->v[i], &h->v[p]);
		i = p;
	}
	return 0;
}

struct due
dueheap_pop(struct dueheap *h)
{
	struct due top = h->v[0];
	size_t i = 0;

	h->v[0] = h->v[--h->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < h->n && due_less(&h->v[l], &h->v[min]))
			min = l;
		if (r < h->n && due_less(&h->v[r], &h->v[min]))
			min = r;
		if (min == i)
			break;
		due_swap(&h->v[min], &h->v[i]);
		i = min;
	}
	return top;
}

void
dueheap_free(struct dueheap *h)
{
	free(h->v);
	*h = (struct dueheap){ 0 };
}
