"""A wallet provider's own keys in ``[[acquirers]]``: ``kind = "wallet"``.

The entry says where the provider is (`base_url`, HTTPS), who the switch is to
it (`merchant_id`), which signing scheme it speaks, how many connections and
how long each HTTP call and each "user paying" query may take. The signing
secret or keys are not here: they are in the key store under the LMK
(`forecourt keys add-wallet NAME`), and the switch refuses to start without them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import attrs
from forecourt.switch.config_reading import ConfigTable

__all__ = ["SIGNING_SCHEMES", "WalletConfig", "WalletTlsConfig", "read_wallet"]

SIGNING_SCHEMES = ("hmac-sha256", "rsa-sha256")
_MERCHANT = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# keys that hold secrets elsewhere, refused by name so a secret is never left in the file
_SECRET_KEYS = ("secret", "hmac_secret", "api_key", "private_key", "key_pem", "password")


@attrs.frozen
class WalletTlsConfig:
    """The provider's certificate is always verified: `ca_file` None trusts the system store."""

    ca_file: Path | None = None  # the name checked is the host of base_url
    certificate: Path | None = None  # the switch's, for a provider that wants mutual TLS
    key: Path | None = None


@attrs.frozen
class WalletConfig:
    """What only a wallet provider entry has."""

    kind: ClassVar[str] = "wallet"

    base_url: str
    merchant_id: str
    scheme: str = "hmac-sha256"
    connections: int = 10  # HTTP connections kept to the provider
    http_timeout_s: float = 5.0  # one HTTP exchange (pay, query, cancel, refund)
    query_initial_s: float = 0.5  # first pause before asking about a "user paying" order
    query_max_s: float = 4.0  # the longest pause between two such queries
    tls: WalletTlsConfig = WalletTlsConfig()
    allow_plain_http: bool = False  # tests and the demo's simulator only

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


def read_wallet(t: ConfigTable, resolve: Callable[[str], Path]) -> WalletConfig:
    for key in _SECRET_KEYS:
        if t.has(key):
            raise t.error(
                key,
                "a wallet provider's secret never goes in the configuration: register it with"
                " `forecourt keys add-wallet NAME` and remove this key",
            )
    base_url = t.str_("base_url")
    allow_plain_http = t.bool_("allow_plain_http", False)
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise t.error("base_url", "must be an https:// URL with a host")
    if parts.scheme == "http" and not allow_plain_http:
        raise t.error("base_url", "must be https:// (plain http needs allow_plain_http = true)")
    merchant_id = t.str_("merchant_id")
    if not _MERCHANT.match(merchant_id):
        raise t.error("merchant_id", "must be 1-32 letters, digits, '_' or '-'")
    config = WalletConfig(
        base_url=base_url.rstrip("/"),
        merchant_id=merchant_id,
        scheme=t.str_("scheme", "hmac-sha256", SIGNING_SCHEMES),
        connections=t.int_("connections", 10, 1, 1000),
        http_timeout_s=t.float_("http_timeout_s", 5.0, 0.05, 120.0),
        query_initial_s=t.float_("query_initial_s", 0.5, 0.01, 60.0),
        query_max_s=t.float_("query_max_s", 4.0, 0.01, 300.0),
        tls=_tls(t.table("tls"), resolve) if t.has("tls") else WalletTlsConfig(),
        allow_plain_http=allow_plain_http,
    )
    if config.query_max_s < config.query_initial_s:
        raise t.error("query_max_s", "must not be less than query_initial_s")
    return config


def _tls(t: ConfigTable, resolve: Callable[[str], Path]) -> WalletTlsConfig:
    def path(key: str) -> Path | None:
        value = t.opt_str(key)
        return resolve(value) if value is not None else None

    tls = WalletTlsConfig(
        ca_file=path("ca_file"),
        certificate=path("certificate"),
        key=path("key"),
    )
    if (tls.certificate is None) != (tls.key is None):
        missing = "key" if tls.key is None else "certificate"
        raise t.error(missing, "a client certificate needs both certificate and key")
    t.finish()
    return tls
