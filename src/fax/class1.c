/* SPDX-License-Identifier: ISC */
/* class1.c -- the sending side of T.30 over a Class 1 (T.31) fax modem */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "fax/class1.h"

#define DLE 0x10
#define ETX 0x03
#define XON 0x11
#define XOFF 0x13
#define CAN 0x18

/* HDLC frames (T.30 5.3): address, control (final bit), FCF. The FCF
 * octets are as the modem gives them (first bit on the line in the MSB);
 * the X bit (LSB here) is set in what we send, as the station that
 * received the DIS. */
#define HDLC_ADDR 0xff
#define HDLC_CTL 0x03
#define HDLC_CTL_FINAL 0x13
#define FCF_X 0x01
#define FCF_DIS 0x80
#define FCF_CSI 0x40
#define FCF_NSF 0x20
#define FCF_DCS 0x82
#define FCF_TSI 0x42
#define FCF_CFR 0x84
#define FCF_FTT 0x44
#define FCF_EOP 0x2e
#define FCF_MPS 0x4e
#define FCF_MCF 0x8c
#define FCF_RTP 0xcc
#define FCF_RTN 0x4c
#define FCF_PIP 0xac
#define FCF_PIN 0x2c
#define FCF_CRP 0x1a
#define FCF_DCN 0xfa

/* DIS/DCS bits (T.30 table 2): bit n is bit (n-1)%8 of FIF octet (n-1)/8. */
#define B10_RX 0x02	/* octet 1 */
#define B11 0x04
#define B12 0x08
#define B13 0x10
#define B14 0x20
#define B15_FINE 0x40
#define B16_2D 0x80
#define SCAN_MASK 0x70	/* octet 2, bits 21-23 */
#define SCAN_0MS 0x70
#define SCAN_40MS 0x40	/* bit 23 */

/* Output buffer: commands, stuffed frames, stuffed page chunks. */
#define OUT_MAX 1024
/* Page or TCF bytes stuffed into the output buffer at a time. */
#define DATA_CHUNK 256
/* No progress writing page data for this long: give up. */
#define DATA_STALL_MS 30000
/* After DLE ETX, the modem drains its buffer, then OK. */
#define DATA_END_MS 60000
/* A frame in progress after CONNECT. */
#define FRAME_MS 5000
/* After aborting a +FRH. */
#define ABORT_MS 2000
/* Frames received for one response before giving up. */
#define RX_FRAMES_MAX 8
/* Repeats of DCS/TCF, and of the post-page command, without response. */
#define REPEAT_MAX 3

enum state {
	S_NEW,
	S_INIT,		/* init string sent */
	S_ECHO,		/* ATE0 */
	S_FCLASS,	/* AT+FCLASS=1 */
	S_DIAL,		/* ATD */
	S_RX_CONNECT,	/* AT+FRH=3 sent */
	S_RX_FRAME,	/* HDLC data arriving */
	S_RX_STATUS,	/* after DLE ETX: OK or ERROR */
	S_RX_ABORT,	/* +FRH aborted, waiting for the modem */
	S_TX_CONNECT,	/* AT+FTH=3 sent */
	S_TX_FRAME,	/* a frame sent: CONNECT (more) or OK (final) */
	S_FTS,		/* AT+FTS=8 */
	S_DATA_CONNECT,	/* AT+FTM sent */
	S_DATA,		/* TCF or page data going out */
	S_DATA_OK,	/* DLE ETX sent */
	S_HANGUP,	/* ATH0 */
	S_DONE,
};

enum rx_for { RX_DIS, RX_TRAIN, RX_POSTPAGE };
enum tx_for { TX_DCS, TX_POSTPAGE, TX_DCN };
enum fts_then { THEN_TCF, THEN_PAGE, THEN_POSTPAGE };

enum family { V27, V29, V17 };

static const struct rate {
	unsigned bps;
	enum family fam;
	int mod_long;	/* +FTM for TCF */
	int mod_short;	/* +FTM for image data */
	uint8_t dcs;	/* bits 11-14 in FIF octet 1 */
} rates[] = {
	{ 14400, V17, 145, 146, B14 },
	{ 12000, V17, 121, 122, B12 | B14 },
	{ 9600, V17, 97, 98, B11 | B14 },
	{ 9600, V29, 96, 96, B11 },
	{ 7200, V17, 73, 74, B11 | B12 | B14 },
	{ 7200, V29, 72, 72, B11 | B12 },
	{ 4800, V27, 48, 48, B12 },
	{ 2400, V27, 24, 24, 0 },
};

struct class1_call {
	enum state state;
	enum class1_result result;
	char reason[96];

	/* parameters */
	char dial[CLASS1_DIAL_MAX + 1];
	char init[CLASS1_INIT_MAX + 1];
	char tsi[CLASS1_IDENT_MAX + 1];
	char expect[CLASS1_IDENT_MAX + 1];
	bool have_expect;
	const struct class1_page *pages;
	size_t n_pages;
	unsigned max_bps;

