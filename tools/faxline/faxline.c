/* SPDX-License-Identifier: ISC */
/* faxline.c -- a simulated phone line: a Class 1 fax modem on a pty, a fax
 * receiver */

/*
 * The host (twinroute's fax dispatcher, or a test) opens the pty slave named
 * by --link as if it were a serial port and drives a T.31 Class 1 modem with
 * AT commands. The modem is spandsp's T.31 emulation, run on the pty master.
 * When the host dials, the other end of the line is an in-process fax
 * terminal in receive mode (spandsp's T.30 over its own modems) that writes
 * what it receives to a TIFF file. Audio flows both ways in blocks of 20 ms
 * (160 samples at 8 kHz) in simulated time.
 *
 * Time. --realtime paces every block at 20 ms of wall time. --fast (the
 * default) runs blocks as fast as the machine allows while nobody waits for
 * the host, and at wall-clock pace while the modem waits for the host: in
 * command mode off hook, while the host sends HDLC frames (+FTH), and while
 * the host sends page data (+FTM) with little of it buffered. The host then
 * meets the T.30 timings a real line would impose, and the rest goes fast.
 *
 * Flow control. A pty has no RTS/CTS, so the modem flows off the host in
 * band: while the host sends non-ECM data (+FTM, DLE-stuffed), spandsp
 * raises "hold" when its transmit buffer passes its high tide (3 KiB of
 * 4 KiB) and releases it under the low tide; faxline turns those into DC3
 * (XOFF, 0x13) and DC1 (XON, 0x11) written to the host. The modem sends
 * nothing else while the host sends page data, so a host may take any 0x13
 * or 0x11 it reads during +FTM as flow control (or set IXON on the pty, which
 * the pty honours, for that phase only: received HDLC data is not
 * XON/XOFF-escaped). While held, faxline also stops reading the pty, so a
 * host that ignores XOFF blocks in write() instead of losing data.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES
#include <spandsp.h>
#include <spandsp/version.h>

#include "common/log.h"
#include "common/macro.h"

#define PROG "faxline"

#define SAMPLE_RATE 8000
#define BLOCK_SAMPLES 160
#define BLOCK_MS 20
/* Simulated time from ATD to the far end's answer (or busy tone). */
#define RING_MS 2000
/* How long an unanswered call rings before NO ANSWER. */
#define NO_ANSWER_MS 6000
/* Blocks run back to back in fast mode before the pty is looked at again. */
#define FAST_BURST 50
/* A paced clock this far behind wall time starts again from now. */
#define PACE_SLACK_MS 200
/* Bytes read from the host per call into the AT interpreter. */
#define HOST_CHUNK 256
/* Output to the host: the queue's size, and the backlog that stops both the
 * line (the host is not reading) and reading from the host (its echo). */
#define OUTQ_MAX (64 * 1024)
#define OUTQ_STALL (4 * 1024)
/* In +FTM, fewer bytes than this buffered means the modem waits for the
 * host, so the clock is paced. */
#define TX_LOW_WATER 512
/* Limits on command-line text. */
#define IDENT_MAX 20
#define NUMBER_MAX 64
#define PATH_LEN PATH_MAX

#define DC1_XON 0x11
#define DC3_XOFF 0x13

enum call_state {
	CALL_IDLE = 0,
	CALL_DIALLING,
	CALL_CONNECTED,
};

enum answer_mode {
	ANSWER_FAX = 0,
	ANSWER_BUSY,
	ANSWER_NONE,
	ANSWER_NO_CARRIER,
};

struct options {
	const char *link;
	const char *tiff_dir;
	const char *csi;
	const char *expect_number;
	enum answer_mode answer;
	int drop_after_pages;
	bool realtime;
	int verbose;
};

struct line {
	const struct options *opt;
	int master;
	int slave;
	char slave_path[PATH_LEN];
	t31_state_t *modem;

	/* The host's side. */
	uint8_t outq[OUTQ_MAX];
	size_t outq_len;
	bool holding;

	/* Time. */
	bool clock_on;
	uint64_t next_block_ns;
	bool paced;

