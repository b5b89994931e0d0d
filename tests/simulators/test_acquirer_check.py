"""`expect_at_acquirer`: a certification step reading the acquirer simulator's record file.

The file is written by the simulator's own `ReceivedLog`, as the demo's is; the demo
runs the step for real (conf/cert/07-stand-in.toml, tests/simulators/test_demo.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.codecs.message import Message
from forecourt.simulators._toml import SimConfigError
from forecourt.simulators.acquirer_check import expect_at_acquirer
from forecourt.simulators.acquirer_record import ReceivedLog
from forecourt.simulators.answer_checks import StepFailed
from forecourt.simulators.script import ExpectAtAcquirer, parse_script

PAN = "4000007700000018"
PURCHASE = {"2": PAN, "4": "000000002500", "11": "000001", "41": "T0000007"}


def _log(path: Path, *messages: tuple[Message, str | None]) -> None:
    log = ReceivedLog(keep=100, file=path)
    log.open()
    for message, code in messages:
        log.record(1, message, code, "answer" if code else "drop", None, None)
    log.close()


def test_the_step_parses() -> None:
    script = parse_script(
        {
            "terminal": {"terminal_id": "T0000007", "dialect": "ifsf"},
            "cases": [{"name": "c", "steps": [{"expect_at_acquirer": {"mti": "1220"}}]}],
        }
    )
    (step,) = script.cases[0].steps
    assert step == ExpectAtAcquirer("1220", script.terminal.timeout_s)
    with pytest.raises(SimConfigError, match="unknown"):
        parse_script(
            {
                "terminal": {"terminal_id": "T0000007", "dialect": "ifsf"},
                "cases": [
                    {"name": "c", "steps": [{"expect_at_acquirer": {"mti": "1220", "x": 1}}]}
                ],
            }
        )


async def test_an_answered_advice_for_the_card_and_amount_passes(tmp_path: Path) -> None:
    record = tmp_path / "received.jsonl"
    _log(
        record,
        (Message("1200", PURCHASE), None),  # dropped: not answered
        (Message("1220", PURCHASE), "000"),
    )
    await expect_at_acquirer(ExpectAtAcquirer("1220", 1.0), record, PURCHASE)
    await expect_at_acquirer(ExpectAtAcquirer("1221", 1.0), record, PURCHASE)  # a repeat


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ([], "no answered 1220"),  # nothing reached the host
        ([(Message("1200", PURCHASE), None)], "no answered 1220"),  # only the dropped purchase
        ([(Message("1220", {**PURCHASE, "4": "000000009000"}), "000")], "no answered 1220"),
    ],
)
async def test_no_matching_advice_fails(
    tmp_path: Path, written: list[tuple[Message, str | None]], reason: str
) -> None:
    record = tmp_path / "received.jsonl"
    _log(record, *written)
    with pytest.raises(StepFailed, match=reason) as caught:
        await expect_at_acquirer(ExpectAtAcquirer("1220", 0.3), record, PURCHASE)
    assert PAN not in str(caught.value)  # the card masked in the reason


async def test_without_the_record_file_the_step_says_so() -> None:
    with pytest.raises(StepFailed, match="--acquirer-record"):
        await expect_at_acquirer(ExpectAtAcquirer("1220", 0.1), None, PURCHASE)


async def test_an_advice_written_later_is_waited_for(tmp_path: Path) -> None:
    record = tmp_path / "received.jsonl"
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(0.3)
            _log(record, (Message("1220", PURCHASE), "000"))

        nursery.start_soon(later)
        await expect_at_acquirer(ExpectAtAcquirer("1220", 5.0), record, PURCHASE)
