"""host-local and static against the Go binaries, config by config.

Each scenario runs the same sequence of calls against ours and Go's host-local, each with
its own data dir, and compares exit codes, results (error codes) and the files on disk.
"""
from __future__ import annotations

import os

import pytest

from helpers import BIN, exec_ipam

OURS = os.path.join(BIN, "host-local")
GO = "/usr/lib/cni/host-local"
pytestmark = pytest.mark.gobin("host-local")


def call(binary, conf, cmd="ADD", cid="c1", ifname="eth0", args=""):
    p, out = exec_ipam(binary, conf, cmd, cid, ifname, args)
    if p.returncode and isinstance(out, dict):
        out = {"code": out.get("code")}                # messages differ in wording
    elif isinstance(out, dict) and out.get("dns") == {}:
        del out["dns"]                                 # Go's 1.0 struct always prints it
    return p.returncode, out


def store(d):
    net = os.path.join(d, "net")
    if not os.path.isdir(net):
        return {}
    out = {}
    for n in sorted(os.listdir(net)):
        if n == "lock" or n.startswith(("owner:", ".")):
            continue
        with open(os.path.join(net, n), "rb") as f:
            out[n] = f.read()
    return out


def conf_for(d, ipam, ver="1.0.0", **top):
    return dict({"cniVersion": ver, "name": "net", "type": "bridge",
                 "ipam": dict({"type": "host-local", "dataDir": str(d)}, **ipam)}, **top)


SCENARIOS = {
    "legacy-single-range": ({"subnet": "10.10.0.0/29", "rangeStart": "10.10.0.3",
                             "rangeEnd": "10.10.0.5", "gateway": "10.10.0.4",
                             "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16",
                                                               "gw": "10.10.0.1"}]},
                            [("ADD", f"c{i}", "") for i in range(4)]),
    "gateway-skipped-and-exhaustion": ({"ranges": [[{"subnet": "10.11.0.0/29"}]]},
                                       [("ADD", f"c{i}", "") for i in range(7)]),
    "multi-range-set-wraps": ({"ranges": [[{"subnet": "10.12.0.0/30"},
                                           {"subnet": "10.12.1.0/30"}]]},
                              [("ADD", "a", ""), ("ADD", "b", ""), ("DEL", "a", ""),
                               ("ADD", "c", ""), ("ADD", "d", "")]),
    "dual-stack-v6-small": ({"ranges": [[{"subnet": "10.13.0.0/24"}],
                                        [{"subnet": "fd00:13::/125", "rangeStart": "fd00:13::3"}]]},
                            [("ADD", f"c{i}", "") for i in range(6)] + [("DEL", "c2", ""),
                                                                        ("ADD", "c9", "")]),
    "round-robin-after-del": ({"ranges": [[{"subnet": "10.14.0.0/24"}]]},
                              [("ADD", "a", ""), ("ADD", "b", ""), ("DEL", "b", ""),
                               ("ADD", "c", ""), ("DEL", "a", ""), ("ADD", "d", "")]),
    "requested-ip-cni-args": ({"ranges": [[{"subnet": "10.15.0.0/24"}], [{"subnet": "fd00:15::/64"}]]},
                              [("ADD", "a", "IP=10.15.0.50"),   # Go here: one IP only
                               ("ADD", "b", "IP=10.15.0.50"),           # taken
                               ("ADD", "c", "IP=10.16.0.1"),            # outside every range
                               ("ADD", "d", "IgnoreUnknown=1;FOO=x;IP=10.15.0.51"),
                               ("ADD", "e", "FOO=x"),                  # unknown arg
                               ("ADD", "f", "")]),
    "duplicate-attachment": ({"ranges": [[{"subnet": "10.17.0.0/24"}]]},
                             [("ADD", "a", ""), ("ADD", "a", ""), ("CHECK", "a", ""),
                              ("CHECK", "zz", ""), ("DEL", "zz", ""), ("DEL", "a", ""),
                              ("DEL", "a", "")]),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_answers_and_files_as_go(built_bins, tmp_path, name):
    ipam, steps = SCENARIOS[name]
    for i, (cmd, cid, args) in enumerate(steps):
        got = {}
        for who, binary in (("ours", OURS), ("go", GO)):
            conf = conf_for(tmp_path / who, ipam)
            got[who] = (call(binary, conf, cmd, cid, args=args), store(tmp_path / who))
        if got["ours"][0] == (1, {"code": 4}) and got["go"][0] == (1, {"code": 999}):
            got["go"] = (got["ours"][0], got["go"][1])  # bad CNI_ARGS: we say 4 (env), Go 999
        assert got["ours"] == got["go"], f"step {i} {cmd} {cid} {args}"


