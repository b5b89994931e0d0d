"""The business day: which day a moment belongs to, given the cut-over time.

A station's back office does not close at midnight: its day runs from one
cut-over (say 02:00 station time) to the next, and everything in between, a late
advice included, belongs to that day. The day is named by the calendar date on
which it began. Plain functions: the cut-over is configuration, the moment a
journal timestamp (UTC epoch seconds).
"""

from __future__ import annotations

import datetime as dt

import attrs

__all__ = ["Cutover", "business_day_of", "day_bounds"]


@attrs.frozen
class Cutover:
    """When a business day ends, in the station's local time (`utc_offset_minutes`
    east of UTC: a fixed offset, so a day is always 24 hours long)."""

    hour: int = 0
    minute: int = 0
    utc_offset_minutes: int = 0

    @property
    def _zone(self) -> dt.timezone:
        return dt.timezone(dt.timedelta(minutes=self.utc_offset_minutes))

    @property
    def _shift(self) -> dt.timedelta:
        return dt.timedelta(hours=self.hour, minutes=self.minute)


def business_day_of(at: float, cutover: Cutover) -> dt.date:
    """The business day the moment `at` belongs to."""
    local = dt.datetime.fromtimestamp(at, cutover._zone)
    return (local - cutover._shift).date()


def day_bounds(day: dt.date, cutover: Cutover) -> tuple[float, float]:
    """[start, end) of business day `day` as UTC epoch seconds."""
    start = dt.datetime.combine(day, dt.time(), cutover._zone) + cutover._shift
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()
