"""The one command, `forecourt`: each part registers its own sub-commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, cast

# Each module has `register(subparsers) -> None`, which adds its sub-command(s) and
# sets `func=<callable(args) -> int>` as the parser default.
COMMAND_MODULES: tuple[str, ...] = (
    "forecourt.codecs.cli",
    "forecourt.keys.cli",
    "forecourt.switch.journal_cli",
    "forecourt.switch.serve_cli",
    "forecourt.simulators.cli",
    "forecourt.switch.demo",
    "forecourt.switch.accounts_cli",
    "forecourt.console.cli",
    "forecourt.switch.terminals_cli",
    "forecourt.switch.params_cli",
    "forecourt.switch.day.cli",
    "forecourt.switch.recon_cli",
)


class _Registrar(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


class _ArgumentParser(argparse.ArgumentParser):
    """Exit 2 with one line on bad usage, never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"forecourt: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="forecourt",
        description="ISO 8583 / IFSF fuel-retail payment switch",
        epilog="example: forecourt serve --config /etc/forecourt/forecourt.toml",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of a failure (otherwise one line naming it)",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_ArgumentParser, title="commands"
    )
    for name in COMMAND_MODULES:
        registrar = cast(_Registrar, importlib.import_module(name))
        registrar.register(cast("argparse._SubParsersAction[argparse.ArgumentParser]", sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `forecourt` alone: what there is to run
        parser.print_help(sys.stderr)
        return 2
    func = cast(Callable[[argparse.Namespace], int], args.func)
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"forecourt {args.command}: error: {_innermost(exc)}"
            f" (`forecourt --debug {args.command} ...` shows the traceback)",
            file=sys.stderr,
        )
        return 1


def _innermost(exc: BaseException) -> str:
    """The failure itself, out of trio's groups of one."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
