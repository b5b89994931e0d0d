"""Status queries in the journal: the outcome of one of the asking terminal's own
transactions, and a record of every query asked.

The lookup runs on a pooled reader (`Journal.view`), never in the writer's transaction:
a lookup by RRN has no index to use and reads the terminal's rows (bench/
status_query_lookup.py), which must not hold every other terminal's durable writes.
It names the asking terminal, so a query can find nothing but that terminal's own
rows: another terminal's transaction is "unknown". The query is then kept in
`status_queries` (a journal domain, switch/journal/domains.py), not as a transaction
row (it would enter the duplicate window, the in-flight cap, shift totals and
`journal list`) and not as an event of the original (whose history a query must not
change, and which an unknown or another terminal's transaction does not have).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

__all__ = [
    "STATUS_OPS",
    "AnswerStatusQuery",
    "OriginalOutcome",
    "RecordStatusQuery",
    "State",
    "apply_status",
    "find_original",
]

# What a status query answers about the original (48-56, position 1).
APPROVED, DECLINED, REVERSED, IN_PROGRESS, UNKNOWN = "A", "D", "R", "P", "U"
State = str

# Journal states of an original and what the terminal is told. timed_out: the
# terminal heard 911 and the switch's reversal is on its way.
_STATES: dict[str, State] = {
    "approved": APPROVED,
    "declined": DECLINED,
    "failed": DECLINED,
    "timed_out": REVERSED,
    "reversal_pending": REVERSED,
    "reversed": REVERSED,
    "received": IN_PROGRESS,
    "forwarded": IN_PROGRESS,
}
# Message classes a terminal may ask about: authorisations and financial messages
# (purchases, refunds and their advices).
QUERYABLE_CLASSES = ("1", "2")
# The terminal's local date-time is in a time zone the switch does not know: the
# original's date must be within this many days of the row's UTC reception date.
DATE_SLACK_DAYS = 1


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...


class Viewing(Protocol):
    """The journal's read on a pooled reader (`Journal.view`)."""

    async def view(self, query: str, params: Sequence[object] = ()) -> Sequence[Any]: ...


@attrs.frozen
class AnswerStatusQuery:
    """What a query asks for. Either `original_stan` (with its class and local date
    YYMMDD, from field 56) or `rrn` (field 37) names the original."""

    terminal_id: str
    stan: str  # the query's own
    at: float
    original_class: str | None = None
    original_stan: str | None = None
    original_date: str | None = None  # YYMMDD
    rrn: str | None = None

    @property
    def asked_by(self) -> str:
        return "rrn" if self.rrn is not None else "stan"

    @property
    def reference(self) -> str:
        if self.rrn is not None:
            return self.rrn
        return f"{self.original_class or ''}:{self.original_stan or ''}:{self.original_date or ''}"


@attrs.frozen
class OriginalOutcome:
    state: State
    txn_id: str | None = None
    action_code: str | None = None
    approved_amount: int | None = None
    currency: str | None = None
    auth_code: str | None = None
    rrn: str | None = None


@attrs.frozen
class RecordStatusQuery:
    """A query and what it was answered (`status_queries`). Result: None."""

    query: AnswerStatusQuery
    outcome: OriginalOutcome


STATUS_OPS: tuple[type, ...] = (RecordStatusQuery,)

_COLUMNS = "txn_id, state, action_code, approved_amount, currency, auth_code, rrn, received_at"
_BY_STAN = (
    f"SELECT {_COLUMNS} FROM transactions WHERE terminal_id = ? AND stan = ? "
    "AND mti_class = ? ORDER BY received_at DESC LIMIT 1"
)
# found through transactions_terminal_rrn (journal migration 16), on a reader
_BY_RRN = (
    f"SELECT {_COLUMNS} FROM transactions WHERE terminal_id = ? AND rrn = ? "
    "AND mti_class IN ('1', '2') ORDER BY received_at DESC LIMIT 1"
)
_RECORD = (
    "INSERT INTO status_queries (terminal_id, stan, asked_at, asked_by, reference, answered,"
    " original_txn_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _same_day(yymmdd: str | None, received_at: float) -> bool:
    if yymmdd is None:
        return True
    try:
        local = datetime.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return False
    utc = datetime.datetime.fromtimestamp(received_at, datetime.UTC).date()
    return abs((local - utc).days) <= DATE_SLACK_DAYS


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def outcome_of(row: Any, date: str | None) -> OriginalOutcome:
    """What the terminal is told about a row (of `_COLUMNS`), if it is the one asked for."""
    if row is None or not _same_day(date, float(row["received_at"])):
        return OriginalOutcome(UNKNOWN)
    code = _text(row["action_code"])
    state = _STATES.get(str(row["state"]))
    if state is None:  # answered locally: what the terminal heard decides
        state = APPROVED if code in ("000", "002") else DECLINED
    approved = row["approved_amount"]
    return OriginalOutcome(
        state,
        txn_id=str(row["txn_id"]),
        action_code=code,
        approved_amount=None if approved is None or state != APPROVED else int(approved),
        currency=_text(row["currency"]),
        auth_code=_text(row["auth_code"]) if state == APPROVED else None,
        rrn=_text(row["rrn"]),
    )


async def find_original(journal: Viewing, query: AnswerStatusQuery) -> OriginalOutcome:
    """The outcome of the original `query` names, among the asking terminal's rows."""
    if query.rrn is not None:
        rows = await journal.view(_BY_RRN, (query.terminal_id, query.rrn))
    elif query.original_class in QUERYABLE_CLASSES and query.original_stan is not None:
        params = (query.terminal_id, query.original_stan, query.original_class)
        rows = await journal.view(_BY_STAN, params)
    else:
        rows = []
    return outcome_of(rows[0] if rows else None, query.original_date)


def apply_status(
    op: RecordStatusQuery,
    run: Callable[[str, Sequence[object]], Cursor],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Record the query, in the caller's transaction."""
    q = op.query
    params = (q.terminal_id, q.stan, q.at, q.asked_by, q.reference, op.outcome.state)
    run(convert(_RECORD), (*params, op.outcome.txn_id))
    return None
