"""static IPAM, in-process through skel with an injected environment."""
from __future__ import annotations

import io
import json

import pytest

import static
from cni import skel


def run(conf, cmd="ADD", args=""):
    env = {"CNI_COMMAND": cmd, "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": args}
    out = io.StringIO()
    rc = skel.run(static.PLUGIN, env, io.BytesIO(json.dumps(conf).encode()), out, io.StringIO())
    return rc, (json.loads(out.getvalue()) if out.getvalue() else None)


def conf(ipam, ver="1.0.0", **top):
    d = {"cniVersion": ver, "name": "n", "type": "bridge", "ipam": dict({"type": "static"}, **ipam)}
    d.update(top)
    return d


BASE = {"addresses": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"},
                      {"address": "3ffe:ffff:0:01ff::1/64", "gateway": "3ffe:ffff:0::1"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}],
        "dns": {"nameservers": ["8.8.8.8"], "domain": "example.com", "search": ["example.com"]}}


def test_add_full():
    rc, out = run(conf(BASE))
    assert rc == 0
    assert out["ips"] == [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"},
                          {"address": "3ffe:ffff:0:1ff::1/64", "gateway": "3ffe:ffff::1"}]
    assert out["routes"][1] == {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}
    assert out["dns"]["nameservers"] == ["8.8.8.8"]


@pytest.mark.parametrize("ver", ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_every_version(ver):
    rc, out = run(conf({"addresses": [{"address": "10.10.0.1/24"}]}, ver))
    assert rc == 0 and out["cniVersion"] == ver
    if ver in ("0.1.0", "0.2.0"):
        assert out["ip4"]["ip"] == "10.10.0.1/24"
    else:
        assert out["ips"][0]["address"] == "10.10.0.1/24"


def test_cni_args_append_and_gateway():
    rc, out = run(conf({"addresses": [{"address": "10.10.0.1/24"}]}),
                  args="IP=10.20.0.5/16, fd00::5/64;GATEWAY=10.20.0.1,fd00::1")
    assert rc == 0
    assert out["ips"] == [{"address": "10.10.0.1/24"},
                          {"address": "10.20.0.5/16", "gateway": "10.20.0.1"},
                          {"address": "fd00::5/64", "gateway": "fd00::1"}]


def test_precedence_args_then_capability():
    c = conf({"addresses": [{"address": "10.10.0.1/24"}]}, args={"cni": {"ips": ["10.30.0.3/24"]}})
    assert run(c, args="IP=10.20.0.5/16")[1]["ips"] == [{"address": "10.30.0.3/24"}]
    c["runtimeConfig"] = {"ips": ["10.40.0.4/24"]}
    assert run(c)[1]["ips"] == [{"address": "10.40.0.4/24"}]


@pytest.mark.parametrize("ipam,args,code", [
    ({"addresses": [{"address": "10.10.0.1"}]}, "", 7),
    ({"addresses": [{"address": "10.10.0.1/33"}]}, "", 7),
    ({"addresses": [{"address": "10.10.0.1/24", "gateway": "x"}]}, "", 7),
    ({}, "IP=10.0.0.1", 4),
    ({}, "IP=10.0.0.1/24;GATEWAY=nope", 4),
    ({}, "FOO=bar", 4),
    ({"addresses": "x"}, "", 7),
])
def test_invalid(ipam, args, code):
    rc, out = run(conf(ipam), args=args)
    assert rc == 1 and out["code"] == code


def test_more_than_one_per_family_needs_030():
    two = {"addresses": [{"address": "10.10.0.1/24"}, {"address": "10.11.0.1/24"}]}
    rc, out = run(conf(two, "0.2.0"))
    assert rc == 1 and out["code"] == 7 and "more than 1 address per family" in out["details"]
    assert run(conf(two, "0.3.0"))[0] == 0


def test_missing_ipam():
    c = conf({})
    del c["ipam"]
    rc, out = run(c)
    assert rc == 1 and out["code"] == 7


def test_del_noop_and_check():
    assert run(conf(BASE), "DEL") == (0, None)
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"},
                                           {"address": "3ffe:ffff:0:1ff::1/64",
                                            "gateway": "3ffe:ffff::1"}]}
    assert run(conf(BASE, prevResult=prev), "CHECK") == (0, None)
    prev["ips"][0]["gateway"] = "10.10.0.9"
    rc, out = run(conf(BASE, prevResult=prev), "CHECK")
    assert rc == 1
    prev["ips"] = prev["ips"][1:]
    assert run(conf(BASE, prevResult=prev), "CHECK")[0] == 1
    rc, out = run(conf(BASE), "CHECK")
    assert rc == 1 and "prevResult" in out["msg"]
