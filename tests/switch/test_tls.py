"""A TLS listener: terminals that speak TLS get the same service."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.switch.harness import Terminal, started_switch


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
