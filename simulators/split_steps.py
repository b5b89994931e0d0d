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
