/* SPDX-License-Identifier: ISC */
/* daemon.h -- what the loop owns: the context every handler reaches */
#ifndef TR_DAEMON_H
#define TR_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"

#define CLIENT_PROTO_VERSION 1
#define CLIENT_PROTO_VERSION_MIN 1

struct store;
struct catalog;
struct listener;
struct vault;
struct worker;
struct mailer;
struct providers;
struct lmtp_listen;
struct fax_dispatcher;
struct metrics;

struct daemon {
	struct event_base *base;
	struct config *cfg;
	struct store *store;
	struct catalog *catalog;
	struct listener *client_l;
	struct listener *control_l;
	struct vault *vault;      /* the sealed card vault's thread */
	struct worker *hasher;    /* scrypt, off the loop */
	struct mailer *mailer;    /* confirmations out, replies in */
	struct lmtp_listen *lmtp; /* where the MTA delivers replies */
	struct listener *provider_l; /* NULL: no provider channel */
	struct providers *providers; /* sessions and dispatch */
	struct fax_dispatcher *fax; /* the card route: fax jobs, modems */
	struct metrics *metrics;  /* NULL: no [metrics] listen */
	struct idem *idem;        /* idempotency keys (client_order.c) */
	struct event *order_upkeep; /* member index, expired keys: 100 ms */
	bool order_upkeep_failing;  /* its last round failed (logged) */
	time_t started;
	uint64_t requests;        /* client and control requests answered */
	bool stopping;
};

/* Client protocol (src/client/client.c). */
extern const struct listener_ops client_listener_ops;
/* Control protocol (src/ctl/ctl_server.c). */
extern const struct listener_ops ctl_listener_ops;

#endif
