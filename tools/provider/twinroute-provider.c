/* SPDX-License-Identifier: ISC */
/* twinroute-provider.c -- the provider agent: take orders, report progress */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "provider.pb-c.h"
#include "config-build.h"

#include "common/args.h"
#include "common/cli.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/errcode.h"
#include "common/macro.h"
#include "common/output.h"

#include "agent.h"

#define PROG "twinroute-provider"
#define ADDR_ENV "TWINROUTE_PROVIDER_ADDR"
#define PROVIDER_ENV "TWINROUTE_PROVIDER_ID"
#define TOKEN_FILE_ENV "TWINROUTE_PROVIDER_TOKEN_FILE"
#define ORDER_ID_ENV "TWINROUTE_ORDER_ID"
#define AGENT_PROTO_VERSION 1
#define AGENT_NAME PROG " " TR_VERSION
/* Connect, handshake, and each request's reply. */
#define AGENT_TIMEOUT_MS 10000
/* The largest frame read from the broker. */
#define AGENT_RECV_MAX (16u * 1024u * 1024u)
#define AGENT_RECV_MAX_TEXT "16 MiB"
/* A provider id longer than this is refused before it is sent. */
#define PROVIDER_ID_MAX 256
/* Heartbeat interval: the broker's, else this; bounded either way. */
#define HEARTBEAT_DEFAULT_S 10
#define HEARTBEAT_MAX_S 3600
/* A broker silent for this many heartbeat intervals is dead. */
#define DEAD_INTERVALS 3
/* --max-backoff: the default and the largest taken, in seconds. */
#define BACKOFF_MAX_DEFAULT_MS 30000
#define BACKOFF_MAX_LIMIT_S 3600
/* A session that stayed up this long starts the backoff afresh. */
#define SESSION_STABLE_MS 10000
/*
 * After ERR_REPLACED, wait at least this long (or --max-backoff): the
 * session that took over may be a one-shot command, done in a moment.
 */
#define REPLACED_DELAY_MS 1000
/* Failures counted for the backoff: enough to reach any cap. */
#define FAILURES_MAX 32
/* Acknowledgements awaiting their reply, and orders awaiting a retry. */
#define ACKS_MAX 1024
#define RETRIES_MAX 1024
/* Without a pidfd, how often a running hook is looked at. */
#define HOOK_POLL_MS 50
/* Strings from the broker in log lines are cut here. */
#define LOG_TEXT_MAX 200

DEFINE_TRIVIAL_CLEANUP_FUNC(struct out_table *, out_table_free)

static void
resp_free(Twinroute__Provider__ProviderResponse *m)
{
	twinroute__provider__provider_response__free_unpacked(m, NULL);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Twinroute__Provider__ProviderResponse *,
    resp_free)

struct ctx {
	const char *addr;          /* -H, else $ADDR_ENV */
	const char *provider;      /* --provider, else $PROVIDER_ENV */
	const char *token_file;    /* --token-file, else $TOKEN_FILE_ENV */
	bool insecure;
	bool json;
	struct tr_conn_opts opts;  /* TLS, the CA, the client certificate */
	struct tr_conn *conn;
	uint64_t next_id;
	uint32_t send_max;         /* the broker's max_frame; 0: unknown */
	uint32_t heartbeat_ms;
	int64_t last_sent;         /* monotonic ms of the last frame out */
	int64_t last_recv;         /* ... and in */
	char method[32];           /* how Auth went: "certificate", "token" */
	uint32_t window, pending;
	char token[AGENT_TOKEN_MAX + 1]; /* during the handshake only */
	/* Why the last step failed, and a one-shot command's exit code. */
	char why[768];
	int fail_exit;
};

/*
 * Handed each message that is not the reply awaited: 0 to go on, -1 to
 * fail (ctx->why set). NULL: pushes are skipped, anything else fails.
 */
typedef int (*other_fn)(void *arg, Twinroute__Provider__ProviderResponse *m);

struct cmd {
	struct args_cmd a;
	const char *alias;
	int (*fn)(struct ctx *ctx, const struct args_cmd *cmd, int argc,
	    char **argv);
};

static int cmd_run(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);
static int cmd_accept(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);
static int cmd_reject(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);
static int cmd_fulfil(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);
static int cmd_charged(struct ctx *ctx, const struct args_cmd *cmd,
    int argc, char **argv);
static int cmd_services(struct ctx *ctx, const struct args_cmd *cmd,
    int argc, char **argv);
static int cmd_service_upsert(struct ctx *ctx, const struct args_cmd *cmd,
    int argc, char **argv);
static int cmd_service_remove(struct ctx *ctx, const struct args_cmd *cmd,
    int argc, char **argv);

static const struct cmd cmds[] = {
	{ { "run", "[--hook COMMAND] [--max-backoff SECONDS]",
	    "stay connected: write each order as a line of JSON on standard "
	    "output\n      (or give it to COMMAND), then acknowledge it; "
	    "reconnect after any failure" }, NULL, cmd_run },
	{ { "accept", "ORDER_ID", "take a dispatched order on" }, NULL,
	    cmd_accept },
	{ { "reject", "ORDER_ID --reason TEXT",
	    "decline a dispatched order; the member is shown the reason" },
	    NULL, cmd_reject },
	{ { "fulfil", "ORDER_ID", "report the service delivered (also: "
	    "fulfill)" }, "fulfill", cmd_fulfil },
	{ { "charged", "ORDER_ID",
	    "report the order billed to the card company" }, NULL,
	    cmd_charged },
	{ { "services", "", "list your services" }, NULL, cmd_services },
	{ { "service-upsert", "SERVICE_ID --category C --name N --price MINOR "
	    "--currency CUR [--description D] [--inactive]",
	    "add a service, or replace one of yours whole" }, NULL,
	    cmd_service_upsert },
	{ { "service-remove", "SERVICE_ID", "remove one of your services" },
	    NULL, cmd_service_remove },
};

static void
print_commands(FILE *f)
{
	for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
		args_print_command(f, &cmds[i].a);
}

enum {
	OPT_PROVIDER = 0x100,
	OPT_CERT,
	OPT_KEY,
	OPT_TOKEN_FILE,
	OPT_CA,
	OPT_INSECURE,
};

static void
agent_option(void *data, int c, char *arg)
{
	struct ctx *ctx = data;

	switch (c) {
	case 'H':
		ctx->addr = arg;
		break;
	case OPT_PROVIDER:
		ctx->provider = arg;
		break;
	case OPT_CERT:
		ctx->opts.cert_file = arg;
		break;
	case OPT_KEY:
		ctx->opts.key_file = arg;
		break;
	case OPT_TOKEN_FILE:
		ctx->token_file = arg;
		break;
	case OPT_CA:
		ctx->opts.ca_file = arg;
		break;
	case OPT_INSECURE:
		ctx->insecure = true;
		break;
	}
}

static const struct option options[] = {
	{ "host", required_argument, NULL, 'H' },
	{ "provider", required_argument, NULL, OPT_PROVIDER },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ NULL, 0, NULL, 0 },
};

