/* SPDX-License-Identifier: ISC */
/* test_smtp.c -- the mail thread against smtp-sink and a STARTTLS relay */

/*
 * Real servers, no mocks: Postfix's smtp-sink (required: Debian package
 * postfix) dumps what it receives and can defer or reject commands; a
 * listening socket that never answers stands for a hung relay; a small
 * STARTTLS relay in a thread (certificates made with openssl(1)) checks
 * verification, the host name and SNI.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/macro.h"
#include "mail/smtp.h"

#include "tmpdir.h"

#define SMTP_SINK "/usr/sbin/smtp-sink"
#define OPENSSL_BIN "/usr/bin/openssl"
#define NMSG 3
#define MSG_MAX 1024
#define DUMP_MAX 8192

struct fixture {
	char dir[64];                /* mkdtemp, removed at the end */
	pid_t sink;
	uint16_t port;
	int hang_fd;                 /* a listener that never answers */
	struct event_base *base;
	struct smtp_sender *s;

	struct smtp_msg msgs[NMSG];
	char data[NMSG][MSG_MAX];
	char to[NMSG][64];

	int done_calls;
	struct smtp_msg *done_msgs;
	size_t done_n;
};

/* ---- helpers ---------------------------------------------------------- */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A loopback socket bound to a free port, listening or not. */
static int
bound_socket(uint16_t *ret_port, bool listening)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	if (listening)
		assert_int_equal(listen(fd, 8), 0);
	*ret_port = ntohs(sin.sin_port);
	return fd;
}

static uint16_t
free_port(void)
{
	uint16_t port;

	close(bound_socket(&port, false));
	return port;
}

static bool
port_listening(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static void
dir_path(const struct fixture *f, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", f->dir, name);
}

/*
 * Start smtp-sink on a free loopback port: -v logs the conversation to
 * sink.log, -d dumps every transaction to a file "m.<hex>" in f->dir.
 * extra: more options, NULL-terminated.
 */
static void
start_sink(struct fixture *f, const char *const *extra)
{
	char dump[96], addr[32], log[96];
	const char *argv[24];
	struct passwd *pw = getpwuid(getuid());
	size_t argc = 0;
	pid_t pid;

	assert_non_null(pw);
	f->port = free_port();
	dir_path(f, "m.", dump, sizeof(dump));
	dir_path(f, "sink.log", log, sizeof(log));
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)f->port);
	argv[argc++] = "smtp-sink";
	argv[argc++] = "-v";
	argv[argc++] = "-u";
	argv[argc++] = pw->pw_name;
	argv[argc++] = "-d";
	argv[argc++] = dump;
	for (size_t i = 0; extra && extra[i]; i++)
		argv[argc++] = extra[i];
	argv[argc++] = addr;
	argv[argc++] = "10";
	argv[argc] = NULL;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		/* Do not outlive a test that aborts before its teardown. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(SMTP_SINK, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	f->sink = pid;
	for (int i = 0; i < 500; i++) {
		int status;

		if (port_listening(f->port))
			return;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			f->sink = 0;
			fail_msg("smtp-sink exited (status %d) before "
			    "listening", status);
		}
		usleep(10000);
	}
	fail_msg("smtp-sink does not listen on port %u", (unsigned)f->port);
}

static void
stop_sink(struct fixture *f)
{
	if (f->sink > 0) {
		kill(f->sink, SIGTERM);
		waitpid(f->sink, NULL, 0);
		f->sink = 0;
	}
}

static void
on_done(void *arg, struct smtp_msg *msgs, size_t n)
{
	struct fixture *f = arg;

	f->done_calls++;
	f->done_msgs = msgs;
	f->done_n = n;
}

static void
new_sender(struct fixture *f, const struct smtp_opts *opts)
{
	assert_int_equal(smtp_sender_new(f->base, opts, on_done, f, &f->s),
	    0);
	assert_false(smtp_sender_busy(f->s));
}

static struct smtp_opts
sink_opts(const struct fixture *f)
{
	return (struct smtp_opts){
		.host = "127.0.0.1",
		.port = f->port,
		.starttls = SMTP_STARTTLS_NEVER,
		.timeout_s = 10,
		.helo = "twinroute.test",
	};
}

/* Run the loop until the done callback or max_s seconds. */
static void
run_until_done(struct fixture *f, double max_s)
{
	double end = now_s() + max_s;

	while (f->done_calls == 0 && now_s() < end) {
		struct timeval tv = { 0, 50000 };

		event_base_loopexit(f->base, &tv);
		event_base_dispatch(f->base);
	}
	assert_int_equal(f->done_calls, 1);
	assert_ptr_equal(f->done_msgs, f->msgs);
	assert_int_equal(f->done_n, NMSG);
	assert_false(smtp_sender_busy(f->s));
}

