"""dhcp IPAM end to end: dnsmasq in a "server" netns, our daemon, the plugin over exec.

Topology (nothing in the root netns but the daemon process, which sends no DHCP there):
    srv netns: bridge br0 10.77.<n>.1/24, dnsmasq --interface=br0 --port=0
    cont netns: veth ends dh0, dh1, ... whose peers are ports of br0
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from helpers import ROOT

PLUGIN = os.path.join(ROOT, "plugins", "dhcp.py")
LIB = os.path.join(ROOT, "lib")
pytestmark = [pytest.mark.root, pytest.mark.tool("dnsmasq")]


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _env(extra=None):
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PYTHONPATH": LIB}
    env.update(extra or {})
    return env


class Lab:
    """Server netns + bridge + dnsmasq + our daemon; everything is torn down by `close`."""

    def __init__(self, make_netns, tmp_path):
        self.tmp = tmp_path
        self.srv = make_netns("dhsrv")
        self.cont = make_netns("dhcont")
        self.subnet = f"10.77.{uuid.uuid4().int % 200 + 1}"
        self.srv.ip("link", "add", "br0", "type", "bridge")
        self.srv.ip("addr", "add", f"{self.subnet}.1/24", "dev", "br0")
        self.srv.ip("link", "set", "br0", "up")
        self.leasefile = str(tmp_path / "dnsmasq.leases")
        self.sock = str(tmp_path / "run" / "dhcp.sock")
        self.pidfile = str(tmp_path / "dhcp.pid")
        self.dnsmasq = None
        self.daemon = None
        self.ports = 0

    def add_iface(self, name: str) -> None:
        peer = f"dhp{self.ports}"
        self.ports += 1
        self.srv.ip("link", "add", peer, "type", "veth", "peer", "name", name,
                    "netns", self.cont.name)
        self.srv.ip("link", "set", peer, "master", "br0", "up")

    def start_dnsmasq(self, *extra: str) -> None:
        argv = ["ip", "netns", "exec", self.srv.name, "dnsmasq", "--keep-in-foreground",
                "--conf-file=/dev/null", "--port=0", "--interface=br0", "--bind-interfaces",
                "--except-interface=lo", "--no-ping", "--log-dhcp", "--log-facility=-",
                f"--dhcp-range={self.subnet}.10,{self.subnet}.250,255.255.255.0,2m",
                f"--dhcp-leasefile={self.leasefile}",
                f"--pid-file={self.tmp / 'dnsmasq.pid'}",
                f"--dhcp-option=option:router,{self.subnet}.1",
                f"--dhcp-option=option:dns-server,{self.subnet}.53",
                "--dhcp-option=option:domain-name,example.test",
                f"--dhcp-option=121,10.20.0.0/16,{self.subnet}.1,0.0.0.0/0,{self.subnet}.1",
                *extra]
        self.dnsmasq = subprocess.Popen(argv, stdout=open(self.tmp / "dnsmasq.log", "ab"),
                                        stderr=subprocess.STDOUT)
        wait_for(lambda: "DHCP, sockets bound" in self.log("dnsmasq.log") or
                 self.dnsmasq.poll() is not None, what="dnsmasq start")
        assert self.dnsmasq.poll() is None, self.log("dnsmasq.log")

    def stop_dnsmasq(self) -> None:
        if self.dnsmasq is not None and self.dnsmasq.poll() is None:
            self.dnsmasq.terminate()
            try:
                self.dnsmasq.wait(5)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
                self.dnsmasq.wait()
        self.dnsmasq = None

    def start_daemon(self, *flags: str, argv=None, **popen) -> subprocess.Popen:
        argv = argv or [sys.executable, PLUGIN, "daemon", "-socketpath", self.sock,
                        "-pidfile", self.pidfile, "-timeout", "2s", "-resendtimeout", "6s",
                        *flags]
        self.daemon = subprocess.Popen(argv, env=_env(popen.pop("env", None)),
                                       stdout=open(self.tmp / "daemon.log", "ab"),
                                       stderr=subprocess.STDOUT, **popen)
        wait_for(lambda: os.path.exists(self.sock) or self.daemon.poll() is not None,
                 what="daemon socket")
        assert self.daemon.poll() is None, self.log("daemon.log")
        return self.daemon

    def stop_daemon(self) -> int | None:
        d, self.daemon = self.daemon, None
        if d is None:
            return None
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
            try:
                return d.wait(10)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        return d.returncode

    def log(self, name: str) -> str:
        try:
            with open(self.tmp / name, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def leases(self) -> dict:
        """client-id (as text) -> (ip, expiry) from the dnsmasq lease file."""
        out = {}
        try:
            with open(self.leasefile) as f:
                for line in f:
                    exp, _mac, ip, _host, cid = line.split()[:5]
                    if cid != "*":
                        cid = bytes.fromhex(cid.replace(":", ""))[1:].decode()
                    out[cid] = (ip, int(exp))
        except FileNotFoundError:
            pass
        return out

    def conf(self, version="1.1.0", **ipam) -> dict:
        return {"cniVersion": version, "name": "dnet", "type": "dhcp",
                "ipam": {"type": "dhcp", "daemonSocketPath": self.sock,
                         "request": [{"option": "121"}, {"option": "6"}, {"option": "15"}],
                         **ipam}}

    def run(self, cmd: str, conf: dict, *, cid="c1", ifname="dh0", timeout=60, extra=None):
        env = _env({"CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_NETNS": self.cont.path,
                    "CNI_IFNAME": ifname, "CNI_PATH": "/nonexistent", **(extra or {})})
        p = subprocess.run([sys.executable, "-S", PLUGIN], input=json.dumps(conf).encode(),
                           env=env, capture_output=True, timeout=timeout)
        out = json.loads(p.stdout) if p.stdout.strip() else None
        return p.returncode, out, p.stderr.decode(errors="replace")

    def close(self) -> None:
        self.stop_daemon()
        self.stop_dnsmasq()


@pytest.fixture
def lab(make_netns, tmp_path):
    lab = Lab(make_netns, tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def test_add_check_status_del(lab):
    lab.add_iface("dh0")
    lab.start_dnsmasq()
    lab.start_daemon()
    for n, ver in enumerate(("0.3.1", "0.4.0", "1.0.0", "1.1.0")):
        cid = f"ctr{n}"
        conf = lab.conf(ver, priority=7)
        rc, res, err = lab.run("ADD", conf, cid=cid)
        assert rc == 0, (res, err, lab.log("daemon.log"))
        assert res["cniVersion"] == ver
        ip = res["ips"][0]
        assert ip["address"].startswith(f"{lab.subnet}.") and ip["address"].endswith("/24")
        assert ip["gateway"] == f"{lab.subnet}.1"
        assert [(r["dst"], r["gw"], r["priority"]) for r in res["routes"]] == [
            ("10.20.0.0/16", f"{lab.subnet}.1", 7), ("0.0.0.0/0", f"{lab.subnet}.1", 7)]
        assert res["dns"] == {"nameservers": [f"{lab.subnet}.53"], "domain": "example.test"}
        key = f"{cid}/dnet/dh0"
        assert wait_for(lambda: lab.leases().get(key))[0] == ip["address"].split("/")[0]
        # the daemon brings the link up but, like Go, leaves the address to the main plugin
        link = lab.cont.ipj("addr", "show", "dev", "dh0")[0]
        assert "UP" in link["flags"] and not [a for a in link["addr_info"] if a["family"] == "inet"]
        # a repeated ADD returns the held lease
        rc, res2, _ = lab.run("ADD", conf, cid=cid)
        assert rc == 0 and res2["ips"] == res["ips"]
        if ver != "0.3.1":
            rc, out, err = lab.run("CHECK", {**conf, "prevResult": res}, cid=cid)
            assert rc == 0 and out is None, (out, err)
        rc, _, _ = lab.run("DEL", conf, cid=cid)
        assert rc == 0
        wait_for(lambda: key not in lab.leases(), what="dnsmasq to forget the lease")
        rc, out, err = lab.run("DEL", conf, cid=cid)        # idempotent
        assert rc == 0, (out, err)
        if ver != "0.3.1":
            rc, out, _ = lab.run("CHECK", {**conf, "prevResult": res}, cid=cid)
            assert rc == 1 and out["code"] == 3
    rc, out, err = lab.run("STATUS", lab.conf())
    assert rc == 0 and out is None, (out, err)
    assert "DHCPRELEASE" in lab.log("dnsmasq.log")


def test_no_server_is_try_again_later(lab):
    lab.add_iface("dh0")
    lab.start_daemon()                                    # no dnsmasq at all
    t0 = time.monotonic()
    rc, out, err = lab.run("ADD", lab.conf())
    took = time.monotonic() - t0
    assert rc == 1 and out["code"] == 11, (out, err)
    assert took < 6 + 5, took                             # -resendtimeout 6s
    rc, out, _ = lab.run("STATUS", lab.conf())
    assert rc == 0
    s = socket.socket(socket.AF_UNIX)
    s.connect(lab.sock)
    s.sendall(b'{"v": 1, "op": "status", "args": {}}')
    s.shutdown(socket.SHUT_WR)
    assert json.loads(s.recv(4096))["result"]["leases"] == 0   # nothing left behind
    s.close()
    assert lab.run("DEL", lab.conf())[0] == 0


def test_server_stops_then_add_fails(lab):
    lab.add_iface("dh0")
    lab.add_iface("dh1")
    lab.start_dnsmasq()
    lab.start_daemon()
    assert lab.run("ADD", lab.conf(), cid="a", ifname="dh0")[0] == 0
    lab.stop_dnsmasq()
    rc, out, _ = lab.run("ADD", lab.conf(), cid="b", ifname="dh1")
    assert rc == 1 and out["code"] == 11
    assert lab.run("DEL", lab.conf(), cid="b", ifname="dh1")[0] == 0
    assert lab.run("DEL", lab.conf(), cid="a", ifname="dh0")[0] == 0


def test_twenty_leases_at_once(lab):
    names = [f"dh{i}" for i in range(20)]
    for n in names:
        lab.add_iface(n)
    lab.start_dnsmasq()
    lab.start_daemon()
    results = {}

    def one(i):
        results[i] = lab.run("ADD", lab.conf(), cid=f"many{i}", ifname=names[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(results[i][0] == 0 for i in range(20)), [results[i][1:] for i in range(20)
                                                        if results[i][0] != 0]
    addrs = {results[i][1]["ips"][0]["address"] for i in range(20)}
    assert len(addrs) == 20
    held = lab.leases()
    assert {f"many{i}/dnet/{names[i]}" for i in range(20)} <= set(held)

    def drop(i):
        assert lab.run("DEL", lab.conf(), cid=f"many{i}", ifname=names[i])[0] == 0

    threads = [threading.Thread(target=drop, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wait_for(lambda: not any(k.startswith("many") for k in lab.leases()), what="all released")


def test_sigterm_removes_socket_and_pidfile(lab):
    lab.add_iface("dh0")
    lab.start_dnsmasq()
    d = lab.start_daemon()
    with open(lab.pidfile) as f:
        assert int(f.read()) == d.pid
    assert oct(os.stat(os.path.dirname(lab.sock)).st_mode & 0o777) == "0o700"
    assert lab.run("ADD", lab.conf())[0] == 0
    assert lab.stop_daemon() == 0
    assert not os.path.exists(lab.sock) and not os.path.exists(lab.pidfile)
    assert "c1/dnet/dh0" in lab.leases()          # shutdown releases nothing
    rc, out, _ = lab.run("STATUS", lab.conf())
    assert rc == 1 and out["code"] == 50
    rc, out, _ = lab.run("ADD", lab.conf())
    assert rc == 1 and "dhcp daemon" in out["details"] and lab.sock in out["details"]
    assert lab.run("DEL", lab.conf())[0] == 0       # no daemon holds no lease


def test_socket_activation(lab):
    lab.add_iface("dh0")
    lab.start_dnsmasq()
    os.makedirs(os.path.dirname(lab.sock), mode=0o700)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(lab.sock)
    s.listen(16)
    fd = s.fileno()
    cmd = (f'LISTEN_PID=$$ LISTEN_FDS=1 exec {sys.executable} {PLUGIN} daemon '
           f'-socketpath /nonexistent/dhcp.sock -timeout 2s -resendtimeout 6s -broadcast')
    lab.start_daemon(argv=["sh", "-c", cmd], pass_fds=(3,),
                     preexec_fn=lambda: os.dup2(fd, 3) if fd != 3 else None)
    s.close()
    rc, out, err = lab.run("ADD", lab.conf())
    assert rc == 0, (out, err, lab.log("daemon.log"))
    assert lab.run("DEL", lab.conf())[0] == 0


@pytest.mark.slow
def test_lease_is_renewed_before_expiry(lab):
    lab.add_iface("dh0")
    lab.start_dnsmasq("--dhcp-option=option:T1,4", "--dhcp-option=option:T2,100")
    lab.start_daemon()
    rc, res, err = lab.run("ADD", lab.conf())
    assert rc == 0, (res, err)
    # dnsmasq rewrites its lease file in place: a read can catch it empty
    key = "c1/dnet/dh0"
    ip, exp0 = wait_for(lambda: lab.leases().get(key), what="lease in the server's file")

    def later():
        cur = lab.leases().get(key)
        return cur if cur is not None and cur[1] > exp0 else None
    renewed = wait_for(later, timeout=20, what="renewal")
    assert renewed[0] == ip
    wait_for(lambda: "lease renewed" in lab.log("daemon.log"), what="renewal log")
    assert lab.run("DEL", lab.conf())[0] == 0


def _daemon_leases(sock: str) -> int:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sock)
        s.sendall(b'{"v": 1, "op": "status", "args": {}}')
        s.shutdown(socket.SHUT_WR)
        return json.loads(s.recv(65536))["result"]["leases"]
    finally:
        s.close()


def test_macvlan_with_dhcp_end_to_end(lab, make_netns, built_bins):
    """macvlan + dhcp through the exec protocol (bin/macvlan delegating to bin/dhcp): the
    server's address, routes and DNS land in the container and the result; DEL releases;
    with the server gone the next ADD is code 11 within the timeout and leaves nothing."""
    from helpers import run_plugin
    host = make_netns("dhhost")
    cont2 = make_netns("dhcont2")
    lab.srv.ip("link", "add", "dhup", "type", "veth", "peer", "name", "up0",
               "netns", host.name)
    lab.srv.ip("link", "set", "dhup", "master", "br0", "up")
    host.ip("link", "set", "up0", "up")
    lab.start_dnsmasq()
    lab.start_daemon()
    conf = {"cniVersion": "1.0.0", "name": "dnet", "type": "macvlan", "master": "up0",
            "ipam": {"type": "dhcp", "daemonSocketPath": lab.sock,
                     "request": [{"option": "121"}, {"option": "6"}, {"option": "15"}]}}

    def run(cmd, ns, cid, **kw):
        return run_plugin("macvlan", cmd, kw.pop("c", conf), container_id=cid,
                          netns=ns.path, ifname="eth0", in_netns=host.name, **kw)

    r = run("ADD", lab.cont, "mv1")
    assert r.rc == 0, (r, lab.log("daemon.log"))
    res = r.json
    assert res["interfaces"][0]["name"] == "eth0"
    ip = res["ips"][0]
    assert ip["address"].startswith(f"{lab.subnet}.") and ip["address"].endswith("/24")
    assert ip["interface"] == 0 and ip["gateway"] == f"{lab.subnet}.1"
    assert {(x["dst"], x.get("gw")) for x in res["routes"]} == {
        ("10.20.0.0/16", f"{lab.subnet}.1"), ("0.0.0.0/0", f"{lab.subnet}.1")}
    assert res["dns"]["nameservers"] == [f"{lab.subnet}.53"]
    addr = lab.cont.ipj("addr", "show", "dev", "eth0")[0]
    assert [f"{a['local']}/{a['prefixlen']}" for a in addr["addr_info"]
            if a["family"] == "inet"] == [ip["address"]]
    routes = {(x["dst"], x.get("gateway")) for x in lab.cont.ipj("-4", "route", "show")}
    assert ("10.20.0.0/16", f"{lab.subnet}.1") in routes
    assert ("default", f"{lab.subnet}.1") in routes
    key = "mv1/dnet/eth0"
    assert wait_for(lambda: lab.leases().get(key))[0] == ip["address"].split("/")[0]
    r = run("CHECK", lab.cont, "mv1", c={**conf, "prevResult": res})
    assert r.rc == 0, r
    r = run("DEL", lab.cont, "mv1", c={**conf, "prevResult": res})
    assert r.rc == 0, r
    wait_for(lambda: key not in lab.leases(), what="dnsmasq to forget the lease")
    assert "eth0" not in {x["ifname"] for x in lab.cont.ipj("link")}
    assert run("DEL", lab.cont, "mv1").rc == 0                       # idempotent

    lab.stop_dnsmasq()
    t0 = time.monotonic()
    r = run("ADD", cont2, "mv2")
    took = time.monotonic() - t0
    assert r.rc == 1 and r.json["code"] == 11, r
    assert took < 6 + 5, took                                       # -resendtimeout 6s
    assert "eth0" not in {x["ifname"] for x in cont2.ipj("link")}
    assert _daemon_leases(lab.sock) == 0
    assert run("DEL", cont2, "mv2").rc == 0


def test_daemon_survives_a_killed_plugin(lab):
    """A plugin killed while the daemon works on its ADD (the runtime's DEL follows) does not
    hurt the daemon: it keeps serving and holds no lease for the dead request."""
    lab.add_iface("dh0")
    lab.add_iface("dh1")
    lab.start_daemon()                                    # no server yet: the ADD keeps trying
    env = _env({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "dead", "CNI_NETNS": lab.cont.path,
                "CNI_IFNAME": "dh0", "CNI_PATH": "/nonexistent"})
    p = subprocess.Popen([sys.executable, "-S", PLUGIN], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdin.write(json.dumps(lab.conf()).encode())
    p.stdin.close()
    time.sleep(0.5)                                      # let the request reach the daemon
    p.kill()
    p.wait()
    p.stdout.close()
    p.stderr.close()
    lab.start_dnsmasq()
    rc, res, err = lab.run("ADD", lab.conf(), cid="alive", ifname="dh1")
    assert rc == 0, (res, err, lab.log("daemon.log"))
    assert lab.daemon.poll() is None
    assert lab.run("DEL", lab.conf(), cid="dead", ifname="dh0")[0] == 0
    wait_for(lambda: _daemon_leases(lab.sock) == 1, timeout=15, what="only the live lease")
    assert lab.run("DEL", lab.conf(), cid="alive", ifname="dh1")[0] == 0
    assert _daemon_leases(lab.sock) == 0


# ---- hardening (issue 12) and parity (issue 15) ------------------------------------------

GO_DHCP = "/usr/lib/cni/dhcp"
BAD_IFNAMES = ["", "a" * 16, "eth/0", "eth:0", "eth 0", "eth\t0", "eth\n0", ".", "..", "e\x00"]


def raw_call(path: str, payload: bytes, *, shutdown=True, timeout=10.0) -> dict:
    """One raw request; the decoded reply (AssertionError if the daemon stays silent)."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(timeout)
        s.connect(path)
        try:
            s.sendall(payload)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass                                # answered before reading: reply is queued
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                raise AssertionError(f"no reply within {timeout}s to {payload[:60]!r}") from None
            if not b:
                break
            chunks.append(b)
        return json.loads(b"".join(chunks))
    finally:
        s.close()


def _req(op: str, **args) -> bytes:
    return json.dumps({"v": 1, "op": op, "args": args}).encode()


def _alloc(lab, **over) -> bytes:
    args = {"containerID": "c1", "netns": lab.cont.path, "ifName": "dh0", "cniArgs": "",
            "config": json.dumps(lab.conf())}
    args.update(over)
    return _req("allocate", **args)


def test_socket_is_private_under_umask_000_and_non_root_is_refused(lab):
    import shutil
    import tempfile
    lab.start_daemon(umask=0)
    st = os.stat(lab.sock)
    assert oct(st.st_mode & 0o7777) == "0o600" and st.st_uid == 0
    # an unprivileged process: the file mode refuses it ...
    # ... and if an admin opens the mode up, the peer credentials still do
    def as_nobody(path):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                                        # child: drop to nobody, then ask
            code = 0
            try:
                os.close(r)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                try:
                    out = json.dumps(raw_call(path, _req("status"), timeout=5))
                except PermissionError:
                    out = "EACCES"
                os.write(w, out.encode())
            except BaseException as exc:                    # noqa: BLE001 - report, never return
                os.write(w, f"child error {exc!r}".encode())
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        data = b""
        while True:
            b = os.read(r, 65536)
            if not b:
                break
            data += b
        os.close(r)
        os.waitpid(pid, 0)
        return data.decode()

    # the same socket reachable by nobody: a hard link in a world-searchable directory
    pub = tempfile.mkdtemp(prefix="cnit-dhcp-", dir="/tmp")
    try:
        os.chmod(pub, 0o755)
        link = os.path.join(pub, "dhcp.sock")
        os.link(lab.sock, link)
        assert as_nobody(link) == "EACCES"
        os.chmod(link, 0o666)
        reply = json.loads(as_nobody(link))
    finally:
        shutil.rmtree(pub)
    assert reply["ok"] is False and reply["error"]["code"] == 4, reply
    assert "root only" in reply["error"]["details"] and "65534" in reply["error"]["details"]
    assert raw_call(lab.sock, _req("status"))["ok"] is True           # root is still served


def test_bad_netns_ifname_and_container_id_refused_with_code_4(lab):
    lab.add_iface("dh0")
    lab.start_daemon()
    regular = lab.tmp / "notns"
    regular.write_text("x")
    own = f"/proc/{os.getpid()}/ns/net"                  # the daemon's netns: we started it
    tried = 0
    for netns in ("", "relative/ns", str(regular), own, "/proc/self/ns/net",
                  str(lab.tmp / "missing")):
        reply = raw_call(lab.sock, _alloc(lab, netns=netns))
        assert reply["ok"] is False and reply["error"]["code"] == 4, (netns, reply)
        tried += 1
    for ifname in BAD_IFNAMES:
        reply = raw_call(lab.sock, _alloc(lab, ifName=ifname))
        assert reply["ok"] is False and reply["error"]["code"] == 4, (ifname, reply)
        assert "ifName" in reply["error"]["msg"]
        tried += 1
    for cid in ("", "-x", "a/b", "a b", "x" * 2000):
        reply = raw_call(lab.sock, _alloc(lab, containerID=cid))
        assert reply["ok"] is False and reply["error"]["code"] == 4, (cid, reply)
        tried += 1
    # through the plugin: the runtime's own netns (allowed past skel by CNI_NETNS_OVERRIDE)
    rc, out, err = lab.run("ADD", lab.conf(), extra={"CNI_NETNS": own, "CNI_NETNS_OVERRIDE": "1"})
    assert rc == 1 and out["code"] == 4 and "own network namespace" in out["msg"], (out, err)
    assert _daemon_leases(lab.sock) == 0 and lab.daemon.poll() is None
    assert tried == 21


MALFORMED = [
    b"", b"null", b"[]", b"5", b'"x"', b"{}", b'{"v": 2, "op": "status"}', b'{"v": "1"}',
    b'{"v": 1}', b'{"v": 1, "op": 5}', b'{"v": 1, "op": "frobnicate"}', b'{"v": 1, "op": null}',
    b'{"v": 1, "op": "allocate"}', b'{"v": 1, "op": "allocate", "args": []}',
    b'{"v": 1, "op": "allocate", "args": "x"}', b'{"v": 1, "op": "release", "args": {}}',
    b"\xff\xfe\x00", b"{" * 5000, b"[" * 100000, b'{"v": 1, "op": "status"',
    b'{"v": 1, "op": "check", "args": {"containerID": 5, "ifName": "eth0"}}',
]


def _malformed_args(lab) -> list:
    base = {"containerID": "c1", "netns": lab.cont.path, "ifName": "dh0", "cniArgs": ""}
    confs = ["{nope", "[]", "5", json.dumps({"name": 5}), json.dumps({"name": "n", "ipam": "x"}),
             json.dumps({"name": "n", "ipam": {"priority": "high"}}),
             json.dumps({"name": "n", "ipam": {"priority": -1}}),
             json.dumps({"name": "n", "ipam": {"request": "x"}}),
             json.dumps({"name": "n", "ipam": {"request": [5]}}),
             json.dumps({"name": "n", "ipam": {"request": [{"option": "bogus"}]}}),
             json.dumps({"name": "n", "ipam": {"provide": [{"option": "12", "value": 5}]}}),
             json.dumps({"name": "n", "ipam": {"provide": [{"option": "12", "fromArg": []}]}}),
             json.dumps({"name": "n", "ipam": {"provide": [{"option": "12", "value": "v" * 300}]}})]
    out = [_req("allocate", **{**base, "config": c}) for c in confs]
    out += [_req(op, **{**base, "config": c}) for c in confs[:7] for op in ("check", "release")]
    out += [_req("allocate", **{**base, "config": {"name": "n"}}),
            _req("allocate", **{**base, "cniArgs": 5, "config": "{}"}),
            _req("gc", config="{}", valid="x"), _req("gc", config="{}", valid=[[1, 2]]),
            _req("gc", config="{}", valid=[["a"]]), _req("gc", valid=[])]
    return out


def test_malformed_requests_get_codes_4_6_7_not_999(lab):
    lab.start_daemon()
    payloads = MALFORMED + _malformed_args(lab)
    t0 = time.monotonic()
    for p in payloads:
        reply = raw_call(lab.sock, p, timeout=8)
        assert reply["ok"] is False and reply["error"]["code"] in (4, 6, 7), (p[:80], reply)
    took = time.monotonic() - t0
    big = b'{"v": 1, "op": "status", "x": "' + b"a" * (2 << 20) + b'"}'
    reply = raw_call(lab.sock, big, timeout=8)
    assert reply["ok"] is False and reply["error"]["code"] == 6 and "too large" in \
        reply["error"]["msg"]
    assert lab.daemon.poll() is None and raw_call(lab.sock, _req("status"))["ok"] is True
    assert len(payloads) >= 50 and took < 10, (len(payloads), took)


def test_slow_client_times_out(lab):
    lab.start_daemon()
    t0 = time.monotonic()
    reply = raw_call(lab.sock, b'{"v": 1, "op": "sta', shutdown=False, timeout=15)
    took = time.monotonic() - t0
    assert reply["ok"] is False and reply["error"]["code"] == 6, reply
    assert 3 < took < 8, took
    s = socket.socket(socket.AF_UNIX)                   # a silent client: closed, daemon fine
    s.connect(lab.sock)
    s.settimeout(15)
    assert json.loads(s.recv(65536))["error"]["code"] == 6
    s.close()
    assert raw_call(lab.sock, _req("status"))["ok"] is True


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def test_connections_are_bounded(lab):
    d = lab.start_daemon()
    base = _threads(d.pid)
    idle = []
    try:
        for _ in range(64):                            # each takes a slot until it times out
            s = socket.socket(socket.AF_UNIX)
            s.connect(lab.sock)
            idle.append(s)
        wait_for(lambda: _threads(d.pid) >= base + 64, what="64 connection threads")
        busy = []
        t0 = time.monotonic()
        for _ in range(40):
            busy.append(raw_call(lab.sock, _req("status"), timeout=3))
        took = time.monotonic() - t0
        assert all(r["ok"] is False and r["error"]["code"] == 11 and "busy" in r["error"]["msg"]
                   for r in busy), busy[:2]
        assert took < 3, took
        assert _threads(d.pid) <= base + 64
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: raw_call(lab.sock, _req("status"))["ok"], what="a free slot again")


