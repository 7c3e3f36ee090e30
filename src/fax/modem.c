/* SPDX-License-Identifier: ISC */
/* modem.c -- one Class 1 fax modem on a serial port, driven on the loop */

/*
 * A call owns the device from modem_call() to its end: the descriptor is
 * opened non-blocking, set raw, and watched by three events:
 *
 *   ev_read   persistent; bytes go to class1_input();
 *   ev_write  persistent, added only while class1_output() has bytes the
 *             device would not take at once;
 *   timer     the machine's next deadline, or the call's guard, whichever
 *             comes first; also the "next loop turn" on which a call whose
 *             device could not be opened ends.
 *
 * After every event, call_step() writes what the machine has (up to a
 * budget per turn), follows the machine into page data (phase callback),
 * re-arms ev_write and the timer, and ends the call once the machine is
 * done. call_end() is the last thing any path does with the modem: it
 * tears the call down, settles the counters and the state, and runs the
 * done callback, which may start the next call or free the modem.
 *
 * XON/XOFF: the tty is left without IXON/IXOFF. The machine takes DC1/DC3
 * from the modem as flow control during page data itself, and received
 * HDLC data or result codes must reach it unchanged.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/macro.h"
#include "fax/class1.h"
#include "fax/modem.h"

/* Bytes read from the device per read event. */
#define MODEM_READ_MAX 1024
/* Bytes written to the device per loop turn before yielding to the loop
 * (the rest goes out on the next EV_WRITE). */
#define MODEM_WRITE_BUDGET (16 * 1024)
/* The speed used when the options say 0. */
#define MODEM_SPEED_DEFAULT 115200
/* The slowest page data rate, for the call's guard. */
#define MODEM_GUARD_BPS 2400

static const struct {
	unsigned bps;
	speed_t code;
} speeds[] = {
	{ 9600, B9600 },
	{ 19200, B19200 },
	{ 38400, B38400 },
	{ 57600, B57600 },
	{ 115200, B115200 },
	{ 230400, B230400 },
};

struct modem {
	struct event_base *base;

	/* options */
	char name[MODEM_NAME_MAX + 1];
	char device[MODEM_DEVICE_MAX + 1];
	unsigned speed;
	speed_t speed_code;
	enum modem_flow flow;
	char init[CLASS1_INIT_MAX + 1];
	char dial_prefix[CLASS1_DIAL_MAX + 1];
	char tsi[CLASS1_IDENT_MAX + 1];
	unsigned max_bps;

	/* for modem_info */
	enum modem_state state;
	uint64_t since_ms;
	uint64_t calls, ok, failed;
	char last_result[24];
	char last_reason[128];
	char number[CLASS1_DIAL_MAX + 1];

	/* the call in progress */
	bool busy;		/* modem_call to call_end */
	int fd;			/* -1: not open */
	struct class1_call *call; /* NULL with busy: the open failed */
	char fail_reason[128];	/* why the open failed */
	struct event *ev_read;
	struct event *ev_write;
	struct event *timer;	/* lives as long as the modem */
	uint64_t start_ms;
	uint64_t guard_ms;	/* monotonic ms the call is cut at */
	bool in_pages;		/* the phase callback ran */
	bool resetting;		/* the abort burst went out: wait, discard */
	modem_phase_fn phase_cb;
	modem_done_fn done_cb;
	void *arg;
};

const char *
modem_strstate(enum modem_state s)
{
	switch (s) {
	case MODEM_IDLE:
		return "IDLE";
	case MODEM_DIALING:
		return "DIALING";
	case MODEM_SENDING:
		return "SENDING";
	case MODEM_DOWN:
		return "DOWN";
	}
	return "?";
}

static const char *
strflow(enum modem_flow f)
{
	switch (f) {
	case MODEM_FLOW_XONXOFF:
		return "xonxoff";
	case MODEM_FLOW_RTSCTS:
		return "rtscts";
	}
	return "?";
}

int
modem_parse_flow(const char *s, enum modem_flow *ret)
{
	if (s == NULL || ret == NULL)
		return -EINVAL;
	if (strcmp(s, "xonxoff") == 0)
		*ret = MODEM_FLOW_XONXOFF;
	else if (strcmp(s, "rtscts") == 0)
		*ret = MODEM_FLOW_RTSCTS;
	else
		return -EINVAL;
	return 0;
}

static void
modem_enter_state(struct modem *m, enum modem_state s)
{
	if (m->state != s)
		log_debug("modem %s state %s -> %s", m->name,
		    modem_strstate(m->state), modem_strstate(s));
	m->state = s;
	m->since_ms = clock_monotonic_ms();
}

/* Copy S into DST (SIZE bytes); false if it does not fit. */
static bool
copy_str(char *dst, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n >= size)
		return false;
	memcpy(dst, s, n + 1);
	return true;
}

