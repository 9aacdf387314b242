#!/usr/bin/env python3
"""Whole-process benchmark of qmail-dkim against the floor and against the peers that are
installed (dkimpy, Mail::DKIM, `openssl dgst -sign`). The floor is the least any QMAILQUEUE
wrapper does (benches/floor.c: vfork+exec the queue program with fd 0 and fd 1 piped, copy
both, mirror its exit); the queue program is a compiled stand-in that drains fd 0 and fd 1
(benches/standin.c). Runs every case in alternation, prints medians, ratios against the floor
(4 KiB) or openssl (big), minor page faults (ours plus the stand-in's), peak RSS of the big
cases, and load-independent counts of the 4 KiB cases: instructions (valgrind
--tool=callgrind) and system calls (strace -c), of the wrapper process alone.

    python3 benches/compare.py [--runs 15] [--big-runs 5] [--big-mib 100] [--skip-big] [--quick] [--no-counts] [--bin PATH]

--quick (7 small runs, 1 big run) takes a couple of minutes on a quiet machine. Absolute times
are noise on a shared machine; the ratios, measured side by side, are the figure, and the
counts do not depend on load at all.
"""
import argparse, os, random, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def make_body(size):
    random.seed(1)
    words = ("the quick brown fox jumps over lazy dog lorem ipsum dolor sit amet consectetur "
             "adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua").split()
    lines = []
    for _ in range(2000):
        line, n = [], 0
        while n < 70:
            w = random.choice(words)
            line.append(w)
            n += len(w) + 1
        lines.append(" ".join(line).encode() + b"\n")
    block = b"".join(lines)
    out = bytearray()
    while len(out) < size:
        out += block
    return bytes(out[:size])


HDR = (b"From: Joe <joe@example.com>\nTo: x@y.org\nSubject: benchmark\n"
       b"Message-ID: <1@example.com>\nDate: Wed, 25 Nov 2026 10:00:00 +0000\n\n")


FLOOR = "floor: minimal C wrapper + stand-in"


def count(cases):
    """Instructions (callgrind) and system calls (strace -c) of each 4 KiB case's own process."""
    out = {}
    for (name, group, argv, e, stdin, fd1, shell) in cases:
        if group != "4k" or not (name == FLOOR or "qmail-dkim" in name):
            continue
        instr = calls = None
        if shutil.which("valgrind"):
            with open(stdin, "rb") as i, open(fd1, "rb") as o:
                r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv,
                                   stdin=i, stdout=o, stderr=subprocess.PIPE, env=e)
            m = re.search(rb"Collected : (\d+)", r.stderr)
            instr = int(m.group(1)) if m else None
        if shutil.which("strace"):
            with tempfile.NamedTemporaryFile() as t, open(stdin, "rb") as i, open(fd1, "rb") as o:
                subprocess.run(["strace", "-c", "-o", t.name] + argv, stdin=i, stdout=o,
                               stderr=subprocess.DEVNULL, env=e)
                m = re.search(rb"^\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$", open(t.name, "rb").read(), re.M)
                calls = int(m.group(1)) if m else None
        if instr and calls:
            out[name] = (instr, calls)
    return out if FLOOR in out else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--big-runs", type=int, default=5)
    ap.add_argument("--big-mib", type=int, default=100)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="(the table is always markdown)")
    ap.add_argument("--quick", action="store_true", help="7 small runs and 1 big run")
    ap.add_argument("--no-counts", action="store_true", help="skip callgrind and strace")
    ap.add_argument("--bin", help="measure this qmail-dkim instead of building target/release's")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.big_runs = min(a.runs, 7), 1

    if not a.bin:
        # The README's build lines, so that the binary measured is the one installed.
        readme = open(os.path.join(ROOT, "README.md")).read()
        block = readme[readme.index("## Installing into qmail"):].split("```sh\n")[1].split("```")[0]
        for line in block.splitlines():
            if line.startswith("cargo "):
                sh(line + " --quiet" if " -- " not in line else line.replace(" -- ", " --quiet -- ", 1), cwd=ROOT)
    w = tempfile.mkdtemp(prefix="qdbench")
    try:
        run(a, w)
    finally:
        shutil.rmtree(w, ignore_errors=True)


