#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_restart.py -- the catalog survives stops, restarts and kills; the
# daemon stops cleanly on SIGTERM, reloads on SIGHUP, checks its config.
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (DAEMON, SAMPLE_CATALOG, check, main,  # noqa: E402
                    req_get_service)


def service_ids(d):
    return sorted(s["id"] for s in d.ctl("service", "list"))


def test_restart_keeps_catalog(make):
    d = make().start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    before = service_ids(d)
    check(len(before) == 12, "12 services imported, got %d" % len(before))
    rc = d.stop()
    check(rc == 0, "SIGTERM exits 0, got %d" % rc)
    check(not os.path.exists(os.path.join(d.state, "client.addr")),
          "address file removed on stop")
    check(not os.path.exists(d.control), "control socket removed on stop")
    d.start()
    check(service_ids(d) == before, "same services after restart")
    r = d.raw().call(req_get_service(1, "trv-onsen"))
    check(r.error_code is None, "served after restart: %r" % r)


def test_store_intact_after_sigterm(make):
    d = make().start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    check(d.stop() == 0, "clean stop")
    # LMDB's own tool reads the environment the daemon left behind.
    r = subprocess.run(["mdb_stat", "-a", os.path.join(d.state, "broker")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "mdb_stat reads the store: %s" % r.stderr)
    check("services" in r.stdout and "providers" in r.stdout,
          "named databases present:\n" + r.stdout)


def test_acknowledged_write_survives_kill(make):
    d = make().start()
    d.ctl("provider", "add", "kill-p", "--name", "Kill Test",
          "--email", "ops@kill.example", "--fax", "+81300000001")
    d.ctl("service", "add", "kill-s", "--provider", "kill-p",
          "--category", "misc", "--name", "Survives a crash",
          "--price", "100", "--currency", "JPY")
    d.kill()  # no chance to sync on the way out
    d.start()
    check("kill-s" in service_ids(d), "acknowledged service survived SIGKILL")


def test_sigterm_with_clients_connected(make):
    d = make().start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    c = d.raw()
    check(c.call(req_get_service(1, "clean-std")).error_code is None, "served")
    rc = d.stop()
    check(rc == 0, "exit 0 with an idle client connected, got %d" % rc)
    check(c.is_closed(), "client connection closed by the stop")


def test_sighup_reloads(make):
    d = make().start()
    with open(d.conf_path) as f:
        conf = f.read()
    with open(d.conf_path, "w") as f:
        f.write(conf.replace("log_level = debug", "log_level = info"))
    d.kill_with(signal.SIGHUP)
    deadline = time.time() + 10
    while "reload: settings applied" not in d.log():
        check(time.time() < deadline, "no reload logged:\n" + d.log())
        time.sleep(0.05)
    # A bad file on reload keeps the running settings.
    with open(d.conf_path, "a") as f:
        f.write("bogus_key = 1\n")
    d.kill_with(signal.SIGHUP)
    deadline = time.time() + 10
    while "keeping the running settings" not in d.log():
        check(time.time() < deadline, "bad reload not reported:\n" + d.log())
        time.sleep(0.05)
    check(d.ctl("status"), "still serving")


def test_config_check(make):
    d = make()
    r = subprocess.run([DAEMON, "-t", "-c", d.conf_path],
                       capture_output=True, text=True)
    check(r.returncode == 0, "good config: exit 0, got %d %s" % (
        r.returncode, r.stderr))
    with open(d.conf_path, "a") as f:
        f.write("max_frame = lots\n")
    lines = open(d.conf_path).read().count("\n")
    r = subprocess.run([DAEMON, "-t", "-c", d.conf_path],
                       capture_output=True, text=True)
    check(r.returncode == 2, "bad config: exit 2, got %d" % r.returncode)
    want = "%s:%d: client.max_frame:" % (d.conf_path, lines)
    check(want in r.stderr, "FILE:LINE: KEY: reason, got %r want %r" % (
        r.stderr, want))
    r = subprocess.run([DAEMON, "-t", "-c", d.conf_path + ".missing"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and ".missing" in r.stderr, "missing file")
    r = subprocess.run([DAEMON, "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "usage" in r.stdout, "--help")
    r = subprocess.run([DAEMON, "--bogus"], capture_output=True, text=True)
    check(r.returncode == 2, "unknown flag: exit 2")


if __name__ == "__main__":
    main([test_restart_keeps_catalog, test_store_intact_after_sigterm,
          test_acknowledged_write_survives_kill,
          test_sigterm_with_clients_connected, test_sighup_reloads,
          test_config_check])
