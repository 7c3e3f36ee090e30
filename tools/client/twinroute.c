/* SPDX-License-Identifier: ISC */
/* twinroute.c -- the user CLI: browse and search twinrouted's catalog */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/err.h>

#include "client.pb-c.h"
#include "config-build.h"

#include "common/conn.h"
#include "common/errcode.h"
#include "common/macro.h"
#include "common/output.h"

#define PROG "twinroute"
#define ADDR_DEFAULT "127.0.0.1:7420"
#define ADDR_ENV "TWINROUTE_ADDR"
#define CLIENT_PROTO_VERSION 1
#define CLIENT_NAME "twinroute " TR_VERSION
#define CLIENT_TIMEOUT_MS 10000
/* The largest reply we read: a page of services with long descriptions. */
#define CLIENT_RECV_MAX (16u * 1024u * 1024u)
/* A server that keeps handing out pages is not followed for ever. */
#define CLIENT_PAGES_MAX 100000

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,     /* the server answered with an error */
	EXIT_USAGE = 2,       /* bad arguments */
	EXIT_UNREACHABLE = 3, /* no server, or the protocol failed */
};

struct ctx {
	const char *addr;
	struct tr_conn_opts opts;
	bool json;
	struct tr_conn *conn;
	uint64_t next_id;
	uint32_t max_frame;   /* from HelloReply; 0: unknown */
	bool hello_done;
};

struct opt {
	const char *name;
	char *value;          /* from argv; NULL: not given */
};

struct cmd {
	const char *name;
	const char *usage;
	const char *help;
	int (*fn)(struct ctx *ctx, const struct cmd *cmd, int argc,
	    char **argv);
};

static void
resp_free(Twinroute__Client__Response *r)
{
	twinroute__client__response__free_unpacked(r, NULL);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Twinroute__Client__Response *, resp_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct out_table *, out_table_free)

static int cmd_categories(struct ctx *ctx, const struct cmd *cmd, int argc,
    char **argv);
static int cmd_services(struct ctx *ctx, const struct cmd *cmd, int argc,
    char **argv);
static int cmd_search(struct ctx *ctx, const struct cmd *cmd, int argc,
    char **argv);
static int cmd_show(struct ctx *ctx, const struct cmd *cmd, int argc,
    char **argv);

static const struct cmd cmds[] = {
	{ "categories", "", "list the categories that have services",
	    cmd_categories },
	{ "services", "[--category C] [--page-size N] [--limit N]",
	    "list services, following every page", cmd_services },
	{ "search", "[--limit N] WORDS...",
	    "services matching every word, best first", cmd_search },
	{ "show", "SERVICE_ID", "one service in full", cmd_show },
};
static const size_t ncmds = ELEMENTSOF(cmds);

static void
print_commands(FILE *f)
{
	for (size_t i = 0; i < ncmds; i++)
		fprintf(f, "  %s%s%s\n      %s\n", cmds[i].name,
		    *cmds[i].usage ? " " : "", cmds[i].usage, cmds[i].help);
}

static void
print_help(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " [-H HOST:PORT] [--tls] [--ca FILE] [--json] [-h|--help] [-V]\n"
	    "                 COMMAND [ARGS]\n"
	    "\n"
	    "Browse and search the services offered through twinrouted.\n"
	    "\n"
	    "options:\n"
	    "  -H, --host HOST:PORT  the server (default: $" ADDR_ENV ", else "
	    ADDR_DEFAULT ");\n"
	    "                        an IPv6 address goes in brackets: [::1]:7420\n"
	    "      --tls             speak TLS (the server is not verified without --ca)\n"
	    "      --ca FILE         verify the server's certificate and name against\n"
	    "                        this CA (implies --tls)\n"
	    "      --json            print the result as one JSON document\n"
	    "  -h, --help            show this help\n"
	    "  -V, --version         show the version\n"
	    "\n"
	    "commands:\n");
	print_commands(f);
	fprintf(f,
	    "\n"
	    "exit status:\n"
	    "  0  success\n"
	    "  1  the server refused the request, or found nothing by that id\n"
	    "  2  usage error: bad or missing arguments\n"
	    "  3  the server cannot be reached, or the protocol failed\n");
}

