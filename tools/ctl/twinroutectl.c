/* SPDX-License-Identifier: ISC */
/* twinroutectl.c -- the admin CLI: one request to the control socket */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config-build.h"
#include "control.pb-c.h"

#include "common/args.h"
#include "common/catalog_import.h"
#include "common/cli.h"
#include "common/conn.h"
#include "common/errcode.h"
#include "common/macro.h"
#include "common/money.h"
#include "common/output.h"
#include "common/secret.h"
#include "ctl/ctl.h"
#include "fax/class1.h"
#include "vault/card.h"
#include "vault/envelope.h"

#define PROG "twinroutectl"
#define CONTROL_SOCKET_DEFAULT "/var/lib/twinroute/control.sock"
#define CONTROL_SOCKET_ENV "TWINROUTE_CONTROL"
/* An import of a large catalog waits for its commit. */
#define CTL_TIMEOUT_MS 60000
/* A backup of a large store takes as long as copying it. */
#define CTL_BACKUP_TIMEOUT_MS (24 * 3600 * 1000)

struct ctx {
	const char *socket;
	bool json;
};

static void
resp_free(Twinroute__Ctl__CtlResponse *r)
{
	twinroute__ctl__ctl_response__free_unpacked(r, NULL);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Twinroute__Ctl__CtlResponse *, resp_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tr_conn *, tr_conn_close)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct out_table *, out_table_free)

/* A control command as args.h sees it. */
static struct args_cmd
cmd_args(enum ctl_cmd cmd)
{
	return (struct args_cmd){ ctl_cmds[cmd].name, ctl_cmds[cmd].usage,
	    ctl_cmds[cmd].help };
}

static void
print_commands(FILE *f)
{
	for (size_t i = 0; i < ELEMENTSOF(ctl_cmds); i++) {
		struct args_cmd a = cmd_args((enum ctl_cmd)i);

		args_print_command(f, &a);
	}
}

static void
ctl_option(void *data, int c, char *arg)
{
	struct ctx *ctx = data;

	if (c == 's')
		ctx->socket = arg;
}

static const struct option options[] = {
	{ "socket", required_argument, NULL, 's' },
	{ NULL, 0, NULL, 0 },
};

static const struct args_tool tool = {
	.synopsis = "[-s SOCKET] [--json] COMMAND [ARGS]",
	.shortopts = "s:",
	.options = options,
	.option = ctl_option,
	.usage = "[-s SOCKET] [--json] [-h|--help] [-V] COMMAND [ARGS]",
	.about = "Manage a running twinrouted through its control socket.",
	.options_help =
	    "  -s, --socket SOCKET  the control socket (default: $" CONTROL_SOCKET_ENV ",\n"
	    "                       else " CONTROL_SOCKET_DEFAULT ")\n",
	.options_width = 23,
	.print_commands = print_commands,
	.more =
	    "catalog import reads JSON Lines, one object per line (FILE \"-\": stdin):\n"
	    "  {\"type\":\"provider\",\"id\":..,\"name\":..,\"email\":..,\"fax\":..,"
	    "\"active\":true}\n"
	    "  {\"type\":\"service\",\"id\":..,\"provider\":..,\"category\":..,\"name\":..,\n"
	    "   \"description\":..,\"price\":MINOR_UNITS,\"currency\":..,\"active\":true}\n"
	    "\"active\" and \"description\" may be left out.\n",
	.exits = {
		[CLI_EXIT_REFUSED] = "the daemon refused the request (the "
		    "message says why)",
		[CLI_EXIT_USAGE] = "usage error: bad or missing arguments, or a "
		    "bad import file",
		[CLI_EXIT_UNREACHABLE] = "the daemon cannot be reached, or the "
		    "protocol failed",
	},
};

/* A price in minor units: a non-negative integer. */
static int
parse_price(const char *s, int64_t *ret_minor, const char **ret_why)
{
	long long v;
	char *end;

	if (strpbrk(s, ".,")) {
		*ret_why = "must be an integer in minor units (1250 for 12.50)";
		return -EINVAL;
	}
	if (s[0] == '-') {
		*ret_why = "must not be negative";
		return -EINVAL;
	}
	if (s[0] < '0' || s[0] > '9') {
		*ret_why = "must be an integer in minor units";
		return -EINVAL;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE) {
		*ret_why = "is out of range";
		return -ERANGE;
	}
	if (errno != 0 || *end != '\0') {
		*ret_why = "must be an integer in minor units";
		return -EINVAL;
	}
	*ret_minor = v;
	return 0;
}

/*
 * Send req, read the reply. Returns CLI_EXIT_OK with *ret_resp set, or
 * the exit code after the message. The reply may carry an error: see
 * refused().
 */
static int
ctl_call(const struct ctx *ctx, Twinroute__Ctl__CtlRequest *req,
    Twinroute__Ctl__CtlResponse **ret_resp)
{
	_cleanup_(tr_conn_closep) struct tr_conn *c = NULL;
	const int timeout_ms = req->command == CTL_BACKUP ?
	    CTL_BACKUP_TIMEOUT_MS : CTL_TIMEOUT_MS;
	const struct cli_peer peer = {
		.name = ctx->socket,
		.limiter = "the control socket",
		.closed = "the daemon closed the connection without a reply",
		.send_max = CTL_FRAME_MAX,
		.recv_max = CTL_FRAME_MAX,
		.timeout_ms = timeout_ms,
	};
	struct tr_conn_opts opts = { .timeout_ms = timeout_ms };
	Twinroute__Ctl__CtlResponse *resp;
	ProtobufCMessage *reply;
	int r;

	req->id = 1;
	req->version = CTL_PROTO_VERSION;
	r = cli_request_fits(&peer, &req->base);
	if (r >= 0)
		return r;

	r = tr_conn_open_unix(ctx->socket, &opts, &c);
	if (r == -EACCES || r == -EPERM)
		return cli_fail("permission denied: %s (run as root, as the "
		    "daemon's user, or as a member of the control admin group)",
		    ctx->socket);
	if (r == -ENOENT || r == -ECONNREFUSED)
		return cli_fail("cannot connect to %s: %s (is twinrouted "
		    "running?)", ctx->socket, tr_strerror(r));
	if (r < 0)
		return cli_fail("cannot connect to %s: %s", ctx->socket,
		    tr_strerror(r));

	r = cli_exchange(c, &peer, &req->base,
	    &twinroute__ctl__ctl_response__descriptor, &reply);
	if (r != CLI_EXIT_OK)
		return r;
	resp = (Twinroute__Ctl__CtlResponse *)reply;
	/* A refusal sent before the request was read carries id 0. */
	if (resp->id != req->id && !(resp->id == 0 && resp->error &&
	    resp->error->code != TWINROUTE__ERROR_CODE__ERR_NONE)) {
		uint64_t id = resp->id;

		resp_free(resp);
		return cli_fail("%s: the reply answers request %" PRIu64
		    ", not %" PRIu64, ctx->socket, id, req->id);
	}
	*ret_resp = resp;
	return CLI_EXIT_OK;
}

static const char *
error_message(const Twinroute__Error *e)
{
	if (e->message && *e->message)
		return e->message;
	return cli_error_code_name(e->code);
}

/* The options of the commands; a command lists those it takes. */
enum opt {
	OPT_END = 0, /* ends a command's list */
	OPT_NAME,
	OPT_EMAIL,
	OPT_FAX,
	OPT_PROVIDER,
	OPT_CATEGORY,
	OPT_PRICE,
	OPT_CURRENCY,
	OPT_DESCRIPTION,
	OPT_ACTIVE,
	OPT_SHARES,
	OPT_THRESHOLD,
	OPT_KEY_FILE,
	OPT_AMOUNT,
	OPT_STATE,
	OPT_MEMBER,
	OPT_LIMIT,
	OPT_FROM,
	OPT_TO,
	OPT__COUNT,
};

/* As typed after "--"; for service update, also the update mask's names. */
static const char *const opt_names[OPT__COUNT] = {
	[OPT_NAME] = "name",
	[OPT_EMAIL] = "email",
	[OPT_FAX] = "fax",
	[OPT_PROVIDER] = "provider",
	[OPT_CATEGORY] = "category",
	[OPT_PRICE] = "price",
	[OPT_CURRENCY] = "currency",
	[OPT_DESCRIPTION] = "description",
	[OPT_ACTIVE] = "active",
	[OPT_SHARES] = "shares",
	[OPT_THRESHOLD] = "threshold",
	[OPT_KEY_FILE] = "key-file",
	[OPT_AMOUNT] = "amount",
	[OPT_STATE] = "state",
	[OPT_MEMBER] = "member",
	[OPT_LIMIT] = "limit",
	[OPT_FROM] = "from",
	[OPT_TO] = "to",
};

/* Options that take no value: a command lists those it takes as bits. */
enum flag {
	FLAG_REMOVE = 1u << 0,
	FLAG_CSV = 1u << 1,
};

static const struct {
	enum flag flag;
	const char *name;
} flag_names[] = {
	{ FLAG_REMOVE, "--remove" },
	{ FLAG_CSV, "--csv" },
};

#define CMD_OPTS_MAX 8
#define UPDATE_MASK_MAX 6

/* One run of a command: its arguments, the request made of them, the reply. */
struct run {
	struct args_cmd a;              /* for messages */
	char *val[OPT__COUNT];          /* option values; NULL: not given */
	char *pos[2];                   /* the ID, FILE, if it takes them */
	unsigned flags;                 /* enum flag: those given */
	Twinroute__Ctl__CtlRequest req;
	Twinroute__Provider provider;
	Twinroute__Service service;
	Twinroute__Money price;
	Twinroute__Ctl__Filter filter;
	char *mask[UPDATE_MASK_MAX];
	size_t nmask;
	struct import im;
	Twinroute__Ctl__Member member;
	Twinroute__Ctl__VaultInit vault_init;
	Twinroute__Ctl__CardCheck card_check;
	char secret[1100];              /* password or share; wiped */
	uint8_t envelope[ENVELOPE_MAX]; /* the card, sealed to the vault */
	uint8_t *cert_der;              /* provider cert: the certificate */
	char *backup_dir;               /* backup: DIR made absolute */
	Twinroute__Ctl__LedgerQuery ledger; /* ledger: the period */
	Twinroute__Ctl__CtlResponse *resp;
	const struct ctx *ctx;
};

static void
run_done(struct run *run)
{
	OPENSSL_cleanse(run->secret, sizeof(run->secret));
	OPENSSL_cleanse(run->envelope, sizeof(run->envelope));
	resp_freep(&run->resp);
	free(run->cert_der);
	free(run->backup_dir);
	import_free(&run->im);
}

/* What a command takes, how it makes its request, how it shows the reply. */
struct command {
	enum opt opts[CMD_OPTS_MAX]; /* in the order of its usage */
	size_t required;             /* the first this many must be given */
	unsigned flags;              /* enum flag: the flags it takes */
	const char *pos;             /* its positional argument, if any */
	const char *pos2;            /* a second one, if any */
	bool pos_optional;           /* the last of them may be left out */
	bool target;                 /* the first is what the request targets */
	int (*build)(struct run *run); /* CLI_GO_ON or the exit code */
	int (*print)(const struct ctx *ctx, const struct run *run);
};

/*
 * The reply's error, if any: print it and return CLI_EXIT_REFUSED; else
 * CLI_GO_ON. An error about one item of an import names its line.
 */
static int
refused(const struct run *run)
{
	const Twinroute__Error *e = run->resp->error;

	if (!e || e->code == TWINROUTE__ERROR_CODE__ERR_NONE)
		return CLI_GO_ON;
	if (e->index >= 0 && (size_t)e->index < run->im.n)
		fprintf(stderr, "%s:%lu: %s\n", run->im.file,
		    run->im.v[e->index]->line, error_message(e));
	else
		fprintf(stderr, PROG ": %s\n", error_message(e));
	return CLI_EXIT_REFUSED;
}

/* {"id": id, key: value}: what a change prints when the reply has no record. */
static int
print_json_ack(const char *id, const char *key, bool value)
{
	return cli_print_json(OUT_JSON_OBJECT(
	    { "id", out_json_string(id) },
	    { key, json_object_new_boolean(value) }));
}

/* "NOUN ID VERB": what a change prints as text. */
static int
print_done(const char *noun, const char *id, const char *verb)
{
	printf("%s %s %s\n", noun, id, verb);
	return CLI_EXIT_OK;
}

