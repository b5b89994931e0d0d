"""Load generator: many terminals, each with its own connection, STANs and keys.

It must outrun the switch, so its per-request path does no ISO 8583 encoding:
each terminal encodes its request templates once and then patches the STAN
and amount bytes in place (and MACs the result when keys are in use). Answers
are decoded once for STAN and action code. Closed loop (`concurrency`: a fixed
number of requests outstanding) or open loop (`rate`: requests per second on a
schedule, latency measured from the scheduled time so a stalled switch cannot
hide its stall). Several processes can share the load (`processes`); their
histograms merge into one report.
"""

from __future__ import annotations

import collections
import json
import math
import multiprocessing
import multiprocessing.connection
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.codecs.dialect import decode, encode, encode_with_mac
from forecourt.codecs.errors import CodecError
from forecourt.codecs.framing import FrameDecoder, encode_frame
from forecourt.codecs.message import Message

from ._toml import SimConfigError, Table, load_toml
from .stats import LatencyHistogram
from .templates import DEFAULT_TEST_PAN, PROFILES, SentRequest, TerminalIdentity, build
from .wire import WireFormat, wire_format

__all__ = [
    "LoadOptions",
    "LoadResult",
    "MixEntry",
    "load_mix",
    "run_load",
    "run_load_processes",
]

MIX_TEMPLATES = ("purchase", "preauth", "echo", "reversal")
# answers that leave a purchase approved, so a `reversal` in the mix may reverse it
_APPROVED = frozenset({"000", "00"})
# approved purchases a terminal remembers to reverse (the most recent first)
_REVERSIBLE_KEPT = 64
TEST_PAN = DEFAULT_TEST_PAN


@attrs.frozen
class MixEntry:
    """One kind of request in the mix, drawn with probability weight / total."""

    template: str = "purchase"
    weight: float = 1.0
    pans: tuple[str, ...] = (TEST_PAN,)
    amount_min: int = 1000
    amount_max: int = 1000


@attrs.frozen
class LoadOptions:
    """One load run; `rate` (open loop) or `concurrency` (closed loop)."""

    host: str
    port: int
    wire: WireFormat
    terminals: int = 10
    duration_s: float = 10.0
    rate: float | None = None
    concurrency: int | None = None
    mix: tuple[MixEntry, ...] = (MixEntry(),)
    timeout_s: float = 10.0
    terminal_prefix: str = "L"
    first_terminal: int = 1
    merchant_id: str = "FORECOURTLOAD01"
    # terminal id -> MAC function; None: requests go without a MAC.
    macs: Mapping[str, Callable[[bytes], bytes]] | None = attrs.field(default=None, repr=False)
    seed: int | None = None
    # reconnect when the switch closes the connection before the end of the run
    # (a node behind a load balancer died); what was in flight counts as timeouts
    reconnect: bool = False

    def terminal_ids(self) -> list[str]:
        width = max(1, 8 - len(self.terminal_prefix))
        return [
            f"{self.terminal_prefix}{n:0{width}d}"
            for n in range(self.first_terminal, self.first_terminal + self.terminals)
        ]


