/* SPDX-License-Identifier: ISC */
/* config.h -- twinrouted's settings: embedded defaults, overridden by an INI file */
#ifndef TR_CONFIG_H
#define TR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define CONFIG_PATH_DEFAULT "/etc/twinroute/twinroute.conf"

/* Defaults and limits used outside the key table in config.c. */
#define CONFIG_STATE_DIR_DEFAULT "/var/lib/twinroute"
#define CONFIG_LISTEN_DEFAULT "127.0.0.1:7420"
#define CONFIG_SOCKET_PATH_MAX 107 /* sizeof(sun_path) - 1 */
#define CONFIG_HOST_MAX 256
#define CONFIG_FAX_MODEMS_MAX 16  /* devices in [fax] modems */        /* host part of host:port, with its NUL */

/*
 * Every string is malloc'ed and never NULL after config_defaults(); ""
 * means "unset" where the comment says so. After config_finish(),
 * store_path and control_socket are filled in.
 */
struct config {
	/* [daemon] */
	char *state_dir;          /* default /var/lib/twinroute */
	char *pid_file;           /* default "" (none) */
	enum log_level log_level; /* default info */
	enum log_target log_target; /* default: stderr in foreground, else syslog */
	bool log_target_set;      /* log_target came from a file */
	char *syslog_facility;    /* default daemon; config_syslog_facility() */
	char *log_file;           /* with log_target = file; default "" */
	char *log_format;         /* text (default) | json: one object a line */

	/* [store] */
	char *store_path;         /* default STATE_DIR/broker */
	uint64_t map_size;        /* default 1 GiB */

	/* [client] */
	char *client_listen;      /* default 127.0.0.1:7420 */
	char *client_tls_cert;    /* default "" (plain TCP) */
	char *client_tls_key;
	uint32_t client_max_frame;     /* default 64 KiB */
	uint32_t client_max_connections; /* default 1024 */
	uint32_t client_idle_timeout;  /* seconds, default 300 */
	uint32_t client_output_limit;  /* bytes, default 1 MiB */
	uint32_t client_page_size;     /* default 50 */
	uint32_t client_page_size_max; /* default 500 */

	/* [control] */
	char *control_socket;     /* default STATE_DIR/control.sock */
	char *control_admin_group;/* default "" (root and the daemon's uid only) */
	uint32_t control_max_connections; /* default 16 */
	uint32_t control_idle_timeout;    /* seconds, default 60 */

	/* [vault] */
	char *vault_path;         /* default STATE_DIR/vault */
	uint64_t vault_map_size;  /* default 256 MiB */
	char *vault_key_file;     /* default "": Shamir shares, start sealed */
	char *vault_audit_log;    /* default STATE_DIR/audit.log */
	uint32_t vault_order_limit; /* minor units per authentication, default 1000000 */
	uint32_t vault_daily_limit; /* minor units per member and currency in 24 h, default 3000000 */
	bool vault_sync_authentications; /* fdatasync each batch's audit lines; default no */

	/* [login] */
	uint32_t login_max_failures;   /* failed passwords before a lockout, default 5 (1..10) */
	uint32_t login_lockout;        /* seconds, default 30 min (at least 30 min) */
	uint32_t login_address_attempts; /* logins per address per window, default 20 */
	uint32_t login_address_window; /* seconds, default 60 */

	/* [orders] */
	uint32_t orders_quantity_max;  /* default 100 */
	uint32_t orders_idempotency_ttl; /* seconds an idempotency key is kept, default 24 h */

	/* [mail] */
	char *mail_relay;         /* default 127.0.0.1:25 */
	char *mail_starttls;      /* never | when-available (default) | required */
	char *mail_user;          /* default "": no SMTP AUTH */
	char *mail_password_file; /* default "" */
	char *mail_ca_file;       /* default "": the system's CA store */
	uint32_t mail_timeout;    /* seconds per SMTP exchange, default 60 */
	uint32_t mail_batch_size; /* messages per SMTP session, default 20 */
	char *mail_from;          /* default twinroute@localhost */
	char *mail_from_name;     /* default twinroute */
	char *mail_domain;        /* confirm+TOKEN@DOMAIN, default localhost */
	char *mail_broker_name;   /* default twinroute */
	char *mail_template;      /* default "": the embedded template */
	uint32_t mail_token_lifetime; /* seconds, default 24 h */
	uint32_t mail_retry_min;  /* first retry after, default 1 min */
	uint32_t mail_retry_max;  /* longest wait between retries, default 1 h */
	uint32_t mail_max_age;    /* give up after, default 24 h */

	/* [lmtp] */
	char *lmtp_socket;        /* default STATE_DIR/lmtp.sock */
	char *lmtp_listen;        /* default "": no TCP; loopback only */
	uint32_t lmtp_max_message; /* default 1 MiB */
	uint32_t lmtp_max_line;   /* default 4 KiB */
	uint32_t lmtp_max_recipients; /* default 20 */
	uint32_t lmtp_max_connections; /* default 16 */
	uint32_t lmtp_idle_timeout; /* seconds, default 5 min */
	bool lmtp_require_authentication; /* default no */
	char *lmtp_authserv_id;   /* trusted Authentication-Results id, default "" */

