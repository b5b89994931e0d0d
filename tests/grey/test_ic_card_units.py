"""`[ic_cards]` reading, the TAC checks and the IC card field 48 sub-elements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.simulators.ic_card_templates import simulated_card_tac
from forecourt.switch.config import ConfigError, parse_config
from forecourt.switch.flows.table import flow_for
from forecourt.switch.grey.messages import MalformedIcMessage, read_request
from forecourt.switch.grey.tac import NoTacCheck, TacCheckTestDouble
from hypothesis import given
from hypothesis import strategies as st

from tests.grey.grey_switch import grey_doc


def _config(tmp_path: Path, **ic: Any) -> Any:
    doc = grey_doc(tmp_path)
    doc["ic_cards"] = ic
    return parse_config(doc, source="test")


def test_ic_cards_are_off_by_default_and_read_when_on(tmp_path: Path) -> None:
    assert not _config(tmp_path).ic_cards.enabled
    on = _config(tmp_path, enabled=True, acquirer="ledger", grey_record_max_age_s=3600.0)
    assert (on.ic_cards.acquirer, on.ic_cards.grey_record_max_age_s) == ("ledger", 3600.0)
    assert on.ic_cards.tac_check == "none"


@pytest.mark.parametrize(
    ("ic", "message"),
    [
        ({"enabled": True}, "ic_cards.acquirer: IC cards are enabled: name the ledger"),
        ({"acquirer": "bank"}, "ic_cards.acquirer: no ledger acquirer named 'bank'"),
        ({"tac_check": "issuer"}, "ic_cards.tac_check: must be one of none, test"),
        ({"grey_record_max_age_s": 1}, "ic_cards.grey_record_max_age_s: must be between 60"),
        ({"max_age": 1}, "max_age"),
    ],
)
def test_a_bad_ic_cards_key_names_itself(tmp_path: Path, ic: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, **ic)
    assert message in str(caught.value)


@given(
    pan=st.from_regex(r"\A7090[0-9]{12}\Z"),
    atc=st.integers(0, 0xFFFF),
    amount=st.integers(0, 10**9),
)
def test_the_test_double_verifies_the_simulated_cards_tac_and_nothing_else(
    pan: str, atc: int, amount: int
) -> None:
    tac = simulated_card_tac(pan, atc, amount, "T0000001")
    check = TacCheckTestDouble()
    assert check.verify(pan, atc, amount, "T0000001", tac)
    assert not check.verify(pan, atc, amount + 1, "T0000001", tac)
    assert not check.verify(pan, (atc + 1) % 0x10000, amount, "T0000001", tac)
    assert not check.verify(pan, atc, amount, "T0000002", tac)
    assert NoTacCheck().verify(pan, atc, amount, "T0000001", b"\0\0\0\0")


@given(atc=st.integers(0, 99_999), tac=st.binary(min_size=4, max_size=4))
def test_ic_card_sub_elements_round_trip(atc: int, tac: bytes) -> None:
    elements: dict[int, str | bytes] = {
        50: f"{atc:05d}", 51: tac, 52: "0302", 53: "C000000003000T0000001261201120000",
        54: "A", 55: "O",
    }  # fmt: skip
    assert decode_field48(encode_field48(elements)) == elements


def _request(**fields: str) -> Message:
    base = {"2": "7090001000000001", "11": "000001", "41": "T0000001", "24": "681",
            "4": "000000001000", "49": "978", "12": "261201120000"}  # fmt: skip
    return Message("1624", {**base, **fields})


def test_a_debit_message_needs_its_counter_tac_and_pump() -> None:
    full = encode_field48({50: "00007", 51: b"\1\2\3\4", 52: "0101"})
    request = read_request(_request(**{"48": full}), debit=True)
    assert (request.atc, request.tac, request.pump, request.nozzle) == (7, b"\1\2\3\4", "01", "01")
    for missing in (50, 51, 52):
        partial = {n: v for n, v in decode_field48(full).items() if n != missing}
        with pytest.raises(MalformedIcMessage, match=f"48-{missing}"):
            read_request(_request(**{"48": encode_field48(partial)}), debit=True)
    over = encode_field48({50: "65536", 51: b"\1\2\3\4", 52: "0101"})
    with pytest.raises(MalformedIcMessage, match="65535"):
        read_request(_request(**{"48": over}), debit=True)
    with pytest.raises(MalformedIcMessage, match="field 2"):
        read_request(Message("1604", {"11": "000001", "41": "T0000001"}), debit=False)
    with pytest.raises(DecodeError):
        decode_field48("00")


@pytest.mark.parametrize(
    ("mti", "code", "flow"),
    [
        ("1604", "680", "ic_card_check"),
        ("1624", "681", "grey_lock"),
        ("1625", "681", "grey_lock"),
        ("1624", "682", "grey_result"),
        ("1604", "683", "grey_unlock"),
        ("1604", "681", "administrative"),  # an advice's function code on a request
        ("1604", "689", "administrative"),
        ("0600", "680", "administrative"),  # 1987: no function code
    ],
)
def test_the_flow_table_routes_ic_card_messages_by_function_code(
    mti: str, code: str, flow: str
) -> None:
    assert flow_for(Message(mti, {"24": code, "11": "000001"})).rules.name == flow
