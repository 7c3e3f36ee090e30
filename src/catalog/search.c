/* SPDX-License-Identifier: ISC */
/* search.c -- in-memory inverted index over service names and descriptions */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/search.h"
#include "common/macro.h"
#include "common/htab.h"

/* A word in the name counts this many times one in the description. */
#define SEARCH_NAME_WEIGHT 4u

struct search_posting {
	uint32_t doc;
	uint16_t name_tf;       /* saturating */
	uint16_t desc_tf;
};

/* One word's documents, sorted by doc. */
struct search_list {
	struct search_posting *v;
	uint32_t n;
	uint32_t cap;
	char word[];            /* the key in idx->words */
};

struct search_index {
	struct htab *words;     /* word -> struct search_list */
};

struct search_index *
search_new(void)
{
	struct search_index *idx = calloc(1, sizeof(*idx));

	if (!idx)
		return NULL;
	if (htab_new(0, &idx->words) < 0) {
		free(idx);
		return NULL;
	}
	return idx;
}

struct search_index *
search_free(struct search_index *idx)
{
	struct htab_iter it;
	void *val;

	if (!idx)
		return NULL;
	htab_iter_init(idx->words, &it);
	while (htab_iter_next(&it, NULL, &val)) {
		struct search_list *l = val;

		free(l->v);
		free(l);
	}
	htab_free(idx->words);
	free(idx);
	return NULL;
}

size_t
search_words(const struct search_index *idx)
{
	return htab_count(idx->words);
}

static bool
search_is_word_byte(unsigned char c)
{
	return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

/*
 * The next word at *pp, folded and cut to SEARCH_WORD_MAX bytes, into
 * buf[SEARCH_WORD_MAX + 1]. Returns its length, 0 at the end of the text.
 * A cut word ends before the UTF-8 character the limit falls in, unless
 * there is no character start to cut at.
 */
static size_t
search_next_word(const char **pp, char *buf)
{
	const unsigned char *p = (const unsigned char *)*pp;
	const unsigned char *start;
	size_t len;

	while (*p != '\0' && !search_is_word_byte(*p))
		p++;
	start = p;
	while (*p != '\0' && search_is_word_byte(*p))
		p++;
	*pp = (const char *)p;
	len = (size_t)(p - start);
	if (len > SEARCH_WORD_MAX) {
		size_t cut = SEARCH_WORD_MAX;

		while (cut > 0 && (start[cut] & 0xc0) == 0x80)
			cut--;
		len = cut > 0 ? cut : SEARCH_WORD_MAX;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = start[i];

		buf[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	buf[len] = '\0';
	return len;
}

/* Index of the first posting with doc >= the given doc. */
static uint32_t
search_list_lower(const struct search_list *l, uint32_t doc)
{
	uint32_t lo = 0, hi = l->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].doc < doc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct search_posting *
search_list_find(const struct search_list *l, uint32_t doc)
{
	uint32_t i = search_list_lower(l, doc);

	return i < l->n && l->v[i].doc == doc ? &l->v[i] : NULL;
}

static int
search_list_grow(struct search_list *l)
{
	struct search_posting *v;
	uint32_t cap;

	if (l->cap >= UINT32_MAX / 2)
		return -ENOMEM;
	cap = l->cap ? l->cap * 2 : 4;
	v = reallocarray(l->v, cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	l->cap = cap;
	return 0;
}

static struct search_list *
search_list_new(const char *word, size_t len)
{
	struct search_list *l = calloc(1, sizeof(*l) + len + 1);

	if (!l)
		return NULL;
	if (search_list_grow(l) < 0) {
		free(l);
		return NULL;
	}
	memcpy(l->word, word, len + 1);
	return l;
}

/* Count one occurrence of word in doc. 0 or -ENOMEM (nothing changed). */
static int
search_add_word(struct search_index *idx, const char *word, size_t len,
    uint32_t doc, bool in_name)
{
	struct search_list *l = htab_get(idx->words, word);
	struct search_posting *p;
	uint32_t i;
	int r;

	if (!l) {
		l = search_list_new(word, len);
		if (!l)
			return -ENOMEM;
		r = htab_put(idx->words, l->word, l);
		if (r < 0) {
			free(l->v);
			free(l);
			return r;
		}
	}
	i = search_list_lower(l, doc);
	if (i == l->n || l->v[i].doc != doc) {
		if (l->n == l->cap) {
			r = search_list_grow(l);
			if (r < 0)
				return r;
		}
		memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(l->v[0]));
		l->v[i] = (struct search_posting){ .doc = doc };
		l->n++;
	}
	p = &l->v[i];
	if (in_name) {
		if (p->name_tf < UINT16_MAX)
			p->name_tf++;
	} else {
		if (p->desc_tf < UINT16_MAX)
			p->desc_tf++;
	}
	return 0;
}

/* Drop doc from the lists of every word of text. Never allocates. */
static void
search_remove_text(struct search_index *idx, uint32_t doc, const char *text)
{
	char word[SEARCH_WORD_MAX + 1];

	if (!text)
		return;
	while (search_next_word(&text, word) > 0) {
		struct search_list *l = htab_get(idx->words, word);
		uint32_t i;

		if (!l)
			continue;
		i = search_list_lower(l, doc);
		if (i == l->n || l->v[i].doc != doc)
			continue;
		l->n--;
		memmove(&l->v[i], &l->v[i + 1], (l->n - i) * sizeof(l->v[0]));
		if (l->n == 0) {
			htab_del(idx->words, l->word);
			free(l->v);
			free(l);
		}
	}
}

void
search_remove(struct search_index *idx, uint32_t doc, const char *name,
    const char *description)
{
	search_remove_text(idx, doc, name);
	search_remove_text(idx, doc, description);
}

static int
search_add_text(struct search_index *idx, uint32_t doc, const char *text,
    bool in_name)
{
	char word[SEARCH_WORD_MAX + 1];
	size_t len;
	int r;

	if (!text)
		return 0;
	while ((len = search_next_word(&text, word)) > 0) {
		r = search_add_word(idx, word, len, doc, in_name);
		if (r < 0)
			return r;
	}
	return 0;
}

int
search_add(struct search_index *idx, uint32_t doc, const char *name,
    const char *description)
{
	int r;

	r = search_add_text(idx, doc, name, true);
	if (r >= 0)
		r = search_add_text(idx, doc, description, false);
	if (r < 0) {
		/* doc was in no list before: dropping it restores them all. */
		search_remove(idx, doc, name, description);
		return r;
	}
	return 0;
}

struct search_order {
	search_tiebreak_fn tiebreak;
	void *arg;
};

/* a ranks before b: higher score, then the tie-break, then lower doc. */
static bool
search_hit_better(const struct search_hit *a, const struct search_hit *b,
    const struct search_order *o)
{
	if (a->score != b->score)
		return a->score > b->score;
	if (o->tiebreak && a->doc != b->doc) {
		int c = o->tiebreak(a->doc, b->doc, o->arg);
		if (c != 0)
			return c < 0;
	}
	return a->doc < b->doc;
}

static int
search_hit_cmp(const void *x, const void *y, void *arg)
{
	const struct search_hit *a = x, *b = y;

	if (search_hit_better(a, b, arg))
		return -1;
	if (search_hit_better(b, a, arg))
		return 1;
	return 0;
}

/*
 * hits[0..n) is a heap with the worst kept hit at the root; sift the
 * element at i down into place.
 */
static void
search_heap_down(struct search_hit *hits, size_t n, size_t i,
    const struct search_order *o)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, worst = i;
		struct search_hit t;

		if (l < n && search_hit_better(&hits[worst], &hits[l], o))
			worst = l;
		if (r < n && search_hit_better(&hits[worst], &hits[r], o))
			worst = r;
		if (worst == i)
			return;
		t = hits[i];
		hits[i] = hits[worst];
		hits[worst] = t;
		i = worst;
	}
}

static void
search_heap_up(struct search_hit *hits, size_t i,
    const struct search_order *o)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		struct search_hit t;

		if (!search_hit_better(&hits[parent], &hits[i], o))
			return;
		t = hits[i];
		hits[i] = hits[parent];
		hits[parent] = t;
		i = parent;
	}
}

