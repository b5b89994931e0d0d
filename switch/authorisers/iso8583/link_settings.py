"""What an ISO 8583 acquirer link needs from its `[[acquirers]]` entry, in one value."""

from __future__ import annotations

import ssl

import attrs
from forecourt.codecs.dialect import Dialect
from forecourt.codecs.framing import Framing
from forecourt.switch.config import AcquirerConfig

__all__ = ["LinkSettings", "link_settings"]


@attrs.frozen
class LinkSettings:
    """What the link needs from the configuration, in one place."""

    name: str
    host: str
    port: int
    dialect: Dialect
    framing: Framing
    connections: int = 1
    max_in_flight: int = 1000
    request_timeout_s: float = 10.0
    echo_interval_s: float = 0.0
    sign_on: bool = False
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 10.0
    acquirer_id: str | None = None
    connect_timeout_s: float = 5.0  # TCP connect and TLS handshake together
    tls: ssl.SSLContext | None = None  # built once at start; None: plain TCP
    server_name: str | None = None  # the name the host's certificate must carry; None: host


def link_settings(
    config: AcquirerConfig,
    dialect: Dialect,
    framing: Framing,
    tls: ssl.SSLContext | None = None,
) -> LinkSettings:
    """Build the link's settings from an acquirer config section (and its TLS context)."""
    return LinkSettings(
        name=config.name,
        host=config.host,
        port=config.port,
        dialect=dialect,
        framing=framing,
        connections=config.connections,
        max_in_flight=config.max_in_flight,
        request_timeout_s=config.request_timeout_s,
        echo_interval_s=config.echo_interval_s,
        sign_on=config.sign_on,
        reconnect_initial_s=config.reconnect_initial_s,
        reconnect_max_s=config.reconnect_max_s,
        acquirer_id=config.acquirer_id or None,
        tls=tls,
        server_name=config.tls.server_name if config.tls is not None else None,
    )