/* Message i: the composer's headers, a folded one, dots to stuff. */
static void
make_msgs(struct fixture *f)
{
	for (int i = 0; i < NMSG; i++) {
		struct smtp_msg *m = &f->msgs[i];
		int len;

		snprintf(f->to[i], sizeof(f->to[i]), "member%d@example.net",
		    i);
		len = snprintf(f->data[i], sizeof(f->data[i]),
		    "Date: Sat, 28 Nov 2026 14:05:00 +0000\r\n"
		    "Message-ID: <c-%d@example.org>\r\n"
		    "From: \"twinroute\" <broker@example.org>\r\n"
		    "To: %s\r\n"
		    "Reply-To: confirm+%d@example.org\r\n"
		    "Subject: Order %d: please confirm\r\n"
		    " (folded part of the subject)\r\n"
		    "Auto-Submitted: auto-generated\r\n"
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=UTF-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n"
		    "\r\n"
		    "Hello member %d,\r\n"
		    ".a line with a leading dot\r\n"
		    "..and one with two\r\n"
		    ".\r\n"
		    "Date: not a header in the body\r\n"
		    "the end\r\n",
		    i, f->to[i], i, i, i);
		assert_true(len > 0 && len < MSG_MAX);
		*m = (struct smtp_msg){
			.id = 100 + (uint64_t)i,
			.from = "bounce@example.org",
			.to = f->to[i],
			.data = f->data[i],
			.len = (size_t)len,
			.result = SMTP_PERM,
			.code = -1,
		};
		strcpy(m->text, "stale");
	}
}

static size_t
read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t off = 0;
	ssize_t r;

	assert_true(fd >= 0);
	while ((r = read(fd, buf + off, size - 1 - off)) > 0)
		off += (size_t)r;
	close(fd);
	buf[off] = '\0';
	return off;
}

/* The dump files of f->dir, read into dumps[]; returns how many. */
static size_t
read_dumps(const struct fixture *f, char dumps[][DUMP_MAX], size_t max)
{
	DIR *d = opendir(f->dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[320];

		if (strncmp(e->d_name, "m.", 2) != 0)
			continue;
		assert_true(n < max);
		snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
		read_file(path, dumps[n++], DUMP_MAX);
	}
	closedir(d);
	return n;
}

/* smtp-sink may close a dump file just after its reply: wait a little. */
static size_t
wait_dumps(const struct fixture *f, char dumps[][DUMP_MAX], size_t max,
    size_t want)
{
	size_t n = 0;

	for (int i = 0; i < 200; i++) {
		n = read_dumps(f, dumps, max);
		if (n >= want) {
			bool complete = true;

			/* A finished dump ends with the empty line. */
			for (size_t j = 0; j < n; j++) {
				size_t l = strlen(dumps[j]);

				if (l < 2 || strcmp(dumps[j] + l - 2, "\n\n"))
					complete = false;
			}
			if (complete)
				return n;
		}
		usleep(10000);
	}
	return n;
}

/* Whether a dump holds smtp-sink's record line "name: value". */
static bool
dump_has_record(const char *dump, const char *record)
{
	size_t len = strlen(record);

	for (const char *p = dump; p && *p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, record, len) == 0 && p[len] == '\n')
			return true;
	}
	return false;
}

/*
 * The message part of a dump: after smtp-sink's own records, which end
 * with its three-line Received: header.
 */
static const char *
dump_message(const char *dump)
{
	const char *p = strstr(dump, "\nReceived: from ");

	assert_non_null(p);
	p = strchr(p + 1, '\n');
	assert_non_null(p);
	p++;
	while (*p == '\t') {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	return p;
}

/* What smtp-sink writes for message data: LF line ends, an empty line. */
static void
expect_dump_text(const char *data, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;
		assert_true(o + 2 < size);
		out[o++] = data[i];
	}
	out[o++] = '\n';
	out[o] = '\0';
}

