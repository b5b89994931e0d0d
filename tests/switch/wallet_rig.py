"""A switch paying wallet codes at the provider simulator over real HTTPS.

The simulator (`simulators/wallet.py`: Starlette under hypercorn's trio worker)
listens on 127.0.0.1 with a certificate made here by a CA made here; the switch
verifies it against that CA. The HMAC secret is registered in the switch's key
store under its LMK, and the simulator holds the same secret, as a provider does.
Rules are chosen by amount (`RULES`). Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.field48 import encode_field48
from forecourt.codecs.message import Message
from forecourt.keys.exchange import install_key_change
from forecourt.keys.keyring import MacKey
from forecourt.keys.lmk import Lmk
from forecourt.keys.store import KeyStore
from forecourt.keys.wallet_secrets import hmac_secret, rsa_secret
from forecourt.keys.wallet_signing import WalletSigner, hmac_signer, rsa_signer
from forecourt.simulators.wallet import WalletProvider, serve_wallet
from forecourt.simulators.wallet_rules import Action, WalletRule, WalletSimConfig
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.server import RunningSwitch

from tests.switch.harness import Terminal, _run_switch
from tests.switch.tls_pki import Pki

CODE = "281234567890123456"  # an 18-digit code under the wallet's prefix "28"
MERCHANT = "FORECOURT01"

APPROVE = 1000
USER_PAYS = 2000
USER_GIVES_UP = 2100
USER_TOO_SLOW = 3000
NO_FUNDS = 4000
BAD_SIGNATURE = 5000
CANCEL_UNANSWERED_TWICE = 6000
NO_ANSWER = 7000
EXPIRED = 8000
INVALID = 8100
FIRST_PAY_UNANSWERED = 9000
NUMBER_TAKEN = 7100
WRONG_AMOUNT = 7200

RULES = (
    WalletRule("user pays", Action.USER_PAYING, amount=USER_PAYS, paying_s=0.4),
    WalletRule(
        "user gives up", Action.USER_PAYING, amount=USER_GIVES_UP, paying_s=0.4, then="failed"
    ),
    WalletRule("user too slow", Action.USER_PAYING, amount=USER_TOO_SLOW, paying_s=60.0),
    WalletRule("no funds", Action.INSUFFICIENT_FUNDS, amount=NO_FUNDS),
    WalletRule("bad signature", Action.BAD_SIGNATURE, amount=BAD_SIGNATURE),
    WalletRule("cancel slow", Action.APPROVE, amount=CANCEL_UNANSWERED_TWICE, cancel_drops=2),
    WalletRule("no answer", Action.DROP, amount=NO_ANSWER),
    WalletRule("expired", Action.EXPIRED, amount=EXPIRED),
    WalletRule("invalid", Action.INVALID, amount=INVALID),
    WalletRule("first pay lost", Action.APPROVE, amount=FIRST_PAY_UNANSWERED, pay_drops=1),
    WalletRule("order number taken", Action.DUPLICATE, amount=NUMBER_TAKEN),
    WalletRule("says it took less", Action.APPROVE, amount=WRONG_AMOUNT, reports_amount=7000),
)


def wallet_sale(terminal: Terminal, amount: int, code: str = CODE) -> Message:
    """A purchase paid with a payment code (ifsf 48-60) instead of a card."""
    sale = terminal.purchase(amount)
    return sale.with_fields({2: None, 48: encode_field48({60: code})})


def wallet_refund(terminal: Terminal, sale: Message, amount: int) -> Message:
    """A refund naming its sale in field 56; no card, no code."""
    refund = terminal.referring("1200", sale, amount)
    return refund.with_fields({2: None, 48: None, 3: "200000"})


@attrs.define
class WalletRig:
    config: SwitchConfig
    running: RunningSwitch
    provider: WalletProvider
    store: KeyStore
    terminal_keys: dict[str, MacKey]

    @contextlib.asynccontextmanager
    async def terminal(self, terminal_id: str = "T0000001") -> AsyncIterator[Terminal]:
        stream = await trio.open_tcp_stream("127.0.0.1", self.running.ports["pos"])
        try:
            yield Terminal(
                stream, get_dialect("ifsf"), terminal_id, self.terminal_keys[terminal_id]
            )
        finally:
            await stream.aclose()

    def row(self, terminal_id: str, stan: str) -> dict[str, Any]:
        """The journal's row of a sale, read from its SQLite file as an auditor would."""
        rows = self.rows(
            "WHERE terminal_id = ? AND stan = ? AND mti_class = '2'", terminal_id, stan
        )
        assert len(rows) == 1, rows
        return rows[0]

    def rows(self, where: str = "", *params: object) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.config.data_dir / "journal.db")) as db:
            db.row_factory = sqlite3.Row
            found = db.execute(f"SELECT * FROM transactions {where}", params).fetchall()
        return [dict(r) for r in found]

    async def settled(self, terminal_id: str, stan: str, state: str, timeout: float = 10.0) -> None:
        """Wait until the journal has the sale in `state` (SAF at work)."""
        with trio.fail_after(timeout):
            while self.row(terminal_id, stan)["state"] != state:
                await trio.sleep(0.05)


