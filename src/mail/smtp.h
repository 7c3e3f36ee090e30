/* SPDX-License-Identifier: ISC */
/* smtp.h -- the mail thread: libesmtp sessions off the loop */
#ifndef TR_MAIL_SMTP_H
#define TR_MAIL_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

enum smtp_starttls {
	SMTP_STARTTLS_NEVER = 0,
	SMTP_STARTTLS_WHEN_AVAILABLE,
	SMTP_STARTTLS_REQUIRED,
};

struct smtp_opts {
	const char *host;          /* relay DNS name or IPv4 address (libesmtp
	                            * splits host:port at the first ':', so no
	                            * IPv6 literal) */
	uint16_t port;             /* 25, 587, ... */
	enum smtp_starttls starttls;
	const char *user;          /* SMTP AUTH user; NULL or "" for none.
	                            * PLAIN/LOGIN only with STARTTLS required
	                            * or a loopback relay */
	const char *password;      /* read by the caller from a file */
	unsigned timeout_s;        /* per SMTP command/response, >= 1 */
	const char *helo;          /* EHLO name; NULL: the host's name */
	const char *ca_file;       /* NULL: the system's CA store. TLS 1.2,
	                            * peer and name verified, SNI set */
};

enum smtp_result {
	SMTP_OK = 0,       /* the relay took the message (2xx after DATA) */
	SMTP_TEMP,         /* 4xx, timeout, refused or dropped connection */
	SMTP_PERM,         /* 5xx for the recipient or the message */
};

/*
 * One message of a batch. The caller fills id, from, to, data, len and
 * keeps them valid until the done callback; the thread fills result,
 * code (the SMTP reply code, 0 when there was none, e.g. connection
 * refused) and text (the relay's reply text or the reason, printable
 * ASCII, truncated).
 */
struct smtp_msg {
	uint64_t id;
	const char *from;          /* envelope sender */
	const char *to;            /* one envelope recipient */
	const char *data;          /* the whole message, CRLF lines */
	size_t len;
	enum smtp_result result;
	int code;
	char text[200];
};

/*
 * Called on the loop thread with the batch given to smtp_sender_submit,
 * never from within submit. It may submit the next batch or free the
 * sender.
 */
typedef void (*smtp_done_fn)(void *arg, struct smtp_msg *msgs, size_t n);

struct smtp_sender;

/*
 * Start the mail thread (signals blocked in it). opts are copied. The
 * done callback runs on base's thread, from an eventfd event. 0 or
 * -errno: -EINVAL for bad options (host, port 0, timeout_s outside
 * 1..3600, helo, a user without password), -errno when ca_file cannot be
 * read, -EINVAL when it holds no certificate.
 */
int smtp_sender_new(struct event_base *base, const struct smtp_opts *opts,
    smtp_done_fn done, void *arg, struct smtp_sender **ret);
/*
 * Hand the thread one batch: one SMTP session (connection reuse) carries
 * every message, in order. -EBUSY while a batch is in flight (one at a
 * time), -EINVAL for n == 0. When the session cannot be opened (refused,
 * timeout, TLS required but not offered, AUTH failed) every message gets
 * SMTP_TEMP (SMTP_PERM for a 5xx AUTH failure) with the reason in text.
 * Loop thread only. data is not dot-stuffed (libesmtp does it) and must
 * carry Date, From and Message-ID, or libesmtp adds its own. A message
 * whose envelope address is unusable (empty recipient, over 254 octets,
 * blanks, controls, '<' or '>') or whose data is empty gets SMTP_PERM,
 * code 0, without being sent; -EINVAL for NULL from, to or data.
 */
int smtp_sender_submit(struct smtp_sender *s, struct smtp_msg *msgs,
    size_t n);
bool smtp_sender_busy(const struct smtp_sender *s);
/* Stop the thread: waits for a session in progress to end (bounded by
 * the timeouts, except a connect() to an address that drops SYNs: the
 * kernel's connect timeout); its batch's callback is not called. NULL is
 * fine. */
void smtp_sender_free(struct smtp_sender *s);

#endif
