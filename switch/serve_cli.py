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

import attrs
import structlog
import trio
from forecourt.keys.errors import KeysError
from forecourt.switch.config import ConfigError, SwitchConfig, load_config
from forecourt.switch.instance_lock import InstanceLockError, take_instance_lock
from forecourt.switch.journal.model import JournalError
from forecourt.switch.log import configure_logging
from forecourt.switch.metrics_endpoint import MetricsUnavailable
from forecourt.switch.server import ListenerUnavailable, run_switch
from forecourt.switch.tls import TlsContexts
from forecourt.switch.workers import supervise, worker_metrics_port, worker_node

log = structlog.get_logger("forecourt.serve")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the switch",
        epilog="example: forecourt serve --config /etc/forecourt/forecourt.toml --workers 2",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("conf/forecourt.toml"),
        help="the configuration file (default conf/forecourt.toml; docs/configuration.md)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="switch processes sharing the port (SO_REUSEPORT) and the database (default 1)",
    )
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--instance-lock-fd", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


async def serve(
    config: SwitchConfig,
    worker: bool = False,
    instance_lock_fd: int | None = None,
    tls: TlsContexts | None = None,
) -> None:
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
            if worker:
                await run_switch(
                    config,
                    stop=stop,
                    cluster=True,
                    reuse_port=True,
                    instance_lock_fd=instance_lock_fd,
                    tls=tls,
                )
            else:
                await run_switch(config, stop=stop, tls=tls)
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
    if args.workers < 1 or args.workers > 64:
        print("forecourt serve: --workers must be 1..64", file=sys.stderr)
        return 2
    configure_logging(config.logging.level, config.logging.format, cache=True)
    worker = args.worker_index is not None
    if worker:
        config = attrs.evolve(
            config,
            node=worker_node(config.node, args.worker_index),
            metrics=attrs.evolve(
                config.metrics, port=worker_metrics_port(config.metrics.port, args.worker_index)
            ),
        )
    try:  # CA, certificates and keys loaded once, before anything starts
        tls = TlsContexts.build(config)
    except ConfigError as exc:
        print(f"forecourt serve: {exc}", file=sys.stderr)
        return 2
    if not worker and args.workers > 1:
        return _supervise(args, config)
    try:
        trio.run(serve, config, worker, args.instance_lock_fd, tls)
    except BaseException as exc:
        line = startup_error(exc)
        if line is None or getattr(args, "debug", False):
            raise
        print(f"forecourt serve: {line}", file=sys.stderr)
        return 2
    return 0


def _supervise(args: argparse.Namespace, config: SwitchConfig) -> int:
    """The supervisor holds the instance lock for its workers (see `instance_lock`)."""
    try:
        lock = take_instance_lock(config)
    except InstanceLockError as exc:
        print(f"forecourt serve: {exc}", file=sys.stderr)
        return 2
    try:
        return supervise(args.config, args.workers, instance_lock_fd=lock.fd)
    finally:
        lock.release()


def startup_error(exc: BaseException) -> str | None:
    """The operator's line for a refusal at start (keys and LMK, instance lock,
    journal files), else None.

    The error comes out of trio's nursery as a group of one: look inside.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(
        exc,
        (
            KeysError,
            InstanceLockError,
            ConfigError,
            JournalError,
            ListenerUnavailable,
            MetricsUnavailable,
        ),
    ):
        return str(exc)
    return None
