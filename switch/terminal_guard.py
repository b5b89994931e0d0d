"""A terminal's standing: is it known, does its MAC verify, is it locked, signed on.

One owner for these facts: the journal's `terminal_guards` table, so a lock or
a sign-off holds across a restart, every worker of `serve --workers` and every
node. A terminal is locked (917) after N MAC failures in a row until a proven
sign-on delivers new keys (a key change, under the suspect TAK, is refused while
locked); a sign-off ends its signed-on state and financial
requests are declined until the next sign-on. A terminal never seen signing off
counts as signed on: its keys were delivered at registration.

The guard reads its view at start and, with other nodes, every `watch_s`; a check
on the hot path costs no database read, and a change (a failure, a sign-on or
off, a key change: all rare) is one write whose result is the new standing.
"""

from __future__ import annotations

import enum
import time

import attrs
import structlog
import trio
from forecourt.codecs.dialect import mac_input
from forecourt.codecs.message import Message
from forecourt.switch.context import TerminalKeys, TerminalPolicy
from forecourt.switch.journal import (
    ClearMacFailures,
    GuardState,
    Journal,
    RecordMacFailure,
    SetSignedOn,
    UnlockTerminal,
    WriteOp,
)
from forecourt.switch.metrics import SwitchMetrics

log = structlog.get_logger("forecourt.terminal_guard")


class TerminalRefused(Exception):
    """Base of the reasons a terminal's request is refused before any flow runs."""


class UnknownTerminal(TerminalRefused):
    """The terminal is not in its group or not registered: declined 109/03."""


class MacMismatch(TerminalRefused):
    """The MAC does not verify under any acceptable TAK: 916 / A0."""


class MacKeySyncError(TerminalRefused):
    """No acceptable TAK (expired, retired, or locked after failures): 917 / A0."""


class NotSignedOn(TerminalRefused):
    """The terminal signed off: 120 / 58 until it signs on again."""


class Proof(enum.Enum):
    """The key a request's MAC must be under.

    TAK: the terminal's current TAK or one in its grace window (requests, and a key
    change). SIGN_ON_KEY: the key derived from its KEK (`forecourt.keys.sign_on`),
    which a sign-on carries: the one request a terminal without a usable TAK can
    still prove.
    """

    TAK = "tak"
    SIGN_ON_KEY = "sign_on_key"


@attrs.frozen
class Standing:
    """What the guard knows of one terminal."""

    mac_failures: int = 0
    locked: bool = False
    signed_off: bool = False


_CLEAN = Standing()


