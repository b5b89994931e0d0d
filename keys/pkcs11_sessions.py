"""The pkcs11 backend's settings and its pool of logged-in sessions.

PKCS#11 calls block, so each runs in a worker thread (`trio.to_thread.run_sync`)
on one of `sessions` sessions: the event loop never waits on the token. The calls
into one library run one at a time (`library_lock`): python-pkcs11 initialises the
library with C_Initialize(NULL), which promises it no two threads at once, and
SoftHSM then takes no locks of its own (concurrent calls fail with
CKR_GENERAL_ERROR, or crash). A PKCS#11 error becomes `ModuleError` whose code is
its CKR name; the message names the operation only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

import attrs
import pkcs11
import trio
from forecourt.keys.pkcs11_token import NAME, TokenSession, ckr_name
from forecourt.keys.security_module import ModuleError, ModuleUnavailable

__all__ = ["DEBIAN_SOFTHSM2", "Pkcs11Settings", "TokenInfo", "TokenPool", "library_lock"]

T = TypeVar("T")
DEBIAN_SOFTHSM2 = "/usr/lib/softhsm/libsofthsm2.so"
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def library_lock(library: str) -> threading.Lock:
    """The one lock every call into `library` holds (this process)."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(os.path.realpath(library), threading.Lock())


@attrs.frozen
class Pkcs11Settings:
    """`[keys.pkcs11]` (docs/configuration.md). The user PIN is never in the file:
    `pin_env` names the environment variable that holds it."""

    library: str = DEBIAN_SOFTHSM2
    token_label: str = "forecourt"
    pin_env: str = "FORECOURT_PKCS11_PIN"
    sessions: int = 4
    software_pin_translation: bool = False  # test systems only: not PCI compliant


@attrs.frozen
class TokenInfo:
    """What diagnostics report of the token (never its PIN)."""

    label: str
    manufacturer: str
    model: str
    firmware: str


class TokenPool:
    """`sessions` logged-in sessions of one token; `run` lends one to a call in a
    worker thread. Opening blocks: do it in a thread (`Pkcs11Module.open_module`)."""

    def __init__(self, settings: Pkcs11Settings, pin: str) -> None:
        self._lock = library_lock(settings.library)
        self._size = settings.sessions
        with self._lock:
            try:
                lib = pkcs11.lib(settings.library)
                self.token = lib.get_token(token_label=settings.token_label)
                sessions = [self._login(pin)]
                sessions += [self.token.open(rw=True) for _ in range(self._size - 1)]
            except pkcs11.PKCS11Error as exc:
                raise ModuleError(
                    f"open token {settings.token_label!r}", ckr_name(exc), "the token does not open"
                ) from None
            except RuntimeError as exc:  # the library itself does not load
                raise ModuleError("open PKCS#11 library", "library", str(exc)) from None
        self._free = [TokenSession(s) for s in sessions]
        self._limiter = trio.CapacityLimiter(self._size)
        self._threads = trio.CapacityLimiter(self._size)
        self._closed = False
        self.info = TokenInfo(
            self.token.label,
            self.token.manufacturer_id,
            self.token.model,
            "{}.{}".format(*self.token.firmware_version),
        )

    def _login(self, pin: str) -> pkcs11.Session:
        try:
            return self.token.open(rw=True, user_pin=pin)
        except pkcs11.UserAlreadyLoggedIn:  # another module of this process logged in
            return self.token.open(rw=True)

    async def run(self, operation: str, call: Callable[[TokenSession], T]) -> T:
        async with self._limiter:
            if self._closed:
                raise ModuleUnavailable(operation, NAME, "the token's sessions are closed")
            session = self._free.pop()
            try:
                return await trio.to_thread.run_sync(
                    _mapped, self._lock, operation, call, session, limiter=self._threads
                )
            finally:
                self._free.append(session)

    async def aclose(self) -> None:
        """Waits for the calls in flight, then closes every session."""
        borrowers = [object() for _ in range(self._size)]
        for borrower in borrowers:
            await self._limiter.acquire_on_behalf_of(borrower)
        try:
            if self._closed:
                return
            self._closed = True

            def close() -> None:
                with self._lock:
                    for session in self._free:
                        session.close()

            await trio.to_thread.run_sync(close)
        finally:
            for borrower in borrowers:
                self._limiter.release_on_behalf_of(borrower)


def _mapped(
    lock: threading.Lock, operation: str, call: Callable[[TokenSession], T], session: TokenSession
) -> T:
    try:
        with lock:
            return call(session)
    except pkcs11.PKCS11Error as exc:
        raise ModuleError(operation, ckr_name(exc), "the token refused it") from None
