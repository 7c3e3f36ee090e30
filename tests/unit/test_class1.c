/* SPDX-License-Identifier: ISC */
/* test_class1.c -- T.30 sender over Class 1: calls through faxline, bad input */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <tiffio.h>

#include "common/clock.h"
#include "common/macro.h"
#include "fax/class1.h"
#include "fax/page.h"

#include "faxline_util.h"

#define OUR_TSI "+1 555 0100"
#define CALL_MS 90000

static const char *const page_lines[] = {
	"TWINROUTE ORDER 000123",
	"Card: 4111 1111 1111 1111",
	"Expiry: 12/29",
	"Name: A. Tester",
	"Amount: 42.00 EUR",
	"End of page",
};

/* One rendered page, encoded both ways, shared by the tests. */
static struct class1_page the_page;

static int
group_setup(void **state)
{
	(void)state;
	return faxline_page_make(page_lines, ELEMENTSOF(page_lines),
	    &the_page);
}

static int
group_teardown(void **state)
{
	(void)state;
	faxline_page_free(&the_page);
	return 0;
}

/* --- faxline ------------------------------------------------------------ */

/* Start faxline and open its pty raw, for drive(). */
static void
line_start(struct faxline *l, const char *extra)
{
	struct termios t;

	faxline_start(l, "class1", extra);
	l->fd = open(l->link, O_RDWR | O_NOCTTY | O_NONBLOCK);
	assert_true(l->fd >= 0);
	assert_int_equal(tcgetattr(l->fd, &t), 0);
	cfmakeraw(&t);
	assert_int_equal(tcsetattr(l->fd, TCSANOW, &t), 0);
}

/* Drive CALL over the pty until it ends. */
static void
drive(struct class1_call *c, int fd)
{
	uint64_t until = clock_monotonic_ms() + CALL_MS;

	assert_int_equal(class1_start(c, clock_monotonic_ms()), 0);
	while (!class1_done(c)) {
		const uint8_t *buf;
		size_t len;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = clock_monotonic_ms();
		uint64_t dl = class1_next_deadline(c);
		int wait;

		assert_true(now < until);
		class1_output(c, &buf, &len);
		if (len > 0)
			pfd.events |= POLLOUT;
		wait = dl <= now ? 0 : (int)MIN(dl - now, (uint64_t)200);
		assert_true(poll(&pfd, 1, wait) >= 0);
		now = clock_monotonic_ms();
		if (pfd.revents & POLLIN) {
			uint8_t in[512];
			ssize_t r = read(fd, in, sizeof(in));

			if (r > 0)
				assert_int_equal(class1_input(c, in, (size_t)r,
				    now), 0);
		}
		if ((pfd.revents & POLLOUT) && !class1_done(c)) {
			class1_output(c, &buf, &len);
			if (len > 0) {
				ssize_t w = write(fd, buf, len);

				if (w > 0)
					class1_consume(c, (size_t)w, now);
			}
		}
		if (now >= class1_next_deadline(c))
			class1_timeout(c, now);
	}
	/* Whatever is left (the ATH0 answer) is flushed by the modem. */
}

static struct class1_call *
call_new(const char *expect)
{
	struct class1_call *c = NULL;
	struct class1_params p = {
		.number = "5551234",
		.tsi = OUR_TSI,
		.expect_csi = expect,
		.pages = &the_page,
		.n_pages = 1,
	};

	assert_int_equal(class1_new(&p, &c), 0);
	return c;
}

