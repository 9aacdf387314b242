#!/usr/bin/env python3
"""partialqueue.py - a queue program that reads only part of what it is given, for tests of
qmail-dkim's success rule (exit 0 counts only if the message and the whole envelope were read).

    PQ_MSG   bytes of fd 0 (the message) to read; "all" (the default) reads to EOF
    PQ_ENV   bytes of fd 1 (the envelope) to read afterwards; default 0
    PQ_EXIT  exit code; default 0
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
    read_upto(0, None if m == "all" else int(m))
    read_upto(1, int(os.environ.get("PQ_ENV", "0")))
    sys.exit(int(os.environ.get("PQ_EXIT", "0")))


if __name__ == "__main__":
    main()
