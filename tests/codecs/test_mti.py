"""MTI arithmetic and the matching key."""

from __future__ import annotations

import pytest
from forecourt.codecs.errors import MTIError
from forecourt.codecs.message import Message
from forecourt.codecs.mti import (
    MTIFunction,
    first_mti,
    is_advice,
    is_repeat,
    is_request,
    is_response,
    matching_key,
    mti_class,
    mti_function,
    repeat_mti,
    response_mti,
)


@pytest.mark.parametrize(
    ("request_mti", "answer"),
    [
        ("1200", "1210"),
        ("1100", "1110"),
        ("1220", "1230"),
        ("1221", "1230"),
        ("1420", "1430"),
        ("1421", "1430"),
        ("1520", "1530"),
        ("1521", "1530"),
        ("1804", "1814"),
        ("1805", "1814"),
        ("1820", "1830"),
        ("0200", "0210"),
        ("0100", "0110"),
        ("0220", "0230"),
        ("0221", "0230"),
        ("0400", "0410"),
        ("0401", "0410"),
        ("0420", "0430"),
        ("0500", "0510"),
        ("0800", "0810"),
    ],
)
def test_response_mti(request_mti: str, answer: str) -> None:
    assert response_mti(request_mti) == answer
    assert is_request(request_mti) and not is_response(request_mti)
    assert is_response(answer) and not is_request(answer)
    assert mti_class(request_mti) == mti_class(answer)


@pytest.mark.parametrize(
    ("original", "repeat"),
    [("1220", "1221"), ("1420", "1421"), ("0220", "0221"), ("0400", "0401"), ("1804", "1805")],
)
def test_repeats(original: str, repeat: str) -> None:
    assert repeat_mti(original) == repeat
    assert repeat_mti(repeat) == repeat
    assert first_mti(repeat) == original
    assert first_mti(original) == original
    assert is_repeat(repeat) and not is_repeat(original)


def test_class_and_function() -> None:
    assert [mti_class(m) for m in ("1200", "1210", "1220", "1221", "1804")] == list("22228")
    assert mti_function("1200") is MTIFunction.REQUEST
    assert mti_function("1230") is MTIFunction.ADVICE_RESPONSE
    assert mti_function("1644") is MTIFunction.NOTIFICATION
    assert is_advice("1221") and is_advice("0220") and not is_advice("1200")


@pytest.mark.parametrize("bad", ["", "120", "12000", "12a0", "１２００", None])
def test_malformed_mti(bad: str) -> None:
    with pytest.raises(MTIError):
        mti_class(bad)


def test_no_response_to_a_response() -> None:
    with pytest.raises(MTIError):
        response_mti("1210")
    with pytest.raises(MTIError):
        repeat_mti("1430")
    with pytest.raises(MTIError):
        mti_function("1280")


def test_matching_key() -> None:
    request = Message("1221", {"41": "OPT00007", "11": "000125", "4": "1"})
    answer = Message("1230", {"41": "OPT00007", "11": "000125"})
    assert matching_key(request) == matching_key(answer) == ("2", "OPT00007", "000125")
    assert matching_key(Message("1804", {})) == ("8", "", "")
