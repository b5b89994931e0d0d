"""Field 7, transmission date and time: a request older than the tolerance is refused.

A MAC'd request copied off the wire stays valid as long as its key (up to a day);
the in-memory duplicate window lasts minutes. Refusing requests whose field 7
(MMDDhhmmss, UTC) is further than the terminal group's tolerance from the switch's
clock bounds how old an accepted copy can be, so the duplicate check only has to
remember that long (`switch/retransmission.py`). Field 7 carries no year: the
year taken is the one that puts it nearest the switch's clock.
"""

from __future__ import annotations

import functools
import time

import structlog
from forecourt.codecs.message import Message

__all__ = [
    "NoTransmissionTime",
    "TransmissionTimeOutside",
    "check_transmission_time",
    "earliest_original",
    "transmission_epoch",
]

# days before each month (index 1..12) in a common year, and the days of each month
_DAYS_BEFORE = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_DAYS_IN = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_HALF_YEAR_S = 183 * 86400


class TransmissionTimeOutside(Exception):
    """Field 7 is further from the switch's clock than the tolerance: 902 / 12."""


class NoTransmissionTime(Exception):
    """Field 7 is missing or is not a date and time (MMDDhhmmss): 904 / 30."""


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@functools.lru_cache(maxsize=64)
def _month_start(year: int, month: int) -> int:
    """Seconds since 1970 (UTC) at the start of `month` of `year`."""
    y = year - 1
    days = y * 365 + y // 4 - y // 100 + y // 400 - 719162  # 1970-01-01 is day 719162
    return (days + _DAYS_BEFORE[month] + (month > 2 and _leap(year))) * 86400


class _Year:
    """The UTC year of the last `now` seen, and its span: a gmtime once a year."""

    start, end, year = 0.0, -1.0, 1970

    @classmethod
    def of(cls, now: float) -> int:
        if not cls.start <= now < cls.end:
            year = time.gmtime(now).tm_year
            cls.start, cls.end = _month_start(year, 1), _month_start(year + 1, 1)
            cls.year = year
        return cls.year


def transmission_epoch(value: str | None, now: float) -> float | None:
    """Field 7 as seconds since 1970, in the year that puts it nearest `now`.

    None when it is missing or not a date and time. Around New Year a field 7 of
    "1231235959" read on 1 January is last year's, "0101000001" read on 31 December
    next year's; 29 February only in a leap year.
    """
    if value is None or len(value) != 10 or not value.isdigit():
        return None
    if value == _Last.value and abs(_Last.at - now) <= _HALF_YEAR_S:
        return _Last.at  # the check and the duplicate check read the same field 7
    at = _read(value, now)
    if at is not None:
        _Last.value, _Last.at = value, at
    return at


class _Last:
    """The field 7 read last, and when it says (always within half a year of then)."""

    value, at = "", 0.0


def _read(value: str, now: float) -> float | None:
    month, rest = divmod(int(value), 100_000_000)
    day, rest = divmod(rest, 1_000_000)
    hour, rest = divmod(rest, 10_000)
    minute, second = divmod(rest, 100)
    if not (1 <= month <= 12 and 1 <= day <= _DAYS_IN[month]):
        return None
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second
        return None
    of_month = (day - 1) * 86400 + hour * 3600 + minute * 60 + second
    year = _Year.of(now)
    at = _month_start(year, month) + of_month
    if at - now > _HALF_YEAR_S:
        year -= 1
    elif now - at > _HALF_YEAR_S:
        year += 1
    else:
        return None if month == 2 and day == 29 and not _leap(year) else float(at)
    if month == 2 and day == 29 and not _leap(year):
        return None
    return float(_month_start(year, month) + of_month)


def check_transmission_time(
    request: Message,
    tolerance_s: float,
    log: structlog.typing.FilteringBoundLogger,
    now: float | None = None,
) -> None:
    """Refuse a request whose field 7 is missing, malformed or outside the tolerance.

    A tolerance of 0 turns the check off (the terminal group's choice).
    """
    if not tolerance_s:
        return
    now = time.time() if now is None else now
    sent = transmission_epoch(request.fields.get("7"), now)
    if sent is None:
        log.warning("transmission_time_missing")
        raise NoTransmissionTime("field 7 is missing or not MMDDhhmmss")
    skew = sent - now
    if abs(skew) > tolerance_s:
        log.warning("transmission_time_outside_tolerance", skew_s=round(skew))
        raise TransmissionTimeOutside(f"field 7 is {skew:+.0f} s from the switch's clock")


def earliest_original(request: Message, tolerance_s: float, now: float) -> float | None:
    """The earliest time the original of an exact copy of `request` can have been received.

    An exact copy carries the original's field 7, and an original is received no
    earlier than its field 7 minus the tolerance (a terminal clock ahead by at most
    that much). None when nothing bounds it: no tolerance, no usable field 7, or one
    further ahead than the tolerance (a flow that does not check field 7 takes it).
    """
    if not tolerance_s:
        return None
    sent = transmission_epoch(request.fields.get("7"), now)
    if sent is None or sent - now > tolerance_s:
        return None
    return sent - tolerance_s
