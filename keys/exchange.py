"""Key exchange on the wire: new working keys as TR-31 blocks, with their KCVs.

One layout, defined here and in docs/keys.md, for IFSF 1804/1814 field 96 and
for 1987 0800/0810 field 48 (printable ASCII, so it fits an LLL ans field; field
96 carries the same bytes):

    "K1"                 layout tag (2)
    NN                   number of keys, 2 digits
    per key:
      TTT                key type: TAK, TPK, TDK, ZAK or ZPK
      VVVVVV             key version, 6 digits
      CCCCCC             KCV of the clear key, 6 upper-case hex digits
      LLLL               length of the TR-31 block, 4 digits
      ...                the TR-31 block (ASCII), wrapped under the terminal KEK
                         (version B for a TDES KEK, D for AES) or the link's ZMK

These functions take and return bytes/str, never messages.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import attrs
from forecourt.keys import tr31
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.errors import KcvMismatch, PayloadError, UnknownKey
from forecourt.keys.keyring import MacKey, MacKeyring
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.keys.model import KeyState, KeyType

LAYOUT_TAG = "K1"
MAX_KEYS = 99
_WIRE_TYPES = {t.value: t for t in KeyType if not t.is_master}


@attrs.frozen
class PayloadEntry:
    """One key of a payload, still wrapped."""

    key_type: KeyType
    version: int
    kcv: str
    block: str


@attrs.frozen(repr=False)
class ClearKey:
    """A clear working key on the receiving side; repr shows type, version, KCV."""

    key_type: KeyType
    version: int
    algorithm: Algorithm
    kcv: str
    key: bytes

    def __repr__(self) -> str:
        return (
            f"ClearKey({self.key_type.value} v{self.version} {self.algorithm.value} kcv={self.kcv})"
        )


def encode_payload(entries: Sequence[PayloadEntry]) -> str:
    if not 1 <= len(entries) <= MAX_KEYS:
        raise PayloadError(f"a payload carries 1 to {MAX_KEYS} keys, not {len(entries)}")
    parts = [LAYOUT_TAG, f"{len(entries):02d}"]
    for e in entries:
        if e.key_type.is_master:
            raise PayloadError(f"{e.key_type.value} is never sent on the wire")
        if not 0 <= e.version <= 999_999 or len(e.block) > 9999 or len(e.kcv) != 6:
            raise PayloadError("key version, KCV or block out of range for the layout")
        parts += [
            e.key_type.value,
            f"{e.version:06d}",
            e.kcv.upper(),
            f"{len(e.block):04d}",
            e.block,
        ]
    return "".join(parts)


def decode_payload(payload: str | bytes) -> tuple[PayloadEntry, ...]:
    """Parse the layout (no unwrapping). Raises PayloadError on any defect."""
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            text = bytes(payload).decode("ascii")
        except UnicodeDecodeError:
            raise PayloadError("key payload is not ASCII") from None
    else:
        text = payload
    if not text.isascii() or not text.isprintable():
        raise PayloadError("key payload is not printable ASCII")
    if text[:2] != LAYOUT_TAG:
        raise PayloadError("key payload has an unknown layout tag")
    count_s = text[2:4]
    if len(count_s) != 2 or not count_s.isdigit() or int(count_s) == 0:
        raise PayloadError("key payload has a bad key count")
    pos = 4
    out: list[PayloadEntry] = []
    for _ in range(int(count_s)):
        head = text[pos : pos + 19]
        if len(head) != 19:
            raise PayloadError("key payload is truncated")
        tag, version_s, kcv_s, length_s = head[:3], head[3:9], head[9:15], head[15:19]
        key_type = _WIRE_TYPES.get(tag)
        if key_type is None:
            raise PayloadError("key payload has an unknown key type tag")
        if not version_s.isdigit() or not length_s.isdigit():
            raise PayloadError("key payload has a bad version or length")
        try:
            bytes.fromhex(kcv_s)
        except ValueError:
            raise PayloadError("key payload has a bad KCV") from None
        length = int(length_s)
        block = text[pos + 19 : pos + 19 + length]
        if len(block) != length:
            raise PayloadError("key payload is truncated")
        out.append(PayloadEntry(key_type, int(version_s), kcv_s.upper(), block))
        pos += 19 + length
    if pos != len(text):
        raise PayloadError("key payload has trailing bytes")
    return tuple(out)


def build_payload(
    master_key: bytes,
    master_algorithm: Algorithm,
    keys: Iterable[tuple[KeyType, int, Algorithm, bytes]],
) -> str:
    """Wrap each (type, version, algorithm, clear key) under the KEK/ZMK and encode."""
    entries = [
        PayloadEntry(
            key_type,
            version,
            kcv(key, algorithm),
            tr31.wrap(master_key, master_algorithm, key, key_type, algorithm, exportability="N"),
        )
        for key_type, version, algorithm, key in keys
    ]
    return encode_payload(entries)


@attrs.frozen(repr=False)
class WorkingKeys:
    """Working keys installed from a payload (the terminal's or host's side)."""

    keys: tuple[ClearKey, ...]

    def get(self, key_type: KeyType) -> ClearKey:
        for k in self.keys:
            if k.key_type is key_type:
                return k
        raise UnknownKey(f"payload carried no {key_type.value}")

    def mac_key(self) -> MacKey:
        """The delivered TAK or ZAK, prepared, as the active key."""
        for k in self.keys:
            if k.key_type.is_mac:
                return MacKey(
                    version=k.version,
                    kcv=k.kcv,
                    state=KeyState.ACTIVE,
                    mac=prepare_mac(k.key, MacAlgorithm.for_key(k.algorithm)),
                )
        raise UnknownKey("payload carried no MAC key")

    def keyring(
        self,
        owner: str = "",
        previous: MacKeyring | None = None,
        now: float | None = None,
        grace: float = 300.0,
    ) -> MacKeyring:
        """A keyring with the delivered MAC key current and `previous`'s current in grace."""
        t = time.time() if now is None else now
        grace_keys: tuple[MacKey, ...] = ()
        if previous is not None and previous.current is not None:
            old = previous.current
            grace_keys = (
                MacKey(
                    version=old.version,
                    kcv=old.kcv,
                    state=KeyState.RETIRING,
                    mac=old.mac,
                    activated_at=old.activated_at,
                    retiring_until=t + grace,
                ),
            )
        cur = attrs.evolve(self.mac_key(), activated_at=t)
        return MacKeyring(
            owner=owner or (previous.owner if previous else ""),
            current=cur,
            grace=grace_keys,
            clock=previous.clock if previous is not None else time.time,
        )

    def __repr__(self) -> str:
        return f"WorkingKeys({', '.join(repr(k) for k in self.keys)})"


def install_key_change(master_key: bytes, payload: str | bytes) -> WorkingKeys:
    """Unwrap a payload under the clear KEK/ZMK and check every KCV.

    Raises PayloadError (layout), KeyBlockInvalid (wrong KEK, tampered block) or
    KcvMismatch (the block does not hold the key its KCV names).
    """
    out: list[ClearKey] = []
    for e in decode_payload(payload):
        algorithm, key = tr31.unwrap_any(master_key, e.block, e.key_type)
        actual = kcv(key, algorithm)
        if actual != e.kcv:
            raise KcvMismatch(
                f"{e.key_type.value} v{e.version}: KCV {actual} does not match {e.kcv}"
            )
        out.append(ClearKey(e.key_type, e.version, algorithm, actual, key))
    return WorkingKeys(tuple(out))
