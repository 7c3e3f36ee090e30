/* SPDX-License-Identifier: ISC */
/* secret.c -- read passwords, shares and card fields without argv */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "secret.h"

bool
secret_interactive(void)
{
	return isatty(STDIN_FILENO) == 1;
}

/* Read up to a newline from fd, byte by byte: nothing is left buffered. */
static int
read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	bool any = false;

	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {
			if (!any)
				return -ENODATA;
			break;
		}
		any = true;
		if (ch == '\n')
			break;
		if (n + 1 >= len) {
			/* Swallow the rest of the line, then refuse it. */
			while (read(fd, &ch, 1) == 1 && ch != '\n')
				;
			OPENSSL_cleanse(buf, len);
			return -E2BIG;
		}
		buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 0;
}

int
secret_read(const char *prompt, bool echo, char *buf, size_t len)
{
	struct termios old, quiet;
	bool restore = false;
	int r;

	if (!secret_interactive())
		return read_line(STDIN_FILENO, buf, len);

	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	if (!echo && tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
	}
	r = read_line(STDIN_FILENO, buf, len);
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return r;
}
