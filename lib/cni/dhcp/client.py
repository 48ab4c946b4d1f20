"""DHCPv4 client: one-shot exchanges, retry policy and the Lease record.

Everything here runs on the calling thread and in its network namespace: the daemon's lease
thread enters the container netns first. The packets travel over cni.dhcp.transport (an
AF_PACKET socket on the interface). Renew and release are unicast at layer 2 to the MAC the
last reply came from.
"""
from __future__ import annotations

import ipaddress
import random
import time

from cni.dhcp import packet as P
from cni.dhcp.transport import ANY, BROADCAST_MAC, LIMITED_BROADCAST

DEFAULT_LEASE_TIME = 3600

RESEND_FAST_DELAY = 2.0
RESEND_FAST_MAX = 4
RESEND_DELAY0 = 4.0
RESEND_DELAY_MAX = 62.0
RESEND_TIMEOUT = 208.0

SCOPE_LINK = 253   # RT_SCOPE_LINK (cni.nl.rtnl_defs, which the dhcp daemon does not carry)


class DHCPError(Exception):
    """A DHCP exchange did not produce a usable reply."""


class NakError(DHCPError):
    """The server answered DHCPNAK."""


class DHCPTimeout(DHCPError):
    """No acceptable reply within the per-request timeout."""


class Stopped(DHCPError):
    """The caller asked the operation to stop."""


# ---- lease ------------------------------------------------------------------------------

class Lease:
    """A bound lease: the ACK, the server's L2 address and the timers (monotonic seconds)."""

    __slots__ = ("ack", "opts", "server_mac", "bound_at", "lease_time", "t1", "t2")

    def __init__(self, ack: P.Packet, server_mac: bytes, bound_at: float):
        self.ack, self.server_mac, self.bound_at = ack, server_mac, bound_at
        self.opts = P.merged_options(ack)
        self.lease_time, self.t1, self.t2 = lease_timers(self.opts)

    @property
    def address(self) -> ipaddress.IPv4Address:
        return self.ack.yiaddr

    @property
    def server_id(self) -> ipaddress.IPv4Address:
        return P.get_ip(self.opts, P.OPT_SERVER_ID) or self.ack.siaddr

    @property
    def renew_at(self) -> float:
        return self.bound_at + self.t1

    @property
    def rebind_at(self) -> float:
        return self.bound_at + self.t2

    @property
    def expire_at(self) -> float:
        return self.bound_at + self.lease_time

    def interface(self) -> ipaddress.IPv4Interface:
        mask = P.get_ip(self.opts, P.OPT_SUBNET_MASK)
        if mask is None:
            raise DHCPError("DHCP option subnet mask not found in DHCPACK")
        return ipaddress.IPv4Interface(f"{self.address}/{mask}")

    def gateway(self):
        routers = P.get_ips(self.opts, P.OPT_ROUTER)
        return routers[0] if routers else None

    def routes(self) -> list:
        """[(dst, gw, scope|None)]: option 121 alone if present, else 33 + default route."""
        raw = self.opts.get(P.OPT_CLASSLESS_ROUTES)
        if raw:
            try:
                cl = P.decode_classless_routes(raw)
            except P.DHCPDecodeError:
                cl = []
            if cl:
                return [(d, g, SCOPE_LINK if int(g) == 0 else None) for d, g in cl]
        out = []
        raw = self.opts.get(P.OPT_STATIC_ROUTES)
        if raw:
            try:
                out = [(d, g, None) for d, g in P.decode_static_routes(raw)]
            except P.DHCPDecodeError:
                out = []
        gw = self.gateway()
        if gw is not None:
            out.append((ipaddress.IPv4Network("0.0.0.0/0"), gw, None))
        return out

    def dns(self) -> dict:
        d: dict = {}
        ns = P.get_ips(self.opts, P.OPT_DNS)
        if ns:
            d["nameservers"] = [str(a) for a in ns]
        dom = P.get_str(self.opts, P.OPT_DOMAIN_NAME)
        if dom:
            d["domain"] = dom
        raw = self.opts.get(P.OPT_DOMAIN_SEARCH)
        if raw:
            try:
                d["search"] = P.decode_domain_search(raw)
            except P.DHCPDecodeError:
                pass
        return d


