#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_tls.py -- the client listener over TLS, with a certificate made for
# the test by the openssl command.
import os
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import (SAMPLE_CATALOG, SkipTest, check, frame, main,  # noqa: E402
                    req_get_service, Reply)


def make_cert(d):
    key = os.path.join(d.dir, "server.key")
    cert = os.path.join(d.dir, "server.crt")
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert], capture_output=True, text=True)
    if r.returncode != 0:
        raise SkipTest("openssl cannot make a certificate: " + r.stderr)
    return cert, key


def tls_daemon(make):
    d = make()
    cert, key = make_cert(d)
    d.write_conf("tls_cert = %s\ntls_key = %s\n" % (cert, key))
    d.start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    return d, cert


def test_cli_over_tls(make):
    d, cert = tls_daemon(make)
    out = d.client("--tls", "--ca", cert, "show", "clean-std")
    check(out["id"] == "clean-std", "served over TLS: %r" % out)
    check("(TLS)" in d.log(), "the daemon says the listener is TLS")


def test_wrong_ca_is_refused(make):
    d, cert = tls_daemon(make)
    other = make()
    other_cert, _ = make_cert(other)
    r = d.client("--tls", "--ca", other_cert, "categories", check=False)
    check(r.returncode == 3, "unverifiable server: exit 3, got %d %s" % (
        r.returncode, r.stderr))


def test_plaintext_on_tls_port(make):
    d, cert = tls_daemon(make)
    host, port = d.addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), 10)
    s.sendall(frame(req_get_service(1, "clean-std")))
    s.settimeout(10)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    check(b"Standard apartment" not in data, "no plaintext answer on TLS")
    # And a real TLS client with modern settings still works.
    ctx = ssl.create_default_context(cafile=cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((host, int(port)), 10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            check(t.version() in ("TLSv1.2", "TLSv1.3"), t.version())
            t.sendall(frame(req_get_service(2, "clean-std")))
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                chunk = t.recv(65536)
                check(chunk, "reply over TLS")
                buf += chunk
            r = Reply(buf[4:])
            check(r.id == 2 and r.error_code is None, "GetService over TLS")


def test_tls_1_1_refused(make):
    d, cert = tls_daemon(make)
    host, port = d.addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert)
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        raise SkipTest("this Python cannot speak TLS 1.1")
    with socket.create_connection((host, int(port)), 10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost"):
                ok = True
        except (ssl.SSLError, ConnectionResetError, OSError):
            ok = False
    check(not ok, "TLS 1.1 handshake refused")


if __name__ == "__main__":
    main([test_cli_over_tls, test_wrong_ca_is_refused,
          test_plaintext_on_tls_port, test_tls_1_1_refused])
