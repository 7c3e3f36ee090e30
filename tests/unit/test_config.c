/* SPDX-License-Identifier: ISC */
/* test_config.c -- defaults, the shipped config file, value parsers, errors */

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define SHIPPED_CONF TR_SOURCE_ROOT "/conf/twinroute.conf"

/* A temporary config file, removed by the test's teardown. */
static char tmp_path[64];

static int
teardown_tmp(void **state)
{
	(void)state;
	if (tmp_path[0])
		unlink(tmp_path);
	tmp_path[0] = '\0';
	return 0;
}

static const char *
write_tmp(const char *content)
{
	FILE *f;
	int fd;

	if (tmp_path[0])
		unlink(tmp_path);
	strcpy(tmp_path, "/tmp/test_config.XXXXXX");
	fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return tmp_path;
}

/* Load content over the defaults; return config_load's result. */
static int
load_str(struct config *cfg, struct config_err *err, const char *content)
{
	assert_int_equal(config_defaults(cfg), 0);
	memset(err->msg, 0, sizeof(err->msg));
	return config_load(cfg, write_tmp(content), err);
}

/* The message expected for tmp_path: "TMP:" + rest. */
static void _printf_(2, 3)
assert_err(const struct config_err *err, const char *fmt, ...)
{
	char rest[512], want[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	snprintf(want, sizeof(want), "%s:%s", tmp_path, rest);
	assert_string_equal(err->msg, want);
}

/* content must fail at line with "KEY: reason" and leave cfg at defaults. */
static void
assert_load_fails(const char *content, unsigned line, const char *msg)
{
	struct config cfg, def;
	struct config_err err;

	assert_int_equal(load_str(&cfg, &err, content), -EINVAL);
	assert_err(&err, "%u: %s", line, msg);
	/* Nothing applied: still the defaults. */
	assert_int_equal(config_defaults(&def), 0);
	assert_string_equal(cfg.state_dir, def.state_dir);
	assert_int_equal(cfg.log_level, def.log_level);
	assert_int_equal(cfg.map_size, def.map_size);
	assert_int_equal(cfg.client_max_frame, def.client_max_frame);
	assert_string_equal(cfg.client_listen, def.client_listen);
	assert_null(cfg.source);
	config_free(&def);
	config_free(&cfg);
}

static void
assert_config_equal(const struct config *a, const struct config *b)
{
	assert_string_equal(a->state_dir, b->state_dir);
	assert_string_equal(a->pid_file, b->pid_file);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->log_target, b->log_target);
	assert_int_equal(a->log_target_set, b->log_target_set);
	assert_string_equal(a->syslog_facility, b->syslog_facility);
	assert_string_equal(a->store_path, b->store_path);
	assert_int_equal(a->map_size, b->map_size);
	assert_string_equal(a->client_listen, b->client_listen);
	assert_string_equal(a->client_tls_cert, b->client_tls_cert);
	assert_string_equal(a->client_tls_key, b->client_tls_key);
	assert_int_equal(a->client_max_frame, b->client_max_frame);
	assert_int_equal(a->client_max_connections, b->client_max_connections);
	assert_int_equal(a->client_idle_timeout, b->client_idle_timeout);
	assert_int_equal(a->client_output_limit, b->client_output_limit);
	assert_int_equal(a->client_page_size, b->client_page_size);
	assert_int_equal(a->client_page_size_max, b->client_page_size_max);
	assert_string_equal(a->control_socket, b->control_socket);
	assert_string_equal(a->control_admin_group, b->control_admin_group);
	assert_int_equal(a->control_max_connections,
	    b->control_max_connections);
	assert_int_equal(a->control_idle_timeout, b->control_idle_timeout);
	assert_string_equal(a->vault_path, b->vault_path);
	assert_int_equal(a->vault_map_size, b->vault_map_size);
	assert_string_equal(a->vault_key_file, b->vault_key_file);
	assert_string_equal(a->vault_audit_log, b->vault_audit_log);
	assert_int_equal(a->vault_order_limit, b->vault_order_limit);
	assert_int_equal(a->vault_daily_limit, b->vault_daily_limit);
	assert_int_equal(a->vault_sync_authentications,
	    b->vault_sync_authentications);
	assert_int_equal(a->login_max_failures, b->login_max_failures);
	assert_int_equal(a->login_lockout, b->login_lockout);
	assert_int_equal(a->login_address_attempts, b->login_address_attempts);
	assert_int_equal(a->login_address_window, b->login_address_window);
	assert_int_equal(a->orders_quantity_max, b->orders_quantity_max);
	assert_int_equal(a->orders_idempotency_ttl, b->orders_idempotency_ttl);
	assert_string_equal(a->mail_relay, b->mail_relay);
	assert_string_equal(a->mail_starttls, b->mail_starttls);
	assert_string_equal(a->mail_user, b->mail_user);
	assert_string_equal(a->mail_password_file, b->mail_password_file);
	assert_string_equal(a->mail_ca_file, b->mail_ca_file);
	assert_int_equal(a->mail_timeout, b->mail_timeout);
	assert_int_equal(a->mail_batch_size, b->mail_batch_size);
	assert_string_equal(a->mail_from, b->mail_from);
	assert_string_equal(a->mail_from_name, b->mail_from_name);
	assert_string_equal(a->mail_domain, b->mail_domain);
	assert_string_equal(a->mail_broker_name, b->mail_broker_name);
	assert_string_equal(a->mail_template, b->mail_template);
	assert_int_equal(a->mail_token_lifetime, b->mail_token_lifetime);
	assert_int_equal(a->mail_retry_min, b->mail_retry_min);
	assert_int_equal(a->mail_retry_max, b->mail_retry_max);
	assert_int_equal(a->mail_max_age, b->mail_max_age);
	assert_string_equal(a->lmtp_socket, b->lmtp_socket);
	assert_string_equal(a->lmtp_listen, b->lmtp_listen);
	assert_int_equal(a->lmtp_max_message, b->lmtp_max_message);
	assert_int_equal(a->lmtp_max_line, b->lmtp_max_line);
	assert_int_equal(a->lmtp_max_recipients, b->lmtp_max_recipients);
	assert_int_equal(a->lmtp_max_connections, b->lmtp_max_connections);
	assert_int_equal(a->lmtp_idle_timeout, b->lmtp_idle_timeout);
	assert_int_equal(a->lmtp_require_authentication,
	    b->lmtp_require_authentication);
	assert_string_equal(a->lmtp_authserv_id, b->lmtp_authserv_id);
	assert_string_equal(a->provider_listen, b->provider_listen);
	assert_string_equal(a->provider_tls_cert, b->provider_tls_cert);
	assert_string_equal(a->provider_tls_key, b->provider_tls_key);
	assert_int_equal(a->provider_heartbeat, b->provider_heartbeat);
	assert_int_equal(a->provider_window, b->provider_window);
	assert_int_equal(a->provider_max_connections,
	    b->provider_max_connections);
	assert_int_equal(a->provider_max_frame, b->provider_max_frame);
}

