"""What the simulators share on the wire: format settings, MAC keys, masking.

A `WireFormat` is a dialect plus framing plus the TPDU a client sends; it is
parsed from the same keys (dialect, bitmap, framing, tpdu, max_frame) in every
simulator's TOML so a host, a script and a load run describe a link alike.
"""

from __future__ import annotations

import attrs
from forecourt.codecs.dialect import Dialect, get_dialect
from forecourt.codecs.errors import CodecError
from forecourt.codecs.family import Family
from forecourt.codecs.fields import mask_pan
from forecourt.codecs.framing import Framing
from forecourt.keys.errors import KeysError
from forecourt.keys.mac import MacAlgorithm, PreparedMac, prepare_mac

from ._toml import Table

__all__ = [
    "DEFAULT_TPDU",
    "WireFormat",
    "masked",
    "parse_mac_key",
    "parse_wire",
]

# ID 60, destination 0001, source 0000: a typical terminal-to-host TPDU.
DEFAULT_TPDU = bytes.fromhex("6000010000")
DIALECTS = ("ifsf", "iso87ascii", "iso87bcd")


@attrs.frozen
class WireFormat:
    """Dialect, framing and (for clients) the TPDU to send."""

    dialect: Dialect
    framing: Framing
    tpdu: bytes | None = None

    @property
    def family(self) -> Family:
        return self.dialect.family


def wire_format(
    dialect: str = "ifsf",
    bitmap: str = "binary",
    header: str = "2b",
    tpdu: bool | bytes = False,
    max_frame: int = 8192,
) -> WireFormat:
    """A wire format from plain values (tests, load generator options)."""
    tpdu_bytes = tpdu if isinstance(tpdu, bytes) else (DEFAULT_TPDU if tpdu else None)
    return WireFormat(
        get_dialect(dialect, bitmap),
        Framing(header, tpdu_bytes is not None, max_frame),
        tpdu_bytes,
    )


def parse_wire(table: Table) -> WireFormat:
    """Read dialect, bitmap, framing, tpdu (true/false or 10 hex digits), max_frame."""
    dialect = table.text("dialect", "ifsf", DIALECTS)
    bitmap = table.text("bitmap", "binary", ("binary", "hex"))
    header = table.text("framing", "2b", ("2b", "4a", "none"))
    max_frame = table.integer("max_frame", 8192, low=64)
    raw_tpdu = table.raw("tpdu", False)
    tpdu: bool | bytes
    if isinstance(raw_tpdu, bool):
        tpdu = raw_tpdu
    elif isinstance(raw_tpdu, str):
        try:
            tpdu = bytes.fromhex(raw_tpdu)
        except ValueError:
            raise table.error("tpdu", "must be true/false or 10 hex digits") from None
        if len(tpdu) != 5:
            raise table.error("tpdu", "must be 5 bytes (10 hex digits)")
    else:
        raise table.error("tpdu", "must be true/false or 10 hex digits")
    try:
        return wire_format(dialect, bitmap, header, tpdu, max_frame)
    except (CodecError, ValueError) as exc:
        raise table.error("dialect", str(exc)) from None


def parse_mac_key(table: Table, key_name: str) -> PreparedMac | None:
    """A prepared MAC from `<key_name>` (clear hex, test only) and `algorithm`."""
    hex_key = table.opt_text(key_name)
    algorithm = table.text("algorithm", "retail", ("retail", "cmac"))
    if hex_key is None:
        return None
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        raise table.error(key_name, "must be hex") from None
    try:
        return prepare_mac(key, MacAlgorithm(algorithm))
    except KeysError as exc:
        raise table.error(key_name, str(exc)) from None


def masked(pan: str | None) -> str | None:
    """The PAN as it may be written anywhere: first 6 and last 4 (None stays None)."""
    return mask_pan(pan) if pan else None
