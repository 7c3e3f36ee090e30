#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_vault.py -- the sealed card vault through the real daemon and the
# real twinroutectl: card authentication outcomes, no card data anywhere
# but inside the vault's ciphertext, tamper detection, key shares, key
# files and data key rotation, and what twinroutectl refuses to send.
#
# The card numbers below are the card networks' public test numbers; they
# belong to no account. EXPIRED is not reached here: the daemon has no
# clock hook, and both twinroutectl and the vault refuse to enrol a card
# that has expired. tests/unit/test_vault.c covers it with a fake clock
# (a card authenticates, then is EXPIRED a month later), and
# tests/unit/test_card.c the month boundaries of card_expired(). Here a
# card expiring this month must still authenticate.
import base64
import json
import os
import selectors
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (CTL, DAEMON, SAMPLE_CATALOG, TestFailure,  # noqa: E402
                    check, decode, main)

VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
JCB = "3530111333300000"
BAD_LUHN = "4111111111111112"      # VISA with its check digit off by one
HOLDER = "QUENTIN ZYXWVUT"         # on every card; on no member record
PASSWORD = "correct horse battery"
FAR = "12/%02d" % ((time.gmtime().tm_year + 4) % 100)  # years away

# A vault store of 1 MiB (the smallest allowed) keeps the preallocated file
# small to create and quick to search.
VAULT_SMALL = "[vault]\nmap_size = 1M\n"


# ---- twinroutectl ---------------------------------------------------------

class Result:
    def __init__(self, cmd, proc, elapsed):
        self.cmd = cmd
        self.rc = proc.returncode
        self.raw_out = proc.stdout
        self.raw_err = proc.stderr
        self.out = proc.stdout.decode(errors="replace")
        self.err = proc.stderr.decode(errors="replace")
        self.elapsed = elapsed

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            raise TestFailure("%s: not JSON: %r" % (" ".join(self.cmd),
                                                    self.out))

    def __repr__(self):
        return "%s: exit %d\nstdout: %s\nstderr: %s" % (
            " ".join(self.cmd), self.rc, self.out, self.err)


class Admin:
    """twinroutectl aimed at one socket; keeps every call's output, for the
    leak search. Standard input is always given (empty if nothing), so a
    terminal is never asked for anything."""

    def __init__(self, sock):
        self.sock = sock
        self.outputs = []

    def __call__(self, *args, stdin="", js=False, rc=0):
        cmd = [CTL, "-s", self.sock] + (["--json"] if js else []) + list(args)
        t0 = time.monotonic()
        p = subprocess.run(cmd, input=stdin.encode(), capture_output=True,
                           timeout=60)
        r = Result(cmd, p, time.monotonic() - t0)
        self.outputs.append((" ".join(args), p.stdout + p.stderr))
        if rc is not None:
            check(r.rc == rc, "expected exit %d: %r" % (rc, r))
        return r

    def js(self, *args, stdin="", rc=0):
        return self(*args, stdin=stdin, js=True, rc=rc).json()


def admin(d):
    return Admin(d.control)


def init_shares(a, shares, threshold):
    got = a.js("vault", "init", "--shares", str(shares),
               "--threshold", str(threshold))
    check(len(got["shares"]) == shares and got["threshold"] == threshold
          and got["sealed"] is True, "init %d/%d: %r" % (shares, threshold,
                                                         got))
    check(len(set(got["shares"])) == shares, "every share differs")
    return got["shares"]


def unseal(a, *shares):
    st = None
    for s in shares:
        st = a.js("vault", "unseal", stdin=s + "\n")
    return st


def status(a):
    return a.js("vault", "status")


def ready_vault(a):
    """A vault of 2 shares, both needed, unsealed; its shares."""
    shares = init_shares(a, 2, 2)
    st = unseal(a, *shares)
    check(st["sealed"] is False, "unsealed: %r" % st)
    return shares


def add_member(a, number, name=None):
    a("member", "add", number, "--name", name or "Member " + number,
      "--email", "m%s@example.org" % number, stdin=PASSWORD + "\n")


def card_lines(number, expiry=FAR, holder=HOLDER):
    return "%s\n%s\n%s\n" % (number, expiry, holder)


def set_card(a, member, number, expiry=FAR):
    return a.js("member", "card", "set", member,
                stdin=card_lines(number, expiry))


def card_check(a, member, amount, currency="EUR"):
    """The JSON reply of a card check; exit 0 for OK, 1 for a decline."""
    r = a("member", "card", "check", member, "--amount", str(amount),
          "--currency", currency, js=True, rc=None)
    check(r.rc in (0, 1), "a check answers OK (0) or a decline (1): %r" % r)
    got = r.json()
    check((r.rc == 0) == (got["result"] == "OK"),
          "exit 0 exactly for OK: %r" % r)
    return got


def expect_decline(a, member, amount, result, currency="EUR"):
    got = card_check(a, member, amount, currency)
    check(got["result"] == result and "card" not in got,
          "%s %s %s: %s expected, got %r" % (member, amount, currency,
                                              result, got))
    return got


