#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_orders.py -- members log in and order over the real client socket;
# the crash test kills the daemon at random moments while clients order.
import os
import json
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (CLIENT, ERR, SAMPLE_CATALOG, Raw, check,  # noqa: E402
                    field_bytes, field_varint, main, req_hello)

PASSWORD = "order test password"
CARD = "4111111111111111\n12/30\nORDER TESTER\n"

# OrderState values (proto/common.proto).
STATE = {1: "RECEIVED", 2: "AUTHORIZED", 3: "AWAITING_CONFIRMATION",
         4: "CONFIRMED", 5: "DISPATCHED", 6: "ACCEPTED", 7: "FULFILLED",
         8: "REJECTED", 9: "DECLINED", 10: "EXPIRED", 11: "CANCELLED",
         12: "CONFIRMATION_FAILED", 13: "CHARGED"}


def req_login(rid, member, password):
    return field_varint(1, rid) + field_bytes(
        15, field_bytes(1, member) + field_bytes(2, password))


def req_place(rid, service, qty, key, note=""):
    body = field_bytes(1, service) + field_varint(2, qty) + field_bytes(4, key)
    if note:
        body += field_bytes(3, note)
    return field_varint(1, rid) + field_bytes(16, body)


def req_get(rid, oid):
    return field_varint(1, rid) + field_bytes(17, field_varint(1, oid))


def req_cancel(rid, oid):
    return field_varint(1, rid) + field_bytes(19, field_varint(1, oid))


def req_watch(rid):
    return field_varint(1, rid) + field_bytes(20, b"")


def order_of(reply):
    """The Order of a reply as a dict, or None."""
    o = reply.body(16)
    if o is None:
        return None
    return {"id": o.get(1, [0])[0], "member": o.get(2, [b""])[0].decode(),
            "state": STATE.get(o.get(10, [0])[0], "?"),
            "brand": o.get(11, [b""])[0].decode(),
            "last4": o.get(12, [b""])[0].decode(),
            "reason": o.get(13, [b""])[0].decode(),
            "key": o.get(17, [b""])[0].decode()}


def vault_daemon(make, extra=""):
    """A daemon whose vault keeps its key in a file: unsealed, no shares.
    extra goes on after the [vault] key_file line."""
    d = make()
    d.write_conf("[vault]\nkey_file = %s/kek\n%s" % (d.dir, extra))
    d.start()
    d.ctl("vault", "init", "--key-file", os.path.join(d.dir, "kek"),
          json_out=False)
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    return d


def add_member(d, number, card=True):
    d.ctl("member", "add", number, "--name", "Member " + number,
          "--email", "m%s@example.org" % number, stdin=PASSWORD + "\n",
          json_out=False)
    if card:
        d.ctl("member", "card", "set", number, stdin=CARD, json_out=False)


def login(d, member, password=PASSWORD):
    c = d.raw()
    check(c.call(req_hello(1)).error_code is None, "hello")
    r = c.call(req_login(2, member, password))
    check(r.error_code is None, "login %s: %r" % (member, r))
    return c


def test_login_order_watch_cancel(make):
    d = vault_daemon(make)
    add_member(d, "100001")
    c = login(d, "100001")
    w = login(d, "100001")
    r = w.call(req_watch(3))
    check(r.error_code is None and r.id == 3, "watch: %r" % r)
    r = c.call(req_place(10, "trv-fuji", 2, "k-1", "window seat"))
    o = order_of(r)
    check(o and o["state"] == "AUTHORIZED", "authorized: %r" % r)
    check(o["brand"] == "visa" and o["last4"] == "1111", "card shown: %r" % o)
    # The watcher saw the order arrive.
    ev = w.recv()
    check(ev.id == 0 and ev.body(21) is not None, "event pushed: %r" % ev)
    # The same key again: the same order, nothing new.
    again = order_of(c.call(req_place(11, "trv-fuji", 2, "k-1", "window seat")))
    check(again["id"] == o["id"], "idempotent: %r vs %r" % (again, o))
    # The same key, other parameters: refused.
    r = c.call(req_place(12, "trv-fuji", 3, "k-1", "window seat"))
    check(r.error_code == ERR["IDEMPOTENCY_MISMATCH"], "mismatch: %r" % r)
    r = c.call(req_cancel(13, o["id"]))
    check(order_of(r) and order_of(r)["state"] == "CANCELLED", "cancel: %r" % r)
    # History, as the admin sees it.
    shown = d.ctl("order", "show", str(o["id"]))
    states = [h["state"] for h in shown["history"]]
    check(states[:1] == ["RECEIVED"] and states[-1] == "CANCELLED",
          "history: %r" % states)


