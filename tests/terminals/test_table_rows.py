"""Which flow the table gives the terminal interfaces' messages, and what they need."""

from __future__ import annotations

from forecourt.codecs.message import Message
from forecourt.switch.flows import cashier, device_status, registration, unsupported
from forecourt.switch.flows.table import flow_for


def _m(mti: str, **fields: str) -> Message:
    return Message(mti=mti, fields={"11": "000001", "41": "T1", **fields})


def test_each_function_code_has_its_flow() -> None:
    assert flow_for(_m("1804", **{"24": "880"})) is cashier.SIGN_ON
    assert flow_for(_m("1804", **{"24": "881"})) is cashier.SIGN_OFF
    assert flow_for(_m("1804", **{"24": "882"})) is registration.FLOW
    assert flow_for(_m("1624", **{"24": "670"})) is device_status.FLOW


def test_neighbours_and_1987_stay_unsupported() -> None:
    assert flow_for(_m("1804", **{"24": "883"})) is unsupported.UNKNOWN
    assert flow_for(_m("1604", **{"24": "670"})) is unsupported.ADMINISTRATIVE  # not an advice
    assert flow_for(_m("1624", **{"24": "671"})) is unsupported.ADMINISTRATIVE
    assert flow_for(_m("0800", **{"70": "880"})) is unsupported.UNKNOWN


def test_only_the_registration_is_taken_unproven_from_a_pending_terminal() -> None:
    rules = registration.FLOW.rules
    assert rules.before_registration and not rules.needs_mac and not rules.mac_answer
    for flow in (cashier.SIGN_ON, cashier.SIGN_OFF, device_status.FLOW):
        assert not flow.rules.before_registration and flow.rules.needs_mac
        assert flow.rules.mac_answer
