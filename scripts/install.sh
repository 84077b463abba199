#!/usr/bin/env bash
# install.sh: install urunc on a node and register it with its engines, idempotently.
#
# Usage: scripts/install.sh [options] [ENGINE...]
#   ENGINE                 containerd, k3s, docker, podman, or all (default: those found)
#   --binary PATH          the urunc binary (default: target/x86_64-unknown-linux-musl/release/
#                          urunc or target/release/urunc of this checkout, else `urunc` in PATH)
#   --prefix DIR           where the binary goes (default /usr/local: DIR/bin/urunc)
#   --tcg                  write accel = "tcg" for QEMU into a new /etc/urunc/config.toml
#                          (hosts whose /dev/kvm cannot run guests: see `urunc check`)
#   --restart              restart the configured engines (systemctl) when their config changed
#   --root DIR             install under DIR instead of / (packaging, tests)
#   -h, --help
# What it writes (each only when missing or lacking urunc; existing settings are kept):
#   PREFIX/bin/urunc, /etc/urunc/config.toml
#   containerd: the `urunc` runtime appended to /etc/containerd/config.toml (created with
#               `containerd config default` when absent). Not an imports drop-in: containerd
#               1.x replaces the whole CRI section with an imported one.
#   k3s:        /var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl
#               (config-v3.toml.tmpl when k3s runs containerd 2)
#   docker:     /etc/docker/daemon.json runtimes.urunc (merged with jq when the file exists)
#   podman:     /etc/containers/containers.conf.d/50-urunc.conf
# Then prints `urunc check`, and how to add the RuntimeClass (deploy/kubernetes/).
# Refuses: not root, an unsupported architecture, CRI-O, containerd config version 1, a
# daemon.json it cannot merge.
set -euo pipefail

die() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*"; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN= PREFIX=/usr/local TCG= RESTART= ROOT= ENGINES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BIN=$2; shift ;;
        --prefix) PREFIX=$2; shift ;;
        --tcg) TCG=1 ;;
        --restart) RESTART=1 ;;
        --root) ROOT=$(cd "$2" && pwd); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        containerd|k3s|docker|podman) ENGINES+=("$1") ;;
        all) ENGINES+=(containerd k3s docker podman) ;;
        crio|cri-o) die "CRI-O is not supported (urunc is driven through containerd's runc shim)" ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done

[ "$(id -u)" = 0 ] || [ -n "$ROOT" ] || die "run as root"
case "$(uname -m)" in x86_64|aarch64) ;; *) die "unsupported architecture $(uname -m) (x86_64, aarch64)" ;; esac

if [ -z "$BIN" ]; then
    for c in "$HERE/target/$(uname -m)-unknown-linux-musl/release/urunc" "$HERE/target/release/urunc"; do
        [ -x "$c" ] && { BIN=$c; break; }
    done
    [ -n "$BIN" ] || BIN=$(command -v urunc || true)
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || die "no urunc binary: build it (scripts/build-static.sh) or pass --binary"
DEST=$PREFIX/bin/urunc   # the path engines are told about

