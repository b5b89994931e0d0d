"""The wallet provider simulator's configuration: where it listens, its keys, its rules.

Rules are tried in order on each new payment; the first whose `code_prefix` and
`amount` match decides what the provider does with it. Cancels, refunds and
queries follow the order's state, not rules (a rule may only make the first
cancels of its orders go unanswered, or make the answers to its payments
badly signed). See docs/wallets.md for the file format.
"""

from __future__ import annotations

import enum
from pathlib import Path

import attrs

from ._toml import Table, load_toml

__all__ = ["Action", "WalletRule", "WalletSimConfig", "load_wallet_config"]


class Action(enum.StrEnum):
    APPROVE = "approve"  # paid at once
    USER_PAYING = "user_paying"  # "user paying" for `paying_s`, then `then`
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED = "expired"  # the payment code has expired
    INVALID = "invalid"  # not a payment code this provider issued
    DROP = "drop"  # no answer at all (the request is held until the switch gives up)
    DUPLICATE = "duplicate"  # the order number is refused as already used
    BAD_SIGNATURE = "bad_signature"  # paid, but the answer's signature is wrong


@attrs.frozen
class WalletRule:
    name: str
    action: Action
    code_prefix: str = ""
    amount: int | None = None
    paying_s: float = 0.0  # user_paying: how long the customer takes
    then: str = "paid"  # user_paying: "paid" or "failed"
    delay_s: float = 0.0  # before answering each request about the order
    cancel_drops: int = 0  # the first N cancels of the order get no answer
    pay_drops: int = 0  # the first N payment requests of the order get no answer
    reports_amount: int | None = None  # a faulty provider: says this amount was paid

    def matches(self, code: str, amount: int) -> bool:
        return code.startswith(self.code_prefix) and (self.amount is None or self.amount == amount)


@attrs.frozen
class WalletSimConfig:
    host: str = "127.0.0.1"
    port: int = 9201
    merchant_id: str = "FORECOURT01"
    scheme: str = "hmac-sha256"
    hmac_secret_file: Path | None = None  # hex; the same secret the switch holds
    private_key_file: Path | None = None  # rsa: the provider's own private key
    switch_public_key_file: Path | None = None  # rsa: the switch's public key
    bill_dir: Path | None = None  # where the daily bill files are written
    rules: tuple[WalletRule, ...] = ()
    default_delay_s: float = 0.0


def load_wallet_config(path: Path) -> WalletSimConfig:
    source = str(path)
    root = Table(load_toml(path), "", source)
    base = path.parent

    def file(t: Table, key: str) -> Path | None:
        value = t.opt_text(key)
        return (base / value) if value is not None else None

    listen = root.table("listen")
    keys = root.table("keys")
    config = WalletSimConfig(
        host=listen.text("host", "127.0.0.1"),
        port=listen.integer("port", 9201, low=0),
        merchant_id=root.text("merchant_id", "FORECOURT01"),
        scheme=keys.text("scheme", "hmac-sha256", ("hmac-sha256", "rsa-sha256")),
        hmac_secret_file=file(keys, "hmac_secret_file"),
        private_key_file=file(keys, "private_key_file"),
        switch_public_key_file=file(keys, "switch_public_key_file"),
        bill_dir=file(root, "bill_dir"),
        default_delay_s=root.number("delay_s", 0.0),
        rules=tuple(_rule(t) for t in root.tables("rules")),
    )
    listen.done()
    keys.done()
    root.done()
    return config


def _rule(t: Table) -> WalletRule:
    try:
        action = Action(t.text("action"))
    except ValueError:
        raise t.error("action", f"must be one of {', '.join(a.value for a in Action)}") from None
    rule = WalletRule(
        name=t.text("name"),
        action=action,
        code_prefix=t.text("code_prefix", ""),
        amount=t.opt_integer("amount"),
        paying_s=t.number("paying_s", 0.0),
        then=t.text("then", "paid", ("paid", "failed")),
        delay_s=t.number("delay_s", 0.0),
        cancel_drops=t.integer("cancel_drops", 0, low=0),
        pay_drops=t.integer("pay_drops", 0, low=0),
        reports_amount=t.opt_integer("reports_amount"),
    )
    if rule.code_prefix and not rule.code_prefix.isdigit():
        raise t.error("code_prefix", "must be digits")
    t.done()
    return rule