def test_stale_socket_is_removed_and_live_one_kept(lab):
    d = lab.start_daemon()
    d.kill()
    d.wait()
    lab.daemon = None
    assert os.path.exists(lab.sock)                    # SIGKILL leaves the socket behind
    d = lab.start_daemon()
    wait_for(lambda: lab.log("daemon.log").count("listening") == 2 or d.poll() is not None,
             what="restarted daemon")
    assert d.poll() is None, lab.log("daemon.log")
    assert raw_call(lab.sock, _req("status"))["result"]["pid"] == d.pid
    # a second daemon on a live socket refuses to start and leaves the first one serving
    p = subprocess.run([sys.executable, PLUGIN, "daemon", "-socketpath", lab.sock],
                       env=_env(), capture_output=True, timeout=20)
    assert p.returncode == 1 and b"already listening" in p.stderr, p.stderr
    assert raw_call(lab.sock, _req("status"))["result"]["pid"] == d.pid


def test_killed_daemon_restarts_and_renews_the_same_lease(lab):
    """SIGKILL, restart: the lease is reclaimed (INIT-REBOOT, same address, new expiry at the
    server); a lease whose link vanished while the daemon was down is dropped."""
    lab.add_iface("dh0")
    lab.add_iface("dh1")
    lab.start_dnsmasq()
    d = lab.start_daemon()
    rc, res, err = lab.run("ADD", lab.conf())
    assert rc == 0, (res, err, lab.log("daemon.log"))
    assert lab.run("ADD", lab.conf(), cid="gone", ifname="dh1")[0] == 0
    key = "c1/dnet/dh0"
    ip, exp0 = wait_for(lambda: lab.leases().get(key), what="lease in the server's file")
    assert res["ips"][0]["address"].split("/")[0] == ip
    state_file = os.path.join(os.path.dirname(lab.sock), "dhcp.leases.json")
    assert oct(os.stat(state_file).st_mode & 0o777) == "0o600"
    with open(state_file) as f:
        saved = json.load(f)["leases"]
    assert sorted((r["containerID"], r["ifName"]) for r in saved) == [("c1", "dh0"),
                                                                      ("gone", "dh1")]
    time.sleep(1.5)                                   # dnsmasq expiry has 1 s resolution
    acks = lab.log("dnsmasq.log").count(f"DHCPACK(br0) {ip}")
    d.kill()
    lab.cont.ip("link", "del", "dh1")                 # torn down while the daemon was away
    d.wait()
    lab.daemon = None
    d = lab.start_daemon()
    wait_for(lambda: lab.log("daemon.log").count("listening") == 2 or d.poll() is not None,
             what="restarted daemon")
    assert d.poll() is None, lab.log("daemon.log")

    def renewed():
        cur = lab.leases().get(key)
        return cur if cur is not None and cur[1] > exp0 else None
    assert wait_for(renewed, timeout=20, what="renewal after restart")[0] == ip
    wait_for(lambda: "lease reclaimed" in lab.log("daemon.log"), what="reclaim log")
    assert lab.log("dnsmasq.log").count(f"DHCPACK(br0) {ip}") > acks
    def saved_addresses():
        with open(state_file) as f:
            return [r["address"] for r in json.load(f)["leases"]]
    wait_for(lambda: saved_addresses() == [ip], what="state without the vanished link")
    assert _daemon_leases(lab.sock) == 1
    rc, out, err = lab.run("CHECK", {**lab.conf(), "prevResult": res})
    assert rc == 0 and out is None, (out, err)
    rc, res2, _ = lab.run("ADD", lab.conf())
    assert rc == 0 and res2["ips"] == res["ips"]
    assert lab.run("DEL", lab.conf())[0] == 0
    wait_for(lambda: key not in lab.leases(), what="dnsmasq to forget the lease")
    with open(state_file) as f:
        assert json.load(f)["leases"] == []


