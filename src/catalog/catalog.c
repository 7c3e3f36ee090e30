/* SPDX-License-Identifier: ISC */
/* catalog.c -- providers and services: in memory for reads, in the store for truth */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/catalog.h"
#include "catalog/search.h"
#include "common/errcode.h"
#include "common/htab.h"
#include "common/macro.h"
#include "store.pb-c.h"

/*
 * Every provider and service lives in memory as the unpacked store record
 * the catalog owns. The store is written first; memory changes only once
 * the transaction has committed. Everything a write needs to allocate is
 * allocated before the commit (records, entries, search postings, room in
 * the tables and arrays), so applying a committed write cannot fail, and a
 * failed write leaves the catalog as it was. (A category first named by a
 * failed write stays behind, empty; empty categories are never shown.)
 *
 * Each service has a search document number; an update indexes the new
 * text under a fresh number before the commit and drops the old number
 * after it.
 */

/* category "\0" id: the key of services_by_category. */
#define CATALOG_CATKEY_MAX (CATALOG_CATEGORY_MAX + 1 + CATALOG_ID_MAX)
/* Imports with more items than this rebuild the sorted arrays lazily. */
#define CATALOG_BULK_OPS 16

typedef const char *(*cat_key_fn)(const void *elem);

/* Pointers ordered by a string key, sorted lazily when dirty. */
struct cat_vec {
	void **v;
	size_t n;
	size_t cap;
	bool dirty;
	cat_key_fn key;
};

struct cat_service;

struct cat_provider {
	Twinroute__Store__ProviderRecord *rec; /* rec->provider is set */
	Twinroute__Provider pub;               /* id, name, active; into rec */
	struct cat_service *services;          /* linked by pnext/pprev */
};

struct cat_category {
	struct cat_vec members;                /* services, by id */
	size_t visible;
	size_t incoming;                       /* room reserved by a write */
	char name[];
};

struct cat_service {
	Twinroute__Store__ServiceRecord *rec;  /* rec->service is set */
	uint32_t doc;
	struct cat_category *category;
	struct cat_provider *provider;         /* NULL: not in the store */
	struct cat_service *pnext;             /* provider's list, or orphans */
	struct cat_service *pprev;
};

struct catalog {
	struct store *store;
	struct htab *providers;                /* id -> cat_provider */
	struct htab *services;                 /* id -> cat_service */
	struct htab *categories;               /* name -> cat_category */
	struct cat_vec provider_vec;           /* by id */
	struct cat_vec service_vec;            /* by id */
	struct cat_vec category_vec;           /* by name, always sorted */
	struct cat_service **docs;             /* search doc -> service */
	uint32_t *free_docs;                   /* as many slots as docs */
	uint32_t n_docs;                       /* numbers handed out so far */
	uint32_t cap_docs;
	uint32_t n_free;
	struct cat_service *orphans;           /* services without provider */
	struct search_index *search;
	bool dry_run;                          /* catalog_set_dry_run() */
};

/* One record to write: a provider or a service, new or replacing. */
struct cat_op {
	bool is_provider;
	bool must_be_new;
	/* The record to write: shallow copies, no NULL strings. */
	Twinroute__Provider p;
	Twinroute__Service s;
	Twinroute__Money price;
	/* Prepared before the transaction. */
	uint8_t *buf;
	size_t len;
	Twinroute__Store__ProviderRecord *prec;
	Twinroute__Store__ServiceRecord *srec;
	struct cat_provider *pe;
	struct cat_service *se;
	bool created;                          /* pe or se is new */
	bool doc_taken;
	bool indexed;
	uint32_t doc;
	struct cat_category *category;         /* where the service goes */
	bool moves;                            /* ... and it is not there yet */
};

static char cat_empty[1];

static const char *
cat_str(const char *s)
{
	return s ? s : "";
}

static _printf_(3, 4) int
cat_fail(struct catalog_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

static void
cat_err_reset(struct catalog_err *err)
{
	if (err) {
		err->index = -1;
		err->msg[0] = '\0';
	}
}

static int
cat_store_fail(struct catalog_err *err, int r)
{
	if (r == -ENOSPC)
		return cat_fail(err, r, "store: the map is full");
	if (r == -TR_EEXISTS)
		return cat_fail(err, r, "id: exists in the store");
	return cat_fail(err, r, "store: %s", tr_strerror(r));
}

/* -------------------------------------------------------------------- */
/* Validation */

static bool
cat_id_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static int
cat_check_id(const char *field, const char *s, struct catalog_err *err)
{
	size_t len = strlen(cat_str(s));

	if (len == 0)
		return cat_fail(err, -TR_EINVAL_FIELD, "%s: empty", field);
	if (len > CATALOG_ID_MAX)
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "%s: longer than %d bytes", field, CATALOG_ID_MAX);
	for (size_t i = 0; i < len; i++) {
		if (!cat_id_char((unsigned char)s[i]))
			return cat_fail(err, -TR_EINVAL_FIELD,
			    "%s: only A-Z, a-z, 0-9, '.', '_' and '-' allowed",
			    field);
	}
	return 0;
}

/*
 * Length of the UTF-8 character at s and its code point, or 0 when the
 * bytes there are not valid UTF-8 (overlong forms, surrogates and values
 * past U+10FFFF included).
 */
static size_t
cat_utf8_char(const unsigned char *s, unsigned *ret_cp)
{
	unsigned cp, min;
	size_t n;

	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		cp = s[0] & 0x1fu;
		n = 2;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		cp = s[0] & 0x0fu;
		n = 3;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		cp = s[0] & 0x07u;
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return n;
}

/*
 * Text of min..max bytes, valid UTF-8, no control characters (C0, DEL,
 * C1) except newline and tab when multiline.
 */
static int
cat_check_text(const char *field, const char *s, size_t min, size_t max,
    bool multiline, struct catalog_err *err)
{
	const unsigned char *p = (const unsigned char *)cat_str(s);
	size_t len = strlen((const char *)p);

	if (len < min)
		return cat_fail(err, -TR_EINVAL_FIELD, "%s: empty", field);
	if (len > max)
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "%s: longer than %zu bytes", field, max);
	while (*p != '\0') {
		unsigned cp;
		size_t n = cat_utf8_char(p, &cp);

		if (n == 0)
			return cat_fail(err, -TR_EINVAL_FIELD,
			    "%s: not valid UTF-8", field);
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
			if (!multiline || (cp != '\n' && cp != '\t'))
				return cat_fail(err, -TR_EINVAL_FIELD,
				    "%s: control character", field);
		}
		p += n;
	}
	return 0;
}

