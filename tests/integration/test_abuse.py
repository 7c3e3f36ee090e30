#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_abuse.py -- resource limits under abuse: the daemon stays within its
# bounds and keeps serving. Thousands of clients and more than the
# descriptor limit, idle and trickling peers, frames announcing gigabytes,
# peers that never read, login floods, a full store, and the same limits
# on the provider (TLS), LMTP and control listeners; the memory of 10,000
# idle connections. (test_frames.py has the basic framing cases.)
#
# TWINROUTE_ABUSE_SCALE=N (default 1) multiplies the counts: clients and
# refusals, idle connections, the unread replies; tools/check runs 1, the
# long form in README a larger N.
import os
import resource
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (ERR, SAMPLE_CATALOG, SOURCE, Raw, Reply,  # noqa: E402
                    SkipTest, check, field_bytes, field_varint, frame, main,
                    req_get_service, req_hello, req_search)
from test_orders import (add_member, login, order_of, req_get,  # noqa: E402
                         req_place, vault_daemon)

GEN_CERTS = os.path.join(SOURCE, "tools", "gen-certs")
HUGE = 0xFFFFFFF0           # a length prefix announcing 4 GiB
DOMAIN = "broker.example"
TOKEN = "a" * 26            # a well-formed confirmation token nobody has
WRAPPED = bool(os.environ.get("TWINROUTE_DAEMON_WRAPPER", "").strip())
SCALE = max(1, int(os.environ.get("TWINROUTE_ABUSE_SCALE", "1") or "1"))
CLIENTS = 1000 * SCALE       # max_connections of test_thousands_of_clients


# ---- helpers ---------------------------------------------------------------

def status_kb(pid, key):
    """A /proc/PID/status figure in kB (VmRSS, VmPeak, ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def sanitized(pid):
    """The daemon runs under AddressSanitizer: its allocator keeps freed
    memory in quarantine, so RSS figures mean less."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def raise_nofile(need):
    """Soft RLIMIT_NOFILE to the hard limit (the daemon inherits it); skip
    when the hard limit is below need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:  # root may raise the hard limit (up to fs.nr_open)
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            soft, hard = need, need
        except (ValueError, OSError):
            pass
    if hard != resource.RLIM_INFINITY and hard < need:
        raise SkipTest("RLIMIT_NOFILE hard limit %d is below the %d "
                       "descriptors this test needs" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def open_clients(d, n, threads=4):
    """n client connections, each with a Hello answered."""
    out, errors = [], []
    lock = threading.Lock()

    def work(count):
        mine = []
        try:
            for _ in range(count):
                c = d.raw()
                r = c.call(req_hello(1))
                if r is None or r.error_code is not None:
                    raise RuntimeError("hello: %r" % r)
                mine.append(c)
        except Exception as e:  # reported below
            errors.append(e)
        with lock:
            out.extend(mine)

    per = [n // threads + (1 if i < n % threads else 0)
           for i in range(threads)]
    ts = [threading.Thread(target=work, args=(k,)) for k in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "opening %d connections: %r" % (n, errors[:3]))
    return out


def served(d, rid=1):
    """A fresh client gets a service: retried while slots free up."""
    deadline = time.time() + 15
    while True:
        try:
            c = d.raw()
            r = c.call(req_get_service(rid, "clean-std"))
            c.close()
            if r is not None and r.error_code is None:
                return
        except OSError as e:
            r = e
        check(time.time() < deadline, "a fresh client is not served: %r" % r)
        time.sleep(0.1)


def peer(c):
    """A client connection's address as the daemon logs it."""
    return "%s:%d" % c.sock.getsockname()[:2]


def wait_log(d, text, timeout=20):
    deadline = time.time() + timeout
    while text not in d.log():
        if time.time() >= deadline:
            return False
        time.sleep(0.1)
    return True


def trickle(sock, data, pace, limit=60):
    """Send data one byte every pace seconds until the peer closes. Returns
    (bytes sent, the peer closed, bytes received meanwhile)."""
    got = b""
    sock.settimeout(pace)
    end = time.time() + limit
    for i, b in enumerate(data):
        try:
            sock.send(bytes([b]))
        except OSError:
            return i, True, got
        try:
            chunk = sock.recv(65536)
            if not chunk:
                return i + 1, True, got
            got += chunk
        except (socket.timeout, ssl.SSLWantReadError):
            pass
        except OSError:
            return i + 1, True, got
        if time.time() > end:
            break
    return len(data), False, got


