/* SPDX-License-Identifier: ISC */
/* args.c -- the tools' command lines: options, commands' arguments, usage */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config-build.h"

#include "args.h"
#include "cli.h"

/* Usage lines fold here; their continuations start at ARGS_FOLD_INDENT. */
#define ARGS_FOLD_WIDTH 79
#define ARGS_FOLD_INDENT 8

/* The options every tool takes before the command, after its own. */
static const struct option args_common[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int
args_usage_error(const struct args_tool *t, bool list, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vwarn(NULL, fmt, ap);
	va_end(ap);
	fprintf(stderr, "usage: %s %s\n", cli_prog(), t->synopsis);
	if (list) {
		fprintf(stderr, "commands:\n");
		t->print_commands(stderr);
	} else {
		fprintf(stderr, "Try '%s --help'.\n", cli_prog());
	}
	return CLI_EXIT_USAGE;
}

void
args_print_help(const struct args_tool *t, FILE *f)
{
	const int w = t->options_width;

	fprintf(f, "usage: %s %s\n\n%s\n\noptions:\n%s", cli_prog(), t->usage,
	    t->about, t->options_help);
	fprintf(f, "%-*s%s\n", w, "      --json",
	    "print the result as one JSON document");
	fprintf(f, "%-*s%s\n", w, "  -h, --help", "show this help");
	fprintf(f, "%-*s%s\n", w, "  -V, --version", "show the version");
	fprintf(f, "\ncommands:\n");
	t->print_commands(f);
	if (t->more)
		fprintf(f, "\n%s", t->more);
	fprintf(f, "\nexit status:\n  %d  success\n", CLI_EXIT_OK);
	for (int i = CLI_EXIT_REFUSED; i <= CLI_EXIT_UNREACHABLE; i++)
		fprintf(f, "  %d  %s\n", i, t->exits[i]);
}

int
args_parse_global(const struct args_tool *t, int argc, char **argv,
    bool *json, void *data)
{
	struct option longopts[ARGS_TOOL_OPTIONS_MAX + ELEMENTSOF(args_common)];
	char shortopts[3 * ARGS_TOOL_OPTIONS_MAX + 8]; /* "x::" each */
	size_t n = 0;
	int c;

	/* Its own options first, then the common ones. */
	while (n < ARGS_TOOL_OPTIONS_MAX && t->options[n].name) {
		longopts[n] = t->options[n];
		n++;
	}
	memcpy(longopts + n, args_common, sizeof(args_common));
	snprintf(shortopts, sizeof(shortopts), "+:%shV", t->shortopts);

	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'h':
			args_print_help(t, stdout);
			return CLI_EXIT_OK;
		case 'V':
			printf("%s " TR_VERSION "\n", cli_prog());
			return CLI_EXIT_OK;
		case ':':
			return args_usage_error(t, false,
			    "option %s needs a value", argv[optind - 1]);
		case '?':
			if (optopt)
				return args_usage_error(t, false,
				    "unknown option '-%c'", optopt);
			return args_usage_error(t, false,
			    "unknown option '%s'", argv[optind - 1]);
		default:
			t->option(data, c, optarg);
			break;
		}
	}
	if (optind == argc)
		return args_usage_error(t, true, "no command given");
	return CLI_GO_ON;
}

const char *
args_default(const char *given, const char *env, const char *dflt)
{
	if (!given)
		given = getenv(env);
	if (!given || !*given)
		given = dflt;
	return given;
}

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

/* The rest of a line that has col columns so far: usage, folded. */
static void
print_usage(FILE *f, int col, const char *usage)
{
	const char *p = usage;

	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		n = usage_word(p);
		if (n == 0)
			break;
		if (col + 1 + (int)n > ARGS_FOLD_WIDTH &&
		    col > ARGS_FOLD_INDENT) {
			col = fprintf(f, "\n%*s", ARGS_FOLD_INDENT, "") - 1;
			col += fprintf(f, "%.*s", (int)n, p);
		} else {
			col += fprintf(f, " %.*s", (int)n, p);
		}
		p += n;
	}
	fputc('\n', f);
}

/* "usage: PROG NAME USAGE", folded. */
static void
print_cmd_usage(FILE *f, const struct args_cmd *cmd)
{
	print_usage(f, fprintf(f, "usage: %s %s", cli_prog(), cmd->name),
	    cmd->usage);
}

void
args_print_command(FILE *f, const struct args_cmd *cmd)
{
	print_usage(f, fprintf(f, "  %s", cmd->name), cmd->usage);
	fprintf(f, "      %s\n", cmd->help);
}

int
args_cmd_error(const struct args_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vwarn(cmd->name, fmt, ap);
	va_end(ap);
	print_cmd_usage(stderr, cmd);
	return CLI_EXIT_USAGE;
}

/* The option named by "--name" or "--name=value" at a; NULL if none. */
static struct args_opt *
find_opt(const struct args_spec *spec, char *a, char **ret_eq)
{
	const char *name = a + 2;
	char *eq = strchr(a + 2, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	struct args_opt *o = NULL;

	for (size_t j = 0; j < spec->nopts; j++)
		if (strlen(spec->opts[j].name) == len &&
		    strncmp(spec->opts[j].name, name, len) == 0)
			o = &spec->opts[j];
	*ret_eq = eq;
	return o;
}

int
args_parse(const struct args_cmd *cmd, const struct args_spec *spec,
    int argc, char **argv, size_t *ret_npos)
{
	size_t n = 0;
	bool dashdash = false;

	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		char *value = NULL, *eq;
		struct args_opt *o;

		if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
			/* Not echoed: a person may have typed a secret
			 * (a password, a card number) where it does not
			 * belong, and messages end up in logs. */
			if (n == spec->npos_max)
				return args_cmd_error(cmd, "unexpected "
				    "argument %d (secrets are never taken "
				    "from the command line)", i + 1);
			spec->pos[n++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			*spec->json = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			print_cmd_usage(stdout, cmd);
			printf("%s\n", cmd->help);
			return CLI_EXIT_OK;
		}
		if (strncmp(a, "--", 2) != 0)
			return args_cmd_error(cmd, "unknown option '%s'", a);
		o = find_opt(spec, a, &eq);
		if (!o)
			return args_cmd_error(cmd, "unknown option '%s'", a);
		if (eq)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else
			return args_cmd_error(cmd, "option --%s needs a value",
			    o->name);
		if (o->value)
			return args_cmd_error(cmd, "option --%s given twice",
			    o->name);
		o->value = value;
	}
	if (n < spec->npos_min)
		return args_cmd_error(cmd, "missing %s", spec->posnames[n]);
	if (ret_npos)
		*ret_npos = n;
	return CLI_GO_ON;
}

int
args_require(const struct args_cmd *cmd, const struct args_opt *opts,
    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!opts[i].value)
			return args_cmd_error(cmd, "missing --%s",
			    opts[i].name);
	return CLI_GO_ON;
}

int
args_order_id(const struct args_cmd *cmd, const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
	if (v == 0 || errno != 0 || *end != '\0')
		return args_cmd_error(cmd, "'%s' is not an order number", s);
	*ret = v;
	return CLI_GO_ON;
}
