/* SPDX-License-Identifier: ISC */
/* log.h -- leveled logging to stderr or syslog */
#ifndef TR_LOG_H
#define TR_LOG_H

#include "macro.h"

enum log_level {
	LOG_LEVEL_ERR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_target {
	LOG_TARGET_STDERR = 0,
	LOG_TARGET_SYSLOG,
};

/* ident is kept by pointer: pass a string literal or program name.
 * facility: a syslog facility (LOG_DAEMON, LOG_LOCAL0, ...). */
void log_init(const char *ident, enum log_target target, enum log_level level,
    int facility);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Reopen the log destination (SIGHUP). */
void log_reopen(void);
int log_level_from_string(const char *s, enum log_level *ret_level);
const char *log_level_to_string(enum log_level level);

void log_err(const char *fmt, ...) _printf_(1, 2);
void log_warn(const char *fmt, ...) _printf_(1, 2);
void log_info(const char *fmt, ...) _printf_(1, 2);
void log_debug(const char *fmt, ...) _printf_(1, 2);
/* Log and exit(1). fatal appends strerror(errno); fatalx does not. */
_noreturn_ void fatal(const char *fmt, ...) _printf_(1, 2);
_noreturn_ void fatalx(const char *fmt, ...) _printf_(1, 2);

#endif
