"""Console operators: names, roles and argon2 password hashes (never a password).

The roles (docs/console.md): a viewer reads; an operator also retries and abandons
SAF items; a security officer also reads the key audit and the console's audit.
"""

from __future__ import annotations

import enum
import re

import attrs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_NAME = re.compile(r"[a-z][a-z0-9._-]{0,31}")
MIN_PASSWORD = 12

# argon2id with argon2-cffi's RFC 9106 "low memory" defaults (64 MiB, t=3, p=4)
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs what a wrong
# password costs and timing does not tell which names exist.
_DUMMY_HASH = _HASHER.hash("not an operator's password")


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    SECURITY_OFFICER = "security_officer"

    @property
    def may_act_on_saf(self) -> bool:
        return self is not Role.VIEWER

    @property
    def may_audit(self) -> bool:
        """The key audit trail and the console's own audit."""
        return self is Role.SECURITY_OFFICER


class BadOperator(ValueError):
    """A name, role or password the console refuses (the message names the fix)."""


@attrs.frozen
class Operator:
    name: str
    role: Role
    password_hash: str = attrs.field(repr=False)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadOperator(
            f"operator name {name[:40]!r}: use 1-32 of a-z 0-9 . _ -, starting with a letter"
        )
    return name


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise BadOperator(
            f"role {role[:40]!r}: use one of {', '.join(r.value for r in Role)}"
        ) from None


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadOperator(f"password: at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def password_matches(operator: Operator | None, password: str) -> bool:
    """True when ``password`` is the operator's; an unknown operator costs the same."""
    try:
        return (
            _HASHER.verify(operator.password_hash if operator else _DUMMY_HASH, password)
            and operator is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
