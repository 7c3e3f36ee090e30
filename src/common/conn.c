/* SPDX-License-Identifier: ISC */
/* conn.c -- blocking client connections for the tools (TCP, TLS, Unix) */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/errcode.h"
#include "common/frame.h"
#include "common/macro.h"

#define CONN_TIMEOUT_DEFAULT_MS 10000
/* How long to wait between tries when a Unix socket's backlog is full. */
#define CONN_UNIX_RETRY_MS 10

struct tr_conn {
	int fd;
	int timeout_ms;  /* < 0: wait forever */
	SSL_CTX *ctx;
	SSL *ssl;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(SSL *, SSL_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct addrinfo *, freeaddrinfo)

static inline void
closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Hand a descriptor out of a _cleanup_close_ variable. */
#define TAKE_FD(fd)                                                            \
	({                                                                     \
		int _fd_ = (fd);                                               \
		(fd) = -1;                                                     \
		_fd_;                                                          \
	})

/* A deadline timeout_ms from now; -1 for none. */
static int64_t
deadline_after(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return (int64_t)clock_monotonic_ms() + timeout_ms;
}

/* Wait for events on fd until the deadline. 0, -ETIMEDOUT or -errno. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int timeout = -1;
		int r;

		if (deadline >= 0) {
			int64_t left = deadline - (int64_t)clock_monotonic_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		}
		r = poll(&pfd, 1, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			continue; /* the deadline check above decides */
		/* Errors and hang-ups: the next read or write reports them. */
		return 0;
	}
}

static void
conn_init_opts(struct tr_conn_opts *o, const struct tr_conn_opts *opts)
{
	if (opts)
		*o = *opts;
	else
		*o = (struct tr_conn_opts){ 0 };
	if (o->timeout_ms == 0)
		o->timeout_ms = CONN_TIMEOUT_DEFAULT_MS;
}

int
tr_split_hostport(const char *s, char **ret_host, char **ret_port)
{
	const char *host, *port, *end;
	size_t hostlen;
	char *h, *p;
	unsigned long n;
	char *e;

	if (!s)
		return -EINVAL;
	if (s[0] == '[') {
		host = s + 1;
		end = strchr(host, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hostlen = (size_t)(end - host);
		port = end + 2;
	} else {
		end = strchr(s, ':');
		/* More than one colon: a bare IPv6 address, ambiguous. */
		if (!end || strchr(end + 1, ':'))
			return -EINVAL;
		host = s;
		hostlen = (size_t)(end - s);
		port = end + 1;
	}
	if (hostlen == 0 || memchr(host, '[', hostlen) ||
	    memchr(host, ']', hostlen))
		return -EINVAL;
	if (port[0] < '0' || port[0] > '9' || strlen(port) > 5)
		return -EINVAL;
	errno = 0;
	n = strtoul(port, &e, 10);
	if (errno != 0 || *e != '\0' || n > 65535)
		return -EINVAL;

	h = strndup(host, hostlen);
	if (!h)
		return -ENOMEM;
	p = strdup(port);
	if (!p) {
		free(h);
		return -ENOMEM;
	}
	*ret_host = h;
	*ret_port = p;
	return 0;
}

/* Connect one address within timeout_ms. Returns the socket or -errno. */
static int
connect_addr(const struct addrinfo *ai, int timeout_ms)
{
	_cleanup_close_ int fd = -1;
	int64_t deadline = deadline_after(timeout_ms);
	socklen_t len;
	int err, r, one = 1;

	fd = socket(ai->ai_family,
	    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS && errno != EINTR)
			return -errno;
		r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			return r;
		len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		if (err != 0)
			return -err;
	}
	/* Requests and replies are small: do not wait to coalesce them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return TAKE_FD(fd);
}

static int
conn_new(int fd, int timeout_ms, struct tr_conn **ret_conn)
{
	struct tr_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	*ret_conn = c;
	return 0;
}

static bool
is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

/* No passphrase for encrypted keys: there is no one to ask. */
static int
conn_no_passphrase(char *buf, int size, int rwflag, void *data)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)data;
	return -1;
}

/*
 * Run the TLS handshake on c->fd. On failure the OpenSSL error queue says
 * why (with the verification result as error data); returns -EPROTO, or
 * -ETIMEDOUT, -ECONNRESET, -errno.
 */
