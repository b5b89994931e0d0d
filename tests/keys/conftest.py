"""Fixtures for the key tests.

psec 1.3 reaches TripleDES through cryptography's deprecated location; that
warning is psec's own, so it (and only it, from psec modules) is ignored here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from forecourt.keys import KeyPolicy, KeyStore

from tests.keys.pkcs11_rig import Token, make_token

PSEC_WARNING = "ignore::cryptography.utils.CryptographyDeprecationWarning:psec.*"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings(PSEC_WARNING))


class Clock:
    """A settable clock for the store (seconds since the epoch)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyStore]:
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    lmk_file = tmp_path / "etc" / "lmk.key"  # away from the data directory, as in production
    s = KeyStore.init(tmp_path / "data", lmk_file=lmk_file, policy=KeyPolicy(), clock=clock)
    yield s
    s.close()


@pytest.fixture(scope="session")
def pkcs11_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Token]:
    """One SoftHSM2 token for the session's pkcs11 tests (tests/keys/pkcs11_rig.py):
    the library reads its configuration once per process, so one token serves them."""
    previous = os.environ.get("SOFTHSM2_CONF")
    yield make_token(tmp_path_factory.mktemp("softhsm"))
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
