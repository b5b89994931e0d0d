"""Several switch nodes sharing one PostgreSQL: matching, takeover, key rotation.

Two in-process switches (real sockets, one trio run) share one database for the
journal, the SAF queue and the key store, and one acquirer host.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.network import NetworkFunction, network_request
from forecourt.keys.exchange import install_key_change
from forecourt.keys.keyring import MacKey
from forecourt.keys.lmk import Lmk
from forecourt.keys.store import KeyStore
from forecourt.switch.journal import JournalRow, TxnState, new_txn_id, open_journal
from forecourt.switch.server import RunningSwitch, run_switch
from forecourt.switch.takeover import take_over_once

from tests.switch.harness import SmallHost, Terminal, switch_config

pytestmark = pytest.mark.postgres

TERMINALS = ("T0000001", "T0000002")


@attrs.define
class Cluster:
    dsn: str
    host: SmallHost
    lmk: Lmk
    store: KeyStore
    taks: dict[str, MacKey]
    keks: dict[str, bytes]
    ports: dict[str, int] = attrs.field(factory=dict)
    scopes: dict[str, trio.CancelScope] = attrs.field(factory=dict)

    @contextlib.asynccontextmanager
    async def terminal(self, node: str, terminal_id: str = "T0000001") -> AsyncIterator[Terminal]:
        stream = await trio.open_tcp_stream("127.0.0.1", self.ports[node])
        try:
            yield Terminal(
                stream,
                get_dialect("ifsf"),
                terminal_id,
                self.taks.get(terminal_id),
                kek=self.keks.get(terminal_id),
            )
        finally:
            await stream.aclose()

    def purchases_at_host(self, amount: int) -> int:
        """Authorisations of this amount the host saw (it sees the switch's STANs)."""
        return sum(
            1 for m in self.host.received if m.mti == "1200" and int(m.fields["4"]) == amount
        )


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, dsn: str, nodes: tuple[str, ...] = ("a", "b"), **over: Any
) -> AsyncIterator[Cluster]:
    lmk = Lmk.generate()
    store = KeyStore.init(tmp_path / "keys", dsn=dsn, lmk=lmk)
    taks: dict[str, MacKey] = {}
    keks: dict[str, bytes] = {}
    for tid in TERMINALS:
        ceremony = store.add_terminal(tid)
        keks[tid] = ceremony.clear_kek
        taks[tid] = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
    host = SmallHost(get_dialect("ifsf"))
    c = Cluster(dsn, host, lmk, store, taks, keks)
    try:
        async with trio.open_nursery() as outer:
            host_port = await outer.start(host.serve)
            stop = trio.Event()

            async def node(name: str, *, task_status: trio.TaskStatus[RunningSwitch]) -> None:
                base = switch_config(
                    tmp_path / name, host_port, request_timeout_s=1.0, saf_backoff_s=0.1, **over
                )
                config = attrs.evolve(
                    base,
                    node=f"node-{name}",
                    database=dsn,
                    saf=attrs.evolve(base.saf, lease_s=1.0),
                )
                with trio.CancelScope() as scope:
                    c.scopes[name] = scope
                    await run_switch(config, stop=stop, lmk=lmk, task_status=task_status)

            async with trio.open_nursery() as switches:
                for name in nodes:
                    running = await switches.start(functools.partial(node, name))
                    c.ports[name] = next(iter(running.ports.values()))
                with trio.fail_after(5):
                    while host.connections < 2 * len(nodes):
                        await trio.sleep(0.01)
                try:
                    yield c
                finally:
                    stop.set()
            outer.cancel_scope.cancel()
    finally:
        store.close()


async def _wait_for(predicate: object, timeout: float = 8.0) -> None:
    assert callable(predicate)
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(0.05)


async def test_retransmission_at_b_replays_a_answer(tmp_path: Path, postgres_db: str) -> None:
    async with cluster(tmp_path, postgres_db) as c:
        async with c.terminal("a") as ta:
            purchase = ta.purchase(2500)
            first = await ta.exchange(purchase)
        assert first.fields["39"] == "000"
        async with c.terminal("b") as tb:
            again = await tb.exchange(purchase)  # same STAN, same amount, other node
            assert again.fields["39"] == "000"
            assert again.fields.get("38") == first.fields.get("38")
            assert again.fields["11"] == purchase.fields["11"]
            # same key, different amount: a duplicate, not a new authorisation
            other = purchase.with_fields({4: f"{9999:012d}"})
            assert (await tb.exchange(other)).fields["39"] == "913"
        assert c.purchases_at_host(2500) == 1  # one authorisation


