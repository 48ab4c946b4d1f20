"""Shared fixtures: fresh network namespaces, plugin runner, markers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from helpers import BIN, GO_BIN, ROOT

NS_PREFIX = "cnit-"


def _kind_available(kind: str) -> bool:
    """True if the kernel can create a link of this kind (probed in a scratch netns)."""
    name = NS_PREFIX + "probe-" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        extra = []
        if kind in ("macvlan", "macvtap", "ipvlan", "ipvtap", "vlan"):
            subprocess.run(["ip", "-n", name, "link", "add", "par0", "type", "veth", "peer",
                            "name", "par1"], check=True, capture_output=True)
            extra = ["link", "par0"]
        args = ["id", "10"] if kind == "vlan" else (["table", "10"] if kind == "vrf" else [])
        r = subprocess.run(["ip", "-n", name, "link", "add", *extra, "p0", "type", kind, *args],
                           capture_output=True)
        return r.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", name])


_KMOD_CACHE: dict = {}


def pytest_runtest_setup(item):
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root")
    for m in item.iter_markers("tool"):
        for tool in m.args:
            if shutil.which(tool) is None:
                pytest.skip(f"needs {tool}")
    for m in item.iter_markers("gobin"):
        for name in m.args:
            if not os.path.exists(os.path.join(GO_BIN, name)):
                pytest.skip(f"needs Go reference plugin {GO_BIN}/{name}")
    for m in item.iter_markers("kmod"):
        for kind in m.args:
            if kind not in _KMOD_CACHE:
                _KMOD_CACHE[kind] = os.geteuid() == 0 and _kind_available(kind)
            if not _KMOD_CACHE[kind]:
                pytest.skip(f"this kernel cannot create {kind} links")


class NetNSHandle:
    """A named network namespace made for one test."""

    def __init__(self, name: str):
        self.name = name
        self.path = f"/run/netns/{name}"

    def run(self, *argv, check=True, **kw):
        """Run a command inside this netns."""
        return subprocess.run(["ip", "netns", "exec", self.name, *argv],
                              check=check, capture_output=True, text=True, **kw)

    def ip(self, *args, check=True):
        return subprocess.run(["ip", "-n", self.name, *args], check=check,
                              capture_output=True, text=True)

    def ipj(self, *args):
        """`ip -j` output inside this netns, decoded."""
        out = subprocess.run(["ip", "-j", "-n", self.name, *args], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out or "[]")

    def __repr__(self):
        return f"NetNSHandle({self.name})"


@pytest.fixture
def make_netns():
    """Factory for fresh named netns; all are deleted at teardown."""
    made = []

    def make(tag: str = "ns") -> NetNSHandle:
        name = f"{NS_PREFIX}{tag}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        _MADE.add(name)
        h = NetNSHandle(name)
        h.ip("link", "set", "lo", "up")
        made.append(h)
        return h

    yield make
    for h in reversed(made):
        subprocess.run(["ip", "netns", "del", h.name], capture_output=True)


@pytest.fixture
def host_ns(make_netns):
    """A netns that plays the role of the node (root netns stays untouched)."""
    return make_netns("host")


@pytest.fixture
def cont_ns(make_netns):
    """A netns that plays the role of the container."""
    return make_netns("cont")


_MADE: set = set()


OUR_NFT_TABLES = ("cni_plugins_masquerade", "cni_hostport", "cni_firewall")


def _root_firewall() -> tuple:
    """(our nf_tables tables, CNI-* iptables chains) in the root netns, as sets."""
    tables, chains = set(), set()
    if os.geteuid() != 0:
        return tables, chains
    if shutil.which("nft"):
        out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        tables = {tuple(ln.split()[1:3]) for ln in out.splitlines()
                  if ln.startswith("table ") and ln.split()[-1] in OUR_NFT_TABLES}
    for save in ("iptables-save", "ip6tables-save"):
        if shutil.which(save):
            out = subprocess.run([save], capture_output=True, text=True).stdout
            chains |= {(save, ln[1:].split()[0]) for ln in out.splitlines() if ln.startswith(":CNI-")}
    return tables, chains


@pytest.fixture(scope="session", autouse=True)
def _no_leaked_netns():
    """Every netns this session made is gone at the end, no cnit* link is in the root netns,
    and the root netns holds no CNI firewall table or chain it did not hold at the start (a
    test's firewall work belongs in its own netns). What the session left is removed, then
    reported."""
    tables0, chains0 = _root_firewall()
    yield
    tables1, chains1 = _root_firewall()
    new_tables = sorted(tables1 - tables0)
    for family, name in new_tables:
        subprocess.run(["nft", "delete", "table", family, name], capture_output=True)
    new_chains = sorted(chains1 - chains0)
    leaked = []
    if os.path.isdir("/run/netns"):
        leaked = sorted(n for n in os.listdir("/run/netns") if n in _MADE)
        for n in leaked:
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    stray = sorted({ln.split(": ")[1].split("@")[0] for ln in links.splitlines()
                    if ": cnit" in ln})
    assert not leaked, f"tests leaked netns: {leaked}"
    assert not stray, f"tests left links in the root netns: {stray}"
    assert not new_tables, f"tests left nf_tables tables in the root netns: {new_tables}"
    assert not new_chains, f"tests left iptables chains in the root netns: {new_chains}"


@pytest.fixture(scope="session")
def built_bins():
    """Make sure bin/ is built (make does the work; a no-op when fresh)."""
    subprocess.run(["make", "-s", "-C", ROOT, "build"], check=True)
    return BIN
