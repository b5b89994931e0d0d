"""Authorisation (1100 / 0100): the pay-at-pump pre-authorisation of a maximum amount.

Forwarded like a purchase, with its reversal parked; when approved, that reversal
is re-armed for the end of the completion window, so a pre-authorisation nobody
completes is released at the host.
"""

from __future__ import annotations

import time

from forecourt.codecs.message import Message
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.flows.forwarding import forward
from forecourt.switch.journal import RetrySaf


async def preauthorise(job: Job) -> Message:
    answer = await forward(job)
    record = job.txn
    if record.state == "approved" and record.parked_saf_id is not None:
        record.pending_ops.append(
            RetrySaf(
                record.parked_saf_id,
                "pre-authorisation not completed",
                time.time() + job.services.settings.preauth_window_s,
            )
        )
    return answer


FLOW = Flow(
    FlowRules("authorisation", parks_reversal=True, checks_transmission_time=True), preauthorise
)
