"""Wallet orders: the names the switch gives them and what the provider's answers mean.

The merchant order number is "FC" and the journal's transaction id (a ULID) of
the sale, so every attempt to pay for one sale, by the switch or by a SAF
retry after a restart, names the same order, and the provider answers a repeat
with the order's state instead of charging twice. A refund's number is "FR" and
the refund's own transaction id; a partial reversal's is the order number, "-P"
and the reversal's STAN, stable across its SAF repeats.
"""

from __future__ import annotations

import enum

__all__ = [
    "DECLINE_CODES",
    "OrderState",
    "Result",
    "order_number",
    "partial_reversal_number",
    "refund_number",
]


def order_number(txn_id: str) -> str:
    return f"FC{txn_id}"


def refund_number(txn_id: str) -> str:
    return f"FR{txn_id}"


def partial_reversal_number(order_no: str, reversal_stan: str) -> str:
    return f"{order_no}-P{reversal_stan}"


class Result(enum.StrEnum):
    """`result` of every answer."""

    SUCCESS = "SUCCESS"
    USER_PAYING = "USER_PAYING"  # the customer is confirming in the app: ask again
    FAIL = "FAIL"


class OrderState(enum.StrEnum):
    """`state` of an order, in query answers."""

    PAYING = "PAYING"
    PAID = "PAID"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"  # cancelled before payment, or reversed (refunded in full)
    NOT_FOUND = "NOT_FOUND"


# The provider's `error` of a FAIL, as a 1993 action code to the terminal (the
# flows translate it for a 1987 terminal: 116 -> 51, 101 -> 54, 111 -> 14, ...).
DECLINE_CODES: dict[str, str] = {
    "INSUFFICIENT_FUNDS": "116",
    "CODE_EXPIRED": "101",  # expired card
    "CODE_INVALID": "111",  # invalid card number
    "USER_CANCELLED": "100",
    "ORDER_DUPLICATE": "913",  # the order number is taken by another payment
    "REFUND_EXCEEDS_PAID": "110",  # invalid amount
    "ORDER_NOT_PAID": "914",  # original not found (nothing to refund)
    "ORDER_NOT_FOUND": "914",
}
DEFAULT_DECLINE = "100"
