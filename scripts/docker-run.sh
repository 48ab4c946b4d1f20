#!/bin/sh
# docker-run.sh [docker run options] <image> [command...]
#
# Run a container with `docker run --net=none`, attach it to every network
# in $NETCONFPATH through its /proc/<pid>/ns/net, run the requested
# container in that network namespace (--net=container:), then detach the
# networks and remove the helper container on exit, error or interrupt.
# Env: CNI_PATH (default: this repo's bin/), NETCONFPATH, CAP_ARGS, CNI_ARGS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
CNI_PATH=${CNI_PATH:-$root/bin}
NETCONFPATH=${NETCONFPATH:-/etc/cni/net.d}
export CNI_PATH NETCONFPATH
[ $# -gt 0 ] || { echo "usage: $0 [docker run options] <image> [command...]" >&2; exit 2; }
command -v docker >/dev/null 2>&1 || { echo "docker-run.sh: docker not found" >&2; exit 1; }

contid=$(docker run -d --net=none busybox:latest /bin/sleep 10000000)
pid=$(docker inspect -f '{{ .State.Pid }}' "$contid")
netns=/proc/$pid/ns/net
cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    "$here/exec-plugins.sh" del "$contid" "$netns" || { [ "$rc" -ne 0 ] || rc=1; }
    docker rm -f "$contid" >/dev/null 2>&1 || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
"$here/exec-plugins.sh" add "$contid" "$netns"
rc=0
docker run --net="container:$contid" "$@" || rc=$?
exit "$rc"
