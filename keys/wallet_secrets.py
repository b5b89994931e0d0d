"""Wallet provider signing material, sealed under the LMK: a key owner of its own kind.

A wallet provider is neither a terminal nor an ISO 8583 acquirer: it has no
master key, no working keys and no rotation by key exchange, only what signs
the switch's requests and verifies the provider's answers. HMAC-SHA256 needs
one shared secret; RSA-SHA256 needs the switch's private key and the provider's
public key. Each provider's material is one row of `wallet_secrets`, sealed with
AES-256-GCM under a key derived from the LMK (HKDF, its own label, so it is never
the key that seals SAF payloads), the provider's name and scheme bound in as
associated data. Rows, audit lines and errors carry the provider's name, the
scheme and a fingerprint, never the material.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import re

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from forecourt.keys.backend import Backend, Tx
from forecourt.keys.errors import InvalidKey, InvalidName, KeysError, UnknownOwner
from forecourt.keys.lmk import Lmk

__all__ = [
    "MIN_HMAC_SECRET",
    "SigningScheme",
    "WalletSecret",
    "WalletSecretInfo",
    "WalletSecrets",
    "check_provider_name",
]

MIN_HMAC_SECRET = 32  # bytes: the output size of SHA-256, no shorter
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_LABEL = b"forecourt wallet provider secrets v1"
_TABLE = """
CREATE TABLE IF NOT EXISTS wallet_secrets (
    provider TEXT PRIMARY KEY,
    scheme TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    sealed TEXT NOT NULL
)
"""


class SigningScheme(enum.StrEnum):
    HMAC_SHA256 = "hmac-sha256"
    RSA_SHA256 = "rsa-sha256"


class WalletSecretCorrupt(KeysError):
    """A sealed row does not open under this LMK (moved, altered, or another LMK)."""


def check_provider_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidName("wallet provider name must be 1 to 32 letters, digits, '.', '_' or '-'")


@attrs.frozen
class WalletSecretInfo:
    """What an operator may see of a provider's material."""

    provider: str
    scheme: SigningScheme
    fingerprint: str
    created_at: float


@attrs.frozen
class WalletSecret:
    """The clear material, in memory only; repr shows the fingerprint alone."""

    provider: str
    scheme: SigningScheme
    hmac_secret: bytes = attrs.field(default=b"", repr=False)
    private_key_pem: bytes = attrs.field(default=b"", repr=False)  # the switch's (PKCS#8)
    provider_public_key_pem: bytes = b""  # the provider's (SubjectPublicKeyInfo)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self)


def fingerprint_of(secret: WalletSecret) -> str:
    """HMAC: a check value of the secret (HMAC of a fixed text); RSA: the public keys' hash."""
    if secret.scheme is SigningScheme.HMAC_SHA256:
        return hmac.new(secret.hmac_secret, b"forecourt-kcv", hashlib.sha256).hexdigest()[:12]
    digest = hashlib.sha256(secret.private_key_pem + b"|" + secret.provider_public_key_pem)
    return digest.hexdigest()[:12]


def hmac_secret(provider: str, secret: bytes) -> WalletSecret:
    check_provider_name(provider)
    if len(secret) < MIN_HMAC_SECRET:
        raise InvalidKey(f"an HMAC-SHA256 secret must be at least {MIN_HMAC_SECRET} bytes")
    return WalletSecret(provider, SigningScheme.HMAC_SHA256, hmac_secret=bytes(secret))


def rsa_secret(
    provider: str, private_key_pem: bytes, provider_public_key_pem: bytes
) -> WalletSecret:
    """Both keys parsed here, so a wrong file is refused at registration, not at the first sale."""
    check_provider_name(provider)
    try:
        private = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError):
        raise InvalidKey("the private key is not an unencrypted PEM private key") from None
    try:
        public = serialization.load_pem_public_key(provider_public_key_pem)
    except ValueError:
        raise InvalidKey("the provider's public key is not a PEM public key") from None
    if not isinstance(private, rsa.RSAPrivateKey) or not isinstance(public, rsa.RSAPublicKey):
        raise InvalidKey("RSA-SHA256 needs RSA keys")
    if private.key_size < 2048 or public.key_size < 2048:
        raise InvalidKey("RSA keys must be at least 2048 bits")
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    spki = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return WalletSecret(
        provider, SigningScheme.RSA_SHA256, private_key_pem=pkcs8, provider_public_key_pem=spki
    )


