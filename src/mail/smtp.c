/* SPDX-License-Identifier: ISC */
/* smtp.c -- the mail thread: a batch of messages per libesmtp session */

/*
 * One thread per sender. The loop hands it a batch (smtp_sender_submit)
 * under the mutex; the thread runs one libesmtp session for the whole
 * batch, classifies every message, and posts the batch back through an
 * eventfd the loop watches. The loop's event then calls done(). Only the
 * loop thread calls the functions of smtp.h; the thread touches nothing
 * but libesmtp, OpenSSL and the batch it was handed.
 *
 * What libesmtp does to a message. It reads the header block and passes
 * the header lines through as given, except that it drops Return-Path:
 * and Original-Recipient: lines and a second copy of a header it knows
 * to be singular (Date, From, Sender, To, Cc, Bcc, Reply-To, Message-Id).
 * It adds Date:, From: and Message-Id: only when the message has none;
 * the composer always writes all three, so nothing is added. It dot-stuffs
 * the lines itself: data must not be stuffed.
 *
 * Classification. A 4xx/5xx to MAIL, then to RCPT, then to DATA or the
 * final dot decides a message (SMTP_TEMP / SMTP_PERM with that reply);
 * a 2xx after the dot is SMTP_OK. A message left without a reply (the
 * session could not be opened or ended early) gets SMTP_TEMP with the
 * session's reason: a certificate problem, STARTTLS missing, a 4xx/5xx
 * to the greeting, EHLO, STARTTLS or AUTH (code set; SMTP_PERM for a 5xx
 * to AUTH), or libesmtp's error (code 0). libesmtp keeps going after a
 * rejected AUTH other than 534/538; the relay then decides MAIL.
 *
 * Timeouts. Every wait for the relay (greeting, each reply, each write,
 * the TLS handshake) is bounded by timeout_s, but connect() is not:
 * libesmtp connects in blocking mode, so an address that drops SYNs
 * holds the thread (and smtp_sender_free) for the kernel's connect
 * timeout (net.ipv4.tcp_syn_retries, about two minutes by default).
 *
 * TLS. With STARTTLS the session uses the sender's own SSL_CTX: TLS 1.2
 * (not 1.3: see smtp_tls_ctx_new), the peer verified against ca_file or
 * the system store and its name against the relay host (DNS name or IP
 * address), SNI set.
 * SASL PLAIN and LOGIN (password in the clear on the wire) are allowed
 * only when STARTTLS is required or the relay is on the loopback;
 * otherwise only challenge-response mechanisms are offered.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
/* After openssl/ssl.h: libesmtp.h declares smtp_starttls_set_ctx then. */
#include <auth-client.h>
#include <libesmtp.h>

#include "common/macro.h"
#include "mail/smtp.h"

/* RFC 5321 4.5.3.1: a path is at most 256 octets with its brackets. */
#define SMTP_ADDR_MAX 254
/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets. */
#define SMTP_REPLY_LINE_MAX 512
/* RFC 1035: a host name is at most 253 octets. */
#define SMTP_HOST_MAX 253
/* The longest timeout we accept, so that milliseconds fit a long. */
#define SMTP_TIMEOUT_MAX 3600
/* How much of a message the data callback hands libesmtp at once. */
#define SMTP_CHUNK_MAX (64 * 1024)

struct smtp_sender;

/* One message's data, read by libesmtp through smtp_feed_cb. */
struct smtp_feed {
	const char *data;
	size_t len;
	size_t off;
};

/* The thread's view of one session. */
struct smtp_run {
	struct smtp_sender *s;

	/* The read side of the protocol monitor: one reply line at a time. */
	char line[SMTP_REPLY_LINE_MAX];
	size_t line_len;
	bool line_long;              /* the line overran: ignore it */

	/* Before the first MAIL: the relay's last 4xx/5xx and its command. */
	bool in_txn;                 /* MAIL FROM has been written */
	bool in_auth;                /* the last command was AUTH */
	int sess_code;
	bool sess_auth;
	char sess_text[sizeof(((struct smtp_msg *)0)->text)];

	bool tls_missing;            /* STARTTLS required but not offered */
	char tls_reason[sizeof(((struct smtp_msg *)0)->text)];
};

struct smtp_sender {
	struct event_base *base;
	smtp_done_fn done;
	void *arg;