static void
test_defaults(void **state)
{
	struct config cfg;
	struct config_err err;

	(void)state;
	assert_int_equal(config_defaults(&cfg), 0);
	assert_string_equal(cfg.state_dir, "/var/lib/twinroute");
	assert_string_equal(cfg.pid_file, "");
	assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg.log_target, LOG_TARGET_STDERR);
	assert_false(cfg.log_target_set);
	assert_string_equal(cfg.syslog_facility, "daemon");
	assert_string_equal(cfg.store_path, "");
	assert_int_equal(cfg.map_size, 1024ull * 1024 * 1024);
	assert_string_equal(cfg.client_listen, "127.0.0.1:7420");
	assert_string_equal(cfg.client_tls_cert, "");
	assert_string_equal(cfg.client_tls_key, "");
	assert_int_equal(cfg.client_max_frame, 64 * 1024);
	assert_int_equal(cfg.client_max_connections, 1024);
	assert_int_equal(cfg.client_idle_timeout, 300);
	assert_int_equal(cfg.client_output_limit, 1024 * 1024);
	assert_int_equal(cfg.client_page_size, 50);
	assert_int_equal(cfg.client_page_size_max, 500);
	assert_string_equal(cfg.control_socket, "");
	assert_string_equal(cfg.control_admin_group, "");
	assert_int_equal(cfg.control_max_connections, 16);
	assert_int_equal(cfg.control_idle_timeout, 60);
	assert_null(cfg.source);

	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_string_equal(cfg.store_path, "/var/lib/twinroute/broker");
	assert_string_equal(cfg.control_socket,
	    "/var/lib/twinroute/control.sock");
	/* A second finish changes nothing. */
	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_string_equal(cfg.store_path, "/var/lib/twinroute/broker");

	config_free(&cfg);
	assert_null(cfg.state_dir);
	config_free(&cfg);
	config_free(NULL);
}

/* The shipped file has everything commented out: loading it is a no-op. */
static void
test_shipped_conf_is_defaults(void **state)
{
	struct config cfg, def;
	struct config_err err;

	(void)state;
	assert_int_equal(config_defaults(&def), 0);
	assert_int_equal(config_finish(&def, &err), 0);
	assert_int_equal(config_defaults(&cfg), 0);
	assert_int_equal(config_load(&cfg, SHIPPED_CONF, &err), 0);
	assert_string_equal(cfg.source, SHIPPED_CONF);
	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_config_equal(&cfg, &def);
	config_free(&cfg);
	config_free(&def);
}

/*
 * Uncomment every "#key = value" line of the shipped file: each key must
 * be known and its documented value must be the default.
 */
