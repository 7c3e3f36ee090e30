#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_provider_ctl.py -- twinroutectl's provider commands against the real
# daemon: certificate pins, tokens, sessions, the provider outbox and the
# ledger. Orders in states the daemon cannot reach here (FULFILLED,
# CHARGED, REJECTED) and dispatch jobs are written into the stopped
# daemon's store with mdb_load, as the daemon itself encodes them.
import csv
import hashlib
import io
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (CTL, ERR, SAMPLE_CATALOG, SkipTest, check,  # noqa: E402
                    decode, field_bytes, field_varint, frame, main)
from test_vault import mdb_dump, mdb_load  # noqa: E402

# enum ctl_cmd (src/ctl/ctl.h).
CTL_PROVIDER_CERT = 30
CTL_PROVIDER_TOKEN = 31
CTL_QUEUE_PROVIDER = 33
CTL_LEDGER = 34

# OrderState (proto/common.proto).
RECEIVED, DISPATCHED, ACCEPTED = 1, 5, 6
FULFILLED, REJECTED, CHARGED = 7, 8, 13

CSV_HEADER = ("order,fulfilled,charged,service,service_name,quantity,"
              "amount,currency,state\r\n")


def catalog_daemon(make):
    d = make(name="trprov")
    d.start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    return d


def openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), capture_output=True,
                       cwd=cwd, timeout=60)
    check(r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def make_cert(d, name="cert"):
    """A self-signed P-256 certificate in d.dir: (PEM path, key path,
    sha256 of its DER as openssl prints it, lowercase, no colons)."""
    pem = os.path.join(d.dir, name + ".pem")
    key = os.path.join(d.dir, name + ".key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=x",
            "-days", "1", "-keyout", key, "-out", pem)
    out = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in",
                  pem).decode()
    m = re.search(r"=([0-9A-F:]+)", out)
    check(m is not None, "fingerprint: %r" % out)
    return pem, key, m.group(1).replace(":", "").lower()


def cert_der(pem):
    return openssl("x509", "-outform", "DER", "-in", pem)


def ctl_raw(d, command, target="", body=b""):
    """One CtlRequest on the control socket, bypassing twinroutectl; the
    decoded CtlResponse and its error code (None: none)."""
    req = field_varint(1, 7) + field_varint(2, 1) + field_varint(3, command)
    if target:
        req += field_bytes(4, target)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(d.control)
    try:
        s.sendall(frame(req + body))
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(65536)
            check(chunk, "control socket closed without a reply")
            buf += chunk
    finally:
        s.close()
    resp = decode(buf[4:])
    code = None
    if 2 in resp:
        code = decode(resp[2][0]).get(1, [0])[0]
    return resp, code


def ctl_csv(d, *args):
    """twinroutectl ... --csv: its output as bytes, line ends untouched."""
    r = subprocess.run([CTL, "-s", d.control] + list(args) + ["--csv"],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "%r: %d %r" % (args, r.returncode, r.stderr))
    return r.stdout.decode()


def provider_auth(d, provider):
    """The stopped daemon's ProviderAuth of provider: {field: [values]}."""
    env = os.path.join(d.state, "broker")
    pairs = dict(mdb_dump(env, "provider_auth")[1])
    check(provider.encode() in pairs, "no provider_auth for %s: %r" % (
        provider, sorted(pairs)))
    return decode(pairs[provider.encode()])


# ---- certificates -----------------------------------------------------------

