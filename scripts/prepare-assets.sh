#!/bin/sh
# Prepares the assets of the real-guest tests (tests/guest_*.rs) from Debian packages:
#   DIR/vmlinux          uncompressed PVH kernel of the current Debian cloud kernel (x86_64)
#   DIR/initrd.cpio      uncompressed newc initrd: /urunit, busybox + applet links,
#                        the virtio/9p/virtiofs modules with their modules.dep, /dev/console
#   DIR/urunit           the static musl urunit it holds
#   DIR/kernel-release   the kernel's release string (uname -r)
#   DIR/generic/         Debian's generic kernel and its 9p/virtio modules (storage tests)
#   DIR/arm64/           only with --arm64 (or URUNC_ASSETS_ARM64=1): the arm64 cloud kernel
#                        (raw Image, as vmlinux), its initrd.cpio and kernel-release, for
#                        tests/guest_arm64.rs (QEMU -M virt under TCG on this x86_64 host)
# Usage: scripts/prepare-assets.sh [DIR] [--arm64]   (default DIR: assets/ at the repository root)
# Runs as root on Debian 12; installs what it needs with apt-get. Re-running skips the
# kernel when it is current, and rebuilds the initrd only when urunit changed.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARM64=${URUNC_ASSETS_ARM64:-}
DIR=
for a in "$@"; do
    case $a in
        --arm64) ARM64=1 ;;
        -*) echo "prepare-assets: unknown option $a" >&2; exit 2 ;;
        *) DIR=$a ;;
    esac
done
DIR=${DIR:-$ROOT/assets}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ARCH=$(uname -m)
[ "$ARCH" = x86_64 ] || { echo "prepare-assets: only x86_64 hosts are supported so far" >&2; exit 1; }

MODULES="virtio_ring virtio virtio_mmio virtio_pci virtio_pci_legacy_dev virtio_pci_modern_dev
virtio_console virtio_blk virtio_net net_failover failover fuse virtiofs 9p 9pnet 9pnet_virtio
netfs fscache"

need() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    PKGS="${PKGS:-} $2"
}
PKGS=
need lz4 lz4
need depmod kmod
need cpio cpio
need qemu-system-x86_64 qemu-system-x86
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 && ldd /bin/busybox 2>&1 | grep -q "not a dynamic" \
    || PKGS="$PKGS busybox-static"
if [ -n "$PKGS" ]; then
    echo "prepare-assets: installing$PKGS"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 $PKGS >/dev/null
fi