	/* progress */
	uint64_t deadline;
	uint64_t rx_deadline;	/* T1 or T4 for the current response */
	enum rx_for rx_for;
	enum tx_for tx_for;
	enum fts_then fts_then;
	bool data_tcf;
	bool ending;		/* in phase E: errors end the call */
	unsigned rx_frames;
	unsigned repeats;
	unsigned garbage;
	char remote_csi[CLASS1_IDENT_MAX + 1];
	bool have_dis;
	uint8_t dis[CLASS1_FRAME_MAX];
	size_t dis_len;
	int rate;		/* index in rates[], -1 none */
	bool use_2d;
	uint8_t scan;
	size_t page;		/* index of the page being sent */
	size_t pages_sent;
	unsigned rtn;		/* RTNs for the current page */
	bool dialed;		/* ATD went to the modem */
	bool carrier;		/* a DIS or CSI came from the remote */
	bool in_pages;		/* the first +FTM for page data went out */

	/* frames to send with +FTH */
	uint8_t tx[2][CLASS1_IDENT_MAX + 8];
	size_t tx_len[2];
	size_t tx_n, tx_i;

	/* input parsing */
	bool hdlc;		/* receiving HDLC data, else result lines */
	bool skip_lf;
	char line[CLASS1_LINE_MAX + 1];
	size_t line_len;
	bool line_over;
	uint8_t frame[CLASS1_FRAME_MAX];
	size_t frame_len;
	bool frame_over;
	bool dle;

	/* output */
	uint8_t out[OUT_MAX];
	size_t out_pos, out_len;
	bool held;		/* XOFF during page data */
	const uint8_t *src;	/* NULL: zeros (TCF) */
	size_t src_len, src_pos;
	bool streaming;
};

#define CASE(x)                                                                \
	case x:                                                                \
		return #x

static const char *
strstate(enum state s)
{
	switch (s) {
		CASE(S_NEW);
		CASE(S_INIT);
		CASE(S_ECHO);
		CASE(S_FCLASS);
		CASE(S_DIAL);
		CASE(S_RX_CONNECT);
		CASE(S_RX_FRAME);
		CASE(S_RX_STATUS);
		CASE(S_RX_ABORT);
		CASE(S_TX_CONNECT);
		CASE(S_TX_FRAME);
		CASE(S_FTS);
		CASE(S_DATA_CONNECT);
		CASE(S_DATA);
		CASE(S_DATA_OK);
		CASE(S_HANGUP);
		CASE(S_DONE);
	}
	return "?";
}

const char *
class1_strresult(enum class1_result r)
{
	switch (r) {
		CASE(CLASS1_RUNNING);
		CASE(CLASS1_OK);
		CASE(CLASS1_BUSY);
		CASE(CLASS1_NO_ANSWER);
		CASE(CLASS1_NO_CARRIER);
		CASE(CLASS1_NO_DIALTONE);
		CASE(CLASS1_WRONG_RECIPIENT);
		CASE(CLASS1_TRAINING_FAILED);
		CASE(CLASS1_PAGE_REJECTED);
		CASE(CLASS1_PROTOCOL_ERROR);
		CASE(CLASS1_TIMEOUT);
		CASE(CLASS1_MODEM_ERROR);
	}
	return "?";
}
#undef CASE

const char *
class1_strstate(const struct class1_call *c)
{
	return strstate(c->state);
}

/* --- output ------------------------------------------------------------- */

