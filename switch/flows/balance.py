"""Balance inquiry (x100 / x200 with processing code 30 or 31): the example flow.

Forwarded to the card's authoriser like any request, but nothing is taken, so
no reversal is parked; the balance comes back in field 54 and is relayed as it is.
A new message class is one module like this and one row in `table.py`.
"""

from __future__ import annotations

from forecourt.switch.flows.base import Flow, FlowRules
from forecourt.switch.flows.forwarding import forward

FLOW = Flow(
    FlowRules("balance_inquiry", parks_reversal=False, checks_transmission_time=True), forward
)