# --- kernel ---------------------------------------------------------------------------
PKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$PKG" ] || { echo "prepare-assets: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
REL=${PKG#linux-image-}
WORK=$DIR/.work
KROOT=$WORK/$PKG
if [ ! -d "$KROOT/lib/modules/$REL/kernel" ]; then
    echo "prepare-assets: downloading $PKG"
    rm -rf "$WORK" && mkdir -p "$WORK"
    (cd "$WORK" && apt-get download -q "$PKG" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
    dpkg-deb -x "$WORK"/"$PKG"_*.deb "$KROOT"
    rm -f "$WORK"/"$PKG"_*.deb
    depmod -b "$KROOT" "$REL"
fi

# The bzImage carries the kernel as a compressed ELF: find each known magic, decompress
# from there (trailing data makes the decompressors complain: ignore that), keep the
# first result that is an ELF file.
extract_vmlinux() { # bzImage out
    for spec in '\002\041\114\030:lz4 -dc' '\375\067\172\130\132\000:xz -dc' \
                '\050\265\057\375:zstd -dc' '\037\213\010:gzip -dc'; do
        magic=$(printf "${spec%%:*}" | od -An -tx1 | tr -d ' \n' | sed 's/../\\x&/g')
        tool=${spec#*:}
        command -v "${tool%% *}" >/dev/null 2>&1 || continue
        for off in $(LC_ALL=C grep -obUaP "$magic" "$1" 2>/dev/null | cut -d: -f1 | head -5); do
            tail -c +"$((off + 1))" "$1" | $tool > "$2.tmp" 2>/dev/null || true
            if [ "$(head -c 4 "$2.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
                mv "$2.tmp" "$2"
                return 0
            fi
        done
    done
    rm -f "$2.tmp"
    return 1
}

if [ "$(cat "$DIR/kernel-release" 2>/dev/null)" != "$REL" ] || [ ! -s "$DIR/vmlinux" ]; then
    echo "prepare-assets: extracting vmlinux from $PKG"
    extract_vmlinux "$KROOT/boot/vmlinuz-$REL" "$DIR/vmlinux" \
        || { echo "prepare-assets: no ELF kernel found in vmlinuz-$REL" >&2; exit 1; }
    echo "$REL" > "$DIR/kernel-release"
    rm -f "$DIR/initrd.cpio"
fi

# --- urunit -----------------------------------------------------------------------------
TARGET=x86_64-unknown-linux-musl
(cd "$ROOT" && cargo build -q --release --target $TARGET -p urunit)
if ! cmp -s "$ROOT/target/$TARGET/release/urunit" "$DIR/urunit"; then
    cp "$ROOT/target/$TARGET/release/urunit" "$DIR/urunit"
    rm -f "$DIR/initrd.cpio"
fi

# --- generic kernel (storage tests) ---------------------------------------------------------
# The cloud kernel has no 9p at all: the 9p tests boot Debian's generic kernel, with its own
# modules (they only load into the kernel they were built for):
#   DIR/generic/vmlinux, DIR/generic/kernel-release,
#   DIR/generic/modules/lib/modules/REL/   the $MODULES subset, uncompressed, with modules.dep
prepare_generic_kernel() {
    GPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    [ -n "$GPKG" ] || { echo "prepare-assets: cannot resolve linux-image-amd64" >&2; return 1; }
    GREL=${GPKG#linux-image-}
    GDIR=$DIR/generic
    [ "$(cat "$GDIR/kernel-release" 2>/dev/null)" = "$GREL" ] && [ -s "$GDIR/vmlinux" ] && return 0
    echo "prepare-assets: downloading $GPKG (generic kernel, for 9p)"
    GWORK=$WORK/generic
    rm -rf "$GWORK" "$GDIR" && mkdir -p "$GWORK" "$GDIR"
    (cd "$GWORK" && apt-get download -q "$GPKG" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
    dpkg-deb -x "$GWORK"/"$GPKG"_*.deb "$GWORK/root"
    rm -f "$GWORK"/"$GPKG"_*.deb
    depmod -b "$GWORK/root" "$GREL"
    extract_vmlinux "$GWORK/root/boot/vmlinuz-$GREL" "$GDIR/vmlinux" \
        || { echo "prepare-assets: no ELF kernel found in vmlinuz-$GREL" >&2; return 1; }
    GM=$GWORK/root/lib/modules/$GREL
    OUT=$GDIR/modules/lib/modules/$GREL
    mkdir -p "$OUT"
    gwant=
    for m in $MODULES; do
        line=$(grep -E "(^|/)$m\.ko(\.xz|\.zst|\.gz)?:" "$GM/modules.dep" || true)
        [ -n "$line" ] && gwant="$gwant $(echo "$line" | tr -d ':')"
    done
    for f in $(echo "$gwant" | tr ' ' '\n' | sort -u); do
        mkdir -p "$OUT/$(dirname "$f")"
        case $f in
            *.xz) xz -dc "$GM/$f" > "$OUT/${f%.xz}" ;;
            *.zst) zstd -qdc "$GM/$f" > "$OUT/${f%.zst}" ;;
            *.gz) gzip -dc "$GM/$f" > "$OUT/${f%.gz}" ;;
            *) cp "$GM/$f" "$OUT/$f" ;;
        esac
    done
    cp "$GM/modules.builtin" "$GM/modules.order" "$OUT/" 2>/dev/null || true
    depmod -b "$GDIR/modules" "$GREL"
    find "$OUT" -name 'modules.*' ! -name modules.dep -delete
    echo "$GREL" > "$GDIR/kernel-release"
    rm -rf "$GWORK"
    echo "prepare-assets: generic kernel $GREL ready ($(grep -c . "$OUT/modules.dep") modules)"
}
prepare_generic_kernel

# --- initrd -----------------------------------------------------------------------------
# build_initrd KROOT REL BUSYBOX URUNIT OUT: the initrd of a kernel unpacked at KROOT (modules
# already indexed by depmod): urunit, busybox + applet links, $MODULES and their dependencies.
build_initrd() {
    KR=$1 RL=$2 BB=$3 UR=$4 OUTF=$5
    STAGE=$WORK/initrd
    rm -rf "$STAGE"
    mkdir -p "$STAGE/bin" "$STAGE/dev" "$STAGE/proc" "$STAGE/sys" "$STAGE/tmp" "$STAGE/run" \
        "$STAGE/etc" "$STAGE/root" "$STAGE/lib/modules/$RL"
    cp "$UR" "$STAGE/urunit"
    cp "$BB" "$STAGE/bin/busybox"
    # the applet list of the host's busybox: the same Debian version on every architecture
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$STAGE/bin/$a"
    done
    ln -s bin "$STAGE/sbin"
    mkdir -p "$STAGE/usr" && ln -s ../bin "$STAGE/usr/bin" && ln -s ../bin "$STAGE/usr/sbin"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        > "$STAGE/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$STAGE/etc/group"
    mknod -m 600 "$STAGE/dev/console" c 5 1
    mknod -m 666 "$STAGE/dev/null" c 1 3

    # the wanted modules and everything they depend on, as paths relative to the release dir
    MDIR=$KR/lib/modules/$RL
    want=
    for m in $MODULES; do
        line=$(grep -E "(^|/)$m\.ko(\.xz|\.zst|\.gz)?:" "$MDIR/modules.dep" || true)
        [ -n "$line" ] || continue # not built as a module in this kernel (built in, or absent)
        want="$want $(echo "$line" | tr -d ':')"
    done
    for f in $(echo "$want" | tr ' ' '\n' | sort -u); do
        mkdir -p "$STAGE/lib/modules/$RL/$(dirname "$f")"
        case $f in
            *.xz) xz -dc "$MDIR/$f" > "$STAGE/lib/modules/$RL/${f%.xz}" ;;
            *.zst) zstd -qdc "$MDIR/$f" > "$STAGE/lib/modules/$RL/${f%.zst}" ;;
            *.gz) gzip -dc "$MDIR/$f" > "$STAGE/lib/modules/$RL/${f%.gz}" ;;
            *) cp "$MDIR/$f" "$STAGE/lib/modules/$RL/$f" ;;
        esac
    done
    cp "$MDIR/modules.builtin" "$MDIR/modules.builtin.modinfo" "$MDIR/modules.order" "$STAGE/lib/modules/$RL/" 2>/dev/null || true
    depmod -b "$STAGE" "$RL"
    find "$STAGE/lib/modules/$RL" -name 'modules.*' ! -name modules.dep ! -name modules.order \
        ! -name modules.builtin -delete

    (cd "$STAGE" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$OUTF.tmp"
    mv "$OUTF.tmp" "$OUTF"
    echo "prepare-assets: built $OUTF: $(du -h "$OUTF" | cut -f1) ($(grep -c . "$STAGE/lib/modules/$RL/modules.dep") modules)"
}

