"""Applying write operations, once for both backends: a statement out, a result back.

Split in two because PostgreSQL sends a whole batch in pipeline mode before it
reads any result: ``send`` issues the statement of an operation through the
backend's ``Execute`` and returns its cursor; ``result`` reads what the operation
answers from that cursor (SQLite calls the two back to back).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from forecourt.switch.journal.backend import WriteOutcome
from forecourt.switch.journal.domains import DOMAIN_OPS, apply_domain
from forecourt.switch.journal.model import (
    COLUMNS,
    UPDATABLE,
    GuardState,
    JournalError,
    JournalRow,
    UnknownTransaction,
)
from forecourt.switch.journal.statements import Statements
from forecourt.switch.journal.writes import (
    AbandonSaf,
    AddEvent,
    AddOperator,
    AuditConsoleAction,
    CancelParked,
    CancelShiftParked,
    ClaimSaf,
    ClaimSplitLeg,
    ClearMacFailures,
    CloseShift,
    CompleteSaf,
    DueParked,
    EnqueueSaf,
    ExpireParked,
    FlagSaf,
    InsertTransaction,
    OpenShift,
    RecordMacFailure,
    RetryFlaggedSaf,
    RetrySaf,
    ReverseSplitGroup,
    SetSignedOn,
    SettleSplitLeg,
    TakeOverStale,
    UnlockTerminal,
    UpdateTransaction,
    WriteOp,
)


class Cursor(Protocol):
    """What both drivers' cursors offer after a statement."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


Execute = Callable[[str, Sequence[object]], Cursor]

_SHIFT_AT = COLUMNS.index("shift_id")

# The console's writes (docs/console.md): rare, so converted per call.
_RETRY_FLAGGED = (
    "UPDATE saf SET state = 'pending', next_attempt_at = ?, last_error = ? "
    "WHERE id = ? AND state = 'flagged'"
)
_ABANDON_SAF = (
    "UPDATE saf SET state = 'done', payload = x'', claimed_by = NULL, lease_until = NULL, "
    "last_error = ? WHERE id = ? AND state IN ('pending', 'flagged')"
)
_ADD_OPERATOR = (
    "INSERT INTO console_operators (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)"
)
_AUDIT_CONSOLE = (
    "INSERT INTO console_audit (at, operator, action, target, detail) VALUES (?, ?, ?, ?, ?)"
)


def db_value(name: str, value: object) -> object:
    if name == "flags":
        return ",".join(value) if isinstance(value, tuple | list) else (value or "")
    if name == "response_raw" and isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def insert_params(row: JournalRow) -> list[object]:
    """Parameters of ``INSERT_TXN``: the columns, and the terminal id again after
    ``shift_id`` for the open-shift sub-select."""
    values = [db_value(n, getattr(row, n)) for n in COLUMNS]
    values.insert(_SHIFT_AT + 1, row.terminal_id)
    return values


def saf_params(op: EnqueueSaf) -> tuple[object, ...]:
    """Parameters of ``INSERT_SAF``."""
    return (op.txn_id, op.link, op.mti, op.sealed_payload, op.next_attempt_at, op.created_at)


def update_names(changes: Sequence[str]) -> list[str]:
    names = [n for n in changes if n in UPDATABLE]
    if len(names) != len(changes):
        raise JournalError("update: unknown or read-only column")
    return names


def guard_state(r: Sequence[Any]) -> GuardState:
    """A ``terminal_guards`` row (in ``GUARD_COLUMNS`` order); SQLite's 0/1 as bools."""
    return GuardState(str(r[0]), int(r[1]), bool(r[2]), bool(r[3]), float(r[4]))