int
search_query(const struct search_index *idx, const char *query,
    search_filter_fn filter, search_tiebreak_fn tiebreak, void *arg,
    struct search_hit *hits, size_t max, size_t *ret_total)
{
	const struct search_order order = { .tiebreak = tiebreak, .arg = arg };
	char words[SEARCH_QUERY_WORDS_MAX][SEARCH_WORD_MAX + 1];
	const struct search_list *lists[SEARCH_QUERY_WORDS_MAX];
	char word[SEARCH_WORD_MAX + 1];
	const struct search_list *shortest = NULL;
	size_t n_words = 0, n_tokens = 0, total = 0, kept = 0;

	if (!query)
		return -EINVAL;
	while (search_next_word(&query, word) > 0) {
		bool dup = false;

		if (++n_tokens > SEARCH_QUERY_WORDS_MAX)
			return -EINVAL;
		for (size_t i = 0; i < n_words && !dup; i++)
			dup = strcmp(words[i], word) == 0;
		if (!dup)
			memcpy(words[n_words++], word, sizeof(word));
	}
	if (n_words == 0)
		return -EINVAL;

	for (size_t i = 0; i < n_words; i++) {
		lists[i] = htab_get(idx->words, words[i]);
		if (!lists[i]) {
			/* A word no document has: nothing matches. */
			*ret_total = 0;
			return 0;
		}
		if (!shortest || lists[i]->n < shortest->n)
			shortest = lists[i];
	}

	for (uint32_t k = 0; k < shortest->n; k++) {
		uint32_t doc = shortest->v[k].doc;
		struct search_hit hit = { .doc = doc };
		bool all = true;

		for (size_t i = 0; i < n_words && all; i++) {
			const struct search_posting *p = &shortest->v[k];

			if (lists[i] != shortest)
				p = search_list_find(lists[i], doc);
			if (!p) {
				all = false;
				break;
			}
			hit.score += SEARCH_NAME_WEIGHT * p->name_tf +
			    p->desc_tf;
		}
		if (!all || (filter && !filter(doc, arg)))
			continue;
		total++;
		if (max == 0)
			continue;
		if (kept < max) {
			hits[kept] = hit;
			search_heap_up(hits, kept, &order);
			kept++;
		} else if (search_hit_better(&hit, &hits[0], &order)) {
			hits[0] = hit;
			search_heap_down(hits, kept, 0, &order);
		}
	}
	if (kept > 1)
		qsort_r(hits, kept, sizeof(hits[0]), search_hit_cmp,
		    unconst(&order));
	*ret_total = total;
	return 0;
}