/* How many header lines of the message start with name (any case). */
static int
count_headers(const char *msg, const char *name)
{
	size_t len = strlen(name);
	int n = 0;

	for (const char *p = msg; *p && *p != '\n';) {
		if (strncasecmp(p, name, len) == 0)
			n++;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return n;
}

static bool
file_contains(const struct fixture *f, const char *name, const char *needle)
{
	static char buf[65536];
	char path[160];

	dir_path(f, name, path, sizeof(path));
	read_file(path, buf, sizeof(buf));
	return strstr(buf, needle) != NULL;
}

/* ---- fixture ---------------------------------------------------------- */

static int
setup(void **state)
{
	struct fixture *f;

	/* A required dependency: fail loudly rather than skip. */
	if (access(SMTP_SINK, X_OK) != 0) {
		print_error("%s is missing: install the Debian package "
		    "postfix (the SMTP tests run against smtp-sink)\n",
		    SMTP_SINK);
		return -1;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->hang_fd = -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), "smtp") < 0) {
		free(f);
		return -1;
	}
	f->base = event_base_new();
	if (!f->base) {
		rmdir(f->dir);
		free(f);
		return -1;
	}
	make_msgs(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	smtp_sender_free(f->s);
	stop_sink(f);
	if (f->hang_fd >= 0)
		close(f->hang_fd);
	event_base_free(f->base);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* ---- smtp-sink -------------------------------------------------------- */

/* Three messages, one session: all taken, byte for byte as given. */
static void
test_deliver_batch(void **state)
{
	static char dumps[NMSG + 1][DUMP_MAX];
	struct fixture *f = *state;
	struct smtp_opts o;
	size_t n;

	start_sink(f, NULL);
	o = sink_opts(f);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	assert_true(smtp_sender_busy(f->s));
	run_until_done(f, 20);

	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_OK);
		assert_int_equal(f->msgs[i].code, 250);
		assert_string_equal(f->msgs[i].text, "2.0.0 Ok");
		assert_int_equal(f->msgs[i].id, 100 + (uint64_t)i);
	}

	n = wait_dumps(f, dumps, NMSG + 1, NMSG);
	assert_int_equal(n, NMSG);
	for (int i = 0; i < NMSG; i++) {
		char want[MSG_MAX + 8], rcpt[96];
		const char *msg = NULL;

		/* Dumps come in no particular order: find message i. */
		snprintf(rcpt, sizeof(rcpt), "X-Rcpt-Args: <%s>", f->to[i]);
		for (size_t j = 0; j < n; j++)
			if (dump_has_record(dumps[j], rcpt)) {
				assert_null(msg);
				assert_true(dump_has_record(dumps[j],
				    "X-Mail-Args: <bounce@example.org>"));
				assert_true(dump_has_record(dumps[j],
				    "X-Helo-Args: twinroute.test"));
				msg = dump_message(dumps[j]);
			}
		assert_non_null(msg);
		expect_dump_text(f->data[i], f->msgs[i].len, want,
		    sizeof(want));
		assert_string_equal(msg, want);
		/* Nothing added by the library. */
		assert_int_equal(count_headers(msg, "Date:"), 1);
		assert_int_equal(count_headers(msg, "Message-ID:"), 1);
		assert_int_equal(count_headers(msg, "From:"), 1);
		assert_int_equal(count_headers(msg, "To:"), 1);
	}
	/* One session for the batch. */
	assert_true(file_contains(f, "sink.log", "MAIL FROM:<bounce@"));
	{
		char path[160], log[65536];
		int ehlo = 0;

		dir_path(f, "sink.log", path, sizeof(path));
		read_file(path, log, sizeof(log));
		for (const char *p = log; (p = strstr(p, ": EHLO ")); p++)
			ehlo++;
		/* The readiness probe connects without EHLO. */
		assert_int_equal(ehlo, 1);
	}

	/* The sender takes the next batch once done has run. */
	f->done_calls = 0;
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, 1), 0);
	{
		double end = now_s() + 20;

		while (f->done_calls == 0 && now_s() < end) {
			struct timeval tv = { 0, 50000 };

			event_base_loopexit(f->base, &tv);
			event_base_dispatch(f->base);
		}
	}
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->done_n, 1);
	assert_int_equal(f->msgs[0].result, SMTP_OK);
}