static const struct args_tool tool = {
	.synopsis = "[-H HOST:PORT] [--provider ID] [CREDENTIALS] "
	    "[--ca FILE | --insecure] COMMAND [ARGS]",
	.shortopts = "H:",
	.options = options,
	.option = agent_option,
	.usage = "[-H HOST:PORT] [--provider ID]\n"
	    "                          [--cert FILE [--key FILE] | "
	    "--token-file FILE]\n"
	    "                          [--ca FILE | --insecure] [--json] "
	    "[-h|--help] [-V]\n"
	    "                          COMMAND [ARGS]",
	.about = "The provider's side of twinrouted: receive the orders "
	    "confirmed for your\nservices over a persistent TLS session, "
	    "report on them, and keep your\nservices up to date.",
	.options_help =
	    "  -H, --host HOST:PORT     the broker's provider port (default:\n"
	    "                           $" ADDR_ENV "); an IPv6\n"
	    "                           address goes in brackets: [::1]:7421\n"
	    "      --provider ID        your provider id (default:\n"
	    "                           $" PROVIDER_ENV ")\n"
	    "      --cert FILE          your client certificate (PEM), pinned "
	    "to your id\n"
	    "                           by the broker's admin\n"
	    "      --key FILE           its private key (PEM, not encrypted; "
	    "default:\n"
	    "                           in the --cert file)\n"
	    "      --token-file FILE    authenticate with the token on the "
	    "first line of\n"
	    "                           FILE (default: "
	    "$" TOKEN_FILE_ENV ")\n"
	    "      --ca FILE            verify the broker's certificate and "
	    "name against\n"
	    "                           this CA (required, unless "
	    "--insecure)\n"
	    "      --insecure           do not verify the broker: for tests "
	    "only\n",
	.options_width = 27,
	.print_commands = print_commands,
	.more =
	    "CREDENTIALS: a client certificate pinned to your id (--cert), or "
	    "a token\n(--token-file), or both. Neither the token nor a key is "
	    "ever taken from the\ncommand line. Every command opens a session "
	    "(TLS, Hello, Auth), does its\nwork and closes it.\n"
	    "\n"
	    "run writes each order dispatched to you as one line of JSON on "
	    "standard\noutput, and nothing else goes there. Its fields: "
	    "order_id, service_id,\nservice_name, quantity, unit_price and "
	    "amount ({\"minor\": 1250,\n\"currency\": \"EUR\"}), amount_text "
	    "(\"12.50 EUR\"), member_name, member_email,\nnote, fax_reference "
	    "(the card comes by fax under the same reference),\n"
	    "redelivery, attempt, confirmed_unix_ms. The order is "
	    "acknowledged once the\nline is flushed. With --hook, COMMAND runs "
	    "by /bin/sh -c instead, the line\non its standard input and "
	    "$" ORDER_ID_ENV " set (its standard output goes to\nstandard "
	    "error); the order is acknowledged if it exits 0, else the hook "
	    "runs\nagain later. An order may come more than once (redelivery: "
	    "true): act on\neach order_id once. After any failure run "
	    "reconnects, waiting at random up\nto 0.5 s, then up to twice as "
	    "long each time, up to --max-backoff (default\n30 s). SIGTERM or "
	    "SIGINT stops it with status 0. Progress goes to standard\n"
	    "error.\n",
	.exits = {
		[CLI_EXIT_REFUSED] = "the broker refused the request or the "
		    "authentication (the message\n     says why)",
		[CLI_EXIT_USAGE] = "usage error: bad or missing arguments, "
		    "credentials or files",
		[CLI_EXIT_UNREACHABLE] = "the broker cannot be reached, the "
		    "protocol failed, or (run)\n     standard output was lost",
	},
};

/* ---- small helpers ---------------------------------------------------- */

/* Monotonic ms, signed: deadlines here are differences that may go below
 * zero. */
static int64_t
now_ms(void)
{
	return (int64_t)clock_monotonic_ms();
}

/* 32 random bits, for jitter. */
static uint32_t
random32(void)
{
	uint32_t v;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint32_t)now_ms() * 2654435761u ^ (uint32_t)getpid();
	return v;
}

/*
 * Text from the broker, fit for a terminal and a log: control characters
 * become '?', and it is cut at LOG_TEXT_MAX bytes. Returns buf.
 */
static const char *
clean(const char *s, char *buf, size_t size)
{
	size_t n = 0;

	if (!s)
		s = "";
	for (; *s && n + 1 < size && n < LOG_TEXT_MAX; s++)
		buf[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	buf[n] = '\0';
	return buf;
}

/* One line on stderr, in one write. */
static void agent_log(const char *fmt, ...) _printf_(1, 2);
static void
agent_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), PROG ": ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

/* Set why and the exit code of a one-shot command. Returns -1. */
static int fail(struct ctx *ctx, int exit, const char *fmt, ...)
    _printf_(3, 4);
static int
fail(struct ctx *ctx, int exit, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->why, sizeof(ctx->why), fmt, ap);
	va_end(ap);
	ctx->fail_exit = exit;
	return -1;
}

/* A failed send, receive or wait on the session, as fail() puts it. */
static int
fail_io(struct ctx *ctx, const char *doing, int r)
{
	char tls[256];

	switch (r) {
	case -ECONNRESET:
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: the broker closed "
		    "the connection", ctx->addr);
	case -ETIMEDOUT:
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: no reply within "
		    "%d s", ctx->addr, AGENT_TIMEOUT_MS / 1000);
	case -TR_EFRAME_TOO_LARGE:
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: the broker sent a "
		    "frame over the " AGENT_RECV_MAX_TEXT " limit: refused",
		    ctx->addr);
	case -EPROTO:
		cli_tls_reason(tls, sizeof(tls));
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: %s", ctx->addr,
		    tls);
	default:
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: cannot %s: %s",
		    ctx->addr, doing, tr_strerror(r));
	}
}

/* A refusal: "MESSAGE (ERR_CODE)", prefixed. */
static int
fail_refused(struct ctx *ctx, int exit, const char *prefix,
    const Twinroute__Error *e)
{
	char msg[LOG_TEXT_MAX + 1];

	clean(e->message && *e->message ? e->message : "refused", msg,
	    sizeof(msg));
	return fail(ctx, exit, "%s%s (%s)", prefix, msg, cli_error_code_name(e->code));
}

static const char *
body_name(Twinroute__Provider__ProviderResponse__BodyCase c)
{
	const ProtobufCFieldDescriptor *f;

	f = protobuf_c_message_descriptor_get_field(
	    &twinroute__provider__provider_response__descriptor, (unsigned)c);
	return f ? f->name : "unknown message";
}

/* The reply's body, whichever it is; NULL for none. */
static const void *
reply_body(const Twinroute__Provider__ProviderResponse *m)
{
	switch (m->body_case) {
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ERROR:
		return m->error;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HELLO:
		return m->hello;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_AUTH:
		return m->auth;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_OK:
		return m->ok;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ORDER:
		return m->order;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICE:
		return m->service;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICES:
		return m->services;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HEARTBEAT:
		return m->heartbeat;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_DISPATCH:
		return m->dispatch;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY__NOT_SET:
	case _TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY__CASE_IS_INT_SIZE:
		return NULL;
	}
	return NULL;
}

/* ---- what every command checks before it connects --------------------- */

/* A file others than its owner may read: say so (not fatal). */
static void
warn_if_exposed(const char *what, const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		agent_log("warning: %s %s can be read by others than its owner "
		    "(chmod 600 it)", what, path);
}

/* No passphrase for encrypted keys: there is no one to ask. */
static int
no_passphrase(char *buf, int size, int rwflag, void *data)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)data;
	return -1;
}

/* A file the option names can be opened for reading. CLI_GO_ON or 2. */
static int
check_readable(const char *opt, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return args_usage_error(&tool, false, "%s %s: %s", opt, path,
		    strerror(errno));
	close(fd);
	return CLI_GO_ON;
}

/* The unencrypted PEM private key in path; NULL if none. */
static EVP_PKEY *
read_key(const char *path)
{
	EVP_PKEY *pkey = NULL;
	FILE *f = fopen(path, "re");

	if (!f)
		return NULL;
	pkey = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	return pkey;
}