static int
conn_tls_start(struct tr_conn *c, const struct tr_conn_opts *o,
    const char *host)
{
	_cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
	_cleanup_(SSL_freep) SSL *ssl = NULL;
	const char *name = o->server_name ? o->server_name : host;
	int64_t deadline = deadline_after(c->timeout_ms);

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return -ENOMEM;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		return -EPROTO;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A peer that closes without close_notify reads as EOF. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
	if (o->ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
			return -EPROTO;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (o->cert_file) {
		/* An encrypted key fails here instead of asking a terminal. */
		SSL_CTX_set_default_passwd_cb(ctx, conn_no_passphrase);
		if (SSL_CTX_use_certificate_chain_file(ctx,
		    o->cert_file) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx,
		    o->key_file ? o->key_file : o->cert_file,
		    SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1)
			return -EPROTO;
	}

	ssl = SSL_new(ctx);
	if (!ssl)
		return -ENOMEM;
	if (SSL_set_fd(ssl, c->fd) != 1)
		return -EPROTO;
	/* RFC 6066: no SNI for address literals. */
	if (!is_ip_literal(name) && SSL_set_tlsext_host_name(ssl, (char *)unconst(name)) != 1)
		return -EPROTO;
	if (o->ca_file) {
		int ok;

		if (is_ip_literal(name))
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
			    name);
		else
			ok = SSL_set1_host(ssl, name);
		if (ok != 1)
			return -EPROTO;
	}

	for (;;) {
		int r, e;

		errno = 0;
		r = SSL_connect(ssl);

		if (r == 1)
			break;
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			r = wait_fd(c->fd,
			    e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
			    deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
			return errno != 0 ? -errno : -ECONNRESET;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
		if (SSL_get_verify_result(ssl) != X509_V_OK)
			ERR_raise_data(ERR_LIB_SSL,
			    SSL_R_CERTIFICATE_VERIFY_FAILED, "%s",
			    X509_verify_cert_error_string(
			    SSL_get_verify_result(ssl)));
#endif
		return -EPROTO;
	}

	c->ctx = TAKE_PTR(ctx);
	c->ssl = TAKE_PTR(ssl);
	return 0;
}

int
tr_conn_open_tcp(const char *hostport, const struct tr_conn_opts *opts,
    struct tr_conn **ret_conn)
{
	_cleanup_free_ char *host = NULL, *port = NULL;
	_cleanup_(freeaddrinfop) struct addrinfo *res = NULL;
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV,
	};
	struct tr_conn_opts o;
	struct tr_conn *c = NULL;
	int fd = -ENOENT;
	int r;

	conn_init_opts(&o, opts);
	r = tr_split_hostport(hostport, &host, &port);
	if (r < 0)
		return r;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		switch (r) {
		case EAI_NONAME:
		case EAI_NODATA:
		case EAI_ADDRFAMILY:
			return -EHOSTUNREACH;
		case EAI_MEMORY:
			return -ENOMEM;
		case EAI_SYSTEM:
			return errno != 0 ? -errno : -EIO;
		case EAI_AGAIN:
			return -EAGAIN;
		default:
			return -EINVAL;
		}
	}
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = connect_addr(ai, o.timeout_ms);
		if (fd >= 0)
			break;
	}
	if (fd < 0)
		return fd;

	r = conn_new(fd, o.timeout_ms, &c);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (o.tls) {
		r = conn_tls_start(c, &o, host);
		if (r < 0) {
			tr_conn_close(c);
			return r;
		}
	}
	*ret_conn = c;
	return 0;
}

int
tr_conn_open_unix(const char *path, const struct tr_conn_opts *opts,
    struct tr_conn **ret_conn)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct tr_conn_opts o;
	int64_t deadline;
	int r;

	conn_init_opts(&o, opts);
	if (!path || path[0] == '\0')
		return -EINVAL;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	deadline = deadline_after(o.timeout_ms);
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EINTR)
			continue;
		/* EAGAIN: the listener's backlog is full; try again. */
		if (errno != EAGAIN)
			return -errno;
		if (deadline >= 0 && (int64_t)clock_monotonic_ms() >= deadline)
			return -ETIMEDOUT;
		(void)poll(NULL, 0, CONN_UNIX_RETRY_MS);
	}
	r = conn_new(fd, o.timeout_ms, ret_conn);
	if (r < 0)
		return r;
	TAKE_FD(fd);
	return 0;
}

/*
 * One try at moving bytes over TLS: write them from wbuf, or read them into
 * rbuf (the other NULL). 0 with *ret_n bytes moved, or none and *ret_want
 * set to what to wait for; -EINTR to try again at once; -ECONNRESET when
 * the peer closed; -EPROTO or -errno.
 */
static int
conn_ssl_step(struct tr_conn *c, const uint8_t *wbuf, uint8_t *rbuf,
    size_t len, size_t *ret_n, short *ret_want)
{
	size_t n = 0;
	int ok, e;

	ERR_clear_error();
	errno = 0;
	if (wbuf)
		ok = SSL_write_ex(c->ssl, wbuf, len, &n);
	else
		ok = SSL_read_ex(c->ssl, rbuf, len, &n);
	if (ok == 1) {
		*ret_n = n;
		return 0;
	}
	e = SSL_get_error(c->ssl, 0);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*ret_n = 0;
		*ret_want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 0;
	}
	if (e == SSL_ERROR_SYSCALL && errno != 0)
		return -errno;
	if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
		return -ECONNRESET;
	return -EPROTO;
}