def lease_timers(opts: dict) -> tuple[int, int, int]:
    """(lease, T1, T2) seconds with RFC 2131 4.4.5 defaults (T1 = 0.5, T2 = 0.875 lease;
    Go uses 0.85) when absent or inconsistent."""
    lease = P.get_u32(opts, P.OPT_LEASE_TIME)
    if lease is None:
        lease = DEFAULT_LEASE_TIME
    t2 = P.get_u32(opts, P.OPT_T2)
    if t2 is None or t2 > lease:
        t2 = lease * 85 // 100
    t1 = P.get_u32(opts, P.OPT_T1)
    if t1 is None or t1 > t2:
        t1 = lease // 2
    return lease, t1, t2


# ---- client -----------------------------------------------------------------------------

class Client:
    """Builds and exchanges DHCP messages for one (interface, client id)."""

    def __init__(self, transport, mac: bytes, *, client_id: bytes, request: list | None = None,
                 provide: dict | None = None, timeout: float = 10.0, broadcast: bool = False,
                 clock=time.monotonic, rng=None, should_stop=None):
        self.transport, self.mac = transport, bytes(mac)
        self.client_id = client_id
        self.request = list(request if request is not None else [P.OPT_ROUTER, P.OPT_SUBNET_MASK])
        self.provide = dict(provide or {})
        self.timeout, self.broadcast = timeout, broadcast
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.should_stop = should_stop or (lambda: False)

    def _packet(self, mtype: int, *, xid: int, ciaddr=ANY, extra=(), full: bool = True) -> P.Packet:
        """A request; `provide` values (client id included) override the defaults."""
        opts = [(P.OPT_MESSAGE_TYPE, bytes((mtype,)))] + list(extra)
        opts.append((P.OPT_CLIENT_ID, self.provide.get(P.OPT_CLIENT_ID, self.client_id)))
        if full:
            skip = (P.OPT_CLIENT_ID, P.OPT_MESSAGE_TYPE, P.OPT_PARAM_REQUEST)
            opts += [(c, v) for c, v in self.provide.items() if c not in skip]
            if self.request:
                opts.append((P.OPT_PARAM_REQUEST, bytes(self.request)))
        return P.Packet(P.BOOTREQUEST, xid, ciaddr=ciaddr, chaddr=self.mac, options=opts,
                        flags=P.FLAG_BROADCAST if self.broadcast else 0)

    def _exchange(self, pkt: P.Packet, want: int, *, src=ANY, dst=LIMITED_BROADCAST,
                  dst_mac: bytes = BROADCAST_MAC, timeout: float | None = None):
        """Send pkt; return (reply, source MAC) of the first matching `want` reply."""
        self.transport.send(P.encode(pkt), src=src, dst=dst, dst_mac=dst_mac)
        deadline = self.clock() + (self.timeout if timeout is None else timeout)
        while True:
            if self.should_stop():
                raise Stopped("stopped")
            left = min(deadline - self.clock(), 1.0)
            if left <= 0:
                raise DHCPTimeout(f"no {P.MESSAGE_NAMES[want]} within {self.timeout:g}s")
            got = self.transport.recv(left)
            if got is None:
                continue
            try:
                reply = P.decode(got[0])
            except P.DHCPDecodeError:
                continue
            if (reply.op != P.BOOTREPLY or reply.xid != pkt.xid
                    or reply.chaddr[:6] != self.mac[:6]):
                continue
            mtype = reply.message_type
            if mtype == P.NAK:
                msg = P.get_str(P.merged_options(reply), P.OPT_MESSAGE) or ""
                raise NakError(f"DHCPNAK from server{': ' + msg if msg else ''}")
            if mtype == want:
                return reply, got[1]

    def _xid(self) -> int:
        return self.rng.getrandbits(32)

    def acquire(self, requested=None, *, timeout: float | None = None) -> Lease:
        """DISCOVER -> OFFER -> REQUEST -> ACK."""
        xid = self._xid()
        extra = [(P.OPT_REQUESTED_IP, ipaddress.IPv4Address(requested).packed)] if requested else []
        offer, _ = self._exchange(self._packet(P.DISCOVER, xid=xid, extra=extra), P.OFFER,
                                  timeout=timeout)
        server = P.get_ip(P.merged_options(offer), P.OPT_SERVER_ID)
        if server is None:
            raise DHCPError("DHCPOFFER without server identifier")
        extra = [(P.OPT_REQUESTED_IP, offer.yiaddr.packed), (P.OPT_SERVER_ID, server.packed)]
        ack, mac = self._exchange(self._packet(P.REQUEST, xid=xid, extra=extra), P.ACK,
                                  timeout=timeout)
        return Lease(ack, mac, self.clock())

    def renew(self, lease: Lease, *, timeout: float | None = None) -> Lease:
        """RENEWING: unicast to the server, ciaddr set, no requested-ip/server-id (4.3.6)."""
        pkt = self._packet(P.REQUEST, xid=self._xid(), ciaddr=lease.address)
        ack, mac = self._exchange(pkt, P.ACK, src=lease.address, dst=lease.server_id,
                                  dst_mac=lease.server_mac, timeout=timeout)
        return Lease(ack, mac, self.clock())

    def reboot(self, lease: Lease, *, timeout: float | None = None) -> Lease:
        """INIT-REBOOT (4.3.2): broadcast REQUEST for the address held before a restart;
        requested-ip set, ciaddr zero, no server identifier."""
        extra = [(P.OPT_REQUESTED_IP, lease.address.packed)]
        ack, mac = self._exchange(self._packet(P.REQUEST, xid=self._xid(), extra=extra), P.ACK,
                                  timeout=timeout)
        return Lease(ack, mac, self.clock())

    def rebind(self, lease: Lease, *, timeout: float | None = None) -> Lease:
        """REBINDING: like renew, but broadcast."""
        pkt = self._packet(P.REQUEST, xid=self._xid(), ciaddr=lease.address)
        ack, mac = self._exchange(pkt, P.ACK, src=lease.address, timeout=timeout)
        return Lease(ack, mac, self.clock())

    def release(self, lease: Lease) -> None:
        """DHCPRELEASE, unicast to the server that granted the lease; no reply expected."""
        pkt = self._packet(P.RELEASE, xid=self._xid(), ciaddr=lease.address,
                           extra=[(P.OPT_SERVER_ID, lease.server_id.packed)], full=False)
        pkt.flags = 0
        self.transport.send(P.encode(pkt), src=lease.address, dst=lease.server_id,
                            dst_mac=lease.server_mac)


