"""The split rules as plain functions: which refusal, and the amount due in field 54."""

from __future__ import annotations

from typing import Any

from forecourt.codecs.amounts import AVAILABLE_BALANCE, AdditionalAmount, decode_field54
from forecourt.codecs.amounts import encode_field54 as f54
from forecourt.codecs.message import Message
from forecourt.codecs.split import SplitGroup
from forecourt.switch.journal import SplitGroupState
from forecourt.switch.split_tender import (
    OUT_OF_ORDER,
    OVER_PAY,
    SALE_REVERSED,
    TOTAL_MISMATCH,
    refusal,
    tender_rank,
    with_amount_due,
)

GROUP = SplitGroup("000000001", 10000)


def state(claimed: int = 0, rank: int = 0, total: int = 10000, reversed_: bool = False) -> Any:
    return SplitGroupState("T1", "000000001", total, claimed, claimed, rank, reversed_, 0.0)


def test_tender_order() -> None:
    assert [tender_rank(t) for t in ("fleet", "consumer", "bank")] == [0, 1, 2]


def test_which_refusal() -> None:
    assert refusal(GROUP, None, 10000, 0) is None
    assert refusal(GROUP, None, 10001, 0) is OVER_PAY
    assert refusal(GROUP, state(6000), 4000, 2) is None
    assert refusal(GROUP, state(6000), 4001, 2) is OVER_PAY
    assert refusal(GROUP, state(1000, rank=2), 1000, 0) is OUT_OF_ORDER
    assert refusal(GROUP, state(1000, rank=1), 1000, 1) is None  # a second consumer leg
    assert refusal(GROUP, state(total=9000), 1, 2) is TOTAL_MISMATCH
    assert refusal(GROUP, state(reversed_=True), 1, 2) is SALE_REVERSED


def test_the_amount_due_joins_a_balance_the_authoriser_sent() -> None:
    balance = AdditionalAmount("00", AVAILABLE_BALANCE, "978", 700)
    answer = Message("1210", {"39": "002", "54": f54([balance])})
    sets = decode_field54(with_amount_due(answer, 2500, "978").fields["54"])
    assert sets == (balance, AdditionalAmount("00", "04", "978", 2500))


def test_an_undecodable_54_is_replaced_and_a_currency_is_always_three_digits() -> None:
    answer = Message("1210", {"39": "000", "54": "garbage"})
    (due,) = decode_field54(with_amount_due(answer, 0, None).fields["54"])
    assert due == AdditionalAmount("00", "04", "000", 0)
