"""The console served in-process (real hypercorn on 127.0.0.1, real SQLite journal
and key store) for the HTTP tests, and an httpx client per operator."""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from forecourt.console.operators import hash_password
from forecourt.console.serve import ConsoleListen, serve_console
from forecourt.keys.store import KeyStore
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.journal import Journal, open_journal
from forecourt.switch.journal.reader import QueryReader
from forecourt.switch.journal.writes import AddOperator

PASSWORD = "a long test passphrase"  # test only
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_config(tmp_path: Path, database: str | None = None, **extra: Any) -> SwitchConfig:
    """A configuration whose key store exists (SQLite in the data dir, or ``database``)."""
    data_dir = tmp_path / "data"
    lmk = tmp_path / "lmk.key"  # outside the data directory
    if database is not None:
        if not lmk.exists():
            KeyStore.init(data_dir, dsn=database, lmk_file=lmk).close()
        extra["database"] = database
    elif not (data_dir / "keys.db").exists():
        KeyStore.init(data_dir, lmk_file=lmk).close()
    doc: dict[str, Any] = {"node": "console-test", "data_dir": str(data_dir), **extra}
    return parse_config(doc, source="test")


@functools.cache
def password_hash() -> str:
    """PASSWORD's argon2id hash, made once (64 MiB and three passes each time)."""
    return hash_password(PASSWORD)


def audit_lines(journal: Journal, action: str) -> list[tuple[str, str, str, str]]:
    """(operator, action, target, detail) of the console's audit rows for ``action``."""
    reader = journal.backend.open_reader()
    try:
        assert isinstance(reader, QueryReader)
        rows = reader.view(
            "SELECT operator, action, target, detail FROM console_audit "
            "WHERE action = ? ORDER BY id",
            (action,),
        )
        return [(r["operator"], r["action"], r["target"], r["detail"]) for r in rows]
    finally:
        reader.close()


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@attrs.define
class ConsoleRig:
    url: str
    config: SwitchConfig
    journal: Journal  # the test's own handle on the same journal file
    verify: Any = True
    clients: list[httpx.AsyncClient] = attrs.field(factory=list)

    def client(self) -> httpx.AsyncClient:
        """A new client (a browser of its own); closed when the rig stops."""
        client = httpx.AsyncClient(base_url=self.url, verify=self.verify, timeout=10.0)
        self.clients.append(client)
        return client

    async def add_operator(self, name: str, role: str) -> None:
        hashed = await trio.to_thread.run_sync(password_hash)
        await self.journal.write(AddOperator(name, role, hashed, time.time()))

    async def logged_in(self, name: str, role: str) -> httpx.AsyncClient:
        """A client logged in as a new operator ``name`` with ``role``."""
        await self.add_operator(name, role)
        client = self.client()
        form = await client.get("/login")
        answer = await client.post(
            "/login", data={"csrf": csrf_of(form.text), "name": name, "password": PASSWORD}
        )
        assert answer.status_code == 303, answer.text
        return client


@contextlib.asynccontextmanager
async def console_rig(
    tmp_path: Path,
    config: SwitchConfig | None = None,
    listen: ConsoleListen | None = None,
    verify: Any = True,
) -> AsyncIterator[ConsoleRig]:
    cfg = config or console_config(tmp_path)
    where = listen or ConsoleListen(port=0)
    async with open_journal(cfg) as journal, trio.open_nursery() as nursery:
        binds = await nursery.start(serve_console, cfg, where)
        rig = ConsoleRig(binds[0], cfg, journal, verify)
        try:
            yield rig
        finally:
            for client in rig.clients:
                await client.aclose()
            nursery.cancel_scope.cancel()