static void
out_bytes(struct class1_call *c, const void *p, size_t n)
{
	if (c->out_pos > 0 && c->out_pos == c->out_len)
		c->out_pos = c->out_len = 0;
	if (n > OUT_MAX - c->out_len) {	/* cannot happen: sized above */
		n = OUT_MAX - c->out_len;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

static void
out_cmd(struct class1_call *c, const char *cmd)
{
	out_bytes(c, cmd, strlen(cmd));
	out_bytes(c, "\r", 1);
}

static void
out_stuffed(struct class1_call *c, const uint8_t *p, size_t n)
{
	static const uint8_t dle = DLE;

	for (size_t i = 0; i < n; i++) {
		out_bytes(c, &p[i], 1);
		if (p[i] == DLE)
			out_bytes(c, &dle, 1);
	}
}

static void
out_dle_etx(struct class1_call *c)
{
	static const uint8_t end[2] = { DLE, ETX };

	out_bytes(c, end, 2);
}

/* Refill the output buffer with stuffed page (or TCF) bytes. */
static void
refill(struct class1_call *c)
{
	size_t n = 0;

	if (c->out_pos == c->out_len)
		c->out_pos = c->out_len = 0;
	while (c->src_pos < c->src_len && n < DATA_CHUNK &&
	    c->out_len + 2 <= OUT_MAX) {
		uint8_t b = c->src ? c->src[c->src_pos] : 0;

		out_stuffed(c, &b, 1);
		c->src_pos++;
		n++;
	}
	if (c->src_pos == c->src_len && c->out_len + 2 <= OUT_MAX) {
		out_dle_etx(c);
		c->streaming = false;
	}
}

/* --- states ------------------------------------------------------------- */

static void
enter_state(struct class1_call *c, enum state s, uint64_t deadline)
{
	c->state = s;
	c->deadline = deadline;
	if (s != S_DATA && s != S_DATA_OK)
		c->held = false;
}

static void
set_reason(struct class1_call *c, const char *reason)
{
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

static void
hangup(struct class1_call *c, uint64_t now)
{
	out_cmd(c, "ATH0");
	enter_state(c, S_HANGUP, now + CLASS1_CMD_MS);
}

/* The call's result and why: the first one noted stays. */
static void
note_result(struct class1_call *c, enum class1_result r, const char *reason)
{
	if (c->result == CLASS1_RUNNING) {
		c->result = r;
		set_reason(c, reason);
	}
}

static void
finish(struct class1_call *c)
{
	note_result(c, CLASS1_PROTOCOL_ERROR, "call ended without a result");
	c->streaming = false;
	c->hdlc = false;
	enter_state(c, S_DONE, UINT64_MAX);
}

/* The call failed: note why (the first reason stays), then hang up. */
static void
fail(struct class1_call *c, enum class1_result r, const char *reason,
    uint64_t now)
{
	note_result(c, r, reason);
	if (c->state == S_HANGUP || c->state == S_DONE) {
		finish(c);
		return;
	}
	if (c->state == S_DATA || c->state == S_DATA_OK) {
		/* Whatever was queued is page data: end it first. */
		c->streaming = false;
		c->out_pos = c->out_len = 0;
		out_dle_etx(c);
	} else if (c->state == S_RX_CONNECT || c->state == S_RX_FRAME ||
	    c->state == S_RX_STATUS) {
		static const uint8_t can = CAN;

		out_bytes(c, &can, 1);
	}
	c->hdlc = false;
	hangup(c, now);
}

static void
garbage(struct class1_call *c, size_t n, const char *what, uint64_t now)
{
	c->garbage += (unsigned)MIN(n, (size_t)CLASS1_GARBAGE_MAX);
	if (c->result == CLASS1_RUNNING)
		set_reason(c, what);
	if (c->garbage > CLASS1_GARBAGE_MAX)
		fail(c, CLASS1_PROTOCOL_ERROR, "too much garbage from the modem",
		    now);
}

/* Receive the next frame: +FRH=3, or straight on after ATD's CONNECT. */
static void
rx_next(struct class1_call *c, uint64_t now)
{
	if (++c->rx_frames > RX_FRAMES_MAX) {
		fail(c, CLASS1_PROTOCOL_ERROR, "too many frames without a "
		    "response", now);
		return;
	}
	out_cmd(c, "AT+FRH=3");
	enter_state(c, S_RX_CONNECT, c->rx_deadline);
}

static void
rx_begin(struct class1_call *c, enum rx_for what, uint64_t now)
{
	c->rx_for = what;
	c->rx_frames = 0;
	c->rx_deadline = now + (what == RX_DIS ? CLASS1_T1_MS : CLASS1_T4_MS);
	rx_next(c, now);
}

static void
fts(struct class1_call *c, enum fts_then then, uint64_t now)
{
	c->fts_then = then;
	out_cmd(c, "AT+FTS=8");
	enter_state(c, S_FTS, now + CLASS1_CMD_MS);
}

static size_t
frame_put(uint8_t *f, uint8_t ctl, uint8_t fcf, const uint8_t *fif,
    size_t n)
{
	f[0] = HDLC_ADDR;
	f[1] = ctl;
	f[2] = fcf;
	if (n > 0)
		memcpy(f + 3, fif, n);
	return 3 + n;
}

static void
tx_begin(struct class1_call *c, enum tx_for what, uint64_t now)
{
	c->tx_for = what;
	c->tx_i = 0;
	out_cmd(c, "AT+FTH=3");
	enter_state(c, S_TX_CONNECT, now + CLASS1_CMD_MS);
}

static void
send_dcs(struct class1_call *c, uint64_t now)
{
	const struct rate *r = &rates[c->rate];
	uint8_t ident[CLASS1_IDENT_MAX], fif[3];
	size_t n = strlen(c->tsi);

	/* The ident right-padded with spaces, sent last character first. */
	for (size_t i = 0; i < CLASS1_IDENT_MAX; i++) {
		size_t j = CLASS1_IDENT_MAX - 1 - i;

		ident[i] = j < n ? (uint8_t)c->tsi[j] : ' ';
	}
	fif[0] = 0;
	fif[1] = B10_RX | r->dcs | B15_FINE | (c->use_2d ? B16_2D : 0);
	fif[2] = c->scan;
	c->tx_len[0] = frame_put(c->tx[0], HDLC_CTL, FCF_TSI | FCF_X, ident,
	    sizeof(ident));
	c->tx_len[1] = frame_put(c->tx[1], HDLC_CTL_FINAL, FCF_DCS | FCF_X,
	    fif, sizeof(fif));
	c->tx_n = 2;
	tx_begin(c, TX_DCS, now);
}

static void
send_postpage(struct class1_call *c, uint64_t now)
{
	uint8_t fcf = c->page + 1 < c->n_pages ? FCF_MPS : FCF_EOP;

	c->tx_len[0] = frame_put(c->tx[0], HDLC_CTL_FINAL, fcf | FCF_X, NULL,
	    0);
	c->tx_n = 1;
	tx_begin(c, TX_POSTPAGE, now);
}

/* Phase E: DCN, then ATH0. */
static void
disconnect(struct class1_call *c, enum class1_result r, const char *reason,
    uint64_t now)
{
	note_result(c, r, reason);
	c->ending = true;
	c->tx_len[0] = frame_put(c->tx[0], HDLC_CTL_FINAL, FCF_DCN | FCF_X,
	    NULL, 0);
	c->tx_n = 1;
	tx_begin(c, TX_DCN, now);
}

/* The best rate both ends support at or under LIMIT bit/s; -1 if none. */
static int
pick_rate(const struct class1_call *c, unsigned limit)
{
	uint8_t o1 = c->dis[1];
	bool v29 = o1 & B11;
	bool v27_4800 = o1 & B12;
	bool v17 = (o1 & (B11 | B12 | B13 | B14)) == (B11 | B12 | B14);

	for (size_t i = 0; i < ELEMENTSOF(rates); i++) {
		const struct rate *r = &rates[i];
		bool ok;

		if (r->bps > limit || r->bps > c->max_bps)
			continue;
		switch (r->fam) {
		case V17:
			ok = v17;
			break;
		case V29:
			ok = v29;
			break;
		case V27:
			ok = r->bps == 2400 || v27_4800;
			break;
		default:
			ok = false;
			break;
		}
		if (ok)
			return (int)i;
	}
	return -1;
}

static bool
ident_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == ' ')
			a++;
		while (*b == ' ')
			b++;
		if (*a != *b)
			return false;
		if (*a == '\0')
			return true;
		a++;
		b++;
	}
}

