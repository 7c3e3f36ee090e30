#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_provider.py -- the provider channel over real TLS: dispatch with
# acknowledgement, redelivery across disconnects and SIGKILL, reports,
# the provider's own services, refusals; and the agent twinroute-provider.
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (BIN, ERR, SOURCE, Raw, Reply, TestFailure,  # noqa: E402
                    check, decode, field_bytes, field_varint, main)
from test_orders import add_member, login, req_watch  # noqa: E402
from test_mail import (DOMAIN, Sink, free_port, lmtp, mail_daemon,  # noqa: E402
                       parse_dump, place, token_of, wait_state)

CARD_NUMBER = b"4111111111111111"
GEN_CERTS = os.path.join(SOURCE, "tools", "gen-certs")
AGENT = os.path.join(BIN, "tools", "twinroute-provider")
PROVIDER = "fuji-travel"          # of conf/sample-catalog.jsonl
OTHER = "kanda-translate"         # another provider there

REPORT = {"ACCEPTED": 1, "REJECTED": 2, "FULFILLED": 3, "CHARGED": 4}
STATE = {5: "DISPATCHED", 6: "ACCEPTED", 7: "FULFILLED", 8: "REJECTED",
         13: "CHARGED", 4: "CONFIRMED"}


# ProviderRequest (proto/provider.proto field numbers).
def p_hello(rid):
    return field_varint(1, rid) + field_bytes(
        10, field_varint(1, 1) + field_bytes(2, "trtest"))


def p_auth(rid, provider, token=""):
    body = field_bytes(1, provider)
    if token:
        body += field_bytes(2, token)
    return field_varint(1, rid) + field_bytes(11, body)


def p_ack(rid, oid):
    return field_varint(1, rid) + field_bytes(12, field_varint(1, oid))


def p_report(rid, oid, kind, reason=""):
    body = field_varint(1, oid) + field_varint(2, REPORT[kind])
    if reason:
        body += field_bytes(3, reason)
    return field_varint(1, rid) + field_bytes(13, body)


def p_upsert(rid, sid, name, price=1000, currency="JPY", category="travel"):
    money = field_varint(1, price) + field_bytes(2, currency)
    svc = (field_bytes(1, sid) + field_bytes(3, category) +
           field_bytes(4, name) + field_bytes(6, money) + field_varint(7, 1))
    return field_varint(1, rid) + field_bytes(14, field_bytes(1, svc))


def dispatch_of(reply):
    d = reply.body(18)
    if d is None:
        return None
    return {"order_id": d[1][0], "fax_reference": d[10][0].decode(),
            "redelivery": bool(d.get(11, [0])[0]),
            "attempt": d.get(13, [0])[0],
            "member_email": d.get(8, [b""])[0].decode()}


class PConn(Raw):
    """A TLS connection to the provider listener, speaking frames; every
    byte received is kept for the leak check."""

    def __init__(self, addr, cert=None, key=None, timeout=10):
        host, port = addr.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, int(port)), timeout)
        self.sock = ctx.wrap_socket(raw)
        self.buf = b""
        self.seen = b""

    def recv_frame(self):
        p = super().recv_frame()
        if p is not None:
            self.seen += p
        return p

    def recv_skip_beats(self):
        """The next frame that is not a heartbeat."""
        while True:
            r = self.recv()
            if r is None or 17 not in r.fields:
                return r

    def call(self, payload):
        self.send_frame(payload)
        return self.recv_skip_beats()


def certs(d):
    out = subprocess.run([GEN_CERTS, os.path.join(d.dir, "pki"), PROVIDER,
                          OTHER], capture_output=True, text=True, check=True)
    return os.path.join(d.dir, "pki"), out.stdout


def provider_daemon(make, sink_port, extra=""):
    d = make(name="trprov")
    pki = os.path.join(d.dir, "pki")
    subprocess.run([GEN_CERTS, pki, PROVIDER, OTHER], capture_output=True,
                   check=True)
    d.pki = pki
    # The sessions here never answer heartbeats: at 5 s they stay up for
    # three missed beats (15 s), however loaded the machine running them.
    prov = ("[provider]\nlisten = 127.0.0.1:0\ntls_cert = %s/server.pem\n"
            "tls_key = %s/server.key\nheartbeat = 5s\n%s" % (pki, pki, extra))
    d2 = mail_daemon(lambda name="x": d, sink_port, "", prov)
    with open(os.path.join(d.state, "provider.addr")) as f:
        d.paddr = f.read().strip()
    return d2