if [ ${#ENGINES[@]} -eq 0 ]; then
    [ -d "$ROOT/var/lib/rancher/k3s" ] && ENGINES+=(k3s)
    if command -v containerd >/dev/null && [ ! -d "$ROOT/var/lib/rancher/k3s" ]; then ENGINES+=(containerd); fi
    command -v dockerd >/dev/null && ENGINES+=(docker)
    command -v podman >/dev/null && ENGINES+=(podman)
    [ ${#ENGINES[@]} -gt 0 ] || say "no engine found; installing the binary only"
fi
if [ -d "$ROOT/etc/crio" ] && [ ${#ENGINES[@]} -eq 0 ]; then
    die "CRI-O is not supported (urunc is driven through containerd's runc shim)"
fi

# --- the binary and its config --------------------------------------------------------------
mkdir -p "$ROOT$PREFIX/bin"
if ! cmp -s "$BIN" "$ROOT$DEST"; then
    install -m 0755 "$BIN" "$ROOT$DEST.new" && mv "$ROOT$DEST.new" "$ROOT$DEST"
    say "installed $DEST"
else
    say "$DEST is current"
fi
CONF=$ROOT/etc/urunc/config.toml
if [ ! -e "$CONF" ]; then
    mkdir -p "$(dirname "$CONF")"
    if [ -n "$TCG" ]; then
        sed 's|^# accel = "tcg"|accel = "tcg"  |' "$HERE/deploy/urunc/config.toml" > "$CONF"
    else
        cp "$HERE/deploy/urunc/config.toml" "$CONF"
    fi
    say "wrote /etc/urunc/config.toml${TCG:+ (QEMU under TCG)}"
else
    say "/etc/urunc/config.toml exists: kept"
fi

# the runtime entry of containerd's CRI plugin; $1: config version (2 or 3)
cri_entry() {
    local plugin='"io.containerd.grpc.v1.cri"'
    [ "$1" = 3 ] && plugin="'io.containerd.cri.v1.runtime'"
    cat <<EOF

# urunc (scripts/install.sh)
[plugins.$plugin.containerd.runtimes.urunc]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["com.urunc.unikernel.*"]
  container_annotations = ["com.urunc.unikernel.*"]
  [plugins.$plugin.containerd.runtimes.urunc.options]
    BinaryName = "$DEST"
EOF
}
has_urunc() { grep -q 'containerd\.runtimes\.urunc\]' "$1" 2>/dev/null; }
config_version() { sed -n 's/^[[:space:]]*version[[:space:]]*=[[:space:]]*\([0-9]\).*/\1/p' "$1" | head -1; }
CHANGED=()

setup_containerd() {
    local f=$ROOT/etc/containerd/config.toml
    if [ ! -e "$f" ]; then
        command -v containerd >/dev/null || die "containerd is not installed"
        mkdir -p "$(dirname "$f")"
        containerd config default > "$f"
        say "wrote a default /etc/containerd/config.toml"
    fi
    if has_urunc "$f"; then say "containerd: urunc already configured"; return; fi
    local v
    v=$(config_version "$f")
    case "$v" in
        2|3) ;;
        *) die "containerd: $f has config version ${v:-1}; migrate it first (containerd config migrate)" ;;
    esac
    cri_entry "$v" >> "$f"
    say "containerd: added the urunc runtime to /etc/containerd/config.toml"
    CHANGED+=(containerd)
}

setup_k3s() {
    local d=$ROOT/var/lib/rancher/k3s/agent/etc/containerd v=2 t
    t=$d/config.toml.tmpl
    if [ -e "$d/config-v3.toml" ]; then v=3; t=$d/config-v3.toml.tmpl; fi
    mkdir -p "$d"
    if has_urunc "$t"; then say "k3s: urunc already configured"; return; fi
    [ -e "$t" ] || printf '{{ template "base" . }}\n' > "$t"
    cri_entry "$v" >> "$t"
    say "k3s: added the urunc runtime to ${t#"$ROOT"}"
    CHANGED+=(k3s)
}

setup_docker() {
    local f=$ROOT/etc/docker/daemon.json
    mkdir -p "$(dirname "$f")"
    if [ ! -s "$f" ]; then
        printf '{\n  "runtimes": {\n    "urunc": { "path": "%s" }\n  }\n}\n' "$DEST" > "$f"
    elif grep -q '"urunc"' "$f"; then
        say "docker: urunc already configured"; return
    elif command -v jq >/dev/null; then
        jq --arg p "$DEST" '.runtimes.urunc = {path: $p}' "$f" > "$f.new" && mv "$f.new" "$f"
    else
        die "docker: $f exists and jq is missing: add {\"runtimes\": {\"urunc\": {\"path\": \"$DEST\"}}} by hand"
    fi
    say "docker: added the urunc runtime to /etc/docker/daemon.json (docker run --runtime urunc)"
    CHANGED+=(docker)
}

setup_podman() {
    local f=$ROOT/etc/containers/containers.conf.d/50-urunc.conf
    mkdir -p "$(dirname "$f")"
    local want
    want=$(sed "s|/usr/local/bin/urunc|$DEST|" "$HERE/deploy/podman/50-urunc.conf")
    if [ -e "$f" ] && [ "$(cat "$f")" = "$want" ]; then say "podman: urunc already configured"; return; fi
    printf '%s\n' "$want" > "$f"
    say "podman: wrote /etc/containers/containers.conf.d/50-urunc.conf (podman --runtime urunc)"
}

for e in "${ENGINES[@]}"; do "setup_$e"; done

if [ -n "$RESTART" ] && [ -z "$ROOT" ] && [ ${#CHANGED[@]} -gt 0 ]; then
    command -v systemctl >/dev/null || die "--restart needs systemd; restart ${CHANGED[*]} by hand"
    for e in "${CHANGED[@]}"; do
        case "$e" in k3s) systemctl restart k3s k3s-agent 2>/dev/null || true ;; *) systemctl restart "$e" ;; esac
    done
elif [ ${#CHANGED[@]} -gt 0 ]; then
    say "restart ${CHANGED[*]} to apply"
fi
case " ${ENGINES[*]} " in
    *" containerd "*|*" k3s "*) say "Kubernetes: kubectl apply -f $HERE/deploy/kubernetes/runtimeclass.yaml; label this node (from a machine with cluster credentials): kubectl label node <node> urunc.io/runtime=true (or let the DaemonSet in deploy/kubernetes/urunc-deploy.yaml install and label every node)" ;;
esac
if [ -z "$ROOT" ]; then
    "$DEST" check || say "urunc check reports problems (above)"
fi
