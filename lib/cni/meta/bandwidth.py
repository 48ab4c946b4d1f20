"""Traffic shaping of the bandwidth plugin: TBF on the host veth (ingress) and on an IFB fed by a
mirred redirect from the host veth's ingress qdisc (egress), as Go's plugins/meta/bandwidth."""
from __future__ import annotations

from cni.errors import CNIError, InvalidConfigError
from cni.nl.tc_defs import TC_H_INGRESS
from cni.nl.tc import handle, tbf_params
from cni.rollback import on_error

MAX_BURST_BYTES = 0xFFFFFFFF    # TBF's buffer is a u32 of bytes (Go: burst/8 < MaxUint32)
MAX_RATE_BITS = (1 << 64) - 1   # Go's uint64; in bytes/s it fits TCA_TBF_RATE64


def validate_rate_burst(rate: int, burst: int, what: str) -> None:
    if rate < 0 or burst < 0:
        raise InvalidConfigError("invalid config", f"{what} rate and burst must not be negative")
    if burst == 0 and rate != 0:
        raise InvalidConfigError("if rate is set, burst must also be set", what)
    if rate == 0 and burst != 0:
        raise InvalidConfigError("if burst is set, rate must also be set", what)
    if burst // 8 >= MAX_BURST_BYTES:
        raise InvalidConfigError("burst cannot be more than 4GB", f"{what}Burst={_short(burst)}")
    if rate > MAX_RATE_BITS:
        raise InvalidConfigError(f"invalid {what}Rate",
                                 f"{what}Rate={_short(rate)} bit/s is more than {MAX_RATE_BITS}")
    if rate >= 8 and burst:
        # the buffer (burst/rate in ticks) is a u32 that wraps, as in Go; at exactly 0 the
        # kernel refuses the qdisc (EINVAL): say which field instead
        if tbf_params(rate, burst)["buffer"] == 0:
            raise InvalidConfigError(f"invalid {what}Burst",
                                     f"{what}Burst={burst} bits at {what}Rate={rate} bit/s gives "
                                     "TBF an empty buffer (u32 ticks wrap to 0)")
    if rate and rate < 8:
        raise InvalidConfigError("invalid config", f"{what} rate {rate} bit/s is below 1 byte/s")


def _short(n: int) -> str:
    """n in digits, or its size when huge (str() of > 4300 digits raises on 3.11+)."""
    return str(n) if abs(n).bit_length() <= 96 else f"a {abs(n).bit_length()}-bit number"


def host_veth(host, cont, prev, ifname: str):
    """The host end (Link) of the container's veth; it must be listed in prevResult without a
    sandbox. `host` and `cont` are Rtnl handles of the two namespaces."""
    link = cont.link_lookup(ifname)
    if link is None or not link.link:
        raise CNIError(f"container interface {ifname} has no veth peer",
                       "bandwidth shapes a veth's host end")
    peer = host.link_lookup(link.link)
    if peer is None:
        raise CNIError(f"veth peer with index {link.link} is not in host ns", ifname)
    if not any(i.name == peer.name and not i.sandbox for i in prev.interfaces):
        raise CNIError("no veth peer of container interface found in host ns",
                       f"{peer.name} is not a host interface of prevResult")
    return peer


def add_tbf(h, ref, rate_bits: int, burst_bits: int) -> None:
    p = tbf_params(rate_bits, burst_bits)
    h.tbf_add(ref, rate=p["rate"], buffer=p["buffer"], limit=p["limit"])


def setup_egress(h, veth, ifb: str, rate_bits: int, burst_bits: int):
    """IFB (up, veth MTU, txqlen 0) + ingress qdisc + u32 redirect on the veth + TBF on the IFB.
    Returns the IFB Link."""
    dev = h.ifb_add(ifb, mtu=veth.mtu, txqlen=0)
    h.link_up(dev.index)
    h.ingress_add(veth.index)
    h.filter_add_u32_redirect(veth.index, dev.index, parent=handle(0xFFFF), prio=1,
                              classid=handle(1, 1))
    add_tbf(h, dev.index, rate_bits, burst_bits)
    return h.link_get(dev.index)