def reply_frames(data):
    """The client Responses in a byte string of frames."""
    out = []
    while len(data) >= 4:
        n = struct.unpack(">I", data[:4])[0]
        if len(data) < 4 + n:
            break
        out.append(Reply(data[4:4 + n]))
        data = data[4 + n:]
    return out


class UnixRaw(Raw):
    """Frames over a Unix socket (the control socket)."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""


class TlsRaw(Raw):
    """Frames over TLS (the provider listener); the server's heartbeats
    (ProviderResponse field 17) are skipped."""

    def __init__(self, addr, timeout=10):
        host, port = addr.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((host, int(port)), timeout)
        self.sock = ctx.wrap_socket(raw)
        self.buf = b""

    def recv(self):
        while True:
            r = super().recv()
            if r is None or 17 not in r.fields:
                return r

    def is_closed(self, timeout=10):
        try:
            return super().is_closed(timeout)
        except ssl.SSLError:
            return True


def p_hello(rid):
    return field_varint(1, rid) + field_bytes(
        10, field_varint(1, 1) + field_bytes(2, "trtest-abuse"))


def req_login(rid, member, password):
    return field_varint(1, rid) + field_bytes(
        15, field_bytes(1, member) + field_bytes(2, password))


def req_list_orders(rid):
    return field_varint(1, rid) + field_bytes(18, b"")


class Lmtp:
    """An LMTP connection to the daemon's Unix socket."""

    def __init__(self, d, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(os.path.join(d.state, "lmtp.sock"))
        self.f = self.sock.makefile("rb")

    def line(self):
        return self.f.readline(70000).decode(errors="replace")

    def reply(self):
        """The last line of the next reply ("" at EOF)."""
        while True:
            ln = self.line()
            if not ln or ln[3:4] != "-":
                return ln

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.f.close()
        self.sock.close()


def lmtp_ready(d):
    m = Lmtp(d)
    check(m.reply().startswith("220 "), "greeting")
    check(m.cmd("LHLO mta.example").startswith("250 "), "LHLO")
    return m


# ---- 1. thousands of clients -----------------------------------------------

def test_thousands_of_clients(make):
    raise_nofile(CLIENTS + 400 * SCALE + 200)
    d = make("max_connections = %d\nidle_timeout = 5m\n" % CLIENTS).start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    conns = open_clients(d, CLIENTS)
    # The next ones: refused at once, clearly, and closed.
    extra = []
    for i in range(200 * SCALE):
        c = d.raw()
        r = c.recv()
        check(r is not None and r.error_code == ERR["TOO_MANY_CONNECTIONS"],
              "connection %d over the limit: %r" % (CLIENTS + 1 + i, r))
        check("too many connections" in r.error_message, "says why")
        check(c.is_closed(), "closed after the refusal")
        extra.append(c)
    for c in extra:
        c.close()
    # Those already in are still served.
    for c in conns[:5] + conns[-5:]:
        r = c.call(req_get_service(2, "trv-fuji"))
        check(r is not None and r.error_code is None, "held client: %r" % r)
    # Hundreds of refusals are not hundreds of log lines.
    lines = [ln for ln in d.log().splitlines()
             if "refused" in ln and "connections already" in ln]
    check(1 <= len(lines) <= 10, "refusals logged, not flooded: %d lines"
          % len(lines))
    for c in conns[:10]:
        c.close()
    served(d)
    for c in conns[10:]:
        c.close()


def test_out_of_descriptors(make):
    # RLIMIT_NOFILE below max_connections: accept() fails with EMFILE. The
    # listener must not spin on it (nor log a line per try): each waiting
    # peer is refused with a clear error, and served again once
    # descriptors free up.
    if WRAPPED:
        raise SkipTest("the daemon runs under a wrapper, whose descriptors "
                       "are its own")
    d = make("max_connections = 1000\n").start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    pid = d.proc.pid
    # The control connection of the import may not be closed yet on the
    # daemon's side: count once the count holds still.
    counts = []
    while len(counts) < 3 or len(set(counts[-3:])) > 1:
        counts.append(len(os.listdir("/proc/%d/fd" % pid)))
        time.sleep(0.1)
    nfd = counts[-1]
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    # The soft limit only: raising a hard one back needs CAP_SYS_RESOURCE.
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (nfd + 4, old[1]))
    try:
        held, refused = [], 0
        for i in range(30):
            c = d.raw()
            try:
                r = c.call(req_hello(1))
            except socket.timeout:
                raise AssertionError("connection %d hangs unanswered" % i)
            check(r is not None, "connection %d: closed without a word" % i)
            if r.error_code is None:
                held.append(c)
            else:
                check(r.error_code == ERR["TOO_MANY_CONNECTIONS"],
                      "connection %d: %r" % (i, r))
                check(c.is_closed(), "refused and closed")
                refused += 1
                c.close()
        check(1 <= len(held) <= 4 and refused >= 26,
              "held %d, refused %d" % (len(held), refused))
        # The MTA is refused the same way, in its own protocol.
        m = Lmtp(d)
        check(m.reply().startswith("421 4.3.2"), "LMTP refused")
        m.close()
        log = d.log()
        check("out of file descriptors" in log, "the cause is logged")
        lines = [ln for ln in log.splitlines()
                 if "accept:" in ln or "out of file descriptors" in ln]
        check(len(lines) <= 10, "no log flood: %d lines" % len(lines))
        for c in held:
            c.close()
        served(d)
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, old)


