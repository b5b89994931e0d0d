"""Certificates made in the test, and a switch whose acquirer link speaks TLS.

`Pki` writes CAs and the certificates they sign as PEM files in a test's folder.
`link_rig` runs the switch (plain listener, one ISO 8583 link configured through
the TOML keys of `[acquirers.tls]`) against a host the test started, and scrapes
its metrics. Nothing is mocked: real TLS on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import ipaddress
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from forecourt.codecs.dialect import get_dialect
from forecourt.keys.crypto import adjust_parity, xor
from forecourt.keys.exchange import install_key_change
from forecourt.keys.keyring import MacKey
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyType
from forecourt.keys.store import KeyStore
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.server import RunningSwitch, run_switch

from tests.switch.harness import Terminal, _unused_port

TEST_ZMK_1 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TEST_ZMK_2 = bytes.fromhex("1F1F1F1F1F1F1F1F2E2E2E2E2E2E2E2E")


@attrs.frozen
class Issued:
    certificate: Path
    key: Path


@attrs.frozen
class Authority:
    name: str
    certificate: Path  # the CA file a peer trusts
    _cert: x509.Certificate
    _key: ec.EllipticCurvePrivateKey


class Pki:
    """CAs and leaf certificates (EC P-256), written under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def authority(self, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        path = self.directory / f"{name}-ca.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return Authority(name, path, cert, key)

    def issue(
        self,
        ca: Authority,
        common_name: str,
        *,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
        client: bool = False,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca._key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca._key, hashes.SHA256())
        stem = self.directory / f"{ca.name}-{common_name}"
        cert_path, key_path = Path(f"{stem}.pem"), Path(f"{stem}.key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Issued(cert_path, key_path)


def clear_zak(store: KeyStore, name: str = "bank") -> bytes:
    """Register the acquirer link `name` and return its clear ZAK (for the host)."""
    info = store.add_acquirer(name, (TEST_ZMK_1, TEST_ZMK_2), actor="test")
    zmk = adjust_parity(xor(TEST_ZMK_1, TEST_ZMK_2))
    return install_key_change(zmk, info.payload).get(KeyType.ZAK).key


def link_doc(data_dir: Path, host_port: int, metrics_port: int, **acquirer: Any) -> dict[str, Any]:
    """A switch configuration with one plain IFSF listener and one link to `host_port`."""
    return {
        "node": "tls-test",
        "data_dir": str(data_dir),
        "default_route": "bank",
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "logging": {"level": "warning", "format": "json"},
        "listeners": [
            {"name": "pos", "host": "127.0.0.1", "port": 0, "terminal_group": "site"},
        ],
        "terminal_groups": [{"name": "site", "mac_required": True}],
        "acquirers": [
            {
                "name": "bank",
                "host": "127.0.0.1",
                "port": host_port,
                "connections": 1,
                "request_timeout_s": 2.0,
                "echo_interval_s": 0.0,
                "reconnect_initial_s": 0.05,
                "reconnect_max_s": 0.4,
                **acquirer,
            }
        ],
    }


@attrs.define
class LinkRig:
    config: SwitchConfig
    running: RunningSwitch
    terminal_keys: dict[str, MacKey]
    metrics_port: int

    @contextlib.asynccontextmanager
    async def terminal(self, terminal_id: str = "T0000001") -> AsyncIterator[Terminal]:
        port = self.running.ports["pos"]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            yield Terminal(
                stream, get_dialect("ifsf"), terminal_id, self.terminal_keys[terminal_id]
            )
        finally:
            await stream.aclose()

    async def metrics(self) -> str:
        stream = await trio.open_tcp_stream("127.0.0.1", self.metrics_port)
        async with stream:
            await stream.send_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
        return data.partition(b"\r\n\r\n")[2].decode()

    async def healthz(self) -> int:
        stream = await trio.open_tcp_stream("127.0.0.1", self.metrics_port)
        async with stream:
            await stream.send_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
        return int(data.split()[1])

    async def handshake_failures(self, reason: str) -> float:
        """`forecourt_acquirer_tls_handshake_failures_total` for `reason` (0 if absent)."""
        prefix = (
            f'forecourt_acquirer_tls_handshake_failures_total{{link="bank",reason="{reason}"}} '
        )
        for line in (await self.metrics()).splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return 0.0


@attrs.define
class RigKeys:
    """The key store of a rig: terminals' TAKs and, when the link MACs, its clear ZAK."""

    lmk: Lmk
    store: KeyStore
    terminal_keys: dict[str, MacKey]
    zak: bytes | None


def rig_keys(data_dir: Path, *, mac: bool = False) -> RigKeys:
    """A key store with terminal T0000001 and (with `mac`) the link `bank` registered."""
    lmk = Lmk.generate()
    store = KeyStore.init(data_dir, lmk=lmk)
    terminal_keys: dict[str, MacKey] = {}
    for tid in ("T0000001",):
        ceremony = store.add_terminal(tid)
        terminal_keys[tid] = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
    return RigKeys(lmk, store, terminal_keys, clear_zak(store) if mac else None)


@contextlib.asynccontextmanager
async def link_rig(
    data_dir: Path, keys: RigKeys, host_port: int, **acquirer: Any
) -> AsyncIterator[LinkRig]:
    """The switch, its link configured with the `acquirer` keys given (e.g. ``tls={...}``)."""
    acquirer.setdefault("mac", keys.zak is not None)
    metrics_port = _unused_port()
    config = parse_config(link_doc(data_dir, host_port, metrics_port, **acquirer), source="test")
    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            running = await nursery.start(
                functools.partial(run_switch, config, stop=stop, lmk=keys.lmk)
            )
            try:
                yield LinkRig(config, running, keys.terminal_keys, metrics_port)
            finally:
                stop.set()
    finally:
        keys.store.close()
