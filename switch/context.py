"""What a listener tells the pipeline about where a frame came from, and what comes back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs
from forecourt.codecs.dialect import Dialect
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.switch.config_dukpt import DukptGroup
from forecourt.switch.params.catalogue import ParamsCatalogue
from forecourt.switch.stand_in import StandInPolicy
from forecourt.switch.transaction import TxnRecord

if TYPE_CHECKING:
    from forecourt.keys.security_module import SecurityModule
    from forecourt.switch.grey.service import IcCards


class MacGenerator(Protocol):
    """A terminal's TAK keyring: the MAC of an answer, computed in the security module."""

    async def generate_in(self, module: SecurityModule, data: bytes) -> bytes: ...


class TerminalKeys(Protocol):
    """What the pipeline needs of the key store (see switch/terminal_keys)."""

    @property
    def module(self) -> SecurityModule:
        """The switch's security module: every MAC and PIN operation goes through it."""
        ...

    def is_known(self, terminal_id: str) -> bool: ...

    async def verify(self, terminal_id: str, data: bytes, mac: bytes) -> str: ...

    async def answer_mac(self, terminal_id: str) -> MacGenerator | None: ...

    async def verify_sign_on(
        self, terminal_id: str, data: bytes, mac: bytes, sent_at: str | None = None
    ) -> str: ...

    async def sign_on(self, terminal_id: str, family: Family) -> tuple[int, str] | None: ...

    async def pin_upstream(self, message: Message, terminal_id: str, link: str) -> Message: ...


class SafWaker(Protocol):
    def wake(self) -> None: ...


@attrs.frozen
class TerminalPolicy:
    """The terminal group's rules, as the pipeline applies them."""

    terminals: frozenset[str] | None  # None: the key store's registry decides
    mac_required: bool
    max_in_flight: int = 16
    mac_failures_before_lock: int = 5
    # field 7 this far from the switch's clock is refused (902/12); 0: not checked
    transmission_tolerance_s: float = 600.0
    # a financial request with no cashier signed on is refused 120 / 58
    require_operator: bool = False
    # a group of DUKPT PIN pads (switch/dukpt_terminals.py); None: TAK/TPK terminals
    dukpt: DukptGroup | None = None


@attrs.frozen
class ListenerContext:
    name: str
    dialect: Dialect
    policy: TerminalPolicy


@attrs.frozen
class Reply:
    """An encoded answer, and the transaction to reverse if it cannot be delivered.

    With a record, the session calls `Pipeline.settle` once it has tried to deliver
    it: until then the request is in flight, and its copies wait.

    `accepted`: the frame passed its flow's checks for a known terminal. Only such
    frames keep a connection open (first-frame and idle deadlines, session.py); a
    refusal, a format error or an answer to no terminal does not, so a connection
    that sends only those cannot hold a listener's slot.
    """

    payload: bytes
    record: TxnRecord | None = None
    answer: Message | None = None
    accepted: bool = False

    def accepting(self) -> Reply:
        return attrs.evolve(self, accepted=True)


@attrs.frozen
class PipelineSettings:
    reverse_on_disconnect: bool = True
    preauth_window_s: float = 1800.0
    # Ask the journal about keys not in the in-memory window (several nodes share
    # one journal); a single node warms the window at start instead.
    duplicates_from_journal: bool = False
    # `[stand_in]`: None or off, an unavailable acquirer is answered 912/911 as ever
    stand_in: StandInPolicy | None = None
    # parameter downloads and the sign-on answer's version hint (switch/params/)
    params: ParamsCatalogue = attrs.field(factory=ParamsCatalogue)
    # `[ic_cards]`: None when off, and the IC card flows answer "function not supported"
    ic_cards: IcCards | None = None
