"""scripts/priv-net-run.sh and scripts/demo.sh end to end with the real plugins.

Both run inside a test "host" netns (ip netns exec), so the bridge, the
masquerade rules and the veths are made there, never in the root netns.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from helpers import ROOT

NEEDED = ("bridge", "host-local", "portmap", "tuning", "loopback", "cnitool")
SCRIPTS = os.path.join(ROOT, "scripts")
pytestmark = [pytest.mark.root, pytest.mark.tool("iptables")]


@pytest.fixture
def bins(built_bins):
    missing = [p for p in NEEDED if not os.path.exists(os.path.join(built_bins, p))]
    if missing:
        pytest.skip(f"plugins not built yet: {', '.join(missing)}")
    return built_bins


@pytest.fixture
def netconf(tmp_path):
    """The bundled configs, with host-local's store moved into tmp_path."""
    d = tmp_path / "net.d"
    d.mkdir()
    for fn in os.listdir(os.path.join(SCRIPTS, "net.d")):
        with open(os.path.join(SCRIPTS, "net.d", fn)) as f:
            obj = json.load(f)
        for p in obj.get("plugins", []):
            if p.get("ipam", {}).get("type") == "host-local":
                p["ipam"]["dataDir"] = str(tmp_path / "ipam")
        (d / fn).write_text(json.dumps(obj))
    return d


