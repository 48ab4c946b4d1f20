"""podman 4.x (Debian) with the CNI backend running our bin/ plugins.

podman necessarily works in the root netns. The network gets a unique bridge
(`cnit<hex>`), a subnet checked against the host's routes, host-local's store
in a temp dir and a private storage/containers.conf; teardown removes the
containers, the bridge, the firewall chains/tables that appeared during the
test (only CNI ones that were not there before) and every file, also when a
test fails. No packet leaves this machine: traffic goes host -> our bridge
and container <-> container.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from helpers import ROOT

NEEDED = ("bridge", "host-local", "portmap", "tuning", "debug")
PACKAGES = ("podman", "runc", "conmon", "busybox-static")
pytestmark = [pytest.mark.root, pytest.mark.slow]


def _sh(*argv, check=True, **kw):
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


def _ensure_packages():
    """Install podman & co. from Debian's packages when missing (root + apt only)."""
    if all(shutil.which(t) for t in ("podman", "runc", "conmon")) and \
            os.path.exists("/bin/busybox"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "podman/runc/conmon/busybox-static missing and apt-get unavailable"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                            *PACKAGES], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return f"cannot install {' '.join(PACKAGES)}: {r.stderr.strip()[-300:]}"
    return None


def _free_subnet() -> str:
    """A 10.213.N.0/24 that no route or address of the root netns overlaps."""
    import ipaddress
    used = []
    for fam in ("-4",):
        for r in json.loads(_sh("ip", "-j", fam, "route", "show", "table", "all").stdout or "[]"):
            if r.get("dst") not in (None, "default"):
                used.append(ipaddress.ip_network(r["dst"], strict=False))
    for n in range(100, 200):
        cand = ipaddress.ip_network(f"10.213.{n}.0/24")
        if not any(cand.overlaps(u) for u in used):
            return str(cand)
    pytest.skip("no free 10.213.x.0/24 subnet on this host")


def _fw_snapshot() -> set:
    out = set()
    for cmd in ("iptables", "ip6tables"):
        if not shutil.which(cmd + "-save"):
            continue
        for t in ("nat", "filter", "mangle"):
            text = _sh(cmd + "-save", "-t", t, check=False).stdout
            out |= {(cmd, t, ln.split()[0][1:]) for ln in text.splitlines()
                    if ln.startswith(":CNI-")}
    if shutil.which("nft"):
        for ln in _sh("nft", "list", "tables", check=False).stdout.splitlines():
            parts = ln.split()
            if len(parts) == 3:
                out.add(("nft", parts[1], parts[2]))
    return out


def _fw_rules_mentioning(*needles) -> list:
    text = ""
    for cmd in ("iptables-save", "ip6tables-save"):
        if shutil.which(cmd):
            text += _sh(cmd, check=False).stdout
    if shutil.which("nft"):
        text += _sh("nft", "list", "ruleset", check=False).stdout
    return [ln for ln in text.splitlines() if any(n in ln for n in needles)]


def _fw_cleanup(before: set) -> None:
    """Remove CNI chains/tables that appeared since `before` (and the jumps to them)."""
    for cmd, table, name in sorted(_fw_snapshot() - before):
        if cmd == "nft":
            if name.startswith("cni"):
                _sh("nft", "delete", "table", table, name, check=False)
            continue
        text = _sh(cmd + "-save", "-t", table, check=False).stdout
        for ln in text.splitlines():
            if ln.startswith("-A ") and (f"-j {name}" in ln + " " or f"-g {name}" in ln):
                import shlex
                _sh(cmd, "-w", "-t", table, "-D", *shlex.split(ln[3:]), check=False)
    for cmd, table, name in sorted(_fw_snapshot() - before):
        if cmd != "nft":
            _sh(cmd, "-w", "-t", table, "-F", name, check=False)
    for cmd, table, name in sorted(_fw_snapshot() - before):
        if cmd != "nft":
            _sh(cmd, "-w", "-t", table, "-X", name, check=False)
    # a table iptables-nft created for those rules, now holding none
    for cmd, fam, name in sorted(_fw_snapshot() - before):
        if cmd == "nft" and fam in ("ip", "ip6") and name in ("nat", "filter", "mangle"):
            save = "iptables-save" if fam == "ip" else "ip6tables-save"
            if not any(ln.startswith("-A") for ln in
                       _sh(save, "-t", name, check=False).stdout.splitlines()):
                _sh("nft", "delete", "table", fam, name, check=False)


