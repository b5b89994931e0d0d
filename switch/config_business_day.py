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


@attrs.frozen
class BusinessDayConfig:
    cutover: Cutover = attrs.field(factory=Cutover)


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
    t.finish()
    return BusinessDayConfig(
        Cutover(int(at.group(1)), int(at.group(2)), minutes if off.group(1) == "+" else -minutes)
    )
