/* SPDX-License-Identifier: ISC */
/* server.c -- listeners and framed connections on the loop */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "common.pb-c.h"
#include "common/conn.h"
#include "common/errcode.h"
#include "common/frame.h"
#include "common/log.h"
#include "net/server.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                             \
	for ((var) = TAILQ_FIRST(head);                                        \
	    (var) && ((tvar) = TAILQ_NEXT(var, field), 1); (var) = (tvar))
#endif

/*
 * Plain TCP and Unix connections do their own I/O on two events: one
 * read per wake-up straight into the input buffer, every reply of that
 * batch written with one writev before going back to the loop, and a
 * write event only while the kernel's buffer is full. That is two system
 * calls per request, where a bufferevent spends five. TLS connections use
 * bufferevent_openssl, which owns the SSL state machine.
 */
#define CONN_READ_CHUNK 16384
/* The sweep that enforces idle timeouts. */
#define CONN_SWEEP_SECONDS 1
/* Refused connections are logged at most once per this many seconds per
 * listener, with a count: a flood of connections is not a flood of lines. */
#define REFUSAL_LOG_SECONDS 10
/* Accepting stops this long after an accept() failure the reserve
 * descriptor cannot get round (see listener_refuse_reserved()). */
#define ACCEPT_PAUSE_SECONDS 1

struct conn {
	TAILQ_ENTRY(conn) entry;
	struct listener *l;
	struct bufferevent *bev;     /* TLS only */
	evutil_socket_t fd;          /* plain only; -1 once closed */
	struct event *rev, *wev;     /* plain only */
	struct evbuffer *in, *out;   /* plain: ours; TLS: the bufferevent's */
	bool open;                   /* the socket is still there */
	uint64_t id;
	void *data;
	unsigned refs;               /* the listener's list holds one */
	bool closing;                /* no more reads; close when flushed */
	bool read_paused;            /* output over the limit */
	bool in_callback;            /* inside on_frame: defer destruction */
	bool has_cred;
	bool idle_held;              /* a slow reply is owed: not idle */
	bool dropping;               /* goes at the next chance: no sends */
	/* The idle clock: the last whole request (or the accept, or the
	 * end of a pause). Bytes alone do not reset it, so a peer that
	 * trickles a frame a byte at a time is still dropped. */
	time_t last_request;
	time_t last_write;           /* plain: last write progress */
	struct ucred cred;
	char peer[64];
};

TAILQ_HEAD(conn_list, conn);

struct listener {
	struct event_base *base;
	struct evconnlistener *evl;
	struct event *sweep;
	struct event *resume;        /* accepting paused after an error */
	const struct listener_ops *ops;
	struct listener_limits limits;
	SSL_CTX *ssl_ctx;
	void *ctx;
	struct conn_list conns;
	unsigned nconns;
	unsigned refused;            /* since the last refusal logged */
	time_t refusal_logged;
	bool is_unix;
	bool shutting_down;
	char address[128];
	char *unix_path;
};

static uint64_t next_conn_id = 1;

static void conn_flush(struct conn *c);
static void conn_process_input(struct conn *c);

uint64_t
conn_id(const struct conn *c)
{
	return c->id;
}

struct listener *
conn_listener(const struct conn *c)
{
	return c->l;
}

void *
conn_ctx(const struct conn *c)
{
	return c->l->ctx;
}

void *
conn_data(const struct conn *c)
{
	return c->data;
}

void
conn_set_data(struct conn *c, void *data)
{
	c->data = data;
}

const char *
conn_peer_name(const struct conn *c)
{
	return c->peer;
}

int
conn_peer_cert_sha256(const struct conn *c, uint8_t ret[32])
{
	unsigned int len = 32;
	X509 *x;
	SSL *ssl;
	int ok;

	if (!c->bev)
		return -ENOTSUP;
	ssl = bufferevent_openssl_get_ssl(c->bev);
	x = ssl ? SSL_get_peer_certificate(ssl) : NULL;
	if (!x)
		return -ENOENT;
	ok = X509_digest(x, EVP_sha256(), ret, &len);
	X509_free(x);
	return ok == 1 && len == 32 ? 0 : -EIO;
}

bool
conn_is_closing(const struct conn *c)
{
	return c->closing || !c->open;
}