static void
test_shipped_conf_documents_defaults(void **state)
{
	static const char *const keys[] = {
		"state_dir", "pid_file", "log_level", "log_target",
		"syslog_facility", "log_file", "log_format", "path", "map_size", "listen", "tls_cert",
		"tls_key", "max_frame", "max_connections", "idle_timeout",
		"output_limit", "page_size", "page_size_max", "socket",
		"admin_group", "max_connections", "idle_timeout", "path",
		"map_size", "key_file", "audit_log", "order_limit",
		"daily_limit", "sync_authentications", "max_failures",
		"lockout", "address_attempts", "address_window",
		"quantity_max", "idempotency_ttl",
		"relay", "starttls", "user", "password_file", "ca_file",
		"timeout", "batch_size", "from", "from_name", "domain",
		"broker_name", "template", "token_lifetime", "retry_min",
		"retry_max", "max_age",
		"socket", "listen", "max_message", "max_line",
		"max_recipients", "max_connections", "idle_timeout",
		"require_authentication", "authserv_id",
		"listen", "tls_cert", "tls_key", "heartbeat", "window",
		"max_connections", "max_frame",
		"listen",
		"modems", "speed", "flow", "init", "dial_prefix",
		"international_prefix", "ident", "max_bps", "broker_name",
		"font", "font_px", "retry_busy", "retry_no_answer",
		"retry_no_carrier", "retry_protocol", "retry_modem", "jitter",
		"max_dials", "max_tries", "max_no_carrier", "kill_time",
	};
	struct config cfg, def;
	struct config_err err;
	char line[512], *text;
	size_t len = 0, n, found = 0;
	FILE *f;

	(void)state;
	f = fopen(SHIPPED_CONF, "r");
	assert_non_null(f);
	text = calloc(1, 64 * 1024);
	assert_non_null(text);
	while (fgets(line, sizeof(line), f)) {
		const char *p = line;
		size_t klen;

		klen = strspn(line + 1, "abcdefghijklmnopqrstuvwxyz_");
		if (line[0] == '#' && klen > 0 &&
		    strncmp(line + 1 + klen, " =", 2) == 0) {
			/* Keys appear in the order of keys[]. */
			assert_true(found < sizeof(keys) / sizeof(keys[0]));
			assert_int_equal(klen, strlen(keys[found]));
			assert_memory_equal(line + 1, keys[found], klen);
			found++;
			p = line + 1;
		}
		n = strlen(p);
		assert_true(len + n < 64 * 1024);
		memcpy(text + len, p, n + 1);
		len += n;
	}
	fclose(f);
	assert_int_equal(found, sizeof(keys) / sizeof(keys[0]));

	assert_int_equal(load_str(&cfg, &err, text), 0);
	free(text);
	/* The only key whose default is not a value: log_target. */
	assert_true(cfg.log_target_set);
	assert_int_equal(cfg.log_target, LOG_TARGET_SYSLOG);
	cfg.log_target_set = false;
	cfg.log_target = LOG_TARGET_STDERR;
	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_int_equal(config_defaults(&def), 0);
	assert_int_equal(config_finish(&def, &err), 0);
	assert_config_equal(&cfg, &def);
	config_free(&cfg);
	config_free(&def);
}

static void
test_vault_keys(void **state)
{
	struct config cfg;
	struct config_err err;

	(void)state;
	assert_int_equal(load_str(&cfg, &err, "[vault]\n"
	    "sync_authentications = yes\norder_limit = 500\n"
	    "daily_limit = 500\nkey_file = /etc/tr/kek\n"), 0);
	assert_true(cfg.vault_sync_authentications);
	assert_int_equal(cfg.vault_order_limit, 500);
	assert_string_equal(cfg.vault_key_file, "/etc/tr/kek");
	assert_int_equal(config_finish(&cfg, &err), 0);
	/* Derived from state_dir when not set. */
	assert_string_equal(cfg.vault_path, "/var/lib/twinroute/vault");
	assert_string_equal(cfg.vault_audit_log, "/var/lib/twinroute/audit.log");
	config_free(&cfg);

	assert_int_equal(load_str(&cfg, &err, "[vault]\n"
	    "sync_authentications = maybe\n"), -EINVAL);
	assert_err(&err, "2: vault.sync_authentications: not a boolean "
	    "(yes, no): maybe");
	config_free(&cfg);

	assert_int_equal(load_str(&cfg, &err, "[vault]\norder_limit = 501\n"
	    "daily_limit = 500\n"), 0);
	assert_int_equal(config_finish(&cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "vault.order_limit: more than "
	    "vault.daily_limit"));
	config_free(&cfg);
}

static void
test_load_values(void **state)
{
	struct config cfg;
	struct config_err err;

	(void)state;
	assert_int_equal(load_str(&cfg, &err,
	    "\xEF\xBB\xBF# every key, set\n"
	    "[daemon]\n"
	    "state_dir = /srv/tr/\n"
	    "pid_file = /run/twinrouted.pid\n"
	    "log_level = debug\n"
	    "log_target = stderr\n"
	    "syslog_facility = local3\n"
	    "[store]\n"
	    "map_size = 2GiB\n"
	    "[client]\n"
	    "listen = [::1]:0\n"
	    "tls_cert = /etc/twinroute/cert.pem\n"
	    "tls_key = /etc/twinroute/key.pem\n"
	    "max_frame = 1m\n"
	    "max_connections = 1000000\n"
	    "idle_timeout = 1d\n"
	    "output_limit = 2M\n"
	    "page_size = 10000\n"
	    "page_size_max = 10000\n"
	    "[control]\n"
	    "admin_group = tr-admin\n"
	    "max_connections = 1\n"
	    "idle_timeout = 1\n"), 0);
	assert_string_equal(cfg.source, tmp_path);
	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_string_equal(cfg.state_dir, "/srv/tr/");
	assert_string_equal(cfg.pid_file, "/run/twinrouted.pid");
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg.log_target, LOG_TARGET_STDERR);
	assert_true(cfg.log_target_set);
	assert_string_equal(cfg.syslog_facility, "local3");
	assert_string_equal(cfg.store_path, "/srv/tr/broker");
	assert_int_equal(cfg.map_size, 2ull << 30);
	assert_string_equal(cfg.client_listen, "[::1]:0");
	assert_string_equal(cfg.client_tls_cert, "/etc/twinroute/cert.pem");
	assert_string_equal(cfg.client_tls_key, "/etc/twinroute/key.pem");
	assert_int_equal(cfg.client_max_frame, 1 << 20);
	assert_int_equal(cfg.client_max_connections, 1000000);
	assert_int_equal(cfg.client_idle_timeout, 86400);
	assert_int_equal(cfg.client_output_limit, 2 << 20);
	assert_int_equal(cfg.client_page_size, 10000);
	assert_int_equal(cfg.client_page_size_max, 10000);
	assert_string_equal(cfg.control_socket, "/srv/tr/control.sock");
	assert_string_equal(cfg.control_admin_group, "tr-admin");
	assert_int_equal(cfg.control_max_connections, 1);
	assert_int_equal(cfg.control_idle_timeout, 1);
	config_free(&cfg);
}

