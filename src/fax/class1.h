/* SPDX-License-Identifier: ISC */
/* class1.h -- the sending side of T.30 over a Class 1 (T.31) fax modem */
#ifndef TR_FAX_CLASS1_H
#define TR_FAX_CLASS1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * An I/O-agnostic state machine: it never reads, writes or sleeps. The
 * caller opens the modem's serial port, and:
 *
 *   class1_new(&params, &call);
 *   class1_start(call, now);
 *   loop until class1_done(call):
 *     class1_output(call, &buf, &len): if len, write(fd, buf, len) and
 *         class1_consume(call, written);
 *     poll for input (and for POLLOUT when len was not 0) until
 *         class1_next_deadline(call);
 *     on input: class1_input(call, bytes, n, now);
 *     past the deadline: class1_timeout(call, now);
 *   class1_result(call), class1_reason(call), class1_remote_csi(call).
 *
 * Times are milliseconds on any monotonic clock.
 *
 * Phases (T.30): A dial (init string, ATE0, AT+FCLASS=1, ATD); B the
 * remote's CSI/DIS, our TSI/DCS and TCF, its CFR or FTT (fall back one
 * speed on FTT); C the page (+FTM, DLE-stuffed, XON/XOFF honoured); D
 * MPS/EOP and the remote's MCF/RTP/RTN; E DCN and ATH0.
 *
 * The page data is sent as given: no fill bits are added for a minimum scan
 * line time (the DCS asks for 0 ms when the DIS allows it).
 */

/* Longest ident (TSI, CSI) in T.30: 20 characters. */
#define CLASS1_IDENT_MAX 20
/* Longest modem result line kept; longer lines are dropped as garbage. */
#define CLASS1_LINE_MAX 80
/* Longest HDLC frame received (address to FCS); longer frames are bad. */
#define CLASS1_FRAME_MAX 256
/* Longest dial string (prefix + number). */
#define CLASS1_DIAL_MAX 64
/* Longest init string. */
#define CLASS1_INIT_MAX 64
/* Most pages in one call. */
#define CLASS1_PAGES_MAX 64
/* Garbage (dropped lines, bad frames) tolerated before PROTOCOL_ERROR. */
#define CLASS1_GARBAGE_MAX 4096

/* T.30 timers. */
#define CLASS1_T1_MS 35000	/* from CONNECT to the remote's DIS */
#define CLASS1_T4_MS 3000	/* for a response frame */
#define CLASS1_DIAL_MS 120000	/* for the modem's answer to ATD */
#define CLASS1_CMD_MS 5000	/* for OK to a plain command */

enum class1_result {
	CLASS1_RUNNING = 0,	/* not finished yet */
	CLASS1_OK,
	CLASS1_BUSY,
	CLASS1_NO_ANSWER,
	CLASS1_NO_CARRIER,
	CLASS1_NO_DIALTONE,
	CLASS1_WRONG_RECIPIENT,	/* remote CSI differs: no page sent */
	CLASS1_TRAINING_FAILED,	/* FTT down to 2400 bit/s */
	CLASS1_PAGE_REJECTED,	/* RTN after a retrain and resend */
	CLASS1_PROTOCOL_ERROR,
	CLASS1_TIMEOUT,
	CLASS1_MODEM_ERROR,
};

/* One page, T.4-encoded as fax_page_encode() gives it. The 2-D version
 * may be absent (NULL, 0); the 1-D one is required. */
struct class1_page {
	const uint8_t *t4_1d;
	size_t len_1d;
	const uint8_t *t4_2d;
	size_t len_2d;
};

struct class1_params {
	const char *number;	/* digits to dial; required */
	const char *dial_prefix;	/* NULL: none ("T", "P", "0W", ...) */
	const char *init;	/* NULL: "ATZ" */
	const char *tsi;	/* our ident, <= 20 printable ASCII */
	const char *expect_csi;	/* NULL: any; compared ignoring spaces */
	const struct class1_page *pages;	/* kept valid by the caller */
	size_t n_pages;		/* 1 .. CLASS1_PAGES_MAX */
	unsigned max_bps;	/* 0: 14400; else 2400 .. 14400 */
};

struct class1_call;

/*
 * Returns 0 and a new call in *ret_call, or -EINVAL (missing number or
 * pages, ident too long or not printable, dial or init string too long or
 * holding control characters or ';', max_bps out of range), -ENOMEM.
 * The strings are copied; the page data is not.
 */
int class1_new(const struct class1_params *p, struct class1_call **ret_call);
struct class1_call *class1_free(struct class1_call *c);

/* Queue the first command. Returns 0, or -EALREADY if started before. */
int class1_start(struct class1_call *c, uint64_t now_ms);

/*
 * Feed bytes read from the modem. Returns 0 (also when the call ended on
 * them: see class1_done), or -EINVAL before class1_start.
 */
int class1_input(struct class1_call *c, const uint8_t *buf, size_t len,
    uint64_t now_ms);

/*
 * What to write next: *ret_buf and *ret_len (0: nothing now, e.g. waiting
 * for the modem, or held by XOFF during page data). The buffer stays valid
 * until the next call into the machine. After writing N bytes (N <=
 * *ret_len), call class1_consume(c, N, now).
 */
void class1_output(struct class1_call *c, const uint8_t **ret_buf,
    size_t *ret_len);
void class1_consume(struct class1_call *c, size_t n, uint64_t now_ms);

/* When class1_timeout must be called next; UINT64_MAX: never. */
uint64_t class1_next_deadline(const struct class1_call *c);
/* Act on an expired deadline (nothing if NOW_MS is before it). */
void class1_timeout(struct class1_call *c, uint64_t now_ms);

bool class1_done(const struct class1_call *c);
enum class1_result class1_result(const struct class1_call *c);
/* A short text saying why the call ended (or "" while running). */
const char *class1_reason(const struct class1_call *c);
/* The remote's CSI as received, trimmed ("" if none). */
const char *class1_remote_csi(const struct class1_call *c);
/* The bit rate of the last training (0 before any). */
unsigned class1_bps(const struct class1_call *c);
/* The page coding chosen from the DIS: 1 (MH) or 2 (MR); 0 before. */
int class1_compression(const struct class1_call *c);
/* Pages the remote confirmed (MCF or RTP). */
size_t class1_pages_sent(const struct class1_call *c);
/* ATD was queued for the modem: the call counts as a dial. */
bool class1_dialed(const struct class1_call *c);
/* The remote answered as a fax: a DIS or CSI frame came in. */
bool class1_carrier(const struct class1_call *c);
/* Page data has begun: the first +FTM for a page (not the TCF) was
 * queued. Stays true to the end of the call. */
bool class1_in_pages(const struct class1_call *c);
const char *class1_strresult(enum class1_result r);
/* The current state's name, for the caller's logs. */
const char *class1_strstate(const struct class1_call *c);

#endif
