"""The table of kinds: every `[[acquirers]]` entry built as the authoriser of its kind.

A new kind of party (an account ledger, a wallet provider) is one class satisfying
`switch.authoriser.Authoriser` and one line in `KINDS`; nothing else in the switch
changes.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping

from forecourt.switch.authoriser import Authoriser
from forecourt.switch.config import AcquirerConfig, ConfigError, SwitchConfig
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.tls import TlsContexts

from .iso8583 import KIND as ISO8583
from .iso8583 import MacKey, build_iso8583

__all__ = ["KINDS", "AuthoriserFactory", "ZoneKeys", "build_authorisers"]

# The ZAK of a party by its name (None: none yet), for kinds that MAC their leg.
ZoneKeys = Callable[[str], MacKey | None]

# (entry, metrics, zone keys, its TLS client context or None)
AuthoriserFactory = Callable[
    [AcquirerConfig, SwitchMetrics, ZoneKeys, ssl.SSLContext | None], Authoriser
]

# kind -> factory; mypy checks here that each factory's product is an Authoriser
KINDS: Mapping[str, AuthoriserFactory] = {ISO8583: build_iso8583}


def build_authorisers(
    config: SwitchConfig,
    metrics: SwitchMetrics,
    zak: ZoneKeys,
    tls: TlsContexts | None = None,
) -> dict[str, Authoriser]:
    """One authoriser per `[[acquirers]]` entry, by name, each built by its kind.

    `tls`: the contexts built at start; when None they are built here (ConfigError
    for a bad CA, certificate or key path).
    """
    contexts = tls if tls is not None else TlsContexts.build(config)
    authorisers: dict[str, Authoriser] = {}
    for i, acquirer in enumerate(config.acquirers):
        kind = acquirer.kind  # the configuration refused kinds it does not know
        factory = KINDS.get(kind)
        if factory is None:
            raise ConfigError(
                f"acquirers[{i}].kind",
                f"unknown kind {kind!r} (known: {', '.join(sorted(KINDS))})",
                config.source,
            )
        authorisers[acquirer.name] = factory(acquirer, metrics, zak, contexts.link(acquirer.name))
    return authorisers