def test_cert_pin(make):
    d = catalog_daemon(make)
    pem, key, fp = make_cert(d)
    r = d.ctl("provider", "cert", "fuji-travel", pem, json_out=False)
    check(r.stdout == "provider fuji-travel: certificate pinned, sha256:%s\n"
          % fp, "text: %r (want %s)" % (r.stdout, fp))
    j = d.ctl("provider", "cert", "fuji-travel", pem)
    check(j["cert_sha256"] == fp and j["provider"] == "fuji-travel" and
          j["removed"] is False, "json: %r" % j)

    # A file that is not a certificate: refused by the CLI, with why.
    junk = os.path.join(d.dir, "junk.pem")
    with open(junk, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
                "-----END CERTIFICATE-----\n")
    empty = os.path.join(d.dir, "empty.pem")
    open(empty, "w").close()
    big = os.path.join(d.dir, "big.pem")
    with open(big, "w") as f:
        f.write("# padding\n" * 7000)
        with open(pem) as c:
            f.write(c.read())
    for path in (key, junk, empty):
        r = d.ctl("provider", "cert", "fuji-travel", path, json_out=False,
                  check=False)
        check(r.returncode == 2 and "not a certificate" in r.stderr,
              "%s: %d %r" % (path, r.returncode, r.stderr))
    r = d.ctl("provider", "cert", "fuji-travel", big, json_out=False,
              check=False)
    check(r.returncode == 2 and "larger than 64 KiB" in r.stderr,
          "64 KiB bound: %d %r" % (r.returncode, r.stderr))
    r = d.ctl("provider", "cert", "fuji-travel",
              os.path.join(d.dir, "missing.pem"), json_out=False, check=False)
    check(r.returncode == 2 and "cannot open" in r.stderr, "missing: %r" % r)
    r = d.ctl("provider", "cert", "fuji-travel", json_out=False, check=False)
    check(r.returncode == 2 and "missing FILE" in r.stderr, "no FILE: %r" % r)
    r = d.ctl("provider", "cert", "fuji-travel", pem, "--remove",
              json_out=False, check=False)
    check(r.returncode == 2 and "one or the other" in r.stderr,
          "FILE and --remove: %r" % r)

    # An unknown provider: NOT_FOUND, from the CLI and on the wire.
    r = d.ctl("provider", "cert", "nobody", pem, json_out=False, check=False)
    check(r.returncode == 1 and "no provider nobody" in r.stderr,
          "unknown provider: %d %r" % (r.returncode, r.stderr))
    der = cert_der(pem)
    _, code = ctl_raw(d, CTL_PROVIDER_CERT, "nobody", field_bytes(16, der))
    check(code == ERR["NOT_FOUND"], "unknown provider: code %r" % code)
    # The daemon checks the DER itself: garbage, trailing bytes, both a
    # certificate and remove, nothing at all.
    for body, what in ((field_bytes(16, b"\x30\x03abc"), "garbage"),
                       (field_bytes(16, der + b"\0"), "trailing byte"),
                       (field_bytes(16, der) + field_varint(17, 1), "both"),
                       (b"", "nothing")):
        _, code = ctl_raw(d, CTL_PROVIDER_CERT, "fuji-travel", body)
        check(code == ERR["BAD_REQUEST"], "%s: code %r" % (what, code))
    resp, code = ctl_raw(d, CTL_PROVIDER_CERT, "fuji-travel",
                         field_bytes(16, der))
    check(code is None and resp[17][0] == hashlib.sha256(der).digest(),
          "raw pin: %r %r" % (code, resp))

    # A second provider gets its own pin; then fuji-travel's goes.
    pem2, _, fp2 = make_cert(d, "other")
    check(fp2 != fp, "two certificates, two fingerprints")
    d.ctl("provider", "cert", "sakura-clean", pem2, json_out=False)
    r = d.ctl("provider", "cert", "fuji-travel", "--remove", json_out=False)
    check(r.stdout == "provider fuji-travel: certificate pin removed\n",
          "remove: %r" % r.stdout)
    with open(os.path.join(d.state, "audit.log")) as f:
        audit = f.read()
    check("provider fuji-travel certificate pinned sha256:%s" % fp in audit
          and "provider fuji-travel certificate pin removed" in audit and
          "provider cert nobody: no provider nobody" in audit,
          "audited: %r" % audit[-2000:])
    check(d.stop() == 0, "clean stop")
    check(1 not in provider_auth(d, "fuji-travel"), "fuji-travel unpinned")
    check(provider_auth(d, "sakura-clean")[1][0] ==
          hashlib.sha256(cert_der(pem2)).digest(), "sakura-clean's pin")


