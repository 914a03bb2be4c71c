#!/usr/bin/env bash
# Installs what Berth's tests need on a fresh Debian machine (root, package registries only):
# the real peers the tests start on 127.0.0.1, and protoc for containerd's gRPC client.
set -euo pipefail
PKGS=(docker-registry skopeo podman containerd apache2-utils protobuf-compiler openssl curl ca-certificates time busybox-static zstd wrk)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for c in cargo rustfmt; do command -v "$c" >/dev/null || { echo "missing $c: install Rust with rustup" >&2; exit 2; }; done
# The Go peers (Helm, crane, oras, crictl, containerd 2, the OCI conformance suite, ...), built
# from pinned modules into .tools/bin; a no-op for those already built at their version.
"$(dirname "$0")/install-go-peers.sh"
