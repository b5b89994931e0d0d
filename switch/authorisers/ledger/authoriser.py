"""The fleet and consumer ledger as an authoriser: kind "ledger".

Requests come in the 1993 family like to any host, and each becomes one ledger
operation in the journal's database (`switch/ledger`): a purchase (x200) takes
the money at once, a pre-authorisation (x100) holds it, a completion advice
(x220) captures the actual amount and releases the rest, a reversal (x420)
gives back what its original took, once. `before_send` runs first, as for any
party: the transaction row and its parked reversal are durable before the ledger
moves any money, so a crash in between is reversed at restart, and the reversal
of something the ledger never did changes nothing.

`run` releases pre-authorisations nobody completed when their window ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Hashable

import structlog
import trio
from forecourt.codecs.amounts import AMOUNT_DUE, AVAILABLE_BALANCE, AdditionalAmount, encode_field54
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.codecs.mti import is_advice, mti_class, response_mti
from forecourt.switch.answers import NOT_ECHOED
from forecourt.switch.authoriser import (
    Answer,
    AuthoriserBusy,
    AuthoriserTimeout,
    AuthoriserUnavailable,
    BeforeSend,
)
from forecourt.switch.config_ledger import LedgerSettings
from forecourt.switch.journal import Journal, JournalError
from forecourt.switch.ledger import (
    Decision,
    LedgerAuthorise,
    LedgerComplete,
    LedgerExpire,
    LedgerInquire,
    LedgerOp,
    LedgerReverse,
    Settled,
    card_reference,
)
from forecourt.switch.transaction import pan_of

from .codes import action_code
from .metrics import LedgerMetrics
from .reading import original_of, reference_of, sale_facts

__all__ = ["KIND", "LedgerAuthoriser"]

log = structlog.get_logger("forecourt.authorisers.ledger")

KIND = "ledger"
_INQUIRIES = ("30", "31")
_REFUNDS = ("20",)
_ATTEMPTS = 3  # a write undone as a PostgreSQL deadlock's victim is tried again


class LedgerAuthoriser:
    """The `Authoriser` of kind "ledger" (see `switch.authoriser`)."""

    def __init__(
        self,
        name: str,
        settings: LedgerSettings,
        journal: Journal,
        card_key: bytes,
        metrics: LedgerMetrics,
        max_in_flight: int = 100,
        request_timeout_s: float = 25.0,
    ) -> None:
        self._name = name
        self.settings = settings
        self._journal = journal
        self._card_key = card_key
        self._metrics = metrics
        self._max_in_flight = max_in_flight
        self._timeout_s = request_timeout_s
        self.released = 0  # holds released at the end of their window, by this node
        self._in_flight = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def kind(self) -> str:
        return KIND

    @property
    def family(self) -> Family:
        return Family.ISO1993

    @property
    def acquirer_id(self) -> str | None:
        return None

    @property
    def available(self) -> bool:
        return True  # the journal's database: if it is down, nothing is answered anyway

    @property
    def request_timeout_s(self) -> float:
        return self._timeout_s

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    def match_key(self, message: Message) -> Hashable:
        return reference_of(message)

    def card_ref(self, pan: str) -> str:
        return card_reference(self._card_key, pan)

    async def authorise(
        self,
        request: Message,
        *,
        before_send: BeforeSend | None = None,
        timeout: float | None = None,
    ) -> Answer:
        if self._in_flight >= self._max_in_flight:
            raise AuthoriserBusy(self._name)  # nothing written: 912 at once, as a link's cap
        self._in_flight += 1
        try:
            return await self._authorise(request, before_send, timeout)
        finally:
            self._in_flight -= 1

    async def _authorise(
        self, request: Message, before_send: BeforeSend | None, timeout: float | None
    ) -> Answer:
        started = time.perf_counter()
        if "12" not in request.fields:  # the reference, and a reversal's 56, need it
            request = request.with_fields({12: time.strftime("%y%m%d%H%M%S", time.gmtime())})
        if before_send is not None:
            await before_send(request)
        limit = self._timeout_s if timeout is None else timeout
        answer: tuple[Message, tuple[str, ...]] | None = None
        with trio.move_on_after(limit if math.isfinite(limit) else math.inf):
            answer = await self._answer(request)
        if answer is None:
            # the write may still commit: the switch reverses, and a reversal of what
            # never happened changes nothing
            raise AuthoriserTimeout(self._name)
        message, flags = answer
        return Answer(message, time.perf_counter() - started, reference_of(request), flags)

    async def _answer(self, request: Message) -> tuple[Message, tuple[str, ...]]:
        """The answer, and the flags an operator should see on the transaction."""
        cls, mti = mti_class(request.mti), request.mti
        if cls == "8":
            return _answer(request, "800"), ()
        if cls == "4":
            return await self._reverse(request), ()
        if cls in "12" and is_advice(mti):
            return await self._complete(request), ()
        if cls not in "12" or mti[2] != "0":
            return _answer(request, "115"), ()
        kind = (request.fields.get("3") or "00")[:2]
        pan = pan_of(request) or ""
        if kind in _INQUIRIES:
            decision = await self._write(LedgerInquire(self.card_ref(pan)))
            assert isinstance(decision, Decision)
            return self._decided(request, decision, inquiry=True)
        if kind in _REFUNDS:
            return _answer(request, action_code("not_supported")), ()
        try:
            facts = sale_facts(request)
            amount = int(request.fields.get("4") or "0")
        except (DecodeError, ValueError):
            self._metrics.format_errors.inc()
            return _answer(request, "904"), ()
        op = LedgerAuthorise(
            reference=reference_of(request),
            card_ref=self.card_ref(pan),
            kind="preauth" if cls == "1" else "purchase",
            amount=amount,
            currency=request.fields.get("49") or self.settings.currency,
            facts=facts,
            at=time.time(),
            expires_at=time.time() + self.settings.preauth_window_s if cls == "1" else None,
            partial=self.settings.partial_approval,
            odometer_declines=self.settings.odometer_declines,
        )
        decision = await self._write(op)
        assert isinstance(decision, Decision)
        return self._decided(request, decision)

    def _decided(
        self, request: Message, decision: Decision, inquiry: bool = False
    ) -> tuple[Message, tuple[str, ...]]:
        self._metrics.decisions.labels(code=decision.code).inc()
        for flag in decision.flags:
            self._metrics.flags.labels(flag=flag).inc()
            log.warning("ledger_flag", flag=flag, route=self._name)
        code = action_code(decision.code)
        if not decision.approved_something:
            return _answer(request, code), decision.flags
        processing = request.fields.get("3") or ""
        account = processing[2:4] if processing[2:4].isdigit() else "00"
        currency = decision.currency or self.settings.currency
        amounts = [AdditionalAmount(account, AVAILABLE_BALANCE, currency, decision.available)]
        updates: dict[int, str | None] = {38: _approval_code(reference_of(request))}
        if not inquiry:
            updates[4] = f"{decision.approved:012d}"
        if decision.code == "partial":
            due = decision.requested - decision.approved
            amounts.append(AdditionalAmount(account, AMOUNT_DUE, currency, due))
        updates[54] = encode_field54(amounts)
        return _answer(request, code).with_fields(updates), decision.flags

    async def _complete(self, request: Message) -> Message:
        try:
            original = original_of(request)
            facts = sale_facts(request, offline=original is None)
            amount = int(request.fields.get("4") or "0")
        except (DecodeError, ValueError):
            self._metrics.format_errors.inc()
            return _answer(request, "904")
        op = LedgerComplete(
            reference_of(request),
            original,
            self.card_ref(pan_of(request) or ""),
            amount,
            facts,
            time.time(),
        )
        settled = await self._write(op)
        assert isinstance(settled, Settled)
        self._settled(settled, "completion")
        return _answer(request, "000" if settled.code != "original_not_found" else "914")

    async def _reverse(self, request: Message) -> Message:
        original = original_of(request)
        if original is None:
            return _answer(request, action_code("original_not_found"))
        partial = "30" in request.fields and request.fields.get("4") is not None
        to_amount = int(request.fields["4"]) if partial else None
        settled = await self._write(LedgerReverse(original, time.time(), to_amount))
        assert isinstance(settled, Settled)
        self._settled(settled, "reversal")
        return _answer(request, "400")

    def _settled(self, settled: Settled, what: str) -> None:
        self._metrics.decisions.labels(code=f"{what}_{settled.code}").inc()
        for flag in settled.flags:
            self._metrics.flags.labels(flag=flag).inc()
        if settled.flags:
            log.warning(f"ledger_{what}_flagged", flags=",".join(settled.flags))

    async def _write(self, op: LedgerOp) -> object:
        for attempt in range(_ATTEMPTS):
            try:
                (result,) = await self._journal.write(op)
                return result
            except JournalError as exc:
                if attempt == _ATTEMPTS - 1:
                    log.error("ledger_write_failed", route=self._name, error=str(exc))
                    raise AuthoriserUnavailable(self._name) from None
                await trio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def release_expired(self, now: float | None = None) -> int:
        """Release the holds whose window ended (all of them, a chunk per write)."""
        total = 0
        while True:
            released = await self._write(LedgerExpire(time.time() if now is None else now))
            assert isinstance(released, int)
            total += released
            if released < LedgerExpire(0.0).limit:
                break
        if total:
            self._metrics.released.inc(total)
            log.info("ledger_holds_released", route=self._name, released=total)
        self.released += total
        return total

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Release expired pre-authorisation holds every `release_interval_s`."""
        task_status.started()
        while True:
            with contextlib.suppress(AuthoriserUnavailable):  # logged; next round again
                await self.release_expired()
            await trio.sleep(self.settings.release_interval_s)


def _answer(request: Message, code: str) -> Message:
    fields = {k: v for k, v in request.fields.items() if k not in NOT_ECHOED}
    fields["39"] = code
    return Message(mti=response_mti(request.mti), fields=fields)


def _approval_code(reference: str) -> str:
    """Field 38, the same for a request seen twice: from its reference."""
    return hashlib.sha256(reference.encode()).hexdigest()[:6].upper()
