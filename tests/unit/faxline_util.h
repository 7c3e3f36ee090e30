/* SPDX-License-Identifier: ISC */
/* faxline_util.h -- unit tests' faxline (a modem and a line on a pty) and
 * the page they send through it */
#ifndef TR_TESTS_FAXLINE_UTIL_H
#define TR_TESTS_FAXLINE_UTIL_H

/*
 * Static functions for the one test that includes this, after <cmocka.h>;
 * FAXLINE_PATH names the faxline binary (tests/meson.build). A test that
 * starts faxline sets faxline_reap as its teardown, so a failure before
 * faxline_stop() leaves no process or directory behind.
 */

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/macro.h"
#include "fax/class1.h"
#include "fax/page.h"

/* The ident faxline answers with. */
#define FAXLINE_CSI "+81 3 1234 5678"

/* Render LINES and encode the page both ways into *ret; free it with
 * faxline_page_free(). 0, or -1. */
static int
faxline_page_make(const char *const *lines, size_t n, struct class1_page *ret)
{
	size_t max = fax_page_encoded_max(), len_1d, len_2d;
	uint8_t *bitmap = malloc(FAX_PAGE_BYTES);
	uint8_t *enc_1d = malloc(max), *enc_2d = malloc(max);
	int r = -1;

	if (bitmap != NULL && enc_1d != NULL && enc_2d != NULL &&
	    fax_page_render(NULL, lines, n, bitmap, FAX_PAGE_BYTES) == 0 &&
	    fax_page_encode(bitmap, FAX_T4_1D, enc_1d, max, &len_1d) == 0 &&
	    fax_page_encode(bitmap, FAX_T4_2D, enc_2d, max, &len_2d) == 0) {
		*ret = (struct class1_page){ enc_1d, len_1d, enc_2d, len_2d };
		enc_1d = enc_2d = NULL;
		r = 0;
	}
	free(bitmap);
	free(enc_1d);
	free(enc_2d);
	return r;
}

static void
faxline_page_free(struct class1_page *p)
{
	free(unconst(p->t4_1d));
	free(unconst(p->t4_2d));
	*p = (struct class1_page){ 0 };
}

/* The faxline of the running test, killed by faxline_reap if the test
 * failed before stopping it. */
static pid_t faxline_live_pid = -1;
static char faxline_live_dir[64];

struct faxline {
	char dir[64];
	char link[96];	/* the pty the modem is on */
	char tiffs[96];	/* where the pages it receives go */
	pid_t pid;
	int out;	/* faxline's stdout */
	int fd;		/* the pty, if the test opens it; -1 if not */
	char json[1024];
};

static void
faxline_rm(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/*
 * Start faxline in a new directory /tmp/test-TAG-XXXXXX, with one more
 * option EXTRA (or NULL), and wait for its pty. Its stderr is shown when
 * TAG_VERBOSE (upper case) is set in the environment.
 */
static void
faxline_start(struct faxline *l, const char *tag, const char *extra)
{
	char verbose[32];
	uint64_t until;
	int p[2];
	size_t i;

	for (i = 0; tag[i] != '\0' && i < sizeof(verbose) - 9; i++)
		verbose[i] = (char)toupper((unsigned char)tag[i]);
	snprintf(verbose + i, sizeof(verbose) - i, "_VERBOSE");
	snprintf(l->dir, sizeof(l->dir), "/tmp/test-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(l->dir));
	snprintf(l->link, sizeof(l->link), "%s/tty", l->dir);
	snprintf(l->tiffs, sizeof(l->tiffs), "%s/tiff", l->dir);
	assert_int_equal(mkdir(l->tiffs, 0700), 0);
	l->fd = -1;
	assert_int_equal(pipe(p), 0);
	l->pid = fork();
	assert_true(l->pid >= 0);
	if (l->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(p[1], 1);
		if (devnull >= 0 && getenv(verbose) == NULL)
			dup2(devnull, 2);
		close(p[0]);
		close(p[1]);
		if (extra)
			execl(FAXLINE_PATH, "faxline", "--fast", "--csi",
			    FAXLINE_CSI, "--tiff-dir", l->tiffs, "--link",
			    l->link, "--verbose", extra, (char *)NULL);
		else
			execl(FAXLINE_PATH, "faxline", "--fast", "--csi",
			    FAXLINE_CSI, "--tiff-dir", l->tiffs, "--link",
			    l->link, "--verbose", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	l->out = p[0];
	faxline_live_pid = l->pid;
	snprintf(faxline_live_dir, sizeof(faxline_live_dir), "%s", l->dir);
	until = clock_monotonic_ms() + 10000;
	for (;;) {
		struct stat st;

		if (lstat(l->link, &st) == 0)
			break;
		assert_true(clock_monotonic_ms() < until);
		usleep(20000);
	}
}

/* faxline's JSON line for the call it just had, into l->json. */
static void
faxline_call(struct faxline *l)
{
	size_t n = 0;
	uint64_t until = clock_monotonic_ms() + 15000;

	for (;;) {
		struct pollfd pfd = { .fd = l->out, .events = POLLIN };
		ssize_t r;

		assert_true(clock_monotonic_ms() < until);
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		r = read(l->out, l->json + n, sizeof(l->json) - 1 - n);
		assert_true(r > 0);
		n += (size_t)r;
		l->json[n] = '\0';
		if (strchr(l->json, '\n'))
			break;
		assert_true(n < sizeof(l->json) - 1);
	}
	*strchr(l->json, '\n') = '\0';
}

static void
faxline_assert_json(const struct faxline *l, const char *needle)
{
	if (strstr(l->json, needle) == NULL)
		fail_msg("%s not in %s", needle, l->json);
}

/* Stop faxline (it must exit 0) and remove its directory. */
static void
faxline_stop(struct faxline *l)
{
	int st;

	if (l->fd >= 0)
		close(l->fd);
	kill(l->pid, SIGTERM);
	assert_int_equal(waitpid(l->pid, &st, 0), l->pid);
	faxline_live_pid = -1;
	close(l->out);
	faxline_rm(l->dir);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int
faxline_reap(void **state)
{
	(void)state;
	if (faxline_live_pid > 0) {
		kill(faxline_live_pid, SIGKILL);
		waitpid(faxline_live_pid, NULL, 0);
		faxline_live_pid = -1;
		faxline_rm(faxline_live_dir);
	}
	return 0;
}

#endif
