"""`forecourt day close | show | list | host-totals`: the business day for operators.

`close` closes a day on demand as the cut-over does (once: a day closed already,
by a node or an operator, is left as it is). `host-totals` queues the day's
reconciliation request for each ISO 8583 acquirer (or one); a running switch node
with the link up sends it within `[business_day] poll_s`, and the command waits
for the answers. `show` and `list` only read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

import trio
from forecourt.switch.business_day import business_day_of, day_bounds
from forecourt.switch.config import ConfigError, SwitchConfig, load_config
from forecourt.switch.journal import Journal, JournalError, open_journal
from forecourt.switch.operator_commands import operator_console
from rich.console import Console
from rich.table import Table

from .closer import BusinessDay, day_lines_now, iso8583_acquirers
from .ops import RequestHostTotals
from .store import frozen_lines
from .totals import DIMENSIONS, DayLine

__all__ = ["register"]


class _BadInput(Exception):
    """An operator's mistake: one line naming the thing and the fix."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    day = subparsers.add_parser(
        "day",
        help="the business day: close it, show its totals, exchange host totals",
        epilog="example: forecourt day show --config /etc/forecourt/forecourt.toml",
    )
    sub = day.add_subparsers(dest="day_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "close",
        help="close a business day now (freeze its totals, queue its host totals)",
        epilog="example: forecourt day close --config /etc/forecourt/forecourt.toml"
        " --day 2026-11-30",
    )
    _common(p)
    p.set_defaults(func=_cmd(_close))

    p = sub.add_parser(
        "show",
        help="a day's frozen totals, late lines and host totals",
        epilog="example: forecourt day show --config /etc/forecourt/forecourt.toml"
        " --day 2026-11-30 --by acquirer",
    )
    _common(p)
    p.add_argument("--by", choices=DIMENSIONS, help="only one breakdown (default: all four)")
    p.set_defaults(func=_cmd(_show))

    p = sub.add_parser(
        "list",
        help="the closed business days, newest first",
        epilog="example: forecourt day list --config /etc/forecourt/forecourt.toml",
    )
    p.add_argument("--config", type=Path, required=True, help="switch configuration (TOML)")
    p.add_argument("--limit", type=int, default=30, help="days to show (default 30)")
    p.set_defaults(func=_cmd(_list))

    p = sub.add_parser(
        "host-totals",
        help="send a day's reconciliation request (1520 / 0500) to the ISO 8583 acquirers",
        epilog="example: forecourt day host-totals --config /etc/forecourt/forecourt.toml"
        " --acquirer bank",
    )
    _common(p)
    p.add_argument("--acquirer", help="only this acquirer (an [[acquirers]] name)")
    p.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for a running node to send it and the host to answer (30)",
    )
    p.set_defaults(func=_cmd(_host_totals))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="switch configuration (TOML)")
    p.add_argument(
        "--day",
        help="the business day, YYYY-MM-DD (the date it began); default: the last that ended",
    )


