"""What one switch process knows of the parameter sets: the latest version, and the
chunks of recent downloads.

Sign-on answers carry the latest version (48-20) from a cached read, refreshed at
most every `version_cache_s`: a sign-on costs no database read while the cache is
fresh, and one read per period otherwise (a lock makes concurrent sign-ons share
it). A download request always reads the latest version (one small read): a
terminal told of a version at another node must find it here. Versions never
change once published, so a delta's chunks, keyed by (held, latest), are cached
without expiry, for the last few downloads.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

import attrs
import trio
from forecourt.switch.config_params import ParamsConfig
from forecourt.switch.journal import Journal

from .model import Records, delta_between
from .ops import ParamsLatest, ParamsStates
from .wire import chunks_of

__all__ = ["ChunkOutOfRange", "Download", "ParamsCatalogue"]

_KEPT_DELTAS = 32

# 48-23, the download's status
NO_CHANGE, DELTA, FULL, RESTARTED = "N", "D", "F", "R"


class ChunkOutOfRange(Exception):
    """A terminal asked for a chunk past the last: a format error."""


@attrs.frozen
class Download:
    """One answer's worth: `data` is chunk `chunk` of `chunks` bringing the terminal to
    `version`."""

    status: str
    version: int
    chunk: int
    chunks: int
    data: str


class ParamsCatalogue:
    def __init__(
        self, config: ParamsConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or ParamsConfig()
        self._clock = clock
        self._latest: int | None = None
        self._read_at = 0.0
        self._lock = trio.Lock()
        self._chunks: OrderedDict[tuple[int, int], tuple[str, ...]] = OrderedDict()

    async def latest_cached(self, journal: Journal) -> int:
        """The latest version for a sign-on answer: the cache while it is fresh."""
        async with self._lock:
            if self._latest is None or self._clock() - self._read_at >= self.config.version_cache_s:
                await self._refresh(journal)
            assert self._latest is not None
            return self._latest

    async def _refresh(self, journal: Journal) -> int:
        (latest,) = await journal.write(ParamsLatest())
        assert isinstance(latest, int)
        self._latest, self._read_at = latest, self._clock()
        return latest

    async def download(
        self, journal: Journal, held: int, chunk: int, target: int | None
    ) -> Download:
        """Chunk `chunk` of what brings a terminal holding `held` to the latest version.

        `target` is the version the terminal's download in progress brings it to (48-22,
        from chunks after the first): when a newer version was published since, the
        download restarts at chunk 1 of the new one. A terminal holding a version this
        switch never published (ahead of the latest) gets the full set, to replace all."""
        latest = await self._refresh(journal)
        if held == latest:
            return Download(NO_CHANGE, latest, 1, 1, "")
        full = held > latest
        base = 0 if full else held
        restarted = chunk > 1 and target != latest
        chunks = await self._chunks_for(journal, base, latest)
        if restarted:
            chunk = 1
        elif chunk > len(chunks):
            raise ChunkOutOfRange(f"chunk {chunk} of {len(chunks)}")
        status = FULL if full else RESTARTED if restarted else DELTA
        return Download(status, latest, chunk, len(chunks), chunks[chunk - 1])

    async def _chunks_for(self, journal: Journal, held: int, latest: int) -> tuple[str, ...]:
        key = (held, latest)
        cached = self._chunks.get(key)
        if cached is not None:
            self._chunks.move_to_end(key)
            return cached
        (result,) = await journal.write(ParamsStates((held, latest)))
        states: list[Records | None] = result[1]  # type: ignore[index]
        old, new = states
        if old is None or new is None:  # versions are never deleted: unreachable
            raise ValueError(f"parameter version {held} or {latest} is missing")
        chunks = chunks_of(delta_between(old, new), self.config.chunk_bytes)
        self._chunks[key] = chunks
        while len(self._chunks) > _KEPT_DELTAS:
            self._chunks.popitem(last=False)
        return chunks
