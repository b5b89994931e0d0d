"""``[business_day]``: when the station's business day ends.

The cut-over is a local time of day and the station's fixed offset from UTC
(switch/business_day.py). Everything journalled between two cut-overs belongs to
one day, named by the date on which it began (docs/reconciliation.md).
"""

from __future__ import annotations

import re

import attrs
from forecourt.switch.business_day import Cutover
from forecourt.switch.config_reading import ConfigTable

__all__ = ["BusinessDayConfig", "read_business_day"]

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_OFFSET = re.compile(r"^([+-])(0\d|1[0-4]):([0-5]\d)$")


OPEN_SHIFTS = ("close", "roll")


@attrs.frozen
class BusinessDayConfig:
    cutover: Cutover = attrs.field(factory=Cutover)
    # at the close, the shifts still open are closed (no terminal totals) or left
    # open to go on into the next day ("roll"); the day's totals are by time either way
    open_shifts: str = "roll"
    # send each ISO 8583 acquirer its reconciliation request (1520 / 0500) at the close
    host_totals: bool = True
    # how often the closed days are counted again for late lines (seconds)
    late_every_s: float = 60.0
    # how often each node looks for host totals to send (queued by a close or by
    # `forecourt day host-totals`)
    poll_s: float = 2.0


def read_business_day(root: ConfigTable) -> BusinessDayConfig:
    t = root.table("business_day")
    when = t.str_("cutover", "00:00")
    at = _TIME.match(when)
    if at is None:
        raise t.error("cutover", 'must be a local time of day, "HH:MM" (e.g. "02:00")')
    offset = t.str_("utc_offset", "+00:00")
    off = _OFFSET.match(offset)
    if off is None:
        raise t.error("utc_offset", 'must be the station\'s offset from UTC, "+HH:MM" or "-HH:MM"')
    minutes = int(off.group(2)) * 60 + int(off.group(3))
    open_shifts = t.str_("open_shifts", "roll")
    if open_shifts not in OPEN_SHIFTS:
        raise t.error("open_shifts", 'must be "close" or "roll"')
    host_totals = t.bool_("host_totals", True)
    late_every_s = t.float_("late_every_s", 60.0, 1.0, 86400.0)
    poll_s = t.float_("poll_s", 2.0, 0.05, 3600.0)
    t.finish()
    return BusinessDayConfig(
        Cutover(int(at.group(1)), int(at.group(2)), minutes if off.group(1) == "+" else -minutes),
        open_shifts=open_shifts,
        host_totals=host_totals,
        late_every_s=late_every_s,
        poll_s=poll_s,
    )
