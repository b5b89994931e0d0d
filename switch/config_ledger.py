"""`[[acquirers]] kind = "ledger"`: the switch's own fleet and consumer account ledger.

The ledger keeps its accounts in the journal's database, so it has no address; its
keys are about money and time: the currency its accounts are kept in, how long a
pre-authorisation holds before it is released, how often the release runs, and
whether an odometer going backwards declines (it is always flagged).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import attrs
from forecourt.switch.config_reading import ConfigTable

__all__ = ["LedgerSettings", "read_ledger"]


@attrs.frozen
class LedgerSettings:
    """The keys only a ledger authoriser has (docs/configuration.md)."""

    kind: ClassVar[str] = "ledger"

    currency: str = "978"  # ISO 4217 numeric: a request in another currency is declined
    preauth_window_s: float = 1800.0  # a hold with no completion is released after this
    release_interval_s: float = 30.0  # how often expired holds are looked for
    partial_approval: bool = True  # take what there is when the balance is short
    odometer_declines: bool = False  # an odometer going backwards is flagged; declined too?


def read_ledger(t: ConfigTable, resolve: Callable[[str], Path]) -> LedgerSettings:
    currency = t.str_("currency", "978")
    if not (len(currency) == 3 and currency.isdigit()):
        raise t.error("currency", "must be an ISO 4217 numeric code of 3 digits (978 is EUR)")
    return LedgerSettings(
        currency=currency,
        preauth_window_s=t.float_("preauth_window_s", 1800.0, 1.0, 30 * 86400.0),
        release_interval_s=t.float_("release_interval_s", 30.0, 0.1, 3600.0),
        partial_approval=t.bool_("partial_approval", True),
        odometer_declines=t.bool_("odometer_declines", False),
    )
