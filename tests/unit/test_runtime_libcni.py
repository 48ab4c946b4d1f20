"""cni.runtime.libcni against the debug plugin: ordering, prevResult, cache, versions, GC."""
from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

from cni import invoke
from cni.errors import CNIError, IncompatibleVersionError
from cni.runtime import CNIConfig, RuntimeConf, cache, list_from_bytes
from cni.runtime import libcni

RESULT = {"cniVersion": "1.0.0",
          "interfaces": [{"name": "eth0", "mac": "0a:58:0a:01:00:02", "sandbox": "/x"}],
          "ips": [{"address": "10.1.0.2/24", "gateway": "10.1.0.1", "interface": 0}]}


class Env:
    """A plugin dir with debug copies, a call log, a cache dir, and helpers."""

    def __init__(self, tmp, bins):
        self.dir = str(tmp)
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        for name in ("debug", "debug-0.4.0", "debug-1.0.0", "dbg2"):
            shutil.copy(os.path.join(bins, "debug"), os.path.join(self.bin, name))
        self.log = os.path.join(self.dir, "calls.jsonl")
        self.cache = os.path.join(self.dir, "cache")
        self.calls = 0
        self.cni = CNIConfig([self.bin], cache_dir=self.cache, exec_fn=self._exec)

    def _exec(self, path, stdin, env, timeout, **kw):
        self.calls += 1
        return invoke.exec_plugin(path, stdin, env, timeout, **kw)

    def plugin(self, tag, type_="debug", **kw):
        return dict({"type": type_, "tag": tag, "cniOutput": self.log}, **kw)

    def net(self, *plugins, **kw):
        obj = dict({"cniVersion": "1.0.0", "name": "testnet", "plugins": list(plugins)}, **kw)
        return list_from_bytes(json.dumps(obj).encode())

    def records(self):
        if not os.path.exists(self.log):
            return []
        out = []
        with open(self.log) as f:
            for line in f:
                r = json.loads(line)
                r["conf"] = json.loads(r["stdin"])
                out.append(r)
        os.unlink(self.log)
        return out


@pytest.fixture
def env(tmp_path, built_bins):
    return Env(tmp_path, built_bins)


def rt(**kw):
    return RuntimeConf("ctr1", "/run/netns/ctr1", "eth0", **kw)


def test_add_order_prev_result_and_cache(env):
    net = env.net(env.plugin("a", debugResult=RESULT), env.plugin("b"), env.plugin("c"))
    res = env.cni.add_network_list(net, rt())
    assert [ip.address_str for ip in res.ips] == ["10.1.0.2/24"]
    recs = env.records()
    assert [(r["command"], r["conf"]["tag"]) for r in recs] == [("ADD", "a"), ("ADD", "b"),
                                                                ("ADD", "c")]
    assert "prevResult" not in recs[0]["conf"]
    assert recs[1]["conf"]["prevResult"]["ips"][0]["address"] == "10.1.0.2/24"
    assert recs[2]["conf"]["prevResult"] == recs[1]["conf"]["prevResult"]
    for r in recs:
        assert r["conf"]["name"] == "testnet" and r["conf"]["cniVersion"] == "1.0.0"
        e = r["env"]
        assert (e["CNI_CONTAINERID"], e["CNI_NETNS"], e["CNI_IFNAME"]) == \
            ("ctr1", "/run/netns/ctr1", "eth0")
        assert e["CNI_PATH"] == env.bin
    p = os.path.join(env.cache, "results", "testnet-ctr1-eth0")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    with open(p) as f:
        obj = json.load(f)
    assert list(obj) == ["kind", "containerId", "config", "ifName", "networkName", "netns",
                         "result"]
    import base64
    assert base64.b64decode(obj["config"]) == net.bytes
    assert obj["result"]["ips"][0]["address"] == "10.1.0.2/24"
    assert obj["result"]["dns"] == {}


def test_add_failure_stops_and_writes_no_cache(env):
    net = env.net(env.plugin("a", debugResult=RESULT),
                  env.plugin("b", debugError={"code": 11, "msg": "busy"}), env.plugin("c"))
    with pytest.raises(CNIError) as ei:
        env.cni.add_network_list(net, rt())
    assert ei.value.code == 11
    assert 'plugin type="debug" failed (add): busy' in ei.value.msg
    assert [r["conf"]["tag"] for r in env.records()] == ["a", "b"]
    assert not os.path.exists(os.path.join(env.cache, "results", "testnet-ctr1-eth0"))


def test_add_validates_attachment(env):
    net = env.net(env.plugin("a"))
    for cid, ifname, code in (("", "eth0", 3), ("-bad", "eth0", 4), ("ok", "", 4),
                              ("ok", "a/b", 4), ("ok", "x" * 16, 4)):
        with pytest.raises(CNIError) as ei:
            env.cni.add_network_list(net, RuntimeConf(cid, "/x", ifname))
        assert ei.value.code == code
    assert env.records() == []


