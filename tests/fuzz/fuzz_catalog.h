/* SPDX-License-Identifier: ISC */
/* fuzz_catalog.h -- the fuzz targets' catalog: a small store of its own, writes dry */
#ifndef TR_FUZZ_CATALOG_H
#define TR_FUZZ_CATALOG_H

/*
 * A store in a temporary folder, removed as soon as it is open (LMDB
 * keeps its files), with a few providers and services and one member.
 * The catalog then runs dry (catalog_set_dry_run): the requests' writes
 * go through every check and preparation, and change nothing, so every
 * input meets the same catalog. A dry write may leave an empty category
 * behind; the catalog is reloaded from the store now and then so that
 * these do not pile up.
 */

#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "common/macro.h"
#include "fuzz_check.h"
#include "member/member.h"
#include "store/store.h"

/* Reload the catalog after this many inputs. */
#define FZ_CATALOG_RELOAD 4096
/* The member the store has. */
#define FZ_MEMBER "10000001"

struct fz_provider {
	const char *id, *name;
	bool active;
};

struct fz_service {
	const char *id, *provider, *category, *name, *description;
	int64_t minor;
	const char *currency;
	bool active;
};

static const struct fz_provider fz_providers[] = {
	{ "sakura-clean", "Sakura Cleaning Co.", true },
	{ "kanda-translate", "Kanda Translation Office", true },
	{ "closed-shop", "Closed Shop", false },
};

static const struct fz_service fz_services[] = {
	{ "clean-std", "sakura-clean", "cleaning",
	    "Standard apartment cleaning",
	    "Two cleaners, three hours: floors, kitchen, bathroom.", 12000,
	    "JPY", true },
	{ "clean-deep", "sakura-clean", "cleaning", "Deep cleaning",
	    "Ovens, extractor fans and behind the fridge.\nA full day.",
	    38000, "JPY", true },
	{ "clean-off", "sakura-clean", "cleaning", "Window cleaning",
	    "Switched off for the winter.", 5000, "JPY", false },
	{ "tr-doc", "kanda-translate", "translation",
	    "Document translation",
	    "Japanese \xe2\x86\x94 English, per page, certified.", 4500,
	    "JPY", true },
	{ "tr-free", "kanda-translate", "translation", "Quote", "Free quote.",
	    0, "JPY", true },
	{ "tr-huge", "kanda-translate", "translation", "Whole archive",
	    "Every page you have.", INT64_C(1000000000000), "JPY", true },
	{ "closed-svc", "closed-shop", "misc", "Closed shop's service",
	    "Its provider is disabled.", 100, "EUR", true },
};

struct fz_catalog {
	struct store *store;
	struct catalog *cat;
	unsigned long inputs;
};

static struct fz_catalog fz_cat;