@attrs.define
class LoadResult:
    """Counts and latencies of a run (or of several merged)."""

    duration_s: float = 0.0
    sent: int = 0
    answered: int = 0
    timeouts: int = 0
    errors: int = 0
    unmatched: int = 0
    by_action_code: dict[str, int] = attrs.field(factory=dict)
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    connections_failed: int = 0
    reconnects: int = 0

    @property
    def throughput(self) -> float:
        """Answers per second over the run."""
        return self.answered / self.duration_s if self.duration_s > 0 else 0.0

    def merge(self, other: LoadResult) -> None:
        self.duration_s = max(self.duration_s, other.duration_s)
        self.sent += other.sent
        self.answered += other.answered
        self.timeouts += other.timeouts
        self.errors += other.errors
        self.unmatched += other.unmatched
        self.connections_failed += other.connections_failed
        self.reconnects += other.reconnects
        for code, n in other.by_action_code.items():
            self.by_action_code[code] = self.by_action_code.get(code, 0) + n
        self.latency.merge(other.latency)

    def as_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "duration_s": round(self.duration_s, 3),
            "sent": self.sent,
            "answered": self.answered,
            "throughput_per_s": round(self.throughput, 1),
            "latency_ms": self.latency.summary().as_dict(),
            "by_action_code": dict(sorted(self.by_action_code.items())),
            "timeouts": self.timeouts,
            "errors": self.errors,
            "unmatched": self.unmatched,
            "connections_failed": self.connections_failed,
            "reconnects": self.reconnects,
        }

    def wire_form(self) -> dict[str, Any]:
        """What a worker process sends back to the parent (histogram included)."""
        data = self.as_dict()
        data["histogram"] = self.latency.to_dict()
        data["duration_s"] = self.duration_s
        return data

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> LoadResult:
        return cls(
            duration_s=float(data["duration_s"]),
            sent=int(data["sent"]),
            answered=int(data["answered"]),
            timeouts=int(data["timeouts"]),
            errors=int(data["errors"]),
            unmatched=int(data["unmatched"]),
            by_action_code={str(k): int(v) for k, v in data["by_action_code"].items()},
            latency=LatencyHistogram.from_dict(data["histogram"]),
            connections_failed=int(data["connections_failed"]),
            reconnects=int(data.get("reconnects", 0)),
        )


def load_mix(path: str | Path) -> tuple[MixEntry, ...]:
    """Read a mix file: `[[mix]]` tables with template, weight, pan(s), amount."""
    root = Table(load_toml(path), "", str(path))
    entries = []
    for t in root.tables("mix"):
        pans = t.texts("pan") or (TEST_PAN,)
        amount = t.raw("amount", 1000)
        if isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0:
            low = high = amount
        elif (
            isinstance(amount, list)
            and len(amount) == 2
            and all(isinstance(a, int) and not isinstance(a, bool) for a in amount)
            and 0 <= amount[0] <= amount[1]
        ):
            low, high = amount
        else:
            raise t.error("amount", "must be minor units or [low, high]")
        entries.append(
            MixEntry(
                template=t.text("template", "purchase", MIX_TEMPLATES),
                weight=t.number("weight", 1.0),
                pans=pans,
                amount_min=low,
                amount_max=high,
            )
        )
        t.done()
    root.done()
    if not entries or sum(e.weight for e in entries) <= 0:
        raise SimConfigError("mix", "needs at least one entry with a positive weight", str(path))
    templates = {e.template for e in entries}
    if "reversal" in templates and "purchase" not in templates:
        raise SimConfigError("mix", "a reversal reverses a purchase: add a purchase", str(path))
    return tuple(entries)


class _AnswerScanner:
    """Field 11 and 39 of an answer without decoding the rest.

    Walks the bitmap and skips each field by its spec (fixed or LL/LLL length,
    ASCII or BCD prefix, nibble counts), so reading an answer costs a few
    microseconds instead of a full decode; anything it cannot follow falls back
    to the codec's decode.
    """

    def __init__(self, wire: WireFormat) -> None:
        self.dialect = wire.dialect
        spec = wire.dialect.spec
        self.mti_len = 2 if spec["t"]["data_enc"] == "b" else 4
        self.hex_bitmap = spec["p"]["data_enc"] != "b"
        self.fields: list[tuple[int, str, int, bool, bool]] = [(0, "", 0, False, False)]
        for n in range(1, 129):
            f = spec.get(str(n))
            if f is None or n == 1:
                self.fields.append((0, "", 0, False, False))
                continue
            self.fields.append(
                (
                    int(f["len_type"]),
                    str(f["len_enc"]),
                    int(f["max_len"]),
                    f.get("len_count") == "nibbles",
                    f["data_enc"] == "b",
                )
            )

    def scan(self, payload: bytes) -> tuple[str | None, str | None]:
        """(STAN, action code) of an answer."""
        try:
            return self._scan(payload)
        except (ValueError, IndexError):
            fields = decode(self.dialect, payload).fields
            return fields.get("11"), fields.get("39")

    def _scan(self, data: bytes) -> tuple[str | None, str | None]:
        idx = self.mti_len
        if self.hex_bitmap:
            bitmap = int(data[idx : idx + 16], 16)
            idx += 16
        else:
            bitmap = int.from_bytes(data[idx : idx + 8], "big")
            idx += 8
        if bitmap >> 63:
            idx += 16 if self.hex_bitmap else 8  # the secondary bitmap: fields 65+ not needed
        stan: str | None = None
        code: str | None = None
        for n in range(2, 40):
            if not (bitmap >> (64 - n)) & 1:
                continue
            len_type, len_enc, max_len, nibbles, binary = self.fields[n]
            if len_type:
                prefix = data[idx : idx + len_type]
                count = int(prefix.hex()) if len_enc == "bcd" else int(prefix)
                idx += len_type
            else:
                count = max_len
            size = (count + 1) // 2 if nibbles else count
            if n == 11:
                body = data[idx : idx + size]
                stan = body.hex()[-6:] if binary else body.decode("ascii")
            elif n == 39:
                code = data[idx : idx + size].decode("ascii")
                return stan, code
            idx += size
            if idx > len(data):
                raise ValueError("truncated")
        return stan, code


