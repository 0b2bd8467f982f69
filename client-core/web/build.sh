#!/usr/bin/env bash
# Builds the field app into target/field-app/ (what the relay serves at /app/):
# client-core compiled to WebAssembly, its wasm-bindgen JavaScript glue, and
# the static shell (HTML, JS modules, CSS, manifest, service worker, icons).
# Needs the wasm32-unknown-unknown target, wasm-bindgen-cli at the exact
# version of the wasm-bindgen crate in Cargo.lock, and clang (SQLite's C is
# compiled for wasm32); it installs the first two if they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out="$root/target/field-app"
profile=${PROPSYNC_APP_PROFILE:-app}

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
want=$(awk '/^name = "wasm-bindgen"$/{getline; sub(/version = "/,""); sub(/"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  cargo install wasm-bindgen-cli --version "$want"
fi
if ! command -v clang >/dev/null 2>&1; then
  echo "clang is needed to compile SQLite for WebAssembly (Debian: apt-get install -y clang)" >&2
  exit 1
fi

cargo build --locked --profile "$profile" --target wasm32-unknown-unknown -p propsync-web
rm -rf "$out.tmp" && mkdir -p "$out.tmp/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$out.tmp/pkg" \
  "target/wasm32-unknown-unknown/$profile/propsync_web.wasm"
cp -r client-core/web/static/. "$out.tmp/"
# The service worker's cache name changes with the build, so a phone picks
# up a new version on its next online start and keeps the old one offline.
version=$(cat "$out.tmp"/pkg/*.wasm "$out.tmp"/*.js "$out.tmp"/*.html "$out.tmp"/*.css | sha256sum | cut -c1-16)
sed -i "s/__BUILD__/$version/" "$out.tmp/sw.js"
# Pre-compressed copies: the relay sends them to browsers that accept gzip.
find "$out.tmp" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.html' -o -name '*.css' -o -name '*.json' -o -name '*.webmanifest' -o -name '*.svg' \) \
  -exec gzip -9 -k -n {} \;
rm -rf "$out" && mv "$out.tmp" "$out"
echo "field app built in $out (version $version)"
