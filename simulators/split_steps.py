"""A script step's split group: the sale a request is a leg, or the reversal, of."""

from __future__ import annotations

import attrs

from ._toml import Table

__all__ = ["SplitSale", "parse_split"]


@attrs.frozen
class SplitSale:
    """The split group a request carries: `group` as given (9 digits), or, with
    `sale`, an id the terminal draws per run for the script's n-th sale, so a script
    run twice against one journal never reuses a group."""

    total: int
    group: str | None = None
    sale: int | None = None


def parse_split(t: Table) -> SplitSale | None:
    """A send step's `split = { sale = 1, total = 20000 }` (or `group = "000000001"`)."""
    if "split" not in t:
        return None
    s = t.table("split")
    group, sale, total = s.opt_text("group"), s.opt_integer("sale"), s.integer("total", low=1)
    if (group is None) == (sale is None):
        raise s.error("sale", "give sale (a number) or group (9 digits), one of them")
    if group is not None and not (len(group) == 9 and group.isdigit()):
        raise s.error("group", "must be 9 digits")
    if total >= 10**12:
        raise s.error("total", "must be at most 12 digits")
    s.done()
    return SplitSale(total, group, sale)


@attrs.define
class SplitLegs:
    """The approved legs of each split sale the terminal paid, so that a whole-sale
    reversal takes every one of them back out of the shift's totals (as the switch's
    journal does), not only the leg its field 4 names."""

    _groups: dict[str, str] = attrs.field(factory=dict)  # request STAN → group id
    _legs: dict[str, list[int]] = attrs.field(factory=dict)  # group id → approved amounts

    def sent(self, stan: str, group_id: str) -> None:
        self._groups[stan] = group_id

    def approved_leg(self, stan: str | None, amount: int) -> None:
        group_id = self._groups.get(stan or "")
        if group_id is not None:
            self._legs.setdefault(group_id, []).append(amount)

    def reversed_sale(self, stan: str | None) -> list[int] | None:
        """The legs an approved reversal with a group took back (None: not one)."""
        group_id = self._groups.get(stan or "")
        return None if group_id is None else self._legs.pop(group_id, [])