def backoff_retry(attempt, *, resend_max: float = RESEND_DELAY_MAX, deadline: float,
                  clock=time.monotonic, wait=time.sleep, rng=None, log=None):
    """Call attempt(timeout_left) until it returns. After a DHCPError: 4 fast retries at
    2 s +-1 s, then 4 s doubling up to resend_max, +-1 s jitter. NakError and Stopped end
    the loop at once; passing `deadline` raises DHCPTimeout with the last error.
    `wait(seconds)` returns True to abort (a stop event's wait)."""
    rng = rng or random.SystemRandom()
    base, fast = RESEND_DELAY0, RESEND_FAST_MAX
    while True:
        left = deadline - clock()
        if left <= 0:
            raise DHCPTimeout("no more tries")
        try:
            return attempt(left)
        except (NakError, Stopped):
            raise
        except DHCPError as exc:
            last = exc
        except OSError as exc:
            last = DHCPError(f"{exc.strerror or exc}")
        if fast:
            delay = RESEND_FAST_DELAY + rng.uniform(-1.0, 1.0)
            fast -= 1
        else:
            delay = min(base, resend_max) + rng.uniform(-1.0, 1.0)
            base *= 2
        if clock() + delay >= deadline:
            raise DHCPTimeout(f"no more tries: {last}") from last
        if log:
            log(f"{last}; retrying in {delay:.1f}s")
        if wait(delay):
            raise Stopped("stopped")


def client_id_for(container_id: str, net_name: str, ifname: str) -> bytes:
    """Option 61 value: type 0 + '<containerID>/<netName>/<ifName>' (at most 254 bytes)."""
    return b"\0" + f"{container_id}/{net_name}/{ifname}".encode()[:254]

