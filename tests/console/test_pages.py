"""The read pages over a real journal, key store and switch metrics endpoint."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from forecourt.keys.store import KeyStore
from forecourt.switch.journal import JournalRow, new_txn_id
from forecourt.switch.journal.writes import OpenShift, RecordMacFailure, SetSignedOn
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.metrics_endpoint import serve_metrics

from tests.console.rig import console_config, console_rig

T1, T2 = "T0000001", "T0000002"


def _row(n: int, at: float, **changes: Any) -> JournalRow:
    values: dict[str, Any] = {
        "txn_id": new_txn_id(),
        "node": "n1",
        "terminal_id": T1,
        "stan": f"{n:06d}",
        "mti_class": "2",
        "request_mti": "1200",
        "received_at": at,
        "amount": 4250,
        "currency": "978",
        "masked_pan": "476173******0010",
        "processing_code": "000000",
        "state": "approved",
        "action_code": "000",
        "rrn": f"{n:012d}",
        "switch_ms": float(n),
    }
    values.update(changes)
    return JournalRow(**values)


async def test_transactions_search_by_terminal_pan_rrn_and_time(tmp_path: Path) -> None:
    now = time.time()
    async with console_rig(tmp_path) as rig:
        rows = [
            _row(1, now - 7200),
            _row(2, now - 60, terminal_id=T2, masked_pan="541333******4111"),
            _row(3, now - 30, state="declined", action_code="116"),
        ]
        for r in rows:
            await rig.journal.record_received(r, detail="test")
        client = await rig.logged_in("vic", "viewer")

        async def found(**query: str) -> set[str]:
            page = (await client.get("/transactions", params=query)).text
            return {r.txn_id for r in rows if f"/transactions/{r.txn_id}" in page}

        everything = {r.txn_id for r in rows}
        assert await found() == everything
        assert await found(terminal=T2) == {rows[1].txn_id}
        assert await found(pan="0010") == {rows[0].txn_id, rows[2].txn_id}
        assert await found(pan="541333") == {rows[1].txn_id}
        assert await found(pan="476173******0010") == {rows[0].txn_id, rows[2].txn_id}
        assert await found(rrn="000000000003") == {rows[2].txn_id}
        since = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 3600))
        assert await found(since=since) == {rows[1].txn_id, rows[2].txn_id}
        until = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 3600))
        assert await found(until=until) == {rows[0].txn_id}

        # a full PAN typed in is searched by its mask and never shown back
        full = await client.get("/transactions", params={"pan": "4761739001010010"})
        assert "4761739001010010" not in full.text
        assert 'value="476173******0010"' in full.text
        assert rows[0].txn_id in full.text
        # without a terminal, a PAN or RRN search looks back a day unless told further
        old = _row(4, now - 2 * 86400)
        await rig.journal.record_received(old, detail="test")
        rows.append(old)
        assert old.txn_id not in await found(pan="0010")
        assert old.txn_id not in await found(rrn="000000000004")
        two_days = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 3 * 86400))
        assert old.txn_id in await found(rrn="000000000004", since=two_days)
        assert old.txn_id in await found(pan="0010", terminal=T1)
        bad = await client.get("/transactions", params={"pan": "12345678"})
        assert "first 6, the last 4" in bad.text
        assert (await client.get("/transactions", params={"since": "yesterday"})).status_code == 400


async def test_transaction_detail_shows_the_event_history(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as rig:
        row = _row(7, time.time(), state="forwarded", action_code=None)
        await rig.journal.record_received(row)
        await rig.journal.update(row.txn_id, state="approved", action_code="000")
        client = await rig.logged_in("vic", "viewer")
        page = (await client.get(f"/transactions/{row.txn_id}")).text
        events = page[page.index('id="events"') :]
        assert events.index("forwarded") < events.index("approved")
        assert "476173******0010" in page
        assert (await client.get("/transactions/01NOSUCHTXN000000000000000")).status_code == 404


async def test_terminals_show_keys_guard_and_shift(tmp_path: Path) -> None:
    cfg = console_config(tmp_path, terminal_groups=[{"name": "north-site", "terminals": [T1, T2]}])
    with KeyStore.open(cfg.data_dir, lmk_file=tmp_path / "lmk.key") as store:
        store.add_terminal(T1, actor="test")
        store.add_terminal(T2, actor="test")
        store.rotate(T1, actor="test", activate=True)
        tak = next(k for k in store.list_keys(T1) if k.key_type.value == "TAK" and k.version == 2)
    now = time.time()
    async with console_rig(tmp_path, cfg) as rig:
        await rig.journal.record_received(_row(1, now - 5))
        await rig.journal.write(
            SetSignedOn(T1, True, now),
            OpenShift(T1, "S0001", now),
            RecordMacFailure(T2, 1, now),
            SetSignedOn(T2, False, now),
        )
        client = await rig.logged_in("vic", "viewer")
        page = (await client.get("/terminals")).text
        line1 = page[page.index(f">{T1}<") : page.index("</tr>", page.index(f">{T1}<"))]
        line2 = page[page.index(f">{T2}<") : page.index("</tr>", page.index(f">{T2}<"))]
        assert ">online<" in line1 and f"v2 (KCV {tak.kcv})" in line1
        assert "north-site" in line1 and "S0001" in line1 and "signed on" in line1
        assert ">offline<" in line2 and "locked" in line2 and "signed off" in line2


async def test_keys_page_shows_versions_and_kcvs_never_a_key(tmp_path: Path) -> None:
    cfg = console_config(tmp_path)
    with KeyStore.open(cfg.data_dir, lmk_file=tmp_path / "lmk.key") as store:
        ceremony = store.add_terminal(T1, actor="test")
        store.rotate(T1, actor="custodian-1", reason="daily", activate=True)
        infos = store.list_keys(T1)
        lmk_kcv = store.lmk_kcv
    with sqlite3.connect(cfg.data_dir / "keys.db") as db:
        blocks = [str(r[0]) for r in db.execute("SELECT key_block FROM key_entries")]
    async with console_rig(tmp_path, cfg) as rig:
        officer = await rig.logged_in("sec", "security_officer")
        page = (await officer.get("/keys")).text
        for info in infos:
            assert info.kcv in page
        assert lmk_kcv in page and "custodian-1" in page and "daily" in page
        assert any(blocks)
        for block in blocks:
            assert not block or block not in page
        for clear in (*ceremony.components, ceremony.clear_kek):
            assert clear.hex().upper() not in page.upper()


async def test_links_come_from_the_switch_metrics_endpoint(tmp_path: Path) -> None:
    metrics = SwitchMetrics()
    metrics.set_link_state("bank", "up")
    metrics.set_link_state("fleet", "down")
    metrics.host_timeouts.labels(link="fleet").inc(3)
    healthy = [True]
    async with trio.open_nursery() as nursery:

        def health() -> dict[str, Any]:  # the switch's /healthz JSON: status, code, reasons
            if healthy[0]:
                return {"status": "ok", "code": 200, "reasons": []}
            return {"status": "unhealthy", "code": 503, "reasons": ["link bank down"]}

        port = await nursery.start(serve_metrics, "127.0.0.1", 0, metrics.registry, health)
        spare = {"name": "spare", "host": "127.0.0.1", "port": 9}  # configured, not reported
        cfg = console_config(
            tmp_path, metrics={"host": "127.0.0.1", "port": port}, acquirers=[spare]
        )
        async with console_rig(tmp_path, cfg) as rig:
            client = await rig.logged_in("vic", "viewer")
            table = (await client.get("/links/table")).text
            line = table[table.index(">spare<") : table.index("</tr>", table.index(">spare<"))]
            assert ">iso8583<" in line and ">not reported<" in line
            bank = table[table.index(">bank<") : table.index("</tr>", table.index(">bank<"))]
            fleet = table[table.index(">fleet<") : table.index("</tr>", table.index(">fleet<"))]
            assert ">up<" in bank
            assert ">down<" in fleet and "host_timeouts = 3" in fleet
            assert 'answered <b class="ok">200</b>' in table
            healthy[0] = False
            table = (await client.get("/links/table")).text
            assert 'answered <b class="bad">503</b>' in table
            page = (await client.get("/links")).text
            assert 'hx-get="/links/table"' in page  # htmx refreshes the table
        nursery.cancel_scope.cancel()


async def test_links_say_when_the_switch_cannot_be_reached(tmp_path: Path) -> None:
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # bound, never listening: refused
        cfg = console_config(tmp_path, metrics={"host": "127.0.0.1", "port": closed_port})
        async with console_rig(tmp_path, cfg) as rig:
            client = await rig.logged_in("vic", "viewer")
            table = (await client.get("/links/table")).text
            assert f"cannot reach http://127.0.0.1:{closed_port}" in table


async def test_dashboard_counts_the_journal(tmp_path: Path) -> None:
    now = time.time()
    async with console_rig(tmp_path) as rig:
        for n in range(1, 5):
            await rig.journal.record_received(_row(n, now - 3))
        await rig.journal.record_received(_row(9, now - 3, state="declined", action_code="116"))
        await rig.journal.record_received(_row(10, now - 500))  # outside the window
        client = await rig.logged_in("vic", "viewer")
        board = (await client.get("/api/dashboard")).json()
        assert (board["total"], board["approved"], board["declined"]) == (5, 4, 1)
        assert sum(board["tps"]) == 5
        assert [a for a in board["approval"] if a is not None] == [80.0]  # one second: 4 of 5
        assert max(p for p in board["p99"] if p is not None) == 9.0


async def test_shifts_are_grouped_by_day_with_journalled_totals(tmp_path: Path) -> None:
    now = time.time()
    async with console_rig(tmp_path) as rig:
        await rig.journal.write(OpenShift(T1, "S0042", now))
        await rig.journal.record_received(_row(1, now))
        await rig.journal.record_received(_row(2, now, amount=1000))
        client = await rig.logged_in("vic", "viewer")
        page = (await client.get("/shifts")).text
        assert time.strftime("%Y-%m-%d", time.gmtime(now)) in page
        assert "S0042" in page and "debit 2 × = 5250 (978)" in page


@pytest.mark.postgres
async def test_the_pages_on_postgres(tmp_path: Path, postgres_db: str) -> None:
    cfg = console_config(tmp_path, database=postgres_db)
    with KeyStore.open(cfg.data_dir, dsn=postgres_db, lmk_file=tmp_path / "lmk.key") as store:
        store.add_terminal(T1, actor="test")
    now = time.time()
    async with console_rig(tmp_path, cfg) as rig:
        row = _row(1, now - 2)
        await rig.journal.record_received(row)
        await rig.journal.write(OpenShift(T1, "S0001", now))
        client = await rig.logged_in("sec", "security_officer")
        found = (await client.get("/transactions", params={"pan": "0010"})).text
        assert f"/transactions/{row.txn_id}" in found
        assert (await client.get("/api/dashboard")).json()["total"] == 1
        terminals = (await client.get("/terminals")).text
        assert ">online<" in terminals and "S0001" in terminals
        assert "Key audit trail" in (await client.get("/keys")).text
        assert "login" in (await client.get("/audit")).text
        assert "S0001" in (await client.get("/shifts")).text