static int
cat_check_category(const char *s, struct catalog_err *err)
{
	size_t len = strlen(cat_str(s));

	if (len == 0)
		return cat_fail(err, -TR_EINVAL_FIELD, "category: empty");
	if (len > CATALOG_CATEGORY_MAX)
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "category: longer than %d bytes", CATALOG_CATEGORY_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-'))
			return cat_fail(err, -TR_EINVAL_FIELD,
			    "category: only a-z, 0-9 and '-' allowed");
	}
	return 0;
}

static int
cat_check_email(const char *s, struct catalog_err *err)
{
	size_t len = strlen(cat_str(s));
	const char *at;
	const char *domain;
	size_t local_len;

	if (len == 0)
		return cat_fail(err, -TR_EINVAL_FIELD, "email: empty");
	if (len > CATALOG_EMAIL_MAX)
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "email: longer than %d bytes", CATALOG_EMAIL_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return cat_fail(err, -TR_EINVAL_FIELD,
			    "email: spaces, control and non-ASCII characters not allowed");
	}
	at = strchr(s, '@');
	if (!at || strchr(at + 1, '@'))
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "email: not an address (local@domain, one '@')");
	domain = at + 1;
	local_len = (size_t)(at - s);
	if (local_len == 0 || local_len > 64)
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "email: local part must be 1 to 64 bytes");
	if (!strchr(domain, '.') || domain[0] == '.' ||
	    domain[strlen(domain) - 1] == '.' || strstr(domain, ".."))
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "email: domain must be like example.org");
	return 0;
}

static int
cat_check_fax(const char *s, struct catalog_err *err)
{
	size_t len = strlen(cat_str(s));
	size_t digits = len > 0 ? len - 1 : 0;

	if (len == 0 || s[0] != '+' || digits < 8 || digits > 15 || s[1] == '0')
		goto bad;
	for (size_t i = 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto bad;
	}
	return 0;
bad:
	return cat_fail(err, -TR_EINVAL_FIELD,
	    "fax: not E.164 (+ then 8 to 15 digits)");
}

static int
cat_check_price(const Twinroute__Money *m, struct catalog_err *err)
{
	const char *cur;

	if (!m)
		return cat_fail(err, -TR_EINVAL_FIELD, "price: missing");
	if (m->minor < 0 || m->minor > CATALOG_PRICE_MAX)
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "price: out of range (0 to %lld minor units)",
		    (long long)CATALOG_PRICE_MAX);
	cur = cat_str(m->currency);
	if (strlen(cur) != 3 || cur[0] < 'A' || cur[0] > 'Z' || cur[1] < 'A' ||
	    cur[1] > 'Z' || cur[2] < 'A' || cur[2] > 'Z')
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "price: currency must be three upper-case letters (ISO 4217)");
	return 0;
}

int
catalog_check_provider(const Twinroute__Provider *p, struct catalog_err *err)
{
	int r;

	cat_err_reset(err);
	if (!p)
		return cat_fail(err, -TR_EINVAL_FIELD, "provider: missing");
	if ((r = cat_check_id("id", p->id, err)) < 0 ||
	    (r = cat_check_text("name", p->name, 1, CATALOG_NAME_MAX, false,
		 err)) < 0 ||
	    (r = cat_check_email(p->email, err)) < 0 ||
	    (r = cat_check_fax(p->fax, err)) < 0)
		return r;
	return 0;
}

int
catalog_check_service(const Twinroute__Service *s, struct catalog_err *err)
{
	int r;

	cat_err_reset(err);
	if (!s)
		return cat_fail(err, -TR_EINVAL_FIELD, "service: missing");
	if ((r = cat_check_id("id", s->id, err)) < 0 ||
	    (r = cat_check_id("provider", s->provider_id, err)) < 0 ||
	    (r = cat_check_category(s->category, err)) < 0 ||
	    (r = cat_check_text("name", s->name, 1, CATALOG_NAME_MAX, false,
		 err)) < 0 ||
	    (r = cat_check_text("description", s->description, 0,
		 CATALOG_DESC_MAX, true, err)) < 0 ||
	    (r = cat_check_price(s->price, err)) < 0)
		return r;
	return 0;
}

/* -------------------------------------------------------------------- */
/* Sorted pointer arrays */

static int
cat_vec_cmp(const void *a, const void *b, void *arg)
{
	cat_key_fn key = ((const struct cat_vec *)arg)->key;

	return strcmp(key(*(void *const *)a), key(*(void *const *)b));
}

