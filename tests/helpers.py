"""Helpers to run plugins the way a runtime does: env + stdin, output on stdout."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bin")
GO_BIN = "/usr/lib/cni"


class PluginResult:
    def __init__(self, rc: int, stdout: str, stderr: str):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None

    def __repr__(self):
        return f"PluginResult(rc={self.rc}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def run_plugin(plugin: str, command: str, conf, *, container_id: str = "cnit-ctr",
               netns: str = "", ifname: str = "eth0", cni_args: str = "", path=None,
               in_netns: str | None = None, env=None, timeout: float = 60.0) -> PluginResult:
    """Exec `plugin` (a path, or a name looked up in bin/) with stdin fed from a file.

    in_netns: run the plugin inside this named netns (the test's "host").
    """
    exe = plugin if "/" in plugin else os.path.join(BIN, plugin)
    e = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
         "CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
         "CNI_IFNAME": ifname, "CNI_ARGS": cni_args,
         "CNI_PATH": path if path is not None else BIN}
    if env:
        e.update(env)
    e = {k: v for k, v in e.items() if v is not None}
    data = conf if isinstance(conf, (bytes, str)) else json.dumps(conf)
    if isinstance(data, str):
        data = data.encode()
    argv = [exe]
    if in_netns:
        argv = ["ip", "netns", "exec", in_netns, exe]
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        r = subprocess.run(argv, stdin=f, capture_output=True, env=e, timeout=timeout)
    return PluginResult(r.returncode, r.stdout.decode(errors="replace"),
                        r.stderr.decode(errors="replace"))


# ---- plugin tests in a test "host" netns (tests/integration) ------------------------------

BIN_AND_GO = f"{BIN}:{GO_BIN}"   # CNI_PATH: our plugins first, then Go's


def run_in_host(plugin: str, command: str, conf, host, cont, **kw) -> PluginResult:
    """run_plugin inside the test netns `host`, with CNI_NETNS the netns `cont` and CNI_PATH
    BIN_AND_GO unless netns=/path= say otherwise."""
    kw.setdefault("netns", cont.path)
    kw.setdefault("path", BIN_AND_GO)
    return run_plugin(plugin, command, conf, in_netns=host.name, **kw)


def netconf(version: str, name: str, plugin: str, base: dict, overrides: dict) -> dict:
    """A network configuration: `base` updated with `overrides`, keys whose value is None left
    out (how a test drops a default)."""
    c = {"cniVersion": version, "name": name, "type": plugin, **base, **overrides}
    return {k: v for k, v in c.items() if v is not None}


def host_local(tmp_path, *ranges: dict, routes: list | None = None) -> dict:
    """A host-local ipam section with one range set, its data under tmp_path/ipam."""
    ipam = {"type": "host-local", "dataDir": str(tmp_path / "ipam"), "ranges": [list(ranges)]}
    if routes is not None:
        ipam["routes"] = routes
    return ipam


def leases(tmp_path, net: str) -> list:
    """The addresses host_local(tmp_path) has reserved in network `net`, sorted."""
    d = tmp_path / "ipam" / net
    return sorted(p.name for p in d.iterdir() if p.name[0].isdigit()) if d.exists() else []


# ---- IPAM plugins run directly (no netns: CNI_NETNS is only a name to them) --------------

def ipam_env(cmd: str, cid: str = "c1", ifname: str = "eth0", args: str = "") -> dict:
    return {"CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/x",
            "CNI_IFNAME": ifname, "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": args,
            "PATH": "/usr/bin:/bin"}


def exec_ipam(binary: str, conf: dict, cmd: str = "ADD", cid: str = "c1", ifname: str = "eth0",
              args: str = "") -> tuple:
    """(CompletedProcess, its stdout parsed or None) of one run of an IPAM plugin binary."""
    p = subprocess.run([binary], input=json.dumps(conf).encode(),
                       env=ipam_env(cmd, cid, ifname, args), capture_output=True, timeout=30)
    return p, (json.loads(p.stdout) if p.stdout.strip() else None)


def nft_f_batches(ns, path: str, trace: str) -> list:
    """What `nft -f path` sends over netlink inside netns `ns`: the bytes of each sendmsg, read
    from strace's hex dump of fd 3 (written to `trace`)."""
    import re
    ns.run("strace", "-x", "-e", "trace=sendmsg", "-e", "write=3", "-o", trace, "nft", "-f", path)
    chunks, cur = [], None
    with open(trace) as f:
        for line in f:
            m = re.match(r" \| ([0-9a-f]{5})  (.{48}) ", line)
            if m:
                if int(m.group(1), 16) == 0:
                    cur = bytearray()
                    chunks.append(cur)
                cur += bytes.fromhex(m.group(2).replace(" ", ""))
    return [bytes(c) for c in chunks]


def routed_trio(cont, host, out, tag: str, *, route_back: bool = False) -> None:
    """container -- host -- outside over two veth pairs: the container 10.99.0.2/24 (default
    via the host), the host 10.99.0.1/24 and 10.200.0.1/24 forwarding, the outside
    10.200.0.2/24 (a default route back through the host only with route_back)."""
    c0, h0, h1, o0 = (f"cnit{tag}{x}" for x in ("c0", "h0", "h1", "o0"))
    subprocess.run(["ip", "link", "add", c0, "netns", cont.name, "type", "veth", "peer",
                    "name", h0, "netns", host.name], check=True)
    subprocess.run(["ip", "link", "add", h1, "netns", host.name, "type", "veth", "peer",
                    "name", o0, "netns", out.name], check=True)
    cont.ip("addr", "add", "10.99.0.2/24", "dev", c0)
    cont.ip("link", "set", c0, "up")
    cont.ip("route", "add", "default", "via", "10.99.0.1")
    host.ip("addr", "add", "10.99.0.1/24", "dev", h0)
    host.ip("addr", "add", "10.200.0.1/24", "dev", h1)
    host.ip("link", "set", h0, "up")
    host.ip("link", "set", h1, "up")
    host.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    out.ip("addr", "add", "10.200.0.2/24", "dev", o0)
    out.ip("link", "set", o0, "up")
    if route_back:
        out.ip("route", "add", "default", "via", "10.200.0.1")


# A model of iptables-restore's own tokenizer (add_param_to_argv), kept independent of the
# code under test (cni.fw.ipt_rule.tokens) so the tests can check one against the other.
def restore_argv(line: str) -> list:
    """iptables-restore's tokenizer: blanks split; "..." groups, `\\` escapes inside quotes only."""
    out, buf, quoted, escaped = [], [], False, False
    for ch in line:
        if quoted:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            else:
                buf.append(ch)
        elif ch == '"':
            quoted = True
        elif ch in " \t":
            if buf:
                out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    assert not quoted, f"unterminated quote in {line!r}"
    if buf:
        out.append("".join(buf))
    return out


# ---- start-up: a zipapp run as its sh preamble runs it, under -X importtime ----------------

def import_from(folder: str, module: str):
    """Import `module` from ROOT/`folder` (bench/, zipapp/: not packages) without leaving the
    folder on sys.path."""
    import importlib
    import sys
    sys.path.insert(0, os.path.join(ROOT, folder))
    try:
        return importlib.import_module(module)
    finally:
        del sys.path[0]


def launch_importtime(exe: str) -> list:
    """argv that runs `exe` exactly as its sh preamble does, plus -X importtime."""
    return import_from("bench", "common").launch_argv(exe, "-X", "importtime")


def imported_modules(stderr: bytes) -> set:
    """The module names in -X importtime's report."""
    return {ln.rsplit("|", 1)[1].strip() for ln in stderr.decode().splitlines()
            if ln.startswith("import time:") and "|" in ln and "imported package" not in ln}


def eventually(cond, timeout: float = 5.0) -> bool:
    """Poll cond() until it is true or `timeout` seconds pass (for the kernel's asynchronous
    work, e.g. a deleted netns taking its veth ends with it); return its last value."""
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            return cond()
        time.sleep(0.02)
    return True


def ptp_conf(tmp_path, **kw) -> dict:
    """A ptp network on host-local (10.98.0.0/24, default route), `kw` on top."""
    c = {"cniVersion": "1.0.0", "name": "cnit-ptp", "type": "ptp",
         "ipam": {"type": "host-local", "subnet": "10.98.0.0/24", "dataDir": str(tmp_path / "ipam"),
                  "routes": [{"dst": "0.0.0.0/0"}]}}
    c.update(kw)
    return c
