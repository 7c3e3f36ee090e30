/* SPDX-License-Identifier: ISC */
/* test_modem.c -- a Class 1 modem on the loop: faxline calls, scripted ptys */
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

#include <event2/event.h>

#include "common/clock.h"
#include "common/macro.h"
#include "fax/class1.h"
#include "fax/modem.h"
#include "fax/page.h"

#include "faxline_util.h"

#define OUR_TSI "+1 555 0100"
#define NUMBER "5551234"
/* The longest a test lets the loop run for one call. */
#define LOOP_MS 60000

static const char *const page_lines[] = {
	"TWINROUTE ORDER 000456",
	"Card: 4111 1111 1111 1111",
	"Expiry: 12/29",
	"Amount: 42.00 EUR",
	"End of page",
};

static struct class1_page page_both, page_1d;

static int
group_setup(void **state)
{
	(void)state;
	if (faxline_page_make(page_lines, ELEMENTSOF(page_lines),
	    &page_both) < 0)
		return -1;
	page_1d = (struct class1_page){ page_both.t4_1d, page_both.len_1d,
	    NULL, 0 };
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	faxline_page_free(&page_both);
	return 0;
}

/* --- one call on the loop ----------------------------------------------- */

struct run {
	struct event_base *base;
	struct modem *m;
	int phases;
	int done;
	enum modem_state phase_state;	/* modem_state() in phase_cb */
	enum modem_state done_state;	/* modem_state() in done_cb */
	struct modem_result res;
	int again;		/* done_cb starts this many more calls */
	int again_ret;
	bool free_in_done;	/* done_cb frees the modem */
	bool break_in_phase;	/* phase_cb breaks the loop */
	bool timed_out;
};

static void
on_phase(void *arg)
{
	struct run *r = arg;

	r->phases++;
	r->phase_state = modem_state(r->m);
	if (r->break_in_phase)
		event_base_loopbreak(r->base);
}

static void
on_done(void *arg, const struct modem_result *res)
{
	struct run *r = arg;

	r->done++;
	r->res = *res;
	r->done_state = modem_state(r->m);
	if (r->free_in_done) {
		r->m = modem_free(r->m);
	} else if (r->again > 0) {
		r->again--;
		r->again_ret = modem_call(r->m, NUMBER, NULL, &page_both, 1,
		    on_phase, on_done, r);
		if (r->again_ret == 0)
			return;	/* keep looping for the next call */
	}
	event_base_loopbreak(r->base);
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	r->timed_out = true;
	event_base_loopbreak(r->base);
}

/* Run the loop until a callback breaks it, or MS pass. */
static void
loop_for(struct run *r, uint64_t ms)
{
	struct event *dog = evtimer_new(r->base, on_watchdog, r);
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000) * 1000 };

	assert_non_null(dog);
	r->timed_out = false;
	evtimer_add(dog, &tv);
	assert_true(event_base_dispatch(r->base) >= 0);
	event_free(dog);
}

static void
run_init(struct run *r)
{
	*r = (struct run){ 0 };
	r->base = event_base_new();
	assert_non_null(r->base);
}

static void
run_modem(struct run *r, const char *device, unsigned speed,
    enum modem_flow flow)
{
	struct modem_opts o = {
		.name = "fax0",
		.device = device,
		.speed = speed,
		.flow = flow,
		.tsi = OUR_TSI,
	};

	assert_int_equal(modem_new(r->base, &o, &r->m), 0);
}

static void
run_done(struct run *r)
{
	r->m = modem_free(r->m);
	event_base_free(r->base);
	r->base = NULL;
}

/* Start a call to NUMBER and run the loop until it ends. */
static void
call_and_wait(struct run *r, const char *expect, const struct class1_page *pg)
{
	int done = r->done;

	assert_int_equal(modem_call(r->m, NUMBER, expect, pg, 1, on_phase,
	    on_done, r), 0);
	assert_int_equal(r->done, done);	/* never from inside */
	assert_int_equal(modem_state(r->m), MODEM_DIALING);
	loop_for(r, LOOP_MS);
	assert_false(r->timed_out);
	assert_int_equal(r->done, done + 1);
}

/* --- options and parsing ------------------------------------------------ */

