/* SPDX-License-Identifier: ISC */
/* log.c -- leveled logging to stderr, syslog or a file, as text or JSON */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/*
 * Several threads log (the loop, the vault, the mail, sync and worker
 * threads): each line is composed in a buffer on the caller's stack and
 * written with one write(2), so lines never interleave. The settings are
 * made before the threads start, except the level (SIGHUP; an atomic
 * word) and the file, which log_reopen() replaces with dup3(2) onto the
 * same descriptor number: a writer sees the old file or the new one.
 */

/* One message, before escaping; longer ones are cut. */
#define LOG_MSG_MAX 2048
/* One line: a JSON escape takes at most 6 bytes for each byte. */
#define LOG_LINE_MAX (6 * LOG_MSG_MAX + 512)

static const char *log_ident = "twinroute";
static enum log_target log_target = LOG_TARGET_STDERR;
static enum log_format log_format = LOG_FORMAT_TEXT;
static int log_level = LOG_LEVEL_INFO; /* __atomic: SIGHUP changes it */
static int log_facility = LOG_DAEMON;
static int log_fd = -1;                  /* LOG_TARGET_FILE's file */
static char log_path[PATH_MAX];

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "err",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const int level_prio[] = {
	[LOG_LEVEL_ERR] = LOG_ERR,
	[LOG_LEVEL_WARN] = LOG_WARNING,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

static const char *const format_names[] = {
	[LOG_FORMAT_TEXT] = "text",
	[LOG_FORMAT_JSON] = "json",
};

void
log_init(const char *ident, enum log_target target, enum log_level level,
    int facility)
{
	log_ident = ident;
	log_target = target;
	log_set_level(level);
	log_facility = facility;
	if (target == LOG_TARGET_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(enum log_level level)
{
	__atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void
log_set_format(enum log_format format)
{
	log_format = format;
}

static int
log_open_file(const char *path)
{
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	    0640);
	if (fd < 0)
		return -errno;
	if (log_fd < 0) {
		log_fd = fd;
		return 0;
	}
	/* The descriptor number stays: threads writing meanwhile reach the
	 * old file or the new one, never a closed or reused descriptor. */
	if (dup3(fd, log_fd, O_CLOEXEC) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	close(fd);
	return 0;
}

int
log_set_file(const char *path)
{
	int r;

	if (strlen(path) >= sizeof(log_path))
		return -ENAMETOOLONG;
	r = log_open_file(path);
	if (r < 0)
		return r;
	memcpy(log_path, path, strlen(path) + 1);
	if (log_target == LOG_TARGET_SYSLOG)
		closelog();
	log_target = LOG_TARGET_FILE;
	return 0;
}

int
log_reopen(void)
{
	switch (log_target) {
	case LOG_TARGET_SYSLOG:
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, log_facility);
		return 0;
	case LOG_TARGET_FILE:
		return log_path[0] != '\0' ? log_open_file(log_path) : 0;
	case LOG_TARGET_STDERR:
		return 0;
	}
	return 0;
}

int
log_level_from_string(const char *s, enum log_level *ret_level)
{
	for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*ret_level = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

const char *
log_level_to_string(enum log_level level)
{
	if ((size_t)level < ELEMENTSOF(level_names))
		return level_names[level];
	return "?";
}

int
log_format_from_string(const char *s, enum log_format *ret_format)
{
	for (size_t i = 0; i < ELEMENTSOF(format_names); i++)
		if (strcmp(s, format_names[i]) == 0) {
			*ret_format = (enum log_format)i;
			return 0;
		}
	return -EINVAL;
}

/* The length of the well-formed UTF-8 sequence (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF) at s, or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp, min;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Append s as the inside of a JSON string to out[*pos..size): quotes,
 * backslashes and control characters escaped, each malformed UTF-8 byte
 * replaced by U+FFFD. Stops before an escape that would not fit. */
static void
json_escape(char *out, size_t size, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = *pos;

	while (n > 0) {
		size_t len = utf8_len(p, n);
		char esc[8];
		const char *put;
		size_t put_len;

		if (len == 0) {
			put = "\\ufffd", put_len = 6, len = 1;
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\', esc[1] = (char)*p;
			put = esc, put_len = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*p >> 4], esc[5] = hex[*p & 0xf];
			put = esc, put_len = 6;
		} else {
			put = (const char *)p, put_len = len;
		}
		if (put_len > size - i)
			break;
		memcpy(out + i, put, put_len);
		i += put_len;
		p += len;
		n -= len;
	}
	*pos = i;
}

static void
put_str(char *out, size_t size, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (n > size - *pos)
		n = size - *pos;
	memcpy(out + *pos, s, n);
	*pos += n;
}

/* Sessions and orders begin their lines with their id, "%016" PRIx64. */
static bool
log_leading_id(const char *msg)
{
	for (int i = 0; i < 16; i++)
		if (!((msg[i] >= '0' && msg[i] <= '9') ||
		    (msg[i] >= 'a' && msg[i] <= 'f')))
			return false;
	return msg[16] == ' ';
}

static size_t
log_format_json(char *line, size_t size, const char *when,
    enum log_level level, const char *msg)
{
	/* The members after "msg" and the end: room kept for them. */
	const size_t tail = sizeof(",\"id\":\"0123456789abcdef\"}\n");
	size_t pos = 0;

	put_str(line, size, &pos, "{\"time\":\"");
	put_str(line, size, &pos, when);
	put_str(line, size, &pos, "\",\"level\":\"");
	put_str(line, size, &pos, level_names[level]);
	put_str(line, size, &pos, "\",\"program\":\"");
	json_escape(line, size - tail, &pos, log_ident);
	put_str(line, size, &pos, "\",\"msg\":\"");
	json_escape(line, size - tail, &pos, msg);
	put_str(line, size, &pos, "\"");
	if (log_leading_id(msg)) {
		put_str(line, size, &pos, ",\"id\":\"");
		memcpy(line + pos, msg, 16);
		pos += 16;
		put_str(line, size, &pos, "\"");
	}
	put_str(line, size, &pos, "}\n");
	return pos;
}

static void
log_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;  /* nowhere left to say so */
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void __attribute__((format(printf, 2, 0)))
log_vwrite(enum log_level level, const char *fmt, va_list ap, const char *suffix)
{
	char msg[LOG_MSG_MAX], when[32], line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int saved_errno = errno, n;

	if ((int)level > __atomic_load_n(&log_level, __ATOMIC_RELAXED))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (suffix != NULL && n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", suffix);

	if (log_target == LOG_TARGET_SYSLOG || log_format == LOG_FORMAT_TEXT)
		/* Keep one event on one line, whatever a message carried. */
		for (char *p = msg; *p != '\0'; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	if (log_target == LOG_TARGET_SYSLOG) {
		syslog(level_prio[level], "%s", msg);
		errno = saved_errno;
		return;
	}

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(when, sizeof(when) - 5, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + len, sizeof(when) - len, ".%03dZ",
	    (int)(ts.tv_nsec / 1000000));

	if (log_format == LOG_FORMAT_JSON) {
		len = log_format_json(line, sizeof(line), when, level, msg);
	} else {
		n = snprintf(line, sizeof(line), "%s %s[%s] %s\n", when,
		    log_ident, level_names[level], msg);
		len = n < 0 ? 0 : MIN((size_t)n, sizeof(line) - 1);
		if (len > 0)
			line[len - 1] = '\n';
	}
	log_write_all(log_target == LOG_TARGET_FILE && log_fd >= 0 ? log_fd :
	    STDERR_FILENO, line, len);
	errno = saved_errno;
}

#define LOG_FN(name, level)                                                    \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vwrite(level, fmt, ap, NULL);                              \
		va_end(ap);                                                    \
	}

LOG_FN(log_err, LOG_LEVEL_ERR)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
