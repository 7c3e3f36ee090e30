# SPDX-License-Identifier: ISC
# trtest.py -- start a real twinrouted in a temporary folder and talk to it
# through its sockets and the real command-line tools.
#
# Standard library only (run with /usr/bin/python3). Protobuf messages are
# built and read with a few lines of wire-format code below, so tests can
# also send exactly the bytes a broken or hostile client would.
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("TWINROUTE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SOURCE = os.environ.get("TWINROUTE_SOURCE") or os.path.join(
    os.path.dirname(__file__), "..", "..")

DAEMON = os.path.join(BIN, "src", "twinrouted")
CTL = os.path.join(BIN, "tools", "twinroutectl")
CLIENT = os.path.join(BIN, "tools", "twinroute")
SAMPLE_CATALOG = os.path.join(SOURCE, "conf", "sample-catalog.jsonl")

# ErrorCode values from proto/common.proto.
ERR = {
    "INTERNAL": 1, "BAD_FRAME": 2, "FRAME_TOO_LARGE": 3, "BAD_REQUEST": 4,
    "UNSUPPORTED": 5, "VERSION": 6, "NOT_FOUND": 7, "EXISTS": 8,
    "STORE_FULL": 9, "STORE": 10, "PERMISSION": 11,
    "TOO_MANY_CONNECTIONS": 12, "SHUTTING_DOWN": 13, "BAD_PAGE_TOKEN": 14,
    "VAULT_SEALED": 15, "VAULT": 16, "AUTH": 17, "IDEMPOTENCY_MISMATCH": 18,
    "LOCKED": 19, "RATE_LIMITED": 20, "NOT_LOGGED_IN": 21, "WRONG_STATE": 22,
    "SERVICE_UNAVAILABLE": 23, "BAD_QUANTITY": 24,
    "NOT_AUTHENTICATED": 25, "FORBIDDEN": 26, "REPLACED": 27,
}

SKIP = 77  # meson's exit code for a skipped test


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


# ---- protobuf wire format ------------------------------------------------

def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def decode(buf):
    """Decode one message into {field number: [values]}; length-delimited
    values stay bytes (decode them again for sub-messages)."""
    fields = {}
    i = 0
    n = len(buf)

    def read_varint():
        nonlocal i
        shift = 0
        val = 0
        while True:
            if i >= n:
                raise ValueError("truncated varint")
            b = buf[i]
            i += 1
            val |= (b & 0x7F) << shift
            if not b & 0x80:
                return val
            shift += 7

    while i < n:
        key = read_varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = read_varint()
        elif wt == 2:
            ln = read_varint()
            v = bytes(buf[i:i + ln])
            i += ln
        elif wt == 1:
            v = bytes(buf[i:i + 8])
            i += 8
        elif wt == 5:
            v = bytes(buf[i:i + 4])
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        fields.setdefault(num, []).append(v)
    return fields


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


# Client protocol requests (proto/client.proto field numbers).
def req_hello(rid, version=1, client="trtest"):
    return field_varint(1, rid) + field_bytes(
        10, field_varint(1, version) + field_bytes(2, client))


def req_get_service(rid, sid):
    return field_varint(1, rid) + field_bytes(13, field_bytes(1, sid))


def req_list_categories(rid):
    return field_varint(1, rid) + field_bytes(11, b"")


def req_search(rid, query):
    return field_varint(1, rid) + field_bytes(14, field_bytes(1, query))


class Reply:
    """A decoded client Response."""

    def __init__(self, payload):
        self.raw = payload
        self.fields = decode(payload)
        self.id = self.fields.get(1, [0])[0]
        self.error_code = None
        self.error_message = None
        if 2 in self.fields:
            e = decode(self.fields[2][0])
            self.error_code = e.get(1, [0])[0]
            self.error_message = e.get(2, [b""])[0].decode()

    def body(self, num):
        return decode(self.fields[num][0]) if num in self.fields else None

    def __repr__(self):
        return "Reply(id=%r, error=%r %r, fields=%r)" % (
            self.id, self.error_code, self.error_message,
            sorted(self.fields))


