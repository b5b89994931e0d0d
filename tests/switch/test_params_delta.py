"""The delta since a version is exactly right: applying it (cut into chunks, on the
wire and back) to the old version's records gives the new version's, whatever the
two sets; and the journal's tables give back every published version as it was."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from forecourt.switch.journal import open_backend
from forecourt.switch.params import (
    KINDS,
    ParamSet,
    ParamsPublish,
    ParamsStates,
    ParamsUnchanged,
    Published,
    apply_delta,
    delta_between,
)
from forecourt.switch.params.wire import chunks_of, decode_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Records = dict[tuple[str, str], tuple[str, ...]]

_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\;="),
    max_size=12,
)
_KEY = st.text(alphabet="ABC0123*", min_size=1, max_size=6)


@st.composite
def record_maps(draw: st.DrawFn) -> Records:
    out: Records = {}
    for kind in KINDS:
        for key in draw(st.lists(_KEY, max_size=6, unique=True)):
            out[(kind.name, key)] = tuple(draw(_TEXT) for _ in kind.values)
    return out


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=record_maps(), new=record_maps(), chunk_bytes=st.integers(256, 999))
def test_the_delta_turns_the_old_set_into_the_new(
    old: Records, new: Records, chunk_bytes: int
) -> None:
    delta = delta_between(old, new)
    chunks = chunks_of(delta, chunk_bytes)
    assert all(len(c) <= chunk_bytes for c in chunks)
    received = [c for chunk in chunks for c in decode_records(chunk)]  # whole records only
    assert tuple(received) == delta.changes
    assert apply_delta(old, received) == new
    # nothing travels that did not change
    assert all(old.get((c.kind, c.key)) != new.get((c.kind, c.key)) for c in received)


def _run(backend: object, op: object) -> object:
    (outcome,) = backend.run_batch([[op]])  # type: ignore[attr-defined]
    assert not isinstance(outcome, Exception), outcome
    return outcome[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sets=st.lists(record_maps(), min_size=1, max_size=5), data=st.data())
def test_every_version_comes_back_and_deltas_between_any_two_are_right(
    sets: list[Records], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        backend = open_backend(Path(tmp) / "journal.db")
        try:
            published: dict[int, Records] = {0: {}}
            for records in sets:
                result = _run(backend, ParamsPublish(ParamSet(records), "t", "", time.time()))
                latest = max(published)
                if records == published[latest]:
                    assert result == ParamsUnchanged(latest)  # nothing stored
                else:
                    assert isinstance(result, Published) and result.version == latest + 1
                    published[result.version] = records
            latest = max(published)
            a = data.draw(st.integers(0, latest))
            b = data.draw(st.integers(a, latest))
            got_latest, states = _run(backend, ParamsStates((a, b, latest + 1)))  # type: ignore[misc]
            assert got_latest == latest
            old, new, beyond = states
            assert (old, new, beyond) == (published[a], published[b], None)
            assert apply_delta(old, delta_between(old, new).changes) == published[b]
        finally:
            backend.close()
