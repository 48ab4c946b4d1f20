#!/bin/sh
# exec-plugins.sh add|del <container-id> <netns-path>
#
# Attach (add) or detach (del) every network in $NETCONFPATH (default
# /etc/cni/net.d) to a network namespace with bin/cnitool: networks in
# lookup order on ADD, reverse order on DEL. A loopback-only network gets
# interface "lo", the others eth0, eth1, ... DEL goes on past errors.
# Env: CNI_PATH (default: this repo's bin/), NETCONFPATH, CAP_ARGS, CNI_ARGS,
# DEBUG=1 prints each ADD result on stderr. With no configuration in NETCONFPATH it uses the
# bundled default in scripts/net.d.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
CNI_PATH=${CNI_PATH:-$root/bin}
NETCONFPATH=${NETCONFPATH:-/etc/cni/net.d}
CNITOOL=${CNITOOL:-$root/bin/cnitool}
export CNI_PATH NETCONFPATH

usage() { echo "usage: $0 add|del <container-id> <netns-path>" >&2; exit 2; }
[ $# -eq 3 ] || usage
cmd=$1 id=$2 netns=$3
case $cmd in add|del) ;; *) usage ;; esac

tab=$(printf '\t')
list=$("$CNITOOL" list) || exit 1
if [ -z "$list" ] && [ -d "$here/net.d" ]; then
    # no configuration: the bundled default, as priv-net-run.sh does (same on add and del)
    echo "exec-plugins.sh: no networks in $NETCONFPATH; using $here/net.d" >&2
    NETCONFPATH=$here/net.d
    list=$("$CNITOOL" list) || exit 1
fi
[ -n "$list" ] || { echo "exec-plugins.sh: no networks in $NETCONFPATH" >&2; exit 1; }

# "name ifname" lines in ADD order
plan=$(i=0; echo "$list" | while IFS=$tab read -r name _vers plugins _file; do
    if [ "$plugins" = loopback ]; then
        echo "$name lo"
    else
        echo "$name eth$i"; i=$((i + 1))
    fi
done)
[ "$cmd" = del ] && plan=$(echo "$plan" | sed '1!G;h;$!d')  # reverse

rc=0
echo "$plan" | {
    while read -r name ifname; do
        if [ "$cmd" = add ]; then
            out=$(CNI_CONTAINERID=$id "$CNITOOL" add "$name" "$netns" -i "$ifname") || exit 1
            [ "${DEBUG:-0}" = 1 ] && printf '%s\n' "$out" >&2
        else
            CNI_CONTAINERID=$id "$CNITOOL" del "$name" "$netns" -i "$ifname" || rc=1
        fi
    done
    exit $rc
}