def expect_ok(a, member, amount, brand, last4, currency="EUR"):
    got = card_check(a, member, amount, currency)
    check(got["result"] == "OK", "%s %s %s: OK expected, got %r" % (
        member, amount, currency, got))
    check(got["card"]["brand"] == brand and got["card"]["last4"] == last4,
          "the reply names %s ending %s: %r" % (brand, last4, got))
    return got


def this_month():
    """This month as MM/YY, and (month, year): cards expire by UTC. (A run
    that crosses the end of a month between here and the check would see
    the card expire: a window of seconds, once a month.)"""
    t = time.gmtime()
    return "%02d/%02d" % (t.tm_mon, t.tm_year % 100), (t.tm_mon, t.tm_year)


# ---- LMDB on disk (the daemon stopped) ------------------------------------

def mdb_dump(env, db):
    """The header lines and the (key, value) pairs of one named database."""
    r = subprocess.run(["mdb_dump", "-s", db, env], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "mdb_dump -s %s: %s" % (db, r.stderr))
    lines = r.stdout.splitlines()
    end = lines.index("HEADER=END")
    header = lines[:end + 1]
    body = [ln[1:] for ln in lines[end + 1:] if ln.startswith(" ")]
    check(len(body) % 2 == 0, "key/value pairs: %r" % r.stdout)
    pairs = [(bytes.fromhex(body[i]), bytes.fromhex(body[i + 1]))
             for i in range(0, len(body), 2)]
    return header, pairs


def mdb_load(env, db, header, pairs):
    """Write pairs into the database (mdb_load overwrites existing keys)."""
    text = "\n".join(header) + "\n" + "".join(
        " %s\n %s\n" % (k.hex(), v.hex()) for k, v in pairs) + "DATA=END\n"
    r = subprocess.run(["mdb_load", "-s", db, env], input=text,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "mdb_load -s %s: %s" % (db, r.stderr))


def sealed_card(value):
    """A SealedCard record: {key_version, record_version, nonce, ct}."""
    f = decode(value)
    return {"key_version": f.get(1, [0])[0],
            "record_version": f.get(2, [0])[0],
            "nonce": f[3][0], "ciphertext": f[4][0]}


# ---- a recording proxy for the control socket -----------------------------

class Proxy:
    """A Unix socket at path that forwards each connection to target,
    recording every byte in both directions."""

    def __init__(self, path, target):
        self.target = target
        self.up = bytearray()       # twinroutectl -> daemon
        self.down = bytearray()     # daemon -> twinroutectl
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        self.srv.settimeout(0.1)
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._pump, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _pump(self, client):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.connect(self.target)
        peer = {client: server, server: client}
        record = {client: self.up, server: self.down}
        sel = selectors.DefaultSelector()
        for s in peer:
            s.setblocking(True)
            sel.register(s, selectors.EVENT_READ)
        open_ = 2
        try:
            while open_:
                for key, _ in sel.select(timeout=30):
                    s = key.fileobj
                    try:
                        data = s.recv(65536)
                    except ConnectionResetError:
                        data = b""
                    if data:
                        with self.lock:
                            record[s] += data
                        try:
                            peer[s].sendall(data)
                        except OSError:
                            pass
                        continue
                    sel.unregister(s)
                    open_ -= 1
                    try:
                        peer[s].shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        finally:
            sel.close()
            client.close()
            server.close()

    def close(self):
        self.stopping = True
        self.acceptor.join(5)
        self.srv.close()
        for t in self.threads:
            t.join(10)
            check(not t.is_alive(), "a proxied connection did not end")


# ---- the leak search ------------------------------------------------------

