"""The wallet provider kind: payment codes paid, queried, cancelled and refunded over HTTPS.

`build_wallet` is the table of kinds' factory. It takes the provider's signing
material from the key store (refusing to start without it, or with material of
another scheme than the entry says), builds the TLS context that verifies the
provider's certificate, and gives the authoriser the journal to find the
transaction ids its order numbers are made of.
"""

from __future__ import annotations

import ssl

from forecourt.keys.errors import KeysError, UnknownOwner
from forecourt.keys.store import KeyStore
from forecourt.keys.wallet_signing import WalletSigner, signer_for
from forecourt.switch.config import AcquirerConfig, ConfigError
from forecourt.switch.config_acquirers import LinkTlsConfig
from forecourt.switch.config_wallet import WalletConfig
from forecourt.switch.journal import Journal
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.tls import client_context

from .authoriser import KIND, WalletAuthoriser
from .provider import ProviderClient
from .settings import WalletSettings, wallet_settings

__all__ = ["KIND", "WalletAuthoriser", "WalletSettings", "build_wallet", "wallet_signer"]


def wallet_signer(key_store: KeyStore | None, name: str, scheme: str) -> WalletSigner:
    """The switch's signer for provider `name`; ConfigError naming the fix when there is none."""
    where = f"acquirers.{name}"
    if key_store is None:
        raise ConfigError(where, "a wallet provider needs the key store (its signing material)")
    try:
        secret = key_store.wallet_secrets().get(name)
    except UnknownOwner:
        raise ConfigError(
            where,
            f"no signing material for wallet provider {name!r}: register it with"
            f" `forecourt keys add-wallet {name} --scheme {scheme}`",
        ) from None
    except KeysError as exc:
        raise ConfigError(where, str(exc)) from None
    if secret.scheme.value != scheme:
        raise ConfigError(
            f"{where}.scheme",
            f"the key store holds {secret.scheme.value} material for {name!r}, not {scheme}",
        )
    return signer_for(secret)


def provider_tls(name: str, config: WalletConfig) -> ssl.SSLContext | None:
    """The context verifying the provider's certificate; None for plain HTTP (tests, demo)."""
    if config.base_url.startswith("http://"):
        return None
    tls = LinkTlsConfig(
        ca_file=config.tls.ca_file, certificate=config.tls.certificate, key=config.tls.key
    )
    return client_context(tls, f"acquirers.{name}.tls")


def build_wallet(
    acquirer: AcquirerConfig,
    metrics: SwitchMetrics,
    journal: Journal | None,
    key_store: KeyStore | None,
) -> WalletAuthoriser:
    config = acquirer.settings
    if not isinstance(config, WalletConfig):
        raise TypeError(f"acquirer {acquirer.name!r} is not a wallet provider")
    if journal is None:
        raise ConfigError(f"acquirers.{acquirer.name}", "a wallet provider needs the journal")
    client = ProviderClient(
        acquirer.name,
        config.base_url,
        config.merchant_id,
        wallet_signer(key_store, acquirer.name, config.scheme),
        tls=provider_tls(acquirer.name, config),
        connections=config.connections,
        http_timeout_s=config.http_timeout_s,
    )
    return WalletAuthoriser(
        wallet_settings(acquirer), client, journal.find_by_terminal_key, metrics
    )
