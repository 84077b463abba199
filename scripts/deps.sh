#!/usr/bin/env bash
# Installs what building, running and testing urunc needs on a fresh Debian 12 machine (as
# root): Debian packages and the Rust musl targets. Idempotent; quick when everything is present.
#   scripts/deps.sh run    what building and running urunc needs: QEMU, runc (the delegate
#                          for ordinary containers), the tools that prepare the guest assets,
#                          the musl target of this host (scripts/setup.sh)
#   scripts/deps.sh        (or `all`) also the engine and test stack: containerd, docker,
#                          podman, CNI plugins, protobuf, the other architecture's QEMU and
#                          musl target (scripts/test.sh)
set -euo pipefail
set_name=${1:-all}
run_pkgs=(runc busybox-static qemu-system-x86 iproute2 cpio lz4 xz-utils zstd kmod)
test_pkgs=(qemu-system-arm qemu-user-static binutils-aarch64-linux-gnu strace podman uidmap slirp4netns
      containerd docker.io containernetworking-plugins catatonit protobuf-compiler conmon
      g++ nftables)  # g++: libfuzzer-sys builds libFuzzer for scripts/fuzz.sh; nftables: the tests
                     # read pod mode's rules back with nft (the runtime speaks netlink itself)
case $set_name in
  run) pkgs=("${run_pkgs[@]}"); targets=("$(uname -m)-unknown-linux-musl") ;;
  all) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}"); targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl) ;;
  *) echo "deps.sh: unknown set $set_name (run or all)" >&2; exit 2 ;;
esac
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
if ! command -v rustup >/dev/null 2>&1; then
  echo "deps.sh: rustup is missing: install a Rust toolchain from https://rustup.rs" >&2
  echo "  (curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y; . ~/.cargo/env)" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