class _Template:
    """A request encoded once, with the byte ranges of its STAN and amount."""

    def __init__(self, wire: WireFormat, build_with: Callable[[str, int], Message]) -> None:
        dialect = wire.dialect
        self.wire = wire
        low = encode(dialect, build_with("000000", 0))
        high = encode(dialect, build_with("999999", 999_999_999_999))
        self.body = bytearray(low)
        self.stan_at = self._span(low, high, first=True)
        self.amount_at = (
            self._span(low, high, first=False) if self._has_amount(build_with) else None
        )
        self.bcd = dialect.name == "iso87bcd"
        self.mac_len = 0

    @staticmethod
    def _has_amount(build_with: Callable[[str, int], Message]) -> bool:
        return "4" in build_with("000000", 0).fields

    @staticmethod
    def _span(low: bytes, high: bytes, first: bool) -> slice:
        """The first (STAN) or second (amount) run of bytes that differ."""
        runs: list[slice] = []
        i = 0
        n = len(low)
        while i < n:
            if low[i] != high[i]:
                j = i
                while j < n and low[j] != high[j]:
                    j += 1
                runs.append(slice(i, j))
                i = j
            else:
                i += 1
        # Field 4 precedes field 11 in the message: amount first, STAN after.
        if len(runs) == 1:
            return runs[0]
        return runs[1] if first else runs[0]

    def _digits(self, value: int, width: int) -> bytes:
        if self.bcd:
            return bytes.fromhex(f"{value:0{width * 2}d}")
        return b"%0*d" % (width, value)

    def payload(self, stan: int, amount: int, mac: Callable[[bytes], bytes] | None) -> bytes:
        body = self.body
        at = self.stan_at
        body[at] = self._digits(stan, at.stop - at.start)
        if self.amount_at is not None:
            at = self.amount_at
            body[at] = self._digits(amount, at.stop - at.start)
        if mac is None:
            return bytes(body)
        return bytes(body) + mac(bytes(body))


def _mac_template(wire: WireFormat, build_with: Callable[[str, int], Message]) -> _Template:
    """Template whose body ends before the 8 MAC bytes (which are appended per request)."""
    template = _Template(wire, build_with)
    placeholder = encode_with_mac(wire.dialect, build_with("000000", 0), lambda data: bytes(8))
    template.body = bytearray(placeholder[:-8])
    return template


