# SPDX-License-Identifier: ISC
# test_faxline.py -- faxline: drive its Class 1 modem over the pty with AT
# commands, as twinroute's fax dispatcher will, and read its call lines.
#
# Standard library only (run with /usr/bin/python3).
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tty

BIN = os.environ.get("TWINROUTE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
FAXLINE = os.path.join(BIN, "tools", "faxline")

DLE, ETX = 0x10, 0x03
XON, XOFF = 0x11, 0x13
FCF_CSI, FCF_DIS = 0x40, 0x80
CSI = "+1 555 0100"


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def crc16_x25(data):
    """The HDLC frame check sequence (CRC-16/X.25) over data."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def unstuff(data):
    """Class 1 received HDLC data: DLE DLE is one DLE, DLE ETX ends the
    frame. Returns (frame, rest); frame None while the end is missing."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == DLE:
            if i + 1 >= len(data):
                return None, data
            n = data[i + 1]
            if n == ETX:
                return bytes(out), data[i + 2:]
            if n == DLE:
                out.append(DLE)
            i += 2
            continue
        out.append(b)
        i += 1
    return None, data


class Line:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="faxline-")
        self.link = os.path.join(self.dir, "modem")
        self.tiffs = os.path.join(self.dir, "tiff")
        os.mkdir(self.tiffs)
        self.err = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(
            [FAXLINE, "--link", self.link, "--tiff-dir", self.tiffs,
             "--csi", CSI, "--verbose"] + list(args),
            stdout=subprocess.PIPE, stderr=self.err)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.out = b""
        deadline = time.time() + 10
        while not os.path.islink(self.link):
            check(self.proc.poll() is None, "faxline exited at start")
            check(time.time() < deadline, "no link after 10 s")
            time.sleep(0.02)
        self.fd = os.open(self.link, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.buf = b""

    def read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            self.buf += os.read(self.fd, 4096)
            return True
        return False

    def expect(self, text, timeout=10):
        """Wait for text (bytes) from the modem; return what came before
        it and consume both."""
        deadline = time.time() + timeout
        while text not in self.buf:
            left = deadline - time.time()
            check(left > 0, "no %r from the modem; got %r" % (text, self.buf))
            self.read(left)
        i = self.buf.index(text)
        before, self.buf = self.buf[:i], self.buf[i + len(text):]
        return before

    def result(self, timeout=10):
        """The modem's next result code line."""
        deadline = time.time() + timeout
        while True:
            lines = self.buf.split(b"\r\n")
            for n, ln in enumerate(lines[:-1]):
                if ln.strip():
                    self.buf = b"\r\n".join(lines[n + 1:])
                    return ln.strip().decode("latin-1")
            left = deadline - time.time()
            check(left > 0, "no result code; got %r" % self.buf)
            self.read(left)

    def at(self, cmd, timeout=10):
        os.write(self.fd, cmd.encode() + b"\r")
        r = self.result(timeout)
        return self.result(timeout) if r == cmd else r  # the echo

    def frame(self, timeout=10):
        """After CONNECT: one received HDLC frame, FCS checked, then the
        modem's OK."""
        deadline = time.time() + timeout
        while True:
            frame, rest = unstuff(self.buf)
            if frame is not None:
                self.buf = rest
                break
            left = deadline - time.time()
            check(left > 0, "no complete frame; got %r" % self.buf)
            self.read(left)
        check(len(frame) >= 5, "short frame %r" % frame)
        body, fcs = frame[:-2], frame[-2:]
        crc = crc16_x25(body)
        check(fcs == bytes([crc & 0xFF, crc >> 8]),
              "bad FCS in %s" % frame.hex())
        check(self.result(timeout) == "OK", "no OK after the frame")
        return body

    def call_line(self, timeout=10):
        deadline = time.time() + timeout
        while b"\n" not in self.out:
            left = deadline - time.time()
            check(left > 0, "no call line on stdout; got %r" % self.out)
            select.select([self.proc.stdout], [], [], left)
            chunk = self.proc.stdout.read()
            if chunk:
                self.out += chunk
            elif self.proc.poll() is not None:
                check(False, "faxline exited %d" % self.proc.returncode)
        line, self.out = self.out.split(b"\n", 1)
        return json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def log(self):
        self.err.seek(0)
        return self.err.read()

    def cleanup(self):
        self.stop()
        try:
            os.close(self.fd)
        except (OSError, AttributeError):
            pass
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def dial(line, number="5551234"):
    check(line.at("ATZ") == "OK", "ATZ")
    check(line.at("ATE0") == "OK", "ATE0")
    check(line.at("AT+FCLASS=1") == "OK", "AT+FCLASS=1")
    return line.at("ATD" + number, timeout=20)


def test_at_commands(line):
    check(line.at("ATZ") == "OK", "ATZ")
    check(line.at("AT") == "OK", "AT")
    check(line.at("ATE0") == "OK", "ATE0")
    check(line.at("AT+FCLASS=1") == "OK", "AT+FCLASS=1")
    check(line.at("AT+FCLASS?") == "1", "AT+FCLASS? reads 1")
    check(line.result() == "OK", "OK after AT+FCLASS?")
    mods = line.at("AT+FTM=?")
    check(line.result() == "OK", "OK after AT+FTM=?")
    got = set(int(m) for m in mods.split(","))
    for m in (24, 48, 72, 73, 74, 96, 97, 98, 121, 122, 145, 146):
        check(m in got, "AT+FTM=? lacks %d: %s" % (m, mods))
    check(line.at("AT+FRH=?") == "3", "AT+FRH=? is 3")
    check(line.result() == "OK", "OK after AT+FRH=?")
    check(line.at("ATX9Q") == "ERROR", "bad command: ERROR")


def test_garbage_from_host(line):
    check(line.at("ATE0") == "OK", "ATE0")
    junk = bytes(range(256)) * 8 + b"A" * 5000 + b"\r" + b"AT" * 3000
    os.write(line.fd, junk + b"\r")
    time.sleep(0.5)
    while line.read(0.2):
        pass
    line.buf = b""
    check(line.proc.poll() is None, "faxline died on garbage")
    check(line.at("AT") == "OK", "AT after garbage")
    check(line.at("AT+FCLASS=1") == "OK", "AT+FCLASS=1 after garbage")


def test_call_csi_dis_hangup(line):
    check(dial(line) == "CONNECT", "ATD: CONNECT")
    # The receiver speaks first: CSI (not final), then DIS (final), each
    # delivered with its own +FRH=3 (the dial's CONNECT counts as one).
    csi = line.frame()
    check(csi[0] == 0xFF, "address 0xff")
    check(csi[1] == 0x03, "CSI is not the final frame")
    check(csi[2] == FCF_CSI, "first frame is CSI: %s" % csi.hex())
    check(len(csi) == 3 + 20, "CSI carries 20 digits")
    ident = csi[3:][::-1].decode("ascii").strip()
    check(ident == CSI, "CSI %r, expected %r" % (ident, CSI))
    dis = None
    for _ in range(4):
        check(line.at("AT+FRH=3") == "CONNECT", "AT+FRH=3: CONNECT")
        f = line.frame()
        if f[2] == FCF_DIS:
            dis = f
            break
    check(dis is not None, "no DIS frame")
    check(dis[1] == 0x13, "DIS is the final frame")
    # DIS bits (T.30 table 2, bit n is bit (n-1)%8 of octet (n-1)//8, the
    # octets here bit-reversed as sent): receiver, fine resolution (15),
    # 2-D coding (16), no ECM (27).
    fif = dis[3:]
    bit = lambda n: (fif[(n - 1) // 8] >> ((n - 1) % 8)) & 1
    check(bit(10) == 1, "DIS: can receive")
    check(bit(15) == 1, "DIS: fine resolution")
    check(bit(16) == 1, "DIS: 2-D coding")
    check(bit(27) == 0, "DIS: no ECM")
    check(line.at("ATH") == "OK", "ATH: OK")
    call = line.call_line()
    check(call["call"] == 1, "call number 1: %r" % call)
    check(call["number"] == "5551234", "number: %r" % call)
    check(call["result"] == "HANGUP", "result HANGUP: %r" % call)
    check(call["pages"] == 0, "no pages: %r" % call)
    check(call["tiff"] is None, "no TIFF: %r" % call)
    check(isinstance(call["t30_status"], str) and call["t30_status"],
          "t30 status text: %r" % call)
    check(os.listdir(line.tiffs) == [], "no TIFF left behind")
    # The line serves the next call.
    check(line.at("ATD5551234", timeout=20) == "CONNECT", "second call")
    line.frame()
    check(line.at("ATH") == "OK", "ATH")
    check(line.call_line()["call"] == 2, "second call line")


def test_busy(line):
    check(dial(line) == "BUSY", "ATD with --busy: BUSY")
    call = line.call_line()
    check(call["result"] == "BUSY" and call["pages"] == 0, "%r" % call)
    check(call["remote_ident"] == "" and call["tiff"] is None, "%r" % call)
    check(line.at("AT") == "OK", "modem usable after BUSY")


def test_no_answer(line):
    check(dial(line) == "NO ANSWER", "ATD with --no-answer: NO ANSWER")
    check(line.call_line()["result"] == "NO ANSWER", "call line NO ANSWER")


def test_no_carrier(line):
    check(dial(line) == "NO CARRIER", "ATD with --no-carrier: NO CARRIER")
    check(line.call_line()["result"] == "NO CARRIER", "NO CARRIER line")


def test_expect_number(line):
    check(dial(line, "5559999") == "NO ANSWER", "misdial: NO ANSWER")
    call = line.call_line()
    check(call["number"] == "5559999" and call["result"] == "NO ANSWER",
          "%r" % call)
    check(line.at("ATD5551234", timeout=20) == "CONNECT", "right number")
    check(line.frame()[2] == FCF_CSI, "CSI on the right number")
    check(line.at("ATH") == "OK", "ATH")
    call = line.call_line()
    check(call["call"] == 2 and call["number"] == "5551234", "%r" % call)


def test_flow_control(line):
    """+FTM page data faster than the line takes it: the modem answers
    XOFF, then XON when it has room, and nothing else until the end."""
    check(dial(line) == "CONNECT", "CONNECT")
    line.frame()
    check(line.at("AT+FTM=96") == "CONNECT", "AT+FTM=96: CONNECT")
    os.set_blocking(line.fd, False)
    data = bytes(64 * 1024)
    sent, held, got = 0, False, b""
    deadline = time.time() + 60
    while sent < len(data):
        check(time.time() < deadline, "page data not taken in 60 s")
        r, w, _ = select.select([line.fd], [] if held else [line.fd], [],
                                0.5)
        if r:
            chunk = os.read(line.fd, 256)
            got += chunk
            for c in chunk:
                check(c in (XON, XOFF), "unexpected byte %#x in +FTM" % c)
                held = c == XOFF
        if w and not held:
            try:
                sent += os.write(line.fd, data[sent:sent + 512])
            except BlockingIOError:
                pass
    os.set_blocking(line.fd, True)
    check(got.count(bytes([XOFF])) >= 1, "no XOFF for 64 KiB")
    check(got.count(bytes([XON])) >= 1, "no XON after XOFF")
    os.write(line.fd, bytes([DLE, ETX]))
    tail = line.expect(b"OK\r\n", timeout=60)
    check(set(tail) <= {XON, XOFF, 0x0D, 0x0A}, "after data: %r" % tail)
    check(line.at("ATH") == "OK", "ATH")
    check(line.call_line()["result"] == "HANGUP", "HANGUP")


def test_sigterm(line):
    check(dial(line) == "CONNECT", "CONNECT")
    line.frame()
    check(line.stop() == 0, "exit 0 on SIGTERM")
    rest = line.proc.stdout.read() or b""
    call = json.loads((line.out + rest).split(b"\n")[0])
    check(call["result"] == "HANGUP", "call in progress ends: %r" % call)
    check(not os.path.lexists(line.link), "link removed")


def run_cli():
    out = subprocess.run([FAXLINE, "--help"], capture_output=True)
    check(out.returncode == 0 and b"--link" in out.stdout, "--help")
    for bad in ([], ["--link"], ["--link", "x", "--drop-after-pages", "0"],
                ["--link", "x", "--csi", "X" * 21], ["--link", "x", "y"]):
        out = subprocess.run([FAXLINE] + bad, capture_output=True)
        check(out.returncode == 2, "%r: exit 2, got %d" % (bad,
                                                         out.returncode))


def main():
    if not os.access(FAXLINE, os.X_OK):
        print("skip: %s not built" % FAXLINE)
        sys.exit(77)
    tests = [
        (test_at_commands, []),
        (test_garbage_from_host, []),
        (test_call_csi_dis_hangup, []),
        (test_busy, ["--busy"]),
        (test_no_answer, ["--no-answer"]),
        (test_no_carrier, ["--no-carrier"]),
        (test_expect_number, ["--expect-number", "5551234"]),
        (test_flow_control, []),
        (test_sigterm, []),
    ]
    failed = 0
    try:
        run_cli()
        print("ok   cli")
    except Exception as e:
        failed += 1
        print("FAIL cli: %s: %s" % (type(e).__name__, e))
    for t, args in tests:
        line = None
        try:
            line = Line(*args)
            t(line)
            rc = line.stop()
            check(rc == 0, "faxline exited %d on SIGTERM" % rc)
            check(not os.path.lexists(line.link), "link left behind")
            print("ok   %s" % t.__name__)
        except Exception as e:
            failed += 1
            print("FAIL %s: %s: %s" % (t.__name__, type(e).__name__, e))
            if line is not None:
                print("---- faxline stderr ----\n%s" % line.log()[-4000:])
        finally:
            if line is not None:
                line.cleanup()
    print("%d passed, %d failed" % (len(tests) + 1 - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
