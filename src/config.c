/* SPDX-License-Identifier: ISC */
/* config.c -- twinrouted's settings: defaults, INI file, checks */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <ini.h>

#include "common/frame.h"
#include "common/macro.h"
#include "config.h"

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define TIB ((uint64_t)1 << 40)
#define DAY_SECS (24u * 60u * 60u)

enum config_type {
	CONFIG_T_PATH,          /* absolute path, required */
	CONFIG_T_PATH_OPT,      /* absolute path or "" (unset) */
	CONFIG_T_SOCKET_OPT,    /* CONFIG_T_PATH_OPT that fits sun_path */
	CONFIG_T_HOSTPORT,
	CONFIG_T_GROUP_OPT,     /* group name, numeric gid or "" */
	CONFIG_T_FACILITY,
	CONFIG_T_LOG_LEVEL,
	CONFIG_T_LOG_TARGET,
	CONFIG_T_SIZE,          /* uint32_t or uint64_t, K/M/G/T suffixes */
	CONFIG_T_DURATION,      /* uint32_t seconds, s/m/h/d suffixes */
	CONFIG_T_UINT,          /* uint32_t, plain decimal */
	CONFIG_T_BOOL,          /* bool: yes/no, true/false, on/off, 1/0 */
	CONFIG_T_STRING,        /* printable UTF-8 text, at most 255 bytes, or "" */
	CONFIG_T_HOSTPORT_OPT,  /* CONFIG_T_HOSTPORT or "" (unset) */
	CONFIG_T_STARTTLS,      /* never, when-available, required */
};

struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t offset;
	size_t width;           /* of the field, for the numeric types */
	uint64_t min, max;      /* for the numeric types */
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