/* The DIS is in: check the remote, choose the speed, send TSI + DCS. */
static void
after_dis(struct class1_call *c, uint64_t now)
{
	uint8_t o1, o2;

	if (c->have_expect && !ident_eq(c->remote_csi, c->expect)) {
		char why[96];

		snprintf(why, sizeof(why), "remote CSI \"%s\", expected \"%s\"",
		    c->remote_csi, c->expect);
		disconnect(c, CLASS1_WRONG_RECIPIENT, why, now);
		return;
	}
	if (c->dis_len < 3) {
		disconnect(c, CLASS1_PROTOCOL_ERROR, "DIS too short", now);
		return;
	}
	o1 = c->dis[1];
	o2 = c->dis[2];
	if (!(o1 & B10_RX)) {
		disconnect(c, CLASS1_PROTOCOL_ERROR, "remote cannot receive",
		    now);
		return;
	}
	if (!(o1 & B15_FINE)) {
		disconnect(c, CLASS1_PROTOCOL_ERROR,
		    "remote lacks fine resolution", now);
		return;
	}
	c->rate = pick_rate(c, UINT32_MAX);
	if (c->rate < 0) {
		disconnect(c, CLASS1_TRAINING_FAILED, "no common modem", now);
		return;
	}
	c->use_2d = (o1 & B16_2D) != 0;
	for (size_t i = 0; i < c->n_pages; i++)
		if (c->pages[i].t4_2d == NULL || c->pages[i].len_2d == 0)
			c->use_2d = false;
	switch (o2 & SCAN_MASK) {
	case SCAN_0MS:
		c->scan = SCAN_0MS;
		break;
	case SCAN_40MS:
	case 0x50:	/* 40 ms, half at fine resolution */
		c->scan = SCAN_40MS;
		break;
	default:
		c->scan = 0;	/* 20 ms */
		break;
	}
	c->repeats = 0;
	send_dcs(c, now);
}

/* Step down one speed after FTT (or before a retrain after RTN). */
static bool
fall_back(struct class1_call *c)
{
	int r = pick_rate(c, rates[c->rate].bps - 1);

	if (r < 0)
		return false;
	c->rate = r;
	return true;
}

