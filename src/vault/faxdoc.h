/* SPDX-License-Identifier: ISC */
/* faxdoc.h -- the card page: its text, rendered and T.4-encoded in locked
 * memory */
#ifndef TR_VAULT_FAXDOC_H
#define TR_VAULT_FAXDOC_H

/*
 * The card fax page is composed in the vault thread, the only place the
 * card number exists in plaintext (VAULT_OP_FAX_PAGE), and handed to the
 * fax dispatcher as a fax_doc: the page T.4-encoded, one-dimensional and
 * two-dimensional, in locked memory that is excluded from core dumps and
 * wiped when freed. The bitmap it was encoded from lives in locked memory
 * too and is wiped before fax_doc_compose returns. Nothing touches disk.
 *
 * fax_card_lines() is the one definition of the page's text: the vault
 * uses it, and so do tests that render the expected page to compare with
 * the page a fax receiver got.
 */

#include <stddef.h>
#include <stdint.h>

#include "fax/page.h"

/* Longest line of the page's text, NUL included. */
#define FAX_CARD_LINE_LEN 96
/* Most lines the page has. */
#define FAX_CARD_LINES_MAX 32

struct fax_card_fields {
	/* From the daemon: never card data. */
	const char *broker_name;	/* "twinroute" */
	const char *broker_ident;	/* our fax ident (TSI), may be "" */
	int64_t time_unix;		/* the page's date and time, shown UTC */
	const char *provider_id;
	const char *provider_name;
	uint64_t order_id;
	const char *fax_ref;		/* "FX-XXXX-XXXX", as the provider got */
	const char *service_name;
	uint32_t quantity;
	const char *amount;		/* "12.50 EUR", formatted by the caller */
	/* From the vault's card record. */
	const char *holder;
	const char *number;		/* digits */
	unsigned exp_month, exp_year;
};

/*
 * The page's text, one line per row of LINES (caller's memory: locked, as
 * a line holds the card number; wipe it after). Strings longer than a line
 * allows are cut at a character boundary. Returns the number of lines, or
 * -EINVAL (a NULL field, or max too small).
 */
int fax_card_lines(const struct fax_card_fields *f,
    char (*lines)[FAX_CARD_LINE_LEN], size_t max);

/* The encoded page, in locked memory. */
struct fax_doc {
	uint8_t *t4_1d;			/* Modified Huffman, always */
	size_t len_1d;
	uint8_t *t4_2d;			/* Modified READ */
	size_t len_2d;
	int64_t time_unix;		/* as on the page */
};

/*
 * Render and encode the page. Returns 0 and a new doc, or the error of
 * fax_card_lines, fax_page_render (-ENOENT for a missing font, ...),
 * fax_page_encode, or -ENOMEM (no locked memory). Every buffer that held
 * the page is wiped before return, whatever the outcome.
 */
int fax_doc_compose(const struct fax_page_opts *o,
    const struct fax_card_fields *f, struct fax_doc **ret_doc);
/* Wipe and free. NULL-safe. */
void fax_doc_free(struct fax_doc *d);

#endif
