"""Every `forecourt` command's help: each option has help text, and each command
that runs something shows an example of its use (walks the real argparse tree)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from forecourt.switch.cli import build_parser, main


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def _leaves() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return [
        (path, p)
        for path, p in _commands(build_parser())
        if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)
    ]


def test_every_option_has_help() -> None:
    missing = [
        f"forecourt {' '.join(path)} {'/'.join(a.option_strings) or a.dest}"
        for path, parser in _commands(build_parser())
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
        and a.help != argparse.SUPPRESS
        and not (a.help or "").strip()
    ]
    assert missing == []


def test_every_command_shows_an_example() -> None:
    missing = [
        " ".join(path)
        for path, parser in _leaves()
        if f"forecourt {' '.join(path)}" not in (parser.epilog or "")
        or not (parser.epilog or "").startswith("example")
    ]
    assert missing == []
    assert len(_leaves()) > 20


def test_forecourt_alone_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    for command in ("serve", "keys", "journal", "sim", "demo", "codec", "db"):
        assert f"\n    {command} " in err
