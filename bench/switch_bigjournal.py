"""Benchmark 6: pass-through B against a journal pre-filled with millions of transactions.

Fills a SQLite journal with ``--rows`` realistic transactions (default 10 million)
in a temporary directory outside the repository, then runs benchmark 1
(``bench/switch_passthrough.py``) twice: once with an empty journal and once with
a copy of the filled one (``--journal``), and reports B (through the switch) of
both and their ratio, plus how long the switch took to start on the big journal.

The fill: the journal is created with the switch's own schema (``SqliteJournal``
runs the migrations), the secondary indexes are dropped, the rows are inserted
with ``executemany`` in large transactions (``synchronous = OFF``, no rollback
journal), and the indexes are created again with the switch's own SQL, so the
file has exactly the switch's schema. Rows: time-ordered ULID-like ids over the
last 30 days, 2,000 terminals with their own STAN sequences, purchases (85 %),
pre-authorisations (10 %) and reversals (5 %), approved / declined / reversed /
timed-out states, masked PANs, answer bytes, two events per transaction (forwarded
and the outcome, as the switch writes them) and a day's worth of delivered SAF rows.

    .venv/bin/python bench/switch_bigjournal.py --rows 10000000
    .venv/bin/python bench/switch_bigjournal.py --fill-only --rows 200000   # fill rate
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _harness as h

_B32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(_B32, _CROCKFORD)
_PANS = (
    "476173******0010",
    "400000******0002",
    "510510******5100",
    "707700******0011",
    "676770******0045",
    "374245******0001",
)
_TERMINALS = 2_000
_SPAN_S = 30 * 86400.0


def _ulid(ms: int, rnd: random.Random) -> str:
    raw = ((ms & 0xFFFFFFFFFFFF) << 80 | rnd.getrandbits(80)).to_bytes(16, "big")
    return base64.b32encode(raw)[:26].translate(_TO_CROCKFORD).decode()


def _rows(count: int, seed: int = 7) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """(transaction row, its events) in time order."""
    rnd = random.Random(seed)
    start = time.time() - _SPAN_S
    step = _SPAN_S / max(1, count)
    stans = [rnd.randrange(1, 999_999) for _ in range(_TERMINALS)]
    answer = bytes.fromhex("31323130") + bytes(range(32, 120))  # ~90 bytes, like a 1210
    last_txn: list[str | None] = [None] * _TERMINALS
    for i in range(count):
        at = start + i * step
        txn_id = _ulid(int(at * 1000), rnd)
        t = rnd.randrange(_TERMINALS)
        stans[t] = stans[t] % 999_999 + 1
        stan = f"{stans[t]:06d}"
        roll = rnd.random()
        amount = rnd.randrange(500, 12_000)
        original = None
        if roll < 0.85:
            cls, req, resp = "2", "1200", "1210"
        elif roll < 0.95:
            cls, req, resp = "1", "1100", "1110"
        else:
            cls, req, resp = "4", "1420", "1430"
            original = last_txn[t]
        last_txn[t] = txn_id
        outcome = rnd.random()
        host_ms = round(rnd.uniform(20, 400), 3)
        switch_ms = round(rnd.uniform(1, 30), 3)
        if outcome < 0.93:
            state, code, approved = "approved", "000" if cls != "4" else "400", amount
        elif outcome < 0.98:
            state, code, approved = "declined", rnd.choice(("100", "116", "909")), None
        elif outcome < 0.995:
            state, code, approved = "reversed", "911", None
        else:
            state, code, approved = "timed_out", "911", None
        forwarded = at + 0.002
        answered = forwarded + host_ms / 1000
        row = (
            txn_id,
            "bench",
            f"T{t + 1:07d}",
            stan,
            cls,
            req,
            resp,
            state,
            code,
            amount,
            approved,
            "978",
            _PANS[i % len(_PANS)],
            "000000",
            "bank",
            f"{(i % 999_999) + 1:06d}",
            f"{rnd.randrange(10**11, 10**12)}",
            f"{rnd.randrange(100000, 999999)}" if approved else None,
            original,
            "20250101-060000",
            at,
            forwarded,
            answered,
            host_ms,
            switch_ms,
            answer,
            "",
        )
        # the switch's json.dumps(detail, sort_keys=True), written out for speed
        detail = (
            f'{{"action_code": "{code}", "answered_at": {answered!r}, "approved_amount": '
            f'{"null" if approved is None else approved}, "host_ms": {host_ms!r}, '
            f'"response_mti": "{resp}", "switch_ms": {switch_ms!r}}}'
        )
        yield row, [(txn_id, forwarded, "forwarded", "bank"), (txn_id, answered, state, detail)]


def fill(path: Path, count: int, batch: int = 200_000) -> dict[str, Any]:
    """A journal at `path` with the switch's schema and `count` transactions."""
    from forecourt.switch.journal.model import COLUMNS
    from forecourt.switch.journal.sqlite import SqliteJournal

    t0 = time.perf_counter()
    SqliteJournal(path, "full").close()  # the switch's schema (migrations)
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("PRAGMA temp_store = MEMORY")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    insert_txn = (
        f"INSERT INTO transactions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    )
    insert_event = "INSERT INTO events (txn_id, at, kind, detail) VALUES (?, ?, ?, ?)"
    insert_saf = (
        "INSERT INTO saf (txn_id, link, mti, payload, attempts, next_attempt_at, state, "
        "created_at) VALUES (?, 'bank', ?, x'', 1, ?, 'done', ?)"
    )
    day_start = time.time() - 86400.0
    txns: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    safs: list[tuple[Any, ...]] = []

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany(insert_txn, txns)
        conn.executemany(insert_event, events)
        if safs:
            conn.executemany(insert_saf, safs)
        conn.execute("COMMIT")
        txns.clear()
        events.clear()
        safs.clear()

    for row, evs in _rows(count):
        txns.append(row)
        events.extend(evs)
        if row[20] >= day_start and row[7] in ("reversed", "timed_out"):
            safs.append((row[0], "1420", row[20], row[20]))
        if len(txns) >= batch:
            flush()
    if txns:
        flush()
    t_rows = time.perf_counter()
    for _, sql in indexes:
        conn.execute(sql)
    t_idx = time.perf_counter()
    conn.execute("PRAGMA journal_mode = WAL")
    counts = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("transactions", "events", "saf")
    }
    conn.close()
    total = time.perf_counter() - t0
    return {
        "rows": count,
        "counts": counts,
        "insert_s": round(t_rows - t0, 1),
        "index_s": round(t_idx - t_rows, 1),
        "fill_s": round(total, 1),
        "rows_per_s": round(count / total),
        "file_mb": round(path.stat().st_size / 2**20),
    }


