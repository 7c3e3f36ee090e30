/* SPDX-License-Identifier: ISC */
/* catalog_import.c -- JSON Lines catalog files read into control CatalogItems */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_import.h"
#include "common/macro.h"

/* Free a string of an item unless it is protobuf-c's shared empty one. */
static void
item_str_free(char *s)
{
	if (s && s != protobuf_c_empty_string)
		free(s);
}

static void
import_item_free(struct import_item *it)
{
	if (!it)
		return;
	item_str_free(it->provider.id);
	item_str_free(it->provider.name);
	item_str_free(it->provider.email);
	item_str_free(it->provider.fax);
	item_str_free(it->service.id);
	item_str_free(it->service.provider_id);
	item_str_free(it->service.category);
	item_str_free(it->service.name);
	item_str_free(it->service.description);
	item_str_free(it->price.currency);
	free(it);
}

int
import_init(struct import *im, const char *file)
{
	memset(im, 0, sizeof(*im));
	im->file = file;
	im->tok = json_tokener_new();
	if (!im->tok)
		return -ENOMEM;
	json_tokener_set_flags(im->tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	return 0;
}

void
import_free(struct import *im)
{
	for (size_t i = 0; i < im->n; i++)
		import_item_free(im->v[i]);
	free(im->v);
	free(im->items);
	if (im->tok)
		json_tokener_free(im->tok);
	im->v = NULL;
	im->items = NULL;
	im->tok = NULL;
	im->n = im->cap = 0;
}

/* "FILE:LINE: why" into im->err. Returns -EINVAL. */
static int _printf_(3, 4)
import_error(struct import *im, unsigned long line, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(im->err, sizeof(im->err), "%s:%lu: ", im->file, line);
	if (n < 0 || (size_t)n >= sizeof(im->err))
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(im->err + n, sizeof(im->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

struct import_key {
	const char *key;
	enum json_type type;
	bool required;
};

static const struct import_key provider_keys[] = {
	{ "type", json_type_string, true },
	{ "id", json_type_string, true },
	{ "name", json_type_string, true },
	{ "email", json_type_string, true },
	{ "fax", json_type_string, true },
	{ "active", json_type_boolean, false },
};

static const struct import_key service_keys[] = {
	{ "type", json_type_string, true },
	{ "id", json_type_string, true },
	{ "provider", json_type_string, true },
	{ "category", json_type_string, true },
	{ "name", json_type_string, true },
	{ "description", json_type_string, false },
	{ "price", json_type_int, true },
	{ "currency", json_type_string, true },
	{ "active", json_type_boolean, false },
};

static const char *
json_type_text(enum json_type t)
{
	switch (t) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "true or false";
	case json_type_double:
		return "a number";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "unknown";
}

/* Every key of obj known and of its type, every required one there. */
static int
import_check_keys(struct import *im, unsigned long line, json_object *obj,
    const char *what, const struct import_key *keys, size_t nkeys)
{
	json_object_object_foreach(obj, key, val) {
		const struct import_key *k = NULL;

		for (size_t i = 0; i < nkeys; i++)
			if (strcmp(keys[i].key, key) == 0)
				k = &keys[i];
		if (!k)
			return import_error(im, line, "unknown key \"%s\" for "
			    "a %s", key, what);
		if (k->type == json_type_int && json_object_is_type(val,
		    json_type_double))
			return import_error(im, line, "\"%s\" must be an "
			    "integer in minor units (1250 for 12.50)", key);
		if (!json_object_is_type(val, k->type))
			return import_error(im, line, "\"%s\" must be %s, not "
			    "%s", key, json_type_text(k->type),
			    json_type_text(json_object_get_type(val)));
		if (k->type == json_type_string &&
		    strlen(json_object_get_string(val)) !=
		    (size_t)json_object_get_string_len(val))
			return import_error(im, line, "\"%s\" contains a NUL "
			    "character", key);
	}
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].required &&
		    !json_object_object_get_ex(obj, keys[i].key, NULL))
			return import_error(im, line, "missing \"%s\" for a %s",
			    keys[i].key, what);
	return 0;
}

/* A copy of obj[key] (a string already checked), or "" when absent. */
static int
import_str(json_object *obj, const char *key, char **ret)
{
	json_object *v;
	char *s;

	if (json_object_object_get_ex(obj, key, &v))
		s = strdup(json_object_get_string(v));
	else
		s = strdup("");
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static bool
import_active(json_object *obj)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, "active", &v))
		return true;
	return json_object_get_boolean(v);
}

