/* SPDX-License-Identifier: ISC */
/* metrics.c -- Prometheus text exposition over HTTP on loopback */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common.pb-c.h"
#include "store.pb-c.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/macro.h"
#include "config-build.h"
#include "daemon.h"
#include "fax/dispatcher.h"
#include "mail/mailer.h"
#include "net/metrics.h"
#include "net/server.h"
#include "order/idem.h"
#include "order/order.h"
#include "provider/provider.h"
#include "store/store.h"
#include "vault/vault.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_PATH "/metrics"
#define METRICS_BACKLOG 16

uint64_t metrics_errors[METRICS_PROTO__COUNT][METRICS_ERROR_CODES];

static const char *const proto_names[METRICS_PROTO__COUNT] = {
	[METRICS_CLIENT] = "client",
	[METRICS_CONTROL] = "control",
	[METRICS_PROVIDER] = "provider",
};

struct metrics {
	struct daemon *d;
	struct evhttp *http;
	char address[INET6_ADDRSTRLEN + 16];
};

/* ---- the exposition format ------------------------------------------- */

static void
family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* A label value, escaped: backslash, double quote and newline. */
static void
label_value(struct evbuffer *b, const char *v)
{
	const char *p = v;
	size_t n;

	for (;;) {
		n = strcspn(p, "\\\"\n");
		evbuffer_add(b, p, n);
		p += n;
		if (*p == '\0')
			break;
		evbuffer_add(b, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" :
		    "\\\\", 2);
		p++;
	}
}

/* name{label="value"} v, or name v without a label. */
static void
sample(struct evbuffer *b, const char *name, const char *label,
    const char *value, uint64_t v)
{
	evbuffer_add_printf(b, "%s", name);
	if (label != NULL) {
		evbuffer_add_printf(b, "{%s=\"", label);
		label_value(b, value);
		evbuffer_add(b, "\"}", 2);
	}
	evbuffer_add_printf(b, " %" PRIu64 "\n", v);
}

/* A family of one sample without labels. */
static void
single(struct evbuffer *b, const char *name, const char *type,
    const char *help, uint64_t v)
{
	family(b, name, type, help);
	sample(b, name, NULL, NULL, v);
}

static void
histogram(struct evbuffer *b, const char *name, const char *help,
    const struct store_latency *h)
{
	uint64_t n = 0;

	family(b, name, "histogram", help);
	for (size_t i = 0; i < STORE_LATENCY_BUCKETS; i++) {
		n += h->bucket[i];
		evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n",
		    name, (double)store_latency_bounds_ns[i] / 1e9, n);
	}
	n += h->bucket[STORE_LATENCY_BUCKETS];
	evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	    "%s_sum %.9f\n%s_count %" PRIu64 "\n", name, n, name,
	    (double)h->sum_ns / 1e9, name, n);
}

/* ---- what a scrape shows ---------------------------------------------- */

static void
render_process(struct evbuffer *b, const struct daemon *d)
{
	family(b, "twinroute_build_info", "gauge",
	    "Always 1; the version of the running twinrouted.");
	sample(b, "twinroute_build_info", "version", TR_VERSION, 1);
	single(b, "twinroute_start_time_seconds", "gauge",
	    "When the daemon started, in seconds since the epoch.",
	    (uint64_t)d->started);
}

static void
render_connections(struct evbuffer *b, const struct daemon *d)
{
	family(b, "twinroute_connections", "gauge",
	    "Connections open, by listener.");
	sample(b, "twinroute_connections", "listener", "client",
	    d->client_l ? listener_conn_count(d->client_l) : 0);
	sample(b, "twinroute_connections", "listener", "control",
	    d->control_l ? listener_conn_count(d->control_l) : 0);
	if (d->provider_l)
		sample(b, "twinroute_connections", "listener", "provider",
		    listener_conn_count(d->provider_l));
	sample(b, "twinroute_connections", "listener", "lmtp",
	    lmtp_listen_conn_count(d->lmtp));

	single(b, "twinroute_requests_total", "counter",
	    "Replies sent without an error on the client, control and "
	    "provider sockets (provider dispatches included).",
	    d->requests);

	family(b, "twinroute_errors_total", "counter",
	    "Error replies sent, by listener and ErrorCode (codes sent at "
	    "least once).");
	for (size_t p = 0; p < METRICS_PROTO__COUNT; p++) {
		for (size_t c = 0; c < METRICS_ERROR_CODES; c++) {
			const ProtobufCEnumValue *ev;
			char code[32];

			if (metrics_errors[p][c] == 0)
				continue;
			ev = protobuf_c_enum_descriptor_get_value(
			    &twinroute__error_code__descriptor, (int)c);
			if (ev)
				snprintf(code, sizeof(code), "%s", ev->name);
			else
				snprintf(code, sizeof(code), "%zu", c);
			evbuffer_add_printf(b, "twinroute_errors_total{listener="
			    "\"%s\",code=\"", proto_names[p]);
			label_value(b, code);
			evbuffer_add_printf(b, "\"} %" PRIu64 "\n",
			    metrics_errors[p][c]);
		}
	}
}

