"""A terminal's standing: is it known, does its MAC verify, is it locked, signed on.

One owner for these facts. A terminal is locked (917) after N MAC failures in a
row until a key change or sign-on delivers new keys; a sign-off ends its
signed-on state and financial requests are declined until the next sign-on. A
terminal never seen signing off counts as signed on: its keys were delivered at
registration.
"""

from __future__ import annotations

import attrs
import structlog
from forecourt.codecs.dialect import mac_input
from forecourt.codecs.message import Message
from forecourt.switch.context import TerminalKeys, TerminalPolicy
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


@attrs.frozen
class Standing:
    """What the guard knows of one terminal."""

    mac_failures: int = 0
    locked: bool = False
    signed_off: bool = False


_CLEAN = Standing()


class TerminalGuard:
    """Checks a terminal's requests against its standing, and changes the standing."""

    def __init__(self, keys: TerminalKeys, metrics: SwitchMetrics) -> None:
        self._keys = keys
        self._metrics = metrics
        self._standing: dict[str, Standing] = {}

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
    ) -> None:
        """Raise MacMismatch or MacKeySyncError unless the MAC verifies."""
        standing = self.standing(terminal_id)
        if standing.locked:
            bound.warning("terminal_locked_mac_failures")
            raise MacKeySyncError(terminal_id)
        mac_hex = request.fields.get("128") or request.fields.get("64")
        raw = request.raw
        if mac_hex is None or raw is None:
            verdict = "mismatch"
        else:
            try:
                mac = bytes.fromhex(mac_hex)
            except ValueError:
                verdict = "mismatch"
            else:
                verdict = await self._keys.verify(terminal_id, mac_input(raw), mac)
        if verdict == "ok":
            if standing.mac_failures:
                await self._set(terminal_id, attrs.evolve(standing, mac_failures=0))
            return
        self._metrics.mac_failures.labels(side="terminal").inc()
        if verdict == "key_sync":
            bound.warning("mac_key_sync_error")
            raise MacKeySyncError(terminal_id)
        failures = standing.mac_failures + 1
        locked = failures >= policy.mac_failures_before_lock
        await self._set(terminal_id, attrs.evolve(standing, mac_failures=failures, locked=locked))
        bound.warning("mac_mismatch", failures=failures)
        if locked:
            bound.error("terminal_locked_until_key_change", failures=failures)
        raise MacMismatch(terminal_id)

    # -- changing --------------------------------------------------------------

    async def keys_delivered(self, terminal_id: str) -> None:
        """New working keys went out (sign-on or key change): the lock ends."""
        standing = self.standing(terminal_id)
        if standing.mac_failures or standing.locked:
            await self._set(terminal_id, attrs.evolve(standing, mac_failures=0, locked=False))

    async def signed_on(self, terminal_id: str) -> None:
        standing = self.standing(terminal_id)
        if standing.signed_off:
            await self._set(terminal_id, attrs.evolve(standing, signed_off=False))

    async def signed_off(self, terminal_id: str) -> None:
        await self._set(terminal_id, attrs.evolve(self.standing(terminal_id), signed_off=True))

    async def _set(self, terminal_id: str, standing: Standing) -> None:
        if standing == _CLEAN:
            self._standing.pop(terminal_id, None)
        else:
            self._standing[terminal_id] = standing
