#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_faults.py -- fault injection over the whole flow: while members
# order and confirm by mail, the daemon is killed with SIGKILL at random
# points, the mail relay stops and comes back, the provider's agent is
# killed and restarted (its TLS session drops), and a fax line turns busy
# and drops a call. After it settles: every acknowledged order exists
# once, was confirmed, dispatched and faxed by the rules, and the card
# number is nowhere but on the fax pages.
#
# TWINROUTE_FAULTS_CYCLES (default 3) sets the number of kill cycles and
# TWINROUTE_FAULTS_ORDERS (default 12) the orders to acknowledge: the
# long form is e.g. TWINROUTE_FAULTS_CYCLES=10 TWINROUTE_FAULTS_ORDERS=60.
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import BIN, TestFailure, check, main  # noqa: E402
from test_orders import Client, add_member  # noqa: E402
from test_mail import (DOMAIN, Sink, free_port, lmtp, mail_daemon,  # noqa: E402
                       parse_dump, token_of)
from test_fax import CARD_NUMBER, CSI, Line, no_card_number  # noqa: E402
from test_provider import GEN_CERTS, PROVIDER, pin  # noqa: E402

AGENT = os.path.join(BIN, "tools", "twinroute-provider")
CYCLES = int(os.environ.get("TWINROUTE_FAULTS_CYCLES", "3"))
ORDERS = int(os.environ.get("TWINROUTE_FAULTS_ORDERS", "12"))
SUBJECT_ID = re.compile(r"order (\d+)\b")


def faults_daemon(make, port):
    d = make(name="trfaults")
    d.pki = os.path.join(d.dir, "pki")
    subprocess.run([GEN_CERTS, d.pki, PROVIDER], capture_output=True,
                   check=True)
    d.fax_devs = [os.path.join(d.dir, "ttyF%d" % i) for i in range(2)]
    extra = ("[login]\naddress_attempts = 100000\n"
             "[provider]\nlisten = 127.0.0.1:0\ntls_cert = %s/server.pem\n"
             "tls_key = %s/server.key\nheartbeat = 1s\n"
             "[fax]\nmodems = %s\nflow = xonxoff\nretry_busy = 1s\n"
             "retry_no_answer = 1s\nretry_no_carrier = 1s\n"
             "retry_protocol = 1s\nretry_modem = 1s\njitter = 0\n"
             "max_dials = 100\nmax_tries = 100\n" %
             (d.pki, d.pki, " ".join(d.fax_devs)))
    return mail_daemon(lambda name="x": d, port, "", extra)


def ctl_quiet(d, *args):
    """twinroutectl while the daemon may be down: None on failure."""
    try:
        return d.ctl(*args)
    except (TestFailure, ValueError, OSError, subprocess.SubprocessError):
        return None


class Confirmer(threading.Thread):
    """Replies over LMTP to the newest confirmation of every order not
    confirmed yet, again and again until it is (a reply may meet a dead
    daemon, or a token a later resend replaced)."""

    def __init__(self, d, sink, stop):
        super().__init__(daemon=True)
        self.d, self.sink, self.stop_ev = d, sink, stop
        self.done = set()
        self.mails = {}        # order id -> messages received

    def run(self):
        while not self.stop_ev.is_set():
            newest = {}
            counts = {}
            for raw in self.sink.messages():
                try:
                    msg = parse_dump(raw)
                    m = SUBJECT_ID.search(str(msg["Subject"]))
                    token = token_of(msg)
                except Exception:  # a dump still being written
                    continue
                if m and token:
                    oid = int(m.group(1))
                    newest[oid] = (token, str(msg["To"]))
                    counts[oid] = counts.get(oid, 0) + 1
            self.mails = counts
            for oid, (token, to) in sorted(newest.items()):
                if oid in self.done or self.stop_ev.is_set():
                    continue
                o = ctl_quiet(self.d, "order", "show", str(oid))
                if o is None:
                    continue
                if o["state"] not in ("AUTHORIZED", "AWAITING_CONFIRMATION"):
                    self.done.add(oid)
                    continue
                if o["state"] == "AWAITING_CONFIRMATION":
                    sender = to.strip("<> ").split("<")[-1].rstrip(">")
                    lmtp(self.d, sender, "confirm+%s@%s" % (token, DOMAIN))
            time.sleep(0.2)


class Budget:
    """The clients' stop event: set by the test, or once the orders to
    acknowledge are in (the card route is slow: a fax takes seconds)."""

    def __init__(self, stop):
        self.stop, self.clients = stop, []

    def total(self):
        return sum(len(t.acked) for t in self.clients)

    def is_set(self):
        return self.stop.is_set() or self.total() >= ORDERS


