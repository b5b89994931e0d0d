"""The owner registry: an unregistered owner is `UnknownOwner`, carrying its id and nothing else."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from forecourt.keys import KeyStore, Lmk, UnknownOwner

from .conftest import Clock


def _only_the_id(exc: UnknownOwner, owner: str) -> None:
    assert exc.owner == owner
    assert exc.args == (owner,)
    assert vars(exc) == {"owner": owner}
    assert str(exc) == f"no terminal or acquirer named {owner!r}"


def test_sign_on_for_an_owner_that_is_not_registered_raises_unknown_owner(
    store: KeyStore,
) -> None:
    store.add_terminal("T1")
    before = store.audit()
    with pytest.raises(UnknownOwner) as caught:
        # exactly the call the switch's sign-on makes (switch/terminal_keys.py)
        store.rotate("T404", actor="switch", reason="sign-on")
    _only_the_id(caught.value, "T404")
    assert store.audit() == before
    assert {k.owner for k in store.list_keys()} == {"T1"}


def test_unknown_owner_survives_pickling_with_its_id() -> None:
    # trio.to_thread and worker processes hand exceptions across; the id must stay.
    again = pickle.loads(pickle.dumps(UnknownOwner("T404")))
    assert isinstance(again, UnknownOwner)
    _only_the_id(again, "T404")


def test_every_owner_lookup_raises_the_same_typed_error(store: KeyStore) -> None:
    for call in (
        lambda: store.mac_keyring("ACQ-X"),
        lambda: store.rotation_due("ACQ-X"),
        lambda: store.record_uses("ACQ-X", 1, 5),
        lambda: store.rotate("ACQ-X", activate=True),
    ):
        with pytest.raises(UnknownOwner) as caught:
            call()
        _only_the_id(caught.value, "ACQ-X")


def test_delivering_to_an_owner_the_store_does_not_know(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    lmk = Lmk.generate()
    with (
        KeyStore.init(tmp_path / "a", lmk=lmk, clock=clock) as a,
        KeyStore.init(tmp_path / "b", lmk=lmk, clock=clock) as b,
    ):
        a.add_terminal("T1")
        change = a.rotate("T1", actor="switch", reason="sign-on")
        with pytest.raises(UnknownOwner) as caught:
            b.mark_delivered(change)
        _only_the_id(caught.value, "T1")
        assert b.audit() == []
