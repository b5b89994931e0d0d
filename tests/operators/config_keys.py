"""Which keys the configuration readers accept, with their defaults: recorded by
reading real configuration files through `parse_config` with ConfigTable's getters
observed (the readers are the truth the docs are checked against)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from forecourt.switch import config_reading
from forecourt.switch.config import parse_config

REPO = Path(__file__).resolve().parents[2]
NO_DEFAULT = object()  # required, or absent means "none"

_GETTERS = {  # getter -> position of its default among the positional arguments after name
    "str_": 0,
    "int_": 0,
    "float_": 0,
    "bool_": 0,
    "port": 1,
    "opt_str": None,
    "str_list": None,
    "raw": None,
}


def table_of(path: str) -> str:
    """`listeners[0].tls` -> `listeners.tls`; the top level is ''."""
    return re.sub(r"\[\d+\]", "", path)


@contextmanager
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[tuple[str, str], Any]]:
    seen: dict[tuple[str, str], Any] = {}
    cls = config_reading.ConfigTable
    for getter, position in _GETTERS.items():
        original = getattr(cls, getter)

        def observed(
            self: Any, *args: Any, _o: Any = original, _p: int | None = position, **kw: Any
        ) -> Any:
            name = args[0] if args else kw.get("name", "port")
            if _p is None:
                default = NO_DEFAULT
            elif getter_name(_o) == "port":
                default = kw.get("default", args[2] if len(args) > 2 else None)
            else:
                default = kw.get("default", args[1 + _p] if len(args) > 1 + _p else None)
            seen.setdefault((table_of(self.path), name), NO_DEFAULT if default is None else default)
            return _o(self, *args, **kw)

        monkeypatch.setattr(cls, getter, observed)
    yield seen


def getter_name(f: Any) -> str:
    return str(getattr(f, "__name__", ""))


def every_table_document() -> dict[str, Any]:
    """The shipped configuration with its commented-out optional tables filled in."""
    doc = tomllib.loads((REPO / "conf" / "forecourt.toml").read_text(encoding="utf-8"))
    doc["database"] = "postgresql://forecourt@db/forecourt"
    doc["node"] = "fc-node-1"
    doc["listeners"][0]["tls"] = {
        "certificate": "tls/switch.pem",
        "key": "tls/switch.key",
        "require_client_certificate": True,
        "client_ca_file": "tls/terminals-ca.pem",
    }
    doc["acquirers"][0]["tls"] = {
        "ca_file": "tls/bank-ca.pem",
        "server_name": "acq.bank.example",
        "certificate": "tls/c.pem",
        "key": "tls/c.key",
        "min_version": "1.2",
    }
    doc["routes"][0]["prefixes"] = ["4"]
    doc["keys"]["lmk_file"] = "/etc/forecourt/lmk.key"
    return doc


def accepted_keys(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], Any]:
    with recording(monkeypatch) as seen:
        parse_config(every_table_document(), source="every-table", base_dir=REPO / "conf")
        for example in sorted((REPO / "conf" / "examples").glob("*.toml")):
            doc = tomllib.loads(example.read_text(encoding="utf-8"))
            parse_config(doc, source=str(example), base_dir=example.parent)
    return dict(seen)
