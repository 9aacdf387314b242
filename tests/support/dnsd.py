#!/usr/bin/env python3
"""dnsd.py - a small authoritative DNS server for qmail-dkim's tests.

Loopback only (127.0.0.1), UDP and TCP on the same port, Python 3 stdlib only.

Usage:
    dnsd.py --zone FILE --port-file FILE [--port N] [--log FILE]
            [--exit-on-stdin-eof] [--lifetime SECONDS]

Zone file (re-read on every query, so tests may rewrite it at any time; write
it to a temporary name and rename it over the old one): one record a line,

    name<TAB>text

`name` is matched case-insensitively, without a trailing dot. `text` is the
whole TXT value; the server splits it into character-strings of at most 255
bytes. Several lines with the same name are several TXT records. Blank lines
and lines starting with `#` are ignored. Special values of `text`:

    @SERVFAIL      answer with rcode 2 (SERVFAIL), no records
    @NXDOMAIN      answer with rcode 3 (NXDOMAIN)
    @REFUSED       answer with rcode 5 (REFUSED)
    @TIMEOUT       never answer (UDP: drop; TCP: keep the connection silent)
    @TIMEOUT-NODATA  never answer a question of a type this name has no
                   records of; answer the others
    @TRUNC         over UDP answer TC=1 with no records; over TCP serve the
                   other (ordinary) lines of the same name
    @RDATA:<hex>   one TXT record whose RDATA is exactly these bytes (to serve
                   malformed or hand-split character-strings)
    @A:<ipv4>      an A record          @AAAA:<ipv6>   an AAAA record
    @MX:<pref> <host>                   @PTR:<host>    an MX or PTR record
                   (for SPF: a question of one type gets only the records of
                   that type; a name with records of other types only is NODATA)
    @CNAME:<host>  an alias: a question of another type is answered with the
                   CNAME and, as an authoritative server does, the records of
                   the target when it is in the zone (chains followed, at most
                   8 links; a loop ends the chain)

A name not in the zone gets NXDOMAIN, unless a name below it is in the zone (an
empty non-terminal, such as _domainkey.example.com below sel._domainkey.example.com):
that one exists, and gets NOERROR with no answer (NODATA), as does a question of
another type for a known name. Answers over UDP larger than 512 bytes (or
the EDNS payload size the client advertised, if larger) are sent truncated
(TC=1, no records), as a real server does, so clients fall back to TCP.

Once both sockets listen, the port number is written (atomically) to
--port-file. With --log, one line per query is appended:
    <udp|tcp> <qname as asked> <qtype number> <outcome>
The server runs until killed; SIGTERM and SIGINT make it exit cleanly.
"""

import argparse
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

TYPE_A = 1
TYPE_CNAME = 5
TYPE_PTR = 12
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_OPT = 41
CLASS_IN = 1
MAX_POINTERS = 64

_log_lock = threading.Lock()


class Malformed(Exception):
    pass


