#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_metrics.py -- the Prometheus listener: a real daemon with orders,
# scraped over HTTP and read with Prometheus' own text parser.
import collections
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import DAEMON, ERR, TestFailure, check, main, req_hello  # noqa: E402
from test_orders import (add_member, login, order_of, req_cancel,  # noqa: E402
                         req_place, vault_daemon)

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("test_metrics: python3-prometheus-client is missing "
             "(tools/bootstrap installs it)")

METRICS = "[metrics]\nlisten = 127.0.0.1:0\n"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The test card of test_orders.CARD, in every form it could be written.
CARD_FORMS = ["4111111111111111", "4111 1111 1111 1111",
              "4111-1111-1111-1111"]

# Never through a proxy the environment may name.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def metrics_addr(d):
    with open(os.path.join(d.state, "metrics.addr")) as f:
        return f.read().strip()


def http(d, path="/metrics", method="GET", data=None):
    """(status, headers, body) of one request."""
    req = urllib.request.Request("http://%s%s" % (metrics_addr(d), path),
                                 method=method, data=data)
    try:
        with OPENER.open(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def scrape(d):
    """The raw text and its families by name, parsed by prometheus_client
    (which raises on anything outside the format)."""
    status, headers, text = http(d)
    check(status == 200, "GET /metrics: %d %s" % (status, text))
    check(headers.get("Content-Type") == CONTENT_TYPE,
          "content type: %r" % headers.get("Content-Type"))
    fams = {}
    for f in text_string_to_metric_families(text):
        check(f.name not in fams, "family %s twice" % f.name)
        fams[f.name] = f
    return text, fams


def value(fams, family, name=None, **labels):
    """The one sample of family with these labels (exactly)."""
    f = fams.get(family)
    check(f is not None, "no family %s" % family)
    name = name or family
    got = [s.value for s in f.samples if s.name == name and s.labels == labels]
    check(len(got) == 1, "%s%r: %d samples in %r" % (name, labels, len(got),
                                                    f.samples))
    return got[0]


def by_label(fams, family, label):
    return {s.labels[label]: s.value for s in fams[family].samples}


def check_format(text, fams):
    """Every family: # HELP and # TYPE, our prefix, counters in _total."""
    helps, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, doc = line[7:].split(" ", 1)
            helps[name] = doc
        elif line.startswith("# TYPE "):
            name, typ = line[7:].split(" ", 1)
            check(name not in types, "TYPE %s twice" % name)
            types[name] = typ
        elif line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            check(name.startswith("twinroute_"), "prefix: %r" % line)
            base = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and \
                        types.get(name[:-len(suffix)]) == "histogram":
                    base = name[:-len(suffix)]
            check(base in types, "sample before its TYPE: %r" % line)
    check(set(helps) == set(types), "HELP and TYPE: %r vs %r" % (
        sorted(helps), sorted(types)))
    for name, typ in types.items():
        check(name.startswith("twinroute_"), "prefix: %s" % name)
        check(typ in ("counter", "gauge", "histogram"), "%s: %s" % (name, typ))
        check(helps[name].strip() != "", "%s: empty HELP" % name)
        check((typ == "counter") == name.endswith("_total"),
              "%s %s: counters, and only counters, end in _total" % (
                  name, typ))
    for f in fams.values():
        check(f.documentation and f.type in ("counter", "gauge", "histogram"),
              "family %s: %r %r" % (f.name, f.type, f.documentation))


def check_histogram(fams, family):
    """Buckets ascend, are cumulative, end with +Inf equal to _count."""
    f = fams[family]
    buckets = [(s.labels["le"], s.value) for s in f.samples
               if s.name == family + "_bucket"]
    check(len(buckets) >= 2 and buckets[-1][0] == "+Inf",
          "%s: buckets %r" % (family, buckets))
    bounds = [float(le) for le, _ in buckets]
    check(bounds == sorted(bounds) and len(set(bounds)) == len(bounds),
          "%s: bounds ascend: %r" % (family, bounds))
    counts = [v for _, v in buckets]
    check(counts == sorted(counts), "%s: cumulative: %r" % (family, counts))
    count = value(fams, family, family + "_count")
    check(counts[-1] == count, "%s: +Inf %r, _count %r" % (family, counts[-1],
                                                          count))
    total = value(fams, family, family + "_sum")
    check(total >= 0 and (count > 0 or total == 0), "%s: _sum %r" % (
        family, total))
    return count


def settled(d, want):
    """Scrape until want(fams) holds (connections close asynchronously)."""
    deadline = time.time() + 10
    while True:
        text, fams = scrape(d)
        if want(fams) or time.time() > deadline:
            return text, fams
        time.sleep(0.05)


def test_scrape(make):
    t0 = time.time()
    # A modem whose name needs escaping in a label (it is never called:
    # no order is confirmed).
    d = vault_daemon(make, METRICS +
                     '[fax]\nmodems = /nonexistent/fax"q\\m\n')
    check(metrics_addr(d).startswith("127.0.0.1:"), metrics_addr(d))
    add_member(d, "100001")
    add_member(d, "100002", card=False)
    c = login(d, "100001")
    ids = []
    for i in range(3):
        o = order_of(c.call(req_place(10 + i, "trv-fuji", 1, "m-%d" % i)))
        check(o and o["state"] == "AUTHORIZED", "order %d: %r" % (i, o))
        ids.append(o["id"])
    r = c.call(req_cancel(20, ids[0]))
    check(order_of(r)["state"] == "CANCELLED", "cancel: %r" % r)
    # Errors, one of each: client BAD_QUANTITY, control NOT_FOUND.
    r = c.call(req_place(21, "trv-fuji", 0, "zero"))
    check(r.error_code == ERR["BAD_QUANTITY"], "qty 0: %r" % r)
    r = d.ctl("order", "show", "999999", check=False)
    check(r.returncode == 1, "order show of nothing: %r" % r)
    c2 = login(d, "100002")
    o = order_of(c2.call(req_place(1, "trv-rail", 1, "nocard")))
    check(o["state"] == "DECLINED", "declined: %r" % o)
    c.close()
    c2.close()

    # Orders by state: what the admin's listing shows.
    listed = d.ctl("order", "list")
    text, fams = settled(d, lambda f: value(
        f, "twinroute_connections", listener="client") == 0)
    check_format(text, fams)
    states = by_label(fams, "twinroute_orders", "state")
    want = collections.Counter(o["state"] for o in listed)
    check(len(listed) == 4 and want == {"AUTHORIZED": 2, "CANCELLED": 1,
                                        "DECLINED": 1}, "listed: %r" % want)
    for s, n in states.items():
        check(n == want.get(s, 0), "orders %s: %r, listed %r" % (
            s, n, want.get(s, 0)))
    check(set(want) <= set(states), "every listed state: %r" % states)
    check("STATE_UNSPECIFIED" not in states, "%r" % states)
    fax = by_label(fams, "twinroute_orders_fax", "fax_state")
    check(sum(fax.values()) == 4 and fax["FAX_NONE"] == 4, "fax: %r" % fax)
    # A key per order placed (the refused quantity wrote none).
    check(value(fams, "twinroute_idempotency_keys") == 4, "keys: %r" %
          value(fams, "twinroute_idempotency_keys"))
    # The queues: a confirmation job per AUTHORIZED order.
    check(value(fams, "twinroute_queue_jobs", queue="mail") == 2, "mail q")
    check(value(fams, "twinroute_queue_jobs", queue="provider") == 0, "prov")
    check(value(fams, "twinroute_queue_jobs", queue="fax") == 0, "fax q")
    age = value(fams, "twinroute_queue_oldest_age_seconds", queue="mail")
    check(0 <= age <= time.time() - t0 + 1, "mail age %r" % age)
    check(value(fams, "twinroute_queue_oldest_age_seconds", queue="fax") == 0,
          "empty fax queue: age 0")

    # Requests and errors by code.
    check(value(fams, "twinroute_requests", "twinroute_requests_total") >= 8,
          "requests")
    check(value(fams, "twinroute_errors", "twinroute_errors_total",
                listener="client", code="ERR_BAD_QUANTITY") == 1, "client err")
    check(value(fams, "twinroute_errors", "twinroute_errors_total",
                listener="control", code="ERR_NOT_FOUND") >= 1, "ctl err")

    # The vault: key file, so initialized and unsealed; sealing shows.
    check(value(fams, "twinroute_vault_initialized") == 1, "initialized")
    check(value(fams, "twinroute_vault_sealed") == 0, "unsealed")
    check(value(fams, "twinroute_vault_pending_requests") == 0, "pending")

    # Store histograms: commits and syncs happened.
    check(check_histogram(fams, "twinroute_store_commit_duration_seconds")
          >= 1, "commits counted")
    check(check_histogram(fams, "twinroute_store_fsync_duration_seconds")
          >= 1, "fsyncs counted")
    used = value(fams, "twinroute_store_used_bytes")
    check(0 < used <= value(fams, "twinroute_store_map_size_bytes"), "used")
    check(value(fams, "twinroute_store_synced_txn") <=
          value(fams, "twinroute_store_last_txn"), "synced <= last")

    # The modem, its name escaped and read back by the parser.
    ms = {(s.labels["modem"], s.labels["state"]): s.value
          for s in fams["twinroute_modem_state"].samples}
    check(ms.get(('fax"q\\m', "IDLE")) == 1 and
          sum(ms.values()) == 1, "modem state: %r" % ms)
    check(value(fams, "twinroute_modem_calls", "twinroute_modem_calls_total",
                modem='fax"q\\m') == 0, "no call")
    check('modem="fax\\"q\\\\m"' in text, "escaped label in the text")
    for r in ("sent", "failed", "retried"):
        check(value(fams, "twinroute_fax_results",
                    "twinroute_fax_results_total", result=r) == 0, r)
    check(value(fams, "twinroute_provider_sessions") == 0, "sessions")
    check(value(fams, "twinroute_mail_in_flight") >= 0, "mail in flight")

    # Process.
    version = subprocess.run([DAEMON, "-V"], capture_output=True,
                             text=True).stdout.split()[-1]
    check(value(fams, "twinroute_build_info", version=version) == 1,
          "build info %s" % version)
    start = value(fams, "twinroute_start_time_seconds")
    check(t0 - 2 <= start <= time.time() + 1, "start time %r" % start)

    # No card number in any form.
    for form in CARD_FORMS:
        check(form not in text, "card number in the scrape")

    # A connection the test holds open is counted, on its listener.
    held = d.raw()
    check(held.call(req_hello(1)).error_code is None, "hello")
    _, fams = scrape(d)
    check(value(fams, "twinroute_connections", listener="client") == 1,
          "held connection")
    check(value(fams, "twinroute_connections", listener="lmtp") == 0, "lmtp")
    held.close()
    _, fams = settled(d, lambda f: value(
        f, "twinroute_connections", listener="client") == 0)
    check(value(fams, "twinroute_connections", listener="client") == 0,
          "closed connection")

    d.ctl("vault", "seal", json_out=False)
    _, fams = scrape(d)
    check(value(fams, "twinroute_vault_sealed") == 1, "sealed")

    # The counts are the store's: the same after a restart.
    d.stop()
    check(not os.path.exists(os.path.join(d.state, "metrics.addr")),
          "metrics.addr removed at exit")
    d.start()
    _, fams = scrape(d)
    check(by_label(fams, "twinroute_orders", "state") == states,
          "orders by state after a restart")
    check(value(fams, "twinroute_queue_jobs", queue="mail") == 2, "mail q")


def test_http(make):
    d = make()
    d.write_conf(METRICS)
    d.start()
    status, headers, body = http(d, "/")
    check(status == 404, "GET /: %d" % status)
    status, _, _ = http(d, "/metrics/extra")
    check(status == 404, "GET /metrics/extra: %d" % status)
    status, _, _ = http(d, "/metrics?x=1")
    check(status == 200, "a query string is ignored: %d" % status)
    status, headers, _ = http(d, method="POST", data=b"x=1")
    check(status == 405 and "GET" in headers.get("Allow", ""),
          "POST: %d %r" % (status, headers.get("Allow")))
    status, _, _ = http(d, "/other", method="DELETE")
    check(status == 404, "DELETE /other: %d" % status)
    status, _, _ = http(d, method="PUT", data=b"")
    check(status == 405, "PUT: %d" % status)
    status, headers, body = http(d, method="HEAD")
    check(status == 200 and body == "" and
          headers.get("Content-Type") == CONTENT_TYPE, "HEAD: %d" % status)

    # Oversized requests are refused; the listener keeps serving.
    host, port = metrics_addr(d).rsplit(":", 1)
    for req in (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                b"a" * 20000 + b"\r\n\r\n",
                b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: "
                b"100000\r\n\r\n" + b"b" * 4096):
        s = socket.create_connection((host, int(port)), timeout=10)
        try:
            s.sendall(req)
            reply = s.recv(4096)
        except OSError:
            reply = b""
        finally:
            s.close()
        check(reply == b"" or reply.split(b" ", 2)[1][:1] == b"4",
              "oversized: %r" % reply[:80])
    _, fams = scrape(d)
    check("twinroute_orders" in fams, "still serving")
    # An idle connection does not hold the daemon's stop.
    idle = socket.create_connection((host, int(port)), timeout=10)
    rc = d.stop()
    idle.close()
    check(rc == 0, "stop with an idle metrics connection: %d" % rc)


def test_loopback_only(make):
    d = make()
    for addr in ("0.0.0.0:9100", "192.0.2.1:9100", "[::]:9100",
                 "example.org:9100"):
        d.write_conf("[metrics]\nlisten = %s\n" % addr)
        r = subprocess.run([DAEMON, "-t", "-c", d.conf_path],
                           capture_output=True, text=True)
        check(r.returncode == 2 and "metrics.listen" in r.stderr and
              "loopback" in r.stderr, "%s: %d %r" % (addr, r.returncode,
                                                     r.stderr))
    for addr in ("127.0.0.1:0", "[::1]:9100", "localhost:9100"):
        d.write_conf("[metrics]\nlisten = %s\n" % addr)
        r = subprocess.run([DAEMON, "-t", "-c", d.conf_path],
                           capture_output=True, text=True)
        check(r.returncode == 0, "%s: %d %r" % (addr, r.returncode, r.stderr))
    # Without [metrics] listen: no listener, no metrics.addr.
    d.write_conf("")
    d.start()
    check(not os.path.exists(os.path.join(d.state, "metrics.addr")),
          "no metrics.addr without [metrics] listen")
    if d.stop() != 0:
        raise TestFailure("stop")


def test_idle_writes_nothing(make):
    # The order upkeep looks every 100 ms; with nothing to index or to
    # expire it writes nothing: no commit, no fsync.
    d = make()
    d.write_conf(METRICS)
    d.start()
    time.sleep(0.3)
    _, before = scrape(d)
    time.sleep(1.2)
    _, after = scrape(d)
    for name in ("twinroute_store_last_txn", "twinroute_store_synced_txn"):
        check(value(before, name) == value(after, name),
              "%s: %r, then %r" % (name, value(before, name),
                                   value(after, name)))
    syncs = [value(f, "twinroute_store_syncs", "twinroute_store_syncs_total")
             for f in (before, after)]
    check(syncs[0] == syncs[1], "syncs: %r" % syncs)


if __name__ == "__main__":
    main([test_scrape, test_http, test_loopback_only,
          test_idle_writes_nothing])