	/* The options, copied. */
	char *host;
	char *server;                /* "host:port" for libesmtp */
	char *user;
	char *password;
	char *helo;
	enum smtp_starttls starttls;
	long timeout_ms;
	bool allow_plain;            /* SASL PLAIN/LOGIN allowed */

	SSL_CTX *ssl_ctx;            /* NULL with SMTP_STARTTLS_NEVER */
	bool default_paths;          /* system CAs still to load (thread) */
	auth_context_t auth;         /* NULL without a user */

	/* Loop side. */
	bool busy;                   /* a batch is with the thread */
	int efd;
	struct event *ev;

	/* Shared with the thread, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool lock_init;
	struct smtp_msg *work;       /* the batch to send */
	size_t work_n;
	struct smtp_msg *result;     /* the batch sent */
	size_t result_n;
	bool stop;

	pthread_t thread;
	bool thread_started;

	/* Thread only: the session in progress (TLS callbacks find it). */
	struct smtp_run *run;
};

/* ---- helpers ---------------------------------------------------------- */

/* Copy src into a text field: printable ASCII, blanks squeezed, trimmed. */
static void
smtp_text_copy(char *dst, size_t size, const char *src, size_t len)
{
	size_t o = 0;
	bool blank = false;

	if (size == 0)
		return;
	for (size_t i = 0; i < len && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c <= ' ' || c > '~') {
			blank = o > 0;
			continue;
		}
		if (blank) {
			if (o + 1 >= size)
				break;
			dst[o++] = ' ';
			blank = false;
		}
		if (o + 1 >= size)
			break;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
}

static void
smtp_text_set(char *dst, size_t size, const char *src)
{
	smtp_text_copy(dst, size, src, src ? strlen(src) : 0);
}

static _printf_(3, 4) void
smtp_text_fmt(char *dst, size_t size, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	smtp_text_set(dst, size, buf);
}

/* An envelope address libesmtp can put between <> as is. */
static bool
smtp_addr_ok(const char *a, bool allow_empty)
{
	size_t len = strlen(a);

	if (len == 0)
		return allow_empty;
	if (len > SMTP_ADDR_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c <= ' ' || c > '~' || c == '<' || c == '>')
			return false;
	}
	return true;
}

/* A host or EHLO name: letters, digits and a few marks, nothing libesmtp
 * would split on (':') or that could end a command line. */
static bool
smtp_name_ok(const char *h, bool allow_brackets)
{
	size_t len = strlen(h);

	if (len == 0 || len > SMTP_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')
			continue;
		if (allow_brackets && (c == '[' || c == ']' || c == ':'))
			continue;
		return false;
	}
	return true;
}

static bool
smtp_host_is_ip(const char *host)
{
	struct in_addr a4;

	return inet_pton(AF_INET, host, &a4) == 1;
}

static bool
smtp_host_is_loopback(const char *host)
{
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return false;
}

/* ---- TLS -------------------------------------------------------------- */

/* Keep the first verification failure as the session's reason. */
static int
smtp_tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl;
	struct smtp_sender *s;
	int err;

	if (ok)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (!ssl)
		return ok;
	s = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (!s || !s->run || s->run->tls_reason[0] != '\0')
		return ok;
	err = X509_STORE_CTX_get_error(xs);
	smtp_text_fmt(s->run->tls_reason, sizeof(s->run->tls_reason),
	    "relay certificate not accepted: %s (depth %d)",
	    X509_verify_cert_error_string(err),
	    X509_STORE_CTX_get_error_depth(xs));
	return ok;
}

/*
 * libesmtp makes the SSL from our SSL_CTX itself and sets no server name;
 * the handshake-start callback is the last moment to set SNI before the
 * ClientHello is built.
 */
static void
smtp_tls_info_cb(const SSL *cssl, int where, int ret _unused_)
{
	struct smtp_sender *s;
	SSL *ssl = unconst(cssl);

	if (!(where & SSL_CB_HANDSHAKE_START) || SSL_is_server(ssl))
		return;
	s = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (s && !smtp_host_is_ip(s->host) &&
	    SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == NULL)
		SSL_set_tlsext_host_name(ssl, s->host);
}