/* 4xx at RCPT: every message deferred with the relay's reply. */
static void
test_rcpt_defer(void **state)
{
	static const char *const extra[] = { "-r", "RCPT", NULL };
	static char dumps[NMSG + 1][DUMP_MAX];
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, extra);
	o = sink_opts(f);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_TEMP);
		assert_int_equal(f->msgs[i].code, 450);
		assert_string_equal(f->msgs[i].text,
		    "4.3.0 Error: command failed");
	}
	assert_int_equal(read_dumps(f, dumps, NMSG + 1), 0);
}

/* 5xx at RCPT: refused for good. */
static void
test_rcpt_reject(void **state)
{
	static const char *const extra[] = { "-f", "RCPT", NULL };
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, extra);
	o = sink_opts(f);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_PERM);
		assert_int_equal(f->msgs[i].code, 500);
		assert_string_equal(f->msgs[i].text,
		    "5.3.0 Error: command failed");
	}
}

/* 5xx after the final dot: the data was sent, the relay refused it. */
static void
test_data_reject(void **state)
{
	static const char *const extra[] = { "-f", ".", NULL };
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, extra);
	o = sink_opts(f);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_PERM);
		assert_int_equal(f->msgs[i].code, 500);
	}
}

/* 421 and a hang-up at RCPT: the first message has the 421, the rest
 * the dropped connection. */
static void
test_421_mid_session(void **state)
{
	static const char *const extra[] = { "-Q", "RCPT", NULL };
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, extra);
	o = sink_opts(f);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	assert_int_equal(f->msgs[0].result, SMTP_TEMP);
	assert_int_equal(f->msgs[0].code, 421);
	for (int i = 1; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_TEMP);
		assert_int_equal(f->msgs[i].code, 0);
		assert_string_equal(f->msgs[i].text,
		    "connection dropped or timed out");
	}
}

/* A greeting of 554: the session never opens; deferred with the reply. */
static void
test_greeting_reject(void **state)
{
	static const char *const extra[] = { "-f", "CONNECT", NULL };
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, extra);
	o = sink_opts(f);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_TEMP);
		assert_true(f->msgs[i].code >= 500 && f->msgs[i].code < 600);
		assert_non_null(strstr(f->msgs[i].text, "5.3.0"));
	}
	assert_false(file_contains(f, "sink.log", "MAIL FROM"));
}

/* Nothing listening: all deferred, no reply code, the system's reason. */
static void
test_refused(void **state)
{
	struct fixture *f = *state;
	struct smtp_opts o;

	f->port = free_port();
	o = sink_opts(f);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_TEMP);
		assert_int_equal(f->msgs[i].code, 0);
		assert_string_equal(f->msgs[i].text, "Connection refused");
	}
}

/* STARTTLS required, smtp-sink does not offer it: nothing is sent. */
static void
test_starttls_required_missing(void **state)
{
	static char dumps[NMSG + 1][DUMP_MAX];
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, NULL);
	o = sink_opts(f);
	o.starttls = SMTP_STARTTLS_REQUIRED;
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_TEMP);
		assert_int_equal(f->msgs[i].code, 0);
		assert_string_equal(f->msgs[i].text,
		    "STARTTLS required but not offered by the relay");
	}
	assert_int_equal(read_dumps(f, dumps, NMSG + 1), 0);
	assert_false(file_contains(f, "sink.log", "MAIL FROM"));
}

/* STARTTLS when available, not offered: sent in the clear. */
static void
test_starttls_optional_missing(void **state)
{
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, NULL);
	o = sink_opts(f);
	o.starttls = SMTP_STARTTLS_WHEN_AVAILABLE;
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++)
		assert_int_equal(f->msgs[i].result, SMTP_OK);
}

/* SMTP AUTH PLAIN (allowed on the loopback) with the given user. */
static void
test_auth_plain(void **state)
{
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, NULL);
	o = sink_opts(f);
	o.user = "u";
	o.password = "p";
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++)
		assert_int_equal(f->msgs[i].result, SMTP_OK);
	/* base64 of "\0u\0p" */
	assert_true(file_contains(f, "sink.log", "AUTH PLAIN AHUAcA=="));
}

