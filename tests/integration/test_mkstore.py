#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_mkstore.py -- the daemon starts on a store tools/bench/mkstore wrote
# (orders in every state, outboxes, confirmations, orders left RECEIVED)
# and sees exactly what mkstore says it wrote.
import collections
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import BIN, SAMPLE_CATALOG, check, main  # noqa: E402

MKSTORE = os.path.join(BIN, "tools", "mkstore")
METRICS = "[metrics]\nlisten = 127.0.0.1:0\n"
ORDERS = 2000
RECEIVED = 3
MEMBERS = 40
PASSWORD = "mkstore test password"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def mkstore(d, *extra):
    pw = os.path.join(d.dir, "password")
    os.makedirs(d.state, mode=0o700, exist_ok=True)
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    r = subprocess.run([MKSTORE, "-n", str(ORDERS), "-m", str(MEMBERS),
                        "--received", str(RECEIVED), "-c", SAMPLE_CATALOG,
                        "-p", pw, "--json", *extra,
                        os.path.join(d.state, "broker")],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "mkstore exited %d: %s" % (r.returncode,
                                                         r.stderr))
    return json.loads(r.stdout), pw


def scrape(d):
    """{(family, label value): value} of the order and queue families."""
    with open(os.path.join(d.state, "metrics.addr")) as f:
        addr = f.read().strip()
    with OPENER.open("http://%s/metrics" % addr, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^(twinroute_orders|twinroute_orders_fax|'
                         r'twinroute_queue_jobs)\{[a-z_]+="([A-Z_a-z]+)"\}'
                         r' ([0-9.e+]+)$', text, re.M):
        out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


def listed(d):
    orders = d.ctl("order", "list", "--limit", str(ORDERS + 10))
    return orders, collections.Counter(o["state"] for o in orders)


def settle(d):
    """The listing once the RECEIVED orders have had the vault's answer."""
    deadline = time.time() + 20
    while True:
        orders, states = listed(d)
        if states.get("RECEIVED", 0) == 0 or time.time() > deadline:
            return orders, states
        time.sleep(0.1)


def check_counts(d, made, states):
    got = scrape(d)
    for s, n in states.items():
        check(got.get(("twinroute_orders", s)) == n,
              "metrics orders %s: %r, listed %d" % (
                  s, got.get(("twinroute_orders", s)), n))
    check(sum(v for (fam, _), v in got.items()
              if fam == "twinroute_orders") == ORDERS, "metrics: %r" % got)
    # The card route: the orders left RECEIVED have no fax track either.
    for s, n in made["fax"].items():
        check(got.get(("twinroute_orders_fax", s)) == n,
              "metrics fax %s: %r, mkstore %d" % (
                  s, got.get(("twinroute_orders_fax", s)), n))
    for q, key in (("mail", "mail_jobs"), ("provider", "provider_jobs"),
                   ("fax", "fax_jobs")):
        check(got.get(("twinroute_queue_jobs", q)) == made[key],
              "queue %s: %r, mkstore %d" % (q, got.get((
                  "twinroute_queue_jobs", q)), made[key]))


def test_start_on_mkstore(make):
    d = make(METRICS, name="mkstore")
    made, pw = mkstore(d)
    check(made["orders"] == ORDERS and made["next_order_id"] == ORDERS + 1,
          "mkstore: %r" % made)
    check(made["states"].get("RECEIVED") == RECEIVED, "%r" % made["states"])
    check(sum(made["states"].values()) == ORDERS, "%r" % made["states"])
    # A mix: settled, in flight, and outboxes to match.
    for s in ("CHARGED", "AWAITING_CONFIRMATION", "DECLINED"):
        check(made["states"].get(s, 0) > 0, "no %s in %r" % (s, made))
    check(made["confirmations"] == made["states"]["AWAITING_CONFIRMATION"],
          "confirmations %r" % made)
    check(made["mail_jobs"] == made["states"].get("AUTHORIZED", 0),
          "mail jobs %r" % made)
    check(made["fax_jobs"] == made["fax"].get("FAX_QUEUED", 0),
          "fax jobs %r" % made)
    d.start()

    # The orders left RECEIVED go to the (sealed) vault again, found
    # through their index, not by a scan of every order.
    orders, states = settle(d)
    want = collections.Counter(made["states"])
    want["DECLINED"] += RECEIVED
    del want["RECEIVED"]
    check(states == want, "listed %r, mkstore %r" % (states, want))
    check(len(orders) == ORDERS and
          sorted(o["id"] for o in orders) == list(range(1, ORDERS + 1)),
          "every id once")
    log = d.log()
    check("asking the vault again about %d RECEIVED orders" % RECEIVED in
          log, "no recovery in the log")
    check("made again" not in log, "the index was rebuilt: " + log[-2000:])
    check_counts(d, made, states)

    # Listings are newest first and read only as far as they show.
    newest = d.ctl("order", "list", "--limit", "5")
    check([o["id"] for o in newest] == list(range(ORDERS, ORDERS - 5, -1)),
          "order list --limit 5: %r" % [o["id"] for o in newest])
    charged = sorted((o["id"] for o in orders if o["state"] == "CHARGED"),
                     reverse=True)
    got = d.ctl("order", "list", "--state", "CHARGED", "--limit", "3")
    check([o["id"] for o in got] == charged[:3],
          "order list --state CHARGED: %r, want %r" % (
              [o["id"] for o in got], charged[:3]))

    # A state's listing ends once the counts say every one was seen.
    for state in ("RECEIVED", "AUTHORIZED", "DECLINED"):
        got = d.ctl("order", "list", "--state", state, "--limit", "100000")
        want_ids = sorted((o["id"] for o in orders if o["state"] == state),
                          reverse=True)
        check([o["id"] for o in got] == want_ids, "order list --state %s: "
              "%d orders, want %d" % (state, len(got), len(want_ids)))

    # A member's orders through the member index, as the member sees them.
    member = "2000007"
    mine = d.ctl("order", "list", "--member", member, "--limit", "1000")
    check(len(mine) > 0 and all(o["member"] == member for o in mine),
          "order list --member: %r" % mine[:3])
    r = d.client("--member", member, "--password-file", pw, "orders",
                 "--limit", "1000")
    seen = r["orders"] if isinstance(r, dict) else r
    check(sorted(o["id"] for o in seen) == sorted(o["id"] for o in mine),
          "the member sees %d orders, the admin %d" % (len(seen), len(mine)))

    # A restart: nothing left to recover, the same counts.
    check(d.stop() == 0, "stop")
    d.start()
    _, again = listed(d)
    check(again == states, "after a restart: %r" % again)
    check(d.log().count("asking the vault again") == 1, "recovered twice")
    check_counts(d, made, states)


def test_mkstore_refuses_a_store(make):
    d = make(name="mkstore")
    mkstore(d)
    r = subprocess.run([MKSTORE, "-n", "10", os.path.join(d.state, "broker")],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "holds a store" in r.stderr,
          "a second mkstore: %r" % r)
    r = subprocess.run([MKSTORE, "-n", "x", os.path.join(d.dir, "other")],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2, "a bad count: %r" % r)


if __name__ == "__main__":
    main([test_start_on_mkstore, test_mkstore_refuses_a_store])