def _encodings(label, text, digits=False):
    """(label, needle, fold case) for each way text could be stored."""
    raw = text.encode()
    out = [(label, raw, True),
           (label + " as UTF-16LE", text.encode("utf-16-le"), True),
           (label + " as UTF-16BE", text.encode("utf-16-be"), True),
           (label + " as hex", raw.hex().encode(), True)]
    for o in range(3):
        # Base64 of any buffer holding text: whatever its alignment, one of
        # these three runs is in the encoding. Shorter than 12 characters
        # (72 bits) it could occur by chance: not searched.
        part = raw[o:]
        b = base64.b64encode(part[:len(part) // 3 * 3])
        if len(b) >= 12:
            out.append(("%s as base64 (+%d)" % (label, o), b, False))
    if digits and len(text) % 2 == 0:
        out.append((label + " as packed BCD", bytes.fromhex(text), False))
    return out


def card_needles(number):
    """Every form of a card number the search looks for.

    The number whole, spaced and dashed in its usual groups (4-6-5 for a
    15-digit amex, else fours), and two partial runs that a masked or
    truncated leak would still show: all but the last four digits, and the
    last twelve. (The last four alone may appear: that is what a display
    shows.) Each in ASCII (any case), UTF-16 both ways, hex, base64 at
    each alignment, and packed BCD when of even length.

    Why none can occur by chance: each is a run of at least 11 given
    digits: 11 or more bytes as text, 22 in UTF-16, 6 of BCD, 12 or more
    base64 characters. Random bytes (ciphertext, keys, nonces, shares)
    hold a given 6-byte string with a probability of 2^-48 per offset,
    about 2^-28 for a whole 1 MiB store. The text the fixtures write holds
    no such run either: member numbers are five digits, amounts at most
    seven, timestamps ten, pids at most seven, and the daemon log's
    16-hex-digit connection ids count up from 1 (a run of eleven 1s would
    take 2^44 connections). The all-ones and all-fives runs of the VISA
    and MASTERCARD test numbers ("111111111111", "555555554444") are why
    every fixture value is chosen without long runs of one digit.
    """
    n = len(number)
    if n == 15:
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i:i + 4] for i in range(0, n, 4)]
    forms = [("%s" % number, number, True),
             ("%s spaced" % number, " ".join(groups), False),
             ("%s dashed" % number, "-".join(groups), False),
             ("%s but the last four" % number, number[:-4], True),
             ("%s last twelve" % number, number[-12:], True)]
    out = []
    for label, text, digits in forms:
        out += _encodings(label, text, digits)
    return out


def name_needles(name):
    """The cardholder name whole and its surname alone, any case: seven
    letters no word or fixture value holds (2^-49 per offset in random
    bytes, any case)."""
    out = _encodings("holder", name)
    out += _encodings("holder surname", name.split()[-1])
    return out


def find_leaks(blobs, needles):
    """Every (blob label, needle label) where a needle occurs."""
    hits = []
    for where, data in blobs:
        low = bytes(data).lower()
        for what, needle, fold in needles:
            hay = low if fold else data
            if (needle.lower() if fold else needle) in hay:
                hits.append((where, what))
    return hits


def files_under(top):
    """(path, bytes) of every regular file under top."""
    out = []
    for dirpath, _, names in os.walk(top):
        for name in names:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out.append((p, f.read()))
    return out


def test_leak_search_finds_every_form(make):
    # The search itself: each form, planted in noise, is found; the
    # fixture's own ordinary values are not.
    needles = card_needles(VISA) + card_needles(AMEX) + name_needles(HOLDER)
    noise = os.urandom(4096)
    for what, needle, fold in needles:
        planted = noise + (needle.upper() if fold else needle) + noise
        check(find_leaks([("planted", planted)], [(what, needle, fold)]),
              "the search finds %s" % what)
    ordinary = ("member 20001 20002 amount=1000000 currency=EUR last4 1111 "
                "4444 0005 visa ending 1111, expires 12/2030 "
                "00000000000000ff ").encode()
    check(find_leaks([("ordinary", ordinary)], needles) == [],
          "ordinary values are no hit: %r" % find_leaks(
              [("ordinary", ordinary)], needles))


# ---- authentication outcomes ----------------------------------------------

