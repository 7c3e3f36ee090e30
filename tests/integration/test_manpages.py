#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# test_manpages.py -- the man pages in conf/man/ keep up with the programs:
# every option and command a program's --help lists is in its page (and
# every command in the page is in --help), every key of conf/twinroute.conf
# is in twinroute.conf(5) with the same default and no other key is, and
# each page renders without a warning.
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trtest import BIN, SOURCE, check, main  # noqa: E402

MAN = os.path.join(SOURCE, "conf", "man")
PAGES = {
    # page: the program whose --help it follows
    "twinrouted.8": os.path.join(BIN, "src", "twinrouted"),
    "twinroutectl.8": os.path.join(BIN, "tools", "twinroutectl"),
    "twinroute.1": os.path.join(BIN, "tools", "twinroute"),
    "twinroute-provider.1": os.path.join(BIN, "tools", "twinroute-provider"),
    "twinroute.conf.5": None,
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def roff_text(src):
    """The words of a roff source, without requests' names, font changes
    and escapes: what a reader sees, one space between words."""
    out = []
    for line in src.splitlines():
        if line.startswith('.\\"'):
            continue
        if line.startswith("."):
            parts = line.split(None, 1)
            line = parts[1] if len(parts) > 1 else ""
        out.append(line)
    t = " ".join(out)
    t = re.sub(r"\\f(\[[A-Z]*\]|[BIRP])", "", t)
    t = re.sub(r"\\\((..)", " ", t)
    t = t.replace("\\-", "-").replace("\\%", "").replace("\\&", "")
    t = t.replace("\\c", "").replace("\\e", "\\").replace('"', " ")
    return re.sub(r"\s+", " ", t)


def has_word(text, word):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(word), text)


