"""The plugin skeleton: environment validation, decoding, version gates, error shape."""
from __future__ import annotations

import io

import pytest

from cni import skel
from cni.std import json as jsonx
from cni.config import NetConf
from cni.errors import CNIError
from cni.types import IPConfig, Result

CALLS = []


class Conf(NetConf):
    FIELDS = {"flag": ("flag", bool, False)}
    __slots__ = ("flag",)


def _add(args, conf):
    CALLS.append(("ADD", args, conf))
    if conf.raw.get("boom"):
        raise RuntimeError("kaboom")
    if conf.raw.get("cnierr"):
        raise CNIError("custom failure", "why", code=123)
    if conf.raw.get("l2"):
        return Result(conf.cni_version)
    return Result(conf.cni_version, ips=[IPConfig("10.0.0.2/24", "10.0.0.1")])


def _other(args, conf):
    CALLS.append((args.command, args, conf))


PLUGIN = skel.Plugin("t", Conf, add=_add, delete=_other, check=_other, status=_other)
NOGC = skel.Plugin("t", Conf, add=_add, delete=_other)

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x",
       "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
CONF = {"cniVersion": "1.0.0", "name": "net1", "type": "t"}


def run(env=None, conf=CONF, raw=None, plugin=PLUGIN, **over):
    e = dict(ENV if env is None else env)
    e.update(over)
    for k in [k for k, v in e.items() if v is None]:
        del e[k]
    out = io.StringIO()
    err = io.StringIO()
    data = raw if raw is not None else jsonx.dumps(conf).encode()
    rc = skel.run(plugin, environ=e, stdin=io.BytesIO(data), stdout=out, stderr=err)
    text = out.getvalue()
    return rc, (jsonx.loads(text) if text else None), err.getvalue()


