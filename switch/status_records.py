"""Status queries in the journal: the outcome of one of the asking terminal's own
transactions, and a record of every query asked.

A journal domain (switch/journal/domains.py): the lookup and the query's own row are
one operation in the writer's transaction. The lookup names the asking terminal, so a
query can find nothing but that terminal's own rows: another terminal's transaction is
"unknown". The query is kept in `status_queries`, not as a transaction row (it would
enter the duplicate window, the in-flight cap, shift totals and `journal list`) and
not as an event of the original (whose history a query must not change, and which an
unknown or another terminal's transaction does not have).
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
    "State",
    "apply_status",
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
    def fetchone(self) -> Any: ...


@attrs.frozen
class AnswerStatusQuery:
    """Look up the original and record the query. Either `original_stan` (with its
    class and local date YYMMDD, from field 56) or `rrn` (field 37) names it.
    Result: `OriginalOutcome`."""

    terminal_id: str
    stan: str  # the query's own
    at: float
    original_class: str | None = None
    original_stan: str | None = None
    original_date: str | None = None  # YYMMDD
    rrn: str | None = None


@attrs.frozen
class OriginalOutcome:
    state: State
    txn_id: str | None = None
    action_code: str | None = None
    approved_amount: int | None = None
    currency: str | None = None
    auth_code: str | None = None
    rrn: str | None = None


STATUS_OPS: tuple[type, ...] = (AnswerStatusQuery,)

_COLUMNS = "txn_id, state, action_code, approved_amount, currency, auth_code, rrn, received_at"
_BY_STAN = (
    f"SELECT {_COLUMNS} FROM transactions WHERE terminal_id = ? AND stan = ? "
    "AND mti_class = ? ORDER BY received_at DESC LIMIT 1"
)
# no index on rrn: the terminal's rows (transactions_terminal_key) are read for a
# message that is rare, rather than every purchase paying for one more index
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


def outcome_of(row: Sequence[Any] | None, date: str | None) -> OriginalOutcome:
    """What the terminal is told about a row (in `_COLUMNS` order), if it is the one asked for."""
    if row is None or not _same_day(date, float(row[7])):
        return OriginalOutcome(UNKNOWN)
    code = None if row[2] is None else str(row[2])
    state = _STATES.get(str(row[1]))
    if state is None:  # answered locally: what the terminal heard decides
        state = APPROVED if code in ("000", "002") else DECLINED
    approved = None if row[3] is None or state != APPROVED else int(row[3])
    return OriginalOutcome(
        state,
        txn_id=str(row[0]),
        action_code=code,
        approved_amount=approved,
        currency=None if row[4] is None else str(row[4]),
        auth_code=None if row[5] is None or state != APPROVED else str(row[5]),
        rrn=None if row[6] is None else str(row[6]),
    )


def apply_status(
    op: AnswerStatusQuery,
    run: Callable[[str, Sequence[object]], Cursor],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Run the lookup and record the query, in the caller's transaction."""
    if op.rrn is not None:
        row = run(convert(_BY_RRN), (op.terminal_id, op.rrn)).fetchone()
        asked_by, reference, date = "rrn", op.rrn, None
    elif op.original_class in QUERYABLE_CLASSES and op.original_stan is not None:
        params = (op.terminal_id, op.original_stan, op.original_class)
        row = run(convert(_BY_STAN), params).fetchone()
        asked_by = "stan"
        reference = f"{op.original_class}:{op.original_stan}:{op.original_date or ''}"
        date = op.original_date
    else:
        row, asked_by, date = None, "stan", None
        reference = f"{op.original_class or ''}:{op.original_stan or ''}"
    outcome = outcome_of(row, date)
    answered = outcome.state
    run(
        convert(_RECORD),
        (op.terminal_id, op.stan, op.at, asked_by, reference, answered, outcome.txn_id),
    )
    return outcome