def test_gc_releases_leases_not_in_valid_attachments(lab):
    lab.add_iface("dh0")
    lab.add_iface("dh1")
    lab.start_dnsmasq()
    lab.start_daemon()
    for cid, ifname in (("keep", "dh0"), ("stale", "dh1")):
        rc, res, err = lab.run("ADD", lab.conf(), cid=cid, ifname=ifname)
        assert rc == 0, (res, err)
    wait_for(lambda: {"keep/dnet/dh0", "stale/dnet/dh1"} <= set(lab.leases()), what="leases")

    def gc(**keys):
        rc, out, err = lab.run("GC", {**lab.conf(), **keys})
        assert rc == 0 and out is None, (out, err)

    gc()                                               # no list: nothing is released
    assert _daemon_leases(lab.sock) == 2
    gc(**{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "dh0"}]})
    wait_for(lambda: "stale/dnet/dh1" not in lab.leases(), what="dnsmasq to forget the stale lease")
    assert "keep/dnet/dh0" in lab.leases() and _daemon_leases(lab.sock) == 1
    other = {**lab.conf(), "name": "othernet", "cni.dev/attachments": []}
    rc, out, err = lab.run("GC", other)                # another network's GC keeps ours
    assert rc == 0 and _daemon_leases(lab.sock) == 1, (out, err)
    gc(**{"cni.dev/attachments": []})                  # the other spelling of the key
    wait_for(lambda: "keep/dnet/dh0" not in lab.leases(), what="dnsmasq to forget the last lease")
    assert _daemon_leases(lab.sock) == 0
    rc, out, _ = lab.run("GC", {**lab.conf(), "cni.dev/valid-attachments": [{"containerID": 5}]})
    assert rc == 1 and out["code"] == 7