/* --- the call ----------------------------------------------------------- */

/* Free the call's resources; the modem stays as it is otherwise. */
static void
call_teardown(struct modem *m)
{
	if (m->ev_read) {
		event_free(m->ev_read);
		m->ev_read = NULL;
	}
	if (m->ev_write) {
		event_free(m->ev_write);
		m->ev_write = NULL;
	}
	if (m->timer)
		evtimer_del(m->timer);
	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
	m->call = class1_free(m->call);
}

/*
 * End the call. FORCED is CLASS1_RUNNING when the machine finished on its
 * own; otherwise the call was cut (device gone, guard, open failure) with
 * that result, WHY and FAULT. The last thing done with M: the callback may
 * free it.
 */
static void
call_end(struct modem *m, enum class1_result forced, const char *why,
    bool fault)
{
	struct modem_result r = { .result = forced };
	modem_done_fn cb = m->done_cb;
	void *arg = m->arg;
	uint64_t now = clock_monotonic_ms();

	if (m->call) {
		snprintf(r.remote_csi, sizeof(r.remote_csi), "%s",
		    class1_remote_csi(m->call));
		r.bps = class1_bps(m->call);
		r.compression = class1_compression(m->call);
		r.pages = class1_pages_sent(m->call);
		r.dialed = class1_dialed(m->call);
		r.carrier = class1_carrier(m->call);
	}
	if (forced == CLASS1_RUNNING) {
		r.result = class1_result(m->call);
		snprintf(r.reason, sizeof(r.reason), "%s",
		    class1_reason(m->call));
		r.modem_fault = r.result == CLASS1_MODEM_ERROR ||
		    (r.result == CLASS1_TIMEOUT && !r.dialed);
	} else {
		snprintf(r.reason, sizeof(r.reason), "%s", why);
		r.modem_fault = fault;
	}
	r.duration_ms = now - m->start_ms;
	call_teardown(m);

	m->calls++;
	if (r.result == CLASS1_OK)
		m->ok++;
	else
		m->failed++;
	snprintf(m->last_result, sizeof(m->last_result), "%s",
	    class1_strresult(r.result));
	snprintf(m->last_reason, sizeof(m->last_reason), "%s", r.reason);
	m->number[0] = '\0';
	m->busy = false;
	m->in_pages = false;
	m->phase_cb = NULL;
	m->done_cb = NULL;
	m->arg = NULL;
	modem_enter_state(m, r.modem_fault ? MODEM_DOWN : MODEM_IDLE);
	if (cb)
		cb(arg, &r);
}

/* The device went away under the call (a software modem died, a USB
 * adapter was pulled): the machine cannot finish. */
static void
call_lost(struct modem *m, int err)
{
	char why[128];

	if (err == EIO || err == 0) {
		call_end(m, CLASS1_MODEM_ERROR, "modem device closed", true);
		return;
	}
	snprintf(why, sizeof(why), "%.96s: %s", m->device, strerror(err));
	call_end(m, CLASS1_MODEM_ERROR, why, true);
}

static void
arm_timer(struct modem *m, uint64_t now)
{
	uint64_t dl = MIN(class1_next_deadline(m->call), m->guard_ms);
	uint64_t wait = dl > now ? dl - now : 0;
	struct timeval tv = {
		.tv_sec = (time_t)(wait / 1000),
		.tv_usec = (suseconds_t)(wait % 1000) * 1000,
	};

	evtimer_add(m->timer, &tv);
}

/*
 * Write what the machine has, up to the budget. Returns 0, or a positive
 * errno when the device failed (the caller ends the call).
 */
static int
call_flush(struct modem *m)
{
	size_t budget = MODEM_WRITE_BUDGET;

	while (budget > 0 && !class1_done(m->call)) {
		const uint8_t *buf;
		size_t len;
		ssize_t w;

		class1_output(m->call, &buf, &len);
		if (len == 0)
			break;
		w = write(m->fd, buf, MIN(len, budget));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return errno;
		}
		class1_consume(m->call, (size_t)w, clock_monotonic_ms());
		budget -= (size_t)w;
	}
	return 0;
}

