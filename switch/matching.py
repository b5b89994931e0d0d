"""Matching: which terminal request is which, on both sides of the switch.

Terminal side: a request is identified by (MTI class, terminal id, STAN). While one
is in flight a copy is never forwarded again; once finished, a retransmission with
the same amount gets the journalled answer again. The window of finished requests
is held in memory (bounded) and warmed from the journal at start, so the hot path
makes no database read.

Acquirer side: the switch allocates its own STAN per link, never two in flight on
one link, and keeps a STAN that timed out out of use for a quarantine period so a
late answer can never be matched to a newer request.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import attrs
import trio
from forecourt.codecs.message import Message

TerminalKey = tuple[str, str, str]


@attrs.frozen
class FinishedRequest:
    """What is needed to answer a retransmission without asking the host again.

    The answer is kept as the bytes that were sent (a few hundred bytes, where a
    decoded message costs several times that): the window holds up to 200,000 of
    them, and a retransmission is rare enough to decode on demand.
    """

    txn_id: str
    amount: str | None
    sent: bytes


@attrs.define(eq=False)
class InFlight:
    """A request the switch is working on; duplicates wait on `done`."""

    txn_id: str
    amount: str | None
    done: trio.Event = attrs.field(factory=trio.Event)
    answer: Message | None = None


class TerminalRequests:
    """The one owner of terminal-side matching state for a switch process."""

    def __init__(self, window: int = 200_000) -> None:
        self._in_flight: dict[TerminalKey, InFlight] = {}
        self._finished: OrderedDict[TerminalKey, FinishedRequest] = OrderedDict()
        self._window = window

    def in_flight(self, key: TerminalKey) -> InFlight | None:
        return self._in_flight.get(key)

    def finished(self, key: TerminalKey) -> FinishedRequest | None:
        return self._finished.get(key)

    def begin(self, key: TerminalKey, txn_id: str, amount: str | None) -> InFlight:
        entry = InFlight(txn_id, amount)
        self._in_flight[key] = entry
        return entry

    def finish(self, key: TerminalKey, answer: Message | None, sent: bytes | None) -> None:
        """Move a request to the finished window; `None` means nothing to replay."""
        entry = self._in_flight.pop(key, None)
        if entry is None:
            return
        entry.answer = answer
        entry.done.set()
        if answer is not None and sent is not None:
            self.remember(key, FinishedRequest(entry.txn_id, entry.amount, sent))

    def remember(self, key: TerminalKey, finished: FinishedRequest) -> None:
        self._finished[key] = finished
        self._finished.move_to_end(key)
        while len(self._finished) > self._window:
            self._finished.popitem(last=False)

    @property
    def in_flight_count(self) -> int:
        return len(self._in_flight)


class StanExhausted(Exception):
    """Every STAN of a link is in flight or quarantined."""


class StanAllocator:
    """Switch-side STANs for one acquirer link: sequential, never two in flight."""

    def __init__(self, quarantine_s: float = 120.0, start: int = 0) -> None:
        self._next = start % 999_999
        self._in_use: set[int] = set()
        self._quarantine: OrderedDict[int, float] = OrderedDict()
        self._quarantine_s = quarantine_s

    def allocate(self) -> str:
        now = time.monotonic()
        while self._quarantine:
            _, until = next(iter(self._quarantine.items()))
            if until > now:
                break
            self._quarantine.popitem(last=False)
        for _ in range(999_999):
            self._next = self._next % 999_999 + 1
            candidate = self._next
            if candidate not in self._in_use and candidate not in self._quarantine:
                self._in_use.add(candidate)
                return f"{candidate:06d}"
        raise StanExhausted("no free STAN on this link")

    def release(self, stan: str, *, quarantine: bool = False) -> None:
        number = int(stan)
        self._in_use.discard(number)
        if quarantine:
            self._quarantine[number] = time.monotonic() + self._quarantine_s

    @property
    def quarantine_s(self) -> float:
        return self._quarantine_s

    @property
    def in_use(self) -> int:
        return len(self._in_use)
