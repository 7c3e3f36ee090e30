#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_backup.py -- twinroutectl backup copies both stores while clients
# order; a new daemon started on the copy has every order acknowledged
# before the backup began, and its vault unseals with the original key
# file. Refusals (non-empty folder, a second backup at once), relative
# paths, and a store or vault of a newer schema refused at start.
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (CTL, DAEMON, ERR, SOURCE, check, decode,  # noqa: E402
                    field_bytes, field_varint, frame, main)
from test_orders import (add_member, login, order_of,  # noqa: E402
                         req_place, vault_daemon)


def ctl_index(name):
    """The wire number of a control command: its place in enum ctl_cmd."""
    with open(os.path.join(SOURCE, "src", "ctl", "ctl.h")) as f:
        body = f.read().split("enum ctl_cmd {", 1)[1].split("};", 1)[0]
    names = re.findall(r"^\s*(CTL_\w+)", body, re.M)
    return names.index(name)


class Orderer(threading.Thread):
    """Orders in a loop over one connection; remembers what was
    acknowledged (key -> (id, state))."""

    def __init__(self, d, member, stop):
        super().__init__(daemon=True)
        self.d, self.member, self.stop_ev = d, member, stop
        self.lock = threading.Lock()
        self.acked = {}
        self.errors = []

    def snapshot(self):
        with self.lock:
            return dict(self.acked)

    def run(self):
        try:
            c = login(self.d, self.member)
            n = 0
            while not self.stop_ev.is_set():
                n += 1
                key = "%s-%d" % (self.member, n)
                r = c.call(req_place(3, "trv-rail", 1, key))
                o = order_of(r) if r is not None else None
                if o is None:
                    self.errors.append("%s: %r" % (key, r))
                    return
                with self.lock:
                    self.acked[key] = (o["id"], o["state"])
        except Exception as e:  # reported by the test
            self.errors.append("%s: %s" % (type(e).__name__, e))


def restore(make, backup_dir, key_file):
    """A new daemon whose store and vault are the backup's copies, with
    the original key file beside them."""
    d = make(name="restored")
    os.makedirs(d.state, mode=0o700)
    shutil.copytree(os.path.join(backup_dir, "broker"),
                    os.path.join(d.state, "broker"))
    shutil.copytree(os.path.join(backup_dir, "vault"),
                    os.path.join(d.state, "vault"))
    kek = os.path.join(d.dir, "kek")
    shutil.copyfile(key_file, kek)
    os.chmod(kek, 0o600)
    d.write_conf("[vault]\nkey_file = %s\n" % kek)
    return d


def test_backup_while_ordering(make):
    d = vault_daemon(make)
    members = ["4000%02d" % i for i in range(4)]
    for m in members:
        add_member(d, m)
    add_member(d, "409999")  # orders only after the restore
    stop = threading.Event()
    clients = [Orderer(d, m, stop) for m in members]
    for t in clients:
        t.start()
    try:
        # Let orders flow, then take what was acknowledged so far.
        deadline = time.time() + 60
        while min(len(t.snapshot()) for t in clients) < 10:
            check(time.time() < deadline, "orders do not flow: %r" %
                  [t.errors for t in clients])
            check(all(t.is_alive() for t in clients),
                  "a client stopped: %r" % [t.errors for t in clients])
            time.sleep(0.05)
        before = {t.member: t.snapshot() for t in clients}
        counts_before = {m: len(v) for m, v in before.items()}
        backup_dir = os.path.join(d.dir, "backup-1")
        res = d.ctl("backup", backup_dir)
        after = {t.member: len(t.snapshot()) for t in clients}
        # The clients go on after it: a few more orders each.
        while any(len(t.snapshot()) < after[t.member] + 5 for t in clients):
            check(time.time() < deadline, "orders stopped after the backup:"
                  " %r" % [t.errors for t in clients])
            check(all(t.is_alive() for t in clients),
                  "a client stopped: %r" % [t.errors for t in clients])
            time.sleep(0.05)
    finally:
        stop.set()
        for t in clients:
            t.join(30)
    for t in clients:
        check(not t.errors, "client %s: %r" % (t.member, t.errors[:3]))
        check(len(t.acked) > after[t.member] >= counts_before[t.member],
              "client %s ordered after the backup" % t.member)
    check(res["dir"] == backup_dir, "dir: %r" % res)
    check(res["broker_path"] == os.path.join(backup_dir, "broker") and
          res["vault_path"] == os.path.join(backup_dir, "vault"),
          "paths: %r" % res)
    for part in ("broker", "vault"):
        f = os.path.join(backup_dir, part, "data.mdb")
        check(os.path.getsize(f) == res[part + "_bytes"],
              "%s size as reported: %r" % (part, res))
        check(os.stat(os.path.join(backup_dir, part)).st_mode & 0o777 ==
              0o700, "%s folder is 0700" % part)
    check(os.stat(backup_dir).st_mode & 0o777 == 0o700, "DIR is 0700")
    check(res["broker_last_txn"] > 0, "last txn: %r" % res)
    check(res["key_included"] is False and "key file" in res["key_note"],
          "the reply says the key is not in it: %r" % res)
    check(not os.path.exists(os.path.join(backup_dir, "kek")),
          "no key file in the backup")
    final = {o["id"]: o["state"]
             for o in d.ctl("order", "list", "--limit", "100000")}
    check(d.stop() == 0, "clean stop")
    key_file = os.path.join(d.dir, "kek")

    r = restore(make, backup_dir, key_file)
    r.start()  # the copy opens as a store
    got = {}
    for o in r.ctl("order", "list", "--limit", "100000"):
        got[(o["member"], o["idempotency_key"])] = (o["id"], o["state"])
    n = 0
    for member, acked in before.items():
        for key, (oid, state) in acked.items():
            n += 1
            have = got.get((member, key))
            check(have is not None and have[0] == oid,
                  "order %d (%s %s), acknowledged before the backup, is "
                  "in the copy: %r" % (oid, member, key, have))
            check(have[1] in (state, final.get(oid)),
                  "order %d keeps its state: %r, was %s" % (oid, have, state))
    check(n >= 40, "orders checked: %d" % n)
    # Nothing in the copy that the original never had.
    check(set(v[0] for v in got.values()) <= set(final),
          "the copy holds only orders of the original")
    vs = r.ctl("vault", "status")
    check(vs["initialized"] and not vs["sealed"] and vs["key_file"],
          "restored vault unsealed by its key file: %r" % vs)
    c = login(r, "409999")
    o = order_of(c.call(req_place(1, "trv-fuji", 1, "after-restore")))
    check(o and o["state"] == "AUTHORIZED" and o["last4"] == "1111",
          "a card of the copy authenticates: %r" % o)