static int
cat_vec_reserve(struct cat_vec *vec, size_t n)
{
	size_t cap;
	void **v;

	if (n <= vec->cap)
		return 0;
	cap = MAX(n, MAX(vec->cap * 2, (size_t)8));
	v = reallocarray(vec->v, cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	vec->v = v;
	vec->cap = cap;
	return 0;
}

static void
cat_vec_sort(struct cat_vec *vec)
{
	if (vec->dirty && vec->n > 1)
		qsort_r(vec->v, vec->n, sizeof(vec->v[0]), cat_vec_cmp, vec);
	vec->dirty = false;
}

/* First index whose key is >= k (or > k when strict); the array is sorted. */
static size_t
cat_vec_bound(const struct cat_vec *vec, const char *k, bool strict)
{
	size_t lo = 0, hi = vec->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(vec->key(vec->v[mid]), k);

		if (c < 0 || (strict && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room must have been reserved. */
static void
cat_vec_insert(struct cat_vec *vec, void *e)
{
	size_t i;

	if (vec->dirty) {
		vec->v[vec->n++] = e;
		return;
	}
	i = cat_vec_bound(vec, vec->key(e), false);
	memmove(&vec->v[i + 1], &vec->v[i], (vec->n - i) * sizeof(vec->v[0]));
	vec->v[i] = e;
	vec->n++;
}

static void
cat_vec_remove(struct cat_vec *vec, void *e)
{
	size_t i = vec->n;

	if (!vec->dirty) {
		i = cat_vec_bound(vec, vec->key(e), false);
		if (i < vec->n && vec->v[i] == e) {
			memmove(&vec->v[i], &vec->v[i + 1],
			    (vec->n - i - 1) * sizeof(vec->v[0]));
			vec->n--;
			return;
		}
	}
	for (i = 0; i < vec->n; i++) {
		if (vec->v[i] == e) {
			vec->v[i] = vec->v[--vec->n];
			vec->dirty = vec->n > 1;
			return;
		}
	}
}

static const char *
cat_service_key(const void *e)
{
	return ((const struct cat_service *)e)->rec->service->id;
}

static const char *
cat_provider_key(const void *e)
{
	return ((const struct cat_provider *)e)->rec->provider->id;
}

static const char *
cat_category_key(const void *e)
{
	return ((const struct cat_category *)e)->name;
}

/* -------------------------------------------------------------------- */
/* Entries */

static bool
cat_svc_visible(const struct cat_service *se)
{
	return se->rec->service->active && se->provider &&
	    se->provider->rec->provider->active;
}

/* Count se in (or out of) its category's visible services. */
static void
cat_account(struct cat_service *se, bool add)
{
	if (!cat_svc_visible(se))
		return;
	if (add)
		se->category->visible++;
	else
		se->category->visible--;
}

static void
cat_plink(struct cat_service **head, struct cat_service *se)
{
	se->pprev = NULL;
	se->pnext = *head;
	if (*head)
		(*head)->pprev = se;
	*head = se;
}

static void
cat_punlink(struct cat_service **head, struct cat_service *se)
{
	if (se->pprev)
		se->pprev->pnext = se->pnext;
	else
		*head = se->pnext;
	if (se->pnext)
		se->pnext->pprev = se->pprev;
	se->pnext = se->pprev = NULL;
}

static struct cat_service **
cat_plist(struct catalog *cat, struct cat_service *se)
{
	return se->provider ? &se->provider->services : &cat->orphans;
}

static void
cat_provider_set_pub(struct cat_provider *pe)
{
	const Twinroute__Provider *p = pe->rec->provider;

	twinroute__provider__init(&pe->pub);
	pe->pub.id = p->id;
	pe->pub.name = p->name;
	pe->pub.active = p->active;
}

static struct cat_category *
cat_category_free(struct cat_category *c)
{
	if (c) {
		free(c->members.v);
		free(c);
	}
	return NULL;
}

/* The category called name, created if needed. */
static int
cat_category_get(struct catalog *cat, const char *name,
    struct cat_category **ret_c)
{
	struct cat_category *c = htab_get(cat->categories, name);
	size_t len;
	int r;

	if (c) {
		*ret_c = c;
		return 0;
	}
	len = strlen(name);
	c = calloc(1, sizeof(*c) + len + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c->name, name, len + 1);
	c->members.key = cat_service_key;
	r = cat_vec_reserve(&cat->category_vec, cat->category_vec.n + 1);
	if (r >= 0)
		r = htab_put(cat->categories, c->name, c);
	if (r < 0) {
		free(c);
		return r;
	}
	cat_vec_insert(&cat->category_vec, c);
	*ret_c = c;
	return 0;
}

static int
cat_doc_take(struct catalog *cat, struct cat_service *se, uint32_t *ret_doc)
{
	uint32_t doc;

	if (cat->n_free > 0) {
		doc = cat->free_docs[--cat->n_free];
	} else {
		if (cat->n_docs == cat->cap_docs) {
			uint32_t cap;
			struct cat_service **docs;
			uint32_t *free_docs;

			if (cat->cap_docs >= UINT32_MAX / 2)
				return -ENOMEM;
			cap = cat->cap_docs ? cat->cap_docs * 2 : 64;
			docs = reallocarray(cat->docs, cap, sizeof(*docs));
			if (!docs)
				return -ENOMEM;
			cat->docs = docs;
			free_docs = reallocarray(cat->free_docs, cap,
			    sizeof(*free_docs));
			if (!free_docs)
				return -ENOMEM;
			cat->free_docs = free_docs;
			cat->cap_docs = cap;
		}
		doc = cat->n_docs++;
	}
	cat->docs[doc] = se;
	*ret_doc = doc;
	return 0;
}

static void
cat_doc_put(struct catalog *cat, uint32_t doc)
{
	cat->docs[doc] = NULL;
	cat->free_docs[cat->n_free++] = doc;
}

static int
cat_catkey(const char *category, const char *id, char *buf, size_t *ret_len)
{
	size_t cl = strlen(category), il = strlen(id);

	if (cl + 1 + il > CATALOG_CATKEY_MAX)
		return -EINVAL;
	memcpy(buf, category, cl);
	buf[cl] = '\0';
	memcpy(buf + cl + 1, id, il);
	*ret_len = cl + 1 + il;
	return 0;
}

/* -------------------------------------------------------------------- */
/* Open and free */

struct catalog *
catalog_free(struct catalog *cat)
{
	struct htab_iter it;
	void *val;

	if (!cat)
		return NULL;
	if (cat->services) {
		htab_iter_init(cat->services, &it);
		while (htab_iter_next(&it, NULL, &val)) {
			struct cat_service *se = val;

			twinroute__store__service_record__free_unpacked(se->rec,
			    NULL);
			free(se);
		}
	}
	if (cat->providers) {
		htab_iter_init(cat->providers, &it);
		while (htab_iter_next(&it, NULL, &val)) {
			struct cat_provider *pe = val;

			twinroute__store__provider_record__free_unpacked(
			    pe->rec, NULL);
			free(pe);
		}
	}
	if (cat->categories) {
		htab_iter_init(cat->categories, &it);
		while (htab_iter_next(&it, NULL, &val))
			cat_category_free(val);
	}
	htab_free(cat->services);
	htab_free(cat->providers);
	htab_free(cat->categories);
	free(cat->provider_vec.v);
	free(cat->service_vec.v);
	free(cat->category_vec.v);
	free(cat->docs);
	free(cat->free_docs);
	search_free(cat->search);
	free(cat);
	return NULL;
}

static bool
cat_key_is(const void *key, size_t key_len, const char *id)
{
	return strlen(id) == key_len && memcmp(key, id, key_len) == 0;
}

static int
cat_load_provider(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct catalog *cat = arg;
	Twinroute__Store__ProviderRecord *rec;
	struct cat_provider *pe;
	int r;

	rec = twinroute__store__provider_record__unpack(NULL, val_len, val);
	if (!rec)
		return -TR_EBADMSG;
	if (!rec->provider || !cat_key_is(key, key_len, rec->provider->id) ||
	    htab_get(cat->providers, rec->provider->id)) {
		twinroute__store__provider_record__free_unpacked(rec, NULL);
		return -TR_EBADMSG;
	}
	pe = calloc(1, sizeof(*pe));
	if (!pe) {
		twinroute__store__provider_record__free_unpacked(rec, NULL);
		return -ENOMEM;
	}
	pe->rec = rec;
	cat_provider_set_pub(pe);
	r = cat_vec_reserve(&cat->provider_vec, cat->provider_vec.n + 1);
	if (r >= 0)
		r = htab_put(cat->providers, rec->provider->id, pe);
	if (r < 0) {
		twinroute__store__provider_record__free_unpacked(rec, NULL);
		free(pe);
		return r;
	}
	cat_vec_insert(&cat->provider_vec, pe);
	return 0;
}

static int
cat_load_service(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct catalog *cat = arg;
	Twinroute__Store__ServiceRecord *rec;
	const Twinroute__Service *s;
	struct cat_service *se;
	struct cat_category *c;
	int r;

	rec = twinroute__store__service_record__unpack(NULL, val_len, val);
	if (!rec)
		return -TR_EBADMSG;
	s = rec->service;
	if (!s || !cat_key_is(key, key_len, s->id) ||
	    htab_get(cat->services, s->id) ||
	    strlen(s->category) > CATALOG_CATEGORY_MAX ||
	    strlen(s->id) > CATALOG_ID_MAX) {
		twinroute__store__service_record__free_unpacked(rec, NULL);
		return -TR_EBADMSG;
	}
	se = calloc(1, sizeof(*se));
	if (!se) {
		twinroute__store__service_record__free_unpacked(rec, NULL);
		return -ENOMEM;
	}
	se->rec = rec;
	r = cat_category_get(cat, s->category, &c);
	if (r >= 0)
		r = cat_vec_reserve(&c->members, c->members.n + 1);
	if (r >= 0)
		r = cat_vec_reserve(&cat->service_vec, cat->service_vec.n + 1);
	if (r >= 0)
		r = cat_doc_take(cat, se, &se->doc);
	if (r < 0)
		goto fail;
	r = search_add(cat->search, se->doc, s->name, s->description);
	if (r >= 0)
		r = htab_put(cat->services, s->id, se);
	if (r < 0) {
		search_remove(cat->search, se->doc, s->name, s->description);
		cat_doc_put(cat, se->doc);
		goto fail;
	}
	se->category = c;
	c->members.dirty = true;
	cat_vec_insert(&c->members, se);
	cat_vec_insert(&cat->service_vec, se);
	se->provider = htab_get(cat->providers, s->provider_id);
	cat_plink(cat_plist(cat, se), se);
	cat_account(se, true);
	return 0;
fail:
	twinroute__store__service_record__free_unpacked(rec, NULL);
	free(se);
	return r;
}

int
catalog_open(struct store *store, struct catalog **ret_cat)
{
	struct catalog *cat;
	struct store_txn *txn = NULL;
	int r;

	cat = calloc(1, sizeof(*cat));
	if (!cat)
		return -ENOMEM;
	cat->store = store;
	cat->provider_vec.key = cat_provider_key;
	cat->service_vec.key = cat_service_key;
	cat->category_vec.key = cat_category_key;
	/* Loading appends; the first read sorts. */
	cat->provider_vec.dirty = true;
	cat->service_vec.dirty = true;
	if ((r = htab_new(0, &cat->providers)) < 0 ||
	    (r = htab_new(0, &cat->services)) < 0 ||
	    (r = htab_new(0, &cat->categories)) < 0)
		goto out;
	cat->search = search_new();
	if (!cat->search) {
		r = -ENOMEM;
		goto out;
	}
	r = store_txn_begin(store, STORE_RDONLY, &txn);
	if (r < 0)
		goto out;
	r = store_iter(txn, STORE_DB_PROVIDERS, NULL, 0, cat_load_provider,
	    cat);
	if (r >= 0)
		r = store_iter(txn, STORE_DB_SERVICES, NULL, 0,
		    cat_load_service, cat);
	if (r < 0) {
		store_txn_abort(txn);
		goto out;
	}
	r = store_txn_commit(txn, NULL);
	if (r < 0)
		goto out;
	*ret_cat = TAKE_PTR(cat);
	return 0;
out:
	catalog_free(cat);
	return r;
}

void
catalog_set_dry_run(struct catalog *cat, bool on)
{
	cat->dry_run = on;
}

/* -------------------------------------------------------------------- */
/* Reads */

const Twinroute__Provider *
catalog_provider(const struct catalog *cat, const char *id)
{
	const struct cat_provider *pe;

	pe = id ? htab_get(cat->providers, id) : NULL;

	return pe ? pe->rec->provider : NULL;
}

const Twinroute__Provider *
catalog_provider_public(const struct catalog *cat, const char *id)
{
	const struct cat_provider *pe;

	pe = id ? htab_get(cat->providers, id) : NULL;

	return pe ? &pe->pub : NULL;
}

const Twinroute__Service *
catalog_service(const struct catalog *cat, const char *id)
{
	const struct cat_service *se = id ? htab_get(cat->services, id) : NULL;

	return se ? se->rec->service : NULL;
}

bool
catalog_service_visible(const struct catalog *cat,
    const Twinroute__Service *svc)
{
	const struct cat_provider *pe;

	if (!svc || !svc->active || !svc->provider_id)
		return false;
	pe = htab_get(cat->providers, svc->provider_id);
	return pe && pe->rec->provider->active;
}

void
catalog_counts(const struct catalog *cat, size_t *ret_providers,
    size_t *ret_services)
{
	if (ret_providers)
		*ret_providers = htab_count(cat->providers);
	if (ret_services)
		*ret_services = htab_count(cat->services);
}

void
catalog_categories(struct catalog *cat, catalog_category_fn cb, void *arg)
{
	for (size_t i = 0; i < cat->category_vec.n; i++) {
		const struct cat_category *c = cat->category_vec.v[i];

		if (c->visible > 0)
			cb(c->name, c->visible, arg);
	}
}

size_t
catalog_list_services(struct catalog *cat, const char *category,
    const char *after, bool all, const char *provider_id,
    const Twinroute__Service **out, size_t max, bool *ret_more)
{
	struct cat_vec *vec = &cat->service_vec;
	size_t i = 0, n = 0;
	bool more = false;

	if (category && category[0] != '\0') {
		struct cat_category *c = htab_get(cat->categories, category);

		if (!c) {
			if (ret_more)
				*ret_more = false;
			return 0;
		}
		vec = &c->members;
	}
	if (provider_id && provider_id[0] == '\0')
		provider_id = NULL;
	cat_vec_sort(vec);
	if (after && after[0] != '\0')
		i = cat_vec_bound(vec, after, true);
	for (; i < vec->n; i++) {
		const struct cat_service *se = vec->v[i];

		if (!all && !cat_svc_visible(se))
			continue;
		if (provider_id &&
		    strcmp(se->rec->service->provider_id, provider_id) != 0)
			continue;
		if (n == max) {
			more = true;
			break;
		}
		out[n++] = se->rec->service;
	}
	if (ret_more)
		*ret_more = more;
	return n;
}

size_t
catalog_list_providers(struct catalog *cat, const Twinroute__Provider **out,
    size_t max)
{
	size_t n = MIN(max, cat->provider_vec.n);

	cat_vec_sort(&cat->provider_vec);
	for (size_t i = 0; i < n; i++) {
		const struct cat_provider *pe = cat->provider_vec.v[i];

		out[i] = pe->rec->provider;
	}
	return n;
}

static bool
cat_search_filter(uint32_t doc, void *arg)
{
	const struct catalog *cat = arg;
	const struct cat_service *se;

	se = doc < cat->n_docs ? cat->docs[doc] : NULL;
	return se && cat_svc_visible(se);
}

/* Equal scores rank by service id, so results do not depend on history. */
static int
cat_search_tiebreak(uint32_t a, uint32_t b, void *arg)
{
	const struct catalog *cat = arg;

	return strcmp(cat->docs[a]->rec->service->id,
	    cat->docs[b]->rec->service->id);
}

int
catalog_search(struct catalog *cat, const char *query,
    const Twinroute__Service **out, size_t max, size_t *ret_n,
    size_t *ret_total)
{
	_cleanup_free_ struct search_hit *hits = NULL;
	size_t total, n;
	int r;

	max = MIN(max, htab_count(cat->services));
	if (max > 0) {
		hits = calloc(max, sizeof(*hits));
		if (!hits)
			return -ENOMEM;
	}
	r = search_query(cat->search, query, cat_search_filter,
	    cat_search_tiebreak, cat, hits, max, &total);
	if (r < 0)
		return r;
	n = MIN(max, total);
	for (size_t i = 0; i < n; i++)
		out[i] = cat->docs[hits[i].doc]->rec->service;
	if (ret_n)
		*ret_n = n;
	if (ret_total)
		*ret_total = total;
	return 0;
}

/* -------------------------------------------------------------------- */
/* Writes */

/* A message's string field, "" for NULL, as packing wants it. */
static char *
cat_field(char *s)
{
	return s ? s : cat_empty;
}

/*
 * A copy keeps only the fields the catalog knows: whatever else a request
 * carried (protobuf-c keeps unknown fields as they came, some it would
 * not read back) is neither stored nor served.
 */
static void
cat_known_fields_only(ProtobufCMessage *m)
{
	m->n_unknown_fields = 0;
	m->unknown_fields = NULL;
}

/* Shallow copies with every string set, for packing. */
static void
cat_op_set_provider(struct cat_op *op, const Twinroute__Provider *p)
{
	op->is_provider = true;
	op->p = *p;
	cat_known_fields_only(&op->p.base);
	op->p.id = cat_field(p->id);
	op->p.name = cat_field(p->name);
	op->p.email = cat_field(p->email);
	op->p.fax = cat_field(p->fax);
}

static void
cat_op_set_price(struct cat_op *op, const Twinroute__Money *m)
{
	if (!m) {
		op->s.price = NULL;
		return;
	}
	op->price = *m;
	cat_known_fields_only(&op->price.base);
	op->price.currency = cat_field(m->currency);
	op->s.price = &op->price;
}

static void
cat_op_set_service(struct cat_op *op, const Twinroute__Service *s)
{
	op->is_provider = false;
	op->s = *s;
	cat_known_fields_only(&op->s.base);
	op->s.id = cat_field(s->id);
	op->s.provider_id = cat_field(s->provider_id);
	op->s.category = cat_field(s->category);
	op->s.name = cat_field(s->name);
	op->s.description = cat_field(s->description);
	cat_op_set_price(op, s->price);
}

/* Undo cat_op_prepare(). */
static void
cat_op_unprepare(struct catalog *cat, struct cat_op *op)
{
	if (op->indexed)
		search_remove(cat->search, op->doc, op->srec->service->name,
		    op->srec->service->description);
	if (op->doc_taken)
		cat_doc_put(cat, op->doc);
	if (op->category && op->moves)
		op->category->incoming = 0;
	if (op->created) {
		free(op->pe);
		free(op->se);
	}
	if (op->prec)
		twinroute__store__provider_record__free_unpacked(op->prec,
		    NULL);
	if (op->srec)
		twinroute__store__service_record__free_unpacked(op->srec, NULL);
	free(op->buf);
	op->buf = NULL;
	op->prec = NULL;
	op->srec = NULL;
	op->pe = NULL;
	op->se = NULL;
	op->created = op->indexed = op->doc_taken = false;
}

/* Allocate everything applying op will need. */
static int
cat_op_prepare(struct catalog *cat, struct cat_op *op, uint64_t now)
{
	int r;

	if (op->is_provider) {
		Twinroute__Store__ProviderRecord rec =
		    TWINROUTE__STORE__PROVIDER_RECORD__INIT;

		op->pe = htab_get(cat->providers, op->p.id);
		rec.provider = &op->p;
		rec.created_unix = op->pe ? op->pe->rec->created_unix : now;
		rec.updated_unix = now;
		op->len =
		    twinroute__store__provider_record__get_packed_size(&rec);
		op->buf = malloc(op->len ? op->len : 1);
		if (!op->buf)
			return -ENOMEM;
		twinroute__store__provider_record__pack(&rec, op->buf);
		op->prec = twinroute__store__provider_record__unpack(NULL,
		    op->len, op->buf);
		if (!op->prec || !op->prec->provider)
			return -ENOMEM;
		if (!op->pe) {
			op->pe = calloc(1, sizeof(*op->pe));
			if (!op->pe)
				return -ENOMEM;
			op->created = true;
		}
		return 0;
	}

	Twinroute__Store__ServiceRecord rec =
	    TWINROUTE__STORE__SERVICE_RECORD__INIT;
	const Twinroute__Service *s;

	op->se = htab_get(cat->services, op->s.id);
	rec.service = &op->s;
	rec.created_unix = op->se ? op->se->rec->created_unix : now;
	rec.updated_unix = now;
	op->len = twinroute__store__service_record__get_packed_size(&rec);
	op->buf = malloc(op->len ? op->len : 1);
	if (!op->buf)
		return -ENOMEM;
	twinroute__store__service_record__pack(&rec, op->buf);
	op->srec = twinroute__store__service_record__unpack(NULL, op->len,
	    op->buf);
	if (!op->srec || !op->srec->service)
		return -ENOMEM;
	s = op->srec->service;
	if (!op->se) {
		op->se = calloc(1, sizeof(*op->se));
		if (!op->se)
			return -ENOMEM;
		op->created = true;
	}
	r = cat_category_get(cat, s->category, &op->category);
	if (r < 0)
		return r;
	if (op->created || op->se->category != op->category) {
		struct cat_category *c = op->category;

		r = cat_vec_reserve(&c->members,
		    c->members.n + c->incoming + 1);
		if (r < 0)
			return r;
		c->incoming++;
		op->moves = true;
	}
	r = cat_doc_take(cat, op->se, &op->doc);
	if (r < 0)
		return r;
	op->doc_taken = true;
	r = search_add(cat->search, op->doc, s->name, s->description);
	if (r < 0)
		return r;
	op->indexed = true;
	return 0;
}

/* Delete key if it is there: a missing key would spoil the transaction. */
static int
cat_del_present(struct store_txn *txn, enum store_db db, const void *key,
    size_t key_len)
{
	int r = store_get(txn, db, key, key_len, NULL, NULL);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	return store_del(txn, db, key, key_len);
}

static int
cat_op_write(struct store_txn *txn, const struct cat_op *op)
{
	int (*put)(struct store_txn *, enum store_db, const void *, size_t,
	    const void *, size_t) = op->must_be_new ? store_put_new : store_put;
	char key[CATALOG_CATKEY_MAX];
	size_t key_len;
	const Twinroute__Service *s;
	int r;

	if (op->is_provider)
		return put(txn, STORE_DB_PROVIDERS, op->p.id, strlen(op->p.id),
		    op->buf, op->len);
	r = put(txn, STORE_DB_SERVICES, op->s.id, strlen(op->s.id), op->buf,
	    op->len);
	if (r < 0)
		return r;
	if (!op->created) {
		s = op->se->rec->service;
		if (strcmp(s->category, op->s.category) != 0) {
			r = cat_catkey(s->category, s->id, key, &key_len);
			if (r >= 0)
				r = cat_del_present(txn,
				    STORE_DB_SERVICES_BY_CATEGORY, key,
				    key_len);
			if (r < 0)
				return r;
		}
	}
	r = cat_catkey(op->s.category, op->s.id, key, &key_len);
	if (r < 0)
		return r;
	return store_put(txn, STORE_DB_SERVICES_BY_CATEGORY, key, key_len, "",
	    0);
}

/* Move the orphans that name pe into its list. */
static void
cat_adopt(struct catalog *cat, struct cat_provider *pe)
{
	struct cat_service *se = cat->orphans, *next;

	for (; se; se = next) {
		next = se->pnext;
		if (strcmp(se->rec->service->provider_id,
			pe->rec->provider->id) != 0)
			continue;
		cat_punlink(&cat->orphans, se);
		se->provider = pe;
		cat_plink(&pe->services, se);
		cat_account(se, true);
	}
}

/* Install a prepared, committed op. Cannot fail. */
static void
cat_op_apply(struct catalog *cat, struct cat_op *op)
{
	if (op->is_provider) {
		struct cat_provider *pe = op->pe;
		Twinroute__Store__ProviderRecord *old = pe->rec;
		struct cat_service *se;

		/* Its services' visibility may change with it. */
		for (se = pe->services; se; se = se->pnext)
			cat_account(se, false);
		pe->rec = TAKE_PTR(op->prec);
		cat_provider_set_pub(pe);
		/* Reserved: cannot fail. The key now lies in the new record. */
		(void)htab_put(cat->providers, pe->rec->provider->id, pe);
		for (se = pe->services; se; se = se->pnext)
			cat_account(se, true);
		if (op->created) {
			cat_vec_insert(&cat->provider_vec, pe);
			cat_adopt(cat, pe);
		}
		if (old)
			twinroute__store__provider_record__free_unpacked(old,
			    NULL);
		op->created = false;
		op->pe = NULL;
		return;
	}

	struct cat_service *se = op->se;
	Twinroute__Store__ServiceRecord *old = se->rec;
	struct cat_provider *pe;

	if (!op->created) {
		cat_account(se, false);
		search_remove(cat->search, se->doc, old->service->name,
		    old->service->description);
		cat_doc_put(cat, se->doc);
		if (op->moves)
			cat_vec_remove(&se->category->members, se);
		cat_punlink(cat_plist(cat, se), se);
	}
	se->rec = TAKE_PTR(op->srec);
	se->doc = op->doc;
	(void)htab_put(cat->services, se->rec->service->id, se);
	if (op->created)
		cat_vec_insert(&cat->service_vec, se);
	if (op->moves) {
		se->category = op->category;
		cat_vec_insert(&se->category->members, se);
		op->category->incoming = 0;
	}
	pe = htab_get(cat->providers, se->rec->service->provider_id);
	se->provider = pe;
	cat_plink(cat_plist(cat, se), se);
	cat_account(se, true);
	if (old)
		twinroute__store__service_record__free_unpacked(old, NULL);
	op->indexed = op->doc_taken = op->created = false;
	op->se = NULL;
}

/*
 * Write ops in one transaction and, once it committed, apply them to
 * memory: providers first, so services find them. On failure nothing
 * changed.
 */
static int
cat_commit(struct catalog *cat, struct cat_op *ops, size_t n,
    uint64_t *ret_seq, struct catalog_err *err)
{
	struct store_txn *txn = NULL;
	uint64_t now = (uint64_t)time(NULL), seq = 0;
	size_t new_providers = 0, new_services = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		r = cat_op_prepare(cat, &ops[i], now);
		if (r < 0)
			goto fail;
		if (ops[i].created && ops[i].is_provider)
			new_providers++;
		else if (ops[i].created)
			new_services++;
	}
	if ((r = htab_reserve(cat->providers,
		 htab_count(cat->providers) + new_providers)) < 0 ||
	    (r = htab_reserve(cat->services,
		 htab_count(cat->services) + new_services)) < 0 ||
	    (r = cat_vec_reserve(&cat->provider_vec,
		 cat->provider_vec.n + new_providers)) < 0 ||
	    (r = cat_vec_reserve(&cat->service_vec,
		 cat->service_vec.n + new_services)) < 0)
		goto fail;

	r = store_txn_begin(cat->store, 0, &txn);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		r = cat_op_write(txn, &ops[i]);
		if (r < 0) {
			store_txn_abort(txn);
			goto fail;
		}
	}
	if (cat->dry_run) {
		/* Everything but the commit: nothing changes. */
		store_txn_abort(txn);
		for (size_t i = n; i-- > 0;)
			cat_op_unprepare(cat, &ops[i]);
		if (ret_seq)
			*ret_seq = 0;
		return 0;
	}
	r = store_txn_commit(txn, &seq);
	if (r < 0)
		goto fail;

	if (n > CATALOG_BULK_OPS) {
		/* Append now, sort on the next read. */
		cat->provider_vec.dirty = true;
		cat->service_vec.dirty = true;
		for (size_t i = 0; i < n; i++) {
			if (ops[i].moves)
				ops[i].category->members.dirty = true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].is_provider)
			cat_op_apply(cat, &ops[i]);
	}
	for (size_t i = 0; i < n; i++) {
		if (!ops[i].is_provider)
			cat_op_apply(cat, &ops[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(ops[i].buf);
	if (ret_seq)
		*ret_seq = seq;
	return 0;
fail:
	for (size_t i = n; i-- > 0;)
		cat_op_unprepare(cat, &ops[i]);
	if (r == -ENOMEM)
		return cat_fail(err, r, "out of memory");
	return cat_store_fail(err, r);
}

int
catalog_provider_add(struct catalog *cat, const Twinroute__Provider *p,
    uint64_t *ret_seq, struct catalog_err *err)
{
	struct cat_op op = { .must_be_new = true };
	int r;

	r = catalog_check_provider(p, err);
	if (r < 0)
		return r;
	if (htab_get(cat->providers, p->id))
		return cat_fail(err, -TR_EEXISTS, "id: provider %s exists",
		    p->id);
	cat_op_set_provider(&op, p);
	/* New providers are active; "provider disable" switches them off. */
	op.p.active = true;
	return cat_commit(cat, &op, 1, ret_seq, err);
}

int
catalog_provider_disable(struct catalog *cat, const char *id,
    uint64_t *ret_seq, struct catalog_err *err)
{
	struct cat_op op = { 0 };
	const struct cat_provider *pe;

	cat_err_reset(err);
	pe = id ? htab_get(cat->providers, id) : NULL;
	if (!pe)
		return cat_fail(err, -ENOENT, "id: no provider %s",
		    cat_str(id));
	cat_op_set_provider(&op, pe->rec->provider);
	op.p.active = false;
	return cat_commit(cat, &op, 1, ret_seq, err);
}

int
catalog_service_add(struct catalog *cat, const Twinroute__Service *svc,
    uint64_t *ret_seq, struct catalog_err *err)
{
	struct cat_op op = { .must_be_new = true };
	int r;

	r = catalog_check_service(svc, err);
	if (r < 0)
		return r;
	if (!htab_get(cat->providers, svc->provider_id))
		return cat_fail(err, -ENOENT, "provider: no provider %s",
		    svc->provider_id);
	if (htab_get(cat->services, svc->id))
		return cat_fail(err, -TR_EEXISTS, "id: service %s exists",
		    svc->id);
	cat_op_set_service(&op, svc);
	/* New services are active; "service update" can switch them off. */
	op.s.active = true;
	return cat_commit(cat, &op, 1, ret_seq, err);
}

int
catalog_service_update(struct catalog *cat, const char *id,
    const Twinroute__Service *svc, char *const *mask, size_t n_mask,
    uint64_t *ret_seq, struct catalog_err *err)
{
	struct cat_op op = { 0 };
	const struct cat_service *se;
	int r;

	cat_err_reset(err);
	se = id ? htab_get(cat->services, id) : NULL;
	if (!se)
		return cat_fail(err, -ENOENT, "id: no service %s", cat_str(id));
	if (n_mask == 0)
		return cat_fail(err, -TR_EINVAL_FIELD,
		    "update_mask: names no field");
	if (!svc)
		return cat_fail(err, -TR_EINVAL_FIELD, "service: missing");
	cat_op_set_service(&op, se->rec->service);
	for (size_t i = 0; i < n_mask; i++) {
		const char *f = cat_str(mask[i]);

		if (strcmp(f, "provider") == 0) {
			op.s.provider_id = cat_field(svc->provider_id);
		} else if (strcmp(f, "category") == 0) {
			op.s.category = cat_field(svc->category);
		} else if (strcmp(f, "name") == 0) {
			op.s.name = cat_field(svc->name);
		} else if (strcmp(f, "description") == 0) {
			op.s.description = cat_field(svc->description);
		} else if (strcmp(f, "price") == 0) {
			cat_op_set_price(&op, svc->price);
		} else if (strcmp(f, "active") == 0) {
			op.s.active = svc->active;
		} else {
			return cat_fail(err, -TR_EINVAL_FIELD,
			    "update_mask: unknown field %.64s", f);
		}
	}
	r = catalog_check_service(&op.s, err);
	if (r < 0)
		return r;
	if (!htab_get(cat->providers, op.s.provider_id))
		return cat_fail(err, -ENOENT, "provider: no provider %s",
		    op.s.provider_id);
	return cat_commit(cat, &op, 1, ret_seq, err);
}

int
catalog_service_remove(struct catalog *cat, const char *id,
    uint64_t *ret_seq, struct catalog_err *err)
{
	struct cat_service *se;
	const Twinroute__Service *s;
	struct store_txn *txn;
	char key[CATALOG_CATKEY_MAX];
	size_t key_len;
	uint64_t seq = 0;
	int r;

	cat_err_reset(err);
	se = id ? htab_get(cat->services, id) : NULL;
	if (!se)
		return cat_fail(err, -ENOENT, "id: no service %s", cat_str(id));
	s = se->rec->service;
	r = store_txn_begin(cat->store, 0, &txn);
	if (r < 0)
		return cat_store_fail(err, r);
	r = store_del(txn, STORE_DB_SERVICES, s->id, strlen(s->id));
	if (r >= 0) {
		r = cat_catkey(s->category, s->id, key, &key_len);
		if (r >= 0)
			r = cat_del_present(txn, STORE_DB_SERVICES_BY_CATEGORY,
			    key, key_len);
	}
	if (r < 0) {
		store_txn_abort(txn);
		return cat_store_fail(err, r);
	}
	if (cat->dry_run) {
		store_txn_abort(txn);
		if (ret_seq)
			*ret_seq = 0;
		return 0;
	}
	r = store_txn_commit(txn, &seq);
	if (r < 0)
		return cat_store_fail(err, r);

	cat_account(se, false);
	search_remove(cat->search, se->doc, s->name, s->description);
	cat_doc_put(cat, se->doc);
	cat_vec_remove(&se->category->members, se);
	cat_vec_remove(&cat->service_vec, se);
	cat_punlink(cat_plist(cat, se), se);
	htab_del(cat->services, s->id);
	twinroute__store__service_record__free_unpacked(se->rec, NULL);
	free(se);
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

/*
 * Items are records as they should be: unlike the add commands, an import
 * takes `active` as given (so it can restore a disabled provider or a
 * switched-off service, and re-enable them). A service may name a provider
 * anywhere in the batch. An id may appear once per kind in a batch.
 */
int
catalog_import(struct catalog *cat, const struct catalog_item *items,
    size_t n, size_t *ret_providers, size_t *ret_services, uint64_t *ret_seq,
    struct catalog_err *err)
{
	_cleanup_free_ struct cat_op *ops = NULL;
	struct htab *batch_p = NULL, *batch_s = NULL;
	size_t n_providers = 0, n_services = 0;
	int r;

	cat_err_reset(err);
	if (n == 0) {
		struct store_stats st;

		store_get_stats(cat->store, &st);
		if (ret_providers)
			*ret_providers = 0;
		if (ret_services)
			*ret_services = 0;
		if (ret_seq)
			*ret_seq = st.last_txn;
		return 0;
	}
	ops = calloc(n, sizeof(*ops));
	if (!ops)
		return cat_fail(err, -ENOMEM, "out of memory");
	if ((r = htab_new(0, &batch_p)) < 0 ||
	    (r = htab_new(0, &batch_s)) < 0) {
		r = cat_fail(err, r, "out of memory");
		goto out;
	}

	/* Each item on its own, and the providers the batch brings. */
	for (size_t i = 0; i < n; i++) {
		const struct catalog_item *it = &items[i];

		if (!it->provider == !it->service) {
			r = cat_fail(err, -TR_EINVAL_FIELD,
			    "item: needs exactly one of provider and service");
			goto item_failed;
		}
		if (it->provider) {
			r = catalog_check_provider(it->provider, err);
			if (r < 0)
				goto item_failed;
			if (htab_get(batch_p, it->provider->id)) {
				r = cat_fail(err, -TR_EINVAL_FIELD,
				    "id: provider %s appears twice",
				    it->provider->id);
				goto item_failed;
			}
			r = htab_put(batch_p, it->provider->id, &ops[i]);
			if (r < 0) {
				r = cat_fail(err, r, "out of memory");
				goto out;
			}
			cat_op_set_provider(&ops[i], it->provider);
			n_providers++;
		} else {
			r = catalog_check_service(it->service, err);
			if (r < 0)
				goto item_failed;
			if (htab_get(batch_s, it->service->id)) {
				r = cat_fail(err, -TR_EINVAL_FIELD,
				    "id: service %s appears twice",
				    it->service->id);
				goto item_failed;
			}
			r = htab_put(batch_s, it->service->id, &ops[i]);
			if (r < 0) {
				r = cat_fail(err, r, "out of memory");
				goto out;
			}
			cat_op_set_service(&ops[i], it->service);
			n_services++;
		}
		continue;
item_failed:
		if (err)
			err->index = (int)i;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *pid;

		if (ops[i].is_provider)
			continue;
		pid = ops[i].s.provider_id;
		if (!htab_get(cat->providers, pid) && !htab_get(batch_p, pid)) {
			r = cat_fail(err, -ENOENT, "provider: no provider %s",
			    pid);
			if (err)
				err->index = (int)i;
			goto out;
		}
	}

	r = cat_commit(cat, ops, n, ret_seq, err);
	if (r < 0)
		goto out;
	if (ret_providers)
		*ret_providers = n_providers;
	if (ret_services)
		*ret_services = n_services;
out:
	htab_free(batch_p);
	htab_free(batch_s);
	return r;
}
