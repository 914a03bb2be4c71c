#!/usr/bin/env bash
# Times `berth images` on a large generated profile (default 200 layers x 10 images = 2,000 images).
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS=${LAYERS:-200}; PER=${PER:-10}; RUNS=${RUNS:-5}
cargo build --release -q -p berth
cargo build --release -q -p berth-profile --example generate-profile
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
target/release/examples/generate-profile "$LAYERS" "$PER" > "$tmp/profile.yaml"
printf '#cloud-config\nstylus:\n  registryCredentials:\n    domain: 10.10.254.254:8000/spectro-images\n' > "$tmp/ud.yaml"
echo "profile: $(wc -c < "$tmp/profile.yaml") bytes, $LAYERS layers x $PER images"
for i in $(seq "$RUNS"); do
  /usr/bin/time -f "run $i: %e s wall, %M KB max RSS" target/release/berth images --profile "$tmp/profile.yaml" \
    --user-data "$tmp/ud.yaml" --output json > "$tmp/out.json"
done
echo "images listed: $(grep -c '"source"' "$tmp/out.json")"
