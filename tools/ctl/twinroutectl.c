/* SPDX-License-Identifier: ISC */
/* twinroutectl.c -- the admin CLI: one request to the control socket */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config-build.h"
#include "control.pb-c.h"

#include "common/conn.h"
#include "common/errcode.h"
#include "common/macro.h"
#include "common/output.h"
#include "ctl/ctl.h"

#define PROG "twinroutectl"
#define CONTROL_SOCKET_DEFAULT "/var/lib/twinroute/control.sock"
#define CONTROL_SOCKET_ENV "TWINROUTE_CONTROL"
/* An import of a large catalog waits for its commit. */
#define CTL_TIMEOUT_MS 60000
/* Import files are read whole; past this they cannot fit in one frame. */
#define IMPORT_FILE_MAX (4 * (size_t)CTL_FRAME_MAX)

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,     /* the daemon answered with an error */
	EXIT_USAGE = 2,       /* bad arguments or a bad import file */
	EXIT_UNREACHABLE = 3, /* no daemon, or the protocol failed */
};

struct ctx {
	const char *socket;
	bool json;
};

/* A --name VALUE option of a command. */
struct opt {
	const char *name;
	char *value;          /* from argv; NULL: not given */
};

typedef int cmd_fn(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv);

static void
resp_free(Twinroute__Ctl__CtlResponse *r)
{
	twinroute__ctl__ctl_response__free_unpacked(r, NULL);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Twinroute__Ctl__CtlResponse *, resp_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tr_conn *, tr_conn_close)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct out_table *, out_table_free)

/* Length of the next usage word: "[--opt V]", "--opt VALUE" or "ID". */
static size_t
usage_word(const char *p)
{
	size_t n = 0;
	int depth = 0;

	while (p[n] != '\0' && (depth > 0 || p[n] != ' ')) {
		if (p[n] == '[')
			depth++;
		else if (p[n] == ']')
			depth--;
		n++;
	}
	/* Keep an option with its value. */
	if (p[0] == '-' && p[n] == ' ' && p[n + 1] != '-' && p[n + 1] != '[')
		n += 1 + usage_word(p + n + 1);
	return n;
}

/* PREFIX NAME USAGE, folded to 79 columns. */
static void
print_command(FILE *f, const char *prefix, const struct ctl_cmd_info *ci)
{
	const int width = 79, indent = 8;
	const char *p = ci->usage;
	int col;

	col = fprintf(f, "%s%s", prefix, ci->name);
	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		n = usage_word(p);
		if (n == 0)
			break;
		if (col + 1 + (int)n > width && col > indent) {
			col = fprintf(f, "\n%*s", indent, "") - 1;
			col += fprintf(f, "%.*s", (int)n, p);
		} else {
			col += fprintf(f, " %.*s", (int)n, p);
		}
		p += n;
	}
	fputc('\n', f);
}

static void
print_commands(FILE *f)
{
	for (size_t i = 0; i < ELEMENTSOF(ctl_cmds); i++) {
		print_command(f, "  ", &ctl_cmds[i]);
		fprintf(f, "      %s\n", ctl_cmds[i].help);
	}
}

static void
print_help(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " [-s SOCKET] [--json] [-h|--help] [-V] COMMAND [ARGS]\n"
	    "\n"
	    "Manage a running twinrouted through its control socket.\n"
	    "\n"
	    "options:\n"
	    "  -s, --socket SOCKET  the control socket (default: $" CONTROL_SOCKET_ENV ",\n"
	    "                       else " CONTROL_SOCKET_DEFAULT ")\n"
	    "      --json           print the result as one JSON document\n"
	    "  -h, --help           show this help\n"
	    "  -V, --version        show the version\n"
	    "\n"
	    "commands:\n");
	print_commands(f);
	fprintf(f,
	    "\n"
	    "catalog import reads JSON Lines, one object per line (FILE \"-\": stdin):\n"
	    "  {\"type\":\"provider\",\"id\":..,\"name\":..,\"email\":..,\"fax\":..,"
	    "\"active\":true}\n"
	    "  {\"type\":\"service\",\"id\":..,\"provider\":..,\"category\":..,\"name\":..,\n"
	    "   \"description\":..,\"price\":MINOR_UNITS,\"currency\":..,\"active\":true}\n"
	    "\"active\" and \"description\" may be left out.\n"
	    "\n"
	    "exit status:\n"
	    "  0  success\n"
	    "  1  the daemon refused the request (the message says why)\n"
	    "  2  usage error: bad or missing arguments, or a bad import file\n"
	    "  3  the daemon cannot be reached, or the protocol failed\n");
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
	fprintf(stderr, "usage: " PROG " [-s SOCKET] [--json] COMMAND [ARGS]\n");
	if (list) {
		fprintf(stderr, "commands:\n");
		print_commands(stderr);
	} else {
		fprintf(stderr, "Try '" PROG " --help'.\n");
	}
	return EXIT_USAGE;
}

static int _printf_(2, 3)
cmd_usage_error(enum ctl_cmd cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG " %s: ", ctl_cmds[cmd].name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_command(stderr, "usage: " PROG " ", &ctl_cmds[cmd]);
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
 * Split a command's arguments into options (--name VALUE or --name=VALUE,
 * from opts[]) and positional arguments (exactly npos). "--json" is
 * accepted everywhere; "--" ends the options. Returns -1 when all is well,
 * else the exit code (after the message).
 */
