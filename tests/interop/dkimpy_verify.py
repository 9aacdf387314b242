#!/usr/bin/env python3
"""Verify every DKIM-Signature of a message with dkimpy, keys from a loopback DNS server.

Usage: dkimpy_verify.py MSGFILE --dns 127.0.0.1:PORT [--minkey BITS] [--timeout S] [--debug]

MSGFILE may use LF (qmail's form) or CRLF line ends; LF is turned into CRLF
(an existing CRLF stays as it is) before verifying, as that is the wire form.
Prints one line per signature, topmost first:
    <index> d=<domain> s=<selector> a=<algorithm> PASS|FAIL [<reason>]
Exit 0 only if there is at least one signature and every one passes; 1 when
a signature fails or there is none; 2 for a usage or file error.
"""

import argparse
import logging
import re
import sys

try:
    import dkim
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
except ImportError as e:  # pragma: no cover
    sys.stderr.write("dkimpy_verify: %s (run .ci/install-test-deps)\n" % e)
    sys.exit(2)


def make_dnsfunc(host, port, log, limit):
    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        q = dns.message.make_query(name, dns.rdatatype.TXT)
        t = min(float(timeout), limit)
        try:
            resp = dns.query.udp(q, host, port=port, timeout=t)
            if resp.flags & dns.flags.TC:
                resp = dns.query.tcp(q, host, port=port, timeout=t)
        except dns.exception.Timeout as e:
            raise dkim.DnsTimeoutError("timeout asking %s: %s" % (name, e))
        except OSError as e:
            raise dkim.DnsTimeoutError("cannot ask %s: %s" % (name, e))
        rcode = resp.rcode()
        log.append("%s %s %s" % (name, dns.rcode.to_text(rcode), len(resp.answer)))
        if rcode == dns.rcode.NXDOMAIN:
            return None
        if rcode != dns.rcode.NOERROR:
            raise dkim.DnsTimeoutError("%s for %s" % (dns.rcode.to_text(rcode), name))
        for rrset in resp.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                # dkimpy uses the first TXT record, strings concatenated.
                return b"".join(list(rrset.items)[0].strings)
        return None
    return dnsfunc


def tag(sigvalue, name):
    m = re.search(rb"(?:^|;)\s*" + name + rb"\s*=\s*([^;]*)", sigvalue)
    return re.sub(rb"\s+", b"", m.group(1)).decode("ascii", "replace") if m else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("msgfile")
    ap.add_argument("--dns", required=True, help="127.0.0.1:PORT")
    ap.add_argument("--minkey", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="seconds to wait for each DNS answer (default 3)")
    ap.add_argument("--debug", action="store_true")
    args = ap.parse_args()

    host, _, port = args.dns.rpartition(":")
    try:
        port = int(port)
        with open(args.msgfile, "rb") as f:
            raw = f.read()
    except (ValueError, OSError) as e:
        sys.stderr.write("dkimpy_verify: %s\n" % e)
        return 2
    msg = re.sub(rb"\r?\n", b"\r\n", raw)

    logger = logging.getLogger("dkimpy_verify")
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    # Keep dkimpy's own complaints (it logs, then returns False) as the reason.
    complaints = []

    class Keep(logging.Handler):
        def emit(self, record):
            complaints.append(record.getMessage())

    keep = Keep(level=logging.INFO)
    logger.addHandler(keep)
    if not args.debug:
        logger.setLevel(logging.INFO)
        logger.propagate = False
    dnslog = []
    dnsfunc = make_dnsfunc(host.strip("[]"), port, dnslog, args.timeout)

    d = dkim.DKIM(msg, logger=logger, minkey=args.minkey)
    sigs = [v for (k, v) in d.headers if k.lower() == b"dkim-signature"]
    if not sigs:
        print("no DKIM-Signature")
        return 1
    all_ok = True
    for i, value in enumerate(sigs):
        reason = ""
        del complaints[:]
        try:
            d = dkim.DKIM(msg, logger=logger, minkey=args.minkey)
            ok = bool(d.verify(idx=i, dnsfunc=dnsfunc))
            if not ok:
                reason = complaints[-1] if complaints else "signature did not verify"
        except dkim.DKIMException as e:
            ok = False
            reason = "%s: %s" % (type(e).__name__, e)
        except Exception as e:  # a crash in dkimpy is a failure, not a pass
            ok = False
            reason = "exception %s: %s" % (type(e).__name__, e)
        all_ok = all_ok and ok
        line = "%d d=%s s=%s a=%s %s" % (i, tag(value, b"d"), tag(value, b"s"),
                                         tag(value, b"a"), "PASS" if ok else "FAIL")
        if reason:
            line += " " + reason.replace("\n", " ")
        print(line)
    if args.debug:
        for l in dnslog:
            sys.stderr.write("dns: %s\n" % l)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
