"""Parameter downloads against a big set: what a publication, a first download (the
delta computed and cut into chunks) and a cached chunk cost.

Publishes ``--versions`` versions of a set with ``--blocked`` block-list entries (each
version blocks 1 % more cards and reprices the products) into a SQLite journal,
then times, through the journal as the switch runs them: the last publication, the
cold delta from version 0 and from the version before (read, diff, chunks), a
cached chunk, and the latest-version read a stale sign-on cache costs. Prints JSON.

    .venv/bin/python bench/params_download.py --blocked 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from forecourt.switch.config_params import ParamsConfig
from forecourt.switch.journal import open_journal
from forecourt.switch.params import ParamSet, ParamsLatest, ParamsPublish
from forecourt.switch.params.catalogue import ParamsCatalogue


def _set(version: int, blocked: int) -> ParamSet:
    records: dict[tuple[str, str], tuple[str, ...]] = {
        ("products", f"P{n}"): (f"Fuel {n}", "L", f"1.{version:03d}", "S") for n in range(20)
    }
    listed = blocked + blocked * version // 100
    for n in range(listed):
        records[("block_list", f"{700000 + n // 10000:06d}******{n % 10000:04d}")] = ("lost",)
    return ParamSet(records)


async def _run(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"blocked": args.blocked, "versions": args.versions}
    async with open_journal(path) as journal:
        publish_s = 0.0
        for version in range(1, args.versions + 1):
            started = time.perf_counter()
            await journal.write(
                ParamsPublish(_set(version, args.blocked), "bench", "", time.time())
            )
            publish_s = time.perf_counter() - started
        out["publish_last_ms"] = round(publish_s * 1000, 2)
        latest = args.versions
        for held, name in ((0, "whole_set"), (latest - 1, "last_delta")):
            catalogue = ParamsCatalogue(ParamsConfig(chunk_bytes=args.chunk_bytes))
            started = time.perf_counter()
            first = await catalogue.download(journal, held, 1, None)
            cold = time.perf_counter() - started
            timings = []
            for chunk in range(2, min(first.chunks, 50) + 1):
                started = time.perf_counter()
                await catalogue.download(journal, held, chunk, latest)
                timings.append(time.perf_counter() - started)
            out[name] = {
                "chunks": first.chunks,
                "cold_first_chunk_ms": round(cold * 1000, 2),
                "cached_chunk_median_ms": round(statistics.median(timings) * 1000, 3)
                if timings
                else None,
            }
        reads = []
        for _ in range(200):
            started = time.perf_counter()
            await journal.write(ParamsLatest())
            reads.append(time.perf_counter() - started)
        out["latest_version_read_median_ms"] = round(statistics.median(reads) * 1000, 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocked", type=int, default=20_000, help="block-list entries")
    parser.add_argument("--versions", type=int, default=5, help="versions published")
    parser.add_argument("--chunk-bytes", type=int, default=900, help="[params] chunk_bytes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = trio.run(_run, args, Path(tmp) / "journal.db")
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