/* Without a user, no AUTH even though smtp-sink offers it. */
static void
test_no_auth_without_user(void **state)
{
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, NULL);
	o = sink_opts(f);
	o.user = "";
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, 1), 0);
	{
		double end = now_s() + 20;

		while (f->done_calls == 0 && now_s() < end) {
			struct timeval tv = { 0, 50000 };

			event_base_loopexit(f->base, &tv);
			event_base_dispatch(f->base);
		}
	}
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->msgs[0].result, SMTP_OK);
	assert_false(file_contains(f, "sink.log", "AUTH"));
}

/* Bad envelope addresses are refused without SMTP; the rest goes. */
static void
test_bad_envelope(void **state)
{
	static char dumps[NMSG + 1][DUMP_MAX];
	struct fixture *f = *state;
	struct smtp_opts o;

	start_sink(f, NULL);
	o = sink_opts(f);
	new_sender(f, &o);
	f->msgs[0].to = "member0@example.net>\r\nRSET";
	f->msgs[2].from = "bounce @example.org";
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	assert_int_equal(f->msgs[0].result, SMTP_PERM);
	assert_int_equal(f->msgs[0].code, 0);
	assert_string_equal(f->msgs[0].text, "invalid envelope address");
	assert_int_equal(f->msgs[1].result, SMTP_OK);
	assert_int_equal(f->msgs[2].result, SMTP_PERM);
	assert_string_equal(f->msgs[2].text, "invalid envelope address");
	assert_int_equal(wait_dumps(f, dumps, NMSG + 1, 1), 1);
	assert_false(file_contains(f, "sink.log", "RSET"));
}

/* A batch where no message is valid still completes, through the loop. */
static void
test_all_invalid(void **state)
{
	struct fixture *f = *state;
	struct smtp_opts o;

	f->port = free_port();
	o = sink_opts(f);
	new_sender(f, &o);
	f->msgs[0].to = "";
	f->msgs[1].to = "member1@example.net\tx";
	f->msgs[2].len = 0;
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	/* Never synchronous. */
	assert_int_equal(f->done_calls, 0);
	run_until_done(f, 20);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_PERM);
		assert_int_equal(f->msgs[i].code, 0);
	}
	assert_string_equal(f->msgs[0].text, "invalid envelope address");
	assert_string_equal(f->msgs[1].text, "invalid envelope address");
	assert_string_equal(f->msgs[2].text, "empty message");
}

static void
on_done_free(void *arg, struct smtp_msg *msgs, size_t n)
{
	struct fixture *f = arg;

	on_done(arg, msgs, n);
	smtp_sender_free(f->s);
	f->s = NULL;
}

/* The done callback may free the sender. */
static void
test_free_in_done(void **state)
{
	struct fixture *f = *state;
	struct smtp_opts o;
	double end;

	start_sink(f, NULL);
	o = sink_opts(f);
	assert_int_equal(smtp_sender_new(f->base, &o, on_done_free, f,
	    &f->s), 0);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	end = now_s() + 20;
	while (f->done_calls == 0 && now_s() < end) {
		struct timeval tv = { 0, 50000 };

		event_base_loopexit(f->base, &tv);
		event_base_dispatch(f->base);
	}
	assert_int_equal(f->done_calls, 1);
	assert_null(f->s);
	for (int i = 0; i < NMSG; i++)
		assert_int_equal(f->msgs[i].result, SMTP_OK);
}

/* ---- a relay that never answers --------------------------------------- */

