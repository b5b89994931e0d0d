"""`forecourt journal batches`: the batch uploads of offline advices, as their last
trailer left them (docs/terminal-interfaces.md), for the desk that calls a terminal
whose batch stays out of balance."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from forecourt.switch.journal.model import JournalError
from forecourt.switch.journal.reader import QueryReader
from rich.console import Console
from rich.table import Table

_BATCHES = (
    "SELECT terminal_id, batch, trailers, terminal_count, terminal_amount, switch_count,"
    " switch_amount, in_balance, first_at, last_at FROM batches{where}"
    " ORDER BY last_at DESC LIMIT ?"
)


def add_parser(
    jsub: argparse._SubParsersAction[argparse.ArgumentParser],
    location: Callable[[argparse.ArgumentParser], None],
    command: Callable[[Callable[[argparse.Namespace, Console], int]], Any],
    reader: Callable[[argparse.Namespace], QueryReader],
) -> None:
    p = jsub.add_parser(
        "batches",
        help="batch uploads of offline advices: their trailers, in or out of balance",
        epilog="example: forecourt journal batches --config /etc/forecourt/forecourt.toml"
        " --terminal T0000001",
    )
    location(p)
    p.add_argument("--terminal", help="only this terminal id")
    p.add_argument("--limit", type=int, default=50, help="batches to show, latest first (50)")

    def show(args: argparse.Namespace, console: Console) -> int:
        if args.limit < 1:
            raise JournalError("--limit must be at least 1")
        where, params = (" WHERE terminal_id = ?", [args.terminal]) if args.terminal else ("", [])
        opened = reader(args)
        try:
            rows = opened.view(_BATCHES.format(where=where), [*params, args.limit])
        finally:
            opened.close()  # type: ignore[attr-defined]
        console.print(_table(rows, args.terminal))
        return 0

    p.set_defaults(func=command(show))


def _ts(value: object) -> str:
    return datetime.fromtimestamp(float(str(value)), UTC).isoformat(timespec="seconds")


def _table(rows: Any, terminal: str | None) -> Table:
    t = Table(title="batches" + (f" of terminal {terminal}" if terminal else ""))
    for col in ("terminal", "batch", "trailers", "terminal's", "switch's", "balance", "last"):
        t.add_column(col)
    for r in rows:
        balance = "in balance" if r["in_balance"] else "OUT OF BALANCE"
        t.add_row(
            str(r["terminal_id"]),
            str(r["batch"]),
            str(r["trailers"]),
            f"{r['terminal_count']} / {int(r['terminal_amount']) / 100:.2f}",
            f"{r['switch_count']} / {int(r['switch_amount']) / 100:.2f}",
            balance,
            _ts(r["last_at"]),
        )
    return t
