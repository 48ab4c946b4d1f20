"""One maintained lease: a thread that lives in the container netns, acquires, renews at T1,
rebinds at T2, brings the interface down at expiry, and sends DHCPRELEASE when told to stop.
A lease restored after a daemon restart is first reclaimed with an INIT-REBOOT request."""
from __future__ import annotations

import sys
import threading
import time

from cni.dhcp import client as C
from cni.dhcp import transport
from cni.errors import CNIError, TryAgainLaterError
from cni.netns import NetNS

BOUND, RENEWING, REBINDING, INIT = "bound", "renewing", "rebinding", "init"
REBOOTING = "rebooting"          # a lease taken over from the state file after a restart
_DONE = {RENEWING: "renewed", REBINDING: "rebound", INIT: "reacquired", REBOOTING: "reclaimed"}


def log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y/%m/%d %H:%M:%S')} {msg}\n")
    sys.stderr.flush()


class Settings:
    """Daemon-wide client settings (seconds)."""

    __slots__ = ("timeout", "resend_max", "resend_timeout", "broadcast")

    def __init__(self, *, timeout: float = 10.0, resend_max: float = C.RESEND_DELAY_MAX,
                 resend_timeout: float = C.RESEND_TIMEOUT, broadcast: bool = False):
        self.timeout, self.resend_max = timeout, resend_max
        self.resend_timeout, self.broadcast = resend_timeout, broadcast


class LinkOps:
    """Interface operations; replaced by fakes in unit tests."""
    exists = staticmethod(transport.link_exists)
    set_up = staticmethod(transport.set_link_up)

    @staticmethod
    def open_client(keeper: "Keeper"):
        t = transport.PacketTransport(keeper.ifname)
        return t, C.Client(t, t.mac, client_id=keeper.client_id, request=keeper.request,
                           provide=keeper.provide, timeout=keeper.settings.timeout,
                           broadcast=keeper.settings.broadcast,
                           should_stop=keeper.stop_event.is_set)


