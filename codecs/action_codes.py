"""Response codes: 1993 three-digit action codes (field 39 of `ifsf`), 1987
two-character response codes, and the one table that maps between them.

The switch decides an `Outcome`; `code_for` spells it for the terminal's
family. Codes that come from a host are read with `outcome_of`, which never
fails: an unknown code falls back to its class (1993 0xx approved, 9xx system
error, anything else declined; 1987 anything unknown declined).
See docs/action-codes.md.
"""

from __future__ import annotations

import enum

from .family import Family

__all__ = [
    "FAMILIES",
    "Outcome",
    "code_for",
    "is_approved",
    "outcome_of",
    "to_1987",
    "to_1993",
]

FAMILIES: tuple[Family, ...] = (Family.ISO1993, Family.ISO1987)


class Outcome(enum.Enum):
    """What happened to a request, independent of how a dialect spells it."""

    APPROVED = "approved"
    PARTIAL = "partial"  # approved for less: split tender
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNKNOWN_TERMINAL = "unknown_terminal"  # not registered / invalid merchant
    FORMAT_ERROR = "format_error"
    SYSTEM_MALFUNCTION = "system_malfunction"
    ISSUER_TIMEOUT = "issuer_timeout"
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    DUPLICATE = "duplicate"
    ORIGINAL_NOT_FOUND = "original_not_found"
    MAC_INCORRECT = "mac_incorrect"
    MAC_KEY_SYNC = "mac_key_sync"
    REVERSAL_ACCEPTED = "reversal_accepted"  # 1430 / 0410
    NETWORK_ACCEPTED = "network_accepted"  # 1814 / 1830 / 0810
    FUNCTION_NOT_SUPPORTED = "function_not_supported"  # a message class no flow carries
    NOT_SIGNED_ON = "not_signed_on"  # signed off: not permitted to terminal until sign-on
    INVALID_TRANSACTION = "invalid_transaction"  # field 7 outside the tolerance: refused
    INVALID_AMOUNT = "invalid_amount"  # a split-tender leg above what the sale still owes


# The switch's own outcomes, as each family spells them on the way out.
_CODES: dict[Outcome, tuple[str, str]] = {
    Outcome.APPROVED: ("000", "00"),
    Outcome.PARTIAL: ("002", "10"),
    Outcome.DECLINED: ("100", "05"),
    Outcome.INSUFFICIENT_FUNDS: ("116", "51"),
    Outcome.UNKNOWN_TERMINAL: ("109", "03"),
    Outcome.FORMAT_ERROR: ("904", "30"),
    Outcome.SYSTEM_MALFUNCTION: ("909", "96"),
    Outcome.ISSUER_TIMEOUT: ("911", "91"),
    Outcome.ISSUER_UNAVAILABLE: ("912", "92"),
    Outcome.DUPLICATE: ("913", "94"),
    Outcome.ORIGINAL_NOT_FOUND: ("914", "25"),
    Outcome.MAC_INCORRECT: ("916", "A0"),
    Outcome.MAC_KEY_SYNC: ("917", "A0"),
    Outcome.REVERSAL_ACCEPTED: ("400", "00"),
    Outcome.NETWORK_ACCEPTED: ("800", "00"),
    Outcome.FUNCTION_NOT_SUPPORTED: ("115", "40"),
    Outcome.NOT_SIGNED_ON: ("120", "58"),
    Outcome.INVALID_TRANSACTION: ("902", "12"),
    Outcome.INVALID_AMOUNT: ("110", "13"),
}

# Reading codes: the primary spellings above, and then what hosts also send.
_FROM_1993: dict[str, Outcome] = {
    **{c93: o for o, (c93, _) in _CODES.items()},
    "001": Outcome.APPROVED,  # honour with identification
    "003": Outcome.APPROVED,  # approved (VIP)
    "004": Outcome.APPROVED,  # approved, update track 3
    "005": Outcome.APPROVED,  # approved, account type specified by issuer
    "006": Outcome.PARTIAL,  # approved for partial amount, account type specified
    "007": Outcome.APPROVED,  # approved, update ICC
    "907": Outcome.ISSUER_UNAVAILABLE,  # card issuer or switch inoperative
    "908": Outcome.ISSUER_UNAVAILABLE,  # transaction destination cannot be found
    "910": Outcome.ISSUER_UNAVAILABLE,  # card issuer signed off
}
# Outcomes whose 1987 code is shared with another: read back as that other one.
_LOSSY_1987 = frozenset({Outcome.MAC_KEY_SYNC, Outcome.REVERSAL_ACCEPTED, Outcome.NETWORK_ACCEPTED})
_FROM_1987: dict[str, Outcome] = {
    **{c87: o for o, (_, c87) in _CODES.items() if o not in _LOSSY_1987},
    "08": Outcome.APPROVED,  # honour with identification
    "11": Outcome.APPROVED,  # approved (VIP)
    "16": Outcome.APPROVED,  # approved, update track 3
    "68": Outcome.ISSUER_TIMEOUT,  # response received too late
}

