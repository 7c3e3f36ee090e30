/* SPDX-License-Identifier: ISC */
/* client.c -- the user protocol: Hello and catalog browsing */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.pb-c.h"
#include "catalog/catalog.h"
#include "client/client_check.h"
#include "common/log.h"
#include "config-build.h"
#include "daemon.h"
#include "net/metrics.h"
#include "net/server.h"
#include "client/session.h"

/* Search hits returned when the client asks for none in particular. */
#define CLIENT_SEARCH_DEFAULT 20

void
client_send_error(struct conn *c, uint64_t id, int code, const char *msg)
{
	Twinroute__Error err = TWINROUTE__ERROR__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;

	metrics_count_error(METRICS_CLIENT, code);
	err.code = (Twinroute__ErrorCode)code;
	err.message = unconst(msg);
	err.index = -1;
	resp.id = id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_ERROR;
	resp.error = &err;
	conn_send(c, &resp.base);
}

void
client_reply(struct conn *c, Response *resp)
{
	struct daemon *d = conn_ctx(c);

	d->requests++;
	if (conn_send(c, &resp->base) < 0)
		conn_close_after_flush(c);
}

static void
client_hello(struct conn *c, const Request *req)
{
	const Twinroute__Client__Hello *h = req->hello;
	struct daemon *d = conn_ctx(c);
	Twinroute__Client__HelloReply hr = TWINROUTE__CLIENT__HELLO_REPLY__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;

	if (h->version < CLIENT_PROTO_VERSION_MIN) {
		char msg[96];
		snprintf(msg, sizeof(msg),
		    "protocol version %" PRIu32 " not supported; this server "
		    "speaks %d to %d", h->version, CLIENT_PROTO_VERSION_MIN,
		    CLIENT_PROTO_VERSION);
		client_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_VERSION,
		    msg);
		return;
	}
	log_debug("%016" PRIx64 " client hello version=%" PRIu32 " client=%.64s",
	    conn_id(c), h->version, h->client);
	hr.version = h->version < CLIENT_PROTO_VERSION ? h->version :
	    CLIENT_PROTO_VERSION;
	hr.server = unconst("twinrouted " TR_VERSION);
	hr.max_frame = listener_get_limits(conn_listener(c))->max_frame;
	resp.id = req->id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_HELLO;
	resp.hello = &hr;
	(void)d;
	client_reply(c, &resp);
}

struct category_acc {
	Twinroute__Client__Category *cats;
	Twinroute__Client__Category **ptrs;
	size_t n, cap;
	int err;
};

static void
category_collect(const char *name, size_t services, void *arg)
{
	struct category_acc *acc = arg;

	if (acc->err)
		return;
	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 16;
		void *p = realloc(acc->cats, cap * sizeof(*acc->cats));
		if (p == NULL) {
			acc->err = -ENOMEM;
			return;
		}
		acc->cats = p;
		acc->cap = cap;
	}
	twinroute__client__category__init(&acc->cats[acc->n]);
	acc->cats[acc->n].name = unconst(name);
	acc->cats[acc->n].services = (uint32_t)services;
	acc->n++;
}

static void
client_list_categories(struct conn *c, const Request *req)
{
	struct daemon *d = conn_ctx(c);
	struct category_acc acc = { 0 };
	Twinroute__Client__CategoryList cl = TWINROUTE__CLIENT__CATEGORY_LIST__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;

	catalog_categories(d->catalog, category_collect, &acc);
	if (acc.err == 0 && acc.n > 0) {
		acc.ptrs = calloc(acc.n, sizeof(*acc.ptrs));
		if (acc.ptrs == NULL)
			acc.err = -ENOMEM;
	}
	if (acc.err) {
		free(acc.cats);
		client_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return;
	}
	for (size_t i = 0; i < acc.n; i++)
		acc.ptrs[i] = &acc.cats[i];
	cl.n_categories = acc.n;
	cl.categories = acc.ptrs;
	resp.id = req->id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_CATEGORIES;
	resp.categories = &cl;
	client_reply(c, &resp);
	free(acc.ptrs);
	free(acc.cats);
}

static void
client_list_services(struct conn *c, const Request *req)
{
	const Twinroute__Client__ListServices *ls = req->list_services;
	struct daemon *d = conn_ctx(c);
	Twinroute__Client__ServiceList sl = TWINROUTE__CLIENT__SERVICE_LIST__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;
	char after[CATALOG_ID_MAX + 1];
	uint8_t token[CLIENT_PAGE_TOKEN_MAX];
	const Twinroute__Service **out;
	size_t n, size;
	bool more = false;

	if (client_page_token_decode(&ls->page_token, after) < 0) {
		client_send_error(c, req->id,
		    TWINROUTE__ERROR_CODE__ERR_BAD_PAGE_TOKEN,
		    "page_token: not a token this server issued");
		return;
	}
	size = ls->page_size ? ls->page_size : d->cfg->client_page_size;
	if (size > d->cfg->client_page_size_max)
		size = d->cfg->client_page_size_max;
	out = calloc(size, sizeof(*out));
	if (out == NULL) {
		client_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return;
	}
	n = catalog_list_services(d->catalog, ls->category,
	    after[0] ? after : NULL, false, NULL, out, size, &more);
	sl.n_services = n;
	sl.services = unconst(out);
	if (more && n > 0) {
		sl.next_page_token.data = token;
		sl.next_page_token.len = client_page_token_encode(out[n - 1]->id,
		    token);
	}
	resp.id = req->id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_SERVICES;
	resp.services = &sl;
	client_reply(c, &resp);
	free(out);
}