class Podman:
    def __init__(self, base: str, env: dict):
        self.base, self.env = base, env

    def __call__(self, *args, check=True, timeout=120, input=None):
        r = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({r.returncode}):\n"
                                 f"{r.stdout}\n{r.stderr}")
        return r


@pytest.fixture(scope="module")
def podman(tmp_path_factory, built_bins):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    missing = [p for p in NEEDED if not os.path.exists(os.path.join(built_bins, p))]
    if missing:
        pytest.skip(f"plugins not built yet: {', '.join(missing)}")
    why = _ensure_packages()
    if why:
        pytest.skip(why)
    tag = uuid.uuid4().hex[:8]
    base = str(tmp_path_factory.mktemp("podman"))
    netname, bridge, subnet = f"cnit-pm-{tag}", f"cnit{tag}", _free_subnet()
    gw = subnet.rsplit(".", 1)[0] + ".1"
    netdir = os.path.join(base, "net.d")
    os.makedirs(netdir)
    calls = os.path.join(base, "debug-calls.jsonl")
    conflist = {
        "cniVersion": "1.0.0", "name": netname,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": os.path.join(base, "ipam"),
                      "ranges": [[{"subnet": subnet, "gateway": gw}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "tuning"},
            {"type": "debug", "cniOutput": calls},
        ]}
    conf_bytes = json.dumps(conflist, indent=2).encode()
    with open(os.path.join(netdir, f"{netname}.conflist"), "wb") as f:
        f.write(conf_bytes)
    for d in ("graph", "run", "tmp", "volumes"):
        os.makedirs(os.path.join(base, d))
    cc = os.path.join(base, "containers.conf")
    with open(cc, "w") as f:
        f.write(f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["{built_bins}"]
network_config_dir = "{netdir}"
default_network = "{netname}"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
tmp_dir = "{base}/tmp"
volume_path = "{base}/volumes"
""")
    sc = os.path.join(base, "storage.conf")
    with open(sc, "w") as f:
        f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{base}/graph"\n'
                f'runroot = "{base}/run"\n')
    env = dict(os.environ, CONTAINERS_CONF=cc, CONTAINERS_STORAGE_CONF=sc)
    pm = Podman(base, env)
    pm.netname, pm.bridge, pm.subnet, pm.gw = netname, bridge, subnet, gw
    pm.calls, pm.conf_bytes, pm.ipam = calls, conf_bytes, os.path.join(base, "ipam", netname)
    fw_before = _fw_snapshot()
    had_fallback = _sh("ip", "link", "show", "cni-podman0", check=False).returncode == 0
    pm.had_fallback = had_fallback
    # podman keeps libcni's cache in /var/lib/cni/results: remove the dirs it creates
    made_dirs = [d for d in ("/var/lib/cni", "/var/lib/cni/results") if not os.path.exists(d)]
    try:
        rootfs = os.path.join(base, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        os.makedirs(os.path.join(rootfs, "www"))
        for d in ("etc", "tmp", "proc", "sys", "dev"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
        for applet in _sh("/bin/busybox", "--list").stdout.split():
            p = os.path.join(rootfs, "bin", applet)
            if not os.path.exists(p):
                os.symlink("busybox", p)
        with open(os.path.join(rootfs, "www", "index.html"), "w") as f:
            f.write("hello-pycni\n")
        tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True)
        r = subprocess.run(["podman", "import", "--change", 'CMD ["/bin/sh"]', "-",
                            "localhost/test-busybox:latest"], input=tar.stdout, env=env,
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        yield pm
    finally:
        pm("rm", "-af", "-t", "0", check=False)
        pm("system", "reset", "-f", check=False, timeout=120)
        _sh("ip", "link", "del", bridge, check=False)
        if not had_fallback:
            _sh("ip", "link", "del", "cni-podman0", check=False)
        _fw_cleanup(fw_before)
        results = "/var/lib/cni/results"
        if os.path.isdir(results):
            for fn in os.listdir(results):
                if fn.startswith(netname + "-"):
                    os.unlink(os.path.join(results, fn))
        for d in reversed(made_dirs):
            try:
                os.rmdir(d)
            except OSError:
                pass
        shutil.rmtree(base, ignore_errors=True)


def _records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def _http_get(ip: str, port: int, timeout=10.0) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                return data.decode("latin-1")
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"no HTTP answer from {ip}:{port}: {last}")


def test_podman_end_to_end(podman):
    pm = podman
    port = 20000 + int(uuid.uuid4().hex[:4], 16) % 20000
    pm("run", "-d", "--name", "c1", "-p", f"{port}:80", "localhost/test-busybox:latest",
       "httpd", "-f", "-p", "80", "-h", "/www")
    info = json.loads(pm("inspect", "c1").stdout)[0]
    cid = info["Id"]
    nets = info["NetworkSettings"]["Networks"]
    assert list(nets) == [pm.netname], nets  # not podman's fallback network
    ip1 = nets[pm.netname]["IPAddress"]
    assert ip1.startswith(pm.subnet.rsplit(".", 1)[0] + "."), ip1
    assert nets[pm.netname]["Gateway"] == pm.gw
    # the container's eth0 carries it, and its veth is a port of OUR bridge
    out = pm("exec", "c1", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"{ip1}/24" in out
    ports = json.loads(_sh("ip", "-j", "link", "show", "master", pm.bridge).stdout)
    assert len(ports) == 1
    if not pm.had_fallback:
        assert _sh("ip", "link", "show", "cni-podman0", check=False).returncode != 0

    # podman wrote libcni's cache for our network; we read it and re-encode it byte for byte
    from cni.runtime import cache
    cpath = f"/var/lib/cni/results/{pm.netname}-{cid}-eth0"
    with open(cpath, "rb") as f:
        go_bytes = f.read()
    obj = json.loads(go_bytes)
    assert obj["kind"] == "cniCacheV1" and base64.b64decode(obj["config"]) == pm.conf_bytes
    att = cache.read_attachment("/var/lib/cni", pm.netname, cid, "eth0")
    assert att.result["ips"][0]["address"] == f"{ip1}/24"  # (libcni 1.1 writes no netns)
    if os.environ.get("PYCNI_KEEP_PODMAN_CACHE"):
        shutil.copy(cpath, os.environ["PYCNI_KEEP_PODMAN_CACHE"])
    ours = cache.encode(att.network, att.container_id, att.ifname, att.config, netns=att.netns,
                        cni_args=att.cni_args, capability_args=att.capability_args,
                        result=att.result)
    assert ours == go_bytes, (ours, go_bytes)

    # a second container reaches the first over the bridge
    pm("run", "--name", "c2", "-d", "localhost/test-busybox:latest", "sleep", "600")
    ip2 = json.loads(pm("inspect", "c2").stdout)[0]["NetworkSettings"]["Networks"][
        pm.netname]["IPAddress"]
    assert ip2 != ip1
    body = ""
    for _ in range(20):
        r = pm("exec", "c2", "timeout", "5", "wget", "-q", "-O", "-", f"http://{ip1}/",
               check=False)
        body = r.stdout
        if "hello-pycni" in body:
            break
        time.sleep(0.3)
    assert "hello-pycni" in body

    # -p: the host reaches the container through portmap (to our bridge's address)
    assert "hello-pycni" in _http_get(pm.gw, port)

    # podman reads a cache file written by our library: rewrite it with a marker
    marked = dict(att.result, dns={"nameservers": ["10.213.255.53"]})
    cache.write("/var/lib/cni", pm.netname, cid, "eth0", att.config, netns=att.netns,
                cni_args=att.cni_args, capability_args=att.capability_args, result=marked)
    open(pm.calls, "w").close()
    pm("rm", "-f", "-t", "0", "c1")
    dels = [r for r in _records(pm.calls) if r["command"] == "DEL"]
    assert dels, "podman sent no DEL"
    prev = json.loads(dels[0]["stdin"])["prevResult"]
    assert prev["dns"]["nameservers"] == ["10.213.255.53"]
    assert prev["ips"][0]["address"] == f"{ip1}/24"

    # nothing of c1 is left: lease, veth, rules, cache file
    leases = os.listdir(pm.ipam) if os.path.isdir(pm.ipam) else []
    assert ip1 not in leases and ip2 in leases
    assert len(json.loads(_sh("ip", "-j", "link", "show", "master", pm.bridge).stdout)) == 1
    assert _fw_rules_mentioning(ip1 + "/", ip1 + ":", f"dport {port}", f"--dport {port}") == []
    assert not os.path.exists(cpath)

    pm("rm", "-f", "-t", "0", "c2")
    leases = os.listdir(pm.ipam) if os.path.isdir(pm.ipam) else []
    assert [x for x in leases if x != "lock" and not x.startswith("last_reserved_ip")] == []
    assert json.loads(_sh("ip", "-j", "link", "show", "master", pm.bridge).stdout) == []
    assert _fw_rules_mentioning(ip2) == []