def confirm(d, sink, member, key, n_mails, service="trv-fuji"):
    """Place an order and confirm it by mail: its id."""
    oid = place(d, member, key, service)
    msgs = sink.wait(n_mails)
    token = None
    for m in msgs:
        msg = parse_dump(m)
        if ("order %d " % oid) in str(msg["Subject"]):
            token = token_of(msg)
    check(token is not None, "the confirmation of order %d" % oid)
    wait_state(d, oid, "AWAITING_CONFIRMATION")
    rc, out = lmtp(d, "m%s@example.org" % member,
                   "confirm+%s@%s" % (token, DOMAIN))
    check(rc == 0, "confirmed by mail: %s" % out)
    wait_state(d, oid, "CONFIRMED")
    return oid


def session(d, cert=True, provider=PROVIDER, token=""):
    c = PConn(d.paddr, *((os.path.join(d.pki, provider + ".pem"),
                          os.path.join(d.pki, provider + ".key"))
                         if cert else (None, None)))
    r = c.call(p_hello(1))
    check(r.error_code is None and r.body(10) is not None, "hello: %r" % r)
    r = c.call(p_auth(2, provider, token))
    return c, r


def pin(d, provider=PROVIDER):
    d.ctl("provider", "cert", provider, os.path.join(d.pki, provider + ".pem"),
          json_out=False)


def test_refusals(make):
    port = free_port()
    d = provider_daemon(make, port)
    sink = Sink(d, port)
    try:
        add_member(d, "100011")
        # Plain TCP to the TLS port: no frames, the connection ends.
        r = Raw(d.paddr)
        r.send(b"\x00\x00\x00\x02\x08\x01")
        check(r.is_closed(), "plain TCP closed")
        # A certificate nobody pinned.
        c, a = session(d)
        check(a.error_code == ERR["AUTH"], "unpinned cert: %r" % a)
        check(c.is_closed(), "closed after a failed auth")
        # No certificate and no token.
        c, a = session(d, cert=False)
        check(a.error_code == ERR["AUTH"], "nothing: %r" % a)
        # A wrong token.
        tok = d.ctl("provider", "token", PROVIDER)["token"]
        c, a = session(d, cert=False, token=tok[:-2] + "xx")
        check(a.error_code == ERR["AUTH"], "wrong token: %r" % a)
        # Requests before Auth.
        c = PConn(d.paddr)
        r = c.call(p_ack(1, 1))
        check(r.error_code == ERR["NOT_AUTHENTICATED"], "before auth: %r" % r)
        c.close()
        # The right token works; the other provider's certificate does not
        # open this provider's session.
        c, a = session(d, cert=False, token=tok)
        check(a.error_code is None and a.body(11) is not None, "token: %r" % a)
        check(a.body(11)[2][0].decode() == "token", "method")
        pin(d, OTHER)
        o, a = session(d, provider=OTHER)
        check(a.error_code is None, "other provider: %r" % a)
        oid = confirm(d, sink, "100011", "p-1", 1)
        disp = dispatch_of(c.recv_skip_beats())
        check(disp and disp["order_id"] == oid, "dispatched: %r" % disp)
        # The other provider cannot touch it, nor our services.
        r = o.call(p_ack(3, oid))
        check(r.error_code == ERR["FORBIDDEN"], "other's ack: %r" % r)
        r = o.call(p_report(4, oid, "ACCEPTED"))
        check(r.error_code == ERR["FORBIDDEN"], "other's report: %r" % r)
        r = o.call(p_upsert(5, "trv-fuji", "Hijacked tour"))
        check(r.error_code == ERR["FORBIDDEN"], "other's service: %r" % r)
        show = d.ctl("service", "list", "--provider", PROVIDER)
        check(all(s["name"] != "Hijacked tour" for s in show),
              "service unchanged: %r" % show)
        # Out of order: fulfilled before accepted, a report before the ack.
        r = c.call(p_report(6, oid, "ACCEPTED"))
        check(r.error_code == ERR["WRONG_STATE"], "report before ack: %r" % r)
        r = c.call(p_ack(7, oid))
        check(r.error_code is None and 12 in r.fields, "ack: %r" % r)
        r = c.call(p_report(8, oid, "FULFILLED"))
        check(r.error_code == ERR["WRONG_STATE"], "fulfilled early: %r" % r)
        r = c.call(p_report(9, oid, "REJECTED"))
        check(r.error_code == ERR["BAD_REQUEST"], "reject without reason")
        check(d.ctl("order", "show", str(oid))["state"] == "DISPATCHED",
              "nothing changed")
        # The provider's own services: upsert and see it.
        r = c.call(p_upsert(10, "fuji-new", "Night tour", 5000))
        check(r.error_code is None and r.body(14) is not None, "upsert: %r" % r)
        check(any(s["id"] == "fuji-new" for s in
                  d.ctl("service", "list", "--provider", PROVIDER)),
              "service added")
        check(CARD_NUMBER not in c.seen + o.seen, "card number on the wire")
        # New credentials end the sessions opened with the old ones:
        # a new token closes the token session, not the certificate one.
        d.ctl("provider", "token", PROVIDER)
        r = c.recv_skip_beats()
        check(r is None or r.error_code == ERR["AUTH"], "revoked: %r" % r)
        check(c.is_closed(), "token session closed")
        r = o.call(p_report(11, oid, "ACCEPTED"))
        check(r.error_code == ERR["FORBIDDEN"], "other session still up")
        d.ctl("provider", "cert", OTHER, "--remove", json_out=False)
        r = o.recv_skip_beats()
        check(r is None or r.error_code == ERR["AUTH"], "unpinned: %r" % r)
        check(o.is_closed(), "certificate session closed")
    finally:
        sink.stop()