/* After any event: move the call on, or end it. */
static void
call_step(struct modem *m)
{
	const uint8_t *buf;
	size_t len;
	int err;

	if (class1_done(m->call)) {
		call_end(m, CLASS1_RUNNING, NULL, false);
		return;
	}
	if (!m->in_pages && class1_in_pages(m->call)) {
		m->in_pages = true;
		modem_enter_state(m, MODEM_SENDING);
		if (m->phase_cb)
			m->phase_cb(m->arg);
	}
	err = call_flush(m);
	if (err != 0) {
		call_lost(m, err);
		return;
	}
	if (class1_done(m->call)) {
		call_end(m, CLASS1_RUNNING, NULL, false);
		return;
	}
	class1_output(m->call, &buf, &len);
	if (len > 0)
		event_add(m->ev_write, NULL);
	else
		event_del(m->ev_write);
	arm_timer(m, clock_monotonic_ms());
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct modem *m = arg;
	uint8_t buf[MODEM_READ_MAX];
	ssize_t n;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		call_lost(m, errno);
		return;
	}
	if (n == 0) {
		call_lost(m, 0);
		return;
	}
	if (m->resetting)
		return;	/* answers to the abort burst */
	(void)class1_input(m->call, buf, (size_t)n, clock_monotonic_ms());
	call_step(m);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	call_step(arg);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct modem *m = arg;
	uint64_t now;

	(void)fd;
	(void)what;
	if (m->call != NULL && m->resetting) {
		/* The modem had its chance to leave whatever a dead host left
		 * it in: drop what it said, and begin. */
		m->resetting = false;
		(void)tcflush(m->fd, TCIFLUSH);
		now = clock_monotonic_ms();
		(void)class1_start(m->call, now);
		event_add(m->ev_write, NULL);
		arm_timer(m, now);
		return;
	}
	if (m->call == NULL) {
		/* The device could not be opened: end on this loop turn. */
		call_end(m, CLASS1_MODEM_ERROR, m->fail_reason, true);
		return;
	}
	now = clock_monotonic_ms();
	if (now >= m->guard_ms) {
		call_end(m, CLASS1_TIMEOUT, "call took too long",
		    !class1_dialed(m->call));
		return;
	}
	class1_timeout(m->call, now);
	call_step(m);
}

/* DLE ETX (ends a data phase), CR (aborts a receive, ends a line). */
static const uint8_t modem_abort_burst[] = { 0x10, 0x03, '\r' };

/* Raw, 8N1, the speed and flow control of the options, then flush. 0 or
 * -errno. */
static int
setup_tty(const struct modem *m, int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
	t.c_cflag |= CS8 | CLOCAL | CREAD | HUPCL;
	if (m->flow == MODEM_FLOW_RTSCTS)
		t.c_cflag |= CRTSCTS;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetspeed(&t, m->speed_code) < 0)
		return -errno;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	if (tcflush(fd, TCIOFLUSH) < 0)
		return -errno;
	return 0;
}

/* Open and set up the device. The descriptor, or -errno with a reason in
 * m->fail_reason. */
