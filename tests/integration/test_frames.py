#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_frames.py -- the framing and the client protocol under good and bad
# input, over the daemon's real client socket.
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (ERR, SAMPLE_CATALOG, check, decode, field_bytes,  # noqa: E402
                    field_varint, frame, main, req_get_service, req_hello,
                    req_list_categories, req_search)


def started(make, conf=""):
    d = make(conf).start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    return d


def test_hello_and_get(make):
    d = started(make)
    c = d.raw()
    r = c.call(req_hello(1))
    check(r.id == 1 and r.error_code is None, "hello: %r" % r)
    hello = r.body(10)
    check(hello[1][0] == 1, "negotiated version 1")
    check(hello[2][0].startswith(b"twinrouted "), "server name")
    check(hello[3][0] == 64 * 1024, "max_frame default 64 KiB")
    r = c.call(req_get_service(2, "trv-fuji"))
    check(r.id == 2 and r.error_code is None, "get: %r" % r)
    svc = r.body(13)
    service = svc and decode(svc[1][0])
    check(service[1][0] == b"trv-fuji", "service id echoed")
    provider = decode(svc[2][0])
    check(provider[1][0] == b"fuji-travel", "provider attached")
    check(3 not in provider and 4 not in provider,
          "clients never see a provider's e-mail or fax")
    r = c.call(req_get_service(3, "no-such-service"))
    check(r.id == 3 and r.error_code == ERR["NOT_FOUND"], "not found: %r" % r)


def test_version_refused(make):
    d = started(make)
    c = d.raw()
    r = c.call(req_hello(9, version=0))
    check(r.id == 9 and r.error_code == ERR["VERSION"], "version 0: %r" % r)
    # A newer client is answered with the version the server speaks.
    r = c.call(req_hello(10, version=7))
    check(r.error_code is None and r.body(10)[1][0] == 1, "downgrade: %r" % r)


def test_pipelining(make):
    d = started(make)
    c = d.raw()
    ids = list(range(100, 140))
    burst = b"".join(frame(req_get_service(i, "clean-std")) for i in ids)
    burst += frame(req_list_categories(500)) + frame(req_search(501, "onsen"))
    c.send(burst)
    got = [c.recv() for _ in range(len(ids) + 2)]
    check([r.id for r in got] == ids + [500, 501], "replies in order, ids echoed")
    check(all(r.error_code is None for r in got), "no errors")
    cats = got[-2].body(11)[1]
    check(len(cats) == 4, "four categories in the sample catalog")


def test_split_frame(make):
    d = started(make)
    c = d.raw()
    data = frame(req_get_service(7, "rep-door"))
    for b in data:  # one byte per write
        c.send(bytes([b]))
        time.sleep(0.002)
    r = c.recv()
    check(r.id == 7 and r.error_code is None, "byte-by-byte: %r" % r)


def test_garbage_closes_only_that_connection(make):
    d = started(make)
    good = d.raw()
    check(good.call(req_hello(1)).error_code is None, "hello")
    bad = d.raw()
    bad.send_frame(b"\xff\xff\xff\xff garbage that is not protobuf")
    r = bad.recv()
    check(r is not None and r.error_code == ERR["BAD_FRAME"], "garbage: %r" % r)
    check(r.error_message, "the error says why")
    check(bad.is_closed(), "the server closes after a bad frame")
    # The other client is still served.
    r = good.call(req_get_service(2, "tr-letter"))
    check(r.id == 2 and r.error_code is None, "other client still served")
    check("not a Request" in d.log(), "the daemon logs the bad frame")


def test_oversize_frame(make):
    d = started(make, "max_frame = 1K\n")
    bad = d.raw()
    bad.send(struct.pack(">I", 4096))  # the header alone is enough
    r = bad.recv()
    check(r is not None and r.error_code == ERR["FRAME_TOO_LARGE"],
          "oversize: %r" % r)
    check("4096" in r.error_message and "1024" in r.error_message,
          "message names size and limit: %r" % r.error_message)
    check(bad.is_closed(), "closed after oversize")
    good = d.raw()
    r = good.call(req_get_service(1, "clean-std"))
    check(r.error_code is None, "new connections are still served")


def test_empty_and_unknown_requests(make):
    d = started(make)
    c = d.raw()
    # A zero-length frame is an empty Request: no body.
    c.send_frame(b"")
    r = c.recv()
    check(r.error_code == ERR["UNSUPPORTED"], "empty request: %r" % r)
    # A body this server does not know (field 99): refused, connection kept.
    c.send_frame(field_varint(1, 5) + field_bytes(99, b"future"))
    r = c.recv()
    check(r.id == 5 and r.error_code == ERR["UNSUPPORTED"], "unknown: %r" % r)
    r = c.call(req_get_service(6, "clean-std"))
    check(r.id == 6 and r.error_code is None, "connection still usable")


def test_bad_page_token_and_query(make):
    d = started(make)
    c = d.raw()
    # ListServices{page_token = junk}
    c.send_frame(field_varint(1, 3) + field_bytes(12, field_bytes(3, b"\x07junk")))
    r = c.recv()
    check(r.id == 3 and r.error_code == ERR["BAD_PAGE_TOKEN"], "token: %r" % r)
    r = c.call(req_search(4, "   "))
    check(r.id == 4 and r.error_code == ERR["BAD_REQUEST"], "empty query: %r" % r)


def test_too_many_connections(make):
    d = make("max_connections = 2\n").start()
    a, b = d.raw(), d.raw()
    check(a.call(req_hello(1)).error_code is None, "first")
    check(b.call(req_hello(1)).error_code is None, "second")
    c = d.raw()
    r = c.recv()
    check(r is not None and r.error_code == ERR["TOO_MANY_CONNECTIONS"],
          "third refused: %r" % r)
    check(c.is_closed(), "third closed")
    a.close()
    deadline = time.time() + 10
    while True:  # the slot frees once the server sees the close
        e = d.raw()
        r = e.call(req_hello(2))
        if r is not None and r.error_code is None:
            break
        check(time.time() < deadline, "slot never freed: %r" % r)
        time.sleep(0.1)


def test_reader_that_never_reads_is_dropped(make):
    d = started(make, "idle_timeout = 1s\noutput_limit = 128K\n")
    slow = d.raw()
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # Ask for far more reply bytes than the output limit and read nothing.
    # ListServices{page_size 100}: about 1.5 KB of reply for 10 bytes asked,
    # far more in all than the kernel's socket buffers hold.
    ask = [field_varint(1, i) + field_bytes(12, field_varint(2, 100))
           for i in range(20000)]
    burst = b"".join(frame(a) for a in ask)
    slow.sock.settimeout(30)
    try:
        slow.sock.sendall(burst)
    except OSError:
        pass  # the server may already have dropped us: that is the point
    # The server stops reading, then drops the peer once writes stall.
    check("peer not reading" in wait_log(d, "peer not reading"),
          "daemon logs the dropped slow reader")
    good = d.raw()
    r = good.call(req_get_service(1, "clean-std"))
    check(r.error_code is None, "others are still served")


def wait_log(d, text, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        log = d.log()
        if text in log:
            return log
        time.sleep(0.1)
    return d.log()


if __name__ == "__main__":
    main([
        test_hello_and_get,
        test_version_refused,
        test_pipelining,
        test_split_frame,
        test_garbage_closes_only_that_connection,
        test_oversize_frame,
        test_empty_and_unknown_requests,
        test_bad_page_token_and_query,
        test_too_many_connections,
        test_reader_that_never_reads_is_dropped,
    ])
