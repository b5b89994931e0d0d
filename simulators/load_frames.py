"""The load generator's fast path: requests encoded once, answers half read.

A `RequestTemplate` is a request encoded by the codec once, with the byte
ranges of its STAN and amount, so each request costs a byte patch (and a MAC)
instead of an encode. `AnswerScanner` reads fields 11 and 39 of an answer
without decoding the rest. Tests check both against the codec in every dialect.
"""

from __future__ import annotations

from collections.abc import Callable

from forecourt.codecs.dialect import decode, encode, encode_with_mac
from forecourt.codecs.message import Message

from .wire import WireFormat

__all__ = ["AnswerScanner", "RequestTemplate", "mac_request_template"]


class AnswerScanner:
    """Field 11 and 39 of an answer without decoding the rest.

    Walks the bitmap and skips each field by its spec (fixed or LL/LLL length,
    ASCII or BCD prefix, nibble counts), so reading an answer costs a few
    microseconds instead of a full decode; anything it cannot follow falls back
    to the codec's decode.
    """

    def __init__(self, wire: WireFormat) -> None:
        self.dialect = wire.dialect
        spec = wire.dialect.spec
        self.mti_len = 2 if spec["t"]["data_enc"] == "b" else 4
        self.hex_bitmap = spec["p"]["data_enc"] != "b"
        self.fields: list[tuple[int, str, int, bool, bool]] = [(0, "", 0, False, False)]
        for n in range(1, 129):
            f = spec.get(str(n))
            if f is None or n == 1:
                self.fields.append((0, "", 0, False, False))
                continue
            self.fields.append(
                (
                    int(f["len_type"]),
                    str(f["len_enc"]),
                    int(f["max_len"]),
                    f.get("len_count") == "nibbles",
                    f["data_enc"] == "b",
                )
            )

    def scan(self, payload: bytes) -> tuple[str | None, str | None]:
        """(STAN, action code) of an answer."""
        try:
            return self._scan(payload)
        except (ValueError, IndexError):
            fields = decode(self.dialect, payload).fields
            return fields.get("11"), fields.get("39")

    def _scan(self, data: bytes) -> tuple[str | None, str | None]:
        idx = self.mti_len
        if self.hex_bitmap:
            bitmap = int(data[idx : idx + 16], 16)
            idx += 16
        else:
            bitmap = int.from_bytes(data[idx : idx + 8], "big")
            idx += 8
        if bitmap >> 63:
            idx += 16 if self.hex_bitmap else 8  # the secondary bitmap: fields 65+ not needed
        stan: str | None = None
        code: str | None = None
        for n in range(2, 40):
            if not (bitmap >> (64 - n)) & 1:
                continue
            len_type, len_enc, max_len, nibbles, binary = self.fields[n]
            if len_type:
                prefix = data[idx : idx + len_type]
                count = int(prefix.hex()) if len_enc == "bcd" else int(prefix)
                idx += len_type
            else:
                count = max_len
            size = (count + 1) // 2 if nibbles else count
            if n == 11:
                body = data[idx : idx + size]
                stan = body.hex()[-6:] if binary else body.decode("ascii")
            elif n == 39:
                code = data[idx : idx + size].decode("ascii")
                return stan, code
            idx += size
            if idx > len(data):
                raise ValueError("truncated")
        return stan, code


class RequestTemplate:
    """A request encoded once, with the byte ranges of its STAN and amount."""

    def __init__(self, wire: WireFormat, build_with: Callable[[str, int], Message]) -> None:
        dialect = wire.dialect
        self.wire = wire
        low = encode(dialect, build_with("000000", 0))
        high = encode(dialect, build_with("999999", 999_999_999_999))
        self.body = bytearray(low)
        self.stan_at = self._span(low, high, first=True)
        self.amount_at = (
            self._span(low, high, first=False) if self._has_amount(build_with) else None
        )
        self.bcd = dialect.name == "iso87bcd"
        self.mac_len = 0

    @staticmethod
    def _has_amount(build_with: Callable[[str, int], Message]) -> bool:
        return "4" in build_with("000000", 0).fields

    @staticmethod
    def _span(low: bytes, high: bytes, first: bool) -> slice:
        """The first (STAN) or second (amount) run of bytes that differ."""
        runs: list[slice] = []
        i = 0
        n = len(low)
        while i < n:
            if low[i] != high[i]:
                j = i
                while j < n and low[j] != high[j]:
                    j += 1
                runs.append(slice(i, j))
                i = j
            else:
                i += 1
        # Field 4 precedes field 11 in the message: amount first, STAN after.
        if len(runs) == 1:
            return runs[0]
        return runs[1] if first else runs[0]

    def _digits(self, value: int, width: int) -> bytes:
        if self.bcd:
            return bytes.fromhex(f"{value:0{width * 2}d}")
        return b"%0*d" % (width, value)

    def payload(self, stan: int, amount: int, mac: Callable[[bytes], bytes] | None) -> bytes:
        body = self.body
        at = self.stan_at
        body[at] = self._digits(stan, at.stop - at.start)
        if self.amount_at is not None:
            at = self.amount_at
            body[at] = self._digits(amount, at.stop - at.start)
        if mac is None:
            return bytes(body)
        return bytes(body) + mac(bytes(body))


def mac_request_template(
    wire: WireFormat, build_with: Callable[[str, int], Message]
) -> RequestTemplate:
    """Template whose body ends before the 8 MAC bytes (which are appended per request)."""
    template = RequestTemplate(wire, build_with)
    placeholder = encode_with_mac(wire.dialect, build_with("000000", 0), lambda data: bytes(8))
    template.body = bytearray(placeholder[:-8])
    return template