static int
parse_args(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv,
    struct opt *opts, size_t nopts, char **pos, size_t npos,
    const char *const *posnames)
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
			if (n == npos)
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
			print_command(stdout, "usage: " PROG " ",
			    &ctl_cmds[cmd]);
			printf("%s\n", ctl_cmds[cmd].help);
			return EXIT_OK;
		}
		if (strncmp(a, "--", 2) != 0)
			return cmd_usage_error(cmd, "unknown option '%s'", a);
		name = a + 2;
		eq = strchr(name, '=');
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
	if (n < npos)
		return cmd_usage_error(cmd, "missing %s", posnames[n]);
	return -1;
}

/* Options that must be there. -1 or the exit code. */
static int
require_opts(enum ctl_cmd cmd, const struct opt *opts, size_t nopts)
{
	for (size_t i = 0; i < nopts; i++)
		if (!opts[i].value)
			return cmd_usage_error(cmd, "missing --%s",
			    opts[i].name);
	return -1;
}

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
 * Send req, read the reply. Returns EXIT_OK with *ret_resp set, or the
 * exit code after the message. The reply may carry an error: see
 * refused().
 */
static int
ctl_call(const struct ctx *ctx, Twinroute__Ctl__CtlRequest *req,
    Twinroute__Ctl__CtlResponse **ret_resp)
{
	_cleanup_(tr_conn_closep) struct tr_conn *c = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	struct tr_conn_opts opts = { .timeout_ms = CTL_TIMEOUT_MS };
	Twinroute__Ctl__CtlResponse *resp;
	size_t packed;
	uint32_t len;
	int r;

	req->id = 1;
	req->version = CTL_PROTO_VERSION;
	packed = protobuf_c_message_get_packed_size(&req->base);
	if (packed > CTL_FRAME_MAX) {
		fprintf(stderr, PROG ": the request is too large: %zu bytes, "
		    "the control socket takes at most %u\n", packed,
		    CTL_FRAME_MAX);
		return EXIT_USAGE;
	}

	r = tr_conn_open_unix(ctx->socket, &opts, &c);
	if (r == -EACCES || r == -EPERM)
		return fail("permission denied: %s (run as root, as the "
		    "daemon's user, or as a member of the control admin group)",
		    ctx->socket);
	if (r == -ENOENT || r == -ECONNREFUSED)
		return fail("cannot connect to %s: %s (is twinrouted running?)",
		    ctx->socket, tr_strerror(r));
	if (r < 0)
		return fail("cannot connect to %s: %s", ctx->socket,
		    tr_strerror(r));

	r = tr_conn_send(c, &req->base);
	if (r < 0) {
		int sr = r;

		/* A refusal sent on accept may be waiting: read it first. */
		if (sr != -EPIPE && sr != -ECONNRESET)
			return fail("%s: cannot send the request: %s",
			    ctx->socket, tr_strerror(sr));
		r = tr_conn_recv(c, CTL_FRAME_MAX, &buf, &len);
		if (r < 0)
			return fail("%s: cannot send the request: %s",
			    ctx->socket, tr_strerror(sr));
	} else {
		r = tr_conn_recv(c, CTL_FRAME_MAX, &buf, &len);
	}
	if (r == -ECONNRESET)
		return fail("%s: the daemon closed the connection without "
		    "a reply", ctx->socket);
	if (r == -ETIMEDOUT)
		return fail("%s: no reply within %d s", ctx->socket,
		    CTL_TIMEOUT_MS / 1000);
	if (r < 0)
		return fail("%s: cannot read the reply: %s", ctx->socket,
		    tr_strerror(r));

	resp = twinroute__ctl__ctl_response__unpack(NULL, len, buf);
	if (!resp)
		return fail("%s: the reply does not decode", ctx->socket);
	/* A refusal sent before the request was read carries id 0. */
	if (resp->id != req->id && !(resp->id == 0 && resp->error &&
	    resp->error->code != TWINROUTE__ERROR_CODE__ERR_NONE)) {
		uint64_t id = resp->id;

		resp_free(resp);
		return fail("%s: the reply answers request %" PRIu64
		    ", not %" PRIu64, ctx->socket, id, req->id);
	}
	*ret_resp = resp;
	return EXIT_OK;
}

static const char *
error_message(const Twinroute__Error *e)
{
	const ProtobufCEnumValue *v;

	if (e->message && *e->message)
		return e->message;
	v = protobuf_c_enum_descriptor_get_value(
	    &twinroute__error_code__descriptor, e->code);
	return v ? v->name : "request refused";
}

/* The reply's error, if any: print it and return EXIT_REFUSED; else -1. */
static int
refused(const Twinroute__Ctl__CtlResponse *resp)
{
	if (!resp->error ||
	    resp->error->code == TWINROUTE__ERROR_CODE__ERR_NONE)
		return -1;
	fprintf(stderr, PROG ": %s\n", error_message(resp->error));
	return EXIT_REFUSED;
}

/* Send, read, report. EXIT_OK with *ret_resp set, else the exit code. */
static int
ctl_run(const struct ctx *ctx, Twinroute__Ctl__CtlRequest *req,
    Twinroute__Ctl__CtlResponse **ret_resp)
{
	Twinroute__Ctl__CtlResponse *resp = NULL;
	int r;

	r = ctl_call(ctx, req, &resp);
	if (r != EXIT_OK)
		return r;
	r = refused(resp);
	if (r >= 0) {
		resp_free(resp);
		return r;
	}
	*ret_resp = resp;
	return EXIT_OK;
}