static void
got_frame(struct class1_call *c, const uint8_t *f, size_t n, uint64_t now)
{
	bool final;
	uint8_t fcf;

	if (n < 5 || f[0] != HDLC_ADDR ||
	    (f[1] != HDLC_CTL && f[1] != HDLC_CTL_FINAL)) {
		garbage(c, n, "malformed HDLC frame", now);
		if (c->state != S_HANGUP && c->state != S_DONE)
			rx_next(c, now);
		return;
	}
	n -= 2;	/* the FCS, checked by the modem */
	final = f[1] == HDLC_CTL_FINAL;
	fcf = f[2] & (uint8_t)~FCF_X;
	if (fcf == FCF_DCN) {
		fail(c, CLASS1_PROTOCOL_ERROR, "remote sent DCN", now);
		return;
	}
	if (fcf == FCF_CSI) {
		size_t len = MIN(n - 3, (size_t)CLASS1_IDENT_MAX), k = 0;
		char s[CLASS1_IDENT_MAX + 1];

		for (size_t i = 0; i < len; i++) {
			uint8_t ch = f[3 + len - 1 - i];

			s[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
		}
		while (k > 0 && s[k - 1] == ' ')
			k--;
		s[k] = '\0';
		size_t lead = strspn(s, " ");
		memmove(c->remote_csi, s + lead, k - lead + 1);
		c->carrier = true;
	} else if (fcf == FCF_DIS) {
		c->dis_len = n - 3;
		memcpy(c->dis, f + 3, c->dis_len);
		c->have_dis = true;
		c->carrier = true;
	}

	switch (c->rx_for) {
	case RX_DIS:
		if (final && c->have_dis)
			after_dis(c, now);
		else
			rx_next(c, now);
		return;
	case RX_TRAIN:
		if (fcf == FCF_CFR) {
			c->repeats = 0;
			fts(c, THEN_PAGE, now);
		} else if (fcf == FCF_FTT) {
			c->repeats = 0;
			if (!fall_back(c)) {
				disconnect(c, CLASS1_TRAINING_FAILED,
				    "FTT at 2400 bit/s", now);
				return;
			}
			send_dcs(c, now);
		} else if (final && fcf == FCF_DIS) {
			/* The remote did not get our DCS: repeat it. */
			if (++c->repeats > REPEAT_MAX) {
				disconnect(c, CLASS1_PROTOCOL_ERROR,
				    "DIS repeated after DCS", now);
				return;
			}
			send_dcs(c, now);
		} else if (final) {
			disconnect(c, CLASS1_PROTOCOL_ERROR,
			    "unexpected response to training", now);
		} else {
			rx_next(c, now);
		}
		return;
	case RX_POSTPAGE:
		if (fcf == FCF_MCF || fcf == FCF_RTP) {
			c->pages_sent++;
			c->page++;
			c->rtn = 0;
			c->repeats = 0;
			if (c->page == c->n_pages)
				disconnect(c, CLASS1_OK, "sent", now);
			else if (fcf == FCF_RTP)
				send_dcs(c, now);
			else
				fts(c, THEN_PAGE, now);
		} else if (fcf == FCF_RTN) {
			c->repeats = 0;
			if (++c->rtn > 1) {
				disconnect(c, CLASS1_PAGE_REJECTED,
				    "RTN after a retrain", now);
				return;
			}
			(void)fall_back(c);
			send_dcs(c, now);
		} else if (fcf == FCF_CRP) {
			if (++c->repeats > REPEAT_MAX) {
				disconnect(c, CLASS1_TIMEOUT,
				    "post-page command not confirmed", now);
				return;
			}
			send_postpage(c, now);
		} else if (fcf == FCF_PIN || fcf == FCF_PIP) {
			disconnect(c, CLASS1_PROTOCOL_ERROR,
			    "procedure interrupt", now);
		} else if (final) {
			disconnect(c, CLASS1_PROTOCOL_ERROR,
			    "unexpected response to the page", now);
		} else {
			rx_next(c, now);
		}
		return;
	}
}

/* Nothing came in time (or the modem gave up) for the response awaited. */
static void
rx_missed(struct class1_call *c, uint64_t now)
{
	switch (c->rx_for) {
	case RX_DIS:
		fail(c, CLASS1_TIMEOUT, "no DIS from the remote (T1)", now);
		return;
	case RX_TRAIN:
		if (++c->repeats > REPEAT_MAX) {
			disconnect(c, CLASS1_TIMEOUT, "no response to DCS", now);
			return;
		}
		send_dcs(c, now);
		return;
	case RX_POSTPAGE:
		if (++c->repeats > REPEAT_MAX) {
			disconnect(c, CLASS1_TIMEOUT,
			    "no response to the post-page command", now);
			return;
		}
		send_postpage(c, now);
		return;
	}
}

static void
data_begin(struct class1_call *c, uint64_t now)
{
	if (c->data_tcf) {
		c->src = NULL;
		c->src_len = (size_t)rates[c->rate].bps * 3 / 16;
	} else if (c->use_2d) {
		c->src = c->pages[c->page].t4_2d;
		c->src_len = c->pages[c->page].len_2d;
	} else {
		c->src = c->pages[c->page].t4_1d;
		c->src_len = c->pages[c->page].len_1d;
	}
	c->src_pos = 0;
	c->streaming = true;
	c->held = false;
	enter_state(c, S_DATA, now + DATA_STALL_MS);
}

static void
ftm(struct class1_call *c, bool tcf, uint64_t now)
{
	char cmd[16];
	const struct rate *r = &rates[c->rate];

	c->data_tcf = tcf;
	if (!tcf)
		c->in_pages = true;
	snprintf(cmd, sizeof(cmd), "AT+FTM=%d", tcf ? r->mod_long :
	    r->mod_short);
	out_cmd(c, cmd);
	enter_state(c, S_DATA_CONNECT, now + CLASS1_CMD_MS);
}

/* A result line from the modem, in the current state. */
static void
got_line(struct class1_call *c, const char *l, uint64_t now)
{
	bool ok = strcmp(l, "OK") == 0;
	bool connect = strcmp(l, "CONNECT") == 0;

	if (strncmp(l, "AT", 2) == 0)
		return;	/* command echo */
	switch (c->state) {
	case S_NEW:
	case S_DONE:
		return;
	case S_INIT:
	case S_ECHO:
	case S_FCLASS:
		if (!ok) {
			fail(c, CLASS1_MODEM_ERROR, c->state == S_FCLASS ?
			    "modem refused AT+FCLASS=1" : "modem refused init",
			    now);
			return;
		}
		if (c->state == S_INIT) {
			out_cmd(c, "ATE0");
			enter_state(c, S_ECHO, now + CLASS1_CMD_MS);
		} else if (c->state == S_ECHO) {
			out_cmd(c, "AT+FCLASS=1");
			enter_state(c, S_FCLASS, now + CLASS1_CMD_MS);
		} else {
			char cmd[CLASS1_DIAL_MAX + 8];

			snprintf(cmd, sizeof(cmd), "ATD%s", c->dial);
			out_cmd(c, cmd);
			c->dialed = true;
			enter_state(c, S_DIAL, now + CLASS1_DIAL_MS);
		}
		return;
	case S_DIAL:
		if (connect) {
			/* T.31: the CONNECT of ATD stands for the first
			 * +FRH=3. */
			c->rx_for = RX_DIS;
			c->rx_frames = 1;
			c->rx_deadline = now + CLASS1_T1_MS;
			c->hdlc = true;
			c->frame_len = 0;
			c->frame_over = c->dle = false;
			enter_state(c, S_RX_FRAME, c->rx_deadline);
		} else if (strcmp(l, "BUSY") == 0) {
			c->result = CLASS1_BUSY;
			set_reason(c, "busy");
			finish(c);
		} else if (strcmp(l, "NO ANSWER") == 0) {
			c->result = CLASS1_NO_ANSWER;
			set_reason(c, "no answer");
			finish(c);
		} else if (strcmp(l, "NO CARRIER") == 0) {
			c->result = CLASS1_NO_CARRIER;
			set_reason(c, "no carrier");
			finish(c);
		} else if (strcmp(l, "NO DIALTONE") == 0 ||
		    strcmp(l, "NO DIAL TONE") == 0) {
			c->result = CLASS1_NO_DIALTONE;
			set_reason(c, "no dial tone");
			finish(c);
		} else if (strcmp(l, "ERROR") == 0) {
			c->result = CLASS1_MODEM_ERROR;
			set_reason(c, "modem refused ATD");
			finish(c);
		} else {
			garbage(c, strlen(l), "unknown line while dialling",
			    now);
		}
		return;
	case S_RX_CONNECT:
		if (connect) {
			c->hdlc = true;
			c->frame_len = 0;
			c->frame_over = c->dle = false;
			enter_state(c, S_RX_FRAME, now + FRAME_MS);
		} else if (strcmp(l, "NO CARRIER") == 0 ||
		    strcmp(l, "+FCERROR") == 0 || strcmp(l, "ERROR") == 0) {
			/* No V.21 carrier yet, or the wrong one: listen
			 * again while the timer runs. */
			if (now >= c->rx_deadline)
				rx_missed(c, now);
			else {
				c->rx_frames--;
				rx_next(c, now);
			}
		} else {
			garbage(c, strlen(l), "unknown line before a frame",
			    now);
		}
		return;
	case S_RX_FRAME:
		return;	/* cannot happen: HDLC data is parsed apart */
	case S_RX_STATUS:
		if (ok) {
			if (c->frame_over) {
				garbage(c, c->frame_len, "frame too long",
				    now);
				if (c->state == S_RX_STATUS)
					rx_next(c, now);
				return;
			}
			got_frame(c, c->frame, c->frame_len, now);
		} else if (strcmp(l, "ERROR") == 0 ||
		    strcmp(l, "NO CARRIER") == 0) {
			garbage(c, c->frame_len, "frame with a bad FCS", now);
			if (c->state == S_RX_STATUS)
				rx_next(c, now);
		} else {
			garbage(c, strlen(l), "unknown line after a frame",
			    now);
		}
		return;
	case S_RX_ABORT:
		rx_missed(c, now);
		return;
	case S_TX_CONNECT:
	case S_TX_FRAME:
		if (connect && (c->state == S_TX_CONNECT ||
		    c->tx_i + 1 < c->tx_n)) {
			if (c->state == S_TX_FRAME)
				c->tx_i++;
			out_stuffed(c, c->tx[c->tx_i], c->tx_len[c->tx_i]);
			out_dle_etx(c);
			enter_state(c, S_TX_FRAME, now + CLASS1_CMD_MS);
		} else if (ok && c->state == S_TX_FRAME &&
		    c->tx_i + 1 == c->tx_n) {
			switch (c->tx_for) {
			case TX_DCS:
				fts(c, THEN_TCF, now);
				break;
			case TX_POSTPAGE:
				rx_begin(c, RX_POSTPAGE, now);
				break;
			case TX_DCN:
				hangup(c, now);
				break;
			}
		} else if (c->ending) {
			hangup(c, now);
		} else {
			fail(c, CLASS1_MODEM_ERROR, "modem failed sending a "
			    "frame", now);
		}
		return;
	case S_FTS:
		if (!ok) {
			fail(c, CLASS1_MODEM_ERROR, "modem refused AT+FTS", now);
			return;
		}
		switch (c->fts_then) {
		case THEN_TCF:
			ftm(c, true, now);
			break;
		case THEN_PAGE:
			ftm(c, false, now);
			break;
		case THEN_POSTPAGE:
			send_postpage(c, now);
			break;
		}
		return;
	case S_DATA_CONNECT:
		if (connect)
			data_begin(c, now);
		else
			fail(c, CLASS1_MODEM_ERROR, "modem refused AT+FTM", now);
		return;
	case S_DATA:
		garbage(c, strlen(l), "line during page data", now);
		return;
	case S_DATA_OK:
		if (!ok) {
			fail(c, CLASS1_MODEM_ERROR, "modem failed sending data",
			    now);
			return;
		}
		if (c->data_tcf)
			rx_begin(c, RX_TRAIN, now);
		else
			fts(c, THEN_POSTPAGE, now);
		return;
	case S_HANGUP:
		finish(c);
		return;
	}
}

/* --- input -------------------------------------------------------------- */

static void
input_line_byte(struct class1_call *c, uint8_t b, uint64_t now)
{
	if (b == XON || b == XOFF) {
		if (c->state == S_DATA || c->state == S_DATA_OK)
			c->held = b == XOFF;
		return;
	}
	if (b == '\r' || b == '\n') {
		if (b == '\r')
			c->skip_lf = true;
		if (c->line_over) {
			garbage(c, CLASS1_LINE_MAX, "overlong line from the "
			    "modem", now);
		} else if (c->line_len > 0) {
			c->line[c->line_len] = '\0';
			c->line_len = 0;
			got_line(c, c->line, now);
		}
		c->line_len = 0;
		c->line_over = false;
		return;
	}
	if (c->line_len < CLASS1_LINE_MAX)
		c->line[c->line_len++] = (char)b;
	else
		c->line_over = true;
}

static void
input_hdlc_byte(struct class1_call *c, uint8_t b, uint64_t now)
{
	if (c->dle) {
		c->dle = false;
		if (b == ETX) {
			c->hdlc = false;
			c->line_len = 0;
			c->line_over = false;
			enter_state(c, S_RX_STATUS, now + CLASS1_CMD_MS);
			return;
		}
		if (b != DLE)
			return;	/* other DLE codes carry nothing here */
	} else if (b == DLE) {
		c->dle = true;
		return;
	}
	if (c->frame_len < CLASS1_FRAME_MAX)
		c->frame[c->frame_len++] = b;
	else
		c->frame_over = true;
}

int
class1_input(struct class1_call *c, const uint8_t *buf, size_t len,
    uint64_t now_ms)
{
	if (c->state == S_NEW)
		return -EINVAL;
	for (size_t i = 0; i < len && c->state != S_DONE; i++) {
		uint8_t b = buf[i];

		if (c->skip_lf) {
			c->skip_lf = false;
			if (b == '\n')
				continue;
		}
		if (c->hdlc)
			input_hdlc_byte(c, b, now_ms);
		else
			input_line_byte(c, b, now_ms);
	}
	return 0;
}

void
class1_output(struct class1_call *c, const uint8_t **ret_buf,
    size_t *ret_len)
{
	if (c->held && (c->state == S_DATA || c->state == S_DATA_OK)) {
		*ret_buf = c->out;
		*ret_len = 0;
		return;
	}
	if (c->state == S_DATA && c->streaming && c->out_pos == c->out_len)
		refill(c);
	*ret_buf = c->out + c->out_pos;
	*ret_len = c->out_len - c->out_pos;
}

void
class1_consume(struct class1_call *c, size_t n, uint64_t now_ms)
{
	n = MIN(n, c->out_len - c->out_pos);
	c->out_pos += n;
	if (c->out_pos == c->out_len)
		c->out_pos = c->out_len = 0;
	if (c->state == S_DATA && n > 0) {
		c->deadline = now_ms + DATA_STALL_MS;
		if (!c->streaming && c->out_len == 0)
			enter_state(c, S_DATA_OK, now_ms + DATA_END_MS);
	}
}

uint64_t
class1_next_deadline(const struct class1_call *c)
{
	return c->deadline;
}

void
class1_timeout(struct class1_call *c, uint64_t now_ms)
{
	static const uint8_t can = CAN;

	if (now_ms < c->deadline)
		return;
	switch (c->state) {
	case S_NEW:
	case S_DONE:
		return;
	case S_INIT:
	case S_ECHO:
	case S_FCLASS:
		fail(c, CLASS1_TIMEOUT, "modem does not answer", now_ms);
		return;
	case S_DIAL:
		fail(c, CLASS1_TIMEOUT, "no result to ATD", now_ms);
		return;
	case S_RX_CONNECT:
	case S_RX_FRAME:
	case S_RX_STATUS:
		/* Abort the +FRH with any character (T.31 8.3.5). */
		c->hdlc = false;
		c->line_len = 0;
		c->line_over = false;
		out_bytes(c, &can, 1);
		enter_state(c, S_RX_ABORT, now_ms + ABORT_MS);
		return;
	case S_RX_ABORT:
		rx_missed(c, now_ms);
		return;
	case S_TX_CONNECT:
	case S_TX_FRAME:
		if (c->ending)
			hangup(c, now_ms);
		else
			fail(c, CLASS1_TIMEOUT, "modem stuck sending a frame",
			    now_ms);
		return;
	case S_FTS:
	case S_DATA_CONNECT:
	case S_DATA:
	case S_DATA_OK:
		fail(c, CLASS1_TIMEOUT, "modem stuck in a data phase",
		    now_ms);
		return;
	case S_HANGUP:
		finish(c);
		return;
	}
}

/* --- life --------------------------------------------------------------- */

static bool
text_ok(const char *s, size_t max, bool dial)
{
	size_t n = strlen(s);

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch >= 0x7f || (dial && ch == ';'))
			return false;
	}
	return true;
}