/* Comments, blanks, CRLF, repeated and empty sections, "name: value". */
static void
test_load_layout(void **state)
{
	struct config cfg;
	struct config_err err;

	(void)state;
	assert_int_equal(load_str(&cfg, &err,
	    "; a comment\r\n"
	    "   # an indented comment\r\n"
	    "[control]\r\n"
	    "[store] # trailing comment\n"
	    "   map_size   =   2G   ; inline comment\n"
	    "\t\n"
	    "[client]\n"
	    "\tmax_frame = 2K # inline comment\n"
	    "  idle_timeout: 7m\n"
	    "[store]\n"
	    "path = /data/a#b\n"
	    "[daemon]\n"
	    "pid_file =\n"), 0);
	assert_int_equal(cfg.map_size, 2ull << 30);
	assert_int_equal(cfg.client_max_frame, 2048);
	assert_int_equal(cfg.client_idle_timeout, 420);
	assert_string_equal(cfg.store_path, "/data/a#b");
	assert_string_equal(cfg.pid_file, "");
	config_free(&cfg);

	/* An empty file changes nothing. */
	assert_int_equal(load_str(&cfg, &err, ""), 0);
	assert_int_equal(cfg.map_size, 1ull << 30);
	config_free(&cfg);
}

static void
test_unknown_key(void **state)
{
	(void)state;
	assert_load_fails("[daemon]\nlog_level = debug\n[client]\n\n"
	    "max_frmae = 1K\n", 5, "client.max_frmae: unknown key");
	/* A key of another section is unknown here. */
	assert_load_fails("[store]\nlisten = 127.0.0.1:1\n", 2,
	    "store.listen: unknown key");
	assert_load_fails("# top\nlog_level = debug\n", 2,
	    "log_level: key outside any [section]");
}

static void
test_mail_values(void **state)
{
	(void)state;
	assert_load_fails("[mail]\nstarttls = sometimes\n", 2,
	    "mail.starttls: not never, when-available or required: sometimes");
	assert_load_fails("[mail]\nfrom_name = a\tb\n", 2,
	    "mail.from_name: not printable text of at most 255 bytes");
	assert_load_fails("[mail]\nbatch_size = 0\n", 2,
	    "mail.batch_size: out of range 1..1000: 0");
	assert_load_fails("[lmtp]\nlisten = nohost\n", 2,
	    "lmtp.listen: not a host:port or [address]:port: nohost");
	assert_load_fails("[lmtp]\nmax_line = 999\n", 2,
	    "lmtp.max_line: out of range 1000..64K: 999");
}

static void
test_unknown_section(void **state)
{
	(void)state;
	assert_load_fails("[daemon]\nlog_level = debug\n\n[bogus]\n", 4,
	    "[bogus]: unknown section");
	assert_load_fails("  [Daemon]  # case matters\n", 1,
	    "[Daemon]: unknown section");
	assert_load_fails("[]\n", 1, "[]: unknown section");
}

static void
test_duplicate_key(void **state)
{
	(void)state;
	assert_load_fails("[daemon]\nlog_level = debug\n[store]\n[daemon]\n"
	    "log_level = err\n", 5,
	    "daemon.log_level: duplicate key (first set on line 2)");
	assert_load_fails("[daemon]\nstate_dir = /a\nstate_dir = /a\n", 3,
	    "daemon.state_dir: duplicate key (first set on line 2)");
}

static void
test_syntax_error(void **state)
{
	char text[512], path[256], want[512];

	(void)state;
	assert_load_fails("[daemon]\nlog_level\n", 2, "syntax error");
	assert_load_fails("[daemon\nlog_level = debug\n", 1, "syntax error");
	assert_load_fails("[store]\n[daemon] junk\n", 2, "syntax error");
	/* The first error wins, whichever kind it is. */
	assert_load_fails("[daemon]\n\njunk\nlog_level = bad\n", 3,
	    "syntax error");
	assert_load_fails("[daemon]\nlog_level = bad\njunk\n", 2,
	    "daemon.log_level: not a log level (err, warn, info, debug): bad");

	/* Long lines: 197 characters pass (and then fail as a path). */
	strcpy(text, "[daemon]\nstate_dir = ");
	memset(path, 0, sizeof(path));
	memset(path, 'x', 197 - strlen("state_dir = "));
	strcat(text, path);
	strcat(text, "    # comments and blanks do not count\n");
	snprintf(want, sizeof(want),
	    "daemon.state_dir: not an absolute path: %s", path);
	assert_load_fails(text, 2, want);
	/* 198 do not. */
	strcpy(text, "[daemon]\n# fine\nstate_dir = x");
	strcat(text, path);
	strcat(text, "\n");
	assert_load_fails(text, 3, "line too long (more than 197 characters)");

	/* The last line may lack its newline. */
	assert_load_fails("[daemon]\nlog_level = de", 2,
	    "daemon.log_level: not a log level (err, warn, info, debug): de");
}