# --- arm64 (opt-in) -------------------------------------------------------------------------
# The arm64 cloud kernel's vmlinuz is a raw Image (QEMU -M virt boots it with -kernel);
# busybox-static:arm64 and an aarch64-musl urunit make its initrd.
prepare_arm64() {
    ADIR=$DIR/arm64
    AWORK=$WORK/arm64
    command -v qemu-system-aarch64 >/dev/null 2>&1 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 qemu-system-arm >/dev/null
    # arm64 packages through apt with a private state (its own package lists, cache and an
    # empty dpkg status, architecture arm64): dpkg's architectures and the host's apt lists
    # stay as they were (no `dpkg --add-architecture`)
    AAPT=$WORK/apt-arm64
    mkdir -p "$AAPT/lists/partial" "$AAPT/cache/archives/partial"
    : > "$AAPT/status"
    set -- -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Sandbox::User=root \
        -o Dir::State::Lists="$AAPT/lists" -o Dir::Cache="$AAPT/cache" -o Dir::State::status="$AAPT/status"
    APKG=$(apt-cache "$@" depends linux-image-cloud-arm64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    [ -n "$APKG" ] || { apt-get "$@" update -qq; APKG=$(apt-cache "$@" depends linux-image-cloud-arm64 | awk '/Depends: linux-image-/ {print $2; exit}'); }
    [ -n "$APKG" ] || { echo "prepare-assets: cannot resolve linux-image-cloud-arm64 (arm64)" >&2; return 1; }
    APKG=${APKG%:arm64}
    AREL=${APKG#linux-image-}
    mkdir -p "$ADIR"
    if [ ! -d "$AWORK/$APKG/lib/modules/$AREL/kernel" ] || [ ! -x "$AWORK/busybox/bin/busybox" ]; then
        echo "prepare-assets: downloading $APKG:arm64, busybox-static:arm64"
        rm -rf "$AWORK" && mkdir -p "$AWORK"
        (cd "$AWORK" && apt-get "$@" download -q "$APKG" busybox-static 2>&1 \
            | grep -v "^W: Download is performed unsandboxed" || true)
        dpkg-deb -x "$AWORK"/"$APKG"_*.deb "$AWORK/$APKG"
        dpkg-deb -x "$AWORK"/busybox-static_*.deb "$AWORK/busybox"
        rm -f "$AWORK"/*.deb
        depmod -b "$AWORK/$APKG" "$AREL"
    fi
    ATARGET=aarch64-unknown-linux-musl
    (cd "$ROOT" && cargo build -q --release --target $ATARGET -p urunit)
    if [ "$(cat "$ADIR/kernel-release" 2>/dev/null)" != "$AREL" ] || [ ! -s "$ADIR/vmlinux" ]; then
        K=$AWORK/$APKG/boot/vmlinuz-$AREL
        if [ "$(head -c 2 "$K" | od -An -tx1 | tr -d ' \n')" = 1f8b ]; then
            gzip -dc "$K" > "$ADIR/vmlinux"
        else
            cp "$K" "$ADIR/vmlinux"
        fi
        echo "$AREL" > "$ADIR/kernel-release"
        rm -f "$ADIR/initrd.cpio"
    fi
    if ! cmp -s "$ROOT/target/$ATARGET/release/urunit" "$ADIR/urunit"; then
        cp "$ROOT/target/$ATARGET/release/urunit" "$ADIR/urunit"
        rm -f "$ADIR/initrd.cpio"
    fi
    [ -s "$ADIR/initrd.cpio" ] || build_initrd "$AWORK/$APKG" "$AREL" "$AWORK/busybox/bin/busybox" \
        "$ADIR/urunit" "$ADIR/initrd.cpio"
    echo "prepare-assets: arm64 kernel $AREL ready"
}
[ -z "$ARM64" ] || prepare_arm64

if [ -s "$DIR/initrd.cpio" ]; then
    echo "prepare-assets: $DIR is up to date"
    exit 0
fi
echo "prepare-assets: building initrd.cpio"
build_initrd "$KROOT" "$REL" /bin/busybox "$DIR/urunit" "$DIR/initrd.cpio"
