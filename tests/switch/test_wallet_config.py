"""`[[acquirers]] kind = "wallet"` and `payment_code_prefixes`: what is accepted and refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.codecs.payment_code import mask_payment_code, payment_code_of, with_payment_code
from forecourt.keys.lmk import Lmk
from forecourt.keys.store import KeyStore
from forecourt.switch.config import ConfigError, parse_config
from forecourt.switch.config_wallet import WalletConfig
from forecourt.switch.journal.model import check_pan_free
from forecourt.switch.routing import NoRoute
from forecourt.switch.server import run_switch
from hypothesis import given
from hypothesis import strategies as st

from tests.switch.wallet_rig import wallet_doc


def _doc(tmp_path: Path, **wallet: Any) -> dict[str, Any]:
    return wallet_doc(tmp_path, "https://wallet.example:8443", None, **wallet)


def test_a_wallet_entry_is_read(tmp_path: Path) -> None:
    config = parse_config(_doc(tmp_path, scheme="rsa-sha256"), source="t")
    (wallet,) = config.acquirers
    assert wallet.kind == "wallet" and isinstance(wallet.settings, WalletConfig)
    assert wallet.settings.merchant_id == "FORECOURT01" and wallet.settings.scheme == "rsa-sha256"
    router = config.build_router()
    assert router.route_payment_code("281234567890123456") == "wallet"
    with pytest.raises(NoRoute):
        router.route_payment_code("991234567890123456")
    with pytest.raises(NoRoute):
        router.route("281234567890123456")  # a card with that prefix is not a wallet code


@pytest.mark.parametrize("key", ["secret", "hmac_secret", "api_key", "private_key"])
def test_a_secret_in_the_configuration_is_refused_by_name(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_doc(tmp_path, **{key: "00112233"}), source="t")
    assert key in str(raised.value) and "keys add-wallet" in str(raised.value)
    assert "00112233" not in str(raised.value)


def test_plain_http_is_refused_unless_allowed(tmp_path: Path) -> None:
    doc = wallet_doc(tmp_path, "http://127.0.0.1:9", None)
    with pytest.raises(ConfigError, match="must be https://"):
        parse_config(doc, source="t")
    doc["acquirers"][0]["allow_plain_http"] = True
    parse_config(doc, source="t")


def test_bad_values_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"acquirers\[0\]\.scheme"):
        parse_config(_doc(tmp_path, scheme="md5"), source="t")
    with pytest.raises(ConfigError, match=r"acquirers\[0\]\.host"):
        parse_config(_doc(tmp_path, host="x"), source="t")  # an ISO 8583 key on a wallet
    doc = _doc(tmp_path)
    doc["routes"] = [{"acquirer": "wallet", "payment_code_prefixes": ["2x"]}]
    with pytest.raises(ConfigError, match=r"payment_code_prefixes\[0\]"):
        parse_config(doc, source="t")


async def test_a_wallet_the_key_store_does_not_know_stops_the_start(tmp_path: Path) -> None:
    lmk = Lmk.generate()
    KeyStore.init(tmp_path, lmk=lmk).close()
    config = parse_config(_doc(tmp_path), source="t")
    with pytest.raises(BaseException) as raised, trio.fail_after(10):
        await run_switch(config, stop=trio.Event(), lmk=lmk)
    error = raised.value
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]  # as `forecourt serve` unwraps it
    assert isinstance(error, ConfigError)
    assert "forecourt keys add-wallet wallet" in str(error)


@given(st.text(alphabet="0123456789", min_size=10, max_size=24))
def test_payment_codes_round_trip_and_mask_journal_safe(code: str) -> None:
    message = with_payment_code(Message("1200", {"2": "4761739001010010", "4": "1"}), code)
    assert "2" not in message.fields
    assert payment_code_of(message) == code
    assert decode_field48(message.fields["48"]) == {60: code}
    masked = mask_payment_code(code)
    assert masked[:4] == code[:4] and masked[-2:] == code[-2:] and "*" in masked
    check_pan_free("masked_pan", masked)  # the journal's PAN guard takes it


def test_a_bad_field_48_is_no_code() -> None:
    assert payment_code_of(Message("1200", {"48": "ZZ"})) is None
    assert payment_code_of(Message("1200", {"48": encode_field48({5: "001"})})) is None
