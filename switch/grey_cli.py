"""`forecourt journal grey`: IC fuel cards' grey records, the flagged ones first.

A flagged record was left open longer than `[ic_cards] grey_record_max_age_s`: the
card never came back for its unlock, and an operator settles it with the card's
issuer. Cards are shown by their masked PAN only (the table holds no PAN).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import trio
from forecourt.switch.config import ConfigError
from forecourt.switch.grey import GreyList, GreyRecord
from forecourt.switch.grey.schema import GREY_STATES
from forecourt.switch.journal import JournalError, open_journal
from rich.console import Console
from rich.table import Table

__all__ = ["add_parser", "grey_records"]


def add_parser(
    jsub: argparse._SubParsersAction[argparse.ArgumentParser],
    location: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = jsub.add_parser(
        "grey",
        help="IC fuel cards' grey records: open, flagged for manual handling, closed",
        epilog="example: forecourt journal grey --config /etc/forecourt/forecourt.toml"
        " --state flagged",
    )
    location(p)
    p.add_argument("--state", choices=GREY_STATES, help="only records in this state")
    p.add_argument("--limit", type=int, default=50, help="records to show, newest first (50)")
    p.set_defaults(func=run)


async def grey_records(target: Path | str, state: str | None, limit: int) -> list[GreyRecord]:
    async with open_journal(target) as journal:
        (rows,) = await journal.write(GreyList(state, limit))
    assert isinstance(rows, list)
    return rows


def _ts(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def run(args: argparse.Namespace) -> int:
    from forecourt.switch.journal_cli import _target

    try:
        target = _target(args)
        if isinstance(target, Path) and not target.exists():
            raise JournalError(f"no journal at {target}: give --config or --data-dir")
        if args.limit < 1:
            raise JournalError("--limit must be 1 or more")
        rows = trio.run(grey_records, target, args.state, args.limit)
    except (JournalError, ConfigError) as exc:
        print(f"forecourt journal grey: {exc}", file=sys.stderr)
        return 2
    flagged = [r for r in rows if r.state == "flagged"]
    table = Table(title="grey records" + (f" ({args.state})" if args.state else ""))
    for col in ("state", "card", "atc", "amount", "terminal", "pump", "recorded",
                "closed", "by", "debited", "at terminal", "node", "flags"):  # fmt: skip
        table.add_column(col)
    for r in sorted(rows, key=lambda r: r.state != "flagged"):
        table.add_row(
            r.state.upper() if r.state == "flagged" else r.state,
            r.masked_pan,
            str(r.atc),
            str(r.amount if r.final_amount is None else r.final_amount),
            r.terminal_id,
            f"{r.pump}/{r.nozzle}",
            _ts(r.recorded_at),
            _ts(r.closed_at),
            r.closed_by or "-",
            str(r.debited),
            r.closing_terminal or "-",
            r.node,
            r.flags or "-",
        )
    console = Console(width=None if sys.stdout.isatty() else 200, soft_wrap=True)
    console.print(table)
    if flagged:
        console.print(f"{len(flagged)} flagged for manual handling: the card never came back")
    return 0