/* Print obj (and release it). */
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
cmd_status(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	Twinroute__Ctl__CtlRequest req;
	const Twinroute__Ctl__Status *s;
	char a[OUT_BUF_SIZE], b[OUT_BUF_SIZE];
	const int kw = 19;
	int r;

	r = parse_args(ctx, cmd, argc, argv, NULL, 0, NULL, 0, NULL);
	if (r >= 0)
		return r;
	twinroute__ctl__ctl_request__init(&req);
	req.command = cmd;
	r = ctl_run(ctx, &req, &resp);
	if (r != EXIT_OK)
		return r;
	s = resp->status;
	if (!s)
		return fail("%s: the reply carries no status", ctx->socket);

	if (ctx->json) {
		_cleanup_(json_object_putp) json_object *o = NULL;

		o = json_object_new_object();
		if (!o)
			return fail("out of memory");
		json_object_object_add(o, "version",
		    out_json_string(s->version));
		json_object_object_add(o, "pid", json_object_new_int64(s->pid));
		json_object_object_add(o, "uptime_seconds",
		    json_object_new_uint64(s->uptime_seconds));
		json_object_object_add(o, "client_addr",
		    out_json_string(s->client_addr));
		json_object_object_add(o, "client_connections",
		    json_object_new_int64(s->client_connections));
		json_object_object_add(o, "control_connections",
		    json_object_new_int64(s->control_connections));
		json_object_object_add(o, "providers",
		    json_object_new_int64(s->providers));
		json_object_object_add(o, "services",
		    json_object_new_int64(s->services));
		json_object_object_add(o, "store_used_bytes",
		    json_object_new_uint64(s->store_used_bytes));
		json_object_object_add(o, "store_map_bytes",
		    json_object_new_uint64(s->store_map_bytes));
		json_object_object_add(o, "store_last_txn",
		    json_object_new_uint64(s->store_last_txn));
		json_object_object_add(o, "store_synced_txn",
		    json_object_new_uint64(s->store_synced_txn));
		json_object_object_add(o, "requests_served",
		    json_object_new_uint64(s->requests_served));
		return print_json(TAKE_PTR(o));
	}

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
	return EXIT_OK;
}

static int
cmd_provider_add(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	struct opt opts[] = { { "name", NULL }, { "email", NULL },
	    { "fax", NULL } };
	static const char *const posnames[] = { "ID" };
	char *pos[1];
	Twinroute__Ctl__CtlRequest req;
	Twinroute__Provider p;
	const Twinroute__Provider *out = &p;
	int r;

	r = parse_args(ctx, cmd, argc, argv, opts, ELEMENTSOF(opts), pos, 1,
	    posnames);
	if (r >= 0)
		return r;
	r = require_opts(cmd, opts, ELEMENTSOF(opts));
	if (r >= 0)
		return r;

	twinroute__provider__init(&p);
	p.id = pos[0];
	p.name = opts[0].value;
	p.email = opts[1].value;
	p.fax = opts[2].value;
	p.active = true;
	twinroute__ctl__ctl_request__init(&req);
	req.command = cmd;
	req.provider = &p;
	r = ctl_run(ctx, &req, &resp);
	if (r != EXIT_OK)
		return r;
	if (resp->n_providers > 0)
		out = resp->providers[0];
	if (ctx->json)
		return print_json(out_json_provider(out));
	printf("provider %s added\n", pos[0]);
	return EXIT_OK;
}

/* A command that acts on one ID and prints a confirmation. */
static int
run_target(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv,
    Twinroute__Ctl__CtlResponse **ret_resp, char **ret_id)
{
	static const char *const posnames[] = { "ID" };
	char *pos[1];
	Twinroute__Ctl__CtlRequest req;
	int r;

	r = parse_args(ctx, cmd, argc, argv, NULL, 0, pos, 1, posnames);
	if (r >= 0)
		return r;
	twinroute__ctl__ctl_request__init(&req);
	req.command = cmd;
	req.target = pos[0];
	r = ctl_run(ctx, &req, ret_resp);
	if (r != EXIT_OK)
		return r;
	*ret_id = pos[0];
	return EXIT_OK;
}

static int
print_providers(Twinroute__Provider *const *v, size_t n)
{
	static const char *const hdr[] = { "ID", "NAME", "EMAIL", "FAX",
	    "ACTIVE" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;

	t = out_table_new(ELEMENTSOF(hdr), hdr);
	if (!t)
		return fail("out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *row[] = { v[i]->id, v[i]->name, v[i]->email,
		    v[i]->fax, out_yesno(v[i]->active) };

		if (out_table_add(t, row) < 0)
			return fail("out of memory");
	}
	out_table_print(t, stdout);
	return EXIT_OK;
}