def help_of(prog):
    r = subprocess.run([prog, "--help"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0, "%s --help exits %d" % (prog, r.returncode))
    return r.stdout


def help_options(text):
    longs = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    shorts = set(re.findall(r"(?:^|[\s\[|,(])(-[A-Za-z])(?=[\s,\]|)]|$)",
                            text, re.M))
    return longs | shorts


def help_commands(text):
    """Command words of each entry in the "commands:" section."""
    lines = text.splitlines()
    if "commands:" not in lines:
        return set()
    cmds = set()
    for line in lines[lines.index("commands:") + 1:]:
        if line == "":
            break
        m = re.match(r"^  (\S.*)$", line)
        if not m:
            continue  # a description (6 blanks) or a continuation (8)
        words = []
        for w in m.group(1).split():
            if not re.match(r"^[a-z][a-z-]*$", w):
                break
            words.append(w)
        check(words, "no command word in %r" % line)
        cmds.add(" ".join(words))
    return cmds


def page_commands(src):
    """Command words of each .TP entry of the page's COMMANDS section."""
    m = re.search(r"^\.SH COMMANDS\n(.*?)^\.SH ", src, re.M | re.S)
    if not m:
        return set()
    cmds = set()
    for tag in re.findall(r"^\.TP\n(.*)$", m.group(1), re.M):
        w = re.match(r"^\\fB([a-z][a-z\\ -]*)\\fR", tag)
        check(w, "COMMANDS entry not a command: %r" % tag)
        cmds.add(w.group(1).replace("\\-", "-").strip())
    return cmds


def test_options_and_commands_documented(make):
    for page, prog in PAGES.items():
        if prog is None:
            continue
        src = read(os.path.join(MAN, page))
        text = roff_text(src)
        h = help_of(prog)
        missing = sorted(o for o in help_options(h) if not has_word(text, o))
        check(not missing, "%s lacks options of %s --help: %s" % (
            page, os.path.basename(prog), " ".join(missing)))
        cmds = help_commands(h)
        missing = sorted(c for c in cmds if not has_word(text, c))
        check(not missing, "%s lacks commands of %s --help: %s" % (
            page, os.path.basename(prog), ", ".join(missing)))
        extra = sorted(page_commands(src) - cmds)
        check(not extra, "%s documents commands %s --help does not list: "
              "%s" % (page, os.path.basename(prog), ", ".join(extra)))


def conf_keys():
    """{(section, key): default} of conf/twinroute.conf."""
    keys = {}
    section = None
    for line in read(os.path.join(SOURCE, "conf", "twinroute.conf")
                     ).splitlines():
        m = re.match(r"^\[([a-z]+)\]\s*$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^#?([a-z][a-z0-9_]*) ?=(.*)$", line)
        if m and section:
            keys[(section, m.group(1))] = m.group(2).strip()
    return keys


def page_keys(src):
    """{(section, key): default} of the KEYS section of twinroute.conf.5."""
    m = re.search(r"^\.SH KEYS\n(.*?)^\.SH ", src, re.M | re.S)
    check(m, "twinroute.conf.5 has no KEYS section")
    keys = {}
    section = None
    lines = m.group(1).splitlines()
    for i, line in enumerate(lines):
        s = re.match(r'^\.SS "\[([a-z]+)\]"$', line)
        if s:
            section = s.group(1)
            continue
        if line in (".TP", ".TQ") and i + 1 < len(lines):
            k = re.match(r"^\\fB([a-z][a-z0-9_]*)\\fR = (.*)$", lines[i + 1])
            check(k and section, "KEYS: not a key entry: %r" % lines[i + 1])
            d = k.group(2)
            d = "" if d == "(empty)" else re.sub(r"^\\fI(.*)\\fR$", r"\1", d)
            keys[(section, k.group(1))] = d.replace("\\e", "\\")
    return keys


def test_conf_keys_documented(make):
    conf = conf_keys()
    check(len(conf) > 50, "keys found in twinroute.conf: %d" % len(conf))
    page = page_keys(read(os.path.join(MAN, "twinroute.conf.5")))
    missing = sorted("%s.%s" % k for k in conf if k not in page)
    check(not missing, "twinroute.conf.5 lacks keys: " + ", ".join(missing))
    extra = sorted("%s.%s" % k for k in page if k not in conf)
    check(not extra, "twinroute.conf.5 has keys twinroute.conf has not: "
          + ", ".join(extra))
    wrong = sorted("%s.%s: %r, conf %r" % (k + (page[k], conf[k]))
                   for k in conf if page[k] != conf[k])
    check(not wrong, "defaults differ: " + "; ".join(wrong))


def test_pages_render(make):
    groff = shutil.which("groff")
    for page in PAGES:
        src = read(os.path.join(MAN, page))
        name, section = page.rsplit(".", 1)
        th = re.search(r"^\.TH (\S+) (\S+) ", src, re.M)
        check(th and th.group(1).replace("\\-", "-") == name.upper() and
              th.group(2) == section, "%s: .TH %r" % (
                  page, th.group(0) if th else None))
        check(src.startswith('.\\" SPDX-License-Identifier: ISC\n'),
              "%s: licence line" % page)
        if groff is None:
            continue
        r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z",
                            os.path.join(MAN, page)],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and r.stderr == "",
              "%s: groff warns: %s" % (page, r.stderr))
    if groff is None:
        print("note: groff is not installed (tools/bootstrap installs "
              "groff-base); the pages were not rendered")


def test_normalizer_can_fail(make):
    # The checks above must be able to fail: a page without an option.
    text = roff_text(".TP\n.BR \\-c \", \" \\-\\-config\n")
    check(has_word(text, "--config") and has_word(text, "-c"), text)
    check(not has_word(text, "--conf"), "prefix is no match")
    check(help_commands("commands:\n  vault init [--key-file]\n      x\n") ==
          {"vault init"}, "command words")


if __name__ == "__main__":
    main([test_options_and_commands_documented, test_conf_keys_documented,
          test_pages_render, test_normalizer_can_fail])
