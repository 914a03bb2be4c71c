#!/usr/bin/env bash
# The agent benchmark: `berth agent apply` against `ctr images pull` (one after the other, and
# all at once) of the same images from a Distribution with TLS + htpasswd, each run into a new
# private containerd 1.6 (native snapshotter); and the preload import against
# `ctr images import` of the same oci-archives. Writes the `## Agent` section of BENCHMARKS.md.
#
# Needs (Debian): containerd docker-registry skopeo apache2-utils openssl. Runs as root
# (containerd). Everything listens on 127.0.0.1 or a private socket. A few minutes on 2 cores.
#
# Knobs: BERTH_BENCH_REPS (default 3), BERTH_BENCH_BIG_MIB (100), BERTH_BENCH_OUT (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in /usr/bin/containerd /usr/bin/ctr /usr/bin/docker-registry /usr/bin/skopeo /usr/bin/htpasswd; do
  [ -x "$t" ] || { echo "missing $t: apt-get install -y containerd docker-registry skopeo apache2-utils" >&2; exit 2; }
done
exec cargo test --release -p berth --test bench_agent -- --ignored --nocapture --test-threads=1 "$@"
