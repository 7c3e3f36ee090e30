#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_login.py -- Login on the client protocol: one error for an unknown
# member and a wrong password, lockouts that survive restarts and yield to
# `twinroutectl member unlock`, a per-address rate limit, no password logged.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import check, field_bytes, field_varint, main  # noqa: E402

ERR_BAD_REQUEST = 4
ERR_AUTH = 17
ERR_LOCKED = 19
ERR_RATE_LIMITED = 20

PASSWORD = "correct horse battery"
WRONG = "wrong-password-guess"
AUTH_MSG = "unknown member or wrong password"


def req_login(rid, member, password):
    # Request field 15: Login{1: member, 2: password}.
    return field_varint(1, rid) + field_bytes(
        15, field_bytes(1, member) + field_bytes(2, password))


def login(d, member, password, rid=1):
    c = d.raw()
    try:
        return c.call(req_login(rid, member, password))
    finally:
        c.close()


def add_member(d, number, name="Hanako Yamada", password=PASSWORD):
    d.ctl("member", "add", number, "--name", name, "--email",
          "m%s@example.org" % number, stdin=password + "\n", json_out=False)


def login_conf(max_failures=3, attempts=100, window="60s"):
    return ("[login]\nmax_failures = %d\naddress_attempts = %d\n"
            "address_window = %s\n" % (max_failures, attempts, window))


def test_good_login(make):
    d = make(login_conf()).start()
    add_member(d, "100001", name="Taro Suzuki")
    c = d.raw()
    r = c.call(req_login(7, "100001", PASSWORD))
    check(r.error_code is None, "good login: %r" % r)
    check(r.id == 7, "reply echoes the id: %r" % r)
    lr = r.body(15)
    check(lr is not None, "LoginReply in field 15: %r" % r)
    check(lr[1][0] == b"100001" and lr[2][0] == b"Taro Suzuki",
          "LoginReply carries member and name: %r" % lr)
    # A second Login on the same connection is refused.
    r = c.call(req_login(8, "100001", PASSWORD))
    check(r.error_code == ERR_BAD_REQUEST, "second login refused: %r" % r)
    c.close()
    # A client that leaves while its password is being checked.
    for _ in range(3):
        c = d.raw()
        c.send_frame(req_login(9, "100001", PASSWORD))
        c.close()
    # A malformed member number is a bad request, not an auth failure.
    r = login(d, "12ab", PASSWORD)
    check(r.error_code == ERR_BAD_REQUEST, "bad number: %r" % r)


def test_unknown_and_wrong_look_alike(make):
    d = make(login_conf()).start()
    add_member(d, "100002")
    wrong = login(d, "100002", WRONG)
    unknown = login(d, "999999", PASSWORD)
    check(wrong.error_code == ERR_AUTH, "wrong password: %r" % wrong)
    check(unknown.error_code == ERR_AUTH, "unknown member: %r" % unknown)
    check(wrong.error_message == unknown.error_message == AUTH_MSG,
          "same message: %r / %r" % (wrong.error_message,
                                     unknown.error_message))
    # A disabled member looks the same too.
    d.ctl("member", "disable", "100002", json_out=False)
    disabled = login(d, "100002", PASSWORD)
    check(disabled.error_code == ERR_AUTH and
          disabled.error_message == AUTH_MSG, "disabled: %r" % disabled)


def test_lockout_unlock_restart(make):
    d = make(login_conf(max_failures=3)).start()
    add_member(d, "100003")
    add_member(d, "100004")
    # Failures below the limit are forgotten by a good login.
    for _ in range(2):
        check(login(d, "100004", WRONG).error_code == ERR_AUTH, "fail")
    check(login(d, "100004", PASSWORD).error_code is None, "good login")
    for _ in range(2):
        check(login(d, "100004", WRONG).error_code == ERR_AUTH, "fail")
    check(login(d, "100004", PASSWORD).error_code is None,
          "count reset by the good login: not locked")

    for i in range(3):
        r = login(d, "100003", WRONG)
        check(r.error_code == ERR_AUTH, "failure %d: %r" % (i + 1, r))
    r = login(d, "100003", PASSWORD)
    check(r.error_code == ERR_LOCKED, "locked even with the password: %r" % r)
    check("UTC" in r.error_message and "administrator" in r.error_message,
          "lock message: %r" % r.error_message)
    check("member 100003 locked out after 3 failed logins" in d.log(),
          "lockout logged")

    # The lockout is in the store: a restart keeps it.
    check(d.stop() == 0, "clean stop")
    d.start()
    r = login(d, "100003", PASSWORD)
    check(r.error_code == ERR_LOCKED, "still locked after restart: %r" % r)

    r = d.ctl("member", "unlock", "100003", json_out=False, check=False)
    check(r.returncode == 0, "member unlock: %s %s" % (r.stdout, r.stderr))
    r = login(d, "100003", PASSWORD)
    check(r.error_code is None, "unlocked: %r" % r)
    r = d.ctl("member", "unlock", "999998", json_out=False, check=False)
    check(r.returncode != 0, "unlock of an unknown member fails")


def test_rate_limit_per_address(make):
    d = make(login_conf(max_failures=10, attempts=5, window="10m")).start()
    add_member(d, "100005")
    add_member(d, "100006")
    for i in range(5):
        r = login(d, "100005", WRONG if i % 2 else PASSWORD)
        check(r.error_code in (None, ERR_AUTH), "attempt %d: %r" % (i, r))
    r = login(d, "100006", PASSWORD)
    check(r.error_code == ERR_RATE_LIMITED,
          "6th attempt from 127.0.0.1 limited, other member too: %r" % r)
    check("too many login attempts" in r.error_message and
          " s" in r.error_message, "message: %r" % r.error_message)


def test_no_password_in_log(make):
    d = make(login_conf()).start()
    add_member(d, "100007")
    login(d, "100007", WRONG)
    login(d, "100007", PASSWORD)
    login(d, "555555", "unknown-member-secret")
    log = d.log()
    check("login failed member=100007 peer=127.0.0.1 failures=1" in log,
          "failure logged with member, peer and count")
    check("login failed member=555555" in log, "unknown member logged")
    for secret in (PASSWORD, WRONG, "unknown-member-secret"):
        check(secret not in log, "password %r not in the log" % secret)


if __name__ == "__main__":
    main([test_good_login, test_unknown_and_wrong_look_alike,
          test_lockout_unlock_restart, test_rate_limit_per_address,
          test_no_password_in_log])
