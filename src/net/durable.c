/* SPDX-License-Identifier: ISC */
/* durable.c -- replies that go out once their write is on disk */
#include <errno.h>
#include <stdlib.h>

#include "net/durable.h"
#include "net/server.h"
#include "store/store.h"

struct durable_reply {
	struct conn *conn;
	uint64_t id;
	durable_fail_fn on_fail;
	uint8_t *packed;
	size_t len;
};

static void
durable_synced(void *arg, int err)
{
	struct durable_reply *p = arg;

	if (!conn_is_closing(p->conn)) {
		if (err != 0)
			p->on_fail(p->conn, p->id, err);
		else if (conn_send_packed(p->conn, p->packed, p->len) < 0)
			conn_close_after_flush(p->conn);
	}
	conn_unref(p->conn);
	free(p->packed);
	free(p);
}

int
durable_send(struct conn *c, struct store *s, uint64_t seq,
    const ProtobufCMessage *msg, uint64_t id, durable_fail_fn on_fail)
{
	struct durable_reply *p;
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->len = protobuf_c_message_get_packed_size(msg);
	p->packed = malloc(p->len ? p->len : 1);
	if (!p->packed) {
		free(p);
		return -ENOMEM;
	}
	protobuf_c_message_pack(msg, p->packed);
	p->conn = conn_ref(c);
	p->id = id;
	p->on_fail = on_fail;
	r = store_after_sync(s, seq, durable_synced, p);
	if (r < 0)
		durable_synced(p, r);
	return 0;
}
