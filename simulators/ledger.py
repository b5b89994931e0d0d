"""Fleet / B2B balances the acquirer simulator keeps, and the originals that hold on them.

An approval takes from a balance, a completion settles at the actual amount
and a reversal gives back what its original holds; a balance inquiry only
reads. Per-card accounts open each PAN's balance on first use.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

__all__ = ["AccountConfig", "Ledger", "Original", "UnknownAccount"]


class UnknownAccount(ValueError):
    """A balance was asked of an account the configuration does not name."""


@attrs.frozen
class AccountConfig:
    """A fleet/B2B balance; `per_card` gives every PAN its own balance of this size."""

    name: str
    balance: int
    per_card: bool = False


@attrs.define
class Original:
    """An approved authorisation remembered for its reversal or completion."""

    balance_key: str | None
    amount: int  # what it currently holds on the balance
    reversed: bool = False
    completed: bool = False


class Ledger:
    """Balances of the configured accounts; per-card balances open on first use."""

    def __init__(self, accounts: Sequence[AccountConfig]) -> None:
        self._accounts = {a.name: a for a in accounts}
        self._balances: dict[str, int] = {}

    def balance_key(self, account: str, pan: str | None) -> str:
        config = self._accounts.get(account)
        if config is None:
            raise UnknownAccount(f"unknown account {account!r}")
        return f"{account}/{pan or ''}" if config.per_card else account

    def balance(self, key: str) -> int:
        if key not in self._balances:
            account = self._accounts[key.split("/", 1)[0]]
            self._balances[key] = account.balance
        return self._balances[key]

    def take(self, key: str, amount: int) -> int:
        """Take up to `amount`; returns what was taken (0 when the balance is empty)."""
        taken = max(0, min(amount, self.balance(key)))
        self._balances[key] -= taken
        return taken

    def adjust(self, key: str, delta: int) -> None:
        """Give back (positive) or charge (negative) without a limit: advices must pass."""
        self._balances[key] = self.balance(key) + delta

    def balances(self) -> dict[str, int]:
        """Account name -> balance (per-card keys are account/PAN: keep in memory only)."""
        return dict(self._balances)