def test_add_missing_plugin(env):
    net = env.net(env.plugin("a"), env.plugin("b", type_="nosuch"))
    with pytest.raises(CNIError, match="failed to find plugin"):
        env.cni.add_network_list(net, rt())


def test_del_reverse_with_cached_result(env):
    net = env.net(env.plugin("a", debugResult=RESULT), env.plugin("b"), env.plugin("c"))
    env.cni.add_network_list(net, rt())
    env.records()
    env.cni.del_network_list(net, rt())
    recs = env.records()
    assert [(r["command"], r["conf"]["tag"]) for r in recs] == [("DEL", "c"), ("DEL", "b"),
                                                                ("DEL", "a")]
    for r in recs:
        assert r["conf"]["prevResult"]["ips"][0]["address"] == "10.1.0.2/24"
    assert os.listdir(os.path.join(env.cache, "results")) == []
    env.cni.del_network_list(net, rt())  # again: no cache, no prevResult, still fine
    assert all("prevResult" not in r["conf"] for r in env.records())


def test_del_continues_past_failures_and_keeps_cache(env):
    net = env.net(env.plugin("ipam", debugResult=RESULT),
                  env.plugin("b", debugError={"code": 7, "msg": "first"}, debugErrorOn=["DEL"]),
                  env.plugin("c", debugError={"code": 5, "msg": "second"}, debugErrorOn=["DEL"]))
    env.cni.add_network_list(net, rt())
    env.records()
    with pytest.raises(CNIError) as ei:
        env.cni.del_network_list(net, rt())
    assert ei.value.code == 5 and "second" in ei.value.msg  # first error in DEL order
    assert [r["conf"]["tag"] for r in env.records()] == ["c", "b", "ipam"]
    assert os.path.exists(os.path.join(env.cache, "results", "testnet-ctr1-eth0"))


def test_del_skips_missing_plugin(env, capsys):
    net = env.net(env.plugin("a", debugResult=RESULT), env.plugin("b", type_="dbg2"))
    env.cni.add_network_list(net, rt())
    env.records()
    os.unlink(os.path.join(env.bin, "dbg2"))
    env.cni.del_network_list(net, rt())
    assert [r["conf"]["tag"] for r in env.records()] == ["a"]
    assert "missing plugin 'dbg2'" in capsys.readouterr().err
    assert os.listdir(os.path.join(env.cache, "results")) == []


def test_del_legacy_cache_file(env):
    net = env.net(env.plugin("a"))
    os.makedirs(os.path.join(env.cache, "results"))
    with open(os.path.join(env.cache, "results", "testnet-ctr1-eth0"), "w") as f:
        json.dump({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.9.0.9/24"}],
                   "dns": {}}, f)
    env.cni.del_network_list(net, rt())
    (r,) = env.records()
    assert r["conf"]["prevResult"] == {"cniVersion": "1.0.0",
                                       "ips": [{"address": "10.9.0.9/24"}]}


def test_del_unreadable_cache_is_dropped(env):
    net = env.net(env.plugin("a"))
    os.makedirs(os.path.join(env.cache, "results"))
    with open(os.path.join(env.cache, "results", "testnet-ctr1-eth0"), "w") as f:
        f.write("{nope")
    env.cni.del_network_list(net, rt())
    assert "prevResult" not in env.records()[0]["conf"]


def test_del_old_version_sends_no_prev_result(env):
    net = env.net(env.plugin("a", debugResult=RESULT), cniVersion="0.3.1")
    env.cni.add_network_list(net, rt())
    env.records()
    env.cni.del_network_list(net, rt())
    assert "prevResult" not in env.records()[0]["conf"]
    assert os.listdir(os.path.join(env.cache, "results")) == []