/* A usage error before the command; list the commands if asked. */
static int _printf_(2, 3)
usage_error(bool list, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	fprintf(stderr, "usage: " PROG " [-H HOST:PORT] [--tls] [--ca FILE] "
	    "[--json] COMMAND [ARGS]\n");
	if (list) {
		fprintf(stderr, "commands:\n");
		print_commands(stderr);
	} else {
		fprintf(stderr, "Try '" PROG " --help'.\n");
	}
	return EXIT_USAGE;
}

static int _printf_(2, 3)
cmd_usage_error(const struct cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG " %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: " PROG " %s%s%s\n", cmd->name,
	    *cmd->usage ? " " : "", cmd->usage);
	return EXIT_USAGE;
}

static int _printf_(1, 2)
fail(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	return EXIT_UNREACHABLE;
}

/*
 * Split a command's arguments into options (--name VALUE, --name=VALUE)
 * and positional arguments: at least npos_min, at most npos_max (0: no
 * limit, pos then holds argc entries). "--json" is accepted everywhere;
 * "--" ends the options. Returns -1 when all is well, else the exit code.
 */
static int
parse_args(struct ctx *ctx, const struct cmd *cmd, int argc, char **argv,
    struct opt *opts, size_t nopts, char **pos, size_t npos_min,
    size_t npos_max, const char *posname, size_t *ret_npos)
{
	size_t n = 0;
	bool dashdash = false;

	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		char *value = NULL, *eq;
		const char *name;
		size_t len;
		struct opt *o = NULL;

		if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
			if (npos_max > 0 && n == npos_max)
				return cmd_usage_error(cmd,
				    "unexpected argument '%s'", a);
			pos[n++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			ctx->json = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			printf("usage: " PROG " %s%s%s\n%s\n", cmd->name,
			    *cmd->usage ? " " : "", cmd->usage, cmd->help);
			return EXIT_OK;
		}
		if (strncmp(a, "--", 2) != 0)
			return cmd_usage_error(cmd, "unknown option '%s'", a);
		name = a + 2;
		eq = strchr(a + 2, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		for (size_t j = 0; j < nopts; j++)
			if (strlen(opts[j].name) == len &&
			    strncmp(opts[j].name, name, len) == 0)
				o = &opts[j];
		if (!o)
			return cmd_usage_error(cmd, "unknown option '%s'", a);
		if (eq)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else
			return cmd_usage_error(cmd, "option --%s needs a value",
			    o->name);
		if (o->value)
			return cmd_usage_error(cmd, "option --%s given twice",
			    o->name);
		o->value = value;
	}
	if (n < npos_min)
		return cmd_usage_error(cmd, "missing %s", posname);
	if (ret_npos)
		*ret_npos = n;
	return -1;
}

/* A count option: 1 .. max. */
static int
parse_count(const char *s, uint32_t max, uint32_t *ret)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	if (v == 0 || v > max)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

static const char *
code_name(Twinroute__ErrorCode code)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(
	    &twinroute__error_code__descriptor, code);
	return v ? v->name : "unknown error code";
}

static int
report_error(struct ctx *ctx, const Twinroute__Error *e)
{
	const char *msg = e->message && *e->message ? e->message :
	    "request refused";

	if (!ctx->hello_done && e->code == TWINROUTE__ERROR_CODE__ERR_VERSION)
		fprintf(stderr, PROG ": %s: the server does not speak protocol "
		    "version %d, the one " PROG " " TR_VERSION " speaks: %s "
		    "(%s)\n", ctx->addr, CLIENT_PROTO_VERSION, msg,
		    code_name(e->code));
	else
		fprintf(stderr, PROG ": %s (%s)\n", msg, code_name(e->code));
	return EXIT_REFUSED;
}

