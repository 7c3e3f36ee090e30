/* SPDX-License-Identifier: ISC */
/* twinrouted.c -- the broker daemon: configuration, the loop, start and stop */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "catalog/catalog.h"
#include "client/session.h"
#include "common/worker.h"
#include "common/errcode.h"
#include "common/log.h"
#include "common/notify.h"
#include "config-build.h"
#include "config.h"
#include "ctl/ctl.h"
#include "ctl/ctl_server.h"
#include "daemon.h"
#include "fax/dispatcher.h"
#include "mail/mailer.h"
#include "order/order.h"
#include "provider/provider.h"
#include "net/metrics.h"
#include "net/server.h"
#include "store/store.h"
#include "vault/vault.h"

/* How long a stop waits for in-flight replies before closing anyway. */
#define SHUTDOWN_GRACE_SECONDS 10

static struct daemon the_daemon;
static const char *config_path;
static bool config_path_given;
static struct event *shutdown_timer;
static time_t shutdown_deadline;
static char addr_file[4096];
static char provider_addr_file[4096];
static char metrics_addr_file[4096];

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: twinrouted [-f] [-t] [-c FILE]\n"
	    "       twinrouted -V | --help\n"
	    "\n"
	    "The twinroute order broker.\n"
	    "\n"
	    "  -c, --config FILE  read settings from FILE (default %s;\n"
	    "                     without it the embedded defaults apply)\n"
	    "  -f, --foreground   stay in the foreground; log to stderr unless\n"
	    "                     log_target says otherwise\n"
	    "  -t, --test         check the configuration, print the reason\n"
	    "                     and exit 2 if it is bad, 0 if it is good\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n"
	    "\n"
	    "Signals: TERM and INT stop cleanly; HUP reopens the log and\n"
	    "reloads log_level, idle timeouts, connection limits, output\n"
	    "limits and page sizes.\n",
	    CONFIG_PATH_DEFAULT);
}

/* Read the configuration: defaults, then the file if there is one. */
static int
load_config(struct config *cfg, struct config_err *err)
{
	int r;

	r = config_defaults(cfg);
	if (r < 0) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return r;
	}
	r = config_load(cfg, config_path, err);
	if (r == -ENOENT && !config_path_given)
		r = 0;  /* no file at the default path: embedded defaults */
	if (r < 0)
		return r;
	return config_finish(cfg, err);
}

/* STATE_DIR/name holding addr and a newline, written whole or not at
 * all; path gets its name (cleared when it could not be written). */
static void
write_state_file(const struct daemon *d, const char *name, const char *addr,
    char *path, size_t path_size)
{
	char tmp[4200];
	FILE *f;

	snprintf(path, path_size, "%s/%s", d->cfg->state_dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (f == NULL) {
		log_warn("cannot write %s: %s", tmp, strerror(errno));
		path[0] = '\0';
		return;
	}
	fprintf(f, "%s\n", addr);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		log_warn("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		path[0] = '\0';
	}
}

static void
write_addr_file(struct daemon *d)
{
	if (d->provider_l)
		write_state_file(d, "provider.addr",
		    listener_address(d->provider_l), provider_addr_file,
		    sizeof(provider_addr_file));
	if (d->metrics)
		write_state_file(d, "metrics.addr", metrics_address(d->metrics),
		    metrics_addr_file, sizeof(metrics_addr_file));
	write_state_file(d, "client.addr", listener_address(d->client_l),
	    addr_file, sizeof(addr_file));
}

static int
write_pid_file(const char *path)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -EIO;
	}
	return close(fd) < 0 ? -errno : 0;
}

static void
client_limits(const struct config *cfg, struct listener_limits *l)
{
	l->max_frame = cfg->client_max_frame;
	l->max_connections = cfg->client_max_connections;
	l->idle_timeout = cfg->client_idle_timeout;
	l->output_limit = cfg->client_output_limit;
}

