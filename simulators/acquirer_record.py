"""What reached the acquirer simulator: records with the PAN masked, and the counts.

Tests assert on these, so they are kept in memory (trimmed to `keep` records;
the counts cover everything) and optionally appended to a JSON lines file in
batches, never per message.
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path
from typing import IO

import attrs
from forecourt.codecs.message import Message

from .wire import masked

__all__ = ["ReceivedLog", "ReceivedRecord"]


@attrs.frozen
class ReceivedRecord:
    """One message that reached the host and what it answered; the PAN is masked."""

    time: float
    connection: int
    mti: str | None
    stan: str | None
    masked_pan: str | None
    amount: str | None
    processing_code: str | None
    terminal_id: str | None
    action_code: str | None  # None: not answered (drop, close, undecodable)
    delivery: str  # answer, twice, late, drop, close, undecodable
    rule: str | None = None
    mac: str | None = None  # "ok", "bad", "absent" when a ZAK is configured

    def as_json(self) -> str:
        return json.dumps(attrs.asdict(self), separators=(",", ":"))


class ReceivedLog:
    """The records (newest last, at most about `keep`), counts by MTI and action code."""

    def __init__(self, keep: int, file: Path | None = None) -> None:
        self.records: list[ReceivedRecord] = []
        self.total = 0
        self.by_mti: collections.Counter[str] = collections.Counter()
        self.by_code: collections.Counter[str] = collections.Counter()
        self._keep = keep
        self._path = file
        self._file: IO[str] | None = None
        self._pending_lines: list[str] = []

    # -- the JSON lines file ------------------------------------------------------------

    @property
    def writes_file(self) -> bool:
        return self._file is not None

    def open(self) -> None:
        if self._path is not None:
            # what the host received (PANs masked) is for the tester alone: 0600
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")

    def flush(self) -> None:
        if self._file is not None and self._pending_lines:
            self._file.write("".join(self._pending_lines))
            self._file.flush()
            self._pending_lines = []

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- recording ----------------------------------------------------------------------

    def record(
        self,
        connection: int,
        request: Message,
        code: str | None,
        delivery: str,
        rule: str | None,
        mac_state: str | None,
    ) -> None:
        fields = request.fields
        self.add(
            ReceivedRecord(
                time=time.time(),
                connection=connection,
                mti=request.mti,
                stan=fields.get("11"),
                masked_pan=masked(fields.get("2")),
                amount=fields.get("4"),
                processing_code=fields.get("3"),
                terminal_id=fields.get("41"),
                action_code=code,
                delivery=delivery,
                rule=rule,
                mac=mac_state,
            )
        )

    def record_undecodable(
        self,
        connection: int,
        mti: str | None,
        stan: str | None,
        terminal_id: str | None,
        code: str | None,
    ) -> None:
        self.add(
            ReceivedRecord(
                time=time.time(),
                connection=connection,
                mti=mti,
                stan=stan,
                masked_pan=None,
                amount=None,
                processing_code=None,
                terminal_id=terminal_id,
                action_code=code,
                delivery="undecodable",
            )
        )

    def add(self, record: ReceivedRecord) -> None:
        self.total += 1
        self.by_mti[record.mti or "?"] += 1
        self.by_code[record.action_code or "none"] += 1
        records = self.records
        records.append(record)
        keep = self._keep
        if keep and len(records) > 2 * keep:
            del records[:-keep]
        if self._file is not None:
            self._pending_lines.append(record.as_json() + "\n")

    def count(
        self,
        mti: str | None = None,
        action_code: str | None = None,
        terminal_id: str | None = None,
        delivery: str | None = None,
    ) -> int:
        """Records kept that match every criterion given."""
        return sum(
            1
            for r in self.records
            if (mti is None or r.mti == mti)
            and (action_code is None or r.action_code == action_code)
            and (terminal_id is None or r.terminal_id == terminal_id)
            and (delivery is None or r.delivery == delivery)
        )