int
conn_peer_cred(const struct conn *c, pid_t *ret_pid, uid_t *ret_uid,
    gid_t *ret_gid)
{
	if (!c->has_cred)
		return -ENOTSUP;
	if (ret_pid)
		*ret_pid = c->cred.pid;
	if (ret_uid)
		*ret_uid = c->cred.uid;
	if (ret_gid)
		*ret_gid = c->cred.gid;
	return 0;
}

struct conn *
conn_ref(struct conn *c)
{
	c->refs++;
	return c;
}

void
conn_unref(struct conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static time_t
conn_now(const struct conn *c)
{
	struct timeval tv;

	event_base_gettimeofday_cached(c->l->base, &tv);
	return tv.tv_sec;
}

/* Close the socket now; the memory goes when the last reference does. */
static void
conn_drop_socket(struct conn *c)
{
	struct listener *l = c->l;

	if (!c->open)
		return;
	c->open = false;
	c->closing = true;
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	} else {
		event_free(c->rev);
		event_free(c->wev);
		evbuffer_free(c->in);
		evbuffer_free(c->out);
		close(c->fd);
		c->fd = -1;
	}
	c->in = c->out = NULL;
	TAILQ_REMOVE(&l->conns, c, entry);
	l->nconns--;
	if (l->ops->on_close)
		l->ops->on_close(c);
	log_debug("%016" PRIx64 " %s connection closed peer=%s", c->id,
	    l->ops->name, c->peer);
	conn_unref(c);
}

/* Destroy the connection if it is done: closing and nothing left to write. */
static void
conn_maybe_finish(struct conn *c)
{
	if (!c->open || c->in_callback || !c->closing)
		return;
	if (evbuffer_get_length(c->out) > 0)
		return;
	conn_drop_socket(c);
}

static void
conn_stop_reading(struct conn *c)
{
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
	else
		event_del(c->rev);
}

static void
conn_start_reading(struct conn *c)
{
	if (c->bev)
		bufferevent_enable(c->bev, EV_READ);
	else
		event_add(c->rev, NULL);
}

/*
 * Drop c where it may not be freed (a caller may be walking a list of
 * connections, as pushes to watchers do): what is queued is discarded,
 * sends are refused, and the socket goes in a callback of its own
 * (plain) or at the next sweep (TLS).
 */
static void
conn_drop_later(struct conn *c)
{
	c->dropping = true;
	c->closing = true;
	conn_stop_reading(c);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	if (c->bev == NULL)
		event_active(c->wev, EV_WRITE, 0);
}

void
conn_close_after_flush(struct conn *c)
{
	if (!c->open || c->dropping)
		return;
	c->closing = true;
	conn_stop_reading(c);
	conn_flush(c);
	conn_maybe_finish(c);
}

static void
conn_check_output(struct conn *c)
{
	size_t len = evbuffer_get_length(c->out);

	if (!c->read_paused && len > c->l->limits.output_limit) {
		/* The peer is not reading its replies: stop reading its
		 * requests. The idle timeout drops it if it never reads. */
		c->read_paused = true;
		conn_stop_reading(c);
	}
	/* Replies to requests read before, and pushes (order events),
	 * still come while reading is paused: past twice the limit the
	 * peer goes at once. */
	if (len > 2 * (size_t)c->l->limits.output_limit) {
		log_info("%016" PRIx64 " %s peer=%s output limit exceeded "
		    "(%zu bytes queued), closing", c->id, c->l->ops->name,
		    c->peer, len);
		conn_drop_later(c);
	}
}

/* Output drained below half the limit: take requests again. */
static void
conn_check_resume(struct conn *c)
{
	if (c->read_paused && evbuffer_get_length(c->out) <=
	    c->l->limits.output_limit / 2) {
		c->read_paused = false;
		c->last_request = conn_now(c);
		if (!c->closing) {
			conn_start_reading(c);
			/* Frames may be waiting in the input buffer already. */
			conn_process_input(c);
		}
	}
}

/* Plain connections: write what is queued now; wait for POLLOUT if the
 * kernel takes only part. Replies queued inside a read callback go out
 * together when it ends. */
