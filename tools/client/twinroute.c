/* SPDX-License-Identifier: ISC */
/* twinroute.c -- the user CLI: browse the catalog, place and follow orders */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "client.pb-c.h"
#include "config-build.h"

#include "common/args.h"
#include "common/cli.h"
#include "common/conn.h"
#include "common/errcode.h"
#include "common/macro.h"
#include "common/output.h"
#include "common/secret.h"

#define PROG "twinroute"
#define ADDR_DEFAULT "127.0.0.1:7420"
#define ADDR_ENV "TWINROUTE_ADDR"
#define MEMBER_ENV "TWINROUTE_MEMBER"
#define CLIENT_PROTO_VERSION 1
#define CLIENT_NAME "twinroute " TR_VERSION
#define CLIENT_TIMEOUT_MS 10000
/* The largest reply we read: a page of services with long descriptions. */
#define CLIENT_RECV_MAX (16u * 1024u * 1024u)
/* A server that keeps handing out pages is not followed for ever. */
#define CLIENT_PAGES_MAX 100000
/* Passwords longer than this are refused before they are sent. */
#define PASSWORD_MAX 1024
/* A generated idempotency key: 128 random bits in hex. */
#define KEY_BYTES 16

#define CLIENT_CLOSED "the server closed the connection"

struct ctx {
	const char *addr;
	struct tr_conn_opts opts;
	bool json;
	struct tr_conn *conn;
	struct cli_peer peer; /* once connected */
	uint64_t next_id;
	bool hello_done;
	const char *member;        /* --member, else $TWINROUTE_MEMBER */
	const char *password_file; /* --password-file */
	char password[PASSWORD_MAX + 2]; /* read at login; wiped */
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

static Twinroute__Client__Response *
resp_free_and_null(Twinroute__Client__Response *r)
{
	if (r)
		resp_free(r);
	return NULL;
}
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
static int cmd_order(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);
static int cmd_orders(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);
static int cmd_order_status(struct ctx *ctx, const struct args_cmd *cmd,
    int argc, char **argv);
static int cmd_cancel(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);
static int cmd_watch(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv);

static const struct cmd cmds[] = {
	{ { "categories", "", "list the categories that have services" },
	    cmd_categories },
	{ { "services", "[--category C] [--page-size N] [--limit N]",
	    "list services, following every page" }, cmd_services },
	{ { "search", "[--limit N] WORDS...",
	    "services matching every word, best first" }, cmd_search },
	{ { "show", "SERVICE_ID", "one service in full" }, cmd_show },
	{ { "order", "SERVICE_ID [--qty Q] [--note TEXT] [--key KEY]",
	    "order a service (log in first); a declined order exits 1" },
	    cmd_order },
	{ { "orders", "[--limit N]", "your orders, newest first" },
	    cmd_orders },
	{ { "order-status", "ID", "one of your orders, with its history" },
	    cmd_order_status },
	{ { "cancel", "ID", "cancel one of your orders not yet dispatched" },
	    cmd_cancel },
	{ { "watch", "", "print each change of your orders' states as it "
	    "happens, until interrupted" }, cmd_watch },
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
	} else if (c == 'm') {
		ctx->member = arg;
	} else if (c == 'p') {
		ctx->password_file = arg;
	}
}

static const struct option options[] = {
	{ "host", required_argument, NULL, 'H' },
	{ "tls", no_argument, NULL, 't' },
	{ "ca", required_argument, NULL, 'c' },
	{ "member", required_argument, NULL, 'm' },
	{ "password-file", required_argument, NULL, 'p' },
	{ NULL, 0, NULL, 0 },
};

