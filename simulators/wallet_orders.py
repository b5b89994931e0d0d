"""The simulated provider's books: orders, refunds, and the daily bill file.

Everything a real provider guarantees that the switch relies on is kept here:
one order per merchant order number (a repeat with the same content answers
the order's state; other content is a duplicate), a cancel of an order never
seen blocks a late payment under that number, a refund is idempotent by its
refund number and never exceeds what is left of the payment. Each settlement
(a payment, a refund, a reversal) is a line in the bill file of its UTC day.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from pathlib import Path
from typing import Any

import attrs

from .wallet_rules import Action, WalletRule

__all__ = ["Order", "WalletBooks"]

BILL_COLUMNS = (
    "settled_at",
    "kind",
    "order_no",
    "refund_no",
    "provider_txn_id",
    "amount",
    "currency",
)


@attrs.define
class Order:
    order_no: str
    amount: int
    currency: str
    code: str
    rule: WalletRule | None
    provider_txn_id: str
    created_at: float
    state: str = "PAYING"  # PAYING | PAID | FAILED | CANCELLED
    error: str = ""
    refunds: dict[str, int] = attrs.field(factory=dict)
    cancels_dropped: int = 0
    pays_dropped: int = 0

    @property
    def refunded(self) -> int:
        return sum(self.refunds.values())

    def view(self) -> dict[str, Any]:
        paid = self.amount if self.state == "PAID" or self.refunds else 0
        return {
            "order_no": self.order_no,
            "state": self.state,
            "amount": self.amount,
            "paid_amount": paid,
            "refunded_amount": self.refunded,
            "provider_txn_id": self.provider_txn_id,
            "refunds": [{"refund_no": n, "amount": a} for n, a in self.refunds.items()],
            **({"error": self.error} if self.error else {}),
        }


class WalletBooks:
    """Orders by number, refunds by number, and settlements written to the bill."""

    def __init__(self, bill_dir: Path | None = None) -> None:
        self.orders: dict[str, Order] = {}
        self.refund_orders: dict[str, str] = {}  # refund_no -> order_no
        self._bill_dir = bill_dir
        self._bill: list[dict[str, str]] = []
        self._ids = itertools.count(1)

    def new_order(
        self, order_no: str, amount: int, currency: str, code: str, rule: WalletRule | None
    ) -> Order:
        txn = f"W{int(time.time()):010d}{next(self._ids):08d}"
        order = Order(order_no, amount, currency, code, rule, txn, time.time())
        self.orders[order_no] = order
        return order

    def orders_by_code(self, code: str) -> list[str]:
        """The states of the orders paid with one payment code (a test's question)."""
        return [o.state for o in self.orders.values() if o.code == code]

    def advance(self, order: Order, now: float) -> None:
        """A "user paying" order decides once its time has come."""
        rule = order.rule
        if order.state != "PAYING" or rule is None or rule.action is not Action.USER_PAYING:
            return
        if now - order.created_at >= rule.paying_s:
            if rule.then == "paid":
                self.settle(order, "PAID")
            else:
                order.state, order.error = "FAILED", "USER_CANCELLED"

    def settle(self, order: Order, state: str) -> None:
        order.state = state
        self._bill_line("PAY", order, "", order.amount)

    def cancel(self, order: Order) -> None:
        if order.state == "PAID":
            left = order.amount - order.refunded
            if left > 0:
                self._bill_line("REVERSAL", order, "", -left)
        order.state = "CANCELLED"

    def refund(self, order: Order, refund_no: str, amount: int) -> None:
        order.refunds[refund_no] = amount
        self.refund_orders[refund_no] = order.order_no
        self._bill_line("REFUND", order, refund_no, -amount)

    def _bill_line(self, kind: str, order: Order, refund_no: str, amount: int) -> None:
        now = time.time()
        line = {
            "settled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "kind": kind,
            "order_no": order.order_no,
            "refund_no": refund_no,
            "provider_txn_id": order.provider_txn_id,
            "amount": str(amount),
            "currency": order.currency,
        }
        self._bill.append(line)
        if self._bill_dir is not None:
            path = self._bill_dir / f"wallet-bill-{time.strftime('%Y%m%d', time.gmtime(now))}.csv"
            new = not path.exists()
            with path.open("a", newline="", encoding="ascii") as fh:
                writer = csv.DictWriter(fh, BILL_COLUMNS)
                if new:
                    writer.writeheader()
                writer.writerow(line)

    def bill(self, day: str) -> str:
        """The CSV of one UTC day (YYYY-MM-DD) of settlements."""
        out = io.StringIO()
        writer = csv.DictWriter(out, BILL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for line in self._bill:
            if line["settled_at"].startswith(day):
                writer.writerow(line)
        return out.getvalue()
