#!/usr/bin/env python3
"""recremote.py - a recording stand-in for qmail-remote, for qmail-dkim-remote's tests.

Started as qmail-rspawn starts qmail-remote (`host sender recipient...`, the message on
fd 0). Records in $RECREMOTE_DIR (nothing when unset):
    msg    the bytes read from fd 0 (from its offset at start to EOF, streamed)
    json   argv (argv[0] first), the whole environment, cwd, and what fd 0 was:
           regular (a regular file), offset (its offset at start), size (st_size)
Then writes $RECREMOTE_RESULT to fd 1 (Python escapes, e.g. 'rok\\0Kdone\\0'; default:
one `r` report per recipient and `K...`, each ending in NUL, as qmail-remote does) and
exits with $RECREMOTE_EXIT (default 0).
"""
import json, os, stat, sys

def main():
    d = os.environ.get("RECREMOTE_DIR")
    st = os.fstat(0)
    regular = stat.S_ISREG(st.st_mode)
    offset = os.lseek(0, 0, os.SEEK_CUR) if regular else None
    n = 0
    out = open(os.path.join(d, "msg.tmp"), "wb") if d else None
    while True:
        b = os.read(0, 1 << 20)
        if not b:
            break
        n += len(b)
        if out:
            out.write(b)
    if out:
        out.close()
        os.rename(os.path.join(d, "msg.tmp"), os.path.join(d, "msg"))
        rec = {"argv": sys.argv, "environ": dict(os.environ), "cwd": os.getcwd(),
               "regular": regular, "offset": offset, "size": st.st_size, "len": n}
        with open(os.path.join(d, "json.tmp"), "w") as f:
            json.dump(rec, f)
        os.rename(os.path.join(d, "json.tmp"), os.path.join(d, "json"))
    r = os.environ.get("RECREMOTE_RESULT")
    if r is None:
        res = b"".join(b"r" + b"ok " + a.encode() + b"\n\0" for a in sys.argv[3:]) + b"Kdelivered\n\0"
    else:
        res = r.encode("latin-1").decode("unicode_escape").encode("latin-1")
    os.write(1, res)
    sys.exit(int(os.environ.get("RECREMOTE_EXIT", "0")))

main()
