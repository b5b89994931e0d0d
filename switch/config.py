"""The switch's configuration: one TOML file read into frozen values.

Everything is checked once, at start-up, so the switch core never meets a bad
value at 3 a.m.: unknown keys are errors (a typo must not silently fall back to
a default), references between sections resolve, and every error names the key
path (``listeners[0].port: must be 1..65535``). See docs/configuration.md.
"""

from __future__ import annotations

import re
import socket
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
from forecourt.switch.routing import CARD_TYPES, Router, RoutingError

DIALECTS = ("ifsf", "iso87ascii", "iso87bcd")
BITMAPS = ("binary", "hex")
FRAMING_HEADERS = ("2b", "4a")
MAC_ALGORITHMS = ("retail", "cmac")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "console")
SYNCHRONOUS_MODES = ("full", "normal")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CUTOVER_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ConfigError(ValueError):
    """A configuration problem; the message is ``<source>: <key path>: <reason>``."""

    def __init__(self, path: str, reason: str, source: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {reason}" if path else f"{where}{reason}")


# --------------------------------------------------------------------------- values


@attrs.frozen
class TlsConfig:
    certificate: Path
    key: Path


@attrs.frozen
class ListenerConfig:
    """One TCP port terminals connect to, with its wire format."""

    name: str
    port: int
    terminal_group: str
    host: str = "0.0.0.0"
    dialect: str = "ifsf"
    bitmap: str = "binary"
    framing: str = "2b"
    tpdu: bool = False
    max_frame: int = 8192
    max_connections: int = 1000
    idle_timeout_s: float = 300.0
    tls: TlsConfig | None = None


@attrs.frozen
class TerminalGroupConfig:
    """Terminals that share a security and flow-control policy."""

    name: str
    # ("T0001", ...) or "registry": every terminal registered in the key store.
    terminals: tuple[str, ...] | Literal["registry"] = "registry"
    mac_required: bool = True
    mac_algorithm: str = "retail"
    max_in_flight: int = 1
    mac_failures_before_lock: int = 5  # 0 = never lock
    shift_cutover: str | None = None  # "HH:MM" UTC; None = shifts close only by 1520/0500

    @property
    def uses_registry(self) -> bool:
        return self.terminals == "registry"


@attrs.frozen
class RouteConfig:
    """PAN ranges (and/or card brands, expanded to ranges) → one acquirer link."""

    acquirer: str
    prefixes: tuple[str, ...] = ()
    card_types: tuple[str, ...] = ()
    name: str = ""

    def all_prefixes(self) -> tuple[str, ...]:
        expanded = [p for ct in self.card_types for p in CARD_TYPES[ct]]
        return (*self.prefixes, *expanded)


@attrs.frozen
class AcquirerConfig:
    """A link to an acquirer host: wire format, pool and timers."""

    name: str
    host: str
    port: int
    dialect: str = "ifsf"
    bitmap: str = "binary"
    framing: str = "2b"
    tpdu: bool = False
    max_frame: int = 8192
    mac: bool = False  # MAC with the zone MAC key (ZAK)
    connections: int = 1
    max_in_flight: int = 100
    request_timeout_s: float = 25.0
    echo_interval_s: float = 60.0  # 0 = no echo tests
    sign_on: bool = True
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    acquirer_id: str = ""  # field 32; empty = not sent


@attrs.frozen
class SafConfig:
    """Store-and-forward retry policy for reversals and advices."""

    max_attempts: int = 6
    backoff_initial_s: float = 5.0
    backoff_max_s: float = 300.0
    in_flight_share: float = 0.25  # share of a link's max_in_flight SAF may use
    lease_s: float = 60.0  # a claimed item returns to the queue after this

    def backoff(self, attempts: int) -> float:
        """Delay before the next attempt after ``attempts`` failed sends (doubling)."""
        if attempts <= 0:
            return 0.0
        return min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** (attempts - 1))


@attrs.frozen
class ReversalConfig:
    on_disconnect: bool = True  # reverse in-flight authorisations when the terminal drops
    preauth_completion_window_s: float = 1800.0
    # how long an approved transaction stays reversible from the switch (its sealed
    # reversal kept in SAF): terminal gone, operator reversal; then it is erased
    hold_approved_s: float = 900.0


@attrs.frozen
class KeysConfig:
    """Working-key policy: how long a replaced key is still accepted, how old a key may be."""

    grace_s: float = 300.0
    max_age_s: float = 86400.0