class Raw:
    """A raw TCP connection speaking frames."""

    def __init__(self, addr, timeout=10):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.send(frame(payload))

    def recv_frame(self):
        """The next frame's payload, or None at EOF."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    p = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return p
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def recv(self):
        p = self.recv_frame()
        return None if p is None else Reply(p)

    def call(self, payload):
        self.send_frame(payload)
        return self.recv()

    def is_closed(self, timeout=10):
        """True once the server has closed the connection (EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# ---- the daemon ------------------------------------------------------------

class Daemon:
    def __init__(self, conf="", name="trtest"):
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        os.chmod(self.dir, 0o755)
        self.state = os.path.join(self.dir, "state")
        self.conf_path = os.path.join(self.dir, "twinroute.conf")
        self.log_path = os.path.join(self.dir, "twinrouted.log")
        self.control = os.path.join(self.state, "control.sock")
        self.proc = None
        self.addr = None
        self.write_conf(conf)

    def write_conf(self, extra=""):
        # Sections given in `extra` are appended after the defaults below;
        # keys must not repeat, so callers pass only other keys.
        # Confirmations go nowhere unless a test says where: never to an
        # MTA that may be running on this machine.
        mail = "" if "[mail]" in extra else "[mail]\nrelay = 127.0.0.1:9\n"
        base = ("[daemon]\nstate_dir = %s\nlog_level = debug\n%s"
                "[client]\nlisten = 127.0.0.1:0\n" % (self.state, mail))
        with open(self.conf_path, "w") as f:
            f.write(base)
            f.write(extra)

    def start(self, timeout=20):
        addr_file = os.path.join(self.state, "client.addr")
        if os.path.exists(addr_file):
            os.unlink(addr_file)
        self.logf = open(self.log_path, "a")
        # TWINROUTE_DAEMON_WRAPPER="valgrind --error-exitcode=66" runs the
        # daemon under a checker; its exit status is checked at stop.
        wrapper = os.environ.get("TWINROUTE_DAEMON_WRAPPER", "").split()
        self.proc = subprocess.Popen(
            wrapper + [DAEMON, "-f", "-c", self.conf_path],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("twinrouted exited with %d:\n%s" % (
                    self.proc.returncode, self.log()))
            if os.path.exists(addr_file) and os.path.exists(self.control):
                with open(addr_file) as f:
                    self.addr = f.read().strip()
                if self.addr:
                    return self
            time.sleep(0.05)
        raise TestFailure("twinrouted did not come up:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill_with(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop the daemon; return its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("twinrouted did not stop on signal %d:\n%s"
                              % (sig, self.log()))
        self.logf.close()
        return self.proc.returncode

    def kill(self):
        """SIGKILL: a crash, as far as the daemon can tell."""
        self.proc.kill()
        self.proc.wait()
        self.logf.close()

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def raw(self):
        return Raw(self.addr)

    def ctl(self, *args, json_out=True, check=True, user=None, stdin=None):
        """Run twinroutectl; return parsed JSON (json_out) or the result."""
        cmd = [CTL, "-s", self.control]
        if json_out:
            cmd.append("--json")
        cmd += list(args)
        return run(cmd, json_out, check, user, stdin)

    def client(self, *args, json_out=True, check=True):
        cmd = [CLIENT, "-H", self.addr]
        if json_out:
            cmd.append("--json")
        cmd += list(args)
        return run(cmd, json_out, check)


def run(cmd, json_out=True, check=True, user=None, stdin=None):
    if user is not None:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", "--reuid=%d" % pw.pw_uid,
               "--regid=%d" % pw.pw_gid, "--clear-groups"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, input=stdin,
                       timeout=60)
    if check and r.returncode != 0:
        raise TestFailure("%s exited %d\nstdout: %s\nstderr: %s" % (
            " ".join(cmd), r.returncode, r.stdout, r.stderr))
    if json_out and check:
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise TestFailure("%s: not JSON: %r" % (" ".join(cmd), r.stdout))
    return r


def main(tests):
    """Run each test function with a fresh daemon fixture list; print a
    line per test and exit non-zero if any failed."""
    failed = 0
    for t in tests:
        daemons = []

        def make(conf="", name="trtest"):
            d = Daemon(conf, name)
            daemons.append(d)
            return d
        try:
            t(make)
            # Every daemon a test leaves running must stop cleanly: exit 0,
            # which under the sanitizers also means no leak and no error.
            for d in daemons:
                if d.proc is not None and d.proc.poll() is None:
                    rc = d.stop()
                    check(rc == 0, "twinrouted exited %d on SIGTERM" % rc)
            print("ok   %s" % t.__name__)
        except SkipTest as e:
            print("skip %s: %s" % (t.__name__, e))
        except Exception as e:
            failed += 1
            print("FAIL %s: %s: %s" % (t.__name__, type(e).__name__, e))
            for d in daemons:
                print("---- daemon log (%s) ----\n%s" % (d.dir, d.log()[-6000:]))
        finally:
            for d in daemons:
                d.cleanup()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    sys.exit(1 if failed else 0)


class SkipTest(Exception):
    pass