def read_name(pkt, off):
    """Read a (possibly compressed) domain name. Returns (labels, next_off)."""
    labels = []
    jumps = 0
    end = None  # offset after the name in the original position
    total = 0
    while True:
        if off >= len(pkt):
            raise Malformed("name runs past end")
        n = pkt[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(pkt):
                raise Malformed("truncated pointer")
            ptr = ((n & 0x3F) << 8) | pkt[off + 1]
            if end is None:
                end = off + 2
            jumps += 1
            if jumps > MAX_POINTERS or ptr >= len(pkt):
                raise Malformed("bad pointer")
            off = ptr
            continue
        if n & 0xC0:
            raise Malformed("unsupported label type")
        off += 1
        if n == 0:
            break
        if off + n > len(pkt):
            raise Malformed("label runs past end")
        labels.append(bytes(pkt[off:off + n]))
        total += n + 1
        if total > 255:
            raise Malformed("name too long")
        off += n
    return labels, (end if end is not None else off)


def load_zone(path):
    """Return {lowercased name: [text, ...]} (text as bytes)."""
    zone = {}
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return zone
    for line in data.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line or line.startswith(b"#"):
            continue
        if b"\t" not in line:
            continue
        name, text = line.split(b"\t", 1)
        name = name.strip().rstrip(b".").lower()
        zone.setdefault(name, []).append(text)
    return zone


def is_empty_non_terminal(zone, key):
    """Whether a name without records of its own has a name below it (RFC 8020: it exists, so
    a server answers NOERROR with no records, not NXDOMAIN). A name whose only line is
    @NXDOMAIN does not exist, and makes nothing above it exist."""
    below = b"." + key if key else b""
    return any(name.endswith(below) and name != key and texts != [b"@NXDOMAIN"]
               for name, texts in zone.items())


def txt_rdata(text):
    if text.startswith(b"@RDATA:"):
        try:
            return bytes.fromhex(text[7:].decode("ascii"))
        except ValueError:
            return b""
    if not text:
        return b"\x00"
    out = bytearray()
    for i in range(0, len(text), 255):
        chunk = text[i:i + 255]
        out.append(len(chunk))
        out += chunk
    return bytes(out)


class Query:
    def __init__(self, pkt):
        if len(pkt) < 12:
            raise Malformed("short header")
        (self.id, self.flags, qd, an, ns, ar) = struct.unpack("!6H", pkt[:12])
        if self.flags & 0x8000:
            raise Malformed("a response, not a query")
        self.opcode = (self.flags >> 11) & 0xF
        self.rd = self.flags & 0x0100
        self.qdcount = qd
        self.edns_size = None
        self.qlabels = None
        self.qname_wire = b""
        if qd != 1:
            return
        labels, off = read_name(pkt, 12)
        if off + 4 > len(pkt):
            raise Malformed("short question")
        self.qtype, self.qclass = struct.unpack("!HH", pkt[off:off + 4])
        self.qlabels = labels
        # Echo the question uncompressed, with the case the client used.
        self.qname_wire = b"".join(bytes([len(l)]) + l for l in labels) + b"\x00"
        off += 4
        # Skip answer and authority sections, find OPT in additional.
        try:
            for _ in range(an + ns):
                off = self._skip_rr(pkt, off)[0]
            for _ in range(ar):
                off, rtype, rclass = self._skip_rr(pkt, off)
                if rtype == TYPE_OPT:
                    self.edns_size = max(512, rclass)
        except Malformed:
            pass  # ignore garbage after the question

    @staticmethod
    def _skip_rr(pkt, off):
        _, off = read_name(pkt, off)
        if off + 10 > len(pkt):
            raise Malformed("short rr")
        rtype, rclass, _ttl, rdlen = struct.unpack("!HHIH", pkt[off:off + 10])
        off += 10 + rdlen
        if off > len(pkt):
            raise Malformed("rdata runs past end")
        return off, rtype, rclass

    def qname_text(self):
        return b".".join(self.qlabels).decode("latin-1")

    def key(self):
        return b".".join(self.qlabels).lower()


def encode_name(host):
    out = bytearray()
    for label in host.rstrip(b".").split(b"."):
        if label:
            out.append(len(label))
            out += label
    out.append(0)
    return bytes(out)


TYPED = {b"@A:": TYPE_A, b"@AAAA:": TYPE_AAAA, b"@MX:": TYPE_MX, b"@PTR:": TYPE_PTR, b"@CNAME:": TYPE_CNAME}


def typed_record(text):
    """(type, rdata) of an @A:/@AAAA:/@MX:/@PTR:/@CNAME: line, else None."""
    for prefix, rtype in TYPED.items():
        if text.startswith(prefix):
            v = text[len(prefix):].strip()
            if rtype == TYPE_A:
                return rtype, socket.inet_pton(socket.AF_INET, v.decode())
            if rtype == TYPE_AAAA:
                return rtype, socket.inet_pton(socket.AF_INET6, v.decode())
            if rtype == TYPE_MX:
                pref, host = v.split(None, 1)
                return rtype, struct.pack("!H", int(pref)) + encode_name(host)
            return rtype, encode_name(v)
    return None


def build_response(q, rcode, records, tc=False, aa=True):
    flags = 0x8000 | (q.opcode << 11) | q.rd | (rcode & 0xF)
    if aa:
        flags |= 0x0400
    if tc:
        flags |= 0x0200
    has_q = q.qlabels is not None
    header = struct.pack("!6H", q.id, flags, 1 if has_q else 0, len(records), 0, 0)
    body = bytearray()
    if has_q:
        body += q.qname_wire + struct.pack("!HH", q.qtype, q.qclass)
    for rec in records:
        owner = b"\xc0\x0c"  # pointer to the question name at offset 12
        if isinstance(rec, tuple) and len(rec) == 3:
            owner, rtype, rdata = rec
        else:
            rtype, rdata = rec if isinstance(rec, tuple) else (TYPE_TXT, rec)
        body += owner
        body += struct.pack("!HHIH", rtype, CLASS_IN, 0, len(rdata))
        body += rdata
    return header + bytes(body)


def answer(pkt, proto, zone_path):
    """Return (response bytes or None, outcome text, query or None)."""
    try:
        q = Query(pkt)
    except Malformed as e:
        return None, "malformed(%s)" % e, None
    if q.opcode != 0:
        return build_response(q, 4, [], aa=False), "NOTIMP", q
    if q.qlabels is None:
        return build_response(q, 1, [], aa=False), "FORMERR", q
    zone = load_zone(zone_path)
    texts = zone.get(q.key())
    if texts is None:
        if is_empty_non_terminal(zone, q.key()):
            return build_response(q, 0, []), "NODATA", q
        return build_response(q, 3, []), "NXDOMAIN", q
    if q.qtype != TYPE_CNAME and any(t.startswith(b"@CNAME:") for t in texts):
        return cname_chain(q, zone, texts)
    typed = [r for r in (typed_record(t) for t in texts) if r is not None]
    texts = [t for t in texts if typed_record(t) is None]
    specials = [t for t in texts if t.startswith(b"@") and not t.startswith(b"@RDATA:")]
    plain = [t for t in texts if not (t.startswith(b"@") and not t.startswith(b"@RDATA:"))]
    if b"@TIMEOUT-NODATA" in specials:
        has_txt = q.qtype in (TYPE_TXT, 255) and plain
        if not has_txt and not any(r[0] == q.qtype for r in typed):
            return None, "TIMEOUT", q
    for s in specials:
        if s == b"@TIMEOUT":
            return None, "TIMEOUT", q
        if s == b"@SERVFAIL":
            return build_response(q, 2, [], aa=False), "SERVFAIL", q
        if s == b"@NXDOMAIN":
            return build_response(q, 3, []), "NXDOMAIN", q
        if s == b"@REFUSED":
            return build_response(q, 5, [], aa=False), "REFUSED", q
    if b"@TRUNC" in specials and proto == "udp":
        return build_response(q, 0, [], tc=True), "TRUNC", q
    if q.qclass not in (CLASS_IN, 255):
        return build_response(q, 0, []), "NODATA", q
    if q.qtype != TYPE_TXT and q.qtype != 255:
        recs = [r for r in typed if r[0] == q.qtype]
        if not recs:
            return build_response(q, 0, []), "NODATA", q
        return build_response(q, 0, recs), "NOERROR(%d)" % len(recs), q
    resp = build_response(q, 0, [txt_rdata(t) for t in plain])
    if proto == "udp":
        limit = q.edns_size or 512
        if len(resp) > limit:
            return build_response(q, 0, [], tc=True), "TC(size %d)" % len(resp), q
    return resp, "NOERROR(%d)" % len(plain), q


def cname_chain(q, zone, texts):
    """The CNAME records from the question name on, then the target's records of the type."""
    records, seen, owner, key = [], {q.key()}, b"\xc0\x0c", q.key()
    for _ in range(8):
        target = next(t for t in texts if t.startswith(b"@CNAME:"))[7:].strip().rstrip(b".")
        wire = encode_name(target)
        records.append((owner, TYPE_CNAME, wire))
        owner, key = wire, target.lower()
        texts = zone.get(key)
        if key in seen or texts is None or any(t.startswith(b"@") and t[1:5] in (b"TIME", b"SERV")
                                                for t in texts):
            break
        seen.add(key)
        if not any(t.startswith(b"@CNAME:") for t in texts):
            if q.qtype == TYPE_TXT:
                records += [(owner, TYPE_TXT, txt_rdata(t)) for t in texts
                            if not t.startswith(b"@") or t.startswith(b"@RDATA:")]
            else:
                records += [(owner,) + r for r in (typed_record(t) for t in texts)
                            if r is not None and r[0] == q.qtype]
            break
    return build_response(q, 0, records), "CNAME(%d)" % len(records), q


def log(path, proto, q, outcome):
    if not path:
        return
    if q is not None and q.qlabels is not None:
        name, qtype = q.qname_text(), q.qtype
    else:
        name, qtype = "-", 0
    with _log_lock:
        try:
            with open(path, "a", encoding="latin-1") as f:
                f.write("%s %s %d %s\n" % (proto, name, qtype, outcome))
        except OSError:
            pass


def serve_udp(sock, args):
    while True:
        try:
            pkt, peer = sock.recvfrom(65535)
        except InterruptedError:
            continue
        except OSError:
            return
        try:
            resp, outcome, q = answer(pkt, "udp", args.zone)
            log(args.log, "udp", q, outcome)
            if resp is not None:
                sock.sendto(resp, peer)
        except Exception as e:  # never crash on one query
            log(args.log, "udp", None, "internal-error(%r)" % e)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def handle_tcp(conn, args):
    try:
        conn.settimeout(30)
        while True:
            head = recv_exact(conn, 2)
            if head is None:
                return
            (n,) = struct.unpack("!H", head)
            pkt = recv_exact(conn, n)
            if pkt is None:
                return
            try:
                resp, outcome, q = answer(pkt, "tcp", args.zone)
            except Exception as e:
                log(args.log, "tcp", None, "internal-error(%r)" % e)
                return
            log(args.log, "tcp", q, outcome)
            if resp is None:
                if outcome == "TIMEOUT":
                    # Stay silent until the client gives up and closes.
                    while conn.recv(4096):
                        pass
                return
            conn.sendall(struct.pack("!H", len(resp)) + resp)
    except (OSError, socket.timeout):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def serve_tcp(sock, args):
    while True:
        try:
            conn, _ = sock.accept()
        except InterruptedError:
            continue
        except OSError:
            return
        t = threading.Thread(target=handle_tcp, args=(conn, args), daemon=True)
        t.start()


def bind_both(port):
    """Bind UDP and TCP on 127.0.0.1 at one port number (0 = pick one)."""
    for _ in range(200):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            if port:
                raise
            continue
        chosen = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", chosen))
            tcp.listen(64)
        except OSError:
            tcp.close()
            udp.close()
            if port:
                raise
            continue
        return udp, tcp, chosen
    raise OSError("could not bind UDP and TCP on one port")


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zone", required=True)
    ap.add_argument("--port-file")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="exit when fd 0 reaches EOF (the parent died)")
    ap.add_argument("--lifetime", type=float, default=0,
                    help="exit after this many seconds (0 = never)")
    args = ap.parse_args()

    def bye(signum, frame):
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)

    udp, tcp, port = bind_both(args.port)
    threading.Thread(target=serve_udp, args=(udp, args), daemon=True).start()
    threading.Thread(target=serve_tcp, args=(tcp, args), daemon=True).start()
    if args.port_file:
        write_port_file(args.port_file, port)
    else:
        print(port, flush=True)

    deadline = time.monotonic() + args.lifetime if args.lifetime > 0 else None
    while True:
        timeout = 1.0
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                os._exit(0)
            timeout = min(timeout, left)
        if args.exit_on_stdin_eof:
            try:
                r, _, _ = select.select([0], [], [], timeout)
                if r and not os.read(0, 4096):
                    os._exit(0)
            except OSError:
                os._exit(0)
        else:
            time.sleep(timeout)


if __name__ == "__main__":
    main()