def default_signals() -> None:
    """preexec_fn: the child starts with SIGINT and SIGQUIT at their defaults.

    A shell that starts pytest in the background (or `trap "" INT`) makes it inherit SIGINT as
    ignored; a non-interactive sh cannot trap a signal ignored on entry, so the ^C these tests
    send would never reach the scripts. subprocess's restore_signals covers only SIGPIPE/XFSZ.
    """
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def run_in(host, argv, tmp_path, netconf, **kw):
    env = dict(os.environ, NETCONFPATH=str(netconf), CNI_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("CNI_PATH", None)
    kw.setdefault("preexec_fn", default_signals)
    return subprocess.Popen(["ip", "netns", "exec", host.name, *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def leftovers(host, tmp_path):
    """What must be gone after priv-net-run.sh: netns, veths, leases, cache, masq rules."""
    left = []
    left += [n for n in os.listdir("/run/netns") if n.startswith("pycni-")]
    links = host.ipj("link")
    left += [ln["ifname"] for ln in links if ln.get("link_type") == "ether"
             and ln["ifname"] != "pycni0"]
    ipam = tmp_path / "ipam" / "pycni"
    if ipam.exists():
        left += [f.name for f in ipam.iterdir()
                 if f.name not in ("lock",) and not f.name.startswith("last_reserved_ip")]
    results = tmp_path / "cache" / "results"
    if results.exists():
        left += [f.name for f in results.iterdir()]
    nat = host.run("iptables-save", "-t", "nat").stdout
    left += [ln for ln in nat.splitlines() if "10.89.0." in ln]
    nft = host.run("nft", "list", "ruleset", check=False).stdout
    left += [ln for ln in nft.splitlines() if "10.89.0." in ln]
    return left


def test_priv_net_run_bundled_config(bins, host_ns, tmp_path, netconf):
    p = run_in(host_ns, [os.path.join(SCRIPTS, "priv-net-run.sh"), "ip", "-j", "addr"],
               tmp_path, netconf)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    addrs = {i["ifname"]: i for i in json.loads(out)}
    assert addrs["lo"]["operstate"] == "UNKNOWN"
    eth0 = addrs["eth0"]
    v4 = [a["local"] for a in eth0["addr_info"] if a["family"] == "inet"]
    assert len(v4) == 1 and v4[0].startswith("10.89.0."), eth0
    br = host_ns.ipj("addr", "show", "dev", "pycni0")[0]
    assert "10.89.0.1" in [a["local"] for a in br["addr_info"]]
    assert leftovers(host_ns, tmp_path) == []


def test_priv_net_run_failing_command_cleans_up(bins, host_ns, tmp_path, netconf):
    p = run_in(host_ns, [os.path.join(SCRIPTS, "priv-net-run.sh"), "sh", "-c", "exit 7"],
               tmp_path, netconf)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 7, err
    assert leftovers(host_ns, tmp_path) == []


def test_priv_net_run_interrupted_cleans_up(bins, host_ns, tmp_path, netconf):
    marker = tmp_path / "started"
    p = run_in(host_ns, [os.path.join(SCRIPTS, "priv-net-run.sh"), "sh", "-c",
                         f"touch {marker}; sleep 60"], tmp_path, netconf,
               start_new_session=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGINT)  # like ^C: the whole foreground group
    p.communicate(timeout=60)
    assert p.returncode != 0
    assert leftovers(host_ns, tmp_path) == []


def test_priv_net_run_refuses_clashing_subnet(bins, host_ns, tmp_path, netconf):
    host_ns.ip("link", "add", "cnit-dummy0", "type", "veth", "peer", "name", "cnit-dummy1")
    host_ns.ip("addr", "add", "10.89.0.77/24", "dev", "cnit-dummy0")
    p = run_in(host_ns, [os.path.join(SCRIPTS, "priv-net-run.sh"), "true"], tmp_path, netconf)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1
    assert "clashes" in err and "10.89.0.0/24" in err
    assert not [n for n in os.listdir("/run/netns") if n.startswith("pycni-")]


def test_demo_leaves_nothing(bins, host_ns):
    """scripts/demo.sh (what `make demo` runs), inside a host netns for the test."""
    ipam_before = os.path.exists("/var/lib/cni/networks/pycni")
    r = host_ns.run(os.path.join(SCRIPTS, "demo.sh"), check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "eth0" in r.stdout and "10.89.0." in r.stdout
    assert [ln["ifname"] for ln in host_ns.ipj("link")] == ["lo"]
    assert "CNI-" not in host_ns.run("iptables-save").stdout
    assert "cni" not in host_ns.run("nft", "list", "tables", check=False).stdout
    assert os.path.exists("/var/lib/cni/networks/pycni") == ipam_before
    assert not [n for n in os.listdir("/run/netns") if n.startswith("pycni-")]


FAKE_DOCKER = r"""#!/bin/sh
# a stand-in for docker: a "container" is `sleep` in its own netns (unshare -n)
st=$FAKE_DOCKER_STATE
echo "$*" >> "$st/calls"
case $1 in
run)
    shift
    if [ "$1" = -d ]; then
        unshare -n sleep 600 >/dev/null 2>&1 &
        pid=$!
        while [ "$(readlink /proc/$pid/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do
            sleep 0.01                      # until unshare has made its netns
        done
        echo $pid > "$st/pid"
        echo "fakectr$pid"
        exit 0
    fi
    case $1 in --net=container:fakectr*) ;; *) echo "bad net $1" >&2; exit 99 ;; esac
    shift
    shift                                   # the image
    exec nsenter -t "$(cat "$st/pid")" -n "$@" ;;
inspect) cat "$st/pid" ;;
rm) kill "$(cat "$st/pid")"; echo removed > "$st/removed" ;;
*) exit 98 ;;
esac
"""


@pytest.fixture
def fake_docker(tmp_path):
    d = tmp_path / "fakebin"
    d.mkdir()
    (d / "docker").write_text(FAKE_DOCKER)
    (d / "docker").chmod(0o755)
    state = tmp_path / "docker-state"
    state.mkdir()
    return {"PATH": f"{d}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
            "FAKE_DOCKER_STATE": str(state)}, state


@pytest.mark.parametrize("rc", [0, 5])
def test_docker_run_networks_through_proc_pid_and_cleans_up(bins, host_ns, tmp_path, netconf,
                                                            fake_docker, rc):
    env, state = fake_docker
    p = run_in(host_ns, ["env", *(f"{k}={v}" for k, v in env.items()),
                         os.path.join(SCRIPTS, "docker-run.sh"), "busybox", "sh", "-c",
                         f"ip -j addr; exit {rc}"], tmp_path, netconf)
    out, err = p.communicate(timeout=120)
    assert p.returncode == rc, err
    addrs = {i["ifname"]: i for i in json.loads(out)}
    v4 = [a["local"] for a in addrs["eth0"]["addr_info"] if a["family"] == "inet"]
    assert len(v4) == 1 and v4[0].startswith("10.89.0.")
    assert addrs["lo"]["operstate"] == "UNKNOWN"
    calls = (state / "calls").read_text()
    assert "run -d --net=none" in calls
    assert (state / "removed").exists()
    assert leftovers(host_ns, tmp_path) == []


def test_exec_plugins_add_del(bins, host_ns, make_netns, tmp_path, netconf):
    """exec-plugins.sh add|del <id> <netns>: lo for the loopback network, eth0 for the other."""
    cont = make_netns("execpl")
    script = os.path.join(SCRIPTS, "exec-plugins.sh")
    p = run_in(host_ns, [script, "add", "execpl-1", cont.path], tmp_path, netconf)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    links = {ln["ifname"]: ln for ln in cont.ipj("addr")}
    assert set(links) == {"lo", "eth0"}
    assert "UP" in links["lo"]["flags"]
    cache = sorted(f.name for f in (tmp_path / "cache" / "results").iterdir())
    assert cache == ["pycni-execpl-1-eth0", "pycni-lo-execpl-1-lo"]
    p = run_in(host_ns, [script, "del", "execpl-1", cont.path], tmp_path, netconf)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert [ln["ifname"] for ln in cont.ipj("link")] == ["lo"]
    assert leftovers(host_ns, tmp_path) == []
    p = run_in(host_ns, [script, "bogus", "x", cont.path], tmp_path, netconf)
    p.communicate(timeout=30)
    assert p.returncode == 2


def test_exec_plugins_falls_back_to_bundled_config(bins, host_ns, make_netns, tmp_path):
    empty = tmp_path / "empty.d"
    empty.mkdir()
    ipam_before = os.path.exists("/var/lib/cni/networks/pycni")
    cont = make_netns("execfb")
    script = os.path.join(SCRIPTS, "exec-plugins.sh")
    try:
        p = run_in(host_ns, [script, "add", "execfb-1", cont.path], tmp_path, empty)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "using" in err and "net.d" in err
        assert {ln["ifname"] for ln in cont.ipj("link")} == {"lo", "eth0"}
    finally:
        p = run_in(host_ns, [script, "del", "execfb-1", cont.path], tmp_path, empty)
        _, err = p.communicate(timeout=120)
        if not ipam_before:  # host-local's store of the bundled config (as demo.sh does)
            shutil.rmtree("/var/lib/cni/networks/pycni", ignore_errors=True)
            for d in ("/var/lib/cni/networks", "/var/lib/cni"):
                try:
                    os.rmdir(d)
                except OSError:
                    break
    assert p.returncode == 0, err
    assert [ln["ifname"] for ln in cont.ipj("link")] == ["lo"]