/* The first job of an outbox keyed by order id: the lowest order id. */
struct first_job {
	bool found;
	uint64_t created_ms;
	bool mail;
};

static int
first_job_one(const void *key, size_t key_len, const void *val,
    size_t val_len, void *arg)
{
	struct first_job *j = arg;

	(void)key;
	(void)key_len;
	if (j->mail) {
		Twinroute__Store__MailJob *m =
		    twinroute__store__mail_job__unpack(NULL, val_len, val);

		if (m) {
			j->found = true;
			j->created_ms = m->created_unix_ms;
			twinroute__store__mail_job__free_unpacked(m, NULL);
		}
	} else {
		Twinroute__Store__DispatchJob *f =
		    twinroute__store__dispatch_job__unpack(NULL, val_len, val);

		if (f) {
			j->found = true;
			j->created_ms = f->created_unix_ms;
			twinroute__store__dispatch_job__free_unpacked(f, NULL);
		}
	}
	return 1;
}

/* Seconds since the first job of db was made; 0 when empty. */
static uint64_t
oldest_age(struct store_txn *txn, enum store_db db, bool mail, uint64_t now)
{
	struct first_job j = { .mail = mail };

	if (store_iter(txn, db, NULL, 0, first_job_one, &j) < 0 || !j.found ||
	    j.created_ms >= now)
		return 0;
	return (now - j.created_ms) / 1000;
}

static void
render_store_records(struct evbuffer *b, const struct daemon *d)
{
	struct order_counts oc;
	struct store_txn *txn;
	uint64_t depth[3] = { 0 }, age_mail = 0, age_fax = 0;
	uint64_t now = clock_realtime_ms();
	bool have_counts = false;

	if (store_txn_begin(d->store, STORE_RDONLY, &txn) == 0) {
		have_counts = order_counts_get(txn, &oc) == 0;
		(void)store_db_entries(txn, STORE_DB_OUTBOX_MAIL, &depth[0]);
		(void)store_db_entries(txn, STORE_DB_OUTBOX_PROVIDER, &depth[1]);
		(void)store_db_entries(txn, STORE_DB_OUTBOX_FAX, &depth[2]);
		age_mail = oldest_age(txn, STORE_DB_OUTBOX_MAIL, true, now);
		age_fax = oldest_age(txn, STORE_DB_OUTBOX_FAX, false, now);
		store_txn_abort(txn);
	}

	family(b, "twinroute_orders", "gauge",
	    "Orders in the store, by state (kept exact in the store with "
	    "every transition).");
	for (size_t i = 1; have_counts && i < ORDER_N_STATES; i++)
		sample(b, "twinroute_orders", "state",
		    order_strstate((order_state)i), oc.state[i]);
	family(b, "twinroute_orders_fax", "gauge",
	    "Orders in the store, by the state of their card fax "
	    "(FAX_NONE: not confirmed).");
	for (size_t i = 0; have_counts && i < ORDER_N_FAX; i++)
		sample(b, "twinroute_orders_fax", "fax_state",
		    order_strfax((fax_state)i), oc.fax[i]);
	single(b, "twinroute_idempotency_keys", "gauge",
	    "Idempotency keys held in memory: those of the last "
	    "[orders] idempotency_ttl, and expired ones not yet swept.",
	    (uint64_t)idem_count(d->idem));

	family(b, "twinroute_queue_jobs", "gauge",
	    "Jobs in each outbox: mail (confirmations to send), provider "
	    "(dispatches not yet acknowledged), fax (card faxes not yet sent).");
	sample(b, "twinroute_queue_jobs", "queue", "mail", depth[0]);
	sample(b, "twinroute_queue_jobs", "queue", "provider", depth[1]);
	sample(b, "twinroute_queue_jobs", "queue", "fax", depth[2]);
	family(b, "twinroute_queue_oldest_age_seconds", "gauge",
	    "Age of the job of the lowest order id in the mail and fax "
	    "outboxes, 0 when empty (the provider outbox reports its depth "
	    "only).");
	sample(b, "twinroute_queue_oldest_age_seconds", "queue", "mail",
	    age_mail);
	sample(b, "twinroute_queue_oldest_age_seconds", "queue", "fax",
	    age_fax);
}

