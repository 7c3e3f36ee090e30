/* SPDX-License-Identifier: ISC */
/* lmtp.h -- the LMTP server protocol engine (RFC 2033), without I/O */
#ifndef TR_MAIL_LMTP_H
#define TR_MAIL_LMTP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * One engine per connection. The caller feeds it the bytes it reads and
 * writes out what the engine emits through the output callback; the
 * engine never blocks and never touches a socket, so it can be unit
 * tested and fuzzed byte by byte.
 *
 * Commands: LHLO, MAIL FROM:<addr> [params], RCPT TO:<addr> [params],
 * DATA, RSET, NOOP, VRFY (252), QUIT, HELP. LHLO advertises PIPELINING,
 * ENHANCEDSTATUSCODES, 8BITMIME and SIZE max_message. Every reply carries
 * an enhanced status code. Commands are case-insensitive; lines end in
 * CRLF (a bare LF is accepted too). Pipelined commands are answered in
 * order. EHLO and HELO get "500 5.5.1 this is LMTP: use LHLO".
 *
 * Bounds: a command line longer than max_line gets "500 5.5.2 line too
 * long" and the rest of that line is discarded; a message longer than
 * max_message, or with a line longer than max_line, is read to its end
 * and then refused per recipient ("552 5.3.4 ..."), without a delivery
 * callback; more than max_rcpts recipients get "452 4.5.3 too many
 * recipients" for the extra ones. A MAIL FROM SIZE= above max_message is
 * refused at once (552 5.3.4).
 *
 * DATA: after "354", lines up to "." alone; dot-unstuffing applied. The
 * message handed to the deliver callback is exactly the unstuffed lines,
 * each ending in CRLF (bare LF normalised to CRLF). After the callback
 * the engine is busy: it buffers any further input (pipelined commands;
 * at most 2 * max_line bytes, beyond which it answers 421 and closes)
 * until lmtp_session_deliver_done() gives one reply per accepted
 * recipient, in RCPT order, which the engine emits and then resumes with
 * the buffered input. Then the envelope is reset as after RSET.
 *
 * Syntax errors get 501/500 with a reason; bad sequence 503. After 20
 * consecutive errors the engine answers "421 4.7.0 too many errors" and
 * closes.
 */

/*
 * Notes on the above: the greeting, the LHLO lines and the 354 carry no
 * enhanced code (RFC 2034 and RFC 3463 define none for them). The error
 * count counts 4xx/5xx replies to commands, except 452 for too many
 * recipients; any 2xx/3xx reply resets it. A rcpt reply that is not a
 * 4xx/5xx printable line becomes "550 5.1.1 recipient rejected"; a
 * deliver_done reply that is not a 2xx/4xx/5xx printable line becomes
 * "451 4.3.0 delivery status unknown".
 */
#define LMTP_LINE_MIN 512       /* max_line is raised to this ... */
#define LMTP_LINE_LIMIT 65536   /* ... and lowered to this */
#define LMTP_MAX_ERRORS 20      /* consecutive error replies before 421 */

struct lmtp_limits {
	size_t max_message;   /* bytes of message data after unstuffing */
	size_t max_line;      /* bytes of one line without CRLF, >= 512 */
	unsigned max_rcpts;   /* recipients per transaction, >= 1 */
};

struct lmtp_envelope {
	const char *mail_from;         /* without <>; "" for the null sender */
	const char *const *rcpts;      /* accepted recipients, without <> */
	size_t n_rcpts;
	const char *data;              /* the message, unstuffed, CRLF lines */
	size_t data_len;
};

/* Emit bytes to the client (complete reply lines, CRLF included). */
typedef void (*lmtp_output_fn)(void *arg, const char *buf, size_t len);
/*
 * RCPT TO:<addr>: return 0 to accept ("250 2.1.5 ok" is emitted), or
 * nonzero after writing a complete reply line without CRLF into reply
 * (e.g. "550 5.1.1 no such recipient"), which the engine emits.
 */
typedef int (*lmtp_rcpt_fn)(void *arg, const char *addr, char *reply,
    size_t reply_size);
/*
 * End of DATA with at least one accepted recipient. env and everything it
 * points to stay valid until lmtp_session_deliver_done() (or free).
 * Answer later with lmtp_session_deliver_done(); it may be called from
 * within this callback too.
 */
typedef void (*lmtp_deliver_fn)(void *arg, const struct lmtp_envelope *env);

struct lmtp_callbacks {
	lmtp_output_fn output;
	lmtp_rcpt_fn rcpt;
	lmtp_deliver_fn deliver;
	void *arg;
};

struct lmtp_session;

/* NULL on -ENOMEM. hostname appears in the greeting and LHLO reply. */
struct lmtp_session *lmtp_session_new(const struct lmtp_limits *limits,
    const char *hostname, const struct lmtp_callbacks *cb);
void lmtp_session_free(struct lmtp_session *s);

/* Emit the "220 HOSTNAME LMTP twinroute ready" greeting. */
void lmtp_session_start(struct lmtp_session *s);

/*
 * Feed bytes read from the client. Returns 0 to go on, LMTP_CLOSE when
 * the session is over (QUIT answered with 221, or a 421 emitted): the
 * caller flushes the output and closes. -ENOMEM is fatal too.
 */
#define LMTP_CLOSE 1
/* -EBUSY when called from within a callback of the same session. */
int lmtp_session_feed(struct lmtp_session *s, const char *buf, size_t len);

/*
 * Answer the pending delivery: replies[i] is the complete reply line
 * (without CRLF) for the i-th accepted recipient, e.g. "250 2.1.5
 * confirmed" or "550 5.7.1 unknown token". n must equal env->n_rcpts.
 * Returns 0, LMTP_CLOSE (as for feed, when buffered input ended the
 * session), -EINVAL (no delivery pending or n wrong) or -ENOMEM. When
 * the session was closed meanwhile (421 for too much buffered input) it
 * releases the envelope, emits nothing and returns LMTP_CLOSE.
 */
int lmtp_session_deliver_done(struct lmtp_session *s,
    const char *const *replies, size_t n);

/* A delivery callback has not been answered yet. */
bool lmtp_session_busy(const struct lmtp_session *s);

#endif