CAPS = {
    "ips-capability": {"runtimeConfig": {"ips": ["10.20.0.9/24"]}},
    "args-cni-ips": {"args": {"cni": {"ips": ["10.20.0.10"]}}},
    "ipranges-capability": {"runtimeConfig": {"ipRanges": [[{"subnet": "10.21.0.0/24",
                                                             "rangeStart": "10.21.0.100"}]]}},
}


@pytest.mark.parametrize("name", sorted(CAPS))
def test_runtime_inputs_like_go(built_bins, tmp_path, name):
    ipam = {"ranges": [[{"subnet": "10.20.0.0/24"}]]}
    got = {}
    for who, binary in (("ours", OURS), ("go", GO)):
        conf = conf_for(tmp_path / who, ipam, **CAPS[name])
        got[who] = (call(binary, conf, cid="a"), call(binary, conf, cid="b"), store(tmp_path / who))
    assert got["ours"] == got["go"]


def test_hostile_names_with_nul_and_dots(built_bins, tmp_path):
    for name in ("a\x00b", ".", ".hidden", "a..b/../c"):
        conf = conf_for(tmp_path / "d", {"ranges": [[{"subnet": "10.22.0.0/24"}]]})
        conf["name"] = name
        rc, out = call(OURS, conf)
        assert rc == 1 and out["code"] in (4, 7), name
    assert not os.path.exists(tmp_path / "d") or os.listdir(tmp_path / "d") == []


STATIC = os.path.join(BIN, "static")
STATIC_CASES = [
    ({"addresses": [{"address": "10.30.0.5/24", "gateway": "10.30.0.1"}]}, {}, ""),
    ({"addresses": [{"address": "10.30.0.5/24"}]}, {}, "IP=10.31.0.9/16;GATEWAY=10.31.0.1"),
    ({"addresses": [{"address": "10.30.0.5/24"}]}, {}, "IP=10.31.0.9/16,10.32.0.9/16"),
    ({}, {"runtimeConfig": {"ips": ["10.33.0.4/24"]}}, ""),
    ({"addresses": [{"address": "10.30.0.5/24"}]}, {"runtimeConfig": {"ips": ["10.33.0.4/24"]}},
     "IP=10.31.0.9/16"),
    ({}, {"args": {"cni": {"ips": ["10.34.0.4/24"]}}}, ""),
    ({"addresses": [{"address": "10.30.0.5/24"}]}, {"args": {"cni": {"ips": ["10.34.0.4/24"]}},
                                                    "runtimeConfig": {"ips": ["10.33.0.4/24"]}}, ""),
    ({"addresses": [{"address": "10.30.0.5"}]}, {}, ""),                      # no prefix
    ({"addresses": [{"address": "10.30.0.5/24", "gateway": "nope"}]}, {}, ""),
    ({"addresses": [{"address": "10.30.0.5/24"}]}, {}, "IP=bogus"),
    ({}, {}, ""),                                                             # nothing at all
    ({"addresses": [{"address": "10.30.0.5/24"}, {"address": "fd30::5/64", "gateway": "fd30::1"}],
      "routes": [{"dst": "0.0.0.0/0", "gw": "10.30.0.1"}, {"dst": "::/0"}],
      "dns": {"nameservers": ["10.30.0.1"], "domain": "d", "search": ["s"], "options": ["o"]}},
     {}, ""),
]


@pytest.mark.gobin("static")
@pytest.mark.parametrize("i", range(len(STATIC_CASES)))
def test_static_same_as_go(built_bins, i):
    ipam, top, args = STATIC_CASES[i]
    conf = dict({"cniVersion": "1.0.0", "name": "s", "type": "bridge",
                 "ipam": dict({"type": "static"}, **ipam)}, **top)
    ours, go = call(STATIC, conf, args=args), call("/usr/lib/cni/static", conf, args=args)
    if ours[0] and go[0]:
        assert ours[1]["code"] in (go[1]["code"], 4, 7), (ours, go)  # Go: 999 for config/env errors
    else:
        assert ours == go
