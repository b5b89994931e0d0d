"""MTI arithmetic: class, function and origin digits of the 4-digit message type.

Digit 1 is the version (0 = 1987, 1 = 1993), digit 2 the class (1 authorisation,
2 financial, 4 reversal, 5 reconciliation, 8 network management), digit 3 the
function (0 request, 1 request response, 2 advice, 3 advice response,
4 notification, 5 notification acknowledgement) and digit 4 the origin
(0 acquirer, 1 acquirer repeat, 2 issuer, 3 issuer repeat, 4 other, 5 other repeat).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, NamedTuple

from .errors import MTIError

if TYPE_CHECKING:
    from .message import Message

__all__ = [
    "MTIFunction",
    "RequestKey",
    "first_mti",
    "is_advice",
    "is_repeat",
    "is_request",
    "is_response",
    "matching_key",
    "mti_class",
    "mti_function",
    "repeat_mti",
    "response_mti",
]

_DIGITS = frozenset("0123456789")


class MTIFunction(enum.Enum):
    """What the message does in its exchange (MTI digit 3)."""

    REQUEST = "0"
    REQUEST_RESPONSE = "1"
    ADVICE = "2"
    ADVICE_RESPONSE = "3"
    NOTIFICATION = "4"
    NOTIFICATION_ACK = "5"
    INSTRUCTION = "6"
    INSTRUCTION_ACK = "7"


def _check(mti: str) -> str:
    if not isinstance(mti, str) or len(mti) != 4 or not _DIGITS.issuperset(mti):
        raise MTIError(str(mti), "not four decimal digits")
    return mti


def mti_class(mti: str) -> str:
    """The message class digit: "2" for 1200/1210/1220/1221, "8" for 1804."""
    return _check(mti)[1]


def mti_function(mti: str) -> MTIFunction:
    """Request, response, advice... (MTI digit 3); 8 and 9 are reserved and refused."""
    digit = _check(mti)[2]
    try:
        return MTIFunction(digit)
    except ValueError:
        raise MTIError(mti, "reserved function digit") from None


def is_request(mti: str) -> bool:
    """True for requests, advices, notifications and instructions: they expect an answer."""
    return _check(mti)[2] in "0246"


def is_response(mti: str) -> bool:
    """True for responses and acknowledgements (odd function digit)."""
    return _check(mti)[2] in "1357"


def is_advice(mti: str) -> bool:
    """True for advices and their repeats (x2xx): the host must accept them, never decline."""
    return _check(mti)[2] == "2"


def is_repeat(mti: str) -> bool:
    """True for retransmissions: 1221, 1421, 0221, 0401, 1805 (odd origin digit)."""
    return _check(mti)[3] in "135"


def first_mti(mti: str) -> str:
    """The original of a repeat (1221 -> 1220); other MTIs unchanged."""
    _check(mti)
    if mti[3] in "135":
        return mti[:3] + str(int(mti[3]) - 1)
    return mti


def repeat_mti(mti: str) -> str:
    """The repeat of a request or advice (1220 -> 1221, 0400 -> 0401); repeats unchanged."""
    if not is_request(mti):
        raise MTIError(mti, "only a request or advice can be repeated")
    if mti[3] in "024":
        return mti[:3] + str(int(mti[3]) + 1)
    return mti


def response_mti(mti: str) -> str:
    """The answer's MTI: 1200->1210, 1221->1230, 1421->1430, 1804->1814, 0401->0410."""
    if not is_request(mti):
        raise MTIError(mti, "a response has no response")
    origin = first_mti(mti)[3]
    return mti[:2] + str(int(mti[2]) + 1) + origin


class RequestKey(NamedTuple):
    """What identifies a terminal's request: its copies, its answer and its journal row."""

    mti_class: str
    terminal_id: str
    stan: str


def matching_key(msg: Message) -> RequestKey:
    """(MTI class, terminal id 41, STAN 11) that pairs a request with its answer.

    An absent field counts as "" so that a malformed message still has a key.
    """
    fields = msg.fields
    return RequestKey(mti_class(msg.mti), fields.get("41", ""), fields.get("11", ""))
