"""The result cache: libcni's file format, byte for byte."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from cni.runtime import cache
from cni.std import json as jsonx

# What Go's json.Marshal(&cachedInfo{...}) writes for this attachment (struct field
# order; map keys sorted; []byte as base64; HTML characters escaped).
CONFIG = b'{"cniVersion":"1.0.0","name":"podman","plugins":[{"type":"bridge"}]}\n'
GO_FILE = (
    '{"kind":"cniCacheV1","containerId":"abc123","config":"' +
    base64.b64encode(CONFIG).decode() +
    '","ifName":"eth0","networkName":"podman","netns":"/run/netns/netns-1",'
    '"cniArgs":[["IgnoreUnknown","1"],["K8S_POD_NAME","a\\u003cb\\u003e\\u0026"]],'
    '"capabilityArgs":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},'
    '"result":{"cniVersion":"1.0.0","dns":{},"interfaces":[{"mac":"aa:bb:cc:dd:ee:ff",'
    '"name":"eth0","sandbox":"/run/netns/netns-1"}],"ips":[{"address":"10.88.0.2/16",'
    '"gateway":"10.88.0.1","interface":0}],"routes":[{"dst":"0.0.0.0/0"}]}}')


def _result():
    return {"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff",
                            "sandbox": "/run/netns/netns-1"}],
            "ips": [{"interface": 0, "address": "10.88.0.2/16", "gateway": "10.88.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}


# A file podman 4.3.1 (libcni 1.1.2) wrote for a container on our plugins
# (tests/integration/test_podman.py made it): no netns field in that libcni version,
# capabilityArgs values in Go struct field order, result keys sorted.
PODMAN_FILE = '{"kind":"cniCacheV1","containerId":"dea6b8f8969c34a5387c16848c9676667f82fdd46a2180574962c8d6156c60aa","config":"ewogICJjbmlWZXJzaW9uIjogIjEuMC4wIiwKICAibmFtZSI6ICJjbml0LXBtLWI2YzQ4YmJlIiwKICAicGx1Z2lucyI6IFsKICAgIHsKICAgICAgInR5cGUiOiAiYnJpZGdlIiwKICAgICAgImJyaWRnZSI6ICJjbml0YjZjNDhiYmUiLAogICAgICAiaXNHYXRld2F5IjogdHJ1ZSwKICAgICAgImlwTWFzcSI6IGZhbHNlLAogICAgICAiaGFpcnBpbk1vZGUiOiB0cnVlLAogICAgICAiaXBhbSI6IHsKICAgICAgICAidHlwZSI6ICJob3N0LWxvY2FsIiwKICAgICAgICAiZGF0YURpciI6ICIvdG1wL3B5dGVzdC1vZi1yb290L3B5dGVzdC0zNS9wb2RtYW4wL2lwYW0iLAogICAgICAgICJyYW5nZXMiOiBbCiAgICAgICAgICBbCiAgICAgICAgICAgIHsKICAgICAgICAgICAgICAic3VibmV0IjogIjEwLjIxMy4xMDAuMC8yNCIsCiAgICAgICAgICAgICAgImdhdGV3YXkiOiAiMTAuMjEzLjEwMC4xIgogICAgICAgICAgICB9CiAgICAgICAgICBdCiAgICAgICAgXSwKICAgICAgICAicm91dGVzIjogWwogICAgICAgICAgewogICAgICAgICAgICAiZHN0IjogIjAuMC4wLjAvMCIKICAgICAgICAgIH0KICAgICAgICBdCiAgICAgIH0KICAgIH0sCiAgICB7CiAgICAgICJ0eXBlIjogInBvcnRtYXAiLAogICAgICAiY2FwYWJpbGl0aWVzIjogewogICAgICAgICJwb3J0TWFwcGluZ3MiOiB0cnVlCiAgICAgIH0KICAgIH0sCiAgICB7CiAgICAgICJ0eXBlIjogInR1bmluZyIKICAgIH0sCiAgICB7CiAgICAgICJ0eXBlIjogImRlYnVnIiwKICAgICAgImNuaU91dHB1dCI6ICIvdG1wL3B5dGVzdC1vZi1yb290L3B5dGVzdC0zNS9wb2RtYW4wL2RlYnVnLWNhbGxzLmpzb25sIgogICAgfQogIF0KfQ==","ifName":"eth0","networkName":"cnit-pm-b6c48bbe","cniArgs":[["IgnoreUnknown","1"],["K8S_POD_NAME","c1"]],"capabilityArgs":{"aliases":{"cnit-pm-b6c48bbe":["dea6b8f8969c"]},"portMappings":[{"hostPort":23865,"containerPort":80,"protocol":"tcp"}]},"result":{"cniVersion":"1.0.0","dns":{},"interfaces":[{"mac":"aa:9e:31:a1:4f:87","name":"cnitb6c48bbe"},{"mac":"aa:9e:31:a1:4f:87","name":"vethd107f88e"},{"mac":"b2:6a:f2:ff:e1:f3","name":"eth0","sandbox":"/run/netns/netns-93f09997-2417-15ef-4eaf-1f51a8a65fc0"}],"ips":[{"address":"10.213.100.2/24","gateway":"10.213.100.1","interface":2}],"routes":[{"dst":"0.0.0.0/0"}]}}'


def test_reencode_real_podman_file(tmp_path):
    os.makedirs(tmp_path / "results")
    obj = json.loads(PODMAN_FILE)
    fn = f"{obj['networkName']}-{obj['containerId']}-eth0"
    (tmp_path / "results" / fn).write_text(PODMAN_FILE)
    att = cache.read_attachment(str(tmp_path), obj["networkName"], obj["containerId"], "eth0")
    assert att.capability_args["portMappings"][0]["hostPort"] == 23865
    assert att.cni_args == [("IgnoreUnknown", "1"), ("K8S_POD_NAME", "c1")]
    assert att.result["ips"][0]["interface"] == 2
    again = cache.encode(att.network, att.container_id, att.ifname, att.config,
                         netns=att.netns, cni_args=att.cni_args,
                         capability_args=att.capability_args, result=att.result)
    assert again.decode() == PODMAN_FILE
    (a,) = cache.attachments(str(tmp_path), obj["containerId"])
    assert a.network == obj["networkName"]


def test_capability_args_top_level_sorted_nested_kept():
    data = cache.encode("n", "c", "eth0", b"{}", capability_args={
        "z": {"b": 1, "a": 2}, "a": [{"y": 1, "x": 2}]})
    assert data.endswith(b'"capabilityArgs":{"a":[{"y":1,"x":2}],"z":{"b":1,"a":2}}}')


def test_encode_matches_go():
    data = cache.encode("podman", "abc123", "eth0", CONFIG, netns="/run/netns/netns-1",
                        cni_args=[("IgnoreUnknown", "1"), ("K8S_POD_NAME", "a<b>&")],
                        capability_args={"portMappings": [
                            {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
                        result=_result())
    assert data.decode() == GO_FILE


def test_encode_omits_empty_optionals():
    data = cache.encode("n", "c", "eth0", b"{}")
    assert data == b'{"kind":"cniCacheV1","containerId":"c","config":"e30=","ifName":"eth0",' \
                   b'"networkName":"n"}'


def test_go_string_escaping():
    assert jsonx.quote("\u00e9\u2028<\x01\n\"\\", go=True) == '"\u00e9\\u2028\\u003c\\u0001\\n\\"\\\\"'
    assert jsonx.dumps({"b": 1.0, "a": [True, None, 2.5, 10**6]}, go=True) == \
        '{"a":[true,null,2.5,1000000],"b":1}'


def test_write_modes_and_atomic(tmp_path):
    d = str(tmp_path / "cache")
    p = cache.write(d, "n", "c", "eth0", b"{}", result={"cniVersion": "1.0.0"})
    assert p == os.path.join(d, "results", "n-c-eth0")
    assert stat.S_IMODE(os.stat(os.path.dirname(p)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert os.listdir(os.path.dirname(p)) == ["n-c-eth0"]  # no temp file left
    assert json.loads(open(p).read())["kind"] == "cniCacheV1"


def test_read_v1_and_legacy(tmp_path):
    d = str(tmp_path)
    cache.write(d, "n", "c", "eth0", CONFIG, result=_result())
    assert cache.read_result(d, "n", "c", "eth0") == json.loads(GO_FILE)["result"]
    legacy = {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.2/24"}]}
    with open(os.path.join(d, "results", "n-legacy-eth0"), "w") as f:
        json.dump(legacy, f)
    assert cache.read_result(d, "n", "legacy", "eth0") == legacy
    assert cache.read_result(d, "n", "missing", "eth0") is None
    with open(os.path.join(d, "results", "n-bad-eth0"), "w") as f:
        f.write("{garbage")
    with pytest.raises(ValueError):
        cache.read_result(d, "n", "bad", "eth0")


def test_read_go_written_file(tmp_path):
    os.makedirs(tmp_path / "results")
    (tmp_path / "results" / "podman-abc123-eth0").write_text(GO_FILE)
    att = cache.read_attachment(str(tmp_path), "podman", "abc123", "eth0")
    assert att.config == CONFIG and att.netns == "/run/netns/netns-1"
    assert att.cni_args == [("IgnoreUnknown", "1"), ("K8S_POD_NAME", "a<b>&")]
    assert att.capability_args["portMappings"][0]["hostPort"] == 8080
    # re-encoding what we read gives the same bytes
    again = cache.encode(att.network, att.container_id, att.ifname, att.config,
                         netns=att.netns, cni_args=att.cni_args,
                         capability_args=att.capability_args, result=att.result)
    assert again.decode() == GO_FILE


def test_attachments_listing(tmp_path):
    d = str(tmp_path)
    cache.write(d, "net1", "c1", "eth0", b"{}")
    cache.write(d, "net1", "c2", "eth1", b"{}")
    cache.write(d, "net2", "c1", "eth0", b"{}")
    with open(os.path.join(d, "results", "net1-old-eth0"), "w") as f:
        f.write('{"cniVersion":"0.4.0"}')  # legacy: not listed
    with open(os.path.join(d, "results", "junk"), "w") as f:
        f.write("x")
    got = [(a.network, a.container_id, a.ifname) for a in cache.attachments(d)]
    assert got == [("net1", "c1", "eth0"), ("net1", "c2", "eth1"), ("net2", "c1", "eth0")]
    got = [(a.network, a.container_id) for a in cache.attachments(d, "c1")]
    assert got == [("net1", "c1"), ("net2", "c1")]
    assert cache.attachments(str(tmp_path / "nothing")) == []


def test_delete_and_path_rules(tmp_path):
    d = str(tmp_path)
    cache.write(d, "n", "c", "eth0", b"{}")
    cache.delete(d, "n", "c", "eth0")
    cache.delete(d, "n", "c", "eth0")  # idempotent
    assert os.listdir(os.path.join(d, "results")) == []
    for bad in (("", "c", "e"), ("n", "", "e"), ("n", "c", ""), ("n", "../x", "e")):
        with pytest.raises(ValueError):
            cache.path(d, *bad)