/* Load the client certificate and key, and the CA, as a session would. */
static int
check_tls_files(const struct ctx *ctx)
{
	const struct tr_conn_opts *o = &ctx->opts;
	const char *key = o->key_file ? o->key_file : o->cert_file;
	const char *keyopt = o->key_file ? "--key" : "--cert (no --key)";
	SSL_CTX *sctx = NULL;
	EVP_PKEY *pkey = NULL;
	char why[256];
	int r;

	if ((o->ca_file && (r = check_readable("--ca", o->ca_file)) >= 0) ||
	    (o->cert_file &&
	    (r = check_readable("--cert", o->cert_file)) >= 0) ||
	    (o->cert_file && (r = check_readable(keyopt, key)) >= 0))
		return r;
	r = CLI_GO_ON;
	ERR_clear_error();
	sctx = SSL_CTX_new(TLS_client_method());
	if (!sctx)
		return cli_fail("out of memory");
	if (o->ca_file &&
	    SSL_CTX_load_verify_locations(sctx, o->ca_file, NULL) != 1) {
		cli_tls_reason(why, sizeof(why));
		r = args_usage_error(&tool, false, "--ca %s: no PEM "
		    "certificate in it (%s)", o->ca_file, why);
		goto out;
	}
	if (!o->cert_file)
		goto out;
	if (SSL_CTX_use_certificate_chain_file(sctx, o->cert_file) != 1) {
		cli_tls_reason(why, sizeof(why));
		r = args_usage_error(&tool, false, "--cert %s: no PEM "
		    "certificate in it (%s)", o->cert_file, why);
		goto out;
	}
	pkey = read_key(key);
	if (!pkey) {
		cli_tls_reason(why, sizeof(why));
		r = args_usage_error(&tool, false, "%s %s: no unencrypted PEM "
		    "private key in it (%s)", keyopt, key, why);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(sctx, pkey) != 1 ||
	    SSL_CTX_check_private_key(sctx) != 1) {
		r = args_usage_error(&tool, false, "%s %s is not the key of "
		    "the certificate in --cert %s", keyopt, key, o->cert_file);
		goto out;
	}
	warn_if_exposed("the key file", key);
out:
	EVP_PKEY_free(pkey);
	SSL_CTX_free(sctx);
	ERR_clear_error();
	return r;
}

/* Read the token into ctx->token. 0, or -1 with why set. */
static int
load_token(struct ctx *ctx)
{
	int r = agent_read_token(ctx->token_file, ctx->token,
	    sizeof(ctx->token));

	switch (r) {
	case 0:
		return 0;
	case -ENODATA:
		return fail(ctx, CLI_EXIT_USAGE, "token file %s: no token on "
		    "its first line", ctx->token_file);
	case -E2BIG:
		return fail(ctx, CLI_EXIT_USAGE, "token file %s: the token is "
		    "longer than %d bytes", ctx->token_file, AGENT_TOKEN_MAX);
	case -EINVAL:
		return fail(ctx, CLI_EXIT_USAGE, "token file %s: the token "
		    "holds control characters", ctx->token_file);
	default:
		return fail(ctx, CLI_EXIT_USAGE, "token file %s: %s",
		    ctx->token_file, strerror(-r));
	}
}

/*
 * The address, the provider id, the credentials and the broker check:
 * each command calls this after its own arguments. CLI_GO_ON or the exit
 * code after the message.
 */
static int
prepare(struct ctx *ctx)
{
	_cleanup_free_ char *host = NULL, *port = NULL;
	int r;

	ctx->addr = args_default(ctx->addr, ADDR_ENV, NULL);
	ctx->provider = args_default(ctx->provider, PROVIDER_ENV, NULL);
	ctx->token_file = args_default(ctx->token_file, TOKEN_FILE_ENV, NULL);
	if (!ctx->addr)
		return args_usage_error(&tool, false, "no broker address: give "
		    "-H HOST:PORT or set $" ADDR_ENV);
	if (tr_split_hostport(ctx->addr, &host, &port) < 0)
		return args_usage_error(&tool, false, "bad address '%s': want "
		    "HOST:PORT or [V6ADDR]:PORT", ctx->addr);
	if (!ctx->provider)
		return args_usage_error(&tool, false, "no provider id: give "
		    "--provider ID or set $" PROVIDER_ENV);
	if (strlen(ctx->provider) > PROVIDER_ID_MAX)
		return args_usage_error(&tool, false, "the provider id is "
		    "longer than %d bytes", PROVIDER_ID_MAX);
	for (const char *p = ctx->provider; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return args_usage_error(&tool, false, "the provider id "
			    "holds blanks or control characters");
	if (ctx->opts.key_file && !ctx->opts.cert_file)
		return args_usage_error(&tool, false, "--key without --cert");
	if (!ctx->opts.cert_file && !ctx->token_file)
		return args_usage_error(&tool, false, "no credentials: give "
		    "--cert FILE [--key FILE] (a certificate pinned to your "
		    "id) or --token-file FILE (or set $" TOKEN_FILE_ENV ")");
	if (ctx->opts.ca_file && ctx->insecure)
		return args_usage_error(&tool, false, "--ca and --insecure: "
		    "give one, not both");
	if (!ctx->opts.ca_file && !ctx->insecure)
		return args_usage_error(&tool, false, "refusing to connect "
		    "without verifying the broker: give --ca FILE (or, for "
		    "tests, --insecure)");
	r = check_tls_files(ctx);
	if (r >= 0)
		return r;
	if (ctx->token_file) {
		r = load_token(ctx);
		OPENSSL_cleanse(ctx->token, sizeof(ctx->token));
		if (r < 0)
			return args_usage_error(&tool, false, "%s", ctx->why);
		warn_if_exposed("the token file", ctx->token_file);
	}
	if (ctx->insecure)
		agent_log("warning: --insecure: the broker's certificate is "
		    "not verified");
	ctx->opts.tls = true;
	ctx->opts.timeout_ms = AGENT_TIMEOUT_MS;
	return CLI_GO_ON;
}

/* ---- the session ------------------------------------------------------ */

/* Standard output was closed at the start: no place for orders. */
static bool stdout_closed;

/*
 * Set while run is stopping; the handler shuts the session's socket down
 * for reading, which wakes any wait on it at once, with no race.
 */
static volatile sig_atomic_t stop_signals;
static volatile sig_atomic_t wake_fd = -1;

static void
on_stop(int sig)
{
	int e = errno;

	(void)sig;
	if (stop_signals < 2)
		stop_signals++;
	if (wake_fd >= 0)
		(void)shutdown(wake_fd, SHUT_RD);
	errno = e;
}

static void
session_close(struct ctx *ctx)
{
	wake_fd = -1;
	ctx->conn = tr_conn_close(ctx->conn);
	OPENSSL_cleanse(ctx->token, sizeof(ctx->token));
}

/*
 * Send req with the next id. 0, or with why set: -EMSGSIZE when the broker
 * would not take it (CLI_EXIT_USAGE), else tr_conn_send()'s error.
 */
static int
session_send(struct ctx *ctx, Twinroute__Provider__ProviderRequest *req)
{
	size_t n = protobuf_c_message_get_packed_size(&req->base);
	int r;

	req->id = ctx->next_id++;
	if (ctx->send_max > 0 && n > ctx->send_max) {
		fail(ctx, CLI_EXIT_USAGE, "the request is too large: %zu "
		    "bytes, the broker takes at most %" PRIu32, n,
		    ctx->send_max);
		return -EMSGSIZE;
	}
	r = tr_conn_send(ctx->conn, &req->base);
	if (r < 0) {
		fail_io(ctx, "send", r);
		return r;
	}
	ctx->last_sent = now_ms();
	return 0;
}

/* Read and decode one message. 0 with *ret_m set, or -1 with why set. */
static int
session_recv(struct ctx *ctx, Twinroute__Provider__ProviderResponse **ret_m)
{
	_cleanup_free_ uint8_t *buf = NULL;
	Twinroute__Provider__ProviderResponse *m;
	uint32_t len;
	int r;

	r = tr_conn_recv(ctx->conn, AGENT_RECV_MAX, &buf, &len);
	if (r < 0)
		return fail_io(ctx, "read", r);
	ctx->last_recv = now_ms();
	m = twinroute__provider__provider_response__unpack(NULL, len, buf);
	if (!m)
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: a frame of %" PRIu32
		    " bytes does not decode as a ProviderResponse", ctx->addr,
		    len);
	*ret_m = m;
	return 0;
}

/*
 * Send req, then read until its reply comes, of body want. Other messages
 * go to other (NULL: pushes are skipped). 0 with *ret_m set; -1 with why
 * set: a refusal (an Error answering req, or one with id 0) exits
 * CLI_EXIT_REFUSED, anything else CLI_EXIT_UNREACHABLE.
 */
