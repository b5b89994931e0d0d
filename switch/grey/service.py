"""The IC card service the flows use: card references, TAC check, journal writes,
and the task that flags grey records left open for manual handling.

Built once per switch process when `[ic_cards] enabled`; `run` lives in the
switch's outer nursery like a ledger's hold-release task.
"""

from __future__ import annotations

import contextlib
import time

import structlog
import trio
from forecourt.keys.lmk import Lmk
from forecourt.switch.config import SwitchConfig
from forecourt.switch.config_ic_cards import IcCardsConfig
from forecourt.switch.journal import Journal, JournalError
from forecourt.switch.ledger import card_reference
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.repeated_warnings import RepeatedWarnings

from .metrics import GreyMetrics
from .ops import GreyCounts, GreyFlagStale, GreyOp
from .tac import TAC_CHECKS, TacCheck

__all__ = ["GreyUnavailable", "IcCards", "build_ic_cards"]

log = structlog.get_logger("forecourt.ic_cards")

_ATTEMPTS = 3  # a write undone as a PostgreSQL deadlock's or key race's victim is tried again


class GreyUnavailable(Exception):
    """The journal refused a grey write three times: the terminal hears 909 and repeats."""


class IcCards:
    def __init__(
        self,
        config: IcCardsConfig,
        journal: Journal,
        card_key: bytes,
        metrics: GreyMetrics,
        node: str,
        tac_check: TacCheck,
    ) -> None:
        self.config = config
        self.journal = journal
        self._card_key = card_key
        self.metrics = metrics
        self.node = node
        self.tac_check = tac_check
        self.warnings = RepeatedWarnings(log)
        self.flagged = 0  # records this node flagged

    def card_ref(self, pan: str) -> str:
        """The ledger's reference of the card: the grey records never hold the PAN."""
        return card_reference(self._card_key, pan)

    async def write(self, op: GreyOp) -> object:
        for attempt in range(_ATTEMPTS):
            try:
                (result,) = await self.journal.write(op)
                return result
            except JournalError as exc:
                if attempt == _ATTEMPTS - 1:
                    log.error("grey_write_failed", op=type(op).__name__, error=str(exc))
                    raise GreyUnavailable(type(op).__name__) from None
                await trio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def flag_stale(self, now: float | None = None) -> int:
        """Flag every record open longer than `grey_record_max_age_s`; the gauges after."""
        at = time.time() if now is None else now
        total = 0
        while True:
            n = await self.write(GreyFlagStale(at - self.config.grey_record_max_age_s, at))
            assert isinstance(n, int)
            total += n
            if n < GreyFlagStale(0.0, 0.0).limit:
                break
        if total:
            log.warning(
                "grey_records_flagged", flagged=total, max_age_s=self.config.grey_record_max_age_s
            )
        self.flagged += total
        await self.refresh_gauges()
        return total

    async def refresh_gauges(self) -> None:
        counts = await self.write(GreyCounts())
        assert isinstance(counts, dict)
        for state in ("open", "flagged"):
            self.metrics.records.labels(state=state).set(counts.get(state, 0))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flag stale records every `check_interval_s`; write held-back warnings."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.warnings.run)
            task_status.started()
            while True:
                with contextlib.suppress(GreyUnavailable):  # logged; next round again
                    await self.flag_stale()
                await trio.sleep(self.config.check_interval_s)


def build_ic_cards(
    config: SwitchConfig, journal: Journal, lmk: Lmk, metrics: SwitchMetrics
) -> IcCards | None:
    """The service when `[ic_cards] enabled`; None otherwise (the flows then answer
    "function not supported")."""
    if not config.ic_cards.enabled:
        return None
    from forecourt.switch.authorisers.ledger import ledger_card_key

    return IcCards(
        config.ic_cards,
        journal,
        ledger_card_key(lmk),
        GreyMetrics.on(metrics.registry),
        config.node,
        TAC_CHECKS[config.ic_cards.tac_check](),
    )