static void
conn_flush(struct conn *c)
{
	int n;

	if (c->bev || !c->open || c->in_callback)
		return;
	while (evbuffer_get_length(c->out) > 0) {
		n = evbuffer_write(c->out, c->fd);
		if (n > 0) {
			c->last_write = conn_now(c);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		/* The peer is gone: what is queued can no longer matter. */
		log_debug("%016" PRIx64 " %s peer=%s write: %s", c->id,
		    c->l->ops->name, c->peer, n < 0 ? strerror(errno) : "eof");
		conn_drop_later(c);
		return;
	}
	if (evbuffer_get_length(c->out) > 0) {
		if (!event_pending(c->wev, EV_WRITE, NULL)) {
			c->last_write = conn_now(c);
			event_add(c->wev, NULL);
		}
	} else if (event_pending(c->wev, EV_WRITE, NULL)) {
		event_del(c->wev);
	}
}

int
conn_send_packed(struct conn *c, const uint8_t *payload, size_t len)
{
	uint8_t hdr[FRAME_HDR_SIZE];

	if (!c->open || c->dropping)
		return -EPIPE;
	if (len > FRAME_MAX_LIMIT)
		return -TR_EFRAME_TOO_LARGE;
	frame_put_header(hdr, (uint32_t)len);
	if (evbuffer_add(c->out, hdr, sizeof(hdr)) < 0 ||
	    evbuffer_add(c->out, payload, len) < 0)
		return -ENOMEM;
	conn_check_output(c);
	conn_flush(c);
	return 0;
}

int
conn_send(struct conn *c, const ProtobufCMessage *msg)
{
	struct evbuffer_iovec iov;
	size_t len;

	if (!c->open || c->dropping)
		return -EPIPE;
	len = protobuf_c_message_get_packed_size(msg);
	if (len > FRAME_MAX_LIMIT)
		return -TR_EFRAME_TOO_LARGE;
	/* Pack straight into the output buffer: no copy, no malloc. */
	if (evbuffer_reserve_space(c->out, (ev_ssize_t)(FRAME_HDR_SIZE + len),
	    &iov, 1) != 1 || iov.iov_len < FRAME_HDR_SIZE + len)
		return -ENOMEM;
	frame_put_header(iov.iov_base, (uint32_t)len);
	protobuf_c_message_pack(msg, (uint8_t *)iov.iov_base + FRAME_HDR_SIZE);
	iov.iov_len = FRAME_HDR_SIZE + len;
	if (evbuffer_commit_space(c->out, &iov, 1) < 0)
		return -ENOMEM;
	conn_check_output(c);
	conn_flush(c);
	return 0;
}

/* Take every whole frame from the input buffer. */
static void
conn_process_input(struct conn *c)
{
	struct listener *l = c->l;
	bool nested = c->in_callback;

again:
	c->in_callback = true;
	while (c->open && !c->closing && !c->read_paused) {
		size_t avail = evbuffer_get_length(c->in);
		uint8_t hdr[FRAME_HDR_SIZE];
		uint32_t n;
		uint8_t *p;

		if (avail < FRAME_HDR_SIZE)
			break;
		evbuffer_copyout(c->in, hdr, sizeof(hdr));
		n = frame_get_length(hdr);
		if (n > l->limits.max_frame) {
			char msg[96];

			snprintf(msg, sizeof(msg),
			    "frame of %" PRIu32 " bytes exceeds the limit of %"
			    PRIu32, n, l->limits.max_frame);
			log_info("%016" PRIx64 " %s peer=%s: %s, closing",
			    c->id, l->ops->name, c->peer, msg);
			l->ops->send_error(c, 0,
			    TWINROUTE__ERROR_CODE__ERR_FRAME_TOO_LARGE, msg);
			c->closing = true;
			conn_stop_reading(c);
			break;
		}
		if (avail - FRAME_HDR_SIZE < n)
			break;
		p = evbuffer_pullup(c->in, (ev_ssize_t)(FRAME_HDR_SIZE + n));
		if (p == NULL) {
			c->closing = true;
			conn_stop_reading(c);
			break;
		}
		c->last_request = conn_now(c);
		if (l->ops->on_frame(c, p + FRAME_HDR_SIZE, n) < 0) {
			c->closing = true;
			conn_stop_reading(c);
		}
		if (!c->open)
			break;
		evbuffer_drain(c->in, FRAME_HDR_SIZE + n);
	}
	c->in_callback = nested;
	if (nested)
		return;
	conn_flush(c);
	if (!c->open)
		return;
	/* Paused, but the kernel took everything: go on with the requests
	 * already read (no write event will come to resume us). */
	if (c->bev == NULL && c->read_paused && !c->closing &&
	    evbuffer_get_length(c->out) <= l->limits.output_limit / 2) {
		c->read_paused = false;
		c->last_request = conn_now(c);
		conn_start_reading(c);
		goto again;
	}
	conn_maybe_finish(c);
}

static void
conn_plain_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct evbuffer_iovec iov;
	ssize_t n;

	(void)what;
	if (evbuffer_reserve_space(c->in, CONN_READ_CHUNK, &iov, 1) != 1) {
		conn_drop_socket(c);
		return;
	}
	n = read(fd, iov.iov_base, MIN(iov.iov_len, (size_t)CONN_READ_CHUNK));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		log_debug("%016" PRIx64 " %s peer=%s read: %s", c->id,
		    c->l->ops->name, c->peer, n < 0 ? strerror(errno) : "eof");
		conn_drop_socket(c);
		return;
	}
	iov.iov_len = (size_t)n;
	evbuffer_commit_space(c->in, &iov, 1);
	conn_ref(c);
	conn_process_input(c);
	conn_unref(c);
}