/* Why a TLS handshake failed, from the OpenSSL error queue. */
static void
tls_reason(char *buf, size_t size)
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

/*
 * Send req (its id filled in), read the response and check it answers
 * req with the body want. Returns EXIT_OK with *ret_resp set, else the
 * exit code after the message (an Error body: EXIT_REFUSED).
 */
static int
call(struct ctx *ctx, Twinroute__Client__Request *req,
    Twinroute__Client__Response__BodyCase want,
    Twinroute__Client__Response **ret_resp)
{
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	uint32_t len;
	size_t packed;
	int r;

	req->id = ctx->next_id++;
	packed = protobuf_c_message_get_packed_size(&req->base);
	if (ctx->max_frame > 0 && packed > ctx->max_frame) {
		fprintf(stderr, PROG ": the request is too large: %zu bytes, "
		    "the server takes at most %" PRIu32 "\n", packed,
		    ctx->max_frame);
		return EXIT_USAGE;
	}
	r = tr_conn_send(ctx->conn, &req->base);
	if (r < 0) {
		int sr = r;

		/* A refusal sent on accept may be waiting: read it first. */
		if (sr != -EPIPE && sr != -ECONNRESET)
			return fail("%s: cannot send the request: %s",
			    ctx->addr, tr_strerror(sr));
		r = tr_conn_recv(ctx->conn, CLIENT_RECV_MAX, &buf, &len);
		if (r < 0)
			return fail("%s: cannot send the request: %s",
			    ctx->addr, tr_strerror(sr));
	} else {
		r = tr_conn_recv(ctx->conn, CLIENT_RECV_MAX, &buf, &len);
	}
	if (r == -ECONNRESET && !ctx->hello_done && !ctx->opts.tls)
		return fail("%s: the server closed the connection (if it "
		    "speaks TLS, add --tls)", ctx->addr);
	if (r == -ECONNRESET)
		return fail("%s: the server closed the connection", ctx->addr);
	if (r == -ETIMEDOUT)
		return fail("%s: no reply within %d s", ctx->addr,
		    CLIENT_TIMEOUT_MS / 1000);
	if (r == -EPROTO && ctx->opts.tls) {
		char why[256];

		tls_reason(why, sizeof(why));
		return fail("%s: %s", ctx->addr, why);
	}
	if (r < 0)
		return fail("%s: cannot read the reply: %s", ctx->addr,
		    tr_strerror(r));

	resp = twinroute__client__response__unpack(NULL, len, buf);
	if (!resp)
		return fail("%s: the reply does not decode", ctx->addr);
	/* An error about the frame itself may not know the request's id. */
	if (resp->body_case == TWINROUTE__CLIENT__RESPONSE__BODY_ERROR &&
	    resp->error && (resp->id == req->id || resp->id == 0))
		return report_error(ctx, resp->error);
	if (resp->id != req->id)
		return fail("%s: the reply answers request %" PRIu64 ", not %"
		    PRIu64, ctx->addr, resp->id, req->id);
	if (resp->body_case != want)
		return fail("%s: unexpected reply (body %d for request %d)",
		    ctx->addr, (int)resp->body_case, (int)req->body_case);
	*ret_resp = TAKE_PTR(resp);
	return EXIT_OK;
}

