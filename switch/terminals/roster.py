"""Each terminal's cashier and registration as this process knows them, kept from
the journal so the hot path reads memory only.

The journal owns the facts (switch/terminals/ops.py); this roster reads them all at
start and, like the terminal guard, follows every node's changes each `every_s`. A
change made here is one write whose result is cached at once, so the terminal
that signed a cashier on sees it on its next request at this node; at another node,
within the watch period. A terminal made pending by `forecourt terminals add-pending`
is refused financial requests until it registers.
"""

from __future__ import annotations

import time

import structlog
import trio
from forecourt.codecs.message import Message
from forecourt.codecs.mti import is_advice, mti_class
from forecourt.switch.journal import Journal
from forecourt.switch.terminal_guard import TerminalRefused

from .metrics import TerminalMetrics
from .ops import CashierSignOff, CashierSignOn, CashierState, RecordDeviceStatus

__all__ = ["NoOperator", "NotRegistered", "TerminalRoster", "needs_operator"]

log = structlog.get_logger("forecourt.terminals")

_OPERATORS_SINCE = (
    "SELECT terminal_id, operator_id, updated_at FROM terminal_operators WHERE updated_at >= ?"
)
_REGISTRATIONS_SINCE = (
    "SELECT terminal_id, state, updated_at FROM terminal_registrations WHERE updated_at >= ?"
)
_DEVICES_SINCE = (
    "SELECT terminal_id, status, reported_at FROM terminal_devices WHERE reported_at >= ?"
)


class NoOperator(TerminalRefused):
    """The group requires a cashier and none is signed on: 120 / 58."""


class NotRegistered(TerminalRefused):
    """The terminal is pending its online registration: 109 / 03."""


def needs_operator(request: Message) -> bool:
    """A financial request (an authorisation or a purchase, class 1 or 2, not an advice):
    the money a cashier answers for. Advices (the fuel is in the tank), reversals and
    shift closes are never refused for want of a cashier."""
    return mti_class(request.mti) in ("1", "2") and not is_advice(request.mti)


class TerminalRoster:
    """Who is signed on at each terminal, which terminals wait for registration."""

    def __init__(self, journal: Journal, metrics: TerminalMetrics) -> None:
        self.journal = journal
        self.metrics = metrics
        self._operators: dict[str, str] = {}
        self._pending: set[str] = set()
        self._seen = 0.0
        # argon2 verifications of activation codes, one at a time in this process
        self.verifications = trio.CapacityLimiter(1)

    # -- the hot path ------------------------------------------------------------

    def operator_of(self, terminal_id: str) -> str | None:
        return self._operators.get(terminal_id)

    def check(self, request: Message, terminal_id: str, require_operator: bool) -> None:
        """Refuse a pending terminal's request, or a financial one without a cashier
        where the group requires one. Two dictionary lookups; no database read."""
        if self._pending and terminal_id in self._pending:
            raise NotRegistered(terminal_id)
        if require_operator and terminal_id not in self._operators and needs_operator(request):
            raise NoOperator(terminal_id)

    # -- following the journal -----------------------------------------------------

    async def load(self) -> None:
        await self._catch_up(0.0)

    async def watch(self, every_s: float = 2.0, overlap_s: float = 5.0) -> None:
        """Follow other nodes' and workers' changes until cancelled (reads back
        `overlap_s`: the nodes' clocks stamp the rows, and a change read twice is
        harmless)."""
        while True:
            await trio.sleep(every_s)
            await self._catch_up(max(0.0, self._seen - overlap_s))

    async def _catch_up(self, since: float) -> None:
        for r in await self.journal.view(_OPERATORS_SINCE, (since,)):
            self._cashier(r["terminal_id"], r["operator_id"], float(r["updated_at"]))
        for r in await self.journal.view(_REGISTRATIONS_SINCE, (since,)):
            self.registration_changed(r["terminal_id"], str(r["state"]))
            self._seen = max(self._seen, float(r["updated_at"]))
        for r in await self.journal.view(_DEVICES_SINCE, (since,)):
            try:
                self.metrics.show_devices(r["terminal_id"], str(r["status"]))
            except ValueError:
                log.warning("device_status_unreadable", terminal_id=r["terminal_id"])
            self._seen = max(self._seen, float(r["reported_at"]))

    def _cashier(self, terminal_id: str, operator_id: str | None, at: float) -> None:
        if operator_id is None:
            self._operators.pop(terminal_id, None)
        else:
            self._operators[terminal_id] = operator_id
        self._seen = max(self._seen, at)

    def registration_changed(self, terminal_id: str, state: str) -> None:
        if state == "registered":
            self._pending.discard(terminal_id)
        else:
            self._pending.add(terminal_id)

    def is_pending(self, terminal_id: str) -> bool:
        return terminal_id in self._pending

    # -- changing ----------------------------------------------------------------

    async def sign_on(self, terminal_id: str, operator_id: str) -> str | None:
        """Sign `operator_id` on; the cashier it replaced, if any (as this node knew)."""
        previous = self._operators.get(terminal_id)
        (state,) = await self.journal.write(CashierSignOn(terminal_id, operator_id, time.time()))
        assert isinstance(state, CashierState)
        self._cashier(terminal_id, state.operator_id, state.updated_at)
        return previous if previous != operator_id else None

    async def sign_off(self, terminal_id: str) -> str | None:
        """Sign the terminal's cashier off; who was signed on (None: nobody)."""
        (result,) = await self.journal.write(CashierSignOff(terminal_id, time.time()))
        assert isinstance(result, tuple)
        state, previous = result
        self._cashier(terminal_id, None, state.updated_at)
        return None if previous is None else str(previous)

    async def devices_reported(self, terminal_id: str, status: str) -> None:
        """Journal the report (a valid 48-18), then show it in the gauges."""
        await self.journal.write(RecordDeviceStatus(terminal_id, status, time.time()))
        self.metrics.show_devices(terminal_id, status)
