#!/usr/bin/env bash
# The whole test suite on a fresh machine: dependencies, guest test assets, then every test
# (unit, lifecycle with the fake monitor, sandbox, networking, real QEMU guests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ -x scripts/prepare-assets.sh ]; then
  # --arm64: also an aarch64 guest (kernel, urunit, busybox), so both architectures boot in CI
  scripts/prepare-assets.sh assets --arm64
fi
cargo build --workspace
cargo test --workspace -- --test-threads="${TEST_THREADS:-2}"
