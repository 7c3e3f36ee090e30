#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_notify.py -- the service manager's readiness protocol (sd_notify):
# READY=1 once every listener is up, RELOADING=1 then READY=1 around a
# SIGHUP, STOPPING=1 at a stop; a path socket and an abstract one.
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import check, main  # noqa: E402


class Notify:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, address, env_value):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(30)
        self.env_value = env_value

    def next(self):
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            raise AssertionError("no notification within 30 s")
        return dict(x.split("=", 1) for x in data.decode().split("\n") if x)

    def close(self):
        self.sock.close()


def start_notified(d, notify):
    """Start d with NOTIFY_SOCKET in its environment (Daemon.start passes
    ours on)."""
    os.environ["NOTIFY_SOCKET"] = notify.env_value
    try:
        d.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]


def run_cycle(d, notify):
    start_notified(d, notify)
    msg = notify.next()
    check(msg.get("READY") == "1", "READY=1 first, got %r" % msg)
    # Ready means serving: the client listener answers at once.
    d.raw().close()
    check(d.ctl("status"), "control answers once READY=1 came")

    d.kill_with(signal.SIGHUP)
    msg = notify.next()
    check(msg.get("RELOADING") == "1", "RELOADING=1 on SIGHUP, got %r" % msg)
    check(msg.get("MONOTONIC_USEC", "").isdigit(),
          "MONOTONIC_USEC beside RELOADING=1: %r" % msg)
    msg = notify.next()
    check(msg.get("READY") == "1", "READY=1 after the reload, got %r" % msg)

    d.kill_with(signal.SIGTERM)
    msg = notify.next()
    check(msg.get("STOPPING") == "1", "STOPPING=1 on SIGTERM, got %r" % msg)
    rc = d.stop()
    check(rc == 0, "exit 0, got %d" % rc)


def test_notify_path_socket(make):
    d = make()
    path = os.path.join(d.dir, "notify.sock")
    notify = Notify(path, path)
    try:
        run_cycle(d, notify)
    finally:
        notify.close()


def test_notify_abstract_socket(make):
    d = make()
    name = "twinroute-test-notify-%d" % os.getpid()
    notify = Notify("\0" + name, "@" + name)
    try:
        run_cycle(d, notify)
    finally:
        notify.close()


def test_no_notify_socket_listening(make):
    # A NOTIFY_SOCKET nobody listens on: a warning, and the daemon serves.
    d = make()
    os.environ["NOTIFY_SOCKET"] = os.path.join(d.dir, "nobody.sock")
    try:
        d.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    check(d.ctl("status"), "serving")
    check("NOTIFY_SOCKET" in d.log(), "the failure is logged:\n" + d.log())


if __name__ == "__main__":
    main([test_notify_path_socket, test_notify_abstract_socket,
          test_no_notify_socket_listening])