static void
client_get_service(struct conn *c, const Request *req)
{
	struct daemon *d = conn_ctx(c);
	Twinroute__Client__ServiceInfo si = TWINROUTE__CLIENT__SERVICE_INFO__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;
	const Twinroute__Service *svc;

	svc = catalog_service(d->catalog, req->get_service->id);
	if (svc == NULL || !catalog_service_visible(d->catalog, svc)) {
		client_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_NOT_FOUND,
		    "no such service");
		return;
	}
	si.service = unconst(svc);
	si.provider = unconst(catalog_provider_public(d->catalog,
	    svc->provider_id));
	resp.id = req->id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_SERVICE;
	resp.service = &si;
	client_reply(c, &resp);
}

static void
client_search(struct conn *c, const Request *req)
{
	const Twinroute__Client__Search *sq = req->search;
	struct daemon *d = conn_ctx(c);
	Twinroute__Client__SearchResult sr = TWINROUTE__CLIENT__SEARCH_RESULT__INIT;
	Response resp = TWINROUTE__CLIENT__RESPONSE__INIT;
	const Twinroute__Service **out;
	size_t limit, n = 0, total = 0;
	int r;

	limit = sq->limit ? sq->limit : CLIENT_SEARCH_DEFAULT;
	if (limit > d->cfg->client_page_size_max)
		limit = d->cfg->client_page_size_max;
	out = calloc(limit, sizeof(*out));
	if (out == NULL) {
		client_send_error(c, req->id, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return;
	}
	r = catalog_search(d->catalog, sq->query, out, limit, &n, &total);
	if (r < 0) {
		free(out);
		client_send_error(c, req->id,
		    r == -EINVAL ? TWINROUTE__ERROR_CODE__ERR_BAD_REQUEST :
		    TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    r == -EINVAL ? "query: needs 1 to 16 words" :
		    "search failed");
		return;
	}
	sr.n_services = n;
	sr.services = unconst(out);
	sr.total = (uint32_t)total;
	resp.id = req->id;
	resp.body_case = TWINROUTE__CLIENT__RESPONSE__BODY_SEARCH;
	resp.search = &sr;
	client_reply(c, &resp);
	free(out);
}

static int
client_dispatch(struct conn *c, const Request *req)
{
	switch (req->body_case) {
	case TWINROUTE__CLIENT__REQUEST__BODY_HELLO:
		client_hello(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_LIST_CATEGORIES:
		client_list_categories(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_LIST_SERVICES:
		client_list_services(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_GET_SERVICE:
		client_get_service(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_SEARCH:
		client_search(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_LOGIN:
		client_login(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_PLACE_ORDER:
		client_place_order(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_GET_ORDER:
		client_get_order(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_LIST_ORDERS:
		client_list_orders(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_CANCEL_ORDER:
		client_cancel_order(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY_WATCH:
		client_watch(c, req);
		return 0;
	case TWINROUTE__CLIENT__REQUEST__BODY__NOT_SET:
		/* A newer client's request, or none at all: say so, go on. */
		client_send_error(c, req->id,
		    TWINROUTE__ERROR_CODE__ERR_UNSUPPORTED,
		    "request type not supported by this server");
		return 0;
	case _TWINROUTE__CLIENT__REQUEST__BODY__CASE_IS_INT_SIZE:
		break;
	}
	fatalx("client: unexpected request body case %d", (int)req->body_case);
}

static int
client_on_frame(struct conn *c, const uint8_t *payload, uint32_t len)
{
	struct daemon *d = conn_ctx(c);
	Request *req;
	int r;

	req = twinroute__client__request__unpack(NULL, len, payload);
	if (req == NULL) {
		log_info("%016" PRIx64 " client peer=%s sent a frame that is not "
		    "a Request (%" PRIu32 " bytes), closing", conn_id(c),
		    conn_peer_name(c), len);
		client_send_error(c, 0, TWINROUTE__ERROR_CODE__ERR_BAD_FRAME,
		    "frame does not decode as a Request");
		return -1;
	}
	if (d->stopping) {
		client_send_error(c, req->id,
		    TWINROUTE__ERROR_CODE__ERR_SHUTTING_DOWN,
		    "server is shutting down");
		r = -1;
	} else {
		r = client_dispatch(c, req);
	}
	twinroute__client__request__free_unpacked(req, NULL);
	return r;
}

static int
client_on_accept(struct conn *c)
{
	struct client_session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		client_send_error(c, 0, TWINROUTE__ERROR_CODE__ERR_INTERNAL,
		    "out of memory");
		return -1;
	}
	conn_set_data(c, s);
	return 0;
}

static void
client_on_close(struct conn *c)
{
	struct client_session *s = conn_data(c);

	if (s == NULL)
		return;
	client_watch_drop(c);
	conn_set_data(c, NULL);
	free(s);
}

const struct listener_ops client_listener_ops = {
	.name = "client",
	.on_accept = client_on_accept,
	.on_frame = client_on_frame,
	.send_error = client_send_error,
	.on_close = client_on_close,
};
