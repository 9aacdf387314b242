#!/usr/bin/env bash
# The main job on a fresh machine, no qmail needed: build, make a key with dknewkey, sign a
# sample message through qmail-dkim into a recording qmail-queue stand-in, then verify the
# signed message with qmail-dkim (key from SELECTOR_DATA, no DNS) and show the headers; then
# publish the key, an SPF and a DMARC record on a loopback DNS server (tests/support/dnsd.py,
# Python's standard library only) and check SPF, DKIM and DMARC in one pass: the signed message
# passes, an unsigned one from another address claiming the same From is refused by p=reject.
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

echo "== SPF, DKIM and DMARC from 127.0.0.1, records on a loopback DNS server =="
printf 'default._domainkey.example.com\t%s\nexample.com\tv=spf1 ip4:127.0.0.1 -all\n_dmarc.example.com\tv=DMARC1; p=reject\n' \
    "$record" > "$work/zone"
python3 tests/support/dnsd.py --zone "$work/zone" --port-file "$work/port" --lifetime 120 > /dev/null &
dnsd=$!
trap 'kill $dnsd 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
checks() {
    RECQUEUE_DIR=$work/queue DKIMQUEUE=$PWD/tests/support/recqueue.py CONTROLDIR=$work/control \
        DKIMVERIFY= SPFVERIFY= DMARCVERIFY=Rt AUTHSERV_ID=mx.example.org CUSTOM_ERRORS=none \
        DNSCACHEIP=127.0.0.1:$(cat "$work/port") TCPREMOTEIP=$1 "$bin/qmail-dkim" < "$2" 1< "$work/env"
}
rm -f "$work"/queue/*
checks 127.0.0.1 "$signed"
sed -n '/^Authentication-Results:/,/^[^[:space:]A]/p' "$(ls "$work"/queue/*.msg | head -1)" | sed '$d'
echo "== the same From, unsigned, from 192.0.2.9: SPF fails, no DKIM, DMARC p=reject: refused (exit 31) =="
code=0
checks 192.0.2.9 "$work/msg" 2> "$work/err" || code=$?
cat "$work/err"
[ "$code" = 31 ] || { echo "expected exit 31, got $code"; exit 1; }
echo "== done: exit codes 0, the message queued three times, the forgery refused =="
