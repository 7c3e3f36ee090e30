/* SPDX-License-Identifier: ISC */
/* test_search.c -- unit tests for the catalog's inverted index (and htab) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/search.h"
#include "common/htab.h"
#include "common/macro.h"

#define HITS_MAX 32

static int
setup(void **state)
{
	struct search_index *idx = search_new();

	if (!idx)
		return -1;
	*state = idx;
	return 0;
}

static int
teardown(void **state)
{
	search_free(*state);
	return 0;
}

/* Run query; returns the total, fills hits (up to max). */
static size_t
query(const struct search_index *idx, const char *q, struct search_hit *hits,
    size_t max)
{
	size_t total = 12345;

	assert_int_equal(search_query(idx, q, NULL, NULL, NULL, hits, max, &total),
	    0);
	assert_int_not_equal(total, 12345);
	return total;
}

static size_t
count(const struct search_index *idx, const char *q)
{
	struct search_hit hits[HITS_MAX];

	return query(idx, q, hits, HITS_MAX);
}

static void
test_tokenize_fold(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[HITS_MAX];

	assert_int_equal(search_add(idx, 1, "Hello, WORLD!",
	    "tea-room/caf\xc3\xa9 (x2)"), 0);
	/* hello world tea room café x2 */
	assert_int_equal(search_words(idx), 6);
	assert_int_equal(count(idx, "hello"), 1);
	assert_int_equal(count(idx, "HeLLo"), 1);
	assert_int_equal(count(idx, "world"), 1);
	assert_int_equal(count(idx, "tea"), 1);
	assert_int_equal(count(idx, "room"), 1);
	assert_int_equal(count(idx, "X2"), 1);
	assert_int_equal(count(idx, "caf\xc3\xa9"), 1);
	assert_int_equal(count(idx, "caf"), 0);
	assert_int_equal(count(idx, "tea-room"), 1);
	/* Punctuation only separates. */
	assert_int_equal(query(idx, "  ...hello!!  ", hits, HITS_MAX), 1);
	assert_int_equal(hits[0].doc, 1);
	/* Only ASCII is folded. */
	assert_int_equal(count(idx, "CAF\xc3\x89"), 0);
	assert_int_equal(count(idx, "hell"), 0);
}

static void
test_and_semantics(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[HITS_MAX];

	assert_int_equal(search_add(idx, 1, "red apple", ""), 0);
	assert_int_equal(search_add(idx, 2, "green apple", ""), 0);
	assert_int_equal(search_add(idx, 3, "red pepper", "not an apple"), 0);

	assert_int_equal(count(idx, "apple"), 3);
	assert_int_equal(query(idx, "red apple", hits, HITS_MAX), 2);
	assert_int_equal(hits[0].doc, 1);
	assert_int_equal(hits[1].doc, 3);
	assert_int_equal(count(idx, "red green"), 0);
	assert_int_equal(count(idx, "apple banana"), 0);
	/* A repeated word counts once. */
	assert_int_equal(query(idx, "green green apple", hits, HITS_MAX), 1);
	assert_int_equal(hits[0].doc, 2);
	assert_int_equal(hits[0].score, 8);
}

static void
test_ranking(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[HITS_MAX];

	/* 3 in the description < 1 in the name (weight 4) == 4 in it */
	assert_int_equal(search_add(idx, 10, "Food", "pizza pizza pizza"), 0);
	assert_int_equal(search_add(idx, 20, "Pizza", "fresh"), 0);
	assert_int_equal(search_add(idx, 5, "Other", "pizza pizza pizza pizza"),
	    0);
	assert_int_equal(search_add(idx, 30, "Pizza pizza", "pizza"), 0);

	assert_int_equal(query(idx, "pizza", hits, HITS_MAX), 4);
	assert_int_equal(hits[0].doc, 30);
	assert_int_equal(hits[0].score, 9);
	/* Ties go to the lower doc. */
	assert_int_equal(hits[1].doc, 5);
	assert_int_equal(hits[1].score, 4);
	assert_int_equal(hits[2].doc, 20);
	assert_int_equal(hits[2].score, 4);
	assert_int_equal(hits[3].doc, 10);
	assert_int_equal(hits[3].score, 3);

	/* Scores add up over the words of the query. */
	assert_int_equal(query(idx, "pizza fresh", hits, HITS_MAX), 1);
	assert_int_equal(hits[0].doc, 20);
	assert_int_equal(hits[0].score, 5);
}

