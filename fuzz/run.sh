#!/bin/sh
# Runs every fuzz target for the given number of seconds (default 60) and prints, per target,
# the executions and what was found: crashes (and leaks), timeouts (one input running longer
# than FUZZ_TIMEOUT seconds, default 2), out-of-memory (RSS over FUZZ_RSS_MB, default 2048, or
# one allocation that large) and slow units (an input over FUZZ_SLOW seconds, default 1).
# A slow or memory-hungry input is a failure like a crash: every parser must be linear in time
# and bounded in memory (docs/security.md).
#
#   fuzz/run.sh [seconds-per-target] [target...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes nightly-only flags
# (-Zsanitizer=address): a nightly toolchain is used when rustup has one, else the stable one
# with RUSTC_BOOTSTRAP=1.
#
# The corpus grows in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>); findings land in
# fuzz/artifacts/<target>/ (crash-*, leak-*, timeout-*, oom-*, slow-unit-*) and libFuzzer's
# output in fuzz/logs/<target>.log. Exit status: 0 nothing found, 1 something found, 2 the
# fuzzers could not be built or run.
set -u
cd "$(dirname "$0")"
secs=${1:-60}
[ $# -gt 0 ] && shift
timeout=${FUZZ_TIMEOUT:-2}
rss=${FUZZ_RSS_MB:-2048}
slow=${FUZZ_SLOW:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 2
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz() { cargo +nightly fuzz "$@"; }
else
    export RUSTC_BOOTSTRAP=1
    fuzz() { cargo fuzz "$@"; }
fi
targets=${*:-$(fuzz list 2>/dev/null)}
if [ -z "$targets" ]; then
    echo "run.sh: cargo fuzz list found no targets" >&2
    exit 2
fi
fuzz build >build.log 2>&1 || { echo "run.sh: build failed, see fuzz/build.log" >&2; tail -20 build.log >&2; exit 2; }
mkdir -p logs
failed=0
printf '%-12s %8s %9s %8s %6s %8s %5s %5s\n' target seconds runs runs/s crash timeout oom slow
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=""
    [ -d "seeds/$t" ] && seeds="seeds/$t"
    stamp="logs/$t.stamp"
    : >"$stamp" # what libFuzzer writes from now on is newer than this
    # shellcheck disable=SC2086
    fuzz run "$t" "corpus/$t" $seeds -- \
        -max_total_time="$secs" -timeout="$timeout" -rss_limit_mb="$rss" -malloc_limit_mb="$rss" \
        -report_slow_units="$slow" -max_len=16384 -print_final_stats=1 \
        >"logs/$t.log" 2>&1
    rc=$?
    new=$(find "artifacts/$t" -type f -newer "$stamp" | sort)
    count() { printf '%s\n' "$new" | grep -c "/$1" ; }
    crash=$(( $(count crash-) + $(count leak-) ))
    tmo=$(count timeout-)
    oom=$(count oom-)
    slw=$(count slow-unit-)
    # libFuzzer stops at the first crash, timeout or oom; a slow unit it only reports.
    grep -q 'ERROR: libFuzzer: timeout' "logs/$t.log" && [ "$tmo" -eq 0 ] && tmo=1
    grep -q 'ERROR: libFuzzer: out-of-memory' "logs/$t.log" && [ "$oom" -eq 0 ] && oom=1
    grep -q '^Slowest unit:' "logs/$t.log" && [ "$slw" -eq 0 ] && slw=1
    if [ "$rc" -ne 0 ] && [ $((crash + tmo + oom)) -eq 0 ]; then crash="rc=$rc"; fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -1)
    printf '%-12s %8s %9s %8s %6s %8s %5s %5s\n' "$t" "$secs" "${runs:-?}" "${speed:-?}" "$crash" "$tmo" "$oom" "$slw"
    if [ "$crash" != 0 ] || [ "$tmo" -ne 0 ] || [ "$oom" -ne 0 ] || [ "$slw" -ne 0 ]; then
        failed=1
        [ -n "$new" ] && printf '%s\n' "$new" | sed 's|^|    |'
        grep -m3 -E '^(==[0-9]+== ?ERROR|ERROR: libFuzzer|Slowest unit)' "logs/$t.log" | sed 's|^|    |'
    fi
    rm -f "$stamp"
done
exit $failed
