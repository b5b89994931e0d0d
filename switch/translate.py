"""Carrying a message between the 1993 and 1987 families.

Same-family links pass fields through untouched. Across families the MTI version
changes, the date-time fields are re-cut and the fields whose meaning differs
between the two editions (22, 24, 25, 26, 56/90) are not carried.
"""

from __future__ import annotations

import time

from forecourt.codecs.family import Family
from forecourt.codecs.message import Message

_NOT_CARRIED_ACROSS = frozenset({"22", "24", "25", "26", "30", "56", "90", "64", "128"})


def convert_mti(mti: str, family: Family) -> str:
    return ("1" if family is Family.ISO1993 else "0") + mti[1:]


def across_families(message: Message, source_family: Family, target_family: Family) -> Message:
    """The message as the other family writes it; unchanged when the families agree."""
    if source_family == target_family:
        return message
    fields = {k: v for k, v in message.fields.items() if k not in _NOT_CARRIED_ACROSS}
    if source_family is Family.ISO1993 and "12" in fields:
        stamp = fields.pop("12")  # YYMMDDhhmmss
        fields["12"] = stamp[6:12]
        fields["13"] = stamp[2:6]
    elif source_family is Family.ISO1987 and "12" in fields:
        time_part = fields.pop("12")
        date_part = fields.pop("13", "0101")
        fields["12"] = time.strftime("%y", time.gmtime()) + date_part + time_part
    return Message(mti=convert_mti(message.mti, target_family), fields=fields)
