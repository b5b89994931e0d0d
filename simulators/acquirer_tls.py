"""TLS for the acquirer simulator: the host side of a TLS acquirer link.

So a TLS link can be tried by hand (`forecourt sim acquirer --tls-cert --tls-key
[--client-ca]`) and in tests: the host's chain and key, optionally a CA whose
client certificates it requires (mutual TLS), optionally a highest version to
offer (to show a switch refusing an older protocol). Python's `ssl` does the TLS;
the context is built once, when the simulator is made.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import attrs
import trio

from ._toml import SimConfigError, Table

__all__ = ["TLS_VERSIONS", "HostTls", "TlsSession", "host_context", "parse_host_tls", "session_of"]

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@attrs.frozen
class HostTls:
    """The host's TLS: `client_ca` set means a client certificate from it is required."""

    certificate: Path
    key: Path
    client_ca: Path | None = None
    max_version: str | None = None  # "1.2": offer nothing newer (None: the library's best)


@attrs.frozen
class TlsSession:
    """One completed handshake as the host saw it (for tests to assert)."""

    version: str
    client_subject: str | None  # the client certificate's common name, if one was shown


def host_context(tls: HostTls, where: str = "listen.tls") -> ssl.SSLContext:
    """The server context; SimConfigError names the option whose file is bad."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(tls.certificate), str(tls.key))
    except (OSError, ssl.SSLError) as exc:
        raise SimConfigError(
            f"{where}.certificate", f"cannot load {tls.certificate}: {exc}"
        ) from None
    if tls.client_ca is not None:
        try:
            context.load_verify_locations(cafile=str(tls.client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise SimConfigError(
                f"{where}.client_ca", f"cannot load {tls.client_ca}: {exc}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    if tls.max_version is not None:
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    return context


def session_of(stream: trio.SSLStream[trio.SocketStream]) -> TlsSession:
    """What a finished handshake agreed on, and who the client said it was."""
    peer = stream.getpeercert()
    subject: str | None = None
    if peer:
        for rdn in peer.get("subject", ()):
            for name, value in rdn:
                if name == "commonName":
                    subject = str(value)
    return TlsSession(stream.version() or "", subject)


def parse_host_tls(listen: Table, resolve_base: Path | None = None) -> HostTls | None:
    """`[listen.tls]` certificate, key, client_ca, max_version; absent: plain TCP."""
    if "tls" not in listen:
        listen.raw("tls")
        return None
    t = listen.table("tls")

    def path(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() or resolve_base is None else resolve_base / p

    client_ca = t.opt_text("client_ca")
    max_version = t.opt_text("max_version")
    if max_version is not None and max_version not in TLS_VERSIONS:
        raise t.error("max_version", f"must be one of {', '.join(TLS_VERSIONS)}")
    tls = HostTls(
        certificate=path(t.text("certificate")),
        key=path(t.text("key")),
        client_ca=path(client_ca) if client_ca is not None else None,
        max_version=max_version,
    )
    t.done()
    return tls
