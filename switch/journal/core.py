"""The trio side of the journal: group commit through one writer task.

Callers ``await journal.write(...)`` (or a helper such as ``record_received``)
and get control back only when the batch holding their write is committed:
nothing is acknowledged before it is durable. The writer task takes everything
queued, runs it as ONE database transaction in a worker thread, then wakes every
waiter — many transactions per fsync. The queue is bounded (``max_pending``): when
the disk cannot keep up, writers wait instead of memory growing.

If a caller is cancelled while waiting, its write may still be committed (it
cannot be taken back from a batch in flight); callers treat a cancelled write as
"unknown" and read the journal when it matters (recovery does).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal.backend import JournalBackend, WriteOutcome
from forecourt.switch.journal.model import (
    Event,
    JournalClosed,
    JournalError,
    JournalRow,
    SafItem,
    check_changes,
    check_pan_free,
    check_row,
)
from forecourt.switch.journal.opening import open_backend
from forecourt.switch.journal.reads import JournalReads
from forecourt.switch.journal.sealing import SafSealer
from forecourt.switch.journal.writes import (
    AddEvent,
    ClaimSaf,
    CloseShift,
    CompleteSaf,
    EnqueueSaf,
    FlagSaf,
    InsertTransaction,
    OpenShift,
    RetrySaf,
    UpdateTransaction,
    WriteOp,
)

# one encoder for every event detail: json.dumps with options builds a new one per call
_detail_json = json.JSONEncoder(sort_keys=True, default=str).encode
_SWITCH_INTERVAL_S = 0.0005


@attrs.define(eq=False)
class _PendingWrite:
    ops: Sequence[WriteOp]
    done: trio.Event = attrs.field(factory=trio.Event)
    outcome: WriteOutcome | None = None


class Journal(JournalReads):
    """The switch's journal; made by ``open_journal``. All methods are trio-async
    (the reads are inherited from ``JournalReads``)."""

    def __init__(
        self,
        backend: JournalBackend,
        *,
        node: str,
        saf_key: bytes | None = None,
        max_pending: int = 4096,
        max_batch: int = 1024,
        readers: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(readers)
        self.backend = backend
        self.node = node
        self._sealer = SafSealer(saf_key) if saf_key is not None else None
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[_PendingWrite](max_pending)
        self._clock = clock
        self.batches = 0  # batches run by the writer (== commits when none failed)
        # told (writes in the batch, seconds in the database) after each batch
        self.on_batch: Callable[[int, float], None] | None = None
        # why the last group commit failed (cleared by the next that succeeds): /healthz
        self.commit_failure: str | None = None

    @property
    def commits(self) -> int:
        """Database commits so far: with group commit, far fewer than writes."""
        return self.backend.commits

    # ------------------------------------------------------------------ writer

    async def write(self, *ops: WriteOp) -> list[object]:
        """Queue operations as one all-or-nothing write; return once committed.

        Returns one result per operation (the SAF id for ``EnqueueSaf``, rows for
        ``ClaimSaf``, else None). Raises JournalError if the write failed or was
        rolled back with its batch, JournalClosed if the journal closed first.
        Waits (back-pressure) while ``max_pending`` writes are queued.
        """
        pending = _PendingWrite(ops)
        try:
            try:
                # no scheduler round trip when the queue has room (the usual case);
                # the wait below is the checkpoint
                self._send.send_nowait(pending)
            except trio.WouldBlock:
                await self._send.send(pending)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise JournalClosed("journal is closed") from None
        await pending.done.wait()
        outcome = pending.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome

    async def run_writer(self) -> None:
        """The writer task: batch, commit in a thread, wake. Ends when the journal closes."""
        batch: list[_PendingWrite] = []
        try:
            async for first in self._receive:
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                started = time.perf_counter()
                try:
                    outcomes = await trio.to_thread.run_sync(
                        self.backend.run_batch, [p.ops for p in batch], abandon_on_cancel=False
                    )
                except Exception as exc:
                    error = JournalError(
                        f"journal commit failed; nothing in the batch is durable: "
                        f"{type(exc).__name__}: {exc}"
                    )
                    outcomes = [error] * len(batch)
                    self.commit_failure = type(exc).__name__
                else:
                    self.commit_failure = None
                self.batches += 1
                if self.on_batch is not None:
                    self.on_batch(len(batch), time.perf_counter() - started)
                for p, outcome in zip(batch, outcomes, strict=True):
                    p.outcome = outcome
                    p.done.set()
                batch = []
        finally:
            # Cancelled or closed: nobody waits forever for a write that never ran.
            closed = JournalClosed("journal closed before the write was committed")
            for p in batch:
                if not p.done.is_set():
                    p.outcome = closed
                    p.done.set()
            while True:
                try:
                    p = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                p.outcome = closed
                p.done.set()
            self._receive.close()  # later writers get JournalClosed at once

    async def aclose(self) -> None:
        """Stop taking writes; the writer commits what is queued, then ends."""
        await self._send.aclose()

    # ------------------------------------------------------------------ hot path

    async def record_received(self, row: JournalRow, detail: str | None = None) -> None:
        """Insert a new transaction (state received, or forwarded with route and
        acquirer STAN already set — one durable write before going upstream)."""
        check_row(row)
        check_pan_free("detail", detail)
        at = row.forwarded_at or row.received_at
        await self.write(
            InsertTransaction(row), AddEvent(Event(row.txn_id, at, str(row.state), detail))
        )

    async def update(self, txn_id: str, /, **changes: Any) -> None:
        """Change columns of a transaction; a ``state`` change also logs an event."""
        await self.write(*self.update_ops(txn_id, **changes))

    def update_ops(self, txn_id: str, /, **changes: Any) -> list[WriteOp]:
        """The operations of ``update``, to combine with others in one ``write``
        (e.g. state=timed_out together with ``saf_enqueue_op`` of the reversal)."""
        check_changes(changes)
        ops: list[WriteOp] = [UpdateTransaction(txn_id, changes)]
        if "state" in changes:
            detail = {
                k: v for k, v in changes.items() if k not in ("state", "response_raw", "flags")
            }
            ops.append(
                AddEvent(
                    Event(
                        txn_id,
                        self._clock(),
                        str(changes["state"]),
                        _detail_json(detail) if detail else None,
                    )
                )
            )
        return ops

    async def add_event(self, txn_id: str, kind: str, detail: str | None = None) -> None:
        check_pan_free("detail", detail)
        await self.write(AddEvent(Event(txn_id, self._clock(), kind, detail)))

    # ------------------------------------------------------------------ SAF

    def saf_enqueue_op(
        self,
        txn_id: str,
        link: str,
        mti: str,
        payload: bytes,
        *,
        now: float | None = None,
        next_attempt_at: float | None = None,
    ) -> EnqueueSaf:
        """The operation of ``saf_enqueue`` (payload sealed here), for combined writes."""
        if self._sealer is None:
            raise JournalError("no SAF data key: open the journal with saf_key=...")
        at = self._clock() if now is None else now
        return EnqueueSaf(
            txn_id=txn_id,
            link=link,
            mti=mti,
            sealed_payload=self._sealer.seal(payload, txn_id, link, mti),
            created_at=at,
            next_attempt_at=at if next_attempt_at is None else next_attempt_at,
        )

    async def saf_enqueue(
        self,
        txn_id: str,
        link: str,
        mti: str,
        payload: bytes,
        *,
        now: float | None = None,
        next_attempt_at: float | None = None,
    ) -> int:
        """Store a reversal/advice to deliver to ``link``; durable on return. Returns its id."""
        op = self.saf_enqueue_op(
            txn_id, link, mti, payload, now=now, next_attempt_at=next_attempt_at
        )
        (item_id,) = await self.write(op)
        assert isinstance(item_id, int)
        return item_id

    async def saf_claim(
        self,
        node: str | None = None,
        limit: int = 10,
        lease_s: float = 60.0,
        now: float | None = None,
        *,
        link: str | None = None,
    ) -> list[SafItem]:
        """Take up to ``limit`` due items (or items whose lease ran out) for this node.

        Each claim counts an attempt; send with the repeat MTI when attempts > 1.
        Then call ``saf_done``, ``saf_retry`` or ``saf_flag``. An item whose payload
        cannot be opened (wrong data key) is flagged, not returned.
        """
        at = self._clock() if now is None else now
        (rows,) = await self.write(ClaimSaf(node or self.node, limit, lease_s, at, link))
        assert isinstance(rows, list)
        items: list[SafItem] = []
        unreadable: list[int] = []
        for item_id, txn_id, link_, mti, sealed, attempts, created_at, last_error in rows:
            try:
                if self._sealer is None:
                    raise JournalError("no SAF data key")
                payload = self._sealer.open(sealed, txn_id, link_, mti)
            except JournalError:
                unreadable.append(item_id)
                continue
            items.append(
                SafItem(item_id, txn_id, link_, mti, payload, attempts, created_at, last_error)
            )
        if unreadable:
            await self.write(
                *(FlagSaf(i, "payload cannot be opened with this data key") for i in unreadable)
            )
        return items

    async def saf_done(self, item_id: int) -> None:
        """The host acknowledged the item; its payload is erased."""
        await self.write(CompleteSaf(item_id))

    async def saf_retry(self, item_id: int, error: str, next_at: float) -> None:
        check_pan_free("last_error", error)
        await self.write(RetrySaf(item_id, error, next_at))

    async def saf_flag(self, item_id: int, error: str | None = None) -> None:
        """Give up on an item (max attempts): it stays for an operator to see."""
        check_pan_free("last_error", error)
        await self.write(FlagSaf(item_id, error))

    # ------------------------------------------------------------------ shifts

    async def shift_open(self, terminal_id: str, shift_id: str, at: float | None = None) -> bool:
        """Open ``shift_id`` unless the terminal has a shift open (at any node): True
        when this opened it; otherwise ``open_shift`` names the one that is open."""
        at_ = self._clock() if at is None else at
        (opened,) = await self.write(OpenShift(terminal_id, shift_id, at_))
        return bool(opened)

    async def shift_close(
        self,
        terminal_id: str,
        shift_id: str,
        totals: dict[str, Any],
        in_balance: bool,
        at: float | None = None,
    ) -> None:
        check_pan_free("totals", totals)
        await self.write(
            CloseShift(
                terminal_id, shift_id, self._clock() if at is None else at, totals, in_balance
            )
        )


@asynccontextmanager
async def open_journal(
    config: SwitchConfig | Path | str,
    *,
    saf_key: bytes | None = None,
    node: str | None = None,
    max_pending: int | None = None,
    max_batch: int | None = None,
    backend: JournalBackend | None = None,
) -> AsyncIterator[Journal]:
    """Open (and migrate) the journal and run its writer task for the block's duration.

    ``config`` is the switch configuration, or a SQLite file path. ``saf_key`` is
    the data key that seals SAF payloads (required to use SAF). On leaving the
    block, queued writes are committed, then the connections close.
    """
    # The writer thread gives up the GIL in every database call and must get it back
    # from a busy event loop: at CPython's default 5 ms switch interval it waits up
    # to that long each time, and every commit waits with it (measured: +40..60 %
    # throughput at 0.5 ms, docs/performance.md). Only ever lowered.
    if sys.getswitchinterval() > _SWITCH_INTERVAL_S:
        sys.setswitchinterval(_SWITCH_INTERVAL_S)
    if backend is None:
        backend = await trio.to_thread.run_sync(open_backend, config)
    cfg = config if isinstance(config, SwitchConfig) else None
    journal = Journal(
        backend,
        node=node or (cfg.node if cfg else "local"),
        saf_key=saf_key,
        max_pending=max_pending or (cfg.journal.max_pending if cfg else 4096),
        max_batch=max_batch or (cfg.journal.max_batch if cfg else 1024),
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(journal.run_writer)
            try:
                yield journal
            finally:
                await journal.aclose()
    finally:
        journal._close_readers()
        backend.close()
