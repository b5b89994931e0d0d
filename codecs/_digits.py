"""Digit checks shared by the structured-field helpers.

Decoding raises DecodeError, encoding EncodeError, both naming the field and
never quoting its value (it may be card data).
"""

from __future__ import annotations

from .errors import DecodeError, EncodeError

__all__ = ["check_digits", "require_digits"]


def check_digits(value: str, field: str, what: str, length: int | None = None) -> str:
    """`value` if it is ASCII digits (exactly `length` of them when given); else DecodeError."""
    if not (value.isascii() and value.isdigit()) or (length is not None and len(value) != length):
        size = f"{length} " if length is not None else ""
        raise DecodeError(field, f"{what} is not {size}digits")
    return value


def require_digits(value: str, field: str, what: str, lengths: range) -> None:
    """EncodeError unless `value` is ASCII digits with a length in `lengths`."""
    if not (value.isascii() and value.isdigit() and len(value) in lengths):
        raise EncodeError(field, f"{what} must be {lengths.start}..{lengths.stop - 1} digits")
