"""Firewall tools come only from absolute PATH entries, never from the runtime's cwd.

The cwd (and ./relative) hold fake iptables*/ip6tables*/nft/nsenter/... that would leave
a marker; PATH starts with an empty and a relative entry. bridge (ipMasq) and portmap
ADD must install their rules with the real tools, DEL must remove them, and the marker
must never appear.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from helpers import BIN

pytestmark = [pytest.mark.root, pytest.mark.tool("iptables-save", "iptables-restore")]

FAKES = ("iptables", "iptables-save", "iptables-restore", "iptables-legacy-save",
         "iptables-legacy-restore", "iptables-nft-save", "iptables-nft-restore", "ip6tables",
         "ip6tables-save", "ip6tables-restore", "nft", "nsenter", "busybox", "ip", "tc",
         "sysctl", "modprobe", "conntrack", "host-local", "python3")
PATH = ":relative:/usr/sbin:/usr/bin:/sbin:/bin"
IP = shutil.which("ip")


@pytest.fixture
def fake_cwd(tmp_path):
    cwd = tmp_path / "cwd"
    marker = tmp_path / "marker"
    for d in (cwd, cwd / "relative"):
        d.mkdir()
        for name in FAKES:
            p = d / name
            p.write_text(f"#!/bin/sh\necho \"$0 $*\" >> {marker}\nexit 0\n")
            p.chmod(0o755)
    return cwd, marker


def _run(plugin, cmd, conf, *, host, cont, cwd, cid="cnitpath1"):
    env = {"PATH": PATH, "CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_NETNS": cont.path,
           "CNI_IFNAME": "eth0", "CNI_PATH": BIN}
    r = subprocess.run([IP, "netns", "exec", host.name, os.path.join(BIN, plugin)],
                       input=json.dumps(conf).encode(), capture_output=True, env=env, cwd=cwd,
                       timeout=30)
    assert r.returncode == 0, (plugin, cmd, r.stdout.decode(), r.stderr.decode())
    return json.loads(r.stdout) if r.stdout.strip() else None


def test_fake_tools_in_cwd_never_run(host_ns, cont_ns, tmp_path, fake_cwd, built_bins):
    cwd, marker = fake_cwd
    bridge = {"cniVersion": "1.0.0", "name": "cnitpathnet", "type": "bridge",
              "bridge": "cnitpbr0", "isGateway": True, "ipMasq": True,
              "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                       "ranges": [[{"subnet": "10.98.0.0/24"}]]}}
    res = _run("bridge", "ADD", bridge, host=host_ns, cont=cont_ns, cwd=cwd)
    portmap = {"cniVersion": "1.0.0", "name": "cnitpathnet", "type": "portmap",
               "capabilities": {"portMappings": True}, "prevResult": res,
               "runtimeConfig": {"portMappings": [
                   {"hostPort": 18081, "containerPort": 80, "protocol": "tcp"}]}}
    _run("portmap", "ADD", portmap, host=host_ns, cont=cont_ns, cwd=cwd)
    nat = host_ns.run("iptables", "-t", "nat", "-S").stdout
    assert "CNI-HOSTPORT-DNAT" in nat and "--dport 18081" in nat, nat
    assert "10.98.0.0/24" in nat and "MASQUERADE" in nat, nat
    _run("portmap", "DEL", portmap, host=host_ns, cont=cont_ns, cwd=cwd)
    _run("bridge", "DEL", dict(bridge, prevResult=res), host=host_ns, cont=cont_ns, cwd=cwd)
    nat = host_ns.run("iptables", "-t", "nat", "-S").stdout
    assert "--dport 18081" not in nat and "10.98.0.0/24" not in nat, nat
    assert not marker.exists(), marker.read_text()
