#!/bin/sh
# priv-net-run.sh <command> [args...]
#
# Run a command in a fresh network namespace attached to every network in
# $NETCONFPATH (default /etc/cni/net.d; this repo's scripts/net.d when that
# holds no configuration), then detach the networks and delete the namespace,
# also when the command fails or the script is interrupted.
# Env: CNI_PATH (default: this repo's bin/), NETCONFPATH, CAP_ARGS, CNI_ARGS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
CNI_PATH=${CNI_PATH:-$root/bin}
CNITOOL=${CNITOOL:-$root/bin/cnitool}
NETCONFPATH=${NETCONFPATH:-/etc/cni/net.d}
export CNI_PATH CNITOOL NETCONFPATH

die() { echo "priv-net-run.sh: $*" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: $0 <command> [args...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (it creates a network namespace)"
[ -x "$CNITOOL" ] || die "$CNITOOL not found: run 'make build' first"
if [ -z "$("$CNITOOL" list -q 2>/dev/null)" ]; then
    NETCONFPATH=$here/net.d
    echo "priv-net-run.sh: no networks in the configured NETCONFPATH; using $NETCONFPATH" >&2
fi

# Refuse subnets that overlap an address or route this host already has
# (except routes through the config's own bridge, left by an earlier run).
/usr/bin/python3 -I - "$NETCONFPATH" <<'PY' || exit 1
import ipaddress, json, os, subprocess, sys
d = sys.argv[1]
want = []
for fn in sorted(os.listdir(d)):
    if not fn.endswith((".conflist", ".conf", ".json")):
        continue
    try:
        with open(os.path.join(d, fn)) as f:
            obj = json.load(f)
    except (OSError, ValueError):
        continue
    for p in (obj.get("plugins") or [obj]):
        ipam = p.get("ipam") if isinstance(p, dict) else None
        if not isinstance(ipam, dict):
            continue
        subs = [ipam.get("subnet")]
        for rs in ipam.get("ranges") or []:
            subs += [r.get("subnet") for r in rs if isinstance(r, dict)]
        for s in filter(None, subs):
            want.append((ipaddress.ip_network(s, strict=False), p.get("bridge") or "", fn))
def ipj(*args):
    r = subprocess.run(["ip", "-j"] + list(args), capture_output=True, text=True)
    return json.loads(r.stdout or "[]")
have = []
for fam in ("-4", "-6"):
    for r in ipj(fam, "route", "show", "table", "all"):
        dst = r.get("dst", "")
        if dst and dst != "default" and r.get("type", "unicast") in ("unicast", "local"):
            have.append((ipaddress.ip_network(dst, strict=False), r.get("dev", ""), "route"))
for link in ipj("addr", "show"):
    for a in link.get("addr_info", []):
        have.append((ipaddress.ip_network(a["local"]), link.get("ifname", ""), "address"))
bad = 0
for net, bridge, fn in want:
    for hnet, dev, what in have:
        if hnet.version == net.version and hnet.overlaps(net) and dev != bridge:
            print(f"priv-net-run.sh: subnet {net} of {fn} clashes with {what} {hnet} on "
                  f"{dev}; edit the config's subnet", file=sys.stderr)
            bad = 1
sys.exit(bad)
PY

name=pycni-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
netns=/run/netns/$name
cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    if [ -e "$netns" ]; then
        "$here/exec-plugins.sh" del "$name" "$netns" || { [ "$rc" -ne 0 ] || rc=1; }
        ip netns del "$name" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

ip netns add "$name"
ip -n "$name" link set lo up
"$here/exec-plugins.sh" add "$name" "$netns"
rc=0
ip netns exec "$name" "$@" || rc=$?
exit "$rc"
