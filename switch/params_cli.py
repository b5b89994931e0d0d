"""`forecourt params ...`: publish and inspect the parameter sets terminals download.

Every command takes `--config` and works on that switch's journal database, while
the switch runs or not. `publish` checks the whole file first (one line naming
the key and the fix, exit 2, nothing stored) and stores it as the next version;
a version never changes afterwards. Layout: docs/terminal-interfaces.md.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from forecourt.switch.config import ConfigError, SwitchConfig
from forecourt.switch.journal import JournalError
from forecourt.switch.operator_commands import config_command, journal_write
from forecourt.switch.params import (
    KINDS,
    ParamSet,
    ParamsPublish,
    ParamsStates,
    ParamsUnchanged,
    ParamsVersions,
    Published,
    VersionInfo,
    delta_between,
)
from forecourt.switch.params.layout import ParamsFileError, read_params_file
from forecourt.switch.params.model import KIND_BY_NAME
from forecourt.switch.params.wire import MAX_CHUNKS, chunks_of
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

_C = "--config /etc/forecourt/forecourt.toml"
_EXAMPLES = {
    "publish": f"forecourt params publish conf/demo/params-1.toml {_C}",
    "list": f"forecourt params list {_C}",
    "show": f"forecourt params show 2 --kind products {_C}",
    "diff": f"forecourt params diff 1 2 {_C}",
}


class BadInput(Exception):
    """An operator's mistake: one line, exit 2."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    params = subparsers.add_parser("params", help="parameter sets terminals download")
    sub = params.add_subparsers(dest="params_command", required=True)

    def command(name: str, help_: str, fn: Callable[..., int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, epilog=f"example: {_EXAMPLES[name]}")
        p.add_argument("--config", type=Path, required=True, help="switch configuration (TOML)")
        p.set_defaults(func=_run(fn))
        return p

    p = command("publish", "check a parameter file and publish it as the next version", _publish)
    p.add_argument("file", type=Path, help="the parameter set, as conf/demo/params-1.toml")
    p.add_argument(
        "--operator",
        default=os.environ.get("USER") or "unknown",
        help="who publishes, recorded with the version (default: $USER)",
    )
    command("list", "every published version, oldest first", _list)
    p = command("show", "one version's records", _show)
    p.add_argument("version", type=int, help="the version number (params list)")
    p.add_argument("--kind", choices=[k.name for k in KINDS], help="one kind only (default: all)")
    p = command("diff", "what changed from version A to version B", _diff)
    p.add_argument("a", type=int, help="the older version (0: nothing)")
    p.add_argument("b", type=int, help="the newer version")


def _run(fn: Callable[..., int]) -> Callable[[argparse.Namespace], int]:
    mistakes = (BadInput, ParamsFileError, ConfigError, JournalError, OSError)
    return config_command("forecourt params", mistakes, fn)


def _publish(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    parsed = read_params_file(args.file)
    whole = delta_between({}, parsed.params.records)
    chunk_bytes = config.params.chunk_bytes
    needed = len(chunks_of(whole, chunk_bytes))
    if needed > MAX_CHUNKS:
        raise BadInput(
            f"{args.file}: the whole set needs {needed} chunks of {chunk_bytes} bytes, "
            f"at most {MAX_CHUNKS}: raise [params] chunk_bytes or shorten the lists"
        )
    result = journal_write(
        config, ParamsPublish(parsed.params, args.operator, parsed.note, time.time())
    )
    if isinstance(result, ParamsUnchanged):
        raise BadInput(f"{args.file}: the same set as version {result.latest}; nothing published")
    assert isinstance(result, Published)
    console.print(
        f"published version {result.version}: {result.changed} records changed, "
        f"{len(parsed.params.records)} in all"
    )
    return 0


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _list(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    versions: list[VersionInfo] = journal_write(config, ParamsVersions())
    table = Table(title="parameter versions")
    for column in ("version", "published (UTC)", "operator", "records", "changed", "note"):
        table.add_column(
            column, justify="right" if column in ("version", "records", "changed") else "left"
        )
    for v in versions:
        table.add_row(
            str(v.version),
            _when(v.published_at),
            v.operator,
            str(v.records),
            str(v.changed),
            v.note,
        )
    console.print(table if versions else "no parameter version published yet")
    return 0


def _states(config: SwitchConfig, *versions: int) -> list[ParamSet]:
    latest, states = journal_write(config, ParamsStates(versions))
    for version, state in zip(versions, states, strict=True):
        if state is None:
            raise BadInput(f"version {version} does not exist (latest: {latest}; see params list)")
    return [ParamSet(s) for s in states]


def _show(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    (params,) = _states(config, args.version)
    for kind in KINDS:
        if args.kind not in (None, kind.name):
            continue
        table = Table(title=f"version {args.version}: {kind.name}, {kind.title}")
        table.add_column("key")
        for name in kind.values:
            table.add_column(name)
        for key, values in params.of_kind(kind.name):
            table.add_row(key, *values)
        console.print(table)
    return 0


def _diff(args: argparse.Namespace, config: SwitchConfig, console: Console) -> int:
    old, new = _states(config, args.a, args.b)
    delta = delta_between(old.records, new.records)
    table = Table(title=f"from version {args.a} to {args.b}: {len(delta.changes)} records")
    for column in ("change", "kind", "key", "before", "after"):
        table.add_column(column)
    names = {"A": "added", "C": "changed", "D": "deleted"}
    for c in delta.changes:
        before = old.records.get((c.kind, c.key))
        table.add_row(
            names[c.op], c.kind, c.key, _values(c.kind, before), _values(c.kind, c.values or None)
        )
    console.print(table)
    return 0


def _values(kind: str, values: tuple[str, ...] | None) -> str:
    if values is None:
        return ""
    return ", ".join(f"{n}={v}" for n, v in zip(KIND_BY_NAME[kind].values, values, strict=True))