# ---- 2. idle and trickling peers -------------------------------------------

def test_idle_and_slowloris(make):
    d = make("idle_timeout = 2s\n").start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    idle = d.raw()
    check(idle.call(req_hello(1)).error_code is None, "hello")
    check(idle.is_closed(timeout=15), "an idle connection is closed")
    check("idle timeout (no request)" in d.log(), "and logged")

    # A frame a byte every 0.4 s never completes within the idle timeout:
    # bytes alone do not keep a connection; meanwhile others are served.
    slow = d.raw()
    data = frame(req_search(7, "onsen cleaning travel letter"))
    result = {}

    def loris():
        result["r"] = trickle(slow.sock, data, 0.4)

    t = threading.Thread(target=loris)
    t.start()
    for i in range(4):
        c = d.raw()
        r = c.call(req_get_service(10 + i, "clean-std"))
        check(r is not None and r.error_code is None,
              "served during the trickle: %r" % r)
        c.close()
        time.sleep(0.5)
    t.join()
    sent, closed, got = result["r"]
    check(closed and sent < len(data),
          "the trickling peer is closed mid-frame (%d of %d bytes sent)"
          % (sent, len(data)))
    check(not any(r.id == 7 for r in reply_frames(got)), "never answered")
    check("idle timeout (request incomplete)" in d.log(), "logged")


# ---- 3. a frame announcing gigabytes ---------------------------------------

def test_huge_frame_header(make):
    d = make().start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    pid = d.proc.pid
    rss0, peak0 = status_kb(pid, "VmRSS"), status_kb(pid, "VmPeak")
    for _ in range(10):
        c = d.raw()
        c.send(struct.pack(">I", HUGE) + b"\x08\x01")
        r = c.recv()
        check(r is not None and r.error_code == ERR["FRAME_TOO_LARGE"],
              "4 GiB header: %r" % r)
        check(str(HUGE) in r.error_message and "65536" in r.error_message,
              "names the size and the limit: %r" % r.error_message)
        check(c.is_closed(), "closed")
    # Refused from the header alone: nothing that size was ever mapped.
    rss1, peak1 = status_kb(pid, "VmRSS"), status_kb(pid, "VmPeak")
    print("huge frame: VmRSS %d -> %d kB, VmPeak %d -> %d kB"
          % (rss0, rss1, peak0, peak1))
    check(peak1 - peak0 < 512 * 1024, "VmPeak grew by %d kB" % (peak1 - peak0))
    check(rss1 - rss0 < 16 * 1024, "VmRSS grew by %d kB" % (rss1 - rss0))
    # The control socket (16 MiB frames) too.
    u = UnixRaw(d.control)
    u.send(struct.pack(">I", HUGE))
    r = u.recv()
    check(r is not None and r.error_code == ERR["FRAME_TOO_LARGE"],
          "control: %r" % r)
    check(u.is_closed(), "control closed")
    check(status_kb(pid, "VmPeak") - peak0 < 512 * 1024, "control: VmPeak")
    served(d)


# ---- 4. a client that never reads ------------------------------------------

