#!/usr/bin/env bash
# Set-up on a fresh Debian 12 machine (as root), for building and running urunc only:
#   - Debian packages: QEMU, runc, the tools that prepare the guest (scripts/deps.sh run)
#   - the musl target of this host (rustup must be there: https://rustup.rs)
#   - the static release binaries, installed as /usr/local/bin/urunc and urunit
#   - a Linux guest in assets/ (Debian's cloud kernel, an initrd with urunit and busybox)
# then `urunc run` of examples/hello-linux with no acceleration configured: urunc probes
# QEMU and picks KVM when it runs guests here, else TCG (the log line says which and why).
# The engine and test stack (containerd, docker, podman, CNI) is scripts/test.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
scripts/build-static.sh "$(uname -m)"
install -m 0755 "target/$(uname -m)-unknown-linux-musl/release/urunc" /usr/local/bin/urunc
install -m 0755 "target/$(uname -m)-unknown-linux-musl/release/urunit" /usr/local/bin/urunit
scripts/prepare-assets.sh assets
ex=examples/hello-linux
mkdir -p "$ex/rootfs"
cp -f assets/vmlinux assets/initrd.cpio "$ex/rootfs/"
id="hello-$$"
echo "+ urunc run --bundle $ex $id"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
urunc --log "$log" run --bundle "$ex" "$id"
grep -o 'accel for qemu: [^"]*' "$log" || true
