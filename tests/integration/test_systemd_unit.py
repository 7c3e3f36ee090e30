#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_systemd_unit.py -- the systemd unit meson generates parses, runs the
# program meson installs with flags the daemon has, keeps the sandbox the
# README promises, and passes systemd-analyze verify where that exists.
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import BIN, DAEMON, SkipTest, check, main  # noqa: E402

UNIT = os.path.join(BIN, "conf", "twinrouted.service")


def parse_unit(path):
    """{section: [(key, value)]}, as systemd reads it: comments, blank
    lines, sections, Key=Value; line continuations are refused here."""
    sections = {}
    cur = None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip()[0] in "#;":
                continue
            check(not line.endswith("\\"), "%d: a continuation" % n)
            m = re.match(r"^\[([A-Za-z]+)\]$", line)
            if m:
                cur = m.group(1)
                check(cur not in sections, "%d: [%s] twice" % (n, cur))
                sections[cur] = []
                continue
            m = re.match(r"^([A-Za-z][A-Za-z0-9]*)=(.*)$", line)
            check(m and cur, "%d: not Key=Value in a section: %r" % (n, line))
            sections[cur].append((m.group(1), m.group(2)))
    return sections


def one(sec, key):
    vals = [v for k, v in sec if k == key]
    check(len(vals) == 1, "%s set %d times" % (key, len(vals)))
    return vals[0]


def installed():
    meson = shutil.which("meson")
    if meson is None:
        raise SkipTest("meson is not on PATH")
    r = subprocess.run([meson, "introspect", "--installed", BIN],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "meson introspect: " + r.stderr)
    return json.loads(r.stdout)


def test_unit_keys(make):
    check(os.path.exists(UNIT), "meson generated " + UNIT)
    text = open(UNIT).read()
    check(not re.search(r"@[A-Z_]+@", text), "placeholders left in the unit")
    u = parse_unit(UNIT)
    check(set(u) == {"Unit", "Service", "Install"}, "sections %r" % set(u))
    s = u["Service"]
    want = {
        "Type": "notify",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "User": "twinroute",
        "Group": "twinroute",
        "SupplementaryGroups": "dialout",
        "StateDirectory": "twinroute",
        "StateDirectoryMode": "0700",
        "RuntimeDirectory": "twinroute",
        "UMask": "0077",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "no",
        "MemoryDenyWriteExecute": "yes",
        "LimitCORE": "0",
        "LimitMEMLOCK": "64M",
        "LockPersonality": "yes",
        "RestrictRealtime": "yes",
        "RestrictNamespaces": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures": "native",
        "SystemCallErrorNumber": "EPERM",
    }
    for k, v in want.items():
        check(one(s, k) == v, "%s=%r, want %r" % (k, one(s, k), v))
    filters = [v for k, v in s if k == "SystemCallFilter"]
    check(filters[0] == "@system-service", "allow list first: %r" % filters)
    denied = " ".join(f[1:] for f in filters if f.startswith("~")).split()
    check("@privileged" in denied and "@resources" in denied,
          "privileged and resource calls denied: %r" % filters)
    allowed_after = " ".join(f for f in filters[1:]
                             if not f.startswith("~")).split()
    check("@memlock" in allowed_after and "@chown" in allowed_after,
          "mlock and chown allowed again after the denials: %r" % filters)
    check(filters.index(next(f for f in filters if f.startswith("~"))) <
          max(i for i, f in enumerate(filters) if "@memlock" in f),
          "the allowance comes after the denial")
    allow = [v for k, v in s if k == "DeviceAllow"]
    check(any("ttyS" in a for a in allow), "serial ports allowed: %r" % allow)
    check(one(u["Install"], "WantedBy") == "multi-user.target", "WantedBy")

    # ExecStart: the installed daemon, in the foreground, with the file
    # the daemon reads by default.
    argv = one(s, "ExecStart").split()
    inst = installed()
    want_bin = inst.get(os.path.join(BIN, "src", "twinrouted"))
    check(want_bin, "twinrouted is installed: %r" % inst)
    check(argv[0] == want_bin, "ExecStart runs %s, meson installs %s" % (
        argv[0], want_bin))
    check(inst.get(UNIT, "").endswith("/systemd/system/twinrouted.service"),
          "the unit is installed into a systemd unit folder: %r"
          % inst.get(UNIT))
    h = subprocess.run([DAEMON, "--help"], capture_output=True, text=True,
                       timeout=30).stdout
    for a in argv[1:]:
        if a.startswith("-"):
            check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(a), h),
                  "ExecStart flag %s: not in twinrouted --help" % a)
    check("-f" in argv, "ExecStart keeps the daemon in the foreground")
    conf = argv[argv.index("-c") + 1]
    m = re.search(r"default (/\S+?);", h)
    check(m and m.group(1) == conf, "ExecStart reads %s, the daemon's "
          "default is %s" % (conf, m.group(1) if m else None))


def test_systemd_analyze_verify(make):
    sa = shutil.which("systemd-analyze")
    if sa is None:
        raise SkipTest("systemd-analyze is not installed: unit not verified")
    # The unit as installed, but running the daemon of this build (verify
    # wants ExecStart's program to exist).
    d = tempfile.mkdtemp(prefix="trunit-")
    try:
        text = open(UNIT).read()
        text = re.sub(r"^ExecStart=\S+", "ExecStart=" + DAEMON, text,
                      flags=re.M)
        path = os.path.join(d, "twinrouted.service")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([sa, "verify", "--man=no", path],
                           capture_output=True, text=True, timeout=120)
        said = [x for x in (r.stdout + r.stderr).splitlines()
                if "twinrouted.service" in x]
        check(r.returncode == 0 and not said, "systemd-analyze verify: "
              "exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        # It can fail: an unknown key is reported.
        with open(path, "a") as f:
            f.write("[Service]\nNoSuchSetting=1\n")
        r = subprocess.run([sa, "verify", "--man=no", path],
                           capture_output=True, text=True, timeout=120)
        check("NoSuchSetting" in r.stdout + r.stderr,
              "verify reports an unknown key: %r" % (r.stdout + r.stderr))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main([test_unit_keys, test_systemd_analyze_verify])