def run(a, w):
    bin_ = os.path.abspath(a.bin) if a.bin else os.path.join(ROOT, "target/release/qmail-dkim")
    standin = os.path.join(w, "standin")
    sh(f"cc -O2 -o {standin} {ROOT}/benches/standin.c")
    floor_bin = os.path.join(w, "floor")
    sh(f"cc -O2 -o {floor_bin} {ROOT}/benches/floor.c")
    rsa, ed = os.path.join(w, "rsa"), os.path.join(w, "ed")
    sh(f"openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out {rsa} 2>/dev/null")
    sh(f"openssl genpkey -algorithm ed25519 -out {ed}")
    small = os.path.join(w, "small.msg")
    with open(small, "wb") as f:
        f.write(HDR + make_body(4096 - len(HDR)))
    env = os.path.join(w, "env")
    with open(env, "wb") as f:
        f.write(b"Fjoe@example.com\0Tx@y.org\0\0")
    q = os.path.join(w, "q")
    os.mkdir(q)

    def record(key, k):
        der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                             capture_output=True, check=True).stdout
        if k == "ed25519":
            der = der[-32:]
        import base64
        return f"v=DKIM1; k={k}; p={base64.b64encode(der).decode()}"

    rsa_rec, ed_rec = record(rsa, "rsa"), record(ed, "ed25519")

    # Signed copies for the verify cases, made by qmail-dkim itself.
    def sign_to(src, dst, key, opts=""):
        e = dict(os.environ, DKIMSIGN=key, DKIMSIGNOPTIONS=opts,
                 DKIMQUEUE=f"{ROOT}/tests/support/recqueue.py", RECQUEUE_DIR=q)
        for x in os.listdir(q):
            os.unlink(os.path.join(q, x))
        with open(src, "rb") as i, open(env, "rb") as o:
            subprocess.run([bin_], stdin=i, stdout=o, env=e, check=True)
        m = [x for x in os.listdir(q) if x.endswith(".msg")][0]
        shutil.copy(os.path.join(q, m), dst)

    small_signed = os.path.join(w, "small.signed")
    sign_to(small, small_signed, rsa)

    dns = subprocess.Popen([sys.executable, f"{ROOT}/tests/support/dnsd.py", "--zone", os.path.join(w, "zone"),
                            "--port-file", os.path.join(w, "port"), "--exit-on-stdin-eof"],
                           stdin=subprocess.PIPE)
    with open(os.path.join(w, "zone"), "w") as f:
        f.write(f"rsa._domainkey.example.com\t{rsa_rec}\n")
        # SPF and DMARC for the queue-time checks (docs/dmarc.md).
        # rua= asks for aggregate reports: the DMARCREPORTS case writes one spool record a message.
        f.write("example.com\tv=spf1 ip4:127.0.0.0/8 -all\n"
                "_dmarc.example.com\tv=DMARC1; p=reject; rua=mailto:dmarc@example.com\n")
    for _ in range(100):
        if os.path.exists(os.path.join(w, "port")) and open(os.path.join(w, "port")).read().strip():
            break
        time.sleep(0.05)
    port = open(os.path.join(w, "port")).read().strip()
    os.rename(rsa, os.path.join(w, "rsa"))  # selector = basename "rsa"

    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DKIMQUEUE": standin}
    cases = []  # (name, group, argv, env, stdin file, fd1 file)

    def add(name, group, argv, env_extra, stdin, fd1=env, shell=False):
        cases.append((name, group, argv, dict(base, **env_extra), stdin, fd1, shell))

    add(FLOOR, "4k", [floor_bin, standin], {}, small)
    add("stand-in alone (no wrapper)", "4k", [standin], {}, small)
    add("qmail-dkim sign rsa-sha256", "4k", [bin_], {"DKIMSIGN": rsa}, small)
    add("qmail-dkim sign ed25519", "4k", [bin_], {"DKIMSIGN": ed, "DKIMSIGNOPTIONS": "-z 4"}, small)
    add("qmail-dkim verify, unsigned (no crypto, no DNS)", "4k", [bin_], {"DKIMVERIFY": ""}, small)
    add("qmail-dkim verify SELECTOR_DATA", "4k", [bin_], {"DKIMVERIFY": "", "SELECTOR_DATA": rsa_rec}, small_signed)
    add("qmail-dkim verify loopback DNS", "4k", [bin_], {"DKIMVERIFY": "", "DNSCACHEIP": f"127.0.0.1:{port}"}, small_signed)
    add("qmail-dkim verify + SPF + DMARC, loopback DNS", "4k", [bin_],
        {"DKIMVERIFY": "", "SPFVERIFY": "", "DMARCVERIFY": "", "TCPREMOTEIP": "127.0.0.1",
         "DNSCACHEIP": f"127.0.0.1:{port}"}, small_signed)
    spool = os.path.join(w, "spool")
    for sub in ("tmp", "new"):
        os.makedirs(os.path.join(spool, sub))
    add("qmail-dkim verify + SPF + DMARC + DMARCREPORTS", "4k", [bin_],
        {"DKIMVERIFY": "", "SPFVERIFY": "", "DMARCVERIFY": "", "TCPREMOTEIP": "127.0.0.1",
         "DNSCACHEIP": f"127.0.0.1:{port}", "DMARCREPORTS": spool}, small_signed)
    add("qmail-dkim verify + ARC seal (ARCSIGN rsa)", "4k", [bin_],
        {"DKIMVERIFY": "", "ARCSIGN": os.path.join(w, "rsa"), "ARCDOMAIN": "example.com",
         "DNSCACHEIP": f"127.0.0.1:{port}"}, small_signed)
    if shutil.which("python3") and subprocess.run([sys.executable, "-c", "import dkim"], capture_output=True).returncode == 0:
        add("dkimpy sign (no queue)", "4k", [sys.executable, f"{ROOT}/tests/interop/dkimpy_sign.py", small,
                                             "--key", rsa, "--selector", "rsa", "--domain", "example.com"], {}, small)
    if subprocess.run(["perl", "-MMail::DKIM::Signer", "-e1"], capture_output=True).returncode == 0:
        add("Mail::DKIM sign (no queue)", "4k", ["perl", f"{ROOT}/tests/interop/mail_dkim_sign.pl", small, rsa,
                                                 "rsa", "example.com"], {}, small)
    if not a.skip_big:
        big = os.path.join(w, "big.msg")
        with open(big, "wb") as f:
            f.write(HDR + make_body(a.big_mib * 1024 * 1024))
        big_signed = os.path.join(w, "big.signed")
        sign_to(big, big_signed, rsa)
        add("openssl dgst -sha256 -sign (cat |)", "big", f"cat {big} | openssl dgst -sha256 -sign {rsa} >/dev/null", {}, None, None, True)
        add("qmail-dkim sign (cat |)", "big", f"cat {big} | {bin_} 1<{env}", {"DKIMSIGN": rsa}, None, None, True)
        add("qmail-dkim verify (cat |)", "big", f"cat {big_signed} | {bin_} 1<{env}",
            {"DKIMVERIFY": "", "SELECTOR_DATA": rsa_rec}, None, None, True)

    times = {c[0]: [] for c in cases}
    faults = {c[0]: [] for c in cases}
    rss = {}
    failures = {}
    for rnd in range(max(a.runs, a.big_runs)):
        for (name, group, argv, e, stdin, fd1, shell) in cases:
            if group == "big" and rnd >= a.big_runs:
                continue
            if group == "4k" and rnd >= a.runs:
                continue
            ours = "stand-in" in name or "qmail-dkim" in name or name == FLOOR
            with open(stdin or os.devnull, "rb") as i, open(fd1 or os.devnull, "rb") as o:
                t0 = time.perf_counter()
                if shell:
                    p = subprocess.Popen(argv, shell=True, env=e, stderr=subprocess.PIPE)
                else:
                    p = subprocess.Popen(argv, stdin=i, stdout=o if ours else subprocess.DEVNULL,
                                         env=e, stderr=subprocess.PIPE)
                err = p.stderr.read()
                p.stderr.close()
                _, status, ru = os.wait4(p.pid, 0)
                dt = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            if p.returncode != 0:
                failures[name] = f"exit {p.returncode}: {err.decode(errors='replace').strip()[:200]}"
            times[name].append(dt)
            faults[name].append(ru.ru_minflt)
    # Peak RSS of the big cases (our process only, via /usr/bin/time on it).
    if not a.skip_big and os.path.exists("/usr/bin/time"):
        for (name, group, argv, e, stdin, fd1, shell) in cases:
            if group != "big":
                continue
            cmd = argv.replace(f"| {bin_}", f"| /usr/bin/time -f %M {bin_}").replace("| openssl", "| /usr/bin/time -f %M openssl")
            r = subprocess.run(cmd, shell=True, env=e, stderr=subprocess.PIPE)
            m = re.findall(rb"^(\d+)$", r.stderr, re.M)
            if m:
                rss[name] = int(m[-1]) / 1024

    counts = {}
    if not a.no_counts:
        counts = count(cases)

    floor = statistics.median(times[FLOOR])
    big_ref = statistics.median(times["openssl dgst -sha256 -sign (cat |)"]) if not a.skip_big else None
    print()
    load = os.getloadavg()[0]
    print(f"machine: {os.uname().nodename} {os.uname().machine}, {os.cpu_count()} cores, load average {load:.1f}; "
          f"runs: {a.runs} small, {a.big_runs} big")
    print("| case | median ms | ratio | minor faults | peak RSS MiB | note |")
    print("|---|---:|---:|---:|---:|---|")
    for (name, group, *_rest) in cases:
        med = statistics.median(times[name]) * 1000
        ref = floor if group == "4k" else big_ref
        ratio = med / (ref * 1000)
        unit = "× C wrapper" if group == "4k" else "× openssl"
        r = f"{rss[name]:.1f}" if name in rss else ""
        f = f"{statistics.median(faults[name]):.0f}" if group == "4k" else ""
        cell = name.replace("|", "\\|")
        print(f"| {cell} | {med:.1f} | {ratio:.2f} {unit} | {f} | {r} | {failures.get(name, '')} |")
    if counts:
        print("\nLoad-independent counts, 4 KiB message, the wrapper process alone (not the stand-in):")
        print("| case | instructions | × C wrapper | system calls | × C wrapper |")
        print("|---|---:|---:|---:|---:|")
        fi, fs = counts[FLOOR]
        for name, (i, sc) in counts.items():
            print(f"| {name} | {i:,} | {i / fi:.1f} | {sc} | {sc / fs:.1f} |")
    dns.stdin.close()
    dns.wait(timeout=5)


if __name__ == "__main__":
    main()