def test_authentication_outcomes(make):
    d = make(VAULT_SMALL + "order_limit = 10000\ndaily_limit = 25000\n",
             "vault-auth").start()
    a = admin(d)
    ready_vault(a)
    now, (month, year) = this_month()
    for m in ("20001", "20002", "20003", "20004", "20005"):
        add_member(a, m)
    got = set_card(a, "20001", VISA, now)
    check(got == {"brand": "visa", "last4": "1111", "exp_month": month,
                  "exp_year": year}, "card set answers: %r" % got)
    set_card(a, "20002", MASTERCARD)
    set_card(a, "20004", AMEX)
    set_card(a, "20005", JCB)
    # 20003 has none.

    # OK: brand and last four in the reply, as text and JSON. The card
    # expires this month: still good until the month ends.
    r = a("member", "card", "check", "20001", "--amount", "100",
          "--currency", "EUR")
    check(r.out == "OK: visa ending 1111, expires %02d/%04d\n" % (
        month, year), "text reply: %r" % r)
    got = expect_ok(a, "20001", 100, "visa", "1111")
    check(got["card"]["exp_month"] == month and
          got["card"]["exp_year"] == year, "expiry in the reply: %r" % got)
    expect_ok(a, "20002", 100, "mastercard", "4444")
    expect_ok(a, "20004", 100, "amex", "0005")

    # NO_CARD: a member without a card; and one whose card was removed.
    got = expect_decline(a, "20003", 100, "NO_CARD")
    r = a("member", "card", "check", "20003", "--amount", "100",
          "--currency", "EUR", rc=1)
    check(r.out.startswith("NO_CARD"), "text decline: %r" % r)
    r = a("member", "card", "check", "20009", "--amount", "100",
          "--currency", "EUR", rc=1)
    check("no member 20009" in r.err, "unknown member: %r" % r)
    expect_ok(a, "20005", 100, "jcb", "0000")
    a("member", "card", "remove", "20005")
    expect_decline(a, "20005", 100, "NO_CARD")

    # DISABLED: the member's state, whatever the card.
    a("member", "disable", "20004")
    expect_decline(a, "20004", 100, "DISABLED")
    shown = a.js("member", "show", "20004")
    check(shown["active"] is False and shown["card"]["last4"] == "0005",
          "disabled, card still on file: %r" % shown)

    # LIMIT per order: over order_limit, and exactly at it.
    got = expect_decline(a, "20002", 10001, "LIMIT")
    check("order" in got["detail"], "per-order limit named: %r" % got)
    expect_ok(a, "20002", 10000, "mastercard", "4444")
    # LIMIT over 24 hours: 200 so far for 20001 in EUR (two checks of 100).
    expect_ok(a, "20001", 9800, "visa", "1111")           # 10000
    expect_ok(a, "20001", 10000, "visa", "1111")          # 20000
    expect_ok(a, "20001", 5000, "visa", "1111")           # 25000: full
    got = expect_decline(a, "20001", 1, "LIMIT")
    check("24-hour" in got["detail"], "daily limit named: %r" % got)
    # Declines spend nothing; the limit is per currency and per member.
    expect_decline(a, "20001", 1, "LIMIT")
    expect_ok(a, "20001", 10000, "visa", "1111", currency="USD")
    expect_ok(a, "20002", 10000, "mastercard", "4444")    # 20100 of 25000

    # VAULT_SEALED: every check declines; the members' state stays.
    cards = status(a)["cards"]
    a("vault", "seal")
    expect_decline(a, "20002", 100, "VAULT_SEALED")
    expect_decline(a, "20003", 100, "VAULT_SEALED")
    shown = a.js("member", "show", "20001")
    check(shown["card"] is None and shown["card_result"] == "VAULT_SEALED",
          "member show while sealed: %r" % shown)
    r = a("member", "card", "show", "20001", rc=1)
    check("VAULT_SEALED" in r.err, "card show while sealed: %r" % r)
    # Enrolment is refused at once, with the reason and the way out.
    r = a("member", "card", "set", "20003", stdin=card_lines(JCB), rc=1)
    check("sealed" in r.err and "vault unseal" in r.err and r.out == "",
          "card set while sealed: %r" % r)
    check(r.elapsed < 5, "refused quickly: %.1f s" % r.elapsed)
    check(status(a)["cards"] == cards, "no card added while sealed")
    r = a("vault", "rotate", rc=1)
    check("VAULT_SEALED" in r.err, "rotate while sealed: %r" % r)

    check(d.proc.poll() is None, "the daemon runs on")


def test_spends_survive_seal_and_restart(make):
    d = make(VAULT_SMALL + "order_limit = 10000\ndaily_limit = 25000\n",
             "vault-spend").start()
    a = admin(d)
    shares = ready_vault(a)
    add_member(a, "20001")
    set_card(a, "20001", VISA)
    for amount in (10000, 10000, 5000):
        expect_ok(a, "20001", amount, "visa", "1111")
    expect_decline(a, "20001", 1, "LIMIT")
    a("vault", "seal")
    unseal(a, *shares)
    expect_decline(a, "20001", 1, "LIMIT")
    check(d.stop() == 0, "clean stop")
    d.start()
    unseal(a, *shares)
    expect_decline(a, "20001", 1, "LIMIT")
    expect_ok(a, "20001", 1, "visa", "1111", currency="JPY")


# ---- no card data anywhere ------------------------------------------------