class _Terminal:
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
        now = self.now = time.time()
        self.templates: list[tuple[_Template | None, MixEntry, TerminalIdentity]] = []
        self.weights: list[float] = []
        header = {"2b": 2, "4a": 4}.get(self.wire.framing.header, 0)
        self.tpdu = self.wire.tpdu
        self.header = header
        # purchases in flight (STAN -> who, amount) and approved ones a `reversal`
        # in the mix may reverse; each is reversed at most once
        self.purchases: dict[int, tuple[TerminalIdentity, int]] = {}
        self.reversible: collections.deque[tuple[int, TerminalIdentity, int]] = collections.deque(
            maxlen=_REVERSIBLE_KEPT
        )
        for entry in options.mix:
            for pan in entry.pans:
                who = TerminalIdentity(
                    terminal_id=terminal_id,
                    merchant_id=options.merchant_id,
                    family=self.wire.family,
                    pan=pan,
                )
                if entry.template == "reversal":
                    # built per request: it refers to a purchase this terminal made
                    self.templates.append((None, entry, who))
                    self.weights.append(entry.weight / len(entry.pans))
                    continue

                def build_with(
                    stan: str, amount: int, _who: Any = who, _t: str = entry.template
                ) -> Message:
                    who_now = attrs.evolve(_who, amount=amount)
                    return build(_t, who_now, PROFILES["indoor"], stan, now=now)

                make = _mac_template if self.mac is not None else _Template
                self.templates.append((make(self.wire, build_with), entry, who))
                self.weights.append(entry.weight / len(entry.pans))
        self._fallback: tuple[_Template, MixEntry, TerminalIdentity] | None = next(
            ((t, e, w) for t, e, w in self.templates if t is not None and e.template == "purchase"),
            None,
        )

    def next_frame(self) -> tuple[int, bytes]:
        self.stan = self.stan % 999_999 + 1
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
            self.purchases[self.stan] = (who, amount)
        return self.stan, encode_frame(self.wire.framing, payload, self.tpdu)

    def _reversal_frame(self, original_stan: int, who: TerminalIdentity, amount: int) -> bytes:
        """A 1420/0400 of an approved purchase of this terminal's (encoded per request:
        field 56/90 names the original)."""
        profile = PROFILES["indoor"]
        who = attrs.evolve(who, amount=amount)
        original = build("purchase", who, profile, f"{original_stan:06d}", now=self.now)
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
        scan = _AnswerScanner(self.wire).scan
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


async def run_load(
    options: LoadOptions,
    *,
    progress: Callable[[LoadResult, float], None] | None = None,
) -> LoadResult:
    """Drive the load for `duration_s`; returns counts and latencies."""
    result = LoadResult()
    rng = random.Random(options.seed)
    ids = options.terminal_ids()
    n = len(ids)
    interval: float | None = None
    slots = 1
    if options.rate is not None:
        interval = n / options.rate if options.rate > 0 else math.inf
    else:
        concurrency = options.concurrency or n
        slots = max(1, math.ceil(concurrency / n))
    terminals = [_Terminal(tid, options, result, random.Random(rng.random())) for tid in ids]
    started = time.perf_counter()
    deadline = trio.current_time() + options.duration_s
    async with trio.open_nursery() as nursery:
        if progress is not None:
            nursery.start_soon(_report, progress, result, started)
        async with trio.open_nursery() as drivers:
            for terminal in terminals:
                drivers.start_soon(terminal.run, deadline, slots, interval)
        nursery.cancel_scope.cancel()
    result.duration_s = min(time.perf_counter() - started, options.duration_s) or 1e-9
    return result


async def _report(
    progress: Callable[[LoadResult, float], None], result: LoadResult, started: float
) -> None:
    while True:
        await trio.sleep(0.25)
        progress(result, time.perf_counter() - started)


# -- several processes ----------------------------------------------------------------------


def _share(options: LoadOptions, index: int, processes: int) -> LoadOptions:
    """Process `index`'s slice of terminals, rate and concurrency."""
    per = options.terminals // processes + (1 if index < options.terminals % processes else 0)
    first = options.first_terminal + sum(
        options.terminals // processes + (1 if i < options.terminals % processes else 0)
        for i in range(index)
    )
    rate = None if options.rate is None else options.rate * per / options.terminals
    concurrency = None
    if options.concurrency is not None:
        concurrency = max(1, round(options.concurrency * per / options.terminals))
    seed = None if options.seed is None else options.seed + index
    return attrs.evolve(
        options,
        terminals=per,
        first_terminal=first,
        rate=rate,
        concurrency=concurrency,
        seed=seed,
        macs=None,
    )


