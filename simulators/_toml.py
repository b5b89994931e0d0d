"""Typed reading of TOML tables with errors that name the key path.

The simulators' configuration and certification scripts are written by hand;
a typo must be an error that says where, never a silent default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["SimConfigError", "Table", "load_toml"]

T = TypeVar("T")


class SimConfigError(ValueError):
    """A simulator configuration or script problem: ``<source>: <key path>: <reason>``."""

    def __init__(self, path: str, reason: str, source: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {reason}" if path else f"{where}{reason}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error becomes a SimConfigError naming the file."""
    source = str(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise SimConfigError("", f"cannot read: {exc.strerror}", source) from None
    except tomllib.TOMLDecodeError as exc:
        raise SimConfigError("", f"not valid TOML: {exc}", source) from None


class Table:
    """A view of one TOML table that tracks which keys were read.

    `done()` raises for any key that was not read, so unknown keys are errors.
    """

    def __init__(self, data: Mapping[str, Any], path: str = "", source: str | None = None) -> None:
        if not isinstance(data, Mapping):
            raise SimConfigError(path, "must be a table", source)
        self._data = data
        self.path = path
        self.source = source
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, reason: str) -> SimConfigError:
        return SimConfigError(self._key(key), reason, self.source)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str, default: Any = None) -> Any:
        self._seen.add(key)
        return self._data.get(key, default)

    def text(self, key: str, default: str | None = None, choices: Sequence[str] = ()) -> str:
        value = self.raw(key, default)
        if value is None:
            raise self.error(key, "is required")
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if choices and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, str):
            raise self.error(key, "must be a string")
        return value

    def integer(self, key: str, default: int | None = None, low: int | None = None) -> int:
        value = self.raw(key, default)
        if value is None:
            raise self.error(key, "is required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer")
        if low is not None and value < low:
            raise self.error(key, f"must be at least {low}")
        return value

    def opt_integer(self, key: str) -> int | None:
        if self.raw(key) is None:
            return None
        return self.integer(key)

    def number(self, key: str, default: float | None = None, low: float = 0.0) -> float:
        value = self.raw(key, default)
        if value is None:
            raise self.error(key, "is required")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, "must be a number")
        if value < low:
            raise self.error(key, f"must be at least {low}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        """A string or a list of strings, as a tuple (absent: empty)."""
        value = self.raw(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise self.error(key, "must be a string or a list of strings")

    def table(self, key: str) -> Table:
        value = self.raw(key, {})
        return Table(value, self._key(key), self.source)

    def tables(self, key: str) -> list[Table]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.error(key, "must be an array of tables")
        return [Table(v, f"{self._key(key)}[{i}]", self.source) for i, v in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise self.error(unknown[0], "unknown key")