	/* The call in progress. */
	enum call_state state;
	unsigned int call_no;
	char number[NUMBER_MAX + 1];
	enum answer_mode answer;
	int64_t call_ms;
	int64_t event_ms;
	fax_state_t *fax;
	char tiff_path[PATH_LEN];
	unsigned int next_fax_no;
	int pages;
	int rate, width, rows;	/* bit/s; the last page's pixels and rows */
	bool t30_done;
	int t30_status;
	char remote_ident[IDENT_MAX + 1];
	bool dropped;

	/* Requests from callbacks, carried out after the library returns. */
	bool want_end;
	const char *end_result;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- output to the host ------------------------------------------------- */

static void
host_put(struct line *l, const uint8_t *buf, size_t len)
{
	if (len > sizeof(l->outq) - l->outq_len) {
		log_warn(
		    "output to the host overflows: %zu bytes dropped", len);
		return;
	}
	memcpy(l->outq + l->outq_len, buf, len);
	l->outq_len += len;
}

static int
host_flush(struct line *l)
{
	ssize_t n;

	while (l->outq_len > 0) {
		n = write(l->master, l->outq, l->outq_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EIO)
				return 0;
			return -errno;
		}
		memmove(l->outq, l->outq + n, l->outq_len - (size_t)n);
		l->outq_len -= (size_t)n;
	}
	return 0;
}

static int
at_tx_cb(
    at_state_t *s _unused_, void *user_data, const uint8_t *buf, size_t len)
{
	struct line *l = user_data;

	host_put(l, buf, len);
	return (int)len;
}

/* --- the call ----------------------------------------------------------- */

static const char *
answer_name(enum answer_mode a)
{
	switch (a) {
	case ANSWER_FAX:
		return "fax";
	case ANSWER_BUSY:
		return "busy";
	case ANSWER_NONE:
		return "no answer";
	case ANSWER_NO_CARRIER:
		return "no carrier";
	}
	return "?";
}