class _Applied:
    """A domain operation's result: it ran several statements, and is read back here."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.rowcount = 1

    def fetchone(self) -> Any:
        return self.value

    def fetchall(self) -> list[Any]:
        return [self.value]


def send(op: WriteOp, s: Statements, run: Execute, lock: str = "") -> Cursor | None:
    """Issue the statement of ``op``; None when there is nothing to run. A domain's
    operation (the ledger's, switch/journal/domains.py) runs whole here (``lock``:
    the backend's row lock clause)."""
    if isinstance(op, DOMAIN_OPS):
        return _Applied(apply_domain(op, run, s.convert, lock))
    match op:
        case InsertTransaction(row=row):
            return run(s.insert_txn, insert_params(row))
        case UpdateTransaction(txn_id=txn_id, changes=changes):
            names = update_names(list(changes))
            if not names:
                return None
            return run(s.update_txn(names), [*(db_value(n, changes[n]) for n in names), txn_id])
        case AddEvent(event=ev):
            return run(s.insert_event, (ev.txn_id, ev.at, ev.kind, ev.detail))
        case EnqueueSaf():
            return run(s.insert_saf + " RETURNING id", saf_params(op))
        case ClaimSaf():
            params: list[object] = [op.node, op.now + op.lease_s, op.now, op.now]
            if op.link is not None:
                params.append(op.link)
            params += [op.now, op.limit]
            return run(s.claim_saf if op.link is None else s.claim_saf_of_link, params)
        case CompleteSaf(item_id=item_id):
            return run(s.done_saf, (item_id,))
        case RetrySaf():
            return run(s.retry_saf, (op.error, op.next_attempt_at, op.item_id))
        case FlagSaf():
            return run(s.flag_saf, (op.error, op.item_id))
        case CancelParked():
            return run(s.cancel_parked, (f"cancelled: {op.reason}", op.txn_id))
        case CancelShiftParked():
            return run(s.cancel_shift_parked, (op.terminal_id, op.shift_id))
        case OpenShift():
            return run(s.open_shift, (op.terminal_id, op.shift_id, op.at, op.terminal_id))
        case CloseShift():
            totals = json.dumps(dict(op.totals), sort_keys=True)
            return run(
                s.close_shift,
                (op.terminal_id, op.shift_id, op.at, op.at, totals, bool(op.in_balance)),
            )
        case RecordMacFailure():
            return run(s.record_mac_failure, (op.terminal_id, op.lock_after, op.at, op.lock_after))
        case ClearMacFailures():
            return run(s.clear_mac_failures, (op.terminal_id, op.at))
        case UnlockTerminal():
            return run(s.unlock_terminal, (op.terminal_id, op.at))
        case SetSignedOn():
            return run(s.set_signed_off, (op.terminal_id, not op.signed_on, op.at))
        case ClaimSplitLeg():
            params = [op.terminal_id, op.group_id, op.total, op.amount, op.at, op.rank]
            return run(s.claim_split_leg, params)
        case SettleSplitLeg():
            rank = -1 if op.rank is None else op.rank
            return run(
                s.settle_split_leg,
                (
                    op.claimed_delta,
                    op.approved_delta,
                    rank,
                    rank,
                    rank,
                    op.terminal_id,
                    op.group_id,
                ),
            )
        case ReverseSplitGroup():
            return run(s.reverse_split_group, (op.terminal_id, op.group_id))
        case DueParked():
            return run(s.due_parked, (op.at, f"due: {op.reason}", op.txn_id))
        case RetryFlaggedSaf():
            note = f"retried by {op.operator}"
            return run(s.convert(_RETRY_FLAGGED), (op.at, note, op.item_id))
        case AbandonSaf():
            note = f"abandoned by {op.operator}"
            return run(s.convert(_ABANDON_SAF), (note, op.item_id))
        case AddOperator():
            return run(s.convert(_ADD_OPERATOR), (op.name, op.role, op.password_hash, op.at))
        case AuditConsoleAction():
            audit = (op.at, op.operator, op.action, op.target, op.detail)
            return run(s.convert(_AUDIT_CONSOLE), audit)
    raise JournalError(f"unknown journal operation {type(op).__name__}")


def result(op: WriteOp, cur: Cursor | None) -> object:
    """What ``op`` answers, read from the cursor ``send`` gave; raises when the
    operation missed its row (the write is undone)."""
    if isinstance(cur, _Applied):
        return cur.value
    match op:
        case UpdateTransaction(txn_id=txn_id):
            if cur is not None and cur.rowcount == 0:
                raise UnknownTransaction(f"no transaction {txn_id}")
            return None
        case EnqueueSaf():
            assert cur is not None
            got = cur.fetchone()
            assert got is not None
            return int(got[0])
        case ClaimSaf():
            assert cur is not None
            return sorted(
                (int(r[0]), r[1], r[2], r[3], bytes(r[4]), int(r[5]), float(r[6]), r[7])
                for r in cur.fetchall()
            )
        case CompleteSaf(item_id=item_id) | RetrySaf(item_id=item_id) | FlagSaf(item_id=item_id):
            if cur is not None and cur.rowcount == 0:
                raise JournalError(f"no SAF item {item_id}")
            return None
        case RetryFlaggedSaf(item_id=item_id):
            if cur is not None and cur.rowcount == 0:
                raise JournalError(f"SAF item {item_id} is not flagged")
            return None
        case AbandonSaf(item_id=item_id):
            if cur is not None and cur.rowcount == 0:
                raise JournalError(f"SAF item {item_id} is not pending or flagged")
            return None
        case TakeOverStale():
            assert cur is not None
            return [(str(r[0]), str(r[1])) for r in cur.fetchall()]
        case CancelParked() | CancelShiftParked() | DueParked() | ReverseSplitGroup():
            assert cur is not None
            return int(cur.rowcount)
        case ClaimSplitLeg():
            assert cur is not None
            claimed = cur.fetchone()
            return None if claimed is None else (int(claimed[0]), int(claimed[1]))
        case OpenShift():
            assert cur is not None
            return cur.rowcount == 1
        case ExpireParked():
            assert cur is not None
            counts = cur.fetchone()
            assert counts is not None
            return (int(counts[0]), int(counts[1]), int(counts[2]))
        case RecordMacFailure() | ClearMacFailures() | UnlockTerminal() | SetSignedOn():
            assert cur is not None
            return guard_state(cur.fetchone())
    return None


def each_write_alone(
    writes: Sequence[Sequence[WriteOp]],
    run_one: Callable[[Sequence[WriteOp]], list[object]],
    execute: Callable[[str], object],
    driver_error: type[Exception],
    wrap: Callable[[Exception], JournalError],
) -> list[WriteOutcome]:
    """The writes of a batch, each under its own savepoint inside the batch's
    transaction: a bad write is undone and fails alone, the others stay."""
    outcomes: list[WriteOutcome] = []
    for ops in writes:
        execute("SAVEPOINT one_write")
        try:
            results = run_one(ops)
        except (driver_error, JournalError) as exc:
            execute("ROLLBACK TO SAVEPOINT one_write")
            execute("RELEASE SAVEPOINT one_write")
            outcomes.append(exc if isinstance(exc, JournalError) else wrap(exc))
        else:
            execute("RELEASE SAVEPOINT one_write")
            outcomes.append(results)
    return outcomes
