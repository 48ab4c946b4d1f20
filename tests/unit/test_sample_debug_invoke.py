"""The sample and debug plugins, invoke's timeout and exec protocol, the error tree."""
from __future__ import annotations

import io
import os
import sys
import time

import pytest

from cni import invoke, skel
from cni.std import json as jsonx
from cni import errors as E
from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, "plugins"))

import debug  # noqa: E402
import sample  # noqa: E402

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x",
       "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"}

# prevResult in each version family's own shape (the spec's examples)
PREV = {
    "0.1.0": {"ip4": {"ip": "10.1.0.5/16", "gateway": "10.1.0.1",
                      "routes": [{"dst": "0.0.0.0/0"}]}, "dns": {"nameservers": ["10.1.0.1"]}},
    "0.3.1": {"interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
              "ips": [{"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1",
                       "interface": 0}],
              "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.1.0.1"]}},
    "1.0.0": {"interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
              "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 0}],
              "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.1.0.1"]}},
}
FAMILY = {"0.1.0": "0.1.0", "0.2.0": "0.1.0", "0.3.0": "0.3.1", "0.3.1": "0.3.1",
          "0.4.0": "0.3.1", "1.0.0": "1.0.0", "1.1.0": "1.0.0"}


def run(plugin, conf, **env):
    e = dict(ENV, **env)
    out, err = io.StringIO(), io.StringIO()
    rc = skel.run(plugin, environ=e, stdin=io.BytesIO(jsonx.dumps(conf).encode()),
                  stdout=out, stderr=err)
    text = out.getvalue()
    return rc, (jsonx.loads(text) if text.strip() else None), err.getvalue()


# --- sample: the chained-plugin template --------------------------------------------------

@pytest.mark.parametrize("ver", sorted(FAMILY))
def test_sample_passes_prev_result_through_in_every_version(ver):
    prev = dict(PREV[FAMILY[ver]], cniVersion=ver)
    conf = {"cniVersion": ver, "name": "n", "type": "sample", "anotherAwesomeArg": "x",
            "prevResult": prev}
    rc, out, err = run(sample.PLUGIN, conf)
    assert rc == 0, (out, err)
    assert out == prev                                              # unchanged, same version


@pytest.mark.parametrize("conf,code,frag", [
    ({"anotherAwesomeArg": "x"}, 7, "chained"),                        # no prevResult
    ({"prevResult": PREV["1.0.0"]}, 7, "anotherAwesomeArg"),           # custom field required
    ({"anotherAwesomeArg": 5, "prevResult": PREV["1.0.0"]}, 7, "anotherAwesomeArg"),
    ({"anotherAwesomeArg": "x", "prevResult": {"cniVersion": "1.0.0"}}, 999, "no container IPs"),
    ({"anotherAwesomeArg": "x", "prevResult": {"ips": "nope"}}, 6, "prevResult"),
])
def test_sample_errors(conf, code, frag):
    rc, out, _ = run(sample.PLUGIN, dict({"cniVersion": "1.0.0", "name": "n", "type": "sample"},
                                         **conf))
    assert rc == 1 and out["code"] == code and out["cniVersion"] == "1.0.0"
    assert frag in out["msg"] + out.get("details", "")


def test_sample_del_check_status():
    conf = {"cniVersion": "1.1.0", "name": "n", "type": "sample", "anotherAwesomeArg": "x",
            "prevResult": dict(PREV["1.0.0"], cniVersion="1.1.0")}
    for cmd in ("DEL", "CHECK", "STATUS"):
        rc, out, _ = run(sample.PLUGIN, conf, CNI_COMMAND=cmd)
        assert rc == 0 and out is None, cmd
    rc, out, _ = run(sample.PLUGIN, {k: v for k, v in conf.items() if k != "prevResult"},
                     CNI_COMMAND="CHECK")
    assert rc == 1 and out["code"] == 7


# --- debug: records calls, answers as configured ------------------------------------------

def test_debug_records_and_fails_only_on_listed_verbs(tmp_path, capsys):
    log = tmp_path / "calls"
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "debug", "cniOutput": str(log),
            "debugError": {"code": 11, "msg": "later", "details": "busy"}, "debugErrorOn": ["DEL"],
            "debugStderr": "hello from debug"}
    rc, out, _ = run(debug.PLUGIN, conf, CNI_ARGS="K=V")
    assert rc == 0 and out == {"cniVersion": "1.0.0"}                    # empty result
    assert "hello from debug" in capsys.readouterr().err
    rc, out, _ = run(debug.PLUGIN, conf, CNI_COMMAND="DEL")
    assert rc == 1 and out == {"cniVersion": "1.0.0", "code": 11, "msg": "later", "details": "busy"}
    calls = [jsonx.loads(x) for x in log.read_text().splitlines()]
    assert [c["command"] for c in calls] == ["ADD", "DEL"]
    assert calls[0]["env"]["CNI_ARGS"] == "K=V" and "PATH" not in calls[0]["env"]
    assert jsonx.loads(calls[0]["stdin"]) == conf


