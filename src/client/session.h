/* SPDX-License-Identifier: ISC */
/* session.h -- a client connection's session: who logged in, what it watches */
#ifndef TR_SESSION_H
#define TR_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "client.pb-c.h"
#include "member/member.h"
#include "net/server.h"

typedef Twinroute__Client__Request Request;
typedef Twinroute__Client__Response Response;

/* Per connection, in conn_data(); created at accept, freed at close. */
struct client_session {
	bool logged_in;
	char member[MEMBER_NUMBER_MAX + 1];  /* when logged_in */
	bool login_pending;                  /* a Login is being verified */
	bool watching;                       /* in the member's watch list */
	void *watch_link;                    /* owned by client_order.c */
};

static inline struct client_session *
client_session(struct conn *c)
{
	return conn_data(c);
}

/* The member logged in on c, or NULL. */
static inline const char *
client_session_member(struct conn *c)
{
	struct client_session *s = conn_data(c);

	return s && s->logged_in ? s->member : NULL;
}

/* Shared by the handlers (client.c). */
void client_send_error(struct conn *c, uint64_t id, int code, const char *msg);
void client_reply(struct conn *c, Response *resp);

/* Login (client_login.c): verification runs on the hasher thread. */
void client_login(struct conn *c, const Request *req);

/* Orders (client_order.c). */
void client_place_order(struct conn *c, const Request *req);
void client_get_order(struct conn *c, const Request *req);
void client_list_orders(struct conn *c, const Request *req);
void client_cancel_order(struct conn *c, const Request *req);
void client_watch(struct conn *c, const Request *req);
/* The connection goes away: leave any watch list. */
void client_watch_drop(struct conn *c);

struct daemon;
/*
 * Order o moved from `from` in the write committed as seq: once seq is
 * durable, push an OrderEvent (o without its history) to every connection
 * watching o's member. Every transition anywhere calls this.
 */
void client_order_changed(struct daemon *d, uint64_t seq,
    const Twinroute__Order *o, Twinroute__OrderState from, const char *cause);
/* Only the event to the watchers (the fax track's changes, which start
 * nothing else). */
void client_order_notify(struct daemon *d, uint64_t seq,
    const Twinroute__Order *o, Twinroute__OrderState from, const char *cause);
/* After start: ask the vault again about every order left RECEIVED. */
void client_order_recover(struct daemon *d);
/* The idempotency index and the member index's catch-up, at start (after
 * the store opens, before clients); its upkeep timer. 0 or -errno, logged.
 * Close after the listeners, before the store. */
int client_order_open(struct daemon *d);
void client_order_close(struct daemon *d);

#endif