static void
test_parse_flow(void **state)
{
	enum modem_flow f = MODEM_FLOW_RTSCTS;

	(void)state;
	assert_int_equal(modem_parse_flow("xonxoff", &f), 0);
	assert_int_equal(f, MODEM_FLOW_XONXOFF);
	assert_int_equal(modem_parse_flow("rtscts", &f), 0);
	assert_int_equal(f, MODEM_FLOW_RTSCTS);
	assert_int_equal(modem_parse_flow("RTSCTS", &f), -EINVAL);
	assert_int_equal(modem_parse_flow("rtscts ", &f), -EINVAL);
	assert_int_equal(modem_parse_flow("", &f), -EINVAL);
	assert_int_equal(modem_parse_flow("none", &f), -EINVAL);
	assert_int_equal(modem_parse_flow(NULL, &f), -EINVAL);
	assert_int_equal(f, MODEM_FLOW_RTSCTS);	/* untouched on failure */
	assert_string_equal(modem_strstate(MODEM_IDLE), "IDLE");
	assert_string_equal(modem_strstate(MODEM_DIALING), "DIALING");
	assert_string_equal(modem_strstate(MODEM_SENDING), "SENDING");
	assert_string_equal(modem_strstate(MODEM_DOWN), "DOWN");
}

static void
test_new_bad(void **state)
{
	struct event_base *base = event_base_new();
	struct modem *m = NULL;
	struct modem_info info;
	const struct modem_opts good = {
		.name = "fax0", .device = "/dev/ttyS0",
	};
	struct modem_opts o;
	char longname[MODEM_NAME_MAX + 2], longdev[MODEM_DEVICE_MAX + 2];

	(void)state;
	assert_non_null(base);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memset(longdev, 'd', sizeof(longdev) - 1);
	longdev[sizeof(longdev) - 1] = '\0';

	assert_int_equal(modem_new(base, NULL, &m), -EINVAL);
	assert_int_equal(modem_new(NULL, &good, &m), -EINVAL);
	o = good;
	o.name = NULL;
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.name = "";
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.name = longname;
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.device = NULL;
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.device = longdev;
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.speed = 1200;
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o.speed = 115201;
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.flow = (enum modem_flow)7;
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.tsi = "123456789012345678901";	/* 21 */
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.init = "ATZ;ATH";
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.dial_prefix = "T\r";
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	o = good;
	o.max_bps = 28800;
	assert_int_equal(modem_new(base, &o, &m), -EINVAL);
	assert_null(m);

	/* The longest name and device fit; defaults fill in. */
	longname[MODEM_NAME_MAX] = '\0';
	longdev[MODEM_DEVICE_MAX] = '\0';
	o = good;
	o.name = longname;
	o.device = longdev;
	o.flow = MODEM_FLOW_RTSCTS;
	assert_int_equal(modem_new(base, &o, &m), 0);
	longname[0] = 'X';	/* copied, not kept */
	modem_info(m, &info);
	assert_int_equal(strlen(info.name), MODEM_NAME_MAX);
	assert_int_equal(info.name[0], 'n');
	assert_string_equal(modem_name(m), info.name);
	assert_int_equal(strlen(info.device), MODEM_DEVICE_MAX);
	assert_int_equal(info.state, MODEM_IDLE);
	assert_int_equal(modem_state(m), MODEM_IDLE);
	assert_string_equal(info.flow, "rtscts");
	assert_int_equal(info.speed, 115200);
	assert_int_equal(info.calls, 0);
	assert_int_equal(info.ok, 0);
	assert_int_equal(info.failed, 0);
	assert_string_equal(info.last_result, "");
	assert_string_equal(info.number, "");
	assert_true(info.since_ms <= clock_monotonic_ms());
	m = modem_free(m);
	assert_null(modem_free(NULL));
	event_base_free(base);
}

/* --- devices that cannot be used ---------------------------------------- */