static void
json_string(FILE *f, const char *s)
{
	const unsigned char *p;

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void
phase_e_cb(t30_state_t *t30 _unused_, void *user_data, int completion_code)
{
	struct line *l = user_data;

	l->t30_done = true;
	l->t30_status = completion_code;
	log_info("call %u: T.30 ended: %s", l->call_no,
	    t30_completion_code_to_str(completion_code));
	if (l->state == CALL_CONNECTED && !l->want_end) {
		l->want_end = true;
		l->end_result = NULL;
	}
}

static int
phase_d_cb(t30_state_t *t30, void *user_data, int result _unused_)
{
	struct line *l = user_data;
	t30_stats_t st;

	t30_get_transfer_statistics(t30, &st);
	l->pages = st.pages_rx;
	l->rate = st.bit_rate;
	l->width = st.width;
	l->rows = st.length;
	log_info("call %u: page %d received (%dx%d, bad rows %d)", l->call_no,
	    st.pages_rx, st.width, st.length, st.bad_rows);
	if (l->opt->drop_after_pages > 0 &&
	    l->pages >= l->opt->drop_after_pages && !l->want_end) {
		log_info("call %u: dropping the line after %d pages",
		    l->call_no, l->pages);
		l->dropped = true;
		l->want_end = true;
		l->end_result = "DROPPED";
	}
	return T30_ERR_OK;
}

static int
phase_b_cb(t30_state_t *t30, void *user_data, int result _unused_)
{
	struct line *l = user_data;
	const char *id = t30_get_rx_ident(t30);

	if (id != NULL)
		snprintf(l->remote_ident, sizeof(l->remote_ident), "%s", id);
	log_info("call %u: phase B, remote ident \"%s\"", l->call_no,
	    l->remote_ident);
	return T30_ERR_OK;
}

static int
fax_open(struct line *l)
{
	const struct options *o = l->opt;
	t30_state_t *t30;
	int n;

	n = snprintf(l->tiff_path, sizeof(l->tiff_path), "%s/fax-%u.tif",
	    o->tiff_dir, l->next_fax_no);
	if (n < 0 || (size_t)n >= sizeof(l->tiff_path))
		return -ENAMETOOLONG;
	l->fax = fax_init(NULL, false);
	if (l->fax == NULL)
		return -ENOMEM;
	fax_set_transmit_on_idle(l->fax, true);
	t30 = fax_get_t30_state(l->fax);
	t30_set_tx_ident(t30, o->csi);
	t30_set_rx_file(t30, l->tiff_path, -1);
	t30_set_ecm_capability(t30, false);
	t30_set_supported_modems(
	    t30, T30_SUPPORT_V27TER | T30_SUPPORT_V29 | T30_SUPPORT_V17);
	t30_set_supported_compressions(
	    t30, T30_SUPPORT_T4_1D_COMPRESSION | T30_SUPPORT_T4_2D_COMPRESSION);
	t30_set_supported_resolutions(
	    t30, T30_SUPPORT_STANDARD_RESOLUTION | T30_SUPPORT_FINE_RESOLUTION);
	t30_set_supported_image_sizes(t30,
	    T30_SUPPORT_215MM_WIDTH | T30_SUPPORT_A4_LENGTH |
		T30_SUPPORT_US_LETTER_LENGTH | T30_SUPPORT_UNLIMITED_LENGTH);
	t30_set_phase_b_handler(t30, phase_b_cb, l);
	t30_set_phase_d_handler(t30, phase_d_cb, l);
	t30_set_phase_e_handler(t30, phase_e_cb, l);
	if (o->verbose >= 2) {
		span_log_set_level(fax_get_logging_state(l->fax),
		    SPAN_LOG_SHOW_SEVERITY | SPAN_LOG_SHOW_PROTOCOL |
			SPAN_LOG_FLOW);
		span_log_set_tag(fax_get_logging_state(l->fax), "receiver");
		span_log_set_level(t30_get_logging_state(t30),
		    SPAN_LOG_SHOW_SEVERITY | SPAN_LOG_SHOW_PROTOCOL |
			SPAN_LOG_FLOW);
		span_log_set_tag(t30_get_logging_state(t30), "receiver");
	}
	return 0;
}

/* End the call in progress: collect the receiver's results, print the
 * call's line on stdout, and free the receiver. result NULL: judge from
 * T.30's outcome. */
static void
call_end(struct line *l, const char *result)
{
	const char *tiff = NULL;
	const char *status = NULL;
	bool t30_finished = l->t30_done;
	t30_stats_t st;

	if (l->state == CALL_IDLE)
		return;
	if (l->fax != NULL) {
		t30_state_t *t30 = fax_get_t30_state(l->fax);

		/* Closes the TIFF; reports phase E if T.30 was mid-call. */
		t30_terminate(t30);
		t30_get_transfer_statistics(t30, &st);
		l->pages = st.pages_rx;
		if (!l->t30_done)
			l->t30_status = st.current_status;
		status = t30_completion_code_to_str(l->t30_status);
		fax_free(l->fax);
		l->fax = NULL;
		if (l->pages > 0) {
			tiff = l->tiff_path;
			l->next_fax_no++;
		} else if (unlink(l->tiff_path) < 0 && errno != ENOENT) {
			log_warn(
			    "unlink %s: %s", l->tiff_path, strerror(errno));
		}
	}
	if (result == NULL) {
		if (l->dropped)
			result = "DROPPED";
		else if (t30_finished && l->t30_status == T30_ERR_OK &&
			 l->pages > 0)
			result = "OK";
		else if (t30_finished)
			result = "FAILED";
		else
			result = "HANGUP";
	}
	log_info(
	    "call %u: end, result %s, pages %d", l->call_no, result, l->pages);
	printf("{\"call\":%u,\"number\":", l->call_no);
	json_string(stdout, l->number);
	printf(",\"result\":");
	json_string(stdout, result);
	printf(",\"pages\":%d,\"rate\":%d,\"width\":%d,\"rows\":%d,"
	    "\"remote_ident\":", l->pages, l->rate, l->width, l->rows);
	json_string(stdout, l->remote_ident);
	printf(",\"tiff\":");
	json_string(stdout, tiff);
	printf(",\"t30_status\":");
	json_string(stdout, status);
	printf("}\n");
	fflush(stdout);

	l->state = CALL_IDLE;
	l->want_end = false;
	l->end_result = NULL;
}

static void
call_begin(struct line *l, const char *num)
{
	const struct options *o = l->opt;

	if (l->state != CALL_IDLE)
		call_end(l, "HANGUP");
	l->call_no++;
	snprintf(l->number, sizeof(l->number), "%s", num != NULL ? num : "");
	l->state = CALL_DIALLING;
	l->call_ms = 0;
	l->pages = 0;
	l->rate = l->width = l->rows = 0;
	l->t30_done = false;
	l->t30_status = T30_ERR_OK;
	l->remote_ident[0] = '\0';
	l->dropped = false;
	l->answer = o->answer;
	if (o->expect_number != NULL && strcmp(o->expect_number, l->number))
		l->answer = ANSWER_NONE;
	l->event_ms = l->answer == ANSWER_NONE ? NO_ANSWER_MS : RING_MS;
	log_info("call %u: dialling \"%s\", the far end will: %s", l->call_no,
	    l->number, answer_name(l->answer));
}

/* The far end's reaction to the ring, when its time comes. */
static void
call_ring_done(struct line *l)
{
	int ret;

	switch (l->answer) {
	case ANSWER_BUSY:
		t31_call_event(l->modem, AT_CALL_EVENT_BUSY);
		call_end(l, "BUSY");
		return;
	case ANSWER_NONE:
		t31_call_event(l->modem, AT_CALL_EVENT_NO_ANSWER);
		call_end(l, "NO ANSWER");
		return;
	case ANSWER_NO_CARRIER:
		/* Answered, but no fax machine: the modem gives up. */
		at_put_response_code(
		    &l->modem->at_state, AT_RESPONSE_CODE_NO_CARRIER);
		at_set_at_rx_mode(&l->modem->at_state, AT_MODE_ONHOOK_COMMAND);
		call_end(l, "NO CARRIER");
		return;
	case ANSWER_FAX:
		ret = fax_open(l);
		if (ret < 0) {
			log_warn("call %u: receiver: %s", l->call_no,
			    strerror(-ret));
			t31_call_event(l->modem, AT_CALL_EVENT_NO_ANSWER);
			call_end(l, "NO ANSWER");
			return;
		}
		l->state = CALL_CONNECTED;
		log_info("call %u: answered", l->call_no);
		t31_call_event(l->modem, AT_CALL_EVENT_CONNECTED);
		return;
	}
}

static int
modem_control_cb(
    t31_state_t *s _unused_, void *user_data, int op, const char *num)
{
	struct line *l = user_data;

	switch (op) {
	case AT_MODEM_CONTROL_CALL:
		call_begin(l, num);
		break;
	case AT_MODEM_CONTROL_ANSWER:
		/* No calls come in on this line. */
		log_info("answer requested, but no call is ringing");
		break;
	case AT_MODEM_CONTROL_HANGUP:
	case AT_MODEM_CONTROL_ONHOOK:
		if (l->state != CALL_IDLE && !l->want_end) {
			log_info("call %u: the host hangs up", l->call_no);
			l->want_end = true;
			l->end_result = NULL;
		}
		break;
	case AT_MODEM_CONTROL_CTS:
		/* spandsp: num NULL = hold the host's data, else release. */
		if (num == NULL && !l->holding) {
			uint8_t c = DC3_XOFF;

			l->holding = true;
			host_put(l, &c, 1);
			log_debug("flow: XOFF to the host");
		} else if (num != NULL && l->holding) {
			uint8_t c = DC1_XON;

			l->holding = false;
			host_put(l, &c, 1);
			log_debug("flow: XON to the host");
		}
		break;
	default:
		break;
	}
	return 0;
}

/* --- the clock ---------------------------------------------------------- */

static bool
line_waiting_for_host(const struct line *l)
{
	const t31_state_t *m = l->modem;

	switch (m->at_state.at_rx_mode) {
	case AT_MODE_ONHOOK_COMMAND:
	case AT_MODE_OFFHOOK_COMMAND:
		return l->state != CALL_DIALLING;
	case AT_MODE_HDLC:
		return true;
	case AT_MODE_STUFFED:
		return !m->tx.final &&
		       m->tx.in_bytes - m->tx.out_bytes < TX_LOW_WATER;
	default:
		return false;
	}
}

static bool
line_needs_clock(const struct line *l)
{
	return l->state != CALL_IDLE ||
	       l->modem->at_state.at_rx_mode != AT_MODE_ONHOOK_COMMAND;
}

static void
line_block(struct line *l)
{
	int16_t to_far[BLOCK_SAMPLES];
	int16_t to_modem[BLOCK_SAMPLES];
	int n;

	n = t31_tx(l->modem, to_far, BLOCK_SAMPLES);
	if (n < 0)
		n = 0;
	memset(to_far + n, 0, sizeof(to_far) - (size_t)n * sizeof(int16_t));
	n = 0;
	if (l->fax != NULL && l->state == CALL_CONNECTED) {
		fax_rx(l->fax, to_far, BLOCK_SAMPLES);
		n = fax_tx(l->fax, to_modem, BLOCK_SAMPLES);
		if (n < 0)
			n = 0;
	}
	memset(to_modem + n, 0, sizeof(to_modem) - (size_t)n * sizeof(int16_t));
	t31_rx(l->modem, to_modem, BLOCK_SAMPLES);

	if (l->state != CALL_IDLE)
		l->call_ms += BLOCK_MS;
	if (l->want_end) {
		if (l->state == CALL_CONNECTED)
			/* The line goes dead under the modem. */
			t31_call_event(l->modem, AT_CALL_EVENT_HANGUP);
		call_end(l, l->end_result);
	}
	if (l->state == CALL_DIALLING && l->call_ms >= l->event_ms)
		call_ring_done(l);
}

/*
 * Run what is due. Returns the poll timeout in ms: -1 when the clock is
 * stopped, 0 when more blocks are due at once.
 */
static int
line_run(struct line *l)
{
	uint64_t now;
	int i;

	if (!line_needs_clock(l)) {
		l->clock_on = false;
		return -1;
	}
	if (!l->clock_on) {
		l->clock_on = true;
		l->paced = true;
		l->next_block_ns = now_ns();
	}
	for (i = 0; i < FAST_BURST; i++) {
		bool paced;

		if (l->outq_len > OUTQ_STALL)
			return 10; /* The host is not reading: wait. */
		if (!line_needs_clock(l))
			return -1;
		paced = l->opt->realtime || line_waiting_for_host(l);
		now = now_ns();
		if (paced && !l->paced)
			l->next_block_ns = now;
		l->paced = paced;
		if (paced) {
			if (now < l->next_block_ns)
				return (int)((l->next_block_ns - now + 999999) /
					     1000000);
			if (now - l->next_block_ns >
			    (uint64_t)PACE_SLACK_MS * 1000000)
				l->next_block_ns = now;
			l->next_block_ns += (uint64_t)BLOCK_MS * 1000000;
		}
		line_block(l);
	}
	return 0;
}

/* --- the host's input ---------------------------------------------------- */

static int
host_read(struct line *l)
{
	char buf[HOST_CHUNK];
	ssize_t n;
	int i;

	/* Several chunks, each small enough that the modem's transmit buffer
	 * cannot pass its end before it raises hold. */
	for (i = 0; i < 16; i++) {
		if (l->holding || l->outq_len > OUTQ_STALL)
			return 0;
		n = read(l->master, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EIO)
				return 0;
			return -errno;
		}
		if (n == 0)
			return 0;
		t31_at_rx(l->modem, buf, (int)n);
		if (l->want_end) {
			if (l->state == CALL_CONNECTED)
				t31_call_event(l->modem, AT_CALL_EVENT_HANGUP);
			call_end(l, l->end_result);
		}
	}
	return 0;
}