def _worker(
    spec: dict[str, Any], conn: multiprocessing.connection.Connection, counters: Any, index: int
) -> None:
    options = options_from_spec(spec)

    def progress(result: LoadResult, _: float) -> None:
        counters[index * 3] = result.sent
        counters[index * 3 + 1] = result.answered
        counters[index * 3 + 2] = result.latency.percentile_ms(99.0)

    result = trio.run(lambda: run_load(options, progress=progress))
    conn.send(json.dumps(result.wire_form()))
    conn.close()


def options_to_spec(options: LoadOptions, mac_spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A picklable description of the options (a worker rebuilds keys from mac_spec)."""
    wire = options.wire
    return {
        "host": options.host,
        "port": options.port,
        "dialect": wire.dialect.name,
        "bitmap": wire.dialect.bitmap,
        "header": wire.framing.header,
        "tpdu": wire.tpdu.hex() if wire.tpdu else None,
        "max_frame": wire.framing.max_frame,
        "terminals": options.terminals,
        "first_terminal": options.first_terminal,
        "duration_s": options.duration_s,
        "rate": options.rate,
        "concurrency": options.concurrency,
        "mix": [attrs.asdict(m) for m in options.mix],
        "timeout_s": options.timeout_s,
        "terminal_prefix": options.terminal_prefix,
        "merchant_id": options.merchant_id,
        "seed": options.seed,
        "reconnect": options.reconnect,
        "mac": dict(mac_spec) if mac_spec else None,
    }


def options_from_spec(spec: Mapping[str, Any]) -> LoadOptions:
    tpdu = bytes.fromhex(spec["tpdu"]) if spec["tpdu"] else False
    wire = wire_format(spec["dialect"], spec["bitmap"], spec["header"], tpdu, spec["max_frame"])
    options = LoadOptions(
        host=spec["host"],
        port=spec["port"],
        wire=wire,
        terminals=spec["terminals"],
        first_terminal=spec["first_terminal"],
        duration_s=spec["duration_s"],
        rate=spec["rate"],
        concurrency=spec["concurrency"],
        mix=tuple(
            MixEntry(m["template"], m["weight"], tuple(m["pans"]), m["amount_min"], m["amount_max"])
            for m in spec["mix"]
        ),
        timeout_s=spec["timeout_s"],
        terminal_prefix=spec["terminal_prefix"],
        merchant_id=spec["merchant_id"],
        seed=spec["seed"],
        reconnect=bool(spec.get("reconnect", False)),
    )
    if spec.get("mac"):
        from .loadkeys import macs_for

        options = attrs.evolve(options, macs=macs_for(spec["mac"], options.terminal_ids()))
    return options


def run_load_processes(
    options: LoadOptions,
    processes: int,
    mac_spec: Mapping[str, Any] | None = None,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> LoadResult:
    """Run the load in `processes` worker processes and merge their results.

    `progress(sent, answered, worst p99 ms, elapsed)` is called about four times
    a second from the parent.
    """
    processes = max(1, min(processes, options.terminals))
    ctx = multiprocessing.get_context("spawn")
    counters = ctx.Array("d", 3 * processes, lock=False)
    workers = []
    for index in range(processes):
        spec = options_to_spec(_share(options, index, processes), mac_spec)
        parent, child = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_worker, args=(spec, child, counters, index), daemon=True)
        process.start()
        child.close()
        workers.append((process, parent))
    started = time.perf_counter()
    merged = LoadResult()
    try:
        pending = {id(p): (p, c) for p, c in workers}
        while pending:
            ready = multiprocessing.connection.wait([c for _, c in pending.values()], timeout=0.25)
            for conn in ready:
                for key, (process, c) in list(pending.items()):
                    if c is conn:
                        try:
                            merged.merge(LoadResult.from_wire(json.loads(c.recv())))
                        except EOFError:
                            merged.errors += 1  # the worker died without a result
                        process.join()
                        del pending[key]
            if progress is not None:
                sent = int(sum(counters[i * 3] for i in range(processes)))
                answered = int(sum(counters[i * 3 + 1] for i in range(processes)))
                p99 = max(counters[i * 3 + 2] for i in range(processes))
                progress(sent, answered, p99, time.perf_counter() - started)
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.terminate()
                process.join()
    return merged
