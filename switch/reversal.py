"""Reversals and advices as the switch sends them to a host.

A reversal names its original the way the host knows it: the MTI the host saw,
the switch's STAN on that link, the original date-time and the acquirer id, in
field 56 (1993) or field 90 (1987). What goes to the store-and-forward queue is
the message's MTI and fields as JSON; the journal seals it, because a reversal
carries the PAN.
"""

from __future__ import annotations

import enum
import json

from forecourt.codecs.errors import DecodeError
from forecourt.codecs.family import Family
from forecourt.codecs.fields import OriginalData, OriginalElements
from forecourt.codecs.message import Message
from forecourt.codecs.network import transmission_time

# Fields a reversal carries over from its original (the rest is the original's business).
_CARRIED = ("2", "3", "4", "12", "13", "14", "22", "26", "32", "41", "42", "43", "49")


class ReversalReason(enum.Enum):
    """Why the switch reverses: 1993 message reason code (25), 1987 response code (39)."""

    HOST_TIMEOUT = ("4021", "68")  # no answer in time (a late approval is covered too)
    UNDELIVERED = ("4020", "22")  # the terminal went before it heard the approval
    PREAUTH_EXPIRED = ("4000", "17")  # no completion within the window
    OPERATOR = ("4000", "17")  # `forecourt journal reverse`
    CRASH_RECOVERY = ("4021", "68")  # in flight when the switch stopped

    @property
    def code_1993(self) -> str:
        return self.value[0]

    @property
    def code_1987(self) -> str:
        return self.value[1]


def switch_reversal(
    sent: Message, link_stan: str, family: Family, reason: ReversalReason
) -> Message:
    """The full reversal of `sent` (as the host received it, in the host's family)."""
    fields = {k: v for k, v in sent.fields.items() if k in _CARRIED}
    fields["7"] = transmission_time()
    fields["11"] = link_stan  # replaced by the link's STAN when sent
    if family is Family.ISO1993:
        acquirer = sent.fields.get("32")
        fields["24"] = "400"
        fields["25"] = reason.code_1993
        if "12" in sent.fields:
            fields["56"] = OriginalData(
                sent.mti, link_stan, sent.fields["12"], acquirer or None
            ).encode()
        return Message(mti="1420", fields=fields)
    fields["39"] = reason.code_1987
    fields["90"] = OriginalElements(
        sent.mti, link_stan, sent.fields.get("7", "0000000000"), sent.fields.get("32", "0")
    ).encode()
    return Message(mti="0400", fields=fields)


def original_reference(message: Message, family: Family) -> tuple[str, str] | None:
    """(original MTI, original STAN) named by a reversal or completion, if it names one."""
    try:
        if family is Family.ISO1993:
            value = message.fields.get("56")
            if value is None:
                return None
            data = OriginalData.decode(value)
            return data.mti, data.stan
        value = message.fields.get("90")
        if value is None:
            return None
        elements = OriginalElements.decode(value)
        return elements.mti, elements.stan
    except DecodeError:
        return None


def point_at_host_original(
    message: Message, family: Family, original_mti: str, link_stan: str, acquirer_id: str | None
) -> Message:
    """A terminal's reversal/completion, its original reference rewritten to what the host saw."""
    if family is Family.ISO1993:
        value = message.fields.get("56")
        if value is None:
            return message
        data = OriginalData.decode(value)
        rewritten = OriginalData(original_mti, link_stan, data.local_datetime, acquirer_id or None)
        return message.with_fields({56: rewritten.encode()}, mti=message.mti)
    value = message.fields.get("90")
    if value is None:
        return message
    elements = OriginalElements.decode(value)
    rewritten87 = OriginalElements(
        original_mti, link_stan, elements.transmitted, acquirer_id or "0", elements.forwarding_id
    )
    return message.with_fields({90: rewritten87.encode()}, mti=message.mti)


# PIN data is never queued nor resent: a reversal or advice needs no PIN, and a
# block under a ZPK would outlive the key it was made under.
NEVER_QUEUED = frozenset({"52", "53"})


def saf_payload(message: Message) -> bytes:
    fields = {k: v for k, v in message.fields.items() if k not in NEVER_QUEUED}
    return json.dumps({"mti": message.mti, "fields": fields}).encode()


def saf_message(payload: bytes) -> Message:
    """The queued message; PIN data dropped even from a payload queued before
    `saf_payload` dropped it."""
    data = json.loads(payload)
    fields = {str(k): str(v) for k, v in data["fields"].items() if str(k) not in NEVER_QUEUED}
    return Message(mti=str(data["mti"]), fields=fields)