static void
test_open_fails(void **state)
{
	struct run r;
	struct modem_info info;
	char want[128];

	(void)state;
	run_init(&r);
	run_modem(&r, "/nonexistent/twinroute-tty", 0, MODEM_FLOW_XONXOFF);

	/* Bad parameters are refused at once and change nothing. */
	assert_int_equal(modem_call(r.m, NULL, NULL, &page_both, 1, on_phase,
	    on_done, &r), -EINVAL);
	assert_int_equal(modem_call(r.m, NUMBER, NULL, &page_both, 0, on_phase,
	    on_done, &r), -EINVAL);
	assert_int_equal(modem_call(r.m, "555;ATH", NULL, &page_both, 1,
	    on_phase, on_done, &r), -EINVAL);
	assert_int_equal(modem_state(r.m), MODEM_IDLE);

	/* The call "starts" and ends on the next turn; the callback starts
	 * the next one, which fails the same way. */
	assert_int_equal(modem_call(r.m, NUMBER, NULL, &page_both, 1, on_phase,
	    on_done, &r), 0);
	assert_int_equal(r.done, 0);
	assert_int_equal(modem_state(r.m), MODEM_DIALING);
	modem_info(r.m, &info);
	assert_string_equal(info.number, NUMBER);
	assert_int_equal(modem_call(r.m, NUMBER, NULL, &page_both, 1, on_phase,
	    on_done, &r), -EBUSY);
	r.again = 1;
	loop_for(&r, 5000);
	assert_false(r.timed_out);
	assert_int_equal(r.done, 2);
	assert_int_equal(r.again_ret, 0);
	assert_int_equal(r.phases, 0);
	assert_int_equal(r.res.result, CLASS1_MODEM_ERROR);
	assert_true(r.res.modem_fault);
	assert_false(r.res.dialed);
	assert_false(r.res.carrier);
	assert_int_equal(r.res.pages, 0);
	assert_int_equal(r.res.bps, 0);
	snprintf(want, sizeof(want), "open /nonexistent/twinroute-tty: %s",
	    strerror(ENOENT));
	assert_string_equal(r.res.reason, want);
	assert_int_equal(r.done_state, MODEM_DOWN);
	assert_int_equal(modem_state(r.m), MODEM_DOWN);
	modem_info(r.m, &info);
	assert_int_equal(info.calls, 2);
	assert_int_equal(info.ok, 0);
	assert_int_equal(info.failed, 2);
	assert_string_equal(info.last_result, "CLASS1_MODEM_ERROR");
	assert_string_equal(info.last_reason, want);
	assert_string_equal(info.number, "");
	run_done(&r);

	/* Not a tty: opened, but termios fails. */
	run_init(&r);
	run_modem(&r, "/dev/null", 9600, MODEM_FLOW_XONXOFF);
	call_and_wait(&r, NULL, &page_both);
	assert_int_equal(r.res.result, CLASS1_MODEM_ERROR);
	assert_true(r.res.modem_fault);
	assert_false(r.res.dialed);
	snprintf(want, sizeof(want), "termios /dev/null: %s",
	    strerror(ENOTTY));
	assert_string_equal(r.res.reason, want);
	assert_int_equal(modem_state(r.m), MODEM_DOWN);
	run_done(&r);

	/* Freed before the failure is reported: no callback. */
	run_init(&r);
	run_modem(&r, "/nonexistent/twinroute-tty", 0, MODEM_FLOW_XONXOFF);
	assert_int_equal(modem_call(r.m, NUMBER, NULL, &page_both, 1, on_phase,
	    on_done, &r), 0);
	r.m = modem_free(r.m);
	loop_for(&r, 200);
	assert_true(r.timed_out);
	assert_int_equal(r.done, 0);
	run_done(&r);
}

/* --- scripted modems on a pty we hold ------------------------------------ */

enum script {
	SCRIPT_SILENT,		/* never answers */
	SCRIPT_NO_DIALTONE,	/* OK to the set-up, NO DIALTONE to ATD */
	SCRIPT_ATD_ERROR,	/* ERROR to ATD */
	SCRIPT_DIE_AT_INIT,	/* the master closes on ATZ */
	SCRIPT_DIE_AT_DIAL,	/* the master closes on ATD */
};

struct pty {
	struct run *r;
	enum script script;
	int master;
	char slave[64];
	struct event *ev;
	char in[4096];		/* everything the host wrote */
	size_t in_len;
	size_t seen;		/* bytes of in[] handled */
	bool checked_tty;
	struct termios tio;	/* the slave's, when ATZ came */
};

static void
pty_reply(struct pty *p, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(write(p->master, s, n), (ssize_t)n);
}

static void
pty_close(struct pty *p)
{
	if (p->ev) {
		event_free(p->ev);
		p->ev = NULL;
	}
	if (p->master >= 0) {
		close(p->master);
		p->master = -1;
	}
}