static void
test_send_page(void **state)
{
	struct faxline l;
	struct class1_call *c = call_new(FAXLINE_CSI);
	const char *p, *q;
	char tiff[256];
	TIFF *t;
	uint32_t w = 0, h = 0;

	(void)state;
	line_start(&l, NULL);
	drive(c, l.fd);
	if (class1_result(c) != CLASS1_OK)
		fail_msg("result %s: %s", class1_strresult(class1_result(c)),
		    class1_reason(c));
	assert_string_equal(class1_remote_csi(c), FAXLINE_CSI);
	assert_int_equal(class1_pages_sent(c), 1);
	assert_int_equal(class1_bps(c), 14400);
	assert_int_equal(class1_compression(c), 2);	/* the DIS offers 2-D */
	faxline_call(&l);
	faxline_assert_json(&l, "\"result\":\"OK\"");
	faxline_assert_json(&l, "\"pages\":1,");
	/* T.30 pads the ident with spaces; faxline shows them. */
	p = strstr(l.json, "\"remote_ident\":\"");
	assert_non_null(p);
	p += 16;
	q = strchr(p, '"');
	assert_non_null(q);
	while (q > p && q[-1] == ' ')
		q--;
	assert_int_equal((size_t)(q - p), strlen(OUR_TSI));
	assert_memory_equal(p, OUR_TSI, strlen(OUR_TSI));
	p = strstr(l.json, "\"tiff\":\"");
	assert_non_null(p);
	p += 8;
	q = strchr(p, '"');
	assert_non_null(q);
	assert_true((size_t)(q - p) < sizeof(tiff));
	memcpy(tiff, p, (size_t)(q - p));
	tiff[q - p] = '\0';
	t = TIFFOpen(tiff, "r");
	assert_non_null(t);
	assert_int_equal(TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w), 1);
	assert_int_equal(TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h), 1);
	TIFFClose(t);
	assert_int_equal(w, FAX_PAGE_WIDTH);
	assert_int_equal(h, FAX_PAGE_HEIGHT);
	c = class1_free(c);
	faxline_stop(&l);
}

static void
test_wrong_recipient(void **state)
{
	struct faxline l;
	struct class1_call *c = call_new("+81 3 9999 0000");

	(void)state;
	line_start(&l, NULL);
	drive(c, l.fd);
	assert_int_equal(class1_result(c), CLASS1_WRONG_RECIPIENT);
	assert_string_equal(class1_remote_csi(c), FAXLINE_CSI);
	assert_int_equal(class1_pages_sent(c), 0);
	assert_non_null(strstr(class1_reason(c), "9999"));
	faxline_call(&l);
	faxline_assert_json(&l, "\"pages\":0,");
	faxline_assert_json(&l, "\"tiff\":null");
	c = class1_free(c);
	faxline_stop(&l);
}

static void
test_busy(void **state)
{
	struct faxline l;
	struct class1_call *c = call_new(NULL);

	(void)state;
	line_start(&l, "--busy");
	drive(c, l.fd);
	assert_int_equal(class1_result(c), CLASS1_BUSY);
	assert_string_equal(class1_remote_csi(c), "");
	faxline_call(&l);
	faxline_assert_json(&l, "\"result\":\"BUSY\"");
	c = class1_free(c);
	faxline_stop(&l);
}

static void
test_no_answer(void **state)
{
	struct faxline l;
	struct class1_call *c = call_new(NULL);

	(void)state;
	line_start(&l, "--no-answer");
	drive(c, l.fd);
	assert_int_equal(class1_result(c), CLASS1_NO_ANSWER);
	faxline_call(&l);
	faxline_assert_json(&l, "\"result\":\"NO ANSWER\"");
	c = class1_free(c);
	faxline_stop(&l);
}

/* --- scripted modem (no line) ------------------------------------------- */

