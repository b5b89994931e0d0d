"""Field 54, additional amounts: balances and other amounts in 20-character sets.

Both ISO 8583 families carry up to six sets of: account type n2, amount type n2
(01 ledger balance, 02 available balance, 04 amount due, ...), currency n3, sign C (credit) or D
(debit), amount n12 in minor units. A balance inquiry's answer carries it;
the answer to a split-tender leg carries the amount still due.
"""

from __future__ import annotations

import attrs

from .errors import DecodeError

__all__ = [
    "AMOUNT_DUE",
    "AVAILABLE_BALANCE",
    "LEDGER_BALANCE",
    "AdditionalAmount",
    "decode_field54",
    "encode_field54",
]

LEDGER_BALANCE = "01"
AVAILABLE_BALANCE = "02"
AMOUNT_DUE = "04"  # what a split sale still owes after this answer
_SET = 20
_MAX_SETS = 6


@attrs.frozen
class AdditionalAmount:
    account_type: str  # n2, "00" unspecified
    amount_type: str  # n2
    currency: str  # n3, ISO 4217 numeric
    amount: int  # minor units; negative is a debit balance

    def encode(self) -> str:
        if not (
            len(self.account_type) == 2
            and len(self.amount_type) == 2
            and len(self.currency) == 3
            and f"{self.account_type}{self.amount_type}{self.currency}".isdigit()
        ):
            raise ValueError("account type n2, amount type n2 and currency n3 are digits")
        if abs(self.amount) >= 10**12:
            raise ValueError("an additional amount has at most 12 digits")
        sign = "D" if self.amount < 0 else "C"
        return f"{self.account_type}{self.amount_type}{self.currency}{sign}{abs(self.amount):012d}"


def encode_field54(amounts: list[AdditionalAmount] | tuple[AdditionalAmount, ...]) -> str:
    if not 1 <= len(amounts) <= _MAX_SETS:
        raise ValueError("field 54 holds one to six amounts")
    return "".join(a.encode() for a in amounts)


def decode_field54(value: str) -> tuple[AdditionalAmount, ...]:
    """The sets of a field 54 value; DecodeError("54", ...) when one is malformed."""
    if not value or len(value) % _SET or len(value) // _SET > _MAX_SETS:
        raise DecodeError("54", "not one to six sets of 20 characters")
    out: list[AdditionalAmount] = []
    for i in range(0, len(value), _SET):
        part = value[i : i + _SET]
        head, sign, digits = part[:7], part[7], part[8:]
        if not (head.isdigit() and digits.isdigit() and head.isascii() and digits.isascii()):
            raise DecodeError("54", "an amount set is not n2 n2 n3 x1 n12")
        if sign not in "CD":
            raise DecodeError("54", "an amount's sign is C or D")
        amount = int(digits)
        out.append(
            AdditionalAmount(head[:2], head[2:4], head[4:7], -amount if sign == "D" else amount)
        )
    return tuple(out)
