"""How the terminal operations run in the journal writer's transaction, on both backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .ops import (
    CashierSignOff,
    CashierSignOn,
    CashierState,
    CompleteRegistration,
    CountRegistrationFailure,
    FailureCount,
    IssueActivation,
    RecordDeviceStatus,
    TerminalOp,
)

__all__ = ["apply_terminals"]


class Cursor(Protocol):
    def fetchone(self) -> Any: ...


_CASHIER = (
    "INSERT INTO terminal_operators (terminal_id, operator_id, signed_on_at, updated_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (terminal_id) DO UPDATE SET "
    "operator_id = excluded.operator_id, signed_on_at = excluded.signed_on_at, "
    "updated_at = excluded.updated_at"
)
_CASHIER_OF = "SELECT operator_id FROM terminal_operators WHERE terminal_id = ?"
_ISSUE = (
    "INSERT INTO terminal_registrations (terminal_id, state, code_hash, expected_serial, "
    "serial, max_attempts, failures, last_failure_at, created_at, created_by, expires_at, "
    "registered_at, updated_at) VALUES (?, 'pending', ?, ?, NULL, ?, 0, NULL, ?, ?, ?, NULL, ?) "
    "ON CONFLICT (terminal_id) DO UPDATE SET state = 'pending', code_hash = excluded.code_hash, "
    "expected_serial = excluded.expected_serial, serial = NULL, "
    "max_attempts = excluded.max_attempts, failures = 0, last_failure_at = NULL, "
    "created_at = excluded.created_at, created_by = excluded.created_by, "
    "expires_at = excluded.expires_at, registered_at = NULL, updated_at = excluded.updated_at"
)
_COMPLETE = (
    "UPDATE terminal_registrations SET state = 'registered', serial = ?, registered_at = ?, "
    "updated_at = ? WHERE terminal_id = ? AND state = 'pending' AND code_hash = ? "
    "AND expires_at > ? RETURNING terminal_id"
)
_FAIL = (
    "UPDATE terminal_registrations SET failures = failures + 1, last_failure_at = ?, "
    "updated_at = ?, state = CASE WHEN failures + 1 >= max_attempts AND state = 'pending' "
    "THEN 'locked' ELSE state END WHERE terminal_id = ? RETURNING failures, state"
)
_DEVICES = (
    "INSERT INTO terminal_devices (terminal_id, status, reported_at) VALUES (?, ?, ?) "
    "ON CONFLICT (terminal_id) DO UPDATE SET status = excluded.status, "
    "reported_at = excluded.reported_at"
)


def apply_terminals(
    op: TerminalOp,
    run: Callable[[str, Sequence[object]], Cursor],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Run one terminal operation in the caller's transaction; its result."""

    def sql(statement: str, params: Sequence[object]) -> Cursor:
        return run(convert(statement), params)

    match op:
        case CashierSignOn():
            sql(_CASHIER, (op.terminal_id, op.operator_id, op.at, op.at))
            return CashierState(op.terminal_id, op.operator_id, op.at, op.at)
        case CashierSignOff():
            row = sql(_CASHIER_OF + lock, (op.terminal_id,)).fetchone()
            previous = None if row is None else row[0]
            sql(_CASHIER, (op.terminal_id, None, None, op.at))
            return CashierState(op.terminal_id, None, None, op.at), previous
        case IssueActivation():
            sql(
                _ISSUE,
                (
                    op.terminal_id,
                    op.code_hash,
                    op.expected_serial,
                    op.max_attempts,
                    op.at,
                    op.actor,
                    op.expires_at,
                    op.at,
                ),
            )
            return None
        case CompleteRegistration():
            params = (op.serial, op.at, op.at, op.terminal_id, op.code_hash, op.at)
            return sql(_COMPLETE, params).fetchone() is not None
        case CountRegistrationFailure():
            row = sql(_FAIL, (op.at, op.at, op.terminal_id)).fetchone()
            return None if row is None else FailureCount(int(row[0]), row[1] == "locked")
        case RecordDeviceStatus():
            sql(_DEVICES, (op.terminal_id, op.status, op.at))
            return None
