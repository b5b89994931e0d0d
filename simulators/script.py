"""Certification scripts: the TOML format read into frozen values.

A script has one `[terminal]` table (who the terminal is, how it talks, its
keys) and a list of `[[cases]]`, each a sequence of steps (simulators/steps.py:
`Send` and `ExpectAtAcquirer` are named here too, for the tests). The format is
documented in docs/simulators.md; everything is checked when the script is
read, so a typo fails before any message is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from forecourt.codecs.family import Family
from forecourt.keys.mac import MacAlgorithm, PreparedMac

from ._toml import SimConfigError, Table, load_toml
from .dukpt_settings import DukptSettings, parse_dukpt
from .steps import ExpectAtAcquirer, Send, Step, parse_step
from .templates import DEFAULT_TEST_PAN, PROFILES, TerminalIdentity
from .wire import WireFormat, parse_mac_key, parse_wire

__all__ = [
    "Case",
    "ExpectAtAcquirer",
    "Script",
    "Send",
    "TerminalSettings",
    "load_script",
    "parse_script",
]


@attrs.frozen(repr=False)
class TerminalSettings:
    """The terminal a script drives; keys are clear hex in the script (test only)."""

    identity: TerminalIdentity
    wire: WireFormat
    profile: str = "indoor"
    kek: bytes | None = None
    tak: PreparedMac | None = None
    mac: bool = True  # MAC requests once a TAK is installed
    timeout_s: float = 5.0
    switch: str | None = None
    stan_start: int = 1
    dukpt: DukptSettings | None = None  # a DUKPT PIN pad (simulators/dukpt_keys.py)

    def __repr__(self) -> str:
        return f"TerminalSettings(terminal_id={self.identity.terminal_id!r})"


@attrs.frozen
class Case:
    name: str
    steps: tuple[Step, ...]
    terminal_id: str | None = None
    profile: str | None = None
    pan: str | None = None
    amount: int | None = None


@attrs.frozen
class Script:
    terminal: TerminalSettings
    cases: tuple[Case, ...]
    source: str | None = None
    name: str = "certification"


def load_script(path: str | Path) -> Script:
    """Read and check a certification script; SimConfigError names the key at fault."""
    return parse_script(load_toml(path), str(path))


def parse_script(data: dict[str, Any], source: str | None = None) -> Script:
    root = Table(data, "", source)
    name = root.text("name", Path(source).stem if source else "certification")
    terminal = _parse_terminal(root.table("terminal"))
    family = terminal.identity.family
    cases = tuple(_parse_case(t, family, terminal.timeout_s) for t in root.tables("cases"))
    if not cases:
        raise SimConfigError("cases", "a script needs at least one case", source)
    root.done()
    return Script(terminal, cases, source, name)


def _hex_key(t: Table, key: str, lengths: tuple[int, ...]) -> bytes | None:
    value = t.opt_text(key)
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise t.error(key, "must be hex") from None
    if len(raw) not in lengths:
        raise t.error(key, f"must be {' or '.join(str(n) for n in lengths)} bytes")
    return raw


def _parse_terminal(t: Table) -> TerminalSettings:
    wire = parse_wire(t)
    kek = _hex_key(t, "kek", (16, 32))
    components = t.texts("kek_components")
    if components:
        if kek is not None:
            raise t.error("kek_components", "give kek or kek_components, not both")
        try:
            parts = [bytes.fromhex(c) for c in components]
        except ValueError:
            raise t.error("kek_components", "must be hex") from None
        if len({len(p) for p in parts}) != 1 or len(parts[0]) not in (16, 32):
            raise t.error("kek_components", "must be 16- or 32-byte keys of one length")
        kek = bytes(len(parts[0]))
        for part in parts:
            kek = bytes(a ^ b for a, b in zip(kek, part, strict=True))
    algorithm = t.text("mac_algorithm", "retail", tuple(a.value for a in MacAlgorithm))
    tak: PreparedMac | None = None
    if "tak" in t:
        tak = parse_mac_key(_MacView(t, algorithm), "tak")
    profile = t.text("profile", "indoor", tuple(PROFILES))
    identity = TerminalIdentity(
        terminal_id=t.text("terminal_id"),
        merchant_id=t.text("merchant_id", "FORECOURT000001"),
        family=wire.family,
        pan=t.text("pan", DEFAULT_TEST_PAN),
        expiry=t.text("expiry", "2912"),
        currency=t.text("currency", "978"),
        acquirer_id=t.opt_text("acquirer_id"),
        amount=t.integer("amount", 1000, low=0),
    )
    settings = TerminalSettings(
        identity=identity,
        wire=wire,
        profile=profile,
        kek=kek,
        tak=tak,
        mac=t.flag("mac", True),
        timeout_s=t.number("timeout_s", 5.0),
        switch=t.opt_text("switch"),
        stan_start=t.integer("stan_start", 1, low=1),
        dukpt=parse_dukpt(t),
    )
    t.done()
    return settings


class _MacView(Table):
    """The terminal table seen with `mac_algorithm` as `algorithm` for parse_mac_key."""

    def __init__(self, t: Table, algorithm: str) -> None:
        super().__init__({"tak": t.raw("tak"), "algorithm": algorithm}, t.path, t.source)


def _parse_case(t: Table, family: Family, timeout_s: float) -> Case:
    name = t.text("name")
    steps = tuple(parse_step(s, family, timeout_s) for s in t.tables("steps"))
    if not steps:
        raise t.error("steps", "a case needs at least one step")
    profile = t.opt_text("profile")
    if profile is not None and profile not in PROFILES:
        raise t.error("profile", f"must be one of {', '.join(PROFILES)}")
    case = Case(
        name=name,
        steps=steps,
        terminal_id=t.opt_text("terminal_id"),
        profile=profile,
        pan=t.opt_text("pan"),
        amount=t.opt_integer("amount"),
    )
    t.done()
    return case