static void
control_limits(const struct config *cfg, struct listener_limits *l)
{
	l->max_frame = CTL_FRAME_MAX;
	l->max_connections = cfg->control_max_connections;
	l->idle_timeout = cfg->control_idle_timeout;
	l->output_limit = 4 * CTL_FRAME_MAX;
}

/* The provider channel asks for a client certificate and accepts any:
 * the certificate's fingerprint must be pinned to the provider it claims
 * to be (or a token is used instead), which prov_auth checks. */
static int
tls_accept_any_cert(int preverify_ok, X509_STORE_CTX *x509_ctx)
{
	(void)preverify_ok;
	(void)x509_ctx;
	return 1;
}

static SSL_CTX *
tls_server_ctx(const char *cert, const char *key, bool want_client_cert)
{
	static const unsigned char sid_ctx[] = "twinrouted";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
	/* TLS 1.2: forward-secret AEAD suites only. */
	if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, sid_ctx,
	    sizeof(sid_ctx) - 1) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (want_client_cert)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_accept_any_cert);
	return ctx;
}

static void
provider_limits(const struct config *cfg, struct listener_limits *lim)
{
	*lim = (struct listener_limits){
		.max_frame = cfg->provider_max_frame,
		.max_connections = cfg->provider_max_connections,
		/* Dead-peer detection: three heartbeats without a frame. */
		.idle_timeout = 3 * cfg->provider_heartbeat,
		.output_limit = 4 * cfg->provider_max_frame,
	};
}

/* Descriptors besides connections: stores, listeners, eventfds, logs,
 * modems, mail sessions. */
#define FD_MARGIN 64

/*
 * Every connection is a descriptor: raise the soft RLIMIT_NOFILE to the
 * hard limit (systemd leaves the soft one at 1024), and say so when the
 * connection limits could still run past it. Past it, listeners refuse
 * (server.c) rather than spin.
 */
static void
raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want;

	want = (rlim_t)cfg->client_max_connections +
	    cfg->control_max_connections + cfg->lmtp_max_connections +
	    (cfg->provider_listen[0] ? cfg->provider_max_connections : 0) +
	    FD_MARGIN;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warn("RLIMIT_NOFILE is %llu, below the %llu descriptors "
		    "the max_connections settings allow: connections past it "
		    "are refused; raise LimitNOFILE= (or ulimit -n) or lower "
		    "max_connections", (unsigned long long)rl.rlim_cur,
		    (unsigned long long)want);
}

static void
shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	unsigned open_conns;
	size_t pending;

	(void)fd;
	(void)what;
	open_conns = listener_conn_count(d->client_l) +
	    listener_conn_count(d->control_l) +
	    (d->provider_l ? listener_conn_count(d->provider_l) : 0);
	pending = store_sync_pending(d->store) + vault_pending(d->vault) +
	    worker_pending(d->hasher);
	if (open_conns == 0 && pending == 0) {
		event_base_loopbreak(d->base);
		return;
	}
	if (time(NULL) >= shutdown_deadline) {
		log_warn("stop: %u connections and %zu replies still open after "
		    "%d s; closing them", open_conns, pending,
		    SHUTDOWN_GRACE_SECONDS);
		event_base_loopbreak(d->base);
	}
}

static void
begin_shutdown(struct daemon *d, const char *why)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 20000 };

	if (d->stopping)
		return;
	d->stopping = true;
	notify_send("STOPPING=1");
	log_info("%s: stopping; finishing in-flight replies", why);
	listener_shutdown(d->client_l);
	listener_shutdown(d->control_l);
	if (d->provider_l)
		listener_shutdown(d->provider_l);
	shutdown_deadline = time(NULL) + SHUTDOWN_GRACE_SECONDS;
	shutdown_timer = event_new(d->base, -1, EV_PERSIST, shutdown_tick, d);
	if (shutdown_timer == NULL || event_add(shutdown_timer, &tv) < 0)
		event_base_loopbreak(d->base);
}

