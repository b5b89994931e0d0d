"""Two nodes on one PostgreSQL serve the same parameter versions: a terminal starts a
download at node A, a version is published meanwhile, and it finishes at node B
(restarted, then whole). Publications race from both sides and still number 1, 2, 3."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.codecs.field48 import decode_field48
from forecourt.switch.journal import open_journal
from forecourt.switch.params import Published

from tests.switch.params_terminal import HeldParams, publish_op, read, records_of, request
from tests.switch.test_cluster import cluster
from tests.switch.test_params_download import _set

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_a_download_moves_between_nodes(tmp_path: Path, postgres_db: str) -> None:
    params = {"chunk_bytes": 256, "version_cache_s": 0.0}
    async with cluster(tmp_path, postgres_db, params=params) as c:
        async with open_journal(postgres_db) as journal:
            await journal.write(publish_op(_set(100, 20)))
        async with c.terminal("a") as ta:
            await ta.sign_on()
            first = read(await ta.exchange(request(ta, 0)))
            assert (first.status, first.version) == ("D", 1)
        async with open_journal(postgres_db) as journal:
            await journal.write(publish_op(_set(300, 22)))
        async with c.terminal("b") as tb:
            hint = await tb.sign_on()
            assert decode_field48(hint.fields["48"])[20] == "00000002"
            moved = read(await tb.exchange(request(tb, 0, 2, first.version)))
            assert (moved.status, moved.chunk, moved.version) == ("R", 1, 2)
            held = HeldParams()
            await held.update(tb)
            assert held.records == records_of(_set(300, 22))


async def test_concurrent_publications_take_one_version_each(
    tmp_path: Path, postgres_db: str
) -> None:
    versions: list[int] = []

    async def publish(prices: int) -> None:
        async with open_journal(postgres_db) as journal:
            (result,) = await journal.write(publish_op(_set(prices, 3)))
            assert isinstance(result, Published)
            versions.append(result.version)

    async with trio.open_nursery() as nursery:
        for prices in (100, 200, 300):
            nursery.start_soon(publish, prices)
    assert sorted(versions) == [1, 2, 3]
