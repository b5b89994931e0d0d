"""`forecourt accounts ...`: the fleet and consumer ledger for operators.

Every command takes `--config` and works on that switch's journal database, while
the switch runs or not: each change is one journal write, audited in the same
transaction with `--operator` (default $USER). A card is named by its PAN, read
from standard input (a no-echo prompt on a terminal), never from the command line,
where shell history and `ps` would keep it; cards are only ever shown masked.
Amounts are in major units ("150.00"), volumes in litres. Bad input exits 2 with
one line that names the thing.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from forecourt.codecs.masking import mask_pan
from forecourt.keys.errors import KeysError
from forecourt.keys.store import KeyStore
from forecourt.switch.accounts_input import BadInput, money
from forecourt.switch.accounts_input import litres as _litres
from forecourt.switch.accounts_input import products as _products
from forecourt.switch.accounts_input import when as _when
from forecourt.switch.authorisers.ledger import ledger_card_key
from forecourt.switch.config import ConfigError, SwitchConfig
from forecourt.switch.journal import JournalError, open_journal
from forecourt.switch.ledger import (
    LedgerAddCard,
    LedgerAuditList,
    LedgerBalances,
    LedgerCards,
    LedgerCardStatus,
    LedgerFund,
    LedgerOp,
    LedgerOpenAccount,
    LedgerSetLimits,
    LedgerStatement,
    Limits,
    Refused,
    card_reference,
)
from forecourt.switch.ledger.model import ACCOUNT_KINDS, AUTH_LEVELS
from forecourt.switch.operator_commands import config_command, journal_write
from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = subparsers.add_parser("accounts", help="fleet and consumer ledger accounts")
    sub = accounts.add_subparsers(dest="accounts_command", required=True)

    def command(name: str, help_: str, fn: Callable[..., int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, epilog=f"example: {_EXAMPLES[name]}")
        p.add_argument("--config", type=Path, required=True, help="switch configuration (TOML)")
        p.add_argument(
            "--operator",
            default=os.environ.get("USER") or "unknown",
            help="who makes the change, for the audit (default: $USER)",
        )
        p.set_defaults(func=_run(fn))
        return p

    p = command("create", "create an account", _create)
    p.add_argument("account", help=_ACCOUNT)
    p.add_argument("--kind", choices=ACCOUNT_KINDS, required=True, help="fleet (B2B) or consumer")
    p.add_argument("--name", default="", help="the account holder, for statements")
    p.add_argument("--currency", default="978", help="ISO 4217 numeric (default 978)")
    p = command("add-card", "add a card (PAN on stdin) to an account", _add_card)
    p.add_argument("account", help=_ACCOUNT)
    bound = p.add_mutually_exclusive_group()
    bound.add_argument("--vehicle", help="fleet: the vehicle registration the card is bound to")
    bound.add_argument("--driver", help="fleet: the driver the card is bound to")
    p.add_argument("--products", default="", help="allowed product codes, comma-separated")
    for name, status, what in (
        ("block", "blocked", "block a card (PAN on stdin)"),
        ("unblock", "active", "unblock a card (PAN on stdin)"),
        ("lost", "lost", "mark a card lost: declined pick-up from now on, for good"),
    ):
        command(name, what, _status).set_defaults(status=status)
    p = command("top-up", "credit an account", _fund)
    p.add_argument("account", help=_ACCOUNT)
    p.add_argument("amount", help="major units, e.g. 150.00")
    p.add_argument("--note", default="", help="why, for the statement and the audit")
    p.set_defaults(kind="topup")
    p = command("adjust", "correct an account, either way (a note is required)", _fund)
    p.add_argument("account", help=_ACCOUNT)
    p.add_argument("amount", help="major units, negative to debit, e.g. -12.50")
    p.add_argument("--note", required=True, help="why, for the statement and the audit")
    p.set_defaults(kind="adjustment")
    p = command("limits", "set a card's limits at a verification level (PAN on stdin)", _limits)
    p.add_argument(
        "--level", choices=AUTH_LEVELS, required=True, help="how the cardholder was verified"
    )
    for key in ("per-txn", "daily", "monthly"):
        p.add_argument(f"--{key}-amount", help="major units; omit for no limit")
        p.add_argument(f"--{key}-volume", help="litres; omit for no limit")
    p.add_argument("--products", help="allowed product codes, comma-separated ('' = any)")
    p = command("statement", "an account's postings over a period", _statement)
    p.add_argument("account", help=_ACCOUNT)
    p.add_argument("--since", help="UTC date or date-time, ISO 8601 (default: 30 days ago)")
    p.add_argument("--until", help="UTC date or date-time, ISO 8601 (default: now)")
    p = command("balances", "accounts and their books", _balances)
    p.add_argument("account", nargs="?", help="one account (default: all)")
    p = command("cards", "cards, masked, with status and binding", _cards)
    p.add_argument("account", nargs="?", help="one account's cards (default: all)")
    p = command("audit", "who changed what, latest first", _audit)
    p.add_argument("--limit", type=int, default=50, help="how many entries (50)")
    p = command("seed", "create or bring back the accounts and cards of a file", _seed)
    p.add_argument("file", type=Path, help="accounts and cards, as conf/demo/ledger.toml")


_ACCOUNT = "the account's id"
_C = "--config /etc/forecourt/forecourt.toml"
_EXAMPLES = {
    "create": f"forecourt accounts create ACME-FLEET --kind fleet --name 'Acme Haulage' {_C}",
    "add-card": f"forecourt accounts add-card ACME-FLEET --vehicle SP01ABC {_C} < pan.txt",
    "block": f"forecourt accounts block {_C} < pan.txt",
    "unblock": f"forecourt accounts unblock {_C} < pan.txt",
    "lost": f"forecourt accounts lost {_C} < pan.txt",
    "top-up": f"forecourt accounts top-up ACME-FLEET 500.00 --note 'invoice 1042' {_C}",
    "adjust": f"forecourt accounts adjust ACME-FLEET -12.50 --note 'pump 3 fault' {_C}",
    "limits": f"forecourt accounts limits --level pin --daily-amount 300.00 {_C} < pan.txt",
    "statement": f"forecourt accounts statement ACME-FLEET --since 2026-11-01 {_C}",
    "balances": f"forecourt accounts balances ACME-FLEET {_C}",
    "cards": f"forecourt accounts cards ACME-FLEET {_C}",
    "audit": f"forecourt accounts audit --limit 20 {_C}",
    "seed": f"forecourt accounts seed conf/demo/ledger.toml {_C}",
}


def _seed(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    """Bulk load, repeatable: an account comes back to the file's balance (by an
    audited adjustment), a card to its status, products and limits."""
    from forecourt.switch.demo_ledger import load_seed, seed_ledger

    try:
        accounts = load_seed(args.file)
    except (KeyError, ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(
            f"{args.file}: not an accounts file like conf/demo/ledger.toml ({exc})"
        ) from None
    key = _card_key(config)

    async def go() -> None:
        async with open_journal(config) as journal:
            await seed_ledger(journal, key, accounts, time.time(), args.operator)

    trio.run(go)
    cards = sum(len(a.cards) for a in accounts)
    console.print(f"{len(accounts)} accounts and {cards} cards from {args.file}")
    return 0


def _run(fn: Callable[..., int]) -> Callable[[argparse.Namespace], int]:
    mistakes = (BadInput, ConfigError, KeysError, JournalError, OSError)
    return config_command("forecourt accounts", mistakes, fn)


def _write(config: SwitchConfig, op: LedgerOp) -> Any:
    result = journal_write(config, op)
    if isinstance(result, Refused):
        raise BadInput(result.reason)
    return result


def _card_key(config: SwitchConfig) -> bytes:
    store = KeyStore.open(
        config.data_dir,
        dsn=config.database,
        lmk_file=config.keys.lmk_file,
        allow_lmk_in_data_dir=config.keys.allow_lmk_in_data_dir,
    )
    try:
        return ledger_card_key(store.lmk)
    finally:
        store.close()


def _pan() -> str:
    """The PAN from stdin, or a no-echo prompt: never an argument (history, `ps`)."""
    text = getpass.getpass("card PAN: ") if sys.stdin.isatty() else sys.stdin.readline()
    pan = text.strip()
    if not (12 <= len(pan) <= 19 and pan.isascii() and pan.isdigit()):
        raise BadInput("the card PAN on standard input must be 12 to 19 digits")
    return pan


def _create(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    if not (len(args.currency) == 3 and args.currency.isdigit()):
        raise BadInput(f"currency {args.currency!r} is not an ISO 4217 numeric code")
    _write(
        config,
        LedgerOpenAccount(
            args.account, args.kind, args.name, args.currency, time.time(), args.operator
        ),
    )
    out.print(f"account {args.account} created ({args.kind})")
    return 0


def _add_card(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    pan = _pan()
    binding, bound_to = (
        ("vehicle", args.vehicle)
        if args.vehicle
        else ("driver", args.driver)
        if args.driver
        else ("none", "")
    )
    op = LedgerAddCard(
        card_reference(_card_key(config), pan),
        mask_pan(pan),
        args.account,
        binding,
        bound_to,
        _products(args.products),
        time.time(),
        args.operator,
    )
    _write(config, op)
    out.print(f"card {mask_pan(pan)} added to {args.account}")
    return 0


def _status(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    pan = _pan()
    ref = card_reference(_card_key(config), pan)
    _write(config, LedgerCardStatus(ref, args.status, time.time(), args.operator))
    out.print(f"card {mask_pan(pan)} is {args.status}")
    return 0


def _fund(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    amount = money(args.amount, positive=args.kind == "topup")
    _write(
        config, LedgerFund(args.account, args.kind, amount, args.note, time.time(), args.operator)
    )
    out.print(f"{args.kind} of {amount / 100:.2f} on {args.account}")
    return 0


def _limits(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    def opt(value: str | None, read: Callable[[str], int]) -> int | None:
        return None if value is None else read(value)

    def amount(text: str) -> int:
        return money(text, positive=True)

    limits = Limits(
        per_txn_amount=opt(args.per_txn_amount, amount),
        daily_amount=opt(args.daily_amount, amount),
        monthly_amount=opt(args.monthly_amount, amount),
        per_txn_volume=opt(args.per_txn_volume, _litres),
        daily_volume=opt(args.daily_volume, _litres),
        monthly_volume=opt(args.monthly_volume, _litres),
    )
    products = None if args.products is None else _products(args.products)
    pan = _pan()
    op = LedgerSetLimits(
        card_reference(_card_key(config), pan),
        args.level,
        limits,
        products,
        time.time(),
        args.operator,
    )
    _write(config, op)
    out.print(f"limits of {mask_pan(pan)} at {args.level} set")
    return 0


def _stamp(at: object) -> str:
    return datetime.fromtimestamp(float(str(at)), UTC).strftime("%Y-%m-%d %H:%M:%S")


def _statement(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    now = time.time()
    since, until = _when(args.since, now - 30 * 86400), _when(args.until, now)
    if since >= until:
        raise BadInput("--since must be before --until")
    rows = _write(config, LedgerStatement(args.account, since, until))
    table = Table(title=f"postings of {args.account}")
    for column in ("id", "at (UTC)", "kind", "debit", "credit", "amount", "reference", "by"):
        table.add_column(column)
    for pid, at, kind, debit, credit, amount, reference, operator, _ in rows:
        table.add_row(
            str(pid),
            _stamp(at),
            kind,
            debit,
            credit,
            f"{int(amount) / 100:.2f}",
            reference or "",
            operator or "",
        )
    out.print(table)
    return 0


def _balances(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    rows = _write(config, LedgerBalances(args.account))
    table = Table(title="balances")
    for column in ("account", "kind", "name", "currency", "available", "held", "settled"):
        table.add_column(column)
    for account, kind, name, currency, available, held, settled in rows:
        money_ = (f"{int(v) / 100:.2f}" for v in (available, held, settled))
        table.add_row(account, kind, name, currency, *money_)
    out.print(table)
    return 0


def _cards(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    rows = _write(config, LedgerCards(args.account))
    table = Table(title="cards")
    for column in ("card", "account", "bound to", "status", "products", "odometer"):
        table.add_column(column)
    for masked, account, binding, bound_to, status, products, odometer in rows:
        table.add_row(
            masked,
            account,
            f"{binding} {bound_to}".strip(),
            status,
            products or "any",
            "" if odometer is None else str(odometer),
        )
    out.print(table)
    return 0


def _audit(args: argparse.Namespace, config: SwitchConfig, out: Console) -> int:
    if args.limit <= 0:
        raise BadInput("--limit must be positive")
    rows = _write(config, LedgerAuditList(args.limit))
    table = Table(title="ledger audit")
    for column in ("id", "at (UTC)", "operator", "action", "subject", "detail"):
        table.add_column(column)
    for aid, at, operator, action, subject, detail in rows:
        table.add_row(str(aid), _stamp(at), operator, action, subject, detail)
    out.print(table)
    return 0
