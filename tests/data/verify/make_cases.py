#!/usr/bin/env python3
"""Writes the verification cases NNN.txt of this directory (run once; the files are committed).

Each case is signed with the fixed keys of tests/data/testkeys by our own signer (`dkim sign`,
deterministic: no t=, no x=) or by dkimpy (tests/interop/dkimpy_sign.py), or carries a
hand-made signature for failures found before any cryptography. See README.md for the format.

    cargo build --bin dkim && tests/data/verify/make_cases.py
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
KEYS = os.path.join(ROOT, "tests", "data", "testkeys")
DKIM = os.path.join(ROOT, "target", "debug", "dkim")

MSG = (b"From: Joe <joe@example.com>\nTo: sue@example.net\nSubject: dinner\n"
       b"Date: Fri, 11 Jul 2003 21:00:37 -0700\nMessage-ID: <1@example.com>\n\n"
       b"Hi.\n\nWe lost the game.  Are you hungry yet?\n")
HAND = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=rsa; h=from:to:subject; "
        "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA")


def p(name):
    with open(os.path.join(KEYS, name + ".p")) as f:
        return f.read().strip()


RSA = "v=DKIM1; k=rsa; p=" + p("rsa-2048")
RSA1024 = "v=DKIM1; k=rsa; p=" + p("rsa-1024")
ED = "v=DKIM1; k=ed25519; p=" + p("ed25519")


def ours(msg, key, selector, *opts):
    return subprocess.run([DKIM, "sign", "-k", os.path.join(KEYS, key + ".pem"), "-s", selector,
                           "-d", "example.com", "-x", "-", *opts],
                          input=msg, stdout=subprocess.PIPE, check=True).stdout


def dkimpy(msg, key, selector, *opts):
    tmp = os.path.join(HERE, ".msg.tmp")
    with open(tmp, "wb") as f:
        f.write(msg)
    try:
        return subprocess.run([os.path.join(ROOT, "tests", "interop", "dkimpy_sign.py"), tmp,
                               "--key", os.path.join(KEYS, key + ".pem"), "--selector", selector,
                               "--domain", "example.com", *opts],
                              stdout=subprocess.PIPE, check=True).stdout
    finally:
        os.remove(tmp)


def hand(tags):
    return ("DKIM-Signature: %s\n" % tags).encode() + MSG


def from_above(signed):
    at = signed.index(b"\nFrom:") + 1
    return signed[:at] + b"From: Evil <evil@attacker.example>\n" + signed[at:]


ed_signed = ours(MSG, "ed25519", "ed", "-z", "4")
rsa_signed = ours(MSG, "rsa-2048", "rsa")
tampered = rsa_signed.replace(b"Subject: dinner", b"Subject: lunch")
long_d = ".".join(["a" * 60] * 4) + ".example.com"

# (letter, what, extra environment, records, message)
CASES = [
    ("A", "ed25519-sha256 by our signer", [], [("ed._domainkey.example.com", ED)], ed_signed),
    ("A", "rsa-sha256 by our signer", [], [("rsa._domainkey.example.com", RSA)], rsa_signed),
    ("A", "rsa-sha256 by dkimpy, simple/simple, 1024-bit key", [],
     [("rsa1024._domainkey.example.com", RSA1024)],
     dkimpy(MSG, "rsa-1024", "rsa1024", "--canon", "simple/simple")),
    ("D", "rsa-sha1 only: verified, but not trusted", [], [("rsa._domainkey.example.com", RSA)],
     ours(MSG, "rsa-2048", "rsa", "-z", "1")),
    ("E", "l= and a line appended by a list", [], [("ed._domainkey.example.com", ED)],
     ours(MSG, "ed25519", "ed", "-z", "4", "-l") + b"P.S. added by a list\n"),
    ("G", "unsigned, and the domain's ADSP says discardable", ["DKIMPRACTICE="],
     [("_adsp._domainkey.example.com", "dkim=discardable")], MSG),
    ("H", "h= without from", [], [("rsa._domainkey.example.com", RSA)],
     hand(HAND.replace("h=from:to:subject", "h=to:subject"))),
    ("I", "a signed header changed", [], [("rsa._domainkey.example.com", RSA)], tampered),
    ("J", "a signed header changed, key in testing (t=y)", [],
     [("rsa._domainkey.example.com", RSA + "; t=y")], tampered),
    ("K", "expired (x= in 1970)", [], [("rsa._domainkey.example.com", RSA)], hand(HAND + "; x=1000")),
    ("L", "key record without p=", [], [("ed._domainkey.example.com", "v=DKIM1; k=ed25519")], ed_signed),
    ("M", "key record's g= does not match i=", [],
     [("ed._domainkey.example.com", "g=sue; k=ed25519; p=" + p("ed25519"))],
     ours(MSG, "ed25519", "ed", "-z", "4", "-i", "joe@example.com")),
    ("N", "revoked key (p= empty)", [], [("ed._domainkey.example.com", "v=DKIM1; k=ed25519; p=")], ed_signed),
    ("O", "d= too long for a DNS name", [], [],
     hand(HAND.replace("d=example.com", "d=" + long_d))),
    ("P", "SERVFAIL for the key record", [], [("servfail._domainkey.example.com", "@SERVFAIL")],
     hand(HAND.replace("s=rsa", "s=servfail"))),
    ("Q", "no key record (NXDOMAIN)", [], [], hand(HAND.replace("s=rsa", "s=absent"))),
    ("R", "p= not a key", [], [("ed._domainkey.example.com", "v=DKIM1; k=ed25519; p=AAAA")], ed_signed),
    ("S", "no signature", [], [], MSG),
    ("U", "body changed", [], [("ed._domainkey.example.com", ED)], ed_signed + b"tampered\n"),
    ("V", "ed25519 signature, RSA key record", [], [("ed._domainkey.example.com", RSA)], ed_signed),
    ("W", "v=2", [], [("rsa._domainkey.example.com", RSA)], hand(HAND.replace("v=1", "v=2"))),
    ("X", "a From above the signed ones (not oversigned, by dkimpy)", ["UNSIGNED_FROM="],
     [("ed._domainkey.example.com", ED)],
     from_above(dkimpy(MSG, "ed25519", "ed", "--algo", "ed25519-sha256", "--headers", "from:to:subject"))),
    ("Y", "i= outside d=", [], [("rsa._domainkey.example.com", RSA)], hand(HAND + "; i=joe@other.example")),
]

for n, (letter, what, env, records, msg) in enumerate(CASES, 1):
    head = "# expect: %s\n# %s\n" % (letter, what)
    head += "".join("# env: %s\n" % e for e in env)
    head += "".join("%s %s\n" % r for r in records)
    with open(os.path.join(HERE, "%03d.txt" % n), "wb") as f:
        f.write(head.encode() + b"\n" + msg)
print("wrote %d cases" % len(CASES), file=sys.stderr)