def test_never_reads(make):
    d = make("idle_timeout = 2s\noutput_limit = 128K\n").start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    pid = d.proc.pid
    rss0 = status_kb(pid, "VmRSS")
    slow = d.raw()
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # ListServices{page_size 100}: ~1.5 KB of reply per 10 bytes asked;
    # 20,000 of them ask for 30 MB of replies.
    ask = b"".join(frame(field_varint(1, i) + field_bytes(12, field_varint(
        2, 100))) for i in range(20000 * SCALE))
    done = threading.Event()

    def flood():
        slow.sock.settimeout(60)
        try:
            slow.sock.sendall(ask)
        except OSError:
            pass
        done.set()

    t = threading.Thread(target=flood)
    t.start()
    peak = rss0
    deadline = time.time() + 40
    while not wait_log(d, "peer not reading", timeout=0.2):
        peak = max(peak, status_kb(pid, "VmRSS"))
        check(time.time() < deadline, "the non-reader was never dropped")
        # Others are served while it holds its replies.
        c = d.raw()
        r = c.call(req_get_service(1, "clean-std"))
        check(r is not None and r.error_code is None, "others: %r" % r)
        c.close()
    peak = max(peak, status_kb(pid, "VmRSS"))
    grew = peak - rss0
    print("never-reading client: VmRSS %d kB before, peak %d kB (+%d kB)"
          % (rss0, peak, grew))
    limit = 256 if sanitized(pid) else 32
    check(grew < limit * 1024, "replies buffered without bound: +%d kB" % grew)
    check(wait_log(d, "connection closed peer=%s\n" % peer(slow)),
          "the non-reader is closed")
    t.join(30)
    check(done.is_set(), "its sends end")
    served(d)


def test_watcher_never_reads(make):
    # Order events are pushed to watchers whatever they read: a watcher
    # that never reads is dropped once twice the output limit is queued,
    # long before its idle timeout.
    if WRAPPED:
        raise SkipTest("thousands of orders: too slow under a wrapper")
    d = vault_daemon(make, "order_limit = 4294967295\n"
                     "daily_limit = 4294967295\n[client]\n"
                     "max_frame = 32K\noutput_limit = 64K\nidle_timeout = 5m\n")
    add_member(d, "100001")
    pid = d.proc.pid
    w = login(d, "100001")
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    r = w.call(field_varint(1, 3) + field_bytes(20, b""))
    check(r is not None and r.error_code is None, "watch: %r" % r)
    rss0 = status_kb(pid, "VmRSS")
    c = login(d, "100001")
    note = "w" * 500
    placed, peak = 0, rss0
    while not wait_log(d, "output limit exceeded", timeout=0):
        check(placed < 20000, "the watcher was never dropped")
        burst = b"".join(frame(req_place(10 + placed + i, "clean-aircon", 1,
                                         "w-%06d" % (placed + i), note))
                         for i in range(200))
        c.send(burst)
        for _ in range(200):
            r = c.recv()
            check(r is not None and r.error_code is None, "order: %r" % r)
        placed += 200
        peak = max(peak, status_kb(pid, "VmRSS"))
    grew = peak - rss0
    print("never-reading watcher: dropped after %d orders; VmRSS +%d kB"
          % (placed, grew))
    # (Its socket is gone from the daemon; reading what the kernel still
    # holds for it can take long after so long a zero window.)
    check(wait_log(d, "connection closed peer=%s\n" % peer(w)),
          "the watcher is closed")
    check(grew < (256 if sanitized(pid) else 32) * 1024,
          "events buffered without bound: +%d kB" % grew)
    r = c.call(req_get_service(1, "clean-std"))
    check(r is not None and r.error_code is None, "the member is served")


# ---- 5. login floods -------------------------------------------------------

def test_login_flood_many_connections(make):
    # test_login.py checks one attempt after another; here sixty
    # connections each try once, all at the same time: exactly the
    # allowed number get to the password check (counted when asked, not
    # when the hash is done), and the catalog is served throughout.
    d = make("[login]\naddress_attempts = 10\naddress_window = 10m\n"
             "max_failures = 10\n").start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    add_member(d, "100001", card=False)
    conns = [d.raw() for _ in range(60)]
    for i, c in enumerate(conns):
        c.send_frame(req_login(i + 1, "9%05d" % i, "wrong-%d" % i))
    r = d.raw().call(req_search(99, "onsen"))
    check(r is not None and r.error_code is None, "served during the flood")
    codes = []
    for c in conns:
        c.sock.settimeout(60)
        r = c.recv()
        check(r is not None, "every login is answered")
        codes.append(r.error_code)
        c.close()
    auth = codes.count(ERR["AUTH"])
    limited = codes.count(ERR["RATE_LIMITED"])
    check(auth == 10 and limited == 50,
          "10 checked, 50 rate limited: %d, %d (%r)" % (auth, limited,
                                                       set(codes)))
    # The limit is the address's: the right password of a real member too.
    c = d.raw()
    r = c.call(req_login(1, "100001", "order test password"))
    check(r.error_code == ERR["RATE_LIMITED"], "real member: %r" % r)


