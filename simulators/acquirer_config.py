"""The acquirer simulator's configuration: listener, MAC keys, recording, rules.

Read from TOML (conf/sim/acquirer.toml) or built in code (`simple_config`) into
one frozen value; every key is checked when read, and `SimConfigError` names
the one at fault.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
from forecourt.keys.crypto import Algorithm
from forecourt.keys.mac import PreparedMac
from forecourt.keys.pin import PinKey

from ._toml import SimConfigError, Table, load_toml
from .acquirer_tls import HostTls, parse_host_tls
from .acquirer_totals import TotalsDay, parse_totals_day
from .rules import ACTIONS, Delay, Rule, resolve_code
from .wire import WireFormat, parse_mac_key, parse_wire, wire_format

__all__ = [
    "AcquirerConfig",
    "load_acquirer_config",
    "parse_acquirer_config",
    "simple_config",
]


@attrs.frozen
class AcquirerConfig:
    """Everything the simulated host needs; see conf/sim/acquirer.toml."""

    wire: WireFormat
    host: str = "127.0.0.1"
    port: int = 0
    rules: tuple[Rule, ...] = ()
    zak: PreparedMac | None = attrs.field(default=None, repr=False)
    # Clear KEK (test only): the host stands in for a switch towards terminals and
    # delivers a fresh TAK at every sign-on / key change, then MACs with it.
    kek: bytes | None = attrs.field(default=None, repr=False)
    # Clear ZPK (test only): field 52 is opened under it to check a rule's `pin`.
    zpk: PinKey | None = attrs.field(default=None, repr=False)
    verify_mac: bool = True
    generate_mac: bool = True
    record_file: Path | None = None
    keep_records: int = 100_000
    seed: int | None = None
    tls: HostTls | None = None  # None: plain TCP
    totals_day: TotalsDay = attrs.field(factory=TotalsDay)  # [totals]: the host's day


def load_acquirer_config(path: str | Path, keys_file: Path | None = None) -> AcquirerConfig:
    """Read a host configuration TOML; SimConfigError names the key at fault.

    `keys_file`: the link's zone keys as `forecourt keys export-test-keys` wrote them
    (`[mac] zak`, `[pin] zpk`); they take the place of the host file's own."""
    source = str(path)
    data = load_toml(path)
    if keys_file is not None:
        for section, values in load_toml(keys_file).items():
            if section not in ("mac", "pin") or not isinstance(values, dict):
                raise SimConfigError(
                    section, "only [mac] and [pin] belong in a keys file", str(keys_file)
                )
            table = data.setdefault(section, {})
            if isinstance(table, dict):
                table.update(values)
        source = f"{path} with {keys_file}"
    return parse_acquirer_config(data, source, Path(path).parent)


def parse_acquirer_config(
    data: dict[str, Any], source: str | None = None, base_dir: Path | None = None
) -> AcquirerConfig:
    """Check a parsed host TOML; relative TLS paths are taken from `base_dir`."""
    root = Table(data, "", source)
    listen = root.table("listen")
    host = listen.text("host", "127.0.0.1")
    port = listen.integer("port", 0, low=0)
    tls = parse_host_tls(listen, base_dir)
    wire = parse_wire(listen)
    listen.done()
    family = wire.family

    mac = root.table("mac")
    zak = parse_mac_key(mac, "zak")
    kek = _parse_kek(mac)
    verify_mac = mac.flag("verify", True)
    generate_mac = mac.flag("generate", True)
    mac.done()

    zpk = _parse_zpk(root.table("pin"))

    record = root.table("record")
    record_file = record.opt_text("file")
    keep = record.integer("keep", 100_000, low=0)
    record.done()

    rules = []
    for i, t in enumerate(root.tables("rules")):
        action = t.text("action", choices=ACTIONS)
        code = t.opt_text("code")
        if code is not None:
            try:
                resolve_code(code, family)
            except ValueError as exc:
                raise t.error("code", str(exc)) from None
        delay = _parse_delay(t)
        if action in ("delay", "late") and delay is None:
            raise t.error("delay_s", f"action {action!r} needs delay_s")
        rules.append(
            Rule(
                name=t.text("name", f"rule {i + 1}"),
                action=action,
                pan_prefixes=t.texts("pan_prefix"),
                amount_min=t.opt_integer("amount_min"),
                amount_max=t.opt_integer("amount_max"),
                mtis=t.texts("mti"),
                processing_codes=t.texts("processing_code"),
                code=code,
                delay=delay,
                pin=_parse_pin(t),
            )
        )
        t.done()
    totals_day = parse_totals_day(root.table("totals"))
    seed = root.opt_integer("seed")
    root.done()
    return AcquirerConfig(
        wire=wire,
        host=host,
        port=port,
        rules=tuple(rules),
        zak=zak,
        kek=kek,
        zpk=zpk,
        verify_mac=verify_mac,
        generate_mac=generate_mac,
        record_file=Path(record_file) if record_file else None,
        keep_records=keep,
        seed=seed,
        tls=tls,
        totals_day=totals_day,
    )


def _parse_kek(t: Table) -> bytes | None:
    hex_key = t.opt_text("kek")
    if hex_key is None:
        return None
    try:
        kek = bytes.fromhex(hex_key)
    except ValueError:
        raise t.error("kek", "must be hex") from None
    if len(kek) not in (16, 32):
        raise t.error("kek", "must be a 2-key TDES (16 bytes) or AES-256 (32 bytes) key")
    return kek


def _parse_zpk(t: Table) -> PinKey | None:
    """`[pin] zpk = HEX`, `algorithm = "tdes" | "aes"` (16 bytes are TDES unless "aes")."""
    hex_key = t.opt_text("zpk")
    choice = t.text("algorithm", "tdes", choices=("tdes", "aes"))
    t.done()
    if hex_key is None:
        return None
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        raise t.error("zpk", "must be hex") from None
    algorithm = {
        ("tdes", 16): Algorithm.TDES2,
        ("tdes", 24): Algorithm.TDES3,
        ("aes", 16): Algorithm.AES128,
        ("aes", 24): Algorithm.AES192,
        ("aes", 32): Algorithm.AES256,
    }.get((choice, len(key)))
    if algorithm is None:
        raise t.error("zpk", f"is not a {choice} key length")
    return PinKey(key, algorithm)


def _parse_pin(t: Table) -> str | None:
    pin = t.opt_text("pin")
    if pin is not None and not (4 <= len(pin) <= 12 and pin.isascii() and pin.isdigit()):
        raise t.error("pin", "must be 4 to 12 digits")
    return pin


def _parse_delay(t: Table) -> Delay | None:
    value = t.raw("delay_s")
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return Delay(float(value), float(value))
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] <= value[1]
    ):
        return Delay(float(value[0]), float(value[1]))
    raise t.error("delay_s", "must be seconds or [low, high] seconds")


def simple_config(
    rules: Iterable[Rule] = (),
    *,
    dialect: str = "ifsf",
    header: str = "2b",
    tpdu: bool = False,
    zak: PreparedMac | None = None,
    kek: bytes | None = None,
    zpk: PinKey | None = None,
    verify_mac: bool = True,
    keep_records: int = 100_000,
    tls: HostTls | None = None,
) -> AcquirerConfig:
    """A configuration in code, for tests and the load generator's self-test."""
    return AcquirerConfig(
        wire=wire_format(dialect, header=header, tpdu=tpdu),
        rules=tuple(rules),
        zak=zak,
        kek=kek,
        zpk=zpk,
        verify_mac=verify_mac,
        keep_records=keep_records,
        tls=tls,
    )
