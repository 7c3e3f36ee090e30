/* SPDX-License-Identifier: ISC */
/* vault_audit.c -- the vault's append-only audit log */

/*
 * One line per vault operation:
 *
 *   2026-11-24T08:51:37.123Z level=info actor="ctl uid=0 pid=42"
 *     op=card_set member="M1001" result=OK detail="visa ending 1111, 12/2030"
 *
 * (on one line). Lines are queued, then written with one write(2): every
 * line whole, several lines of one batch of authentications together.
 * The caller decides when to fdatasync. A line never holds a card number,
 * a share, a key or an envelope: callers pass only member numbers, codes
 * and short human details; quoted fields are escaped so nothing a caller
 * passes can forge a line.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vault/vault_int.h"

#define AUDIT_LINE_MAX 768
#define AUDIT_DETAIL_MAX 384
#define AUDIT_BUF_INIT (16u << 10)
#define AUDIT_BUF_MAX (4u << 20)

int
vault_audit_open(struct vault_audit *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0)
		return -errno;
	a->buf = malloc(AUDIT_BUF_INIT);
	if (!a->buf) {
		close(a->fd);
		a->fd = -1;
		return -ENOMEM;
	}
	a->cap = AUDIT_BUF_INIT;
	a->ts_sec = -1;
	return 0;
}

void
vault_audit_close(struct vault_audit *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	free(a->buf);
	a->buf = NULL;
	a->len = a->cap = 0;
}

/* Append s to out (room cap) quoted and escaped; returns bytes written. */
static size_t
audit_quote(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (cap < 3)
		return 0;
	out[n++] = '"';
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (n + 5 >= cap)
			break;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else {
			out[n++] = (char)c;
		}
	}
	out[n++] = '"';
	return n;
}

static const char *
audit_timestamp(struct vault_audit *a, long *ret_ms)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	*ret_ms = ts.tv_nsec / 1000000;
	if (ts.tv_sec != a->ts_sec) {
		if (!gmtime_r(&ts.tv_sec, &tm) ||
		    strftime(a->ts, sizeof(a->ts), "%Y-%m-%dT%H:%M:%S", &tm) ==
			0)
			snprintf(a->ts, sizeof(a->ts), "@%lld",
			    (long long)ts.tv_sec);
		a->ts_sec = ts.tv_sec;
	}
	return a->ts;
}

static int
audit_reserve(struct vault_audit *a, size_t more)
{
	size_t cap = a->cap;
	char *b;

	if (a->len + more <= a->cap)
		return 0;
	while (cap < a->len + more)
		cap *= 2;
	if (cap > AUDIT_BUF_MAX)
		return -ENOBUFS;
	b = realloc(a->buf, cap);
	if (!b)
		return -ENOMEM;
	a->buf = b;
	a->cap = cap;
	return 0;
}

/* printf at out + *n, never past room; *n stays < room. */
static void _printf_(4, 5)
    audit_printf(char *out, size_t *n, size_t room, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*n + 1 >= room)
		return;
	va_start(ap, fmt);
	w = vsnprintf(out + *n, room - *n, fmt, ap);
	va_end(ap);
	if (w > 0)
		*n += MIN((size_t)w, room - *n - 1);
}

void
vault_audit_add(struct vault_audit *a, bool error, const char *actor,
    enum vault_op op, const char *member, enum vault_code code, const char *fmt,
    ...)
{
	char detail[AUDIT_DETAIL_MAX];
	/* Room for the line without its newline. */
	const size_t room = AUDIT_LINE_MAX - 1;
	const char *ts;
	size_t n = 0;
	char *p;
	long ms;
	va_list ap;
	int r;

	r = audit_reserve(a, AUDIT_LINE_MAX);
	if (r < 0) {
		a->err = r;
		return;
	}
	va_start(ap, fmt);
	if (vsnprintf(detail, sizeof(detail), fmt, ap) < 0)
		detail[0] = '\0';
	va_end(ap);

	p = a->buf + a->len;
	ts = audit_timestamp(a, &ms);
	audit_printf(p, &n, room, "%s.%03ldZ level=%s actor=", ts, ms,
	    error ? "error" : "info");
	n +=
	    audit_quote(p + n, room - n, actor && actor[0] ? actor : "unknown");
	audit_printf(p, &n, room, " op=%s", vault_strop(op));
	if (member) {
		audit_printf(p, &n, room, " member=");
		n += audit_quote(p + n, room - n, member);
	}
	audit_printf(p, &n, room, " result=%s detail=", vault_strcode(code));
	n += audit_quote(p + n, room - n, detail);
	p[n++] = '\n';
	a->len += n;
}

int
vault_audit_flush(struct vault_audit *a, bool sync)
{
	size_t len = a->len;
	ssize_t w;
	int r = 0;

	a->len = 0;
	if (a->err < 0) {
		r = a->err;
		a->err = 0;
		return r;
	}
	if (a->fd < 0)
		return -EBADF;
	if (len > 0) {
		do {
			w = write(a->fd, a->buf, len);
		} while (w < 0 && errno == EINTR);
		if (w < 0)
			return -errno;
		if ((size_t)w != len)
			return -EIO; /* a short write: the disk is full */
	}
	if (sync && fdatasync(a->fd) < 0)
		r = -errno;
	return r;
}
