"""static: fixed addresses from the config. Keys under `ipam`: addresses
[{address CIDR, gateway?}], routes, dns.

Precedence (the Go plugin's): CNI_ARGS IP=a/n[,b/m] is appended to
`addresses` and CNI_ARGS GATEWAY=g[,h] sets the gateway of every address whose
subnet contains it; then args.cni.ips replaces the list, and the `ips`
capability (runtimeConfig.ips) replaces it again. DEL has nothing to undo.
"""
from __future__ import annotations

from cni import skel, version
from cni.cniargs import load_cni_args
from cni.config import lookup
from cni.convert import parse_routes
from cni.errors import CNIError, DecodingError, InvalidConfigError, InvalidEnvError
from cni.ipam import IpamConf
from cni.ipam.ranges import format_ip, parse_cidr, parse_ip
from cni.types import DNS, IPConfig, Result


class Config(IpamConf):
    __slots__ = ()


class Address:
    __slots__ = ("text", "v6", "ip", "plen", "gateway")

    def __init__(self, text: str, field: str, exc_type=InvalidConfigError):
        try:
            self.v6, self.ip, self.plen = parse_cidr(text.strip() if isinstance(text, str) else text)
        except ValueError:
            raise exc_type("invalid static address",
                           f"{field}: expected CIDR notation, got {text!r}") from None
        self.text = text.strip()
        self.gateway = None  # (v6, int)

    def contains(self, v6: bool, n: int) -> bool:
        bits = 128 if self.v6 else 32
        shift = bits - self.plen
        return v6 == self.v6 and (n >> shift) == (self.ip >> shift)

    def ip_str(self) -> str:
        return format_ip(self.v6, self.ip)

    def address_str(self) -> str:
        return f"{self.ip_str()}/{self.plen}"

    def gateway_str(self) -> str:
        if self.gateway is None:
            return ""
        return format_ip(*self.gateway)


def _cidr_list(v, field: str) -> list:
    if not isinstance(v, list):
        raise InvalidConfigError("invalid static config", f"{field} must be a list of CIDR strings")
    return [Address(s, f"{field}[{i}]") for i, s in enumerate(v)]


def load_addresses(conf: Config, cni_args: str) -> list:
    ipam = conf.ipam
    addrs = []
    cfg = lookup(ipam, "addresses")
    if cfg is not None:
        if not isinstance(cfg, list):
            raise InvalidConfigError("invalid static config", "ipam.addresses must be a list")
        for i, d in enumerate(cfg):
            field = f"ipam.addresses[{i}]"
            if not isinstance(d, dict):
                raise InvalidConfigError("invalid static config", f"{field} must be an object")
            a = Address(lookup(d, "address"), f"{field}.address")
            gw = lookup(d, "gateway")
            if gw not in (None, ""):
                try:
                    a.gateway = parse_ip(gw)
                except ValueError:
                    raise InvalidConfigError("invalid static config",
                                             f"{field}.gateway: {gw!r} is not an IP address") from None
            addrs.append(a)
    if cni_args:
        env = load_cni_args(cni_args, ("IP", "GATEWAY"))
        if env.get("IP"):
            addrs += [Address(s, "CNI_ARGS IP", InvalidEnvError) for s in env["IP"].split(",")]
        if env.get("GATEWAY"):
            for s in env["GATEWAY"].split(","):
                try:
                    gw = parse_ip(s.strip())
                except ValueError:
                    raise InvalidEnvError("invalid CNI_ARGS",
                                          f"GATEWAY: {s!r} is not an IP address") from None
                for a in addrs:
                    if a.contains(*gw):
                        a.gateway = gw
    ips = conf.cni_arg("ips")
    if ips:
        addrs = _cidr_list(ips, "args.cni.ips")
    rc = conf.runtime_config if isinstance(conf.runtime_config, dict) else {}
    if rc.get("ips"):
        addrs = _cidr_list(rc["ips"], "runtimeConfig.ips")
    n6 = sum(1 for a in addrs if a.v6)
    if n6 > 1 or len(addrs) - n6 > 1:
        if not version.ge(conf.cni_version or "0.1.0", "0.3.0"):
            raise InvalidConfigError("invalid static config",
                                     f"CNI version {conf.cni_version} does not support more than "
                                     "1 address per family")
    return addrs


def _routes(conf: Config) -> list:
    try:
        return parse_routes(lookup(conf.ipam, "routes"), "ipam.routes")
    except DecodingError as exc:
        raise InvalidConfigError("invalid static config", exc.details or exc.msg) from None


def _dns(conf: Config):
    try:
        return DNS.from_dict(lookup(conf.ipam, "dns"))
    except DecodingError as exc:
        raise InvalidConfigError("invalid static config", exc.details or exc.msg) from None


def add(args: skel.Args, conf: Config):
    addrs = load_addresses(conf, args.args)
    return Result(conf.cni_version or "0.1.0",
                  ips=[IPConfig(a.address_str(), a.gateway_str() or None) for a in addrs],
                  routes=_routes(conf), dns=_dns(conf))


def delete(args: skel.Args, conf: Config) -> None:
    return None  # nothing was allocated


def check(args: skel.Args, conf: Config) -> None:
    addrs = load_addresses(conf, args.args)
    prev = conf.prev_result
    if prev is None:
        raise InvalidConfigError("required prevResult missing", "CHECK needs the ADD result")
    got = []
    for ipc in prev.ips:
        ip = ipc.address_str.split("/")[0]
        gw = parse_ip(ipc.gateway_str) if ipc.gateway_str else None
        got.append((parse_ip(ip), gw))
    for a in addrs:
        for ip, gw in got:
            if ip == (a.v6, a.ip):
                if a.gateway is None or a.gateway == gw:
                    break
                raise CNIError("static: failed to match address",
                               f"{a.ip_str()} on {args.ifname}: gateway differs")
        else:
            raise CNIError("static: address missing from prevResult",
                           f"{a.address_str()} on {args.ifname}")


PLUGIN = skel.Plugin("static", Config, add=add, delete=delete, check=check)
main = PLUGIN.main

if __name__ == "__main__":
    main()
