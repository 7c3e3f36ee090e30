/* SPDX-License-Identifier: ISC */
/* test_log.c -- JSON lines that parse whatever a message holds, text lines, file reopen */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

#define IDENT "test\"log"
#define MAX_MEMBERS 8

static char dir[64];
static char path[128];

/* ---- a small JSON reader: one object of string members ----------------- */

struct member {
	char key[32];
	char *value; /* decoded, UTF-8, NUL-terminated */
};

struct object {
	struct member m[MAX_MEMBERS];
	int n;
};

static void
put_utf8(char **out, uint32_t cp)
{
	unsigned char *o = (unsigned char *)*out;

	if (cp < 0x80) {
		*o++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*o++ = (unsigned char)(0xc0 | cp >> 6);
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (unsigned char)(0xe0 | cp >> 12);
		*o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (unsigned char)(0xf0 | cp >> 18);
		*o++ = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*out = (char *)o;
}

static int
hex4(const char *s, uint32_t *ret)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*ret = v;
	return 0;
}

/* Well-formed UTF-8 (RFC 3629) at s: its length, or 0. */
static size_t
utf8_ok(const unsigned char *s)
{
	uint32_t cp, min;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	else
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

/* A JSON string at *p (past its opening quote) into a new buffer. */
static char *
parse_string(const char **p)
{
	const char *s = *p;
	char *out = malloc(strlen(s) + 1), *o = out;

	assert_non_null(out);
	for (;;) {
		unsigned char c = (unsigned char)*s;
		uint32_t cp, lo;
		size_t len;

		if (c == '"') {
			s++;
			break;
		}
		if (c == '\0' || c < 0x20)
			goto bad;  /* unterminated, or a raw control character */
		if (c != '\\') {
			len = utf8_ok((const unsigned char *)s);
			if (len == 0)
				goto bad;
			memcpy(o, s, len);
			o += len;
			s += len;
			continue;
		}
		s++;
		switch (*s++) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (hex4(s, &cp) < 0)
				goto bad;
			s += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto bad;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (s[0] != '\\' || s[1] != 'u' ||
				    hex4(s + 2, &lo) < 0 || lo < 0xdc00 ||
				    lo > 0xdfff)
					goto bad;
				s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			put_utf8(&o, cp);
			break;
		default:
			goto bad;
		}
	}
	*o = '\0';
	*p = s;
	return out;
bad:
	free(out);
	return NULL;
}

static void
object_free(struct object *obj)
{
	for (int i = 0; i < obj->n; i++)
		free(obj->m[i].value);
	obj->n = 0;
}

/* line: one object with string members, then "\n" and nothing else. */
static int
parse_line(const char *line, struct object *obj)
{
	const char *p = line;

	obj->n = 0;
	if (*p++ != '{')
		return -1;
	for (;;) {
		char *key;

		if (obj->n == MAX_MEMBERS || *p++ != '"')
			goto bad;
		key = parse_string(&p);
		if (key == NULL || strlen(key) >= sizeof(obj->m[0].key)) {
			free(key);
			goto bad;
		}
		strcpy(obj->m[obj->n].key, key);
		free(key);
		if (*p++ != ':' || *p++ != '"')
			goto bad;
		obj->m[obj->n].value = parse_string(&p);
		if (obj->m[obj->n].value == NULL)
			goto bad;
		obj->n++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p++ != '}')
			goto bad;
		break;
	}
	if (strcmp(p, "\n") != 0)
		goto bad;
	return 0;
bad:
	object_free(obj);
	return -1;
}

static const char *
get(const struct object *obj, const char *key)
{
	for (int i = 0; i < obj->n; i++)
		if (strcmp(obj->m[i].key, key) == 0)
			return obj->m[i].value;
	return NULL;
}

/* ---- helpers ------------------------------------------------------------ */