static void
test_ties_by_doc(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[HITS_MAX];
	const uint32_t docs[] = { 9, 3, 7, 1, 5 };

	for (size_t i = 0; i < ELEMENTSOF(docs); i++)
		assert_int_equal(search_add(idx, docs[i], "same words", "here"),
		    0);
	assert_int_equal(query(idx, "same here", hits, HITS_MAX), 5);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(hits[i].doc, 2 * i + 1);
		assert_int_equal(hits[i].score, 5);
	}
	/* The limit keeps the best: the lowest docs. */
	assert_int_equal(query(idx, "same", hits, 2), 5);
	assert_int_equal(hits[0].doc, 1);
	assert_int_equal(hits[1].doc, 3);
}

/* Reverse doc order, as a caller's own key order might be. */
static int
reverse_doc(uint32_t a, uint32_t b, void *arg)
{
	(void)arg;
	return a < b ? 1 : -1;
}

static void
test_tiebreak(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[HITS_MAX];
	size_t total = 0;

	for (uint32_t d = 1; d <= 6; d++)
		assert_int_equal(search_add(idx, d, "lamp", "desk"), 0);
	assert_int_equal(search_add(idx, 7, "lamp desk", ""), 0);
	assert_int_equal(search_query(idx, "lamp desk", NULL, reverse_doc,
	    NULL, hits, 3, &total), 0);
	assert_int_equal(total, 7);
	/* The higher score wins first; equal scores follow the tie-break,
	 * also when the limit cuts the list (the heap uses it too). */
	assert_int_equal(hits[0].doc, 7);
	assert_int_equal(hits[1].doc, 6);
	assert_int_equal(hits[2].doc, 5);
}

static void
test_remove(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[HITS_MAX];

	assert_int_equal(search_add(idx, 1, "Blue Widget", "a widget, blue"),
	    0);
	assert_int_equal(search_add(idx, 2, "Red Widget", "shiny"), 0);
	assert_int_equal(search_words(idx), 5);

	search_remove(idx, 1, "Blue Widget", "a widget, blue");
	assert_int_equal(count(idx, "blue"), 0);
	assert_int_equal(query(idx, "widget", hits, HITS_MAX), 1);
	assert_int_equal(hits[0].doc, 2);
	/* blue and a are gone with their only document. */
	assert_int_equal(search_words(idx), 3);

	/* Removing again, or a doc never added, changes nothing. */
	search_remove(idx, 1, "Blue Widget", "a widget, blue");
	search_remove(idx, 77, "Red Widget", "shiny");
	assert_int_equal(count(idx, "widget"), 1);

	/* Re-adding the same doc number works. */
	assert_int_equal(search_add(idx, 1, "Green Gadget", ""), 0);
	assert_int_equal(count(idx, "gadget"), 1);

	search_remove(idx, 2, "Red Widget", "shiny");
	search_remove(idx, 1, "Green Gadget", "");
	assert_int_equal(search_words(idx), 0);
	assert_int_equal(count(idx, "widget"), 0);
}

static bool
even_only(uint32_t doc, void *arg)
{
	size_t *calls = arg;

	(*calls)++;
	return doc % 2 == 0;
}

static void
test_filter(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[HITS_MAX];
	size_t total = 0, calls = 0;

	for (uint32_t d = 1; d <= 10; d++)
		assert_int_equal(search_add(idx, d, "lamp",
		    d <= 5 ? "desk" : ""), 0);
	assert_int_equal(search_query(idx, "lamp", even_only, NULL, &calls, hits,
	    HITS_MAX, &total), 0);
	assert_int_equal(total, 5);
	assert_int_equal(calls, 10);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(hits[i].doc % 2, 0);
	/* Equal scores: the kept documents in doc order. */
	assert_int_equal(hits[0].doc, 2);
	assert_int_equal(hits[1].doc, 4);
	assert_int_equal(hits[2].doc, 6);

	/* The filter only sees documents that have every word. */
	calls = 0;
	assert_int_equal(search_query(idx, "lamp desk", even_only, NULL, &calls, hits,
	    HITS_MAX, &total), 0);
	assert_int_equal(total, 2);
	assert_int_equal(calls, 5);
}

