/* SPDX-License-Identifier: ISC */
/* search.h -- in-memory inverted index over service names and descriptions */
#ifndef TR_SEARCH_H
#define TR_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Words longer than this are cut; queries of more words are refused. */
#define SEARCH_WORD_MAX 64
#define SEARCH_QUERY_WORDS_MAX 16

struct search_index;

struct search_hit {
	uint32_t doc;
	uint32_t score;
};

struct search_index *search_new(void);
struct search_index *search_free(struct search_index *idx);

/*
 * Index document doc (a caller-chosen id, unique while indexed) under the
 * words of name and description. Words: maximal runs of ASCII letters and
 * digits or of bytes >= 0x80 (UTF-8), ASCII folded to lower case. 0 or
 * -ENOMEM (the index is then unchanged).
 */
int search_add(struct search_index *idx, uint32_t doc, const char *name,
    const char *description);
/* Remove doc; name and description must be the ones it was added with. */
void search_remove(struct search_index *idx, uint32_t doc, const char *name,
    const char *description);

typedef bool (*search_filter_fn)(uint32_t doc, void *arg);
/* Order two documents of equal score: <0 if a comes first. */
typedef int (*search_tiebreak_fn)(uint32_t a, uint32_t b, void *arg);

/*
 * Documents containing every word of query, best first: a word in the
 * name weighs more than one in the description; ties go to tiebreak (may
 * be NULL), then to the lower doc. At most max hits are written to hits;
 * *ret_total gets the number of matches. filter (may be NULL) drops
 * documents it returns false for. Both callbacks get arg.
 * -EINVAL for a query with no word or too many words.
 */
int search_query(const struct search_index *idx, const char *query,
    search_filter_fn filter, search_tiebreak_fn tiebreak, void *arg,
    struct search_hit *hits, size_t max, size_t *ret_total);

/* Distinct words indexed. */
size_t search_words(const struct search_index *idx);

#endif
