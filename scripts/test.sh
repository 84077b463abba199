#!/usr/bin/env bash
# The whole test suite on a fresh machine: dependencies, guest test assets, then every test
# (unit, lifecycle with the fake monitor, sandbox, networking, real QEMU guests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ -x scripts/prepare-assets.sh ]; then
  scripts/prepare-assets.sh assets
fi
cargo build --workspace
cargo test --workspace -- --test-threads="${TEST_THREADS:-2}"