static int
smtp_tls_ctx_new(struct smtp_sender *s, const char *ca_file)
{
	X509_VERIFY_PARAM *param;
	SSL_CTX *ctx;

	if (ca_file && access(ca_file, R_OK) < 0)
		return -errno;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return -ENOMEM;
	s->ssl_ctx = ctx;
	/*
	 * TLS 1.2 only. libesmtp's protocol loop, when the socket is both
	 * readable and writable, reads before it flushes the command it
	 * has just queued; the NewSessionTicket messages a TLS 1.3 server
	 * sends after the handshake make the socket readable without a
	 * reply, so it then waits for the answer to an EHLO still in its
	 * buffer until the timeout. TLS 1.2 sends tickets inside the
	 * handshake, which SSL_connect() consumes.
	 */
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION))
		return -EIO;
	/*
	 * The system's CAs (a bundle of some hundred certificates, half of
	 * the daemon's start-up when parsed here) are loaded by the mail
	 * thread before its first session: smtp_tls_default_paths().
	 */
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
			return -EINVAL;
	} else {
		s->default_paths = true;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, smtp_tls_verify_cb);
	param = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (smtp_host_is_ip(s->host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, s->host) != 1)
			return -EINVAL;
	} else if (X509_VERIFY_PARAM_set1_host(param, s->host, 0) != 1) {
		return -EINVAL;
	}
	SSL_CTX_set_app_data(ctx, s);
	SSL_CTX_set_info_callback(ctx, smtp_tls_info_cb);
	ERR_clear_error();
	return 0;
}

/* ---- libesmtp callbacks (thread) -------------------------------------- */

/* Hand libesmtp the message, SMTP_CHUNK_MAX at a time; len NULL: rewind. */
static const char *
smtp_feed_cb(void **ctx _unused_, int *len, void *arg)
{
	struct smtp_feed *f = arg;
	const char *p;
	size_t n;

	if (!len) {
		f->off = 0;
		return NULL;
	}
	n = MIN(f->len - f->off, (size_t)SMTP_CHUNK_MAX);
	*len = (int)n;
	if (n == 0)
		return NULL;
	p = f->data + f->off;
	f->off += n;
	return p;
}

/* A complete reply line read before the first MAIL. */
static void
smtp_monitor_line(struct smtp_run *run, const char *l, size_t len)
{
	int code;

	if (run->in_txn || len < 3)
		return;
	for (size_t i = 0; i < 3; i++)
		if (l[i] < '0' || l[i] > '9')
			return;
	/* Only the last line of a reply: "NNN text" or "NNN". */
	if (len > 3 && l[3] != ' ' && l[3] != '\r')
		return;
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (code < 400 || code > 599)
		return;
	run->sess_code = code;
	run->sess_auth = run->in_auth;
	smtp_text_copy(run->sess_text, sizeof(run->sess_text), l + 3,
	    len - 3);
}

/*
 * The protocol monitor: what the relay answered before the first MAIL
 * (the reason when the session does not get that far), and which command
 * it answered. Written data is only looked at for the command verb; it
 * may hold AUTH credentials and is not kept.
 */
static void
smtp_monitor_cb(const char *buf, int buflen, int writing, void *arg)
{
	struct smtp_run *run = arg;
	size_t len = buflen > 0 ? (size_t)buflen : 0;

	if (writing == SMTP_CB_WRITING) {
		if (len >= 5 && strncasecmp(buf, "AUTH ", 5) == 0)
			run->in_auth = true;
		else if (len >= 5 && (strncasecmp(buf, "EHLO ", 5) == 0 ||
		    strncasecmp(buf, "HELO ", 5) == 0))
			run->in_auth = false;
		if (memmem(buf, len, "MAIL FROM:", 10)) {
			run->in_auth = false;
			run->in_txn = true;
		}
		return;
	}
	if (writing != SMTP_CB_READING)
		return;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			if (!run->line_long)
				smtp_monitor_line(run, run->line,
				    run->line_len);
			run->line_len = 0;
			run->line_long = false;
		} else if (run->line_len < sizeof(run->line)) {
			run->line[run->line_len++] = buf[i];
		} else {
			run->line_long = true;
		}
	}
}

