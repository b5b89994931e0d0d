"""The table of kinds: every `[[acquirers]]` entry built as the authoriser of its kind.

A new kind of party (an account ledger, a wallet provider) is one class satisfying
`switch.authoriser.Authoriser`, one factory taking `(entry, AuthoriserDeps)` and one
line in `KINDS`; nothing else in the switch changes. `AuthoriserDeps` is everything a
kind may need from the switch process, built once at start: a kind takes what it
uses and ignores the rest.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping

import attrs
from forecourt.keys.store import KeyStore
from forecourt.switch.authoriser import Authoriser
from forecourt.switch.config import AcquirerConfig, ConfigError, SwitchConfig
from forecourt.switch.journal import Journal
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.tls import TlsContexts

from .iso8583 import KIND as ISO8583
from .iso8583 import MacKey, build_iso8583
from .wallet import KIND as WALLET
from .wallet import build_wallet

__all__ = ["KINDS", "AuthoriserDeps", "AuthoriserFactory", "ZoneKeys", "build_authorisers"]

# The ZAK of a party by its name (None: none yet), for kinds that MAC their leg.
ZoneKeys = Callable[[str], MacKey | None]


@attrs.frozen
class AuthoriserDeps:
    """What the switch process offers the authorisers it builds.

    `tls`: the link client contexts built at start (None: build them from the
    configuration). `journal`: the journal's database, for kinds that keep their
    state there; `key_store`: secrets under the LMK, for kinds that sign.
    """

    metrics: SwitchMetrics
    zone_keys: ZoneKeys = lambda name: None
    tls: TlsContexts | None = None
    journal: Journal | None = None
    key_store: KeyStore | None = None
    node: str = ""

    def link_tls(self, name: str) -> ssl.SSLContext | None:
        return self.tls.link(name) if self.tls is not None else None


# (entry, what the process offers) -> the entry's authoriser
AuthoriserFactory = Callable[[AcquirerConfig, AuthoriserDeps], Authoriser]


def _iso8583(acquirer: AcquirerConfig, deps: AuthoriserDeps) -> Authoriser:
    return build_iso8583(acquirer, deps.metrics, deps.zone_keys, deps.link_tls(acquirer.name))


def _wallet(acquirer: AcquirerConfig, deps: AuthoriserDeps) -> Authoriser:
    return build_wallet(acquirer, deps.metrics, deps.journal, deps.key_store)


# kind -> factory; mypy checks here that each factory's product is an Authoriser
KINDS: Mapping[str, AuthoriserFactory] = {ISO8583: _iso8583, WALLET: _wallet}


def build_authorisers(config: SwitchConfig, deps: AuthoriserDeps) -> dict[str, Authoriser]:
    """One authoriser per `[[acquirers]]` entry, by name, each built by its kind.

    When `deps.tls` is None the contexts are built here (ConfigError for a bad CA,
    certificate or key path).
    """
    if deps.tls is None:
        deps = attrs.evolve(deps, tls=TlsContexts.build(config))
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
        authorisers[acquirer.name] = factory(acquirer, deps)
    return authorisers