/* Turn one object into an item. */
static int
import_object(struct import *im, unsigned long line, json_object *obj)
{
	struct import_item *it = NULL;
	json_object *type;
	const char *t;
	int r;

	if (!json_object_object_get_ex(obj, "type", &type))
		return import_error(im, line, "missing \"type\" (\"provider\" "
		    "or \"service\")");
	if (!json_object_is_type(type, json_type_string))
		return import_error(im, line, "\"type\" must be a string");
	t = json_object_get_string(type);
	if (strcmp(t, "provider") == 0)
		r = import_check_keys(im, line, obj, t, provider_keys,
		    ELEMENTSOF(provider_keys));
	else if (strcmp(t, "service") == 0)
		r = import_check_keys(im, line, obj, t, service_keys,
		    ELEMENTSOF(service_keys));
	else
		return import_error(im, line, "unknown type \"%s\" "
		    "(\"provider\" or \"service\")", t);
	if (r < 0)
		return r;

	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->line = line;
	twinroute__ctl__catalog_item__init(&it->item);
	twinroute__provider__init(&it->provider);
	twinroute__service__init(&it->service);
	twinroute__money__init(&it->price);
	if (strcmp(t, "provider") == 0) {
		Twinroute__Provider *p = &it->provider;

		if (import_str(obj, "id", &p->id) < 0 ||
		    import_str(obj, "name", &p->name) < 0 ||
		    import_str(obj, "email", &p->email) < 0 ||
		    import_str(obj, "fax", &p->fax) < 0)
			goto nomem;
		p->active = import_active(obj);
		it->is_provider = true;
		it->item.item_case = TWINROUTE__CTL__CATALOG_ITEM__ITEM_PROVIDER;
		it->item.provider = p;
	} else {
		Twinroute__Service *s = &it->service;
		json_object *price;

		json_object_object_get_ex(obj, "price", &price);
		if (json_object_get_int64(price) < 0) {
			import_item_free(it);
			return import_error(im, line, "\"price\" must not be "
			    "negative");
		}
		if (json_object_get_uint64(price) > INT64_MAX) {
			import_item_free(it);
			return import_error(im, line, "\"price\" is out of "
			    "range");
		}
		it->price.minor = json_object_get_int64(price);
		if (import_str(obj, "id", &s->id) < 0 ||
		    import_str(obj, "provider", &s->provider_id) < 0 ||
		    import_str(obj, "category", &s->category) < 0 ||
		    import_str(obj, "name", &s->name) < 0 ||
		    import_str(obj, "description", &s->description) < 0 ||
		    import_str(obj, "currency", &it->price.currency) < 0)
			goto nomem;
		s->active = import_active(obj);
		s->price = &it->price;
		it->item.item_case = TWINROUTE__CTL__CATALOG_ITEM__ITEM_SERVICE;
		it->item.service = s;
	}

	if (im->n == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 64;
		struct import_item **v = reallocarray(im->v, cap, sizeof(*v));

		if (!v)
			goto nomem;
		im->v = v;
		im->cap = cap;
	}
	im->v[im->n++] = it;
	if (it->is_provider)
		im->providers++;
	else
		im->services++;
	return 0;

nomem:
	import_item_free(it);
	return -ENOMEM;
}

/* How many of the len bytes at p are blanks, from the start. */
static size_t
import_blanks(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
	    p[i] == '\f' || p[i] == '\v'))
		i++;
	return i;
}

int
import_line(struct import *im, unsigned long line, const char *buf, size_t len)
{
	json_object *obj;
	enum json_tokener_error jerr;
	size_t end;
	int r;

	if (import_blanks(buf, len) == len)
		return 0; /* blank */
	if (memchr(buf, '\0', len))
		return import_error(im, line, "NUL byte in the line");
	if (len > INT_MAX)
		return import_error(im, line, "line too long");

	json_tokener_reset(im->tok);
	obj = json_tokener_parse_ex(im->tok, buf, (int)len);
	jerr = json_tokener_get_error(im->tok);
	end = json_tokener_get_parse_end(im->tok);
	if (jerr == json_tokener_continue)
		r = import_error(im, line, "incomplete JSON (one object per "
		    "line)");
	else if (jerr != json_tokener_success)
		r = import_error(im, line, "bad JSON: %s",
		    json_tokener_error_desc(jerr));
	else if (end > len || import_blanks(buf + end, len - end) != len - end)
		r = import_error(im, line, "more after the JSON object (one "
		    "object per line)");
	else if (!json_object_is_type(obj, json_type_object))
		r = import_error(im, line, "not a JSON object");
	else
		r = import_object(im, line, obj);
	json_object_put(obj);
	return r;
}

int
import_read(struct import *im, FILE *f)
{
	char *buf = NULL;
	size_t cap = 0, total = 0;
	unsigned long line = 0;
	ssize_t n;
	int r = 0;

	while ((n = getline(&buf, &cap, f)) >= 0) {
		size_t len = (size_t)n;

		line++;
		total += len;
		if (total > IMPORT_FILE_MAX) {
			snprintf(im->err, sizeof(im->err), "%s: larger than %zu "
			    "bytes: too large for one import", im->file,
			    IMPORT_FILE_MAX);
			r = -EFBIG;
			break;
		}
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		r = import_line(im, line, buf, len);
		if (r < 0)
			break;
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	free(buf);
	return r;
}

int
import_items(struct import *im)
{
	Twinroute__Ctl__CatalogItem **items;

	items = calloc(im->n ? im->n : 1, sizeof(*items));
	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < im->n; i++)
		items[i] = &im->v[i]->item;
	free(im->items);
	im->items = items;
	return 0;
}