static int
print_services(Twinroute__Service *const *v, size_t n, bool with_provider)
{
	static const char *const hdr[] = { "ID", "PROVIDER", "CATEGORY", "NAME",
	    "PRICE", "ACTIVE" };
	static const char *const hdr_np[] = { "ID", "CATEGORY", "NAME", "PRICE",
	    "ACTIVE" };
	_cleanup_(out_table_freep) struct out_table *t = NULL;
	size_t off = with_provider ? 0 : 1;

	if (with_provider)
		t = out_table_new(ELEMENTSOF(hdr), hdr);
	else
		t = out_table_new(ELEMENTSOF(hdr_np), hdr_np);
	if (!t)
		return fail("out of memory");
	out_table_set_align(t, 4 - off, OUT_ALIGN_RIGHT);
	for (size_t i = 0; i < n; i++) {
		const Twinroute__Service *s = v[i];
		char price[OUT_BUF_SIZE];
		const char *row[] = { s->id, s->provider_id, s->category,
		    s->name, price, out_yesno(s->active) };

		if (s->price)
			out_money(s->price->minor, s->price->currency, price,
			    sizeof(price));
		else
			snprintf(price, sizeof(price), "-");
		if (!with_provider)
			row[1] = s->id;
		if (out_table_add(t, row + off) < 0)
			return fail("out of memory");
	}
	out_table_print(t, stdout);
	return EXIT_OK;
}

