/* SPDX-License-Identifier: ISC */
/* order.h -- the order state machine: its one table, orders in the store */
#ifndef TR_ORDER_H
#define TR_ORDER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.pb-c.h"
#include "store.pb-c.h"
#include "store/store.h"

typedef Twinroute__Order Order;
typedef Twinroute__OrderState order_state;
typedef Twinroute__FaxState fax_state;

#define ORDER_NOTE_MAX 500          /* bytes, UTF-8 */
#define ORDER_IDEM_KEY_MAX 64       /* printable ASCII */
#define ORDER_HASH_SIZE 32          /* SHA-256 */
#define ORDER_MEMBER_MAX 32         /* bytes of a member number in keys */
#define ORDER_CAUSE_MAX 96          /* bytes of a history entry's cause */

/* A transition the table does not allow (callers answer ERR_WRONG_STATE). */
#define ORDER_EFORBIDDEN EPERM

/* "RECEIVED", "AUTHORIZED", ...; "UNSPECIFIED" for 0. Never NULL. */
const char *order_strstate(order_state s);
/* Does the table allow from -> to? UNSPECIFIED -> RECEIVED creates. */
bool order_transition_allowed(order_state from, order_state to);
/* No transition leaves s. */
bool order_state_terminal(order_state s);

/*
 * Every change of an order's state goes through here. Checks the table
 * (-ORDER_EFORBIDDEN, and nothing changes), then appends {to, now_ms,
 * cause} to o's history, sets state and updated_unix_ms (created_unix_ms
 * too when creating), writes the order (its member index follows: see
 * order_member_index_catch_up), and writes in the same txn the outbox
 * entries of the new state: entering
 * AUTHORIZED queues a MailJob (key: the order id); leaving AUTHORIZED or
 * AWAITING_CONFIRMATION removes a mail job still queued, and leaving
 * AWAITING_CONFIRMATION removes its Confirmation, token and expiry entry
 * (so a token works only while its order awaits it); entering CONFIRMED
 * queues a DispatchJob in outbox_provider and one in outbox_fax. So an
 * order has a mail job while it is AUTHORIZED (and while AWAITING_
 * CONFIRMATION after an admin's resend). Logs the transition.
 *
 * o must own its memory the protobuf-c way (from order_get(), order_dup()
 * or unpack): its history array grows in place. On a store failure the
 * txn is spoiled and o may have changed: drop both.
 */
int order_enter_state(struct store_txn *txn, Order *o, order_state to,
    const char *cause, uint64_t now_ms);

/*
 * The key of an order's job in outbox_provider: the provider id, a NUL,
 * the order id (8 bytes big-endian), so a provider's jobs are one range,
 * oldest order first. Returns its length.
 */
#define ORDER_DISPATCH_KEY_MAX (64 + 1 + 8)
size_t order_dispatch_key(const char *provider_id, uint64_t id,
    uint8_t out[ORDER_DISPATCH_KEY_MAX]);

/*
 * The card route, a second track beside the main state (DESIGN.md: "fax:
 * FAX_SENT | FAX_FAILED"). Entering CONFIRMED sets FAX_QUEUED with its job
 * in outbox_fax (order_enter_state); entering CANCELLED or REJECTED while
 * the job is only queued cancels it (FAX_CANCELLED, job removed). The
 * dispatcher moves it on with order_fax_enter: the table is checked
 * (-ORDER_EFORBIDDEN), the history gets {state, fax: to, cause}, the order
 * is written; entering SENT, FAILED or CANCELLED removes the job, entering
 * QUEUED from FAILED (the admin's retry) makes a new one.
 */
const char *order_strfax(fax_state s);	/* "FAX_QUEUED", ... */
bool order_fax_allowed(fax_state from, fax_state to);
int order_fax_enter(struct store_txn *txn, Order *o, fax_state to,
    const char *cause, uint64_t now_ms);
/* The order's job in outbox_fax (key: the order id). -ENOENT. */
int order_fax_job_get(struct store_txn *txn, uint64_t id,
    Twinroute__Store__DispatchJob **ret_job);
int order_fax_job_put(struct store_txn *txn,
    const Twinroute__Store__DispatchJob *job);

/*
 * Orders by state and by fax track, kept in the META DB under
 * "order_counts" and changed by order_enter_state() and order_fax_enter()
 * in the transaction of the transition: exact after a crash, an abort or
 * a failed batch, and read at the cost of one record (metrics). A store
 * without them (made before they existed) is counted once, by a scan of
 * the orders: order_counts_ensure() at start; a transition finding none
 * counts too. state[0] (UNSPECIFIED) stays 0; fax[FAX_NONE] counts the
 * orders whose card route has not begun.
 */
