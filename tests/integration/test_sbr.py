"""sbr through the exec protocol after our bridge: rules, tables and moved routes; fixed table;
static gateways; addSourceHints; DEL, also with the netns gone."""
from __future__ import annotations

import pytest

from chain_helpers import chained, container_ip, ok, run

pytestmark = pytest.mark.root


def rules(cont):
    return [r for r in cont.ipj("rule", "show") if r.get("src") not in (None, "all")]


def routes(cont, table):
    return cont.ipj("route", "show", "table", str(table))


def test_sbr_auto_tables(attached, host_ns, cont_ns):
    ip = container_ip(attached)
    conf = chained(attached, {"type": "sbr"})
    assert ok(run("sbr", "ADD", conf, host_ns, cont_ns, "ctr1")) == attached
    rs = rules(cont_ns)
    assert [(r["src"], r["table"]) for r in rs] == [(ip, "100")]
    t = {(r["dst"], r.get("gateway")) for r in routes(cont_ns, 100)}
    assert ("default", "10.91.0.1") in t and ("10.91.0.0/24", None) in t
    assert [r for r in routes(cont_ns, "main") if r.get("dev") == "eth0"] == []   # moved out of main
    ok(run("sbr", "CHECK", conf, host_ns, cont_ns, "ctr1"))
    # traffic from the address still leaves through table 100
    got = cont_ns.ipj("route", "get", "192.0.2.1", "from", ip)[0]
    assert got["gateway"] == "10.91.0.1" and got["dev"] == "eth0"
    ok(run("sbr", "DEL", conf, host_ns, cont_ns, "ctr1"))
    assert rules(cont_ns) == []
    ok(run("sbr", "DEL", conf, host_ns, cont_ns, "ctr1"))


def test_sbr_fixed_table_and_gateways(attached, host_ns, cont_ns):
    ip = container_ip(attached)
    conf = chained(attached, {"type": "sbr", "table": 4242})
    ok(run("sbr", "ADD", conf, host_ns, cont_ns, "ctr1"))
    assert [(r["src"], r["table"]) for r in rules(cont_ns)] == [(ip, "4242")]
    assert any(r.get("dev") == "eth0" for r in routes(cont_ns, "main"))            # routes untouched
    ok(run("sbr", "DEL", conf, host_ns, cont_ns, "ctr1"))
    assert rules(cont_ns) == []
    # a static gateway overrides prevResult's, and tables >= 100 already in use are skipped
    cont_ns.ip("rule", "add", "from", "192.0.2.9", "table", "100")
    conf = chained(attached, {"type": "sbr", "gateways": ["10.91.0.254"], "addSourceHints": True})
    ok(run("sbr", "ADD", conf, host_ns, cont_ns, "ctr1"))
    assert ("101", ip) in {(r["table"], r["src"]) for r in rules(cont_ns)}
    t101 = routes(cont_ns, 101)
    assert ("default", "10.91.0.254") in {(r["dst"], r.get("gateway")) for r in t101}
    main = [r for r in routes(cont_ns, "main") if r.get("dev") == "eth0"]
    assert [(r["dst"], r.get("prefsrc")) for r in main] == [("10.91.0.0/24", ip)]   # hint kept
    ok(run("sbr", "DEL", conf, host_ns, cont_ns, "ctr1"))
    assert [r["src"] for r in rules(cont_ns)] == ["192.0.2.9"]


def test_sbr_errors_and_missing_netns(attached, host_ns, cont_ns):
    bad = chained(attached, {"type": "sbr", "gateways": ["10.0.0.1", "10.0.0.2"]})
    r = run("sbr", "ADD", bad, host_ns, cont_ns, "ctr1")
    assert r.rc == 1 and "multiple IPv4" in r.json["msg"]
    r = run("sbr", "ADD", chained(None, {"type": "sbr"}), host_ns, cont_ns, "ctr1")
    assert r.rc == 1 and "chained" in r.json["msg"]
    ok(run("sbr", "DEL", chained(None, {"type": "sbr"}), host_ns, None, "ctr1",
           netns="/run/netns/cnit-gone-00000000"))
    ok(run("sbr", "DEL", chained(None, {"type": "sbr"}), host_ns, None, "ctr1", netns=""))
