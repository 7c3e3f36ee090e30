#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_catalog.py -- the catalog round trip through twinroutectl (control
# socket) and twinroute (client socket), against the real daemon.
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import SAMPLE_CATALOG, check, main  # noqa: E402


def ids(items):
    return sorted(x["id"] for x in items)


def test_import_and_browse(make):
    d = make().start()
    r = d.ctl("catalog", "import", SAMPLE_CATALOG, json_out=False)
    check("imported 4 providers and 12 services" in r.stdout, r.stdout)
    cats = d.client("categories")
    check([(c["name"], c["services"]) for c in cats] == [
        ("cleaning", 3), ("repair", 3), ("translation", 3), ("travel", 3)],
        "categories: %r" % cats)
    svcs = d.client("services")
    check(len(svcs) == 12, "12 services listed: %r" % svcs)
    check(ids(svcs) == [s["id"] for s in svcs], "listed in id order")
    travel = d.client("services", "--category", "travel")
    check(ids(travel) == ["trv-fuji", "trv-onsen", "trv-rail"], travel)
    # Pagination: pages of 5 still give all 12, in order, no duplicates.
    paged = d.client("services", "--page-size", "5")
    check([s["id"] for s in paged] == [s["id"] for s in svcs], "paged list")
    show = d.client("show", "trv-fuji")
    check(show["name"] == "Mount Fuji day tour" and show["price"] == 14500
          and show["currency"] == "JPY", "show: %r" % show)
    check("email" not in show and "fax" not in show,
          "clients never see provider contact details")
    r = d.client("show", "nope", check=False)
    check(r.returncode == 1 and "no such service" in r.stderr,
          "unknown service: exit 1 with reason: %d %r" % (r.returncode, r.stderr))
    st = d.ctl("status")
    check(st["providers"] == 4 and st["services"] == 12, "status counts")
    check(st["client_addr"] == d.addr, "status shows the client address")
    check(st["store_synced_txn"] >= st["store_last_txn"] >= 1,
          "acknowledged writes are synced: %r" % st)


def test_search(make):
    d = make().start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    res = d.client("search", "CLEANING")
    got = [s["id"] for s in res["services"]]
    # "cleaning" is in the name of all three cleaning services and in no
    # description only; name hits rank first, then id order.
    check(set(got) == {"clean-std", "clean-move", "clean-aircon"},
          "case-insensitive search: %r" % got)
    res = d.client("search", "japanese", "english")
    got = [s["id"] for s in res["services"]]
    # Both words in tr-contract's name; in the other two descriptions only,
    # so those two tie and go in id order.
    check(got == ["tr-contract", "tr-interp", "tr-letter"],
          "every word must match; name hits rank first: %r" % got)
    res = d.client("search", "japanese", "contract")
    got = [s["id"] for s in res["services"]]
    check(got == ["tr-contract"], "AND, not OR: %r" % got)
    res = d.client("search", "zeppelin")
    check(res["total"] == 0 and res["services"] == [], "no match")


def test_provider_and_service_admin(make):
    d = make().start()
    d.ctl("provider", "add", "p1", "--name", "Provider One",
          "--email", "ops@p1.example", "--fax", "+81311112222")
    r = d.ctl("provider", "add", "p1", "--name", "Again",
              "--email", "ops@p1.example", "--fax", "+81311112222",
              json_out=False, check=False)
    check(r.returncode == 1 and "exist" in r.stderr, "duplicate: %r" % r.stderr)
    r = d.ctl("provider", "add", "p2", "--name", "Bad Fax",
              "--email", "ops@p2.example", "--fax", "0312345678",
              json_out=False, check=False)
    check(r.returncode == 1 and "fax" in r.stderr, "bad fax: %r" % r.stderr)
    d.ctl("service", "add", "s1", "--provider", "p1", "--category", "misc",
          "--name", "Window washing", "--price", "5000", "--currency", "JPY",
          "--description", "Outside windows up to the third floor")
    r = d.ctl("service", "add", "s2", "--provider", "nobody", "--category",
              "misc", "--name", "X", "--price", "1", "--currency", "JPY",
              json_out=False, check=False)
    check(r.returncode == 1 and "provider" in r.stderr, "unknown provider")
    r = d.ctl("service", "add", "s3", "--provider", "p1", "--category",
              "misc", "--name", "X", "--price", "12.50", "--currency", "JPY",
              json_out=False, check=False)
    check(r.returncode == 2, "price in minor units only: usage error")
    check(d.client("search", "window")["total"] == 1, "new service searchable")

    d.ctl("service", "update", "s1", "--name", "Balcony cleaning")
    check(d.client("search", "window")["total"] == 0, "old words forgotten")
    check(d.client("search", "balcony")["total"] == 1, "new words indexed")
    check(d.client("show", "s1")["name"] == "Balcony cleaning", "updated")

    shown = d.ctl("provider", "show", "p1")
    check(shown, "provider show answers")
    d.ctl("provider", "disable", "p1")
    r = d.client("show", "s1", check=False)
    check(r.returncode == 1, "a disabled provider's service is hidden")
    check(d.client("search", "balcony")["total"] == 0, "and not found")
    admin = d.ctl("service", "list", "--provider", "p1")
    check(ids(admin) == ["s1"], "admins still see it: %r" % admin)
    provs = d.ctl("provider", "list")
    check([p["active"] for p in provs if p["id"] == "p1"] == [False],
          "provider marked inactive: %r" % provs)

    d.ctl("service", "remove", "s1")
    check(d.ctl("service", "list") == [], "removed")
    r = d.ctl("service", "remove", "s1", json_out=False, check=False)
    check(r.returncode == 1, "removing twice is refused")


