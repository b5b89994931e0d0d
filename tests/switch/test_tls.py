"""A TLS listener: terminals that speak TLS get the same service; client certificates.

The acquirer link's TLS is in test_link_tls.py.
"""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from forecourt.switch.config import ConfigError
from forecourt.switch.tls import TlsContexts

from tests.switch.harness import SwitchUnderTest, Terminal, started_switch, switch_config
from tests.switch.tls_pki import Pki


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "switch.pem", directory / "switch.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_purchase_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls = {"certificate": str(cert), "key": str(key)}
    async with started_switch(tmp_path, tls=tls) as sut:
        context = ssl.create_default_context(cafile=str(cert))
        raw = await trio.open_tcp_stream("127.0.0.1", sut.port)
        stream = trio.SSLStream(raw, context, server_hostname="localhost")
        try:
            from forecourt.codecs.dialect import get_dialect

            terminal = Terminal(
                stream,  # type: ignore[arg-type]
                get_dialect("ifsf"),
                "T0000001",
                sut.terminal_keys["T0000001"],
            )
            answer = await terminal.exchange(terminal.purchase(1200))
            assert answer.fields["39"] == "000"
        finally:
            await stream.aclose()


# -- client certificates on a listener ---------------------------------------------------


async def _terminal_over_tls(
    port: int, ca: Path, client: tuple[Path, Path] | None
) -> trio.SSLStream[trio.SocketStream]:
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    raw = await trio.open_tcp_stream("127.0.0.1", port)
    stream = trio.SSLStream(raw, context, server_hostname="localhost")
    try:
        await stream.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(raw)
        raise
    return stream


async def _purchase(sut: SwitchUnderTest, stream: trio.SSLStream[trio.SocketStream]) -> str:
    from forecourt.codecs.dialect import get_dialect

    terminal = Terminal(
        stream,  # type: ignore[arg-type]
        get_dialect("ifsf"),
        "T0000001",
        sut.terminal_keys["T0000001"],
    )
    try:
        return (await terminal.exchange(terminal.purchase(1200))).fields["39"]
    finally:
        await trio.aclose_forcefully(stream)


async def test_a_listener_requiring_client_certificates_serves_only_terminals_with_one(
    tmp_path: Path,
) -> None:
    pki = Pki(tmp_path)
    switch_ca, terminals_ca, other_ca = (
        pki.authority("switch"),
        pki.authority("terminals"),
        pki.authority("other"),
    )
    server = pki.issue(switch_ca, "localhost", dns=["localhost"])
    good = pki.issue(terminals_ca, "T0000001", client=True)
    stranger = pki.issue(other_ca, "T0000001", client=True)
    tls = {
        "certificate": str(server.certificate),
        "key": str(server.key),
        "require_client_certificate": True,
        "client_ca_file": str(terminals_ca.certificate),
    }
    async with started_switch(tmp_path / "sw", tls=tls) as sut:
        ca = switch_ca.certificate
        for refused in (None, (stranger.certificate, stranger.key)):
            # TLS 1.3: the server's refusal arrives after the client's half of the handshake
            with pytest.raises((trio.BrokenResourceError, EOFError)):
                stream = await _terminal_over_tls(sut.port, ca, refused)
                await _purchase(sut, stream)
        stream = await _terminal_over_tls(sut.port, ca, (good.certificate, good.key))
        assert await _purchase(sut, stream) == "000"


@pytest.mark.parametrize(
    ("tls", "path", "reason"),
    [
        ({"require_client_certificate": True}, "listeners[0].tls.client_ca_file", "is required"),
        ({"client_ca_file": "ca.pem"}, "listeners[0].tls.client_ca_file", "only read with"),
    ],
)
def test_listener_client_certificate_keys_go_together(
    tmp_path: Path, tls: dict[str, object], path: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        switch_config(tmp_path, 9, tls={"certificate": "c.pem", "key": "k.pem", **tls})
    assert caught.value.path == path and reason in caught.value.reason


def test_a_missing_client_ca_file_is_a_config_error_at_start(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls = {
        "certificate": str(cert),
        "key": str(key),
        "require_client_certificate": True,
        "client_ca_file": str(tmp_path / "absent.pem"),
    }
    config = switch_config(tmp_path, 9, tls=tls)
    with pytest.raises(ConfigError) as caught:
        TlsContexts.build(config)
    assert caught.value.path == "listeners[0].tls.client_ca_file"
