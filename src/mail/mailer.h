/* SPDX-License-Identifier: ISC */
/* mailer.h -- the confirmation state machine on the loop, and the replies */
#ifndef TR_MAIL_MAILER_H
#define TR_MAIL_MAILER_H

#include <stddef.h>
#include <stdint.h>

#include "mail/lmtp.h"

struct daemon;
struct mailer;

/*
 * A confirmation moves QUEUED -> SENDING -> SENT (the order AWAITING_
 * CONFIRMATION) -> CONFIRMED | EXPIRED | CANCELLED, or DEFERRED (retry at
 * a time) and FAILED (the order CONFIRMATION_FAILED). QUEUED and DEFERRED
 * are mail jobs in outbox_mail, SENT a Confirmation with its token:
 * everything but SENDING is in the store, so a restart resumes it.
 *
 * mailer_open loads the template, reads the SMTP password file, starts
 * the mail thread, and schedules every queued job. 0 or -errno with a
 * message logged.
 */
int mailer_open(struct daemon *d, struct mailer **ret);
void mailer_free(struct mailer *m);

/* An order entered AUTHORIZED (or got a resend job) in the commit seq:
 * send its confirmation once that commit is durable. */
void mailer_kick(struct mailer *m, uint64_t order_id, uint64_t seq);

/* What twinroutectl queue mail shows. */
struct mailer_stats {
	uint64_t sent, deferred, failed, confirmed, cancelled, expired;
	uint64_t replies_refused, replies_ignored;
	size_t in_flight;
};
void mailer_get_stats(const struct mailer *m, struct mailer_stats *ret);
/* Is this order's confirmation in flight now (SENDING)? */
int mailer_sending(const struct mailer *m, uint64_t order_id);

/* LMTP (lmtp_listen.c calls these). */
int mailer_lmtp_rcpt(struct mailer *m, const char *addr, char *reply,
    size_t reply_size);
/*
 * Decide every recipient of a delivered reply, commit what it changes,
 * and call done(arg, replies, n) once those commits are durable (or at
 * once when nothing changed). replies live until done returns. 0, or
 * -ENOMEM and done is not called.
 */
typedef void (*mailer_reply_done_fn)(void *arg, const char *const *replies,
    size_t n);
int mailer_lmtp_deliver(struct mailer *m, const struct lmtp_envelope *env,
    mailer_reply_done_fn done, void *arg);

/* The LMTP listeners (lmtp_listen.c). */
struct lmtp_listen;
int lmtp_listen_open(struct daemon *d, struct mailer *m,
    struct lmtp_listen **ret);
void lmtp_listen_free(struct lmtp_listen *l);
const char *lmtp_listen_address(const struct lmtp_listen *l);
unsigned lmtp_listen_conn_count(const struct lmtp_listen *l);

#endif