	/* [provider] */
	char *provider_listen;    /* default "": no provider channel */
	char *provider_tls_cert;  /* required with listen */
	char *provider_tls_key;
	uint32_t provider_heartbeat; /* seconds, default 10 */
	uint32_t provider_window; /* unacknowledged dispatches, default 32 */
	uint32_t provider_max_connections; /* default 256 */
	uint32_t provider_max_frame; /* default 1 MiB */
	/* [metrics] */
	char *metrics_listen;     /* default "": no metrics; loopback only */
	/* [fax] */
	char *fax_modems;         /* device paths, blank-separated; "": none */
	uint32_t fax_speed;       /* DTE speed, default 115200 */
	char *fax_flow;           /* rtscts (default) | xonxoff */
	char *fax_init;           /* default ATZ */
	char *fax_dial_prefix;    /* default "" */
	char *fax_international_prefix; /* replaces a number's "+", default "" */
	char *fax_ident;          /* our TSI, default "" */
	char *fax_broker_name;    /* on the page, default twinroute */
	char *fax_font;           /* default DejaVu Sans Mono */
	uint32_t fax_font_px;     /* cap height, default 24 */
	uint32_t fax_max_bps;     /* default 14400 */
	uint32_t fax_retry_busy;  /* seconds, default 3 min */
	uint32_t fax_retry_no_answer;  /* default 5 min */
	uint32_t fax_retry_no_carrier; /* default 5 min */
	uint32_t fax_retry_protocol;   /* default 1 min */
	uint32_t fax_retry_modem;      /* default 1 min */
	uint32_t fax_max_dials;   /* default 12 */
	uint32_t fax_max_tries;   /* default 3 */
	uint32_t fax_max_no_carrier; /* default 2 */
	uint32_t fax_kill_time;   /* seconds, default 3 h */
	uint32_t fax_jitter;      /* percent, default 20 */

	/* The last file loaded, for messages; NULL when none was. */
	char *source;
};

/* What is wrong with a config, ready to print. */
struct config_err {
	char msg[512];            /* "FILE:LINE: KEY: reason" */
};

/*
 * Fill cfg with the embedded defaults (cfg's old contents are not
 * freed). 0 or -ENOMEM; on failure cfg holds nothing to free.
 */
int config_defaults(struct config *cfg);
/*
 * Read path over the values already in cfg. Unknown sections and keys,
 * bad values, a key given twice and lines that do not parse are errors
 * (-EINVAL) reported in err as "FILE:LINE: KEY: reason"; the first one
 * stops the load. A file that cannot be opened or read is -errno
 * ("FILE: cannot open: reason"). cfg changes only when the whole file
 * is good. err may be NULL.
 */
int config_load(struct config *cfg, const char *path, struct config_err *err);
/*
 * After config_defaults() and any loads: derive store_path and
 * control_socket from state_dir when unset, then check the values against
 * each other (TLS certificate and key both or neither, output_limit at
 * least twice max_frame, page_size at most page_size_max, control socket
 * path short enough). 0, -EINVAL (reported as "FILE: KEY: reason", FILE
 * being the last file loaded) or -ENOMEM. err may be NULL.
 */
int config_finish(struct config *cfg, struct config_err *err);
/* Free every string and zero cfg. NULL and a zeroed cfg are fine. */
void config_free(struct config *cfg);

/*
 * Value parsers, exposed for tests. 0 or -EINVAL (syntax) / -ERANGE;
 * *ret untouched on failure.
 *   size:     123, 64K, 1M, 2GiB, 1 tb (binary units, any case)
 *   duration: 30, 30s, 5m, 2h, 1d -> seconds
 *   bool:     yes/no, true/false, on/off, 1/0 (any case)
 *   hostport: host:port or [v6addr]:port, port 0..65535; validity only
 */
int config_parse_size(const char *s, uint64_t *ret);
int config_parse_duration(const char *s, uint32_t *ret);
int config_parse_bool(const char *s, bool *ret);
int config_parse_hostport(const char *s);

/*
 * Split a valid "host:port" or "[v6addr]:port" into ret_host (brackets
 * removed) and ret_port. 0 or -EINVAL; outputs untouched on failure.
 */
int config_split_hostport(const char *s, char ret_host[CONFIG_HOST_MAX],
    uint16_t *ret_port);
 /*
 * The next device of [fax] modems (blank- or comma-separated) into buf.
 * 1 (found, *cursor moved past it), 0 (no more), -ENAMETOOLONG.
 */
int config_fax_modem_next(const char **cursor, char *buf, size_t size);
/* "daemon", "local0".."local7" -> LOG_DAEMON, LOG_LOCAL0.. 0 or -EINVAL. */
int config_syslog_facility(const char *name, int *ret_facility);

#endif
