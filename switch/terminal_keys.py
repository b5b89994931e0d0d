"""The switch's cache of MAC keyrings and PIN keys over the key store, and its
security module.

The store is the truth and lives on disk (or in PostgreSQL); the hot path must not
touch it, so each terminal's and link's keyring, and its TPK or ZPK, is loaded
once and replaced when the switch itself rotates the keys. Keys are held as
`KeyRef`s: every MAC, sign-on proof and PIN translation is the security module's
(`module`, one per switch process, switch/module_backend.py). The software
backend's calls are coroutines that never suspend: they run in the trio thread,
cost microseconds, and a thread hop would cost more.
"""

from __future__ import annotations

import calendar
import collections
import time
from typing import TYPE_CHECKING

import structlog
import trio
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.keys.errors import KeysError, UnknownOwner
from forecourt.keys.keyring import MacKeyring, VerifyResult
from forecourt.keys.mac import MacAlgorithm
from forecourt.keys.security_module import KeyRef, ModuleError, ModuleUnavailable, SecurityModule
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.store import KeyStore
from forecourt.switch.zone_pins import ZonePins

if TYPE_CHECKING:
    from forecourt.switch.dukpt_terminals import DukptTerminals

log = structlog.get_logger("forecourt.terminal_keys")

_VERDICTS = {
    VerifyResult.OK: "ok",
    VerifyResult.MAC_MISMATCH: "mismatch",
    VerifyResult.KEY_SYNC: "key_sync",
}


# a module's refusal of a MAC key's block (payShield 10: it does not authenticate
# under the LMK; the software backend's own): a key-exchange matter, 917 (docs/hsm.md)
_KEY_REFUSED = frozenset({"10", "software"})


class ZoneMac:
    """A link's ZAK keyring as one MAC key, in the security module: generate with the
    current key, verify under any acceptable one."""

    __slots__ = ("_module", "_ring")

    def __init__(self, ring: MacKeyring, module: SecurityModule) -> None:
        self._ring = ring
        self._module = module

    async def generate(self, data: bytes) -> bytes:
        return await self._ring.generate_in(self._module, data)

    async def verify(self, data: bytes, mac: bytes) -> bool:
        return (await self._ring.check_in(self._module, data, mac)).ok