async def test_retransmission_while_in_flight_at_a_waits(tmp_path: Path, postgres_db: str) -> None:
    async with cluster(tmp_path, postgres_db) as c:
        async with c.terminal("a") as ta, c.terminal("b") as tb:
            slow = ta.purchase(200000)  # the host answers after 2 s
            await ta.send(slow)
            await trio.sleep(0.3)
            await tb.send(slow)  # the terminal gave up on A and tried B
            answer_b = await tb.receive(timeout=5)
            answer_a = await ta.receive(timeout=5)
        # the request timeout (1 s) fired at A: both get A's one answer, never a second
        assert answer_b.fields["39"] == answer_a.fields["39"]
        assert c.purchases_at_host(200000) == 1


async def test_reversal_at_b_of_a_purchase(tmp_path: Path, postgres_db: str) -> None:
    async with cluster(tmp_path, postgres_db) as c:
        async with c.terminal("a") as ta:
            purchase = ta.purchase(4200)
            assert (await ta.exchange(purchase)).fields["39"] == "000"
        async with c.terminal("b") as tb:
            reversal = tb.reversal(purchase)
            answer = await tb.exchange(reversal)
            assert answer.mti == "1430" and answer.fields["39"] == "400"
        async with open_journal(c.dsn) as journal:

            async def settled() -> bool:
                original = await journal.find_by_terminal_key(
                    "2", "T0000001", purchase.fields["11"]
                )
                assert original is not None and original.node == "node-a"
                return original.state == "reversed"

            await _wait_for(settled)
        reversals = [m for m in c.host.received if m.mti[:3] == "142"]
        assert len(reversals) == 1
        assert c.purchases_at_host(4200) == 1


async def test_completion_at_b_cancels_the_preauth_reversal(
    tmp_path: Path, postgres_db: str
) -> None:
    """The pre-authorisation's parked reversal is in the shared journal, not in A's
    memory: a completion at B cancels it, so the end of the window reverses nothing."""
    async with cluster(tmp_path, postgres_db, preauth_window_s=1.0) as c:
        async with c.terminal("a") as ta:
            completed = ta.preauth(7000)
            assert (await ta.exchange(completed)).fields["39"] == "000"
            abandoned = ta.preauth(9000)
            assert (await ta.exchange(abandoned)).fields["39"] == "000"
        async with c.terminal("b") as tb:
            completion = tb.completion(completed, 6500)
            completion = completion.with_fields({11: f"{int(abandoned.fields['11']) + 1:06d}"})
            assert (await tb.exchange(completion)).fields["39"] == "000"

        def reversals() -> list[str]:
            return [m.fields["4"] for m in c.host.received if m.mti in ("1420", "1421")]

        async def abandoned_reversed() -> bool:
            return bool(reversals())

        await _wait_for(abandoned_reversed)  # the window's end has come for both
        await trio.sleep(1.0)
        assert reversals() == ["000000009000"]


async def test_takeover_after_a_node_dies(tmp_path: Path, postgres_db: str) -> None:
    async with cluster(tmp_path, postgres_db) as c:
        # an in-flight SAF item claimed by node A with a lease (A will die holding it)
        async with open_journal(c.dsn, saf_key=_saf_key(c.lmk), node="node-a") as journal:
            advice_row = JournalRow(
                txn_id=new_txn_id(),
                node="node-a",
                terminal_id="T0000002",
                stan="000777",
                mti_class="2",
                request_mti="1220",
                received_at=time.time(),
                state=TxnState.APPROVED,
            )
            await journal.record_received(advice_row)
            async with c.terminal("a", "T0000002") as t2:
                advice = t2.purchase(3000, stan="000777").with_fields({}, mti="1220")
            from forecourt.switch.reversal import saf_payload

            await journal.saf_enqueue(advice_row.txn_id, "bank", "1220", saf_payload(advice))
            (claimed,) = await journal.saf_claim("node-a", limit=1, lease_s=1.0, link="bank")
        # a purchase in flight at A (the host never answers), then A dies
        async with c.terminal("a") as ta:
            lost = ta.purchase(300000)
            await ta.send(lost)
            with trio.fail_after(5):
                while c.purchases_at_host(300000) < 1:
                    await trio.sleep(0.02)
            c.scopes["a"].cancel()  # node A is gone, mid-request
        async with open_journal(c.dsn) as journal:

            async def row_state() -> str | None:
                r = await journal.find_by_terminal_key("2", "T0000001", lost.fields["11"])
                return None if r is None else str(r.state)

            assert await row_state() == "forwarded"

            async def reversed_by_b() -> bool:
                return await row_state() == "reversed"

            await _wait_for(reversed_by_b, timeout=10)
            (taken,) = [
                e
                for e in await journal.events(_txn(await journal.list(limit=50), lost))
                if e.kind == "reversal_pending"
            ]
            assert taken.detail is not None and "node-b" in taken.detail

            async def advice_done() -> bool:
                entries = {e.id: e for e in await journal.saf_entries()}
                return entries[claimed.id].state == "done"

            await _wait_for(advice_done)
            entries = {e.id: e for e in await journal.saf_entries()}
            assert entries[claimed.id].attempts == 2  # A's attempt, then B's after the lease
        assert len([m for m in c.host.received if m.mti[:3] == "142"]) == 1
        assert len([m for m in c.host.received if m.mti[:3] == "122"]) == 1


