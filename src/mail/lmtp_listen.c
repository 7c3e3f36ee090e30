/* SPDX-License-Identifier: ISC */
/* lmtp_listen.c -- the LMTP listeners: sockets and connections on the loop */

/*
 * The site's MTA delivers replies here: a Unix socket (mode 0666: put it
 * where only the MTA can reach it, e.g. under Postfix's private/) and,
 * optionally, a loopback TCP port. Each connection runs one lmtp_session
 * (lmtp.h) over a bufferevent; deliveries go to the mailer, whose answer
 * may come after a sync. A connection closed while its delivery is being
 * decided is kept until the answer comes, then freed.
 *
 * Bounds: a connection is not read while its delivery is being decided,
 * nor while more than LMTP_OUTPUT_MAX bytes of replies wait for a peer
 * that does not read them (the write timeout then drops it); one that
 * completes no command for idle_timeout is closed, however many bytes it
 * trickles in.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "common/errcode.h"
#include "common/log.h"
#include "config.h"
#include "daemon.h"
#include "mail/lmtp.h"
#include "mail/mailer.h"
#include "net/server.h"

#define LMTP_OUTPUT_MAX (64 * 1024)

static const char lmtp_busy[] =
    "421 4.3.2 too many connections: try again later\r\n";

struct lmtp_listen;

struct lmtp_conn {
	LIST_ENTRY(lmtp_conn) link;
	struct lmtp_listen *l;
	struct bufferevent *bev;
	struct lmtp_session *sess;
	bool closing;                /* flush, then free */
	bool delivering;             /* the mailer has our envelope */
	bool dead;                   /* the peer is gone: free on answer */
	bool out_paused;             /* replies over LMTP_OUTPUT_MAX */
	bool in_engine;              /* feeding or answering the session */
	time_t last_progress;        /* the last reply: a command done */
};

struct lmtp_listen {
	struct daemon *d;
	struct mailer *m;
	struct evconnlistener *unix_l, *tcp_l;
	struct event *sweep;         /* idle connections, paused accepts */
	bool accept_paused;
	char *unix_path;
	char address[CONFIG_SOCKET_PATH_MAX + 64];
	LIST_HEAD(, lmtp_conn) conns;
	unsigned n_conns;
	struct lmtp_limits limits;
};

/* A connection whose listener is gone (a delivery was pending). */
static void
lconn_free_zombie(struct lmtp_conn *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	lmtp_session_free(c->sess);
	free(c);
}

static void
lconn_free(struct lmtp_conn *c)
{
	if (c->delivering) {
		/* The mailer answers later: free then. */
		c->dead = true;
		if (c->bev) {
			bufferevent_free(c->bev);
			c->bev = NULL;
		}
		return;
	}
	LIST_REMOVE(c, link);
	c->l->n_conns--;
	lconn_free_zombie(c);
}

static time_t
lconn_now(const struct lmtp_conn *c)
{
	struct timeval tv;

	event_base_gettimeofday_cached(c->l->d->base, &tv);
	return tv.tv_sec;
}

static void
lconn_output(void *arg, const char *buf, size_t len)
{
	struct lmtp_conn *c = arg;

	if (c->bev && evbuffer_add(bufferevent_get_output(c->bev), buf,
	    len) < 0)
		c->closing = true;
	if (c->l)
		c->last_progress = lconn_now(c);
}

/* Read only while no delivery is pending and the peer takes its replies. */
static bool
lconn_update_reading(struct lmtp_conn *c)
{
	size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
	bool was = c->out_paused;

	c->out_paused = out > (was ? LMTP_OUTPUT_MAX / 2 : LMTP_OUTPUT_MAX);
	if (was && !c->out_paused)
		c->last_progress = lconn_now(c);
	if (!c->closing && !c->delivering && !c->out_paused) {
		bufferevent_enable(c->bev, EV_READ);
		return true;
	}
	bufferevent_disable(c->bev, EV_READ);
	return false;
}

static int
lconn_rcpt(void *arg, const char *addr, char *reply, size_t reply_size)
{
	struct lmtp_conn *c = arg;

	return mailer_lmtp_rcpt(c->l->m, addr, reply, reply_size);
}

static void lconn_after(struct lmtp_conn *c, int r);
static void lconn_read(struct bufferevent *bev, void *arg);

