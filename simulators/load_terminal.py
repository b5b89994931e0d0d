"""One load terminal: its connection, STAN sequence, in-flight requests and pace.

Each terminal of a load run sends from its own templates (closed loop: a
number of slots; open loop: a fixed schedule), matches answers by STAN,
counts timeouts and keeps the approved purchases a `reversal` may undo.
"""

from __future__ import annotations

import collections
import random
import time
from typing import Any

import attrs
import trio
from forecourt.codecs.dialect import encode, encode_with_mac
from forecourt.codecs.errors import CodecError
from forecourt.codecs.framing import FrameDecoder, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.payment_code import with_payment_code

from .load_frames import AnswerScanner, RequestTemplate, mac_request_template
from .load_options import LoadOptions, MixEntry
from .load_report import LoadResult
from .templates import DEFAULT_TEST_PAN, PROFILES, SentRequest, TerminalIdentity, build

__all__ = ["LoadTerminal"]

# answers that leave a purchase approved, so a `reversal` in the mix may reverse it
_APPROVED = frozenset({"000", "00"})
# approved purchases a terminal remembers to reverse (the most recent first)
_REVERSIBLE_KEPT = 64
# templates are encoded again this often: field 7 (and 12/13) say when a request was
# sent, and the switch refuses one further than its tolerance (10 minutes) from its clock
_REBUILD_S = 60.0


