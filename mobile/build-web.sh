#!/usr/bin/env bash
# Build the Homeward web client (the PWA the server serves at `/`) into mobile/dist/:
#   dist/index.html, dist/app.css, dist/boot.js, dist/pkg/homeward.js, dist/pkg/homeward_bg.wasm
# Installs the wasm32 target and the matching wasm-bindgen CLI when missing.
# Usage: mobile/build-web.sh [--debug]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

# `web` (defined in the root Cargo.toml) is the release profile tuned for size.
profile=web
if [ "${1:-}" = "--debug" ]; then
    profile=dev
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$profile" in
    dev) wasm="$target_dir/wasm32-unknown-unknown/debug/homeward-mobile.wasm" ;;
    *) wasm="$target_dir/wasm32-unknown-unknown/$profile/homeward-mobile.wasm" ;;
esac

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "==> adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen's CLI must match the library version in Cargo.lock exactly.
bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
bindgen="$(command -v wasm-bindgen || true)"
if [ -z "$bindgen" ] && [ -x "$HOME/.cargo/bin/wasm-bindgen" ]; then
    bindgen="$HOME/.cargo/bin/wasm-bindgen"
fi
if [ -z "$bindgen" ] || [ "$("$bindgen" --version | awk '{ print $2 }')" != "$bindgen_version" ]; then
    echo "==> installing wasm-bindgen-cli $bindgen_version"
    cargo install wasm-bindgen-cli --version "$bindgen_version"
    bindgen="$HOME/.cargo/bin/wasm-bindgen"
fi

echo "==> building the web client ($profile)"
cargo build -p homeward-mobile --target wasm32-unknown-unknown --no-default-features --features web \
    --profile "$profile"

dist="$here/dist"
rm -rf "$dist.tmp"
mkdir -p "$dist.tmp/pkg"
"$bindgen" --target web --no-typescript --out-dir "$dist.tmp/pkg" --out-name homeward "$wasm"
cp "$here/index.html" "$dist.tmp/"
cp -r "$here/assets/." "$dist.tmp/"
# Swap in the new build whole, so a server reading dist/ never sees half of one.
rm -rf "$dist.old"
if [ -d "$dist" ]; then mv "$dist" "$dist.old"; fi
mv "$dist.tmp" "$dist"
rm -rf "$dist.old"

size="$(gzip -9 -c "$dist/pkg/homeward_bg.wasm" | wc -c)"
echo "==> mobile/dist ready: wasm $(wc -c < "$dist/pkg/homeward_bg.wasm") bytes, $size bytes gzipped"
