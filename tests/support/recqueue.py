#!/usr/bin/env python3
"""recqueue.py - a recording stand-in for qmail-queue, for qmail-dkim's tests.

Follows qmail-queue's protocol: reads fd 0 (the message) to EOF first, then
fd 1 (the envelope: `F`sender`\\0`, `T`rcpt`\\0` ..., a final `\\0`) up to and
including the final `\\0`, validating it as qmail-queue.c does:
    first byte not `F`, or a recipient not starting with `T`  -> exit 91
    EOF before the final `\\0` (or an unreadable fd)           -> exit 54
    an address with no `\\0` within 1003 bytes                 -> exit 11

Recording, in $RECQUEUE_DIR (nothing is recorded when it is unset):
    <pid>-<n>.msg   the message bytes      } only when the envelope was read
    <pid>-<n>.env   the envelope bytes     } completely and validly
    <pid>-<n>.json  always: pid, argv, cwd, DKIMQUEUE (null when unset),
                    the whole environment, mode, exit code, sizes, error
`n` is time.time_ns() at start, so names sort in the order the programs ran.
Each file is written to a temporary name and renamed; the .json is renamed
last, so a complete .json means the .msg/.env beside it are complete too.

Environment:
    RECQUEUE_DIR     where to record
    RECQUEUE_EXIT    exit code after a successful read (default 0)
    RECQUEUE_MODE    fault mode:
        early    exit with RECQUEUE_EXIT at once, reading nothing
        partial  read 1 byte of fd 0, then exit with RECQUEUE_EXIT
        slow     read fd 0 in small pieces with sleeps (about 1 s in all)
        kill     read and record everything, then SIGKILL itself
        hang     sleep RECQUEUE_SLEEP seconds (default 30) before reading
        late     read and record everything, then sleep RECQUEUE_SLEEP seconds
                 (default 30) before exiting (the .json is written at the end)
    RECQUEUE_STDERR  text written to fd 2 just before exiting (custom errors)
    RECQUEUE_FD6     text written to fd 6 (if open) just before exiting
"""

import json
import os
import signal
import sys
import time

ADDR = 1003


class EnvelopeError(Exception):
    def __init__(self, code, why):
        Exception.__init__(self, why)
        self.code = code


class FdReader:
    """Buffered reader of a raw fd that reports EOF and read errors."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.pos = 0
        self.data = bytearray()

    def getc(self):
        if self.pos >= len(self.buf):
            try:
                self.buf = os.read(self.fd, 4096)
            except OSError as e:
                raise EnvelopeError(54, "read error on fd %d: %s" % (self.fd, e))
            self.pos = 0
            if not self.buf:
                raise EnvelopeError(54, "EOF before the end of the envelope")
        c = self.buf[self.pos]
        self.pos += 1
        self.data.append(c)
        return c


def read_address(r):
    for _ in range(ADDR):
        if r.getc() == 0:
            return
    raise EnvelopeError(11, "address too long")


def read_envelope(r):
    if r.getc() != ord("F"):
        raise EnvelopeError(91, "envelope does not start with F")
    read_address(r)
    while True:
        c = r.getc()
        if c == 0:
            return
        if c != ord("T"):
            raise EnvelopeError(91, "recipient does not start with T")
        read_address(r)


def read_message(slow):
    chunks = []
    slept = 0.0
    while True:
        size = 64 if slow and slept < 1.0 else 65536
        try:
            chunk = os.read(0, size)
        except OSError as e:
            raise EnvelopeError(54, "read error on fd 0: %s" % e)
        if not chunk:
            break
        chunks.append(chunk)
        if slow and slept < 1.0:
            time.sleep(0.02)
            slept += 0.02
    return b"".join(chunks)


def write_atomic(path, data):
    tmp = "%s.tmp" % path
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def int_env(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def main():
    t0 = time.time_ns()
    rdir = os.environ.get("RECQUEUE_DIR")
    mode = os.environ.get("RECQUEUE_MODE", "")
    exit_code = int_env("RECQUEUE_EXIT", 0)
    base = os.path.join(rdir, "%d-%d" % (os.getpid(), t0)) if rdir else None
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    info = {
        "pid": os.getpid(),
        "argv": sys.argv,
        "cwd": cwd,
        "DKIMQUEUE": os.environ.get("DKIMQUEUE"),
        "environ": dict(os.environ),
        "mode": mode,
        "exit": exit_code,
        "msg_len": None,
        "env_len": None,
        "complete": False,
        "error": None,
    }

    def finish(code):
        info["exit"] = code
        if base:
            write_atomic(base + ".json",
                         json.dumps(info, sort_keys=True, indent=1).encode())
        text = os.environ.get("RECQUEUE_STDERR")
        if text:
            try:
                os.write(2, text.encode("utf-8", "surrogateescape"))
            except OSError:
                pass
        text = os.environ.get("RECQUEUE_FD6")
        if text:
            try:
                os.write(6, text.encode("utf-8", "surrogateescape"))
            except OSError:
                pass
        sys.exit(code)

    if mode == "early":
        finish(exit_code)
    sleep = min(float(os.environ.get("RECQUEUE_SLEEP", "30") or 30), 600)
    if mode == "hang":
        time.sleep(sleep)
    if mode == "partial":
        try:
            info["msg_len"] = len(os.read(0, 1))
        except OSError as e:
            info["error"] = str(e)
        finish(exit_code)

    try:
        msg = read_message(mode == "slow")
        info["msg_len"] = len(msg)
        r = FdReader(1)
        try:
            read_envelope(r)
        finally:
            info["env_len"] = len(r.data)
    except EnvelopeError as e:
        info["error"] = str(e)
        finish(e.code)

    info["complete"] = True
    if base:
        write_atomic(base + ".msg", msg)
        write_atomic(base + ".env", bytes(r.data))
    if mode == "kill":
        info["exit"] = None
        info["killed"] = True
        if base:
            write_atomic(base + ".json",
                         json.dumps(info, sort_keys=True, indent=1).encode())
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "late":
        time.sleep(sleep)
    finish(exit_code)


if __name__ == "__main__":
    main()