static void
test_nul_byte(void **state)
{
	struct config cfg;
	struct config_err err;
	const char *path;
	FILE *f;

	(void)state;
	path = write_tmp("");
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite("[daemon]\nlog_level = d\0\n", 1, 24, f), 24);
	fclose(f);
	assert_int_equal(config_defaults(&cfg), 0);
	assert_int_equal(config_load(&cfg, path, &err), -EINVAL);
	assert_err(&err, "2: syntax error: NUL byte");
	config_free(&cfg);
}

static void
test_missing_file(void **state)
{
	struct config cfg;
	struct config_err err;

	(void)state;
	assert_int_equal(config_defaults(&cfg), 0);
	assert_int_equal(config_load(&cfg, "/nonexistent/twinroute.conf", &err),
	    -ENOENT);
	assert_string_equal(err.msg, "/nonexistent/twinroute.conf: cannot open: "
	    "No such file or directory");
	assert_int_equal(config_load(&cfg, "/nonexistent/x", NULL), -ENOENT);
	assert_int_equal(config_load(&cfg, "/", &err), -EISDIR);
	assert_string_equal(err.msg, "/: cannot read: Is a directory");
	config_free(&cfg);
}

static void
test_bad_values(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		/* paths */
		{ "[daemon]\nstate_dir =\n",
		  "daemon.state_dir: not an absolute path: " },
		{ "[daemon]\nstate_dir = var/lib\n",
		  "daemon.state_dir: not an absolute path: var/lib" },
		{ "[daemon]\npid_file = twinrouted.pid\n",
		  "daemon.pid_file: not an absolute path: twinrouted.pid" },
		{ "[client]\ntls_cert = cert.pem\n",
		  "client.tls_cert: not an absolute path: cert.pem" },
		{ "[control]\nsocket = /run/"
		  "01234567890123456789012345678901234567890123456789"
		  "01234567890123456789012345678901234567890123456789.sk\n",
		  "control.socket: socket path longer than 107 bytes: /run/"
		  "01234567890123456789012345678901234567890123456789"
		  "01234567890123456789012345678901234567890123456789.sk" },
		/* enumerations */
		{ "[daemon]\nlog_level = verbose\n",
		  "daemon.log_level: not a log level (err, warn, info, debug): "
		  "verbose" },
		{ "[daemon]\nlog_target = journal\n",
		  "daemon.log_target: not a log target (stderr, syslog, file): "
		  "journal" },
		{ "[daemon]\nsyslog_facility = local8\n",
		  "daemon.syslog_facility: not a syslog facility (daemon, "
		  "local0..local7): local8" },
		{ "[daemon]\nsyslog_facility = user\n",
		  "daemon.syslog_facility: not a syslog facility (daemon, "
		  "local0..local7): user" },
		/* sizes */
		{ "[client]\nmax_frame = 12Q\n",
		  "client.max_frame: not a size: 12Q" },
		{ "[client]\nmax_frame = 0\n",
		  "client.max_frame: out of range 1K..64M: 0" },
		{ "[client]\nmax_frame = 1023\n",
		  "client.max_frame: out of range 1K..64M: 1023" },
		{ "[client]\nmax_frame = 65537K\n",
		  "client.max_frame: out of range 1K..64M: 65537K" },
		{ "[client]\nmax_frame = 4G\n",
		  "client.max_frame: out of range 1K..64M: 4G" },
		{ "[client]\nmax_frame = 99999999999999999999\n",
		  "client.max_frame: out of range 1K..64M: 99999999999999999999" },
		{ "[client]\nmax_frame = -1\n",
		  "client.max_frame: not a size: -1" },
		{ "[store]\nmap_size = 1023K\n",
		  "store.map_size: out of range 1M..1T: 1023K" },
		{ "[store]\nmap_size = 2T\n",
		  "store.map_size: out of range 1M..1T: 2T" },
		{ "[client]\noutput_limit = 63K\n",
		  "client.output_limit: out of range 64K..1G: 63K" },
		/* durations */
		{ "[client]\nidle_timeout = 0\n",
		  "client.idle_timeout: out of range 1s..1d: 0" },
		{ "[client]\nidle_timeout = 25h\n",
		  "client.idle_timeout: out of range 1s..1d: 25h" },
		{ "[client]\nidle_timeout = 5 minutes\n",
		  "client.idle_timeout: not a duration: 5 minutes" },
		{ "[control]\nidle_timeout = 1w\n",
		  "control.idle_timeout: not a duration: 1w" },
		/* numbers */
		{ "[client]\nmax_connections = 0\n",
		  "client.max_connections: out of range 1..1000000: 0" },
		{ "[client]\nmax_connections = 1000001\n",
		  "client.max_connections: out of range 1..1000000: 1000001" },
		{ "[client]\nmax_connections = 1K\n",
		  "client.max_connections: not a number: 1K" },
		{ "[client]\nmax_connections = 99999999999999999999x\n",
		  "client.max_connections: not a number: 99999999999999999999x" },
		{ "[client]\npage_size = 10001\n",
		  "client.page_size: out of range 1..10000: 10001" },
		{ "[client]\npage_size_max = 0\n",
		  "client.page_size_max: out of range 1..10000: 0" },
		{ "[control]\nmax_connections = 1025\n",
		  "control.max_connections: out of range 1..1024: 1025" },
		/* addresses and groups */
		{ "[client]\nlisten = 127.0.0.1\n",
		  "client.listen: not a host:port or [address]:port: 127.0.0.1" },
		{ "[client]\nlisten = ::1:7420\n",
		  "client.listen: not a host:port or [address]:port: ::1:7420" },
		{ "[client]\nlisten =\n",
		  "client.listen: not a host:port or [address]:port: " },
		{ "[control]\nadmin_group = -wheel\n",
		  "control.admin_group: not a group name: -wheel" },
		{ "[control]\nadmin_group = a b\n",
		  "control.admin_group: not a group name: a b" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_load_fails(cases[i].text, 2, cases[i].msg);
}

static void
test_good_values(void **state)
{
	struct config cfg;
	struct config_err err;

	(void)state;
	assert_int_equal(load_str(&cfg, &err,
	    "[daemon]\nstate_dir = /\nlog_target = syslog\n"
	    "syslog_facility = local7\n"
	    "[store]\nmap_size = 1T\n"
	    "[client]\nlisten = localhost:65535\nmax_frame = 64M\n"
	    "output_limit = 1G\nidle_timeout = 86400\n"
	    "[control]\nadmin_group = 1000\nidle_timeout = 24h\n"), 0);
	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_string_equal(cfg.store_path, "/broker");
	assert_string_equal(cfg.control_socket, "/control.sock");
	assert_int_equal(cfg.log_target, LOG_TARGET_SYSLOG);
	assert_true(cfg.log_target_set);
	assert_int_equal(cfg.map_size, 1ull << 40);
	assert_int_equal(cfg.client_max_frame, 64u << 20);
	assert_int_equal(cfg.client_output_limit, 1u << 30);
	assert_int_equal(cfg.client_idle_timeout, 86400);
	assert_int_equal(cfg.control_idle_timeout, 86400);
	assert_string_equal(cfg.control_admin_group, "1000");
	config_free(&cfg);

	/* Lower bounds; an explicit empty path means "derive". */
	assert_int_equal(load_str(&cfg, &err,
	    "[store]\nmap_size = 1M\npath =\n"
	    "[client]\nmax_frame = 1K\noutput_limit = 64K\npage_size = 1\n"
	    "page_size_max = 1\nmax_connections = 1\nidle_timeout = 1s\n"
	    "[control]\nsocket = /run/twinroute/control.sock\n"), 0);
	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_int_equal(cfg.map_size, 1u << 20);
	assert_string_equal(cfg.store_path, "/var/lib/twinroute/broker");
	assert_string_equal(cfg.control_socket, "/run/twinroute/control.sock");
	config_free(&cfg);

	/* A socket path of exactly 107 bytes fits. */
	assert_int_equal(load_str(&cfg, &err, "[control]\nsocket = /run/"
	    "01234567890123456789012345678901234567890123456789"
	    "01234567890123456789012345678901234567890123456789.s\n"), 0);
	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_int_equal(strlen(cfg.control_socket), 107);
	config_free(&cfg);
}

/* Cross checks in config_finish, reported as "FILE: KEY: reason". */
static void
assert_finish_fails(const char *content, const char *msg)
{
	struct config cfg;
	struct config_err err;

	assert_int_equal(load_str(&cfg, &err, content), 0);
	assert_int_equal(config_finish(&cfg, &err), -EINVAL);
	assert_err(&err, " %s", msg);
	config_free(&cfg);
}

static void
test_finish_checks(void **state)
{
	struct config cfg;
	struct config_err err;
	char text[300];

	(void)state;
	assert_finish_fails("[client]\ntls_cert = /etc/c.pem\n",
	    "client.tls_cert: set without client.tls_key");
	assert_finish_fails("[client]\ntls_key = /etc/k.pem\ntls_cert =\n",
	    "client.tls_key: set without client.tls_cert");
	assert_finish_fails("[client]\nmax_frame = 1M\n",
	    "client.output_limit: less than twice client.max_frame (2M): 1M");
	assert_finish_fails("[client]\noutput_limit = 100K\n",
	    "client.output_limit: less than twice client.max_frame (128K): "
	    "100K");
	assert_finish_fails("[client]\npage_size = 501\n",
	    "client.page_size: more than client.page_size_max (500): 501");
	assert_finish_fails("[client]\npage_size_max = 49\n",
	    "client.page_size: more than client.page_size_max (49): 50");
	assert_finish_fails("[mail]\nuser = broker\n",
	    "mail.user: set without mail.password_file");
	assert_finish_fails("[mail]\npassword_file = /etc/pw\n",
	    "mail.password_file: set without mail.user");
	assert_finish_fails("[mail]\nfrom = broker\n",
	    "mail.from: not an address like user@example.org: broker");
	assert_finish_fails("[mail]\nfrom = a b@example.org\n",
	    "mail.from: not an address like user@example.org: a b@example.org");
	assert_finish_fails("[mail]\ndomain = exa mple.org\n",
	    "mail.domain: not a domain name: exa mple.org");
	assert_finish_fails("[mail]\nretry_min = 2h\n",
	    "mail.retry_min: more than mail.retry_max (3600s): 7200s");
	assert_finish_fails("[provider]\nlisten = 127.0.0.1:7421\n",
	    "provider.listen: set without provider.tls_cert and "
	    "provider.tls_key (the provider channel is TLS only)");
	assert_finish_fails("[lmtp]\nrequire_authentication = yes\n",
	    "lmtp.require_authentication: yes without lmtp.authserv_id");
	assert_finish_fails("[lmtp]\nlisten = 192.0.2.1:24\n",
	    "lmtp.listen: not a loopback address (127.0.0.0/8, [::1], "
	    "localhost): 192.0.2.1:24");

	/* A state_dir too long for the derived control socket. */
	snprintf(text, sizeof(text), "[daemon]\nstate_dir = /%0100d\n", 0);
	assert_int_equal(load_str(&cfg, &err, text), 0);
	assert_int_equal(config_finish(&cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, ": control.socket: socket path longer "
	    "than 107 bytes: /0000"));
	config_free(&cfg);
	/* ... which an explicit socket path fixes. */
	snprintf(text, sizeof(text), "[daemon]\nstate_dir = /%0100d\n"
	    "[control]\nsocket = /run/tr.sock\n"
	    "[lmtp]\nsocket = /run/tr-lmtp.sock\n", 0);
	assert_int_equal(load_str(&cfg, &err, text), 0);
	assert_int_equal(config_finish(&cfg, &err), 0);
	config_free(&cfg);

	/* Without a file the message has no file name. */
	assert_int_equal(config_defaults(&cfg), 0);
	cfg.client_page_size = 600;
	assert_int_equal(config_finish(&cfg, &err), -EINVAL);
	assert_string_equal(err.msg,
	    "client.page_size: more than client.page_size_max (500): 600");
	config_free(&cfg);

	/* A config that never had its defaults is refused. */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_finish(&cfg, &err), -EINVAL);
	assert_string_equal(err.msg, "daemon.state_dir: not set (no defaults)");
	assert_int_equal(config_finish(&cfg, NULL), -EINVAL);
	config_free(&cfg);
}

