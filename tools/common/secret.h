/* SPDX-License-Identifier: ISC */
/* secret.h -- read passwords, shares and card fields without argv */
#ifndef TR_SECRET_H
#define TR_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Read one line into buf (newline removed). From the terminal when
 * standard input is one: prompt on it, echo off unless echo is set. From
 * standard input otherwise, with no prompt. 0; -ENODATA at end of input;
 * -E2BIG for a line that does not fit; -errno. Callers wipe buf.
 */
int secret_read(const char *prompt, bool echo, char *buf, size_t len);
/* Is standard input a terminal (a person typing)? */
bool secret_interactive(void);

#endif
