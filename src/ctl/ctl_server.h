/* SPDX-License-Identifier: ISC */
/* ctl_server.h -- the daemon's control handlers, shared between their files */
#ifndef TR_CTL_SERVER_H
#define TR_CTL_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "net/server.h"
#include "store.pb-c.h"

typedef Twinroute__Ctl__CtlRequest CtlRequest;
typedef Twinroute__Ctl__CtlResponse CtlResponse;
typedef Twinroute__Store__ProviderAuth ProviderAuth;

/* Replies (ctl_server.c). */
void ctl_send_error(struct conn *c, uint64_t id, int code, const char *msg);
void ctl_reply(struct conn *c, CtlResponse *resp);
/* "WHAT: reason" as ERR_STORE (ERR_STORE_FULL for -ENOSPC), logged. */
void ctl_store_error(struct conn *c, uint64_t id, int r, const char *what);
/* Send resp once the broker store has synced seq. */
void ctl_reply_durable(struct conn *c, uint64_t seq, CtlResponse *resp);
/* "ctl uid=0 pid=42": who is asking, for logs and the audit trail. */
void ctl_actor(struct conn *c, char *buf, size_t len);

/*
 * An admin action's line in the audit trail (the vault writes it, with its
 * own lines): who (the control peer), what, member if any, how it ended.
 * Never a password, share or card field.
 */
void ctl_audit(struct conn *c, const char *member, bool failed,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Members, cards and the vault (ctl_member.c). */
void ctl_member_add(struct conn *c, const CtlRequest *req);
void ctl_member_show(struct conn *c, const CtlRequest *req);
void ctl_member_list(struct conn *c, const CtlRequest *req);
void ctl_member_disable(struct conn *c, const CtlRequest *req);
void ctl_member_passwd(struct conn *c, const CtlRequest *req);
void ctl_member_card_set(struct conn *c, const CtlRequest *req);
void ctl_member_card_show(struct conn *c, const CtlRequest *req);
void ctl_member_card_remove(struct conn *c, const CtlRequest *req);
void ctl_member_card_check(struct conn *c, const CtlRequest *req);
void ctl_vault_init(struct conn *c, const CtlRequest *req);
void ctl_vault_unseal(struct conn *c, const CtlRequest *req);
void ctl_vault_seal(struct conn *c, const CtlRequest *req);
void ctl_vault_status(struct conn *c, const CtlRequest *req);
void ctl_vault_rotate(struct conn *c, const CtlRequest *req);
/* Login lockouts (src/client/client_login.c). */
void ctl_member_unlock(struct conn *c, const CtlRequest *req);

/* Orders (ctl_order.c). */
void ctl_order_list(struct conn *c, const CtlRequest *req);
void ctl_order_show(struct conn *c, const CtlRequest *req);
void ctl_order_cancel(struct conn *c, const CtlRequest *req);
void ctl_queue_mail(struct conn *c, const CtlRequest *req);
void ctl_order_resend_confirmation(struct conn *c, const CtlRequest *req);
/* The order req->target names ("42", "0x2a" or the 16 hex digits the logs
 * print); if it names none, the reply is sent and -EINVAL returned. */
int ctl_order_target(struct conn *c, const CtlRequest *req, uint64_t *ret_id);
/* The NOT_FOUND reply "no order ID". */
void ctl_order_not_found(struct conn *c, const CtlRequest *req, uint64_t id);

/* Provider credentials, sessions, dispatch queue, ledger (ctl_provider.c). */
void ctl_provider_cert(struct conn *c, const CtlRequest *req);
void ctl_provider_token(struct conn *c, const CtlRequest *req);
void ctl_provider_sessions(struct conn *c, const CtlRequest *req);
void ctl_queue_provider(struct conn *c, const CtlRequest *req);
void ctl_ledger(struct conn *c, const CtlRequest *req);
/* Does req->target name a provider of the catalog? If not, the reply (and
 * for a change, its audit line) is sent. */
bool ctl_provider_known(struct conn *c, const CtlRequest *req, bool change);
/*
 * Change the provider's ProviderAuth in one write transaction: edit gets a
 * copy of the record (an empty one for a provider without), the rest of
 * which is kept; the time of the change is set.
 */
typedef void (*ctl_auth_edit_fn)(ProviderAuth *a, void *arg);
int ctl_auth_write(struct conn *c, const char *provider_id,
    ctl_auth_edit_fn edit, void *arg, uint64_t *ret_seq);

/* The card route: the fax ident pin, fax jobs, modems (ctl_fax.c). */
void ctl_provider_fax_ident(struct conn *c, const CtlRequest *req);
void ctl_queue_fax(struct conn *c, const CtlRequest *req);
void ctl_fax_show(struct conn *c, const CtlRequest *req);
void ctl_fax_retry(struct conn *c, const CtlRequest *req);
void ctl_modem_list(struct conn *c, const CtlRequest *req);

/* Backups (ctl_backup.c). */
void ctl_backup(struct conn *c, const CtlRequest *req);
/* At exit, after vault_close and before store_close: wait for the step a
 * backup is in, abandon the rest, stop the backup thread. */
void ctl_backup_close(void);

#endif
