"""The wire-format keys a listener and an ISO 8583 acquirer link share.

Both ends of the switch speak ISO 8583 over TCP with a length header, so the same
five keys, with the same defaults and limits, describe a terminal port and a host
link; reading them in one place keeps the two from drifting apart.
"""

from __future__ import annotations

import attrs
from forecourt.switch.config_reading import ConfigTable

__all__ = ["BITMAPS", "DIALECTS", "FRAMING_HEADERS", "WireKeys", "read_wire"]

DIALECTS = ("ifsf", "iso87ascii", "iso87bcd")
BITMAPS = ("binary", "hex")
FRAMING_HEADERS = ("2b", "4a")


@attrs.frozen
class WireKeys:
    """dialect, bitmap, framing, tpdu and max_frame as one table gave them."""

    dialect: str = "ifsf"
    bitmap: str = "binary"
    framing: str = "2b"
    tpdu: bool = False
    max_frame: int = 8192


def read_wire(t: ConfigTable) -> WireKeys:
    wire = WireKeys(
        dialect=t.str_("dialect", "ifsf", DIALECTS),
        bitmap=t.str_("bitmap", "binary", BITMAPS),
        framing=t.str_("framing", "2b", FRAMING_HEADERS),
        tpdu=t.bool_("tpdu", False),
        max_frame=t.int_("max_frame", 8192, 64, 65535),
    )
    if wire.framing == "4a" and wire.max_frame > 9999:
        # four ASCII digits cannot say more
        raise t.error("max_frame", 'must be at most 9999 with framing "4a"')
    return wire
