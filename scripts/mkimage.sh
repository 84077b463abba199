#!/usr/bin/env bash
# mkimage.sh: package a guest kernel (and initrd, block image, files) into a one-layer OCI
# image that urunc runs, as an archive that `ctr images import`, `podman load` (format oci)
# or `docker load` (format docker) accept. No registry, no daemon, no umoci/skopeo needed:
# only bash, GNU tar, coreutils (sha256sum, base64, stat).
#
# The guest's settings go three ways, so that every engine sees them:
#   - /urunc.json at the image root (urunc reads it when config.json carries no annotations;
#     base64 values, as the Go urunc and bunny write it),
#   - the manifest's annotations (for a shim that injects them, like containerd-shim-urunc-v2),
#   - the image config's labels (shown by `docker inspect`, `ctr images`, ...).
# The image's Entrypoint/Cmd become process.args: for a Linux guest they are urunit and the
# program it runs inside the guest, e.g. `--entrypoint /urunit -- /bin/sh -c 'echo hi'`.
#
# Usage: mkimage.sh [options] -o OUT.tar [-- CMD...]
#   -o, --output FILE        the archive to write (required)
#   -n, --name REF           image reference (default localhost/urunc-guest:latest)
#   -f, --format oci|docker  oci: an OCI image layout in a tar (ctr, nerdctl, podman, skopeo);
#                            docker: a `docker save` archive (docker 20.10 loads nothing else)
#   --kernel HOST[:PATH]     guest kernel, copied to PATH in the image (default /<basename>)
#   --initrd HOST[:PATH]     guest initrd
#   --block HOST[:PATH]      block image; --block-mount MP gives its guest mount point
#   --type TYPE              guest type: linux, unikraft, rumprun, mirage, mewz, hermit, nanos,
#                            osv (default linux when --kernel is given)
#   --monitor NAME           qemu (default), firecracker, cloud-hypervisor, hvt, spt
#   --cmdline STR            the guest command line: the cmdline annotation, and the image's Cmd
#                            (its words) unless `-- CMD` gives one
#   --accel kvm|tcg          pin the accelerator (tcg: software emulation, for hosts whose
#                            /dev/kvm cannot run guests)
#   --unikernel-version V    com.urunc.unikernel.unikernelVersion
#   --mount-rootfs           com.urunc.unikernel.mountRootfs=true
#   --annotation K=V         any other annotation (com.urunc.unikernel.* go to urunc.json too)
#   --no-urunc-json          do not write /urunc.json (settings then come from --annotation
#                            of the engine, e.g. podman or Kubernetes pod annotations)
#   --add HOST[:PATH]        add a file or directory (default PATH /<basename>)
#   --entrypoint ARG         append ARG to the Entrypoint (repeat for more)
#   --env K=V                add to the image's Env (default PATH=/bin:/sbin:/usr/bin:/usr/sbin)
#   --workdir DIR            the image's WorkingDir
#   --arch ARCH              OCI architecture (default: the host's, amd64 or arm64)
#   -- CMD...                the image's Cmd (`-- ""` for a unikernel that takes no arguments)
# docker, podman and CRI refuse an image without a command ("No command specified"): a guest
# image always gets one, from --entrypoint, `-- CMD` or --cmdline (engines pass it to urunc as
# process.args, which urunc uses as the guest's command line; `docker run IMAGE ARGS...`
# replaces it). A guest image with none of them is refused here.
# The image's creation date is now (or $SOURCE_DATE_EPOCH, for reproducible images).
# Without --kernel the image is an ordinary container image (e.g. busybox for runc).
set -euo pipefail

die() { echo "mkimage: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

OUT= NAME=localhost/urunc-guest:latest FORMAT=oci TYPE= MONITOR=qemu CMDLINE= ACCEL= UKVER=
MOUNTROOTFS= URUNCJSON=1 WORKDIR= ARCH= BLKMNT=
KERNEL= INITRD= BLOCK=
ADDS=() ANNOS=() ENTRY=() ENVS=() CMD=()
while [ $# -gt 0 ]; do
    case "$1" in
        -o|--output) OUT=$2; shift ;;
        -n|--name) NAME=$2; shift ;;
        -f|--format) FORMAT=$2; shift ;;
        --kernel) KERNEL=$2; shift ;;
        --initrd) INITRD=$2; shift ;;
        --block) BLOCK=$2; shift ;;
        --block-mount) BLKMNT=$2; shift ;;
        --type) TYPE=$2; shift ;;
        --monitor) MONITOR=$2; shift ;;
        --cmdline) CMDLINE=$2; shift ;;
        --accel) ACCEL=$2; shift ;;
        --unikernel-version) UKVER=$2; shift ;;
        --mount-rootfs) MOUNTROOTFS=true ;;
        --annotation) ANNOS+=("$2"); shift ;;
        --no-urunc-json) URUNCJSON= ;;
        --add) ADDS+=("$2"); shift ;;
        --entrypoint) ENTRY+=("$2"); shift ;;
        --env) ENVS+=("$2"); shift ;;
        --workdir) WORKDIR=$2; shift ;;
        --arch) ARCH=$2; shift ;;
        -h|--help) usage 0 ;;
        --) shift; CMD=("$@"); break ;;
        *) echo "mkimage: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