# ---- tokens -----------------------------------------------------------------

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def issue_token(d, provider):
    r = d.ctl("provider", "token", provider, json_out=False)
    lines = r.stdout.splitlines()
    check(len(lines) >= 3 and lines[0].startswith("provider %s: new token"
                                                  % provider),
          "token text: %r" % r.stdout)
    check(TOKEN_RE.match(lines[1]), "token: %r" % lines[1])
    check("shown this once" in r.stdout and "only its SHA-256 hash" in
          r.stdout, "says it is shown once: %r" % r.stdout)
    return lines[1]


def test_token(make):
    d = catalog_daemon(make)
    pem, _, fp = make_cert(d)
    d.ctl("provider", "cert", "fuji-travel", pem, json_out=False)
    tokens = [issue_token(d, "fuji-travel") for _ in range(3)]
    j = d.ctl("provider", "token", "fuji-travel")
    check(TOKEN_RE.match(j["token"]) and j["removed"] is False, "json: %r" % j)
    tokens.append(j["token"])
    check(len(set(tokens)) == len(tokens), "each token new: %r" % tokens)
    other = issue_token(d, "sakura-clean")
    r = d.ctl("provider", "token", "nobody", json_out=False, check=False)
    check(r.returncode == 1 and "no provider nobody" in r.stderr,
          "unknown provider: %r" % r)
    _, code = ctl_raw(d, CTL_PROVIDER_TOKEN, "nobody")
    check(code == ERR["NOT_FOUND"], "unknown provider: code %r" % code)
    r = d.ctl("provider", "token", "kanda-translate", "--remove",
              json_out=False)
    check(r.stdout == "provider kanda-translate: token removed\n",
          "remove: %r" % r.stdout)
    check(d.stop() == 0, "clean stop")

    # Stored: SHA-256 of the token's text, the last one only; the pin kept.
    a = provider_auth(d, "fuji-travel")
    check(a[2][0] == hashlib.sha256(tokens[-1].encode()).digest(),
          "token_hash is SHA-256 of the last token's text")
    check(a[1][0] == bytes.fromhex(fp), "the certificate pin is kept")
    check(provider_auth(d, "sakura-clean")[2][0] ==
          hashlib.sha256(other.encode()).digest(), "sakura-clean's hash")
    check(2 not in provider_auth(d, "kanda-translate"), "no token after "
          "--remove")
    # Never a token in the log, the audit trail or the store.
    blobs = {"log": d.log().encode()}
    with open(os.path.join(d.state, "audit.log"), "rb") as f:
        blobs["audit"] = f.read()
    with open(os.path.join(d.state, "broker", "data.mdb"), "rb") as f:
        blobs["store"] = f.read()
    check(blobs["audit"].count(b"provider fuji-travel token issued") == 4,
          "issues audited")
    for t in tokens + [other]:
        for where, data in blobs.items():
            check(t.encode() not in data, "a token in the %s" % where)


def test_token_remove_then_reissue(make):
    d = catalog_daemon(make)
    d.ctl("provider", "token", "fuji-travel", "--remove", json_out=False)
    j = d.ctl("provider", "token", "fuji-travel", "--remove")
    check(j == {"provider": "fuji-travel", "removed": True, "token": None},
          "remove json: %r" % j)
    t = issue_token(d, "fuji-travel")
    r = d.ctl("provider", "token", "fuji-travel", "--remove", "--remove",
              json_out=False, check=False)
    check(r.returncode == 2 and "given twice" in r.stderr, "twice: %r" % r)
    check(d.stop() == 0, "clean stop")
    check(provider_auth(d, "fuji-travel")[2][0] ==
          hashlib.sha256(t.encode()).digest(), "the new token's hash")


# ---- sessions and the provider outbox ---------------------------------------