static void
render_vault(struct evbuffer *b, const struct daemon *d)
{
	bool initialized, sealed;

	vault_state(d->vault, &initialized, &sealed);
	single(b, "twinroute_vault_initialized", "gauge",
	    "1 when the vault has been initialized (as of its last reply).",
	    initialized);
	single(b, "twinroute_vault_sealed", "gauge",
	    "1 while the vault is sealed: orders are declined VAULT_SEALED "
	    "(as of its last reply).", sealed);
	single(b, "twinroute_vault_pending_requests", "gauge",
	    "Requests queued to the vault thread or in progress.",
	    vault_pending(d->vault));
}

static void
render_store(struct evbuffer *b, const struct daemon *d)
{
	struct store_latency commit, fsync;
	struct store_stats st;

	store_get_stats(d->store, &st);
	store_get_latency(d->store, &commit, &fsync);
	histogram(b, "twinroute_store_commit_duration_seconds",
	    "LMDB write commits on the loop (a batch or a plain write), "
	    "without fsync.", &commit);
	histogram(b, "twinroute_store_fsync_duration_seconds",
	    "Syncs of the store by the sync thread (one covers every commit "
	    "before it).", &fsync);
	single(b, "twinroute_store_map_size_bytes", "gauge",
	    "The store's map size ([store] map_size).", st.map_size);
	single(b, "twinroute_store_used_bytes", "gauge",
	    "Bytes of the map in use (last page).", st.used_bytes);
	single(b, "twinroute_store_last_txn", "gauge",
	    "Sequence of the last write commit (counted from start).",
	    st.last_txn);
	single(b, "twinroute_store_synced_txn", "gauge",
	    "Sequence covered by the last successful sync.", st.synced_txn);
	single(b, "twinroute_store_syncs_total", "counter",
	    "Syncs run.", st.syncs);
	single(b, "twinroute_store_sync_waiters", "gauge",
	    "Replies waiting for a sync.", store_sync_pending(d->store));
}

static void
render_fax(struct evbuffer *b, const struct daemon *d)
{
	struct fax_stats fs;
	size_t n = fax_dispatcher_n_modems(d->fax);
	static const enum modem_state states[] = {
		MODEM_IDLE, MODEM_DIALING, MODEM_SENDING, MODEM_DOWN,
	};

	family(b, "twinroute_modem_state", "gauge",
	    "1 for each modem's current state.");
	for (size_t i = 0; i < n; i++) {
		struct modem_info mi;
		uint64_t order_id;

		fax_dispatcher_modem(d->fax, i, &mi, &order_id);
		for (size_t s = 0; s < ELEMENTSOF(states); s++) {
			evbuffer_add_printf(b, "twinroute_modem_state{modem=\"");
			label_value(b, mi.name);
			evbuffer_add_printf(b, "\",state=\"%s\"} %d\n",
			    modem_strstate(states[s]), mi.state == states[s]);
		}
	}
	static const struct {
		const char *name, *help;
	} calls[] = {
		{ "twinroute_modem_calls_total", "Calls finished, by modem." },
		{ "twinroute_modem_calls_ok_total",
		  "Calls that delivered their page, by modem." },
		{ "twinroute_modem_calls_failed_total",
		  "Calls that did not deliver their page, by modem." },
	};
	for (size_t c = 0; c < ELEMENTSOF(calls); c++) {
		family(b, calls[c].name, "counter", calls[c].help);
		for (size_t i = 0; i < n; i++) {
			struct modem_info mi;
			uint64_t order_id;

			fax_dispatcher_modem(d->fax, i, &mi, &order_id);
			sample(b, calls[c].name, "modem", mi.name,
			    c == 0 ? mi.calls : c == 1 ? mi.ok : mi.failed);
		}
	}

	fax_dispatcher_stats(d->fax, &fs);
	family(b, "twinroute_fax_results_total", "counter",
	    "Card fax jobs ended (sent, failed) or set back for a retry.");
	sample(b, "twinroute_fax_results_total", "result", "sent", fs.sent);
	sample(b, "twinroute_fax_results_total", "result", "failed",
	    fs.failed);
	sample(b, "twinroute_fax_results_total", "result", "retried",
	    fs.retried);
	single(b, "twinroute_fax_calls_total", "counter",
	    "Fax calls placed.", fs.calls);
	single(b, "twinroute_fax_pages_composed_total", "counter",
	    "Card pages composed by the vault.", fs.pages_composed);
	family(b, "twinroute_fax_jobs", "gauge",
	    "Fax jobs scheduled on the loop, and in a call (or waiting for "
	    "their page).");
	sample(b, "twinroute_fax_jobs", "state", "scheduled", fs.queued);
	sample(b, "twinroute_fax_jobs", "state", "in_call", fs.in_flight);
}

static void
count_session(const struct provider_session_info *i, void *arg)
{
	(void)i;
	(*(uint64_t *)arg)++;
}

