"""The fast encode/decode path gives exactly pyiso8583's result, or steps aside."""

from __future__ import annotations

import random

import pytest
from forecourt.codecs import dialect as D
from forecourt.codecs.errors import DecodeError, EncodeError
from forecourt.codecs.message import Message


def _without_fast(fn, d, arg):  # type: ignore[no-untyped-def]
    fast = d.fast
    object.__setattr__(d, "fast", None)
    try:
        return fn(d, arg)
    finally:
        object.__setattr__(d, "fast", fast)


def _result(fn, *args):  # type: ignore[no-untyped-def]
    try:
        out = fn(*args)
    except (DecodeError, EncodeError) as exc:
        return ("error", type(exc).__name__, exc.field)
    if isinstance(out, Message):
        return ("ok", out.mti, dict(out.fields), out.raw)
    return ("ok", out)


def test_bcd_dialect_has_no_fast_path() -> None:
    assert D.get_dialect("iso87bcd").fast is None
    assert D.get_dialect("iso87ascii", "hex").fast is None


@pytest.mark.parametrize("name", ["ifsf", "iso87ascii"])
def test_fast_path_equals_pyiso8583(name: str) -> None:
    d = D.get_dialect(name)
    assert d.fast is not None
    rnd = random.Random(name)
    specs = {k: f for k, f in d.spec.items() if k.isdigit() and k != "1"}
    numbers = sorted(specs, key=int)
    for _ in range(3000):
        fields = {}
        for key in rnd.sample(numbers, rnd.randint(1, 12)):
            f = specs[key]
            size = f["max_len"] if f["len_type"] == 0 else rnd.randint(0, min(f["max_len"], 30))
            if rnd.random() < 0.05:
                size = max(0, size + rnd.choice([-1, 1]))
            if f["data_enc"] == "b":
                value = "".join(rnd.choice("0123456789ABCDEFab") for _ in range(2 * size))
                value += "Z" if rnd.random() < 0.03 else ""
            else:
                value = "".join(rnd.choice("0123456789 ABCxyz-") for _ in range(size))
                value += "é" if rnd.random() < 0.03 else ""
            fields[key] = value
        msg = Message(rnd.choice(["1200", "1210", "0200", "0210"]), fields)
        encoded = _result(D.encode, d, msg)
        assert encoded == _result(_without_fast, D.encode, d, msg)
        if encoded[0] != "ok":
            continue
        raw = encoded[1]
        variants = [raw, raw[:-1], raw + b"0"]
        for _ in range(3):
            mutated = bytearray(raw)
            mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
            variants.append(bytes(mutated))
        for data in variants:
            assert _result(D.decode, d, data) == _result(_without_fast, D.decode, d, data)