class WalletSecrets:
    """The `wallet_secrets` table of a key store, sealed under its LMK."""

    def __init__(self, backend: Backend, lmk: Lmk) -> None:
        self._db = backend
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(lmk.key)
        self._aead = AESGCM(key)

    @staticmethod
    def _aad(provider: str, scheme: SigningScheme) -> bytes:
        return f"forecourt-wallet|{provider}|{scheme.value}".encode()

    def _ensure(self, tx: Tx) -> None:
        tx.execute(_TABLE)

    def put(self, secret: WalletSecret, now: float, actor: str) -> WalletSecretInfo:
        """Register or replace a provider's material (the audit says which)."""
        body = json.dumps(
            {
                "hmac_secret": secret.hmac_secret.hex(),
                "private_key_pem": secret.private_key_pem.decode("ascii"),
                "provider_public_key_pem": secret.provider_public_key_pem.decode("ascii"),
            }
        ).encode()
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, body, self._aad(secret.provider, secret.scheme))
        info = WalletSecretInfo(secret.provider, secret.scheme, secret.fingerprint, now)
        with self._db.write() as tx:
            self._ensure(tx)
            old = tx.query(
                "SELECT fingerprint FROM wallet_secrets WHERE provider = ?", (secret.provider,)
            )
            tx.execute("DELETE FROM wallet_secrets WHERE provider = ?", (secret.provider,))
            tx.execute(
                "INSERT INTO wallet_secrets (provider, scheme, fingerprint, created_at, sealed)"
                " VALUES (?, ?, ?, ?, ?)",
                (secret.provider, secret.scheme.value, info.fingerprint, now, sealed.hex()),
            )
            tx.execute(
                "INSERT INTO key_audit (at, actor, action, owner, key_type, old_kcv, new_kcv,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    actor,
                    "wallet-replace" if old else "wallet-register",
                    secret.provider,
                    None,  # no key type of the card hierarchy: the scheme is the reason
                    str(old[0][0]) if old else None,
                    info.fingerprint,
                    f"wallet provider signing material, {secret.scheme.value}",
                ),
            )
        return info

    def get(self, provider: str) -> WalletSecret:
        """The provider's clear material; UnknownOwner if none is registered."""
        with self._db.write() as tx:
            self._ensure(tx)
            rows = tx.query(
                "SELECT scheme, sealed FROM wallet_secrets WHERE provider = ?", (provider,)
            )
        if not rows:
            raise UnknownOwner(provider)
        scheme = SigningScheme(str(rows[0][0]))
        sealed = bytes.fromhex(str(rows[0][1]))
        try:
            body = self._aead.decrypt(sealed[:12], sealed[12:], self._aad(provider, scheme))
        except InvalidTag:
            raise WalletSecretCorrupt(
                f"wallet provider {provider!r}: its sealed material does not open under this LMK"
            ) from None
        data = json.loads(body)
        return WalletSecret(
            provider,
            scheme,
            hmac_secret=bytes.fromhex(data["hmac_secret"]),
            private_key_pem=str(data["private_key_pem"]).encode("ascii"),
            provider_public_key_pem=str(data["provider_public_key_pem"]).encode("ascii"),
        )

    def listed(self) -> list[WalletSecretInfo]:
        with self._db.write() as tx:
            self._ensure(tx)
            rows = tx.query(
                "SELECT provider, scheme, fingerprint, created_at FROM wallet_secrets"
                " ORDER BY provider"
            )
        return [
            WalletSecretInfo(str(r[0]), SigningScheme(str(r[1])), str(r[2]), float(r[3]))
            for r in rows
        ]
