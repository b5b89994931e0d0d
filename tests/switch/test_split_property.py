"""A hypothesis property over random leg sequences, through the running switch:
whatever the tenders, amounts and cards, the approved legs never exceed the sale,
every answer's amount due is the total less every approved leg, and each leg gets
exactly the answer the split rules and the card's balance call for.

Each example starts its own switch and acquirer simulators (real sockets, a fresh
SQLite journal), so the examples are few and the test is marked slow.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import trio
from forecourt.codecs.split import SplitGroup
from forecourt.switch.journal import open_journal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.switch.split_harness import (
    BANK_PAN,
    CONSUMER_BALANCE,
    FLEET_BALANCE,
    T1,
    amount_due,
    approved,
    consumer_pan,
    fleet_pan,
    split_switch,
)

TENDERS = ("fleet", "consumer", "bank")
Leg = tuple[int, int, int]  # tender rank, amount, card (0-1)

legs = st.lists(
    st.tuples(st.integers(0, 2), st.integers(1, 20000), st.integers(0, 1)), min_size=1, max_size=6
)


def _pan(rank: int, card: int) -> str:
    return (fleet_pan, consumer_pan)[rank](900 + card) if rank < 2 else BANK_PAN


def _expected(rank: int, amount: int, due: int, top: int, balance: int | None) -> tuple[str, int]:
    """(action code, approved) the split rules and the card's balance call for."""
    if rank < top:
        return "902", 0
    if amount > due:
        return "110", 0
    if balance is None:  # a bank card: approved in full
        return "000", amount
    taken = min(balance, amount)
    return ("116", 0) if taken == 0 else ("000" if taken == amount else "002", taken)


async def _run(data_dir: Path, total: int, sequence: list[Leg]) -> None:
    group = SplitGroup("000000777", total)
    balances = {(0, c): FLEET_BALANCE for c in (0, 1)} | {(1, c): CONSUMER_BALANCE for c in (0, 1)}
    paid, top = 0, 0
    async with split_switch(data_dir) as sw, sw.terminal() as term:
        for rank, amount, card in sequence:
            key = (rank, card)
            code, taken = _expected(rank, amount, total - paid, top, balances.get(key))
            answer = await sw.leg(term, _pan(rank, card), amount, group)
            assert (answer.fields["39"], approved(answer)) == (code, taken), (rank, amount)
            paid += taken
            if taken:
                top = max(top, rank)
                if key in balances:
                    balances[key] -= taken
            assert paid <= total
            assert amount_due(answer) == total - paid
        async with open_journal(sw.config, node="reader") as journal:
            state = await journal.split_group(T1, group.group_id)
    if state is not None:
        assert (state.approved, state.claimed, state.due) == (paid, paid, total - paid)


@pytest.mark.slow
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(total=st.integers(1, 40000), sequence=legs)
def test_approved_legs_never_exceed_the_sale_and_the_due_is_total_less_approved(
    total: int, sequence: list[Leg]
) -> None:
    with tempfile.TemporaryDirectory() as d:
        trio.run(_run, Path(d), total, sequence)