static void
smtp_event_cb(smtp_session_t session _unused_, int event_no, void *arg, ...)
{
	struct smtp_run *run = arg;
	va_list ap;
	int *ok;

	va_start(ap, arg);
	switch (event_no) {
	case SMTP_EV_EXTNA_STARTTLS:
		run->tls_missing = true;
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		long vfy = va_arg(ap, long);

		ok = va_arg(ap, int *);
		*ok = 0;
		if (run->tls_reason[0] == '\0')
			smtp_text_fmt(run->tls_reason,
			    sizeof(run->tls_reason),
			    "relay certificate not accepted: %s",
			    X509_verify_cert_error_string(vfy));
		break;
	}
	case SMTP_EV_WEAK_CIPHER:
		(void)va_arg(ap, int);
		ok = va_arg(ap, int *);
		*ok = 0;
		smtp_text_set(run->tls_reason, sizeof(run->tls_reason),
		    "TLS cipher too weak");
		break;
	case SMTP_EV_NO_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = 0;
		smtp_text_set(run->tls_reason, sizeof(run->tls_reason),
		    "relay sent no certificate");
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		/*
		 * libesmtp's own name check knows neither IP addresses nor
		 * its canonical-name quirks; OpenSSL already checked the
		 * name against the relay host (the handshake fails
		 * otherwise), so the certificate is fine.
		 */
		ok = va_arg(ap, int *);
		*ok = 1;
		break;
	case SMTP_EV_NO_CLIENT_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = 0;
		break;
	default:
		/* Progress events; SYNTAXWARNING: stay tolerant. */
		break;
	}
	va_end(ap);
}

/* SASL asks for the user name and password. */
static int
smtp_auth_interact(auth_client_request_t req, char **result, int fields,
    void *arg)
{
	struct smtp_sender *s = arg;

	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = s->user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = s->password;
		else
			return 0;
	}
	return 1;
}

/* ---- the session (thread) --------------------------------------------- */

static void
smtp_msg_set(struct smtp_msg *msg, enum smtp_result res, int code,
    const char *text)
{
	msg->result = res;
	msg->code = code;
	smtp_text_set(msg->text, sizeof(msg->text), text);
}

static void
smtp_msg_status(struct smtp_msg *msg, const smtp_status_t *st)
{
	int cls = st->code / 100;

	msg->code = st->code;
	msg->result = cls == 2 ? SMTP_OK : cls == 4 ? SMTP_TEMP : SMTP_PERM;
	if (st->enh_class > 0)
		smtp_text_fmt(msg->text, sizeof(msg->text), "%d.%d.%d %s",
		    st->enh_class, st->enh_subject, st->enh_detail,
		    st->text ? st->text : "");
	else
		smtp_text_set(msg->text, sizeof(msg->text), st->text);
}

static bool
smtp_status_failed(const smtp_status_t *st)
{
	return st && (st->code / 100 == 4 || st->code / 100 == 5);
}

/* The reason for messages the session left without a reply. */
static void
smtp_run_reason(const struct smtp_run *run, int err, struct smtp_msg *out)
{
	char buf[256];
	unsigned long ssl_err;

	if (run->tls_reason[0] != '\0') {
		smtp_msg_set(out, SMTP_TEMP, 0, run->tls_reason);
		return;
	}
	if (run->tls_missing) {
		smtp_msg_set(out, SMTP_TEMP, 0,
		    "STARTTLS required but not offered by the relay");
		return;
	}
	if (run->sess_code != 0) {
		smtp_msg_set(out, run->sess_auth && run->sess_code / 100 == 5 ?
		    SMTP_PERM : SMTP_TEMP, run->sess_code, run->sess_text);
		if (run->sess_auth)
			smtp_text_fmt(out->text, sizeof(out->text),
			    "authentication failed: %s", run->sess_text);
		return;
	}
	switch (err) {
	case SMTP_ERR_INVAL:
	case 0:
		smtp_msg_set(out, SMTP_TEMP, 0,
		    "session ended before the message was sent");
		return;
	case SMTP_ERR_DROPPED_CONNECTION:
		smtp_msg_set(out, SMTP_TEMP, 0,
		    "connection dropped or timed out");
		return;
	case SMTP_ERR_CLIENT_ERROR:
		ssl_err = ERR_peek_last_error();
		if (ssl_err != 0) {
			ERR_error_string_n(ssl_err, buf, sizeof(buf));
			smtp_text_fmt(out->text, sizeof(out->text),
			    "TLS handshake failed: %s", buf);
		} else {
			smtp_text_set(out->text, sizeof(out->text),
			    "TLS handshake failed");
		}
		out->result = SMTP_TEMP;
		out->code = 0;
		return;
	default:
		if (!smtp_strerror(err, buf, sizeof(buf)))
			snprintf(buf, sizeof(buf), "libesmtp error %d", err);
		smtp_msg_set(out, SMTP_TEMP, 0, buf);
		return;
	}
}