def dispatch_job(oid, provider, created_ms, attempts=0):
    body = field_varint(1, oid) + field_bytes(2, provider) + \
        field_varint(3, created_ms)
    if attempts:
        body += field_varint(4, attempts)
    return body


def load_db(d, db, pairs):
    env = os.path.join(d.state, "broker")
    header, _ = mdb_dump(env, db)
    mdb_load(env, db, header, pairs)


def test_sessions_and_queue(make):
    d = catalog_daemon(make)
    r = d.ctl("provider", "sessions", json_out=False)
    check(r.stdout == "no provider connected\n", "sessions: %r" % r.stdout)
    check(d.ctl("provider", "sessions") == [], "sessions json")
    r = d.ctl("queue", "provider", json_out=False)
    check(r.stdout == "no dispatch waiting\n", "queue: %r" % r.stdout)
    check(d.ctl("queue", "provider") ==
          {"queue": [], "total": 0, "truncated": False}, "queue json")
    check(d.ctl("queue", "provider", "fuji-travel")["total"] == 0,
          "one provider's queue")
    r = d.ctl("queue", "provider", "nobody", json_out=False, check=False)
    check(r.returncode == 1 and "no provider nobody" in r.stderr,
          "unknown provider: %r" % r)
    _, code = ctl_raw(d, CTL_QUEUE_PROVIDER, "nobody")
    check(code == ERR["NOT_FOUND"], "unknown provider: code %r" % code)

    # Dispatch jobs as a confirmation leaves them.
    check(d.stop() == 0, "clean stop")
    t0 = 1767225600000  # 2026-01-01T00:00:00Z
    load_db(d, "outbox_provider", [
        # key: provider id, NUL, order id (8 bytes big-endian)
        (b"fuji-travel\0" + struct.pack(">Q", 7),
         dispatch_job(7, "fuji-travel", t0, 2)),
        (b"sakura-clean\0" + struct.pack(">Q", 9),
         dispatch_job(9, "sakura-clean", t0 + 1000)),
        (b"fuji-travel\0" + struct.pack(">Q", 12),
         dispatch_job(12, "fuji-travel", t0 + 2000)),
    ])
    d.start()
    q = d.ctl("queue", "provider")
    # One provider's jobs are together, oldest order first.
    check(q["total"] == 3 and [e["order_id"] for e in q["queue"]] ==
          [7, 12, 9], "all: %r" % q)
    check(q["queue"][0] == {"order_id": 7, "provider": "fuji-travel",
                            "attempts": 2, "created_unix_ms": t0},
          "entry: %r" % q["queue"][0])
    q = d.ctl("queue", "provider", "fuji-travel")
    check(q["total"] == 2 and [e["order_id"] for e in q["queue"]] == [7, 12],
          "fuji-travel: %r" % q)
    r = d.ctl("queue", "provider", json_out=False)
    lines = r.stdout.splitlines()
    check(lines[0].split() == ["ORDER", "PROVIDER", "ATTEMPTS", "CREATED"],
          "header: %r" % lines)
    check(lines[1].split()[:3] == ["7", "fuji-travel", "2"] and
          "2026-01-01 00:00:00 UTC" in lines[1], "row: %r" % lines[1])
    check(lines[-1] == "3 dispatches waiting", "total: %r" % lines[-1])


# ---- live sessions: what the provider channel makes of the credentials ------