static void
conn_plain_writecb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	conn_ref(c);
	conn_flush(c);
	if (c->open) {
		conn_check_resume(c);
		conn_maybe_finish(c);
	}
	conn_unref(c);
}

static void
conn_tls_readcb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	conn_ref(c);
	conn_process_input(c);
	conn_unref(c);
}

static void
conn_tls_writecb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	conn_ref(c);
	conn_check_resume(c);
	conn_maybe_finish(c);
	conn_unref(c);
}

static void
conn_log_timeout(const struct conn *c, const char *why)
{
	log_info("%016" PRIx64 " %s peer=%s idle timeout (%s), closing", c->id,
	    c->l->ops->name, c->peer, why);
}

static void
conn_tls_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct listener *l = c->l;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake is done. */
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		log_debug("%016" PRIx64 " %s peer=%s %s %s", c->id,
		    l->ops->name, c->peer, ssl ? SSL_get_version(ssl) : "",
		    ssl ? SSL_get_cipher_name(ssl) : "");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		conn_log_timeout(c, (what & BEV_EVENT_WRITING) ?
		    "peer not reading" : "no request");
	} else if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		if (e != 0)
			log_info("%016" PRIx64 " %s peer=%s TLS error: %s",
			    c->id, l->ops->name, c->peer,
			    ERR_reason_error_string(e));
		else
			log_debug("%016" PRIx64 " %s peer=%s error: %s",
			    c->id, l->ops->name, c->peer,
			    strerror(EVUTIL_SOCKET_ERROR()));
	}
	/* EOF, error or timeout: whatever is queued can no longer matter. */
	conn_drop_socket(c);
}

static void
conn_apply_timeouts(struct conn *c)
{
	struct timeval tv = { .tv_sec = c->l->limits.idle_timeout };

	if (c->bev)
		bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/*
 * Once a second: drop connections without a whole request for the idle
 * timeout (plain and TLS: a TLS handshake or a frame that never ends
 * counts as none), and plain ones whose writes made no progress for as
 * long (TLS: the bufferevent's write timeout).
 */
static void
listener_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct conn *c, *tmp;
	time_t now;
	struct timeval tv;

	(void)fd;
	(void)what;
	event_base_gettimeofday_cached(l->base, &tv);
	now = tv.tv_sec;
	TAILQ_FOREACH_SAFE(c, &l->conns, entry, tmp) {
		time_t idle = (time_t)l->limits.idle_timeout;

		if (c->in_callback)
			continue;
		if (c->dropping) {
			conn_drop_socket(c);
			continue;
		}
		if (c->idle_held)
			continue;
		if (!c->bev && evbuffer_get_length(c->out) > 0) {
			if (now - c->last_write >= idle) {
				conn_log_timeout(c, "peer not reading");
				conn_drop_socket(c);
			}
		} else if (!c->closing && !c->read_paused &&
		    now - c->last_request >= idle) {
			conn_log_timeout(c, evbuffer_get_length(c->in) > 0 ?
			    "request incomplete" : "no request");
			conn_drop_socket(c);
		}
	}
}

