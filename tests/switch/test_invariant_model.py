"""The money invariant over random runs of terminal, switch and host.

Hypothesis draws what a terminal does (purchases the host approves, part-approves,
declines, answers slowly, never answers or answers after the switch gave up;
retransmissions; reversals; hanging up before the answer) and switch restarts,
and runs it against the real in-process switch and `RecordingHost`. Once SAF has
delivered everything, for every purchase (one original as the host knows it):

    approved at the host - reversed at the host == what the terminal was told it got

No double charge, no lost approval; and a purchase reaches the host at most once.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import tempfile
import time
from pathlib import Path

import attrs
import trio
from forecourt.codecs.message import Message
from forecourt.switch.journal.model import PARKED_HORIZON_S
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from tests.switch.harness import (
    HostPlan,
    RecordingHost,
    SwitchUnderTest,
    Terminal,
    started_switch,
)

TERMINAL = "T0000001"
REQUEST_TIMEOUT_S = 0.4
# what the host does with a purchase, by name
PLANS = {
    "approve": HostPlan(),
    "partial": HostPlan(code="002"),
    "decline": HostPlan(code="116"),
    "slow": HostPlan(delay_s=0.15),
    "drop": HostPlan(answer=False),
    "late": HostPlan(delay_s=REQUEST_TIMEOUT_S + 0.2),
}
APPROVED = ("000", "002")
_TAGS = itertools.count(1)


@attrs.frozen
class Purchase:
    host: str  # a key of PLANS
    amount: int
    hang_up: bool = False  # send on a fresh connection and close it at once


@attrs.frozen
class Retransmit:
    which: int  # a previous purchase: 0 the last one, 1 the one before... (modulo)


@attrs.frozen
class Reverse:
    which: int  # as for Retransmit


@attrs.frozen
class Restart:
    pass


Op = Purchase | Retransmit | Reverse | Restart

operations = st.lists(
    st.one_of(
        st.builds(
            Purchase,
            host=st.sampled_from(sorted(PLANS)),
            amount=st.integers(100, 99_999),
            hang_up=st.booleans(),
        ),
        st.builds(Retransmit, which=st.integers(0, 3)),
        st.builds(Reverse, which=st.integers(0, 3)),
        st.just(Restart()),
    ),
    min_size=1,
    max_size=8,
)


@attrs.define
class Sale:
    """One purchase as the terminal knows it; `tag` (field 12) is how the host knows it."""

    request: Message
    tag: str
    told: int = 0  # the amount the terminal was told was approved
    reversed: bool = False  # the terminal's reversal was accepted: it takes nothing
    heard: list[str] = attrs.field(factory=list)  # action codes of the answers it got


class Run:
    """Carries out the operations; keeps the terminal's side of the story."""

    def __init__(self, sut: SwitchUnderTest, plans: dict[str, HostPlan]) -> None:
        self.sut = sut
        self.plans = plans
        self.sales: list[Sale] = []
        self.terminal: Terminal | None = None

    async def connect(self) -> Terminal:
        stream = await trio.open_tcp_stream("127.0.0.1", self.sut.port)
        return Terminal(stream, self.sut.host.dialect, TERMINAL, None)

    async def current(self) -> Terminal:
        """The terminal's connection, opened when it has none."""
        if self.terminal is None:
            self.terminal = await self.connect()
        return self.terminal

    async def ask(self, message: Message) -> Message:
        terminal = await self.current()
        return await terminal.exchange(message, timeout=REQUEST_TIMEOUT_S + 3.0)

    async def do(self, op: Op) -> None:
        match op:
            case Purchase(host=host, amount=amount, hang_up=hang_up):
                tag = f"26{next(_TAGS):010d}"
                self.plans[tag] = PLANS[host]
                request = (await self.current()).purchase(amount).with_fields({12: tag})
                sale = Sale(request, tag)
                self.sales.append(sale)
                if hang_up:
                    caller = await self.connect()
                    await caller.send(request)
                    await caller.stream.aclose()
                else:
                    self.hear(sale, await self.ask(request))
            case Retransmit(which=which) if self.sales:
                sale = self.sales[-1 - which % len(self.sales)]
                self.hear(sale, await self.ask(sale.request))
            case Reverse(which=which) if self.sales:
                sale = self.sales[-1 - which % len(self.sales)]
                reversal = (await self.current()).reversal(sale.request)
                code = (await self.ask(reversal)).fields["39"]
                sale.heard.append(f"reversal {code}")
                if code == "400":
                    sale.reversed = True
            case Restart():
                if self.terminal is not None:
                    await self.terminal.stream.aclose()
                    self.terminal = None
                await self.sut.restart()
            case _:
                pass  # nothing yet to retransmit or reverse

    @staticmethod
    def hear(sale: Sale, answer: Message) -> None:
        code = answer.fields["39"]
        sale.heard.append(code)
        if code == "913":
            return  # "duplicate transmission" says nothing of the original
        sale.told = int(answer.fields["4"]) if code in APPROVED else 0