def test_bad_input(make):
    d = vault_daemon(make)
    add_member(d, "100001")
    add_member(d, "100002")
    raw = d.raw()
    r = raw.call(req_watch(1))
    check(r.error_code == ERR["NOT_LOGGED_IN"], "watch before login: %r" % r)
    r = raw.call(req_place(2, "trv-fuji", 1, "x"))
    check(r.error_code == ERR["NOT_LOGGED_IN"], "order before login: %r" % r)
    c = login(d, "100001")
    for qty in (0, 1000000):
        r = c.call(req_place(3, "trv-fuji", qty, "q%d" % qty))
        check(r.error_code == ERR["BAD_QUANTITY"], "qty %d: %r" % (qty, r))
    d.ctl("service", "update", "trv-rail", "--active", "no")
    r = c.call(req_place(4, "trv-rail", 1, "inactive"))
    check(r.error_code == ERR["SERVICE_UNAVAILABLE"], "inactive: %r" % r)
    mine = order_of(c.call(req_place(5, "trv-fuji", 1, "mine")))
    other = login(d, "100002")
    r = other.call(req_get(6, mine["id"]))
    check(r.error_code == ERR["NOT_FOUND"], "another member's order: %r" % r)
    r = other.call(req_cancel(7, mine["id"]))
    check(r.error_code == ERR["NOT_FOUND"], "cancel another's: %r" % r)
    r = c.call(req_cancel(8, mine["id"]))
    check(order_of(r)["state"] == "CANCELLED", "own cancel")
    r = c.call(req_cancel(9, mine["id"]))
    check(r.error_code == ERR["WRONG_STATE"], "cancel twice: %r" % r)
    # Nothing above created an order but the two placed.
    check(len(d.ctl("order", "list")) == 1, "one order in all")


def test_declines(make):
    d = vault_daemon(make, "order_limit = 20000\ndaily_limit = 20000\n")
    add_member(d, "100001", card=False)
    add_member(d, "100002")
    c = login(d, "100001")
    o = order_of(c.call(req_place(1, "trv-fuji", 1, "nocard")))
    check(o["state"] == "DECLINED" and o["reason"] == "NO_CARD", "%r" % o)
    c2 = login(d, "100002")
    o = order_of(c2.call(req_place(1, "trv-fuji", 2, "big")))
    check(o["state"] == "DECLINED" and o["reason"] == "LIMIT", "%r" % o)
    d.ctl("vault", "seal", json_out=False)
    o = order_of(c2.call(req_place(2, "trv-rail", 1, "sealed")))
    check(o["state"] == "DECLINED" and o["reason"] == "VAULT_SEALED", "%r" % o)


