/* SPDX-License-Identifier: ISC */
/* dispatcher.h -- the card route on the loop: fax jobs, the modem pool */
#ifndef TR_FAX_DISPATCHER_H
#define TR_FAX_DISPATCHER_H

/*
 * A CONFIRMED order has a fax job in outbox_fax (holding the order id and
 * the retry counters, never card data) and the order's fax track says
 * where it is: FAX_QUEUED -> FAX_DIALING -> FAX_SENDING -> FAX_SENT, back
 * to FAX_QUEUED for a retry (src/fax/policy.h), or FAX_FAILED.
 *
 * Jobs due now wait in a min-heap of (due time, order id), filled by a scan
 * of outbox_fax at start (a job cut by a restart goes back to FAX_QUEUED),
 * by fax_dispatcher_kick once a confirmation is durable, and by retries.
 * When a modem of the pool is free and a job is due, the job goes
 * FAX_DIALING, the vault composes its page (VAULT_OP_FAX_PAGE: locked
 * memory, recomposed for every try), and the modem calls the provider's
 * fax number, checking the CSI pinned with `twinroutectl provider
 * fax-ident`. The page buffers are wiped when the call ends.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fax/modem.h"
#include "fax/policy.h"

struct daemon;
struct fax_dispatcher;
struct Twinroute__Order;

/* Make the modems of [fax] modems and schedule every job in outbox_fax.
 * 0 or -errno with a message logged. */
int fax_dispatcher_open(struct daemon *d, struct fax_dispatcher **ret);
/* Hang up calls in progress (their jobs stay in the store: the next start
 * requeues them) and free. NULL-safe. */
void fax_dispatcher_free(struct fax_dispatcher *f);

/* An order entered CONFIRMED (or was requeued) in commit seq: schedule
 * its fax job once that commit is durable. */
void fax_dispatcher_kick(struct fax_dispatcher *f, uint64_t order_id,
    uint64_t seq);

/*
 * `twinroutectl fax retry`: a FAX_FAILED job gets a new job (counters
 * reset) and a FAX_QUEUED one is made due now. Returns 0 and the commit
 * seq, -ENOENT (no such order), -EBUSY (the job is in a call now),
 * -ORDER_EFORBIDDEN (its fax track is NONE, SENT or CANCELLED), or a
 * store error. On success *ret_order (may be NULL) gets the order after
 * the change: free with twinroute__order__free_unpacked.
 */
int fax_dispatcher_retry(struct fax_dispatcher *f, uint64_t order_id,
    const char *actor, uint64_t *ret_seq, struct Twinroute__Order **ret_order);

/* Is this order's fax in a call now? */
bool fax_dispatcher_calling(const struct fax_dispatcher *f,
    uint64_t order_id);

/* The pool, for `twinroutectl modem list`. */
size_t fax_dispatcher_n_modems(const struct fax_dispatcher *f);
/* i < n_modems. order_id: the job in the modem, 0 when none. */
void fax_dispatcher_modem(const struct fax_dispatcher *f, size_t i,
    struct modem_info *ret, uint64_t *ret_order_id);

struct fax_stats {
	uint64_t sent, failed, retried, calls;
	uint64_t pages_composed;
	size_t queued;		/* jobs in the heap */
	size_t in_flight;	/* jobs in a call or waiting for their page */
};
void fax_dispatcher_stats(const struct fax_dispatcher *f,
    struct fax_stats *ret);

#endif
