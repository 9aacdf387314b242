#!/usr/bin/env python3
"""Sign a message with dkimpy and print it, with LF line ends, on stdout.

Usage: dkimpy_sign.py MSGFILE --key KEY --selector S --domain D
                      [--canon relaxed/relaxed] [--algo rsa-sha256|ed25519-sha256|rsa-sha1]
                      [--headers from:to:subject] [--identity @sub.example.com] [--length]

KEY: an RSA private key in PEM (PKCS#1 or PKCS#8, as `openssl genpkey` makes),
or for ed25519 either OpenSSL's PKCS#8 PEM (`openssl genpkey -algorithm ed25519`)
or dkimpy's own form (base64 of the 32-byte seed).
The input may use LF or CRLF line ends; it is signed in its CRLF wire form and
printed (signature first, then the message) with LF line ends.
Default headers: dkimpy's own choice (its recommended list, those present).
"""

import argparse
import base64
import re
import sys

try:
    import dkim
except ImportError as e:  # pragma: no cover
    sys.stderr.write("dkimpy_sign: %s (run .ci/install-test-deps)\n" % e)
    sys.exit(2)

# DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410); the seed follows.
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


def ed25519_seed_b64(keydata):
    m = re.search(rb"-----BEGIN PRIVATE KEY-----(.*?)-----END PRIVATE KEY-----",
                  keydata, re.DOTALL)
    if not m:
        return keydata.strip()  # dkimpy's own base64 seed form
    der = base64.b64decode(re.sub(rb"\s+", b"", m.group(1)))
    if der.startswith(ED25519_PKCS8_PREFIX) and len(der) == 48:
        return base64.b64encode(der[16:])
    # PKCS#8 v2 (with the public key appended) also starts with the seed
    # at the same place after a slightly different header.
    i = der.find(bytes.fromhex("04220420"))
    if i < 0:
        raise SystemExit("dkimpy_sign: not an Ed25519 PKCS#8 key")
    return base64.b64encode(der[i + 4:i + 36])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("msgfile")
    ap.add_argument("--key", required=True)
    ap.add_argument("--selector", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--canon", default="relaxed/relaxed")
    ap.add_argument("--algo", default="rsa-sha256",
                    choices=["rsa-sha256", "ed25519-sha256", "rsa-sha1"])
    ap.add_argument("--headers", help="colon-separated list of header names to sign")
    ap.add_argument("--identity")
    ap.add_argument("--length", action="store_true", help="add l=")
    args = ap.parse_args()

    with open(args.msgfile, "rb") as f:
        raw = f.read()
    with open(args.key, "rb") as f:
        key = f.read()
    if args.algo == "ed25519-sha256":
        key = ed25519_seed_b64(key)
    msg = re.sub(rb"\r?\n", b"\r\n", raw)
    canon = args.canon.encode().split(b"/")
    if len(canon) == 1:
        canon.append(b"simple")
    kw = {}
    if args.headers:
        kw["include_headers"] = [h.strip().encode() for h in args.headers.split(":") if h.strip()]
    if args.identity:
        kw["identity"] = args.identity.encode()
    sig = dkim.sign(msg, args.selector.encode(), args.domain.encode(), key,
                    signature_algorithm=args.algo.encode(),
                    canonicalize=(canon[0], canon[1]), length=args.length, **kw)
    out = re.sub(rb"\r\n", b"\n", sig + msg)
    sys.stdout.buffer.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
