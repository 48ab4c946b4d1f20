"""Network configuration loading (cni.runtime.conf), as libcni's conf.go."""
from __future__ import annotations

import json
import os

import pytest

from cni.errors import CNIError, DecodingError, InvalidConfigError
from cni.runtime import conf
from cni.runtime.conf import NoConfigsFoundError, NotFoundError


def write(d, name, obj):
    p = os.path.join(d, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def netlist(name, *types, **kw):
    return dict({"cniVersion": "1.0.0", "name": name,
                 "plugins": [{"type": t} for t in types]}, **kw)


def test_conflist_before_conf_and_lexical_order(tmp_path):
    d = str(tmp_path)
    write(d, "00-a.conf", {"cniVersion": "0.4.0", "name": "net", "type": "fromconf"})
    write(d, "20-b.conflist", netlist("net", "second"))
    write(d, "10-c.conflist", netlist("net", "first"))
    net = conf.load(d, "net")
    assert [p.type for p in net.plugins] == ["first"]
    assert net.source.endswith("10-c.conflist")


def test_single_conf_becomes_list(tmp_path):
    d = str(tmp_path)
    write(d, "a.json", {"cniVersion": "0.3.1", "name": "lo", "type": "loopback"})
    net = conf.load(d, "lo")
    assert net.cni_version == "0.3.1" and [p.type for p in net.plugins] == ["loopback"]
    # the cached config is Go's ConfListFromConf marshalling: sorted keys, compact
    assert net.bytes == (b'{"cniVersion":"0.3.1","name":"lo","plugins":[{"cniVersion":"0.3.1",'
                         b'"name":"lo","type":"loopback"}]}')


def test_other_extensions_and_dirs_ignored(tmp_path):
    d = str(tmp_path)
    write(d, "x.conflist.bak", netlist("net", "bad"))
    os.makedirs(os.path.join(d, "dir.conflist"))
    with pytest.raises(NoConfigsFoundError):
        conf.load(d, "net")
    with pytest.raises(NoConfigsFoundError):
        conf.load(os.path.join(d, "missing"), "net")


def test_not_found(tmp_path):
    write(str(tmp_path), "a.conflist", netlist("other", "x"))
    with pytest.raises(NotFoundError) as ei:
        conf.load(str(tmp_path), "net")
    assert 'no net configuration with name "net"' in ei.value.msg
    assert ei.value.code == 7


def test_bytes_are_file_bytes(tmp_path):
    text = '{"cniVersion": "1.0.0",\n "name": "n", "plugins": [{"type": "x", "zz": 1}]}\n'
    write(str(tmp_path), "n.conflist", text)
    net = conf.load(str(tmp_path), "n")
    assert net.bytes == text.encode()
    assert net.plugins[0].raw == {"type": "x", "zz": 1}


def test_sibling_folder_plugins(tmp_path):
    d = str(tmp_path)
    write(d, "n.conflist", netlist("n", "inline"))
    write(d, "n/20-b.conf", {"type": "second"})
    write(d, "n/10-a.conf", {"type": "first"})
    write(d, "n/30-c.json", {"type": "ignored"})
    net = conf.load(d, "n")
    assert [p.type for p in net.plugins] == ["inline", "first", "second"]


def test_load_only_inlined_plugins(tmp_path):
    d = str(tmp_path)
    write(d, "n.conflist", netlist("n", "inline", loadOnlyInlinedPlugins=True))
    write(d, "n/10-a.conf", {"type": "first"})
    assert [p.type for p in conf.load(d, "n").plugins] == ["inline"]


def test_plugins_only_from_folder(tmp_path):
    d = str(tmp_path)
    write(d, "n.conflist", {"cniVersion": "1.0.0", "name": "n"})
    write(d, "n/10-a.conf", {"type": "first"})
    assert [p.type for p in conf.load(d, "n").plugins] == ["first"]


def test_no_plugins_anywhere(tmp_path):
    write(str(tmp_path), "n.conflist", {"cniVersion": "1.0.0", "name": "n"})
    with pytest.raises(InvalidConfigError, match="no plugin configs found"):
        conf.load(str(tmp_path), "n")


def test_load_only_inlined_without_plugins_invalid():
    with pytest.raises(InvalidConfigError):
        conf.list_from_bytes(b'{"name":"n","loadOnlyInlinedPlugins":true}')


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "ä", "../x", ".x"])
def test_bad_network_names(name):
    with pytest.raises(InvalidConfigError):
        conf.list_from_bytes(json.dumps(netlist(name, "x")).encode())