# ---- 6. a full store -------------------------------------------------------

def test_orders_fill_the_store(make):
    d = vault_daemon(make, "order_limit = 4294967295\n"
                     "daily_limit = 4294967295\n[store]\nmap_size = 1M\n")
    add_member(d, "100001")
    c = login(d, "100001")
    note = "n" * 200
    ids, errors, attempts = [], [], 0
    while len(errors) < 20:
        attempts += 1
        check(attempts < 20000, "the 1 MiB map never filled")
        r = c.call(req_place(100 + attempts, "clean-aircon", 1,
                             "fill-%06d" % attempts, note))
        check(r is not None, "connection lost at order %d" % attempts)
        if r.error_code is None:
            ids.append(order_of(r)["id"])
        else:
            errors.append(r)
            # Reads go on while writes fail: the first order, the list,
            # the catalog.
            g = c.call(req_get(1, ids[0]))
            check(g.error_code is None and order_of(g)["id"] == ids[0],
                  "GetOrder with the store full: %r" % g)
    check(all(e.error_code == ERR["STORE_FULL"] for e in errors),
          "a full store is STORE_FULL, every time: %r"
          % [(e.error_code, e.error_message) for e in errors
             if e.error_code != ERR["STORE_FULL"]][:3])
    print("store full after %d orders; %d attempts refused" % (
        len(ids), len(errors)))
    r = c.call(req_list_orders(2))
    check(r.error_code is None, "ListOrders: %r" % r)
    r = c.call(req_get_service(3, "trv-fuji"))
    check(r.error_code is None, "GetService: %r" % r)
    st = d.ctl("status")
    check(st["store_used_bytes"] <= st["store_map_bytes"], "status")
    shown = d.ctl("order", "show", str(ids[-1]))
    check(shown["state"] in ("AUTHORIZED", "AWAITING_CONFIRMATION"),
          "the last order placed is whole: %r" % shown["state"])


# ---- 7. the provider, LMTP and control listeners ---------------------------

def provider_daemon(make):
    d = make(name="trabuse")
    pki = os.path.join(d.dir, "pki")
    subprocess.run([GEN_CERTS, pki, "fuji-travel"], capture_output=True,
                   check=True)
    d.write_conf("[provider]\nlisten = 127.0.0.1:0\n"
                 "tls_cert = %s/server.pem\ntls_key = %s/server.key\n"
                 "heartbeat = 1s\nmax_connections = 3\nmax_frame = 4K\n"
                 % (pki, pki))
    d.start()
    with open(os.path.join(d.state, "provider.addr")) as f:
        d.paddr = f.read().strip()
    return d


