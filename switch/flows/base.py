"""What a flow is: its declared rules and the coroutine that answers one request.

A flow declares what the pipeline checks before it runs (a MAC, a signed-on
terminal, an open shift) and whether it parks a reversal; the pipeline enforces
the declarations, so a flow module holds only what its message class does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import attrs
import structlog
from forecourt.codecs.message import Message
from forecourt.switch.authoriser import Authoriser
from forecourt.switch.context import ListenerContext, PipelineSettings, TerminalKeys
from forecourt.switch.journal import Journal
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.routing import Router
from forecourt.switch.terminal_guard import Proof, TerminalGuard
from forecourt.switch.terminals.roster import TerminalRoster
from forecourt.switch.transaction import TxnRecord

# A parked reversal waits this long unless something makes it due sooner
# (beyond the journal's PARKED_HORIZON_S, so it is not counted as SAF work).
PARKED_S = 10 * 365 * 86400.0


@attrs.frozen
class FlowRules:
    """What the pipeline does around a flow.

    journalled: a transaction row, duplicate detection, the terminal's in-flight cap
    (network management and refused classes are answered without one).
    """

    name: str
    needs_terminal: bool = True  # field 41 must be present (an echo may come without)
    needs_mac: bool = True  # when the terminal group requires MACs
    needs_signed_on: bool = True
    needs_shift: bool = False
    parks_reversal: bool = False
    journalled: bool = True
    mac_answer: bool = True  # network management answers carry keys, not a MAC
    # A MAC required whatever the group says, and the key it must be under: key
    # management (sign-on, key change) must be proven even where requests need no MAC.
    proof: Proof | None = None
    # field 7 within the terminal group's tolerance (switch/transmission_time.py); not
    # for reversals, completions and shift closes, which a terminal may send late from SAF
    checks_transmission_time: bool = False
    # taken from a terminal still pending its online registration (the registration
    # itself); every other flow refuses such a terminal 109 / 03 (switch/terminals/)
    before_registration: bool = False


@attrs.frozen
class Services:
    """What flows may use; built once per switch process."""

    router: Router
    authorisers: Mapping[str, Authoriser]
    journal: Journal
    keys: TerminalKeys
    guard: TerminalGuard
    metrics: SwitchMetrics
    settings: PipelineSettings
    node: str
    # each terminal's cashier and registration, its devices' gauges (switch/terminals/)
    roster: TerminalRoster


@attrs.frozen
class Job:
    """One request in a flow's hands. `record` is None for flows not journalled."""

    ctx: ListenerContext
    request: Message
    record: TxnRecord | None
    log: structlog.typing.FilteringBoundLogger
    services: Services

    @property
    def txn(self) -> TxnRecord:
        if self.record is None:
            raise TypeError("this flow is not journalled")
        return self.record


RunFlow = Callable[[Job], Awaitable[Message]]


@attrs.frozen
class Flow:
    rules: FlowRules
    run: RunFlow = attrs.field(repr=False)