/* One command from the host. */
static void
pty_command(struct pty *p, const char *cmd)
{
	if (strcmp(cmd, "ATZ") == 0 && !p->checked_tty) {
		int fd = open(p->slave, O_RDWR | O_NOCTTY | O_NONBLOCK);

		assert_true(fd >= 0);
		assert_int_equal(tcgetattr(fd, &p->tio), 0);
		close(fd);
		p->checked_tty = true;
	}
	switch (p->script) {
	case SCRIPT_SILENT:
		return;
	case SCRIPT_DIE_AT_INIT:
		pty_close(p);
		return;
	case SCRIPT_NO_DIALTONE:
	case SCRIPT_ATD_ERROR:
	case SCRIPT_DIE_AT_DIAL:
		break;
	}
	if (strncmp(cmd, "ATD", 3) == 0) {
		if (p->script == SCRIPT_DIE_AT_DIAL)
			pty_close(p);
		else if (p->script == SCRIPT_ATD_ERROR)
			pty_reply(p, "\r\nERROR\r\n");
		else
			pty_reply(p, "\r\nNO DIALTONE\r\n");
	} else if (strcmp(cmd, "ATZ") == 0) {
		/* A stray DC3 first: the tty must not take it as XOFF, or
		 * nothing more reaches us and the call times out. */
		pty_reply(p, "\x13\r\nOK\r\n");
	} else {
		pty_reply(p, "\r\nOK\r\n");
	}
}

static void
on_master(evutil_socket_t fd, short what, void *arg)
{
	struct pty *p = arg;
	ssize_t n;

	(void)what;
	n = read(fd, p->in + p->in_len, sizeof(p->in) - 1 - p->in_len);
	if (n <= 0)
		return;
	p->in_len += (size_t)n;
	p->in[p->in_len] = '\0';
	for (;;) {
		char *cr = memchr(p->in + p->seen, '\r', p->in_len - p->seen);
		char cmd[128];
		size_t len;

		if (cr == NULL)
			break;
		len = (size_t)(cr - (p->in + p->seen));
		assert_true(len < sizeof(cmd));
		memcpy(cmd, p->in + p->seen, len);
		cmd[len] = '\0';
		p->seen += len + 1;
		pty_command(p, cmd);
		if (p->master < 0)
			return;
	}
}

static void
pty_open(struct pty *p, struct run *r, enum script script)
{
	*p = (struct pty){ .r = r, .script = script, .master = -1 };
	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	assert_true(p->master >= 0);
	assert_int_equal(grantpt(p->master), 0);
	assert_int_equal(unlockpt(p->master), 0);
	assert_int_equal(ptsname_r(p->master, p->slave, sizeof(p->slave)), 0);
	p->ev = event_new(r->base, p->master, EV_READ | EV_PERSIST, on_master,
	    p);
	assert_non_null(p->ev);
	assert_int_equal(event_add(p->ev, NULL), 0);
}

/* On a new loop, a call to a modem on a pty playing SCRIPT, run until it
 * ends. */
static void
scripted_call(struct run *r, struct pty *p, enum script script,
    unsigned speed, enum modem_flow flow)
{
	run_init(r);
	pty_open(p, r, script);
	run_modem(r, p->slave, speed, flow);
	call_and_wait(r, NULL, &page_both);
}

/* What a modem hears first on every call (modem.c). */
#define ABORT_BURST "\x10\x03\r"

static void
test_silent_modem(void **state)
{
	struct run r;
	struct pty p;

	(void)state;
	scripted_call(&r, &p, SCRIPT_SILENT, 0, MODEM_FLOW_XONXOFF);
	/* No OK to ATZ (5 s), then none to ATH0 (5 s). */
	assert_int_equal(r.res.result, CLASS1_TIMEOUT);
	assert_true(r.res.modem_fault);
	assert_false(r.res.dialed);
	assert_false(r.res.carrier);
	assert_true(r.res.duration_ms >= 2 * CLASS1_CMD_MS - 100);
	assert_non_null(strstr(r.res.reason, "does not answer"));
	assert_int_equal(r.done_state, MODEM_DOWN);
	/* The abort burst first (DLE ETX CR), then the commands. */
	assert_string_equal(p.in, ABORT_BURST "ATZ\rATH0\r");
	pty_close(&p);
	run_done(&r);
}

