"""The libcni parity API through bin/debug: single-plugin operations, cached config,
validation, version info, plugin finders and cancellation."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from test_runtime_libcni import RESULT, Env, rt

from cni.errors import CNIError, IncompatibleVersionError, InternalError
from cni.runtime import (Cancel, CancelledError, CNIConfig, NetworkConfig, PathFinder,
                         RuntimeConf, VersionInfo, cache, conf_from_bytes, conf_from_file,
                         load_conf)
from cni.runtime import libcni
from cni.runtime.plugins import decode_version_info


@pytest.fixture
def env(tmp_path, built_bins):
    return Env(tmp_path, built_bins)


def conf(env, tag="one", *, ver="1.0.0", **kw) -> NetworkConfig:
    obj = dict({"cniVersion": ver, "name": "single"}, **env.plugin(tag, **kw))
    return conf_from_bytes(json.dumps(obj).encode())


def sleeper(env, name="slow", seconds=30) -> str:
    """A plugin that blocks; it writes its pid to <bin>/<name>.pid first."""
    p = os.path.join(env.bin, name)
    with open(p, "w") as f:
        f.write(f"#!/bin/sh\necho $$ > {p}.pid\nexec sleep {seconds}\n")
    os.chmod(p, 0o755)
    return p


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] in "ZX"
    except FileNotFoundError:
        return True


# ---- single-plugin configurations -------------------------------------------------------

def test_conf_loading(env, tmp_path):
    d = tmp_path / "net.d"
    d.mkdir()
    obj = {"cniVersion": "0.4.0", "name": "one", "type": "debug",
           "capabilities": {"mac": True, "ips": False}}
    (d / "10-one.conf").write_text(json.dumps(obj))
    (d / "20-list.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "two",
                                                    "plugins": [{"type": "debug"}]}))
    c = load_conf(str(d), "one")
    assert (c.name, c.cni_version, c.type, c.capabilities) == \
        ("one", "0.4.0", "debug", {"mac": True, "ips": False})
    assert c.bytes == (d / "10-one.conf").read_bytes()
    assert conf_from_file(str(d / "10-one.conf")).bytes == c.bytes
    assert c.to_list().plugins[0].type == "debug"
    with pytest.raises(CNIError, match="no net configuration with name"):
        load_conf(str(d), "two")  # conflists are not single-plugin configurations
    with pytest.raises(CNIError) as ei:
        conf_from_bytes(b'{"name": "x"}')
    assert ei.value.code == 7


def test_add_check_del_network(env):
    c = conf(env, debugResult=RESULT)
    res = env.cni.add_network(c, rt())
    assert [ip.address_str for ip in res.ips] == ["10.1.0.2/24"]
    (add,) = env.records()
    assert add["command"] == "ADD" and "prevResult" not in add["conf"]
    assert add["conf"]["name"] == "single" and add["conf"]["cniVersion"] == "1.0.0"
    att = cache.read_attachment(env.cache, "single", "ctr1", "eth0")
    assert att.config == c.bytes  # the single conf as read, not wrapped in a list
    assert env.cni.get_network_cached_result(c, rt()).ips == res.ips
    env.cni.check_network(c, rt())
    (chk,) = env.records()
    assert chk["command"] == "CHECK"
    assert chk["conf"]["prevResult"]["ips"][0]["address"] == "10.1.0.2/24"
    env.cni.del_network(c, rt())
    (dl,) = env.records()
    assert dl["command"] == "DEL" and dl["conf"]["prevResult"]["ips"]
    assert env.cni.get_network_cached_result(c, rt()) is None
    env.cni.del_network(c, rt())  # again: no cache, no prevResult
    assert "prevResult" not in env.records()[0]["conf"]


def test_single_network_errors(env):
    c = conf(env, debugError={"code": 11, "msg": "busy"}, debugErrorOn=["ADD"])
    with pytest.raises(CNIError) as ei:
        env.cni.add_network(c, rt())
    assert (ei.value.code, ei.value.msg) == (11, "busy")  # not wrapped: one plugin
    assert env.cni.get_network_cached_result(c, rt()) is None
    with pytest.raises(IncompatibleVersionError, match="does not support the CHECK"):
        env.cni.check_network(conf(env, ver="0.3.1"), rt())
    with pytest.raises(CNIError) as ei:
        env.cni.add_network(conf(env), RuntimeConf("", "/x", "eth0"))
    assert ei.value.code == 3
    # an unreadable cache file: DEL of a single configuration reports it (as libcni does)
    os.makedirs(os.path.join(env.cache, "results"))
    with open(os.path.join(env.cache, "results", "single-ctr1-eth0"), "w") as f:
        f.write("{nope")
    with pytest.raises(InternalError, match="cached result"):
        env.cni.del_network(conf(env), rt())
    env.records()
    env.cni.del_network(conf(env, ver="0.3.1"), rt())  # no cache read before 0.4.0
    assert len(env.records()) == 1


# ---- cached results and configurations ---------------------------------------------------

def test_cached_config(env):
    net = env.net(env.plugin("a", debugResult=RESULT, capabilities={"portMappings": True}))
    pm = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    assert env.cni.get_network_list_cached_config(net, rt()) == (None, None)
    env.cni.add_network_list(net, rt(args=[("K", "V")], capability_args={"portMappings": pm}))
    data, new = env.cni.get_network_list_cached_config(net, RuntimeConf("ctr1", "/new", "eth0"))
    assert data == net.bytes
    assert (new.container_id, new.netns, new.ifname) == ("ctr1", "/new", "eth0")
    assert new.args == [("K", "V")] and new.capability_args == {"portMappings": pm}
    res = env.cni.get_network_list_cached_result(net, rt())
    assert res.ips[0].address_str == "10.1.0.2/24"
    assert env.cni.cached_result(net, rt()) == res  # the earlier name
    c = conf(env, debugResult=RESULT)
    env.cni.add_network(c, rt())
    data, new = env.cni.get_network_cached_config(c, rt())
    assert data == c.bytes and new.args == [] and new.capability_args == {}
    # a legacy (bare result) file has no config: an error, as in libcni
    with open(os.path.join(env.cache, "results", "testnet-ctr1-eth0"), "w") as f:
        json.dump({"cniVersion": "0.4.0", "ips": []}, f)
    with pytest.raises(InternalError, match="cached network 'testnet' config"):
        env.cni.get_network_list_cached_config(net, rt())
    with pytest.raises(InternalError):
        env.cni.get_network_list_cached_config(net, RuntimeConf("ctr1", "/x", ""))


def test_get_cached_attachments(env):
    net = env.net(env.plugin("a"))
    for cid in ("c1", "c2"):
        env.cni.add_network_list(net, RuntimeConf(cid, f"/run/netns/{cid}", "eth0",
                                                  args=[("A", cid)]))
    atts = env.cni.get_cached_attachments()
    assert [(a.container_id, a.network, a.netns, a.cni_args) for a in atts] == [
        ("c1", "testnet", "/run/netns/c1", [("A", "c1")]),
        ("c2", "testnet", "/run/netns/c2", [("A", "c2")])]
    assert [a.container_id for a in env.cni.get_cached_attachments("c2")] == ["c2"]


# ---- validation and versions -------------------------------------------------------------

def test_validate_network(env):
    c = conf(env, capabilities={"mac": True, "ips": False})
    assert env.cni.validate_network(c) == ["mac"]
    newer = conf_from_bytes(json.dumps({"cniVersion": "1.0.0", "name": "x",
                                        "type": "debug-0.4.0"}).encode())
    with pytest.raises(IncompatibleVersionError, match="debug-0.4.0 does not support"):
        env.cni.validate_network(newer)
    missing = conf_from_bytes(b'{"cniVersion": "1.0.0", "name": "x", "type": "nosuch"}')
    with pytest.raises(CNIError, match="failed to find plugin"):
        env.cni.validate_network(missing)
    net = env.net(env.plugin("a"), env.plugin("b", type_="nosuch"))
    with pytest.raises(IncompatibleVersionError, match="nosuch"):
        env.cni.validate_network_list(net)


def test_get_version_info(env):
    libcni._VERSION_CACHE.clear()
    info = env.cni.get_version_info("debug-0.4.0")
    assert info == VersionInfo("1.1.0", ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0"))
    assert info.supports("0.4.0") and not info.supports("1.0.0")
    assert env.cni.plugin_versions("debug")[-1] == "1.1.0"
    old = os.path.join(env.bin, "old")
    with open(old, "w") as f:  # a plugin that predates VERSION
        f.write('#!/bin/sh\necho \'{"code": 4, "msg": "unknown CNI_COMMAND: VERSION"}\'\n'
                'exit 1\n')
    os.chmod(old, 0o755)
    assert env.cni.get_version_info("old") == VersionInfo("0.1.0", ("0.1.0",))
    assert decode_version_info(b'{"cniVersion": "0.2.0"}').supported_versions == \
        ("0.1.0", "0.2.0")
    for bad in (b"nope", b"{}", b'{"cniVersion": "1.0.0"}',
                b'{"cniVersion": "1.0.0", "supportedVersions": [1]}'):
        with pytest.raises(InternalError, match="decoding version info"):
            decode_version_info(bad)


# ---- plugin finders ----------------------------------------------------------------------

def test_custom_finder(env, tmp_path):
    asked = []
    real = PathFinder([env.bin])

    def finder(plugin_type):
        asked.append(plugin_type)
        return real("debug") if plugin_type == "my-plugin" else None

    cni = CNIConfig(["/nonexistent"], cache_dir=env.cache, finder=finder)
    net = env.net(env.plugin("a", type_="my-plugin", debugResult=RESULT))
    cni.add_network_list(net, rt())
    (r,) = env.records()
    assert r["conf"]["type"] == "my-plugin" and r["env"]["CNI_PATH"] == "/nonexistent"
    assert asked == ["my-plugin"]
    with pytest.raises(CNIError, match="failed to find plugin 'other'"):
        cni.add_network_list(env.net(env.plugin("b", type_="other")), rt())
    # DEL skips a plugin the finder does not know, as for a missing file
    cni.del_network_list(env.net(env.plugin("a", type_="my-plugin"),
                                 env.plugin("b", type_="other")), rt())
    assert [r["conf"]["tag"] for r in env.records()] == ["a"]
    assert PathFinder(f"/nonexistent:{env.bin}")("debug") == os.path.join(env.bin, "debug")


# ---- cancellation ------------------------------------------------------------------------

def test_cancel_kills_running_plugin(env):
    sleeper(env)
    net = env.net(env.plugin("a", debugResult=RESULT), {"type": "slow"}, env.plugin("c"))
    with Cancel() as c:
        threading.Timer(0.5, c.cancel).start()
        t0 = time.monotonic()
        with pytest.raises(CancelledError) as ei:
            env.cni.add_network_list(net, rt(), cancel=c)
        took = time.monotonic() - t0
    assert took < 5, took
    assert ei.value.code == 999
    assert 'type="slow" failed (add): plugin slow (ADD) cancelled: cancelled' in ei.value.msg
    with open(os.path.join(env.bin, "slow.pid")) as f:
        pid = int(f.read())
    assert gone(pid)
    assert [r["conf"]["tag"] for r in env.records()] == ["a"]  # c never started
    assert not os.path.exists(os.path.join(env.cache, "results", "testnet-ctr1-eth0"))


def test_cancel_deadline_spans_the_operation(env):
    sleeper(env)
    net = env.net(env.plugin("a"), {"type": "slow"}, cniVersion="1.1.0")
    c = Cancel(timeout=0.6)
    t0 = time.monotonic()
    with pytest.raises(CancelledError, match="deadline exceeded"):
        env.cni.add_network_list(net, rt(), cancel=c)
    assert 0.5 < time.monotonic() - t0 < 5
    assert c.is_set() and c.remaining() == 0
    with pytest.raises(CancelledError, match="deadline exceeded"):  # nothing starts now
        env.cni.status_network_list(net, cancel=c)
    c.close()
    assert [r["conf"]["tag"] for r in env.records()] == ["a"]  # before the deadline
    with open(os.path.join(env.bin, "slow.pid")) as f:
        assert gone(int(f.read()))


def test_cancel_with_threading_event_and_before_start(env):
    sleeper(env)
    ev = threading.Event()
    threading.Timer(0.3, ev.set).start()
    with pytest.raises(CancelledError):
        env.cni.status_network_list(env.net({"type": "slow"}, cniVersion="1.1.0"), cancel=ev)
    with pytest.raises(CancelledError, match="not started"):
        env.cni.del_network_list(env.net(env.plugin("a")), rt(), cancel=ev)
    assert env.records() == []
    with pytest.raises(CancelledError):
        env.cni.get_version_info("slow", cancel=ev)
    with pytest.raises(CancelledError):
        env.cni.gc_network_list(env.net(env.plugin("a"), cniVersion="1.1.0"), [], cancel=ev)
    # an unset token changes nothing
    with Cancel(timeout=30) as c:
        env.cni.add_network(conf(env), rt(), cancel=c)
        env.cni.check_network(conf(env), rt(), cancel=c)
        env.cni.del_network(conf(env), rt(), cancel=c)
        assert env.cni.validate_network(conf(env), cancel=c) == []
    assert [r["command"] for r in env.records()] == ["ADD", "CHECK", "DEL"]


# ---- the public API reads well in help() -------------------------------------------------

def test_public_api_has_docstrings_and_hints():
    import inspect

    import cni.runtime as api
    from cni import types
    missing = []
    objs = [getattr(api, n) for n in api.__all__ if not n.isupper()]
    objs += [getattr(types, n) for n in ("Result", "Interface", "IPConfig", "Route", "DNS")]
    for obj in objs:
        if not (obj.__doc__ or "").strip():
            missing.append(f"{obj.__name__}: no docstring")
        members = inspect.getmembers(obj, inspect.isfunction) if inspect.isclass(obj) \
            else [(obj.__name__, obj)]
        for name, fn in members:
            if name.startswith("_") and name != "__init__":
                continue
            if fn.__qualname__.split(".")[0] != obj.__name__:
                continue  # inherited (e.g. CNIError's methods)
            if name != "__init__" and not (fn.__doc__ or "").strip():
                missing.append(f"{obj.__name__}.{name}: no docstring")
            sig = inspect.signature(fn)
            if name != "__init__" and sig.return_annotation is inspect.Signature.empty:
                missing.append(f"{obj.__name__}.{name}: no return annotation")
    assert missing == [], "\n".join(missing)
