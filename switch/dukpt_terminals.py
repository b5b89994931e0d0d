"""DUKPT PIN pads in the switch: MACs and PINs under keys derived from each request's KSN.

A DUKPT terminal holds no TAK or TPK the switch knows: every request carries its
key serial number (KSN; ifsf field 48 sub-element 29 or field 53, the group's
`ksn_field`), and the security module derives the request's keys from the BDK.
- MAC: the request's under the MAC key of usage 2000 (AES-CMAC; TDES: the retail
  MAC under the request variant), the answer's under usage 2001 of the same KSN
  (TDES: the response variant), as X9.24-3-2017 names the directions.
- KSN: only after the MAC verified (so a forged frame cannot burn a terminal's
  counters), the key store moves the terminal's high-water mark in one write;
  an older or equal counter (a replay), a counter a terminal never uses, or
  another device's KSN is refused 902 / 12 and counted. A terminal with fewer
  usable counters than `[keys] dukpt_exhaustion_warning` left is logged and
  counted on each request until it is re-injected.
- PIN: AES: the format 4 block in 48-30 under the usage-1000 key; TDES: the
  format 0 block in field 52 under the PIN variant; translated in the module
  to the link's ZPK into field 52 (`translate_dukpt_pin`), and 48-29/48-30 are
  not sent upstream.
Everything goes through the SecurityModule protocol; nothing here sees a key.
"""

from __future__ import annotations

import collections
import time
from typing import NoReturn

import structlog
import trio
from forecourt.codecs.dialect import Dialect, encode_with_mac
from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.keys.dukpt_store import KsnCheck
from forecourt.keys.errors import KeysError
from forecourt.keys.model import KeyType
from forecourt.keys.security_module import DukptKeyUsage, KeyRef, ModuleError, PinBlockFormat
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.store import KeyStore
from forecourt.switch.config_dukpt import DukptGroup, ModuleSettings
from forecourt.switch.terminal_guard import TerminalRefused
from forecourt.switch.transaction import pan_of
from forecourt.switch.zone_pins import FIELD52_BYTES, PinRefused
from prometheus_client import CollectorRegistry, Counter, Gauge

log = structlog.get_logger("forecourt.dukpt")

_KSN_SUB = 29
_PIN_SUB = 30
_REMEMBERED = 10_000  # KSNs of requests awaiting their answer, per process


class KsnRefused(TerminalRefused):
    """The request's KSN is missing, replayed, unusable or another device's: 902 / 12."""

    def __init__(self, terminal_id: str, reason: str) -> None:
        super().__init__(terminal_id)
        self.reason = reason


class DukptMetrics:
    def __init__(self, registry: CollectorRegistry, module: SoftwareModule) -> None:
        self.ksn_refused = Counter(
            "forecourt_dukpt_ksn_refused",
            "DUKPT requests refused for their KSN",
            ["reason"],
            registry=registry,
        )
        self.near_exhaustion = Counter(
            "forecourt_dukpt_near_exhaustion",
            "DUKPT requests from terminals with few KSN counters left",
            registry=registry,
        )
        cache = module.initial_keys
        Gauge(
            "forecourt_dukpt_initial_keys_cached",
            "DUKPT initial keys in the module's cache",
            registry=registry,
        ).set_function(lambda: len(cache))
        Gauge(
            "forecourt_dukpt_initial_key_cache_misses",
            "Initial-key cache misses (derivations from the BDK)",
            registry=registry,
        ).set_function(lambda: cache.misses)
        Gauge(
            "forecourt_dukpt_initial_key_cache_hits",
            "Initial-key cache hits",
            registry=registry,
        ).set_function(lambda: cache.hits)


