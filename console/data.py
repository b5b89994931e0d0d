"""The console's reads of the journal, each in a worker thread on a pooled
``query_only`` reader (they never wait behind the switch's writer: WAL, or
PostgreSQL's pool), and its writes through the journal's writer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import trio
from forecourt.console.operators import Operator, Role
from forecourt.switch.journal import Journal, JournalReader, JournalRow
from forecourt.switch.journal.reader import QueryReader, Record, journal_row

_R = TypeVar("_R")

DASHBOARD_WINDOW_S = 120
_DASHBOARD_ROWS = 100_000  # newest rows read for the dashboard (~800/s over 2 min)
ONLINE_S = 600.0  # a terminal seen within this (and signed on) is online
LAST_SEEN_WINDOW_S = 86400.0


@attrs.frozen
class TxnQuery:
    terminal: str | None = None
    pan_like: str | None = None
    rrn: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100


@attrs.frozen
class Dashboard:
    """Per second over the window: requests, approval rate; per 10 s: switch latency."""

    seconds: list[int]
    tps: list[int]
    approval: list[float | None]
    latency_at: list[int]
    p50: list[float | None]
    p95: list[float | None]
    p99: list[float | None]
    total: int
    approved: int
    declined: int

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class ShiftLine:
    terminal_id: str
    shift_id: str
    opened_at: float
    closed_at: float | None
    in_balance: bool | None
    day: str


@attrs.frozen
class AuditLine:
    at: float
    operator: str
    action: str
    target: str
    detail: str


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def dashboard_of(rows: Sequence[tuple[float, str, str, float | None]], now: float) -> Dashboard:
    """``rows``: (received_at, mti_class, state, switch_ms) of the window."""
    end = int(now)
    start = end - DASHBOARD_WINDOW_S + 1
    n = [0] * DASHBOARD_WINDOW_S
    ok = [0] * DASHBOARD_WINDOW_S
    decided = [0] * DASHBOARD_WINDOW_S
    buckets: list[list[float]] = [[] for _ in range(DASHBOARD_WINDOW_S // 10)]
    for received_at, mti_class, state, switch_ms in rows:
        i = int(received_at) - start
        if not 0 <= i < DASHBOARD_WINDOW_S:
            continue
        n[i] += 1
        if mti_class in ("1", "2") and state in ("approved", "declined"):
            decided[i] += 1
            ok[i] += state == "approved"
        if switch_ms is not None:
            buckets[i // 10].append(float(switch_ms))
    for b in buckets:
        b.sort()
    return Dashboard(
        seconds=list(range(start, end + 1)),
        tps=n,
        approval=[round(100.0 * a / d, 1) if d else None for a, d in zip(ok, decided, strict=True)],
        latency_at=[start + 10 * k for k in range(len(buckets))],
        p50=[percentile(b, 50) for b in buckets],
        p95=[percentile(b, 95) for b in buckets],
        p99=[percentile(b, 99) for b in buckets],
        total=sum(n),
        approved=sum(ok),
        declined=sum(decided) - sum(ok),
    )


class ConsoleData:
    """Reads for the pages; ``journal`` (opened by the console) does the writes."""

    def __init__(self, journal: Journal, readers: int = 2) -> None:
        self.journal = journal
        # one dashboard read a second, however many browsers poll it
        self._board: tuple[int, Dashboard] | None = None
        self._board_lock = trio.Lock()
        self._idle: list[QueryReader] = []
        self._opened: list[JournalReader] = []
        self._limiter = trio.CapacityLimiter(readers)

    async def _read(self, fn: Callable[[QueryReader], _R]) -> _R:
        async with self._limiter:
            reader = self._idle.pop() if self._idle else None
            try:
                if reader is None:
                    opened = await trio.to_thread.run_sync(self.journal.backend.open_reader)
                    self._opened.append(opened)
                    assert isinstance(opened, QueryReader)
                    reader = opened
                return await trio.to_thread.run_sync(fn, reader, abandon_on_cancel=False)
            finally:
                if reader is not None:
                    self._idle.append(reader)

    async def _view(self, sql: str, params: Sequence[object] = ()) -> Sequence[Record]:
        return await self._read(lambda r: r.view(sql, params))

    def close(self) -> None:
        self._idle.clear()
        while self._opened:
            self._opened.pop().close()

    # -- transactions
    async def transactions(self, q: TxnQuery) -> list[JournalRow]:
        where: list[str] = []
        params: list[object] = []
        for clause, value in (
            ("terminal_id = ?", q.terminal),
            ("masked_pan LIKE ?", q.pan_like),
            ("rrn = ?", q.rrn),
            ("received_at >= ?", q.since),
            ("received_at < ?", q.until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = "SELECT * FROM transactions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._view(sql + " ORDER BY received_at DESC LIMIT ?", (*params, q.limit))
        return [journal_row(r) for r in rows]

    async def dashboard(self, now: float | None = None) -> Dashboard:
        """The window up to ``now``; within the same second, the read already made."""
        at = time.time() if now is None else now
        async with self._board_lock:
            if self._board is not None and self._board[0] == int(at):
                return self._board[1]
            board = await self._dashboard(at)
            self._board = (int(at), board)
            return board

    async def _dashboard(self, at: float) -> Dashboard:
        rows = await self._view(
            "SELECT received_at, mti_class, state, switch_ms FROM transactions "
            "WHERE received_at >= ? ORDER BY received_at DESC LIMIT ?",
            (int(at) - DASHBOARD_WINDOW_S + 1, _DASHBOARD_ROWS),
        )
        values = [(r["received_at"], r["mti_class"], r["state"], r["switch_ms"]) for r in rows]
        return dashboard_of(values, at)

    # -- terminals
    async def last_seen(self, now: float | None = None) -> dict[str, float]:
        """Each terminal's latest request within the last day (the received_at index)."""
        since = (time.time() if now is None else now) - LAST_SEEN_WINDOW_S
        rows = await self._view(
            "SELECT terminal_id, max(received_at) AS seen FROM transactions "
            "WHERE received_at >= ? GROUP BY terminal_id",
            (since,),
        )
        return {str(r["terminal_id"]): float(r["seen"]) for r in rows}

    # -- shifts
    async def shifts(self, limit: int = 100) -> list[ShiftLine]:
        rows = await self._view(
            "SELECT terminal_id, shift_id, opened_at, closed_at, in_balance FROM shifts "
            "ORDER BY opened_at DESC LIMIT ?",
            (limit,),
        )
        return [
            ShiftLine(
                r["terminal_id"],
                r["shift_id"],
                float(r["opened_at"]),
                None if r["closed_at"] is None else float(r["closed_at"]),
                None if r["in_balance"] is None else bool(r["in_balance"]),
                time.strftime("%Y-%m-%d", time.gmtime(float(r["opened_at"]))),
            )
            for r in rows
        ]

    # -- operators and the console's audit
    async def operator(self, name: str) -> Operator | None:
        rows = await self._view(
            "SELECT name, role, password_hash FROM console_operators WHERE name = ?", (name,)
        )
        if not rows:
            return None
        r = rows[0]
        return Operator(str(r["name"]), Role(r["role"]), str(r["password_hash"]))

    async def console_audit(self, limit: int = 200) -> list[AuditLine]:
        rows = await self._view(
            "SELECT at, operator, action, target, detail FROM console_audit "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            AuditLine(float(r["at"]), r["operator"], r["action"], r["target"], r["detail"])
            for r in rows
        ]
