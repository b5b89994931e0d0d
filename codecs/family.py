"""The ISO 8583 version family a dialect belongs to: 1993 (IFSF) or 1987.

A `StrEnum`, so values read from configuration or a journal row compare equal to
their members; code names the member, never the bare string.
"""

from __future__ import annotations

import enum

__all__ = ["Family"]


class Family(enum.StrEnum):
    ISO1993 = "1993"
    ISO1987 = "1987"