void
conn_hold_idle(struct conn *c, bool hold)
{
	if (!c->open || c->idle_held == hold)
		return;
	c->idle_held = hold;
	if (c->bev) {
		if (hold)
			bufferevent_set_timeouts(c->bev, NULL, NULL);
		else
			conn_apply_timeouts(c);
	} else if (!hold) {
		c->last_write = conn_now(c);
	}
	if (!hold)
		c->last_request = conn_now(c);
}

static void
peer_name(const struct sockaddr *sa, socklen_t salen, char *buf, size_t len)
{
	/* Numeric forms only: an IPv6 address with a scope fits in 64. */
	char host[64], serv[8];

	if (sa->sa_family == AF_UNIX) {
		snprintf(buf, len, "unix");
		return;
	}
	if (getnameinfo(sa, salen, host, sizeof(host), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%s", host, serv);
	else
		snprintf(buf, len, "%s:%s", host, serv);
}

/*
 * Descriptors run out before max_connections when RLIMIT_NOFILE is low:
 * accept() then fails with EMFILE and the listening socket stays readable,
 * so the loop would spin on it. One descriptor is kept in reserve: it is
 * closed to accept the waiting peer, which is refused at once, and taken
 * again (the way libev's documentation and nginx do it).
 */
static int reserve_fd = -1;

static void
reserve_take(void)
{
	if (reserve_fd < 0)
		reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Accept one waiting peer in the reserve's place: its fd, or -errno. */
static int
reserve_accept(evutil_socket_t lfd, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	int fd;

	if (reserve_fd < 0)
		return -EMFILE;
	close(reserve_fd);
	reserve_fd = -1;
	fd = accept4(lfd, (struct sockaddr *)ss, sslen,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		reserve_take();
	}
	return fd;
}

int
listener_refuse_reserved(evutil_socket_t lfd, const void *msg, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd;

	fd = reserve_accept(lfd, &ss, &sslen);
	if (fd < 0)
		return fd;
	if (len > 0 && write(fd, msg, len) < 0) {
		/* closing anyway */
	}
	close(fd);
	reserve_take();
	return reserve_fd < 0 ? -EMFILE : 0;
}

static void
listener_note_refusal(struct listener *l, const struct conn *c,
    const char *why)
{
	struct timeval tv;

	l->refused++;
	event_base_gettimeofday_cached(l->base, &tv);
	if (l->refusal_logged != 0 &&
	    tv.tv_sec - l->refusal_logged < REFUSAL_LOG_SECONDS)
		return;
	log_warn("%s listener %s: refused %s: %s (%u refused since the last "
	    "such line)", l->ops->name, l->address, c ? c->peer : "a peer",
	    why, l->refused);
	l->refused = 0;
	l->refusal_logged = tv.tv_sec;
}

/* Take an accepted socket; refuse it at once when out of descriptors. */
static void
listener_take(struct listener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, bool no_fds)
{
	struct conn *c;
	bool over;

	if (no_fds && l->ssl_ctx != NULL) {
		/* No handshake to refuse it in: the close says it. */
		close(fd);
		listener_note_refusal(l, NULL, "out of file descriptors "
		    "(RLIMIT_NOFILE)");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->l = l;
	c->id = next_conn_id++;
	c->refs = 1;
	peer_name(sa, (socklen_t)salen, c->peer, sizeof(c->peer));

	if (l->is_unix) {
		socklen_t cl = sizeof(c->cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &cl) == 0)
			c->has_cred = true;
		snprintf(c->peer, sizeof(c->peer), "unix:pid=%d,uid=%u",
		    (int)c->cred.pid, (unsigned)c->cred.uid);
	} else {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}

	c->fd = fd;
	if (l->ssl_ctx != NULL) {
		SSL *ssl = SSL_new(l->ssl_ctx);
		if (ssl != NULL)
			c->bev = bufferevent_openssl_socket_new(l->base, fd, ssl,
			    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev == NULL) {
			if (ssl != NULL)
				SSL_free(ssl);
			close(fd);
			free(c);
			return;
		}
		c->in = bufferevent_get_input(c->bev);
		c->out = bufferevent_get_output(c->bev);
		bufferevent_setcb(c->bev, conn_tls_readcb, conn_tls_writecb,
		    conn_tls_eventcb, c);
	} else {
		evutil_make_socket_nonblocking(fd);
		c->in = evbuffer_new();
		c->out = evbuffer_new();
		c->rev = event_new(l->base, fd, EV_READ | EV_PERSIST,
		    conn_plain_readcb, c);
		c->wev = event_new(l->base, fd, EV_WRITE | EV_PERSIST,
		    conn_plain_writecb, c);
		if (!c->in || !c->out || !c->rev || !c->wev) {
			if (c->rev)
				event_free(c->rev);
			if (c->wev)
				event_free(c->wev);
			if (c->in)
				evbuffer_free(c->in);
			if (c->out)
				evbuffer_free(c->out);
			close(fd);
			free(c);
			return;
		}
		c->last_write = conn_now(c);
	}
	c->last_request = conn_now(c);
	c->open = true;
	TAILQ_INSERT_TAIL(&l->conns, c, entry);
	over = no_fds || l->nconns >= l->limits.max_connections;
	l->nconns++;
	conn_apply_timeouts(c);
	log_debug("%016" PRIx64 " %s connection from %s", c->id, l->ops->name,
	    c->peer);

	if (c->bev)
		bufferevent_enable(c->bev, EV_WRITE);
	if (over) {
		char why[64];

		if (no_fds)
			snprintf(why, sizeof(why), "out of file descriptors "
			    "(RLIMIT_NOFILE)");
		else
			snprintf(why, sizeof(why), "%u connections already",
			    l->limits.max_connections);
		listener_note_refusal(l, c, why);
		l->ops->send_error(c, 0,
		    TWINROUTE__ERROR_CODE__ERR_TOO_MANY_CONNECTIONS,
		    "too many connections; try again later");
		conn_close_after_flush(c);
		return;
	}
	if (l->ops->on_accept && l->ops->on_accept(c) < 0) {
		conn_close_after_flush(c);
		return;
	}
	conn_start_reading(c);
}

static void
listener_acceptcb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	(void)evl;
	listener_take(arg, fd, sa, salen, false);
}

static void
listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	if (l->evl != NULL)
		evconnlistener_enable(l->evl);
}

static void
listener_errorcb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { .tv_sec = ACCEPT_PAUSE_SECONDS };
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd;

	if (err == EMFILE || err == ENFILE) {
		fd = reserve_accept(evconnlistener_get_fd(evl), &ss, &sslen);
		if (fd >= 0) {
			/* A plain refusal is written and closed at once. */
			listener_take(l, fd, (struct sockaddr *)&ss,
			    (int)sslen, true);
			reserve_take();
			if (reserve_fd >= 0)
				return;
		} else if (fd == -EAGAIN) {
			return;     /* nobody was waiting after all */
		}
	}
	/* Without a reserve, or another error: stop accepting for a moment
	 * rather than spin on a listening socket that stays readable. */
	log_warn("%s listener %s: accept: %s; not accepting for %d s",
	    l->ops->name, l->address, strerror(err), ACCEPT_PAUSE_SECONDS);
	if (l->resume == NULL)
		l->resume = evtimer_new(l->base, listener_resume, l);
	if (l->resume == NULL)
		return;
	evconnlistener_disable(evl);
	evtimer_add(l->resume, &tv);
}

