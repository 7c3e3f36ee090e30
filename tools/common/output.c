/* SPDX-License-Identifier: ISC */
/* output.c -- shared CLI output: tables, key/value, money, sizes, JSON */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/macro.h"
#include "output.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, one column */

struct out_cell {
	char *text;     /* sanitized and cut */
	size_t width;   /* display columns of text */
};

struct out_table {
	size_t ncols;
	size_t nrows;   /* rows after the header */
	size_t cap;     /* rows allocated, header included */
	enum out_align *align;
	size_t *max;
	struct out_cell *cells; /* (1 + nrows) * ncols; row 0 is the header */
};

/*
 * Decode one UTF-8 sequence at s (s[0] != 0). Returns the bytes it takes
 * (at least 1) and the code point in *ret_cp, or UINT32_MAX when invalid
 * (overlong, surrogate, out of range, truncated).
 */
static size_t
utf8_next(const unsigned char *s, uint32_t *ret_cp)
{
	uint32_t cp, min;
	size_t n;

	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		*ret_cp = UINT32_MAX;
		return 1;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*ret_cp = UINT32_MAX;
			return i; /* stops at NUL too */
		}
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = UINT32_MAX;
	*ret_cp = cp;
	return n;
}

/* Columns a code point takes; -1 for what must not reach a terminal. */
static int
cp_width(uint32_t cp)
{
	static const struct {
		uint32_t lo, hi;
	} zero[] = {
		{ 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x0591, 0x05bd },
		{ 0x1ab0, 0x1aff }, { 0x1dc0, 0x1dff }, { 0x200b, 0x200d },
		{ 0x20d0, 0x20ff }, { 0x3099, 0x309a }, { 0xfe00, 0xfe0f },
		{ 0xfe20, 0xfe2f },
	}, wide[] = {
		{ 0x1100, 0x115f }, { 0x2e80, 0x303e }, { 0x3041, 0x33ff },
		{ 0x3400, 0x4dbf }, { 0x4e00, 0x9fff }, { 0xa000, 0xa4cf },
		{ 0xac00, 0xd7a3 }, { 0xf900, 0xfaff }, { 0xfe30, 0xfe4f },
		{ 0xff00, 0xff60 }, { 0xffe0, 0xffe6 }, { 0x1f300, 0x1f64f },
		{ 0x1f900, 0x1f9ff }, { 0x20000, 0x2fffd },
		{ 0x30000, 0x3fffd },
	};

	if (cp == UINT32_MAX || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
		return -1;
	/* Bidirectional overrides and isolates reorder what follows. */
	if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
		return -1;
	if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff)
		return -1;
	for (size_t i = 0; i < ELEMENTSOF(zero); i++)
		if (cp >= zero[i].lo && cp <= zero[i].hi)
			return 0;
	for (size_t i = 0; i < ELEMENTSOF(wide); i++)
		if (cp >= wide[i].lo && cp <= wide[i].hi)
			return 2;
	return 1;
}

size_t
out_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0;

	if (!s)
		return 0;
	while (*p) {
		uint32_t cp;
		int cw;

		p += utf8_next(p, &cp);
		cw = cp_width(cp);
		w += cw < 0 ? 1 : (size_t)cw;
	}
	return w;
}

/*
 * A copy of s fit for a terminal: what cp_width() refuses becomes '?'.
 * With max > 0, cut to at most max columns, the last one an ellipsis.
 */
static char *
sanitize(const char *s, size_t max, size_t *ret_width)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t total = out_width(s), limit, w = 0, len = 0;
	bool cut = max > 0 && total > max;
	char *out;

	out = malloc(strlen((const char *)p) + sizeof(ELLIPSIS));
	if (!out)
		return NULL;
	limit = cut ? max - 1 : total;
	while (*p) {
		uint32_t cp;
		size_t n = utf8_next(p, &cp);
		int cw = cp_width(cp);

		if ((cw < 0 ? 1 : (size_t)cw) + w > limit)
			break;
		if (cw < 0) {
			out[len++] = '?';
			w++;
		} else {
			memcpy(out + len, p, n);
			len += n;
			w += (size_t)cw;
		}
		p += n;
	}
	if (cut) {
		memcpy(out + len, ELLIPSIS, strlen(ELLIPSIS));
		len += strlen(ELLIPSIS);
		w++;
	}
	out[len] = '\0';
	*ret_width = w;
	return out;
}