/* Decide one message from its replies; false: it got none that decides. */
static bool
smtp_classify(struct smtp_msg *msg, smtp_message_t m, smtp_recipient_t r)
{
	const smtp_status_t *st;

	st = smtp_reverse_path_status(m);
	if (smtp_status_failed(st)) {
		smtp_msg_status(msg, st);
		return true;
	}
	st = smtp_recipient_status(r);
	if (smtp_status_failed(st)) {
		smtp_msg_status(msg, st);
		return true;
	}
	st = smtp_message_transfer_status(m);
	if (st && (st->code / 100 == 2 || smtp_status_failed(st))) {
		smtp_msg_status(msg, st);
		return true;
	}
	return false;
}

static int
smtp_session_setup(struct smtp_sender *s, struct smtp_run *run,
    smtp_session_t session)
{
	static const int which[] = {
		Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA,
		Timeout_TRANSFER, Timeout_DATA2,
	};

	if (!smtp_set_server(session, s->server))
		return -ENOMEM;
	if (s->helo && !smtp_set_hostname(session, s->helo))
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(which); i++)
		if (smtp_set_timeout(session,
		    which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM,
		    s->timeout_ms) == 0)
			return -EINVAL;
	smtp_set_eventcb(session, smtp_event_cb, run);
	smtp_set_monitorcb(session, smtp_monitor_cb, run, 0);
	switch (s->starttls) {
	case SMTP_STARTTLS_NEVER:
		smtp_starttls_enable(session, Starttls_DISABLED);
		break;
	case SMTP_STARTTLS_WHEN_AVAILABLE:
		smtp_starttls_set_ctx(session, s->ssl_ctx);
		smtp_starttls_enable(session, Starttls_ENABLED);
		break;
	case SMTP_STARTTLS_REQUIRED:
		smtp_starttls_set_ctx(session, s->ssl_ctx);
		smtp_starttls_enable(session, Starttls_REQUIRED);
		break;
	}
	if (s->auth)
		smtp_auth_set_context(session, s->auth);
	return 0;
}

/* On the thread, before a session uses the SSL_CTX: no SSL made from it
 * exists yet, and nothing else touches it. 0 or -EIO (tried again with
 * the next batch). */
