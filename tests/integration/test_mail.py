#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_mail.py -- the confirmation route with real parts: confirmations go
# to Postfix's smtp-sink over SMTP; replies come in over LMTP from swaks.
import email
import email.policy
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import ERR, SAMPLE_CATALOG, TestFailure, check, main  # noqa: E402
from test_orders import (add_member, login, order_of, req_place,  # noqa: E402
                         req_watch)

DOMAIN = "broker.example"
CARD_NUMBER = "4111111111111111"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sink:
    """Postfix's smtp-sink on a loopback port, dumping each message to a
    file. flags: extra options such as ["-f", "RCPT"] (hard reject)."""

    def __init__(self, d, port, flags=()):
        self.dir = os.path.join(d.dir, "sink")
        os.makedirs(self.dir, exist_ok=True)
        self.port = port
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", os.environ.get("USER") or "root",
             "-d", self.dir + "/%M.", *flags, "127.0.0.1:%d" % port, "50"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TestFailure("smtp-sink did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()

    def messages(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.dir, "*"))):
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def wait(self, n, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.messages()
            if len(msgs) >= n:
                # A dump is complete once smtp-sink closed it.
                time.sleep(0.1)
                return self.messages()
            time.sleep(0.05)
        raise TestFailure("smtp-sink got %d messages, wanted %d" %
                          (len(self.messages()), n))


def parse_dump(raw):
    """smtp-sink's dump: its X- lines, then the message."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return msg


def token_of(msg):
    m = re.match(r"confirm\+([a-z2-7]{26})@" + re.escape(DOMAIN) + "$",
                 str(msg["Reply-To"]))
    check(m is not None, "Reply-To: %r" % msg["Reply-To"])
    return m.group(1)


def mail_daemon(make, sink_port, extra_mail="", extra=""):
    d = make(name="trmail")
    d.write_conf("[vault]\nkey_file = %s/kek\n"
                 "[mail]\nrelay = 127.0.0.1:%d\ndomain = %s\n"
                 "from = broker@%s\nstarttls = never\nretry_min = 1s\n"
                 "retry_max = 2s\n%s%s" % (d.dir, sink_port, DOMAIN, DOMAIN,
                                           extra_mail, extra))
    d.start()
    d.ctl("vault", "init", "--key-file", os.path.join(d.dir, "kek"),
          json_out=False)
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    return d


def wait_state(d, oid, state, timeout=20):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = d.ctl("order", "show", str(oid))
        if last["state"] == state:
            return last
        time.sleep(0.05)
    raise TestFailure("order %d is %s, wanted %s" % (
        oid, last and last["state"], state))


def place(d, member, key, service="trv-fuji"):
    c = login(d, member)
    o = order_of(c.call(req_place(10, service, 1, key)))
    check(o and o["state"] == "AUTHORIZED", "placed: %r" % o)
    c.close()
    return o["id"]


def lmtp(d, sender, rcpt, headers=(), body="Yes, please go ahead.\n"):
    """Deliver one message with swaks over the LMTP socket; return
    (exit status, transcript)."""
    cmd = [SWAKS, "--protocol", "LMTP", "--socket",
           os.path.join(d.state, "lmtp.sock"), "--from", sender,
           "--to", rcpt, "--body", body, "--timeout", "20"]
    for h in headers:
        cmd += ["--header", h]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def data_reply(transcript):
    """The server's reply lines after the final dot."""
    lines = transcript.splitlines()
    for i, line in enumerate(lines):
        if line.strip().endswith("-> .") or line.strip() == "-> .":
            return "\n".join(lines[i + 1:])
    return transcript


def test_confirm_by_reply(make):
    port = free_port()
    d = mail_daemon(make, port)
    sink = Sink(d, port)
    try:
        add_member(d, "100001")
        w = login(d, "100001")
        check(w.call(req_watch(3)).error_code is None, "watch")
        oid = place(d, "100001", "mail-1")
        raw = sink.wait(1)[0]
        msg = parse_dump(raw)
        check(str(msg["To"]).endswith("m100001@example.org"), "To: %r" % msg["To"])
        token = token_of(msg)
        check(str(msg["Message-ID"]) == "<c-%s@%s>" % (token, DOMAIN),
              "Message-ID: %r" % msg["Message-ID"])
        check("c-" + token in str(msg["Subject"]), "Subject: %r" % msg["Subject"])
        check(str(msg["Auto-Submitted"]) == "auto-generated", "Auto-Submitted")
        check(msg["Content-Transfer-Encoding"] == "quoted-printable", "QP")
        text = msg.get_content()
        for want in ("1111", "cancel+%s@%s" % (token, DOMAIN), str(oid)):
            check(want in text, "body lacks %r:\n%s" % (want, text))
        check(CARD_NUMBER.encode() not in raw, "card number in the mail")
        wait_state(d, oid, "AWAITING_CONFIRMATION")

        # The reply, as a mail client sends it.
        rc, out = lmtp(d, "m100001@example.org",
                       "confirm+%s@%s" % (token, DOMAIN),
                       ["In-Reply-To: <c-%s@%s>" % (token, DOMAIN),
                        "Subject: Re: %s" % msg["Subject"]])
        check(rc == 0 and "250 2.0.0 order %d confirmed" % oid in out,
              "confirm reply: %d\n%s" % (rc, out))
        shown = wait_state(d, oid, "CONFIRMED")
        check(shown["history"][-1]["cause"].startswith("mail: confirmed"),
              "cause: %r" % shown["history"][-1])
        # The watcher saw AWAITING_CONFIRMATION, then CONFIRMED.
        seen = []
        while len(seen) < 2:
            ev = w.recv()
            o = ev.body(21)
            check(o is not None, "event: %r" % ev)
            seen.append(o)
        # The token is single use.
        rc, out = lmtp(d, "m100001@example.org",
                       "confirm+%s@%s" % (token, DOMAIN))
        check(rc != 0 and "550 5.7.1" in data_reply(out),
              "reused token refused: %d\n%s" % (rc, out))
        q = d.ctl("queue", "mail")
        check(q["queue"] == [] and q["stats"]["sent"] == 1 and
              q["stats"]["confirmed"] == 1, "queue mail: %r" % q)
        check(CARD_NUMBER not in d.log(), "card number in the log")
    finally:
        sink.stop()


def test_refused_replies(make):
    port = free_port()
    d = mail_daemon(make, port)
    sink = Sink(d, port)
    try:
        add_member(d, "100002")
        oid = place(d, "100002", "mail-2")
        token = token_of(parse_dump(sink.wait(1)[0]))
        wait_state(d, oid, "AWAITING_CONFIRMATION")
        rcpt = "confirm+%s@%s" % (token, DOMAIN)
        # Another sender.
        rc, out = lmtp(d, "mallory@example.net", rcpt)
        check(rc != 0 and "sender is not the member" in out,
              "wrong sender: %s" % out)
        # The right envelope, a forged From:.
        rc, out = lmtp(d, "m100002@example.org", rcpt,
                       ["From: <mallory@example.net>"])
        check(rc != 0 and "sender is not the member" in out,
              "forged From: %s" % out)
        # An unknown token.
        rc, out = lmtp(d, "m100002@example.org",
                       "confirm+%s@%s" % ("a" * 26, DOMAIN))
        check(rc != 0 and "unknown or already used token" in out,
              "unknown token: %s" % out)
        # Not one of ours: refused at RCPT.
        rc, out = lmtp(d, "m100002@example.org", "postmaster@" + DOMAIN)
        check(rc != 0 and "550 5.1.1" in out, "other recipient: %s" % out)
        # A vacation reply confirms nothing.
        rc, out = lmtp(d, "m100002@example.org", rcpt,
                       ["Auto-Submitted: auto-replied"])
        check(rc == 0 and "ignored" in out, "auto reply: %s" % out)
        rc, out = lmtp(d, "m100002@example.org", rcpt,
                       ["Precedence: bulk"])
        check(rc == 0 and "ignored" in out, "bulk: %s" % out)
        check(d.ctl("order", "show", str(oid))["state"] ==
              "AWAITING_CONFIRMATION", "nothing changed")
        # Replying to From (no token in the address): found through
        # In-Reply-To; here the member cancels.
        rc, out = lmtp(d, "m100002@example.org", "cancel@" + DOMAIN,
                       ["In-Reply-To: <c-%s@%s>" % (token, DOMAIN)])
        check(rc == 0 and "250 2.0.0 order %d cancelled" % oid in out,
              "cancel by mail: %s" % out)
        wait_state(d, oid, "CANCELLED")
    finally:
        sink.stop()


def test_relay_refuses(make):
    port = free_port()
    d = mail_daemon(make, port)
    sink = Sink(d, port, ["-f", "RCPT"])
    try:
        add_member(d, "100003")
        oid = place(d, "100003", "mail-3")
        shown = wait_state(d, oid, "CONFIRMATION_FAILED")
        check("relay refused" in shown["history"][-1]["cause"],
              "cause: %r" % shown["history"][-1])
    finally:
        sink.stop()


def test_deferred_then_sent_after_restart(make):
    port = free_port()
    # Nothing listens yet: the relay is down.
    d = mail_daemon(make, port)
    add_member(d, "100004")
    oid = place(d, "100004", "mail-4")
    deadline = time.time() + 20
    while True:
        q = d.ctl("queue", "mail")["queue"]
        if q and q[0]["attempts"] >= 2:
            break
        check(time.time() < deadline, "no retry: %r" % q)
        time.sleep(0.1)
    check(q[0]["order_id"] == oid and q[0]["state"] in ("DEFERRED", "SENDING", "QUEUED"),
          "deferred: %r" % q)
    check(q[0]["last_error"] != "", "last error kept: %r" % q)
    # One warning per SMTP session, not per confirmation.
    log = d.log()
    check("mail: 1 of 1 confirmations deferred" in log and
          "confirmation deferred (attempt 1" in log,
          "deferral logged: %r" % [ln for ln in log.splitlines()
                                  if "deferred" in ln])
    # A restart keeps the job; once the relay is up it goes.
    rc = d.stop()
    check(rc == 0, "stopped: %d" % rc)
    sink = Sink(d, port)
    try:
        d.start()
        sink.wait(1)
        wait_state(d, oid, "AWAITING_CONFIRMATION")
        check(len(sink.messages()) == 1, "sent once")
    finally:
        sink.stop()


def test_expiry_and_resend(make):
    port = free_port()
    d = mail_daemon(make, port, "token_lifetime = 2s\n")
    sink = Sink(d, port)
    try:
        add_member(d, "100005")
        oid = place(d, "100005", "mail-5")
        old = token_of(parse_dump(sink.wait(1)[0]))
        wait_state(d, oid, "AWAITING_CONFIRMATION")
        # The admin sends it again: a new token, the old one is dead.
        d.ctl("order", "resend-confirmation", str(oid))
        msgs = sink.wait(2)
        new = {token_of(parse_dump(m)) for m in msgs} - {old}
        check(len(new) == 1, "a new token: %r" % new)
        deadline = time.time() + 10
        while d.ctl("queue", "mail")["queue"]:
            check(time.time() < deadline, "resend job left")
            time.sleep(0.05)
        rc, out = lmtp(d, "m100005@example.org",
                       "confirm+%s@%s" % (old, DOMAIN))
        check(rc != 0 and "unknown or already used" in out, "old token: %s" % out)
        # Nobody replies: the order expires.
        shown = wait_state(d, oid, "EXPIRED", timeout=15)
        check("deadline" in shown["history"][-1]["cause"], "cause")
        rc, out = lmtp(d, "m100005@example.org",
                       "confirm+%s@%s" % (new.pop(), DOMAIN))
        check(rc != 0 and "550" in out, "expired token: %s" % out)
        # Resending an expired order is refused.
        r = d.ctl("order", "resend-confirmation", str(oid), check=False)
        check(r.returncode != 0 and "EXPIRED" in r.stderr, "resend: %r" % r.stderr)
    finally:
        sink.stop()


def test_authentication_results(make):
    port = free_port()
    d = mail_daemon(make, port, "", "[lmtp]\nrequire_authentication = yes\n"
                    "authserv_id = mx.%s\n" % DOMAIN)
    sink = Sink(d, port)
    try:
        add_member(d, "100006")
        oid = place(d, "100006", "mail-6")
        token = token_of(parse_dump(sink.wait(1)[0]))
        wait_state(d, oid, "AWAITING_CONFIRMATION")
        rcpt = "confirm+%s@%s" % (token, DOMAIN)
        rc, out = lmtp(d, "m100006@example.org", rcpt)
        check(rc != 0 and "no dkim=pass" in out, "no A-R: %s" % out)
        # A forged pass from another server does not count.
        rc, out = lmtp(d, "m100006@example.org", rcpt,
                       ["Authentication-Results: mx.%s; dkim=fail" % DOMAIN,
                        "Authentication-Results: evil.example; dkim=pass"])
        check(rc != 0 and "no dkim=pass" in out, "forged A-R: %s" % out)
        # A pass for a domain that is not the From: domain does not count.
        rc, out = lmtp(d, "m100006@example.org", rcpt,
                       ["Authentication-Results: mx.%s; dkim=pass "
                        "header.d=evil.example" % DOMAIN])
        check(rc != 0 and "no dkim=pass" in out, "unaligned A-R: %s" % out)
        rc, out = lmtp(d, "m100006@example.org", rcpt,
                       ["Authentication-Results: mx.%s; dkim=pass "
                        "header.d=example.org; spf=pass" % DOMAIN])
        check(rc == 0 and "confirmed" in out, "trusted pass: %s" % out)
        wait_state(d, oid, "CONFIRMED")
    finally:
        sink.stop()


if __name__ == "__main__":
    main([test_confirm_by_reply, test_refused_replies, test_relay_refuses,
          test_deferred_then_sent_after_restart, test_expiry_and_resend,
          test_authentication_results])
