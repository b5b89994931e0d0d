"""Running the console: the journal's writer, the key catalogue and hypercorn's
trio worker in one nursery, until SIGINT or SIGTERM."""

from __future__ import annotations

import functools
import signal
from pathlib import Path
from typing import cast

import attrs
import hypercorn.config
import hypercorn.trio
import structlog
import trio
from forecourt.console.app import ConsoleState, build_app
from forecourt.console.data import ConsoleData
from forecourt.console.sessions import SessionBook, load_secret
from forecourt.keys.catalogue import KeyCatalogue
from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal import open_journal
from hypercorn.typing import Framework
from starlette.applications import Starlette

log = structlog.get_logger("forecourt.console")


@attrs.frozen
class ConsoleListen:
    host: str = "127.0.0.1"
    port: int = 8470
    certfile: Path | None = None
    keyfile: Path | None = None

    @property
    def tls(self) -> bool:
        return self.certfile is not None


def terminal_groups(config: SwitchConfig) -> dict[str, str]:
    """Terminal id -> the group that lists it (groups using the registry list none)."""
    out: dict[str, str] = {}
    for group in config.terminal_groups:
        if not group.uses_registry:
            for tid in group.terminals:
                out.setdefault(tid, group.name)
    return out


async def _signalled() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


def _hypercorn(listen: ConsoleListen) -> hypercorn.config.Config:
    hc = hypercorn.config.Config()
    hc.bind = [f"{listen.host}:{listen.port}"]
    hc.accesslog = None  # a URL may hold a search; the console's audit records actions
    hc.graceful_timeout = 5.0
    if listen.certfile is not None:
        hc.certfile = str(listen.certfile)
        hc.keyfile = None if listen.keyfile is None else str(listen.keyfile)
    return hc


async def serve_console(
    config: SwitchConfig,
    listen: ConsoleListen,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until a signal; reports the bound addresses (``nursery.start``)."""
    secret = await trio.to_thread.run_sync(load_secret, config.data_dir)
    catalogue = await trio.to_thread.run_sync(KeyCatalogue, config.data_dir, config.database)
    try:
        async with open_journal(config) as journal:
            data = ConsoleData(journal)
            metrics = config.metrics
            state = ConsoleState(
                data=data,
                catalogue=catalogue,
                sessions=SessionBook(secret),
                metrics_at=(metrics.host, metrics.port) if metrics.enabled else None,
                terminal_groups=terminal_groups(config),
                link_kinds={a.name: a.kind for a in config.acquirers},
                tls=listen.tls,
            )
            serve = functools.partial(
                hypercorn.trio.serve,
                _asgi(build_app(state)),
                _hypercorn(listen),
                shutdown_trigger=_signalled,
            )
            try:
                async with trio.open_nursery() as nursery:
                    binds = await nursery.start(serve)
                    log.info("console_listening", addresses=binds, journal=_journal_of(config))
                    task_status.started(binds)
            finally:
                data.close()
    finally:
        catalogue.close()


def _asgi(app: Starlette) -> Framework:
    """Starlette's ASGI signature is looser than hypercorn's typing; the same protocol."""
    return cast(Framework, app)


def _journal_of(config: SwitchConfig) -> str:
    return "postgresql" if config.database else str(config.journal_path)
