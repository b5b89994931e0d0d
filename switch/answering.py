"""Encoding what goes back to a terminal: MAC'd under its current TAK (in the security
module), and counted."""

from __future__ import annotations

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.dialect import Dialect, encode, encode_for_mac, mac_input, put_mac
from forecourt.codecs.message import Message
from forecourt.keys.security_module import ModuleUnavailable
from forecourt.switch.answers import local_answer
from forecourt.switch.context import ListenerContext, TerminalKeys
from forecourt.switch.metrics import SwitchMetrics


class TerminalAnswers:
    """The one place answers to terminals are encoded, so every one is counted once."""

    def __init__(self, keys: TerminalKeys, metrics: SwitchMetrics) -> None:
        self._keys = keys
        self._metrics = metrics

    def count(self, answer: Message) -> None:
        self._metrics.message_counter("to_terminal", answer.mti, answer.fields.get("39", "")).inc()

    def plain(self, dialect: Dialect, answer: Message) -> bytes:
        """Encoded without a MAC (network management, or a terminal not yet known)."""
        self.count(answer)
        return encode(dialect, answer)

    async def maced(self, ctx: ListenerContext, terminal_id: str, answer: Message) -> bytes:
        """Encoded and MAC'd when the group wants MACs; not counted (the caller counts)."""
        if ctx.policy.mac_required:
            dukpt = getattr(self._keys, "dukpt", None)
            if ctx.policy.dukpt is not None and dukpt is not None:
                maced = await dukpt.answer(ctx.dialect, ctx.policy.dukpt, terminal_id, answer)
                return maced if maced is not None else encode(ctx.dialect, answer)
            tak = await self._keys.answer_mac(terminal_id)
            if tak is not None:
                raw = encode_for_mac(ctx.dialect, answer)
                return put_mac(raw, await tak.generate_in(self._keys.module, mac_input(raw)))
        return encode(ctx.dialect, answer)

    async def refusal(self, ctx: ListenerContext, terminal_id: str, answer: Message) -> bytes:
        """A refusal, MAC'd when the module answers; without a MAC when it cannot be
        reached (the terminal hears the refusal rather than nothing: it carries no
        approval to protect)."""
        try:
            return await self.maced(ctx, terminal_id, answer)
        except ModuleUnavailable:
            return encode(ctx.dialect, answer)

    async def local(
        self, ctx: ListenerContext, request: Message, terminal_id: str, outcome: Outcome
    ) -> bytes:
        """The switch's own answer with `outcome`, MAC'd and counted."""
        answer = local_answer(request, ctx.dialect.family, outcome)
        self.count(answer)
        return await self.maced(ctx, terminal_id, answer)