static void
reload(struct daemon *d)
{
	struct config cfg;
	struct config_err err = { 0 };
	struct listener_limits lim;
	int r;

	r = log_reopen();
	if (r < 0)
		log_warn("reload: cannot reopen the log file %s: %s; writing "
		    "on to the file open before", d->cfg->log_file,
		    tr_strerror(r));
	r = load_config(&cfg, &err);
	if (r < 0) {
		log_err("reload: keeping the running settings: %s", err.msg);
		config_free(&cfg);
		return;
	}
	if (strcmp(cfg.client_listen, d->cfg->client_listen) != 0 ||
	    strcmp(cfg.metrics_listen, d->cfg->metrics_listen) != 0 ||
	    strcmp(cfg.state_dir, d->cfg->state_dir) != 0 ||
	    strcmp(cfg.store_path, d->cfg->store_path) != 0 ||
	    strcmp(cfg.control_socket, d->cfg->control_socket) != 0 ||
	    cfg.map_size != d->cfg->map_size)
		log_warn("reload: listen addresses, paths and map_size change "
		    "only on restart");
	d->cfg->log_level = cfg.log_level;
	log_set_level(cfg.log_level);
	d->cfg->client_max_frame = cfg.client_max_frame;
	d->cfg->client_max_connections = cfg.client_max_connections;
	d->cfg->client_idle_timeout = cfg.client_idle_timeout;
	d->cfg->client_output_limit = cfg.client_output_limit;
	d->cfg->client_page_size = cfg.client_page_size;
	d->cfg->client_page_size_max = cfg.client_page_size_max;
	d->cfg->control_max_connections = cfg.control_max_connections;
	d->cfg->control_idle_timeout = cfg.control_idle_timeout;
	client_limits(d->cfg, &lim);
	listener_set_limits(d->client_l, &lim);
	control_limits(d->cfg, &lim);
	listener_set_limits(d->control_l, &lim);
	config_free(&cfg);
	log_info("reload: settings applied (log_level=%s)",
	    log_level_to_string(d->cfg->log_level));
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	switch (sig) {
	case SIGTERM:
		begin_shutdown(d, "SIGTERM");
		break;
	case SIGINT:
		begin_shutdown(d, "SIGINT");
		break;
	case SIGHUP:
		notify_reloading();
		reload(d);
		notify_send("READY=1");
		break;
	default:
		break;
	}
}

/*
 * A store or vault made by another schema (store_open or vault_open said
 * -TR_ESCHEMA): say which, and exit. r and found: what reading it gave.
 */
static _noreturn_ void
schema_refuse(const char *what, const char *path, int r, uint32_t found,
    unsigned known)
{
	if (r < 0)
		fatalx("%s %s: %s (this twinrouted knows schema %u; the "
		    "record does not say which it has: %s)", what, path,
		    tr_strerror(-TR_ESCHEMA), known, tr_strerror(r));
	if (found > known)
		fatalx("%s %s has schema %" PRIu32 ", this twinrouted knows "
		    "%u: upgrade twinrouted", what, path, found, known);
	fatalx("%s %s has schema %" PRIu32 ", this twinrouted knows %u and "
	    "cannot read it", what, path, found, known);
}

