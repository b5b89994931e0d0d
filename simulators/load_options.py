"""What a load run is asked to do: terminals, pace, duration and the request mix.

Frozen values read from the command line or a mix file, so a run (and each
worker process's share of it) is fully described before any socket opens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from ._toml import SimConfigError, Table, load_toml
from .templates import DEFAULT_TEST_PAN
from .wire import WireFormat

__all__ = [
    "MIX_TEMPLATES",
    "TEST_PAN",
    "LoadOptions",
    "MixEntry",
    "load_mix",
]

MIX_TEMPLATES = ("purchase", "preauth", "echo", "reversal")
TEST_PAN = DEFAULT_TEST_PAN


@attrs.frozen
class MixEntry:
    """One kind of request in the mix, drawn with probability weight / total."""

    template: str = "purchase"
    weight: float = 1.0
    pans: tuple[str, ...] = (TEST_PAN,)
    amount_min: int = 1000
    amount_max: int = 1000
    # wallet sales: these payment codes (ifsf 48-60) instead of the PANs
    payment_codes: tuple[str, ...] = ()

    @property
    def instruments(self) -> tuple[str, ...]:
        """What each request of the entry pays with: its payment codes, else its PANs."""
        return self.payment_codes or self.pans


@attrs.frozen
class LoadOptions:
    """One load run; `rate` (open loop) or `concurrency` (closed loop)."""

    host: str
    port: int
    wire: WireFormat
    terminals: int = 10
    duration_s: float = 10.0
    rate: float | None = None
    concurrency: int | None = None
    mix: tuple[MixEntry, ...] = (MixEntry(),)
    timeout_s: float = 10.0
    terminal_prefix: str = "L"
    first_terminal: int = 1
    merchant_id: str = "FORECOURTLOAD01"
    # terminal id -> MAC function; None: requests go without a MAC.
    macs: Mapping[str, Callable[[bytes], bytes]] | None = attrs.field(default=None, repr=False)
    seed: int | None = None
    # reconnect when the switch closes the connection before the end of the run
    # (a node behind a load balancer died); what was in flight counts as timeouts
    reconnect: bool = False

    def terminal_ids(self) -> list[str]:
        width = max(1, 8 - len(self.terminal_prefix))
        return [
            f"{self.terminal_prefix}{n:0{width}d}"
            for n in range(self.first_terminal, self.first_terminal + self.terminals)
        ]


def load_mix(path: str | Path) -> tuple[MixEntry, ...]:
    """Read a mix file: `[[mix]]` tables with template, weight, pan(s), amount."""
    root = Table(load_toml(path), "", str(path))
    entries = []
    for t in root.tables("mix"):
        pans = t.texts("pan") or (TEST_PAN,)
        codes = t.texts("payment_code")
        if any(not (c.isdigit() and 10 <= len(c) <= 24) for c in codes):
            raise t.error("payment_code", "a payment code is 10 to 24 digits")
        amount = t.raw("amount", 1000)
        if isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0:
            low = high = amount
        elif (
            isinstance(amount, list)
            and len(amount) == 2
            and all(isinstance(a, int) and not isinstance(a, bool) for a in amount)
            and 0 <= amount[0] <= amount[1]
        ):
            low, high = amount
        else:
            raise t.error("amount", "must be minor units or [low, high]")
        entries.append(
            MixEntry(
                template=t.text("template", "purchase", MIX_TEMPLATES),
                weight=t.number("weight", 1.0),
                pans=pans,
                amount_min=low,
                amount_max=high,
                payment_codes=codes,
            )
        )
        t.done()
    root.done()
    if not entries or sum(e.weight for e in entries) <= 0:
        raise SimConfigError("mix", "needs at least one entry with a positive weight", str(path))
    templates = {e.template for e in entries}
    if "reversal" in templates and "purchase" not in templates:
        raise SimConfigError("mix", "a reversal reverses a purchase: add a purchase", str(path))
    return tuple(entries)