def test_import_all_or_nothing(make):
    d = make().start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write('{"type":"provider","id":"newp","name":"New","email":'
                '"a@newp.example","fax":"+81399990000"}\n')
        f.write('{"type":"service","id":"new1","provider":"newp","category":'
                '"misc","name":"Fine","price":100,"currency":"JPY"}\n')
        f.write("\n")
        f.write('{"type":"service","id":"new2","provider":"ghost","category":'
                '"misc","name":"Orphan","price":100,"currency":"JPY"}\n')
        path = f.name
    try:
        r = d.ctl("catalog", "import", path, json_out=False, check=False)
        check(r.returncode == 1, "refused: %d %r" % (r.returncode, r.stderr))
        check("%s:4:" % path in r.stderr and "ghost" in r.stderr,
              "the failing line is named: %r" % r.stderr)
        check(len(d.ctl("service", "list")) == 12, "nothing was imported")
        check("newp" not in ids(d.ctl("provider", "list")), "no provider")
        # A syntax error is caught before anything is sent.
        with open(path, "w") as f:
            f.write('{"type":"provider", "id": \n')
        r = d.ctl("catalog", "import", path, json_out=False, check=False)
        check(r.returncode == 2 and "%s:1:" % path in r.stderr,
              "bad JSON named by line: %r" % r.stderr)
    finally:
        os.unlink(path)


def test_full_store_keeps_serving_reads(make):
    # The smallest map the config allows, filled with long descriptions.
    d = make("[store]\nmap_size = 1M\n").start()
    d.ctl("catalog", "import", SAMPLE_CATALOG)
    desc = "x" * 3900
    path = os.path.join(d.dir, "batch.jsonl")
    full = None
    for batch in range(200):
        with open(path, "w") as f:
            for i in range(10):
                f.write('{"type":"service","id":"big-%d-%d","provider":'
                        '"fuji-travel","category":"bulk","name":"Bulk %d",'
                        '"description":"%s","price":1,"currency":"JPY"}\n'
                        % (batch, i, i, desc))
        r = d.ctl("catalog", "import", path, json_out=False, check=False)
        if r.returncode != 0:
            full = r
            break
    check(full is not None, "the 1 MiB map never filled")
    check(full.returncode == 1 and "store full" in full.stderr,
          "a clear error: %d %r" % (full.returncode, full.stderr))
    # Reads go on: the catalog, search, status; and the failed batch left
    # nothing behind.
    check(d.client("show", "trv-fuji")["id"] == "trv-fuji", "reads served")
    check(d.client("search", "onsen")["total"] == 1, "search served")
    st = d.ctl("status")
    check(st["services"] == 12 + 10 * batch, "no partial batch: %r" % st)
    check(st["store_used_bytes"] <= st["store_map_bytes"], "status shows use")
    # Removing something frees room for writes again.
    for i in range(10):
        d.ctl("service", "remove", "big-0-%d" % i)
    d.ctl("service", "add", "after-full", "--provider", "fuji-travel",
          "--category", "misc", "--name", "Small", "--price", "1",
          "--currency", "JPY")


def test_usage_errors(make):
    d = make().start()
    r = d.ctl("frobnicate", json_out=False, check=False)
    check(r.returncode == 2 and "usage" in (r.stderr + r.stdout).lower(),
          "unknown command")
    r = d.ctl("provider", "add", "x", json_out=False, check=False)
    check(r.returncode == 2, "missing options")
    r = d.ctl("--help", json_out=False, check=False)
    check(r.returncode == 0 and "catalog import" in r.stdout,
          "help lists the commands from the table")


if __name__ == "__main__":
    main([test_import_and_browse, test_search,
          test_provider_and_service_admin, test_import_all_or_nothing,
          test_full_store_keeps_serving_reads, test_usage_errors])
