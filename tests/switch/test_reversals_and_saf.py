"""Reversals, completions, shift close and SAF over real sockets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio
from forecourt.switch.journal import JournalRow, open_journal

from tests.switch.harness import SwitchUnderTest, started_switch


async def _rows(data_dir: Path) -> list[JournalRow]:
    async with open_journal(data_dir / "journal.db") as journal:
        return await journal.list(limit=100)


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


def _host_mtis(sut: SwitchUnderTest) -> list[str]:
    return [m.mti for m in sut.host.received if m.mti[1] != "8"]


async def test_terminal_reversal_reaches_host_once(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        purchase = t.purchase(5000)
        assert (await t.exchange(purchase)).fields["39"] == "000"
        reversal = t.reversal(purchase)
        answer = await t.exchange(reversal)
        assert answer.mti == "1430"
        assert answer.fields["39"] == "400"
        # retransmitted as a repeat: same answer, nothing more upstream
        again = await t.exchange(reversal.with_fields({}, mti="1421"))
        assert again.fields["39"] == "400"
        await _until(lambda: "1420" in _host_mtis(sut))
        await trio.sleep(0.3)
        assert _host_mtis(sut).count("1420") + _host_mtis(sut).count("1421") == 1
        (sent, host_reversal) = [m for m in sut.host.received if m.mti in ("1200", "1420")]
        # the host sees its own STAN for the original, not the terminal's
        assert host_reversal.fields["56"][4:10] == sent.fields["11"]
    rows = {r.request_mti: r for r in await _rows(tmp_path)}
    assert rows["1200"].state == "reversed"
    assert rows["1420"].state == "approved"


async def test_partial_reversal_keeps_the_final_amount(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        purchase = t.purchase(8000)
        await t.exchange(purchase)
        answer = await t.exchange(t.reversal(purchase, final_amount=6500))
        assert answer.fields["39"] == "400"
        await _until(lambda: "1420" in _host_mtis(sut))
        await trio.sleep(0.2)
    rows = {r.request_mti: r for r in await _rows(tmp_path)}
    assert rows["1200"].state == "approved"
    assert rows["1200"].approved_amount == 6500


async def test_reversal_of_unknown_original_gets_914(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        never_sent = t.purchase(5000)
        answer = await t.exchange(t.reversal(never_sent))
        assert answer.fields["39"] == "914"
        assert "1420" not in _host_mtis(sut)


async def test_reversal_of_original_that_never_reached_a_host_is_local(tmp_path: Path) -> None:
    async with started_switch(tmp_path, link_up=False) as sut, sut.terminal() as t:
        purchase = t.purchase(5000)
        assert (await t.exchange(purchase)).fields["39"] == "912"
        answer = await t.exchange(t.reversal(purchase))
        assert answer.fields["39"] == "400"
        assert sut.host.received == []


async def test_pay_at_pump_preauth_then_completion(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        preauth = t.preauth(10000)
        assert (await t.exchange(preauth)).fields["39"] == "000"
        completion = t.completion(preauth, 6234)
        answer = await t.exchange(completion)
        assert answer.mti == "1230"
        assert answer.fields["39"] == "000"
        await _until(lambda: "1220" in _host_mtis(sut))
        host_completion = next(m for m in sut.host.received if m.mti == "1220")
        assert host_completion.fields["4"] == "000000006234"
        assert host_completion.fields["24"] == "202"
    rows = {r.request_mti: r for r in await _rows(tmp_path)}
    assert rows["1220"].original_txn_id == rows["1100"].txn_id
    assert rows["1220"].flags == ()


async def test_completion_for_unknown_preauth_is_forwarded_and_flagged(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        ghost = t.preauth(10000)
        answer = await t.exchange(t.completion(ghost, 4000))
        assert answer.fields["39"] == "000"
        await _until(lambda: "1220" in _host_mtis(sut))
    rows = {r.request_mti: r for r in await _rows(tmp_path)}
    assert "preauth_unknown" in rows["1220"].flags


async def test_preauth_without_completion_is_reversed_after_the_window(tmp_path: Path) -> None:
    async with started_switch(tmp_path, preauth_window_s=1.0) as sut, sut.terminal() as t:
        assert (await t.exchange(t.preauth(9000))).fields["39"] == "000"
        completed = t.preauth(7000)
        assert (await t.exchange(completed)).fields["39"] == "000"
        await t.exchange(t.completion(completed, 7000))
        await _until(lambda: "1420" in _host_mtis(sut), timeout=5)
        await trio.sleep(0.5)
        reversals = [m for m in sut.host.received if m.mti in ("1420", "1421")]
        assert len(reversals) == 1
        assert reversals[0].fields["4"] == "000000009000"


async def test_shift_close_in_and_out_of_balance(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        assert (await t.sign_on()).fields["39"] == "800"
        async with sut.terminal() as fresh:
            fresh.tak = t.tak
            assert (await fresh.key_change()).fields["39"] == "800"
            await fresh.exchange(fresh.purchase(1000))
            await fresh.exchange(fresh.purchase(2500))
            await fresh.exchange(fresh.purchase(100000))  # declined: not in the totals
            balanced = await fresh.exchange(fresh.shift_close(debits=(2, 3500)))
            assert balanced.mti == "1530"
            assert balanced.fields["39"] == "500"
            # next shift, and the terminal counts one too many
            assert (await fresh.sign_on()).fields["39"] == "800"
            assert (await fresh.key_change()).fields["39"] == "800"
            await fresh.exchange(fresh.purchase(700))
            unbalanced = await fresh.exchange(fresh.shift_close(debits=(2, 1400)))
            assert unbalanced.fields["39"] == "501"
        assert not [m for m in sut.host.received if m.mti == "1520"]
    # each close cancelled the reversals parked for its shift's approved purchases
    async with open_journal(tmp_path / "journal.db") as journal:
        purchases = await journal.list(limit=100, state="approved")
        saf = await journal.saf_entries_of([r.txn_id for r in purchases])
        second = next(r.shift_id for r in purchases if r.amount == 700)
        assert second is not None
        closed = await journal.shift("T0000001", second)
    assert sorted(r.amount or 0 for r in purchases) == [700, 1000, 2500]
    # closed and signed on again within a second: still two shifts, each its own totals
    assert len({r.shift_id for r in purchases}) == 2
    assert closed is not None and closed.totals["switch"]["debits"] == [1, 700]
    assert (
        sorted((e.mti, e.state, e.last_error) for e in saf)
        == [("1420", "done", "cancelled: shift closed")] * 3
    )


async def test_terminal_gone_before_approval_is_reversed(tmp_path: Path) -> None:
    async with started_switch(tmp_path, request_timeout_s=5.0) as sut:
        async with sut.terminal() as t:
            await t.send(t.purchase(200000))  # the host answers after 2 s
            await trio.sleep(0.3)
        await _until(lambda: "1420" in _host_mtis(sut), timeout=6)
        (reversal,) = [m for m in sut.host.received if m.mti == "1420"]
        assert reversal.fields["25"] == "4020"


async def test_saf_retries_with_repeat_mti_until_acknowledged(tmp_path: Path) -> None:
    async with started_switch(tmp_path, saf_backoff_s=0.1) as sut, sut.terminal() as t:
        sut.host.advice_codes = ["909", "912"]  # technical answers: keep trying
        purchase = t.purchase(5000)
        await t.exchange(purchase)
        await t.exchange(t.reversal(purchase))
        await _until(lambda: len([m for m in sut.host.received if m.mti[:2] == "14"]) == 3)
        mtis = [m.mti for m in sut.host.received if m.mti[:2] == "14"]
        assert mtis == ["1420", "1421", "1421"]
        await trio.sleep(0.3)
    rows = {r.request_mti: r for r in await _rows(tmp_path)}
    assert rows["1200"].state == "reversed"
    async with open_journal(tmp_path / "journal.db") as journal:
        stats = await journal.saf_stats()
    assert stats.depth == 0


async def test_saf_flags_an_item_after_max_attempts(tmp_path: Path) -> None:
    async with started_switch(tmp_path, saf_backoff_s=0.05) as sut, sut.terminal() as t:
        sut.host.advice_codes = ["909"] * 20
        purchase = t.purchase(5000)
        await t.exchange(purchase)
        await t.exchange(t.reversal(purchase))
        await _until(lambda: len([m for m in sut.host.received if m.mti[:2] == "14"]) >= 6, 10)
        await trio.sleep(0.5)
        assert len([m for m in sut.host.received if m.mti[:2] == "14"]) == 6
    async with open_journal(tmp_path / "journal.db") as journal:
        stats = await journal.saf_stats()
        flagged = await journal.saf_entries("flagged")
    assert stats.flagged == 1
    assert flagged[0].attempts == 6
    assert "909" in (flagged[0].last_error or "")


async def test_operator_reversal_from_the_cli(tmp_path: Path, capsys: object) -> None:
    from forecourt.switch.cli import main

    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        assert (await t.exchange(t.purchase(4321))).fields["39"] == "000"
        assert (await t.exchange(t.purchase(100000))).fields["39"] == "100"
        rows = {r.action_code: r for r in await _rows(tmp_path)}
        approved, declined = rows["000"], rows["100"]
        code = await trio.to_thread.run_sync(
            main,
            [
                "journal",
                "reverse",
                approved.txn_id,
                "--data-dir",
                str(tmp_path),
                "--reason",
                "pump fault",
            ],
        )
        assert code == 0
        refused = await trio.to_thread.run_sync(
            main, ["journal", "reverse", declined.txn_id, "--data-dir", str(tmp_path)]
        )
        assert refused == 2
        await _until(lambda: "1420" in _host_mtis(sut), timeout=5)
        (reversal,) = [m for m in sut.host.received if m.mti == "1420"]
        assert reversal.fields["4"] == "000000004321"
        await trio.sleep(0.3)
    rows = {r.txn_id: r for r in await _rows(tmp_path)}
    assert rows[approved.txn_id].state == "reversed"
    async with open_journal(tmp_path / "journal.db") as journal:
        events = await journal.events(approved.txn_id)
    assert any(e.kind == "operator_reversal" and "pump fault" in (e.detail or "") for e in events)


async def test_retransmission_of_a_reversed_purchase_is_not_replayed_as_approved(
    tmp_path: Path,
) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        purchase = t.purchase(5000)
        assert (await t.exchange(purchase)).fields["39"] == "000"
        assert (await t.exchange(t.reversal(purchase))).fields["39"] == "400"
        again = await t.exchange(purchase)
        assert again.fields["39"] == "913"
        assert _host_mtis(sut).count("1200") == 1
