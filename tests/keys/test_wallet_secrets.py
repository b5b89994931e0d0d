"""Wallet provider material in the key store, and the signatures made with it.

The store is real (SQLite files under tmp_path); `keys add-wallet` runs through
the real entry point.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import forecourt.switch.cli as switch_cli
import pytest
from forecourt.keys import KeyStore
from forecourt.keys.errors import InvalidKey, UnknownOwner
from forecourt.keys.lmk import Lmk
from forecourt.keys.wallet_secrets import (
    SigningScheme,
    WalletSecretCorrupt,
    hmac_secret,
    rsa_secret,
)
from forecourt.keys.wallet_signing import answer_text, fresh, hmac_signer, request_text, rsa_signer
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.switch.wallet_rig import rsa_pem

SECRET = bytes(range(32, 64))


def _files(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


def test_hmac_secret_is_sealed_and_comes_back(tmp_path: Path) -> None:
    lmk = Lmk.generate()
    with KeyStore.init(tmp_path, lmk=lmk) as store:
        info = store.wallet_secrets().put(hmac_secret("wallet", SECRET), time.time(), "test")
    assert SECRET not in _files(tmp_path) and SECRET.hex().encode() not in _files(tmp_path)
    with KeyStore.open(tmp_path, lmk=lmk) as store:
        secret = store.wallet_secrets().get("wallet")
        assert secret.hmac_secret == SECRET and secret.scheme is SigningScheme.HMAC_SHA256
        assert store.wallet_secrets().listed()[0].fingerprint == info.fingerprint
        assert "wallet-register" in [a.action for a in store.audit(owner="wallet")]
    assert SECRET.hex() not in repr(secret)


def test_rsa_private_key_is_sealed(tmp_path: Path) -> None:
    private, _ = rsa_pem()
    _, provider_public = rsa_pem()
    with KeyStore.init(tmp_path, lmk=Lmk.generate()) as store:
        store.wallet_secrets().put(rsa_secret("w", private, provider_public), time.time(), "t")
        assert store.wallet_secrets().get("w").provider_public_key_pem == provider_public
    body = b"".join(private.splitlines()[1:-1])
    assert body[:40] not in _files(tmp_path)


def test_a_moved_row_does_not_open(tmp_path: Path) -> None:
    """The provider's name is bound in: a row copied to another name is refused."""
    with KeyStore.init(tmp_path, lmk=Lmk.generate()) as store:
        wallets = store.wallet_secrets()
        wallets.put(hmac_secret("a", SECRET), time.time(), "t")
        with store._db.write() as tx:
            tx.execute("UPDATE wallet_secrets SET provider = 'b' WHERE provider = 'a'")
        with pytest.raises(WalletSecretCorrupt) as raised:
            wallets.get("b")
        assert SECRET.hex() not in str(raised.value)
        with pytest.raises(UnknownOwner):
            wallets.get("a")


def test_short_secrets_and_small_rsa_keys_are_refused() -> None:
    with pytest.raises(InvalidKey):
        hmac_secret("w", b"short")
    with pytest.raises(InvalidKey):
        rsa_secret("w", b"not a key", b"not a key")


@settings(max_examples=50, deadline=None)
@given(text=st.binary(max_size=200), flip=st.integers(min_value=0, max_value=10_000))
def test_any_change_breaks_an_hmac_signature(text: bytes, flip: int) -> None:
    signer = hmac_signer(SECRET)
    header = signer.sign(text)
    assert signer.verify(text, header)
    changed = bytearray(text + b"x")
    changed[flip % len(changed)] ^= 0x01
    assert not signer.verify(bytes(changed), header)
    assert not hmac_signer(os.urandom(32)).verify(text, header)
    assert not signer.verify(text, header.replace("hmac-sha256", "rsa-sha256"))
    assert not signer.verify(text, None)
    assert not signer.verify(text, "hmac-sha256 !!!not base64")


def test_rsa_signatures_verify_only_under_the_peers_key() -> None:
    a_private, a_public = rsa_pem()
    b_private, b_public = rsa_pem()
    a = rsa_signer(a_private, b_public)  # signs as A, verifies B
    b = rsa_signer(b_private, a_public)
    text = answer_text(200, "n", "1", b'{"result":"SUCCESS"}')
    assert b.verify(text, a.sign(text))
    assert not a.verify(text, a.sign(text))  # A's own signature is not B's
    assert not b.verify(text + b" ", a.sign(text))


def test_answers_are_bound_to_their_request() -> None:
    signer = hmac_signer(SECRET)
    body = b'{"result":"SUCCESS"}'
    header = signer.sign(answer_text(200, "nonce-1", "100", body))
    assert not signer.verify(answer_text(200, "nonce-2", "100", body), header)
    assert not signer.verify(answer_text(500, "nonce-1", "100", body), header)
    assert request_text("POST", "/v1/pay", "1", "n", b"{}") != request_text(
        "POST", "/v1/query", "1", "n", b"{}"
    )
    assert fresh(str(int(time.time())))
    assert not fresh(str(int(time.time()) - 301)) and not fresh("12x")


@pytest.fixture
def _keys_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(switch_cli, "COMMAND_MODULES", ("forecourt.keys.cli",))
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    monkeypatch.setenv("FORECOURT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rc = switch_cli.main(["keys", *argv])
    except SystemExit as e:
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.usefixtures("_keys_cli")
def test_add_wallet_prints_a_fingerprint_never_the_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _run(capsys, "init", "--lmk-file", "etc/lmk.key")[0] == 0
    (tmp_path / "secret.hex").write_text(SECRET.hex().upper() + "\n")
    rc, out, err = _run(
        capsys, "add-wallet", "wallet", "--scheme", "hmac-sha256", "--secret-file", "secret.hex"
    )
    assert rc == 0, err
    assert "fingerprint" in out and SECRET.hex() not in out.lower()
    rc, out, _ = _run(capsys, "wallets")
    assert rc == 0 and out.startswith("wallet: hmac-sha256, fingerprint ")
    # an operator's mistake: one line, exit 2, no traceback
    (tmp_path / "short.hex").write_text("abcd")
    rc, out, err = _run(
        capsys, "add-wallet", "w2", "--scheme", "hmac-sha256", "--secret-file", "short.hex"
    )
    assert rc == 2 and err.count("\n") == 1 and "at least 32 bytes" in err
    rc, _, err = _run(capsys, "add-wallet", "w3", "--scheme", "rsa-sha256")
    assert rc == 2 and "--private-key" in err and "Traceback" not in err
