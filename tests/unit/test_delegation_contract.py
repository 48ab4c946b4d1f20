"""Delegation: the embed contract (cni.embed), the environment a delegate gets (skel.Args),
PluginNotFoundError instead of message matching, and setup_veth's own cleanup."""
from __future__ import annotations

import sys
import types

import pytest

from cni import embed, invoke, ipam, skel
from cni import ip as cni_ip
from cni.errors import InvalidConfigError, PluginNotFoundError
from cni.runtime import plugins as rt_plugins


def test_marker_and_table_round_trip(tmp_path, monkeypatch):
    files = {"p.py": b"print(1)\n", "cni/x.py": b""}
    digest = embed.content_hash(files)
    assert digest == embed.content_hash(dict(reversed(list(files.items()))))
    assert digest != embed.content_hash({"p.py": b"print(2)\n", "cni/x.py": b""})
    table = types.ModuleType(embed.TABLE_MODULE)
    exec(embed.table_source({"my-plug": ("my_plug", digest)}), table.__dict__)
    monkeypatch.setitem(sys.modules, embed.TABLE_MODULE, table)
    same = tmp_path / "my-plug"
    same.write_bytes(b"#!zip..." + embed.marker("my-plug", digest))
    other = tmp_path / "other"
    other.write_bytes(b"#!zip..." + embed.marker("my-plug", "0" * 16))
    assert embed.module_for("my-plug", str(same), {}) == "my_plug"
    assert embed.module_for("my-plug", str(other), {}) is None
    assert embed.module_for("my-plug", str(tmp_path / "absent"), {}) is None
    assert embed.module_for("not-embedded", str(same), {}) is None
    assert embed.module_for("my-plug", str(same), {embed.OPT_OUT: "1"}) is None


def test_plugin_declares_its_embeds():
    import bridge
    import loopback
    assert bridge.PLUGIN.embeds == ipam.EMBEDDABLE == ("host-local", "static")
    assert loopback.PLUGIN.embeds == ()


def test_ipam_delegation_uses_the_callers_environment(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(invoke, "delegate", lambda cmd, plugin, stdin, *, env=None, **kw:
                        seen.append((cmd, plugin, env)))

    class Conf:
        raw_bytes = b"{}"

        def ipam_type(self):
            return "host-local"

    env = {"CNI_PATH": "/nowhere", "MARK": "mine"}
    args = skel.Args("DEL", "c1", "", "eth0", "", ["/nowhere"], b"", False, env)
    ipam.exec_del(Conf(), args)
    ipam.exec_check(Conf(), args)
    assert [(c, e) for c, _, e in seen] == [("DEL", env), ("CHECK", env)]
    # the path comes from args, not from this process's CNI_PATH
    (tmp_path / "host-local").write_bytes(b"")
    monkeypatch.setenv("CNI_PATH", str(tmp_path))
    with pytest.raises(PluginNotFoundError):
        ipam.find_delegate(Conf(), args)
    args.path = [str(tmp_path)]
    assert ipam.find_delegate(Conf(), args) == str(tmp_path / "host-local")


def test_not_found_is_a_class_not_a_message(tmp_path):
    with pytest.raises(PluginNotFoundError) as exc:
        invoke.find_in_path("cnit-none", [str(tmp_path)])
    assert exc.value.code == 7 and isinstance(exc.value, InvalidConfigError)
    assert rt_plugins.is_not_found(rt_plugins.not_found("x", "[]"))
    assert rt_plugins.is_not_found(exc.value)
    # the same words from elsewhere (a plugin's own error) are not "not found"
    assert not rt_plugins.is_not_found(InvalidConfigError("failed to find plugin 'x' in path []"))


class _Link:
    def __init__(self, index, name):
        self.index, self.name, self.mac = index, name, "02:00:00:00:00:01"


class _Host:
    def __init__(self):
        self.deleted = []

    def veth_add(self, name, peer, **kw):
        return _Link(7, name)

    def link_up(self, index):
        raise OSError(100, "network is down")

    def link_del(self, ref):
        self.deleted.append(ref)


class _Cont:
    def __init__(self, ns):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def link_lookup(self, name):
        return None


def test_setup_veth_deletes_its_pair_when_a_later_step_fails(monkeypatch):
    monkeypatch.setattr(cni_ip, "Rtnl", _Cont)
    monkeypatch.setattr(cni_ip.sysctl, "ensure", lambda *a, **kw: None)
    host = _Host()
    ns = types.SimpleNamespace(path="/run/netns/x")
    with pytest.raises(OSError):
        cni_ip.setup_veth(host, ns, "eth0")
    assert host.deleted == [7]
