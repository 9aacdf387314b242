#!/usr/bin/env bash
# The main job on a fresh machine, no qmail needed: build, make a key with dknewkey, sign a
# sample message through qmail-dkim into a recording qmail-queue stand-in, then verify the
# signed message with qmail-dkim (key from SELECTOR_DATA, no DNS) and show the headers.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/control/domainkeys/example.com" "$work/queue"
"$bin/dknewkey" -d example.com "$work/control/domainkeys/example.com/default" >/dev/null
record=$(grep "^'" "$work/control/domainkeys/example.com/default.pub" | head -1 | cut -d: -f2)
printf 'From: Demo <demo@example.com>\nTo: you@example.org\nSubject: qmail-dkim demo\n\nHello from qmail-dkim.\n' > "$work/msg"
printf 'Fdemo@example.com\0Tyou@example.org\0\0' > "$work/env"

echo "== signing (RELAYCLIENT set: a relay client's message) =="
RECQUEUE_DIR=$work/queue DKIMQUEUE=$PWD/tests/support/recqueue.py CONTROLDIR=$work/control RELAYCLIENT= \
    "$bin/qmail-dkim" < "$work/msg" 1< "$work/env"
cp "$(ls "$work"/queue/*.msg | head -1)" "$work/signed"
signed=$work/signed
cat "$signed"

echo "== verifying (no RELAYCLIENT: the world's message) =="
rm -f "$work"/queue/*
RECQUEUE_DIR=$work/queue DKIMQUEUE=$PWD/tests/support/recqueue.py CONTROLDIR=$work/control \
    DKIMVERIFY=FGHIKLMNOQRTUVWjp SELECTOR_DATA="$record" AUTHSERV_ID=mx.example.org \
    "$bin/qmail-dkim" < "$signed" 1< "$work/env"
grep -E '^(DKIM-Status|Authentication-Results):' -A1 "$(ls "$work"/queue/*.msg | head -1)" || true
echo "== done: exit codes 0, message queued twice =="
