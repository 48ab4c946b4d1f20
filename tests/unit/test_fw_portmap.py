"""portmap: mapping normalization, backend resolution, golden iptables/nft rules, batching."""
from __future__ import annotations

import ipaddress

import pytest

from cni.errors import InvalidConfigError
from cni.fw import portmap, portmap_config
from test_fw_masq import fake  # noqa: F401  (fixture)

V4 = ipaddress.ip_interface("10.88.0.2/24")
V6 = ipaddress.ip_interface("fd00:88::2/64")
DN = "CNI-DN-70a29d9dc18bc4d652ea5"
RAW = [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "TCP"},
       {"hostPort": 8081, "containerPort": 81, "protocol": "udp", "hostIP": ""},
       {"hostPort": 9090, "containerPort": 90, "protocol": "tcp", "hostIP": "192.168.1.1"},
       {"hostPort": 9091, "containerPort": 91, "protocol": "tcp", "hostIP": "fd00::1"}]
DC = '-m comment --comment "dnat name: \\"mynet\\" id: \\"abc123\\""'


def test_normalize():
    m = portmap_config.normalize_mappings(RAW)
    assert m[0] == {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": None}
    assert m[1]["hostIP"] is None
    assert m[2]["hostIP"] == ipaddress.ip_address("192.168.1.1")
    assert portmap_config.normalize_mappings(None) == []
    assert portmap_config.normalize_mappings([{"hostPort": 1, "containerPort": 2}])[0]["protocol"] == "tcp"


@pytest.mark.parametrize("bad,field", [
    ({"hostPort": 0, "containerPort": 80}, "hostPort"),
    ({"hostPort": 65536, "containerPort": 80}, "hostPort"),
    ({"hostPort": 80, "containerPort": "80"}, "containerPort"),
    ({"hostPort": 80, "containerPort": True}, "containerPort"),
    ({"hostPort": 80, "containerPort": 80, "protocol": "icmp"}, "protocol"),
    ({"hostPort": 80, "containerPort": 80, "hostIP": "nope"}, "hostIP"),
])
def test_normalize_errors(bad, field):
    with pytest.raises(InvalidConfigError) as ei:
        portmap_config.normalize_mappings([bad])
    assert field in ei.value.msg and field in ei.value.details


def test_resolve_backend():
    assert portmap_config.resolve_backend("nftables", conditions_v4=["ip saddr 1.2.3.4"]) == "nftables"
    assert portmap_config.resolve_backend("iptables", conditions_v4=["!", "-s", "1.2.3.4"]) == "iptables"
    with pytest.raises(InvalidConfigError):
        portmap_config.resolve_backend("nftables", external_setmark_chain="KUBE-MARK-MASQ")
    with pytest.raises(InvalidConfigError):
        portmap_config.resolve_backend("iptables", conditions_v6=["ip6 saddr ::1"])
    with pytest.raises(InvalidConfigError):
        portmap_config.resolve_backend("iptables", mark_masq_bit=32)
    with pytest.raises(InvalidConfigError):
        portmap_config.resolve_backend("iptables", mark_masq_bit=1, external_setmark_chain="X")


# Golden: iptables-save of the Go portmap plugin 1.1.1 with RAW on a dual-stack container.
def test_ipt_rules_golden_v4():
    m = portmap_config.normalize_mappings(RAW)
    assert portmap.ipt_chain_rules(m, V4) == [
        "-s 10.88.0.0/24 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        "-s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80",
        "-s 10.88.0.0/24 -p udp -m udp --dport 8081 -j CNI-HOSTPORT-SETMARK",
        "-s 127.0.0.1/32 -p udp -m udp --dport 8081 -j CNI-HOSTPORT-SETMARK",
        "-p udp -m udp --dport 8081 -j DNAT --to-destination 10.88.0.2:81",
        "-s 10.88.0.0/24 -d 192.168.1.1/32 -p tcp -m tcp --dport 9090 -j CNI-HOSTPORT-SETMARK",
        "-s 127.0.0.1/32 -d 192.168.1.1/32 -p tcp -m tcp --dport 9090 -j CNI-HOSTPORT-SETMARK",
        "-d 192.168.1.1/32 -p tcp -m tcp --dport 9090 -j DNAT --to-destination 10.88.0.2:90"]
    assert portmap.ipt_entry_rules("mynet", "abc123", m) == [
        f"-p tcp {DC} -m multiport --dports 8080,9090,9091",
        f"-p udp {DC} -m multiport --dports 8081"]


def test_ipt_rules_golden_v6():
    m = portmap_config.normalize_mappings(RAW)
    assert portmap.ipt_chain_rules(m, V6) == [
        "-s fd00:88::/64 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        "-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:88::2]:80",
        "-s fd00:88::/64 -p udp -m udp --dport 8081 -j CNI-HOSTPORT-SETMARK",
        "-p udp -m udp --dport 8081 -j DNAT --to-destination [fd00:88::2]:81",
        "-s fd00:88::/64 -d fd00::1/128 -p tcp -m tcp --dport 9091 -j CNI-HOSTPORT-SETMARK",
        "-d fd00::1/128 -p tcp -m tcp --dport 9091 -j DNAT --to-destination [fd00:88::2]:91"]