static char *
slurp(const char *p)
{
	struct stat st;
	char *buf;
	int fd = open(p, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	return buf;
}

/* Split buf into lines in place, each keeping its "\n"; they must be
 * whole lines. Returns the count, at most max. */
static int
split_lines(char *buf, char **lines, int max, char *store, size_t store_size)
{
	int n = 0;
	char *p = buf;
	size_t used = 0;

	while (*p != '\0') {
		char *nl = strchr(p, '\n');
		size_t len;

		assert_non_null(nl);
		assert_true(n < max);
		len = (size_t)(nl - p) + 1;
		assert_true(used + len + 1 <= store_size);
		memcpy(store + used, p, len);
		store[used + len] = '\0';
		lines[n++] = store + used;
		used += len + 1;
		p = nl + 1;
	}
	return n;
}

static void
fresh_file(enum log_format format)
{
	unlink(path);
	log_init(IDENT, LOG_TARGET_STDERR, LOG_LEVEL_INFO, 0);
	log_set_format(format);
	assert_int_equal(log_set_file(path), 0);
}

static bool
time_ok(const char *t)
{
	/* 2026-01-02T03:04:05.678Z */
	static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (strlen(t) != sizeof(pattern) - 1)
		return false;
	for (size_t i = 0; i < sizeof(pattern) - 1; i++)
		if (pattern[i] == 'd' ? t[i] < '0' || t[i] > '9' :
		    t[i] != pattern[i])
			return false;
	return true;
}

/* ---- tests -------------------------------------------------------------- */

static void
test_json_nasty_messages(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "quote \" backslash \\ slash / percent %d",
		  "quote \" backslash \\ slash / percent %d" },
		{ "ctl \x01\x1f\x7f tab\t nl\n cr\r bell\a",
		  "ctl \x01\x1f\x7f tab\t nl\n cr\r bell\a" },
		{ "utf8 \xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 end",
		  "utf8 \xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 end" },
		/* a stray byte, an overlong NUL, a lone continuation, a
		 * surrogate, past U+10FFFF: each bad byte one U+FFFD */
		{ "bad \xff|\xc0\x80|\x80|\xed\xa0\x80|\xf4\x90\x80\x80|",
		  "bad \xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd|"
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|" },
		{ "cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd" },
		{ "\"}\n{\"level\":\"err\"", "\"}\n{\"level\":\"err\"" },
	};
	char *lines[16], store[8192], *buf;
	int n;

	(void)state;
	fresh_file(LOG_FORMAT_JSON);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		log_info("%s", cases[i].in);
	log_warn("%s", "x");
	log_debug("below the level");

	buf = slurp(path);
	n = split_lines(buf, lines, 16, store, sizeof(store));
	assert_int_equal(n, (int)(sizeof(cases) / sizeof(cases[0])) + 1);
	for (int i = 0; i < n; i++) {
		struct object obj;

		assert_int_equal(parse_line(lines[i], &obj), 0);
		assert_int_equal(obj.n, 4);
		assert_string_equal(obj.m[0].key, "time");
		assert_string_equal(obj.m[1].key, "level");
		assert_string_equal(obj.m[2].key, "program");
		assert_string_equal(obj.m[3].key, "msg");
		assert_true(time_ok(get(&obj, "time")));
		assert_string_equal(get(&obj, "program"), IDENT);
		if (i < n - 1) {
			assert_string_equal(get(&obj, "level"), "info");
			assert_string_equal(get(&obj, "msg"), cases[i].want);
		} else {
			assert_string_equal(get(&obj, "level"), "warn");
		}
		object_free(&obj);
	}
	/* The exact escapes, not just something that parses back. */
	assert_non_null(strstr(lines[2], "\"program\":\"test\\\"log\","));
	assert_non_null(strstr(lines[2], "\"msg\":\"quote \\\" backslash "
	    "\\\\ slash / percent %d\"}\n"));
	assert_non_null(strstr(lines[3], "\"msg\":\"ctl \\u0001\\u001f\\u007f "
	    "tab\\u0009 nl\\u000a cr\\u000d bell\\u0007\"}\n"));
	assert_non_null(strstr(lines[5], "\"msg\":\"bad \\ufffd|\\ufffd"
	    "\\ufffd|"));
	free(buf);
}

static void
test_json_long_message(void **state)
{
	char msg[3000], *buf, *lines[2], *store;
	struct object obj;

	(void)state;
	fresh_file(LOG_FORMAT_JSON);
	memset(msg, '\x01', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	log_err("%s", msg);
	memset(msg, '\xff', sizeof(msg) - 1);
	log_err("%s", msg);

	buf = slurp(path);
	store = malloc(strlen(buf) + 4);
	assert_non_null(store);
	assert_int_equal(split_lines(buf, lines, 2, store, strlen(buf) + 4), 2);
	for (int i = 0; i < 2; i++) {
		const char *m;

		assert_int_equal(parse_line(lines[i], &obj), 0);
		m = get(&obj, "msg");
		/* cut to the message limit, still one whole object */
		assert_true(strlen(m) > 1000);
		assert_true(strlen(m) < sizeof(msg) * 3);
		object_free(&obj);
	}
	free(store);
	free(buf);
}

static void
test_json_leading_id(void **state)
{
	char *buf, *lines[4], store[2048];
	struct object obj;

	(void)state;
	fresh_file(LOG_FORMAT_JSON);
	log_info("%016llx order state A -> B", 0x0123456789abcdefULL);
	log_info("0123456789ABCDEF upper case is no id");
	log_info("0123456789abcdef");

	buf = slurp(path);
	assert_int_equal(split_lines(buf, lines, 4, store, sizeof(store)), 3);
	assert_int_equal(parse_line(lines[0], &obj), 0);
	assert_string_equal(get(&obj, "id"), "0123456789abcdef");
	assert_string_equal(get(&obj, "msg"),
	    "0123456789abcdef order state A -> B");
	object_free(&obj);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(parse_line(lines[i], &obj), 0);
		assert_null(get(&obj, "id"));
		object_free(&obj);
	}
	free(buf);
}

