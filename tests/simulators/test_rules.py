"""The host's rule engine: first match wins, delivery actions, originals applied once."""

from __future__ import annotations

import pytest
from forecourt.codecs.family import Family
from forecourt.codecs.fields import OriginalData
from forecourt.codecs.message import Message
from forecourt.simulators.rules import (
    Delay,
    HostLogic,
    Rule,
    RuleError,
    resolve_code,
)

from .conftest import FLEET_PAN, TEST_PAN


def request(
    mti: str = "1200",
    pan: str = TEST_PAN,
    amount: int = 1000,
    stan: str = "000001",
    processing: str = "000000",
    **extra: str,
) -> Message:
    fields = {
        "2": pan,
        "3": processing,
        "4": f"{amount:012d}",
        "11": stan,
        "41": "T0000001",
        "12": "261122101010",
    }
    fields.update(extra)
    return Message(mti, fields)


def test_first_match_wins_and_criteria_combine() -> None:
    logic = HostLogic(
        Family.ISO1993,
        [
            Rule("big", "decline", amount_min=50_000, code="insufficient_funds"),
            Rule("4761", "decline", pan_prefixes=("4761",), processing_codes=("01",)),
            Rule("4761 again", "approve", pan_prefixes=("4761",)),
            Rule("catch-all", "decline"),
        ],
    )
    assert logic.decide(request(amount=60_000)).code == "116"
    assert logic.decide(request(amount=60_000)).rule == "big"
    assert logic.decide(request(processing="010000")).rule == "4761"
    assert logic.decide(request()).rule == "4761 again"
    assert logic.decide(request()).code == "000"
    assert logic.decide(request(pan="5500000000000004")).code == "100"


def test_rules_without_mti_leave_reversals_and_network_alone() -> None:
    logic = HostLogic(Family.ISO1993, [Rule("no", "decline")])
    assert logic.decide(request("1420")).code == "400"
    assert logic.decide(Message("1804", {"11": "000001", "24": "831"})).code == "800"
    assert logic.decide(request("1220")).code == "000"
    named = HostLogic(Family.ISO1993, [Rule("drop reversals", "drop", mtis=("1420", "1421"))])
    assert named.decide(request("1420")).delivery == "drop"
    assert named.decide(request("1200")).delivery == "answer"


def test_1987_codes_and_literal_codes() -> None:
    logic = HostLogic(
        Family.ISO1987,
        [
            Rule("nsf", "decline", amount_min=5000, code="insufficient_funds"),
            Rule("lost", "decline", amount_min=4000, code="41"),
        ],
    )
    assert logic.decide(request("0200", amount=6000)).code == "51"
    assert logic.decide(request("0200", amount=4500)).code == "41"
    assert logic.decide(request("0200")).code == "00"
    assert logic.decide(request("0800")).code == "00"
    assert resolve_code("expired_card", Family.ISO1993) == "101"
    with pytest.raises(RuleError):
        resolve_code("116", Family.ISO1987)
    with pytest.raises(RuleError, match="unknown action 'partial'"):
        HostLogic(Family.ISO1993, [Rule("gone", "partial")])  # the switch's ledger does it


def test_fleet_cards_are_no_different_here_and_inquiries_find_no_account() -> None:
    """Fleet balances are the switch's ledger now: the host approves what its rules
    approve, in full, and has no balance to tell."""
    logic = HostLogic(Family.ISO1993, [Rule("all", "approve")])
    answer = logic.decide(request(pan=FLEET_PAN, amount=60_000))
    assert answer.code == "000" and answer.approval_code is not None
    inquiry = logic.decide(request("1100", pan=FLEET_PAN, amount=0, processing="310000"))
    assert inquiry.code == "114"
    assert logic.balance_inquiries == 1


def test_completion_and_reversal_are_applied_once() -> None:
    logic = HostLogic(Family.ISO1993, [])
    preauth = request("1100", amount=8000, stan="000010")
    assert logic.decide(preauth).code == "000"
    reference = OriginalData.of("1100", preauth.fields).encode()
    completion = request("1220", amount=3000, stan="000011", **{"56": reference})
    assert logic.decide(completion).code == "000"
    assert logic.decide(completion.with_fields({}, mti="1221")).code == "000"
    reversal = request(
        "1420", amount=3000, stan="000012",
        **{"56": OriginalData.of("1220", completion.fields).encode()},
    )  # fmt: skip
    assert logic.decide(reversal).code == "400"
    assert logic.decide(reversal.with_fields({}, mti="1421")).code == "400"
    assert (logic.completions_applied, logic.reversals_applied) == (1, 1)


def test_reversal_of_purchase_by_rrn() -> None:
    logic = HostLogic(Family.ISO1993, [])
    purchase = request(amount=4000, stan="000020")
    logic.decide(purchase)
    logic.remember_reference(purchase, {"37": "RRN000000001"})
    logic.decide(request("1420", amount=4000, stan="000021", **{"37": "RRN000000001"}))
    assert logic.reversals_applied == 1


def test_delivery_actions() -> None:
    logic = HostLogic(
        Family.ISO1993,
        [
            Rule("slow", "delay", amount_min=1, amount_max=1, delay=Delay(0.5, 0.5)),
            Rule("jitter", "delay", amount_min=2, amount_max=2, delay=Delay(0.1, 0.2)),
            Rule("twice", "twice", amount_min=3, amount_max=3),
            Rule("late", "late", amount_min=4, amount_max=4, delay=Delay(30, 30)),
            Rule("close", "close", amount_min=5, amount_max=5),
            Rule("drop", "drop", amount_min=6, amount_max=6),
        ],
        seed=7,
    )
    slow = logic.decide(request(amount=1))
    assert (slow.delivery, slow.delay_s, slow.code) == ("answer", 0.5, "000")
    assert 0.1 <= logic.decide(request(amount=2)).delay_s <= 0.2
    assert logic.decide(request(amount=3)).delivery == "twice"
    late = logic.decide(request(amount=4))
    assert (late.delivery, late.delay_s) == ("late", 30.0)
    assert logic.decide(request(amount=5)).delivery == "close"
    assert logic.decide(request(amount=6)).delivery == "drop"
