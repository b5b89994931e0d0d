"""PINs in the simulators: the host checks field 52 under its ZPK against a rule's
PIN (over real sockets); a script's `pin` is validated without being quoted."""

from __future__ import annotations

from typing import Any

import pytest
from forecourt.keys.crypto import Algorithm, generate_key
from forecourt.keys.pin import PinKey, encrypt_pin_block
from forecourt.simulators._toml import SimConfigError
from forecourt.simulators.acquirer import parse_acquirer_config
from forecourt.simulators.client import HostConnection
from forecourt.simulators.rules import Rule
from forecourt.simulators.script import Send, parse_script

from .test_acquirer import StartHost, connect, purchase

PIN_PAN = "4761739001010036"
ZPK = generate_key(Algorithm.TDES2)


def _block(pin: str, key: bytes = ZPK, algorithm: Algorithm = Algorithm.TDES2) -> str:
    return encrypt_pin_block(key, algorithm, pin, PIN_PAN).hex().upper()


async def _code(conn: HostConnection, stan: str, pin_block: str | None, mti: str = "1200") -> str:
    request = purchase(1000, stan, pan=PIN_PAN, mti=mti)
    if mti.startswith("0"):  # 1987: local time hhmmss, date MMDD
        request = request.with_fields({12: "101010", 13: "1122"})
    if pin_block is not None:
        request = request.with_fields({52: pin_block})
    await conn.send(request)
    return (await conn.receive()).get(39) or ""


@pytest.mark.parametrize("dialect", ["ifsf", "iso87ascii"])
async def test_host_checks_the_pin_under_its_zpk(start_host: StartHost, dialect: str) -> None:
    rules = [Rule("PIN card", "approve", pan_prefixes=(PIN_PAN,), pin="1234")]
    sim = await start_host(rules, dialect=dialect, zpk=PinKey(ZPK, Algorithm.TDES2))
    conn = await connect(sim)
    ok, wrong = ("000", "117") if dialect == "ifsf" else ("00", "55")
    mti = "1200" if dialect == "ifsf" else "0200"
    assert await _code(conn, "000001", _block("1234"), mti) == ok
    assert await _code(conn, "000002", _block("1243"), mti) == wrong
    assert await _code(conn, "000003", None, mti) == wrong  # no PIN at all
    other_key = _block("1234", generate_key(Algorithm.TDES2))  # e.g. still under the TPK
    assert await _code(conn, "000004", other_key, mti) == wrong
    assert await _code(conn, "000005", "00" * 8, mti) == wrong
    await conn.aclose()


async def test_host_without_zpk_declines_pin_cards(start_host: StartHost) -> None:
    sim = await start_host([Rule("PIN card", "approve", pan_prefixes=(PIN_PAN,), pin="1234")])
    conn = await connect(sim)
    assert await _code(conn, "000001", _block("1234")) == "117"
    await conn.aclose()


def test_config_reads_zpk_and_rule_pin() -> None:
    key = generate_key(Algorithm.AES128)
    doc = {
        "listen": {"dialect": "ifsf"},
        "pin": {"zpk": key.hex(), "algorithm": "aes"},
        "rules": [{"name": "p", "action": "approve", "pin": "123456"}],
    }
    config = parse_acquirer_config(doc)
    assert config.zpk is not None and config.zpk.algorithm is Algorithm.AES128
    assert config.rules[0].pin == "123456"
    assert "123456" not in repr(config.rules[0])
    with pytest.raises(SimConfigError) as e:
        parse_acquirer_config({**doc, "rules": [{"action": "approve", "pin": "12a45"}]})
    assert "12a45" not in str(e.value)
    with pytest.raises(SimConfigError):
        parse_acquirer_config({**doc, "pin": {"zpk": "00" * 20}})


def _script(pin: str) -> dict[str, Any]:
    step = {"send": "purchase", "pin": pin}
    return {"terminal": {"terminal_id": "T1"}, "cases": [{"name": "c", "steps": [step]}]}


def test_script_pin_is_checked_and_never_quoted() -> None:
    step = parse_script(_script("2468")).cases[0].steps[0]
    assert isinstance(step, Send) and step.pin == "2468"
    assert "2468" not in repr(step)
    with pytest.raises(SimConfigError) as e:
        parse_script(_script("24x8"))
    assert "24x8" not in str(e.value)