def test_ipt_variants():
    m = portmap_config.normalize_mappings([{"hostPort": 53, "containerPort": 5353, "protocol": "sctp",
                                     "hostIP": "0.0.0.0"}])
    assert portmap.ipt_chain_rules(m, V4, masq_all=True, setmark="KUBE-MARK-MASQ") == [
        "-p sctp -m sctp --dport 53 -j KUBE-MARK-MASQ",
        "-p sctp -m sctp --dport 53 -j DNAT --to-destination 10.88.0.2:5353"]
    assert portmap.ipt_chain_rules(m, V4, snat=False) == [
        "-p sctp -m sctp --dport 53 -j DNAT --to-destination 10.88.0.2:5353"]
    many = portmap_config.normalize_mappings([{"hostPort": 1000 + i, "containerPort": 80} for i in range(17)])
    rules = portmap.ipt_entry_rules("n", "c", many, ["!", "-s", "10.0.0.0/8", "-m", "comment", "--comment", "a b"])
    assert len(rules) == 2
    assert rules[0].split("--dports ")[1].startswith(",".join(str(1000 + i) for i in range(15)) + " ! -s 10.0.0.0/8")
    assert rules[0].endswith('--comment "a b"')
    assert rules[1].split("--dports ")[1].startswith("1015,1016 ")
    long = portmap.ipt_entry_rules("n" * 300, "c", many[:1])[0]
    assert '.." -m multiport' in long and len(long.split('--comment "')[1].split('" -m multiport')[0].replace('\\"', '"')) == 255


