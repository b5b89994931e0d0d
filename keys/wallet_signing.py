"""Signing wallet provider requests and verifying their answers (HMAC-SHA256, RSA-SHA256).

Both sides sign the same shape of text. A request signs its method, path,
timestamp, nonce and body; an answer signs its HTTP status, the nonce of the
request it answers, its own timestamp and its body. Binding the answer to the
request's nonce means an answer recorded for one request cannot be replayed as
the answer to another. Verification is constant-time for HMAC; RSA uses PKCS#1
v1.5 with SHA-256, as provider APIs commonly do. A signature that is absent,
malformed or wrong is simply "not verified": the caller decides what that costs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from forecourt.keys.wallet_secrets import SigningScheme, WalletSecret

__all__ = [
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MAX_SKEW_S",
    "WalletSigner",
    "answer_text",
    "new_nonce",
    "request_text",
    "signer_for",
]

HEADER_TIMESTAMP = "Wallet-Timestamp"
HEADER_NONCE = "Wallet-Nonce"
HEADER_SIGNATURE = "Wallet-Signature"
MAX_SKEW_S = 300  # a signed text older or newer than this is refused


def new_nonce() -> str:
    return os.urandom(16).hex()


def request_text(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def answer_text(status: int, request_nonce: str, timestamp: str, body: bytes) -> bytes:
    return f"{status}\n{request_nonce}\n{timestamp}\n".encode() + body + b"\n"


def fresh(timestamp: str, now: float | None = None) -> bool:
    """The timestamp is whole seconds within MAX_SKEW_S of now."""
    if not timestamp.isdigit():
        return False
    t = time.time() if now is None else now
    return abs(int(timestamp) - t) <= MAX_SKEW_S


@attrs.frozen
class WalletSigner:
    """One party's view: what it signs with and what it verifies the peer with.

    HMAC: both are the shared secret. RSA: its own private key, the peer's public key.
    """

    scheme: SigningScheme
    _secret: bytes = attrs.field(default=b"", repr=False, alias="secret")
    _private: rsa.RSAPrivateKey | None = attrs.field(default=None, repr=False, alias="private")
    _peer: rsa.RSAPublicKey | None = attrs.field(default=None, repr=False, alias="peer")

    def sign(self, text: bytes) -> str:
        """`<scheme> <base64 signature>`, the value of the signature header."""
        if self.scheme is SigningScheme.HMAC_SHA256:
            raw = hmac.new(self._secret, text, hashlib.sha256).digest()
        else:
            assert self._private is not None
            raw = self._private.sign(text, padding.PKCS1v15(), hashes.SHA256())
        return f"{self.scheme.value} {base64.b64encode(raw).decode('ascii')}"

    def verify(self, text: bytes, header: str | None) -> bool:
        """True only for a well-formed header of this scheme whose signature is right."""
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme != self.scheme.value:
            return False
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        if self.scheme is SigningScheme.HMAC_SHA256:
            expected = hmac.new(self._secret, text, hashlib.sha256).digest()
            return hmac.compare_digest(raw, expected)
        assert self._peer is not None
        try:
            self._peer.verify(raw, text, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def hmac_signer(secret: bytes) -> WalletSigner:
    return WalletSigner(SigningScheme.HMAC_SHA256, secret=secret)


def rsa_signer(private_key_pem: bytes, peer_public_key_pem: bytes) -> WalletSigner:
    private = serialization.load_pem_private_key(private_key_pem, password=None)
    peer = serialization.load_pem_public_key(peer_public_key_pem)
    if not isinstance(private, rsa.RSAPrivateKey) or not isinstance(peer, rsa.RSAPublicKey):
        raise ValueError("RSA-SHA256 needs RSA keys")
    return WalletSigner(SigningScheme.RSA_SHA256, private=private, peer=peer)


def signer_for(secret: WalletSecret) -> WalletSigner:
    """The switch's signer for a provider, from the material in the key store."""
    if secret.scheme is SigningScheme.HMAC_SHA256:
        return hmac_signer(secret.hmac_secret)
    return rsa_signer(secret.private_key_pem, secret.provider_public_key_pem)
