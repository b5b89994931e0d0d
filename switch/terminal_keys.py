"""The switch's cache of MAC keyrings and PIN keys over the key store.

The store is the truth and lives on disk (or in PostgreSQL); the hot path must not
touch it, so each terminal's and link's keyring, and its TPK or ZPK, is loaded
once and replaced when the switch itself rotates the keys. Verification and PIN
translation run in the trio thread: they cost microseconds, a thread hop more.
"""

from __future__ import annotations

import structlog
import trio
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.keys.errors import UnknownOwner
from forecourt.keys.keyring import MacKeyring, VerifyResult
from forecourt.keys.pin import PinKey
from forecourt.keys.store import KeyChange, KeyStore
from forecourt.switch.zone_pins import ZonePins

log = structlog.get_logger("forecourt.terminal_keys")

_VERDICTS = {
    VerifyResult.OK: "ok",
    VerifyResult.MAC_MISMATCH: "mismatch",
    VerifyResult.KEY_SYNC: "key_sync",
}


class ZoneMac:
    """A link's ZAK keyring as one MAC key: generate with the current, verify any acceptable."""

    __slots__ = ("_ring",)

    def __init__(self, ring: MacKeyring) -> None:
        self._ring = ring

    def generate(self, data: bytes) -> bytes:
        return self._ring.generate(data)

    def verify(self, data: bytes, mac: bytes) -> bool:
        return self._ring.verify(data, mac) is VerifyResult.OK


class KeyringCache:
    """One owner of cached keyrings per switch process."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._rings: dict[str, MacKeyring] = {}
        self._registered: set[str] = set()
        self._pending: dict[str, KeyChange] = {}
        self._pin_keys: dict[str, PinKey | None] = {}
        self._zone_pins = ZonePins(self)
        self._lock = trio.Lock()

    @property
    def store(self) -> KeyStore:
        return self._store

    async def load(self) -> None:
        terminals = await trio.to_thread.run_sync(self._store.terminals)
        self._registered = set(terminals)

    def is_known(self, terminal_id: str) -> bool:
        return terminal_id in self._registered

    async def refresh_registry(self) -> None:
        """Pick up terminals registered since start (`forecourt keys add-terminal`)."""
        await self.load()

    async def keyring(self, owner: str) -> MacKeyring:
        ring = self._rings.get(owner)
        if ring is None:
            ring = await trio.to_thread.run_sync(self._store.mac_keyring, owner)
            self._rings[owner] = ring
        return ring

    def cached(self, owner: str) -> MacKeyring | None:
        return self._rings.get(owner)

    async def verify(self, terminal_id: str, data: bytes, mac: bytes) -> str:
        ring = await self.keyring(terminal_id)
        return _VERDICTS[ring.verify(data, mac)]

    async def answer_mac(self, terminal_id: str) -> MacKeyring | None:
        ring = await self.keyring(terminal_id)
        return ring if ring.current is not None else None

    async def pin_key(self, owner: str) -> PinKey | None:
        """The owner's active TPK / ZPK, cached; None when it has none (or the
        key store does not know the owner, e.g. a link with no keys)."""
        if owner in self._pin_keys:
            return self._pin_keys[owner]
        try:
            key = await trio.to_thread.run_sync(self._store.pin_key, owner)
        except UnknownOwner:
            key = None
        self._pin_keys[owner] = key
        return key

    async def pin_upstream(self, message: Message, terminal_id: str, link: str) -> Message:
        """Field 52 under `link`'s ZPK, or no PIN data (see `zone_pins`)."""
        return await self._zone_pins.upstream(message, terminal_id, link)

    async def sign_on(self, terminal_id: str, family: Family) -> tuple[int, str]:
        """Rotate the working keys; the field that carries them under the KEK."""
        async with self._lock:
            change = await trio.to_thread.run_sync(
                lambda: self._store.rotate(terminal_id, actor="switch", reason="sign-on")
            )
            self._pending[terminal_id] = change
        if family is Family.ISO1993:
            return 96, change.field96.hex().upper()
        return 48, change.field48

    async def delivered(self, terminal_id: str) -> None:
        """The key change went out: activate it and use its keyring from now on."""
        async with self._lock:
            change = self._pending.pop(terminal_id, None)
            if change is None:
                return
            ring = await trio.to_thread.run_sync(
                lambda: self._store.mark_delivered(change, actor="switch")
            )
            self._rings[terminal_id] = ring
            self._pin_keys.pop(terminal_id, None)
        log.info(
            "working_keys_delivered",
            terminal_id=terminal_id,
            versions=",".join(f"{k.key_type.value}v{k.version}/{k.kcv}" for k in change.keys),
        )

    def zone_mac(self, link: str) -> ZoneMac | None:
        """The ZAK of an acquirer link as the link uses it; None until loaded."""
        ring = self._rings.get(link)
        return ZoneMac(ring) if ring is not None else None

    async def reload(self, owners: set[str]) -> None:
        """Replace the cached keyrings of `owners` from the store (rotated elsewhere)."""
        for owner in owners:
            self._pin_keys.pop(owner, None)
            if owner in self._rings:
                ring = await trio.to_thread.run_sync(self._store.mac_keyring, owner)
                self._rings[owner] = ring

    async def watch(self, every_s: float = 2.0) -> None:
        """Follow rotations made by other nodes (or the CLI) on a shared key store:
        every `every_s`, the owners with new key audit rows get their keyrings
        reloaded; a new owner refreshes the terminal registry."""
        mark = await trio.to_thread.run_sync(self._store.audit_mark)
        while True:
            await trio.sleep(every_s)
            try:
                mark, owners = await trio.to_thread.run_sync(self._store.changed_since, mark)
                if owners - self._registered:
                    await self.refresh_registry()
                await self.reload(owners)
            except Exception as exc:  # store unreachable: keep the cache, try again
                log.warning("key_watch_failed", error=type(exc).__name__)

    def forget(self, owner: str) -> None:
        """Drop a cached keyring (a rotation made elsewhere, e.g. the CLI)."""
        self._rings.pop(owner, None)
        self._pin_keys.pop(owner, None)
