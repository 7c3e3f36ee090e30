/* SPDX-License-Identifier: ISC */
/* durable.h -- replies that go out once their write is on disk */
#ifndef TR_DURABLE_H
#define TR_DURABLE_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct conn;
struct store;

/*
 * The write a durable reply waited for could not be made durable (err < 0):
 * queue the protocol's own Error for request id on c. Runs on the loop, and
 * only while c is not closing.
 */
typedef void (*durable_fail_fn)(struct conn *c, uint64_t id, int err);

/*
 * Pack msg (the reply to request id) now and queue it on c once the store
 * has synced seq; c is kept alive until then. If seq cannot be made durable,
 * on_fail runs instead. If c is closing by then, nothing is sent; if the
 * packed reply cannot be queued, c closes after flush. Either may happen
 * before this returns. Returns 0, or -ENOMEM when nothing was arranged
 * (the caller replies).
 */
int durable_send(struct conn *c, struct store *s, uint64_t seq,
    const ProtobufCMessage *msg, uint64_t id, durable_fail_fn on_fail);

#endif
