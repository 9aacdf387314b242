#!/bin/sh
# Runs every fuzz target for the given number of seconds (default 60) and prints, per target,
# the executions and the crashes found. Needs cargo-fuzz (`cargo install cargo-fuzz`); on a
# stable toolchain RUSTC_BOOTSTRAP=1 lets it use the nightly-only sanitizer flags.
#
#   fuzz/run.sh [seconds-per-target] [target...]
#
# The corpus grows in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>); crashes land in
# fuzz/artifacts/<target>/. Exit status 1 when any target crashed.
set -u
cd "$(dirname "$0")"
secs=${1:-60}
[ $# -gt 0 ] && shift
export RUSTC_BOOTSTRAP=1
targets=${*:-$(cargo fuzz list 2>/dev/null)}
if [ -z "$targets" ]; then
    echo "run.sh: cargo fuzz list found no targets (is cargo-fuzz installed?)" >&2
    exit 2
fi
cargo fuzz build >build.log 2>&1 || { echo "run.sh: build failed, see fuzz/build.log" >&2; tail -20 build.log >&2; exit 2; }
mkdir -p logs
failed=0
printf '%-12s %10s %8s %12s %8s\n' target seconds runs runs/s crashes
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=""
    [ -d "seeds/$t" ] && seeds="seeds/$t"
    before=$(ls "artifacts/$t" | wc -l)
    cargo fuzz run "$t" "corpus/$t" $seeds -- \
        -max_total_time="$secs" -timeout=10 -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1 \
        >"logs/$t.log" 2>&1
    rc=$?
    after=$(ls "artifacts/$t" | wc -l)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    took=$(sed -n 's/^stat::*average_exec_per_sec: *//p' "logs/$t.log" | tail -1)
    crashes=$((after - before))
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="rc=$rc"; fi
    printf '%-12s %10s %8s %12s %8s\n' "$t" "$secs" "${runs:-?}" "${took:-?}" "$crashes"
    if [ "$crashes" != 0 ]; then
        failed=1
        ls "artifacts/$t" | sed "s|^|    artifacts/$t/|"
    fi
done
exit $failed
