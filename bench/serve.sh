#!/usr/bin/env bash
# The edge registry benchmark: `berth serve` against CNCF Distribution 2.8 on the same data,
# in the same run: blob GET throughput (curl), manifest GET requests per second under load
# (wrk), peak RSS of each server, and pull-through pulls of both image sets of the mirror
# benchmark (the small set + big:1, and the profile set; clients berth copy and skopeo copy
# --all) cold and warm against Distribution's proxy mode. Writes the results section of
# BENCHMARKS.md.
#
# Needs (Debian): docker-registry skopeo curl wrk. Everything listens on 127.0.0.1 only,
# plain HTTP. A few minutes on 2 cores.
#
# Knobs: BERTH_BENCH_REPS (default 5, min 3), BERTH_BENCH_BIG_MIB (256),
# BERTH_BENCH_CONCURRENCY (4 concurrent blob GETs), BERTH_BENCH_WRK_THREADS (2),
# BERTH_BENCH_WRK_CONNS (32), BERTH_BENCH_WRK_SECS (10), BERTH_BENCH_OUT (BENCHMARKS.md),
# BERTH_BENCH_BERTH (another berth binary than this build's, e.g. an older one to compare),
# BERTH_BENCH_PULL_ONLY (only the pull-through part, nothing written; `berth`: only the
# `berth copy` client).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in /usr/bin/docker-registry /usr/bin/skopeo /usr/bin/curl /usr/bin/wrk; do
  [ -x "$t" ] || { echo "missing $t: apt-get install -y docker-registry skopeo curl wrk" >&2; exit 2; }
done
# A release build: env!("CARGO_BIN_EXE_berth") in the test is target/release/berth.
exec cargo test --release -p berth --test bench_serve -- --ignored --nocapture --test-threads=1 "$@"