/* Every key the file may set, in the order of conf/twinroute.conf. */
static const struct config_key config_keys[] = {
	{ "daemon", "state_dir", CONFIG_T_PATH,
	    FIELD(state_dir), 0, 0 },
	{ "daemon", "pid_file", CONFIG_T_PATH_OPT,
	    FIELD(pid_file), 0, 0 },
	{ "daemon", "log_level", CONFIG_T_LOG_LEVEL,
	    FIELD(log_level), 0, 0 },
	{ "daemon", "log_target", CONFIG_T_LOG_TARGET,
	    FIELD(log_target), 0, 0 },
	{ "daemon", "syslog_facility", CONFIG_T_FACILITY,
	    FIELD(syslog_facility), 0, 0 },
	{ "daemon", "log_file", CONFIG_T_PATH_OPT, FIELD(log_file), 0, 0 },
	{ "daemon", "log_format", CONFIG_T_STRING, FIELD(log_format), 0, 0 },

	{ "store", "path", CONFIG_T_PATH_OPT,
	    FIELD(store_path), 0, 0 },
	{ "store", "map_size", CONFIG_T_SIZE,
	    FIELD(map_size), MIB, TIB },

	{ "client", "listen", CONFIG_T_HOSTPORT,
	    FIELD(client_listen), 0, 0 },
	{ "client", "tls_cert", CONFIG_T_PATH_OPT,
	    FIELD(client_tls_cert), 0, 0 },
	{ "client", "tls_key", CONFIG_T_PATH_OPT,
	    FIELD(client_tls_key), 0, 0 },
	{ "client", "max_frame", CONFIG_T_SIZE,
	    FIELD(client_max_frame), KIB, FRAME_MAX_LIMIT },
	{ "client", "max_connections", CONFIG_T_UINT,
	    FIELD(client_max_connections), 1, 1000000 },
	{ "client", "idle_timeout", CONFIG_T_DURATION,
	    FIELD(client_idle_timeout), 1, DAY_SECS },
	{ "client", "output_limit", CONFIG_T_SIZE,
	    FIELD(client_output_limit), 64 * KIB, GIB },
	{ "client", "page_size", CONFIG_T_UINT,
	    FIELD(client_page_size), 1, 10000 },
	{ "client", "page_size_max", CONFIG_T_UINT,
	    FIELD(client_page_size_max), 1, 10000 },

	{ "control", "socket", CONFIG_T_SOCKET_OPT,
	    FIELD(control_socket), 0, 0 },
	{ "control", "admin_group", CONFIG_T_GROUP_OPT,
	    FIELD(control_admin_group), 0, 0 },
	{ "control", "max_connections", CONFIG_T_UINT,
	    FIELD(control_max_connections), 1, 1024 },
	{ "control", "idle_timeout", CONFIG_T_DURATION,
	    FIELD(control_idle_timeout), 1, DAY_SECS },

	{ "vault", "path", CONFIG_T_PATH_OPT,
	    FIELD(vault_path), 0, 0 },
	{ "vault", "map_size", CONFIG_T_SIZE,
	    FIELD(vault_map_size), MIB, TIB },
	{ "vault", "key_file", CONFIG_T_PATH_OPT,
	    FIELD(vault_key_file), 0, 0 },
	{ "vault", "audit_log", CONFIG_T_PATH_OPT,
	    FIELD(vault_audit_log), 0, 0 },
	{ "vault", "order_limit", CONFIG_T_UINT,
	    FIELD(vault_order_limit), 1, UINT32_MAX },
	{ "vault", "daily_limit", CONFIG_T_UINT,
	    FIELD(vault_daily_limit), 1, UINT32_MAX },
	{ "vault", "sync_authentications", CONFIG_T_BOOL,
	    FIELD(vault_sync_authentications), 0, 0 },

	{ "login", "max_failures", CONFIG_T_UINT,
	    FIELD(login_max_failures), 1, 10 },
	{ "login", "lockout", CONFIG_T_DURATION,
	    FIELD(login_lockout), 30 * 60, DAY_SECS },
	{ "login", "address_attempts", CONFIG_T_UINT,
	    FIELD(login_address_attempts), 1, 100000 },
	{ "login", "address_window", CONFIG_T_DURATION,
	    FIELD(login_address_window), 1, DAY_SECS },

	{ "orders", "quantity_max", CONFIG_T_UINT,
	    FIELD(orders_quantity_max), 1, 1000000 },
	{ "orders", "idempotency_ttl", CONFIG_T_DURATION,
	    FIELD(orders_idempotency_ttl), 60, 30 * DAY_SECS },

	{ "mail", "relay", CONFIG_T_HOSTPORT, FIELD(mail_relay), 0, 0 },
	{ "mail", "starttls", CONFIG_T_STARTTLS, FIELD(mail_starttls), 0, 0 },
	{ "mail", "user", CONFIG_T_STRING, FIELD(mail_user), 0, 0 },
	{ "mail", "password_file", CONFIG_T_PATH_OPT,
	    FIELD(mail_password_file), 0, 0 },
	{ "mail", "ca_file", CONFIG_T_PATH_OPT, FIELD(mail_ca_file), 0, 0 },
	{ "mail", "timeout", CONFIG_T_DURATION, FIELD(mail_timeout), 1, 3600 },
	{ "mail", "batch_size", CONFIG_T_UINT, FIELD(mail_batch_size), 1, 1000 },
	{ "mail", "from", CONFIG_T_STRING, FIELD(mail_from), 0, 0 },
	{ "mail", "from_name", CONFIG_T_STRING, FIELD(mail_from_name), 0, 0 },
	{ "mail", "domain", CONFIG_T_STRING, FIELD(mail_domain), 0, 0 },
	{ "mail", "broker_name", CONFIG_T_STRING, FIELD(mail_broker_name),
	    0, 0 },
	{ "mail", "template", CONFIG_T_PATH_OPT, FIELD(mail_template), 0, 0 },
	{ "mail", "token_lifetime", CONFIG_T_DURATION,
	    FIELD(mail_token_lifetime), 1, 30 * DAY_SECS },
	{ "mail", "retry_min", CONFIG_T_DURATION, FIELD(mail_retry_min),
	    1, DAY_SECS },
	{ "mail", "retry_max", CONFIG_T_DURATION, FIELD(mail_retry_max),
	    1, 7 * DAY_SECS },
	{ "mail", "max_age", CONFIG_T_DURATION, FIELD(mail_max_age),
	    1, 30 * DAY_SECS },

	{ "lmtp", "socket", CONFIG_T_SOCKET_OPT, FIELD(lmtp_socket), 0, 0 },
	{ "lmtp", "listen", CONFIG_T_HOSTPORT_OPT, FIELD(lmtp_listen), 0, 0 },
	{ "lmtp", "max_message", CONFIG_T_SIZE, FIELD(lmtp_max_message),
	    4 * KIB, 64 * MIB },
	{ "lmtp", "max_line", CONFIG_T_SIZE, FIELD(lmtp_max_line),
	    1000, 64 * KIB },
	{ "lmtp", "max_recipients", CONFIG_T_UINT, FIELD(lmtp_max_recipients),
	    1, 1000 },
	{ "lmtp", "max_connections", CONFIG_T_UINT,
	    FIELD(lmtp_max_connections), 1, 10000 },
	{ "lmtp", "idle_timeout", CONFIG_T_DURATION, FIELD(lmtp_idle_timeout),
	    1, DAY_SECS },
	{ "lmtp", "require_authentication", CONFIG_T_BOOL,
	    FIELD(lmtp_require_authentication), 0, 0 },
	{ "lmtp", "authserv_id", CONFIG_T_STRING, FIELD(lmtp_authserv_id),
	    0, 0 },

	{ "provider", "listen", CONFIG_T_HOSTPORT_OPT, FIELD(provider_listen),
	    0, 0 },
	{ "provider", "tls_cert", CONFIG_T_PATH_OPT, FIELD(provider_tls_cert),
	    0, 0 },
	{ "provider", "tls_key", CONFIG_T_PATH_OPT, FIELD(provider_tls_key),
	    0, 0 },
	{ "provider", "heartbeat", CONFIG_T_DURATION, FIELD(provider_heartbeat),
	    1, 3600 },
	{ "provider", "window", CONFIG_T_UINT, FIELD(provider_window),
	    1, 10000 },
	{ "provider", "max_connections", CONFIG_T_UINT,
	    FIELD(provider_max_connections), 1, 100000 },
	{ "provider", "max_frame", CONFIG_T_SIZE, FIELD(provider_max_frame),
	    4 * KIB, 16 * MIB },

	{ "metrics", "listen", CONFIG_T_HOSTPORT_OPT, FIELD(metrics_listen),
	    0, 0 },

	{ "fax", "modems", CONFIG_T_STRING, FIELD(fax_modems), 0, 0 },
	{ "fax", "speed", CONFIG_T_UINT, FIELD(fax_speed), 9600, 230400 },
	{ "fax", "flow", CONFIG_T_STRING, FIELD(fax_flow), 0, 0 },
	{ "fax", "init", CONFIG_T_STRING, FIELD(fax_init), 0, 0 },
	{ "fax", "dial_prefix", CONFIG_T_STRING, FIELD(fax_dial_prefix), 0, 0 },
	{ "fax", "international_prefix", CONFIG_T_STRING,
	    FIELD(fax_international_prefix), 0, 0 },
	{ "fax", "ident", CONFIG_T_STRING, FIELD(fax_ident), 0, 0 },
	{ "fax", "broker_name", CONFIG_T_STRING, FIELD(fax_broker_name), 0, 0 },
	{ "fax", "font", CONFIG_T_PATH, FIELD(fax_font), 0, 0 },
	{ "fax", "font_px", CONFIG_T_UINT, FIELD(fax_font_px), 8, 200 },
	{ "fax", "max_bps", CONFIG_T_UINT, FIELD(fax_max_bps), 2400, 14400 },
	{ "fax", "retry_busy", CONFIG_T_DURATION, FIELD(fax_retry_busy),
	    1, DAY_SECS },
	{ "fax", "retry_no_answer", CONFIG_T_DURATION,
	    FIELD(fax_retry_no_answer), 1, DAY_SECS },
	{ "fax", "retry_no_carrier", CONFIG_T_DURATION,
	    FIELD(fax_retry_no_carrier), 1, DAY_SECS },
	{ "fax", "retry_protocol", CONFIG_T_DURATION, FIELD(fax_retry_protocol),
	    1, DAY_SECS },
	{ "fax", "retry_modem", CONFIG_T_DURATION, FIELD(fax_retry_modem),
	    1, DAY_SECS },
	{ "fax", "max_dials", CONFIG_T_UINT, FIELD(fax_max_dials), 1, 100 },
	{ "fax", "max_tries", CONFIG_T_UINT, FIELD(fax_max_tries), 1, 100 },
	{ "fax", "max_no_carrier", CONFIG_T_UINT, FIELD(fax_max_no_carrier),
	    1, 100 },
	{ "fax", "kill_time", CONFIG_T_DURATION, FIELD(fax_kill_time),
	    60, 30 * DAY_SECS },
	{ "fax", "jitter", CONFIG_T_UINT, FIELD(fax_jitter), 0, 50 },
};

