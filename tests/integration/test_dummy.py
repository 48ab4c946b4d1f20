"""dummy over the exec protocol (skips where the kernel has no dummy driver)."""
from __future__ import annotations

import functools

import pytest

from helpers import host_local, netconf, run_in_host

pytestmark = [pytest.mark.root, pytest.mark.kmod("dummy")]


def conf(tmp_path, ver="1.0.0", **kw):
    ipam = host_local(tmp_path, {"subnet": "10.71.0.0/24"})
    return netconf(ver, "dnet", "dummy", {"ipam": ipam}, kw)


run = functools.partial(run_in_host, "dummy")


@pytest.mark.parametrize("ver", ["0.2.0", "0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del(host_ns, cont_ns, built_bins, tmp_path, ver):
    c = conf(tmp_path, ver)
    r = run("ADD", c, host_ns, cont_ns, ifname="dum0")
    assert r.rc == 0, r
    link = cont_ns.ipj("-d", "addr", "show", "dum0")[0]
    assert link["linkinfo"]["info_kind"] == "dummy" and "UP" in link["flags"]
    assert [a["local"] for a in link["addr_info"]] [:1] == ["10.71.0.2"]
    if ver >= "0.4.0":
        assert run("CHECK", dict(c, prevResult=r.json), host_ns, cont_ns, ifname="dum0").rc == 0
    assert run("DEL", c, host_ns, cont_ns, ifname="dum0").rc == 0
    assert [x["ifname"] for x in cont_ns.ipj("link")] == ["lo"]
    assert run("DEL", c, host_ns, cont_ns, ifname="dum0").rc == 0


def test_requires_ipam(host_ns, cont_ns, built_bins, tmp_path):
    r = run("ADD", conf(tmp_path, ipam=None), host_ns, cont_ns)
    assert r.rc == 1 and r.json["code"] == 7 and "IPAM" in r.json["msg"], r
    assert [x["ifname"] for x in cont_ns.ipj("link")] == ["lo"]