static int
connect_server(struct ctx *ctx)
{
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	Twinroute__Client__Request req;
	Twinroute__Client__Hello hello;
	static char client_name[] = CLIENT_NAME;
	int r;

	r = tr_conn_open_tcp(ctx->addr, &ctx->opts, &ctx->conn);
	if (r == -EINVAL)
		return usage_error(false, "bad address '%s': want HOST:PORT or "
		    "[V6ADDR]:PORT", ctx->addr);
	if (r == -EPROTO && ctx->opts.tls) {
		char why[256];

		tls_reason(why, sizeof(why));
		return fail("cannot connect to %s: %s", ctx->addr, why);
	}
	if (r == -EHOSTUNREACH)
		return fail("cannot connect to %s: unknown host or no route",
		    ctx->addr);
	if (r < 0)
		return fail("cannot connect to %s: %s", ctx->addr,
		    tr_strerror(r));

	twinroute__client__hello__init(&hello);
	hello.version = CLIENT_PROTO_VERSION;
	hello.client = client_name;
	twinroute__client__request__init(&req);
	req.body_case = TWINROUTE__CLIENT__REQUEST__BODY_HELLO;
	req.hello = &hello;

	r = call(ctx, &req, TWINROUTE__CLIENT__RESPONSE__BODY_HELLO, &resp);
	if (r == EXIT_REFUSED)
		return EXIT_UNREACHABLE; /* the handshake failed */
	if (r != EXIT_OK)
		return r;
	if (!resp->hello)
		return fail("%s: empty hello reply", ctx->addr);
	if (resp->hello->version != CLIENT_PROTO_VERSION)
		return fail("%s: the server speaks protocol version %" PRIu32
		    ", " PROG " speaks %d", ctx->addr, resp->hello->version,
		    CLIENT_PROTO_VERSION);
	ctx->max_frame = resp->hello->max_frame;
	ctx->hello_done = true;
	return EXIT_OK;
}

static void
service_price(const Twinroute__Service *s, char *buf, size_t size)
{
	if (s->price)
		out_money(s->price->minor, s->price->currency, buf, size);
	else
		snprintf(buf, size, "-");
}

static int
print_json(json_object *obj)
{
	int r = out_json_print(obj, stdout);

	json_object_put(obj);
	if (r < 0)
		return fail("out of memory");
	return EXIT_OK;
}

