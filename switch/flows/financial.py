"""Financial request (1200 / 0200): an indoor purchase, or a refund, authorised online.

Forwarded with its reversal parked; an approval keeps it parked for the hold
window (a terminal that went, a pump fault, an operator), a decline cancels it.
With the acquirer down, a purchase under its floor limit may be approved by the
switch itself (`flows/stand_in.py`); a pre-authorisation never is.
"""

from __future__ import annotations

from forecourt.codecs.message import Message
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.flows.forwarding import forward
from forecourt.switch.flows.stand_in import stand_in


async def purchase(job: Job) -> Message:
    return await forward(job, instead=stand_in)


FLOW = Flow(FlowRules("financial", parks_reversal=True, checks_transmission_time=True), purchase)
