#!/usr/bin/env python3
"""Seal a message with dkimpy's ARC sealer, or validate its ARC chain with dkimpy.

Usage: dkimpy_arc.py sign MSGFILE --key KEY --selector S --domain D --srv-id ID [--timestamp T]
       dkimpy_arc.py verify MSGFILE --dns 127.0.0.1:PORT

sign: dkim.arc_sign() with the Authentication-Results fields of authserv-id ID in the message
(dkimpy takes cv= from their arc= result, and seals nothing without one); prints the new ARC
set and the message, LF line ends. Exit 1 when dkimpy adds no set.
verify: dkim.arc_verify(), keys from the loopback DNS server; prints `cv=<result> <reason>`.
Exit 0 only for cv=pass.
MSGFILE may use LF or CRLF line ends; dkimpy gets the CRLF wire form.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import dkim
    from dkimpy_verify import make_dnsfunc
except ImportError as e:  # pragma: no cover
    sys.stderr.write("dkimpy_arc: %s (run .ci/install-test-deps)\n" % e)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["sign", "verify"])
    ap.add_argument("msgfile")
    ap.add_argument("--key")
    ap.add_argument("--selector")
    ap.add_argument("--domain")
    ap.add_argument("--srv-id")
    ap.add_argument("--timestamp")
    ap.add_argument("--dns")
    args = ap.parse_args()
    with open(args.msgfile, "rb") as f:
        msg = re.sub(rb"\r?\n", b"\r\n", f.read())
    if args.action == "sign":
        with open(args.key, "rb") as f:
            key = f.read()
        fields = dkim.arc_sign(msg, args.selector.encode(), args.domain.encode(), key,
                               args.srv_id.encode(), timestamp=args.timestamp)
        if not fields:
            sys.stderr.write("dkimpy_arc: no ARC set added\n")
            return 1
        sys.stdout.buffer.write(re.sub(rb"\r\n", b"\n", b"".join(fields) + msg))
        return 0
    host, _, port = args.dns.rpartition(":")
    dnsfunc = make_dnsfunc(host.strip("[]"), int(port), [], 3.0)
    cv, results, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc)
    cv = cv.decode() if isinstance(cv, bytes) else str(cv)
    print("cv=%s %s" % (cv, reason))
    return 0 if cv == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