[ -n "$OUT" ] || die "no output file (-o)"
case "$FORMAT" in oci|docker) ;; *) die "unknown format $FORMAT (oci or docker)" ;; esac
case "$ACCEL" in ""|kvm|tcg) ;; *) die "accel must be kvm or tcg" ;; esac
if [ -z "$ARCH" ]; then
    case "$(uname -m)" in x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) ARCH=$(uname -m) ;; esac
fi
[ ${#ENVS[@]} -gt 0 ] || ENVS=("PATH=/bin:/sbin:/usr/bin:/usr/sbin")
if [ -n "$KERNEL" ] && [ -z "$TYPE" ]; then TYPE=linux; fi
[ -z "$TYPE" ] || [ -n "$KERNEL" ] || die "--type needs --kernel"
case "$TYPE" in ""|linux|unikraft|rumprun|mirage|mewz|hermit|nanos|osv) ;;
    *) die "unknown guest type $TYPE (linux, unikraft, rumprun, mirage, mewz, hermit, nanos, osv)" ;;
esac
if [ -n "$KERNEL" ] && [ ${#ENTRY[@]} -eq 0 ] && [ ${#CMD[@]} -eq 0 ]; then
    # shellcheck disable=SC2206 # the command line's words, as urunc splits it
    [ -z "$CMDLINE" ] || CMD=($CMDLINE)
    [ ${#CMD[@]} -gt 0 ] || die "a guest image needs a command (docker, podman and CRI refuse one without): give --cmdline, -- CMD (\`-- \"\"\` for none), or for Linux guests --entrypoint /urunit -- PROGRAM"
fi
[ -z "$BLOCK" ] || [ -n "$BLKMNT" ] || die "--block needs --block-mount"
[ "${#ANNOS[@]}" -eq 0 ] || for a in "${ANNOS[@]}"; do
    case "$a" in *=*) ;; *) die "annotation $a is not KEY=VALUE" ;; esac
done

# JSON string of $1 (backslash, quote and control characters escaped).
js() {
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}
# JSON array of the arguments.
jarr() {
    local out= a
    for a in "$@"; do out="$out${out:+,}$(js "$a")"; done
    printf '[%s]' "$out"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/rootfs
mkdir -p "$STAGE" "$WORK/out/blobs/sha256"

# place HOST[:PATH] into the staging root; sets PLACED to the image path
place() {
    local spec=$1 host dest
    host=${spec%%:*}
    if [ "$host" != "$spec" ]; then dest=${spec#*:}; else dest=/$(basename "$host"); fi
    case "$dest" in /*) ;; *) dest=/$dest ;; esac
    [ -e "$host" ] || die "$host does not exist"
    mkdir -p "$STAGE$(dirname "$dest")"
    if [ -d "$host" ]; then
        mkdir -p "$STAGE$dest" && cp -a "$host/." "$STAGE$dest/"
    else
        cp -l "$host" "$STAGE$dest" 2>/dev/null || cp "$host" "$STAGE$dest"
    fi
    PLACED=$dest
}

# annotations: key<TAB>value lines, in order
ANNOFILE=$WORK/annotations
: > "$ANNOFILE"
anno() { printf '%s\t%s\n' "$1" "$2" >> "$ANNOFILE"; }
P=com.urunc.unikernel
if [ -n "$KERNEL" ]; then
    anno "$P.unikernelType" "$TYPE"
    anno "$P.hypervisor" "$MONITOR"
    place "$KERNEL"; anno "$P.binary" "$PLACED"
    if [ -n "$INITRD" ]; then place "$INITRD"; anno "$P.initrd" "$PLACED"; fi
    if [ -n "$BLOCK" ]; then
        place "$BLOCK"; anno "$P.block" "$PLACED"
        anno "$P.blkMntPoint" "$BLKMNT"
    fi
    [ -z "$CMDLINE" ] || anno "$P.cmdline" "$CMDLINE"
    [ -z "$UKVER" ] || anno "$P.unikernelVersion" "$UKVER"
    [ -z "$MOUNTROOTFS" ] || anno "$P.mountRootfs" "$MOUNTROOTFS"
    [ -z "$ACCEL" ] || anno "$P.accel" "$ACCEL"
fi
[ "${#ANNOS[@]}" -eq 0 ] || for a in "${ANNOS[@]}"; do anno "${a%%=*}" "${a#*=}"; done
[ "${#ADDS[@]}" -eq 0 ] || for a in "${ADDS[@]}"; do place "$a"; done

# JSON object of the annotations (all, or only com.urunc.unikernel.* base64-encoded)
annojson() { # all|urunc
    local out= k v
    while IFS=$'\t' read -r k v; do
        if [ "$1" = urunc ]; then
            case "$k" in "$P".*) v=$(printf '%s' "$v" | base64 -w0) ;; *) continue ;; esac
        fi
        out="$out${out:+,}$(js "$k"):$(js "$v")"
    done < "$ANNOFILE"
    printf '{%s}' "$out"
}
if [ -n "$URUNCJSON" ] && [ -n "$KERNEL" ]; then
    annojson urunc > "$STAGE/urunc.json"
    chmod 0644 "$STAGE/urunc.json"
fi

# blob FILE MEDIATYPE -> moves FILE into the blob store, prints a descriptor
blob() {
    local d s
    d=$(sha256sum "$1" | cut -d' ' -f1)
    s=$(stat -c %s "$1")
    mv "$1" "$WORK/out/blobs/sha256/$d"
    printf '{"mediaType":%s,"digest":"sha256:%s","size":%s}' "$(js "$2")" "$d" "$s"
}
digest_of() { sed 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/' <<< "$1"; }

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$STAGE" -cf "$WORK/layer.tar" .
LAYER=$(blob "$WORK/layer.tar" application/vnd.oci.image.layer.v1.tar)
DIFFID=sha256:$(digest_of "$LAYER")

CFG='{"Env":'$(jarr "${ENVS[@]}")
[ "${#ENTRY[@]}" -eq 0 ] || CFG="$CFG,\"Entrypoint\":$(jarr "${ENTRY[@]}")"
[ "${#CMD[@]}" -eq 0 ] || CFG="$CFG,\"Cmd\":$(jarr "${CMD[@]}")"
[ -z "$WORKDIR" ] || CFG="$CFG,\"WorkingDir\":$(js "$WORKDIR")"
CFG="$CFG,\"Labels\":$(annojson all)}"
CREATED=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%dT%H:%M:%SZ)
printf '{"created":"%s","architecture":%s,"os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"%s","created_by":"urunc mkimage.sh"}]}' \
    "$CREATED" "$(js "$ARCH")" "$CFG" "$DIFFID" "$CREATED" > "$WORK/config.json"
CONFIG=$(blob "$WORK/config.json" application/vnd.oci.image.config.v1+json)

cd "$WORK/out"
if [ "$FORMAT" = oci ]; then
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s],"annotations":%s}' \
        "$CONFIG" "$LAYER" "$(annojson all)" > "$WORK/manifest.json"
    MANIFEST=$(blob "$WORK/manifest.json" application/vnd.oci.image.manifest.v1+json)
    # ref.name as skopeo writes it for oci-archive (podman, skopeo); io.containerd.image.name
    # makes `ctr images import` keep the name without --base-name
    printf '{"schemaVersion":2,"manifests":[%s]}' \
        "${MANIFEST%\}},\"annotations\":{\"org.opencontainers.image.ref.name\":$(js "$NAME"),\"io.containerd.image.name\":$(js "$NAME")}}" \
        > index.json
    printf '{"imageLayoutVersion":"1.0.0"}' > oci-layout
    ENTRIES=(oci-layout index.json blobs)
else
    printf '[{"Config":"blobs/sha256/%s","RepoTags":[%s],"Layers":["blobs/sha256/%s"]}]' \
        "$(digest_of "$CONFIG")" "$(js "$NAME")" "$(digest_of "$LAYER")" > manifest.json
    ENTRIES=(manifest.json blobs)
fi
cd - >/dev/null
OUTABS=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$WORK/out" -cf "$OUTABS.tmp" "${ENTRIES[@]}"
mv "$OUTABS.tmp" "$OUTABS"
echo "mkimage: wrote $OUTABS ($FORMAT, $NAME)" >&2