def _passthrough(args: argparse.Namespace, journal: Path | None) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("switch_passthrough.py")),
        "--duration",
        str(args.duration),
        "--rounds",
        str(args.rounds),
    ]
    if journal is not None:
        cmd += ["--journal", str(journal)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=h.ROOT).stdout
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--journal", type=Path, help="an already filled journal.db (no fill)")
    parser.add_argument("--keep", type=Path, help="write the filled journal here (not a tmp dir)")
    parser.add_argument("--fill-only", action="store_true", help="fill, report the rate, stop")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fc-bigjournal-") as tmp:
        filled: dict[str, Any] | None = None
        journal = args.journal
        if journal is None:
            journal = args.keep or Path(tmp) / "journal.db"
            journal.unlink(missing_ok=True)
            filled = fill(journal, args.rows)
        if args.fill_only:
            h.emit({"benchmark": "big_journal_fill", "fill": filled, "machine": h.machine()})
            return 0
        empty = _passthrough(args, None)
        big = _passthrough(args, journal)
    keys = (
        "B_throughput_per_s",
        "B_p50_ms",
        "B_p99_ms",
        "switch_cpu_us_per_approved",
        "switch_start_s",
        "switch_rss_mb",
    )
    b_empty, b_big = empty["B_throughput_per_s"], big["B_throughput_per_s"]
    h.emit(
        {
            "benchmark": "big_journal",
            "fill": filled,
            "journal": str(args.journal) if args.journal else None,
            "empty": {k: empty[k] for k in keys} | {"B_runs": _b_runs(empty)},
            "big": {k: big[k] for k in keys} | {"B_runs": _b_runs(big)},
            "ratio_big_over_empty": round(b_big / b_empty, 3) if b_empty else None,
            "target": 0.9,
            "machine": h.machine(),
        }
    )
    return 0


def _b_runs(data: dict[str, Any]) -> list[float]:
    return [float(r["throughput_per_s"]) for r in data["runs"]["B"]]


if __name__ == "__main__":
    sys.exit(main())
