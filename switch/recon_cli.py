"""`forecourt recon import | run | items | resolve | report`: reconciliation for the
back office (docs/reconciliation.md).

Every command takes `--config` (the parties, the business day's cut-over and the
journal's database come from it) and works while the switch runs or not. Each
change is one journal write; actions on items are audited with `--operator`. A
mistake exits 2 with one line naming the thing and the fix.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
from forecourt.switch.business_day import day_bounds
from forecourt.switch.config import ConfigError, SwitchConfig, load_config
from forecourt.switch.config_recon import ReconParty
from forecourt.switch.journal import Journal, JournalError, open_journal
from forecourt.switch.recon import (
    ACTIONS,
    ImportFile,
    ImportResult,
    ItemRefused,
    MatchClass,
    MatchDay,
    RunResult,
)
from forecourt.switch.recon.actions import act_on_item
from forecourt.switch.recon.parse import file_sha256
from forecourt.switch.recon.reads import Item, day_counts, items, report_rows
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

__all__ = ["register"]

_C = "--config /etc/forecourt/forecourt.toml"
_EXAMPLES = {
    "import": f"forecourt recon import {_C} --party bank settlement-2026-12-01.csv",
    "run": f"forecourt recon run {_C} --party bank --day 2026-12-01",
    "items": f"forecourt recon items {_C} --party bank --day 2026-12-01 --state open",
    "resolve": f"forecourt recon resolve 17 {_C} --action write_off --reason 'under 1 EUR'"
    f" --operator alice; forecourt recon resolve 18 {_C} --action advice --operator alice",
    "report": f"forecourt recon report {_C} --party bank --day 2026-12-01 --csv bank-1201.csv",
}
_LABELS = {
    MatchClass.MATCHED: "matched",
    MatchClass.PARTY_ONLY: "at the party only",
    MatchClass.SWITCH_ONLY: "at the switch only",
    MatchClass.AMOUNT_DIFFERS: "amount differs",
    MatchClass.DUPLICATE: "duplicate at the party",
    MatchClass.REVERSED_SETTLED: "reversed at the switch, settled by the party",
}
_BIG_FILE = 1 << 20  # a progress bar from 1 MiB


class _BadInput(Exception):
    """An operator's mistake: one line naming it and the fix."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    recon = subparsers.add_parser("recon", help="settlement and bill files, matching, error items")
    sub = recon.add_subparsers(dest="recon_command", required=True)

    def command(name: str, help_: str, fn: Callable[..., Any]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, epilog=f"example: {_EXAMPLES[name]}")
        p.add_argument("--config", type=Path, required=True, help="switch configuration (TOML)")
        p.set_defaults(func=_run(fn))
        return p

    def party_day(p: argparse.ArgumentParser) -> None:
        p.add_argument("--party", required=True, help="a [[recon.parties]] name")
        p.add_argument("--day", required=True, help="the business day, YYYY-MM-DD")

    p = command("import", "import a party's settlement or bill file", _import)
    p.add_argument("--party", required=True, help="a [[recon.parties]] name")
    p.add_argument("file", type=Path, help="the file, in the party's configured layout")
    p = command("run", "match a party's business day against the journal", _match)
    party_day(p)
    p = command("items", "list error items with the evidence of both sides", _items)
    p.add_argument("--party", help="only this party")
    p.add_argument("--day", help="only this business day, YYYY-MM-DD")
    p.add_argument("--state", choices=("open", "resolved", "all"), default="open",
                   help="open (default), resolved or all")  # fmt: skip
    p.add_argument("--limit", type=int, default=200, help="items to show (default 200)")
    p = command("resolve", "act on an error item and close it (audited)", _resolve)
    p.add_argument("item", type=int, help="the item's number, as `recon items` shows it")
    p.add_argument(
        "--action",
        required=True,
        choices=ACTIONS,
        help="reverse at the party, send the party an advice, adjust the ledger,"
        " write off or resolve",
    )
    p.add_argument("--operator", required=True, help="who acts, for the audit")
    p.add_argument("--reason", default="", help="why (required for write_off)")
    p.add_argument("--amount", type=int, help="adjust: minor units, negative to debit")
    p.add_argument("--account", help="adjust: the ledger account (default: the item's)")
    p = command("report", "a party's day: CSV of the differences and a summary", _report)
    party_day(p)
    p.add_argument("--csv", type=Path, required=True, help="write the differences here")


def _run(fn: Callable[[argparse.Namespace, SwitchConfig, Console], Awaitable[int]]) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            config = load_config(args.config)
            return trio.run(fn, args, config, _console())
        except Exception as exc:
            inner = _innermost(exc)
            if not isinstance(inner, _MISTAKES):
                raise
            print(f"forecourt recon {args.recon_command}: {inner}", file=sys.stderr)
            return 2

    return run


_MISTAKES = (_BadInput, ItemRefused, JournalError, ConfigError)