static int
session_call(struct ctx *ctx, Twinroute__Provider__ProviderRequest *req,
    Twinroute__Provider__ProviderResponse__BodyCase want, other_fn other,
    void *arg, Twinroute__Provider__ProviderResponse **ret_m)
{
	int64_t deadline;
	int r;

	r = session_send(ctx, req);
	if (r == -EPIPE || r == -ECONNRESET) {
		_cleanup_(resp_freep) Twinroute__Provider__ProviderResponse
		    *m = NULL;
		char why[sizeof(ctx->why)];

		/* A refusal sent before the broker read req may wait. */
		memcpy(why, ctx->why, sizeof(why));
		if (session_recv(ctx, &m) == 0 && m->body_case ==
		    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ERROR &&
		    m->error)
			return fail_refused(ctx, CLI_EXIT_REFUSED, "",
			    m->error);
		memcpy(ctx->why, why, sizeof(why));
		ctx->fail_exit = CLI_EXIT_UNREACHABLE;
		return -1;
	}
	if (r < 0)
		return -1;
	deadline = now_ms() + AGENT_TIMEOUT_MS;
	for (;;) {
		_cleanup_(resp_freep) Twinroute__Provider__ProviderResponse
		    *m = NULL;
		int64_t left = deadline - now_ms();

		if (left <= 0)
			return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: no reply "
			    "within %d s", ctx->addr, AGENT_TIMEOUT_MS / 1000);
		if (stop_signals)
			return fail(ctx, CLI_EXIT_UNREACHABLE, "interrupted");
		r = tr_conn_wait(ctx->conn, (int)left);
		if (r == 0 || r == -EINTR)
			continue;
		if (r < 0)
			return fail_io(ctx, "wait for the reply", r);
		if (session_recv(ctx, &m) < 0)
			return -1;
		if (m->body_case ==
		    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ERROR &&
		    m->error && (m->id == req->id || m->id == 0))
			return fail_refused(ctx, CLI_EXIT_REFUSED, "",
			    m->error);
		if (m->id == req->id) {
			if (m->body_case != want || !reply_body(m))
				return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: "
				    "unexpected reply: %s, not %s", ctx->addr,
				    body_name(m->body_case), body_name(want));
			*ret_m = TAKE_PTR(m);
			return 0;
		}
		if (other) {
			if (other(arg, m) < 0)
				return -1;
			continue;
		}
		/* Dispatches stay unacknowledged: run takes them. */
		if (m->id == 0 && (m->body_case ==
		    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_DISPATCH ||
		    m->body_case ==
		    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HEARTBEAT))
			continue;
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: unexpected message "
		    "(%s, id %" PRIu64 ") while waiting for the reply to "
		    "request %" PRIu64, ctx->addr, body_name(m->body_case),
		    m->id, req->id);
	}
}

/*
 * Connect, say Hello, authenticate. other gets what comes before the
 * replies (see session_call()). 0, or -1 with why set and the session
 * closed: the connection and the Hello exit CLI_EXIT_UNREACHABLE, a
 * refused Auth CLI_EXIT_REFUSED, an unreadable token CLI_EXIT_USAGE.
 */
static int
session_open(struct ctx *ctx, other_fn other, void *arg)
{
	_cleanup_(resp_freep) Twinroute__Provider__ProviderResponse *m = NULL;
	Twinroute__Provider__ProviderRequest req =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__INIT;
	Twinroute__Provider__Hello hello = TWINROUTE__PROVIDER__HELLO__INIT;
	Twinroute__Provider__Auth auth = TWINROUTE__PROVIDER__AUTH__INIT;
	static char agent_name[] = AGENT_NAME;
	const Twinroute__Provider__HelloReply *hr;
	const Twinroute__Provider__AuthReply *ar;
	char tls[256], refusal[sizeof(ctx->why)];
	uint32_t hb;
	int r;

	if (ctx->token_file && load_token(ctx) < 0)
		return -1;
	ctx->send_max = 0;
	r = tr_conn_open_tcp(ctx->addr, &ctx->opts, &ctx->conn);
	if (r < 0) {
		OPENSSL_cleanse(ctx->token, sizeof(ctx->token));
		if (r == -EPROTO) {
			cli_tls_reason(tls, sizeof(tls));
			return fail(ctx, CLI_EXIT_UNREACHABLE, "cannot connect "
			    "to %s: %s", ctx->addr, tls);
		}
		if (r == -EHOSTUNREACH)
			return fail(ctx, CLI_EXIT_UNREACHABLE, "cannot connect "
			    "to %s: unknown host or no route", ctx->addr);
		return fail(ctx, CLI_EXIT_UNREACHABLE, "cannot connect to %s: "
		    "%s", ctx->addr, tr_strerror(r));
	}
	wake_fd = tr_conn_fd(ctx->conn);
	if (stop_signals)
		(void)shutdown(wake_fd, SHUT_RD);
	ctx->last_sent = ctx->last_recv = now_ms();

	hello.version = AGENT_PROTO_VERSION;
	hello.agent = agent_name;
	req.body_case = TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HELLO;
	req.hello = &hello;
	r = session_call(ctx, &req,
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HELLO, other, arg, &m);
	if (r < 0) {
		/* The handshake failed: nothing was refused yet. */
		if (ctx->fail_exit == CLI_EXIT_REFUSED) {
			memcpy(refusal, ctx->why, sizeof(refusal));
			fail(ctx, CLI_EXIT_UNREACHABLE, "%s: the broker "
			    "refused the Hello of " AGENT_NAME ", protocol "
			    "version %d: %s", ctx->addr, AGENT_PROTO_VERSION,
			    refusal);
		}
		goto failed;
	}
	hr = m->hello;
	if (hr->version != AGENT_PROTO_VERSION) {
		fail(ctx, CLI_EXIT_UNREACHABLE, "%s: the broker speaks "
		    "protocol version %" PRIu32 ", " PROG " " TR_VERSION
		    " speaks %d",
		    ctx->addr, hr->version, AGENT_PROTO_VERSION);
		goto failed;
	}
	hb = hr->heartbeat_seconds ? hr->heartbeat_seconds :
	    HEARTBEAT_DEFAULT_S;
	ctx->heartbeat_ms = MIN(hb, HEARTBEAT_MAX_S) * 1000u;
	ctx->send_max = hr->max_frame;
	resp_free(TAKE_PTR(m));

	auth.provider_id = unconst(ctx->provider);
	auth.token = ctx->token;
	/* One-shot commands leave the running agent's session alone. */
	auth.control_only = other == NULL;
	req = (Twinroute__Provider__ProviderRequest)
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__INIT;
	req.body_case = TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_AUTH;
	req.auth = &auth;
	r = session_call(ctx, &req,
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_AUTH, other, arg, &m);
	OPENSSL_cleanse(ctx->token, sizeof(ctx->token));
	if (r < 0) {
		if (ctx->fail_exit == CLI_EXIT_REFUSED) {
			memcpy(refusal, ctx->why, sizeof(refusal));
			fail(ctx, CLI_EXIT_REFUSED, "%s: authentication as %s "
			    "refused: %s", ctx->addr, ctx->provider, refusal);
		}
		goto failed;
	}
	ar = m->auth;
	if (*ar->provider_id && strcmp(ar->provider_id, ctx->provider) != 0) {
		fail(ctx, CLI_EXIT_UNREACHABLE, "%s: authenticated as another "
		    "provider than %s", ctx->addr, ctx->provider);
		goto failed;
	}
	clean(*ar->method ? ar->method :
	    (ctx->opts.cert_file && !ctx->token_file) ? "certificate" : "token",
	    ctx->method, sizeof(ctx->method));
	ctx->window = ar->window;
	ctx->pending = ar->pending;
	return 0;

failed:
	session_close(ctx);
	return -1;
}

/* ---- one-shot commands ------------------------------------------------- */

/* The failure after a session step, on stderr: the exit code. */
static int
report_failure(struct ctx *ctx)
{
	agent_log("%s", ctx->why);
	return ctx->fail_exit;
}