class KeyringCache:
    """One owner of cached keyrings per switch process."""

    def __init__(
        self,
        store: KeyStore,
        rotations_per_minute: int = 6,
        sign_on_window_s: float = 600.0,
        module: SecurityModule | None = None,
    ) -> None:
        self._store = store
        # the process's one security module (the server's); alone, the software one
        self.module: SecurityModule = module if module is not None else SoftwareModule(store.lmk)
        self._rings: dict[str, MacKeyring] = {}
        self._registered: set[str] = set()
        self._sign_on_refs: dict[str, KeyRef] = {}
        self._pin_refs: dict[str, KeyRef | None] = {}
        self._zone_pins = ZonePins(self)
        # per terminal that signed on: its lock and its rotations of the last minute
        self._locks: dict[str, trio.Lock] = {}
        self._rotations: dict[str, collections.deque[float]] = {}
        self._per_minute = rotations_per_minute
        # sign-on proofs: how fresh their field 7 must be, and those already taken
        self._window_s = sign_on_window_s
        self._proofs: dict[str, dict[bytes, float]] = {}
        # DUKPT PIN pads (set by the server when a group has dukpt): their keys are
        # derived per request, so sign-on hands them none and PINs go through it
        self.dukpt: DukptTerminals | None = None
        self._dukpt_ids: set[str] = set()

    @property
    def store(self) -> KeyStore:
        return self._store

    async def load(self) -> None:
        terminals = await trio.to_thread.run_sync(self._store.terminals)
        self._registered = set(terminals)
        try:
            dukpt = await trio.to_thread.run_sync(lambda: self._store.dukpt().terminals())
        except KeysError as exc:  # keep the set it had; the next refresh reads again
            log.warning("dukpt_terminals_unread", error=type(exc).__name__)
        else:
            self._dukpt_ids = {t.terminal_id for t in dukpt}

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
        """ "ok", "mismatch" or "key_sync" for a request's MAC under the terminal's
        TAKs, each tried in the module. ModuleUnavailable (and a refusal other than
        of the key) goes to the session boundary: 909 / 96, never a MAC failure."""
        ring = await self.keyring(terminal_id)
        try:
            check = await ring.check_in(self.module, data, mac)
        except ModuleUnavailable:
            raise
        except ModuleError as exc:
            if exc.code not in _KEY_REFUSED:
                raise
            log.warning("mac_key_refused_by_module", terminal_id=terminal_id, code=exc.code)
            return "key_sync"
        return _VERDICTS[check.result]

    async def answer_mac(self, terminal_id: str) -> MacKeyring | None:
        ring = await self.keyring(terminal_id)
        return ring if ring.current is not None else None

    async def pin_ref(self, owner: str) -> KeyRef | None:
        """The owner's active TPK / ZPK as a module reference, cached; None when it
        has none (or the key store does not know the owner, e.g. a link with no keys)."""
        if owner in self._pin_refs:
            return self._pin_refs[owner]
        try:
            ref = await trio.to_thread.run_sync(self._store.pin_ref, owner)
        except UnknownOwner:
            ref = None
        self._pin_refs[owner] = ref
        return ref

    async def pin_upstream(self, message: Message, terminal_id: str, link: str) -> Message:
        """Field 52 under `link`'s ZPK, or no PIN data (see `zone_pins`; a DUKPT
        terminal's through the security module, `dukpt_terminals`)."""
        group = self.dukpt.group_of(terminal_id) if self.dukpt is not None else None
        if self.dukpt is not None and group is not None:
            return await self.dukpt.pin_upstream(group, message, terminal_id, link)
        return await self._zone_pins.upstream(message, terminal_id, link)

    async def verify_sign_on(
        self, terminal_id: str, data: bytes, mac: bytes, sent_at: str | None = None
    ) -> str:
        """A sign-on's proof: its MAC under the key derived from the terminal's KEK,
        on a message sent (field 7, `sent_at`) within the window and never taken
        before. A MAC proves who, not when: without this, a sign-on copied off the
        wire would rotate the terminal's keys again and again."""
        ref = self._sign_on_refs.get(terminal_id)
        if ref is None:
            ref = await trio.to_thread.run_sync(self._store.sign_on_ref, terminal_id)
            self._sign_on_refs[terminal_id] = ref
        try:
            proved = await self.module.verify_mac(
                ref, MacAlgorithm.for_key(ref.algorithm), data, mac
            )
        except ModuleUnavailable:
            raise
        except ModuleError as exc:
            if exc.code not in _KEY_REFUSED:
                raise
            log.warning("sign_on_key_refused_by_module", terminal_id=terminal_id, code=exc.code)
            return "key_sync"
        if not proved:
            return "mismatch"
        window = self._window_s
        if window <= 0:
            return "ok"
        now = time.time()
        age = field7_age(sent_at, now)
        if age is None or abs(age) > window:
            log.warning("sign_on_proof_stale", terminal_id=terminal_id)
            return "mismatch"
        taken = self._proofs.setdefault(terminal_id, {})
        for old in [m for m, until in taken.items() if until <= now]:
            del taken[old]
        if mac in taken:
            log.warning("sign_on_proof_replayed", terminal_id=terminal_id)
            return "mismatch"
        taken[mac] = now + 2 * window  # past the window the message is stale anyway
        return "ok"

    async def sign_on(self, terminal_id: str, family: Family) -> tuple[int, str] | None:
        """Rotate the working keys and activate them: the field that carries them under
        the KEK, or None when the terminal is over its rotations per minute.

        One lock per terminal: a terminal's sign-ons take turns (a rotation and its
        delivery never interleave with another's), other terminals never wait for it.
        """
        if terminal_id in self._dukpt_ids:
            return 0, ""  # accepted, nothing rotated: DUKPT keys are never handed out
        lock = self._locks.setdefault(terminal_id, trio.Lock())
        async with lock:
            now = trio.current_time()
            recent = self._rotations.setdefault(terminal_id, collections.deque())
            while recent and recent[0] <= now - 60.0:
                recent.popleft()
            if len(recent) >= self._per_minute:
                log.warning("sign_on_rate_exceeded", terminal_id=terminal_id)
                return None
            recent.append(now)
            change = await trio.to_thread.run_sync(
                lambda: self._store.rotate(terminal_id, actor="switch", reason="sign-on")
            )
            # active from here: the answer that carries them is on its way
            ring = await trio.to_thread.run_sync(
                lambda: self._store.mark_delivered(change, actor="switch")
            )
            self._rings[terminal_id] = ring
            self._pin_refs.pop(terminal_id, None)
        log.info(
            "working_keys_delivered",
            terminal_id=terminal_id,
            versions=",".join(f"{k.key_type.value}v{k.version}/{k.kcv}" for k in change.keys),
        )
        if family is Family.ISO1993:
            return 96, change.field96.hex().upper()
        return 48, change.field48

    def zone_mac(self, link: str) -> ZoneMac | None:
        """The ZAK of an acquirer link as the link uses it; None until loaded."""
        ring = self._rings.get(link)
        return ZoneMac(ring, self.module) if ring is not None else None

    async def reload(self, owners: set[str]) -> None:
        """Replace the cached keyrings of `owners` from the store (rotated elsewhere)."""
        for owner in owners:
            self._pin_refs.pop(owner, None)
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
        self._sign_on_refs.pop(owner, None)
        self._pin_refs.pop(owner, None)


def field7_age(field7: str | None, now: float) -> float | None:
    """Seconds from field 7 (MMDDhhmmss, UTC, no year: the nearest year is taken) to
    `now`; None when it is not a date-time."""
    if field7 is None or len(field7) != 10 or not field7.isdigit():
        return None
    month, day, hour, minute, second = (int(field7[i : i + 2]) for i in range(0, 10, 2))
    year = time.gmtime(now).tm_year
    ages = []
    for y in (year - 1, year, year + 1):
        try:
            sent = calendar.timegm((y, month, day, hour, minute, second, 0, 0, 0))
        except (ValueError, OverflowError):
            continue
        if time.gmtime(sent)[:6] == (y, month, day, hour, minute, second):
            ages.append(now - sent)
    return min(ages, key=abs) if ages else None
