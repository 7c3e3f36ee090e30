/* SPDX-License-Identifier: ISC */
/* idem.h -- idempotency keys: a log in the store, an index in memory */
#ifndef TR_IDEM_H
#define TR_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "order/order.h"
#include "store/store.h"

/*
 * A member's idempotency key maps to its order for ttl seconds. Keys are
 * the client's choice, random as a rule: kept in a B-tree by key, each
 * new one lands on a leaf of its own, and every order would rewrite a
 * page somewhere in the file. So the store keeps them as a log in order
 * id order (idempotency_log: key = order id, SipHash of member "\0" key),
 * written at its end and expired from its front, its value only the
 * time; and the daemon keeps the hash -> order id map in memory: 16 bytes
 * a slot, rebuilt from the log at start (about 24 bytes a key on disk,
 * 170 keys a page). A hit is checked against the log record (there, and
 * young enough) and the order, which holds member, key and parameters:
 * the map is only a hint, the log and the orders are the truth.
 *
 * The SipHash key is drawn once per store and kept in META, so nobody can
 * choose keys that pile onto one slot.
 */
struct idem;

/*
 * Load the index of store s: draw or read the hash key, move a schema 1
 * store's idempotency records into the log (one write transaction), then
 * read the log's keys. *ret_moved (may be NULL): records moved.
 */
int idem_open(struct store *s, struct idem **ret_idem, size_t *ret_moved);
/* Accepts NULL; returns NULL. */
struct idem *idem_free(struct idem *ix);

/*
 * The order key maps to for member, if stored less than ttl seconds
 * before now: -ENOENT when absent or expired. txn must see every write
 * (a write or batch transaction): a map entry whose record it cannot
 * find is one of a write that failed, and is dropped.
 */
int idem_get(struct idem *ix, struct store_txn *txn, const char *member,
    const char *key, uint64_t now, uint32_t ttl, uint64_t *ret_order_id,
    uint8_t ret_hash[ORDER_HASH_SIZE]);
/*
 * Log member's key -> order_id at now, in the transaction that writes
 * the order (the order holds member, key and parameters: idem_get reads
 * them there, and gives the hash of its parameters).
 */
int idem_put(struct idem *ix, struct store_txn *txn, const char *member,
    const char *key, uint64_t order_id, uint64_t now);
/*
 * Delete up to max records from the log's front that are ttl seconds old
 * at now (stops at the first younger one). *ret_n (may be NULL): how
 * many. The map forgets them at once: should txn fail, the records stay,
 * expired, which is what idem_get makes of them anyway.
 */
int idem_sweep(struct idem *ix, struct store_txn *txn, uint64_t now,
    uint32_t ttl, size_t max, size_t *ret_n);
/* 1 when the log's front record is ttl seconds old at now (a sweep has
 * work), 0 when not or the log is empty; or an error. */
int idem_sweep_due(struct store_txn *txn, uint64_t now, uint32_t ttl);
/* Keys in the map. */
size_t idem_count(const struct idem *ix);

#endif
