"""Byte-level bitmap rewrites for tests: add or drop a secondary bitmap that flags nothing."""

from __future__ import annotations

from forecourt.codecs.dialect import Dialect

EMPTY_BINARY = bytes(8)
EMPTY_HEX = b"0" * 16


def _mti_length(dialect: Dialect) -> int:
    return 2 if dialect.spec["t"]["data_enc"] == "b" else 4


def _primary(dialect: Dialect, raw: bytes) -> tuple[int, int, int]:
    """(offset of the primary bitmap, its length on the wire, its value)."""
    at = _mti_length(dialect)
    if dialect.bitmap == "hex":
        return at, 16, int(raw[at : at + 16], 16)
    return at, 8, int.from_bytes(raw[at : at + 8], "big")


def _spell(dialect: Dialect, value: int) -> bytes:
    return b"%016X" % value if dialect.bitmap == "hex" else value.to_bytes(8, "big")


def with_empty_secondary(dialect: Dialect, raw: bytes) -> bytes:
    """`raw` (which has no secondary bitmap) as a stack that always writes one sends it."""
    at, size, value = _primary(dialect, raw)
    assert not value >> 63, "already has a secondary bitmap"
    empty = EMPTY_HEX if dialect.bitmap == "hex" else EMPTY_BINARY
    return raw[:at] + _spell(dialect, value | 1 << 63) + empty + raw[at + size :]


def without_empty_secondary(dialect: Dialect, raw: bytes) -> bytes:
    """`raw` with a secondary bitmap that flags nothing removed (bit 1 cleared); else as is."""
    at, size, value = _primary(dialect, raw)
    secondary = raw[at + size : at + 2 * size]
    empty = EMPTY_HEX if dialect.bitmap == "hex" else EMPTY_BINARY
    if not value >> 63 or secondary != empty:
        return raw
    return raw[:at] + _spell(dialect, value & ~(1 << 63)) + raw[at + 2 * size :]
