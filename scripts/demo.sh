#!/bin/sh
# What `sudo make demo` runs (make builds bin/ first): attach a fresh network
# namespace to the bundled networks (scripts/net.d: bridge "pycni0" +
# host-local + portmap + tuning, and loopback) with bin/cnitool, show its
# addresses with `ip -br addr`, detach it and remove what the demo created
# on this host: the bridge, the IPAM directory, the result cache and any
# firewall table or chain the plugins left that was not there before.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
[ "$(id -u)" = 0 ] || { echo "demo.sh: run it as root (sudo make demo)" >&2; exit 1; }
export CNI_PATH="$root/bin" NETCONFPATH="$here/net.d"
for p in cnitool bridge host-local portmap tuning loopback; do
    [ -x "$CNI_PATH/$p" ] || { echo "demo.sh: $CNI_PATH/$p missing: run 'make build'" >&2; exit 1; }
done
bridge=pycni0
ipamdir=/var/lib/cni/networks/pycni
state=$(mktemp -d /tmp/pycni-demo.XXXXXX)
export CNI_CACHE_DIR="$state/cache"

had_bridge=0; ip link show "$bridge" >/dev/null 2>&1 && had_bridge=1
had_ipam=0; [ -e "$ipamdir" ] && had_ipam=1
nft_tables() { command -v nft >/dev/null 2>&1 && nft list tables 2>/dev/null || true; }
ipt_chains() {  # "<cmd> <table> <chain>" for CNI chains
    for cmd in iptables ip6tables; do
        command -v "$cmd-save" >/dev/null 2>&1 || continue
        for t in nat filter; do
            "$cmd-save" -t "$t" 2>/dev/null | sed -n "s/^:\(CNI-[^ ]*\) .*/$cmd $t \1/p"
        done
    done
}
nft_tables | sort > "$state/nft.before"
ipt_chains | sort > "$state/ipt.before"

cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    if [ "$had_bridge" = 0 ] && ip link show "$bridge" >/dev/null 2>&1; then
        ip link del "$bridge" && echo "demo: removed bridge $bridge"
    fi
    if [ "$had_ipam" = 0 ] && [ -d "$ipamdir" ]; then
        rm -rf "$ipamdir" && echo "demo: removed $ipamdir"
        rmdir /var/lib/cni/networks /var/lib/cni 2>/dev/null || true
    fi
    ipt_chains | sort | comm -13 "$state/ipt.before" - | while read -r cmd t chain; do
        "$cmd-save" -t "$t" | grep -- "-j $chain\( \|$\)" | grep '^-A' | sed 's/^-A/-D/' |
            while read -r rule; do eval "$cmd -w -t $t $rule" || true; done
        "$cmd" -w -t "$t" -F "$chain" 2>/dev/null || true
        "$cmd" -w -t "$t" -X "$chain" 2>/dev/null && echo "demo: removed $cmd $t chain $chain"
    done
    nft_tables | sort | comm -13 "$state/nft.before" - | while read -r _ fam name; do
        case $fam/$name in
        */cni_*) nft delete table "$fam" "$name" && echo "demo: removed nft table $fam $name" ;;
        ip/nat|ip/filter|ip/mangle|ip6/nat|ip6/filter|ip6/mangle)
            # made by iptables-nft for the plugins' rules: remove it once it holds none
            save=iptables-save; [ "$fam" = ip6 ] && save=ip6tables-save
            if ! "$save" -t "$name" 2>/dev/null | grep -q '^-A'; then
                nft delete table "$fam" "$name" && echo "demo: removed empty nft table $fam $name"
            fi ;;
        esac
    done
    rm -rf "$state"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

echo "demo: running 'ip -br addr' in a namespace attached to: $("$CNI_PATH/cnitool" list -q | tr '\n' ' ')"
"$here/priv-net-run.sh" ip -br addr
