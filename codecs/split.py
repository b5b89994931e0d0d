"""The split group of a sale paid with several tenders: which sale a leg belongs to.

Every leg of one sale carries the same group: a 9-digit id the terminal gives the
sale (unique per terminal while the sale is open) and the sale's total in minor
units. Where it travels differs per family (docs/codecs.md):

- ``ifsf``: field 48 sub-element 7, "Multiple transaction control" (n9), holds the
  id; sub-element 61 (n12, forecourt's own) the total. 48-7 is IFSF's element for
  linking transactions, but nine digits cannot hold an id and a 12-digit total.
- 1987 dialects (no IFSF field 48 there): field 62, "Reserved private", as
  ``SG`` + id n9 + total n12. A field 62 not starting ``SG`` is not a split group,
  so a host's or terminal's other use of 62 is left alone.
"""

from __future__ import annotations

import attrs

from .errors import DecodeError
from .family import Family
from .field48 import decode_field48, encode_field48
from .message import Message

__all__ = ["SPLIT_GROUP_FIELD", "SplitGroup", "split_group_of", "with_split_group"]

_ID = 7  # ifsf 48-7
_TOTAL = 61  # ifsf 48-61
_TAG = "SG"  # 1987 field 62
# where each family carries the group
SPLIT_GROUP_FIELD = {Family.ISO1993: "48", Family.ISO1987: "62"}


def _check(group_id: str, total: int, field: str) -> None:
    if not (len(group_id) == 9 and group_id.isascii() and group_id.isdigit()):
        raise DecodeError(field, "split group id is not 9 digits")
    if not 0 < total < 10**12:
        raise DecodeError(field, "split sale total is not 1 to 12 digits above zero")


@attrs.frozen
class SplitGroup:
    """One sale's link: the terminal's id for it and the sale's total (minor units)."""

    group_id: str
    total: int

    def __attrs_post_init__(self) -> None:
        _check(self.group_id, self.total, "group")


def split_group_of(message: Message, family: Family) -> SplitGroup | None:
    """The message's split group, None when it carries none; DecodeError when malformed."""
    if family == Family.ISO1993:
        raw = message.fields.get("48")
        if raw is None:
            return None
        elements = decode_field48(raw)
        group_id, total = elements.get(_ID), elements.get(_TOTAL)
        if group_id is None and total is None:
            return None
        if not isinstance(group_id, str) or not isinstance(total, str):
            raise DecodeError("48", "a split group needs sub-elements 7 (id) and 61 (total)")
        _check(group_id, int(total), "48")
        return SplitGroup(group_id, int(total))
    value = message.fields.get("62")
    if value is None or not value.startswith(_TAG):
        return None
    body = value[len(_TAG) :]
    if len(body) != 21 or not (body.isascii() and body.isdigit()):
        raise DecodeError("62", "a split group is SG, id n9, total n12")
    _check(body[:9], int(body[9:]), "62")
    return SplitGroup(body[:9], int(body[9:]))


def with_split_group(message: Message, group: SplitGroup, family: Family) -> Message:
    """The message carrying `group` (other field 48 sub-elements kept)."""
    if family == Family.ISO1993:
        raw = message.fields.get("48")
        elements = decode_field48(raw) if raw is not None else {}
        elements[_ID] = group.group_id
        elements[_TOTAL] = f"{group.total:012d}"
        return message.with_fields({48: encode_field48(elements)})
    return message.with_fields({62: f"{_TAG}{group.group_id}{group.total:012d}"})