class Agent:
    """A provider's side of the channel (proto/provider.proto): TLS,
    Hello, Auth."""

    def __init__(self, addr, cert=None, key=None):
        host, port = addr.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, int(port)), 20)
        self.sock = ctx.wrap_socket(raw)
        self.buf = b""
        self.port = self.sock.getsockname()[1]

    def call(self, rid, body):
        self.sock.sendall(frame(field_varint(1, rid) + body))
        while True:
            while len(self.buf) < 4 or \
                    len(self.buf) < 4 + struct.unpack(">I", self.buf[:4])[0]:
                chunk = self.sock.recv(65536)
                check(chunk, "the provider channel closed")
                self.buf += chunk
            n = struct.unpack(">I", self.buf[:4])[0]
            resp = decode(self.buf[4:4 + n])
            self.buf = self.buf[4 + n:]
            if resp.get(1, [0])[0] == rid:   # pushes carry id 0
                return resp

    def login(self, provider, token=""):
        """Hello, then Auth: the AuthReply's method, or the error code."""
        r = self.call(1, field_bytes(10, field_varint(1, 1) +
                                     field_bytes(2, "trtest")))
        check(10 in r, "hello: %r" % r)
        body = field_bytes(1, provider)
        if token:
            body += field_bytes(2, token)
        r = self.call(2, field_bytes(11, body))
        if 2 in r:
            return None, decode(r[2][0]).get(1, [0])[0]
        return decode(r[11][0])[2][0].decode(), None

    def close(self):
        self.sock.close()


def channel_daemon(make):
    d = make(name="trprov")
    pem, key, _ = make_cert(d, "broker")
    d.write_conf("[provider]\nlisten = 127.0.0.1:0\ntls_cert = %s\n"
                 "tls_key = %s\nheartbeat = 60s\n" % (pem, key))
    d.start()
    path = os.path.join(d.state, "provider.addr")
    if not os.path.exists(path):
        raise SkipTest("this daemon has no provider channel")
    with open(path) as f:
        d.provider_addr = f.read().strip()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    return d


def test_sessions_live(make):
    d = channel_daemon(make)
    token = issue_token(d, "fuji-travel")
    pem, key, _ = make_cert(d, "sakura")
    d.ctl("provider", "cert", "sakura-clean", pem, json_out=False)

    by_token = Agent(d.provider_addr)
    by_cert = Agent(d.provider_addr, pem, key)
    try:
        check(by_token.login("fuji-travel", token) == ("token", None),
              "the issued token authenticates")
        check(by_cert.login("sakura-clean") == ("certificate", None),
              "the pinned certificate authenticates")
        s = {x["provider"]: x for x in d.ctl("provider", "sessions")}
        check(sorted(s) == ["fuji-travel", "sakura-clean"], "sessions: %r" % s)
        check(s["fuji-travel"]["method"] == "token" and
              s["fuji-travel"]["peer"] == "127.0.0.1:%d" % by_token.port and
              s["fuji-travel"]["in_flight"] == 0 and
              s["fuji-travel"]["pending"] == 0 and
              s["fuji-travel"]["dispatched"] == 0 and
              abs(s["fuji-travel"]["since_unix_ms"] / 1000 - time.time()) < 60,
              "fuji-travel: %r" % s["fuji-travel"])
        check(s["sakura-clean"]["method"] == "certificate", "%r" % s)
        r = d.ctl("provider", "sessions", json_out=False)
        lines = r.stdout.splitlines()
        check(lines[0].split() == ["PROVIDER", "PEER", "METHOD", "SINCE",
                                   "IN_FLIGHT", "PENDING", "DISPATCHED"],
              "header: %r" % lines)
        check(any(ln.startswith("fuji-travel") and " token " in ln
                  for ln in lines[1:]), "rows: %r" % lines)
    finally:
        by_token.close()
        by_cert.close()

    # A new token: the old one no longer works, the new one does.
    new = issue_token(d, "fuji-travel")
    for t, want in ((token, (None, ERR["AUTH"])), (new, ("token", None))):
        a = Agent(d.provider_addr)
        try:
            check(a.login("fuji-travel", t) == want, "token %s" % want[0])
        finally:
            a.close()
    # Unpinned, removed: refused.
    d.ctl("provider", "cert", "sakura-clean", "--remove", json_out=False)
    d.ctl("provider", "token", "fuji-travel", "--remove", json_out=False)
    for provider, token_, cert in (("sakura-clean", "", (pem, key)),
                                   ("fuji-travel", new, (None, None))):
        a = Agent(d.provider_addr, *cert)
        try:
            check(a.login(provider, token_) == (None, ERR["AUTH"]),
                  "%s after --remove" % provider)
        finally:
            a.close()


