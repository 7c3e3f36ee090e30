/* SPDX-License-Identifier: ISC */
/* modem.h -- one Class 1 fax modem on a serial port, driven on the loop */
#ifndef TR_FAX_MODEM_H
#define TR_FAX_MODEM_H

/*
 * A modem runs one call at a time: it opens its serial device for the
 * call (termios raw mode, the configured speed and flow control,
 * non-blocking), drives a class1 call (src/fax/class1.h) with libevent
 * read/write events and a timer for the machine's deadlines, closes the
 * device, and reports the result through a callback on the loop. Nothing
 * here blocks and nothing here knows about orders or the store.
 *
 * The device is opened anew for every call, so a modem that was unplugged,
 * reset or replaced by a restarted software modem (iaxmodem, t38modem,
 * faxline) is picked up again without a restart of the daemon.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "fax/class1.h"

#define MODEM_NAME_MAX 32
#define MODEM_DEVICE_MAX 256

enum modem_flow {
	MODEM_FLOW_XONXOFF = 0,	/* in band DC1/DC3: ptys, software modems */
	MODEM_FLOW_RTSCTS,	/* hardware: real serial ports (CRTSCTS) */
};

struct modem_opts {
	const char *name;	/* for logs and `modem list`; required */
	const char *device;	/* "/dev/ttyS0", a pty link; required */
	unsigned speed;		/* DTE speed: 9600 .. 230400; 0: 115200 */
	enum modem_flow flow;
	const char *init;	/* NULL: "ATZ" */
	const char *dial_prefix; /* NULL: none */
	const char *tsi;	/* our ident; NULL or "": none */
	unsigned max_bps;	/* 0: 14400 */
};

enum modem_state {
	MODEM_IDLE = 0,		/* ready for a call */
	MODEM_DIALING,		/* device open, phase A/B */
	MODEM_SENDING,		/* page data going out (phase C/D) */
	MODEM_DOWN,		/* the last call failed on the modem itself
				 * (device missing, no answer to AT): still
				 * accepts calls, the dispatcher waits first */
};

/* What a finished call did. */
struct modem_result {
	enum class1_result result;
	char reason[128];	/* class1_reason(), or the open/termios error */
	char remote_csi[CLASS1_IDENT_MAX + 1];
	unsigned bps;		/* last trained rate, 0 if none */
	int compression;	/* 1 MH, 2 MR, 0 none */
	size_t pages;		/* pages the remote confirmed (MCF/RTP) */
	uint64_t duration_ms;	/* from the call's start to its end */
	bool dialed;		/* ATD was sent: the call counts as a dial */
	bool carrier;		/* the remote answered with a fax (DIS seen) */
	bool modem_fault;	/* the modem, not the line, failed: device
				 * missing or unusable, no answer to AT, an
				 * ERROR to a command before dialing */
};

/* A call reached page data (the job goes DIALING -> SENDING). It runs
 * at most once per call, from the loop; it must not free the modem. */
typedef void (*modem_phase_fn)(void *arg);
/* The call ended; r is valid during the call only. The modem is IDLE or
 * DOWN again when this runs, so the callback may start the next call (or
 * free the modem: nothing touches it after the callback). */
typedef void (*modem_done_fn)(void *arg, const struct modem_result *r);

struct modem;

/* The options are copied. -EINVAL (name or device missing or too long,
 * speed unsupported, or an init string, dial prefix, ident or max_bps that
 * class1_new() would refuse), -ENOMEM. Nothing is opened yet. */
int modem_new(struct event_base *base, const struct modem_opts *o,
    struct modem **ret_modem);
/* Aborts a call in progress without calling its callbacks (the device is
 * closed; the remote sees the line drop). NULL-safe; returns NULL. */
struct modem *modem_free(struct modem *m);

/* A call that has not ended after MODEM_GUARD_MS plus twice the time its
 * page data takes at 2400 bit/s is cut (CLASS1_TIMEOUT): the device is
 * closed, which drops DTR (HUPCL) on a real serial port. */
#define MODEM_GUARD_MS (10 * 60 * 1000)
/* After opening the device: the abort burst (DLE ETX, CR) gets a modem a
 * dead host left in a data phase back to command mode; what it answers in
 * this time is dropped before the call's first command. */
#define MODEM_RESET_MS 300

/*
 * Start a call to NUMBER with PAGES (kept valid by the caller until
 * done_cb has run or the modem is freed). expect_csi: NULL or "" for any
 * remote. Returns 0 (done_cb will run exactly once, never from inside
 * modem_call), or -EBUSY (a call is running), -EINVAL (class1_new refused
 * the parameters), -ENOMEM. A device that cannot be opened is not an error
 * here: the call ends at once (on the next loop turn) with a
 * CLASS1_MODEM_ERROR result and modem_fault set.
 */
int modem_call(struct modem *m, const char *number, const char *expect_csi,
    const struct class1_page *pages, size_t n_pages, modem_phase_fn phase_cb,
    modem_done_fn done_cb, void *arg);

/* For `modem list` and metrics. */
struct modem_info {
	const char *name;
	const char *device;
	enum modem_state state;
	const char *flow;	/* "xonxoff" or "rtscts" */
	unsigned speed;
	uint64_t since_ms;	/* monotonic ms when the state was entered */
	uint64_t calls, ok, failed;	/* finished calls: ok + failed */
	char last_result[24];	/* class1_strresult() of the last call, "" */
	char last_reason[128];
	char number[CLASS1_DIAL_MAX + 1]; /* the call in progress, "" */
};
void modem_info(const struct modem *m, struct modem_info *ret);
enum modem_state modem_state(const struct modem *m);
const char *modem_strstate(enum modem_state s);	/* "IDLE", ... */
const char *modem_name(const struct modem *m);

/* Parse "xonxoff" / "rtscts" (config). 0 or -EINVAL. */
int modem_parse_flow(const char *s, enum modem_flow *ret);

#endif