static json_object *
json_providers(Twinroute__Provider *const *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < n; i++) {
		json_object *o = out_json_provider(v[i]);

		if (!o || json_object_array_add(a, o) < 0) {
			json_object_put(o);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

static json_object *
json_services(Twinroute__Service *const *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < n; i++) {
		json_object *o = out_json_service(v[i]);

		if (!o || json_object_array_add(a, o) < 0) {
			json_object_put(o);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

static int
cmd_provider_list(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	Twinroute__Ctl__CtlRequest req;
	int r;

	r = parse_args(ctx, cmd, argc, argv, NULL, 0, NULL, 0, NULL);
	if (r >= 0)
		return r;
	twinroute__ctl__ctl_request__init(&req);
	req.command = cmd;
	r = ctl_run(ctx, &req, &resp);
	if (r != EXIT_OK)
		return r;
	if (ctx->json)
		return print_json(json_providers(resp->providers,
		    resp->n_providers));
	return print_providers(resp->providers, resp->n_providers);
}

static int
cmd_provider_show(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	const Twinroute__Provider *p;
	char *id = NULL;
	const int kw = 6;
	int r;

	r = run_target(ctx, cmd, argc, argv, &resp, &id);
	if (r != EXIT_OK)
		return r;
	if (resp->n_providers < 1)
		return fail("%s: the reply carries no provider", ctx->socket);
	p = resp->providers[0];
	if (ctx->json) {
		_cleanup_(json_object_putp) json_object *o = NULL;
		json_object *a;

		o = out_json_provider(p);
		a = json_services(resp->services, resp->n_services);

		if (!o || !a || json_object_object_add(o, "services", a) < 0) {
			json_object_put(a);
			return fail("out of memory");
		}
		return print_json(TAKE_PTR(o));
	}
	out_kv(stdout, kw, "id", "%s", p->id);
	out_kv(stdout, kw, "name", "%s", p->name);
	out_kv(stdout, kw, "email", "%s", p->email);
	out_kv(stdout, kw, "fax", "%s", p->fax);
	out_kv(stdout, kw, "active", "%s", out_yesno(p->active));
	if (resp->n_services == 0) {
		printf("\nno services\n");
		return EXIT_OK;
	}
	printf("\n");
	return print_services(resp->services, resp->n_services, false);
}

static int
cmd_provider_disable(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	char *id = NULL;
	int r;

	r = run_target(ctx, cmd, argc, argv, &resp, &id);
	if (r != EXIT_OK)
		return r;
	if (ctx->json) {
		json_object *o;

		if (resp->n_providers > 0)
			return print_json(
			    out_json_provider(resp->providers[0]));
		o = json_object_new_object();
		if (o) {
			json_object_object_add(o, "id", out_json_string(id));
			json_object_object_add(o, "active",
			    json_object_new_boolean(false));
		}
		return print_json(o);
	}
	printf("provider %s disabled\n", id);
	return EXIT_OK;
}

/* Print a service from a reply, or fall back to what was sent. */
static int
print_service_result(const struct ctx *ctx,
    const Twinroute__Ctl__CtlResponse *resp, const Twinroute__Service *sent,
    const char *id, const char *what)
{
	if (ctx->json) {
		const Twinroute__Service *s = sent;
		json_object *o;

		if (resp->n_services > 0)
			s = resp->services[0];
		if (s)
			return print_json(out_json_service(s));
		o = json_object_new_object();
		if (o) {
			json_object_object_add(o, "id", out_json_string(id));
			json_object_object_add(o, what,
			    json_object_new_boolean(true));
		}
		return print_json(o);
	}
	printf("service %s %s\n", id, what);
	return EXIT_OK;
}

static int
cmd_service_add(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	enum { O_PROVIDER, O_CATEGORY, O_NAME, O_PRICE, O_CURRENCY, O_DESC };
	struct opt opts[] = {
		[O_PROVIDER] = { "provider", NULL },
		[O_CATEGORY] = { "category", NULL },
		[O_NAME] = { "name", NULL },
		[O_PRICE] = { "price", NULL },
		[O_CURRENCY] = { "currency", NULL },
		[O_DESC] = { "description", NULL },
	};
	static const char *const posnames[] = { "ID" };
	char *pos[1];
	Twinroute__Ctl__CtlRequest req;
	Twinroute__Service s;
	Twinroute__Money price;
	const char *why;
	int r;

	r = parse_args(ctx, cmd, argc, argv, opts, ELEMENTSOF(opts), pos, 1,
	    posnames);
	if (r >= 0)
		return r;
	r = require_opts(cmd, opts, O_DESC);
	if (r >= 0)
		return r;

	twinroute__money__init(&price);
	if (parse_price(opts[O_PRICE].value, &price.minor, &why) < 0)
		return cmd_usage_error(cmd, "--price %s: %s",
		    opts[O_PRICE].value, why);
	price.currency = opts[O_CURRENCY].value;
	twinroute__service__init(&s);
	s.id = pos[0];
	s.provider_id = opts[O_PROVIDER].value;
	s.category = opts[O_CATEGORY].value;
	s.name = opts[O_NAME].value;
	if (opts[O_DESC].value)
		s.description = opts[O_DESC].value;
	s.price = &price;
	s.active = true;

	twinroute__ctl__ctl_request__init(&req);
	req.command = cmd;
	req.service = &s;
	r = ctl_run(ctx, &req, &resp);
	if (r != EXIT_OK)
		return r;
	return print_service_result(ctx, resp, &s, pos[0], "added");
}

static char mask_provider[] = "provider";
static char mask_category[] = "category";
static char mask_name[] = "name";
static char mask_description[] = "description";
static char mask_price[] = "price";
static char mask_active[] = "active";

static int
cmd_service_update(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	enum { O_PROVIDER, O_CATEGORY, O_NAME, O_PRICE, O_CURRENCY, O_DESC,
	    O_ACTIVE };
	struct opt opts[] = {
		[O_PROVIDER] = { "provider", NULL },
		[O_CATEGORY] = { "category", NULL },
		[O_NAME] = { "name", NULL },
		[O_PRICE] = { "price", NULL },
		[O_CURRENCY] = { "currency", NULL },
		[O_DESC] = { "description", NULL },
		[O_ACTIVE] = { "active", NULL },
	};
	static const char *const posnames[] = { "ID" };
	char *pos[1];
	char *mask[6];
	size_t nmask = 0;
	Twinroute__Ctl__CtlRequest req;
	Twinroute__Service s;
	Twinroute__Money price;
	const char *why;
	int r;

	r = parse_args(ctx, cmd, argc, argv, opts, ELEMENTSOF(opts), pos, 1,
	    posnames);
	if (r >= 0)
		return r;

	twinroute__service__init(&s);
	twinroute__money__init(&price);
	s.id = pos[0];
	if (opts[O_PROVIDER].value) {
		s.provider_id = opts[O_PROVIDER].value;
		mask[nmask++] = mask_provider;
	}
	if (opts[O_CATEGORY].value) {
		s.category = opts[O_CATEGORY].value;
		mask[nmask++] = mask_category;
	}
	if (opts[O_NAME].value) {
		s.name = opts[O_NAME].value;
		mask[nmask++] = mask_name;
	}
	if (opts[O_DESC].value) {
		s.description = opts[O_DESC].value;
		mask[nmask++] = mask_description;
	}
	if (!opts[O_PRICE].value != !opts[O_CURRENCY].value)
		return cmd_usage_error(cmd,
		    "--price and --currency go together: give both");
	if (opts[O_PRICE].value) {
		if (parse_price(opts[O_PRICE].value, &price.minor, &why) < 0)
			return cmd_usage_error(cmd, "--price %s: %s",
			    opts[O_PRICE].value, why);
		price.currency = opts[O_CURRENCY].value;
		s.price = &price;
		mask[nmask++] = mask_price;
	}
	if (opts[O_ACTIVE].value) {
		const char *a = opts[O_ACTIVE].value;

		if (strcmp(a, "yes") == 0 || strcmp(a, "true") == 0)
			s.active = true;
		else if (strcmp(a, "no") == 0 || strcmp(a, "false") == 0)
			s.active = false;
		else
			return cmd_usage_error(cmd,
			    "--active takes yes or no, not '%s'", a);
		mask[nmask++] = mask_active;
	}
	if (nmask == 0)
		return cmd_usage_error(cmd, "nothing to change: give at least "
		    "one field");

	twinroute__ctl__ctl_request__init(&req);
	req.command = cmd;
	req.target = pos[0];
	req.service = &s;
	req.n_update_mask = nmask;
	req.update_mask = mask;
	r = ctl_run(ctx, &req, &resp);
	if (r != EXIT_OK)
		return r;
	return print_service_result(ctx, resp, NULL, pos[0], "updated");
}

static int
cmd_service_remove(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	char *id = NULL;
	int r;

	r = run_target(ctx, cmd, argc, argv, &resp, &id);
	if (r != EXIT_OK)
		return r;
	if (ctx->json) {
		_cleanup_(json_object_putp) json_object *o = NULL;

		o = json_object_new_object();
		if (!o)
			return fail("out of memory");
		json_object_object_add(o, "id", out_json_string(id));
		json_object_object_add(o, "removed",
		    json_object_new_boolean(true));
		return print_json(TAKE_PTR(o));
	}
	printf("service %s removed\n", id);
	return EXIT_OK;
}

static int
cmd_service_list(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	struct opt opts[] = { { "provider", NULL }, { "category", NULL } };
	Twinroute__Ctl__CtlRequest req;
	Twinroute__Ctl__Filter filter;
	int r;

	r = parse_args(ctx, cmd, argc, argv, opts, ELEMENTSOF(opts), NULL, 0,
	    NULL);
	if (r >= 0)
		return r;
	twinroute__ctl__ctl_request__init(&req);
	req.command = cmd;
	twinroute__ctl__filter__init(&filter);
	if (opts[0].value || opts[1].value) {
		if (opts[0].value)
			filter.provider_id = opts[0].value;
		if (opts[1].value)
			filter.category = opts[1].value;
		req.filter = &filter;
	}
	r = ctl_run(ctx, &req, &resp);
	if (r != EXIT_OK)
		return r;
	if (ctx->json)
		return print_json(json_services(resp->services,
		    resp->n_services));
	return print_services(resp->services, resp->n_services, true);
}

/* One line of an import file, ready to send. */
struct import_item {
	unsigned long line;
	bool is_provider;
	Twinroute__Ctl__CatalogItem item;
	Twinroute__Provider provider;
	Twinroute__Service service;
	Twinroute__Money price;
};

struct import {
	const char *file;         /* as shown in messages */
	struct import_item **v;
	size_t n, cap;
	uint32_t providers, services;
};

/* Free a string of an item unless it is protobuf-c's shared empty one. */
static void
item_str_free(char *s)
{
	if (s && s != protobuf_c_empty_string)
		free(s);
}

static void
import_item_free(struct import_item *it)
{
	if (!it)
		return;
	item_str_free(it->provider.id);
	item_str_free(it->provider.name);
	item_str_free(it->provider.email);
	item_str_free(it->provider.fax);
	item_str_free(it->service.id);
	item_str_free(it->service.provider_id);
	item_str_free(it->service.category);
	item_str_free(it->service.name);
	item_str_free(it->service.description);
	item_str_free(it->price.currency);
	free(it);
}

static void
import_free(struct import *im)
{
	for (size_t i = 0; i < im->n; i++)
		import_item_free(im->v[i]);
	free(im->v);
	im->v = NULL;
	im->n = im->cap = 0;
}

static int _printf_(3, 4)
import_error(const struct import *im, unsigned long line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%lu: ", im->file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	return EXIT_USAGE;
}

struct import_key {
	const char *key;
	enum json_type type;
	bool required;
};

static const struct import_key provider_keys[] = {
	{ "type", json_type_string, true },
	{ "id", json_type_string, true },
	{ "name", json_type_string, true },
	{ "email", json_type_string, true },
	{ "fax", json_type_string, true },
	{ "active", json_type_boolean, false },
};

static const struct import_key service_keys[] = {
	{ "type", json_type_string, true },
	{ "id", json_type_string, true },
	{ "provider", json_type_string, true },
	{ "category", json_type_string, true },
	{ "name", json_type_string, true },
	{ "description", json_type_string, false },
	{ "price", json_type_int, true },
	{ "currency", json_type_string, true },
	{ "active", json_type_boolean, false },
};

static const char *
json_type_text(enum json_type t)
{
	switch (t) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "true or false";
	case json_type_double:
		return "a number";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "unknown";
}

/*
 * Check obj's keys against keys[]: every key known and of its type, every
 * required one there. -1 when all is well, else EXIT_USAGE.
 */
static int
import_check_keys(const struct import *im, unsigned long line,
    json_object *obj, const char *what, const struct import_key *keys,
    size_t nkeys)
{
	json_object_object_foreach(obj, key, val) {
		const struct import_key *k = NULL;

		for (size_t i = 0; i < nkeys; i++)
			if (strcmp(keys[i].key, key) == 0)
				k = &keys[i];
		if (!k)
			return import_error(im, line, "unknown key \"%s\" for "
			    "a %s", key, what);
		if (k->type == json_type_int && json_object_is_type(val,
		    json_type_double))
			return import_error(im, line, "\"%s\" must be an "
			    "integer in minor units (1250 for 12.50)", key);
		if (!json_object_is_type(val, k->type))
			return import_error(im, line, "\"%s\" must be %s, not "
			    "%s", key, json_type_text(k->type),
			    json_type_text(json_object_get_type(val)));
		if (k->type == json_type_string &&
		    strlen(json_object_get_string(val)) !=
		    (size_t)json_object_get_string_len(val))
			return import_error(im, line, "\"%s\" contains a NUL "
			    "character", key);
	}
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].required &&
		    !json_object_object_get_ex(obj, keys[i].key, NULL))
			return import_error(im, line, "missing \"%s\" for a %s",
			    keys[i].key, what);
	return -1;
}

/* A copy of obj[key] (a string already checked), or "" when absent. */
static int
import_str(json_object *obj, const char *key, char **ret)
{
	json_object *v;
	char *s;

	if (json_object_object_get_ex(obj, key, &v))
		s = strdup(json_object_get_string(v));
	else
		s = strdup("");
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static bool
import_active(json_object *obj)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, "active", &v))
		return true;
	return json_object_get_boolean(v);
}