def test_redelivery_and_restart(make):
    port = free_port()
    d = provider_daemon(make, port)
    sink = Sink(d, port)
    try:
        add_member(d, "100012")
        pin(d)
        ids = [confirm(d, sink, "100012", "r-%d" % i, i + 1) for i in range(3)]
        # A session takes all three and acknowledges none.
        c, a = session(d)
        check(a.error_code is None, "auth: %r" % a)
        got = [dispatch_of(c.recv_skip_beats()) for _ in ids]
        check([g["order_id"] for g in got] == ids, "dispatched: %r" % got)
        check(not any(g["redelivery"] for g in got), "first delivery")
        ref = got[0]["fax_reference"]
        check(len(ref) == 12 and ref.startswith("FX-") and ref[7] == "-",
              "fax reference: %r" % ref)
        c.close()
        # Reconnect: the same three again, flagged.
        c, a = session(d)
        again = [dispatch_of(c.recv_skip_beats()) for _ in ids]
        check([g["order_id"] for g in again] == ids, "redelivered")
        check(all(g["redelivery"] and g["attempt"] == 2 for g in again),
              "flagged: %r" % again)
        check(again[0]["fax_reference"] == ref, "same fax reference")
        r = c.call(p_ack(5, ids[0]))
        check(r.error_code is None, "ack: %r" % r)
        # A crash, then a restart: the two unacknowledged ones come back.
        c.close()
        d.kill()
        d.start()
        with open(os.path.join(d.state, "provider.addr")) as f:
            d.paddr = f.read().strip()
        c, a = session(d)
        check(a.body(11).get(4, [0])[0] == 2, "2 pending: %r" % a.body(11))
        back = [dispatch_of(c.recv_skip_beats()) for _ in ids[1:]]
        check([g["order_id"] for g in back] == ids[1:], "after restart")
        for i, oid in enumerate(ids[1:]):
            r = c.call(p_ack(10 + i, oid))
            check(r.error_code is None, "ack %d: %r" % (oid, r))
        # Acknowledging twice, reporting twice: the same answer.
        r = c.call(p_ack(20, ids[1]))
        check(r.error_code is None, "second ack: %r" % r)
        for rid in (21, 22):
            r = c.call(p_report(rid, ids[1], "ACCEPTED"))
            check(r.error_code is None and r.body(13) is not None,
                  "accepted: %r" % r)
        shown = d.ctl("order", "show", str(ids[1]))
        states = [h["state"] for h in shown["history"]]
        check(states.count("ACCEPTED") == 1, "accepted once: %r" % states)
        for oid in ids:
            check(d.ctl("order", "show", str(oid))["state"] in
                  ("DISPATCHED", "ACCEPTED"), "dispatched")
        q = d.ctl("queue", "provider")
        check(q["total"] == 0 and q["queue"] == [], "queue empty: %r" % q)
        s = d.ctl("provider", "sessions")
        check(json.dumps(s).count(PROVIDER) == 1, "one session: %r" % s)
        # A second session replaces the first.
        c2, a = session(d)
        check(a.error_code is None, "second session")
        r = c.recv_skip_beats()
        check(r is None or r.error_code == ERR["REPLACED"], "replaced: %r" % r)
        check(c.is_closed(), "old session closed")
    finally:
        sink.stop()


