/* SPDX-License-Identifier: ISC */
/* cli.c -- what the command-line tools share: exit codes, messages, requests */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "common.pb-c.h"
#include "common/errcode.h"
#include "cli.h"
#include "output.h"

/* Set by cli_init(); the name the tool was run by until then. */
static const char *cli_progname;

void
cli_init(const char *prog)
{
	cli_progname = prog;
	/* A peer that goes away mid-write is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
}

const char *
cli_prog(void)
{
	return cli_progname ? cli_progname : program_invocation_short_name;
}

void
cli_vwarn(const char *what, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s%s%s: ", cli_prog(), what ? " " : "",
	    what ? what : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
cli_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vwarn(NULL, fmt, ap);
	va_end(ap);
	return CLI_EXIT_UNREACHABLE;
}

int
cli_print_json(json_object *obj)
{
	int r = out_json_print(obj, stdout);

	json_object_put(obj);
	if (r < 0)
		return cli_fail("out of memory");
	return CLI_EXIT_OK;
}

int
cli_exit(int r)
{
	if ((fflush(stdout) != 0 || ferror(stdout)) && errno != EPIPE) {
		fprintf(stderr, "%s: cannot write the output: %s\n",
		    cli_prog(), strerror(errno));
		return r == CLI_EXIT_OK ? CLI_EXIT_UNREACHABLE : r;
	}
	return r;
}

void
cli_tls_reason(char *buf, size_t size)
{
	const char *data = NULL;
	int flags = 0;
	unsigned long e;

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	e = ERR_peek_last_error_data(&data, &flags);
#else
	e = ERR_peek_last_error_line_data(NULL, NULL, &data, &flags);
#endif
	if (e == 0) {
		snprintf(buf, size, "TLS handshake failed");
		return;
	}
	if (!(flags & ERR_TXT_STRING))
		data = NULL;
	snprintf(buf, size, "TLS: %s%s%s%s",
	    ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error",
	    data && *data ? " (" : "", data && *data ? data : "",
	    data && *data ? ")" : "");
	ERR_clear_error();
}

int
cli_request_fits(const struct cli_peer *p, const ProtobufCMessage *req)
{
	size_t packed = protobuf_c_message_get_packed_size(req);

	if (p->send_max == 0 || packed <= p->send_max)
		return CLI_GO_ON;
	fprintf(stderr, "%s: the request is too large: %zu bytes, %s takes "
	    "at most %" PRIu32 "\n", cli_prog(), packed, p->limiter,
	    p->send_max);
	return CLI_EXIT_USAGE;
}

int
cli_exchange(struct tr_conn *c, const struct cli_peer *p,
    const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **ret_reply)
{
	_cleanup_free_ uint8_t *buf = NULL;
	ProtobufCMessage *reply;
	uint32_t len;
	int sr, r;

	sr = tr_conn_send(c, req);
	/* A refusal sent on accept may be waiting: read it first. */
	if (sr < 0 && sr != -EPIPE && sr != -ECONNRESET)
		return cli_fail("%s: cannot send the request: %s", p->name,
		    tr_strerror(sr));
	r = tr_conn_recv(c, p->recv_max, &buf, &len);
	if (r < 0 && sr < 0)
		return cli_fail("%s: cannot send the request: %s", p->name,
		    tr_strerror(sr));
	if (r == -ECONNRESET)
		return cli_fail("%s: %s", p->name, p->closed);
	if (r == -ETIMEDOUT)
		return cli_fail("%s: no reply within %d s", p->name,
		    p->timeout_ms / 1000);
	if (r == -EPROTO && p->tls) {
		char why[256];

		cli_tls_reason(why, sizeof(why));
		return cli_fail("%s: %s", p->name, why);
	}
	if (r < 0)
		return cli_fail("%s: cannot read the reply: %s", p->name,
		    tr_strerror(r));

	reply = protobuf_c_message_unpack(reply_desc, NULL, len, buf);
	if (!reply)
		return cli_fail("%s: the reply does not decode", p->name);
	*ret_reply = reply;
	return CLI_EXIT_OK;
}

const char *
cli_error_code_name(int code)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(
	    &twinroute__error_code__descriptor, code);
	return v ? v->name : "unknown error code";
}
