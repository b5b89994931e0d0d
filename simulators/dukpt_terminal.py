"""A DUKPT PIN pad for the terminal simulator and the tests: holds only its initial
key (as injected by `forecourt keys add-dukpt-terminal`), moves its KSN counter
on every request (skipping counters a terminal never uses), and MACs and
encrypts PINs under the keys that counter gives.

AES DUKPT (X9.24-3-2017): the KSN in ifsf field 48 sub-element 29 (or field 53),
the request MAC under usage 2000 (AES-CMAC), the answer's checked under 2001,
the PIN as an ISO 9564 format 4 block under usage 1000 in 48-30. TDES DUKPT
(X9.24-1-2009): the retail MAC under the request / response variants, the PIN a
format 0 block under the PIN variant in field 52.
"""

from __future__ import annotations

import hmac

import attrs
from forecourt.codecs.dialect import Dialect, encode_with_mac, mac_input
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.keys import dukpt_aes, dukpt_tdes
from forecourt.keys.crypto import Algorithm
from forecourt.keys.mac import aes_cmac, retail_mac
from forecourt.keys.pin import encrypt_pin_block
from forecourt.keys.security_module import DukptKeyUsage

__all__ = ["DukptPinPad", "Exhausted"]


class Exhausted(Exception):
    """The PIN pad has no usable KSN counter left: it must be injected again."""


@attrs.define
class DukptPinPad:
    """`scheme` "aes" or "tdes"; `initial_key_id` 8 bytes (AES) or the initial KSN
    (TDES, 10 bytes); `ksn_field` "48.29" or "53" as the switch's group says."""

    scheme: str
    initial_key: bytes = attrs.field(repr=False)
    initial_key_id: bytes
    ksn_field: str = "48.29"
    counter: int = 0

    def next_ksn(self) -> bytes:
        """The KSN of the next request (the counter moves first, as a PIN pad's does)."""
        module = dukpt_aes if self.scheme == "aes" else dukpt_tdes
        nxt = module.next_counter(self.counter)
        if nxt is None:
            raise Exhausted("the PIN pad's KSN counter is exhausted")
        self.counter = nxt
        return self.ksn()

    def ksn(self) -> bytes:
        if self.scheme == "aes":
            return dukpt_aes.ksn_of(self.initial_key_id, self.counter)
        base = int.from_bytes(dukpt_tdes.initial_ksn(self.initial_key_id), "big")
        return (base | self.counter).to_bytes(dukpt_tdes.KSN_LENGTH, "big")

    # -- keys of one KSN -----------------------------------------------------------

    def _aes(self, ksn: bytes, usage: DukptKeyUsage) -> bytes:
        return dukpt_aes.aes_working_key_from_initial(
            self.initial_key, ksn, usage, Algorithm.AES128
        )

    def _tdes(self, ksn: bytes, variant: dukpt_tdes.TdesVariant) -> bytes:
        current = dukpt_tdes.tdes_future_key(self.initial_key, ksn)
        return dukpt_tdes.tdes_variant_key(current, variant)

    def mac(self, ksn: bytes, data: bytes, *, answer: bool = False) -> bytes:
        if self.scheme == "aes":
            usage = DukptKeyUsage.MAC_VERIFICATION if answer else DukptKeyUsage.MAC_GENERATION
            return aes_cmac(self._aes(ksn, usage), data)
        variant = (
            dukpt_tdes.TdesVariant.MAC_RESPONSE if answer else dukpt_tdes.TdesVariant.MAC_REQUEST
        )
        return retail_mac(self._tdes(ksn, variant), data)

    def pin_block(self, ksn: bytes, pin: str, pan: str) -> bytes:
        if self.scheme == "aes":
            key = self._aes(ksn, DukptKeyUsage.PIN_ENCRYPTION)
            return encrypt_pin_block(key, Algorithm.AES128, pin, pan)
        key = self._tdes(ksn, dukpt_tdes.TdesVariant.PIN)
        return encrypt_pin_block(key, Algorithm.TDES2, pin, pan)

    # -- messages ------------------------------------------------------------------

    def prepare(
        self,
        dialect: Dialect,
        message: Message,
        *,
        pin: str | None = None,
        ksn: bytes | None = None,
        corrupt_mac: bool = False,
    ) -> tuple[bytes, bytes]:
        """`message` as the PIN pad sends it, and the KSN it used: KSN and PIN block
        added, MAC'd under the KSN's request key. `ksn` resends under an old KSN
        (a replay); `corrupt_mac` flips the MAC's bits."""
        used = ksn if ksn is not None else self.next_ksn()
        subs: dict[int, str | bytes] = {}
        if message.fields.get("48"):
            subs = dict(decode_field48(message.fields["48"]))
        fields: dict[int, str | None] = {}
        if self.ksn_field == "53":
            fields[53] = used.hex().upper()
        else:
            subs[29] = used
        if pin is not None:
            block = self.pin_block(used, pin, message.fields["2"])
            if self.scheme == "aes":
                subs[30] = block
            else:
                fields[52] = block.hex().upper()
        if subs:
            fields[48] = encode_field48(subs)
        prepared = message.with_fields(fields)

        def mac(data: bytes) -> bytes:
            code = self.mac(used, data)[:8]
            return bytes(b ^ 0xFF for b in code) if corrupt_mac else code

        return encode_with_mac(dialect, prepared, mac), used

    def answer_ok(self, ksn: bytes, raw: bytes) -> bool:
        """Whether an answer's MAC is the switch's under the KSN's response key."""
        return hmac.compare_digest(self.mac(ksn, mac_input(raw), answer=True)[:8], raw[-8:])
