"""Benchmark: reconcile one business day of 500,000 journal rows against a 500,000-line
settlement file, with a few hundred planted differences of every class.

A SQLite journal in a temporary directory gets the day's rows (route "bank", one
RRN each); the bank's CSV settlement file is written line by line with the planted
differences: lines the journal lacks (party only), journal rows the file lacks
(switch only), amounts off by one cent, lines sent twice (duplicate) and sales the
switch reversed. Then `ImportFile` (streamed, one transaction) and `MatchDay` (SQL
joins) run as `forecourt recon import` and `run` do. Prints one JSON object: the
seconds of each phase, the process's peak RSS before and after them, and whether
every planted difference was found in its class (and nothing else was).

    .venv/bin/python bench/recon_day.py
    .venv/bin/python bench/recon_day.py --rows 100000 --planted 50
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import sqlite3
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import trio
from forecourt.switch.business_day import day_bounds
from forecourt.switch.config import parse_config
from forecourt.switch.journal import InsertTransaction, JournalRow, open_backend, open_journal
from forecourt.switch.recon import ImportFile, MatchDay
from forecourt.switch.recon.parse import file_sha256

DAY = dt.date(2026, 12, 1)
CLASSES = ("party_only", "switch_only", "amount_differs", "duplicate", "reversed_settled")
CONFIG = """
node = "bench"
data_dir = "{data_dir}"
[[acquirers]]
name = "bank"
host = "127.0.0.1"
port = 9
[[recon.parties]]
name = "bank"
kind = "acquirer"
[recon.parties.columns]
reference = "rrn"
amount = "amount"
currency = "currency"
datetime = "settled_at"
type = "type"
"""


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _plan(rows: int, planted: int, rng: random.Random) -> dict[int, str]:
    """Row number -> the class planted on it (party_only rows exist only in the file)."""
    chosen = rng.sample(range(rows), planted * len(CLASSES))
    return {n: CLASSES[i // planted] for i, n in enumerate(chosen)}


def _setup(where: Path, rows: int, plan: dict[int, str], rng: random.Random) -> Path:
    """The journal's day and the bank's file, both written in chunks (memory stays flat)."""
    start, _ = day_bounds(DAY, parse_config(_doc(where)).business_day.cutover)
    backend = open_backend(where / "journal.db", "normal")
    path = where / "settlement.csv"
    with path.open("w", encoding="ascii") as out:
        out.write("rrn,amount,currency,settled_at,type\n")
        chunk: list[InsertTransaction] = []
        for n in range(rows):
            rrn = f"{n:012d}"
            amount = rng.randrange(500, 20_000)
            at = start + n * (86_000.0 / rows)
            cls = plan.get(n)
            if cls != "party_only":
                state = "reversed" if cls == "reversed_settled" else "approved"
                chunk.append(InsertTransaction(_row(n, rrn, amount, at, state)))
            if cls != "switch_only":
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at + 30))
                billed = amount + 1 if cls == "amount_differs" else amount
                line = f"{rrn},{billed},978,{when},sale\n"
                out.write(line * (2 if cls == "duplicate" else 1))
            if len(chunk) >= 10_000:
                backend.run_batch([chunk])
                chunk = []
        backend.run_batch([chunk])
    backend.close()
    return path


def _row(n: int, rrn: str, amount: int, at: float, state: str) -> JournalRow:
    return JournalRow(
        txn_id=f"B{n:025X}", node="bench", terminal_id=f"T{n % 500:07d}", stan=f"{n % 999_999:06d}",
        mti_class="2", request_mti="1200", received_at=at, state=state, amount=amount,
        approved_amount=amount, currency="978", masked_pan="476173******0010",
        processing_code="000000", route="bank", rrn=rrn, auth_code=f"{n % 999_999:06d}",
        action_code="000",
    )  # fmt: skip


def _doc(where: Path) -> dict[str, Any]:
    return tomllib.loads(CONFIG.format(data_dir=where))


async def _reconcile(where: Path, path: Path) -> dict[str, Any]:
    cfg = parse_config(_doc(where), base_dir=where)
    party = cfg.recon.party("bank")
    assert party is not None
    start, end = day_bounds(DAY, cfg.business_day.cutover)
    async with open_journal(cfg) as journal:
        t0 = time.perf_counter()
        [imported] = await journal.write(ImportFile(party, path, file_sha256(path), time.time()))
        t1 = time.perf_counter()
        [run] = await journal.write(MatchDay(party, DAY.isoformat(), start, end, time.time()))
        t2 = time.perf_counter()
        [again] = await journal.write(MatchDay(party, DAY.isoformat(), start, end, time.time()))
        t3 = time.perf_counter()
    return {
        "import_s": round(t1 - t0, 2),
        "match_s": round(t2 - t1, 2),
        "rerun_s": round(t3 - t2, 2),
        "lines": imported.lines,  # type: ignore[attr-defined]
        "counts": run.counts,  # type: ignore[attr-defined]
        "rerun_same": again.counts == run.counts and again.new_items == 0,  # type: ignore[attr-defined]
        "items": run.new_items,  # type: ignore[attr-defined]
    }


def _found(where: Path, plan: dict[int, str]) -> dict[str, bool]:
    with sqlite3.connect(where / "journal.db") as db:
        got = {
            (str(c), str(r))
            for c, r in db.execute(
                "SELECT class, reference FROM recon_results WHERE class <> 'matched'"
            )
        }
    want = {(cls, f"{n:012d}") for n, cls in plan.items()}
    return {"every_planted_found": want <= got, "nothing_else_found": got <= want}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=500_000, help="journal rows and file lines")
    ap.add_argument("--planted", type=int, default=60, help="planted differences per class")
    ap.add_argument("--seed", type=int, default=19, help="random seed")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    plan = _plan(args.rows, args.planted, rng)
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp:
        where = Path(tmp)
        t0 = time.perf_counter()
        path = _setup(where, args.rows, plan, rng)
        setup_s = time.perf_counter() - t0
        before = _peak_mib()
        result = trio.run(_reconcile, where, path)
        after = _peak_mib()
        found = _found(where, plan)
        size = path.stat().st_size
    print(
        json.dumps(
            {
                "rows": args.rows,
                "planted": args.planted * len(CLASSES),
                "file_mib": round(size / 2**20, 1),
                "setup_s": round(setup_s, 1),
                **result,
                "peak_rss_mib_before": round(before, 1),
                "peak_rss_mib_after": round(after, 1),
                **found,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
