"""One-time activation codes for a terminal's online registration.

A code is 16 characters of Crockford's base32 alphabet (80 bits from `secrets`),
printed once by `forecourt terminals add-pending`; the journal keeps only its
argon2id hash (argon2-cffi), so a copy of the database cannot register a terminal.
Verifying costs tens of milliseconds of CPU on purpose: it runs in a worker thread,
one at a time per process, and a terminal's wrong codes are counted and locked out.
"""

from __future__ import annotations

import secrets
import time

import argon2
import trio
from forecourt.switch.journal import Journal

from .ops import IssueActivation

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "add_pending",
    "code_matches",
    "hash_code",
    "new_activation_code",
    "normalise_code",
]

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 16  # 48-17 is an16
_HASHER = argon2.PasswordHasher()


def new_activation_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """What a person typed (groups, dashes, lower case) as it travels in 48-17."""
    return "".join(c for c in text.upper() if c not in "- ")


def hash_code(code: str) -> str:
    return _HASHER.hash(code)


def _verify(code_hash: str, code: str) -> bool:
    try:
        return _HASHER.verify(code_hash, code)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        return False


async def code_matches(code_hash: str, code: str, limiter: trio.CapacityLimiter) -> bool:
    """Verify off the event loop, `limiter` verifications at a time (the roster's: one
    per process): a terminal guessing codes costs the switch one thread, never its
    other terminals."""
    return await trio.to_thread.run_sync(_verify, code_hash, code, limiter=limiter)


async def add_pending(
    journal: Journal,
    terminal_id: str,
    *,
    expires_in_s: float,
    actor: str,
    expected_serial: str | None = None,
    max_attempts: int = 5,
    code: str | None = None,
) -> str:
    """Make `terminal_id` pending with a new activation code (`code`: a fixed one,
    for the demo's certification script only); the code, to be shown once."""
    code = normalise_code(code) if code is not None else new_activation_code()
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        raise ValueError(f"an activation code is {CODE_LENGTH} characters of {CODE_ALPHABET}")
    code_hash = await trio.to_thread.run_sync(hash_code, code)
    now = time.time()
    await journal.write(
        IssueActivation(
            terminal_id, code_hash, expected_serial, now + expires_in_s, max_attempts, now, actor
        )
    )
    return code