@pytest.mark.gobin("dhcp")
def test_our_plugin_against_the_go_daemon_names_the_daemon_to_run(lab):
    lab.add_iface("dh0")
    lab.start_daemon(argv=[GO_DHCP, "daemon", "-socketpath", lab.sock])
    for cmd in ("ADD", "STATUS"):
        t0 = time.monotonic()
        rc, out, err = lab.run(cmd, lab.conf(), timeout=20)
        took = time.monotonic() - t0
        assert rc == 1 and out["code"] == 50, (out, err)
        assert "Go dhcp daemon" in out["details"] and f"dhcp daemon -socketpath {lab.sock}" \
            in out["details"], out
        assert took < 3, took
    rc, out, err = lab.run("DEL", lab.conf(), timeout=20)     # teardown is not blocked
    assert rc == 0 and "Go dhcp daemon" in err, (out, err)


@pytest.mark.gobin("dhcp")
def test_go_plugin_against_our_daemon_gets_an_http_error(lab):
    lab.add_iface("dh0")
    lab.start_daemon()
    conf = {**lab.conf("1.0.0")}
    env = _env({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "go1", "CNI_NETNS": lab.cont.path,
                "CNI_IFNAME": "dh0", "CNI_PATH": "/nonexistent"})
    t0 = time.monotonic()
    try:
        p = subprocess.run([GO_DHCP], input=json.dumps(conf).encode(), env=env,
                           capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("the Go plugin got no answer from our daemon") from None
    took = time.monotonic() - t0
    out = json.loads(p.stdout)
    assert p.returncode != 0 and "unexpected HTTP response: 501" in out["msg"], out
    assert "pycni dhcp daemon" in out["msg"], out
    assert took < 3, took
    assert "refused an HTTP client" in lab.log("daemon.log")
    assert _daemon_leases(lab.sock) == 0
