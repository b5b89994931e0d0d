"""The business day's tables, written inside the journal writer's transaction.

`business_days` has one row per closed day: inserting it is the claim (a primary
key), so when two nodes close the same day at once PostgreSQL makes the second
wait for the first and then insert nothing, and SQLite's one writer runs them in
turn. Everything else a close does happens in the same transaction, only for the
node whose insert took: the frozen totals, the shifts, the host-totals queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from .ops import (
    BookLate,
    ClaimHostTotals,
    CloseDay,
    DayClosed,
    DayOp,
    RecordHostTotals,
    RequestHostTotals,
)
from .totals import DayLine, Query, late_lines

__all__ = ["apply_day", "frozen_lines"]

_INSERT_DAY = (
    "INSERT INTO business_days (day, start_at, end_at, closed_at, closed_by, reason, "
    "open_shifts) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day) DO NOTHING"
)
_INSERT_LINE = (
    "INSERT INTO business_day_totals (day, late, dimension, key, currency, category, "
    "count, amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_LINES = (
    "SELECT dimension, key, currency, category, count, amount, late "
    "FROM business_day_totals WHERE day = ? AND late = ? "
    "ORDER BY dimension, key, currency, category"
)
_INSERT_REQUEST = (
    "INSERT INTO host_totals (day, acquirer, requested_at, requested_by) VALUES (?, ?, ?, ?)"
)


class _Sql:
    def __init__(self, run: Callable[[str, Sequence[object]], Any], convert: Callable[[str], str]):
        self._run = run
        self._convert = convert

    def __call__(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._run(self._convert(sql), params)

    def rows(self, sql: str, params: Sequence[object] = ()) -> Sequence[Any]:
        result: Sequence[Any] = self(sql, params).fetchall()
        return result


def frozen_lines(query: Query, day: str, late: bool = False) -> list[DayLine]:
    """The frozen (or the late) lines of a closed day."""
    return [
        DayLine(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]), bool(r[6]))
        for r in query(_LINES, (day, late))
    ]


def apply_day(
    op: DayOp,
    run: Callable[[str, Sequence[object]], Any],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Run one business-day operation in the caller's transaction; its result."""
    sql = _Sql(run, convert)
    match op:
        case CloseDay():
            return _close(sql, op)
        case BookLate():
            return _book_late(sql, op)
        case RequestHostTotals():
            row = sql(_INSERT_REQUEST + " RETURNING id", (op.day, op.acquirer, op.at, op.by))
            return int(row.fetchone()[0])
        case ClaimHostTotals():
            return _claim(sql, op, lock)
        case RecordHostTotals():
            _record(sql, op)
    return None


def _close(sql: _Sql, op: CloseDay) -> DayClosed | None:
    claim = sql(
        _INSERT_DAY, (op.day, op.start_at, op.end_at, op.at, op.node, op.reason, op.open_shifts)
    )
    if claim.rowcount != 1:
        return None  # closed already, here or at another node
    for line in op.lines:
        sql(_INSERT_LINE, (op.day, False, *line.group, line.count, line.amount))
    open_shifts = [
        (str(r[0]), str(r[1]))
        for r in sql.rows("SELECT terminal_id, shift_id FROM shifts WHERE closed_at IS NULL")
    ]
    closed: tuple[tuple[str, str], ...] = ()
    if op.open_shifts == "close":
        note = json.dumps({"closed_by": "business_day", "day": op.day}, sort_keys=True)
        sql("UPDATE shifts SET closed_at = ?, totals = ? WHERE closed_at IS NULL", (op.at, note))
        closed = tuple(open_shifts)
    rolled = 0 if op.open_shifts == "close" else len(open_shifts)
    sql(
        "UPDATE business_days SET shifts_closed = ?, shifts_rolled = ? WHERE day = ?",
        (len(closed), rolled, op.day),
    )
    for acquirer in op.acquirers:
        sql(_INSERT_REQUEST, (op.day, acquirer, op.at, op.node))
    return DayClosed(op.day, closed, rolled, len(op.acquirers))


def _book_late(sql: _Sql, op: BookLate) -> int:
    late = late_lines(op.lines, frozen_lines(sql.rows, op.day))
    sql("DELETE FROM business_day_totals WHERE day = ? AND late = ?", (op.day, True))
    for line in late:
        sql(_INSERT_LINE, (op.day, True, *line.group, line.count, line.amount))
    flagged = 0
    for k in range(0, len(op.txn_ids), 500):
        ids = op.txn_ids[k : k + 500]
        flagged += sql(
            "UPDATE transactions SET flags = CASE WHEN flags = '' THEN 'late' "
            "ELSE flags || ',late' END WHERE (',' || flags || ',') NOT LIKE ? "
            "AND txn_id IN (" + ", ".join("?" for _ in ids) + ")",
            ("%,late,%", *ids),
        ).rowcount
    sql("UPDATE business_days SET late_at = ? WHERE day = ?", (op.at, op.day))
    return flagged


def _claim(sql: _Sql, op: ClaimHostTotals, lock: str) -> list[tuple[int, str, str]]:
    if not op.acquirers:
        return []
    marks = ", ".join("?" for _ in op.acquirers)
    due = sql.rows(
        "SELECT id, day, acquirer FROM host_totals WHERE acquirer IN (" + marks + ") "
        "AND (state = 'pending' OR (state = 'in_flight' AND lease_until < ?)) "
        "ORDER BY id LIMIT ?" + (lock + " SKIP LOCKED" if lock else ""),
        (*op.acquirers, op.now, op.limit),
    )
    taken = [(int(r[0]), str(r[1]), str(r[2])) for r in due]
    for request_id, _, _ in taken:
        sql(
            "UPDATE host_totals SET state = 'in_flight', claimed_by = ?, lease_until = ? "
            "WHERE id = ?",
            (op.node, op.now + op.lease_s, request_id),
        )
    return taken


def _record(sql: _Sql, op: RecordHostTotals) -> None:
    sql(
        "UPDATE host_totals SET state = ?, answered_at = ?, sent_at = coalesce(sent_at, ?), "
        "request_mti = coalesce(?, request_mti), stan = coalesce(?, stan), action_code = ?, "
        "in_balance = ?, ours = coalesce(?, ours), theirs = ?, error = ?, "
        "lease_until = NULL WHERE id = ?",
        (
            op.state,
            op.at if op.state == "answered" else None,
            op.at if op.request_mti else None,
            op.request_mti,
            op.stan,
            op.action_code,
            op.in_balance,
            op.ours,
            op.theirs,
            op.error,
            op.request_id,
        ),
    )