class LoadTerminal:
    """One simulated terminal: a connection, a STAN sequence, in-flight requests."""

    def __init__(
        self,
        terminal_id: str,
        options: LoadOptions,
        result: LoadResult,
        rng: random.Random,
    ) -> None:
        self.terminal_id = terminal_id
        self.options = options
        self.result = result
        self.rng = rng
        self.wire = options.wire
        self.mac = options.macs.get(terminal_id) if options.macs is not None else None
        self.stan = rng.randrange(1, 999_999)
        self.pending: dict[int, float] = {}
        self._slots: trio.Semaphore | None = None
        self._lost = False  # the connection ended before the run did
        header = {"2b": 2, "4a": 4}.get(self.wire.framing.header, 0)
        self.tpdu = self.wire.tpdu
        self.header = header
        # purchases in flight (STAN -> who, amount, when sent) and approved ones a
        # `reversal` in the mix may reverse; each is reversed at most once
        self.purchases: dict[int, tuple[TerminalIdentity, int, float]] = {}
        self.reversible: collections.deque[tuple[int, TerminalIdentity, int, float]] = (
            collections.deque(maxlen=_REVERSIBLE_KEPT)
        )
        self._build_templates()

    def _build_templates(self, now: float | None = None) -> None:
        """Encode each template of the mix once, with the time (now) in 7 and 12/13."""
        now = self.now = time.time() if now is None else now
        options, terminal_id = self.options, self.terminal_id
        self.templates: list[tuple[RequestTemplate | None, MixEntry, TerminalIdentity]] = []
        self.weights: list[float] = []
        for entry in options.mix:
            for instrument in entry.instruments:
                code = instrument if entry.payment_codes else None
                who = TerminalIdentity(
                    terminal_id=terminal_id,
                    merchant_id=options.merchant_id,
                    family=self.wire.family,
                    pan=instrument if code is None else DEFAULT_TEST_PAN,
                )
                if entry.template == "reversal":
                    # built per request: it refers to a purchase this terminal made
                    self.templates.append((None, entry, who))
                    self.weights.append(entry.weight / len(entry.instruments))
                    continue

                def build_with(
                    stan: str,
                    amount: int,
                    _who: Any = who,
                    _t: str = entry.template,
                    _code: str | None = code,
                ) -> Message:
                    who_now = attrs.evolve(_who, amount=amount)
                    message = build(_t, who_now, PROFILES["indoor"], stan, now=now)
                    return message if _code is None else with_payment_code(message, _code)

                make = mac_request_template if self.mac is not None else RequestTemplate
                self.templates.append((make(self.wire, build_with), entry, who))
                self.weights.append(entry.weight / len(entry.instruments))
        self._fallback: tuple[RequestTemplate, MixEntry, TerminalIdentity] | None = next(
            ((t, e, w) for t, e, w in self.templates if t is not None and e.template == "purchase"),
            None,
        )

    def next_frame(self) -> tuple[int, bytes]:
        self.stan = self.stan % 999_999 + 1
        if time.time() - self.now > _REBUILD_S:
            self._build_templates()
        if len(self.templates) == 1:
            template, entry, who = self.templates[0]
        else:
            template, entry, who = self.rng.choices(self.templates, self.weights)[0]
        if template is None:
            if self.reversible:
                return self.stan, self._reversal_frame(*self.reversible.pop())
            if self._fallback is None:
                raise ValueError("a reversal in the mix needs purchases in it")
            template, entry, who = self._fallback  # nothing approved to reverse yet
        assert template is not None
        amount = entry.amount_min
        if entry.amount_max != entry.amount_min:
            amount = self.rng.randint(entry.amount_min, entry.amount_max)
        payload = template.payload(self.stan, amount, self.mac)
        if entry.template == "purchase":
            self.purchases[self.stan] = (who, amount, self.now)
        return self.stan, encode_frame(self.wire.framing, payload, self.tpdu)

    def _reversal_frame(
        self, original_stan: int, who: TerminalIdentity, amount: int, sent: float
    ) -> bytes:
        """A 1420/0400 of an approved purchase of this terminal's (encoded per request:
        field 56/90 names the original, as it was sent at `sent`)."""
        profile = PROFILES["indoor"]
        who = attrs.evolve(who, amount=amount)
        original = build("purchase", who, profile, f"{original_stan:06d}", now=sent)
        message = build(
            "reversal",
            who,
            profile,
            f"{self.stan:06d}",
            last_financial=SentRequest(original),
            now=self.now,
        )
        dialect = self.wire.dialect
        if self.mac is not None:
            payload = encode_with_mac(dialect, message, self.mac)
        else:
            payload = encode(dialect, message)
        return encode_frame(self.wire.framing, payload, self.tpdu)

    def _answered(self, stan: int, code: str | None) -> None:
        purchase = self.purchases.pop(stan, None)
        if purchase is not None and code in _APPROVED:
            self.reversible.append((stan, *purchase))

    async def run(self, deadline: float, slots: int, interval: float | None) -> None:
        while True:
            self._lost = False
            await self._connection(deadline, slots, interval)
            if not (self.options.reconnect and self._lost and trio.current_time() < deadline):
                return
            self.result.reconnects += 1
            await trio.sleep(0.05)

    async def _connection(self, deadline: float, slots: int, interval: float | None) -> None:
        result = self.result
        try:
            with trio.fail_after(self.options.timeout_s):
                stream = await trio.open_tcp_stream(self.options.host, self.options.port)
        except (OSError, trio.TooSlowError):
            result.connections_failed += 1
            return
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, stream, nursery.cancel_scope)
                nursery.start_soon(self._sweep)
                if interval is None:
                    self._slots = trio.Semaphore(slots)
                    await self._closed_loop(stream, deadline, self._slots)
                else:
                    await self._open_loop(stream, deadline, interval)
                # Drain: wait for what is in flight, at most the timeout.
                with trio.move_on_after(self.options.timeout_s + 0.5):
                    while self.pending:
                        await trio.sleep(0.005)
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            result.errors += 1
            self._lost = True
        finally:
            result.timeouts += len(self.pending)
            self.pending.clear()
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _closed_loop(
        self, stream: trio.SocketStream, deadline: float, semaphore: trio.Semaphore
    ) -> None:
        result = self.result
        clock = time.perf_counter
        while trio.current_time() < deadline:
            await semaphore.acquire()
            stan, frame = self.next_frame()
            self.pending[stan] = clock()
            result.sent += 1
            await stream.send_all(frame)

    async def _open_loop(self, stream: trio.SocketStream, deadline: float, interval: float) -> None:
        result = self.result
        start_trio = trio.current_time()
        start_perf = time.perf_counter()
        # Spread terminals over the first interval so they do not send in lockstep.
        n = self.rng.random()
        while True:
            due = start_trio + n * interval
            if due >= deadline:
                return
            await trio.sleep_until(due)
            stan, frame = self.next_frame()
            self.pending[stan] = start_perf + n * interval  # the scheduled time
            result.sent += 1
            await stream.send_all(frame)
            n += 1

    async def _read(self, stream: trio.SocketStream, scope: trio.CancelScope) -> None:
        decoder = FrameDecoder(self.wire.framing)
        scan = AnswerScanner(self.wire).scan
        result = self.result
        record = result.latency.record
        codes = result.by_action_code
        pending = self.pending
        clock = time.perf_counter
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    break
                now = clock()
                for frame in decoder.feed(data):
                    try:
                        stan_text, code = scan(frame.payload)
                        stan = int(stan_text or "x")
                    except (CodecError, ValueError):
                        result.errors += 1
                        continue
                    sent_at = pending.pop(stan, None)
                    if sent_at is None:
                        result.unmatched += 1
                        continue
                    if self.purchases:
                        self._answered(stan, code)
                    record(now - sent_at)
                    result.answered += 1
                    code = code or "none"
                    codes[code] = codes.get(code, 0) + 1
                    if self._slots is not None:
                        self._slots.release()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, CodecError):
            result.errors += 1
        self._lost = True
        if pending or self.options.reconnect:
            scope.cancel()

    async def _sweep(self) -> None:
        """Count requests unanswered after the timeout as timeouts and free their slots."""
        timeout = self.options.timeout_s
        while True:
            await trio.sleep(min(0.25, timeout / 4))
            limit = time.perf_counter() - timeout
            expired = [stan for stan, t in self.pending.items() if t < limit]
            for stan in expired:
                del self.pending[stan]
                self.purchases.pop(stan, None)
                self.result.timeouts += 1
                if self._slots is not None:
                    self._slots.release()