def test_provider_listener(make):
    d = provider_daemon(make)
    host, port = d.paddr.rsplit(":", 1)
    # max_connections: the fourth is told so once its handshake is done.
    held = [TlsRaw(d.paddr) for _ in range(3)]
    for p in held:
        r = p.call(p_hello(1))
        check(r is not None and r.error_code is None, "hello: %r" % r)
    extra = TlsRaw(d.paddr)
    r = extra.recv()
    check(r is not None and r.error_code == ERR["TOO_MANY_CONNECTIONS"],
          "fourth provider connection: %r" % r)
    check(extra.is_closed(), "and closed")
    for p in held:
        p.close()

    # A peer that connects and never starts TLS: closed after the idle
    # timeout (three heartbeats).
    silent = Raw(d.paddr)
    check(silent.is_closed(timeout=15), "never handshakes: closed")

    # A ClientHello a byte every 0.3 s: the handshake cannot be stretched.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        ctx.wrap_bio(inb, outb).do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outb.read()
    s = socket.create_connection((host, int(port)), 10)
    sent, closed, _ = trickle(s, hello, 0.3)
    check(closed and sent < len(hello),
          "trickled ClientHello closed (%d of %d bytes)" % (sent, len(hello)))
    s.close()

    # After the handshake, a frame a byte every 0.4 s.
    t = TlsRaw(d.paddr)
    data = frame(p_hello(5)) * 3
    sent, closed, _ = trickle(t.sock, data, 0.4)
    check(closed and sent < len(data), "trickled frame over TLS closed "
          "(%d of %d bytes)" % (sent, len(data)))
    check(wait_log(d, "idle timeout (request incomplete)"), "logged")

    # A frame announcing 4 GiB.
    rss0, peak0 = status_kb(d.proc.pid, "VmRSS"), status_kb(d.proc.pid,
                                                          "VmPeak")
    t = TlsRaw(d.paddr)
    t.send(struct.pack(">I", HUGE))
    r = t.recv()
    check(r is not None and r.error_code == ERR["FRAME_TOO_LARGE"],
          "provider oversize: %r" % r)
    check("4096" in r.error_message, "names the limit: %r" % r.error_message)
    check(t.is_closed(), "closed")
    check(status_kb(d.proc.pid, "VmPeak") - peak0 < 512 * 1024, "VmPeak")
    check(status_kb(d.proc.pid, "VmRSS") - rss0 < 16 * 1024, "VmRSS")

    # Still serving.
    p = TlsRaw(d.paddr)
    r = p.call(p_hello(9))
    check(r is not None and r.error_code is None and r.id == 9,
          "a provider is served: %r" % r)


def test_lmtp_listener(make):
    d = make("[lmtp]\nmax_line = 1000\nmax_message = 64K\n"
             "max_recipients = 2\nmax_connections = 3\nidle_timeout = 2s\n"
             "[mail]\nrelay = 127.0.0.1:9\ndomain = %s\n" % DOMAIN).start()
    m = lmtp_ready(d)
    r = m.cmd("NOOP " + "x" * 5000)
    check(r.startswith("500 5.5.2"), "long command line: %r" % r)
    check(m.cmd("NOOP").startswith("250"), "the session goes on")

    check(m.cmd("MAIL FROM:<m100001@example.org>").startswith("250"), "MAIL")
    for i in range(2):
        r = m.cmd("RCPT TO:<confirm+%s@%s>" % (TOKEN, DOMAIN))
        check(r.startswith("250"), "recipient %d: %r" % (i, r))
    r = m.cmd("RCPT TO:<cancel+%s@%s>" % (TOKEN, DOMAIN))
    check(r.startswith("452 4.5.3"), "a third recipient: %r" % r)
    check(m.cmd("DATA").startswith("354"), "DATA")
    body = ("Subject: yes\r\n\r\n" + ("y" * 70 + "\r\n") * 1200 + ".\r\n")
    m.sock.sendall(body.encode())
    for i in range(2):
        r = m.reply()
        check(r.startswith("552 5.3.4"), "message over max_message, "
              "recipient %d: %r" % (i, r))
    check(m.cmd("MAIL FROM:<m100001@example.org>").startswith("250"), "MAIL")
    check(m.cmd("RCPT TO:<confirm+%s@%s>" % (TOKEN, DOMAIN)).startswith("250"),
          "RCPT")
    check(m.cmd("DATA").startswith("354"), "DATA")
    m.sock.sendall(b"Subject: yes\r\n\r\n" + b"z" * 3000 + b"\r\n.\r\n")
    r = m.reply()
    check(r.startswith("552 5.3.4"), "a line over max_line: %r" % r)

    # max_connections (this one is the first).
    more = [lmtp_ready(d) for _ in range(2)]
    over = Lmtp(d)
    r = over.reply()
    check(r.startswith("421 4.3.2"), "fourth LMTP connection: %r" % r)
    check(over.line() == "", "then closed")
    for x in more + [m, over]:
        x.close()
    time.sleep(0.2)

    # A command line a byte every 0.3 s: 421, closed; others served.
    slow = Lmtp(d)
    check(slow.reply().startswith("220"), "greeting")
    result = {}

    def loris():
        result["r"] = trickle(slow.sock, b"NOOP " + b"x" * 200 + b"\r\n", 0.3)

    t = threading.Thread(target=loris)
    t.start()
    for _ in range(3):
        o = lmtp_ready(d)
        check(o.cmd("NOOP").startswith("250"), "served meanwhile")
        o.close()
        time.sleep(0.5)
    t.join()
    sent, closed, got = result["r"]
    check(closed and sent < 207, "the trickling MTA is closed (%d bytes)"
          % sent)
    check(b"421 4.4.2" in got, "told why: %r" % got)

    # An MTA that pipelines commands and never reads the replies: the
    # replies do not pile up in the daemon; it is dropped.
    pid = d.proc.pid
    rss0 = status_kb(pid, "VmRSS")
    nr = Lmtp(d, timeout=30)
    nr.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    dropped = False
    try:
        for _ in range(100):
            nr.sock.sendall(b"NOOP\r\n" * 50000)
    except OSError:
        dropped = True
    grew = status_kb(pid, "VmRSS") - rss0
    print("never-reading MTA: VmRSS +%d kB" % grew)
    check(dropped, "the never-reading MTA is dropped")
    check(grew < (256 if sanitized(pid) else 32) * 1024,
          "LMTP replies buffered without bound: +%d kB" % grew)
    nr.close()
    o = lmtp_ready(d)
    check(o.cmd("NOOP").startswith("250"), "still serving")
    check(o.cmd("QUIT").startswith("221"), "QUIT")
    o.close()


