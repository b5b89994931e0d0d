"""Typed errors of the key store.

Messages name owners, key types, versions and KCVs, never key material: these
strings end up in logs and on the operator's terminal.
"""

from __future__ import annotations


class KeysError(Exception):
    """Base of every error raised by `forecourt.keys`."""


class LmkError(KeysError):
    """The local master key is missing, malformed or badly protected."""


class LmkMissing(LmkError):
    """No LMK in the environment or in the LMK file."""


class LmkInvalid(LmkError):
    """The LMK is not 32 bytes of hex, or its file is readable by others."""


class LmkMismatch(LmkError):
    """The store was created under another LMK (checked by the LMK's KCV)."""


class LmkInDataDir(LmkError):
    """The LMK file lies inside the data directory, so a backup of it would hold the LMK."""


class NotPrivate(KeysError):
    """A store or journal file is open to group or others and cannot be tightened."""


class StoreError(KeysError):
    """The database refused an operation (message carries no parameters)."""


class StoreConflict(StoreError):
    """A uniqueness rule stopped a write (e.g. a concurrent registration)."""


class StoreNotInitialised(StoreError):
    """The store has no schema or no LMK stamp: run `forecourt keys init`."""


class StoreExists(StoreError):
    """`init` found an existing store."""


class InvalidKey(KeysError):
    """A key has the wrong length or form for its algorithm."""


class InvalidName(KeysError):
    """A terminal id or acquirer name is not acceptable."""


class UnknownOwner(KeysError):
    """No terminal or acquirer of that name is registered.

    Carries the owner id only (`.owner`, also the one argument, so it pickles),
    which is what the switch needs to answer "unknown terminal" and log it.
    """

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner

    def __str__(self) -> str:
        return f"no terminal or acquirer named {self.owner!r}"


class DuplicateOwner(KeysError):
    """A terminal or acquirer of that name is already registered."""


class UnknownKey(KeysError):
    """The owner has no key of that type, version or state."""


class KeyErased(KeysError):
    """A retired key's TR-31 block was erased: only its id, KCV and history remain."""


class KcvMismatch(KeysError):
    """A key does not match the KCV it came with."""


class KeyBlockInvalid(KeysError):
    """A TR-31 key block does not parse, authenticate or fit its use."""


class PayloadError(KeysError):
    """A key-exchange payload (field 96 / field 48) does not parse."""


class StaleKeyChange(KeysError):
    """A key change was superseded by a newer rotation before delivery."""


class NoActiveKey(KeysError):
    """A MAC is needed but the keyring has no active key."""


class ClearKeyRefused(KeysError):
    """A store on a payment HSM was asked for a clear key (a clear export, a software
    PIN translation, a clear component): its keys never leave the device."""


class StoreBackendMismatch(StoreError):
    """A key store made for one `[keys] backend` was opened under another: its rows
    hold blocks only that backend can use."""


class KeyNotExportable(KeysError):
    """The HSM refuses to export a key under a KEK/ZMK (its block says it stays)."""
