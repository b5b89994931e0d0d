"""A certification step that looks at the acquirer's side: what reached the host.

Some outcomes are invisible to a terminal: a stand-in approval's advice reaches the
host later, through the switch's store-and-forward. `expect_at_acquirer` waits until
the acquirer simulator's record file (JSON lines, PAN masked, `[record] file`) holds
an answered message of the given MTI (or its repeat) for the card and amount of the
terminal's last request.
"""

from __future__ import annotations

import json
from pathlib import Path

import trio

from .answer_checks import StepFailed
from .steps import ExpectAtAcquirer
from .wire import masked

__all__ = ["expect_at_acquirer"]


def _answered(path: Path, step: ExpectAtAcquirer, masked_pan: str | None, amount: str) -> bool:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return False
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if (
            str(record.get("mti") or "")[:3] == step.mti[:3]
            and record.get("masked_pan") == masked_pan
            and record.get("amount") == amount
            and record.get("action_code") is not None
        ):
            return True
    return False


async def expect_at_acquirer(
    step: ExpectAtAcquirer, record_file: Path | None, last_request: dict[str, str] | None
) -> None:
    if record_file is None:
        raise StepFailed(
            "expect_at_acquirer needs the acquirer simulator's record file (--acquirer-record)"
        )
    if last_request is None or "4" not in last_request:
        raise StepFailed("expect_at_acquirer needs a request with an amount sent before it")
    pan, amount = masked(last_request.get("2")), last_request["4"]
    with trio.move_on_after(step.within_s):
        while not await trio.to_thread.run_sync(_answered, record_file, step, pan, amount):
            await trio.sleep(0.1)
        return
    raise StepFailed(
        f"no answered {step.mti} for {pan}, amount {amount} within {step.within_s:g} s"
    )