static void
daemonize(void)
{
	pid_t pid;
	int fd;

	pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		fatal("setsid");
	pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		fatal("chdir /");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fatal("/dev/null");
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon *d = &the_daemon;
	struct config cfg;
	struct config_err err = { 0 };
	struct listener_limits lim;
	struct store_opts sopts = { 0 };
	struct event *sig_term, *sig_int, *sig_hup;
	SSL_CTX *ssl_ctx = NULL, *prov_ssl_ctx = NULL;
	bool foreground = false, test_only = false;
	int ch, r, facility;

	config_path = CONFIG_PATH_DEFAULT;
	while ((ch = getopt_long(argc, argv, "c:ftVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			config_path_given = true;
			break;
		case 'f':
			foreground = true;
			break;
		case 't':
			test_only = true;
			break;
		case 'V':
			printf("twinrouted %s\n", TR_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "twinrouted: unexpected argument: %s\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}

	r = load_config(&cfg, &err);
	if (r < 0) {
		fprintf(stderr, "twinrouted: %s\n", err.msg[0] ? err.msg :
		    tr_strerror(r));
		config_free(&cfg);
		return 2;
	}
	if (test_only) {
		printf("twinrouted: configuration %s is valid\n",
		    config_path_given || access(config_path, F_OK) == 0 ?
		    config_path : "(embedded defaults)");
		config_free(&cfg);
		return 0;
	}
	d->cfg = &cfg;

	if (!cfg.log_target_set)
		cfg.log_target = foreground ? LOG_TARGET_STDERR : LOG_TARGET_SYSLOG;
	/* Card data and keys live in this process: no core dumps, no
	 * ptrace by other processes of the same user. */
	{
		struct rlimit zero = { 0, 0 };
		setrlimit(RLIMIT_CORE, &zero);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	}
	if (config_syslog_facility(cfg.syslog_facility, &facility) < 0)
		facility = LOG_DAEMON;  /* config_load has refused bad names */
	log_init("twinrouted", cfg.log_target, cfg.log_level, facility);
	{
		enum log_format fmt = LOG_FORMAT_TEXT;
		(void)log_format_from_string(cfg.log_format, &fmt);
		log_set_format(fmt);  /* config_finish has refused others */
	}
	/* Before detaching, so a file that cannot be opened is said on the
	 * terminal. */
	if (cfg.log_target == LOG_TARGET_FILE &&
	    (r = log_set_file(cfg.log_file)) < 0)
		fatalx("log file %s: %s", cfg.log_file, tr_strerror(r));
	if (!foreground)
		daemonize();
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(&cfg);

	if (mkdir(cfg.state_dir, 0700) < 0 && errno != EEXIST)
		fatal("state directory %s", cfg.state_dir);
	if (cfg.pid_file[0] != '\0' && (r = write_pid_file(cfg.pid_file)) < 0)
		fatalx("pid file %s: %s", cfg.pid_file, tr_strerror(r));

	d->base = event_base_new();
	if (d->base == NULL)
		fatalx("cannot create the event loop");
	d->started = time(NULL);

	sopts.path = cfg.store_path;
	sopts.map_size = (size_t)cfg.map_size;
	r = store_open(&sopts, d->base, &d->store);
	if (r == -TR_ESCHEMA) {
		uint32_t found = 0;

		r = store_schema_read(cfg.store_path, &found);
		schema_refuse("store", cfg.store_path, r, found,
		    STORE_SCHEMA_VERSION);
	}
	if (r < 0)
		fatalx("store %s: %s", cfg.store_path, tr_strerror(r));
	r = catalog_open(d->store, &d->catalog);
	if (r < 0)
		fatalx("catalog: %s", tr_strerror(r));
	{
		bool counted = false;

		r = order_counts_ensure(d->store, &counted);
		if (r < 0)
			fatalx("store %s: counting orders by state: %s",
			    cfg.store_path, tr_strerror(r));
		if (counted)
			log_info("store: orders counted by state (once, for "
			    "a store made before the counts were kept)");
	}
	if (client_order_open(d) < 0)
		fatalx("store %s: cannot load the order indexes",
		    cfg.store_path);
	r = worker_start(d->base, "tr-hasher", &d->hasher);
	if (r < 0)
		fatalx("password hashing thread: %s", tr_strerror(r));
	{
		struct vault_opts vopts = {
			.path = cfg.vault_path,
			.map_size = cfg.vault_map_size,
			.key_file = cfg.vault_key_file,
			.audit_log = cfg.vault_audit_log,
			.order_limit = cfg.vault_order_limit,
			.daily_limit = cfg.vault_daily_limit,
			.lazy_auth_sync = !cfg.vault_sync_authentications,
			.fax_font = cfg.fax_font,
			.fax_font_px = cfg.fax_font_px,
			.fax_broker = cfg.fax_broker_name,
			.fax_ident = cfg.fax_ident,
		};
		if (cfg.vault_key_file[0] != '\0' &&
		    access(cfg.vault_key_file, F_OK) < 0 && errno == ENOENT)
			log_warn("vault: key file %s does not exist yet: the "
			    "vault stays sealed until twinroutectl vault init "
			    "--key-file %s", cfg.vault_key_file,
			    cfg.vault_key_file);
		r = vault_open(&vopts, d->base, &d->vault);
		if (r == -TR_ESCHEMA) {
			uint32_t found = 0;

			r = vault_schema_read(cfg.vault_path, &found);
			schema_refuse("vault", cfg.vault_path, r, found,
			    VAULT_SCHEMA_VERSION);
		}
		if (r < 0 && cfg.vault_key_file[0] != '\0')
			fatalx("vault %s with key file %s: %s", cfg.vault_path,
			    cfg.vault_key_file, r == -EPERM ? "the key file "
			    "must be ours and mode 0600 or stricter, the vault "
			    "directory ours" : tr_strerror(r));
		if (r < 0)
			fatalx("vault %s: %s", cfg.vault_path, r == -EPERM ?
			    "the vault directory must be ours" : tr_strerror(r));
	}
	r = mailer_open(d, &d->mailer);
	if (r < 0)
		fatalx("mail: %s", tr_strerror(r));
	r = fax_dispatcher_open(d, &d->fax);
	if (r < 0)
		fatalx("fax: %s", tr_strerror(r));
	client_order_recover(d);

	if (cfg.client_tls_cert[0] != '\0') {
		ssl_ctx = tls_server_ctx(cfg.client_tls_cert, cfg.client_tls_key,
		    false);
		if (ssl_ctx == NULL)
			fatalx("client TLS: cannot load %s / %s: %s",
			    cfg.client_tls_cert, cfg.client_tls_key,
			    ERR_reason_error_string(ERR_get_error()));
	}
	client_limits(&cfg, &lim);
	r = listener_new_tcp(d->base, cfg.client_listen, ssl_ctx,
	    &client_listener_ops, &lim, d, &d->client_l);
	if (r < 0)
		fatalx("client listener %s: %s", cfg.client_listen,
		    tr_strerror(r));
	control_limits(&cfg, &lim);
	r = listener_new_unix(d->base, cfg.control_socket,
	    cfg.control_admin_group[0] ? 0660 : 0600, &ctl_listener_ops, &lim,
	    d, &d->control_l);
	if (r < 0)
		fatalx("control socket %s: %s", cfg.control_socket,
		    r == -EADDRINUSE ? "another twinrouted is running there" :
		    tr_strerror(r));
	if (cfg.control_admin_group[0] != '\0') {
		struct group *gr = getgrnam(cfg.control_admin_group);
		if (gr == NULL || chown(cfg.control_socket, (uid_t)-1,
		    gr->gr_gid) < 0)
			log_warn("control socket: cannot give it to group %s",
			    cfg.control_admin_group);
	}
	r = lmtp_listen_open(d, d->mailer, &d->lmtp);
	if (r < 0)
		fatalx("lmtp listener %s%s%s: %s", cfg.lmtp_socket,
		    cfg.lmtp_listen[0] ? " / " : "", cfg.lmtp_listen,
		    r == -EADDRINUSE ? "another twinrouted is running there" :
		    tr_strerror(r));
	r = providers_new(d, &d->providers);
	if (r < 0)
		fatalx("providers: %s", tr_strerror(r));
	if (cfg.provider_listen[0] != '\0') {
		prov_ssl_ctx = tls_server_ctx(cfg.provider_tls_cert,
		    cfg.provider_tls_key, true);
		if (prov_ssl_ctx == NULL)
			fatalx("provider TLS: cannot load %s / %s: %s",
			    cfg.provider_tls_cert, cfg.provider_tls_key,
			    ERR_reason_error_string(ERR_get_error()));
		provider_limits(&cfg, &lim);
		r = listener_new_tcp(d->base, cfg.provider_listen, prov_ssl_ctx,
		    &provider_listener_ops, &lim, d, &d->provider_l);
		if (r < 0)
			fatalx("provider listener %s: %s", cfg.provider_listen,
			    tr_strerror(r));
	}
	if (cfg.metrics_listen[0] != '\0') {
		r = metrics_open(d, cfg.metrics_listen, &d->metrics);
		if (r < 0)
			fatalx("metrics listener %s: %s", cfg.metrics_listen,
			    r == -EADDRNOTAVAIL ? "not a loopback address" :
			    tr_strerror(r));
		log_info("metrics: http://%s/metrics",
		    metrics_address(d->metrics));
	}
	write_addr_file(d);

	sig_term = evsignal_new(d->base, SIGTERM, signal_cb, d);
	sig_int = evsignal_new(d->base, SIGINT, signal_cb, d);
	sig_hup = evsignal_new(d->base, SIGHUP, signal_cb, d);
	if (!sig_term || !sig_int || !sig_hup || evsignal_add(sig_term, NULL) ||
	    evsignal_add(sig_int, NULL) || evsignal_add(sig_hup, NULL))
		fatalx("cannot install signal handlers");

	{
		size_t np, ns;
		catalog_counts(d->catalog, &np, &ns);
		log_info("twinrouted %s ready: client %s%s, control %s, store %s "
		    "(%zu providers, %zu services), vault %s, lmtp %s, mail "
		    "relay %s", TR_VERSION,
		    listener_address(d->client_l), ssl_ctx ? " (TLS)" : "",
		    listener_address(d->control_l), cfg.store_path, np, ns,
		    cfg.vault_path, lmtp_listen_address(d->lmtp),
		    cfg.mail_relay);
	}
	/* Every listener is up: a service manager may start what needs us. */
	r = notify_send("READY=1");
	if (r < 0)
		log_warn("cannot tell the service manager we are ready "
		    "(NOTIFY_SOCKET): %s", tr_strerror(r));

	event_base_dispatch(d->base);

	if (addr_file[0] != '\0')
		unlink(addr_file);
	if (provider_addr_file[0] != '\0')
		unlink(provider_addr_file);
	if (metrics_addr_file[0] != '\0')
		unlink(metrics_addr_file);
	d->metrics = metrics_free(d->metrics);
	d->client_l = listener_free(d->client_l);
	d->control_l = listener_free(d->control_l);
	if (d->provider_l)
		d->provider_l = listener_free(d->provider_l);
	lmtp_listen_free(d->lmtp);
	d->lmtp = NULL;
	d->vault = vault_close(d->vault);
	/* After the vault (its replies may queue a backup's next step),
	 * before the store (a backup may be copying it). */
	ctl_backup_close();
	d->hasher = worker_stop(d->hasher);
	d->catalog = catalog_free(d->catalog);
	client_order_close(d);
	d->store = store_close(d->store);
	/* After the store: its last waiters may still hand it jobs. */
	mailer_free(d->mailer);
	d->mailer = NULL;
	providers_free(d->providers);
	d->providers = NULL;
	fax_dispatcher_free(d->fax);
	d->fax = NULL;
	if (shutdown_timer)
		event_free(shutdown_timer);
	event_free(sig_term);
	event_free(sig_int);
	event_free(sig_hup);
	event_base_free(d->base);
	if (ssl_ctx)
		SSL_CTX_free(ssl_ctx);
	if (prov_ssl_ctx)
		SSL_CTX_free(prov_ssl_ctx);
	if (cfg.pid_file[0] != '\0')
		unlink(cfg.pid_file);
	log_info("stopped");
	config_free(&cfg);
	return 0;
}
