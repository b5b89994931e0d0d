"""Property: whatever the journal and the party's file hold, every line ends in
exactly one class, the one the rules of docs/reconciliation.md give (written out
here as a plain function), and every approved journal row no line names is at the
switch only."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import trio
from forecourt.switch.journal import InsertTransaction, open_journal
from forecourt.switch.recon.reads import view
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.recon import scenario
from tests.recon.test_matching import _import, _match

STATES = st.sampled_from([None, "approved", "reversed", "declined"])
LINES = st.lists(
    st.tuples(st.sampled_from(["sale", "reversal"]), st.sampled_from([0, 1])), max_size=3
)
REFERENCE = st.tuples(STATES, st.integers(100, 105), LINES)


def expected(
    day: dict[str, tuple[str | None, int, list[tuple[str, int]]]],
) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for ref, (state, _, lines) in day.items():
        settled = state in ("approved", "reversed")
        sold = any(t == "sale" for t, _ in lines)
        taken_back = any(t == "reversal" for t, _ in lines)
        seen: Counter[str] = Counter()
        for kind, delta in lines:
            seen[kind] += 1
            if seen[kind] > 1:
                cls = "duplicate"
            elif kind == "reversal":
                if sold:
                    cls = "matched"
                elif not settled:
                    cls = "party_only"
                else:
                    cls = "amount_differs" if state == "approved" else "matched"
            elif not settled:
                cls = "party_only"
            elif state == "reversed":
                cls = "matched" if taken_back else "reversed_settled"
            elif taken_back or delta:
                cls = "amount_differs"
            else:
                cls = "matched"
            out[(cls, ref)] += 1
        if state == "approved" and not lines:
            out[("switch_only", ref)] += 1
    return out


@settings(max_examples=20, deadline=None)
@given(st.lists(REFERENCE, min_size=1, max_size=8))
def test_each_line_ends_in_exactly_the_class_the_rules_give(
    refs: list[tuple[str | None, int, list[tuple[str, int]]]],
) -> None:
    day = {f"{n + 1:012d}": r for n, r in enumerate(refs)}
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        cfg = scenario.config(where)
        text = ["rrn,amount,currency,settled_at,type,pan"]
        minute = 0
        for ref, (_, amount, lines) in day.items():
            for kind, delta in lines:
                minute += 1
                text.append(f"{ref},{amount + delta},978,2026-12-01 13:{minute:02d}:00,{kind},")
        (where / "s.csv").write_text("\n".join(text) + "\n")

        async def main() -> list[tuple[object, ...]]:
            async with open_journal(cfg) as journal:
                rows = [
                    InsertTransaction(scenario.row(ref, state, amount, scenario.NOON + i))
                    for i, (ref, (state, amount, _)) in enumerate(day.items())
                    if state is not None
                ]
                if rows:
                    await journal.write(*rows)
                if len(text) > 1:
                    await _import(journal, cfg, "bank", where / "s.csv")
                await _match(journal, cfg, "bank")
                return await view(journal, "SELECT class, reference FROM recon_results", ())

        got = Counter((str(c), str(r)) for c, r in trio.run(main))
    assert got == expected(day)
