"""`forecourt sim hsm`: the payShield simulator from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from .hsm_console import add_form_key_parser

__all__ = ["add_hsm_parser"]

_COMMANDS = ("A0", "A6", "A8", "BU", "CA", "CC", "G0", "M6", "M8", "NC", "B2")


def add_hsm_parser(kinds: argparse._SubParsersAction[Any]) -> None:
    hsm = kinds.add_parser(
        "hsm",
        help="run the payment HSM simulator (payShield host commands, key-block LMK)",
        epilog="example: forecourt sim hsm --data-dir /tmp/hsm --port 1500",
    )
    hsm.add_argument(
        "--data-dir",
        type=Path,
        help="the simulator's folder: its LMK (hsm-lmk.key) is generated here on first run"
        " (required)",
    )
    hsm.add_argument("--lmk-file", type=Path, help="use this LMK file (64 hex, mode 0600) instead")
    hsm.add_argument("--host", default="127.0.0.1", help="listen address (127.0.0.1)")
    hsm.add_argument("--port", type=int, default=1500, help="host port (1500; 0: any)")
    hsm.add_argument(
        "--header-length", type=int, default=4, help="message header length in characters (4)"
    )
    hsm.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="COMMAND",
        help="answer this command with error 68, command disabled (repeatable)",
    )
    hsm.add_argument(
        "--delay", type=float, default=0.0, help="seconds before each answer (a slow HSM)"
    )
    hsm.add_argument("--quiet", action="store_true", help="do not log each command")
    hsm.set_defaults(func=_hsm)
    console = hsm.add_subparsers(
        dest="hsm_command", metavar="CONSOLE", help="the HSM's console: form-key"
    )
    add_form_key_parser(console)


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"forecourt sim hsm: {message}\n")
    return code


def _hsm(args: argparse.Namespace) -> int:
    from forecourt.keys.errors import LmkError

    from .hsm import HsmSimConfig, HsmSimulator
    from .hsm_keys import load_or_create_lmk

    if args.data_dir is None:
        return _fail("give --data-dir DIR: the simulator's folder, where its LMK is kept")
    unknown = sorted(set(args.disable) - set(_COMMANDS))
    if unknown:
        return _fail(f"--disable {unknown[0]}: not a command of this HSM ({', '.join(_COMMANDS)})")
    if not 1 <= args.header_length <= 32 or args.delay < 0 or not 0 <= args.port <= 65535:
        return _fail("--header-length must be 1..32, --delay 0 or more, --port 0..65535")
    try:
        lmk = load_or_create_lmk(args.data_dir, args.lmk_file)
    except (LmkError, OSError) as exc:
        return _fail(f"LMK: {exc} (give --lmk-file, or a --data-dir this user can write)", 1)
    config = HsmSimConfig(
        lmk=lmk,
        host=args.host,
        port=args.port,
        header_length=args.header_length,
        disabled=frozenset(args.disable),
        delay_s=args.delay,
        log_commands=not args.quiet,
    )
    sim = HsmSimulator(config)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(sim.run)
                sys.stderr.write(
                    f"HSM simulator on {args.host}:{port} (payShield host commands, key-block"
                    f" LMK {lmk.kcv}, header {args.header_length} characters)\n"
                )
                sys.stderr.flush()
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", 1)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(sim.counts_by_command().items()))
    sys.stderr.write(
        f"HSM simulator stopped: {sum(sim.counts.values())} commands ({counts or 'none'});"
        f" {sim.connections_accepted} connections\n"
    )
    return 0