class TerminalGuard:
    """Checks a terminal's requests against its standing, and changes the standing."""

    def __init__(self, keys: TerminalKeys, metrics: SwitchMetrics, journal: Journal) -> None:
        self._keys = keys
        self._metrics = metrics
        self._journal = journal
        self._standing: dict[str, Standing] = {}
        self._seen = 0.0  # the newest change read from the journal
        # DUKPT PIN pads' MACs are under keys derived per request (switch/dukpt_terminals)
        self.dukpt = getattr(keys, "dukpt", None)

    # -- following the journal -------------------------------------------------

    async def load(self) -> int:
        """Read every terminal's standing (at start); the number of terminals read."""
        return self._take(await self._journal.guards_since(0.0))

    async def watch(self, every_s: float = 2.0, overlap_s: float = 5.0) -> None:
        """Follow changes made at other nodes and workers, until cancelled.

        Reads back `overlap_s` before the newest change seen: the nodes' clocks stamp
        the rows, and reading a change twice does no harm.
        """
        while True:
            await trio.sleep(every_s)
            self._take(await self._journal.guards_since(max(0.0, self._seen - overlap_s)))

    def _take(self, states: list[GuardState]) -> int:
        for state in states:
            self._cache(state)
        return len(states)

    def _cache(self, state: GuardState) -> None:
        standing = Standing(state.mac_failures, state.locked, state.signed_off)
        if standing == _CLEAN:
            self._standing.pop(state.terminal_id, None)
        else:
            self._standing[state.terminal_id] = standing
        self._seen = max(self._seen, state.updated_at)

    # -- reading ---------------------------------------------------------------

    def standing(self, terminal_id: str) -> Standing:
        return self._standing.get(terminal_id, _CLEAN)

    def check_known(self, policy: TerminalPolicy, terminal_id: str) -> None:
        if policy.terminals is not None:
            if terminal_id not in policy.terminals:
                raise UnknownTerminal(terminal_id)
        elif not self._keys.is_known(terminal_id):
            raise UnknownTerminal(terminal_id)

    def check_signed_on(self, terminal_id: str) -> None:
        if self.standing(terminal_id).signed_off:
            raise NotSignedOn(terminal_id)

    async def check_mac(
        self,
        policy: TerminalPolicy,
        request: Message,
        terminal_id: str,
        bound: structlog.typing.FilteringBoundLogger,
        proof: Proof | None = None,
    ) -> None:
        """Raise MacMismatch or MacKeySyncError unless the MAC verifies.

        `proof`: a MAC the flow requires whatever the group says (None: an ordinary
        request, under the TAK). Under the TAK a locked terminal is refused whatever
        it sends; under the sign-on key (`Proof.SIGN_ON_KEY`) it is not: a proven
        sign-on is how the terminal holding the KEK ends its lock. A proof's key is
        looked up even when no MAC came (a terminal the key store does not know is
        109 / 03, not a MAC failure). A failure counts towards the lock either way.
        """
        standing = self.standing(terminal_id)
        if standing.locked and proof is not Proof.SIGN_ON_KEY:
            bound.warning("terminal_locked_mac_failures")
            raise MacKeySyncError(terminal_id)
        mac_hex = request.fields.get("128") or request.fields.get("64")
        raw = request.raw
        try:
            mac = bytes.fromhex(mac_hex) if mac_hex is not None else b""
        except ValueError:
            mac = b""
        if raw is None or (not mac and proof is None):
            verdict = "mismatch"
        elif policy.dukpt is not None and self.dukpt is not None:
            # every proof of a DUKPT terminal is its MAC under the request's KSN
            verdict = await self.dukpt.verify(
                policy.dukpt, request, terminal_id, mac_input(raw), mac, bound
            )
        elif proof is Proof.SIGN_ON_KEY:
            verdict = await self._keys.verify_sign_on(
                terminal_id, mac_input(raw), mac, request.fields.get("7")
            )
        else:
            verdict = await self._keys.verify(terminal_id, mac_input(raw), mac)
        if verdict == "ok":
            if standing.mac_failures and proof is not Proof.SIGN_ON_KEY:
                await self._write(ClearMacFailures(terminal_id, time.time()))
            return
        self._metrics.mac_failures.labels(side="terminal").inc()
        if verdict == "key_sync":
            bound.warning("mac_key_sync_error")
            raise MacKeySyncError(terminal_id)
        # counted in the journal: failures at every node and worker add up
        state = await self._write(
            RecordMacFailure(terminal_id, policy.mac_failures_before_lock, time.time())
        )
        failures = state.mac_failures if state is not None else standing.mac_failures + 1
        bound.warning("mac_mismatch", failures=failures, proof=proof.value if proof else "tak")
        if state is not None and state.locked and not standing.locked:
            bound.error("terminal_locked_until_key_change", failures=failures)
        raise MacMismatch(terminal_id)

    # -- changing --------------------------------------------------------------

    async def keys_delivered(self, terminal_id: str) -> None:
        """New working keys went out (sign-on or key change): the lock ends. Written
        whatever this node's view, which may not know another node's failures yet."""
        await self._write(UnlockTerminal(terminal_id, time.time()))

    async def signed_on(self, terminal_id: str) -> None:
        await self._write(SetSignedOn(terminal_id, True, time.time()))

    async def signed_off(self, terminal_id: str) -> None:
        await self._write(SetSignedOn(terminal_id, False, time.time()))

    async def _write(self, op: WriteOp) -> GuardState | None:
        (state,) = await self._journal.write(op)
        if isinstance(state, GuardState):
            self._cache(state)
            return state
        return None
