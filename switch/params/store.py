"""The parameter sets' tables: statements and how each operation runs them.

`params_changes` holds, per version, only the records that changed (values
joined by `;`, NULL for a deletion); a version's set is every record's latest
change at or before it. `params_head` is one row, the latest version, locked by
a publication.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .model import VersionInfo, delta_between
from .ops import (
    ParamsLatest,
    ParamsOp,
    ParamsPublish,
    ParamsStates,
    ParamsUnchanged,
    ParamsVersions,
    Published,
)

__all__ = ["apply_params"]

RecordMap = dict[tuple[str, str], tuple[str, ...]]
_Run = Callable[[str, Sequence[object]], Any]


def apply_params(op: ParamsOp, run: _Run, convert: Callable[[str], str], lock: str) -> object:
    """Run one parameter operation in the caller's transaction; its result."""

    def sql(statement: str, params: Sequence[object] = ()) -> Any:
        return run(convert(statement), params)

    match op:
        case ParamsPublish():
            return _publish(sql, op, lock)
        case ParamsLatest():
            return _latest(sql, "")
        case ParamsVersions():
            rows = sql(
                "SELECT version, published_at, operator, note, records, changed "
                "FROM params_versions ORDER BY version"
            ).fetchall()
            return [
                VersionInfo(int(r[0]), float(r[1]), r[2], r[3], int(r[4]), int(r[5])) for r in rows
            ]
        case ParamsStates():
            latest = _latest(sql, "")
            return (latest, _states(sql, op.versions, latest))


def _latest(sql: Callable[..., Any], lock: str) -> int:
    return int(sql(f"SELECT latest FROM params_head WHERE id = 1{lock}").fetchone()[0])


def _states(
    sql: Callable[..., Any], versions: Sequence[int], latest: int
) -> list[RecordMap | None]:
    """Each version's records, folded from the changes in one ordered read."""
    wanted = [v for v in versions if 0 <= v <= latest]
    states: dict[int, RecordMap] = {v: {} for v in wanted}
    if wanted and max(wanted) > 0:
        rows = sql(
            "SELECT version, kind, record_key, record_values FROM params_changes "
            "WHERE version <= ? ORDER BY version",
            (max(wanted),),
        ).fetchall()
        for version, kind, key, values in rows:
            for v, state in states.items():
                if version <= v:
                    if values is None:
                        state.pop((kind, key), None)
                    else:
                        state[(kind, key)] = tuple(values.split(";"))
    return [states.get(v) if 0 <= v <= latest else None for v in versions]


def _publish(sql: Callable[..., Any], op: ParamsPublish, lock: str) -> object:
    latest = _latest(sql, lock)
    (current,) = _states(sql, [latest], latest)
    assert current is not None
    delta = delta_between(current, op.params.records)
    if not delta.changes:
        return ParamsUnchanged(latest)
    version = latest + 1
    for change in delta.changes:
        values = None if change.op == "D" else ";".join(change.values)
        sql(
            "INSERT INTO params_changes (version, kind, record_key, record_values) "
            "VALUES (?, ?, ?, ?)",
            (version, change.kind, change.key, values),
        )
    sql(
        "INSERT INTO params_versions (version, published_at, operator, note, records, changed) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (version, op.at, op.operator, op.note, len(op.params.records), len(delta.changes)),
    )
    sql("UPDATE params_head SET latest = ? WHERE id = 1", (version,))
    return Published(version, len(delta.changes))
