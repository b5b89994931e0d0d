"""Field 52 through the switch, over real sockets: under the terminal's TPK in,
under the link's ZPK out, or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import structlog
import trio
from forecourt.codecs.message import Message
from forecourt.codecs.network import NetworkFunction, network_request
from forecourt.keys.exchange import install_key_change
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyType
from forecourt.keys.pin import decrypt_pin_block, encrypt_pin_block
from forecourt.keys.store import KeyStore
from forecourt.switch.terminal_keys import KeyringCache

from tests.switch.harness import TEST_PAN, SwitchUnderTest, Terminal, started_switch

PIN = "4821"


def _zmk() -> tuple[bytes, bytes]:
    return os.urandom(16), os.urandom(16)


def _with_pin(
    sut: SwitchUnderTest, t: Terminal, amount: int, pin: str = PIN
) -> tuple[Message, bytes]:
    tpk = sut.tpks[t.terminal_id]
    block = encrypt_pin_block(tpk.key, tpk.algorithm, pin, TEST_PAN)
    return t.purchase(amount).with_fields({52: block.hex().upper()}), block


async def _received(sut: SwitchUnderTest, mti: str, count: int = 1) -> list[Message]:
    with trio.fail_after(5):
        while len(seen := [m for m in sut.host.received if m.mti == mti]) < count:
            await trio.sleep(0.02)
    return seen


@pytest.mark.parametrize("host_dialect", ["ifsf", "iso87ascii"])
async def test_host_gets_the_pin_under_its_zpk(tmp_path: Path, host_dialect: str) -> None:
    async with (
        started_switch(tmp_path, zmk_components=_zmk(), host_dialect=host_dialect) as sut,
        sut.terminal() as t,
    ):
        request, sent = _with_pin(sut, t, 2500)
        answer = await t.exchange(request)
        assert answer.fields["39"] == "000"
        assert "52" not in answer.fields
        (seen,) = await _received(sut, "1200" if host_dialect == "ifsf" else "0200")
        block = bytes.fromhex(seen.fields["52"])
        assert block != sent  # not forwarded byte for byte
        assert sut.zpk is not None
        assert decrypt_pin_block(sut.zpk.key, sut.zpk.algorithm, block, TEST_PAN) == PIN


async def test_link_without_zpk_gets_no_pin_data(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        request, _ = _with_pin(sut, t, 2500)
        answer = await t.exchange(request.with_fields({53: "00" * 8}))
        assert answer.fields["39"] == "000"
        (seen,) = await _received(sut, "1200")
        assert "52" not in seen.fields and "53" not in seen.fields


async def test_untranslatable_pin_block_is_declined_locally(tmp_path: Path) -> None:
    """A block that is not format 0 under the terminal's TPK (here: under another
    key) is answered 909 by the switch and never reaches the host."""
    async with started_switch(tmp_path, zmk_components=_zmk()) as sut, sut.terminal() as t:
        wrong = encrypt_pin_block(os.urandom(16), sut.tpks[t.terminal_id].algorithm, PIN, TEST_PAN)
        answer = await t.exchange(t.purchase(2500).with_fields({52: wrong.hex().upper()}))
        assert answer.fields["39"] == "909"
        assert "52" not in answer.fields
        good, _ = _with_pin(sut, t, 2600)
        assert (await t.exchange(good)).fields["39"] == "000"
        assert [m.fields["4"] for m in sut.host.received if m.mti == "1200"] == ["000000002600"]


async def test_saf_resends_carry_no_pin_block(tmp_path: Path) -> None:
    """The switch's timeout reversal, a terminal's reversal and an advice that came
    with field 52: none of them leaves the SAF queue with PIN data."""
    async with (
        started_switch(tmp_path, zmk_components=_zmk(), request_timeout_s=0.3) as sut,
        sut.terminal() as t,
    ):
        timed_out, _ = _with_pin(sut, t, 300000)
        assert (await t.exchange(timed_out)).fields["39"] == "911"
        approved, block = _with_pin(sut, t, 2500)
        assert (await t.exchange(approved)).fields["39"] == "000"
        reversal = t.reversal(approved).with_fields({52: block.hex().upper()})
        assert (await t.exchange(reversal)).fields["39"] == "400"
        preauth, block2 = _with_pin(sut, t, 5000)
        preauth = preauth.with_fields({}, mti="1100")
        assert (await t.exchange(preauth)).fields["39"] == "000"
        advice = t.completion(preauth, 4000).with_fields({52: block2.hex().upper()})
        assert (await t.exchange(advice)).fields["39"] == "000"
        queued = await _received(sut, "1420", 2) + await _received(sut, "1220")
        assert all("52" not in m.fields and "53" not in m.fields for m in queued)
        assert all("52" in m.fields for m in sut.host.received if m.mti in ("1200", "1100"))


async def test_a_new_tpk_from_sign_on_is_used(tmp_path: Path) -> None:
    """Sign-on rotates the TPK; the switch translates under the new one at once."""
    async with started_switch(tmp_path, zmk_components=_zmk()) as sut, sut.terminal() as t:
        sign_on = network_request("1993", NetworkFunction.SIGN_ON, t.next_stan(), t.terminal_id)
        first, _ = _with_pin(sut, t, 2500)
        assert (await t.exchange(first)).fields["39"] == "000"  # the cache holds TPK v1
        answer = await t.exchange(sign_on)
        assert answer.fields["39"] == "800"
        keys = install_key_change(sut.keks[t.terminal_id], bytes.fromhex(answer.fields["96"]))
        t.tak = keys.mac_key()
        sut.tpks[t.terminal_id] = keys.get(KeyType.TPK)
        request, _ = _with_pin(sut, t, 2600)
        assert (await t.exchange(request)).fields["39"] == "000"
        seen = await _received(sut, "1200", 2)
        assert sut.zpk is not None
        block = bytes.fromhex(seen[-1].fields["52"])
        assert decrypt_pin_block(sut.zpk.key, sut.zpk.algorithm, block, TEST_PAN) == PIN


async def test_missing_zpk_is_said_once_per_link(tmp_path: Path) -> None:
    """No ZPK for a link: PIN data dropped for every message, logged once per link
    (a real key store under a KeyringCache, no switch needed)."""
    with KeyStore.init(tmp_path, lmk=Lmk.generate()) as store:
        ceremony = store.add_terminal("T1")
        tpk = install_key_change(ceremony.clear_kek, ceremony.payload).get(KeyType.TPK)
        cache = KeyringCache(store)
        block = encrypt_pin_block(tpk.key, tpk.algorithm, PIN, TEST_PAN)
        message = Message("1200", {"2": TEST_PAN, "41": "T1", "52": block.hex().upper()})
        with structlog.testing.capture_logs() as logs:
            for link in ("bank", "bank", "other", "bank"):
                out = await cache.pin_upstream(message, "T1", link)
                assert "52" not in out.fields
        dropped = [e for e in logs if e["event"] == "pin_data_dropped"]
        assert [e["route"] for e in dropped] == ["bank", "other"]
        assert all(block.hex().upper() not in str(e) for e in logs)