def test_cli(make):
    """The member's way in: twinroute logs in per run and orders."""
    d = vault_daemon(make)
    add_member(d, "100001")
    pw = os.path.join(d.dir, "pw")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    cli = ["--member", "100001", "--password-file", pw]
    watch = subprocess.Popen(
        [CLIENT, "-H", d.addr, "--json"] + cli + ["watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # let the watcher log in and subscribe
        o = d.client(*cli, "order", "trv-fuji", "--qty", "2", "--note", "x",
                     "--key", "cli-1")
        check(o["state"] == "AUTHORIZED" and o["card_last4"] == "1111",
              "order: %r" % o)
        again = d.client(*cli, "order", "trv-fuji", "--qty", "2", "--note",
                         "x", "--key", "cli-1")
        check(again["id"] == o["id"], "same key, same order")
        mine = d.client(*cli, "orders")
        check([x["id"] for x in mine] == [o["id"]], "orders: %r" % mine)
        st = d.client(*cli, "order-status", str(o["id"]))
        check(st["state"] == "AUTHORIZED", "status: %r" % st)
        c = d.client(*cli, "cancel", str(o["id"]))
        check(c["state"] == "CANCELLED", "cancel: %r" % c)
        r = d.client("--member", "100001", "--password-file", pw, "cancel",
                     str(o["id"]), check=False)
        check(r.returncode == 1, "cancel twice refused: %r" % r.stderr)
        time.sleep(0.5)
    finally:
        watch.send_signal(signal.SIGTERM)
        out, err = watch.communicate(timeout=10)
    check(watch.returncode == 0, "watch exits 0 on SIGTERM: %r" % err)
    states = [json.loads(ln)["order"]["state"] for ln in out.splitlines()
              if ln.strip()]
    check(states[-1:] == ["CANCELLED"] and "AUTHORIZED" in states,
          "watch saw the order's transitions: %r" % states)
    # A wrong password: refused, and no password on the command line.
    with open(pw, "w") as f:
        f.write("wrong password\n")
    r = d.client(*cli, "orders", check=False)
    check(r.returncode == 1 and "login failed" in r.stderr, "%r" % r.stderr)


class Client(threading.Thread):
    """Orders in a loop with idempotency keys; reconnects after a kill and
    retries what was not acknowledged with the same key."""

    def __init__(self, d, member, stop):
        super().__init__(daemon=True)
        self.d, self.member, self.stop_ev = d, member, stop
        self.acked = {}      # key -> order id
        self.pending = None  # key sent, not acknowledged
        self.retries = 0     # keys sent again after a reconnect
        self.n = 0
        self.errors = []

    def connect(self):
        while not self.stop_ev.is_set():
            try:
                addr = open(os.path.join(self.d.state, "client.addr")).read().strip()
                host, port = addr.rsplit(":", 1)
                c = Raw(addr, timeout=10)
                if c.call(req_hello(1)).error_code is None and \
                        c.call(req_login(2, self.member, PASSWORD)).error_code is None:
                    return c
            except (OSError, AttributeError, ValueError):
                pass
            time.sleep(0.05)
        return None

    def place(self, c, key):
        r = c.call(req_place(3, "trv-rail", 1, key))
        if r is None:
            raise OSError("closed")
        o = order_of(r)
        if o is None:
            self.errors.append("%s: %r" % (key, r))
            return
        self.acked[key] = o["id"]
        self.pending = None

    def run(self):
        c = None
        while True:
            try:
                if c is None:
                    c = self.connect()
                    if c is None:
                        return
                    if self.pending is not None:
                        self.retries += 1
                if self.pending is None:
                    if self.stop_ev.is_set():
                        return
                    self.n += 1
                    self.pending = "%s-%d" % (self.member, self.n)
                self.place(c, self.pending)
            except (OSError, ValueError):
                c = None
                time.sleep(0.02)


def test_crash_safety(make):
    # Every client logs in again after each kill: no per-address limit.
    d = vault_daemon(make, "[login]\naddress_attempts = 100000\n")
    members = ["2000%02d" % i for i in range(8)]
    for m in members:
        add_member(d, m)
    stop = threading.Event()
    clients = [Client(d, m, stop) for m in members]
    for t in clients:
        t.start()
    rnd = random.Random(4242)

    def total():
        return sum(len(t.acked) for t in clients)

    for cycle in range(10):
        # Kill after a random number of acknowledgements (not after a
        # time: a slow machine gets the same test), and a random moment
        # within the next orders.
        want = total() + rnd.randint(5, 15)
        deadline = time.time() + 60
        while total() < want:
            check(time.time() < deadline,
                  "cycle %d: orders stopped coming: %d of %d" % (
                      cycle, total(), want))
            time.sleep(0.01)
        time.sleep(rnd.uniform(0, 0.05))
        d.kill()
        # The store must open cleanly every time.
        d.start()
    time.sleep(0.5)
    stop.set()
    for t in clients:
        t.join(60)
        check(not t.is_alive(), "client %s finished" % t.member)
    time.sleep(0.5)  # let recovered RECEIVED orders reach the vault
    orders = d.ctl("order", "list", "--limit", "100000")
    by_key = {}
    for o in orders:
        by_key.setdefault((o["member"], o["idempotency_key"]), []).append(o)
    acked = sum(len(t.acked) for t in clients)
    check(acked >= 50, "clients got orders through: %d" % acked)
    print("crash test: 10 kills, %d orders acknowledged, %d in the store, "
          "%d retried after a kill" % (acked, len(orders),
                                       sum(t.retries for t in clients)))
    for t in clients:
        check(not t.errors, "client errors: %r" % t.errors[:3])
        for key, oid in t.acked.items():
            got = by_key.get((t.member, key), [])
            check(len(got) == 1 and got[0]["id"] == oid,
                  "acknowledged %s -> %d exactly once: %r" % (key, oid, got))
    for k, v in by_key.items():
        check(len(v) == 1, "key %r maps to %d orders" % (k, len(v)))
    # The member index (written behind the orders, caught up at each
    # start) holds each member's orders, every one, newest first.
    for m in members:
        want = sorted((o["id"] for o in orders if o["member"] == m),
                      reverse=True)
        got = [o["id"] for o in d.ctl("order", "list", "--member", m,
                                      "--limit", "100000")]
        check(got == want, "member %s: the index lists %d orders of %d" % (
            m, len(got), len(want)))
    states = {o["state"] for o in orders}
    check(states <= {"AUTHORIZED", "DECLINED"}, "settled states: %r" % states)
    authorized = {o["id"] for o in orders if o["state"] == "AUTHORIZED"}
    check(d.stop() == 0, "clean stop")
    # Every AUTHORIZED order has its mail job, and nothing else has one.
    r = subprocess.run(["mdb_dump", "-s", "outbox_mail",
                        os.path.join(d.state, "broker")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "outbox readable: %s" % r.stderr)
    body = r.stdout.split("HEADER=END", 1)[1].split("DATA=END")[0]
    # Hex lines, key then value: keys are 8-byte big-endian order ids.
    keys = [ln.strip() for ln in body.splitlines() if ln.strip()][0::2]
    ids = {int(k, 16) for k in keys}
    check(ids == authorized, "outbox matches AUTHORIZED orders: %d jobs, "
          "%d authorized" % (len(ids), len(authorized)))


if __name__ == "__main__":
    main([test_login_order_watch_cancel, test_bad_input, test_declines,
          test_cli, test_crash_safety])