/* Turn one object into an item. -1 when all is well, else the exit code. */
static int
import_object(struct import *im, unsigned long line, json_object *obj)
{
	struct import_item *it = NULL;
	json_object *type;
	const char *t;
	int r;

	if (!json_object_object_get_ex(obj, "type", &type))
		return import_error(im, line, "missing \"type\" (\"provider\" "
		    "or \"service\")");
	if (!json_object_is_type(type, json_type_string))
		return import_error(im, line, "\"type\" must be a string");
	t = json_object_get_string(type);
	if (strcmp(t, "provider") == 0)
		r = import_check_keys(im, line, obj, t, provider_keys,
		    ELEMENTSOF(provider_keys));
	else if (strcmp(t, "service") == 0)
		r = import_check_keys(im, line, obj, t, service_keys,
		    ELEMENTSOF(service_keys));
	else
		return import_error(im, line, "unknown type \"%s\" "
		    "(\"provider\" or \"service\")", t);
	if (r >= 0)
		return r;

	it = calloc(1, sizeof(*it));
	if (!it)
		return fail("out of memory");
	it->line = line;
	twinroute__ctl__catalog_item__init(&it->item);
	twinroute__provider__init(&it->provider);
	twinroute__service__init(&it->service);
	twinroute__money__init(&it->price);
	if (strcmp(t, "provider") == 0) {
		Twinroute__Provider *p = &it->provider;

		if (import_str(obj, "id", &p->id) < 0 ||
		    import_str(obj, "name", &p->name) < 0 ||
		    import_str(obj, "email", &p->email) < 0 ||
		    import_str(obj, "fax", &p->fax) < 0)
			goto nomem;
		p->active = import_active(obj);
		it->is_provider = true;
		im->providers++;
	} else {
		Twinroute__Service *s = &it->service;
		json_object *price;

		json_object_object_get_ex(obj, "price", &price);
		if (json_object_get_int64(price) < 0) {
			import_item_free(it);
			return import_error(im, line, "\"price\" must not be "
			    "negative");
		}
		if (json_object_get_uint64(price) > INT64_MAX) {
			import_item_free(it);
			return import_error(im, line, "\"price\" is out of "
			    "range");
		}
		it->price.minor = json_object_get_int64(price);
		if (import_str(obj, "id", &s->id) < 0 ||
		    import_str(obj, "provider", &s->provider_id) < 0 ||
		    import_str(obj, "category", &s->category) < 0 ||
		    import_str(obj, "name", &s->name) < 0 ||
		    import_str(obj, "description", &s->description) < 0 ||
		    import_str(obj, "currency", &it->price.currency) < 0)
			goto nomem;
		s->active = import_active(obj);
		im->services++;
	}

	if (im->n == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 64;
		struct import_item **v = reallocarray(im->v, cap, sizeof(*v));

		if (!v)
			goto nomem;
		im->v = v;
		im->cap = cap;
	}
	im->v[im->n++] = it;
	return -1;

nomem:
	import_item_free(it);
	return fail("out of memory");
}

