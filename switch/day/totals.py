"""A business day's totals, counted from the journal's transactions.

One statement reads the day's financial rows (class 2: purchases, refunds,
completions, stand-in approvals) grouped by tender, acquirer (the route),
terminal, operator, currency and category; the four dimensions are rolled up
here. A row belongs to the day of its own `received_at`, except an advice or a
reversal that names its original (`original_txn_id`): it belongs to its
original's day, so a completion that arrives after the cut-over for a
pre-authorisation before it is booked to the day of the pre-authorisation.

Categories, net of what was reversed since: `sale` (approved, the approved
amount: a partial reversal already lowered it), `refund` (approved, processing
code 20), `sale_reversal` and `refund_reversal` (approved once, reversed since).
A missing tender, route or operator is counted under "none".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

__all__ = [
    "CATEGORIES",
    "DIMENSIONS",
    "NONE",
    "DayLine",
    "Query",
    "changed_query",
    "count_day",
    "day_query",
    "late_lines",
    "late_query",
    "roll_up",
]

DIMENSIONS = ("tender", "acquirer", "terminal", "operator")
CATEGORIES = ("sale", "refund", "sale_reversal", "refund_reversal")
NONE = "none"

# (sql in SQLite's spelling, params) -> rows as tuples
Query = Callable[[str, Sequence[object]], Sequence[Any]]

# approved once: 1993 0xx, 1987 00 08 10 11 16 (codecs/action_codes.py)
_APPROVED_ONCE = (
    "((length(t.action_code) = 3 AND substr(t.action_code, 1, 1) = '0')"
    " OR t.action_code IN ('00', '08', '10', '11', '16'))"
)
# the day a row belongs to: its original's for an advice or reversal that names one
_BELONGS = (
    "t.received_at >= ? AND coalesce(o.received_at, t.received_at) >= ?"
    " AND coalesce(o.received_at, t.received_at) < ?"
)
_GROUPED = f"""
    SELECT tender, acquirer, terminal, operator, currency, category, count(*) AS n,
        CAST(coalesce(sum(amt), 0) AS BIGINT) AS total
    FROM (
        SELECT coalesce(t.tender, '') AS tender, coalesce(t.route, '') AS acquirer,
            t.terminal_id AS terminal, coalesce(t.operator_id, '') AS operator,
            coalesce(t.currency, '') AS currency,
            CASE
                WHEN t.state = 'approved'
                     AND substr(coalesce(t.processing_code, '00'), 1, 2) = '20' THEN 'refund'
                WHEN t.state = 'approved' THEN 'sale'
                WHEN substr(coalesce(t.processing_code, '00'), 1, 2) = '20'
                     THEN 'refund_reversal'
                ELSE 'sale_reversal'
            END AS category,
            coalesce(t.approved_amount, t.amount, 0) AS amt
        FROM transactions t LEFT JOIN transactions o ON o.txn_id = t.original_txn_id
        WHERE t.mti_class = '2' AND {_BELONGS}
            AND (t.state = 'approved'
                 OR (t.state IN ('reversal_pending', 'reversed') AND {_APPROVED_ONCE}))
    ) d
    GROUP BY tender, acquirer, terminal, operator, currency, category
    """
# rows of the day (financial and reversals) that reached their state after the freeze;
# `received_at >= ?` first, so the received_at index bounds the scan
_LATE = f"""
    SELECT t.txn_id FROM transactions t LEFT JOIN transactions o ON o.txn_id = t.original_txn_id
    WHERE t.received_at >= ? AND t.mti_class IN ('2', '4') AND {_BELONGS}
        AND coalesce(t.answered_at, t.received_at) > ?
        AND (',' || t.flags || ',') NOT LIKE '%,late,%'
    """
# any row received since `?` that belongs to the day: the day must be counted again
_CHANGED = f"""
    SELECT 1 FROM transactions t LEFT JOIN transactions o ON o.txn_id = t.original_txn_id
    WHERE t.received_at > ? AND {_BELONGS} LIMIT 1
    """
# a row answered after the freeze arrived at most this long before it (the longest
# request timeout is far shorter): the late rows are looked for from then on
LATE_LOOKBACK_S = 3600.0


@attrs.frozen(order=True)
class DayLine:
    """One line of a day's totals: `count` transactions of `amount` minor units."""

    dimension: str
    key: str
    currency: str
    category: str
    count: int
    amount: int
    late: bool = False

    @property
    def group(self) -> tuple[str, str, str, str]:
        return self.dimension, self.key, self.currency, self.category


def day_query(start: float, end: float) -> tuple[str, tuple[float, ...]]:
    """The statement (SQLite's spelling) and parameters that read day [start, end)."""
    return _GROUPED, (start, start, end)


def count_day(query: Query, start: float, end: float) -> list[DayLine]:
    """The day [start, end) counted now, per dimension, sorted."""
    return roll_up(query(*day_query(start, end)))


def roll_up(rows: Iterable[Sequence[Any]]) -> list[DayLine]:
    """The grouped rows of `day_query` as lines per dimension, sorted."""
    sums: dict[tuple[str, str, str, str], list[int]] = {}
    for tender, acquirer, terminal, operator, currency, category, n, total in rows:
        for dimension, key in zip(DIMENSIONS, (tender, acquirer, terminal, operator), strict=True):
            acc = sums.setdefault((dimension, key or NONE, currency, category), [0, 0])
            acc[0] += int(n)
            acc[1] += int(total)
    return sorted(DayLine(*group, c, a) for group, (c, a) in sums.items())


def late_lines(now: Iterable[DayLine], frozen: Iterable[DayLine]) -> list[DayLine]:
    """What the day counts now less what was frozen: the late lines (a late reversal
    of a frozen sale shows as sale -1 and sale_reversal +1)."""
    diff: dict[tuple[str, str, str, str], list[int]] = {}
    for line, sign in [(x, 1) for x in now] + [(x, -1) for x in frozen]:
        acc = diff.setdefault(line.group, [0, 0])
        acc[0] += sign * line.count
        acc[1] += sign * line.amount
    return sorted(DayLine(*group, c, a, late=True) for group, (c, a) in diff.items() if c or a)


def late_query(start: float, end: float, frozen_at: float) -> tuple[str, tuple[float, ...]]:
    """Ids of the day's rows answered after the day was frozen, not yet flagged late."""
    since = max(start, frozen_at - LATE_LOOKBACK_S)
    return _LATE, (since, start, start, end, frozen_at)


def changed_query(start: float, end: float, since: float) -> tuple[str, tuple[float, ...]]:
    """A row (any) of the day received after `since`."""
    return _CHANGED, (since, start, start, end)