@pytest.mark.parametrize("name", ["a", "A_b.c-d", "0net"])
def test_good_network_names(name):
    assert conf.list_from_bytes(json.dumps(netlist(name, "x")).encode()).name == name


@pytest.mark.parametrize("ptype", ["../bin/sh", "/bin/sh", "a/b", "..", "x..y", "", 5])
def test_bad_plugin_types(ptype):
    with pytest.raises(InvalidConfigError):
        conf.list_from_bytes(json.dumps(
            {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": ptype}]}).encode())


def test_missing_type():
    with pytest.raises(InvalidConfigError):
        conf.list_from_bytes(b'{"name":"n","plugins":[{"name":"x"}]}')


@pytest.mark.parametrize("caps", [{"portMappings": "yes"}, ["portMappings"], "x"])
def test_bad_capabilities(caps):
    with pytest.raises(InvalidConfigError):
        conf.list_from_bytes(json.dumps(
            {"name": "n", "plugins": [{"type": "x", "capabilities": caps}]}).encode())


def test_plugins_must_be_nonempty_list():
    for bad in ('[]', '{}', '"x"'):
        with pytest.raises(InvalidConfigError):
            conf.list_from_bytes(('{"name":"n","plugins":%s}' % bad).encode())


@pytest.mark.parametrize("val,expect", [(True, True), ("true", True), ("TRUE", True),
                                        (False, False), ("false", False)])
def test_flags_bool_or_string(val, expect):
    net = conf.list_from_bytes(json.dumps(netlist("n", "x", disableCheck=val,
                                                  disableGC=val)).encode())
    assert net.disable_check is expect and net.disable_gc is expect


def test_flag_bad_value():
    with pytest.raises(InvalidConfigError):
        conf.list_from_bytes(json.dumps(netlist("n", "x", disableCheck="yes")).encode())


def test_cni_versions_candidates():
    net = conf.list_from_bytes(json.dumps(netlist(
        "n", "x", cniVersion="0.4.0", cniVersions=["1.0.0", "9.9.9", "0.3.1"])).encode())
    assert net.cni_versions == ["1.0.0", "0.4.0", "0.3.1"]
    assert net.cni_version == "1.0.0"


def test_cni_version_verbatim_without_list():
    net = conf.list_from_bytes(b'{"name":"n","plugins":[{"type":"x"}]}')
    assert net.cni_version == "" and net.cni_versions == [""]


def test_bad_versions():
    with pytest.raises(CNIError):
        conf.list_from_bytes(json.dumps(netlist("n", "x", cniVersions=["a.b"])).encode())
    with pytest.raises(CNIError):
        conf.list_from_bytes(json.dumps(netlist("n", "x", cniVersions="1.0.0")).encode())


def test_bad_json():
    with pytest.raises(DecodingError):
        conf.list_from_bytes(b'{"name":')
    with pytest.raises(DecodingError):
        conf.list_from_bytes(b'[1]')


def test_unknown_fields_preserved():
    net = conf.list_from_bytes(b'{"name":"n","plugins":[{"type":"x","foo":{"bar":[1]}}]}')
    assert net.plugins[0].raw["foo"] == {"bar": [1]}


def test_load_all_order_and_shadowing(tmp_path):
    d = str(tmp_path)
    write(d, "b.conflist", netlist("two", "x"))
    write(d, "a.conflist", netlist("one", "x"))
    write(d, "c.conf", {"name": "one", "type": "shadowed"})
    write(d, "d.conf", {"name": "three", "type": "y"})
    write(d, "e.conflist", "{broken")
    errors = []
    nets = conf.load_all(d, errors=errors)
    assert [n.name for n in nets] == ["one", "two", "three"]
    assert len(errors) == 1 and errors[0][0].endswith("e.conflist")
    with pytest.raises(DecodingError):
        conf.load_all(d)
