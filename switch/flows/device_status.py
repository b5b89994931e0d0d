"""Device status report: 1624 advice, function 670, the devices' state in 48-18.

Card reader, printer, scanner and pump link, one digit each (switch/terminals/devices.py).
The last report per terminal is journalled and shown as a gauge per terminal and
device, and in `forecourt terminals`. An advice of a terminal's own hardware: taken
signed on or off (a terminal reports the fault that made it sign off), MAC'd where
its group requires MACs, answered 1634 approved; a 48-18 that does not read is 904.
"""

from __future__ import annotations

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import decode_field48
from forecourt.codecs.message import Message
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.terminals.devices import DeviceStatusError, parse_status

FUNCTION_CODE = "670"


def _status(request: Message) -> str | None:
    raw = request.fields.get("48")
    if raw is None:
        return None
    try:
        value = decode_field48(raw).get(18)
    except CodecError:
        return None
    return value if isinstance(value, str) else None


async def report(job: Job) -> Message:
    family = job.ctx.dialect.family
    status = _status(job.request)
    try:
        if status is None:
            raise DeviceStatusError("no device status in 48-18")
        parse_status(status)
    except DeviceStatusError as exc:
        job.services.metrics.malformed.labels(side="terminal", reason="device_status").inc()
        job.log.warning("device_status_unreadable", reason=str(exc))
        return local_answer(job.request, family, Outcome.FORMAT_ERROR)
    await job.services.roster.devices_reported(job.request.fields["41"], status)
    job.log.info("device_status", status=status)
    return local_answer(job.request, family, Outcome.APPROVED)


FLOW = Flow(FlowRules("device_status", needs_signed_on=False, journalled=False), report)
