"""What an operator types in the PAN box, as a pattern over ``masked_pan``.

The journal holds first 6 and last 4 only. A full PAN typed in is masked at once
(and only its mask is searched for and shown back), so no page, log or query
parameter ever carries it.
"""

from __future__ import annotations

import re

from forecourt.codecs.masking import mask_pan

_MASKED = re.compile(r"([0-9]{0,6})\*+([0-9]{0,4})")


class BadPanQuery(ValueError):
    pass


def pan_pattern(text: str) -> tuple[str, str]:
    """(a LIKE pattern over masked_pan, the text to show back in the form)."""
    typed = text.strip().replace(" ", "")
    if typed.isdigit() and len(typed) > 10:
        typed = mask_pan(typed)
    if typed.isdigit():
        if len(typed) <= 4:
            return f"%{typed}", typed
        if len(typed) <= 6:
            return f"{typed}%", typed
        raise BadPanQuery("PAN: give the first 6, the last 4, or the masked PAN (476173******0010)")
    m = _MASKED.fullmatch(typed)
    if m is None:
        raise BadPanQuery("PAN: give the first 6, the last 4, or the masked PAN (476173******0010)")
    first, last = m.groups()
    return f"{first}%{last}", typed