async def test_takeover_is_taken_once(postgres_db: str) -> None:
    async with open_journal(postgres_db, saf_key=bytes(32), node="node-x") as journal:
        rows = [
            JournalRow(
                txn_id=new_txn_id(),
                node="dead",
                terminal_id="T0000001",
                stan=f"{i:06d}",
                mti_class="2",
                request_mti="1200",
                received_at=100.0,
                state=TxnState.FORWARDED,
                forwarded_at=100.0,
                route="bank",
            )
            for i in range(20)
        ]
        for r in rows:
            await journal.record_received(r)
        recent = attrs.evolve(rows[0], txn_id=new_txn_id(), stan="999999", forwarded_at=time.time())
        await journal.record_received(recent)
        results: list[list[tuple[str, str]]] = []

        async def survivor(node: str) -> None:
            results.append(await take_over_once(journal, node, threshold_s=30.0))

        async with trio.open_nursery() as nursery:
            for node in ("s1", "s2", "s3"):
                nursery.start_soon(survivor, node)
        taken = [t for r in results for t in r]
        assert sorted(t for t, _ in taken) == sorted(r.txn_id for r in rows)  # each once
        assert (await journal.get(recent.txn_id)).state == "forwarded"  # type: ignore[union-attr]
        assert await take_over_once(journal, "dead", threshold_s=30.0) == []


async def test_key_rotation_at_a_is_seen_by_b(tmp_path: Path, postgres_db: str) -> None:
    async with cluster(tmp_path, postgres_db) as c:
        async with c.terminal("b") as tb:
            assert (await tb.exchange(tb.purchase(1100))).fields["39"] == "000"  # B caches
        async with c.terminal("a") as ta:
            assert (await ta.sign_on()).fields["39"] == "800"
            new_tak = ta.tak
            assert new_tak is not None
        await trio.sleep(2.5)  # B's key watch runs every 2 s
        async with c.terminal("b") as tb:
            tb.tak = new_tak
            approved = await tb.exchange(tb.purchase(1200))
            assert approved.fields["39"] == "000"
            assert approved.raw is not None
            assert new_tak.verify(approved.raw[:-8], approved.raw[-8:])  # B MACs with the new key


def _saf_key(lmk: Lmk) -> bytes:
    from forecourt.switch.server import saf_data_key

    return saf_data_key(lmk)


def _txn(rows: list[JournalRow], message: object) -> str:
    stan = message.fields["11"]  # type: ignore[attr-defined]
    return next(r.txn_id for r in rows if r.stan == stan and r.mti_class == "2")


async def _signed_on(t: Terminal) -> None:
    assert (await t.sign_on()).fields["39"] == "800"


async def test_shift_opened_at_a_is_the_shift_at_b(tmp_path: Path, postgres_db: str) -> None:
    """Open shifts are the journal's: a purchase at B carries the shift opened at A,
    and B closes it in balance (before: no shift at B, and the close declined 100)."""
    async with cluster(tmp_path, postgres_db) as c:
        async with c.terminal("a") as ta:
            await _signed_on(ta)
            tak = ta.tak
        async with c.terminal("b") as tb:
            tb.tak = tak
            assert (await tb.exchange(tb.purchase(2750))).fields["39"] == "000"
            closed = await tb.exchange(tb.shift_close((1, 2750)))
            assert closed.fields["39"] == "500"
        async with open_journal(postgres_db) as journal:
            rows = [r for r in await journal.list(limit=20) if r.mti_class == "2"]
        assert len(rows) == 1 and rows[0].shift_id is not None


async def test_sign_off_at_a_declines_at_b(tmp_path: Path, postgres_db: str) -> None:
    """The terminal guard is shared: signed off at A is signed off at B (B reads the
    guards every 2 s; before, a sign-off changed nothing anywhere)."""
    async with cluster(tmp_path, postgres_db) as c:
        async with c.terminal("a") as ta:
            off = network_request("1993", NetworkFunction.SIGN_OFF, ta.next_stan(), "T0000001")
            assert (await ta.exchange(off)).fields["39"] == "800"

        async def declined_at_b() -> bool:
            async with c.terminal("b") as tb:
                return (await tb.exchange(tb.purchase(1300))).fields["39"] == "120"

        await _wait_for(declined_at_b)
        async with c.terminal("b") as tb:
            assert (await tb.exchange(tb.purchase(1301))).fields["39"] == "120"
        assert c.purchases_at_host(1301) == 0