def test_capability_filtering_and_args(env):
    caps = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "mac": "c2:11:22:33:44:55", "bandwidth": {"ingressRate": 1}}
    net = env.net(env.plugin("a", capabilities={"portMappings": True, "mac": False}),
                  env.plugin("b", capabilities={"bandwidth": True, "ips": True}),
                  env.plugin("c", runtimeConfig={"keep": 1}))
    r = rt(args=[("IgnoreUnknown", "1"), ("K8S_POD_NAME", "p")], capability_args=caps)
    env.cni.add_network_list(net, r)
    a, b, c = env.records()
    assert a["conf"]["runtimeConfig"] == {"portMappings": caps["portMappings"]}
    assert b["conf"]["runtimeConfig"] == {"bandwidth": {"ingressRate": 1}}
    assert c["conf"]["runtimeConfig"] == {"keep": 1}
    assert "capabilities" not in a["conf"]
    assert a["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=p"
    att = cache.read_attachment(env.cache, "testnet", "ctr1", "eth0")
    assert att.cni_args == [("IgnoreUnknown", "1"), ("K8S_POD_NAME", "p")]
    assert att.capability_args == caps


def test_check(env):
    net = env.net(env.plugin("a", debugResult=RESULT), env.plugin("b"))
    env.cni.add_network_list(net, rt())
    env.records()
    env.cni.check_network_list(net, rt())
    recs = env.records()
    assert [(r["command"], r["conf"]["tag"]) for r in recs] == [("CHECK", "a"), ("CHECK", "b")]
    assert all(r["conf"]["prevResult"]["ips"] for r in recs)


def test_check_disabled_and_old_version(env):
    net = env.net(env.plugin("a"), disableCheck=True)
    env.cni.check_network_list(net, rt())
    assert env.records() == []
    net = env.net(env.plugin("a"), cniVersion="0.3.1", disableCheck=True)
    with pytest.raises(IncompatibleVersionError, match="does not support the CHECK"):
        env.cni.check_network_list(net, rt())


def test_check_stops_at_first_error(env):
    net = env.net(env.plugin("a", debugError={"code": 100, "msg": "drift"}), env.plugin("b"))
    with pytest.raises(CNIError) as ei:
        env.cni.check_network_list(net, rt())
    assert ei.value.code == 100
    assert [r["conf"]["tag"] for r in env.records()] == ["a"]


def test_version_selection_mixed_plugins(env):
    net = env.net(env.plugin("a"), env.plugin("b", type_="debug-0.4.0"),
                  cniVersion="0.3.1", cniVersions=["1.1.0", "1.0.0", "0.4.0"])
    assert env.cni.select_version(net) == "0.4.0"
    env.cni.add_network_list(net, rt())
    assert {r["conf"]["cniVersion"] for r in env.records()} == {"0.4.0"}
    net = env.net(env.plugin("a"), env.plugin("b", type_="debug-1.0.0"),
                  cniVersions=["1.1.0", "1.0.0"])
    assert env.cni.select_version(net) == "1.0.0"
    net = env.net(env.plugin("a"), env.plugin("b", type_="debug-0.4.0"),
                  cniVersion="1.0.0", cniVersions=["1.1.0"])
    with pytest.raises(IncompatibleVersionError):
        env.cni.select_version(net)


def test_single_version_needs_no_probe(env):
    net = env.net(env.plugin("a"))
    env.calls = 0
    assert env.cni.select_version(net) == "1.0.0"
    assert env.calls == 0


def test_version_probe_cached_per_file(env):
    libcni._VERSION_CACHE.clear()
    net = env.net(env.plugin("a"), env.plugin("b"), cniVersions=["1.1.0", "1.0.0"])
    env.calls = 0
    env.cni.select_version(net)
    env.cni.select_version(net)
    assert env.calls == 1
    p = os.path.join(env.bin, "debug")
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new binary: ask again
    env.cni.select_version(net)
    assert env.calls == 2
    assert env.cni.plugin_versions("debug-0.4.0")[-1] == "0.4.0"


def test_gc_valid_attachments(env):
    net = env.net(env.plugin("a", debugResult=RESULT), env.plugin("b"), cniVersion="1.1.0")
    for cid in ("keep", "stale1", "stale2"):
        env.cni.add_network_list(net, RuntimeConf(cid, f"/run/netns/{cid}", "eth0"))
    other = env.net(env.plugin("o"), name="othernet", cniVersion="1.1.0")
    env.cni.add_network_list(other, RuntimeConf("stale1", "/x", "eth0"))
    env.records()
    env.cni.gc_network_list(net, valid_attachments=[("keep", "eth0")])
    recs = env.records()
    dels = [(r["env"]["CNI_CONTAINERID"], r["conf"]["tag"]) for r in recs
            if r["command"] == "DEL"]
    assert dels == [("stale1", "b"), ("stale1", "a"), ("stale2", "b"), ("stale2", "a")]
    assert all(r["conf"]["prevResult"]["ips"] for r in recs if r["command"] == "DEL")
    gcs = [r for r in recs if r["command"] == "GC"]
    assert [r["conf"]["tag"] for r in gcs] == ["a", "b"]
    for r in gcs:
        want = [{"containerID": "keep", "ifname": "eth0"}]
        assert r["conf"]["cni.dev/valid-attachments"] == want
        assert r["conf"]["cni.dev/attachments"] == want
        assert r["env"]["CNI_CONTAINERID"] == "" and r["env"]["CNI_PATH"] == env.bin
    left = sorted(os.listdir(os.path.join(env.cache, "results")))
    assert left == ["othernet-stale1-eth0", "testnet-keep-eth0"]


def test_gc_without_args_deletes_all_and_sends_no_key(env):
    net = env.net(env.plugin("a"), cniVersion="1.1.0")
    env.cni.add_network_list(net, rt())
    env.records()
    env.cni.gc_network_list(net)
    recs = env.records()
    assert [r["command"] for r in recs] == ["DEL", "GC"]
    assert "cni.dev/valid-attachments" not in recs[1]["conf"]


def test_gc_disabled_and_old_version(env):
    net = env.net(env.plugin("a"), cniVersion="1.1.0", disableGC=True)
    env.cni.add_network_list(net, rt())
    env.records()
    env.cni.gc_network_list(net, [])
    assert env.records() == []
    net = env.net(env.plugin("a"), cniVersion="1.0.0")
    env.cni.gc_network_list(net, [])
    assert [r["command"] for r in env.records()] == ["DEL"]  # stale DEL, but no GC verb


def test_gc_collects_errors(env):
    net = env.net(env.plugin("a", debugError={"code": 100, "msg": "a-fails"}, debugErrorOn=["GC"]),
                  env.plugin("b", debugError={"code": 101, "msg": "b-fails"}, debugErrorOn=["GC"]),
                  cniVersion="1.1.0")
    with pytest.raises(CNIError) as ei:
        env.cni.gc_network_list(net, [])
    assert ei.value.code == 100 and "b-fails" in ei.value.details
    assert len(env.records()) == 2


def test_status(env):
    net = env.net(env.plugin("a"), env.plugin("b"), cniVersion="1.1.0")
    env.cni.status_network_list(net)
    recs = env.records()
    assert [(r["command"], r["conf"]["tag"]) for r in recs] == [("STATUS", "a"), ("STATUS", "b")]
    assert recs[0]["env"]["CNI_CONTAINERID"] == ""
    net = env.net(env.plugin("a", debugError={"code": 50, "msg": "no ips left"}),
                  env.plugin("b"), cniVersion="1.1.0")
    with pytest.raises(CNIError) as ei:
        env.cni.status_network_list(net)
    assert ei.value.code == 50 and ei.value.msg == "no ips left"
    assert len(env.records()) == 1
    env.cni.status_network_list(env.net(env.plugin("a", debugError={"code": 50, "msg": "x"})))
    assert env.records() == []  # 1.0.0: STATUS does not exist, no-op


def test_load_only_inlined_end_to_end(env, tmp_path):
    from cni.runtime import load
    d = tmp_path / "net.d"
    (d / "testnet").mkdir(parents=True)
    (d / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "testnet",
                                              "plugins": [env.plugin("inline")]}))
    (d / "testnet" / "10-x.conf").write_text(json.dumps(env.plugin("extra")))
    env.cni.add_network_list(load(str(d), "testnet"), rt())
    assert [r["conf"]["tag"] for r in env.records()] == ["inline", "extra"]
    (d / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "testnet",
                                              "loadOnlyInlinedPlugins": True,
                                              "plugins": [env.plugin("inline")]}))
    env.cni.del_network_list(load(str(d), "testnet"), rt())
    assert [r["conf"]["tag"] for r in env.records()] == ["inline"]


