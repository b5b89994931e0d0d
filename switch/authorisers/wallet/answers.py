"""The 1993 answer the wallet authoriser gives the flows, made from the request.

It echoes what identifies the transaction and never the payment code (field 48)
nor anything sensitive; an approval carries the amount the provider says was
paid (field 4) and an approval code cut from the provider's transaction id
(field 38), so the receipt and the provider's bill file can be matched.
"""

from __future__ import annotations

from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti

from .provider import ProviderAnswer

__all__ = ["answer_to", "approval"]

_ECHOED = ("3", "4", "7", "11", "12", "24", "41", "42", "49", "56")


def answer_to(request: Message, action_code: str) -> Message:
    fields = {k: request.fields[k] for k in _ECHOED if k in request.fields}
    fields["39"] = action_code
    return Message(mti=response_mti(request.mti), fields=fields)


def approval(request: Message, answer: ProviderAnswer, *, paid: bool = True) -> Message:
    """`paid`: a payment, whose amount is the provider's; else (a refund) the request's."""
    message = answer_to(request, "000")
    updates: dict[int, str | None] = {}
    amount = answer.number("amount")
    if paid and amount > 0:
        updates[4] = f"{amount:012d}"
    reference = "".join(c for c in answer.text("provider_txn_id") if c.isalnum())
    if reference:
        updates[38] = reference[-6:].upper().rjust(6, "0")
    return message.with_fields(updates) if updates else message