@attrs.frozen
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = no metrics endpoint

    @property
    def enabled(self) -> bool:
        return self.port != 0


@attrs.frozen
class LoggingConfig:
    level: str = "info"
    format: str = "auto"


@attrs.frozen
class JournalConfig:
    """Group-commit tuning; see docs/journal.md."""

    synchronous: str = "full"
    max_pending: int = 4096  # queued writes before writers wait (back-pressure)
    max_batch: int = 1024  # writes per commit at most
    # finished requests kept in memory to answer retransmissions (and warmed at start)
    duplicate_window: int = 200_000


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
    saf: SafConfig = SafConfig()
    reversal: ReversalConfig = ReversalConfig()
    keys: KeysConfig = KeysConfig()
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    journal: JournalConfig = JournalConfig()
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
        return Router([(r.all_prefixes(), r.acquirer) for r in self.routes], self.default_route)


# --------------------------------------------------------------------------- reading


class _Section:
    """A TOML table being read: typed getters, and a check that nothing was left over."""

    def __init__(self, data: object, path: str, source: str | None) -> None:
        self.path = path
        self.source = source
        if not isinstance(data, Mapping):
            raise self.error("", "must be a table")
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.key(name) if name else self.path, reason, self.source)

    def _get(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return name in self.data

    def str_(
        self, name: str, default: str | None = None, choices: Sequence[str] | None = None
    ) -> str:
        value = self._get(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required")
            return default
        if not isinstance(value, str):
            raise self.error(name, "must be a string")
        if choices is not None and value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    def opt_str(self, name: str) -> str | None:
        if self.has(name):
            return self.str_(name)
        self.used.add(name)
        return None

    def name(self, name: str = "name") -> str:
        value = self.str_(name)
        if not _NAME_RE.match(value):
            raise self.error(name, "must be 1-64 letters, digits, '_', '-' or '.'")
        return value

    def int_(self, name: str, default: int | None, lo: int, hi: int) -> int:
        value = self._get(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, "must be an integer")
        if not lo <= value <= hi:
            raise self.error(name, f"must be {lo}..{hi}")
        return value

    def port(self, name: str = "port", default: int | None = None, allow_zero: bool = False) -> int:
        lo = 0 if allow_zero else 1
        return self.int_(name, default, lo, 65535)

    def float_(self, name: str, default: float, lo: float, hi: float) -> float:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, "must be a number")
        if not lo <= value <= hi:
            raise self.error(name, f"must be between {lo:g} and {hi:g}")
        return float(value)

    def bool_(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, "must be true or false")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self._get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, "must be a list of strings")
        return tuple(value)

    def table(self, name: str) -> _Section:
        value = self._get(name)
        return _Section({} if value is None else value, self.key(name), self.source)

    def tables(self, name: str) -> Iterator[_Section]:
        value = self._get(name)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.error(name, "must be an array of tables ([[" + name + "]])")
        for i, item in enumerate(value):
            yield _Section(item, f"{self.key(name)}[{i}]", self.source)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


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
    root = _Section(data, "", source)

    def resolve(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    node = root.str_("node", socket.gethostname() or "node")
    data_dir = resolve(root.str_("data_dir", "./data"))
    database = root.opt_str("database")
    if database is not None and not database.startswith(("postgresql://", "postgres://")):
        raise root.error("database", "must be a postgresql:// DSN (omit it for SQLite)")

    m = root.table("metrics")
    metrics = MetricsConfig(
        host=m.str_("host", "127.0.0.1"), port=m.port(default=0, allow_zero=True)
    )
    m.finish()

    lg = root.table("logging")
    logging_ = LoggingConfig(
        level=lg.str_("level", "info", LOG_LEVELS), format=lg.str_("format", "auto", LOG_FORMATS)
    )
    lg.finish()

    j = root.table("journal")
    journal = JournalConfig(
        synchronous=j.str_("synchronous", "full", SYNCHRONOUS_MODES),
        max_pending=j.int_("max_pending", 4096, 1, 1_000_000),
        max_batch=j.int_("max_batch", 1024, 1, 100_000),
        duplicate_window=j.int_("duplicate_window", 200_000, 1_000, 10_000_000),
    )
    j.finish()

    groups = [_terminal_group(s) for s in root.tables("terminal_groups")]
    _unique(root, "terminal_groups", [g.name for g in groups])
    seen_terminals: dict[str, str] = {}
    for i, g in enumerate(groups):
        if g.terminals == "registry":
            continue
        for t in g.terminals:
            if t in seen_terminals:
                raise ConfigError(
                    f"terminal_groups[{i}].terminals",
                    f"terminal {t!r} is already in group {seen_terminals[t]!r}",
                    source,
                )
            seen_terminals[t] = g.name
    group_names = {g.name for g in groups}

    listeners = []
    for s in root.tables("listeners"):
        listener = _listener(s, resolve)
        if listener.terminal_group not in group_names:
            raise s.error("terminal_group", f"no terminal group named {listener.terminal_group!r}")
        listeners.append(listener)
    _unique(root, "listeners", [x.name for x in listeners])
    _unique(
        root,
        "listeners",
        [f"{x.host}:{x.port}" if x.port else f"ephemeral-{i}" for i, x in enumerate(listeners)],
        what="address",
    )

    acquirers = [_acquirer(s) for s in root.tables("acquirers")]
    _unique(root, "acquirers", [a.name for a in acquirers])
    acquirer_names = {a.name for a in acquirers}

    routes = []
    for s in root.tables("routes"):
        route = _route(s)
        if route.acquirer not in acquirer_names:
            raise s.error("acquirer", f"no acquirer named {route.acquirer!r}")
        routes.append(route)
    default_route = root.opt_str("default_route")
    if default_route is not None and default_route not in acquirer_names:
        raise root.error("default_route", f"no acquirer named {default_route!r}")
    try:
        Router([(r.all_prefixes(), r.acquirer) for r in routes], default_route)
    except RoutingError as exc:
        raise ConfigError("routes", str(exc), source) from None

    sf = root.table("saf")
    saf = SafConfig(
        max_attempts=sf.int_("max_attempts", 6, 1, 1000),
        backoff_initial_s=sf.float_("backoff_initial_s", 5.0, 0.01, 86400.0),
        backoff_max_s=sf.float_("backoff_max_s", 300.0, 0.01, 86400.0),
        in_flight_share=sf.float_("in_flight_share", 0.25, 0.01, 1.0),
        lease_s=sf.float_("lease_s", 60.0, 1.0, 86400.0),
    )
    if saf.backoff_max_s < saf.backoff_initial_s:
        raise sf.error("backoff_max_s", "must not be less than backoff_initial_s")
    sf.finish()

    rv = root.table("reversal")
    reversal = ReversalConfig(
        on_disconnect=rv.bool_("on_disconnect", True),
        preauth_completion_window_s=rv.float_(
            "preauth_completion_window_s", 1800.0, 1.0, 30 * 86400.0
        ),
        hold_approved_s=rv.float_("hold_approved_s", 900.0, 300.0, 7 * 86400.0),
    )
    rv.finish()

    ks = root.table("keys")
    keys = KeysConfig(
        grace_s=ks.float_("grace_s", 300.0, 0.0, 7 * 86400.0),
        max_age_s=ks.float_("max_age_s", 86400.0, 60.0, 365 * 86400.0),
    )
    ks.finish()
    root.finish()
    return SwitchConfig(
        node=node,
        data_dir=data_dir,
        database=database,
        listeners=tuple(listeners),
        terminal_groups=tuple(groups),
        routes=tuple(routes),
        default_route=default_route,
        acquirers=tuple(acquirers),
        saf=saf,
        reversal=reversal,
        keys=keys,
        metrics=metrics,
        logging=logging_,
        journal=journal,
        source=source,
    )


def _unique(root: _Section, section: str, names: list[str], what: str = "name") -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ConfigError(f"{section}[{i}]", f"duplicate {what} {n!r}", root.source)
        seen.add(n)


def _terminal_group(s: _Section) -> TerminalGroupConfig:
    name = s.name()
    raw = s._get("terminals")
    terminals: tuple[str, ...] | Literal["registry"]
    if raw is None or raw == "registry":
        terminals = "registry"
    elif isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        for i, t in enumerate(raw):
            if not 1 <= len(t) <= 8 or not t.isascii() or not t.isprintable():
                raise s.error(f"terminals[{i}]", "a terminal id is 1-8 printable ASCII characters")
        terminals = tuple(raw)
    else:
        raise s.error("terminals", 'must be a list of terminal ids or "registry"')
    cutover = s.opt_str("shift_cutover")
    if cutover is not None and not _CUTOVER_RE.match(cutover):
        raise s.error("shift_cutover", 'must be "HH:MM" (UTC)')
    group = TerminalGroupConfig(
        name=name,
        terminals=terminals,
        mac_required=s.bool_("mac_required", True),
        mac_algorithm=s.str_("mac_algorithm", "retail", MAC_ALGORITHMS),
        max_in_flight=s.int_("max_in_flight", 1, 1, 1000),
        mac_failures_before_lock=s.int_("mac_failures_before_lock", 5, 0, 1_000_000),
        shift_cutover=cutover,
    )
    s.finish()
    return group


def _wire(s: _Section) -> dict[str, Any]:
    return {
        "dialect": s.str_("dialect", "ifsf", DIALECTS),
        "bitmap": s.str_("bitmap", "binary", BITMAPS),
        "framing": s.str_("framing", "2b", FRAMING_HEADERS),
        "tpdu": s.bool_("tpdu", False),
        "max_frame": s.int_("max_frame", 8192, 64, 65535),
    }


def _listener(s: _Section, resolve: Any) -> ListenerConfig:
    tls = None
    if s.has("tls"):
        t = s.table("tls")
        tls = TlsConfig(certificate=resolve(t.str_("certificate")), key=resolve(t.str_("key")))
        t.finish()
    listener = ListenerConfig(
        name=s.name(),
        host=s.str_("host", "0.0.0.0"),
        port=s.port(allow_zero=True),  # 0: an ephemeral port (tests, the demo)
        terminal_group=s.str_("terminal_group"),
        max_connections=s.int_("max_connections", 1000, 1, 1_000_000),
        idle_timeout_s=s.float_("idle_timeout_s", 300.0, 1.0, 86400.0),
        tls=tls,
        **_wire(s),
    )
    if listener.framing == "4a" and listener.max_frame > 9999:
        raise s.error("max_frame", 'must be at most 9999 with framing "4a"')
    s.finish()
    return listener


def _acquirer(s: _Section) -> AcquirerConfig:
    acquirer_id = s.str_("acquirer_id", "")
    if acquirer_id and not (acquirer_id.isdigit() and len(acquirer_id) <= 11):
        raise s.error("acquirer_id", "must be 1-11 digits (field 32)")
    acq = AcquirerConfig(
        name=s.name(),
        host=s.str_("host"),
        port=s.port(),
        mac=s.bool_("mac", False),
        connections=s.int_("connections", 1, 1, 64),
        max_in_flight=s.int_("max_in_flight", 100, 1, 100_000),
        request_timeout_s=s.float_("request_timeout_s", 25.0, 0.1, 600.0),
        echo_interval_s=s.float_("echo_interval_s", 60.0, 0.0, 86400.0),
        sign_on=s.bool_("sign_on", True),
        reconnect_initial_s=s.float_("reconnect_initial_s", 0.5, 0.01, 3600.0),
        reconnect_max_s=s.float_("reconnect_max_s", 30.0, 0.01, 86400.0),
        acquirer_id=acquirer_id,
        **_wire(s),
    )
    if acq.reconnect_max_s < acq.reconnect_initial_s:
        raise s.error("reconnect_max_s", "must not be less than reconnect_initial_s")
    if acq.framing == "4a" and acq.max_frame > 9999:
        raise s.error("max_frame", 'must be at most 9999 with framing "4a"')
    s.finish()
    return acq


def _route(s: _Section) -> RouteConfig:
    prefixes = s.str_list("prefixes")
    card_types = s.str_list("card_types")
    for i, ct in enumerate(card_types):
        if ct not in CARD_TYPES:
            raise s.error(f"card_types[{i}]", f"must be one of {', '.join(sorted(CARD_TYPES))}")
    for i, p in enumerate(prefixes):
        try:
            Router.parse_range(p)
        except RoutingError as exc:
            raise s.error(f"prefixes[{i}]", str(exc)) from None
    if not prefixes and not card_types:
        raise s.error("prefixes", "a route needs prefixes or card_types")
    route = RouteConfig(
        acquirer=s.str_("acquirer"),
        prefixes=prefixes,
        card_types=card_types,
        name=s.str_("name", ""),
    )
    s.finish()
    return route