static void
test_limit_total(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[3];
	size_t total = 0;
	char desc[64];

	/* doc d has d description hits, so higher docs rank higher. */
	for (uint32_t d = 1; d <= 20; d++) {
		desc[0] = '\0';
		for (uint32_t i = 0; i < d; i++)
			strcat(desc, "ok ");
		assert_int_equal(search_add(idx, d, "item", desc), 0);
	}
	assert_int_equal(query(idx, "ok item", hits, 3), 20);
	assert_int_equal(hits[0].doc, 20);
	assert_int_equal(hits[1].doc, 19);
	assert_int_equal(hits[2].doc, 18);
	assert_int_equal(hits[0].score, 24);

	/* max 0: only the total. */
	assert_int_equal(search_query(idx, "item", NULL, NULL, NULL, NULL, 0, &total),
	    0);
	assert_int_equal(total, 20);
}

static void
test_bounds(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[HITS_MAX];
	size_t total = 99;
	char q[256] = "";

	assert_int_equal(search_add(idx, 1, "w", ""), 0);
	assert_int_equal(search_query(idx, "", NULL, NULL, NULL, hits, HITS_MAX,
	    &total), -EINVAL);
	assert_int_equal(search_query(idx, " ,;-- !", NULL, NULL, NULL, hits,
	    HITS_MAX, &total), -EINVAL);
	assert_int_equal(search_query(idx, NULL, NULL, NULL, NULL, hits, HITS_MAX,
	    &total), -EINVAL);
	assert_int_equal(total, 99);

	/* SEARCH_QUERY_WORDS_MAX words pass, one more does not. */
	for (int i = 0; i < SEARCH_QUERY_WORDS_MAX; i++)
		strcat(q, "w ");
	assert_int_equal(search_query(idx, q, NULL, NULL, NULL, hits, HITS_MAX,
	    &total), 0);
	assert_int_equal(total, 1);
	strcat(q, "w");
	assert_int_equal(search_query(idx, q, NULL, NULL, NULL, hits, HITS_MAX,
	    &total), -EINVAL);
}

static void
test_long_word(void **state)
{
	struct search_index *idx = *state;
	char word[200], q[200];

	/* A long ASCII word is cut at SEARCH_WORD_MAX bytes. */
	memset(word, 'a', 100);
	word[100] = '\0';
	assert_int_equal(search_add(idx, 1, word, ""), 0);
	assert_int_equal(count(idx, word), 1);
	memset(q, 'a', SEARCH_WORD_MAX);
	q[SEARCH_WORD_MAX] = '\0';
	assert_int_equal(count(idx, q), 1);
	q[SEARCH_WORD_MAX - 1] = '\0';
	assert_int_equal(count(idx, q), 0);

	/*
	 * 63 'b' then "é" (2 bytes): the limit falls inside the é, so the
	 * word is cut before it, at 63 bytes.
	 */
	memset(word, 'b', 63);
	strcpy(word + 63, "\xc3\xa9\xc3\xa9zzz");
	assert_int_equal(search_add(idx, 2, "", word), 0);
	memset(q, 'b', 63);
	q[63] = '\0';
	assert_int_equal(count(idx, q), 1);
	assert_int_equal(count(idx, word), 1);
	/* A query word is cut the same way. */
	strcpy(q + 63, "\xc3\xa9");
	assert_int_equal(count(idx, q), 1);
	strcpy(q + 62, "\xc3\xa9");
	assert_int_equal(count(idx, q), 0);
	assert_int_equal(search_words(idx), 2);
}

static void
test_term_frequency_saturates(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[1];
	size_t n = 70000;
	char *desc = malloc(2 * n + 1);

	assert_non_null(desc);
	for (size_t i = 0; i < n; i++)
		memcpy(desc + 2 * i, "x ", 2);
	desc[2 * n] = '\0';
	assert_int_equal(search_add(idx, 4, "x", desc), 0);
	assert_int_equal(query(idx, "x", hits, 1), 1);
	assert_int_equal(hits[0].score, 4 + UINT16_MAX);
	search_remove(idx, 4, "x", desc);
	assert_int_equal(search_words(idx), 0);
	free(desc);
}