static void
render_mail_providers(struct evbuffer *b, const struct daemon *d)
{
	struct mailer_stats ms;
	uint64_t sessions = 0;

	mailer_get_stats(d->mailer, &ms);
	family(b, "twinroute_mail_confirmations_total", "counter",
	    "Confirmation e-mails by outcome: sent to the relay, deferred "
	    "(4xx, timeout), failed, and what their orders became.");
	sample(b, "twinroute_mail_confirmations_total", "result", "sent",
	    ms.sent);
	sample(b, "twinroute_mail_confirmations_total", "result", "deferred",
	    ms.deferred);
	sample(b, "twinroute_mail_confirmations_total", "result", "failed",
	    ms.failed);
	sample(b, "twinroute_mail_confirmations_total", "result", "confirmed",
	    ms.confirmed);
	sample(b, "twinroute_mail_confirmations_total", "result", "cancelled",
	    ms.cancelled);
	sample(b, "twinroute_mail_confirmations_total", "result", "expired",
	    ms.expired);
	family(b, "twinroute_mail_replies_total", "counter",
	    "Replies over LMTP refused (550) or ignored (automatic replies).");
	sample(b, "twinroute_mail_replies_total", "result", "refused",
	    ms.replies_refused);
	sample(b, "twinroute_mail_replies_total", "result", "ignored",
	    ms.replies_ignored);
	single(b, "twinroute_mail_in_flight", "gauge",
	    "Confirmations with the mail thread now.", ms.in_flight);

	if (d->providers)
		providers_sessions(d->providers, count_session, &sessions);
	single(b, "twinroute_provider_sessions", "gauge",
	    "Authenticated provider sessions.", sessions);
}

static void
metrics_render(const struct metrics *m, struct evbuffer *b)
{
	const struct daemon *d = m->d;

	render_process(b, d);
	render_connections(b, d);
	render_store_records(b, d);
	render_vault(b, d);
	render_store(b, d);
	render_fax(b, d);
	render_mail_providers(b, d);
}

/* ---- HTTP -------------------------------------------------------------- */

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	if (code == 405)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	if (b)
		evbuffer_add_printf(b, "%s\n", text);
	evhttp_send_reply(req, code, reason, b);
	if (b)
		evbuffer_free(b);
}

static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *b;

	if (path == NULL || strcmp(path, METRICS_PATH) != 0) {
		reply_text(req, HTTP_NOTFOUND, "Not Found",
		    "not found: metrics are at " METRICS_PATH);
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		reply_text(req, 405, "Method Not Allowed",
		    "method not allowed: GET " METRICS_PATH);
		return;
	}
	b = evbuffer_new();
	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	metrics_render(m, b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", METRICS_CONTENT_TYPE);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

static bool
sockaddr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)
		    (const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)
		    (const void *)sa;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

/* A listening socket on the first loopback address hostport names. */
static int
metrics_socket(const char *hostport, char *addr, size_t addr_size)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char *host = NULL, *port = NULL, ip[INET6_ADDRSTRLEN];
	int fd = -1, one = 1, r;

	r = tr_split_hostport(hostport, &host, &port);
	if (r < 0)
		return r;
	r = getaddrinfo(host, port, &hints, &res);
	free(host);
	free(port);
	if (r != 0)
		return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next)
		if (sockaddr_loopback(ai->ai_addr))
			break;
	if (ai == NULL) {
		freeaddrinfo(res);
		return -EADDRNOTAVAIL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, METRICS_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)
		    (const void *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(addr, addr_size, "[%s]:%u", ip,
		    (unsigned)ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in = (const struct sockaddr_in *)
		    (const void *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(addr, addr_size, "%s:%u", ip,
		    (unsigned)ntohs(in->sin_port));
	}
	return fd;
}

int
metrics_open(struct daemon *d, const char *hostport, struct metrics **ret_m)
{
	struct metrics *m;
	int fd;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->d = d;
	fd = metrics_socket(hostport, m->address, sizeof(m->address));
	if (fd < 0) {
		free(m);
		return fd;
	}
	m->http = evhttp_new(d->base);
	if (m->http == NULL) {
		close(fd);
		free(m);
		return -ENOMEM;
	}
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_SECONDS);
	/* Every method reaches metrics_request, which answers 405 itself. */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(m->http, metrics_request, m);
	if (evhttp_accept_socket_with_handle(m->http, fd) == NULL) {
		close(fd);
		evhttp_free(m->http);
		free(m);
		return -ENOMEM;
	}
	*ret_m = m;
	return 0;
}

struct metrics *
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return NULL;
	evhttp_free(m->http);
	free(m);
	return NULL;
}

const char *
metrics_address(const struct metrics *m)
{
	return m->address;
}