/* --- setup -------------------------------------------------------------- */

static int
pty_open(struct line *l)
{
	struct termios tio;
	const char *name;
	int fd;

	fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (grantpt(fd) < 0 || unlockpt(fd) < 0)
		goto fail;
	name = ptsname(fd);
	if (name == NULL)
		goto fail;
	snprintf(l->slave_path, sizeof(l->slave_path), "%s", name);
	/*
	 * Hold the slave open: the master would otherwise report a hangup
	 * between the host's sessions. Raw from the start, so the modem's
	 * output is never echoed back to it.
	 */
	l->slave = open(l->slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (l->slave < 0)
		goto fail;
	if (tcgetattr(l->slave, &tio) < 0)
		goto fail;
	cfmakeraw(&tio);
	cfsetspeed(&tio, B115200);
	if (tcsetattr(l->slave, TCSANOW, &tio) < 0)
		goto fail;
	l->master = fd;
	return 0;
fail : {
	int err = -errno;

	if (l->slave >= 0)
		close(l->slave);
	l->slave = -1;
	close(fd);
	return err;
}
}

static int
link_create(const char *link, const char *target)
{
	struct stat st;

	if (lstat(link, &st) == 0) {
		if (!S_ISLNK(st.st_mode))
			return -EEXIST;
		if (unlink(link) < 0)
			return -errno;
	}
	if (symlink(target, link) < 0)
		return -errno;
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " --link PATH [options]\n"
	    "A simulated phone line: a Class 1 (T.31) fax modem on a pseudo-terminal,\n"
	    "and a fax machine at the far end that receives into TIFF files.\n"
	    "\n"
	    "  --link PATH            symlink to the pty slave (the host's serial port)\n"
	    "  --tiff-dir DIR         where received faxes go, as fax-N.tif (default .)\n"
	    "  --csi TEXT             the receiver's ident (CSI), up to 20 characters\n"
	    "  --busy                 the far end is busy: the modem reports BUSY\n"
	    "  --no-answer            nobody answers: NO ANSWER\n"
	    "  --no-carrier           answered, but not by a fax: NO CARRIER\n"
	    "  --expect-number NUM    a call to another number is not answered\n"
	    "  --drop-after-pages N   the line drops after N pages are received\n"
	    "  --fast                 simulated time runs fast where nobody waits for\n"
	    "                         the host (default)\n"
	    "  --realtime             simulated time runs at wall-clock pace\n"
	    "  --verbose              log on stderr (twice: spandsp's protocol log too)\n"
	    "  --help                 this text\n"
	    "\n"
	    "Each call's end prints one JSON line on stdout:\n"
	    "  {\"call\":N,\"number\":\"...\",\"result\":\"OK|BUSY|NO ANSWER|NO CARRIER|"
	    "HANGUP|DROPPED|FAILED\",\n"
	    "   \"pages\":P,\"rate\":BPS,\"width\":PIXELS,\"rows\":ROWS,\n"
	    "   \"remote_ident\":\"...\",\"tiff\":\"path\"|null,"
	    "\"t30_status\":\"...\"|null}\n"
	    "(rate: the page data's bit rate; width and rows: the last page's)\n"
	    "SIGTERM or SIGINT ends the line and removes the link.\n");
}