def test_backup_paths(make):
    d = vault_daemon(make)
    add_member(d, "500001")
    # Relative: made absolute from twinroutectl's working directory.
    r = subprocess.run([CTL, "-s", d.control, "--json", "backup", "rel-bk"],
                       capture_output=True, text=True, cwd=d.dir, timeout=60)
    check(r.returncode == 0, "relative path: %s" % r.stderr)
    res = json.loads(r.stdout)
    want = os.path.join(d.dir, "rel-bk")
    check(res["dir"] == want and os.path.isfile(
        os.path.join(want, "broker", "data.mdb")), "made absolute: %r" % res)
    # An empty folder that exists is taken as it is (a trailing slash
    # names the same folder).
    empty = os.path.join(d.dir, "empty")
    os.mkdir(empty, 0o750)
    res = d.ctl("backup", empty + "/")
    check(res["dir"] == empty, "trailing slash: %r" % res)
    check(sorted(os.listdir(empty)) == ["broker", "vault"], "empty folder used")
    # A folder with something in it: refused, and left as it was.
    full = os.path.join(d.dir, "full")
    os.mkdir(full)
    with open(os.path.join(full, "precious"), "w") as f:
        f.write("x")
    r = d.ctl("backup", full, json_out=False, check=False)
    check(r.returncode == 1 and "not empty" in r.stderr,
          "non-empty refused: %r %r" % (r.returncode, r.stderr))
    check(os.listdir(full) == ["precious"], "non-empty folder untouched")
    # The same backup folder twice: the second is refused.
    r = d.ctl("backup", want, json_out=False, check=False)
    check(r.returncode == 1 and "not empty" in r.stderr, "used twice: %r" %
          r.stderr)
    # No parent folder, a file: refused, nothing made.
    missing = os.path.join(d.dir, "no", "such")
    r = d.ctl("backup", missing, json_out=False, check=False)
    check(r.returncode == 1 and "parent" in r.stderr, "missing parent: %r"
          % r.stderr)
    check(not os.path.exists(os.path.join(d.dir, "no")), "nothing made")
    r = d.ctl("backup", d.conf_path, json_out=False, check=False)
    check(r.returncode == 1 and "not a folder" in r.stderr, "a file: %r" %
          r.stderr)
    # Raw requests: a relative path is refused by the daemon itself.
    reply = ctl_raw(d, [ctl_backup_req(1, "relative/dir")])[0]
    check(reply["code"] == ERR["BAD_REQUEST"] and "absolute" in
          reply["message"], "daemon refuses a relative path: %r" % reply)
    check(d.ctl("status"), "still serving")


# ---- one backup at a time: two requests in one write ------------------

def ctl_backup_req(rid, path):
    return (field_varint(1, rid) + field_varint(2, 1) +
            field_varint(3, ctl_index("CTL_BACKUP")) + field_bytes(20, path))