def _cmd(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            config = load_config(args.config)
            return int(trio.run(fn, args, config, operator_console()))
        except (_BadInput, JournalError, ConfigError) as exc:
            print(f"forecourt day: error: {exc}", file=sys.stderr)
            return 2

    return run


def _day(args: argparse.Namespace, config: SwitchConfig) -> dt.date:
    cutover = config.business_day.cutover
    if not args.day:
        return business_day_of(time.time(), cutover) - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(args.day)
    except ValueError:
        raise _BadInput(f"--day {args.day!r} is not a date: give YYYY-MM-DD") from None


def _ts(value: object) -> str:
    if value is None:
        return ""
    return dt.datetime.fromtimestamp(float(str(value)), dt.UTC).isoformat(timespec="seconds")


async def _close(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    day = _day(args, config)
    _, end = day_bounds(day, config.business_day.cutover)
    if end > time.time():
        raise _BadInput(
            f"business day {day} has not ended (its cut-over is at {_ts(end)}): close it after"
        )
    actor = f"{getpass.getuser()}@{config.node}"
    async with open_journal(config) as journal:
        closer = BusinessDay(
            config.business_day, journal, {}, actor, acquirers=iso8583_acquirers(config)
        )
        closed = await closer.close_day(day, "operator")
    if closed is None:
        console.print(f"business day {day} was closed already: nothing changed")
        return 0
    console.print(
        f"business day {day} closed by {actor}: {len(closed.closed_shifts)} shifts closed,"
        f" {closed.rolled} rolled, {closed.host_requests} host totals queued"
    )
    return 0


async def _day_row(journal: Journal, day: dt.date) -> tuple[Any, ...] | None:
    rows = await journal.rows(
        "SELECT day, start_at, end_at, closed_at, closed_by, reason, open_shifts, "
        "shifts_closed, shifts_rolled, late_at FROM business_days WHERE day = ?",
        (day.isoformat(),),
    )
    return rows[0] if rows else None


def _lines_table(title: str, lines: list[DayLine], by: str | None) -> Table:
    table = Table(title=title)
    for column in ("by", "key", "currency", "category", "count", "amount"):
        table.add_column(column, justify="right" if column in ("count", "amount") else "left")
    for line in lines:
        if by is None or line.dimension == by:
            table.add_row(
                line.dimension, line.key, line.currency, line.category,
                str(line.count), str(line.amount),
            )  # fmt: skip
    return table


async def _show(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    day = _day(args, config)
    async with open_journal(config) as journal:
        row = await _day_row(journal, day)
        if row is None:
            lines = await day_lines_now(journal, day, config.business_day.cutover)
            console.print(_lines_table(f"business day {day}: open, counted now", lines, args.by))
            return 0
        frozen = frozen_lines(_sync(await journal.rows(_FROZEN, (day.isoformat(), False))), "")
        late = frozen_lines(_sync(await journal.rows(_FROZEN, (day.isoformat(), True))), "")
        hosts = await journal.rows(_HOSTS, (day.isoformat(),))
    console.print(
        f"business day {day}: {_ts(row[1])} to {_ts(row[2])}, closed {_ts(row[3])} by"
        f" {row[4]} ({row[5]}); shifts {row[6]}: {row[7]} closed, {row[8]} rolled"
    )
    console.print(_lines_table("frozen at the close", frozen, args.by))
    if late:
        console.print(_lines_table(f"late (counted {_ts(row[9])})", late, args.by))
    if hosts:
        console.print(_hosts_table(hosts))
    return 0


_FROZEN = (
    "SELECT dimension, key, currency, category, count, amount, late FROM business_day_totals "
    "WHERE day = ? AND late = ? ORDER BY dimension, key, currency, category"
)
_HOSTS = (
    "SELECT id, acquirer, state, sent_at, request_mti, stan, action_code, in_balance, ours, "
    "theirs, error FROM host_totals WHERE day = ? ORDER BY id"
)


def _sync(rows: list[tuple[Any, ...]]) -> Any:
    """Rows already read, as the query `frozen_lines` takes."""
    return lambda _sql, _params: rows


def _result(in_balance: object, state: object) -> str:
    if state != "answered":
        return str(state)
    if in_balance is None:
        return "not reconciled"
    return "in balance" if bool(in_balance) else "OUT OF BALANCE"


def _hosts_table(rows: list[tuple[Any, ...]]) -> Table:
    table = Table(title="host totals")
    for column in ("id", "acquirer", "sent", "mti", "stan", "code", "result", "ours", "theirs"):
        table.add_column(column)
    for r in rows:
        ours = json.loads(r[8]) if r[8] else None
        theirs = json.loads(r[9]) if r[9] else None
        table.add_row(
            str(r[0]), str(r[1]), _ts(r[3]), str(r[4] or ""), str(r[5] or ""),
            str(r[6] or ""), _result(r[7], r[2]) + (f" ({r[10]})" if r[10] else ""),
            _figures(ours), _figures(theirs),
        )  # fmt: skip
    return table


def _figures(f: dict[str, Any] | None) -> str:
    if f is None:
        return ""
    return (
        f"debits {f['debits'][0]}/{f['debits'][1]} rev {f['debit_reversals'][0]}/"
        f"{f['debit_reversals'][1]} credits {f['credits'][0]}/{f['credits'][1]} rev "
        f"{f['credit_reversals'][0]}/{f['credit_reversals'][1]}"
    )


async def _list(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    if args.limit < 1:
        raise _BadInput("--limit must be at least 1")
    async with open_journal(config) as journal:
        rows = await journal.rows(
            "SELECT day, closed_at, closed_by, reason, shifts_closed, shifts_rolled, late_at "
            "FROM business_days ORDER BY day DESC LIMIT ?",
            (args.limit,),
        )
    table = Table(title="closed business days")
    for column in ("day", "closed", "by", "reason", "shifts closed", "rolled", "late counted"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r[0]), _ts(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), _ts(r[6]))
    console.print(table)
    return 0


async def _host_totals(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    day = _day(args, config)
    names = iso8583_acquirers(config)
    if args.acquirer is not None:
        if args.acquirer not in names:
            raise _BadInput(
                f"--acquirer {args.acquirer!r} is not an ISO 8583 acquirer of this"
                f" configuration (there are: {', '.join(names) or 'none'})"
            )
        names = (args.acquirer,)
    if not names:
        raise _BadInput("no ISO 8583 acquirer is configured: nothing to reconcile with")
    if args.wait < 0:
        raise _BadInput("--wait must be 0 or more seconds")
    actor = f"{getpass.getuser()}@{config.node}"
    async with open_journal(config) as journal:
        ids = []
        for name in names:
            (request_id,) = await journal.write(
                RequestHostTotals(day.isoformat(), name, time.time(), actor)
            )
            ids.append(int(str(request_id)))
        marks = ", ".join("?" for _ in ids)
        query = _HOSTS.replace("day = ?", f"id IN ({marks})")
        with trio.move_on_after(args.wait):
            while True:
                rows = await journal.rows(query, tuple(ids))
                if all(r[2] in ("answered", "failed") for r in rows):
                    break
                await trio.sleep(0.2)
        rows = await journal.rows(query, tuple(ids))
    console.print(_hosts_table(rows))
    waiting = [str(r[1]) for r in rows if r[2] not in ("answered", "failed")]
    if waiting:
        print(
            f"forecourt day: host totals for {', '.join(waiting)} still queued after"
            f" {args.wait:g} s: a running node with the link up sends them",
            file=sys.stderr,
        )
        return 1
    return 0