/* Loading over loaded values frees the old ones (ASan checks). */
static void
test_load_twice(void **state)
{
	static const char text[] =
	    "[daemon]\nstate_dir = /a\npid_file = /a.pid\n"
	    "syslog_facility = local1\n"
	    "[store]\npath = /a/store\n"
	    "[client]\nlisten = a:1\ntls_cert = /a.crt\ntls_key = /a.key\n"
	    "[control]\nsocket = /a.sock\nadmin_group = a\n";
	struct config cfg;
	struct config_err err;
	const char *path;

	(void)state;
	assert_int_equal(load_str(&cfg, &err, text), 0);
	path = write_tmp("[daemon]\nstate_dir = /b\n"
	    "[control]\nadmin_group =\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_string_equal(cfg.source, path);
	assert_string_equal(cfg.state_dir, "/b");
	assert_string_equal(cfg.pid_file, "/a.pid");
	assert_string_equal(cfg.control_admin_group, "");
	/* Loading the same file again is fine: duplicates are per file. */
	assert_int_equal(config_load(&cfg, path, &err), 0);
	/* A failing load after good ones leaves them in place. */
	path = write_tmp("[daemon]\npid_file = /c.pid\nstate_dir = c\n");
	assert_int_equal(config_load(&cfg, path, &err), -EINVAL);
	assert_string_equal(cfg.pid_file, "/a.pid");
	assert_string_equal(cfg.state_dir, "/b");
	assert_int_equal(config_finish(&cfg, &err), 0);
	assert_string_equal(cfg.store_path, "/a/store");
	config_free(&cfg);
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 }, { "1", 1 }, { "007", 7 }, { "1B", 1 }, { "1b", 1 },
		{ "1K", 1024 }, { "1k", 1024 }, { "1KB", 1024 },
		{ "1KiB", 1024 }, { "1kib", 1024 }, { "1 K", 1024 },
		{ "0K", 0 }, { "64K", 65536 }, { "1M", 1u << 20 },
		{ "1m", 1u << 20 }, { "3G", 3ull << 30 }, { "2gb", 2ull << 30 },
		{ "1T", 1ull << 40 }, { "1TiB", 1ull << 40 },
		{ "16777215T", 16777215ull << 40 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", " 1", "K", "-1", "+1", "1.5K", "1KK", "1Q", "1iB", "1KiBB",
		"0x10", "1 ", "1K ", "1 K B", "1Bi", "1KI", "1e3",
		"99999999999999999999Q",
	};
	static const char *const range[] = {
		"18446744073709551616", "99999999999999999999",
		"16777216T", "17179869184G", "18014398509481984K",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		assert_int_equal(config_parse_size(good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		assert_int_equal(config_parse_size(bad[i], &v), -EINVAL);
		assert_int_equal(v, 12345);
	}
	for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
		v = 12345;
		assert_int_equal(config_parse_size(range[i], &v), -ERANGE);
		assert_int_equal(v, 12345);
	}
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		uint32_t v;
	} good[] = {
		{ "0", 0 }, { "0s", 0 }, { "30", 30 }, { "30s", 30 },
		{ "30S", 30 }, { "5m", 300 }, { "5 m", 300 }, { "2h", 7200 },
		{ "1d", 86400 }, { "4294967295", UINT32_MAX },
		{ "4294967295s", UINT32_MAX }, { "49710d", 49710u * 86400u },
		{ "71582788m", 71582788u * 60u },
	};
	static const char *const bad[] = {
		"", "s", "-1", "+1", "1w", "1ms", "1.5h", "1h30m", "1 ",
		"5 min",
		"0x10", "99999999999999999999x",
	};
	static const char *const range[] = {
		"4294967296", "49711d", "71582789m", "1193047h",
		"99999999999999999999", "99999999999999999999d",
	};
	uint32_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		assert_int_equal(config_parse_duration(good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		assert_int_equal(config_parse_duration(bad[i], &v), -EINVAL);
		assert_int_equal(v, 12345);
	}
	for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
		v = 12345;
		assert_int_equal(config_parse_duration(range[i], &v), -ERANGE);
		assert_int_equal(v, 12345);
	}
}

