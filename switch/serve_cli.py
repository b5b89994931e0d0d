"""`forecourt serve`: run the switch until SIGTERM or Ctrl-C.

The first signal drains (stop accepting, finish what is in hand, flush the
journal, exit 0); a second one exits at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import structlog
import trio
from forecourt.keys.errors import KeysError
from forecourt.switch.config import ConfigError, SwitchConfig, load_config
from forecourt.switch.log import configure_logging
from forecourt.switch.server import run_switch

log = structlog.get_logger("forecourt.serve")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="run the switch")
    parser.add_argument("--config", type=Path, default=Path("conf/forecourt.toml"))
    parser.set_defaults(func=run)


async def serve(config: SwitchConfig) -> None:
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                async for signum in signals:
                    if stop.is_set():
                        log.warning("second_signal_exit_now", signal=signum)
                        os._exit(130)
                    log.info("signal_received_draining", signal=signum)
                    stop.set()

            nursery.start_soon(watch_signals)
            await run_switch(config, stop=stop)
            nursery.cancel_scope.cancel()


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"forecourt serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"forecourt serve: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 2
    configure_logging(config.logging.level, config.logging.format)
    try:
        trio.run(serve, config)
    except KeysError as exc:
        print(f"forecourt serve: {exc}", file=sys.stderr)
        return 2
    return 0