static void
test_scripted(void **state)
{
	struct run r;
	struct pty p;
	struct modem_info info;

	(void)state;
	/* NO DIALTONE: dialed, a line failure, not the modem's. The tty is
	 * raw, 8N1, CLOCAL, no XON/XOFF in the driver, at the speed set. */
	scripted_call(&r, &p, SCRIPT_NO_DIALTONE, 57600, MODEM_FLOW_XONXOFF);
	assert_int_equal(r.res.result, CLASS1_NO_DIALTONE);
	assert_true(r.res.dialed);
	assert_false(r.res.carrier);
	assert_false(r.res.modem_fault);
	assert_int_equal(r.phases, 0);
	assert_int_equal(r.done_state, MODEM_IDLE);
	assert_string_equal(p.in,
	    ABORT_BURST "ATZ\rATE0\rAT+FCLASS=1\rATD" NUMBER "\r");
	assert_true(p.checked_tty);
	assert_int_equal(p.tio.c_iflag & (IXON | IXOFF | ICRNL | ISTRIP), 0);
	assert_int_equal(p.tio.c_lflag & (ICANON | ECHO | ISIG), 0);
	assert_int_equal(p.tio.c_oflag & OPOST, 0);
	assert_int_equal(p.tio.c_cflag & CSIZE, CS8);
	assert_int_equal(p.tio.c_cflag & (PARENB | CSTOPB | CRTSCTS), 0);
	assert_true(p.tio.c_cflag & CLOCAL);
	assert_true(p.tio.c_cflag & CREAD);
	assert_int_equal(cfgetospeed(&p.tio), B57600);
	modem_info(r.m, &info);
	assert_int_equal(info.calls, 1);
	assert_int_equal(info.failed, 1);
	assert_string_equal(info.last_result, "CLASS1_NO_DIALTONE");
	assert_string_equal(info.last_reason, "no dial tone");
	pty_close(&p);
	run_done(&r);

	/* ERROR to ATD: the modem's fault, though dialed; RTS/CTS set. */
	scripted_call(&r, &p, SCRIPT_ATD_ERROR, 230400, MODEM_FLOW_RTSCTS);
	assert_int_equal(r.res.result, CLASS1_MODEM_ERROR);
	assert_true(r.res.dialed);
	assert_true(r.res.modem_fault);
	assert_int_equal(r.done_state, MODEM_DOWN);
	assert_true(p.tio.c_cflag & CRTSCTS);
	assert_int_equal(cfgetospeed(&p.tio), B230400);
	pty_close(&p);
	run_done(&r);

	/* The software modem dies before dialing... */
	scripted_call(&r, &p, SCRIPT_DIE_AT_INIT, 0, MODEM_FLOW_XONXOFF);
	assert_int_equal(r.res.result, CLASS1_MODEM_ERROR);
	assert_string_equal(r.res.reason, "modem device closed");
	assert_false(r.res.dialed);
	assert_true(r.res.modem_fault);
	assert_true(r.res.duration_ms < CLASS1_CMD_MS);	/* not a timeout */
	assert_int_equal(modem_state(r.m), MODEM_DOWN);
	run_done(&r);

	/* ... or after dialing: the dial counts. */
	scripted_call(&r, &p, SCRIPT_DIE_AT_DIAL, 0, MODEM_FLOW_XONXOFF);
	assert_int_equal(r.res.result, CLASS1_MODEM_ERROR);
	assert_string_equal(r.res.reason, "modem device closed");
	assert_true(r.res.dialed);
	assert_true(r.res.modem_fault);
	run_done(&r);
}

/* --- calls through faxline ---------------------------------------------- */

static void
test_send_page(void **state)
{
	struct faxline l;
	struct run r;
	struct modem_info info;

	(void)state;
	faxline_start(&l, "modem", NULL);
	run_init(&r);
	run_modem(&r, l.link, 0, MODEM_FLOW_XONXOFF);
	call_and_wait(&r, FAXLINE_CSI, &page_both);
	if (r.res.result != CLASS1_OK)
		fail_msg("result %s: %s", class1_strresult(r.res.result),
		    r.res.reason);
	assert_string_equal(r.res.reason, "sent");
	assert_int_equal(r.res.pages, 1);
	assert_true(r.res.dialed);
	assert_true(r.res.carrier);
	assert_false(r.res.modem_fault);
	assert_int_equal(r.res.bps, 14400);
	assert_int_equal(r.res.compression, 2);
	assert_string_equal(r.res.remote_csi, FAXLINE_CSI);
	assert_true(r.res.duration_ms > 0);
	assert_int_equal(r.phases, 1);
	assert_int_equal(r.phase_state, MODEM_SENDING);
	assert_int_equal(r.done_state, MODEM_IDLE);
	faxline_call(&l);
	faxline_assert_json(&l, "\"result\":\"OK\"");
	faxline_assert_json(&l, "\"pages\":1,");

	/* The device is opened anew: a second call, 1-D only. */
	r.phases = 0;
	call_and_wait(&r, NULL, &page_1d);
	if (r.res.result != CLASS1_OK)
		fail_msg("result %s: %s", class1_strresult(r.res.result),
		    r.res.reason);
	assert_int_equal(r.res.compression, 1);
	assert_int_equal(r.res.pages, 1);
	assert_int_equal(r.phases, 1);
	faxline_call(&l);
	faxline_assert_json(&l, "\"result\":\"OK\"");
	modem_info(r.m, &info);
	assert_int_equal(info.state, MODEM_IDLE);
	assert_int_equal(info.calls, 2);
	assert_int_equal(info.ok, 2);
	assert_int_equal(info.failed, 0);
	assert_string_equal(info.last_result, "CLASS1_OK");
	assert_string_equal(info.last_reason, "sent");
	assert_string_equal(info.number, "");
	run_done(&r);
	faxline_stop(&l);
}