int
class1_new(const struct class1_params *p, struct class1_call **ret_call)
{
	struct class1_call *c;
	const char *prefix, *init, *tsi;

	if (p == NULL || ret_call == NULL || p->number == NULL ||
	    p->number[0] == '\0' || p->pages == NULL || p->n_pages == 0 ||
	    p->n_pages > CLASS1_PAGES_MAX)
		return -EINVAL;
	prefix = p->dial_prefix ? p->dial_prefix : "";
	init = p->init ? p->init : "ATZ";
	tsi = p->tsi ? p->tsi : "";
	if (!text_ok(prefix, CLASS1_DIAL_MAX, true) ||
	    !text_ok(p->number, CLASS1_DIAL_MAX, true) ||
	    strlen(prefix) + strlen(p->number) > CLASS1_DIAL_MAX ||
	    !text_ok(init, CLASS1_INIT_MAX, true) || init[0] == '\0' ||
	    !text_ok(tsi, CLASS1_IDENT_MAX, false) ||
	    (p->expect_csi && !text_ok(p->expect_csi, CLASS1_IDENT_MAX,
	    false)))
		return -EINVAL;
	if (p->max_bps != 0 && (p->max_bps < 2400 || p->max_bps > 14400))
		return -EINVAL;
	for (size_t i = 0; i < p->n_pages; i++)
		if (p->pages[i].t4_1d == NULL || p->pages[i].len_1d == 0 ||
		    (p->pages[i].t4_2d == NULL && p->pages[i].len_2d != 0))
			return -EINVAL;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	snprintf(c->dial, sizeof(c->dial), "%s%s", prefix, p->number);
	snprintf(c->init, sizeof(c->init), "%s", init);
	snprintf(c->tsi, sizeof(c->tsi), "%s", tsi);
	if (p->expect_csi) {
		snprintf(c->expect, sizeof(c->expect), "%s", p->expect_csi);
		c->have_expect = true;
	}
	c->pages = p->pages;
	c->n_pages = p->n_pages;
	c->max_bps = p->max_bps ? p->max_bps : 14400;
	c->rate = -1;
	c->state = S_NEW;
	c->deadline = UINT64_MAX;
	*ret_call = c;
	return 0;
}

