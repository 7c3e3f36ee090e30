/* SPDX-License-Identifier: ISC */
/* ctl_check.h -- the control protocol's request fields, as the daemon checks them */
#ifndef TR_CTL_CHECK_H
#define TR_CTL_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"

/*
 * Pure checks of what an admin sent: the handlers in src/ctl/ call them,
 * and so does the fuzz target tests/fuzz/fuzz_control_req.c. Those that
 * answer with a reason return it (static text), or NULL when all is well.
 */

/*
 * The request's protocol version and command: 0; -EPROTO for another
 * version (the connection closes after the reply), -ENOSYS for a command
 * this daemon does not have. msg gets the reply's message.
 */
int ctl_check_request(const Twinroute__Ctl__CtlRequest *req, char *msg,
    size_t len);

/* An order id as typed: decimal ("42", "042"), hex ("0x2a") or the
 * 16-digit hex form the logs print ("000000000000002a"). 0, or -EINVAL
 * (0 is no order's id). */
int ctl_order_id_parse(const char *s, uint64_t *ret_id);

/* backup: the target folder as given: absolute, at most
 * CTL_BACKUP_DIR_MAX bytes, no control characters. */
const char *ctl_check_backup_dir(const char *dir);

/* provider cert: with remove, no certificate; else one whole DER X.509
 * certificate of at most CTL_CERT_MAX bytes, nothing after it. */
const char *ctl_check_cert(bool remove, const uint8_t *der, size_t len);

/* member card check: a positive amount and a currency (may be NULL). */
const char *ctl_check_card_check(const Twinroute__Ctl__CardCheck *cc);

/* ledger: the period [*ret_from, *ret_to) (0: open) of lq (may be NULL:
 * everything); it must end after it starts. */
const char *ctl_check_ledger(const Twinroute__Ctl__LedgerQuery *lq,
    uint64_t *ret_from, uint64_t *ret_to);

#endif