# ---- the ledger -------------------------------------------------------------

DAY = 86400 * 1000
JAN1 = 1767225600000  # 2026-01-01T00:00:00Z


def money(minor, cur):
    return field_varint(1, minor) + field_bytes(2, cur)


def order(oid, provider, service, name, qty, minor, cur, history):
    """An Order as the daemon stores it; history: [(state, unix_ms)]."""
    body = (field_varint(1, oid) + field_bytes(2, "100001") +
            field_bytes(3, service) + field_bytes(4, provider) +
            field_bytes(5, name) + field_varint(6, qty) +
            field_bytes(7, money(minor // qty, cur)) +
            field_bytes(8, money(minor, cur)) +
            field_varint(10, history[-1][0]) +
            field_varint(14, history[0][1]) +
            field_varint(15, history[-1][1]))
    for state, ms in history:
        body += field_bytes(16, field_varint(1, state) + field_varint(2, ms) +
                            field_bytes(3, "test"))
    return struct.pack(">Q", oid), body


def fulfilled_at(ms, charged_ms=None):
    h = [(RECEIVED, ms - 3000), (DISPATCHED, ms - 2000),
         (ACCEPTED, ms - 1000), (FULFILLED, ms)]
    if charged_ms is not None:
        h.append((CHARGED, charged_ms))
    return h


def ledger_daemon(make):
    d = catalog_daemon(make)
    check(d.stop() == 0, "clean stop")
    load_db(d, "orders", [
        order(1, "fuji-travel", "trv-fuji", 'Fuji day tour, "deluxe"', 2,
              29000, "JPY", fulfilled_at(JAN1 + 4 * DAY + 3600000)),
        # Fulfilled at the first instant of 2026-01-10; charged the next day.
        order(2, "fuji-travel", "trv-rail", "Rail pass", 1, 12000, "JPY",
              fulfilled_at(JAN1 + 9 * DAY, JAN1 + 10 * DAY)),
        # Fulfilled at the first instant of 2026-02-01.
        order(3, "fuji-travel", "trv-rail", "Rail pass", 1, 12000, "JPY",
              fulfilled_at(JAN1 + 31 * DAY)),
        order(4, "fuji-travel", "trv-rail", "Rail pass", 1, 12000, "JPY",
              [(RECEIVED, JAN1), (DISPATCHED, JAN1 + DAY),
               (REJECTED, JAN1 + 14 * DAY)]),
        order(5, "sakura-clean", "clean-std", "Cleaning", 1, 12000, "JPY",
              fulfilled_at(JAN1 + 5 * DAY)),
        order(6, "fuji-travel", "trv-guide", "Guide", 1, 1250, "EUR",
              fulfilled_at(JAN1 + 19 * DAY)),
        # Accepted only: not in the ledger.
        order(7, "fuji-travel", "trv-rail", "Rail pass", 1, 12000, "JPY",
              fulfilled_at(JAN1 + 6 * DAY)[:-1]),
    ])
    d.start()
    return d


def test_ledger_fresh_and_errors(make):
    d = catalog_daemon(make)
    r = d.ctl("ledger", "fuji-travel", json_out=False)
    check("no fulfilled order" in r.stdout and
          "0 orders fulfilled, 0 rejected in the period" in r.stdout,
          "empty text: %r" % r.stdout)
    j = d.ctl("ledger", "fuji-travel")
    check(j == {"provider": "fuji-travel", "orders": [], "totals": [],
                "matched": 0, "rejected": 0, "truncated": False,
                "from": None, "to": None}, "empty json: %r" % j)
    out = ctl_csv(d, "ledger", "fuji-travel")
    check(out == CSV_HEADER, "empty csv: %r" % out)
    r = d.ctl("ledger", "nobody", json_out=False, check=False)
    check(r.returncode == 1 and "no provider nobody" in r.stderr,
          "unknown provider: %r" % r)
    _, code = ctl_raw(d, CTL_LEDGER, "nobody")
    check(code == ERR["NOT_FOUND"], "unknown provider: code %r" % code)
    # A period that ends before it starts, sent past the CLI's checks.
    _, code = ctl_raw(d, CTL_LEDGER, "fuji-travel", field_bytes(
        18, field_varint(1, JAN1 + DAY) + field_varint(2, JAN1)))
    check(code == ERR["BAD_REQUEST"], "reversed period: code %r" % code)

    for args, want in (
            (["--from", "2026-02-30"], "--from 2026-02-30: not a date"),
            (["--from", "2025-02-29"], "--from 2025-02-29: not a date"),
            (["--from", "2026-13-01"], "--from 2026-13-01: not a date"),
            (["--from", "2026-00-10"], "--from 2026-00-10: not a date"),
            (["--from", "2026-1-1"], "--from 2026-1-1: not a date"),
            (["--from", "2026-01-01x"], "--from 2026-01-01x: not a date"),
            (["--from", "1969-12-31"], "--from 1969-12-31: not a date"),
            (["--to", "yesterday"], "--to yesterday: not a date"),
            (["--to", "2026/01/01"], "--to 2026/01/01: not a date"),
            (["--from", "2026-02-01", "--to", "2026-02-01"],
             "must be a later day"),
            (["--from", "2026-03-01", "--to", "2026-02-01"],
             "must be a later day"),
            (["--to", "1970-01-01"], "must be a later day"),
            (["--from"], "needs a value"),
            (["--csv", "--csv"], "given twice"),
            (["--until", "2026-01-01"], "unknown option")):
        r = d.ctl("ledger", "fuji-travel", *args, json_out=False, check=False)
        check(r.returncode == 2 and want in r.stderr,
              "%r: %d %r" % (args, r.returncode, r.stderr))
    r = d.ctl("ledger", "fuji-travel", "--csv", check=False)
    check(r.returncode == 2 and "--csv and --json" in r.stderr,
          "--csv with --json: %r" % r)
    # 2024 is a leap year.
    d.ctl("ledger", "fuji-travel", "--from", "2024-02-29", json_out=False)
    r = d.ctl("ledger", json_out=False, check=False)
    check(r.returncode == 2 and "missing PROVIDER" in r.stderr, "%r" % r)


def test_ledger_orders(make):
    d = ledger_daemon(make)
    j = d.ctl("ledger", "fuji-travel", "--from", "2026-01-01", "--to",
              "2026-02-01")
    check([o["order_id"] for o in j["orders"]] == [1, 2, 6],
          "January, by fulfilled time: %r" % j["orders"])
    check(j["from"] == "2026-01-01" and j["to"] == "2026-02-01", "%r" % j)
    o1, o2 = j["orders"][0], j["orders"][1]
    check(o1["state"] == "FULFILLED" and o1["charged_unix_ms"] is None and
          o1["amount"] == 29000 and o1["currency"] == "JPY" and
          o1["quantity"] == 2 and o1["service_id"] == "trv-fuji" and
          o1["fulfilled_unix_ms"] == JAN1 + 4 * DAY + 3600000, "1: %r" % o1)
    check(o2["state"] == "CHARGED" and o2["charged_unix_ms"] == JAN1 + 10 * DAY
          and o2["fulfilled_unix_ms"] == JAN1 + 9 * DAY, "2: %r" % o2)
    totals = {t["currency"]: t for t in j["totals"]}
    check(totals == {
        "JPY": {"currency": "JPY", "orders": 2, "fulfilled": 41000,
                "charged_orders": 1, "charged": 12000},
        "EUR": {"currency": "EUR", "orders": 1, "fulfilled": 1250,
                "charged_orders": 0, "charged": 0}}, "totals: %r" % totals)
    check(j["matched"] == 3 and j["rejected"] == 1 and not j["truncated"],
          "summary: %r" % j)

    # --from is included: 2026-01-10 starts with order 2's fulfilment.
    j = d.ctl("ledger", "fuji-travel", "--from", "2026-01-10")
    check([o["order_id"] for o in j["orders"]] == [2, 6, 3] and
          j["rejected"] == 1, "from the 10th: %r" % j)
    # --to is excluded: order 2 (the 10th) is not before the 10th.
    j = d.ctl("ledger", "fuji-travel", "--to", "2026-01-10")
    check([o["order_id"] for o in j["orders"]] == [1] and
          j["rejected"] == 0, "to the 10th: %r" % j)
    # All time.
    j = d.ctl("ledger", "fuji-travel")
    check([o["order_id"] for o in j["orders"]] == [1, 2, 6, 3] and
          j["matched"] == 4, "all time: %r" % j)
    j = d.ctl("ledger", "sakura-clean")
    check([o["order_id"] for o in j["orders"]] == [5], "sakura: %r" % j)
    j = d.ctl("ledger", "kanda-translate")
    check(j["orders"] == [] and j["totals"] == [], "kanda: %r" % j)

    # CSV: RFC 4180, CRLF, quotes doubled, amounts as decimals.
    out = ctl_csv(d, "ledger", "fuji-travel", "--from", "2026-01-01", "--to",
                  "2026-02-01")
    check(out.startswith(CSV_HEADER) and out.count("\r\n") == 4 and
          out.count("\n") == 4, "csv lines end in CRLF: %r" % out)
    check('"Fuji day tour, ""deluxe"""' in out, "quoting: %r" % out)
    rows = list(csv.reader(io.StringIO(out, newline="")))
    check(len(rows) == 4, "header and 3 rows, no totals: %r" % rows)
    check(rows[1] == ["1", "2026-01-05T01:00:00Z", "", "trv-fuji",
                      'Fuji day tour, "deluxe"', "2", "29000", "JPY",
                      "FULFILLED"], "row 1: %r" % rows[1])
    check(rows[2] == ["2", "2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z",
                      "trv-rail", "Rail pass", "1", "12000", "JPY",
                      "CHARGED"], "row 2: %r" % rows[2])
    check(rows[3][6:8] == ["12.50", "EUR"], "decimal: %r" % rows[3])

    # Text: the table, totals per currency, the summary.
    r = d.ctl("ledger", "fuji-travel", "--from", "2026-01-01", "--to",
              "2026-02-01", json_out=False)
    lines = r.stdout.splitlines()
    check(lines[0] == "provider fuji-travel, fulfilled from 2026-01-01 until "
          "before 2026-02-01 (UTC)", "title: %r" % lines[0])
    check(lines[2].split() == ["ORDER", "FULFILLED", "CHARGED", "SERVICE",
                               "QTY", "AMOUNT", "STATE"], "header: %r" % lines)
    row2 = [ln for ln in lines if ln.lstrip().startswith("2 ")]
    check(row2 and "2026-01-11 00:00:00 UTC" in row2[0] and
          "12000 JPY" in row2[0] and row2[0].endswith("CHARGED"),
          "row 2: %r" % row2)
    jpy = [ln for ln in lines if ln.startswith("JPY")]
    check(jpy and jpy[0].split() == ["JPY", "2", "41000", "JPY", "1",
                                     "12000", "JPY"], "JPY totals: %r" % jpy)
    eur = [ln for ln in lines if ln.startswith("EUR")]
    check(eur and "12.50 EUR" in eur[0], "EUR totals: %r" % eur)
    check(lines[-1] == "3 orders fulfilled, 1 rejected in the period",
          "summary: %r" % lines[-1])


if __name__ == "__main__":
    main([test_cert_pin, test_token, test_token_remove_then_reissue,
          test_sessions_and_queue, test_sessions_live,
          test_ledger_fresh_and_errors,
          test_ledger_orders])
