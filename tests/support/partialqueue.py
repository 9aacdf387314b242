#!/usr/bin/env python3
"""partialqueue.py - a queue program that reads only part of what it is given, for tests of
qmail-dkim's success rule (exit 0 counts only if the message and the whole envelope were read).

    PQ_MSG   bytes of fd 0 (the message) to read; "all" (the default) reads to EOF
    PQ_CLOSE set: close fd 0 after reading PQ_MSG bytes of it (before the envelope)
    PQ_ENV   bytes of fd 1 (the envelope) to read afterwards; "all" reads to EOF; default 0
    PQ_EXIT  exit code; default 0
    PQ_REPORT a file to write, before exiting, "MSG ENV": the bytes read of each
"""

import os
import sys


def read_upto(fd, n):
    got = 0
    while n is None or got < n:
        chunk = os.read(fd, 65536 if n is None else min(65536, n - got))
        if not chunk:
            break
        got += len(chunk)
    return got


def main():
    m = os.environ.get("PQ_MSG", "all")
    got_msg = read_upto(0, None if m == "all" else int(m))
    if os.environ.get("PQ_CLOSE"):
        os.close(0)
    e = os.environ.get("PQ_ENV", "0")
    got_env = read_upto(1, None if e == "all" else int(e))
    report = os.environ.get("PQ_REPORT")
    if report:
        with open(report, "w") as f:
            f.write("%d %d" % (got_msg, got_env))
    sys.exit(int(os.environ.get("PQ_EXIT", "0")))


if __name__ == "__main__":
    main()