def test_no_card_data_leaves_the_vault(make):
    d = make(VAULT_SMALL, "vault-leak").start()
    proxy_path = os.path.join(d.dir, "proxy.sock")
    proxy = Proxy(proxy_path, d.control)
    a = Admin(proxy_path)
    try:
        a("status")
        status(a)
        shares = init_shares(a, 3, 2)
        a("vault", "unseal", stdin=shares[2] + "\n")
        a("vault", "status")
        a("vault", "unseal", stdin=shares[0] + "\n")
        a("catalog", "import", SAMPLE_CATALOG)
        for m in ("20001", "20002", "20003", "20004", "20005"):
            add_member(a, m)
        a("member", "list")
        a.js("member", "list")
        # Typed as people type them: grouped, dashed, plain.
        a("member", "card", "set", "20001",
          stdin=card_lines("4111 1111 1111 1111"))
        a.js("member", "card", "set", "20002",
             stdin=card_lines("5555-5555-5555-4444"))
        a("member", "card", "set", "20003", stdin=card_lines(AMEX))
        a("member", "card", "set", "20004", stdin=card_lines(JCB))
        # Refused before anything is sent; the number is not echoed.
        r = a("member", "card", "set", "20005",
              stdin=card_lines(BAD_LUHN), rc=2)
        check("Luhn" in r.err, "bad Luhn: %r" % r)
        for m in ("20001", "20002", "20003", "20004", "20005"):
            a("member", "show", m)
            a.js("member", "show", m)
        for m in ("20001", "20002", "20003", "20004"):
            a("member", "card", "show", m)
            a.js("member", "card", "show", m)
            a("member", "card", "check", m, "--amount", "1200",
              "--currency", "EUR")
            card_check(a, m, 2000, "JPY")
        expect_decline(a, "20001", 2000000, "LIMIT")
        expect_decline(a, "20005", 1200, "NO_CARD")
        a("member", "card", "remove", "20002")
        a("member", "card", "remove", "20002", rc=1)
        expect_decline(a, "20002", 1200, "NO_CARD")
        a("member", "card", "set", "20002", stdin=card_lines(MASTERCARD))
        # Replacing a card.
        a("member", "card", "set", "20001", stdin=card_lines(VISA))
        a("member", "passwd", "20003", stdin="another long password\n")
        a("vault", "rotate")
        a.js("vault", "rotate")
        a("vault", "seal")
        expect_decline(a, "20001", 1200, "VAULT_SEALED")
        a("member", "show", "20001")
        a("member", "card", "set", "20005", stdin=card_lines(VISA), rc=1)
        a("vault", "unseal", stdin=shares[1] + "\n")
        a.js("vault", "unseal", stdin=shares[2] + "\n")
        a("vault", "status")
        for m in ("20001", "20002", "20003", "20004"):
            a("member", "card", "show", m)
        a("member", "disable", "20004")
        expect_decline(a, "20004", 1200, "DISABLED")
        a("status")
        a.js("status")
        check(status(a)["cards"] == 4, "four cards on file")
        check(d.stop() == 0, "clean stop")
    finally:
        proxy.close()

    needles = []
    for number in (VISA, MASTERCARD, AMEX, JCB, BAD_LUHN):
        needles += card_needles(number)
    needles += name_needles(HOLDER)
    blobs = [(os.path.relpath(p, d.dir), data)
             for p, data in files_under(d.dir)]
    names = [p for p, _ in blobs]
    for want in ("state/broker/data.mdb", "state/vault/data.mdb",
                 "state/audit.log", "twinrouted.log"):
        check(want in names, "%s searched: %r" % (want, names))
    blobs += [("twinroutectl " + cmd, out) for cmd, out in a.outputs]
    blobs += [("proxy, to the daemon", bytes(proxy.up)),
              ("proxy, to twinroutectl", bytes(proxy.down))]
    # The search sees what it should: plaintext meant to be there is found.
    check(proxy.connections >= len(a.outputs) - 2,
          "the proxy carried the calls: %d for %d" % (
              proxy.connections, len(a.outputs)))
    found = dict(blobs)
    for where in ("state/broker/data.mdb", "proxy, to the daemon",
                  "proxy, to twinroutectl"):
        check(b"m20003@example.org" in found[where],
              "the member's email is in " + where)
    check(found["state/audit.log"].count(b"op=card_set") >= 6,
          "card enrolments audited")
    hits = find_leaks(blobs, needles)
    check(hits == [], "card data found:\n" + "\n".join(
        "  %s: %s" % h for h in hits))


# ---- tampering ------------------------------------------------------------

def test_tampered_record(make):
    d = make(VAULT_SMALL, "vault-tamper").start()
    a = admin(d)
    shares = ready_vault(a)
    for m, number in (("20001", VISA), ("20002", MASTERCARD),
                      ("20003", AMEX)):
        add_member(a, m)
        set_card(a, m, number)
    expect_ok(a, "20001", 100, "visa", "1111")
    check(d.stop() == 0, "clean stop")

    # Flip one bit of 20001's ciphertext, on disk, with LMDB's own tools.
    env = os.path.join(d.state, "vault")
    header, pairs = mdb_dump(env, "cards")
    recs = dict(pairs)
    check(sorted(recs) == [b"20001", b"20002", b"20003"],
          "one record per card: %r" % sorted(recs))
    value = bytearray(recs[b"20001"])
    ct = sealed_card(bytes(value))["ciphertext"]
    at = bytes(value).rindex(ct) + len(ct) // 3
    value[at] ^= 0x04
    mdb_load(env, "cards", header, [(b"20001", bytes(value))])
    check(dict(mdb_dump(env, "cards")[1])[b"20001"] == bytes(value),
          "the altered record is on disk")

    d.start()
    unseal(a, *shares)
    got = expect_decline(a, "20001", 100, "TAMPERED")
    check("integrity" in got["detail"], "the reason: %r" % got)
    r = a("member", "card", "show", "20001", rc=1)
    check("TAMPERED" in r.err, "card show: %r" % r)
    check(a.js("member", "show", "20001")["card_result"] == "TAMPERED",
          "member show says so")
    # The other cards are untouched; the daemon serves on.
    expect_ok(a, "20002", 100, "mastercard", "4444")
    expect_ok(a, "20003", 100, "amex", "0005")
    # Rotation would have to drop the record: it stops instead.
    r = a("vault", "rotate", rc=1)
    check("TAMPERED" in r.err and "20001" in r.err, "rotate: %r" % r)
    check(status(a)["key_version"] == 1, "no rotation happened")
    expect_ok(a, "20002", 100, "mastercard", "4444")
    check(d.proc.poll() is None, "the daemon keeps running")
    a("status")

    with open(os.path.join(d.state, "audit.log")) as f:
        lines = [ln for ln in f if 'member="20001"' in ln and
                 "result=TAMPERED" in ln]
    check(any("op=authenticate" in ln for ln in lines), "audited: %r" % lines)
    check(lines and all("level=error" in ln for ln in lines),
          "as errors: %r" % lines)
    # The way out: remove the card (no key needed), enrol it again.
    a("member", "card", "remove", "20001")
    set_card(a, "20001", VISA)
    expect_ok(a, "20001", 100, "visa", "1111")
    check(a.js("vault", "rotate")["key_version"] == 2, "rotation works again")


