"""`forecourt journal ...` and `forecourt db migrate`: read the journal, set up its schema.

Reads go straight to a read connection (no switch needs to run); output is rich
tables; bad input exits 2 with one line. Nothing here can print a full PAN: the
journal never holds one.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from forecourt.switch.batches_cli import add_parser as add_batches_parser
from forecourt.switch.config import ConfigError, load_config
from forecourt.switch.grey_cli import add_parser as add_grey_parser
from forecourt.switch.journal.model import JournalError, SafState, TxnState
from forecourt.switch.journal.opening import open_backend
from forecourt.switch.journal.postgres import PostgresReader
from forecourt.switch.journal.sqlite import SqliteReader
from forecourt.switch.operator_commands import operator_console
from forecourt.switch.operator_reversal import add_parser as add_reverse_parser
from forecourt.switch.terminals.cashier_totals import cashier_table
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table


class _BadInput(Exception):
    pass


_C = "--config /etc/forecourt/forecourt.toml"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    journal = subparsers.add_parser("journal", help="inspect the transaction journal")
    jsub = journal.add_subparsers(dest="journal_command", required=True)

    p = jsub.add_parser(
        "list",
        help="latest transactions",
        epilog=f"example: forecourt journal list {_C} --terminal T0000001 --limit 20",
    )
    _location(p)
    p.add_argument("--terminal", help="only this terminal id")
    p.add_argument("--state", choices=[s.value for s in TxnState], help="only this state")
    p.add_argument("--limit", type=int, default=50, help="rows to show (default 50)")
    p.set_defaults(func=_cmd(_list))

    p = jsub.add_parser(
        "show",
        help="one transaction and its events",
        epilog="example: forecourt journal show 01J9Z... --config /etc/forecourt/forecourt.toml",
    )
    _location(p)
    p.add_argument("txn_id", help="the transaction id, as `journal list` shows it")
    p.set_defaults(func=_cmd(_show))

    p = jsub.add_parser(
        "saf",
        help="store-and-forward queue: depth, oldest, flagged items",
        epilog="example: forecourt journal saf --config /etc/forecourt/forecourt.toml",
    )
    _location(p)
    p.set_defaults(func=_cmd(_saf))

    p = jsub.add_parser(
        "shifts",
        help="terminal shifts: opened, closed, in balance",
        epilog=f"example: forecourt journal shifts {_C} --terminal T0000001",
    )
    _location(p)
    p.add_argument("--terminal", help="only this terminal id")
    p.add_argument("--limit", type=int, default=50, help="shifts to show, newest first (50)")
    p.set_defaults(func=_cmd(_shifts))

    p = jsub.add_parser(
        "totals",
        help="journalled totals of a terminal shift",
        epilog=f"example: forecourt journal totals {_C} --terminal T0000001 --shift 0001",
    )
    _location(p)
    p.add_argument("--terminal", required=True, help="the terminal id (field 41)")
    p.add_argument("--shift", required=True, help="the shift id, as `journal shifts` lists it")
    p.set_defaults(func=_cmd(_totals))

    add_reverse_parser(jsub, _location)
    add_grey_parser(jsub, _location)
    add_batches_parser(jsub, _location, _cmd, _reader)

    db = subparsers.add_parser("db", help="journal database administration")
    dsub = db.add_subparsers(dest="db_command", required=True)
    p = dsub.add_parser(
        "migrate",
        help="create or upgrade the journal schema",
        epilog="example: forecourt db migrate --config /etc/forecourt/forecourt.toml",
    )
    _location(p)
    p.set_defaults(func=_cmd(_migrate))


def _location(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--config", type=Path, help="switch configuration (TOML)")
    g.add_argument("--data-dir", type=Path, help="data directory holding journal.db")
    g.add_argument("--database", help="PostgreSQL DSN")


def _cmd(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args, operator_console()))
        except (_BadInput, JournalError, ConfigError) as exc:
            print(f"forecourt: error: {exc}", file=sys.stderr)
            return 2

    return run


def _target(args: argparse.Namespace) -> Path | str:
    if args.database:
        return str(args.database)
    if args.data_dir:
        return Path(args.data_dir) / "journal.db"
    if args.config:
        cfg = load_config(args.config)
        return cfg.database if cfg.database else cfg.journal_path
    return Path("data") / "journal.db"


class _OneConnection:
    """Stands in for a pool: the CLI reads on one connection (and fails fast)."""

    def __init__(self, dsn: str) -> None:
        try:
            self._conn = psycopg.connect(
                dsn, autocommit=True, row_factory=dict_row, connect_timeout=10
            )
        except psycopg.Error as exc:
            raise _BadInput(
                f"cannot connect to the PostgreSQL journal: {type(exc).__name__}"
            ) from None

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        yield self._conn

    def close(self) -> None:
        self._conn.close()


class _PgReader(PostgresReader):
    def __init__(self, dsn: str) -> None:
        self._one = _OneConnection(dsn)
        super().__init__(self._one)

    def close(self) -> None:
        self._one.close()


def _reader(args: argparse.Namespace) -> SqliteReader | PostgresReader:
    target = _target(args)
    if isinstance(target, str):
        pg = _PgReader(target)
        if pg.schema_version() == 0:
            pg.close()
            raise _BadInput("the database has no journal schema (run `forecourt db migrate`)")
        return pg
    if not target.exists():
        raise _BadInput(f"no journal at {target} (run `forecourt db migrate` or start the switch)")
    reader = SqliteReader(target)
    if reader.schema_version() == 0:
        reader.close()
        raise _BadInput(f"{target} has no journal schema (run `forecourt db migrate`)")
    return reader


def _ts(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")


def _s(value: object) -> str:
    return "" if value is None else str(value)


def _list(args: argparse.Namespace, console: Console) -> int:
    if args.limit < 1:
        raise _BadInput("--limit must be at least 1")
    reader = _reader(args)
    try:
        rows = reader.list_transactions(args.limit, args.terminal, args.state)
    finally:
        reader.close()
    table = Table(title=f"journal: {len(rows)} transaction(s), latest first")
    for col in (
        "received",
        "txn",
        "terminal",
        "stan",
        "mti",
        "state",
        "code",
        "amount",
        "card",
        "route",
        "flags",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            _ts(r.received_at),
            r.txn_id,
            r.terminal_id,
            r.stan,
            f"{r.request_mti}/{_s(r.response_mti)}",
            str(r.state),
            _s(r.action_code),
            _s(r.amount),
            _s(r.masked_pan),
            _s(r.route),
            ",".join(r.flags),
        )
    console.print(table)
    return 0


def _show(args: argparse.Namespace, console: Console) -> int:
    reader = _reader(args)
    try:
        row = reader.get(args.txn_id)
        events = reader.events(args.txn_id) if row else []
    finally:
        reader.close()
    if row is None:
        raise _BadInput(f"no transaction {args.txn_id}")
    table = Table(title=f"transaction {row.txn_id}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name in row.__attrs_attrs__:
        value = getattr(row, name.name)
        if name.name.endswith("_at"):
            text = _ts(value)
        elif name.name == "response_raw":
            text = f"{len(value)} bytes" if value else ""
        elif name.name == "flags":
            text = ", ".join(value)
        else:
            text = _s(value)
        table.add_row(name.name, text)
    console.print(table)
    ev = Table(title="events")
    for col in ("at", "kind", "detail"):
        ev.add_column(col)
    for e in events:
        ev.add_row(_ts(e.at), e.kind, _s(e.detail))
    console.print(ev)
    return 0


def _saf(args: argparse.Namespace, console: Console) -> int:
    reader = _reader(args)
    try:
        stats = reader.saf_stats()
        flagged = reader.saf_entries(SafState.FLAGGED, 100)
    finally:
        reader.close()
    summary = Table(title="store-and-forward", show_header=False)
    summary.add_column("what")
    summary.add_column("value")
    summary.add_row("depth", str(stats.depth))
    summary.add_row("pending", str(stats.pending))
    summary.add_row("in flight", str(stats.in_flight))
    summary.add_row("flagged", str(stats.flagged))
    summary.add_row("delivered", str(stats.done))
    summary.add_row("oldest undelivered", _ts(stats.oldest_created_at))
    for link, depth in sorted(stats.depth_by_link.items()):
        summary.add_row(f"depth {link}", str(depth))
    console.print(summary)
    if flagged:
        t = Table(title="flagged items (need an operator)")
        for col in ("id", "txn", "link", "mti", "attempts", "created", "last error"):
            t.add_column(col)
        for e in flagged:
            t.add_row(
                str(e.id),
                e.txn_id,
                e.link,
                e.mti,
                str(e.attempts),
                _ts(e.created_at),
                _s(e.last_error),
            )
        console.print(t)
    return 0


def _shifts(args: argparse.Namespace, console: Console) -> int:
    reader = _reader(args)
    try:
        shifts = reader.shifts(args.terminal, args.limit)
    finally:
        reader.close()
    t = Table(title="shifts" + (f" of terminal {args.terminal}" if args.terminal else ""))
    for col in ("terminal", "shift", "opened", "closed", "balance"):
        t.add_column(col)
    for shift in shifts:
        balance = {None: "-", True: "in balance", False: "OUT OF BALANCE"}[shift.in_balance]
        closed = "open" if shift.closed_at is None else _ts(shift.closed_at)
        t.add_row(shift.terminal_id, shift.shift_id, _ts(shift.opened_at), closed, balance)
    console.print(t)
    return 0


def _totals(args: argparse.Namespace, console: Console) -> int:
    reader = _reader(args)
    try:
        totals = reader.totals(args.terminal, args.shift)
        shift = reader.shift(args.terminal, args.shift)
    finally:
        reader.close()
    if shift is None and not totals.lines:
        raise _BadInput(
            f"no shift {args.shift!r} of terminal {args.terminal!r} in the journal:"
            f" `forecourt journal shifts --terminal {args.terminal}` lists its shifts"
        )
    title = f"terminal {totals.terminal_id} shift {totals.shift_id}"
    if shift is not None:
        state = "open" if shift.closed_at is None else f"closed {_ts(shift.closed_at)}"
        if shift.in_balance is not None:
            state += ", in balance" if shift.in_balance else ", OUT OF BALANCE"
        title += f" ({state})"
    t = Table(title=title)
    for col in ("tender", "category", "currency", "count", "amount"):
        t.add_column(col)
    for line in totals.lines:  # by tender, then category
        t.add_row(
            line.tender or "-", line.category, line.currency, str(line.count), str(line.amount)
        )
    console.print(t)
    cashiers = cashier_table(shift.totals if shift is not None else None)
    if cashiers is not None:
        console.print(cashiers)
    return 0


def _redact_dsn(dsn: str) -> str:
    """The DSN without a password (never print a secret)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)


def _migrate(args: argparse.Namespace, console: Console) -> int:
    target = _target(args)
    backend = open_backend(target)
    try:
        version = backend.schema_version()
    finally:
        backend.close()
    shown = target if isinstance(target, Path) else _redact_dsn(target)
    console.print(f"journal {shown}: schema version {version}")
    return 0
