/* SPDX-License-Identifier: ISC */
/* server.h -- listeners and framed connections on the loop */
#ifndef TR_SERVER_H
#define TR_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>
#include <openssl/ssl.h>
#include <protobuf-c/protobuf-c.h>

struct listener;
struct conn;

/* Limits that SIGHUP may change on a running listener. */
struct listener_limits {
	uint32_t max_frame;       /* largest request payload accepted */
	uint32_t max_connections;
	uint32_t idle_timeout;    /* seconds without a request, or without write progress */
	uint32_t output_limit;    /* pending reply bytes before we stop reading */
};

struct listener_ops {
	const char *name;         /* "client", "control": for logs */
	/* A connection was accepted. Return <0 to refuse it (the callback
	 * queues its own error reply; the connection closes after flush). */
	int (*on_accept)(struct conn *c);
	/* One whole frame. Return <0 to close the connection after flushing
	 * what was queued (the callback sends the Error first). */
	int (*on_frame)(struct conn *c, const uint8_t *payload, uint32_t len);
	/* Queue an Error reply for a framing-level problem. */
	void (*send_error)(struct conn *c, uint64_t id, int code, const char *msg);
	/* The connection is going away; free c's protocol state. May be NULL. */
	void (*on_close)(struct conn *c);
};

/* Error codes send_error gets for framing-level problems (ErrorCode values). */

int listener_new_tcp(struct event_base *base, const char *hostport,
    SSL_CTX *ssl_ctx, const struct listener_ops *ops,
    const struct listener_limits *limits, void *ctx, struct listener **ret_l);
/* Bind a Unix socket at path with the given mode (a stale socket is
 * replaced; anything else at path is an error). */
/*
 * A listening Unix socket at path, created with mode (no window where it
 * is more open). A socket left by a dead process is replaced; a live one
 * is -EADDRINUSE; another kind of file -EEXIST. The fd, or -errno.
 */
int listener_unix_socket(const char *path, mode_t mode);
int listener_new_unix(struct event_base *base, const char *path, mode_t mode,
    const struct listener_ops *ops, const struct listener_limits *limits,
    void *ctx, struct listener **ret_l);
/*
 * accept() on lfd failed with EMFILE or ENFILE: accept one waiting peer in
 * the place of the descriptor kept in reserve for this (taken by the first
 * listener made), write msg to it (len 0: nothing), close it and take the
 * reserve again. 0, or -errno (no reserve, nobody waiting: -EAGAIN).
 */
int listener_refuse_reserved(evutil_socket_t lfd, const void *msg, size_t len);
/* Stop accepting and close idle connections once their replies are out. */
void listener_shutdown(struct listener *l);
/* Free the listener and every connection at once. Accepts NULL. */
struct listener *listener_free(struct listener *l);

void listener_set_limits(struct listener *l, const struct listener_limits *limits);
const struct listener_limits *listener_get_limits(const struct listener *l);
unsigned listener_conn_count(const struct listener *l);
/* "127.0.0.1:7420", "[::1]:7420" or the socket path. */
const char *listener_address(const struct listener *l);
void *listener_ctx(const struct listener *l);

/* Connections. */
uint64_t conn_id(const struct conn *c);
struct listener *conn_listener(const struct conn *c);
void *conn_ctx(const struct conn *c);          /* the listener's ctx */
void *conn_data(const struct conn *c);         /* protocol state */
void conn_set_data(struct conn *c, void *data);
/* Peer credentials of a Unix socket connection; -ENOTSUP for TCP. */
int conn_peer_cred(const struct conn *c, pid_t *ret_pid, uid_t *ret_uid,
    gid_t *ret_gid);
const char *conn_peer_name(const struct conn *c);
/* SHA-256 of the DER of the TLS peer's certificate: -ENOTSUP without TLS,
 * -ENOENT when the peer sent none. */
int conn_peer_cert_sha256(const struct conn *c, uint8_t ret[32]);
/* Queue one framed message. 0, -ENOMEM, or -EPIPE if the connection is
 * closing or gone. */
int conn_send(struct conn *c, const ProtobufCMessage *msg);
/* Queue an already packed payload. */
int conn_send_packed(struct conn *c, const uint8_t *payload, size_t len);
/* Stop reading; close once every queued reply is written. */
void conn_close_after_flush(struct conn *c);
/* A reply will be sent later (after a sync): keep c's memory alive. */
struct conn *conn_ref(struct conn *c);
/* Drop a reference; may free c. */
void conn_unref(struct conn *c);
/* The peer is gone or the connection is closing: sends are dropped. */
bool conn_is_closing(const struct conn *c);
/*
 * The daemon owes the peer a reply that may take longer than the idle
 * timeout (a backup): while held, the timeout leaves the connection
 * alone; on release its idle clock starts again.
 */
void conn_hold_idle(struct conn *c, bool hold);

#endif