def wallet_doc(
    data_dir: Path, base_url: str, ca_file: Path | None, **wallet: Any
) -> dict[str, Any]:
    return {
        "node": "wallet-test",
        "data_dir": str(data_dir),
        "logging": {"level": "warning", "format": "json"},
        "metrics": {"host": "127.0.0.1", "port": 0},
        "listeners": [{"name": "pos", "host": "127.0.0.1", "port": 0, "terminal_group": "site"}],
        "terminal_groups": [{"name": "site", "mac_required": True, "max_in_flight": 4}],
        "saf": {"backoff_initial_s": 0.1, "backoff_max_s": 0.3},
        "acquirers": [
            {
                "kind": "wallet",
                "name": "wallet",
                "base_url": base_url,
                "merchant_id": MERCHANT,
                "request_timeout_s": wallet.pop("request_timeout_s", 2.0),
                "http_timeout_s": wallet.pop("http_timeout_s", 0.5),
                "query_initial_s": 0.05,
                "query_max_s": 0.2,
                **({"tls": {"ca_file": str(ca_file)}} if ca_file is not None else {}),
                **wallet,
            }
        ],
        "routes": [{"acquirer": "wallet", "payment_code_prefixes": ["28"]}],
    }


def rsa_pem() -> tuple[bytes, bytes]:
    """A fresh RSA-2048 key: (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _signing(store: KeyStore, scheme: str, impostor: bool) -> WalletSigner:
    """Register the switch's material; the provider's signer (a stranger's if `impostor`)."""
    if scheme == "hmac-sha256":
        secret = os.urandom(32)
        store.wallet_secrets().put(hmac_secret("wallet", secret), time.time(), "test")
        return hmac_signer(os.urandom(32) if impostor else secret)
    switch_private, switch_public = rsa_pem()
    provider_private, provider_public = rsa_pem()
    material = rsa_secret("wallet", switch_private, provider_public)
    store.wallet_secrets().put(material, time.time(), "test")
    if impostor:
        provider_private = rsa_pem()[0]
    return rsa_signer(provider_private, switch_public)


@contextlib.asynccontextmanager
async def wallet_switch(
    tmp_path: Path, *, scheme: str = "hmac-sha256", impostor: bool = False, **wallet: Any
) -> AsyncIterator[WalletRig]:
    """The simulator over HTTPS and a switch whose only authoriser is that provider.

    `impostor`: the simulator signs with a secret or key the switch does not hold
    (every answer then fails verification, and the switch's requests fail the
    simulator's check too)."""
    data_dir = tmp_path / "data"
    pki = Pki(tmp_path)
    ca = pki.authority("wallet-ca")
    served = pki.issue(ca, "wallet", ips=["127.0.0.1"])
    lmk = Lmk.generate()
    store = KeyStore.init(data_dir, lmk=lmk)
    provider_signer = _signing(store, scheme, impostor)
    ceremony = store.add_terminal("T0000001")
    keys = {"T0000001": install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()}
    sim = WalletSimConfig(port=0, merchant_id=MERCHANT, rules=RULES, bill_dir=tmp_path)
    provider = WalletProvider(sim, provider_signer)
    stop, stopped = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            lambda task_status: serve_wallet(
                provider, certificate=served.certificate, key=served.key, task_status=task_status
            )
        )
        config = parse_config(
            wallet_doc(
                data_dir, f"https://127.0.0.1:{port}", ca.certificate, scheme=scheme, **wallet
            ),
            source="test",
        )
        running = await nursery.start(_run_switch, config, stop, stopped, lmk)
        try:
            yield WalletRig(config, running, provider, store, keys)
        finally:
            stop.set()
            await stopped.wait()
            nursery.cancel_scope.cancel()
    store.close()