static int
json_add_services(json_object *a, Twinroute__Service *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_object *o = out_json_service(v[i]);

		if (!o || json_object_array_add(a, o) < 0) {
			json_object_put(o);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Rows ID CATEGORY NAME PRICE PROVIDER, with a rank first if rank > 0. */
static int
table_add_services(struct out_table *t, Twinroute__Service *const *v,
    size_t n, size_t rank)
{
	for (size_t i = 0; i < n; i++) {
		const Twinroute__Service *s = v[i];
		char price[OUT_BUF_SIZE], rk[32];
		const char *row[] = { rk, s->id, s->category, s->name, price,
		    s->provider_id };

		service_price(s, price, sizeof(price));
		snprintf(rk, sizeof(rk), "%zu", rank + i);
		if (out_table_add(t, rank > 0 ? row : row + 1) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int
cmd_categories(struct ctx *ctx, const struct cmd *cmd, int argc, char **argv)
{
	static const char *const hdr[] = { "CATEGORY", "SERVICES" };
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	Twinroute__Client__Request req;
	Twinroute__Client__ListCategories lc;
	const Twinroute__Client__CategoryList *cl;
	int r;

	r = parse_args(ctx, cmd, argc, argv, NULL, 0, NULL, 0, 0, NULL, NULL);
	if (r >= 0)
		return r;
	r = connect_server(ctx);
	if (r != EXIT_OK)
		return r;
	twinroute__client__list_categories__init(&lc);
	twinroute__client__request__init(&req);
	req.body_case = TWINROUTE__CLIENT__REQUEST__BODY_LIST_CATEGORIES;
	req.list_categories = &lc;
	r = call(ctx, &req, TWINROUTE__CLIENT__RESPONSE__BODY_CATEGORIES,
	    &resp);
	if (r != EXIT_OK)
		return r;
	cl = resp->categories;
	if (!cl)
		return fail("%s: empty category list", ctx->addr);

	if (ctx->json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; a && i < cl->n_categories; i++) {
			json_object *o = json_object_new_object();

			if (!o || json_object_array_add(a, o) < 0) {
				json_object_put(o);
				json_object_put(a);
				return fail("out of memory");
			}
			json_object_object_add(o, "name",
			    out_json_string(cl->categories[i]->name));
			json_object_object_add(o, "services",
			    json_object_new_int64(cl->categories[i]->services));
		}
		return print_json(a);
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return fail("out of memory");
	out_table_set_align(t, 1, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < cl->n_categories; i++) {
		char n[16];
		const char *row[] = { cl->categories[i]->name, n };

		snprintf(n, sizeof(n), "%" PRIu32, cl->categories[i]->services);
		if (out_table_add(t, row) < 0)
			return fail("out of memory");
	}
	out_table_print(t, stdout);
	return EXIT_OK;
}

static int
cmd_services(struct ctx *ctx, const struct cmd *cmd, int argc, char **argv)
{
	static const char *const hdr[] = { "ID", "CATEGORY", "NAME", "PRICE",
	    "PROVIDER" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	_cleanup_(json_object_putp) json_object *a = NULL;
	_cleanup_free_ uint8_t *token = NULL;
	struct opt opts[] = { { "category", NULL }, { "page-size", NULL },
	    { "limit", NULL } };
	uint32_t page_size = 0, limit = 0, got = 0;
	size_t token_len = 0;
	int r;

	r = parse_args(ctx, cmd, argc, argv, opts, ELEMENTSOF(opts), NULL, 0,
	    0, NULL, NULL);
	if (r >= 0)
		return r;
	if (opts[1].value && parse_count(opts[1].value, UINT32_MAX,
	    &page_size) < 0)
		return cmd_usage_error(cmd, "--page-size wants a positive "
		    "integer, not '%s'", opts[1].value);
	if (opts[2].value && parse_count(opts[2].value, UINT32_MAX,
	    &limit) < 0)
		return cmd_usage_error(cmd, "--limit wants a positive integer, "
		    "not '%s'", opts[2].value);

	if (ctx->json) {
		a = json_object_new_array();
		if (!a)
			return fail("out of memory");
	} else {
		t = out_table_new(ELEMENTSOF(hdr), hdr);
		if (!t)
			return fail("out of memory");
		out_table_set_align(t, 3, OUT_ALIGN_RIGHT);
	}
	r = connect_server(ctx);
	if (r != EXIT_OK)
		return r;

	for (unsigned pages = 0;; pages++) {
		_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
		Twinroute__Client__Request req;
		Twinroute__Client__ListServices ls;
		const Twinroute__Client__ServiceList *sl;
		size_t n;

		if (pages == CLIENT_PAGES_MAX)
			return fail("%s: more than %d pages: giving up",
			    ctx->addr, CLIENT_PAGES_MAX);
		twinroute__client__list_services__init(&ls);
		if (opts[0].value)
			ls.category = opts[0].value;
		ls.page_size = page_size;
		if (limit > 0 && (page_size == 0 || page_size > limit - got))
			ls.page_size = limit - got;
		ls.page_token.data = token;
		ls.page_token.len = token_len;
		twinroute__client__request__init(&req);
		req.body_case = TWINROUTE__CLIENT__REQUEST__BODY_LIST_SERVICES;
		req.list_services = &ls;
		r = call(ctx, &req, TWINROUTE__CLIENT__RESPONSE__BODY_SERVICES,
		    &resp);
		if (r != EXIT_OK)
			return r;
		sl = resp->services;
		if (!sl)
			return fail("%s: empty service list", ctx->addr);

		n = sl->n_services;
		if (limit > 0 && n > limit - got)
			n = limit - got;
		if (a ? json_add_services(a, sl->services, n) < 0 :
		    table_add_services(t, sl->services, n, 0) < 0)
			return fail("out of memory");
		got += (uint32_t)n;

		if (sl->next_page_token.len == 0 || (limit > 0 && got >= limit))
			break;
		if (sl->n_services == 0)
			return fail("%s: an empty page that is not the last",
			    ctx->addr);
		free(token);
		token = malloc(sl->next_page_token.len);
		if (!token)
			return fail("out of memory");
		memcpy(token, sl->next_page_token.data,
		    sl->next_page_token.len);
		token_len = sl->next_page_token.len;
	}
	if (a)
		return print_json(TAKE_PTR(a));
	out_table_print(t, stdout);
	return EXIT_OK;
}

static int
cmd_search(struct ctx *ctx, const struct cmd *cmd, int argc, char **argv)
{
	static const char *const hdr[] = { "RANK", "ID", "CATEGORY", "NAME",
	    "PRICE", "PROVIDER" };
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	_cleanup_free_ char **words = NULL;
	_cleanup_free_ char *query = NULL;
	struct opt opts[] = { { "limit", NULL } };
	Twinroute__Client__Request req;
	Twinroute__Client__Search search;
	const Twinroute__Client__SearchResult *sr;
	size_t nwords = 0, qlen = 0;
	int r;

	words = calloc((size_t)argc + 1, sizeof(*words));
	if (!words)
		return fail("out of memory");
	r = parse_args(ctx, cmd, argc, argv, opts, ELEMENTSOF(opts), words, 1,
	    0, "search words", &nwords);
	if (r >= 0)
		return r;
	twinroute__client__search__init(&search);
	if (opts[0].value && parse_count(opts[0].value, UINT32_MAX,
	    &search.limit) < 0)
		return cmd_usage_error(cmd, "--limit wants a positive integer, "
		    "not '%s'", opts[0].value);

	for (size_t i = 0; i < nwords; i++)
		qlen += strlen(words[i]) + 1;
	query = malloc(qlen + 1);
	if (!query)
		return fail("out of memory");
	query[0] = '\0';
	for (size_t i = 0, off = 0; i < nwords; i++) {
		size_t l = strlen(words[i]);

		if (i > 0)
			query[off++] = ' ';
		memcpy(query + off, words[i], l + 1);
		off += l;
	}
	if (strspn(query, " \t") == strlen(query))
		return cmd_usage_error(cmd, "missing search words");
	search.query = query;

	r = connect_server(ctx);
	if (r != EXIT_OK)
		return r;
	twinroute__client__request__init(&req);
	req.body_case = TWINROUTE__CLIENT__REQUEST__BODY_SEARCH;
	req.search = &search;
	r = call(ctx, &req, TWINROUTE__CLIENT__RESPONSE__BODY_SEARCH, &resp);
	if (r != EXIT_OK)
		return r;
	sr = resp->search;
	if (!sr)
		return fail("%s: empty search result", ctx->addr);

	if (ctx->json) {
		json_object *o = json_object_new_object();
		json_object *a = json_object_new_array();

		if (!o || !a || json_add_services(a, sr->services,
		    sr->n_services) < 0) {
			json_object_put(o);
			json_object_put(a);
			return fail("out of memory");
		}
		json_object_object_add(o, "query", out_json_string(query));
		json_object_object_add(o, "total",
		    json_object_new_int64(sr->total));
		json_object_object_add(o, "services", a);
		return print_json(o);
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return fail("out of memory");
	out_table_set_align(t, 0, OUT_ALIGN_RIGHT);
	out_table_set_align(t, 4, OUT_ALIGN_RIGHT);
	if (table_add_services(t, sr->services, sr->n_services, 1) < 0)
		return fail("out of memory");
	out_table_print(t, stdout);
	if (sr->total > sr->n_services)
		fprintf(stderr, PROG ": showing %zu of %" PRIu32 " matches; "
		    "use --limit for more\n", sr->n_services, sr->total);
	return EXIT_OK;
}

static int
cmd_show(struct ctx *ctx, const struct cmd *cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	Twinroute__Client__Request req;
	Twinroute__Client__GetService gs;
	const Twinroute__Client__ServiceInfo *si;
	const Twinroute__Service *s;
	const Twinroute__Provider *p;
	char price[OUT_BUF_SIZE];
	char *pos[1];
	const int kw = 11;
	int r;

	r = parse_args(ctx, cmd, argc, argv, NULL, 0, pos, 1, 1, "SERVICE_ID",
	    NULL);
	if (r >= 0)
		return r;
	r = connect_server(ctx);
	if (r != EXIT_OK)
		return r;
	twinroute__client__get_service__init(&gs);
	gs.id = pos[0];
	twinroute__client__request__init(&req);
	req.body_case = TWINROUTE__CLIENT__REQUEST__BODY_GET_SERVICE;
	req.get_service = &gs;
	r = call(ctx, &req, TWINROUTE__CLIENT__RESPONSE__BODY_SERVICE, &resp);
	if (r != EXIT_OK)
		return r;
	si = resp->service;
	if (!si || !si->service)
		return fail("%s: empty service reply", ctx->addr);
	s = si->service;
	p = si->provider;

	if (ctx->json) {
		json_object *o = out_json_service(s);

		if (!o)
			return fail("out of memory");
		json_object_object_add(o, "provider_name",
		    out_json_string(p ? p->name : ""));
		return print_json(o);
	}
	service_price(s, price, sizeof(price));
	out_kv(stdout, kw, "id", "%s", s->id);
	out_kv(stdout, kw, "name", "%s", s->name);
	out_kv(stdout, kw, "category", "%s", s->category);
	if (p && *p->name)
		out_kv(stdout, kw, "provider", "%s (%s)", p->name,
		    s->provider_id);
	else
		out_kv(stdout, kw, "provider", "%s", s->provider_id);
	out_kv(stdout, kw, "price", "%s", price);
	if (s->description && *s->description) {
		printf("description:\n");
		out_wrap(stdout, 2, s->description);
	}
	return EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "tls", no_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctx ctx = { .next_id = 1, .opts.timeout_ms = CLIENT_TIMEOUT_MS };
	const struct cmd *cmd = NULL;
	int c, r;

	/* A server that goes away mid-write is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:H:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'H':
			ctx.addr = optarg;
			break;
		case 't':
			ctx.opts.tls = true;
			break;
		case 'c':
			ctx.opts.ca_file = optarg;
			ctx.opts.tls = true;
			break;
		case 'j':
			ctx.json = true;
			break;
		case 'h':
			print_help(stdout);
			return EXIT_OK;
		case 'V':
			printf(PROG " " TR_VERSION "\n");
			return EXIT_OK;
		case ':':
			return usage_error(false, "option %s needs a value",
			    argv[optind - 1]);
		default:
			if (optopt)
				return usage_error(false,
				    "unknown option '-%c'", optopt);
			return usage_error(false, "unknown option '%s'",
			    argv[optind - 1]);
		}
	}
	if (!ctx.addr)
		ctx.addr = getenv(ADDR_ENV);
	if (!ctx.addr || !*ctx.addr)
		ctx.addr = ADDR_DEFAULT;

	if (optind == argc)
		return usage_error(true, "no command given");
	for (size_t i = 0; i < ncmds; i++)
		if (strcmp(argv[optind], cmds[i].name) == 0)
			cmd = &cmds[i];
	if (!cmd)
		return usage_error(true, "unknown command '%s'",
		    argv[optind]);

	r = cmd->fn(&ctx, cmd, argc - optind - 1, argv + optind + 1);
	ctx.conn = tr_conn_close(ctx.conn);
	if ((fflush(stdout) != 0 || ferror(stdout)) && errno != EPIPE) {
		fprintf(stderr, PROG ": cannot write the output: %s\n",
		    strerror(errno));
		return r == EXIT_OK ? EXIT_UNREACHABLE : r;
	}
	return r;
}
