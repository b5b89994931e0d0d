"""The advice action on a real journal (SQLite file and PostgreSQL): the advice it
queues, built from the sealed reversal in the link's dialect; each refusal, one
line naming the item and what to do; a flagged advice sent again as a repeat; and
never two advices of one transaction, even when two nodes act on its two items at
once. The party is the planted day of tests/recon/scenario.py (its `bank` and
`bankfix` parties settle the same link, so a sale at the switch only is an item of
each). The acquirer is not needed here: tests/recon/test_advice_loop.py runs the
loop through the acquirer simulator over TCP."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from forecourt.codecs.dialect import decode, encode, get_dialect
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.journal import (
    PARKED_HORIZON_S,
    AddEvent,
    ClaimSaf,
    EnqueueSaf,
    Event,
    FlagSaf,
    Journal,
    JournalError,
    SafSealer,
    open_journal,
)
from forecourt.switch.journal.writes import AbandonSaf
from forecourt.switch.recon import ActOnItem, AdviceSent, ItemRefused
from forecourt.switch.recon.actions import act_on_item
from forecourt.switch.recon.advice import RECON_ADVICE_REASON, advice_from_reversal
from forecourt.switch.recon.reads import Item, items
from forecourt.switch.reversal import ReversalReason, saf_message, saf_payload, switch_reversal
from hypothesis import given
from hypothesis import strategies as st

from tests.recon import scenario
from tests.recon.test_matching import _import, _match

WALLET_BANK = """
[[acquirers]]
kind = "wallet"
name = "bank"
base_url = "https://wallet.example:8443"
merchant_id = "FORECOURT01"
"""
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PAN = "4761739001010010"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SwitchConfig]:
    dsn = request.getfixturevalue("postgres_db") if request.param == "postgres" else None
    yield scenario.config(tmp_path, dsn)


def _request(amount: int, family: Family) -> Message:
    """The purchase as the host saw it (card data included: it is what gets sealed)."""
    fields = {
        "2": PAN, "3": "000000", "4": f"{amount:012d}", "11": "000321", "14": "2812",
        "22": "C00101B44101" if family is Family.ISO1993 else "051",
        "32": "12345678901", "41": "T0000001", "42": "STATION000001  ", "49": "978",
        "12": "261201120000" if family is Family.ISO1993 else "120000",
        "7": "1201120000", "35": f"{PAN}=28121010000000000000",
    }  # fmt: skip
    if family is not Family.ISO1993:
        fields["13"] = "1201"
    return Message("1200" if family is Family.ISO1993 else "0200", fields)


def _parked(request: Message, family: Family) -> Message:
    return switch_reversal(request, "000321", family, ReversalReason.UNDELIVERED)


async def _park(journal: Journal, txn_id: str, amount: int, key: bytes = KEY) -> None:
    """The sealed reversal the switch parks for every approved sale (`key`: the SAF
    key of the switch that sealed it)."""
    reversal = _parked(_request(amount, Family.ISO1993), Family.ISO1993)
    sealed = SafSealer(key).seal(saf_payload(reversal), txn_id, "bank", reversal.mti)
    now = time.time()
    await journal.write(
        EnqueueSaf(txn_id, "bank", reversal.mti, sealed, now, now + PARKED_HORIZON_S + 60)
    )


async def _items(journal: Journal, cfg: SwitchConfig, tmp: Path) -> dict[tuple[str, str], Item]:
    await scenario.journal_day(journal)
    await _import(journal, cfg, "bank", scenario.csv_file(tmp / "s.csv"))
    await _import(journal, cfg, "bankfix", scenario.fixed_file(tmp / "f.txt"))
    for party in ("bank", "bankfix", "ledger"):
        await _match(journal, cfg, party)
    return {(i.party, i.reference): i for i in await items(journal)}


async def _advise(journal: Journal, cfg: SwitchConfig, item: Item, who: str = "alice") -> str:
    return await act_on_item(
        journal, item.id, "advice", who, "never settled", acquirers=cfg.acquirers, saf_key=KEY
    )


def test_every_refusal_names_the_item_and_the_fix(tmp_path: Path) -> None:
    cfg = scenario.config(tmp_path)

    async def main() -> None:
        async with open_journal(cfg, saf_key=KEY) as journal:
            by = await _items(journal, cfg, tmp_path)
            lost, twin = by["bank", "000000000004"], by["bankfix", "000000000004"]
            assert lost.txn_id is not None
            cases = [
                (by["bank", "000000000005"], "names no journal transaction"),
                (by["bank", "000000000008"], "was reversed at the switch"),
                (by["ledger", "A00099"], "not an ISO 8583 acquirer: use --action adjust"),
                (lost, "no sealed card data is held"),
            ]
            shorter = by["bank", "000000000006"]
            assert shorter.txn_id is not None
            await journal.update(shorter.txn_id, state="declined")
            cases.append((shorter, "is declined, not approved"))
            for item, says in cases:
                with pytest.raises(ItemRefused, match=says) as refused:
                    await _advise(journal, cfg, item)
                text = str(refused.value)
                assert text.startswith(f"item {item.id}") and "\n" not in text
                assert any(w in text for w in ("resolve", "write", "adjust", "acquirer"))
            # the sale's route a wallet provider's, not an ISO 8583 acquirer's
            wallet = parse_config(tomllib.loads(WALLET_BANK), source="test").acquirers
            with pytest.raises(ItemRefused, match="wallet provider 'bank', which takes no ISO"):
                await act_on_item(
                    journal, lost.id, "advice", "alice", acquirers=wallet, saf_key=KEY
                )
            await _park(journal, lost.txn_id, 4200, key=OTHER_KEY)
            with pytest.raises(ItemRefused, match="does not open with this LMK's SAF key"):
                await _advise(journal, cfg, lost)
            await _park(journal, lost.txn_id, 4200)
            assert (await _advise(journal, cfg, lost)).startswith("advice 1220 of")
            with pytest.raises(ItemRefused, match=r"was sent already \(SAF item \d+, pending\)"):
                await _advise(journal, cfg, twin, "bob")
            # delivered long ago: its SAF row deleted, its event kept
            dup = by["bank", "000000000007"]
            assert dup.txn_id is not None
            await journal.write(AddEvent(Event(dup.txn_id, time.time(), "advice_delivered", "000")))
            with pytest.raises(ItemRefused, match=r"was sent already \(delivered\)"):
                await _advise(journal, cfg, dup)
            still_open = {i.id for i in await items(journal, state="open")}
        refused_only = {item.id for item, _ in cases if item is not lost} | {twin.id, dup.id}
        assert refused_only <= still_open and lost.id not in still_open

    trio.run(main)


def test_the_advice_is_the_sealed_sale_in_the_links_dialect(
    cfg: SwitchConfig, tmp_path: Path
) -> None:
    """Queued for the link, sealed, with the closing and its audit row; the SAF sender
    opens it as the host will see it (1220, 24 = 200, the host's RRN and approval
    code, the original named in 56, the card as the sealed reversal held it)."""

    async def main() -> None:
        async with open_journal(cfg, saf_key=KEY) as journal:
            by = await _items(journal, cfg, tmp_path)
            lost = by["bank", "000000000004"]
            assert lost.txn_id is not None
            await _park(journal, lost.txn_id, 4200)
            await _advise(journal, cfg, lost)
            row = await journal.get(lost.txn_id)
            [sent] = await journal.saf_claim("n1", limit=5, link="bank")
            [closed] = await items(journal, item_id=lost.id)
            events = [e for e in await journal.events(lost.txn_id) if e.kind.startswith("recon")]
            [(how, mti, link)] = await journal.rows(
                "SELECT how, mti, link FROM recon_advices WHERE txn_id = ?", (lost.txn_id,)
            )
        assert row is not None and row.state == "approved"  # the advice settles; it changes nothing
        advice = saf_message(sent.payload)
        parked = _parked(_request(4200, Family.ISO1993), Family.ISO1993)
        assert (sent.mti, advice.mti, sent.attempts) == ("1220", "1220", 1)
        f = advice.fields
        assert (f["2"], f["4"], f["37"], f["38"]) == (PAN, "000000004200", row.rrn, row.auth_code)
        assert (f["24"], f["25"], f["39"], f["56"]) == (
            "200",
            RECON_ADVICE_REASON,
            "000",
            parked.fields["56"],
        )
        assert not {"35", "45", "52", "53", "55"} & set(f)
        assert (closed.state, closed.action, closed.operator) == ("resolved", "advice", "alice")
        assert [e.kind for e in events] == ["recon_advice_queued"]
        assert json.loads(events[0].detail or "{}") == {"actor": "alice", "item": lost.id}
        assert (how, mti, link) == ("built", "1220", "bank")
        if cfg.database is None:
            for path in Path(cfg.journal_path).parent.glob("journal.db*"):
                assert PAN.encode() not in path.read_bytes()

    trio.run(main)


def test_a_flagged_advice_is_sent_again_as_a_repeat(tmp_path: Path) -> None:
    """A completion's or a stand-in approval's advice the SAF sender gave up on: the
    same item again, its attempts kept, so it goes as 1221 (the host may have it)."""
    cfg = scenario.config(tmp_path)

    async def main() -> None:
        async with open_journal(cfg, saf_key=KEY) as journal:
            by = await _items(journal, cfg, tmp_path)
            item = by["bank", "000000000007"]
            assert item.txn_id is not None
            advice = advice_from_reversal(
                _parked(_request(3000, Family.ISO1993), Family.ISO1993), Family.ISO1993,
                "000000000007", "A00007", None,
            )  # fmt: skip
            queued = await journal.saf_enqueue(item.txn_id, "bank", "1220", saf_payload(advice))
            await journal.write(ClaimSaf("n1", 5, 60.0, time.time(), "bank"))
            await journal.write(FlagSaf(queued, "gave up after 6 attempts"))
            done = await _advise(journal, cfg, item)
            [entry] = await journal.saf_entries_of([item.txn_id])
            [again] = await journal.saf_claim("n1", limit=5, link="bank")
        assert (
            done
            == f"advice 1220 of {item.txn_id} sent again to bank (SAF item {queued}, as a repeat)"
        )
        assert (entry.id, entry.state, entry.attempts) == (queued, "pending", 1)
        assert again.attempts == 2  # SafSender sends 1221 when attempts > 1

    trio.run(main)


def test_an_abandoned_advice_is_built_again_as_a_repeat(tmp_path: Path) -> None:
    """An advice an operator abandoned in the console has no payload left: a new one is
    built from the sealed reversal, and queued as the repeat (1221) it is."""
    cfg = scenario.config(tmp_path)

    async def main() -> None:
        async with open_journal(cfg, saf_key=KEY) as journal:
            by = await _items(journal, cfg, tmp_path)
            item = by["bank", "000000000004"]
            assert item.txn_id is not None
            await _park(journal, item.txn_id, 4200)
            first = await journal.saf_enqueue(item.txn_id, "bank", "1220", b"an advice")
            await journal.write(AbandonSaf(first, "carol", time.time()))
            done = await _advise(journal, cfg, item)
            [sent] = await journal.saf_claim("n1", limit=5, link="bank")
        assert done.endswith(f"(a repeat: SAF item {first} was abandoned by carol)")
        assert (sent.mti, saf_message(sent.payload).mti, sent.attempts) == ("1221", "1221", 1)

    trio.run(main)


def test_two_items_of_one_sale_send_one_advice(cfg: SwitchConfig, tmp_path: Path) -> None:
    """Two operators at two nodes act on the sale's two items at the same moment: one
    advice is queued, the other action is refused and its item stays open; and the
    database refuses a second one even past the code's checks."""

    async def main() -> tuple[list[object], list[object]]:
        async with open_journal(cfg, saf_key=KEY, node="n1") as one:
            by = await _items(one, cfg, tmp_path)
            first, second = by["bank", "000000000004"], by["bankfix", "000000000004"]
            assert first.txn_id is not None
            await _park(one, first.txn_id, 4200)
            async with open_journal(cfg, saf_key=KEY, node="n2") as two:
                outcomes: list[object] = []

                async def act(journal: Journal, item: Item, who: str) -> None:
                    try:
                        outcomes.append(await _advise(journal, cfg, item, who))
                    except ItemRefused as exc:
                        outcomes.append(exc)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(act, one, first, "alice")
                    nursery.start_soon(act, two, second, "bob")
            [left] = [i for i in await items(one, state="open") if i.txn_id == first.txn_id]
            with pytest.raises(JournalError, match="was sent already"):
                await one.write(
                    ActOnItem(left.id, "advice", "mallory", time.time(),
                              advice=AdviceSent(first.txn_id, "bank", "1220", "built"))
                )  # fmt: skip
            advices = [e for e in await one.saf_entries_of([first.txn_id]) if e.mti == "1220"]
            states = sorted(i.state for i in await items(one) if i.txn_id == first.txn_id)
            return outcomes, [len(advices), states]

    outcomes, (advices, states) = trio.run(main)
    assert sorted(type(o).__name__ for o in outcomes) == ["ItemRefused", "str"]
    refused = next(o for o in outcomes if isinstance(o, ItemRefused))
    assert "was sent already" in str(refused)
    assert advices == 1 and states == ["open", "resolved"]


