"""`iso87bcd`: ISO 8583:1987 with BCD numerics, as card POS terminals send it behind a TPDU.

MTI and numerics are packed BCD (fixed fields left-padded with "0", variable
ones right-padded with "0", lengths counting digits); track 2 is BCD with "D"
as separator; text is ASCII; prefixes are BCD (1 byte LL, 2 bytes LLL); binary
elements and the bitmaps are raw. The layout of jPOS's ISO87BPackager, which
most hosts behind such terminals speak.
"""

from __future__ import annotations

from typing import Any

from ._layout import render_bcd
from .iso87 import FAMILY, LAYOUT

__all__ = ["FAMILY", "LAYOUT", "NAME", "spec"]

NAME = "iso87bcd"


def spec() -> dict[str, dict[str, Any]]:
    """The pyiso8583 spec; BCD links always use a binary bitmap."""
    return render_bcd(LAYOUT)
