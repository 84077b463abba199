#!/usr/bin/env bash
# Set-up on a fresh Debian 12 machine (as root): dependencies, the static release binaries,
# /usr/local/bin/urunc and urunit, a Linux guest (kernel + initrd with urunit and busybox),
# then the main job: `urunc run` of the bundled example, a Linux guest under QEMU (TCG, so it
# works on any host; drop the `accel` annotation to use KVM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build-static.sh x86_64
install -m 0755 target/x86_64-unknown-linux-musl/release/urunc /usr/local/bin/urunc
install -m 0755 target/x86_64-unknown-linux-musl/release/urunit /usr/local/bin/urunit
scripts/prepare-assets.sh assets
ex=examples/hello-linux
mkdir -p "$ex/rootfs"
cp -f assets/vmlinux assets/initrd.cpio "$ex/rootfs/"
id="hello-$$"
echo "+ urunc run --bundle $ex $id"
urunc run --bundle "$ex" "$id"