def test_control_listener(make):
    d = make("[control]\nmax_connections = 2\nidle_timeout = 3s\n").start()
    held = [UnixRaw(d.control) for _ in range(2)]
    r = d.ctl("status", json_out=False, check=False)
    check(r.returncode != 0 and "too many connections" in r.stderr,
          "a third control connection is refused clearly: %d %r"
          % (r.returncode, r.stderr))
    # The idle ones go after the idle timeout; then the CLI gets in.
    for h in held:
        check(h.is_closed(timeout=15), "idle control connection closed")
    check(d.ctl("status")["pid"] == d.proc.pid, "status after")
    held = [UnixRaw(d.control) for _ in range(2)]
    held[0].close()
    deadline = time.time() + 10
    while True:
        r = d.ctl("status", json_out=False, check=False)
        if r.returncode == 0:
            break
        check(time.time() < deadline, "slot never freed: %r" % r.stderr)
        time.sleep(0.1)
    held[1].close()


# ---- 8. the memory of 10,000 idle connections ------------------------------

IDLE_CONNS = 10000


def idle_conns():
    """10,000; the long form as many more as the descriptor limit allows
    (this process holds one end of each, the daemon the other)."""
    if SCALE == 1:
        return IDLE_CONNS
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = IDLE_CONNS * SCALE
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want + 100, want + 100))
        return want
    except (ValueError, OSError):
        if hard == resource.RLIM_INFINITY:
            return want
        return max(IDLE_CONNS, min(want, hard - 200))


def test_rss_of_idle_connections(make):
    if WRAPPED:
        raise SkipTest("the daemon runs under a wrapper")
    n = idle_conns()
    raise_nofile(n + 100)
    d = make("max_connections = %d\nidle_timeout = 10m\n"
             % (n + 1000)).start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    pid = d.proc.pid
    if sanitized(pid):
        raise SkipTest("under AddressSanitizer the RSS is mostly its own "
                       "(test_thousands_of_clients covers many connections)")
    served(d)
    rss0 = status_kb(pid, "VmRSS")
    conns = open_clients(d, n, threads=4)
    time.sleep(0.5)
    rss = status_kb(pid, "VmRSS")
    per = (rss - rss0) * 1024 / n
    print("%d idle connections: daemon VmRSS %.1f MiB (%.1f MiB before; "
          "%.0f bytes each)" % (n, rss / 1024, rss0 / 1024, per))
    check(rss < 256 * 1024 * SCALE, "VmRSS %d kB with %d idle connections"
          % (rss, n))
    served(d)
    r = conns[1234].call(req_get_service(5, "trv-fuji"))
    check(r is not None and r.error_code is None, "an idle one still works")
    for c in conns:
        c.close()


if __name__ == "__main__":
    main([
        test_thousands_of_clients,
        test_out_of_descriptors,
        test_idle_and_slowloris,
        test_huge_frame_header,
        test_never_reads,
        test_watcher_never_reads,
        test_login_flood_many_connections,
        test_orders_fill_the_store,
        test_provider_listener,
        test_lmtp_listener,
        test_control_listener,
        test_rss_of_idle_connections,
    ])
