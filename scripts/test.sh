#!/usr/bin/env bash
# The whole test suite on a fresh machine (as root): everything scripts/setup.sh installs,
# plus the engine and test stack (containerd, docker, podman, CNI plugins, protobuf, QEMU for
# aarch64 and the aarch64 musl target: scripts/deps.sh), the guest test assets for both
# architectures, then every test (unit, lifecycle with the fake monitor, sandbox, networking,
# real QEMU guests, engines).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh all
# --arm64: also an aarch64 guest (kernel, urunit, busybox), so both architectures boot in CI
scripts/prepare-assets.sh assets --arm64
cargo build --workspace
cargo test --workspace -- --test-threads="${TEST_THREADS:-2}"
