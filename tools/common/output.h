/* SPDX-License-Identifier: ISC */
/* output.h -- shared CLI output: tables, key/value, money, sizes, JSON */
#ifndef TR_OUTPUT_H
#define TR_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "common/money.h"

#include "common.pb-c.h"

/* Cells wider than this are cut and end in "…", unless a column says else. */
#define OUT_CELL_MAX_DEFAULT 40
/* Text wrapped by out_wrap() fits in this many columns. */
#define OUT_WRAP_WIDTH 72
/* Big enough for money_format(), out_size() and out_duration(). */
#define OUT_BUF_SIZE 64

enum out_align {
	OUT_ALIGN_LEFT = 0,
	OUT_ALIGN_RIGHT,
};

struct out_table;

/* A table with ncols columns named by headers (copied). NULL on ENOMEM. */
struct out_table *out_table_new(size_t ncols, const char *const *headers);
struct out_table *out_table_free(struct out_table *t);
void out_table_set_align(struct out_table *t, size_t col, enum out_align a);
/* Cut cells of col to max display columns (0: no limit). */
void out_table_set_max(struct out_table *t, size_t col, size_t max);
/* Append a row of ncols cells (copied; NULL prints as ""). 0 or -ENOMEM. */
int out_table_add(struct out_table *t, const char *const *cells);
/*
 * Print the header and the rows, two spaces between columns, no trailing
 * blanks. Control characters and bad UTF-8 print as '?'.
 */
void out_table_print(const struct out_table *t, FILE *f);

/* Display columns of a UTF-8 string (East Asian wide: 2, combining: 0). */
size_t out_width(const char *s);

/* "key: value" with the value padded to start at column keywidth + 2. */
void out_kv(FILE *f, int keywidth, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Word-wrap text to OUT_WRAP_WIDTH, each line starting with indent spaces. */
void out_wrap(FILE *f, int indent, const char *text);

/* Decimal places of an ISO 4217 currency: 0, 2 (default) or 3. */
/* "512 B", "1.5 KiB", "2.0 GiB". Returns buf. */
char *out_size(uint64_t bytes, char *buf, size_t size);
/* "45s", "3m05s", "1h02m03s", "2d03h04m05s". Returns buf. */
char *out_duration(uint64_t seconds, char *buf, size_t size);
const char *out_yesno(bool b);
/* money_format() of a price, or "-" for none. Returns buf. */
char *out_price(const Twinroute__Money *price, char *buf, size_t size);

/*
 * JSON. The out_json_* constructors return a new object or NULL on ENOMEM.
 * Provider: id, name, email, fax, active. Service: id, provider, category,
 * name, description, price (integer minor units), currency, active.
 */
json_object *out_json_provider(const Twinroute__Provider *p);
json_object *out_json_service(const Twinroute__Service *s);
/* A string that is never NULL ("" for NULL). */
json_object *out_json_string(const char *s);
/* "2026-11-24 08:30:00 UTC". */
const char *out_time(time_t t, char *buf, size_t len);
/* A new array of the JSON of each of v[0..n); NULL on ENOMEM. */
json_object *out_json_providers(Twinroute__Provider *const *v, size_t n);
json_object *out_json_services(Twinroute__Service *const *v, size_t n);
/* Append the JSON of each of v[0..n) to the array a. 0 or -ENOMEM. */
int out_json_add_services(json_object *a, Twinroute__Service *const *v,
    size_t n);

/*
 * Orders. A state's name without its prefix: "AUTHORIZED"; "?" for a
 * number this build does not know.
 */
const char *out_order_state(Twinroute__OrderState s);
/* A state by name, any case, "ORDER_" optional. 0 or -EINVAL. */
int out_order_state_parse(const char *name, Twinroute__OrderState *ret);
/* Every state's name, separated by ", ", for messages. Returns buf. */
char *out_order_state_names(char *buf, size_t size);
/* A fax track's state as the daemon names it: "FAX_QUEUED"; "?" for a
 * number this build does not know. */
const char *out_fax_state(Twinroute__FaxState s);
/*
 * An order in a line: "order 42 AUTHORIZED: 2 x Fuji day tour, 29000 JPY,
 * visa ending 1111", "order 43 DECLINED: LIMIT". Returns buf.
 */
char *out_order_line(const Twinroute__Order *o, char *buf, size_t size);
/*
 * An order as JSON: id, member, service_id, provider_id, service_name,
 * quantity, unit_price and amount (integer minor units), currency, note,
 * state (its name), card_brand, card_last4, decline_reason,
 * idempotency_key, created_unix_ms, updated_unix_ms, history (an array of
 * { state, unix_ms, cause }, and fax, its fax state, in an entry that
 * holds one), fax (the card fax's last call: result, reason, remote_csi,
 * bps, pages, duration_ms, modem, compression, page_unix, unix_ms, dials,
 * tries, fax_ref; null if none) and fax_state.
 */
json_object *out_json_order(const Twinroute__Order *o);
/* out_time() of a time in milliseconds since the epoch. */
const char *out_time_ms(uint64_t unix_ms, char *buf, size_t len);

/* A key and a new value for out_json_object(). */
struct out_json_kv {
	const char *key;
	json_object *value;
};
/*
 * A new object with n keys, in order. It takes the values over: when one
 * is NULL (ENOMEM) or the object cannot be made, it releases them all and
 * returns NULL.
 */
json_object *out_json_object(const struct out_json_kv *kv, size_t n);
/* out_json_object() of the { key, value } pairs given. */
#define OUT_JSON_OBJECT(...)                                                   \
	out_json_object((const struct out_json_kv[]){ __VA_ARGS__ },           \
	    sizeof((const struct out_json_kv[]){ __VA_ARGS__ }) /              \
	    sizeof(struct out_json_kv))
/* Print obj as one pretty JSON document and a newline. 0 or -ENOMEM/-EIO. */
int out_json_print(json_object *obj, FILE *f);

#endif