struct out_table *
out_table_free(struct out_table *t)
{
	if (!t)
		return NULL;
	if (t->cells)
		for (size_t i = 0; i < (t->nrows + 1) * t->ncols; i++)
			free(t->cells[i].text);
	free(t->cells);
	free(t->align);
	free(t->max);
	free(t);
	return NULL;
}

struct out_table *
out_table_new(size_t ncols, const char *const *headers)
{
	struct out_table *t;

	if (ncols == 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ncols = ncols;
	t->cap = 16;
	t->align = calloc(ncols, sizeof(*t->align));
	t->max = calloc(ncols, sizeof(*t->max));
	t->cells = calloc(t->cap * ncols, sizeof(*t->cells));
	if (!t->align || !t->max || !t->cells)
		return out_table_free(t);
	for (size_t i = 0; i < ncols; i++) {
		t->max[i] = OUT_CELL_MAX_DEFAULT;
		t->cells[i].text = sanitize(headers[i], 0, &t->cells[i].width);
		if (!t->cells[i].text)
			return out_table_free(t);
	}
	return t;
}

void
out_table_set_align(struct out_table *t, size_t col, enum out_align a)
{
	if (t && col < t->ncols)
		t->align[col] = a;
}

void
out_table_set_max(struct out_table *t, size_t col, size_t max)
{
	if (t && col < t->ncols)
		t->max[col] = max;
}

int
out_table_add(struct out_table *t, const char *const *cells)
{
	struct out_cell *row;

	if (!t)
		return -EINVAL;
	if (t->nrows + 1 == t->cap) {
		struct out_cell *n;

		if (t->cap > SIZE_MAX / 2 / t->ncols / sizeof(*n))
			return -ENOMEM;
		n = reallocarray(t->cells, t->cap * 2 * t->ncols, sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->cells = n;
		t->cap *= 2;
	}
	row = t->cells + (t->nrows + 1) * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		row[i].text = sanitize(cells[i], t->max[i], &row[i].width);
		if (!row[i].text) {
			while (i-- > 0)
				free(row[i].text);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

void
out_table_print(const struct out_table *t, FILE *f)
{
	_cleanup_free_ size_t *width = NULL;

	if (!t)
		return;
	width = calloc(t->ncols, sizeof(*width));
	if (!width)
		return;
	for (size_t r = 0; r <= t->nrows; r++) {
		const struct out_cell *row = t->cells + r * t->ncols;

		for (size_t c = 0; c < t->ncols; c++)
			width[c] = MAX(width[c], row[c].width);
	}

	for (size_t r = 0; r <= t->nrows; r++) {
		const struct out_cell *row = t->cells + r * t->ncols;

		for (size_t c = 0; c < t->ncols; c++) {
			const struct out_cell *cell = &row[c];
			int pad = (int)(width[c] - cell->width);
			bool last = c + 1 == t->ncols;

			if (c > 0)
				fputs("  ", f);
			if (t->align[c] == OUT_ALIGN_RIGHT)
				fprintf(f, "%*s%s", pad, "", cell->text);
			else if (last)
				fputs(cell->text, f);
			else
				fprintf(f, "%s%*s", cell->text, pad, "");
		}
		fputc('\n', f);
	}
}

void
out_kv(FILE *f, int keywidth, const char *key, const char *fmt, ...)
{
	_cleanup_free_ char *raw = NULL, *clean = NULL;
	va_list ap;
	size_t w;
	int pad;

	va_start(ap, fmt);
	if (vasprintf(&raw, fmt, ap) < 0)
		raw = NULL;
	va_end(ap);
	if (!raw)
		return;
	clean = sanitize(raw, 0, &w);
	if (!clean)
		return;
	pad = keywidth - (int)strlen(key);
	fprintf(f, "%s:%*s %s\n", key, pad > 0 ? pad : 0, "", clean);
}

/* Print one paragraph (no newlines in it) wrapped. */
static void
wrap_para(FILE *f, int indent, const char *s, size_t len)
{
	size_t col = 0;
	size_t i = 0;

	while (i < len) {
		_cleanup_free_ char *word = NULL, *clean = NULL;
		size_t start, w;

		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			i++;
		word = strndup(s + start, i - start);
		if (!word)
			return;
		clean = sanitize(word, 0, &w);
		if (!clean)
			return;
		if (col > 0 && col + 1 + w > OUT_WRAP_WIDTH - (size_t)indent) {
			fputc('\n', f);
			col = 0;
		}
		if (col == 0) {
			fprintf(f, "%*s%s", indent, "", clean);
			col = w;
		} else {
			fprintf(f, " %s", clean);
			col += 1 + w;
		}
	}
	if (col > 0)
		fputc('\n', f);
}

void
out_wrap(FILE *f, int indent, const char *text)
{
	const char *p = text ? text : "";

	if (indent < 0 || indent > OUT_WRAP_WIDTH / 2)
		indent = 0;
	for (;;) {
		size_t len = strcspn(p, "\n");

		if (len == 0 && *p == '\n')
			fputc('\n', f); /* blank lines between paragraphs */
		else
			wrap_para(f, indent, p, len);
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
}

char *
out_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = {
		"KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
	};
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%" PRIu64 " B", bytes);
		return buf;
	}
	v /= 1024.0;
	while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

char *
out_duration(uint64_t seconds, char *buf, size_t size)
{
	uint64_t d = seconds / 86400, h = seconds / 3600 % 24;
	uint64_t m = seconds / 60 % 60, s = seconds % 60;

	if (d > 0)
		snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64
		    "m%02" PRIu64 "s", d, h, m, s);
	else if (h > 0)
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s",
		    h, m, s);
	else if (m > 0)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", m, s);
	else
		snprintf(buf, size, "%" PRIu64 "s", s);
	return buf;
}

const char *
out_yesno(bool b)
{
	return b ? "yes" : "no";
}

char *
out_price(const Twinroute__Money *price, char *buf, size_t size)
{
	if (price)
		return money_format(price->minor, price->currency, buf, size);
	snprintf(buf, size, "-");
	return buf;
}

json_object *
out_json_string(const char *s)
{
	return json_object_new_string(s ? s : "");
}

json_object *
out_json_object(const struct out_json_kv *kv, size_t n)
{
	json_object *o = json_object_new_object();
	bool ok = o != NULL;

	for (size_t i = 0; i < n; i++) {
		if (ok && kv[i].value &&
		    json_object_object_add(o, kv[i].key, kv[i].value) == 0)
			continue;
		ok = false;
		json_object_put(kv[i].value);
	}
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

json_object *
out_json_provider(const Twinroute__Provider *p)
{
	if (!p)
		return json_object_new_object();
	return OUT_JSON_OBJECT(
	    { "id", out_json_string(p->id) },
	    { "name", out_json_string(p->name) },
	    { "email", out_json_string(p->email) },
	    { "fax", out_json_string(p->fax) },
	    { "active", json_object_new_boolean(p->active) });
}

json_object *
out_json_service(const Twinroute__Service *s)
{
	if (!s)
		return json_object_new_object();
	return OUT_JSON_OBJECT(
	    { "id", out_json_string(s->id) },
	    { "provider", out_json_string(s->provider_id) },
	    { "category", out_json_string(s->category) },
	    { "name", out_json_string(s->name) },
	    { "description", out_json_string(s->description) },
	    { "price", json_object_new_int64(s->price ? s->price->minor : 0) },
	    { "currency", out_json_string(s->price ? s->price->currency : "") },
	    { "active", json_object_new_boolean(s->active) });
}

/* Append the JSON of providers[0..n) or of services[0..n). 0 or -ENOMEM. */
static int
json_append(json_object *a, Twinroute__Provider *const *providers,
    Twinroute__Service *const *services, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_object *o = providers ? out_json_provider(providers[i]) :
		    out_json_service(services[i]);

		if (!o || json_object_array_add(a, o) < 0) {
			json_object_put(o);
			return -ENOMEM;
		}
	}
	return 0;
}

/* json_append() to a new array; NULL on ENOMEM. */
static json_object *
json_array(Twinroute__Provider *const *providers,
    Twinroute__Service *const *services, size_t n)
{
	json_object *a = json_object_new_array();

	if (a && json_append(a, providers, services, n) < 0) {
		json_object_put(a);
		return NULL;
	}
	return a;
}

json_object *
out_json_providers(Twinroute__Provider *const *v, size_t n)
{
	return json_array(v, NULL, n);
}

json_object *
out_json_services(Twinroute__Service *const *v, size_t n)
{
	return json_array(NULL, v, n);
}

int
out_json_add_services(json_object *a, Twinroute__Service *const *v,
    size_t n)
{
	return json_append(a, NULL, v, n);
}

int
out_json_print(json_object *obj, FILE *f)
{
	const char *s;

	if (!obj)
		return -ENOMEM;
	s = json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		return -ENOMEM;
	if (fputs(s, f) == EOF || fputc('\n', f) == EOF)
		return -EIO;
	return 0;
}

const char *
out_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* ---- orders ---------------------------------------------------------- */

#define ORDER_STATE_PREFIX "ORDER_"

/* A state's name past its prefix: ORDER_STATE_UNSPECIFIED is "UNSPECIFIED". */
static const char *
state_short(const char *name)
{
	if (strncmp(name, "ORDER_STATE_", 12) == 0)
		return name + 12;
	if (strncmp(name, ORDER_STATE_PREFIX, strlen(ORDER_STATE_PREFIX)) == 0)
		return name + strlen(ORDER_STATE_PREFIX);
	return name;
}

const char *
out_order_state(Twinroute__OrderState s)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(
	    &twinroute__order_state__descriptor, (int)s);
	return v ? state_short(v->name) : "?";
}

int
out_order_state_parse(const char *name, Twinroute__OrderState *ret)
{
	const ProtobufCEnumDescriptor *d = &twinroute__order_state__descriptor;

	if (strncasecmp(name, ORDER_STATE_PREFIX,
	    strlen(ORDER_STATE_PREFIX)) == 0)
		name += strlen(ORDER_STATE_PREFIX);
	for (unsigned i = 0; i < d->n_values; i++) {
		if (d->values[i].value ==
		    TWINROUTE__ORDER_STATE__ORDER_STATE_UNSPECIFIED)
			continue;
		if (strcasecmp(name, state_short(d->values[i].name)) == 0) {
			*ret = (Twinroute__OrderState)d->values[i].value;
			return 0;
		}
	}
	return -EINVAL;
}

char *
out_order_state_names(char *buf, size_t size)
{
	const ProtobufCEnumDescriptor *d = &twinroute__order_state__descriptor;
	size_t used = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (unsigned i = 0; i < d->n_values; i++) {
		int n;

		if (d->values[i].value ==
		    TWINROUTE__ORDER_STATE__ORDER_STATE_UNSPECIFIED)
			continue;
		n = snprintf(buf + used, size - used, "%s%s",
		    used ? ", " : "", state_short(d->values[i].name));
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	return buf;
}

const char *
out_fax_state(Twinroute__FaxState s)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(
	    &twinroute__fax_state__descriptor, (int)s);
	return v ? v->name : "?";
}

char *
out_order_line(const Twinroute__Order *o, char *buf, size_t size)
{
	char amount[OUT_BUF_SIZE];
	int n;

	n = snprintf(buf, size, "order %" PRIu64 " %s: ", o->id,
	    out_order_state(o->state));
	if (n < 0 || (size_t)n >= size)
		return buf;
	if (o->state == TWINROUTE__ORDER_STATE__ORDER_DECLINED) {
		snprintf(buf + n, size - (size_t)n, "%s",
		    o->decline_reason && *o->decline_reason ?
		    o->decline_reason : "declined");
		return buf;
	}
	out_price(o->amount, amount, sizeof(amount));
	if (o->card_brand && *o->card_brand)
		snprintf(buf + n, size - (size_t)n, "%" PRIu32 " x %s, %s, "
		    "%s ending %s", o->quantity, o->service_name, amount,
		    o->card_brand, o->card_last4);
	else
		snprintf(buf + n, size - (size_t)n, "%" PRIu32 " x %s, %s",
		    o->quantity, o->service_name, amount);
	return buf;
}

static json_object *
json_history(Twinroute__OrderTransition *const *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < n; i++) {
		json_object *t = OUT_JSON_OBJECT(
		    { "state", out_json_string(out_order_state(v[i]->state)) },
		    { "unix_ms", json_object_new_uint64(v[i]->unix_ms) },
		    { "cause", out_json_string(v[i]->cause) });

		if (t && v[i]->fax != TWINROUTE__FAX_STATE__FAX_NONE &&
		    json_object_object_add(t, "fax",
		    out_json_string(out_fax_state(v[i]->fax))) < 0) {
			json_object_put(t);
			t = NULL;
		}
		if (!t || json_object_array_add(a, t) < 0) {
			json_object_put(t);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

static json_object *
json_fax_report(const Twinroute__FaxReport *r)
{
	return OUT_JSON_OBJECT(
	    { "result", out_json_string(r->result) },
	    { "reason", out_json_string(r->reason) },
	    { "remote_csi", out_json_string(r->remote_csi) },
	    { "bps", json_object_new_int64(r->bps) },
	    { "pages", json_object_new_int64(r->pages) },
	    { "duration_ms", json_object_new_uint64(r->duration_ms) },
	    { "modem", out_json_string(r->modem) },
	    { "compression", json_object_new_int64(r->compression) },
	    { "page_unix", json_object_new_int64(r->page_unix) },
	    { "unix_ms", json_object_new_uint64(r->unix_ms) },
	    { "dials", json_object_new_int64(r->dials) },
	    { "tries", json_object_new_int64(r->tries) },
	    { "fax_ref", out_json_string(r->fax_ref) });
}

json_object *
out_json_order(const Twinroute__Order *o)
{
	const char *currency = o->amount ? o->amount->currency :
	    o->unit_price ? o->unit_price->currency : "";
	json_object *j, *fax = NULL;

	j = OUT_JSON_OBJECT(
	    { "id", json_object_new_uint64(o->id) },
	    { "member", out_json_string(o->member) },
	    { "service_id", out_json_string(o->service_id) },
	    { "provider_id", out_json_string(o->provider_id) },
	    { "service_name", out_json_string(o->service_name) },
	    { "quantity", json_object_new_int64(o->quantity) },
	    { "unit_price", json_object_new_int64(o->unit_price ?
		o->unit_price->minor : 0) },
	    { "amount", json_object_new_int64(o->amount ? o->amount->minor :
		0) },
	    { "currency", out_json_string(currency) },
	    { "note", out_json_string(o->note) },
	    { "state", out_json_string(out_order_state(o->state)) },
	    { "card_brand", out_json_string(o->card_brand) },
	    { "card_last4", out_json_string(o->card_last4) },
	    { "decline_reason", out_json_string(o->decline_reason) },
	    { "idempotency_key", out_json_string(o->idempotency_key) },
	    { "created_unix_ms", json_object_new_uint64(o->created_unix_ms) },
	    { "updated_unix_ms", json_object_new_uint64(o->updated_unix_ms) },
	    { "history", json_history(o->history, o->n_history) });
	if (!j)
		return NULL;
	/* No call yet: "fax" is JSON null. */
	if (o->fax && !(fax = json_fax_report(o->fax)))
		goto fail;
	if (json_object_object_add(j, "fax", fax) < 0) {
		json_object_put(fax);
		goto fail;
	}
	if (json_object_object_add(j, "fax_state",
	    out_json_string(out_fax_state(o->fax_state))) < 0)
		goto fail;
	return j;
fail:
	json_object_put(j);
	return NULL;
}

const char *
out_time_ms(uint64_t unix_ms, char *buf, size_t len)
{
	return out_time((time_t)(unix_ms / 1000), buf, len);
}
