"""Where terminals connect and who they are: ``[[listeners]]`` and ``[[terminal_groups]]``.

A listener is a TCP port with a wire format; it admits the terminals of one group,
and the group carries the security and flow-control policy they share.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Literal

import attrs
from forecourt.switch.config_dukpt import DukptGroup, read_dukpt_group
from forecourt.switch.config_reading import ConfigError, ConfigTable, check_unique
from forecourt.switch.config_wire import read_wire

__all__ = [
    "MAC_ALGORITHMS",
    "ListenerConfig",
    "TerminalGroupConfig",
    "TlsConfig",
    "read_listeners",
    "read_terminal_groups",
]

MAC_ALGORITHMS = ("retail", "cmac")

# Refused rather than ignored, so nobody believes shifts close at a time they do not.
_SHIFT_CUTOVER_GONE = (
    "is no longer read: shifts close only by the terminal's 1520/0500 (a business-day "
    "cut-over is a later issue); remove this key"
)


@attrs.frozen
class TlsConfig:
    """A listener's TLS: its chain and key; optionally, terminals must show a certificate."""

    certificate: Path
    key: Path
    # ssl.CERT_REQUIRED: a terminal without a certificate from client_ca_file is refused
    require_client_certificate: bool = False
    client_ca_file: Path | None = None


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
    # 0 = no cap: behind HAProxy (no PROXY protocol) or a site's NAT, terminals share one address
    max_connections_per_address: int = 0
    # a connection must have a frame accepted this soon, or it is closed (frees its slot)
    first_frame_timeout_s: float = 10.0
    # requests of one connection handled at once; beyond it the session stops reading
    max_in_flight_per_connection: int = 32


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
    # a request whose field 7 is further than this from the switch's clock is refused
    # (authorisations, purchases, balance inquiries); 0 = not checked
    transmission_time_tolerance_s: float = 600.0
    # a financial request with no cashier signed on (1804/880) is refused 120 / 58
    require_operator: bool = False
    # DUKPT PIN pads (docs/keys.md "DUKPT terminals"); None: KEK/TAK/TPK terminals
    dukpt: DukptGroup | None = None

    @property
    def uses_registry(self) -> bool:
        return self.terminals == "registry"


def read_terminal_groups(root: ConfigTable) -> tuple[TerminalGroupConfig, ...]:
    """Every group, with unique names, and each listed terminal in one group only."""
    groups = tuple(_terminal_group(t) for t in root.tables("terminal_groups"))
    check_unique(root, "terminal_groups", [g.name for g in groups])
    seen: dict[str, str] = {}
    for i, g in enumerate(groups):
        if g.terminals == "registry":
            continue
        for terminal in g.terminals:
            if terminal in seen:
                raise ConfigError(
                    f"terminal_groups[{i}].terminals",
                    f"terminal {terminal!r} is already in group {seen[terminal]!r}",
                    root.source,
                )
            seen[terminal] = g.name
    return groups


def read_listeners(
    root: ConfigTable, group_names: Collection[str], resolve: Callable[[str], Path]
) -> tuple[ListenerConfig, ...]:
    """Every listener, each naming a known group, with unique names and addresses."""
    listeners = []
    for t in root.tables("listeners"):
        listener = _listener(t, resolve)
        if listener.terminal_group not in group_names:
            raise t.error("terminal_group", f"no terminal group named {listener.terminal_group!r}")
        listeners.append(listener)
    check_unique(root, "listeners", [x.name for x in listeners])
    check_unique(
        root,
        "listeners",
        [f"{x.host}:{x.port}" if x.port else f"ephemeral-{i}" for i, x in enumerate(listeners)],
        what="address",
    )
    return tuple(listeners)


def _terminal_group(t: ConfigTable) -> TerminalGroupConfig:
    name = t.name()
    if t.has("shift_cutover"):
        raise t.error("shift_cutover", _SHIFT_CUTOVER_GONE)
    raw = t.raw("terminals")
    terminals: tuple[str, ...] | Literal["registry"]
    if raw is None or raw == "registry":
        terminals = "registry"
    elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        for i, x in enumerate(raw):
            if not 1 <= len(x) <= 8 or not x.isascii() or not x.isprintable():
                raise t.error(f"terminals[{i}]", "a terminal id is 1-8 printable ASCII characters")
        terminals = tuple(raw)
    else:
        raise t.error("terminals", 'must be a list of terminal ids or "registry"')
    group = TerminalGroupConfig(
        name=name,
        terminals=terminals,
        mac_required=t.bool_("mac_required", True),
        mac_algorithm=t.str_("mac_algorithm", "retail", MAC_ALGORITHMS),
        max_in_flight=t.int_("max_in_flight", 1, 1, 1000),
        mac_failures_before_lock=t.int_("mac_failures_before_lock", 5, 0, 1_000_000),
        transmission_time_tolerance_s=t.float_(
            "transmission_time_tolerance_s", 600.0, 0.0, 43_200.0
        ),
        require_operator=t.bool_("require_operator", False),
        dukpt=read_dukpt_group(t),
    )
    t.finish()
    return group


def _listener(t: ConfigTable, resolve: Callable[[str], Path]) -> ListenerConfig:
    tls = _listener_tls(t.table("tls"), resolve) if t.has("tls") else None
    name = t.name()
    host = t.str_("host", "0.0.0.0")
    port = t.port(allow_zero=True)  # 0: an ephemeral port (tests, the demo)
    terminal_group = t.str_("terminal_group")
    max_connections = t.int_("max_connections", 1000, 1, 1_000_000)
    idle_timeout_s = t.float_("idle_timeout_s", 300.0, 1.0, 86400.0)
    per_address = t.int_("max_connections_per_address", 0, 0, 1_000_000)
    first_frame_timeout_s = t.float_("first_frame_timeout_s", 10.0, 0.1, 86400.0)
    if per_address > max_connections:
        raise t.error(
            "max_connections_per_address", f"must not exceed max_connections ({max_connections})"
        )
    in_flight_per_connection = t.int_("max_in_flight_per_connection", 32, 1, 100_000)
    wire = read_wire(t)
    t.finish()
    return ListenerConfig(
        name=name,
        host=host,
        port=port,
        terminal_group=terminal_group,
        dialect=wire.dialect,
        bitmap=wire.bitmap,
        framing=wire.framing,
        tpdu=wire.tpdu,
        max_frame=wire.max_frame,
        max_connections=max_connections,
        idle_timeout_s=idle_timeout_s,
        tls=tls,
        max_connections_per_address=per_address,
        first_frame_timeout_s=first_frame_timeout_s,
        max_in_flight_per_connection=in_flight_per_connection,
    )


def _listener_tls(t: ConfigTable, resolve: Callable[[str], Path]) -> TlsConfig:
    certificate = resolve(t.str_("certificate"))
    key = resolve(t.str_("key"))
    require = t.bool_("require_client_certificate", False)
    client_ca = t.opt_str("client_ca_file")
    if require and client_ca is None:
        raise t.error("client_ca_file", "is required with require_client_certificate = true")
    if client_ca is not None and not require:
        raise t.error(
            "client_ca_file",
            "is only read with require_client_certificate = true; set it or remove this key",
        )
    t.finish()
    return TlsConfig(
        certificate=certificate,
        key=key,
        require_client_certificate=require,
        client_ca_file=resolve(client_ca) if client_ca is not None else None,
    )