static int
fz_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fz_catalog_fill(void)
{
	struct catalog_err err;
	struct store_txn *txn;
	Twinroute__Store__MemberRecord rec;

	for (size_t i = 0; i < ELEMENTSOF(fz_providers); i++) {
		Twinroute__Provider p;
		char email[128];

		twinroute__provider__init(&p);
		snprintf(email, sizeof(email), "orders@%s.example",
		    fz_providers[i].id);
		p.id = unconst(fz_providers[i].id);
		p.name = unconst(fz_providers[i].name);
		p.email = email;
		p.fax = unconst("+81312340001");
		FZ_CHECK(catalog_provider_add(fz_cat.cat, &p, NULL, &err) == 0);
	}
	for (size_t i = 0; i < ELEMENTSOF(fz_services); i++) {
		const struct fz_service *f = &fz_services[i];
		Twinroute__Service s;
		Twinroute__Money m;

		twinroute__service__init(&s);
		twinroute__money__init(&m);
		s.id = unconst(f->id);
		s.provider_id = unconst(f->provider);
		s.category = unconst(f->category);
		s.name = unconst(f->name);
		s.description = unconst(f->description);
		m.minor = f->minor;
		m.currency = unconst(f->currency);
		s.price = &m;
		s.active = true;
		FZ_CHECK(catalog_service_add(fz_cat.cat, &s, NULL, &err) == 0);
		if (!f->active) {
			char *mask[] = { unconst("active") };

			s.active = false;
			FZ_CHECK(catalog_service_update(fz_cat.cat, f->id, &s,
			    mask, 1, NULL, &err) == 0);
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(fz_providers); i++)
		if (!fz_providers[i].active)
			FZ_CHECK(catalog_provider_disable(fz_cat.cat,
			    fz_providers[i].id, NULL, &err) == 0);

	twinroute__store__member_record__init(&rec);
	rec.number = unconst(FZ_MEMBER);
	rec.name = unconst("Hanako Yamada");
	rec.email = unconst("hanako@example.org");
	rec.active = true;
	FZ_CHECK(store_txn_begin(fz_cat.store, 0, &txn) == 0);
	FZ_CHECK(member_put(txn, &rec) == 0);
	FZ_CHECK(store_txn_commit(txn, NULL) == 0);
}

/* The catalog for this input: dry, the same as for every other input. */
static struct catalog *
fz_catalog(void)
{
	if (fz_cat.store == NULL) {
		char dir[] = "/tmp/fuzz_catalog.XXXXXX", path[64];
		struct store_opts opts = { .path = path, .map_size = 8u << 20 };

		FZ_CHECK(mkdtemp(dir) != NULL);
		snprintf(path, sizeof(path), "%s/db", dir);
		FZ_CHECK(store_open(&opts, NULL, &fz_cat.store) == 0);
		FZ_CHECK(catalog_open(fz_cat.store, &fz_cat.cat) == 0);
		fz_catalog_fill();
		/* The open files live on; nothing is left behind. */
		FZ_CHECK(nftw(dir, fz_rm_entry, 8, FTW_DEPTH | FTW_PHYS) == 0);
	} else if (++fz_cat.inputs % FZ_CATALOG_RELOAD == 0) {
		fz_cat.cat = catalog_free(fz_cat.cat);
		FZ_CHECK(catalog_open(fz_cat.store, &fz_cat.cat) == 0);
	}
	catalog_set_dry_run(fz_cat.cat, true);
	return fz_cat.cat;
}

/* Does msg, or a message inside it, hold fields its type does not know? */
static inline bool
fz_has_unknown(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;

	if (msg->n_unknown_fields > 0)
		return true;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		const char *base = (const char *)msg;
		const ProtobufCMessage *const *sub =
		    (const void *)(base + f->offset);
		size_t n = 1;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			const uint32_t *which =
			    (const void *)(base + f->quantifier_offset);

			if (*which != f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(const void *)(base +
			    f->quantifier_offset);
			sub = *(const ProtobufCMessage *const *const *)sub;
		}
		for (size_t j = 0; j < n; j++)
			if (sub[j] != NULL && fz_has_unknown(sub[j]))
				return true;
	}
	return false;
}

/*
 * What every target checks of a decoded message: it packs to exactly the
 * size it reports; and unless it carries unknown fields (which protobuf-c
 * keeps as they came, some it would not read back: a field number 0
 * written in two bytes), the packed bytes decode to a message that packs
 * to the very same bytes.
 */
static inline void
fz_repack(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	ProtobufCMessage *again;
	uint8_t *a, *b;
	size_t na, nb;

	na = protobuf_c_message_get_packed_size(msg);
	a = malloc(na ? na : 1);
	FZ_CHECK(a != NULL);
	FZ_CHECK(protobuf_c_message_pack(msg, a) == na);
	if (fz_has_unknown(msg)) {
		free(a);
		return;
	}
	again = protobuf_c_message_unpack(desc, NULL, na, a);
	FZ_CHECK(again != NULL);
	nb = protobuf_c_message_get_packed_size(again);
	FZ_CHECK(nb == na);
	b = malloc(nb ? nb : 1);
	FZ_CHECK(b != NULL);
	FZ_CHECK(protobuf_c_message_pack(again, b) == nb);
	FZ_CHECK(memcmp(a, b, na) == 0);
	protobuf_c_message_free_unpacked(again, NULL);
	free(a);
	free(b);
}

/* Every service of out[0..n) is visible, listed once, in id order. */
static inline void
fz_check_listing(struct catalog *cat, const Twinroute__Service **out, size_t n,
    bool all)
{
	for (size_t i = 0; i < n; i++) {
		FZ_CHECK(out[i] != NULL && out[i]->id != NULL);
		FZ_CHECK(catalog_service(cat, out[i]->id) == out[i]);
		FZ_CHECK(all || catalog_service_visible(cat, out[i]));
		FZ_CHECK(i == 0 || strcmp(out[i - 1]->id, out[i]->id) < 0);
	}
}

#endif
