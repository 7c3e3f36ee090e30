#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_fax.py -- the card route: a confirmed order's card page goes through
# the daemon's Class 1 fax dispatcher to faxline's simulated fax, and
# arrives as exactly the page the vault composed; CSI pinning, retries,
# failures, modem faults and a restart mid-call.
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import BIN, TestFailure, check, main  # noqa: E402
from test_orders import add_member  # noqa: E402
from test_mail import Sink, free_port, mail_daemon  # noqa: E402
from test_provider import confirm  # noqa: E402

FAXLINE = os.path.join(BIN, "tools", "faxline")
PAGECHECK = os.path.join(BIN, "tests", "fax-pagecheck")
PROVIDER = "fuji-travel"            # of conf/sample-catalog.jsonl
PROVIDER_NAME = "Fuji Travel Desk"
NUMBER = "81554340004"              # its fax, +81554340004, dialled
CSI = "+81 554 340004"
TSI = "TWINROUTE TEST"
CARD_NUMBER = "4111111111111111"    # test_orders.CARD
CARD_FIELDS = {"holder": "ORDER TESTER", "number": CARD_NUMBER,
               "exp_month": "12", "exp_year": "2030"}


class Line:
    """faxline on a pty whose slave is linked at path."""

    def __init__(self, d, path, *args):
        self.path = path
        self.tiffs = os.path.join(d.dir, "faxes")
        os.makedirs(self.tiffs, exist_ok=True)
        self.proc = subprocess.Popen(
            [FAXLINE, "--link", path, "--tiff-dir", self.tiffs,
             "--expect-number", NUMBER] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buf = b""
        deadline = time.time() + 10
        while not os.path.exists(path):
            check(time.time() < deadline and self.proc.poll() is None,
                  "faxline did not make %s" % path)
            time.sleep(0.02)

    def calls(self, n, timeout=60):
        """Wait for n call lines in all; return them all."""
        deadline = time.time() + timeout
        while self.buf.count(b"\n") < n:
            left = deadline - time.time()
            check(left > 0, "faxline: %d calls of %d: %r" % (
                self.buf.count(b"\n"), n, self.buf))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                check(chunk, "faxline ended: %r" % self.buf)
                self.buf += chunk
        return [json.loads(x) for x in self.buf.decode().splitlines()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout and not self.proc.stdout.closed:
            self.buf += self.proc.stdout.read() or b""
            self.proc.stdout.close()


def fax_daemon(make, port, extra=""):
    d = make(name="trfax")
    device = d.fax_dev = os.path.join(d.dir, "ttyFAX")
    fax = ("[fax]\nmodems = %s\nflow = xonxoff\nident = %s\n"
           "retry_busy = 1s\nretry_no_answer = 1s\nretry_no_carrier = 1s\n"
           "retry_protocol = 1s\nretry_modem = 1s\njitter = 0\n%s" %
           (device, TSI, extra))
    return mail_daemon(lambda name="x": d, port, "", fax)


def fax_show(d, oid):
    return d.ctl("fax", "show", str(oid))


def order_of(show):
    return show["orders"][0] if "orders" in show else show


def wait_fax(d, oid, states, timeout=60):
    if isinstance(states, str):
        states = (states,)
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = order_of(fax_show(d, oid))
        if last.get("fax_state", "FAX_NONE") in states:
            return last
        time.sleep(0.1)
    raise TestFailure("order %d fax is %s, wanted %s: %r" % (
        oid, last and last.get("fax_state"), states, last))


def start(make, extra=""):
    port = free_port()
    d = fax_daemon(make, port, extra)
    sink = Sink(d, port)
    add_member(d, "100001")
    return d, sink


def page_fields(d, o):
    rep = o["fax"]
    fields = {
        "broker_name": "twinroute", "broker_ident": TSI,
        "time_unix": str(rep["page_unix"]),
        "provider_id": PROVIDER, "provider_name": PROVIDER_NAME,
        "order_id": str(o["id"]), "fax_ref": rep["fax_ref"],
        "service_name": o["service_name"],
        "quantity": str(o["quantity"]),
        "amount": "%d %s" % (int(o["amount"]), o["currency"]),  # JPY
    }
    fields.update(CARD_FIELDS)
    return "".join("%s=%s\n" % kv for kv in fields.items())


def pagecheck(d, o, tiff):
    r = subprocess.run([PAGECHECK, tiff], input=page_fields(d, o),
                       capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def no_card_number(d, line):
    """The card number is on the fax page only: not in the daemon's log,
    its store, its vault's store, or what faxline printed."""
    needles = [CARD_NUMBER.encode(), " ".join(
        CARD_NUMBER[i:i + 4] for i in range(0, 16, 4)).encode()]
    places = {"log": d.log().encode(), "faxline": line.buf}
    for root, _, files in os.walk(d.state):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not p.endswith(".sock"):
                with open(p, "rb") as fh:
                    places[p] = fh.read()
    for where, data in places.items():
        for n in needles:
            check(n not in data, "card number in %s" % where)


def test_page_sent_and_pinned(make):
    line = None
    d, sink = start(make)
    try:
        line = Line(d, d.fax_dev, "--csi", CSI)
        d.ctl("provider", "fax-ident", PROVIDER, CSI, json_out=False)
        oid = confirm(d, sink, "100001", "fax-1", 1)
        o = wait_fax(d, oid, "FAX_SENT")
        rep = o["fax"]
        check(rep["result"] == "OK" and rep["remote_csi"] == CSI and
              int(rep["pages"]) == 1 and int(rep["bps"]) >= 2400 and
              rep["fax_ref"].startswith("FX-"), "report: %r" % rep)
        states = [h.get("fax") for h in o["history"] if h.get("fax")]
        check(states[-3:] == ["FAX_DIALING", "FAX_SENDING", "FAX_SENT"],
              "fax history: %r" % states)
        call = line.calls(1)[0]
        check(call["width"] == 1728 and call["rows"] == 2287 and
              call["rate"] == int(rep["bps"]),
              "a whole A4 fine page at the reported rate: %r" % call)
        check(call["result"] == "OK" and call["pages"] == 1 and
              call["remote_ident"].strip() == TSI and call["number"] == NUMBER,
              "faxline: %r" % call)
        rc, out = pagecheck(d, o, call["tiff"])
        check(rc == 0 and out.startswith("match"),
              "the received page is the composed one: %s" % out)
        # The checker can fail: another card number is another page.
        rc2 = subprocess.run(
            [PAGECHECK, call["tiff"]],
            input=page_fields(d, o).replace(CARD_NUMBER, "4242424242424242"),
            capture_output=True, text=True, timeout=60).returncode
        check(rc2 == 1, "a different page does not match")
        q = d.ctl("queue", "fax")
        check(not q.get("queue"), "the job is gone: %r" % q)
        check(int(q["stats"]["sent"]) == 1, "stats: %r" % q)
        shown = json.dumps([fax_show(d, oid), q, d.ctl("modem", "list"),
                            d.ctl("order", "show", str(oid))])
        check(CARD_NUMBER not in shown and CARD_NUMBER[:12] not in shown,
              "no card number in what the admin sees")
        no_card_number(d, line)
    finally:
        if line:
            line.stop()
        d.stop()


def test_wrong_csi_hangs_up(make):
    line = None
    d, sink = start(make)
    dev = d.fax_dev
    try:
        line = Line(d, dev, "--csi", "+81 3 0000 0000")
        d.ctl("provider", "fax-ident", PROVIDER, CSI, json_out=False)
        oid = confirm(d, sink, "100001", "fax-2", 1)
        o = wait_fax(d, oid, "FAX_FAILED")
        check(o["fax"]["result"] == "WRONG_RECIPIENT" and
              o["fax"]["remote_csi"] == "+81 3 0000 0000" and
              int(o["fax"].get("pages", 0)) == 0, "report: %r" % o["fax"])
        call = line.calls(1)[0]
        check(call["pages"] == 0 and call["tiff"] is None,
              "no page reached the wrong fax: %r" % call)
        # The admin fixes the pin and retries: sent.
        d.ctl("provider", "fax-ident", PROVIDER, "+81 3 0000 0000",
              json_out=False)
        d.ctl("fax", "retry", str(oid), json_out=False)
        o = wait_fax(d, oid, "FAX_SENT")
        check(int(o["fax"]["pages"]) == 1, "sent after retry: %r" % o["fax"])
    finally:
        if line:
            line.stop()
        d.stop()


def test_busy_no_carrier_and_drop(make):
    line = None
    d, sink = start(make, "max_no_carrier = 2\n")
    dev = d.fax_dev
    try:
        line = Line(d, dev, "--busy")
        oid = confirm(d, sink, "100001", "fax-3", 1)
        line.calls(2)
        q = d.ctl("queue", "fax")["queue"]
        check(len(q) == 1 and int(q[0]["dials"]) >= 2 and
              q[0]["state"] in ("FAX_QUEUED", "FAX_DIALING"),
              "busy: queued again: %r" % q)
        o = order_of(fax_show(d, oid))
        check(o["fax_state"] != "FAX_SENT", "not sent while busy")
        line.stop()

        # Answered by no fax: once more, then failed.
        line = Line(d, dev, "--no-carrier")
        o = wait_fax(d, oid, "FAX_FAILED")
        check(o["fax"]["result"] == "NO_CARRIER", "no carrier: %r" % o["fax"])
        check(sum(1 for c in line.calls(2) if c["result"] == "NO CARRIER")
              == 2, "two NO CARRIER calls")
        line.stop()

        # The line drops after the page, before its confirmation: never
        # reported sent; then a good line sends it.
        line = Line(d, dev, "--drop-after-pages", "1")
        d.ctl("fax", "retry", str(oid), json_out=False)
        line.calls(1)
        o = order_of(fax_show(d, oid))
        check(o["fax_state"] in ("FAX_QUEUED", "FAX_DIALING") and
              o["fax"]["result"] != "OK",
              "a dropped call is not a sent fax: %r" % o)
        line.stop()
        line = Line(d, dev)
        o = wait_fax(d, oid, "FAX_SENT")
        check(int(o["fax"]["dials"]) >= 1, "report: %r" % o["fax"])
        # The daemon served throughout.
        check(d.ctl("status")["pid"], "status")
    finally:
        if line:
            line.stop()
        d.stop()


def test_modem_faults_and_restart(make):
    line = None
    d, sink = start(make)
    dev = d.fax_dev
    master = slave = None
    try:
        # No device at that path: the modem is DOWN, the job waits and
        # counts no dial.
        oid = confirm(d, sink, "100001", "fax-4", 1)
        deadline = time.time() + 20
        while True:
            m = d.ctl("modem", "list")[0]
            if m["state"] == "DOWN":
                break
            check(time.time() < deadline, "modem DOWN: %r" % m)
            time.sleep(0.1)
        check("No such file" in m["last_reason"], "reason: %r" % m)
        q = d.ctl("queue", "fax")["queue"]
        check(len(q) == 1 and int(q[0].get("dials", 0)) == 0,
              "no dial counted: %r" % q)

        # A device that never answers AT: a modem fault too.
        master, slave = pty.openpty()
        os.symlink(os.ttyname(slave), dev)
        deadline = time.time() + 30
        while True:
            m = d.ctl("modem", "list")[0]
            if "does not answer" in m.get("last_reason", ""):
                break
            check(time.time() < deadline, "modem silent: %r" % m)
            time.sleep(0.2)
        os.unlink(dev)
        os.close(master)
        os.close(slave)
        master = slave = None

        # The modem comes back: the page goes, and survives a restart
        # done in the middle of the next order's call.
        line = Line(d, dev, "--realtime")
        o = wait_fax(d, oid, "FAX_SENT", timeout=120)
        oid2 = confirm(d, sink, "100001", "fax-5", 2)
        wait_fax(d, oid2, ("FAX_DIALING", "FAX_SENDING"))
        d.kill()
        line.stop()
        line = Line(d, dev)
        d.start()
        o2 = wait_fax(d, oid2, "FAX_SENT", timeout=120)
        hist = [h.get("cause", "") for h in o2["history"]]
        check(any("cut by a stop" in c for c in hist),
              "requeued after the restart: %r" % hist)
        check(order_of(fax_show(d, oid))["fax_state"] == "FAX_SENT",
              "the first stays sent")
        no_card_number(d, line)
    finally:
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
        if os.path.islink(dev):
            os.unlink(dev)
        if line:
            line.stop()
        d.stop()


if __name__ == "__main__":
    main([test_page_sent_and_pinned, test_wrong_csi_hangs_up,
          test_busy_no_carrier_and_drop, test_modem_faults_and_restart])
