"""`forecourt keys add-wallet | wallets`: a wallet provider's signing material into the store.

Nothing secret is an argument: the HMAC secret comes from a file (hex, or raw
bytes) or a no-echo prompt, the RSA keys from PEM files. The command prints the
provider, the scheme and a fingerprint to compare with the provider's portal,
never the material. The files can be shredded afterwards: the store holds the
material sealed under the LMK.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import re
import time
from collections.abc import Callable
from pathlib import Path

from forecourt.keys.errors import InvalidKey
from forecourt.keys.store import KeyStore
from forecourt.keys.wallet_secrets import SigningScheme, WalletSecret, hmac_secret, rsa_secret

__all__ = ["register"]

Leaf = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
OpenStore = Callable[[argparse.Namespace], KeyStore]


def register(leaf: Leaf, open_store: OpenStore) -> None:
    """Add the wallet commands to `forecourt keys` (`leaf` adds the common options)."""

    def add_wallet(args: argparse.Namespace) -> int:
        secret = _material(args)
        with open_store(args) as store:
            info = store.wallet_secrets().put(secret, time.time(), _actor())
        print(
            f"wallet provider {info.provider} registered: {info.scheme.value},"
            f" fingerprint {info.fingerprint}"
        )
        return 0

    def wallets(args: argparse.Namespace) -> int:
        with open_store(args) as store:
            listed = store.wallet_secrets().listed()
        if not listed:
            print("no wallet providers registered")
        for info in listed:
            when = dt.datetime.fromtimestamp(info.created_at, dt.UTC).strftime("%Y-%m-%d %H:%MZ")
            print(f"{info.provider}: {info.scheme.value}, fingerprint {info.fingerprint}, {when}")
        return 0

    p = leaf("add-wallet", add_wallet, "register a wallet provider's signing secret or RSA keys")
    p.add_argument("provider", help="the [[acquirers]] name of the wallet provider")
    p.add_argument("--scheme", choices=[s.value for s in SigningScheme], required=True)
    p.add_argument("--secret-file", type=Path, help="HMAC secret: hex text or raw bytes")
    p.add_argument("--private-key", type=Path, help="RSA: the switch's private key (PEM)")
    p.add_argument("--provider-public-key", type=Path, help="RSA: the provider's public key (PEM)")
    leaf("wallets", wallets, "list wallet providers (scheme and fingerprint only)")


def _material(args: argparse.Namespace) -> WalletSecret:
    if args.scheme == SigningScheme.HMAC_SHA256.value:
        if args.private_key or args.provider_public_key:
            raise InvalidKey("hmac-sha256 takes --secret-file (or the prompt), not RSA keys")
        raw = (
            args.secret_file.read_bytes()
            if args.secret_file is not None
            else getpass.getpass("HMAC secret (hex): ").encode()
        )
        return hmac_secret(args.provider, _secret_bytes(raw))
    if args.private_key is None or args.provider_public_key is None:
        raise InvalidKey("rsa-sha256 needs --private-key and --provider-public-key (PEM files)")
    return rsa_secret(
        args.provider, args.private_key.read_bytes(), args.provider_public_key.read_bytes()
    )


def _secret_bytes(raw: bytes) -> bytes:
    """Hex text (what provider portals hand out) is decoded; anything else is taken as is."""
    text = raw.strip()
    if text and re.fullmatch(rb"[0-9A-Fa-f]+", text) and len(text) % 2 == 0:
        return bytes.fromhex(text.decode("ascii"))
    return text


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