#define CONFIG_N_KEYS ELEMENTSOF(config_keys)

/* One config_load() in progress. */
struct config_ctx {
	const char *path;
	FILE *f;
	char *buf;              /* getline() buffer */
	size_t buf_size;
	unsigned line;          /* of the line inih is working on */
	int ret;                /* first error, sticky */
	int read_errno;         /* getline() failed with this */
	unsigned err_line;
	struct config_err *err;
	struct config staged;   /* values read, applied only if all are good */
	unsigned key_line[CONFIG_N_KEYS]; /* where each key was set; 0: not */
};

static bool
config_is_string(enum config_type type)
{
	switch (type) {
	case CONFIG_T_PATH:
	case CONFIG_T_PATH_OPT:
	case CONFIG_T_SOCKET_OPT:
	case CONFIG_T_HOSTPORT:
	case CONFIG_T_GROUP_OPT:
	case CONFIG_T_FACILITY:
	case CONFIG_T_STRING:
	case CONFIG_T_HOSTPORT_OPT:
	case CONFIG_T_STARTTLS:
		return true;
	case CONFIG_T_LOG_LEVEL:
	case CONFIG_T_LOG_TARGET:
	case CONFIG_T_SIZE:
	case CONFIG_T_DURATION:
	case CONFIG_T_UINT:
	case CONFIG_T_BOOL:
		return false;
	}
	return false;
}

static char **
config_string_field(struct config *cfg, const struct config_key *k)
{
	return (char **)(void *)((char *)cfg + k->offset);
}

static void *
config_field(struct config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static void _printf_(2, 3)
config_set_err(struct config_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* Record the first error of a load: "FILE:LINE: reason". */
static void _printf_(4, 5)
config_ctx_fail(struct config_ctx *ctx, int ret, unsigned line,
    const char *fmt, ...)
{
	char reason[sizeof(ctx->err->msg)];
	va_list ap;

	if (ctx->ret < 0)
		return;
	ctx->ret = ret;
	ctx->err_line = line;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	config_set_err(ctx->err, "%s:%u: %s", ctx->path, line, reason);
}

/* Value parsers */

/* Read decimal digits at *p; -EINVAL if none, -ERANGE on overflow. */
static int
config_parse_digits(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	bool overflow = false;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	*p = s;
	if (overflow)
		return -ERANGE;
	*ret = v;
	return 0;
}

/*
 * A number then an optional unit, blanks allowed between them: returns
 * what config_parse_digits() does, or -EINVAL when nothing follows the
 * blanks; *ret_unit points at the unit ("" when there is none).
 */
static int
config_parse_number_unit(const char *s, uint64_t *ret, const char **ret_unit)
{
	const char *p = s, *unit;
	int r;

	r = config_parse_digits(&p, ret);
	if (r == -EINVAL)
		return r;
	unit = p;
	while (*unit == ' ' || *unit == '\t')
		unit++;
	if (unit != p && !*unit)
		return -EINVAL;
	*ret_unit = unit;
	return r;
}

int
config_parse_size(const char *s, uint64_t *ret)
{
	const char *p = NULL;
	unsigned shift = 0;
	uint64_t v = 0;
	int r;

	r = config_parse_number_unit(s, &v, &p);
	if (r == -EINVAL)
		return r;
	/* Check the unit before reporting an overflow: "99...9Q" is no size. */
	switch (toupper((unsigned char)*p)) {
	case 'K': shift = 10; p++; break;
	case 'M': shift = 20; p++; break;
	case 'G': shift = 30; p++; break;
	case 'T': shift = 40; p++; break;
	default: break;
	}
	if (shift && toupper((unsigned char)p[0]) == 'I' &&
	    toupper((unsigned char)p[1]) == 'B')
		p += 2;
	else if (toupper((unsigned char)*p) == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (r < 0 || v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = v << shift;
	return 0;
}

int
config_parse_duration(const char *s, uint32_t *ret)
{
	const char *p = NULL;
	uint64_t v = 0, mult = 1;
	int r;

	r = config_parse_number_unit(s, &v, &p);
	if (r == -EINVAL)
		return r;
	switch (tolower((unsigned char)*p)) {
	case 's': mult = 1; p++; break;
	case 'm': mult = 60; p++; break;
	case 'h': mult = 60 * 60; p++; break;
	case 'd': mult = DAY_SECS; p++; break;
	default: break;
	}
	if (*p)
		return -EINVAL;
	if (r < 0 || v > UINT32_MAX / mult)
		return -ERANGE;
	*ret = (uint32_t)(v * mult);
	return 0;
}

int
config_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* A DNS name or dotted IPv4 address, as far as syntax goes. */
static bool
config_host_ok(const char *host, size_t len)
{
	struct in_addr a4;
	char buf[CONFIG_HOST_MAX];
	bool numeric = true;
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (!isdigit(c))
			numeric = false;
		if (++label > 63)
			return false;
	}
	if (!numeric)
		return true;
	/* All digits and dots: it has to be a real IPv4 address. */
	memcpy(buf, host, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, &a4) == 1;
}

int
config_split_hostport(const char *s, char ret_host[CONFIG_HOST_MAX],
    uint16_t *ret_port)
{
	const char *host, *colon, *p;
	size_t host_len;
	uint64_t port = 0;

	if (s[0] == '[') {
		struct in6_addr a6;
		char buf[INET6_ADDRSTRLEN];
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		host_len = (size_t)(close - host);
		if (host_len == 0 || host_len >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, host, host_len);
		buf[host_len] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return -EINVAL;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		host = s;
		host_len = (size_t)(colon - s);
		/* An IPv6 address needs brackets. */
		if (memchr(host, ':', host_len) ||
		    !config_host_ok(host, host_len))
			return -EINVAL;
	}
	p = colon + 1;
	if (strlen(p) > 5 || config_parse_digits(&p, &port) < 0 || *p ||
	    port > UINT16_MAX)
		return -EINVAL;
	if (host_len >= CONFIG_HOST_MAX)
		return -EINVAL;
	memcpy(ret_host, host, host_len);
	ret_host[host_len] = '\0';
	*ret_port = (uint16_t)port;
	return 0;
}

int
config_parse_hostport(const char *s)
{
	char host[CONFIG_HOST_MAX];
	uint16_t port;

	return config_split_hostport(s, host, &port);
}

int
config_syslog_facility(const char *name, int *ret_facility)
{
	static const struct {
		const char *name;
		int facility;
	} facilities[] = {
		{ "daemon", LOG_DAEMON },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};

	for (size_t i = 0; i < ELEMENTSOF(facilities); i++)
		if (strcmp(name, facilities[i].name) == 0) {
			*ret_facility = facilities[i].facility;
			return 0;
		}
	return -EINVAL;
}

/* A group name as useradd(8) takes it, or a numeric gid. */
static bool
config_group_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 32 || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c) || c == '_' || c == '-' || c == '.')
			continue;
		if (c == '$' && i == len - 1 && i > 0)
			continue;
		return false;
	}
	return true;
}

