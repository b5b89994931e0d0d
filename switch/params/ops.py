"""The parameter sets' journal operations, applied in the writer's transaction.

Publication reads the latest version under a row lock of `params_head` (on
PostgreSQL; SQLite's one writer already serialises), stores only the records
that changed, and takes the next version: versions go up by one per
publication, for every terminal, on every node sharing the database. No
operation updates or deletes a published version's rows.
"""

from __future__ import annotations

import attrs

from .model import ParamSet

__all__ = [
    "PARAMS_OPS",
    "ParamsLatest",
    "ParamsOp",
    "ParamsPublish",
    "ParamsStates",
    "ParamsUnchanged",
    "ParamsVersions",
    "Published",
]


@attrs.frozen
class ParamsPublish:
    """Store `params` as the next version. Result: `Published`, or `ParamsUnchanged`
    when it is the latest version's set again (nothing is stored)."""

    params: ParamSet
    operator: str
    note: str
    at: float


@attrs.frozen
class ParamsLatest:
    """Result: the latest published version (0: none yet)."""


@attrs.frozen
class ParamsVersions:
    """Result: every version's `VersionInfo`, oldest first."""


@attrs.frozen
class ParamsStates:
    """Result: (latest, one record map per version asked, None for a version that
    does not exist); version 0 is the empty set. One read for a delta's two ends."""

    versions: tuple[int, ...]


@attrs.frozen
class Published:
    version: int
    changed: int


@attrs.frozen
class ParamsUnchanged:
    latest: int


ParamsOp = ParamsPublish | ParamsLatest | ParamsVersions | ParamsStates
PARAMS_OPS: tuple[type, ...] = (ParamsPublish, ParamsLatest, ParamsVersions, ParamsStates)
