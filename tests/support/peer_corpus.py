#!/usr/bin/env python3
"""peer_corpus.py - run qmail-dkim's verifier over other projects' DKIM test vectors.

The vectors live in the team's shared material beside the checkout
(`../shared/peer-corpus/`, see its README.md and cases.tsv); they are never copied
into the repository. Each case's DNS answers are served by tests/support/dnsd.py
on loopback, the message (CRLF turned into LF, as qmail hands it over) goes through
the real qmail-dkim binary in verify mode into the recording queue stand-in, and the
Authentication-Results results are compared with the verdicts the peer's own suite
expects.

Usage: peer_corpus.py --bin target/debug/qmail-dkim [--corpus DIR] [-v]
Exit 0 when every case agrees, 1 otherwise (one line per disagreement).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def fakedns_zone(path):
    """Mail::DKIM's FAKE_DNS.dat -> dnsd.py zone lines."""
    out = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("latin-1").rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            name, _, text = line.partition(" ")
            text = text.strip()
            if text == "NXDOMAIN":
                text = "@NXDOMAIN"
            elif text == "~~Query timed out~~":
                text = "@TIMEOUT"
            elif text == "~~SERVFAIL~~":
                text = "@SERVFAIL"
            elif text == '""':
                text = "@RDATA:00"
            out.append(f"{name.rstrip('.')}\t{text}")
    return out


def inline_split(data):
    """mail-auth's NNN.txt: `name value` lines, a blank line, the message."""
    head, sep, msg = data.partition(b"\n\n")
    if not sep:
        head, sep, msg = data.partition(b"\r\n\r\n")
    zone = []
    for line in head.decode("latin-1").splitlines():
        name, _, text = line.strip().partition(" ")
        zone.append(f"{name.rstrip('.')}\t{text.strip()}")
    return zone, msg


def results(msg):
    """(method, word, selector) of every result in our Authentication-Results fields."""
    head = msg.split(b"\n\n", 1)[0].decode("latin-1")
    fields = re.split(r"\n(?![ \t])", head)
    out = []
    for f in fields:
        if not f.lower().startswith("authentication-results:"):
            continue
        value = re.sub(r"\s+", " ", f.split(":", 1)[1])
        for part in value.split(";")[1:]:
            m = re.match(r"\s*(dkim|domainkeys)=(\w+)", part)
            if not m:
                continue
            s = re.search(r'header\.s="?([^" ;]+)', part)
            out.append((m.group(1), m.group(2), s.group(1) if s else None))
    return out


def check(expect, res):
    """The failed tokens of `expect` (README.md, column `expect`)."""
    bad = []
    words = [w for _, w, _ in res]
    overall = "pass" if "pass" in words else (words[0] if words else "none")
    for tok in expect.split():
        if tok.startswith("#"):
            n, _, alts = tok[1:].partition(":")
            n = int(n)
            got = words[n - 1] if len(words) >= n else None
            if got not in alts.split("|"):
                bad.append(f"{tok} (got {got})")
        elif tok.startswith("s="):
            sel, _, alts = tok[2:].partition(":")
            got = [w for _, w, s in res if s == sel]
            if not got or any(w not in alts.split("|") for w in got):
                bad.append(f"{tok} (got {got})")
        elif overall not in tok.split("|"):
            bad.append(f"{tok} (got {overall})")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "..", "shared", "peer-corpus"))
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    corpus = os.path.abspath(a.corpus)
    binary = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="peer-corpus")
    zone_path = os.path.join(tmp, "zone")
    port_file = os.path.join(tmp, "port")
    open(zone_path, "w").close()
    dnsd = subprocess.Popen([os.path.join(HERE, "dnsd.py"), "--zone", zone_path, "--port-file", port_file],
                            stdin=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.05)
    port = open(port_file).read().strip()
    cases = failed = 0
    try:
        with open(os.path.join(corpus, "cases.tsv"), encoding="utf-8") as f:
            rows = [l.rstrip("\n").split("\t") for l in f if l.strip() and not l.startswith("#")]
        for row in rows[1:]:
            cid, _src, mode, msgf, zone, env, expect = row[:7]
            data = open(os.path.join(corpus, msgf), "rb").read()
            if zone == "inline":
                zlines, data = inline_split(data)
            elif zone.startswith("fakedns:"):
                zlines = fakedns_zone(os.path.join(corpus, zone[8:]))
            else:
                zlines = [l.rstrip("\r\n") for l in open(os.path.join(corpus, zone[5:]), encoding="latin-1")]
            with open(zone_path + ".new", "w", encoding="latin-1") as z:
                z.write("\n".join(zlines) + "\n")
            os.replace(zone_path + ".new", zone_path)
            msg = data.replace(b"\r\n", b"\n")
            rec = tempfile.mkdtemp(dir=tmp)
            e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DNSCACHEIP": f"127.0.0.1:{port}",
                 "RECQUEUE_DIR": rec, "DKIMVERIFY" if mode == "dkim" else "DKVERIFY": ""}
            if env != "-":
                for kv in env.split():
                    k, _, v = kv.partition("=")
                    e[k] = v
            r, w = os.pipe()
            os.write(w, b"Fsender@example.org\0Trcpt@example.net\0\0")
            os.close(w)
            p = subprocess.run([binary, os.path.join(HERE, "recqueue.py")], input=msg, env=e,
                               stdout=r, stderr=subprocess.PIPE, timeout=60)
            os.close(r)
            cases += 1
            out = [n for n in os.listdir(rec) if n.endswith(".msg")]
            if p.returncode != 0 or not out:
                failed += 1
                print(f"FAIL {cid}: exit {p.returncode}: {p.stderr.decode(errors='replace').strip()}")
                continue
            res = results(open(os.path.join(rec, out[0]), "rb").read())
            bad = check(expect, res)
            if bad:
                failed += 1
                print(f"FAIL {cid}: expected {expect}: {'; '.join(bad)}")
            elif a.v:
                print(f"ok   {cid}: {res}")
    finally:
        dnsd.terminate()
        dnsd.wait()
    print(f"peer corpus: {cases - failed}/{cases} cases agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