# ---- shares, key file, rotation -------------------------------------------

def test_shares(make):
    d = make(VAULT_SMALL, "vault-shares").start()
    other = make(VAULT_SMALL, "vault-other").start()
    a, b = admin(d), admin(other)
    st = status(a)
    check(st["initialized"] is False, "not initialized: %r" % st)
    s = init_shares(a, 5, 3)
    foreign = init_shares(b, 5, 3)
    r = a("vault", "init", "--shares", "5", "--threshold", "3", rc=1)
    check("already initialized" in r.err, "init twice: %r" % r)
    st = status(a)
    check(st["sealed"] and st["shares"] == 5 and st["threshold"] == 3 and
          st["progress"] == 0 and st["key_version"] == 1,
          "initialized, sealed: %r" % st)

    # Two of five do not unseal.
    check(unseal(a, s[0])["progress"] == 1, "one given")
    st = unseal(a, s[1])
    check(st["sealed"] and st["progress"] == 2, "two given: %r" % st)
    st = status(a)
    check(st["sealed"] and st["progress"] == 2 and st["threshold"] == 3,
          "status: 2 of 3, sealed: %r" % st)
    r = a("vault", "status")
    check("2 of 3 shares given" in r.out, "as text: %r" % r)
    # The same share again counts once.
    check(unseal(a, s[1])["progress"] == 2, "a share counts once")

    # One character changed: refused as corrupted, progress kept.
    body = s[2]
    i = len(body) // 2
    while body[i] == "-":
        i += 1
    bad = body[:i] + ("b" if body[i] != "b" else "c") + body[i + 1:]
    r = a("vault", "unseal", stdin=bad + "\n", rc=1)
    check("corrupted" in r.err and "share" in r.err, "corrupted: %r" % r)
    check(bad not in r.err and body not in r.err, "the share is not echoed")
    r = a("vault", "unseal", stdin=body[:-5] + "\n", rc=1)
    check("length" in r.err, "truncated share: %r" % r)
    # A good share of another vault: refused as such, progress kept.
    r = a("vault", "unseal", stdin=foreign[2] + "\n", rc=1)
    check("another vault" in r.err, "foreign share: %r" % r)
    st = status(a)
    check(st["sealed"] and st["progress"] == 2, "still 2 of 3: %r" % st)
    r = a("vault", "unseal", stdin="", rc=None)
    check(r.rc == 2 and "no share given" in r.err, "no share: %r" % r)

    # The third: unsealed. Typed in upper case and without dashes.
    st = unseal(a, s[2].upper().replace("-", ""))
    check(st["sealed"] is False and st["progress"] == 0, "unsealed: %r" % st)
    add_member(a, "20001")
    set_card(a, "20001", MASTERCARD)
    expect_ok(a, "20001", 100, "mastercard", "4444")

    # Other triples, across restarts: sealed at start, the card kept.
    for triple in ((4, 2, 0), (1, 3, 4)):
        check(d.stop() == 0, "clean stop")
        d.start()
        st = status(a)
        check(st["sealed"] and st["progress"] == 0 and st["cards"] == 1,
              "sealed after a restart: %r" % st)
        expect_decline(a, "20001", 100, "VAULT_SEALED")
        check(unseal(a, s[triple[0]], s[triple[1]])["sealed"],
              "two of %r do not unseal" % (triple,))
        check(unseal(a, s[triple[2]])["sealed"] is False,
              "shares %r unseal" % (triple,))
        got = a.js("member", "card", "show", "20001")
        check(got["last4"] == "4444", "the card is there: %r" % got)
        expect_ok(a, "20001", 100, "mastercard", "4444")

    # Sealing wipes the shares given so far as well.
    a("vault", "seal")
    unseal(a, s[0])
    a("vault", "seal")
    check(status(a)["progress"] == 0, "seal forgets given shares")