class DukptTerminals:
    """The switch's side of DUKPT terminals, over the security module and key store."""

    def __init__(
        self,
        store: KeyStore,
        module: SoftwareModule,
        registry: CollectorRegistry,
        settings: ModuleSettings | None = None,
    ) -> None:
        self._store = store
        self._module = module
        self._settings = settings or ModuleSettings()
        self.metrics = DukptMetrics(registry, module)
        self._bdks: dict[str, KeyRef] = {}
        self._zpks: dict[str, tuple[float, KeyRef | None]] = {}
        self._pending: collections.OrderedDict[tuple[str, str], bytes] = collections.OrderedDict()
        self._groups: dict[str, DukptGroup] = {}

    def group_of(self, terminal_id: str) -> DukptGroup | None:
        """The DUKPT group of a terminal whose MAC verified under DUKPT, else None."""
        return self._groups.get(terminal_id)

    async def bdk(self, name: str) -> KeyRef:
        ref = self._bdks.get(name)
        if ref is None:
            ref = await trio.to_thread.run_sync(self._store.dukpt().bdk_ref, name)
            self._bdks[name] = ref
        return ref

    # -- the request -----------------------------------------------------------

    @staticmethod
    def ksn(group: DukptGroup, request: Message) -> bytes | None:
        """The KSN the request carries in the group's `ksn_field`, or None."""
        try:
            if group.ksn_field == "53":
                value = request.fields.get("53")
                return bytes.fromhex(value) if value else None
            f48 = request.fields.get("48")
            found = decode_field48(f48).get(_KSN_SUB) if f48 else None
        except (ValueError, CodecError):  # a malformed 48 or 53 is the terminal's: no KSN
            return None
        return found if isinstance(found, bytes) else None

    async def verify(
        self,
        group: DukptGroup,
        request: Message,
        terminal_id: str,
        data: bytes,
        mac: bytes,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> str:
        """ "ok" or "mismatch" for the request's MAC; KsnRefused for its KSN."""
        ksn = self.ksn(group, request)
        if ksn is None:
            self._refuse(terminal_id, "no_ksn", bound)
        bdk = await self.bdk(group.bdk)
        try:
            ok = await self._module.dukpt_verify_mac(
                bdk, ksn, DukptKeyUsage.MAC_GENERATION, data, mac
            )
        except ModuleError:
            self._refuse(terminal_id, "invalid", bound)
        if not ok:
            return "mismatch"
        check: KsnCheck = await trio.to_thread.run_sync(
            self._store.dukpt().advance, terminal_id, ksn, time.time()
        )
        if not check.ok:
            self._refuse(terminal_id, check.verdict.value, bound)
        if check.remaining < self._settings.dukpt_exhaustion_warning:
            self.metrics.near_exhaustion.inc()
            bound.warning("dukpt_terminal_near_exhaustion", counters_left=check.remaining)
        stan = request.fields.get("11", "")
        self._groups[terminal_id] = group
        self._pending[(terminal_id, stan)] = ksn
        while len(self._pending) > _REMEMBERED:
            self._pending.popitem(last=False)
        return "ok"

    def _refuse(
        self, terminal_id: str, reason: str, bound: structlog.typing.FilteringBoundLogger
    ) -> NoReturn:
        self.metrics.ksn_refused.labels(reason=reason).inc()
        bound.warning("dukpt_ksn_refused", reason=reason)
        raise KsnRefused(terminal_id, reason)

    # -- the answer --------------------------------------------------------------

    async def answer(
        self, dialect: Dialect, group: DukptGroup, terminal_id: str, answer: Message
    ) -> bytes | None:
        """The answer MAC'd under the response key of its request's KSN; None when
        the request's KSN is not known (refused before its MAC verified)."""
        ksn = self._pending.pop((terminal_id, answer.fields.get("11", "")), None)
        if ksn is None:
            return None
        captured: list[bytes] = []

        def placeholder(data: bytes) -> bytes:
            captured.append(data)
            return bytes(8)

        raw = encode_with_mac(dialect, answer, placeholder)
        bdk = await self.bdk(group.bdk)
        mac = await self._module.dukpt_mac(bdk, ksn, DukptKeyUsage.MAC_VERIFICATION, captured[0])
        return raw[:-8] + mac

    # -- the PIN -------------------------------------------------------------------

    async def pin_upstream(
        self, group: DukptGroup, message: Message, terminal_id: str, link: str
    ) -> Message:
        """Field 52 under `link`'s ZPK (from the DUKPT PIN block), 48-29/30 removed."""
        ksn = self.ksn(group, message)
        f48 = message.fields.get("48")
        try:
            subs = decode_field48(f48) if f48 else {}
        except CodecError:
            raise PinRefused("field 48 does not decode: no DUKPT PIN data") from None
        block: bytes | None
        if group.scheme == "aes":
            found = subs.get(_PIN_SUB)
            block = found if isinstance(found, bytes) else None
        else:
            block = bytes.fromhex(message.fields["52"]) if message.fields.get("52") else None
        rest = {k: v for k, v in subs.items() if k not in (_KSN_SUB, _PIN_SUB)}
        updates: dict[int, str | None] = {53: None} if group.ksn_field == "53" else {}
        if f48 is not None:
            updates[48] = encode_field48(rest) if rest else None
        cleaned = message.with_fields(updates)
        if block is None:
            return cleaned.with_fields({52: None})
        if ksn is None:
            raise PinRefused("no KSN for the DUKPT PIN block")
        zpk = await self._zpk(link)
        if zpk is None or zpk.algorithm.is_aes:
            log.warning("pin_data_dropped", route=link, reason="no TDES ZPK for field 52")
            return cleaned.with_fields({52: None, 53: None})
        pan = pan_of(message)
        if not pan:
            raise PinRefused("no PAN to bind the PIN block to")
        try:
            translated = await self._module.translate_dukpt_pin(
                await self.bdk(group.bdk), ksn, zpk, block, pan, PinBlockFormat.ISO0
            )
        except (ModuleError, KeysError):
            raise PinRefused("PIN block does not decode under the DUKPT PIN key") from None
        assert len(translated) == FIELD52_BYTES
        return cleaned.with_fields({52: translated.hex().upper(), 53: None})

    async def _zpk(self, link: str) -> KeyRef | None:
        """The link's active ZPK as a module reference, re-read every 5 s (a
        rotation elsewhere is seen within that)."""
        now = time.monotonic()
        cached = self._zpks.get(link)
        if cached is not None and now - cached[0] < 5.0:
            return cached[1]
        ref = await trio.to_thread.run_sync(self._store.dukpt().working_ref, link, KeyType.ZPK)
        self._zpks[link] = (now, ref)
        return ref
