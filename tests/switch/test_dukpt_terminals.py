"""DUKPT PIN pads through the switch over real sockets, with a real SQLite key store.

An AES DUKPT PIN pad holding only its injected initial key (the BDK stays in the
switch's key store) buys fuel with a PIN: approved, the answer MAC'd under the
KSN's response key, and the PIN block the host receives in field 52 opens under
the link's ZPK. A replayed KSN is declined 902, a wrong MAC 916; after a restart
the KSN high-water mark still holds. The host is the harness's SmallHost (a test
double for the acquirer: the test decrypts what it received under its ZPK).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import structlog
import trio
from forecourt.codecs.dialect import decode, get_dialect
from forecourt.codecs.framing import Framing, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.network import NetworkFunction
from forecourt.keys import dukpt_aes, dukpt_tdes
from forecourt.keys.crypto import Algorithm, adjust_parity
from forecourt.keys.exchange import install_key_change
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyType
from forecourt.keys.pin import decrypt_pin_block
from forecourt.keys.store import KeyStore
from forecourt.simulators.dukpt_terminal import DukptPinPad
from forecourt.switch.config_dukpt import DukptGroup

from tests.switch.harness import (
    TEST_PAN,
    RunningSwitch,
    SmallHost,
    SwitchUnderTest,
    Terminal,
    switch_config,
)

PIN = "4821"
TID = "P0000001"
BDK = {"aes": os.urandom(16), "tdes": adjust_parity(os.urandom(16))}
IKID = {"aes": bytes.fromhex("1234567890123456"), "tdes": bytes.fromhex("FFFF9876543210E00000")}


@contextlib.asynccontextmanager
async def dukpt_switch(
    tmp_path: Path, scheme: str, ksn_field: str = "48.29"
) -> AsyncIterator[tuple[SwitchUnderTest, DukptPinPad]]:
    lmk = Lmk.generate()
    store = KeyStore.init(tmp_path, lmk=lmk)
    registry = store.dukpt()
    algorithm = Algorithm.AES128 if scheme == "aes" else Algorithm.TDES2
    registry.add_bdk("bdk1", algorithm, BDK[scheme], 0.0, "test")
    registry.add_terminal(TID, "bdk1", IKID[scheme], "000000", 0.0, "test")
    components = (os.urandom(16), os.urandom(16))
    info = store.add_acquirer("bank", components)
    zmk = adjust_parity(bytes(a ^ b for a, b in zip(*components, strict=True)))
    zpk = install_key_change(zmk, info.payload).get(KeyType.ZPK)
    if scheme == "aes":
        initial = dukpt_aes.aes_initial_key(BDK[scheme], IKID[scheme])
    else:
        initial = dukpt_tdes.tdes_ipek(BDK[scheme], IKID[scheme])
    pad = DukptPinPad(scheme, initial, IKID[scheme], ksn_field)
    host = SmallHost(get_dialect("ifsf"))
    async with trio.open_nursery() as outer:
        port = await outer.start(host.serve)
        config = switch_config(tmp_path, port)
        group = attrs.evolve(config.terminal_groups[0], dukpt=DukptGroup(scheme, "bdk1", ksn_field))
        config = attrs.evolve(config, terminal_groups=(group,))
        async with trio.open_nursery() as nursery:
            sut = SwitchUnderTest(
                config, RunningSwitch({}, None), host, store, {}, {}, trio.Event()
            )
            sut.zpk = zpk
            sut._nursery, sut._lmk = nursery, lmk
            await sut.start()
            try:
                yield sut, pad
            finally:
                sut.stop.set()
        outer.cancel_scope.cancel()
    store.close()


async def exchange(t: Terminal, raw: bytes) -> tuple[Message, bytes]:
    await t.send_raw(encode_frame(Framing(), raw))
    with trio.fail_after(5):
        while True:
            data = await t.stream.receive_some(65536)
            assert data, "the switch closed the connection"
            frames = list(t._decoder.feed(data))
            if frames:
                payload = frames[0].payload
                return decode(t.dialect, payload), payload


async def host_saw(sut: SwitchUnderTest, count: int) -> list[Message]:
    with trio.fail_after(5):
        while len(seen := [m for m in sut.host.received if m.mti == "1200"]) < count:
            await trio.sleep(0.02)
    return seen


@pytest.mark.parametrize(("scheme", "ksn_field"), [("aes", "48.29"), ("tdes", "53")])
async def test_dukpt_purchase_with_pin_replay_and_bad_mac(
    tmp_path: Path, scheme: str, ksn_field: str
) -> None:
    async with dukpt_switch(tmp_path, scheme, ksn_field) as (sut, pad):
        async with sut.terminal(TID) as t:
            # a sign-on is accepted (proven under DUKPT) and hands out no keys
            sign_on, _ = pad.prepare(t.dialect, t.network(NetworkFunction.SIGN_ON))
            answer, _ = await exchange(t, sign_on)
            assert answer.fields["39"] == "800" and "96" not in answer.fields

            raw, ksn = pad.prepare(t.dialect, t.purchase(2500), pin=PIN)
            answer, answer_raw = await exchange(t, raw)
            assert answer.fields["39"] == "000"
            assert pad.answer_ok(ksn, answer_raw)
            (seen,) = await host_saw(sut, 1)
            assert sut.zpk is not None
            block = bytes.fromhex(seen.fields["52"])
            assert decrypt_pin_block(sut.zpk.key, sut.zpk.algorithm, block, TEST_PAN) == PIN
            assert "53" not in seen.fields  # the KSN stays with the switch
            if "48" in seen.fields:
                assert ksn.hex().upper() not in seen.fields["48"]

            # the same KSN again (a copy off the wire, new STAN): declined, not forwarded
            replay, _ = pad.prepare(t.dialect, t.purchase(2600), pin=PIN, ksn=ksn)
            answer, _ = await exchange(t, replay)
            assert answer.fields["39"] == "902"
            bad, _ = pad.prepare(t.dialect, t.purchase(2700), corrupt_mac=True)
            answer, _ = await exchange(t, bad)
            assert answer.fields["39"] == "916"
            assert len(await host_saw(sut, 1)) == 1

        await sut.restart()
        async with sut.terminal(TID) as t:
            # after a restart the high-water mark holds: the approved KSN is still a replay
            replay, _ = pad.prepare(t.dialect, t.purchase(2800), ksn=ksn)
            assert (await exchange(t, replay))[0].fields["39"] == "902"
            fresh, _ = pad.prepare(t.dialect, t.purchase(2900), pin=PIN)
            assert (await exchange(t, fresh))[0].fields["39"] == "000"
            # near the end of its counters the terminal is reported on every request
            pad.counter = 0xFFFE0000 if scheme == "aes" else 0x1FF000
            with structlog.testing.capture_logs() as logs:
                late, _ = pad.prepare(t.dialect, t.purchase(3000), pin=PIN)
                assert (await exchange(t, late))[0].fields["39"] == "000"
            near = [e for e in logs if e["event"] == "dukpt_terminal_near_exhaustion"]
            assert len(near) == 1 and near[0]["counters_left"] < 10_000
        term = sut.store.dukpt().terminal(TID)
        assert term is not None and term.replays == 2


async def test_a_proven_dukpt_sign_on_ends_a_mac_lock(tmp_path: Path) -> None:
    """Three wrong MACs lock the PIN pad (917); its sign-on, MAC'd under a fresh
    KSN, ends the lock without handing out keys."""
    async with dukpt_switch(tmp_path, "aes") as (sut, pad), sut.terminal(TID) as t:
        for _ in range(3):
            bad, _ = pad.prepare(t.dialect, t.purchase(2500), corrupt_mac=True)
            assert (await exchange(t, bad))[0].fields["39"] == "916"
        locked, _ = pad.prepare(t.dialect, t.purchase(2500), pin=PIN)
        assert (await exchange(t, locked))[0].fields["39"] == "917"
        sign_on, _ = pad.prepare(t.dialect, t.network(NetworkFunction.SIGN_ON))
        answer, _ = await exchange(t, sign_on)
        assert answer.fields["39"] == "800" and "96" not in answer.fields
        again, _ = pad.prepare(t.dialect, t.purchase(2500), pin=PIN)
        assert (await exchange(t, again))[0].fields["39"] == "000"
