#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_logs.py -- log_target = file with log_format = json: every line one
# JSON object; a renamed file and SIGHUP (logrotate) move the lines to a
# new file; the daemon's own checks of the log settings.
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import DAEMON, SAMPLE_CATALOG, check, main  # noqa: E402

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {"err", "warn", "info", "debug"}


def file_conf(path, fmt):
    return ("[daemon]\nlog_target = file\nlog_file = %s\nlog_format = %s\n"
            % (path, fmt))


def read_json_lines(path):
    """Every line of path, each checked to be one whole JSON object."""
    with open(path, "rb") as f:
        data = f.read()
    check(data == b"" or data.endswith(b"\n"), "%s ends mid-line" % path)
    out = []
    for n, raw in enumerate(data.split(b"\n")[:-1], 1):
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("%s:%d: not JSON (%s): %r" % (
                path, n, e, raw))
        check(isinstance(obj, dict), "%s:%d: not an object" % (path, n))
        check(set(obj) - {"id"} == {"time", "level", "program", "msg"},
              "%s:%d: members %r" % (path, n, sorted(obj)))
        check(TIME_RE.match(obj["time"]), "%s:%d: time %r" % (
            path, n, obj["time"]))
        check(obj["level"] in LEVELS, "%s:%d: level %r" % (
            path, n, obj["level"]))
        check(obj["program"] == "twinrouted", "%s:%d: program %r" % (
            path, n, obj["program"]))
        if "id" in obj:
            check(obj["msg"].startswith(obj["id"] + " "),
                  "%s:%d: id %r not the message's" % (path, n, obj["id"]))
        out.append(obj)
    return out


def wait_for(path, text, timeout=15):
    deadline = time.time() + timeout
    while True:
        try:
            if any(text in o["msg"] for o in read_json_lines(path)):
                return
        except FileNotFoundError:
            pass
        check(time.time() < deadline, "%r never logged in %s" % (text, path))
        time.sleep(0.05)


def test_json_file_and_rotation(make):
    d = make()
    log = os.path.join(d.dir, "logs", "twinrouted.log")
    os.mkdir(os.path.dirname(log))
    d.write_conf(file_conf(log, "json"))
    d.start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    d.ctl("status")
    # A request that fails: a warning or error line with user-chosen text.
    d.ctl("provider", "show", 'no-such "provider"\\\x01', check=False)
    wait_for(log, " ready: ")
    mode = os.stat(log).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    check(mode == 0o640 & ~umask, "log file mode %o" % mode)
    check(" ready: " not in d.log(), "nothing on stderr with a log file:\n"
          + d.log())

    # logrotate: rename, then HUP; the daemon writes on to a new file.
    rotated = log + ".1"
    os.rename(log, rotated)
    d.ctl("status")  # still into the renamed file
    d.kill_with(signal.SIGHUP)
    wait_for(log, "reload: settings applied")
    d.ctl("provider", "show", "after-rotation", check=False)
    d.ctl("catalog", "import", SAMPLE_CATALOG, check=False)
    old = read_json_lines(rotated)
    check(any(" ready: " in o["msg"] for o in old), "start in the old file")
    check(not any("reload" in o["msg"] for o in old),
          "nothing after the HUP in the old file")
    rc = d.stop()
    check(rc == 0, "exit 0, got %d" % rc)
    new = read_json_lines(log)
    check(not any(" ready: " in o["msg"] for o in new),
          "the new file starts at the reload")
    check(any(o["msg"] == "stopped" for o in new), "stop in the new file")
    check(len(new) >= 3, "new lines land in the new file: %r" % new)


def test_text_file(make):
    d = make()
    log = os.path.join(d.dir, "twinrouted.txt")
    d.write_conf(file_conf(log, "text"))
    d.start()
    d.ctl("status")
    check(d.stop() == 0, "clean stop")
    with open(log) as f:
        lines = f.read().splitlines()
    check(lines, "lines in the text log")
    line_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                         r"twinrouted\[(err|warn|info|debug)\] ")
    for line in lines:
        check(line_re.match(line), "text line: %r" % line)
    check(any(" ready: " in x for x in lines), "ready line")


def test_json_on_stderr(make):
    d = make("[daemon]\nlog_format = json\n").start()
    d.ctl("status")
    check(d.stop() == 0, "clean stop")
    lines = [x for x in d.log().splitlines() if x.startswith("{")]
    check(any(" ready: " in json.loads(x)["msg"] for x in lines),
          "JSON lines on stderr:\n" + d.log())
    for x in lines:
        check(json.loads(x)["program"] == "twinrouted", "line %r" % x)


def test_bad_log_settings(make):
    d = make()
    cases = [
        ("[daemon]\nlog_target = file\n",
         "daemon.log_target: file without daemon.log_file"),
        ("[daemon]\nlog_format = yaml\n",
         "daemon.log_format: not text or json: yaml"),
        ("[daemon]\nlog_target = file\nlog_file = relative.log\n",
         "daemon.log_file"),
    ]
    for conf, want in cases:
        d.write_conf(conf)
        r = subprocess.run([DAEMON, "-t", "-c", d.conf_path],
                           capture_output=True, text=True)
        check(r.returncode == 2 and want in r.stderr,
              "%r: exit %d %r" % (conf, r.returncode, r.stderr))
    # A file that cannot be opened: said on stderr, exit non-zero.
    d.write_conf(file_conf(os.path.join(d.dir, "missing", "x.log"), "json"))
    r = subprocess.run([DAEMON, "-f", "-c", d.conf_path],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "log file" in r.stderr and
          "missing" in r.stderr, "unopenable log file: %d %r" % (
              r.returncode, r.stderr))


if __name__ == "__main__":
    main([test_json_file_and_rotation, test_text_file, test_json_on_stderr,
          test_bad_log_settings])
