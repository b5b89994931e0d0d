"""Matching: which terminal request is which, on both sides of the switch.

Terminal side: a request is identified by (MTI class, terminal id, STAN). While one
is in flight a copy is never forwarded again; once finished, a retransmission with
the same amount gets the journalled answer again. The window of finished requests
is held in memory (bounded) and warmed from the journal at start, so the hot path
makes no database read: only a retransmission reads its answer from the journal.
The window knows how far back it is complete, and keeps the keys it let go of in
Bloom filters (`LetGo`) for twice the transmission-time tolerance: only a request
whose key may be among those is looked up in the journal (`left_since`).

Acquirer side: the switch allocates its own STAN per link, never two in flight on
one link, and keeps a STAN that timed out out of use for a quarantine period so a
late answer can never be matched to a newer request.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

import attrs
import trio
from forecourt.codecs.message import Message
from forecourt.codecs.mti import RequestKey

TerminalKey = RequestKey  # one key type: (MTI class, terminal id 41, STAN 11)


@attrs.frozen
class FinishedRequest:
    """A request answered: a retransmission of it (same amount) is answered again.

    The answer itself is not kept here but read from the journal (`response_raw`,
    durable before the terminal heard it) when a retransmission comes: the window
    holds up to 200,000 requests, and the answer bytes were 330 of the ~800 bytes an
    entry took (docs/performance.md, fourth round).
    """

    txn_id: str
    amount: str | None


@attrs.define(eq=False)
class InFlight:
    """A request the switch is working on; duplicates wait on `done`."""

    txn_id: str
    amount: str | None
    done: trio.Event = attrs.field(factory=trio.Event)
    answer: Message | None = None


# How the window stores a FinishedRequest: one string, "txn id/amount". A string is
# outside the cyclic collector's view, where an attrs instance stays tracked for
# life: 200,000 of those made every full collection (and gc_quiet's sweep) walk them
# all, 104 ms against 23 ms. One object instead of a tuple of two saves ~130 bytes.
_SEPARATOR = "/"


def _kept(txn_id: str, amount: str | None) -> str:
    return f"{txn_id}{_SEPARATOR}{amount or ''}"


def _joined(key: TerminalKey) -> str:
    return "\x1f".join(key)  # a unit separator: in no MTI class, terminal id or STAN


def _unkept(kept: str) -> FinishedRequest:
    txn_id, _, amount = kept.rpartition(_SEPARATOR)
    return FinishedRequest(txn_id, amount or None)


# A transaction id is a ULID (journal.new_txn_id): its first 10 characters are the
# milliseconds of its creation, when the request was received, in Crockford's base 32.
_TO_BASE32 = str.maketrans("0123456789ABCDEFGHJKMNPQRSTVWXYZ", "0123456789abcdefghijklmnopqrstuv")
_ULID_LENGTH = 26


def _received_at(kept: str) -> float:
    """When the kept request was received; now when its id says nothing (conservative)."""
    if len(kept) > _ULID_LENGTH and kept[_ULID_LENGTH] == _SEPARATOR:
        try:
            return int(kept[:10].translate(_TO_BASE32), 32) / 1000.0
        except ValueError:
            pass
    return time.time()


class _Segment:
    """A Bloom filter of up to `KEYS` keys (16 bits a key, 3 probes: ~0.5 % false)."""

    BITS = 1 << 20
    KEYS = 1 << 16

    def __init__(self, newest: float) -> None:
        self.bits = bytearray(self.BITS // 8)
        self.count = 0
        self.newest = newest  # the latest reception among its keys and every older segment's

    def add(self, joined: str, received: float) -> None:
        h, bits = hash(joined), self.bits  # a str caches its hash: the window made it
        a, b, c = h & 0xFFFFF, (h >> 20) & 0xFFFFF, (h >> 40) & 0xFFFFF
        bits[a >> 3] |= 1 << (a & 7)
        bits[b >> 3] |= 1 << (b & 7)
        bits[c >> 3] |= 1 << (c & 7)
        self.count += 1
        if received > self.newest:
            self.newest = received

    def __contains__(self, joined: str) -> bool:
        h, bits = hash(joined), self.bits
        a, b, c = h & 0xFFFFF, (h >> 20) & 0xFFFFF, (h >> 40) & 0xFFFFF
        return bool(
            bits[a >> 3] & (1 << (a & 7))
            and bits[b >> 3] & (1 << (b & 7))
            and bits[c >> 3] & (1 << (c & 7))
        )


class LetGo:
    """The keys the window let go of, for `keep_s`: whether a key may be among them.

    Two bytes a key in Bloom filters instead of a window entry's ~250, so a request
    whose key is in none of them is known new without asking the journal, at any
    rate. A false "may be" costs one journal read, never a wrong answer.
    """

    def __init__(self, keep_s: float = 1200.0, segments: int = 32) -> None:
        self._segments: deque[_Segment] = deque()
        self._keep_s = keep_s
        self._most = segments  # 32 x 128 KB: 2 million keys
        # keys let go of and received after this are all in a segment
        self.complete_after = float("-inf")

    def add(self, joined: str, received: float) -> None:
        segments = self._segments
        if not segments or segments[-1].count >= _Segment.KEYS:
            old = time.time() - self._keep_s
            while segments and (len(segments) >= self._most or segments[0].newest < old):
                self.complete_after = max(self.complete_after, segments.popleft().newest)
            segments.append(_Segment(segments[-1].newest if segments else float("-inf")))
        segments[-1].add(joined, received)

    def may_hold(self, joined: str, received_after: float) -> bool:
        if self.complete_after >= received_after:
            return True  # let go of so long ago that the segments are gone too
        for segment in reversed(self._segments):
            if segment.newest < received_after:
                return False  # this one and every older one: received before
            if joined in segment:
                return True
        return False


class TerminalRequests:
    """The one owner of terminal-side matching state for a switch process."""

    def __init__(self, window: int = 200_000, let_go_s: float = 1200.0) -> None:
        self._in_flight: dict[TerminalKey, InFlight] = {}
        self._per_terminal: dict[str, int] = {}  # in flight, by terminal id
        # keyed by the key's parts joined (one string, ~55 bytes less than a tuple)
        self._finished: OrderedDict[str, str] = OrderedDict()
        self._window = window
        # every request received after this that finished with a journalled answer is
        # in the window: the latest reception among those it let go, or before which
        # the start did not warm it
        self._complete_after = float("-inf")
        self._let_go = LetGo(let_go_s)

    def in_flight(self, key: TerminalKey) -> InFlight | None:
        return self._in_flight.get(key)

    def finished(self, key: TerminalKey) -> FinishedRequest | None:
        kept = self._finished.get(_joined(key))
        return None if kept is None else _unkept(kept)

    def begin(self, key: TerminalKey, txn_id: str, amount: str | None) -> InFlight:
        entry = InFlight(txn_id, amount)
        if self._in_flight.setdefault(key, entry) is not entry:
            self._in_flight[key] = entry  # a copy raced past the duplicate check
        else:
            terminal_id = key[1]
            self._per_terminal[terminal_id] = self._per_terminal.get(terminal_id, 0) + 1
        return entry

    def finish(self, key: TerminalKey, answer: Message | None, *, journalled: bool) -> None:
        """Move a request to the finished window if its answer is `journalled` (it can
        be replayed from there); copies waiting on it hear `answer` either way."""
        entry = self._in_flight.pop(key, None)
        if entry is None:
            return
        terminal_id = key[1]
        remaining = self._per_terminal.get(terminal_id, 1) - 1
        if remaining:
            self._per_terminal[terminal_id] = remaining
        else:
            self._per_terminal.pop(terminal_id, None)
        entry.answer = answer
        entry.done.set()
        if answer is not None and journalled:
            self._keep(key, _kept(entry.txn_id, entry.amount))

    def remember(self, key: TerminalKey, finished: FinishedRequest) -> None:
        self._keep(key, _kept(finished.txn_id, finished.amount))

    def _keep(self, key: TerminalKey, kept: str) -> None:
        joined = _joined(key)
        self._finished[joined] = kept
        self._finished.move_to_end(joined)
        while len(self._finished) > self._window:
            joined, gone = self._finished.popitem(last=False)
            received = _received_at(gone)
            if received > self._complete_after:
                self._complete_after = received
            self._let_go.add(joined, received)

    def left_since(self, key: TerminalKey, received_after: float) -> bool:
        """Whether a request with this key, received at or after `received_after`, may
        have finished and no longer be in the window (let go, or from before the start).

        False at once while the window reaches back that far (the hot path); else
        the let-go filters say.
        """
        if self._complete_after < received_after:
            return False
        return self._let_go.may_hold(_joined(key), received_after)

    def warmed_after(self, received_at: float) -> None:
        """The start put in the window only the requests received after `received_at`."""
        self._complete_after = max(self._complete_after, received_at)
        self._let_go.complete_after = max(self._let_go.complete_after, received_at)

    @property
    def in_flight_count(self) -> int:
        return len(self._in_flight)

    def in_flight_of(self, terminal_id: str) -> int:
        """Requests of this terminal in flight (its cap, DESIGN: back-pressure)."""
        return self._per_terminal.get(terminal_id, 0)


class StanExhausted(Exception):
    """Every STAN of a link is in flight or quarantined."""


class StanAllocator:
    """Switch-side STANs for one acquirer link: sequential, never two in flight.

    The one memory of STANs that timed out: one is kept out of use for
    `quarantine_s`, and `quarantined` tells the link's reader that an answer
    carrying it is late rather than unknown.
    """

    def __init__(
        self,
        quarantine_s: float = 120.0,
        start: int = 0,
        clock: Callable[[], float] = time.monotonic,
        space: int = 999_999,  # STANs 1..space; smaller only in tests, to come around fast
    ) -> None:
        self._space = space
        self._next = start % space
        self._in_use: set[int] = set()
        # insertion order is expiry order: quarantine_s is the same for every entry
        self._quarantine: OrderedDict[int, float] = OrderedDict()
        self._quarantine_s = quarantine_s
        self._clock = clock

    def allocate(self) -> str:
        now = self._clock()
        while self._quarantine:
            _, until = next(iter(self._quarantine.items()))
            if until > now:
                break
            self._quarantine.popitem(last=False)
        space = self._space
        for _ in range(space):
            self._next = self._next % space + 1
            candidate = self._next
            if candidate not in self._in_use and candidate not in self._quarantine:
                self._in_use.add(candidate)
                return f"{candidate:06d}"
        raise StanExhausted("no free STAN on this link")

    def release(self, stan: str, *, quarantine: bool = False) -> None:
        number = int(stan)
        self._in_use.discard(number)
        if quarantine:
            self._quarantine[number] = self._clock() + self._quarantine_s
            self._quarantine.move_to_end(number)

    def quarantined(self, stan: str | None) -> bool:
        """True while `stan` timed out and is kept out of use: an answer with it is late.

        Asked only for answers that matched nothing, never on the hot path."""
        if stan is None or not (stan.isascii() and stan.isdigit()):
            return False
        until = self._quarantine.get(int(stan))
        return until is not None and until > self._clock()

    @property
    def quarantine_s(self) -> float:
        return self._quarantine_s

    @property
    def in_use(self) -> int:
        return len(self._in_use)
