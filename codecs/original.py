"""Fields that point back at an earlier message: 56 (1993), 90 (1987), 30 (1993).

A reversal, completion or advice names the message it refers to (56 or 90) and,
for a completion or partial reversal, the original amounts (30). Layouts:

- 56 (1993): original MTI n4, STAN n6, local date-time n12 (YYMMDDhhmmss, the
  original's field 12), then optionally the acquirer id as LL n..11.
- 90 (1987): original MTI n4, STAN n6, transmission date-time n10
  (MMDDhhmmss), acquirer id n11, forwarding institution id n11 (zero-filled).
- 30 (1993): original transaction amount n12, original cardholder billing
  amount n12.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ._digits import check_digits, require_digits
from .errors import DecodeError, EncodeError

__all__ = ["OriginalAmounts", "OriginalData", "OriginalElements"]


# -- field 56 (1993) -----------------------------------------------------------


@attrs.frozen
class OriginalData:
    """Field 56 (1993): which earlier message a reversal or advice refers to."""

    mti: str
    stan: str
    local_datetime: str  # YYMMDDhhmmss, the original's field 12
    acquirer_id: str | None = None

    def encode(self) -> str:
        require_digits(self.mti, "56", "original MTI", range(4, 5))
        require_digits(self.stan, "56", "original STAN", range(6, 7))
        require_digits(self.local_datetime, "56", "original date-time", range(12, 13))
        text = self.mti + self.stan + self.local_datetime
        if self.acquirer_id is not None:
            require_digits(self.acquirer_id, "56", "acquirer id", range(1, 12))
            text += f"{len(self.acquirer_id):02d}{self.acquirer_id}"
        return text

    @classmethod
    def decode(cls, value: str) -> OriginalData:
        check_digits(value, "56", "original data elements")
        if len(value) < 22:
            raise DecodeError("56", "shorter than MTI, STAN and date-time")
        acquirer: str | None = None
        if len(value) > 22:
            length = int(value[22:24]) if len(value) >= 24 else -1
            if not 1 <= length <= 11 or len(value) != 24 + length:
                raise DecodeError("56", "acquirer id length does not match")
            acquirer = value[24:]
        return cls(value[:4], value[4:10], value[10:22], acquirer)

    @classmethod
    def of(cls, original_mti: str, fields: Mapping[str, str]) -> OriginalData:
        """The field 56 that refers to a message with these fields (11, 12, 32)."""
        return cls(original_mti, fields["11"], fields["12"], fields.get("32"))


# -- field 90 (1987) -----------------------------------------------------------


def _zero_fill_11(value: str) -> str:
    return value.zfill(11)


@attrs.frozen
class OriginalElements:
    """Field 90 (1987): original MTI, STAN, transmission time, acquirer and forwarder."""

    mti: str
    stan: str
    transmitted: str  # MMDDhhmmss, the original's field 7
    acquirer_id: str = attrs.field(default="0", converter=_zero_fill_11)
    forwarding_id: str = attrs.field(default="0", converter=_zero_fill_11)

    def encode(self) -> str:
        require_digits(self.mti, "90", "original MTI", range(4, 5))
        require_digits(self.stan, "90", "original STAN", range(6, 7))
        require_digits(self.transmitted, "90", "original transmission time", range(10, 11))
        require_digits(self.acquirer_id, "90", "acquirer id", range(11, 12))
        require_digits(self.forwarding_id, "90", "forwarding id", range(11, 12))
        return self.mti + self.stan + self.transmitted + self.acquirer_id + self.forwarding_id

    @classmethod
    def decode(cls, value: str) -> OriginalElements:
        check_digits(value, "90", "original data elements", 42)
        return cls(value[:4], value[4:10], value[10:20], value[20:31], value[31:42])

    @classmethod
    def of(cls, original_mti: str, fields: Mapping[str, str]) -> OriginalElements:
        """The field 90 that refers to a message with these fields (11, 7, 32, 33)."""
        return cls(
            original_mti, fields["11"], fields["7"], fields.get("32", "0"), fields.get("33", "0")
        )


# -- field 30 (1993) -----------------------------------------------------------


@attrs.frozen
class OriginalAmounts:
    """Field 30 (1993): the amounts of the original, in minor units.

    A completion (1220) carries the pre-authorised maximum here; a partial
    reversal the amount first approved.
    """

    transaction: int
    cardholder_billing: int = 0

    def encode(self) -> str:
        for amount in (self.transaction, self.cardholder_billing):
            if not 0 <= amount < 10**12:
                raise EncodeError("30", "amount out of range for n12")
        return f"{self.transaction:012d}{self.cardholder_billing:012d}"

    @classmethod
    def decode(cls, value: str) -> OriginalAmounts:
        check_digits(value, "30", "original amounts", 24)
        return cls(int(value[:12]), int(value[12:]))