/* Take what the machine wants written; check it equals WANT. */
static void
expect_out(struct class1_call *c, const char *want)
{
	const uint8_t *buf;
	size_t len;

	class1_output(c, &buf, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	class1_consume(c, len, 0);
}

static void
feed(struct class1_call *c, const char *s, uint64_t now)
{
	assert_int_equal(class1_input(c, (const uint8_t *)s, strlen(s), now),
	    0);
}

static void
test_bad_params(void **state)
{
	struct class1_call *c = NULL;
	struct class1_params p = {
		.number = "5551234", .pages = &the_page, .n_pages = 1,
	};
	struct class1_params q;

	(void)state;
	assert_int_equal(class1_new(NULL, &c), -EINVAL);
	q = p;
	q.number = NULL;
	assert_int_equal(class1_new(&q, &c), -EINVAL);
	q = p;
	q.n_pages = 0;
	assert_int_equal(class1_new(&q, &c), -EINVAL);
	q = p;
	q.tsi = "123456789012345678901";	/* 21 */
	assert_int_equal(class1_new(&q, &c), -EINVAL);
	q = p;
	q.number = "555;ATH";
	assert_int_equal(class1_new(&q, &c), -EINVAL);
	q = p;
	q.dial_prefix = "T\r";
	assert_int_equal(class1_new(&q, &c), -EINVAL);
	q = p;
	q.max_bps = 1200;
	assert_int_equal(class1_new(&q, &c), -EINVAL);
	assert_null(c);
	q = p;
	q.tsi = "12345678901234567890";	/* 20 */
	q.dial_prefix = "9W";
	assert_int_equal(class1_new(&q, &c), 0);
	assert_int_equal(class1_input(c, (const uint8_t *)"OK\r\n", 4, 0),
	    -EINVAL);
	assert_int_equal(class1_start(c, 0), 0);
	assert_int_equal(class1_start(c, 0), -EALREADY);
	expect_out(c, "ATZ\r");
	feed(c, "ATZ\r\r\nOK\r\n", 1);	/* with the echo */
	expect_out(c, "ATE0\r");
	feed(c, "\r\nOK\r\n", 2);
	expect_out(c, "AT+FCLASS=1\r");
	feed(c, "\r\nOK\r\n", 3);
	expect_out(c, "ATD9W5551234\r");
	assert_false(class1_done(c));
	assert_int_equal(class1_result(c), CLASS1_RUNNING);
	feed(c, "\r\nNO DIALTONE\r\n", 4);
	assert_true(class1_done(c));
	assert_int_equal(class1_result(c), CLASS1_NO_DIALTONE);
	c = class1_free(c);
}

static void
test_modem_errors(void **state)
{
	struct class1_call *c = call_new(NULL);
	char junk[300];

	(void)state;
	/* ERROR to the init string. */
	assert_int_equal(class1_start(c, 0), 0);
	expect_out(c, "ATZ\r");
	feed(c, "\r\nERROR\r\n", 1);
	expect_out(c, "ATH0\r");
	feed(c, "\r\nOK\r\n", 2);
	assert_int_equal(class1_result(c), CLASS1_MODEM_ERROR);
	c = class1_free(c);

	/* Silence: the command timer fires, then the hang-up one. */
	c = call_new(NULL);
	assert_int_equal(class1_start(c, 1000), 0);
	expect_out(c, "ATZ\r");
	assert_int_equal(class1_next_deadline(c), 1000 + CLASS1_CMD_MS);
	class1_timeout(c, 1000 + CLASS1_CMD_MS - 1);
	assert_false(class1_done(c));
	class1_timeout(c, 1000 + CLASS1_CMD_MS);
	expect_out(c, "ATH0\r");
	class1_timeout(c, UINT64_MAX - 1);
	assert_true(class1_done(c));
	assert_int_equal(class1_result(c), CLASS1_TIMEOUT);
	assert_int_equal(class1_next_deadline(c), UINT64_MAX);
	c = class1_free(c);

	/* Overlong lines and unknown lines while dialling are dropped;
	 * the real answer still counts. */
	c = call_new(NULL);
	assert_int_equal(class1_start(c, 0), 0);
	expect_out(c, "ATZ\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATE0\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "AT+FCLASS=1\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATD5551234\r");
	memset(junk, 'x', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	feed(c, junk, 0);
	feed(c, "\r\nRINGING\r\n\x13\x11", 0);
	assert_false(class1_done(c));
	feed(c, "BUSY\r\n", 0);
	assert_true(class1_done(c));
	assert_int_equal(class1_result(c), CLASS1_BUSY);
	c = class1_free(c);

	/* Endless garbage ends the call. */
	c = call_new(NULL);
	assert_int_equal(class1_start(c, 0), 0);
	expect_out(c, "ATZ\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATE0\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "AT+FCLASS=1\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATD5551234\r");
	for (int i = 0; i < 100 && class1_result(c) == CLASS1_RUNNING; i++) {
		feed(c, junk, 0);
		feed(c, "\n", 0);
		if (!class1_done(c)) {
			const uint8_t *b;
			size_t n;

			class1_output(c, &b, &n);
			if (n > 0) {	/* ATH0: answer it */
				class1_consume(c, n, 0);
				feed(c, "OK\r\n", 0);
			}
		}
	}
	assert_true(class1_done(c));
	assert_int_equal(class1_result(c), CLASS1_PROTOCOL_ERROR);
	c = class1_free(c);
}

/* Everything the machine wants written now, into OUT (DLE ETX included). */
static size_t
drain(struct class1_call *c, uint8_t *out, size_t size)
{
	size_t n = 0;

	for (;;) {
		const uint8_t *buf;
		size_t len;

		class1_output(c, &buf, &len);
		if (len == 0)
			return n;
		assert_true(len <= size - n);
		memcpy(out + n, buf, len);
		n += len;
		class1_consume(c, len, 0);
	}
}

/* The modem hands over one received frame (FCS appended, DLE-stuffed). */
static void
feed_frame(struct class1_call *c, bool connect, const uint8_t *f, size_t n)
{
	uint8_t buf[128];
	size_t k = 0;

	if (connect)
		feed(c, "\r\nCONNECT\r\n", 0);
	for (size_t i = 0; i < n + 2; i++) {
		uint8_t b = i < n ? f[i] : 0x5a;	/* FCS: not checked */

		buf[k++] = b;
		if (b == 0x10)
			buf[k++] = 0x10;
	}
	buf[k++] = 0x10;
	buf[k++] = 0x03;
	assert_int_equal(class1_input(c, buf, k, 0), 0);
	feed(c, "\r\nOK\r\n", 0);
}

static void
expect_bytes(struct class1_call *c, const uint8_t *want, size_t n)
{
	uint8_t got[256];

	assert_int_equal(drain(c, got, sizeof(got)), n);
	assert_memory_equal(got, want, n);
}

/* One DCS + TCF round at a rate; the remote answers with FCF. */
static void
train_round(struct class1_call *c, uint8_t dcs_o1, int mod, size_t tcf,
    uint8_t fcf)
{
	static uint8_t data[4096];
	const uint8_t tsi[] = { 0xff, 0x03, 0x43, ' ', ' ', ' ', ' ', ' ',
		' ', ' ', ' ', ' ', '0', '0', '1', '0', ' ', '5', '5', '5',
		' ', '1', '+', 0x10, 0x03 };
	const uint8_t dcs[] = { 0xff, 0x13, 0x83, 0x00, dcs_o1, 0x70, 0x10,
		0x03 };
	const uint8_t resp[] = { 0xff, 0x13, fcf };
	char cmd[32];
	size_t n;

	expect_out(c, "AT+FTH=3\r");
	feed(c, "\r\nCONNECT\r\n", 0);
	expect_bytes(c, tsi, sizeof(tsi));
	feed(c, "\r\nCONNECT\r\n", 0);
	expect_bytes(c, dcs, sizeof(dcs));
	feed(c, "\r\nOK\r\n", 0);
	expect_out(c, "AT+FTS=8\r");
	feed(c, "\r\nOK\r\n", 0);
	snprintf(cmd, sizeof(cmd), "AT+FTM=%d\r", mod);
	expect_out(c, cmd);
	feed(c, "\r\nCONNECT\r\n", 0);
	n = drain(c, data, sizeof(data));
	assert_int_equal(n, tcf + 2);
	for (size_t i = 0; i < tcf; i++)
		assert_int_equal(data[i], 0);
	assert_int_equal(data[tcf], 0x10);
	assert_int_equal(data[tcf + 1], 0x03);
	feed(c, "\r\nOK\r\n", 0);
	expect_out(c, "AT+FRH=3\r");
	feed_frame(c, true, resp, sizeof(resp));
}

static void
test_training_fallback(void **state)
{
	struct class1_call *c = call_new(NULL);
	uint8_t csi[3 + 20];
	const char *id = FAXLINE_CSI;
	/* DIS: can receive, V.27ter + V.29 + V.17, fine, 2-D, 0 ms scan
	 * time, and an extension octet that needs DLE stuffing. */
	const uint8_t dis[] = { 0xff, 0x13, 0x80, 0x00, 0xee, 0xf0, 0x10 };
	const uint8_t dcn[] = { 0xff, 0x13, 0xfb, 0x10, 0x03 };

	(void)state;
	csi[0] = 0xff;
	csi[1] = 0x03;
	csi[2] = 0x40;
	for (size_t i = 0; i < 20; i++) {
		size_t j = 19 - i;

		csi[3 + i] = j < strlen(id) ? (uint8_t)id[j] : ' ';
	}
	assert_int_equal(class1_start(c, 0), 0);
	expect_out(c, "ATZ\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATE0\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "AT+FCLASS=1\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATD5551234\r");
	/* ATD's CONNECT stands for the first +FRH=3. */
	feed(c, "\r\nCONNECT\r\n", 0);
	feed_frame(c, false, csi, sizeof(csi));
	expect_out(c, "AT+FRH=3\r");
	/* A frame with a bad FCS (ERROR) is dropped and listened for again. */
	feed(c, "\r\nCONNECT\r\n\xff\x13\x80\x10\x03\r\nERROR\r\n", 0);
	expect_out(c, "AT+FRH=3\r");
	feed_frame(c, true, dis, sizeof(dis));
	assert_string_equal(class1_remote_csi(c), FAXLINE_CSI);
	train_round(c, 0xe2, 145, 2700, 0x44);	/* V.17 14400: FTT */
	assert_int_equal(class1_bps(c), 12000);	/* stepped down */
	train_round(c, 0xea, 121, 2250, 0x44);	/* V.17 12000 */
	train_round(c, 0xe6, 97, 1800, 0x44);	/* V.17 9600 */
	train_round(c, 0xee, 73, 1350, 0x44);	/* V.17 7200 */
	train_round(c, 0xca, 48, 900, 0x44);	/* V.27ter 4800 */
	train_round(c, 0xc2, 24, 450, 0x44);	/* V.27ter 2400 */
	assert_int_equal(class1_bps(c), 2400);
	/* Phase E: DCN, then on hook. */
	expect_out(c, "AT+FTH=3\r");
	feed(c, "\r\nCONNECT\r\n", 0);
	expect_bytes(c, dcn, sizeof(dcn));
	feed(c, "\r\nOK\r\n", 0);
	expect_out(c, "ATH0\r");
	assert_false(class1_done(c));
	feed(c, "\r\nOK\r\n", 0);
	assert_true(class1_done(c));
	assert_int_equal(class1_result(c), CLASS1_TRAINING_FAILED);
	assert_int_equal(class1_pages_sent(c), 0);
	c = class1_free(c);
}

/* Send the page (2-D) at MOD, then EOP; the remote answers FCF. */
static void
page_round(struct class1_call *c, int mod, uint8_t fcf)
{
	size_t size = 2 * the_page.len_2d + 16, n, k = 0;
	uint8_t *data = malloc(size), *want = malloc(size);
	const uint8_t eop[] = { 0xff, 0x13, 0x2f, 0x10, 0x03 };
	const uint8_t resp[] = { 0xff, 0x13, fcf };
	char cmd[32];

	assert_non_null(data);
	assert_non_null(want);
	for (size_t i = 0; i < the_page.len_2d; i++) {
		want[k++] = the_page.t4_2d[i];
		if (the_page.t4_2d[i] == 0x10)
			want[k++] = 0x10;
	}
	want[k++] = 0x10;
	want[k++] = 0x03;
	expect_out(c, "AT+FTS=8\r");
	feed(c, "\r\nOK\r\n", 0);
	snprintf(cmd, sizeof(cmd), "AT+FTM=%d\r", mod);
	expect_out(c, cmd);
	feed(c, "\r\nCONNECT\r\n", 0);
	/* XOFF holds the data, XON releases it. */
	feed(c, "\x13", 0);
	assert_int_equal(drain(c, data, size), 0);
	feed(c, "\x11", 0);
	n = drain(c, data, size);
	assert_int_equal(n, k);
	assert_memory_equal(data, want, k);
	feed(c, "\x13\x11\r\nOK\r\n", 0);
	expect_out(c, "AT+FTS=8\r");
	feed(c, "\r\nOK\r\n", 0);
	expect_out(c, "AT+FTH=3\r");
	feed(c, "\r\nCONNECT\r\n", 0);
	expect_bytes(c, eop, sizeof(eop));
	feed(c, "\r\nOK\r\n", 0);
	expect_out(c, "AT+FRH=3\r");
	if (fcf != 0)	/* 0: the remote stays silent */
		feed_frame(c, true, resp, sizeof(resp));
	free(data);
	free(want);
}

static void
test_page_rejected(void **state)
{
	struct class1_call *c = call_new(NULL);
	/* DIS: V.27ter + V.29 + V.17, fine, 2-D, 0 ms. */
	const uint8_t dis[] = { 0xff, 0x13, 0x80, 0x00, 0xee, 0x70 };
	const uint8_t dcn[] = { 0xff, 0x13, 0xfb, 0x10, 0x03 };

	(void)state;
	assert_int_equal(class1_start(c, 0), 0);
	expect_out(c, "ATZ\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATE0\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "AT+FCLASS=1\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATD5551234\r");
	feed(c, "\r\nCONNECT\r\n", 0);
	feed_frame(c, false, dis, sizeof(dis));	/* no CSI: any is fine */
	train_round(c, 0xe2, 145, 2700, 0x84);	/* CFR */
	assert_int_equal(class1_compression(c), 2);
	page_round(c, 146, 0x4c);		/* RTN: retrain one lower */
	train_round(c, 0xea, 121, 2250, 0x84);
	page_round(c, 122, 0x4c);		/* RTN again: rejected */
	expect_out(c, "AT+FTH=3\r");
	feed(c, "\r\nCONNECT\r\n", 0);
	expect_bytes(c, dcn, sizeof(dcn));
	feed(c, "\r\nOK\r\n", 0);
	expect_out(c, "ATH0\r");
	feed(c, "\r\nOK\r\n", 0);
	assert_true(class1_done(c));
	assert_int_equal(class1_result(c), CLASS1_PAGE_REJECTED);
	assert_int_equal(class1_pages_sent(c), 0);
	c = class1_free(c);
}

static void
test_postpage_timeout(void **state)
{
	struct class1_call *c = call_new(NULL);
	const uint8_t dis[] = { 0xff, 0x13, 0x80, 0x00, 0xce, 0x70 };
	const uint8_t eop[] = { 0xff, 0x13, 0x2f, 0x10, 0x03 };
	const uint8_t dcn[] = { 0xff, 0x13, 0xfb, 0x10, 0x03 };

	(void)state;
	assert_int_equal(class1_start(c, 0), 0);
	expect_out(c, "ATZ\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATE0\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "AT+FCLASS=1\r");
	feed(c, "OK\r\n", 0);
	expect_out(c, "ATD5551234\r");
	feed(c, "\r\nCONNECT\r\n", 0);
	/* V.27ter and V.29 only: 9600 on V.29. */
	feed_frame(c, false, dis, sizeof(dis));
	train_round(c, 0xc6, 96, 1800, 0x84);
	page_round(c, 96, 0);
	for (int i = 0; i < 4; i++) {
		/* T4 runs out: abort the +FRH=3 and send EOP again. */
		assert_int_equal(class1_next_deadline(c), CLASS1_T4_MS);
		class1_timeout(c, CLASS1_T4_MS);
		expect_out(c, "\x18");
		feed(c, "\r\nOK\r\n", 0);
		if (i == 3)
			break;
		expect_out(c, "AT+FTH=3\r");
		feed(c, "\r\nCONNECT\r\n", 0);
		expect_bytes(c, eop, sizeof(eop));
		feed(c, "\r\nOK\r\n", 0);
		expect_out(c, "AT+FRH=3\r");
	}
	expect_out(c, "AT+FTH=3\r");
	feed(c, "\r\nCONNECT\r\n", 0);
	expect_bytes(c, dcn, sizeof(dcn));
	feed(c, "\r\nOK\r\n", 0);
	expect_out(c, "ATH0\r");
	feed(c, "\r\nOK\r\n", 0);
	assert_int_equal(class1_result(c), CLASS1_TIMEOUT);
	assert_non_null(strstr(class1_reason(c), "post-page"));
	c = class1_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_modem_errors),
		cmocka_unit_test(test_training_fallback),
		cmocka_unit_test(test_page_rejected),
		cmocka_unit_test(test_postpage_timeout),
		cmocka_unit_test_teardown(test_send_page, faxline_reap),
		cmocka_unit_test_teardown(test_wrong_recipient, faxline_reap),
		cmocka_unit_test_teardown(test_busy, faxline_reap),
		cmocka_unit_test_teardown(test_no_answer, faxline_reap),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
