/* SPDX-License-Identifier: ISC */
/* cli.h -- what the command-line tools share: exit codes, messages, requests */
#ifndef TR_CLI_H
#define TR_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>

#include "common/conn.h"
#include "common/macro.h"

/* The exit status of every tool. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_REFUSED = 1,     /* the peer answered with an error */
	CLI_EXIT_USAGE = 2,       /* bad arguments, or bad input */
	CLI_EXIT_UNREACHABLE = 3, /* no peer, or the protocol failed */
};

/*
 * Many helpers here and in args.h return CLI_GO_ON when all is well and
 * the command goes on, else the exit code (after the message): a caller
 * returns r when r >= 0.
 */
#define CLI_GO_ON (-1)

/* Name the tool in every message, and ignore SIGPIPE. Call it first. */
void cli_init(const char *prog);
const char *cli_prog(void);

/* "PROG: message" on a line of stderr; "PROG WHAT: message" with what. */
void cli_vwarn(const char *what, const char *fmt, va_list ap)
    _printf_(2, 0);
/* cli_vwarn() without what. Returns CLI_EXIT_UNREACHABLE. */
int cli_fail(const char *fmt, ...) _printf_(1, 2);

/*
 * Print obj as one JSON document on stdout, then release it. CLI_EXIT_OK,
 * or cli_fail() when obj is NULL or cannot be printed.
 */
int cli_print_json(json_object *obj);

/* At exit: flush stdout; r, or CLI_EXIT_UNREACHABLE if output was lost. */
int cli_exit(int r);

/* "ERR_NOT_FOUND" for an ErrorCode value; "unknown error code" else. */
const char *cli_error_code_name(int code);

/* Why a TLS handshake or read failed, from the OpenSSL error queue. */
void cli_tls_reason(char *buf, size_t size);

/* The other end of a request, as messages speak of it. */
struct cli_peer {
	const char *name;       /* the address or the socket */
	const char *limiter;    /* who limits a request: "the server" */
	const char *closed;     /* what EOF before a reply means */
	uint32_t send_max;      /* the largest request it takes; 0: unknown */
	uint32_t recv_max;      /* the largest reply read */
	int timeout_ms;         /* the connection's, for "no reply within" */
	bool tls;               /* read errors may have a TLS reason */
};

/* Whether req fits in p->send_max. CLI_GO_ON, or CLI_EXIT_USAGE. */
int cli_request_fits(const struct cli_peer *p, const ProtobufCMessage *req);

/*
 * Send req on c and read one reply, decoded as reply_desc. A refusal the
 * peer sent before it read req is read too. CLI_EXIT_OK with *ret_reply
 * set (free it with protobuf_c_message_free_unpacked()), else the exit
 * code after the message.
 */
int cli_exchange(struct tr_conn *c, const struct cli_peer *p,
    const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **ret_reply);

#endif