static int
open_device(struct modem *m)
{
	int fd, r;

	fd = open(m->device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(m->fail_reason, sizeof(m->fail_reason), "open %.96s: %s",
		    m->device, strerror(-r));
		return r;
	}
	r = setup_tty(m, fd);
	if (r < 0) {
		snprintf(m->fail_reason, sizeof(m->fail_reason),
		    "termios %.96s: %s", m->device, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

/* The guard for a call with PAGES: the base plus twice the time the page
 * data takes at the slowest rate. */
static uint64_t
guard_for(const struct class1_page *pages, size_t n)
{
	uint64_t ms = MODEM_GUARD_MS;

	for (size_t i = 0; i < n; i++) {
		size_t len = MAX(pages[i].len_1d, pages[i].len_2d);

		ms += 2 * ((uint64_t)len * 8 * 1000 / MODEM_GUARD_BPS);
	}
	return ms;
}

int
modem_call(struct modem *m, const char *number, const char *expect_csi,
    const struct class1_page *pages, size_t n_pages, modem_phase_fn phase_cb,
    modem_done_fn done_cb, void *arg)
{
	struct class1_params p = {
		.number = number,
		.dial_prefix = m->dial_prefix[0] ? m->dial_prefix : NULL,
		.init = m->init[0] ? m->init : NULL,
		.tsi = m->tsi,
		.expect_csi = expect_csi && expect_csi[0] ? expect_csi : NULL,
		.pages = pages,
		.n_pages = n_pages,
		.max_bps = m->max_bps,
	};
	struct class1_call *call = NULL;
	struct timeval now_tv = { 0, 0 };
	int fd, r;

	if (m->busy)
		return -EBUSY;
	r = class1_new(&p, &call);
	if (r < 0)
		return r;
	m->start_ms = clock_monotonic_ms();
	m->guard_ms = m->start_ms + guard_for(pages, n_pages);

	fd = open_device(m);
	if (fd < 0) {
		/* Not an error of the call's: it ends on the next turn. */
		class1_free(call);
		m->call = NULL;
		evtimer_add(m->timer, &now_tv);
	} else {
		m->ev_read = event_new(m->base, fd, EV_READ | EV_PERSIST,
		    on_read, m);
		m->ev_write = event_new(m->base, fd, EV_WRITE | EV_PERSIST,
		    on_write, m);
		if (m->ev_read == NULL || m->ev_write == NULL) {
			m->fd = fd;
			m->call = call;
			call_teardown(m);
			return -ENOMEM;
		}
		m->fd = fd;
		m->call = call;
		/*
		 * A modem may still be where a host that died left it: in a
		 * data phase (+FTM: DLE ETX ends it), receiving (+FRM, +FRH:
		 * any character aborts) or mid-line. The abort burst gets it
		 * back to command mode whatever the case; its answers are
		 * dropped, then the call begins from the timer, so nothing
		 * can end the call from inside modem_call. (A real port also
		 * dropped DTR when the dead host's descriptor closed: HUPCL.)
		 */
		(void)!write(fd, modem_abort_burst, sizeof(modem_abort_burst));
		m->resetting = true;
		event_add(m->ev_read, NULL);
		{
			struct timeval tv = { 0, MODEM_RESET_MS * 1000 };

			evtimer_add(m->timer, &tv);
		}
	}
	m->busy = true;
	m->in_pages = false;
	m->phase_cb = phase_cb;
	m->done_cb = done_cb;
	m->arg = arg;
	snprintf(m->number, sizeof(m->number), "%s", number);
	modem_enter_state(m, MODEM_DIALING);
	return 0;
}

/* --- the modem ---------------------------------------------------------- */

/* Would class1_new() take these options? A trial call with a dummy page
 * says so before any real one. */
static int
check_class1_opts(const struct modem_opts *o)
{
	static const uint8_t dummy = 0;
	const struct class1_page page = { &dummy, 1, NULL, 0 };
	struct class1_params p = {
		.number = "0",
		.dial_prefix = o->dial_prefix,
		.init = o->init,
		.tsi = o->tsi,
		.pages = &page,
		.n_pages = 1,
		.max_bps = o->max_bps,
	};
	struct class1_call *c = NULL;
	int r;

	r = class1_new(&p, &c);
	class1_free(c);
	return r;
}

int
modem_new(struct event_base *base, const struct modem_opts *o,
    struct modem **ret_modem)
{
	struct modem *m;
	unsigned speed;
	size_t i;
	int r;

	if (base == NULL || o == NULL || ret_modem == NULL ||
	    o->name == NULL || o->name[0] == '\0' || o->device == NULL ||
	    o->device[0] == '\0')
		return -EINVAL;
	if (o->flow != MODEM_FLOW_XONXOFF && o->flow != MODEM_FLOW_RTSCTS)
		return -EINVAL;
	speed = o->speed ? o->speed : MODEM_SPEED_DEFAULT;
	for (i = 0; i < ELEMENTSOF(speeds); i++)
		if (speeds[i].bps == speed)
			break;
	if (i == ELEMENTSOF(speeds))
		return -EINVAL;
	r = check_class1_opts(o);
	if (r < 0)
		return r;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	if (!copy_str(m->name, sizeof(m->name), o->name) ||
	    !copy_str(m->device, sizeof(m->device), o->device) ||
	    !copy_str(m->init, sizeof(m->init), o->init ? o->init : "") ||
	    !copy_str(m->dial_prefix, sizeof(m->dial_prefix),
	    o->dial_prefix ? o->dial_prefix : "") ||
	    !copy_str(m->tsi, sizeof(m->tsi), o->tsi ? o->tsi : "")) {
		free(m);
		return -EINVAL;
	}
	m->base = base;
	m->speed = speed;
	m->speed_code = speeds[i].code;
	m->flow = o->flow;
	m->max_bps = o->max_bps;
	m->fd = -1;
	m->timer = evtimer_new(base, on_timer, m);
	if (m->timer == NULL) {
		free(m);
		return -ENOMEM;
	}
	m->state = MODEM_IDLE;
	m->since_ms = clock_monotonic_ms();
	*ret_modem = m;
	return 0;
}

struct modem *
modem_free(struct modem *m)
{
	if (m == NULL)
		return NULL;
	call_teardown(m);
	if (m->timer)
		event_free(m->timer);
	free(m);
	return NULL;
}

void
modem_info(const struct modem *m, struct modem_info *ret)
{
	*ret = (struct modem_info){
		.name = m->name,
		.device = m->device,
		.state = m->state,
		.flow = strflow(m->flow),
		.speed = m->speed,
		.since_ms = m->since_ms,
		.calls = m->calls,
		.ok = m->ok,
		.failed = m->failed,
	};
	snprintf(ret->last_result, sizeof(ret->last_result), "%s",
	    m->last_result);
	snprintf(ret->last_reason, sizeof(ret->last_reason), "%s",
	    m->last_reason);
	snprintf(ret->number, sizeof(ret->number), "%s", m->number);
}

enum modem_state
modem_state(const struct modem *m)
{
	return m->state;
}

const char *
modem_name(const struct modem *m)
{
	return m->name;
}
