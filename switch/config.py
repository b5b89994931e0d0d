"""The switch's configuration: one TOML file read into frozen values.

Everything is checked once, at start-up, so the switch core never meets a bad
value at 3 a.m.: unknown keys are errors (a typo must not silently fall back to
a default), references between sections resolve, and every error names the key
path (``listeners[0].port: must be 1..65535``). See docs/configuration.md.

This module puts the sections together; each section's values and reading live in
a ``config_*`` module of its own, and every public name is re-exported here, so
callers import from ``forecourt.switch.config`` only.
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from forecourt.switch.config_acquirers import (
    AUTHORISER_KINDS,
    LINK_TLS_VERSIONS,
    AcquirerConfig,
    AuthoriserSettings,
    Iso8583LinkConfig,
    LinkTlsConfig,
    RouteConfig,
    read_acquirers,
    read_routes,
    route_router,
)
from forecourt.switch.config_business_day import BusinessDayConfig, read_business_day
from forecourt.switch.config_ic_cards import IcCardsConfig, read_ic_cards
from forecourt.switch.config_params import ParamsConfig, read_params
from forecourt.switch.config_policies import (
    LOG_FORMATS,
    LOG_LEVELS,
    SYNCHRONOUS_MODES,
    JournalConfig,
    KeysConfig,
    LoggingConfig,
    MetricsConfig,
    ReversalConfig,
    SafConfig,
    read_journal,
    read_keys,
    read_logging,
    read_metrics,
    read_reversal,
    read_saf,
)
from forecourt.switch.config_reading import ConfigError, ConfigTable
from forecourt.switch.config_recon import ReconConfig, read_recon
from forecourt.switch.config_stand_in import StandInConfig, read_stand_in
from forecourt.switch.config_terminals import (
    MAC_ALGORITHMS,
    ListenerConfig,
    TerminalGroupConfig,
    TlsConfig,
    read_listeners,
    read_terminal_groups,
)
from forecourt.switch.config_wire import BITMAPS, DIALECTS, FRAMING_HEADERS
from forecourt.switch.routing import Router

__all__ = [
    "AUTHORISER_KINDS",
    "BITMAPS",
    "DIALECTS",
    "FRAMING_HEADERS",
    "LINK_TLS_VERSIONS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MAC_ALGORITHMS",
    "SYNCHRONOUS_MODES",
    "AcquirerConfig",
    "AuthoriserSettings",
    "ConfigError",
    "IcCardsConfig",
    "Iso8583LinkConfig",
    "JournalConfig",
    "KeysConfig",
    "LinkTlsConfig",
    "ListenerConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ReversalConfig",
    "RouteConfig",
    "SafConfig",
    "StandInConfig",
    "SwitchConfig",
    "TerminalGroupConfig",
    "TlsConfig",
    "load_config",
    "parse_config",
]


@attrs.frozen
class SwitchConfig:
    node: str
    data_dir: Path
    database: str | None = None  # "postgresql://..."; None = SQLite data_dir/journal.db
    listeners: tuple[ListenerConfig, ...] = ()
    terminal_groups: tuple[TerminalGroupConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    default_route: str | None = None
    acquirers: tuple[AcquirerConfig, ...] = ()
    saf: SafConfig = attrs.field(factory=SafConfig)
    reversal: ReversalConfig = attrs.field(factory=ReversalConfig)
    keys: KeysConfig = attrs.field(factory=KeysConfig)
    metrics: MetricsConfig = attrs.field(factory=MetricsConfig)
    logging: LoggingConfig = attrs.field(factory=LoggingConfig)
    journal: JournalConfig = attrs.field(factory=JournalConfig)
    stand_in: StandInConfig = attrs.field(factory=StandInConfig)
    business_day: BusinessDayConfig = attrs.field(factory=BusinessDayConfig)
    params: ParamsConfig = attrs.field(factory=ParamsConfig)
    ic_cards: IcCardsConfig = attrs.field(factory=IcCardsConfig)
    recon: ReconConfig = attrs.field(factory=ReconConfig)
    source: str | None = None

    @property
    def journal_path(self) -> Path:
        """The SQLite journal file (used when ``database`` is not set)."""
        return self.data_dir / "journal.db"

    def terminal_group(self, name: str) -> TerminalGroupConfig:
        return next(g for g in self.terminal_groups if g.name == name)

    def acquirer(self, name: str) -> AcquirerConfig:
        return next(a for a in self.acquirers if a.name == name)

    def build_router(self) -> Router:
        """The routing table, built once (it was already validated at load)."""
        return route_router(self.routes, self.default_route)


def load_config(path: str | Path) -> SwitchConfig:
    """Read and check a TOML configuration file; relative paths are taken from its folder."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError("", f"cannot read: {exc.strerror or exc}", str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"not valid TOML: {exc}", str(path)) from None
    return parse_config(data, source=str(path), base_dir=path.parent)


def parse_config(
    data: Mapping[str, Any], source: str | None = None, base_dir: Path | None = None
) -> SwitchConfig:
    """Check a parsed TOML document and build the configuration values."""
    base = base_dir if base_dir is not None else Path.cwd()
    root = ConfigTable(data, "", source)

    def resolve(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    node = root.str_("node", socket.gethostname() or "node")
    data_dir = resolve(root.str_("data_dir", "./data"))
    database = root.opt_str("database")
    if database is not None and not database.startswith(("postgresql://", "postgres://")):
        raise root.error("database", "must be a postgresql:// DSN (omit it for SQLite)")

    metrics = read_metrics(root)
    logging = read_logging(root)
    journal = read_journal(root)
    groups = read_terminal_groups(root)
    listeners = read_listeners(root, {g.name for g in groups}, resolve)
    acquirers = read_acquirers(root, resolve)
    routes, default_route = read_routes(root, {a.name for a in acquirers})
    saf = read_saf(root)
    reversal = read_reversal(root)
    keys = read_keys(root, resolve)
    stand_in = read_stand_in(root, routes)
    business_day = read_business_day(root)
    params = read_params(root)
    ic_cards = read_ic_cards(root, acquirers)
    recon = read_recon(root, {a.name for a in acquirers})
    root.finish()
    return SwitchConfig(
        node=node,
        data_dir=data_dir,
        database=database,
        listeners=listeners,
        terminal_groups=groups,
        routes=routes,
        default_route=default_route,
        acquirers=acquirers,
        saf=saf,
        reversal=reversal,
        keys=keys,
        metrics=metrics,
        logging=logging,
        journal=journal,
        stand_in=stand_in,
        business_day=business_day,
        params=params,
        ic_cards=ic_cards,
        recon=recon,
        source=source,
    )
