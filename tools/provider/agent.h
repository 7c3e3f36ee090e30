/* SPDX-License-Identifier: ISC */
/* agent.h -- the provider agent's pure parts: dispatch JSON, backoff, token */
#ifndef TR_AGENT_H
#define TR_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "provider.pb-c.h"

/* The longest token taken from a token file, in bytes. */
#define AGENT_TOKEN_MAX 1024
/* The first reconnection waits at most this long; each failure doubles it. */
#define AGENT_BACKOFF_BASE_MS 500u

/*
 * An OrderDispatch as one line of JSON, without the newline: order_id,
 * service_id, service_name, quantity, unit_price and amount (each
 * { "minor": N, "currency": "EUR" }, null when missing), amount_text
 * (money_format() of the amount, null when missing), member_name,
 * member_email, note, fax_reference, redelivery, attempt and
 * confirmed_unix_ms. Control characters are escaped, so the line never
 * breaks. malloc'd; NULL on ENOMEM.
 */
char *agent_dispatch_json(const Twinroute__Provider__OrderDispatch *d);

/*
 * A JSON string of s ("" for NULL) in which each byte that is not part
 * of well-formed UTF-8 is replaced by U+FFFD. NULL on ENOMEM.
 */
json_object *agent_json_text(const char *s);

/*
 * Exponential backoff with full jitter: a delay drawn uniformly by rnd (32
 * random bits) from [0, min(max_ms, AGENT_BACKOFF_BASE_MS << attempt)].
 */
uint32_t agent_backoff_ms(unsigned attempt, uint32_t max_ms, uint32_t rnd);

/*
 * Seconds as typed, "30" or "0.5" (at most three decimals), more than 0
 * and at most max_s, into milliseconds. 0, -EINVAL (not a number) or
 * -ERANGE (0 or over max_s).
 */
int agent_parse_seconds(const char *s, uint32_t max_s, uint32_t *ret_ms);

/*
 * The token on the first line of the file at path (a trailing CR is
 * dropped) into buf, NUL-terminated; size is at most AGENT_TOKEN_MAX + 1.
 * 0; -errno when the file cannot be read; -ENODATA when the first line is
 * empty; -E2BIG when it is longer than size - 1 bytes; -EINVAL when it
 * holds a control character. buf is wiped on failure.
 */
int agent_read_token(const char *path, char *buf, size_t size);

#endif