enum {
	OPT_LINK = 256,
	OPT_TIFF_DIR,
	OPT_CSI,
	OPT_BUSY,
	OPT_NO_ANSWER,
	OPT_NO_CARRIER,
	OPT_EXPECT,
	OPT_DROP,
	OPT_FAST,
	OPT_REALTIME,
	OPT_VERBOSE,
	OPT_HELP,
};

static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"link", required_argument, NULL, OPT_LINK},
	    {"tiff-dir", required_argument, NULL, OPT_TIFF_DIR},
	    {"csi", required_argument, NULL, OPT_CSI},
	    {"busy", no_argument, NULL, OPT_BUSY},
	    {"no-answer", no_argument, NULL, OPT_NO_ANSWER},
	    {"no-carrier", no_argument, NULL, OPT_NO_CARRIER},
	    {"expect-number", required_argument, NULL, OPT_EXPECT},
	    {"drop-after-pages", required_argument, NULL, OPT_DROP},
	    {"fast", no_argument, NULL, OPT_FAST},
	    {"realtime", no_argument, NULL, OPT_REALTIME},
	    {"verbose", no_argument, NULL, OPT_VERBOSE},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	char *end;
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LINK:
			o->link = optarg;
			break;
		case OPT_TIFF_DIR:
			o->tiff_dir = optarg;
			break;
		case OPT_CSI:
			if (strlen(optarg) > IDENT_MAX) {
				fprintf(stderr,
				    PROG ": --csi: longer than %d "
					 "characters\n",
				    IDENT_MAX);
				return -EINVAL;
			}
			o->csi = optarg;
			break;
		case OPT_BUSY:
			o->answer = ANSWER_BUSY;
			break;
		case OPT_NO_ANSWER:
			o->answer = ANSWER_NONE;
			break;
		case OPT_NO_CARRIER:
			o->answer = ANSWER_NO_CARRIER;
			break;
		case OPT_EXPECT:
			if (strlen(optarg) > NUMBER_MAX) {
				fprintf(stderr,
				    PROG ": --expect-number: "
					 "longer than %d characters\n",
				    NUMBER_MAX);
				return -EINVAL;
			}
			o->expect_number = optarg;
			break;
		case OPT_DROP:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v < 1 || v > 10000) {
				fprintf(stderr,
				    PROG ": --drop-after-pages: "
					 "not a number from 1 to 10000: %s\n",
				    optarg);
				return -EINVAL;
			}
			o->drop_after_pages = (int)v;
			break;
		case OPT_FAST:
			o->realtime = false;
			break;
		case OPT_REALTIME:
			o->realtime = true;
			break;
		case 'v':
		case OPT_VERBOSE:
			o->verbose++;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(
		    stderr, PROG ": unexpected argument: %s\n", argv[optind]);
		return -EINVAL;
	}
	if (o->link == NULL) {
		fprintf(stderr, PROG ": --link PATH is required\n");
		return -EINVAL;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct options opt = {
	    .tiff_dir = ".",
	    .csi = "",
	};
	struct line *l;
	struct pollfd pfd[2];
	sigset_t mask;
	int sfd, ret, timeout;
	bool done = false;

	if (parse_args(argc, argv, &opt) < 0)
		return 2;
	log_init(PROG, LOG_TARGET_STDERR,
	    opt.verbose > 0 ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, 0);

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		fatal("calloc");
	l->opt = &opt;
	l->master = -1;
	l->slave = -1;
	l->next_fax_no = 1;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fatal("signalfd");

	ret = pty_open(l);
	if (ret < 0)
		fatalx("pseudo-terminal: %s", strerror(-ret));
	l->modem = t31_init(NULL, at_tx_cb, l, modem_control_cb, l, NULL, NULL);
	if (l->modem == NULL)
		fatalx("t31_init failed");
	if (opt.verbose >= 2) {
		span_log_set_level(t31_get_logging_state(l->modem),
		    SPAN_LOG_SHOW_SEVERITY | SPAN_LOG_SHOW_PROTOCOL |
			SPAN_LOG_FLOW);
		span_log_set_tag(t31_get_logging_state(l->modem), "modem");
	}
	ret = link_create(opt.link, l->slave_path);
	if (ret < 0)
		fatalx("--link %s: %s", opt.link, strerror(-ret));
	log_info("line up: %s -> %s, %s time, receiver CSI \"%s\"", opt.link,
	    l->slave_path, opt.realtime ? "real" : "fast", opt.csi);

	while (!done) {
		timeout = line_run(l);
		ret = host_flush(l);
		if (ret < 0)
			fatalx("write to the pty: %s", strerror(-ret));
		pfd[0].fd = l->master;
		pfd[0].events = 0;
		if (!l->holding && l->outq_len <= OUTQ_STALL)
			pfd[0].events |= POLLIN;
		if (l->outq_len > 0) {
			pfd[0].events |= POLLOUT;
			if (timeout < 0 || timeout > 10)
				timeout = 10; /* EIO: no reader yet */
		}
		pfd[0].revents = 0;
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		if (poll(pfd, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				log_info(
				    "signal %u: the line closes", si.ssi_signo);
				done = true;
			}
		}
		if (pfd[0].revents & POLLIN) {
			ret = host_read(l);
			if (ret < 0)
				fatalx("read from the pty: %s", strerror(-ret));
		}
	}

	if (l->state != CALL_IDLE)
		call_end(l, "HANGUP");
	(void)host_flush(l);
	if (unlink(opt.link) < 0 && errno != ENOENT)
		log_warn("unlink %s: %s", opt.link, strerror(errno));
#if defined(SPANDSP_RELEASE_DATE) && SPANDSP_RELEASE_DATE <= 20110122
	/* spandsp 0.0.6's t31_release() leaves the modem's receive queue
	 * allocated; free it here. */
	queue_free(l->modem->rx_queue);
	l->modem->rx_queue = NULL;
#endif
	t31_free(l->modem);
	close(l->master);
	close(l->slave);
	close(sfd);
	free(l);
	return 0;
}
