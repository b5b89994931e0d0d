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
from collections.abc import Callable

import attrs
from forecourt.keys.errors import NoActiveKey
from forecourt.keys.mac import MacAlgorithm, PreparedMac
from forecourt.keys.model import KeyState


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
    """A prepared MAC key with its place in the rotation."""

    version: int
    kcv: str
    state: KeyState
    mac: PreparedMac
    activated_at: float | None = None
    expires_at: float | None = None
    retiring_until: float | None = None

    @property
    def algorithm(self) -> MacAlgorithm:
        return self.mac.algorithm

    def generate(self, data: bytes) -> bytes:
        return self.mac.generate(data)

    def verify(self, data: bytes, mac: bytes) -> bool:
        return self.mac.verify(data, mac)

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

    def generate(self, data: bytes) -> bytes:
        """MAC under the current key (answers to the terminal, requests to the host)."""
        cur = self.current
        if cur is None:
            raise NoActiveKey(f"{self.owner} has no active MAC key")
        self._uses.add()
        return cur.generate(data)

    def check(
        self, data: bytes, mac: bytes, now: float | None = None, version: int | None = None
    ) -> MacCheck:
        """Verify `mac` over `data` and say which key decided.

        `version`, when the message names the key version, restricts the search
        to that version: a version that is not acceptable is a key-sync error.
        """
        t = self.clock() if now is None else now
        cur = self.current
        if (
            cur is not None
            and (version is None or version == cur.version)
            and cur.acceptable(t)
            and not self._exhausted()
            and cur.verify(data, mac)
        ):
            self._uses.add()
            return MacCheck(VerifyResult.OK, cur.version)
        acceptable = self.acceptable(t)
        for k in acceptable:
            if k is not cur and (version is None or version == k.version) and k.verify(data, mac):
                return MacCheck(VerifyResult.OK, k.version)
        if not acceptable:
            return MacCheck(VerifyResult.KEY_SYNC, None)
        if version is not None and all(k.version != version for k in acceptable):
            return MacCheck(VerifyResult.KEY_SYNC, version)
        for other in (cur, *self.grace, *self.stale):
            if other is not None and other not in acceptable and other.verify(data, mac):
                return MacCheck(VerifyResult.KEY_SYNC, other.version)
        return MacCheck(VerifyResult.MAC_MISMATCH, None)

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
