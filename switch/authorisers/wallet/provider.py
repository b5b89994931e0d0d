"""The wallet provider's HTTPS API as the switch calls it: signed JSON in, verified JSON out.

One `httpx.AsyncClient` per provider (a pool of `connections` keep-alive
connections, certificates verified), opened by the authoriser's `run` and closed
when it ends. Each call has a deadline, a trio cancel scope no longer than
`http_timeout_s` nor than what the caller has left. What can go wrong is typed
by what the switch then knows about the money:

- `ProviderUnreachable`: the request never left (no connection): nothing to undo;
- `ProviderNoAnswer`: it may have arrived (timeout, a broken exchange, a 5xx);
- `ProviderBadSignature`: an answer came whose signature does not verify (or is
  stale): it is not believed, which is the same as having no answer.

The API itself is docs/wallets.md.
"""

from __future__ import annotations

import json
import math
import ssl
import time
from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import trio
from forecourt.keys.wallet_signing import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    WalletSigner,
    answer_text,
    fresh,
    new_nonce,
    request_text,
)

__all__ = [
    "ProviderAnswer",
    "ProviderBadSignature",
    "ProviderClient",
    "ProviderError",
    "ProviderNoAnswer",
    "ProviderUnreachable",
]

HEADER_MERCHANT = "Wallet-Merchant"


class ProviderError(Exception):
    """No answer the switch can act on; the text names the provider and the reason only."""


class ProviderUnreachable(ProviderError):
    """Nothing reached the provider."""


class ProviderNoAnswer(ProviderError):
    """The request may have reached the provider; its outcome is unknown."""


class ProviderBadSignature(ProviderNoAnswer):
    """An answer came that the switch cannot believe: unsigned, wrongly signed or stale."""


@attrs.frozen
class ProviderAnswer:
    """A verified answer: its HTTP status and JSON body."""

    status: int
    body: Mapping[str, Any]
    seconds: float

    def text(self, name: str) -> str:
        value = self.body.get(name)
        return value if isinstance(value, str) else ""

    def number(self, name: str) -> int:
        value = self.body.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ProviderClient:
    """Signed calls to one provider over a pool of HTTPS connections."""

    def __init__(
        self,
        name: str,
        base_url: str,
        merchant_id: str,
        signer: WalletSigner,
        *,
        tls: ssl.SSLContext | None,
        connections: int,
        http_timeout_s: float,
    ) -> None:
        self.name = name
        self._base_url = base_url
        self._merchant_id = merchant_id
        self._signer = signer
        self._tls = tls
        self._connections = connections
        self._http_timeout_s = http_timeout_s
        self._client: httpx.AsyncClient | None = None

    @property
    def open(self) -> bool:
        return self._client is not None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the connection pool open until cancelled."""
        limits = httpx.Limits(
            max_connections=self._connections, max_keepalive_connections=self._connections
        )
        async with httpx.AsyncClient(
            base_url=self._base_url,
            verify=self._tls if self._tls is not None else True,
            limits=limits,
            # the cancel scope in `call` is the deadline; httpx's own timeouts back it up
            timeout=httpx.Timeout(self._http_timeout_s),
            follow_redirects=False,
        ) as client:
            self._client = client
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._client = None

    async def call(self, path: str, body: Mapping[str, Any], deadline: float) -> ProviderAnswer:
        """POST `body` to `path`, signed; the verified answer by `deadline` (trio.current_time)."""
        client = self._client
        if client is None:
            raise ProviderUnreachable(f"{self.name}: no connection pool")
        payload = json.dumps({"merchant_id": self._merchant_id, **body}, sort_keys=True).encode()
        nonce = new_nonce()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            HEADER_MERCHANT: self._merchant_id,
            HEADER_TIMESTAMP: stamp,
            HEADER_NONCE: nonce,
            HEADER_SIGNATURE: self._signer.sign(request_text("POST", path, stamp, nonce, payload)),
        }
        limit = min(self._http_timeout_s, deadline - trio.current_time())
        if limit <= 0:
            raise ProviderNoAnswer(f"{self.name}: no time left for {path}")
        started = trio.current_time()
        response: httpx.Response | None = None
        with trio.move_on_after(limit if math.isfinite(limit) else math.inf):
            try:
                response = await client.post(path, content=payload, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise ProviderUnreachable(f"{self.name}: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                raise ProviderNoAnswer(f"{self.name}: {type(exc).__name__}") from None
        if response is None:
            raise ProviderNoAnswer(f"{self.name}: no answer to {path} within {limit:.2f}s")
        return self._verified(response, nonce, trio.current_time() - started)

    def _verified(self, response: httpx.Response, nonce: str, seconds: float) -> ProviderAnswer:
        stamp = response.headers.get(HEADER_TIMESTAMP, "")
        text = answer_text(response.status_code, nonce, stamp, response.content)
        if not fresh(stamp) or not self._signer.verify(
            text, response.headers.get(HEADER_SIGNATURE)
        ):
            raise ProviderBadSignature(f"{self.name}: answer signature does not verify")
        if response.status_code >= 500:
            raise ProviderNoAnswer(f"{self.name}: HTTP {response.status_code}")
        try:
            body = json.loads(response.content)
        except ValueError:
            raise ProviderNoAnswer(f"{self.name}: answer is not JSON") from None
        if not isinstance(body, dict):
            raise ProviderNoAnswer(f"{self.name}: answer is not a JSON object")
        return ProviderAnswer(response.status_code, body, seconds)