static void
test_busy(void **state)
{
	struct faxline l;
	struct run r;

	(void)state;
	faxline_start(&l, "modem", "--busy");
	run_init(&r);
	run_modem(&r, l.link, 0, MODEM_FLOW_XONXOFF);
	r.free_in_done = true;	/* the callback may free the modem */
	call_and_wait(&r, NULL, &page_both);
	assert_null(r.m);
	assert_int_equal(r.res.result, CLASS1_BUSY);
	assert_true(r.res.dialed);
	assert_false(r.res.carrier);
	assert_false(r.res.modem_fault);
	assert_int_equal(r.res.pages, 0);
	assert_int_equal(r.phases, 0);
	assert_int_equal(r.done_state, MODEM_IDLE);
	faxline_call(&l);
	faxline_assert_json(&l, "\"result\":\"BUSY\"");
	run_done(&r);
	faxline_stop(&l);
}

static void
test_wrong_recipient(void **state)
{
	struct faxline l;
	struct run r;

	(void)state;
	faxline_start(&l, "modem", NULL);
	run_init(&r);
	run_modem(&r, l.link, 0, MODEM_FLOW_XONXOFF);
	call_and_wait(&r, "+81 3 9999 0000", &page_both);
	assert_int_equal(r.res.result, CLASS1_WRONG_RECIPIENT);
	assert_int_equal(r.res.pages, 0);
	assert_true(r.res.dialed);
	assert_true(r.res.carrier);
	assert_false(r.res.modem_fault);
	assert_string_equal(r.res.remote_csi, FAXLINE_CSI);
	assert_non_null(strstr(r.res.reason, "9999"));
	assert_int_equal(r.phases, 0);
	assert_int_equal(r.done_state, MODEM_IDLE);
	faxline_call(&l);
	faxline_assert_json(&l, "\"pages\":0,");
	faxline_assert_json(&l, "\"tiff\":null");
	run_done(&r);
	faxline_stop(&l);
}

static void
test_free_in_call(void **state)
{
	struct faxline l;
	struct run r;

	(void)state;
	faxline_start(&l, "modem", NULL);
	run_init(&r);
	run_modem(&r, l.link, 0, MODEM_FLOW_XONXOFF);
	r.break_in_phase = true;
	assert_int_equal(modem_call(r.m, NUMBER, NULL, &page_both, 1, on_phase,
	    on_done, &r), 0);
	loop_for(&r, LOOP_MS);
	assert_false(r.timed_out);
	assert_int_equal(r.phases, 1);
	assert_int_equal(modem_state(r.m), MODEM_SENDING);
	/* Mid-page: everything goes, no callback follows. */
	r.m = modem_free(r.m);
	loop_for(&r, 300);
	assert_true(r.timed_out);
	assert_int_equal(r.done, 0);
	assert_int_equal(r.phases, 1);
	run_done(&r);
	faxline_stop(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_flow),
		cmocka_unit_test(test_new_bad),
		cmocka_unit_test(test_open_fails),
		cmocka_unit_test(test_scripted),
		cmocka_unit_test(test_silent_modem),
		cmocka_unit_test_teardown(test_send_page, faxline_reap),
		cmocka_unit_test_teardown(test_busy, faxline_reap),
		cmocka_unit_test_teardown(test_wrong_recipient, faxline_reap),
		cmocka_unit_test_teardown(test_free_in_call, faxline_reap),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
