"""The fleet and consumer ledger authoriser (kind "ledger"); its data is `switch/ledger`."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from forecourt.keys.lmk import Lmk
from forecourt.switch.config import AcquirerConfig, ConfigError
from forecourt.switch.config_ledger import LedgerSettings
from forecourt.switch.journal import Journal
from forecourt.switch.metrics import SwitchMetrics

from .authoriser import KIND, LedgerAuthoriser
from .metrics import LedgerMetrics

__all__ = ["KIND", "LedgerAuthoriser", "build_ledger", "ledger_card_key"]


def ledger_card_key(lmk: Lmk) -> bytes:
    """The key of the ledger's card references (HMAC of the PAN), derived from the LMK
    as the SAF data key is: nothing extra to store, and no PAN in a database copy."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"forecourt ledger v1"
    ).derive(lmk.key)


def build_ledger(
    acquirer: AcquirerConfig, journal: Journal | None, lmk: Lmk | None, metrics: SwitchMetrics
) -> LedgerAuthoriser:
    """The table of kinds' factory for "ledger": it keeps its accounts in the journal."""
    settings = acquirer.settings
    if not isinstance(settings, LedgerSettings):
        raise TypeError(f"acquirer {acquirer.name!r} is not a ledger")
    if journal is None or lmk is None:
        raise ConfigError(
            f"acquirers[{acquirer.name}]", "a ledger needs the journal and the key store"
        )
    return LedgerAuthoriser(
        acquirer.name,
        settings,
        journal,
        ledger_card_key(lmk),
        LedgerMetrics.on(metrics.registry),
        max_in_flight=acquirer.max_in_flight,
        request_timeout_s=acquirer.request_timeout_s,
    )