def read_line(proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            line = proc.stdout.readline()
            if line:
                return line
        if proc.poll() is not None:
            break
    raise TestFailure("no JSON line from the agent; stderr:\n%s" %
                      (proc.stderr.read() if proc.poll() is not None else ""))


def agent(d, *args, check_rc=True):
    cmd = [AGENT, "-H", d.paddr, "--provider", PROVIDER,
           "--cert", os.path.join(d.pki, PROVIDER + ".pem"),
           "--key", os.path.join(d.pki, PROVIDER + ".key"),
           "--ca", os.path.join(d.pki, "ca.pem")] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check_rc and r.returncode != 0:
        raise TestFailure("%s: %d\n%s%s" % (" ".join(cmd), r.returncode,
                                            r.stdout, r.stderr))
    return r


def test_agent_full_cycle(make):
    port = free_port()
    d = provider_daemon(make, port)
    sink = Sink(d, port)
    proc = None
    try:
        add_member(d, "100013")
        pin(d)
        w = login(d, "100013")
        check(w.call(req_watch(3)).error_code is None, "watch")
        oid = confirm(d, sink, "100013", "a-1", 1)
        proc = subprocess.Popen(
            [AGENT, "-H", d.paddr, "--provider", PROVIDER,
             "--cert", os.path.join(d.pki, PROVIDER + ".pem"),
             "--key", os.path.join(d.pki, PROVIDER + ".key"),
             "--ca", os.path.join(d.pki, "ca.pem"), "run"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = read_line(proc)
        order = json.loads(line)
        check(order["order_id"] == oid and order["member_email"] ==
              "m100013@example.org", "dispatch line: %r" % order)
        check(order["fax_reference"].startswith("FX-"), "fax reference")
        check(CARD_NUMBER.decode() not in line, "no card number")
        wait_state(d, oid, "DISPATCHED")
        before = d.ctl("provider", "sessions")
        # The agent's subcommands report progress, over sessions of their
        # own that leave the running agent's session alone.
        for verb, state in (("accept", "ACCEPTED"), ("fulfil", "FULFILLED"),
                            ("charged", "CHARGED")):
            r = agent(d, verb, str(oid))
            check(state in r.stdout, "%s: %r" % (verb, r.stdout))
        wait_state(d, oid, "CHARGED")
        after = d.ctl("provider", "sessions")
        check(after == before and len(json.dumps(after)) > 10,
              "the run session stayed: %r -> %r" % (before, after))
        # The member saw every transition.
        seen = []
        deadline = time.time() + 10
        while "CHARGED" not in seen and time.time() < deadline:
            ev = w.recv()
            o = ev.body(21)
            if o is not None:
                seen.append(STATE.get(decode(o[1][0]).get(10, [0])[0], "?"))
        check(seen[-5:] == ["CONFIRMED", "DISPATCHED", "ACCEPTED",
                            "FULFILLED", "CHARGED"], "watched: %r" % seen)
        # A report on an order that is not the provider's is refused.
        r = agent(d, "accept", "999999", check_rc=False)
        check(r.returncode == 1, "unknown order: %r" % r.stderr)
        led = d.ctl("ledger", PROVIDER)
        check(str(oid) in json.dumps(led), "ledger: %r" % led)
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        sink.stop()


if __name__ == "__main__":
    main([test_refusals, test_redelivery_and_restart, test_agent_full_cycle])
