#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the peers (Distribution, skopeo, podman,
# containerd from Debian; Helm, crane, oras, crictl, containerd 2, the conformance suite built
# from Go modules into .tools/bin), then runs every test. The tests start and stop their own
# registries on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The Go peers first on PATH (tests also find them in .tools/bin or $BERTH_TOOLS_DIR directly).
export PATH="${BERTH_TOOLS_DIR:-$PWD/.tools/bin}:$PATH"
# Tests set their own CA and credential files; nothing from the caller's environment leaks in.
unset SSL_CERT_FILE SSL_CERT_DIR AWS_CA_BUNDLE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE REGISTRY_AUTH_FILE DOCKER_CONFIG || true
cargo test --workspace --locked "$@"