static bool
config_path_ok(const char *s)
{
	if (s[0] != '/')
		return false;
	for (; *s; s++)
		if (iscntrl((unsigned char)*s))
			return false;
	return true;
}

/* "1K", "64M", "300s", "1d": a limit written the way a user would. */
static void
config_fmt_size(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "KMGT";
	int i;

	for (i = 3; i >= 0; i--) {
		uint64_t m = (uint64_t)1 << (10 * (i + 1));

		if (v && v % m == 0) {
			snprintf(buf, size, "%" PRIu64 "%c", v / m, units[i]);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64, v);
}

static void
config_fmt_duration(uint64_t v, char *buf, size_t size)
{
	if (v && v % DAY_SECS == 0)
		snprintf(buf, size, "%" PRIu64 "d", v / DAY_SECS);
	else if (v && v % 3600 == 0)
		snprintf(buf, size, "%" PRIu64 "h", v / 3600);
	else if (v && v % 60 == 0)
		snprintf(buf, size, "%" PRIu64 "m", v / 60);
	else
		snprintf(buf, size, "%" PRIu64 "s", v);
}

static void
config_fmt_value(enum config_type type, uint64_t v, char *buf, size_t size)
{
	if (type == CONFIG_T_SIZE)
		config_fmt_size(v, buf, size);
	else if (type == CONFIG_T_DURATION)
		config_fmt_duration(v, buf, size);
	else
		snprintf(buf, size, "%" PRIu64, v);
}

static void
config_store_uint(void *field, size_t width, uint64_t v)
{
	if (width == sizeof(uint64_t)) {
		uint64_t v64 = v;

		memcpy(field, &v64, sizeof(v64));
	} else {
		uint32_t v32 = (uint32_t)v;

		memcpy(field, &v32, sizeof(v32));
	}
}

/* Free text: at most 255 bytes, no control characters. */
static bool
config_text_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * Parse value for key k into cfg. 0, or -EINVAL / -ENOMEM with the
 * reason (without file, line and key) in reason.
 */
static int
config_set(struct config *cfg, const struct config_key *k, const char *value,
    char *reason, size_t reason_size)
{
	char lo[32], hi[32], *copy, **field;
	const char *what = NULL;
	uint64_t v = 0;
	uint32_t v32 = 0;
	int r = 0;

	switch (k->type) {
	case CONFIG_T_PATH:
	case CONFIG_T_PATH_OPT:
	case CONFIG_T_SOCKET_OPT:
		if (!*value && k->type != CONFIG_T_PATH)
			break;
		if (!config_path_ok(value)) {
			snprintf(reason, reason_size,
			    "not an absolute path: %s", value);
			return -EINVAL;
		}
		if (k->type == CONFIG_T_SOCKET_OPT &&
		    strlen(value) > CONFIG_SOCKET_PATH_MAX) {
			snprintf(reason, reason_size,
			    "socket path longer than %d bytes: %s",
			    CONFIG_SOCKET_PATH_MAX, value);
			return -EINVAL;
		}
		break;
	case CONFIG_T_HOSTPORT:
	case CONFIG_T_HOSTPORT_OPT:
		if (!*value && k->type == CONFIG_T_HOSTPORT_OPT)
			break;
		if (config_parse_hostport(value) < 0) {
			snprintf(reason, reason_size,
			    "not a host:port or [address]:port: %s", value);
			return -EINVAL;
		}
		break;
	case CONFIG_T_STRING:
		if (!config_text_ok(value)) {
			snprintf(reason, reason_size,
			    "not printable text of at most 255 bytes");
			return -EINVAL;
		}
		break;
	case CONFIG_T_STARTTLS:
		if (strcmp(value, "never") != 0 &&
		    strcmp(value, "when-available") != 0 &&
		    strcmp(value, "required") != 0) {
			snprintf(reason, reason_size,
			    "not never, when-available or required: %s", value);
			return -EINVAL;
		}
		break;
	case CONFIG_T_GROUP_OPT:
		if (*value && !config_group_ok(value)) {
			snprintf(reason, reason_size, "not a group name: %s",
			    value);
			return -EINVAL;
		}
		break;
	case CONFIG_T_FACILITY: {
		int facility;

		if (config_syslog_facility(value, &facility) < 0) {
			snprintf(reason, reason_size,
			    "not a syslog facility (daemon, local0..local7): %s",
			    value);
			return -EINVAL;
		}
		break;
	}
	case CONFIG_T_LOG_LEVEL: {
		enum log_level level;

		if (log_level_from_string(value, &level) < 0) {
			snprintf(reason, reason_size,
			    "not a log level (err, warn, info, debug): %s",
			    value);
			return -EINVAL;
		}
		*(enum log_level *)config_field(cfg, k) = level;
		return 0;
	}
	case CONFIG_T_LOG_TARGET: {
		enum log_target target;

		if (strcmp(value, "stderr") == 0) {
			target = LOG_TARGET_STDERR;
		} else if (strcmp(value, "syslog") == 0) {
			target = LOG_TARGET_SYSLOG;
		} else if (strcmp(value, "file") == 0) {
			target = LOG_TARGET_FILE;
		} else {
			snprintf(reason, reason_size,
			    "not a log target (stderr, syslog, file): %s", value);
			return -EINVAL;
		}
		*(enum log_target *)config_field(cfg, k) = target;
		return 0;
	}
	case CONFIG_T_BOOL: {
		bool b;

		if (config_parse_bool(value, &b) < 0) {
			snprintf(reason, reason_size,
			    "not a boolean (yes, no): %s", value);
			return -EINVAL;
		}
		*(bool *)config_field(cfg, k) = b;
		return 0;
	}
	case CONFIG_T_SIZE:
		what = "a size";
		r = config_parse_size(value, &v);
		break;
	case CONFIG_T_DURATION:
		what = "a duration";
		r = config_parse_duration(value, &v32);
		v = v32;
		break;
	case CONFIG_T_UINT: {
		const char *p = value;

		what = "a number";
		r = config_parse_digits(&p, &v);
		if (r != -EINVAL && *p)
			r = -EINVAL;
		break;
	}
	}

	if (what) {
		if (r == -EINVAL) {
			snprintf(reason, reason_size, "not %s: %s", what,
			    value);
			return -EINVAL;
		}
		if (r < 0 || v < k->min || v > k->max) {
			config_fmt_value(k->type, k->min, lo, sizeof(lo));
			config_fmt_value(k->type, k->max, hi, sizeof(hi));
			snprintf(reason, reason_size, "out of range %s..%s: %s",
			    lo, hi, value);
			return -EINVAL;
		}
		config_store_uint(config_field(cfg, k), k->width, v);
		return 0;
	}

	/* A string type that passed its checks. */
	copy = strdup(value);
	if (!copy) {
		snprintf(reason, reason_size, "out of memory");
		return -ENOMEM;
	}
	field = config_string_field(cfg, k);
	free(*field);
	*field = copy;
	return 0;
}

static const struct config_key *
config_find_key(const char *section, const char *name, size_t *ret_index)
{
	for (size_t i = 0; i < CONFIG_N_KEYS; i++)
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0) {
			*ret_index = i;
			return &config_keys[i];
		}
	return NULL;
}