# Declines that each family names more precisely than Outcome.DECLINED; kept
# one-to-one when translating between a 1987 and a 1993 party.
_DECLINE_PAIRS: tuple[tuple[str, str], ...] = (
    ("101", "54"),  # expired card
    ("102", "59"),  # suspected fraud
    ("104", "62"),  # restricted card
    ("106", "75"),  # allowable PIN tries exceeded
    ("107", "01"),  # refer to card issuer
    ("110", "13"),  # invalid amount
    ("111", "14"),  # invalid card number
    ("114", "52"),  # no account of type requested
    ("115", "40"),  # requested function not supported
    ("117", "55"),  # incorrect PIN
    ("118", "56"),  # no card record
    ("119", "57"),  # not permitted to cardholder
    ("120", "58"),  # not permitted to terminal
    ("121", "61"),  # exceeds withdrawal amount limit
    ("123", "65"),  # exceeds withdrawal frequency limit
    ("200", "04"),  # do not honour, pick up card
)
_DECLINE_TO_1987 = dict(_DECLINE_PAIRS)
_DECLINE_TO_1993 = {c87: c93 for c93, c87 in _DECLINE_PAIRS}

_APPROVING = frozenset(
    {Outcome.APPROVED, Outcome.PARTIAL, Outcome.REVERSAL_ACCEPTED, Outcome.NETWORK_ACCEPTED}
)


def _family_index(family: Family) -> int:
    # `==`, not `is`: a plain "1993" from a caller that has not converted still works.
    if family == Family.ISO1993:
        return 0
    if family == Family.ISO1987:
        return 1
    raise ValueError(f"family must be '1993' or '1987', not {family!r}")


def code_for(outcome: Outcome, family: Family) -> str:
    """Field 39 for an outcome: code_for(APPROVED, ISO1993) == "000", (ISO1987) == "00"."""
    return _CODES[outcome][_family_index(family)]


def outcome_of(code: str, family: Family) -> Outcome:
    """What a field 39 value means; unknown codes fall back to their class, never raise."""
    if _family_index(family) == 0:
        known = _FROM_1993.get(code)
        if known is not None:
            return known
        if len(code) == 3 and code.isdigit():
            if code[0] == "0":
                return Outcome.APPROVED
            if code[0] == "9":
                return Outcome.SYSTEM_MALFUNCTION
        return Outcome.DECLINED
    return _FROM_1987.get(code, Outcome.DECLINED)


def is_approved(code: str, family: Family) -> bool:
    """True for approvals (1993 0xx, 400, 800; 1987 00, 08, 10, 11, 16)."""
    return outcome_of(code, family) in _APPROVING


def to_1987(code3: str) -> str:
    """The 1987 response code for a 1993 action code (400 and 800 become 00)."""
    precise = _DECLINE_TO_1987.get(code3)
    if precise is not None:
        return precise
    return code_for(outcome_of(code3, Family.ISO1993), Family.ISO1987)


def to_1993(code2: str, mti: str | None = None) -> str:
    """The 1993 action code for a 1987 response code.

    "00" is context-dependent: pass the MTI being answered (or the answer's)
    and an approval becomes 400 for a reversal (class 4) and 800 for network
    management (class 8); without it, 000.
    """
    precise = _DECLINE_TO_1993.get(code2)
    if precise is not None:
        return precise
    outcome = outcome_of(code2, Family.ISO1987)
    if outcome is Outcome.APPROVED and mti is not None and len(mti) == 4:
        if mti[1] == "4":
            outcome = Outcome.REVERSAL_ACCEPTED
        elif mti[1] == "8":
            outcome = Outcome.NETWORK_ACCEPTED
    return code_for(outcome, Family.ISO1993)
