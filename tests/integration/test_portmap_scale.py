"""portmap with a podman-sized port range: `-p 1000-60999:1000-60999` is 60,000 portMappings
entries (~4 MB of JSON on stdin). ADD, CHECK and DEL run through bin/portmap with both backends,
the rule counts are read back from the kernel, nothing is left after DEL, and the time must grow
linearly with the mappings (a quadratic step makes 6x the mappings cost ~36x, not ~6x).

Times are the CPU seconds of the plugin process (children included), which a loaded machine
disturbs far less than wall time; user, sys and wall are printed. The user time (our work, and
the tools') must be linear for every verb, the total for every verb that does not list the
container's rules: a listing is a kernel rule dump, which restarts at the head of the chain for
each 32 KB of output, so its system time grows as n^2 (60k: nftables CHECK/DEL ~1.2 s of
~1.7 s; iptables CHECK, iptables-save of 180k rules, ~8 s). iptables DEL drops the chains unread.
"""
from __future__ import annotations

import json
import resource
import time

import pytest

from helpers import run_plugin

pytestmark = pytest.mark.root
CID = "cnit-scale"
NET = "pmscale"
HOST_IP, CONT_IP = "10.93.0.1", "10.93.0.2"
TIMES: dict = {}


def mappings(n: int) -> list:
    """What podman 4 sends for `-p 1000-<999+n>:1000-<999+n>`: one entry per port."""
    return [{"hostPort": p, "containerPort": p, "protocol": "tcp", "hostIP": ""}
            for p in range(1000, 1000 + n)]


def conf(backend: str, n: int, cont) -> bytes:
    c = {"cniVersion": "1.0.0", "name": NET, "type": "portmap", "backend": backend,
         "capabilities": {"portMappings": True},
         "runtimeConfig": {"portMappings": mappings(n)},
         "prevResult": {"cniVersion": "1.0.0",
                        "interfaces": [{"name": "eth0", "sandbox": cont.path}],
                        "ips": [{"address": f"{CONT_IP}/24", "gateway": HOST_IP, "interface": 0}]}}
    return json.dumps(c, separators=(",", ":")).encode()


@pytest.fixture
def pair(host_ns, cont_ns):
    """A veth between the test's host and container namespaces, as bridge/ptp would leave it."""
    host_ns.ip("link", "add", "cnitsc0", "type", "veth", "peer", "name", "eth0", "netns", cont_ns.name)
    host_ns.ip("addr", "add", f"{HOST_IP}/24", "dev", "cnitsc0")
    host_ns.ip("link", "set", "cnitsc0", "up")
    cont_ns.ip("addr", "add", f"{CONT_IP}/24", "dev", "eth0")
    cont_ns.ip("link", "set", "eth0", "up")
    return host_ns, cont_ns


