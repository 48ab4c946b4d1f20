#!/bin/sh
# Install the Debian packages the test suite (or, with --demo, the demo) uses, when missing.
set -e
# With --demo: only what `make demo` needs (ip for its output, iptables for ipMasq).
need=""
command -v iptables-restore >/dev/null 2>&1 || need="$need iptables"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v nsenter >/dev/null 2>&1 || need="$need util-linux"
if [ "${1:-}" != --demo ]; then
command -v nft >/dev/null 2>&1 || need="$need nftables"
[ -x /usr/lib/cni/bridge ] || need="$need containernetworking-plugins"
command -v dnsmasq >/dev/null 2>&1 || need="$need dnsmasq-base"
command -v ping >/dev/null 2>&1 || need="$need iputils-ping"
command -v strace >/dev/null 2>&1 || need="$need strace"
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
command -v podman >/dev/null 2>&1 || need="$need podman runc conmon"
[ -x /bin/busybox ] || need="$need busybox-static"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: missing$need (run as root on Debian to install them; tests needing them skip)" >&2
    exit 0
fi
echo "test-deps: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends $need >/dev/null