class PacedClient(Client):
    """A member who orders about once a second, across the kills."""

    def place(self, c, key):
        super().place(c, key)
        time.sleep(random.uniform(0.3, 1.2))


class Agent:
    """twinroute-provider run, its JSON lines appended to one file."""

    def __init__(self, d):
        self.d = d
        self.out = os.path.join(d.dir, "agent.jsonl")
        self.proc = None

    def start(self):
        with open(os.path.join(self.d.state, "provider.addr")) as f:
            addr = f.read().strip()
        self.proc = subprocess.Popen(
            [AGENT, "-H", addr, "--provider", PROVIDER,
             "--cert", os.path.join(self.d.pki, PROVIDER + ".pem"),
             "--key", os.path.join(self.d.pki, PROVIDER + ".key"),
             "--ca", os.path.join(self.d.pki, "ca.pem"), "run",
             "--max-backoff", "2"],
            stdout=open(self.out, "a"), stderr=subprocess.DEVNULL)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def lines(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            return [json.loads(x) for x in f if x.strip()]


def test_faults_settle(make):
    port = free_port()
    d = faults_daemon(make, port)
    sink = Sink(d, port)
    lines = [Line(d, dev, "--csi", CSI) for dev in d.fax_devs]
    old_lines = []
    stop = threading.Event()
    agent = Agent(d)
    confirmer = None
    members = ["3000%02d" % i for i in range(4)]
    clients = []
    rnd = random.Random(1234)
    kills = 0
    try:
        for m in members:
            add_member(d, m)
        pin(d)
        d.ctl("provider", "fax-ident", PROVIDER, CSI, json_out=False)
        agent.start()
        confirmer = Confirmer(d, sink, stop)
        confirmer.start()
        budget = Budget(stop)
        clients = [PacedClient(d, m, budget) for m in members]
        budget.clients = clients
        for t in clients:
            t.start()
        total = budget.total

        for cycle in range(CYCLES):
            # Kill after a random number of acknowledgements, while the
            # members still order; the last cycles may find them done.
            want = min(ORDERS, total() + rnd.randint(1, 4))
            deadline = time.time() + 60
            while total() < want:
                check(time.time() < deadline, "cycle %d: no orders" % cycle)
                time.sleep(0.02)
            fault = cycle % 3
            if fault == 0:
                # The relay goes away for a while.
                sink.stop()
                time.sleep(rnd.uniform(0.5, 1.5))
                sink = Sink(d, port)
                confirmer.sink = sink
            elif fault == 1:
                # The provider's session drops; a fax line turns busy.
                agent.kill()
                old_lines.append(lines[0])
                lines[0].stop()
                lines[0] = Line(d, d.fax_devs[0], "--csi", CSI, "--busy")
            else:
                # A call drops before its page is confirmed.
                old_lines.append(lines[1])
                lines[1].stop()
                lines[1] = Line(d, d.fax_devs[1], "--csi", CSI,
                                "--drop-after-pages", "1")
            time.sleep(rnd.uniform(0, 0.5))
            d.kill()
            kills += 1
            d.start()
            # The provider listener is on a new port: the agent is told.
            agent.kill()
            agent.start()
            # The faults go away again before the next cycle.
            for i, dev in enumerate(d.fax_devs):
                if lines[i].proc.args[-1] in ("--busy", "1"):
                    time.sleep(rnd.uniform(0.5, 2))
                    old_lines.append(lines[i])
                    lines[i].stop()
                    lines[i] = Line(d, dev, "--csi", CSI)
        deadline = time.time() + 120
        while total() < ORDERS:
            check(time.time() < deadline, "orders: %d" % total())
            time.sleep(0.05)
        stop.set()
        for t in clients:
            t.join(60)
            check(not t.is_alive(), "client %s finished" % t.member)
        acked = {}
        for t in clients:
            for key, oid in t.acked.items():
                acked[(t.member, key)] = oid
        check(len(acked) >= ORDERS, "orders acknowledged: %d" % len(acked))
        t_loaded = time.time()

        # Settle: the confirmer goes on replying until every order moved.
        confirmer2 = Confirmer(d, sink, threading.Event())
        confirmer2.start()
        # Every page is a call of 8 to 10 s on one of two lines, some
        # busy or dropped and retried: the time grows with the orders.
        deadline = time.time() + 120 + 10 * ORDERS
        pending = set(acked.values())
        resent = set()
        while pending and time.time() < deadline:
            for oid in sorted(pending):
                o = ctl_quiet(d, "fax", "show", str(oid))
                if o is None:
                    break
                # A confirmation the relay took and lost as it was
                # stopped: the operator sends it again, as README says.
                if (o["state"] == "AWAITING_CONFIRMATION" and
                        oid not in resent and
                        time.time() - t_loaded > 20):
                    d.ctl("order", "resend-confirmation", str(oid),
                          json_out=False)
                    resent.add(oid)
                if (o["state"] in ("DISPATCHED", "ACCEPTED") and
                        o.get("fax_state") == "FAX_SENT"):
                    pending.discard(oid)
            time.sleep(0.5)
        confirmer2.stop_ev.set()
        confirmer2.join(30)
        print("faults: settled in %.1f s (%d confirmations resent)" % (
            time.time() - t_loaded, len(resent)))
        check(not pending, "orders that did not settle: %s" % sorted(
            (oid, (ctl_quiet(d, "fax", "show", str(oid)) or {}).get("state"),
             (ctl_quiet(d, "fax", "show", str(oid)) or {}).get("fax_state"))
            for oid in pending))

        # Every acknowledged order once; no key maps to two orders.
        orders = d.ctl("order", "list", "--limit", "100000")
        by_key = {}
        for o in orders:
            by_key.setdefault((o["member"], o["idempotency_key"]), []).append(o)
        for key, oid in acked.items():
            got = by_key.get(key, [])
            check(len(got) == 1 and got[0]["id"] == oid,
                  "key %r: %r, acknowledged as %d" % (key, got, oid))
        for key, got in by_key.items():
            check(len(got) == 1, "key %r maps to %d orders" % (key, len(got)))

        # Confirmations: at least one per order, and never more than one
        # per attempt (a kill may repeat the attempt in flight, a relay
        # outage defers it).
        mails = confirmer2.mails
        for oid in acked.values():
            n = mails.get(oid, 0)
            check(1 <= n <= 1 + kills + CYCLES + (oid in resent),
                  "order %d got %d confirmations" % (oid, n))

        # Dispatches: each order reached the agent; a repeat is flagged
        # as a redelivery.
        seen = {}
        for ln in agent.lines():
            seen.setdefault(ln["order_id"], []).append(ln)
        for oid in acked.values():
            got = seen.get(oid, [])
            check(got, "order %d never reached the agent" % oid)
            check(all(x["redelivery"] for x in got[1:]),
                  "order %d delivered again unflagged: %r" % (oid, got))
        q = d.ctl("queue", "provider")
        check(not q.get("queue") and int(q.get("total", 0)) == 0,
              "the provider outbox is empty: %r" % q)

        # Faxes: sent by the rules (one page confirmed), the queue empty.
        for oid in acked.values():
            o = d.ctl("fax", "show", str(oid))
            rep = o.get("fax", {})
            check(rep.get("result") == "OK" and int(rep.get("pages", 0)) == 1
                  and rep.get("remote_csi") == CSI,
                  "order %d fax report: %r" % (oid, rep))
        q = d.ctl("queue", "fax")
        check(not q.get("queue"), "the fax queue is empty: %r" % q)
        calls = []
        for ln in old_lines + lines:
            ln.stop()
            calls += [json.loads(x) for x in ln.buf.decode().splitlines()]
        ok_calls = [c for c in calls if c["result"] == "OK"]
        check(len(ok_calls) >= len(acked),
              "fax calls OK: %d for %d orders" % (len(ok_calls), len(acked)))
        for c in ok_calls:
            check(c["width"] == 1728 and c["rows"] == 2287,
                  "a whole page each: %r" % c)

        # The card number: on the fax pages only.
        class AllLines:
            buf = b"".join(x.buf for x in old_lines + lines)
        no_card_number(d, AllLines)
        check(CARD_NUMBER.encode() not in open(agent.out, "rb").read(),
              "no card number at the provider's agent")
        print("faults: %d kills, %d orders, %d confirmations, %d dispatch "
              "lines, %d fax calls (%d OK)" % (
                  kills, len(acked), sum(mails.values()),
                  len(agent.lines()), len(calls), len(ok_calls)))
        check(d.stop() == 0, "twinrouted exits 0 after it all")
    finally:
        stop.set()
        agent.kill()
        for ln in old_lines + lines:
            ln.stop()
        sink.stop()


if __name__ == "__main__":
    main([test_faults_settle])