/* One request on a fresh session; CLI_EXIT_OK with *ret_m, else the code. */
static int
one_shot(struct ctx *ctx, Twinroute__Provider__ProviderRequest *req,
    Twinroute__Provider__ProviderResponse__BodyCase want,
    Twinroute__Provider__ProviderResponse **ret_m)
{
	if (session_open(ctx, NULL, NULL) < 0 ||
	    session_call(ctx, req, want, NULL, NULL, ret_m) < 0)
		return report_failure(ctx);
	return CLI_EXIT_OK;
}

static int
cmd_report(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv, Twinroute__Provider__ReportKind kind)
{
	static const char *const posnames[] = { "ORDER_ID" };
	_cleanup_(resp_freep) Twinroute__Provider__ProviderResponse *m = NULL;
	Twinroute__Provider__ProviderRequest req =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__INIT;
	Twinroute__Provider__Report rep = TWINROUTE__PROVIDER__REPORT__INIT;
	struct args_opt opts[] = { { "reason", NULL } };
	bool reject = kind == TWINROUTE__PROVIDER__REPORT_KIND__REPORT_REJECTED;
	const Twinroute__Order *o;
	char *pos[1];
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .opts = opts,
	    .nopts = reject ? 1 : 0, .pos = pos, .npos_min = 1, .npos_max = 1,
	    .posnames = posnames, .json = &ctx->json }, argc, argv, NULL);
	if (r >= 0)
		return r;
	r = args_order_id(cmd, pos[0], &rep.order_id);
	if (r >= 0)
		return r;
	if (reject) {
		r = args_require(cmd, opts, 1);
		if (r >= 0)
			return r;
		if (strspn(opts[0].value, " \t") == strlen(opts[0].value))
			return args_cmd_error(cmd, "--reason must not be "
			    "empty: the member is shown it");
		rep.reason = opts[0].value;
	}
	r = prepare(ctx);
	if (r >= 0)
		return r;
	rep.kind = kind;
	req.body_case = TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_REPORT;
	req.report = &rep;
	r = one_shot(ctx, &req,
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ORDER, &m);
	if (r != CLI_EXIT_OK)
		return r;
	o = m->order;
	if (ctx->json)
		return cli_print_json(out_json_order(o));
	printf("order %" PRIu64 " %s\n", o->id ? o->id : rep.order_id,
	    out_order_state(o->state));
	return CLI_EXIT_OK;
}

static int
cmd_accept(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	return cmd_report(ctx, cmd, argc, argv,
	    TWINROUTE__PROVIDER__REPORT_KIND__REPORT_ACCEPTED);
}

static int
cmd_reject(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	return cmd_report(ctx, cmd, argc, argv,
	    TWINROUTE__PROVIDER__REPORT_KIND__REPORT_REJECTED);
}

static int
cmd_fulfil(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	return cmd_report(ctx, cmd, argc, argv,
	    TWINROUTE__PROVIDER__REPORT_KIND__REPORT_FULFILLED);
}

static int
cmd_charged(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	return cmd_report(ctx, cmd, argc, argv,
	    TWINROUTE__PROVIDER__REPORT_KIND__REPORT_CHARGED);
}

/* The services as a table, or a JSON array. */
static int
print_services(const struct ctx *ctx, Twinroute__Service *const *v, size_t n)
{
	static const char *const hdr[] = { "ID", "CATEGORY", "NAME", "PRICE",
	    "ACTIVE" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	if (ctx->json)
		return cli_print_json(out_json_services(v, n));
	if (n == 0) {
		printf("no services\n");
		return CLI_EXIT_OK;
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_align(t, 3, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < n; i++) {
		char price[OUT_BUF_SIZE];
		const char *row[] = { v[i]->id, v[i]->category, v[i]->name,
		    out_price(v[i]->price, price, sizeof(price)),
		    out_yesno(v[i]->active) };

		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

static int
cmd_services(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	_cleanup_(resp_freep) Twinroute__Provider__ProviderResponse *m = NULL;
	Twinroute__Provider__ProviderRequest req =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__INIT;
	Twinroute__Provider__ListServices ls =
	    TWINROUTE__PROVIDER__LIST_SERVICES__INIT;
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .json = &ctx->json },
	    argc, argv, NULL);
	if (r >= 0)
		return r;
	r = prepare(ctx);
	if (r >= 0)
		return r;
	req.body_case =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_LIST_SERVICES;
	req.list_services = &ls;
	r = one_shot(ctx, &req,
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICES, &m);
	if (r != CLI_EXIT_OK)
		return r;
	return print_services(ctx, m->services->services,
	    m->services->n_services);
}

/*
 * Take the flag --name (which has no value) out of argv, as args_parse()
 * would meet it: not after "--", nor as the value of one of opts. Returns
 * whether it was there (any number of times).
 */
static bool
take_flag(const char *name, const struct args_opt *opts, size_t nopts,
    int *argc, char **argv)
{
	bool found = false;
	int i = 0, o = 0;

	for (; i < *argc; i++) {
		const char *a = argv[i];
		bool valued = false;

		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, name) == 0) {
			found = true;
			continue;
		}
		for (size_t j = 0; j < nopts; j++)
			if (strncmp(a, "--", 2) == 0 &&
			    strcmp(a + 2, opts[j].name) == 0)
				valued = true;
		argv[o++] = argv[i];
		if (valued && i + 1 < *argc)
			argv[o++] = argv[++i];
	}
	for (; i < *argc; i++)
		argv[o++] = argv[i];
	*argc = o;
	return found;
}

/* A price in minor units: a non-negative integer. */
static int
parse_price(const char *s, int64_t *ret)
{
	long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

static int
cmd_service_upsert(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	static const char *const posnames[] = { "SERVICE_ID" };
	_cleanup_(resp_freep) Twinroute__Provider__ProviderResponse *m = NULL;
	Twinroute__Provider__ProviderRequest req =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__INIT;
	Twinroute__Provider__UpsertService us =
	    TWINROUTE__PROVIDER__UPSERT_SERVICE__INIT;
	Twinroute__Service svc = TWINROUTE__SERVICE__INIT;
	Twinroute__Money price = TWINROUTE__MONEY__INIT;
	struct args_opt opts[] = { { "category", NULL }, { "name", NULL },
	    { "price", NULL }, { "currency", NULL }, { "description", NULL } };
	const Twinroute__Service *s;
	char pbuf[OUT_BUF_SIZE];
	const char *cur;
	bool inactive;
	char *pos[1];
	int r;

	inactive = take_flag("inactive", opts, ELEMENTSOF(opts), &argc, argv);
	r = args_parse(cmd, &(const struct args_spec){ .opts = opts,
	    .nopts = ELEMENTSOF(opts), .pos = pos, .npos_min = 1,
	    .npos_max = 1, .posnames = posnames, .json = &ctx->json },
	    argc, argv, NULL);
	if (r >= 0)
		return r;
	r = args_require(cmd, opts, 4);
	if (r >= 0)
		return r;
	if (!*pos[0])
		return args_cmd_error(cmd, "the service id must not be empty");
	for (size_t i = 0; i < 2; i++)
		if (!*opts[i].value)
			return args_cmd_error(cmd, "--%s must not be empty",
			    opts[i].name);
	if (parse_price(opts[2].value, &price.minor) < 0)
		return args_cmd_error(cmd, "--price %s: want a non-negative "
		    "integer in minor units (1250 for 12.50)", opts[2].value);
	cur = opts[3].value;
	if (strlen(cur) != 3 || strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
		return args_cmd_error(cmd, "--currency %s: want an ISO 4217 "
		    "code in capitals, such as EUR", cur);
	r = prepare(ctx);
	if (r >= 0)
		return r;
	price.currency = opts[3].value;
	svc.id = pos[0];
	svc.provider_id = unconst(ctx->provider);
	svc.category = opts[0].value;
	svc.name = opts[1].value;
	if (opts[4].value)
		svc.description = opts[4].value;
	svc.price = &price;
	svc.active = !inactive;
	us.service = &svc;
	req.body_case =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_UPSERT_SERVICE;
	req.upsert_service = &us;
	r = one_shot(ctx, &req,
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICE, &m);
	if (r != CLI_EXIT_OK)
		return r;
	s = m->service;
	if (ctx->json)
		return cli_print_json(out_json_service(s));
	printf("service %s saved: %s, %s, %s\n", *s->id ? s->id : svc.id,
	    *s->name ? s->name : svc.name, out_price(s->price ? s->price :
	    &price, pbuf, sizeof(pbuf)), s->active ? "active" : "inactive");
	return CLI_EXIT_OK;
}

static int
cmd_service_remove(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	static const char *const posnames[] = { "SERVICE_ID" };
	_cleanup_(resp_freep) Twinroute__Provider__ProviderResponse *m = NULL;
	Twinroute__Provider__ProviderRequest req =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__INIT;
	Twinroute__Provider__RemoveService rs =
	    TWINROUTE__PROVIDER__REMOVE_SERVICE__INIT;
	const Twinroute__Provider__ServiceList *sl;
	char *pos[1];
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .pos = pos,
	    .npos_min = 1, .npos_max = 1, .posnames = posnames,
	    .json = &ctx->json }, argc, argv, NULL);
	if (r >= 0)
		return r;
	if (!*pos[0])
		return args_cmd_error(cmd, "the service id must not be empty");
	r = prepare(ctx);
	if (r >= 0)
		return r;
	rs.service_id = pos[0];
	req.body_case =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_REMOVE_SERVICE;
	req.remove_service = &rs;
	r = one_shot(ctx, &req,
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICES, &m);
	if (r != CLI_EXIT_OK)
		return r;
	sl = m->services;
	if (ctx->json)
		return cli_print_json(OUT_JSON_OBJECT(
		    { "id", out_json_string(pos[0]) },
		    { "removed", json_object_new_boolean(true) },
		    { "services", out_json_services(sl->services,
		    sl->n_services) }));
	printf("service %s removed; %zu left\n", pos[0], sl->n_services);
	return CLI_EXIT_OK;
}

