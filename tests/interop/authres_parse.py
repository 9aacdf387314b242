#!/usr/bin/env python3
"""Parse the topmost Authentication-Results header of a message with Python's `authres`
(an independent RFC 8601 parser) and print it as JSON.

Usage: authres_parse.py MSGFILE

Prints {"authserv_id": ..., "results": [{"method": ..., "result": ..., "reason": ...,
"props": {"ptype.property": value, ...}}, ...]}. Exit 1 when the message has no
Authentication-Results header or the parser refuses it, 2 for a usage or file error.
"""

import json
import re
import sys

try:
    import authres
except ImportError as e:  # pragma: no cover
    sys.stderr.write("authres_parse: %s (run .ci/install-test-deps)\n" % e)
    sys.exit(2)


def first_field(msg, name):
    head = re.split(rb"\r?\n\r?\n", msg, 1)[0]
    lines = re.split(rb"\r?\n", head)
    field = None
    for line in lines:
        if field is not None:
            if line[:1] in (b" ", b"\t"):
                field += b" " + line.strip()
                continue
            return field
        if line.lower().startswith(name.lower() + b":"):
            field = line
    return field


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    try:
        with open(sys.argv[1], "rb") as f:
            msg = f.read()
    except OSError as e:
        sys.stderr.write("authres_parse: %s\n" % e)
        return 2
    field = first_field(msg, b"Authentication-Results")
    if field is None:
        sys.stderr.write("authres_parse: no Authentication-Results header\n")
        return 1
    try:
        h = authres.AuthenticationResultsHeader.parse(field.decode("ascii"))
    except Exception as e:  # authres raises its own syntax errors
        sys.stderr.write("authres_parse: %s: %s\n" % (type(e).__name__, e))
        return 1
    out = {"authserv_id": h.authserv_id, "results": []}
    for r in h.results:
        out["results"].append({
            "method": r.method,
            "result": r.result,
            "reason": r.reason,
            "props": {"%s.%s" % (p.type, p.name): p.value for p in r.properties},
        })
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