static bool
config_section_known(const char *section)
{
	for (size_t i = 0; i < CONFIG_N_KEYS; i++)
		if (strcmp(config_keys[i].section, section) == 0)
			return true;
	return false;
}

/* inih handler: one "name = value" line, at ctx->line. */
static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct config_ctx *ctx = user;
	const struct config_key *k;
	char reason[sizeof(ctx->err->msg)];
	size_t i = 0;
	int r;

	if (ctx->ret < 0)
		return 0;
	if (!*section) {
		config_ctx_fail(ctx, -EINVAL, ctx->line,
		    "%s: key outside any [section]", name);
		return 0;
	}
	k = config_find_key(section, name, &i);
	if (!k) {
		/* Unknown sections never get here: the reader stops there. */
		config_ctx_fail(ctx, -EINVAL, ctx->line, "%s.%s: unknown key",
		    section, name);
		return 0;
	}
	if (ctx->key_line[i]) {
		config_ctx_fail(ctx, -EINVAL, ctx->line,
		    "%s.%s: duplicate key (first set on line %u)", section,
		    name, ctx->key_line[i]);
		return 0;
	}
	r = config_set(&ctx->staged, k, value, reason, sizeof(reason));
	if (r < 0) {
		config_ctx_fail(ctx, r, ctx->line, "%s.%s: %s", section, name,
		    reason);
		return 0;
	}
	ctx->key_line[i] = ctx->line;
	return 1;
}

static char *
config_rstrip(char *start, char *end)
{
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return end;
}

