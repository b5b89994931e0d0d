"""What the wallet authoriser needs from its `[[acquirers]]` entry, in one value."""

from __future__ import annotations

import attrs
from forecourt.switch.config import AcquirerConfig
from forecourt.switch.config_wallet import WalletConfig

__all__ = ["WalletSettings", "wallet_settings"]


@attrs.frozen
class WalletSettings:
    name: str
    max_in_flight: int = 100
    request_timeout_s: float = 25.0  # the terminal's wait: pay and every "user paying" query
    query_initial_s: float = 0.5
    query_max_s: float = 4.0


def wallet_settings(acquirer: AcquirerConfig) -> WalletSettings:
    config = acquirer.settings
    if not isinstance(config, WalletConfig):
        raise TypeError(f"acquirer {acquirer.name!r} is a {acquirer.kind} authoriser, not a wallet")
    return WalletSettings(
        name=acquirer.name,
        max_in_flight=acquirer.max_in_flight,
        request_timeout_s=acquirer.request_timeout_s,
        query_initial_s=config.query_initial_s,
        query_max_s=config.query_max_s,
    )