def test_timeout(env):
    slow = os.path.join(env.bin, "slow")
    with open(slow, "w") as f:
        f.write("#!/bin/sh\nsleep 5\n")
    os.chmod(slow, 0o755)
    cni = CNIConfig([env.bin], cache_dir=env.cache, timeout=0.3)
    with pytest.raises(CNIError, match="timed out"):
        cni.add_network_list(env.net({"type": "slow"}), rt())


def test_cached_result_and_attachments(env):
    net = env.net(env.plugin("a", debugResult=RESULT))
    assert env.cni.cached_result(net, rt()) is None
    env.cni.add_network_list(net, rt())
    assert env.cni.cached_result(net, rt()).ips[0].address_str == "10.1.0.2/24"
    (att,) = env.cni.cached_attachments("ctr1")
    assert (att.network, att.ifname, att.netns) == ("testnet", "eth0", "/run/netns/ctr1")


def test_validate_network_list(env):
    net = env.net(env.plugin("a", capabilities={"portMappings": True}),
                  env.plugin("b", type_="debug-0.4.0", capabilities={"mac": True, "x": False}))
    with pytest.raises(IncompatibleVersionError, match="debug-0.4.0"):
        env.cni.validate_network_list(net)
    net = env.net(env.plugin("a", capabilities={"portMappings": True}),
                  env.plugin("b", capabilities={"mac": True, "x": False}))
    assert env.cni.validate_network_list(net) == ["portMappings", "mac"]