def _work_left(journal_db: Path) -> list[str]:
    """Transactions not final and SAF items still to deliver (parked ones are not work)."""
    with contextlib.closing(sqlite3.connect(f"file:{journal_db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT request_mti, stan, state FROM transactions WHERE state IN "
            "('received', 'forwarded', 'reversal_pending', 'timed_out')"
        ).fetchall()
        saf = conn.execute(
            "SELECT mti, state, attempts, last_error FROM saf WHERE state = 'in_flight' "
            "OR (state = 'pending' AND next_attempt_at < ?)",
            (time.time() + PARKED_HORIZON_S,),
        ).fetchall()
    return [f"transaction {r}" for r in rows] + [f"SAF item {i}" for i in saf]


async def _play(ops: list[Op], data_dir: Path) -> tuple[list[Sale], RecordingHost, list[str]]:
    plans: dict[str, HostPlan] = {}
    host = RecordingHost(plan=lambda request: plans[request.fields["12"]])
    async with started_switch(
        data_dir,
        host=host,
        mac=False,
        max_in_flight=16,
        request_timeout_s=REQUEST_TIMEOUT_S,
        saf_backoff_s=0.05,
    ) as sut:
        run = Run(sut, plans)
        for op in ops:
            await run.do(op)
        if run.terminal is not None:
            await run.terminal.stream.aclose()
        await trio.sleep(PLANS["late"].delay_s)  # the last late answers
        with trio.move_on_after(10):
            while left := await trio.to_thread.run_sync(_work_left, data_dir / "journal.db"):
                await trio.sleep(0.05)
    return run.sales, host, left


def _check(sales: list[Sale], host: RecordingHost) -> list[str]:
    problems = []
    for sale in sales:
        bookings = [b for b in host.bookings if b.request.fields["12"] == sale.tag]
        if len(bookings) > 1:
            problems.append(f"{sale.tag}: reached the host {len(bookings)} times")
        net = sum(b.approved - b.reversed for b in bookings)
        told = 0 if sale.reversed else sale.told
        if net != told:
            at_host = [(b.code, b.approved, b.reversed, b.reversals) for b in bookings]
            problems.append(
                f"{sale.tag} amount {sale.request.fields['4']}: host net {net}, terminal told "
                f"{told} (heard {sale.heard}; host bookings {at_host})"
            )
    return problems


# Runs are timed, so a failure may not reproduce exactly: no shrinking (the failing
# operations are in the assertion message, and Hypothesis replays them first next time).
@settings(max_examples=25, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(ops=operations)
# Always tried: what earlier runs found (a retransmission heard the approval that the
# switch was reversing for the connection that hung up; a reversal claimed by SAF as
# the switch stopped waited for its lease to run out), and a retransmission of a
# purchase the terminal itself reversed.
@example(ops=[Purchase("slow", 500, hang_up=True), Retransmit(0)])
@example(ops=[Purchase("approve", 500, hang_up=True), Restart(), Retransmit(0)])
@example(ops=[Purchase("approve", 100), Reverse(0), Retransmit(0)])
def test_host_net_equals_what_the_terminal_was_told(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sales, host, left = trio.run(_play, ops, Path(tmp))
    problems = [f"never settled: {what}" for what in left] + _check(sales, host)
    assert not problems, f"operations {ops}:\n" + "\n".join(problems)