/* ---- run ----------------------------------------------------------------- */

/* An Ack sent, awaiting its reply. */
struct pending_ack {
	uint64_t req_id;
	uint64_t order_id;
};

/* An order whose hook failed, to try again in this session. */
struct retry {
	uint64_t order_id;
	char *json;             /* its line, without the newline */
	int64_t at;             /* monotonic ms */
	unsigned tries;         /* hook runs so far */
};

struct agent {
	struct ctx *ctx;
	const char *hook;       /* NULL: standard output */
	uint32_t max_backoff_ms;
	bool fatal;             /* end run with exit_code */
	bool replaced;          /* the session ended with ERR_REPLACED */
	int exit_code;
	int64_t auth_at;        /* monotonic ms; 0: not authenticated */
	struct pending_ack acks[ACKS_MAX];
	size_t nacks;
	struct retry retries[RETRIES_MAX];
	size_t nretries;
};

enum agent_end {
	AGENT_RECONNECT,
	AGENT_STOP,
	AGENT_FATAL,
};

static void
retries_clear(struct agent *a)
{
	for (size_t i = 0; i < a->nretries; i++)
		free(a->retries[i].json);
	a->nretries = 0;
}

/* Take order_id's retry out of the list: its index, or -1. */
static void
retry_remove(struct agent *a, size_t i)
{
	memmove(&a->retries[i], &a->retries[i + 1],
	    (a->nretries - i - 1) * sizeof(a->retries[0]));
	a->nretries--;
}

static int
agent_ack(struct agent *a, uint64_t order_id)
{
	Twinroute__Provider__ProviderRequest req =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__INIT;
	Twinroute__Provider__Ack ack = TWINROUTE__PROVIDER__ACK__INIT;

	ack.order_id = order_id;
	req.body_case = TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_ACK;
	req.ack = &ack;
	if (session_send(a->ctx, &req) < 0)
		return -1;
	if (a->nacks == ACKS_MAX) {
		/* Never answered: forget the oldest. */
		memmove(&a->acks[0], &a->acks[1],
		    (ACKS_MAX - 1) * sizeof(a->acks[0]));
		a->nacks--;
	}
	a->acks[a->nacks++] = (struct pending_ack){ req.id, order_id };
	return 0;
}

/* The order an Ack of request id was for, taken out; 0 if none. */
static uint64_t
ack_take(struct agent *a, uint64_t req_id)
{
	for (size_t i = 0; i < a->nacks; i++) {
		uint64_t order_id = a->acks[i].order_id;

		if (a->acks[i].req_id != req_id)
			continue;
		memmove(&a->acks[i], &a->acks[i + 1],
		    (a->nacks - i - 1) * sizeof(a->acks[0]));
		a->nacks--;
		return order_id;
	}
	return 0;
}

/* Send a Heartbeat if nothing went out for an interval. 0 or -1. */
static int
agent_heartbeat(struct agent *a)
{
	struct ctx *ctx = a->ctx;
	Twinroute__Provider__ProviderRequest req =
	    TWINROUTE__PROVIDER__PROVIDER_REQUEST__INIT;
	Twinroute__Provider__Heartbeat hb =
	    TWINROUTE__PROVIDER__HEARTBEAT__INIT;

	if (now_ms() - ctx->last_sent < ctx->heartbeat_ms)
		return 0;
	hb.unix_ms = clock_realtime_ms();
	req.body_case = TWINROUTE__PROVIDER__PROVIDER_REQUEST__BODY_HEARTBEAT;
	req.heartbeat = &hb;
	return session_send(ctx, &req);
}

/* The environment, with ORDER_ID_ENV set to order_id. NULL on ENOMEM. */
static char **
hook_env(uint64_t order_id, char *var, size_t size)
{
	extern char **environ;
	size_t n = 0, o = 0;
	char **env;

	snprintf(var, size, ORDER_ID_ENV "=%" PRIu64, order_id);
	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], ORDER_ID_ENV "=",
		    strlen(ORDER_ID_ENV) + 1) != 0)
			env[o++] = environ[i];
	env[o++] = var;
	env[o] = NULL;
	return env;
}

/* Start the hook with its standard input on *ret_in. Its pid, or -errno. */
static pid_t
hook_spawn(const struct agent *a, uint64_t order_id, int *ret_in)
{
	_cleanup_free_ char **env = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *argv[] = { unconst("sh"), unconst("-c"), unconst(a->hook), NULL };
	char var[64];
	sigset_t none, dfl;
	int in[2];
	pid_t pid;
	int r;

	env = hook_env(order_id, var, sizeof(var));
	if (!env)
		return -ENOMEM;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* Its standard output would mix with ours: it goes to stderr. */
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	/* SIGPIPE is ignored here: not in the hook. */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	r = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(in[0]);
	if (r != 0) {
		close(in[1]);
		return -r;
	}
	(void)fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
	*ret_in = in[1];
	return pid;
}

/* Write what fits of line[*off..len) to fd; close it when done or broken. */
static void
hook_feed(int *fd, const char *line, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = write(*fd, line + *off, len - *off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break; /* EPIPE: the hook does not read it all */
		*off += (size_t)n;
	}
	close(*fd);
	*fd = -1;
}

/*
 * Run the hook with line on its standard input, keeping the session alive
 * with heartbeats meanwhile. Returns 1 when it exited 0, else 0 (logged).
 * *broken is set when the session failed meanwhile (why set); a second
 * stop signal gives up waiting.
 */