#define ORDER_N_STATES (TWINROUTE__ORDER_STATE__ORDER_CHARGED + 1)
#define ORDER_N_FAX (TWINROUTE__FAX_STATE__FAX_CANCELLED + 1)
struct order_counts {
	uint64_t state[ORDER_N_STATES];
	uint64_t fax[ORDER_N_FAX];
};
/* The stored counts. -ENOENT when the store has none yet. */
int order_counts_get(struct store_txn *txn, struct order_counts *ret);
/* Count every order (a scan) and store the result. */
int order_counts_rebuild(struct store_txn *txn, struct order_counts *ret);
/* Write transaction of its own: rebuild the counts if the store has none.
 * *ret_rebuilt (may be NULL) says whether it did. */
int order_counts_ensure(struct store *s, bool *ret_rebuilt);

/*
 * The ids of the orders left RECEIVED (a crash, or a failed write, between
 * an order and the vault's answer), oldest first, from the orders_received
 * index that order_enter_state() keeps: no scan of the orders. An index
 * that disagrees with the counts by state, or names an order that is not
 * RECEIVED (a store made before the index, or written by such a build),
 * is made again by one scan, in a write transaction of its own;
 * *ret_rebuilt (may be NULL) says so. Free *ret_ids.
 */
int order_received_ids(struct store *s, uint64_t **ret_ids, size_t *ret_n,
    bool *ret_rebuilt);

/* Remove an order's Confirmation with its token and expiry entry.
 * -ENOENT when it has none. */
int order_confirmation_drop(struct store_txn *txn, uint64_t id);

/* The next order id (1, 2, ...), counted in the meta DB within txn. */
int order_next_id(struct store_txn *txn, uint64_t *ret_id);
/* Read an order; free with twinroute__order__free_unpacked. -ENOENT. */
int order_get(struct store_txn *txn, uint64_t id, Order **ret_order);
/* Write an order (order_enter_state does). */
int order_put(struct store_txn *txn, const Order *o);
/* A deep copy owned the protobuf-c way. -ENOMEM. */
int order_dup(const Order *o, Order **ret_order);
/* Replace a string field of an order owned the protobuf-c way. -ENOMEM. */
int order_set_str(char **field, const char *val);
/* The outbox mail job of an order. -ENOENT. */
int order_mail_job_get(struct store_txn *txn, uint64_t id,
    Twinroute__Store__MailJob **ret_job);

/* Visit every order, oldest first; o is valid during the call. cb as
 * in store_iter. */
typedef int (*order_iter_fn)(const Order *o, void *arg);
int order_iter(struct store_txn *txn, order_iter_fn cb, void *arg);
/* The same, newest first: a caller that wants the last few stops early. */
int order_iter_newest(struct store_txn *txn, order_iter_fn cb, void *arg);
/*
 * orders_by_member is written behind the orders, not with them: a member
 * index entry is a write to one of many places in the file, and with each
 * order in its own batch that page was rewritten for every order. META's
 * member_index_through says up to which id the index is complete;
 * order_member_index_catch_up indexes the orders after it, oldest first,
 * in txn, and moves it. The daemon runs it at start, every 100 ms, and
 * before each listing by member (order_member_index_update). Without the
 * mark (a new store, or one of schema 1) it indexes every order. *ret_n
 * (may be NULL): orders indexed.
 */
int order_member_index_catch_up(struct store_txn *txn, size_t *ret_n);
/* The same in a write transaction of its own, which commits the loop's
 * open batch first, when the committed orders are not all indexed: a
 * read transaction begun after it returns sees every committed order of
 * the member in the index. */
int order_member_index_update(struct store *s, size_t *ret_n);
/* How many orders the index lacks: none means a catch-up would do
 * nothing (without the mark: every order). */
int order_member_index_lag(struct store_txn *txn, uint64_t *ret_n);
/* Set the mark: the index holds every order up to id. */
int order_indexed_set(struct store_txn *txn, uint64_t id);
/*
 * The member's order ids, newest first, starting below before_id (0: from
 * the newest). Fills up to max ids; *ret_more says whether more follow.
 * What the index holds: catch it up first.
 */
int order_list_member(struct store_txn *txn, const char *member,
    uint64_t before_id, uint64_t *ids, size_t max, size_t *ret_n,
    bool *ret_more);

/* SHA-256 over the parameters an idempotency key stands for. */
void order_request_hash(const char *service_id, uint32_t quantity,
    const char *note, uint8_t ret_hash[ORDER_HASH_SIZE]);
/* Checks of client input. 0 or -EINVAL. */
int order_check_note(const char *note);
int order_check_idem_key(const char *key);

#endif
