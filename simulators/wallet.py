"""`forecourt sim wallet`: a wallet provider over HTTP(S), for the switch to pay against.

A Starlette app served by hypercorn's trio worker. It checks every request's
signature, timestamp and nonce (a replayed nonce is refused) and the merchant
id, keeps its books in `WalletBooks` (orders, refunds, the daily bill file) and
signs every answer over the request's nonce, except where a rule says to sign
badly. The API is docs/wallets.md; the rules are `wallet_rules`.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.codecs.payment_code import mask_payment_code
from forecourt.keys.wallet_signing import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    WalletSigner,
    answer_text,
    fresh,
    hmac_signer,
    request_text,
    rsa_signer,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .wallet_orders import Order, WalletBooks
from .wallet_rules import Action, WalletRule, WalletSimConfig

__all__ = ["WalletProvider", "serve_wallet", "signer_of"]

Reply = tuple[int, dict[str, Any], Order | None]
_HOLD_S = 3600.0  # "no answer": held until the caller gives up


@attrs.frozen
class Received:
    """What a request carried, as a test may ask about it (payment code masked)."""

    path: str
    body: dict[str, Any]


def signer_of(config: WalletSimConfig) -> WalletSigner:
    """The provider's signer from its key files."""
    if config.scheme == "hmac-sha256":
        if config.hmac_secret_file is None:
            raise ValueError("keys.hmac_secret_file is required for hmac-sha256")
        return hmac_signer(bytes.fromhex(config.hmac_secret_file.read_text().strip()))
    if config.private_key_file is None or config.switch_public_key_file is None:
        raise ValueError("rsa-sha256 needs keys.private_key_file and keys.switch_public_key_file")
    return rsa_signer(
        config.private_key_file.read_bytes(), config.switch_public_key_file.read_bytes()
    )