static void
test_many_docs(void **state)
{
	struct search_index *idx = *state;
	struct search_hit hits[5];
	char name[64];

	for (uint32_t d = 0; d < 5000; d++) {
		snprintf(name, sizeof(name), "common w%u m%u", d, d % 7);
		assert_int_equal(search_add(idx, d, name, ""), 0);
	}
	assert_int_equal(search_words(idx), 1 + 5000 + 7);
	assert_int_equal(query(idx, "common m3", hits, 5), 714);
	assert_int_equal(hits[0].doc, 3);
	assert_int_equal(hits[4].doc, 31);
	assert_int_equal(query(idx, "w4321 common", hits, 5), 1);
	assert_int_equal(hits[0].doc, 4321);
	for (uint32_t d = 0; d < 5000; d += 2) {
		snprintf(name, sizeof(name), "common w%u m%u", d, d % 7);
		search_remove(idx, d, name, "");
	}
	assert_int_equal(query(idx, "common", hits, 5), 2500);
	assert_int_equal(hits[0].doc, 1);
}

/* The hash table the index is built on. */
static void
test_htab(void **state _unused_)
{
	struct htab *h = NULL;
	struct htab_iter it;
	static char keys[3000][16];
	const char *k;
	void *v;
	size_t seen = 0;

	assert_int_equal(htab_new(0, &h), 0);
	assert_null(htab_get(h, "x"));
	assert_null(htab_del(h, "x"));
	assert_int_equal(htab_put(h, "x", NULL), -EINVAL);
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		snprintf(keys[i], sizeof(keys[i]), "key-%zu", i);
		assert_int_equal(htab_put(h, keys[i], &keys[i]), 0);
	}
	assert_int_equal(htab_count(h), ELEMENTSOF(keys));
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		assert_ptr_equal(htab_get(h, keys[i]), &keys[i]);

	/* Replacing keeps the count and takes the new key pointer. */
	{
		char other[16] = "key-7";

		assert_int_equal(htab_put(h, other, keys[8]), 0);
		assert_int_equal(htab_count(h), ELEMENTSOF(keys));
		assert_ptr_equal(htab_get(h, "key-7"), keys[8]);
		htab_iter_init(h, &it);
		while (htab_iter_next(&it, &k, &v)) {
			if (v == keys[8] && strcmp(k, "key-7") == 0)
				assert_ptr_equal(k, other);
		}
		assert_int_equal(htab_put(h, keys[7], &keys[7]), 0);
	}

	/* Delete every third; the rest stay reachable (backward shift). */
	for (size_t i = 0; i < ELEMENTSOF(keys); i += 3)
		assert_ptr_equal(htab_del(h, keys[i]), &keys[i]);
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		if (i % 3 == 0)
			assert_null(htab_get(h, keys[i]));
		else
			assert_ptr_equal(htab_get(h, keys[i]), &keys[i]);
	}
	assert_int_equal(htab_count(h), ELEMENTSOF(keys) * 2 / 3);

	htab_iter_init(h, &it);
	while (htab_iter_next(&it, &k, &v)) {
		assert_ptr_equal(htab_get(h, k), v);
		seen++;
	}
	assert_int_equal(seen, htab_count(h));

	/* After a reserve, puts up to that count succeed without growing. */
	assert_int_equal(htab_reserve(h, htab_count(h) + 1000), 0);
	for (size_t i = 0; i < ELEMENTSOF(keys); i += 3)
		assert_int_equal(htab_put(h, keys[i], &keys[i]), 0);
	assert_int_equal(htab_count(h), ELEMENTSOF(keys));

	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		assert_ptr_equal(htab_del(h, keys[i]), &keys[i]);
	assert_int_equal(htab_count(h), 0);
	htab_iter_init(h, &it);
	assert_false(htab_iter_next(&it, &k, &v));
	assert_null(htab_free(h));
	assert_null(htab_free(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tokenize_fold,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_and_semantics,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ranking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ties_by_doc,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiebreak, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_total,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_word,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_term_frequency_saturates,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_docs,
		    setup, teardown),
		cmocka_unit_test(test_htab),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