static void
test_parse_bool(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on",
		"1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off",
		"0" };
	static const char *const bad[] = { "", "2", "y", "n", "yess", "of",
		" yes", "01" };
	bool b;

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_int_equal(config_parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		assert_int_equal(config_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = true;
		assert_int_equal(config_parse_bool(bad[i], &b), -EINVAL);
		assert_true(b);
	}
}

static void
test_parse_hostport(void **state)
{
	static const struct {
		const char *s;
		const char *host;
		uint16_t port;
	} good[] = {
		{ "127.0.0.1:7420", "127.0.0.1", 7420 },
		{ "0.0.0.0:0", "0.0.0.0", 0 },
		{ "localhost:65535", "localhost", 65535 },
		{ "broker-1.example.org:443", "broker-1.example.org", 443 },
		{ "example.org.:1", "example.org.", 1 },
		{ "[::1]:7420", "::1", 7420 },
		{ "[::]:0", "::", 0 },
		{ "[2001:db8::17]:80", "2001:db8::17", 80 },
		{ "[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80 },
		{ "host:00080", "host", 80 },
	};
	static const char *const bad[] = {
		"", ":", ":7420", "127.0.0.1", "127.0.0.1:", "host:65536",
		"host:-1", "host:+1", "host:1x", "host:123456", "host: 1",
		"::1:7420", "::1", "[::1]", "[::1]:", "[::1]7420", "[::1:7420",
		"[]:1", "[127.0.0.1]:1", "[::g]:1", "300.1.1.1:1", "1.2.3:1",
		"ho st:1", "a..b:1", ".a:1", "a/b:1", "[::1]:1:2",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		".org:1",
	};
	char host[CONFIG_HOST_MAX];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(config_parse_hostport(good[i].s), 0);
		assert_int_equal(config_split_hostport(good[i].s, host, &port),
		    0);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(host, "untouched");
		port = 9;
		assert_int_equal(config_parse_hostport(bad[i]), -EINVAL);
		assert_int_equal(config_split_hostport(bad[i], host, &port),
		    -EINVAL);
		assert_string_equal(host, "untouched");
		assert_int_equal(port, 9);
	}
}

