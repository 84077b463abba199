#!/usr/bin/env bash
# deploy-node.sh: the node installer the urunc DaemonSet runs (deploy/kubernetes/urunc-deploy.yaml),
# as kata-deploy and urunc-deploy do: k3s agents and kubelets hold no cluster credentials, so
# labelling the node belongs here, with the DaemonSet's service account, not in install.sh.
#
# Usage: deploy-node.sh [--once] [--no-restart]
#   --once         exit when done (default: stay running, as a DaemonSet pod must)
#   --no-restart   do not restart the node's containerd/k3s (tests; restart by hand)
# Environment:
#   HOST_ROOT      the node's root filesystem, mounted into the pod (default /host)
#   NODE_NAME      this node (the DaemonSet sets it from spec.nodeName; required)
#   URUNC_BIN      the urunc binary to install (default /opt/urunc/bin/urunc, in the image)
#   KUBE_API       the API server (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
#   SA_DIR         the service account's token and CA (default
#                  /var/run/secrets/kubernetes.io/serviceaccount)
# Steps: scripts/install.sh --root HOST_ROOT for the engine found there (k3s, else containerd),
# restart it through the host's PID 1 namespace (hostPID) with systemctl when it changed, then
# label the node urunc.io/runtime=true (the RuntimeClass's nodeSelector).
set -euo pipefail

die() { echo "deploy-node: $*" >&2; exit 1; }
say() { echo "deploy-node: $*"; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
ONCE= RESTART=1
for a in "$@"; do
    case $a in
        --once) ONCE=1 ;;
        --no-restart) RESTART= ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $a (see --help)" ;;
    esac
done
HOST_ROOT=${HOST_ROOT:-/host}
URUNC_BIN=${URUNC_BIN:-/opt/urunc/bin/urunc}
SA_DIR=${SA_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
[ -n "${NODE_NAME:-}" ] || die "NODE_NAME is not set (the DaemonSet passes spec.nodeName)"
[ -d "$HOST_ROOT/etc" ] || die "$HOST_ROOT does not look like the node's root (no etc/)"
if [ -z "${KUBE_API:-}" ]; then
    [ -n "${KUBERNETES_SERVICE_HOST:-}" ] || die "not in a pod: set KUBE_API"
    KUBE_API=https://$KUBERNETES_SERVICE_HOST:${KUBERNETES_SERVICE_PORT:-443}
fi

if [ -d "$HOST_ROOT/var/lib/rancher/k3s" ]; then
    engine=k3s
elif [ -d "$HOST_ROOT/etc/containerd" ] || [ -x "$HOST_ROOT/usr/bin/containerd" ]; then
    engine=containerd
else
    die "neither k3s nor containerd found under $HOST_ROOT"
fi
out=$("$HERE/scripts/install.sh" --root "$HOST_ROOT" --binary "$URUNC_BIN" "$engine")
printf '%s\n' "$out"

if printf '%s' "$out" | grep -q "restart $engine to apply"; then
    if [ -n "$RESTART" ]; then
        units=$engine
        [ "$engine" = k3s ] && units="k3s k3s-agent"
        for u in $units; do
            nsenter -t 1 -m -u -i -n -p -- systemctl try-restart "$u" || true
        done
        say "restarted $engine"
    else
        say "restart $engine on the node to apply"
    fi
fi

# label the node through the API with the pod's service account (a JSON merge patch)
curl_tls=()
[ -f "$SA_DIR/ca.crt" ] && curl_tls=(--cacert "$SA_DIR/ca.crt")
[ -f "$SA_DIR/token" ] || die "no service account token in $SA_DIR"
code=$(curl -sS -o /dev/null -w '%{http_code}' "${curl_tls[@]}" -X PATCH \
    -H "Authorization: Bearer $(cat "$SA_DIR/token")" \
    -H 'Content-Type: application/merge-patch+json' \
    --data '{"metadata":{"labels":{"urunc.io/runtime":"true"}}}' \
    "$KUBE_API/api/v1/nodes/$NODE_NAME") || die "cannot reach the API server at $KUBE_API"
case $code in
    2??) say "labelled node $NODE_NAME urunc.io/runtime=true" ;;
    *) die "labelling node $NODE_NAME failed: HTTP $code (does the service account may patch nodes?)" ;;
esac

[ -n "$ONCE" ] && exit 0
exec sleep infinity
