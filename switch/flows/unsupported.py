"""Message classes no flow carries: answered locally, never sent upstream.

File actions (x300), administrative messages (x600) and any class or function the
table does not know get the dialect's "requested function not supported" (115 /
40). Before the flow table, a 1304 was routed by PAN to an acquirer, journalled
approved and given a parked 1420.
"""

from __future__ import annotations

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.message import Message
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job


async def not_supported(job: Job) -> Message:
    job.services.metrics.rejections.labels(reason="function_not_supported").inc()
    job.log.warning("function_not_supported")
    return local_answer(job.request, job.ctx.dialect.family, Outcome.FUNCTION_NOT_SUPPORTED)


def _refused(name: str) -> Flow:
    rules = FlowRules(
        name,
        needs_terminal=False,
        needs_mac=False,
        needs_signed_on=False,
        journalled=False,
        mac_answer=False,
    )
    return Flow(rules, not_supported)


FILE_ACTION = _refused("file_action")
ADMINISTRATIVE = _refused("administrative")
UNKNOWN = _refused("not_supported")
