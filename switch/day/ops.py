"""The business day's journal write operations: each one database transaction's worth.

They go through `Journal.write` like every other operation and are applied by
`switch.day.apply_day` (one row of switch/journal/domains.py), so closing a day,
freezing its totals and queueing its host totals are one transaction, and the
day's row in `business_days` is the claim that lets only one node close it.
"""

from __future__ import annotations

import attrs

from .totals import DayLine

__all__ = [
    "DAY_OPS",
    "BookLate",
    "ClaimHostTotals",
    "CloseDay",
    "DayOp",
    "RecordHostTotals",
    "RequestHostTotals",
]


@attrs.frozen
class CloseDay:
    """Close business day `day` ([start_at, end_at)): freeze `lines` (the day as a
    reader counted it just before: the count never holds the writer), close or roll
    the open shifts, and queue a host-totals request for each of `acquirers`.
    Result: `DayClosed`, or None when the day was closed already (by any node)."""

    day: str  # YYYY-MM-DD, the date on which the day began
    start_at: float
    end_at: float
    at: float
    node: str
    reason: str  # cutover | operator
    open_shifts: str  # close | roll
    acquirers: tuple[str, ...] = ()
    lines: tuple[DayLine, ...] = ()


@attrs.frozen
class DayClosed:
    """What a `CloseDay` did: the shifts it closed (terminal, shift) or rolled."""

    day: str
    closed_shifts: tuple[tuple[str, str], ...]
    rolled: int
    host_requests: int


@attrs.frozen
class BookLate:
    """Closed day `day` counted again (`lines`, by a reader): what differs from its
    frozen totals becomes its late lines (replacing the previous late lines, never
    the frozen ones), and `txn_ids` (rows that reached their state after the freeze)
    are flagged `late`. Result: rows newly flagged."""

    day: str
    at: float
    lines: tuple[DayLine, ...] = ()
    txn_ids: tuple[str, ...] = ()


@attrs.frozen
class RequestHostTotals:
    """Queue a host-totals exchange (1520 / 0500) of `day` with `acquirer`, for the
    node that has the link to send. Result: the request's id."""

    day: str
    acquirer: str
    at: float
    by: str


@attrs.frozen
class ClaimHostTotals:
    """Take up to `limit` pending requests (or requests whose lease ran out) for
    links in `acquirers`. Result: list of (id, day, acquirer)."""

    node: str
    acquirers: tuple[str, ...]
    now: float
    lease_s: float = 60.0
    limit: int = 10


@attrs.frozen
class RecordHostTotals:
    """What became of one exchange: `answered` (in balance or not), `failed`, or
    back to `pending` (the link was down: tried again). Result: None."""

    request_id: int
    state: str
    at: float
    request_mti: str | None = None
    stan: str | None = None
    action_code: str | None = None
    in_balance: bool | None = None
    ours: str | None = None  # JSON: the totals sent
    theirs: str | None = None  # JSON: the host's figures, when it sent them
    error: str | None = None


DayOp = CloseDay | BookLate | RequestHostTotals | ClaimHostTotals | RecordHostTotals
DAY_OPS: tuple[type, ...] = (
    CloseDay,
    BookLate,
    RequestHostTotals,
    ClaimHostTotals,
    RecordHostTotals,
)
