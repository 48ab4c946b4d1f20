"""The cache file name joins network, container ID and ifname with '-', so two attachments
can share one name: the names recorded inside the file decide whose it is (issue 12)."""
from __future__ import annotations

import os

from cni.runtime import cache

RES = {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/24"}]}


def test_shared_file_name_is_absent_for_the_other_attachment(tmp_path):
    d = str(tmp_path)
    # network "a-b", container "c"  vs  network "a", container "b-c": both "a-b-c-eth0"
    p = cache.write(d, "a-b", "c", "eth0", b"{}", result=RES)
    assert p == cache.path(d, "a", "b-c", "eth0")
    assert cache.read_result(d, "a-b", "c", "eth0") == RES
    assert cache.read_attachment(d, "a-b", "c", "eth0").container_id == "c"
    assert cache.read_result(d, "a", "b-c", "eth0") is None
    assert cache.read_attachment(d, "a", "b-c", "eth0") is None
    # container "c-eth0" with ifname... the ifname split too: "x" + "c" + "eth0-1"
    cache.write(d, "x", "c", "eth0-1", b"{}", result=RES)
    assert cache.read_result(d, "x-c", "eth0", "1") is None
    assert cache.read_result(d, "x", "c-eth0", "1") is None
    assert cache.read_result(d, "x", "c", "eth0-1") == RES


def test_delete_leaves_another_attachments_file(tmp_path):
    d = str(tmp_path)
    p = cache.write(d, "a-b", "c", "eth0", b"{}", result=RES)
    cache.delete(d, "a", "b-c", "eth0")
    assert os.path.exists(p)
    cache.delete(d, "a-b", "c", "eth0")
    assert not os.path.exists(p)


def test_delete_still_removes_garbage_and_legacy_files(tmp_path):
    d = str(tmp_path)
    p = cache.path(d, "n", "c", "eth0")
    os.makedirs(os.path.dirname(p))
    for content in (b"not json", b'{"cniVersion": "0.3.1", "ips": []}'):
        with open(p, "wb") as f:
            f.write(content)
        cache.delete(d, "n", "c", "eth0")
        assert not os.path.exists(p)


def test_legacy_bare_result_is_still_read(tmp_path):
    d = str(tmp_path)
    p = cache.path(d, "n", "c", "eth0")
    os.makedirs(os.path.dirname(p))
    with open(p, "w") as f:
        f.write('{"cniVersion": "0.3.1", "ips": []}')
    assert cache.read_result(d, "n", "c", "eth0") == {"cniVersion": "0.3.1", "ips": []}


def test_attachments_skip_a_file_whose_name_does_not_match_its_content(tmp_path):
    d = str(tmp_path)
    good = cache.write(d, "net", "ctr", "eth0", b"{}", result=RES)
    os.rename(good, os.path.join(d, "results", "net-ctr-eth1"))     # renamed by hand
    cache.write(d, "net", "ctr", "eth2", b"{}", result=RES)
    assert [(a.network, a.container_id, a.ifname) for a in cache.attachments(d)] == [
        ("net", "ctr", "eth2")]
    assert [a.ifname for a in cache.attachments(d, "ctr")] == ["eth2"]


def test_libcni_del_of_the_twin_attachment_sends_no_prev_result(tmp_path, built_bins):
    """Network 'a' + container 'b-c' must neither see nor delete the cache of
    network 'a-b' + container 'c' (same file name)."""
    import json
    import shutil

    from cni.runtime import CNIConfig, RuntimeConf, list_from_bytes
    b = tmp_path / "bin"
    b.mkdir()
    shutil.copy(os.path.join(built_bins, "debug"), b / "debug")
    log = str(tmp_path / "calls.jsonl")
    cni = CNIConfig([str(b)], cache_dir=str(tmp_path / "cache"))

    def net(name):
        return list_from_bytes(json.dumps({"cniVersion": "1.0.0", "name": name, "plugins": [
            {"type": "debug", "cniOutput": log, "debugResult": RES}]}).encode())
    cni.add_network_list(net("a-b"), RuntimeConf("c", "/run/netns/x", "eth0"))
    twin = net("a"), RuntimeConf("b-c", "/run/netns/x", "eth0")
    assert cni.cached_result(*twin) is None
    os.unlink(log)
    cni.del_network_list(*twin)
    with open(log) as f:
        (rec,) = [json.loads(line) for line in f]
    assert "prevResult" not in json.loads(rec["stdin"])
    assert cni.cached_result(net("a-b"), RuntimeConf("c", "/run/netns/x", "eth0")) is not None