static int
agent_hook(struct agent *a, uint64_t order_id, const char *line, size_t len,
    bool *broken)
{
	struct ctx *ctx = a->ctx;
	bool told_stop = false, ended = false;
	int in = -1, pidfd, status = 0;
	size_t off = 0;
	pid_t pid, w;

	pid = hook_spawn(a, order_id, &in);
	if (pid < 0) {
		agent_log("order %" PRIu64 ": cannot run the hook: %s",
		    order_id, strerror((int)-pid));
		return 0;
	}
#ifdef SYS_pidfd_open
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	pidfd = -1;
#endif
	for (;;) {
		struct pollfd fds[2];
		nfds_t n = 0;
		int timeout = HOOK_POLL_MS;

		if (in >= 0)
			hook_feed(&in, line, len, &off);
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			ended = true;
			break;
		}
		if (w < 0 && errno != EINTR) {
			agent_log("order %" PRIu64 ": cannot wait for the "
			    "hook: %s", order_id, strerror(errno));
			break;
		}
		if (stop_signals >= 2) {
			agent_log("order %" PRIu64 ": not acknowledged: "
			    "stopped before the hook ended", order_id);
			break;
		}
		if (stop_signals && !told_stop) {
			agent_log("stopping once the hook for order %" PRIu64
			    " ends (signal again to stop at once)", order_id);
			told_stop = true;
		}
		if (!*broken && agent_heartbeat(a) < 0)
			*broken = true;
		if (pidfd >= 0) {
			fds[n++] = (struct pollfd){ .fd = pidfd,
			    .events = POLLIN };
			timeout = *broken ? -1 : (int)MAX(0, ctx->last_sent +
			    ctx->heartbeat_ms - now_ms());
		}
		if (in >= 0)
			fds[n++] = (struct pollfd){ .fd = in,
			    .events = POLLOUT };
		(void)poll(fds, n, timeout);
	}
	if (in >= 0)
		close(in);
	if (pidfd >= 0)
		close(pidfd);
	/* The broker was not listened to meanwhile: not its silence. */
	ctx->last_recv = MAX(ctx->last_recv, now_ms());
	if (!ended)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 1;
	if (WIFEXITED(status))
		agent_log("order %" PRIu64 ": the hook exited with status %d",
		    order_id, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		agent_log("order %" PRIu64 ": the hook was killed by signal %d",
		    order_id, WTERMSIG(status));
	return 0;
}

/*
 * Hand the order over: its line on standard output, or to the hook; then
 * Ack. json is taken over. tries: hook runs before this one. 0, or -1
 * (why set; a->fatal when run must end).
 */
static int
agent_deliver(struct agent *a, uint64_t order_id, char *json, unsigned tries)
{
	struct ctx *ctx = a->ctx;
	_cleanup_free_ char *line = json;
	size_t len = strlen(line);
	bool broken = false;
	struct retry *rt;
	uint32_t delay;

	if (!a->hook) {
		if (fputs(line, stdout) == EOF || fputc('\n', stdout) == EOF ||
		    fflush(stdout) != 0) {
			a->fatal = true;
			a->exit_code = CLI_EXIT_UNREACHABLE;
			return fail(ctx, CLI_EXIT_UNREACHABLE, "order %" PRIu64
			    " not acknowledged: cannot write to standard "
			    "output: %s", order_id, strerror(errno));
		}
		return agent_ack(a, order_id);
	}

	/* The hook reads the line with its newline. */
	line[len] = '\n';
	if (agent_hook(a, order_id, line, len + 1, &broken) == 1) {
		if (broken)
			return -1;
		return agent_ack(a, order_id);
	}
	line[len] = '\0';
	if (broken)
		return -1;
	if (stop_signals)
		return 0;
	if (a->nretries == RETRIES_MAX) {
		agent_log("order %" PRIu64 ": not tried again in this session "
		    "(%d orders wait already); the broker sends it again "
		    "after a reconnection", order_id, RETRIES_MAX);
		return 0;
	}
	delay = agent_backoff_ms(MIN(tries, FAILURES_MAX), a->max_backoff_ms,
	    random32());
	rt = &a->retries[a->nretries++];
	*rt = (struct retry){ .order_id = order_id, .json = TAKE_PTR(line),
	    .at = now_ms() + delay, .tries = tries + 1 };
	agent_log("order %" PRIu64 ": not acknowledged; the hook runs again in "
	    "%.1f s", order_id, delay / 1000.0);
	return 0;
}

/* Run the hook again for the first order due. 0, or -1 as agent_deliver(). */
static int
agent_retry_due(struct agent *a, int64_t now)
{
	for (size_t i = 0; i < a->nretries; i++) {
		struct retry rt = a->retries[i];

		if (rt.at > now)
			continue;
		retry_remove(a, i);
		agent_log("order %" PRIu64 ": running the hook again (try %u)",
		    rt.order_id, rt.tries + 1);
		return agent_deliver(a, rt.order_id, rt.json, rt.tries);
	}
	return 0;
}

static int
agent_on_dispatch(struct agent *a, const Twinroute__Provider__OrderDispatch *d)
{
	char name[LOG_TEXT_MAX + 1], amount[OUT_BUF_SIZE], cur[8];
	char *json;

	if (d->order_id == 0) {
		agent_log("%s: a dispatch without an order number: ignored",
		    a->ctx->addr);
		return 0;
	}
	json = agent_dispatch_json(d);
	if (!json)
		return fail(a->ctx, CLI_EXIT_UNREACHABLE, "out of memory");
	if (d->redelivery)
		agent_log("redelivery of order %" PRIu64 " (attempt %" PRIu32
		    ")", d->order_id, d->attempt);
	else
		agent_log("order %" PRIu64 " received: %" PRIu32 " x %s, %s",
		    d->order_id, d->quantity, clean(d->service_name, name,
		    sizeof(name)), d->amount ? money_format(d->amount->minor,
		    clean(d->amount->currency, cur, sizeof(cur)), amount,
		    sizeof(amount)) : "no amount");
	/* The broker sent it again: this delivery replaces the retry. */
	for (size_t i = 0; i < a->nretries; i++)
		if (a->retries[i].order_id == d->order_id) {
			free(a->retries[i].json);
			retry_remove(a, i);
			break;
		}
	return agent_deliver(a, d->order_id, json, 0);
}

/* Errors that end the session whatever request they answer. */
static bool
session_error(Twinroute__ErrorCode code)
{
	static const Twinroute__ErrorCode codes[] = {
		TWINROUTE__ERROR_CODE__ERR_REPLACED,
		TWINROUTE__ERROR_CODE__ERR_NOT_AUTHENTICATED,
		TWINROUTE__ERROR_CODE__ERR_SHUTTING_DOWN,
		TWINROUTE__ERROR_CODE__ERR_BAD_FRAME,
		TWINROUTE__ERROR_CODE__ERR_FRAME_TOO_LARGE,
		TWINROUTE__ERROR_CODE__ERR_VERSION,
		TWINROUTE__ERROR_CODE__ERR_UNSUPPORTED,
	};

	for (size_t i = 0; i < ELEMENTSOF(codes); i++)
		if (code == codes[i])
			return true;
	return false;
}

static int
agent_on_error(struct agent *a, const Twinroute__Provider__ProviderResponse *m)
{
	struct ctx *ctx = a->ctx;
	const Twinroute__Error *e = m->error;
	char prefix[128], msg[LOG_TEXT_MAX + 1];
	uint64_t order_id;

	if (e->code == TWINROUTE__ERROR_CODE__ERR_REPLACED) {
		a->replaced = true;
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: a newer session of "
		    "provider %s took over (a command, or another agent with "
		    "the same id)", ctx->addr, ctx->provider);
	}
	if (m->id == 0 || session_error(e->code)) {
		snprintf(prefix, sizeof(prefix), "%s: the broker ended the "
		    "session: ", ctx->addr);
		return fail_refused(ctx, CLI_EXIT_UNREACHABLE, prefix, e);
	}
	clean(e->message && *e->message ? e->message : "refused", msg,
	    sizeof(msg));
	order_id = ack_take(a, m->id);
	if (order_id)
		agent_log("order %" PRIu64 ": the broker refused the "
		    "acknowledgement: %s (%s)", order_id, msg,
		    cli_error_code_name(e->code));
	else
		agent_log("%s: request %" PRIu64 " refused: %s (%s)", ctx->addr,
		    m->id, msg, cli_error_code_name(e->code));
	return 0;
}