/* conn_ssl_step() on a plain socket. */
static int
conn_plain_step(struct tr_conn *c, const uint8_t *wbuf, uint8_t *rbuf,
    size_t len, size_t *ret_n, short *ret_want)
{
	ssize_t n;

	if (wbuf)
		n = send(c->fd, wbuf, len, MSG_NOSIGNAL);
	else
		n = recv(c->fd, rbuf, len, 0);
	if (n > 0 || (n == 0 && wbuf)) {
		*ret_n = (size_t)n;
		return 0;
	}
	if (n == 0)
		return -ECONNRESET;
	if (errno != EAGAIN)
		return -errno;
	*ret_n = 0;
	*ret_want = wbuf ? POLLOUT : POLLIN;
	return 0;
}

/*
 * Write all len bytes of wbuf, or read exactly len bytes into rbuf (the
 * other NULL), within the connection's timeout. 0, -ECONNRESET on EOF or
 * when the peer closed, -ETIMEDOUT, -EPIPE or -errno.
 */
static int
conn_move_all(struct tr_conn *c, const uint8_t *wbuf, uint8_t *rbuf,
    size_t len)
{
	int64_t deadline = deadline_after(c->timeout_ms);
	size_t done = 0;

	while (done < len) {
		const uint8_t *wp = wbuf ? wbuf + done : NULL;
		uint8_t *rp = rbuf ? rbuf + done : NULL;
		size_t n = 0;
		short want = 0;
		int r;

		if (c->ssl)
			r = conn_ssl_step(c, wp, rp, len - done, &n, &want);
		else
			r = conn_plain_step(c, wp, rp, len - done, &n, &want);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		done += n;
		if (want == 0)
			continue;
		r = wait_fd(c->fd, want, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

int
tr_conn_send(struct tr_conn *c, const ProtobufCMessage *msg)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t n;

	if (!c || !msg)
		return -EINVAL;
	n = protobuf_c_message_get_packed_size(msg);
	if (n > UINT32_MAX || n > SIZE_MAX - FRAME_HDR_SIZE)
		return -EMSGSIZE;
	buf = malloc(FRAME_HDR_SIZE + n);
	if (!buf)
		return -ENOMEM;
	frame_put_header(buf, (uint32_t)n);
	if (protobuf_c_message_pack(msg, buf + FRAME_HDR_SIZE) != n)
		return -EINVAL;
	return conn_move_all(c, buf, NULL, FRAME_HDR_SIZE + n);
}

int
tr_conn_send_raw(struct tr_conn *c, const void *buf, size_t len)
{
	if (!c || (!buf && len > 0))
		return -EINVAL;
	return conn_move_all(c, buf, NULL, len);
}

int
tr_conn_recv(struct tr_conn *c, uint32_t max, uint8_t **ret_buf,
    uint32_t *ret_len)
{
	_cleanup_free_ uint8_t *buf = NULL;
	uint8_t hdr[FRAME_HDR_SIZE];
	uint32_t n;
	int r;

	if (!c)
		return -EINVAL;
	r = conn_move_all(c, NULL, hdr, sizeof(hdr));
	if (r < 0)
		return r;
	n = frame_get_length(hdr);
	if (n > max)
		return -TR_EFRAME_TOO_LARGE;
	buf = malloc(n > 0 ? n : 1);
	if (!buf)
		return -ENOMEM;
	r = conn_move_all(c, NULL, buf, n);
	if (r < 0)
		return r;
	*ret_buf = TAKE_PTR(buf);
	*ret_len = n;
	return 0;
}

/*
 * Whether application data, EOF or an error waits in the TLS layer: 1, or
 * 0 when what came in was only TLS records of its own (or half a record).
 * The socket is non-blocking: this never waits.
 */
static int
conn_tls_readable(struct tr_conn *c)
{
	uint8_t b;
	size_t n = 0;
	int e;

	if (SSL_pending(c->ssl) > 0)
		return 1;
	ERR_clear_error();
	errno = 0;
	if (SSL_peek_ex(c->ssl, &b, 1, &n) == 1)
		return 1;
	e = SSL_get_error(c->ssl, 0);
	if (e == SSL_ERROR_WANT_READ)
		return 0;
	/* EOF, an error, or a write the next read does: let it report. */
	return 1;
}

int
tr_conn_wait(struct tr_conn *c, int timeout_ms)
{
	int64_t deadline;
	bool first = true;

	if (!c)
		return -EINVAL;
	deadline = deadline_after(timeout_ms);
	for (;; first = false) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int timeout = -1;
		int r;

		if (c->ssl && SSL_has_pending(c->ssl) && conn_tls_readable(c))
			return 1;
		if (deadline >= 0) {
			int64_t left = deadline - (int64_t)clock_monotonic_ms();

			if (left <= 0 && !first)
				return 0;
			timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX :
			    (int)left;
		}
		r = poll(&pfd, 1, timeout);
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		if (!c->ssl || conn_tls_readable(c))
			return 1;
		/* Only a record of the TLS layer's own: wait on. */
	}
}

int
tr_conn_fd(const struct tr_conn *c)
{
	return c ? c->fd : -1;
}

struct tr_conn *
tr_conn_close(struct tr_conn *c)
{
	if (!c)
		return NULL;
	if (c->ssl) {
		/* Best effort close_notify; never wait for the peer's. */
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return NULL;
}
