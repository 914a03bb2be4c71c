#!/usr/bin/env bash
# The bundle benchmark: `berth bundle build` (berth_bundle::build: fetch from a local
# Distribution, deterministic tar, multi-threaded zstd) and `berth bundle extract` (every blob
# re-hashed) against `tar -c | zstd -T0 -3` and `zstd -d -T0 | tar -x` on the same data.
# Replaces the `## Bundles` section of BENCHMARKS.md (the other sections are kept).
#
# Needs (Debian): docker-registry skopeo zstd tar libpython3-stdlib. Everything listens on
# 127.0.0.1. Knobs: BERTH_BENCH_BIG_MIB (300), BERTH_BENCH_REPS (3), BERTH_BENCH_DIR
# (/var/tmp: the scratch disk), BERTH_BENCH_OUT (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in /usr/bin/docker-registry /usr/bin/skopeo /usr/bin/zstd /usr/bin/tar; do
  [ -x "$t" ] || { echo "missing $t: apt-get install -y docker-registry skopeo zstd tar" >&2; exit 2; }
done
out="${BERTH_BENCH_OUT:-BENCHMARKS.md}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --release -p berth-bundle --test bench -- --ignored --nocapture --test-threads=1 | tee "$log"
section="$(sed -n '/^BENCH-SECTION-BEGIN$/,/^BENCH-SECTION-END$/p' "$log" | sed '1d;$d')"
[ -n "$section" ] || { echo "no results" >&2; exit 1; }
touch "$out"
# Drop an earlier `## Bundles` section (up to the next `## ` heading), then append.
awk '/^## Bundles/{skip=1; next} /^## /{skip=0} !skip' "$out" > "$out.tmp"
printf '%s\n\n%s\n' "$(cat "$out.tmp")" "$section" > "$out"
rm -f "$out.tmp"
echo "wrote the Bundles section of $out"
