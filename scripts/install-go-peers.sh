#!/usr/bin/env bash
# Builds the Go peers Berth's tests drive (Helm, crane, oras, crictl, containerd 2 + ctr, the OCI
# conformance suite, cosign; regctl and Distribution 3 when the proxy serves them) from their pinned Go
# modules into <repo>/.tools/bin (or $BERTH_TOOLS_DIR). A binary already built at its pinned version
# (`go version -m` names the module and version) is kept. Network: the Go module proxy only.
#
# Exit status: 0 when every required peer is there; 1 when a required peer failed to build (the message
# names it and the log); a module the proxy refuses (`go mod download` fails) is reported and skipped,
# never fatal: the tests that need it then fail, naming scripts/install-deps.sh.
# Logs: <tools dir>/../logs/NAME.log. Usage: scripts/install-go-peers.sh [NAME...] (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${BERTH_TOOLS_DIR:-$PWD/.tools/bin}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [ ! -x "$GO" ] && ! command -v "$GO" >/dev/null; then
  echo "install-go-peers: no Go toolchain (looked for go on PATH and /usr/local/go/bin/go); install Go >= 1.26 or set GO=/path/to/go" >&2
  exit 1
fi
LOGS="$(dirname "$TOOLS")/logs"
mkdir -p "$TOOLS" "$LOGS"
export GOTOOLCHAIN=local GOBIN="$TOOLS"

# name | module | version | packages (space-separated, relative to the module; "." = the module) |
#   required | extra environment | extra go install flags
PEERS=(
  "helm|helm.sh/helm/v4|v4.3.2|cmd/helm|yes|CGO_ENABLED=0|-ldflags=-X=helm.sh/helm/v4/internal/version.version=v4.3.2"
  "crane|github.com/google/go-containerregistry|v0.22.1|cmd/crane|yes||"
  "oras|oras.land/oras|v1.3.6|cmd/oras|yes||"
  "crictl|sigs.k8s.io/cri-tools|v1.37.0|cmd/crictl|yes||-ldflags=-X=sigs.k8s.io/cri-tools/pkg/version.Version=v1.37.0"
  "containerd ctr|github.com/containerd/containerd/v2|v2.4.2|cmd/containerd cmd/ctr|yes||-tags=no_btrfs -ldflags=-X=github.com/containerd/containerd/v2/version.Version=v2.4.2"
  "conformance|github.com/opencontainers/distribution-spec/conformance|v0.0.0-20260831232431-97274622c111|.|yes||"
  "cosign|github.com/sigstore/cosign/v3|v3.1.2|cmd/cosign|yes|CGO_ENABLED=0|"
  "regctl|github.com/regclient/regclient|v0.11.5|cmd/regctl|no||"
  "registry|github.com/distribution/distribution/v3|v3.1.1|cmd/registry|no||"
)
ONLY=("$@")

# The module and version a binary was built from, as `go version -m` prints its `mod` line.
built_as() { "$GO" version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $2 "@" $3; exit }'; }

failed=() refused=() built=() kept=()
t_all=$(date +%s)
for spec in "${PEERS[@]}"; do
  IFS='|' read -r names module version pkgs required envs flags <<<"$spec"
  if [ ${#ONLY[@]} -gt 0 ]; then
    want=no
    for n in $names; do for o in "${ONLY[@]}"; do [ "$n" = "$o" ] && want=yes; done; done
    [ $want = yes ] || continue
  fi
  current=yes
  for n in $names; do
    [ "$(built_as "$TOOLS/$n")" = "$module@$version" ] || current=no
  done
  if [ $current = yes ]; then
    kept+=("$names")
    continue
  fi
  targets=()
  for p in $pkgs; do
    if [ "$p" = . ]; then targets+=("$module@$version"); else targets+=("$module/$p@$version"); fi
  done
  log="$LOGS/${names%% *}.log"
  # Is the module served at exactly this version? (A refusal is reported, never fatal.)
  if ! "$GO" mod download -json "$module@$version" >"$log" 2>&1; then
    echo "install-go-peers: the Go module proxy does not serve ${module}@${version}; skipping ${names}: $(grep -o '"Error": *"[^"]*"' "$log" | head -n 1)" >&2
    refused+=("$names")
    continue
  fi
  echo "building ${names} (${module}@${version}) ..."
  t0=$(date +%s)
  # shellcheck disable=SC2086 # envs and flags are word lists on purpose
  if env GOFLAGS=-trimpath $envs "$GO" install $flags "${targets[@]}" >"$log" 2>&1; then
    secs=$(($(date +%s) - t0))
    echo "built ${names} ${version} in ${secs}s -> $TOOLS"
    built+=("${names}:${secs}s")
  elif [ "$required" = yes ]; then
    echo "install-go-peers: building the required peer ${names} (${module}@${version}) failed after $(($(date +%s) - t0))s; the last lines of $log:" >&2
    tail -n 15 "$log" >&2
    failed+=("$names")
  else
    echo "install-go-peers: the optional peer ${names} (${module}@${version}) did not build; skipping it (see $log)" >&2
    tail -n 5 "$log" >&2
    refused+=("$names")
  fi
done
summary="Go peers in $TOOLS: built [${built[*]:-none}] kept [${kept[*]:-none}]"
[ ${#refused[@]} -eq 0 ] || summary+=" skipped [${refused[*]}]"
echo "$summary; $(($(date +%s) - t_all))s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "install-go-peers: required peers failed to build: ${failed[*]}; fix the cause in the logs above and rerun scripts/install-deps.sh" >&2
  exit 1
fi
