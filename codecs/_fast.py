"""A fast path for `encode` and `decode` in the ASCII-length dialects (ifsf, iso87ascii).

pyiso8583 is general: ~50 µs to decode or encode a purchase, four to six times a
transaction in the switch. Specialised per dialect spec, the same work is a few
microseconds. The fast path only answers when its result is certainly the
general codec's: it returns None for anything out of the ordinary (a BCD or hex
bitmap dialect, a field the spec lacks, a length that does not fit, a non-ASCII
value, trailing bytes, a tertiary bitmap...) and the caller then runs
pyiso8583, which produces the value or raises the proper error. Tests compare
both paths message for message (tests/codecs/test_fast.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (length prefix digits, max length, data encoding: "b" | "ascii" | "latin-1")
_FieldSpec = tuple[int, int, str]

# For each byte value, the 1-based bit positions it flags (most significant bit = 1).
_BITS: tuple[tuple[int, ...], ...] = tuple(
    tuple(bit + 1 for bit in range(8) if byte >> (7 - bit) & 1) for byte in range(256)
)


class FastCodec:
    """Encode/decode for one dialect spec; None means "ask pyiso8583"."""

    __slots__ = ("_fields", "_keys", "_version")

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], version: str) -> None:
        self._version = version
        self._fields: dict[int, _FieldSpec] = {}
        self._keys = {n: str(n) for n in range(129)}
        for key, f in spec.items():
            if key.isdigit() and key != "1":
                self._fields[int(key)] = (int(f["len_type"]), int(f["max_len"]), f["data_enc"])

    @staticmethod
    def supports(spec: Mapping[str, Mapping[str, Any]]) -> bool:
        """ASCII MTI, binary bitmaps, ASCII length prefixes, no padding, no header."""
        return (
            spec["t"]["data_enc"] == "ascii"
            and spec["t"]["max_len"] == 4
            and spec["p"]["data_enc"] == "b"
            and spec.get("1", spec["p"])["data_enc"] == "b"
            and spec.get("h", {"max_len": 0})["max_len"] == 0
            and all(
                f["len_enc"] == "ascii"
                and f.get("len_count", "bytes") == "bytes"
                and not f.get("left_pad")
                and not f.get("right_pad")
                and f["data_enc"] in ("ascii", "latin-1", "b")
                for k, f in spec.items()
                if k.isdigit() and k != "1"
            )
        )

    def encode(self, mti: str, fields: Mapping[str, str]) -> bytes | None:
        specs = self._fields
        try:
            numbers = sorted(int(k) for k in fields)
        except ValueError:
            return None
        if not numbers or numbers[0] < 2 or numbers[-1] > 128 or 65 in numbers:
            return None
        secondary = numbers[-1] > 64
        bitmap = 1 << 127 if secondary else 0
        parts: list[bytes] = [mti.encode("ascii"), b""]
        for n in numbers:
            spec = specs.get(n)
            if spec is None:
                return None
            prefix, max_len, data_enc = spec
            value = fields[self._keys[n]]
            if type(value) is not str:
                return None
            if data_enc == "b":
                try:
                    body = bytes.fromhex(value)
                except ValueError:
                    return None
                if len(value) != 2 * len(body):
                    return None
            else:
                if not value.isascii():
                    return None
                body = value.encode("ascii")
            size = len(body)
            if prefix:
                if size > max_len:
                    return None
                parts.append(b"%0*d" % (prefix, size))
            elif size != max_len:
                return None
            parts.append(body)
            bitmap |= 1 << (128 - n)
        parts[1] = bitmap.to_bytes(16, "big") if secondary else (bitmap >> 64).to_bytes(8, "big")
        return b"".join(parts)

    def decode(self, raw: bytes) -> tuple[str, dict[str, str]] | None:
        head = raw[:4]
        if len(raw) < 12 or not head.isdigit() or head[0] != ord(self._version):
            return None
        primary = raw[4:12]
        idx = 12
        if primary[0] & 0x80:
            secondary = raw[12:20]
            if len(secondary) != 8 or secondary[0] & 0x80:
                return None  # truncated, or a tertiary bitmap: the codec says why
            idx = 20
            # A secondary bitmap that flags nothing reads as absent (some stacks always send one).
            bitmap = primary + secondary if any(secondary) else primary
        else:
            bitmap = primary
        numbers: list[int] = []
        for i, byte in enumerate(bitmap):
            if byte:
                base = i * 8
                numbers.extend(base + b for b in _BITS[byte])
        if numbers and numbers[0] == 1:
            numbers.pop(0)
        specs = self._fields
        keys = self._keys
        fields: dict[str, str] = {}
        end = len(raw)
        for n in numbers:
            spec = specs.get(n)
            if spec is None:
                return None
            prefix, max_len, data_enc = spec
            if prefix:
                length = raw[idx : idx + prefix]
                if len(length) != prefix or not length.isdigit():
                    return None
                size = int(length)
                if size > max_len:
                    return None
                idx += prefix
            else:
                size = max_len
            stop = idx + size
            if stop > end:
                return None
            body = raw[idx:stop]
            if data_enc == "b":
                fields[keys[n]] = body.hex().upper()
            elif data_enc == "latin-1":
                fields[keys[n]] = body.decode("latin-1")
            else:
                if not body.isascii():
                    return None
                fields[keys[n]] = body.decode("ascii")
            idx = stop
        if idx != end:
            return None
        return head.decode("ascii"), fields