static int
smtp_tls_default_paths(struct smtp_sender *s)
{
	if (!s->ssl_ctx || !s->default_paths)
		return 0;
	if (SSL_CTX_set_default_verify_paths(s->ssl_ctx) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	s->default_paths = false;
	return 0;
}

static void
smtp_run_batch(struct smtp_sender *s, struct smtp_msg *msgs, size_t n)
{
	_cleanup_free_ struct smtp_feed *feed = NULL;
	_cleanup_free_ smtp_message_t *m = NULL;
	_cleanup_free_ smtp_recipient_t *r = NULL;
	struct smtp_run run = { .s = s };
	struct smtp_msg reason = { 0 };
	smtp_session_t session = NULL;
	size_t queued = 0;
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		msgs[i].result = SMTP_TEMP;
		msgs[i].code = 0;
		msgs[i].text[0] = '\0';
	}
	feed = calloc(n, sizeof(*feed));
	m = calloc(n, sizeof(*m));
	r = calloc(n, sizeof(*r));
	session = smtp_create_session();
	if (!feed || !m || !r || !session) {
		err = -ENOMEM;
		goto out;
	}
	err = smtp_tls_default_paths(s);
	if (err == 0)
		err = smtp_session_setup(s, &run, session);
	if (err < 0)
		goto out;

	for (size_t i = 0; i < n; i++) {
		struct smtp_msg *msg = &msgs[i];

		if (!smtp_addr_ok(msg->from, true) ||
		    !smtp_addr_ok(msg->to, false)) {
			smtp_msg_set(msg, SMTP_PERM, 0,
			    "invalid envelope address");
			continue;
		}
		if (msg->len == 0) {
			smtp_msg_set(msg, SMTP_PERM, 0, "empty message");
			continue;
		}
		feed[i] = (struct smtp_feed){ .data = msg->data,
			.len = msg->len };
		m[i] = smtp_add_message(session);
		if (!m[i] || !smtp_set_reverse_path(m[i], msg->from) ||
		    !smtp_set_messagecb(m[i], smtp_feed_cb, &feed[i]) ||
		    !(r[i] = smtp_add_recipient(m[i], msg->to))) {
			err = -ENOMEM;
			goto out;
		}
		smtp_size_set_estimate(m[i], msg->len);
		queued++;
	}
	if (queued == 0)
		goto out;

	/*
	 * libesmtp keeps its error per thread and never clears it; an
	 * argument error sets a known value, so what start_session leaves
	 * is this session's.
	 */
	smtp_version(NULL, 0, 0);
	ERR_clear_error();
	s->run = &run;
	smtp_start_session(session);
	s->run = NULL;
	err = smtp_errno();
	smtp_run_reason(&run, err, &reason);
	ERR_clear_error();
	err = 0;

	for (size_t i = 0; i < n; i++) {
		if (!m[i] || smtp_classify(&msgs[i], m[i], r[i]))
			continue;
		msgs[i].result = reason.result;
		msgs[i].code = reason.code;
		memcpy(msgs[i].text, reason.text, sizeof(msgs[i].text));
	}
out:
	if (err < 0) {
		char buf[128];

		/* Every message not already refused above. */
		snprintf(buf, sizeof(buf), "cannot set up the session: %s",
		    strerror(-err));
		for (size_t i = 0; i < n; i++)
			if (msgs[i].text[0] == '\0')
				smtp_msg_set(&msgs[i], SMTP_TEMP, 0, buf);
	}
	if (session)
		smtp_destroy_session(session);
}

static void *
smtp_thread(void *arg)
{
	struct smtp_sender *s = arg;
	const uint64_t one = 1;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct smtp_msg *msgs;
		size_t n;

		while (!s->stop && !s->work)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stop)
			break;
		msgs = s->work;
		n = s->work_n;
		s->work = NULL;
		s->work_n = 0;
		pthread_mutex_unlock(&s->lock);

		smtp_run_batch(s, msgs, n);

		pthread_mutex_lock(&s->lock);
		s->result = msgs;
		s->result_n = n;
		pthread_mutex_unlock(&s->lock);
		/* Cannot fail short of the counter overflowing. */
		if (write(s->efd, &one, sizeof(one)) < 0) {
			/* the loop still finds the result under the lock */
		}
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- loop side -------------------------------------------------------- */

