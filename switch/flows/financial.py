"""Financial request (1200 / 0200): an indoor purchase, or a refund, authorised online.

Forwarded with its reversal parked; an approval keeps it parked for the hold
window (a terminal that went, a pump fault, an operator), a decline cancels it.
With the acquirer down, a purchase under its floor limit may be approved by the
switch itself (`flows/stand_in.py`); a pre-authorisation never is.
"""

from __future__ import annotations

from forecourt.switch.flows.base import Flow, FlowRules
from forecourt.switch.flows.split import pay

# `pay` forwards a plain purchase; one carrying a split group is a leg (flows/split.py)
FLOW = Flow(FlowRules("financial", parks_reversal=True, checks_transmission_time=True), pay)
