#!/usr/bin/env python3
"""suites.py - run other projects' test suites through the qmail-dkim binary.

    suites.py spf --bin BIN [--suite FILE] [--jobs N] [-v]
    suites.py arc --bin BIN [--suite FILE] [--jobs N] [-v]

`spf`: the OpenSPF RFC 7208 suite (rfc7208-tests.yml). Each case's SMTP session becomes
TCPREMOTEIP (host), HELOHOST (helo) and the envelope sender (mailfrom) of a run with
SPFVERIFY=F; the result is the `spf=` word of our Authentication-Results field, or of the
refusal for a fail, whose text also carries the domain's explanation (compared where the case
gives one other than DEFAULT).

`arc`: ValiMail's ARC validation suite (arc-draft-validation-tests.yml). Each message goes
through a run with ARCVERIFY set; the `arc=` word of our Authentication-Results field is
compared with the case's `cv`.

Both suites stay where they are (../shared/suites beside the checkout; never copied). Each
worker has its own tests/support/dnsd.py on loopback, serving the zone of the case it runs, and
the queue program is the recording stand-in tests/support/recqueue.py. A case listed in SKIP
is not run: the suite is outdated there, and the reason names the RFC section that says so.
One line per disagreement, then `<suite> suite: A agree, S skipped, D disagree (of N)`.
Exit 0 when every case that is run agrees.
"""

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "suites")
DEFAULT = {
    "spf": os.path.join(SHARED, "spf", "rfc7208-tests.yml"),
    "arc": os.path.join(SHARED, "arc", "arc-draft-validation-tests.yml"),
}

# Cases the suites get wrong by today's RFCs: case name -> the section that says so.
SKIP = {
    "spf": {},
    "arc": {
        "cv_fail_i1_as_cv_fail": "RFC 8617 §5.2: a chain whose newest seal says cv=fail is fail "
        "(the suite, written against draft 18, expects no result)",
        "cv_fail_i2_as1_fail": "RFC 8617 §4.1.3 and §5.2: the seal of i=1 must say cv=none, so a chain "
        "whose i=1 says cv=fail is fail (the suite expects no result)",
        "cv_fail_i2_as2_fail": "RFC 8617 §5.2: a chain whose newest seal says cv=fail is fail "
        "(the suite expects no result)",
        "ams_fields_c_na": "RFC 8617 §4.1.2 gives the AMS the DKIM-Signature's semantics, and RFC 6376 "
        "§3.5 makes a missing c= simple/simple; the suite's signer used relaxed",
        "ams_fields_h_empty": "RFC 6376 §3.5 (imported by RFC 8617 §4.1.2): h= is a list of at least one "
        "field name and must include From; the suite expects an empty h= to pass",
        "ams_fields_h_mis_hdr": "RFC 6376 §3.5 (imported by RFC 8617 §4.1.2): each name in h= is a "
        "field-name of at least one character; the suite expects `to::date` to pass",
    },
}

# Explanations compared without regard to case: the suite writes what RFC 7208 prints otherwise.
ANY_CASE = {
    "v-macro-ip6": "RFC 7208 §7.4 prints the nibbles of an IPv6 %{i} in lowercase; the suite expects "
    "the case the address was written in",
}

# A query the zone says never to answer costs this (DNSTIMEOUT; the message's budget is twice it).
DNS_TIMEOUT = "1.5"
MSG = b"From: <suite@example.net>\nTo: <rcpt@example.org>\nSubject: suite case\n\nbody\n"


def b(s):
    """A YAML string as the octets it stands for (\\xNN escapes are code points below 256)."""
    s = str(s)
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def txt_line(name, strings):
    """One TXT record of character-strings, as exact RDATA."""
    rdata = bytearray()
    for s in strings:
        for i in range(0, max(len(s), 1), 255):
            chunk = s[i:i + 255]
            rdata.append(len(chunk))
            rdata += chunk
    return name + b"\t@RDATA:" + bytes(rdata).hex().encode()


