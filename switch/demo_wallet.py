"""The demo's wallet provider: `forecourt sim wallet` over HTTPS, certificates made now.

At demo time a throw-away CA signs a certificate for 127.0.0.1, the simulator
serves HTTPS with it (rules: conf/sim/wallet.toml), the switch trusts only that
CA, and a fresh HMAC secret is registered in the demo's key store under its
LMK. After the certification scripts, the provider's books are checked: every
payment the terminal was not told was approved is cancelled at the provider.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import time
from pathlib import Path
from typing import Any

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from forecourt.keys.lmk import Lmk
from forecourt.keys.wallet_secrets import hmac_secret
from forecourt.keys.wallet_signing import hmac_signer
from forecourt.simulators.terminal import CaseResult
from forecourt.simulators.wallet import WalletProvider, serve_wallet
from forecourt.simulators.wallet_rules import load_wallet_config
from forecourt.switch.demo_payshield import DemoHsm, open_demo_store, register_terminal

__all__ = ["WALLET", "WalletDemo", "make_certificates", "prepare_wallet_keys", "start_wallet"]

WALLET = "wallet-sim"
WALLET_TERMINAL = "T0000005"
WALLET_SCRIPT = "wallet"  # the name in conf/cert/08-wallet.toml
PAYMENT_CODE_PREFIX = "28"
_SETTLE_S = 20.0  # how long the check waits for SAF to finish the cancels


@attrs.frozen
class WalletDemo:
    provider: WalletProvider
    port: int
    ca_file: Path

    def add_to(self, doc: dict[str, Any]) -> None:
        """The provider as an `[[acquirers]]` entry, and its payment codes' route."""
        doc["acquirers"].append(
            {
                "kind": "wallet",
                "name": WALLET,
                "base_url": f"https://127.0.0.1:{self.port}",
                "merchant_id": self.provider.config.merchant_id,
                "request_timeout_s": 5.0,
                "http_timeout_s": 2.0,
                "query_initial_s": 0.2,
                "query_max_s": 1.0,
                "max_in_flight": 500,
                "connections": 20,
                "tls": {"ca_file": str(self.ca_file)},
            }
        )
        doc.setdefault("routes", []).append(
            {"acquirer": WALLET, "payment_code_prefixes": [PAYMENT_CODE_PREFIX]}
        )

    async def books_checked(
        self, results: dict[str, list[CaseResult]]
    ) -> dict[str, list[CaseResult]]:
        """One more case, after the wallet script ran: nothing stays paid at the provider
        unless it was approved (none when the wallet script is not among those run)."""
        if WALLET_SCRIPT not in results:
            return {}
        started = time.perf_counter()
        reason: str | None = None
        with trio.move_on_after(_SETTLE_S):
            while True:
                reason = self._unsettled()
                if reason is None:
                    break
                await trio.sleep(0.2)
        name = "wallet: every payment not approved ends cancelled at the provider"
        done = time.perf_counter() - started
        return {"wallet-books": [CaseResult(name, reason is None, done, reason, 0)]}

    def _unsettled(self) -> str | None:
        # the rules' amounts: 3000 never confirms, 5000 answers with a bad signature
        orders = self.provider.books.orders.values()
        for order in orders:
            if order.amount in (3000, 5000) and order.state != "CANCELLED":
                return f"order for {order.amount} is {order.state} at the provider"
        reversed_ = [o for o in orders if o.amount == 1000 and o.state == "CANCELLED"]
        if not reversed_:
            return "the reversed sale is not cancelled at the provider"
        return None


def prepare_wallet_keys(
    data_dir: Path, lmk: Lmk, kek_components: tuple[bytes, bytes], hsm: DemoHsm | None = None
) -> bytes:
    """The wallet terminal and a fresh HMAC secret, registered; the secret for the simulator."""
    secret = os.urandom(32)
    store = open_demo_store(data_dir, lmk, hsm)
    try:
        if not store.is_registered(WALLET_TERMINAL):
            register_terminal(store, hsm, WALLET_TERMINAL, kek_components)
        store.wallet_secrets().put(hmac_secret(WALLET, secret), time.time(), "demo")
    finally:
        store.close()
    return secret


async def start_wallet(
    nursery: trio.Nursery, data_dir: Path, conf: Path, secret: bytes
) -> WalletDemo:
    """Certificates, then the simulator serving HTTPS in `nursery`."""
    ca_file, certificate, key = await trio.to_thread.run_sync(
        make_certificates, data_dir / "wallet-tls"
    )
    config = attrs.evolve(
        load_wallet_config(conf / "sim" / "wallet.toml"), port=0, bill_dir=data_dir
    )
    provider = WalletProvider(config, hmac_signer(secret))

    async def serve(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_wallet(provider, certificate=certificate, key=key, task_status=task_status)

    port = await nursery.start(serve)
    return WalletDemo(provider, port, ca_file)


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signs (EC P-256, one day)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forecourt demo wallet CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "wallet.pem", "wallet.key"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_file, 0o600)
    return ca_file, cert_file, key_file
