/* SPDX-License-Identifier: ISC */
/* tmpdir.h -- unit tests' scratch directories: made new, removed whole */
#ifndef TR_TESTS_TMPDIR_H
#define TR_TESTS_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Make a new directory /tmp/test_NAME.XXXXXX into DIR (SIZE bytes). 0 or
 * -1. */
static int
tmpdir_make(char *dir, size_t size, const char *name)
{
	snprintf(dir, size, "/tmp/test_%s.XXXXXX", name);
	return mkdtemp(dir) ? 0 : -1;
}

static int
tmpdir_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove DIR and all it holds. 0 or -1. */
static int
tmpdir_remove(const char *dir)
{
	return nftw(dir, tmpdir_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
