"""A wallet provider as an authoriser: ISO 8583 (1993 family) in, signed JSON over HTTPS out.

The flows hand it what they hand every authoriser, and it maps each message to
the provider's operations (docs/wallets.md):

- a purchase (1200, processing code 00) with a payment code (ifsf 48-60): pay,
  and while the provider says "user paying", query with backoff until it is
  paid, failed, or the terminal's time is up (then `AuthoriserTimeout`: the
  flow answers 911 and arms the reversal it parked, which comes back here from
  SAF as a cancel);
- a refund (1200, processing code 20) naming its sale in field 56: refund by
  amount, never more than the provider says is left of what was paid;
- a reversal (1420/1421, from a terminal, or the switch's own from SAF): cancel
  the order (the provider reverses it if it was paid), or refund the difference
  for a partial reversal. Only a signed confirmation answers it with 400; until
  then SAF keeps it, with its lease, backoff and flagging.

A signature that does not verify is never taken as an answer, least of all as
a success: for a payment it is an unknown outcome, so it ends cancelled.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import structlog
import trio
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.codecs.mti import mti_class
from forecourt.codecs.original import OriginalData
from forecourt.codecs.payment_code import payment_code_of
from forecourt.switch.authoriser import (
    Answer,
    AuthoriserBusy,
    AuthoriserTimeout,
    AuthoriserUnavailable,
    BeforeSend,
)
from forecourt.switch.journal import JournalRow
from forecourt.switch.metrics import SwitchMetrics

from .answers import answer_to, approval
from .orders import (
    DECLINE_CODES,
    DEFAULT_DECLINE,
    OrderState,
    Result,
    order_number,
    partial_reversal_number,
    refund_number,
)
from .provider import (
    ProviderAnswer,
    ProviderBadSignature,
    ProviderClient,
    ProviderError,
    ProviderNoAnswer,
)
from .settings import WalletSettings

__all__ = ["KIND", "WalletAuthoriser"]

log = structlog.get_logger("forecourt.authorisers.wallet")

KIND = "wallet"
# Journal look-ups the authoriser needs: (MTI class, terminal id, STAN) -> the row
FindRow = Callable[[str, str, str], Awaitable[JournalRow | None]]


class WalletAuthoriser:
    """One wallet provider: the `Authoriser` of kind "wallet"."""

    def __init__(
        self,
        settings: WalletSettings,
        client: ProviderClient,
        find_row: FindRow,
        metrics: SwitchMetrics,
    ) -> None:
        self.settings = settings
        self._client = client
        self._find_row = find_row
        self._metrics = metrics
        self._in_flight = 0
        self._logged: dict[str, float] = {}

    # -- the protocol's members ---------------------------------------------------

    @property
    def name(self) -> str:
        return self.settings.name

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
        return self._client.open

    @property
    def request_timeout_s(self) -> float:
        return self.settings.request_timeout_s

    @property
    def max_in_flight(self) -> int:
        return self.settings.max_in_flight

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def match_key(self, message: Message) -> tuple[str, str]:
        return message.fields.get("11") or "", message.fields.get("41") or ""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._client.serve(task_status=task_status)

    async def authorise(
        self,
        request: Message,
        *,
        before_send: BeforeSend | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """Carry out `request` at the provider; the answer is a 1993 message."""
        if self._in_flight >= self.settings.max_in_flight:
            raise AuthoriserBusy(self.name)
        if not self._client.open:
            raise AuthoriserUnavailable(self.name)
        limit = self.settings.request_timeout_s if timeout is None else timeout
        started = trio.current_time()
        deadline = started + limit if math.isfinite(limit) else math.inf
        self._in_flight += 1
        try:
            message = await self._carry_out(request, before_send, deadline)
        finally:
            self._in_flight -= 1
        stan = request.fields.get("11") or ""
        return Answer(message, trio.current_time() - started, stan)

    async def _carry_out(
        self, request: Message, before_send: BeforeSend | None, deadline: float
    ) -> Message:
        cls = mti_class(request.mti)
        kind = (request.fields.get("3") or "")[:2]
        if cls == "4":
            return await self._reverse(request, deadline)
        if cls == "2" and kind == "00" and payment_code_of(request) is not None:
            return await self._pay(request, before_send, deadline)
        if cls == "2" and kind == "20":
            return await self._refund(request, before_send, deadline)
        # an authorisation (pre-authorisation), an advice, or a sale without a code
        return answer_to(request, "115")

    # -- pay -------------------------------------------------------------------------

    async def _pay(
        self, request: Message, before_send: BeforeSend | None, deadline: float
    ) -> Message:
        code = payment_code_of(request) or ""
        if before_send is not None:
            await before_send(request)
        row = await self._row_of(request)
        if row is None:
            raise AuthoriserUnavailable(f"{self.name}: the sale is not in the journal")
        order_no = order_number(row.txn_id)
        body = {
            "order_no": order_no,
            "amount": int(request.fields.get("4") or "0"),
            "currency": request.fields.get("49") or "",
            "payment_code": code,
            "terminal_id": request.fields.get("41") or "",
        }
        answer = await self._until_answered("/v1/pay", body, deadline, unknown=True)
        result = answer.text("result")
        if result == Result.SUCCESS:
            return self._paid(request, answer)
        if result == Result.USER_PAYING:
            return await self._await_user(request, order_no, deadline)
        return self._declined(request, answer)

    async def _await_user(self, request: Message, order_no: str, deadline: float) -> Message:
        """Ask again, with backoff, until the customer has decided or time is up."""
        delay = self.settings.query_initial_s
        while True:
            pause = min(delay, deadline - trio.current_time())
            if pause <= 0:
                raise AuthoriserTimeout(f"{self.name}: user still paying at the deadline")
            await trio.sleep(pause)
            delay = min(self.settings.query_max_s, delay * 2)
            try:
                answer = await self._client.call("/v1/query", {"order_no": order_no}, deadline)
            except ProviderBadSignature:
                self._unverified("/v1/query")
                raise AuthoriserTimeout(f"{self.name}: a query answer did not verify") from None
            except ProviderError:
                continue  # the order's fate is unchanged by a lost query: ask again
            state = answer.text("state")
            if state == OrderState.PAID:
                return self._paid(request, answer)
            if state in (OrderState.FAILED, OrderState.CANCELLED):
                return self._declined(request, answer)
            # PAYING (or NOT_FOUND for a moment): ask again

    def _paid(self, request: Message, answer: ProviderAnswer) -> Message:
        """An approval, only for exactly the amount asked: any other amount is an order
        the switch did not place, so it is undone (unknown outcome, then cancel)."""
        asked = int(request.fields.get("4") or "0")
        if answer.number("amount") != asked:
            log.error("wallet_paid_amount_differs", provider=self.name)
            raise AuthoriserTimeout(f"{self.name}: paid an amount that was not asked")
        return approval(request, answer)

    def _declined(self, request: Message, answer: ProviderAnswer) -> Message:
        """The provider's FAIL in the terminal's terms. A 4xx is the provider refusing the
        request itself (signature, merchant, format): not the customer's decline but the
        integration's fault, 909, and nothing was charged."""
        if answer.status >= 400:
            log.error(
                "wallet_request_refused",
                provider=self.name,
                status=answer.status,
                error=answer.text("error"),
            )
            return answer_to(request, "909")
        code = DECLINE_CODES.get(answer.text("error"), DEFAULT_DECLINE)
        return answer_to(request, code)

    # -- refund ----------------------------------------------------------------------

    async def _refund(
        self, request: Message, before_send: BeforeSend | None, deadline: float
    ) -> Message:
        original = await self._original_of(request)
        if original is None or original.state not in ("approved", "reversal_pending"):
            return answer_to(request, "914")
        amount = int(request.fields.get("4") or "0")
        if original.approved_amount is not None and amount > original.approved_amount:
            return answer_to(request, "110")
        order_no = order_number(original.txn_id)
        if before_send is not None:
            await before_send(request)
        row = await self._row_of(request)
        if row is None:
            raise AuthoriserUnavailable(f"{self.name}: the refund is not in the journal")
        # what is left to refund, as the provider (signed) says: never more than was paid
        order = await self._until_answered("/v1/query", {"order_no": order_no}, deadline)
        left = order.number("paid_amount") - order.number("refunded_amount")
        if order.text("state") != OrderState.PAID or amount > left:
            return answer_to(request, "110")
        return await self._refund_call(
            request, order_no, refund_number(row.txn_id), amount, deadline
        )

    async def _refund_call(
        self, request: Message, order_no: str, refund_no: str, amount: int, deadline: float
    ) -> Message:
        body = {"order_no": order_no, "refund_no": refund_no, "amount": amount}
        answer = await self._until_answered("/v1/refund", body, deadline, unknown=True)
        if answer.text("result") == Result.SUCCESS:
            return approval(request, answer, paid=False)
        return self._declined(request, answer)

    # -- reversal --------------------------------------------------------------------

    async def _reverse(self, request: Message, deadline: float) -> Message:
        original = await self._original_of(request)
        if original is None:
            log.warning("wallet_reversal_original_unknown", provider=self.name)
            return answer_to(request, "914")
        if (original.processing_code or "")[:2] == "20":
            return await self._reverse_refund(request, original, deadline)
        order_no = order_number(original.txn_id)
        partial = "30" in request.fields and request.fields.get("4") is not None
        if partial:
            paid = original.approved_amount or 0
            back = paid - int(request.fields.get("4") or "0")
            if back <= 0:
                return answer_to(request, "400")
            stan = request.fields.get("11") or ""
            refund_no = partial_reversal_number(order_no, stan)
            refunded = await self._refund_call(request, order_no, refund_no, back, deadline)
            return answer_to(request, "400" if refunded.fields.get("39") == "000" else "909")
        answer = await self._until_answered("/v1/cancel", {"order_no": order_no}, deadline)
        if answer.text("result") == Result.SUCCESS:
            log.info("wallet_order_cancelled", provider=self.name, txn_id=original.txn_id)
            return answer_to(request, "400")
        # not cancelled (yet): a technical answer keeps the item in SAF
        log.warning("wallet_cancel_refused", provider=self.name, error=answer.text("error"))
        return answer_to(request, "909")

    async def _reverse_refund(
        self, request: Message, original: JournalRow, deadline: float
    ) -> Message:
        """A refund cannot be taken back: done if it never happened, else an operator's."""
        refund_no = refund_number(original.txn_id)
        answer = await self._until_answered("/v1/refund/query", {"refund_no": refund_no}, deadline)
        if answer.text("state") != "REFUNDED":
            return answer_to(request, "400")
        log.error("wallet_refund_went_through_after_timeout", txn_id=original.txn_id)
        return answer_to(request, "909")  # stays in SAF, flagged for an operator

    # -- shared ----------------------------------------------------------------------

    async def _until_answered(
        self, path: str, body: dict[str, object], deadline: float, unknown: bool = False
    ) -> ProviderAnswer:
        """Call until a verified answer, the same body each time (idempotent at the provider).

        `unknown`: the call can move money, so an answer that does not verify ends the
        attempt as an unknown outcome (`AuthoriserTimeout`); a call that never reached
        the provider is `AuthoriserUnavailable` only if no attempt may have reached it.
        """
        delay = self.settings.query_initial_s
        maybe_arrived = False
        while True:
            try:
                return await self._client.call(path, body, deadline)
            except ProviderBadSignature:
                self._unverified(path)
                raise AuthoriserTimeout(
                    f"{self.name}: the answer to {path} did not verify"
                ) from None
            except ProviderNoAnswer as exc:
                maybe_arrived = True
                reason = str(exc)
            except ProviderError as exc:
                reason = str(exc)
            pause = min(delay, deadline - trio.current_time())
            if pause <= 0:
                log.warning("wallet_no_answer", provider=self.name, operation=path, reason=reason)
                if maybe_arrived or not unknown:
                    raise AuthoriserTimeout(reason)
                raise AuthoriserUnavailable(reason)
            await trio.sleep(pause)
            delay = min(self.settings.query_max_s, delay * 2)

    def _unverified(self, operation: str) -> None:
        """Counted every time; logged at most once a second per provider and operation."""
        self._metrics.wallet_unverified_answers.labels(link=self.name, operation=operation).inc()
        now = trio.current_time()
        if now - self._logged.get(operation, -math.inf) >= 1.0:
            self._logged[operation] = now
            log.warning("wallet_answer_not_verified", provider=self.name, operation=operation)

    async def _row_of(self, request: Message) -> JournalRow | None:
        """The journal's row of this request (written by `before_send`)."""
        return await self._find_row(
            mti_class(request.mti), request.fields.get("41") or "", request.fields.get("11") or ""
        )

    async def _original_of(self, request: Message) -> JournalRow | None:
        """The sale a refund or reversal names in field 56 (the terminal's own STAN)."""
        value = request.fields.get("56")
        if value is None:
            return None
        try:
            data = OriginalData.decode(value)
        except DecodeError:
            return None
        return await self._find_row(mti_class(data.mti), request.fields.get("41") or "", data.stan)