static void
test_text_format(void **state)
{
	char *buf, *lines[4], store[1024];

	(void)state;
	fresh_file(LOG_FORMAT_TEXT);
	log_warn("hello %d", 42);
	log_info("two\nlines\rhere");
	log_debug("not at info");
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("now at debug");
	log_set_level(LOG_LEVEL_INFO);

	buf = slurp(path);
	assert_int_equal(split_lines(buf, lines, 4, store, sizeof(store)), 3);
	for (int i = 0; i < 3; i++) {
		char when[25];

		memcpy(when, lines[i], 24);
		when[24] = '\0';
		assert_true(time_ok(when));
		assert_int_equal(lines[i][24], ' ');
	}
	assert_string_equal(lines[0] + 25, IDENT "[warn] hello 42\n");
	assert_string_equal(lines[1] + 25, IDENT "[info] two lines here\n");
	assert_string_equal(lines[2] + 25, IDENT "[debug] now at debug\n");
	free(buf);
}

static void
test_reopen_after_rename(void **state)
{
	char old[160], *buf;
	struct stat st;

	(void)state;
	snprintf(old, sizeof(old), "%s.1", path);
	unlink(old);
	fresh_file(LOG_FORMAT_TEXT);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640 & ~022);
	log_info("one");
	assert_int_equal(rename(path, old), 0);  /* logrotate */
	log_info("two");
	assert_int_equal(log_reopen(), 0);       /* its postrotate HUP */
	log_info("three");

	buf = slurp(old);
	assert_non_null(strstr(buf, "[info] one\n"));
	assert_non_null(strstr(buf, "[info] two\n"));
	assert_null(strstr(buf, "three"));
	free(buf);
	buf = slurp(path);
	assert_null(strstr(buf, "one"));
	assert_null(strstr(buf, "two"));
	assert_non_null(strstr(buf, "[info] three\n"));
	free(buf);
	unlink(old);
}

static void
test_reopen_failure_keeps_file(void **state)
{
	char sub[96], subpath[128], moved[128], *buf;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(subpath, sizeof(subpath), "%s/log", sub);
	snprintf(moved, sizeof(moved), "%s/moved.log", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	log_set_format(LOG_FORMAT_TEXT);
	assert_int_equal(log_set_file(subpath), 0);
	log_info("before");
	assert_int_equal(rename(subpath, moved), 0);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(log_reopen(), -ENOENT);
	log_info("after");
	buf = slurp(moved);
	assert_non_null(strstr(buf, "[info] before\n"));
	assert_non_null(strstr(buf, "[info] after\n"));
	free(buf);
	unlink(moved);

	assert_int_equal(log_set_file("/nonexistent-dir/x.log"), -ENOENT);
	assert_int_equal(log_format_from_string("yaml", &(enum log_format){ 0 }),
	    -EINVAL);
}

#define THREADS 4
#define THREAD_LINES 500

static void *
thread_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	char pad[700];

	memset(pad, 'a' + t, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < THREAD_LINES; i++)
		log_info("thread=%d line=%d \"%.*s\"", t, i, 100 + i % 500, pad);
	return NULL;
}

static void
test_threads_whole_lines(void **state)
{
	pthread_t th[THREADS];
	char *buf, **lines, *store;
	int seen[THREADS] = { 0 }, n;
	size_t size;

	(void)state;
	fresh_file(LOG_FORMAT_JSON);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, thread_main,
		    (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);

	buf = slurp(path);
	size = strlen(buf) + THREADS * THREAD_LINES + 1;
	store = malloc(size);
	lines = calloc(THREADS * THREAD_LINES, sizeof(*lines));
	assert_non_null(store);
	assert_non_null(lines);
	n = split_lines(buf, lines, THREADS * THREAD_LINES, store, size);
	assert_int_equal(n, THREADS * THREAD_LINES);
	for (int i = 0; i < n; i++) {
		struct object obj;
		int t, line, len;

		assert_int_equal(parse_line(lines[i], &obj), 0);
		assert_int_equal(sscanf(get(&obj, "msg"), "thread=%d line=%d",
		    &t, &line), 2);
		assert_true(t >= 0 && t < THREADS);
		assert_int_equal(line, seen[t]);  /* each thread's in order */
		len = 100 + line % 500;
		assert_int_equal(strlen(strchr(get(&obj, "msg"), '"')),
		    (size_t)len + 2);
		seen[t]++;
		object_free(&obj);
	}
	free(lines);
	free(store);
	free(buf);
}

static int
setup(void **state)
{
	(void)state;
	umask(022);
	snprintf(dir, sizeof(dir), "/tmp/test_log-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/twinrouted.log", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	log_init(IDENT, LOG_TARGET_STDERR, LOG_LEVEL_INFO, 0);
	unlink(path);
	rmdir(dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_nasty_messages),
		cmocka_unit_test(test_json_long_message),
		cmocka_unit_test(test_json_leading_id),
		cmocka_unit_test(test_text_format),
		cmocka_unit_test(test_reopen_after_rename),
		cmocka_unit_test(test_reopen_failure_keeps_file),
		cmocka_unit_test(test_threads_whole_lines),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
