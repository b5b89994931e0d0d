"""The MAC keyring of one terminal or acquirer link, as the switch caches it.

A keyring is a frozen snapshot: the active key, the keys still in their grace
window and a few recent keys that are no longer acceptable (pending or retired),
which are kept only to tell a key-sync problem (917) from a plain MAC error (916).
After a rotation the switch replaces its cached keyring with the new one.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import attrs
from forecourt.keys.errors import NoActiveKey
from forecourt.keys.mac import MacAlgorithm, PreparedMac
from forecourt.keys.model import KeyState

if TYPE_CHECKING:
    from forecourt.keys.security_module import KeyRef, SecurityModule


class VerifyResult(enum.Enum):
    OK = "ok"
    MAC_MISMATCH = "mac_mismatch"  # 916 / A0: the MAC is wrong under every acceptable key
    KEY_SYNC = "key_sync"  # 917: no acceptable key, or MAC'd under a key no longer accepted


@attrs.frozen
class MacCheck:
    """The result of a verification and the key version that decided it, for logs."""

    result: VerifyResult
    version: int | None = None

    @property
    def ok(self) -> bool:
        return self.result is VerifyResult.OK


@attrs.frozen(repr=False, eq=False)
class MacKey:
    """A MAC key with its place in the rotation.

    It is held one of two ways: `mac`, a prepared clear key (a terminal or host
    simulator, which holds its keys by nature), or `ref`, a reference into the
    security module (the switch: `MacKeyring.check_in` / `generate_in`). The
    switch's keys from the store carry both under the software backend and only
    `ref` under a device backend.
    """

    version: int
    kcv: str
    state: KeyState
    mac: PreparedMac | None = None
    activated_at: float | None = None
    expires_at: float | None = None
    retiring_until: float | None = None
    ref: KeyRef | None = None

    @property
    def algorithm(self) -> MacAlgorithm:
        if self.mac is not None:
            return self.mac.algorithm
        if self.ref is not None:
            return MacAlgorithm.for_key(self.ref.algorithm)
        raise NoActiveKey(f"MAC key v{self.version} has neither a clear key nor a reference")

    def _prepared(self) -> PreparedMac:
        if self.mac is None:
            raise NoActiveKey(
                f"MAC key v{self.version} (KCV {self.kcv}) is held in the security module:"
                " use the keyring's check_in / generate_in"
            )
        return self.mac

    def generate(self, data: bytes) -> bytes:
        return self._prepared().generate(data)

    def verify(self, data: bytes, mac: bytes) -> bool:
        return self._prepared().verify(data, mac)

    def _module_ref(self) -> KeyRef:
        if self.ref is None:
            raise NoActiveKey(f"MAC key v{self.version} (KCV {self.kcv}) has no module reference")
        return self.ref

    async def generate_in(self, module: SecurityModule, data: bytes) -> bytes:
        return await module.generate_mac(self._module_ref(), self.algorithm, data)

    async def verify_in(self, module: SecurityModule, data: bytes, mac: bytes) -> bool:
        return await module.verify_mac(self._module_ref(), self.algorithm, data, mac)

    def acceptable(self, now: float) -> bool:
        """Active and not expired, or retiring and still within its grace window."""
        if self.state is KeyState.ACTIVE:
            return self.expires_at is None or now < self.expires_at
        if self.state is KeyState.RETIRING:
            return self.retiring_until is not None and now < self.retiring_until
        return False

    def __repr__(self) -> str:
        return f"MacKey(version={self.version}, kcv={self.kcv}, state={self.state.value})"


class _Uses:
    """Counts MACs under the active key (mutable inside a frozen keyring)."""

    __slots__ = ("_lock", "count")

    def __init__(self, start: int = 0) -> None:
        self.count = start
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> int:
        with self._lock:
            self.count += n
            return self.count


@attrs.frozen(repr=False, eq=False)
class MacKeyring:
    """Acceptable MAC keys of one owner at the time of use.

    `verify` tries the current key first, then the keys in grace; `generate`
    MACs answers with the current key.
    """

    owner: str
    current: MacKey | None
    grace: tuple[MacKey, ...] = ()
    stale: tuple[MacKey, ...] = ()
    max_uses: int | None = None
    _uses: _Uses = attrs.field(factory=_Uses, alias="uses")
    clock: Callable[[], float] = time.time  # `now` when a call gives none

    @property
    def uses(self) -> int:
        """MACs generated or verified under the current key (this keyring's count)."""
        return self._uses.count

    def acceptable(self, now: float | None = None) -> tuple[MacKey, ...]:
        t = self.clock() if now is None else now
        keys = [k for k in (self.current, *self.grace) if k is not None and k.acceptable(t)]
        if keys and keys[0] is self.current and self._exhausted():
            keys = keys[1:]
        return tuple(keys)

    def _exhausted(self) -> bool:
        return self.max_uses is not None and self._uses.count >= self.max_uses

    def rotation_due(self, now: float | None = None, margin: float = 0.0) -> bool:
        """True when the current key is missing, near its expiry, or used up."""
        t = self.clock() if now is None else now
        cur = self.current
        if cur is None or self._exhausted():
            return True
        return cur.expires_at is not None and t + margin >= cur.expires_at

    def _current_for_use(self) -> MacKey:
        cur = self.current
        if cur is None:
            raise NoActiveKey(f"{self.owner} has no active MAC key")
        self._uses.add()
        return cur

    def generate(self, data: bytes) -> bytes:
        """MAC under the current key (answers to the terminal, requests to the host)."""
        return self._current_for_use().generate(data)

    async def generate_in(self, module: SecurityModule, data: bytes) -> bytes:
        """`generate`, the MAC computed by the security module."""
        return await self._current_for_use().generate_in(module, data)

    def _decide(self, now: float | None, version: int | None) -> Generator[MacKey, bool, MacCheck]:
        """The verification's decisions, one key at a time: yields each key to try
        and is sent whether the MAC verified under it. `check` and `check_in` drive
        it, in this process or in the security module, so the rules live once."""
        t = self.clock() if now is None else now
        cur = self.current
        if (
            cur is not None
            and (version is None or version == cur.version)
            and cur.acceptable(t)
            and not self._exhausted()
            and (yield cur)
        ):
            self._uses.add()
            return MacCheck(VerifyResult.OK, cur.version)
        acceptable = self.acceptable(t)
        for k in acceptable:
            if k is not cur and (version is None or version == k.version) and (yield k):
                return MacCheck(VerifyResult.OK, k.version)
        if not acceptable:
            return MacCheck(VerifyResult.KEY_SYNC, None)
        if version is not None and all(k.version != version for k in acceptable):
            return MacCheck(VerifyResult.KEY_SYNC, version)
        for other in (cur, *self.grace, *self.stale):
            if other is not None and other not in acceptable and (yield other):
                return MacCheck(VerifyResult.KEY_SYNC, other.version)
        return MacCheck(VerifyResult.MAC_MISMATCH, None)

    def check(
        self, data: bytes, mac: bytes, now: float | None = None, version: int | None = None
    ) -> MacCheck:
        """Verify `mac` over `data` and say which key decided.

        `version`, when the message names the key version, restricts the search
        to that version: a version that is not acceptable is a key-sync error.
        """
        steps = self._decide(now, version)
        try:
            key = next(steps)
            while True:
                key = steps.send(key.verify(data, mac))
        except StopIteration as done:
            result: MacCheck = done.value
            return result

    async def check_in(
        self,
        module: SecurityModule,
        data: bytes,
        mac: bytes,
        now: float | None = None,
        version: int | None = None,
    ) -> MacCheck:
        """`check`, each MAC verified by the security module under the key's reference."""
        steps = self._decide(now, version)
        try:
            key = next(steps)
            while True:
                key = steps.send(await key.verify_in(module, data, mac))
        except StopIteration as done:
            result: MacCheck = done.value
            return result

    def verify(
        self, data: bytes, mac: bytes, now: float | None = None, version: int | None = None
    ) -> VerifyResult:
        return self.check(data, mac, now, version).result

    def __repr__(self) -> str:
        cur = None if self.current is None else (self.current.version, self.current.kcv)
        return (
            f"MacKeyring(owner={self.owner!r}, current={cur},"
            f" grace={[k.version for k in self.grace]})"
        )
