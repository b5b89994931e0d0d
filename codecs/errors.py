"""Typed codec errors: the only exceptions that leave `forecourt.codecs`.

Every message says which field and why, never the field's content, so an error
can be logged without leaking a PAN, track data or a PIN block.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "DecodeError",
    "EncodeError",
    "FrameTooLarge",
    "MTIError",
    "UnknownDialect",
]


class CodecError(Exception):
    """Base of every codec error, so a caller can catch the family."""


class DecodeError(CodecError):
    """Bytes that are not a valid message (or frame) of the dialect.

    `field` is a data element number ("2".."128"), "mti", "bitmap", "frame",
    or None when no single field is to blame; `reason` never quotes field data.
    """

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = reason
        where = f"field {field}: " if field is not None else ""
        super().__init__(f"{where}{reason}")

    def __reduce__(self) -> tuple[type[DecodeError], tuple[str | None, str]]:
        return (type(self), (self.field, self.reason))


class EncodeError(CodecError):
    """A message that cannot be put on the wire in the dialect."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = reason
        where = f"field {field}: " if field is not None else ""
        super().__init__(f"{where}{reason}")

    def __reduce__(self) -> tuple[type[EncodeError], tuple[str | None, str]]:
        return (type(self), (self.field, self.reason))


class FrameTooLarge(CodecError):
    """A length header announces more than the configured maximum.

    Raised from the header alone, before any of the body is buffered.
    """

    def __init__(self, length: int, maximum: int) -> None:
        self.length = length
        self.maximum = maximum
        super().__init__(f"frame of {length} bytes exceeds the maximum of {maximum}")

    def __reduce__(self) -> tuple[type[FrameTooLarge], tuple[int, int]]:
        return (type(self), (self.length, self.maximum))


class UnknownDialect(CodecError):
    """A dialect name (or bitmap form) this codec does not define."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown dialect {name!r}")

    def __reduce__(self) -> tuple[type[UnknownDialect], tuple[str]]:
        return (type(self), (self.name,))


class MTIError(CodecError, ValueError):
    """An MTI helper was given something that is not a 4-digit MTI of the right kind."""

    def __init__(self, mti: str, reason: str) -> None:
        self.mti = mti
        self.reason = reason
        super().__init__(f"MTI {mti!r}: {reason}")

    def __reduce__(self) -> tuple[type[MTIError], tuple[str, str]]:
        return (type(self), (self.mti, self.reason))
