#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_control_perm.py -- the control socket lets in root and the daemon's
# own user only; anyone else gets a clear refusal.
import os
import pwd
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import SkipTest, check, main  # noqa: E402

OTHER = "nobody"


def need_root():
    if os.geteuid() != 0:
        raise SkipTest("needs root to act as another uid")
    try:
        pwd.getpwnam(OTHER)
    except KeyError:
        raise SkipTest("no user %s" % OTHER)


def test_socket_mode(make):
    d = make().start()
    st = os.stat(d.control)
    check(stat.S_ISSOCK(st.st_mode), "control socket is a socket")
    check(stat.S_IMODE(st.st_mode) == 0o600,
          "mode 0600, got %o" % stat.S_IMODE(st.st_mode))
    st = os.stat(d.state)
    check(stat.S_IMODE(st.st_mode) == 0o700, "state dir 0700")


def test_other_uid_cannot_connect(make):
    need_root()
    d = make().start()
    os.chmod(d.state, 0o755)  # let the other user reach the socket file
    r = d.ctl("status", json_out=False, check=False, user=OTHER)
    check(r.returncode == 3, "exit 3 (cannot reach), got %d: %s" % (
        r.returncode, r.stderr))
    check("permission denied" in r.stderr, "clear refusal: %r" % r.stderr)


def test_peer_credentials_checked(make):
    # Even if the socket's mode is opened up by mistake, the daemon checks
    # who is connecting and refuses other users.
    need_root()
    d = make().start()
    os.chmod(d.state, 0o755)
    os.chmod(d.control, 0o666)
    r = d.ctl("status", json_out=False, check=False, user=OTHER)
    check(r.returncode == 1, "exit 1 (refused), got %d: %s %s" % (
        r.returncode, r.stdout, r.stderr))
    check("permission denied" in r.stderr and "uid" in r.stderr,
          "the daemon's reason is shown: %r" % r.stderr)
    check("control: refused" in d.log(), "the refusal is logged")
    # root still gets in.
    st = d.ctl("status")
    check(st, "root is served")


if __name__ == "__main__":
    main([test_socket_mode, test_other_uid_cannot_connect,
          test_peer_credentials_checked])