def timed(cmd: str, data: bytes, host, cont) -> tuple:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = run_plugin("portmap", cmd, data, container_id=CID, netns=cont.path, in_netns=host.name,
                   timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.rc == 0, f"{cmd}: rc={r.rc} {r.stdout[:500]} {r.stderr[-2000:]}"
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, wall


def ipt_counts(host, dn: str) -> tuple:
    """(rules in the container's CNI-DN chain, its jumps in CNI-HOSTPORT-DNAT), from iptables-save."""
    lines = host.run("iptables-save", "-t", "nat").stdout.splitlines()
    return (sum(1 for ln in lines if ln.startswith(f"-A {dn} ")),
            sum(1 for ln in lines if ln.startswith("-A CNI-HOSTPORT-DNAT ") and ln.endswith(f"-j {dn}")))


def nft_counts(host) -> dict:
    """{chain: rules commented with the container ID} in `ip cni_hostport`, from nft -j."""
    r = host.run("nft", "-j", "list", "table", "ip", "cni_hostport", check=False)
    out: dict = {}
    if r.returncode != 0:
        return out
    for o in json.loads(r.stdout)["nftables"]:
        rule = o.get("rule")
        if rule and rule.get("comment") == CID:
            out[rule["chain"]] = out.get(rule["chain"], 0) + 1
    return out


def run_scale(backend: str, n: int, host, cont, capsys) -> dict:
    from cni.fw.portmap import dn_chain
    data = conf(backend, n, cont)
    dn = dn_chain(NET, CID)
    t = {}
    try:
        t["ADD"] = timed("ADD", data, host, cont)
        if backend == "iptables":
            assert ipt_counts(host, dn) == (3 * n, -(-n // 15))   # 2 SETMARK + 1 DNAT a port; 15 a jump
        else:
            assert nft_counts(host) == {"hostports": n, "masquerading": 2}
        t["CHECK"] = timed("CHECK", data, host, cont)
        t["DEL"] = timed("DEL", data, host, cont)
    finally:
        run_plugin("portmap", "DEL", data, container_id=CID, netns=cont.path, in_netns=host.name,
                   timeout=600)
    assert ipt_counts(host, dn) == (0, 0)
    assert f":{dn} " not in host.run("iptables-save", "-t", "nat").stdout
    assert nft_counts(host) == {}
    TIMES[(backend, n)] = t
    with capsys.disabled():
        print(f"\nportmap {backend} {n} mappings ({len(data) / 1e6:.1f} MB stdin): " + ", ".join(
            f"{k} cpu {u + y:.2f}s (user {u:.2f} sys {y:.2f}) wall {w:.2f}s" for k, (u, y, w) in t.items()))
    return t


UNLISTED = {"iptables": ("ADD", "DEL"), "nftables": ("ADD",)}    # verbs with no rule dump


def assert_linear(backend: str, small: dict, big: dict, bound: float, what: str) -> None:
    """User time linear for every verb; user + sys where no rule dump (module docstring)."""
    for verb, (u, y, _) in big.items():
        su, sy, _ = small[verb]
        ratios = {"user": u / max(su, 0.05)}
        if verb in UNLISTED[backend]:
            ratios["total"] = (u + y) / max(su + sy, 0.05)
        for kind, r in ratios.items():
            assert r < bound, f"{verb} {kind}: {what} cost {r:.1f}x"


BACKENDS = ["iptables", pytest.param("nftables", marks=pytest.mark.tool("nft"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_portmap_20k_linear(pair, capsys, backend):
    """2k and 20k mappings: ten times the mappings may cost at most 20x (quadratic: ~100x)."""
    host, cont = pair
    small = run_scale(backend, 2000, host, cont, capsys)
    big = run_scale(backend, 20000, host, cont, capsys)
    assert_linear(backend, small, big, 20, "20k mappings against 2k")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_portmap_60k_linear(pair, capsys, backend):
    """podman's `-p 1000-60999:1000-60999`: 60k mappings, 4 MB of JSON; 6x the mappings of the
    10k run may cost at most 12x (quadratic: 36x)."""
    host, cont = pair
    ten = run_scale(backend, 10000, host, cont, capsys)
    sixty = run_scale(backend, 60000, host, cont, capsys)
    assert_linear(backend, ten, sixty, 12, "60k mappings against 10k")


def small_conf(backend: str, cont, version: str = "1.0.0") -> dict:
    return {"cniVersion": version, "name": NET, "type": "portmap", "backend": backend,
            "capabilities": {"portMappings": True},
            "runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"},
                                               {"hostPort": 61000, "containerPort": 53, "protocol": "udp"}]},
            "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": cont.path}],
                           "ips": [{"address": f"{CONT_IP}/24", "interface": 0}]}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_container_next_to_20k(pair, capsys, backend):
    """Another pod's ADD/CHECK/DEL/GC on a node where one pod maps 20k ports reads only what it
    needs: well under a second each (reading the whole 60k-rule table took ~4 s), and leaves
    the big pod's rules alone."""
    from cni.fw.portmap import dn_chain
    host, cont = pair
    big = conf(backend, 20000, cont)
    small = json.dumps(small_conf(backend, cont)).encode()
    dn = dn_chain(NET, CID)

    def op(cmd, data, cid):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = run_plugin("portmap", cmd, data, container_id=cid, netns=cont.path, in_netns=host.name,
                       timeout=600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert r.rc == 0, f"{cmd} {cid}: {r.stdout[:500]} {r.stderr[-1500:]}"
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def big_intact():
        if backend == "iptables":
            assert ipt_counts(host, dn) == (60000, 1334)
        else:
            assert nft_counts(host) == {"hostports": 20000, "masquerading": 2}
    try:
        op("ADD", big, CID)
        cpu = {"ADD": op("ADD", small, "cnit-small"), "CHECK": op("CHECK", small, "cnit-small"),
               "DEL": op("DEL", small, "cnit-small")}
        big_intact()
        if backend == "iptables":
            small_dn = dn_chain(NET, "cnit-small")
            op("ADD", small, "cnit-small")
            assert ipt_counts(host, small_dn) == (6, 2)
            gc = small_conf(backend, cont, "1.1.0")
            gc["cni.dev/valid-attachments"] = [{"containerID": CID, "ifname": "eth0"}]
            cpu["GC"] = op("GC", json.dumps(gc).encode(), "")
            assert ipt_counts(host, small_dn) == (0, 0)
            big_intact()
        with capsys.disabled():
            print(f"\nportmap {backend}, next to 20k mappings, a 2-mapping pod: "
                  + ", ".join(f"{k} cpu {v:.2f}s" for k, v in cpu.items()))
        assert all(v < 1.5 for v in cpu.values()), cpu
    finally:
        op("DEL", small, "cnit-small")
        op("DEL", big, CID)
    assert ipt_counts(host, dn) == (0, 0) and nft_counts(host) == {}
