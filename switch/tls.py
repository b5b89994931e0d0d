"""The switch's TLS contexts: listeners (server side) and acquirer links (client side).

Built once at start from the configuration's paths, before anything listens or
connects, so a missing CA file or a certificate that does not match its key is one
`ConfigError` naming its key path, never a traceback at the first connection. No
TLS is written here: Python's `ssl` does it, under `trio.SSLStream`. A link's
handshake failures are classified (`handshake_failure_reason`) so that a wrong CA,
a wrong host name and an old protocol read differently in the log and the metrics.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

import attrs
import structlog
import trio
from forecourt.switch.config import (
    ConfigError,
    Iso8583LinkConfig,
    LinkTlsConfig,
    SwitchConfig,
    TlsConfig,
)

__all__ = [
    "TLS_VERSIONS",
    "HandshakeLog",
    "TlsContexts",
    "TlsHandshakeFailed",
    "client_context",
    "handshake_failure_reason",
    "server_context",
]

log = structlog.get_logger("forecourt.tls")

# The protocol floors a link may ask for: nothing older than TLS 1.2 is offered.
TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

_HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
_IP_MISMATCH = 64  # X509_V_ERR_IP_ADDRESS_MISMATCH


class TlsHandshakeFailed(Exception):
    """A link's TLS handshake did not complete; `reason` is a short label for metrics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class TlsContexts:
    """Every SSL context the switch uses, by listener name and by acquirer name."""

    listeners: Mapping[str, ssl.SSLContext] = attrs.field(factory=dict)
    links: Mapping[str, ssl.SSLContext] = attrs.field(factory=dict)

    def listener(self, name: str) -> ssl.SSLContext | None:
        return self.listeners.get(name)

    def link(self, name: str) -> ssl.SSLContext | None:
        return self.links.get(name)

    @classmethod
    def build(cls, config: SwitchConfig) -> TlsContexts:
        """Load every CA, certificate and key in `config`; ConfigError on the first bad one."""
        listeners = {
            lc.name: server_context(lc.tls, f"listeners[{i}].tls", config.source)
            for i, lc in enumerate(config.listeners)
            if lc.tls is not None
        }
        links = {}
        for i, acquirer in enumerate(config.acquirers):
            settings = acquirer.settings
            if isinstance(settings, Iso8583LinkConfig) and settings.tls is not None:
                where = f"acquirers[{i}].tls"
                links[acquirer.name] = client_context(settings.tls, where, config.source)
        return cls(listeners, links)


def server_context(tls: TlsConfig, where: str, source: str | None = None) -> ssl.SSLContext:
    """A listener's context: its chain and key; with client certificates, their CA required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, tls.certificate, tls.key, where, source)
    if tls.require_client_certificate:
        assert tls.client_ca_file is not None  # the configuration requires it
        _load_ca(context, tls.client_ca_file, f"{where}.client_ca_file", source)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(tls: LinkTlsConfig, where: str, source: str | None = None) -> ssl.SSLContext:
    """A link's context: the server's certificate and name always verified, a floor of 1.2."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    if tls.ca_file is not None:
        _load_ca(context, tls.ca_file, f"{where}.ca_file", source)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    if tls.certificate is not None and tls.key is not None:
        _load_chain(context, tls.certificate, tls.key, where, source)
    return context


def _readable(path: Path, key: str, source: str | None) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc}", source) from None


def _load_ca(context: ssl.SSLContext, path: Path, key: str, source: str | None) -> None:
    _readable(path, key, source)
    try:
        context.load_verify_locations(cafile=str(path))
    except ssl.SSLError:
        raise ConfigError(key, f"{path} holds no PEM CA certificate", source) from None


def _load_chain(
    context: ssl.SSLContext, certificate: Path, key: Path, where: str, source: str | None
) -> None:
    _readable(certificate, f"{where}.certificate", source)
    _readable(key, f"{where}.key", source)
    try:
        context.load_cert_chain(str(certificate), str(key))
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc.reason):
            raise ConfigError(f"{where}.key", "does not match the certificate", source) from None
        raise ConfigError(
            f"{where}.certificate", "is not a PEM certificate chain with its PEM key", source
        ) from None


def handshake_failure_reason(exc: BaseException) -> str:
    """A short label for why a handshake failed, from the ssl error trio wrapped."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        if cause.verify_code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
            return "host_name"
        return "certificate"
    if isinstance(cause, ssl.SSLEOFError):
        return "closed_by_host"  # e.g. a host that speaks only older versions than ours
    if isinstance(cause, ssl.SSLError):
        reason = str(cause.reason or "")
        if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
            return "protocol_version"
        if "NO_PROTOCOLS_AVAILABLE" in reason:
            return "protocol_version"
        if (
            "CERTIFICATE_REQUIRED" in reason
            or "UNKNOWN_CA" in reason
            or "BAD_CERTIFICATE" in reason
        ):
            return "client_certificate_refused"
        return "other"
    return "connection_lost"


class HandshakeLog:
    """One warning per `interval_s` per link, however often the reconnect loop fails.

    Every failure is counted in the metrics; the log says the reason and how many
    were not logged since the last line, so a host with a bad certificate does not
    fill the log at one line per attempt.
    """

    def __init__(self, link: str, interval_s: float) -> None:
        self._link = link
        self._interval_s = interval_s
        self._next = -float("inf")
        self._reason = ""
        self._suppressed = 0

    def report(self, reason: str) -> None:
        now = trio.current_time()
        if now < self._next and reason == self._reason:
            self._suppressed += 1
            return
        log.warning(
            "acquirer_tls_handshake_failed",
            link=self._link,
            reason=reason,
            not_logged_since=self._suppressed,
        )
        self._next, self._reason, self._suppressed = now + self._interval_s, reason, 0