def _innermost(exc: BaseException) -> BaseException:
    """The failure itself, out of trio's groups of one (the journal's nursery)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _console() -> Console:
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Console(width=None if tty else 200, soft_wrap=True)


def _party(config: SwitchConfig, name: str) -> ReconParty:
    party = config.recon.party(name)
    if party is None:
        known = ", ".join(p.name for p in config.recon.parties) or "none configured"
        raise _BadInput(f"no party {name!r} in [[recon.parties]] ({known})")
    return party


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _BadInput(f"--day {text!r}: give the business day as YYYY-MM-DD") from None


async def _import(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    party = _party(config, args.party)
    if party.kind == "ledger":
        raise _BadInput(f"party {party.name!r} is the ledger: it has no file, `recon run` reads it")
    path: Path = args.file
    if not path.is_file():
        raise _BadInput(f"{path}: no such file")
    sha = file_sha256(path)
    size = path.stat().st_size
    async with open_journal(config) as journal:
        if size < _BIG_FILE:
            result = await _write(journal, ImportFile(party, path, sha, time.time()))
        else:
            columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
            with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("import", total=size)
                with path.open("rb") as fh:
                    average = max(1, size // max(1, sum(1 for _ in fh)))
                tick = lambda n: bar.advance(task, n * average)  # noqa: E731
                result = await _write(journal, ImportFile(party, path, sha, time.time(), tick))
    assert isinstance(result, ImportResult)
    if result.already:
        console.print(f"{path.name}: imported before (SHA-256 {sha[:12]}...), nothing changed")
    else:
        console.print(
            f"{path.name}: {result.lines} lines read, {result.new_lines} new for {party.name}"
            f" ({result.lines - result.new_lines} held already)"
        )
    return 0


async def _write(journal: Journal, op: Any) -> object:
    return (await journal.write(op))[0]


async def _match(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    party = _party(config, args.party)
    day = _day(args.day)
    start, end = day_bounds(day, config.business_day.cutover)
    async with open_journal(config) as journal:
        result = await _write(journal, MatchDay(party, day.isoformat(), start, end, time.time()))
    assert isinstance(result, RunResult)
    console.print(_summary(party.name, day.isoformat(), result.counts))
    console.print(f"{result.new_items} new error items (`forecourt recon items` lists them)")
    return 0


def _summary(party: str, day: str, counts: dict[str, int]) -> Table:
    table = Table(title=f"{party} {day}")
    table.add_column("class")
    table.add_column("lines", justify="right")
    for cls in MatchClass:
        table.add_row(_LABELS[cls], str(counts.get(cls.value, 0)))
    return table


def _money(v: int | None) -> str:
    return "" if v is None else f"{v / 100:.2f}"


def _when(at: float | None) -> str:
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


async def _items(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    if args.party is not None:
        _party(config, args.party)
    day = None if args.day is None else _day(args.day).isoformat()
    state = None if args.state == "all" else args.state
    async with open_journal(config) as journal:
        found = await items(journal, args.party, day, state, limit=args.limit)
    table = Table(title=f"error items ({args.state})")
    for name in ("item", "party", "day", "class", "reference", "party", "switch", "card",
                 "party line", "journal", "state"):  # fmt: skip
        table.add_column(name)
    for it in found:
        table.add_row(
            str(it.id), it.party, it.day, _LABELS[MatchClass(it.match_class)], it.reference,
            _money(it.party_amount), _money(it.switch_amount), it.masked_pan or "",
            _line(it), _journal(it), _state(it),
        )  # fmt: skip
    console.print(table)
    return 0


def _line(it: Item) -> str:
    if it.file_sha is None:
        return ""
    where = "ledger" if it.file_sha == "ledger" else f"{it.file_sha[:8]}:{it.line_no}"
    return f"{where} {it.party_type} {_when(it.party_at)}"


def _journal(it: Item) -> str:
    if it.txn_id is None:
        return ""
    return f"{it.txn_id} {it.terminal_id}/{it.stan} {it.switch_state} {_when(it.received_at)}"


def _state(it: Item) -> str:
    if it.action is None:
        return it.state
    return f"{it.action} by {it.operator} {_when(it.acted_at)}"


async def _resolve(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    # an advice is built from the sealed reversal and sealed again: the SAF key, from the LMK
    saf_key = await trio.to_thread.run_sync(_saf_key, config) if args.action == "advice" else None
    async with open_journal(config, saf_key=saf_key) as journal:
        done = await act_on_item(
            journal, args.item, args.action, args.operator, args.reason, args.amount,
            args.account, acquirers=config.acquirers, saf_key=saf_key,
        )  # fmt: skip
    console.print(f"item {args.item}: {done}; closed by {args.operator}")
    return 0


def _saf_key(config: SwitchConfig) -> bytes:
    """The key the switch seals SAF payloads under, from the key store's LMK (the same
    `[keys]` the switch reads)."""
    from forecourt.keys.errors import KeysError
    from forecourt.keys.store import KeyStore
    from forecourt.switch.server import saf_data_key

    try:
        store = KeyStore.open(
            config.data_dir,
            dsn=config.database,
            lmk_file=config.keys.lmk_file,
            allow_lmk_in_data_dir=config.keys.allow_lmk_in_data_dir,
        )
    except KeysError as exc:  # each names the fix (no LMK, another LMK, no store)
        raise _BadInput(f"--action advice needs the switch's LMK: {exc}") from None
    try:
        return saf_data_key(store.lmk)
    finally:
        store.close()


async def _report(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    party = _party(config, args.party)
    day = _day(args.day).isoformat()
    async with open_journal(config) as journal:
        counts = await day_counts(journal, party.name, day)
        rows = await report_rows(journal, party.name, day)
        open_items = await items(journal, party.name, day, "open", limit=1_000_000)
    if not counts:
        raise _BadInput(f"{party.name} {day} was never matched: run `forecourt recon run` first")
    try:
        with args.csv.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(("party", "day", "class", "reference", "party_amount", "switch_amount",
                          "line_id", "txn_id"))  # fmt: skip
            for r in rows:
                out.writerow((party.name, day, r.match_class, r.reference, r.party_amount,
                              r.switch_amount, r.line_id or "", r.txn_id or ""))  # fmt: skip
    except OSError as exc:
        raise _BadInput(f"--csv {args.csv}: cannot write ({exc.strerror or exc})") from None
    console.print(_summary(party.name, day, counts))
    console.print(
        f"{sum(counts.values())} results, {len(rows)} differences written to {args.csv};"
        f" {len(open_items)} items still open"
    )
    return 0
