#!/usr/bin/env bash
# The mirror benchmark: `berth mirror` against `skopeo sync --all` and `crane copy --all-tags`
# (built by scripts/install-deps.sh into .tools/bin), cold and warm, on the
# same image set, into CNCF Distribution with TLS + htpasswd, plus berth's peak RSS while
# copying a 500 MiB image; and the same on a profile-shaped set (18 images of 1-80 MiB).
# Writes the results section of BENCHMARKS.md.
#
# Needs (Debian): docker-registry skopeo apache2-utils openssl time curl libpython3-stdlib.
# Runs as root (skopeo's blob-info cache /var/lib/containers/cache/... is removed before
# every cold skopeo run). Everything listens on 127.0.0.1 only. A few minutes on 2 cores.
#
# Knobs: BERTH_BENCH_REPS (default 5, min 3), BERTH_BENCH_BIG_MIB (500),
# BERTH_BENCH_ALT_JOBS (1: the second --jobs value), BERTH_BENCH_OUT (BENCHMARKS.md),
# BERTH_BENCH_SETS (main,big,profile; a subset prints its runs and writes nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in /usr/bin/docker-registry /usr/bin/skopeo /usr/bin/htpasswd /usr/bin/openssl /usr/bin/time /usr/bin/curl; do
  [ -x "$t" ] || { echo "missing $t: apt-get install -y docker-registry skopeo apache2-utils openssl time curl" >&2; exit 2; }
done
# A release build: env!("CARGO_BIN_EXE_berth") in the test is target/release/berth.
exec cargo test --release -p berth --test bench_mirror -- --ignored --nocapture --test-threads=1 "$@"
