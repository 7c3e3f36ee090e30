/* SPDX-License-Identifier: ISC */
/* args.h -- the tools' command lines: options, commands' arguments, usage */
#ifndef TR_ARGS_H
#define TR_ARGS_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/macro.h"

#include "cli.h"

/*
 * The functions here that return int return CLI_GO_ON (cli.h) when the
 * tool goes on, else its exit code, after the message.
 */

/* A tool's own options before the command: no more are seen. */
#define ARGS_TOOL_OPTIONS_MAX 8

/*
 * A tool: its options before the command, its help, and how it shows its
 * commands. Every tool also takes --json, -h/--help and -V/--version there.
 */
struct args_tool {
	const char *synopsis;            /* after "usage: PROG " in errors */
	const char *shortopts;           /* its own, for getopt_long() */
	const struct option *options;    /* its own; the last one all zero */
	/* One of its own options as getopt_long() returns it. */
	void (*option)(void *data, int c, char *arg);
	/* --help: */
	const char *usage;               /* after "usage: PROG " */
	const char *about;               /* what it is for, in a line */
	const char *options_help;        /* its own options, whole lines */
	int options_width;               /* where option texts start */
	void (*print_commands)(FILE *f); /* also after a usage error */
	const char *more;                /* after the commands; NULL: none */
	/* What each exit status but CLI_EXIT_OK means. */
	const char *exits[CLI_EXIT_UNREACHABLE + 1];
};

/* A command as typed. */
struct args_cmd {
	const char *name;       /* "provider add" */
	const char *usage;      /* its arguments: "ID --name NAME" */
	const char *help;       /* one line */
};

/* A --name VALUE option of a command. */
struct args_opt {
	const char *name;
	char *value;            /* from argv; NULL: not given */
};

/* No limit on positional arguments. */
#define ARGS_NPOS_ANY SIZE_MAX

/* What a command takes, and where args_parse() puts it. */
struct args_spec {
	struct args_opt *opts;  /* its options; values filled in */
	size_t nopts;
	char **pos;             /* room for npos_max; ARGS_NPOS_ANY: argc */
	size_t npos_min, npos_max;
	const char *const *posnames; /* pos[0..npos_min), for "missing ..." */
	bool *json;             /* set by --json, which every command takes */
};

/*
 * "PROG: message" and a short usage on stderr; then the commands if list,
 * else a pointer to --help. Returns CLI_EXIT_USAGE.
 */
int args_usage_error(const struct args_tool *t, bool list, const char *fmt,
    ...) _printf_(3, 4);

/* The tool's help, for -h and --help. */
void args_print_help(const struct args_tool *t, FILE *f);

/*
 * The options before the command: -h and -V print and end with
 * CLI_EXIT_OK, --json sets *json, the others go to t->option(data, ...).
 * CLI_GO_ON with optind at the command, else the exit code.
 */
int args_parse_global(const struct args_tool *t, int argc, char **argv,
    bool *json, void *data);

/* An option's value: given, else $env, else (either empty) dflt. */
const char *args_default(const char *given, const char *env,
    const char *dflt);

/* "  NAME USAGE" folded to 79 columns, then "      HELP". */
void args_print_command(FILE *f, const struct args_cmd *cmd);

/* "PROG NAME: message" and the command's usage on stderr: CLI_EXIT_USAGE. */
int args_cmd_error(const struct args_cmd *cmd, const char *fmt, ...)
    _printf_(2, 3);
/* An order number: a positive integer, into *ret. CLI_GO_ON, or
 * CLI_EXIT_USAGE after "'S' is not an order number". */
int args_order_id(const struct args_cmd *cmd, const char *s, uint64_t *ret);

/*
 * Split a command's arguments into options (--name VALUE, --name=VALUE)
 * and positional arguments. -h or --help prints the command's usage and
 * ends with CLI_EXIT_OK; "--" ends the options. CLI_GO_ON with
 * *ret_npos set (if not NULL), else the exit code.
 */
int args_parse(const struct args_cmd *cmd, const struct args_spec *spec,
    int argc, char **argv, size_t *ret_npos);

/* The first n options must be given. CLI_GO_ON, else CLI_EXIT_USAGE. */
int args_require(const struct args_cmd *cmd, const struct args_opt *opts,
    size_t n);

#endif