/* One batch at a time; the hung session ends at the timeout. */
static void
test_busy_and_timeout(void **state)
{
	struct fixture *f = *state;
	struct smtp_opts o;
	double t0, dt;

	f->hang_fd = bound_socket(&f->port, true);
	o = sink_opts(f);
	o.timeout_s = 1;
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, 0), -EINVAL);
	assert_int_equal(smtp_sender_submit(f->s, NULL, 1), -EINVAL);
	f->msgs[1].data = NULL;
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), -EINVAL);
	f->msgs[1].data = f->data[1];
	f->msgs[2].to = NULL;
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), -EINVAL);
	f->msgs[2].to = f->to[2];
	assert_false(smtp_sender_busy(f->s));
	t0 = now_s();
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	assert_true(smtp_sender_busy(f->s));
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), -EBUSY);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, 1), -EBUSY);
	run_until_done(f, 20);
	dt = now_s() - t0;
	assert_true(dt >= 0.9);
	assert_true(dt < 5.0);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_TEMP);
		assert_int_equal(f->msgs[i].code, 0);
		assert_string_equal(f->msgs[i].text,
		    "connection dropped or timed out");
	}
}

/* Free during a hung session: waits for the timeout, never calls done. */
static void
test_free_while_hanging(void **state)
{
	struct fixture *f = *state;
	struct smtp_opts o;
	double t0, dt;

	f->hang_fd = bound_socket(&f->port, true);
	o = sink_opts(f);
	o.timeout_s = 1;
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	usleep(200000);          /* the thread is waiting for a greeting */
	t0 = now_s();
	smtp_sender_free(f->s);
	f->s = NULL;
	dt = now_s() - t0;
	assert_true(dt < 3.0);
	/* The result event went with the sender. */
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(f->done_calls, 0);
	smtp_sender_free(NULL);
	assert_false(smtp_sender_busy(NULL));
}

/* ---- options ---------------------------------------------------------- */

static void
test_bad_opts(void **state)
{
	struct fixture *f = *state;
	struct smtp_sender *s = NULL;
	struct smtp_opts good = {
		.host = "relay.example.org",
		.port = 587,
		.starttls = SMTP_STARTTLS_NEVER,
		.timeout_s = 30,
	};
	struct smtp_opts o;

	o = good;
	assert_int_equal(smtp_sender_new(NULL, &o, on_done, f, &s), -EINVAL);
	assert_int_equal(smtp_sender_new(f->base, NULL, on_done, f, &s),
	    -EINVAL);
	assert_int_equal(smtp_sender_new(f->base, &o, NULL, f, &s), -EINVAL);
	o.host = NULL;
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o.host = "";
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o.host = "::1";          /* libesmtp splits "host:port" at ':' */
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o.host = "relay.example.org\r\nQUIT";
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o = good;
	o.port = 0;
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o = good;
	o.timeout_s = 0;
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o.timeout_s = 100000;
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o = good;
	o.starttls = (enum smtp_starttls)7;
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o = good;
	o.helo = "bad helo";
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o = good;
	o.user = "u";
	o.password = NULL;
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -EINVAL);
	o = good;
	o.starttls = SMTP_STARTTLS_REQUIRED;
	o.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s),
	    -ENOENT);
	assert_null(s);

	/* Address literals are fine as EHLO names. */
	o = good;
	o.helo = "[192.0.2.1]";
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s), 0);
	smtp_sender_free(s);
	s = NULL;
	o = good;
	o.starttls = SMTP_STARTTLS_REQUIRED;
	assert_int_equal(smtp_sender_new(f->base, &o, on_done, f, &s), 0);
	smtp_sender_free(s);
}

/* ---- a STARTTLS relay ------------------------------------------------- */

struct tls_relay {
	int lfd;
	uint16_t port;
	SSL_CTX *ctx;
	pthread_t thread;
	char sni[128];
	bool handshake_ok;
	int version;                 /* the TLS version negotiated */
	char data[DUMP_MAX];
	size_t data_len;
	int messages;
};

struct tls_conn {
	int fd;
	SSL *ssl;
};

static int
conn_getc(struct tls_conn *c)
{
	unsigned char ch;
	int r;

	if (c->ssl)
		r = SSL_read(c->ssl, &ch, 1);
	else
		r = (int)read(c->fd, &ch, 1);
	return r == 1 ? ch : -1;
}