def spf_zone(zonedata):
    """The suite's zonedata as dnsd.py zone lines. SPF-type records stand in for TXT records
    where a name has none (the suite's convention; RFC 7208 §3.1 asks TXT only)."""
    lines = []
    for name, recs in (zonedata or {}).items():
        n = b(name).rstrip(b".").lower()
        txt, spf = [], []
        for r in recs or []:
            if r == "TIMEOUT":
                # pyspf's driver: a question of a type the name lists no records of times out.
                lines.append(n + b"\t@TIMEOUT-NODATA")
                continue
            for t, v in r.items():
                if t == "TXT" and v == "NONE":
                    txt.append(None)  # no TXT record, and none made from SPF records
                elif t in ("TXT", "SPF"):
                    strings = [b(x) for x in v] if isinstance(v, list) else [b(v)]
                    (txt if t == "TXT" else spf).append(strings)
                elif t == "A":
                    lines.append(n + b"\t@A:" + b(v))
                elif t == "AAAA":
                    lines.append(n + b"\t@AAAA:" + b(v))
                elif t == "MX":
                    lines.append(n + b"\t@MX:" + b(v[0]) + b" " + (b(v[1]) or b"."))
                elif t == "PTR":
                    lines.append(n + b"\t@PTR:" + b(v))
                elif t == "CNAME":
                    lines.append(n + b"\t@CNAME:" + b(v))
                else:
                    raise ValueError("unknown record type %s" % t)
        for strings in txt or spf:
            if strings is not None:
                lines.append(txt_line(n, strings))
    return lines


def arc_zone(records):
    return [txt_line(b(n).rstrip(b".").lower(), [b(v)]) for n, v in (records or {}).items()]


class Worker:
    """A dnsd.py of its own and a scratch directory."""

    def __init__(self, root):
        self.dir = tempfile.mkdtemp(dir=root)
        self.zone = os.path.join(self.dir, "zone")
        port_file = os.path.join(self.dir, "port")
        open(self.zone, "w").close()
        self.dnsd = subprocess.Popen(
            [os.path.join(HERE, "dnsd.py"), "--zone", self.zone, "--port-file", port_file,
             "--exit-on-stdin-eof", "--lifetime", "1800"],
            stdin=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.monotonic() > deadline or self.dnsd.poll() is not None:
                raise RuntimeError("dnsd.py did not start")
            time.sleep(0.02)
        self.port = open(port_file).read().strip()
        self.n = 0

    def close(self):
        self.dnsd.kill()
        self.dnsd.wait()

    def run(self, binary, zone, msg, sender, env):
        """One qmail-dkim run: (exit code, stderr text, queued message or None)."""
        with open(self.zone + ".new", "wb") as z:
            z.write(b"\n".join(zone) + b"\n")
        os.replace(self.zone + ".new", self.zone)
        self.n += 1
        rec = os.path.join(self.dir, "q%d" % self.n)
        os.mkdir(rec)
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DNSCACHEIP": "127.0.0.1:" + self.port,
             "DNSTIMEOUT": DNS_TIMEOUT, "RECQUEUE_DIR": rec, "CONTROLDIR": self.dir,
             "AUTHSERV_ID": "mx.suite.test", "CUSTOM_ERRORS": "indimail"}
        e.update(env)
        r, w = os.pipe()
        os.write(w, b"F" + sender + b"\0Trcpt@example.org\0\0")
        os.close(w)
        try:
            p = subprocess.run([binary, os.path.join(HERE, "recqueue.py")], input=msg, env=e,
                               stdout=r, stderr=subprocess.PIPE, timeout=120)
        finally:
            os.close(r)
        out = [f for f in os.listdir(rec) if f.endswith(".msg")]
        queued = open(os.path.join(rec, out[0]), "rb").read() if out else None
        shutil.rmtree(rec, ignore_errors=True)
        return p.returncode, p.stderr.decode("latin-1"), queued