class WalletProvider:
    """The simulated provider: its books, its rules, its signatures."""

    def __init__(self, config: WalletSimConfig, signer: WalletSigner) -> None:
        self.config = config
        self.books = WalletBooks(config.bill_dir)
        self.received: list[Received] = []
        self._signer = signer
        self._bad = (
            hmac_signer(os.urandom(32)) if signer.scheme == "hmac-sha256" else _wrong_rsa(signer)
        )
        self._nonces: collections.OrderedDict[str, float] = collections.OrderedDict()
        ops: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "/v1/pay": self._pay,
            "/v1/query": self._query,
            "/v1/cancel": self._cancel,
            "/v1/refund": self._refund,
            "/v1/refund/query": self._refund_query,
        }
        routes = [Route(p, self._endpoint(op), methods=["POST"]) for p, op in ops.items()]
        routes.append(Route("/v1/bill", self._bill, methods=["GET"]))
        self.app = Starlette(routes=routes)

    # -- HTTP ------------------------------------------------------------------------

    def _endpoint(
        self, op: Callable[[dict[str, Any]], Reply]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            nonce = request.headers.get(HEADER_NONCE, "")
            stamp = request.headers.get(HEADER_TIMESTAMP, "")
            text = request_text("POST", request.url.path, stamp, nonce, body)
            if not fresh(stamp) or not self._signer.verify(
                text, request.headers.get(HEADER_SIGNATURE)
            ):
                return self._answer(401, nonce, {"result": "FAIL", "error": "SIGNATURE_INVALID"})
            if not self._first_use(nonce):
                return self._answer(401, nonce, {"result": "FAIL", "error": "NONCE_REPLAYED"})
            try:
                data = json.loads(body)
            except ValueError:
                return self._answer(400, nonce, {"result": "FAIL", "error": "NOT_JSON"})
            if not isinstance(data, dict) or data.get("merchant_id") != self.config.merchant_id:
                return self._answer(403, nonce, {"result": "FAIL", "error": "MERCHANT_UNKNOWN"})
            self.received.append(Received(request.url.path, _masked(data)))
            status, answer, order = op(data)
            rule = order.rule if order is not None else None
            delay = (
                rule.delay_s if rule is not None and rule.delay_s else self.config.default_delay_s
            )
            if order is not None and rule is not None:
                if request.url.path == "/v1/pay" and (
                    rule.action is Action.DROP or order.pays_dropped < rule.pay_drops
                ):
                    order.pays_dropped += 1
                    await trio.sleep(_HOLD_S)
                if request.url.path == "/v1/cancel" and order.cancels_dropped < rule.cancel_drops:
                    order.cancels_dropped += 1
                    await trio.sleep(_HOLD_S)
            if delay:
                await trio.sleep(delay)
            bad = rule is not None and rule.action is Action.BAD_SIGNATURE
            bad = bad and request.url.path in ("/v1/pay", "/v1/query")
            return self._answer(status, nonce, answer, bad)

        return endpoint

    def _first_use(self, nonce: str) -> bool:
        now = time.time()
        while self._nonces and next(iter(self._nonces.values())) < now - 600:
            self._nonces.popitem(last=False)
        if not nonce or nonce in self._nonces:
            return False
        self._nonces[nonce] = now
        return True

    def _answer(self, status: int, nonce: str, body: dict[str, Any], bad: bool = False) -> Response:
        payload = json.dumps(body, sort_keys=True).encode()
        stamp = str(int(time.time()))
        signer = self._bad if bad else self._signer
        headers = {
            HEADER_TIMESTAMP: stamp,
            HEADER_SIGNATURE: signer.sign(answer_text(status, nonce, stamp, payload)),
        }
        return Response(payload, status_code=status, headers=headers, media_type="application/json")

    async def _bill(self, request: Request) -> Response:
        day = request.query_params.get("date") or time.strftime("%Y-%m-%d", time.gmtime())
        return PlainTextResponse(self.books.bill(day), media_type="text/csv")

    # -- operations ------------------------------------------------------------------

    def _rule_for(self, code: str, amount: int) -> WalletRule | None:
        return next((r for r in self.config.rules if r.matches(code, amount)), None)

    def _pay(self, data: dict[str, Any]) -> Reply:
        order_no = str(data.get("order_no") or "")
        amount = data.get("amount")
        code = str(data.get("payment_code") or "")
        if not order_no or not isinstance(amount, int) or amount <= 0 or not code.isdigit():
            return 400, {"result": "FAIL", "error": "BAD_REQUEST"}, None
        order = self.books.orders.get(order_no)
        if order is not None:
            if order.amount != amount or order.code != code:
                return 200, {"result": "FAIL", "error": "ORDER_DUPLICATE"}, order
            return 200, self._pay_view(order), order  # a repeat: the order's state
        rule = self._rule_for(code, amount)
        order = self.books.new_order(order_no, amount, str(data.get("currency") or ""), code, rule)
        action = rule.action if rule is not None else Action.APPROVE
        if action in (Action.APPROVE, Action.BAD_SIGNATURE, Action.DROP):
            self.books.settle(order, "PAID")
        elif action is Action.USER_PAYING:
            self.books.advance(order, time.time())
        else:
            order.state = "FAILED"
            order.error = {
                Action.INSUFFICIENT_FUNDS: "INSUFFICIENT_FUNDS",
                Action.EXPIRED: "CODE_EXPIRED",
                Action.INVALID: "CODE_INVALID",
                Action.DUPLICATE: "ORDER_DUPLICATE",
            }[action]
        return 200, self._pay_view(order), order

    def _pay_view(self, order: Order) -> dict[str, Any]:
        result = {"PAID": "SUCCESS", "PAYING": "USER_PAYING"}.get(order.state, "FAIL")
        view = order.view()
        if order.rule is not None and order.rule.reports_amount is not None:
            view["amount"] = order.rule.reports_amount
        if order.state == "CANCELLED":
            view["error"] = "ORDER_CLOSED"
        return {"result": result, **view}

    def _query(self, data: dict[str, Any]) -> Reply:
        order = self.books.orders.get(str(data.get("order_no") or ""))
        if order is None:
            return 200, {"result": "SUCCESS", "state": "NOT_FOUND"}, None
        self.books.advance(order, time.time())
        return 200, {"result": "SUCCESS", **order.view()}, order

    def _cancel(self, data: dict[str, Any]) -> Reply:
        order_no = str(data.get("order_no") or "")
        order = self.books.orders.get(order_no)
        if order is None:
            # never seen: closed now, so a payment arriving late under it is refused
            order = self.books.new_order(order_no, 0, "", "", None)
        self.books.advance(order, time.time())
        self.books.cancel(order)
        return 200, {"result": "SUCCESS", **order.view()}, order

    def _refund(self, data: dict[str, Any]) -> Reply:
        order = self.books.orders.get(str(data.get("order_no") or ""))
        refund_no = str(data.get("refund_no") or "")
        amount = data.get("amount")
        if not refund_no or not isinstance(amount, int) or amount <= 0:
            return 400, {"result": "FAIL", "error": "BAD_REQUEST"}, None
        if order is None:
            return 200, {"result": "FAIL", "error": "ORDER_NOT_FOUND"}, None
        if refund_no in order.refunds:  # a repeat: the same answer
            return 200, {"result": "SUCCESS", "refund_no": refund_no, **order.view()}, order
        if order.state != "PAID":
            return 200, {"result": "FAIL", "error": "ORDER_NOT_PAID", **order.view()}, order
        if amount > order.amount - order.refunded:
            return 200, {"result": "FAIL", "error": "REFUND_EXCEEDS_PAID", **order.view()}, order
        self.books.refund(order, refund_no, amount)
        return 200, {"result": "SUCCESS", "refund_no": refund_no, **order.view()}, order

    def _refund_query(self, data: dict[str, Any]) -> Reply:
        refund_no = str(data.get("refund_no") or "")
        order_no = self.books.refund_orders.get(refund_no)
        if order_no is None:
            return 200, {"result": "SUCCESS", "state": "NOT_FOUND", "refund_no": refund_no}, None
        order = self.books.orders[order_no]
        amount = order.refunds[refund_no]
        answer = {
            "result": "SUCCESS",
            "state": "REFUNDED",
            "refund_no": refund_no,
            "amount": amount,
        }
        return 200, answer, None


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    code = out.get("payment_code")
    if isinstance(code, str):
        out["payment_code"] = mask_payment_code(code)
    return out


def _wrong_rsa(signer: WalletSigner) -> WalletSigner:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return rsa_signer(pem, public)


async def serve_wallet(
    provider: WalletProvider,
    *,
    certificate: Path | None = None,
    key: Path | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (HTTPS when a certificate is given)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"{provider.config.host}:{provider.config.port}"]
    config.accesslog = None
    config.errorlog = None
    if certificate is not None and key is not None:
        config.certfile = str(certificate)
        config.keyfile = str(key)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, provider.app, config)
        task_status.started(int(binds[0].rsplit(":", 1)[1]))
