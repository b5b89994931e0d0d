"""Response/action code tables and the mapping between 1993 and 1987."""

from __future__ import annotations

import pytest
from forecourt.codecs.action_codes import (
    Outcome,
    code_for,
    is_approved,
    outcome_of,
    to_1987,
    to_1993,
)
from forecourt.codecs.family import Family

TABLE = [
    (Outcome.APPROVED, "000", "00"),
    (Outcome.PARTIAL, "002", "10"),
    (Outcome.DECLINED, "100", "05"),
    (Outcome.INSUFFICIENT_FUNDS, "116", "51"),
    (Outcome.UNKNOWN_TERMINAL, "109", "03"),
    (Outcome.FORMAT_ERROR, "904", "30"),
    (Outcome.SYSTEM_MALFUNCTION, "909", "96"),
    (Outcome.ISSUER_TIMEOUT, "911", "91"),
    (Outcome.ISSUER_UNAVAILABLE, "912", "92"),
    (Outcome.DUPLICATE, "913", "94"),
    (Outcome.ORIGINAL_NOT_FOUND, "914", "25"),
    (Outcome.MAC_INCORRECT, "916", "A0"),
    (Outcome.MAC_KEY_SYNC, "917", "A0"),
    (Outcome.REVERSAL_ACCEPTED, "400", "00"),
    (Outcome.NETWORK_ACCEPTED, "800", "00"),
    (Outcome.FUNCTION_NOT_SUPPORTED, "115", "40"),
    (Outcome.NOT_SIGNED_ON, "120", "58"),
    (Outcome.INVALID_TRANSACTION, "902", "12"),
    (Outcome.INVALID_AMOUNT, "110", "13"),  # a split-tender leg over-paying its sale
]


@pytest.mark.parametrize(("outcome", "c93", "c87"), TABLE)
def test_table(outcome: Outcome, c93: str, c87: str) -> None:
    assert code_for(outcome, Family.ISO1993) == c93
    assert code_for(outcome, Family.ISO1987) == c87
    assert outcome_of(c93, Family.ISO1993) is outcome
    assert to_1987(c93) == c87


def test_every_outcome_has_codes() -> None:
    assert {row[0] for row in TABLE} == set(Outcome)


def test_1987_codes_shared_by_two_outcomes_read_back_as_the_common_one() -> None:
    assert outcome_of("A0", Family.ISO1987) is Outcome.MAC_INCORRECT
    assert outcome_of("00", Family.ISO1987) is Outcome.APPROVED
    assert to_1993("A0") == "916"


def test_to_1993_takes_the_message_class_into_account() -> None:
    assert to_1993("00") == "000"
    assert to_1993("00", "0410") == "400"
    assert to_1993("00", "1430") == "400"
    assert to_1993("00", "0810") == "800"
    assert to_1993("05", "0410") == "100"


def test_precise_declines_survive_translation() -> None:
    assert to_1987("101") == "54"  # expired card
    assert to_1993("55") == "117"  # incorrect PIN
    assert to_1987("999") == "96"  # unknown 9xx: system error
    assert to_1987("183") == "05"  # unknown decline


@pytest.mark.parametrize(
    ("code", "family", "approved"),
    [
        ("000", "1993", True),
        ("001", "1993", True),
        ("002", "1993", True),
        ("400", "1993", True),
        ("800", "1993", True),
        ("100", "1993", False),
        ("911", "1993", False),
        ("", "1993", False),
        ("xyz", "1993", False),
        ("00", "1987", True),
        ("08", "1987", True),
        ("10", "1987", True),
        ("05", "1987", False),
        ("A0", "1987", False),
        ("??", "1987", False),
    ],
)
def test_is_approved(code: str, family: str, approved: bool) -> None:
    assert is_approved(code, Family(family)) is approved
    assert is_approved(code, family) is approved  # a plain str still works


def test_unknown_family() -> None:
    for call in (
        lambda: code_for(Outcome.APPROVED, "2003"),
        lambda: outcome_of("00", "2003"),
        lambda: is_approved("00", "2003"),
    ):
        with pytest.raises(ValueError, match="family must be '1993' or '1987', not '2003'"):
            call()