/* Parse one line (no newline). -1 when all is well, else the exit code. */
static int
import_line(struct import *im, json_tokener *tok, unsigned long line,
    const char *buf, size_t len)
{
	_cleanup_(json_object_putp) json_object *obj = NULL;
	enum json_tokener_error jerr;
	size_t end;

	if (strspn(buf, " \t\r\f\v") == len)
		return -1; /* blank */
	if (memchr(buf, '\0', len))
		return import_error(im, line, "NUL byte in the line");
	if (len > INT_MAX)
		return import_error(im, line, "line too long");

	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue)
		return import_error(im, line, "incomplete JSON (one object "
		    "per line)");
	if (jerr != json_tokener_success)
		return import_error(im, line, "bad JSON: %s",
		    json_tokener_error_desc(jerr));
	end = json_tokener_get_parse_end(tok);
	if (strspn(buf + end, " \t\r\f\v") != len - end)
		return import_error(im, line, "more after the JSON object "
		    "(one object per line)");
	if (!json_object_is_type(obj, json_type_object))
		return import_error(im, line, "not a JSON object");
	return import_object(im, line, obj);
}

/* Read and check the whole file. -1 when all is well, else the exit code. */
static int
import_read(struct import *im, FILE *f)
{
	_cleanup_free_ char *buf = NULL;
	json_tokener *tok;
	size_t cap = 0, total = 0;
	unsigned long line = 0;
	ssize_t n;
	int r = -1;

	tok = json_tokener_new();
	if (!tok)
		return fail("out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	while ((n = getline(&buf, &cap, f)) >= 0) {
		size_t len = (size_t)n;

		line++;
		total += len;
		if (total > IMPORT_FILE_MAX) {
			fprintf(stderr, "%s: larger than %zu bytes: too large "
			    "for one import\n", im->file, IMPORT_FILE_MAX);
			r = EXIT_USAGE;
			break;
		}
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		r = import_line(im, tok, line, buf, len);
		if (r >= 0)
			break;
	}
	if (r < 0 && ferror(f)) {
		fprintf(stderr, "%s: read error: %s\n", im->file,
		    strerror(errno));
		r = EXIT_USAGE;
	}
	json_tokener_free(tok);
	return r;
}