static void
lconn_answered(void *arg, const char *const *replies, size_t n)
{
	struct lmtp_conn *c = arg;
	bool nested;
	int r;

	c->delivering = false;
	if (c->dead) {
		if (c->l)
			lconn_free(c);
		else
			lconn_free_zombie(c);
		return;
	}
	nested = c->in_engine;
	c->in_engine = true;
	r = lmtp_session_deliver_done(c->sess, replies, n);
	c->in_engine = nested;
	if (r != 0)
		c->closing = true;
	if (nested)
		return;         /* answered at once: the caller goes on */
	/* Commands pipelined behind the message wait in the input. */
	if (lconn_update_reading(c) &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
		lconn_read(c->bev, c);
		return;
	}
	lconn_after(c, r);
}

static void
lconn_deliver(void *arg, const struct lmtp_envelope *env)
{
	struct lmtp_conn *c = arg;

	c->delivering = true;
	bufferevent_disable(c->bev, EV_READ);
	if (mailer_lmtp_deliver(c->l->m, env, lconn_answered, c) < 0) {
		c->delivering = false;
		lconn_output(c, "421 4.3.0 out of memory\r\n", 25);
		c->closing = true;
	}
}

/* After feeding or answering: close when the session says so. */
static void
lconn_after(struct lmtp_conn *c, int r)
{
	if (r != 0)
		c->closing = true;
	if (c->closing && !c->delivering &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		lconn_free(c);
}

static void
lconn_read(struct bufferevent *bev, void *arg)
{
	struct lmtp_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int r = 0;

	c->in_engine = true;
	while (!c->closing && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		r = lmtp_session_feed(c->sess, v.iov_base, v.iov_len);
		evbuffer_drain(in, v.iov_len);
		if (r != 0 || !lconn_update_reading(c))
			break;
	}
	c->in_engine = false;
	if (c->closing)
		evbuffer_drain(in, evbuffer_get_length(in));
	lconn_after(c, r);
}

/* The output drained to LMTP_OUTPUT_MAX / 2 or below. */
static void
lconn_write(struct bufferevent *bev, void *arg)
{
	struct lmtp_conn *c = arg;

	if (c->out_paused && lconn_update_reading(c) &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		lconn_read(bev, c);
		return;
	}
	lconn_after(c, 0);
}

static void
lconn_event(struct bufferevent *bev, short what, void *arg)
{
	struct lmtp_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		log_info("lmtp: connection idle too long: closed");
	lconn_free(c);
}

static void
lmtp_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct lmtp_listen *l = arg;
	struct lmtp_callbacks cb = { .output = lconn_output,
		.rcpt = lconn_rcpt, .deliver = lconn_deliver };
	struct timeval idle = { .tv_sec = l->d->cfg->lmtp_idle_timeout };
	struct lmtp_conn *c;

	(void)evl;
	(void)sa;
	(void)salen;
	if (l->n_conns >= l->d->cfg->lmtp_max_connections || l->d->stopping) {
		if (write(fd, lmtp_busy, sizeof(lmtp_busy) - 1) < 0) {
			/* closing anyway */
		}
		close(fd);
		log_warn("lmtp: connection refused: %u open (lmtp.max_"
		    "connections)", l->n_conns);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->l = l;
	cb.arg = c;
	c->bev = bufferevent_socket_new(l->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->sess = lmtp_session_new(&l->limits, l->d->cfg->mail_domain, &cb);
	if (!c->bev || !c->sess) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		lmtp_session_free(c->sess);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&l->conns, c, link);
	l->n_conns++;
	c->last_progress = lconn_now(c);
	bufferevent_setcb(c->bev, lconn_read, lconn_write, lconn_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, LMTP_OUTPUT_MAX / 2, 0);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	lmtp_session_start(c->sess);
}

/* accept() failed: out of descriptors, refuse one waiting MTA with the
 * reserve (net/server.h); else stop accepting until the next sweep. */
static void
lmtp_accept_error(struct evconnlistener *evl, void *arg)
{
	struct lmtp_listen *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	int r;

	if (err == EMFILE || err == ENFILE) {
		r = listener_refuse_reserved(evconnlistener_get_fd(evl),
		    lmtp_busy, sizeof(lmtp_busy) - 1);
		if (r == 0 || r == -EAGAIN) {
			if (r == 0)
				log_warn("lmtp: connection refused: out of "
				    "file descriptors (RLIMIT_NOFILE)");
			return;
		}
	}
	log_warn("lmtp: accept: %s; not accepting for a second",
	    strerror(err));
	evconnlistener_disable(evl);
	l->accept_paused = true;
}

/* Once a second: close connections that completed no command for the
 * idle timeout; accept again after a pause. */
static void
lmtp_sweep(evutil_socket_t fd, short what, void *arg)
{
	static const char bye[] = "421 4.4.2 idle too long: closing\r\n";
	struct lmtp_listen *l = arg;
	struct lmtp_conn *c, *next;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (l->accept_paused) {
		l->accept_paused = false;
		if (l->unix_l)
			evconnlistener_enable(l->unix_l);
		if (l->tcp_l)
			evconnlistener_enable(l->tcp_l);
	}
	event_base_gettimeofday_cached(l->d->base, &tv);
	for (c = LIST_FIRST(&l->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, link);
		if (c->delivering || c->closing || c->out_paused ||
		    tv.tv_sec - c->last_progress <
		    (time_t)l->d->cfg->lmtp_idle_timeout)
			continue;
		log_info("lmtp: no command completed in %u s: closed",
		    l->d->cfg->lmtp_idle_timeout);
		/* Best effort, and only where it cannot cut a reply. */
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
		    write(bufferevent_getfd(c->bev), bye, sizeof(bye) - 1) < 0)
			log_debug("lmtp: %s", strerror(errno));
		lconn_free(c);
	}
}

