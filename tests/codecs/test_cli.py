"""`forecourt codec decode|encode`."""

from __future__ import annotations

import json

import pytest
from forecourt.switch.cli import main

from .test_known_messages import BCD87_0200, IFSF_1100, IFSF_1200

TPDU = "6000010002"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["codec", *argv])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_decode_masks_and_hides(capsys: pytest.CaptureFixture[str]) -> None:
    framed = (len(IFSF_1200).to_bytes(2, "big") + IFSF_1200).hex()
    code, out, err = _run(capsys, "decode", "--dialect", "ifsf", "--framing", "2b", framed)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["mti"] == "1200"
    fields = doc["fields"]
    assert fields["35"] == "<24 characters>"
    assert fields["52"] == "<8 bytes>"
    assert fields["64"] == "<8 bytes>"
    assert fields["4"] == "000000004217"
    assert "4761739001010010" not in out and "7390010100" not in out
    assert list(fields) == sorted(fields, key=int)


def test_decode_shows_the_masked_pan_and_field_48(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "encode",
        "--dialect",
        "iso87ascii",
        '{"mti":"0200","fields":{"2":"4761739001010010"}}',
    )
    assert code == 0
    code, out, _ = _run(capsys, "decode", "--dialect", "iso87ascii", out.strip())
    assert json.loads(out)["fields"] == {"2": "476173******0010"}
    code, out, _ = _run(capsys, "decode", "--dialect", "ifsf", IFSF_1100.hex())
    assert json.loads(out)["fields"]["48"] == {"3": "EN", "38": "1"}


def test_decode_with_tpdu(capsys: pytest.CaptureFixture[str]) -> None:
    body = bytes.fromhex(TPDU) + BCD87_0200
    framed = (len(body).to_bytes(2, "big") + body).hex()
    code, out, err = _run(
        capsys, "decode", "--dialect", "iso87bcd", "--framing", "2b", "--tpdu", framed
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["tpdu"] == TPDU
    assert doc["fields"]["35"] == "<23 characters>"


def test_encode_round_trips_through_decode(capsys: pytest.CaptureFixture[str]) -> None:
    request = {"mti": "0800", "fields": {"7": "1121060000", "11": "000001", "70": "001"}}
    code, out, err = _run(
        capsys,
        "encode",
        "--dialect",
        "iso87bcd",
        "--framing",
        "4a",
        "--tpdu",
        TPDU,
        json.dumps(request),
    )
    assert code == 0, err
    wire = bytes.fromhex(out.strip())
    assert wire[:4] == b"%04d" % (len(wire) - 4)
    assert wire[4:9] == bytes.fromhex(TPDU)
    code, out, err = _run(
        capsys, "decode", "--dialect", "iso87bcd", "--framing", "4a", "--tpdu", wire.hex()
    )
    assert code == 0, err
    assert json.loads(out)["fields"] == request["fields"]


@pytest.mark.parametrize(
    "argv",
    [
        ["decode", "--dialect", "ifsf", "zz"],
        ["decode", "--dialect", "ifsf", "31323030"],  # MTI without a bitmap
        ["decode", "--dialect", "ifsf", "--framing", "2b", "0010aa"],  # incomplete frame
        ["decode", "--dialect", "ifsf", "--framing", "2b", "0001aa0001bb"],  # two frames
        ["decode", "--dialect", "nope", "00"],
        ["decode", "--dialect", "iso87bcd", "--bitmap", "hex", "00"],
        ["encode", "--dialect", "ifsf", "{"],
        ["encode", "--dialect", "ifsf", "[]"],
        ["encode", "--dialect", "ifsf", '{"mti": "1200", "fields": {"3": 1}}'],
        ["encode", "--dialect", "ifsf", '{"mti": "1200", "fields": {"3": "1"}}'],
        ["encode", "--dialect", "ifsf", "--tpdu", "60", '{"mti": "1200", "fields": {}}'],
        ["bogus"],
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