def start_fails(d, timeout=20):
    """Start the daemon expecting it to refuse: (exit status, its output)."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([DAEMON, "-f", "-c", d.conf_path],
                             stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        out.seek(0)
        text = out.read().decode(errors="replace")
    check(rc is not None, "twinrouted should have refused to start:\n" + text)
    return rc, text


def test_key_file(make):
    d = make(name="vault-keyfile")
    kek = os.path.join(d.dir, "kek")
    d.write_conf(VAULT_SMALL + "key_file = %s\n" % kek)
    d.start()
    a = admin(d)
    r = a("vault", "init", "--key-file", kek + ".elsewhere", rc=1)
    check("key_file = " in r.err and kek in r.err,
          "the configured file only: %r" % r)
    r = a("vault", "init", "--key-file", "kek", rc=2)
    check("absolute" in r.err, "relative path: %r" % r)
    check(not os.path.exists(kek), "nothing written yet")

    got = a.js("vault", "init", "--key-file", kek)
    check(got["shares"] == [] and got["sealed"] is False, "init: %r" % got)
    mode = stat.S_IMODE(os.stat(kek).st_mode)
    check(mode == 0o600, "key file mode 0600, got %o" % mode)
    st = status(a)
    check(st["initialized"] and not st["sealed"] and st["key_file"],
          "unsealed, key file: %r" % st)
    r = a("vault", "init", "--key-file", kek, rc=1)
    check("already" in r.err, "init twice: %r" % r)
    add_member(a, "20001")
    set_card(a, "20001", JCB)
    expect_ok(a, "20001", 100, "jcb", "0000")

    # Unsealed at start.
    check(d.stop() == 0, "clean stop")
    d.start()
    st = status(a)
    check(not st["sealed"] and st["key_file"] and st["cards"] == 1,
          "unsealed at start: %r" % st)
    expect_ok(a, "20001", 100, "jcb", "0000")
    # Sealed by hand, it unseals from its file again.
    a("vault", "seal")
    expect_decline(a, "20001", 100, "VAULT_SEALED")
    # A key-file vault unseals from its file: no share is asked for.
    check(a.js("vault", "unseal", stdin="")["sealed"] is False,
          "unsealed from the file")
    check(d.stop() == 0, "clean stop")

    # A key file others may read: the daemon refuses to start.
    for loose in (0o644, 0o640, 0o604):
        os.chmod(kek, loose)
        rc, out = start_fails(d)
        check(rc != 0, "mode %o: refused to start" % loose)
        check("key file" in out and "0600" in out,
              "mode %o: the message says why: %r" % (loose, out))
        check(not os.path.exists(d.control), "no control socket left")
    # A missing key file, for a key-file vault: refused too. (The message
    # names the vault's directory, not the key file.)
    os.rename(kek, kek + ".away")
    rc, out = start_fails(d)
    check(rc != 0 and "No such file" in out,
          "missing key file: %d %r" % (rc, out))
    os.rename(kek + ".away", kek)
    os.chmod(kek, 0o400)
    d.start()
    check(status(a)["sealed"] is False, "read-only key file is fine")
    expect_ok(a, "20001", 100, "jcb", "0000")


def test_rotation(make):
    d = make(VAULT_SMALL, "vault-rotate").start()
    a = admin(d)
    shares = ready_vault(a)
    cards = {"20001": (VISA, "visa", "1111"),
             "20002": (MASTERCARD, "mastercard", "4444"),
             "20003": (AMEX, "amex", "0005")}
    for m, (number, _, _) in cards.items():
        add_member(a, m)
        set_card(a, m, number)
    check(d.stop() == 0, "clean stop")
    env = os.path.join(d.state, "vault")
    before = dict(mdb_dump(env, "cards")[1])
    check(all(sealed_card(v)["key_version"] == 1 for v in before.values()),
          "sealed under key 1")

    d.start()
    unseal(a, *shares)
    for version in (2, 3):
        got = a.js("vault", "rotate")
        check(got == {"key_version": version, "resealed": 3},
              "rotation to %d: %r" % (version, got))
        for m, (_, brand, last4) in cards.items():
            got = a.js("member", "card", "show", m)
            check(got["brand"] == brand and got["last4"] == last4,
                  "%s readable after rotation %d: %r" % (m, version, got))
    st = status(a)
    check(st["key_version"] == 3 and st["cards"] == 3, "status: %r" % st)
    r = a("vault", "rotate", rc=None)
    check(r.rc == 0 and "version 4; 3 cards" in r.out, "as text: %r" % r)
    check(d.stop() == 0, "clean stop")

    # On disk: one wrapped data key, the current one; every record sealed
    # under it, with new nonces; the meta record names it.
    keys = mdb_dump(env, "keys")[1]
    check([k for k, _ in keys] == [(4).to_bytes(4, "big")],
          "only key version 4 is kept: %r" % [k.hex() for k, _ in keys])
    check(decode(keys[0][1])[1] == [4], "the wrapped key says version 4")
    after = dict(mdb_dump(env, "cards")[1])
    check(sorted(after) == sorted(before), "the same members")
    for m, v in after.items():
        new, old = sealed_card(v), sealed_card(before[m])
        check(new["key_version"] == 4, "%r under key 4: %r" % (m, new))
        check(new["nonce"] != old["nonce"] and
              new["ciphertext"] != old["ciphertext"], "%r resealed" % m)
    meta = decode(dict(mdb_dump(env, "meta")[1])[b"vault"])
    check(meta[6] == [4], "meta: current key version 4: %r" % meta.get(6))

    d.start()
    unseal(a, *shares)
    for m, (_, brand, last4) in cards.items():
        expect_ok(a, m, 100, brand, last4)


# ---- what twinroutectl refuses --------------------------------------------

def test_ctl_refusals(make):
    d = make(VAULT_SMALL, "vault-cli").start()
    a = admin(d)
    ready_vault(a)
    add_member(a, "20001")
    set_card(a, "20001", VISA)

    # No password on stdin: a clear error, no member.
    r = a("member", "add", "20002", "--name", "No Password", "--email",
          "np@example.org", stdin="", rc=None)
    check(r.rc == 2 and "no password given" in r.err, "no password: %r" % r)
    r = a("member", "show", "20002", rc=1)
    check("no member" in r.err, "not added: %r" % r)
    r = a("member", "passwd", "20001", stdin="", rc=None)
    check(r.rc == 2 and "no password given" in r.err, "passwd: %r" % r)

    # Through a recording proxy: what a refused card set sends (nothing).
    proxy_path = os.path.join(d.dir, "proxy.sock")
    proxy = Proxy(proxy_path, d.control)
    p = Admin(proxy_path)
    try:
        r = p("member", "card", "set", "20001",
              stdin=card_lines(BAD_LUHN), rc=2)
        check("Luhn" in r.err, "bad Luhn: %r" % r)
        _, (month, year) = this_month()
        if month == 1:
            month, year = 13, year - 1
        last = "%02d/%02d" % (month - 1, year % 100)
        r = p("member", "card", "set", "20001",
              stdin=card_lines(MASTERCARD, last), rc=2)
        check("expired" in r.err, "an expired card: %r" % r)
        r = p("member", "card", "set", "20001", stdin=card_lines(
            MASTERCARD, "13/30"), rc=2)
        check("expiry" in r.err, "a bad expiry: %r" % r)
        r = p("member", "card", "set", "20001", stdin=MASTERCARD + "\n",
              rc=None)
        check(r.rc != 0 and "three lines" in r.err, "one line: %r" % r)
        # The card is read, never taken from arguments.
        r = p("member", "card", "set", "20001", "extra",
              stdin=card_lines(MASTERCARD), rc=2)
        check("unexpected argument" in r.err, "extra argument: %r" % r)
        r = p("member", "card", "set", stdin=card_lines(MASTERCARD), rc=2)
        check("usage" in r.err, "no member number: %r" % r)
        p("member", "card", "check", "20001", "--amount", "12.50",
          "--currency", "EUR", rc=2)
        r = p("member", "card", "check", "20001", "--amount", "0",
              "--currency", "EUR", rc=2)
        check("positive" in r.err, "amount 0: %r" % r)
        for cmd in (("vault", "unseal", "tr1-aaaa"),
                    ("member", "passwd", "20001", "secret"),
                    ("vault", "seal", "now")):
            p(*cmd, stdin="", rc=2)
    finally:
        proxy.close()
    check(proxy.connections == 0 and proxy.up == b"",
          "nothing was sent: %d connections, %d bytes" % (
              proxy.connections, len(proxy.up)))
    st = status(a)
    check(st["cards"] == 1, "card count unchanged: %r" % st)
    got = a.js("member", "card", "show", "20001")
    check(got["brand"] == "visa" and got["last4"] == "1111",
          "the card on file is unchanged: %r" % got)


def test_card_number_never_echoed(make):
    # Someone puts the number on the command line by mistake: refused, and
    # the error does not repeat it (stderr ends up in logs and scrollback).
    d = make(VAULT_SMALL, "vault-echo").start()
    a = admin(d)
    ready_vault(a)
    add_member(a, "20001")
    for args in (("member", "card", "set", "20001", VISA),
                 ("member", "card", "set", "20001", "4111 1111 1111 1111"),
                 ("member", "card", "check", "20001", VISA)):
        r = a(*args, stdin=card_lines(VISA), rc=2)
        hits = find_leaks([("stderr", r.raw_out + r.raw_err)],
                          card_needles(VISA))
        check(hits == [], "%s: the number is echoed: %r" % (
            " ".join(args[:3]), r.err))
    check(status(a)["cards"] == 0, "nothing enrolled")


if __name__ == "__main__":
    main([
        test_leak_search_finds_every_form,
        test_authentication_outcomes,
        test_spends_survive_seal_and_restart,
        test_no_card_data_leaves_the_vault,
        test_tampered_record,
        test_shares,
        test_key_file,
        test_rotation,
        test_ctl_refusals,
        test_card_number_never_echoed,
    ])
