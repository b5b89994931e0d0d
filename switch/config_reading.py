"""Reading the configuration's TOML tables, and the one error an operator sees.

Every getter knows its table's key path, so a mistake is reported as one line,
``sw.toml: listeners[0].port: must be 0..65535``, never as a traceback; and every
table is finished with a check that no key was left unread, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["NAME_RE", "ConfigError", "ConfigTable", "check_unique"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """A configuration problem; the message is ``<source>: <key path>: <reason>``."""

    def __init__(self, path: str, reason: str, source: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {reason}" if path else f"{where}{reason}")


class ConfigTable:
    """A TOML table being read: typed getters, and a check that nothing was left over."""

    def __init__(self, data: object, path: str, source: str | None) -> None:
        self.path = path
        self.source = source
        if not isinstance(data, Mapping):
            raise self.error("", "must be a table")
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.key(name) if name else self.path, reason, self.source)

    def raw(self, name: str) -> Any:
        """The value as TOML gave it (None when absent), marked as read."""
        self.used.add(name)
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return name in self.data

    def str_(
        self, name: str, default: str | None = None, choices: Sequence[str] | None = None
    ) -> str:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required")
            return default
        if not isinstance(value, str):
            raise self.error(name, "must be a string")
        if choices is not None and value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    def opt_str(self, name: str) -> str | None:
        if self.has(name):
            return self.str_(name)
        self.used.add(name)
        return None

    def name(self, name: str = "name") -> str:
        value = self.str_(name)
        if not NAME_RE.match(value):
            raise self.error(name, "must be 1-64 letters, digits, '_', '-' or '.'")
        return value

    def int_(self, name: str, default: int | None, lo: int, hi: int) -> int:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, "must be an integer")
        if not lo <= value <= hi:
            raise self.error(name, f"must be {lo}..{hi}")
        return value

    def port(self, name: str = "port", default: int | None = None, allow_zero: bool = False) -> int:
        lo = 0 if allow_zero else 1
        return self.int_(name, default, lo, 65535)

    def float_(self, name: str, default: float, lo: float, hi: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, "must be a number")
        if not lo <= value <= hi:
            raise self.error(name, f"must be between {lo:g} and {hi:g}")
        return float(value)

    def bool_(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, "must be true or false")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, "must be a list of strings")
        return tuple(value)

    def table(self, name: str) -> ConfigTable:
        value = self.raw(name)
        return ConfigTable({} if value is None else value, self.key(name), self.source)

    def tables(self, name: str) -> Iterator[ConfigTable]:
        value = self.raw(name)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.error(name, "must be an array of tables ([[" + name + "]])")
        for i, item in enumerate(value):
            yield ConfigTable(item, f"{self.key(name)}[{i}]", self.source)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def check_unique(root: ConfigTable, section: str, names: Sequence[str], what: str = "name") -> None:
    """Refuse the second of two entries of ``section`` with the same ``what``."""
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ConfigError(f"{section}[{i}]", f"duplicate {what} {n!r}", root.source)
        seen.add(n)