def teardown(h, ifb: str) -> None:
    h.link_del(ifb, missing_ok=True)


def check_tbf(h, ref, rate_bits: int, burst_bits: int, where: str) -> None:
    want = tbf_params(rate_bits, burst_bits)
    tbfs = [q for q in h.qdisc_list(ref) if q.kind == "tbf"]
    if not tbfs:
        raise CNIError("failed to find qdisc", f"no tbf on {where}")
    for q in tbfs:
        parms = q.options.get("TCA_TBF_PARMS") if q.options else None
        if not parms:
            raise CNIError("failed to read tbf parameters", where)
        rate = q.options.get("TCA_TBF_RATE64") or parms["rate"]
        for key, have in (("rate", rate), ("limit", parms["limit"]), ("buffer", parms["buffer"])):
            if have != want[key]:
                raise CNIError(f"{key} doesn't match", f"{where}: {have} != {want[key]}")


def check_redirect(h, veth, ifb) -> None:
    if not any(q.kind == "ingress" for q in h.qdisc_list(veth.index)):
        raise CNIError("ingress qdisc missing", veth.name)
    filters = [f for f in h.filter_list(veth.index) if f.kind == "u32"]
    if not filters:
        raise CNIError("redirect filter missing", f"no u32 filter on {veth.name} to {ifb.name}")


# --- UPDATE (our extension): rates changed in place, same qdiscs and handles ---------------

TBF_HANDLE = 0x10000          # 1:
INGRESS_HANDLE = 0xFFFF0000   # ffff:


def _tbf(h, ref):
    return next((q for q in h.qdisc_list(ref) if q.kind == "tbf" and q.handle == TBF_HANDLE), None)


def set_tbf(h, ref, rate_bits: int, burst_bits: int) -> None:
    """The TBF 1: of `ref` gets these numbers: `tc qdisc change` when it exists (its handle
    and queue stay), else it is added; already equal = nothing sent (idempotent)."""
    p = tbf_params(rate_bits, burst_bits)
    q = _tbf(h, ref)
    if q is None:
        h.tbf_add(ref, rate=p["rate"], buffer=p["buffer"], limit=p["limit"])
        return
    parms = q.options.get("TCA_TBF_PARMS") if q.options else None
    if parms and (q.options.get("TCA_TBF_RATE64") or parms["rate"]) == p["rate"] \
            and parms["buffer"] == p["buffer"] and parms["limit"] == p["limit"]:
        return
    h.tbf_change(ref, rate=p["rate"], buffer=p["buffer"], limit=p["limit"])


def update_ingress(h, veth, rate_bits: int, burst_bits: int) -> None:
    """Traffic to the container: the veth's TBF changed, added, or (rate 0) removed."""
    if rate_bits:
        set_tbf(h, veth.index, rate_bits, burst_bits)
    elif _tbf(h, veth.index) is not None:
        h.qdisc_del(veth.index, handle=TBF_HANDLE)


def update_egress(h, veth, ifb: str, rate_bits: int, burst_bits: int):
    """Traffic from the container: the IFB's TBF changed in place, or the IFB and redirect set
    up (first egress limit) or torn down (rate 0). Returns the IFB Link, or None."""
    dev = h.link_lookup(ifb)
    if not rate_bits:
        if dev is not None:
            teardown(h, ifb)
        if any(q.kind == "ingress" for q in h.qdisc_list(veth.index)):
            h.qdisc_del(veth.index, parent=TC_H_INGRESS, handle=INGRESS_HANDLE)
        return None
    if dev is None:
        with on_error() as undo:
            undo(teardown, h, ifb)
            undo(h.qdisc_del, veth.index, parent=TC_H_INGRESS, handle=INGRESS_HANDLE)
            return setup_egress(h, veth, ifb, rate_bits, burst_bits)
    set_tbf(h, dev.index, rate_bits, burst_bits)
    return dev
