"""Entering a netns three ways: os.setns (3.12+), libc via _ctypes, and the nsenter helper.

Each path is forced in a fresh interpreter; each must create netlink sockets, write
sysctls and create a tap inside the target netns, leaving the caller's netns alone.
"""
from __future__ import annotations

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = [pytest.mark.root]

FORCE = {
    # Python < 3.12 has no os.setns (posix.setns, which os re-exports): stand one in, built
    # on libc, to exercise that branch
    "os.setns": "import posix\nfrom cni.std import setns as netns\n"
                "if not hasattr(posix, 'setns'):\n"
                "    posix.setns = netns._libc_setns()\n"
                "netns._load_setns()\n"
                "assert netns._setns is posix.setns\n",
    "ctypes": "import posix\nfrom cni.std import setns as netns\n"
              "if hasattr(posix, 'setns'):\n"
              "    del posix.setns\n"
              "netns._load_setns()\n"
              "assert netns._setns.__name__ == 'libc_setns'\n",
    "nsenter": "from cni.std import setns as netns\n"
               "netns._setns = netns._no_setns\n"
               "assert not netns.can_setns()\n",
}

BODY = """
from cni.netns import NetNS
from cni.nl.rtnl import Rtnl
from cni import sysctl
from cni.links.tap import _create, IFF_TAP, IFF_NO_PI
before = os.readlink("/proc/thread-self/ns/net")
with NetNS.open(PATH) as ns:
    with Rtnl(ns) as h:
        assert h.link_lookup("cnitp0") is not None, "netlink socket is not in the netns"
    sysctl.ensure("net/ipv4/conf/cnitp0/arp_notify", "1", ns=ns)
    assert sysctl.get("net/ipv4/conf/cnitp0/arp_notify", ns=ns) == "1"
    _create("cnittap0", IFF_TAP | IFF_NO_PI, None, None, ns)
assert os.readlink("/proc/thread-self/ns/net") == before
print("ok")
"""


@pytest.mark.parametrize("mode", sorted(FORCE))
def test_enter_path(make_netns, mode):
    ns = make_netns("path")
    ns.ip("link", "add", "cnitp0", "type", "veth", "peer", "name", "cnitp1")
    code = (f"import os, sys\nsys.path.insert(0, {os.path.join(ROOT, 'lib')!r})\n"
            f"PATH = {ns.path!r}\n" + FORCE[mode] + BODY)
    r = subprocess.run(["/usr/bin/python3", "-IS", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    assert ns.run("cat", "/proc/sys/net/ipv4/conf/cnitp0/arp_notify").stdout.strip() == "1"
    assert ns.ipj("link", "show", "cnittap0")[0]["ifname"] == "cnittap0"
    assert subprocess.run(["ip", "link", "show", "cnittap0"], capture_output=True).returncode != 0


def test_nsenter_fallback_runs_a_plugin(make_netns, built_bins):
    """loopback ADD through the exec protocol with setns unavailable (python3-minimal's case)."""
    ns = make_netns("nsent")
    ns.ip("link", "set", "lo", "down")
    code = (f"import sys\nsys.argv = [{os.path.join(built_bins, 'loopback')!r}]\n"
            f"sys.path[:0] = sys.argv[:1]\n"
            "from cni.std import setns as netns\nnetns._setns = netns._no_setns\nimport _pycni_main\n")
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": ns.path, "CNI_IFNAME": "lo",
           "PATH": os.environ["PATH"]}
    r = subprocess.run(["/usr/bin/python3", "-IS", "-c", code], capture_output=True, text=True,
                       env=env, input='{"cniVersion":"1.0.0","name":"lo","type":"loopback"}')
    assert r.returncode == 0, r.stdout + r.stderr
    assert "127.0.0.1/8" in r.stdout
    assert "UP" in ns.ipj("link", "show", "lo")[0]["flags"]
