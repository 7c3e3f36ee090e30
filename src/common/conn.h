/* SPDX-License-Identifier: ISC */
/* conn.h -- blocking client connections for the tools (TCP, TLS, Unix) */
#ifndef TR_CONN_H
#define TR_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct tr_conn;

struct tr_conn_opts {
	int timeout_ms;         /* connect, send and receive; 0: 10 s */
	bool tls;               /* TLS over TCP */
	const char *ca_file;    /* verify the server against this CA; NULL: no verification */
	const char *server_name;/* SNI and name check; NULL: the host part */
	/*
	 * A client certificate (PEM, with its chain if any) and its private
	 * key (PEM, not encrypted; NULL: in cert_file), presented when the
	 * server asks. NULL: none. Read at each connection.
	 */
	const char *cert_file;
	const char *key_file;
};

/* Split "host:port" or "[v6]:port". Returns 0 or -EINVAL. Caller frees both. */
int tr_split_hostport(const char *s, char **ret_host, char **ret_port);

int tr_conn_open_tcp(const char *hostport, const struct tr_conn_opts *opts,
    struct tr_conn **ret_conn);
int tr_conn_open_unix(const char *path, const struct tr_conn_opts *opts,
    struct tr_conn **ret_conn);

/* Pack msg, prefix the frame header, write it all. 0 or -errno. */
int tr_conn_send(struct tr_conn *c, const ProtobufCMessage *msg);
/* Write raw bytes (tests of bad input). 0 or -errno. */
int tr_conn_send_raw(struct tr_conn *c, const void *buf, size_t len);
/*
 * Read one frame. *ret_buf is malloc'd (caller frees); 0 on success,
 * -ECONNRESET on EOF, -TR_EFRAME_TOO_LARGE over max, -ETIMEDOUT, -errno.
 */
int tr_conn_recv(struct tr_conn *c, uint32_t max, uint8_t **ret_buf,
    uint32_t *ret_len);

/*
 * Wait until a frame can be read: 1 when data (or EOF, or an error, which
 * the next tr_conn_recv() reports) is there, 0 after timeout_ms (< 0:
 * none), -EINTR when a signal arrived, -errno. Data already inside the
 * TLS layer counts; TLS records that carry no data (session tickets, key
 * updates) are read and do not count.
 */
int tr_conn_wait(struct tr_conn *c, int timeout_ms);

/*
 * The socket: for shutdown(SHUT_RD) from a signal handler, which wakes a
 * tr_conn_wait() at once. Not for reading: the TLS layer may hold data.
 */
int tr_conn_fd(const struct tr_conn *c);

struct tr_conn *tr_conn_close(struct tr_conn *c);

#endif