def test_debug_result_and_prev_result():
    res = {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.2.0.2/24"}]}
    rc, out, _ = run(debug.PLUGIN, {"cniVersion": "0.4.0", "name": "n", "type": "debug",
                                    "debugResult": res})
    assert rc == 0 and out["ips"] == res["ips"]
    rc, out, _ = run(debug.PLUGIN, {"cniVersion": "1.0.0", "name": "n", "type": "debug",
                                    "prevResult": dict(PREV["1.0.0"], cniVersion="1.0.0")})
    assert rc == 0 and out["ips"] == PREV["1.0.0"]["ips"]


@pytest.mark.parametrize("argv0,top", [("/x/debug", "1.1.0"), ("/x/debug-0.4.0", "0.4.0"),
                                       ("/x/debug-0.2.0", "0.2.0"), ("/x/debug-bogus", "1.1.0")])
def test_debug_versions_follow_its_name(monkeypatch, argv0, top):
    monkeypatch.setattr(sys, "argv", [argv0])
    vs = debug._versions()
    assert vs[-1] == top and vs[0] == "0.1.0"


# --- invoke: exec protocol ---------------------------------------------------------------

def _script(tmp_path, name, body):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


def test_exec_timeout_kills_the_plugin(tmp_path):
    mark = tmp_path / "still-running"
    path = _script(tmp_path, "slow", f"sleep 1; touch {mark}\n")
    t = time.monotonic()
    with pytest.raises(E.InternalError) as ei:
        invoke.exec_plugin(path, b"{}", {"PATH": os.environ["PATH"]}, timeout=0.3)
    assert time.monotonic() - t < 0.9 and "timed out" in ei.value.msg
    time.sleep(1.2)
    assert not mark.exists(), "the timed-out plugin was left running"


def test_delegate_env_stdin_and_command(tmp_path):
    """Our env with CNI_COMMAND replaced, and our stdin byte for byte."""
    dump = tmp_path / "seen"
    _script(tmp_path, "probe", f"env > {dump}.env; cat > {dump}.in; echo '{{}}'\n")
    env = dict(ENV, CNI_PATH=f"/nonexistent:{tmp_path}", CNI_ARGS="A=1", CNI_COMMAND="ADD")
    stdin = b'{"cniVersion":"1.0.0","name":"n","type":"probe","x":[1, 2]}'
    invoke.delegate("CHECK", "probe", stdin, env=env)
    seen = dict(x.split("=", 1) for x in (tmp_path / "seen.env").read_text().splitlines() if "=" in x)
    assert seen["CNI_COMMAND"] == "CHECK" and seen["CNI_ARGS"] == "A=1"
    assert seen["CNI_CONTAINERID"] == "c1" and seen["CNI_PATH"] == env["CNI_PATH"]
    assert (tmp_path / "seen.in").read_bytes() == stdin


def test_find_in_path_order_and_rejections(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "p").mkdir()                                    # a directory is not a plugin
    (b / "p").write_text("")
    assert invoke.find_in_path("p", f"{a}:{b}") == str(b / "p")
    (a / "q").write_text("")
    (b / "q").write_text("")
    assert invoke.find_in_path("q", [str(a), str(b)]) == str(a / "q")
    for bad in ("../p", "a/p", "..", ".", "", "x\\y", "x\x00"):
        with pytest.raises(E.InvalidConfigError):
            invoke.find_in_path(bad, str(b))
    with pytest.raises(E.InvalidConfigError) as ei:
        invoke.find_in_path("missing", str(b))
    assert "missing" in ei.value.msg
    with pytest.raises(E.InvalidConfigError):
        invoke.find_in_path("p", "")


@pytest.mark.parametrize("body,code,frag", [
    ("echo '{\"code\": 11, \"msg\": \"busy\", \"details\": \"d\"}'; exit 1\n", 11, "busy"),
    ("echo '{\"code\": 142, \"msg\": \"mine\"}'; exit 1\n", 142, "mine"),
    ("echo oops >&2; exit 3\n", 999, "oops"),
    ("exit 2\n", 999, "no error message"),
    ("echo 'not json'; exit 1\n", 999, "error parsing"),
])
def test_exec_failures_keep_the_code(tmp_path, body, code, frag):
    path = _script(tmp_path, "f", body)
    with pytest.raises(E.CNIError) as ei:
        invoke.exec_plugin(path, b"{}", {"PATH": os.environ["PATH"]})
    assert ei.value.code == code and frag in ei.value.msg


def test_parse_result_defaults_to_request_version():
    r = invoke.parse_result(b'{"ips":[{"version":"4","address":"10.0.0.2/24"}]}', "0.4.0")
    assert r.ips[0].address_str == "10.0.0.2/24"
    with pytest.raises(E.CNIError):
        invoke.parse_result(b"{", "1.0.0")


# --- error tree --------------------------------------------------------------------------

def test_error_codes_and_shape():
    want = {E.IncompatibleVersionError: 1, E.UnsupportedFieldError: 2,
            E.UnknownContainerError: 3, E.InvalidEnvError: 4, E.IOFailureError: 5,
            E.DecodingError: 6, E.InvalidConfigError: 7, E.TryAgainLaterError: 11,
            E.PluginNotAvailableError: 50, E.LimitedConnectivityError: 51, E.InternalError: 999}
    for cls, code in want.items():
        e = cls("m", "d")
        assert e.code == code and isinstance(e, E.CNIError)
        assert e.to_dict("1.1.0") == {"cniVersion": "1.1.0", "code": code, "msg": "m", "details": "d"}
        back = E.from_dict(e.to_dict("1.1.0"))
        assert type(back) is cls and (back.code, back.msg, back.details) == (code, "m", "d")
    assert E.CNIError("m", code=120).to_dict() == {"code": 120, "msg": "m"}
    assert E.from_dict({"code": "x", "msg": "m"}).code == 999