static struct listener *
listener_alloc(struct event_base *base, const struct listener_ops *ops,
    const struct listener_limits *limits, void *ctx)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->base = base;
	l->ops = ops;
	l->limits = *limits;
	l->ctx = ctx;
	TAILQ_INIT(&l->conns);
	reserve_take();
	l->sweep = event_new(base, -1, EV_PERSIST, listener_sweep, l);
	if (l->sweep == NULL) {
		free(l);
		return NULL;
	}
	{
		struct timeval tv = { .tv_sec = CONN_SWEEP_SECONDS };
		event_add(l->sweep, &tv);
	}
	return l;
}

int
listener_new_tcp(struct event_base *base, const char *hostport,
    SSL_CTX *ssl_ctx, const struct listener_ops *ops,
    const struct listener_limits *limits, void *ctx, struct listener **ret_l)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char *host = NULL, *port = NULL;
	struct listener *l;
	int r;

	r = tr_split_hostport(hostport, &host, &port);
	if (r < 0)
		return r;
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	free(host);
	free(port);
	if (r != 0)
		return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;

	l = listener_alloc(base, ops, limits, ctx);
	if (l == NULL) {
		freeaddrinfo(res);
		return -ENOMEM;
	}
	l->ssl_ctx = ssl_ctx;
	l->evl = evconnlistener_new_bind(base, listener_acceptcb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    1024, res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (l->evl == NULL) {
		r = -errno;
		event_free(l->sweep);
		free(l);
		return r ? r : -EADDRINUSE;
	}
	evconnlistener_set_error_cb(l->evl, listener_errorcb);
	if (getsockname(evconnlistener_get_fd(l->evl), (struct sockaddr *)&ss,
	    &sslen) == 0)
		peer_name((struct sockaddr *)&ss, sslen, l->address,
		    sizeof(l->address));
	*ret_l = l;
	return 0;
}

