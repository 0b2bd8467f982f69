#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (seconds, default 20) on a copy of
# its committed seed corpus, so the repository's corpora stay small.
# Needs cargo-fuzz; the stable toolchain is told to accept nightly flags.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
export RUSTC_BOOTSTRAP=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo fuzz build -O
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target"
  cp corpus/"$target"/* "$work/$target/"
  echo "== fuzz $target for ${secs}s"
  if ! cargo fuzz run -O "$target" "$work/$target" -- -max_total_time="$secs" >"$work/$target.log" 2>&1; then
    tail -40 "$work/$target.log"
    echo "fuzz $target found a crash (input under server/fuzz/artifacts/$target)"
    exit 1
  fi
  grep -E 'DONE|Done [0-9]+ runs' "$work/$target.log"
done