def test_add_batches_one_restore_per_family(fake):  # noqa: F811
    f = fake()
    portmap.add("mynet", "abc123", portmap_config.normalize_mappings(RAW), [V4, V6], backend="iptables")
    assert f.names() == ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]
    text = f.inputs("iptables-restore")[0].splitlines()
    assert text[0] == "*nat" and text[-1] == "COMMIT"
    assert text[1:12] == [
        "-N CNI-HOSTPORT-SETMARK",
        '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000',
        "-N CNI-HOSTPORT-MASQ",
        "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
        '-I POSTROUTING 1 -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
        "-N CNI-HOSTPORT-DNAT",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        f"-N {DN}",
        f"-A {DN} -s 10.88.0.0/24 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        f"-A {DN} -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK"]
    assert text[-3:-1] == [f"-A CNI-HOSTPORT-DNAT -p tcp {DC} -m multiport --dports 8080,9090,9091 -j {DN}",
                           f"-A CNI-HOSTPORT-DNAT -p udp {DC} -m multiport --dports 8081 -j {DN}"]


def test_add_mark_bit_and_external_chain(fake):  # noqa: F811
    f = fake()
    m = portmap_config.normalize_mappings(RAW[:1])
    portmap.add("mynet", "abc123", m, [V4], backend="iptables", mark_masq_bit=0)
    assert "--set-xmark 0x1/0x1" in f.inputs("iptables-restore")[0]
    f.calls.clear()
    portmap.add("mynet", "abc123", m, [V4], backend="iptables", external_setmark_chain="KUBE-MARK-MASQ")
    text = f.inputs("iptables-restore")[0]
    assert "CNI-HOSTPORT-SETMARK" not in text and "CNI-HOSTPORT-MASQ" not in text and "-j KUBE-MARK-MASQ" in text


def test_delete_sweeps_all_jumps(fake):  # noqa: F811
    save = (f"*nat\n:PREROUTING ACCEPT [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n:{DN} - [0:0]\n"
            f"-A CNI-HOSTPORT-DNAT -p tcp {DC} -m multiport --dports 8080 -m foo --bar -j {DN}\n"
            f"-A {DN} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80\nCOMMIT\n")
    f = fake(saves={("iptables-save", "nat"): save})
    portmap.delete("mynet", "abc123", backend="iptables")
    # DEL cleans what either backend could have written: the nft tables are looked at too
    assert f.names() == ["nft", "nft", "iptables-save", "iptables-restore", "ip6tables-save"]
    assert f.inputs("iptables-restore")[0] == (
        f"*nat\n-D CNI-HOSTPORT-DNAT -p tcp {DC} -m multiport --dports 8080 -m foo --bar -j {DN}\n"
        f"-F {DN}\n-X {DN}\nCOMMIT\n")


NFT4 = [
    'add table ip cni_hostport { comment "CNI portmap plugin" ; }',
    "add chain ip cni_hostport hostports",
    "add chain ip cni_hostport hostip_hostports",
    "add chain ip cni_hostport hostports_all",
    "flush chain ip cni_hostport hostports_all",
    "add rule ip cni_hostport hostports_all jump hostip_hostports",
    "add rule ip cni_hostport hostports_all jump hostports",
    "add chain ip cni_hostport prerouting { type nat hook prerouting priority -100 ; }",
    "flush chain ip cni_hostport prerouting",
    "add rule ip cni_hostport prerouting fib daddr type local jump hostports_all",
    "add chain ip cni_hostport output { type nat hook output priority -100 ; }",
    "flush chain ip cni_hostport output",
    "add rule ip cni_hostport output fib daddr type local jump hostports_all",
    "add chain ip cni_hostport masquerading { type nat hook postrouting priority 100 ; }",
    'add rule ip cni_hostport hostports tcp dport 8080 dnat to 10.88.0.2:80 comment "abc123"',
    'add rule ip cni_hostport hostports udp dport 8081 dnat to 10.88.0.2:81 comment "abc123"',
    'add rule ip cni_hostport hostports ip daddr 192.168.1.1 tcp dport 9090 dnat to 10.88.0.2:90 comment "abc123"',
    'add rule ip cni_hostport masquerading ip saddr 10.88.0.2 ip daddr 10.88.0.2 masquerade comment "abc123"',
    'add rule ip cni_hostport masquerading ip saddr 127.0.0.1 ip daddr 10.88.0.2 masquerade comment "abc123"',
]


def test_nft_lines_golden():
    m = portmap_config.normalize_mappings(RAW)
    assert portmap.nft_lines("abc123", m, V4) == NFT4
    v6 = portmap.nft_lines("abc123", m, V6, masq_all=True, conditions=["ip6 saddr != ::1"])
    assert "add rule ip6 cni_hostport prerouting ip6 saddr != ::1 fib daddr type local jump hostports_all" in v6
    assert 'add rule ip6 cni_hostport hostports ip6 daddr fd00::1 tcp dport 9091 dnat to [fd00:88::2]:91 comment "abc123"' in v6
    assert v6[-1] == 'add rule ip6 cni_hostport masquerading ip6 saddr ::/0 ip6 daddr fd00:88::2 masquerade comment "abc123"'
    assert not any("9090" in line for line in v6)
    nosnat = portmap.nft_lines("abc123", m, V4, snat=False)
    assert not any("masquerad" in line for line in nosnat)


def test_nft_add_delete_exec_counts(fake):  # noqa: F811
    rules = {"nftables": [
        {"rule": {"family": "ip", "table": "cni_hostport", "chain": "hostports", "handle": 4, "comment": "abc123"}},
        {"rule": {"family": "ip", "table": "cni_hostport", "chain": "hostports", "handle": 5, "comment": "other"}},
        {"rule": {"family": "ip", "table": "cni_hostport", "chain": "masquerading", "handle": 9, "comment": "abc123"}},
        {"rule": {"family": "ip", "table": "cni_hostport", "chain": "masquerading", "handle": 10, "comment": "abc123"}}]}
    f = fake(nft_lists={"table ip cni_hostport": rules})
    portmap.add("mynet", "abc123", portmap_config.normalize_mappings(RAW), [V4, V6], backend="nftables")
    assert [c[1][:2] for c in f.calls] == [["-j", "list"], ["-f", "-"]] * 2
    v4 = f.inputs("nft")[1].splitlines()
    assert v4[14:17] == ["delete rule ip cni_hostport hostports handle 4",
                         "delete rule ip cni_hostport masquerading handle 9",
                         "delete rule ip cni_hostport masquerading handle 10"]
    f.calls.clear()
    portmap.delete("mynet", "abc123", backend="nftables")   # and the iptables side as well
    assert [c[1][:2] for c in f.calls] == [["-j", "list"], ["-f", "-"], ["-j", "list"],
                                           ["-t", "nat"], ["-t", "nat"]]
    f.calls.clear()
    portmap.check("mynet", "abc123", portmap_config.normalize_mappings(RAW[:1]), [V4], backend="nftables")
    with pytest.raises(portmap.PortmapCheckError):
        portmap.check("mynet", "abc123", portmap_config.normalize_mappings(RAW[:2]), [V4], backend="nftables")


def test_gc_iptables(fake):  # noqa: F811
    dead = portmap.dn_chain("mynet", "dead")
    dc = DC.replace("abc123", "dead")
    save = (f"*nat\n:CNI-HOSTPORT-DNAT - [0:0]\n:{DN} - [0:0]\n:{dead} - [0:0]\n"
            f"-A CNI-HOSTPORT-DNAT -p tcp {DC} -m multiport --dports 8080 -j {DN}\n"
            f"-A CNI-HOSTPORT-DNAT -p tcp {dc} -m multiport --dports 8081 -j {dead}\nCOMMIT\n")
    f = fake(saves={("iptables-save", "nat"): save}, available=("iptables-save", "iptables-restore"))
    portmap.gc("mynet", ["abc123"])
    assert f.inputs("iptables-restore") == [
        f"*nat\n-D CNI-HOSTPORT-DNAT -p tcp {dc} -m multiport --dports 8081 -j {dead}\n-F {dead}\n-X {dead}\nCOMMIT\n"]