static void
smtp_result_event(evutil_socket_t fd, short what _unused_, void *arg)
{
	struct smtp_sender *s = arg;
	struct smtp_msg *msgs;
	uint64_t count;
	size_t n;

	if (read(fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: woken for nothing; the state below is what counts */
	}
	pthread_mutex_lock(&s->lock);
	msgs = s->result;
	n = s->result_n;
	s->result = NULL;
	s->result_n = 0;
	pthread_mutex_unlock(&s->lock);
	if (!msgs)
		return;
	s->busy = false;
	/* The callback may submit the next batch or free s: s is not
	 * touched after it. */
	s->done(s->arg, msgs, n);
}

static void
smtp_auth_init_once(void)
{
	auth_client_init();
}

static int
smtp_opts_check(const struct smtp_opts *o)
{
	if (!o->host || !smtp_name_ok(o->host, false))
		return -EINVAL;
	if (o->port == 0 || o->timeout_s < 1 ||
	    o->timeout_s > SMTP_TIMEOUT_MAX)
		return -EINVAL;
	switch (o->starttls) {
	case SMTP_STARTTLS_NEVER:
	case SMTP_STARTTLS_WHEN_AVAILABLE:
	case SMTP_STARTTLS_REQUIRED:
		break;
	default:
		return -EINVAL;
	}
	if (o->helo && !smtp_name_ok(o->helo, true))
		return -EINVAL;
	if (o->user && o->user[0] != '\0' && !o->password)
		return -EINVAL;
	return 0;
}

static char *
smtp_strdup_opt(const char *str, int *r)
{
	char *p;

	if (!str)
		return NULL;
	p = strdup(str);
	if (!p)
		*r = -ENOMEM;
	return p;
}

static int
smtp_start_thread(struct smtp_sender *s)
{
	sigset_t all, old;
	int r;

	/* Signals belong to the loop; SIGPIPE from a dead relay too. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&s->thread, NULL, smtp_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	s->thread_started = true;
	return 0;
}

int
smtp_sender_new(struct event_base *base, const struct smtp_opts *opts,
    smtp_done_fn done, void *arg, struct smtp_sender **ret)
{
	static pthread_once_t auth_once = PTHREAD_ONCE_INIT;
	struct smtp_sender *s;
	size_t server_len;
	int r = 0;

	if (!base || !opts || !done || !ret)
		return -EINVAL;
	r = smtp_opts_check(opts);
	if (r < 0)
		return r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->efd = -1;
	s->base = base;
	s->done = done;
	s->arg = arg;
	s->starttls = opts->starttls;
	s->timeout_ms = (long)opts->timeout_s * 1000L;

	r = pthread_mutex_init(&s->lock, NULL);
	if (r != 0) {
		free(s);
		return -r;
	}
	r = pthread_cond_init(&s->cond, NULL);
	if (r != 0) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return -r;
	}
	s->lock_init = true;

	s->host = smtp_strdup_opt(opts->host, &r);
	s->helo = smtp_strdup_opt(opts->helo, &r);
	if (opts->user && opts->user[0] != '\0') {
		s->user = smtp_strdup_opt(opts->user, &r);
		s->password = smtp_strdup_opt(opts->password, &r);
	}
	if (r < 0)
		goto fail;
	server_len = strlen(opts->host) + sizeof(":65535");
	s->server = malloc(server_len);
	if (!s->server) {
		r = -ENOMEM;
		goto fail;
	}
	snprintf(s->server, server_len, "%s:%u", opts->host,
	    (unsigned)opts->port);
	s->allow_plain = opts->starttls == SMTP_STARTTLS_REQUIRED ||
	    smtp_host_is_loopback(opts->host);

	if (opts->starttls != SMTP_STARTTLS_NEVER) {
		r = smtp_tls_ctx_new(s, opts->ca_file);
		if (r < 0)
			goto fail;
	}
	if (s->user) {
		pthread_once(&auth_once, smtp_auth_init_once);
		s->auth = auth_create_context();
		if (!s->auth) {
			r = -ENOMEM;
			goto fail;
		}
		auth_set_mechanism_flags(s->auth,
		    s->allow_plain ? AUTH_PLUGIN_PLAIN : 0, 0);
		auth_set_interact_cb(s->auth, smtp_auth_interact, s);
	}

	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		r = -errno;
		goto fail;
	}
	s->ev = event_new(base, s->efd, EV_READ | EV_PERSIST,
	    smtp_result_event, s);
	if (!s->ev) {
		r = -ENOMEM;
		goto fail;
	}
	if (event_add(s->ev, NULL) < 0) {
		r = -EIO;
		goto fail;
	}
	r = smtp_start_thread(s);
	if (r < 0)
		goto fail;

	*ret = s;
	return 0;
fail:
	smtp_sender_free(s);
	return r;
}

int
smtp_sender_submit(struct smtp_sender *s, struct smtp_msg *msgs, size_t n)
{
	if (!s || !msgs || n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!msgs[i].from || !msgs[i].to || !msgs[i].data)
			return -EINVAL;
	if (s->busy)
		return -EBUSY;
	for (size_t i = 0; i < n; i++) {
		msgs[i].result = SMTP_TEMP;
		msgs[i].code = 0;
		msgs[i].text[0] = '\0';
	}
	s->busy = true;
	pthread_mutex_lock(&s->lock);
	s->work = msgs;
	s->work_n = n;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

bool
smtp_sender_busy(const struct smtp_sender *s)
{
	return s && s->busy;
}

void
smtp_sender_free(struct smtp_sender *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
		s->thread_started = false;
	}
	/* A result the loop has not seen yet is dropped with the event. */
	if (s->ev)
		event_free(s->ev);
	if (s->efd >= 0)
		close(s->efd);
	if (s->auth)
		auth_destroy_context(s->auth);
	SSL_CTX_free(s->ssl_ctx);
	if (s->password) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
	}
	free(s->user);
	free(s->helo);
	free(s->server);
	free(s->host);
	if (s->lock_init) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
	}
	free(s);
}