def test_add_ok_prints_result_in_config_version():
    rc, out, _ = run()
    assert rc == 0
    assert out == {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1"}]}


@pytest.mark.parametrize("ver", ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_add_every_version(ver):
    rc, out, _ = run(conf=dict(CONF, cniVersion=ver))
    assert rc == 0 and out["cniVersion"] == ver


@pytest.mark.parametrize("cmd,var", [
    ("ADD", "CNI_CONTAINERID"), ("ADD", "CNI_NETNS"), ("ADD", "CNI_IFNAME"),
    ("DEL", "CNI_CONTAINERID"), ("DEL", "CNI_IFNAME"),
    ("CHECK", "CNI_CONTAINERID"), ("CHECK", "CNI_NETNS"), ("CHECK", "CNI_IFNAME"),
])
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_missing_env(cmd, var, how):
    rc, out, _ = run(CNI_COMMAND=cmd, **{var: None if how == "missing" else ""})
    assert rc == 1 and out["code"] == 4 and var in out["msg"]


def test_all_missing_reported_at_once():
    rc, out, _ = run(env={"CNI_COMMAND": "ADD"})
    assert out["code"] == 4
    for var in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"):
        assert var in out["msg"]


def test_gc_needs_cni_path():
    rc, out, _ = run(env={"CNI_COMMAND": "GC"}, conf=dict(CONF, cniVersion="1.1.0"))
    assert rc == 1 and out["code"] == 4 and "CNI_PATH" in out["msg"]


def test_del_without_netns_ok():
    rc, out, _ = run(CNI_COMMAND="DEL", CNI_NETNS=None)
    assert rc == 0 and out is None


@pytest.mark.parametrize("cid", ["-abc", "a/b", "a b", "..", "a;b", "a\x00b", "é"])
def test_bad_container_id(cid):
    rc, out, _ = run(CNI_CONTAINERID=cid)
    assert rc == 1 and out["code"] == 4 and "CNI_CONTAINERID" in out["msg"]


@pytest.mark.parametrize("ifname", ["a" * 16, ".", "..", "a/b", "a:b", "a b", "a\tb", "eth\u00a00"])
def test_bad_ifname(ifname):
    rc, out, _ = run(CNI_IFNAME=ifname)
    assert rc == 1 and out["code"] == 4 and "CNI_IFNAME" in out["msg"]


def test_ifname_15_ok():
    assert run(CNI_IFNAME="a" * 15)[0] == 0


@pytest.mark.parametrize("raw", [b"", b"{", b"nope", b"[1]", b"\xff\xfe", b'{"a":1} x', b"null"])
def test_undecodable_stdin(raw):
    rc, out, _ = run(raw=raw)
    assert rc == 1 and out["code"] == 6


def test_oversized_stdin(monkeypatch):
    assert skel.STDIN_LIMIT >= 256 << 20
    monkeypatch.setattr(skel, "STDIN_LIMIT", 3 << 20)
    monkeypatch.setattr(skel, "_CHUNK", 1 << 20)
    conf = dict(CONF, pad="x" * ((3 << 20) - 100))
    assert run(conf=conf)[0] == 0  # just under: read whole across chunks
    rc, out, _ = run(raw=b" " * ((3 << 20) + 10))
    assert rc == 1 and out["code"] == 5 and "too large" in out["msg"]


@pytest.mark.parametrize("name", [None, "", "-x", "a/b", "../etc", "a b", 5])
def test_bad_network_name(name):
    c = dict(CONF)
    if name is None:
        del c["name"]
    else:
        c["name"] = name
    rc, out, _ = run(conf=c)
    assert rc == 1 and out["code"] == 7


def test_unsupported_version():
    rc, out, _ = run(conf=dict(CONF, cniVersion="2.0.0"))
    assert rc == 1 and out["code"] == 1
    p = skel.Plugin("t", Conf, add=_add, versions=("0.3.1", "0.4.0"))
    rc, out, _ = run(conf=dict(CONF, cniVersion="1.0.0"), plugin=p)
    assert out["code"] == 1 and "0.4.0" in out["details"]


@pytest.mark.parametrize("v", ["x", "1.0.0.0", "1.a"])
def test_bad_version_string(v):
    rc, out, _ = run(conf=dict(CONF, cniVersion=v))
    assert rc == 1 and out["code"] == 6


@pytest.mark.parametrize("cmd,ver", [("CHECK", "0.3.1"), ("STATUS", "1.0.0"), ("GC", "1.0.0")])
def test_version_gates(cmd, ver):
    rc, out, _ = run(CNI_COMMAND=cmd, conf=dict(CONF, cniVersion=ver))
    assert rc == 1 and out["code"] == 1 and cmd in out["msg"]


def test_unknown_verb():
    rc, out, _ = run(CNI_COMMAND="FROB")
    assert rc == 1 and out["code"] == 4 and "FROB" in out["msg"]


def test_unexpected_exception_is_999_without_traceback_on_stdout():
    rc, out, err = run(conf=dict(CONF, boom=True))
    assert rc == 1 and out["code"] == 999 and out["msg"] == "kaboom"
    assert out["details"] == "RuntimeError" and "Traceback" not in err


def test_traceback_on_stderr_with_debug():
    rc, out, err = run(conf=dict(CONF, boom=True), CNI_DEBUG="1")
    assert out["code"] == 999 and "Traceback" in err


def test_plugin_error_passes_through_with_cni_version():
    rc, out, _ = run(conf=dict(CONF, cnierr=True, cniVersion="0.4.0"))
    assert out == {"cniVersion": "0.4.0", "code": 123, "msg": "custom failure", "details": "why"}


def test_l2_result_for_020_is_version_error():
    rc, out, _ = run(conf=dict(CONF, l2=True, cniVersion="0.2.0"))
    assert rc == 1 and out["code"] == 1


def test_bad_field_type_is_code_7():
    rc, out, _ = run(conf=dict(CONF, flag="yes"))
    assert rc == 1 and out["code"] == 7 and "flag" in out["details"]


def test_field_case_insensitive_like_go():
    CALLS.clear()
    assert run(conf=dict(CONF, FLAG=True))[0] == 0
    assert CALLS[-1][2].flag is True


def test_unknown_keys_kept():
    CALLS.clear()
    run(conf=dict(CONF, somethingElse={"a": 1}))
    assert CALLS[-1][2].raw["somethingElse"] == {"a": 1}


def test_bad_prev_result_is_decoding_error():
    rc, out, _ = run(conf=dict(CONF, prevResult={"cniVersion": "1.0.0", "ips": [{"address": "x"}]}))
    assert rc == 1 and out["code"] == 6


def test_prev_result_parsed():
    CALLS.clear()
    prev = {"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.0.0.9/24"}]}
    run(CNI_COMMAND="DEL", conf=dict(CONF, cniVersion="0.3.1", prevResult=prev))
    assert CALLS[-1][2].prev_result.ips[0].address_str == "10.0.0.9/24"


