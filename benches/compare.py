#!/usr/bin/env python3
"""Whole-process benchmark of qmail-dkim against the floor (a compiled qmail-queue stand-in
that only drains fd 0 and fd 1) and against the peers that are installed (dkimpy, Mail::DKIM,
`openssl dgst -sign`). Runs every case in alternation, prints medians and ratios, peak RSS of
the big cases, and the instruction count of a 4 KiB sign (valgrind --tool=callgrind).

    python3 benches/compare.py [--runs 15] [--big-mib 100] [--skip-big] [--markdown]

Absolute times are noise on a shared machine; the ratios, measured side by side, are the figure.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--big-runs", type=int, default=5)
    ap.add_argument("--big-mib", type=int, default=100)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()

    sh("cargo build --release --quiet", cwd=ROOT)
    w = tempfile.mkdtemp(prefix="qdbench")
    try:
        run(a, w)
    finally:
        shutil.rmtree(w, ignore_errors=True)


def run(a, w):
    bin_ = os.path.join(ROOT, "target/release/qmail-dkim")
    standin = os.path.join(w, "standin")
    sh(f"cc -O2 -o {standin} {ROOT}/benches/standin.c")
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

    add("floor: stand-in alone", "4k", [standin], {}, small)
    add("qmail-dkim sign rsa-sha256", "4k", [bin_], {"DKIMSIGN": rsa}, small)
    add("qmail-dkim sign ed25519", "4k", [bin_], {"DKIMSIGN": ed, "DKIMSIGNOPTIONS": "-z 4"}, small)
    add("qmail-dkim verify SELECTOR_DATA", "4k", [bin_], {"DKIMVERIFY": "", "SELECTOR_DATA": rsa_rec}, small_signed)
    add("qmail-dkim verify loopback DNS", "4k", [bin_], {"DKIMVERIFY": "", "DNSCACHEIP": f"127.0.0.1:{port}"}, small_signed)
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
    rss = {}
    failures = {}
    for rnd in range(max(a.runs, a.big_runs)):
        for (name, group, argv, e, stdin, fd1, shell) in cases:
            if group == "big" and rnd >= a.big_runs:
                continue
            if group == "4k" and rnd >= a.runs:
                continue
            t0 = time.perf_counter()
            if shell:
                r = subprocess.run(argv, shell=True, env=e, stderr=subprocess.PIPE)
            else:
                with open(stdin, "rb") as i, open(fd1, "rb") as o:
                    r = subprocess.run(argv, stdin=i, stdout=o if "stand-in" in name or "qmail-dkim" in name else subprocess.DEVNULL,
                                       env=e, stderr=subprocess.PIPE)
            dt = time.perf_counter() - t0
            if r.returncode != 0:
                failures[name] = f"exit {r.returncode}: {r.stderr.decode(errors='replace').strip()[:200]}"
            times[name].append(dt)
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

    instr = None
    if shutil.which("valgrind"):
        e = dict(base, DKIMSIGN=rsa)
        with open(small, "rb") as i, open(env, "rb") as o:
            r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", bin_],
                               stdin=i, stdout=o, stderr=subprocess.PIPE, env=e)
        m = re.search(rb"Collected : (\d+)", r.stderr)
        instr = int(m.group(1)) if m else None

    floor = statistics.median(times["floor: stand-in alone"])
    big_ref = statistics.median(times["openssl dgst -sha256 -sign (cat |)"]) if not a.skip_big else None
    print()
    print(f"machine: {os.uname().nodename} {os.uname().machine}, {os.cpu_count()} cores; runs: {a.runs} small, {a.big_runs} big")
    print("| case | median ms | ratio | peak RSS MiB | note |")
    print("|---|---:|---:|---:|---|")
    for (name, group, *_rest) in cases:
        med = statistics.median(times[name]) * 1000
        ref = floor if group == "4k" else big_ref
        ratio = med / (ref * 1000)
        unit = "× floor" if group == "4k" else "× openssl"
        r = f"{rss[name]:.1f}" if name in rss else ""
        print(f"| {name} | {med:.1f} | {ratio:.2f} {unit} | {r} | {failures.get(name, '')} |")
    if instr:
        print(f"\ncallgrind: 4 KiB rsa-sha256 sign = {instr:,} instructions (qmail-dkim process only)")
    dns.stdin.close()
    dns.wait(timeout=5)


if __name__ == "__main__":
    main()
