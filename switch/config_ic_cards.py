"""``[ic_cards]``: IC fuel cards' grey-lock and unlock (docs/terminal-interfaces.md).

Off by default: the IC card messages (1604/1624, function codes 680-683) are then
answered "function not supported". When on, the cards are those of one ledger
acquirer (its accounts are the back office's mirror of the cards' balances).
"""

from __future__ import annotations

from collections.abc import Collection

import attrs
from forecourt.switch.config_acquirers import AcquirerConfig
from forecourt.switch.config_reading import ConfigTable
from forecourt.switch.grey.tac import TAC_CHECKS

__all__ = ["IcCardsConfig", "read_ic_cards"]


@attrs.frozen
class IcCardsConfig:
    enabled: bool = False
    acquirer: str | None = None  # the "ledger" acquirer holding the cards' accounts
    grey_record_max_age_s: float = 86400.0  # open longer: flagged for manual handling
    check_interval_s: float = 60.0  # how often the switch looks for such records
    tac_check: str = "none"  # switch/grey/tac.py: none (the issuer's job) or test


def read_ic_cards(root: ConfigTable, acquirers: Collection[AcquirerConfig]) -> IcCardsConfig:
    t = root.table("ic_cards")
    enabled = t.bool_("enabled", False)
    acquirer = t.opt_str("acquirer")
    ledgers = sorted(a.name for a in acquirers if a.kind == "ledger")
    if acquirer is not None and acquirer not in ledgers:
        known = ", ".join(ledgers) or 'none: add an [[acquirers]] entry with kind = "ledger"'
        raise t.error("acquirer", f"no ledger acquirer named {acquirer!r} (ledgers: {known})")
    if enabled and acquirer is None:
        raise t.error("acquirer", "IC cards are enabled: name the ledger acquirer holding them")
    max_age = t.float_("grey_record_max_age_s", 86400.0, 60.0, 90 * 86400.0)
    interval = t.float_("check_interval_s", 60.0, 0.1, 3600.0)
    tac_check = t.str_("tac_check", "none")
    if tac_check not in TAC_CHECKS:
        raise t.error("tac_check", f"must be one of {', '.join(sorted(TAC_CHECKS))}")
    t.finish()
    return IcCardsConfig(enabled, acquirer, max_age, interval, tac_check)
