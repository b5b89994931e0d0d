"""The checks of a sale against its card, before any money moves: pure functions.

Called inside the ledger's database transaction with what it read there, so two
nodes never decide on the same usage; the order of the checks is the order of the
declines a cardholder would want explained (docs/accounts.md).
"""

from __future__ import annotations

import attrs

from .model import Limits, SaleFacts

__all__ = ["Card", "Usage", "check_card", "check_limits", "check_products", "odometer_flags"]


@attrs.frozen
class Card:
    card_ref: str
    account_id: str
    status: str
    products: tuple[str, ...]  # allowed product codes; empty: any
    last_odometer: int | None


@attrs.frozen
class Usage:
    """What the card took (or holds) since the day's and the month's start."""

    day_amount: int = 0
    month_amount: int = 0
    day_volume: int = 0
    month_volume: int = 0


def check_card(card: Card | None) -> str | None:
    """unknown_card, card_blocked, card_lost, or None for an active card."""
    if card is None:
        return "unknown_card"
    if card.status == "blocked":
        return "card_blocked"
    if card.status == "lost":
        return "card_lost"
    return None


def check_products(card: Card, facts: SaleFacts, kind: str) -> str | None:
    """A restricted card buys only its products. A purchase must say what it buys
    (field 63); a pre-authorisation is made before fuelling and cannot."""
    if not card.products:
        return None
    if not facts.products:
        return None if kind == "preauth" else "product_restricted"
    allowed = set(card.products)
    return None if all(code in allowed for code in facts.products) else "product_restricted"


def check_limits(limits: Limits | None, usage: Usage, amount: int, volume_ml: int) -> str | None:
    """limit_exceeded when this sale would pass any limit of the card's level."""
    if limits is None:
        return None
    checks = (
        (limits.per_txn_amount, amount),
        (limits.daily_amount, usage.day_amount + amount),
        (limits.monthly_amount, usage.month_amount + amount),
        (limits.per_txn_volume, volume_ml),
        (limits.daily_volume, usage.day_volume + volume_ml),
        (limits.monthly_volume, usage.month_volume + volume_ml),
    )
    return "limit_exceeded" if any(lim is not None and v > lim for lim, v in checks) else None


def odometer_flags(card: Card, facts: SaleFacts) -> tuple[str, ...]:
    """odometer_backwards when the reading is below the card's last one."""
    reading = facts.prompted.odometer
    if reading is not None and card.last_odometer is not None and reading < card.last_odometer:
        return ("odometer_backwards",)
    return ()
