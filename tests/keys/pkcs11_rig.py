"""A SoftHSM2 token for the pkcs11 backend's tests: made in a temporary folder
(its own softhsm2.conf with `directories.tokendir` there, `SOFTHSM2_CONF`, then
`softhsm2-util --init-token`), and a test-only way to put a clear key the test
knows into it (C_CreateObject with the module's own attributes plus CKA_VALUE), so
the backends can be compared on the same key."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import attrs
import pkcs11
import pytest
import trio
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.model import KeyType
from forecourt.keys.pkcs11_module import (
    DEBIAN_SOFTHSM2,
    Pkcs11Module,
    Pkcs11Settings,
    library_lock,
)
from forecourt.keys.pkcs11_token import CHAIN_SUFFIX, key_template, new_label
from forecourt.keys.security_module import KeyRef
from pkcs11 import Attribute, ObjectClass
from pkcs11 import KeyType as P11KeyType

PIN = "314159"
SO_PIN = "27182818"
LABEL = "forecourt-test"
PIN_ENV = "FORECOURT_TEST_PKCS11_PIN"


@attrs.frozen
class Token:
    label: str
    pin: str
    settings: Pkcs11Settings

    def environ(self) -> dict[str, str]:
        return {self.settings.pin_env: self.pin}


def softhsm_missing() -> str | None:
    if shutil.which("softhsm2-util") is None or not Path(DEBIAN_SOFTHSM2).exists():
        return "softhsm2 is not installed (apt-get install softhsm2; .ci/run installs it)"
    return None


def make_token(folder: Path) -> Token:
    """A fresh token in `folder`; `SOFTHSM2_CONF` points there for this process
    (SoftHSM reads it once, when the library is first initialised)."""
    reason = softhsm_missing()
    if reason:
        pytest.skip(reason)
    tokens = folder / "tokens"
    tokens.mkdir(parents=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ],
        check=True,
        capture_output=True,
    )
    return Token(LABEL, PIN, Pkcs11Settings(token_label=LABEL, pin_env=PIN_ENV, sessions=4))


async def open_module(token: Token, **changes: object) -> Pkcs11Module:
    settings = attrs.evolve(token.settings, **changes)  # type: ignore[arg-type]
    return await Pkcs11Module.open_module(settings, token.environ())


def user_session(token: Token) -> pkcs11.Session:
    """A session of the test's own, logged in as the user (private objects visible)."""
    p11_token = pkcs11.lib(DEBIAN_SOFTHSM2).get_token(token_label=token.label)
    try:
        return p11_token.open(rw=True, user_pin=token.pin)
    except pkcs11.UserAlreadyLoggedIn:
        return p11_token.open(rw=True)


def _create(token: Token, key: bytes, key_type: KeyType, algorithm: Algorithm) -> str:
    session = user_session(token)
    try:
        label = new_label(key_type)
        p11_type = P11KeyType.AES if algorithm.is_aes else P11KeyType.DES3
        main = key if algorithm.is_aes or len(key) == 24 else key + key[:8]
        objects = [(label, main)]
        if key_type.is_mac and algorithm is Algorithm.TDES2:
            objects.append((label + CHAIN_SUFFIX, key[:8] * 3))
        for name, value in objects:
            template = key_template(key_type, algorithm, name)
            template |= {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: p11_type}
            session.create_object({**template, Attribute.VALUE: value})
        return label
    finally:
        session.close()


async def put_clear(token: Token, key: bytes, key_type: KeyType, algorithm: Algorithm) -> KeyRef:
    """Test only: `key` (which the test knows) as a token object the module can use."""

    def create() -> str:
        with library_lock(DEBIAN_SOFTHSM2):
            return _create(token, key, key_type, algorithm)

    label = await trio.to_thread.run_sync(create)
    return KeyRef(key_type, algorithm, kcv(key, algorithm), label, "pkcs11")