struct class1_call *
class1_free(struct class1_call *c)
{
	free(c);
	return NULL;
}

int
class1_start(struct class1_call *c, uint64_t now_ms)
{
	if (c->state != S_NEW)
		return -EALREADY;
	out_cmd(c, c->init);
	enter_state(c, S_INIT, now_ms + CLASS1_CMD_MS);
	return 0;
}

bool
class1_done(const struct class1_call *c)
{
	return c->state == S_DONE;
}

enum class1_result
class1_result(const struct class1_call *c)
{
	return c->state == S_DONE ? c->result : CLASS1_RUNNING;
}

const char *
class1_reason(const struct class1_call *c)
{
	return c->state == S_DONE ? c->reason : "";
}

const char *
class1_remote_csi(const struct class1_call *c)
{
	return c->remote_csi;
}

unsigned
class1_bps(const struct class1_call *c)
{
	return c->rate < 0 ? 0 : rates[c->rate].bps;
}

int
class1_compression(const struct class1_call *c)
{
	if (c->rate < 0)
		return 0;
	return c->use_2d ? 2 : 1;
}

size_t
class1_pages_sent(const struct class1_call *c)
{
	return c->pages_sent;
}

bool
class1_dialed(const struct class1_call *c)
{
	return c->dialed;
}

bool
class1_carrier(const struct class1_call *c)
{
	return c->carrier;
}

bool
class1_in_pages(const struct class1_call *c)
{
	return c->in_pages;
}
