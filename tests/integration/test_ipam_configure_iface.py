"""cni.ipam.configure_iface (Go's ipam.ConfigureIface) against a real kernel, in fresh netns.

Addresses, then link up, IPv6 DAD wait, then routes whose missing gateway is the result's
gateway of the route's family; IPv6 enabled on lo and the interface when a v6 address comes.
"""
from __future__ import annotations

import pytest

from cni.convert import from_json
from cni.errors import CNIError
from cni.ipam.configure import configure_iface
from cni.netns import NetNS
from cni.nl.rtnl import Rtnl

pytestmark = pytest.mark.root


def _cat(ns, key):
    return ns.run("cat", f"/proc/sys/{key}").stdout.strip()


def _pair(host_ns, cont_ns):
    """eth0 in the container netns, its peer up in the host netns (so DAD really runs)."""
    host_ns.ip("link", "add", "cnit-ci0", "type", "veth", "peer", "name", "eth0",
               "netns", cont_ns.name)
    host_ns.ip("link", "set", "cnit-ci0", "up")


RESULT = {
    "cniVersion": "1.1.0",
    "interfaces": [{"name": "cnit-host"}, {"name": "eth0", "sandbox": "/x"}],
    "ips": [{"address": "10.7.0.5/24", "gateway": "10.7.0.1", "interface": 1},
            {"address": "10.8.0.5/24", "gateway": "10.8.0.1", "interface": 1},
            {"address": "fd07::5/64", "gateway": "fd07::1", "interface": 1},
            {"address": "192.0.2.9/32"}],                          # no interface: skipped
    "routes": [{"dst": "0.0.0.0/0"},                                   # -> first v4 gateway
               {"dst": "::/0"},                                        # -> first v6 gateway
               {"dst": "10.99.0.0/16", "gw": "10.7.0.254"},           # own gateway kept
               {"dst": "10.98.0.0/16", "priority": 77},
               {"dst": "10.97.0.0/16", "table": 100}],
}


def test_addresses_routes_gateways_sysctls_and_dad(host_ns, cont_ns):
    _pair(host_ns, cont_ns)
    for dev in ("lo", "eth0"):
        cont_ns.run("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
    res = from_json(RESULT)
    with NetNS.open(cont_ns.path) as ns:
        configure_iface(ns, "eth0", res)
    (link,) = cont_ns.ipj("addr", "show", "dev", "eth0")
    assert "UP" in link["flags"]
    addrs = {(a["local"], a["prefixlen"]): a for a in link["addr_info"] if a.get("scope") == "global"}
    assert set(addrs) == {("10.7.0.5", 24), ("10.8.0.5", 24), ("fd07::5", 64)}
    assert not addrs[("fd07::5", 64)].get("tentative"), "returned before IPv6 DAD finished"
    assert "192.0.2.9" not in str(cont_ns.ipj("addr", "show"))
    for dev in ("lo", "eth0"):
        assert _cat(cont_ns, f"net/ipv6/conf/{dev}/disable_ipv6") == "0"
    assert _cat(cont_ns, "net/ipv6/conf/eth0/keep_addr_on_down") == "1"
    v4 = {r["dst"]: r for r in cont_ns.ipj("route", "show")}
    assert v4["default"]["gateway"] == "10.7.0.1" and v4["default"]["dev"] == "eth0"
    assert v4["10.99.0.0/16"]["gateway"] == "10.7.0.254"
    assert v4["10.98.0.0/16"]["gateway"] == "10.7.0.1" and v4["10.98.0.0/16"]["metric"] == 77
    (t100,) = cont_ns.ipj("route", "show", "table", "100")
    assert (t100["dst"], t100["gateway"]) == ("10.97.0.0/16", "10.7.0.1")
    v6 = {r["dst"]: r for r in cont_ns.ipj("-6", "route", "show")}
    assert v6["default"]["gateway"] == "fd07::1" and v6["default"]["dev"] == "eth0"


def test_route_without_any_gateway_is_a_device_route(host_ns, cont_ns):
    _pair(host_ns, cont_ns)
    res = from_json({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
                     "ips": [{"address": "10.7.0.5/24", "interface": 0}],
                     "routes": [{"dst": "10.50.0.0/16"}]})
    with NetNS.open(cont_ns.path) as ns, Rtnl(ns) as h:
        configure_iface(ns, "eth0", res, rtnl=h)                # caller's handle is used
    (r,) = [r for r in cont_ns.ipj("route", "show") if r["dst"] == "10.50.0.0/16"]
    assert "gateway" not in r and r["dev"] == "eth0"
    # an IPv4-only result leaves IPv6 sysctls alone
    assert _cat(cont_ns, "net/ipv6/conf/eth0/keep_addr_on_down") == "0"


@pytest.mark.parametrize("bad,frag", [
    ({"cniVersion": "1.0.0", "ips": [{"address": "10.7.0.5/24"}]}, "no interfaces"),
    ({"cniVersion": "1.0.0", "interfaces": [{"name": "eth1"}],
      "ips": [{"address": "10.7.0.5/24", "interface": 0}]}, "eth1"),
    ({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
      "ips": [{"address": "10.7.0.5/24", "interface": 3}]}, "out of range"),
])
def test_invalid_results_are_refused_before_touching_the_link(host_ns, cont_ns, bad, frag):
    _pair(host_ns, cont_ns)
    with NetNS.open(cont_ns.path) as ns:
        with pytest.raises(CNIError) as ei:
            configure_iface(ns, "eth0", from_json(bad))
    assert frag in str(ei.value)
    (link,) = cont_ns.ipj("addr", "show", "dev", "eth0")
    assert not [a for a in link["addr_info"] if a.get("scope") == "global"]


def test_missing_interface_fails(cont_ns):
    res = from_json({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
                     "ips": [{"address": "10.7.0.5/24", "interface": 0}]})
    with NetNS.open(cont_ns.path) as ns:
        with pytest.raises(OSError):
            configure_iface(ns, "eth0", res)


def test_duplicate_ipv6_address_fails_the_configuration(host_ns, cont_ns):
    _pair(host_ns, cont_ns)
    host_ns.ip("addr", "add", "fd07::5/64", "dev", "cnit-ci0", "nodad")
    res = from_json({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
                     "ips": [{"address": "fd07::5/64", "gateway": "fd07::1", "interface": 0}]})
    with NetNS.open(cont_ns.path) as ns:
        with pytest.raises(CNIError) as ei:
            configure_iface(ns, "eth0", res)
    assert "duplicate address" in ei.value.msg
