"""bandwidth through the exec protocol after our bridge: TBF/IFB layout and rates, a timed
transfer in each direction limited to the configured rate, and nothing left after DEL."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chain_helpers import chained, container_ip, ok, run

pytestmark = pytest.mark.root
EGRESS, INGRESS = 8_000_000, 16_000_000          # bits/s
BURST = 80_000                                   # bits (10 kB)

RECEIVER = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.settimeout(5)
start = time.monotonic(); t1 = None; n = 0
while time.monotonic() - start < 3.0:
    d = c.recv(65536)
    if not d:
        break
    if time.monotonic() - start >= 1.0:      # skip the burst and slow start
        if t1 is None:
            t1 = time.monotonic(); n = 0
        else:
            n += len(d)
print(n / (time.monotonic() - t1), flush=True)
"""
SENDER = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
buf = b"x" * 65536; end = time.monotonic() + 4
try:
    while time.monotonic() < end:
        c.sendall(buf)
except OSError:
    pass
"""


def measure(recv_ns, send_ns, ip, port=5201) -> float:
    """Bytes/s seen by a receiver in recv_ns over ~2 s of a bulk TCP send from send_ns."""
    rx = subprocess.Popen(["ip", "netns", "exec", recv_ns.name, sys.executable, "-c", RECEIVER, ip,
                           str(port)], stdout=subprocess.PIPE, text=True)
    assert rx.stdout.readline().strip() == "ready"
    tx = subprocess.Popen(["ip", "netns", "exec", send_ns.name, sys.executable, "-c", SENDER, ip,
                           str(port)])
    try:
        out = rx.communicate(timeout=15)[0]
    finally:
        tx.kill()
        tx.wait()
    return float(out.strip())


def bw_conf(prev, **rates):
    return chained(prev, {"type": "bandwidth", **rates})


def qdiscs(host, dev):
    return json.loads(host.run("tc", "-j", "qdisc", "show", "dev", dev).stdout)


def test_bandwidth_shapes_both_directions(attached, host_ns, cont_ns, tmp_path):
    from cni.names import ifb_name
    rates = {"ingressRate": INGRESS, "ingressBurst": BURST, "egressRate": EGRESS, "egressBurst": BURST}
    conf = bw_conf(attached, **rates)
    out = ok(run("bandwidth", "ADD", conf, host_ns, cont_ns, "ctr1"))
    ifb = ifb_name("pmnet", "ctr1")
    assert len(ifb) == 15 and ifb.startswith("bwp")
    assert out["interfaces"][-1]["name"] == ifb and out["interfaces"][:-1] == attached["interfaces"]
    veth = attached["interfaces"][1]["name"]
    kinds = {q["kind"]: q for q in qdiscs(host_ns, veth)}
    assert kinds["tbf"]["options"]["rate"] == INGRESS // 8 and "ingress" in kinds
    ifbq = [q for q in qdiscs(host_ns, ifb) if q["kind"] == "tbf"]
    assert ifbq and ifbq[0]["options"]["rate"] == EGRESS // 8
    filt = host_ns.run("tc", "filter", "show", "dev", veth, "ingress").stdout
    assert f"Egress Redirect to device {ifb}" in filt
    ok(run("bandwidth", "CHECK", conf, host_ns, cont_ns, "ctr1"))
    wrong = bw_conf(attached, **{**rates, "egressRate": EGRESS * 2})
    assert run("bandwidth", "CHECK", wrong, host_ns, cont_ns, "ctr1").rc == 1

    gw, cip = "10.91.0.1", container_ip(attached)
    egress = measure(host_ns, cont_ns, gw)            # container -> host: the IFB's TBF
    assert abs(egress - EGRESS / 8) <= 0.2 * EGRESS / 8, egress
    ingress = measure(cont_ns, host_ns, cip, 5202)    # host -> container: the veth's TBF
    assert abs(ingress - INGRESS / 8) <= 0.2 * INGRESS / 8, ingress

    ok(run("bandwidth", "DEL", conf, host_ns, cont_ns, "ctr1"))
    assert host_ns.ip("link", "show", ifb, check=False).returncode != 0
    ok(run("bandwidth", "DEL", chained(None, {"type": "bandwidth"}), host_ns, None, "ctr1", netns=""))


def test_bandwidth_capability_and_validation(attached, host_ns, cont_ns):
    from cni.names import ifb_name
    # top-level keys win over the capability; the capability counts only without them
    conf = chained(attached, {"type": "bandwidth", "runtimeConfig": {
        "bandwidth": {"egressRate": EGRESS, "egressBurst": BURST}}})
    out = ok(run("bandwidth", "ADD", conf, host_ns, cont_ns, "ctr1"))
    assert out["interfaces"][-1]["name"] == ifb_name("pmnet", "ctr1")
    ok(run("bandwidth", "DEL", conf, host_ns, cont_ns, "ctr1"))
    both = chained(attached, {"type": "bandwidth", "ingressRate": 0, "runtimeConfig": {
        "bandwidth": {"egressRate": EGRESS, "egressBurst": BURST}}})
    assert ok(run("bandwidth", "ADD", both, host_ns, cont_ns, "ctr1")) == attached   # all zero
    for bad, msg in (({"ingressRate": 1000}, "burst must also be set"),
                     ({"egressBurst": 1000}, "rate must also be set"),
                     ({"egressRate": 1000, "egressBurst": 8 * (1 << 32)}, "4GB")):
        r = run("bandwidth", "ADD", bw_conf(attached, **bad), host_ns, cont_ns, "ctr1")
        assert r.rc == 1 and msg in r.json["msg"], r.stdout
    r = run("bandwidth", "ADD", {**bw_conf(attached, ingressRate=8000, ingressBurst=8000),
                                 "cniVersion": "0.2.0"}, host_ns, cont_ns, "ctr1")
    assert r.rc == 1 and r.json["code"] == 1
    r = run("bandwidth", "ADD", bw_conf(None, ingressRate=8000, ingressBurst=8000), host_ns, cont_ns,
            "ctr1")
    assert r.rc == 1 and "chained" in r.json["msg"]