static int
print_status(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__Status *s = run->resp->status;
	char a[OUT_BUF_SIZE], b[OUT_BUF_SIZE];
	const int kw = 19;

	if (!s)
		return cli_fail("%s: the reply carries no status", ctx->socket);
	if (ctx->json)
		return cli_print_json(OUT_JSON_OBJECT(
		    { "version", out_json_string(s->version) },
		    { "pid", json_object_new_int64(s->pid) },
		    { "uptime_seconds",
			json_object_new_uint64(s->uptime_seconds) },
		    { "client_addr", out_json_string(s->client_addr) },
		    { "client_connections",
			json_object_new_int64(s->client_connections) },
		    { "control_connections",
			json_object_new_int64(s->control_connections) },
		    { "providers", json_object_new_int64(s->providers) },
		    { "services", json_object_new_int64(s->services) },
		    { "store_used_bytes",
			json_object_new_uint64(s->store_used_bytes) },
		    { "store_map_bytes",
			json_object_new_uint64(s->store_map_bytes) },
		    { "store_last_txn",
			json_object_new_uint64(s->store_last_txn) },
		    { "store_synced_txn",
			json_object_new_uint64(s->store_synced_txn) },
		    { "requests_served",
			json_object_new_uint64(s->requests_served) }));

	out_kv(stdout, kw, "version", "%s", s->version);
	out_kv(stdout, kw, "pid", "%" PRIu32, s->pid);
	out_kv(stdout, kw, "uptime", "%s",
	    out_duration(s->uptime_seconds, a, sizeof(a)));
	out_kv(stdout, kw, "client address", "%s",
	    *s->client_addr ? s->client_addr : "-");
	out_kv(stdout, kw, "client connections", "%" PRIu32,
	    s->client_connections);
	out_kv(stdout, kw, "control connections", "%" PRIu32,
	    s->control_connections);
	out_kv(stdout, kw, "providers", "%" PRIu32, s->providers);
	out_kv(stdout, kw, "services", "%" PRIu32, s->services);
	if (s->store_map_bytes > 0)
		out_kv(stdout, kw, "store", "%s used of %s (%.1f%%)",
		    out_size(s->store_used_bytes, a, sizeof(a)),
		    out_size(s->store_map_bytes, b, sizeof(b)),
		    100.0 * (double)s->store_used_bytes /
		    (double)s->store_map_bytes);
	else
		out_kv(stdout, kw, "store", "%s used",
		    out_size(s->store_used_bytes, a, sizeof(a)));
	out_kv(stdout, kw, "last txn", "%" PRIu64, s->store_last_txn);
	out_kv(stdout, kw, "synced txn", "%" PRIu64, s->store_synced_txn);
	out_kv(stdout, kw, "requests served", "%" PRIu64, s->requests_served);
	return CLI_EXIT_OK;
}

static int
build_provider_add(struct run *run)
{
	Twinroute__Provider *p = &run->provider;

	p->id = run->pos[0];
	p->name = run->val[OPT_NAME];
	p->email = run->val[OPT_EMAIL];
	p->fax = run->val[OPT_FAX];
	p->active = true;
	run->req.provider = p;
	return CLI_GO_ON;
}

static int
print_provider_added(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;

	if (!ctx->json)
		return print_done("provider", run->pos[0], "added");
	return cli_print_json(out_json_provider(resp->n_providers > 0 ?
	    resp->providers[0] : &run->provider));
}

