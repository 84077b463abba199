#!/usr/bin/env bash
# Installs what building and testing urunc needs on a fresh Debian 12 machine (as root):
# Debian packages and the Rust musl targets. Idempotent; quick when everything is present.
set -euo pipefail
pkgs=(runc busybox-static qemu-system-x86 qemu-system-arm qemu-user-static iproute2 cpio lz4 xz-utils zstd kmod strace podman uidmap slirp4netns
      containerd docker.io containernetworking-plugins catatonit protobuf-compiler conmon
      g++)  # g++: libfuzzer-sys builds libFuzzer for scripts/fuzz.sh
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Some machine images carry qemu-utils from bookworm-backports, which breaks Debian 12's
  # qemu-system-*; align it with bookworm's QEMU (the release the tests are written against).
  extra=()
  if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q '~bpo'; then
    extra+=(--allow-downgrades qemu-utils/bookworm)
  fi
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${extra[@]}" "${missing[@]}"
fi
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
