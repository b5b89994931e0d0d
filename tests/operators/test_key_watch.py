"""A terminal registered while the switch runs is known without a restart, on SQLite.

The key store's watch runs on every backend: `keys add-terminal` writes an audit
row; the switch's watch (every 2 s, docs/deployment.md) reads it and refreshes the
terminal registry. The test registers through a second `KeyStore` on the same
SQLite file, as the CLI process does.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio
from forecourt.keys.exchange import install_key_change

from tests.switch.harness import started_switch

WATCH_PERIOD_S = 2.0  # KeyringCache.watch's documented period


async def test_terminal_added_while_serving_is_known_within_the_watch_period(
    tmp_path: Path,
) -> None:
    async with (
        started_switch(tmp_path, terminals=("T0000001",)) as sut,
        sut.terminal("T0000009") as stranger,
    ):
        before = await stranger.exchange(stranger.purchase(1000))
        assert before.fields["39"] == "109"  # unknown terminal

        ceremony = sut.store.add_terminal("T0000009", actor="cli:test")
        added = time.monotonic()
        stranger.kek = ceremony.clear_kek
        stranger.tak = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
        code = "109"
        while code == "109" and time.monotonic() - added < WATCH_PERIOD_S + 2.0:
            await trio.sleep(0.2)
            code = (await stranger.exchange(stranger.purchase(1000))).fields["39"]
        assert code == "000", f"still {code} {time.monotonic() - added:.1f} s after add"
        assert time.monotonic() - added <= WATCH_PERIOD_S + 2.0