/* The providers as a JSON array or a table. */
static int
print_providers(const struct ctx *ctx, Twinroute__Provider *const *v,
    size_t n)
{
	static const char *const hdr[] = { "ID", "NAME", "EMAIL", "FAX",
	    "ACTIVE" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	if (ctx->json)
		return cli_print_json(out_json_providers(v, n));
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *row[] = { v[i]->id, v[i]->name, v[i]->email,
		    v[i]->fax, out_yesno(v[i]->active) };

		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

/* The services as a JSON array or a table, with or without providers. */
static int
print_services(const struct ctx *ctx, Twinroute__Service *const *v,
    size_t n, bool with_provider)
{
	static const char *const hdr[] = { "ID", "PROVIDER", "CATEGORY", "NAME",
	    "PRICE", "ACTIVE" };
	static const char *const hdr_np[] = { "ID", "CATEGORY", "NAME", "PRICE",
	    "ACTIVE" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	size_t off = with_provider ? 0 : 1;

	if (ctx->json)
		return cli_print_json(out_json_services(v, n));
	if (with_provider)
		t = out_table_new(ELEMENTSOF(hdr), hdr);
	else
		t = out_table_new(ELEMENTSOF(hdr_np), hdr_np);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_align(t, 4 - off, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < n; i++) {
		const Twinroute__Service *s = v[i];
		char price[OUT_BUF_SIZE];
		const char *row[] = { s->id, with_provider ? s->provider_id :
		    s->id, s->category, s->name,
		    out_price(s->price, price, sizeof(price)),
		    out_yesno(s->active) };

		if (out_table_add(t, row + off) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

static int
print_provider_list(const struct ctx *ctx, const struct run *run)
{
	return print_providers(ctx, run->resp->providers,
	    run->resp->n_providers);
}

static int
print_provider_show(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	const Twinroute__Provider *p;
	const int kw = 6;

	if (resp->n_providers < 1)
		return cli_fail("%s: the reply carries no provider",
		    ctx->socket);
	p = resp->providers[0];
	if (ctx->json) {
		_cleanup_(json_object_putp) json_object *o = NULL;
		json_object *a;

		o = out_json_provider(p);
		a = out_json_services(resp->services, resp->n_services);
		if (!o || !a || json_object_object_add(o, "services", a) < 0) {
			json_object_put(a);
			return cli_fail("out of memory");
		}
		return cli_print_json(TAKE_PTR(o));
	}
	out_kv(stdout, kw, "id", "%s", p->id);
	out_kv(stdout, kw, "name", "%s", p->name);
	out_kv(stdout, kw, "email", "%s", p->email);
	out_kv(stdout, kw, "fax", "%s", p->fax);
	out_kv(stdout, kw, "active", "%s", out_yesno(p->active));
	if (resp->n_services == 0) {
		printf("\nno services\n");
		return CLI_EXIT_OK;
	}
	printf("\n");
	return print_services(ctx, resp->services, resp->n_services, false);
}

static int
print_provider_disabled(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;

	if (!ctx->json)
		return print_done("provider", run->pos[0], "disabled");
	if (resp->n_providers > 0)
		return cli_print_json(out_json_provider(resp->providers[0]));
	return print_json_ack(run->pos[0], "active", false);
}

/* --price and --currency, both given, into the service. */
static int
build_price(struct run *run)
{
	const char *why;

	if (parse_price(run->val[OPT_PRICE], &run->price.minor, &why) < 0)
		return args_cmd_error(&run->a, "--price %s: %s",
		    run->val[OPT_PRICE], why);
	run->price.currency = run->val[OPT_CURRENCY];
	run->service.price = &run->price;
	return CLI_GO_ON;
}

static int
build_service_add(struct run *run)
{
	Twinroute__Service *s = &run->service;
	int r;

	r = build_price(run);
	if (r >= 0)
		return r;
	s->id = run->pos[0];
	s->provider_id = run->val[OPT_PROVIDER];
	s->category = run->val[OPT_CATEGORY];
	s->name = run->val[OPT_NAME];
	if (run->val[OPT_DESCRIPTION])
		s->description = run->val[OPT_DESCRIPTION];
	s->active = true;
	run->req.service = s;
	return CLI_GO_ON;
}

/* The option o, if given, into *field and the update mask. */
static void
update_field(struct run *run, enum opt o, char **field)
{
	if (!run->val[o])
		return;
	*field = run->val[o];
	run->mask[run->nmask++] = unconst(opt_names[o]);
}

static int
build_service_update(struct run *run)
{
	Twinroute__Service *s = &run->service;
	const char *active = run->val[OPT_ACTIVE];
	int r;

	s->id = run->pos[0];
	update_field(run, OPT_PROVIDER, &s->provider_id);
	update_field(run, OPT_CATEGORY, &s->category);
	update_field(run, OPT_NAME, &s->name);
	update_field(run, OPT_DESCRIPTION, &s->description);
	if (!run->val[OPT_PRICE] != !run->val[OPT_CURRENCY])
		return args_cmd_error(&run->a,
		    "--price and --currency go together: give both");
	if (run->val[OPT_PRICE]) {
		r = build_price(run);
		if (r >= 0)
			return r;
		run->mask[run->nmask++] = unconst(opt_names[OPT_PRICE]);
	}
	if (active) {
		if (strcmp(active, "yes") == 0 || strcmp(active, "true") == 0)
			s->active = true;
		else if (strcmp(active, "no") == 0 ||
		    strcmp(active, "false") == 0)
			s->active = false;
		else
			return args_cmd_error(&run->a,
			    "--active takes yes or no, not '%s'", active);
		run->mask[run->nmask++] = unconst(opt_names[OPT_ACTIVE]);
	}
	if (run->nmask == 0)
		return args_cmd_error(&run->a, "nothing to change: give at "
		    "least one field");
	run->req.service = s;
	run->req.n_update_mask = run->nmask;
	run->req.update_mask = run->mask;
	return CLI_GO_ON;
}

/* A service from the reply, or the one sent, or an acknowledgement. */
static int
print_service_result(const struct ctx *ctx, const struct run *run,
    const Twinroute__Service *sent, const char *verb)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;

	if (!ctx->json)
		return print_done("service", run->pos[0], verb);
	if (resp->n_services > 0)
		return cli_print_json(out_json_service(resp->services[0]));
	if (sent)
		return cli_print_json(out_json_service(sent));
	return print_json_ack(run->pos[0], verb, true);
}

static int
print_service_added(const struct ctx *ctx, const struct run *run)
{
	return print_service_result(ctx, run, &run->service, "added");
}

static int
print_service_updated(const struct ctx *ctx, const struct run *run)
{
	return print_service_result(ctx, run, NULL, "updated");
}

static int
print_service_removed(const struct ctx *ctx, const struct run *run)
{
	if (!ctx->json)
		return print_done("service", run->pos[0], "removed");
	return print_json_ack(run->pos[0], "removed", true);
}

static int
build_service_list(struct run *run)
{
	if (!run->val[OPT_PROVIDER] && !run->val[OPT_CATEGORY])
		return CLI_GO_ON;
	if (run->val[OPT_PROVIDER])
		run->filter.provider_id = run->val[OPT_PROVIDER];
	if (run->val[OPT_CATEGORY])
		run->filter.category = run->val[OPT_CATEGORY];
	run->req.filter = &run->filter;
	return CLI_GO_ON;
}

static int
print_service_list(const struct ctx *ctx, const struct run *run)
{
	return print_services(ctx, run->resp->services,
	    run->resp->n_services, true);
}

static int
build_import(struct run *run)
{
	struct import *im = &run->im;
	const char *file = run->pos[0];
	bool use_stdin = strcmp(file, "-") == 0;
	size_t packed;
	FILE *f;
	int r;

	if (import_init(im, use_stdin ? "<stdin>" : file) < 0)
		return cli_fail("out of memory");
	if (use_stdin) {
		f = stdin;
	} else {
		f = fopen(file, "re");
		if (!f) {
			fprintf(stderr, PROG ": cannot open %s: %s\n", file,
			    strerror(errno));
			return CLI_EXIT_USAGE;
		}
	}
	r = import_read(im, f);
	if (r == -EIO)
		fprintf(stderr, "%s: read error: %s\n", im->file,
		    strerror(errno));
	if (f != stdin)
		fclose(f);
	if (r == -ENOMEM)
		return cli_fail("out of memory");
	if (r == -EIO)
		return CLI_EXIT_USAGE;
	if (r < 0) {
		fprintf(stderr, "%s\n", im->err);
		return CLI_EXIT_USAGE;
	}
	if (im->n == 0) {
		fprintf(stderr, "%s: nothing to import\n", im->file);
		return CLI_EXIT_USAGE;
	}
	if (import_items(im) < 0)
		return cli_fail("out of memory");
	run->req.n_items = im->n;
	run->req.items = im->items;
	packed = protobuf_c_message_get_packed_size(&run->req.base);
	if (packed > CTL_FRAME_MAX) {
		fprintf(stderr, "%s: too large for one import: %zu bytes once "
		    "packed, the control socket takes at most %u\n", im->file,
		    packed, CTL_FRAME_MAX);
		return CLI_EXIT_USAGE;
	}
	return CLI_GO_ON;
}

static int
print_imported(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	uint32_t np, ns;

	np = resp->imported ? resp->imported->providers : run->im.providers;
	ns = resp->imported ? resp->imported->services : run->im.services;
	if (ctx->json)
		return cli_print_json(OUT_JSON_OBJECT(
		    { "providers", json_object_new_int64(np) },
		    { "services", json_object_new_int64(ns) }));
	printf("imported %" PRIu32 " providers and %" PRIu32 " services\n",
	    np, ns);
	return CLI_EXIT_OK;
}


/* ---- members, cards, the vault --------------------------------------- */

/* A secret line into run->secret: the password, a share. */
static int
read_secret(struct run *run, const char *prompt, const char *what)
{
	int r = secret_read(prompt, false, run->secret, sizeof(run->secret));

	if (r == -ENODATA)
		return args_cmd_error(&run->a, "no %s given (type it, or give "
		    "it on standard input)", what);
	if (r == -E2BIG)
		return args_cmd_error(&run->a, "the %s is too long", what);
	if (r < 0)
		return cli_fail("cannot read the %s: %s", what, strerror(-r));
	return CLI_GO_ON;
}

/* The password, typed twice on a terminal, or one line of stdin. */
static int
read_password(struct run *run)
{
	char again[sizeof(run->secret)];
	int r;

	r = read_secret(run, "new password: ", "password");
	if (r >= 0)
		return r;
	if (!secret_interactive())
		return CLI_GO_ON;
	r = secret_read("again: ", false, again, sizeof(again));
	if (r < 0 || strcmp(again, run->secret) != 0) {
		OPENSSL_cleanse(again, sizeof(again));
		return cli_fail("the passwords do not match");
	}
	OPENSSL_cleanse(again, sizeof(again));
	return CLI_GO_ON;
}

static int
build_member_add(struct run *run)
{
	Twinroute__Ctl__Member *m = &run->member;
	int r;

	twinroute__ctl__member__init(m);
	m->number = run->pos[0];
	m->name = run->val[OPT_NAME];
	m->email = run->val[OPT_EMAIL];
	run->req.member = m;
	r = read_password(run);
	if (r >= 0)
		return r;
	run->req.password = run->secret;
	return CLI_GO_ON;
}

static int
build_member_passwd(struct run *run)
{
	int r = read_password(run);

	if (r >= 0)
		return r;
	run->req.password = run->secret;
	return CLI_GO_ON;
}

static json_object *
json_member(const Twinroute__Ctl__Member *m)
{
	return OUT_JSON_OBJECT(
	    { "number", out_json_string(m->number) },
	    { "name", out_json_string(m->name) },
	    { "email", out_json_string(m->email) },
	    { "active", json_object_new_boolean(m->active) },
	    { "created_unix", json_object_new_uint64(m->created_unix) });
}

static json_object *
json_card(const Twinroute__Ctl__CardInfo *ci)
{
	return OUT_JSON_OBJECT(
	    { "brand", out_json_string(ci->brand) },
	    { "last4", out_json_string(ci->last4) },
	    { "exp_month", json_object_new_int64(ci->exp_month) },
	    { "exp_year", json_object_new_int64(ci->exp_year) });
}

/* "visa ending 1111, expires 12/2028": all a display may show. */
static const char *
card_line(const Twinroute__Ctl__CardInfo *ci, char *buf, size_t len)
{
	snprintf(buf, len, "%s ending %s, expires %02" PRIu32 "/%04" PRIu32,
	    ci->brand, ci->last4, ci->exp_month, ci->exp_year);
	return buf;
}

static const Twinroute__Ctl__Member *
reply_member(const struct run *run)
{
	return run->resp->n_members > 0 ? run->resp->members[0] : NULL;
}

static int
print_member_changed(const struct ctx *ctx, const struct run *run,
    const char *verb)
{
	const Twinroute__Ctl__Member *m = reply_member(run);

	if (ctx->json)
		return m ? cli_print_json(json_member(m)) :
		    print_json_ack(run->pos[0], verb, true);
	return print_done("member", run->pos[0], verb);
}

static int
print_member_added(const struct ctx *ctx, const struct run *run)
{
	return print_member_changed(ctx, run, "added");
}

static int
print_member_disabled(const struct ctx *ctx, const struct run *run)
{
	return print_member_changed(ctx, run, "disabled");
}

static int
print_member_passwd(const struct ctx *ctx, const struct run *run)
{
	return print_member_changed(ctx, run, "password changed");
}

static int
print_member_list(const struct ctx *ctx, const struct run *run)
{
	static const char *const hdr[] = { "NUMBER", "NAME", "EMAIL",
	    "ACTIVE" };
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	if (ctx->json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; a && i < resp->n_members; i++)
			json_object_array_add(a, json_member(resp->members[i]));
		return a ? cli_print_json(a) : cli_fail("out of memory");
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	for (size_t i = 0; i < resp->n_members; i++) {
		const Twinroute__Ctl__Member *m = resp->members[i];
		const char *row[] = { m->number, m->name, m->email,
		    out_yesno(m->active) };

		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

/* What member show says of the card: from the vault, or why not. */
static const char *
card_state(const struct run *run, char *buf, size_t len)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;

	if (resp->card)
		return card_line(resp->card, buf, len);
	if (strcmp(resp->card_result, "NO_CARD") == 0)
		return "none";
	snprintf(buf, len, "unknown (%s)", resp->card_result);
	return buf;
}

static int
print_member_show(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__Member *m = reply_member(run);
	char buf[OUT_BUF_SIZE], card[OUT_BUF_SIZE];
	const int kw = 8;

	if (!m)
		return cli_fail("%s: the reply carries no member", ctx->socket);
	if (ctx->json) {
		_cleanup_(json_object_putp) json_object *o = json_member(m);

		if (!o)
			return cli_fail("out of memory");
		json_object_object_add(o, "card", run->resp->card ?
		    json_card(run->resp->card) : NULL);
		json_object_object_add(o, "card_result",
		    out_json_string(run->resp->card_result));
		return cli_print_json(TAKE_PTR(o));
	}
	out_kv(stdout, kw, "number", "%s", m->number);
	out_kv(stdout, kw, "name", "%s", m->name);
	out_kv(stdout, kw, "email", "%s", m->email);
	out_kv(stdout, kw, "active", "%s", out_yesno(m->active));
	out_kv(stdout, kw, "created", "%s",
	    out_time((time_t)m->created_unix, buf, sizeof(buf)));
	out_kv(stdout, kw, "card", "%s", card_state(run, card, sizeof(card)));
	return CLI_EXIT_OK;
}

/* Ask the vault for its enrolment key (a request of its own). */
static int
fetch_enrol_key(struct run *run, uint8_t pub[32])
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	Twinroute__Ctl__CtlRequest req = TWINROUTE__CTL__CTL_REQUEST__INIT;
	const Twinroute__Ctl__VaultStatus *vs;
	int r;

	req.command = CTL_VAULT_STATUS;
	r = ctl_call(run->ctx, &req, &resp);
	if (r != CLI_EXIT_OK)
		return r;
	if (resp->error && resp->error->code != TWINROUTE__ERROR_CODE__ERR_NONE) {
		fprintf(stderr, PROG ": %s\n", error_message(resp->error));
		return CLI_EXIT_REFUSED;
	}
	vs = resp->vault;
	if (!vs || !vs->initialized || vs->enrol_key.len != 32) {
		fprintf(stderr, PROG ": the vault is not initialized "
		    "(twinroutectl vault init)\n");
		return CLI_EXIT_REFUSED;
	}
	if (vs->sealed) {
		fprintf(stderr, PROG ": the vault is sealed (twinroutectl vault "
		    "unseal)\n");
		return CLI_EXIT_REFUSED;
	}
	memcpy(pub, vs->enrol_key.data, 32);
	return CLI_GO_ON;
}

/* Card fields from the terminal or stdin, checked, into *in. */
static int
read_card(struct run *run, struct card_input *in)
{
	char line[256];
	const char *why = NULL;
	int r;

	r = secret_read("card number: ", false, line, sizeof(line));
	if (r == 0 && card_normalize_number(line, in->number, &why) < 0)
		r = -EINVAL;
	if (r == 0) {
		r = secret_read("expiry (MM/YY): ", true, line, sizeof(line));
		if (r == 0 && card_parse_expiry(line, &in->exp_month,
		    &in->exp_year) < 0) {
			why = "expiry: not MM/YY";
			r = -EINVAL;
		}
	}
	if (r == 0) {
		r = secret_read("cardholder name: ", true, line, sizeof(line));
		if (r == 0 && strlen(line) >= sizeof(in->holder)) {
			why = "cardholder name: at most 64 bytes";
			r = -EINVAL;
		} else if (r == 0) {
			memcpy(in->holder, line, strlen(line) + 1);
		}
	}
	OPENSSL_cleanse(line, sizeof(line));
	if (r == 0 && card_check(in, time(NULL), &why) < 0)
		r = -EINVAL;
	if (r == -EINVAL)
		return args_cmd_error(&run->a, "%s", why);
	if (r == -ENODATA)
		return args_cmd_error(&run->a, "expected three lines: card "
		    "number, expiry (MM/YY), cardholder name");
	if (r == -E2BIG)
		return args_cmd_error(&run->a, "a line of the card is too long");
	if (r < 0)
		return cli_fail("cannot read the card: %s", strerror(-r));
	return CLI_GO_ON;
}

static int
build_card_set(struct run *run)
{
	struct card_input in = { 0 };
	uint8_t pub[32];
	size_t len = 0;
	int r;

	/* Read first, then ask for the key: a typing person is not kept
	 * waiting on a connection. */
	r = read_card(run, &in);
	if (r < 0)
		r = fetch_enrol_key(run, pub);
	if (r < 0 && envelope_seal(pub, run->pos[0], &in, run->envelope,
	    sizeof(run->envelope), &len) < 0)
		r = cli_fail("cannot seal the card for the vault");
	OPENSSL_cleanse(&in, sizeof(in));
	if (r >= 0)
		return r;
	run->req.card_envelope.data = run->envelope;
	run->req.card_envelope.len = len;
	return CLI_GO_ON;
}

static int
print_card(const struct ctx *ctx, const struct run *run, const char *verb)
{
	const Twinroute__Ctl__CardInfo *ci = run->resp->card;
	char buf[OUT_BUF_SIZE];

	if (!ci)
		return cli_fail("%s: the reply carries no card", ctx->socket);
	if (ctx->json)
		return cli_print_json(json_card(ci));
	if (verb)
		printf("card of member %s %s: %s\n", run->pos[0], verb,
		    card_line(ci, buf, sizeof(buf)));
	else
		printf("%s\n", card_line(ci, buf, sizeof(buf)));
	return CLI_EXIT_OK;
}

static int
print_card_set(const struct ctx *ctx, const struct run *run)
{
	return print_card(ctx, run, "set");
}

static int
print_card_show(const struct ctx *ctx, const struct run *run)
{
	return print_card(ctx, run, NULL);
}

static int
print_card_removed(const struct ctx *ctx, const struct run *run)
{
	if (ctx->json)
		return print_json_ack(run->pos[0], "removed", true);
	printf("card of member %s removed\n", run->pos[0]);
	return CLI_EXIT_OK;
}

static int
build_card_check(struct run *run)
{
	const char *why = "must be positive";
	int64_t amount = 0;

	if (parse_price(run->val[OPT_AMOUNT], &amount, &why) < 0 || amount <= 0)
		return args_cmd_error(&run->a, "--amount %s: %s",
		    run->val[OPT_AMOUNT], why);
	twinroute__ctl__card_check__init(&run->card_check);
	run->card_check.amount = amount;
	run->card_check.currency = run->val[OPT_CURRENCY];
	run->req.card_check = &run->card_check;
	return CLI_GO_ON;
}

/* OK exits 0; a decline is printed and exits 1 (CLI_EXIT_REFUSED). */
static int
print_card_check(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	bool ok = strcmp(resp->card_result, "OK") == 0;
	char buf[OUT_BUF_SIZE];
	int r;

	if (ctx->json) {
		_cleanup_(json_object_putp) json_object *o = OUT_JSON_OBJECT(
		    { "result", out_json_string(resp->card_result) },
		    { "detail", out_json_string(resp->card_detail) });

		if (!o)
			return cli_fail("out of memory");
		if (resp->card)
			json_object_object_add(o, "card", json_card(resp->card));
		r = cli_print_json(TAKE_PTR(o));
		return r == CLI_EXIT_OK && !ok ? CLI_EXIT_REFUSED : r;
	}
	if (ok)
		printf("OK: %s\n", resp->card ? card_line(resp->card, buf,
		    sizeof(buf)) : "approved");
	else
		printf("%s%s%s\n", resp->card_result,
		    resp->card_detail[0] ? ": " : "", resp->card_detail);
	return ok ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
}

static int
parse_count(struct run *run, enum opt o, uint32_t *ret)
{
	char *end;
	long v;

	if (!run->val[o])
		return CLI_GO_ON;
	errno = 0;
	v = strtol(run->val[o], &end, 10);
	if (errno || *end || v < 1 || v > 16)
		return args_cmd_error(&run->a, "--%s %s: a number from 1 to 16",
		    opt_names[o], run->val[o]);
	*ret = (uint32_t)v;
	return CLI_GO_ON;
}

static int
build_vault_init(struct run *run)
{
	Twinroute__Ctl__VaultInit *vi = &run->vault_init;
	int r;

	twinroute__ctl__vault_init__init(vi);
	if (run->val[OPT_KEY_FILE]) {
		if (run->val[OPT_SHARES] || run->val[OPT_THRESHOLD])
			return args_cmd_error(&run->a, "--key-file goes without "
			    "--shares and --threshold");
		if (run->val[OPT_KEY_FILE][0] != '/')
			return args_cmd_error(&run->a, "--key-file: give an "
			    "absolute path");
		vi->key_file = run->val[OPT_KEY_FILE];
	}
	r = parse_count(run, OPT_SHARES, &vi->shares);
	if (r < 0)
		r = parse_count(run, OPT_THRESHOLD, &vi->threshold);
	if (r >= 0)
		return r;
	run->req.vault_init = vi;
	return CLI_GO_ON;
}

static int
print_vault_init(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	const Twinroute__Ctl__VaultStatus *vs = resp->vault;

	if (ctx->json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; a && i < resp->n_shares; i++)
			json_object_array_add(a, out_json_string(resp->shares[i]));
		return cli_print_json(OUT_JSON_OBJECT(
		    { "shares", a },
		    { "threshold", json_object_new_int64(vs ? vs->threshold : 0) },
		    { "sealed", json_object_new_boolean(vs && vs->sealed) }));
	}
	if (resp->n_shares == 0) {
		printf("vault initialized; its key is in %s and it is unsealed\n",
		    run->val[OPT_KEY_FILE] ? run->val[OPT_KEY_FILE] : "the key file");
		return CLI_EXIT_OK;
	}
	printf("vault initialized: %zu key shares, any %" PRIu32 " of them "
	    "unseal it.\nEach share is shown this once and stored nowhere: give "
	    "each to a different custodian.\n\n", resp->n_shares,
	    vs ? vs->threshold : 0);
	for (size_t i = 0; i < resp->n_shares; i++)
		printf("share %zu: %s\n", i + 1, resp->shares[i]);
	printf("\nThe vault is sealed: unseal it with twinroutectl vault unseal, "
	    "one share at a time.\n");
	return CLI_EXIT_OK;
}

static int
build_vault_unseal(struct run *run)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	Twinroute__Ctl__CtlRequest req = TWINROUTE__CTL__CTL_REQUEST__INIT;
	int r;

	/* A vault kept by a key file unseals from it: no share to ask. */
	req.command = CTL_VAULT_STATUS;
	r = ctl_call(run->ctx, &req, &resp);
	if (r != CLI_EXIT_OK)
		return r;
	if (resp->vault && resp->vault->key_file)
		return CLI_GO_ON;
	r = read_secret(run, "key share: ", "share");
	if (r >= 0)
		return r;
	run->req.share = run->secret;
	return CLI_GO_ON;
}

static json_object *
json_vault(const Twinroute__Ctl__VaultStatus *vs)
{
	return OUT_JSON_OBJECT(
	    { "initialized", json_object_new_boolean(vs->initialized) },
	    { "sealed", json_object_new_boolean(vs->sealed) },
	    { "key_file", json_object_new_boolean(vs->key_file) },
	    { "shares", json_object_new_int64(vs->shares) },
	    { "threshold", json_object_new_int64(vs->threshold) },
	    { "progress", json_object_new_int64(vs->progress) },
	    { "key_version", json_object_new_int64(vs->key_version) },
	    { "cards", json_object_new_int64(vs->cards) });
}

static int
print_vault_status(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__VaultStatus *vs = run->resp->vault;
	char fp[3 * 8 + 1] = "";
	const int kw = 12;

	if (!vs)
		return cli_fail("%s: the reply carries no vault status",
		    ctx->socket);
	if (ctx->json)
		return cli_print_json(json_vault(vs));
	out_kv(stdout, kw, "initialized", "%s", out_yesno(vs->initialized));
	if (!vs->initialized)
		return CLI_EXIT_OK;
	out_kv(stdout, kw, "sealed", "%s", out_yesno(vs->sealed));
	if (vs->key_file)
		out_kv(stdout, kw, "key", "%s", "key file");
	else
		out_kv(stdout, kw, "key", "%" PRIu32 " shares, %" PRIu32
		    " to unseal", vs->shares, vs->threshold);
	if (vs->sealed && !vs->key_file)
		out_kv(stdout, kw, "unseal", "%" PRIu32 " of %" PRIu32
		    " shares given", vs->progress, vs->threshold);
	out_kv(stdout, kw, "key version", "%" PRIu32, vs->key_version);
	out_kv(stdout, kw, "cards", "%" PRIu32, vs->cards);
	for (size_t i = 0; i < 8 && i < vs->enrol_key.len; i++)
		snprintf(fp + 3 * i, sizeof(fp) - 3 * i, "%02x%s",
		    vs->enrol_key.data[i], i < 7 ? ":" : "");
	out_kv(stdout, kw, "enrol key", "%s...", fp);
	return CLI_EXIT_OK;
}

static int
print_vault_unseal(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__VaultStatus *vs = run->resp->vault;

	if (!vs)
		return cli_fail("%s: the reply carries no vault status",
		    ctx->socket);
	if (ctx->json)
		return cli_print_json(json_vault(vs));
	if (vs->sealed)
		printf("share accepted: %" PRIu32 " of %" PRIu32 " given; the "
		    "vault is still sealed\n", vs->progress, vs->threshold);
	else
		printf("vault unsealed\n");
	return CLI_EXIT_OK;
}

static int
print_vault_sealed(const struct ctx *ctx, const struct run *run)
{
	if (ctx->json && run->resp->vault)
		return cli_print_json(json_vault(run->resp->vault));
	printf("vault sealed\n");
	return CLI_EXIT_OK;
}

static int
print_vault_rotated(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__VaultStatus *vs = run->resp->vault;
	uint32_t version = vs ? vs->key_version : 0;

	if (ctx->json)
		return cli_print_json(OUT_JSON_OBJECT(
		    { "key_version", json_object_new_int64(version) },
		    { "resealed", json_object_new_int64(run->resp->resealed) }));
	printf("data key rotated to version %" PRIu32 "; %" PRIu32 " cards "
	    "re-sealed under it\n", version, run->resp->resealed);
	return CLI_EXIT_OK;
}

static int
print_member_unlocked(const struct ctx *ctx, const struct run *run)
{
	return print_member_changed(ctx, run, "unlocked");
}

/* ---- orders ----------------------------------------------------------- */

/* A positive whole number, at most max. 0 or -EINVAL. */
static int
parse_id(const char *s, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* show and cancel: the ID must be an order number. */
static int
build_order_id(struct run *run)
{
	uint64_t id;

	if (parse_id(run->pos[0], UINT64_MAX, &id) < 0)
		return args_cmd_error(&run->a, "'%s' is not an order number",
		    run->pos[0]);
	return CLI_GO_ON;
}

static int
build_order_list(struct run *run)
{
	Twinroute__Ctl__Filter *f = &run->filter;
	uint64_t limit;

	if (run->val[OPT_STATE] &&
	    out_order_state_parse(run->val[OPT_STATE], &f->state) < 0) {
		char names[512];

		return args_cmd_error(&run->a, "--state %s: not a state; one "
		    "of %s", run->val[OPT_STATE],
		    out_order_state_names(names, sizeof(names)));
	}
	if (run->val[OPT_LIMIT]) {
		if (parse_id(run->val[OPT_LIMIT], UINT32_MAX, &limit) < 0)
			return args_cmd_error(&run->a, "--limit wants a "
			    "positive integer, not '%s'", run->val[OPT_LIMIT]);
		f->limit = (uint32_t)limit;
	}
	if (run->val[OPT_MEMBER])
		f->member = run->val[OPT_MEMBER];
	if (run->val[OPT_PROVIDER])
		f->provider_id = run->val[OPT_PROVIDER];
	run->req.filter = f;
	return CLI_GO_ON;
}

/* Does the order have a card fax track to show? */
static bool
order_has_fax(const Twinroute__Order *o)
{
	return o->fax_state != TWINROUTE__FAX_STATE__FAX_NONE || o->fax;
}

/* The page coding of a fax report: T.4 1-D (MH) or 2-D (MR). */
static const char *
fax_coding(uint32_t compression)
{
	switch (compression) {
	case 1:
		return "1-D (MH)";
	case 2:
		return "2-D (MR)";
	default:
		return "?";
	}
}

/* A call's length: "12.3s" under a minute, else out_duration(). */
static const char *
fax_call_time(uint64_t ms, char *buf, size_t size)
{
	if (ms < 60000) {
		snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "s", ms / 1000,
		    ms % 1000 / 100);
		return buf;
	}
	return out_duration(ms / 1000, buf, size);
}

/* The card fax lines of an order: its track, and its last call if any. */
static void
print_fax_lines(const Twinroute__Order *o, int kw)
{
	const Twinroute__FaxReport *r = o->fax;
	char buf[OUT_BUF_SIZE];

	out_kv(stdout, kw, "fax", "%s", out_fax_state(o->fax_state));
	if (!r)
		return;
	if (r->fax_ref && *r->fax_ref)
		out_kv(stdout, kw, "fax ref", "%s", r->fax_ref);
	if (!r->result || !*r->result)
		return; /* no call yet */
	out_kv(stdout, kw, "fax result", "%s%s%s", r->result,
	    *r->reason ? ": " : "", r->reason);
	if (*r->remote_csi)
		out_kv(stdout, kw, "remote CSI", "%s", r->remote_csi);
	if (r->bps)
		out_kv(stdout, kw, "fax rate", "%" PRIu32 " bps", r->bps);
	out_kv(stdout, kw, "fax pages", "%" PRIu32 " confirmed", r->pages);
	out_kv(stdout, kw, "call time", "%s",
	    fax_call_time(r->duration_ms, buf, sizeof(buf)));
	if (*r->modem)
		out_kv(stdout, kw, "modem", "%s", r->modem);
	if (r->compression)
		out_kv(stdout, kw, "coding", "%s", fax_coding(r->compression));
	if (r->page_unix > 0)
		out_kv(stdout, kw, "page time", "%s",
		    out_time((time_t)r->page_unix, buf, sizeof(buf)));
	if (r->unix_ms)
		out_kv(stdout, kw, "call ended", "%s",
		    out_time_ms(r->unix_ms, buf, sizeof(buf)));
	out_kv(stdout, kw, "dials / tries", "%" PRIu32 " / %" PRIu32,
	    r->dials, r->tries);
}

/* The orders of the reply as a JSON array. */
static int
print_orders_json(Twinroute__Order *const *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < n; i++) {
		json_object *o = out_json_order(v[i]);

		if (!o || json_object_array_add(a, o) < 0) {
			json_object_put(o);
			json_object_put(a);
			a = NULL;
		}
	}
	return a ? cli_print_json(a) : cli_fail("out of memory");
}

static int
print_order_list(const struct ctx *ctx, const struct run *run)
{
	static const char *const hdr[] = { "ID", "MEMBER", "SERVICE", "QTY",
	    "AMOUNT", "STATE", "CREATED" };
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	if (ctx->json)
		return print_orders_json(resp->orders, resp->n_orders);
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_align(t, 0, OUT_ALIGN_RIGHT);
	out_table_set_align(t, 3, OUT_ALIGN_RIGHT);
	out_table_set_align(t, 4, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < resp->n_orders; i++) {
		const Twinroute__Order *o = resp->orders[i];
		char id[24], qty[16], amount[OUT_BUF_SIZE], created[OUT_BUF_SIZE];
		const char *row[] = { id, o->member, o->service_id, qty,
		    out_price(o->amount, amount, sizeof(amount)),
		    out_order_state(o->state),
		    out_time_ms(o->created_unix_ms, created, sizeof(created)) };

		snprintf(id, sizeof(id), "%" PRIu64, o->id);
		snprintf(qty, sizeof(qty), "%" PRIu32, o->quantity);
		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

static const Twinroute__Order *
reply_order(const struct ctx *ctx, const struct run *run)
{
	if (run->resp->n_orders > 0 && run->resp->orders[0])
		return run->resp->orders[0];
	cli_fail("%s: the reply carries no order", ctx->socket);
	return NULL;
}

/* An order's history; with a FAX column when it has a card fax. */
static int
print_history(const Twinroute__Order *o)
{
	static const char *const hdr[] = { "TIME", "STATE", "FAX", "CAUSE" };
	static const char *const hdr_nf[] = { "TIME", "STATE", "CAUSE" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	bool fax = order_has_fax(o);
	char buf[OUT_BUF_SIZE];

	if (fax)
		t = out_table_new(ELEMENTSOF(hdr), hdr);
	else
		t = out_table_new(ELEMENTSOF(hdr_nf), hdr_nf);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_max(t, fax ? 3 : 2, 0);
	for (size_t i = 0; i < o->n_history; i++) {
		const Twinroute__OrderTransition *h = o->history[i];
		const char *row[] = { out_time_ms(h->unix_ms, buf, sizeof(buf)),
		    out_order_state(h->state), h->fax ==
		    TWINROUTE__FAX_STATE__FAX_NONE ? "-" :
		    out_fax_state(h->fax), h->cause };
		const char *row_nf[] = { row[0], row[1], row[3] };

		if (out_table_add(t, fax ? row : row_nf) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

static int
print_order_show(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Order *o = reply_order(ctx, run);
	char buf[OUT_BUF_SIZE];
	const int kw = 15;

	if (!o)
		return CLI_EXIT_UNREACHABLE;
	if (ctx->json)
		return cli_print_json(out_json_order(o));
	out_kv(stdout, kw, "id", "%" PRIu64, o->id);
	out_kv(stdout, kw, "member", "%s", o->member);
	out_kv(stdout, kw, "service", "%s (%s)", o->service_name,
	    o->service_id);
	out_kv(stdout, kw, "provider", "%s", o->provider_id);
	out_kv(stdout, kw, "quantity", "%" PRIu32, o->quantity);
	out_kv(stdout, kw, "unit price", "%s",
	    out_price(o->unit_price, buf, sizeof(buf)));
	out_kv(stdout, kw, "amount", "%s",
	    out_price(o->amount, buf, sizeof(buf)));
	if (o->note && *o->note)
		out_kv(stdout, kw, "note", "%s", o->note);
	out_kv(stdout, kw, "state", "%s", out_order_state(o->state));
	if (o->card_brand && *o->card_brand)
		out_kv(stdout, kw, "card", "%s ending %s", o->card_brand,
		    o->card_last4);
	if (o->decline_reason && *o->decline_reason)
		out_kv(stdout, kw, "decline reason", "%s", o->decline_reason);
	if (order_has_fax(o))
		print_fax_lines(o, kw);
	out_kv(stdout, kw, "created", "%s",
	    out_time_ms(o->created_unix_ms, buf, sizeof(buf)));
	out_kv(stdout, kw, "updated", "%s",
	    out_time_ms(o->updated_unix_ms, buf, sizeof(buf)));
	if (o->n_history == 0)
		return CLI_EXIT_OK;
	printf("\n");
	return print_history(o);
}

static int
print_order_cancelled(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Order *o;

	if (!ctx->json)
		return print_done("order", run->pos[0], "cancelled");
	o = reply_order(ctx, run);
	return o ? cli_print_json(out_json_order(o)) : CLI_EXIT_UNREACHABLE;
}

static int
print_confirmation_resent(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Order *o;

	if (!ctx->json)
		return print_done("order", run->pos[0],
		    "queued for a new confirmation");
	o = reply_order(ctx, run);
	return o ? cli_print_json(out_json_order(o)) : CLI_EXIT_UNREACHABLE;
}

static json_object *
mail_entry_json(const Twinroute__Ctl__MailQueueEntry *e)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "order_id",
	    json_object_new_uint64(e->order_id));
	json_object_object_add(o, "member", json_object_new_string(e->member));
	json_object_object_add(o, "state", json_object_new_string(e->state));
	json_object_object_add(o, "attempts",
	    json_object_new_int64(e->attempts));
	json_object_object_add(o, "created_unix_ms",
	    json_object_new_uint64(e->created_unix_ms));
	json_object_object_add(o, "next_attempt_unix_ms",
	    json_object_new_uint64(e->next_attempt_unix_ms));
	json_object_object_add(o, "last_error",
	    json_object_new_string(e->last_error));
	json_object_object_add(o, "resend", json_object_new_boolean(e->resend));
	return o;
}

static int
print_queue_mail(const struct ctx *ctx, const struct run *run)
{
	static const char *const hdr[] = { "ORDER", "MEMBER", "STATE",
	    "ATTEMPTS", "CREATED", "NEXT", "LAST ERROR" };
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	const Twinroute__Ctl__MailStats *st = resp->mail_stats;
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	if (ctx->json) {
		json_object *root = json_object_new_object();
		json_object *a = json_object_new_array();

		if (!root || !a) {
			json_object_put(root);
			json_object_put(a);
			return cli_fail("out of memory");
		}
		for (size_t i = 0; i < resp->n_mail_queue; i++)
			json_object_array_add(a,
			    mail_entry_json(resp->mail_queue[i]));
		json_object_object_add(root, "queue", a);
		if (st) {
			json_object *js = json_object_new_object();

			json_object_object_add(js, "sent",
			    json_object_new_uint64(st->sent));
			json_object_object_add(js, "deferred",
			    json_object_new_uint64(st->deferred));
			json_object_object_add(js, "failed",
			    json_object_new_uint64(st->failed));
			json_object_object_add(js, "confirmed",
			    json_object_new_uint64(st->confirmed));
			json_object_object_add(js, "cancelled",
			    json_object_new_uint64(st->cancelled));
			json_object_object_add(js, "expired",
			    json_object_new_uint64(st->expired));
			json_object_object_add(js, "replies_refused",
			    json_object_new_uint64(st->replies_refused));
			json_object_object_add(js, "replies_ignored",
			    json_object_new_uint64(st->replies_ignored));
			json_object_object_add(js, "in_flight",
			    json_object_new_int64(st->in_flight));
			json_object_object_add(js, "awaiting",
			    json_object_new_uint64(st->awaiting));
			json_object_object_add(root, "stats", js);
		}
		return cli_print_json(root);
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_align(t, 0, OUT_ALIGN_RIGHT);
	out_table_set_align(t, 3, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < resp->n_mail_queue; i++) {
		const Twinroute__Ctl__MailQueueEntry *e = resp->mail_queue[i];
		char id[24], att[16], created[OUT_BUF_SIZE], next[OUT_BUF_SIZE];
		const char *row[] = { id, e->member, e->state, att,
		    out_time_ms(e->created_unix_ms, created, sizeof(created)),
		    e->next_attempt_unix_ms ? out_time_ms(
		    e->next_attempt_unix_ms, next, sizeof(next)) : "-",
		    e->last_error[0] ? e->last_error : "-" };

		snprintf(id, sizeof(id), "%" PRIu64, e->order_id);
		snprintf(att, sizeof(att), "%" PRIu32, e->attempts);
		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	if (resp->n_mail_queue > 0)
		out_table_print(t, stdout);
	else
		printf("no confirmation waiting to be sent\n");
	if (st)
		printf("since start: %" PRIu64 " sent, %" PRIu64 " deferred, %"
		    PRIu64 " failed; replies: %" PRIu64 " confirmed, %" PRIu64
		    " cancelled, %" PRIu64 " refused, %" PRIu64 " ignored; %"
		    PRIu64 " expired; %" PRIu64 " awaiting a reply\n",
		    st->sent, st->deferred, st->failed, st->confirmed,
		    st->cancelled, st->replies_refused, st->replies_ignored,
		    st->expired, st->awaiting);
	return CLI_EXIT_OK;
}

/* ---- providers: credentials, sessions, dispatch queue, ledger ------- */

/*
 * Add key to o: value may be NULL on purpose (JSON null), which
 * OUT_JSON_OBJECT() would take for ENOMEM. 0 or -ENOMEM.
 */
static int
json_add_nullable(json_object *o, const char *key, json_object *value)
{
	if (json_object_object_add(o, key, value) < 0) {
		json_object_put(value);
		return -ENOMEM;
	}
	return 0;
}

/* What provider cert, token and fax-ident print with --json. */
static int
print_provider_json_ack(const char *id, const char *key, json_object *value,
    bool removed)
{
	_cleanup_(json_object_putp) json_object *o = OUT_JSON_OBJECT(
	    { "provider", out_json_string(id) },
	    { "removed", json_object_new_boolean(removed) });

	if (!o) {
		json_object_put(value);
		return cli_fail("out of memory");
	}
	if (json_add_nullable(o, key, value) < 0)
		return cli_fail("out of memory");
	return cli_print_json(TAKE_PTR(o));
}

/* What provider cert, token and fax-ident print after --remove: KEY null
 * with --json, else "provider ID: WHAT". */
static int
print_provider_removed(const struct ctx *ctx, const struct run *run,
    const char *key, const char *what)
{
	if (ctx->json)
		return print_provider_json_ack(run->pos[0], key, NULL, true);
	printf("provider %s: %s\n", run->pos[0], what);
	return CLI_EXIT_OK;
}

/* Lowercase hex, no colons. buf: 2 * n + 1 bytes. */
static const char *
hex_string(const uint8_t *v, size_t n, char *buf)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = digits[v[i] >> 4];
		buf[2 * i + 1] = digits[v[i] & 15];
	}
	buf[2 * n] = '\0';
	return buf;
}

/*
 * The first certificate of a PEM file (at most CTL_CERT_MAX bytes), as
 * DER, into run->cert_der. CLI_GO_ON, else the exit code.
 */
static int
read_cert(struct run *run, const char *file)
{
	_cleanup_free_ char *buf = NULL;
	BIO *bio;
	X509 *x;
	FILE *f;
	size_t n;
	int len;
	unsigned char *p;

	f = fopen(file, "re");
	if (!f) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", file,
		    strerror(errno));
		return CLI_EXIT_USAGE;
	}
	buf = malloc(CTL_CERT_MAX + 1);
	if (!buf) {
		fclose(f);
		return cli_fail("out of memory");
	}
	n = fread(buf, 1, CTL_CERT_MAX + 1, f);
	if (ferror(f)) {
		fprintf(stderr, PROG ": %s: read error: %s\n", file,
		    strerror(errno));
		fclose(f);
		return CLI_EXIT_USAGE;
	}
	fclose(f);
	if (n > CTL_CERT_MAX) {
		fprintf(stderr, PROG ": %s: larger than %u KiB: not a "
		    "certificate file\n", file, CTL_CERT_MAX / 1024);
		return CLI_EXIT_USAGE;
	}
	bio = BIO_new_mem_buf(buf, (int)n);
	if (!bio)
		return cli_fail("out of memory");
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (!x) {
		fprintf(stderr, PROG ": %s: not a certificate: no PEM "
		    "\"-----BEGIN CERTIFICATE-----\" block that parses as "
		    "X.509\n", file);
		return CLI_EXIT_USAGE;
	}
	len = i2d_X509(x, NULL);
	if (len <= 0 || (unsigned)len > CTL_CERT_MAX) {
		X509_free(x);
		fprintf(stderr, PROG ": %s: the certificate cannot be encoded "
		    "in %u KiB\n", file, CTL_CERT_MAX / 1024);
		return CLI_EXIT_USAGE;
	}
	run->cert_der = malloc((size_t)len);
	if (!run->cert_der) {
		X509_free(x);
		return cli_fail("out of memory");
	}
	p = run->cert_der;
	len = i2d_X509(x, &p);
	X509_free(x);
	if (len <= 0)
		return cli_fail("%s: the certificate cannot be encoded", file);
	run->req.cert_der.data = run->cert_der;
	run->req.cert_der.len = (size_t)len;
	return CLI_GO_ON;
}

/*
 * provider cert and fax-ident: WHAT (the second argument) or --remove, one
 * of the two, into req.remove. CLI_GO_ON, else CLI_EXIT_USAGE after the
 * message.
 */
static int
build_pin_or_remove(struct run *run, const char *what)
{
	bool remove = run->flags & FLAG_REMOVE;

	if (remove && run->pos[1])
		return args_cmd_error(&run->a, "%s or --remove: one or the "
		    "other", what);
	if (!remove && !run->pos[1])
		return args_cmd_error(&run->a, "missing %s (or --remove)",
		    what);
	run->req.remove = remove;
	return CLI_GO_ON;
}

static int
build_provider_cert(struct run *run)
{
	int r = build_pin_or_remove(run, "FILE");

	if (r != CLI_GO_ON || run->req.remove)
		return r;
	return read_cert(run, run->pos[1]);
}

static int
print_provider_cert(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	char fp[2 * 32 + 1];

	if (run->req.remove)
		return print_provider_removed(ctx, run, "cert_sha256",
		    "certificate pin removed");
	if (resp->cert_sha256.len != 32)
		return cli_fail("%s: the reply carries no fingerprint",
		    ctx->socket);
	hex_string(resp->cert_sha256.data, 32, fp);
	if (ctx->json)
		return print_provider_json_ack(run->pos[0], "cert_sha256",
		    json_object_new_string(fp), false);
	printf("provider %s: certificate pinned, sha256:%s\n", run->pos[0], fp);
	return CLI_EXIT_OK;
}

static int
build_provider_token(struct run *run)
{
	run->req.remove = run->flags & FLAG_REMOVE;
	return CLI_GO_ON;
}

static int
print_provider_token(const struct ctx *ctx, const struct run *run)
{
	const char *token = run->resp->provider_token;

	if (run->req.remove)
		return print_provider_removed(ctx, run, "token",
		    "token removed");
	if (!token || !*token)
		return cli_fail("%s: the reply carries no token", ctx->socket);
	if (ctx->json)
		return print_provider_json_ack(run->pos[0], "token",
		    json_object_new_string(token), false);
	printf("provider %s: new token (any earlier one no longer works):\n"
	    "%s\n"
	    "It is shown this once: the daemon keeps only its SHA-256 hash. "
	    "Give it to the\nprovider now; if it is lost, issue a new one.\n",
	    run->pos[0], token);
	return CLI_EXIT_OK;
}

static json_object *
json_session(const Twinroute__Ctl__ProviderSession *s)
{
	return OUT_JSON_OBJECT(
	    { "provider", out_json_string(s->provider_id) },
	    { "peer", out_json_string(s->peer) },
	    { "method", out_json_string(s->method) },
	    { "since_unix_ms", json_object_new_uint64(s->since_unix_ms) },
	    { "in_flight", json_object_new_int64(s->in_flight) },
	    { "pending", json_object_new_int64(s->pending) },
	    { "dispatched", json_object_new_uint64(s->dispatched) });
}

/* A new array of f(v[i]) for each of v[0..n); NULL on ENOMEM. */
#define JSON_ARRAY_OF(f, v, n)                                                 \
	({                                                                     \
		json_object *_a = json_object_new_array();                     \
		for (size_t _i = 0; _a && _i < (n); _i++) {                    \
			json_object *_o = f((v)[_i]);                          \
			if (!_o || json_object_array_add(_a, _o) < 0) {        \
				json_object_put(_o);                           \
				json_object_put(_a);                           \
				_a = NULL;                                     \
			}                                                      \
		}                                                              \
		_a;                                                            \
	})

static int
print_provider_sessions(const struct ctx *ctx, const struct run *run)
{
	static const char *const hdr[] = { "PROVIDER", "PEER", "METHOD",
	    "SINCE", "IN_FLIGHT", "PENDING", "DISPATCHED" };
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	if (ctx->json)
		return cli_print_json(JSON_ARRAY_OF(json_session,
		    resp->provider_sessions, resp->n_provider_sessions));
	if (resp->n_provider_sessions == 0) {
		printf("no provider connected\n");
		return CLI_EXIT_OK;
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	for (size_t i = 4; i < ELEMENTSOF(hdr); i++)
		out_table_set_align(t, i, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < resp->n_provider_sessions; i++) {
		const Twinroute__Ctl__ProviderSession *s =
		    resp->provider_sessions[i];
		char since[OUT_BUF_SIZE], fl[16], pend[16], disp[24];
		const char *row[] = { s->provider_id, s->peer, s->method,
		    out_time_ms(s->since_unix_ms, since, sizeof(since)), fl,
		    pend, disp };

		snprintf(fl, sizeof(fl), "%" PRIu32, s->in_flight);
		snprintf(pend, sizeof(pend), "%" PRIu32, s->pending);
		snprintf(disp, sizeof(disp), "%" PRIu64, s->dispatched);
		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

static json_object *
json_dispatch(const Twinroute__Ctl__DispatchQueueEntry *e)
{
	return OUT_JSON_OBJECT(
	    { "order_id", json_object_new_uint64(e->order_id) },
	    { "provider", out_json_string(e->provider_id) },
	    { "attempts", json_object_new_int64(e->attempts) },
	    { "created_unix_ms", json_object_new_uint64(e->created_unix_ms) });
}

/* Under a queue's table: "3 fax jobs waiting", or "1200 fax jobs waiting;
 * the first 1000 shown" when the reply holds n of total. */
static void
print_waiting(uint64_t total, size_t n, const char *one, const char *many)
{
	if (n < total)
		printf("%" PRIu64 " %s waiting; the first %zu shown\n", total,
		    many, n);
	else
		printf("%" PRIu64 " %s waiting\n", total,
		    total == 1 ? one : many);
}

static int
print_queue_provider(const struct ctx *ctx, const struct run *run)
{
	static const char *const hdr[] = { "ORDER", "PROVIDER", "ATTEMPTS",
	    "CREATED" };
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	uint64_t total = resp->dispatch_total;
	size_t n = resp->n_dispatch_queue;

	if (ctx->json)
		return cli_print_json(OUT_JSON_OBJECT(
		    { "queue", JSON_ARRAY_OF(json_dispatch,
			resp->dispatch_queue, n) },
		    { "total", json_object_new_uint64(total) },
		    { "truncated", json_object_new_boolean(n < total) }));
	if (n == 0 && total == 0) {
		printf("no dispatch waiting\n");
		return CLI_EXIT_OK;
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	out_table_set_align(t, 0, OUT_ALIGN_RIGHT);
	out_table_set_align(t, 2, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < n; i++) {
		const Twinroute__Ctl__DispatchQueueEntry *e =
		    resp->dispatch_queue[i];
		char id[24], att[16], created[OUT_BUF_SIZE];
		const char *row[] = { id, e->provider_id, att,
		    out_time_ms(e->created_unix_ms, created, sizeof(created)) };

		snprintf(id, sizeof(id), "%" PRIu64, e->order_id);
		snprintf(att, sizeof(att), "%" PRIu32, e->attempts);
		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	print_waiting(total, n, "dispatch", "dispatches");
	return CLI_EXIT_OK;
}

/* ---- ledger ---------------------------------------------------------- */

static bool
leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * A day as YYYY-MM-DD (1970 to 9999), taken as its midnight UTC, in
 * milliseconds since the epoch. 0 or -EINVAL.
 */
static int
parse_date(const char *s, uint64_t *ret_ms)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	struct tm tm = { 0 };
	int y, m, d;
	time_t t;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -EINVAL;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -EINVAL;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return -EINVAL;
	if (d > mdays[m - 1] + (m == 2 && leap_year(y) ? 1 : 0))
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*ret_ms = (uint64_t)t * 1000;
	return 0;
}

static int
build_ledger(struct run *run)
{
	Twinroute__Ctl__LedgerQuery *q = &run->ledger;
	const char *from = run->val[OPT_FROM], *to = run->val[OPT_TO];

	twinroute__ctl__ledger_query__init(q);
	if ((run->flags & FLAG_CSV) && run->ctx->json)
		return args_cmd_error(&run->a, "--csv and --json: one or the "
		    "other");
	if (from && parse_date(from, &q->from_unix_ms) < 0)
		return args_cmd_error(&run->a, "--from %s: not a date "
		    "(YYYY-MM-DD, from 1970-01-01)", from);
	if (to && parse_date(to, &q->to_unix_ms) < 0)
		return args_cmd_error(&run->a, "--to %s: not a date "
		    "(YYYY-MM-DD, from 1970-01-01)", to);
	/* --to is excluded: it must be a later day than --from. */
	if (to && q->to_unix_ms <= q->from_unix_ms)
		return args_cmd_error(&run->a, "--to %s: must be a later day "
		    "than --from%s%s (--to is excluded)", to, from ? " " : "",
		    from ? from : " (1970-01-01)");
	run->req.ledger = q;
	return CLI_GO_ON;
}

/* An amount as a decimal number in its currency's minor unit: "12.50". */
static const char *
decimal_amount(int64_t minor, const char *currency, char *buf, size_t size)
{
	int exp = money_exponent(currency);
	uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor :
	    (uint64_t)minor;
	uint64_t div = exp == 0 ? 1 : exp == 3 ? 1000 : 100;

	if (exp == 0)
		snprintf(buf, size, "%s%" PRIu64, minor < 0 ? "-" : "", mag);
	else
		snprintf(buf, size, "%s%" PRIu64 ".%0*" PRIu64,
		    minor < 0 ? "-" : "", mag / div, exp, mag % div);
	return buf;
}

/* "2026-11-24T08:30:00Z", or "" for 0. */
static const char *
iso_time_ms(uint64_t unix_ms, char *buf, size_t size)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;

	buf[0] = '\0';
	if (unix_ms != 0 && gmtime_r(&t, &tm))
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* "2026-11-24": the day of a period's bound. */
static const char *
day_ms(uint64_t unix_ms, char *buf, size_t size)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;

	buf[0] = '\0';
	if (gmtime_r(&t, &tm))
		strftime(buf, size, "%Y-%m-%d", &tm);
	return buf;
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote or line
 * break, its quotes doubled; then a comma, or CRLF after the last. */
static void
csv_field(FILE *f, const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n")) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputs(last ? "\r\n" : ",", f);
}

static const char *
entry_currency(const Twinroute__Ctl__LedgerEntry *e)
{
	return e->amount && e->amount->currency ? e->amount->currency : "";
}

static int64_t
entry_minor(const Twinroute__Ctl__LedgerEntry *e)
{
	return e->amount ? e->amount->minor : 0;
}

static int
print_ledger_csv(const Twinroute__Ctl__Ledger *l)
{
	static const char *const hdr[] = { "order", "fulfilled", "charged",
	    "service", "service_name", "quantity", "amount", "currency",
	    "state" };

	for (size_t i = 0; i < ELEMENTSOF(hdr); i++)
		csv_field(stdout, hdr[i], i + 1 == ELEMENTSOF(hdr));
	for (size_t i = 0; i < l->n_entries; i++) {
		const Twinroute__Ctl__LedgerEntry *e = l->entries[i];
		char id[24], ful[OUT_BUF_SIZE], chg[OUT_BUF_SIZE], qty[16];
		char amount[OUT_BUF_SIZE];
		const char *row[] = { id,
		    iso_time_ms(e->fulfilled_unix_ms, ful, sizeof(ful)),
		    iso_time_ms(e->charged_unix_ms, chg, sizeof(chg)),
		    e->service_id, e->service_name, qty,
		    decimal_amount(entry_minor(e), entry_currency(e), amount,
		    sizeof(amount)), entry_currency(e),
		    out_order_state(e->state) };

		snprintf(id, sizeof(id), "%" PRIu64, e->order_id);
		snprintf(qty, sizeof(qty), "%" PRIu32, e->quantity);
		for (size_t j = 0; j < ELEMENTSOF(row); j++)
			csv_field(stdout, row[j], j + 1 == ELEMENTSOF(row));
	}
	return CLI_EXIT_OK;
}

/* charged_unix_ms: null when not charged. */
static json_object *
json_ledger_entry(const Twinroute__Ctl__LedgerEntry *e)
{
	json_object *o = OUT_JSON_OBJECT(
	    { "order_id", json_object_new_uint64(e->order_id) },
	    { "fulfilled_unix_ms",
		json_object_new_uint64(e->fulfilled_unix_ms) },
	    { "service_id", out_json_string(e->service_id) },
	    { "service_name", out_json_string(e->service_name) },
	    { "quantity", json_object_new_int64(e->quantity) },
	    { "amount", json_object_new_int64(entry_minor(e)) },
	    { "currency", out_json_string(entry_currency(e)) },
	    { "state", out_json_string(out_order_state(e->state)) });
	json_object *charged = NULL;

	if (o && e->charged_unix_ms != 0) {
		charged = json_object_new_uint64(e->charged_unix_ms);
		if (!charged) {
			json_object_put(o);
			return NULL;
		}
	}
	if (o && json_add_nullable(o, "charged_unix_ms", charged) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static json_object *
json_ledger_total(const Twinroute__Ctl__LedgerTotal *t)
{
	return OUT_JSON_OBJECT(
	    { "currency", out_json_string(t->currency) },
	    { "orders", json_object_new_uint64(t->orders) },
	    { "fulfilled", json_object_new_int64(t->fulfilled_minor) },
	    { "charged_orders", json_object_new_uint64(t->charged_orders) },
	    { "charged", json_object_new_int64(t->charged_minor) });
}

/* A day for JSON: "YYYY-MM-DD", or null for an open bound. */
static json_object *
json_day(uint64_t unix_ms, bool open)
{
	char buf[OUT_BUF_SIZE];

	return open ? NULL : json_object_new_string(day_ms(unix_ms, buf,
	    sizeof(buf)));
}

/*
 * JSON: a value that is NULL on purpose (null) must not read as ENOMEM, so
 * the nullable keys are added after the object is made.
 */
static int
print_ledger_json(const Twinroute__Ctl__Ledger *l)
{
	_cleanup_(json_object_putp) json_object *o = NULL;

	o = OUT_JSON_OBJECT(
	    { "provider", out_json_string(l->provider_id) },
	    { "orders", JSON_ARRAY_OF(json_ledger_entry, l->entries,
		l->n_entries) },
	    { "totals", JSON_ARRAY_OF(json_ledger_total, l->totals,
		l->n_totals) },
	    { "matched", json_object_new_uint64(l->matched) },
	    { "rejected", json_object_new_uint64(l->rejected) },
	    { "truncated", json_object_new_boolean(l->truncated) });
	if (!o)
		return cli_fail("out of memory");
	if (json_add_nullable(o, "from", json_day(l->from_unix_ms,
	    l->from_unix_ms == 0)) < 0 ||
	    json_add_nullable(o, "to", json_day(l->to_unix_ms,
	    l->to_unix_ms == 0)) < 0)
		return cli_fail("out of memory");
	return cli_print_json(TAKE_PTR(o));
}

static int
print_ledger_totals(const Twinroute__Ctl__Ledger *l)
{
	static const char *const hdr[] = { "CURRENCY", "ORDERS", "FULFILLED",
	    "CHARGED_ORDERS", "CHARGED" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	for (size_t i = 1; i < ELEMENTSOF(hdr); i++)
		out_table_set_align(t, i, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < l->n_totals; i++) {
		const Twinroute__Ctl__LedgerTotal *x = l->totals[i];
		char n[24], ful[OUT_BUF_SIZE], nc[24], chg[OUT_BUF_SIZE];
		const char *row[] = { x->currency, n,
		    money_format(x->fulfilled_minor, x->currency, ful,
		    sizeof(ful)), nc,
		    money_format(x->charged_minor, x->currency, chg,
		    sizeof(chg)) };

		snprintf(n, sizeof(n), "%" PRIu64, x->orders);
		snprintf(nc, sizeof(nc), "%" PRIu64, x->charged_orders);
		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

static int
print_ledger(const struct ctx *ctx, const struct run *run)
{
	static const char *const hdr[] = { "ORDER", "FULFILLED", "CHARGED",
	    "SERVICE", "QTY", "AMOUNT", "STATE" };
	const Twinroute__Ctl__Ledger *l = run->resp->ledger;
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	char from[OUT_BUF_SIZE], to[OUT_BUF_SIZE];

	if (!l)
		return cli_fail("%s: the reply carries no ledger", ctx->socket);
	if (l->truncated)
		fprintf(stderr, PROG " ledger: %zu of %" PRIu64 " orders "
		    "listed (the reply's limit); the totals count them all: "
		    "ask for a shorter period\n", l->n_entries, l->matched);
	if (ctx->json)
		return print_ledger_json(l);
	if (run->flags & FLAG_CSV)
		return print_ledger_csv(l);

	printf("provider %s, fulfilled %s%s%s%s (UTC)\n", l->provider_id,
	    l->from_unix_ms ? "from " : "",
	    l->from_unix_ms ? day_ms(l->from_unix_ms, from, sizeof(from)) :
	    "since the start", l->to_unix_ms ? " until before " : "",
	    l->to_unix_ms ? day_ms(l->to_unix_ms, to, sizeof(to)) : "");
	if (l->n_entries == 0) {
		printf("no fulfilled order\n");
	} else {
		printf("\n");
		t = out_table_new(ELEMENTSOF(hdr), hdr);
		if (!t)
			return cli_fail("out of memory");
		out_table_set_align(t, 0, OUT_ALIGN_RIGHT);
		out_table_set_align(t, 4, OUT_ALIGN_RIGHT);
		out_table_set_align(t, 5, OUT_ALIGN_RIGHT);
		for (size_t i = 0; i < l->n_entries; i++) {
			const Twinroute__Ctl__LedgerEntry *e = l->entries[i];
			char id[24], ful[OUT_BUF_SIZE], chg[OUT_BUF_SIZE];
			char qty[16], amount[OUT_BUF_SIZE];
			const char *row[] = { id,
			    out_time_ms(e->fulfilled_unix_ms, ful, sizeof(ful)),
			    e->charged_unix_ms ? out_time_ms(e->charged_unix_ms,
			    chg, sizeof(chg)) : "-", e->service_id, qty,
			    out_price(e->amount, amount, sizeof(amount)),
			    out_order_state(e->state) };

			snprintf(id, sizeof(id), "%" PRIu64, e->order_id);
			snprintf(qty, sizeof(qty), "%" PRIu32, e->quantity);
			if (out_table_add(t, row) < 0)
				return cli_fail("out of memory");
		}
		out_table_print(t, stdout);
	}
	if (l->n_totals > 0) {
		int r;

		printf("\n");
		r = print_ledger_totals(l);
		if (r != CLI_EXIT_OK)
			return r;
	}
	printf("\n%" PRIu64 " order%s fulfilled, %" PRIu64 " rejected in the "
	    "period\n", l->matched, l->matched == 1 ? "" : "s", l->rejected);
	return CLI_EXIT_OK;
}

/* ---- the card route: fax ident, fax jobs, modems -------------------- */

/* A CSI a fax can announce (ctl_fax_ident_check). CLI_GO_ON, else
 * CLI_EXIT_USAGE after the message. */
static int
check_fax_ident(const struct run *run, const char *csi)
{
	size_t pos = 0;

	switch (ctl_fax_ident_check(csi, &pos)) {
	case 0:
		return CLI_GO_ON;
	case -ENODATA:
		return args_cmd_error(&run->a, "the CSI is empty (to unpin it, "
		    "give --remove)");
	case -E2BIG:
		return args_cmd_error(&run->a, "CSI '%s': %zu characters; a "
		    "fax ident holds at most %d", csi, strlen(csi),
		    CLASS1_IDENT_MAX);
	case -EILSEQ:
		return args_cmd_error(&run->a, "the CSI must be printable "
		    "ASCII (digits, '+', spaces, letters): character %zu is "
		    "not", pos);
	default:
		return args_cmd_error(&run->a, "the CSI holds only spaces");
	}
}

static int
build_provider_fax_ident(struct run *run)
{
	int r = build_pin_or_remove(run, "CSI");

	if (r != CLI_GO_ON || run->req.remove)
		return r;
	r = check_fax_ident(run, run->pos[1]);
	if (r != CLI_GO_ON)
		return r;
	run->req.fax_ident = run->pos[1];
	return CLI_GO_ON;
}

static int
print_provider_fax_ident(const struct ctx *ctx, const struct run *run)
{
	const char *ident = run->resp->fax_ident;

	if (run->req.remove)
		return print_provider_removed(ctx, run, "fax_ident",
		    "fax ident pin removed; its fax may announce any CSI");
	if (!ident || !*ident)
		return cli_fail("%s: the reply carries no fax ident",
		    ctx->socket);
	if (ctx->json)
		return print_provider_json_ack(run->pos[0], "fax_ident",
		    json_object_new_string(ident), false);
	printf("provider %s: fax ident pinned: \"%s\"\n", run->pos[0], ident);
	return CLI_EXIT_OK;
}

static int
build_queue_fax(struct run *run)
{
	uint64_t limit;

	if (!run->val[OPT_LIMIT])
		return CLI_GO_ON;
	if (parse_id(run->val[OPT_LIMIT], UINT32_MAX, &limit) < 0)
		return args_cmd_error(&run->a, "--limit wants a positive "
		    "integer, not '%s'", run->val[OPT_LIMIT]);
	run->filter.limit = (uint32_t)limit;
	run->req.filter = &run->filter;
	return CLI_GO_ON;
}

static json_object *
json_fax_entry(const Twinroute__Ctl__FaxQueueEntry *e)
{
	return OUT_JSON_OBJECT(
	    { "order_id", json_object_new_uint64(e->order_id) },
	    { "provider", out_json_string(e->provider_id) },
	    { "state", out_json_string(e->state) },
	    { "modem", out_json_string(e->modem) },
	    { "dials", json_object_new_int64(e->dials) },
	    { "tries", json_object_new_int64(e->tries) },
	    { "no_carrier", json_object_new_int64(e->no_carrier) },
	    { "created_unix_ms", json_object_new_uint64(e->created_unix_ms) },
	    { "next_attempt_unix_ms",
		json_object_new_uint64(e->next_attempt_unix_ms) },
	    { "last_error", out_json_string(e->last_error) });
}

static json_object *
json_fax_stats(const Twinroute__Ctl__FaxStats *st)
{
	return OUT_JSON_OBJECT(
	    { "sent", json_object_new_uint64(st->sent) },
	    { "failed", json_object_new_uint64(st->failed) },
	    { "retried", json_object_new_uint64(st->retried) },
	    { "calls", json_object_new_uint64(st->calls) },
	    { "pages_composed", json_object_new_uint64(st->pages_composed) },
	    { "queued", json_object_new_int64(st->queued) },
	    { "in_flight", json_object_new_int64(st->in_flight) });
}

/* A job's state, with the modem calling for it: "FAX_DIALING on m0". */
static const char *
fax_entry_state(const Twinroute__Ctl__FaxQueueEntry *e, char *buf,
    size_t size)
{
	if (e->modem && *e->modem)
		snprintf(buf, size, "%s on %s", e->state, e->modem);
	else
		snprintf(buf, size, "%s", e->state);
	return buf;
}

/* When a job is tried next: "-" in a call, "now" when due. */
static const char *
fax_entry_next(const Twinroute__Ctl__FaxQueueEntry *e, char *buf,
    size_t size)
{
	if (e->modem && *e->modem)
		return "-";
	if (e->next_attempt_unix_ms == 0)
		return "now";
	return out_time_ms(e->next_attempt_unix_ms, buf, size);
}

static int
print_queue_fax_json(const Twinroute__Ctl__CtlResponse *resp)
{
	_cleanup_(json_object_putp) json_object *o = NULL;
	json_object *st = NULL;
	uint64_t total = resp->dispatch_total;
	size_t n = resp->n_fax_queue;

	o = OUT_JSON_OBJECT(
	    { "queue", JSON_ARRAY_OF(json_fax_entry, resp->fax_queue, n) },
	    { "total", json_object_new_uint64(total) },
	    { "truncated", json_object_new_boolean(n < total) });
	if (!o)
		return cli_fail("out of memory");
	if (resp->fax_stats && !(st = json_fax_stats(resp->fax_stats)))
		return cli_fail("out of memory");
	if (json_add_nullable(o, "stats", st) < 0)
		return cli_fail("out of memory");
	return cli_print_json(TAKE_PTR(o));
}

static int
print_queue_fax(const struct ctx *ctx, const struct run *run)
{
	static const char *const hdr[] = { "ORDER", "PROVIDER", "STATE",
	    "DIALS", "TRIES", "NEXT", "LAST ERROR" };
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	const Twinroute__Ctl__FaxStats *st = resp->fax_stats;
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	uint64_t total = resp->dispatch_total;
	size_t n = resp->n_fax_queue;

	if (ctx->json)
		return print_queue_fax_json(resp);
	if (n == 0 && total == 0) {
		printf("no fax job waiting\n");
	} else {
		t = out_table_new(ELEMENTSOF(hdr), hdr);
		if (!t)
			return cli_fail("out of memory");
		out_table_set_align(t, 0, OUT_ALIGN_RIGHT);
		out_table_set_align(t, 3, OUT_ALIGN_RIGHT);
		out_table_set_align(t, 4, OUT_ALIGN_RIGHT);
		for (size_t i = 0; i < n; i++) {
			const Twinroute__Ctl__FaxQueueEntry *e =
			    resp->fax_queue[i];
			char id[24], dials[16], tries[16];
			char state[OUT_BUF_SIZE], next[OUT_BUF_SIZE];
			const char *row[] = { id, e->provider_id,
			    fax_entry_state(e, state, sizeof(state)), dials,
			    tries, fax_entry_next(e, next, sizeof(next)),
			    e->last_error[0] ? e->last_error : "-" };

			snprintf(id, sizeof(id), "%" PRIu64, e->order_id);
			snprintf(dials, sizeof(dials), "%" PRIu32, e->dials);
			snprintf(tries, sizeof(tries), "%" PRIu32, e->tries);
			if (out_table_add(t, row) < 0)
				return cli_fail("out of memory");
		}
		out_table_print(t, stdout);
		print_waiting(total, n, "fax job", "fax jobs");
	}
	if (st)
		printf("since start: %" PRIu64 " sent, %" PRIu64 " failed, %"
		    PRIu64 " retried; %" PRIu64 " calls, %" PRIu64 " pages "
		    "composed; now %" PRIu32 " queued, %" PRIu32 " in a call "
		    "or getting their page\n", st->sent, st->failed,
		    st->retried, st->calls, st->pages_composed, st->queued,
		    st->in_flight);
	else
		printf("no fax dispatcher is running\n");
	return CLI_EXIT_OK;
}

/* The order as order show prints it, with its job as fax_job (or null). */
static int
print_fax_show_json(const Twinroute__Order *o,
    const Twinroute__Ctl__FaxQueueEntry *e)
{
	_cleanup_(json_object_putp) json_object *root = out_json_order(o);
	json_object *job = NULL;

	if (!root)
		return cli_fail("out of memory");
	if (e && !(job = json_fax_entry(e)))
		return cli_fail("out of memory");
	if (json_add_nullable(root, "fax_job", job) < 0)
		return cli_fail("out of memory");
	return cli_print_json(TAKE_PTR(root));
}

static int
print_fax_show(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	const Twinroute__Order *o = reply_order(ctx, run);
	const Twinroute__Ctl__FaxQueueEntry *e = resp->n_fax_queue > 0 ?
	    resp->fax_queue[0] : NULL;
	char buf[OUT_BUF_SIZE];
	const int kw = 15;

	if (!o)
		return CLI_EXIT_UNREACHABLE;
	if (ctx->json)
		return print_fax_show_json(o, e);
	out_kv(stdout, kw, "order", "%" PRIu64, o->id);
	out_kv(stdout, kw, "provider", "%s", o->provider_id);
	out_kv(stdout, kw, "state", "%s", out_order_state(o->state));
	print_fax_lines(o, kw);
	if (!o->fax || !*o->fax->result)
		out_kv(stdout, kw, "fax result", "%s",
		    o->fax_state == TWINROUTE__FAX_STATE__FAX_NONE ?
		    "no card fax: the order is not confirmed" : "no call yet");
	if (!e) {
		printf("\nno fax job\n");
		return CLI_EXIT_OK;
	}
	printf("\nfax job\n");
	out_kv(stdout, kw, "state", "%s", fax_entry_state(e, buf,
	    sizeof(buf)));
	out_kv(stdout, kw, "queued", "%s", out_time_ms(e->created_unix_ms,
	    buf, sizeof(buf)));
	out_kv(stdout, kw, "next attempt", "%s", fax_entry_next(e, buf,
	    sizeof(buf)));
	out_kv(stdout, kw, "dials", "%" PRIu32 " (%" PRIu32 " no carrier)",
	    e->dials, e->no_carrier);
	out_kv(stdout, kw, "tries", "%" PRIu32, e->tries);
	if (*e->last_error)
		out_kv(stdout, kw, "last error", "%s", e->last_error);
	return CLI_EXIT_OK;
}

static int
print_fax_retried(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	const Twinroute__Order *o = resp->n_orders > 0 ? resp->orders[0] :
	    NULL;

	if (ctx->json)
		return o ? cli_print_json(out_json_order(o)) :
		    print_json_ack(run->pos[0], "fax_retried", true);
	if (o)
		printf("order %s: fax queued again (%s)\n", run->pos[0],
		    out_fax_state(o->fax_state));
	else
		printf("order %s: fax queued again\n", run->pos[0]);
	return CLI_EXIT_OK;
}

static json_object *
json_modem(const Twinroute__Ctl__ModemStatus *m)
{
	return OUT_JSON_OBJECT(
	    { "name", out_json_string(m->name) },
	    { "device", out_json_string(m->device) },
	    { "state", out_json_string(m->state) },
	    { "state_seconds", json_object_new_uint64(m->state_seconds) },
	    { "flow", out_json_string(m->flow) },
	    { "speed", json_object_new_int64(m->speed) },
	    { "calls", json_object_new_uint64(m->calls) },
	    { "ok", json_object_new_uint64(m->ok) },
	    { "failed", json_object_new_uint64(m->failed) },
	    { "last_result", out_json_string(m->last_result) },
	    { "last_reason", out_json_string(m->last_reason) },
	    { "order_id", json_object_new_uint64(m->order_id) });
}

static int
print_modem_list(const struct ctx *ctx, const struct run *run)
{
	static const char *const hdr[] = { "NAME", "DEVICE", "LINE", "STATE",
	    "FOR", "ORDER", "CALLS", "OK", "FAILED", "LAST RESULT" };
	const Twinroute__Ctl__CtlResponse *resp = run->resp;
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	if (ctx->json)
		return cli_print_json(JSON_ARRAY_OF(json_modem, resp->modems,
		    resp->n_modems));
	if (resp->n_modems == 0) {
		printf("no fax modem (none configured, or the card route is "
		    "off)\n");
		return CLI_EXIT_OK;
	}
	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return cli_fail("out of memory");
	for (size_t i = 5; i < 9; i++)
		out_table_set_align(t, i, OUT_ALIGN_RIGHT);
	out_table_set_max(t, 9, 0);
	for (size_t i = 0; i < resp->n_modems; i++) {
		const Twinroute__Ctl__ModemStatus *m = resp->modems[i];
		char line[48], dur[OUT_BUF_SIZE], order[24], calls[24], ok[24];
		char failed[24], last[160];
		const char *row[] = { m->name, m->device, line, m->state,
		    out_duration(m->state_seconds, dur, sizeof(dur)),
		    order, calls, ok, failed, last };

		snprintf(line, sizeof(line), "%" PRIu32 " %s", m->speed,
		    m->flow);
		if (m->order_id)
			snprintf(order, sizeof(order), "%" PRIu64, m->order_id);
		else
			snprintf(order, sizeof(order), "-");
		snprintf(calls, sizeof(calls), "%" PRIu64, m->calls);
		snprintf(ok, sizeof(ok), "%" PRIu64, m->ok);
		snprintf(failed, sizeof(failed), "%" PRIu64, m->failed);
		if (!*m->last_result)
			snprintf(last, sizeof(last), "-");
		else
			snprintf(last, sizeof(last), "%s%s%s", m->last_result,
			    *m->last_reason ? ": " : "", m->last_reason);
		if (out_table_add(t, row) < 0)
			return cli_fail("out of memory");
	}
	out_table_print(t, stdout);
	return CLI_EXIT_OK;
}

/* ---- backup --------------------------------------------------------- */

/* DIR as the daemon needs it: absolute (from our working directory). */
static int
build_backup(struct run *run)
{
	const char *dir = run->pos[0];
	char *cwd = NULL;
	int n;

	if (dir[0] == '\0')
		return args_cmd_error(&run->a, "DIR is empty");
	if (dir[0] == '/') {
		run->backup_dir = strdup(dir);
	} else {
		cwd = getcwd(NULL, 0);
		if (cwd == NULL)
			return cli_fail("cannot make %s absolute: the current "
			    "directory: %s", dir, strerror(errno));
		n = asprintf(&run->backup_dir, "%s%s%s", cwd,
		    cwd[strlen(cwd) - 1] == '/' ? "" : "/", dir);
		free(cwd);
		if (n < 0)
			run->backup_dir = NULL;
	}
	if (run->backup_dir == NULL)
		return cli_fail("out of memory");
	if (strlen(run->backup_dir) > CTL_BACKUP_DIR_MAX)
		return args_cmd_error(&run->a, "DIR %s: longer than %d bytes",
		    run->backup_dir, CTL_BACKUP_DIR_MAX);
	run->req.backup_dir = run->backup_dir;
	return CLI_GO_ON;
}

static int
print_backup(const struct ctx *ctx, const struct run *run)
{
	const Twinroute__Ctl__BackupResult *b = run->resp->backup;
	char a[OUT_BUF_SIZE], v[OUT_BUF_SIZE];
	const int kw = 7;

	if (!b)
		return cli_fail("%s: the reply carries no backup result",
		    ctx->socket);
	if (ctx->json)
		return cli_print_json(OUT_JSON_OBJECT(
		    { "dir", out_json_string(b->dir) },
		    { "broker_path", out_json_string(b->broker_path) },
		    { "broker_bytes", json_object_new_uint64(b->broker_bytes) },
		    { "broker_last_txn",
			json_object_new_uint64(b->broker_last_txn) },
		    { "vault_path", out_json_string(b->vault_path) },
		    { "vault_bytes", json_object_new_uint64(b->vault_bytes) },
		    { "duration_ms", json_object_new_uint64(b->duration_ms) },
		    { "key_included", json_object_new_boolean(false) },
		    { "key_note", out_json_string(b->key_note) }));
	printf("backup written to %s\n", b->dir);
	out_kv(stdout, kw, "broker", "%s  %s (every write up to txn %" PRIu64
	    ")", b->broker_path, out_size(b->broker_bytes, a, sizeof(a)),
	    b->broker_last_txn);
	out_kv(stdout, kw, "vault", "%s  %s", b->vault_path,
	    out_size(b->vault_bytes, v, sizeof(v)));
	out_kv(stdout, kw, "took", "%" PRIu64 ".%03" PRIu64 " s",
	    b->duration_ms / 1000, b->duration_ms % 1000);
	printf("note: %s\n", b->key_note);
	return CLI_EXIT_OK;
}

static const struct command commands[CTL__COUNT] = {
	[CTL_STATUS] = { .print = print_status },
	[CTL_PROVIDER_ADD] = { .opts = { OPT_NAME, OPT_EMAIL, OPT_FAX },
	    .required = 3, .pos = "ID", .build = build_provider_add,
	    .print = print_provider_added },
	[CTL_PROVIDER_LIST] = { .print = print_provider_list },
	[CTL_PROVIDER_SHOW] = { .pos = "ID", .target = true,
	    .print = print_provider_show },
	[CTL_PROVIDER_DISABLE] = { .pos = "ID", .target = true,
	    .print = print_provider_disabled },
	[CTL_SERVICE_ADD] = { .opts = { OPT_PROVIDER, OPT_CATEGORY, OPT_NAME,
	    OPT_PRICE, OPT_CURRENCY, OPT_DESCRIPTION }, .required = 5,
	    .pos = "ID", .build = build_service_add,
	    .print = print_service_added },
	[CTL_SERVICE_UPDATE] = { .opts = { OPT_PROVIDER, OPT_CATEGORY,
	    OPT_NAME, OPT_PRICE, OPT_CURRENCY, OPT_DESCRIPTION, OPT_ACTIVE },
	    .pos = "ID", .target = true, .build = build_service_update,
	    .print = print_service_updated },
	[CTL_SERVICE_REMOVE] = { .pos = "ID", .target = true,
	    .print = print_service_removed },
	[CTL_SERVICE_LIST] = { .opts = { OPT_PROVIDER, OPT_CATEGORY },
	    .build = build_service_list, .print = print_service_list },
	[CTL_CATALOG_IMPORT] = { .pos = "FILE", .build = build_import,
	    .print = print_imported },
	[CTL_MEMBER_ADD] = { .opts = { OPT_NAME, OPT_EMAIL }, .required = 2,
	    .pos = "NUMBER", .build = build_member_add,
	    .print = print_member_added },
	[CTL_MEMBER_SHOW] = { .pos = "NUMBER", .target = true,
	    .print = print_member_show },
	[CTL_MEMBER_LIST] = { .print = print_member_list },
	[CTL_MEMBER_DISABLE] = { .pos = "NUMBER", .target = true,
	    .print = print_member_disabled },
	[CTL_MEMBER_PASSWD] = { .pos = "NUMBER", .target = true,
	    .build = build_member_passwd, .print = print_member_passwd },
	[CTL_MEMBER_CARD_SET] = { .pos = "NUMBER", .target = true,
	    .build = build_card_set, .print = print_card_set },
	[CTL_MEMBER_CARD_SHOW] = { .pos = "NUMBER", .target = true,
	    .print = print_card_show },
	[CTL_MEMBER_CARD_REMOVE] = { .pos = "NUMBER", .target = true,
	    .print = print_card_removed },
	[CTL_MEMBER_CARD_CHECK] = { .opts = { OPT_AMOUNT, OPT_CURRENCY },
	    .required = 2, .pos = "NUMBER", .target = true,
	    .build = build_card_check, .print = print_card_check },
	[CTL_VAULT_INIT] = { .opts = { OPT_SHARES, OPT_THRESHOLD,
	    OPT_KEY_FILE }, .build = build_vault_init,
	    .print = print_vault_init },
	[CTL_VAULT_UNSEAL] = { .build = build_vault_unseal,
	    .print = print_vault_unseal },
	[CTL_VAULT_SEAL] = { .print = print_vault_sealed },
	[CTL_VAULT_STATUS] = { .print = print_vault_status },
	[CTL_VAULT_ROTATE] = { .print = print_vault_rotated },
	[CTL_MEMBER_UNLOCK] = { .pos = "NUMBER", .target = true,
	    .print = print_member_unlocked },
	[CTL_ORDER_LIST] = { .opts = { OPT_STATE, OPT_MEMBER, OPT_PROVIDER,
	    OPT_LIMIT }, .build = build_order_list, .print = print_order_list },
	[CTL_ORDER_SHOW] = { .pos = "ID", .target = true,
	    .build = build_order_id, .print = print_order_show },
	[CTL_ORDER_CANCEL] = { .pos = "ID", .target = true,
	    .build = build_order_id, .print = print_order_cancelled },
	[CTL_QUEUE_MAIL] = { .print = print_queue_mail },
	[CTL_ORDER_RESEND_CONFIRMATION] = { .pos = "ID", .target = true,
	    .build = build_order_id, .print = print_confirmation_resent },
	[CTL_PROVIDER_CERT] = { .pos = "ID", .pos2 = "FILE",
	    .pos_optional = true, .target = true, .flags = FLAG_REMOVE,
	    .build = build_provider_cert, .print = print_provider_cert },
	[CTL_PROVIDER_TOKEN] = { .pos = "ID", .target = true,
	    .flags = FLAG_REMOVE, .build = build_provider_token,
	    .print = print_provider_token },
	[CTL_PROVIDER_SESSIONS] = { .print = print_provider_sessions },
	[CTL_QUEUE_PROVIDER] = { .pos = "ID", .pos_optional = true,
	    .target = true, .print = print_queue_provider },
	[CTL_LEDGER] = { .opts = { OPT_FROM, OPT_TO }, .pos = "PROVIDER",
	    .target = true, .flags = FLAG_CSV, .build = build_ledger,
	    .print = print_ledger },
	[CTL_PROVIDER_FAX_IDENT] = { .pos = "ID", .pos2 = "CSI",
	    .pos_optional = true, .target = true, .flags = FLAG_REMOVE,
	    .build = build_provider_fax_ident,
	    .print = print_provider_fax_ident },
	[CTL_QUEUE_FAX] = { .opts = { OPT_LIMIT }, .pos = "ID",
	    .pos_optional = true, .target = true, .build = build_queue_fax,
	    .print = print_queue_fax },
	[CTL_FAX_SHOW] = { .pos = "ORDER", .target = true,
	    .build = build_order_id, .print = print_fax_show },
	[CTL_FAX_RETRY] = { .pos = "ORDER", .target = true,
	    .build = build_order_id, .print = print_fax_retried },
	[CTL_MODEM_LIST] = { .print = print_modem_list },
	[CTL_BACKUP] = { .pos = "DIR", .build = build_backup,
	    .print = print_backup },
};

/*
 * Take the flags the command takes (--remove, --csv) out of argv, up to
 * "--", into run->flags. CLI_GO_ON with *argc the arguments left, else
 * the exit code.
 */
static int
take_flags(struct run *run, unsigned takes, int *argc, char **argv)
{
	bool dashdash = false;
	int n = 0;

	for (int i = 0; i < *argc; i++) {
		unsigned f = 0;

		if (strcmp(argv[i], "--") == 0)
			dashdash = true;
		for (size_t j = 0; !dashdash && j < ELEMENTSOF(flag_names); j++)
			if ((takes & flag_names[j].flag) &&
			    strcmp(argv[i], flag_names[j].name) == 0)
				f = flag_names[j].flag;
		if (f == 0) {
			argv[n++] = argv[i];
			continue;
		}
		if (run->flags & f)
			return args_cmd_error(&run->a, "option %s given twice",
			    argv[i]);
		run->flags |= f;
	}
	*argc = n;
	return CLI_GO_ON;
}

/* Parse, build, send, report: one command from its arguments to its exit. */
static int
run_command(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	const struct command *c = &commands[cmd];
	_cleanup_(run_done) struct run run = { .a = cmd_args(cmd), .ctx = ctx };
	struct args_opt opts[CMD_OPTS_MAX] = { { NULL, NULL } };
	const char *const posnames[] = { c->pos, c->pos2 };
	size_t nopts = 0, npos = c->pos ? c->pos2 ? 2 : 1 : 0;
	int r;

	while (nopts < CMD_OPTS_MAX && c->opts[nopts] != OPT_END) {
		opts[nopts].name = opt_names[c->opts[nopts]];
		nopts++;
	}
	r = take_flags(&run, c->flags, &argc, argv);
	if (r >= 0)
		return r;
	r = args_parse(&run.a, &(const struct args_spec){ .opts = opts,
	    .nopts = nopts, .pos = run.pos, .npos_min = npos -
	    (c->pos_optional ? 1 : 0), .npos_max = npos, .posnames = posnames,
	    .json = &ctx->json }, argc, argv, NULL);
	if (r >= 0)
		return r;
	r = args_require(&run.a, opts, c->required);
	if (r >= 0)
		return r;
	for (size_t i = 0; i < nopts; i++)
		run.val[c->opts[i]] = opts[i].value;

	twinroute__ctl__ctl_request__init(&run.req);
	twinroute__provider__init(&run.provider);
	twinroute__service__init(&run.service);
	twinroute__money__init(&run.price);
	twinroute__ctl__filter__init(&run.filter);
	run.req.command = cmd;
	if (c->target && run.pos[0])
		run.req.target = run.pos[0];
	if (c->build) {
		r = c->build(&run);
		if (r >= 0)
			return r;
	}
	r = ctl_call(ctx, &run.req, &run.resp);
	if (r != CLI_EXIT_OK)
		return r;
	r = refused(&run);
	if (r >= 0)
		return r;
	return c->print(ctx, &run);
}

int
main(int argc, char **argv)
{
	struct ctx ctx = { 0 };
	int cmd, words, r;

	cli_init(PROG);
	r = args_parse_global(&tool, argc, argv, &ctx.json, &ctx);
	if (r >= 0)
		return r;
	ctx.socket = args_default(ctx.socket, CONTROL_SOCKET_ENV,
	    CONTROL_SOCKET_DEFAULT);
	cmd = ctl_cmd_lookup(argc - optind, argv + optind, &words);
	if (cmd < 0 || !commands[cmd].print) {
		if (optind + 1 < argc && argv[optind + 1][0] != '-')
			return args_usage_error(&tool, true,
			    "unknown command '%s %s'", argv[optind],
			    argv[optind + 1]);
		return args_usage_error(&tool, true, "unknown command '%s'",
		    argv[optind]);
	}
	r = run_command(&ctx, (enum ctl_cmd)cmd, argc - optind - words,
	    argv + optind + words);
	return cli_exit(r);
}
