"""UPDATE (our extension) without the kernel: the skel gate and the rule for plugins without an
update handler, CNIConfig.update_network_list (ordering, prevResult, DEL+ADD fallback on code 4,
refusals, cache rewrite) against the debug plugin, and tuning's backup plan."""
from __future__ import annotations

import base64
import io
import json
import os

import pytest

from cni import skel
from cni.std import json as jsonx
from cni.config import NetConf
from cni.errors import CNIError
from cni.runtime import RuntimeConf, list_from_bytes
from cni.types import IPConfig, Result
from test_runtime_libcni import RESULT, Env

PREV = {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1"}]}
ENV = {"CNI_COMMAND": "UPDATE", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x",
       "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
CALLS: list = []


class Conf(NetConf):
    FIELDS = {"bad": ("bad", bool, False)}
    __slots__ = ("bad",)


def _check(args, conf):
    CALLS.append(("check", args.command))
    if conf.bad:
        raise CNIError("bridge mtu differs", "1400 != 1500")


def _update(args, conf):
    CALLS.append(("update", args.command))
    return Result(conf.cni_version, ips=[IPConfig("10.0.0.9/24", "10.0.0.1")])


WITH_UPDATE = skel.Plugin("t", Conf, add=_update, check=_check, update=_update)
CHECK_ONLY = skel.Plugin("t", Conf, add=_update, check=_check)
NOTHING = skel.Plugin("t", Conf, add=_update)


def run(plugin, conf=None, **env):
    e = {**ENV, **env}
    e = {k: v for k, v in e.items() if v is not None}
    c = {"cniVersion": "1.0.0", "name": "n", "type": "t", "prevResult": PREV}
    c.update(conf or {})
    c = {k: v for k, v in c.items() if v is not None}
    out = io.StringIO()
    CALLS.clear()
    rc = skel.run(plugin, environ=e, stdin=io.BytesIO(jsonx.dumps(c).encode()), stdout=out,
                  stderr=io.StringIO())
    return rc, jsonx.loads(out.getvalue()) if out.getvalue() else None


def test_skel_update_handler_result_printed():
    rc, out = run(WITH_UPDATE)
    assert rc == 0 and out["ips"][0]["address"] == "10.0.0.9/24"
    assert CALLS == [("update", "UPDATE")]


def test_skel_update_needs_1_0_0_and_attachment_env():
    for ver in ("0.4.0", "0.3.1"):
        rc, out = run(WITH_UPDATE, {"cniVersion": ver})
        assert rc == 1 and out["code"] == 1 and "UPDATE" in out["msg"], out
    assert CALLS == []
    for var in ("CNI_NETNS", "CNI_CONTAINERID", "CNI_IFNAME"):
        rc, out = run(WITH_UPDATE, **{var: None})
        assert rc == 1 and out["code"] == 4 and var in out["msg"]
    rc, out = run(WITH_UPDATE, {"cniVersion": "1.1.0"})
    assert rc == 0


def test_skel_without_update_handler_check_decides():
    rc, out = run(CHECK_ONLY)                        # nothing changed: prevResult comes back
    assert rc == 0 and out == PREV and CALLS == [("check", "UPDATE")]
    rc, out = run(CHECK_ONLY, {"bad": True})         # something it set up would change
    assert rc == 1 and out["code"] == 7
    assert "UPDATE cannot change what t set up" in out["msg"] and "mtu" in out["details"]
    rc, out = run(CHECK_ONLY, {"prevResult": None})
    assert rc == 1 and out["code"] == 7 and "prevResult" in out["msg"]
    rc, out = run(NOTHING)                           # neither: unknown command, as Go answers
    assert rc == 1 and out["code"] == 4 and out["msg"] == "unknown CNI_COMMAND: UPDATE"


def test_version_reply_unchanged():
    rc, out = run(WITH_UPDATE, CNI_COMMAND="VERSION")
    assert rc == 0 and set(out) == {"cniVersion", "supportedVersions"}


# --- runtime library --------------------------------------------------------------------------

@pytest.fixture
def env(tmp_path, built_bins):
    return Env(tmp_path, built_bins)


def rt(caps=None):
    return RuntimeConf("ctr1", "/run/netns/ctr1", "eth0", capability_args=caps)


def _net(env, *plugins):
    return env.net(*plugins)


def _cache(env) -> dict:
    with open(os.path.join(env.cache, "results", "testnet-ctr1-eth0")) as f:
        return json.load(f)


def _plugins(env, b_extra=None):
    return (env.plugin("a", debugResult=RESULT),
            env.plugin("b", capabilities={"portMappings": True}, **(b_extra or {})),
            env.plugin("c"))


def test_update_runs_each_plugin_and_rewrites_cache(env):
    old = _net(env, *_plugins(env))
    env.cni.add_network_list(old, rt({"portMappings": [{"hostPort": 1}]}))
    env.records()
    new = _net(env, *_plugins(env, {"x": 2}))
    res = env.cni.update_network_list(new, rt(), {"portMappings": [{"hostPort": 2}]})
    recs = env.records()
    assert [(r["command"], r["conf"]["tag"]) for r in recs] == [("UPDATE", "a"), ("UPDATE", "b"),
                                                                ("UPDATE", "c")]
    assert recs[0]["conf"]["prevResult"]["ips"][0]["address"] == "10.1.0.2/24"   # the cache
    assert recs[1]["conf"]["runtimeConfig"] == {"portMappings": [{"hostPort": 2}]}
    assert recs[1]["conf"]["x"] == 2
    assert res.ips[0].address_str == "10.1.0.2/24"
    obj = _cache(env)
    assert obj["capabilityArgs"] == {"portMappings": [{"hostPort": 2}]}
    assert base64.b64decode(obj["config"]) == new.bytes
    # None keeps the cached capability args
    env.cni.update_network_list(new, rt())
    assert env.records()[1]["conf"]["runtimeConfig"] == {"portMappings": [{"hostPort": 2}]}


def test_update_falls_back_to_del_add_on_code_4(env):
    old = _net(env, *_plugins(env))
    env.cni.add_network_list(old, rt({"portMappings": [{"hostPort": 1}]}))
    env.records()
    real = env.cni.exec_fn

    def old_plugins(path, stdin, e, timeout, **kw):   # a and b predate UPDATE
        if e["CNI_COMMAND"] == "UPDATE" and json.loads(stdin)["tag"] in ("a", "b"):
            env.records_extra.append(("UPDATE", json.loads(stdin)["tag"]))
            raise CNIError("unknown CNI_COMMAND: UPDATE", code=4)
        return real(path, stdin, e, timeout, **kw)
    env.records_extra = []
    env.cni.exec_fn = old_plugins
    new = _net(env, *_plugins(env, {"x": 2}))
    env.cni.update_network_list(new, rt(), {"portMappings": [{"hostPort": 2}]})
    recs = env.records()
    assert env.records_extra == [("UPDATE", "a"), ("UPDATE", "b")]
    # a (the interface plugin) is never deleted; b gets DEL with its cached config, then ADD
    assert [(r["command"], r["conf"]["tag"]) for r in recs] == [("DEL", "b"), ("ADD", "b"),
                                                                ("UPDATE", "c")]
    d, a = recs[0]["conf"], recs[1]["conf"]
    assert "x" not in d and d["runtimeConfig"] == {"portMappings": [{"hostPort": 1}]}
    assert d["prevResult"]["ips"][0]["address"] == "10.1.0.2/24"
    assert a["x"] == 2 and a["runtimeConfig"] == {"portMappings": [{"hostPort": 2}]}
    assert a["prevResult"]["ips"][0]["address"] == "10.1.0.2/24"


def test_update_refusals_change_nothing(env):
    old = _net(env, *_plugins(env))
    env.cni.add_network_list(old, rt())
    env.records()
    before = _cache(env)
    a, b, c = _plugins(env)
    cases = [(_net(env, dict(a, mtu=1400), b, c), 7, "interface plugin"),
             (_net(env, a, b), 7, "add, remove or reorder"),
             (_net(env, a, b, dict(c, type="dbg2")), 7, "add, remove or reorder")]
    for net, code, msg in cases:
        with pytest.raises(CNIError) as ei:
            env.cni.update_network_list(net, rt())
        assert ei.value.code == code and msg in ei.value.msg, ei.value
    with pytest.raises(CNIError) as ei:                  # nothing cached for this container
        env.cni.update_network_list(old, RuntimeConf("ctr2", "/x", "eth0"))
    assert ei.value.code == 3
    v04 = list_from_bytes(json.dumps({"cniVersion": "0.4.0", "name": "testnet",
                                      "plugins": [a, b, c]}).encode())
    with pytest.raises(CNIError) as ei:
        env.cni.update_network_list(v04, rt())
    assert ei.value.code == 1
    assert env.records() == [] and _cache(env) == before


def test_update_failure_keeps_cache(env):
    old = _net(env, *_plugins(env))
    env.cni.add_network_list(old, rt())
    before = _cache(env)
    a, b, c = _plugins(env)
    bad = _net(env, a, b, dict(c, debugError={"code": 11, "msg": "busy"}, debugErrorOn=["UPDATE"]))
    with pytest.raises(CNIError) as ei:
        env.cni.update_network_list(bad, rt())
    assert ei.value.code == 7 and 'type="debug"' in ei.value.msg   # its CHECK failed: refused
    assert _cache(env) == before


# --- tuning's backup plan ---------------------------------------------------------------------

class Link:
    def __init__(self, **kw):
        self.mac, self.promisc, self.mtu = kw.get("mac", "aa:aa:aa:aa:aa:aa"), kw.get("promisc", False), \
            kw.get("mtu", 1500)
        self.allmulti, self.txqlen, self.name = kw.get("allmulti", False), kw.get("txqlen", 1000), "eth0"


def test_tuning_plan_keeps_originals():
    from cni.meta.tuning import plan_update
    # ADD saved mtu 1500 and promisc off; the link now has mtu 1400, promisc on
    saved = {"mtu": 1500, "promisc": False}
    link = Link(mtu=1400, promisc=True)
    back, during, after = plan_update(saved, link, {"mtu": 1300, "promisc": False, "allmulti": None,
                                                    "txQLen": 500, "mac": "", "ifName": ""})
    assert back == {"promisc": False}                     # dropped: the original comes back
    assert during == {"mtu": 1500, "promisc": False, "txQLen": 1000}
    assert after == {"mtu": 1500, "txQLen": 1000}         # mtu's original is never overwritten
    back, during, after = plan_update(after, Link(mtu=1300, txqlen=500),
                                      {"mtu": 1300, "promisc": False, "allmulti": None,
                                       "txQLen": 500, "mac": "", "ifName": ""})
    assert back == {} and during == after == {"mtu": 1500, "txQLen": 1000}   # idempotent


def test_update_after_single_conf_add(env):
    from cni.runtime import conf_from_bytes
    conf = conf_from_bytes(json.dumps({"cniVersion": "1.0.0", "name": "testnet",
                                       **env.plugin("a", debugResult=RESULT)}).encode())
    env.cni.add_network(conf, rt())
    env.records()
    res = env.cni.update_network_list(conf.to_list(), rt())
    assert res.ips[0].address_str == "10.1.0.2/24"
    assert [r["command"] for r in env.records()] == ["UPDATE"]


def test_cnitool_update(env, tmp_path):
    from cni.runtime import cnitool
    netd = tmp_path / "net.d"
    netd.mkdir()
    a, b, c = _plugins(env)
    (netd / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "testnet",
                                                "plugins": [a, b, c]}))
    base = {"NETCONFPATH": str(netd), "CNI_PATH": env.bin, "CNI_CACHE_DIR": env.cache,
            "CNI_CONTAINERID": "ctr1", "PATH": os.environ.get("PATH", "")}

    def tool(*argv, **extra):
        out, err = io.StringIO(), io.StringIO()
        rc = cnitool.run(list(argv), {**base, **extra}, out, err)
        return rc, out.getvalue(), err.getvalue()
    assert tool("update", "testnet")[0] == 2                       # usage: needs the netns
    rc, _, err = tool("update", "testnet", "/run/netns/ctr1")
    assert rc == 1 and "error 3" in err                            # nothing added yet
    assert tool("add", "testnet", "/run/netns/ctr1", CAP_ARGS='{"portMappings": [1]}')[0] == 0
    env.records()
    rc, out, err = tool("update", "testnet", "/run/netns/ctr1", CAP_ARGS='{"portMappings": [2]}')
    assert rc == 0, err
    assert json.loads(out)["ips"][0]["address"] == "10.1.0.2/24"
    assert [r["conf"].get("runtimeConfig") for r in env.records()] == [None, {"portMappings": [2]},
                                                                      None]
    assert tool("update", "testnet", "/run/netns/ctr1")[0] == 0   # no CAP_ARGS: cached ones kept
    assert env.records()[1]["conf"]["runtimeConfig"] == {"portMappings": [2]}
    assert _cache(env)["capabilityArgs"] == {"portMappings": [2]}
