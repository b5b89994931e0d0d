"""What the operators' commands (`forecourt accounts`, `params`, `terminals`, `day`,
`journal`) share: the console their tables print on, the boundary that turns an
operator's mistake into one line and exit 2, and one journal write of their own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import trio
from forecourt.switch.config import SwitchConfig, load_config
from forecourt.switch.journal import open_journal
from rich.console import Console

__all__ = ["config_command", "journal_write", "operator_console"]


def operator_console() -> Console:
    """Rich tables; wide when piped, so columns are not cut for grep and less."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Console(width=None if tty else 200, soft_wrap=True)


def config_command(
    prefix: str,
    mistakes: tuple[type[Exception], ...],
    fn: Callable[..., int],
) -> Callable[[argparse.Namespace], int]:
    """`fn(args, config, console)` on the `--config` it names; one of `mistakes` is
    printed as `PREFIX: what` on stderr, exit 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            config = load_config(args.config)
            return fn(args, config, operator_console())
        except mistakes as exc:
            print(f"{prefix}: {exc}", file=sys.stderr)
            return 2

    return run


def journal_write(config: SwitchConfig, op: Any) -> Any:
    """One write operation in the configured journal (opened for it); its result."""

    async def go() -> Any:
        async with open_journal(config) as journal:
            (result,) = await journal.write(op)
            return result

    return trio.run(go)