def our_result(queued, method):
    """The word of `method=` in our Authentication-Results field (the first field)."""
    head = queued.split(b"\n\n", 1)[0].decode("latin-1")
    field = head.split("\n")[0]
    for line in head.split("\n")[1:]:
        if not line[:1] in (" ", "\t"):
            break
        field += " " + line.strip()
    if not field.lower().startswith("authentication-results: mx.suite.test"):
        return None, None
    for part in field.split(";")[1:]:
        part = part.strip()
        if part.startswith(method + "="):
            return part[len(method) + 1:].split()[0], part
    return None, None


def spf_case(worker, binary, doc, name, case):
    zone = spf_zone(doc.get("zonedata"))
    want = case["result"] if isinstance(case["result"], list) else [case["result"]]
    env = {"SPFVERIFY": "F", "TCPREMOTEIP": str(case["host"]), "HELOHOST": str(case["helo"])}
    code, err, queued = worker.run(binary, zone, MSG, b(case["mailfrom"]), env)
    explanation = None
    if queued is not None:
        got = our_result(queued, "spf")[0]
    elif code == 88 and "SPF fail" in err:
        got = "fail"
        says = err.split(" says: ", 1)
        if len(says) == 2:
            explanation = says[1].rsplit(" (#", 1)[0]
    else:
        return "exit %s: %s" % (code, err.strip())
    if got not in want:
        return "expected %s, got %s" % ("|".join(want), got)
    exp = case.get("explanation")
    same = (lambda x, y: (x or "").lower() == y.lower()) if name in ANY_CASE else (lambda x, y: x == y)
    if got == "fail" and exp is not None and exp != "DEFAULT" and not same(explanation, exp):
        return "expected explanation %r, got %r" % (exp, explanation)
    return None


def arc_case(worker, binary, doc, name, case):
    zone = arc_zone(doc.get("txt-records"))
    want = str(case["cv"]).strip().lower()
    msg = b(case["message"] or "")
    code, err, queued = worker.run(binary, zone, msg, b"sender@example.net", {"ARCVERIFY": ""})
    if queued is None:
        return "exit %s: %s" % (code, err.strip())
    got, part = our_result(queued, "arc")
    if got != want:
        return "expected cv=%s, got %s" % (want, part)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", choices=["spf", "arc"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--suite-file")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    path = os.path.abspath(a.suite_file or DEFAULT[a.suite])
    binary = os.path.abspath(a.bin)
    with open(path, "rb") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    cases = [(doc, name, case) for doc in docs for name, case in doc["tests"].items()]
    skip = SKIP[a.suite]
    unknown = set(skip) - {c[1] for c in cases}
    if unknown:
        print("skip list names cases the suite does not have: %s" % ", ".join(sorted(unknown)))
        return 1
    run = [c for c in cases if c[1] not in skip]
    check = spf_case if a.suite == "spf" else arc_case
    root = tempfile.mkdtemp(prefix="suite-%s" % a.suite)
    local = threading.local()
    workers = []
    lock = threading.Lock()

    def one(c):
        if not hasattr(local, "w"):
            local.w = Worker(root)
            with lock:
                workers.append(local.w)
        try:
            return c[1], check(local.w, binary, *c)
        except Exception as e:  # a broken case is a disagreement, not a crash of the run
            return c[1], "error: %r" % e

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            results = list(pool.map(one, run))
    finally:
        for w in workers:
            w.close()
        shutil.rmtree(root, ignore_errors=True)
    bad = [(n, why) for n, why in results if why]
    for n, why in bad:
        print("FAIL %s: %s" % (n, why))
    if a.v:
        for n, why in results:
            if not why:
                print("ok   %s" % n)
    for n in sorted(skip):
        print("skip %s: %s" % (n, skip[n]))
    if a.suite == "spf":
        for n in sorted(ANY_CASE):
            print("note %s: explanation compared in any case: %s" % (n, ANY_CASE[n]))
    print("%s suite: %d agree, %d skipped, %d disagree (of %d)"
          % (a.suite, len(run) - len(bad), len(cases) - len(run), len(bad), len(cases)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
