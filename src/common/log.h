/* SPDX-License-Identifier: ISC */
/* log.h -- leveled logging to stderr, syslog or a file, as text or JSON */
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
	LOG_TARGET_FILE,	/* log_set_file(): appended, reopened on SIGHUP */
};

/*
 * text: "2026-01-02T03:04:05.678Z ident[info] message", one line each.
 * json: one object a line, {"time":"2026-01-02T03:04:05.678Z",
 * "level":"info","program":"ident","msg":"message"}, plus "id" when the
 * message begins with a 16-digit hexadecimal session or order id. Both go
 * to stderr or the file; syslog always gets the plain message, since it
 * carries the time, priority and program itself.
 */
enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

/* ident is kept by pointer: pass a string literal or program name.
 * facility: a syslog facility (LOG_DAEMON, LOG_LOCAL0, ...). */
void log_init(const char *ident, enum log_target target, enum log_level level,
    int facility);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format format);
/* Append lines to path (created mode 0640, less the umask) from now on:
 * the target becomes LOG_TARGET_FILE. 0, or -errno and nothing changes. */
int log_set_file(const char *path);
/* Reopen the log destination (SIGHUP): the file by its name again, so a
 * renamed file is left to logrotate. 0, or -errno and the lines keep going
 * to the file open before. */
int log_reopen(void);
int log_level_from_string(const char *s, enum log_level *ret_level);
const char *log_level_to_string(enum log_level level);
int log_format_from_string(const char *s, enum log_format *ret_format);

void log_err(const char *fmt, ...) _printf_(1, 2);
void log_warn(const char *fmt, ...) _printf_(1, 2);
void log_info(const char *fmt, ...) _printf_(1, 2);
void log_debug(const char *fmt, ...) _printf_(1, 2);
/* Log and exit(1). fatal appends strerror(errno); fatalx does not. */
_noreturn_ void fatal(const char *fmt, ...) _printf_(1, 2);
_noreturn_ void fatalx(const char *fmt, ...) _printf_(1, 2);

#endif
