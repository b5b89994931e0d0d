"""No clear key and no clear PIN block is ever on the switch's side with the
payshield backend: PIN translations and MACs run through it against the
simulator, and the test, which knows the clear keys and the clear PIN block from
the simulator's side, searches every byte the switch side wrote to and read from
the socket and every object the backend keeps."""

from __future__ import annotations

import gc
import types
from collections.abc import Iterator

import trio
from forecourt.keys.crypto import Algorithm
from forecourt.keys.dukpt_tdes import TdesVariant, tdes_session_key
from forecourt.keys.mac import MacAlgorithm
from forecourt.keys.model import KeyType
from forecourt.keys.payshield_module import PayShieldModule
from forecourt.keys.pin import encrypt_pin_block, pan_field_0
from forecourt.keys.security_module import KeyRef, PinBlockFormat
from forecourt.simulators.hsm_keys import form_key

from tests.keys.payshield_rig import console_zmk, fresh, import_clear, module_for, running_sim

PAN = "5413330089010434"
PIN = "7391"


class RecordingStream(trio.abc.Stream):
    """The real socket stream, with a copy of every byte each way."""

    def __init__(self, inner: trio.abc.Stream, sent: bytearray, received: bytearray) -> None:
        self.inner, self.sent, self.received = inner, sent, received

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += bytes(data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.inner.receive_some(max_bytes)
        self.received += data
        return bytes(data)

    async def aclose(self) -> None:
        await self.inner.aclose()


def forms(secret: bytes) -> list[bytes]:
    """The ways a secret could appear: raw, hex in either case."""
    return [secret, secret.hex().upper().encode(), secret.hex().encode()]


def kept_by(root: object) -> Iterator[object]:
    """Every object reachable from `root`, not following modules, classes or
    functions (which reach the whole interpreter, the simulator included)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(
            obj, types.ModuleType | type | types.FunctionType | types.CodeType | types.FrameType
        ):
            continue
        seen.add(id(obj))
        yield obj
        stack.extend(gc.get_referents(obj))


def test_kept_by_finds_what_an_object_holds() -> None:
    # the search itself finds a key kept in an attribute, a dict or as an integer
    class Holder:
        pass

    holder, secret = Holder(), b"\x13" * 16
    holder.__dict__["x"] = {"k": [int.from_bytes(secret, "big")]}
    assert int.from_bytes(secret, "big") in list(kept_by(holder))


async def test_nothing_clear_on_the_switch_side(nursery: trio.Nursery) -> None:
    sent, received = bytearray(), bytearray()

    async def connect(host: str, port: int) -> trio.abc.Stream:
        return RecordingStream(await trio.open_tcp_stream(host, port), sent, received)

    async with running_sim(nursery) as rig:
        # the bank's and the custodians' side: clear keys the switch never gets
        clear_zmk, zmk_ref = console_zmk(rig.lmk)
        tpk, zpk, zak = (fresh(Algorithm.TDES2) for _ in range(3))
        aes_zmk = console_zmk(rig.lmk, Algorithm.AES256)
        tak = fresh(Algorithm.AES128)
        bdk = fresh(Algorithm.TDES2)
        bdk_block = form_key(rig.lmk, [bdk, bytes(16)[:8] + b"\x01" * 8], "B0", Algorithm.TDES2)
        bdk_clear = bytes(a ^ b for a, b in zip(bdk, bytes(8) + b"\x01" * 8, strict=True))
        ksn = bytes.fromhex("FFFF9876543210E00003")
        dukpt_pin_key = tdes_session_key(bdk_clear, ksn, TdesVariant.PIN)

        hsm: PayShieldModule = module_for(rig.port, connect)
        zmk = (clear_zmk, zmk_ref)
        tpk_ref = await import_clear(hsm, zmk, tpk, KeyType.TPK, Algorithm.TDES2)
        zpk_ref = await import_clear(hsm, zmk, zpk, KeyType.ZPK, Algorithm.TDES2)
        zak_ref = await import_clear(hsm, zmk, zak, KeyType.ZAK, Algorithm.TDES2)
        tak_ref = await import_clear(hsm, aes_zmk, tak, KeyType.TAK, Algorithm.AES128)
        bdk_ref = KeyRef(KeyType.ZMK, Algorithm.TDES2, "", bdk_block, "payshield")

        # what the terminal sends: the PIN under its TPK and under its DUKPT key
        under_tpk = encrypt_pin_block(tpk, Algorithm.TDES2, PIN, PAN)
        under_dukpt = encrypt_pin_block(dukpt_pin_key, Algorithm.TDES2, PIN, PAN)
        iso0 = PinBlockFormat.ISO0
        kept = [
            await hsm.translate_pin(tpk_ref, zpk_ref, under_tpk, PAN, iso0, iso0),
            await hsm.translate_dukpt_pin(bdk_ref, ksn, zpk_ref, under_dukpt, PAN, iso0),
            await hsm.generate_mac(zak_ref, MacAlgorithm.RETAIL, b"0200 purchase"),
            await hsm.verify_mac(tak_ref, MacAlgorithm.CMAC, b"0210", bytes(8)),
            await hsm.generate_mac(tak_ref, MacAlgorithm.CMAC, b"0210"),
            await hsm.kcv(zpk_ref),
            await hsm.diagnostics(),
        ]
        refs = [tpk_ref, zpk_ref, zak_ref, tak_ref]

        pin_field = bytes.fromhex(f"{len(PIN):02X}{PIN}".ljust(16, "F"))
        clear_pin_block = bytes(a ^ b for a, b in zip(pin_field, pan_field_0(PAN), strict=True))
        secrets = {
            "ZMK": clear_zmk,
            "AES ZMK": aes_zmk[0],
            "TPK": tpk,
            "ZPK": zpk,
            "ZAK": zak,
            "TAK": tak,
            "BDK": bdk_clear,
            "DUKPT PIN key": dukpt_pin_key,
            "LMK": rig.lmk.key,
            "clear PIN block": clear_pin_block,
            "PIN field": pin_field,
        }
        assert len(sent) > 1000 and len(received) > 500  # the traffic was recorded
        objects = list(kept_by([hsm, kept, refs]))
        assert len(objects) > 50
        texts = [bytes(o) for o in objects if isinstance(o, bytes | bytearray)]
        texts += [o.encode("latin-1", "replace") for o in objects if isinstance(o, str)]
        numbers = {o for o in objects if isinstance(o, int)}
        for name, secret in secrets.items():
            for form in forms(secret):
                assert form not in sent, f"{name} in what the switch sent"
                assert form not in received, f"{name} in what the switch received"
                assert not any(form in text for text in texts), f"{name} kept by the backend"
            for width in (len(secret), 8):
                assert int.from_bytes(secret[:width], "big") not in numbers, f"{name} as a number"
        # and the PIN block the terminal sent is on the wire only as a cryptogram
        assert under_tpk.hex().upper().encode() in sent
        await hsm.aclose()
