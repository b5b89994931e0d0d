"""Operator input to `forecourt accounts`: amounts, volumes, product codes and dates,
each checked with a one-line reason that names what was wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

__all__ = ["BadInput", "litres", "money", "products", "when"]


class BadInput(Exception):
    """An operator's mistake: one line, exit 2."""


def money(text: str, *, positive: bool = False) -> int:
    """Major units with at most two decimals, as minor units."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BadInput(f"amount {text!r} is not a number like 150.00") from None
    if value != value.quantize(Decimal("0.01")) or abs(value) >= 10**10:
        raise BadInput(f"amount {text!r} has more than two decimals or is too large")
    if positive and value <= 0:
        raise BadInput(f"amount {text!r} must be positive")
    return int(value * 100)


def litres(text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BadInput(f"volume {text!r} is not a number of litres") from None
    if value <= 0:
        raise BadInput(f"volume {text!r} must be positive")
    return int(value * 1000)


def products(text: str) -> tuple[str, ...]:
    codes = tuple(p.strip() for p in text.split(",") if p.strip())
    for code in codes:
        if not (code.isascii() and code.isalnum() and len(code) <= 6):
            raise BadInput(f"product code {code!r} is not 1..6 letters or digits (field 63)")
    return codes


def when(text: str | None, default: float) -> float:
    if text is None:
        return default
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{text!r} is not an ISO 8601 date or date-time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
