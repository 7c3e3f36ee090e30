/* SPDX-License-Identifier: ISC */
/* catalog_import.h -- JSON Lines catalog files read into control CatalogItems */
#ifndef TR_CATALOG_IMPORT_H
#define TR_CATALOG_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "control.pb-c.h"
#include "ctl/ctl.h"

/*
 * One object per line (blank lines allowed):
 *   {"type":"provider","id":..,"name":..,"email":..,"fax":..,"active":true}
 *   {"type":"service","id":..,"provider":..,"category":..,"name":..,
 *    "description":..,"price":MINOR_UNITS,"currency":..,"active":true}
 * Keys and types are checked here; the values are the daemon's to check.
 * Used by twinroutectl catalog import and tests/fuzz/fuzz_catalog_import.c.
 */

/* Files are read whole; past this they cannot fit in one frame. */
#define IMPORT_FILE_MAX (4 * (size_t)CTL_FRAME_MAX)
/* Room for a message: the file name, the line, the reason. */
#define IMPORT_ERR_MAX 512

/* One line, ready to send: item points at provider or service. */
struct import_item {
	unsigned long line;
	bool is_provider;
	Twinroute__Ctl__CatalogItem item;
	Twinroute__Provider provider;
	Twinroute__Service service;
	Twinroute__Money price;
};

struct import {
	const char *file;         /* as shown in messages */
	struct import_item **v;
	Twinroute__Ctl__CatalogItem **items; /* import_items() */
	size_t n, cap;
	uint32_t providers, services;
	json_tokener *tok;
	char err[IMPORT_ERR_MAX]; /* why the last call failed */
};

/* Start reading file (its name, for messages). 0 or -ENOMEM. */
int import_init(struct import *im, const char *file);
void import_free(struct import *im);

/*
 * Parse one line (len bytes, no newline) numbered line and append its
 * item. 0 (a blank line adds none); -EINVAL with im->err ("FILE:LINE:
 * why"); -ENOMEM.
 */
int import_line(struct import *im, unsigned long line, const char *buf,
    size_t len);

/*
 * Read a whole file, line by line. 0; -EINVAL for a bad line and -EFBIG
 * for a file over IMPORT_FILE_MAX (im->err says which), -EIO for a read
 * error (errno), -ENOMEM.
 */
int import_read(struct import *im, FILE *f);

/* The items read so far as an array for CtlRequest.items (im->items,
 * im->n of them). 0 or -ENOMEM. */
int import_items(struct import *im);

#endif
