"""Reading reconciliation back: items with the evidence of both sides, and a day's
report. Reads go through the journal's reader pool (`Journal.view`-style queries
written in SQLite's spelling), so they never wait behind the writer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from forecourt.switch.journal import Journal

__all__ = ["Item", "ReportRow", "day_counts", "items", "report_rows"]


@attrs.frozen
class Item:
    """An error item and its evidence: the party's line (file, line, type, time) and
    the journal's row (terminal, STAN, state); the PAN only ever masked."""

    id: int
    party: str
    day: str
    match_class: str
    reference: str
    party_amount: int | None
    switch_amount: int | None
    state: str
    txn_id: str | None
    file_sha: str | None
    line_no: int | None
    party_type: str | None
    party_at: float | None
    masked_pan: str | None
    terminal_id: str | None
    stan: str | None
    switch_state: str | None
    received_at: float | None
    action: str | None
    operator: str | None
    acted_at: float | None
    reason: str | None


_ITEMS = """
    SELECT i.id, i.party, i.day, i.class, i.reference, i.party_amount, i.switch_amount,
        i.state, i.txn_id, l.file_sha, l.line_no, l.type AS party_type, l.at AS party_at,
        COALESCE(l.masked_pan, t.masked_pan) AS pan, t.terminal_id, t.stan,
        t.state AS switch_state, t.received_at, a.action, a.operator, a.at AS acted_at,
        a.reason
    FROM recon_items i
    LEFT JOIN recon_lines l ON l.party = i.party AND l.line_id = i.line_id
    LEFT JOIN transactions t ON t.txn_id = i.txn_id
    LEFT JOIN recon_actions a ON a.item_id = i.id"""


async def view(journal: Journal, query: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """Rows as tuples, from either backend (PostgreSQL's reader gives dicts: every
    column of a query is named apart)."""

    def read(reader: Any) -> list[tuple[Any, ...]]:
        rows = reader.view(query, params)
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]

    return await journal._read(read)


_view = view


async def items(
    journal: Journal,
    party: str | None = None,
    day: str | None = None,
    state: str | None = None,
    item_id: int | None = None,
    limit: int = 1000,
) -> list[Item]:
    where: list[str] = []
    params: list[object] = []
    for column, value in (
        ("i.party", party),
        ("i.day", day),
        ("i.state", state),
        ("i.id", item_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = await _view(journal, f"{_ITEMS}{clause} ORDER BY i.id LIMIT ?", (*params, limit))
    return [Item(*_values(r)) for r in rows]


def _values(r: Sequence[Any]) -> list[Any]:
    out = list(r)
    for i in (5, 6):  # money comes back as int from both backends; None stays None
        out[i] = None if out[i] is None else int(out[i])
    return out


async def day_counts(journal: Journal, party: str, day: str) -> dict[str, int]:
    rows = await _view(
        journal,
        "SELECT class, count(*) AS n FROM recon_results WHERE party = ? AND day = ? GROUP BY class",
        (party, day),
    )
    return {str(c): int(n) for c, n in rows}


@attrs.frozen
class ReportRow:
    match_class: str
    reference: str
    party_amount: int | None
    switch_amount: int | None
    line_id: str | None
    txn_id: str | None


async def report_rows(journal: Journal, party: str, day: str) -> list[ReportRow]:
    """The differences of the party's day (every class but matched), in a stable order."""
    rows = await _view(
        journal,
        "SELECT class, reference, party_amount, switch_amount, line_id, txn_id"
        " FROM recon_results WHERE party = ? AND day = ? AND class <> 'matched'"
        " ORDER BY class, reference, line_id, txn_id",
        (party, day),
    )
    return [
        ReportRow(
            str(r[0]), str(r[1]),
            None if r[2] is None else int(r[2]), None if r[3] is None else int(r[3]),
            r[4], r[5],
        )
        for r in rows
    ]  # fmt: skip
