"""`iso87ascii`: ISO 8583:1987 with ASCII MTI, numerics, text and length prefixes.

Binary elements (52, 55, 64, 96, 128) travel raw; the bitmap is binary (the
common "ASCII with binary bitmap" form) or 16 ASCII hex digits, per link.
"""

from __future__ import annotations

from typing import Any, Literal

from ._layout import render_ascii
from .iso87 import FAMILY, LAYOUT

__all__ = ["FAMILY", "LAYOUT", "NAME", "spec"]

NAME = "iso87ascii"


def spec(bitmap: Literal["binary", "hex"] = "binary") -> dict[str, dict[str, Any]]:
    """The pyiso8583 spec for the chosen bitmap form."""
    return render_ascii(LAYOUT, bitmap)