static bool
conn_gets(struct tls_conn *c, char *buf, size_t size)
{
	size_t n = 0;
	int ch;

	while ((ch = conn_getc(c)) >= 0) {
		if (n + 1 < size)
			buf[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	buf[n] = '\0';
	return n > 0;
}

static void
conn_puts(struct tls_conn *c, const char *s)
{
	size_t len = strlen(s);

	if (c->ssl)
		SSL_write(c->ssl, s, (int)len);
	else if (write(c->fd, s, len) < 0) {
		/* the client went away */
	}
}

/* One client: greeting, EHLO with STARTTLS, the handshake, messages. */
static void *
tls_relay_thread(void *arg)
{
	struct tls_relay *t = arg;
	struct pollfd pfd = { .fd = t->lfd, .events = POLLIN };
	struct tls_conn c = { .fd = -1 };
	char line[1024];

	if (poll(&pfd, 1, 20000) != 1)
		return NULL;
	c.fd = accept(t->lfd, NULL, NULL);
	if (c.fd < 0)
		return NULL;
	conn_puts(&c, "220 tls-relay ESMTP\r\n");
	while (conn_gets(&c, line, sizeof(line))) {
		if (strncasecmp(line, "EHLO ", 5) == 0) {
			conn_puts(&c, c.ssl ?
			    "250-tls-relay\r\n250 8BITMIME\r\n" :
			    "250-tls-relay\r\n250-STARTTLS\r\n"
			    "250 8BITMIME\r\n");
		} else if (strncasecmp(line, "STARTTLS", 8) == 0 && !c.ssl) {
			const char *name;

			conn_puts(&c, "220 2.0.0 go ahead\r\n");
			c.ssl = SSL_new(t->ctx);
			SSL_set_fd(c.ssl, c.fd);
			if (SSL_accept(c.ssl) != 1)
				break;
			t->handshake_ok = true;
			t->version = SSL_version(c.ssl);
			name = SSL_get_servername(c.ssl,
			    TLSEXT_NAMETYPE_host_name);
			if (name)
				snprintf(t->sni, sizeof(t->sni), "%s", name);
		} else if (strncasecmp(line, "MAIL ", 5) == 0 ||
		    strncasecmp(line, "RCPT ", 5) == 0) {
			conn_puts(&c, c.ssl ? "250 2.1.0 ok\r\n"
			    : "530 5.7.0 STARTTLS first\r\n");
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			conn_puts(&c, "354 go on\r\n");
			while (conn_gets(&c, line, sizeof(line)) &&
			    strcmp(line, ".\r\n") != 0) {
				size_t len = strlen(line);

				if (t->data_len + len < sizeof(t->data)) {
					memcpy(t->data + t->data_len, line,
					    len);
					t->data_len += len;
				}
			}
			t->messages++;
			conn_puts(&c, "250 2.0.0 queued over TLS\r\n");
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			conn_puts(&c, "221 2.0.0 bye\r\n");
			break;
		} else {
			conn_puts(&c, "502 5.5.2 what\r\n");
		}
	}
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(c.fd);
	ERR_clear_error();
	return NULL;
}

static void
run_openssl(const char *const *argv)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(OPENSSL_BIN, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A self-signed certificate for DNS:localhost, and its key. */
static void
make_cert(const struct fixture *f, const char *name)
{
	char cert[128], key[128], subj[64];
	const char *argv[] = {
		"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-days", "2",
		"-subj", subj, "-addext", "subjectAltName=DNS:localhost",
		"-keyout", key, "-out", cert, NULL,
	};

	snprintf(cert, sizeof(cert), "%s/%s.pem", f->dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", f->dir, name);
	snprintf(subj, sizeof(subj), "/CN=localhost/O=%s", name);
	run_openssl(argv);
}

static void
tls_relay_start(struct fixture *f, struct tls_relay *t)
{
	char cert[128], key[128];

	if (access(OPENSSL_BIN, X_OK) != 0)
		fail_msg("%s is missing (package openssl)", OPENSSL_BIN);
	make_cert(f, "relay");
	snprintf(cert, sizeof(cert), "%s/relay.pem", f->dir);
	snprintf(key, sizeof(key), "%s/relay.key", f->dir);
	memset(t, 0, sizeof(*t));
	t->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(t->ctx);
	assert_int_equal(SSL_CTX_use_certificate_file(t->ctx, cert,
	    SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(t->ctx, key,
	    SSL_FILETYPE_PEM), 1);
	t->lfd = bound_socket(&t->port, true);
	assert_int_equal(pthread_create(&t->thread, NULL, tls_relay_thread,
	    t), 0);
	f->port = t->port;
}

static void
tls_relay_stop(struct tls_relay *t)
{
	pthread_join(t->thread, NULL);
	close(t->lfd);
	SSL_CTX_free(t->ctx);
}

static struct smtp_opts
tls_opts(const struct fixture *f, const char *host, const char *ca)
{
	struct smtp_opts o = sink_opts(f);

	o.host = host;
	o.starttls = SMTP_STARTTLS_REQUIRED;
	o.ca_file = ca;
	return o;
}

/* Verified against ca_file, by name, with SNI: the message goes. */
static void
test_tls_ok(void **state)
{
	struct fixture *f = *state;
	struct tls_relay t;
	struct smtp_opts o;
	static char want[DUMP_MAX];
	char ca[128];
	size_t wl = 0;

	tls_relay_start(f, &t);
	snprintf(ca, sizeof(ca), "%s/relay.pem", f->dir);
	o = tls_opts(f, "localhost", ca);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	tls_relay_stop(&t);
	for (int i = 0; i < NMSG; i++)
		if (f->msgs[i].result != SMTP_OK)
			print_error("message %d: %d %s\n", i, f->msgs[i].code,
			    f->msgs[i].text);
	assert_true(t.handshake_ok);
	/* The relay speaks 1.3 too; see smtp_tls_ctx_new() for why not. */
	assert_int_equal(t.version, TLS1_2_VERSION);
	assert_string_equal(t.sni, "localhost");
	assert_int_equal(t.messages, NMSG);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_OK);
		assert_int_equal(f->msgs[i].code, 250);
		assert_string_equal(f->msgs[i].text,
		    "2.0.0 queued over TLS");
	}
	/* On the wire: the messages, dot-stuffed, nothing added. */
	for (int i = 0; i < NMSG; i++) {
		const char *d = f->data[i];

		for (size_t k = 0; k < f->msgs[i].len; k++) {
			assert_true(wl + 2 < sizeof(want));
			if ((k == 0 || d[k - 1] == '\n') && d[k] == '.')
				want[wl++] = '.';
			want[wl++] = d[k];
		}
	}
	assert_int_equal(t.data_len, wl);
	assert_memory_equal(t.data, want, wl);
}

/* A certificate from another CA: refused before any MAIL. */
static void
test_tls_wrong_ca(void **state)
{
	struct fixture *f = *state;
	struct tls_relay t;
	struct smtp_opts o;
	char ca[128];

	tls_relay_start(f, &t);
	make_cert(f, "other");
	snprintf(ca, sizeof(ca), "%s/other.pem", f->dir);
	o = tls_opts(f, "localhost", ca);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	tls_relay_stop(&t);
	assert_false(t.handshake_ok);
	assert_int_equal(t.messages, 0);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_TEMP);
		assert_int_equal(f->msgs[i].code, 0);
		assert_non_null(strstr(f->msgs[i].text,
		    "relay certificate not accepted"));
	}
}

/* The right CA but the relay is reached as 127.0.0.1, which the
 * certificate does not name: refused. */
static void
test_tls_wrong_name(void **state)
{
	struct fixture *f = *state;
	struct tls_relay t;
	struct smtp_opts o;
	char ca[128];

	tls_relay_start(f, &t);
	snprintf(ca, sizeof(ca), "%s/relay.pem", f->dir);
	o = tls_opts(f, "127.0.0.1", ca);
	new_sender(f, &o);
	assert_int_equal(smtp_sender_submit(f->s, f->msgs, NMSG), 0);
	run_until_done(f, 20);
	tls_relay_stop(&t);
	assert_false(t.handshake_ok);
	assert_int_equal(t.messages, 0);
	/* No SNI for an address. */
	assert_string_equal(t.sni, "");
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(f->msgs[i].result, SMTP_TEMP);
		assert_non_null(strstr(f->msgs[i].text,
		    "relay certificate not accepted"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deliver_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_defer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_reject, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_data_reject, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_421_mid_session, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_greeting_reject, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_required_missing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_optional_missing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_plain, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_auth_without_user,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_envelope, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_all_invalid, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_in_done, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_busy_and_timeout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_while_hanging, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_opts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tls_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_wrong_ca, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tls_wrong_name, setup,
		    teardown),
	};

	/* A relay hanging up must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
