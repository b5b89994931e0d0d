"""The sign-on answer's hint: the latest parameter version, in 48-20 of a 1814.

A terminal compares it with the version it holds and downloads (1304, 305) when
it is behind. The hint is best-effort: when the journal cannot be read, the answer
(whose keys are already delivered) goes without it. Only the ifsf (1993) family
carries it: the 1987 family's field 48 holds the sign-on's keys. Nothing is added
before the first publication.
"""

from __future__ import annotations

import structlog
from forecourt.codecs.family import Family
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.switch.journal import Journal, JournalError

from .catalogue import ParamsCatalogue

__all__ = ["with_version_hint"]

VERSION = 20  # field 48 sub-element
_log = structlog.get_logger("forecourt.params")


async def with_version_hint(
    answer: Message, family: Family, catalogue: ParamsCatalogue, journal: Journal
) -> Message:
    """`answer` with 48-20 = the latest version (cached: switch/params/catalogue.py)."""
    if family != Family.ISO1993:
        return answer
    try:
        latest = await catalogue.latest_cached(journal)
    except JournalError as exc:
        # the keys are already delivered: the answer must go, hint or not
        _log.warning("params_version_unread", error=type(exc).__name__)
        return answer
    if latest == 0:
        return answer
    present = answer.fields.get("48")
    elements: dict[int, str | bytes] = dict(decode_field48(present)) if present else {}
    elements[VERSION] = f"{latest:08d}"
    return answer.with_fields({48: encode_field48(elements)})
