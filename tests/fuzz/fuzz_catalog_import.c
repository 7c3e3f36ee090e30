/* SPDX-License-Identifier: ISC */
/* fuzz_catalog_import.c -- libFuzzer target: twinroutectl's JSON Lines catalog files */

/*
 * The input is an import file. It is read twice: through a stream, as
 * twinroutectl reads it, and line by line straight from the input (lines
 * not NUL-terminated, so a read past a line's end shows). Both must
 * agree: the same items, or the same message naming the same line. What
 * reads is checked (every item a provider or a service with every string
 * set and no NUL inside, the counts adding up, the request packing) and
 * then imported into a small catalog, dry, as the daemon would.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/common/catalog_import.h"
#include "common/errcode.h"
#include "fuzz_catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

/*
 * json-c allocates for every object and key: with ASan's default 256 MiB
 * quarantine each input lands on fresh pages, and page faults took most
 * of the time. 32 MiB still holds what thousands of inputs freed.
 */
const char *
__asan_default_options(void)
{
	return "quarantine_size_mb=32";
}

#define FZ_FILE "import.jsonl"

static void
fz_check_str(const char *s)
{
	FZ_CHECK(s != NULL);
	(void)strlen(s);
}

static void
fz_check_items(struct import *im)
{
	Twinroute__Ctl__CtlRequest req;
	uint32_t np = 0, ns = 0;
	size_t packed;
	uint8_t *buf;

	twinroute__ctl__ctl_request__init(&req);
	FZ_CHECK(import_items(im) == 0);
	for (size_t i = 0; i < im->n; i++) {
		const struct import_item *it = im->v[i];

		FZ_CHECK(im->items[i] == &it->item);
		FZ_CHECK(i == 0 || it->line > im->v[i - 1]->line);
		if (it->is_provider) {
			np++;
			FZ_CHECK(it->item.item_case ==
			    TWINROUTE__CTL__CATALOG_ITEM__ITEM_PROVIDER);
			FZ_CHECK(it->item.provider == &it->provider);
			fz_check_str(it->provider.id);
			fz_check_str(it->provider.name);
			fz_check_str(it->provider.email);
			fz_check_str(it->provider.fax);
		} else {
			ns++;
			FZ_CHECK(it->item.item_case ==
			    TWINROUTE__CTL__CATALOG_ITEM__ITEM_SERVICE);
			FZ_CHECK(it->item.service == &it->service);
			FZ_CHECK(it->service.price == &it->price);
			FZ_CHECK(it->price.minor >= 0);
			fz_check_str(it->service.id);
			fz_check_str(it->service.provider_id);
			fz_check_str(it->service.category);
			fz_check_str(it->service.name);
			fz_check_str(it->service.description);
			fz_check_str(it->price.currency);
		}
	}
	FZ_CHECK(np == im->providers && ns == im->services);
	req.version = CTL_PROTO_VERSION;
	req.command = CTL_CATALOG_IMPORT;
	req.n_items = im->n;
	req.items = im->items;
	packed = twinroute__ctl__ctl_request__get_packed_size(&req);
	buf = malloc(packed);
	FZ_CHECK(buf != NULL);
	FZ_CHECK(twinroute__ctl__ctl_request__pack(&req, buf) == packed);
	free(buf);
}

/* What the daemon does with the items: a dry import. */
static void
fz_import(struct catalog *cat, const struct import *im)
{
	struct catalog_err err = { .index = -1 };
	struct catalog_item *items;
	size_t np = 0, ns = 0;
	uint64_t seq = 1;
	int r;

	items = calloc(im->n ? im->n : 1, sizeof(*items));
	FZ_CHECK(items != NULL);
	for (size_t i = 0; i < im->n; i++) {
		if (im->v[i]->is_provider)
			items[i].provider = &im->v[i]->provider;
		else
			items[i].service = &im->v[i]->service;
	}
	r = catalog_import(cat, items, im->n, &np, &ns, &seq, &err);
	free(items);
	if (r == 0) {
		/* Dry: nothing committed (nothing to write: the seq of what
		 * is written already). */
		FZ_CHECK(seq == 0 || im->n == 0);
		FZ_CHECK(np == im->providers && ns == im->services);
	} else {
		FZ_CHECK(r == -TR_EINVAL_FIELD || r == -ENOENT);
		FZ_CHECK(err.msg[0] != '\0');
		FZ_CHECK(err.index >= 0 && (size_t)err.index < im->n);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog *cat;
	struct import a, b;
	const char *in = (const char *)data;
	unsigned long line = 0;
	size_t off = 0;
	FILE *f;
	int ra, rb = 0;

	if (size == 0)
		return 0;
	cat = fz_catalog();
	/* Through a stream, as twinroutectl reads a file. */
	FZ_CHECK(import_init(&a, FZ_FILE) == 0);
	f = fmemopen(unconst(data), size, "r");
	FZ_CHECK(f != NULL);
	ra = import_read(&a, f);
	fclose(f);

	/* Line by line, straight from the input. */
	FZ_CHECK(import_init(&b, FZ_FILE) == 0);
	while (off < size && rb == 0) {
		const char *nl = memchr(in + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (in + off)) : size - off;

		rb = import_line(&b, ++line, in + off, len);
		off += len + (nl != NULL);
	}

	FZ_CHECK(ra == rb);
	FZ_CHECK(a.n == b.n && a.providers == b.providers &&
	    a.services == b.services);
	if (ra < 0) {
		FZ_CHECK(ra == -EINVAL);
		FZ_CHECK(strcmp(a.err, b.err) == 0);
		FZ_CHECK(strncmp(a.err, FZ_FILE ":", strlen(FZ_FILE ":")) == 0);
	} else {
		fz_check_items(&a);
		fz_import(cat, &a);
	}
	import_free(&a);
	import_free(&b);
	return 0;
}
