#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the peers (Distribution, skopeo, podman,
# containerd), then runs every test. The tests start and stop their own registries on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Tests set their own CA and credential files; nothing from the caller's environment leaks in.
unset SSL_CERT_FILE SSL_CERT_DIR AWS_CA_BUNDLE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE REGISTRY_AUTH_FILE DOCKER_CONFIG || true
cargo test --workspace --locked "$@"
