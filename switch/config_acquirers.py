"""Who authorises, and which cards go to whom: ``[[acquirers]]`` and ``[[routes]]``.

An acquirer entry is one authoriser. Its ``kind`` says what sort of party it is
(today only ``"iso8583"``: a host over an ISO 8583 link) and which keys it takes
beyond the few every kind has (name, max_in_flight, request_timeout_s). Each kind
has its own frozen settings value and its own reading function, so the next kind
adds both without touching the ISO 8583 ones; a key no reader takes is refused.
Callers read an ISO 8583 link's keys straight off the acquirer (``acquirer.host``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import ClassVar

import attrs
from forecourt.switch.config_reading import ConfigError, ConfigTable, check_unique
from forecourt.switch.config_wallet import WalletConfig, read_wallet
from forecourt.switch.config_wire import read_wire
from forecourt.switch.routing import CARD_TYPES, DEFAULT_TENDER, TENDERS, Router, RoutingError

__all__ = [
    "AUTHORISER_KINDS",
    "LINK_TLS_VERSIONS",
    "AcquirerConfig",
    "AuthoriserSettings",
    "Iso8583LinkConfig",
    "LinkTlsConfig",
    "RouteConfig",
    "read_acquirers",
    "read_routes",
    "route_router",
]

AUTHORISER_KINDS = ("iso8583", "wallet")
LINK_TLS_VERSIONS = ("1.2", "1.3")  # the lowest TLS version a link accepts


@attrs.frozen
class LinkTlsConfig:
    """TLS on an acquirer link: the host's certificate and name are always verified.

    `ca_file` None trusts the system store; `server_name` None checks the link's
    `host`; `certificate` and `key` (both or neither) are the switch's own, for a
    host that wants mutual TLS.
    """

    ca_file: Path | None = None
    server_name: str | None = None
    certificate: Path | None = None
    key: Path | None = None
    min_version: str = "1.2"


@attrs.frozen
class Iso8583LinkConfig:
    """The keys only an ISO 8583 host link has: address, wire format, pool, timers, MAC."""

    kind: ClassVar[str] = "iso8583"

    host: str
    port: int
    dialect: str = "ifsf"
    bitmap: str = "binary"
    framing: str = "2b"
    tpdu: bool = False
    max_frame: int = 8192
    mac: bool = True  # MAC with the zone MAC key (ZAK)
    connections: int = 1
    echo_interval_s: float = 60.0  # 0 = no echo tests
    sign_on: bool = True
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    acquirer_id: str = ""  # field 32; empty = not sent
    tls: LinkTlsConfig | None = None  # None: plain TCP


# One settings class per kind in AUTHORISER_KINDS.
AuthoriserSettings = Iso8583LinkConfig | WalletConfig


@attrs.frozen
class AcquirerConfig:
    """One authoriser: the keys every kind has, and its kind's own settings."""

    name: str
    settings: AuthoriserSettings
    max_in_flight: int = 100
    request_timeout_s: float = 25.0

    @property
    def kind(self) -> str:
        return self.settings.kind

    @property
    def iso8583(self) -> Iso8583LinkConfig:
        """This acquirer's ISO 8583 link; asking another kind for one is a caller's bug."""
        if not isinstance(self.settings, Iso8583LinkConfig):
            raise TypeError(f"acquirer {self.name!r} is a {self.kind} authoriser, not ISO 8583")
        return self.settings

    # The ISO 8583 link's keys, where callers have always read them.
    @property
    def host(self) -> str:
        return self.iso8583.host

    @property
    def port(self) -> int:
        return self.iso8583.port

    @property
    def dialect(self) -> str:
        return self.iso8583.dialect

    @property
    def bitmap(self) -> str:
        return self.iso8583.bitmap

    @property
    def framing(self) -> str:
        return self.iso8583.framing

    @property
    def tpdu(self) -> bool:
        return self.iso8583.tpdu

    @property
    def max_frame(self) -> int:
        return self.iso8583.max_frame

    @property
    def mac(self) -> bool:
        return self.iso8583.mac

    @property
    def connections(self) -> int:
        return self.iso8583.connections

    @property
    def echo_interval_s(self) -> float:
        return self.iso8583.echo_interval_s

    @property
    def sign_on(self) -> bool:
        return self.iso8583.sign_on

    @property
    def reconnect_initial_s(self) -> float:
        return self.iso8583.reconnect_initial_s

    @property
    def reconnect_max_s(self) -> float:
        return self.iso8583.reconnect_max_s

    @property
    def acquirer_id(self) -> str:
        return self.iso8583.acquirer_id

    @property
    def tls(self) -> LinkTlsConfig | None:
        return self.iso8583.tls


@attrs.frozen
class RouteConfig:
    """PAN ranges (and/or card brands, expanded to ranges) → one acquirer."""

    acquirer: str
    prefixes: tuple[str, ...] = ()
    card_types: tuple[str, ...] = ()
    name: str = ""
    tender: str = DEFAULT_TENDER  # fleet, consumer or bank: a split sale's order
    payment_code_prefixes: tuple[str, ...] = ()  # wallet payment codes (ifsf 48-60)

    def all_prefixes(self) -> tuple[str, ...]:
        expanded = [p for ct in self.card_types for p in CARD_TYPES[ct]]
        return (*self.prefixes, *expanded)


def read_acquirers(root: ConfigTable, resolve: Callable[[str], Path]) -> tuple[AcquirerConfig, ...]:
    """Every acquirer; relative TLS paths resolved with `resolve` (the file's folder)."""
    acquirers = tuple(_acquirer(t, resolve) for t in root.tables("acquirers"))
    check_unique(root, "acquirers", [a.name for a in acquirers])
    return acquirers


