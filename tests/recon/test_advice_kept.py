"""`[recon] keep_sealed_days`: the next morning's advice. An approved sale's parked
reversal ends at its hold (the SAF sweep's ExpireParked) or its shift's close; with
keep_sealed_days > 0 its sealed request is kept in `recon_sealed` until the end of
its business day plus N days, so the advice can still be built from it, once. With
0 the same advice is refused as before. The sweep erases a kept row past erase_at,
and a reconciliation run that matches the sale erases it at once. Real journal
(SQLite file, and PostgreSQL for the advice itself); the party's file is the
planted day of tests/recon/scenario.py."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from forecourt.codecs.family import Family
from forecourt.switch.business_day import business_day_of, day_bounds
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.journal import (
    PARKED_HORIZON_S,
    CancelShiftParked,
    EnqueueSaf,
    ExpireParked,
    Journal,
    SafSealer,
    open_journal,
)
from forecourt.switch.recon import ItemRefused
from forecourt.switch.recon.reads import Item, items
from forecourt.switch.reversal import saf_message, saf_payload

from tests.recon import scenario
from tests.recon.test_advice import KEY, PAN, _advise, _parked, _request
from tests.recon.test_matching import _import, _match


def _config(tmp: Path, days: int, dsn: str | None = None) -> SwitchConfig:
    base = scenario.CONFIG.format(
        data_dir=tmp, database=f'database = "{dsn}"' if dsn else ""
    ).replace("[[recon.parties]]", f"[recon]\nkeep_sealed_days = {days}\n[[recon.parties]]", 1)
    return parse_config(tomllib.loads(base), base_dir=tmp)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dsn(request: pytest.FixtureRequest) -> Iterator[str | None]:
    yield request.getfixturevalue("postgres_db") if request.param == "postgres" else None


async def _txn_of(journal: Journal, rrn: str) -> str:
    [(txn_id,)] = await journal.rows(
        "SELECT txn_id FROM transactions WHERE rrn = ? AND route = 'bank'", (rrn,)
    )
    return str(txn_id)


async def _park_held(journal: Journal, txn_id: str, amount: int, held_s: float) -> None:
    """The sealed reversal parked for the approved sale, parked `held_s` ago."""
    reversal = _parked(_request(amount, Family.ISO1993), Family.ISO1993)
    sealed = SafSealer(KEY).seal(saf_payload(reversal), txn_id, "bank", reversal.mti)
    now = time.time()
    await journal.write(
        EnqueueSaf(txn_id, "bank", reversal.mti, sealed, now - held_s, now + PARKED_HORIZON_S + 60)
    )


async def _expire(journal: Journal, cfg: SwitchConfig, now: float) -> tuple[int, int, int]:
    """The SAF sender's sweep, as it writes it (switch/saf.py)."""
    (counts,) = await journal.write(
        ExpireParked(now - cfg.reversal.hold_approved_s, now - 86400.0, now)
    )
    assert isinstance(counts, tuple)
    return counts


async def _day(journal: Journal, cfg: SwitchConfig, tmp: Path) -> dict[str, Item]:
    await _import(journal, cfg, "bank", scenario.csv_file(tmp / "s.csv"))
    await _match(journal, cfg, "bank")
    return {i.reference: i for i in await items(journal) if i.party == "bank"}


async def _kept(journal: Journal) -> dict[str, float]:
    rows = await journal.rows("SELECT txn_id, erase_at FROM recon_sealed")
    return {str(t): float(e) for t, e in rows}


def test_the_next_mornings_advice_is_built_from_the_kept_sealed_request(
    dsn: str | None, tmp_path: Path
) -> None:
    cfg = _config(tmp_path, 1, dsn)
    hold = cfg.reversal.hold_approved_s

    async def main() -> None:
        async with open_journal(cfg, saf_key=KEY) as journal:
            await scenario.journal_day(journal)
            lost = await _txn_of(journal, "000000000004")
            await _park_held(journal, lost, 4200, hold + 60)
            erased, _, _ = await _expire(journal, cfg, time.time())
            [entry] = await journal.saf_entries_of([lost])
            kept = await _kept(journal)
            [(payload,)] = await journal.rows(
                "SELECT payload FROM recon_sealed WHERE txn_id = ?", (lost,)
            )
            by = await _day(journal, cfg, tmp_path)
            done = await _advise(journal, cfg, by["000000000004"])
            [sent] = await journal.saf_claim("n1", limit=5, link="bank")
            left = await _kept(journal)
        # the parked reversal ended exactly as before: erased, never sent
        assert erased == 1 and entry.state == "done"
        assert PAN.encode() not in bytes(payload)  # still sealed under the SAF key
        day = business_day_of(scenario.NOON, cfg.business_day.cutover)
        assert kept == {lost: day_bounds(day, cfg.business_day.cutover)[1] + 86400}
        assert done == f"advice 1220 of {lost} queued for bank"
        advice = saf_message(sent.payload)
        assert (advice.mti, advice.fields["2"], advice.fields["4"]) == ("1220", PAN, "000000004200")
        assert left == {}  # one use: deleted in the advice's own write

    trio.run(main)


def test_without_keep_sealed_days_the_same_advice_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 0)

    async def main() -> None:
        async with open_journal(cfg, saf_key=KEY) as journal:
            await scenario.journal_day(journal)
            lost = await _txn_of(journal, "000000000004")
            await _park_held(journal, lost, 4200, cfg.reversal.hold_approved_s + 60)
            assert (await _expire(journal, cfg, time.time()))[0] == 1
            assert await _kept(journal) == {}
            by = await _day(journal, cfg, tmp_path)
            with pytest.raises(ItemRefused, match="no sealed card data is held"):
                await _advise(journal, cfg, by["000000000004"])

    trio.run(main)


def test_a_shifts_close_keeps_it_and_the_sweep_erases_it_past_erase_at(
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path, 1)

    async def main() -> None:
        async with open_journal(cfg, saf_key=KEY) as journal:
            await scenario.journal_day(journal)
            lost = await _txn_of(journal, "000000000004")
            await journal.update(lost, shift_id="S1")
            await _park_held(journal, lost, 4200, 0.0)
            (cancelled,) = await journal.write(CancelShiftParked("T0000001", "S1"))
            erase_at = (await _kept(journal))[lost]
            before = await _expire(journal, cfg, erase_at - 1)
            still = await _kept(journal)
            after = await _expire(journal, cfg, erase_at + 1)
            gone = await _kept(journal)
        assert cancelled == 1
        assert before[2] == 0 and still == {lost: erase_at}
        assert after[2] == 1 and gone == {}

    trio.run(main)


def test_a_matched_run_erases_the_kept_request(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 1)

    async def main() -> None:
        async with open_journal(cfg, saf_key=KEY) as journal:
            await scenario.journal_day(journal)
            settled = await _txn_of(journal, "000000000001")
            lost = await _txn_of(journal, "000000000004")
            for txn_id in (settled, lost):
                await _park_held(journal, txn_id, 1000, cfg.reversal.hold_approved_s + 60)
            assert (await _expire(journal, cfg, time.time()))[0] == 2
            before = set(await _kept(journal))
            await _day(journal, cfg, tmp_path)
            after = set(await _kept(journal))
        assert before == {settled, lost}
        assert after == {lost}  # the matched sale's went; the missing one's stays

    trio.run(main)