int
listener_unix_socket(const char *path, mode_t mode)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old_umask;
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		/* A socket left by a previous run, or a live daemon? */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
		close(fd);
		if (r == 0)
			return -EADDRINUSE;
		if (unlink(path) < 0)
			return -errno;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Create the socket with its final mode: no window where it is open. */
	old_umask = umask((mode_t)(~mode & 0777));
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_umask);
	if (r < 0 || listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int
listener_new_unix(struct event_base *base, const char *path, mode_t mode,
    const struct listener_ops *ops, const struct listener_limits *limits,
    void *ctx, struct listener **ret_l)
{
	struct listener *l;
	int fd, r;

	fd = listener_unix_socket(path, mode);
	if (fd < 0)
		return fd;
	l = listener_alloc(base, ops, limits, ctx);
	if (l == NULL) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	l->is_unix = true;
	l->unix_path = strdup(path);
	snprintf(l->address, sizeof(l->address), "%s", path);
	l->evl = evconnlistener_new(base, listener_acceptcb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (l->evl == NULL || l->unix_path == NULL) {
		r = l->evl ? -ENOMEM : -errno;
		if (l->evl)
			evconnlistener_free(l->evl);
		else
			close(fd);
		unlink(path);
		free(l->unix_path);
		event_free(l->sweep);
		free(l);
		return r ? r : -ENOMEM;
	}
	evconnlistener_set_error_cb(l->evl, listener_errorcb);
	*ret_l = l;
	return 0;
}

void
listener_shutdown(struct listener *l)
{
	struct conn *c, *tmp;

	if (l == NULL || l->shutting_down)
		return;
	l->shutting_down = true;
	if (l->evl) {
		evconnlistener_free(l->evl);
		l->evl = NULL;
	}
	TAILQ_FOREACH_SAFE(c, &l->conns, entry, tmp)
		conn_close_after_flush(c);
}

struct listener *
listener_free(struct listener *l)
{
	struct conn *c;

	if (l == NULL)
		return NULL;
	if (l->evl)
		evconnlistener_free(l->evl);
	while ((c = TAILQ_FIRST(&l->conns)) != NULL)
		conn_drop_socket(c);
	event_free(l->sweep);
	if (l->resume)
		event_free(l->resume);
	if (l->unix_path) {
		unlink(l->unix_path);
		free(l->unix_path);
	}
	free(l);
	return NULL;
}

void
listener_set_limits(struct listener *l, const struct listener_limits *limits)
{
	struct conn *c;

	l->limits = *limits;
	TAILQ_FOREACH(c, &l->conns, entry)
		if (c->bev && !c->idle_held)
			conn_apply_timeouts(c);
}

const struct listener_limits *
listener_get_limits(const struct listener *l)
{
	return &l->limits;
}

unsigned
listener_conn_count(const struct listener *l)
{
	return l->nconns;
}

const char *
listener_address(const struct listener *l)
{
	return l->address;
}

void *
listener_ctx(const struct listener *l)
{
	return l->ctx;
}
