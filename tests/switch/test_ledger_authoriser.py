"""The ledger authoriser on its own (a real SQLite journal, no sockets): what it answers
to what it cannot take, its metrics, and the order of `before_send` and the debit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio
import trio.testing
from forecourt.codecs.customer_data import CustomerData
from forecourt.codecs.message import Message
from forecourt.switch.authoriser import AuthoriserBusy
from forecourt.switch.authorisers.ledger import LedgerAuthoriser
from forecourt.switch.authorisers.ledger.metrics import LedgerMetrics
from forecourt.switch.config_ledger import LedgerSettings
from forecourt.switch.journal import open_journal
from forecourt.switch.metrics import SwitchMetrics

from tests.switch.ledger_fixtures import CARD_KEY, FLEET_PAN, available, open_fleet


def request(amount: int, stan: str, mti: str = "1200", **extra: str) -> Message:
    fields = {"2": FLEET_PAN, "3": "000000", "4": f"{amount:012d}", "11": stan,
              "12": "261201101010", "41": "T0000001", "49": "978", **extra}  # fmt: skip
    return Message(mti, fields)


async def test_what_the_ledger_cannot_take_and_its_metrics(tmp_path: Path) -> None:
    metrics = SwitchMetrics()
    async with open_journal(tmp_path / "j.db") as journal:
        await open_fleet(journal, "F1", 10000, FLEET_PAN)
        ledger = LedgerAuthoriser(
            "ledger", LedgerSettings(), journal, CARD_KEY, LedgerMetrics.on(metrics.registry)
        )
        assert LedgerMetrics.on(metrics.registry) is LedgerMetrics.on(metrics.registry)

        async def code(message: Message) -> str:
            return (await ledger.authorise(message)).message.fields["39"]

        assert await code(request(1000, "000001", **{"3": "200000"})) == "115"  # refund
        assert await code(request(1000, "000002", **{"63": "not product data"})) == "904"
        assert await code(request(1000, "000003", **{"49": "826"})) == "100"  # currency
        seen: list[int] = []

        async def before_send(sent: Message) -> None:
            seen.append((await available(journal, "F1"))[0])  # nothing taken yet

        for km, stan in ((1000, "000004"), (900, "000005")):
            data = CustomerData(odometer=km).field48()
            answer = await ledger.authorise(
                request(1000, stan, **{"48": data}), before_send=before_send
            )
            assert answer.message.fields["39"] == "000"
        assert answer.flags == ("odometer_backwards",)
        assert seen == [10000, 9000]
        sample = metrics.registry.get_sample_value
        assert sample("forecourt_ledger_flags_total", {"flag": "odometer_backwards"}) == 1
        assert sample("forecourt_ledger_format_errors_total") == 1
        assert sample("forecourt_ledger_decisions_total", {"code": "approved"}) == 2
        # a hold whose window ended is released by the authoriser's own task
        preauth = request(3000, "000006", mti="1100")
        assert (await ledger.authorise(preauth)).message.fields["39"] == "000"
        assert await ledger.release_expired(now=time.time() + 10_000) == 1
        assert (await available(journal, "F1"))[:2] == (8000, 0)
        assert sample("forecourt_ledger_holds_released_total") == 1


async def test_its_in_flight_cap_answers_busy_before_anything_is_written(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db") as journal:
        await open_fleet(journal, "F1", 10000, FLEET_PAN)
        ledger = LedgerAuthoriser(
            "ledger", LedgerSettings(), journal, CARD_KEY,
            LedgerMetrics.on(SwitchMetrics().registry), max_in_flight=1,
        )  # fmt: skip
        release = trio.Event()

        async def held(sent: Message) -> None:
            await release.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: ledger.authorise(request(1000, "000001"), before_send=held))
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(AuthoriserBusy):
                await ledger.authorise(request(1000, "000002"))
            release.set()
        assert (await available(journal, "F1"))[0] == 9000
