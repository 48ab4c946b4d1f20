"""cni.std.json agrees with the stdlib json module (on both the _json and pure paths);
its Go mode writes the bytes of Go's encoding/json.Marshal."""
from __future__ import annotations

import json

import pytest

from cni.std import json as jsonx

DOCS = ['{}', '[]', '{"a": [1, 2.5, -3e2, true, false, null, "x\\u00e9\\n\\"q\\"\\ud83d\\ude00"]}',
        ' {"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","mtu":1500}]} ',
        '"just a string"', '0', '-0.0', '123456789012345678901234567890', '{"\\/": "/"}']
BAD = ['', ' ', '{', '{"a":}', '[1,]', '{"a":1,}', 'nul', 'NaN', 'Infinity', '01', '1.', '.5',
       '"\x01"', '"\\x"', '{"a" 1}', '[1 2]', '{} {}', '\ufeff{}', '"\\u12"']


@pytest.fixture(params=["c", "pure"])
def codec(request, monkeypatch):
    if request.param == "pure":
        monkeypatch.setattr(jsonx, "_scan", None)
    else:                                   # the C scanner for every size
        monkeypatch.setattr(jsonx, "SMALL", -1)
        assert jsonx._c_scanner() is not None
    return jsonx


@pytest.mark.parametrize("doc", DOCS)
def test_loads_matches_stdlib(codec, doc):
    assert codec.loads(doc) == json.loads(doc)
    assert codec.loads(doc.encode()) == json.loads(doc)


@pytest.mark.parametrize("doc", BAD)
def test_loads_rejects(codec, doc):
    with pytest.raises(ValueError):
        codec.loads(doc)


def test_deep_nesting_rejected(codec):
    with pytest.raises(ValueError):
        codec.loads("[" * 100000 + "]" * 100000)


@pytest.mark.parametrize("obj", [
    {}, [], {"a": [1, 2.5, True, False, None, "é\n\"\\\x01😀"]}, {"n": {"m": [[], {}]}}, "s", 7,
])
@pytest.mark.parametrize("indent", [None, 4])
def test_dumps_matches_stdlib(obj, indent):
    expect = json.dumps(obj, indent=indent) if indent else json.dumps(obj, separators=(",", ":"))
    assert jsonx.dumps(obj, indent=indent) == expect


def test_quote_matches_both_stdlib_encoders():
    from json import encoder
    strings = [chr(c) for c in range(0x110)] + ["", "plain-ascii_text 1.2", "a\"b", "\\x", "\ud800",
                                                 "x\udcffy", "😀", "é\n\t", "~\x7f", "a" * 5000]
    for s in strings:
        assert jsonx.quote(s) == encoder.py_encode_basestring_ascii(s), repr(s)
        if encoder.c_encode_basestring_ascii is not None:
            assert jsonx.quote(s) == encoder.c_encode_basestring_ascii(s), repr(s)


def test_dumps_rejects():
    for bad in (float("nan"), object(), {1: set()}):
        with pytest.raises((ValueError, TypeError)):
            jsonx.dumps(bad)


# (document, offset of the end or of the first bad character)
TRUNCATED = [('{', 1), ('{"a": 1', 7), ('{"a": "x', 8), ('{"a": [1,', 9), ('[1,2', 4),
             ('{"a": tr', 8), ('"a\\', 3), ('["a\\u12', 7),
             ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"ty', 53)]
INVALID = [('{"a" 1}', "'1' at offset 5"), ('["a\x01"]', "'\\x01' at offset 3"),
           ('{"a":1,}', "'}' at offset 7"),
           ('{"a":1} x', "'x' after top-level value at offset 8")]


@pytest.fixture
def no_json_decoder(monkeypatch):
    """As in a plugin: `json` was never imported (the test module imports it)."""
    import sys
    for name in ("json", "json.decoder", "json.scanner"):
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.parametrize("doc,offset", TRUNCATED)
def test_truncated_gives_offset(codec, no_json_decoder, doc, offset):
    with pytest.raises(ValueError) as ei:
        codec.loads(doc.encode())
    assert str(ei.value) == f"unexpected end of JSON input at offset {offset}"


@pytest.mark.parametrize("doc,where", INVALID)
def test_invalid_names_character_and_offset(codec, no_json_decoder, doc, where):
    with pytest.raises(ValueError) as ei:
        codec.loads(doc)
    assert str(ei.value) == f"invalid character {where}"


# Go mode: the bytes encoding/json.Marshal writes for an interface{} decoded from JSON
# (map keys sorted by UTF-8 bytes, HTML characters and U+2028/9 escaped, float64 numbers).
GO = [
    ({"b": 1.0, "a": [True, None, 2.5, 10**6]}, '{"a":[true,null,2.5,1000000],"b":1}'),
    ({"é": 1, "z": 2, "Z": 3}, '{"Z":3,"z":2,"é":1}'),
    ("<a&b>\u2028\u2029", '"\\u003ca\\u0026b\\u003e\\u2028\\u2029"'),
    ("é😀\x01\x7f", '"é😀\\u0001\x7f"'),
    ("\ud800", '"\ufffd"'),
    ([1e21, 1e-7, 123456789.5, -0.0, 2**53], '[1e+21,1e-07,123456789.5,0,9007199254740992]'),
    ({}, "{}"), ([], "[]"),
]


@pytest.mark.parametrize("obj,want", GO)
def test_dumps_go_mode(obj, want):
    assert jsonx.dumps(obj, go=True) == want


def test_go_mode_keeps_order_on_request_and_agrees_with_stdlib_on_ascii():
    obj = {"b": [1, "x"], "a": {"d": None, "c": True}}
    assert jsonx.dumps(obj, go=True, sort_keys=False) == '{"b":[1,"x"],"a":{"d":null,"c":true}}'
    # for plain ASCII and integral numbers, Go's bytes are the stdlib's sorted compact form
    assert jsonx.dumps(obj, go=True) == json.dumps(obj, sort_keys=True, separators=(",", ":"))
    assert jsonx.quote("a\"b", go=True) == jsonx.quote("a\"b") == json.dumps("a\"b")


def test_go_mode_rejects_non_finite():
    with pytest.raises(ValueError):
        jsonx.dumps([float("inf")], go=True)


@pytest.mark.parametrize("doc", DOCS + ['{"a": 1, "a": 2, "b": {"c": [], "c": {}}}'])
def test_pairs_hook_matches_stdlib(doc):
    assert jsonx.loads(doc, pairs_hook=list) == json.loads(doc, object_pairs_hook=list)