static const struct args_tool tool = {
	.synopsis = "[-H HOST:PORT] [--tls] [--ca FILE] [--member N] "
	    "[--password-file FILE] [--json] COMMAND [ARGS]",
	.shortopts = "H:",
	.options = options,
	.option = client_option,
	.usage = "[-H HOST:PORT] [--tls] [--ca FILE] [--member N]\n"
	    "                 [--password-file FILE] [--json] [-h|--help] [-V]\n"
	    "                 COMMAND [ARGS]",
	.about = "Browse and search the services offered through twinrouted; "
	    "as a member,\norder them and follow your orders.",
	.options_help =
	    "  -H, --host HOST:PORT        the server (default: $" ADDR_ENV
	    ", else\n"
	    "                              " ADDR_DEFAULT "); an IPv6 address "
	    "goes in\n"
	    "                              brackets: [::1]:7420\n"
	    "      --tls                   speak TLS (the server is not "
	    "verified\n"
	    "                              without --ca)\n"
	    "      --ca FILE               verify the server's certificate and "
	    "name\n"
	    "                              against this CA (implies --tls)\n"
	    "      --member N              your member number, for the order "
	    "commands\n"
	    "                              (default: $" MEMBER_ENV ")\n"
	    "      --password-file FILE    read your password from the first "
	    "line of\n"
	    "                              FILE\n",
	.options_width = 30,
	.print_commands = print_commands,
	.more =
	    "The order commands log in first, on every run: nothing is stored "
	    "between\nruns. The password comes from --password-file, else "
	    "from the terminal\n(not echoed), else from the first line of "
	    "standard input; never from the\ncommand line. Each order carries "
	    "an idempotency key (--key, else 128 random\nbits): running "
	    "order again with the same key and the same arguments\nwithin "
	    "24 hours returns the first order instead of placing another.\n",
	.exits = {
		[CLI_EXIT_REFUSED] = "the server refused the request or the "
		    "login, found nothing\n"
		    "     by that id, or declined the order",
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

static int
report_error(struct ctx *ctx, const Twinroute__Error *e)
{
	const char *msg = e->message && *e->message ? e->message :
	    "request refused";

	if (e->code == TWINROUTE__ERROR_CODE__ERR_AUTH)
		fprintf(stderr, PROG ": login failed: unknown member or wrong "
		    "password\n");
	else if (!ctx->hello_done &&
	    e->code == TWINROUTE__ERROR_CODE__ERR_VERSION)
		fprintf(stderr, PROG ": %s: the server does not speak protocol "
		    "version %d, the one " PROG " " TR_VERSION " speaks: %s "
		    "(%s)\n", ctx->addr, CLIENT_PROTO_VERSION, msg,
		    cli_error_code_name(e->code));
	else
		fprintf(stderr, PROG ": %s (%s)\n", msg, cli_error_code_name(e->code));
	return CLI_EXIT_REFUSED;
}

/* The requests this tool makes. */
enum xchg {
	XCHG_HELLO,
	XCHG_CATEGORIES,
	XCHG_SERVICES,
	XCHG_SERVICE,
	XCHG_SEARCH,
	XCHG_LOGIN,
	XCHG_PLACE_ORDER,
	XCHG_GET_ORDER,
	XCHG_LIST_ORDERS,
	XCHG_CANCEL_ORDER,
	XCHG_WATCH,
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
	[XCHG_LOGIN] = { TWINROUTE__CLIENT__REQUEST__BODY_LOGIN,
	    TWINROUTE__CLIENT__RESPONSE__BODY_LOGIN, "login reply" },
	[XCHG_PLACE_ORDER] = { TWINROUTE__CLIENT__REQUEST__BODY_PLACE_ORDER,
	    TWINROUTE__CLIENT__RESPONSE__BODY_ORDER, "order" },
	[XCHG_GET_ORDER] = { TWINROUTE__CLIENT__REQUEST__BODY_GET_ORDER,
	    TWINROUTE__CLIENT__RESPONSE__BODY_ORDER, "order" },
	[XCHG_LIST_ORDERS] = { TWINROUTE__CLIENT__REQUEST__BODY_LIST_ORDERS,
	    TWINROUTE__CLIENT__RESPONSE__BODY_ORDERS, "order list" },
	[XCHG_CANCEL_ORDER] = { TWINROUTE__CLIENT__REQUEST__BODY_CANCEL_ORDER,
	    TWINROUTE__CLIENT__RESPONSE__BODY_ORDER, "order" },
	[XCHG_WATCH] = { TWINROUTE__CLIENT__REQUEST__BODY_WATCH,
	    TWINROUTE__CLIENT__RESPONSE__BODY_WATCH, "watch reply" },
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
	case TWINROUTE__CLIENT__RESPONSE__BODY_LOGIN:
		return resp->login;
	case TWINROUTE__CLIENT__RESPONSE__BODY_ORDER:
		return resp->order;
	case TWINROUTE__CLIENT__RESPONSE__BODY_ORDERS:
		return resp->orders;
	case TWINROUTE__CLIENT__RESPONSE__BODY_WATCH:
		return resp->watch;
	case TWINROUTE__CLIENT__RESPONSE__BODY_EVENT:
		return resp->event;
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

/* One paged listing: how to ask for a page and what to do with its items. */
struct pager {
	enum xchg x;
	/* Set req's body to ask for page_size items (0: the server's
	 * default) after token (empty: from the start). */
	void (*ask)(void *arg, Twinroute__Client__Request *req,
	    ProtobufCBinaryData token, uint32_t page_size);
	/* The reply's item count and the next page's token (empty on the
	 * last page), pointing into the reply. */
	void (*page)(const Twinroute__Client__Response *resp, size_t *ret_n,
	    ProtobufCBinaryData *ret_next);
	/* Output the reply's first n items; <0 on ENOMEM. */
	int (*add)(void *arg, const Twinroute__Client__Response *resp,
	    size_t n);
};

/*
 * Follow a listing page by page to its last page, or until limit items
 * (0: no limit), asking for page_size items at a time (0: the server's
 * default). Returns CLI_EXIT_OK with the number of items output in
 * *ret_got, else the exit code after the message.
 */
static int
follow_pages(struct ctx *ctx, const struct pager *p, void *arg,
    uint32_t page_size, uint32_t limit, uint32_t *ret_got)
{
	_cleanup_free_ uint8_t *token = NULL;
	size_t token_len = 0;
	uint32_t got = 0;
	int r;

	for (unsigned pages = 0;; pages++) {
		_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
		Twinroute__Client__Request req =
		    TWINROUTE__CLIENT__REQUEST__INIT;
		ProtobufCBinaryData next;
		uint32_t want = page_size;
		size_t total, n;

		if (pages == CLIENT_PAGES_MAX)
			return cli_fail("%s: more than %d pages: giving up",
			    ctx->addr, CLIENT_PAGES_MAX);
		if (limit > 0 && (page_size == 0 || page_size > limit - got))
			want = limit - got;
		p->ask(arg, &req, (ProtobufCBinaryData){ .len = token_len,
		    .data = token }, want);
		r = call(ctx, &req, p->x, &resp);
		if (r != CLI_EXIT_OK)
			return r;
		p->page(resp, &total, &next);

		n = total;
		if (limit > 0 && n > limit - got)
			n = limit - got;
		if (p->add(arg, resp, n) < 0)
			return cli_fail("out of memory");
		got += (uint32_t)n;

		if (next.len == 0 || (limit > 0 && got >= limit))
			break;
		if (total == 0)
			return cli_fail("%s: an empty page that is not the "
			    "last", ctx->addr);
		free(token);
		token = malloc(next.len);
		if (!token)
			return cli_fail("out of memory");
		memcpy(token, next.data, next.len);
		token_len = next.len;
	}
	*ret_got = got;
	return CLI_EXIT_OK;
}

/* A listing: its request, kept across pages, and where its items go. */
struct listing {
	union {
		Twinroute__Client__ListServices services;
		Twinroute__Client__ListOrders orders;
	} req;
	json_object *json; /* --json: the array; else NULL */
	struct out_table *table;
};

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

static void
services_ask(void *arg, Twinroute__Client__Request *req,
    ProtobufCBinaryData token, uint32_t page_size)
{
	struct listing *l = arg;

	l->req.services.page_size = page_size;
	l->req.services.page_token = token;
	req->list_services = &l->req.services;
}

static void
services_page(const Twinroute__Client__Response *resp, size_t *ret_n,
    ProtobufCBinaryData *ret_next)
{
	*ret_n = resp->services->n_services;
	*ret_next = resp->services->next_page_token;
}

static int
services_add(void *arg, const Twinroute__Client__Response *resp, size_t n)
{
	const struct listing *l = arg;
	const Twinroute__Client__ServiceList *sl = resp->services;

	if (l->json)
		return out_json_add_services(l->json, sl->services, n);
	return table_add_services(l->table, sl->services, n, 0);
}

static const struct pager services_pager = {
	.x = XCHG_SERVICES,
	.ask = services_ask,
	.page = services_page,
	.add = services_add,
};

static int
cmd_services(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	static const char *const hdr[] = { "ID", "CATEGORY", "NAME", "PRICE",
	    "PROVIDER" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	_cleanup_(json_object_putp) json_object *a = NULL;
	struct args_opt opts[] = { { "category", NULL }, { "page-size", NULL },
	    { "limit", NULL } };
	struct listing l;
	uint32_t page_size = 0, limit = 0, got;
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
	l = (struct listing){ .req.services =
	    TWINROUTE__CLIENT__LIST_SERVICES__INIT, .json = a, .table = t };
	l.req.services.category = opts[0].value;
	r = follow_pages(ctx, &services_pager, &l, page_size, limit, &got);
	if (r != CLI_EXIT_OK)
		return r;
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

/* ---- members and orders ---------------------------------------------- */

/* The first line of the password file into ctx->password. */
static int
read_password_file(struct ctx *ctx)
{
	const char *path = ctx->password_file;
	size_t len = 0;
	char *nl;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return args_usage_error(&tool, false, "--password-file %s: %s",
		    path, strerror(errno));
	while (len < sizeof(ctx->password) - 1) {
		ssize_t n = read(fd, ctx->password + len,
		    sizeof(ctx->password) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return cli_fail("cannot read %s: %s", path, strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (memchr(ctx->password, '\n', len))
			break;
	}
	close(fd);
	ctx->password[len] = '\0';
	nl = strchr(ctx->password, '\n');
	if (nl)
		*nl = '\0';
	else if (len == sizeof(ctx->password) - 1)
		return args_usage_error(&tool, false, "--password-file %s: the "
		    "password is longer than %d bytes", path, PASSWORD_MAX);
	len = strlen(ctx->password);
	if (len > 0 && ctx->password[len - 1] == '\r')
		ctx->password[--len] = '\0';
	if (len == 0)
		return args_usage_error(&tool, false, "--password-file %s: no "
		    "password on its first line", path);
	if (len > PASSWORD_MAX)
		return args_usage_error(&tool, false, "--password-file %s: the "
		    "password is longer than %d bytes", path, PASSWORD_MAX);
	return CLI_GO_ON;
}

/* The member's password: from the file, the terminal, or stdin. */
static int
read_password(struct ctx *ctx)
{
	char prompt[128];
	int r;

	if (ctx->password_file)
		return read_password_file(ctx);
	snprintf(prompt, sizeof(prompt), "password for member %s: ",
	    ctx->member);
	r = secret_read(prompt, false, ctx->password, PASSWORD_MAX + 1);
	if (r == -ENODATA)
		return args_usage_error(&tool, false, "no password given (type "
		    "it, give it on standard input, or use --password-file)");
	if (r == -E2BIG)
		return args_usage_error(&tool, false, "the password is longer "
		    "than %d bytes", PASSWORD_MAX);
	if (r < 0)
		return cli_fail("cannot read the password: %s", strerror(-r));
	if (ctx->password[0] == '\0')
		return args_usage_error(&tool, false, "empty password");
	return CLI_GO_ON;
}

/*
 * Who logs in, and the password: read before connecting, so that nobody
 * typing is kept waiting on a connection. CLI_GO_ON or the exit code.
 */
static int
credentials(struct ctx *ctx)
{
	if (!ctx->member)
		ctx->member = getenv(MEMBER_ENV);
	if (!ctx->member || !*ctx->member)
		return args_usage_error(&tool, false, "no member number: give "
		    "--member N or set $" MEMBER_ENV);
	return read_password(ctx);
}

/* Connect, say hello and log in. CLI_EXIT_OK or the exit code. */
static int
login(struct ctx *ctx)
{
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	Twinroute__Client__Request req = TWINROUTE__CLIENT__REQUEST__INIT;
	Twinroute__Client__Login li = TWINROUTE__CLIENT__LOGIN__INIT;
	int r;

	li.member = unconst(ctx->member);
	li.password = ctx->password;
	req.login = &li;
	r = call(ctx, &req, XCHG_LOGIN, &resp);
	OPENSSL_cleanse(ctx->password, sizeof(ctx->password));
	return r;
}

/* credentials() and login(): what every order command does first. */
static int
member_session(struct ctx *ctx)
{
	int r = credentials(ctx);

	if (r >= 0)
		return r;
	return login(ctx);
}

/* "order 42 AUTHORIZED: ..." or the order as JSON. */
static int
print_order(const struct ctx *ctx, const Twinroute__Order *o, bool history)
{
	static const char *const hdr[] = { "TIME", "STATE", "CAUSE" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	char line[1024];

	if (ctx->json)
		return cli_print_json(out_json_order(o));
	printf("%s\n", out_order_line(o, line, sizeof(line)));
	if (!history || o->n_history == 0)
		return CLI_EXIT_OK;
	if (o->note && *o->note)
		printf("note: %s\n", o->note);
	printf("\n");
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_max(t, 2, 0);
	for (size_t i = 0; i < o->n_history; i++) {
		const Twinroute__OrderTransition *h = o->history[i];
		char when[OUT_BUF_SIZE];
		const char *row[] = { out_time_ms(h->unix_ms, when,
		    sizeof(when)), out_order_state(h->state), h->cause };

		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

/* KEY_BYTES random bytes in hex. 0 or -EIO. */
static int
random_key(char *buf, size_t size)
{
	uint8_t raw[KEY_BYTES];

	if (size < 2 * KEY_BYTES + 1 || RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(buf + 2 * i, size - 2 * i, "%02x", raw[i]);
	return 0;
}

static int
cmd_order(struct ctx *ctx, const struct args_cmd *cmd, int argc, char **argv)
{
	static const char *const posnames[] = { "SERVICE_ID" };
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	struct args_opt opts[] = { { "qty", NULL }, { "note", NULL },
	    { "key", NULL } };
	Twinroute__Client__Request req = TWINROUTE__CLIENT__REQUEST__INIT;
	Twinroute__Client__PlaceOrder po = TWINROUTE__CLIENT__PLACE_ORDER__INIT;
	char key[2 * KEY_BYTES + 1];
	const Twinroute__Order *o;
	uint32_t qty = 1;
	char *pos[1];
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .opts = opts,
	    .nopts = ELEMENTSOF(opts), .pos = pos, .npos_min = 1,
	    .npos_max = 1, .posnames = posnames, .json = &ctx->json },
	    argc, argv, NULL);
	if (r >= 0)
		return r;
	r = opt_count(cmd, &opts[0], &qty);
	if (r >= 0)
		return r;
	if (opts[2].value) {
		if (!*opts[2].value)
			return args_cmd_error(cmd, "--key must not be empty");
		po.idempotency_key = opts[2].value;
	} else {
		if (random_key(key, sizeof(key)) < 0)
			return cli_fail("cannot draw a random idempotency key");
		po.idempotency_key = key;
	}
	po.service_id = pos[0];
	po.quantity = qty;
	if (opts[1].value)
		po.note = opts[1].value;

	r = member_session(ctx);
	if (r != CLI_EXIT_OK)
		return r;
	req.place_order = &po;
	r = call(ctx, &req, XCHG_PLACE_ORDER, &resp);
	if (r == CLI_EXIT_UNREACHABLE)
		fprintf(stderr, PROG ": the order may have been placed: run the "
		    "same order with --key %s to find out without ordering "
		    "twice\n", po.idempotency_key);
	if (r != CLI_EXIT_OK)
		return r;
	o = resp->order;
	if (ctx->json) {
		json_object *j = out_json_order(o);

		/* The key to retry with, whether or not the server echoes it. */
		if (j)
			json_object_object_add(j, "idempotency_key",
			    out_json_string(po.idempotency_key));
		r = cli_print_json(j);
	} else {
		r = print_order(ctx, o, false);
	}
	if (r == CLI_EXIT_OK &&
	    o->state == TWINROUTE__ORDER_STATE__ORDER_DECLINED)
		return CLI_EXIT_REFUSED;
	return r;
}

static void
orders_ask(void *arg, Twinroute__Client__Request *req,
    ProtobufCBinaryData token, uint32_t page_size)
{
	struct listing *l = arg;

	l->req.orders.page_size = page_size;
	l->req.orders.page_token = token;
	req->list_orders = &l->req.orders;
}

static void
orders_page(const Twinroute__Client__Response *resp, size_t *ret_n,
    ProtobufCBinaryData *ret_next)
{
	*ret_n = resp->orders->n_orders;
	*ret_next = resp->orders->next_page_token;
}

/* Rows ID SERVICE NAME QTY AMOUNT STATE CREATED, or JSON objects. */
static int
orders_add(void *arg, const Twinroute__Client__Response *resp, size_t n)
{
	const struct listing *l = arg;
	const Twinroute__Client__OrderList *ol = resp->orders;

	for (size_t i = 0; i < n; i++) {
		const Twinroute__Order *o = ol->orders[i];

		if (l->json) {
			json_object *j = out_json_order(o);

			if (!j || json_object_array_add(l->json, j) < 0) {
				json_object_put(j);
				return -ENOMEM;
			}
		} else {
			char id[24], qty[16], amount[OUT_BUF_SIZE];
			char created[OUT_BUF_SIZE];
			const char *row[] = { id, o->service_id,
			    o->service_name, qty, out_price(o->amount, amount,
			    sizeof(amount)), out_order_state(o->state),
			    out_time_ms(o->created_unix_ms, created,
			    sizeof(created)) };

			snprintf(id, sizeof(id), "%" PRIu64, o->id);
			snprintf(qty, sizeof(qty), "%" PRIu32, o->quantity);
			if (out_table_add(l->table, row) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

static const struct pager orders_pager = {
	.x = XCHG_LIST_ORDERS,
	.ask = orders_ask,
	.page = orders_page,
	.add = orders_add,
};

static int
cmd_orders(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	static const char *const hdr[] = { "ID", "SERVICE", "NAME", "QTY",
	    "AMOUNT", "STATE", "CREATED" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	_cleanup_(json_object_putp) json_object *a = NULL;
	struct args_opt opts[] = { { "limit", NULL } };
	struct listing l;
	uint32_t limit = 0, got = 0;
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .opts = opts,
	    .nopts = ELEMENTSOF(opts), .json = &ctx->json }, argc, argv, NULL);
	if (r >= 0)
		return r;
	r = opt_count(cmd, &opts[0], &limit);
	if (r >= 0)
		return r;
	r = member_session(ctx);
	if (r != CLI_EXIT_OK)
		return r;

	if (ctx->json) {
		a = json_object_new_array();
		if (!a)
			return cli_fail("out of memory");
	} else {
		t = out_table_new(ELEMENTSOF(hdr), hdr);
		if (!t)
			return cli_fail("out of memory");
		out_table_set_align(t, 0, OUT_ALIGN_RIGHT);
		out_table_set_align(t, 3, OUT_ALIGN_RIGHT);
		out_table_set_align(t, 4, OUT_ALIGN_RIGHT);
	}
	l = (struct listing){ .req.orders = TWINROUTE__CLIENT__LIST_ORDERS__INIT,
	    .json = a, .table = t };
	r = follow_pages(ctx, &orders_pager, &l, 0, limit, &got);
	if (r != CLI_EXIT_OK)
		return r;
	if (a)
		return cli_print_json(TAKE_PTR(a));
	if (got == 0) {
		printf("no orders\n");
		return CLI_EXIT_OK;
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

/* order-status and cancel: one order by its number. */
static int
cmd_one_order(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv, enum xchg x)
{
	static const char *const posnames[] = { "ID" };
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	Twinroute__Client__Request req = TWINROUTE__CLIENT__REQUEST__INIT;
	Twinroute__Client__GetOrder go = TWINROUTE__CLIENT__GET_ORDER__INIT;
	Twinroute__Client__CancelOrder co =
	    TWINROUTE__CLIENT__CANCEL_ORDER__INIT;
	uint64_t id = 0;
	char *pos[1];
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .pos = pos,
	    .npos_min = 1, .npos_max = 1, .posnames = posnames,
	    .json = &ctx->json }, argc, argv, NULL);
	if (r >= 0)
		return r;
	r = args_order_id(cmd, pos[0], &id);
	if (r >= 0)
		return r;
	r = member_session(ctx);
	if (r != CLI_EXIT_OK)
		return r;
	if (x == XCHG_GET_ORDER) {
		go.id = id;
		req.get_order = &go;
	} else {
		co.id = id;
		req.cancel_order = &co;
	}
	r = call(ctx, &req, x, &resp);
	if (r != CLI_EXIT_OK)
		return r;
	return print_order(ctx, resp->order, x == XCHG_GET_ORDER);
}

static int
cmd_order_status(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	return cmd_one_order(ctx, cmd, argc, argv, XCHG_GET_ORDER);
}

static int
cmd_cancel(struct ctx *ctx, const struct args_cmd *cmd, int argc,
    char **argv)
{
	return cmd_one_order(ctx, cmd, argc, argv, XCHG_CANCEL_ORDER);
}

/*
 * SIGINT and SIGTERM end a watch with success. Every event line is
 * flushed when printed, so nothing is lost by leaving at once.
 */
static void
watch_on_signal(int sig)
{
	(void)sig;
	_exit(CLI_EXIT_OK);
}

/*
 * One pushed event: a line of text, or one line of JSON. A new order
 * comes from no state: NEW in text, null in JSON.
 */
static int
print_event(const struct ctx *ctx, const Twinroute__Client__OrderEvent *ev)
{
	const Twinroute__Order *o = ev->order;
	char when[OUT_BUF_SIZE];

	if (ctx->json) {
		_cleanup_(json_object_putp) json_object *j = OUT_JSON_OBJECT(
		    { "unix_ms", json_object_new_uint64(o->updated_unix_ms) },
		    { "id", json_object_new_uint64(o->id) });
		json_object *from = NULL;
		const char *s;

		if (!j)
			return cli_fail("out of memory");
		if (ev->from != TWINROUTE__ORDER_STATE__ORDER_STATE_UNSPECIFIED &&
		    !(from = out_json_string(out_order_state(ev->from))))
			return cli_fail("out of memory");
		if (json_object_object_add(j, "from", from) < 0 ||
		    json_object_object_add(j, "to",
		    out_json_string(out_order_state(o->state))) < 0 ||
		    json_object_object_add(j, "cause",
		    out_json_string(ev->cause)) < 0 ||
		    json_object_object_add(j, "order", out_json_order(o)) < 0)
			return cli_fail("out of memory");
		s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE);
		if (!s)
			return cli_fail("out of memory");
		printf("%s\n", s);
	} else {
		printf("%s order %" PRIu64 " %s -> %s%s%s\n",
		    out_time_ms(o->updated_unix_ms, when, sizeof(when)), o->id,
		    ev->from == TWINROUTE__ORDER_STATE__ORDER_STATE_UNSPECIFIED ?
		    "NEW" : out_order_state(ev->from), out_order_state(o->state),
		    ev->cause && *ev->cause ? " " : "",
		    ev->cause ? ev->cause : "");
	}
	if (fflush(stdout) != 0)
		return cli_exit(CLI_EXIT_OK);
	return CLI_GO_ON;
}

static int
cmd_watch(struct ctx *ctx, const struct args_cmd *cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Client__Response *resp = NULL;
	Twinroute__Client__Request req = TWINROUTE__CLIENT__REQUEST__INIT;
	Twinroute__Client__Watch w = TWINROUTE__CLIENT__WATCH__INIT;
	struct sigaction sa = { .sa_handler = watch_on_signal };
	int r;

	r = args_parse(cmd, &(const struct args_spec){ .json = &ctx->json },
	    argc, argv, NULL);
	if (r >= 0)
		return r;
	r = member_session(ctx);
	if (r != CLI_EXIT_OK)
		return r;
	/* After the password is read: the terminal echoes again by now. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	req.watch = &w;
	r = call(ctx, &req, XCHG_WATCH, &resp);
	if (r != CLI_EXIT_OK)
		return r;
	resp = resp_free_and_null(resp);
	if (!ctx->json)
		fprintf(stderr, PROG ": watching the orders of member %s; "
		    "interrupt to stop\n", ctx->member);

	for (;;) {
		_cleanup_free_ uint8_t *buf = NULL;
		uint32_t len;

		r = tr_conn_recv(ctx->conn, ctx->peer.recv_max, &buf, &len);
		if (r == -ETIMEDOUT)
			continue; /* a quiet spell: keep waiting */
		if (r == -ECONNRESET)
			return cli_fail("%s: %s", ctx->addr, CLIENT_CLOSED);
		if (r == -EPROTO && ctx->opts.tls) {
			char why[256];

			cli_tls_reason(why, sizeof(why));
			return cli_fail("%s: %s", ctx->addr, why);
		}
		if (r < 0)
			return cli_fail("%s: cannot read: %s", ctx->addr,
			    tr_strerror(r));
		resp = twinroute__client__response__unpack(NULL, len, buf);
		if (!resp)
			return cli_fail("%s: a message does not decode",
			    ctx->addr);
		if (resp->body_case == TWINROUTE__CLIENT__RESPONSE__BODY_ERROR &&
		    resp->error)
			return report_error(ctx, resp->error);
		if (resp->body_case != TWINROUTE__CLIENT__RESPONSE__BODY_EVENT ||
		    resp->id != 0)
			return cli_fail("%s: unexpected message (body %d, id "
			    "%" PRIu64 ") while watching", ctx->addr,
			    (int)resp->body_case, resp->id);
		if (!resp->event || !resp->event->order)
			return cli_fail("%s: an empty order event", ctx->addr);
		r = print_event(ctx, resp->event);
		if (r >= 0)
			return r;
		resp = resp_free_and_null(resp);
	}
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
	OPENSSL_cleanse(ctx.password, sizeof(ctx.password));
	return cli_exit(r);
}