@given(
    family=st.sampled_from([Family.ISO1993, Family.ISO1987]),
    amount=st.integers(1, 10**9),
    kept=st.floats(0.01, 1.0),
    rrn=st.from_regex(r"\A[0-9]{12}\Z"),
    code=st.from_regex(r"\A[A-Z0-9]{6}\Z"),
)
def test_the_advice_encodes_in_its_dialect_with_the_approved_amount(
    family: Family, amount: int, kept: float, rrn: str, code: str
) -> None:
    """Whatever the sale: the advice holds the amount approved now, the host's RRN and
    approval code, names the original as the reversal did, carries nothing the
    reversal did not (but its own 7, 11, 24, 25, 37-39), and encodes in the dialect."""
    parked = _parked(_request(amount, family), family)
    approved = max(1, int(amount * kept))
    advice = advice_from_reversal(parked, family, rrn, code, approved)
    name = "ifsf" if family is Family.ISO1993 else "iso87ascii"
    back = decode(get_dialect(name), encode(get_dialect(name), advice))
    f = back.fields
    assert back.mti == ("1220" if family is Family.ISO1993 else "0220")
    assert (int(f["4"]), f["37"], f["38"]) == (approved, rrn, code)
    original = "56" if family is Family.ISO1993 else "90"
    assert f[original] == parked.fields[original]
    assert set(f) - set(parked.fields) <= {"7", "11", "24", "25", "37", "38", "39"}
    assert f["39"] == ("000" if family is Family.ISO1993 else "00")