static void
test_syslog_facility(void **state)
{
	int f = -1;

	(void)state;
	assert_int_equal(config_syslog_facility("daemon", &f), 0);
	assert_int_equal(f, LOG_DAEMON);
	assert_int_equal(config_syslog_facility("local0", &f), 0);
	assert_int_equal(f, LOG_LOCAL0);
	assert_int_equal(config_syslog_facility("local7", &f), 0);
	assert_int_equal(f, LOG_LOCAL7);
	f = -1;
	assert_int_equal(config_syslog_facility("local8", &f), -EINVAL);
	assert_int_equal(config_syslog_facility("", &f), -EINVAL);
	assert_int_equal(config_syslog_facility("DAEMON", &f), -EINVAL);
	assert_int_equal(f, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_shipped_conf_is_defaults),
		cmocka_unit_test_teardown(test_shipped_conf_documents_defaults,
		    teardown_tmp),
		cmocka_unit_test_teardown(test_load_values, teardown_tmp),
		cmocka_unit_test_teardown(test_vault_keys, teardown_tmp),
		cmocka_unit_test_teardown(test_load_layout, teardown_tmp),
		cmocka_unit_test_teardown(test_unknown_key, teardown_tmp),
		cmocka_unit_test_teardown(test_mail_values, teardown_tmp),
		cmocka_unit_test_teardown(test_unknown_section, teardown_tmp),
		cmocka_unit_test_teardown(test_duplicate_key, teardown_tmp),
		cmocka_unit_test_teardown(test_syntax_error, teardown_tmp),
		cmocka_unit_test_teardown(test_nul_byte, teardown_tmp),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test_teardown(test_bad_values, teardown_tmp),
		cmocka_unit_test_teardown(test_good_values, teardown_tmp),
		cmocka_unit_test_teardown(test_finish_checks, teardown_tmp),
		cmocka_unit_test_teardown(test_load_twice, teardown_tmp),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_parse_hostport),
		cmocka_unit_test(test_syslog_facility),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