/* Each message of an authenticated session. 0, or -1 (why set). */
static int
agent_on_message(void *arg, Twinroute__Provider__ProviderResponse *m)
{
	struct agent *a = arg;
	struct ctx *ctx = a->ctx;
	uint64_t order_id;

	if (!reply_body(m) && m->body_case !=
	    TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY__NOT_SET)
		return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: an empty %s",
		    ctx->addr, body_name(m->body_case));
	switch (m->body_case) {
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ERROR:
		return agent_on_error(a, m);
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_DISPATCH:
		return agent_on_dispatch(a, m->dispatch);
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_OK:
		order_id = ack_take(a, m->id);
		if (order_id)
			agent_log("order %" PRIu64 " acknowledged", order_id);
		else
			agent_log("%s: an Ok for request %" PRIu64 ", which "
			    "awaits none: ignored", ctx->addr, m->id);
		return 0;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HEARTBEAT:
		return 0; /* any frame shows the broker alive */
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY__NOT_SET:
		agent_log("%s: a message of a kind %s does not know (id %"
		    PRIu64 "): ignored", ctx->addr, AGENT_NAME, m->id);
		return 0;
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_HELLO:
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_AUTH:
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_ORDER:
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICE:
	case TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY_SERVICES:
	case _TWINROUTE__PROVIDER__PROVIDER_RESPONSE__BODY__CASE_IS_INT_SIZE:
		break;
	}
	return fail(ctx, CLI_EXIT_UNREACHABLE, "%s: unexpected message: %s "
	    "(id %" PRIu64 ")", ctx->addr, body_name(m->body_case), m->id);
}

/* One session, from the connection to its end. */
static enum agent_end
agent_session(struct agent *a)
{
	struct ctx *ctx = a->ctx;
	const char *pend;
	char p[64];

	a->auth_at = 0;
	a->replaced = false;
	a->nacks = 0;
	retries_clear(a);
	if (session_open(ctx, agent_on_message, a) < 0)
		return stop_signals ? AGENT_STOP :
		    a->fatal ? AGENT_FATAL : AGENT_RECONNECT;
	a->auth_at = now_ms();
	snprintf(p, sizeof(p), "%" PRIu32 " orders pending", ctx->pending);
	pend = ctx->pending == 0 ? "no order pending" :
	    ctx->pending == 1 ? "1 order pending" : p;
	agent_log("connected to %s as %s (%s); %s", ctx->addr, ctx->provider,
	    ctx->method, pend);

	for (;;) {
		_cleanup_(resp_freep) Twinroute__Provider__ProviderResponse
		    *m = NULL;
		int64_t now, wake, dead;
		int r;

		if (stop_signals)
			return AGENT_STOP;
		now = now_ms();
		if (agent_retry_due(a, now) < 0)
			break;
		now = now_ms();
		dead = ctx->last_recv + (int64_t)DEAD_INTERVALS *
		    ctx->heartbeat_ms;
		if (now >= dead) {
			fail(ctx, CLI_EXIT_UNREACHABLE, "%s: no word from the "
			    "broker for %" PRIu32 " s", ctx->addr,
			    DEAD_INTERVALS * ctx->heartbeat_ms / 1000);
			break;
		}
		if (agent_heartbeat(a) < 0)
			break;
		wake = MIN(ctx->last_sent + ctx->heartbeat_ms, dead);
		for (size_t i = 0; i < a->nretries; i++)
			wake = MIN(wake, a->retries[i].at);
		r = tr_conn_wait(ctx->conn, (int)MAX(0, wake - now));
		if (stop_signals)
			return AGENT_STOP;
		if (r == 0 || r == -EINTR)
			continue;
		if (r < 0) {
			fail_io(ctx, "wait for the broker", r);
			break;
		}
		if (session_recv(ctx, &m) < 0 || agent_on_message(a, m) < 0)
			break;
	}
	if (stop_signals)
		return AGENT_STOP;
	return a->fatal ? AGENT_FATAL : AGENT_RECONNECT;
}

/* Sleep ms, or less if a stop signal comes: without a race. */
static void
agent_sleep(uint32_t ms)
{
	int64_t until = now_ms() + ms;
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	for (int64_t left = ms; !stop_signals && left > 0;
	    left = until - now_ms()) {
		struct timespec ts = { .tv_sec = left / 1000,
		    .tv_nsec = (left % 1000) * 1000000 };

		(void)ppoll(NULL, 0, &ts, &old);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static int
cmd_run(struct ctx *ctx, const struct args_cmd *cmd, int argc, char **argv)
{
	_cleanup_free_ struct agent *a = NULL;
	struct args_opt opts[] = { { "hook", NULL }, { "max-backoff", NULL } };
	struct sigaction sa = { .sa_handler = on_stop };
	unsigned failures = 0;
	int r;

	a = calloc(1, sizeof(*a));
	if (!a)
		return cli_fail("out of memory");
	a->ctx = ctx;
	a->max_backoff_ms = BACKOFF_MAX_DEFAULT_MS;
	r = args_parse(cmd, &(const struct args_spec){ .opts = opts,
	    .nopts = ELEMENTSOF(opts), .json = &ctx->json }, argc, argv, NULL);
	if (r >= 0)
		return r;
	if (opts[0].value) {
		if (strspn(opts[0].value, " \t") == strlen(opts[0].value))
			return args_cmd_error(cmd, "--hook must not be empty");
		a->hook = opts[0].value;
	}
	if (opts[1].value && agent_parse_seconds(opts[1].value,
	    BACKOFF_MAX_LIMIT_S, &a->max_backoff_ms) < 0)
		return args_cmd_error(cmd, "--max-backoff %s: want seconds, "
		    "more than 0 and at most %d (0.5 for half a second)",
		    opts[1].value, BACKOFF_MAX_LIMIT_S);
	if (!a->hook && stdout_closed)
		return args_cmd_error(cmd, "standard output is closed: the "
		    "orders have nowhere to go (or give --hook COMMAND)");
	r = prepare(ctx);
	if (r >= 0)
		return r;

	/* No SA_RESTART: a signal ends any wait. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		enum agent_end end = agent_session(a);
		uint32_t delay;

		session_close(ctx);
		if (end == AGENT_FATAL) {
			agent_log("%s", ctx->why);
			retries_clear(a);
			/* Said once: what is left for stdout is lost. */
			__fpurge(stdout);
			clearerr(stdout);
			return a->exit_code;
		}
		if (end == AGENT_STOP || stop_signals)
			break;
		if (a->auth_at > 0 &&
		    now_ms() - a->auth_at >= SESSION_STABLE_MS)
			failures = 0;
		delay = agent_backoff_ms(failures, a->max_backoff_ms,
		    random32());
		if (a->replaced)
			delay = MAX(delay, MIN(REPLACED_DELAY_MS,
			    a->max_backoff_ms));
		if (failures < FAILURES_MAX)
			failures++;
		agent_log("%s; reconnecting in %.1f s", ctx->why,
		    delay / 1000.0);
		agent_sleep(delay);
		if (stop_signals)
			break;
	}
	retries_clear(a);
	agent_log("stopped");
	return CLI_EXIT_OK;
}

/*
 * Descriptors 0 to 2 that are closed get /dev/null: else a socket could
 * take one, and a line meant for standard output would go to the broker.
 * Returns whether standard output was closed; -1 if one cannot be filled.
 */
static int
fill_std_fds(void)
{
	bool out_closed = false;

	for (int fd = 0; fd <= 2; fd++) {
		int n;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		out_closed |= fd == STDOUT_FILENO;
		n = open("/dev/null", O_RDWR | O_NOCTTY);
		if (n != fd) {
			if (n >= 0)
				close(n);
			return -1;
		}
	}
	return out_closed;
}

int
main(int argc, char **argv)
{
	struct ctx ctx = { .next_id = 1 };
	const struct cmd *cmd = NULL;
	int r;

	r = fill_std_fds();
	if (r < 0)
		return CLI_EXIT_UNREACHABLE;
	stdout_closed = r == 1;
	cli_init(PROG);
	r = args_parse_global(&tool, argc, argv, &ctx.json, &ctx);
	if (r >= 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
		if (strcmp(argv[optind], cmds[i].a.name) == 0 ||
		    (cmds[i].alias && strcmp(argv[optind], cmds[i].alias) == 0))
			cmd = &cmds[i];
	if (!cmd)
		return args_usage_error(&tool, true, "unknown command '%s'",
		    argv[optind]);

	r = cmd->fn(&ctx, &cmd->a, argc - optind - 1, argv + optind + 1);
	session_close(&ctx);
	return cli_exit(r);
}
