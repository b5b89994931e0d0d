"""A request with neither card nor payment code that names its original goes where it went.

A wallet refund is the case: the customer shows no code for it, the terminal
names the sale in field 56 (1993) or 90 (1987), and the refund must reach the
provider that was paid, whatever the card routes say.
"""

from __future__ import annotations

from forecourt.codecs.mti import mti_class
from forecourt.codecs.payment_code import payment_code_of
from forecourt.switch.flows.base import Job
from forecourt.switch.reversal import original_reference
from forecourt.switch.transaction import pan_of


async def original_route(job: Job) -> str | None:
    """The route of the original this request names, when it carries no PAN and no code."""
    request = job.request
    if pan_of(request) or payment_code_of(request):
        return None
    ref = original_reference(request, job.ctx.dialect.family)
    if ref is None:
        return None
    original = await job.services.journal.find_by_terminal_key(
        mti_class(ref[0]), job.txn.terminal_id, ref[1]
    )
    return original.route if original is not None else None