static int
cmd_catalog_import(struct ctx *ctx, enum ctl_cmd cmd, int argc, char **argv)
{
	_cleanup_(resp_freep) Twinroute__Ctl__CtlResponse *resp = NULL;
	_cleanup_free_ Twinroute__Ctl__CatalogItem **items = NULL;
	static const char *const posnames[] = { "FILE" };
	struct import im = { 0 };
	Twinroute__Ctl__CtlRequest req;
	uint32_t np, ns;
	char *pos[1];
	FILE *f;
	size_t packed;
	int r;

	r = parse_args(ctx, cmd, argc, argv, NULL, 0, pos, 1, posnames);
	if (r >= 0)
		return r;
	if (strcmp(pos[0], "-") == 0) {
		im.file = "<stdin>";
		f = stdin;
	} else {
		im.file = pos[0];
		f = fopen(pos[0], "re");
		if (!f) {
			fprintf(stderr, PROG ": cannot open %s: %s\n", pos[0],
			    strerror(errno));
			return EXIT_USAGE;
		}
	}
	r = import_read(&im, f);
	if (f != stdin)
		fclose(f);
	if (r >= 0)
		goto out;
	if (im.n == 0) {
		fprintf(stderr, "%s: nothing to import\n", im.file);
		r = EXIT_USAGE;
		goto out;
	}

	items = calloc(im.n, sizeof(*items));
	if (!items) {
		r = fail("out of memory");
		goto out;
	}
	for (size_t i = 0; i < im.n; i++) {
		struct import_item *it = im.v[i];

		if (it->is_provider) {
			it->item.item_case =
			    TWINROUTE__CTL__CATALOG_ITEM__ITEM_PROVIDER;
			it->item.provider = &it->provider;
		} else {
			it->service.price = &it->price;
			it->item.item_case =
			    TWINROUTE__CTL__CATALOG_ITEM__ITEM_SERVICE;
			it->item.service = &it->service;
		}
		items[i] = &it->item;
	}
	twinroute__ctl__ctl_request__init(&req);
	req.command = cmd;
	req.n_items = im.n;
	req.items = items;
	packed = protobuf_c_message_get_packed_size(&req.base);
	if (packed > CTL_FRAME_MAX) {
		fprintf(stderr, "%s: too large for one import: %zu bytes once "
		    "packed, the control socket takes at most %u\n", im.file,
		    packed, CTL_FRAME_MAX);
		r = EXIT_USAGE;
		goto out;
	}

	r = ctl_call(ctx, &req, &resp);
	if (r != EXIT_OK)
		goto out;
	if (resp->error &&
	    resp->error->code != TWINROUTE__ERROR_CODE__ERR_NONE) {
		int32_t idx = resp->error->index;

		if (idx >= 0 && (size_t)idx < im.n)
			fprintf(stderr, "%s:%lu: %s\n", im.file,
			    im.v[idx]->line, error_message(resp->error));
		else
			fprintf(stderr, PROG ": %s\n",
			    error_message(resp->error));
		r = EXIT_REFUSED;
		goto out;
	}

	np = resp->imported ? resp->imported->providers : im.providers;
	ns = resp->imported ? resp->imported->services : im.services;
	if (ctx->json) {
		json_object *o = json_object_new_object();

		if (o) {
			json_object_object_add(o, "providers",
			    json_object_new_int64(np));
			json_object_object_add(o, "services",
			    json_object_new_int64(ns));
		}
		r = print_json(o);
	} else {
		printf("imported %" PRIu32 " providers and %" PRIu32
		    " services\n", np, ns);
		r = EXIT_OK;
	}
out:
	import_free(&im);
	return r;
}

static cmd_fn *const cmd_fns[CTL__COUNT] = {
	[CTL_STATUS] = cmd_status,
	[CTL_PROVIDER_ADD] = cmd_provider_add,
	[CTL_PROVIDER_LIST] = cmd_provider_list,
	[CTL_PROVIDER_SHOW] = cmd_provider_show,
	[CTL_PROVIDER_DISABLE] = cmd_provider_disable,
	[CTL_SERVICE_ADD] = cmd_service_add,
	[CTL_SERVICE_UPDATE] = cmd_service_update,
	[CTL_SERVICE_REMOVE] = cmd_service_remove,
	[CTL_SERVICE_LIST] = cmd_service_list,
	[CTL_CATALOG_IMPORT] = cmd_catalog_import,
};

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctx ctx = { 0 };
	int c, cmd, words, r;

	/* A daemon that goes away mid-write is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:s:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			ctx.socket = optarg;
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
	if (!ctx.socket)
		ctx.socket = getenv(CONTROL_SOCKET_ENV);
	if (!ctx.socket || !*ctx.socket)
		ctx.socket = CONTROL_SOCKET_DEFAULT;

	if (optind == argc)
		return usage_error(true, "no command given");
	cmd = ctl_cmd_lookup(argc - optind, argv + optind, &words);
	if (cmd < 0 || !cmd_fns[cmd]) {
		if (optind + 1 < argc && argv[optind + 1][0] != '-')
			return usage_error(true, "unknown command '%s %s'",
			    argv[optind], argv[optind + 1]);
		return usage_error(true, "unknown command '%s'",
		    argv[optind]);
	}
	r = cmd_fns[cmd](&ctx, (enum ctl_cmd)cmd, argc - optind - words,
	    argv + optind + words);
	if ((fflush(stdout) != 0 || ferror(stdout)) && errno != EPIPE) {
		fprintf(stderr, PROG ": cannot write the output: %s\n",
		    strerror(errno));
		return r == EXIT_OK ? EXIT_UNREACHABLE : r;
	}
	return r;
}
