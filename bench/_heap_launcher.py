"""Run ``forecourt`` with its heap watched, a record every few seconds.

Used by ``bench/switch_soak.py --heap MODE`` to tell a leak (memory in use that keeps
growing once the bounded windows are full) from memory the allocator keeps after it
was freed (RSS grows, memory in use flat):

- ``malloc``: glibc's own account (``mallinfo2``: bytes in use, bytes free but kept,
  mmapped), Python's small-object blocks alive, the collector's frozen count, RSS.
  Cheap enough to run at full rate.
- ``trim``: as ``malloc``, then ``malloc_trim(0)`` and RSS again: how much of RSS was
  free memory the allocator gave back when asked.
- ``young``: as ``malloc``, and at every 50th generation-0 collection what the young
  generation holds (object count, the most common types, the biggest containers by
  length): why a generation-0 collection costs what it does.
- ``trace``: tracemalloc (one frame): bytes alive per allocation line, sites of 4 KiB
  and more. Every allocation is slower and each record holds the GIL for seconds:
  for where memory is, not for speed.

    python bench/_heap_launcher.py OUT_DIR EVERY_S MODE -- serve --config switch.toml

Each record is ``OUT_DIR/heap-NNN.json``.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

MIN_BYTES = 4096


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2
_libc.malloc_trim.argtypes = [ctypes.c_size_t]


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _malloc() -> dict[str, float]:
    info = _libc.mallinfo2()
    return {
        "rss_mb": round(_rss_mb(), 1),
        "malloc_in_use_mb": round(info.uordblks / 1e6, 1),
        "malloc_free_kept_mb": round(info.fordblks / 1e6, 1),
        "malloc_mmapped_mb": round(info.hblkhd / 1e6, 1),
        "malloc_heap_mb": round(info.arena / 1e6, 1),
        "pymalloc_blocks": sys.getallocatedblocks(),
        "frozen": gc.get_freeze_count(),
    }


def _trace() -> dict[str, object]:
    snapshot = tracemalloc.take_snapshot()
    lines: dict[str, list[int]] = {}
    for stat in snapshot.statistics("lineno"):
        if stat.size >= MIN_BYTES:
            frame = stat.traceback[0]
            site = f"{frame.filename.rsplit('/site-packages/', 1)[-1]}:{frame.lineno}"
            lines[site] = [stat.size, stat.count]
    current, _peak = tracemalloc.get_traced_memory()
    return {"traced_mb": round(current / 1e6, 2), "lineno": lines}


class _YoungSampler:
    """A ``gc.callbacks`` entry: samples the young generation as a collection starts."""

    def __init__(self) -> None:
        self.calls = 0
        self.sizes: list[int] = []
        self.types: dict[str, int] = {}
        self.biggest: dict[str, int] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase != "start" or info.get("generation") != 0:
            return
        self.calls += 1
        if self.calls % 50:
            return
        young = gc.get_objects(0)
        self.sizes.append(len(young))
        for obj in young:
            name = type(obj).__name__
            self.types[name] = self.types.get(name, 0) + 1
            if isinstance(obj, (list, dict, set, tuple)) and len(obj) > 1000:
                self.biggest[name] = max(self.biggest.get(name, 0), len(obj))
        del young

    def report(self) -> dict[str, object]:
        sizes = sorted(self.sizes)
        top = sorted(self.types.items(), key=lambda kv: -kv[1])[:12]
        return {
            "gen0_collections": self.calls,
            "sampled": len(sizes),
            "young_objects_p50": sizes[len(sizes) // 2] if sizes else None,
            "young_objects_max": sizes[-1] if sizes else None,
            "young_types": dict(top),
            "young_big_containers": self.biggest,
        }


_YOUNG = _YoungSampler()


def _record_every(out: Path, every_s: float, mode: str) -> None:
    started = time.monotonic()
    n = 0
    while True:
        time.sleep(every_s)
        took = time.monotonic()
        record: dict[str, object] = {"t_s": round(took - started, 1)} | _malloc()
        if mode == "trim":
            _libc.malloc_trim(0)
            record["rss_after_trim_mb"] = round(_rss_mb(), 1)
        elif mode == "trace":
            record |= _trace()
        elif mode == "young":
            record |= _YOUNG.report()
        record["record_s"] = round(time.monotonic() - took, 3)
        (out / f"heap-{n:03d}.json").write_text(json.dumps(record))
        n += 1


def main() -> int:
    out, every_s, mode = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    rest = sys.argv[sys.argv.index("--") + 1 :]
    out.mkdir(parents=True, exist_ok=True)
    if mode == "trace":
        tracemalloc.start(1)
    elif mode == "young":
        gc.callbacks.append(_YOUNG)
    threading.Thread(target=_record_every, args=(out, every_s, mode), daemon=True).start()
    from forecourt.switch.cli import main as forecourt_main

    return forecourt_main(rest)


if __name__ == "__main__":
    sys.exit(main())
