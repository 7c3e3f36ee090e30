#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_install.py -- meson install into a DESTDIR (no root needed) puts the
# programs, man pages, example settings, systemd unit and sysusers entry
# where an operator expects them, and the installed daemon runs.
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import BIN, SOURCE, SkipTest, check, main  # noqa: E402


def meson():
    m = shutil.which("meson")
    if m is None:
        raise SkipTest("meson is not on PATH")
    return m


def build_options():
    r = subprocess.run([meson(), "introspect", "--buildoptions", BIN],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "meson introspect: " + r.stderr)
    return {o["name"]: o["value"] for o in json.loads(r.stdout)}


def test_destdir_install(make):
    opts = build_options()
    prefix = opts["prefix"]

    def under(opt, *rest):
        d = opts[opt]
        return os.path.join(d if os.path.isabs(d) else
                            os.path.join(prefix, d), *rest)

    dest = tempfile.mkdtemp(prefix="trinstall-")
    try:
        r = subprocess.run([meson(), "install", "-C", BIN, "--no-rebuild",
                            "--destdir", dest],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, "meson install: exit %d\n%s%s" % (
            r.returncode, r.stdout[-3000:], r.stderr[-3000:]))

        def there(p):
            return os.path.join(dest, p.lstrip("/"))

        programs = [under("sbindir", "twinrouted")] + [
            under("bindir", p) for p in
            ("twinroutectl", "twinroute", "twinroute-provider")]
        for p in programs:
            check(os.access(there(p), os.X_OK), "installed program " + p)
        pages = [under("mandir", "man8", "twinrouted.8"),
                 under("mandir", "man8", "twinroutectl.8"),
                 under("mandir", "man1", "twinroute.1"),
                 under("mandir", "man1", "twinroute-provider.1"),
                 under("mandir", "man5", "twinroute.conf.5")]
        for p in pages:
            check(os.path.isfile(there(p)), "installed man page " + p)
        example = under("datadir", "doc", "twinroute", "examples",
                        "twinroute.conf")
        check(os.path.isfile(there(example)), "example settings " + example)
        with open(there(example)) as a, \
                open(os.path.join(SOURCE, "conf", "twinroute.conf")) as b:
            check(a.read() == b.read(), "the example is conf/twinroute.conf")

        # The unit, in a folder systemd searches, running what was
        # installed.
        units = []
        for root, _, files in os.walk(dest):
            units += [os.path.join(root, f) for f in files
                      if f == "twinrouted.service"]
        if opts.get("systemdsystemunitdir") == "no":
            check(not units, "no unit with systemdsystemunitdir=no")
        else:
            check(len(units) == 1, "one unit installed: %r" % units)
            check(units[0].endswith("/lib/systemd/system/twinrouted.service"),
                  "unit folder: %s" % units[0])
            with open(units[0]) as f:
                execs = [x for x in f.read().splitlines()
                         if x.startswith("ExecStart=")]
            check(execs == ["ExecStart=%s -f -c "
                            "/etc/twinroute/twinroute.conf" % programs[0]],
                  "ExecStart %r, the daemon installed at %s" % (
                      execs, programs[0]))
            sysusers = []
            for root, _, files in os.walk(dest):
                if root.endswith("/sysusers.d"):
                    sysusers += [os.path.join(root, f) for f in files]
            check(len(sysusers) == 1 and
                  sysusers[0].endswith("/sysusers.d/twinroute.conf"),
                  "sysusers entry: %r" % sysusers)
            with open(sysusers[0]) as f:
                check("\nu twinroute " in f.read(), "the twinroute user")

        # The installed daemon runs and checks a settings file.
        daemon = there(programs[0])
        r = subprocess.run([daemon, "-V"], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0 and r.stdout.startswith("twinrouted "),
              "installed daemon -V: %r %r" % (r.stdout, r.stderr))
        r = subprocess.run([daemon, "-t", "-c", there(example)],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "the example settings are valid: %r" %
              r.stderr)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    main([test_destdir_install])