def _acquirer(t: ConfigTable, resolve: Callable[[str], Path]) -> AcquirerConfig:
    name = t.name()
    # The kind first: another kind's missing keys must not hide that it is unknown.
    kind = t.str_("kind", "iso8583", AUTHORISER_KINDS)
    settings = _KIND_READERS[kind](t, resolve)
    acquirer = AcquirerConfig(
        name=name,
        settings=settings,
        max_in_flight=t.int_("max_in_flight", 100, 1, 100_000),
        request_timeout_s=t.float_("request_timeout_s", 25.0, 0.1, 600.0),
    )
    t.finish()
    return acquirer


def _iso8583_link(t: ConfigTable, resolve: Callable[[str], Path]) -> Iso8583LinkConfig:
    acquirer_id = t.str_("acquirer_id", "")
    if acquirer_id and not (acquirer_id.isdigit() and len(acquirer_id) <= 11):
        raise t.error("acquirer_id", "must be 1-11 digits (field 32)")
    host = t.str_("host")
    port = t.port()
    wire = read_wire(t)
    link = Iso8583LinkConfig(
        host=host,
        port=port,
        dialect=wire.dialect,
        bitmap=wire.bitmap,
        framing=wire.framing,
        tpdu=wire.tpdu,
        max_frame=wire.max_frame,
        mac=t.bool_("mac", True),
        connections=t.int_("connections", 1, 1, 64),
        echo_interval_s=t.float_("echo_interval_s", 60.0, 0.0, 86400.0),
        sign_on=t.bool_("sign_on", True),
        reconnect_initial_s=t.float_("reconnect_initial_s", 0.5, 0.01, 3600.0),
        reconnect_max_s=t.float_("reconnect_max_s", 30.0, 0.01, 86400.0),
        acquirer_id=acquirer_id,
        tls=_link_tls(t.table("tls"), resolve) if t.has("tls") else None,
    )
    if link.reconnect_max_s < link.reconnect_initial_s:
        raise t.error("reconnect_max_s", "must not be less than reconnect_initial_s")
    return link


def _link_tls(t: ConfigTable, resolve: Callable[[str], Path]) -> LinkTlsConfig:
    def path(key: str) -> Path | None:
        value = t.opt_str(key)
        return resolve(value) if value is not None else None

    server_name = t.opt_str("server_name")
    if server_name is not None and not server_name:
        raise t.error("server_name", "must not be empty (omit it to check the link's host)")
    tls = LinkTlsConfig(
        ca_file=path("ca_file"),
        server_name=server_name,
        certificate=path("certificate"),
        key=path("key"),
        min_version=t.str_("min_version", "1.2", LINK_TLS_VERSIONS),
    )
    if (tls.certificate is None) != (tls.key is None):
        missing = "key" if tls.key is None else "certificate"
        raise t.error(missing, "a client certificate needs both certificate and key")
    t.finish()
    return tls


# kind → the function that reads (and marks as read) that kind's own keys.
_KIND_READERS: Mapping[str, Callable[[ConfigTable, Callable[[str], Path]], AuthoriserSettings]] = {
    "iso8583": _iso8583_link,
    "wallet": read_wallet,
}


def read_routes(
    root: ConfigTable, acquirer_names: Collection[str]
) -> tuple[tuple[RouteConfig, ...], str | None]:
    """The routes and ``default_route``, all naming known acquirers, with no ambiguous range."""
    routes = []
    for t in root.tables("routes"):
        route = _route(t)
        if route.acquirer not in acquirer_names:
            raise t.error("acquirer", f"no acquirer named {route.acquirer!r}")
        routes.append(route)
    default_route = root.opt_str("default_route")
    if default_route is not None and default_route not in acquirer_names:
        raise root.error("default_route", f"no acquirer named {default_route!r}")
    try:
        route_router(routes, default_route)
    except RoutingError as exc:
        raise ConfigError("routes", str(exc), root.source) from None
    return tuple(routes), default_route


def _route(t: ConfigTable) -> RouteConfig:
    prefixes = t.str_list("prefixes")
    card_types = t.str_list("card_types")
    for i, ct in enumerate(card_types):
        if ct not in CARD_TYPES:
            raise t.error(f"card_types[{i}]", f"must be one of {', '.join(sorted(CARD_TYPES))}")
    for i, p in enumerate(prefixes):
        try:
            Router.parse_range(p)
        except RoutingError as exc:
            raise t.error(f"prefixes[{i}]", str(exc)) from None
    codes = t.str_list("payment_code_prefixes")
    for i, p in enumerate(codes):
        try:
            Router.parse_range(p)
        except RoutingError as exc:
            raise t.error(f"payment_code_prefixes[{i}]", str(exc)) from None
    if not prefixes and not card_types and not codes:
        raise t.error("prefixes", "a route needs prefixes, card_types or payment_code_prefixes")
    route = RouteConfig(
        acquirer=t.str_("acquirer"),
        prefixes=prefixes,
        card_types=card_types,
        name=t.str_("name", ""),
        tender=t.str_("tender", DEFAULT_TENDER, TENDERS),
        payment_code_prefixes=codes,
    )
    t.finish()
    return route


def route_router(routes: Collection[RouteConfig], default_route: str | None) -> Router:
    """The routing table of `routes`: acquirer and tender by the longest prefix."""
    return Router(
        [(r.all_prefixes(), r.acquirer) for r in routes],
        default_route,
        tenders=[(r.all_prefixes(), r.tender) for r in routes],
        payment_codes=[(r.payment_code_prefixes, r.acquirer) for r in routes],
    )
