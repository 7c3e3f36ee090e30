/* SPDX-License-Identifier: ISC */
/* twinroute.c -- the user CLI: browse and search twinrouted's catalog */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "client.pb-c.h"
#include "config-build.h"

#include "common/args.h"
#include "common/cli.h"
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

#define CLIENT_CLOSED "the server closed the connection"

struct ctx {
	const char *addr;
	struct tr_conn_opts opts;
	bool json;
	struct tr_conn *conn;
	struct cli_peer peer; /* once connected */
	uint64_t next_id;
	bool hello_done;
};

struct cmd {
	struct args_cmd a;
	int (*fn)(struct ctx *ctx, const struct args_cmd *cmd, int argc,
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

static int cmd_categories(struct ctx *ctx, const struct args_cmd *cmd,
    int argc, char **argv);
static int cmd_services(struct ctx *ctx, const struct args_cmd *cmd,
    int argc, char **argv);
static int cmd_search(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);
static int cmd_show(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);

static const struct cmd cmds[] = {
	{ { "categories", "", "list the categories that have services" },
	    cmd_categories },
	{ { "services", "[--category C] [--page-size N] [--limit N]",
	    "list services, following every page" }, cmd_services },
	{ { "search", "[--limit N] WORDS...",
	    "services matching every word, best first" }, cmd_search },
	{ { "show", "SERVICE_ID", "one service in full" }, cmd_show },
};

static void
print_commands(FILE *f)
{
	for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
		args_print_command(f, &cmds[i].a);
}

static void
client_option(void *data, int c, char *arg)
{
	struct ctx *ctx = data;

	if (c == 'H') {
		ctx->addr = arg;
	} else if (c == 'c') {
		ctx->opts.ca_file = arg;
		ctx->opts.tls = true;
	} else if (c == 't') {
		ctx->opts.tls = true;
	}
}

static const struct option options[] = {
	{ "host", required_argument, NULL, 'H' },
	{ "tls", no_argument, NULL, 't' },
	{ "ca", required_argument, NULL, 'c' },
	{ NULL, 0, NULL, 0 },
};

static const struct args_tool tool = {
	.synopsis = "[-H HOST:PORT] [--tls] [--ca FILE] [--json] "
	    "COMMAND [ARGS]",
	.shortopts = "H:",
	.options = options,
	.option = client_option,
	.usage = "[-H HOST:PORT] [--tls] [--ca FILE] [--json] [-h|--help] [-V]\n"
	    "                 COMMAND [ARGS]",
	.about = "Browse and search the services offered through twinrouted.",
	.options_help =
	    "  -H, --host HOST:PORT  the server (default: $" ADDR_ENV ", else "
	    ADDR_DEFAULT ");\n"
	    "                        an IPv6 address goes in brackets: [::1]:7420\n"
	    "      --tls             speak TLS (the server is not verified without --ca)\n"
	    "      --ca FILE         verify the server's certificate and name against\n"
	    "                        this CA (implies --tls)\n",
	.options_width = 24,
	.print_commands = print_commands,
	.exits = {
		[CLI_EXIT_REFUSED] = "the server refused the request, or found "
		    "nothing by that id",
		[CLI_EXIT_USAGE] = "usage error: bad or missing arguments",
		[CLI_EXIT_UNREACHABLE] = "the server cannot be reached, or the "
		    "protocol failed",
	},
};

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

/* The value of a count option, if given. CLI_GO_ON or the exit code. */
static int
opt_count(const struct args_cmd *cmd, const struct args_opt *o,
    uint32_t *ret)
{
	if (o->value && parse_count(o->value, UINT32_MAX, ret) < 0)
		return args_cmd_error(cmd, "--%s wants a positive integer, "
		    "not '%s'", o->name, o->value);
	return CLI_GO_ON;
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
	return CLI_EXIT_REFUSED;
}

/* The requests this tool makes. */
enum xchg {
	XCHG_HELLO,
	XCHG_CATEGORIES,
	XCHG_SERVICES,
	XCHG_SERVICE,
	XCHG_SEARCH,
};

/* Each request's body, the reply body that answers it and what that is. */
static const struct {
	Twinroute__Client__Request__BodyCase body;
	Twinroute__Client__Response__BodyCase reply;
	const char *what;       /* "empty WHAT" when it is missing */
} xchgs[] = {
	[XCHG_HELLO] = { TWINROUTE__CLIENT__REQUEST__BODY_HELLO,
	    TWINROUTE__CLIENT__RESPONSE__BODY_HELLO, "hello reply" },
	[XCHG_CATEGORIES] = { TWINROUTE__CLIENT__REQUEST__BODY_LIST_CATEGORIES,
	    TWINROUTE__CLIENT__RESPONSE__BODY_CATEGORIES, "category list" },
	[XCHG_SERVICES] = { TWINROUTE__CLIENT__REQUEST__BODY_LIST_SERVICES,
	    TWINROUTE__CLIENT__RESPONSE__BODY_SERVICES, "service list" },
	[XCHG_SERVICE] = { TWINROUTE__CLIENT__REQUEST__BODY_GET_SERVICE,
	    TWINROUTE__CLIENT__RESPONSE__BODY_SERVICE, "service reply" },
	[XCHG_SEARCH] = { TWINROUTE__CLIENT__REQUEST__BODY_SEARCH,
	    TWINROUTE__CLIENT__RESPONSE__BODY_SEARCH, "search result" },
};

/* The reply's body, whichever it is; NULL for none. */
static const void *
reply_body(const Twinroute__Client__Response *resp)
{
	switch (resp->body_case) {
	case TWINROUTE__CLIENT__RESPONSE__BODY_ERROR:
		return resp->error;
	case TWINROUTE__CLIENT__RESPONSE__BODY_HELLO:
		return resp->hello;
	case TWINROUTE__CLIENT__RESPONSE__BODY_CATEGORIES:
		return resp->categories;
	case TWINROUTE__CLIENT__RESPONSE__BODY_SERVICES:
		return resp->services;
	case TWINROUTE__CLIENT__RESPONSE__BODY_SERVICE:
		return resp->service;
	case TWINROUTE__CLIENT__RESPONSE__BODY_SEARCH:
		return resp->search;
	case TWINROUTE__CLIENT__RESPONSE__BODY__NOT_SET:
	case _TWINROUTE__CLIENT__RESPONSE__BODY__CASE_IS_INT_SIZE:
		return NULL;
	}
	return NULL;
}

static int connect_server(struct ctx *ctx);

/*
 * Send req, its body (set by the caller) that of x, connecting first if
 * need be; read the response and check it answers req with x's reply.
 * Returns CLI_EXIT_OK with *ret_resp set, else the exit code after the
 * message (an Error body: CLI_EXIT_REFUSED).
 */
static int
call(struct ctx *ctx, Twinroute__Client__Request *req, enum xchg x,
    Twinroute__Client__Response **ret_resp)
{
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	ProtobufCMessage *reply;
	int r;

	if (!ctx->conn) {
		r = connect_server(ctx);
		if (r != CLI_EXIT_OK)
			return r;
	}
	req->id = ctx->next_id++;
	req->body_case = xchgs[x].body;
	r = cli_request_fits(&ctx->peer, &req->base);
	if (r >= 0)
		return r;
	r = cli_exchange(ctx->conn, &ctx->peer, &req->base,
	    &twinroute__client__response__descriptor, &reply);
	if (r != CLI_EXIT_OK)
		return r;
	resp = (Twinroute__Client__Response *)reply;

	/* An error about the frame itself may not know the request's id. */
	if (resp->body_case == TWINROUTE__CLIENT__RESPONSE__BODY_ERROR &&
	    resp->error && (resp->id == req->id || resp->id == 0))
		return report_error(ctx, resp->error);
	if (resp->id != req->id)
		return cli_fail("%s: the reply answers request %" PRIu64
		    ", not %" PRIu64, ctx->addr, resp->id, req->id);
	if (resp->body_case != xchgs[x].reply)
		return cli_fail("%s: unexpected reply (body %d for request %d)",
		    ctx->addr, (int)resp->body_case, (int)req->body_case);
	if (!reply_body(resp))
		return cli_fail("%s: empty %s", ctx->addr, xchgs[x].what);
	*ret_resp = TAKE_PTR(resp);
	return CLI_EXIT_OK;
}

/* Connect and say hello. */
static int
connect_server(struct ctx *ctx)
{
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	Twinroute__Client__Request req = TWINROUTE__CLIENT__REQUEST__INIT;
	Twinroute__Client__Hello hello = TWINROUTE__CLIENT__HELLO__INIT;
	static char client_name[] = CLIENT_NAME;
	int r;

	r = tr_conn_open_tcp(ctx->addr, &ctx->opts, &ctx->conn);
	if (r == -EINVAL)
		return args_usage_error(&tool, false, "bad address '%s': want "
		    "HOST:PORT or [V6ADDR]:PORT", ctx->addr);
	if (r == -EPROTO && ctx->opts.tls) {
		char why[256];

		cli_tls_reason(why, sizeof(why));
		return cli_fail("cannot connect to %s: %s", ctx->addr, why);
	}
	if (r == -EHOSTUNREACH)
		return cli_fail("cannot connect to %s: unknown host or no "
		    "route", ctx->addr);
	if (r < 0)
		return cli_fail("cannot connect to %s: %s", ctx->addr,
		    tr_strerror(r));

	ctx->peer = (struct cli_peer){
		.name = ctx->addr,
		.limiter = "the server",
		.closed = ctx->opts.tls ? CLIENT_CLOSED :
		    CLIENT_CLOSED " (if it speaks TLS, add --tls)",
		.recv_max = CLIENT_RECV_MAX,
		.timeout_ms = CLIENT_TIMEOUT_MS,
		.tls = ctx->opts.tls,
	};
	hello.version = CLIENT_PROTO_VERSION;
	hello.client = client_name;
	req.hello = &hello;
	r = call(ctx, &req, XCHG_HELLO, &resp);
	if (r == CLI_EXIT_REFUSED)
		return CLI_EXIT_UNREACHABLE; /* the handshake failed */
	if (r != CLI_EXIT_OK)
		return r;
	if (resp->hello->version != CLIENT_PROTO_VERSION)
		return cli_fail("%s: the server speaks protocol version "
		    "%" PRIu32 ", " PROG " speaks %d", ctx->addr,
		    resp->hello->version, CLIENT_PROTO_VERSION);
	ctx->peer.send_max = resp->hello->max_frame;
	ctx->peer.closed = CLIENT_CLOSED;
	ctx->hello_done = true;
	return CLI_EXIT_OK;
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

		out_price(s->price, price, sizeof(price));
		snprintf(rk, sizeof(rk), "%zu", rank + i);
		if (out_table_add(t, rank > 0 ? row : row + 1) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int
cmd_categories(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	static const char *const hdr[] = { "CATEGORY", "SERVICES" };
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	Twinroute__Client__Request req = TWINROUTE__CLIENT__REQUEST__INIT;
	Twinroute__Client__ListCategories lc =
	    TWINROUTE__CLIENT__LIST_CATEGORIES__INIT;
	const Twinroute__Client__CategoryList *cl;
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .json = &ctx->json },
	    argc, argv, NULL);
	if (r >= 0)
		return r;
	req.list_categories = &lc;
	r = call(ctx, &req, XCHG_CATEGORIES, &resp);
	if (r != CLI_EXIT_OK)
		return r;
	cl = resp->categories;

	if (ctx->json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; a && i < cl->n_categories; i++) {
			const Twinroute__Client__Category *c;
			json_object *o;

			c = cl->categories[i];
			o = OUT_JSON_OBJECT(
			    { "name", out_json_string(c->name) },
			    { "services", json_object_new_int64(c->services) });

			if (!o || json_object_array_add(a, o) < 0) {
				json_object_put(o);
				json_object_put(a);
				return cli_fail("out of memory");
			}
		}
		return cli_print_json(a);
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_align(t, 1, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < cl->n_categories; i++) {
		char n[16];
		const char *row[] = { cl->categories[i]->name, n };

		snprintf(n, sizeof(n), "%" PRIu32, cl->categories[i]->services);
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
	static const char *const hdr[] = { "ID", "CATEGORY", "NAME", "PRICE",
	    "PROVIDER" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	_cleanup_(json_object_putp) json_object *a = NULL;
	_cleanup_free_ uint8_t *token = NULL;
	struct args_opt opts[] = { { "category", NULL }, { "page-size", NULL },
	    { "limit", NULL } };
	uint32_t page_size = 0, limit = 0, got = 0;
	size_t token_len = 0;
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .opts = opts,
	    .nopts = ELEMENTSOF(opts), .json = &ctx->json }, argc, argv, NULL);
	if (r >= 0)
		return r;
	r = opt_count(cmd, &opts[1], &page_size);
	if (r >= 0)
		return r;
	r = opt_count(cmd, &opts[2], &limit);
	if (r >= 0)
		return r;

	if (ctx->json) {
		a = json_object_new_array();
		if (!a)
			return cli_fail("out of memory");
	} else {
		t = out_table_new(ELEMENTSOF(hdr), hdr);
		if (!t)
			return cli_fail("out of memory");
		out_table_set_align(t, 3, OUT_ALIGN_RIGHT);
	}
	for (unsigned pages = 0;; pages++) {
		_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
		Twinroute__Client__Request req =
		    TWINROUTE__CLIENT__REQUEST__INIT;
		Twinroute__Client__ListServices ls =
		    TWINROUTE__CLIENT__LIST_SERVICES__INIT;
		const Twinroute__Client__ServiceList *sl;
		size_t n;

		if (pages == CLIENT_PAGES_MAX)
			return cli_fail("%s: more than %d pages: giving up",
			    ctx->addr, CLIENT_PAGES_MAX);
		if (opts[0].value)
			ls.category = opts[0].value;
		ls.page_size = page_size;
		if (limit > 0 && (page_size == 0 || page_size > limit - got))
			ls.page_size = limit - got;
		ls.page_token.data = token;
		ls.page_token.len = token_len;
		req.list_services = &ls;
		r = call(ctx, &req, XCHG_SERVICES, &resp);
		if (r != CLI_EXIT_OK)
			return r;
		sl = resp->services;

		n = sl->n_services;
		if (limit > 0 && n > limit - got)
			n = limit - got;
		if (a ? out_json_add_services(a, sl->services, n) < 0 :
		    table_add_services(t, sl->services, n, 0) < 0)
			return cli_fail("out of memory");
		got += (uint32_t)n;

		if (sl->next_page_token.len == 0 || (limit > 0 && got >= limit))
			break;
		if (sl->n_services == 0)
			return cli_fail("%s: an empty page that is not the "
			    "last", ctx->addr);
		free(token);
		token = malloc(sl->next_page_token.len);
		if (!token)
			return cli_fail("out of memory");
		memcpy(token, sl->next_page_token.data,
		    sl->next_page_token.len);
		token_len = sl->next_page_token.len;
	}
	if (a)
		return cli_print_json(TAKE_PTR(a));
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

/* The words joined by single spaces; NULL on ENOMEM. */
static char *
join_words(char *const *words, size_t n)
{
	size_t len = 0;
	char *s;

	for (size_t i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0, off = 0; i < n; i++) {
		size_t l = strlen(words[i]);

		if (i > 0)
			s[off++] = ' ';
		memcpy(s + off, words[i], l + 1);
		off += l;
	}
	return s;
}

static int
cmd_search(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	static const char *const hdr[] = { "RANK", "ID", "CATEGORY", "NAME",
	    "PRICE", "PROVIDER" };
	static const char *const posnames[] = { "search words" };
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	_cleanup_free_ char **words = NULL;
	_cleanup_free_ char *query = NULL;
	struct args_opt opts[] = { { "limit", NULL } };
	Twinroute__Client__Request req = TWINROUTE__CLIENT__REQUEST__INIT;
	Twinroute__Client__Search search = TWINROUTE__CLIENT__SEARCH__INIT;
	const Twinroute__Client__SearchResult *sr;
	size_t nwords = 0;
	int r;

	words = calloc((size_t)argc + 1, sizeof(*words));
	if (!words)
		return cli_fail("out of memory");
	r = args_parse(cmd, &(const struct args_spec){ .opts = opts,
	    .nopts = ELEMENTSOF(opts), .pos = words, .npos_min = 1,
	    .npos_max = ARGS_NPOS_ANY, .posnames = posnames,
	    .json = &ctx->json }, argc, argv, &nwords);
	if (r >= 0)
		return r;
	r = opt_count(cmd, &opts[0], &search.limit);
	if (r >= 0)
		return r;
	query = join_words(words, nwords);
	if (!query)
		return cli_fail("out of memory");
	if (strspn(query, " \t") == strlen(query))
		return args_cmd_error(cmd, "missing search words");
	search.query = query;
	req.search = &search;
	r = call(ctx, &req, XCHG_SEARCH, &resp);
	if (r != CLI_EXIT_OK)
		return r;
	sr = resp->search;

	if (ctx->json)
		return cli_print_json(OUT_JSON_OBJECT(
		    { "query", out_json_string(query) },
		    { "total", json_object_new_int64(sr->total) },
		    { "services", out_json_services(sr->services,
		    sr->n_services) }));
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_align(t, 0, OUT_ALIGN_RIGHT);
	out_table_set_align(t, 4, OUT_ALIGN_RIGHT);
	if (table_add_services(t, sr->services, sr->n_services, 1) < 0)
		return cli_fail("out of memory");
	out_table_print(t, stdout);
	if (sr->total > sr->n_services)
		fprintf(stderr, PROG ": showing %zu of %" PRIu32 " matches; "
		    "use --limit for more\n", sr->n_services, sr->total);
	return CLI_EXIT_OK;
}

static int
cmd_show(struct ctx *ctx, const struct args_cmd *cmd, int argc, char **argv)
{
	static const char *const posnames[] = { "SERVICE_ID" };
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	Twinroute__Client__Request req = TWINROUTE__CLIENT__REQUEST__INIT;
	Twinroute__Client__GetService gs = TWINROUTE__CLIENT__GET_SERVICE__INIT;
	const Twinroute__Client__ServiceInfo *si;
	const Twinroute__Service *s;
	const Twinroute__Provider *p;
	char price[OUT_BUF_SIZE];
	char *pos[1];
	const int kw = 11;
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .pos = pos,
	    .npos_min = 1, .npos_max = 1, .posnames = posnames,
	    .json = &ctx->json }, argc, argv, NULL);
	if (r >= 0)
		return r;
	gs.id = pos[0];
	req.get_service = &gs;
	r = call(ctx, &req, XCHG_SERVICE, &resp);
	if (r != CLI_EXIT_OK)
		return r;
	si = resp->service;
	if (!si->service)
		return cli_fail("%s: empty service reply", ctx->addr);
	s = si->service;
	p = si->provider;

	if (ctx->json) {
		json_object *o = out_json_service(s);

		if (!o)
			return cli_fail("out of memory");
		json_object_object_add(o, "provider_name",
		    out_json_string(p ? p->name : ""));
		return cli_print_json(o);
	}
	out_kv(stdout, kw, "id", "%s", s->id);
	out_kv(stdout, kw, "name", "%s", s->name);
	out_kv(stdout, kw, "category", "%s", s->category);
	if (p && *p->name)
		out_kv(stdout, kw, "provider", "%s (%s)", p->name,
		    s->provider_id);
	else
		out_kv(stdout, kw, "provider", "%s", s->provider_id);
	out_kv(stdout, kw, "price", "%s",
	    out_price(s->price, price, sizeof(price)));
	if (s->description && *s->description) {
		printf("description:\n");
		out_wrap(stdout, 2, s->description);
	}
	return CLI_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct ctx ctx = { .next_id = 1, .opts.timeout_ms = CLIENT_TIMEOUT_MS };
	const struct cmd *cmd = NULL;
	int r;

	cli_init(PROG);
	r = args_parse_global(&tool, argc, argv, &ctx.json, &ctx);
	if (r >= 0)
		return r;
	ctx.addr = args_default(ctx.addr, ADDR_ENV, ADDR_DEFAULT);
	for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
		if (strcmp(argv[optind], cmds[i].a.name) == 0)
			cmd = &cmds[i];
	if (!cmd)
		return args_usage_error(&tool, true, "unknown command '%s'",
		    argv[optind]);

	r = cmd->fn(&ctx, &cmd->a, argc - optind - 1, argv + optind + 1);
	ctx.conn = tr_conn_close(ctx.conn);
	return cli_exit(r);
}
