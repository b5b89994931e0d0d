"""Parameter downloads end to end: a switch on real sockets and a real SQLite journal,
parameter sets published through the journal as `forecourt params publish` does
(another connection to the same database, the switch running)."""

from __future__ import annotations

from pathlib import Path

from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal import open_journal

from tests.switch.harness import started_switch
from tests.switch.params_terminal import HeldParams, publish_op, read, records_of, request


def _set(prices: int, blocked: int) -> dict[str, object]:
    """A set large enough to need several chunks of 256 bytes."""
    return {
        "products": {
            f"P{n}": {"name": f"Fuel {n}", "unit": "L", "unit_price": f"1.{prices + n:03d}"}
            for n in range(8)
        },
        "block_list": {f"707700******{n:04d}": {"reason": "lost"} for n in range(blocked)},
        "receipt": {"header": "STATION 1"},
    }


async def _publish(config: SwitchConfig, doc: dict[str, object]) -> None:
    async with open_journal(config) as journal:
        await journal.write(publish_op(doc))


async def test_download_in_chunks_then_current_then_delta(tmp_path: Path) -> None:
    params = {"chunk_bytes": 256, "version_cache_s": 0.0}
    async with started_switch(tmp_path, params=params) as sut, sut.terminal() as t:
        await _publish(sut.config, _set(100, 20))
        signed_on = await t.sign_on()
        assert decode_field48(signed_on.fields["48"])[20] == "00000001"  # the hint
        held = HeldParams()
        await held.update(t)
        assert held.version == 1 and held.records == records_of(_set(100, 20))
        assert [c.status for c in held.chunks_seen] == ["D"] * held.chunks_seen[0].chunks
        assert held.chunks_seen[0].chunks >= 3
        assert all(len(c.data) <= 256 for c in held.chunks_seen)

        held.chunks_seen.clear()
        await held.update(t)  # already current
        assert [(c.status, c.data) for c in held.chunks_seen] == [("N", "")]

        await _publish(sut.config, _set(200, 18))  # new prices, two cards unblocked
        held.chunks_seen.clear()
        await held.update(t)
        assert held.version == 2 and held.records == records_of(_set(200, 18))
        assert held.chunks_seen[0].status == "D"
        # only the changes travel: eight prices and two deletions
        assert sum(c.data.count("\\") for c in held.chunks_seen) == 10
        # a purchase still goes through
        assert (await t.exchange(t.purchase(1000))).fields["39"] == "000"


async def test_a_version_published_between_chunks_restarts_cleanly(tmp_path: Path) -> None:
    async with started_switch(tmp_path, params={"chunk_bytes": 256}) as sut, sut.terminal() as t:
        await _publish(sut.config, _set(100, 20))
        await t.sign_on()
        first = read(await t.exchange(request(t, 0)))
        assert (first.status, first.chunk, first.version) == ("D", 1, 1)
        await _publish(sut.config, _set(300, 25))
        restarted = read(await t.exchange(request(t, 0, 2, first.version)))
        assert (restarted.status, restarted.chunk, restarted.version) == ("R", 1, 2)
        held = HeldParams()
        await held.update(t)
        assert held.records == records_of(_set(300, 25))


async def test_sign_on_hint_is_cached_and_malformed_requests_get_904(tmp_path: Path) -> None:
    cached = {"version_cache_s": 3600.0}
    async with started_switch(tmp_path, params=cached) as sut, sut.terminal() as t:
        first = await t.sign_on()
        assert "48" not in first.fields  # nothing published: no hint
        await _publish(sut.config, _set(100, 1))
        again = await t.sign_on()
        # the cache is an hour old at most: no database read for this sign-on
        assert "48" not in again.fields
        # a download reads the latest version, and refreshes the cache
        assert read(await t.exchange(request(t, 0))).version == 1
        assert decode_field48((await t.sign_on()).fields["48"])[20] == "00000001"

        no_version = request(t, 0).with_fields({48: encode_field48({21: "001000"})})
        assert (await t.exchange(no_version)).fields["39"] == "904"
        past_the_end = request(t, 0, 9, 1)
        assert (await t.exchange(past_the_end)).fields["39"] == "904"
        not_supported = request(t, 0).with_fields({24: "306"})
        assert (await t.exchange(not_supported)).fields["39"] == "115"
        # the connection still serves
        assert read(await t.exchange(request(t, 1))).status == "N"