class Keeper:
    """Acquire and maintain the lease of one (container, network, interface)."""

    def __init__(self, client_id: bytes, netns: str | None, ifname: str, *,
                 request: list, provide: dict, settings: Settings,
                 ops=LinkOps, clock=time.monotonic, wait=None, container_id: str = "",
                 network: str = "", restored: C.Lease | None = None, on_change=None):
        self.client_id, self.netns, self.ifname = client_id, netns, ifname
        self.container_id, self.network = container_id, network
        self.restored = restored
        self.on_change = on_change or (lambda keeper: None)
        self.finished = False
        self.request, self.provide, self.settings = request, provide, settings
        self.name = client_id[1:].decode(errors="replace")
        self.ops, self.clock = ops, clock
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self._wait = wait or self._event_wait
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.lease: C.Lease | None = None
        self.state = INIT
        self.release_on_stop = True
        self.thread = threading.Thread(target=self._run, name=f"lease {self.name}", daemon=True)

    # -- public ---------------------------------------------------------------------------
    def start(self) -> "Keeper":
        self.thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> C.Lease:
        """The lease once acquired; TryAgainLaterError if not ready within `timeout` s."""
        if not self.ready.wait(timeout):
            raise TryAgainLaterError("no DHCP lease", f"{self.name}: not acquired within "
                                     f"{timeout:g}s")
        if self.error is not None:
            raise self.error
        assert self.lease is not None
        return self.lease

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.finished and self.error is None

    def nudge(self) -> None:
        self.wake.set()

    def stop(self, *, release: bool = True, timeout: float | None = None) -> None:
        self.release_on_stop = release
        self.stop_event.set()
        self.wake.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    # -- thread ---------------------------------------------------------------------------
    def _event_wait(self, seconds: float) -> bool:
        """Sleep until woken; True if stop was requested."""
        if seconds > 0:
            self.wake.wait(seconds)
        self.wake.clear()
        return self.stop_event.is_set()

    def _run(self) -> None:
        try:
            if self.netns:
                with NetNS.open(self.netns) as ns, ns.enter():
                    self._main()
            else:
                self._main()
        except CNIError as exc:
            self._fail(exc)
        except C.DHCPError as exc:
            self._fail(TryAgainLaterError("no DHCP lease", f"{self.name}: {exc}"))
        except OSError as exc:
            self._fail(CNIError("dhcp client failed", f"{self.name}: {exc}"))
        except Exception as exc:  # a lease thread must never die silently
            self._fail(CNIError("dhcp client failed", f"{self.name}: {type(exc).__name__}: {exc}"))
        finally:
            self.finished = True
            self.ready.set()
            self._changed()

    def _changed(self) -> None:
        try:
            self.on_change(self)
        except Exception as exc:  # persisting must never kill the lease thread
            log(f"{self.name}: saving lease state failed: {type(exc).__name__}: {exc}")

    def _fail(self, exc: CNIError) -> None:
        if self.ready.is_set():
            log(f"{self.name}: {exc}")
        else:
            self.error = exc

    def _main(self) -> None:
        if not self.ops.exists(self.ifname):
            raise CNIError(f"error looking up {self.ifname!r}", "link not found")
        self.ops.set_up(self.ifname)
        if self.restored is not None:
            self.lease, self.state = self.restored, REBOOTING
            log(f"{self.name}: reclaiming lease {self.lease.address} held before a restart")
        else:
            log(f"{self.name}: acquiring lease")
            self.lease = self._acquire(None, self.clock() + self.settings.resend_timeout)
            self.state = BOUND
            log(f"{self.name}: lease acquired: {self.lease.address}, expires in "
                f"{self.lease.lease_time}s")
            self._changed()
        self.ready.set()
        self._maintain()

    def _with_client(self, fn):
        transport, client = self.ops.open_client(self)
        try:
            return fn(client)
        finally:
            transport.close()

    def _retry(self, fn, deadline: float):
        return C.backoff_retry(fn, resend_max=self.settings.resend_max, deadline=deadline,
                               clock=self.clock, wait=self._stop_wait,
                               log=lambda m: log(f"{self.name}: {m}"))

    def _stop_wait(self, seconds: float) -> bool:
        if self._wait is self._event_wait:
            return self.stop_event.wait(seconds)
        return self._wait(seconds)

    def _acquire(self, requested, deadline: float) -> C.Lease:
        def attempt(client):
            def once(left):
                try:
                    return client.acquire(requested, timeout=min(self.settings.timeout, left))
                except C.NakError as exc:  # a NAK of our own offer: try again
                    raise C.DHCPError(str(exc)) from None
            return self._retry(once, deadline)
        return self._with_client(attempt)

    def _maintain(self) -> None:
        while not self.stop_event.is_set():
            if not self.ops.exists(self.ifname):
                log(f"{self.name}: interface {self.ifname} is gone, stopping lease maintenance")
                self.release_on_stop = False
                return
            lease, now = self.lease, self.clock()
            if self.state == BOUND:
                if now < lease.renew_at:
                    if self._wait(lease.renew_at - now):
                        break
                    continue
                log(f"{self.name}: renewing lease")
                self.state = RENEWING
            try:
                if self.state == REBOOTING:
                    limit = now + self.settings.resend_timeout
                    if now < lease.expire_at:
                        limit = min(limit, lease.expire_at)
                    self.lease = self._with_client(lambda c: self._retry(
                        lambda left: c.reboot(lease, timeout=min(self.settings.timeout, left)),
                        limit))
                elif self.state == RENEWING:
                    limit = min(lease.rebind_at, now + self.settings.resend_timeout)
                    self.lease = self._with_client(lambda c: self._retry(
                        lambda left: c.renew(lease, timeout=min(self.settings.timeout, left)),
                        limit))
                elif self.state == REBINDING:
                    limit = min(lease.expire_at, now + self.settings.resend_timeout)
                    self.lease = self._with_client(lambda c: self._retry(
                        lambda left: c.rebind(lease, timeout=min(self.settings.timeout, left)),
                        limit))
                else:
                    limit = now + self.settings.resend_timeout
                    if self.clock() < lease.expire_at:
                        limit = min(limit, lease.expire_at)
                    self.lease = self._acquire(lease.address, limit)
                    if self.lease.address != lease.address:
                        log(f"{self.name}: address changed from {lease.address} to "
                            f"{self.lease.address}")
                log(f"{self.name}: lease {_DONE[self.state]}: "
                    f"{self.lease.address}, expires in {self.lease.lease_time}s")
                self.state = BOUND
                self._changed()
            except C.Stopped:
                break
            except C.NakError as exc:
                log(f"{self.name}: {exc}; restarting acquisition")
                self.state = INIT
            except (C.DHCPError, OSError) as exc:
                log(f"{self.name}: {exc}")
                now = self.clock()
                if self.state == REBOOTING:      # RFC 2131 3.2: keep the unexpired lease
                    self.state = BOUND if now < lease.expire_at else INIT
                    log(f"{self.name}: no answer to INIT-REBOOT, "
                        + ("keeping the lease until its renewal time" if self.state == BOUND
                           else "the lease has expired: acquiring again"))
                    continue
                if now >= lease.expire_at:
                    log(f"{self.name}: lease expired, bringing interface {self.ifname} down")
                    try:
                        self.ops.set_up(self.ifname, False)
                    except OSError as e:
                        log(f"{self.name}: failed to bring {self.ifname} down: {e}")
                    self.release_on_stop = False
                    self.lease = None
                    return
                if self.state == RENEWING and now >= lease.rebind_at:
                    log(f"{self.name}: renewal time expired, rebinding")
                    self.state = REBINDING
        if self.release_on_stop and self.lease is not None:
            self._release()

    def _release(self) -> None:
        lease = self.lease
        log(f"{self.name}: releasing lease {lease.address}")
        try:
            self._with_client(lambda c: c.release(lease))
        except OSError as exc:
            log(f"{self.name}: failed to send DHCPRELEASE: {exc}")