def ctl_raw(d, payloads):
    """Send every request in one write on one control connection; return
    each reply as {id, code, message, backup}."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(d.control)
    s.sendall(b"".join(frame(p) for p in payloads))
    buf = b""
    out = []
    while len(out) < len(payloads):
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(65536)
            check(chunk, "control connection closed early")
            buf += chunk
        n = struct.unpack(">I", buf[:4])[0]
        f = decode(buf[4:4 + n])
        buf = buf[4 + n:]
        e = decode(f[2][0]) if 2 in f else {}
        out.append({"id": f.get(1, [0])[0], "code": e.get(1, [0])[0],
                    "message": e.get(2, [b""])[0].decode(),
                    "backup": decode(f[27][0]) if 27 in f else None})
    s.close()
    return out


def test_one_backup_at_a_time(make):
    d = vault_daemon(make)
    a = os.path.join(d.dir, "first")
    b = os.path.join(d.dir, "second")
    # Both frames arrive in one read: the second is handled while the
    # first is still running, whatever the machine's speed.
    replies = sorted(ctl_raw(d, [ctl_backup_req(1, a), ctl_backup_req(2, b)]),
                     key=lambda x: x["id"])
    check(replies[0]["code"] == 0 and replies[0]["backup"] is not None,
          "first backup done: %r" % replies[0])
    check(replies[1]["code"] == ERR["EXISTS"] and
          "a backup is running" in replies[1]["message"],
          "second refused: %r" % replies[1])
    check(os.path.isfile(os.path.join(a, "vault", "data.mdb")), "first made")
    check(not os.path.exists(b), "second made nothing")
    # Once the first is done, the next one runs.
    d.ctl("backup", b)
    check(os.path.isfile(os.path.join(b, "broker", "data.mdb")), "next made")


# ---- schema versions ----------------------------------------------------

def encode(fields):
    """Fields from trtest.decode back to bytes (varints and bytes only)."""
    out = b""
    for num in sorted(fields):
        for v in fields[num]:
            out += field_varint(num, v) if isinstance(v, int) else \
                field_bytes(num, v)
    return out


def read_meta(env, key):
    """The dump's header and the decoded protobuf at `key` in env's "meta"
    database, read with LMDB's own tools (the daemon is stopped)."""
    r = subprocess.run(["mdb_dump", "-s", "meta", env], capture_output=True,
                       text=True)
    check(r.returncode == 0, "mdb_dump: %s" % r.stderr)
    head, rest = r.stdout.split("HEADER=END\n", 1)
    lines = [ln.strip() for ln in rest.split("DATA=END")[0].splitlines()
             if ln.strip()]
    pairs = dict(zip(lines[0::2], lines[1::2]))
    k = key.encode().hex()
    check(k in pairs, "%s has %s: %r" % (env, key, list(pairs)))
    return head, decode(bytes.fromhex(pairs[k]))


def set_meta(env, key, field, value):
    """Rewrite one varint field of the protobuf at `key` in env's "meta"
    database."""
    head, fields = read_meta(env, key)
    k = key.encode().hex()
    fields[field] = [value]
    dump = "%sHEADER=END\n %s\n %s\nDATA=END\n" % (head, k,
                                                   encode(fields).hex())
    r = subprocess.run(["mdb_load", "-s", "meta", env], input=dump,
                       capture_output=True, text=True)
    check(r.returncode == 0, "mdb_load: %s" % r.stderr)


def start_refused(d):
    r = subprocess.run([DAEMON, "-f", "-c", d.conf_path], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode != 0, "twinrouted refused to start, got %d" %
          r.returncode)
    return r.stderr


def test_newer_schema_refused(make):
    d = make()
    kek = os.path.join(d.dir, "kek")
    d.write_conf("[vault]\nkey_file = %s\n" % kek)
    d.start()
    d.ctl("vault", "init", "--key-file", kek, json_out=False)
    check(d.stop() == 0, "clean stop")
    broker = os.path.join(d.state, "broker")
    vault = os.path.join(d.state, "vault")

    set_meta(broker, "schema_version", 1, 99)
    err = start_refused(d)
    want = ("store %s has schema 99, this twinrouted knows 2: upgrade "
            "twinrouted" % broker)
    check(want in err, "store message: %r" % err)

    # An older store is upgraded (1 to 2: src/store/store.h).
    set_meta(broker, "schema_version", 1, 1)
    set_meta(vault, "vault", 11, 7)
    err = start_refused(d)
    want = ("vault %s has schema 7, this twinrouted knows 1: upgrade "
            "twinrouted" % vault)
    check(want in err, "vault message: %r" % err)

    set_meta(vault, "vault", 11, 1)
    d.start()
    check(not d.ctl("vault", "status")["sealed"], "back to schema 1: starts")
    check(d.stop() == 0, "clean stop")
    version = read_meta(broker, "schema_version")[1][1]
    check(version == [2], "the store was upgraded to schema 2: %r" % version)


if __name__ == "__main__":
    main([test_backup_while_ordering, test_backup_paths,
          test_one_backup_at_a_time, test_newer_schema_refused])