def test_missing_handler_is_success():
    rc, out, _ = run(CNI_COMMAND="GC", conf=dict(CONF, cniVersion="1.1.0"), plugin=NOGC)
    assert rc == 0 and out is None


def test_version_command_needs_nothing_else():
    rc, out, _ = run(env={"CNI_COMMAND": "VERSION"}, conf={"cniVersion": "0.4.0"})
    assert rc == 0 and out == {"cniVersion": "0.4.0", "supportedVersions": list(PLUGIN.versions)}


def test_version_command_with_garbage_stdin():
    rc, out, _ = run(env={"CNI_COMMAND": "VERSION"}, raw=b"\xff garbage")
    assert rc == 0 and out["cniVersion"] == "1.1.0"


def test_no_command_prints_about_to_stderr():
    rc, out, err = run(env={})
    assert rc == 0 and out is None
    assert "CNI t plugin" in err and "0.1.0, 0.2.0" in err


def test_own_netns_refused():
    for cmd in ("ADD", "DEL", "CHECK"):
        rc, out, _ = run(CNI_COMMAND=cmd, CNI_NETNS="/proc/self/ns/net")
        assert rc == 1 and out["code"] == 8, cmd


def test_own_netns_override():
    rc, out, _ = run(CNI_NETNS="/proc/self/ns/net", CNI_NETNS_OVERRIDE="true")
    assert rc == 0


def test_cni_args():
    a = skel.Args(args="IgnoreUnknown=1;IP=10.0.0.5;K8S_POD_NAME=x")
    assert a.cni_args("IP") == {"IP": "10.0.0.5"}
    with pytest.raises(CNIError) as ei:
        skel.Args(args="IP=10.0.0.5;FOO=1").cni_args("IP")
    assert ei.value.code == 4 and "FOO" in ei.value.details
    for bad in ("IP", "IP=a=b", "IP=1;", "=x"):
        with pytest.raises(CNIError):
            skel.Args(args=bad).cni_args("IP")
    assert skel.Args(args="IgnoreUnknown=true;X=1").cni_args() == {}
    with pytest.raises(CNIError):
        skel.Args(args="IgnoreUnknown=0;X=1").cni_args()


class _BrokenPipe(io.StringIO):
    def write(self, s):
        raise BrokenPipeError(32, "Broken pipe")


def test_add_whose_result_cannot_be_written_is_undone():
    CALLS.clear()
    err = io.StringIO()
    rc = skel.run(PLUGIN, environ=dict(ENV), stdin=io.BytesIO(jsonx.dumps(CONF).encode()),
                  stdout=_BrokenPipe(), stderr=err)
    assert rc == 1
    assert [c[0] for c in CALLS] == ["ADD", "DEL"]
    assert CALLS[1][2].prev_result is not None  # DEL sees what ADD made
    assert "EPIPE" in err.getvalue() and "undone" in err.getvalue()


def test_error_that_cannot_be_written_goes_to_stderr():
    err = io.StringIO()
    rc = skel.run(PLUGIN, environ=dict(ENV), stdin=io.BytesIO(b"{"), stdout=_BrokenPipe(),
                  stderr=err)
    assert rc == 1 and '"code": 6' in err.getvalue()


def test_closed_stdin_is_code_5_and_said_on_stderr():
    out, err = io.StringIO(), io.StringIO()
    rc = skel.run(PLUGIN, environ=dict(ENV), stdin=skel._Closed("stdin"), stdout=out, stderr=err)
    assert rc == 1 and jsonx.loads(out.getvalue())["code"] == 5
    assert "stdin is closed" in err.getvalue()
    rc = skel.run(PLUGIN, environ=dict(ENV, CNI_COMMAND="VERSION"), stdin=skel._Closed("stdin"),
                  stdout=out, stderr=io.StringIO())
    assert rc == 0
