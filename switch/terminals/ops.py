"""The journal write operations of a terminal's cashier, registration and devices.

Each is one database transaction's worth, applied whole by `apply_terminals` in the
journal writer's transaction (switch/journal/domains.py), so a check and the change
it allows (a one-time code taken, a failure counted) never split between two nodes.
"""

from __future__ import annotations

import attrs

__all__ = [
    "TERMINAL_OPS",
    "CashierSignOff",
    "CashierSignOn",
    "CashierState",
    "CompleteRegistration",
    "CountRegistrationFailure",
    "FailureCount",
    "IssueActivation",
    "RecordDeviceStatus",
    "TerminalOp",
]


@attrs.frozen
class CashierState:
    """The cashier signed on at a terminal (None: nobody), as every node must see it."""

    terminal_id: str
    operator_id: str | None
    signed_on_at: float | None
    updated_at: float


@attrs.frozen
class CashierSignOn:
    """A cashier signs on (replacing whoever was signed on). Result: `CashierState`."""

    terminal_id: str
    operator_id: str
    at: float


@attrs.frozen
class CashierSignOff:
    """The terminal's cashier signs off. Result: `CashierState` (operator None) and
    who it was, as `(state, previous operator id or None)`."""

    terminal_id: str
    at: float


@attrs.frozen
class IssueActivation:
    """A pending terminal with a new one-time activation code (its argon2 hash only):
    replaces any earlier registration of the terminal, failures reset. Result: None."""

    terminal_id: str
    code_hash: str
    expected_serial: str | None
    expires_at: float
    max_attempts: int
    at: float
    actor: str


@attrs.frozen
class CompleteRegistration:
    """Bind `serial` to the terminal if its registration is still pending, unexpired
    and under the code `code_hash` the caller verified: a compare-and-set, so a code
    races to one use. Result: True when this operation registered it."""

    terminal_id: str
    code_hash: str
    serial: str
    at: float


@attrs.frozen
class FailureCount:
    failures: int
    locked: bool


@attrs.frozen
class CountRegistrationFailure:
    """A wrong code or serial: one more failure; at `max_attempts` the registration is
    locked until a new code is issued. Result: `FailureCount` (None: nothing pending)."""

    terminal_id: str
    at: float


@attrs.frozen
class RecordDeviceStatus:
    """The devices' state a terminal last reported (48-18). Result: None."""

    terminal_id: str
    status: str
    at: float


TerminalOp = (
    CashierSignOn
    | CashierSignOff
    | IssueActivation
    | CompleteRegistration
    | CountRegistrationFailure
    | RecordDeviceStatus
)
TERMINAL_OPS: tuple[type, ...] = (
    CashierSignOn,
    CashierSignOff,
    IssueActivation,
    CompleteRegistration,
    CountRegistrationFailure,
    RecordDeviceStatus,
)
