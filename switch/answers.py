"""Building the answers the switch sends to terminals.

Answers to terminals never carry the PAN, track data, PIN data or the expiry date:
the terminal matches on terminal id and STAN, and an answer without them can be
journalled as it was sent and replayed to a retransmission.
"""

from __future__ import annotations

from forecourt.codecs.action_codes import Outcome, code_for, to_1987, to_1993
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti

# Never sent back to a terminal, never journalled.
SENSITIVE_FIELDS = frozenset({"2", "14", "35", "36", "45", "52", "53"})
# Request fields that a locally made answer does not echo.
NOT_ECHOED = SENSITIVE_FIELDS | frozenset({"55", "64", "96", "128", "48", "62", "63"})
# Fields the switch owns on the answer; the host's values are not relayed.
MAC_FIELDS = frozenset({"64", "128"})


def local_answer(request: Message, family: Family, outcome: Outcome) -> Message:
    """An answer made by the switch itself, echoing the request's identifying fields."""
    fields = {k: v for k, v in request.fields.items() if k not in NOT_ECHOED}
    fields["39"] = code_for(outcome, family)
    return Message(mti=response_mti(request.mti), fields=fields)


def relay_answer(
    request: Message,
    host_answer: Message,
    terminal_family: Family,
    host_family: Family,
) -> Message:
    """The host's answer, made the terminal's: its STAN, its MTI family, no secrets."""
    fields = {
        k: v
        for k, v in host_answer.fields.items()
        if k not in SENSITIVE_FIELDS and k not in MAC_FIELDS
    }
    for echoed in ("11", "41", "42"):
        value = request.fields.get(echoed)
        if value is not None:
            fields[echoed] = value
    if "32" not in request.fields:
        fields.pop("32", None)
    mti = response_mti(request.mti)
    code = fields.get("39")
    if code is not None and terminal_family != host_family:
        fields["39"] = to_1987(code) if terminal_family is Family.ISO1987 else to_1993(code, mti)
    return Message(mti=mti, fields=fields)