int
lmtp_listen_open(struct daemon *d, struct mailer *m, struct lmtp_listen **ret)
{
	const struct timeval sweep_every = { .tv_sec = 1 };
	struct config *cfg = d->cfg;
	struct lmtp_listen *l;
	int fd;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->d = d;
	l->m = m;
	LIST_INIT(&l->conns);
	l->limits = (struct lmtp_limits){ .max_message = cfg->lmtp_max_message,
		.max_line = cfg->lmtp_max_line,
		.max_rcpts = cfg->lmtp_max_recipients };
	fd = listener_unix_socket(cfg->lmtp_socket, 0666);
	if (fd < 0) {
		free(l);
		return fd;
	}
	l->unix_path = strdup(cfg->lmtp_socket);
	l->unix_l = evconnlistener_new(d->base, lmtp_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (!l->unix_l || !l->unix_path) {
		if (!l->unix_l)
			close(fd);
		lmtp_listen_free(l);
		return -ENOMEM;
	}
	evconnlistener_set_error_cb(l->unix_l, lmtp_accept_error);
	snprintf(l->address, sizeof(l->address), "%s", cfg->lmtp_socket);
	if (*cfg->lmtp_listen) {
		char host[CONFIG_HOST_MAX];
		uint16_t port;
		struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC,
			.ai_socktype = SOCK_STREAM,
			.ai_flags = EVUTIL_AI_NUMERICSERV };
		struct evutil_addrinfo *res = NULL;
		char portstr[8];

		config_split_hostport(cfg->lmtp_listen, host, &port);
		snprintf(portstr, sizeof(portstr), "%u", port);
		if (evutil_getaddrinfo(host, portstr, &hints, &res) != 0) {
			lmtp_listen_free(l);
			return -EADDRNOTAVAIL;
		}
		l->tcp_l = evconnlistener_new_bind(d->base, lmtp_accept, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC, 64, res->ai_addr,
		    (int)res->ai_addrlen);
		evutil_freeaddrinfo(res);
		if (!l->tcp_l) {
			int r = errno ? -errno : -EADDRINUSE;

			lmtp_listen_free(l);
			return r;
		}
		evconnlistener_set_error_cb(l->tcp_l, lmtp_accept_error);
		snprintf(l->address, sizeof(l->address), "%s and %s",
		    cfg->lmtp_socket, cfg->lmtp_listen);
	}
	l->sweep = event_new(d->base, -1, EV_PERSIST, lmtp_sweep, l);
	if (!l->sweep || event_add(l->sweep, &sweep_every) < 0) {
		lmtp_listen_free(l);
		return -ENOMEM;
	}
	*ret = l;
	return 0;
}

void
lmtp_listen_free(struct lmtp_listen *l)
{
	struct lmtp_conn *c;

	if (!l)
		return;
	if (l->sweep)
		event_free(l->sweep);
	if (l->unix_l)
		evconnlistener_free(l->unix_l);
	if (l->tcp_l)
		evconnlistener_free(l->tcp_l);
	while ((c = LIST_FIRST(&l->conns))) {
		if (c->delivering) {
			/* Its answer comes (at the latest when the store
			 * closes and runs its waiters) and frees it. */
			LIST_REMOVE(c, link);
			c->l = NULL;
			c->dead = true;
			if (c->bev) {
				bufferevent_free(c->bev);
				c->bev = NULL;
			}
			continue;
		}
		lconn_free(c);
	}
	if (l->unix_path) {
		unlink(l->unix_path);
		free(l->unix_path);
	}
	free(l);
}

const char *
lmtp_listen_address(const struct lmtp_listen *l)
{
	return l->address;
}

unsigned
lmtp_listen_conn_count(const struct lmtp_listen *l)
{
	return l ? l->n_conns : 0;
}
