#!/usr/bin/env bash
# Builds the static release binaries (urunc and urunit) for x86_64 and aarch64 (musl) and
# prints their sizes. Usage: scripts/build-static.sh [x86_64|aarch64]...
set -euo pipefail
cd "$(dirname "$0")/.."
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 aarch64)
for a in "${arches[@]}"; do
  t="$a-unknown-linux-musl"
  rustup target list --installed 2>/dev/null | grep -qx "$t" || rustup target add "$t"
  cargo build --release --target "$t" -p urunc -p urunit
  for b in urunc urunit; do
    f="target/$t/release/$b"
    printf '%-8s %-8s %9d bytes  %s\n' "$a" "$b" "$(stat -c %s "$f")" "$f"
  done
done