/*
 * inih reader: hand inih one line at a time, so ctx->line is the line its
 * handler is called for. Lines are cleaned on the way: blanks around them
 * and comments removed (a leading blank would otherwise make a
 * continuation line), unknown sections and over-long lines stopped here.
 * Returning NULL ends the parse.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct config_ctx *ctx = stream;
	char *p, *end, *hash;
	ssize_t n;
	size_t len;

	if (ctx->ret < 0 || num < 3)
		return NULL;
	errno = 0;
	n = getline(&ctx->buf, &ctx->buf_size, ctx->f);
	if (n < 0) {
		if (ferror(ctx->f))
			ctx->read_errno = errno > 0 ? errno : EIO;
		return NULL;
	}
	ctx->line++;
	p = ctx->buf;
	end = p + n;
	if (memchr(p, '\0', (size_t)n)) {
		config_ctx_fail(ctx, -EINVAL, ctx->line,
		    "syntax error: NUL byte");
		return NULL;
	}
	if (ctx->line == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (isspace((unsigned char)*p))
		p++;
	end = config_rstrip(p, end);

	if (*p == '#' || *p == ';') {
		*p = '\0';
		end = p;
	} else if (*p) {
		/* A blank then '#' or ';' starts a comment. */
		for (hash = p + 1; (hash = strpbrk(hash, "#;")); hash++)
			if (hash[-1] == ' ' || hash[-1] == '\t') {
				end = config_rstrip(p, hash);
				break;
			}
	}

	if (*p == '[') {
		char *close = strchr(p, ']');

		/* No ']': inih reports the syntax error. */
		if (close) {
			if (close[1]) {
				/* inih would ignore it. */
				config_ctx_fail(ctx, -EINVAL, ctx->line,
				    "syntax error");
				return NULL;
			}
			*close = '\0';
			if (!config_section_known(p + 1)) {
				config_ctx_fail(ctx, -EINVAL, ctx->line,
				    "[%s]: unknown section", p + 1);
				return NULL;
			}
			*close = ']';
		}
	}

	len = (size_t)(end - p);
	if (len > (size_t)num - 3) {
		config_ctx_fail(ctx, -EINVAL, ctx->line,
		    "line too long (more than %d characters)", num - 3);
		return NULL;
	}
	memcpy(str, p, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/* Move the keys ctx read from ctx->staged into cfg. Cannot fail. */
static void
config_apply(struct config *cfg, struct config_ctx *ctx)
{
	for (size_t i = 0; i < CONFIG_N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (!ctx->key_line[i])
			continue;
		if (config_is_string(k->type)) {
			char **dst = config_string_field(cfg, k);
			char **src = config_string_field(&ctx->staged, k);

			free(*dst);
			*dst = TAKE_PTR(*src);
		} else {
			memcpy(config_field(cfg, k),
			    config_field(&ctx->staged, k), k->width);
		}
		if (k->type == CONFIG_T_LOG_TARGET)
			cfg->log_target_set = true;
	}
}

int
config_load(struct config *cfg, const char *path, struct config_err *err)
{
	struct config_ctx ctx = {
		.path = path,
		.err = err,
	};
	_cleanup_free_ char *source = NULL;
	int r;

	ctx.f = fopen(path, "re");
	if (!ctx.f) {
		r = -errno;
		config_set_err(err, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}

	r = ini_parse_stream(config_reader, &ctx, config_handler, &ctx);

	if (r > 0 && (ctx.ret == 0 || (unsigned)r < ctx.err_line)) {
		/* inih met a line it cannot parse before any error of ours. */
		ctx.ret = 0;
		config_ctx_fail(&ctx, -EINVAL, (unsigned)r, "syntax error");
	} else if (r < 0 && ctx.ret == 0) {
		ctx.ret = -ENOMEM;
		config_set_err(err, "%s: out of memory", path);
	} else if (ctx.ret == 0 && ctx.read_errno) {
		ctx.ret = -ctx.read_errno;
		config_set_err(err, "%s: cannot read: %s", path,
		    strerror(ctx.read_errno));
	}

	if (ctx.ret == 0) {
		source = strdup(path);
		if (!source) {
			ctx.ret = -ENOMEM;
			config_set_err(err, "%s: out of memory", path);
		}
	}
	if (ctx.ret == 0) {
		config_apply(cfg, &ctx);
		free(cfg->source);
		cfg->source = TAKE_PTR(source);
	}

	fclose(ctx.f);
	free(ctx.buf);
	config_free(&ctx.staged);
	return ctx.ret;
}

/* "FILE: KEY: reason", or "KEY: reason" when no file was loaded. */
static int _printf_(3, 4)
config_finish_fail(const struct config *cfg, struct config_err *err,
    const char *fmt, ...)
{
	char reason[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (cfg->source)
		config_set_err(err, "%s: %s", cfg->source, reason);
	else
		config_set_err(err, "%s", reason);
	return -EINVAL;
}

/* Set *field to dir/name when it is empty. */
static int
config_derive(char **field, const char *dir, const char *name)
{
	size_t len = strlen(dir);
	char *s;

	if (**field)
		return 0;
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (asprintf(&s, "%.*s/%s", (int)len, len == 1 ? "" : dir, name) < 0)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static bool
config_domain_ok(const char *d)
{
	return config_host_ok(d, strlen(d));
}

/* user@domain with a plausible domain, as mail.from must be. */
static bool
config_addr_ok(const char *a)
{
	const char *at = strrchr(a, '@');

	if (!at || at == a || strchr(a, ' ') || strchr(a, '<') ||
	    strchr(a, '>') || strchr(a, '"'))
		return false;
	return config_domain_ok(at + 1);
}

static bool
config_loopback(const char *hostport)
{
	char host[CONFIG_HOST_MAX];
	uint16_t port;

	if (config_split_hostport(hostport, host, &port) < 0)
		return false;
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "localhost") == 0;
}

int
config_fax_modem_next(const char **cursor, char *buf, size_t size)
{
	const char *p = *cursor;
	size_t n;

	p += strspn(p, " \t,");
	if (*p == '\0')
		return 0;
	n = strcspn(p, " \t,");
	*cursor = p + n;
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 1;
}

static int
config_fax_modems_check(struct config *cfg, struct config_err *err)
{
	const char *cur = cfg->fax_modems;
	char dev[CONFIG_SOCKET_PATH_MAX + 150];
	unsigned n = 0;
	int r;

	while ((r = config_fax_modem_next(&cur, dev, sizeof(dev))) > 0) {
		if (dev[0] != '/')
			return config_finish_fail(cfg, err,
			    "fax.modems: not an absolute device path: %s", dev);
		if (++n > CONFIG_FAX_MODEMS_MAX)
			return config_finish_fail(cfg, err,
			    "fax.modems: more than %d devices",
			    CONFIG_FAX_MODEMS_MAX);
	}
	if (r < 0)
		return config_finish_fail(cfg, err,
		    "fax.modems: a device path is too long");
	return 0;
}

int
config_finish(struct config *cfg, struct config_err *err)
{
	char a[32], b[32];

	/* A NULL string: config_defaults() failed or was never called. */
	for (size_t i = 0; i < CONFIG_N_KEYS; i++)
		if (config_is_string(config_keys[i].type) &&
		    !*config_string_field(cfg, &config_keys[i])) {
			config_set_err(err, "%s.%s: not set (no defaults)",
			    config_keys[i].section, config_keys[i].name);
			return -EINVAL;
		}
	if (config_derive(&cfg->store_path, cfg->state_dir, "broker") < 0 ||
	    config_derive(&cfg->control_socket, cfg->state_dir,
	    "control.sock") < 0 ||
	    config_derive(&cfg->vault_path, cfg->state_dir, "vault") < 0 ||
	    config_derive(&cfg->vault_audit_log, cfg->state_dir,
	    "audit.log") < 0 ||
	    config_derive(&cfg->lmtp_socket, cfg->state_dir, "lmtp.sock") < 0) {
		config_set_err(err, "out of memory");
		return -ENOMEM;
	}

	if (*cfg->client_tls_cert && !*cfg->client_tls_key)
		return config_finish_fail(cfg, err,
		    "client.tls_cert: set without client.tls_key");
	if (*cfg->client_tls_key && !*cfg->client_tls_cert)
		return config_finish_fail(cfg, err,
		    "client.tls_key: set without client.tls_cert");
	if (cfg->client_output_limit < 2 * (uint64_t)cfg->client_max_frame) {
		config_fmt_size(2 * (uint64_t)cfg->client_max_frame, a,
		    sizeof(a));
		config_fmt_size(cfg->client_output_limit, b, sizeof(b));
		return config_finish_fail(cfg, err,
		    "client.output_limit: less than twice client.max_frame (%s): %s",
		    a, b);
	}
	if (cfg->vault_order_limit > cfg->vault_daily_limit)
		return config_finish_fail(cfg, err,
		    "vault.order_limit: more than vault.daily_limit (%" PRIu32
		    "): %" PRIu32, cfg->vault_daily_limit,
		    cfg->vault_order_limit);
	if (cfg->client_page_size > cfg->client_page_size_max)
		return config_finish_fail(cfg, err,
		    "client.page_size: more than client.page_size_max (%" PRIu32
		    "): %" PRIu32, cfg->client_page_size_max,
		    cfg->client_page_size);
	if (strlen(cfg->control_socket) > CONFIG_SOCKET_PATH_MAX)
		return config_finish_fail(cfg, err,
		    "control.socket: socket path longer than %d bytes: %s",
		    CONFIG_SOCKET_PATH_MAX, cfg->control_socket);
	if (strlen(cfg->lmtp_socket) > CONFIG_SOCKET_PATH_MAX)
		return config_finish_fail(cfg, err,
		    "lmtp.socket: socket path longer than %d bytes: %s",
		    CONFIG_SOCKET_PATH_MAX, cfg->lmtp_socket);
	if (*cfg->mail_user && !*cfg->mail_password_file)
		return config_finish_fail(cfg, err,
		    "mail.user: set without mail.password_file");
	if (*cfg->mail_password_file && !*cfg->mail_user)
		return config_finish_fail(cfg, err,
		    "mail.password_file: set without mail.user");
	if (!config_addr_ok(cfg->mail_from))
		return config_finish_fail(cfg, err,
		    "mail.from: not an address like user@example.org: %s",
		    cfg->mail_from);
	if (!config_domain_ok(cfg->mail_domain))
		return config_finish_fail(cfg, err,
		    "mail.domain: not a domain name: %s", cfg->mail_domain);
	if (cfg->mail_retry_min > cfg->mail_retry_max)
		return config_finish_fail(cfg, err,
		    "mail.retry_min: more than mail.retry_max (%" PRIu32
		    "s): %" PRIu32 "s", cfg->mail_retry_max,
		    cfg->mail_retry_min);
	if (*cfg->provider_listen &&
	    (!*cfg->provider_tls_cert || !*cfg->provider_tls_key))
		return config_finish_fail(cfg, err,
		    "provider.listen: set without provider.tls_cert and "
		    "provider.tls_key (the provider channel is TLS only)");
	if (cfg->lmtp_require_authentication && !*cfg->lmtp_authserv_id)
		return config_finish_fail(cfg, err,
		    "lmtp.require_authentication: yes without lmtp.authserv_id");
	if (cfg->log_target == LOG_TARGET_FILE && !*cfg->log_file)
		return config_finish_fail(cfg, err,
		    "daemon.log_target: file without daemon.log_file");
	if (strcmp(cfg->log_format, "text") != 0 &&
	    strcmp(cfg->log_format, "json") != 0)
		return config_finish_fail(cfg, err,
		    "daemon.log_format: not text or json: %s", cfg->log_format);
	if (*cfg->metrics_listen && !config_loopback(cfg->metrics_listen))
		return config_finish_fail(cfg, err,
		    "metrics.listen: not a loopback address (127.0.0.0/8, [::1], localhost): %s",
		    cfg->metrics_listen);
	if (strcmp(cfg->fax_flow, "rtscts") != 0 &&
	    strcmp(cfg->fax_flow, "xonxoff") != 0)
		return config_finish_fail(cfg, err,
		    "fax.flow: not rtscts or xonxoff: %s", cfg->fax_flow);
	if (config_fax_modems_check(cfg, err) < 0)
		return -EINVAL;
	if (strlen(cfg->fax_ident) > 20)
		return config_finish_fail(cfg, err,
		    "fax.ident: longer than 20 characters (T.30): %s",
		    cfg->fax_ident);
	if (strspn(cfg->fax_dial_prefix, "0123456789*#,WwTtPp!@") !=
	    strlen(cfg->fax_dial_prefix) ||
	    strspn(cfg->fax_international_prefix, "0123456789") !=
	    strlen(cfg->fax_international_prefix))
		return config_finish_fail(cfg, err,
		    "fax.dial_prefix or fax.international_prefix: only dial "
		    "digits and modifiers");
	if (*cfg->lmtp_listen && !config_loopback(cfg->lmtp_listen))
		return config_finish_fail(cfg, err,
		    "lmtp.listen: not a loopback address (127.0.0.0/8, [::1], localhost): %s",
		    cfg->lmtp_listen);
	return 0;
}

int
config_defaults(struct config *cfg)
{
	*cfg = (struct config){
		.log_level = LOG_LEVEL_INFO,
		.log_target = LOG_TARGET_STDERR,
		.log_target_set = false,
		.map_size = GIB,
		.client_max_frame = FRAME_MAX_DEFAULT,
		.client_max_connections = 1024,
		.client_idle_timeout = 300,
		.client_output_limit = MIB,
		.client_page_size = 50,
		.client_page_size_max = 500,
		.control_max_connections = 16,
		.control_idle_timeout = 60,
		.vault_map_size = 64 * MIB,
		.vault_order_limit = 1000000,
		.vault_daily_limit = 3000000,
		.login_max_failures = 5,
		.login_lockout = 30 * 60,
		.login_address_attempts = 20,
		.login_address_window = 60,
		.orders_quantity_max = 100,
		.orders_idempotency_ttl = DAY_SECS,
		.mail_timeout = 60,
		.mail_batch_size = 20,
		.mail_token_lifetime = DAY_SECS,
		.mail_retry_min = 60,
		.mail_retry_max = 60 * 60,
		.mail_max_age = DAY_SECS,
		.lmtp_max_message = MIB,
		.lmtp_max_line = 4 * KIB,
		.lmtp_max_recipients = 20,
		.lmtp_max_connections = 16,
		.lmtp_idle_timeout = 5 * 60,
		.lmtp_require_authentication = false,
		.provider_heartbeat = 10,
		.provider_window = 32,
		.provider_max_connections = 256,
		.provider_max_frame = MIB,
		.fax_speed = 115200,
		.fax_font_px = 24,
		.fax_max_bps = 14400,
		.fax_retry_busy = 3 * 60,
		.fax_retry_no_answer = 5 * 60,
		.fax_retry_no_carrier = 5 * 60,
		.fax_retry_protocol = 60,
		.fax_retry_modem = 60,
		.fax_max_dials = 12,
		.fax_max_tries = 3,
		.fax_max_no_carrier = 2,
		.fax_kill_time = 3 * 60 * 60,
		.fax_jitter = 20,
	};
	cfg->state_dir = strdup(CONFIG_STATE_DIR_DEFAULT);
	cfg->pid_file = strdup("");
	cfg->syslog_facility = strdup("daemon");
	cfg->store_path = strdup("");
	cfg->client_listen = strdup(CONFIG_LISTEN_DEFAULT);
	cfg->client_tls_cert = strdup("");
	cfg->client_tls_key = strdup("");
	cfg->control_socket = strdup("");
	cfg->control_admin_group = strdup("");
	cfg->vault_path = strdup("");
	cfg->vault_key_file = strdup("");
	cfg->vault_audit_log = strdup("");
	cfg->mail_relay = strdup("127.0.0.1:25");
	cfg->mail_starttls = strdup("when-available");
	cfg->mail_user = strdup("");
	cfg->mail_password_file = strdup("");
	cfg->mail_ca_file = strdup("");
	cfg->mail_from = strdup("twinroute@localhost");
	cfg->mail_from_name = strdup("twinroute");
	cfg->mail_domain = strdup("localhost");
	cfg->mail_broker_name = strdup("twinroute");
	cfg->log_file = strdup("");
	cfg->log_format = strdup("text");
	cfg->metrics_listen = strdup("");
	cfg->fax_modems = strdup("");
	cfg->fax_flow = strdup("rtscts");
	cfg->fax_init = strdup("ATZ");
	cfg->fax_dial_prefix = strdup("");
	cfg->fax_international_prefix = strdup("");
	cfg->fax_ident = strdup("");
	cfg->fax_broker_name = strdup("twinroute");
	cfg->fax_font = strdup(
	    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf");
	cfg->mail_template = strdup("");
	cfg->lmtp_socket = strdup("");
	cfg->lmtp_listen = strdup("");
	cfg->lmtp_authserv_id = strdup("");
	cfg->provider_listen = strdup("");
	cfg->provider_tls_cert = strdup("");
	cfg->provider_tls_key = strdup("");
	for (size_t i = 0; i < CONFIG_N_KEYS; i++)
		if (config_is_string(config_keys[i].type) &&
		    !*config_string_field(cfg, &config_keys[i])) {
			config_free(cfg);
			return -ENOMEM;
		}
	if (!cfg->vault_path || !cfg->vault_key_file || !cfg->vault_audit_log ||
	    !cfg->state_dir || !cfg->pid_file || !cfg->syslog_facility ||
	    !cfg->store_path || !cfg->client_listen || !cfg->client_tls_cert ||
	    !cfg->client_tls_key || !cfg->control_socket ||
	    !cfg->control_admin_group) {
		config_free(cfg);
		return -ENOMEM;
	}
	return 0;
}

void
config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < CONFIG_N_KEYS; i++)
		if (config_is_string(config_keys[i].type))
			free(*config_string_field(cfg, &config_keys[i]));
	free(cfg->source);
	*cfg = (struct config){ 0 };
}
