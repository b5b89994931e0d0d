"""Rotation invariants over random sequences of rotate, deliver, clock and verify."""

from __future__ import annotations

import tempfile
from pathlib import Path

from forecourt.keys import (
    KeyChange,
    KeyPolicy,
    KeyState,
    KeyStore,
    KeyType,
    Lmk,
    MacKeyring,
    StaleKeyChange,
    VerifyResult,
    install_key_change,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from .conftest import Clock

DATA = b"0200" + bytes(range(100))
GRACE = 300.0
MAX_AGE = 3600.0


class Rotation(RuleBasedStateMachine):
    """Model: which TAK versions the terminal may hold, and when each stops counting."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = Clock()
        self.store = KeyStore.init(
            Path(self.tmp.name),
            lmk=Lmk.generate(),
            policy=KeyPolicy(max_age=MAX_AGE, grace=GRACE),
            clock=self.clock,
        )
        c = self.store.add_terminal("T1")
        self.kek = c.clear_kek
        first = install_key_change(self.kek, c.payload)
        # version -> terminal-side prepared MAC keyring holding that key only
        self.macs: dict[int, MacKeyring] = {1: first.keyring("T1")}
        self.active = 1
        self.activated_at = self.clock()
        self.until: dict[int, float] = {}  # retiring version -> end of grace
        self.changes: list[KeyChange] = []
        self.pending: int | None = None
        self.grace_of: dict[int, float] = {}

    @initialize()
    def start(self) -> None:
        pass

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    @rule(grace=st.sampled_from([None, 0.0, 60.0]))
    def rotate(self, grace: float | None) -> None:
        ch = self.store.rotate("T1", grace=grace)
        v = ch.version_of(KeyType.TAK)
        assert v > max(self.macs)
        self.macs[v] = install_key_change(self.kek, ch.payload).keyring("T1")
        self.changes.append(ch)
        self.pending = v
        self.grace_of[v] = GRACE if grace is None else grace

    @precondition(lambda self: bool(self.changes))
    @rule(which=st.integers(0, 10))
    def deliver(self, which: int) -> None:
        ch = self.changes[min(which, len(self.changes) - 1)]
        v = ch.version_of(KeyType.TAK)
        try:
            ring = self.store.mark_delivered(ch)
        except StaleKeyChange:
            assert v != self.pending and v != self.active
            return
        if v == self.pending:
            # policy.grace_versions == 1: only the version just replaced stays in grace
            self.until = {self.active: self.clock() + self.grace_of[v]}
            self.active = v
            self.activated_at = self.clock()
            self.pending = None
        assert ring.current is not None and ring.current.version == self.active

    @rule(seconds=st.sampled_from([1.0, 59.0, 120.0, 299.0, 301.0, 1800.0, 4000.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        self.store.retire_expired()

    @rule(version=st.integers(1, 12))
    def verify(self, version: int) -> None:
        if version not in self.macs:
            return
        mac = self.macs[version].generate(DATA)
        ring = self.store.mac_keyring("T1")
        now = self.clock()
        result = ring.verify(DATA, mac, now=now)
        if version == self.active:
            expected = (
                VerifyResult.OK if now < self.activated_at + MAX_AGE else VerifyResult.KEY_SYNC
            )
        elif version in self.until and now < self.until[version]:
            expected = VerifyResult.OK
        else:
            # retired, superseded, pending or never delivered: never accepted
            assert result is not VerifyResult.OK
            return
        assert result is expected, (version, self.active, result)
        assert ring.verify(DATA, bytes(8), now=now) is not VerifyResult.OK

    @invariant()
    def at_most_one_active_and_pending(self) -> None:
        keys = [k for k in self.store.list_keys("T1") if k.key_type is KeyType.TAK]
        assert sum(k.state is KeyState.ACTIVE for k in keys) == 1
        assert sum(k.state is KeyState.PENDING for k in keys) <= 1
        versions = [k.version for k in keys]
        assert len(versions) == len(set(versions))
        active = next(k for k in keys if k.state is KeyState.ACTIVE)
        assert active.version == self.active


Rotation.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestRotation = Rotation.TestCase
